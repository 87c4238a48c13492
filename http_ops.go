package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"usagedrop/config"
	"usagedrop/internal/safetext"
	"usagedrop/ledger"
	"usagedrop/pipeline"
)

// The operator's endpoints, which `retry`, `forget`, `export` and
// `status` call while a daemon holds the ledger (bbolt's lock is
// exclusive). They sit behind the same auth as the rest of the API;
// writes are POST, and a browser's cross-site POST is refused
// (http.CrossOriginProtection), since a browser that has logged in to
// the status page sends its basic-auth credentials with any request.
//
//	POST /v1/drops/{id}/retry     try now, or send a rejection or failure again
//	GET  /v1/drops/{ref}/forget   what forgetting would do (changes nothing)
//	POST /v1/drops/{ref}/forget   forget: the bytes may be dropped again
//	GET  /v1/export?format=jsonl|csv&since=RFC3339&source=&state=&name=&history=0
//
// A refusal is 409 with the reason as plain text; an unknown drop, 404.

// opsAPI is what the operator endpoints need of a running daemon.
type opsAPI struct {
	Ledger ledger.Store
	// Wake has a drop looked at now (Pipeline.Wake).
	Wake func(id string)
	// SourceType returns the config type of a source ("local", "s3", ...).
	SourceType func(source string) string
	Logger     *slog.Logger
}

// routes adds the endpoints to mux, which requireAuth guards.
func (o *opsAPI) routes(mux *http.ServeMux) {
	csrf := http.NewCrossOriginProtection()
	mux.Handle("POST /v1/drops/{id}/retry", csrf.Handler(http.HandlerFunc(o.retry)))
	mux.HandleFunc("GET /v1/drops/{ref}/forget", o.forget)
	mux.Handle("POST /v1/drops/{ref}/forget", csrf.Handler(http.HandlerFunc(o.forget)))
	mux.HandleFunc("GET /v1/export", o.export)
}

// opResult is the answer to retry and forget: what was done, in the words
// the command prints, and the drop as it now stands.
type opResult struct {
	Message string        `json:"message"`
	Drop    *ledger.Entry `json:"drop"`
}

func (o *opsAPI) retry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	e, err := o.Ledger.Get(id)
	if err != nil {
		opError(w, err)
		return
	}
	x, err := pipeline.Retry(o.Ledger, id, o.SourceType(e.Source))
	if err != nil {
		opError(w, err)
		return
	}
	o.Wake(id)
	o.Logger.Info("retry asked by an operator", "id", id, "state", x.State, "remote", r.RemoteAddr)
	writeJSON(w, opResult{Message: retryMessage(e, x, true), Drop: dropView(x, true)})
}

func (o *opsAPI) forget(w http.ResponseWriter, r *http.Request) {
	e, err := ledger.Resolve(o.Ledger, r.PathValue("ref"))
	if err != nil {
		opError(w, err)
		return
	}
	if r.Method == http.MethodGet {
		plan, err := forgetPlan(o.Ledger, e)
		if err != nil {
			opError(w, err)
			return
		}
		writeJSON(w, opResult{Message: plan, Drop: dropView(e, true)})
		return
	}
	x, err := o.Ledger.Forget(e.ID, forgetNote)
	if err != nil {
		opError(w, err)
		return
	}
	o.Logger.Info("drop forgotten by an operator: its bytes may be dropped again", "id", e.ID, "sha256", e.SHA256, "remote", r.RemoteAddr)
	writeJSON(w, opResult{Message: forgotMessage(x), Drop: dropView(x, true)})
}

// opError answers a refused or failed operation.
func opError(w http.ResponseWriter, err error) {
	var te *ledger.TransitionError
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		http.Error(w, "no drop with that id or sha256", http.StatusNotFound)
	case errors.Is(err, ledger.ErrAmbiguous):
		http.Error(w, err.Error(), http.StatusConflict)
	case errors.As(err, &te) && te.Reason != "":
		http.Error(w, te.Reason, http.StatusConflict)
	case errors.As(err, &te) && te.Finished:
		http.Error(w, "the drop is finished", http.StatusConflict)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// export streams every drop the query selects, in pages of exportBatch
// read in a transaction each: never the whole ledger in memory, and no
// read transaction held open while a slow client reads. Each page moves
// the write deadline on. A failure mid-stream aborts the connection, so
// the client sees a broken answer rather than a short one.
func (o *opsAPI) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := filterFromQuery(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	format := q.Get("format")
	ct, err := exportType(format)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", ct)
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(httpWriteTimeout))
	err = exportDrops(w, o.Ledger, f, format, q.Get("history") != "0", func() error {
		if err := rc.Flush(); err != nil {
			return err
		}
		return rc.SetWriteDeadline(time.Now().Add(httpWriteTimeout))
	})
	if err != nil {
		o.Logger.Warn("export cut short", "err", err, "remote", r.RemoteAddr)
		panic(http.ErrAbortHandler)
	}
}

// The client side: what the commands ask of a running daemon.

// errDaemonOff says a daemon holds the ledger and serves no API.
var errDaemonOff = errors.New(`a running daemon holds the ledger, and its config has http: "off", so this command cannot reach it; ` +
	`stop the daemon, or give it an http: address`)

// daemonAPI is a running daemon's API, as cfg reaches it.
type daemonAPI struct {
	base string
	auth config.HTTPAuth
}

// openLedger opens cfg's ledger for a command. When a running daemon
// holds it, the ledger is nil and the daemon's API is returned instead.
func openLedger(cfg *config.Config) (ledger.Store, *daemonAPI, error) {
	led, err := openCommandLedger(context.Background(), cfg)
	if !errors.Is(err, ledger.ErrLocked) {
		return led, nil, err
	}
	if cfg.HTTP == "off" || cfg.HTTP == "" {
		return nil, nil, errDaemonOff
	}
	return nil, &daemonAPI{base: "http://" + cfg.HTTP, auth: cfg.HTTPAuth}, nil
}

// sourceTypes returns the config type of each of cfg's sources by name.
func sourceTypes(cfg *config.Config) func(source string) string {
	types := make(map[string]string, len(cfg.Sources))
	for _, s := range cfg.Sources {
		types[s.Name] = s.Type
	}
	return func(source string) string { return types[source] }
}

// daemonHeaderTimeout bounds the wait for a daemon's answer to begin; an
// export then streams for as long as it takes.
const daemonHeaderTimeout = 10 * time.Second

var daemonClient = &http.Client{Transport: &http.Transport{
	Proxy: nil, ResponseHeaderTimeout: daemonHeaderTimeout, MaxResponseHeaderBytes: httpMaxHeaderBytes,
}}

// do sends method to path (with query) and returns the answer's body
// when the status is 200; other answers become errors carrying what the
// daemon said.
func (d *daemonAPI) do(ctx context.Context, method, path string, query url.Values) (io.ReadCloser, error) {
	u := d.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	setAuth(req, d.auth)
	resp, err := daemonClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the ledger is held by a running daemon, and its API at %s did not answer: %w", d.base, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, fieldMax))
	msg := safetext.Line(strings.TrimSpace(string(b)), fieldMax)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("daemon API: %s: the http_auth in this config is not the daemon's", resp.Status)
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", msg, ledger.ErrNotFound)
	case http.StatusConflict:
		return nil, refusal(msg)
	}
	return nil, fmt.Errorf("daemon API: %s: %s", resp.Status, msg)
}

// call is do for a small JSON answer, decoded into v.
func (d *daemonAPI) call(ctx context.Context, method, path string, query url.Values, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	body, err := d.do(ctx, method, path, query)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(io.LimitReader(body, responseMax)).Decode(v); err != nil {
		return fmt.Errorf("daemon API %s: %w", path, err)
	}
	return nil
}

// entries streams the drops f selects from the daemon's export, calling
// fn for each until it returns false.
func (d *daemonAPI) entries(ctx context.Context, f dropFilter, history bool, fn func(e *ledger.Entry) bool) error {
	q := f.query()
	q.Set("format", "jsonl")
	if !history {
		q.Set("history", "0")
	}
	body, err := d.do(ctx, http.MethodGet, "/v1/export", q)
	if err != nil {
		return err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, responseMax)
	for sc.Scan() {
		var e ledger.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("daemon export: %w", err)
		}
		if !fn(&e) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("daemon export: %w", err)
	}
	return nil
}

// refusal is an operation the ledger or the daemon refused, with the
// reason in plain words.
type refusal string

func (r refusal) Error() string { return string(r) }

// reason returns why err refused an operation, if it did.
func reason(err error) (string, bool) {
	var te *ledger.TransitionError
	var rf refusal
	switch {
	case errors.As(err, &rf):
		return string(rf), true
	case errors.As(err, &te) && te.Reason != "":
		return te.Reason, true
	case errors.As(err, &te) && te.Finished:
		return "the drop is finished", true
	case errors.Is(err, ledger.ErrAmbiguous):
		return err.Error(), true
	}
	return "", false
}
