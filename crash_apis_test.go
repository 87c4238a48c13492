package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/zuorasim"
)

// The object, SOAP and Mediation APIs, like the file import in
// TestCrashAtEveryTransition, survive a SIGKILL where a part is in
// Zuora's hands: right after it is marked submitted, accepted or polled,
// and in the middle of sending it (the object API after its 500th record
// was created, SOAP after the Import was made, Mediation after the meter
// took the first batch: each before the daemon hears the answer). After a
// restart every record is in Zuora exactly once and every file is in
// imported/ with its report, on a bbolt ledger and on a leased PostgreSQL
// one. Mediation without a dedupe field is the
// exception the issue names: a batch on its way when the daemon died (at
// any point: the workers send other files meanwhile) is never sent again,
// and its file goes to failed/ saying which rows' fate is unknown; no
// record is in Zuora twice.
func TestCrashAPIs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon 64 times")
	}
	want := crashRecords(t)
	for _, kind := range crashLedgers {
		for _, api := range []string{"object", "soap", "mediation", "mediation+dedupe_field"} {
			for _, point := range []string{"submitted", "accepted", "polled", "sending"} {
				t.Run(kind+"/"+api+"/"+point, func(t *testing.T) {
					t.Parallel() // each case has its own folder, simulator and ledger
					d, kt := newAPIDaemon(t, api)
					d.onLedger(kind)
					if api == "soap" {
						// And the answer to the first create is lost.
						d.sim.SetFaults(zuorasim.Faults{DropAfterRead: 1})
					}
					const files = 3
					d.drop(files)
					var cmd *exec.Cmd
					if point == "sending" {
						cmd = d.start()
						kt.killAt(api, cmd)
					} else {
						cmd = d.start("USAGEDROP_CRASH_AT=" + point)
					}
					d.waitKilled(t, cmd, point)
					if point == "sending" && !kt.fired() {
						t.Fatalf("the daemon died, but not where the test killed it:\n%s", d.logs.String())
					}

					restarted := time.Now()
					cmd = d.start()
					ok := d.waitReported(files, 30*time.Second) && d.waitProcessed(10*time.Second)
					d.resumedOwn(restarted, ok)
					// As in TestCrashAtEveryTransition: the SIGTERM must not
					// land before the restarted daemon has its handler.
					waitLog(&d.logs, "usagedrop running", 2, 10*time.Second)
					cmd.Process.Signal(syscall.SIGTERM)
					if err := cmd.Wait(); err != nil {
						t.Errorf("daemon did not stop cleanly on SIGTERM: %v", err)
					}
					if !ok {
						t.Fatalf("files not all finished after restart:\n%s", d.logs.String())
					}
					left, _ := filepath.Glob(filepath.Join(d.dir, "drop", "processing", "*", "*"))
					if len(left) > 0 {
						t.Fatalf("files left in processing/: %v", left)
					}
					failed, _ := filepath.Glob(filepath.Join(d.dir, "drop", "failed", "*.status.txt"))
					if api == "mediation" {
						// No dedupe field: a batch on its way when the daemon
						// died, this file's or another's, is not sent again,
						// and its file says so.
						for _, f := range failed {
							b, _ := os.ReadFile(f)
							if !strings.Contains(string(b), "may or may not have taken") || !strings.Contains(string(b), "were not sent again") {
								t.Errorf("%s does not say the batch's fate is unknown:\n%s", filepath.Base(f), b)
							}
						}
						if point == "sending" && len(failed) == 0 {
							t.Fatalf("every file was imported, so the batch the meter took at the kill was sent again:\n%s", d.logs.String())
						}
					} else if len(failed) > 0 {
						b, _ := os.ReadFile(failed[0])
						t.Fatalf("files in failed/: %v\n%s", failed, b)
					}
					assertRecordsOnce(t, d.sim.Records(), want(files), len(failed))
					if api == "soap" {
						// One Import per file: a create whose answer was lost,
						// or whose sender died, is found by name, not made again.
						if n := len(d.sim.Imports()); n != files {
							t.Fatalf("%d Imports for %d files", n, files)
						}
					}
				})
			}
		}
	}
}

// waitReported waits until n files are in imported/ or failed/ with a
// report (written before the file is moved: see waitImported).
func (d *daemon) waitReported(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		reports, _ := filepath.Glob(filepath.Join(d.dir, "drop", "*", "usage-*.csv.status.txt"))
		files, _ := filepath.Glob(filepath.Join(d.dir, "drop", "*", "usage-*.csv"))
		if len(reports) >= n && len(files) >= n {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// newAPIDaemon is newDaemon sending through api, with the sim behind a
// killTap.
func newAPIDaemon(t *testing.T, api string) (*daemon, *killTap) {
	t.Helper()
	opt := zuorasim.Options{ProcessingDelay: 30 * time.Millisecond}
	api, dedupe := strings.CutSuffix(api, "+dedupe_field")
	if api == "mediation" {
		opt.MediationSchema = crashMeter
		if dedupe {
			opt.MediationDedupeField = "EventId"
		}
	}
	sim := zuorasim.New(opt)
	kt := &killTap{sim: sim}
	srv := httptest.NewServer(kt)
	t.Cleanup(srv.Close)
	d := &daemon{t: t, dir: t.TempDir(), sim: sim}
	d.cfg = writeConfig(t, d.dir, "crashy", srv.URL, fmt.Sprintf("name: drop\n    type: local\n    path: %s/drop\n", d.dir))
	zuora := "zuora:\n  api: " + api + "\n"
	switch {
	case api == "mediation":
		zuora += "  meter: meter-1\n  event:\n    fields:\n"
		for _, col := range []string{"ENDDATE", "SUBSCRIPTION_ID", "CHARGE_ID", "DESCRIPTION"} {
			zuora += "      " + col + ": " + crashEvent[col] + "\n"
		}
		if dedupe {
			zuora += "    dedupe_field: EventId\n"
		}
	case api == "soap":
		zuora += "  soap_endpoint: " + srv.URL + "/apps/services/a/119.0\n  username: user\n  password: pass\n"
	}
	cfg, err := os.ReadFile(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.cfg, bytes.Replace(cfg, []byte("zuora:\n"), []byte(zuora), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(d.dir, "drop"), 0o755); err != nil {
		t.Fatal(err)
	}
	return d, kt
}

// killTap passes requests to the sim and, once armed, kills the daemon
// with SIGKILL at a chosen request, after the sim has handled it and
// before the daemon hears the answer.
type killTap struct {
	sim *zuorasim.Sim

	mu      sync.Mutex
	cmd     *exec.Cmd
	api     string
	objects int // object API calls handled since armed
	done    bool
}

// killAt arms the tap: the object API dies after its 500th record, SOAP
// after its first create, Mediation after its first batch.
func (kt *killTap) killAt(api string, cmd *exec.Cmd) {
	kt.mu.Lock()
	kt.api, kt.cmd = api, cmd
	kt.mu.Unlock()
}

func (kt *killTap) fired() bool {
	kt.mu.Lock()
	defer kt.mu.Unlock()
	return kt.done
}

func (kt *killTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kt.mu.Lock()
	armed := kt.cmd != nil && !kt.done
	kt.mu.Unlock()
	if !armed || r.Method != http.MethodPost {
		kt.sim.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	kt.mu.Lock()
	kill := false
	switch {
	case kt.done:
	case kt.api == "object" && r.URL.Path == "/v1/object/usage":
		kt.objects++
		kill = kt.objects == 500
	case kt.api == "soap" && bytes.Contains(body, []byte("<api:create>")):
		kill = true
	case strings.HasPrefix(kt.api, "mediation") && strings.HasPrefix(r.URL.Path, "/usage/bulk/"):
		kill = true
	}
	if kill {
		kt.done = true
	}
	kt.mu.Unlock()
	if !kill {
		kt.sim.ServeHTTP(w, r)
		return
	}
	func() {
		// The sim may lose the answer itself (DropAfterRead): either
		// way the daemon hears none.
		defer func() { _ = recover() }()
		kt.sim.ServeHTTP(httptest.NewRecorder(), r)
	}()
	kt.cmd.Process.Kill()
	panic(http.ErrAbortHandler)
}

// crashRecords returns the records daemon.drop's files hold: the
// fixture's, with "Line one" made "Line one #i" in file i's descriptions.
func crashRecords(t *testing.T) func(files int) []testutil.FixtureRecord {
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		Records []testutil.FixtureRecord `json:"records"` // keys match the fields case-insensitively
	}
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	recs := all["partner-template.csv"].Records
	if len(recs) != 1000 {
		t.Fatalf("expected.json lists %d records for partner-template.csv, want 1000", len(recs))
	}
	return func(files int) []testutil.FixtureRecord {
		var out []testutil.FixtureRecord
		for i := range files {
			for _, r := range recs {
				r.Description = strings.ReplaceAll(r.Description, "Line one", fmt.Sprintf("Line one #%d", i))
				out = append(out, r)
			}
		}
		return out
	}
}

// crashEvent maps the template's columns onto the test meter's event:
// the reference's four fields and one for each other column.
var crashEvent = map[string]string{"ACCOUNT_ID": "CustomerId", "UOM": "UsageIdentifier", "QTY": "Quantity", "STARTDATE": "UsageDate",
	"ENDDATE": "EndDate", "SUBSCRIPTION_ID": "SubscriptionNumber", "CHARGE_ID": "ChargeNumber", "DESCRIPTION": "Description"}

// crashMeter is the test meter's event definition, with the dedupe field
// the Deduplicator keys on when the meter has one.
var crashMeter = map[string]zuorasim.EventField{
	"CustomerId": {Type: "string", Required: true}, "UsageIdentifier": {Type: "string", Required: true},
	"Quantity": {Type: "number", Required: true}, "UsageDate": {Type: "date-time", Required: true},
	"EndDate": {Type: "date-time"}, "SubscriptionNumber": {Type: "string"}, "ChargeNumber": {Type: "string"},
	"Description": {Type: "string"}, "EventId": {Type: "string"},
}

// assertRecordsOnce checks that Zuora holds the records of want, each as
// often as want has it. When unsure files' batches may or may not have
// reached Zuora, up to that many files' records may be missing; none may
// be there twice.
func assertRecordsOnce(t *testing.T, got []zuorasim.Record, want []testutil.FixtureRecord, unsure int) {
	t.Helper()
	n := map[testutil.FixtureRecord]int{}
	for _, r := range want {
		n[r]++
	}
	for _, r := range got {
		n[heldRecord(t, r)]--
	}
	var twice, missing int
	var example string
	for r, k := range n {
		switch {
		case k < 0:
			twice += -k
			example = fmt.Sprintf("%+v in Zuora %d more times than dropped", r, -k)
		case k > 0:
			missing += k
			if example == "" {
				example = fmt.Sprintf("%+v missing %d times", r, k)
			}
		}
	}
	if twice > 0 || missing > unsure*1000 || unsure == 0 && missing > 0 {
		t.Fatalf("zuora holds %d records for %d dropped: %d extra, %d missing; e.g. %s", len(got), len(want), twice, missing, example)
	}
}

// heldRecord is a record the sim holds as expected.json writes records.
// The sim keeps only the reference's fields of a Mediation event; the
// rest are read back from the event.
func heldRecord(t *testing.T, r zuorasim.Record) testutil.FixtureRecord {
	fr := testutil.FixtureRecord{Account: r.Account, UOM: r.UOM, Qty: r.Qty, Start: r.Start, End: r.End,
		Subscription: r.Subscription, Charge: r.Charge, Description: r.Description}
	if !strings.HasPrefix(r.ImportID, "mediation:") {
		return fr
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(r.Event), &ev); err != nil {
		t.Fatalf("the sim holds an event that is not JSON: %v", err)
	}
	str := func(col string) string {
		v, _ := ev[crashEvent[col]].(string)
		return v
	}
	if end := str("ENDDATE"); end != "" {
		d, err := time.Parse(time.RFC3339, end)
		if err != nil {
			t.Fatalf("event %s: %v", r.Event, err)
		}
		fr.End = d.Format(time.DateOnly)
	}
	fr.Subscription, fr.Charge, fr.Description = str("SUBSCRIPTION_ID"), str("CHARGE_ID"), str("DESCRIPTION")
	return fr
}
