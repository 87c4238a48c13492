package zuorasim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The token call as zuora-api.md's OAuth section has it.
func TestTokenRules(t *testing.T) {
	form := func(id, secret, grant string) string {
		return url.Values{"client_id": {id}, "client_secret": {secret}, "grant_type": {grant}}.Encode()
	}
	tests := []struct {
		name  string
		ctype string
		body  string
		hdr   map[string]string
		want  int
	}{
		{"client credentials", "application/x-www-form-urlencoded", form("id", "secret", "client_credentials"), nil, http.StatusOK},
		{"wrong secret", "application/x-www-form-urlencoded", form("id", "nope", "client_credentials"), nil, http.StatusUnauthorized},
		{"another grant", "application/x-www-form-urlencoded", form("id", "secret", "password"), nil, http.StatusBadRequest},
		{"no grant", "application/x-www-form-urlencoded", url.Values{"client_id": {"id"}, "client_secret": {"secret"}}.Encode(), nil, http.StatusBadRequest},
		{"JSON, not a form", "application/json", `{"client_id":"id","client_secret":"secret","grant_type":"client_credentials"}`, nil, http.StatusBadRequest},
		{"an Authorization header", "application/x-www-form-urlencoded", form("id", "secret", "client_credentials"), map[string]string{"Authorization": "Basic aWQ6c2VjcmV0"}, http.StatusBadRequest},
	}
	e := newEnv(t, Options{ClientID: "id", ClientSecret: "secret"})
	e.token = ""
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tok map[string]any
			e.decode(e.do("POST", "/oauth/token", tt.ctype, strings.NewReader(tt.body), tt.hdr), tt.want, &tok)
			if tt.want != http.StatusOK {
				return
			}
			if tok["token_type"] != "bearer" || tok["expires_in"] != 3599.0 || tok["access_token"] == "" {
				t.Fatalf("token %v", tok)
			}
		})
	}
}

// A token is good for its life and not after.
func TestTokenExpires(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: 100 * time.Millisecond})
	e.decode(e.do("GET", "/v1/usage/nope/status", "", nil, nil), http.StatusNotFound, nil)
	time.Sleep(150 * time.Millisecond)
	var body map[string]string
	e.decode(e.do("GET", "/v1/usage/nope/status", "", nil, nil), http.StatusUnauthorized, &body)
	if body["message"] != "Authentication error" {
		t.Fatalf("401 body %v", body)
	}
	e.decode(e.do("GET", "/v1/usage/nope/status", "", nil, map[string]string{"Authorization": "Basic " + e.token}), http.StatusUnauthorized, nil)
}

// Zuora-Track-Id: at most 64 US-ASCII characters without : ; " ', echoed.
func TestTrackIDRules(t *testing.T) {
	tests := []struct {
		id   string
		want int
	}{
		{strings.Repeat("t", 64), http.StatusNotFound},
		{"usagedrop-0123abcd", http.StatusNotFound},
		{strings.Repeat("t", 65), http.StatusBadRequest},
		{"a;b", http.StatusBadRequest},
		{`a"b`, http.StatusBadRequest},
		{"a'b", http.StatusBadRequest},
		{"a:b", http.StatusBadRequest},
		{"café", http.StatusBadRequest},
		{"a\tb", http.StatusBadRequest},
	}
	e := newEnv(t, Options{})
	for _, tt := range tests {
		resp := e.do("GET", "/v1/usage/nope/status", "", nil, map[string]string{"Zuora-Track-Id": tt.id})
		if echoed := resp.Header.Get("Zuora-Track-Id") == tt.id; echoed != (tt.want != http.StatusBadRequest) {
			t.Errorf("%q: echoed %v", tt.id, echoed)
		}
		if resp.StatusCode != tt.want {
			t.Errorf("%q: HTTP %d, want %d", tt.id, resp.StatusCode, tt.want)
		}
		resp.Body.Close()
	}
}

// The shape of an upload: multipart/form-data with a part named file that
// has a file name of at most 50 characters and at most 4,194,304 bytes.
func TestUploadRequestShape(t *testing.T) {
	e := newEnv(t, Options{})
	var form bytes.Buffer
	ctype := multipartFile(&form, "a.csv", []byte(tinyCSV))
	tests := []struct {
		name  string
		ctype string
		body  string
		want  string // "" means taken
	}{
		{"the documented form", ctype, form.String(), ""},
		{"not multipart", "text/csv", tinyCSV, "must be multipart/form-data"},
		{"no part named file", ctype, strings.Replace(form.String(), `name="file"`, `name="upload"`, 1), "no part named file"},
		{"no file name", ctype, strings.Replace(form.String(), `; filename="a.csv"`, "", 1), "Cannot detect the file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ans uploadAnswer
			if tt.want == "" {
				e.decode(e.do("POST", "/v1/usage", tt.ctype, strings.NewReader(tt.body), nil), http.StatusOK, &ans)
				return
			}
			e.decode(e.do("POST", "/v1/usage", tt.ctype, strings.NewReader(tt.body), nil), http.StatusBadRequest, &ans)
			if ans.Success || len(ans.Reasons) != 1 || !strings.Contains(ans.Reasons[0].Message, tt.want) {
				t.Fatalf("answer %+v, want %q", ans, tt.want)
			}
		})
	}
	// The limits themselves are taken.
	e.decode(e.upload(strings.Repeat("n", 46)+".csv", []byte(tinyCSV), ""), http.StatusOK, nil)
	big := append([]byte(tinyCSV), bytes.Repeat([]byte(" "), maxFileSize-len(tinyCSV))...)
	e.decode(e.upload("big.csv", big, ""), http.StatusOK, nil)
}

// The status URL is /v1/usage/<32 hex>/status, and an import is Pending,
// then Processing, then final; Canceled is a final state that imports
// nothing.
func TestImportStatusShape(t *testing.T) {
	e := newEnv(t, Options{ProcessingDelay: 400 * time.Millisecond})
	var ans uploadAnswer
	e.decode(e.upload("a.csv", []byte(tinyCSV), ""), http.StatusOK, &ans)
	if !regexp.MustCompile(`^/v1/usage/[0-9a-f]{32}/status$`).MatchString(ans.CheckImportStatus) || ans.Size != len(tinyCSV) {
		t.Fatalf("answer %+v", ans)
	}
	var st struct {
		Success      bool   `json:"success"`
		ImportStatus string `json:"importStatus"`
	}
	e.decode(e.do("GET", ans.CheckImportStatus, "", nil, nil), http.StatusOK, &st)
	if !st.Success || st.ImportStatus != "Pending" {
		t.Fatalf("at once: %+v", st)
	}
	time.Sleep(250 * time.Millisecond)
	e.decode(e.do("GET", ans.CheckImportStatus, "", nil, nil), http.StatusOK, &st)
	if st.ImportStatus != "Processing" {
		t.Fatalf("half way: %+v", st)
	}
	if s, _ := e.waitFinal(ans.CheckImportStatus); s != "Completed" {
		t.Fatalf("final %s", s)
	}

	e.sim.SetFaults(Faults{CancelImports: 1})
	e.decode(e.upload("b.csv", []byte(tinyCSV), ""), http.StatusOK, &ans)
	if s, msg := e.waitFinal(ans.CheckImportStatus); s != "Canceled" || msg == "" {
		t.Fatalf("canceled import: %s %q", s, msg)
	}
	if n := len(e.sim.Records()); n != 1 {
		t.Fatalf("%d records, want the completed import's one", n)
	}
}

// The object API (seed 002): the Usage object's fields and no others under
// rejectUnknownFields, UniqueKey from WSDL 114, custom fields the tenant
// has, a number for Quantity and date-times for the dates.
func TestObjectUsageRules(t *testing.T) {
	const base = `"AccountNumber":"A1","UOM":"GB","Quantity":2,"StartDateTime":"2026-03-01T00:00:00"`
	tests := []struct {
		name   string
		query  string
		wsdl   string
		body   string
		status int
		want   string // "" means created; else in the message
	}{
		{"the documented record", "?rejectUnknownFields=true", "", "{" + base + "}", 200, ""},
		{"date-time with a zone", "?rejectUnknownFields=true", "", `{"AccountNumber":"A1","UOM":"GB","Quantity":2,"StartDateTime":"2026-03-01T00:00:00+01:00"}`, 200, ""},
		{"by account id", "?rejectUnknownFields=true", "", `{"AccountId":"2c92c0f9","UOM":"GB","Quantity":2,"StartDateTime":"2026-03-01T00:00:00"}`, 200, ""},
		{"UniqueKey at WSDL 114", "?rejectUnknownFields=true", "114.0", "{" + base + `,"UniqueKey":"u1"}`, 200, ""},
		{"UniqueKey below WSDL 114, strict", "?rejectUnknownFields=true", "113", "{" + base + `,"UniqueKey":"u2"}`, 400, "Error - unrecognised fields"},
		{"UniqueKey without the header, strict", "?rejectUnknownFields=true", "", "{" + base + `,"UniqueKey":"u3"}`, 400, "Error - unrecognised fields"},
		{"UniqueKey below WSDL 114, lenient: dropped", "", "", "{" + base + `,"UniqueKey":"u4"}`, 200, ""},
		{"a template column name", "?rejectUnknownFields=true", "", "{" + base + `,"PRODUCT_RATE_PLAN_CHARGE_ID":"p"}`, 400, "Error - unrecognised fields"},
		{"a custom field the tenant has", "?rejectUnknownFields=true", "", "{" + base + `,"Region__c":"EU"}`, 200, ""},
		{"a custom field it lacks", "?rejectUnknownFields=true", "", "{" + base + `,"Colour__c":"red"}`, 400, "Error - unrecognised fields"},
		{"quantity as a string", "?rejectUnknownFields=true", "", `{"AccountNumber":"A1","UOM":"GB","Quantity":"2","StartDateTime":"2026-03-01T00:00:00"}`, 200, "must be a JSON number"},
		{"a bare date", "?rejectUnknownFields=true", "", `{"AccountNumber":"A1","UOM":"GB","Quantity":2,"StartDateTime":"2026-03-01"}`, 200, "must be a date-time"},
		{"no account", "?rejectUnknownFields=true", "", `{"UOM":"GB","Quantity":2,"StartDateTime":"2026-03-01T00:00:00"}`, 200, "The ACCOUNT_ID is missing"},
		{"account id over 32", "?rejectUnknownFields=true", "", `{"AccountId":"` + strings.Repeat("a", 33) + `","UOM":"GB","Quantity":2,"StartDateTime":"2026-03-01T00:00:00"}`, 200, "AccountId length is longer than the 32"},
		{"negative quantity", "?rejectUnknownFields=true", "", `{"AccountNumber":"A1","UOM":"GB","Quantity":-1,"StartDateTime":"2026-03-01T00:00:00"}`, 200, "cannot be less than 0"},
		{"not JSON", "?rejectUnknownFields=true", "", `AccountNumber=A1`, 400, "not a usage object"},
	}
	e := newEnv(t, Options{CustomFields: []string{"Region__c"}})
	created := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.wsdl != "" {
				hdr["X-Zuora-WSDL-Version"] = tt.wsdl
			}
			var out struct {
				Success bool   `json:"Success"`
				ID      string `json:"Id"`
				Message string `json:"message"`
				Errors  []struct {
					Code, Message string
				} `json:"Errors"`
			}
			e.decode(e.do("POST", "/v1/object/usage"+tt.query, "application/json", strings.NewReader(tt.body), hdr), tt.status, &out)
			if tt.want == "" {
				if !out.Success || len(out.ID) != 32 {
					t.Fatalf("answer %+v, want created", out)
				}
				created++
				return
			}
			msg := out.Message
			for _, x := range out.Errors {
				msg += x.Message
			}
			if out.Success || !strings.Contains(msg, tt.want) {
				t.Fatalf("answer %+v, want %q", out, tt.want)
			}
		})
	}
	recs := e.sim.Records()
	if len(recs) != created {
		t.Fatalf("%d records, %d created", len(recs), created)
	}
	var keys []string
	for _, r := range recs {
		if r.UniqueKey != "" {
			keys = append(keys, r.UniqueKey)
		}
		if r.Custom != nil && r.Custom["Region__c"] != "EU" {
			t.Errorf("custom field %v", r.Custom)
		}
	}
	if len(keys) != 1 || keys[0] != "u1" {
		t.Fatalf("unique keys %v, want only u1 (u4 dropped below WSDL 114)", keys)
	}
}

// The ZOQL the sim answers and the words it refuses the rest with.
func TestQueryRules(t *testing.T) {
	tests := []struct {
		q    string
		want int
	}{
		{"select Id, Status from Import where Name = 'a.csv'", http.StatusOK},
		{"SELECT id FROM import WHERE id = 'x'", http.StatusOK},
		{"select Id, Colour from Import where Name = 'a.csv'", http.StatusBadRequest},
		{"select Id from Import where Status = 'Completed'", http.StatusBadRequest},
		{"select Id from Import", http.StatusBadRequest},
		{"select Id from Usage where Name = 'a'", http.StatusBadRequest},
	}
	e := newEnv(t, Options{})
	for _, tt := range tests {
		body, _ := json.Marshal(map[string]string{"queryString": tt.q})
		resp := e.do("POST", "/v1/action/query", "application/json", bytes.NewReader(body), nil)
		if resp.StatusCode != tt.want {
			t.Errorf("%q: HTTP %d, want %d", tt.q, resp.StatusCode, tt.want)
		}
		resp.Body.Close()
	}
}

// A 500 behind a record's key is stored like any answer: a retry under the
// same key sees it again, whether or not the record was created.
func TestObjectStoredFailures(t *testing.T) {
	body := `{"AccountNumber":"A1","UOM":"GB","Quantity":2,"StartDateTime":"2026-03-01T00:00:00"}`
	post := func(e *env, key string) *http.Response {
		return e.do("POST", "/v1/object/usage?rejectUnknownFields=true", "application/json", strings.NewReader(body), map[string]string{"Idempotency-Key": key})
	}
	tests := []struct {
		name    string
		faults  Faults
		records int
	}{
		{"nothing created", Faults{StoredObjectErrors: 1}, 0},
		{"created, then 500", Faults{StoredObjectErrorsCreated: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			e.sim.SetFaults(tt.faults)
			e.decode(post(e, "r1"), http.StatusInternalServerError, nil)
			resp := post(e, "r1")
			if resp.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("not replayed: %v", resp.Header)
			}
			e.decode(resp, http.StatusInternalServerError, nil)
			if n := len(e.sim.Records()); n != tt.records {
				t.Fatalf("%d records, want %d", n, tt.records)
			}
			e.decode(post(e, "r1-new"), http.StatusOK, nil)
		})
	}
}

// A server error carries the REST error body with an 8-digit code whose
// last two digits are its category (60: temporary); a success:false
// answer behind a key is stored and replayed like a 500.
func TestServerErrorBody(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.SetFaults(Faults{ServerErrors: 1})
	var ans uploadAnswer
	e.decode(e.upload("a.csv", []byte(tinyCSV), ""), http.StatusInternalServerError, &ans)
	if ans.Success || len(ans.Reasons) != 1 || ans.Reasons[0].Code < 10000000 || ans.Reasons[0].Code > 99999999 || ans.Reasons[0].Code%100 != 60 {
		t.Fatalf("500 body %+v", ans)
	}
	e.sim.SetFaults(Faults{Success200False: 1})
	e.decode(e.upload("a.csv", []byte(tinyCSV), "sf"), http.StatusOK, &ans)
	resp := e.upload("a.csv", []byte(tinyCSV), "sf")
	if resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("success:false not replayed: %v", resp.Header)
	}
	e.decode(resp, http.StatusOK, &ans)
	if ans.Success || len(e.sim.Imports()) != 0 {
		t.Fatalf("replayed %+v, %d imports", ans, len(e.sim.Imports()))
	}
}
