package hostile

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf16"
)

// header is the template header most generated CSVs start with.
const header = "ACCOUNT_ID,UOM,QTY,STARTDATE,DESCRIPTION"

// row is a valid usage row for header, numbered so every row differs.
func row(i int) string { return fmt.Sprintf("A%d,GB,%d,2026-03-01,row %d", i, i%100+1, i) }

// rows joins header and n valid rows with the line end eol.
func rows(n int, eol string) string {
	var b strings.Builder
	b.WriteString(header + eol)
	for i := 0; i < n; i++ {
		b.WriteString(row(i) + eol)
	}
	return b.String()
}

// csvFiles are CSV drops: line ends, wide rows, control characters, huge
// cells and columns, encodings, empty and blank files, broken quotes.
func csvFiles() []File {
	var out []File
	for _, gen := range []func() []File{
		lineEnds, wideRows, controls, lateBytes, hugeCells, hugeColumns,
		encodings, emptyish, blankLines, quotes, injection, crEdges,
	} {
		out = append(out, gen()...)
	}
	return out
}

func csvFile(name, family, body, want string) File {
	return File{Name: name, Family: family, Body: []byte(body), Want: want}
}

// lineEnds: every line end, alone and mixed, in every delimiter. Excel
// for Mac's "CSV (Macintosh)" writes bare CR; none may lose a row.
func lineEnds() []File {
	var out []File
	ends := []struct{ name, eol string }{{"lf", "\n"}, {"crlf", "\r\n"}, {"cr", "\r"}}
	for _, e := range ends {
		for _, d := range []struct{ name, sep string }{{"comma", ","}, {"semicolon", ";"}, {"tab", "\t"}, {"pipe", "|"}} {
			body := strings.ReplaceAll(rows(3, e.eol), ",", d.sep)
			out = append(out, csvFile("eol-"+e.name+"-"+d.name+".csv", "line-ends", body, "accept"))
		}
	}
	mixed := []struct{ name, body string }{
		{"crlf-then-cr", header + "\r\n" + row(1) + "\r\n" + row(2) + "\r" + row(3) + "\r\n"},
		{"lf-cr-crlf", header + "\n" + row(1) + "\r" + row(2) + "\r\n" + row(3) + "\n"},
		{"lfcr", header + "\n\r" + row(1) + "\n\r" + row(2) + "\n\r"},
		{"cr-no-final-end", header + "\r" + row(1) + "\r" + row(2)},
		{"cr-cr-blank-lines", header + "\r\r\r" + row(1) + "\r\r" + row(2) + "\r\r"},
		{"cr-inside-quotes", header + "\r" + "A1,GB,1,2026-03-01,\"two\rlines\"\r" + row(2) + "\r"},
		{"crlf-inside-quotes", header + "\r\n" + "A1,GB,1,2026-03-01,\"two\r\nlines\"\r\n"},
		{"lf-inside-quotes-cr-rows", header + "\r" + "A1,GB,1,2026-03-01,\"two\nlines\"\r" + row(2) + "\r"},
		{"cr-only-many-rows", rows(20000, "\r")},
		{"cr-title-rows", "Usage export\r\rMarch 2026\r" + header + "\r" + row(1) + "\r"},
	}
	for _, m := range mixed {
		out = append(out, csvFile("eol-"+m.name+".csv", "line-ends", m.body, "accept"))
	}
	out = append(out, csvFile("eol-cr-bad-row.csv", "line-ends", header+"\r"+row(1)+"\rA2,,1,2026-03-01,x\r", "reject"))
	return out
}

// wideRows: a row wider than its header is a problem unless the extra
// values are empty.
func wideRows() []File {
	return []File{
		csvFile("wide-extra-value.csv", "wide-rows", header+"\n"+row(1)+",extra\n", "reject"),
		csvFile("wide-unquoted-comma.csv", "wide-rows", header+"\nA1,GB,1,2026-03-01,Overage, March\n"+row(2)+"\n", "reject"),
		csvFile("wide-extra-empty.csv", "wide-rows", header+"\n"+row(1)+",,,\n", "accept"),
		csvFile("wide-extra-spaces.csv", "wide-rows", header+"\n"+row(1)+", , \n", "accept"),
		csvFile("wide-far-value.csv", "wide-rows", header+"\n"+row(1)+strings.Repeat(",", 500)+"x\n", "reject"),
		csvFile("wide-semicolon.csv", "wide-rows", strings.ReplaceAll(header+"\n"+row(1)+";1,5\n", ",", ";"), "reject"),
		csvFile("narrow-row.csv", "wide-rows", header+"\nA1,GB,1,2026-03-01\n", "accept"),
		csvFile("narrow-row-missing-date.csv", "wide-rows", header+"\nA1,GB,1\n", "reject"),
		csvFile("wide-header-trailing-commas.csv", "wide-rows", header+",,,\n"+row(1)+",,,\n", "accept"),
	}
}

// controls: every control character but tab and the line ends, in a
// value, is refused; tab is text.
func controls() []File {
	var out []File
	for c := 0; c < 0x20; c++ {
		switch c {
		case '\t', '\n', '\r':
			continue
		}
		out = append(out, csvFile(fmt.Sprintf("control-%02x.csv", c), "control-chars",
			header+"\n"+row(1)+"\nA2,GB,1,2026-03-01,before"+string(rune(c))+"after\n", "reject"))
	}
	out = append(out,
		csvFile("control-7f.csv", "control-chars", header+"\nA1\x7f,GB,1,2026-03-01,x\n", "reject"),
		csvFile("control-c1-85.csv", "control-chars", header+"\nA1,GB,1,2026-03-01,a\u0085b\n", "reject"),
		csvFile("control-c1-9b.csv", "control-chars", header+"\nA1,GB,1,2026-03-01,\u009b31m\n", "reject"),
		csvFile("control-in-header.csv", "control-chars", "ACCOUNT_ID,UOM\x00,QTY,STARTDATE\nA1,GB,1,2026-03-01\n", "reject"),
		csvFile("control-in-title.csv", "control-chars", "\x1b]0;title\x07\n"+header+"\n"+row(1)+"\n", "reject"),
		csvFile("control-tab-in-value.csv", "control-chars", header+"\nA1,GB,1,2026-03-01,\"a\tb\"\n", "accept"),
		csvFile("control-nul-utf8-bom.csv", "control-chars", "\xEF\xBB\xBF"+header+"\nA1,GB,1,2026-03-01,\x00\n", "reject"),
		csvFile("control-nul-ignored-column.csv", "control-chars", "\xEF\xBB\xBF"+header+",Notes\n"+row(1)+",\x00\n", "reject"),
		csvFile("control-latin1-supplement.csv", "control-chars", header+"\nA1,GB,1,2026-03-01,£5 © ½\n", "accept"),
	)
	return out
}

// lateBytes: bytes the 64 KiB sniff does not see must be judged too.
func lateBytes() []File {
	pad := rows(1500, "\n") // about 40 KiB
	pad += rows(1500, "\n")[len(header)+1:]
	return []File{
		csvFile("late-nul.csv", "late-bytes", pad+"A9,GB,1,2026-03-01,a\x00b\n", "reject"),
		csvFile("late-nul-only-line.csv", "late-bytes", pad+"\x00\n", "reject"),
		csvFile("late-nul-run.csv", "late-bytes", pad+"A9,GB,1,2026-03-01,"+strings.Repeat("\x00", 4096)+"\n", "reject"),
		csvFile("late-escape.csv", "late-bytes", pad+"A9,GB,1,2026-03-01,\x1b[2J\n", "reject"),
		csvFile("late-invalid-utf8.csv", "late-bytes", pad+"A9,GB,1,2026-03-01,caf\xe9\n", "reject"),
		csvFile("late-cr-rows.csv", "late-bytes", pad+row(1)+"\r"+row(2)+"\r", "accept"),
		csvFile("late-wide-row.csv", "late-bytes", pad+row(1)+",x\n", "reject"),
	}
}

// hugeCells: values and rows past the caps, made just large enough to
// prove the cap.
func hugeCells() []File {
	big := strings.Repeat("x", 200<<10)
	return []File{
		csvFile("huge-cell-unquoted.csv", "huge-cells", header+"\nA1,GB,1,2026-03-01,"+big+"\n", "reject"),
		csvFile("huge-cell-quoted.csv", "huge-cells", header+"\nA1,GB,1,2026-03-01,\""+big+"\"\n", "reject"),
		csvFile("huge-cell-quoted-lines.csv", "huge-cells", header+"\nA1,GB,1,2026-03-01,\""+strings.Repeat("x\n", 100<<10)+"\"\n", "reject"),
		csvFile("huge-line-2mib.csv", "huge-cells", header+"\n"+row(1)+","+strings.Repeat("y", 2<<20)+"\n", "reject"),
		csvFile("huge-open-quote.csv", "huge-cells", header+"\nA1,GB,1,2026-03-01,\"never closed\n"+strings.Repeat(row(2)+"\n", 60000), "reject"),
		csvFile("huge-description.csv", "huge-cells", header+"\nA1,GB,1,2026-03-01,"+strings.Repeat("d", 5000)+"\n", "reject"),
		csvFile("huge-account.csv", "huge-cells", header+"\n"+strings.Repeat("A", 100000)+",GB,1,2026-03-01,x\n", "reject"),
		csvFile("huge-ignored-cell.csv", "huge-cells", header+",Notes\n"+row(1)+","+strings.Repeat("n", 100<<10)+"\n", "accept"),
		csvFile("huge-header-cell.csv", "huge-cells", strings.Repeat("H", 100000)+","+header+"\n,"+row(1)+"\n", "accept"),
	}
}

// hugeColumns: rows of tens of thousands to half a million values, which
// must be refused while reading, not after splitting.
func hugeColumns() []File {
	wide := func(n int, v string) string { return strings.Repeat(","+v, n) }
	exact := header + wide(16384-5, "") + "\n" + row(1) + "\n"
	return []File{
		csvFile("columns-500k-header.csv", "huge-columns", header+wide(500000, "x")+"\n"+row(1)+"\n", "reject"),
		csvFile("columns-500k-empty-row.csv", "huge-columns", header+"\n"+row(1)+wide(500000, "")+"\n", "reject"),
		csvFile("columns-20k-row.csv", "huge-columns", header+"\n"+row(1)+wide(20000, "1")+"\n", "reject"),
		csvFile("columns-at-cap.csv", "huge-columns", exact, "accept"),
		csvFile("columns-one-over-cap.csv", "huge-columns", header+wide(16384-4, "")+"\n"+row(1)+"\n", "reject"),
		csvFile("columns-300-named.csv", "huge-columns", func() string {
			var b strings.Builder
			b.WriteString(header)
			for i := 0; i < 300; i++ {
				fmt.Fprintf(&b, ",extra column %d", i)
			}
			return b.String() + "\n" + row(1) + wide(300, "v") + "\n"
		}(), "accept"),
		csvFile("columns-semicolons-in-comma-file.csv", "huge-columns", header+"\n"+row(1)+strings.Repeat(";", 300000)+"\n", "reject"),
	}
}

// utf16 encodes s as UTF-16 with a byte-order mark.
func utf16Bytes(s string, big bool) []byte {
	u := utf16.Encode([]rune(s))
	var b bytes.Buffer
	if big {
		b.Write([]byte{0xFE, 0xFF})
	} else {
		b.Write([]byte{0xFF, 0xFE})
	}
	for _, c := range u {
		if big {
			b.WriteByte(byte(c >> 8))
			b.WriteByte(byte(c))
		} else {
			b.WriteByte(byte(c))
			b.WriteByte(byte(c >> 8))
		}
	}
	return b.Bytes()
}

// encodings: byte-order marks, UTF-16 with odd lengths, no BOM.
func encodings() []File {
	text := rows(3, "\r\n")
	le, be := utf16Bytes(text, false), utf16Bytes(text, true)
	noBOM := le[2:]
	return []File{
		csvFile("bom-utf8.csv", "encodings", "\xEF\xBB\xBF"+text, "accept"),
		csvFile("bom-utf8-twice.csv", "encodings", "\xEF\xBB\xBF\xEF\xBB\xBF"+text, ""),
		{Name: "bom-utf16le.csv", Family: "encodings", Body: le, Want: "accept"},
		{Name: "bom-utf16be.csv", Family: "encodings", Body: be, Want: "accept"},
		{Name: "utf16le-odd-length.csv", Family: "encodings", Body: append(append([]byte{}, le...), 'x'), Want: ""},
		{Name: "utf16be-odd-length.csv", Family: "encodings", Body: append(append([]byte{}, be...), 'x'), Want: ""},
		{Name: "utf16le-bom-only.csv", Family: "encodings", Body: []byte{0xFF, 0xFE}, Want: "reject"},
		{Name: "utf16le-half-bom.csv", Family: "encodings", Body: []byte{0xFF}, Want: "reject"},
		{Name: "utf16le-no-bom.csv", Family: "encodings", Body: noBOM, Want: "reject"},
		{Name: "utf16le-lone-surrogate.csv", Family: "encodings", Body: append(utf16Bytes(header+"\r\nA1,GB,1,2026-03-01,", false), 0x00, 0xD8, '\r', 0, '\n', 0), Want: ""},
		{Name: "utf16le-cr-only.csv", Family: "encodings", Body: utf16Bytes(rows(3, "\r"), false), Want: "accept"},
		csvFile("windows-1252.csv", "encodings", header+"\nA1,GB,1,2026-03-01,Z\xfcrich caf\xe9\n", "accept"),
		csvFile("bom-utf8-then-invalid.csv", "encodings", "\xEF\xBB\xBF"+header+"\nA1,GB,1,2026-03-01,\xff\xfe\n", "reject"),
	}
}

// emptyish: files with nothing to import.
func emptyish() []File {
	return []File{
		csvFile("empty.csv", "empty", "", "reject"),
		csvFile("bom-only.csv", "empty", "\xEF\xBB\xBF", "reject"),
		csvFile("newline-only.csv", "empty", "\n", "reject"),
		csvFile("cr-only.csv", "empty", strings.Repeat("\r", 1000), "reject"),
		csvFile("crlf-only.csv", "empty", strings.Repeat("\r\n", 1000), "reject"),
		csvFile("header-only.csv", "empty", header+"\n", "reject"),
		csvFile("header-only-cr.csv", "empty", header+"\r", "reject"),
		csvFile("header-no-end.csv", "empty", header, "reject"),
		csvFile("header-and-blank-rows.csv", "empty", header+"\n"+strings.Repeat(",,,,\n", 100), "reject"),
		csvFile("spaces-only.csv", "empty", strings.Repeat("   \n", 100), "reject"),
		csvFile("commas-only.csv", "empty", strings.Repeat(",,,,,,,,\n", 100), "reject"),
		csvFile("no-header.csv", "empty", row(1)+"\n"+row(2)+"\n", "reject"),
		{Name: "binary.csv", Family: "empty", Body: bytes.Repeat([]byte{0x00, 0x01, 0xff, 0x7f}, 4096), Want: "reject"},
	}
}

// blankLines: millions of blank lines before, between and after rows.
func blankLines() []File {
	const million = 1 << 20
	return []File{
		csvFile("blank-lines-after.csv", "blank-lines", rows(2, "\n")+strings.Repeat("\n", 2*million), "accept"),
		csvFile("blank-lines-before-header.csv", "blank-lines", strings.Repeat("\n", 2*million)+rows(2, "\n"), "accept"),
		csvFile("blank-crs-before-header.csv", "blank-lines", strings.Repeat("\r", 2*million)+rows(2, "\r"), "accept"),
		csvFile("blank-crlfs-between.csv", "blank-lines", header+"\r\n"+row(1)+strings.Repeat("\r\n", million)+row(2)+"\r\n", "accept"),
		csvFile("blank-comma-rows.csv", "blank-lines", header+"\n"+row(1)+"\n"+strings.Repeat(",,,,\n", 300000)+row(2)+"\n", "accept"),
		csvFile("blank-comma-rows-before-header.csv", "blank-lines", strings.Repeat(",,,,\n", 100)+rows(2, "\n"), "reject"),
		csvFile("blank-spaces-between.csv", "blank-lines", header+"\n"+row(1)+"\n"+strings.Repeat(" , , , , \n", 100000)+row(2)+"\n", "accept"),
	}
}

// quotes: broken quoting is refused with the line it starts on.
func quotes() []File {
	return []File{
		csvFile("quote-bare.csv", "quotes", header+"\nA1,GB,1,2026-03-01,5\" disk\n", "reject"),
		csvFile("quote-unclosed-at-eof.csv", "quotes", header+"\nA1,GB,1,2026-03-01,\"open\n", "reject"),
		csvFile("quote-text-after-close.csv", "quotes", header+"\nA1,GB,1,2026-03-01,\"a\"b\n", "reject"),
		csvFile("quote-doubled.csv", "quotes", header+"\nA1,GB,1,2026-03-01,\"say \"\"hi\"\"\"\n", "accept"),
		csvFile("quote-only.csv", "quotes", "\"", "reject"),
		csvFile("quote-many-lines.csv", "quotes", header+"\nA1,GB,1,2026-03-01,\""+strings.Repeat("\n", 10000)+"\"\n", "accept"),
		csvFile("quote-header.csv", "quotes", "\"ACCOUNT_ID\",\"UOM\",\"QTY\",\"STARTDATE\"\n\"A1\",\"GB\",\"1\",\"2026-03-01\"\n", "accept"),
	}
}

// injection: values that a spreadsheet would run as formulas. Convert
// judges them as data; the reports neutralise them.
func injection() []File {
	return []File{
		csvFile("formula-description.csv", "injection", header+"\nA1,GB,1,2026-03-01,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n", "accept"),
		csvFile("formula-bad-qty.csv", "injection", header+"\nA1,GB,=1+1,2026-03-01,x\nA2,GB,+cmd|' /C calc'!A0,2026-03-01,x\nA3,GB,@SUM(1),2026-03-01,x\n", "reject"),
		csvFile("formula-account.csv", "injection", header+"\n-2+3+cmd|' /C calc'!A0,GB,1,2026-03-01,x\n", "accept"),
	}
}

// crEdges are bare CRs where a parser that treats them as data, or as
// line ends only sometimes, goes wrong: before a quote, splitting a header.
func crEdges() []File {
	return []File{
		csvFile("cr-before-open-quote.csv", "line-ends", header+"\r\"\r", "reject"),
		csvFile("cr-splits-header.csv", "line-ends", "ACCOUNT_ID,UOM\rQTY,STARTDATE\nA1,GB\r1,2026-03-01\n", "reject"),
	}
}
