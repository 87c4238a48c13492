package convert

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"usagedrop/internal/safetext"
)

// maxHeaderSearch is how many rows may stand above the header (titles,
// blank rows, notes) before a file is said to have no header.
const maxHeaderSearch = 50

// table is one grid of text cells: a CSV file or one worksheet.
type table interface {
	Next() bool
	Row() []string // valid until the next Next
	Line() int     // the row's number as the user's tool shows it
	Err() error
	Close() error
}

// unit is one table of a drop, opened once per pass: the first pass finds
// the header and decides the date order and decimal mark from the whole
// column; the second validates and emits. Re-reading is cheaper than
// holding the file, and the input is on disk.
type unit struct {
	member, sheet  string
	commaAmbiguous bool // a comma in QTY may be a thousands separator: comma-delimited text, or a spreadsheet's text cell
	pointAmbiguous bool // "1.000" in QTY may be one thousand: text delimited by ';', tab or '|', as decimal-comma locales write it
	open           func() (table, error)
}

// header is what the first pass learned about a unit.
type header struct {
	m       mapping
	line    int
	rules   fileRules
	partial bool // the first pass stopped early with nothing pending
	grouped bool // the unit's pointAmbiguous
}

// reader carries one drop's state across its units.
type reader struct {
	ctx   context.Context
	opt   Options
	over  map[string]field
	order dateOrder
	dec   decimalMode
	v     *validator
	sum   Summary
	caps  Caps
	max   int // caps.MaxProblems
	fn    func(Record) error
	errs  []rowError
	sent  int // records fn took, counted by the caller's side of fn

	// carry, when limitCarry is set, says which fields the output template
	// has columns for; a value in any other field is a bad row, not lost.
	carry      [numFields]bool
	limitCarry bool

	tmpDir string // for workbooks inflated out of a zip; "" is os.TempDir
	bufs   csvBuffers
}

func newReader(ctx context.Context, opt Options, fn func(Record) error) (*reader, error) {
	rd := &reader{ctx: ctx, opt: opt, v: newValidator(), fn: fn, caps: opt.Caps.withDefaults()}
	rd.max = rd.caps.MaxProblems
	rd.bufs.caps = &rd.caps
	var err error
	if rd.over, err = overrides(opt.Columns); err != nil {
		return nil, err
	}
	if rd.order, err = parseDateFormat(opt.DateFormat); err != nil {
		return nil, err
	}
	if rd.dec, err = parseDecimalComma(opt.DecimalComma); err != nil {
		return nil, err
	}
	return rd, nil
}

// problem keeps p unless the cap is reached, then only counts it. Long
// texts are clipped, so a report stays readable and small.
func (rd *reader) problem(p Problem) {
	if len(rd.sum.Problems) >= rd.max {
		rd.sum.MoreProblems++
		return
	}
	p = rd.caps.clip(p)
	p.Value = strings.Clone(p.Value) // not the reader's arena
	p.Member, p.Sheet = strings.Clone(p.Member), strings.Clone(p.Sheet)
	rd.sum.Problems = append(rd.sum.Problems, p)
}

// fileProblem records a reason the whole unit (or file) cannot be read.
func (rd *reader) fileProblem(u unit, line int, reason string) {
	rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: line, Reason: reason})
}

// failed turns a rejection into a problem and passes other errors up.
func (rd *reader) failed(u unit, err error) error {
	if r, ok := asRejected(err); ok {
		rd.fileProblem(u, r.line, r.reason)
		return nil
	}
	return err
}

// readUnit runs both passes over u.
func (rd *reader) readUnit(u unit) error {
	h, ok, err := rd.scan(u)
	if err != nil || !ok {
		return rd.failed(u, err)
	}
	return rd.failed(u, rd.emit(u, h))
}

// findHeader reads t up to its header row. ok is false, with the problem
// recorded, when there is none.
func (rd *reader) findHeader(u unit, t table) (header, bool, error) {
	var best mapping
	for i := 0; i < maxHeaderSearch && t.Next(); i++ {
		m, ok := mapHeader(t.Row(), rd.over, rd.caps.MaxHeaderCells)
		if ok {
			if m.dup != "" {
				rd.fileProblem(u, t.Line(), m.dup)
				return header{}, false, nil
			}
			return header{m: m, line: t.Line()}, true, nil
		}
		if m.score() > best.score() || best.found == nil {
			best = m
		}
	}
	if err := t.Err(); err != nil {
		return header{}, false, err
	}
	if best.found == nil {
		rd.fileProblem(u, 0, "the file holds no rows")
		return header{}, false, nil
	}
	rd.fileProblem(u, 0, best.missingProblem())
	return header{}, false, nil
}

// scanBudget is how many rows the first pass reads looking for evidence
// before it leaves the rest to the second pass: when every date so far is
// ISO (as date cells are) and no quantity has a comma, nothing is pending.
const scanBudget = 1000

// evidence is what the rows read so far say about dates and decimals.
type evidence struct {
	needDate, needDec        bool
	ambiguous, comma, dotted string // first undecided values seen
}

// scan is the first pass: the header, then evidence for the date order and
// the decimal mark, stopping as soon as both are settled or nothing is
// pending after scanBudget rows. A value read later that contradicts a
// decision is reported as a bad row in pass two.
func (rd *reader) scan(u unit) (header, bool, error) {
	t, err := u.open()
	if err != nil {
		return header{}, false, err
	}
	defer t.Close()
	h, ok, err := rd.findHeader(u, t)
	if !ok || err != nil {
		return h, ok, err
	}
	h.rules = fileRules{order: rd.order, decimal: rd.dec}
	h.grouped = u.pointAmbiguous
	ev := evidence{needDate: rd.order == orderUnknown, needDec: rd.dec == decimalUnknown}
	if h.partial, err = rd.gather(t, &h, &ev, scanBudget); err != nil {
		return h, false, err
	}
	return h, rd.decide(u, &h, &ev), nil
}

// gather reads rows of t as evidence until both questions are settled, or
// budget rows pass with nothing pending (partial is then true), or t ends.
func (rd *reader) gather(t table, h *header, ev *evidence, budget int) (partial bool, err error) {
	for n := 0; (ev.needDate || ev.needDec) && t.Next(); n++ {
		if n&4095 == 0 {
			if err := rd.ctx.Err(); err != nil {
				return false, err
			}
		}
		if budget > 0 && n >= budget && ev.ambiguous == "" && ev.comma == "" && ev.dotted == "" {
			return true, nil
		}
		ev.observe(t.Row(), h)
	}
	return false, t.Err()
}

// observe takes one row's dates and quantity as evidence.
func (ev *evidence) observe(row []string, h *header) {
	if ev.needDate {
		for _, f := range [...]field{fStart, fEnd} {
			v := cell(row, &h.m, f)
			if v == "" || isISO(v) {
				continue
			}
			if o, fixed := dateEvidence(v); fixed {
				h.rules.order, ev.needDate = o, false
				break
			} else if ev.ambiguous == "" {
				if _, ok := normDate(v, orderMDY); ok {
					ev.ambiguous = v
				}
			}
		}
	}
	if ev.needDec {
		v := cell(row, &h.m, fQty)
		switch c, p, g := qtyEvidence(v); {
		case p && !(g && h.grouped):
			h.rules.decimal, ev.needDec = decimalPoint, false
		case p && ev.dotted == "":
			ev.dotted = v
		case c && ev.comma == "":
			ev.comma = v
		}
	}
}

// decide turns evidence that stayed ambiguous into the one file-level
// problem that asks for the setting; ok is false when it did.
func (rd *reader) decide(u unit, h *header, ev *evidence) bool {
	if ev.needDate && ev.ambiguous != "" {
		rd.fileProblem(u, 0, fmt.Sprintf("the dates could be day-first or month-first (e.g. %q, and no day above 12 settles it); set date_format: DD/MM/YYYY or MM/DD/YYYY in the source's settings", ev.ambiguous))
		return false
	}
	if ev.needDec && ev.comma != "" {
		if u.commaAmbiguous {
			rd.fileProblem(u, 0, fmt.Sprintf("QTY values such as %q could use a decimal comma or a thousands separator; set decimal_comma: yes or no in the source's settings", ev.comma))
			return false
		}
		h.rules.decimal = decimalComma
	} else if ev.needDec && ev.dotted != "" {
		rd.fileProblem(u, 0, fmt.Sprintf("QTY values such as %q could use a thousands separator or a decimal point; set decimal_comma: yes or no in the source's settings", ev.dotted))
		return false
	}
	return true
}

// pending reports whether row holds a value the rules do not yet settle.
func pending(row []string, h *header) bool {
	if h.rules.order == orderUnknown {
		for _, f := range [...]field{fStart, fEnd} {
			if v := cell(row, &h.m, f); v != "" && !isISO(v) {
				return true
			}
		}
	}
	if h.rules.decimal == decimalUnknown {
		if c, p, g := qtyEvidence(cell(row, &h.m, fQty)); c || p && g && h.grouped {
			return true
		}
	}
	return false
}

// settle finishes a first pass that stopped early, from the row at line
// to the end: rows before it held no evidence either way.
func (rd *reader) settle(u unit, h *header, line int) (bool, error) {
	t, err := u.open()
	if err != nil {
		return false, err
	}
	defer t.Close()
	ev := evidence{needDate: h.rules.order == orderUnknown, needDec: h.rules.decimal == decimalUnknown}
	for t.Next() {
		if t.Line() >= line {
			ev.observe(t.Row(), h)
			break
		}
	}
	if _, err := rd.gather(t, h, &ev, 0); err != nil {
		return false, err
	}
	h.partial = false
	return rd.decide(u, h, &ev), nil
}

// emit is the second pass: every row after the header is validated, valid
// records go to fn, the rest become problems. Every row the table yields
// is counted as it comes (In) and again by what became of it; the two
// must agree (see account).
func (rd *reader) emit(u unit, h header) error {
	t, err := u.open()
	if err != nil {
		return err
	}
	defer t.Close()
	rc := RowCount{Member: u.member, Sheet: u.sheet}
	defer func() { rd.account(u, rc) }()
	for t.Line() < h.line && t.Next() {
		rc.In++
		if rd.refused(u, t, t.Row(), &h.m) {
			rc.Reported++
			continue
		}
		rc.Skipped++ // titles, blank rows and the header itself
	}
	rd.ignore(h.m)
	for n := 0; ; n++ {
		if n&4095 == 0 {
			if err := rd.ctx.Err(); err != nil {
				return err
			}
		}
		if !t.Next() {
			break
		}
		rc.In++
		row := t.Row()
		if blank(row) {
			rc.Skipped++
			continue
		}
		if rd.refused(u, t, row, &h.m) || rd.wide(u, t, row, &h.m) {
			rc.Reported++
			continue
		}
		if h.partial && pending(row, &h) {
			if ok, err := rd.settle(u, &h, t.Line()); err != nil || !ok {
				rc.Reported++ // the file-level problem names this row's value
				return err
			}
		}
		var rec Record
		rec, rd.errs = rd.v.record(row, &h.m, h.rules, rd.errs[:0])
		if rd.limitCarry {
			rd.errs = rd.uncarried(&rec, rd.errs)
		}
		if len(rd.errs) > 0 {
			rc.Reported++
			for _, e := range rd.errs {
				rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(), Column: e.col, Value: e.value, Reason: e.reason})
			}
			continue
		}
		rc.Out++
		rd.sum.Records++
		if err := rd.fn(rec); err != nil {
			return err
		}
	}
	return t.Err()
}

// account keeps one table's row counts and rejects the file when they do
// not add up: a row neither sent, reported nor skipped would be lost
// without a word, so a miscount is a bug that must stop the file.
func (rd *reader) account(u unit, rc RowCount) {
	rc.Member = safetext.Clip(rc.Member, rd.caps.MaxValueBytes)
	rc.Sheet = safetext.Clip(rc.Sheet, rd.caps.MaxValueBytes)
	rd.sum.Rows = append(rd.sum.Rows, rc)
	if !rc.Balanced() {
		rd.fileProblem(u, 0, unbalanced(rc))
	}
}

// unbalanced is the problem for counts that do not add up.
func unbalanced(rc RowCount) string {
	return fmt.Sprintf("rows did not add up: %d read, but %d sent, %d reported and %d skipped; this is a bug in usagedrop, nothing was sent (please pass the file on to its maintainers)",
		rc.In, rc.Out, rc.Reported, rc.Skipped)
}

// ignore adds a table's ignored columns to the summary, once each, up to
// the cap; names past it are counted once per table that has them.
func (rd *reader) ignore(m mapping) {
	for _, name := range m.ignored {
		name = safetext.Clip(name, rd.caps.MaxValueBytes)
		switch {
		case slices.Contains(rd.sum.Ignored, name):
		case len(rd.sum.Ignored) >= rd.caps.MaxHeaderCells:
			rd.sum.MoreIgnored++
		default:
			rd.sum.Ignored = append(rd.sum.Ignored, name)
		}
	}
	rd.sum.MoreIgnored += m.moreIgnored
}

// cleaner is a table that can vouch that its current row holds no control
// character (csvTable checks its bytes eight at a time).
type cleaner interface{ clean() bool }

// refused reports, as a problem, a row holding a control character or a
// value over the cell cap. Tab, and a line break inside a value (LF, or CR
// from a spreadsheet cell), are text; every other control character (NUL,
// escape, backspace, DEL, the C1 block) is refused wherever it appears,
// because no usage tool writes one and Zuora must never receive one.
func (rd *reader) refused(u unit, t table, row []string, m *mapping) bool {
	if c, ok := t.(cleaner); ok && c.clean() {
		return false
	}
	if len(row) > rd.caps.MaxColumns {
		rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(),
			Reason: fmt.Sprintf("the row has %d values, more than any usage file holds (max_columns %d)", len(row), rd.caps.MaxColumns)})
		return true
	}
	for i, v := range row {
		if len(v) > rd.caps.MaxCellBytes {
			rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(), Column: m.label(i),
				Value: v, Reason: fmt.Sprintf("the value is longer than %d bytes, which no usage value is (max_cell_bytes)", rd.caps.MaxCellBytes)})
			return true
		}
		if !mayHoldControlString(v) {
			continue
		}
		if at, r := controlAt(v); at >= 0 {
			rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(), Column: m.label(i),
				Value: safetext.Name(v), Reason: fmt.Sprintf("the value holds the control character %s, which no usage file should; the file may be damaged, or binary data was pasted into it", controlName(r))})
			return true
		}
	}
	return false
}

// controlAt returns the byte offset and rune of the first refused control
// character in s, or -1.
func controlAt(s string) (int, rune) {
	for i := 0; i < len(s); i++ {
		if !controlLead[s[i]] {
			continue
		}
		switch c := s[i]; {
		case c != 0xC2:
			return i, rune(c)
		case i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] < 0xA0:
			return i, rune(s[i+1])
		}
	}
	return -1, 0
}

// controlLead marks the bytes that start a refused control character: C0
// but tab, LF and CR; DEL; and 0xC2, which leads the C1 block in UTF-8
// (and also ordinary characters such as "£", told apart by the next byte).
var controlLead = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = c != '\t' && c != '\n' && c != '\r'
	}
	t[0x7F], t[0xC2] = true, true
	return t
}()

// controlName names a control character for a finance user.
func controlName(r rune) string {
	switch r {
	case 0:
		return "NUL (0x00)"
	case 0x1B:
		return "ESC (0x1B)"
	case 0x7F:
		return "DEL (0x7F)"
	}
	return fmt.Sprintf("0x%02X", r)
}

// label names the source column i for a problem: its template column
// when it feeds one, else its letter as a spreadsheet shows it ("column
// AB").
func (m *mapping) label(i int) string {
	for f, c := range m.col {
		if c == i {
			return fieldColumns[f]
		}
	}
	name := ""
	for i++; i > 0; i = (i - 1) / 26 {
		name = string(rune('A'+(i-1)%26)) + name
	}
	return "column " + name
}

// wide reports a row with non-empty values beyond its header's last
// column: the values have usually shifted (a delimiter inside a value that
// is not quoted), so every value in the row may be in the wrong column.
func (rd *reader) wide(u unit, t table, row []string, m *mapping) bool {
	if len(row) <= m.width {
		return false
	}
	for i := m.width; i < len(row); i++ {
		if trim(row[i]) != "" {
			rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(), Column: m.label(i), Value: row[i],
				Reason: fmt.Sprintf("the row has %d values but the header has %d columns, so its values may have shifted (is a delimiter inside a value that is not quoted?)", len(row), m.width)})
			return true
		}
	}
	return false
}

// uncarried reports values the output template has no column for.
func (rd *reader) uncarried(rec *Record, errs []rowError) []rowError {
	for f := fEnd; f < numFields; f++ {
		if !rd.carry[f] && rec.field(f) != "" {
			errs = append(errs, rowError{fieldColumns[f], rec.field(f),
				"The file has a " + fieldColumns[f] + " value but what is sent to Zuora has no " + fieldColumns[f] + " column, so the value would be lost; " +
					"add the column (zuora.columns, or zuora.event.fields for api: mediation) or remove the value"})
		}
	}
	return errs
}

// read dispatches on the format and reads every unit of the file.
func (rd *reader) read(name string, r io.ReaderAt, size int64) error {
	if why := rd.caps.TooLarge(size); why != "" {
		return rd.failed(unit{}, reject("%s", why))
	}
	f, err := detect(name, r, size, &rd.caps)
	if err != nil {
		return rd.failed(unit{}, err)
	}
	switch f {
	case formatCSV:
		u, err := csvUnit("", fileStream(r, size), rd.opt, rd.over, &rd.bufs)
		if err != nil {
			return rd.failed(unit{}, err)
		}
		return rd.readUnit(u)
	case formatXLSX:
		return rd.failed(unit{}, rd.readWorkbook("", r, size))
	case formatZip:
		return rd.failed(unit{}, rd.readZip(r, size))
	}
	return fmt.Errorf("read %s: format %d has no reader", name, f)
}

// finish sorts the summary's lists. A drop read to its end without a
// single record is rejected: there is nothing to import. A read to its end
// checks its records three ways: the reader's total, the tables' totals
// and what the receiving side counted must be one number.
func (rd *reader) finish(complete bool) Summary {
	if complete && rd.sum.Records == 0 && !rd.sum.Rejected() {
		rd.problem(Problem{Reason: "the file holds no usage rows below its header"})
	}
	if complete {
		out := 0
		for _, rc := range rd.sum.Rows {
			out += rc.Out
		}
		if out != rd.sum.Records || rd.sent != rd.sum.Records {
			rd.problem(Problem{Reason: fmt.Sprintf("rows did not add up: %d records read, %d counted by table, %d written; this is a bug in usagedrop, nothing was sent (please pass the file on to its maintainers)",
				rd.sum.Records, out, rd.sent)})
		}
	}
	s := rd.sum
	s.Ignored = sortedUnique(s.Ignored)
	return s
}

// readAll is Read without the exported signature's documentation.
func readAll(ctx context.Context, name string, r io.ReaderAt, size int64, opt Options, fn func(Record) error) (Summary, error) {
	var rd *reader
	rd, err := newReader(ctx, opt, func(rec Record) error {
		if err := fn(rec); err != nil {
			return err
		}
		rd.sent++
		return nil
	})
	if err != nil {
		return Summary{}, fmt.Errorf("read %s: %w", name, err)
	}
	if err := rd.read(name, r, size); err != nil {
		return rd.finish(false), fmt.Errorf("read %s: %w", name, err)
	}
	return rd.finish(true), nil
}

// memberName flattens a path inside a zip to its base name; Zuora's zips
// hold no directories and neither do our reports.
func memberName(name string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}
