package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"usagedrop/ledger"
	"usagedrop/zuorasim"
)

// waitDrop waits until drop id is finished again and returns it.
func (e *env) waitDrop(id string) *ledger.Entry {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		x, err := e.ledger.Get(id)
		if err == nil && x.Finished {
			return x
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("drop %s not finished: %+v, %v", id, x, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A drop that failed at Zuora, sent again by an operator while the
// pipeline runs, is taken from failed/ and imported under new keys; its
// file and a fresh report end in imported/.
func TestRetryFailedDropImports(t *testing.T) {
	e := start(t)
	e.sim.SetFaults(zuorasim.Faults{FailImports: 1})
	e.drop("partner-template.csv", "march.csv")
	x := e.waitFinished(1)["march.csv"]
	if x.State != ledger.Failed || x.FinalKey != "failed/march.csv" {
		t.Fatalf("first try: %s at %q", x.State, x.FinalKey)
	}
	r, err := Retry(e.ledger, x.ID, "local")
	if err != nil || r.State != ledger.Discovered || r.Key != "failed/march.csv" {
		t.Fatalf("retry: %+v, %v", r, err)
	}
	e.p.Wake(x.ID)
	y := e.waitDrop(x.ID)
	if y.State != ledger.Done || y.FinalKey != "imported/march.csv" || y.Generation != 1 || y.Requeued != 1 {
		t.Fatalf("after retry: %s at %q, generation %d", y.State, y.FinalKey, y.Generation)
	}
	if y.Parts[0].IdempotencyKey == x.Parts[0].IdempotencyKey {
		t.Fatal("sent again under the failed try's idempotency key")
	}
	if n := len(e.sim.Records()); n != 1000 {
		t.Fatalf("zuora holds %d records, want 1000", n)
	}
	if _, err := os.Stat(filepath.Join(e.dropDir, "failed", "march.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file is still in failed/: %v", err)
	}
	assertFile(t, filepath.Join(e.dropDir, "imported", "march.csv.status.txt"), "Imported: ")
	history := ""
	for _, h := range y.History {
		history += h.Note + "\n"
	}
	if !strings.Contains(history, "sent again at an operator's request") {
		t.Fatalf("history does not say it was sent again:\n%s", history)
	}
	// Done is not sent again.
	if _, err := Retry(e.ledger, x.ID, "local"); !errors.Is(err, ledger.ErrTransition) || !strings.Contains(err.Error(), "forget it") {
		t.Fatalf("retry of an imported drop: %v", err)
	}
}

// Sent again while no daemon runs, a rejected drop is taken at the next
// start and ends in failed/ again with reports of its own beside the old
// ones, none overwritten.
func TestRetryWhileStoppedResumes(t *testing.T) {
	e := start(t)
	e.drop("bad-rows.csv", "bad.csv")
	x := e.waitFinished(1)["bad.csv"]
	if x.State != ledger.Rejected {
		t.Fatalf("state %s", x.State)
	}
	e.stop()
	led, err := ledger.Open(filepath.Join(e.dir, "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Retry(led, x.ID, "local"); err != nil {
		t.Fatal(err)
	}
	led.Close()
	e.run()
	y := e.waitDrop(x.ID)
	if y.State != ledger.Rejected || y.FinalKey == x.FinalKey || !strings.HasPrefix(y.FinalKey, "failed/bad-") {
		t.Fatalf("after retry: %s at %q (first at %q)", y.State, y.FinalKey, x.FinalKey)
	}
	for _, f := range []string{"bad.csv.status.txt", "bad.csv.errors.csv", filepath.Base(y.FinalKey), filepath.Base(y.FinalKey) + ".status.txt"} {
		if _, err := os.Stat(filepath.Join(e.dropDir, "failed", f)); err != nil {
			t.Errorf("failed/%s: %v", f, err)
		}
	}
}

// A file changed in failed/ after it was finished is not taken again:
// the user drops the new version instead.
func TestRetryRefusesChangedFile(t *testing.T) {
	e := start(t)
	e.drop("bad-rows.csv", "bad.csv")
	x := e.waitFinished(1)["bad.csv"]
	p := filepath.Join(e.dropDir, "failed", "bad.csv")
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("one more line\n")
	f.Close()
	if _, err := Retry(e.ledger, x.ID, "local"); err != nil {
		t.Fatal(err)
	}
	e.p.Wake(x.ID)
	y := e.waitDrop(x.ID)
	if y.State != ledger.Vanished || !strings.Contains(y.History[len(y.History)-1].Note, "changed after it was finished") {
		t.Fatalf("changed file: %s, %q", y.State, y.History[len(y.History)-1].Note)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the changed file left failed/: %v", err)
	}
}

// Where the source cannot give a file back, retry says what to do.
func TestRetryRefusals(t *testing.T) {
	e := start(t)
	e.drop("bad-rows.csv", "bad.csv")
	x := e.waitFinished(1)["bad.csv"]
	if _, err := Retry(e.ledger, x.ID, ""); !errors.Is(err, ledger.ErrTransition) || !strings.Contains(err.Error(), "not in the config") {
		t.Fatalf("retry of a drop whose source is gone: %v", err)
	}
	for _, c := range []struct{ typ, final, want string }{
		{"s3", "failed/a.csv", "on S3"},
		{"local", "/srv/failed/a.csv", "outside the drop folder"},
		{"sftp", "../failed/a.csv", "outside the drop folder"},
		{"local", "failed/a.csv", ""},
	} {
		x := &ledger.Entry{State: ledger.Rejected, Finished: true, FinalKey: c.final}
		if got := retakeRefusal(x, c.typ); c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s %s: %q, want %q", c.typ, c.final, got, c.want)
		}
	}
}
