package ledgertest

import (
	"fmt"
	"slices"
	"testing"

	"usagedrop/ledger"
)

// RunCopy checks that a ledger copied from one store into another, as
// `usagedrop ledger copy` does, keeps every entry, record, notice and hold
// on bytes: the same drops come back, the same bytes dropped again are a
// Duplicate of the same drop, and a second copy changes nothing. Both
// stores must be ledger.Copier.
func RunCopy(t *testing.T, from, to Open) {
	src, dst := copier(t, from(t)), copier(t, to(t))

	doneSHA, failedSHA, forgotSHA := hexSHA(), hexSHA(), hexSHA()
	done := steps(claim)(t, src)
	must(t)(src.Fetched(done, doneSHA))
	for _, f := range []func(*testing.T, ledger.Store, string){conv, submit, accept, complete, outcome(ledger.Done), finish} {
		f(t, src, done)
	}
	failed := steps(claim)(t, src)
	must(t)(src.Fetched(failed, failedSHA))
	conv(t, src, failed)
	submit(t, src, failed)
	if err := src.RecordsCreated(failed, 0, recsOf(0, 3)); err != nil {
		t.Fatal(err)
	}
	must(t)(src.PartFinal(failed, 0, ledger.PartFailed, "record 4 refused", 0))
	outcome(ledger.Failed)(t, src, failed)
	forgot := steps(claim)(t, src)
	must(t)(src.Fetched(forgot, forgotSHA))
	for _, f := range []func(*testing.T, ledger.Store, string){conv, submit, accept, complete, outcome(ledger.Done), finish} {
		f(t, src, forgot)
	}
	must(t)(src.Forget(forgot, "forgotten"))
	dup := steps(claim)(t, src)
	must(t)(src.Fetched(dup, doneSHA))
	running := steps(claim, fetch)(t, src)
	if _, err := src.Notify(running, ledger.NoticeStuck); err != nil {
		t.Fatal(err)
	}
	rejected := steps(claim, fetch, reject)(t, src)
	if _, err := src.NoticeDelivered(ledger.NoticeKey(rejected, ledger.NoticeRejected), "ops"); err != nil {
		t.Fatal(err)
	}
	if err := src.NoticeClosed(ledger.NoticeKey(rejected, ledger.NoticeRejected)); err != nil {
		t.Fatal(err)
	}

	for round := range 2 {
		var items []ledger.Item
		if err := src.Export(func(it ledger.Item) error { items = append(items, it); return nil }); err != nil {
			t.Fatal(err)
		}
		n, err := dst.Import(items)
		if err != nil {
			t.Fatal(err)
		}
		if n.Entries != 6 || n.Records != 3 || n.OwnersKept != 0 {
			t.Fatalf("round %d: imported %+v", round, n)
		}
	}

	// Every entry as it was, in the same order.
	var want, got []string
	src.List(func(e *ledger.Entry) bool { want = append(want, js(t, e)); return true })
	dst.List(func(e *ledger.Entry) bool { got = append(got, js(t, e)); return true })
	if !slices.Equal(want, got) {
		t.Fatalf("entries differ after the copy:\n%v\n%v", want, got)
	}
	ids := func(s ledger.Store) string {
		active, err := s.Active()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range active {
			out = append(out, e.ID)
		}
		return fmt.Sprint(out)
	}
	if ids(src) != ids(dst) {
		t.Fatalf("active: %s, copied %s", ids(src), ids(dst))
	}
	for _, id := range []string{done, failed} {
		a, _ := src.Records(id)
		b, _ := dst.Records(id)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("records of %s: %v, copied %v", id, a, b)
		}
	}
	a, _ := src.Notices()
	b, _ := dst.Notices()
	if fmt.Sprint(a) != fmt.Sprint(b) || len(b) == 0 {
		t.Fatalf("notices: %v, copied %v", a, b)
	}
	// The rejected drop's notice came closed: it is not added again.
	if added, err := dst.Notify(rejected, ledger.NoticeRejected); err != nil || added {
		t.Fatalf("a copied closed notice was added again: %v, %v", added, err)
	}

	// The holds on bytes came along: the same bytes again are the done
	// drop's Duplicate; the forgotten and the failed ones' are not.
	for _, tt := range []struct {
		sha   string
		owner string
		dup   bool
	}{{doneSHA, done, true}, {forgotSHA, forgot, false}, {failedSHA, failed, false}} {
		if id, err := dst.BySHA256(tt.sha); err != nil || id != tt.owner {
			t.Fatalf("BySHA256 after the copy: %s, %v; want %s", id, err, tt.owner)
		}
		again := steps(claim)(t, dst)
		e, err := dst.Fetched(again, tt.sha)
		if err != nil {
			t.Fatal(err)
		}
		if (e.State == ledger.Duplicate) != tt.dup || tt.dup && e.DuplicateOf != tt.owner {
			t.Fatalf("bytes of %s again after the copy: %s (of %q)", tt.owner, e.State, e.DuplicateOf)
		}
	}

	// Copied into a store whose own drop holds the same bytes, that drop
	// stays their owner.
	other := copier(t, to(t))
	mine := steps(claim)(t, other)
	must(t)(other.Fetched(mine, doneSHA))
	var items []ledger.Item
	src.Export(func(it ledger.Item) error { items = append(items, it); return nil })
	n, err := other.Import(items)
	if err != nil || n.OwnersKept != 1 {
		t.Fatalf("import beside a drop of the same bytes: %+v, %v", n, err)
	}
	if id, _ := other.BySHA256(doneSHA); id != mine {
		t.Fatalf("the owner became %s, want %s (already there)", id, mine)
	}
}

func copier(t *testing.T, s ledger.Store) ledger.Copier {
	t.Helper()
	c, ok := s.(ledger.Copier)
	if !ok {
		t.Fatalf("%T cannot be copied", s)
	}
	return c
}
