package usage

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The template's date formats. "Dates use the API user's locale, not the
// tenant's: MM/DD/YYYY for en_US (default), DD/MM/YYYY for en_GB/en_AU"
// (api.md §The template, seed 001).
const (
	DateMDY = "MM/DD/YYYY"
	DateDMY = "DD/MM/YYYY"
)

// DateFormats are the template's date formats; the first is the default.
var DateFormats = []string{DateMDY, DateDMY}

// DayFirst reports whether format puts the day first: false for
// MM/DD/YYYY or "", true for DD/MM/YYYY, an error for anything else.
func DayFirst(format string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(format)) {
	case "", DateMDY:
		return false, nil
	case DateDMY:
		return true, nil
	}
	return false, fmt.Errorf("date format %q is not %s or %s", format, DateMDY, DateDMY)
}

// AppendDate appends the date iso (YYYY-MM-DD) in the template's order,
// two-digit day and month. Anything but ten bytes is appended as it is.
func AppendDate(b []byte, iso string, dayFirst bool) []byte {
	if len(iso) != 10 {
		return append(b, iso...)
	}
	y, m, d := iso[0:4], iso[5:7], iso[8:10]
	if dayFirst {
		m, d = d, m
	}
	b = append(b, m...)
	b = append(b, '/')
	b = append(b, d...)
	b = append(b, '/')
	return append(b, y...)
}

// ParseDate reads a template date in its order and returns it as
// YYYY-MM-DD; "" stays "". A date that does not exist is an error.
func ParseDate(s string, dayFirst bool) (string, error) {
	if s == "" {
		return "", nil
	}
	format := DateMDY
	if dayFirst {
		format = DateDMY
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 || len(parts[2]) != 4 {
		return "", fmt.Errorf("%q is not a date in %s", s, format)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 || strings.ContainsAny(p, "+-") {
			return "", fmt.Errorf("%q is not a date in %s", s, format)
		}
		n[i] = v
	}
	month, day, year := n[0], n[1], n[2]
	if dayFirst {
		month, day = day, month
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Year() != year || int(t.Month()) != month || t.Day() != day {
		return "", fmt.Errorf("%q is not a real date", s)
	}
	return t.Format(time.DateOnly), nil
}
