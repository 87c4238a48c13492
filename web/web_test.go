package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"usagedrop/ledger"
)

// site is the page over a real ledger, its drops made by the ledger's
// own transitions, and reports read from a real folder.
type site struct {
	t   testing.TB
	led *ledger.Ledger
	dir string // where finished drops' reports are
	url string
}

func newSite(t testing.TB, opt Options) *site {
	t.Helper()
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"), ledger.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	s := &site{t: t, led: led, dir: dir}
	opt.Ledger = led
	if opt.Report == nil {
		opt.Report = s.readReport
	}
	mux := http.NewServeMux()
	Register(mux, opt)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

var errNoReport = errors.New("no such report")

// readReport reads a report as the pipeline does: beside the final key,
// only for finished drops.
func (s *site) readReport(_ context.Context, e *ledger.Entry, kind string) ([]byte, error) {
	if !e.Finished || (kind == reportErrors && e.State != ledger.Rejected) {
		return nil, errNoReport
	}
	return os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(e.FinalKey)+"."+kind))
}

func (s *site) must(e *ledger.Entry, err error) *ledger.Entry {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	return e
}

func (s *site) create(source, name string) *ledger.Entry {
	e := s.must(s.led.Create(source, name, name, 100, "", false))
	return s.must(s.led.Claimed(e.ID, "processing/x/"+name, "", 100))
}

func (s *site) fetched(e *ledger.Entry) *ledger.Entry {
	return s.must(s.led.Fetched(e.ID, fmt.Sprintf("%064x", time.Now().UnixNano())))
}

// imported makes a drop that Zuora imported as importID.
func (s *site) imported(source, name string, rows int, importID string) *ledger.Entry {
	e := s.fetched(s.create(source, name))
	s.must(s.led.Converted(e.ID, ledger.Conversion{Records: rows, Parts: []ledger.Part{{Name: name, Records: rows, State: ledger.PartPending}}}))
	s.must(s.led.PartSubmitted(e.ID, 0, time.Now()))
	s.must(s.led.PartAccepted(e.ID, 0, ledger.Receipt{ImportID: importID}))
	s.must(s.led.PartFinal(e.ID, 0, ledger.PartCompleted, "", rows))
	s.must(s.led.Outcome(e.ID, ledger.Done, "", false))
	return s.finish(e, "imported/"+name, "the status of "+name)
}

// rejected makes a drop rejected with problems.
func (s *site) rejected(source, name string, problems int) *ledger.Entry {
	e := s.fetched(s.create(source, name))
	s.must(s.led.Rejected(e.ID, problems, nil, "rejected"))
	s.write("failed/"+name+".errors.csv", "file,sheet,line,column,value,reason\r\n"+name+",,8,UOM,,is empty\r\n")
	return s.finish(e, "failed/"+name, "the status of "+name)
}

func (s *site) finish(e *ledger.Entry, final, status string) *ledger.Entry {
	s.write(final+".status.txt", status)
	return s.must(s.led.Finished(e.ID, final, "moved to "+final))
}

func (s *site) write(key, body string) {
	p := filepath.Join(s.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// waiting makes a drop that waits for the drop folder.
func (s *site) waiting(source, name string) *ledger.Entry {
	e := s.create(source, name)
	for range ledger.ShowWaitAfter {
		e = s.must(s.led.Retry(e.ID, ledger.Failure{Step: ledger.StepFetch, Cause: ledger.CauseSource, Err: "connection refused", Next: time.Now().Add(time.Minute)}))
	}
	return e
}

func (s *site) get(p string) (int, http.Header, string) {
	s.t.Helper()
	resp, err := http.Get(s.url + p)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (s *site) page(p string) string {
	s.t.Helper()
	code, h, body := s.get(p)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		s.t.Fatalf("GET %s: %d %s\n%s", p, code, h.Get("Content-Type"), body)
	}
	return body
}

func TestList(t *testing.T) {
	stopped := map[string]error{"partners": errors.New("the host key of sftp.example.com changed")}
	s := newSite(t, Options{Sources: func() []string { return []string{"finance", "partners"} }, Stopped: func() map[string]error { return stopped }})
	s.imported("finance", "march.csv", 1250, "2c93808457d787030157e0324ffd0a5b")
	s.rejected("finance", "april.csv", 223)
	s.waiting("partners", "may.csv")
	hostile := s.imported("finance", "<script>alert(1)</script>\u202egpj.csv", 3, "imp-<b>")

	body := s.page("/")
	for _, want := range []string{
		"imported 1,250 rows (import 2c93808457d787030157e0324ffd0a5b)",
		"rejected: 223 problems",
		"waiting for the drop folder since ",
		`<a class="report" href="drops/`,
		"Source partners is stopped",
		"the host key of sftp.example.com changed",
		`<meta http-equiv="refresh" content="30">`,
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"imp-&lt;b&gt;",
		"Times are in UTC.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the list does not show %q", want)
		}
	}
	for _, bad := range []string{"<script>", "\u202e", "<b>"} {
		if strings.Contains(body, bad) {
			t.Errorf("the list shows %q unescaped", bad)
		}
	}
	// Newest first.
	if i, j := strings.Index(body, hostile.ID), strings.Index(body, "march.csv"); i < 0 || j < 0 || i > j {
		t.Errorf("newest drop at %d, oldest at %d: not newest first", i, j)
	}
	// The status page links the status report of every finished drop and
	// the errors.csv of the rejected one only.
	if n := strings.Count(body, "/status.txt\""); n != 3 {
		t.Errorf("%d status.txt links, want 3", n)
	}
	if n := strings.Count(body, "/errors.csv\""); n != 1 {
		t.Errorf("%d errors.csv links, want 1", n)
	}
}

func TestFilters(t *testing.T) {
	s := newSite(t, Options{Sources: func() []string { return []string{"finance", "partners"} }})
	s.imported("finance", "march.csv", 10, "i1")
	s.rejected("finance", "april.csv", 2)
	s.imported("partners", "partner-june.csv", 5, "i2")
	s.waiting("partners", "partner-july.csv")

	tests := []struct {
		query      string
		show, hide []string
	}{
		{"?source=partners", []string{"partner-june.csv", "partner-july.csv"}, []string{"march.csv", "april.csv"}},
		{"?state=rejected", []string{"april.csv"}, []string{"march.csv", "partner-june.csv", "partner-july.csv"}},
		{"?state=imported&source=finance", []string{"march.csv"}, []string{"april.csv", "partner-june.csv"}},
		{"?state=waiting", []string{"partner-july.csv"}, []string{"march.csv", "april.csv", "partner-june.csv"}},
		{"?state=in-progress", []string{"partner-july.csv"}, []string{"march.csv"}},
		{"?from=2000-01-01&to=2000-01-31", []string{"No drops match these filters."}, []string{"march.csv"}},
		{"?from=" + time.Now().UTC().Format("2006-01-02"), []string{"march.csv", "partner-july.csv"}, nil},
		{"?to=" + time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02"), []string{"No drops match"}, []string{"march.csv"}},
		{"?from=26/03/2026", []string{"is not a date; write dates as 2026-03-26.", "march.csv"}, nil},
		{"?state=<i>", []string{"There is no state &#34;&lt;i&gt;&#34;", "march.csv"}, []string{"<i>"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			body := s.page("/" + tt.query)
			for _, w := range tt.show {
				if !strings.Contains(body, w) {
					t.Errorf("does not show %q", w)
				}
			}
			for _, w := range tt.hide {
				if strings.Contains(body, w) {
					t.Errorf("shows %q", w)
				}
			}
		})
	}
	// The chosen filters stay chosen in the form.
	body := s.page("/?source=partners&state=waiting")
	for _, want := range []string{`<option value="partners" selected>`, `<option value="waiting" selected>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the form does not keep %q", want)
		}
	}
}

func TestPages(t *testing.T) {
	s := newSite(t, Options{PageSize: 3})
	var names []string
	for i := range 7 {
		n := fmt.Sprintf("file-%02d.csv", i)
		s.imported("finance", n, i+1, fmt.Sprint("imp", i))
		names = append([]string{n}, names...) // newest first
	}
	var seen []string
	next := "/"
	for range 5 {
		body := s.page(next)
		for _, n := range names {
			if strings.Contains(body, ">"+n+"<") {
				seen = append(seen, n)
			}
		}
		i := strings.Index(body, `<a rel="next" href="`)
		if i < 0 {
			break
		}
		href := body[i+len(`<a rel="next" href="`):]
		next = "/" + strings.ReplaceAll(href[:strings.IndexByte(href, '"')], "&amp;", "&")
	}
	if fmt.Sprint(seen) != fmt.Sprint(names) {
		t.Errorf("pages showed %v, want %v", seen, names)
	}
}

func TestDropPage(t *testing.T) {
	s := newSite(t, Options{Location: mustZone(t, "Europe/Berlin")})
	e := s.rejected("finance", "april.csv", 223)
	w := s.waiting("finance", "may.csv")

	body := s.page("/drops/" + e.ID)
	for _, want := range []string{
		"<h1 class=\"file\">april.csv</h1>",
		"rejected: 223 problems",
		`href="` + e.ID + `/status.txt"`,
		`href="` + e.ID + `/errors.csv"`,
		"moved to failed/april.csv",
		"sha256 ",
		"Times are in Europe/Berlin.",
		e.Created.In(mustZone(t, "Europe/Berlin")).Format("2006-01-02 15:04:05 MST"),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the drop's page does not show %q", want)
		}
	}
	if strings.Contains(body, "http-equiv=\"refresh\"") {
		t.Error("a finished drop's page refreshes itself")
	}
	body = s.page("/drops/" + w.ID)
	if !strings.Contains(body, "waiting for the drop folder since") || !strings.Contains(body, "http-equiv=\"refresh\"") {
		t.Errorf("a waiting drop's page:\n%s", body)
	}
	if code, _, _ := s.get("/drops/nonesuch"); code != http.StatusNotFound {
		t.Errorf("unknown drop: %d, want 404", code)
	}
}

func TestLongHistory(t *testing.T) {
	s := newSite(t, Options{})
	e := s.create("finance", "busy.csv")
	for i := range 200 {
		e = s.must(s.led.Refetch(s.fetched(e).ID, fmt.Sprintf("copy %d lost", i)))
	}
	body := s.page("/drops/" + e.ID)
	if !strings.Contains(body, "events in between are not shown") {
		t.Error("a folded history does not say so")
	}
	if n := strings.Count(body, "<li><time>"); n > ledger.MaxHistory || n < 10 {
		t.Errorf("%d events shown", n)
	}
	if !strings.Contains(body, "copy 199 lost") {
		t.Error("the latest event is not shown")
	}
}

func TestReports(t *testing.T) {
	s := newSite(t, Options{NoReport: errNoReport})
	bad := s.rejected("finance", "april.csv", 1)
	good := s.imported("finance", "march.csv", 1, "i")
	tests := []struct {
		path, ctype, body string
		code              int
	}{
		{"/drops/" + bad.ID + "/status.txt", "text/plain; charset=utf-8", "the status of april.csv", 200},
		{"/drops/" + bad.ID + "/errors.csv", "text/csv; charset=utf-8", "april.csv,,8,UOM,,is empty", 200},
		{"/drops/" + good.ID + "/errors.csv", "", "has no errors.csv", 404},
		{"/drops/" + good.ID + "/other.txt", "", "", 404},
		{"/drops/nonesuch/status.txt", "", "no drop with that reference", 404},
	}
	for _, tt := range tests {
		code, h, body := s.get(tt.path)
		if code != tt.code || !strings.Contains(body, tt.body) || (tt.ctype != "" && h.Get("Content-Type") != tt.ctype) {
			t.Errorf("GET %s: %d %q %q, want %d %q %q", tt.path, code, h.Get("Content-Type"), body, tt.code, tt.ctype, tt.body)
		}
	}
	_, h, _ := s.get("/drops/" + bad.ID + "/errors.csv")
	if cd := h.Get("Content-Disposition"); cd != `attachment; filename=april.csv.errors.csv` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if err := os.Remove(filepath.Join(s.dir, "failed", path.Base(bad.FinalKey)+".status.txt")); err != nil {
		t.Fatal(err)
	}
	if code, _, body := s.get("/drops/" + bad.ID + "/status.txt"); code != 404 || !strings.Contains(body, "moved it since") {
		t.Errorf("a report someone deleted: %d %q", code, body)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	return loc
}

// BenchmarkList measures a list over a long ledger: the newest page, and
// a filter that matches nothing, which looks through ScanMax drops.
// Measured: go test ./web -run XXX -bench List -benchtime 20x.
func BenchmarkList(b *testing.B) {
	s := newSite(b, Options{})
	// 20,000 drops, the last 100 still under way.
	for i := range 20000 {
		e, err := s.led.Create("finance", fmt.Sprintf("file-%05d.csv", i), "k", 1, "", false)
		if err != nil {
			b.Fatal(err)
		}
		if i < 19900 {
			s.must(s.led.Outcome(e.ID, ledger.Vanished, "gone", true))
		}
	}
	for _, q := range []string{"/", "/?state=duplicate"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(s.url + q)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
