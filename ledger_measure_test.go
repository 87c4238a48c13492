package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"usagedrop/config"
	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/ledger/postgres"
	"usagedrop/pipeline"
	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

// queryCounter counts the statements sent to PostgreSQL, by kind.
type queryCounter struct {
	n      atomic.Int64
	mu     sync.Mutex
	byKind map[string]int
}

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	kind := strings.Join(strings.Fields(d.SQL), " ")
	kind = kind[:min(len(kind), 40)]
	c.mu.Lock()
	if c.byKind == nil {
		c.byKind = map[string]int{}
	}
	c.byKind[kind]++
	c.mu.Unlock()
	return ctx
}

// top lists the most frequent kinds of statement.
func (c *queryCounter) top(n, per int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := slices.Collect(maps.Keys(c.byKind))
	slices.SortFunc(kinds, func(a, b string) int { return c.byKind[b] - c.byKind[a] })
	var b strings.Builder
	for _, k := range kinds[:min(n, len(kinds))] {
		fmt.Fprintf(&b, "\n  %5.1f  %s", float64(c.byKind[k])/float64(per), k)
	}
	return b.String()
}
func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestLedgerThroughput runs the pipeline in process on each ledger, with
// the file import API against the simulator, and reports the drops per
// second it finished and, on PostgreSQL, the statements per drop (the
// pipeline's periodic reads during the run included).
func TestLedgerThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 100 files on each ledger")
	}
	const drops = 100
	body, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, backend := range []string{"bbolt", "postgres", "postgres-leased"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			var qc queryCounter
			var store ledger.Store
			if backend == "bbolt" {
				l, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{})
				if err != nil {
					t.Fatal(err)
				}
				store = l
			} else {
				opt := postgres.Options{Tracer: &qc}
				if backend == "postgres-leased" {
					// A daemon of a fleet: drops leased to it, renewed and
					// looked for on its heartbeat.
					opt.Instance, opt.Lease = "test", config.DefaultLedgerLease
				}
				s, err := postgres.Open(context.Background(), testutil.Postgres(t).DSN, opt)
				if err != nil {
					t.Fatal(err)
				}
				store = s
			}
			defer store.Close()
			sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 5 * time.Millisecond})
			srv := httptest.NewServer(sim)
			defer srv.Close()
			log := slog.New(slog.DiscardHandler)
			sc := config.DefaultConfig().Sources[0]
			sc.Path = filepath.Join(dir, "drop")
			sc.Settle = config.Duration(50 * time.Millisecond)
			src, err := pipeline.BuildSource(sc, "test", log)
			if err != nil {
				t.Fatal(err)
			}
			src.Watch.Interval = 50 * time.Millisecond
			up := uploader.NewFileImport(uploader.NewClient(uploader.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret", Logger: log}))
			p := pipeline.New(pipeline.Options{
				Ledger: store, Uploader: up, Sources: []pipeline.Source{src}, Spool: filepath.Join(dir, "spool"),
				Instance: "test", Template: pipeline.Template(config.DefaultConfig().Zuora), Workers: 4,
				PollMax: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, Logger: log,
			})
			for i := range drops {
				b := strings.ReplaceAll(string(body), "Line one", fmt.Sprintf("Line one #%d", i))
				p := filepath.Join(sc.Path, fmt.Sprintf("usage-%d.csv", i))
				if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			qc.n.Store(0)
			qc.byKind = nil
			start := time.Now()
			go func() { defer close(done); p.Run(ctx) }()
			deadline := time.Now().Add(5 * time.Minute)
			for {
				m, _ := filepath.Glob(filepath.Join(sc.Path, "imported", "usage-*.csv.status.txt"))
				if len(m) == drops {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d imported", len(m), drops)
				}
				time.Sleep(20 * time.Millisecond)
			}
			el := time.Since(start)
			cancel()
			<-done
			line := fmt.Sprintf("%s: %d drops in %v, %.1f drops/s", backend, drops, el.Round(time.Millisecond), drops/el.Seconds())
			if backend != "bbolt" {
				line += fmt.Sprintf(", %.1f statements per drop:", float64(qc.n.Load())/drops) + qc.top(8, drops)
			}
			t.Log(line)
			if n := len(sim.Imports()); n != drops {
				t.Fatalf("%d imports in the simulator, want %d", n, drops)
			}
		})
	}
}
