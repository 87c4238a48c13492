package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseExample(t *testing.T) {
	t.Setenv("ZUORA_CLIENT_ID", "id-123")
	t.Setenv("ZUORA_CLIENT_SECRET", "s3cret-value")
	t.Setenv("SFTP_PASSWORD", "pw")
	t.Setenv("S3_KEY", "AKIA")
	t.Setenv("S3_SECRET", "shh")
	c, err := ParseFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Zuora.ClientID != "id-123" || c.Zuora.ClientSecret.Value() != "s3cret-value" {
		t.Fatalf("env not expanded: %+v", c.Zuora)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret-value", "shh"} {
		if strings.Contains(string(out), secret) {
			t.Fatalf("printed config leaks %q:\n%s", secret, out)
		}
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Sources[0].Settle != Duration(2*time.Second) {
		t.Fatalf("settle default = %v", c.Sources[0].Settle)
	}
}

func TestParseErrors(t *testing.T) {
	t.Setenv("NOT_A_NUMBER", "abc")
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "ledgr: x\n", `line 1: ledgr: unknown key (did you mean "ledger"?)`},
		{"unknown key's line, below comments and blanks", "# c\nledger: x\n\nzuora:\n  # c\n  clientid: a\n", "line 6: zuora.clientid: unknown key"},
		{"env value of an int is checked once expanded", "workers: ${NOT_A_NUMBER}\n", `line 1: workers: must be a number (got "abc")`},
		{"unset env", "zuora:\n  client_id: ${NOPE_NOT_SET_42}\n", `line 2: zuora.client_id: environment variable NOPE_NOT_SET_42 is not set (got "${NOPE_NOT_SET_42}")`},
		{"bad duration", "sources:\n  - name: a\n    type: local\n    path: /x\n    settle: soon\n", `line 5: sources[0].settle: must be a duration like 2s or 5m (got "soon")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateNamesKeyLineAndValue(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"bad type", "sources:\n  - name: a\n    type: ftp\n", `line 3: sources[0].type: must be local, s3 or sftp (got "ftp")`},
		{"sftp without host keys", "sources:\n  - name: p\n    type: sftp\n    address: h:22\n    user: u\n    path: /in\n",
			"sources[0].known_hosts: an sftp source needs known_hosts or host_key"},
		{"date format", "zuora:\n  date_format: YYYY/MM/DD\nsources:\n  - {name: a, type: local, path: x}\n",
			`line 2: zuora.date_format: must be MM/DD/YYYY (en_US API user) or DD/MM/YYYY (en_GB, en_AU) (got "YYYY/MM/DD")`},
		{"real tenant needs credentials", "zuora:\n  endpoint: us-sandbox\nsources:\n  - {name: a, type: local, path: x}\n",
			"zuora.client_id: is required for a real tenant"},
		{"duplicate names", "sources:\n  - {name: a, type: local, path: x}\n  - {name: a, type: local, path: y}\n",
			`sources[1].name: is used by another source (got "a")`},
		{"plain http to a remote tenant", "zuora:\n  endpoint: http://rest.zuora.com\n  client_id: a\n  client_secret: b\nsources:\n  - {name: a, type: local, path: x}\n",
			`line 2: zuora.endpoint: must be https unless it is this machine (localhost, 127.0.0.1, ::1): the client secret and session would travel in clear (got "http://rest.zuora.com")`},
		{"plain http to a remote SOAP endpoint", "zuora:\n  endpoint: https://rest.zuora.com\n  client_id: a\n  client_secret: b\n  api: soap\n  username: u\n  password: p\n" +
			"  soap_endpoint: http://10.1.2.3/apps/services/a/119.0\nsources:\n  - {name: a, type: local, path: x}\n",
			`line 8: zuora.soap_endpoint: must be https unless`},
		{"not a SOAP URL", "zuora:\n  endpoint: https://rest.zuora.com\n  client_id: a\n  client_secret: b\n  api: soap\n  username: u\n  password: p\n" +
			"  soap_endpoint: ftp://zuora.com/apps/services/a/119.0\nsources:\n  - {name: a, type: local, path: x}\n",
			`zuora.soap_endpoint: api: soap needs the SOAP URL`},
		{"every interface without auth", "http: 0.0.0.0:8321\nsources:\n  - {name: a, type: local, path: x}\n",
			`line 1: http: listening on 0.0.0.0:8321 needs http_auth (token_file, or user and password_file)`},
		{"no host is every interface", "http: :8321\nsources:\n  - {name: a, type: local, path: x}\n",
			`http: listening on :8321 needs http_auth`},
		{"not an address", "http: localhost\nsources:\n  - {name: a, type: local, path: x}\n",
			`line 1: http: must be host:port, e.g. 127.0.0.1:8321, or "off" (got "localhost")`},
		{"user without password", "http_auth:\n  user: ops\nsources:\n  - {name: a, type: local, path: x}\n",
			`line 2: http_auth.user: user and password_file go together (got "ops")`},
		{"negative limit", "limits:\n  max_columns: -1\nsources:\n  - {name: a, type: local, path: x}\n",
			`line 2: limits.max_columns: must be 0 (the default) or more (got "-1")`},
		{"object API cannot carry a column", "zuora:\n  api: object\n  columns: [ACCOUNT_ID, UOM, QTY, STARTDATE, ENDDATE, SUBSCRIPTION_ID, CHARGE_ID, PRODUCT_RATE_PLAN_CHARGE_ID]\nsources:\n  - {name: a, type: local, path: x}\n",
			`zuora.columns[7]: api: object cannot carry it (the Usage object has no such field); use api: file (got "PRODUCT_RATE_PLAN_CHARGE_ID")`},
		{"bad column", "sources:\n  - name: a\n    type: local\n    path: x\n    columns:\n      ACCOUNT: Acct\n",
			"sources[0].columns.ACCOUNT: maps a column that Zuora's template does not have"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(strings.NewReader("zuora:\n  client_secret_file: " + p + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Zuora.ClientSecret.Value() != "from-file" {
		t.Fatalf("secret = %q", c.Zuora.ClientSecret.Value())
	}
	if c.Zuora.ClientSecret.String() != "**redacted**" {
		t.Fatal("secret prints itself")
	}
}

func TestValidateAcceptsLoopbackAndHTTPS(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"loopback sim over http", "zuora:\n  endpoint: http://127.0.0.1:8320\n  client_id: a\n  client_secret: b\n"},
		{"localhost over http", "zuora:\n  endpoint: http://localhost:8320\n  client_id: a\n  client_secret: b\n"},
		{"ipv6 loopback", "zuora:\n  endpoint: http://[::1]:8320\n  client_id: a\n  client_secret: b\n"},
		{"https", "zuora:\n  endpoint: https://rest.zuora.com\n  client_id: a\n  client_secret: b\n"},
		{"region name", "zuora:\n  endpoint: eu-sandbox\n  client_id: a\n  client_secret: b\n"},
		{"http off", "http: \"off\"\n"},
		{"loopback listen needs no auth", "http: 127.0.0.1:0\n"},
		{"ipv6 loopback listen", "http: \"[::1]:8321\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml + "sources:\n  - {name: a, type: local, path: x}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHTTPAuthFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("token", "0123456789abcdef-token\n")
	short := write("short", "abc\n")
	pass := write("pass", "pa55word\r\n")
	empty := write("empty", "\n")
	tests := []struct {
		name, yaml, err       string
		token, user, password string
	}{
		{name: "bearer off loopback", yaml: "http: 0.0.0.0:8321\nhttp_auth:\n  token_file: " + token + "\n",
			token: "0123456789abcdef-token"},
		{name: "basic off loopback", yaml: "http: 0.0.0.0:8321\nhttp_auth:\n  user: ops\n  password_file: " + pass + "\n",
			user: "ops", password: "pa55word"},
		{name: "short token", yaml: "http_auth:\n  token_file: " + short + "\n",
			err: "line 2: http_auth.token_file: must hold a token of at least 16 characters"},
		{name: "empty password", yaml: "http_auth:\n  user: ops\n  password_file: " + empty + "\n",
			err: "line 3: http_auth.password_file: must hold a password"},
		{name: "both", yaml: "http_auth:\n  token_file: " + token + "\n  user: ops\n  password_file: " + pass + "\n",
			err: "http_auth.token_file: choose token_file or user with password_file, not both"},
		{name: "colon in user", yaml: "http_auth:\n  user: a:b\n  password_file: " + pass + "\n",
			err: "http_auth.user: must not contain a colon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml + "sources:\n  - {name: a, type: local, path: x}\n"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v\nwant it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := c.HTTPAuth
			if a.Token.Value() != tt.token || a.User != tt.user || a.Password.Value() != tt.password {
				t.Fatalf("auth = %q %q %q", a.Token.Value(), a.User, a.Password.Value())
			}
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" && strings.Contains(string(out), tt.token) || tt.password != "" && strings.Contains(string(out), tt.password) {
				t.Fatalf("printed config leaks the secret:\n%s", out)
			}
		})
	}
	if _, err := Parse(strings.NewReader("http_auth:\n  token_file: " + filepath.Join(dir, "missing") + "\n")); err == nil ||
		!strings.Contains(err.Error(), "http_auth.token_file") {
		t.Fatalf("missing token file: err = %v", err)
	}
}
