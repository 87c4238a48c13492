package pipeline

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"usagedrop/convert"
	"usagedrop/internal/atomicfile"
	"usagedrop/internal/safetext"
	"usagedrop/ledger"
	"usagedrop/sources"
	"usagedrop/uploader"
)

// Report suffixes, appended to the file's final name.
const (
	statusSuffix = ".status.txt"
	errorsSuffix = ".errors.csv"
)

// Report caps. Whatever a drop holds, its reports stay small enough to
// open, to copy back to the user and to keep: a hostile drop once made a
// 367 MB errors.csv and a 26 MB status.txt. What passes a cap is cut with
// a note saying so, and the counts stay true.
const (
	// errorsCSVMax is the size of NAME.errors.csv; past it the remaining
	// problems are counted, not listed.
	errorsCSVMax = 1 << 20
	// statusTextMax is the size of NAME.status.txt.
	statusTextMax = 64 << 10
	// cellMax is one errors.csv cell, and one value quoted in status.txt.
	cellMax = 1 << 10
	// noteMax is one line of history, a warning, a reason.
	noteMax = 1 << 10
	// statusProblems is how many problems status.txt quotes.
	statusProblems = 10
	// ignoredListed is how many ignored columns a warning names.
	ignoredListed = 20
)

// notListed starts the last row of an errors.csv that could not list
// every problem; firstProblems knows that row by it.
const notListed = "Only the first "

// writeErrorsCSV keeps a rejected file's problems in the spool until the
// file is finished: the ledger holds only their count.
func writeErrorsCSV(dst string, s convert.Summary) error {
	return atomicfile.Write(dst, 0o600, func(w io.Writer) error { return errorsCSV(w, s) })
}

// errorsCSV writes the problems of s as the CSV a finance user opens next
// to the rejected file: one row per problem, in file order, at most
// errorsCSVMax bytes. Every cell is escaped to one line, clipped to
// cellMax and neutralised so that a spreadsheet shows it as text and never
// runs it as a formula.
func errorsCSV(w io.Writer, s convert.Summary) error {
	var buf bytes.Buffer
	// A BOM, so that Excel opens the UTF-8 file as UTF-8.
	buf.WriteString("\ufeff")
	cw := csv.NewWriter(&buf)
	cw.UseCRLF = true
	row := func(cells ...string) error {
		cw.Write(cells)
		cw.Flush()
		return cw.Error()
	}
	if err := row("file", "sheet", "line", "column", "value", "reason"); err != nil {
		return err
	}
	total := len(s.Problems) + s.MoreProblems
	listed := 0
	// Room for the closing row, whose numbers are at most 20 digits each.
	const closing = 256
	for _, pr := range s.Problems {
		line := ""
		if pr.Line > 0 {
			line = strconv.Itoa(pr.Line)
		}
		mark := buf.Len()
		if err := row(cell(pr.Member), cell(pr.Sheet), line, cell(pr.ColumnName()), cell(pr.Value), cell(pr.Reason)); err != nil {
			return err
		}
		if buf.Len() > errorsCSVMax-closing {
			buf.Truncate(mark)
			break
		}
		listed++
	}
	if listed < total {
		msg := fmt.Sprintf("%s%d of %d problems are listed. Fix them and drop the whole file again to see the rest.",
			notListed, listed, total)
		if err := row("", "", "", "", "", msg); err != nil {
			return err
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// cell is text from a drop as one errors.csv cell: escaped, clipped, and
// never a formula.
func cell(s string) string { return safetext.Cell(safetext.Line(s, cellMax)) }

// describe is one problem for the operator, in the words of `usagedrop
// check`: `line 8: Unit (UOM): The UOM is missing (got "")`, and the
// setting that may be behind it.
func describe(pr convert.Problem) string {
	var b strings.Builder
	if pr.Member != "" {
		b.WriteString(safetext.Clip(pr.Member, 256) + ": ")
	}
	if pr.Sheet != "" {
		b.WriteString("sheet " + safetext.Clip(pr.Sheet, 256) + ": ")
	}
	if pr.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", pr.Line)
	}
	if c := pr.ColumnName(); c != "" {
		b.WriteString(safetext.Clip(c, 256) + ": ")
	}
	b.WriteString(safetext.Clip(pr.Reason, noteMax/2))
	if pr.Line > 0 || pr.Value != "" {
		fmt.Fprintf(&b, " (got %q)", safetext.Clip(pr.Value, 200))
	}
	return b.String()
}

// rejectNote is the ledger's note for a rejected file, at most noteMax
// bytes: the count, the first problem, and the settings the problems
// point at, for the operator who reads the log and the status page (the
// user's reports leave those out).
func rejectNote(s convert.Summary) string {
	n := len(s.Problems) + s.MoreProblems
	note := "rejected: " + describe(s.Problems[0])
	if n > 1 {
		note = fmt.Sprintf("rejected: %d problems, first: %s", n, describe(s.Problems[0]))
	}
	if h := hints(s.Problems); h != "" {
		note += "; for the operator: " + h
	}
	return safetext.Clip(note, noteMax)
}

// hints joins the distinct operator hints of problems, the first few.
func hints(problems []convert.Problem) string {
	var seen []string
	for _, pr := range problems {
		if pr.Hint != "" && !slices.Contains(seen, pr.Hint) {
			seen = append(seen, pr.Hint)
			if len(seen) == 3 {
				break
			}
		}
	}
	return strings.Join(seen, "; ")
}

// ignoredWarning names the columns that go nowhere, the first
// ignoredListed of them, each clipped: a row of 500,000 extra columns is
// one short note. The names stay as dropped; whoever shows the note
// escapes it.
func ignoredWarning(cols []string) []string {
	if len(cols) == 0 {
		return nil
	}
	shown := make([]string, 0, min(len(cols), ignoredListed))
	for _, c := range cols[:min(len(cols), ignoredListed)] {
		shown = append(shown, safetext.Clip(c, 40))
	}
	w := "columns not sent to Zuora: " + strings.Join(shown, ", ")
	if more := len(cols) - len(shown); more > 0 {
		w += fmt.Sprintf(" and %d more", more)
	}
	return []string{w}
}

// tooLarge is the ledger's note for a drop refused for its size, in the
// user's words (it is the Reason of their status.txt); the setting behind
// it goes to the log, with the drop's id.
func (p *Pipeline) tooLarge(e *ledger.Entry, size int64) string {
	p.log.Warn("drop too large; nothing was sent", "id", e.ID, "source", e.Source, "name", safetext.Name(e.Name),
		"size", size, "hint", p.opt.Caps.TooLargeHint())
	return p.opt.Caps.TooLarge(size) + "; nothing was sent"
}

// reports builds the files written beside a finished drop.
func (p *Pipeline) reports(e *ledger.Entry) ([]sources.Report, error) {
	if e.State != ledger.Rejected {
		return []sources.Report{{Suffix: statusSuffix, Body: []byte(p.statusText(e, "", 0))}}, nil
	}
	body, err := readCapped(filepath.Join(p.spoolDir(e), "errors.csv"), errorsCSVMax)
	if errors.Is(err, fs.ErrNotExist) {
		body = []byte("the list of problems was lost; run usagedrop check on the file to see them again\r\n")
	} else if err != nil {
		return nil, err
	}
	excerpt, listed := firstProblems(body, statusProblems)
	return []sources.Report{
		{Suffix: statusSuffix, Body: []byte(p.statusText(e, excerpt, listed))},
		{Suffix: errorsSuffix, Body: body},
	}, nil
}

// readCapped reads at most max bytes of the file at path: an errors.csv
// written before the caps existed is cut, not loaded whole.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// firstProblems quotes the first n rows of an errors CSV in plain words, so
// the status file alone tells the user what to fix, and counts the
// problems the CSV lists. Its cells are already escaped and clipped.
func firstProblems(errorsCSV []byte, n int) (excerpt string, listed int) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(errorsCSV, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	var rows [][]string
	for first := true; ; first = false {
		row, err := r.Read()
		if err != nil {
			// The end, or a CSV cut by readCapped: what was read stands.
			break
		}
		if first || len(row) < 6 || row[0]+row[1]+row[2]+row[3]+row[4] == "" && strings.HasPrefix(row[5], notListed) {
			continue
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return "", 0
	}
	var b strings.Builder
	if len(rows) > n {
		fmt.Fprintf(&b, "\nThe first %d problems:\n", n)
	} else {
		b.WriteString("\nThe problems:\n")
	}
	for i, row := range rows {
		if i == n {
			fmt.Fprintf(&b, "  ... and %d more in the %s file beside this one\n", len(rows)-n, errorsSuffix)
			break
		}
		var where []string
		for _, w := range []string{row[0], row[1]} {
			if w != "" {
				where = append(where, w)
			}
		}
		if row[2] != "" {
			where = append(where, "line "+row[2])
		}
		if row[3] != "" {
			where = append(where, row[3])
		}
		b.WriteString("  ")
		if len(where) > 0 {
			b.WriteString(strings.Join(where, ", ") + ": ")
		}
		b.WriteString(row[5])
		if row[4] != "" {
			fmt.Fprintf(&b, " (you wrote \"%s\")", row[4])
		}
		b.WriteString("\n")
	}
	return b.String(), len(rows)
}

// statusText says in plain words what happened to a file, for the person
// who dropped it: a one-line verdict first, then what to do, then the
// details. For a rejected file, excerpt quotes its first problems and
// listed is how many its errors.csv lists. Names are escaped to one line;
// the text stays under statusTextMax. Times are in Options.TimeZone.
func (p *Pipeline) statusText(e *ledger.Entry, excerpt string, listed int) string {
	var b strings.Builder
	partly := ""
	if e.State == ledger.Failed {
		partly = p.partlyCreated(e)
	}
	switch {
	case e.State == ledger.Done && mediation(e):
		// A 200 from Mediation means received and checked at the API
		// level; the meter validates and processes the events later.
		fmt.Fprintf(&b, "Sent to Zuora Mediation: %s usage records.\n\n", count(e.Records))
		for _, pt := range e.Parts {
			fmt.Fprintf(&b, "%s: %s\n", safetext.Line(pt.Name, noteMax), ledgerText(orUnknown(pt.Message), noteMax))
		}
		b.WriteString("The meter checks and processes the events after it accepts them; look there for events it refused.\n")
	case e.State == ledger.Done && objectAPI(e):
		fmt.Fprintf(&b, "Imported: %s usage records in Zuora, one record at a time through Zuora's object API (which gives no import id).\n",
			count(e.Records))
		if a := p.adoptedText(e); a != "" {
			b.WriteString("\n" + a)
		}
	case e.State == ledger.Done && len(e.Parts) == 1:
		fmt.Fprintf(&b, "Imported: %s usage records in Zuora (import %s).\n", count(e.Records), e.Parts[0].ImportID)
	case e.State == ledger.Done:
		fmt.Fprintf(&b, "Imported: %s usage records in Zuora, in %d imports (the file was too large for one):\n\n", count(e.Records), len(e.Parts))
		for _, pt := range e.Parts {
			fmt.Fprintf(&b, "  %s: %s records, import %s\n", safetext.Line(pt.Name, noteMax), count(pt.Records), pt.ImportID)
		}
	case e.State == ledger.Rejected:
		fmt.Fprintf(&b, "Not imported: %s fixing. Nothing was sent to Zuora.\n\n", needs(e.Problems))
		// The errors file is named for where the file lands, which the
		// source picks (a name already taken, or too long, gets another):
		// point at it by its place, not its name.
		switch {
		case listed == 0:
			b.WriteString("Their list was lost; drop the file again to see them.\n")
		case e.Problems == 1:
			fmt.Fprintf(&b, "It is listed in the %s file beside this one, with its line, column and value.\n", errorsSuffix)
		case listed >= e.Problems:
			fmt.Fprintf(&b, "All %s are listed in the %s file beside this one, with their line, column and value.\n", count(e.Problems), errorsSuffix)
		default:
			fmt.Fprintf(&b, "The first %s of %s problems are listed in the %s file beside this one, with their line, column and value; "+
				"the rest show once these are fixed and the file is dropped again.\n", count(listed), count(e.Problems), errorsSuffix)
		}
		b.WriteString("Fix them and drop the whole file again: Zuora imports a file whole or not at all.\n")
		b.WriteString(excerpt)
	case partly != "":
		// The object API has no atomicity: say exactly what is in Zuora.
		b.WriteString("Partly imported: some records of this file are in Zuora and the others are not. " +
			"The object API creates records one at a time, and it stopped.\n\n")
		fmt.Fprintf(&b, "Reason: %s\n\n", ledgerText(orUnknown(e.LastError), 4*noteMax))
		b.WriteString(partly)
		b.WriteString(p.adoptedText(e))
		// Whole: records are known by their content and by how many
		// identical ones come before them in the file, so a file cut
		// down to the rest could be taken for the records already sent.
		b.WriteString("\nFix what was refused and drop the whole file again: usagedrop remembers the records already in Zuora " +
			"and sends only the others.\n")
	case e.State == ledger.Failed:
		switch n := completedParts(e); {
		case len(e.Parts) == 0:
			b.WriteString("Not imported. Nothing was sent to Zuora.\n\n")
		case n == 0 || len(e.Parts) == 1:
			b.WriteString("Not imported. Nothing from this file is in Zuora: Zuora imports a file whole or not at all.\n\n")
		default:
			fmt.Fprintf(&b, "Partly imported: %d of the file's %d parts are in Zuora and must not be sent again; the others are not.\n\n", n, len(e.Parts))
		}
		fmt.Fprintf(&b, "Reason: %s\n", ledgerText(orUnknown(e.LastError), 4*noteMax))
		b.WriteString(p.partsSummary(e))
	case e.State == ledger.Duplicate:
		b.WriteString("Not imported again: the same content was already taken")
		if prev, err := p.opt.Ledger.Get(e.DuplicateOf); err == nil {
			fmt.Fprintf(&b, " as %s from %s on %s", safetext.Line(prev.Name, noteMax), safetext.Line(prev.Source, noteMax), p.when(prev.Created))
			if ids := importIDs(prev); ids != "" {
				fmt.Fprintf(&b, " and imported as %s", ids)
			}
		}
		b.WriteString(".\nNothing was sent to Zuora. If this usage really happened twice, change the file (e.g. its descriptions) and drop it again.\n")
	}
	for _, w := range e.Warnings {
		fmt.Fprintf(&b, "\nNote: %s.\n", safetext.Line(w, noteMax))
	}
	// The footer always fits: the body gives way.
	body := safetext.Clip(b.String(), statusTextMax-2*noteMax)
	return body + fmt.Sprintf("\nFile: %s\nDropped: %s\nFinished: %s\nReference: %s (sha256 %s)\n",
		safetext.Line(e.Name, noteMax), p.when(e.Created), p.when(time.Now()), e.ID, e.SHA256)
}

// when writes t for a finance user, in the configured zone: "1 Dec 2026
// 14:05 CET".
func (p *Pipeline) when(t time.Time) string {
	loc := p.opt.TimeZone
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2 Jan 2006 15:04 MST")
}

// needs is "1 problem needs" or "4 problems need".
func needs(n int) string {
	if n == 1 {
		return "1 problem needs"
	}
	return count(n) + " problems need"
}

// count writes n with thousands separators, as a finance user reads
// numbers: 1,250.
func count(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// completedParts is how many of e's parts Zuora imported.
func completedParts(e *ledger.Entry) int {
	n := 0
	for _, pt := range e.Parts {
		if pt.State == ledger.PartCompleted {
			n++
		}
	}
	return n
}

// partsSummary lists the parts of a file that was partly imported, what
// became of each; "" when the verdict says it all.
func (p *Pipeline) partsSummary(e *ledger.Entry) string {
	if len(e.Parts) < 2 || completedParts(e) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nThe parts (those Completed WERE imported):\n")
	for _, pt := range e.Parts {
		fmt.Fprintf(&b, "  %s: %s records, %s %s\n", safetext.Line(pt.Name, noteMax), count(pt.Records), safetext.Line(orUnknown(pt.ZuoraStatus), noteMax), pt.ImportID)
	}
	return b.String()
}

func importIDs(e *ledger.Entry) string {
	var ids []string
	for _, pt := range e.Parts {
		if pt.ImportID != "" {
			ids = append(ids, pt.ImportID)
		}
	}
	return strings.Join(ids, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// objectAPI reports whether e's parts went through the object API, whose
// receipts carry "object:N:M" as their import id.
func objectAPI(e *ledger.Entry) bool {
	return len(e.Parts) > 0 && strings.HasPrefix(e.Parts[0].ImportID, uploader.ObjectReceiptPrefix)
}

// partlyCreated says which records of a failed drop the object API
// created, or "" when none is in Zuora. The list with Zuora's ids is kept
// in the spool; should it be lost, the ledger still knows how many.
func (p *Pipeline) partlyCreated(e *ledger.Entry) string {
	recs, err := p.opt.Ledger.Records(e.ID)
	if err != nil || len(recs) == 0 {
		return ""
	}
	var b strings.Builder
	if body, err := readCapped(filepath.Join(p.spoolDir(e), recordsFile), statusTextMax/2); err == nil && len(body) > 0 {
		b.WriteString("What became of each record (numbered in file order, from 1):\n")
		for _, line := range strings.Split(strings.TrimRight(string(body), "\n"), "\n") {
			fmt.Fprintf(&b, "  %s\n", safetext.Line(line, statusTextMax/4))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%d records of this file WERE created in Zuora before it stopped (the list of which was lost with the spool; "+
		"usagedrop status shows this drop's history).\n", len(recs))
	return b.String()
}

// adoptedText says which records an earlier drop had created, so were not
// sent again, or "".
func (p *Pipeline) adoptedText(e *ledger.Entry) string {
	var b strings.Builder
	for _, pt := range e.Parts {
		if pt.Adopted == 0 {
			continue
		}
		from := pt.AdoptedFrom
		if prev, err := p.opt.Ledger.Get(pt.AdoptedFrom); err == nil {
			from = fmt.Sprintf("%s (dropped %s, reference %s)", safetext.Line(prev.Name, noteMax),
				p.when(prev.Created), prev.ID)
		}
		fmt.Fprintf(&b, "%d of these records had been created in Zuora by the earlier drop of %s, which stopped before it finished; "+
			"they were not sent again.\n", pt.Adopted, from)
	}
	return b.String()
}

// mediation reports whether e's parts went to a Mediation meter, whose
// receipts carry "mediation:METER:N" as their import id.
func mediation(e *ledger.Entry) bool {
	return len(e.Parts) > 0 && strings.HasPrefix(e.Parts[0].ImportID, "mediation:")
}

// ledgerText shows a text the ledger stored. The ledger keeps its texts
// escaped already (ledger.Text), and escaping them again would double
// every backslash; one that is not (an entry made by other means) is
// escaped here, so no control character ever reaches a report.
func ledgerText(s string, max int) string {
	if safetext.Shown(s) {
		return safetext.Clip(s, max)
	}
	return safetext.Line(s, max)
}
