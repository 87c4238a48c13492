package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"march.csv", "march.csv"},
		{"Données été.xlsx", "Données été.xlsx"},
		{"a\nb.csv", `a\nb.csv`},
		{"\x1b[31mred.csv", `\x1b[31mred.csv`},
		{"bad\xffname.csv", `bad\xffname.csv`},
		{"back\\slash", `back\\slash`},
		{"evil\u202egpj.exe", `evil\u202egpj.exe`},
		{"tab\there", `tab\there`},
	} {
		if got := Name(tt.in); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := Name(tt.in); !utf8.ValidString(got) {
			t.Errorf("Name(%q) is not UTF-8", tt.in)
		}
	}
}

func TestCell(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"A00000001", "A00000001"},
		{"=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"@SUM(A1:A2)", "'@SUM(A1:A2)"},
		{"-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"-5", "-5"},
		{"+3.25", "+3.25"},
		{"-1,5", "-1,5"},
		{"-", "'-"},
	} {
		if got := Cell(tt.in); got != tt.want {
			t.Errorf("Cell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	if got := Clip("short", 64); got != "short" {
		t.Fatalf("Clip short = %q", got)
	}
	long := strings.Repeat("é", 1000) // 2000 bytes
	got := Clip(long, 100)
	if len(got) > 100 || !utf8.ValidString(got) || !strings.Contains(got, "more bytes") {
		t.Fatalf("Clip long = %q (%d bytes)", got, len(got))
	}
}

func TestLine(t *testing.T) {
	huge := strings.Repeat("\x1b", 10<<20)
	got := Line(huge, 64)
	if len(got) > 64 || strings.Contains(got, "\x1b") || !strings.Contains(got, "more bytes") {
		t.Fatalf("Line = %q", got)
	}
}

func TestShown(t *testing.T) {
	for in, want := range map[string]bool{
		"plain":         true,
		`already\x1b`:   true,
		Name("a\x1bb"):  true,
		"a\x1bb":        false,
		"bad\xff":       false,
		"bidi\u202eend": false,
	} {
		if got := Shown(in); got != want {
			t.Errorf("Shown(%q) = %v, want %v", in, got, want)
		}
	}
}
