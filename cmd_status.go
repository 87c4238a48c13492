package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"usagedrop/internal/safetext"
	"usagedrop/ledger"
)

// runStatus prints the drops the flags select, one line each, or one
// drop with its whole history. While a daemon holds the ledger it asks
// the daemon's API instead, with the config's http_auth. Names and
// errors are shown as dropView shows them: escaped to one line, clipped.
func runStatus(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("status", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "Usage of status: usagedrop status [flags] [NAME|ID]\n\n"+
			"With no NAME or ID, one line per drop; with one, that drop with its whole history and times.\n\n")
		flags.PrintDefaults()
	}
	cfgPath := flags.String("config", "", "config file (default: the embedded default)")
	asJSON := flags.Bool("json", false, "one JSON object per line")
	source := flags.String("source", "", "only drops of this source")
	state := flags.String("state", "", "only drops in these states, comma-separated: "+strings.Join(stateNames(), ", "))
	since := flags.String("since", "", "only drops seen since: a duration (24h, 7d) or a date (2026-11-01, 2026-11-01T14:00)")
	rest, err := parseArgs(flags, args, stdout)
	if err != nil || len(rest) > 1 {
		return cmp.Or(err, errUsage)
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
	}
	if len(rest) == 1 {
		entries, err := findDrops(ctx, led, d, rest[0])
		if err != nil {
			return err
		}
		return printDrops(stdout, entries, *asJSON)
	}
	var entries []*ledger.Entry
	add := func(e *ledger.Entry) bool { entries = append(entries, e); return true }
	if led != nil {
		err = led.List(func(e *ledger.Entry) bool {
			if f.match(e) {
				add(dropView(e, false))
			}
			return true
		})
	} else {
		err = d.entries(ctx, f, false, add)
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
	fmt.Fprintln(tw, "ID\tSOURCE\tNAME\tSTATE\tIMPORTS\tATTEMPTS\tSHA256\tLAST ERROR")
	for _, e := range entries {
		sha := e.SHA256
		if len(sha) > 12 {
			sha = sha[:12]
		}
		src := e.Source
		if e.Owner != "" {
			// A fleet's ledger: which instance holds the drop.
			src += "@" + e.Owner
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, src, e.Name, describe(e),
			dash(strings.Join(e.ImportIDs(), ",")), e.Attempts, dash(sha), dash(safetext.Clip(e.LastError, 200)))
	}
	return tw.Flush()
}

// findDrops returns the drop with id ref, or every drop named ref (as
// dropped, or as finished when a name collision renamed it), with their
// history, oldest first.
func findDrops(ctx context.Context, led ledger.Store, d *daemonAPI, ref string) ([]*ledger.Entry, error) {
	var out []*ledger.Entry
	if led != nil {
		e, err := led.Get(ref)
		if err == nil {
			return []*ledger.Entry{dropView(e, true)}, nil
		}
		if !errors.Is(err, ledger.ErrNotFound) {
			return nil, err
		}
		f := dropFilter{Name: ref}
		err = led.List(func(e *ledger.Entry) bool {
			if f.match(e) {
				out = append(out, dropView(e, true))
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	} else {
		var e ledger.Entry
		err := d.call(ctx, http.MethodGet, "/v1/drops/"+url.PathEscape(ref), nil, &e)
		if err == nil {
			return []*ledger.Entry{&e}, nil
		}
		if !errors.Is(err, ledger.ErrNotFound) {
			return nil, err
		}
		err = d.entries(ctx, dropFilter{Name: ref}, true, func(e *ledger.Entry) bool { out = append(out, e); return true })
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no drop has the id or name %q", safetext.Name(ref))
	}
	return out, nil
}

// printDrops writes each drop with its history, in the local time zone.
func printDrops(w io.Writer, entries []*ledger.Entry, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	for i, e := range entries {
		if i > 0 {
			fmt.Fprintln(w)
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "%s\t%s\n", k, v)
			}
		}
		row("drop", e.ID)
		row("source", e.Source)
		row("instance", e.Owner) // a fleet's: who holds the drop
		row("name", e.Name)
		row("state", describe(e))
		row("file", cmp.Or(e.FinalKey, e.Key))
		row("size", fmt.Sprintf("%d bytes", e.Size))
		row("sha256", e.SHA256)
		if e.Records > 0 || e.Problems > 0 {
			row("records", fmt.Sprintf("%d (problems: %d)", e.Records, e.Problems))
		}
		for _, p := range e.Parts {
			s := fmt.Sprintf("%s  %s", p.Name, p.State)
			if p.ImportID != "" {
				s += "  import " + p.ImportID
			}
			if p.Message != "" {
				s += "  " + safetext.Clip(p.Message, 200)
			}
			row(fmt.Sprintf("part %d", p.Index+1), s)
		}
		if e.Generation > 0 {
			row("generation", strconv.Itoa(e.Generation))
		}
		if e.Requeued > 0 {
			row("sent again", fmt.Sprintf("%d time(s), by an operator", e.Requeued))
		}
		if e.DuplicateOf != "" {
			row("duplicate of", e.DuplicateOf)
		}
		if !e.Forgotten.IsZero() {
			row("forgotten", when(e.Forgotten)+": the same bytes may be dropped again")
		}
		row("dropped", when(e.Created))
		row("updated", when(e.Updated))
		if e.Attempts > 0 {
			row("attempts", strconv.Itoa(e.Attempts))
		}
		if !e.NextTry.IsZero() && !e.Finished {
			row("next try", when(e.NextTry))
		}
		row("last error", e.LastError)
		for _, warn := range e.Warnings {
			row("warning", warn)
		}
		fmt.Fprintln(tw, "history\t")
		if err := tw.Flush(); err != nil {
			return err
		}
		for j, h := range e.History {
			if j == 8 && e.Folded > 0 {
				fmt.Fprintf(w, "  … %d events left out\n", e.Folded)
			}
			fmt.Fprintf(w, "  %s  %-10s  %s\n", when(h.At), h.State, h.Note)
		}
	}
	return nil
}

// when is t in the local time zone, to the second, with its zone.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// describe is where e stands in plain words, times in the local zone
// (the operator's terminal).
func describe(e *ledger.Entry) string {
	s := e.Describe(time.Local)
	if !e.Forgotten.IsZero() {
		s += " (forgotten: the same bytes may be dropped again)"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dropFilter selects drops for status and export.
type dropFilter struct {
	Source string
	States []string // plain names, see states
	Since  time.Time
	Name   string
}

// states are the names -state takes, each with the drops it selects.
var states = map[string]func(e *ledger.Entry) bool{
	"imported":  func(e *ledger.Entry) bool { return e.State == ledger.Done },
	"done":      func(e *ledger.Entry) bool { return e.State == ledger.Done },
	"rejected":  func(e *ledger.Entry) bool { return e.State == ledger.Rejected },
	"failed":    func(e *ledger.Entry) bool { return e.State == ledger.Failed },
	"duplicate": func(e *ledger.Entry) bool { return e.State == ledger.Duplicate },
	"vanished":  func(e *ledger.Entry) bool { return e.State == ledger.Vanished },
	"waiting":   func(e *ledger.Entry) bool { return !e.Finished && e.WaitingFor != "" },
	"working":   func(e *ledger.Entry) bool { return !e.Finished },
	"forgotten": func(e *ledger.Entry) bool { return !e.Forgotten.IsZero() },
	// The pipeline's own names for a drop in progress.
	"discovered": func(e *ledger.Entry) bool { return e.State == ledger.Discovered },
	"claimed":    func(e *ledger.Entry) bool { return e.State == ledger.Claimed },
	"fetched":    func(e *ledger.Entry) bool { return e.State == ledger.Fetched },
	"converted":  func(e *ledger.Entry) bool { return e.State == ledger.Converted },
	"uploading":  func(e *ledger.Entry) bool { return e.State == ledger.Uploading },
}

func stateNames() []string {
	return []string{"imported (or done)", "rejected", "failed", "waiting", "working", "duplicate", "vanished", "forgotten"}
}

// newFilter makes a filter from the flags' text; since is relative to
// now.
func newFilter(source, state, since string, now time.Time) (dropFilter, error) {
	f := dropFilter{Source: source}
	for _, s := range strings.Split(state, ",") {
		if s = strings.ToLower(strings.TrimSpace(s)); s == "" {
			continue
		}
		if states[s] == nil {
			return f, fmt.Errorf("-state %q: not a state; use %s", safetext.Name(s), strings.Join(stateNames(), ", "))
		}
		f.States = append(f.States, s)
	}
	if since != "" {
		t, err := parseSince(since, now)
		if err != nil {
			return f, err
		}
		f.Since = t
	}
	return f, nil
}

// parseSince reads a duration back from now (90m, 24h, 7d) or a date,
// with or without a time, in the local time zone unless it names one.
func parseSince(s string, now time.Time) (time.Time, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 {
			return now.AddDate(0, 0, -d), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("-since %q: give a duration (24h, 7d) or a date (2026-11-01, 2026-11-01T14:00)", safetext.Name(s))
}

// match reports whether the filter selects e, a drop as the ledger
// holds it (names as their raw bytes).
func (f dropFilter) match(e *ledger.Entry) bool {
	if f.Source != "" && e.Source != f.Source {
		return false
	}
	if !f.Since.IsZero() && e.Created.Before(f.Since) {
		return false
	}
	if f.Name != "" && e.Name != f.Name && (e.FinalKey == "" || path.Base(e.FinalKey) != f.Name) {
		return false
	}
	return len(f.States) == 0 || slices.ContainsFunc(f.States, func(s string) bool { return states[s](e) })
}

// after is the ledger id to list after: ids start with their time, so
// the drops seen since Since come after it.
func (f dropFilter) after() string {
	if f.Since.IsZero() {
		return ""
	}
	return f.Since.UTC().Format("20060102T150405.000000000Z")
}

// query is f as the daemon's export takes it.
func (f dropFilter) query() url.Values {
	q := url.Values{}
	if f.Source != "" {
		q.Set("source", f.Source)
	}
	if len(f.States) > 0 {
		q.Set("state", strings.Join(f.States, ","))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	return q
}

// filterFromQuery reads a filter back from query.
func filterFromQuery(q url.Values) (dropFilter, error) {
	f, err := newFilter(q.Get("source"), q.Get("state"), "", time.Time{})
	if err != nil {
		return f, err
	}
	if s := q.Get("since"); s != "" {
		if f.Since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return f, fmt.Errorf("since must be an RFC 3339 time (got %q)", safetext.Name(s))
		}
	}
	f.Name = q.Get("name")
	return f, nil
}
