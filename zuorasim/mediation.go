package zuorasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The rules the simulated Mediation meter enforces, each with its source.
// "Ingest" is Zuora's reference page for the call,
// https://developer.zuora.com/v1-api-reference/api/operation/ingestUsageEvents;
// "zuora-api.md" is ../shared/zuora-api.md, section Mediation.
//
//	rule                                                     source                     test
//	a JSON event or an array of events                      Ingest                     TestMediationAPIChecks
//	more bytes or events than one call takes: 413            zuora-api.md (limits)      TestMediationAPIChecks
//	200 once received and API-level checks pass, before      zuora-api.md, Ingest       TestMediationSchema
//	  schema validation; invalid events only in the audit
//	each event conforms to the meter's event definition      Ingest, zuora-api.md       TestMediationSchema
//	reference schema: CustomerId string, UsageIdentifier     zuora-api.md (reference's  TestMediationSchema
//	  string, UsageDate date-time, Quantity number             example event)
//	a field outside the definition is refused                silent: stricter reading   TestMediationSchema
//	a date-time is RFC 3339 with a zone; a bare date is not  silent: stricter reading   TestMediationSchema
//	no Idempotency-Key: the header is ignored                Ingest lists none          TestMediationNoIdempotency
//	nothing deduplicated without a Deduplicator              zuora-api.md               TestMediationNoIdempotency
//	a Deduplicator drops repeats of its key field per meter  zuora-api.md               TestMediationDeduplicator
//	DropAfterRead: events taken, answer lost                 (fault)                    TestMediationLostAnswer

// EventField is one field of a meter's event definition.
type EventField struct {
	// Type is "string", "number" or "date-time" (RFC 3339 with a zone).
	Type string
	// Required fields must be present, and a required string not empty.
	Required bool
}

// ReferenceSchema is the event definition of the reference's example
// event (zuora-api.md, Mediation): the default when Options.MediationSchema
// is nil.
func ReferenceSchema() map[string]EventField {
	return map[string]EventField{
		"CustomerId":      {Type: "string", Required: true},
		"UsageIdentifier": {Type: "string", Required: true},
		"UsageDate":       {Type: "date-time", Required: true},
		"Quantity":        {Type: "number", Required: true},
	}
}

// RejectedEvent is an event a meter refused after its call had been
// answered 200: as on Zuora, the caller is not told.
type RejectedEvent struct {
	Meter  string
	Index  int    // position in its call
	Event  string // as received
	Reason string
}

// MediationRejected returns the events that failed the meter's schema, in
// the order they arrived.
func (s *Sim) MediationRejected() []RejectedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rejected)
}

// handleMediation is POST /usage/bulk/{meter}: a JSON event or an array of
// events. It answers once the API-level checks pass; each event is then
// checked against the meter's schema, and kept or put in the audit.
// It is not behind the idempotent wrapper: the call lists no
// Idempotency-Key (Ingest), so the header means nothing here.
func (s *Sim) handleMediation(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		writeJSON(w, status, map[string]any{"success": false, "message": msg})
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opt.MediationMaxBytes+1))
	if err != nil {
		fail(http.StatusBadRequest, "cannot read the body: "+err.Error())
		return
	}
	if int64(len(body)) > s.opt.MediationMaxBytes {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("payload larger than %d bytes", s.opt.MediationMaxBytes))
		return
	}
	events, err := parseEvents(body)
	if err != nil {
		fail(http.StatusBadRequest, "the body is not a JSON event or array of events: "+err.Error())
		return
	}
	if len(events) > s.opt.MediationMaxEvents {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d events in one call", s.opt.MediationMaxEvents))
		return
	}
	meter := r.PathValue("meter")
	s.mu.Lock()
	drop := s.faults.DropAfterRead > 0
	if drop {
		s.faults.DropAfterRead--
	}
	s.mu.Unlock()
	s.takeEvents(meter, events)
	if drop {
		s.log.Info("zuorasim dropping the answer", "path", r.URL.Path)
		panic(http.ErrAbortHandler)
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": fmt.Sprintf("%d event(s) received", len(events))})
}

// parseEvents reads one JSON object or an array of them, without looking
// inside: what is in an event is the schema's business, checked later.
func parseEvents(body []byte) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	var events []json.RawMessage
	if bytes.HasPrefix(body, []byte("[")) {
		if err := json.Unmarshal(body, &events); err != nil {
			return nil, err
		}
	} else {
		events = []json.RawMessage{body}
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("no events")
	}
	for i, ev := range events {
		if !bytes.HasPrefix(bytes.TrimSpace(ev), []byte("{")) || !json.Valid(ev) {
			return nil, fmt.Errorf("event %d is not a JSON object", i)
		}
	}
	return events, nil
}

// takeEvents checks each event against the schema and keeps the valid
// ones a Deduplicator, if there is one, has not seen.
func (s *Sim) takeEvents(meter string, events []json.RawMessage) {
	schema := s.opt.MediationSchema
	if schema == nil {
		schema = ReferenceSchema()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	var fresh []Record
	for i, raw := range events {
		var compact bytes.Buffer
		_ = json.Compact(&compact, raw)
		fields, reason := checkEvent(raw, schema)
		if reason != "" {
			s.rejected = append(s.rejected, RejectedEvent{Meter: meter, Index: i, Event: compact.String(), Reason: reason})
			continue
		}
		rec := eventRecord(meter, fields, compact.String())
		// An event without the Deduplicator's field passes it: the docs
		// are silent, and counting it is what a missing key would do.
		if v := fields[s.opt.MediationDedupeField]; s.opt.MediationDedupeField != "" && v != nil && v != "" {
			rec.UniqueKey = fmt.Sprint(v)
			k := meter + "\x00" + rec.UniqueKey
			if s.seen[k] {
				continue
			}
			s.seen[k] = true
		}
		fresh = append(fresh, rec)
	}
	s.addRecordsLocked(fresh)
}

// checkEvent validates one event against schema and returns its fields,
// or why it does not conform, every problem named.
func checkEvent(raw json.RawMessage, schema map[string]EventField) (map[string]any, string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, "not a JSON object: " + err.Error()
	}
	var bad []string
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		spec, ok := schema[name]
		if !ok {
			bad = append(bad, fmt.Sprintf("field %s is not in the meter's event definition", name))
			continue
		}
		if why := checkType(fields[name], spec.Type); why != "" {
			bad = append(bad, fmt.Sprintf("field %s: %s", name, why))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(schema)) {
		v, ok := fields[name]
		if schema[name].Required && (!ok || v == nil || v == "") {
			bad = append(bad, fmt.Sprintf("field %s is required", name))
		}
	}
	return fields, strings.Join(bad, "; ")
}

// checkType says why v is not of the schema type typ, or "".
func checkType(v any, typ string) string {
	if v == nil {
		return ""
	}
	switch typ {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Sprintf("want a string, got %v", v)
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			return fmt.Sprintf("want a JSON number, got %q", fmt.Sprint(v))
		}
	case "date-time":
		s, ok := v.(string)
		if _, err := time.Parse(time.RFC3339, s); !ok || err != nil {
			return fmt.Sprintf("want an RFC 3339 date-time such as 2026-03-16T00:00:00Z, got %q", fmt.Sprint(v))
		}
	default:
		return "the schema has an unknown type " + typ
	}
	return ""
}

// eventRecord is the usage record an event stands for. The reference's
// field names fill the record's columns; every event keeps its JSON.
func eventRecord(meter string, fields map[string]any, event string) Record {
	str := func(name string) string {
		if v, ok := fields[name]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	rec := Record{ImportID: "mediation:" + meter, Account: str("CustomerId"), UOM: str("UsageIdentifier"), Qty: str("Quantity"), Event: event}
	if t, err := time.Parse(time.RFC3339, str("UsageDate")); err == nil {
		rec.Start = t.Format(time.DateOnly)
	}
	return rec
}
