package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"usagedrop/convert/xlsx"
	"usagedrop/internal/safetext"
)

// sheetTable presents a worksheet's rows as text cells in the forms the
// validator reads: date cells as YYYY-MM-DD from their serial value and the
// workbook's date system, numbers as plain decimals from the stored value
// (never the displayed text), formulas by their cached value. Hidden rows
// are data: Zuora would import them, so they are read.
type sheetTable struct {
	rows     *xlsx.Rows
	date1904 bool
	row      []string
	line     int
	err      error
}

func (t *sheetTable) Next() bool {
	if !t.rows.Next() {
		return false
	}
	r := t.rows.Row()
	t.line = r.Num
	t.row = t.row[:0]
	for _, c := range r.Cells {
		t.row = append(t.row, cellText(c, t.date1904))
	}
	return true
}

// cellText renders one cell. A value that cannot be rendered is passed on
// as stored so the validator names it.
func cellText(c xlsx.Cell, date1904 bool) string {
	switch c.Kind {
	case xlsx.Empty:
		return ""
	case xlsx.Number:
		if c.DateStyle {
			return cellDate(c, date1904)
		}
		if d, err := c.Decimal(); err == nil {
			return d
		}
		return c.Value
	case xlsx.Date:
		return cellDate(c, date1904)
	case xlsx.Bool:
		if c.Value == "1" {
			return "TRUE"
		}
		return "FALSE"
	}
	return c.Value
}

// cellDate renders a date cell as YYYY-MM-DD; a time of day is dropped, as
// Zuora's STARTDATE and ENDDATE are dates.
func cellDate(c xlsx.Cell, date1904 bool) string {
	tm, err := c.Time(date1904)
	if err != nil || tm.Year() < 1 || tm.Year() > 9999 {
		return c.Value
	}
	y, m, d := tm.Date()
	return formatISO(y, int(m), d)
}

func (t *sheetTable) Row() []string { return t.row }
func (t *sheetTable) Line() int     { return t.line }
func (t *sheetTable) Err() error    { return workbookErr(t.rows.Err(), "the worksheet cannot be read") }

// workbookErr turns an error of the xlsx reader into what the drop's
// owner is told. A cap the workbook crossed is a refusal naming the place
// and the cap; a damaged workbook is a refusal asking for it to be saved
// again; a shutdown or a fault of this machine (a full temporary disk) is
// an error to retry, never a refusal of a good workbook.
func workbookErr(err error, what string) error {
	var le *xlsx.LimitError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, xlsx.ErrTemp):
		return err
	case errors.As(err, &le):
		return &errRejected{line: le.Row, reason: limitReason(le)}
	}
	return reject("%s (%s); open the workbook in Excel and save it again", what, safetext.Clip(err.Error(), maxReasonBytes))
}

// maxReasonBytes bounds the reader's own words in a message: they may
// quote the workbook.
const maxReasonBytes = 512

// limitReason words a LimitError for a finance user: where, then what.
func limitReason(le *xlsx.LimitError) string {
	var where string
	switch {
	case le.Sheet != "" && le.Row > 0 && le.Col >= 0:
		where = fmt.Sprintf("sheet %q, cell %s: ", safetext.Name(le.Sheet), xlsx.CellName(le.Col, le.Row))
	case le.Sheet != "" && le.Row > 0:
		where = fmt.Sprintf("sheet %q, row %d: ", safetext.Name(le.Sheet), le.Row)
	case le.Sheet != "":
		where = fmt.Sprintf("sheet %q: ", safetext.Name(le.Sheet))
	case le.Part != "":
		where = fmt.Sprintf("its part %s: ", safetext.Name(le.Part))
	}
	return safetext.Clip("the workbook is refused, it is larger than this service accepts: "+where+le.Reason+"; split it into smaller workbooks or save it as CSV", maxReasonBytes)
}
func (t *sheetTable) Close() error { return t.rows.Close() }

// readWorkbook reads the chosen sheet of a workbook: Options.Sheet, else
// the first sheet whose header row is recognised.
func (rd *reader) readWorkbook(member string, r io.ReaderAt, size int64) error {
	wb, err := xlsx.OpenLimits(r, size, xlsx.Limits{TempDir: rd.tmpDir})
	if err != nil {
		return workbookErr(err, "the workbook is damaged or incomplete")
	}
	defer wb.Close()
	open := func(sheet string) func() (table, error) {
		return func() (table, error) {
			rows, err := wb.Rows(rd.ctx, sheet)
			if err != nil {
				return nil, workbookErr(err, fmt.Sprintf("the worksheet %q cannot be read", safetext.Name(sheet)))
			}
			return &sheetTable{rows: rows, date1904: wb.Date1904()}, nil
		}
	}
	sheets := wb.Sheets()
	if rd.opt.Sheet != "" {
		for _, s := range sheets {
			if strings.EqualFold(s.Name, rd.opt.Sheet) {
				return rd.readUnit(unit{member: member, sheet: s.Name, commaAmbiguous: true, open: open(s.Name)})
			}
		}
		names := make([]string, len(sheets))
		for i, s := range sheets {
			names[i] = fmt.Sprintf("%q", safetext.Name(s.Name))
		}
		return reject("the workbook has no sheet %q; its sheets are %s", rd.opt.Sheet, safetext.Clip(strings.Join(names, ", "), maxReasonBytes))
	}
	return rd.readFirstSheet(member, sheets, open)
}

// readFirstSheet tries each sheet's header, visible sheets first, in
// workbook order, and reads the first that has one. When none has, the problem of the first sheet is the
// one reported.
func (rd *reader) readFirstSheet(member string, sheets []xlsx.Sheet, open func(string) func() (table, error)) error {
	if len(sheets) == 0 {
		return reject("the workbook has no worksheets")
	}
	ordered := make([]xlsx.Sheet, 0, len(sheets))
	for _, hidden := range []bool{false, true} {
		for _, s := range sheets {
			if s.Hidden == hidden {
				ordered = append(ordered, s)
			}
		}
	}
	for _, s := range ordered {
		u := unit{member: member, sheet: s.Name, commaAmbiguous: true, open: open(s.Name)}
		t, err := u.open()
		if err != nil {
			return err
		}
		probe := &reader{ctx: rd.ctx, over: rd.over, max: 1}
		_, ok, err := probe.findHeader(u, t)
		t.Close()
		if err != nil {
			return err
		}
		if ok {
			return rd.readUnit(u)
		}
	}
	u := unit{member: member, sheet: sheets[0].Name, commaAmbiguous: true, open: open(sheets[0].Name)}
	return rd.readUnit(u)
}
