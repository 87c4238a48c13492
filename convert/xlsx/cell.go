package xlsx

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is what a cell holds, from its t attribute and content.
type Kind uint8

// The kinds of cell. A cell with a formula but no cached value, or a styled
// cell with no value, is Empty.
const (
	Empty  Kind = iota
	String      // shared, inline or formula string (t="s", "inlineStr", "str")
	Number      // t="n" or no t: Value is the number as stored, e.g. "0.30000000000000004"
	Bool        // t="b": Value is "0" or "1"
	Error       // t="e": Value is the error text, e.g. "#DIV/0!"
	Date        // t="d": Value is ISO 8601 text as stored
)

var kindNames = [...]string{"empty", "string", "number", "bool", "error", "date"}

// String names the kind for messages.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Cell is one cell's value as stored, never as displayed.
type Cell struct {
	Kind  Kind
	Value string // string text, or the raw number text as stored
	// DateStyle reports a Number cell whose style's number format shows a
	// date or time, so that its value is a serial date.
	DateStyle bool
	// Formula reports a cell with a formula; Value is its cached result.
	Formula bool
}

// maxSerial is 9999-12-31 in the 1900 system, Excel's last date.
const maxSerial = 2958465

// Decimal returns a Number cell's value as a plain decimal rounded to 15
// significant digits, Excel's precision, so that float artefacts of cached
// formula results vanish: 0.30000000000000004 gives "0.3", 1E+20 gives
// "100000000000000000000". It has no exponent, no grouping and no trailing
// zeros. Other kinds are an error: their text is not Excel's number.
func (c Cell) Decimal() (string, error) {
	if c.Kind != Number {
		return "", fmt.Errorf("cell is %s, not a number", c.Kind)
	}
	if d, ok := shortDecimal(c.Value); ok {
		return d, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(c.Value), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("number %q is not a finite decimal", c.Value)
	}
	return plainDecimal(f), nil
}

// shortDecimal tidies a plain decimal of at most 15 significant digits
// without going through a float: every such decimal survives the round
// trip unchanged, so the answer is the same, only faster. ok is false for
// anything else.
func shortDecimal(s string) (string, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	dot, sig, lead := -1, 0, true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && dot < 0:
			dot = i
		case c >= '0' && c <= '9':
			if c != '0' {
				lead = false
			}
			if !lead {
				sig++
			}
		default:
			return "", false
		}
	}
	if sig > 15 || len(s) == 0 || dot == 0 || dot == len(s)-1 {
		return "", false
	}
	if dot > 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if t := strings.TrimLeft(s, "0"); t == "" {
		return "0", true
	} else if t[0] == '.' {
		s = "0" + t
	} else {
		s = t
	}
	if neg && s != "0" {
		return "-" + s, true
	}
	return s, true
}

// plainDecimal prints f rounded to 15 significant digits in positional
// notation.
func plainDecimal(f float64) string {
	if f == 0 {
		return "0"
	}
	// 'e' with precision 14 rounds to 15 significant digits: d.dddddddddddddde±XX.
	s := strconv.FormatFloat(f, 'e', 14, 64)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	e := strings.IndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[e+1:])
	digits := strings.TrimRight(s[:1]+s[2:e], "0")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case exp < 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -exp-1))
		b.WriteString(digits)
	case exp+1 >= len(digits):
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", exp+1-len(digits)))
	default:
		b.WriteString(digits[:exp+1])
		b.WriteByte('.')
		b.WriteString(digits[exp+1:])
	}
	return b.String()
}

// Time returns a Number cell's serial date, or a Date cell's ISO text, as a
// time in UTC. Serials count days from the workbook's epoch: in the 1900
// system serial 1 is 1900-01-01 and, as in Lotus 1-2-3, serial 60 is the
// fictitious 1900-02-29 (given here as 1900-03-01); in the 1904 system
// serial 0 is 1904-01-01. The time of day is rounded to the millisecond.
func (c Cell) Time(date1904 bool) (time.Time, error) {
	switch c.Kind {
	case Number:
		f, err := strconv.ParseFloat(strings.TrimSpace(c.Value), 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("date serial %q is not a number", c.Value)
		}
		return serialTime(f, date1904)
	case Date:
		return isoTime(c.Value)
	}
	return time.Time{}, fmt.Errorf("cell is %s, not a date", c.Kind)
}

func serialTime(f float64, date1904 bool) (time.Time, error) {
	max := float64(maxSerial)
	if date1904 {
		max -= 1462
	}
	if !(f >= 0 && f < max+1) {
		return time.Time{}, fmt.Errorf("date serial %v is outside Excel's dates (0 to %v)", f, max)
	}
	// Seconds since the Unix epoch of each system's day zero.
	const epoch1900, epoch1904 = -2209161600, -2082844800 // 1899-12-30, 1904-01-01
	epoch := int64(epoch1900)
	switch {
	case date1904:
		epoch = epoch1904
	case f < 61:
		// Lotus counted 1900 as a leap year; serials before its fictitious
		// 29 February are one day later than the usual epoch gives.
		epoch += 86400
	}
	days := math.Floor(f)
	ms := int64(math.Round((f - days) * 86400e3))
	return time.Unix(epoch+int64(days)*86400, ms*int64(time.Millisecond)).UTC(), nil
}

// isoLayouts are the forms of t="d" values seen from Excel and others.
var isoLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02",
	"15:04:05.999999999",
}

func isoTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range isoLayouts {
		if t, err := time.Parse(l, s); err == nil {
			if t.Year() == 0 { // a bare time: Excel's day zero
				t = t.AddDate(1899, 11, 30)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q is not ISO 8601", s)
}
