package zuorasim

import (
	"net/http"
	"strings"
	"testing"
)

const goodEvent = `{"CustomerId":"A1","UsageIdentifier":"API Calls","UsageDate":"2026-03-01T00:00:00Z","Quantity":3}`

// post sends body to the meter's bulk endpoint and returns the status.
func (e *env) postEvents(meter, body string, hdr map[string]string) int {
	e.t.Helper()
	resp := e.do("POST", "/usage/bulk/"+meter, "application/json", strings.NewReader(body), hdr)
	code := resp.StatusCode
	e.decode(resp, code, nil)
	return code
}

// Only the API-level checks decide the answer: the shape of the body and
// the call's limits.
func TestMediationAPIChecks(t *testing.T) {
	tests := []struct {
		name, body string
		want       int
	}{
		{"one event", goodEvent, http.StatusOK},
		{"array", "[" + goodEvent + "," + goodEvent + "]", http.StatusOK},
		{"too many events", "[" + goodEvent + "," + goodEvent + "," + goodEvent + "]", http.StatusRequestEntityTooLarge},
		{"too many bytes", "[" + goodEvent + `,{"CustomerId":"` + strings.Repeat("x", 200) + `"}]`, http.StatusRequestEntityTooLarge},
		{"not JSON", "CustomerId=A1", http.StatusBadRequest},
		{"array of numbers", "[1,2]", http.StatusBadRequest},
		{"empty array", "[]", http.StatusBadRequest},
	}
	e := newEnv(t, Options{MediationMaxEvents: 2, MediationMaxBytes: 250})
	for _, tt := range tests {
		if got := e.postEvents("m", tt.body, nil); got != tt.want {
			t.Errorf("%s: HTTP %d, want %d", tt.name, got, tt.want)
		}
	}
	if n := len(e.sim.Records()); n != 3 {
		t.Fatalf("%d records, want the 3 events of the accepted calls", n)
	}
}

// Every event is answered 200; one that does not conform to the meter's
// schema shows only in the audit.
func TestMediationSchema(t *testing.T) {
	tests := []struct {
		name, event string
		reason      string // "" when the event conforms
	}{
		{"reference event", goodEvent, ""},
		{"offset date-time", `{"CustomerId":"A1","UsageIdentifier":"GB","UsageDate":"2026-03-01T00:00:00+01:00","Quantity":0.25}`, ""},
		{"bare date", `{"CustomerId":"A1","UsageIdentifier":"GB","UsageDate":"2026-03-01","Quantity":1}`, "field UsageDate: want an RFC 3339 date-time"},
		{"quantity as text", `{"CustomerId":"A1","UsageIdentifier":"GB","UsageDate":"2026-03-01T00:00:00Z","Quantity":"1"}`, "field Quantity: want a JSON number"},
		{"missing customer", `{"UsageIdentifier":"GB","UsageDate":"2026-03-01T00:00:00Z","Quantity":1}`, "field CustomerId is required"},
		{"empty customer", `{"CustomerId":"","UsageIdentifier":"GB","UsageDate":"2026-03-01T00:00:00Z","Quantity":1}`, "field CustomerId is required"},
		{"unknown field", `{"CustomerId":"A1","UsageIdentifier":"GB","UsageDate":"2026-03-01T00:00:00Z","Quantity":1,"SubscriptionNumber":"S-1"}`, "field SubscriptionNumber is not in the meter's event definition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			if code := e.postEvents("m", tt.event, nil); code != http.StatusOK {
				t.Fatalf("HTTP %d, want 200 whatever the schema says", code)
			}
			recs, rej := e.sim.Records(), e.sim.MediationRejected()
			if tt.reason == "" {
				if len(recs) != 1 || len(rej) != 0 || recs[0].Account != "A1" || recs[0].Start != "2026-03-01" || recs[0].Event != tt.event {
					t.Fatalf("records %+v, rejected %+v", recs, rej)
				}
				return
			}
			if len(recs) != 0 || len(rej) != 1 || !strings.Contains(rej[0].Reason, tt.reason) || rej[0].Meter != "m" || rej[0].Event != tt.event {
				t.Fatalf("records %+v, rejected %+v, want reason %q", recs, rej, tt.reason)
			}
		})
	}
}

// A configured schema replaces the reference's.
func TestMediationCustomSchema(t *testing.T) {
	e := newEnv(t, Options{MediationSchema: map[string]EventField{
		"Account": {Type: "string", Required: true}, "Units": {Type: "number", Required: true}, "Sub": {Type: "string"},
	}})
	e.postEvents("m", `[{"Account":"A1","Units":2},{"Account":"A2","Units":3,"Sub":"S-1"},{"Account":"A3","Units":1,"CustomerId":"A3"}]`, nil)
	if recs, rej := e.sim.Records(), e.sim.MediationRejected(); len(recs) != 2 || len(rej) != 1 || rej[0].Index != 2 {
		t.Fatalf("records %+v, rejected %+v", recs, rej)
	}
}

// The call lists no Idempotency-Key: the same key twice is two calls, and
// without a Deduplicator the same event twice counts twice.
func TestMediationNoIdempotency(t *testing.T) {
	e := newEnv(t, Options{})
	for range 2 {
		if code := e.postEvents("m", goodEvent, map[string]string{"Idempotency-Key": "k1"}); code != http.StatusOK {
			t.Fatalf("HTTP %d", code)
		}
	}
	if n := len(e.sim.Records()); n != 2 {
		t.Fatalf("%d records, want 2: nothing dedupes without a Deduplicator", n)
	}
}

func TestMediationDeduplicator(t *testing.T) {
	schema := ReferenceSchema()
	schema["EventId"] = EventField{Type: "string"}
	e := newEnv(t, Options{MediationSchema: schema, MediationDedupeField: "EventId"})
	withID := strings.TrimSuffix(goodEvent, "}") + `,"EventId":"e1"}`
	e.postEvents("m", "["+withID+","+withID+"]", nil)
	e.postEvents("m", withID, nil)
	e.postEvents("other", withID, nil)
	e.postEvents("m", goodEvent, nil) // no key: the Deduplicator lets it through
	recs := e.sim.Records()
	if len(recs) != 3 || recs[0].UniqueKey != "e1" || recs[1].ImportID != "mediation:other" || recs[2].UniqueKey != "" {
		t.Fatalf("records %+v, want e1 once per meter and the keyless event", recs)
	}
}

// DropAfterRead takes the events and closes the connection unanswered.
func TestMediationLostAnswer(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.SetFaults(Faults{DropAfterRead: 1})
	req, _ := http.NewRequest("POST", e.srv.URL+"/usage/bulk/m", strings.NewReader(goodEvent))
	req.Header.Set("Authorization", "Bearer "+e.token)
	if resp, err := e.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("an answer came: HTTP %d", resp.StatusCode)
	}
	if n := len(e.sim.Records()); n != 1 {
		t.Fatalf("%d records, want the event taken", n)
	}
}
