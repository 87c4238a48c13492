package xlsx

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestLimitErrors: every cap refuses with a LimitError that says where,
// before the memory it guards is spent.
func TestLimitErrors(t *testing.T) {
	cells := func(n int, cell string) string {
		return `<row r="3">` + strings.Repeat(cell, n) + `</row>`
	}
	deep := func(tag string, n int) string {
		return strings.Repeat("<"+tag+">", n) + strings.Repeat("</"+tag+">", n)
	}
	sheetsOf := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `<sheet name="S%d" r:id="rId1"/>`, i)
		}
		return `<workbook xmlns:r="r"><sheets>` + b.String() + `</sheets></workbook>`
	}
	tests := []struct {
		name      string
		wb        rawWorkbook
		lim       Limits
		open      bool   // refused by Open rather than Rows
		part, at  string // the LimitError's part and cell (or "row N")
		reasonHas string
	}{
		{"cells past XFD without r", rawWorkbook{sheets: []string{sheetXML(cells(16385, `<c><v>1</v></c>`))}}, Limits{}, false, "xl/worksheets/sheet1.xml", "row 3", "more than 16384 cells"},
		{"empty cells past XFD", rawWorkbook{sheets: []string{sheetXML(cells(20000, `<c/>`))}}, Limits{}, false, "xl/worksheets/sheet1.xml", "row 3", "past Excel's last column XFD"},
		{"inline cell over 32767 characters", rawWorkbook{sheets: []string{sheetXML(`<row r="3"><c r="B3" t="inlineStr"><is><t>` + strings.Repeat("é", 32768) + `</t></is></c></row>`)}}, Limits{}, false, "xl/worksheets/sheet1.xml", "B3", "32768 characters; Excel's limit is 32767"},
		{"number over the cell limit", rawWorkbook{sheets: []string{sheetXML(`<row r="3"><c r="C3"><v>` + strings.Repeat("9", 40) + `</v></c></row>`)}}, Limits{MaxCellChars: 30}, false, "xl/worksheets/sheet1.xml", "C3", "40 characters"},
		{"shared string over the cell limit", rawWorkbook{sheets: []string{sheetXML(`<row r="4"><c r="D4" t="s"><v>0</v></c></row>`)}, sst: sstXML(`<si><t>` + strings.Repeat("x", 40000) + `</t></si>`)}, Limits{}, false, "xl/worksheets/sheet1.xml", "D4", "40000 characters"},
		{"shared string far over, unread", rawWorkbook{sheets: []string{sheetXML(`<row r="4"><c r="D4" t="s"><v>0</v></c></row>`)}, sst: sstXML(`<si><t>` + strings.Repeat("x", 200000) + `</t></si>`)}, Limits{}, false, "xl/worksheets/sheet1.xml", "D4", "more than 131068 characters"},
		{"row text", rawWorkbook{sheets: []string{sheetXML(cells(100, `<c t="inlineStr"><is><t>`+strings.Repeat("x", 1000)+`</t></is></c>`))}}, Limits{MaxRowBytes: 50000}, false, "xl/worksheets/sheet1.xml", "row 3", "more than 50000 bytes of text"},
		{"element size in a sheet", rawWorkbook{sheets: []string{sheetXML(`<row r="3"><c r="A3"><f>` + strings.Repeat("1+", 1<<20) + `1</f></c></row>`)}}, Limits{MaxElement: 1 << 20}, false, "xl/worksheets/sheet1.xml", "row 3", "longer than 1048576 bytes"},
		{"depth in a sheet before its data", rawWorkbook{sheets: []string{`<worksheet>` + deep("x", 100) + `<sheetData/></worksheet>`}}, Limits{}, false, "xl/worksheets/sheet1.xml", "", "more than 64 deep"},
		{"depth in a row", rawWorkbook{sheets: []string{sheetXML(`<row r="3">` + deep("x", 100) + `</row>`)}}, Limits{}, false, "xl/worksheets/sheet1.xml", "row 3", "more than 64 deep"},
		{"depth in a cell", rawWorkbook{sheets: []string{sheetXML(`<row r="3"><c r="A3">` + deep("x", 100) + `</c></row>`)}}, Limits{}, false, "xl/worksheets/sheet1.xml", "row 3", "more than 64 deep"},
		{"depth in an inline string", rawWorkbook{sheets: []string{sheetXML(`<row r="3"><c r="A3" t="inlineStr"><is>` + deep("r", 100) + `</is></c></row>`)}}, Limits{}, false, "xl/worksheets/sheet1.xml", "row 3", "more than 64 deep"},
		{"depth in the workbook", rawWorkbook{sheets: []string{sheetXML("")}, extra: map[string]string{}}, Limits{MaxDepth: 1}, true, "xl/workbook.xml", "", "more than 1 deep"},
		{"depth in shared strings", rawWorkbook{sheets: []string{sheetXML("")}, sst: sstXML(`<si>` + deep("r", 100) + `</si>`)}, Limits{}, true, "", "", "more than 64 deep"},
		{"depth between shared strings", rawWorkbook{sheets: []string{sheetXML("")}, sst: sstXML(deep("x", 100))}, Limits{}, true, "xl/sharedStrings.xml", "", "more than 64 deep"},
		{"depth in styles", rawWorkbook{sheets: []string{sheetXML("")}, styles: `<styleSheet>` + deep("x", 100) + `</styleSheet>`}, Limits{}, true, "xl/styles.xml", "", "more than 64 deep"},
		{"cell formats", rawWorkbook{sheets: []string{sheetXML("")}, styles: `<styleSheet><cellXfs>` + strings.Repeat(`<xf numFmtId="14"/>`, 101) + `</cellXfs></styleSheet>`}, Limits{MaxStyles: 100}, true, "xl/styles.xml", "", "more than 100 cell formats"},
		{"number formats", rawWorkbook{sheets: []string{sheetXML("")}, styles: `<styleSheet><numFmts>` + strings.Repeat(`<numFmt numFmtId="164" formatCode="d"/>`, 1) + `<numFmt numFmtId="165" formatCode="d"/></numFmts></styleSheet>`}, Limits{MaxStyles: 1}, true, "xl/styles.xml", "", "more than 1 number formats"},
		{"element size in styles", rawWorkbook{sheets: []string{sheetXML("")}, styles: `<styleSheet><numFmts><numFmt numFmtId="164" formatCode="` + strings.Repeat("0", 1<<20) + `"/></numFmts></styleSheet>`}, Limits{MaxElement: 1 << 19}, true, "xl/styles.xml", "", "longer than 524288 bytes"},
		{"parts", rawWorkbook{sheets: []string{sheetXML("")}, extra: map[string]string{"a": "", "b": "", "c": ""}}, Limits{MaxParts: 6}, true, "", "", "holds 8 parts; the limit is 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.wb.bytes(t)
			wb, err := OpenLimits(bytes.NewReader(b), int64(len(b)), tt.lim)
			if !tt.open {
				must(t, err)
				defer wb.Close()
				_, err = readRows(wb, "Sheet1")
			}
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want a LimitError", err)
			}
			if le.Part != tt.part {
				t.Errorf("part %q, want %q (%v)", le.Part, tt.part, err)
			}
			at := ""
			switch {
			case le.Row > 0 && le.Col >= 0:
				at = CellName(le.Col, le.Row)
			case le.Row > 0:
				at = "row " + itoa(le.Row)
			}
			if at != tt.at {
				t.Errorf("at %q, want %q (%v)", at, tt.at, err)
			}
			if !strings.Contains(le.Reason, tt.reasonHas) {
				t.Errorf("reason %q, want it to say %q", le.Reason, tt.reasonHas)
			}
			if len(err.Error()) > 1024 {
				t.Errorf("message of %d bytes", len(err.Error()))
			}
		})
	}
	t.Run("zip directory read within a budget", func(t *testing.T) {
		extra := map[string]string{}
		for i := 0; i < 3000; i++ {
			extra[fmt.Sprintf("xl/media/image-with-a-long-name-%05d.png", i)] = ""
		}
		b := rawWorkbook{sheets: []string{sheetXML("")}, extra: extra}.bytes(t)
		_, err := OpenLimits(bytes.NewReader(b), int64(len(b)), Limits{MaxParts: 10})
		var le *LimitError
		if !errors.As(err, &le) || !strings.Contains(le.Reason, "lists more than 10 parts") {
			t.Fatalf("err = %v, want a LimitError on the zip's directory", err)
		}
		if _, err := Open(bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("within the default: %v", err)
		}
	})
	t.Run("sheets", func(t *testing.T) {
		b := rawWorkbook{sheets: []string{sheetXML("")}, extra: map[string]string{}}.bytes(t)
		// Replace the workbook part with one listing 300 sheets.
		b = replacePart(t, b, "xl/workbook.xml", sheetsOf(300))
		_, err := Open(bytes.NewReader(b), int64(len(b)))
		var le *LimitError
		if !errors.As(err, &le) || !strings.Contains(le.Reason, "more than 256 sheets") {
			t.Fatalf("err = %v, want a LimitError on sheets", err)
		}
	})
}

// TestWithinLimits: the edges of the caps are accepted.
func TestWithinLimits(t *testing.T) {
	row := `<row r="3">` + strings.Repeat(`<c><v>1</v></c>`, 16384) + `</row>` +
		`<row r="4"><c r="A4" t="inlineStr"><is><t>` + strings.Repeat("é", 32767) + `</t></is></c></row>`
	b := rawWorkbook{sheets: []string{sheetXML(row)}, styles: `<styleSheet>` + strings.Repeat("<a>", 60) + strings.Repeat("</a>", 60) + `</styleSheet>`}.bytes(t)
	rows := readAll(t, openBytes(t, b), "Sheet1")
	if len(rows) != 2 || len(rows[0].Cells) != 16384 || len([]rune(rows[1].Cells[0].Value)) != 32767 {
		t.Fatalf("rows %d, cells %d", len(rows), len(rows[0].Cells))
	}
}

func replacePart(t testing.TB, b []byte, name, body string) []byte {
	t.Helper()
	rw := rawWorkbook{extra: map[string]string{}}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	must(t, err)
	for _, f := range zr.File {
		if f.Name == name {
			rw.extra[name] = body
			continue
		}
		rc, err := f.Open()
		must(t, err)
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		must(t, err)
		rw.extra[f.Name] = buf.String()
	}
	return rw.bytesNoWorkbook(t)
}

// spillBook is a workbook whose n shared strings are all unique, in the
// forms producers write (plain, rich runs, phonetic runs, escapes,
// multibyte, empty), and whose sheet uses them out of order and twice.
func spillBook(t *testing.T, n int) []byte {
	var items []string
	for i := 0; i < n; i++ {
		switch i % 5 {
		case 0:
			items = append(items, fmt.Sprintf(`<si><t>plain %d</t></si>`, i))
		case 1:
			items = append(items, fmt.Sprintf(`<si><r><t>rich </t></r><r><rPr><b/></rPr><t>%d &amp; more</t></r><rPh><t>ignored</t></rPh></si>`, i))
		case 2:
			items = append(items, fmt.Sprintf(`<si><t>東京 %d _x0041_</t></si>`, i))
		case 3:
			items = append(items, `<si><t/></si>`)
		case 4:
			items = append(items, fmt.Sprintf(`<si><t>%s%d</t></si>`, strings.Repeat("long ", 20000/n+i%300), i))
		}
	}
	var rows strings.Builder
	for r := 0; r < n; r++ {
		a, c := (r*7919)%n, n-1-r
		fmt.Fprintf(&rows, `<row r="%d"><c t="s"><v>%d</v></c><c t="s"><v>%d</v></c><c t="s"><v>%d</v></c></row>`, r+1, a, c, r)
	}
	return rawWorkbook{sheets: []string{sheetXML(rows.String())}, sst: sstXML(items...)}.bytes(t)
}

// TestSharedStringsSpill: a table past SharedInMemory reads the same from
// disk as from memory, leaves no file behind, and serves concurrent Rows.
func TestSharedStringsSpill(t *testing.T) {
	b := spillBook(t, 5000)
	want := readAll(t, openBytes(t, b), "Sheet1")
	dir := t.TempDir()
	for _, mem := range []int64{1, 4096, 200_000} {
		t.Run(fmt.Sprint(mem), func(t *testing.T) {
			wb, err := OpenLimits(bytes.NewReader(b), int64(len(b)), Limits{SharedInMemory: mem, TempDir: dir})
			must(t, err)
			defer wb.Close()
			if wb.sst.disk == nil {
				t.Fatal("the table did not move to disk")
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("files left in the temp dir: %v", left)
			}
			var wg sync.WaitGroup
			for g := 0; g < 3; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := readRows(wb, "Sheet1")
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) != len(want) {
						t.Errorf("%d rows, want %d", len(got), len(want))
						return
					}
					for i := range got {
						for j := range got[i].Cells {
							if got[i].Cells[j] != want[i].Cells[j] {
								t.Errorf("row %d cell %d = %+v, want %+v", i+1, j, got[i].Cells[j], want[i].Cells[j])
								return
							}
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// TestSpillTempDirFault: a temp dir that cannot be written is ErrTemp, a
// fault of the machine, never a LimitError of the workbook.
func TestSpillTempDirFault(t *testing.T) {
	b := spillBook(t, 500)
	_, err := OpenLimits(bytes.NewReader(b), int64(len(b)), Limits{SharedInMemory: 1, TempDir: t.TempDir() + "/missing"})
	if !errors.Is(err, ErrTemp) || errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTemp", err)
	}
}

// TestCloseThenRead: rows of a closed workbook end in an error, not a
// panic.
func TestCloseThenRead(t *testing.T) {
	b := spillBook(t, 200)
	wb, err := OpenLimits(bytes.NewReader(b), int64(len(b)), Limits{SharedInMemory: 1, TempDir: t.TempDir()})
	must(t, err)
	must(t, wb.Close())
	must(t, wb.Close())
	rs, err := wb.Rows(context.Background(), "Sheet1")
	must(t, err)
	defer rs.Close()
	for rs.Next() {
	}
	if rs.Err() == nil {
		t.Fatal("rows of a closed workbook read without error")
	}
}
