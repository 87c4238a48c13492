package convert

import (
	"fmt"
	"strings"

	"usagedrop/usage"
)

// dateOrder is the order of day and month in a dropped file's dates.
type dateOrder uint8

const (
	orderUnknown dateOrder = iota
	orderMDY
	orderDMY
	orderISO // configured YYYY-MM-DD: nothing else is a date
)

// parseDateFormat reads Options.DateFormat. ISO is accepted with any
// configured order.
func parseDateFormat(s string) (dateOrder, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return orderUnknown, nil
	case "MM/DD/YYYY", "MM-DD-YYYY", "MM.DD.YYYY", "M/D/YYYY":
		return orderMDY, nil
	case "DD/MM/YYYY", "DD.MM.YYYY", "DD-MM-YYYY", "D/M/YYYY", "D.M.YYYY":
		return orderDMY, nil
	case "YYYY-MM-DD":
		return orderISO, nil
	}
	return orderUnknown, fmt.Errorf("date_format %q is not one of MM/DD/YYYY, DD/MM/YYYY, DD.MM.YYYY, YYYY-MM-DD", s)
}

// dateParts splits a date into its three numbers and its separator without
// allocating. A date-time whose time is midnight (as spreadsheets export
// date cells) is accepted; any other time of day is not a date.
func dateParts(s string) (a, b, c int, la, lb, lc int, sep byte, ok bool) {
	if i := timeAt(s); i > 0 {
		t := strings.TrimSpace(s[i+1:])
		if t != "00:00:00" && t != "00:00" && t != "0:00" && t != "00:00:00.000" && t != "12:00:00 AM" && t != "12:00 AM" {
			return
		}
		s = s[:i]
	}
	num := func(s string) (n, l int, rest string, ok bool) {
		for l < len(s) && s[l] >= '0' && s[l] <= '9' {
			n = n*10 + int(s[l]-'0')
			l++
			if l > 4 {
				return 0, 0, "", false
			}
		}
		return n, l, s[l:], l > 0
	}
	var rest string
	if a, la, rest, ok = num(s); !ok || rest == "" {
		return a, b, c, la, lb, lc, sep, false
	}
	sep = rest[0]
	if sep != '/' && sep != '-' && sep != '.' {
		return a, b, c, la, lb, lc, sep, false
	}
	if b, lb, rest, ok = num(rest[1:]); !ok || rest == "" || rest[0] != sep {
		return a, b, c, la, lb, lc, sep, false
	}
	if c, lc, rest, ok = num(rest[1:]); !ok || rest != "" {
		return a, b, c, la, lb, lc, sep, false
	}
	return a, b, c, la, lb, lc, sep, true
}

// timeAt finds where a time of day would follow the date.
func timeAt(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == 'T' {
			return i
		}
	}
	return -1
}

// dateEvidence is what one value says about the file's date order.
func dateEvidence(s string) (o dateOrder, fixed bool) {
	a, b, _, la, _, lc, sep, ok := dateParts(s)
	if !ok || la == 4 || lc != 4 {
		return orderUnknown, false
	}
	switch {
	case sep == '.':
		return orderDMY, true // dotted dates are day-first by convention
	case a > 12 && b <= 12:
		return orderDMY, true
	case b > 12 && a <= 12:
		return orderMDY, true
	}
	return orderUnknown, false
}

// isISO reports whether s is written year first.
func isISO(s string) bool {
	_, _, _, la, _, _, _, ok := dateParts(s)
	return ok && la == 4
}

// normDate turns a date in the given order (or ISO) into YYYY-MM-DD, and
// refuses dates that do not exist.
func normDate(s string, o dateOrder) (string, bool) {
	return normDateIn(nil, s, o)
}

// normDateIn is normDate writing its result into an arena (nil for none).
func normDateIn(a *arena, s string, o dateOrder) (string, bool) {
	if len(s) == 10 && s[4] == '-' && s[7] == '-' {
		if _, ok := normDateParts(s, o); ok {
			return s, true // already YYYY-MM-DD: no copy
		}
		return "", false
	}
	ymd, ok := normDateParts(s, o)
	if !ok {
		return "", false
	}
	var buf [10]byte
	formatISOTo(&buf, ymd[0], ymd[1], ymd[2])
	if a == nil {
		return string(buf[:]), true
	}
	return a.str(buf[:]), true
}

// normDateParts checks a date and returns its year, month and day.
func normDateParts(s string, o dateOrder) ([3]int, bool) {
	a, b, c, la, lb, lc, sep, ok := dateParts(s)
	if !ok {
		return [3]int{}, false
	}
	var y, m, d int
	switch {
	case la == 4 && sep != '.' && lb <= 2 && lc <= 2:
		y, m, d = a, b, c
	case lc != 4 || la > 2 || lb > 2:
		return [3]int{}, false
	case o == orderMDY:
		y, m, d = c, a, b
	case o == orderDMY:
		y, m, d = c, b, a
	default:
		return [3]int{}, false
	}
	if y < 1900 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return [3]int{}, false
	}
	return [3]int{y, m, d}, true
}

// formatISO writes YYYY-MM-DD without time.Format, which showed in the
// xlsx profile at one call per date cell.
func formatISO(y, m, d int) string {
	var buf [10]byte
	formatISOTo(&buf, y, m, d)
	return string(buf[:])
}

func formatISOTo(buf *[10]byte, y, m, d int) {
	put := func(at, v, w int) {
		for i := w - 1; i >= 0; i-- {
			buf[at+i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	buf[4] = '-'
	put(5, m, 2)
	buf[7] = '-'
	put(8, d, 2)
}

// arena hands out strings from a shared, append-only buffer, so that many
// short values cost one allocation between them. A strings.Builder never
// changes bytes it has written, only appends (into a new array when it
// grows), so every string taken from it stays valid and immutable however
// long it is kept.
type arena struct {
	b strings.Builder
}

const arenaSize = 64 << 10

func (a *arena) str(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if a.b.Cap()-a.b.Len() < len(p) {
		a.b = strings.Builder{}
		a.b.Grow(max(arenaSize, len(p)))
	}
	at := a.b.Len()
	a.b.Write(p)
	return a.b.String()[at:]
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// decimalMode says how a file writes fractions in QTY.
type decimalMode uint8

const (
	decimalUnknown decimalMode = iota
	decimalPoint
	decimalComma
)

func parseDecimalComma(s string) (decimalMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return decimalUnknown, nil
	case "yes", "true":
		return decimalComma, nil
	case "no", "false":
		return decimalPoint, nil
	}
	return decimalUnknown, fmt.Errorf("decimal_comma %q is not yes, no or empty", s)
}

// qtyEvidence classifies one QTY value: a lone comma between digits, or a
// point. grouped marks a point that could as well be a thousands
// separator: one to three digits, a point, exactly three digits ("1.000").
func qtyEvidence(s string) (comma, point, grouped bool) {
	c := strings.IndexByte(s, ',')
	p := strings.IndexByte(s, '.')
	switch {
	case c >= 0 && p < 0 && strings.Count(s, ",") == 1:
		return true, false, false
	case p >= 0 && c < 0:
		return false, true, p >= 1 && p <= 3 && len(s)-p-1 == 3 && strings.Count(s, ".") == 1
	}
	return false, false, false
}

// normQty returns s as a plain decimal in Zuora's form, or the reason it
// is not one and, when a setting may be the cause, a hint for the
// operator.
func normQty(s string, mode decimalMode) (qty, reason, hint string) {
	want := wantQty(mode)
	if s == "" {
		return "", "The QTY is missing; " + want, ""
	}
	if strings.IndexByte(s, ',') >= 0 {
		if mode != decimalComma || strings.IndexByte(s, '.') >= 0 || strings.Count(s, ",") > 1 {
			if mode == decimalComma {
				return "", "The QTY is not a plain number; " + want, ""
			}
			return "", "The QTY is not a plain number; " + want + ", or " + askAdmin("accept decimal commas"),
				"if the source's files write 3,5 for 3.5, set decimal_comma: yes in the source's settings"
		}
		s = strings.Replace(s, ",", ".", 1)
	} else if mode == decimalComma && strings.IndexByte(s, '.') >= 0 {
		return "", "The QTY has a decimal point, but this file writes decimal commas; " + want,
			"decimal_comma: yes is set for this source, or was inferred from the file's other quantities"
	}
	neg := false
	body := s
	if body[0] == '-' {
		neg, body = true, body[1:]
	} else if body[0] == '+' {
		body = body[1:]
	}
	intDigits, digits, points := 0, 0, 0
	for i := 0; i < len(body); i++ {
		switch ch := body[i]; {
		case ch >= '0' && ch <= '9':
			digits++
			if points == 0 {
				intDigits++
			}
		case ch == '.':
			points++
		default:
			return "", "The QTY is not a number; " + want, ""
		}
	}
	if digits == 0 || points > 1 {
		return "", "The QTY is not a number; " + want, ""
	}
	if neg && strings.Trim(body, "0.") != "" {
		return "", "The QTY cannot be less than 0", ""
	}
	if intDigits > usage.MaxQtyIntDigits {
		return "", fmt.Sprintf("The Usage Quantity exceeds %d digits before the decimal place (this one has %d)", usage.MaxQtyIntDigits, intDigits), ""
	}
	if body[0] == '.' {
		body = "0" + body
	}
	body = strings.TrimSuffix(body, ".") // "3." is 3
	if len(body) > usage.MaxQtyChars {
		return "", "The QTY is too long: " + tooLong(usage.MaxQtyChars, len(body)), ""
	}
	return body, "", ""
}
