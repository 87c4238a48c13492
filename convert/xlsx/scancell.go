package xlsx

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
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

// cell reads the cell whose start tag begins at b[p], up to its end tag,
// and places it in the row. On errShort it leaves no trace, so that it can
// be read again once the window holds all of it.
func (r *Rows) cell(b []byte, p int) (int, error) {
	a, q, self, err := r.cellTag(b, p)
	if err != nil {
		return p, err
	}
	if a.col >= maxCols {
		// Refused at the first cell too many, before any is kept.
		return p, &LimitError{Row: r.row.Num, Col: -1, Reason: fmt.Sprintf("the row has more than %d cells, past Excel's last column XFD", maxCols)}
	}
	mark := len(r.text)
	var cc cellContent
	if !self {
		if q, err = r.cellContent(&cc, b, q); err != nil {
			r.text = r.text[:mark]
			return p, err
		}
	}
	c, err := r.cellValue(a, &cc)
	var le *LimitError
	if errors.As(err, &le) {
		le.Row, le.Col = r.row.Num, a.col
		return p, le
	}
	if err != nil {
		return p, fmt.Errorf("cell %s: %w", CellName(a.col, r.row.Num), err)
	}
	if len(r.text)+r.shared > r.wb.lim.MaxRowBytes {
		return p, &LimitError{Row: r.row.Num, Col: -1, Reason: fmt.Sprintf("the row holds more than %d bytes of text", r.wb.lim.MaxRowBytes)}
	}
	if c.Kind == Number && r.wb.styles.isDate(a.style) {
		c.DateStyle = true
	}
	r.next = a.col + 1
	if c == (Cell{}) {
		return q, nil // a styled cell without a value: as if absent
	}
	if r.padded += a.col - len(r.row.Cells); r.padded > maxPadding {
		return p, fmt.Errorf("the sheet's cells are spread too thinly (over %d empty cells between them)", maxPadding)
	}
	for len(r.row.Cells) < a.col {
		r.row.Cells = append(r.row.Cells, Cell{})
	}
	r.row.Cells = append(r.row.Cells, c)
	return q, nil
}

// cellTag reads a cell's start tag and its attributes in one pass (this
// is the scanner's hottest loop) and returns the position after the tag.
func (r *Rows) cellTag(b []byte, p int) (a cellAttrs, q int, self bool, err error) {
	if a, q, self, ok := r.plainCellTag(b, p); ok {
		return a, q, self, nil
	}
	a = cellAttrs{col: r.next, style: -1}
	for i := tagName(b, p); ; {
		name, val, next, end, self, err := attrAt(b, p, i)
		if err != nil {
			return a, p, false, err
		}
		if end > 0 {
			q = end
			if a.col < r.next {
				return a, p, false, fmt.Errorf("cell %s comes after column %s: cells out of order", CellName(a.col, r.row.Num), colName(r.next-1))
			}
			return a, q, self, nil
		}
		if err := a.set(name, val); err != nil {
			return a, p, false, err
		}
		i = next
	}
}

// plainCellTag reads the tag every producer writes, <c r="B2" s="1"
// t="s">, with single spaces, double quotes and only r, s and t, faster
// than attrAt can. ok is false for anything else, which cellTag then reads
// the general way.
func (r *Rows) plainCellTag(b []byte, p int) (a cellAttrs, q int, self, ok bool) {
	a = cellAttrs{col: r.next, style: -1}
	for i := p + 2; i+1 < len(b); {
		switch b[i] {
		case '>':
			return a, i + 1, false, a.col >= r.next
		case '/':
			return a, i + 2, true, b[i+1] == '>' && a.col >= r.next
		case ' ':
		default:
			return a, p, false, false
		}
		if i+4 >= len(b) || b[i+2] != '=' || b[i+3] != '"' {
			return a, p, false, false
		}
		name, j := b[i+1], i+4
		e := j
		for e < len(b) && b[e] != '"' && b[e] != '&' && b[e] != '<' {
			e++
		}
		if e >= len(b) || b[e] != '"' {
			return a, p, false, false
		}
		switch v := b[j:e]; name {
		case 'r':
			if a.col, ok = parseCol(v); !ok {
				return a, p, false, false
			}
		case 's':
			if a.style, ok = atoi(v); !ok {
				return a, p, false, false
			}
		case 't':
			a.typ = v
		default:
			return a, p, false, false
		}
		i = e + 1
	}
	return a, p, false, false
}

// set records one attribute of a <c>.
func (a *cellAttrs) set(name, v []byte) error {
	if len(name) != 1 {
		return nil
	}
	switch name[0] {
	case 'r':
		col, ok := parseCol(v)
		if !ok {
			return fmt.Errorf("cell reference %q is not a cell of the sheet", v)
		}
		a.col = col
	case 't':
		a.typ = v
	case 's':
		if n, ok := atoi(v); ok {
			a.style = n
		}
	}
	return nil
}

// cellContent reads a cell's children: <v>, <f> and <is>.
func (r *Rows) cellContent(cc *cellContent, b []byte, p int) (int, error) {
	if q, ok := r.simpleContent(cc, b, p); ok {
		return q, nil
	}
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
				if p, err = skipElement(b, p, r.wb.lim.MaxDepth); err != nil {
					return p, err
				}
			}
		case string(t.name) == "is":
			cc.hasIS = true
			cc.is[0] = len(r.text)
			if !t.self {
				if r.text, p, err = appendRich(r.text, b, p, r.wb.lim.MaxDepth); err != nil {
					return p, err
				}
				r.text = unescapeOOXML(r.text, cc.is[0])
			}
			cc.is[1] = len(r.text)
		case !t.self:
			if p, err = skipElement(b, p, r.wb.lim.MaxDepth); err != nil {
				return p, err
			}
		}
	}
}

// simpleContent reads the two forms nearly every cell has,
// <v>text</v></c> and <is><t>text</t></is></c>, without lexing them token
// by token. It returns false, having changed nothing, for any other form.
func (r *Rows) simpleContent(cc *cellContent, b []byte, p int) (int, bool) {
	var open, close string
	switch {
	case bytes.HasPrefix(b[p:], []byte("<v>")):
		open, close = "<v>", "</v></c>"
	case bytes.HasPrefix(b[p:], []byte("<is><t>")):
		open, close = "<is><t>", "</t></is></c>"
	default:
		return p, false
	}
	start := p + len(open)
	i := bytes.IndexByte(b[start:], '<')
	if i < 0 || !bytes.HasPrefix(b[start+i:], []byte(close)) {
		return p, false
	}
	raw := b[start : start+i]
	off := len(r.text)
	if !plainText(raw) {
		text, err := appendText(r.text, raw)
		if err != nil {
			return p, false // the slow path reports it
		}
		r.text = text
	} else {
		r.text = append(r.text, raw...)
	}
	span := [2]int{off, len(r.text)}
	if open == "<v>" {
		cc.hasV, cc.v = true, span
	} else {
		r.text = unescapeOOXML(r.text, off)
		span[1] = len(r.text)
		cc.hasIS, cc.is = true, span
	}
	return start + i + len(close), true
}

// plainText reports text that needs no decoding, faster than searching it
// twice for short values.
func plainText(raw []byte) bool {
	for _, c := range raw {
		if c == '&' || c == '\r' {
			return false
		}
	}
	return true
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
		if len(idx) == 0 {
			return c, nil // as excelize reads it
		}
		n, ok := atoi(idx)
		if !ok {
			return c, fmt.Errorf("shared string %q is not one of the %d in the workbook", idx, r.wb.sst.len())
		}
		// A string of more than 4 bytes a character is too long whatever
		// its characters, so it is refused unread.
		s, size, err := r.wb.sst.lookup(n, utf8.UTFMax*r.wb.lim.MaxCellChars)
		switch {
		case errors.Is(err, errNoString):
			return c, fmt.Errorf("shared string %q is not one of the %d in the workbook", idx, r.wb.sst.len())
		case err != nil:
			return c, err
		case size > utf8.UTFMax*r.wb.lim.MaxCellChars:
			return c, &LimitError{Reason: fmt.Sprintf("the cell has more than %d characters; Excel's limit is %d", utf8.UTFMax*r.wb.lim.MaxCellChars, r.wb.lim.MaxCellChars)}
		}
		if len(s) > r.wb.lim.MaxCellChars {
			if n := utf8.RuneCountInString(s); n > r.wb.lim.MaxCellChars {
				return c, tooManyChars(n, r.wb.lim.MaxCellChars)
			}
		}
		r.shared += size
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
	if v[1]-v[0] > r.wb.lim.MaxCellChars {
		if n := utf8.RuneCount(r.text[v[0]:v[1]]); n > r.wb.lim.MaxCellChars {
			return c, tooManyChars(n, r.wb.lim.MaxCellChars)
		}
	}
	r.spans = append(r.spans, span{col: a.col, off: v[0], end: v[1]})
	return c, nil
}

func tooManyChars(n, max int) error {
	return &LimitError{Reason: fmt.Sprintf("the cell has %d characters; Excel's limit is %d", n, max)}
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
			dst = appendCDATA(dst, t.text)
		case tokEnd:
			return dst, p, nil
		case tokStart:
			return dst, p, fmt.Errorf("unexpected <%s> in a value", t.name)
		}
	}
}

// skipElement skips the rest of an element whose start tag ends at b[p];
// elements in it nested more than maxDepth deep are an error.
func skipElement(b []byte, p, maxDepth int) (int, error) {
	for depth := 1; depth > 0; {
		t, q, err := lex(b, p)
		if err != nil {
			return p, err
		}
		p = q
		switch {
		case t.kind == tokStart && !t.self:
			if depth++; depth > maxDepth {
				return p, &LimitError{Col: -1, Reason: fmt.Sprintf("XML elements nest more than %d deep", maxDepth)}
			}
		case t.kind == tokEnd:
			depth--
		}
	}
	return p, nil
}

// atoi reads a non-negative decimal of at most 9 digits, without the
// allocation and generality of strconv.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
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
	if i == 0 || len(ref)-i > 7 {
		return 0, false
	}
	row := 0
	for _, d := range ref[i:] {
		if d < '0' || d > '9' {
			return 0, false
		}
		row = row*10 + int(d-'0')
	}
	return col - 1, row <= maxRows
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

// CellName is the reference of the cell in 0-based column col and 1-based
// row, as Excel shows it: CellName(1, 3) is "B3".
func CellName(col, row int) string { return colName(col) + strconv.Itoa(row) }
