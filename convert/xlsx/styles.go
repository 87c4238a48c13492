package xlsx

import (
	"strings"
)

// styles knows, per cell style index (the s attribute), whether its number
// format shows a date or time. That is all a reader of values needs.
type styles struct {
	date []bool // by cellXfs index
}

func (s styles) isDate(i int) bool { return i >= 0 && i < len(s.date) && s.date[i] }

type xmlStyles struct {
	NumFmts []struct {
		ID   int    `xml:"numFmtId,attr"`
		Code string `xml:"formatCode,attr"`
	} `xml:"numFmts>numFmt"`
	CellXfs []struct {
		NumFmtID int `xml:"numFmtId,attr"`
	} `xml:"cellXfs>xf"`
}

func (w *Workbook) readStyles(name string) (styles, error) {
	var x xmlStyles
	if _, err := w.decode(name, &x); err != nil {
		return styles{}, err
	}
	custom := make(map[int]string, len(x.NumFmts))
	for _, f := range x.NumFmts {
		custom[f.ID] = f.Code
	}
	s := styles{date: make([]bool, len(x.CellXfs))}
	for i, xf := range x.CellXfs {
		if code, ok := custom[xf.NumFmtID]; ok {
			s.date[i] = isDateFormat(code)
		} else {
			s.date[i] = isBuiltinDate(xf.NumFmtID)
		}
	}
	return s, nil
}

// isBuiltinDate reports the built-in number formats that show dates or
// times, including the East Asian ones (ECMA-376 Part 1, 18.8.30).
func isBuiltinDate(id int) bool {
	return id >= 14 && id <= 22 || id >= 27 && id <= 36 || id >= 45 && id <= 47 || id >= 50 && id <= 58
}

// isDateFormat reports whether a format code shows a date or time: whether
// any section has d, m, y, h or s outside quoted text, escapes and
// brackets. Elapsed-time brackets ([h], [mm], [ss]) are times too; other
// brackets are colours, conditions or locales ([Red], [>100], [$-409]).
func isDateFormat(code string) bool {
	for i := 0; i < len(code); i++ {
		switch c := code[i]; c {
		case '"':
			j := strings.IndexByte(code[i+1:], '"')
			if j < 0 {
				return false
			}
			i += j + 1
		case '\\', '_', '*':
			i++ // the next character is literal, padding or fill
		case '[':
			j := strings.IndexByte(code[i+1:], ']')
			if j < 0 {
				return false
			}
			if isElapsed(code[i+1 : i+1+j]) {
				return true
			}
			i += j + 1
		case 'd', 'D', 'm', 'M', 'y', 'Y', 'h', 'H', 's', 'S':
			return true
		}
	}
	return false
}

// isElapsed reports a bracket's content as elapsed hours, minutes or
// seconds: [h], [hh], [mm], [ss].
func isElapsed(b string) bool {
	if b == "" {
		return false
	}
	for i := 0; i < len(b); i++ {
		if c := b[i] | 0x20; c != b[0]|0x20 || c != 'h' && c != 'm' && c != 's' {
			return false
		}
	}
	return true
}
