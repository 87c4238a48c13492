package convert

import (
	"context"
	"fmt"
	"io"

	"usagedrop/usage"
)

// carries reports which fields the template has a column for; a record
// with a value in any other field cannot be sent without losing it.
func carries(h usage.Header) (c [numFields]bool) {
	for f := range numFields {
		c[f] = h.Has(f)
	}
	return c
}

// writeTemplate is WriteTemplate: Read with a template writer as fn.
// tmpDir is where a compressed workbook inside a zip is inflated; "" is
// os.TempDir.
func writeTemplate(ctx context.Context, name string, r io.ReaderAt, size int64, opt Options, t Template, w io.Writer, tmpDir string) (Summary, error) {
	h, err := usage.ParseHeader(t.Columns)
	if err != nil {
		return Summary{}, fmt.Errorf("write template for %s: template %w", name, err)
	}
	tw, err := usage.NewWriter(w, h, t.DateFormat)
	if err != nil {
		return Summary{}, fmt.Errorf("write template for %s: template %w", name, err)
	}
	rd, err := newReader(ctx, opt, h.Custom(), func(rec Record) error { return tw.Write(&rec) })
	if err != nil {
		return Summary{}, fmt.Errorf("read %s: %w", name, err)
	}
	rd.carry = carries(h)
	rd.tmpDir = tmpDir
	rd.limitCarry = true
	if err := rd.read(name, r, size); err != nil {
		return rd.finish(false), fmt.Errorf("read %s: %w", name, err)
	}
	if err := tw.Flush(); err != nil {
		return rd.finish(false), fmt.Errorf("write template for %s: %w", name, err)
	}
	rd.sent = tw.Rows()
	return rd.finish(true), nil
}
