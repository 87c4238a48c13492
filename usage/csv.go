package usage

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Writer writes Records as Zuora's usage template CSV: the header always
// present, every column even when its values are empty ("Every template
// column header must be present even when its values are empty", api.md
// §The template), dates in the API user's locale, quotes only where a
// value needs them, UTF-8 without a byte order mark ("UTF-8 only"), CRLF
// line ends as Excel and Zuora's own template use.
type Writer struct {
	w        *bufio.Writer
	h        Header
	fields   []Field // per column: its field, or -1-k for Record.Custom[k]
	dayFirst bool
	buf      []byte
	rows     int
}

// NewWriter writes the header of h to w and returns a Writer for its
// rows, with dates in dateFormat (DateFormats; "" is MM/DD/YYYY).
func NewWriter(w io.Writer, h Header, dateFormat string) (*Writer, error) {
	dayFirst, err := DayFirst(dateFormat)
	if err != nil {
		return nil, err
	}
	if h.cols == nil {
		h, _ = ParseHeader(nil)
	}
	tw := &Writer{w: bufio.NewWriterSize(w, 64<<10), h: h, dayFirst: dayFirst}
	for _, c := range h.cols {
		f := c.field
		if f < 0 {
			f = Field(-1 - c.custom)
		}
		tw.fields = append(tw.fields, f)
	}
	for i, name := range h.Names() {
		if i > 0 {
			tw.w.WriteByte(',')
		}
		tw.w.WriteString(name)
	}
	_, err = tw.w.WriteString("\r\n")
	return tw, err
}

// Write writes one record. A custom field the record has no value for is
// written empty.
func (tw *Writer) Write(rec *Record) error {
	b := tw.buf[:0]
	for i, f := range tw.fields {
		if i > 0 {
			b = append(b, ',')
		}
		switch f {
		case Start, End:
			b = AppendDate(b, rec.Get(f), tw.dayFirst)
		default:
			if f >= 0 {
				b = appendCSV(b, rec.Get(f))
			} else if k := int(-1 - f); k < len(rec.Custom) {
				b = appendCSV(b, rec.Custom[k])
			}
		}
	}
	b = append(b, '\r', '\n')
	tw.buf = b
	if _, err := tw.w.Write(b); err != nil {
		return err
	}
	tw.rows++
	return nil
}

// Rows is how many records were written, counted apart from any reader.
func (tw *Writer) Rows() int { return tw.rows }

// Flush writes what is buffered.
func (tw *Writer) Flush() error { return tw.w.Flush() }

// appendCSV quotes a value only when it must be (RFC 4180).
func appendCSV(b []byte, s string) []byte {
	if !needsQuote(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		b = append(b, s[:i+1]...)
		b = append(b, '"')
		s = s[i+1:]
	}
	b = append(b, s...)
	return append(b, '"')
}

// needsQuote is a byte loop: strings.ContainsAny builds a set per call,
// which showed at the top of the CSV profile. A space at either end is
// quoted so that no reader trims it.
func needsQuote(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	return false
}

// Reader reads back a template CSV that Writer wrote, for the APIs that
// take records rather than files. It is not a reader of dropped files
// (convert is), and zuorasim keeps its own, stricter one.
type Reader struct {
	cr       *csv.Reader
	h        Header
	dayFirst bool
	index    int
}

// NewReader reads the header of a template CSV from r; dates are read in
// dateFormat (DateFormats; "" is MM/DD/YYYY).
func NewReader(r io.Reader, dateFormat string) (*Reader, error) {
	dayFirst, err := DayFirst(dateFormat)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	names, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read the header: %w", err)
	}
	if len(names) > 0 {
		names[0] = strings.TrimPrefix(names[0], "\ufeff")
	}
	h, err := ParseHeader(names)
	if err != nil {
		return nil, err
	}
	return &Reader{cr: cr, h: h, dayFirst: dayFirst}, nil
}

// Header is the CSV's header.
func (tr *Reader) Header() Header { return tr.h }

// Row is one record read back, with where it came from.
type Row struct {
	Record
	Index int // 0-based among the records, blank rows not counted
	Line  int // line in the CSV, the header being line 1
	// CustomNames are the names of Record.Custom's values, the header's
	// custom fields; shared by every row, not to be changed.
	CustomNames []string
}

// Read returns the next record, or io.EOF. Rows whose values are all
// empty are skipped: "A row whose values are all empty is omitted"
// (api.md §The template).
func (tr *Reader) Read() (Row, error) {
	for {
		vals, err := tr.cr.Read()
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		if err != nil {
			return Row{}, err
		}
		line, _ := tr.cr.FieldPos(0)
		r := Row{Line: line, CustomNames: tr.h.custom}
		empty := true
		for i, v := range vals {
			v = strings.TrimSpace(v)
			empty = empty && v == ""
			if i >= len(tr.h.cols) {
				if v != "" {
					return Row{}, fmt.Errorf("line %d: the row has %d values; the header has %d columns", line, len(vals), len(tr.h.cols))
				}
				continue
			}
			c := tr.h.cols[i]
			if c.field < 0 {
				if r.Custom == nil {
					r.Custom = make([]string, len(tr.h.custom))
				}
				r.Custom[c.custom] = v
				continue
			}
			r.Set(c.field, v)
		}
		if empty {
			continue
		}
		if r.Start, err = ParseDate(r.Start, tr.dayFirst); err != nil {
			return Row{}, fmt.Errorf("line %d: STARTDATE: %w", line, err)
		}
		if r.End, err = ParseDate(r.End, tr.dayFirst); err != nil {
			return Row{}, fmt.Errorf("line %d: ENDDATE: %w", line, err)
		}
		r.Index = tr.index
		tr.index++
		return r, nil
	}
}
