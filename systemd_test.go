package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"usagedrop/config"
	"usagedrop/ledger"
	"usagedrop/pipeline"
	"usagedrop/zuorasim"
)

// notifySocket is systemd's end of NOTIFY_SOCKET: a unixgram socket that
// keeps every datagram the daemon sends, in order.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short path: a unix socket's name is at most 107 bytes.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

// all returns the datagrams received so far.
func (n *notifySocket) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// wait waits until a datagram after the first from matches re, and
// returns its index, or -1 after timeout.
func (n *notifySocket) wait(re *regexp.Regexp, from int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		msgs := n.all()
		for i := from; i < len(msgs); i++ {
			if re.MatchString(msgs[i]) {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

var (
	readyMsg     = regexp.MustCompile(`^READY=1$`)
	reloadingMsg = regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\n?$`)
	watchdogMsg  = regexp.MustCompile(`^WATCHDOG=1$`)
	statusMsg    = regexp.MustCompile(`^STATUS=no drops in progress`)
)

// Under systemd (a NOTIFY_SOCKET listener here): READY at start, the
// watchdog fed, STATUS= said; a SIGHUP that adds a source is framed by
// RELOADING=1 with MONOTONIC_USEC and READY=1, and the new source takes
// its first file; a bad config is refused with every problem in the log,
// and the old one keeps running.
func TestSystemdNotifyAndReload(t *testing.T) {
	d := newDaemon(t)
	n := listenNotify(t)
	cmd := d.start("NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=300000")
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	ready := n.wait(readyMsg, 0, 10*time.Second)
	if ready < 0 {
		t.Fatalf("no READY=1: %q\n%s", n.all(), d.logs.String())
	}
	if n.wait(watchdogMsg, ready, 5*time.Second) < 0 {
		t.Fatalf("watchdog never fed: %q", n.all())
	}
	if n.wait(statusMsg, 0, 5*time.Second) < 0 {
		t.Fatalf("no STATUS=: %q", n.all())
	}
	// The watchdog keeps coming at half of WATCHDOG_USEC.
	before := countMatching(n.all(), watchdogMsg)
	time.Sleep(time.Second)
	if got := countMatching(n.all(), watchdogMsg) - before; got < 3 {
		t.Fatalf("%d WATCHDOG=1 in a second, want about 6 (every 150ms)", got)
	}

	// A second source, added by a reload.
	drop2 := filepath.Join(d.dir, "drop2")
	cfg, _ := os.ReadFile(d.cfg)
	added := string(cfg) + fmt.Sprintf("  - name: second\n    type: local\n    path: %s\n    interval: 200ms\n    settle: 100ms\n", drop2)
	os.WriteFile(d.cfg, []byte(added), 0o600)
	mark := len(n.all())
	cmd.Process.Signal(syscall.SIGHUP)
	reloading := n.wait(reloadingMsg, mark, 5*time.Second)
	if reloading < 0 {
		t.Fatalf("no RELOADING=1 with MONOTONIC_USEC after SIGHUP: %q", n.all()[mark:])
	}
	if n.wait(readyMsg, reloading+1, 5*time.Second) < 0 {
		t.Fatalf("no READY=1 after RELOADING=1: %q", n.all()[mark:])
	}
	if !waitLog(&d.logs, `msg="reload: source added" source=second`, 1, 5*time.Second) {
		t.Fatalf("no word of the new source:\n%s", d.logs.String())
	}
	body, _ := os.ReadFile(filepath.Join("testdata", "fixtures", "partner-template.csv"))
	os.WriteFile(filepath.Join(drop2, "first.csv"), body, 0o644)
	if !waitFile(filepath.Join(drop2, "imported", "first.csv.status.txt"), 20*time.Second) {
		t.Fatalf("the added source's first file was not imported:\n%s", d.logs.String())
	}

	// A config with two mistakes and a change that needs a restart.
	bad := strings.Replace(added, "  - name: second", "  - name: second\n    date_format: D/M/Y", 1) +
		"log:\n  level: loud\n"
	bad = strings.Replace(bad, "workers: 4", "workers: 3", 1)
	os.WriteFile(d.cfg, []byte(bad), 0o600)
	mark = len(n.all())
	cmd.Process.Signal(syscall.SIGHUP)
	reloading = n.wait(reloadingMsg, mark, 5*time.Second)
	if reloading < 0 || n.wait(readyMsg, reloading+1, 5*time.Second) < 0 {
		t.Fatalf("a refused reload must still end with READY=1: %q", n.all()[mark:])
	}
	for _, want := range []string{"sources[1].date_format: must be one of", `log.level: must be debug, info, warn or error (got \"loud\")`} {
		if !waitLog(&d.logs, want, 1, 5*time.Second) {
			t.Errorf("the refusal does not say %q:\n%s", want, d.logs.String())
		}
	}
	if !strings.Contains(d.logs.String(), "reload refused") {
		t.Errorf("no refusal in the log:\n%s", d.logs.String())
	}
	// The old config keeps running: both sources still take files.
	d.drop(1)
	os.WriteFile(filepath.Join(drop2, "second.csv"), bytes.Replace(body, []byte("Line one"), []byte("Line one again"), 1), 0o644)
	if !d.waitImported(1, 20*time.Second) || !waitFile(filepath.Join(drop2, "imported", "second.csv.status.txt"), 20*time.Second) {
		t.Fatalf("not imported after a refused reload:\n%s", d.logs.String())
	}

	// Fixed, with the worker count changed: applied but for that key,
	// which is named as needing a restart.
	os.WriteFile(d.cfg, []byte(strings.Replace(added, "workers: 4", "workers: 3", 1)), 0o600)
	mark = len(n.all())
	cmd.Process.Signal(syscall.SIGHUP)
	if n.wait(readyMsg, mark, 5*time.Second) < 0 ||
		!waitLog(&d.logs, `needs a restart to apply; going on with the old value" key=workers`, 1, 5*time.Second) {
		t.Fatalf("restart-only change not named:\n%s", d.logs.String())
	}
	for _, l := range strings.Split(d.logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") && !strings.Contains(l, "reload refused") {
			t.Errorf("an error in the log: %s", l)
		}
	}
}

// Removing a source by a reload: files dropped there from then on stay
// where they are.
func TestReloadRemovesSource(t *testing.T) {
	d := newDaemon(t)
	cfg, _ := os.ReadFile(d.cfg)
	drop2 := filepath.Join(d.dir, "drop2")
	two := string(cfg) + fmt.Sprintf("  - name: second\n    type: local\n    path: %s\n    interval: 200ms\n    settle: 100ms\n", drop2)
	os.WriteFile(d.cfg, []byte(two), 0o600)
	cmd := d.start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if !waitLog(&d.logs, "usagedrop running", 1, 10*time.Second) {
		t.Fatalf("not running:\n%s", d.logs.String())
	}
	os.WriteFile(d.cfg, cfg, 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	if !waitLog(&d.logs, `msg="reload: source removed`, 1, 5*time.Second) ||
		!waitLog(&d.logs, "removed source closed", 1, 5*time.Second) {
		t.Fatalf("source not removed:\n%s", d.logs.String())
	}
	body, _ := os.ReadFile(filepath.Join("testdata", "fixtures", "partner-template.csv"))
	os.WriteFile(filepath.Join(drop2, "late.csv"), body, 0o644)
	d.drop(1)
	if !d.waitImported(1, 20*time.Second) {
		t.Fatalf("the source kept was not worked on:\n%s", d.logs.String())
	}
	if _, err := os.Stat(filepath.Join(drop2, "late.csv")); err != nil {
		t.Fatalf("a file dropped in the removed source was taken: %v", err)
	}
}

// /readyz is 503 with the reason once Zuora has refused connections for
// longer than readiness.zuora_unreachable, while /healthz, liveness,
// stays 200; every metric series is there from the start; the log is
// JSON when log.format says so.
func TestReadyzMetricsAndJSONLog(t *testing.T) {
	dir := t.TempDir()
	refused := freeAddr(t) // nobody listens there
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, "ready", "http://"+refused, fmt.Sprintf("name: drop\n    type: local\n    path: %s/drop\n", dir))
	b, _ := os.ReadFile(cfg)
	b = bytes.Replace(b, []byte(`http: "off"`), []byte("http: "+addr+"\nreadiness:\n  zuora_unreachable: 1s\nlog:\n  format: json\n"), 1)
	os.WriteFile(cfg, b, 0o600)
	os.MkdirAll(filepath.Join(dir, "drop"), 0o755)
	var logs logBuffer
	cmd := spawn(t, cfg, &logs)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if !waitLog(&logs, "usagedrop running", 1, 10*time.Second) {
		t.Fatalf("not running:\n%s", logs.String())
	}
	if body, code := httpGet(t, "http://"+addr+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz at start: %d %q", code, body)
	}
	metrics, _ := httpGet(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		`usagedrop_drops{state="discovered"} 0`,
		`usagedrop_drops{state="uploading"} 0`,
		`usagedrop_drops{state="rejected"} 0`,
		`usagedrop_oldest_pending_seconds 0`,
		`usagedrop_drops_finished_total{outcome="rejected",source="drop"} 0`,
		`usagedrop_records_imported_total{source="drop"} 0`,
		`usagedrop_step_retries_total{source="drop",state="uploading"} 0`,
		`usagedrop_drops_set_aside_total{source="drop",step="convert"} 0`,
		`usagedrop_source_up{source="drop"} 1`,
		`usagedrop_zuora_requests_total{code="200",operation="submit"} 0`,
		`usagedrop_conversion_seconds_count 0`,
		`usagedrop_import_seconds_count 0`,
		`usagedrop_build_info{goversion="go`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics at start lacks %s", want)
		}
	}

	body, _ := os.ReadFile(filepath.Join("testdata", "fixtures", "partner-template.csv"))
	os.WriteFile(filepath.Join(dir, "drop", "march.csv"), body, 0o644)
	deadline := time.Now().Add(20 * time.Second)
	var why string
	for time.Now().Before(deadline) {
		var code int
		if why, code = httpGet(t, "http://"+addr+"/readyz"); code == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(why, "Zuora unreachable for") || !strings.Contains(why, "token: no answer") {
		t.Fatalf("/readyz never said Zuora is unreachable: %q\n%s", why, logs.String())
	}
	if body, code := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz is liveness, yet %d %q", code, body)
	}
	metrics, _ = httpGet(t, "http://"+addr+"/metrics")
	if !regexp.MustCompile(`usagedrop_zuora_requests_total\{code="error",operation="token"\} [1-9]`).MatchString(metrics) {
		t.Errorf("refused token requests not counted:\n%s", grepLines(metrics, "usagedrop_zuora"))
	}
	if !regexp.MustCompile(`usagedrop_drops\{state="(converted|uploading)"\} 1`).MatchString(metrics) {
		t.Errorf("the waiting drop is not counted by state:\n%s", grepLines(metrics, "usagedrop_drops{"))
	}
	if !regexp.MustCompile(`usagedrop_conversion_seconds_count 1`).MatchString(metrics) {
		t.Errorf("conversion not timed:\n%s", grepLines(metrics, "conversion"))
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil || v["msg"] == nil {
			t.Fatalf("log.format json, yet a line is not a JSON record: %q", line)
		}
	}
}

// A drop imported end to end is counted and timed in /metrics.
func TestMetricsAfterImport(t *testing.T) {
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
	// The file is in imported/ before the ledger records it finished and
	// the drop is counted: scrape until the counts arrive.
	var metrics string
	for deadline := time.Now().Add(5 * time.Second); ; {
		metrics, _ = httpGet(t, "http://"+addr+"/metrics")
		if strings.Contains(metrics, "usagedrop_import_seconds_count 1") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, re := range []string{
		`usagedrop_zuora_requests_total\{code="200",operation="token"\} 1`,
		`usagedrop_zuora_requests_total\{code="201",operation="submit"\} 1|usagedrop_zuora_requests_total\{code="200",operation="submit"\} 1`,
		`usagedrop_zuora_requests_total\{code="200",operation="status"\} [1-9]`,
		`usagedrop_conversion_seconds_count 1`,
		`usagedrop_import_seconds_count 1`,
		`usagedrop_drops_finished_total\{outcome="done",source="drop"\} 1`,
		`usagedrop_drops\{state="uploading"\} 0`,
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("/metrics lacks %s:\n%s", re, grepLines(metrics, "usagedrop_"))
		}
	}
}

// STATUS= says the backlog and the last Zuora error, from the ledger and
// the requests Zuora did not answer.
func TestStatusLine(t *testing.T) {
	led, err := ledger.Open(filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	zw := pipeline.NewZuoraWatch(nil, nil)
	s := &service{led: led, zuora: zw, log: slog.New(slog.DiscardHandler)}
	if got := s.status(); got != "no drops in progress" {
		t.Fatalf("idle: %q", got)
	}
	led.Create("drop", "a.csv", "a.csv", 10, "", false)
	led.Create("drop", "b.csv", "b.csv", 10, "", false)
	sim := zuorasim.New(zuorasim.Options{})
	sim.SetFaults(zuorasim.Faults{ServerErrors: 1})
	url := httptestServer(t, sim)
	resp, err := (&http.Client{Transport: zw}).Post(url+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := s.status()
	want := regexp.MustCompile(`^2 drops in progress \(oldest 0m\); last Zuora error \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: token: 50\d [A-Za-z ]+; Zuora unreachable since \d\d:\d\d:\d\d$`)
	if !want.MatchString(got) {
		t.Fatalf("status %q", got)
	}
}

// Only restart-only keys are named, by their YAML path, never a value.
func TestRestartKeys(t *testing.T) {
	base := func() *config.Config {
		c := config.DefaultConfig()
		c.Zuora.ClientSecret = "old-secret"
		return c
	}
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"nothing", func(c *config.Config) {}, nil},
		{"sources, log level and readiness apply live", func(c *config.Config) {
			c.Sources = append(c.Sources, config.Source{Name: "b"})
			c.Log.Level = "debug"
			c.Readiness.ZuoraUnreachable = config.Duration(time.Minute)
		}, nil},
		{"ledger, http, zuora endpoint and secret", func(c *config.Config) {
			c.Ledger, c.HTTP = "other.db", "127.0.0.1:1"
			c.Zuora.Endpoint, c.Zuora.ClientSecret = "https://rest.zuora.com", "new-secret"
		}, []string{"http", "ledger", "zuora.client_secret", "zuora.endpoint"}},
		{"log format", func(c *config.Config) { c.Log.Format = "json" }, []string{"log.format"}},
		{"a token read from a file is its parent's", func(c *config.Config) { c.HTTPAuth.Token = "x" }, []string{"http_auth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base()
			tt.change(next)
			got := pipeline.RestartKeys(base(), next)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func countMatching(msgs []string, re *regexp.Regexp) int {
	n := 0
	for _, m := range msgs {
		if re.MatchString(m) {
			n++
		}
	}
	return n
}

func waitFile(path string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The unit passes systemd-analyze verify (with ExecStart= pointed at the
// built binary, since verify wants it to exist, and without the man page
// Documentation= names, which only the package installs:
// scripts/package-check.sh verifies the installed unit with both) and
// keeps its exposure rating at or under 2.0.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is needed in CI")
		}
		t.Skip("no systemd-analyze")
	}
	unit, err := os.ReadFile(filepath.Join("systemd", "usagedrop.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify\n", "ExecReload=/bin/kill -HUP $MAINPID\n", "WatchdogSec="} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("unit lacks %q", want)
		}
	}
	p := filepath.Join(t.TempDir(), "usagedrop.service")
	unit = bytes.ReplaceAll(unit, []byte("/usr/bin/usagedrop"), []byte(binary))
	unit = bytes.ReplaceAll(unit, []byte("man:usagedrop(1) "), nil)
	if err := os.WriteFile(p, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", p).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ := exec.Command(sa, "security", "--offline=yes", p).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for usagedrop.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Fatalf("exposure %s, was 1.6: a hardening line was lost?\n%s", m[1], out)
	}
}

// The watchdog is fed while the pipeline's loops turn, and no longer once
// they stop: systemd then restarts the daemon.
func TestWatchdogStarvesWhenLoopsStop(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the heartbeat's staleness (3s)")
	}
	n := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", n.path)
	t.Setenv("WATCHDOG_USEC", "200000")
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p := pipeline.New(pipeline.Options{Ledger: led, Spool: filepath.Join(dir, "spool"), Instance: "t", Logger: log})
	s := &service{p: p, led: led, zuora: pipeline.NewZuoraWatch(nil, nil), log: log}
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); p.Run(runCtx) }()
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan struct{})
	go func() { defer close(fed); s.watchdog(ctx) }()
	defer func() { cancel(); <-fed }()

	time.Sleep(1500 * time.Millisecond)
	if got := countMatching(n.all(), watchdogMsg); got < 8 {
		t.Fatalf("%d WATCHDOG=1 in 1.5s of a running pipeline, want about 15", got)
	}
	stopRun()
	<-ran
	stopped := time.Now()
	if !waitLog(&logs, "no longer feeding the watchdog", 1, 5*time.Second) {
		t.Fatalf("the watchdog still fed after the loops stopped:\n%s", logs.String())
	}
	if d := time.Since(stopped); d < 2*time.Second {
		t.Fatalf("starved %v after the loops stopped, before the heartbeat went stale (3s)", d)
	}
	before := countMatching(n.all(), watchdogMsg)
	time.Sleep(500 * time.Millisecond)
	if got := countMatching(n.all(), watchdogMsg) - before; got != 0 {
		t.Fatalf("%d WATCHDOG=1 after starving", got)
	}
}
