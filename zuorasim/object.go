package zuorasim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// importFields are the Import object's fields a query may select (api.md
// §File import, the Import object; [ImportPage] in doc.go).
var importFields = []string{"Id", "Name", "ImportType", "Status", "StatusReason", "ImportedCount", "TotalCount", "FileSize", "CreatedDate", "ResultResourceUrl"}

// importQuery is the one ZOQL shape the sim answers: select fields from
// Import where Name or Id equals a quoted string (\' and \\ escape).
// api.md §File import marks finding an import by Name [inferred]; other
// shapes are refused, the stricter reading.
var importQuery = regexp.MustCompile(`(?is)^\s*select\s+(.+?)\s+from\s+import\s+where\s+(name|id)\s*=\s*'((?:[^'\\]|\\.)*)'\s*$`)

// fields returns the Import object as Zuora's object API shows it.
func (im *Import) fields() map[string]any {
	return map[string]any{
		"Id":                im.ID,
		"Name":              im.Name,
		"ImportType":        "Usage",
		"Status":            im.Status,
		"StatusReason":      im.Message,
		"ImportedCount":     im.Imported,
		"TotalCount":        im.Total,
		"FileSize":          im.Size,
		"CreatedDate":       im.Created.UTC().Format("2006-01-02T15:04:05.000-07:00"),
		"ResultResourceUrl": "/v1/files/" + im.ID,
	}
}

// handleImportObject is GET /v1/object/import/{id}.
func (s *Sim) handleImportObject(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.advanceLocked(time.Now())
	im := s.byID[r.PathValue("id")]
	var fields map[string]any
	if im != nil {
		fields = im.fields()
	}
	s.mu.Unlock()
	if im == nil {
		writeObjectErrors(w, http.StatusNotFound, "INVALID_ID", "invalid id "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, fields)
}

// handleQuery is POST /v1/action/query for the Import object.
func (s *Sim) handleQuery(w http.ResponseWriter, r *http.Request) {
	var q struct {
		QueryString string `json:"queryString"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&q); err != nil {
		writeObjectErrors(w, http.StatusBadRequest, "MALFORMED_QUERY", "the body is not JSON with a queryString: "+err.Error())
		return
	}
	_, records, err := s.queryImports(q.QueryString)
	if err != nil {
		writeObjectErrors(w, http.StatusBadRequest, "MALFORMED_QUERY", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": records, "size": len(records), "done": true})
}

// queryImports answers the one ZOQL shape the sim knows, for REST and
// SOAP alike: the fields selected, in Zuora's spelling, and the records.
func (s *Sim) queryImports(q string) ([]string, []map[string]any, error) {
	m := importQuery.FindStringSubmatch(q)
	if m == nil {
		return nil, nil, errors.New("the sim answers only: select <fields> from Import where Name|Id = '<value>'")
	}
	var sel []string
	for _, f := range strings.Split(m[1], ",") {
		f = strings.TrimSpace(f)
		i := slices.IndexFunc(importFields, func(k string) bool { return strings.EqualFold(k, f) })
		if i < 0 {
			return nil, nil, fmt.Errorf("invalid field for query: Import.%s", f)
		}
		sel = append(sel, importFields[i])
	}
	value := strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[3])
	byName := strings.EqualFold(m[2], "name")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(time.Now())
	records := []map[string]any{}
	for _, im := range s.imports {
		if (byName && im.Name == value) || (!byName && im.ID == value) {
			all, rec := im.fields(), map[string]any{}
			for _, f := range sel {
				rec[f] = all[f]
			}
			records = append(records, rec)
		}
	}
	return sel, records, nil
}

// objectUsage is the body of POST /v1/object/usage: the Usage object's
// fields a create takes (seed 002;
// https://developer.zuora.com/api-references/api/operation/Object_POSTUsage/).
// Custom fields (Name__c) are split off before it is decoded.
type objectUsage struct {
	AccountID          string          `json:"AccountId"`
	AccountNumber      string          `json:"AccountNumber"`
	UOM                string          `json:"UOM"`
	Quantity           json.RawMessage `json:"Quantity"`
	StartDateTime      string          `json:"StartDateTime"`
	EndDateTime        string          `json:"EndDateTime"`
	SubscriptionNumber string          `json:"SubscriptionNumber"`
	SubscriptionID     string          `json:"SubscriptionId"`
	ChargeNumber       string          `json:"ChargeNumber"`
	ChargeID           string          `json:"ChargeId"`
	Description        string          `json:"Description"`
	UniqueKey          string          `json:"UniqueKey"`
}

// handleObjectUsage is POST /v1/object/usage: one record, imported at once.
func (s *Sim) handleObjectUsage(w http.ResponseWriter, r *http.Request) {
	strict := r.URL.Query().Get("rejectUnknownFields") == "true"
	unrecognised := func() {
		// seed 002, zuora-api.md Object API: the words of the 400.
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Error - unrecognised fields"})
	}
	var all map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&all); err != nil {
		writeObjectErrors(w, http.StatusBadRequest, "INVALID_VALUE", "the body is not a usage object: "+err.Error())
		return
	}
	custom, ok := s.customFields(all)
	if !ok && strict {
		unrecognised()
		return
	}
	rest, _ := json.Marshal(all)
	dec := json.NewDecoder(bytes.NewReader(rest))
	if strict {
		dec.DisallowUnknownFields()
	}
	var u objectUsage
	if err := dec.Decode(&u); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			unrecognised()
			return
		}
		writeObjectErrors(w, http.StatusBadRequest, "INVALID_VALUE", "the body is not a usage object: "+err.Error())
		return
	}
	if u.UniqueKey != "" && wsdlVersion(r.Header.Get("X-Zuora-WSDL-Version")) < 114 {
		// UniqueKey is a field of the Usage object from WSDL 114 on
		// (seed 002, zuora-api.md Object API); below it the field is
		// unknown: refused under rejectUnknownFields, else ignored.
		if strict {
			unrecognised()
			return
		}
		u.UniqueKey = ""
	}
	rec := Record{
		ImportID: "object", Account: cmp.Or(u.AccountNumber, u.AccountID), UOM: u.UOM,
		Subscription: cmp.Or(u.SubscriptionNumber, u.SubscriptionID), Charge: cmp.Or(u.ChargeNumber, u.ChargeID),
		Description: u.Description, UniqueKey: u.UniqueKey, Custom: custom,
	}
	bad := objectChecks(u, &rec)
	v := rowChecker{opt: s.opt}
	v.opt.DateFormat = "MM/DD/YYYY"
	bad = append(bad, v.checkFields(&rec, isoToLocale(u.StartDateTime), isoToLocale(u.EndDateTime))...)
	if len(bad) > 0 {
		writeJSON(w, http.StatusOK, map[string]any{"Success": false, "Errors": []map[string]string{{"Code": "INVALID_VALUE", "Message": strings.Join(bad, "; ")}}})
		return
	}
	keyed := r.Header.Get("Idempotency-Key") != ""
	s.mu.Lock()
	f := &s.faults
	before := keyed && f.StoredObjectErrors > 0
	after := keyed && !before && f.StoredObjectErrorsCreated > 0
	switch {
	case before:
		f.StoredObjectErrors--
	case after:
		f.StoredObjectErrorsCreated--
		s.addRecordsLocked([]Record{rec})
	default:
		s.addRecordsLocked([]Record{rec})
	}
	s.mu.Unlock()
	if before || after {
		// Behind the key, so stored and replayed (idempotent).
		writeObjectErrors(w, http.StatusInternalServerError, "UNKNOWN_ERROR", "An unexpected error occurred (simulated, stored under the key)")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Id": newID(), "Success": true})
}

// objectChecks applies the object API's own rules, those the file import
// does not share, and sets rec.Qty.
func objectChecks(u objectUsage, rec *Record) []string {
	var bad []string
	// Field descriptions of Usage (seed 002): the ids are zns:ID, 32
	// characters; the numbers are checked with the file's limits.
	for _, f := range []struct{ name, v string }{{"AccountId", u.AccountID}, {"SubscriptionId", u.SubscriptionID}, {"ChargeId", u.ChargeID}} {
		if textLen(f.v) > 32 {
			bad = append(bad, fmt.Sprintf("The %s length is longer than the 32 character maximum", f.name))
		}
	}
	// Quantity is a number (seed 002, "Quantity number <double>"); a
	// quoted one is refused, the stricter reading of a silent page.
	switch q := bytes.TrimSpace(u.Quantity); {
	case len(q) == 0 || string(q) == "null":
	case q[0] == '"':
		bad = append(bad, "The Quantity must be a JSON number, not a string")
	default:
		rec.Qty = string(q)
	}
	// StartDateTime and EndDateTime are date-times (zuora-api.md, Object
	// API): a bare date is refused, the stricter reading.
	for _, f := range []struct{ name, v string }{{"StartDateTime", u.StartDateTime}, {"EndDateTime", u.EndDateTime}} {
		if f.v != "" && !strings.Contains(f.v, "T") {
			bad = append(bad, fmt.Sprintf("The %s must be a date-time such as 2026-03-01T00:00:00, not %q", f.name, f.v))
		}
	}
	return bad
}

// customFields takes the custom fields (names ending in __c) out of all
// and returns them as text. ok is false when one is not a custom field of
// the tenant's Usage object (Options.CustomFields).
func (s *Sim) customFields(all map[string]json.RawMessage) (map[string]string, bool) {
	var custom map[string]string
	ok := true
	for name, raw := range all {
		if !strings.HasSuffix(name, "__c") {
			continue
		}
		delete(all, name)
		if !s.customField(name) {
			ok = false
			continue
		}
		var v any
		_ = json.Unmarshal(raw, &v)
		if custom == nil {
			custom = map[string]string{}
		}
		custom[name] = fmt.Sprint(v)
	}
	return custom, ok
}

// customField reports whether name is a custom field of the tenant's
// Usage object.
func (s *Sim) customField(name string) bool {
	return strings.HasSuffix(name, "__c") && (s.opt.CustomFields == nil || slices.Contains(s.opt.CustomFields, name))
}

// isoToLocale turns an ISO date-time into MM/DD/YYYY so that the
// object API shares the file import's date checks; text it cannot read is
// returned as is, to be reported as an invalid format.
func isoToLocale(s string) string {
	if s == "" {
		return ""
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("01/02/2006")
		}
	}
	return s
}

// writeObjectErrors answers with the object API's error body.
func writeObjectErrors(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"Success": false, "Errors": []map[string]string{{"Code": code, "Message": msg}}})
}
