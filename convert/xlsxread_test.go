package convert

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// book is a workbook a test builds with excelize, a second producer next to
// the LibreOffice-made fixtures.
type book struct {
	date1904 bool
	notes    bool // a first sheet of notes with no header
	hide     int  // a row to hide
	decoy    bool // a hidden first sheet with a usage header of its own
	rows     [][]any
}

func (b book) bytes(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	if b.date1904 {
		on := true
		if err := f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &on}); err != nil {
			t.Fatal(err)
		}
	}
	sheet := "Sheet1"
	if b.decoy {
		f.SetSheetRow(sheet, "A1", &[]any{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE"})
		f.SetSheetRow(sheet, "A2", &[]any{"HIDDEN", "GB", 1, "2026-03-01"})
		sheet = "Usage"
		if _, err := f.NewSheet(sheet); err != nil {
			t.Fatal(err)
		}
		f.SetActiveSheet(1)
		if err := f.SetSheetVisible("Sheet1", false); err != nil {
			t.Fatal(err)
		}
	}
	if b.notes {
		f.SetCellValue(sheet, "A1", "These are notes, not usage")
		sheet = "Usage"
		if _, err := f.NewSheet(sheet); err != nil {
			t.Fatal(err)
		}
	}
	dateStyle, _ := f.NewStyle(&excelize.Style{NumFmt: 14})
	groupStyle, _ := f.NewStyle(&excelize.Style{NumFmt: 4}) // #,##0.00
	for i, row := range b.rows {
		for j, v := range row {
			ref, _ := excelize.CoordinatesToCellName(j+1, i+1)
			switch v := v.(type) {
			case time.Time:
				f.SetCellValue(sheet, ref, v)
				f.SetCellStyle(sheet, ref, ref, dateStyle)
			case float64:
				f.SetCellValue(sheet, ref, v)
				f.SetCellStyle(sheet, ref, ref, groupStyle)
			default:
				f.SetCellValue(sheet, ref, v)
			}
		}
	}
	if b.hide > 0 {
		f.SetRowVisible(sheet, b.hide, false)
	}
	var out bytes.Buffer
	if _, err := f.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestReadWorkbook(t *testing.T) {
	march := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }
	hdr := []any{"Account Number", "Unit of Measure", "Quantity", "Usage Date", "Notes"}
	tests := []struct {
		name  string
		book  book
		opt   Options
		want  []Record
		fault string // "line:COLUMN" of the first problem
	}{
		{"1904 dates, grouped numbers, title rows", book{date1904: true, rows: [][]any{
			{"March usage"}, {}, hdr,
			{"A1", "GB", 1234567.5, march(14), "x"},
			{"A2", "GB", 0.1 + 0.2, march(1)},
		}}, Options{}, []Record{
			{Account: "A1", UOM: "GB", Qty: "1234567.5", Start: "2026-03-14"},
			{Account: "A2", UOM: "GB", Qty: "0.3", Start: "2026-03-01"},
		}, ""},
		{"hidden row is data, sheet chosen by header", book{notes: true, hide: 3, rows: [][]any{
			hdr, {"A1", "GB", 2, march(2)}, {"A3", "GB", 3, march(3)},
		}}, Options{}, []Record{
			{Account: "A1", UOM: "GB", Qty: "2", Start: "2026-03-02"},
			{Account: "A3", UOM: "GB", Qty: "3", Start: "2026-03-03"},
		}, ""},
		{"visible sheet before a hidden one", book{decoy: true, rows: [][]any{
			hdr, {"A1", "GB", 2, march(2)},
		}}, Options{}, []Record{
			{Account: "A1", UOM: "GB", Qty: "2", Start: "2026-03-02"},
		}, ""},
		{"text dates inferred", book{rows: [][]any{
			hdr, {"A1", "GB", "2", "14/03/2026"}, {"A1", "GB", "2", "01/03/2026"},
		}}, Options{}, []Record{
			{Account: "A1", UOM: "GB", Qty: "2", Start: "2026-03-14"},
			{Account: "A1", UOM: "GB", Qty: "2", Start: "2026-03-01"},
		}, ""},
		{"totals row is a bad row", book{rows: [][]any{
			hdr, {"A1", "GB", 2, march(2)}, {"Total", nil, 2},
		}}, Options{}, nil, "3:UOM"},
		{"named sheet missing", book{rows: [][]any{hdr}}, Options{Sheet: "Nope"}, nil, "0:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sum := readFile(t, writeTemp(t, "usage.xlsx", tt.book.bytes(t)), tt.opt)
			if tt.fault != "" {
				if !sum.Rejected() {
					t.Fatal("not rejected")
				}
				p := sum.Problems[0]
				if got := itoa(p.Line) + ":" + p.Column; got != tt.fault {
					t.Fatalf("first problem %+v, want %s", p, tt.fault)
				}
				return
			}
			if sum.Rejected() {
				t.Fatalf("rejected: %+v", sum.Problems)
			}
			if len(recs) != len(tt.want) {
				t.Fatalf("records %+v, want %+v", recs, tt.want)
			}
			for i := range recs {
				if recs[i] != tt.want[i] {
					t.Errorf("record %d = %+v, want %+v", i, recs[i], tt.want[i])
				}
			}
			if len(tt.want) > 0 && strings.Join(sum.Ignored, ",") != "Notes" {
				t.Errorf("ignored %v, want Notes", sum.Ignored)
			}
		})
	}
}

func TestReadWorkbookInZip(t *testing.T) {
	b := book{rows: [][]any{{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE"}, {"A1", "GB", 1.5, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}}}.bytes(t)
	for _, store := range []bool{true, false} {
		z := buildZip(t, zipEntry{name: "in/usage.xlsx", data: b, store: store}, zipEntry{name: "more.csv", data: []byte(tmplHeader + "A2,GB,1,2026-03-01,,,,\n")})
		recs, sum := readFile(t, writeTemp(t, "drop.zip", z), Options{})
		if sum.Rejected() || len(recs) != 2 || recs[0].Qty != "1.5" || recs[0].Start != "2026-03-02" {
			t.Fatalf("store=%v: records %+v, problems %+v", store, recs, sum.Problems)
		}
	}
}

// A read cut short by shutdown is an error to retry, never a rejection of
// a good workbook.
func TestCancelledWorkbookReadIsNotARejection(t *testing.T) {
	p := copyFixture(t, "finance-team-march.xlsx")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	sum, err := Read(ctx, "finance-team-march.xlsx", f, fi.Size(), Options{}, func(Record) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || sum.Rejected() {
		t.Fatalf("err %v, rejected %v (%+v); want context.Canceled and no rejection", err, sum.Rejected(), sum.Problems)
	}
}
