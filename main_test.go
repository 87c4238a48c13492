package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"usagedrop/config"
	"usagedrop/internal/testutil"
	"usagedrop/zuorasim"
)

// binary is usagedrop built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "usagedrop-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "usagedrop")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build usagedrop: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestCheckNamesBadRows(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", testutil.CopyFixture(t, "bad-rows.csv")}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"bad-rows.csv:8: UOM: ", "bad-rows.csv:13: STARTDATE: ", "bad-rows.csv:21: QTY: ", "bad-rows.csv:31: ACCOUNT_ID: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "(got "); n != 4 {
		t.Errorf("%d problems reported, want 4:\n%s", n, out.String())
	}
}

func TestCheckWritesTemplate(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out.csv")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "-o", dst, testutil.CopyFixture(t, "eu-export.csv")}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 151 || !strings.HasPrefix(lines[0], "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION") {
		t.Fatalf("template has %d lines, header %q", len(lines), lines[0])
	}
	if !strings.Contains(lines[1], "03/26/2026") || !strings.Contains(lines[1], "3.125") {
		t.Fatalf("first row not in Zuora's form: %q", lines[1])
	}
}

// Every command answers -h and --help with its flags and exit 0, and
// flags may follow the file names.
func TestHelpAndFlagsAfterFiles(t *testing.T) {
	for _, cmd := range []string{"run", "check", "status", "sim"} {
		for _, h := range []string{"-h", "--help"} {
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{cmd, h}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage of "+cmd) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", cmd, h, code, out.String(), errb.String())
			}
		}
	}
	dst := filepath.Join(t.TempDir(), "out.csv")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", testutil.CopyFixture(t, "eu-export.csv"), "-o", dst}, &out, &errb); code != 0 {
		t.Fatalf("check FILE -o OUT: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if b, err := os.ReadFile(dst); err != nil || !bytes.HasPrefix(b, []byte("ACCOUNT_ID,")) {
		t.Fatalf("check FILE -o OUT wrote %q, %v", b, err)
	}
	if code := run(context.Background(), []string{"run", "stray-argument"}, &out, &errb); code != 2 {
		t.Fatalf("run with a stray argument: exit %d, want 2", code)
	}
}

// SIGHUP (logrotate habits, systemctl reload) no longer ends the daemon:
// it says so in the log and goes on; SIGTERM still stops it cleanly.
func TestSIGHUPKeepsRunning(t *testing.T) {
	d := newDaemon(t)
	cmd := d.start()
	if !waitLog(&d.logs, "usagedrop running", 1, 10*time.Second) {
		cmd.Process.Kill()
		t.Fatalf("daemon never ran:\n%s", d.logs.String())
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if !waitLog(&d.logs, "SIGHUP", 1, 5*time.Second) {
		cmd.Process.Kill()
		t.Fatalf("no word of the SIGHUP:\n%s", d.logs.String())
	}
	d.drop(1)
	ok := d.waitImported(1, 20*time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon did not stop cleanly after the SIGHUP: %v", err)
	}
	if !ok {
		t.Fatalf("a drop after the SIGHUP was not imported:\n%s", d.logs.String())
	}
}

// A rejected drop is logged at WARN with its first problem, as plainly as
// an import is.
func TestRejectionLogged(t *testing.T) {
	d := newDaemon(t)
	b, err := os.ReadFile(testutil.CopyFixture(t, "bad-rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.dir, "drop", "bad-rows.csv"), b, 0o644)
	cmd := d.start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if !waitLog(&d.logs, "drop rejected", 1, 20*time.Second) {
		t.Fatalf("no rejection in the log:\n%s", d.logs.String())
	}
	var line string
	for _, l := range strings.Split(d.logs.String(), "\n") {
		if strings.Contains(l, "drop rejected") {
			line = l
		}
	}
	for _, want := range []string{"level=WARN", "name=bad-rows.csv", "problems=4", "line 8: UOM"} {
		if !strings.Contains(line, want) {
			t.Errorf("rejection line lacks %q: %s", want, line)
		}
	}
}

func TestBadConfigSaysKeyReasonValue(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("zuora:\n  endpoint: builtin\nsources:\n  - name: a\n    type: local\n    path: x\n    settle: -1s\n    date_format: D/M/Y\n"), 0o644)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"run", "-config", p}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), `line 8: sources[0].date_format: must be one of`) ||
		!strings.Contains(errb.String(), `(got "D/M/Y")`) {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
}

// daemon is one usagedrop process over a test folder.
type daemon struct {
	t    *testing.T
	dir  string
	cfg  string
	sim  *zuorasim.Sim
	logs logBuffer
	// env is added to every start's environment (the ledger's password).
	env []string
	// kind is the ledger's: "bbolt" or "postgres".
	kind string
}

// crashLedgers are the ledgers the crash suite runs each case on.
var crashLedgers = []string{"bbolt", "postgres"}

// onLedger moves the daemon's ledger to kind: the bbolt file writeConfig
// names, or a database of its own on the test binary's PostgreSQL server,
// leased under the daemon's instance name with the default lease, as a
// daemon of a fleet runs.
func (d *daemon) onLedger(kind string) {
	d.t.Helper()
	d.kind = kind
	if kind == "bbolt" {
		return
	}
	db := testutil.Postgres(d.t)
	cfg, err := os.ReadFile(d.cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	old := "ledger: " + d.dir + "/ledger.db\n"
	if !bytes.Contains(cfg, []byte(old)) {
		d.t.Fatalf("config %s names no bbolt ledger to replace", d.cfg)
	}
	cfg = bytes.Replace(cfg, []byte(old), []byte("ledger: "+db.DSNNoPassword+"\n"), 1)
	if err := os.WriteFile(d.cfg, cfg, 0o600); err != nil {
		d.t.Fatal(err)
	}
	d.env = append(d.env, "PGPASSWORD="+db.Password)
}

func newDaemon(t *testing.T) *daemon {
	t.Helper()
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 30 * time.Millisecond})
	url := httptestServer(t, sim)
	d := &daemon{t: t, dir: t.TempDir(), sim: sim}
	d.cfg = writeConfig(t, d.dir, "crashy", url, fmt.Sprintf("name: drop\n    type: local\n    path: %s/drop\n", d.dir))
	os.MkdirAll(filepath.Join(d.dir, "drop"), 0o755)
	return d
}

// start runs the daemon with extra environment variables.
func (d *daemon) start(env ...string) *exec.Cmd {
	return spawn(d.t, d.cfg, &d.logs, append(slices.Clip(d.env), env...)...)
}

// writeConfig writes a daemon config for the tests into dir: quick polls,
// settling and backoffs, no status endpoint, and one source, given as its
// YAML keys after "- " (name first). It returns the file's path.
func writeConfig(t *testing.T, dir, instance, zuoraURL, source string) string {
	t.Helper()
	cfg := fmt.Sprintf(`instance: %s
ledger: %s/ledger.db
spool: %s/spool
http: "off"
workers: 4
zuora:
  endpoint: %s
  client_id: test
  client_secret: test-secret
  poll: 100ms
  backoff: 10ms
  backoff_max: 300ms
sources:
  - interval: 200ms
    %s`, instance, dir, dir, zuoraURL, source)
	if !strings.Contains(source, "settle:") {
		cfg += "    settle: 100ms\n"
	}
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// spawn starts the built daemon on cfg, its stderr going to logs.
func spawn(t *testing.T, cfg string, logs *logBuffer, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "run", "-config", cfg)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// drop writes n distinct template files into the drop folder.
func (d *daemon) drop(n int) {
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(d.t), "partner-template.csv"))
	if err != nil {
		d.t.Fatal(err)
	}
	for i := range n {
		body := strings.ReplaceAll(string(b), "Line one", fmt.Sprintf("Line one #%d", i))
		p := filepath.Join(d.dir, "drop", fmt.Sprintf("usage-%d.csv", i))
		if err := os.WriteFile(p+".part", []byte(body), 0o644); err != nil {
			d.t.Fatal(err)
		}
		os.Rename(p+".part", p)
	}
}

// waitImported waits until n files and their reports are in imported/.
// The reports are written before the file is moved, so a report alone
// may be what a crash left, with its file still in processing/ for the
// next start to finish (see also waitProcessed).
func (d *daemon) waitImported(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		reports, _ := filepath.Glob(filepath.Join(d.dir, "drop", "imported", "usage-*.csv.status.txt"))
		files, _ := filepath.Glob(filepath.Join(d.dir, "drop", "imported", "usage-*.csv"))
		if len(reports) >= n && len(files) >= n {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// waitKilled waits for cmd, started with a crash point, to die of the
// SIGKILL it sends itself there (or the test sends it), and fails the
// test if it exits otherwise or never gets there.
func (d *daemon) waitKilled(t *testing.T, cmd *exec.Cmd, point string) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("daemon exited (%v) without being killed at %s:\n%s", err, point, d.logs.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("daemon never reached %s:\n%s", point, d.logs.String())
	}
}

// waitProcessed waits until nothing is left in processing/. A crash
// between linking a file into imported/ and removing its name in
// processing/ leaves it in both, for the next start to finish.
func (d *daemon) waitProcessed(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if left, _ := filepath.Glob(filepath.Join(d.dir, "drop", "processing", "*", "*")); len(left) == 0 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// The daemon is killed with SIGKILL right after each ledger transition in
// turn, with the simulator also losing the answer to the first upload,
// on a bbolt ledger and on a leased PostgreSQL one. After a restart every
// record is in Zuora exactly once and every file is in imported/ with its
// report; on PostgreSQL the restarted daemon resumes its own drops at
// once, without waiting for their lease to run out.
func TestCrashAtEveryTransition(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon ~40 times")
	}
	points := []string{"discovered", "claimed", "fetched", "converted", "submitted", "accepted", "polled", "done", "finished",
		"submitted:2", "polled:3"}
	for _, kind := range crashLedgers {
		for _, point := range points {
			t.Run(kind+"/"+point, func(t *testing.T) {
				t.Parallel() // each case has its own folder, simulator and ledger
				d := newDaemon(t)
				d.onLedger(kind)
				d.sim.SetFaults(zuorasim.Faults{DropAfterRead: 1})
				const files = 3
				d.drop(files)
				cmd := d.start("USAGEDROP_CRASH_AT=" + point)
				d.waitKilled(t, cmd, point)

				restarted := time.Now()
				cmd = d.start()
				ok := d.waitImported(files, 30*time.Second) && d.waitProcessed(10*time.Second)
				d.resumedOwn(restarted, ok)
				// The files may all have been finished before the crash: wait
				// until the daemon runs, or the SIGTERM would land before Go
				// has installed its handler and kill the process outright.
				waitLog(&d.logs, "usagedrop running", 2, 10*time.Second) // this daemon's, after the first's
				cmd.Process.Signal(syscall.SIGTERM)
				if err := cmd.Wait(); err != nil {
					t.Errorf("daemon did not stop cleanly on SIGTERM: %v", err)
				}
				if !ok {
					t.Fatalf("files not all imported after restart:\n%s", d.logs.String())
				}
				if n := len(d.sim.Records()); n != files*1000 {
					t.Fatalf("zuora holds %d records, want %d exactly once\n%s", n, files*1000, d.logs.String())
				}
				left, _ := filepath.Glob(filepath.Join(d.dir, "drop", "processing", "*", "*"))
				failed, _ := filepath.Glob(filepath.Join(d.dir, "drop", "failed", "*"))
				if len(left)+len(failed) > 0 {
					t.Fatalf("files left behind: processing %v, failed %v", left, failed)
				}
			})
		}
	}
}

// resumedOwn logs how long a daemon restarted after a crash took to
// finish the drops. On a leased PostgreSQL ledger it checks that the
// daemon, under the same instance name, resumed its own drops at once:
// none taken over as lapsed, all finished (ok) within the lease they
// were held under.
func (d *daemon) resumedOwn(restarted time.Time, ok bool) {
	d.t.Helper()
	took := time.Since(restarted)
	d.t.Logf("%s: restart to the last drop finished: %s", d.kind, took.Round(10*time.Millisecond))
	if d.kind != "postgres" {
		return
	}
	if !strings.Contains(d.logs.String(), `ledger="postgres://`) {
		d.t.Fatalf("the daemon does not say it runs on a PostgreSQL ledger:\n%s", d.logs.String())
	}
	if strings.Contains(d.logs.String(), "took over a drop whose lease ran out") {
		d.t.Errorf("the restarted daemon waited out its own leases and took its drops over:\n%s", d.logs.String())
	}
	if ok && took >= config.DefaultLedgerLease {
		d.t.Errorf("the restarted daemon took %s to finish its own drops, a lease (%s) or more", took, config.DefaultLedgerLease)
	}
}

// A second daemon on the same ledger exits at once with a clear message.
func TestSecondDaemonOnLedgerExits(t *testing.T) {
	d := newDaemon(t)
	first := d.start()
	defer func() { first.Process.Signal(syscall.SIGTERM); first.Wait() }()
	time.Sleep(500 * time.Millisecond)
	var logs logBuffer
	second := exec.Command(binary, "run", "-config", d.cfg)
	second.Stderr = &logs
	start := time.Now()
	err := second.Run()
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("second daemon: err=%v after %v", err, time.Since(start))
	}
	if !strings.Contains(logs.String(), "is another usagedrop running?") {
		t.Fatalf("second daemon's message:\n%s", logs.String())
	}
}

// While the daemon runs, `status` reads its status endpoint, and /metrics
// and /healthz answer.
func TestStatusAndMetricsWhileRunning(t *testing.T) {
	d := newDaemon(t)
	addr := freeAddr(t)
	cfg, _ := os.ReadFile(d.cfg)
	os.WriteFile(d.cfg, bytes.Replace(cfg, []byte(`http: "off"`), []byte("http: "+addr), 1), 0o600)
	cmd := d.start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	d.drop(1)
	if !d.waitImported(1, 20*time.Second) {
		t.Fatalf("not imported:\n%s", d.logs.String())
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"status", "-config", d.cfg, "-json"}, &out, &errb); code != 0 {
		t.Fatalf("status exit %d: %s", code, errb.String())
	}
	var e struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Parts []struct {
			ImportID    string `json:"import_id"`
			ZuoraStatus string `json:"zuora_status"`
		} `json:"parts"`
	}
	if err := json.Unmarshal(out.Bytes(), &e); err != nil {
		t.Fatalf("status -json: %v\n%s", err, out.String())
	}
	if e.Name != "usage-0.csv" || e.State != "done" || len(e.Parts) != 1 || e.Parts[0].ZuoraStatus != "Completed" || e.Parts[0].ImportID == "" {
		t.Fatalf("status: %+v", e)
	}
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/metrics": `usagedrop_records_imported_total{source="drop"} 1000`,
	} {
		b, code := httpGet(t, "http://"+addr+path)
		if code != 200 || !strings.Contains(b, want) {
			t.Errorf("%s: %d, want %q in:\n%.2000s", path, code, want, b)
		}
	}
}

// httptestServer serves h on loopback until the test ends.
func httptestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// freeAddr is a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) (string, int) {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// logBuffer collects a daemon's stderr; tests read it while the process
// still writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits until logs hold want n times, or timeout passes; it
// reports whether they do.
func waitLog(logs *logBuffer, want string, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for strings.Count(logs.String(), want) < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
