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
	kept  int // bytes of text in sum.Problems

	// carry, when limitCarry is set, says which fields the output template
	// has columns for; a value in any other field is a bad row, not lost.
	carry      [numFields]bool
	limitCarry bool

	tmpDir string // for workbooks inflated out of a zip; "" is os.TempDir
	bufs   csvBuffers
}

// newReader reads with opt for fn; custom are the custom fields the
// records carry (Record.Custom), nil for none.
func newReader(ctx context.Context, opt Options, custom []string, fn func(Record) error) (*reader, error) {
	rd := &reader{ctx: ctx, opt: opt, v: newValidator(), fn: fn, caps: opt.Caps.WithDefaults()}
	rd.max = rd.caps.MaxProblems
	rd.bufs.caps = &rd.caps
	rd.v.custom = len(custom)
	var err error
	if rd.over, err = overrides(opt.Columns, custom); err != nil {
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

// problem keeps p unless a cap is reached, then only counts it. Long
// texts are clipped, so a report stays readable and small.
func (rd *reader) problem(p Problem) {
	if len(rd.sum.Problems) >= rd.max {
		rd.sum.MoreProblems++
		return
	}
	p = rd.caps.clip(p)
	size := len(p.Reason) + len(p.Value) + len(p.Member) + len(p.Sheet) + len(p.Column) + len(p.Header) + len(p.Hint)
	if rd.kept+size > rd.caps.MaxReportBytes && len(rd.sum.Problems) > 0 {
		rd.sum.MoreProblems++
		return
	}
	rd.kept += size
	p.Value = strings.Clone(p.Value) // not the reader's arena
	p.Member, p.Sheet, p.Header = strings.Clone(p.Member), strings.Clone(p.Sheet), strings.Clone(p.Header)
	rd.sum.Problems = append(rd.sum.Problems, p)
}

// fileProblem records a reason the whole unit (or file) cannot be read.
func (rd *reader) fileProblem(u unit, line int, reason string) {
	rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: line, Reason: reason})
}

// fileHint is fileProblem with a hint for the operator (Problem.Hint).
func (rd *reader) fileHint(u unit, line int, reason, hint string) {
	rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: line, Reason: reason, Hint: hint})
}

// failed turns a rejection into a problem and passes other errors up.
func (rd *reader) failed(u unit, err error) error {
	if r, ok := asRejected(err); ok {
		rd.fileHint(u, r.line, r.reason, r.hint)
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
				rd.fileHint(u, t.Line(), m.dup, m.dupHint)
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
	why, hint := best.missingProblem()
	rd.fileHint(u, 0, why, hint)
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
		rd.fileHint(u, 0, fmt.Sprintf("the dates could be day-first or month-first (e.g. %q, and no day above 12 settles it); %s", ev.ambiguous,
			askAdmin("set the date order for your files (day/month/year or month/day/year)")),
			"set date_format: DD/MM/YYYY or MM/DD/YYYY in the source's settings")
		return false
	}
	if ev.needDec && ev.comma != "" {
		if u.commaAmbiguous {
			rd.fileHint(u, 0, fmt.Sprintf("QTY values such as %q could use a decimal comma or a thousands separator; write quantities without thousands separators, or %s", ev.comma,
				askAdmin("set whether your files write decimal commas")),
				"set decimal_comma: yes or no in the source's settings")
			return false
		}
		h.rules.decimal = decimalComma
	} else if ev.needDec && ev.dotted != "" {
		rd.fileHint(u, 0, fmt.Sprintf("QTY values such as %q could use a thousands separator or a decimal point; write quantities without thousands separators, or %s", ev.dotted,
			askAdmin("set whether your files write decimal commas")),
			"set decimal_comma: yes or no in the source's settings")
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
	rc, err := rd.emitRows(u, h, t)
	rd.account(u, rc)
	return err
}

// emitRows is emit's loop over t. The counts are returned, not kept in a
// closure, so that counting costs no more than an increment.
func (rd *reader) emitRows(u unit, h header, t table) (rc RowCount, err error) {
	rc = RowCount{Member: u.member, Sheet: u.sheet}
	c, _ := t.(cleaner) // nil: every row is looked at value by value
	for t.Line() < h.line && t.Next() {
		rc.In++
		if rd.refused(u, t, c, t.Row(), &h.m) {
			rc.Reported++
			continue
		}
		rc.Skipped++ // titles, blank rows and the header itself
	}
	rd.ignore(h.m)
	for n := 0; ; n++ {
		if n&4095 == 0 {
			if err := rd.ctx.Err(); err != nil {
				return rc, err
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
		if rd.refused(u, t, c, row, &h.m) || rd.wide(u, t, row, &h.m) {
			rc.Reported++
			continue
		}
		if h.partial && pending(row, &h) {
			if ok, err := rd.settle(u, &h, t.Line()); err != nil || !ok {
				rc.Reported++ // the file-level problem names this row's value
				return rc, err
			}
		}
		var rec Record
		rec, rd.errs = rd.v.record(row, &h.m, h.rules, c != nil && c.ascii(), rd.errs[:0])
		if rd.limitCarry {
			rd.errs = rd.uncarried(&rec, rd.errs)
		}
		if len(rd.errs) > 0 {
			rc.Reported++
			for _, e := range rd.errs {
				col, head := h.m.fieldLabel(e.f)
				rd.problem(Problem{Member: u.member, Sheet: u.sheet, Line: t.Line(), Column: col, Header: head, Value: e.value, Reason: e.reason, Hint: e.hint})
			}
			continue
		}
		rc.Out++
		rd.sum.Records++
		if err := rd.fn(rec); err != nil {
			return rc, err
		}
	}
	return rc, t.Err()
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

// uncarried reports values the output template has no column for.
func (rd *reader) uncarried(rec *Record, errs []rowError) []rowError {
	for f := fEnd; f < numFields; f++ {
		if !rd.carry[f] && rec.Get(f) != "" {
			errs = append(errs, rowError{f, rec.Get(f),
				"The file has a " + f.Column() + " value but what is sent to Zuora has no " + f.Column() + " column, so the value would be lost; " +
					"remove the value, or " + askAdmin("send the "+f.Column()+" column to Zuora"),
				"add " + f.Column() + " to zuora.columns (or to zuora.event.fields for api: mediation)"})
		}
	}
	return errs
}

// read dispatches on the format and reads every unit of the file.
func (rd *reader) read(name string, r io.ReaderAt, size int64) error {
	if why := rd.caps.TooLarge(size); why != "" {
		return rd.failed(unit{}, rejectHint(rd.caps.TooLargeHint(), "%s", why))
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
	rd, err := newReader(ctx, opt, nil, func(rec Record) error {
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
