package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"usagedrop/internal/testutil"
)

var (
	plainDecimal = regexp.MustCompile(`^[0-9]{1,13}(\.[0-9]+)?$`)
	isoDate      = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// checkRecords asserts what every emitted record must satisfy, whatever
// the input was.
func checkRecords(t *testing.T, data []byte, name string) {
	n := 0
	sum, err := Read(context.Background(), name, bytes.NewReader(data), int64(len(data)), Options{Caps: Caps{MaxProblems: 5}}, func(r Record) error {
		n++
		if r.Account == "" || r.UOM == "" || !plainDecimal.MatchString(r.Qty) || len(r.Qty) > 16 || !isoDate.MatchString(r.Start) {
			t.Fatalf("invalid record emitted: %+v", r)
		}
		if r.End != "" && (!isoDate.MatchString(r.End) || r.End < r.Start) {
			t.Fatalf("invalid end date emitted: %+v", r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("error for in-memory input: %v", err)
	}
	if sum.Records != n {
		t.Fatalf("summary says %d records, fn saw %d", sum.Records, n)
	}
	checkRows(t, sum)
	if len(sum.Problems) > 5 {
		t.Fatalf("%d problems kept, cap is 5", len(sum.Problems))
	}
	for _, p := range sum.Problems {
		if p.Reason == "" {
			t.Fatalf("problem without a reason: %+v", p)
		}
	}
}

// addSeeds adds the shared fixtures with the given extension and testdata.
func addSeeds(f *testing.F, exts ...string) {
	for _, dir := range []string{testutil.Fixtures(f), "testdata"} {
		for _, ext := range exts {
			paths, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
			for _, p := range paths {
				if b, err := os.ReadFile(p); err == nil {
					f.Add(b)
				}
			}
		}
	}
}

func FuzzReadCSV(f *testing.F) {
	addSeeds(f, ".csv")
	f.Add([]byte(tmplHeader + "A1,GB,\"1,5\",03/04/2026,,,,\"a\nb\"\r\n\n"))
	f.Add([]byte("\xFF\xFEA\x00;\x00"))
	f.Add([]byte("Title\n\nAcct No|UOM|Qty|Date\nA|B|1|1.2.2026\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecords(t, data, "fuzz.csv")
	})
}

func FuzzReadZip(f *testing.F) {
	addSeeds(f, ".zip")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecords(t, data, "fuzz.zip")
	})
}

// FuzzReadXLSX drives damaged and mutated workbooks through Read: the
// workbook reader beneath must fail cleanly, and what reaches fn must
// still be valid.
func FuzzReadXLSX(f *testing.F) {
	addSeeds(f, ".xlsx")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecords(t, data, "fuzz.xlsx")
	})
}
