package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"usagedrop/convert"
	"usagedrop/internal/safetext"
	"usagedrop/pipeline"
)

// runCheck converts and validates files offline. It reports whether any
// file would be rejected.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) (rejected bool, err error) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file, for -source")
	source := fs.String("source", "", "apply this source's reading settings (date_format, columns, ...)")
	out := fs.String("o", "", "write the template CSV Zuora would receive to this file (one input only)")
	asJSON := fs.Bool("json", false, "one JSON object per file: verdict, records, problems, and every table's row accounting")
	files, err := parseArgs(fs, args, stdout)
	if err != nil || len(files) == 0 {
		return false, cmp.Or(err, errUsage)
	}
	if *out != "" && len(files) != 1 {
		return false, fmt.Errorf("-o takes one input file, got %d", len(files))
	}
	var opt convert.Options
	tmpl := convert.Template{}
	if *source != "" || *cfgPath != "" {
		cfg, err := loadConfig(*cfgPath, nil)
		if err != nil {
			return false, err
		}
		tmpl = pipeline.Template(cfg.Zuora)
		opt.Caps = convert.Caps(cfg.Limits)
		found := *source == ""
		for _, s := range cfg.Sources {
			if s.Name == *source {
				opt, found = pipeline.ReadOptions(s), true
				opt.Caps = convert.Caps(cfg.Limits)
			}
		}
		if !found {
			return false, fmt.Errorf("-source %q: no such source in the config", *source)
		}
	}
	for _, name := range files {
		bad, err := checkFile(ctx, name, opt, tmpl, *out, *asJSON, stdout)
		if err != nil {
			return false, err
		}
		rejected = rejected || bad
	}
	return rejected, nil
}

// checkResult is one file's verdict in `check -json`; the hostile corpus
// test reads it to hold every file to the row accounting. Rows sums the
// tables' counts; Unbalanced lists any table whose counts do not add up,
// so a drop of a thousand members still answers in one short line.
type checkResult struct {
	File       string             `json:"file"`
	Verdict    string             `json:"verdict"` // "accept" or "reject"
	Records    int                `json:"records"`
	Problems   int                `json:"problems"`
	First      string             `json:"first_problem,omitempty"`
	Tables     int                `json:"tables"`
	Rows       convert.RowCount   `json:"rows"`
	Unbalanced []convert.RowCount `json:"unbalanced,omitempty"`
}

func checkFile(ctx context.Context, name string, opt convert.Options, t convert.Template, out string, asJSON bool, stdout io.Writer) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	w := io.Discard
	var tmp *os.File
	if out != "" {
		if tmp, err = os.CreateTemp(filepath.Dir(out), ".usagedrop-check-*"); err != nil {
			return false, err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	sum, err := convert.WriteTemplate(ctx, filepath.Base(name), f, fi.Size(), opt, t, w)
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	if asJSON {
		res := checkResult{File: name, Verdict: "accept", Records: sum.Records, Problems: sum.TotalProblems(), Tables: len(sum.Rows)}
		for _, rc := range sum.Rows {
			res.Rows.In, res.Rows.Out = res.Rows.In+rc.In, res.Rows.Out+rc.Out
			res.Rows.Reported, res.Rows.Skipped = res.Rows.Reported+rc.Reported, res.Rows.Skipped+rc.Skipped
			if !rc.Balanced() {
				res.Unbalanced = append(res.Unbalanced, rc)
			}
		}
		if sum.Rejected() {
			res.Verdict, res.First = "reject", checkLine(name, sum.Problems[0])
		}
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return false, err
		}
	} else {
		printCheck(stdout, name, sum)
	}
	if sum.Rejected() {
		return true, nil
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return false, err
		}
		if err := os.Rename(tmp.Name(), out); err != nil {
			return false, err
		}
	}
	return false, nil
}

// printCheck writes a file's problems and verdict, one line each, then
// the settings the problems point at: whoever runs check may be the
// operator who can change them.
func printCheck(stdout io.Writer, name string, sum convert.Summary) {
	var hints []string
	for _, pr := range sum.Problems {
		fmt.Fprintln(stdout, checkLine(name, pr))
		if pr.Hint != "" && !slices.Contains(hints, pr.Hint) && len(hints) < 5 {
			hints = append(hints, pr.Hint)
		}
	}
	total := sum.TotalProblems()
	if sum.MoreProblems > 0 {
		fmt.Fprintf(stdout, "%s: the first %d of %d problems are listed above\n", name, len(sum.Problems), total)
	}
	for _, h := range hints {
		fmt.Fprintf(stdout, "%s: for the administrator: %s\n", name, h)
	}
	if len(sum.Ignored) > 0 {
		more := ""
		if sum.MoreIgnored > 0 {
			more = fmt.Sprintf(" and %d more", sum.MoreIgnored)
		}
		fmt.Fprintf(stdout, "%s: note: columns not sent to Zuora: %s%s\n", name, safetext.Name(strings.Join(sum.Ignored, ", ")), more)
	}
	switch {
	case total == 1:
		fmt.Fprintf(stdout, "%s: REJECTED: 1 problem needs fixing; nothing would be sent\n", name)
	case total > 1:
		fmt.Fprintf(stdout, "%s: REJECTED: %d problems need fixing; nothing would be sent\n", name, total)
	default:
		fmt.Fprintf(stdout, "%s: ok: %d records\n", name, sum.Records)
	}
}

// checkLine is `file:line: Column (COLUMN): reason (got "value")`, the
// shape editors and grep understand. The names the file gives are
// escaped: a terminal shows them, never runs them.
func checkLine(name string, pr convert.Problem) string {
	var b strings.Builder
	b.WriteString(name)
	if pr.Member != "" {
		b.WriteString("!" + safetext.Name(pr.Member))
	}
	if pr.Sheet != "" {
		b.WriteString("[" + safetext.Name(pr.Sheet) + "]")
	}
	if pr.Line > 0 {
		fmt.Fprintf(&b, ":%d", pr.Line)
	}
	b.WriteString(": ")
	if c := pr.ColumnName(); c != "" {
		b.WriteString(safetext.Name(c) + ": ")
	}
	b.WriteString(pr.Reason) // quotes what it cites with %q
	if pr.Line > 0 {
		fmt.Fprintf(&b, " (got %q)", pr.Value)
	}
	return b.String()
}
