package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"usagedrop/internal/testutil"
	"usagedrop/zuorasim"
)

// runCmd runs the CLI in process and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// `config check` says "ok" with a summary, or lists every problem of the
// file in file order with exit 1; the daemon refuses the same file at
// start with the same list.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		yaml string
		code int
		want []string // the lines of stdout, each a prefix
	}{
		{
			name: "good",
			yaml: "zuora:\n  endpoint: us-sandbox\n  client_id: abc\n  client_secret: s3cret-value\n" +
				"sources:\n  - {name: finance, type: local, path: /srv/usage}\n  - {name: partner, type: s3, bucket: drops, prefix: in/}\n",
			want: []string{`ok: 2 sources: finance (local /srv/usage), partner (s3 s3://drops/in/); Zuora: sandbox tenant https://rest.apisandbox.zuora.com (us-sandbox), api file`},
		},
		{
			name: "built in",
			yaml: "sources:\n  - {name: drop, type: local, path: drop}\n",
			want: []string{`ok: 1 source: drop (local drop); Zuora: the built-in simulator (nothing reaches a real tenant), api file`},
		},
		{
			name: "four mistakes",
			code: 1,
			yaml: `workers: two
zuora:
  endpoint: us-sandbox
  client_id: abc
  client_secret: s3cret-value
  date_format: YYYY/MM/DD
sources:
  - name: finance
    type: local
    path: /srv/usage
    setle: 2s
    interval: every minute
`,
			want: []string{
				`line 1: workers: must be a number (got "two")`,
				`line 6: zuora.date_format: must be MM/DD/YYYY (en_US API user) or DD/MM/YYYY (en_GB, en_AU) (got "YYYY/MM/DD")`,
				`line 11: sources[0].setle: unknown key (did you mean "settle"?)`,
				`line 12: sources[0].interval: must be a duration like 2s or 5m (got "every minute")`,
			},
		},
		{
			name: "syntax",
			code: 1,
			yaml: "zuora:\n  endpoint: builtin\n  columns: [ACCOUNT_ID, UOM\nsources: []\n",
			want: []string{`line 3: the file is not valid YAML: did not find expected ',' or ']'`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml", tt.yaml)
			code, out, errs := runCmd(t, "config", "check", p)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tt.want), out)
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], want)
				}
			}
			if strings.Contains(out+errs, "s3cret-value") {
				t.Errorf("the secret is printed:\n%s%s", out, errs)
			}
			if tt.code == 0 {
				return
			}
			// The daemon at start: the same list.
			code, _, errs = runCmd(t, "run", "-config", p)
			if code != 1 {
				t.Fatalf("run: exit %d, want 1\n%s", code, errs)
			}
			for _, l := range lines {
				if !strings.Contains(errs, "\n  "+l+"\n") {
					t.Errorf("run does not say %q:\n%s", l, errs)
				}
			}
		})
	}
}

func TestConfigAndTestCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{"config", "--help"}, {"config", "-h"}, {"config", "check", "--help"}, {"config", "check", "-h"},
		{"test", "--help"}, {"test", "-h"},
	} {
		if code, out, errs := runCmd(t, args...); code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	for _, args := range [][]string{{"config"}, {"config", "check"}, {"test", "stray"}} {
		if code, _, _ := runCmd(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, errs := runCmd(t, "config", "lint", "x.yaml"); code != 1 || !strings.Contains(errs, `unknown command "lint"`) {
		t.Errorf("config lint: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCmd(t, "config", "check", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("config check of a missing file: exit %d, stderr %q", code, errs)
	}
}

// testRig is what `usagedrop test` is pointed at: a simulator that wants
// credentials, a local folder, an S3 bucket and an SFTP folder, each
// holding one file that must still be there, unclaimed, afterwards.
type testRig struct {
	dir, zuoraURL string
	sim           *zuorasim.Sim
	s3            *testutil.S3
	sftp          *testutil.SFTP
	local         string
	sftpDir       string
}

const (
	rigClientID     = "ops-client"
	rigClientSecret = "zuora-secret-4f1c9"
)

func newTestRig(t *testing.T) *testRig {
	t.Helper()
	r := &testRig{dir: t.TempDir()}
	r.sim = zuorasim.New(zuorasim.Options{ClientID: rigClientID, ClientSecret: rigClientSecret})
	r.zuoraURL = httptestServer(t, r.sim)
	r.local = filepath.Join(r.dir, "drop")
	os.MkdirAll(r.local, 0o755)
	writeFile(t, r.local, "march.csv", "x")
	r.s3 = testutil.NewS3(t)
	if _, err := r.s3.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(r.s3.Bucket), Key: aws.String("incoming/march.csv"), Body: strings.NewReader("x"),
	}); err != nil {
		t.Fatal(err)
	}
	r.sftp = testutil.NewSFTP(t)
	r.sftpDir = filepath.Join(r.sftp.Root, "outgoing")
	os.MkdirAll(r.sftpDir, 0o755)
	writeFile(t, r.sftpDir, "march.csv", "x")
	os.MkdirAll(filepath.Join(r.dir, "spool"), 0o755)
	return r
}

// config writes a config for the rig with the given client secret and
// SFTP known_hosts file.
func (r *testRig) config(t *testing.T, secret, knownHosts string) string {
	t.Helper()
	return writeFile(t, r.dir, "config.yaml", fmt.Sprintf(`ledger: %[1]s/ledger.db
spool: %[1]s/spool
zuora:
  endpoint: %[2]s
  client_id: %[3]s
  client_secret: %[4]s
sources:
  - name: finance
    type: local
    path: %[5]s
  - name: partner-s3
    type: s3
    bucket: %[6]s
    prefix: incoming/
    region: %[7]s
    endpoint: %[8]s
    path_style: true
    access_key_id: %[9]s
    secret_access_key: %[10]s
  - name: partner-sftp
    type: sftp
    address: %[11]s
    user: %[12]s
    password: %[13]s
    known_hosts: %[14]s
    path: %[15]s
`, r.dir, r.zuoraURL, rigClientID, secret, r.local,
		r.s3.Bucket, r.s3.Region, r.s3.URL, r.s3.AccessKeyID, r.s3.SecretAccessKey,
		r.sftp.Addr, r.sftp.User, r.sftp.Password, knownHosts, r.sftpDir))
}

// untouched fails the test unless every file is where it was dropped and
// nothing reached Zuora but token requests.
func (r *testRig) untouched(t *testing.T) {
	t.Helper()
	for _, p := range []string{filepath.Join(r.local, "march.csv"), filepath.Join(r.sftpDir, "march.csv")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s moved: %v", p, err)
		}
	}
	for _, d := range []string{r.local, r.sftpDir} {
		for _, sub := range []string{"processing", "imported", "failed"} {
			if _, err := os.Stat(filepath.Join(d, sub)); err == nil {
				t.Errorf("%s/%s was created", d, sub)
			}
		}
	}
	out, err := r.s3.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(r.s3.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "incoming/march.csv" {
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		t.Errorf("bucket holds %q, want only incoming/march.csv", keys)
	}
	if n := len(r.sim.Imports()); n != 0 {
		t.Errorf("%d imports reached Zuora", n)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "ledger.db")); err == nil {
		t.Error("the ledger was created")
	}
	if entries, _ := os.ReadDir(filepath.Join(r.dir, "spool")); len(entries) != 0 {
		t.Errorf("the spool holds %d entries", len(entries))
	}
}

func (r *testRig) secrets() []string {
	return []string{rigClientSecret, r.s3.SecretAccessKey, r.sftp.Password}
}

func TestTestCommand(t *testing.T) {
	r := newTestRig(t)
	otherKey := testutil.NewSFTP(t).HostKey
	wrongHosts := writeFile(t, t.TempDir(), "known_hosts",
		"# a stale entry\n"+testutil.KnownHostsLine(r.sftp.Addr, otherKey)+"\n")
	tests := []struct {
		name       string
		secret     string
		knownHosts string
		code       int
		want       []string // the lines of stdout, each a prefix or, after "~", a part
	}{
		{
			name: "all reachable", secret: rigClientSecret, knownHosts: r.sftp.KnownHosts,
			want: []string{
				`ok   zuora: token for client "ops-client" from a server on this machine at ` + r.zuoraURL + ` (a simulator?)`,
				`ok   source finance (local ` + r.local + `): listed; 1 file(s) waiting`,
				`ok   source partner-s3 (s3 s3://` + r.s3.Bucket + `/incoming/): listed; 1 file(s) waiting`,
				`ok   source partner-sftp (sftp sftp://usage@` + r.sftp.Addr + r.sftpDir + `): host key verified, listed; 1 file(s) waiting`,
				`ok   spool ` + r.dir + `/spool: writable`,
				`ok   ledger ` + r.dir + `/ledger.db: does not exist yet; the daemon creates it in ` + r.dir + `, which is writable`,
			},
		},
		{
			name: "wrong client secret", secret: "not-the-secret", knownHosts: r.sftp.KnownHosts, code: 1,
			want: []string{
				`FAIL zuora: token from ` + r.zuoraURL + `: zuora token: Zuora refused the client credentials of client "ops-client"`,
				`ok   source finance`, `ok   source partner-s3`, `ok   source partner-sftp`, `ok   spool`, `ok   ledger`,
			},
		},
		{
			name: "wrong host key", secret: rigClientSecret, knownHosts: wrongHosts, code: 1,
			want: []string{
				`ok   zuora`, `ok   source finance`, `ok   source partner-s3`,
				`FAIL source partner-sftp (sftp sftp://usage@` + r.sftp.Addr + r.sftpDir + `): ~does not match ` + wrongHosts + `:2; it offered ssh-ed25519 SHA256:`,
				`ok   spool`, `ok   ledger`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens := r.sim.TokensIssued()
			// The flag after nothing, as typed; -timeout keeps a hang short.
			code, out, errs := runCmd(t, "test", "-config", r.config(t, tt.secret, tt.knownHosts), "-timeout", "20s")
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d:\n%s\nstderr:\n%s", len(lines), len(tt.want), out, errs)
			}
			for i, want := range tt.want {
				prefix, part, _ := strings.Cut(want, "~")
				if !strings.HasPrefix(lines[i], prefix) || !strings.Contains(lines[i], part) {
					t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], want)
				}
			}
			for _, s := range r.secrets() {
				if strings.Contains(out+errs, s) {
					t.Errorf("a secret is printed (%q):\n%s%s", s, out, errs)
				}
			}
			if got := r.sim.TokensIssued() - tokens; tt.code == 0 && got != 1 {
				t.Errorf("%d tokens issued, want 1", got)
			}
			r.untouched(t)
		})
	}
}

// With no config, `test` checks the embedded default: the simulator is
// built in, and a drop folder, spool and ledger not made yet are fine
// where their folder is writable; a spool that is a file is not.
func TestTestCommandDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, out, errs := runCmd(t, "test")
	if code != 0 || !strings.Contains(out, "ok   zuora: the built-in simulator") ||
		!strings.Contains(out, "ok   source drop (local drop): the folder does not exist yet") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "drop")); err == nil {
		t.Error("test made the drop folder")
	}
	p := writeFile(t, dir, "c.yaml", "spool: "+writeFile(t, dir, "spool", "")+"\nsources:\n  - {name: drop, type: local, path: drop}\n")
	code, out, _ = runCmd(t, "test", "-config", p)
	if code != 1 || !strings.Contains(out, "FAIL spool "+dir+"/spool: is a file") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	p = writeFile(t, dir, "bad.yaml", "sources:\n  - {name: drop, type: local, path: drop, setle: 2s}\n")
	code, out, _ = runCmd(t, "test", "-config", p)
	if code != 1 || !strings.Contains(out, `line 2: sources[0].setle: unknown key (did you mean "settle"?)`) ||
		!strings.Contains(out, "FAIL config") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// For api: soap, `test` also logs in to the SOAP endpoint, and says so
// when the password is refused.
func TestTestCommandSOAP(t *testing.T) {
	sim := zuorasim.New(zuorasim.Options{ClientID: rigClientID, ClientSecret: rigClientSecret})
	url := httptestServer(t, sim)
	dir := t.TempDir()
	for _, tt := range []struct {
		password string
		code     int
		want     string
	}{
		{rigClientSecret, 0, `ok   zuora soap: logged in at ` + url + `/apps/services/a/119.0 as "ops-client"`},
		{"wrong-password-77", 1, `FAIL zuora soap: login at ` + url + `/apps/services/a/119.0 as "ops-client": zuora login: SOAP fault INVALID_VALUE: Zuora refused the SOAP login`},
	} {
		p := writeFile(t, dir, "soap.yaml", fmt.Sprintf(`ledger: %[1]s/ledger.db
spool: %[1]s/spool
zuora:
  endpoint: %[2]s
  client_id: %[3]s
  client_secret: %[4]s
  api: soap
  soap_endpoint: %[2]s/apps/services/a/119.0
  username: %[3]s
  password: %[5]s
sources:
  - {name: drop, type: local, path: %[1]s}
`, dir, url, rigClientID, rigClientSecret, tt.password))
		code, out, errs := runCmd(t, "test", "-config", p)
		if code != tt.code || !strings.Contains(out, "\n"+tt.want) {
			t.Errorf("exit %d, want %d and %q:\n%s%s", code, tt.code, tt.want, out, errs)
		}
		if strings.Contains(out+errs, tt.password) || strings.Contains(out+errs, rigClientSecret) {
			t.Errorf("a secret is printed:\n%s%s", out, errs)
		}
	}
	if n := len(sim.Imports()); n != 0 {
		t.Errorf("%d imports reached Zuora", n)
	}
}
