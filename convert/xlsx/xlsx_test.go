package xlsx

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

func TestFinanceFixtureMatchesExcelize(t *testing.T) {
	b := readFile(t, fixture(t, "finance-team-march.xlsx"))
	sameAsExcelize(t, b)

	wb := openBytes(t, b)
	want := []Sheet{{Name: "Usage"}, {Name: "Notes"}}
	if got := wb.Sheets(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Sheets() = %v, want %v", got, want)
	}
	if wb.Date1904() {
		t.Error("Date1904() = true for a 1900 workbook")
	}
	rows := readAll(t, wb, "Usage")
	if rows[0].Num != 1 || rows[1].Num != 3 {
		t.Fatalf("first rows are %d, %d; want the title at 1 and the header at 3", rows[0].Num, rows[1].Num)
	}
	formulas := 0
	for _, r := range rows[2:] {
		start := r.Cells[3]
		if start.Kind != Number || !start.DateStyle {
			t.Fatalf("row %d: start date cell %+v is not a date-styled number", r.Num, start)
		}
		if d, err := start.Time(false); err != nil || d.Year() != 2026 || d.Month() != time.March {
			t.Errorf("row %d: start %q is %v, %v; want a day of March 2026", r.Num, start.Value, d, err)
		}
		if q := r.Cells[2]; q.DateStyle || q.Kind != Number {
			t.Errorf("row %d: quantity %+v should be a plain number", r.Num, q)
		}
		if r.Cells[2].Formula {
			formulas++
		}
	}
	if formulas == 0 {
		t.Error("no formula quantities found; the fixture has one in every five rows")
	}
}

func TestTruncatedFixture(t *testing.T) {
	b := readFile(t, fixture(t, "truncated.xlsx"))
	if err := readWhole(b); err == nil {
		t.Fatal("a truncated workbook read without error")
	}
}

// readWhole opens a workbook and reads all its sheets, returning the
// first error.
func readWhole(b []byte) error {
	wb, err := Open(bytesReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	for _, s := range wb.Sheets() {
		if _, err := readRows(wb, s.Name); err != nil {
			return err
		}
	}
	return nil
}

func TestExcelizeWorkbooks(t *testing.T) {
	tests := []struct {
		name  string
		build func(t *testing.T, f *excelize.File)
		check func(t *testing.T, wb *Workbook, rows []Row)
	}{
		{"1904 dates", build1904, func(t *testing.T, wb *Workbook, rows []Row) {
			if !wb.Date1904() {
				t.Fatal("Date1904() = false")
			}
			c := rows[0].Cells[0]
			got, err := c.Time(wb.Date1904())
			if want := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC); err != nil || !got.Equal(want) || !c.DateStyle {
				t.Errorf("Time = %v, %v (DateStyle %v); want %v", got, err, c.DateStyle, want)
			}
		}},
		{"hidden rows", buildHidden, func(t *testing.T, wb *Workbook, rows []Row) {
			for _, r := range rows {
				if want := r.Num == 2; r.Hidden != want {
					t.Errorf("row %d Hidden = %v, want %v", r.Num, r.Hidden, want)
				}
			}
		}},
		{"shared strings, grouped numbers, custom dates, sparse", buildMixed, func(t *testing.T, wb *Workbook, rows []Row) {
			r := rows[0]
			if len(r.Cells) != 10 || r.Cells[9].Value != "far" || r.Cells[1].Kind != Empty {
				t.Fatalf("sparse row = %+v", r.Cells)
			}
			if d, err := rows[1].Cells[0].Decimal(); err != nil || d != "1234567.5" || rows[1].Cells[0].DateStyle {
				t.Errorf("grouped number: %q, %v, DateStyle %v", d, err, rows[1].Cells[0].DateStyle)
			}
			for i, c := range rows[2].Cells {
				if !c.DateStyle {
					t.Errorf("custom date format in column %d not seen as a date", i)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := excelize.NewFile()
			defer f.Close()
			tt.build(t, f)
			b := saveExcelize(t, f)
			sameAsExcelize(t, b)
			wb := openBytes(t, b)
			tt.check(t, wb, readAll(t, wb, "Sheet1"))
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func build1904(t *testing.T, f *excelize.File) {
	yes := true
	must(t, f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &yes}))
	style, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	must(t, err)
	// 2026-03-05 in the 1904 system: 1462 days fewer than in 1900's.
	must(t, f.SetCellValue("Sheet1", "A1", 46086-1462))
	must(t, f.SetCellStyle("Sheet1", "A1", "A1", style))
}

func buildHidden(t *testing.T, f *excelize.File) {
	for r := 1; r <= 3; r++ {
		must(t, f.SetCellValue("Sheet1", CellName(0, r), r))
	}
	must(t, f.SetRowVisible("Sheet1", 2, false))
}

func buildMixed(t *testing.T, f *excelize.File) {
	must(t, f.SetCellValue("Sheet1", "A1", "near"))
	must(t, f.SetCellValue("Sheet1", "J1", "far"))
	grouped, err := f.NewStyle(&excelize.Style{NumFmt: 4}) // #,##0.00
	must(t, err)
	must(t, f.SetCellValue("Sheet1", "A2", 1234567.5))
	must(t, f.SetCellStyle("Sheet1", "A2", "A2", grouped))
	for i, code := range []string{"dd/mm/yyyy", `[$-409]d\-mmm\-yy;@`, "[h]:mm:ss", `yyyy"年"m"月"`} {
		s, err := f.NewStyle(&excelize.Style{CustomNumFmt: &code})
		must(t, err)
		cell := CellName(i, 3)
		must(t, f.SetCellValue("Sheet1", cell, 46086.5))
		must(t, f.SetCellStyle("Sheet1", cell, cell, s))
	}
	must(t, f.SetCellValue("Sheet1", "A4", true))
	must(t, f.SetCellValue("Sheet1", "B4", "a & b < c"))
	must(t, f.SetCellValue("Sheet1", "C4", 0.1+0.2))
}

func TestStreamWriterFormulasAndInlineStrings(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	must(t, err)
	must(t, sw.SetRow("A1", []any{"Account", "Qty", "Note"}))
	must(t, sw.SetRow("A2", []any{"A-1", excelize.Cell{Formula: "0.1+0.2", Value: 0.30000000000000004}, "x_x0041_y"}))
	must(t, sw.SetRow("B3", []any{nil, excelize.Cell{Formula: "1E+20", Value: 1e20}}))
	must(t, sw.Flush())
	b := saveExcelize(t, f)
	sameAsExcelize(t, b)
	rows := readAll(t, openBytes(t, b), "Sheet1")
	q := rows[1].Cells[1]
	if d, err := q.Decimal(); !q.Formula || err != nil || d != "0.3" {
		t.Errorf("formula cell %+v gives %q, %v; want a formula giving 0.3", q, d, err)
	}
	if rows[1].Cells[0].Kind != String {
		t.Errorf("inline string cell is %v", rows[1].Cells[0].Kind)
	}
	if d, err := rows[2].Cells[2].Decimal(); err != nil || d != "100000000000000000000" {
		t.Errorf("1E+20 gives %q, %v", d, err)
	}
}

func TestRowsErrors(t *testing.T) {
	b := readFile(t, fixture(t, "finance-team-march.xlsx"))
	wb := openBytes(t, b)
	if _, err := wb.Rows(context.Background(), "Nope"); !errors.Is(err, ErrNoSheet) {
		t.Errorf("Rows(Nope) = %v, want ErrNoSheet", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs, err := wb.Rows(ctx, "Usage")
	must(t, err)
	defer rs.Close()
	if !rs.Next() {
		t.Fatal(rs.Err())
	}
	cancel()
	for rs.Next() {
	}
	// The sheet is small enough to be inflated already; cancelling must
	// still never hang, and Close must be idempotent.
	if err := rs.Close(); err != nil {
		t.Error(err)
	}
	if err := rs.Close(); err != nil {
		t.Error(err)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct{ dir, target, want string }{
		{"xl", "worksheets/sheet1.xml", "xl/worksheets/sheet1.xml"},
		{"xl", "/xl/worksheets/sheet1.xml", "xl/worksheets/sheet1.xml"},
		{"xl", "../xl/sharedStrings.xml", "xl/sharedStrings.xml"},
		{"xl", `worksheets\sheet2.xml`, "xl/worksheets/sheet2.xml"},
		{"", "xl/workbook.xml", "xl/workbook.xml"},
		{"xl", "./styles.xml", "xl/styles.xml"},
	}
	for _, tt := range tests {
		if got := resolve(tt.dir, tt.target); got != tt.want {
			t.Errorf("resolve(%q, %q) = %q, want %q", tt.dir, tt.target, got, tt.want)
		}
	}
}

func TestNotAWorkbook(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"not a zip", []byte("ACCOUNT_ID,UOM\r\nA1,GB\r\n"), "not a readable xlsx (zip) file"},
		{"a zip of something else", rawWorkbook{extra: map[string]string{"word/document.xml": "<w/>"}}.bytesNoWorkbook(t), "no xl/workbook.xml"},
		{"no sheets", rawWorkbook{}.bytes(t), "lists no sheets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(bytesReader(tt.b), int64(len(tt.b)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestRowsConcurrently reads two sheets of one workbook at once, in turns,
// as a caller probing one sheet while reading another would.
func TestRowsConcurrently(t *testing.T) {
	rows := func(prefix string) string {
		var b strings.Builder
		for r := 1; r <= 5000; r++ {
			b.WriteString(`<row r="` + itoa(r) + `"><c r="A` + itoa(r) + `" t="inlineStr"><is><t>` + prefix + itoa(r) + `</t></is></c></row>`)
		}
		return sheetXML(b.String())
	}
	wb := openBytes(t, rawWorkbook{sheets: []string{rows("a"), rows("b")}}.bytes(t))
	one, err := wb.Rows(context.Background(), "Sheet1")
	must(t, err)
	defer one.Close()
	two, err := wb.Rows(context.Background(), "Sheet2")
	must(t, err)
	defer two.Close()
	n := 0
	for one.Next() && two.Next() {
		n++
		if a, b := one.Row().Cells[0].Value, two.Row().Cells[0].Value; a != "a"+itoa(n) || b != "b"+itoa(n) {
			t.Fatalf("row %d: %q and %q", n, a, b)
		}
	}
	if n != 5000 || one.Err() != nil || two.Err() != nil {
		t.Fatalf("%d rows in turns; errors %v, %v", n, one.Err(), two.Err())
	}
}
