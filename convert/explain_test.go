package convert

import (
	"strings"
	"testing"
)

// friendlyHeader is a header as a finance team writes it.
const friendlyHeader = "Account Number,Unit of Measure,Quantity,Start Date,End Date,Subscription,Charge,Description\n"

// TestProblemSentences holds each row problem to the words a finance user
// reads: the column as they named it beside Zuora's, what is wrong, and
// what to write instead in the file's own conventions.
func TestProblemSentences(t *testing.T) {
	long := strings.Repeat("A", 63)
	tests := []struct {
		name   string
		data   string
		opt    Options
		column string // Problem.ColumnName()
		reason string // the whole Reason
		hint   string // the whole Hint
	}{
		{"date, month first", friendlyHeader + "A1,GB,1,03/14/2026,,,,\nA1,GB,1,13/45/2026,,,,\n", Options{},
			"Start Date (STARTDATE)", "The STARTDATE format is invalid; write dates as 03/26/2026 (month, day, year)", ""},
		{"date, day first with dots", friendlyHeader + "A1,GB,1,14.03.2026,,,,\nA1,GB,1,31.02.2026,,,,\n", Options{},
			"Start Date (STARTDATE)", "The STARTDATE format is invalid; write dates as 26.03.2026 (day, month, year)", ""},
		{"date, configured day first", friendlyHeader + "A1,GB,1,soon,,,,\n", Options{DateFormat: "DD/MM/YYYY"},
			"Start Date (STARTDATE)", "The STARTDATE format is invalid; write dates as 26/03/2026 (day, month, year)", ""},
		{"date, configured ISO", friendlyHeader + "A1,GB,1,03/04/2026,,,,\n", Options{DateFormat: "YYYY-MM-DD"},
			"Start Date (STARTDATE)", "The STARTDATE format is invalid; write dates as 2026-03-26 (year, month, day)", ""},
		{"end date", friendlyHeader + "A1,GB,1,03/14/2026,03/40/2026,,,\n", Options{},
			"End Date (ENDDATE)", "The ENDDATE format is invalid; write dates as 03/26/2026 (month, day, year)", ""},
		{"start date missing", friendlyHeader + "A1,GB,1,03/14/2026,,,,\nA1,GB,1,,,,,\n", Options{},
			"Start Date (STARTDATE)", "The STARTDATE is missing; write dates as 03/26/2026 (month, day, year)", ""},
		{"quantity not a number", friendlyHeader + "A1,GB,twelve,2026-03-14,,,,\n", Options{},
			"Quantity (QTY)", "The QTY is not a number; write quantities as 1250 or 12.5, without thousands separators", ""},
		{"quantity with a comma, decimal_comma off", friendlyHeader + "A1,GB,\"3,125\",2026-03-14,,,,\n", Options{DecimalComma: "no"},
			"Quantity (QTY)", "The QTY is not a plain number; write quantities as 1250 or 12.5, without thousands separators, or ask your usagedrop administrator to accept decimal commas",
			"if the source's files write 3,5 for 3.5, set decimal_comma: yes in the source's settings"},
		{"quantity with a point, decimal_comma on", strings.ReplaceAll(friendlyHeader, ",", ";") + "A1;GB;3.5;2026-03-14;;;;\n", Options{DecimalComma: "yes"},
			"Quantity (QTY)", "The QTY has a decimal point, but this file writes decimal commas; write quantities as 1250 or 12,5, without thousands separators",
			"decimal_comma: yes is set for this source, or was inferred from the file's other quantities"},
		{"quantity missing, decimal comma", strings.ReplaceAll(friendlyHeader, ",", ";") + "A1;GB;1,5;2026-03-14;;;;\nA1;GB;;2026-03-14;;;;\n", Options{},
			"Quantity (QTY)", "The QTY is missing; write quantities as 1250 or 12,5, without thousands separators", ""},
		{"quantity too long", friendlyHeader + "A1,GB,1.12345678901234567,2026-03-14,,,,\n", Options{},
			"Quantity (QTY)", "The QTY is too long: at most 16 characters (this one has 19)", ""},
		{"account too long", friendlyHeader + long + ",GB,1,2026-03-14,,,,\n", Options{},
			"Account Number (ACCOUNT_ID)", "The ACCOUNT_ID is too long: at most 50 characters (this one has 63)", ""},
		{"account missing", friendlyHeader + ",GB,1,2026-03-14,,,,\n", Options{},
			"Account Number (ACCOUNT_ID)", "The ACCOUNT_ID is missing; every row needs the Zuora account number", ""},
		{"Zuora's own header is not repeated", tmplHeader + "A1,,1,2026-03-14,,,,\n", Options{},
			"UOM", "The UOM is missing; every row needs its unit of measure, as Zuora names it (e.g. GB)", ""},
		{"a mapped header", "Customer No,UOM,QTY,STARTDATE\n" + long + ",GB,1,2026-03-14\n", Options{Columns: map[string]string{"ACCOUNT_ID": "Customer No"}},
			"Customer No (ACCOUNT_ID)", "The ACCOUNT_ID is too long: at most 50 characters (this one has 63)", ""},
		{"an ignored column named", "ACCOUNT_ID,UOM,QTY,STARTDATE,Notes\nA1,GB,1,2026-03-14,a\x1bb\n", Options{},
			"Notes (column E)", "the value holds the control character ESC (0x1B), which no usage file should; the file may be damaged, or binary data was pasted into it", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sum := readBytes(t, "a.csv", []byte(tt.data), tt.opt)
			if len(sum.Problems) != 1 {
				t.Fatalf("problems %+v, want one", sum.Problems)
			}
			p := sum.Problems[0]
			if p.ColumnName() != tt.column || p.Reason != tt.reason || p.Hint != tt.hint {
				t.Errorf("got column %q\nreason %q\nhint %q\nwant column %q\nreason %q\nhint %q", p.ColumnName(), p.Reason, p.Hint, tt.column, tt.reason, tt.hint)
			}
		})
	}
}

// TestReasonsNameNoSetting: what only an operator can change is in Hint;
// the user's Reason says to ask, in their words.
func TestReasonsNameNoSetting(t *testing.T) {
	settings := []string{"decimal_comma", "date_format", "under columns:", "encoding:", "max_", "zuora.", "limits."}
	tests := []struct {
		name, file, data string
		opt              Options
		hint             string // a fragment of Hint
	}{
		{"ambiguous dates", "a.csv", tmplHeader + "A1,GB,1,03/04/2026,,,,\n", Options{}, "date_format"},
		{"ambiguous decimal comma", "a.csv", tmplHeader + "A1,GB,\"1,500\",2026-03-04,,,,\n", Options{}, "decimal_comma"},
		{"ambiguous grouped point", "a.csv", strings.ReplaceAll(tmplHeader, ",", ";") + "A1;GB;1.500;2026-03-04;;;;\n", Options{}, "decimal_comma"},
		{"no header", "a.csv", "Kunde,Menge\nA1,1\n", Options{}, "columns:"},
		{"two account columns", "a.csv", "Account,Account Number,UOM,QTY,STARTDATE\nA1,A1,GB,1,2026-03-04\n", Options{}, "columns:"},
		{"NUL bytes", "a.csv", "A\x00C\x00C\x00\n", Options{}, "encoding:"},
		{"file too large", "a.csv", tmplHeader + "A1,GB,1,2026-03-04,,,,\n", Options{Caps: Caps{MaxFileSize: 20}}, "limits.max_file_size"},
		{"too many columns", "a.csv", shortHeader + "\nA1,GB,1,2026-03-01,x" + strings.Repeat(",", 20) + "\n", Options{Caps: Caps{MaxColumns: 10}}, "limits.max_columns"},
		{"value too long", "a.csv", shortHeader + "\nA1,GB,1,2026-03-01," + strings.Repeat("x", 300) + "\n", Options{Caps: Caps{MaxCellBytes: 200}}, "limits.max_cell_bytes"},
		{"comma with decimal_comma off", "a.csv", tmplHeader + "A1,GB,\"3,5\",2026-03-04,,,,\n", Options{DecimalComma: "no"}, "decimal_comma: yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sum := readBytes(t, tt.file, []byte(tt.data), tt.opt)
			if !sum.Rejected() {
				t.Fatal("not rejected")
			}
			hinted := false
			for _, p := range sum.Problems {
				for _, s := range settings {
					if strings.Contains(p.Reason, s) {
						t.Errorf("reason %q names the setting %q", p.Reason, s)
					}
				}
				hinted = hinted || strings.Contains(p.Hint, tt.hint)
			}
			if !hinted {
				t.Errorf("problems %+v: no hint about %q", sum.Problems, tt.hint)
			}
		})
	}
}

func TestDateExample(t *testing.T) {
	tests := []struct {
		o    dateOrder
		raw  string
		want string
	}{
		{orderMDY, "13/45/2026", "write dates as 03/26/2026 (month, day, year)"},
		{orderMDY, "13-45-2026", "write dates as 03-26-2026 (month, day, year)"},
		{orderDMY, "45.13.2026", "write dates as 26.03.2026 (day, month, year)"},
		{orderDMY, "soon", "write dates as 26/03/2026 (day, month, year)"},
		{orderISO, "03.04.2026", "write dates as 2026-03-26 (year, month, day)"},
		{orderUnknown, "x", "write dates as 2026-03-26 (year, month, day)"},
	}
	for _, tt := range tests {
		if got := wantDate(tt.o, tt.raw); got != tt.want {
			t.Errorf("wantDate(%d, %q) = %q, want %q", tt.o, tt.raw, got, tt.want)
		}
	}
}
