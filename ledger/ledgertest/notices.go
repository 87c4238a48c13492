package ledgertest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"usagedrop/ledger"
)

// pending returns the keys of the notices in the outbox.
func pending(t *testing.T, s ledger.Store) []string {
	t.Helper()
	ns, err := s.Notices()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, n := range ns {
		keys = append(keys, n.Key)
	}
	return keys
}

// testNoticeOutcomes: every setup's outcome brings exactly the notice its
// state calls for, committed with the outcome, and no other.
func testNoticeOutcomes(t *testing.T, open Open) {
	want := map[ledger.State]ledger.NoticeEvent{ledger.Rejected: ledger.NoticeRejected, ledger.Failed: ledger.NoticeFailed}
	for _, su := range setups() {
		if su.finished {
			continue
		}
		t.Run(su.name, func(t *testing.T) {
			s := open(t)
			id := su.build(t, s)
			got := pending(t, s)
			ev, ok := want[su.state]
			if !ok {
				if len(got) != 0 {
					t.Fatalf("a %s drop has notices %v", su.state, got)
				}
				return
			}
			if !slices.Equal(got, []string{ledger.NoticeKey(id, ev)}) {
				t.Fatalf("a %s drop has notices %v, want one %s", su.state, got, ev)
			}
			ns, _ := s.Notices()
			if n := ns[0]; n.DropID != id || n.Event != ev || n.At.IsZero() || n.Closed || len(n.Targets) != 0 {
				t.Fatalf("notice %+v", n)
			}
		})
	}
	// A drop set aside after crashes failed too, and is told so.
	s := open(t)
	id := steps(claim, fetch)(t, s)
	for range 4 {
		must(t)(s.Begin(id, ledger.StepConvert))
	}
	if got := pending(t, s); !slices.Equal(got, []string{ledger.NoticeKey(id, ledger.NoticeFailed)}) {
		t.Fatalf("set aside: notices %v", got)
	}
	// A refused transition records no notice.
	other := steps(claim)(t, s)
	if _, err := s.Rejected(other, 1, nil, "1 problem"); !errors.Is(err, ledger.ErrTransition) {
		t.Fatalf("Rejected from claimed: %v", err)
	}
	if got := pending(t, s); len(got) != 1 {
		t.Fatalf("a refused transition left notices %v", got)
	}
}

// testNoticeDelivery: each target is marked once, in every state of the
// drop, finished or not; a closed notice leaves the outbox.
func testNoticeDelivery(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch, reject)(t, s)
	key := ledger.NoticeKey(id, ledger.NoticeRejected)
	next := time.Now().Add(time.Minute).Round(0)
	n, err := s.NoticeTried(key, "hook", "HTTP 500 from hooks.example.com", next)
	if err != nil {
		t.Fatal(err)
	}
	if d := n.Targets["hook"]; d.Attempts != 1 || !d.NextTry.Equal(next) || d.LastError == "" || !d.Done.IsZero() {
		t.Fatalf("after a failed try: %+v", d)
	}
	finish(t, s, id)
	// The drop is finished: the notice is still delivered and noted.
	n, err = s.NoticeDelivered(key, "hook")
	if err != nil {
		t.Fatalf("delivered on a finished drop: %v", err)
	}
	if d := n.Targets["hook"]; d.Attempts != 2 || d.Done.IsZero() || d.GaveUp || d.LastError != "" {
		t.Fatalf("after delivery: %+v", d)
	}
	e, _ := s.Get(id)
	if last := e.History[len(e.History)-1]; !strings.Contains(last.Note, "rejected notice sent to hook") || last.State != ledger.Rejected {
		t.Fatalf("history ends with %+v", last)
	}
	for name, call := range map[string]func() (*ledger.Notice, error){
		"delivered twice":         func() (*ledger.Notice, error) { return s.NoticeDelivered(key, "hook") },
		"tried after delivery":    func() (*ledger.Notice, error) { return s.NoticeTried(key, "hook", "x", next) },
		"given up after delivery": func() (*ledger.Notice, error) { return s.NoticeGaveUp(key, "hook", "x") },
	} {
		if _, err := call(); !errors.Is(err, ledger.ErrTransition) {
			t.Errorf("%s: %v, want ErrTransition", name, err)
		}
	}
	for _, k := range []string{id + "/stuck", "nope/rejected", "nope"} {
		if _, err := s.NoticeDelivered(k, "hook"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown notice %s: %v, want ErrNotFound", k, err)
		}
	}
	n, err = s.NoticeGaveUp(key, "mail", "550 no such user")
	if err != nil || !n.Targets["mail"].GaveUp {
		t.Fatalf("gave up: %+v, %v", n, err)
	}
	if err := s.NoticeClosed(key); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, s); len(got) != 0 {
		t.Fatalf("closed notice still pending: %v", got)
	}
	if _, err := s.NoticeTried(key, "other", "x", next); err == nil {
		t.Fatal("a closed notice took a try")
	}
}

// testNoticeStuck: Notify adds a notice once per drop and event, even
// after it was closed, while the drop is unfinished.
func testNoticeStuck(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch, conv)(t, s)
	for i, want := range []bool{true, false} {
		added, err := s.Notify(id, ledger.NoticeStuck)
		if err != nil || added != want {
			t.Fatalf("Notify %d: %v, %v; want %v", i+1, added, err, want)
		}
	}
	key := ledger.NoticeKey(id, ledger.NoticeStuck)
	if _, err := s.NoticeDelivered(key, "hook"); err != nil {
		t.Fatal(err)
	}
	if err := s.NoticeClosed(key); err != nil {
		t.Fatal(err)
	}
	if added, err := s.Notify(id, ledger.NoticeStuck); err != nil || added {
		t.Fatalf("Notify after the notice was closed: %v, %v", added, err)
	}
	if e, _ := s.Get(id); e.State != ledger.Converted || e.Finished {
		t.Fatalf("a notice moved the drop: %s finished %v", e.State, e.Finished)
	}
	if _, err := s.Notify("nope", ledger.NoticeStuck); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("Notify of an unknown drop: %v", err)
	}
	// The same drop failing later is a new event, told as well.
	submit(t, s, id)
	must(t)(s.PartFinal(id, 0, ledger.PartFailed, "Zuora: bad account", 0))
	must(t)(s.Outcome(id, ledger.Failed, "import failed", false))
	if got := pending(t, s); !slices.Equal(got, []string{ledger.NoticeKey(id, ledger.NoticeFailed)}) {
		t.Fatalf("after failing: %v", got)
	}
}

// testNotices is the outbox of notifications: what records a notice, and
// how its deliveries are marked.
func testNotices(t *testing.T, open Open) {
	t.Run("Outcomes", func(t *testing.T) { testNoticeOutcomes(t, open) })
	t.Run("Delivery", func(t *testing.T) { testNoticeDelivery(t, open) })
	t.Run("Stuck", func(t *testing.T) { testNoticeStuck(t, open) })
}
