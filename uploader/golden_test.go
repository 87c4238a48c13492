package uploader

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/zuorasim"
)

// The golden request tests send the fixture partner-template.csv through
// the file import, the object API and SOAP against zuorasim on loopback,
// record every request as it arrived on the wire, and compare it with a
// golden file in testdata/ (go test ./uploader -run GoldenRequest -update
// rewrites them). Each golden file opens with the documented shape every
// request matches, citing ../shared/zuora-api.md; testdata/README.md says
// the same for all four APIs. What is random on each run (the multipart
// boundary, the token, session and import ids, a random Zuora-Track-Id) is
// normalised; everything else is byte for byte what was sent.

// goldenSecret is the OAuth client secret and the SOAP password of the
// golden rig; it never appears in a golden file.
const goldenSecret = "s3cret-value"

// recorder is an http.Handler in front of the simulator that keeps every
// request as it arrived, so a golden file shows what the uploader sent, not
// what it meant to send.
type recorder struct {
	next http.Handler

	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	method, uri string
	header      http.Header
	body        []byte
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recordedRequest{req.Method, req.URL.RequestURI(), req.Header.Clone(), body})
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, req)
}

func (rec *recorder) requests() []recordedRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

// goldenRig is a simulator that finishes imports at once, behind a
// recorder, and a client for it.
type goldenRig struct {
	sim *zuorasim.Sim
	rec *recorder
	url string
	cl  *Client
}

func newGoldenRig(t *testing.T) *goldenRig {
	t.Helper()
	g := &goldenRig{sim: zuorasim.New(zuorasim.Options{ClientID: "usagedrop", ClientSecret: goldenSecret, ProcessingDelay: -1})}
	g.rec = &recorder{next: g.sim}
	srv := httptest.NewServer(g.rec)
	t.Cleanup(srv.Close)
	g.url = srv.URL
	g.cl = NewClient(Config{BaseURL: srv.URL, ClientID: "usagedrop", ClientSecret: goldenSecret,
		MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffCap: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	return g
}

// Headers a golden file always names, saying "(not sent)" when absent: a
// header that appears or disappears is a change the golden must show.
var watchedHeaders = []string{"Authorization", "Idempotency-Key", "X-Zuora-Wsdl-Version", "Zuora-Track-Id"}

var (
	hex32     = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	randTrack = regexp.MustCompile(`^usagedrop-[0-9a-f]{24}$`)
)

// normaliser replaces what changes from run to run with stable names; the
// same value always gets the same name, so a golden still shows that the
// status call polls the import the upload created.
type normaliser struct {
	ids  map[string]string
	keep []string // values that look random but are not, such as an MD5
}

func (n *normaliser) text(s string) string {
	return hex32.ReplaceAllStringFunc(s, func(id string) string {
		if slices.Contains(n.keep, id) {
			return id
		}
		if n.ids == nil {
			n.ids = map[string]string{}
		}
		if _, ok := n.ids[id]; !ok {
			n.ids[id] = fmt.Sprintf("<hex32-%d>", len(n.ids)+1)
		}
		return n.ids[id]
	})
}

// render writes one request: the request line, every header sorted (the
// watched ones even when absent), a blank line and the body, which body
// may rewrite (it gets the boundary, or "" when there is none).
func (n *normaliser) render(t *testing.T, w *bytes.Buffer, r recordedRequest, body func(b []byte, boundary string) string) {
	t.Helper()
	fmt.Fprintf(w, "%s %s\n", r.method, n.text(r.uri))
	_, params, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	boundary := params["boundary"]
	names := make([]string, 0, len(r.header))
	for name := range r.header {
		names = append(names, name)
	}
	for _, name := range watchedHeaders {
		if r.header.Get(name) == "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(w, "%s: %s\n", name, n.header(t, r, name, boundary))
	}
	w.WriteString("\n")
	if len(r.body) > 0 {
		w.WriteString(body(r.body, boundary))
		w.WriteString("\n")
	}
	w.WriteString("\n")
}

// header renders one header's value in its stable form.
func (n *normaliser) header(t *testing.T, r recordedRequest, name, boundary string) string {
	t.Helper()
	v := r.header.Get(name)
	switch {
	case len(r.header.Values(name)) > 1:
		t.Errorf("%s %s: header %s sent %d times", r.method, r.uri, name, len(r.header.Values(name)))
	case v == "":
		return "(not sent)"
	case name == "Authorization":
		if !regexp.MustCompile(`^Bearer [!-~]+$`).MatchString(v) {
			t.Errorf("%s %s: Authorization is not a bearer token", r.method, r.uri)
		}
		return "Bearer <token>"
	case name == "Zuora-Track-Id":
		if key := r.header.Get("Idempotency-Key"); key != "" && v == trackIDFor(key) {
			return "usagedrop-<24 hex: sha256 of the Idempotency-Key>"
		}
		if !randTrack.MatchString(v) {
			t.Errorf("%s %s: Zuora-Track-Id %q is neither derived from the key nor usagedrop-<24 hex>", r.method, r.uri, v)
		}
		return "usagedrop-<24 hex: random per call>"
	case boundary != "":
		v = strings.ReplaceAll(v, boundary, "<boundary>")
	}
	return n.text(v)
}

// multipartBody renders a multipart body: the part's file, which must be
// in it exactly once and byte for byte, becomes one line naming it, the
// boundary is normalised, and every CRLF is shown as \r\n so that the
// framing is visible in the golden file.
func (n *normaliser) multipartBody(t *testing.T, p Part) func([]byte, string) string {
	return func(b []byte, boundary string) string {
		file, err := os.ReadFile(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		if c := bytes.Count(b, file); c != 1 {
			t.Errorf("the body holds the part's file %d times, want once byte for byte", c)
		}
		b = bytes.Replace(b, file, fmt.Appendf(nil, "<the %d bytes of %s, sha256 %s>", len(file), p.Name, p.SHA256), 1)
		s := strings.ReplaceAll(string(b), boundary, "<boundary>")
		return n.text(strings.ReplaceAll(s, "\r\n", "\\r\\n\n"))
	}
}

// plainBody renders a body as it was sent, the secret and random ids
// replaced.
func (n *normaliser) plainBody(t *testing.T) func([]byte, string) string {
	return func(b []byte, _ string) string {
		s := strings.ReplaceAll(string(b), "client_secret="+url.QueryEscape(goldenSecret), "client_secret=<client secret>")
		s = strings.ReplaceAll(s, "<api:password>"+goldenSecret, "<api:password><password>")
		if strings.Contains(s, goldenSecret) {
			t.Errorf("the secret is in a body outside its one documented place:\n%s", s)
		}
		return n.text(s)
	}
}

// compareGolden compares got with testdata/name, or writes it with -update.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./uploader -run GoldenRequest -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("requests differ from %s (go test ./uploader -run GoldenRequest -update rewrites it; check the diff against the docs first):\n%s",
			golden, firstDifference(got, want))
	}
}

// firstDifference shows the first line that differs and its neighbours.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d\n got: %q\nwant: %q", i+1, gl, wl)
		}
	}
	return "(same lines, different bytes)"
}

// header is the comment that opens a golden file.
func goldenHeader(lines ...string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString("# " + l + "\n")
	}
	b.WriteString("\n")
	return b.Bytes()
}

// The file import's requests for the fixture: the token, the upload, the
// status poll and the Import object read once the import is final.
func TestFileImportGoldenRequest(t *testing.T) {
	g := newGoldenRig(t)
	p := fixturePart(t, "partner-template.csv")
	key := "ud-" + p.SHA256[:40]
	fi := NewFileImport(g.cl)
	ctx := context.Background()
	rc, err := fi.Submit(ctx, p, key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := fi.Status(ctx, rc)
	if err != nil || st.State != Completed || st.Imported != 1000 || st.Total != 1000 {
		t.Fatalf("status %+v, %v; want Completed with 1000 records", st, err)
	}
	reqs := g.rec.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (token, upload, status, import object)", len(reqs))
	}
	got := bytes.NewBuffer(goldenHeader(
		"What usagedrop sends for partner-template.csv through the file import (api: file),",
		"recorded in front of zuorasim. Documented shapes, in ../shared/zuora-api.md:",
		"1. POST /oauth/token: form-encoded client_id, client_secret, grant_type=client_credentials,",
		"   no Authorization header (§OAuth).",
		"2. POST /v1/usage: multipart/form-data, one part named file with a filename of at most",
		"   50 characters, the CSV as its body (§File import); Authorization: Bearer (§OAuth);",
		"   Idempotency-Key at most 255 characters, Zuora-Track-Id at most 64 US-ASCII without",
		"   : ; \" ' (§Headers on every call).",
		"3. GET the checkImportStatus path /v1/usage/<id>/status (§File import); a GET carries no",
		"   Idempotency-Key (§Headers: POST and PATCH only).",
		"4. GET /v1/object/import/<id> for ImportedCount and TotalCount (§File import).",
		"No X-Zuora-WSDL-Version: the template has no PRODUCT_RATE_PLAN_CHARGE_ID (§The template).",
	))
	var n normaliser
	for i, r := range reqs {
		body := n.plainBody(t)
		if i == 1 {
			body = n.multipartBody(t, p)
		}
		n.render(t, got, r, body)
	}
	compareGolden(t, "file-partner-template.golden", got.Bytes())
}

// The object API's requests for the fixture, one record at a time: the
// token and the first three records; the other 997 are checked, not shown.
func TestObjectGoldenRequest(t *testing.T) {
	g := newGoldenRig(t)
	p := fixturePart(t, "partner-template.csv")
	key := "ud-" + p.SHA256[:40]
	obj := NewObjectImport(g.cl, "")
	obj.Concurrency = 1 // records in file order, so the golden is stable
	if _, err := obj.Submit(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	if n := len(g.sim.Records()); n != 1000 {
		t.Fatalf("%d records, want 1000", n)
	}
	reqs := g.rec.requests()
	if len(reqs) != 1001 {
		t.Fatalf("%d requests, want 1001 (token, 1000 records)", len(reqs))
	}
	keys := map[string]bool{}
	for _, r := range reqs[1:] {
		k := r.header.Get("Idempotency-Key")
		if r.method != http.MethodPost || r.uri != "/v1/object/usage?rejectUnknownFields=true" || k == "" || keys[k] {
			t.Fatalf("%s %s with Idempotency-Key %q: want a POST of one record under a key of its own", r.method, r.uri, k)
		}
		keys[k] = true
	}
	got := bytes.NewBuffer(goldenHeader(
		"What usagedrop sends for partner-template.csv through the object API (api: object),",
		"recorded in front of zuorasim. Documented shapes, in ../shared/zuora-api.md:",
		"1. POST /oauth/token as for the file import (§OAuth).",
		"2. POST /v1/object/usage?rejectUnknownFields=true, one record as JSON: AccountNumber,",
		"   UOM, Quantity, StartDateTime (ISO date-time), optional EndDateTime,",
		"   SubscriptionNumber, ChargeNumber, Description (§Object API); an Idempotency-Key per",
		"   record and Zuora-Track-Id derived from it (§Headers on every call). No",
		"   X-Zuora-WSDL-Version: no record has a UniqueKey (§Object API: WSDL >= 114).",
		"Only the first 3 of the 1000 record calls are shown; the test checks that every one",
		"is a POST of one record under a key of its own.",
	))
	var n normaliser
	for _, r := range reqs[:4] {
		n.render(t, got, r, n.plainBody(t))
	}
	compareGolden(t, "object-partner-template.golden", got.Bytes())
}

// A record with a UniqueKey goes with X-Zuora-WSDL-Version 114, the first
// version whose Usage object has the field.
func TestObjectUniqueKeyGoldenRequest(t *testing.T) {
	g := newGoldenRig(t)
	csv := "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION,UNIQUE_KEY\r\n" +
		"A00000052,API Calls,0.25,03/16/2026,03/17/2026,A-S00000011,C-00000001,Line one,evt-2026-03-16-0001\r\n"
	p := part(t, "unique-key.csv", csv)
	if _, err := NewObjectImport(g.cl, "").Submit(context.Background(), p, "ud-unique-key-0"); err != nil {
		t.Fatal(err)
	}
	if recs := g.sim.Records(); len(recs) != 1 || recs[0].UniqueKey != "evt-2026-03-16-0001" {
		t.Fatalf("records %+v", recs)
	}
	reqs := g.rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	got := bytes.NewBuffer(goldenHeader(
		"A record with every optional field and a UniqueKey through the object API.",
		"UniqueKey exists on the Usage object from WSDL 114 on, and rejectUnknownFields=true",
		"refuses it below (../shared/zuora-api.md §Object API), so the call carries",
		"X-Zuora-WSDL-Version: 114.0. EndDateTime is a date-time like StartDateTime.",
	))
	var n normaliser
	n.render(t, got, reqs[1], n.plainBody(t))
	compareGolden(t, "object-unique-key.golden", got.Bytes())
}

// SOAP's requests for the fixture: login, the look-up by name that comes
// before every create, the MTOM create, and the status query.
func TestSOAPGoldenRequest(t *testing.T) {
	g := newGoldenRig(t)
	p := fixturePart(t, "partner-template.csv")
	s := NewSOAPImport(g.cl, g.url+"/apps/services/a/119.0", "usagedrop", goldenSecret)
	ctx := context.Background()
	rc, err := s.Submit(ctx, p, "ud-"+p.SHA256[:40])
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, rc)
	if err != nil || st.State != Completed || st.Imported != 1000 {
		t.Fatalf("status %+v, %v; want Completed with 1000 records", st, err)
	}
	reqs := g.rec.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (login, find, create, status)", len(reqs))
	}
	got := bytes.NewBuffer(goldenHeader(
		"What usagedrop sends for partner-template.csv through SOAP (api: soap), recorded in",
		"front of zuorasim. Documented shapes, in ../shared/zuora-api.md §SOAP Import:",
		"1. login(username, password) to /apps/services/a/<WSDL version>, 37.0 or higher;",
		"   namespaces api = http://api.zuora.com/, obj = http://object.api.zuora.com/.",
		"2. query on Import by Name, under <SessionHeader><session>: SOAP has no Idempotency-Key,",
		"   so the upload name is looked up before every create.",
		"3. create of one zObjects xsi:type=Import, ImportType Usage, Name, FileContent as an",
		"   MTOM attachment (multipart/related; type=\"application/xop+xml\", an xop:Include",
		"   href=\"cid:...\" in the XML) whose Content-Type is text/plain;name=<file name>, and",
		"   Md5 of the file.",
		"4. query select Id, Status, StatusReason, ImportedCount, TotalCount from Import",
		"   where Id = '...'.",
		"SOAP calls carry no bearer token, Idempotency-Key or X-Zuora-WSDL-Version (the version",
		"is in the endpoint's path); Zuora-Track-Id is sent on every call (§Headers).",
	))
	sum, err := fileMD5(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	n := normaliser{keep: []string{sum}}
	for i, r := range reqs {
		body := n.plainBody(t)
		if i == 2 {
			body = n.multipartBody(t, p)
		}
		n.render(t, got, r, body)
	}
	compareGolden(t, "soap-partner-template.golden", got.Bytes())
}
