// Package safetext makes text that came from a drop safe to show: in a
// log line, a terminal, a status page, a report a finance user opens in
// Excel. A drop's name and its cell values are anyone's bytes; every place
// that shows them goes through here, so one rule holds everywhere.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name returns s as it can be shown on one line: control characters,
// invalid UTF-8 and the Unicode bidi/format characters that can make a
// name look like another are escaped Go-style (\n, \x1b, \u202e), and a
// backslash is doubled so an escape is never ambiguous. Printable text,
// accents and scripts other than Latin are kept as they are.
func Name(s string) string {
	if plain(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// plain reports whether Name would return s unchanged.
func plain(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r == '\\' || r < 0x20 || r == 0x7f || unsafeRune(r) {
			return false
		}
		i += n
	}
	return true
}

// Shown reports whether s can be shown as it is: nothing in it but a
// backslash would be escaped by Name. Text that was escaped once (the
// ledger stores its notes so) is Shown, and showing it through Name again
// would double its backslashes.
func Shown(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r < 0x20 || r == 0x7f || unsafeRune(r) {
			return false
		}
		i += n
	}
	return true
}

// unsafeRune reports the non-printing runes a name must not carry hidden:
// C1 controls, format characters (bidi overrides, zero-width joiners) and
// line/paragraph separators.
func unsafeRune(r rune) bool {
	return r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029
}

// Cell returns a value for a CSV report cell that Excel, LibreOffice and
// Google Sheets show as text instead of running it as a formula. Following
// OWASP's CSV-injection guidance, a value that starts with =, +, -, @, a
// tab or a carriage return gets a leading single quote, which the
// spreadsheet displays, so the user still recognises what they wrote.
// Numbers such as "-5" or "+3.2" are left alone: they cannot run, and a
// quote would make a finance user doubt the value.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '@', '\t', '\r':
		return "'" + s
	case '+', '-':
		if isNumber(s[1:]) {
			return s
		}
		return "'" + s
	}
	return s
}

func isNumber(s string) bool {
	digits := 0
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case (c == '.' || c == ',') && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// Clip returns s cut to at most max bytes, on a UTF-8 boundary, with a
// note of how much was left out, so a huge value from a hostile file can
// never make a message, a report or a ledger entry huge. The note is part
// of the budget: the result is never longer than max (for max ≥ 32).
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	note := fmt.Sprintf("… (%d more bytes)", len(s))
	keep := max - len(note)
	if keep < 0 {
		keep = 0
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + fmt.Sprintf("… (%d more bytes)", len(s)-keep)
}

// Line is Name and Clip together: s escaped to one line and cut to max
// bytes. It clips before escaping too, so a hostile value of megabytes
// costs no more than max to show.
func Line(s string, max int) string {
	return Clip(Name(Clip(s, max)), max)
}
