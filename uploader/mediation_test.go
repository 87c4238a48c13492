package uploader

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/usage"
	"usagedrop/zuorasim"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// referenceFields is the mapping onto the reference's example event, the
// config's default.
var referenceFields = map[string]string{"ACCOUNT_ID": "CustomerId", "UOM": "UsageIdentifier", "STARTDATE": "UsageDate", "QTY": "Quantity"}

// medRig is a simulator behind a proxy that counts the Mediation calls and
// may answer one itself, to put a fault on a given batch.
type medRig struct {
	sim *zuorasim.Sim
	cl  *Client

	mu    sync.Mutex
	calls int // POST /usage/bulk calls that reached the proxy
	// on, when set, runs before call n (from 1) reaches the sim; it
	// returns true when it answered the call itself.
	on    func(n int, w http.ResponseWriter) bool
	first *capturedRequest
}

type capturedRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

func newMedRig(t *testing.T, opt zuorasim.Options) *medRig {
	t.Helper()
	r := &medRig{sim: zuorasim.New(opt)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/usage/bulk/") {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			r.mu.Lock()
			r.calls++
			n, on := r.calls, r.on
			if r.first == nil {
				r.first = &capturedRequest{req.Method, req.URL.Path, req.Header.Clone(), body}
			}
			r.mu.Unlock()
			if on != nil && on(n, w) {
				return
			}
		}
		r.sim.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.cl = NewClient(Config{BaseURL: srv.URL, ClientID: "usagedrop", ClientSecret: "s3cret-value",
		MaxAttempts: 4, BackoffBase: time.Millisecond, BackoffCap: 5 * time.Millisecond})
	return r
}

func (r *medRig) mediationCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// faultOn puts f on the sim just before Mediation call n.
func (r *medRig) faultOn(n int, f zuorasim.Faults) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = func(call int, w http.ResponseWriter) bool {
		if call == n {
			r.sim.SetFaults(f)
		}
		return false
	}
}

// medCSV is a template of n records with only the columns every event
// carries filled in.
func medCSV(n int) string {
	var b strings.Builder
	b.WriteString("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\r\n")
	for i := range n {
		fmt.Fprintf(&b, "A%08d,API Calls,%d.5,03/%02d/2026,,,,\r\n", i, i, i%28+1)
	}
	return b.String()
}

// once checks that the sim holds n records, each account once, and no
// event the meter refused.
func once(t *testing.T, sim *zuorasim.Sim, n int) {
	t.Helper()
	if rej := sim.MediationRejected(); len(rej) > 0 {
		t.Fatalf("the meter refused %d events, first: %+v", len(rej), rej[0])
	}
	recs := sim.Records()
	seen := map[string]int{}
	for _, rec := range recs {
		seen[rec.Account]++
	}
	if len(recs) != n || len(seen) != n {
		t.Fatalf("%d records for %d accounts, want %d once each", len(recs), len(seen), n)
	}
}

// The default mapping makes events the reference's schema takes, and the
// outcome says what a 200 means.
func TestMediationDefaultMapping(t *testing.T) {
	r := newMedRig(t, zuorasim.Options{})
	med := NewMediation(r.cl, "meter-1", "", EventMapping{Fields: referenceFields})
	med.MaxEvents = 3
	p := part(t, "m.csv", medCSV(10))
	rc, err := med.Submit(context.Background(), p, "med-key")
	if err != nil {
		t.Fatal(err)
	}
	once(t, r.sim, 10)
	if calls := r.mediationCalls(); calls != 4 {
		t.Fatalf("%d calls, want 4 batches of at most 3", calls)
	}
	st, err := med.Status(context.Background(), rc)
	if err != nil || st.State != Completed || st.Message != "sent to Mediation (10 events accepted for processing)" {
		t.Fatalf("status %+v, %v", st, err)
	}
	ev := r.sim.Records()[0].Event
	if ev != `{"CustomerId":"A00000000","Quantity":0.5,"UsageDate":"2026-03-01T00:00:00Z","UsageIdentifier":"API Calls"}` {
		t.Fatalf("event %s", ev)
	}
	// Submitting the part again sends nothing: every batch was answered.
	if _, err := med.Submit(context.Background(), p, "med-key"); err != nil {
		t.Fatal(err)
	}
	if calls := r.mediationCalls(); calls != 4 {
		t.Fatalf("%d calls after a second Submit, want still 4", calls)
	}
	once(t, r.sim, 10)
}

func TestMediationDates(t *testing.T) {
	tests := []struct {
		zone, start, end string
		want             string
	}{
		{"UTC", "2026-03-16", "", `"UsageDate":"2026-03-16T00:00:00Z"`},
		{"Europe/Paris", "2026-03-16", "2026-03-17", `"EndDate":"2026-03-17T00:00:00+01:00","Quantity":2,"UsageDate":"2026-03-16T00:00:00+01:00"`},
		{"Europe/Paris", "2026-07-01", "", `"UsageDate":"2026-07-01T00:00:00+02:00"`},
		{"America/New_York", "2026-01-31", "", `"UsageDate":"2026-01-31T00:00:00-05:00"`},
	}
	for _, tt := range tests {
		loc, err := time.LoadLocation(tt.zone)
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{"ENDDATE": "EndDate"}
		for k, v := range referenceFields {
			fields[k] = v
		}
		med := NewMediation(nil, "m", "", EventMapping{Fields: fields, Location: loc})
		enc, err := med.encoder("k")
		if err != nil {
			t.Fatal(err)
		}
		ev, err := enc.event(row{Record: usage.Record{Account: "A1", UOM: "GB", Qty: "2", Start: tt.start, End: tt.end}})
		if err != nil || !strings.Contains(string(ev), tt.want) {
			t.Errorf("%s %s: event %s, %v; want it to contain %s", tt.zone, tt.start, ev, err, tt.want)
		}
	}
}

// A date in a configured zone goes through the sim's date-time check.
func TestMediationZoneAccepted(t *testing.T) {
	r := newMedRig(t, zuorasim.Options{})
	loc, _ := time.LoadLocation("Asia/Tokyo")
	med := NewMediation(r.cl, "m", "DD/MM/YYYY", EventMapping{Fields: referenceFields, Location: loc})
	if _, err := med.Submit(context.Background(), part(t, "z.csv", "ACCOUNT_ID,UOM,QTY,STARTDATE\r\nA1,GB,1,16/03/2026\r\n"), "zk"); err != nil {
		t.Fatal(err)
	}
	once(t, r.sim, 1)
	if ev := r.sim.Records()[0].Event; !strings.Contains(ev, `"UsageDate":"2026-03-16T00:00:00+09:00"`) {
		t.Fatalf("event %s", ev)
	}
}

// A value the mapping does not carry stops the part before anything is
// sent, naming the line, the column and the value.
func TestMediationUnmappedColumn(t *testing.T) {
	tests := []struct {
		name, csv, want string
	}{
		{"subscription", medCSV(4) + "A9,GB,1,03/01/2026,,A-S00000011,,\r\n", `m.csv line 6: SUBSCRIPTION_ID: the meter's event has no field for this column (zuora.event.fields), so the value would be lost (got "A-S00000011")`},
		{"charge", medCSV(1) + "A9,GB,1,03/01/2026,,,C-1,\r\n", `m.csv line 3: CHARGE_ID:`},
		{"end date", medCSV(1) + "A9,GB,1,03/01/2026,03/02/2026,,,\r\n", `m.csv line 3: ENDDATE:`},
		{"quantity not a number", medCSV(1) + "A9,GB,1e3,03/01/2026,,,,\r\n", `m.csv line 3: QTY: "1e3" is not a plain decimal number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newMedRig(t, zuorasim.Options{})
			med := NewMediation(r.cl, "m", "", EventMapping{Fields: referenceFields})
			med.MaxEvents = 2
			_, err := med.Submit(context.Background(), part(t, "m.csv", tt.csv), "k")
			if e := zerr(t, err); e.Retryable || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("error %+v\nwant a final one containing %s", e, tt.want)
			}
			if n := r.mediationCalls(); n != 0 {
				t.Fatalf("%d calls made, want none", n)
			}
		})
	}
}

// With a dedupe field, a batch whose answer was lost is sent again, and
// the meter's Deduplicator keeps every record once.
func TestMediationDedupeResends(t *testing.T) {
	tests := []struct {
		name   string
		faults zuorasim.Faults
	}{
		{"answer lost after the meter took the batch", zuorasim.Faults{DropAfterRead: 2}},
		{"500s", zuorasim.Faults{ServerErrors: 2}},
		{"429 storm", zuorasim.Faults{TooManyRequests: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := zuorasim.ReferenceSchema()
			schema["EventId"] = zuorasim.EventField{Type: "string", Required: true}
			r := newMedRig(t, zuorasim.Options{MediationSchema: schema, MediationDedupeField: "EventId"})
			r.faultOn(2, tt.faults)
			med := NewMediation(r.cl, "m", "", EventMapping{Fields: referenceFields, DedupeField: "EventId"})
			med.MaxEvents = 3
			if _, err := med.Submit(context.Background(), part(t, "d.csv", medCSV(9)), "dk"); err != nil {
				t.Fatal(err)
			}
			once(t, r.sim, 9)
		})
	}
}

// Without a dedupe field, a lost answer ends the part: the batch is never
// sent again, and the error names its records.
func TestMediationUnknownFate(t *testing.T) {
	tests := []struct {
		name    string
		faults  zuorasim.Faults
		records int // what the sim holds: the lost batch may have been taken
	}{
		{"answer lost after the meter took the batch", zuorasim.Faults{DropAfterRead: 1}, 6},
		{"500", zuorasim.Faults{ServerErrors: 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newMedRig(t, zuorasim.Options{})
			r.faultOn(2, tt.faults)
			med := NewMediation(r.cl, "m", "", EventMapping{Fields: referenceFields})
			med.MaxEvents = 3
			p := part(t, "u.csv", medCSV(9))
			for try := range 2 { // a second Submit must not send it either
				_, err := med.Submit(context.Background(), p, "uk")
				var uf *UnknownFate
				if !errors.As(err, &uf) || IsRetryable(err) {
					t.Fatalf("try %d: error %v (%T), want a final *UnknownFate", try, err, err)
				}
				if uf.Part != "u.csv" || uf.Batch != 2 || uf.FirstRecord != 4 || uf.LastRecord != 6 || uf.FirstLine != 5 || uf.LastLine != 7 || uf.Accepted != 3 {
					t.Fatalf("try %d: %+v", try, uf)
				}
				for _, want := range []string{"batch 2", "records 4 to 6 of the part in file order (lines 5 to 7 of the part)", "not sent again; nothing after them was sent", "Records 1 to 3 were accepted for processing"} {
					if !strings.Contains(uf.Error(), want) {
						t.Fatalf("message %q lacks %q", uf.Error(), want)
					}
				}
				if n := r.mediationCalls(); n != 2 {
					t.Fatalf("%d calls, want 2: the lost batch is never resent and nothing follows it", n)
				}
			}
			if n := len(r.sim.Records()); n != tt.records {
				t.Fatalf("%d records, want %d", n, tt.records)
			}
		})
	}
}

// A 429 or a 401 says the batch was not taken: it is sent again without a
// dedupe field (after a new token for the 401), and nothing is counted
// twice.
func TestMediationNotTakenRetried(t *testing.T) {
	tests := []struct {
		name   string
		faults zuorasim.Faults
		calls  int // the three batches and the resends
	}{
		{"429", zuorasim.Faults{TooManyRequests: 2}, 5},
		{"token expired", zuorasim.Faults{ExpireTokens: true}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newMedRig(t, zuorasim.Options{})
			r.faultOn(2, tt.faults)
			med := NewMediation(r.cl, "m", "", EventMapping{Fields: referenceFields})
			med.MaxEvents = 3
			if _, err := med.Submit(context.Background(), part(t, "r.csv", medCSV(9)), "rk"); err != nil {
				t.Fatal(err)
			}
			once(t, r.sim, 9)
			if n := r.mediationCalls(); n != tt.calls {
				t.Fatalf("%d calls, want %d", n, tt.calls)
			}
		})
	}
}

// A batch Zuora refuses ends the part, saying which records it accepted;
// a later Submit starts at the refused batch, never before.
func TestMediationRefusedBatch(t *testing.T) {
	r := newMedRig(t, zuorasim.Options{})
	r.mu.Lock()
	r.on = func(n int, w http.ResponseWriter) bool {
		if n != 2 {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"success":false,"message":"meter is not active"}`)
		return true
	}
	r.mu.Unlock()
	med := NewMediation(r.cl, "m", "", EventMapping{Fields: referenceFields})
	med.MaxEvents = 3
	p := part(t, "x.csv", medCSV(9))
	_, err := med.Submit(context.Background(), p, "xk")
	e := zerr(t, err)
	want := "x.csv: batch 2 (records 4 to 6, lines 5 to 7) was refused: HTTP 400: meter is not active. Records 1 to 3 were accepted for processing before it; nothing after it was sent."
	if e.Retryable || e.HTTPStatus != http.StatusBadRequest || e.Message != want {
		t.Fatalf("error %+v\nwant %q", e, want)
	}
	if _, err := med.Submit(context.Background(), p, "xk"); err != nil {
		t.Fatal(err)
	}
	once(t, r.sim, 9)
}

// What the journal says after a crash decides what a Submit sends.
func TestMediationJournalAfterCrash(t *testing.T) {
	const key = "ck"
	tests := []struct {
		name, journal string
		dedupe        bool
		wantUnknown   bool
		wantRecords   int // records sent by the Submit after the crash
	}{
		{"stopped before the first send", "", false, false, 9},
		{"stopped after two batches answered", "send 0 0 3 2 4\nok\nsend 1 3 3 5 7\nok\n", false, false, 3},
		{"stopped during a send", "send 0 0 3 2 4\nok\nsend 1 3 3 5 7\n", false, true, 0},
		{"stopped during a send, with dedupe", "send 0 0 3 2 4\nok\nsend 1 3 3 5 7\n", true, false, 6},
		{"stopped while noting a send", "send 0 0 3 2 4\nok\nsend 1 3 3", false, false, 6},
		{"stopped while noting the answer", "send 0 0 3 2 4\nok\nsend 1 3 3 5 7\no", false, true, 0},
		{"refused batch", "send 0 0 3 2 4\nok\nsend 1 3 3 5 7\nclear\n", false, false, 6},
		{"another key's journal", "send 0 0 3 2 4\nok\n", false, false, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := zuorasim.ReferenceSchema()
			opt := zuorasim.Options{}
			ev := EventMapping{Fields: referenceFields}
			if tt.dedupe {
				schema["EventId"] = zuorasim.EventField{Type: "string"}
				opt = zuorasim.Options{MediationSchema: schema, MediationDedupeField: "EventId"}
				ev.DedupeField = "EventId"
			}
			r := newMedRig(t, opt)
			med := NewMediation(r.cl, "m", "", ev)
			med.MaxEvents = 3
			p := part(t, "c.csv", medCSV(9))
			head := journalMagic + " " + key + "\n"
			if tt.name == "another key's journal" {
				head = journalMagic + " other-key\n"
			}
			if tt.journal != "" {
				if err := os.WriteFile(p.Path+".mediation", []byte(head+tt.journal), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := med.Submit(context.Background(), p, key)
			var uf *UnknownFate
			if tt.wantUnknown {
				if !errors.As(err, &uf) || uf.Err != nil || uf.Batch != 2 || !strings.Contains(uf.Error(), "usagedrop stopped while batch 2 was being sent") {
					t.Fatalf("error %v, want an *UnknownFate for batch 2", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if n := len(r.sim.Records()); n != tt.wantRecords {
				t.Fatalf("%d records sent, want %d", n, tt.wantRecords)
			}
		})
	}
}

// The exact request for the fixture, against the documented shape: POST
// /usage/bulk/{meterGlobalId}, a JSON array of events of the meter's
// schema, no Idempotency-Key (the call lists none).
func TestMediationGoldenRequest(t *testing.T) {
	fields := map[string]string{"ENDDATE": "EndDate", "SUBSCRIPTION_ID": "SubscriptionNumber", "CHARGE_ID": "ChargeNumber", "DESCRIPTION": "Description"}
	schema := zuorasim.ReferenceSchema()
	for k, v := range referenceFields {
		fields[k] = v
	}
	for _, f := range []string{"EndDate", "SubscriptionNumber", "ChargeNumber", "Description"} {
		schema[f] = zuorasim.EventField{Type: "string"}
	}
	schema["EndDate"] = zuorasim.EventField{Type: "date-time"}
	r := newMedRig(t, zuorasim.Options{MediationSchema: schema})
	med := NewMediation(r.cl, "usage-meter-1", "", EventMapping{Fields: fields})
	med.MaxEvents = 6
	p := fixturePart(t, "partner-template.csv")
	if _, err := med.Submit(context.Background(), p, p.SHA256+":0"); err != nil {
		t.Fatal(err)
	}
	if rej := r.sim.MediationRejected(); len(rej) > 0 {
		t.Fatalf("the meter refused %d events, first: %+v", len(rej), rej[0])
	}
	if n := len(r.sim.Records()); n != 1000 {
		t.Fatalf("%d records, want 1000", n)
	}
	req := r.first
	var got bytes.Buffer
	fmt.Fprintf(&got, "%s %s\n", req.method, req.path)
	for _, h := range []string{"Accept", "Content-Type", "Content-Length", "Idempotency-Key", "X-Zuora-Wsdl-Version"} {
		fmt.Fprintf(&got, "%s: %s\n", h, req.header.Get(h))
	}
	if !strings.HasPrefix(req.header.Get("Authorization"), "Bearer ") || req.header.Get("Zuora-Track-Id") != trackIDFor(p.SHA256+":0") {
		t.Fatalf("headers %v", req.header)
	}
	got.WriteString("\n")
	got.Write(req.body)
	got.WriteString("\n")
	golden := filepath.Join("testdata", "mediation-partner-template.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./uploader -run GoldenRequest -update to write it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("request differs from %s:\n got: %s\nwant: %s", golden, got.Bytes(), want)
	}
}

// A mapping without a field for a column every event carries is refused
// before anything is read.
func TestMediationNeedsRequiredFields(t *testing.T) {
	med := NewMediation(nil, "m", "", EventMapping{Fields: map[string]string{"ACCOUNT_ID": "CustomerId"}})
	_, err := med.Submit(context.Background(), Part{Name: "n.csv", Path: "/nonexistent"}, "k")
	if e := zerr(t, err); e.Retryable || !strings.Contains(e.Message, "no field for UOM") {
		t.Fatalf("error %+v", e)
	}
}

// Batches stay within a call's bytes; a meter that takes fewer bytes than
// configured refuses the batch with 413, which is final, and an event
// larger than a call stops the part before anything is sent.
func TestMediationBatchBytes(t *testing.T) {
	r := newMedRig(t, zuorasim.Options{MediationMaxBytes: 600})
	med := NewMediation(r.cl, "m", "", EventMapping{Fields: referenceFields})
	med.MaxBytes = 600
	if _, err := med.Submit(context.Background(), part(t, "b.csv", medCSV(25)), "bytes"); err != nil {
		t.Fatal(err)
	}
	once(t, r.sim, 25)
	if n := r.mediationCalls(); n < 5 {
		t.Fatalf("%d calls for 25 events of ~110 bytes in 600-byte calls", n)
	}
	med.MaxBytes = 2000
	_, err := med.Submit(context.Background(), part(t, "b2.csv", medCSV(25)), "too-big")
	if e := zerr(t, err); e.HTTPStatus != http.StatusRequestEntityTooLarge || e.Retryable ||
		!strings.Contains(e.Message, "b2.csv: batch 1 (records 1 to 18, lines 2 to 19) was refused: HTTP 413") {
		t.Fatalf("error %+v, want a final 413 naming the batch", e)
	}
	med.MaxBytes = 50
	calls := r.mediationCalls()
	_, err = med.Submit(context.Background(), part(t, "b3.csv", medCSV(2)), "tiny")
	if e := zerr(t, err); e.Retryable || !strings.Contains(e.Message, "b3.csv line 2: the event is 106 bytes, more than the 50 bytes of a call") {
		t.Fatalf("error %+v", e)
	}
	if r.mediationCalls() != calls {
		t.Fatal("a part with an event too large for a call was sent")
	}
}

// With Zuora unreachable nothing was sent: the error is retryable, and
// the part is sent whole once Zuora answers again.
func TestMediationUnreachable(t *testing.T) {
	r := newMedRig(t, zuorasim.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	p := part(t, "d.csv", medCSV(5))
	med := NewMediation(NewClient(Config{BaseURL: down, MaxAttempts: 2, BackoffBase: time.Millisecond}), "m", "", EventMapping{Fields: referenceFields})
	_, err = med.Submit(context.Background(), p, "down")
	if !IsRetryable(err) {
		t.Fatalf("error %v, want a retryable one", err)
	}
	med = NewMediation(r.cl, "m", "", EventMapping{Fields: referenceFields})
	if _, err := med.Submit(context.Background(), p, "down"); err != nil {
		t.Fatal(err)
	}
	once(t, r.sim, 5)
}

// A stop while a batch is under way lets the call finish: the next Submit
// goes on after it instead of finding its fate unknown.
func TestMediationStopMidCall(t *testing.T) {
	r := newMedRig(t, zuorasim.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	r.on = func(n int, w http.ResponseWriter) bool {
		if n == 1 {
			cancel()
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
	r.mu.Unlock()
	med := NewMediation(r.cl, "m", "", EventMapping{Fields: referenceFields})
	med.MaxEvents = 3
	p := part(t, "s.csv", medCSV(9))
	if _, err := med.Submit(ctx, p, "sk"); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the cancellation", err)
	}
	if n := len(r.sim.Records()); n != 3 {
		t.Fatalf("%d records after the stop, want the batch under way", n)
	}
	if _, err := med.Submit(context.Background(), p, "sk"); err != nil {
		t.Fatal(err)
	}
	once(t, r.sim, 9)
}

// BenchmarkMediation10000 sends a part of 10,000 records to the sim over
// loopback in calls of 1,000 events, journal included.
func BenchmarkMediation10000(b *testing.B) {
	srv := httptest.NewServer(zuorasim.New(zuorasim.Options{}))
	defer srv.Close()
	path := filepath.Join(b.TempDir(), "p.csv")
	if err := os.WriteFile(path, []byte(medCSV(10000)), 0o600); err != nil {
		b.Fatal(err)
	}
	med := NewMediation(NewClient(Config{BaseURL: srv.URL}), "m", "", EventMapping{Fields: referenceFields})
	start := time.Now()
	n := 0
	for i := 0; b.Loop(); i++ {
		if _, err := med.Submit(context.Background(), Part{Name: "p.csv", Path: path}, fmt.Sprintf("bench-%d", i)); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*10000)/time.Since(start).Seconds(), "events/s")
}
