package convert

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestLengthsCountedAsZuora: a limit counts UTF-16 units, as Zuora (Java)
// does, so a character outside the Basic Multilingual Plane counts two.
// 𠀀 (U+20000) is such a character and no emoji.
func TestLengthsCountedAsZuora(t *testing.T) {
	const wide = "𠀀"
	tests := []struct {
		name, account, subscription string
		wantCol                     string // "" accepted
	}{
		{"account at 50 units", strings.Repeat("x", 48) + wide, "", ""},
		{"account at 51 units, 50 runes", strings.Repeat("x", 49) + wide, "", "ACCOUNT_ID"},
		{"subscription at 100 units", "A1", strings.Repeat("é", 98) + wide, ""},
		{"subscription at 101 units, 100 runes", "A1", strings.Repeat("é", 99) + wide, "SUBSCRIPTION_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tmplHeader + tt.account + ",GB,1,03/16/2026,," + tt.subscription + ",,\n"
			recs, sum := readFile(t, writeTemp(t, "u.csv", []byte(in)), Options{DateFormat: "MM/DD/YYYY"})
			switch {
			case tt.wantCol == "" && (sum.Rejected() || len(recs) != 1):
				t.Fatalf("refused: %+v", sum.Problems)
			case tt.wantCol != "" && (len(sum.Problems) != 1 || sum.Problems[0].Column != tt.wantCol || !strings.Contains(sum.Problems[0].Reason, "is too long: at most")):
				t.Fatalf("problems %+v, want one on %s", sum.Problems, tt.wantCol)
			}
		})
	}
}

// TestCustomFieldsInTemplate: a custom field of the template is read from
// the source's column of its name, its name without "__c", or the one
// columns: maps to it; a template without one ignores the column, and a
// custom field whose column the file lacks is written empty.
func TestCustomFieldsInTemplate(t *testing.T) {
	tests := []struct {
		name, header string
		columns      map[string]string
		template     []string
		want         string // the template's header and first row
	}{
		{"by name", "Region__c", nil, []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "Region__c"},
			"ACCOUNT_ID,UOM,QTY,STARTDATE,Region__c\r\nA1,GB,1,03/16/2026,\"EMEA, north\"\r\n"},
		{"without __c, placed first", "region", nil, []string{"Region__c", "ACCOUNT_ID", "UOM", "QTY", "STARTDATE"},
			"Region__c,ACCOUNT_ID,UOM,QTY,STARTDATE\r\n\"EMEA, north\",A1,GB,1,03/16/2026\r\n"},
		{"mapped", "Sales Region", map[string]string{"Region__c": "Sales Region"}, []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "Region__c"},
			"ACCOUNT_ID,UOM,QTY,STARTDATE,Region__c\r\nA1,GB,1,03/16/2026,\"EMEA, north\"\r\n"},
		{"not in the file", "Notes", nil, []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE", "Region__c"},
			"ACCOUNT_ID,UOM,QTY,STARTDATE,Region__c\r\nA1,GB,1,03/16/2026,\r\n"},
		{"not in the template", "Region", nil, []string{"ACCOUNT_ID", "UOM", "QTY", "STARTDATE"},
			"ACCOUNT_ID,UOM,QTY,STARTDATE\r\nA1,GB,1,03/16/2026\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "Account,UOM,QTY,Date," + tt.header + "\nA1,GB,1,2026-03-16,\"EMEA, north\"\n"
			var out bytes.Buffer
			sum, err := WriteTemplate(context.Background(), "u.csv", strings.NewReader(in), int64(len(in)),
				Options{Columns: tt.columns}, Template{Columns: tt.template}, &out)
			if err != nil || sum.Rejected() {
				t.Fatalf("%v, problems %+v", err, sum.Problems)
			}
			if out.String() != tt.want {
				t.Fatalf("template\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}
