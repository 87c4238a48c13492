package ledger

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) (*Ledger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func TestSecondOpenFailsFast(t *testing.T) {
	_, path := openTest(t)
	start := time.Now()
	_, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("second open took %v", time.Since(start))
	}
}

func TestLifecycleSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := l.Create("finance", "march.csv", "march.csv", 10, "etag1", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Update(e.ID, "", func(e *Entry) error { e.State = Claimed; e.Key = "processing/vm/march.csv"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fetched(e.ID, "abc"); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	active, err := l.Active()
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].State != Fetched || active[0].Key != "processing/vm/march.csv" || active[0].SHA256 != "abc" {
		t.Fatalf("after reopen: %+v", active)
	}
	if got := len(active[0].History); got != 3 {
		t.Fatalf("history has %d events, want 3", got)
	}
	if _, err := l.Update(e.ID, "moved", func(e *Entry) error { e.State = Done; e.Finished = true; return nil }); err != nil {
		t.Fatal(err)
	}
	active, _ = l.Active()
	if len(active) != 0 {
		t.Fatalf("finished entry still active: %+v", active)
	}
}

func TestSameBytesAreADuplicateUnlessTheFirstImportedNothing(t *testing.T) {
	tests := []struct {
		first State
		dup   bool
	}{
		{Fetched, true}, {Converted, true}, {Uploading, true}, {Done, true},
		{Rejected, false}, {Failed, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.first), func(t *testing.T) {
			l, _ := openTest(t)
			a, _ := l.Create("s", "a.csv", "a.csv", 1, "", false)
			if _, err := l.Fetched(a.ID, "same"); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Update(a.ID, "", func(e *Entry) error { e.State = tt.first; return nil }); err != nil {
				t.Fatal(err)
			}
			b, _ := l.Create("s", "a (1).csv", "a (1).csv", 1, "", false)
			b, err := l.Fetched(b.ID, "same")
			if err != nil {
				t.Fatal(err)
			}
			if got := b.State == Duplicate; got != tt.dup {
				t.Fatalf("second drop state %s, want duplicate=%v", b.State, tt.dup)
			}
			if tt.dup && b.DuplicateOf != a.ID {
				t.Fatalf("DuplicateOf = %q, want %q", b.DuplicateOf, a.ID)
			}
			if !tt.dup && b.Generation != 1 {
				t.Fatalf("a re-drop after %s has generation %d, want 1", tt.first, b.Generation)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	l, _ := openTest(t)
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return old }
	a, _ := l.Create("s", "a.csv", "a.csv", 1, "", false)
	l.Fetched(a.ID, "sha-a")
	l.Update(a.ID, "", func(e *Entry) error { e.State = Done; e.Finished = true; return nil })
	b, _ := l.Create("s", "b.csv", "b.csv", 1, "", false) // old but unfinished: kept
	l.now = time.Now
	n, err := l.Prune(time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if _, err := l.Get(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned entry still there: %v", err)
	}
	if _, err := l.Get(b.ID); err != nil {
		t.Fatalf("unfinished entry pruned: %v", err)
	}
	c, _ := l.Create("s", "a.csv", "a.csv", 1, "", false)
	if c, _ = l.Fetched(c.ID, "sha-a"); c.State != Fetched {
		t.Fatalf("bytes of a pruned drop are still claimed: %s", c.State)
	}
}

// A split drop that failed after some parts were imported still holds its
// bytes: dropping them again would import those parts twice.
func TestPartlyImportedFailureHoldsBytes(t *testing.T) {
	l, _ := openTest(t)
	a, _ := l.Create("s", "big.csv", "big.csv", 1, "", false)
	l.Fetched(a.ID, "big")
	l.Update(a.ID, "", func(e *Entry) error {
		e.State = Failed
		e.Parts = []Part{{Index: 0, State: PartCompleted}, {Index: 1, State: PartFailed}}
		return nil
	})
	b, _ := l.Create("s", "big.csv", "big.csv", 1, "", false)
	b, err := l.Fetched(b.ID, "big")
	if err != nil || b.State != Duplicate {
		t.Fatalf("re-drop of a partly imported file: %s, %v; want duplicate", b.State, err)
	}
}
