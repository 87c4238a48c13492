package zuorasim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// mediationEvent is one usage event for a meter whose schema is the common
// one: customer, identifier, date, quantity and unit.
type mediationEvent struct {
	CustomerID      string      `json:"CustomerId"`
	UsageIdentifier string      `json:"UsageIdentifier"`
	UsageDate       string      `json:"UsageDate"`
	Quantity        json.Number `json:"Quantity"`
	UOM             string      `json:"UOM"`
	Description     string      `json:"Description"`
}

// handleMediation is POST /usage/bulk/{meter}: a JSON event or an array of
// events. Events are deduplicated by UsageIdentifier per meter, as
// Mediation does for streamed events.
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
	recs := make([]Record, 0, len(events))
	for i, e := range events {
		rec := Record{ImportID: "mediation:" + meter, Account: e.CustomerID, UOM: cmp.Or(e.UOM, meter), Qty: e.Quantity.String(), Description: e.Description, UniqueKey: e.UsageIdentifier}
		v := rowChecker{opt: s.opt}
		v.opt.UOMs = nil // a meter's unit is set on the meter, not per event
		if bad := v.checkFields(&rec, isoToLocale(e.UsageDate), ""); len(bad) > 0 {
			fail(http.StatusBadRequest, fmt.Sprintf("event %d: %s", i, strings.Join(bad, "; ")))
			return
		}
		recs = append(recs, rec)
	}
	taken := s.takeEvents(meter, recs)
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": fmt.Sprintf("%d event(s) received, %d new", len(recs), taken)})
}

// parseEvents reads one JSON event or an array of them.
func parseEvents(body []byte) ([]mediationEvent, error) {
	body = bytes.TrimSpace(body)
	if bytes.HasPrefix(body, []byte("[")) {
		var events []mediationEvent
		return events, json.Unmarshal(body, &events)
	}
	events := make([]mediationEvent, 1)
	return events, json.Unmarshal(body, &events[0])
}

// takeEvents keeps the records of events not seen before on the meter and
// returns how many it kept.
func (s *Sim) takeEvents(meter string, recs []Record) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	var fresh []Record
	for _, rec := range recs {
		k := meter + "\x00" + rec.UniqueKey
		if rec.UniqueKey != "" && s.seen[k] {
			continue
		}
		s.seen[k] = true
		fresh = append(fresh, rec)
	}
	s.addRecordsLocked(fresh)
	return len(fresh)
}
