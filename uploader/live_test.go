//go:build zuoralive

package uploader

// The live conformance test sends the visible fixtures through each Zuora
// API a sandbox tenant has, and the same parts through zuorasim, then
// compares what each holds: the import's state and counts, and the usage
// records read back (a ZOQL query on Usage). Every difference is printed
// and fails the test: either usagedrop or the simulator believes something
// about Zuora that this tenant does not do. It is built only with
//
//	go test -tags zuoralive ./uploader -run Live -v
//
// and skips, saying what to set, without the environment below. It writes
// usage into the tenant, so it refuses a host that is not a sandbox unless
// USAGEDROP_LIVE_ALLOW_PRODUCTION=yes.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"usagedrop/convert"
	"usagedrop/internal/testutil"
	"usagedrop/zuorasim"
)

// liveEnv is the sandbox the test talks to, from the environment.
type liveEnv struct {
	endpoint, clientID, clientSecret string
	apis                             []string
	files                            []string // fixture names; nil means every fixture
	dateFormat, wsdl                 string
	soapEndpoint, soapUser, soapPass string
	meter                            string
	eventFields                      map[string]string
	timeout                          time.Duration
	dryRun                           bool // a loopback endpoint: usagedrop sim, not Zuora
}

// liveVars documents every variable, for the skip message.
const liveVars = `set these to run the live conformance test against a Zuora sandbox (README: "Before going live"):
  USAGEDROP_LIVE_ENDPOINT        REST base URL, e.g. https://rest.apisandbox.zuora.com (required)
  USAGEDROP_LIVE_CLIENT_ID       OAuth client id (required)
  USAGEDROP_LIVE_CLIENT_SECRET   OAuth client secret (required)
  USAGEDROP_LIVE_APIS            apis to try, comma-separated: file,object,soap,mediation
                                 (default: file, and soap or mediation when configured below)
  USAGEDROP_LIVE_FILES           fixture names to send, comma-separated (default: all of expected.json)
  USAGEDROP_LIVE_DATE_FORMAT     the API user's locale: MM/DD/YYYY (default) or DD/MM/YYYY
  USAGEDROP_LIVE_WSDL_VERSION    X-Zuora-WSDL-Version to send, if the tenant needs one
  USAGEDROP_LIVE_SOAP_ENDPOINT   e.g. https://apisandbox.zuora.com/apps/services/a/119.0
  USAGEDROP_LIVE_SOAP_USER, USAGEDROP_LIVE_SOAP_PASSWORD   the SOAP API user
  USAGEDROP_LIVE_MEDIATION_METER the meter's global id
  USAGEDROP_LIVE_MEDIATION_FIELDS COLUMN=Field,... the meter's event fields
                                 (default ACCOUNT_ID=CustomerId,UOM=UsageIdentifier,STARTDATE=UsageDate,
                                 QTY=Quantity,ENDDATE=EndDate,SUBSCRIPTION_ID=SubscriptionNumber,
                                 CHARGE_ID=ChargeNumber,DESCRIPTION=Description)
  USAGEDROP_LIVE_TIMEOUT         how long to wait for one import, e.g. 15m (default 10m)
  USAGEDROP_FIXTURES             a folder of your own files with an expected.json (default testdata/fixtures)`

func liveConfig(t *testing.T) liveEnv {
	t.Helper()
	env := liveEnv{
		endpoint:     os.Getenv("USAGEDROP_LIVE_ENDPOINT"),
		clientID:     os.Getenv("USAGEDROP_LIVE_CLIENT_ID"),
		clientSecret: os.Getenv("USAGEDROP_LIVE_CLIENT_SECRET"),
		dateFormat:   os.Getenv("USAGEDROP_LIVE_DATE_FORMAT"),
		wsdl:         os.Getenv("USAGEDROP_LIVE_WSDL_VERSION"),
		soapEndpoint: os.Getenv("USAGEDROP_LIVE_SOAP_ENDPOINT"),
		soapUser:     os.Getenv("USAGEDROP_LIVE_SOAP_USER"),
		soapPass:     os.Getenv("USAGEDROP_LIVE_SOAP_PASSWORD"),
		meter:        os.Getenv("USAGEDROP_LIVE_MEDIATION_METER"),
		timeout:      10 * time.Minute,
		eventFields: map[string]string{"ACCOUNT_ID": "CustomerId", "UOM": "UsageIdentifier", "STARTDATE": "UsageDate",
			"QTY": "Quantity", "ENDDATE": "EndDate", "SUBSCRIPTION_ID": "SubscriptionNumber", "CHARGE_ID": "ChargeNumber",
			"DESCRIPTION": "Description"},
	}
	if env.endpoint == "" || env.clientID == "" || env.clientSecret == "" {
		t.Skip(liveVars)
	}
	u, err := url.Parse(env.endpoint)
	// A loopback endpoint is a dry run against `usagedrop sim`.
	loopback := u != nil && slices.Contains([]string{"127.0.0.1", "localhost", "::1"}, u.Hostname())
	env.dryRun = loopback
	if err != nil || u.Host == "" || u.Scheme != "https" && !loopback {
		t.Fatalf("USAGEDROP_LIVE_ENDPOINT %q: want https://HOST", env.endpoint)
	}
	if !loopback && !strings.Contains(u.Host, "sandbox") && !strings.Contains(u.Host, ".test.") && os.Getenv("USAGEDROP_LIVE_ALLOW_PRODUCTION") != "yes" {
		t.Fatalf("%s does not look like a sandbox (no \"sandbox\" or \".test.\" in the host); this test writes usage, so it needs USAGEDROP_LIVE_ALLOW_PRODUCTION=yes for any other tenant", u.Host)
	}
	if v := os.Getenv("USAGEDROP_LIVE_TIMEOUT"); v != "" {
		if env.timeout, err = time.ParseDuration(v); err != nil {
			t.Fatalf("USAGEDROP_LIVE_TIMEOUT: %v", err)
		}
	}
	if v := os.Getenv("USAGEDROP_LIVE_MEDIATION_FIELDS"); v != "" {
		env.eventFields = map[string]string{}
		for _, pair := range strings.Split(v, ",") {
			col, field, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || col == "" || field == "" {
				t.Fatalf("USAGEDROP_LIVE_MEDIATION_FIELDS: %q is not COLUMN=Field", pair)
			}
			env.eventFields[strings.ToUpper(col)] = field
		}
	}
	env.apis = splitList(os.Getenv("USAGEDROP_LIVE_APIS"))
	if env.apis == nil {
		env.apis = []string{"file"}
		if env.soapUser != "" {
			env.apis = append(env.apis, "soap")
		}
		if env.meter != "" {
			env.apis = append(env.apis, "mediation")
		}
	}
	for _, api := range env.apis {
		switch {
		case api == "soap" && (env.soapEndpoint == "" || env.soapUser == "" || env.soapPass == ""):
			t.Fatal("api soap needs USAGEDROP_LIVE_SOAP_ENDPOINT, USAGEDROP_LIVE_SOAP_USER and USAGEDROP_LIVE_SOAP_PASSWORD")
		case api == "mediation" && env.meter == "":
			t.Fatal("api mediation needs USAGEDROP_LIVE_MEDIATION_METER")
		case !slices.Contains([]string{"file", "object", "soap", "mediation"}, api):
			t.Fatalf("USAGEDROP_LIVE_APIS: unknown api %q", api)
		}
	}
	env.files = splitList(os.Getenv("USAGEDROP_LIVE_FILES"))
	return env
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func TestLiveConformance(t *testing.T) {
	env := liveConfig(t)
	expected := testutil.Expected(t)
	files := env.files
	if files == nil {
		for name := range expected {
			files = append(files, name)
		}
		slices.Sort(files)
	}
	// Upload names carry the run, so that no look-up by name finds an
	// import an earlier run made.
	run := time.Now().UTC().Format("0102150405")
	for _, api := range env.apis {
		t.Run(api, func(t *testing.T) {
			for _, name := range files {
				t.Run(name, func(t *testing.T) {
					parts := liveParts(t, name, api[:1]+run, env.dateFormat)
					if len(parts) == 0 {
						t.Logf("%s: rejected by usagedrop, nothing sent (expected.json: %q)", name, expected[name].Outcome)
						return
					}
					sim := sendToSim(t, env, api, parts)
					live := sendToZuora(t, env, api, parts)
					compareHoldings(t, env, api, sim, live)
				})
			}
		})
	}
}

// liveParts converts a fixture as the daemon would, into template parts.
func liveParts(t *testing.T, name, id, dateFormat string) []Part {
	t.Helper()
	path := testutil.CopyFixture(t, name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "parts")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res, err := convert.Convert(context.Background(), name, id, f, st.Size(), convert.Options{},
		convert.Template{DateFormat: dateFormat}, convert.Limits{}, dir)
	if err != nil {
		t.Fatalf("convert %s: %v", name, err)
	}
	var parts []Part
	for _, p := range res.Parts {
		parts = append(parts, Part{Name: p.Name, Path: p.Path, Size: p.Size, SHA256: p.SHA256, Records: p.Records})
	}
	return parts
}

// holding is what one side holds after the parts were sent.
type holding struct {
	side    string
	imports []string // per part: its outcome, in the words both sides share
	records []string // canonical record lines, sorted
	unread  string   // why the records could not be read back, if they could not
	notes   []string // anything else worth knowing
}

// uploaderFor builds the api's uploader on c.
func uploaderFor(env liveEnv, api string, c *Client, soapEndpoint string) Uploader {
	switch api {
	case "object":
		return NewObjectImport(c, env.dateFormat)
	case "soap":
		return NewSOAPImport(c, soapEndpoint, env.soapUser, env.soapPass)
	case "mediation":
		return NewMediation(c, env.meter, env.dateFormat, EventMapping{Fields: env.eventFields})
	}
	return NewFileImport(c)
}

// sendParts submits every part under a key of its own and follows each to
// its end. Outcomes are in words both sides share; notes keep each side's
// own message for an import that did not complete.
func sendParts(ctx context.Context, t *testing.T, u Uploader, parts []Part) (outcomes, notes []string, receipts []Receipt) {
	t.Helper()
	for _, p := range parts {
		rc, err := u.Submit(ctx, p, "ud-live-"+p.SHA256[:40])
		if err != nil {
			outcomes = append(outcomes, fmt.Sprintf("%s: submit failed: %v", p.Name, err))
			continue
		}
		st, err := followImport(ctx, u, rc)
		if err != nil {
			outcomes = append(outcomes, fmt.Sprintf("%s: status failed: %v", p.Name, err))
			continue
		}
		outcomes = append(outcomes, fmt.Sprintf("%s: %s, %d of %d records", p.Name, st.State, st.Imported, st.Total))
		if st.State != Completed {
			notes = append(notes, fmt.Sprintf("%s: %s: %s", p.Name, st.State, st.Message))
		}
		receipts = append(receipts, rc)
	}
	return outcomes, notes, receipts
}

// followImport polls until the import is final or ctx ends.
func followImport(ctx context.Context, u Uploader, rc Receipt) (Status, error) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		st, err := u.Status(ctx, rc)
		if err != nil || st.State.Final() {
			return st, err
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return st, fmt.Errorf("import %s still %s: %w", rc.ImportID, st.State, err)
		}
	}
}

// sendToSim sends the parts through zuorasim, which plays a tenant where
// every account, unit and field exists.
func sendToSim(t *testing.T, env liveEnv, api string, parts []Part) holding {
	t.Helper()
	schema := zuorasim.ReferenceSchema()
	for col, field := range env.eventFields {
		if _, ok := schema[field]; !ok {
			typ := "string"
			if col == "ENDDATE" || col == "STARTDATE" {
				typ = "date-time"
			}
			schema[field] = zuorasim.EventField{Type: typ}
		}
	}
	sim := zuorasim.New(zuorasim.Options{DateFormat: env.dateFormat, ProcessingDelay: -1, MediationSchema: schema})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := NewClient(Config{BaseURL: srv.URL, ClientID: "sim", ClientSecret: "sim", WSDLVersion: env.wsdl,
		BackoffBase: time.Millisecond, BackoffCap: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := holding{side: "zuorasim"}
	h.imports, h.notes, _ = sendParts(ctx, t, uploaderFor(env, api, c, srv.URL+"/apps/services/a/119.0"), parts)
	for _, r := range sim.Records() {
		h.records = append(h.records, recordLine(r.Account, r.UOM, r.Qty, r.Start, r.End, r.Subscription, r.Charge, r.Description))
	}
	for _, r := range sim.MediationRejected() {
		// Zuora's meter would refuse these later too, unseen by the
		// answer: worth knowing before going live.
		h.notes = append(h.notes, fmt.Sprintf("the meter refused event %d after answering 200: %s", r.Index, r.Reason))
	}
	slices.Sort(h.records)
	return h
}

// sendToZuora sends the parts to the sandbox and reads back what it holds.
func sendToZuora(t *testing.T, env liveEnv, api string, parts []Part) holding {
	t.Helper()
	c := NewClient(Config{BaseURL: env.endpoint, ClientID: env.clientID, ClientSecret: env.clientSecret, WSDLVersion: env.wsdl,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))})
	ctx, cancel := context.WithTimeout(context.Background(), env.timeout*time.Duration(len(parts)))
	defer cancel()
	since := time.Now().UTC().Add(-time.Minute)
	h := holding{side: "Zuora"}
	imports, notes, receipts := sendParts(ctx, t, uploaderFor(env, api, c, env.soapEndpoint), parts)
	h.imports, h.notes = imports, notes
	switch api {
	case "file", "soap":
		for _, rc := range receipts {
			h.records = append(h.records, liveUsage(ctx, t, c, &h, fmt.Sprintf("ImportId = '%s'", zoqlEscaper.Replace(rc.ImportID)))...)
		}
	case "object":
		// Records made one by one have no import to filter on: read what
		// was created since the parts were sent. Anybody else writing
		// usage to the sandbox meanwhile shows up as a difference.
		h.records = liveUsage(ctx, t, c, &h, fmt.Sprintf("CreatedDate >= '%s'", since.Format("2006-01-02T15:04:05-07:00")))
	case "mediation":
		h.unread = "Mediation has no read-back here: the meter validates and processes after answering; " +
			"check its audit for the events of " + partNames(parts)
	}
	slices.Sort(h.records)
	return h
}

func partNames(parts []Part) string {
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// liveUsage reads the Usage records that match where, every page of them.
func liveUsage(ctx context.Context, t *testing.T, c *Client, h *holding, where string) []string {
	t.Helper()
	q := "select AccountNumber, UOM, Quantity, StartDateTime, EndDateTime, SubscriptionNumber, ChargeNumber, Description from Usage where " + where
	var lines []string
	body, _ := json.Marshal(map[string]string{"queryString": q})
	path := "/v1/action/query"
	for {
		rep, err := c.do(ctx, call{op: "query", method: http.MethodPost, url: path, body: jsonBody(body)})
		if err != nil {
			h.unread = fmt.Sprintf("cannot read the usage back (%s): %v", q, err)
			return lines
		}
		var page struct {
			Records      []map[string]any `json:"records"`
			Done         bool             `json:"done"`
			QueryLocator string           `json:"queryLocator"`
		}
		dec := json.NewDecoder(bytes.NewReader(rep.body))
		dec.UseNumber()
		if err := dec.Decode(&page); err != nil {
			h.unread = fmt.Sprintf("cannot read the query answer: %v", err)
			return lines
		}
		for _, r := range page.Records {
			s := func(k string) string {
				if v, ok := r[k]; ok && v != nil {
					return fmt.Sprint(v)
				}
				return ""
			}
			lines = append(lines, recordLine(s("AccountNumber"), s("UOM"), s("Quantity"), s("StartDateTime"), s("EndDateTime"),
				s("SubscriptionNumber"), s("ChargeNumber"), s("Description")))
		}
		if page.Done || page.QueryLocator == "" {
			return lines
		}
		body, _ = json.Marshal(map[string]string{"queryLocator": page.QueryLocator})
		path = "/v1/action/queryMore"
	}
}

// recordLine is a record in the form both sides can be compared in: dates
// as YYYY-MM-DD (Zuora answers date-times), quantities without trailing
// zeros.
func recordLine(account, uom, qty, start, end, sub, charge, desc string) string {
	day := func(s string) string { return s[:min(len(s), 10)] }
	if strings.Contains(qty, ".") {
		qty = strings.TrimRight(strings.TrimRight(qty, "0"), ".")
	}
	return strings.Join([]string{account, uom, qty, day(start), day(end), sub, charge, desc}, " | ")
}

// compareHoldings prints every difference between the two sides and fails
// when there is one. Records that could not be read back fail the test
// too, but for Mediation (nothing to read) and a dry run against a local
// simulator (which answers no query on Usage).
func compareHoldings(t *testing.T, env liveEnv, api string, sim, live holding) {
	t.Helper()
	for _, h := range []holding{sim, live} {
		for _, n := range h.notes {
			t.Logf("%s: %s", h.side, n)
		}
	}
	var diffs []string
	// Import ids differ by nature; the outcome and counts must not.
	if !slices.Equal(sim.imports, live.imports) {
		diffs = append(diffs, fmt.Sprintf("imports:\n  zuorasim: %s\n  Zuora:    %s",
			strings.Join(sim.imports, "; "), strings.Join(live.imports, "; ")))
	}
	records := fmt.Sprintf("%d records", len(live.records))
	if live.unread != "" {
		records = "records not compared: " + live.unread
		if api != "mediation" && !env.dryRun {
			diffs = append(diffs, records)
		}
	} else {
		onlySim, onlyLive := multisetDiff(sim.records, live.records)
		for _, d := range []struct {
			side  string
			lines []string
		}{{"only in zuorasim", onlySim}, {"only in Zuora", onlyLive}} {
			if len(d.lines) == 0 {
				continue
			}
			shown := d.lines[:min(len(d.lines), 20)]
			if len(d.lines) > len(shown) {
				shown = append(shown, "...")
			}
			diffs = append(diffs, fmt.Sprintf("%d records %s (account | uom | qty | start | end | subscription | charge | description):\n  %s",
				len(d.lines), d.side, strings.Join(shown, "\n  ")))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("Zuora and zuorasim differ:\n%s", strings.Join(diffs, "\n"))
		return
	}
	t.Logf("Zuora and zuorasim agree: %s; %s", strings.Join(live.imports, "; "), records)
}

// multisetDiff returns the lines of a not in b and of b not in a, each as
// often as it is in excess; both are sorted.
func multisetDiff(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}
