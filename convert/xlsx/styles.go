package xlsx

import (
	"fmt"
	"strconv"
	"strings"
)

// styles knows, per cell style index (the s attribute), whether its number
// format shows a date or time. That is all a reader of values needs.
type styles struct {
	date []bool // by cellXfs index
}

func (s styles) isDate(i int) bool { return i >= 0 && i < len(s.date) && s.date[i] }

func (w *Workbook) readStyles(name string) (styles, error) {
	var s styles
	var formats []int            // numFmtId of each cellXfs entry
	custom := make(map[int]bool) // whether each custom number format shows a date
	_, err := w.walk(name, func(t token, depth int, parent string) error {
		if depth != 2 {
			return nil
		}
		switch {
		case parent == "numFmts" && string(t.name) == "numFmt":
			if len(custom) >= w.lim.MaxStyles {
				return overPart(name, "its styles define more than %d number formats", w.lim.MaxStyles)
			}
			v, err := attrs(t, w.lim.MaxElement, "numFmtId", "formatCode")
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			if id, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil {
				custom[id] = isDateFormat(v[1])
			}
		case parent == "cellXfs" && string(t.name) == "xf":
			if len(formats) >= w.lim.MaxStyles {
				return overPart(name, "its styles define more than %d cell formats", w.lim.MaxStyles)
			}
			v, err := attrs(t, maxAttr, "numFmtId")
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			id, err := strconv.Atoi(strings.TrimSpace(v[0]))
			if err != nil {
				id = 0 // as encoding/xml left it, General
			}
			formats = append(formats, id)
		}
		return nil
	})
	if err != nil {
		return styles{}, err
	}
	s.date = make([]bool, len(formats))
	for i, id := range formats {
		if d, ok := custom[id]; ok {
			s.date[i] = d
		} else {
			s.date[i] = isBuiltinDate(id)
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
