package convert

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"usagedrop/internal/testutil"
)

func loadExpected(t *testing.T) map[string]testutil.Expectation { return testutil.Expected(t) }

func copyFixture(t *testing.T, name string) string { return testutil.CopyFixture(t, name) }

// digest is expected.json's digest of a set of records.
func digest(recs []Record) string {
	fr := make([]testutil.FixtureRecord, len(recs))
	for i, r := range recs {
		fr[i] = testutil.FixtureRecord{Account: r.Account, UOM: r.UOM, Qty: r.Qty, Start: r.Start, End: r.End,
			Subscription: r.Subscription, Charge: r.Charge, Description: r.Description}
	}
	return testutil.Digest(fr)
}

// readFile runs Read over a file on disk and collects its records.
func readFile(t *testing.T, path string, opt Options) ([]Record, Summary) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	sum, err := Read(context.Background(), filepath.Base(path), f, st.Size(), opt, func(r Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Read %s: %v", path, err)
	}
	return recs, sum
}

func TestFixtures(t *testing.T) {
	exp := loadExpected(t)
	for name, want := range exp {
		t.Run(name, func(t *testing.T) {
			recs, sum := readFile(t, copyFixture(t, name), Options{})
			checkRows(t, sum)
			switch want.Outcome {
			case "imported":
				if sum.Rejected() {
					t.Fatalf("rejected: %+v", sum.Problems)
				}
				if len(recs) != want.Count || sum.Records != want.Count {
					t.Fatalf("records = %d (summary %d), want %d", len(recs), sum.Records, want.Count)
				}
				if got := digest(recs); got != want.Digest {
					t.Fatalf("digest = %s, want %s", got, want.Digest)
				}
			case "rejected":
				if !sum.Rejected() {
					t.Fatalf("not rejected; %d records", len(recs))
				}
				if len(want.BadRows) == 0 {
					for _, p := range sum.Problems {
						if p.Line != 0 || p.Reason == "" {
							t.Errorf("want one file-level problem, got %+v", p)
						}
					}
					return
				}
				var got []string
				for _, p := range sum.Problems {
					got = append(got, fmt.Sprintf("%d:%s", p.Line, p.Column))
				}
				var wantRows []string
				for _, b := range want.BadRows {
					wantRows = append(wantRows, fmt.Sprintf("%d:%s", b.Line, b.Column))
				}
				if strings.Join(got, " ") != strings.Join(wantRows, " ") {
					t.Fatalf("problems %v, want %v (%+v)", got, wantRows, sum.Problems)
				}
			case "either":
				if sum.Rejected() {
					for _, p := range sum.Problems {
						if p.Reason == "" {
							t.Errorf("rejection without a reason: %+v", p)
						}
					}
					return
				}
				if len(recs) == 0 {
					t.Fatal("imported nothing and rejected nothing")
				}
			default:
				t.Fatalf("unknown outcome %q", want.Outcome)
			}
		})
	}
}

// readAllBytes is a helper for tests reading outputs.
func readAllBytes(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
