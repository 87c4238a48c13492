package uploader

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"usagedrop/usage"
)

// row is one usage record read back from a template part, for the APIs
// that take records rather than files: its values (dates YYYY-MM-DD, the
// template's custom fields in Record.Custom), its index among the part's
// records (for idempotency keys) and its line in the CSV.
type row usage.Row

// templateColumns maps the template's standard column names to where a
// row keeps their values.
var templateColumns = func() map[string]func(*row) *string {
	m := map[string]func(*row) *string{}
	for _, name := range usage.Columns() {
		f, _ := usage.Lookup(name)
		m[name] = func(r *row) *string { return r.Ptr(f) }
	}
	return m
}()

// columnValue returns where a row keeps the value of the template column
// col: a standard column, or a custom field (Region__c), which is empty in
// a row whose part has no such column; nil for any other name.
func columnValue(col string) func(*row) *string {
	if v := templateColumns[col]; v != nil {
		return v
	}
	if !usage.IsCustomField(col) {
		return nil
	}
	return func(r *row) *string {
		for i, name := range r.CustomNames {
			if name == col {
				return &r.Custom[i]
			}
		}
		return new(string)
	}
}

// readTemplate streams the records of a template part (a CSV, or a zip
// holding one CSV) to fn, in order, with the part's header. dateFormat is
// the part's date order, "MM/DD/YYYY" (or empty) or "DD/MM/YYYY". Rows
// whose values are all empty are skipped, as Zuora does. An error from fn
// stops the read and is returned as is.
func readTemplate(p Part, dateFormat string, fn func(row) error) error {
	return readTemplateHeader(p, dateFormat, func(usage.Header) error { return nil }, fn)
}

// readTemplateHeader is readTemplate with the header given to head before
// the first record.
func readTemplateHeader(p Part, dateFormat string, head func(usage.Header) error, fn func(row) error) error {
	rc, err := openTemplate(p)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr, err := usage.NewReader(rc, dateFormat)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	if err := head(tr.Header()); err != nil {
		return err
	}
	for {
		r, err := tr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", p.Name, err)
		}
		if err := fn(row(r)); err != nil {
			return err
		}
	}
}

// withCustom adds the row's custom fields (Region__c) to the JSON object
// body, as the Usage object takes them (seed 002); an empty value is left
// out, as the standard fields are.
func withCustom(body []byte, r row) []byte {
	for i, v := range r.Custom {
		if v == "" {
			continue
		}
		body = append(body[:len(body)-1], ',')
		body = appendJSONString(body, r.CustomNames[i])
		body = appendJSONString(append(body, ':'), v)
		body = append(body, '}')
	}
	return body
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
