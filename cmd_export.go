package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"usagedrop/internal/safetext"
	"usagedrop/ledger"
)

// exportBatch is how many drops export reads in one ledger transaction:
// the most it holds in memory, whatever the ledger's size.
const exportBatch = 200

// runExport writes every drop the flags select to stdout, as JSON lines
// (each a drop with its history) or CSV (one row a drop), streamed from
// the ledger or from a running daemon's export.
func runExport(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("export", flag.ContinueOnError)
	cfgPath := flags.String("config", "", "config file (default: the embedded default)")
	format := flags.String("format", "jsonl", "jsonl (one drop with its history a line) or csv (one drop a row)")
	source := flags.String("source", "", "only drops of this source")
	state := flags.String("state", "", "only drops in these states, comma-separated: "+strings.Join(stateNames(), ", "))
	since := flags.String("since", "", "only drops seen since: a duration (24h, 7d) or a date (2026-11-01)")
	if rest, err := parseArgs(flags, args, stdout); err != nil || len(rest) > 0 {
		return cmp.Or(err, errUsage)
	}
	if _, err := exportType(*format); err != nil {
		return err
	}
	f, err := newFilter(*source, *state, *since, time.Now())
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, nil)
	if err != nil {
		return err
	}
	led, d, err := openLedger(cfg)
	if err != nil {
		return err
	}
	if led != nil {
		defer led.Close()
		return exportDrops(stdout, led, f, *format, true, nil)
	}
	q := f.query()
	q.Set("format", *format)
	body, err := d.do(ctx, http.MethodGet, "/v1/export", q)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(stdout, body); err != nil {
		return fmt.Errorf("export from the daemon cut short: %w", err)
	}
	return nil
}

// exportType is the content type of an export format.
func exportType(format string) (string, error) {
	switch format {
	case "", "jsonl":
		return "application/jsonl; charset=utf-8", nil
	case "csv":
		return "text/csv; charset=utf-8", nil
	}
	return "", fmt.Errorf("-format %q: use jsonl or csv", safetext.Name(format))
}

// exportDrops writes the drops f selects to w in format, reading the
// ledger exportBatch drops a transaction: no transaction stays open while
// w is written, and memory holds one batch. flush, if set, is called
// after each batch.
func exportDrops(w io.Writer, led ledger.Store, f dropFilter, format string, history bool, flush func() error) error {
	write, done := exportJSONL(w)
	if format == "csv" {
		write, done = exportCSV(w)
	}
	after := f.after()
	for {
		batch := make([]*ledger.Entry, 0, exportBatch)
		err := led.ListAfter(after, func(e *ledger.Entry) bool {
			batch = append(batch, e)
			return len(batch) < exportBatch
		})
		if err != nil {
			return err
		}
		for _, e := range batch {
			if !f.match(e) {
				continue
			}
			if err := write(dropView(e, history)); err != nil {
				return err
			}
		}
		if err := done(); err != nil {
			return err
		}
		if flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(batch) < exportBatch {
			return nil
		}
		after = batch[len(batch)-1].ID
	}
}

func exportJSONL(w io.Writer) (write func(*ledger.Entry) error, done func() error) {
	enc := json.NewEncoder(w)
	return func(e *ledger.Entry) error { return enc.Encode(e) }, func() error { return nil }
}

// exportColumns are the CSV export's columns, one row a drop.
var exportColumns = []string{"id", "source", "name", "state", "status", "created", "updated", "file", "size", "sha256",
	"records", "problems", "imported", "import_ids", "zuora_status", "attempts", "generation", "sent_again",
	"duplicate_of", "forgotten", "last_error"}

// exportCSV writes drops as CSV rows, every cell through safetext.Cell:
// a name or an error from a drop could otherwise be a formula in the
// spreadsheet an operator opens it in.
func exportCSV(w io.Writer) (write func(*ledger.Entry) error, done func() error) {
	cw := csv.NewWriter(w)
	header := false
	write = func(e *ledger.Entry) error {
		if !header {
			header = true
			if err := cw.Write(exportColumns); err != nil {
				return err
			}
		}
		imported := 0
		var zs []string
		for _, p := range e.Parts {
			imported += p.Imported
			if p.ZuoraStatus != "" {
				zs = append(zs, p.ZuoraStatus)
			}
		}
		row := []string{e.ID, e.Source, e.Name, string(e.State), describe(e), stamp(e.Created), stamp(e.Updated),
			cmp.Or(e.FinalKey, e.Key), strconv.FormatInt(e.Size, 10), e.SHA256,
			strconv.Itoa(e.Records), strconv.Itoa(e.Problems), strconv.Itoa(imported),
			strings.Join(e.ImportIDs(), " "), strings.Join(zs, " "), strconv.Itoa(e.Attempts),
			strconv.Itoa(e.Generation), strconv.Itoa(e.Requeued), e.DuplicateOf, stamp(e.Forgotten), e.LastError}
		for i := range row {
			row[i] = safetext.Cell(row[i])
		}
		return cw.Write(row)
	}
	done = func() error {
		if !header {
			// An empty export still says what its columns are.
			header = true
			cw.Write(exportColumns)
		}
		cw.Flush()
		return cw.Error()
	}
	return write, done
}

// stamp is t in RFC 3339, UTC, or "" for no time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
