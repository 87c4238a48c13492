package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fixtureDir holds the shared fixtures; they are read-only and copied into
// a temp dir before use.
const fixtureDir = "/work/shared/fixtures"

type expectation struct {
	Outcome string `json:"outcome"`
	Count   int    `json:"count"`
	Digest  string `json:"digest"`
	BadRows []struct {
		Line   int    `json:"line"`
		Column string `json:"column"`
	} `json:"bad_rows"`
}

func loadExpected(t *testing.T) map[string]expectation {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "expected.json"))
	if err != nil {
		t.Skipf("shared fixtures not available: %v", err)
	}
	var exp map[string]expectation
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	return exp
}

// copyFixture copies a shared fixture into the test's temp dir.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pyQuote is Python's json string encoding with ensure_ascii=False.
func pyQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// canonical is json.dumps(rec, sort_keys=True, ensure_ascii=False).
func canonical(r Record) string {
	kv := [][2]string{
		{"account", r.Account}, {"charge", r.Charge}, {"description", r.Description},
		{"end", r.End}, {"qty", r.Qty}, {"start", r.Start},
		{"subscription", r.Subscription}, {"uom", r.UOM},
	}
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = pyQuote(p[0]) + ": " + pyQuote(p[1])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// digest is the documented digest of a set of records.
func digest(recs []Record) string {
	lines := make([]string, len(recs))
	for i, r := range recs {
		lines[i] = canonical(r)
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:])
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
