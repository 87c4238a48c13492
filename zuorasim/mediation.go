package zuorasim

import (
	"bytes"
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
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opt.MediationMaxBytes+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "message": "cannot read the body: " + err.Error()})
		return
	}
	if int64(len(body)) > s.opt.MediationMaxBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"success": false, "message": fmt.Sprintf("payload larger than %d bytes", s.opt.MediationMaxBytes)})
		return
	}
	var events []mediationEvent
	body = bytes.TrimSpace(body)
	if bytes.HasPrefix(body, []byte("[")) {
		err = json.Unmarshal(body, &events)
	} else {
		events = make([]mediationEvent, 1)
		err = json.Unmarshal(body, &events[0])
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "message": "the body is not a JSON event or array of events: " + err.Error()})
		return
	}
	if len(events) > s.opt.MediationMaxEvents {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"success": false, "message": fmt.Sprintf("more than %d events in one call", s.opt.MediationMaxEvents)})
		return
	}
	meter := r.PathValue("meter")
	recs := make([]Record, 0, len(events))
	for i, e := range events {
		rec := Record{ImportID: "mediation:" + meter, Account: e.CustomerID, UOM: e.UOM, Qty: e.Quantity.String(), Description: e.Description, UniqueKey: e.UsageIdentifier}
		v := rowChecker{opt: s.opt}
		v.opt.UOMs = nil // a meter's unit is set on the meter, not per event
		if rec.UOM == "" {
			rec.UOM = meter
		}
		if bad := v.checkFields(&rec, isoToLocale(e.UsageDate), ""); len(bad) > 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "message": fmt.Sprintf("event %d: %s", i, strings.Join(bad, "; "))})
			return
		}
		recs = append(recs, rec)
	}
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	taken := 0
	var fresh []Record
	for _, rec := range recs {
		k := meter + "\x00" + rec.UniqueKey
		if rec.UniqueKey != "" && s.seen[k] {
			continue
		}
		s.seen[k] = true
		fresh = append(fresh, rec)
		taken++
	}
	s.addRecordsLocked(fresh)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": fmt.Sprintf("%d event(s) received, %d new", len(recs), taken)})
}
