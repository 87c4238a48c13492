package xlsx

import (
	"path/filepath"
	"testing"
	"time"
)

// TestLibreOfficeWorkbooks reads workbooks LibreOffice saved (see
// testdata/README.md) cell by cell against excelize, and checks what a
// converter relies on: the date system, dates, hidden rows and sheets,
// formula values and grouped numbers.
func TestLibreOfficeWorkbooks(t *testing.T) {
	for _, name := range []string{"libreoffice-usage.xlsx", "libreoffice-usage-1904.xlsx"} {
		t.Run(name, func(t *testing.T) {
			b := readFile(t, filepath.Join("testdata", name))
			sameAsExcelize(t, b)
			wb := openBytes(t, b)
			if want := name == "libreoffice-usage-1904.xlsx"; wb.Date1904() != want {
				t.Errorf("Date1904() = %v, want %v", wb.Date1904(), want)
			}
			if s := wb.Sheets(); len(s) != 2 || s[0].Hidden || !s[1].Hidden || s[1].Name != "Hidden notes" {
				t.Errorf("Sheets() = %v", s)
			}
			rows := readAll(t, wb, "Sheet1")
			byNum := map[int]Row{}
			for _, r := range rows {
				byNum[r.Num] = r
			}
			for i := 0; i < 20; i++ {
				r := byNum[i+4]
				if r.Hidden != (r.Num == 6) {
					t.Errorf("row %d Hidden = %v", r.Num, r.Hidden)
				}
				start := r.Cells[3]
				got, err := start.Time(wb.Date1904())
				if want := time.Date(2026, 3, 1+i, 0, 0, 0, 0, time.UTC); err != nil || !got.Equal(want) || !start.DateStyle {
					t.Errorf("row %d start = %v, %v (DateStyle %v); want %v", r.Num, got, err, start.DateStyle, want)
				}
				if i%2 == 0 {
					end, err := r.Cells[4].Time(wb.Date1904())
					if want := time.Date(2026, 3, 2+i, 12, 0, 0, 0, time.UTC); err != nil || !end.Equal(want) || !r.Cells[4].DateStyle {
						t.Errorf("row %d end = %v, %v; want %v", r.Num, end, err, want)
					}
				}
				qty := r.Cells[2]
				d, err := qty.Decimal()
				want := map[bool]string{true: "0.3", false: plainDecimal(1234.5 + float64(i)*0.125)}[i%5 == 4]
				if err != nil || d != want || qty.DateStyle || qty.Formula != (i%5 == 4) {
					t.Errorf("row %d qty %+v = %q, %v; want %q", r.Num, qty, d, err, want)
				}
				if !r.Cells[5].DateStyle {
					t.Errorf("row %d: [h]:mm is a time format", r.Num)
				}
			}
		})
	}
}
