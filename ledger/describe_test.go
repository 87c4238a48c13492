package ledger

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"usagedrop/uploader"
)

func TestDescribe(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	now := time.Date(2026, 12, 1, 14, 10, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name string
		e    Entry
		loc  *time.Location
		want string
	}{
		{"discovered", Entry{State: Discovered}, nil, "found; being taken from the drop folder"},
		{"fetched", Entry{State: Fetched}, nil, "converting"},
		{"converted", Entry{State: Converted, Records: 1250}, nil, "converted 1,250 rows; sending to Zuora"},
		{"waiting", Entry{State: Converted, WaitingFor: "Zuora", WaitingSince: at(14, 2), Attempts: 2, NextTry: at(14, 5)},
			nil, "waiting for Zuora since 14:02 UTC — try 3 at 14:05 UTC"},
		{"waiting in berlin", Entry{State: Uploading, WaitingFor: "Zuora", WaitingSince: at(14, 2), Attempts: 2, NextTry: at(14, 5)},
			berlin, "waiting for Zuora since 15:02 CET — try 3 at 15:05 CET"},
		{"waiting since yesterday", Entry{State: Converted, WaitingFor: "the drop folder", WaitingSince: at(14, 2).AddDate(0, 0, -1)},
			nil, "waiting for the drop folder since 2026-11-30 14:02 UTC"},
		{"retrying", Entry{State: Fetched, Attempts: 1, LastError: "disk", NextTry: at(14, 11)},
			nil, "converting — the last try failed — try 2 at 14:11 UTC"},
		{"uploading", Entry{State: Uploading, Parts: []Part{{State: PartCompleted}, {State: PartAccepted, ZuoraStatus: "Processing"}}},
			nil, "sending to Zuora: 1 of 2 parts done — Zuora says Processing"},
		{"imported", Entry{State: Done, Finished: true, Records: 1250, Parts: []Part{{State: PartCompleted, ImportID: "2c93808457d787030157e0324ffd0a5b", Imported: 1250}}},
			nil, "imported 1,250 rows (import 2c93808457d787030157e0324ffd0a5b)"},
		{"imported in parts", Entry{State: Done, Finished: true, Records: 3, Parts: []Part{{State: PartCompleted, ImportID: "a"}, {State: PartCompleted, ImportID: "b"}}},
			nil, "imported 3 rows (2 imports: a, b)"},
		{"imported one by one", Entry{State: Done, Finished: true, Records: 1, Parts: []Part{{State: PartCompleted, ImportID: uploader.ObjectReceiptPrefix + "1:0"}}},
			nil, "imported 1 row (one record at a time)"},
		{"imported, not yet moved", Entry{State: Done, Records: 1000000}, nil, "imported 1,000,000 rows — being moved to imported/"},
		{"rejected", Entry{State: Rejected, Finished: true, Problems: 223}, nil, "rejected: 223 problems"},
		{"rejected once", Entry{State: Rejected, Finished: true, Problems: 1}, nil, "rejected: 1 problem"},
		{"rejected, not yet moved", Entry{State: Rejected, Problems: 2}, nil, "rejected: 2 problems — being moved to failed/ with its report"},
		{"set aside", Entry{State: Failed, Finished: true, LastError: "this file stopped the service 3 times while being converted; it was set aside"},
			nil, "set aside: stopped the service 3 times while being converted"},
		{"failed at zuora", Entry{State: Failed, Finished: true, LastError: "part 1 Failed: bad account", Parts: []Part{{State: PartFailed}}},
			nil, "failed at Zuora: part 1 Failed: bad account"},
		{"failed", Entry{State: Failed, Finished: true, History: []Event{{State: Failed, Note: "too large"}}}, nil, "failed: too large"},
		{"failed without reason", Entry{State: Failed, Finished: true}, nil, "failed: no reason was recorded"},
		{"duplicate", Entry{State: Duplicate, Finished: true, DuplicateOf: "X"}, nil, "duplicate of drop X"},
		{"vanished", Entry{State: Vanished, Finished: true}, nil, "gone: the file went away before it could be taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.describe(tt.loc, now); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1250: "1,250", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestDescribeLedger describes entries the ledger's own transitions made,
// so a change in the words a transition records shows here.
func TestDescribeLedger(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"), Options{NoSync: true, MaxStarts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, _ := l.Create("inbox", "a.csv", "a.csv", 1, "", false)
	for range 3 {
		if e, err = l.Begin(e.ID, StepConvert); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.Describe(time.UTC); !strings.HasPrefix(got, "set aside: stopped the service 2 times while being converted") {
		t.Errorf("set aside by crashes: %q", got)
	}
	w, _ := l.Create("inbox", "b.csv", "b.csv", 1, "", false)
	if _, err := l.Claimed(w.ID, "processing/b.csv", "", 1); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if w, err = l.Retry(w.ID, Failure{Step: StepFetch, Cause: CauseZuora, Err: "refused", Next: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.Describe(time.UTC); !strings.HasPrefix(got, "waiting for Zuora since ") || !strings.Contains(got, " — try 4 at ") {
		t.Errorf("waiting: %q", got)
	}
}
