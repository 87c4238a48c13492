package pipeline

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"usagedrop/config"
	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

// A reload while drops are in flight: the removed source's drop finishes
// and its folder takes no more files; the added source takes its first;
// a source whose folder moved while a drop of it is in flight keeps its
// old folder; a source that cannot be built changes nothing.
func TestReloadSourcesInFlight(t *testing.T) {
	dir := t.TempDir()
	// Slow imports keep a drop in flight while the config changes.
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 800 * time.Millisecond})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel}))
	folder := func(name string) config.Source {
		return config.Source{Name: name, Type: "local", Path: filepath.Join(dir, name),
			Settle: config.Duration(100 * time.Millisecond), Interval: config.Duration(200 * time.Millisecond), Lease: config.Duration(time.Hour)}
	}
	cur := &config.Config{Instance: "test", Sources: []config.Source{folder("a"), folder("b")}}
	var srcs []Source
	for _, sc := range cur.Sources {
		s, err := BuildSource(sc, "test", log)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	c := uploader.NewClient(uploader.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret", Logger: log,
		BackoffBase: 10 * time.Millisecond, BackoffCap: 100 * time.Millisecond})
	p := New(Options{
		Ledger: led, Uploader: uploader.NewFileImport(c), Sources: srcs, Spool: filepath.Join(dir, "spool"),
		Instance: "test", Template: Template(config.DefaultConfig().Zuora), Workers: 2,
		PollMax: 100 * time.Millisecond, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: log,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	body, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(source, name string) {
		b := strings.ReplaceAll(string(body), "Line one", "Line one "+source+"/"+name)
		if err := os.WriteFile(filepath.Join(dir, source, name), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "in-flight.csv")
	put("b", "in-flight.csv")
	waitFor(t, "both drops sent to Zuora", func() bool {
		return countActive(t, led, func(e *ledger.Entry) bool { return e.State == ledger.Uploading }) == 2
	})

	// a removed, c added, b's folder moved while its drop is in flight.
	moved := folder("b")
	moved.Path = filepath.Join(dir, "b-moved")
	next := &config.Config{Instance: "test", Sources: []config.Source{moved, folder("c")}}
	eff, err := p.Reload(cur, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(eff) != 2 || eff[0].Path != filepath.Join(dir, "b") || eff[1].Name != "c" {
		t.Fatalf("sources in effect: %+v", eff)
	}
	put("a", "late.csv")
	put("c", "first.csv")
	for _, f := range []string{"a/imported/in-flight.csv.status.txt", "b/imported/in-flight.csv.status.txt", "c/imported/first.csv.status.txt"} {
		waitFor(t, f, func() bool { _, err := os.Stat(filepath.Join(dir, f)); return err == nil })
	}
	waitFor(t, "the removed source closed", func() bool { return p.source("a") == nil })
	time.Sleep(500 * time.Millisecond) // two listings of a's folder, had it still a watcher
	if _, err := os.Stat(filepath.Join(dir, "a", "late.csv")); err != nil {
		t.Fatalf("a file dropped in the removed source was taken: %v", err)
	}

	// Nothing in flight now: b's folder moves.
	cur = &config.Config{Instance: "test", Sources: eff}
	eff, err = p.Reload(cur, next)
	if err != nil || eff[0].Path != moved.Path {
		t.Fatalf("moved folder not applied once idle: %+v, %v", eff, err)
	}
	put("b-moved", "there.csv")
	waitFor(t, "b-moved/imported/there.csv.status.txt", func() bool {
		_, err := os.Stat(filepath.Join(dir, "b-moved", "imported", "there.csv.status.txt"))
		return err == nil
	})

	// A source that cannot be built: nothing changes, c included.
	blocker := filepath.Join(dir, "not-a-dir")
	os.WriteFile(blocker, nil, 0o644)
	broken := folder("d")
	broken.Path = filepath.Join(blocker, "d")
	cur = &config.Config{Instance: "test", Sources: eff}
	bad := &config.Config{Instance: "test", Sources: []config.Source{moved, broken}}
	if got, err := p.Reload(cur, bad); err == nil || !strings.Contains(err.Error(), "source d") || len(got) != 2 || got[1].Name != "c" {
		t.Fatalf("a source that cannot be built: %v, %+v", err, got)
	}
	put("c", "still.csv")
	waitFor(t, "c/imported/still.csv.status.txt", func() bool {
		_, err := os.Stat(filepath.Join(dir, "c", "imported", "still.csv.status.txt"))
		return err == nil
	})
	if n := len(sim.Records()); n != 5*1000 {
		t.Fatalf("zuora holds %d records, want 5000", n)
	}
}

func countActive(t *testing.T, led ledger.Store, match func(*ledger.Entry) bool) int {
	active, err := led.Active()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range active {
		if match(e) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestZuoraOp(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"POST", "/oauth/token", "token"},
		{"POST", "/v1/usage", "submit"},
		{"GET", "/v1/usage/abc123/status", "status"},
		{"GET", "/v1/object/import/abc", "import"},
		{"POST", "/v1/action/query", "find"},
		{"POST", "/v1/object/usage", "object"},
		{"POST", "/usage/bulk/meter-1", "mediation"},
		{"POST", "/apps/services/a/119.0", "soap"},
		{"GET", "/v1/catalog/products", "other"},
		{"POST", "/base/path/v1/usage", "submit"}, // a BaseURL with a path
	}
	for _, tt := range tests {
		if got := zuoraOp(tt.method, tt.path); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.method, tt.path, got, tt.want)
		}
		if !slices.Contains(zuoraOps, tt.want) {
			t.Errorf("%q is not among the operations created at zero", tt.want)
		}
	}
}

// A source stopped for an operator starts again at a reload even when its
// config did not change: the fix (a key file, a known_hosts) may be
// outside the config.
func TestReloadRestartsStoppedSource(t *testing.T) {
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel}))
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	keyFile := filepath.Join(dir, "id_ed25519")
	sc := config.Source{Name: "partner", Type: "sftp", Address: "127.0.0.1:1", User: "u", Path: "/in",
		KeyFile: keyFile, HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))),
		Settle: config.Duration(100 * time.Millisecond), Interval: config.Duration(100 * time.Millisecond),
		Lease: config.Duration(time.Hour), Timeout: config.Duration(time.Second)}
	src, err := BuildSource(sc, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{Ledger: led, Sources: []Source{src}, Spool: filepath.Join(dir, "spool"), Instance: "test", Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the source stopped for its missing key file", func() bool {
		err := p.Stopped()["partner"]
		return err != nil && strings.Contains(err.Error(), "key_file")
	})

	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	cur := &config.Config{Instance: "test", Sources: []config.Source{sc}}
	if _, err := p.Reload(cur, cur); err != nil {
		t.Fatal(err)
	}
	// Now it only waits for a server nobody runs: an outage, not a stop.
	time.Sleep(time.Second)
	if err := p.Stopped()["partner"]; err != nil {
		t.Fatalf("still stopped after the key file was fixed and the config reloaded: %v", err)
	}
}
