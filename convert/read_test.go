package convert

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// writeTemp writes b as a file called name in a temp dir.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func encode16(t *testing.T, s string, be bool) []byte {
	t.Helper()
	e := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)
	if be {
		e = unicode.UTF16(unicode.BigEndian, unicode.UseBOM)
	}
	b, err := e.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encode1252(t *testing.T, s string) []byte {
	t.Helper()
	b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const tmplHeader = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,DESCRIPTION\n"

func TestReadDialects(t *testing.T) {
	want := []Record{
		{Account: "A1", UOM: "GB", Qty: "3.5", Start: "2026-03-14", End: "2026-03-15", Description: "Zürich, \"east\""},
		{Account: "A2", UOM: "GB", Qty: "1", Start: "2026-03-02", Description: "line one\nline two"},
	}
	friendly := "Acct No|Unit|Qty|Usage Date|End Date|Description\n" +
		"A1|GB|3.5|03/14/2026|03/15/2026|\"Zürich, \"\"east\"\"\"\n" +
		"A2|GB|1|03/02/2026||\"line one\nline two\"\n"
	tests := []struct {
		name string
		file string
		data []byte
		opt  Options
	}{
		{"pipe delimited", "a.csv", []byte(friendly), Options{}},
		{"semicolon CRLF decimal comma dotted", "a.csv", []byte(strings.ReplaceAll(
			"Account Number;UOM;Quantity;Start Date;End Date;Description\n"+
				"A1;GB;3,5;14.03.2026;15.03.2026;\"Zürich, \"\"east\"\"\"\n"+
				"A2;GB;1;02.03.2026;;\"line one\nline two\"\n", "\n", "\r\n")), Options{}},
		{"windows-1252", "a.txt", encode1252(t, strings.ReplaceAll(friendly, "|", ",")), Options{}},
		{"windows-1252 override", "a.txt", encode1252(t, strings.ReplaceAll(friendly, "|", ",")), Options{Encoding: "windows-1252"}},
		{"utf-16be tab", "a.txt", encode16(t, strings.ReplaceAll(friendly, "|", "\t"), true), Options{}},
		{"utf-16le tab", "a.txt", encode16(t, strings.ReplaceAll(friendly, "|", "\t"), false), Options{}},
		{"utf-8 BOM title rows", "a.csv", append([]byte("\xEF\xBB\xBFUsage for March\n\n,,\n"), strings.ReplaceAll(friendly, "|", ",")...), Options{}},
		{"excel sep= hint line", "a.csv", []byte("sep=;\n" + strings.ReplaceAll(strings.ReplaceAll(friendly, ";", ","), "|", ";")), Options{}},
		{"column override", "a.csv", []byte(strings.Replace(friendly, "Acct No", "Kunde", 1)), Options{Columns: map[string]string{"ACCOUNT_ID": "kunde"}}},
		{"configured day-first", "a.csv", []byte(
			"ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,DESCRIPTION\n" +
				"A1,GB,3.5,14/03/2026,15/03/2026,\"Zürich, \"\"east\"\"\"\n" +
				"A2,GB,1,02/03/2026,,\"line one\r\nline two\"\n"), Options{DateFormat: "DD/MM/YYYY"}},
		{"ISO dates and blank rows", "a.csv", []byte(
			"ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,DESCRIPTION\n" +
				"A1,GB,3.5,2026-03-14,2026-03-15,\"Zürich, \"\"east\"\"\"\n,,,,,\n\n" +
				"A2,GB,1,2026-03-02,,\"line one\nline two\"\n"), Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sum := readFile(t, writeTemp(t, tt.file, tt.data), tt.opt)
			if sum.Rejected() {
				t.Fatalf("rejected: %+v", sum.Problems)
			}
			if len(recs) != len(want) {
				t.Fatalf("got %d records, want %d: %+v", len(recs), len(want), recs)
			}
			for i := range want {
				if !reflect.DeepEqual(recs[i], want[i]) {
					t.Errorf("record %d = %+v, want %+v", i, recs[i], want[i])
				}
			}
		})
	}
}

func TestReadProblems(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		data   string
		opt    Options
		line   int
		column string
		reason string // a fragment
	}{
		{"ambiguous dates", "a.csv", tmplHeader + "A1,GB,1,03/04/2026,,,,\nA2,GB,1,05/06/2026,,,,\n", Options{}, 0, "", "date_format"},
		{"grouped thousands in a semicolon file", "a.csv", "ACCOUNT_ID;UOM;QTY;STARTDATE\nA1;GB;1.000;2026-03-01\nA1;GB;2.500;2026-03-01\n", Options{}, 0, "", "thousands separator or a decimal point"},
		{"ambiguous decimal comma", "a.csv", tmplHeader + "A1,GB,\"1,500\",2026-03-04,,,,\n", Options{}, 0, "", "decimal_comma"},
		{"comma refused when configured no", "a.csv", "ACCOUNT_ID;UOM;QTY;STARTDATE\nA1;GB;3,5;2026-03-01\n", Options{DecimalComma: "no"}, 2, "QTY", "thousands separators"},
		{"point refused in a decimal-comma file", "a.csv", "ACCOUNT_ID;UOM;QTY;STARTDATE\nA1;GB;3,5;2026-03-01\nA1;GB;1.5;2026-03-01\n", Options{DecimalComma: "yes"}, 3, "QTY", "decimal point"},
		{"contradicting date after the order is settled", "a.csv", tmplHeader + "A1,GB,1,03/14/2026,,,,\nA1,GB,1,14/03/2026,,,,\n", Options{}, 3, "STARTDATE", "format is invalid"},
		{"missing header", "a.csv", "x,y\n1,2\n", Options{}, 0, "", "missing ACCOUNT_ID, UOM, QTY, STARTDATE"},
		{"missing column names the found ones", "a.csv", "Account,Quantity,Date\nA1,1,2026-03-01\n", Options{}, 0, "", `"Account", "Quantity", "Date"`},
		{"configured ISO refuses other dates", "a.csv", tmplHeader + "A1,GB,1,03/04/2026,,,,\n", Options{DateFormat: "YYYY-MM-DD"}, 2, "STARTDATE", "format is invalid"},
		{"negative qty", "a.csv", tmplHeader + "A1,GB,-1,2026-03-01,,,,\n", Options{}, 2, "QTY", "less than 0"},
		{"exponent qty", "a.csv", tmplHeader + "A1,GB,1E+3,2026-03-01,,,,\n", Options{}, 2, "QTY", "not a number"},
		{"14 digits", "a.csv", tmplHeader + "A1,GB,12345678901234,2026-03-01,,,,\n", Options{}, 2, "QTY", "13 digits"},
		{"17 chars", "a.csv", tmplHeader + "A1,GB,1.123456789012345,2026-03-01,,,,\n", Options{}, 2, "QTY", "16 characters"},
		{"end before start", "a.csv", tmplHeader + "A1,GB,1,2026-03-02,2026-03-01,,,\n", Options{}, 2, "ENDDATE", "cannot be after"},
		{"february 30", "a.csv", tmplHeader + "A1,GB,1,2026-02-30,,,,\n", Options{}, 2, "STARTDATE", "format is invalid"},
		{"emoji", "a.csv", tmplHeader + "A1,GB,1,2026-02-03,,,,fun 🎉\n", Options{}, 2, "DESCRIPTION", "emoji"},
		{"long description", "a.csv", tmplHeader + "A1,GB,1,2026-02-03,,,," + strings.Repeat("é", 201) + "\n", Options{}, 2, "DESCRIPTION", "200 character"},
		{"duplicate unique key", "a.csv", "ACCOUNT_ID,UOM,QTY,STARTDATE,UNIQUE_KEY\nA1,GB,1,2026-02-03,k1\nA1,GB,1,2026-02-03,k1\n", Options{}, 3, "UNIQUE_KEY", "more than once"},
		{"totals row", "a.csv", tmplHeader + "A1,GB,1,2026-02-03,,,,\n,,1,,,,,Total\n", Options{}, 3, "ACCOUNT_ID", "missing"},
		{"bare quote", "a.csv", tmplHeader + "A1,GB,1,2026-02-03,,,,ok\nA1,GB,1,2026-02-03,,,,5\" disk\n", Options{}, 3, "", "not valid CSV"},
		{"line after quoted newline", "a.csv", tmplHeader + "A1,GB,1,2026-02-03,,,,\"a\nb\"\n\nA1,,1,2026-02-03,,,,\n", Options{}, 4, "UOM", "UOM is missing"},
		{"long value quoted short", "a.csv", tmplHeader + "A1,GB,1,2026-02-03,,,," + strings.Repeat("é", 300) + "\n", Options{}, 2, "DESCRIPTION", "200 character"},
		{"record over 1 MiB", "a.csv", tmplHeader + "A1,GB,1,2026-02-03,,,,\"" + strings.Repeat("x\n", 600000) + "\"\n", Options{}, 2, "", "longer than 1048576 bytes"},
		{"line over 1 MiB", "a.csv", tmplHeader + "A1,GB,1,2026-02-03,,,," + strings.Repeat("x", 1<<21) + "\n", Options{}, 2, "", "longer than 1048576 bytes"},
		{"xls", "a.xls", "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest", Options{}, 0, "", "save it as .xlsx"},
		{"ods by name", "a.ods", "hello", Options{}, 0, "", "not in that format"},
		{"unknown extension", "a.pdf", "%PDF-1.4", Options{}, 0, "", "unknown file type"},
		{"empty", "a.csv", "", Options{}, 0, "", "empty"},
		{"header only", "a.csv", tmplHeader, Options{}, 0, "", "no usage rows"},
		{"utf-16 without BOM", "a.csv", "A\x00C\x00", Options{}, 0, "", "NUL"},
		{"two start columns", "a.csv", "Account,UOM,Qty,Date,Start Date\nA1,GB,1,2026-03-01,2026-03-01\n", Options{}, 1, "", "both look like STARTDATE"},
		{"template lacks unique key column", "a.csv", "ACCOUNT_ID,UOM,QTY,STARTDATE,UNIQUE_KEY\nA1,GB,1,2026-02-03,k1\n", Options{}, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sum := readFile(t, writeTemp(t, tt.file, []byte(tt.data)), tt.opt)
			if tt.reason == "" {
				return // checked by TestWriteTemplateCarries
			}
			if !sum.Rejected() {
				t.Fatal("not rejected")
			}
			p := sum.Problems[0]
			if len(p.Value) > DefaultCaps().MaxValueBytes {
				t.Errorf("problem quotes %d bytes of value", len(p.Value))
			}
			if p.Line != tt.line || p.Column != tt.column || !strings.Contains(p.Reason+"\n"+p.Hint, tt.reason) {
				t.Fatalf("problem %+v, want line %d column %q reason containing %q", p, tt.line, tt.column, tt.reason)
			}
		})
	}
}

// TestReadLateEvidence covers evidence that appears only after the first
// pass stopped: it must still settle the file, or reject it, as a full
// scan would.
func TestReadLateEvidence(t *testing.T) {
	iso := strings.Repeat("A1;GB;2;2026-03-01;;;;\n", 1500)
	tests := []struct {
		name, tail string
		opt        Options
		want       Record // the last record, when imported
		reason     string // a fragment of the file problem, when rejected
	}{
		{"late ambiguous date", "A1;GB;2;03/04/2026;;;;\n", Options{}, Record{}, "date_format"},
		{"late fixing date", "A1;GB;2;03/04/2026;;;;\nA1;GB;2;14/04/2026;;;;\n", Options{}, Record{Account: "A1", UOM: "GB", Qty: "2", Start: "2026-04-14"}, ""},
		{"late decimal comma", "A1;GB;1,5;2026-03-01;;;;\n", Options{}, Record{Account: "A1", UOM: "GB", Qty: "1.5", Start: "2026-03-01"}, ""},
		{"late grouped point", "A1;GB;1.500;2026-03-01;;;;\n", Options{}, Record{}, "thousands separator or a decimal point"},
		{"late grouped point settled by a decimal", "A1;GB;1.500;2026-03-01;;;;\nA1;GB;1.25;2026-03-01;;;;\n", Options{}, Record{Account: "A1", UOM: "GB", Qty: "1.25", Start: "2026-03-01"}, ""},
		{"late comma then point", "A1;GB;1,5;2026-03-01;;;;\nA1;GB;1.5;2026-03-01;;;;\n", Options{}, Record{}, "QTY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.ReplaceAll(tmplHeader, ",", ";") + iso + tt.tail
			recs, sum := readFile(t, writeTemp(t, "a.csv", []byte(in)), tt.opt)
			if tt.reason != "" {
				if !sum.Rejected() || !strings.Contains(sum.Problems[0].Reason+sum.Problems[0].Column+sum.Problems[0].Hint, tt.reason) {
					t.Fatalf("problems %+v, want one about %q", sum.Problems, tt.reason)
				}
				return
			}
			if sum.Rejected() || !reflect.DeepEqual(recs[len(recs)-1], tt.want) {
				t.Fatalf("problems %+v, last record %+v, want %+v", sum.Problems, recs[len(recs)-1], tt.want)
			}
		})
	}
}

func TestReadCapsProblems(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(tmplHeader)
	for i := 0; i < 250; i++ {
		b.WriteString("A1,,1,2026-03-01,,,,\n")
	}
	_, sum := readFile(t, writeTemp(t, "a.csv", b.Bytes()), Options{Caps: Caps{MaxProblems: 10}})
	if len(sum.Problems) != 10 || sum.MoreProblems != 240 {
		t.Fatalf("problems %d + %d more, want 10 + 240", len(sum.Problems), sum.MoreProblems)
	}
}

func TestReadIgnoredColumns(t *testing.T) {
	_, sum := readFile(t, writeTemp(t, "a.csv", []byte("Region,ACCOUNT_ID,UOM,QTY,STARTDATE,Notes\nEU,A1,GB,1,2026-03-01,x\n")), Options{})
	if sum.Rejected() || strings.Join(sum.Ignored, ",") != "Notes,Region" {
		t.Fatalf("summary %+v, want Notes and Region ignored", sum)
	}
}

func TestReadOptionErrors(t *testing.T) {
	for _, opt := range []Options{{DateFormat: "YY/MM/DD"}, {DecimalComma: "maybe"}, {Columns: map[string]string{"AMOUNT": "x"}}} {
		p := writeTemp(t, "a.csv", []byte(tmplHeader))
		f, _ := os.Open(p)
		_, err := Read(context.Background(), "a.csv", f, 10, opt, func(Record) error { return nil })
		f.Close()
		if err == nil {
			t.Errorf("%+v: no error", opt)
		}
	}
}

func TestReadStops(t *testing.T) {
	path := copyFixture(t, "partner-template.csv")
	errStop := errors.New("stop")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		fn   func(Record) error
		want error
	}{
		{"fn error", context.Background(), func(Record) error { return errStop }, errStop},
		{"cancelled", ctx, func(Record) error { return nil }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			sum, err := Read(tt.ctx, "p.csv", f, st.Size(), Options{}, tt.fn)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if sum.Records > 1 {
				t.Fatalf("%d records after the stop", sum.Records)
			}
		})
	}
}
