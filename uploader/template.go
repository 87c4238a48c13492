package uploader

import (
	"archive/zip"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// row is one usage record read back from a template part, for the APIs
// that take records rather than files. Dates are YYYY-MM-DD.
type row struct {
	Index          int // 0-based among the part's records, for idempotency keys
	Line           int // line in the CSV, the header being line 1
	Account        string
	UOM            string
	Qty            string
	Start          string
	End            string
	Subscription   string
	Charge         string
	Description    string
	UniqueKey      string
	RatePlanCharge string
}

// templateColumns maps the template's header names to row fields.
var templateColumns = map[string]func(*row) *string{
	"ACCOUNT_ID":                  func(r *row) *string { return &r.Account },
	"UOM":                         func(r *row) *string { return &r.UOM },
	"QTY":                         func(r *row) *string { return &r.Qty },
	"STARTDATE":                   func(r *row) *string { return &r.Start },
	"ENDDATE":                     func(r *row) *string { return &r.End },
	"SUBSCRIPTION_ID":             func(r *row) *string { return &r.Subscription },
	"CHARGE_ID":                   func(r *row) *string { return &r.Charge },
	"DESCRIPTION":                 func(r *row) *string { return &r.Description },
	"UNIQUE_KEY":                  func(r *row) *string { return &r.UniqueKey },
	"PRODUCT_RATE_PLAN_CHARGE_ID": func(r *row) *string { return &r.RatePlanCharge },
}

// readTemplate streams the records of a template part (a CSV, or a zip
// holding one CSV) to fn, in order. dateFormat is the part's date order,
// "MM/DD/YYYY" (or empty) or "DD/MM/YYYY". Rows whose values are all empty
// are skipped, as Zuora does. An error from fn stops the read and is
// returned as is.
func readTemplate(p Part, dateFormat string, fn func(row) error) error {
	rc, err := openTemplate(p)
	if err != nil {
		return err
	}
	defer rc.Close()
	cr := csv.NewReader(rc)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read the header of %s: %w", p.Name, err)
	}
	fields := make([]func(*row) *string, len(header))
	for i, h := range header {
		name := strings.ToUpper(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if fields[i] = templateColumns[name]; fields[i] == nil {
			return fmt.Errorf("%s: column %q is not a usage template column", p.Name, h)
		}
	}
	for index := 0; ; {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", p.Name, err)
		}
		line, _ := cr.FieldPos(0)
		r := row{Index: index, Line: line}
		empty := true
		for i, v := range rec {
			*fields[i](&r) = strings.TrimSpace(v)
			empty = empty && strings.TrimSpace(v) == ""
		}
		if empty {
			continue
		}
		if r.Start, err = isoDate(r.Start, dateFormat); err != nil {
			return fmt.Errorf("%s line %d: STARTDATE: %w", p.Name, line, err)
		}
		if r.End, err = isoDate(r.End, dateFormat); err != nil {
			return fmt.Errorf("%s line %d: ENDDATE: %w", p.Name, line, err)
		}
		if err := fn(r); err != nil {
			return err
		}
		index++
	}
}

// openTemplate opens the CSV of a part: the file itself, or the one CSV
// entry of a zip, streamed.
func openTemplate(p Part) (io.ReadCloser, error) {
	if !strings.EqualFold(path.Ext(p.Name), ".zip") {
		f, err := os.Open(p.Path)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", p.Path, err)
		}
		return f, nil
	}
	zr, err := zip.OpenReader(p.Path)
	if err != nil {
		return nil, fmt.Errorf("open zip %s: %w", p.Path, err)
	}
	if len(zr.File) != 1 || zr.File[0].FileInfo().IsDir() {
		zr.Close()
		return nil, fmt.Errorf("zip %s: want exactly one CSV entry, found %d entries", p.Path, len(zr.File))
	}
	entry, err := zr.File[0].Open()
	if err != nil {
		zr.Close()
		return nil, fmt.Errorf("open %s in %s: %w", zr.File[0].Name, p.Path, err)
	}
	return readCloser{entry, closeBoth{entry, zr}}, nil
}

// closeBoth closes an entry and then its archive.
type closeBoth struct{ a, b io.Closer }

func (c closeBoth) Close() error { return errors.Join(c.a.Close(), c.b.Close()) }

// isoDate turns a template date in the given order into YYYY-MM-DD; an
// empty date stays empty.
func isoDate(s, format string) (string, error) {
	if s == "" {
		return "", nil
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return "", fmt.Errorf("%q is not a date in %s", s, cmp.Or(format, "MM/DD/YYYY"))
	}
	var n [3]int
	for i, part := range parts {
		v, err := strconv.Atoi(part)
		if err != nil {
			return "", fmt.Errorf("%q is not a date in %s", s, cmp.Or(format, "MM/DD/YYYY"))
		}
		n[i] = v
	}
	month, day := n[0], n[1]
	if strings.EqualFold(format, "DD/MM/YYYY") {
		month, day = day, month
	}
	t := time.Date(n[2], time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day || int(t.Month()) != month || t.Year() != n[2] {
		return "", fmt.Errorf("%q is not a real date", s)
	}
	return t.Format(time.DateOnly), nil
}
