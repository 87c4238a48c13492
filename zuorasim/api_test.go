package zuorasim

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const tinyCSV = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\nA1,GB,1,03/01/2026,,,\n"

func TestAuth(t *testing.T) {
	e := newEnv(t, Options{ClientID: "id", ClientSecret: "secret"})
	bad := url.Values{"client_id": {"id"}, "client_secret": {"wrong"}, "grant_type": {"client_credentials"}}.Encode()
	e.token = ""
	e.decode(e.do("POST", "/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(bad), nil), http.StatusUnauthorized, nil)

	var body map[string]string
	e.decode(e.do("GET", "/v1/usage/x/status", "", nil, nil), http.StatusUnauthorized, &body)
	if body["message"] != "Authentication error" {
		t.Fatalf("401 body %v", body)
	}
	e2 := newEnv(t, Options{ClientID: "id", ClientSecret: "secret", TokenTTL: time.Hour})
	e2.decode(e2.upload("a.csv", []byte(tinyCSV), ""), http.StatusOK, nil)
	e2.sim.SetFaults(Faults{ExpireTokens: true})
	e2.decode(e2.upload("a.csv", []byte(tinyCSV), ""), http.StatusUnauthorized, &body)
	if e2.sim.TokensIssued() != 1 {
		t.Fatalf("tokens issued %d", e2.sim.TokensIssued())
	}
}

func TestHeaders(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.do("GET", "/v1/usage/nope/status", "", nil, map[string]string{"Zuora-Track-Id": "usagedrop-abc"})
	if resp.Header.Get("Zuora-Track-Id") != "usagedrop-abc" || len(resp.Header.Get("Zuora-Request-Id")) != 36 {
		t.Fatalf("headers %v", resp.Header)
	}
	e.decode(resp, http.StatusNotFound, nil)
	e.decode(e.do("GET", "/v1/usage/nope/status", "", nil, map[string]string{"Zuora-Track-Id": "a:b"}), http.StatusBadRequest, nil)
}

func TestIdempotencyReplay(t *testing.T) {
	e := newEnv(t, Options{})
	var first, second uploadAnswer
	e.decode(e.upload("a.csv", []byte(tinyCSV), "key-1"), http.StatusOK, &first)
	resp := e.upload("a.csv", []byte(tinyCSV), "key-1")
	if resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay not marked: %v", resp.Header)
	}
	e.decode(resp, http.StatusOK, &second)
	if first.CheckImportStatus != second.CheckImportStatus {
		t.Fatalf("replay %q, first %q", second.CheckImportStatus, first.CheckImportStatus)
	}
	e.decode(e.upload("a.csv", []byte(tinyCSV), "key-2"), http.StatusOK, nil)
	if n := len(e.sim.Imports()); n != 2 {
		t.Fatalf("%d imports, want 2 (one per key)", n)
	}
}

// A server error from behind the key is stored and replayed like any
// answer, "regardless of whether it succeeded or failed"; a 500 the
// gateway gives before the request is processed is not.
func TestIdempotencyStoresFailures(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.SetFaults(Faults{StoredServerErrors: 1})
	e.decode(e.upload("a.csv", []byte(tinyCSV), "k500"), http.StatusInternalServerError, nil)
	resp := e.upload("a.csv", []byte(tinyCSV), "k500")
	if resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("stored failure not replayed: %v", resp.Header)
	}
	e.decode(resp, http.StatusInternalServerError, nil)
	if n := len(e.sim.Imports()); n != 0 {
		t.Fatalf("%d imports, want none", n)
	}

	e.sim.SetFaults(Faults{StoredServerErrorsImported: 1})
	e.decode(e.upload("b.csv", []byte(tinyCSV), "k500i"), http.StatusInternalServerError, nil)
	e.decode(e.upload("b.csv", []byte(tinyCSV), "k500i"), http.StatusInternalServerError, nil)
	if n := len(e.sim.Imports()); n != 1 {
		t.Fatalf("%d imports, want the one created before the 500", n)
	}

	e.sim.SetFaults(Faults{ServerErrors: 1})
	e.decode(e.upload("c.csv", []byte(tinyCSV), "kgw"), http.StatusInternalServerError, nil)
	e.decode(e.upload("c.csv", []byte(tinyCSV), "kgw"), http.StatusOK, nil)
}

func TestIdempotencyKeyExpires(t *testing.T) {
	e := newEnv(t, Options{IdempotencyTTL: 50 * time.Millisecond})
	var first, second uploadAnswer
	e.decode(e.upload("a.csv", []byte(tinyCSV), "k"), http.StatusOK, &first)
	time.Sleep(80 * time.Millisecond)
	e.decode(e.upload("a.csv", []byte(tinyCSV), "k"), http.StatusOK, &second)
	if first.CheckImportStatus == second.CheckImportStatus || len(e.sim.Imports()) != 2 {
		t.Fatalf("an expired key was replayed: %+v %+v", first, second)
	}
}

// A request whose client gives up mid-body got no answer: its key must
// not replay the sim's complaint about the cut-off body.
func TestIdempotencyCutOffRequestNotStored(t *testing.T) {
	e := newEnv(t, Options{})
	var buf bytes.Buffer
	ctype := multipartFile(&buf, "a.csv", []byte(tinyCSV))
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nIdempotency-Key: cut\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", e.token, ctype, buf.Len())
	_, _ = conn.Write(buf.Bytes()[:buf.Len()/2])
	conn.Close()
	// The sim notices the cut when it reads; give it a moment.
	time.Sleep(50 * time.Millisecond)
	var ans uploadAnswer
	e.decode(e.upload("a.csv", []byte(tinyCSV), "cut"), http.StatusOK, &ans)
	if !ans.Success || len(e.sim.Imports()) != 1 {
		t.Fatalf("answer %+v, imports %d", ans, len(e.sim.Imports()))
	}
}

func TestIdempotencyConflictInFlight(t *testing.T) {
	e := newEnv(t, Options{})
	done := e.slowUpload("slow")
	e.decode(e.upload("a.csv", []byte(tinyCSV), "slow"), http.StatusConflict, nil)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("first upload %d", code)
	}
	e.decode(e.upload("a.csv", []byte(tinyCSV), "slow"), http.StatusOK, nil)
	if n := len(e.sim.Imports()); n != 1 {
		t.Fatalf("%d imports, want 1", n)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.SetFaults(Faults{TooManyRequests: 1, RetryAfter: 1500 * time.Millisecond})
	resp := e.upload("a.csv", []byte(tinyCSV), "k")
	if resp.Header.Get("Retry-After") != "2" || resp.Header.Get("ratelimit-remaining") != "0" {
		t.Errorf("429 headers %v", resp.Header)
	}
	e.decode(resp, http.StatusTooManyRequests, nil)

	e.sim.SetFaults(Faults{ServerErrors: 1})
	e.decode(e.upload("a.csv", []byte(tinyCSV), "k"), http.StatusInternalServerError, nil)

	e.sim.SetFaults(Faults{Success200False: 1})
	var ans uploadAnswer
	e.decode(e.upload("a.csv", []byte(tinyCSV), ""), http.StatusOK, &ans)
	if ans.Success || len(ans.Reasons) == 0 {
		t.Fatalf("answer %+v, want success false", ans)
	}

	e.sim.SetFaults(Faults{DropAfterRead: 1})
	// A connection of its own: Go's transport resends a request that
	// carries an Idempotency-Key when a reused connection drops, which
	// would hide the drop.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := fresh.Do(uploadRequest(t, e, "k")); err == nil {
		t.Fatal("dropped upload got an answer")
	}
	e.decode(e.upload("a.csv", []byte(tinyCSV), "k"), http.StatusOK, &ans)

	e.sim.SetFaults(Faults{FailImports: 1})
	var failed uploadAnswer
	e.decode(e.upload("a.csv", []byte(tinyCSV), ""), http.StatusOK, &failed)
	if st, msg := e.waitFinal(failed.CheckImportStatus); st != "Failed" || msg == "" {
		t.Fatalf("%s %q, want Failed", st, msg)
	}
	if st, _ := e.waitFinal(ans.CheckImportStatus); st != "Completed" {
		t.Fatalf("import after drop %s", st)
	}
	// Only the dropped-then-replayed import completed; the 429, 500 and
	// success:false uploads created nothing.
	if n := len(e.sim.Records()); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
}

// slowUpload starts an upload whose answer the sim holds for 500ms, waits
// until the sim has taken it (so it is surely in flight), and returns
// where its HTTP status (or -1) will arrive.
func (e *env) slowUpload(key string) <-chan int {
	e.t.Helper()
	e.sim.SetFaults(Faults{AnswerDelay: 500 * time.Millisecond})
	before := len(e.sim.Imports())
	done := make(chan int, 1)
	req := uploadRequest(e.t, e, key)
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for deadline := time.Now().Add(5 * time.Second); len(e.sim.Imports()) == before; {
		if time.Now().After(deadline) {
			e.t.Fatal("the slow upload never reached the sim")
		}
		time.Sleep(time.Millisecond)
	}
	return done
}

// uploadRequest builds the tiny upload as a request of its own.
func uploadRequest(t *testing.T, e *env, key string) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	w := multipartFile(&buf, "a.csv", []byte(tinyCSV))
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/usage", &buf)
	req.Header.Set("Content-Type", w)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return req
}

func TestQueryAndImportObject(t *testing.T) {
	e := newEnv(t, Options{AbsoluteStatusURL: true})
	var ans uploadAnswer
	e.decode(e.upload("it's.csv", []byte(tinyCSV), ""), http.StatusOK, &ans)
	if !strings.HasPrefix(ans.CheckImportStatus, e.srv.URL+"/v1/usage/") {
		t.Fatalf("status URL %q is not absolute", ans.CheckImportStatus)
	}
	e.waitFinal(strings.TrimPrefix(ans.CheckImportStatus, e.srv.URL))
	id := e.sim.Imports()[0].ID

	q, _ := json.Marshal(map[string]string{"queryString": `select Id, Status, ImportedCount, TotalCount from Import where Name = 'it\'s.csv'`})
	var res struct {
		Records []map[string]any `json:"records"`
		Size    int              `json:"size"`
	}
	e.decode(e.do("POST", "/v1/action/query", "application/json", bytes.NewReader(q), nil), http.StatusOK, &res)
	if res.Size != 1 || res.Records[0]["Id"] != id || res.Records[0]["Status"] != "Completed" || res.Records[0]["ImportedCount"] != 1.0 {
		t.Fatalf("query %+v", res)
	}
	if _, ok := res.Records[0]["Name"]; ok {
		t.Fatalf("unselected field returned: %v", res.Records[0])
	}
	var obj map[string]any
	e.decode(e.do("GET", "/v1/object/import/"+id, "", nil, nil), http.StatusOK, &obj)
	if obj["Name"] != "it's.csv" || obj["ImportType"] != "Usage" || obj["TotalCount"] != 1.0 {
		t.Fatalf("import object %v", obj)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(q)
	_ = zw.Close()
	res.Size = 0
	e.decode(e.do("POST", "/v1/action/query", "application/json", &gz, map[string]string{"Content-Encoding": "gzip"}), http.StatusOK, &res)
	if res.Size != 1 {
		t.Fatalf("gzip query %+v", res)
	}
	bad, _ := json.Marshal(map[string]string{"queryString": "select Id from Account"})
	e.decode(e.do("POST", "/v1/action/query", "application/json", bytes.NewReader(bad), nil), http.StatusBadRequest, nil)
}

func TestObjectUsage(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(body string) map[string]any {
		var out map[string]any
		resp := e.do("POST", "/v1/object/usage?rejectUnknownFields=true", "application/json", strings.NewReader(body), nil)
		e.decode(resp, resp.StatusCode, &out)
		return out
	}
	if out := post(`{"AccountNumber":"A1","UOM":"GB","Quantity":2.5,"StartDateTime":"2026-03-01T00:00:00"}`); out["Success"] != true {
		t.Fatalf("good record: %v", out)
	}
	if out := post(`{"AccountNumber":"A1","UOM":"GB","Quantity":1,"StartDateTime":"2026-03-01","Colour":"red"}`); out["message"] != "Error - unrecognised fields" {
		t.Fatalf("unknown field: %v", out)
	}
	if out := post(`{"AccountNumber":"A1","Quantity":-1,"StartDateTime":"2026-03-01"}`); out["Success"] != false {
		t.Fatalf("bad record: %v", out)
	}
	recs := e.sim.Records()
	if len(recs) != 1 || recs[0].Qty != "2.5" || recs[0].Start != "2026-03-01" {
		t.Fatalf("records %+v", recs)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in, format, want string
		ok               bool
	}{
		{"03/16/2026", "MM/DD/YYYY", "2026-03-16", true},
		{"3/6/2026", "MM/DD/YYYY", "", false},
		{"+3/06/2026", "MM/DD/YYYY", "", false},
		{"03/06/+026", "MM/DD/YYYY", "", false},
		{"16/03/2026", "DD/MM/YYYY", "2026-03-16", true},
		{"16/03/2026", "MM/DD/YYYY", "", false},
		{"02/29/2025", "MM/DD/YYYY", "", false},
		{"02/29/2024", "MM/DD/YYYY", "2024-02-29", true},
		{"2026-03-16", "MM/DD/YYYY", "", false},
		{"03/16/26", "MM/DD/YYYY", "", false},
	}
	for _, tt := range tests {
		got, err := parseDate(tt.in, tt.format)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDate(%q, %s) = %q, %v; want %q ok=%v", tt.in, tt.format, got, err, tt.want, tt.ok)
		}
	}
}

func TestCheckQty(t *testing.T) {
	tests := []struct{ in, want string }{
		{"12", ""},
		{"0.5", ""},
		{".5", ""},
		{"3.", ""},
		{"1234567890123.5", ""},
		{"", "The QTY is missing"},
		{"-1", "The QTY cannot be less than 0"},
		{"1,5", "The QTY format is invalid"},
		{"1e3", "The QTY format is invalid"},
		{".", "The QTY format is invalid"},
		{"1.2.3", "The QTY format is invalid"},
		{"12345678901234", "The Usage Quantity exceeds 13 digits before the decimal place"},
		{"1.1234567890123456", "The QTY length is longer than the 16 character maximum"},
	}
	for _, tt := range tests {
		if got := checkQty(tt.in); got != tt.want {
			t.Errorf("checkQty(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t, Options{ConcurrencyLimit: 1})
	done := e.slowUpload("")
	resp := e.do("GET", "/v1/usage/nope/status", "", nil, nil)
	if resp.Header.Get("Concurrency-Limit-Remaining") != "0" {
		t.Errorf("headers %v", resp.Header)
	}
	e.decode(resp, http.StatusTooManyRequests, nil)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("first upload %d", code)
	}
	e.decode(e.do("GET", "/v1/usage/nope/status", "", nil, nil), http.StatusNotFound, nil)
	if got := e.sim.Limits(); got.PeakInFlight != 2 || got.OverConcurrency != 1 {
		t.Fatalf("Limits() = %+v, want a peak of 2 and 1 refused", got)
	}
}

func TestInspect(t *testing.T) {
	e := newEnv(t, Options{})
	var ans uploadAnswer
	e.decode(e.upload("a.csv", []byte(tinyCSV), "k"), http.StatusOK, &ans)
	e.waitFinal(ans.CheckImportStatus)
	e.sim.SetFaults(Faults{ServerErrors: 5})
	e.token = ""
	var imps []Import
	e.decode(e.do("GET", "/_sim/imports", "", nil, nil), http.StatusOK, &imps)
	var recs []Record
	e.decode(e.do("GET", "/_sim/records", "", nil, nil), http.StatusOK, &recs)
	if len(imps) != 1 || imps[0].Status != "Completed" || len(recs) != 1 || recs[0].ImportID != imps[0].ID {
		t.Fatalf("imports %+v records %+v", imps, recs)
	}
	e.decode(e.do("GET", "/_sim/nothing", "", nil, nil), http.StatusNotFound, nil)
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Options{RequestsPerWindow: 2, RateWindow: time.Hour})
	// The token was the first request of the window.
	resp := e.do("GET", "/v1/usage/nope/status", "", nil, nil)
	if resp.Header.Get("ratelimit-remaining") != "0" || resp.Header.Get("ratelimit-limit") != "2" {
		t.Errorf("headers %v", resp.Header)
	}
	e.decode(resp, http.StatusNotFound, nil)
	resp = e.do("GET", "/v1/usage/nope/status", "", nil, nil)
	if resp.Header.Get("Retry-After") != "3600" {
		t.Errorf("Retry-After %q, want the rest of the window", resp.Header.Get("Retry-After"))
	}
	e.decode(resp, http.StatusTooManyRequests, nil)
}

func TestGzipAnswers(t *testing.T) {
	e := newEnv(t, Options{})
	e.decode(e.upload("a.csv", []byte(tinyCSV), ""), http.StatusOK, nil)
	q, _ := json.Marshal(map[string]string{"queryString": "select Id, Name, Status, StatusReason, CreatedDate from Import where Name = 'a.csv'"})
	for _, n := range []int{1, 12} { // one record is small; twelve are over 1,000 bytes
		for len(e.sim.Imports()) < n {
			e.decode(e.upload("a.csv", []byte(tinyCSV), ""), http.StatusOK, nil)
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/action/query", bytes.NewReader(q))
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Accept-Encoding", "gzip") // set by hand: the transport then leaves the body compressed
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := resp.Body
		if gzipped := resp.Header.Get("Content-Encoding") == "gzip"; gzipped != (n == 12) {
			t.Fatalf("%d records: Content-Encoding %q", n, resp.Header.Get("Content-Encoding"))
		} else if gzipped {
			if body, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		var res struct {
			Size int `json:"size"`
		}
		if err := json.NewDecoder(body).Decode(&res); err != nil || res.Size != n {
			t.Fatalf("%d records: size %d, %v", n, res.Size, err)
		}
		resp.Body.Close()
	}
}
