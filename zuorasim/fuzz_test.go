package zuorasim

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"usagedrop/internal/testutil"
)

// FuzzParseUsage feeds arbitrary files to the sim's template reader: it
// must never panic, and what it accepts must be whole and normalised.
func FuzzParseUsage(f *testing.F) {
	for _, name := range []string{"partner-template.csv", "bad-rows.csv"} {
		if b, err := os.ReadFile(filepath.Join(testutil.Fixtures(f), name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(tinyCSV))
	f.Add([]byte("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,UNIQUE_KEY\nA,B,1,1/2/2026,,,,k\nA,B,1,1/2/2026,,,,k\n"))
	iso := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, total, problems := parseUsage(data, Options{DateFormat: "MM/DD/YYYY"}, 146)
		if len(problems) > 0 {
			if len(recs) != 0 {
				t.Fatalf("%d records kept from a file with problems", len(recs))
			}
			return
		}
		if len(recs) != total {
			t.Fatalf("%d records of %d rows", len(recs), total)
		}
		for _, r := range recs {
			if !iso.MatchString(r.Start) || (r.End != "" && !iso.MatchString(r.End)) || r.Account == "" || r.UOM == "" || checkQty(r.Qty) != "" {
				t.Fatalf("accepted a bad record %+v", r)
			}
		}
	})
}
