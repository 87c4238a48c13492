package ledger

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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
	name := "m\xe4rz\n.csv" // Latin-1 bytes and a newline: not UTF-8
	e, err := l.Create("finance", name, name, 10, "etag1", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claimed(e.ID, "processing/vm/"+name, "etag2", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fetched(e.ID, "abc"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Begin(e.ID, StepConvert); err != nil {
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
	if len(active) != 1 || active[0].State != Fetched || active[0].Key != "processing/vm/"+name || active[0].Name != name ||
		active[0].SHA256 != "abc" || active[0].Step != StepConvert {
		t.Fatalf("after reopen: %+v", active)
	}
	if got := len(active[0].History); got != 3 {
		t.Fatalf("history has %d events, want 3", got)
	}
	if _, err := l.Outcome(e.ID, Failed, "gave up", false); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finished(e.ID, "failed/"+name, "moved"); err != nil {
		t.Fatal(err)
	}
	active, _ = l.Active()
	if len(active) != 0 {
		t.Fatalf("finished entry still active: %+v", active)
	}
}

// An entry written before the transition table, raw names and attempt
// fields existed reads as it did.
func TestReadsEntriesOfEarlierVersions(t *testing.T) {
	old := `{"id":"20261130T101500.000000000Z-0a0b0c0d","source":"finance","name":"march.csv","key":"processing/vm/march.csv",` +
		`"size":68000,"sha256":"ab","state":"uploading","created":"2026-11-30T10:15:00Z","updated":"2026-11-30T10:16:00Z",` +
		`"attempts":2,"last_error":"zuora submit: 503","parts":[{"index":0,"name":"march-ab.zip","path":"/spool/x/parts/0",` +
		`"size":9000,"sha256":"cd","records":1000,"idempotency_key":"ud-1","state":"submitted","submitted_at":"2026-11-30T10:16:00Z"}],` +
		`"history":[{"at":"2026-11-30T10:15:00Z","state":"discovered","note":"march.csv"}]}`
	var e Entry
	if err := json.Unmarshal([]byte(old), &e); err != nil {
		t.Fatal(err)
	}
	if e.Name != "march.csv" || e.State != Uploading || e.Attempts != 2 || len(e.Parts) != 1 || e.Parts[0].State != PartSubmitted || e.Step != "" {
		t.Fatalf("old entry read as %+v", e)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "_b64") {
		t.Fatalf("a UTF-8 name was stored in base64: %s", b)
	}
}

func TestPrune(t *testing.T) {
	l, _ := openTest(t)
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return old }
	a, _ := l.Create("s", "a.csv", "a.csv", 1, "", false)
	l.Claimed(a.ID, "processing/i/a.csv", "", 1)
	l.Fetched(a.ID, "sha-a")
	l.Rejected(a.ID, 1, nil, "bad")
	if _, err := l.Finished(a.ID, "failed/a.csv", ""); err != nil {
		t.Fatal(err)
	}
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
	l.Claimed(c.ID, "processing/i/a.csv", "", 1)
	if c, _ = l.Fetched(c.ID, "sha-a"); c.State != Fetched {
		t.Fatalf("bytes of a pruned drop are still claimed: %s", c.State)
	}
}

// A pruned drop's records created one by one go with it.
func TestPruneForgetsRecords(t *testing.T) {
	l, _ := openTest(t)
	e, _ := l.Create("s", "a.csv", "a.csv", 1, "", false)
	l.Claimed(e.ID, "processing/i/a.csv", "", 1)
	l.Fetched(e.ID, "sha-a")
	l.Converted(e.ID, Conversion{Parts: []Part{{Name: "a-0.csv", State: PartPending}}})
	l.PartSubmitted(e.ID, 0, time.Now())
	if err := l.RecordsCreated(e.ID, 0, []CreatedRecord{{Key: strings.Repeat("ab", 16), ZuoraID: "z1"}}); err != nil {
		t.Fatal(err)
	}
	l.PartFinal(e.ID, 0, PartFailed, "refused", 0)
	l.Outcome(e.ID, Failed, "refused", false)
	if _, err := l.Finished(e.ID, "failed/a.csv", ""); err != nil {
		t.Fatal(err)
	}
	if recs, _ := l.Records(e.ID); recs[strings.Repeat("ab", 16)] != "z1" {
		t.Fatalf("records of a failed drop: %v", recs)
	}
	if n, err := l.Prune(time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRecords).Bucket([]byte(e.ID)) != nil {
			return errors.New("the pruned drop's records are still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// MaxStarts is the ledger's to set.
func TestMaxStartsOption(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "l.db"), Options{MaxStarts: 1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, _ := l.Create("s", "a.csv", "a.csv", 1, "", false)
	l.Begin(e.ID, StepClaim)
	if e, _ = l.Begin(e.ID, StepClaim); e.State != Failed || !strings.Contains(e.LastError, "stopped the service 1 times") {
		t.Fatalf("MaxStarts 1: %s %q", e.State, e.LastError)
	}
}

// The table pinned down, pair by pair, as the README draws it: a change
// to the state machine has to be made here too, on purpose.
func TestTableIsTheDrawnOne(t *testing.T) {
	states := []State{Discovered, Claimed, Fetched, Converted, Uploading, Done, Rejected, Failed, Duplicate, Vanished}
	want := map[Transition]map[State][]State{
		TClaimed:        {Discovered: {Claimed}},
		TFetched:        {Claimed: {Fetched, Duplicate}},
		TRefetch:        {Fetched: {Claimed}},
		TConverted:      {Fetched: {Converted}},
		TRejected:       {Fetched: {Rejected}},
		TPartSubmitted:  {Converted: {Uploading}, Uploading: {Uploading}},
		TPartAccepted:   {Uploading: {Uploading}},
		TPartStatus:     {Uploading: {Uploading}},
		TPartFinal:      {Uploading: {Uploading}},
		TRecordsCreated: {Uploading: {Uploading}},
		TRecordsAdopted: {Uploading: {Uploading}},
		TOutcome: {
			Discovered: {Failed, Vanished}, Claimed: {Failed, Vanished}, Fetched: {Failed},
			Converted: {Failed, Vanished}, Uploading: {Done, Failed, Vanished},
		},
		TFinished: {Done: {Done}, Rejected: {Rejected}, Failed: {Failed}, Duplicate: {Duplicate}, Vanished: {Vanished}},
	}
	for _, bk := range []Transition{TBegin, TEnd, TRetry, TRenewed} {
		want[bk] = map[State][]State{}
		for _, s := range states {
			want[bk][s] = []State{s}
		}
	}
	for tr, froms := range want {
		for _, from := range states {
			for _, to := range states {
				w := slices.Contains(froms[from], to)
				if got := Allowed(tr, from, to); got != w {
					t.Errorf("Allowed(%s, %s, %s) = %v, want %v", tr, from, to, got, w)
				}
			}
		}
	}
	parts := []PartState{PartPending, PartSubmitted, PartAccepted, PartCompleted, PartFailed, PartCanceled}
	final := []PartState{PartCompleted, PartFailed, PartCanceled}
	wantPart := map[Transition]map[PartState][]PartState{
		TPartSubmitted:  {PartPending: {PartSubmitted}, PartSubmitted: {PartSubmitted}},
		TPartAccepted:   {PartSubmitted: {PartAccepted}},
		TPartStatus:     {PartAccepted: {PartAccepted}},
		TPartFinal:      {PartSubmitted: final, PartAccepted: final},
		TRecordsCreated: {PartSubmitted: {PartSubmitted}},
		TRecordsAdopted: {PartSubmitted: {PartSubmitted}},
	}
	for tr, froms := range wantPart {
		for _, from := range parts {
			for _, to := range parts {
				if got, w := PartAllowed(tr, from, to), slices.Contains(froms[from], to); got != w {
					t.Errorf("PartAllowed(%s, %s, %s) = %v, want %v", tr, from, to, got, w)
				}
			}
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain note", "plain note"},
		{`key "m\\xe4rz.csv": invalid`, `key "m\\xe4rz.csv": invalid`}, // escaped once already
		{"m\xe4rz.csv", `m\xe4rz.csv`},
		{"two\nlines", `two\nlines`},
		{"esc\x1b[31m and a \\", `esc\x1b[31m and a \\`},
	}
	for _, tt := range tests {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Text(strings.Repeat("x", 10*MaxText)); len(got) > MaxText {
		t.Errorf("Text kept %d bytes", len(got))
	}
}
