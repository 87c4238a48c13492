package ledgertest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"usagedrop/ledger"
)

// testReads holds what the status command, the page and the API read to
// the same answers on every store: pages of the list in both directions,
// the active entries, and what Prune takes away.
func testReads(t *testing.T, open Open) {
	t.Run("ListAfterBefore", func(t *testing.T) { testListPages(t, open) })
	t.Run("Active", func(t *testing.T) { testActive(t, open) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, open) })
}

func testListPages(t *testing.T, open Open) {
	s := open(t)
	var ids []string
	for range 5 {
		ids = append(ids, create(t, s))
	}
	rev := make([]string, len(ids))
	for i, id := range ids {
		rev[len(ids)-1-i] = id
	}
	collect := func(list func(string, func(*ledger.Entry) bool) error, from string, max int) []string {
		t.Helper()
		var got []string
		err := list(from, func(e *ledger.Entry) bool {
			got = append(got, e.ID)
			return len(got) < max
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		name string
		list func(string, func(*ledger.Entry) bool) error
		from string
		max  int
		want []string
	}{
		{"after start", s.ListAfter, "", 10, ids},
		{"after an id", s.ListAfter, ids[1], 10, ids[2:]},
		{"after the last", s.ListAfter, ids[4], 10, nil},
		{"after a prefix", s.ListAfter, ids[1][:10], 10, ids},
		{"after a non-id", s.ListAfter, ids[2] + "0", 10, ids[3:]},
		{"after, stopped", s.ListAfter, "", 2, ids[:2]},
		{"after everything", s.ListAfter, "~", 10, nil},
		{"before end", s.ListBefore, "", 10, rev},
		{"before an id", s.ListBefore, rev[1], 10, rev[2:]},
		{"before the first", s.ListBefore, rev[4], 10, nil},
		{"before a prefix", s.ListBefore, rev[1][:10], 10, nil},
		{"before a non-id", s.ListBefore, rev[2] + "0", 10, rev[2:]},
		{"before, stopped", s.ListBefore, "", 2, rev[:2]},
		{"before everything", s.ListBefore, "~", 10, rev},
		{"list", func(_ string, fn func(*ledger.Entry) bool) error { return s.List(fn) }, "", 10, ids},
	}
	for _, tt := range tests {
		if got := collect(tt.list, tt.from, tt.max); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func testActive(t *testing.T, open Open) {
	s := open(t)
	a := steps(claim, fetch, reject, finish)(t, s)
	b := steps(claim)(t, s)
	c := create(t, s)
	active, err := s.Active()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range active {
		got = append(got, e.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{b, c}) {
		t.Fatalf("active %v, want %v (not the finished %s)", got, []string{b, c}, a)
	}
	// Requeued, a finished drop is active again.
	must(t)(s.Requeue(a, "again"))
	if active, _ := s.Active(); len(active) != 3 || active[0].ID != a {
		t.Fatalf("after a requeue: %d active", len(active))
	}
}

// Prune takes finished entries, their records and their hold on their
// bytes, and leaves unfinished ones however old.
func testPrune(t *testing.T, open Open) {
	s := open(t)
	sha := hexSHA()
	done := steps(claim)(t, s)
	must(t)(s.Fetched(done, sha))
	conv(t, s, done)
	submit(t, s, done)
	accept(t, s, done)
	complete(t, s, done)
	outcome(ledger.Done)(t, s, done)
	finish(t, s, done)

	failed := steps(claim, fetch, conv, submit)(t, s)
	if err := s.RecordsCreated(failed, 0, recsOf(0, 2)); err != nil {
		t.Fatal(err)
	}
	must(t)(s.PartFinal(failed, 0, ledger.PartFailed, "refused", 0))
	outcome(ledger.Failed)(t, s, failed)
	finish(t, s, failed)
	running := steps(claim, fetch)(t, s)

	if n, err := s.Prune(time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("Prune of nothing old enough = %d, %v", n, err)
	}
	n, err := s.Prune(time.Now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	for _, id := range []string{done, failed} {
		if _, err := s.Get(id); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("pruned %s: %v", id, err)
		}
	}
	if _, err := s.Get(running); err != nil {
		t.Fatalf("an unfinished drop was pruned: %v", err)
	}
	if recs, err := s.Records(failed); err != nil || len(recs) != 0 {
		t.Fatalf("a pruned drop's records: %v, %v", recs, err)
	}
	if _, err := s.BySHA256(sha); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a pruned drop still owns its bytes: %v", err)
	}
	again := steps(claim)(t, s)
	if e, err := s.Fetched(again, sha); err != nil || e.State != ledger.Fetched {
		t.Fatalf("the bytes of a pruned drop again: %v, %v", e, err)
	}
}
