package convert

import (
	"fmt"
	"strings"

	"usagedrop/internal/safetext"
)

// The rules every row is held to before it is validated, and the
// accounting that proves no row was lost on the way.

// account keeps one table's row counts and rejects the file when they do
// not add up: a row neither sent, reported nor skipped would be lost
// without a word, so a miscount is a bug that must stop the file.
func (rd *reader) account(u unit, rc RowCount) {
	rc.Member = safetext.Clip(rc.Member, rd.caps.MaxValueBytes)
	rc.Sheet = safetext.Clip(rc.Sheet, rd.caps.MaxValueBytes)
	rd.sum.Rows = append(rd.sum.Rows, rc)
	if !rc.Balanced() {
		rd.fileProblem(u, 0, unbalanced(rc))
	}
}

// unbalanced is the problem for counts that do not add up.
func unbalanced(rc RowCount) string {
	return fmt.Sprintf("rows did not add up: %d read, but %d sent, %d reported and %d skipped; this is a bug in usagedrop, nothing was sent (please pass the file on to its maintainers)",
		rc.In, rc.Out, rc.Reported, rc.Skipped)
}

// cleaner is a table that can vouch that its current row holds no control
// character, and whether it is plain ASCII (csvTable checks its bytes
// eight at a time).
type cleaner interface {
	clean() bool
	ascii() bool
}

// refused reports, as a problem, a row holding a control character or a
// value over the cell cap; c, when t is one, may vouch for the row. Tab, and a line break inside a value (LF, or CR
// from a spreadsheet cell), are text; every other control character (NUL,
// escape, backspace, DEL, the C1 block) is refused wherever it appears,
// because no usage tool writes one and Zuora must never receive one.
func (rd *reader) refused(u unit, t table, c cleaner, row []string, m *mapping) bool {
	if c != nil && c.clean() {
		return false
	}
	if len(row) > rd.caps.MaxColumns {
		rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(),
			Reason: fmt.Sprintf("the row has %d values, more than the %d any usage file holds; is the delimiter right?", len(row), rd.caps.MaxColumns),
			Hint:   fmt.Sprintf("limits.max_columns is %d", rd.caps.MaxColumns)})
		return true
	}
	for i, v := range row {
		if len(v) > rd.caps.MaxCellBytes {
			col, head := m.label(i)
			rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(), Column: col, Header: head,
				Value: v, Reason: fmt.Sprintf("the value is longer than %d bytes, which no usage value is; is a quote left open?", rd.caps.MaxCellBytes),
				Hint: fmt.Sprintf("limits.max_cell_bytes is %d", rd.caps.MaxCellBytes)})
			return true
		}
		if !mayHoldControlString(v) {
			continue
		}
		if at, r := controlAt(v); at >= 0 {
			col, head := m.label(i)
			rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(), Column: col, Header: head,
				Value: v, Reason: fmt.Sprintf("the value holds the control character %s, which no usage file should; the file may be damaged, or binary data was pasted into it", controlName(r))})
			return true
		}
	}
	return false
}

// controlAt returns the byte offset and rune of the first refused control
// character in s, or -1.
func controlAt(s string) (int, rune) {
	for i := 0; i < len(s); i++ {
		if !controlLead[s[i]] {
			continue
		}
		switch c := s[i]; {
		case c != 0xC2:
			return i, rune(c)
		case i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] < 0xA0:
			return i, rune(s[i+1])
		}
	}
	return -1, 0
}

// controlLead marks the bytes that start a refused control character: C0
// but tab, LF and CR; DEL; and 0xC2, which leads the C1 block in UTF-8
// (and also ordinary characters such as "£", told apart by the next byte).
var controlLead = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = c != '\t' && c != '\n' && c != '\r'
	}
	t[0x7F], t[0xC2] = true, true
	return t
}()

// controlName names a control character for a finance user.
func controlName(r rune) string {
	switch r {
	case 0:
		return "NUL (0x00)"
	case 0x1B:
		return "ESC (0x1B)"
	case 0x7F:
		return "DEL (0x7F)"
	}
	return fmt.Sprintf("0x%02X", r)
}

// label names the source column i for a problem: col is its template
// column when it feeds one, else its letter as a spreadsheet shows it
// ("column AB"); head is its header as the file writes it, when that
// says more than col (see Problem.Header).
func (m *mapping) label(i int) (col, head string) {
	head = m.heads[i]
	for f, c := range m.col {
		if c == i {
			col = field(f).Column()
			if strings.EqualFold(head, col) {
				head = ""
			}
			return col, head
		}
	}
	name := ""
	for n := i + 1; n > 0; n = (n - 1) / 26 {
		name = string(rune('A'+(n-1)%26)) + name
	}
	return "column " + name, head
}

// fieldLabel is label for the column that feeds f, a custom field's
// included; f < 0 is no column.
func (m *mapping) fieldLabel(f field) (col, head string) {
	switch {
	case f < 0:
		return "", ""
	case f < numFields:
		if i := m.col[f]; i >= 0 {
			return m.label(i)
		}
		return f.Column(), ""
	}
	if k := int(f - numFields); k < len(m.cust) && m.cust[k] >= 0 {
		return m.label(m.cust[k])
	}
	return "", ""
}

// wide reports a row with non-empty values beyond its header's last
// column: the values have usually shifted (a delimiter inside a value that
// is not quoted), so every value in the row may be in the wrong column.
func (rd *reader) wide(u unit, t table, row []string, m *mapping) bool {
	if len(row) <= m.width {
		return false
	}
	for i := m.width; i < len(row); i++ {
		if trim(row[i]) != "" {
			col, head := m.label(i)
			rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(), Column: col, Header: head, Value: row[i],
				Reason: fmt.Sprintf("the row has %d values but the header has %d columns, so its values may have shifted (is a delimiter inside a value that is not quoted?)", len(row), m.width)})
			return true
		}
	}
	return false
}

// mayHoldControlString is mayHoldControl for a string, which worksheet
// cells are; the byte loads combine into one 8-byte load.
func mayHoldControlString(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	var acc uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		_ = s[i+7]
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		d, c := x^0x7F*ones, x^0xC2*ones
		acc |= ((x - 0x20*ones) &^ x) | ((d - ones) &^ d) | ((c - ones) &^ c)
	}
	if acc&highs != 0 {
		return true
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7F || c == 0xC2 {
			return true
		}
	}
	return false
}
