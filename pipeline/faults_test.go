package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/config"
	"usagedrop/convert"
	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/zuorasim"
)

// What a run of the fixtures under a fault must end in.
type faultOutcome int

const (
	// everyRecordOnce: every drop imported, every record in Zuora once.
	everyRecordOnce faultOutcome = iota
	// fateUnknown (Mediation without dedupe_field): a batch whose answer
	// was lost is never sent again; its drop fails saying which rows'
	// fate is unknown. Every other drop is imported, and no record is in
	// Zuora twice.
	fateUnknown
	// waitsForZuora (the object API behind a stored 500): Zuora replays
	// the 500 for the record's key for 24 h and offers no way to look a
	// record up, so nothing can tell whether it exists. The drop waits,
	// saying it waits for Zuora, and sends nothing twice; the other drops
	// are imported.
	waitsForZuora
	// refusedByZuora: Zuora says the request itself is wrong
	// (success:false with a code of a final category); the drop fails
	// with Zuora's words and nothing from it is imported.
	refusedByZuora
)

// faultCase is one fault, applied while the visible fixtures that import
// are dropped at once.
type faultCase struct {
	name   string
	faults zuorasim.Faults
	// lose makes the tap lose the answers to the next N object API
	// calls after the sim has handled them: the sim's DropAfterRead does
	// not reach the object API.
	lose int
	// slow makes the tap hold the next N answers that say a send was done
	// (an upload, a record, a batch, a SOAP create) past the client's
	// timeout, which it sets to timeout.
	slow    int
	timeout time.Duration
	// expire expires every token and SOAP session every 20 ms while
	// the drops run.
	expire bool
	want   faultOutcome
	// struck proves the fault happened, from what the tap and the sim
	// saw: a test whose fault never struck proves nothing.
	struck func(tp *tap, sim *zuorasim.Sim) error
}

func atLeast(what string, got, n int) error {
	if got < n {
		return fmt.Errorf("%s: %d, want at least %d", what, got, n)
	}
	return nil
}

// The faults every API meets, and what each must end in. Rows that do not
// apply to an API are named in apiFaults with the reason.
var (
	storm = faultCase{name: "429 storm", faults: zuorasim.Faults{TooManyRequests: 6, RetryAfter: time.Second},
		struck: func(tp *tap, _ *zuorasim.Sim) error {
			return atLeast("429 answers", tp.count(http.StatusTooManyRequests), 6)
		}}
	serverErrors = faultCase{name: "5xx", faults: zuorasim.Faults{ServerErrors: 4},
		struck: func(tp *tap, _ *zuorasim.Sim) error {
			return atLeast("500 answers", tp.count(http.StatusInternalServerError), 4)
		}}
	lostAnswers = faultCase{name: "answer lost", faults: zuorasim.Faults{DropAfterRead: 2},
		struck: func(tp *tap, _ *zuorasim.Sim) error { return atLeast("answers lost", tp.count(lost), 2) }}
	expiry      = faultCase{name: "token and session expiry", expire: true}
	slowAnswers = faultCase{name: "answer after the client's timeout", slow: 2, timeout: 2 * time.Second,
		struck: func(tp *tap, _ *zuorasim.Sim) error {
			return atLeast("answers held past the timeout", tp.count(late), 2)
		}}
	conflicts = faultCase{name: "409 on the key", faults: zuorasim.Faults{Conflicts: 2},
		struck: func(tp *tap, _ *zuorasim.Sim) error { return atLeast("409 answers", tp.count(http.StatusConflict), 2) }}
)

// together is every fault at once, as a bad day brings them; the stored
// 500s of the object API, which cannot end in every record once, are left
// to their own rows, and so is token expiry, since the sim expires tokens
// by SetFaults, which would end the other faults.
var together = faultCase{name: "all at once",
	faults: zuorasim.Faults{TooManyRequests: 3, RetryAfter: time.Second, ServerErrors: 3, DropAfterRead: 2, Conflicts: 1,
		StoredServerErrors: 1, StoredServerErrorsImported: 1, SOAPFaultsAfterCreate: 1},
	lose: 2,
	struck: func(tp *tap, _ *zuorasim.Sim) error {
		return errors.Join(atLeast("429 answers", tp.count(http.StatusTooManyRequests), 3),
			atLeast("500 answers", tp.count(http.StatusInternalServerError), 3), atLeast("answers lost", tp.count(lost), 2))
	}}

// replayed500 proves a 500 was stored under a key and replayed.
func replayed500(tp *tap, _ *zuorasim.Sim) error {
	return atLeast("500 answers replayed under their key", tp.count(replayed), 1)
}

// apiFaults lists, per API, the faults it runs under. Not run, and why:
//   - Mediation under stored 5xx: the call takes no Idempotency-Key
//     (seed 004), so nothing is stored to replay; its 5xx row covers it.
//   - The SOAP API under stored 5xx other than SOAPFaultsAfterCreate: SOAP
//     has no key either.
func apiFaults(v variant) []faultCase {
	tokens := func(tp *tap, sim *zuorasim.Sim) error { return atLeast("tokens issued", sim.TokensIssued(), 2) }
	switch v.api {
	case "file":
		ex := expiry
		ex.struck = tokens
		rows := []faultCase{storm, serverErrors, lostAnswers, slowAnswers, ex, conflicts, together,
			{name: "5xx stored under the key, nothing imported", faults: zuorasim.Faults{StoredServerErrors: 2}, struck: replayed500},
			{name: "5xx stored under the key after the import was made", faults: zuorasim.Faults{StoredServerErrorsImported: 2}, struck: replayed500},
			{name: "success:false stored under the key", faults: zuorasim.Faults{Success200False: 1}, want: refusedByZuora,
				struck: func(*tap, *zuorasim.Sim) error { return nil }}, // the refusal is the proof: see refusedByZuora
		}
		if v.split == 0 {
			// The client gives up while Zuora still works on the first
			// request: the resend gets 409 until that one is done. Every
			// upload is held, so parts would only make it slow.
			rows = append(rows, faultCase{name: "answer after the client's timeout, the key still in flight",
				faults: zuorasim.Faults{AnswerDelay: 2200 * time.Millisecond}, timeout: 2 * time.Second,
				struck: func(tp *tap, _ *zuorasim.Sim) error { return atLeast("409 answers", tp.count(http.StatusConflict), 1) }})
		}
		return rows
	case "object":
		ex := expiry
		ex.struck = tokens
		lose := lostAnswers
		lose.faults, lose.lose = zuorasim.Faults{}, 2
		return []faultCase{storm, serverErrors, lose, slowAnswers, ex, conflicts, together,
			{name: "5xx stored under a record's key, nothing created", faults: zuorasim.Faults{StoredObjectErrors: 1},
				want: waitsForZuora, struck: replayed500},
			{name: "5xx stored under a record's key after it was created", faults: zuorasim.Faults{StoredObjectErrorsCreated: 1},
				want: waitsForZuora, struck: replayed500},
		}
	case "mediation":
		ex := expiry
		ex.struck = tokens
		se, la, sl, all := serverErrors, lostAnswers, slowAnswers, together
		if v.dedupe == "" {
			// A 5xx, a lost answer or a timeout leaves a batch's fate
			// unknown.
			se.want, la.want, sl.want, all.want = fateUnknown, fateUnknown, fateUnknown, fateUnknown
		}
		return []faultCase{storm, se, la, sl, ex, all}
	case "soap":
		ex := expiry
		ex.struck = func(tp *tap, _ *zuorasim.Sim) error {
			return atLeast("SOAP faults (INVALID_SESSION)", tp.count(http.StatusInternalServerError), 1)
		}
		return []faultCase{storm, serverErrors, lostAnswers, slowAnswers, ex, together,
			{name: "UNKNOWN_ERROR fault after the Import was made", faults: zuorasim.Faults{SOAPFaultsAfterCreate: 2},
				struck: func(tp *tap, _ *zuorasim.Sim) error {
					return atLeast("500 answers", tp.count(http.StatusInternalServerError), 2)
				}},
		}
	}
	return nil
}

// Every API takes the visible fixtures that import, dropped at once, to
// Zuora under each fault in turn, and every record is there exactly once;
// where that cannot hold, the drop ends as faultOutcome says.
func TestEveryAPIUnderEveryFault(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every API under every fault (about a minute)")
	}
	fx := importFixtures(t)
	for _, v := range []variant{
		{api: "file"}, {api: "object"}, {api: "mediation"}, {api: "mediation", dedupe: "EventId"}, {api: "soap"},
		// Parts under 8 kB: the larger fixtures go in many parts, one
		// after another, each under its own key and name.
		{api: "file", split: 8000}, {api: "soap", split: 8000},
	} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			for _, fc := range apiFaults(v) {
				t.Run(fc.name, func(t *testing.T) { runFault(t, fx, v, fc) })
			}
		})
	}
}

// variant is an API as a test configures it.
type variant struct {
	api    string
	dedupe string // api: mediation: the meter's Deduplicator field, if any
	split  int64  // the most bytes of one part, if not Zuora's
}

func (v variant) String() string {
	s := v.api
	if v.dedupe != "" {
		s += "+dedupe_field"
	}
	if v.split > 0 {
		s += fmt.Sprintf("+parts_under_%d_bytes", v.split)
	}
	return s
}

// runFault drops every fixture under fc and checks the outcome.
func runFault(t *testing.T, fx []fixture, v variant, fc faultCase) {
	api := v.api
	e, tp := startTapped(t, v, fc.timeout)
	// The faults strike from the first call that sends usage on: armed
	// any earlier, the token call would take them all.
	tp.arm(sendPath[api], fc.faults, fc.lose, fc.slow)
	stopExpiring := func() {}
	if fc.expire {
		stopExpiring = expireEvery(e.sim, 20*time.Millisecond)
	}
	for _, f := range fx {
		e.drop(f.name, f.name)
	}
	var got map[string]*ledger.Entry
	if fc.want == waitsForZuora {
		got = e.waitSettled(len(fx), func(x *ledger.Entry) bool { return x.WaitingFor == "Zuora" })
	} else {
		got = e.waitFinished(len(fx))
	}
	stopExpiring()
	if err := fc.struck(tp, e.sim); err != nil {
		t.Fatalf("the fault never struck, so this proves nothing: %v", err)
	}
	if most := maxParts(got); v.split > 0 && most < 2 {
		t.Fatalf("no drop was split (at most %d part), so this proves nothing of parts", most)
	}

	// Drops that must be whole in Zuora, and drops that may lack records
	// (never hold one twice).
	var whole, partial []fixture
	for _, f := range fx {
		x := got[f.name]
		ok := x.State == ledger.Done && x.Finished
		switch {
		case ok:
			whole = append(whole, f)
			e.assertImportedReport(t, api, f)
		case fc.want == fateUnknown && x.State == ledger.Failed:
			partial = append(partial, f)
			assertFile(t, filepath.Join(e.dropDir, "failed", f.name+".status.txt"),
				"may or may not have taken", "were not sent again", "Check the meter for those records")
		case fc.want == waitsForZuora && !x.Finished && x.State == ledger.Uploading:
			partial = append(partial, f)
			if !strings.Contains(x.LastError, "500") {
				t.Errorf("%s waits for Zuora, but its last error does not say why: %q", f.name, x.LastError)
			}
		case fc.want == refusedByZuora && x.State == ledger.Failed:
			// Nothing of a refused part is imported: a file import is
			// atomic.
			if n := len(e.recordsOf(x)); n != 0 {
				t.Errorf("%s was refused, yet Zuora holds %d of its records", f.name, n)
			}
			assertFile(t, filepath.Join(e.dropDir, "failed", f.name+".status.txt"), "Not imported", "could not be started")
			continue
		default:
			t.Errorf("%s: state %s, finished %v, waiting for %q: %s", f.name, x.State, x.Finished, x.WaitingFor, x.LastError)
		}
	}
	switch {
	case fc.want == everyRecordOnce && len(whole) != len(fx):
		t.Errorf("%d of %d drops imported", len(whole), len(fx))
	case fc.want == fateUnknown && len(partial) == 0:
		t.Errorf("under %s no drop says a batch's fate is unknown", fc.name)
	case fc.want == waitsForZuora && len(partial) != 1:
		t.Errorf("%d drops wait for Zuora, want the one behind the stored 500", len(partial))
	}
	if fc.want == refusedByZuora && len(whole) != len(fx)-1 {
		t.Errorf("%d of %d drops imported; want all but the refused one", len(whole), len(fx))
	}
	e.assertOnce(t, api, whole, partial)

	if fc.want == waitsForZuora {
		// The key's 24 h have not passed: however long the drop waits
		// (it may still create records the 500 held up), nothing is
		// created twice.
		time.Sleep(time.Second)
		e.assertOnce(t, api, whole, partial)
	}
}

// sendPath is where each API sends usage.
var sendPath = map[string]string{"file": "/v1/usage", "object": "/v1/object/usage", "mediation": "/usage/bulk/", "soap": "/apps/services/"}

func maxParts(got map[string]*ledger.Entry) int {
	most := 0
	for _, x := range got {
		most = max(most, len(x.Parts))
	}
	return most
}

// fixture is a visible fixture that imports, with its records.
type fixture struct {
	name    string
	records []testutil.FixtureRecord
}

// importFixtures reads the fixtures expected.json says import, with their
// records.
func importFixtures(t *testing.T) []fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		Outcome string                   `json:"outcome"`
		Count   int                      `json:"count"`
		Digest  string                   `json:"digest"`
		Records []testutil.FixtureRecord `json:"records"` // keys match the fields case-insensitively
	}
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	var out []fixture
	for name, x := range all {
		if x.Outcome != "imported" {
			continue
		}
		if len(x.Records) != x.Count || testutil.Digest(x.Records) != x.Digest {
			t.Fatalf("expected.json: %s lists %d records that do not match its count %d and digest", name, len(x.Records), x.Count)
		}
		out = append(out, fixture{name, x.Records})
	}
	slices.SortFunc(out, func(a, b fixture) int { return strings.Compare(a.name, b.name) })
	if len(out) == 0 {
		t.Fatal("expected.json lists no fixture that imports")
	}
	return out
}

// startTapped starts a pipeline on v whose sim sits behind a tap.
func startTapped(t *testing.T, v variant, timeout time.Duration) (*env, *tap) {
	t.Helper()
	dir := t.TempDir()
	ev := config.Event{Fields: testEvent.Fields, DedupeField: v.dedupe}
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 50 * time.Millisecond,
		MediationSchema: meterSchema(ev), MediationDedupeField: ev.DedupeField})
	tp := &tap{sim: sim, seen: map[int]int{}, after: timeout + 500*time.Millisecond}
	srv := httptest.NewServer(tp)
	t.Cleanup(srv.Close)
	e := &env{t: t, dir: dir, dropDir: filepath.Join(dir, "drop"), sim: sim, url: srv.URL, api: v.api, dedupe: v.dedupe,
		limits: convert.Limits{MaxBytes: v.split}, timeout: timeout}
	e.run()
	t.Cleanup(e.stop)
	return e, tp
}

// expireEvery expires every token and SOAP session at each tick until the
// returned func is called.
func expireEvery(sim *zuorasim.Sim, d time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				sim.SetFaults(zuorasim.Faults{ExpireTokens: true})
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// waitSettled waits until n drops are either finished or, unfinished,
// satisfy waiting, and returns them by name.
func (e *env) waitSettled(n int, waiting func(*ledger.Entry) bool) map[string]*ledger.Entry {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string]*ledger.Entry{}
		var open []string
		e.ledger.List(func(x *ledger.Entry) bool {
			if x.Finished || waiting(x) {
				got[x.Name] = x
			} else {
				open = append(open, fmt.Sprintf("%s=%s(%s)", x.Name, x.State, x.LastError))
			}
			return true
		})
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("only %d of %d drops finished (or waiting as asked); open: %v", len(got), n, open)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertImportedReport checks what an imported drop's report says: that
// it was imported, or for Mediation, sent and accepted for processing.
func (e *env) assertImportedReport(t *testing.T, api string, f fixture) {
	t.Helper()
	says := []string{fmt.Sprintf("Imported: %s usage records in Zuora", count(len(f.records)))}
	if api == "mediation" {
		says = []string{"Sent to Zuora Mediation: ", fmt.Sprintf("(%d events accepted for processing)", len(f.records))}
	}
	assertFile(t, filepath.Join(e.dropDir, "imported", f.name+".status.txt"), says...)
}

// assertOnce checks that Zuora holds every record of the whole drops once,
// and every record of the partial ones at most once, and nothing else.
func (e *env) assertOnce(t *testing.T, api string, whole, partial []fixture) {
	t.Helper()
	need, may := map[testutil.FixtureRecord]int{}, map[testutil.FixtureRecord]int{}
	for _, f := range whole {
		for _, r := range f.records {
			need[r]++
		}
	}
	for _, f := range partial {
		for _, r := range f.records {
			may[r]++
		}
	}
	have := map[testutil.FixtureRecord]int{}
	for _, r := range e.sim.Records() {
		have[asFixtureRecord(t, r)]++
	}
	var twice, missing []string
	for r, n := range have {
		if n > need[r]+may[r] {
			twice = append(twice, fmt.Sprintf("%+v ×%d (want %d)", r, n, need[r]))
		}
	}
	for r, n := range need {
		if have[r] < n {
			missing = append(missing, fmt.Sprintf("%+v ×%d (want %d)", r, have[r], n))
		}
	}
	slices.Sort(twice)
	slices.Sort(missing)
	if len(twice) > 0 {
		t.Errorf("%s: %d records in Zuora more often than dropped or never dropped, e.g. %s", api, len(twice), twice[0])
	}
	if len(missing) > 0 {
		t.Errorf("%s: %d records of imported drops missing from Zuora, e.g. %s", api, len(missing), missing[0])
	}
	if api == "file" || api == "soap" {
		// Each drop's own imports hold its records, digest for digest.
		got := map[string]*ledger.Entry{}
		e.ledger.List(func(x *ledger.Entry) bool { got[x.Name] = x; return true })
		for _, f := range whole {
			if recs := e.recordsOf(got[f.name]); digest(recs) != testutil.Digest(f.records) {
				t.Errorf("%s: its imports hold %d records (digest %s), want %d", f.name, len(recs), digest(recs), len(f.records))
			}
		}
	}
}

// asFixtureRecord is a record the sim holds as expected.json writes
// records. Mediation's records carry only the reference fields; the rest
// are read back from the event through testEvent's field names.
func asFixtureRecord(t *testing.T, r zuorasim.Record) testutil.FixtureRecord {
	fr := testutil.FixtureRecord{Account: r.Account, UOM: r.UOM, Qty: r.Qty, Start: r.Start, End: r.End,
		Subscription: r.Subscription, Charge: r.Charge, Description: r.Description}
	if !strings.HasPrefix(r.ImportID, "mediation:") {
		return fr
	}
	var ev map[string]any
	dec := json.NewDecoder(strings.NewReader(r.Event))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("the sim holds an event that is not JSON: %v", err)
	}
	str := func(field string) string {
		v, _ := ev[field].(string)
		return v
	}
	if end := str(testEvent.Fields["ENDDATE"]); end != "" {
		d, err := time.Parse(time.RFC3339, end)
		if err != nil {
			t.Fatalf("event %s: %v", r.Event, err)
		}
		fr.End = d.Format(time.DateOnly)
	}
	fr.Subscription = str(testEvent.Fields["SUBSCRIPTION_ID"])
	fr.Charge = str(testEvent.Fields["CHARGE_ID"])
	fr.Description = str(testEvent.Fields["DESCRIPTION"])
	return fr
}

// tap sits between usagedrop and the sim. It counts the sim's answers by
// kind, to prove a fault struck, and loses the answers to object API calls
// on request.
type tap struct {
	sim *zuorasim.Sim

	mu   sync.Mutex
	seen map[int]int // by HTTP status, and lost and replayed
	lose int
	slow int
	// after is how long a held answer is held: past the client's timeout.
	after time.Duration
	// armed are the faults set on the sim, and the answers to lose or
	// hold, when the first request to a path starting with armAt arrives.
	armAt  string
	sendAt string
	armed  zuorasim.Faults
	toLose int
	toSlow int
}

// Kinds of answer the tap counts besides HTTP statuses.
const (
	lost     = -1 // the connection closed after the request was handled
	replayed = -2 // a 5xx replayed under its Idempotency-Key
	late     = -3 // an answer held past the client's timeout
)

func (tp *tap) count(kind int) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.seen[kind]
}

// arm sets f on the sim, loses the answers to the next lose object API
// calls and holds the next slow answers to sends past the client's
// timeout, once the first request to a path starting with prefix arrives.
func (tp *tap) arm(prefix string, f zuorasim.Faults, lose, slow int) {
	tp.mu.Lock()
	tp.armAt, tp.sendAt, tp.armed, tp.toLose, tp.toSlow = prefix, prefix, f, lose, slow
	tp.mu.Unlock()
}

func (tp *tap) note(kinds ...int) {
	tp.mu.Lock()
	for _, k := range kinds {
		tp.seen[k]++
	}
	tp.mu.Unlock()
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tp.mu.Lock()
	if tp.armAt != "" && strings.HasPrefix(r.URL.Path, tp.armAt) {
		tp.sim.SetFaults(tp.armed)
		tp.lose, tp.slow, tp.armAt = tp.toLose, tp.toSlow, ""
	}
	mayLose := r.URL.Path == "/v1/object/usage" && tp.lose > 0
	maySlow := tp.slow > 0 && tp.sendAt != "" && strings.HasPrefix(r.URL.Path, tp.sendAt)
	tp.mu.Unlock()
	if maySlow && strings.HasPrefix(r.URL.Path, "/apps/services/") {
		// Of SOAP's calls, only a create sends usage.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // the client went away
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		maySlow = bytes.Contains(body, []byte("<api:create>"))
	}
	if maySlow {
		rec := httptest.NewRecorder()
		tp.sim.ServeHTTP(rec, r)
		tp.mu.Lock()
		slow := rec.Code == http.StatusOK && tp.slow > 0
		if slow {
			tp.slow--
		}
		tp.mu.Unlock()
		if slow {
			tp.note(late)
			time.Sleep(tp.after)
		}
		copyHeader(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		if !slow {
			tp.note(tp.kinds(rec.Code, rec.Header())...)
		}
		return
	}
	if mayLose {
		rec := httptest.NewRecorder()
		tp.sim.ServeHTTP(rec, r)
		// Lost, as the sim's DropAfterRead loses them, are answers that
		// say the request was done.
		tp.mu.Lock()
		lose := rec.Code == http.StatusOK && tp.lose > 0
		if lose {
			tp.lose--
		}
		tp.mu.Unlock()
		if lose {
			tp.note(lost)
			panic(http.ErrAbortHandler)
		}
		copyHeader(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		tp.note(tp.kinds(rec.Code, rec.Header())...)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			tp.note(lost) // the sim's DropAfterRead
			panic(v)
		}
		tp.note(tp.kinds(sw.status, sw.Header())...)
	}()
	tp.sim.ServeHTTP(sw, r)
}

// kinds are what the tap counts of an answer.
func (tp *tap) kinds(status int, h http.Header) []int {
	if status >= 500 && h.Get("Idempotent-Replayed") == "true" {
		return []int{status, replayed}
	}
	return []int{status}
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// statusWriter remembers the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}
