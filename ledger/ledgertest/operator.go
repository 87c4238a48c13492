package ledgertest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"usagedrop/ledger"
)

// testOperator holds the operator's transitions to the table: Wake on
// every unfinished drop, Requeue only from a finished rejection or
// failure, Forget only of finished bytes, each refusal with a reason and
// no change.
func testOperator(t *testing.T, open Open) {
	t.Run("Table", func(t *testing.T) { testOperatorTable(t, open) })
	t.Run("RequeueIsANewGeneration", func(t *testing.T) { testRequeueGeneration(t, open) })
	t.Run("RequeueRefusesImportedParts", func(t *testing.T) { testRequeuePartial(t, open) })
	t.Run("ForgetLetsBytesAgain", func(t *testing.T) { testForget(t, open) })
	t.Run("BySHA256", func(t *testing.T) { testBySHA(t, open) })
}

func testOperatorTable(t *testing.T, open Open) {
	s := open(t)
	type op struct {
		t    ledger.Transition
		to   func(ledger.State) ledger.State
		call func(id string) (*ledger.Entry, error)
		want func(su setup) bool
	}
	same := func(st ledger.State) ledger.State { return st }
	ops := []op{
		{ledger.TWake, same, func(id string) (*ledger.Entry, error) { return s.Wake(id, "try now") },
			func(su setup) bool { return !su.finished }},
		{ledger.TRequeue, func(ledger.State) ledger.State { return ledger.Discovered },
			func(id string) (*ledger.Entry, error) { return s.Requeue(id, "sent again") },
			func(su setup) bool {
				return su.finished && (su.state == ledger.Rejected || su.state == ledger.Failed)
			}},
		{ledger.TForget, same, func(id string) (*ledger.Entry, error) { return s.Forget(id, "forgotten") },
			func(su setup) bool { return su.finished && su.state == ledger.Done }},
	}
	for _, su := range setups() {
		for _, o := range ops {
			t.Run(su.name+"/"+string(o.t), func(t *testing.T) {
				id := su.build(t, s)
				before, err := s.Get(id)
				if err != nil {
					t.Fatal(err)
				}
				got, err := o.call(id)
				if !o.want(su) {
					var te *ledger.TransitionError
					if !errors.Is(err, ledger.ErrTransition) || !errors.As(err, &te) {
						t.Fatalf("refused %s: err = %v, want ErrTransition", o.t, err)
					}
					if o.t != ledger.TWake && te.Reason == "" {
						t.Fatalf("refused %s without a reason: %v", o.t, err)
					}
					if after, _ := s.Get(id); js(t, before) != js(t, after) {
						t.Fatalf("a refused %s changed the entry", o.t)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s refused: %v", o.t, err)
				}
				if !ledger.Allowed(o.t, su.state, o.to(su.state)) || got.State != o.to(su.state) {
					t.Fatalf("%s: state %s, table says %s → %s", o.t, got.State, su.state, o.to(su.state))
				}
				if n := len(got.History); n != len(before.History)+1 {
					t.Fatalf("%s left no event in the history", o.t)
				}
				active, _ := s.Active()
				inActive := false
				for _, a := range active {
					inActive = inActive || a.ID == id
				}
				if wantActive := o.t != ledger.TForget; inActive != wantActive || got.Finished == wantActive {
					t.Fatalf("%s: active %v, finished %v", o.t, inActive, got.Finished)
				}
			})
		}
	}
}

// hexSHA is a sha256 in hex that no other drop has.
func hexSHA() string {
	h := sha256.Sum256([]byte(freshSHA()))
	return hex.EncodeToString(h[:])
}

// rejectedDrop is a finished rejected drop of bytes sha.
func rejectedDrop(t *testing.T, s ledger.Store, sha string) string {
	id := steps(claim)(t, s)
	must(t)(s.Fetched(id, sha))
	reject(t, s, id)
	finish(t, s, id)
	return id
}

// A drop sent again takes the file from where it was moved, and its
// generation is past every earlier drop of the same bytes, so its
// idempotency keys are new.
func testRequeueGeneration(t *testing.T, open Open) {
	s := open(t)
	sha := hexSHA()
	a := rejectedDrop(t, s, sha)
	e, err := s.Requeue(a, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if e.Key != "failed/a.csv" || e.FinalKey != "" || e.Generation != 1 || e.Requeued != 1 || e.Parts != nil || e.Problems != 0 {
		t.Fatalf("requeued: key %q final %q gen %d requeued %d problems %d", e.Key, e.FinalKey, e.Generation, e.Requeued, e.Problems)
	}
	claim(t, s, a)
	if e, err = s.Fetched(a, sha); err != nil || e.State != ledger.Fetched || e.Generation != 1 {
		t.Fatalf("fetched again: %+v, %v", e, err)
	}
	reject(t, s, a)
	finish(t, s, a)

	// A later drop of the same bytes, rejected too; then the first is
	// sent again once more: past the later one's generation.
	b := rejectedDrop(t, s, sha)
	eb, _ := s.Get(b)
	if eb.Generation != 2 {
		t.Fatalf("later drop: generation %d, want 2", eb.Generation)
	}
	must(t)(s.Requeue(a, "operator"))
	claim(t, s, a)
	if e, err = s.Fetched(a, sha); err != nil || e.Generation != 3 {
		t.Fatalf("second requeue: generation %d, %v; want 3", e.Generation, err)
	}

	// A requeued drop whose bytes were imported meanwhile is a duplicate.
	c := rejectedDrop(t, s, hexSHA())
	ec, _ := s.Get(c)
	must(t)(s.Requeue(c, "operator"))
	d := steps(claim)(t, s)
	must(t)(s.Fetched(d, ec.SHA256))
	claim(t, s, c)
	if e, err = s.Fetched(c, ec.SHA256); err != nil || e.State != ledger.Duplicate || e.DuplicateOf != d {
		t.Fatalf("requeued drop of bytes taken meanwhile: %s of %q, %v", e.State, e.DuplicateOf, err)
	}
}

// A failed drop that had a part imported is not sent again: that part
// would be imported twice.
func testRequeuePartial(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch)(t, s)
	must(t)(s.Converted(id, ledger.Conversion{Parts: []ledger.Part{
		{Index: 0, Name: "a-0.csv", State: ledger.PartPending}, {Index: 1, Name: "a-1.csv", State: ledger.PartPending},
	}}))
	must(t)(s.PartSubmitted(id, 0, time.Now()))
	must(t)(s.PartAccepted(id, 0, ledger.Receipt{ImportID: "imp-0"}))
	must(t)(s.PartFinal(id, 0, ledger.PartCompleted, "", 3))
	must(t)(s.PartSubmitted(id, 1, time.Now()))
	must(t)(s.PartFinal(id, 1, ledger.PartFailed, "UOM unknown", 0))
	must(t)(s.Outcome(id, ledger.Failed, "part 2 failed", false))
	finish(t, s, id)
	_, err := s.Requeue(id, "operator")
	if !errors.Is(err, ledger.ErrTransition) || !strings.Contains(err.Error(), "part 1 of 2 was imported (import imp-0)") {
		t.Fatalf("requeue of a half-imported drop: %v", err)
	}
	// Not moved to failed/ (set aside in place): nothing to take.
	id = steps(claim)(t, s)
	must(t)(s.Outcome(id, ledger.Failed, "gone", true))
	if _, err := s.Requeue(id, "operator"); !errors.Is(err, ledger.ErrTransition) || !strings.Contains(err.Error(), "not moved to failed/") {
		t.Fatalf("requeue of a drop with no file: %v", err)
	}
}

// Forgotten bytes may be dropped again: the new drop is not a Duplicate,
// and its generation is past the forgotten one's.
func testForget(t *testing.T, open Open) {
	s := open(t)
	sha := hexSHA()
	a := steps(claim)(t, s)
	must(t)(s.Fetched(a, sha))
	for _, f := range []func(*testing.T, ledger.Store, string){conv, submit, accept, complete, outcome(ledger.Done)} {
		f(t, s, a)
	}
	if _, err := s.Forget(a, "operator"); !errors.Is(err, ledger.ErrTransition) || !strings.Contains(err.Error(), "still being worked on") {
		t.Fatalf("forget before finished: %v", err)
	}
	finish(t, s, a)
	b := steps(claim)(t, s)
	if e, _ := s.Fetched(b, sha); e.State != ledger.Duplicate {
		t.Fatalf("re-drop before forget: %s, want duplicate", e.State)
	}
	if _, err := s.Forget(b, "operator"); !errors.Is(err, ledger.ErrTransition) || !strings.Contains(err.Error(), "forget that drop instead") {
		t.Fatalf("forget of a duplicate: %v", err)
	}
	if err := s.CanForget(b); !errors.Is(err, ledger.ErrTransition) {
		t.Fatalf("CanForget of a duplicate: %v", err)
	}
	finish(t, s, b)
	if _, err := s.Requeue(b, "operator"); !errors.Is(err, ledger.ErrTransition) || !strings.Contains(err.Error(), "forget that drop") {
		t.Fatalf("requeue of a duplicate whose bytes are owned: %v", err)
	}
	if err := s.CanForget(a); err != nil {
		t.Fatalf("CanForget: %v", err)
	}
	if e, _ := s.Get(a); !e.Forgotten.IsZero() {
		t.Fatal("CanForget forgot")
	}
	e, err := s.Forget(a, "forgotten by ops")
	if err != nil || e.Forgotten.IsZero() || e.State != ledger.Done || !e.Finished || e.History[len(e.History)-1].Note != "forgotten by ops" {
		t.Fatalf("forget: %+v, %v", e, err)
	}
	again, err := s.Forget(a, "twice")
	if err != nil || js(t, again) != js(t, e) {
		t.Fatalf("forgetting twice changed the entry: %v", err)
	}
	// The duplicate of forgotten bytes may now be sent again from failed/.
	if e, err := s.Requeue(b, "operator"); err != nil || e.State != ledger.Discovered || e.Key != "failed/a.csv" || e.DuplicateOf != "" {
		t.Fatalf("requeue of a duplicate of forgotten bytes: %+v, %v", e, err)
	}
	c := steps(claim)(t, s)
	if e, _ := s.Fetched(c, sha); e.State != ledger.Fetched || e.Generation != 1 {
		t.Fatalf("re-drop after forget: %s generation %d, want fetched, 1", e.State, e.Generation)
	}
	r := rejectedDrop(t, s, hexSHA())
	if _, err := s.Forget(r, "operator"); !errors.Is(err, ledger.ErrTransition) || !strings.Contains(err.Error(), "may already be dropped again") {
		t.Fatalf("forget of a rejected drop: %v", err)
	}
}

func testBySHA(t *testing.T, open Open) {
	s := open(t)
	sha := hexSHA()
	id := rejectedDrop(t, s, sha)
	for _, ref := range []string{sha, sha[:12], strings.ToUpper(sha[:8])} {
		if got, err := s.BySHA256(ref); err != nil || got != id {
			t.Errorf("BySHA256(%s) = %q, %v; want %s", ref, got, err, id)
		}
		if e, err := ledger.Resolve(s, ref); err != nil || e.ID != id {
			t.Errorf("Resolve(%s): %v", ref, err)
		}
	}
	if e, err := ledger.Resolve(s, id); err != nil || e.ID != id {
		t.Errorf("Resolve(id): %v", err)
	}
	if _, err := s.BySHA256(sha[:7]); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("7 digits: %v, want ErrNotFound", err)
	}
	if _, err := s.BySHA256(strings.Repeat("0", 64)); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("unknown sha: %v", err)
	}
	// Two drops whose sums share 8 digits.
	other := sha[:8] + hexSHA()[8:]
	rejectedDrop(t, s, other)
	if _, err := s.BySHA256(sha[:8]); !errors.Is(err, ledger.ErrAmbiguous) {
		t.Errorf("shared prefix: %v, want ErrAmbiguous", err)
	}
}
