package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/zuorasim"
)

// End-to-end tests of the operator's commands (status, retry, forget,
// export): each against a daemon that holds the ledger, through its API,
// and without one, on the ledger file.

// cli runs a usagedrop command in this process.
func cli(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// withAPI gives d's daemon an HTTP API on a free loopback address.
func withAPI(t *testing.T, d *daemon) {
	cfg, err := os.ReadFile(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(d.cfg, bytes.Replace(cfg, []byte(`http: "off"`), []byte("http: "+freeAddr(t)), 1), 0o600)
}

// running starts d's daemon until the test ends (or stop is called).
func running(t *testing.T, d *daemon) (stop func()) {
	cmd := d.start()
	if !waitLog(&d.logs, "usagedrop running", strings.Count(d.logs.String(), "usagedrop running")+1, 10*time.Second) {
		cmd.Process.Kill()
		t.Fatalf("daemon did not start:\n%s", d.logs.String())
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("daemon: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// drops returns what `status -json` says of the drops in states, once
// there are n of them, finished unless working says otherwise.
func drops(t *testing.T, cfg, states string, n int) []ledger.Entry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errs := cli("status", "-config", cfg, "-json", "-state", states)
		var got []ledger.Entry
		for line := range strings.Lines(out) {
			var e ledger.Entry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("status -json: %v: %s", err, line)
			}
			if e.Finished || states == "waiting" {
				got = append(got, e)
			}
		}
		if code == 0 && len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("status -state %s: exit %d, %d of %d drops:\n%s%s", states, code, len(got), n, out, errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// redrop copies a file's bytes into the drop folder under name.
func redrop(t *testing.T, d *daemon, from, name string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(d.dir, "drop", name+".part")
	os.WriteFile(tmp, b, 0o644)
	os.Rename(tmp, filepath.Join(d.dir, "drop", name))
}

func mustSay(t *testing.T, what string, code, want int, out string, says ...string) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: exit %d, want %d:\n%s", what, code, want, out)
	}
	for _, s := range says {
		if !strings.Contains(out, s) {
			t.Fatalf("%s does not say %q:\n%s", what, s, out)
		}
	}
}

// A re-drop of imported bytes is a duplicate; once the first drop is
// forgotten, the same bytes are imported again. Through a running
// daemon, with refusals for what cannot be forgotten or sent again.
func TestForgetThenRedropImports(t *testing.T) {
	d := newDaemon(t)
	withAPI(t, d)
	running(t, d)
	d.drop(1)
	first := drops(t, d.cfg, "imported", 1)[0]
	redrop(t, d, filepath.Join(d.dir, "drop", "imported", "usage-0.csv"), "again.csv")
	dup := drops(t, d.cfg, "duplicate", 1)[0]
	if dup.DuplicateOf != first.ID {
		t.Fatalf("duplicate of %q, want %s", dup.DuplicateOf, first.ID)
	}

	code, out, errs := cli("forget", first.SHA256[:12], "-config", d.cfg)
	mustSay(t, "forget without -yes", code, 1, out+errs, "would forget drop "+first.ID, "add -yes")
	code, out, errs = cli("forget", "-config", d.cfg, "-yes", dup.ID)
	mustSay(t, "forget of a duplicate", code, 1, out+errs, "forget that drop instead")
	code, out, errs = cli("retry", first.ID, "-config", d.cfg)
	mustSay(t, "retry of an imported drop", code, 1, out+errs, "would import its usage twice", "usagedrop forget "+first.ID)
	code, out, errs = cli("retry", dup.ID, "-config", d.cfg)
	mustSay(t, "retry of a duplicate", code, 1, out+errs, "retry that drop instead")
	if e := drops(t, d.cfg, "forgotten", 0); len(e) != 0 {
		t.Fatalf("forgotten without -yes: %+v", e)
	}

	code, out, errs = cli("forget", first.SHA256[:12], "-yes", "-config", d.cfg)
	mustSay(t, "forget -yes", code, 0, out+errs, "forgot drop "+first.ID)
	redrop(t, d, filepath.Join(d.dir, "drop", "imported", "usage-0.csv"), "third.csv")
	imported := drops(t, d.cfg, "imported", 2)
	if n := len(d.sim.Records()); n != 2000 {
		t.Fatalf("zuora holds %d records, want the forgotten bytes imported twice (2000)", n)
	}
	if imported[1].Name != "third.csv" || imported[1].Generation != first.Generation+1 {
		t.Fatalf("re-drop after forget: %s, generation %d", imported[1].Name, imported[1].Generation)
	}
	code, out, errs = cli("status", first.ID, "-config", d.cfg)
	mustSay(t, "status ID", code, 0, out+errs, "(forgotten: the same bytes may be dropped again)", "forgotten at an operator's request", "history", "discovered")
}

// A drop that failed at Zuora is sent again by `retry` through the
// running daemon: taken from failed/, imported under new keys.
func TestRetryFailedImportThroughDaemon(t *testing.T) {
	d := newDaemon(t)
	withAPI(t, d)
	d.sim.SetFaults(zuorasim.Faults{FailImports: 1})
	running(t, d)
	d.drop(1)
	failed := drops(t, d.cfg, "failed", 1)[0]
	code, out, errs := cli("retry", failed.ID, "-config", d.cfg)
	mustSay(t, "retry", code, 0, out+errs, "will be sent again now from failed/usage-0.csv")
	if !d.waitImported(1, 30*time.Second) {
		t.Fatalf("not imported after retry:\n%s", d.logs.String())
	}
	if n := len(d.sim.Records()); n != 1000 {
		t.Fatalf("zuora holds %d records, want 1000", n)
	}
	code, out, errs = cli("status", "usage-0.csv", "-config", d.cfg)
	mustSay(t, "status NAME", code, 0, out+errs, "imported", "sent again", "1 time(s)", "taken again from failed/usage-0.csv",
		"generation")
	if _, err := os.Stat(filepath.Join(d.dir, "drop", "failed", "usage-0.csv")); !os.IsNotExist(err) {
		t.Fatalf("file still in failed/: %v", err)
	}
}

// A drop waiting out a Zuora outage is tried at once by `retry`, and is
// imported once Zuora answers again.
func TestRetryWaitingDrop(t *testing.T) {
	d := newDaemon(t)
	withAPI(t, d)
	d.sim.SetFaults(zuorasim.Faults{ServerErrors: 1 << 30})
	running(t, d)
	d.drop(1)
	w := drops(t, d.cfg, "waiting", 1)[0]
	code, out, errs := cli("retry", w.ID, "-config", d.cfg)
	mustSay(t, "retry of a waiting drop", code, 0, out+errs, "waiting for Zuora since", "will be tried now")
	d.sim.SetFaults(zuorasim.Faults{})
	if !d.waitImported(1, 30*time.Second) {
		t.Fatalf("not imported:\n%s", d.logs.String())
	}
	code, out, errs = cli("status", w.ID, "-config", d.cfg)
	mustSay(t, "status ID", code, 0, out+errs, "an operator asked for a try now")
}

// Without a daemon the commands work on the ledger file: status filters,
// export in both formats (formulas neutralised), retry and forget, which
// the daemon then acts on at its next start. Export through the daemon
// gives the same bytes as from the file.
func TestOpsWithoutDaemon(t *testing.T) {
	d := newDaemon(t)
	withAPI(t, d)
	d.sim.SetFaults(zuorasim.Faults{FailImports: 1})
	stop := running(t, d)
	d.drop(1)
	failed := drops(t, d.cfg, "failed", 1)[0]
	b, _ := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	os.WriteFile(filepath.Join(d.dir, "drop", "=HYPERLINK(1).csv"), bytes.ReplaceAll(b, []byte("Line one"), []byte("Other line")), 0o644)
	imported := drops(t, d.cfg, "imported", 1)[0]
	stop()

	code, out, errs := cli("status", "-config", d.cfg, "-state", "failed,rejected")
	mustSay(t, "status -state", code, 0, out+errs, failed.ID, "usage-0.csv")
	if strings.Contains(out, imported.ID) {
		t.Fatalf("status -state failed lists an imported drop:\n%s", out)
	}
	code, out, errs = cli("status", "-config", d.cfg, "-state", "sideways")
	mustSay(t, "status -state sideways", code, 1, out+errs, `"sideways": not a state`)

	code, out, errs = cli("export", "-config", d.cfg, "-format", "csv")
	mustSay(t, "export csv", code, 0, out+errs)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 3 || !slices.Equal(rows[0], exportColumns) {
		t.Fatalf("export csv: %v, %d rows:\n%s", err, len(rows), out)
	}
	if rows[2][2] != "'=HYPERLINK(1).csv" || rows[2][3] != "done" || rows[1][3] != "failed" {
		t.Fatalf("export csv rows: %q\n%q", rows[1], rows[2])
	}
	code, out, _ = cli("export", "-since", "1h", "-config", d.cfg)
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"history":[`) {
		t.Fatalf("export -since 1h: exit %d:\n%s", code, out)
	}
	if code, out, _ = cli("export", "-config", d.cfg, "-since", "2099-01-01"); code != 0 || out != "" {
		t.Fatalf("export -since a future date: exit %d: %q", code, out)
	}
	code, out, errs = cli("export", "-config", d.cfg, "-format", "xml")
	mustSay(t, "export -format xml", code, 1, out+errs, "use jsonl or csv")

	code, out, errs = cli("retry", failed.ID, "-config", d.cfg)
	mustSay(t, "retry without a daemon", code, 0, out+errs, "as soon as the daemon starts")
	code, out, errs = cli("forget", imported.ID, "-config", d.cfg, "-yes")
	mustSay(t, "forget without a daemon", code, 0, out+errs, "forgot drop "+imported.ID)

	stop = running(t, d)
	if !d.waitImported(1, 30*time.Second) {
		t.Fatalf("the drop sent again was not imported:\n%s", d.logs.String())
	}
	drops(t, d.cfg, "imported", 2)
	_, viaDaemon, errs := cli("export", "-config", d.cfg, "-format", "csv")
	if errs != "" {
		t.Fatal(errs)
	}
	stop()
	_, direct, _ := cli("export", "-config", d.cfg, "-format", "csv")
	if viaDaemon != direct || strings.Count(direct, "\n") != 3 {
		t.Fatalf("export through the daemon differs from the ledger's:\n%s\n---\n%s", viaDaemon, direct)
	}
}

// Every operator command answers -h and --help with exit 0.
func TestOpsHelp(t *testing.T) {
	for _, cmd := range []string{"status", "retry", "forget", "export"} {
		for _, h := range []string{"-h", "--help"} {
			if code, out, errs := cli(cmd, h); code != 0 || !strings.Contains(out, "Usage of "+cmd) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", cmd, h, code, out, errs)
			}
		}
	}
	if code, _, _ := cli("retry"); code != 2 {
		t.Errorf("retry with no ID: exit %d, want 2", code)
	}
}

// The operator endpoints need the API's credentials; a write from a
// browser on another site is refused even with them (a browser sends a
// status page's basic auth along with any request); an unknown drop is
// 404 and a refusal 409 with its reason.
func TestOpsEndpointsGuarded(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("0123456789abcdef-secret\n"), 0o600)
	r := newAPIRig(t, authFrom(t, "http_auth:\n  token_file: "+tokenFile+"\n"), nil)
	r.add(450, "usage", nil)
	do := func(method, path string, set func(*http.Request)) (int, string) {
		req, _ := http.NewRequest(method, r.base+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	token := func(req *http.Request) { req.Header.Set("Authorization", "Bearer 0123456789abcdef-secret") }
	crossSite := func(req *http.Request) { token(req); req.Header.Set("Sec-Fetch-Site", "cross-site") }
	id := r.ids[0]
	for _, c := range []struct {
		method, path string
		set          func(*http.Request)
		code         int
		says         string
	}{
		{"POST", "/v1/drops/" + id + "/retry", nil, 401, "credentials needed"},
		{"POST", "/v1/drops/" + id + "/forget", nil, 401, "credentials needed"},
		{"GET", "/v1/export", nil, 401, "credentials needed"},
		{"POST", "/v1/drops/" + id + "/retry", crossSite, 403, ""},
		{"POST", "/v1/drops/" + id + "/forget", crossSite, 403, ""},
		{"POST", "/v1/drops/nope/retry", token, 404, "no drop with that id"},
		{"GET", "/v1/drops/" + id + "/forget", token, 409, "still being worked on"},
		{"POST", "/v1/drops/" + id + "/retry", token, 200, "will be tried now"},
		{"GET", "/v1/export?format=xml", token, 400, "use jsonl or csv"},
		{"GET", "/v1/export?state=sideways", token, 400, "not a state"},
	} {
		code, body := do(c.method, c.path, c.set)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, code, body, c.code, c.says)
		}
	}
	// The export streams every drop, past its batches, oldest first.
	code, body := do("GET", "/v1/export?history=0", token)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || len(lines) != 450 || !strings.Contains(lines[449], `"name":"usage-449"`) || strings.Contains(body, `"history"`) {
		t.Fatalf("export: %d, %d lines, last %.200s", code, len(lines), lines[len(lines)-1])
	}
}
