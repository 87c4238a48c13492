package xlsx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Excel's grid.
const (
	maxCols = 16384
	maxRows = 1048576
	// maxPadding bounds the empty cells a sheet may make Rows fill in
	// before its values: a sheet of a value in XFD on every row would
	// otherwise cost 17 billion of them, from 40 MB of XML.
	maxPadding = 256 << 20
)

// Row is one <row> of a sheet. Rows absent from the XML (never written to)
// are not reported: Num tells where a row is.
type Row struct {
	Num    int  // 1-based sheet row number
	Hidden bool // hidden by the user or by a filter
	// Cells[i] is column i (A is 0); Kind is Empty where the sheet has no
	// cell. Trailing empty cells are trimmed, so a row with nothing in it
	// has no Cells.
	Cells []Cell
}

// Rows streams the rows of one sheet. It is not safe for concurrent use.
type Rows struct {
	sheet  string
	part   string
	wb     *Workbook
	cancel context.CancelFunc
	ctx    context.Context // the caller's
	src    *inflater
	win    window
	state  scanState
	skip   int // depth of an element being skipped; 0 when none
	depth  int // elements open outside rows and cells
	row    Row
	prev   int    // number of the previous row
	inRow  bool   // between <row> and </row>
	next   int    // column of the next cell without an r attribute
	padded int    // empty cells filled in so far, within maxPadding
	text   []byte // text of the current row's cells, made a string per row
	shared int    // bytes of the current row's shared strings
	spans  []span
	err    error
	closed bool
}

type scanState uint8

const (
	beforeData scanState = iota // before <sheetData>
	inData
	afterData
)

// span places a cell's text, held in Rows.text until the row ends.
type span struct{ col, off, end int }

// Rows starts streaming the sheet called name. The caller must Close the
// Rows; cancelling ctx stops it too. Several Rows may be open at once.
func (w *Workbook) Rows(ctx context.Context, name string) (*Rows, error) {
	i := w.sheetIndex(name)
	if i < 0 {
		return nil, fmt.Errorf("sheet %q: %w (the workbook has %s)", name, ErrNoSheet, w.sheetList())
	}
	if w.paths[i] == "" {
		return nil, fmt.Errorf("sheet %q: the workbook does not say where its part is", name)
	}
	rc, err := w.open(w.paths[i], w.lim.MaxSheet)
	if err != nil {
		return nil, fmt.Errorf("sheet %q: %w", name, err)
	}
	if rc == nil {
		return nil, fmt.Errorf("sheet %q: part %s is missing from the file", name, w.paths[i])
	}
	inner, cancel := context.WithCancel(ctx)
	r := &Rows{sheet: name, part: w.paths[i], wb: w, ctx: ctx, cancel: cancel, src: startInflater(inner, rc)}
	r.win = window{src: r.src, part: w.paths[i], max: w.lim.MaxElement}
	return r, nil
}

func (w *Workbook) sheetIndex(name string) int {
	for i, s := range w.sheets {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func (w *Workbook) sheetList() string {
	var b bytes.Buffer
	for i, s := range w.sheets {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(s.Name))
	}
	return b.String()
}

// Next advances to the next row, returning false at the end of the sheet
// or on an error, which Err then returns.
func (r *Rows) Next() bool {
	if r.err != nil || r.closed || r.state == afterData {
		return false
	}
	select {
	case <-r.ctx.Done():
		r.err = fmt.Errorf("sheet %q: %w", r.sheet, r.ctx.Err())
		r.Close()
		return false
	default:
	}
	for {
		done, err := r.scan()
		if err == nil && done {
			return true
		}
		if err == errShort {
			err = r.win.fill()
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) && r.state == beforeData {
				r.state = afterData // a part without sheetData, e.g. a chart sheet
				return false
			}
			err = truncated(err)
		}
		if err == nil { // the end of sheetData
			err = r.drain()
			if err == nil {
				return false
			}
		}
		r.err = r.located(err)
		r.Close()
		return false
	}
}

// located says where in the sheet err happened: a LimitError gets the
// sheet, row and part it lacks; other errors are prefixed with them.
func (r *Rows) located(err error) error {
	var le *LimitError
	if errors.As(err, &le) {
		le.Sheet, le.Part = r.sheet, r.part
		if le.Row == 0 && r.inRow {
			le.Row = r.row.Num
		}
		return le
	}
	if r.inRow {
		err = fmt.Errorf("row %d: %w", r.row.Num, err)
	}
	return fmt.Errorf("sheet %q: %w", r.sheet, err)
}

// drain reads the rest of the part, so that the zip's checksum of the
// whole part is verified before the rows are taken as complete.
func (r *Rows) drain() error {
	for {
		r.win.pos = len(r.win.b)
		if err := r.win.fill(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// Row returns the current row. It and its Cells are valid until the next
// call to Next; the cells' Value strings stay valid for ever.
func (r *Rows) Row() Row { return r.row }

// Err returns the error that ended the rows, if any: a damaged or truncated
// sheet, a part over its limits, or the context's error.
func (r *Rows) Err() error { return r.err }

// Close stops reading the sheet and releases its goroutine. It is
// idempotent and returns nil: a failure of the sheet is reported by Err.
func (r *Rows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	r.src.close()
	return nil
}

// scan consumes tokens until a row is complete (true), sheetData ends
// (false, nil) or the window runs out (errShort).
func (r *Rows) scan() (bool, error) {
	for {
		b, p := r.win.b, r.win.pos
		if r.inRow && r.skip == 0 && p+2 < len(b) && b[p] == '<' && b[p+1] == 'c' && isNameEnd(b[p+2]) {
			q, err := r.cell(b, p) // the fast way to the commonest tag
			if err != nil {
				return false, err
			}
			r.win.pos = q
			continue
		}
		if !r.inRow && r.skip == 0 && r.state == inData && p+4 < len(b) && b[p] == '<' && string(b[p+1:p+4]) == "row" && isNameEnd(b[p+4]) {
			if done, err := r.row1(b, p); done || err != nil {
				return done, err // and to the next commonest
			}
			continue
		}
		t, p, err := lex(b, p)
		if err != nil {
			return false, err
		}
		if r.skip > 0 || r.state != inData {
			if err := r.outside(t); err != nil {
				return false, err
			}
			r.win.pos = p
			if r.state == afterData {
				return false, nil
			}
			continue
		}
		switch {
		case t.kind == tokStart && r.inRow && string(t.name) == "c":
			if p, err = r.cell(b, r.win.pos); err != nil {
				return false, err
			}
		case t.kind == tokStart && !r.inRow && string(t.name) == "row":
			if done, err := r.row1(b, r.win.pos); done || err != nil {
				return done, err
			}
			continue
		case t.kind == tokEnd && r.inRow && string(t.name) == "row":
			r.win.pos = p
			return true, r.endRow()
		case t.kind == tokEnd && !r.inRow:
			r.state = afterData // </sheetData>
			r.win.pos = p
			return false, nil
		case t.kind == tokStart && (string(t.name) == "row" || string(t.name) == "c"):
			return false, fmt.Errorf("unexpected <%s> (rows cannot nest; cells belong in rows)", t.name)
		case t.kind == tokStart && !t.self:
			r.skip = 1 // an element we do not read, e.g. extLst
			if err := r.deeper(); err != nil {
				return false, err
			}
		case t.kind == tokEnd:
			return false, fmt.Errorf("unexpected </%s>", t.name)
		}
		r.win.pos = p
	}
}

// row1 starts the row whose tag is at b[p]; done reports a row complete
// already, written <row/>.
func (r *Rows) row1(b []byte, p int) (done bool, err error) {
	q, self, err := r.rowTag(b, p)
	if err != nil {
		return false, err
	}
	r.win.pos = q
	if self {
		return true, r.endRow()
	}
	return false, nil
}

// outside handles a token before or after sheetData, or inside an element
// being skipped. Depth is counted from the root, so that nesting past
// Limits.MaxDepth is refused wherever it is.
func (r *Rows) outside(t token) error {
	switch {
	case t.kind == tokStart && !t.self:
		if r.skip > 0 {
			r.skip++
		}
		if err := r.deeper(); err != nil {
			return err
		}
		if r.state == beforeData && string(t.name) == "sheetData" {
			r.state = inData
		}
	case t.kind == tokStart && t.self && r.state == beforeData && string(t.name) == "sheetData":
		r.state = afterData
	case t.kind == tokEnd:
		if r.skip > 0 {
			r.skip--
		}
		r.depth--
	}
	return nil
}

// deeper counts an element opened outside rows and cells.
func (r *Rows) deeper() error {
	if r.depth++; r.depth > r.wb.lim.MaxDepth {
		return &LimitError{Col: -1, Reason: fmt.Sprintf("the sheet nests XML elements more than %d deep", r.wb.lim.MaxDepth)}
	}
	return nil
}

// rowTag reads the start tag of a row at b[p] in one pass and starts the
// row; it returns the position after the tag and whether it was <row/>.
func (r *Rows) rowTag(b []byte, p int) (int, bool, error) {
	num, hidden := r.prev+1, false
	for i := tagName(b, p); ; {
		k, v, next, end, self, err := attrAt(b, p, i)
		if err != nil {
			return p, false, err
		}
		if end > 0 {
			return end, self, r.startRow(num, hidden)
		}
		i = next
		switch string(k) {
		case "r":
			n, ok := atoi(v)
			if !ok || n < 1 || n > maxRows {
				return p, false, fmt.Errorf("row number %q is not one of 1 to %d", v, maxRows)
			}
			num = n
		case "hidden":
			hidden = isTrue(string(v))
		}
	}
}

func (r *Rows) startRow(num int, hidden bool) error {
	if num > maxRows {
		return fmt.Errorf("a row beyond row %d", maxRows)
	}
	if num <= r.prev {
		return fmt.Errorf("row %d comes after row %d: rows out of order", num, r.prev)
	}
	r.inRow, r.next = true, 0
	r.row = Row{Num: num, Hidden: hidden, Cells: r.row.Cells[:0]}
	r.text, r.spans, r.shared = r.text[:0], r.spans[:0], 0
	return nil
}

// endRow gives the row's cells their text, all in one string.
func (r *Rows) endRow() error {
	r.inRow = false
	r.prev = r.row.Num
	s := string(r.text)
	for _, sp := range r.spans {
		r.row.Cells[sp.col].Value = s[sp.off:sp.end]
	}
	c := r.row.Cells
	for len(c) > 0 && c[len(c)-1].Kind == Empty {
		c = c[:len(c)-1]
	}
	r.row.Cells = c
	return nil
}
