package hostile

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// xlsxFiles are workbook drops: rows of millions of cells, deep XML, huge
// shared-string tables, many numeric cells, lying zips, broken
// relationships and missing parts. Each is a small zip whose parts are
// generated while compressing, so a 60 MB sheet costs a few hundred KB.
func xlsxFiles() []File {
	var out []File
	for _, g := range [][]File{
		xlsxBaseline(), xlsxWideRows(), xlsxManyCells(), xlsxDeep(),
		xlsxSharedStrings(), xlsxHugeCells(), xlsxDimensions(), xlsxRels(),
		xlsxMissing(), xlsxZipLies(), xlsxStyles(), xlsxDates(), xlsxSheets(),
		xlsxMarkup(),
	} {
		out = append(out, g...)
	}
	return out
}

// A usage row every reader accepts: header, then 2026-03-16 as a serial
// with a date style (s="1").
const (
	xlsxHeaderRow = `<row r="1"><c r="A1" t="inlineStr"><is><t>ACCOUNT_ID</t></is></c><c r="B1" t="inlineStr"><is><t>UOM</t></is></c><c r="C1" t="inlineStr"><is><t>QTY</t></is></c><c r="D1" t="inlineStr"><is><t>STARTDATE</t></is></c></row>`
	xlsxDataRow   = `<row r="2"><c r="A2" t="inlineStr"><is><t>A00000052</t></is></c><c r="B2" t="inlineStr"><is><t>API Calls</t></is></c><c r="C2"><v>0.25</v></c><c r="D2" s="1"><v>46097</v></c></row>`
	xlsxSheetHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" +
		`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`
	xlsxSheetPath = "xl/worksheets/sheet1.xml"
	xlsxSSTPath   = "xl/sharedStrings.xml"
	xlsxStylesXML = `<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164"/></cellXfs></styleSheet>`
	xlsxRelsNS    = `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`
	xlsxRelType   = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
)

// xlsxPart is one zip member: its name and what writes its bytes.
type xlsxPart struct {
	name string
	body func(w io.Writer)
}

// xlsxBook is a workbook under construction, parts in zip order.
type xlsxBook struct{ parts []xlsxPart }

func text(s string) func(io.Writer) { return func(w io.Writer) { io.WriteString(w, s) } }

// repeat writes head, then unit n times, then tail.
func repeat(head, unit string, n int, tail string) func(io.Writer) {
	return func(w io.Writer) {
		io.WriteString(w, head)
		u := []byte(unit)
		if len(u) < 4096 {
			u = bytes.Repeat(u, 4096/len(u)+1)
			k := 4096/len(unit) + 1
			for ; n >= k; n -= k {
				w.Write(u)
			}
			u = u[:n*len(unit)]
			n = 1
		}
		for i := 0; i < n; i++ {
			w.Write(u)
		}
		io.WriteString(w, tail)
	}
}

// sheetOf writes a worksheet: the usage header and data row, then more.
func sheetOf(more func(io.Writer)) func(io.Writer) {
	return func(w io.Writer) {
		io.WriteString(w, xlsxSheetHead+"<sheetData>"+xlsxHeaderRow+xlsxDataRow)
		if more != nil {
			more(w)
		}
		io.WriteString(w, "</sheetData></worksheet>")
	}
}

func workbookXML(sheets string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><workbookPr/><sheets>` + sheets + `</sheets></workbook>`
}

// newBook is a valid usage workbook of one sheet, styles and an empty
// shared-string table, as the parts of Excel's own files.
func newBook() *xlsxBook {
	return &xlsxBook{parts: []xlsxPart{
		{"[Content_Types].xml", text(`<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>`)},
		{"_rels/.rels", text(xlsxRelsNS + `<Relationship Id="rId1" Type="` + xlsxRelType + `officeDocument" Target="xl/workbook.xml"/></Relationships>`)},
		{"xl/workbook.xml", text(workbookXML(`<sheet name="Usage" sheetId="1" r:id="rId1"/>`))},
		{"xl/_rels/workbook.xml.rels", text(xlsxRelsNS + `<Relationship Id="rId1" Type="` + xlsxRelType + `worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="` + xlsxRelType + `styles" Target="styles.xml"/><Relationship Id="rId3" Type="` + xlsxRelType + `sharedStrings" Target="sharedStrings.xml"/></Relationships>`)},
		{"xl/styles.xml", text(xlsxStylesXML)},
		{xlsxSSTPath, text(`<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="0" uniqueCount="0"></sst>`)},
		{xlsxSheetPath, sheetOf(nil)},
	}}
}

// with replaces the part called name, or adds it.
func (b *xlsxBook) with(name string, body func(io.Writer)) *xlsxBook {
	for i := range b.parts {
		if b.parts[i].name == name {
			b.parts[i].body = body
			return b
		}
	}
	b.parts = append(b.parts, xlsxPart{name, body})
	return b
}

func (b *xlsxBook) without(name string) *xlsxBook {
	for i := range b.parts {
		if b.parts[i].name == name {
			b.parts = append(b.parts[:i], b.parts[i+1:]...)
			break
		}
	}
	return b
}

func (b *xlsxBook) sheet(more func(io.Writer)) *xlsxBook { return b.with(xlsxSheetPath, sheetOf(more)) }

func (b *xlsxBook) bytes() []byte {
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, p := range b.parts {
		w, err := zw.Create(p.name)
		if err != nil {
			panic(err)
		}
		p.body(w)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return out.Bytes()
}

func xf(family, name, want string, b *xlsxBook) File {
	return File{Name: name + ".xlsx", Family: family, Body: b.bytes(), Want: want}
}

// sst is a shared-string table of the given items.
func sst(items func(io.Writer)) func(io.Writer) {
	return func(w io.Writer) {
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`)
		items(w)
		io.WriteString(w, `</sst>`)
	}
}

func xlsxBaseline() []File {
	return []File{
		xf("xlsx-baseline", "valid-usage", "accept", newBook()),
		xf("xlsx-baseline", "valid-usage-shared-strings", "accept", newBook().
			with(xlsxSSTPath, sst(text(`<si><t>A00000052</t></si><si><t>API Calls</t></si>`))).
			sheet(text(`<row r="3"><c r="A3" t="s"><v>0</v></c><c r="B3" t="s"><v>1</v></c><c r="C3"><v>3</v></c><c r="D3" s="1"><v>46098</v></c></row>`))),
	}
}

// xlsxWideRows: rows far wider than Excel's 16,384 columns.
func xlsxWideRows() []File {
	return []File{
		// 1.7 M cells without r= in one row: 436 MB on main at b94ab9c.
		xf("xlsx-wide-row", "row-1.7M-cells-no-ref", "reject", newBook().sheet(repeat(`<row r="3">`, `<c><v>1</v></c>`, 1_700_000, `</row>`))),
		xf("xlsx-wide-row", "row-1.7M-empty-cells-no-ref", "", newBook().sheet(repeat(`<row r="3">`, `<c/>`, 1_700_000, `</row>`))),
		xf("xlsx-wide-row", "row-16385-cells-no-ref", "reject", newBook().sheet(repeat(`<row r="3">`, `<c><v>1</v></c>`, 16385, `</row>`))),
		xf("xlsx-wide-row", "row-16384-cells-no-ref", "", newBook().sheet(repeat(`<row r="3">`, `<c><v>1</v></c>`, 16384, `</row>`))),
		xf("xlsx-wide-row", "cell-ref-XFE", "reject", newBook().sheet(text(`<row r="3"><c r="XFE3"><v>1</v></c></row>`))),
		xf("xlsx-wide-row", "cell-ref-ZZZZZZZZ", "reject", newBook().sheet(text(`<row r="3"><c r="ZZZZZZZZZZZZ3"><v>1</v></c></row>`))),
		xf("xlsx-wide-row", "cell-ref-row-beyond", "reject", newBook().sheet(text(`<row r="3"><c r="A99999999999"><v>1</v></c></row>`))),
		xf("xlsx-wide-row", "row-number-beyond", "reject", newBook().sheet(text(`<row r="1048577"><c><v>1</v></c></row>`))),
		xf("xlsx-wide-row", "many-rows-beyond-XFD-no-ref", "reject", newBook().sheet(func(w io.Writer) {
			for r := 3; r < 200; r++ {
				repeat(fmt.Sprintf(`<row r="%d">`, r), `<c><v>1</v></c>`, 20000, `</row>`)(w)
			}
		})),
		// A value in XFD on every row makes a reader fill in 16,383
		// empty cells per row.
		xf("xlsx-wide-row", "XFD-on-every-row", "", newBook().sheet(func(w io.Writer) {
			for r := 3; r <= 300_000; r++ {
				fmt.Fprintf(w, `<row r="%d"><c r="XFD%d"><v>1</v></c></row>`, r, r)
			}
		})),
	}
}

// xlsxManyCells: millions of small cells in a small file.
func xlsxManyCells() []File {
	return []File{
		// 4.4 M numeric cells in 130 KB: 1.33 GB on main at b94ab9c.
		xf("xlsx-many-cells", "4.4M-numeric-cells-one-row", "reject", newBook().sheet(repeat(`<row r="3">`, `<c><v>1</v></c>`, 4_400_000, `</row>`))),
		xf("xlsx-many-cells", "4.4M-numeric-cells-full-rows", "", newBook().sheet(func(w io.Writer) {
			for r := 3; r < 3+270; r++ {
				repeat(fmt.Sprintf(`<row r="%d">`, r), `<c><v>1</v></c>`, 16384, `</row>`)(w)
			}
		})),
		xf("xlsx-many-cells", "1M-rows-4-cells", "", newBook().sheet(func(w io.Writer) {
			for r := 3; r < 1_000_000; r++ {
				fmt.Fprintf(w, `<row><c t="inlineStr"><is><t>A00000052</t></is></c><c t="inlineStr"><is><t>GB</t></is></c><c><v>%d</v></c><c s="1"><v>46097</v></c></row>`, r%10)
			}
		})),
		xf("xlsx-many-cells", "500k-blank-rows", "", newBook().sheet(repeat(``, `<row/>`, 500_000, ``))),
		xf("xlsx-many-cells", "styled-empty-cells", "", newBook().sheet(func(w io.Writer) {
			for r := 3; r < 1000; r++ {
				repeat(fmt.Sprintf(`<row r="%d">`, r), `<c s="1"/>`, 16384, `</row>`)(w)
			}
		})),
	}
}

// deep is n nested elements named tag.
func deep(tag string, n int) func(io.Writer) {
	return func(w io.Writer) {
		repeat("", "<"+tag+">", n, "")(w)
		repeat("", "</"+tag+">", n, "")(w)
	}
}

func wrap(head string, body func(io.Writer), tail string) func(io.Writer) {
	return func(w io.Writer) { io.WriteString(w, head); body(w); io.WriteString(w, tail) }
}

// xlsxDeep: XML nested millions of levels deep in every part.
func xlsxDeep() []File {
	// 9 M levels as measured on main; 1 M elsewhere is as far past any
	// sane depth and quicker to generate.
	const n9, n = 9_000_000, 1_000_000
	wbHead := `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Usage" sheetId="1" r:id="rId1"/></sheets>`
	return []File{
		// 9 M levels in workbook.xml: 1.62 GB and accepted on main at b94ab9c.
		xf("xlsx-deep", "deep-workbook", "reject", newBook().with("xl/workbook.xml", wrap(wbHead, deep("a", n9), `</workbook>`))),
		xf("xlsx-deep", "deep-workbook-in-sheets", "reject", newBook().with("xl/workbook.xml", wrap(wbHead[:strings.Index(wbHead, "<sheets>")+8], deep("sheet", n), `</sheets></workbook>`))),
		xf("xlsx-deep", "deep-workbook-30", "accept", newBook().with("xl/workbook.xml", wrap(wbHead, deep("a", 30), `</workbook>`))),
		xf("xlsx-deep", "deep-workbook-1000", "reject", newBook().with("xl/workbook.xml", wrap(wbHead, deep("a", 1000), `</workbook>`))),
		xf("xlsx-deep", "deep-root-rels", "reject", newBook().with("_rels/.rels", wrap(xlsxRelsNS+`<Relationship Id="rId1" Type="`+xlsxRelType+`officeDocument" Target="xl/workbook.xml"/>`, deep("Relationship", n), `</Relationships>`))),
		xf("xlsx-deep", "deep-workbook-rels", "reject", newBook().with("xl/_rels/workbook.xml.rels", wrap(xlsxRelsNS+`<Relationship Id="rId1" Type="`+xlsxRelType+`worksheet" Target="worksheets/sheet1.xml"/>`, deep("x", n), `</Relationships>`))),
		xf("xlsx-deep", "deep-styles", "reject", newBook().with("xl/styles.xml", wrap(`<styleSheet><cellXfs>`, deep("xf", n), `</cellXfs></styleSheet>`))),
		xf("xlsx-deep", "deep-shared-strings", "reject", newBook().with(xlsxSSTPath, sst(wrap(`<si>`, deep("r", n), `</si>`)))),
		xf("xlsx-deep", "deep-shared-strings-between-items", "reject", newBook().with(xlsxSSTPath, sst(deep("x", n)))),
		xf("xlsx-deep", "deep-content-types", "", newBook().with("[Content_Types].xml", wrap(`<Types>`, deep("a", n), `</Types>`))),
		xf("xlsx-deep", "deep-sheet-before-data", "reject", newBook().with(xlsxSheetPath, wrap(xlsxSheetHead, deep("a", n), `<sheetData/></worksheet>`))),
		xf("xlsx-deep", "deep-sheet-in-cell", "reject", newBook().sheet(wrap(`<row r="3"><c r="A3">`, deep("x", n), `</c></row>`))),
		xf("xlsx-deep", "deep-sheet-in-row", "reject", newBook().sheet(wrap(`<row r="3">`, deep("x", n), `</row>`))),
	}
}

// xlsxSharedStrings: shared-string tables all unique, huge or lying.
func xlsxSharedStrings() []File {
	uniq := func(n int, ref bool) *xlsxBook {
		b := newBook().with(xlsxSSTPath, sst(func(w io.Writer) {
			for i := 0; i < n; i++ {
				fmt.Fprintf(w, `<si><t>A%08d unique description of the usage on this line of the workbook, number %d</t></si>`, i, i)
			}
		}))
		if ref {
			b.sheet(func(w io.Writer) {
				for i := 0; i+1 < n; i += 2 {
					fmt.Fprintf(w, `<row><c t="s"><v>%d</v></c><c t="inlineStr"><is><t>GB</t></is></c><c><v>1</v></c><c s="1"><v>46097</v></c><c/><c/><c/><c t="s"><v>%d</v></c></row>`, i, i+1)
				}
			})
		}
		return b
	}
	return []File{
		xf("xlsx-shared-strings", "100k-unique-unused", "accept", uniq(100_000, false)),
		xf("xlsx-shared-strings", "100k-unique-used", "", uniq(100_000, true)),
		xf("xlsx-shared-strings", "400k-unique-used", "", uniq(400_000, true)),
		xf("xlsx-shared-strings", "10M-empty-items", "", newBook().with(xlsxSSTPath, sst(repeat("", "<si/>", 10_000_000, "")))),
		xf("xlsx-shared-strings", "5M-one-char-items", "", newBook().with(xlsxSSTPath, sst(repeat("", "<si><t>x</t></si>", 5_000_000, "")))),
		xf("xlsx-shared-strings", "unique-count-lies", "accept", newBook().with(xlsxSSTPath, text(`<sst uniqueCount="2000000000" count="2000000000"><si><t>a</t></si></sst>`))),
		xf("xlsx-shared-strings", "index-out-of-range", "reject", newBook().sheet(text(`<row r="3"><c r="A3" t="s"><v>99999999</v></c></row>`))),
		xf("xlsx-shared-strings", "index-negative", "reject", newBook().sheet(text(`<row r="3"><c r="A3" t="s"><v>-1</v></c></row>`))),
		xf("xlsx-shared-strings", "phonetic-runs-huge", "", newBook().with(xlsxSSTPath, sst(repeat(`<si><t>A</t>`, `<rPh sb="0" eb="1"><t>ア</t></rPh>`, 200_000, `</si>`)))),
		xf("xlsx-shared-strings", "doctype-entity-bomb", "reject", newBook().with(xlsxSSTPath, text(`<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><sst><si><t>&c;</t></si></sst>`))),
	}
}

// xlsxHugeCells: cells past Excel's 32,767 characters, and elements far
// larger than any cell.
func xlsxHugeCells() []File {
	big := func(n int) string { return strings.Repeat("x", n) }
	return []File{
		xf("xlsx-huge-cells", "inline-32768-chars", "reject", newBook().sheet(text(`<row r="3"><c r="A3" t="inlineStr"><is><t>`+big(32768)+`</t></is></c></row>`))),
		xf("xlsx-huge-cells", "inline-32767-multibyte", "", newBook().sheet(text(`<row r="3"><c r="H3" t="inlineStr"><is><t>`+strings.Repeat("é", 32767)+`</t></is></c></row>`))),
		xf("xlsx-huge-cells", "inline-1MB", "reject", newBook().sheet(text(`<row r="3"><c r="A3" t="inlineStr"><is><t>`+big(1<<20)+`</t></is></c></row>`))),
		xf("xlsx-huge-cells", "inline-20MB", "reject", newBook().sheet(repeat(`<row r="3"><c r="A3" t="inlineStr"><is><t>`, "x", 20<<20, `</t></is></c></row>`))),
		xf("xlsx-huge-cells", "number-100k-digits", "reject", newBook().sheet(text(`<row r="3"><c r="C3"><v>`+strings.Repeat("9", 100_000)+`</v></c></row>`))),
		xf("xlsx-huge-cells", "shared-string-40k", "reject", newBook().
			with(xlsxSSTPath, sst(text(`<si><t>`+big(40_000)+`</t></si>`))).
			sheet(text(`<row r="3"><c r="A3" t="s"><v>0</v></c></row>`))),
		xf("xlsx-huge-cells", "shared-string-50MB-unused", "", newBook().with(xlsxSSTPath, sst(repeat(`<si><t>`, "x", 50<<20, `</t></si>`)))),
		xf("xlsx-huge-cells", "formula-10MB", "", newBook().sheet(repeat(`<row r="3"><c r="A3"><f>`, "1+", 5<<20, `1</f><v>1</v></c></row>`))),
		xf("xlsx-huge-cells", "rich-text-1M-runs", "reject", newBook().sheet(repeat(`<row r="3"><c r="A3" t="inlineStr"><is>`, `<r><t>x</t></r>`, 1_000_000, `</is></c></row>`))),
		xf("xlsx-huge-cells", "text-without-tags-30MB", "reject", newBook().sheet(repeat(``, " ", 30<<20, ``))),
		xf("xlsx-huge-cells", "attribute-50MB", "reject", newBook().sheet(repeat(`<row r="3" x="`, "y", 50<<20, `"><c><v>1</v></c></row>`))),
	}
}

// xlsxDimensions: sheets that claim the whole grid.
func xlsxDimensions() []File {
	dim := func(ref string) *xlsxBook {
		return newBook().with(xlsxSheetPath, text(xlsxSheetHead+`<dimension ref="`+ref+`"/><cols><col min="1" max="16384" width="9"/></cols><sheetData>`+xlsxHeaderRow+xlsxDataRow+`</sheetData></worksheet>`))
	}
	return []File{
		xf("xlsx-dimensions", "dimension-XFD1048576", "accept", dim("A1:XFD1048576")),
		xf("xlsx-dimensions", "dimension-garbage", "accept", dim("ZZZZZZZZ99999999999:-1")),
		xf("xlsx-dimensions", "last-cell-XFD1048576", "", newBook().sheet(text(`<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>`))),
		xf("xlsx-dimensions", "spans-huge", "accept", newBook().with(xlsxSheetPath, text(xlsxSheetHead+`<sheetData>`+strings.Replace(xlsxHeaderRow, `r="1"`, `r="1" spans="1:999999999"`, 1)+xlsxDataRow+`</sheetData></worksheet>`))),
	}
}

func relsWith(rels string) func(io.Writer) {
	return text(xlsxRelsNS + rels + `</Relationships>`)
}

// xlsxRels: relationships that point nowhere, outside, or in circles.
func xlsxRels() []File {
	rel := func(id, typ, target string) string {
		return `<Relationship Id="` + id + `" Type="` + xlsxRelType + typ + `" Target="` + target + `"/>`
	}
	wbRels := "xl/_rels/workbook.xml.rels"
	return []File{
		xf("xlsx-rels", "sheet-rel-missing", "reject", newBook().with(wbRels, relsWith(rel("rId2", "styles", "styles.xml")))),
		xf("xlsx-rels", "sheet-target-absent", "reject", newBook().with(wbRels, relsWith(rel("rId1", "worksheet", "worksheets/nothing.xml")))),
		xf("xlsx-rels", "sheet-target-traversal", "reject", newBook().with(wbRels, relsWith(rel("rId1", "worksheet", "../../../../etc/passwd")))),
		xf("xlsx-rels", "sheet-target-is-sst", "reject", newBook().
			with(xlsxSSTPath, sst(text(`<si><t>a</t></si>`))).
			with(wbRels, relsWith(rel("rId1", "worksheet", "sharedStrings.xml")))),
		xf("xlsx-rels", "sheet-target-is-workbook", "reject", newBook().with(wbRels, relsWith(rel("rId1", "worksheet", "workbook.xml")))),
		xf("xlsx-rels", "sst-target-is-sheet", "", newBook().with(wbRels, relsWith(rel("rId1", "worksheet", "worksheets/sheet1.xml")+rel("rId3", "sharedStrings", "worksheets/sheet1.xml")))),
		xf("xlsx-rels", "office-document-elsewhere", "reject", newBook().with("_rels/.rels", relsWith(rel("rId1", "officeDocument", "nowhere/book.xml")))),
		xf("xlsx-rels", "external-sheet", "reject", newBook().with(wbRels, relsWith(`<Relationship Id="rId1" Type="`+xlsxRelType+`worksheet" Target="https://example.com/s.xml" TargetMode="External"/>`))),
		xf("xlsx-rels", "100k-relationships", "", newBook().with(wbRels, func(w io.Writer) {
			io.WriteString(w, xlsxRelsNS+rel("rId1", "worksheet", "worksheets/sheet1.xml"))
			for i := 0; i < 100_000; i++ {
				fmt.Fprintf(w, `<Relationship Id="x%d" Type="%sworksheet" Target="worksheets/sheet1.xml"/>`, i, xlsxRelType)
			}
			io.WriteString(w, `</Relationships>`)
		})),
		xf("xlsx-rels", "rels-not-xml", "reject", newBook().with(wbRels, text("PK\x03\x04 not xml at all <<<"))),
	}
}

// xlsxMissing: workbooks without the parts a reader needs.
func xlsxMissing() []File {
	return []File{
		xf("xlsx-missing", "no-workbook", "reject", newBook().without("xl/workbook.xml")),
		xf("xlsx-missing", "no-sheet-part", "reject", newBook().without(xlsxSheetPath)),
		xf("xlsx-missing", "no-styles", "", newBook().without("xl/styles.xml")),
		xf("xlsx-missing", "no-sst-but-shared-cells", "reject", newBook().without(xlsxSSTPath).sheet(text(`<row r="3"><c r="A3" t="s"><v>0</v></c></row>`))),
		xf("xlsx-missing", "no-rels-at-all", "reject", newBook().without("_rels/.rels").without("xl/_rels/workbook.xml.rels")),
		xf("xlsx-missing", "no-sheets-listed", "reject", newBook().with("xl/workbook.xml", text(workbookXML("")))),
		xf("xlsx-missing", "empty-zip", "reject", &xlsxBook{}),
		xf("xlsx-missing", "no-sheet-data", "reject", newBook().with(xlsxSheetPath, text(xlsxSheetHead+`</worksheet>`))),
	}
}

// rawZip writes members with the sizes and CRCs they claim, not the ones
// they have.
type rawMember struct {
	name          string
	body          []byte
	claimSize     uint64
	claimCRC      uint32
	store, badCRC bool
}

func rawZip(members []rawMember) []byte {
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, m := range members {
		var comp bytes.Buffer
		method := zip.Deflate
		if m.store {
			method = zip.Store
			comp.Write(m.body)
		} else {
			fw, _ := zipDeflater(&comp)
			fw.Write(m.body)
			fw.Close()
		}
		crc := crc32.ChecksumIEEE(m.body)
		if m.badCRC {
			crc ^= 0xdeadbeef
		}
		size := uint64(len(m.body))
		if m.claimSize != 0 {
			size = m.claimSize
		}
		w, err := zw.CreateRaw(&zip.FileHeader{Name: m.name, Method: method, CRC32: crc, CompressedSize64: uint64(comp.Len()), UncompressedSize64: size})
		if err != nil {
			panic(err)
		}
		w.Write(comp.Bytes())
	}
	zw.Close()
	return out.Bytes()
}

func zipDeflater(w io.Writer) (io.WriteCloser, error) {
	return flate.NewWriter(w, flate.DefaultCompression)
}

// members renders a book's parts for rawZip.
func (b *xlsxBook) members() []rawMember {
	var ms []rawMember
	for _, p := range b.parts {
		var buf bytes.Buffer
		p.body(&buf)
		ms = append(ms, rawMember{name: p.name, body: buf.Bytes()})
	}
	return ms
}

// xlsxZipLies: zips whose members lie about their sizes and checksums.
func xlsxZipLies() []File {
	lie := func(name string, edit func([]rawMember) []rawMember, b *xlsxBook) File {
		return File{Name: name + ".xlsx", Family: "xlsx-zip-lies", Body: rawZip(edit(b.members())), Want: "reject"}
	}
	at := func(ms []rawMember, name string) *rawMember {
		for i := range ms {
			if ms[i].name == name {
				return &ms[i]
			}
		}
		panic(name)
	}
	bigSheet := newBook().sheet(repeat("", `<row><c><v>1</v></c></row>`, 400_000, ""))
	out := []File{
		lie("sheet-claims-100-bytes", func(ms []rawMember) []rawMember { at(ms, xlsxSheetPath).claimSize = 100; return ms }, bigSheet),
		lie("sheet-claims-16EiB", func(ms []rawMember) []rawMember { at(ms, xlsxSheetPath).claimSize = 1 << 62; return ms }, newBook()),
		lie("workbook-claims-small", func(ms []rawMember) []rawMember { at(ms, "xl/workbook.xml").claimSize = 10; return ms }, newBook()),
		lie("sheet-bad-crc", func(ms []rawMember) []rawMember { at(ms, xlsxSheetPath).badCRC = true; return ms }, newBook()),
		lie("sst-bad-crc", func(ms []rawMember) []rawMember { at(ms, xlsxSSTPath).badCRC = true; return ms }, newBook()),
		lie("stored-sheet-claims-more", func(ms []rawMember) []rawMember {
			m := at(ms, xlsxSheetPath)
			m.store, m.claimSize = true, uint64(len(m.body))+1000
			return ms
		}, newBook()),
		lie("duplicate-sheet-members", func(ms []rawMember) []rawMember {
			return append(ms, rawMember{name: xlsxSheetPath, body: []byte(xlsxSheetHead + `<sheetData><row r="1"><c t="inlineStr"><is><t>evil</t></is></c></row></sheetData></worksheet>`)})
		}, newBook()),
	}
	// Truncated: the zip cut in half.
	whole := newBook().bytes()
	out = append(out, File{Name: "truncated-half.xlsx", Family: "xlsx-zip-lies", Body: whole[:len(whole)/2], Want: "reject"})
	// 20,000 members beside the workbook.
	many := newBook()
	for i := 0; i < 20_000; i++ {
		many.parts = append(many.parts, xlsxPart{fmt.Sprintf("m/%d", i), text("")})
	}
	out = append(out, xf("xlsx-zip-lies", "20k-members", "", many))
	return out
}

// xlsxStyles: style tables far past Excel's 64,000 formats.
func xlsxStyles() []File {
	return []File{
		xf("xlsx-styles", "1M-xfs", "", newBook().with("xl/styles.xml", repeat(`<styleSheet><cellXfs>`, `<xf numFmtId="14"/>`, 1_000_000, `</cellXfs></styleSheet>`))),
		xf("xlsx-styles", "1M-numfmts", "", newBook().with("xl/styles.xml", func(w io.Writer) {
			io.WriteString(w, `<styleSheet><numFmts>`)
			for i := 0; i < 1_000_000; i++ {
				fmt.Fprintf(w, `<numFmt numFmtId="%d" formatCode="yyyy-mm-dd"/>`, 164+i)
			}
			io.WriteString(w, `</numFmts><cellXfs><xf numFmtId="0"/><xf numFmtId="164"/></cellXfs></styleSheet>`)
		})),
		xf("xlsx-styles", "numfmt-code-10MB", "", newBook().with("xl/styles.xml", repeat(`<styleSheet><numFmts><numFmt numFmtId="164" formatCode="`, `0`, 10<<20, `"/></numFmts><cellXfs><xf numFmtId="0"/><xf numFmtId="164"/></cellXfs></styleSheet>`))),
		xf("xlsx-styles", "style-index-huge", "", newBook().sheet(text(`<row r="3"><c r="A3" s="999999999"><v>1</v></c></row>`))),
		xf("xlsx-styles", "styles-not-xml", "reject", newBook().with("xl/styles.xml", text("<styleSheet><cellXfs><xf numFmtId=\"14\"</styleSheet>"))),
	}
}

// xlsxDates: date serials and ISO dates outside Excel's calendar.
func xlsxDates() []File {
	date := func(v, t string) *xlsxBook {
		return newBook().sheet(text(`<row r="3"><c r="A3" t="inlineStr"><is><t>A00000052</t></is></c><c r="B3" t="inlineStr"><is><t>GB</t></is></c><c r="C3"><v>1</v></c><c r="D3" s="1"` + t + `><v>` + v + `</v></c></row>`))
	}
	return []File{
		xf("xlsx-dates", "serial-negative", "reject", date("-1", "")),
		xf("xlsx-dates", "serial-after-9999", "reject", date("2958466", "")),
		xf("xlsx-dates", "serial-1e308", "reject", date("1e308", "")),
		xf("xlsx-dates", "serial-NaN", "reject", date("NaN", "")),
		xf("xlsx-dates", "iso-year-99999", "reject", date("99999-01-01", ` t="d"`)),
		xf("xlsx-dates", "iso-garbage", "reject", date("yesterday", ` t="d"`)),
		xf("xlsx-dates", "date1904-negative", "reject", newBook().
			with("xl/workbook.xml", text(strings.Replace(workbookXML(`<sheet name="Usage" sheetId="1" r:id="rId1"/>`), "<workbookPr/>", `<workbookPr date1904="1"/>`, 1))).
			sheet(text(`<row r="3"><c r="A3" t="inlineStr"><is><t>A1</t></is></c><c r="B3" t="inlineStr"><is><t>GB</t></is></c><c r="C3"><v>1</v></c><c r="D3" s="1"><v>-5</v></c></row>`))),
	}
}

// xlsxSheets: workbooks of thousands of sheets, all without a header.
func xlsxSheets() []File {
	many := func(n int) *xlsxBook {
		var s strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&s, `<sheet name="S%d" sheetId="%d" r:id="rId1"/>`, i, i+1)
		}
		return newBook().with("xl/workbook.xml", text(workbookXML(s.String()))).
			with(xlsxSheetPath, repeat(xlsxSheetHead+"<sheetData>", `<row><c t="inlineStr"><is><t>not a header</t></is></c></row>`, 20_000, "</sheetData></worksheet>"))
	}
	return []File{
		xf("xlsx-sheets", "10k-sheets-one-part", "reject", many(10_000)),
		xf("xlsx-sheets", "300-sheets-one-part", "reject", many(300)),
		xf("xlsx-sheets", "sheet-name-control-chars", "", newBook().with("xl/workbook.xml", text(workbookXML(`<sheet name="U&#x9;s&#xA;a&#x202E;ge" sheetId="1" r:id="rId1"/>`)))),
	}
}

// xlsxMarkup: markup a careless or hostile producer writes.
func xlsxMarkup() []File {
	return []File{
		xf("xlsx-markup", "nul-escape-in-cell", "reject", newBook().sheet(text(`<row r="3"><c r="A3" t="inlineStr"><is><t>A0_x0000_1</t></is></c><c r="B3" t="inlineStr"><is><t>GB</t></is></c><c r="C3"><v>1</v></c><c r="D3" s="1"><v>46097</v></c></row>`))),
		xf("xlsx-markup", "control-char-ref", "reject", newBook().sheet(text(`<row r="3"><c r="A3" t="inlineStr"><is><t>A&#1;1</t></is></c></row>`))),
		xf("xlsx-markup", "raw-nul-byte", "reject", newBook().sheet(text("<row r=\"3\"><c r=\"A3\" t=\"inlineStr\"><is><t>A\x001</t></is></c></row>"))),
		xf("xlsx-markup", "cells-out-of-order", "reject", newBook().sheet(text(`<row r="3"><c r="C3"><v>1</v></c><c r="A3"><v>1</v></c></row>`))),
		xf("xlsx-markup", "rows-out-of-order", "reject", newBook().sheet(text(`<row r="9"><c><v>1</v></c></row><row r="3"><c><v>1</v></c></row>`))),
		xf("xlsx-markup", "unknown-cell-type", "reject", newBook().sheet(text(`<row r="3"><c r="A3" t="zz"><v>1</v></c></row>`))),
		xf("xlsx-markup", "unclosed-sheet", "reject", newBook().with(xlsxSheetPath, text(xlsxSheetHead+"<sheetData>"+xlsxHeaderRow+`<row r="2"><c r="A2"`))),
		xf("xlsx-markup", "million-attributes-workbook", "reject", newBook().with("xl/workbook.xml", func(w io.Writer) {
			io.WriteString(w, `<workbook xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Usage" r:id="rId1"`)
			for i := 0; i < 1_000_000; i++ {
				fmt.Fprintf(w, ` a%d="1"`, i)
			}
			io.WriteString(w, `/></sheets></workbook>`)
		})),
		xf("xlsx-markup", "million-sheet-elements-no-name", "reject", newBook().with("xl/workbook.xml", repeat(`<workbook><sheets>`, `<sheet/>`, 1_000_000, `</sheets></workbook>`))),
		{Name: "not-a-zip.xlsx", Family: "xlsx-markup", Body: []byte("ACCOUNT_ID,UOM,QTY,STARTDATE\nA1,GB,1,2026-03-16\n"), Want: "reject"},
	}
}
