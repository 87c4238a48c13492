package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"usagedrop/config"
	"usagedrop/ledger"
)

// apiRig is a ledger in a temp dir and the status endpoint serving it on
// loopback.
type apiRig struct {
	t    *testing.T
	led  *ledger.Ledger
	path string
	base string
	ids  []string
}

func newAPIRig(t *testing.T, auth config.HTTPAuth, stopped map[string]error) *apiRig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	led, err := ledger.Open(path, ledger.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "usagedrop_test_total", Help: "a counter"}))
	srv, err := serveHTTP("127.0.0.1:0", api{Auth: auth, Ledger: led, Stopped: func() map[string]error { return stopped }, NotReady: func() []string { return nil }, Metrics: reg,
		Ops: &opsAPI{Ledger: led, Wake: func(string) {}, SourceType: func(string) string { return "local" }, Logger: slog.New(slog.DiscardHandler)}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &apiRig{t: t, led: led, path: path, base: "http://" + srv.Addr}
}

// add creates n entries named name-0, name-1, ...; fn, when set, takes
// each one through ledger transitions.
func (r *apiRig) add(n int, name string, fn func(id string) error) {
	r.t.Helper()
	for i := range n {
		e, err := r.led.Create("drop", fmt.Sprintf("%s-%d", name, i), "processing/x/"+name, 10, "", false)
		if err != nil {
			r.t.Fatal(err)
		}
		if fn != nil {
			if err := fn(e.ID); err != nil {
				r.t.Fatal(err)
			}
		}
		r.ids = append(r.ids, e.ID)
	}
}

// rejectWith takes entry id to Rejected with warnings, then records a
// failed finish whose error is lastErr.
func (r *apiRig) rejectWith(id, lastErr string, warnings []string) error {
	if _, err := r.led.Claimed(id, "processing/x/"+id, "", 10); err != nil {
		return err
	}
	if _, err := r.led.Fetched(id, id); err != nil {
		return err
	}
	if _, err := r.led.Rejected(id, 1, warnings, "rejected"); err != nil {
		return err
	}
	_, err := r.led.Retry(id, ledger.Failure{Step: ledger.StepFinish, Cause: ledger.CauseOther, Err: lastErr})
	return err
}

// get fetches path with the request changed by set, and returns the body
// and status.
func (r *apiRig) get(path string, set func(*http.Request)) ([]byte, *http.Response) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return b, resp
}

// pages follows /v1/drops from first through its next links and returns
// every entry and the size of each page.
func (r *apiRig) pages(first string) (all []ledger.Entry, sizes []int) {
	r.t.Helper()
	for next := first; next != ""; {
		b, resp := r.get(next, nil)
		if resp.StatusCode != 200 {
			r.t.Fatalf("%s: %s: %s", next, resp.Status, b)
		}
		var page struct {
			Drops []ledger.Entry `json:"drops"`
			Next  string         `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			r.t.Fatalf("%s: %v", next, err)
		}
		if len(b) > responseMax {
			r.t.Fatalf("%s: %d bytes, over the %d cap", next, len(b), responseMax)
		}
		all = append(all, page.Drops...)
		sizes = append(sizes, len(page.Drops))
		next = page.Next
		if len(sizes) > 100 {
			r.t.Fatal("next links never end")
		}
	}
	return all, sizes
}

func TestHTTPDropsPaged(t *testing.T) {
	r := newAPIRig(t, config.HTTPAuth{}, nil)
	r.add(1050, "usage", nil)
	tests := []struct {
		first string
		sizes []int
	}{
		{"/v1/drops", []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 50}},
		{"/v1/drops?limit=400", []int{400, 400, 250}},
		{"/v1/drops?limit=5000", []int{1000, 50}},
		{"/v1/drops?limit=1050", []int{1000, 50}},
		{"/v1/drops?limit=1&after=" + r.ids[1047], []int{1, 1}},
		{"/v1/drops?after=" + r.ids[1049], []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.first, func(t *testing.T) {
			all, sizes := r.pages(tt.first)
			if fmt.Sprint(sizes) != fmt.Sprint(tt.sizes) {
				t.Fatalf("page sizes %v, want %v", sizes, tt.sizes)
			}
			want := r.ids[len(r.ids)-len(all):]
			for i, e := range all {
				if e.ID != want[i] {
					t.Fatalf("entry %d is %s, want %s: pages skip or repeat", i, e.ID, want[i])
				}
				if len(e.History) != 0 {
					t.Fatalf("a list shows history: %+v", e)
				}
			}
		})
	}
	for _, bad := range []string{"0", "-1", "ten"} {
		if b, resp := r.get("/v1/drops?limit="+bad, nil); resp.StatusCode != 400 || !strings.Contains(string(b), "limit must be a number from 1 to 1000") {
			t.Errorf("limit=%s: %s %s", bad, resp.Status, b)
		}
	}
}

func TestHTTPOneDropWithHistory(t *testing.T) {
	r := newAPIRig(t, config.HTTPAuth{}, nil)
	r.add(1, "one", func(id string) error { _, err := r.led.Claimed(id, "processing/x/one", "", 10); return err })
	b, resp := r.get("/v1/drops/"+r.ids[0], nil)
	var e ledger.Entry
	if resp.StatusCode != 200 || json.Unmarshal(b, &e) != nil {
		t.Fatalf("%s: %s", resp.Status, b)
	}
	if e.ID != r.ids[0] || len(e.History) != 2 || e.History[1].State != ledger.Claimed {
		t.Fatalf("entry %+v", e)
	}
	if _, resp := r.get("/v1/drops/20990101T000000.000000000Z-00000000", nil); resp.StatusCode != 404 {
		t.Fatalf("unknown id: %s", resp.Status)
	}
}

// Names that are not UTF-8 or carry control characters are shown
// escaped, never mangled into U+FFFD by JSON nor able to break a line.
func TestHTTPShowsNamesEscaped(t *testing.T) {
	r := newAPIRig(t, config.HTTPAuth{}, nil)
	for _, name := range []string{"tab\there.csv", "two\nlines.csv", "\x1b[31mred.csv", "evil\u202eosc.csv", "plain é.csv"} {
		if _, err := r.led.Create("drop", name, "processing/x/"+name, 1, "", false); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := r.pages("/v1/drops")
	var got []string
	for _, e := range all {
		got = append(got, e.Name)
	}
	want := []string{`tab\there.csv`, `two\nlines.csv`, `\x1b[31mred.csv`, `evil\u202eosc.csv`, "plain é.csv"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("names %q\nwant  %q", got, want)
	}
	if !strings.HasPrefix(all[1].Key, `processing/x/two\nlines`) {
		t.Fatalf("key %q not escaped", all[1].Key)
	}
}

// A name that is not UTF-8 is escaped byte by byte before JSON sees it,
// which would turn each bad byte into U+FFFD.
func TestDropViewKeepsBytesThatAreNotUTF8(t *testing.T) {
	e := &ledger.Entry{Name: "caf\xe9 \\ \xff.csv", Key: "processing/x/caf\xe9", History: []ledger.Event{{Note: "n\x00"}}}
	b, err := json.Marshal(dropView(e, true))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name":"caf\\xe9 \\\\ \\xff.csv"`, `"key":"processing/x/caf\\xe9"`, `"note":"n\\x00"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s\ndoes not hold %s", b, want)
		}
	}
	if e.Name != "caf\xe9 \\ \xff.csv" {
		t.Fatal("dropView changed the ledger's entry")
	}
	if v := dropView(e, false); v.History != nil {
		t.Fatal("history kept in a list view")
	}
}

// However large the ledger's fields, every answer stays under its cap and
// every field under fieldMax; a page that fills up ends early with a next
// link, so nothing is skipped.
func TestHTTPAnswersBounded(t *testing.T) {
	r := newAPIRig(t, config.HTTPAuth{}, nil)
	huge := strings.Repeat("x", 100<<10)
	r.add(200, "big", func(id string) error {
		return r.rejectWith(id, huge, []string{huge, huge, huge, huge, huge})
	})
	r.add(1, "giant", func(id string) error {
		var w []string
		for range 100 {
			w = append(w, huge)
		}
		return r.rejectWith(id, "", w)
	})
	all, sizes := r.pages("/v1/drops?limit=1000")
	if len(all) != 201 {
		t.Fatalf("%d entries in pages %v; want 201", len(all), sizes)
	}
	for _, e := range all[:200] {
		if len(e.LastError) > fieldMax || len(e.Warnings) == 0 || len(e.Warnings[0]) > fieldMax {
			t.Fatalf("fields not clipped: last error %d bytes, %d warnings", len(e.LastError), len(e.Warnings))
		}
		if !strings.Contains(e.LastError, "more bytes)") {
			t.Fatalf("clipped without saying so: %.100s", e.LastError[len(e.LastError)-60:])
		}
	}
	if g := all[200]; g.Name != "giant-0" || len(g.Warnings) > 20 {
		t.Fatalf("entry %q keeps %d warnings", g.Name, len(g.Warnings))
	}
	b, resp := r.get("/v1/drops/"+r.ids[200], nil)
	if resp.StatusCode != 200 || len(b) > responseMax {
		t.Fatalf("one drop: %s, %d bytes", resp.Status, len(b))
	}
}

func TestHTTPAuth(t *testing.T) {
	dir := t.TempDir()
	token, pass := "0123456789abcdef-secret", "pa55-word"
	os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "pass"), []byte(pass+"\n"), 0o600)
	bearer := authFrom(t, "http: 0.0.0.0:0\nhttp_auth:\n  token_file: "+filepath.Join(dir, "token")+"\n")
	basic := authFrom(t, "http: 0.0.0.0:0\nhttp_auth:\n  user: ops\n  password_file: "+filepath.Join(dir, "pass")+"\n")
	withBearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	withBasic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	tests := []struct {
		name string
		auth config.HTTPAuth
		path string
		set  func(*http.Request)
		want int
	}{
		{"bearer: none", bearer, "/v1/drops", nil, 401},
		{"bearer: wrong", bearer, "/v1/drops", withBearer(token + "x"), 401},
		{"bearer: prefix of it", bearer, "/v1/drops", withBearer(token[:10]), 401},
		{"bearer: basic instead", bearer, "/v1/drops", withBasic("ops", token), 401},
		{"bearer: right", bearer, "/v1/drops", withBearer(token), 200},
		{"bearer: scheme in lower case", bearer, "/v1/drops", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+token) }, 200},
		{"bearer: one drop", bearer, "/v1/drops/x", nil, 401},
		{"bearer: metrics guarded", bearer, "/metrics", nil, 401},
		{"bearer: metrics", bearer, "/metrics", withBearer(token), 200},
		{"bearer: health open", bearer, "/healthz", nil, 200},
		{"bearer: unknown path guarded", bearer, "/debug/pprof/", nil, 401},
		{"basic: none", basic, "/v1/drops", nil, 401},
		{"basic: wrong password", basic, "/v1/drops", withBasic("ops", pass+"x"), 401},
		{"basic: wrong user", basic, "/v1/drops", withBasic("op", pass), 401},
		{"basic: bearer instead", basic, "/v1/drops", withBearer(pass), 401},
		{"basic: right", basic, "/v1/drops", withBasic("ops", pass), 200},
		{"basic: health open", basic, "/healthz", nil, 200},
		{"none: loopback open", config.HTTPAuth{}, "/v1/drops", nil, 200},
		{"bearer: status page guarded", bearer, "/", nil, 401},
		{"basic: status page", basic, "/", withBasic("ops", pass), 200},
		{"basic: a drop's report guarded", basic, "/drops/x/errors.csv", withBasic("ops", pass+"x"), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newAPIRig(t, tt.auth, nil)
			b, resp := r.get(tt.path, tt.set)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s: %s, want %d: %s", tt.path, resp.Status, tt.want, b)
			}
			if tt.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if tt.want == 401 && (bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(pass))) {
				t.Fatalf("the refusal shows the secret: %s", b)
			}
		})
	}
}

// authFrom parses and validates a config and returns its http_auth.
func authFrom(t *testing.T, yaml string) config.HTTPAuth {
	t.Helper()
	c, err := config.Parse(strings.NewReader(yaml + "sources:\n  - {name: a, type: local, path: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c.HTTPAuth
}

func TestHTTPHealthNamesStoppedSources(t *testing.T) {
	r := newAPIRig(t, config.HTTPAuth{}, map[string]error{
		"partner\x1b[2J": errors.New("host key changed\nreally"),
		"finance":        errors.New("processing/ is a symlink"),
	})
	b, resp := r.get("/healthz", nil)
	want := "source finance stopped: processing/ is a symlink\nsource partner\\x1b[2J stopped: host key changed\\nreally\n"
	if resp.StatusCode != 503 || string(b) != want {
		t.Fatalf("%s:\n%q\nwant\n%q", resp.Status, b, want)
	}
}

// A client that sends its headers slowly is cut off after
// httpReadHeaderTimeout instead of holding a connection.
func TestHTTPSlowClientCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the header timeout")
	}
	r := newAPIRig(t, config.HTTPAuth{}, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET /v1/drops HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(httpReadHeaderTimeout + 5*time.Second))
	_, err = io.ReadAll(c)
	took := time.Since(start)
	if err != nil || took < httpReadHeaderTimeout-time.Second || took > httpReadHeaderTimeout+2*time.Second {
		t.Fatalf("connection ended after %v with %v; want it closed by the server after %v", took, err, httpReadHeaderTimeout)
	}
}

// `status` pages through a running daemon's endpoint with the config's
// credentials, and says so plainly when it has none.
func TestStatusPagesThroughEndpointWithAuth(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("0123456789abcdef-secret\n"), 0o600)
	auth := authFrom(t, "http_auth:\n  token_file: "+tokenFile+"\n")
	r := newAPIRig(t, auth, nil)
	r.add(1200, "usage", nil)
	r.add(1, "odd\n\x1b", nil)
	addr := strings.TrimPrefix(r.base, "http://")
	// The rig holds the ledger open, as a running daemon does.
	cfg := func(withAuth bool) string {
		y := fmt.Sprintf("ledger: %s\nhttp: %s\nsources:\n  - {name: drop, type: local, path: %s}\n", r.path, addr, dir)
		if withAuth {
			y += "http_auth:\n  token_file: " + tokenFile + "\n"
		}
		p := filepath.Join(dir, fmt.Sprintf("config-%v.yaml", withAuth))
		os.WriteFile(p, []byte(y), 0o600)
		return p
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"status", "-config", cfg(true), "-json"}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1201 || !strings.Contains(lines[1200], `"name":"odd\\n\\x1b-0"`) {
		t.Fatalf("%d lines; last %s", len(lines), lines[len(lines)-1])
	}
	out.Reset()
	if code := run(context.Background(), []string{"status", "-config", cfg(true)}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 1202 || !strings.Contains(out.String(), `odd\n\x1b-0`) {
		t.Fatalf("table has %d lines, want a header and 1201 rows, the odd name escaped:\n%.300s", n, out.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"status", "-config", cfg(false)}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "401 Unauthorized: the http_auth in this config is not the daemon's") {
		t.Fatalf("status without credentials: exit %d: %s", code, errb.String())
	}
}
