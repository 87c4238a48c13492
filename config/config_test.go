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
		{"unknown key", "ledgr: x\n", "field ledgr not found"},
		{"unknown key's line, below comments and blanks", "# c\nledger: x\n\nzuora:\n  # c\n  clientid: a\n", "line 6: field clientid not found"},
		{"env value of an int is checked once expanded", "workers: ${NOT_A_NUMBER}\n", "cannot unmarshal"},
		{"unset env", "zuora:\n  client_id: ${NOPE_NOT_SET_42}\n", "NOPE_NOT_SET_42"},
		{"bad duration", "sources:\n  - name: a\n    type: local\n    path: /x\n    settle: soon\n", `not a duration like 2s or 5m (got "soon")`},
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
