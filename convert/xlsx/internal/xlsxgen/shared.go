package xlsxgen

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteShared writes a workbook of rows usage rows whose strings are all
// shared, as Excel and LibreOffice write them, with two unique strings per
// row (account and description): the worst case for the shared-string
// table held in memory. It writes the XML itself, since building a
// million-string table through excelize takes gigabytes.
func WriteShared(path string, rows int) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".xlsxgen-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	for _, p := range staticParts {
		if err := put(zw, p[0], func(w io.Writer) error { _, err := io.WriteString(w, p[1]); return err }); err != nil {
			return err
		}
	}
	if err := put(zw, "xl/worksheets/sheet1.xml", func(w io.Writer) error { return sharedSheet(w, rows) }); err != nil {
		return err
	}
	if err := put(zw, "xl/sharedStrings.xml", func(w io.Writer) error { return sharedTable(w, rows) }); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func put(zw *zip.Writer, name string, write func(io.Writer) error) error {
	w, err := zw.Create(name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := write(bw); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return bw.Flush()
}

// Shared strings 0-3 are units; row i has account 4+2(i-1) and
// description 5+2(i-1).
func sharedTable(w io.Writer, rows int) error {
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`+"\n"+`<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">`, 4+2*rows, 4+2*rows)
	for _, u := range []string{"API Calls", "GB", "Seats", "Minutes"} {
		fmt.Fprintf(w, `<si><t xml:space="preserve">%s</t></si>`, u)
	}
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(w, `<si><t xml:space="preserve">A%08d</t></si><si><t xml:space="preserve">Usage of line %d</t></si>`, i, i)
	}
	_, err := io.WriteString(w, `</sst>`)
	return err
}

func sharedSheet(w io.Writer, rows int) error {
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`+"\n"+`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheetData>`)
	for i := 1; i <= rows; i++ {
		r := i + 1
		fmt.Fprintf(w, `<row r="%d" customFormat="false" ht="12.8" hidden="false" customHeight="false" outlineLevel="0" collapsed="false">`+
			`<c r="A%d" s="0" t="s"><v>%d</v></c><c r="B%d" s="0" t="s"><v>%d</v></c><c r="C%d" s="0" t="n"><v>%g</v></c>`+
			`<c r="D%d" s="1" t="n"><v>%d</v></c><c r="E%d" s="1" t="n"><v>%d</v></c><c r="F%d" s="0" t="s"><v>%d</v></c></row>`,
			r, r, 4+2*(i-1), r, i%4, r, float64(i%1000)*0.125, r, 46082+i%28, r, 46083+i%28, r, 5+2*(i-1))
	}
	_, err := io.WriteString(w, `</sheetData></worksheet>`)
	return err
}

var staticParts = [][2]string{
	{"[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>`},
	{"_rels/.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`},
	{"xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><workbookPr date1904="false"/><sheets><sheet name="Usage" sheetId="1" state="visible" r:id="rId2"/></sheets></workbook>`},
	{"xl/_rels/workbook.xml.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>`},
	{"xl/styles.xml", `<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="DD/MM/YYYY"/></numFmts><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164"/></cellXfs></styleSheet>`},
}
