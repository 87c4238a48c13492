package xlsx

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"usagedrop/internal/testutil"

	"github.com/xuri/excelize/v2"
)

// fixture copies a shared fixture into the test's temp dir: the originals
// are read-only.
func fixture(t testing.TB, name string) string { return testutil.CopyFixture(t, name) }

func openBytes(t testing.TB, b []byte) *Workbook {
	t.Helper()
	wb, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return wb
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every row of a sheet, copying the cells that Next reuses.
func readAll(t testing.TB, wb *Workbook, sheet string) []Row {
	t.Helper()
	rows, err := readRows(wb, sheet)
	if err != nil {
		t.Fatalf("sheet %q: %v", sheet, err)
	}
	return rows
}

func readRows(wb *Workbook, sheet string) ([]Row, error) {
	rs, err := wb.Rows(context.Background(), sheet)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Row
	for rs.Next() {
		r := rs.Row()
		r.Cells = append([]Cell(nil), r.Cells...)
		out = append(out, r)
	}
	return out, rs.Err()
}

// values lays rows out as excelize's GetRows does: one slice per sheet row
// up to the last with a value, trailing empty cells trimmed.
func values(rows []Row) [][]string {
	var out [][]string
	for _, r := range rows {
		var vals []string
		for _, c := range r.Cells {
			vals = append(vals, c.Value)
		}
		for len(vals) > 0 && vals[len(vals)-1] == "" {
			vals = vals[:len(vals)-1]
		}
		if len(vals) == 0 {
			continue
		}
		for len(out) < r.Num-1 {
			out = append(out, nil)
		}
		out = append(out, vals)
	}
	return out
}

// excelizeRows reads a sheet with excelize, raw values, as the reference.
func excelizeRows(t testing.TB, b []byte, sheet string) [][]string {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("excelize open: %v", err)
	}
	defer f.Close()
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatalf("excelize GetRows %q: %v", sheet, err)
	}
	for i, r := range rows {
		if len(r) == 0 {
			rows[i] = nil
		}
	}
	return rows
}

// sameAsExcelize checks every cell of every sheet against excelize, and
// that number cells are date-styled exactly where excelize displays them
// as something other than a number.
func sameAsExcelize(t testing.TB, b []byte) {
	t.Helper()
	sameValues(t, b)
	sameDateStyles(t, b)
}

func sameValues(t testing.TB, b []byte) {
	t.Helper()
	wb := openBytes(t, b)
	for _, s := range wb.Sheets() {
		diffRows(t, s.Name, values(readAll(t, wb, s.Name)), excelizeRows(t, b, s.Name))
	}
}

// sameDateStyles needs r attributes on every row and cell: excelize's
// GetCellValue (unlike its GetRows) finds the wrong cells without them.
func sameDateStyles(t testing.TB, b []byte) {
	t.Helper()
	wb := openBytes(t, b)
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("excelize open: %v", err)
	}
	defer f.Close()
	for _, s := range wb.Sheets() {
		for _, r := range readAll(t, wb, s.Name) {
			for i, c := range r.Cells {
				if _, err := c.Time(wb.Date1904()); c.Kind != Number || err != nil {
					continue // a number no date format can show
				}
				shown, err := f.GetCellValue(s.Name, CellName(i, r.Num))
				if err != nil {
					t.Fatal(err)
				}
				if c.DateStyle == looksNumeric(shown) {
					t.Errorf("sheet %q cell %s: DateStyle %v, but excelize shows %q", s.Name, CellName(i, r.Num), c.DateStyle, shown)
				}
			}
		}
	}
}

// looksNumeric reports text a number format makes of a number, as opposed
// to a date or time: a sign, digits, separators, an exponent.
func looksNumeric(s string) bool {
	s = strings.TrimSpace(strings.TrimPrefix(s, "-"))
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == ',' || c == '.' || c == 'E' || c == '+' || c == '-' && strings.ContainsRune(s, 'E')) {
			return false
		}
	}
	return true
}

func diffRows(t testing.TB, sheet string, got, want [][]string) {
	t.Helper()
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w []string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		for j := 0; j < max(len(g), len(w)); j++ {
			var gv, wv string
			if j < len(g) {
				gv = g[j]
			}
			if j < len(w) {
				wv = w[j]
			}
			if gv != wv {
				t.Errorf("sheet %q cell %s: got %q, excelize %q", sheet, CellName(j, i+1), gv, wv)
			}
		}
	}
}

// rawWorkbook builds an xlsx from the XML of its sheets (in order, named
// Sheet1...), plus optional shared strings, styles and extra parts keyed
// by part name. It is how tests say exactly what other producers write.
type rawWorkbook struct {
	sheets   []string
	sst      string
	styles   string
	date1904 bool
	hidden   map[int]bool
	extra    map[string]string
}

func (rw rawWorkbook) bytes(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	put := func(name, body string) { writePart(t, zw, name, body) }
	var sheets, rels strings.Builder
	for i, s := range rw.sheets {
		n := itoa(i + 1)
		state := ""
		if rw.hidden[i] {
			state = ` state="hidden"`
		}
		sheets.WriteString(`<sheet name="Sheet` + n + `" sheetId="` + n + `"` + state + ` r:id="rId` + n + `"/>`)
		rels.WriteString(`<Relationship Id="rId` + n + `" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet` + n + `.xml"/>`)
		put("xl/worksheets/sheet"+n+".xml", s)
	}
	if rw.sst != "" {
		rels.WriteString(`<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="/xl/sharedStrings.xml"/>`)
		put("xl/sharedStrings.xml", rw.sst)
	}
	if rw.styles != "" {
		rels.WriteString(`<Relationship Id="rIdT" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>`)
		put("xl/styles.xml", rw.styles)
	}
	pr := ""
	if rw.date1904 {
		pr = `<workbookPr date1904="1"/>`
	}
	put("[Content_Types].xml", contentTypes(len(rw.sheets), rw.sst != "", rw.styles != ""))
	put("_rels/.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`)
	put("xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`+pr+`<sheets>`+sheets.String()+`</sheets></workbook>`)
	put("xl/_rels/workbook.xml.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`+rels.String()+`</Relationships>`)
	for name, body := range rw.extra {
		put(name, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bytesNoWorkbook builds a zip of only the extra parts.
func (rw rawWorkbook) bytesNoWorkbook(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range rw.extra {
		writePart(t, zw, name, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writePart(t testing.TB, zw *zip.Writer, name, body string) {
	t.Helper()
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, body); err != nil {
		t.Fatal(err)
	}
}

func contentTypes(n int, sst, styles bool) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>`)
	for i := 1; i <= n; i++ {
		b.WriteString(`<Override PartName="/xl/worksheets/sheet` + itoa(i) + `.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`)
	}
	if sst {
		b.WriteString(`<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>`)
	}
	if styles {
		b.WriteString(`<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>`)
	}
	b.WriteString(`</Types>`)
	return b.String()
}

// sheetXML wraps rows in a worksheet.
func sheetXML(rows string) string {
	return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" +
		`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><dimension ref="A1"/><sheetData>` +
		rows + `</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>`
}

func sstXML(items ...string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="` + itoa(len(items)) + `" uniqueCount="` + itoa(len(items)) + `">` + strings.Join(items, "") + `</sst>`
}

func itoa(i int) string { return strconv.Itoa(i) }

// saveExcelize writes an excelize file to bytes.
func saveExcelize(t testing.TB, f *excelize.File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
