package xlsx

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzAgainstExcelize builds a sheet from the fuzzer's bytes, in the forms
// producers write (shared and inline strings, formulas, booleans, errors,
// missing r attributes, gaps, hidden rows, entities, CDATA), and checks
// every cell, and every date style, against excelize's reading of the same
// workbook.
func FuzzAgainstExcelize(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Add([]byte("\x10\x21\x32\x43\x54\x65\x76\x87\x98\xa9\xba\xcb\xdc\xed\xfe"))
	f.Add([]byte("hello, world: 3.25 & <x> _x0041_ \r\n done"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &sheetGen{data: data}
		sheet, sst := g.sheet()
		b := rawWorkbook{sheets: []string{sheet}, sst: sstXML(sst...), styles: stylesXML}.bytes(t)
		sameValues(t, b)
		if !g.noRef {
			sameDateStyles(t, b)
		}
	})
}

// FuzzSheetXML feeds arbitrary bytes as a sheet's XML: reading must end
// in rows or an error, never a panic or a hang.
func FuzzSheetXML(f *testing.F) {
	f.Add(sheetXML(`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>x</t></is></c></row>`))
	f.Add(sheetXML(`<row><c><f>1</f><v>2</v></c><c t="str"><v><![CDATA[a]]></v></c></row><row r="9" hidden="1"/>`))
	f.Add(`<x:worksheet><x:sheetData><x:row><x:c><x:v>1</x:v></x:c></x:row></x:sheetData></x:worksheet>`)
	f.Fuzz(func(t *testing.T, sheet string) {
		b := rawWorkbook{sheets: []string{sheet}, sst: sstXML(`<si><t>a</t></si>`), styles: stylesXML}.bytes(t)
		wb := openBytes(t, b)
		rows, err := readRows(wb, "Sheet1")
		if err != nil {
			return
		}
		for i, r := range rows {
			if i > 0 && r.Num <= rows[i-1].Num {
				t.Fatalf("row %d after row %d", r.Num, rows[i-1].Num)
			}
			if n := len(r.Cells); n > 0 && r.Cells[n-1].Kind == Empty {
				t.Fatalf("row %d ends in an empty cell", r.Num)
			}
		}
	})
}

// sheetGen turns fuzz bytes into a sheet, one decision per byte.
type sheetGen struct {
	data  []byte
	sst   []string
	noRef bool // some row or cell has no r attribute
}

func (g *sheetGen) next() int {
	if len(g.data) == 0 {
		return 0
	}
	c := int(g.data[0])
	g.data = g.data[1:]
	return c
}

func (g *sheetGen) sheet() (string, []string) {
	var b strings.Builder
	row := 0
	for len(g.data) > 0 {
		op := g.next()
		row += 1 + op%3
		attrs := ` r="` + strconv.Itoa(row) + `"`
		if op&0x10 != 0 && op%3 == 0 {
			attrs, g.noRef = "", true // implies the next row
		}
		if op&0x20 != 0 {
			attrs += ` hidden="1"`
		}
		b.WriteString(`<row` + attrs + `>`)
		col := 0
		for n := g.next() % 8; n > 0 && len(g.data) > 0; n-- {
			k := g.next()
			col += 1 + k%2
			ref := ` r="` + CellName(col-1, row) + `"`
			if k&0x80 != 0 {
				ref, col, g.noRef = "", col-k%2, true // implies the next column
			}
			c := g.cell(ref, k>>1)
			if k&0x40 != 0 { // a tag only the general attribute reader takes
				c = strings.Replace(strings.Replace(c, `<c`, `<c `, 1), ` t="`, ` t = "`, 1)
			}
			b.WriteString(c)
		}
		b.WriteString(`</row>`)
	}
	return sheetXML(b.String()), g.sst
}

func (g *sheetGen) cell(ref string, k int) string {
	switch k % 9 {
	case 0:
		return `<c` + ref + `><v>` + g.number() + `</v></c>`
	case 1:
		g.sst = append(g.sst, `<si><t xml:space="preserve">`+escape(g.text())+`</t></si>`)
		return `<c` + ref + ` t="s"><v>` + strconv.Itoa(len(g.sst)-1) + `</v></c>`
	case 2:
		return `<c` + ref + ` t="inlineStr"><is><t>` + escape(g.text()) + `</t></is></c>`
	case 3:
		return `<c` + ref + ` t="str"><f>CONCAT("a")</f><v>` + escape(g.text()) + `</v></c>`
	case 4:
		return `<c` + ref + ` t="b"><v>` + strconv.Itoa(g.next()%2) + `</v></c>`
	case 5:
		return `<c` + ref + ` t="e"><v>#N/A</v></c>`
	case 6:
		return `<c` + ref + ` s="1"/>`
	case 7:
		return `<c` + ref + ` s="3"><f>A1+1</f><v>` + g.number() + `</v></c>`
	default:
		return `<c` + ref + ` t="str"><v><![CDATA[` + strings.ReplaceAll(g.text(), "]]>", "") + `]]></v></c>`
	}
}

func (g *sheetGen) number() string {
	n := g.next()<<8 | g.next()
	switch n % 4 {
	case 0:
		return strconv.Itoa(n)
	case 1:
		return strconv.FormatFloat(float64(n)/7, 'g', -1, 64)
	case 2:
		return strconv.FormatFloat(float64(n)*1e17, 'E', -1, 64)
	}
	return "-" + strconv.Itoa(n) + ".5"
}

var alphabet = []string{"a", "Z", "0", " ", "&", "<", ">", `"`, "'", "\n", "\t", "é", "東", "😀", "_x0041_", "_x005F_", ",", ";", "]]", "\r\n"}

func (g *sheetGen) text() string {
	var b strings.Builder
	for n := g.next() % 6; n > 0; n-- {
		b.WriteString(alphabet[g.next()%len(alphabet)])
	}
	return b.String()
}

func escape(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// FuzzStructure feeds arbitrary bytes as each structure part in turn (the
// workbook, its relationships, styles, shared strings): Open and reading
// the sheets must end in rows or an error, never a panic or a hang, and a
// refusal by Limits must say where.
func FuzzStructure(f *testing.F) {
	f.Add(uint8(0), `<workbook><workbookPr date1904="1"/><sheets><sheet name="Sheet1" r:id="rId1"/></sheets></workbook>`)
	f.Add(uint8(1), `<Relationships><Relationship Id="rId1" Type="x/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`)
	f.Add(uint8(2), stylesXML)
	f.Add(uint8(3), sstXML(`<si><t>a</t></si>`, `<si><r><t>b</t></r></si>`))
	f.Add(uint8(0), `<a><a><a><a></a></a></a></a>`)
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		rw := rawWorkbook{
			sheets: []string{sheetXML(`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" s="1"><v>2</v></c></row>`)},
			sst:    sstXML(`<si><t>a</t></si>`),
			styles: stylesXML,
			extra:  map[string]string{},
		}
		var b []byte
		switch which % 4 {
		case 0:
			b = replacePart(t, rw.bytes(t), "xl/workbook.xml", body)
		case 1:
			b = replacePart(t, rw.bytes(t), "xl/_rels/workbook.xml.rels", body)
		case 2:
			rw.styles = body
			b = rw.bytes(t)
		case 3:
			rw.sst = body
			b = rw.bytes(t)
		}
		wb, err := OpenLimits(bytes.NewReader(b), int64(len(b)), Limits{SharedInMemory: 64, TempDir: t.TempDir()})
		if err != nil {
			var le *LimitError
			if errors.As(err, &le) && le.Part == "" && !strings.Contains(le.Reason, "parts") && !strings.Contains(le.Reason, "deep") {
				t.Fatalf("a refusal that does not say where: %v", err)
			}
			return
		}
		defer wb.Close()
		for _, s := range wb.Sheets() {
			readRows(wb, s.Name)
		}
	})
}
