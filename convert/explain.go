package convert

import (
	"fmt"
	"strings"
)

// The sentences a finance user reads about a value live here, in one
// place: what is wrong, and what to write instead, with an example in the
// file's own conventions. They never name a config key: what only an
// operator can change goes in Problem.Hint, and the user is told to ask.

// The example date is 26 March 2026: its day is above 12, so no reader
// can take it for the 3rd of the 26th month.
const exampleY, exampleM, exampleD = 2026, 3, 26

// dateExample writes the example date in order o with separator sep.
func dateExample(o dateOrder, sep byte) string {
	s := string(sep)
	switch o {
	case orderMDY:
		return fmt.Sprintf("%02d%s%02d%s%d", exampleM, s, exampleD, s, exampleY)
	case orderDMY:
		return fmt.Sprintf("%02d%s%02d%s%d", exampleD, s, exampleM, s, exampleY)
	}
	return formatISO(exampleY, exampleM, exampleD)
}

// dateSep is the separator to show in an example: the one the value
// itself uses, when it uses one the file's order may be written with.
func dateSep(o dateOrder, raw string) byte {
	if o == orderMDY || o == orderDMY {
		for _, c := range []byte{'.', '-', '/'} {
			if strings.IndexByte(raw, c) >= 0 {
				return c
			}
		}
	}
	return '/'
}

// wantDate says how the file's dates must be written: "write dates as
// 03/26/2026 (month/day/year)".
func wantDate(o dateOrder, raw string) string {
	ex := dateExample(o, dateSep(o, raw))
	switch o {
	case orderMDY:
		return "write dates as " + ex + " (month, day, year)"
	case orderDMY:
		return "write dates as " + ex + " (day, month, year)"
	}
	return "write dates as " + ex + " (year, month, day)"
}

// wantQty says how quantities must be written, with the file's decimal
// mark: "write quantities as 1250 or 12.5".
func wantQty(mode decimalMode) string {
	if mode == decimalComma {
		return "write quantities as 1250 or 12,5, without thousands separators"
	}
	return "write quantities as 1250 or 12.5, without thousands separators"
}

// tooLong is the length rule with the value's own length: "at most 50
// characters (this one has 63)".
func tooLong(max, got int) string {
	return fmt.Sprintf("at most %d characters (this one has %d)", max, got)
}

// askAdmin is what a user cannot change alone, in their words.
func askAdmin(what string) string { return "ask your usagedrop administrator to " + what }

// ColumnName names p's column as the user knows it and as Zuora does:
// "Start Date (STARTDATE)", or "STARTDATE" when the file's header says
// just that, or "" for a problem with the whole file.
func (p Problem) ColumnName() string {
	switch {
	case p.Header == "":
		return p.Column
	case p.Column == "":
		return p.Header
	}
	return p.Header + " (" + p.Column + ")"
}
