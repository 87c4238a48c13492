package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"usagedrop/config"
	"usagedrop/convert"
	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

func loadExpected(t *testing.T) map[string]testutil.Expectation { return testutil.Expected(t) }

// digest is expected.json's digest of what the simulator imported.
func digest(recs []zuorasim.Record) string {
	fr := make([]testutil.FixtureRecord, len(recs))
	for i, r := range recs {
		fr[i] = testutil.FixtureRecord{Account: r.Account, UOM: r.UOM, Qty: r.Qty, Start: r.Start, End: r.End,
			Subscription: r.Subscription, Charge: r.Charge, Description: r.Description}
	}
	return testutil.Digest(fr)
}

// env is a pipeline on a temp drop folder, sending to a zuorasim. It can
// be stopped and run again over the same ledger, spool and folder.
type env struct {
	t       testing.TB
	dir     string
	dropDir string
	sim     *zuorasim.Sim
	url     string
	ledger  *ledger.Ledger
	api     string // "file", "object", "mediation" or "soap"
	dedupe  string // api: mediation: the field of the meter's Deduplicator, if any
	limits  convert.Limits
	caps    convert.Caps
	settle  time.Duration // default 100ms
	hook    func(point string)
	cancel  context.CancelFunc
	done    chan struct{}
	p       *Pipeline // the running pipeline

	// timeout bounds each HTTP call to Zuora, when not the client's
	// default.
	timeout time.Duration
}

func start(t testing.TB) *env { return startAPI(t, "file") }

// testEvent maps every column of the classic template onto a meter's
// event, for api: mediation.
var testEvent = config.Event{Fields: map[string]string{
	"ACCOUNT_ID": "CustomerId", "UOM": "UsageIdentifier", "QTY": "Quantity", "STARTDATE": "UsageDate", "ENDDATE": "EndDate",
	"SUBSCRIPTION_ID": "SubscriptionNumber", "CHARGE_ID": "ChargeNumber", "DESCRIPTION": "Description"}}

func startAPI(t testing.TB, api string) *env {
	t.Helper()
	dir := t.TempDir()
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 50 * time.Millisecond, MediationSchema: meterSchema(testEvent)})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	e := &env{t: t, dir: dir, dropDir: filepath.Join(dir, "drop"), sim: sim, url: srv.URL, api: api}
	e.run()
	t.Cleanup(e.stop)
	return e
}

// run starts the pipeline.
func (e *env) run() {
	t := e.t
	led, err := ledger.Open(filepath.Join(e.dir, "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel}))
	sc := config.DefaultConfig().Sources[0]
	sc.Path = e.dropDir
	sc.Settle = config.Duration(cmp.Or(e.settle, 100*time.Millisecond))
	src, err := BuildSource(sc, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	src.Watch.Interval = 200 * time.Millisecond
	var hc *http.Client
	if e.timeout > 0 {
		hc = &http.Client{Timeout: e.timeout}
	}
	c := uploader.NewClient(uploader.Config{
		BaseURL: e.url, ClientID: "id", ClientSecret: "secret", Logger: log, HTTPClient: hc,
		BackoffBase: 10 * time.Millisecond, BackoffCap: 100 * time.Millisecond,
	})
	var up uploader.Uploader = uploader.NewFileImport(c)
	switch e.api {
	case "object":
		up = uploader.NewObjectImport(c, "MM/DD/YYYY")
	case "mediation":
		up = uploader.NewMediation(c, "meter-1", "MM/DD/YYYY", uploader.EventMapping{Fields: testEvent.Fields, DedupeField: e.dedupe})
	case "soap":
		up = uploader.NewSOAPImport(c, e.url+"/apps/services/a/119.0", "user", "pass")
	}
	p := New(Options{
		Ledger: led, Uploader: up, Sources: []Source{src}, Spool: filepath.Join(e.dir, "spool"),
		Instance: "test", Template: Template(config.DefaultConfig().Zuora), Workers: 2, Limits: e.limits, Caps: e.caps,
		PollMax: 200 * time.Millisecond, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: log,
		Hook: e.hook,
	})
	ctx, cancel := context.WithCancel(context.Background())
	e.ledger, e.cancel, e.done, e.p = led, cancel, make(chan struct{}), p
	go func() { defer close(e.done); p.Run(ctx) }()
}

// stop stops the pipeline and closes the ledger; it may be called twice.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.ledger.Close()
	e.cancel = nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// drop copies a fixture into the drop folder under name.
func (e *env) drop(fixture, name string) {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(e.t), fixture))
	if err != nil {
		e.t.Fatal(err)
	}
	e.dropBytes(name, b)
}

// dropBytes writes a file as a user's file manager would: through a temp
// name the watcher ignores.
func (e *env) dropBytes(name string, b []byte) {
	e.t.Helper()
	tmp := filepath.Join(e.dropDir, "."+name+".part")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dropDir, name)); err != nil {
		e.t.Fatal(err)
	}
}

// waitFinished waits until n drops are finished and returns them by name.
func (e *env) waitFinished(n int) map[string]*ledger.Entry {
	e.t.Helper()
	return e.waitSettled(n, func(*ledger.Entry) bool { return false })
}

// recordsOf returns what the sim imported for a drop.
func (e *env) recordsOf(x *ledger.Entry) []zuorasim.Record {
	ids := map[string]bool{}
	for _, p := range x.Parts {
		ids[p.ImportID] = true
	}
	var out []zuorasim.Record
	for _, r := range e.sim.Records() {
		if ids[r.ImportID] {
			out = append(out, r)
		}
	}
	return out
}

func TestFixturesEndToEnd(t *testing.T) {
	want := loadExpected(t)
	e := start(t)
	for name := range want {
		e.drop(name, name)
	}
	got := e.waitFinished(len(want))
	total := 0
	for name, w := range want {
		x := got[name]
		switch w.Outcome {
		case "imported":
			if x.State != ledger.Done {
				t.Errorf("%s: state %s (%s), want done", name, x.State, x.LastError)
				continue
			}
			recs := e.recordsOf(x)
			total += len(recs)
			if len(recs) != w.Count || digest(recs) != w.Digest {
				t.Errorf("%s: zuora holds %d records with digest %s, want %d with %s", name, len(recs), digest(recs), w.Count, w.Digest)
			}
			assertFile(t, filepath.Join(e.dropDir, "imported", name))
			assertFile(t, filepath.Join(e.dropDir, "imported", name+".status.txt"), "Imported: ")
		case "rejected":
			if x.State != ledger.Rejected {
				t.Errorf("%s: state %s, want rejected", name, x.State)
				continue
			}
			if len(x.Parts) != 0 {
				t.Errorf("%s: rejected drop has parts %v", name, x.Parts)
			}
			orig, _ := os.ReadFile(filepath.Join(testutil.Fixtures(t), name))
			kept, err := os.ReadFile(filepath.Join(e.dropDir, "failed", name))
			if err != nil || string(kept) != string(orig) {
				t.Errorf("%s: original not kept byte for byte in failed/: %v", name, err)
			}
			var needles []string
			for _, br := range w.BadRows {
				needles = append(needles, fmt.Sprintf(",%d,%s,", br.Line, br.Column))
			}
			assertFile(t, filepath.Join(e.dropDir, "failed", name+".errors.csv"), needles...)
			assertFile(t, filepath.Join(e.dropDir, "failed", name+".status.txt"), "Not imported: ", "fixing. Nothing was sent to Zuora.")
		case "either":
			if x.State != ledger.Done && x.State != ledger.Rejected {
				t.Errorf("%s: state %s, want done or rejected", name, x.State)
			}
			total += len(e.recordsOf(x))
		}
	}
	if n := len(e.sim.Records()); n != total {
		t.Errorf("zuora holds %d records in all, want %d: something was imported that should not be", n, total)
	}
	for _, im := range e.sim.Imports() {
		if im.Status != "Completed" {
			t.Errorf("an import the sim did not complete: %+v", im)
		}
	}
}

func assertFile(t *testing.T, path string, contains ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("missing %s: %v", path, err)
		return
	}
	for _, c := range contains {
		if !strings.Contains(string(b), c) {
			t.Errorf("%s does not say %q:\n%s", filepath.Base(path), c, b)
		}
	}
}

// The same bytes dropped again under another name are not imported twice,
// and the report says which drop took them.
func TestSameBytesTwiceImportOnce(t *testing.T) {
	e := start(t)
	e.drop("partner-template.csv", "march.csv")
	first := e.waitFinished(1)["march.csv"]
	if first.State != ledger.Done {
		t.Fatalf("first drop: %s %s", first.State, first.LastError)
	}
	e.drop("partner-template.csv", "march (1).csv")
	second := e.waitFinished(2)["march (1).csv"]
	if second.State != ledger.Duplicate || second.DuplicateOf != first.ID {
		t.Fatalf("second drop: %s duplicate of %q, want duplicate of %s", second.State, second.DuplicateOf, first.ID)
	}
	if n := len(e.sim.Records()); n != 1000 {
		t.Fatalf("zuora holds %d records, want 1000", n)
	}
	assertFile(t, filepath.Join(e.dropDir, "failed", "march (1).csv.status.txt"),
		"Not imported again", "as march.csv", first.Parts[0].ImportID)
}

// Zuora's answers lost, throttled or failing on the way: every record
// still lands exactly once.
func TestFaultsImportOnce(t *testing.T) {
	tests := []struct {
		name   string
		faults zuorasim.Faults
	}{
		{"answer lost after upload", zuorasim.Faults{DropAfterRead: 2}},
		{"429 with Retry-After", zuorasim.Faults{TooManyRequests: 3, RetryAfter: time.Second}},
		{"500s", zuorasim.Faults{ServerErrors: 4}},
		{"token expired", zuorasim.Faults{ExpireTokens: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			e.sim.SetFaults(tt.faults)
			e.drop("partner-template.csv", "march.csv")
			x := e.waitFinished(1)["march.csv"]
			if x.State != ledger.Done {
				t.Fatalf("state %s: %s", x.State, x.LastError)
			}
			recs := e.sim.Records()
			if len(recs) != 1000 {
				t.Fatalf("zuora holds %d records, want 1000 exactly once", len(recs))
			}
			var completed []string
			for _, im := range e.sim.Imports() {
				if im.Status == "Completed" {
					completed = append(completed, im.ID)
				}
			}
			if len(completed) != 1 {
				t.Fatalf("%d completed imports, want 1: %v", len(completed), completed)
			}
		})
	}
}

// An import that Zuora fails leaves the file in failed/ with Zuora's reason,
// and the same bytes may then be dropped again and imported.
func TestZuoraFailureThenRedrop(t *testing.T) {
	e := start(t)
	e.sim.SetFaults(zuorasim.Faults{FailImports: 1})
	e.drop("partner-template.csv", "march.csv")
	x := e.waitFinished(1)["march.csv"]
	if x.State != ledger.Failed {
		t.Fatalf("state %s, want failed", x.State)
	}
	assertFile(t, filepath.Join(e.dropDir, "failed", "march.csv.status.txt"), "Not imported. Nothing from this file is in Zuora")
	if n := len(e.sim.Records()); n != 0 {
		t.Fatalf("a failed import left %d records", n)
	}
	e.drop("partner-template.csv", "march-again.csv")
	y := e.waitFinished(2)["march-again.csv"]
	if y.State != ledger.Done || len(e.sim.Records()) != 1000 {
		t.Fatalf("re-drop: %s, %d records", y.State, len(e.sim.Records()))
	}
}

// Stopping the daemon mid-way loses nothing: a second run finishes every
// file, and nothing is imported twice.
func TestStopAndResume(t *testing.T) {
	e := start(t)
	template, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	for i := range n {
		// Different bytes per file, or the rest would be duplicates.
		b := strings.ReplaceAll(string(template), "Line one", fmt.Sprintf("Line one %d", i))
		e.dropBytes(fmt.Sprintf("file-%d.csv", i), []byte(b))
	}
	time.Sleep(300 * time.Millisecond)
	e.stop()
	finished := 0
	e.ledger, _ = ledger.Open(filepath.Join(e.dir, "ledger.db"), ledger.Options{})
	e.ledger.List(func(x *ledger.Entry) bool {
		if x.Finished {
			finished++
		}
		return true
	})
	e.ledger.Close()
	if finished == n {
		t.Logf("all %d finished before the stop; the resume path was not exercised", n)
	}
	stray := filepath.Join(e.dir, "spool", "20200101T000000.000000000Z-deadbeef")
	os.MkdirAll(stray, 0o750)
	e.run()
	got := e.waitFinished(n)
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("a spool dir of no active drop survived the start: %v", err)
	}
	for name, x := range got {
		if x.State != ledger.Done {
			t.Errorf("%s: %s %s", name, x.State, x.LastError)
		}
	}
	if r := len(e.sim.Records()); r != n*1000 {
		t.Fatalf("zuora holds %d records, want %d", r, n*1000)
	}
}

var testLogLevel = func() slog.Level {
	if os.Getenv("USAGEDROP_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()

// A file written slowly, with pauses shorter than the settle period, is
// taken once, complete.
func TestSlowlyWrittenFileImportedOnceComplete(t *testing.T) {
	e := start(t)
	e.stop()
	e.settle = 600 * time.Millisecond // ten times the pause between writes: a loaded CI machine stalls
	e.run()
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(e.dropDir, "slow.csv"))
	if err != nil {
		t.Fatal(err)
	}
	const chunks = 40 // 40 × 60ms: well past the settle period, in steps far under it
	step := len(b)/chunks + 1
	for i := 0; i < len(b); i += step {
		if _, err := f.Write(b[i:min(i+step, len(b))]); err != nil {
			t.Fatal(err)
		}
		f.Sync()
		time.Sleep(60 * time.Millisecond)
	}
	f.Close()
	x := e.waitFinished(1)["slow.csv"]
	if x.State != ledger.Done || x.Size != int64(len(b)) {
		t.Fatalf("state %s, size %d of %d (%s)", x.State, x.Size, len(b), x.LastError)
	}
	var n int
	e.ledger.List(func(*ledger.Entry) bool { n++; return true })
	if n != 1 || len(e.sim.Records()) != 1000 {
		t.Fatalf("%d ledger entries and %d records, want 1 and 1000", n, len(e.sim.Records()))
	}
}

// Every Zuora API takes the same drop to the same records, once, also when
// the first answer is lost.
func TestEveryAPI(t *testing.T) {
	want := loadExpected(t)["partner-template.csv"]
	for _, api := range []string{"file", "object", "mediation", "soap"} {
		t.Run(api, func(t *testing.T) {
			e := startAPI(t, api)
			e.sim.SetFaults(zuorasim.Faults{ServerErrors: 1})
			e.drop("partner-template.csv", "march.csv")
			x := e.waitFinished(1)["march.csv"]
			if x.State != ledger.Done {
				t.Fatalf("state %s: %s", x.State, x.LastError)
			}
			recs := e.sim.Records()
			if len(recs) != want.Count {
				t.Fatalf("zuora holds %d records, want %d", len(recs), want.Count)
			}
			if api != "mediation" && digest(recs) != want.Digest {
				t.Fatalf("records differ from the fixture's (digest %s)", digest(recs))
			}
			// Mediation's 200 means accepted for processing, not imported:
			// the report says what is true.
			says := []string{fmt.Sprintf("Imported: %s usage records in Zuora", count(want.Count))}
			if api == "mediation" {
				says = []string{"Sent to Zuora Mediation: ", fmt.Sprintf("(%d events accepted for processing)", want.Count)}
			}
			assertFile(t, filepath.Join(e.dropDir, "imported", "march.csv.status.txt"), says...)
		})
	}
}

// BenchmarkDropToZuora measures the whole path, drop folder to Completed
// import in the simulator, for files of 10,000 template rows.
func BenchmarkDropToZuora(b *testing.B) {
	const rows = 10000
	var body strings.Builder
	body.WriteString("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\r\n")
	for j := range rows {
		fmt.Fprintf(&body, "A%08d,API Calls,%d.25,03/%02d/2026,,A-S%08d,,usage row %d\r\n", j%500, j%97, 13+j%15, j%300, j)
	}
	e := start(b)
	e.sim.SetFaults(zuorasim.Faults{})
	b.ResetTimer()
	for i := range b.N {
		e.dropBytes(fmt.Sprintf("bench-%d.csv", i), []byte(strings.Replace(body.String(), "usage row 0\r\n", fmt.Sprintf("usage row 0 of %d\r\n", i), 1)))
	}
	e.waitFinished(b.N)
	b.StopTimer()
	if n := len(e.sim.Records()); n != b.N*rows {
		b.Fatalf("zuora holds %d records, want %d", n, b.N*rows)
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.N*body.Len())/1e6/b.Elapsed().Seconds(), "MB/s")
}

// A drop too large for one upload even zipped is split; every part is
// imported once, in order, and the report lists them.
func TestSplitDropImportsEveryPartOnce(t *testing.T) {
	e := start(t)
	e.stop()
	e.limits = convert.Limits{MaxBytes: 8000}
	e.run()
	e.drop("partner-template.csv", "big.csv")
	x := e.waitFinished(1)["big.csv"]
	if x.State != ledger.Done {
		t.Fatalf("state %s: %s", x.State, x.LastError)
	}
	if len(x.Parts) < 2 {
		t.Fatalf("%d parts, want the 68 kB file split into parts under 8 kB", len(x.Parts))
	}
	for _, p := range x.Parts {
		if p.Size > 8000 || !strings.HasSuffix(p.Name, ".zip") || len(p.Name) > 50 {
			t.Errorf("part %s: %d bytes", p.Name, p.Size)
		}
	}
	want := loadExpected(t)["partner-template.csv"]
	if recs := e.sim.Records(); len(recs) != want.Count || digest(recs) != want.Digest {
		t.Fatalf("zuora holds %d records (digest %s), want the fixture's %d", len(recs), digest(recs), want.Count)
	}
	if n := len(e.sim.Imports()); n != len(x.Parts) {
		t.Fatalf("%d imports for %d parts", n, len(x.Parts))
	}
	assertFile(t, filepath.Join(e.dropDir, "imported", "big.csv.status.txt"),
		fmt.Sprintf("in %d imports", len(x.Parts)), x.Parts[len(x.Parts)-1].ImportID)
}

// A file that is written to again after it was taken (its writer paused
// longer than the settle period) is not sent: it may be a prefix. It goes
// to failed/ whole, with the reason.
func TestFileChangedAfterClaimIsNotSent(t *testing.T) {
	e := start(t)
	e.stop()
	e.hook = func(point string) {
		if point != "claimed" {
			return
		}
		f, err := os.OpenFile(filepath.Join(e.dropDir, "processing", "test", "late.csv"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		time.Sleep(10 * time.Millisecond) // a later mtime, whatever the clock's grain
		f.WriteString("A00000001,GB,1,03/20/2026,,,,written late\r\n")
	}
	e.run()
	e.drop("partner-template.csv", "late.csv")
	x := e.waitFinished(1)["late.csv"]
	if x.State != ledger.Failed || len(e.sim.Records()) != 0 {
		t.Fatalf("state %s with %d records in zuora; want failed and none", x.State, len(e.sim.Records()))
	}
	assertFile(t, filepath.Join(e.dropDir, "failed", "late.csv"), "written late")
	assertFile(t, filepath.Join(e.dropDir, "failed", "late.csv.status.txt"), "still changing after it was taken")
}
