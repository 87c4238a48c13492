package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/config"
	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/uploader"
	"usagedrop/zuorasim"
)

// settingWords are config keys; a finance user's report never holds one.
var settingWords = []string{"decimal_comma", "date_format", "columns:", "encoding:", "max_", "limits.", "zuora.", "usagedrop check"}

// syncBuffer is a log sink the pipeline's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// userDrops runs a real pipeline over a local folder whose source writes
// decimal points (decimal_comma: no), in zone, drops files into it and
// returns the finished entries by name, with the daemon's log.
func userDrops(t *testing.T, zone *time.Location, files map[string][]byte) (dropDir string, got map[string]*ledger.Entry, log string) {
	t.Helper()
	dir := t.TempDir()
	dropDir = filepath.Join(dir, "drop")
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: 10 * time.Millisecond})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	var logs syncBuffer
	lg := slog.New(slog.NewTextHandler(&logs, nil))
	sc := config.DefaultConfig().Sources[0]
	sc.Path, sc.Settle, sc.DecimalComma = dropDir, config.Duration(50*time.Millisecond), "no"
	src, err := BuildSource(sc, "test", lg)
	if err != nil {
		t.Fatal(err)
	}
	src.Watch.Interval = 100 * time.Millisecond
	c := uploader.NewClient(uploader.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret", Logger: lg,
		BackoffBase: 10 * time.Millisecond, BackoffCap: 100 * time.Millisecond})
	p := New(Options{
		Ledger: led, Uploader: uploader.NewFileImport(c), Sources: []Source{src}, Spool: filepath.Join(dir, "spool"),
		Instance: "test", Template: Template(config.DefaultConfig().Zuora), Workers: 2, Logger: lg,
		PollMax: 100 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, TimeZone: zone,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dropDir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = map[string]*ledger.Entry{}
		err := led.List(func(x *ledger.Entry) bool {
			if x.Finished {
				got[x.Name] = x
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == len(files) {
			return dropDir, got, logs.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d drops finished; log:\n%s", len(got), len(files), logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// manyProblems is a usage file of n rows, every one of them with a
// quantity that is not a number.
func manyProblems(n int) []byte {
	var b strings.Builder
	b.WriteString("Account Number,Unit,Quantity,Start Date\n")
	for i := range n {
		fmt.Fprintf(&b, "A%05d,GB,lots,03/%02d/2026\n", i, i%28+1)
	}
	return []byte(b.String())
}

// TestReportsFinanceUserReads drops real files through the daemon and holds
// what lands beside them to what a finance user must read: a verdict
// first, their column names beside Zuora's, the format wanted with an
// example, true counts on which status.txt and errors.csv agree, times in
// the configured zone; and no setting, which goes to the log and the
// ledger's note instead.
func TestReportsFinanceUserReads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon")
	}
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(testutil.Fixtures(t), name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	dropDir, got, log := userDrops(t, paris, map[string][]byte{
		"bad-rows.csv":         fixture("bad-rows.csv"),
		"eu-export.csv":        fixture("eu-export.csv"),
		"many.csv":             manyProblems(223),
		"partner-template.csv": fixture("partner-template.csv"),
	})
	tests := []struct {
		name    string
		verdict string   // status.txt's first line
		status  []string // said in status.txt
		column  string   // errors.csv's column cell, first problem
		listed  int      // problems errors.csv lists
		closing string   // its closing row, when it cannot list all
		hint    string   // in the ledger's note and the log, never in a report
	}{
		{"bad-rows.csv", "Not imported: 4 problems need fixing. Nothing was sent to Zuora.", []string{
			"All 4 are listed in the .errors.csv file beside this one",
			"  line 8, UOM: The UOM is missing; every row needs its unit of measure, as Zuora names it (e.g. GB)\n",
			`  line 13, STARTDATE: The STARTDATE format is invalid; write dates as 03/26/2026 (month, day, year) (you wrote "13/45/2026")`,
			`  line 21, QTY: The QTY is not a number; write quantities as 1250 or 12.5, without thousands separators (you wrote "twelve")`,
			"  line 31, ACCOUNT_ID: The ACCOUNT_ID is too long: at most 50 characters (this one has 51)",
		}, "UOM", 4, "", ""},
		{"eu-export.csv", "Not imported: 92 problems need fixing. Nothing was sent to Zuora.", []string{
			"All 92 are listed in the .errors.csv file beside this one",
			`  line 2, Quantity (QTY): The QTY is not a plain number; write quantities as 1250 or 12.5, without thousands separators, or ask your usagedrop administrator to accept decimal commas (you wrote "3,125")`,
			"The first 10 problems:",
			"  ... and 82 more in the .errors.csv file beside this one",
		}, "Quantity (QTY)", 92, "", "set decimal_comma: yes"},
		{"many.csv", "Not imported: 223 problems need fixing. Nothing was sent to Zuora.", []string{
			"The first 100 of 223 problems are listed in the .errors.csv file beside this one",
			`  line 2, Quantity (QTY): The QTY is not a number; write quantities as 1250 or 12.5, without thousands separators (you wrote "lots")`,
		}, "Quantity (QTY)", 100, "Only the first 100 of 223 problems are listed. Fix them and drop the whole file again to see the rest.", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := got[tt.name]
			if x == nil || x.State != ledger.Rejected {
				t.Fatalf("entry %+v, want rejected", x)
			}
			status, err := os.ReadFile(filepath.Join(dropDir, "failed", tt.name+".status.txt"))
			if err != nil {
				t.Fatal(err)
			}
			errs, err := os.ReadFile(filepath.Join(dropDir, "failed", tt.name+".errors.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if first, _, _ := strings.Cut(string(status), "\n"); first != tt.verdict {
				t.Errorf("verdict %q, want %q", first, tt.verdict)
			}
			for _, want := range append(tt.status, "\nDropped: "+x.Created.In(paris).Format("2 Jan 2006 15:04 MST")+"\n", "File: "+tt.name+"\n") {
				if !strings.Contains(string(status), want) {
					t.Errorf("status.txt does not say %q:\n%s", want, status)
				}
			}
			if !strings.Contains(string(status), " "+x.Created.In(paris).Format("MST")+"\n") || paris.String() == "UTC" {
				t.Errorf("status.txt's times are not in the configured zone:\n%s", status)
			}
			rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(errs, []byte("\ufeff")))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			listed := len(rows) - 1
			if tt.closing != "" {
				listed--
				if last := rows[len(rows)-1][5]; last != tt.closing {
					t.Errorf("errors.csv closes with %q, want %q", last, tt.closing)
				}
			}
			if listed != tt.listed || rows[1][3] != tt.column {
				t.Errorf("errors.csv lists %d problems, the first in column %q; want %d in %q", listed, rows[1][3], tt.listed, tt.column)
			}
			for _, w := range settingWords {
				if strings.Contains(string(status), w) || strings.Contains(string(errs), w) {
					t.Errorf("a report names the setting %q:\n%s", w, status)
				}
			}
			if tt.hint != "" {
				note := ""
				for _, h := range x.History {
					if strings.HasPrefix(h.Note, "rejected: ") {
						note = h.Note
					}
				}
				if !strings.Contains(note, "for the operator: ") || !strings.Contains(note, tt.hint) {
					t.Errorf("ledger note %q does not carry %q", note, tt.hint)
				}
				if !strings.Contains(log, "level=WARN msg=\"drop rejected; nothing was sent\" id="+x.ID) || !strings.Contains(log, tt.hint) {
					t.Errorf("no WARN with the drop's id and %q:\n%s", tt.hint, log)
				}
			}
		})
	}
	t.Run("imported", func(t *testing.T) {
		x := got["partner-template.csv"]
		if x == nil || x.State != ledger.Done || len(x.Parts) != 1 {
			t.Fatalf("entry %+v, want done in one part", x)
		}
		status, err := os.ReadFile(filepath.Join(dropDir, "imported", "partner-template.csv.status.txt"))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("Imported: 1,000 usage records in Zuora (import %s).\n", x.Parts[0].ImportID)
		if !strings.HasPrefix(string(status), want) {
			t.Errorf("status.txt:\n%s\nwant it to start %q", status, want)
		}
	})
}

// TestReportVerdicts holds the first line of status.txt, the one a finance
// user reads first, to each way a drop ends.
func TestReportVerdicts(t *testing.T) {
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	p := New(Options{Ledger: led, Spool: filepath.Join(dir, "spool")})
	done := ledger.Part{Name: "p.csv", Records: 1250, State: ledger.PartCompleted, ZuoraStatus: "Completed", ImportID: "2c93808457d787030157e031d86c4c57"}
	failed := ledger.Part{Name: "q.csv", Records: 10, State: ledger.PartFailed, ZuoraStatus: "Failed"}
	tests := []struct {
		name string
		e    ledger.Entry
		want string
	}{
		{"one import", ledger.Entry{State: ledger.Done, Records: 1250, Parts: []ledger.Part{done}},
			"Imported: 1,250 usage records in Zuora (import 2c93808457d787030157e031d86c4c57)."},
		{"several imports", ledger.Entry{State: ledger.Done, Records: 2500, Parts: []ledger.Part{done, done}},
			"Imported: 2,500 usage records in Zuora, in 2 imports (the file was too large for one):"},
		{"object API", ledger.Entry{State: ledger.Done, Records: 3, Parts: []ledger.Part{{ImportID: uploader.ObjectReceiptPrefix + "1:3", State: ledger.PartCompleted}}},
			"Imported: 3 usage records in Zuora, one record at a time through Zuora's object API (which gives no import id)."},
		{"mediation", ledger.Entry{State: ledger.Done, Records: 1234567, Parts: []ledger.Part{{ImportID: "mediation:m:1", State: ledger.PartCompleted}}},
			"Sent to Zuora Mediation: 1,234,567 usage records."},
		{"one problem", ledger.Entry{State: ledger.Rejected, Problems: 1}, "Not imported: 1 problem needs fixing. Nothing was sent to Zuora."},
		{"many problems", ledger.Entry{State: ledger.Rejected, Problems: 1223}, "Not imported: 1,223 problems need fixing. Nothing was sent to Zuora."},
		{"refused before sending", ledger.Entry{State: ledger.Failed, LastError: "the file disappeared"}, "Not imported. Nothing was sent to Zuora."},
		{"refused by Zuora", ledger.Entry{State: ledger.Failed, Parts: []ledger.Part{failed}},
			"Not imported. Nothing from this file is in Zuora: Zuora imports a file whole or not at all."},
		{"some parts imported", ledger.Entry{State: ledger.Failed, Parts: []ledger.Part{done, failed}},
			"Partly imported: 1 of the file's 2 parts are in Zuora and must not be sent again; the others are not."},
		{"duplicate", ledger.Entry{State: ledger.Duplicate, DuplicateOf: "gone"},
			"Not imported again: the same content was already taken."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			e.ID, e.Name, e.Created = "id", "march.csv", time.Now()
			got := p.statusText(&e, "", 0)
			if first, _, _ := strings.Cut(got, "\n"); first != tt.want {
				t.Errorf("verdict %q, want %q\n%s", first, tt.want, got)
			}
		})
	}
}

func TestReportTimes(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	winter := time.Date(2026, 12, 1, 13, 5, 0, 0, time.UTC)
	tests := []struct {
		zone *time.Location
		t    time.Time
		want string
	}{
		{nil, winter, "1 Dec 2026 13:05 UTC"},
		{paris, winter, "1 Dec 2026 14:05 CET"},
		{paris, time.Date(2026, 7, 14, 8, 0, 0, 0, time.UTC), "14 Jul 2026 10:00 CEST"},
	}
	for _, tt := range tests {
		p := New(Options{TimeZone: tt.zone})
		if got := p.when(tt.t); got != tt.want {
			t.Errorf("when(%v) in %v = %q, want %q", tt.t, tt.zone, got, tt.want)
		}
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1250: "1,250", 1234567: "1,234,567", -1250: "-1,250"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
