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
		if err := row(cell(pr.Member), cell(pr.Sheet), line, cell(pr.Column), cell(pr.Value), cell(pr.Reason)); err != nil {
			return err
		}
		if buf.Len() > errorsCSVMax-closing {
			buf.Truncate(mark)
			break
		}
		listed++
	}
	if listed < total {
		msg := fmt.Sprintf("%s%d of %d problems are listed. Fix them and check the file again (usagedrop check) to see the rest.",
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

// describe is one problem in the words of `usagedrop check`:
// `line 8: UOM: The UOM is missing (got "")`.
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
	if pr.Column != "" {
		b.WriteString(safetext.Clip(pr.Column, 256) + ": ")
	}
	b.WriteString(safetext.Clip(pr.Reason, noteMax/2))
	if pr.Line > 0 || pr.Value != "" {
		fmt.Fprintf(&b, " (got %q)", safetext.Clip(pr.Value, 200))
	}
	return b.String()
}

// rejectNote is the ledger's note for a rejected file, at most noteMax
// bytes.
func rejectNote(s convert.Summary) string {
	n := len(s.Problems) + s.MoreProblems
	if n == 1 {
		return safetext.Clip("rejected: "+describe(s.Problems[0]), noteMax)
	}
	return safetext.Clip(fmt.Sprintf("rejected: %d problems, first: %s", n, describe(s.Problems[0])), noteMax)
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
	b.WriteString("\nThe first problems:\n")
	for i, row := range rows {
		if i == n {
			fmt.Fprintf(&b, "  ... see the .errors.csv file for the other %d listed there\n", len(rows)-n)
			break
		}
		where := strings.TrimSpace(strings.Join([]string{row[0], row[1]}, " "))
		if where != "" {
			where += ", "
		}
		switch {
		case row[2] != "":
			fmt.Fprintf(&b, "  %sline %s, column %s: %s (value \"%s\")\n", where, row[2], row[3], row[5], row[4])
		default:
			fmt.Fprintf(&b, "  %s%s\n", where, row[5])
		}
	}
	return b.String(), len(rows)
}

// statusText says in plain words what happened to a file, for the person
// who dropped it. For a rejected file, excerpt quotes its first problems
// and listed is how many its errors.csv lists. Names are escaped to one
// line; the text stays under statusTextMax.
func (p *Pipeline) statusText(e *ledger.Entry, excerpt string, listed int) string {
	var b strings.Builder
	when := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
	name := safetext.Line(e.Name, noteMax)
	partly := ""
	if e.State == ledger.Failed {
		partly = p.partlyCreated(e)
	}
	switch {
	case e.State == ledger.Done && mediation(e):
		// A 200 from Mediation means received and checked at the API
		// level; the meter validates and processes the events later.
		fmt.Fprintf(&b, "%s was sent to Zuora Mediation.\n\n", name)
		for _, pt := range e.Parts {
			fmt.Fprintf(&b, "%s: %s\n", safetext.Line(pt.Name, noteMax), ledgerText(orUnknown(pt.Message), noteMax))
		}
		b.WriteString("The meter checks and processes the events after it accepts them; look there for events it refused.\n")
	case e.State == ledger.Done && objectAPI(e):
		fmt.Fprintf(&b, "%s was imported into Zuora.\n\n%d usage records were imported, one record at a time through Zuora's object API "+
			"(which gives no import id).\n", name, e.Records)
		b.WriteString(p.adoptedText(e))
	case e.State == ledger.Done:
		fmt.Fprintf(&b, "%s was imported into Zuora.\n\n%d usage records were imported", name, e.Records)
		if len(e.Parts) == 1 {
			fmt.Fprintf(&b, " as import %s.\n", e.Parts[0].ImportID)
		} else {
			fmt.Fprintf(&b, " in %d imports (the file was too large for one):\n", len(e.Parts))
			for _, pt := range e.Parts {
				fmt.Fprintf(&b, "  %s: %d records, import %s\n", safetext.Line(pt.Name, noteMax), pt.Records, pt.ImportID)
			}
		}
	case e.State == ledger.Rejected:
		fmt.Fprintf(&b, "%s was NOT imported. Nothing was sent to Zuora.\n\n", name)
		switch {
		case listed == 0:
			fmt.Fprintf(&b, "%d problem(s) were found, but their list was lost; run usagedrop check on the file to see them again.\n", e.Problems)
		// The errors file is named for where the file lands, which the
		// source picks (a name already taken, or too long, gets another):
		// point at it by its place, not its name.
		case listed >= e.Problems:
			fmt.Fprintf(&b, "%d problem(s) were found; each is listed in the %s file beside this one, with its line, column, value and reason.\n",
				e.Problems, errorsSuffix)
		default:
			fmt.Fprintf(&b, "%d problems were found; the first %d are listed in the %s file beside this one, with their line, column, value and reason.\n",
				e.Problems, listed, errorsSuffix)
		}
		b.WriteString("Fix them and drop the whole file again: Zuora imports a file whole or not at all.\n")
		b.WriteString(excerpt)
	case partly != "":
		// The object API has no atomicity: say exactly what is in Zuora.
		fmt.Fprintf(&b, "%s was only PARTLY imported into Zuora: the object API creates records one at a time, and it stopped.\n\n", name)
		fmt.Fprintf(&b, "Reason: %s\n\n", ledgerText(orUnknown(e.LastError), 4*noteMax))
		b.WriteString(partly)
		b.WriteString(p.adoptedText(e))
		// Whole: records are known by their content and by how many
		// identical ones come before them in the file, so a file cut
		// down to the rest could be taken for the records already sent.
		b.WriteString("\nFix what was refused and drop the whole file again: usagedrop remembers the records already in Zuora " +
			"and sends only the others.\n")
	case e.State == ledger.Failed:
		fmt.Fprintf(&b, "%s was NOT imported.\n\n", name)
		fmt.Fprintf(&b, "Reason: %s\n\n", ledgerText(orUnknown(e.LastError), 4*noteMax))
		b.WriteString(p.partsSummary(e))
	case e.State == ledger.Duplicate:
		fmt.Fprintf(&b, "%s was NOT imported again: the same content was already taken", name)
		if prev, err := p.opt.Ledger.Get(e.DuplicateOf); err == nil {
			fmt.Fprintf(&b, " as %s from %s on %s", safetext.Line(prev.Name, noteMax), safetext.Line(prev.Source, noteMax), when(prev.Created))
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
	body := safetext.Clip(b.String(), statusTextMax-512)
	return body + fmt.Sprintf("\nDropped: %s\nFinished: %s\nReference: %s (sha256 %s)\n", when(e.Created), when(time.Now()), e.ID, e.SHA256)
}

func (p *Pipeline) partsSummary(e *ledger.Entry) string {
	if len(e.Parts) == 0 {
		return "Nothing was sent to Zuora.\n"
	}
	var b strings.Builder
	imported := 0
	for _, pt := range e.Parts {
		if pt.State == ledger.PartCompleted {
			imported++
		}
	}
	if len(e.Parts) == 1 || imported == 0 {
		b.WriteString("Nothing from this file was imported (Zuora imports a file whole or not at all).\n")
		return b.String()
	}
	fmt.Fprintf(&b, "The file was sent in %d parts; %d of them WERE imported and must not be sent again:\n", len(e.Parts), imported)
	for _, pt := range e.Parts {
		fmt.Fprintf(&b, "  %s: %d records, %s %s\n", safetext.Line(pt.Name, noteMax), pt.Records, safetext.Line(orUnknown(pt.ZuoraStatus), noteMax), pt.ImportID)
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
				prev.Created.UTC().Format("2006-01-02 15:04 UTC"), prev.ID)
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
