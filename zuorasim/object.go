package zuorasim

import (
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

// importFields are the Import object's fields a query may select.
var importFields = []string{"Id", "Name", "ImportType", "Status", "StatusReason", "ImportedCount", "TotalCount", "FileSize", "CreatedDate", "ResultResourceUrl"}

// importQuery is the one ZOQL shape the sim answers: select fields from
// Import where Name or Id equals a quoted string (\' and \\ escape).
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

// objectUsage is the body of POST /v1/object/usage.
type objectUsage struct {
	AccountID          string      `json:"AccountId"`
	AccountNumber      string      `json:"AccountNumber"`
	UOM                string      `json:"UOM"`
	Quantity           json.Number `json:"Quantity"`
	StartDateTime      string      `json:"StartDateTime"`
	EndDateTime        string      `json:"EndDateTime"`
	SubscriptionNumber string      `json:"SubscriptionNumber"`
	SubscriptionID     string      `json:"SubscriptionId"`
	ChargeNumber       string      `json:"ChargeNumber"`
	ChargeID           string      `json:"ChargeId"`
	Description        string      `json:"Description"`
	UniqueKey          string      `json:"UniqueKey"`
}

// handleObjectUsage is POST /v1/object/usage: one record, imported at once.
func (s *Sim) handleObjectUsage(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if r.URL.Query().Get("rejectUnknownFields") == "true" {
		dec.DisallowUnknownFields()
	}
	dec.UseNumber()
	var u objectUsage
	if err := dec.Decode(&u); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Error - unrecognised fields"})
			return
		}
		writeObjectErrors(w, http.StatusBadRequest, "INVALID_VALUE", "the body is not a usage object: "+err.Error())
		return
	}
	if u.UniqueKey != "" && wsdlVersion(r.Header.Get("X-Zuora-WSDL-Version")) < 114 {
		// UniqueKey is a field of the Usage object from WSDL 114 on
		// (zuora-api.md, Object API); below it the field is unknown.
		if r.URL.Query().Get("rejectUnknownFields") == "true" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Error - unrecognised fields"})
			return
		}
		u.UniqueKey = ""
	}
	rec := Record{
		ImportID: "object", Account: u.AccountNumber, UOM: u.UOM, Qty: u.Quantity.String(),
		Subscription: u.SubscriptionNumber, Charge: u.ChargeNumber,
		Description: u.Description, UniqueKey: u.UniqueKey,
	}
	if rec.Account == "" {
		rec.Account = u.AccountID
	}
	v := rowChecker{opt: s.opt}
	v.opt.DateFormat = "MM/DD/YYYY"
	bad := v.checkFields(&rec, isoToLocale(u.StartDateTime), isoToLocale(u.EndDateTime))
	if len(bad) > 0 {
		writeJSON(w, http.StatusOK, map[string]any{"Success": false, "Errors": []map[string]string{{"Code": "INVALID_VALUE", "Message": strings.Join(bad, "; ")}}})
		return
	}
	id := newID()
	s.mu.Lock()
	s.addRecordsLocked([]Record{rec})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"Id": id, "Success": true})
}

// isoToLocale turns an ISO date or date-time into MM/DD/YYYY so that the
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
