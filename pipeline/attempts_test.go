package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"usagedrop/convert"

	"usagedrop/config"
	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/sources"
	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

func TestClassify(t *testing.T) {
	spoolFull := &fs.PathError{Op: "write", Path: "/spool/x/.tmp-1", Err: syscall.ENOSPC}
	tests := []struct {
		name string
		err  error
		want ledger.Cause
	}{
		{"panic", &panicError{"index out of range"}, ledger.CausePanic},
		{"panic wrapped", fmt.Errorf("convert: %w", &panicError{"x"}), ledger.CausePanic},
		{"spool full", fmt.Errorf("fetch a.csv: %w", spoolFull), ledger.CauseSpace},
		{"quota", &fs.PathError{Op: "write", Err: syscall.EDQUOT}, ledger.CauseSpace},
		{"file size limit", &fs.PathError{Op: "write", Err: syscall.EFBIG}, ledger.CauseSpace},
		{"spool full while converting", fmt.Errorf("convert: %w", fileError{spoolFull}), ledger.CauseSpace},
		{"source full", fmt.Errorf("finish: %w", sourceError{spoolFull}), ledger.CauseSource},
		{"source network", fmt.Errorf("claim: %w", sourceError{errors.New("connection lost")}), ledger.CauseSource},
		{"source refuses the key", fmt.Errorf("claim: %w", sourceError{fmt.Errorf("key %q: %w", "a", fs.ErrInvalid)}), ledger.CauseFile},
		{"source needs an operator", fmt.Errorf("open: %w", sources.ErrFatal), ledger.CauseSource},
		{"zuora 503", fmt.Errorf("status: %w", &uploader.Error{Op: "status", HTTPStatus: 503, Retryable: true}), ledger.CauseZuora},
		{"zuora 429", &uploader.Error{Op: "submit", HTTPStatus: 429, Retryable: true}, ledger.CauseZuora},
		{"file", fmt.Errorf("convert: %w", fileError{errors.New("zip: not a valid zip file")}), ledger.CauseFile},
		{"spool unreadable while converting", fmt.Errorf("convert: %w", fileError{&fs.PathError{Op: "read", Err: syscall.EIO}}), ledger.CauseOther},
		{"temp file of a workbook", fmt.Errorf("convert: %w", fileError{fmt.Errorf("temporary file for shared strings: %w", &fs.PathError{Op: "write", Err: syscall.EMFILE})}), ledger.CauseOther},
		{"ours", errors.New("ledger: database not open"), ledger.CauseOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); got != tt.want {
				t.Fatalf("classify(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// A panic while converting one file ends that drop with a clear reason and
// its bytes in failed/; the daemon goes on with the others.
func TestPanicSetsDropAside(t *testing.T) {
	e := start(t)
	e.stop()
	e.hook = func(point string) {
		if point == "converting boom.csv" {
			panic("a converter bug")
		}
	}
	e.run()
	e.drop("partner-template.csv", "boom.csv")
	b, _ := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	e.dropBytes("fine.csv", []byte(strings.Replace(string(b), "Line one", "Line one fine", 1)))
	got := e.waitFinished(2)
	boom, fine := got["boom.csv"], got["fine.csv"]
	if boom.State != ledger.Failed || !strings.Contains(boom.LastError, "internal error while this file was being converted (a converter bug); it was set aside") {
		t.Fatalf("boom.csv: %s %q", boom.State, boom.LastError)
	}
	if fine.State != ledger.Done || len(e.sim.Records()) != 1000 {
		t.Fatalf("fine.csv: %s, %d records in zuora", fine.State, len(e.sim.Records()))
	}
	kept, err := os.ReadFile(filepath.Join(e.dropDir, "failed", "boom.csv"))
	if err != nil || string(kept) != string(b) {
		t.Fatalf("boom.csv not kept byte for byte in failed/: %v", err)
	}
	assertFile(t, filepath.Join(e.dropDir, "failed", "boom.csv.status.txt"), "Not imported. Nothing was sent to Zuora.", "it was set aside")
}

// Zuora down for a while: the drop waits, says so, and imports once Zuora
// is back; the outage never counts against the file.
func TestZuoraOutageIsWaitedOut(t *testing.T) {
	e := start(t)
	e.sim.SetFaults(zuorasim.Faults{ServerErrors: 60})
	e.drop("partner-template.csv", "march.csv")
	saw := waitLastError(t, e, "march.csv", "waiting for Zuora since ")
	x := e.waitFinished(1)["march.csv"]
	if x.State != ledger.Done || len(e.sim.Records()) != 1000 {
		t.Fatalf("after the outage: %s (%s), %d records", x.State, x.LastError, len(e.sim.Records()))
	}
	t.Logf("status during the outage: %s", saw)
}

// waitLastError waits until the drop named name shows a last error
// starting with prefix, and returns it.
func waitLastError(t *testing.T, e *env, name, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		found := ""
		e.ledger.List(func(x *ledger.Entry) bool {
			if x.Name == name {
				last = fmt.Sprintf("%s %q", x.State, x.LastError)
				if strings.HasPrefix(x.LastError, prefix) {
					found = x.LastError
				}
			}
			return true
		})
		if found != "" {
			return found
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never showed %q; last seen %s", name, prefix, last)
	return ""
}

// Names are any bytes: a name that is not UTF-8, one with a newline, one
// with an escape sequence. Each is imported under its own name, and the
// ledger gives the name back exactly.
func TestAnyBytesAsAName(t *testing.T) {
	e := start(t)
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"m\xe4rz.csv", "new\nline.csv", "esc\x1b[31mred.csv"}
	for i, name := range names {
		e.dropBytes(name, []byte(strings.Replace(string(b), "Line one", fmt.Sprintf("Line one %d", i), 1)))
	}
	got := e.waitFinished(len(names))
	for _, name := range names {
		x := got[name]
		if x == nil {
			t.Errorf("%q: no finished drop under its exact name (got %v)", name, keys(got))
			continue
		}
		if x.State != ledger.Done {
			t.Errorf("%q: %s %s", name, x.State, x.LastError)
		}
		assertFile(t, filepath.Join(e.dropDir, "imported", name))
	}
	if n := len(e.sim.Records()); n != len(names)*1000 {
		t.Fatalf("zuora holds %d records, want %d", n, len(names)*1000)
	}
}

func keys(m map[string]*ledger.Entry) []string {
	var out []string
	for k := range m {
		out = append(out, fmt.Sprintf("%q", k))
	}
	return out
}

func entryByName(e *env, name string) (*ledger.Entry, bool) {
	var out *ledger.Entry
	e.ledger.List(func(x *ledger.Entry) bool {
		if x.Name == name {
			out = x
		}
		return true
	})
	return out, out != nil
}

func finishedByName(e *env, name string) *ledger.Entry {
	if x, ok := entryByName(e, name); ok && x.Finished {
		return x
	}
	return nil
}

// One hostile drop cannot make its ledger entry large: a header with
// 20,000 columns Zuora does not take becomes one clipped warning.
func TestHostileDropKeepsEntrySmall(t *testing.T) {
	e := start(t)
	var b strings.Builder
	b.WriteString("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION")
	for i := range 20000 {
		fmt.Fprintf(&b, ",extra column number %05d", i)
	}
	b.WriteString("\r\nA00000001,API Calls,1,03/13/2026,,A-S00000001,,one" + strings.Repeat(",", 20000) + "\r\n")
	e.dropBytes("wide.csv", []byte(b.String()))
	x := e.waitFinished(1)["wide.csv"]
	j, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wide.csv: %s, entry %d bytes of JSON for a %d-byte header", x.State, len(j), b.Len())
	if len(j) > 16<<10 {
		t.Fatalf("the entry of one wide file is %d bytes", len(j))
	}
}

// A drop the daemon died claiming is resumed alone at the next start, and
// a later file under the same name is still taken.
func TestSuspectResumedThenSameNameTaken(t *testing.T) {
	e := start(t)
	e.stop()
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	e.dropBytes("again.csv", b)
	sc := config.DefaultConfig().Sources[0]
	sc.Path = e.dropDir
	src, err := BuildSource(sc, "test", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := src.Src.List(context.Background())
	if err != nil || len(objs) != 1 {
		t.Fatalf("list: %v, %v", objs, err)
	}
	led, err := ledger.Open(filepath.Join(e.dir, "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := objs[0]
	x, err := led.Create(o.Source, o.Name, o.Key, o.Size, o.ETag, false)
	if err == nil {
		_, err = led.Begin(x.ID, ledger.StepClaim) // and then the daemon died
	}
	led.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	first := e.waitFinished(1)["again.csv"]
	if first.State != ledger.Done || first.ID != x.ID {
		t.Fatalf("the suspect: %s %s (id %s, want %s)", first.State, first.LastError, first.ID, x.ID)
	}
	e.dropBytes("again.csv", []byte(strings.Replace(string(b), "Line one", "Line one again", 1)))
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := 0
		e.ledger.List(func(y *ledger.Entry) bool {
			if y.Name == "again.csv" && y.Finished && y.State == ledger.Done {
				n++
			}
			return true
		})
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second again.csv was never taken (%d done)", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A file over max_file_size goes to failed/ whole, with the sentence that
// names the cap, and nothing reaches Zuora or stays in the spool.
func TestFileOverMaxFileSize(t *testing.T) {
	e := start(t)
	e.stop()
	e.caps = convert.Caps{MaxFileSize: 10 << 10}
	e.run()
	b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), "partner-template.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) <= 10<<10 {
		t.Fatalf("fixture of %d bytes is not over the test's cap", len(b))
	}
	e.dropBytes("big.csv", b)
	got := e.waitFinished(1)["big.csv"]
	if got.State != ledger.Failed || !strings.Contains(got.LastError, "larger than the 10 KB usagedrop accepts; split it") {
		t.Fatalf("big.csv: %s %q", got.State, got.LastError)
	}
	kept, err := os.ReadFile(filepath.Join(e.dropDir, "failed", "big.csv"))
	if err != nil || string(kept) != string(b) {
		t.Fatalf("big.csv not kept byte for byte in failed/: %v", err)
	}
	assertFile(t, filepath.Join(e.dropDir, "failed", "big.csv.status.txt"), "Not imported. Nothing was sent to Zuora.", "split it into smaller files")
	if n := len(e.sim.Records()); n != 0 {
		t.Fatalf("%d records reached zuora", n)
	}
}
