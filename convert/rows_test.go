package convert

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// checkRows asserts the row accounting of a summary: every table's rows
// add up, the tables' records add up to the drop's, and no problem says
// they did not.
func checkRows(t testing.TB, sum Summary) {
	t.Helper()
	out := 0
	for _, rc := range sum.Rows {
		if !rc.Balanced() {
			t.Fatalf("rows do not add up: %+v", rc)
		}
		out += rc.Out
	}
	if out != sum.Records {
		t.Fatalf("tables sent %d records, summary says %d", out, sum.Records)
	}
	for _, p := range sum.Problems {
		if strings.Contains(p.Reason, "did not add up") {
			t.Fatalf("accounting problem: %+v", p)
		}
	}
}

// readBytes runs Read over data called name and checks the accounting.
func readBytes(t *testing.T, name string, data []byte, opt Options) ([]Record, Summary) {
	t.Helper()
	recs, sum := readFile(t, writeTemp(t, name, data), opt)
	checkRows(t, sum)
	return recs, sum
}

const shortHeader = "ACCOUNT_ID,UOM,QTY,STARTDATE,DESCRIPTION"

func TestReadLineEnds(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		descs []string // DESCRIPTION of each record, in order
		rows  RowCount
	}{
		{"LF", shortHeader + "\nA1,GB,1,2026-03-01,one\nA2,GB,2,2026-03-02,two\n", []string{"one", "two"}, RowCount{In: 3, Out: 2, Skipped: 1}},
		{"CRLF", shortHeader + "\r\nA1,GB,1,2026-03-01,one\r\nA2,GB,2,2026-03-02,two\r\n", []string{"one", "two"}, RowCount{In: 3, Out: 2, Skipped: 1}},
		{"CR only (CSV Macintosh)", shortHeader + "\rA1,GB,1,2026-03-01,one\rA2,GB,2,2026-03-02,two\r", []string{"one", "two"}, RowCount{In: 3, Out: 2, Skipped: 1}},
		{"CR only, no final end", shortHeader + "\rA1,GB,1,2026-03-01,one\rA2,GB,2,2026-03-02,two", []string{"one", "two"}, RowCount{In: 3, Out: 2, Skipped: 1}},
		{"mixed CRLF and CR", shortHeader + "\r\nA1,GB,1,2026-03-01,one\r\nA2,GB,1,2026-03-01,two\rA3,GB,1,2026-03-01,three\r\n", []string{"one", "two", "three"}, RowCount{In: 4, Out: 3, Skipped: 1}},
		{"mixed LF, CR, CRLF", shortHeader + "\nA1,GB,1,2026-03-01,one\rA2,GB,1,2026-03-01,two\r\nA3,GB,1,2026-03-01,three\n", []string{"one", "two", "three"}, RowCount{In: 4, Out: 3, Skipped: 1}},
		{"CR CR is a blank line", shortHeader + "\r\rA1,GB,1,2026-03-01,one\r", []string{"one"}, RowCount{In: 2, Out: 1, Skipped: 1}},
		{"quoted CR stays in the value", shortHeader + "\rA1,GB,1,2026-03-01,\"a\rb\"\rA2,GB,1,2026-03-01,c\r", []string{"a\nb", "c"}, RowCount{In: 3, Out: 2, Skipped: 1}},
		{"quoted CRLF stays in the value", shortHeader + "\r\nA1,GB,1,2026-03-01,\"a\r\nb\"\r\n", []string{"a\nb"}, RowCount{In: 2, Out: 1, Skipped: 1}},
		{"blank comma row counted as skipped", shortHeader + "\n,,,,\nA1,GB,1,2026-03-01,one\n", []string{"one"}, RowCount{In: 3, Out: 1, Skipped: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sum := readBytes(t, "a.csv", []byte(tt.data), Options{})
			if sum.Rejected() {
				t.Fatalf("rejected: %+v", sum.Problems)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Description)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.descs) {
				t.Fatalf("descriptions %q, want %q", got, tt.descs)
			}
			if len(sum.Rows) != 1 || sum.Rows[0] != tt.rows {
				t.Fatalf("rows %+v, want %+v", sum.Rows, tt.rows)
			}
		})
	}
}

// TestReadLineNumbersCR: a bad row in a CR-only file is named by the line
// a spreadsheet shows.
func TestReadLineNumbersCR(t *testing.T) {
	_, sum := readBytes(t, "a.csv", []byte(shortHeader+"\rA1,GB,1,2026-03-01,x\r\rA1,,1,2026-03-01,x\r"), Options{})
	if len(sum.Problems) != 1 || sum.Problems[0].Line != 4 || sum.Problems[0].Column != "UOM" {
		t.Fatalf("problems %+v, want UOM at line 4", sum.Problems)
	}
}

func TestReadRowsRefused(t *testing.T) {
	late := shortHeader + "\n" + strings.Repeat("A1,GB,1,2026-03-01,padding padding padding\n", 2000) // past the 64 KiB sniff
	tests := []struct {
		name   string
		data   string
		opt    Options
		line   int
		column string
		reason string   // a fragment
		value  string   // "" to skip
		rows   RowCount // zero when the first pass refused the table: no entry
	}{
		{"wide row", shortHeader + "\nA1,GB,1,2026-03-01,one,extra\n", Options{}, 2, "column F", "6 values but the header has 5 columns", "extra", RowCount{In: 2, Reported: 1, Skipped: 1}},
		{"wide row shifted by an unquoted comma", shortHeader + "\nA1,GB,1,2026-03-01,Overage, March\nA2,GB,1,2026-03-01,ok\n", Options{}, 2, "column F", "shifted", " March", RowCount{In: 3, Out: 1, Reported: 1, Skipped: 1}},
		{"NUL after the sniffed prefix", late + "A1,GB,1,2026-03-01,a\x00b\n", Options{}, 2002, "DESCRIPTION", "NUL (0x00)", "a\x00b", RowCount{In: 2002, Out: 2000, Reported: 1, Skipped: 1}},
		{"NUL in an ignored column", "\xEF\xBB\xBFACCOUNT_ID,UOM,QTY,STARTDATE,Notes\nA1,GB,1,2026-03-01,\x00\n", Options{}, 2, "column E", "NUL", "", RowCount{In: 2, Reported: 1, Skipped: 1}},
		{"escape", shortHeader + "\nA1,GB,1,2026-03-01,\x1b[31mred\n", Options{}, 2, "DESCRIPTION", "ESC (0x1B)", "\x1b[31mred", RowCount{In: 2, Reported: 1, Skipped: 1}},
		{"DEL", shortHeader + "\nA1\x7f,GB,1,2026-03-01,x\n", Options{}, 2, "ACCOUNT_ID", "DEL (0x7F)", "", RowCount{In: 2, Reported: 1, Skipped: 1}},
		{"C1 control", shortHeader + "\nA1,GB,1,2026-03-01,a\u0085b\n", Options{}, 2, "DESCRIPTION", "0x85", "", RowCount{In: 2, Reported: 1, Skipped: 1}},
		{"control in a title row", "Report\x01\n" + shortHeader + "\nA1,GB,1,2026-03-01,x\n", Options{}, 1, "ACCOUNT_ID", "0x01", "", RowCount{In: 3, Out: 1, Reported: 1, Skipped: 1}},
		{"too many columns", shortHeader + "\nA1,GB,1,2026-03-01,x" + strings.Repeat(",", 20) + "\n", Options{Caps: Caps{MaxColumns: 10}}, 2, "", "more than 10 values, more than any usage file holds; is the delimiter right?\nlimits.max_columns is 10", "", RowCount{}},
		{"too long a value", shortHeader + "\nA1,GB,1,2026-03-01," + strings.Repeat("x", 300) + "\n", Options{Caps: Caps{MaxCellBytes: 200}}, 2, "", "longer than 200 bytes, which no usage value is; is a quote left open?\nlimits.max_cell_bytes is 200", "", RowCount{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sum := readBytes(t, "a.csv", []byte(tt.data), tt.opt)
			if !sum.Rejected() {
				t.Fatal("not rejected")
			}
			p := sum.Problems[0]
			if p.Line != tt.line || p.Column != tt.column || !strings.Contains(p.Reason+"\n"+p.Hint, tt.reason) || tt.value != "" && p.Value != tt.value {
				t.Fatalf("problem %+v, want line %d column %q value %q reason containing %q", p, tt.line, tt.column, tt.value, tt.reason)
			}
			if tt.rows == (RowCount{}) && len(sum.Rows) != 0 || tt.rows != (RowCount{}) && (len(sum.Rows) != 1 || sum.Rows[0] != tt.rows) {
				t.Fatalf("rows %+v, want %+v", sum.Rows, tt.rows)
			}
		})
	}
}

func TestReadRowsAccepted(t *testing.T) {
	tests := []struct {
		name string
		data string
		desc string
	}{
		{"wide row with empty extras", shortHeader + "\nA1,GB,1,2026-03-01,one,, \n", "one"},
		{"tab in a value", shortHeader + "\nA1,GB,1,2026-03-01,\"a\tb\"\n", "a\tb"},
		{"line break in a quoted value", shortHeader + "\nA1,GB,1,2026-03-01,\"a\nb\"\n", "a\nb"},
		{"Latin-1 supplement is not C1", shortHeader + "\nA1,GB,1,2026-03-01,£5 ©\n", "£5 ©"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sum := readBytes(t, "a.csv", []byte(tt.data), Options{})
			if sum.Rejected() || len(recs) != 1 || recs[0].Description != tt.desc {
				t.Fatalf("problems %+v, records %+v, want one with %q", sum.Problems, recs, tt.desc)
			}
		})
	}
}

func TestMayHoldControl(t *testing.T) {
	for i := 0; i < 256; i++ {
		c := byte(i)
		want := c < 0x20 || c == 0x7f || c == 0xc2
		for n := 1; n <= 20; n++ { // short, one word, words and a tail
			for at := 0; at < n; at++ {
				b := bytes.Repeat([]byte("a"), n)
				b[at] = c
				if got, ascii := mayHoldControl(b); got != want || ascii != (c < 0x80) {
					t.Fatalf("byte %#x at %d of %d: suspect %v ascii %v, want %v %v", c, at, n, got, ascii, want, c < 0x80)
				}
				if got := mayHoldControlString(string(b)); got != want {
					t.Fatalf("string: byte %#x at %d of %d: %v, want %v", c, at, n, got, want)
				}
			}
		}
	}
	if s, a := mayHoldControl(nil); s || !a {
		t.Fatal("empty record")
	}
}

func TestCaps(t *testing.T) {
	wideHeader := "ACCOUNT_ID,UOM,QTY,STARTDATE"
	for i := 0; i < 300; i++ {
		wideHeader += fmt.Sprintf(",extra%03d", i)
	}
	t.Run("header cells kept", func(t *testing.T) {
		_, sum := readBytes(t, "a.csv", []byte(wideHeader+"\nA1,GB,1,2026-03-01\n"), Options{})
		if sum.Rejected() || len(sum.Ignored) != 100 || sum.MoreIgnored != 200 {
			t.Fatalf("ignored %d + %d more, want 100 + 200 (problems %+v)", len(sum.Ignored), sum.MoreIgnored, sum.Problems)
		}
	})
	t.Run("ignored names once across members", func(t *testing.T) {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for i := 0; i < 300; i++ {
			w, _ := zw.Create(fmt.Sprintf("m%d.csv", i))
			fmt.Fprintf(w, "%s,Notes,Region\nA%d,GB,1,2026-03-01,x,n,r\n", shortHeader, i)
		}
		zw.Close()
		_, sum := readBytes(t, "a.zip", b.Bytes(), Options{})
		if sum.Rejected() || strings.Join(sum.Ignored, ",") != "Notes,Region" || sum.MoreIgnored != 0 {
			t.Fatalf("ignored %q + %d more (problems %+v)", sum.Ignored, sum.MoreIgnored, sum.Problems)
		}
	})
	t.Run("message clipped", func(t *testing.T) {
		_, sum := readBytes(t, "a.csv", []byte(strings.Replace(wideHeader, "QTY", "Q", 1)+"\nA1,GB,1,2026-03-01\n"), Options{Caps: Caps{MaxMessageBytes: 300}})
		if !sum.Rejected() || len(sum.Problems[0].Reason) > 300 || !strings.Contains(sum.Problems[0].Reason, "more bytes)") {
			t.Fatalf("problem %+v, want a reason clipped to 300 bytes", sum.Problems)
		}
	})
	t.Run("file size", func(t *testing.T) {
		data := []byte(shortHeader + "\nA1,GB,1,2026-03-01,x\n")
		_, sum := readBytes(t, "a.csv", data, Options{Caps: Caps{MaxFileSize: 20}})
		want := Caps{MaxFileSize: 20}.TooLarge(int64(len(data)))
		if !sum.Rejected() || sum.Problems[0].Reason != want || sum.Problems[0].Hint != "limits.max_file_size is 20 bytes" {
			t.Fatalf("problems %+v, want %q", sum.Problems, want)
		}
		if (Caps{}).TooLarge(1<<30) != "" || (Caps{}).TooLarge(1<<30+1) == "" {
			t.Fatal("default max_file_size is not 1 GiB")
		}
	})
	t.Run("zip entries", func(t *testing.T) {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for i := 0; i < 5; i++ {
			w, _ := zw.Create(fmt.Sprintf("m%d.csv", i))
			fmt.Fprintf(w, "%s\nA%d,GB,1,2026-03-01,x\n", shortHeader, i)
		}
		zw.Close()
		_, sum := readBytes(t, "a.zip", b.Bytes(), Options{Caps: Caps{MaxZipEntries: 4}})
		if !sum.Rejected() || !strings.Contains(sum.Problems[0].Reason, "5 entries, more than the 4 usagedrop accepts") || sum.Problems[0].Hint != "limits.max_zip_entries is 4" {
			t.Fatalf("problems %+v", sum.Problems)
		}
		recs, sum := readBytes(t, "a.zip", b.Bytes(), Options{Caps: Caps{MaxZipEntries: 5}})
		if sum.Rejected() || len(recs) != 5 || len(sum.Rows) != 5 {
			t.Fatalf("problems %+v, %d records, rows %+v", sum.Problems, len(recs), sum.Rows)
		}
	})
	t.Run("zip directory", func(t *testing.T) {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create(strings.Repeat("n", 10000) + ".csv")
		fmt.Fprintf(w, "%s\nA1,GB,1,2026-03-01,x\n", shortHeader)
		zw.Close()
		_, sum := readBytes(t, "a.zip", b.Bytes(), Options{Caps: Caps{MaxZipEntries: 2}})
		if !sum.Rejected() || !strings.Contains(sum.Problems[0].Reason, "list of entries is") {
			t.Fatalf("problems %+v", sum.Problems)
		}
		if _, sum := readBytes(t, "a.zip", b.Bytes(), Options{Caps: Caps{MaxZipEntries: 3}}); sum.Rejected() {
			t.Fatalf("problems %+v", sum.Problems)
		}
	})
	t.Run("report bytes", func(t *testing.T) {
		data := shortHeader + "\n" + strings.Repeat("A1,,1,2026-03-01,"+strings.Repeat("d", 300)+"\n", 50)
		_, sum := readBytes(t, "a.csv", []byte(data), Options{Caps: Caps{MaxReportBytes: 1000}})
		n := 0
		for _, p := range sum.Problems {
			n += len(p.Reason) + len(p.Value) + len(p.Member) + len(p.Sheet) + len(p.Column)
		}
		if n > 1000 || sum.TotalProblems() != 100 || len(sum.Problems) < 2 {
			t.Fatalf("%d problems kept in %d bytes, %d in all; want at most 1000 bytes, 100 in all", len(sum.Problems), n, sum.TotalProblems())
		}
	})
	t.Run("problems kept", func(t *testing.T) {
		data := shortHeader + "\n" + strings.Repeat("A1,,1,2026-03-01,x\n", 30)
		_, sum := readBytes(t, "a.csv", []byte(data), Options{Caps: Caps{MaxProblems: 7}})
		if len(sum.Problems) != 7 || sum.MoreProblems != 23 || sum.TotalProblems() != 30 || sum.Rows[0].Reported != 30 {
			t.Fatalf("%d problems + %d more, rows %+v; want 7 + 23, 30 reported", len(sum.Problems), sum.MoreProblems, sum.Rows)
		}
	})
}

// TestWideRowCostsLittle: a row of 500,000 values is refused while it is
// read, not after it has been split into 500,000 strings.
func TestWideRowCostsLittle(t *testing.T) {
	data := []byte(shortHeader + "\nA1,GB,1,2026-03-01,x" + strings.Repeat(",y", 500000) + "\n")
	p := writeTemp(t, "a.csv", data)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, sum := readFile(t, p, Options{})
	runtime.ReadMemStats(&after)
	if !sum.Rejected() || !strings.Contains(sum.Problems[0].Hint, "max_columns") {
		t.Fatalf("problems %+v", sum.Problems)
	}
	// The sniff and the first pass each stop within one 64 KiB buffer;
	// reading the whole line would cost 1 MB, splitting it 8 MB more.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("allocated %d bytes to refuse a wide row", alloc)
	}
}

// TestAccountRejects: counts that do not add up reject the file, naming
// it a bug.
func TestAccountRejects(t *testing.T) {
	rd, err := newReader(context.Background(), Options{}, nil, func(Record) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	rd.account(unit{member: "m.csv"}, RowCount{In: 5, Out: 2, Reported: 1, Skipped: 1})
	sum := rd.finish(true)
	if !sum.Rejected() || !strings.Contains(sum.Problems[0].Reason, "rows did not add up: 5 read, but 2 sent, 1 reported and 1 skipped") {
		t.Fatalf("problems %+v", sum.Problems)
	}
	rd, _ = newReader(context.Background(), Options{}, nil, func(Record) error { return nil })
	rd.sum.Records, rd.sent = 3, 2
	rd.sum.Rows = []RowCount{{In: 4, Out: 3, Skipped: 1}}
	if sum := rd.finish(true); !sum.Rejected() || !strings.Contains(sum.Problems[0].Reason, "3 records read, 3 counted by table, 2 written") {
		t.Fatalf("problems %+v", sum.Problems)
	}
}

// TestZipDirectoryCostsLittle: a zip listing more entries than the cap is
// refused from its end record, before archive/zip builds its list.
func TestZipDirectoryCostsLittle(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i < 50000; i++ {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("e%05d.csv", i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	p := writeTemp(t, "a.zip", b.Bytes())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, sum := readFile(t, p, Options{})
	runtime.ReadMemStats(&after)
	if !sum.Rejected() || !strings.Contains(sum.Problems[0].Reason, "50000 entries") {
		t.Fatalf("problems %+v", sum.Problems)
	}
	// archive/zip's list of 50,000 entries alone is over 10 MB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("allocated %d bytes to refuse the zip", alloc)
	}
}
