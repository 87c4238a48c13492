package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"usagedrop/convert"
	"usagedrop/internal/safetext"
	"usagedrop/ledger"
	"usagedrop/pipeline"
	"usagedrop/zuorasim"
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

// runStatus prints the ledger. While a daemon holds the ledger it asks the
// daemon's status endpoint instead, with the config's http_auth. Names and
// errors are shown as dropView shows them: escaped to one line, clipped.
func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("status", flag.ContinueOnError)
	cfgPath := flags.String("config", "", "config file (default: the embedded default)")
	asJSON := flags.Bool("json", false, "one JSON object per line")
	if rest, err := parseArgs(flags, args, stdout); err != nil || len(rest) > 0 {
		return cmp.Or(err, errUsage)
	}
	cfg, err := loadConfig(*cfgPath, nil)
	if err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Ledger); errors.Is(err, fs.ErrNotExist) {
		// Opening would create it; say so instead.
		return fmt.Errorf("no ledger at %s: this daemon has seen no files yet (or -config names another)", cfg.Ledger)
	}
	var entries []*ledger.Entry
	led, err := ledger.Open(cfg.Ledger, ledger.Options{Timeout: 300 * time.Millisecond})
	switch {
	case err == nil:
		err = led.List(func(e *ledger.Entry) bool { entries = append(entries, dropView(e, false)); return true })
		led.Close()
	case errors.Is(err, ledger.ErrLocked) && cfg.HTTP != "off":
		entries, err = fetchDrops(ctx, cfg.HTTP, cfg.HTTPAuth)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tNAME\tSTATE\tIMPORTS\tZUORA\tATTEMPTS\tSHA256\tLAST ERROR")
	for _, e := range entries {
		var ids, zs []string
		for _, p := range e.Parts {
			if p.ImportID != "" {
				ids = append(ids, p.ImportID)
			}
			if p.ZuoraStatus != "" {
				zs = append(zs, p.ZuoraStatus)
			}
		}
		sha := e.SHA256
		if len(sha) > 12 {
			sha = sha[:12]
		}
		state := string(e.State)
		if !e.Finished && e.State.Outcome() {
			state += " (finishing)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Source, e.Name, state,
			dash(strings.Join(ids, ",")), dash(strings.Join(zs, ",")), e.Attempts, dash(sha), dash(safetext.Clip(e.LastError, 200)))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runSim serves the Zuora simulator until interrupted.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8320", "address to listen on")
	accounts := fs.String("accounts", "", "comma-separated account numbers to accept (default: any)")
	uoms := fs.String("uoms", "", "comma-separated units of measure to accept (default: any)")
	dateFormat := fs.String("date-format", "MM/DD/YYYY", "the API user's date format")
	if rest, err := parseArgs(fs, args, stdout); err != nil || len(rest) > 0 {
		return cmp.Or(err, errUsage)
	}
	log := newLogger(stderr)
	sim := zuorasim.New(zuorasim.Options{
		Accounts: splitList(*accounts), UOMs: splitList(*uoms), DateFormat: *dateFormat, Logger: log,
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("zuora simulator listening", "url", "http://"+ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
