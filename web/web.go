// Package web serves the status page: what became of every dropped file,
// in plain words, for the finance users who drop them and the operators
// who run the daemon.
//
// It is server-rendered with html/template from templates and a style
// sheet embedded in the binary: no build step, no JavaScript, readable on
// a phone, refreshing itself every 30 seconds. Every text that came from a
// drop (a name, an error, a note from Zuora) is escaped to one printable
// line with safetext before the template escapes it for HTML. Every page
// is bounded whatever the ledger holds: a list shows at most PageSize
// drops and looks through at most ScanMax to find them, a drop's page at
// most HistoryMax events.
//
// Routes, registered on the caller's mux so they share its auth:
//
//	GET /                       recent drops, newest first, with filters
//	GET /drops/{id}             one drop with its whole history
//	GET /drops/{id}/status.txt  the report written beside the file
//	GET /drops/{id}/errors.csv  the list of problems of a rejected file
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"usagedrop/internal/safetext"
	"usagedrop/ledger"
)

// Caps of the page.
const (
	// PageSize is how many drops one page lists when Options leaves it
	// zero, and PageMax the most it may list.
	PageSize = 50
	PageMax  = 500
	// ScanMax is how many drops one list looks through for those its
	// filters match; past it, the page ends with a link to go on.
	ScanMax = 5000
	// HistoryMax is how many events a drop's page shows: the first and
	// the latest, the others counted.
	HistoryMax = 200
	// textMax caps each text shown (a name, an error, a note).
	textMax = 4 << 10
	// refresh is how often a page reloads itself, in seconds.
	refresh = 30
)

// Report kinds, as the pipeline names them (pipeline.ReportStatus and
// pipeline.ReportErrors) and as they end the report's address.
const (
	reportStatus = "status.txt"
	reportErrors = "errors.csv"
)

// Options configure the page.
type Options struct {
	// Ledger is read, never written.
	Ledger ledger.Store
	// Sources returns the configured sources' names, in config order
	// (a reload may change them); each gets a line at the top, and the
	// source filter offers them. Nil lists only sources with drops.
	Sources func() []string
	// Stopped returns the sources stopped for an operator, with why.
	Stopped func() map[string]error
	// Report reads back a finished drop's report of a kind ("status.txt",
	// "errors.csv") from its source: pipeline.(*Pipeline).ReadReport. It
	// returns an error satisfying errors.Is(err, fs.ErrNotExist) or
	// pipeline.ErrNoReport when there is none. Nil: reports are not
	// offered.
	Report func(ctx context.Context, e *ledger.Entry, kind string) ([]byte, error)
	// NoReport is the error Report returns for a drop without that
	// report (pipeline.ErrNoReport); such answers are 404, not 500.
	NoReport error
	// Location is the time zone times are shown in; nil means UTC.
	Location *time.Location
	// PageSize is how many drops a list shows; zero means PageSize.
	PageSize int
	Logger   *slog.Logger
}

//go:embed templates/*.html style.css
var files embed.FS

// Register adds the page's routes to mux. The caller puts mux behind the
// same auth as its API.
func Register(mux *http.ServeMux, opt Options) {
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.PageSize <= 0 {
		opt.PageSize = PageSize
	}
	opt.PageSize = min(opt.PageSize, PageMax)
	if opt.Stopped == nil {
		opt.Stopped = func() map[string]error { return nil }
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{opt: opt, tmpl: parse(opt.Location), csp: policy()}
	mux.HandleFunc("GET /{$}", s.list)
	mux.HandleFunc("GET /drops/{id}", s.drop)
	mux.HandleFunc("GET /drops/{id}/{report}", s.report)
}

type server struct {
	opt  Options
	tmpl *template.Template
	csp  string // the Content-Security-Policy of every answer
}

// parse reads the embedded templates once; a template that does not
// parse is a bug caught by every test, so it panics.
func parse(loc *time.Location) *template.Template {
	css, err := fs.ReadFile(files, "style.css")
	if err != nil {
		panic(err)
	}
	funcs := template.FuncMap{
		"name":        func(s string) string { return safetext.Line(s, textMax) },
		"text":        func(s string) string { return safetext.Line(s, textMax) },
		"describe":    func(e *ledger.Entry) string { return e.Describe(loc) },
		"when":        func(t time.Time) string { return when(t, loc) },
		"css":         func() template.CSS { return template.CSS(css) },
		"thousands":   ledger.Thousands,
		"thousands64": func(n int64) string { return ledger.Thousands(int(n)) },
		"short":       func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04") },
		"inc":         func(i int) int { return i + 1 },
		"refresh":     func() int { return refresh },
		"kind":        kind,
		"reports":     reports,
		"base":        func(s string) string { return path.Base(s) },
	}
	return template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))
}

// when is t in loc to the second, with its zone: history is read to the
// second, and the zone says which clock.
func when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2006-01-02 15:04:05 MST")
}

// kind names the drop's state for the page's colours: one class per state
// group, never shown as text.
func kind(e *ledger.Entry) string {
	switch {
	case e.State == ledger.Done:
		return "ok"
	case e.State == ledger.Rejected, e.State == ledger.Failed:
		return "bad"
	case e.WaitingFor != "":
		return "wait"
	case !e.State.Outcome():
		return "busy"
	}
	return "other"
}

// reports lists the reports finishing wrote beside a drop's file.
func reports(e *ledger.Entry) []string {
	if !e.Finished || e.FinalKey == "" {
		return nil
	}
	if e.State == ledger.Rejected {
		return []string{reportStatus, reportErrors}
	}
	return []string{reportStatus}
}

// render writes template name with v, or a plain 500 when it fails, so
// a half page is never sent.
func (s *server) render(w http.ResponseWriter, name string, v any) {
	var b bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&b, name, v); err != nil {
		s.opt.Logger.Error("status page", "template", name, "err", err)
		http.Error(w, "the page could not be drawn; see the daemon's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	s.secure(w)
	w.Write(b.Bytes())
}

// policy is the Content-Security-Policy of every answer: the page's own
// style sheet, inlined and named by its hash, is all that may load;
// nothing runs, forms go only here, and no other site frames the page.
func policy() string {
	css, err := fs.ReadFile(files, "style.css")
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(css)
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

// secure sets the headers every answer carries.
func (s *server) secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", s.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// frame is what every page's head and foot show.
type frame struct {
	Title   string
	Home    string // the list, relative to the page: works behind a proxy's sub-path
	Refresh bool
	Zone    string
}

// dropPage is what drop.html shows.
type dropPage struct {
	frame
	E       *ledger.Entry
	Head    []ledger.Event // the first events
	Tail    []ledger.Event // the latest, when some were left out between
	Omitted int            // events left out, by the ledger and by the page
	Reports []string
}

func (s *server) frame(title, home string, refresh bool) frame {
	return frame{Title: title, Home: home, Refresh: refresh, Zone: s.opt.Location.String()}
}

func (s *server) drop(w http.ResponseWriter, r *http.Request) {
	e, ok := s.get(w, r)
	if !ok {
		return
	}
	// Refresh stops once the drop is finished: nothing will change, and
	// a long history is read at leisure.
	p := dropPage{E: e, Omitted: e.Folded, frame: s.frame(safetext.Line(e.Name, 200), "../", !e.Finished)}
	if s.opt.Report != nil {
		p.Reports = reports(e)
	}
	p.Head, p.Tail = e.HistoryFolded()
	if n := len(p.Head) + len(p.Tail); n > HistoryMax {
		// Only a ledger with another MaxHistory gets here; keep the
		// page's own cap whatever it is.
		all := append(append([]ledger.Event{}, p.Head...), p.Tail...)
		half := HistoryMax / 2
		p.Head, p.Tail = all[:half], all[len(all)-half:]
		p.Omitted += n - HistoryMax
	}
	s.render(w, "drop.html", p)
}

// get loads the drop named in the path, answering 404 or 500 itself.
func (s *server) get(w http.ResponseWriter, r *http.Request) (*ledger.Entry, bool) {
	e, err := s.opt.Ledger.Get(r.PathValue("id"))
	if errors.Is(err, ledger.ErrNotFound) {
		http.Error(w, "There is no drop with that reference; it may have been forgotten after the retention period.", http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		s.opt.Logger.Error("status page", "id", safetext.Name(r.PathValue("id")), "err", err)
		http.Error(w, "the ledger could not be read; see the daemon's log", http.StatusInternalServerError)
		return nil, false
	}
	return e, true
}

// report serves a finished drop's report as the user's folder holds it:
// status.txt as text, errors.csv as a download named as beside the file.
func (s *server) report(w http.ResponseWriter, r *http.Request) {
	k := r.PathValue("report")
	if s.opt.Report == nil || (k != reportStatus && k != reportErrors) {
		http.NotFound(w, r)
		return
	}
	e, ok := s.get(w, r)
	if !ok {
		return
	}
	b, err := s.opt.Report(r.Context(), e, k)
	if errors.Is(err, fs.ErrNotExist) || (s.opt.NoReport != nil && errors.Is(err, s.opt.NoReport)) {
		http.Error(w, fmt.Sprintf("This drop has no %s to show: it is written when the file is finished, and someone may have moved it since.", k), http.StatusNotFound)
		return
	}
	if err != nil {
		s.opt.Logger.Warn("status page: read report", "id", e.ID, "report", k, "err", err)
		http.Error(w, "the report could not be read from the drop folder; see the daemon's log", http.StatusBadGateway)
		return
	}
	s.secure(w)
	if k == reportErrors {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		// The name the file has beside the drop, in plain ASCII-safe
		// form (mime quotes or encodes what needs it).
		name := safetext.Name(path.Base(e.FinalKey)) + "." + reportErrors
		if cd := mime.FormatMediaType("attachment", map[string]string{"filename": name}); cd != "" {
			w.Header().Set("Content-Disposition", cd)
		}
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Write(b)
}

// query is a list's filters as parsed from its URL.
type query struct {
	Source string
	State  string
	From   string // YYYY-MM-DD, in the page's zone
	To     string
	Before string // the id the page starts before; "" for the newest

	from, to time.Time // zero when not set; to is the end of its day
}

// states are the state filter's choices, in the words the page shows.
var states = []struct{ Value, Label string }{
	{"", "any state"},
	{"imported", "imported"},
	{"rejected", "rejected"},
	{"failed", "failed"},
	{"waiting", "waiting"},
	{"in-progress", "in progress"},
	{"duplicate", "duplicate"},
	{"gone", "gone"},
}

// matchState reports whether e is in the state filter's choice v.
func matchState(v string, e *ledger.Entry) bool {
	switch v {
	case "":
		return true
	case "imported":
		return e.State == ledger.Done
	case "rejected":
		return e.State == ledger.Rejected
	case "failed":
		return e.State == ledger.Failed
	case "waiting":
		return !e.State.Outcome() && e.WaitingFor != ""
	case "in-progress":
		return !e.State.Outcome()
	case "duplicate":
		return e.State == ledger.Duplicate
	case "gone":
		return e.State == ledger.Vanished
	}
	return false
}

// parseQuery reads the filters, saying in the user's words what is wrong
// with one.
func parseQuery(r *http.Request, loc *time.Location) (query, []string) {
	v := r.URL.Query()
	q := query{Source: v.Get("source"), State: v.Get("state"), From: v.Get("from"), To: v.Get("to"), Before: v.Get("before")}
	var bad []string
	known := false
	for _, s := range states {
		known = known || s.Value == q.State
	}
	if !known {
		bad = append(bad, fmt.Sprintf("There is no state %q; showing every state.", safetext.Line(q.State, 64)))
		q.State = ""
	}
	for _, d := range []struct {
		s   *string
		t   *time.Time
		end bool
	}{{&q.From, &q.from, false}, {&q.To, &q.to, true}} {
		if *d.s == "" {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02", *d.s, loc)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q is not a date; write dates as 2026-03-26.", safetext.Line(*d.s, 64)))
			*d.s = ""
			continue
		}
		if d.end {
			t = t.AddDate(0, 0, 1)
		}
		*d.t = t
	}
	return q, bad
}

// listPage is what list.html shows.
type listPage struct {
	frame
	Q        query
	Problems []string
	Sources  []sourceLine
	Stopped  []stoppedLine
	Options  []string // sources the filter offers
	States   []struct{ Value, Label string }
	Drops    []*ledger.Entry
	// Next is the id the next page starts before, when there may be
	// more; Scanned says the page ended at ScanMax.
	Next    string
	NextURL string
	Scanned bool
	ScanMax int
	// Reports says whether reports are offered at all.
	Reports bool
}

// sourceLine is one source at the top of the list.
type sourceLine struct {
	Name               string
	Stopped            string
	Busy, Waiting      int
	OldestWait         *ledger.Entry
	Selected, Filtered bool
}

type stoppedLine struct{ Name, Why string }

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	q, bad := parseQuery(r, s.opt.Location)
	p := listPage{Q: q, Problems: bad, States: states, ScanMax: ScanMax, Reports: s.opt.Report != nil,
		frame: s.frame("Drops", "./", true)}
	active, err := s.opt.Ledger.Active()
	if err != nil {
		s.fail(w, err)
		return
	}
	p.Sources, p.Stopped = s.sourceLines(active, q.Source)
	for _, l := range p.Sources {
		p.Options = append(p.Options, l.Name)
	}
	if err := s.page(&p); err != nil {
		s.fail(w, err)
		return
	}
	if p.Next != "" {
		v := url.Values{"before": {p.Next}}
		for k, x := range map[string]string{"source": q.Source, "state": q.State, "from": q.From, "to": q.To} {
			if x != "" {
				v.Set(k, x)
			}
		}
		p.NextURL = "?" + v.Encode()
	}
	s.render(w, "list.html", p)
}

func (s *server) fail(w http.ResponseWriter, err error) {
	s.opt.Logger.Error("status page", "err", err)
	http.Error(w, "the ledger could not be read; see the daemon's log", http.StatusInternalServerError)
}

// sourceLines says per source whether it runs and how many of its drops
// are under way, from the unfinished entries alone: the top of the page
// costs the work in flight, not the ledger's length.
func (s *server) sourceLines(active []*ledger.Entry, selected string) ([]sourceLine, []stoppedLine) {
	stopped := s.opt.Stopped()
	var lines []sourceLine
	at := map[string]int{}
	add := func(n string) int {
		if i, ok := at[n]; ok {
			return i
		}
		at[n] = len(lines)
		lines = append(lines, sourceLine{Name: n, Selected: n == selected, Filtered: selected != ""})
		return at[n]
	}
	if s.opt.Sources != nil {
		for _, n := range s.opt.Sources() {
			add(n)
		}
	}
	for _, e := range active {
		l := &lines[add(e.Source)]
		if e.State.Outcome() {
			continue
		}
		l.Busy++
		if e.WaitingFor != "" {
			l.Waiting++
			if l.OldestWait == nil || e.WaitingSince.Before(l.OldestWait.WaitingSince) {
				l.OldestWait = e
			}
		}
	}
	var stops []stoppedLine
	for i := range lines {
		if err := stopped[lines[i].Name]; err != nil {
			lines[i].Stopped = err.Error()
			stops = append(stops, stoppedLine{Name: lines[i].Name, Why: err.Error()})
		}
	}
	return lines, stops
}

// page fills p.Drops with the newest drops the filters match, before
// p.Q.Before, looking through at most ScanMax.
func (s *server) page(p *listPage) error {
	q := p.Q
	start := q.Before
	if !q.to.IsZero() {
		// Ids begin with their UTC time, so the end of the day is a
		// place to seek to.
		end, _, _ := strings.Cut(ledger.NewID(q.to), "-")
		if start == "" || end < start {
			start = end
		}
	}
	if start == "" {
		start = "~" // after every id
	}
	scanned, last := 0, ""
	err := s.opt.Ledger.ListBefore(start, func(e *ledger.Entry) bool {
		if !q.from.IsZero() && e.Created.Before(q.from) {
			return false
		}
		if scanned == ScanMax {
			p.Scanned, p.Next = true, last
			return false
		}
		scanned++
		last = e.ID
		if (q.Source != "" && e.Source != q.Source) || !matchState(q.State, e) {
			return true
		}
		if len(p.Drops) == s.opt.PageSize {
			// One match more than the page holds: there is a next page.
			p.Next = p.Drops[len(p.Drops)-1].ID
			return false
		}
		p.Drops = append(p.Drops, e)
		return true
	})
	return err
}
