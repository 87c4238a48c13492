package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"usagedrop/config"
	"usagedrop/internal/safetext"
	"usagedrop/ledger"
	"usagedrop/web"
)

// Limits of the HTTP API. Every answer is bounded whatever the ledger
// holds, and a slow or idle client cannot hold a connection open.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 60 * time.Second
	httpMaxHeaderBytes    = 16 << 10

	// dropsPageDefault and dropsPageMax bound ?limit= on /v1/drops.
	dropsPageDefault = 100
	dropsPageMax     = 1000
	// responseMax caps the bytes of any JSON answer; a page that would
	// pass it ends early with a next link.
	responseMax = 4 << 20
	// fieldMax caps every text field shown (names, keys, errors, notes).
	fieldMax = 4 << 10
)

// api is what the HTTP listener serves: the JSON API, the status page,
// the operator's endpoints, health and metrics. One struct, so that a new
// endpoint adds a field, not a parameter to every caller.
type api struct {
	Auth config.HTTPAuth
	// Ledger is read for the API, the page and the operator's endpoints.
	Ledger ledger.Store
	// Stopped reports the sources stopped for an operator.
	Stopped func() map[string]error
	// NotReady says why the daemon cannot work now (nil: it can), for
	// /readyz.
	NotReady func() []string
	// Metrics is scraped at /metrics.
	Metrics prometheus.Gatherer
	// Page configures the status page at / (its ledger and stopped are
	// the ones above).
	Page web.Options
	// Ops serves retry, forget and export; nil leaves them out.
	Ops *opsAPI
}

// serveHTTP answers /healthz, /readyz, /v1/drops and /metrics for
// operators and `status`, and the status page at /. Everything but
// /healthz and /readyz needs
// auth's credentials when auth is set. /metrics is guarded too:
// Prometheus sends a bearer token or basic auth with one line of scrape
// config, and one rule for every endpoint but the health check leaves
// nothing to remember.
func serveHTTP(addr string, a api, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http %s: %w", addr, err)
	}
	srv := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           httpHandler(a),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("status endpoint", "url", "http://"+srv.Addr+"/v1/drops", "page", "http://"+srv.Addr+"/", "auth", authKind(a.Auth))
	return srv, nil
}

func httpHandler(a api) http.Handler {
	guarded := http.NewServeMux()
	page := a.Page
	page.Ledger, page.Stopped = a.Ledger, a.Stopped
	web.Register(guarded, page)
	if a.Ops != nil {
		a.Ops.routes(guarded)
	}
	led := a.Ledger
	guarded.HandleFunc("GET /v1/drops", func(w http.ResponseWriter, r *http.Request) { listDrops(w, r, led) })
	guarded.HandleFunc("GET /v1/drops/{id}", func(w http.ResponseWriter, r *http.Request) { getDrop(w, r, led) })
	guarded.Handle("GET /metrics", promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { health(w, a.Stopped()) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { ready(w, a.NotReady()) })
	mux.Handle("/", requireAuth(a.Auth, guarded))
	return mux
}

// health is 200 "ok", or 503 naming each source stopped for an operator.
func health(w http.ResponseWriter, stopped map[string]error) {
	if len(stopped) == 0 {
		fmt.Fprintln(w, "ok")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range stopped {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		fmt.Fprintf(w, "source %s stopped: %s\n", shown(n), shown(stopped[n].Error()))
	}
}

// ready is 200 "ready", or 503 with each reason the daemon cannot work
// now, one a line. Unlike /healthz it also fails while Zuora is out of
// reach: a load balancer or a monitor that pages reads this one, a
// restart-on-failure probe the other.
func ready(w http.ResponseWriter, why []string) {
	if len(why) == 0 {
		fmt.Fprintln(w, "ready")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	for _, l := range why {
		fmt.Fprintln(w, shown(l))
	}
}

// dropsPage is one page of /v1/drops, oldest drop first. Next, when set,
// is the URL of the following page.
type dropsPage struct {
	Drops []json.RawMessage `json:"drops"`
	Next  string            `json:"next,omitempty"`
}

// listDrops serves /v1/drops?limit=N&after=ID: up to limit entries after
// the one with id after, without their history (/v1/drops/{id} has it),
// in at most responseMax bytes.
func listDrops(w http.ResponseWriter, r *http.Request, led ledger.Store) {
	limit := dropsPageDefault
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			http.Error(w, fmt.Sprintf("limit must be a number from 1 to %d (got %q)", dropsPageMax, shown(s)), http.StatusBadRequest)
			return
		}
		limit = min(n, dropsPageMax)
	}
	after := r.URL.Query().Get("after")
	page := dropsPage{Drops: []json.RawMessage{}}
	size, last, more := 0, "", false
	err := led.ListAfter(after, func(e *ledger.Entry) bool {
		b := listed(e)
		if len(page.Drops) == limit || size+len(b) > responseMax-1024 {
			// One entry more than we serve says there is a next page.
			more = true
			return false
		}
		page.Drops = append(page.Drops, b)
		size += len(b) + 1
		last = e.ID
		return true
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if more && last != "" {
		page.Next = "/v1/drops?" + url.Values{"after": {last}, "limit": {strconv.Itoa(limit)}}.Encode()
	}
	writeJSON(w, page)
}

// entryMax caps one entry in a list: past it, its parts and warnings are
// left out (/v1/drops/{id} has them), so a page always has room for one.
const entryMax = 256 << 10

// listed is e as a list shows it, in JSON.
func listed(e *ledger.Entry) []byte {
	v := dropView(e, false)
	b, _ := json.Marshal(v)
	if len(b) > entryMax {
		v.Parts, v.Warnings = nil, nil
		b, _ = json.Marshal(v)
	}
	return b
}

// getDrop serves /v1/drops/{id}: one entry with its history, the oldest
// events left out if it would pass responseMax.
func getDrop(w http.ResponseWriter, r *http.Request, led ledger.Store) {
	e, err := led.Get(r.PathValue("id"))
	if errors.Is(err, ledger.ErrNotFound) {
		http.Error(w, "no drop with that id", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	v := dropView(e, true)
	b, _ := json.Marshal(v)
	for len(b) > responseMax-1024 && len(v.History) > 1 {
		n := len(v.History) / 2
		v.History = append([]ledger.Event{{At: v.History[0].At, Note: fmt.Sprintf("… %d earlier events left out", n)}}, v.History[n+1:]...)
		b, _ = json.Marshal(v)
	}
	if len(b) > responseMax-1024 {
		v.Parts, v.Warnings, v.History = nil, nil, nil
		b, _ = json.Marshal(v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(b.Bytes())
}

// dropView is an entry as people see it, in `status` and over HTTP: every
// text that came from a drop or a server escaped to one printable line
// (so a name that is not UTF-8 is shown, not mangled by JSON) and clipped
// to fieldMax. History is kept only when asked for. The ledger's entry is
// not changed.
func dropView(e *ledger.Entry, history bool) *ledger.Entry {
	v := *e
	v.Name, v.Key, v.FinalKey = shown(e.Name), shown(e.Key), shown(e.FinalKey)
	v.Source, v.ETag, v.LastError = shown(e.Source), shown(e.ETag), shown(e.LastError)
	v.Warnings = nil
	for _, w := range e.Warnings {
		v.Warnings = append(v.Warnings, shown(w))
	}
	v.Parts = make([]ledger.Part, len(e.Parts))
	for i, p := range e.Parts {
		p.Name, p.Path, p.Message = shown(p.Name), shown(p.Path), shown(p.Message)
		p.StatusURL, p.ZuoraStatus = shown(p.StatusURL), shown(p.ZuoraStatus)
		v.Parts[i] = p
	}
	if len(v.Parts) == 0 {
		v.Parts = nil
	}
	v.History = nil
	if history {
		for _, h := range e.History {
			h.Note = shown(h.Note)
			v.History = append(v.History, h)
		}
	}
	return &v
}

// shown is s escaped to one printable line of at most fieldMax bytes. It
// clips before escaping too, so a huge field costs fieldMax bytes of work.
func shown(s string) string {
	return safetext.Line(s, fieldMax)
}

// requireAuth lets through only requests that carry auth's credentials,
// compared in constant time. Without auth it lets everything through:
// config allows that only on loopback.
func requireAuth(auth config.HTTPAuth, next http.Handler) http.Handler {
	if !auth.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if authorized(auth, r) {
			next.ServeHTTP(w, r)
			return
		}
		if auth.User != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="usagedrop", charset="UTF-8"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="usagedrop"`)
		}
		http.Error(w, "credentials needed: see http_auth in the daemon's config", http.StatusUnauthorized)
	})
}

func authorized(auth config.HTTPAuth, r *http.Request) bool {
	if auth.TokenFile != "" {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		return ok && strings.EqualFold(scheme, "Bearer") && same(strings.TrimSpace(token), auth.Token.Value())
	}
	user, pass, ok := r.BasicAuth()
	// Both compared, so the time taken does not say which one was wrong.
	userOK, passOK := same(user, auth.User), same(pass, auth.Password.Value())
	return ok && userOK && passOK
}

// same compares two secrets in constant time; hashing first keeps their
// lengths from showing too.
func same(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// setAuth adds auth's credentials to a request to the status endpoint.
func setAuth(req *http.Request, auth config.HTTPAuth) {
	switch {
	case auth.TokenFile != "":
		req.Header.Set("Authorization", "Bearer "+auth.Token.Value())
	case auth.User != "":
		req.SetBasicAuth(auth.User, auth.Password.Value())
	}
}

func authKind(auth config.HTTPAuth) string {
	switch {
	case auth.TokenFile != "":
		return "bearer"
	case auth.User != "":
		return "basic"
	}
	return "none (loopback only)"
}
