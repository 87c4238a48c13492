package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/ledger/postgres"
)

// A drop is held by the daemon that recorded it while its heartbeat
// renews the lease, and taken over by another once the lease runs out;
// the first then no longer holds it.
func TestLeaseTakeover(t *testing.T) {
	db := testutil.Postgres(t)
	const lease = time.Second
	a := open(t, db.DSN, postgres.Options{Instance: "a", Lease: lease})
	b := open(t, db.DSN, postgres.Options{Instance: "b", Lease: lease})

	e, err := a.Create("src", "m.csv", "m.csv", 1, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if e.Owner != "a" {
		t.Fatalf("owner of a new drop = %q, want a", e.Owner)
	}
	if _, err := b.Create("src", "m.csv", "m.csv", 1, "", false); !errors.Is(err, ledger.ErrHeld) {
		t.Fatalf("second drop of one file: err = %v, want ErrHeld", err)
	}
	if got, err := b.Acquire(10); err != nil || len(got) != 0 {
		t.Fatalf("acquire a live lease: %v, %v", got, err)
	}
	// Renewed past one lease: still a's.
	for range 3 {
		time.Sleep(lease / 2)
		if ids, err := a.Renew(); err != nil || len(ids) != 1 || ids[0] != e.ID {
			t.Fatalf("renew = %v, %v", ids, err)
		}
	}
	if got, _ := b.Acquire(10); len(got) != 0 {
		t.Fatalf("acquired a renewed lease: %v", got)
	}
	time.Sleep(lease + 200*time.Millisecond)
	got, err := b.Acquire(10)
	if err != nil || len(got) != 1 || got[0].Entry.ID != e.ID || got[0].From != "a" || got[0].Entry.Owner != "b" {
		t.Fatalf("acquire a lapsed lease = %+v, %v", got, err)
	}
	if ids, err := a.Renew(); err != nil || len(ids) != 0 {
		t.Fatalf("renew after a takeover = %v, %v; want none", ids, err)
	}
	if x, err := a.Get(e.ID); err != nil || x.Owner != "b" {
		t.Fatalf("owner read by a = %q, %v", x.Owner, err)
	}
	// Finished, the file may be dropped again.
	if _, err := b.Outcome(e.ID, ledger.Vanished, "gone", true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create("src", "m.csv", "m.csv", 1, "", false); err != nil {
		t.Fatalf("a new drop of a finished file: %v", err)
	}
}

// Daemons acquiring at once split the lapsed drops: each is taken by
// exactly one.
func TestAcquireSplits(t *testing.T) {
	db := testutil.Postgres(t)
	dead := open(t, db.DSN, postgres.Options{Instance: "dead", Lease: time.Second})
	const n = 200
	for i := range n {
		name := string(rune('a'+i%26)) + time.Now().Format("150405.000000000")
		if _, err := dead.Create("src", name, name, 1, "", false); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1200 * time.Millisecond)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for _, who := range []string{"b", "c", "d"} {
		s := open(t, db.DSN, postgres.Options{Instance: who, Lease: time.Minute})
		wg.Go(func() {
			for {
				got, err := s.Acquire(7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, g := range got {
					if prev, ok := seen[g.Entry.ID]; ok {
						t.Errorf("%s taken by %s and %s", g.Entry.ID, prev, who)
					}
					seen[g.Entry.ID] = who
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d of %d drops taken over", len(seen), n)
	}
}

// Two daemons under one instance name would both believe they hold the
// same drops: the second to open is refused while the first has it open.
func TestInstanceNameHeld(t *testing.T) {
	db := testutil.Postgres(t)
	opt := postgres.Options{Instance: "vm-a", Lease: time.Second}
	first, err := postgres.Open(context.Background(), db.DSN, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(context.Background(), db.DSN, opt); !errors.Is(err, ledger.ErrLocked) || !strings.Contains(err.Error(), `"vm-a"`) {
		t.Fatalf("a second vm-a: %v, want ErrLocked naming it", err)
	}
	open(t, db.DSN, postgres.Options{Instance: "vm-b", Lease: time.Second})
	open(t, db.DSN, postgres.Options{}) // a command
	first.Close()
	open(t, db.DSN, opt)
}
