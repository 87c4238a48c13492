package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/ledger/postgres"
	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

const tinyCSV = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\nA1,GB,1,03/01/2026,,,\n"

// fleet is n daemons' Zuora clients on one PostgreSQL ledger, each with
// its own connection pool, in front of one simulated tenant.
type fleet struct {
	sim     *zuorasim.Sim
	imports []*uploader.FileImport
	// queries counts the statements the daemons' ledgers sent.
	queries *counter
}

// newFleet starts a tenant of opt and n daemons, whose limit is the
// tenant's concurrency limit and whose budget is perMinute; each daemon's
// limiter is the ledger's shared one when shared, else one of its own of
// the same size, which is what daemons without a shared ledger can do.
func newFleet(t *testing.T, n int, opt zuorasim.Options, perMinute int, shared bool) *fleet {
	t.Helper()
	limit := opt.ConcurrencyLimit
	opt.ProcessingDelay, opt.ClientID, opt.ClientSecret = 10*time.Millisecond, "usagedrop", "s3cret-value"
	sim := zuorasim.New(opt)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	db := testutil.Postgres(t)
	f := &fleet{sim: sim, queries: &counter{}}
	for i := range n {
		var lim uploader.Limiter = uploader.NewLocalLimiter(limit, perMinute)
		if shared {
			s := open(t, db.DSN, postgres.Options{Tracer: f.queries})
			l, err := s.ZuoraLimiter(context.Background(), postgres.LimitOptions{Holder: fmt.Sprintf("d%d", i), Max: limit, PerMinute: perMinute})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			lim = l
		}
		c := uploader.NewClient(uploader.Config{
			BaseURL: srv.URL, ClientID: "usagedrop", ClientSecret: "s3cret-value",
			// A refusal shows as a failed upload rather than being
			// retried away.
			MaxAttempts: 1, Limiter: lim,
		})
		f.imports = append(f.imports, uploader.NewFileImport(c))
	}
	return f
}

// run sends perDaemon parts from each daemon, workers at a time, and
// returns how many uploads failed and the requests the sim received.
func (f *fleet) run(t *testing.T, perDaemon, workers int) (failed int, requests int) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "u.csv")
	if err := os.WriteFile(path, []byte(tinyCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tinyCSV))
	var bad atomic.Int64
	var wg sync.WaitGroup
	for d, fi := range f.imports {
		next := atomic.Int64{}
		for range workers {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(perDaemon) {
						return
					}
					p := uploader.Part{Name: fmt.Sprintf("d%d-%d.csv", d, i), Path: path, Size: int64(len(tinyCSV)), SHA256: hex.EncodeToString(sum[:])}
					if _, err := fi.Submit(context.Background(), p, fmt.Sprintf("d%d-%d", d, i)); err != nil {
						bad.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	return int(bad.Load()), f.sim.Requests()
}

// Three daemons on one PostgreSQL ledger, each sending with eight
// workers, against a tenant that allows four requests at once: with the
// fleet's limiter the tenant never sees more than four in flight and
// refuses none; with a limiter of four per daemon, all a daemon can do
// alone, it sees more and refuses some (the test can fail).
func TestFleetHoldsTheConcurrencyLimit(t *testing.T) {
	for _, tt := range []struct {
		name   string
		shared bool
	}{
		{"shared through the ledger", true},
		{"four per daemon", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const limit = 4
			f := newFleet(t, 3, zuorasim.Options{ConcurrencyLimit: limit}, 0, tt.shared)
			f.sim.SetFaults(zuorasim.Faults{AnswerDelay: 20 * time.Millisecond})
			f.queries.n.Store(0)
			start := time.Now()
			failed, requests := f.run(t, 20, 8)
			el := time.Since(start)
			got := f.sim.Limits()
			t.Logf("%d requests in %v (%.0f/s); peak in flight %d, refused for concurrency %d, failed uploads %d; %.2f statements per request",
				requests, el.Round(time.Millisecond), float64(requests)/el.Seconds(), got.PeakInFlight, got.OverConcurrency, failed,
				float64(f.queries.n.Load())/float64(requests))
			if !tt.shared {
				if got.PeakInFlight <= limit || got.OverConcurrency == 0 {
					t.Fatalf("without the shared limiter the sim saw %+v: the test cannot tell", got)
				}
				return
			}
			if got.PeakInFlight > limit || got.OverConcurrency != 0 || failed != 0 {
				t.Fatalf("the fleet exceeded the limit of %d: %+v, %d uploads failed", limit, got, failed)
			}
		})
	}
}

// A daemon that dies holding slots gives them back when their leases end:
// the others then use all of them.
func TestFleetSlotsOfADeadDaemon(t *testing.T) {
	db := testutil.Postgres(t)
	dead := open(t, db.DSN, postgres.Options{})
	l, err := dead.ZuoraLimiter(context.Background(), postgres.LimitOptions{Holder: "dead", Max: 2, Lease: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Dying: no renewal, no release.
	dead.Close()

	live := open(t, db.DSN, postgres.Options{})
	ll, err := live.ZuoraLimiter(context.Background(), postgres.LimitOptions{Holder: "live", Max: 2, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var releases []func()
	for range 2 {
		r, err := ll.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("the dead daemon's slots came back after %v, its lease being 300ms", el)
	}
	slots, err := live.Slots()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if s.Holder != "live" {
			t.Fatalf("slots %+v", slots)
		}
	}
	// A slot released is taken at once by a waiter, woken by the notice
	// rather than a lease's end (a minute here).
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		r, err := ll.Acquire(ctx)
		if err == nil {
			r()
		}
		done <- time.Since(start)
	}()
	time.Sleep(50 * time.Millisecond)
	releases[0]()
	if waited := <-done; waited > 2*time.Second {
		t.Fatalf("a waiter took %v to get a released slot", waited)
	}
	releases[1]()
}

// Three daemons with a rate budget shared through the ledger against a
// tenant that allows 10 requests a second: none is refused. With the
// same budget per daemon, three times the tenant's, some are.
func TestFleetHoldsTheRateBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("paces 33 requests at 8 a second")
	}
	for _, tt := range []struct {
		name   string
		shared bool
	}{
		{"shared through the ledger", true},
		{"per daemon", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// 480 a minute is 8 a second, spaced 125 ms: under the 10 a
			// second the tenant allows, with room for the network's
			// jitter.
			const perMinute = 480
			f := newFleet(t, 3, zuorasim.Options{ConcurrencyLimit: 40, RequestsPerWindow: 10, RateWindow: time.Second}, perMinute, tt.shared)
			start := time.Now()
			failed, requests := f.run(t, 10, 4)
			el := time.Since(start)
			t.Logf("%d requests in %v, %d uploads failed", requests, el.Round(time.Millisecond), failed)
			if !tt.shared {
				if failed == 0 {
					t.Fatal("with a budget per daemon nothing was refused: the test cannot tell")
				}
				return
			}
			if failed != 0 {
				t.Fatalf("%d uploads refused with the fleet's budget", failed)
			}
			if min := time.Duration(requests-1) * time.Minute / perMinute; el < min {
				t.Fatalf("%d requests in %v, faster than the budget allows (%v)", requests, el, min)
			}
		})
	}
}

// TestLimiterCost measures what the shared limiter costs: statements per
// request and requests a second through it, alone and with three daemons
// contending for four slots, beside a process's own limiter.
//
//	go test ./ledger/postgres -run LimiterCost -v
func TestLimiterCost(t *testing.T) {
	if testing.Short() {
		t.Skip("a measurement")
	}
	const perWorker = 300
	measure := func(name string, lims []uploader.Limiter, workers int, q *counter) {
		q.n.Store(0)
		start := time.Now()
		var wg sync.WaitGroup
		for _, l := range lims {
			for range workers {
				wg.Go(func() {
					for range perWorker {
						release, err := l.Acquire(context.Background())
						if err != nil {
							t.Error(err)
							return
						}
						release()
					}
				})
			}
		}
		wg.Wait()
		n := len(lims) * workers * perWorker
		el := time.Since(start)
		t.Logf("%-44s %6d acquires in %7v: %7.0f/s, %.2f statements each", name, n, el.Round(time.Millisecond),
			float64(n)/el.Seconds(), float64(q.n.Load())/float64(n))
	}
	db := testutil.Postgres(t)
	limiter := func(q *counter, holder string, max, perMinute int) uploader.Limiter {
		s := open(t, db.DSN, postgres.Options{Tracer: q})
		l, err := s.ZuoraLimiter(context.Background(), postgres.LimitOptions{Holder: holder, Max: max, PerMinute: perMinute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	var none counter
	measure("local, 8 slots, 8 workers", []uploader.Limiter{uploader.NewLocalLimiter(8, 0)}, 8, &none)
	q := &counter{}
	measure("ledger, 1 daemon, 8 slots, 8 workers", []uploader.Limiter{limiter(q, "a", 8, 0)}, 8, q)
	q = &counter{}
	measure("ledger, 1 daemon, 8 slots, rate budget", []uploader.Limiter{limiter(q, "b", 8, 60_000_000)}, 8, q)
	q = &counter{}
	measure("ledger, 3 daemons, 4 slots, 8 workers each", []uploader.Limiter{
		limiter(q, "c1", 4, 0), limiter(q, "c2", 4, 0), limiter(q, "c3", 4, 0)}, 8, q)
}

// A limiter that cannot reach its database sends nothing, and says so
// with an error the pipeline waits out as an outage, not a fault of the
// file.
func TestLimiterWithoutTheDatabase(t *testing.T) {
	sim := zuorasim.New(zuorasim.Options{ClientID: "usagedrop", ClientSecret: "s3cret-value"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	s := open(t, testutil.Postgres(t).DSN, postgres.Options{})
	l, err := s.ZuoraLimiter(context.Background(), postgres.LimitOptions{Holder: "a", Max: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s.Close()
	c := uploader.NewClient(uploader.Config{BaseURL: srv.URL, ClientID: "usagedrop", ClientSecret: "s3cret-value", MaxAttempts: 1, Limiter: l})
	err = c.CheckToken(context.Background())
	if err == nil || !uploader.IsRetryable(err) || sim.Requests() != 0 {
		t.Fatalf("without the database: %v (retryable %v), %d requests sent", err, uploader.IsRetryable(err), sim.Requests())
	}
}
