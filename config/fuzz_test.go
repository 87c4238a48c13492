package config

import (
	"strings"
	"testing"
	"time"
)

// FuzzParse: no text makes Parse panic or hang, and every problem it
// reports is one line in the promised shape.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"workers: two\nsources:\n  - {name: a, type: local, path: x, setle: 1s}\n",
		"x: &a {b: *a}\n",
		"sources: &s\n  - *s\n",
		"zuora:\n\tendpoint: x\n",
		"a: b: c\n",
		"- [1, {a: *b}]\n",
		"<<: {ledger: x}\n",
		"limits: {max_columns: 1e99}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err = Parse(strings.NewReader(s))
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Parse(%q) takes more than 5 s", s)
		}
		if ve, ok := err.(*ValidationError); ok {
			for _, p := range ve.Problems {
				if p == "" || strings.Contains(p, "\n") {
					t.Fatalf("problem %q", p)
				}
			}
		}
	})
}
