package pipeline

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"usagedrop/convert"
	"usagedrop/ledger"
	"usagedrop/sources"
)

// Report suffixes, appended to the file's final name.
const (
	statusSuffix = ".status.txt"
	errorsSuffix = ".errors.csv"
)

// writeErrorsCSV keeps a rejected file's problems in the spool until the
// file is finished: the ledger holds only their count.
func writeErrorsCSV(dst string, s convert.Summary) error {
	return writeAtomic(dst, func(w io.Writer) error { return errorsCSV(w, s) })
}

// errorsCSV writes the problems of s as the CSV a finance user opens next
// to the rejected file: one row per problem, in file order.
func errorsCSV(w io.Writer, s convert.Summary) error {
	// A BOM, so that Excel opens the UTF-8 file as UTF-8.
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	_ = cw.Write([]string{"file", "sheet", "line", "column", "value", "reason"})
	for _, pr := range s.Problems {
		line := ""
		if pr.Line > 0 {
			line = fmt.Sprint(pr.Line)
		}
		_ = cw.Write([]string{pr.Member, pr.Sheet, line, pr.Column, pr.Value, pr.Reason})
	}
	if s.MoreProblems > 0 {
		_ = cw.Write([]string{"", "", "", "", "", fmt.Sprintf("... and %d more problems not listed", s.MoreProblems)})
	}
	cw.Flush()
	return cw.Error()
}

// describe is one problem in the words of `usagedrop check`:
// `line 8: UOM: The UOM is missing (got "")`.
func describe(pr convert.Problem) string {
	var b strings.Builder
	if pr.Member != "" {
		b.WriteString(pr.Member + ": ")
	}
	if pr.Sheet != "" {
		b.WriteString("sheet " + pr.Sheet + ": ")
	}
	if pr.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", pr.Line)
	}
	if pr.Column != "" {
		b.WriteString(pr.Column + ": ")
	}
	b.WriteString(pr.Reason)
	if pr.Line > 0 || pr.Value != "" {
		fmt.Fprintf(&b, " (got %q)", pr.Value)
	}
	return b.String()
}

func rejectNote(s convert.Summary) string {
	n := len(s.Problems) + s.MoreProblems
	if n == 1 {
		return "rejected: " + describe(s.Problems[0])
	}
	return fmt.Sprintf("rejected: %d problems, first: %s", n, describe(s.Problems[0]))
}

func ignoredWarning(cols []string) []string {
	if len(cols) == 0 {
		return nil
	}
	return []string{"columns not sent to Zuora: " + strings.Join(cols, ", ")}
}

// reports builds the files written beside a finished drop.
func (p *Pipeline) reports(e *ledger.Entry) ([]sources.Report, error) {
	if e.State != ledger.Rejected {
		return []sources.Report{{Suffix: statusSuffix, Body: []byte(p.statusText(e, ""))}}, nil
	}
	body, err := os.ReadFile(filepath.Join(p.spoolDir(e), "errors.csv"))
	if errors.Is(err, fs.ErrNotExist) {
		body = []byte("the list of problems was lost; run usagedrop check on the file to see them again\r\n")
	} else if err != nil {
		return nil, err
	}
	return []sources.Report{
		{Suffix: statusSuffix, Body: []byte(p.statusText(e, firstProblems(body, 10)))},
		{Suffix: errorsSuffix, Body: body},
	}, nil
}

// firstProblems quotes the first n rows of an errors CSV in plain words, so
// the status file alone tells the user what to fix.
func firstProblems(errorsCSV []byte, n int) string {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(errorsCSV), "\ufeff")))
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nThe first problems:\n")
	for i, row := range rows[1:] {
		if i == n {
			fmt.Fprintf(&b, "  ... see the .errors.csv file for the other %d\n", len(rows)-1-n)
			break
		}
		if len(row) < 6 {
			continue
		}
		where := strings.TrimSpace(strings.Join([]string{row[0], row[1]}, " "))
		if where != "" {
			where += ", "
		}
		switch {
		case row[2] != "":
			fmt.Fprintf(&b, "  %sline %s, column %s: %s (value %q)\n", where, row[2], row[3], row[5], row[4])
		default:
			fmt.Fprintf(&b, "  %s%s\n", where, row[5])
		}
	}
	return b.String()
}

// statusText says in plain words what happened to a file, for the person
// who dropped it.
func (p *Pipeline) statusText(e *ledger.Entry, problems string) string {
	var b strings.Builder
	when := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
	switch e.State {
	case ledger.Done:
		fmt.Fprintf(&b, "%s was imported into Zuora.\n\n%d usage records were imported", e.Name, e.Records)
		if len(e.Parts) == 1 {
			fmt.Fprintf(&b, " as import %s.\n", e.Parts[0].ImportID)
		} else {
			fmt.Fprintf(&b, " in %d imports (the file was too large for one):\n", len(e.Parts))
			for _, pt := range e.Parts {
				fmt.Fprintf(&b, "  %s: %d records, import %s\n", pt.Name, pt.Records, pt.ImportID)
			}
		}
	case ledger.Rejected:
		fmt.Fprintf(&b, "%s was NOT imported. Nothing was sent to Zuora.\n\n", e.Name)
		fmt.Fprintf(&b, "%d problem(s) were found; each is listed in %s%s with its line, column, value and reason.\n",
			e.Problems, e.Name, errorsSuffix)
		b.WriteString("Fix them and drop the whole file again: Zuora imports a file whole or not at all.\n")
		b.WriteString(problems)
	case ledger.Failed:
		fmt.Fprintf(&b, "%s was NOT imported.\n\n", e.Name)
		fmt.Fprintf(&b, "Reason: %s\n\n", orUnknown(e.LastError))
		b.WriteString(p.partsSummary(e))
	case ledger.Duplicate:
		fmt.Fprintf(&b, "%s was NOT imported again: the same content was already taken", e.Name)
		if prev, err := p.opt.Ledger.Get(e.DuplicateOf); err == nil {
			fmt.Fprintf(&b, " as %s from %s on %s", prev.Name, prev.Source, when(prev.Created))
			if ids := importIDs(prev); ids != "" {
				fmt.Fprintf(&b, " and imported as %s", ids)
			}
		}
		b.WriteString(".\nNothing was sent to Zuora. If this usage really happened twice, change the file (e.g. its descriptions) and drop it again.\n")
	}
	for _, w := range e.Warnings {
		fmt.Fprintf(&b, "\nNote: %s.\n", w)
	}
	fmt.Fprintf(&b, "\nDropped: %s\nFinished: %s\nReference: %s (sha256 %s)\n", when(e.Created), when(time.Now()), e.ID, e.SHA256)
	return b.String()
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
		fmt.Fprintf(&b, "  %s: %d records, %s %s\n", pt.Name, pt.Records, orUnknown(pt.ZuoraStatus), pt.ImportID)
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
