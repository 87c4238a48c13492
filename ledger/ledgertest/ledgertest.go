// Package ledgertest is the conformance suite every ledger.Store passes:
// the bbolt ledger today, a PostgreSQL one later. It checks the from → to
// table pair by pair, the attempt bounds, raw-byte names and the caps on
// what an entry stores.
package ledgertest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"usagedrop/ledger"
)

// Open returns an empty store with MaxStarts 3, closed when t ends.
type Open func(t *testing.T) ledger.Store

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open Open) {
	t.Run("Table", func(t *testing.T) { testTable(t, open) })
	t.Run("CrashesSetAside", func(t *testing.T) { testCrashes(t, open) })
	t.Run("FileFailuresSetAside", func(t *testing.T) { testFileFailures(t, open) })
	t.Run("OutagesWaitedOut", func(t *testing.T) { testOutages(t, open) })
	t.Run("PanicSetAside", func(t *testing.T) { testPanic(t, open) })
	t.Run("NothingSetAsideInZuorasHands", func(t *testing.T) { testInFlight(t, open) })
	t.Run("OutcomeSetAsideFinishesInPlace", func(t *testing.T) { testFinishCrashes(t, open) })
	t.Run("RawNames", func(t *testing.T) { testRawNames(t, open) })
	t.Run("Caps", func(t *testing.T) { testCaps(t, open) })
	t.Run("Duplicates", func(t *testing.T) { testDuplicates(t, open) })
	t.Run("Records", func(t *testing.T) { testRecords(t, open) })
	t.Run("Operator", func(t *testing.T) { testOperator(t, open) })
	t.Run("Notices", func(t *testing.T) { testNotices(t, open) })
	t.Run("Reads", func(t *testing.T) { testReads(t, open) })
}

// setup is an entry brought to a state by legal transitions.
type setup struct {
	name     string
	state    ledger.State
	part     ledger.PartState // state of part 0, "" without parts
	finished bool
	build    func(t *testing.T, s ledger.Store) string
}

// freshSHA is a sha256 no other drop has.
func freshSHA() string { return "sha-" + rand.Text() }

// must fails t on a transition's error: must(t)(s.Claimed(...)).
func must(t *testing.T) func(*ledger.Entry, error) {
	return func(_ *ledger.Entry, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func create(t *testing.T, s ledger.Store) string {
	t.Helper()
	e, err := s.Create("src", "a.csv", "a.csv", 10, "etag", false)
	if err != nil {
		t.Fatal(err)
	}
	return e.ID
}

func onePart() ledger.Conversion {
	return ledger.Conversion{Parts: []ledger.Part{{Index: 0, Name: "a-0.csv", State: ledger.PartPending}}, Records: 3, Note: "3 records"}
}

// steps runs fns in order on a new entry and returns its id.
func steps(fns ...func(t *testing.T, s ledger.Store, id string)) func(t *testing.T, s ledger.Store) string {
	return func(t *testing.T, s ledger.Store) string {
		id := create(t, s)
		for _, f := range fns {
			f(t, s, id)
		}
		return id
	}
}

func claim(t *testing.T, s ledger.Store, id string) {
	must(t)(s.Claimed(id, "processing/i/a.csv", "e2", 10))
}
func fetch(t *testing.T, s ledger.Store, id string) { must(t)(s.Fetched(id, freshSHA())) }
func conv(t *testing.T, s ledger.Store, id string)  { must(t)(s.Converted(id, onePart())) }
func submit(t *testing.T, s ledger.Store, id string) {
	must(t)(s.PartSubmitted(id, 0, time.Now()))
}
func accept(t *testing.T, s ledger.Store, id string) {
	must(t)(s.PartAccepted(id, 0, ledger.Receipt{ImportID: "imp-1"}))
}
func complete(t *testing.T, s ledger.Store, id string) {
	must(t)(s.PartFinal(id, 0, ledger.PartCompleted, "", 3))
}
func outcome(st ledger.State) func(t *testing.T, s ledger.Store, id string) {
	return func(t *testing.T, s ledger.Store, id string) { must(t)(s.Outcome(id, st, "because", false)) }
}
func reject(t *testing.T, s ledger.Store, id string) { must(t)(s.Rejected(id, 2, nil, "2 problems")) }
func finish(t *testing.T, s ledger.Store, id string) {
	must(t)(s.Finished(id, "failed/a.csv", "moved"))
}

func duplicate(t *testing.T, s ledger.Store) string {
	first := steps(claim)(t, s)
	sha := freshSHA()
	must(t)(s.Fetched(first, sha))
	id := steps(claim)(t, s)
	e, err := s.Fetched(id, sha)
	if err != nil || e.State != ledger.Duplicate {
		t.Fatalf("second drop of the same bytes: %v, %v", e, err)
	}
	return id
}

func setups() []setup {
	c := ledger.PartCompleted
	out := []setup{
		{"discovered", ledger.Discovered, "", false, steps()},
		{"claimed", ledger.Claimed, "", false, steps(claim)},
		{"fetched", ledger.Fetched, "", false, steps(claim, fetch)},
		{"converted", ledger.Converted, ledger.PartPending, false, steps(claim, fetch, conv)},
		{"uploading/submitted", ledger.Uploading, ledger.PartSubmitted, false, steps(claim, fetch, conv, submit)},
		{"uploading/accepted", ledger.Uploading, ledger.PartAccepted, false, steps(claim, fetch, conv, submit, accept)},
		{"uploading/completed", ledger.Uploading, c, false, steps(claim, fetch, conv, submit, accept, complete)},
		{"done", ledger.Done, c, false, steps(claim, fetch, conv, submit, accept, complete, outcome(ledger.Done))},
		{"rejected", ledger.Rejected, "", false, steps(claim, fetch, reject)},
		{"failed", ledger.Failed, "", false, steps(claim, outcome(ledger.Failed))},
		{"duplicate", ledger.Duplicate, "", false, duplicate},
		{"vanished", ledger.Vanished, "", false, steps(outcome(ledger.Vanished))},
	}
	for _, s := range out[7:] {
		build := s.build
		out = append(out, setup{s.name + "/finished", s.state, s.part, true, func(t *testing.T, st ledger.Store) string {
			id := build(t, st)
			finish(t, st, id)
			return id
		}})
	}
	return out
}

// try is one transition called on an entry.
type try struct {
	t      ledger.Transition
	to     ledger.State     // "" for "stays"
	partTo ledger.PartState // for part transitions
	call   func(s ledger.Store, id string) (*ledger.Entry, error)
}

func tries() []try {
	now := time.Now()
	var out []try
	add := func(t ledger.Transition, to ledger.State, partTo ledger.PartState, call func(s ledger.Store, id string) (*ledger.Entry, error)) {
		out = append(out, try{t, to, partTo, call})
	}
	add(ledger.TClaimed, ledger.Claimed, "", func(s ledger.Store, id string) (*ledger.Entry, error) {
		return s.Claimed(id, "processing/i/a.csv", "e", 1)
	})
	add(ledger.TFetched, ledger.Fetched, "", func(s ledger.Store, id string) (*ledger.Entry, error) { return s.Fetched(id, freshSHA()) })
	add(ledger.TRefetch, ledger.Claimed, "", func(s ledger.Store, id string) (*ledger.Entry, error) { return s.Refetch(id, "lost") })
	add(ledger.TConverted, ledger.Converted, "", func(s ledger.Store, id string) (*ledger.Entry, error) { return s.Converted(id, onePart()) })
	add(ledger.TRejected, ledger.Rejected, "", func(s ledger.Store, id string) (*ledger.Entry, error) { return s.Rejected(id, 1, nil, "bad") })
	add(ledger.TPartSubmitted, ledger.Uploading, ledger.PartSubmitted, func(s ledger.Store, id string) (*ledger.Entry, error) {
		return s.PartSubmitted(id, 0, now)
	})
	add(ledger.TPartAccepted, ledger.Uploading, ledger.PartAccepted, func(s ledger.Store, id string) (*ledger.Entry, error) {
		return s.PartAccepted(id, 0, ledger.Receipt{ImportID: "x"})
	})
	add(ledger.TPartStatus, ledger.Uploading, ledger.PartAccepted, func(s ledger.Store, id string) (*ledger.Entry, error) {
		return s.PartStatus(id, 0, "Processing")
	})
	for _, ps := range []ledger.PartState{ledger.PartCompleted, ledger.PartFailed, ledger.PartCanceled} {
		add(ledger.TPartFinal, ledger.Uploading, ps, func(s ledger.Store, id string) (*ledger.Entry, error) {
			return s.PartFinal(id, 0, ps, "m", 0)
		})
	}
	for _, st := range []ledger.State{ledger.Done, ledger.Failed, ledger.Vanished, ledger.Rejected, ledger.Duplicate} {
		add(ledger.TOutcome, st, "", func(s ledger.Store, id string) (*ledger.Entry, error) { return s.Outcome(id, st, "n", false) })
	}
	add(ledger.TFinished, "", "", func(s ledger.Store, id string) (*ledger.Entry, error) {
		return s.Finished(id, "imported/a.csv", "moved")
	})
	add(ledger.TBegin, "", "", func(s ledger.Store, id string) (*ledger.Entry, error) { return s.Begin(id, ledger.StepConvert) })
	add(ledger.TEnd, "", "", func(s ledger.Store, id string) (*ledger.Entry, error) { return s.End(id) })
	add(ledger.TRetry, "", "", func(s ledger.Store, id string) (*ledger.Entry, error) {
		return s.Retry(id, ledger.Failure{Step: ledger.StepConvert, Cause: ledger.CauseOther, Err: "x"})
	})
	add(ledger.TRenewed, "", "", func(s ledger.Store, id string) (*ledger.Entry, error) { return s.Renewed(id, "e9") })
	add(ledger.TRecordsCreated, ledger.Uploading, ledger.PartSubmitted, func(s ledger.Store, id string) (*ledger.Entry, error) {
		if err := s.RecordsCreated(id, 0, []ledger.CreatedRecord{{Key: recKey(1), ZuoraID: "z1"}}); err != nil {
			return nil, err
		}
		return s.Get(id)
	})
	add(ledger.TRecordsAdopted, ledger.Uploading, ledger.PartSubmitted, func(s ledger.Store, id string) (*ledger.Entry, error) {
		if _, err := s.RecordsAdopted(id, 0, []string{recKey(1)}); err != nil {
			return nil, err
		}
		return s.Get(id)
	})
	return out
}

// testTable tries every transition from every reachable situation: the
// ones the table allows work and land where it says; the others fail
// with ErrTransition and leave the entry exactly as it was.
func testTable(t *testing.T, open Open) {
	s := open(t)
	for _, su := range setups() {
		for _, tr := range tries() {
			name := fmt.Sprintf("%s/%s", su.name, tr.t)
			if tr.to != "" {
				name += "→" + string(tr.to)
			}
			if tr.partTo != "" {
				name += "/part→" + string(tr.partTo)
			}
			t.Run(name, func(t *testing.T) {
				id := su.build(t, s)
				before, err := s.Get(id)
				if err != nil {
					t.Fatal(err)
				}
				to := tr.to
				if to == "" {
					to = su.state
				}
				want := !su.finished && ledger.Allowed(tr.t, su.state, to)
				if tr.partTo != "" {
					want = want && su.part != "" && ledger.PartAllowed(tr.t, su.part, tr.partTo)
				}
				if tr.t == ledger.TOutcome && to == ledger.Done {
					want = want && su.part == ledger.PartCompleted
				}
				got, err := tr.call(s, id)
				if !want {
					if !errors.Is(err, ledger.ErrTransition) {
						t.Fatalf("refused transition: err = %v, want ErrTransition", err)
					}
					after, _ := s.Get(id)
					if a, b := js(t, before), js(t, after); a != b {
						t.Fatalf("a refused transition changed the entry:\nbefore %s\nafter  %s", a, b)
					}
					return
				}
				if err != nil {
					t.Fatalf("legal transition refused: %v", err)
				}
				if got.State != to {
					t.Fatalf("state %s, want %s", got.State, to)
				}
				if tr.partTo != "" && got.Parts[0].State != tr.partTo {
					t.Fatalf("part state %s, want %s", got.Parts[0].State, tr.partTo)
				}
				stored, err := s.Get(id)
				if err != nil || js(t, stored) != js(t, got) {
					t.Fatalf("returned entry is not what was stored: %v", err)
				}
			})
		}
	}
}

func js(t *testing.T, e *ledger.Entry) string {
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A step begun three times without ending (the daemon died each time) is
// set aside at the next start, with the sentence the user reads.
func testCrashes(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch)(t, s)
	for i := range 3 {
		e, err := s.Begin(id, ledger.StepConvert)
		if err != nil || e.State != ledger.Fetched || e.Crashes != i {
			t.Fatalf("start %d: %+v, %v", i+1, e, err)
		}
	}
	e, err := s.Begin(id, ledger.StepConvert)
	if err != nil {
		t.Fatal(err)
	}
	const want = "this file stopped the service 3 times while being converted; it was set aside"
	if e.State != ledger.Failed || e.LastError != want || e.Finished {
		t.Fatalf("after 3 crashes: state %s finished %v, last error %q", e.State, e.Finished, e.LastError)
	}
	// A step that ends (a transition, a retry, a stop) is no crash.
	id = steps(claim)(t, s)
	for range 5 {
		must(t)(s.Begin(id, ledger.StepFetch))
		must(t)(s.Retry(id, ledger.Failure{Step: ledger.StepFetch, Cause: ledger.CauseOther, Err: "ledger busy"}))
		must(t)(s.Begin(id, ledger.StepFetch))
		must(t)(s.End(id))
	}
	// Progress forgives earlier crashes.
	must(t)(s.Begin(id, ledger.StepFetch))
	must(t)(s.Begin(id, ledger.StepFetch))
	must(t)(s.Begin(id, ledger.StepFetch))
	e, err = s.Fetched(id, freshSHA())
	if err != nil || e.Crashes != 0 || e.Step != "" {
		t.Fatalf("progress kept the crash count: %+v, %v", e, err)
	}
	for range 3 {
		must(t)(s.Begin(id, ledger.StepConvert))
	}
	if e, _ := s.Get(id); e.State != ledger.Fetched {
		t.Fatalf("two crashes after progress set the drop aside: %s", e.State)
	}
}

// Three failures the file causes set it aside; the reason says why.
func testFileFailures(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch)(t, s)
	var e *ledger.Entry
	for range 3 {
		must(t)(s.Begin(id, ledger.StepConvert))
		var err error
		e, err = s.Retry(id, ledger.Failure{Step: ledger.StepConvert, Cause: ledger.CauseFile, Err: "read: unexpected EOF", Next: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	if e.State != ledger.Failed || !strings.Contains(e.LastError, "this file failed 3 times while being converted (read: unexpected EOF); it was set aside") {
		t.Fatalf("after 3 file failures: %s, %q", e.State, e.LastError)
	}
}

// An outage never sets a good file aside; after a few tries the entry
// says what it waits for and since when, and progress clears it.
func testOutages(t *testing.T, open Open) {
	s := open(t)
	for _, c := range []struct {
		cause ledger.Cause
		words string
	}{{ledger.CauseZuora, "waiting for Zuora since "}, {ledger.CauseSource, "waiting for the drop folder since "}, {ledger.CauseSpace, "waiting for space in the spool since "}} {
		id := steps(claim)(t, s)
		var first time.Time
		for i := range 20 {
			must(t)(s.Begin(id, ledger.StepFetch))
			e, err := s.Retry(id, ledger.Failure{Step: ledger.StepFetch, Cause: c.cause, Err: "boom", Next: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if e.State != ledger.Claimed {
				t.Fatalf("%s: outage set the drop to %s", c.words, e.State)
			}
			if i == 0 {
				first = e.WaitingSince
			}
			if !e.WaitingSince.Equal(first) {
				t.Fatalf("%s: the wait's start moved from %v to %v", c.words, first, e.WaitingSince)
			}
			shown := strings.HasPrefix(e.LastError, c.words) && strings.HasSuffix(e.LastError, ": boom")
			if shown != (i+1 >= ledger.ShowWaitAfter) {
				t.Fatalf("%s: try %d: last error %q", c.words, i+1, e.LastError)
			}
		}
		e, err := s.Fetched(id, freshSHA())
		if err != nil || e.WaitingFor != "" || e.LastError != "" || e.Attempts != 0 {
			t.Fatalf("progress kept the wait: %+v, %v", e, err)
		}
	}
}

// A panic sets the drop aside at once.
func testPanic(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch)(t, s)
	must(t)(s.Begin(id, ledger.StepConvert))
	e, err := s.Retry(id, ledger.Failure{Step: ledger.StepConvert, Cause: ledger.CausePanic, Err: "index out of range"})
	if err != nil || e.State != ledger.Failed || !strings.Contains(e.LastError, "internal error while this file was being converted (index out of range)") {
		t.Fatalf("after a panic: %+v, %v", e, err)
	}
}

// While a part is in Zuora's hands the drop is never failed by a bound:
// the import may complete.
func testInFlight(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch, conv, submit)(t, s)
	for range 6 {
		must(t)(s.Begin(id, ledger.StepUpload))
	}
	must(t)(s.Retry(id, ledger.Failure{Step: ledger.StepUpload, Cause: ledger.CausePanic, Err: "x"}))
	for range 4 {
		must(t)(s.Retry(id, ledger.Failure{Step: ledger.StepUpload, Cause: ledger.CauseFile, Err: "x"}))
	}
	if e, _ := s.Get(id); e.State != ledger.Uploading {
		t.Fatalf("a drop with a part in Zuora's hands was set aside: %s", e.State)
	}
}

// A drop whose finishing keeps stopping the service is finished where it
// is, with the reason, so the daemon stops trying.
func testFinishCrashes(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch, reject)(t, s)
	for range 4 {
		must(t)(s.Begin(id, ledger.StepFinish))
	}
	e, _ := s.Get(id)
	if !e.Finished || e.State != ledger.Rejected || !strings.Contains(e.LastError, "stopped the service 3 times while being moved to its final folder") {
		t.Fatalf("%+v", e)
	}
	active, _ := s.Active()
	for _, a := range active {
		if a.ID == id {
			t.Fatal("a drop set aside is still active")
		}
	}
}

// Names and keys are any bytes and come back exactly.
func testRawNames(t *testing.T, open Open) {
	s := open(t)
	for _, name := range []string{"plain.csv", "mars\xe9.csv", "\xff\xfe\x00.csv", "nul\x00.csv", "line\nbreak.csv", "esc\x1b[31m.csv", "bidi\u202egnp.csv", "ünïcödé.xlsx"} {
		e, err := s.Create("src", name, name, 1, "", false)
		if err != nil {
			t.Fatal(err)
		}
		key := "processing/i/" + name
		must(t)(s.Claimed(e.ID, key, "", 1))
		must(t)(s.Outcome(e.ID, ledger.Failed, "could not read "+name, false))
		must(t)(s.Finished(e.ID, "failed/"+name, "moved"))
		got, err := s.Get(e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != name || got.Key != key || got.FinalKey != "failed/"+name {
			t.Fatalf("%q came back as name %q key %q final %q", name, got.Name, got.Key, got.FinalKey)
		}
		for _, ev := range got.History {
			if strings.ContainsAny(ev.Note, "\n\x1b\x00") {
				t.Fatalf("a note shows raw control bytes: %q", ev.Note)
			}
		}
		found := false
		s.List(func(x *ledger.Entry) bool {
			found = found || x.ID == e.ID && x.Name == name
			return true
		})
		if !found {
			t.Fatalf("List lost %q", name)
		}
	}
}

// No drop can make its entry large.
func testCaps(t *testing.T, open Open) {
	s := open(t)
	id := steps(claim, fetch)(t, s)
	huge := strings.Repeat("=HYPERLINK(\"x\") ", 10_000)
	for range 200 {
		must(t)(s.Refetch(id, huge))
		must(t)(s.Fetched(id, "caps-sha"))
	}
	var warnings []string
	for range 100 {
		warnings = append(warnings, huge)
	}
	must(t)(s.Converted(id, ledger.Conversion{Parts: onePart().Parts, Warnings: warnings, Note: huge}))
	must(t)(s.PartSubmitted(id, 0, time.Now()))
	must(t)(s.PartAccepted(id, 0, ledger.Receipt{ImportID: "i"}))
	for range 50 {
		must(t)(s.PartStatus(id, 0, "Processing"))
		must(t)(s.Retry(id, ledger.Failure{Cause: ledger.CauseZuora, Err: huge}))
	}
	must(t)(s.PartFinal(id, 0, ledger.PartFailed, huge, 0))
	e, err := s.Outcome(id, ledger.Failed, huge, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(js(t, e)); n > 64<<10 {
		t.Fatalf("entry is %d bytes of JSON after a hostile drop", n)
	}
	if len(e.LastError) > ledger.MaxText || len(e.Parts[0].Message) > ledger.MaxText || len(e.Warnings) > ledger.MaxWarnings {
		t.Fatalf("caps not applied: last error %d, message %d, %d warnings", len(e.LastError), len(e.Parts[0].Message), len(e.Warnings))
	}
	if len(e.History) > ledger.MaxHistory || e.Folded == 0 {
		t.Fatalf("history has %d events, %d folded", len(e.History), e.Folded)
	}
	if e.History[0].State != ledger.Discovered || e.History[len(e.History)-1].State != ledger.Failed {
		t.Fatalf("history lost its first or last event: %v ... %v", e.History[0], e.History[len(e.History)-1])
	}
}

// The same bytes are taken once while a drop holds them.
func testDuplicates(t *testing.T, open Open) {
	s := open(t)
	tests := []struct {
		name  string
		first func(t *testing.T, s ledger.Store, id string)
		dup   bool
	}{
		{"fetched", func(*testing.T, ledger.Store, string) {}, true},
		{"converted", conv, true},
		{"uploading", func(t *testing.T, s ledger.Store, id string) { conv(t, s, id); submit(t, s, id) }, true},
		{"done", func(t *testing.T, s ledger.Store, id string) {
			conv(t, s, id)
			submit(t, s, id)
			accept(t, s, id)
			complete(t, s, id)
			outcome(ledger.Done)(t, s, id)
		}, true},
		{"rejected", reject, false},
		{"failed", outcome(ledger.Failed), false},
		{"failed after a part imported", func(t *testing.T, s ledger.Store, id string) {
			conv(t, s, id)
			submit(t, s, id)
			accept(t, s, id)
			complete(t, s, id)
			outcome(ledger.Failed)(t, s, id)
		}, true},
		// The object API: the ledger knows every record created, and
		// the same bytes again send only the others.
		{"failed with records created one by one", func(t *testing.T, s ledger.Store, id string) {
			must(t)(s.Converted(id, ledger.Conversion{Parts: []ledger.Part{
				{Index: 0, Name: "a-0.csv", State: ledger.PartPending}, {Index: 1, Name: "a-1.csv", State: ledger.PartPending}}}))
			submit(t, s, id)
			if err := s.RecordsCreated(id, 0, recsOf(0, 3)); err != nil {
				t.Fatal(err)
			}
			accept(t, s, id)
			complete(t, s, id)
			must(t)(s.PartSubmitted(id, 1, time.Now()))
			if err := s.RecordsCreated(id, 1, recsOf(3, 4)); err != nil {
				t.Fatal(err)
			}
			must(t)(s.PartFinal(id, 1, ledger.PartFailed, "record 5 refused", 0))
			outcome(ledger.Failed)(t, s, id)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sha := freshSHA()
			a := steps(claim)(t, s)
			must(t)(s.Fetched(a, sha))
			tt.first(t, s, a)
			b := steps(claim)(t, s)
			e, err := s.Fetched(b, sha)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.State == ledger.Duplicate; got != tt.dup {
				t.Fatalf("second drop state %s, want duplicate=%v", e.State, tt.dup)
			}
			if tt.dup && e.DuplicateOf != a {
				t.Fatalf("DuplicateOf = %q, want %q", e.DuplicateOf, a)
			}
			if !tt.dup && e.Generation != 1 {
				t.Fatalf("a re-drop has generation %d, want 1", e.Generation)
			}
		})
	}
}

// recKey is the n-th record key of a test: 32 hex digits.
func recKey(n int) string { return fmt.Sprintf("%032x", n) }

// recsOf returns the keys [from, to) as created records with ids "z<n>".
func recsOf(from, to int) []ledger.CreatedRecord {
	var out []ledger.CreatedRecord
	for n := from; n < to; n++ {
		out = append(out, ledger.CreatedRecord{Key: recKey(n), ZuoraID: fmt.Sprintf("z%d", n)})
	}
	return out
}

// Records created one by one are kept per drop, survive a reopen of the
// entry, are taken over once by a later drop of the same records after a
// failure (never from a drop still running), and are forgotten once a drop
// is Done.
func testRecords(t *testing.T, open Open) {
	s := open(t)
	a := steps(claim, fetch, conv, submit)(t, s)
	if err := s.RecordsCreated(a, 0, recsOf(0, 5)); err != nil {
		t.Fatal(err)
	}
	// Concurrent writers, as the object API's records come back.
	errs := make(chan error, 5)
	for n := 5; n < 10; n++ {
		go func() { errs <- s.RecordsCreated(a, 0, recsOf(n, n+1)) }()
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Records(a)
	if err != nil || len(got) != 10 || got[recKey(7)] != "z7" {
		t.Fatalf("records of a: %v, %v", got, err)
	}
	if err := s.RecordsCreated(a, 1, recsOf(0, 1)); !errors.Is(err, ledger.ErrTransition) {
		t.Fatalf("a record of a part the drop does not have: %v", err)
	}

	// A drop still running gives nothing up.
	b := steps(claim, fetch, conv, submit)(t, s)
	keys := []string{recKey(3), recKey(4), recKey(99)}
	if ad, err := s.RecordsAdopted(b, 0, keys); err != nil || ad.Records != 0 {
		t.Fatalf("adopted from a running drop: %+v, %v", ad, err)
	}
	// Once it failed, its records go to the drop that has them, once.
	must(t)(s.PartFinal(a, 0, ledger.PartFailed, "record 11 refused", 0))
	must(t)(s.Outcome(a, ledger.Failed, "record 11 refused", false))
	ad, err := s.RecordsAdopted(b, 0, keys)
	if err != nil || ad.Records != 2 || len(ad.From) != 1 || ad.From[0] != a {
		t.Fatalf("adoption: %+v, %v", ad, err)
	}
	if ad, err := s.RecordsAdopted(b, 0, keys); err != nil || ad.Records != 0 {
		t.Fatalf("adopted twice: %+v, %v", ad, err)
	}
	e, _ := s.Get(b)
	if e.Parts[0].Adopted != 2 || e.Parts[0].AdoptedFrom != a {
		t.Fatalf("part after adoption: %+v", e.Parts[0])
	}
	gotB, _ := s.Records(b)
	gotA, _ := s.Records(a)
	if len(gotB) != 2 || gotB[recKey(4)] != "z4" || len(gotA) != 8 {
		t.Fatalf("after adoption: b %v, a %v", gotB, gotA)
	}
	// Adopted by another drop too? No: they moved.
	c := steps(claim, fetch, conv, submit)(t, s)
	if ad, _ := s.RecordsAdopted(c, 0, keys); ad.Records != 0 {
		t.Fatalf("records adopted twice across drops: %+v", ad)
	}

	// Done forgets them; so does a finished part.
	accept(t, s, b)
	if err := s.RecordsCreated(b, 0, recsOf(50, 51)); !errors.Is(err, ledger.ErrTransition) {
		t.Fatalf("records written after the part left Zuora's hands: %v", err)
	}
	complete(t, s, b)
	outcome(ledger.Done)(t, s, b)
	if gotB, _ := s.Records(b); len(gotB) != 0 {
		t.Fatalf("a done drop keeps %d records", len(gotB))
	}
}
