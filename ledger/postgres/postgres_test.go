package postgres_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/ledger/ledgertest"
	"usagedrop/ledger/postgres"
)

func open(t *testing.T, dsn string, opt postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	start := time.Now()
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		return open(t, testutil.Postgres(t).DSN, postgres.Options{})
	})
	t.Logf("conformance suite on PostgreSQL: %v", time.Since(start).Round(time.Millisecond))
}

// A ledger copied from bbolt into PostgreSQL and back keeps every drop,
// record, notice and hold on bytes.
func TestCopy(t *testing.T) {
	pg := func(t *testing.T) ledger.Store { return open(t, testutil.Postgres(t).DSN, postgres.Options{}) }
	bolt := func(t *testing.T) ledger.Store {
		l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	t.Run("BboltToPostgres", func(t *testing.T) { ledgertest.RunCopy(t, bolt, pg) })
	t.Run("PostgresToBbolt", func(t *testing.T) { ledgertest.RunCopy(t, pg, bolt) })
	t.Run("PostgresToPostgres", func(t *testing.T) { ledgertest.RunCopy(t, pg, pg) })
}

// Daemons starting at once on an empty database: each migration is
// applied once, and every one of them opens.
func TestMigrateConcurrently(t *testing.T) {
	db := testutil.Postgres(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), db.DSN, postgres.Options{})
			if err == nil {
				_, err = s.Create("src", "a.csv", "a.csv", 1, "", false)
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := pgx.Connect(context.Background(), db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var versions, rows int
	if err := c.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != versions || versions == 0 {
		t.Fatalf("schema_migrations has %d rows for %d versions", rows, versions)
	}
	var entries int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM entries").Scan(&entries); err != nil || entries != n {
		t.Fatalf("%d entries, %v; want %d", entries, err, n)
	}
}

// Two drops of the same bytes fetched at once, on two daemons: one owns
// them, the other is its Duplicate.
func TestFetchedRace(t *testing.T) {
	db := testutil.Postgres(t)
	a, b := open(t, db.DSN, postgres.Options{}), open(t, db.DSN, postgres.Options{})
	for round := range 20 {
		sha := "race-" + strings.Repeat("x", round)
		var ids [2]string
		for i, s := range []*postgres.Store{a, b} {
			e, err := s.Create("src", "a.csv", "a.csv", 1, "", false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Claimed(e.ID, "processing/a.csv", "", 1); err != nil {
				t.Fatal(err)
			}
			ids[i] = e.ID
		}
		// Converted makes the first drop hold its bytes.
		var got [2]*ledger.Entry
		var wg sync.WaitGroup
		for i, s := range []*postgres.Store{a, b} {
			wg.Go(func() {
				e, err := s.Fetched(ids[i], sha)
				if err != nil {
					t.Error(err)
				}
				got[i] = e
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if (got[0].State == ledger.Duplicate) == (got[1].State == ledger.Duplicate) {
			t.Fatalf("round %d: states %s and %s, want one fetched and one duplicate", round, got[0].State, got[1].State)
		}
	}
}

// counter counts the queries a connection sends.
type counter struct{ n atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestQueriesPerDrop counts the statements one drop of one part costs,
// from Create to Finished, as the pipeline makes the calls, on a ledger of
// one daemon and on a fleet's (leased: Create admits one drop per file).
func TestQueriesPerDrop(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opt   postgres.Options
		limit float64
	}{
		{"alone", postgres.Options{}, 80},
		{"leased", postgres.Options{Instance: "vm-a", Lease: 15 * time.Second}, 82},
	} {
		t.Run(tt.name, func(t *testing.T) { queriesPerDrop(t, tt.opt, tt.limit) })
	}
}

func queriesPerDrop(t *testing.T, opt postgres.Options, limit float64) {
	var c counter
	opt.Tracer = &c
	s := open(t, testutil.Postgres(t).DSN, opt)
	const drops = 20
	c.n.Store(0)
	start := time.Now()
	for n := range drops {
		e, err := s.Create("src", "a.csv", "a.csv", 10, "etag", false)
		if err != nil {
			t.Fatal(err)
		}
		id := e.ID
		calls := []func() (*ledger.Entry, error){
			func() (*ledger.Entry, error) { return s.Begin(id, ledger.StepClaim) },
			func() (*ledger.Entry, error) { return s.Claimed(id, "processing/a.csv", "e2", 10) },
			func() (*ledger.Entry, error) { return s.Begin(id, ledger.StepFetch) },
			func() (*ledger.Entry, error) { return s.Fetched(id, "sha-"+e.ID+string(rune('a'+n))) },
			func() (*ledger.Entry, error) { return s.Begin(id, ledger.StepConvert) },
			func() (*ledger.Entry, error) {
				return s.Converted(id, ledger.Conversion{Parts: []ledger.Part{{Name: "a-0.csv", State: ledger.PartPending}}, Records: 3})
			},
			func() (*ledger.Entry, error) { return s.Begin(id, ledger.StepUpload) },
			func() (*ledger.Entry, error) { return s.PartSubmitted(id, 0, time.Now()) },
			func() (*ledger.Entry, error) { return s.PartAccepted(id, 0, ledger.Receipt{ImportID: "imp"}) },
			func() (*ledger.Entry, error) { return s.PartStatus(id, 0, "Processing") },
			func() (*ledger.Entry, error) { return s.PartFinal(id, 0, ledger.PartCompleted, "", 3) },
			func() (*ledger.Entry, error) { return s.Outcome(id, ledger.Done, "imported", false) },
			func() (*ledger.Entry, error) { return s.Begin(id, ledger.StepFinish) },
			func() (*ledger.Entry, error) { return s.Finished(id, "imported/a.csv", "moved") },
		}
		for i, call := range calls {
			if _, err := call(); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	}
	el := time.Since(start)
	q := float64(c.n.Load()) / drops
	t.Logf("%.1f queries per drop (15 ledger calls, one part, Begin before each step); %.1f drops/s on one connection at a time, %v per drop",
		q, drops/el.Seconds(), (el / drops).Round(time.Microsecond))
	if q > limit {
		t.Fatalf("%.1f queries per drop, more than %.0f", q, limit)
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://u:secret@db:5432/ledger?sslmode=require", "postgres://u:xxxxx@db:5432/ledger?sslmode=require"},
		{"postgres://u@db/ledger", "postgres://u@db/ledger"},
		{"postgresql://db/ledger?password=secret&user=u", "postgresql://db/ledger?password=xxxxx&user=u"},
	} {
		if got := postgres.Redact(tt.in); got != tt.want || strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A DSN that does not parse is not quoted back with its password.
func TestOpenErrorHidesPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:secret@db:notaport/x", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
}

// The list is read a page at a time; it goes on past a page.
func TestListPastAPage(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,050 entries")
	}
	s := open(t, testutil.Postgres(t).DSN, postgres.Options{})
	const n = 1050
	for range n {
		if _, err := s.Create("src", "a.csv", "a.csv", 1, "", false); err != nil {
			t.Fatal(err)
		}
	}
	var after, before []string
	s.ListAfter("", func(e *ledger.Entry) bool { after = append(after, e.ID); return true })
	s.ListBefore("", func(e *ledger.Entry) bool { before = append(before, e.ID); return true })
	if len(after) != n || len(before) != n {
		t.Fatalf("listed %d after and %d before, want %d", len(after), len(before), n)
	}
	for i := range after {
		if after[i] != before[n-1-i] || i > 0 && after[i] <= after[i-1] {
			t.Fatalf("order broken at %d", i)
		}
	}
}

// Check reads where the schema stands and changes nothing; a schema newer
// than the program is refused rather than used.
func TestCheck(t *testing.T) {
	db := testutil.Postgres(t)
	ctx := context.Background()
	for _, want := range []string{"empty", "empty"} {
		if got, err := postgres.Check(ctx, db.DSN, postgres.Options{}); err != nil || !strings.Contains(got, want) {
			t.Fatalf("Check = %q, %v; want %q", got, err, want)
		}
	}
	open(t, db.DSN, postgres.Options{}).Close()
	if got, err := postgres.Check(ctx, db.DSN, postgres.Options{}); err != nil || got != "reachable; schema version 3" {
		t.Fatalf("Check after Open = %q, %v", got, err)
	}
	// A wrong password is an error that does not quote it.
	bad := strings.Replace(db.DSN, db.Password, "wrong-pw-123", 1)
	if _, err := postgres.Check(ctx, bad, postgres.Options{}); err == nil || strings.Contains(err.Error(), "wrong-pw-123") {
		t.Fatalf("Check with a wrong password: %v", err)
	}
	// Options.Password wins over the DSN's.
	if _, err := postgres.Check(ctx, bad, postgres.Options{Password: db.Password}); err != nil {
		t.Fatalf("Check with Options.Password: %v", err)
	}
	c, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (99, '099_future.sql')"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Check(ctx, db.DSN, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "upgrade usagedrop") {
		t.Fatalf("Check of a newer schema: %v", err)
	}
	if _, err := postgres.Open(ctx, db.DSN, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "upgrade usagedrop") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

// One daemon per PostgreSQL ledger until drops are leased: a second
// Exclusive open fails with ErrLocked, one that only reads does not, and
// the lock goes with the first one's Close.
func TestExclusive(t *testing.T) {
	db := testutil.Postgres(t)
	first, err := postgres.Open(context.Background(), db.DSN, postgres.Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(context.Background(), db.DSN, postgres.Options{Exclusive: true}); !errors.Is(err, ledger.ErrLocked) {
		t.Fatalf("second daemon: %v, want ErrLocked", err)
	}
	open(t, db.DSN, postgres.Options{}).Close()
	first.Close()
	open(t, db.DSN, postgres.Options{Exclusive: true})
}

// With no password in the DSN nor in Options, PGPASSWORD gives it.
func TestPasswordFromEnvironment(t *testing.T) {
	db := testutil.Postgres(t)
	t.Setenv("PGPASSWORD", "")
	if _, err := postgres.Open(context.Background(), db.DSNNoPassword, postgres.Options{}); err == nil {
		t.Fatal("opened without a password")
	}
	t.Setenv("PGPASSWORD", db.Password)
	open(t, db.DSNNoPassword, postgres.Options{})
}
