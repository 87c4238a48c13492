package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"usagedrop/convert"
	"usagedrop/internal/testutil"
)

// TestCheckSaysWhatToWrite runs `usagedrop check` as a user would, on a
// source that writes decimal points: each problem names the column as
// the file does beside Zuora's and says what to write; the counts are
// true; the settings behind the problems are said once, for the
// administrator.
func TestCheckSaysWhatToWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "usagedrop.yaml")
	if err := os.WriteFile(cfg, []byte("zuora:\n  endpoint: builtin\nsources:\n  - name: eu\n    type: local\n    path: "+dir+"\n    decimal_comma: \"no\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var many strings.Builder
	many.WriteString("Account Number,Unit,Quantity,Start Date\n")
	for i := range 223 {
		fmt.Fprintf(&many, "A%d,GB,lots,03/26/2026\n", i)
	}
	manyPath := filepath.Join(dir, "many.csv")
	if err := os.WriteFile(manyPath, []byte(many.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		say  []string
		not  []string
	}{
		{"bad rows", testutil.CopyFixture(t, "bad-rows.csv"), []string{
			`:13: STARTDATE: The STARTDATE format is invalid; write dates as 03/26/2026 (month, day, year) (got "13/45/2026")`,
			`:31: ACCOUNT_ID: The ACCOUNT_ID is too long: at most 50 characters (this one has 51)`,
			"bad-rows.csv: REJECTED: 4 problems need fixing; nothing would be sent",
		}, []string{"for the administrator", "listed above"}},
		{"decimal commas where points are set", testutil.CopyFixture(t, "eu-export.csv"), []string{
			`eu-export.csv:2: Quantity (QTY): The QTY is not a plain number; write quantities as 1250 or 12.5, without thousands separators, or ask your usagedrop administrator to accept decimal commas (got "3,125")`,
			"eu-export.csv: for the administrator: if the source's files write 3,5 for 3.5, set decimal_comma: yes in the source's settings\n",
			"eu-export.csv: REJECTED: 92 problems need fixing; nothing would be sent",
		}, []string{"listed above"}},
		{"223 problems", manyPath, []string{
			"many.csv:2: Quantity (QTY): The QTY is not a number",
			"many.csv: the first 100 of 223 problems are listed above\n",
			"many.csv: REJECTED: 223 problems need fixing; nothing would be sent",
		}, []string{"for the administrator"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"check", "-config", cfg, "-source", "eu", tt.file}, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
			}
			for _, w := range tt.say {
				if !strings.Contains(out.String(), w) {
					t.Errorf("check does not say %q:\n%.3000s", w, out.String())
				}
			}
			for _, w := range tt.not {
				if strings.Contains(out.String(), w) {
					t.Errorf("check says %q:\n%.3000s", w, out.String())
				}
			}
		})
	}
}

func TestCheckLine(t *testing.T) {
	tests := []struct {
		pr   convert.Problem
		want string
	}{
		{convert.Problem{Line: 13, Column: "STARTDATE", Header: "Start Date", Value: "13/45/2026", Reason: "bad"}, `f.csv:13: Start Date (STARTDATE): bad (got "13/45/2026")`},
		{convert.Problem{Line: 8, Column: "UOM", Reason: "missing"}, `f.csv:8: UOM: missing (got "")`},
		{convert.Problem{Member: "a\x1b.csv", Sheet: "S", Line: 2, Column: "column F", Header: "Note\n", Value: "\x00", Reason: "control"}, `f.csv!a\x1b.csv[S]:2: Note\n (column F): control (got "\x00")`},
		{convert.Problem{Reason: "the file holds no rows", Hint: "not shown here"}, `f.csv: the file holds no rows`},
	}
	for _, tt := range tests {
		if got := checkLine("f.csv", tt.pr); got != tt.want {
			t.Errorf("checkLine = %q\nwant %q", got, tt.want)
		}
	}
}
