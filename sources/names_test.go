package sources

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestShortName(t *testing.T) {
	long := strings.Repeat("a", 251) + ".csv"
	tests := []struct {
		name, in string
		max      int
		keep     string // the start the result must keep
		ext      string
	}{
		{"fits", "march.csv", 255, "march.csv", ".csv"},
		{"exactly max", long, 255, long, ".csv"},
		{"report past max", long, 255 - len(".status.txt"), strings.Repeat("a", 200), ".csv"},
		{"multibyte cut on a rune", strings.Repeat("é", 200) + ".xlsx", 101, "éé", ".xlsx"},
		{"not UTF-8", strings.Repeat("\xff", 300), 100, "\xff\xff", ""},
		{"long extension dropped", "x." + strings.Repeat("e", 300), 50, "x.eee", ""},
	}
	for _, tt := range tests {
		got := ShortName(tt.in, tt.max)
		if len(got) > tt.max || !strings.HasPrefix(got, tt.keep) || !strings.HasSuffix(got, tt.ext) {
			t.Errorf("%s: ShortName(%d bytes, %d) = %q (%d bytes)", tt.name, len(tt.in), tt.max, got, len(got))
		}
		if utf8.ValidString(tt.in) && !utf8.ValidString(got) {
			t.Errorf("%s: cut a character in two: %q", tt.name, got)
		}
	}
	a, b := strings.Repeat("a", 300)+"1.csv", strings.Repeat("a", 300)+"2.csv"
	if ShortName(a, 255) == ShortName(b, 255) {
		t.Errorf("two long names with one start share the short name %q", ShortName(a, 255))
	}
}

func TestReportAndCollisionNamesFit(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	for _, n := range []int{1, 200, 240, 244, 245, 250, 255} {
		name := strings.Repeat("n", n-min(n, 4)) + ".csv"[4-min(n, 4):]
		for _, suffix := range []string{".status.txt", ".errors.csv"} {
			r := ReportName(name, suffix)
			if len(r) > MaxName || !strings.HasSuffix(r, suffix) {
				t.Errorf("ReportName(%d bytes, %s) = %d bytes %q", len(name), suffix, len(r), r)
			}
			if len(name)+len(suffix) <= MaxName && r != name+suffix {
				t.Errorf("ReportName(%d bytes) shortened a name that fits: %q", len(name), r)
			}
		}
		taken := 0
		c := CollisionName(name, now, func(string) bool { taken++; return taken > 3 })
		if len(c) > MaxName || c == name {
			t.Errorf("CollisionName(%d bytes) = %d bytes %q", len(name), len(c), c)
		}
		if r := ReportName(c, ".status.txt"); len(r) > MaxName {
			t.Errorf("report of collision name %q is %d bytes", c, len(r))
		}
	}
}
