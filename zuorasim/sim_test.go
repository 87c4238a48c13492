package zuorasim

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"usagedrop/internal/testutil"
)

// env is a sim behind a real HTTP server and a token for it.
type env struct {
	t     *testing.T
	sim   *Sim
	srv   *httptest.Server
	token string
}

func newEnv(t *testing.T, opt Options) *env {
	t.Helper()
	if opt.ProcessingDelay == 0 {
		opt.ProcessingDelay = 20 * time.Millisecond
	}
	e := &env{t: t, sim: New(opt)}
	e.srv = httptest.NewServer(e.sim)
	t.Cleanup(e.srv.Close)
	resp := e.do("POST", "/oauth/token", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"client_id": {opt.ClientID}, "client_secret": {opt.ClientSecret}, "grant_type": {"client_credentials"}}.Encode()), nil)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	e.decode(resp, http.StatusOK, &tok)
	e.token = tok.AccessToken
	return e
}

// do sends one request; the bearer token is added once there is one.
func (e *env) do(method, path, ctype string, body io.Reader, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// decode checks the status and decodes the JSON body into v.
func (e *env) decode(resp *http.Response, want int, v any) {
	e.t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("decode %s: %v", body, err)
		}
	}
}

// upload posts data as the multipart part "file" called name.
func (e *env) upload(name string, data []byte, key string) *http.Response {
	e.t.Helper()
	var buf bytes.Buffer
	ctype := multipartFile(&buf, name, data)
	hdr := map[string]string{}
	if key != "" {
		hdr["Idempotency-Key"] = key
	}
	return e.do("POST", "/v1/usage", ctype, &buf, hdr)
}

// multipartFile writes data to buf as the form's "file" part and returns
// the Content-Type of the form.
func multipartFile(buf *bytes.Buffer, name string, data []byte) string {
	mw := multipart.NewWriter(buf)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(data)
	_ = mw.Close()
	return mw.FormDataContentType()
}

type uploadAnswer struct {
	CheckImportStatus string `json:"checkImportStatus"`
	Size              int    `json:"size"`
	Success           bool   `json:"success"`
	Reasons           []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"reasons"`
}

// waitFinal polls a status path until the import is final.
func (e *env) waitFinal(statusPath string) (status, message string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var st struct {
			Success      bool   `json:"success"`
			ImportStatus string `json:"importStatus"`
			Message      string `json:"message"`
		}
		e.decode(e.do("GET", statusPath, "", nil, nil), http.StatusOK, &st)
		if st.ImportStatus == "Completed" || st.ImportStatus == "Failed" || st.ImportStatus == "Canceled" {
			return st.ImportStatus, st.Message
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("%s never reached a final state", statusPath)
	return "", ""
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.CopyFixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTemplateImportMatchesExpected(t *testing.T) {
	e := newEnv(t, Options{})
	var ans uploadAnswer
	e.decode(e.upload("partner-template.csv", readFixture(t, "partner-template.csv"), "k1"), http.StatusOK, &ans)
	if !ans.Success || !strings.HasPrefix(ans.CheckImportStatus, "/v1/usage/") || ans.Size == 0 {
		t.Fatalf("answer %+v", ans)
	}
	if st, msg := e.waitFinal(ans.CheckImportStatus); st != "Completed" {
		t.Fatalf("status %s: %s", st, msg)
	}
	var exp map[string]struct {
		Records []map[string]string `json:"records"`
	}
	if err := json.Unmarshal(readFixture(t, "expected.json"), &exp); err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, r := range exp["partner-template.csv"].Records {
		want = append(want, strings.Join([]string{r["account"], r["uom"], r["qty"], r["start"], r["end"], r["subscription"], r["charge"], r["description"]}, "|"))
	}
	for _, r := range e.sim.Records() {
		got = append(got, strings.Join([]string{r.Account, r.UOM, r.Qty, r.Start, r.End, r.Subscription, r.Charge, r.Description}, "|"))
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(want, got) {
		t.Fatalf("records differ: got %d, want %d", len(got), len(want))
	}
}

func TestBadRowsFailWholeImport(t *testing.T) {
	e := newEnv(t, Options{})
	var ans uploadAnswer
	e.decode(e.upload("bad-rows.csv", readFixture(t, "bad-rows.csv"), ""), http.StatusOK, &ans)
	st, msg := e.waitFinal(ans.CheckImportStatus)
	if st != "Failed" {
		t.Fatalf("status %s, want Failed", st)
	}
	for _, want := range []string{"Row 8: The UOM is missing", "Row 13: The STARTDATE format is invalid", "Row 21: The QTY format is invalid", "Row 31: The ACCOUNT_ID length is longer"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if n := len(e.sim.Records()); n != 0 {
		t.Fatalf("%d records imported from a failed file", n)
	}
	imps := e.sim.Imports()
	if len(imps) != 1 || imps[0].Total != 40 || imps[0].Imported != 0 {
		t.Fatalf("imports %+v", imps)
	}
}

func TestUploadRejectedOnReceipt(t *testing.T) {
	csv := []byte("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\nA1,GB,1,03/01/2026,,,\n")
	tests := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"name too long", strings.Repeat("x", 47) + ".csv", csv, "longer than the 50 character maximum"},
		{"not csv or zip", "usage.txt", csv, "not a .csv or .zip"},
		{"too big", "big.csv", bytes.Repeat([]byte("x"), maxFileSize+1), "4,194,304 bytes"},
		{"zip with a directory", "d.zip", readFixture(t, "zip-with-dir.zip"), "The zip file cannot contain a directory"},
		{"zip of two csv", "b.zip", readFixture(t, "bundle.zip"), "exactly one .csv"},
		{"zip of one txt", "t.zip", zipOf(t, "usage.txt", csv), "exactly one .csv"},
		{"not a zip", "n.zip", csv, "The zip file cannot be read"},
	}
	e := newEnv(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ans uploadAnswer
			e.decode(e.upload(tt.file, tt.data, ""), http.StatusBadRequest, &ans)
			if ans.Success || len(ans.Reasons) != 1 || !strings.Contains(ans.Reasons[0].Message, tt.want) {
				t.Fatalf("answer %+v, want %q", ans, tt.want)
			}
		})
	}
	if n := len(e.sim.Imports()); n != 0 {
		t.Fatalf("%d imports created from rejected uploads", n)
	}
}

func TestZipOfOneCSVAndLocale(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("usage.csv")
	_, _ = io.WriteString(w, "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,UNIQUE_KEY,Region__c\nA1,GB,1.5,31/01/2026,01/02/2026,S-1,C-1,u1,EU\n,,,,,,,,\n")
	_ = zw.Close()
	e := newEnv(t, Options{DateFormat: "DD/MM/YYYY", Accounts: []string{"A1"}, UOMs: []string{"GB"}})
	var ans uploadAnswer
	e.decode(e.upload("usage.zip", buf.Bytes(), ""), http.StatusOK, &ans)
	if st, msg := e.waitFinal(ans.CheckImportStatus); st != "Completed" {
		t.Fatalf("status %s: %s", st, msg)
	}
	want := Record{Account: "A1", UOM: "GB", Qty: "1.5", Start: "2026-01-31", End: "2026-02-01", Subscription: "S-1", Charge: "C-1", UniqueKey: "u1", Custom: map[string]string{"Region__c": "EU"}}
	got := e.sim.Records()
	if len(got) != 1 {
		t.Fatalf("records %+v", got)
	}
	want.ImportID = got[0].ImportID
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("record %+v, want %+v", got[0], want)
	}
}

func TestRowRules(t *testing.T) {
	const header = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION,UNIQUE_KEY\n"
	tests := []struct {
		name, rows, want string
	}{
		{"unknown account", "A9,GB,1,03/01/2026,,,,,\n", "The ACCOUNT_ID A9 does not exist"},
		{"unknown uom", "A1,TB,1,03/01/2026,,,,,\n", "The UOM TB is invalid"},
		{"negative qty", "A1,GB,-1,03/01/2026,,,,,\n", "The QTY cannot be less than 0"},
		{"qty digits", "A1,GB,12345678901234,03/01/2026,,,,,\n", "exceeds 13 digits"},
		{"qty length", "A1,GB,1.12345678901234567,03/01/2026,,,,,\n", "16 character maximum"},
		{"impossible date", "A1,GB,1,02/30/2026,,,,,\n", "The STARTDATE format is invalid"},
		{"locale swapped", "A1,GB,1,31/01/2026,,,,,\n", "The STARTDATE format is invalid"},
		{"start after end", "A1,GB,1,03/02/2026,03/01/2026,,,,\n", "cannot be after the ENDDATE"},
		{"long description", "A1,GB,1,03/01/2026,,,," + strings.Repeat("d", 201) + ",\n", "DESCRIPTION length is longer than the 200 character maximum"},
		{"emoji", "A1,GB,1,03/01/2026,,,,hot 🔥,\n", "emoji"},
		{"duplicate key", "A1,GB,1,03/01/2026,,,,,k\nA1,GB,2,03/01/2026,,,,,k\n", "Row 3: The UNIQUE_KEY k is duplicated"},
		{"short row", "A1,GB,1\n", "the row has 3 values"},
		{"wide row", "A1,GB,1,03/01/2026,,,,,,x\n", "the row has 10 values"},
		{"account missing", ",GB,1,03/01/2026,,,,,\n", "The ACCOUNT_ID is missing"},
		{"account over 50", strings.Repeat("A", 51) + ",GB,1,03/01/2026,,,,,\n", "The ACCOUNT_ID length is longer than the 50 character maximum"},
		{"account of 49 and one outside the BMP", strings.Repeat("A", 49) + "\U0001D538,GB,1,03/01/2026,,,,,\n", "The ACCOUNT_ID length is longer than the 50 character maximum"},
		{"uom missing", "A1,,1,03/01/2026,,,,,\n", "The UOM is missing"},
		{"qty missing", "A1,GB,,03/01/2026,,,,,\n", "The QTY is missing"},
		{"qty with an exponent", "A1,GB,1e3,03/01/2026,,,,,\n", "The QTY format is invalid"},
		{"start missing", "A1,GB,1,,,,,,\n", "The STARTDATE is missing"},
		{"start one-digit month", "A1,GB,1,3/01/2026,,,,,\n", "The STARTDATE format is invalid"},
		{"start ISO", "A1,GB,1,2026-03-01,,,,,\n", "The STARTDATE format is invalid"},
		{"start with a time", "A1,GB,1,03/01/2026 10:00,,,,,\n", "The STARTDATE format is invalid"},
		{"end format", "A1,GB,1,03/01/2026,2026-03-02,,,,\n", "The ENDDATE format is invalid"},
		{"subscription over 100", "A1,GB,1,03/01/2026,," + strings.Repeat("S", 101) + ",,,\n", "The SUBSCRIPTION_ID length is longer than the 100 character maximum"},
		{"charge over 50", "A1,GB,1,03/01/2026,,," + strings.Repeat("C", 51) + ",,\n", "The CHARGE_ID length is longer than the 50 character maximum"},
		{"unique key of 255", "A1,GB,1,03/01/2026,,,,," + strings.Repeat("k", 255) + "\n", "The UNIQUE_KEY length must be less than 255 characters"},
	}
	e := newEnv(t, Options{Accounts: []string{"A1"}, UOMs: []string{"GB"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ans uploadAnswer
			e.decode(e.upload("rows.csv", []byte(header+tt.rows), ""), http.StatusOK, &ans)
			st, msg := e.waitFinal(ans.CheckImportStatus)
			if st != "Failed" || !strings.Contains(msg, tt.want) {
				t.Fatalf("%s %q, want Failed with %q", st, msg, tt.want)
			}
		})
	}
	if n := len(e.sim.Records()); n != 0 {
		t.Fatalf("%d records imported", n)
	}
}

func TestHeaderRules(t *testing.T) {
	tests := []struct {
		name, header, want string
	}{
		{"missing CHARGE_ID", "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID", "The required column CHARGE_ID is missing"},
		{"unknown column", "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,COLOUR", "The column COLOUR is not in the usage template"},
		{"rate plan charge without WSDL 146", "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,PRODUCT_RATE_PLAN_CHARGE_ID", "needs X-Zuora-WSDL-Version 146"},
		{"lower case", "account_id,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID", "The column account_id is not in the usage template"},
		{"padded name", "ACCOUNT_ID, UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID", "The column  UOM is not in the usage template"},
		{"column twice", "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,UOM", "The column UOM appears twice"},
		{"empty header", "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,", "The header of column 8 is empty"},
		{"custom field the tenant lacks", "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,Colour__c", "The column Colour__c is not in the usage template"},
		{"byte order mark", "\ufeffACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID", "byte order mark"},
		{"not UTF-8", "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\nA1,GB,1,03/01/2026,,,\xe9", "not UTF-8"},
		{"empty file", "", "The file is empty"},
	}
	e := newEnv(t, Options{CustomFields: []string{"Region__c"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ans uploadAnswer
			e.decode(e.upload("h.csv", []byte(tt.header+"\n"), ""), http.StatusOK, &ans)
			if st, msg := e.waitFinal(ans.CheckImportStatus); st != "Failed" || !strings.Contains(msg, tt.want) {
				t.Fatalf("%s %q, want %q", st, msg, tt.want)
			}
		})
	}
}

// The limits are inclusive where the docs say "at most" and exclusive
// where they say "less than": a row at every limit is imported.
func TestRowAtEveryLimit(t *testing.T) {
	const header = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION,UNIQUE_KEY\n"
	row := strings.Join([]string{
		strings.Repeat("A", 50), "GB", "1234567890123.45", "02/28/2026", "02/28/2026",
		strings.Repeat("S", 100), strings.Repeat("C", 50), strings.Repeat("é", 200), strings.Repeat("k", 254),
	}, ",") + "\n"
	e := newEnv(t, Options{})
	var ans uploadAnswer
	e.decode(e.upload("limits.csv", []byte(header+row), ""), http.StatusOK, &ans)
	if st, msg := e.waitFinal(ans.CheckImportStatus); st != "Completed" {
		t.Fatalf("%s: %s", st, msg)
	}
	if recs := e.sim.Records(); len(recs) != 1 || len(recs[0].UniqueKey) != 254 {
		t.Fatalf("records %+v", recs)
	}
}

// zipOf returns a zip holding one entry.
func zipOf(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
