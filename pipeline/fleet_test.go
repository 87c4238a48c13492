package pipeline

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"usagedrop/config"
	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/ledger/postgres"
	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

// fleetMember is one daemon of a fleet, in process: a pipeline on a
// leased PostgreSQL ledger with a spool of its own, over a shared folder.
type fleetMember struct {
	store  *postgres.Store
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(t *testing.T, dsn, instance, dropDir, zuora string, lease time.Duration, hook func(string)) *fleetMember {
	t.Helper()
	store, err := postgres.Open(context.Background(), dsn, postgres.Options{Instance: instance, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel})).With("instance", instance)
	sc := config.DefaultConfig().Sources[0]
	sc.Path = dropDir
	sc.Settle = config.Duration(100 * time.Millisecond)
	src, err := BuildSource(sc, instance, log)
	if err != nil {
		t.Fatal(err)
	}
	src.Watch.Interval = 100 * time.Millisecond
	c := uploader.NewClient(uploader.Config{BaseURL: zuora, ClientID: "id", ClientSecret: "secret", Logger: log,
		BackoffBase: 10 * time.Millisecond, BackoffCap: 100 * time.Millisecond})
	p := New(Options{
		Ledger: store, Uploader: uploader.NewFileImport(c), Sources: []Source{src}, Spool: filepath.Join(t.TempDir(), "spool"),
		Instance: instance, Template: Template(config.DefaultConfig().Zuora), Workers: 2,
		PollMax: 100 * time.Millisecond, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: log, Hook: hook,
	})
	ctx, cancel := context.WithCancel(context.Background())
	m := &fleetMember{store: store, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(m.done); p.Run(ctx) }()
	t.Cleanup(m.stop)
	return m
}

func (m *fleetMember) stop() {
	m.cancel()
	<-m.done
	m.store.Close()
}

// A daemon of a fleet stops right after each transition in turn, its
// leases left to run out; another, with a spool of its own, takes the
// drop over from the ledger and imports it once: the parts are made again
// from the file on the source, and a file the first had moved into its
// processing/ folder without committing the claim is worked where it is.
func TestFleetTakeover(t *testing.T) {
	const lease = time.Second
	for _, tt := range []struct {
		point string // the transition after which vm-a stops
		moved bool   // vm-a had also moved the file, claim not committed
	}{
		{"discovered", false},
		{"discovered", true},
		{"claimed", false},
		{"fetched", false},
		{"converted", false},
		{"submitted", false},
		{"accepted", false},
	} {
		name := tt.point
		if tt.moved {
			name += "+moved"
		}
		t.Run(name, func(t *testing.T) {
			dsn := testutil.Postgres(t).DSN
			sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 20 * time.Millisecond})
			srv := httptest.NewServer(sim)
			t.Cleanup(srv.Close)
			dropDir := filepath.Join(t.TempDir(), "drop")
			os.MkdirAll(dropDir, 0o755)

			var a *fleetMember
			var once sync.Once
			stopped := make(chan struct{})
			a = startMember(t, dsn, "vm-a", dropDir, srv.URL, lease, func(pt string) {
				if pt == tt.point {
					once.Do(func() { a.cancel(); close(stopped) })
				}
			})
			b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dropDir, ".m.csv.part"), b, 0o644)
			os.Rename(filepath.Join(dropDir, ".m.csv.part"), filepath.Join(dropDir, "m.csv"))
			select {
			case <-stopped:
			case <-time.After(30 * time.Second):
				t.Fatalf("vm-a never reached %s", tt.point)
			}
			<-a.done
			var all []*ledger.Entry
			a.store.List(func(e *ledger.Entry) bool { all = append(all, e); return true })
			if len(all) != 1 || all[0].Owner != "vm-a" || all[0].Finished {
				t.Fatalf("after vm-a stopped at %s: %+v", tt.point, all)
			}
			id := all[0].ID
			if tt.moved {
				os.MkdirAll(filepath.Join(dropDir, "processing", "vm-a"), 0o755)
				if err := os.Rename(filepath.Join(dropDir, "m.csv"), filepath.Join(dropDir, "processing", "vm-a", "m.csv")); err != nil {
					t.Fatal(err)
				}
			}

			start := time.Now()
			bm := startMember(t, dsn, "vm-b", dropDir, srv.URL, lease, nil)
			var e *ledger.Entry
			for {
				e, err = bm.store.Get(id)
				if err != nil {
					t.Fatal(err)
				}
				if e.Finished {
					break
				}
				if time.Since(start) > 30*time.Second {
					t.Fatalf("not finished by vm-b: %s %s", e.State, e.LastError)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("vm-b finished the drop %v after it started (lease %v)", time.Since(start).Round(10*time.Millisecond), lease)
			if e.State != ledger.Done || e.Owner != "vm-b" {
				t.Fatalf("drop %s on %s, want done on vm-b: %s", e.State, e.Owner, e.LastError)
			}
			if _, err := os.Stat(filepath.Join(dropDir, "imported", "m.csv")); err != nil {
				t.Fatalf("not in imported/: %v", err)
			}
			if n := len(sim.Records()); n != 1000 {
				t.Fatalf("zuora holds %d records, want 1000 once", n)
			}
			left, _ := filepath.Glob(filepath.Join(dropDir, "processing", "*", "*"))
			if len(left) > 0 {
				t.Fatalf("left in processing/: %v", left)
			}
		})
	}
}
