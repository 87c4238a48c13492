package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Fixtures returns the directory of the office-made usage fixtures: the
// USAGEDROP_FIXTURES variable, else testdata/fixtures at the module root
// (found from the test's directory). They live in the repository so that a
// clone alone passes its tests.
func Fixtures(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("USAGEDROP_FIXTURES"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			Unavailable(t, "no go.mod above the test's directory")
		}
		dir = parent
	}
	fx := filepath.Join(dir, "testdata", "fixtures")
	if _, err := os.Stat(filepath.Join(fx, "expected.json")); err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	return fx
}

// CopyFixture copies a fixture into the test's temp dir, so that no
// test can change the kept copy, and returns its path.
func CopyFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Fixtures(t), name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Expectation is one file's entry in fixtures/expected.json.
type Expectation struct {
	Outcome string `json:"outcome"` // imported, rejected, either
	Count   int    `json:"count"`
	Digest  string `json:"digest"`
	BadRows []struct {
		Line   int    `json:"line"`
		Column string `json:"column"`
	} `json:"bad_rows"`
}

// Expected reads fixtures/expected.json.
func Expected(t testing.TB) map[string]Expectation {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Fixtures(t), "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]Expectation
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	return m
}

// FixtureRecord is a usage record as expected.json normalises it.
type FixtureRecord struct {
	Account, UOM, Qty, Start, End, Subscription, Charge, Description string
}

// Digest is expected.json's digest of a set of records: sha256 over the
// records as canonical JSON lines (Python's json.dumps with sorted keys and
// raw UTF-8), sorted, joined by "\n".
func Digest(recs []FixtureRecord) string {
	lines := make([]string, len(recs))
	for i, r := range recs {
		kv := [][2]string{{"account", r.Account}, {"charge", r.Charge}, {"description", r.Description},
			{"end", r.End}, {"qty", r.Qty}, {"start", r.Start}, {"subscription", r.Subscription}, {"uom", r.UOM}}
		parts := make([]string, len(kv))
		for j, p := range kv {
			parts[j] = pyQuote(p[0]) + ": " + pyQuote(p[1])
		}
		lines[i] = "{" + strings.Join(parts, ", ") + "}"
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:])
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
