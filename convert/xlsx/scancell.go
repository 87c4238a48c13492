package xlsx

import (
	"bytes"
	"fmt"
	"strconv"
)

// cellAttrs are the attributes of a <c> that matter for its value.
type cellAttrs struct {
	col   int
	typ   []byte // t: "s", "str", "inlineStr", "b", "e", "n", "d" or none
	style int    // s: index into cellXfs
}

// cellContent is where a cell's parts landed in Rows.text.
type cellContent struct {
	v, is   [2]int // offsets of <v> and <is> text; equal when absent
	hasV    bool
	hasIS   bool
	formula bool
}

// cell reads the cell whose start tag t ends at b[p], up to its end tag,
// and places it in the row. On errShort it leaves no trace, so that it can
// be read again once the window holds all of it.
func (r *Rows) cell(t token, p int) (int, error) {
	a, err := r.cellAttrs(t.attrs)
	if err != nil {
		return p, err
	}
	mark := len(r.text)
	var cc cellContent
	if !t.self {
		if p, err = r.cellContent(&cc, r.win.b, p); err != nil {
			r.text = r.text[:mark]
			return p, err
		}
	}
	c, err := r.cellValue(a, &cc)
	if err != nil {
		return p, fmt.Errorf("cell %s: %w", cellName(a.col, r.row.Num), err)
	}
	if c.Kind == Number && r.wb.styles.isDate(a.style) {
		c.DateStyle = true
	}
	for len(r.row.Cells) < a.col {
		r.row.Cells = append(r.row.Cells, Cell{})
	}
	r.row.Cells = append(r.row.Cells, c)
	r.next = a.col + 1
	return p, nil
}

func (r *Rows) cellAttrs(attrs []byte) (cellAttrs, error) {
	a := cellAttrs{col: r.next, style: -1}
	for i := 0; ; {
		k, v, next, ok := nextAttr(attrs, i)
		if !ok {
			break
		}
		i = next
		if len(k) != 1 {
			continue
		}
		switch k[0] {
		case 'r':
			col, ok := parseCol(v)
			if !ok {
				return a, fmt.Errorf("cell reference %q is not a cell of the sheet", v)
			}
			a.col = col
		case 't':
			a.typ = v
		case 's':
			if n, err := strconv.Atoi(string(v)); err == nil {
				a.style = n
			}
		}
	}
	if a.col < r.next {
		return a, fmt.Errorf("cell %s comes after column %s: cells out of order", cellName(a.col, r.row.Num), colName(r.next-1))
	}
	if a.col >= maxCols {
		return a, fmt.Errorf("a cell beyond column %s", colName(maxCols-1))
	}
	return a, nil
}

// cellContent reads a cell's children: <v>, <f> and <is>.
func (r *Rows) cellContent(cc *cellContent, b []byte, p int) (int, error) {
	for {
		t, q, err := lex(b, p)
		if err != nil {
			return p, err
		}
		p = q
		switch {
		case t.kind == tokEnd:
			return p, nil // </c>
		case t.kind != tokStart:
		case string(t.name) == "v":
			cc.hasV = true
			cc.v[0] = len(r.text)
			if !t.self {
				if r.text, p, err = appendContent(r.text, b, p); err != nil {
					return p, err
				}
			}
			cc.v[1] = len(r.text)
		case string(t.name) == "f":
			cc.formula = true
			if !t.self {
				if p, err = skipElement(b, p); err != nil {
					return p, err
				}
			}
		case string(t.name) == "is":
			cc.hasIS = true
			cc.is[0] = len(r.text)
			if !t.self {
				if r.text, p, err = appendRich(r.text, b, p); err != nil {
					return p, err
				}
				r.text = unescapeOOXML(r.text, cc.is[0])
			}
			cc.is[1] = len(r.text)
		case !t.self:
			if p, err = skipElement(b, p); err != nil {
				return p, err
			}
		}
	}
}

// cellValue decides a cell's kind and value from its type and content.
func (r *Rows) cellValue(a cellAttrs, cc *cellContent) (Cell, error) {
	c := Cell{Formula: cc.formula}
	v := cc.v
	switch string(a.typ) {
	case "s":
		if !cc.hasV {
			return c, nil
		}
		idx := bytes.TrimSpace(r.text[v[0]:v[1]])
		r.text = r.text[:v[0]]
		n, err := strconv.Atoi(string(idx))
		s, ok := r.wb.sst.get(n)
		if err != nil || !ok {
			return c, fmt.Errorf("shared string %q is not one of the %d in the workbook", idx, r.wb.sst.len())
		}
		c.Kind, c.Value = String, s
		return c, nil
	case "inlineStr":
		c.Kind = String
		if cc.hasIS {
			v = cc.is
		} else if !cc.hasV {
			return Cell{Formula: cc.formula}, nil
		}
	case "str":
		if !cc.hasV {
			return c, nil
		}
		c.Kind = String
	case "b":
		c.Kind = Bool
	case "e":
		c.Kind = Error
	case "d":
		c.Kind = Date
	case "n", "":
		if v[0] == v[1] {
			return c, nil // a styled or formula cell with no value
		}
		c.Kind = Number
	default:
		return c, fmt.Errorf("unknown cell type t=%q", a.typ)
	}
	if c.Kind != String && v[0] == v[1] {
		return Cell{Formula: cc.formula}, nil
	}
	r.spans = append(r.spans, span{col: a.col, off: v[0], end: v[1]})
	return c, nil
}

// appendContent appends the text of a simple element (<v>) up to its end
// tag, and returns the position after it.
func appendContent(dst, b []byte, p int) ([]byte, int, error) {
	for {
		t, q, err := lex(b, p)
		if err != nil {
			return dst, p, err
		}
		p = q
		switch t.kind {
		case tokText:
			if dst, err = appendText(dst, t.text); err != nil {
				return dst, p, err
			}
		case tokCDATA:
			dst = append(dst, t.text...)
		case tokEnd:
			return dst, p, nil
		case tokStart:
			return dst, p, fmt.Errorf("unexpected <%s> in a value", t.name)
		}
	}
}

// skipElement skips the rest of an element whose start tag ends at b[p].
func skipElement(b []byte, p int) (int, error) {
	for depth := 1; depth > 0; {
		t, q, err := lex(b, p)
		if err != nil {
			return p, err
		}
		p = q
		switch {
		case t.kind == tokStart && !t.self:
			depth++
		case t.kind == tokEnd:
			depth--
		}
	}
	return p, nil
}

// parseCol reads the column of a reference like "AB12" (0-based).
func parseCol(ref []byte) (int, bool) {
	col, i := 0, 0
	for ; i < len(ref); i++ {
		c := ref[i] | 0x20
		if c < 'a' || c > 'z' {
			break
		}
		col = col*26 + int(c-'a'+1)
		if col > maxCols {
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	for _, d := range ref[i:] {
		if d < '0' || d > '9' {
			return 0, false
		}
	}
	return col - 1, true
}

// colName is the letters of a 0-based column.
func colName(col int) string {
	var b [4]byte
	i := len(b)
	for col++; col > 0; col = (col - 1) / 26 {
		i--
		b[i] = byte('A' + (col-1)%26)
	}
	return string(b[i:])
}

func cellName(col, row int) string { return colName(col) + strconv.Itoa(row) }
