package pipeline

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/ledger"
	"usagedrop/zuorasim"
)

// startObject is a pipeline on api: object sending to a sim with opt,
// through front (nil: the sim itself), a real server on loopback.
func startObject(t *testing.T, opt zuorasim.Options, front func(sim http.Handler) http.Handler) *env {
	t.Helper()
	dir := t.TempDir()
	opt.ProcessingDelay = 50 * time.Millisecond
	sim := zuorasim.New(opt)
	var h http.Handler = sim
	if front != nil {
		h = front(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, dir: dir, dropDir: filepath.Join(dir, "drop"), sim: sim, url: srv.URL, api: "object"}
	e.run()
	t.Cleanup(e.stop)
	return e
}

// usageCSV is a template CSV of n records, one account each; bad, when
// above zero, is the record (from 1) given the unit TB.
func usageCSV(n, bad int) []byte {
	var b strings.Builder
	b.WriteString("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\r\n")
	for i := 1; i <= n; i++ {
		uom := "GB"
		if i == bad {
			uom = "TB"
		}
		fmt.Fprintf(&b, "A%08d,%s,%d.5,03/%02d/2026,,,,record %d\r\n", i, uom, i, i%28+1, i)
	}
	return []byte(b.String())
}

// onceEach fails t unless the sim holds accounts A1..An once each, and no
// other.
func onceEach(t *testing.T, sim *zuorasim.Sim, n int) {
	t.Helper()
	count := map[string]int{}
	for _, r := range sim.Records() {
		count[r.Account]++
	}
	for i := 1; i <= n; i++ {
		if a := fmt.Sprintf("A%08d", i); count[a] != 1 {
			t.Errorf("%s is in Zuora %d times, want once", a, count[a])
		}
	}
	if len(count) != n {
		t.Errorf("Zuora holds %d accounts, want %d", len(count), n)
	}
}

// A drop the object API stops on a refused record goes to failed/ saying
// which records are in Zuora (with their ids), which was refused and which
// were not sent. The same bytes dropped again send nothing twice; the fixed
// file, dropped again under another name, sends only what is missing, and
// every record ends in Zuora once.
func TestObjectRedropAfterRefusedRecord(t *testing.T) {
	e := startObject(t, zuorasim.Options{UOMs: []string{"GB"}}, nil)
	const n, bad = 40, 12
	e.dropBytes("march.csv", usageCSV(n, bad))
	x := e.waitFinished(1)["march.csv"]
	if x.State != ledger.Failed {
		t.Fatalf("state %s, want failed", x.State)
	}
	created := len(e.sim.Records())
	if created < bad-1 || created >= n {
		t.Fatalf("%d records in Zuora after record %d was refused", created, bad)
	}
	status := filepath.Join(e.dropDir, "failed", "march.csv.status.txt")
	assertFile(t, status, "Partly imported: ", "records 1-", " were created in Zuora (ids ",
		fmt.Sprintf("record %d (account A%08d, unit TB, date 2026-03-%02d) was refused by Zuora: The UOM TB is invalid", bad, bad, bad%28+1),
		fmt.Sprintf("-%d were not sent", n), "drop the whole file again: usagedrop remembers the records already in Zuora and sends only the others")
	body, _ := os.ReadFile(status)
	if strings.Count(string(body), ", ") < created-1 {
		t.Errorf("status lists fewer ids than the %d records created:\n%s", created, body)
	}

	// The same bytes again: refused at the same record, nothing doubled
	// (records sent beside the refused one may be created this time).
	e.dropBytes("march-again.csv", usageCSV(n, bad))
	y := e.waitFinished(2)["march-again.csv"]
	if y.State != ledger.Failed || y.Parts[0].Adopted != created {
		t.Fatalf("same bytes again: %s, took over %d records, want %d", y.State, y.Parts[0].Adopted, created)
	}
	noneTwice(t, e.sim)
	assertFile(t, filepath.Join(e.dropDir, "failed", "march-again.csv.status.txt"), "Partly imported: ",
		fmt.Sprintf("%d of these records had been created in Zuora by the earlier drop of march.csv", created))
	created = len(e.sim.Records())

	// Fixed: every record once.
	e.dropBytes("march-fixed.csv", usageCSV(n, 0))
	z := e.waitFinished(3)["march-fixed.csv"]
	if z.State != ledger.Done {
		t.Fatalf("fixed file: %s: %s", z.State, z.LastError)
	}
	onceEach(t, e.sim, n)
	assertFile(t, filepath.Join(e.dropDir, "imported", "march-fixed.csv.status.txt"),
		fmt.Sprintf("Imported: %s usage records in Zuora, one record at a time", count(n)),
		fmt.Sprintf("%d of these records had been created in Zuora by the earlier drop of march-again.csv", created))
	if recs, _ := e.ledger.Records(z.ID); len(recs) != 0 {
		t.Fatalf("a done drop keeps %d records in the ledger", len(recs))
	}
}

// noneTwice fails t if the sim holds an account twice.
func noneTwice(t *testing.T, sim *zuorasim.Sim) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range sim.Records() {
		if seen[r.Account] {
			t.Errorf("%s is in Zuora twice", r.Account)
		}
		seen[r.Account] = true
	}
}

// keyCounter counts the object API's POSTs by Idempotency-Key and, while
// held, keeps requests from reaching the sim.
type keyCounter struct {
	mu    sync.Mutex
	posts map[string]int
	total int
	// after is called (once) when total reaches at.
	at    int
	after func()
	held  chan struct{} // closed when requests may pass again
}

func (k *keyCounter) wrap(sim http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/object/usage" {
			k.mu.Lock()
			k.total++
			k.posts[r.Header.Get("Idempotency-Key")]++
			fire := k.total == k.at && k.after != nil
			held := k.held
			k.mu.Unlock()
			if fire {
				k.after()
			}
			if held != nil {
				<-held
			}
		}
		sim.ServeHTTP(w, r)
	})
}

// A drop stopped mid-part (the daemon stopped while records were in
// flight) and one whose record got a 500 Zuora stored under its key both
// send, when tried again, only the records not yet noted: every record's
// key is posted once, but for the few in flight when it stopped or the one
// whose answer was a failure, and every record ends in Zuora once.
func TestObjectRetrySendsOnlyMissingRecords(t *testing.T) {
	t.Run("stop", func(t *testing.T) {
		k := &keyCounter{posts: map[string]int{}, at: 15}
		var e *env
		stopped := make(chan struct{})
		k.after = func() {
			k.mu.Lock()
			k.held = make(chan struct{})
			k.mu.Unlock()
			go func() { e.stop(); close(stopped) }()
		}
		e = startObject(t, zuorasim.Options{}, k.wrap)
		const n = 60
		e.dropBytes("stop.csv", usageCSV(n, 0))
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Fatal("the daemon did not stop")
		}
		k.mu.Lock()
		before := len(e.sim.Records())
		close(k.held)
		k.held = nil
		k.mu.Unlock()
		if before == 0 || before >= n {
			t.Fatalf("%d records in Zuora when the daemon stopped, want some", before)
		}
		e.run()
		x := e.waitFinished(1)["stop.csv"]
		if x.State != ledger.Done {
			t.Fatalf("state %s: %s", x.State, x.LastError)
		}
		onceEach(t, e.sim, n)
		assertRepeats(t, k, n, 4)
	})
	t.Run("stored 500", func(t *testing.T) {
		k := &keyCounter{posts: map[string]int{}}
		e := startObject(t, zuorasim.Options{IdempotencyTTL: 500 * time.Millisecond}, k.wrap)
		const n = 30
		e.sim.SetFaults(zuorasim.Faults{StoredObjectErrors: 1})
		e.dropBytes("stored.csv", usageCSV(n, 0))
		x := e.waitFinished(1)["stored.csv"]
		if x.State != ledger.Done {
			t.Fatalf("state %s: %s", x.State, x.LastError)
		}
		onceEach(t, e.sim, n)
		assertRepeats(t, k, n, 1)
	})
}

// assertRepeats fails t unless n keys were posted and at most repeated of
// them more than once.
func assertRepeats(t *testing.T, k *keyCounter, n, repeated int) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	again := 0
	for _, c := range k.posts {
		if c > 1 {
			again++
		}
	}
	if len(k.posts) != n || again > repeated {
		t.Fatalf("%d keys posted (want %d), %d of them more than once (want at most %d): %v", len(k.posts), n, again, repeated, k.posts)
	}
}

// A file of more records than the object API is allowed to send one by
// one is refused before the first is sent, with the sentence the user
// reads.
func TestObjectRecordsCap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a file of 100,001 records")
	}
	e := startObject(t, zuorasim.Options{}, nil)
	e.dropBytes("huge.csv", usageCSV(maxObjectRecords+1, 0))
	x := e.waitFinished(1)["huge.csv"]
	if x.State != ledger.Failed || len(e.sim.Records()) != 0 {
		t.Fatalf("state %s, %d records in Zuora; want failed and none", x.State, len(e.sim.Records()))
	}
	assertFile(t, filepath.Join(e.dropDir, "failed", "huge.csv.status.txt"),
		fmt.Sprintf("the file holds %d usage records; the object API takes one call per record, and usagedrop sends at most %d",
			maxObjectRecords+1, maxObjectRecords), "nothing was sent")
}
