package convert

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
)

// classic is Zuora's default template, in its order.
var classic = []field{fAccount, fUOM, fQty, fStart, fEnd, fSubscription, fCharge, fDescription}

// templateWriter writes Records as Zuora's usage template CSV: header
// always present, every column even when empty, dates in the API user's
// locale, quotes only where a value needs them, CRLF line ends as Excel
// and Zuora's own template use.
type templateWriter struct {
	w    *bufio.Writer
	cols []field
	dmy  bool
	buf  []byte
	rows int // records written, counted apart from the reader
}

// templateColumns resolves Template.Columns to fields.
func templateColumns(t Template) ([]field, error) {
	if len(t.Columns) == 0 {
		return classic, nil
	}
	cols := make([]field, 0, len(t.Columns))
	for _, name := range t.Columns {
		f := field(-1)
		for i, c := range fieldColumns {
			if strings.EqualFold(c, strings.TrimSpace(name)) {
				f = field(i)
			}
		}
		if f < 0 {
			return nil, fmt.Errorf("template column %q is not a Zuora usage column (%s)", name, strings.Join(fieldColumns[:], ", "))
		}
		cols = append(cols, f)
	}
	return cols, nil
}

func templateDMY(t Template) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(t.DateFormat)) {
	case "", "MM/DD/YYYY":
		return false, nil
	case "DD/MM/YYYY":
		return true, nil
	}
	return false, fmt.Errorf("template date format %q is not MM/DD/YYYY or DD/MM/YYYY", t.DateFormat)
}

func newTemplateWriter(w io.Writer, t Template) (*templateWriter, error) {
	cols, err := templateColumns(t)
	if err != nil {
		return nil, err
	}
	dmy, err := templateDMY(t)
	if err != nil {
		return nil, err
	}
	tw := &templateWriter{w: bufio.NewWriterSize(w, 64<<10), cols: cols, dmy: dmy}
	for i, f := range cols {
		if i > 0 {
			tw.w.WriteByte(',')
		}
		tw.w.WriteString(fieldColumns[f])
	}
	_, err = tw.w.WriteString("\r\n")
	return tw, err
}

// carries reports which fields the template has a column for; a record
// with a value in any other field cannot be sent without losing it.
func carries(cols []field) (c [numFields]bool) {
	for _, f := range cols {
		c[f] = true
	}
	return c
}

func (tw *templateWriter) write(rec *Record) error {
	b := tw.buf[:0]
	for i, f := range tw.cols {
		if i > 0 {
			b = append(b, ',')
		}
		switch f {
		case fStart, fEnd:
			b = tw.appendDate(b, rec.field(f))
		default:
			b = appendCSV(b, rec.field(f))
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

// appendDate writes YYYY-MM-DD in the template's order.
func (tw *templateWriter) appendDate(b []byte, iso string) []byte {
	if len(iso) != 10 {
		return append(b, iso...)
	}
	y, m, d := iso[0:4], iso[5:7], iso[8:10]
	if tw.dmy {
		m, d = d, m
	}
	b = append(b, m...)
	b = append(b, '/')
	b = append(b, d...)
	b = append(b, '/')
	return append(b, y...)
}

// appendCSV quotes a value only when it must be.
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
// which showed at the top of the CSV profile.
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

func (tw *templateWriter) flush() error { return tw.w.Flush() }

// field returns one of the record's values by field.
func (r *Record) field(f field) string {
	switch f {
	case fAccount:
		return r.Account
	case fUOM:
		return r.UOM
	case fQty:
		return r.Qty
	case fStart:
		return r.Start
	case fEnd:
		return r.End
	case fSubscription:
		return r.Subscription
	case fCharge:
		return r.Charge
	case fDescription:
		return r.Description
	case fUniqueKey:
		return r.UniqueKey
	case fRatePlan:
		return r.RatePlanCharge
	}
	return ""
}

// writeTemplate is WriteTemplate: Read with a template writer as fn.
// tmpDir is where a compressed workbook inside a zip is inflated; "" is
// os.TempDir.
func writeTemplate(ctx context.Context, name string, r io.ReaderAt, size int64, opt Options, t Template, w io.Writer, tmpDir string) (Summary, error) {
	tw, err := newTemplateWriter(w, t)
	if err != nil {
		return Summary{}, fmt.Errorf("write template for %s: %w", name, err)
	}
	rd, err := newReader(ctx, opt, func(rec Record) error { return tw.write(&rec) })
	if err != nil {
		return Summary{}, fmt.Errorf("read %s: %w", name, err)
	}
	rd.carry = carries(tw.cols)
	rd.tmpDir = tmpDir
	rd.limitCarry = true
	if err := rd.read(name, r, size); err != nil {
		return rd.finish(false), fmt.Errorf("read %s: %w", name, err)
	}
	if err := tw.flush(); err != nil {
		return rd.finish(false), fmt.Errorf("write template for %s: %w", name, err)
	}
	rd.sent = tw.rows
	return rd.finish(true), nil
}
