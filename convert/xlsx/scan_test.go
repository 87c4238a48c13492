package xlsx

import (
	"reflect"
	"strings"
	"testing"
)

// TestSheetXML covers what producers other than Excel write, checked
// against expected cells and, where excelize reads it too, against
// excelize.
func TestSheetXML(t *testing.T) {
	sst := sstXML(
		`<si><t>plain</t></si>`,
		`<si><r><rPr><b/></rPr><t>rich </t></r><r><t xml:space="preserve">text </t></r><rPh sb="0" eb="1"><t>PHONETIC</t></rPh><phoneticPr fontId="1"/></si>`,
		`<si><t>line_x000D_end</t></si>`,
		`<si/>`,
		`<si><t>x_x005F_x0041_y</t></si>`,
	)
	tests := []struct {
		name      string
		rows      string
		want      []Row
		excelize  bool // excelize reads this form too: compare
		wantError string
	}{
		{
			name: "shared strings, rich text, phonetic runs, escapes",
			rows: `<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c><c r="E1" t="s"><v> 4 </v></c></row>`,
			want: []Row{{Num: 1, Cells: []Cell{
				{Kind: String, Value: "plain"}, {Kind: String, Value: "rich text "}, {Kind: String, Value: "line\rend"},
				{Kind: String, Value: ""}, {Kind: String, Value: "x_x0041_y"}}}},
			excelize: true,
		},
		{
			name: "no r attributes",
			rows: `<row><c t="str"><v>a</v></c><c/><c><v>2</v></c></row><row><c t="b"><v>1</v></c></row>`,
			want: []Row{
				{Num: 1, Cells: []Cell{{Kind: String, Value: "a"}, {}, {Kind: Number, Value: "2"}}},
				{Num: 2, Cells: []Cell{{Kind: Bool, Value: "1"}}},
			},
			excelize: true,
		},
		{
			name: "namespace prefixes",
			rows: "",
			want: []Row{{Num: 3, Cells: []Cell{{}, {Kind: Number, Value: "1.5"}}}},
		},
		{
			name: "entities, character references, CDATA",
			rows: `<row r="1"><c r="A1" t="str"><v>a&amp;b&lt;&#x41;&#66;&quot;&apos;&gt;</v></c><c r="B1" t="str"><v><![CDATA[<x> & y]]></v></c><c r="C1" t="inlineStr"><is><t>in&#10;line</t></is></c></row>`,
			want: []Row{{Num: 1, Cells: []Cell{
				{Kind: String, Value: `a&b<AB"'>`}, {Kind: String, Value: "<x> & y"}, {Kind: String, Value: "in\nline"}}}},
			excelize: true,
		},
		{
			name:     "inline rich text without phonetic runs",
			rows:     `<row r="2"><c r="A2" t="inlineStr"><is><r><t>one </t></r><r><rPr><i/></rPr><t>two</t></r><rPh><t>no</t></rPh></is></c></row>`,
			want:     []Row{{Num: 2, Cells: []Cell{{Kind: String, Value: "one two"}}}},
			excelize: true,
		},
		{
			name: "kinds, formulas, empty styled cells",
			rows: `<row r="1" spans="1:6"><c r="A1" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="B1" t="d"><v>2026-03-05T00:00:00</v></c><c r="C1"><f>A1</f></c><c r="D1" s="1"/><c r="E1"><f t="shared" ref="E1:E2" si="0">1+1</f><v>2</v></c><c r="F1" s="3"/></row>`,
			want: []Row{{Num: 1, Cells: []Cell{
				{Kind: Error, Value: "#DIV/0!", Formula: true}, {Kind: Date, Value: "2026-03-05T00:00:00"},
				{Formula: true}, {}, {Kind: Number, Value: "2", Formula: true}}}},
		},
		{
			name:     "hidden and empty rows, comments, odd spacing and quotes",
			rows:     `<!-- c --><row r='2' hidden='1' ht="0"/><?pi x?><row  r = "4"  ><c r = 'B4'   ><v >7</v ></c ></row >`,
			want:     []Row{{Num: 2, Hidden: true}, {Num: 4, Cells: []Cell{{}, {Kind: Number, Value: "7"}}}},
			excelize: true,
		},
		{
			name: "elements inside cells and rows that we skip",
			rows: `<row r="1"><c r="A1"><v>1</v><extLst><ext uri="x"><y><v>9</v></y></ext></extLst></c></row>`,
			want: []Row{{Num: 1, Cells: []Cell{{Kind: Number, Value: "1"}}}},
		},
		{name: "empty sheetData", rows: "", want: nil},
		{name: "bad shared string index", rows: `<row r="1"><c r="A1" t="s"><v>99</v></c></row>`, wantError: `cell A1: shared string "99" is not one of the 5`},
		{name: "cells out of order", rows: `<row r="1"><c r="C1"><v>1</v></c><c r="A1"><v>1</v></c></row>`, wantError: "cells out of order"},
		{name: "rows out of order", rows: `<row r="5"/><row r="2"/>`, wantError: "row 2 comes after row 5"},
		{name: "column beyond XFD", rows: `<row r="1"><c r="XFE1"><v>1</v></c></row>`, wantError: "is not a cell of the sheet"},
		{name: "row beyond the grid", rows: `<row r="1048576"/><row/>`, wantError: "a row beyond row 1048576"},
		{name: "empty string index", rows: `<row r="1"><c r="A1" t="s"><v></v></c><c r="B1"><v>1</v></c></row>`, want: []Row{{Num: 1, Cells: []Cell{{}, {Kind: Number, Value: "1"}}}}, excelize: true},
		{name: "row inside a row", rows: `<row r="1"><c r="A1"><v>1</v></c><row r="2"><c r="A2"><v>2</v></c></row></row>`, wantError: "unexpected <row>"},
		{name: "cell outside a row", rows: `<c r="A1"><v>1</v></c>`, wantError: "unexpected <c>"},
		{name: "unknown entity", rows: `<row r="1"><c r="A1" t="str"><v>&nbsp;</v></c></row>`, wantError: "unknown entity &nbsp;"},
		{name: "unknown type", rows: `<row r="1"><c r="A1" t="zz"><v>1</v></c></row>`, wantError: `unknown cell type t="zz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sheet := sheetXML(tt.rows)
			switch tt.name {
			case "namespace prefixes":
				sheet = `<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData><x:row r="3"><x:c r="B3"><x:v>1.5</x:v></x:c></x:row></x:sheetData></x:worksheet>`
			case "empty sheetData":
				sheet = `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>`
			}
			b := rawWorkbook{sheets: []string{sheet}, sst: sst, styles: stylesXML}.bytes(t)
			got, err := readRows(openBytes(t, b), "Sheet1")
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rows:\n got %+v\nwant %+v", got, tt.want)
			}
			if tt.excelize {
				diffRows(t, "Sheet1", values(got), excelizeRows(t, b, "Sheet1"))
			}
		})
	}
}

// stylesXML has a date (id 1), a grouped number (2), and a custom date
// format (3).
const stylesXML = `<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="DD/MM/YYYY"/></numFmts><cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/><xf numFmtId="4"/><xf numFmtId="164"/></cellXfs></styleSheet>`

func TestDateStyles(t *testing.T) {
	rows := `<row r="1"><c r="A1" s="0"><v>1</v></c><c r="B1" s="1"><v>1</v></c><c r="C1" s="2"><v>1</v></c><c r="D1" s="3"><v>1</v></c><c r="E1" s="9"><v>1</v></c><c r="F1" s="1" t="str"><v>1</v></c></row>`
	b := rawWorkbook{sheets: []string{sheetXML(rows)}, styles: stylesXML}.bytes(t)
	got := readAll(t, openBytes(t, b), "Sheet1")
	var dates []bool
	for _, c := range got[0].Cells {
		dates = append(dates, c.DateStyle)
	}
	if want := []bool{false, true, false, true, false, false}; !reflect.DeepEqual(dates, want) {
		t.Errorf("DateStyle = %v, want %v", dates, want)
	}
}

func TestIsDateFormat(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"General", false},
		{"0.00", false},
		{"#,##0.00", false},
		{`#,##0.00 "days"`, false},
		{`0.00E+00`, false},
		{`[Red]0.00;[Blue]-0.00`, false},
		{`[$€-2] #,##0.00`, false},
		{`0\d`, false},
		{`_-* #,##0_-;\-* #,##0_-;_-* "-"_-;_-@_-`, false},
		{"@", false},
		{"DD/MM/YYYY", true},
		{"yyyy-mm-dd", true},
		{`[$-409]d\-mmm\-yy;@`, true},
		{"h:mm AM/PM", true},
		{"[h]:mm:ss", true},
		{"[mm]:ss", true},
		{"[ss]", true},
		{`yyyy"年"m"月"`, true},
		{`"y" 0`, false},
	}
	for _, tt := range tests {
		if got := isDateFormat(tt.code); got != tt.want {
			t.Errorf("isDateFormat(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
	for id := 0; id < 200; id++ {
		want := id >= 14 && id <= 22 || id >= 27 && id <= 36 || id >= 45 && id <= 47 || id >= 50 && id <= 58
		if isBuiltinDate(id) != want {
			t.Errorf("isBuiltinDate(%d) = %v", id, !want)
		}
	}
}

func TestWorkbookStructure(t *testing.T) {
	sheet := sheetXML(`<row r="1"><c r="A1"><v>1</v></c></row>`)
	rw := rawWorkbook{sheets: []string{sheet, sheet, sheet}, date1904: true, hidden: map[int]bool{1: true}}
	wb := openBytes(t, rw.bytes(t))
	want := []Sheet{{Name: "Sheet1"}, {Name: "Sheet2", Hidden: true}, {Name: "Sheet3"}}
	if got := wb.Sheets(); !reflect.DeepEqual(got, want) {
		t.Errorf("Sheets() = %v, want %v", got, want)
	}
	if !wb.Date1904() {
		t.Error("Date1904() = false")
	}
	for _, s := range want {
		if rows := readAll(t, wb, s.Name); len(rows) != 1 {
			t.Errorf("sheet %s: %d rows", s.Name, len(rows))
		}
	}
}
