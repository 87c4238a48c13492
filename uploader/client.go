package uploader

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the REST host, e.g. https://rest.apisandbox.zuora.com, or
	// a zuorasim server's URL.
	BaseURL      string
	ClientID     string
	ClientSecret string
	// HTTPClient sends the requests. Nil means a client that gives up on a
	// call after 150 s, a little longer than Zuora's own 120 s limit, so
	// that Zuora's answer, not ours, ends a slow call.
	HTTPClient *http.Client
	// EntityIDs and OrgIDs are sent as Zuora-Entity-Ids and Zuora-Org-Ids
	// for multi-entity and multi-org tenants.
	EntityIDs string
	OrgIDs    string
	// WSDLVersion is sent as X-Zuora-WSDL-Version on REST calls; a template
	// with PRODUCT_RATE_PLAN_CHARGE_ID needs "146" or higher. Empty sends
	// none, and the tenant's default applies.
	WSDLVersion string
	// MaxAttempts bounds the attempts of one call, the first included.
	// Zero means 6.
	MaxAttempts int
	// BackoffBase and BackoffCap shape the wait between attempts, with
	// full jitter: random(0, min(cap, base·2^n)). Zero means 1s and 60s.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// Limiter bounds the requests in flight (and their rate); every
	// attempt, token requests included, goes through it. Nil means none.
	Limiter Limiter
	Logger  *slog.Logger
}

// Client makes calls to one Zuora tenant: it holds the OAuth token, sets
// the tracking headers, and retries what Zuora says may be retried. It is
// safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client
	log  *slog.Logger

	mu      sync.Mutex // held while a token is fetched, so that one fetch serves all
	token   string
	expires time.Time
}

// NewClient returns a Client for cfg, with defaults filled in. It does not
// talk to Zuora until the first call.
func NewClient(cfg Config) *Client {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.BackoffCap <= 0 {
		cfg.BackoffCap = time.Minute
	}
	c := &Client{cfg: cfg, hc: cfg.HTTPClient, log: cfg.Logger}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 150 * time.Second}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.base, _ = url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if c.base == nil {
		c.base = &url.URL{}
	}
	return c
}

// call is one logical call to Zuora, made of one or more attempts.
type call struct {
	op     string // for errors and logs: "submit", "status", ...
	method string
	url    string // absolute, or a path below BaseURL
	// body returns a fresh body for each attempt, its Content-Type and
	// length (-1 when unknown); nil means no body.
	body           bodyFunc
	idempotencyKey string
	trackID        string // generated when empty
	// soap marks a SOAP call: no bearer token (the session rides in the
	// envelope) and SOAP faults read instead of JSON errors.
	soap bool
	// attempts overrides Config.MaxAttempts; 1 for a call that is not safe
	// to send twice.
	attempts int
	// wsdl is the lowest X-Zuora-WSDL-Version this call needs (a field
	// that only exists from that version on); the higher of it and
	// Config.WSDLVersion is sent.
	wsdl string
}

// newerWSDL returns the higher of two WSDL versions ("114", "146.0"), or
// the one given when the other is empty.
func newerWSDL(a, b string) string {
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	switch {
	case errA != nil:
		return b
	case errB != nil || fa >= fb:
		return a
	}
	return b
}

// reply is Zuora's answer to a call.
type reply struct {
	status    int
	body      []byte
	requestID string
	trackID   string
}

// maxReplyBody bounds what is read of an answer: Zuora's JSON answers are
// small, and a proxy's error page must not fill memory.
const maxReplyBody = 4 << 20

// do makes the call, retrying what may be retried, and returns the answer
// of a successful attempt (2xx whose body does not say success:false). A
// 409 is returned at once as a retryable *Error, for the caller decides
// what a conflict on its idempotency key means.
func (c *Client) do(ctx context.Context, cl call) (*reply, error) {
	if cl.trackID == "" {
		cl.trackID = newTrackID()
	}
	refreshed := false
	var last *Error
	attempts := cmp.Or(cl.attempts, c.cfg.MaxAttempts)
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, attempt-1, last.RetryAfter); err != nil {
				return nil, err
			}
		}
		rep, err := c.attempt(ctx, cl)
		if err == nil {
			return rep, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("zuora %s: %w", cl.op, ctx.Err())
		}
		if !errors.As(err, &last) {
			return nil, err
		}
		if last.HTTPStatus == http.StatusUnauthorized && last.Op != "token" && !cl.soap {
			// The token may have been revoked or expired early: fetch a
			// new one, at once the first time. A 401 says nothing wrong
			// of the request, which was not taken, so one that persists
			// is retried and waited out like an outage, never held
			// against the file.
			c.dropToken()
			last.Retryable = true
			if !refreshed {
				refreshed = true
				attempt--
				last.RetryAfter = 0
				continue
			}
		}
		if !last.Retryable || last.HTTPStatus == http.StatusConflict {
			return nil, last
		}
		if attempt+1 == attempts || !retryCategory(last, attempt) {
			if attempt > 0 {
				last.Message = fmt.Sprintf("%s (after %d attempts)", last.Message, attempt+1)
			}
			return nil, last
		}
		c.log.Warn("zuora call failed, will retry", "op", cl.op, "attempt", attempt+1, "status", last.HTTPStatus,
			"code", last.Code, "error", last.Message, "track_id", cl.trackID)
	}
	return nil, &Error{Op: cl.op, Message: "no attempt was made"}
}

// retryCategory limits the retries of Zuora's error categories 60 and 99
// (internal and integration errors) to a few; other retryable errors use
// every attempt.
func retryCategory(e *Error, attempt int) bool {
	if cat := category(e.Code); cat == "60" || cat == "99" {
		return attempt < 2
	}
	return true
}

// attempt sends the call once.
func (c *Client) attempt(ctx context.Context, cl call) (*reply, error) {
	req, err := c.newRequest(ctx, cl)
	if err != nil {
		return nil, err
	}
	if !cl.soap {
		if err := c.authorize(ctx, cl.op, req); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	// The slot is taken after the token, which takes one of its own: a
	// limit of one must not wait for itself.
	release, err := c.acquire(ctx, cl.op)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	defer release()
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		// Whether the request reached Zuora is unknown; sending it again
		// is safe because every call that changes anything carries an
		// idempotency key. A part that changed on disk is final.
		return nil, &Error{Op: cl.op, Message: redactURL(err), Retryable: !errors.Is(err, errPartChanged), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	rep := &reply{status: resp.StatusCode, body: body, requestID: resp.Header.Get("Zuora-Request-Id"), trackID: cl.trackID}
	c.log.Debug("zuora call", "op", cl.op, "method", cl.method, "status", resp.StatusCode,
		"request_id", rep.requestID, "track_id", cl.trackID, "elapsed", time.Since(start))
	if err != nil {
		// The answer was cut off: whether the call took effect is unknown,
		// which is what idempotency keys are for.
		return nil, &Error{Op: cl.op, HTTPStatus: resp.StatusCode, Message: "reading the answer: " + err.Error(), Retryable: true, Err: err}
	}
	judge := classify
	if cl.soap {
		judge = classifySOAP
	}
	if e := judge(cl.op, resp, body); e != nil {
		c.log.Info("zuora call refused", "op", cl.op, "status", resp.StatusCode, "code", e.Code, "error", e.Message,
			"request_id", rep.requestID, "track_id", cl.trackID)
		return nil, e
	}
	return rep, nil
}

// authorize puts the bearer token on a REST request, which must go to the
// configured host: the token is never sent anywhere else.
func (c *Client) authorize(ctx context.Context, op string, req *http.Request) error {
	if !strings.EqualFold(req.URL.Host, c.base.Host) {
		return &Error{Op: op, Message: fmt.Sprintf("refusing to send the token to %s, not the configured %s", req.URL.Host, c.base.Host)}
	}
	token, err := c.bearer(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return nil
}

// newRequest builds the HTTP request for one attempt of cl.
func (c *Client) newRequest(ctx context.Context, cl call) (*http.Request, error) {
	var (
		body   io.ReadCloser
		ctype  string
		length int64
	)
	if cl.body != nil {
		var err error
		if body, ctype, length, err = cl.body(); err != nil {
			return nil, &Error{Op: cl.op, Message: err.Error(), Err: err}
		}
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.resolve(cl.url), body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, &Error{Op: cl.op, Message: err.Error(), Err: err}
	}
	if body != nil {
		req.ContentLength = length
		req.Header.Set("Content-Type", ctype)
	}
	if !cl.soap {
		req.Header.Set("Accept", "application/json")
	} else {
		// The SOAP 1.1 HTTP binding requires the header, empty or not;
		// Zuora's calls name no action.
		req.Header.Set("SOAPAction", `""`)
	}
	req.Header.Set("User-Agent", "usagedrop")
	req.Header.Set("Zuora-Track-Id", cl.trackID)
	if cl.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", cl.idempotencyKey)
	}
	if c.cfg.EntityIDs != "" {
		req.Header.Set("Zuora-Entity-Ids", c.cfg.EntityIDs)
	}
	if c.cfg.OrgIDs != "" {
		req.Header.Set("Zuora-Org-Ids", c.cfg.OrgIDs)
	}
	if v := newerWSDL(c.cfg.WSDLVersion, cl.wsdl); v != "" && !cl.soap {
		req.Header.Set("X-Zuora-WSDL-Version", v)
	}
	return req, nil
}

// resolve turns a path from Zuora into an absolute URL on the configured
// host. An absolute URL is kept as Zuora gave it.
func (c *Client) resolve(ref string) string {
	u, err := url.Parse(ref)
	if err != nil || u.IsAbs() {
		return ref
	}
	abs := *c.base
	abs.Path = c.base.Path + "/" + strings.TrimLeft(u.Path, "/")
	abs.RawQuery = u.RawQuery
	return abs.String()
}

// onOurHost returns ref as an absolute URL on the configured host: a path
// is resolved, and an absolute URL on another host keeps its path but
// takes our host, so that the bearer token never goes anywhere but the
// tenant it was issued for.
func (c *Client) onOurHost(ref string) string {
	u, err := url.Parse(ref)
	if err != nil || !u.IsAbs() || strings.EqualFold(u.Host, c.base.Host) {
		return c.resolve(ref)
	}
	c.log.Warn("zuora gave a URL on another host; using its path on ours", "host", u.Host, "path", u.Path)
	return c.resolve(u.RequestURI())
}

// sleep waits before attempt n+1: what Zuora asked for, if it did, else a
// full-jitter backoff.
func (c *Client) sleep(ctx context.Context, n int, retryAfter time.Duration) error {
	d := retryAfter
	if d <= 0 {
		ceiling := min(c.cfg.BackoffCap, time.Duration(float64(c.cfg.BackoffBase)*math.Pow(2, float64(n))))
		d = time.Duration(mrand.Int64N(int64(ceiling) + 1))
	}
	return sleepCtx(ctx, d)
}

// classify turns an answer into an *Error, or nil when it is a success.
func classify(op string, resp *http.Response, body []byte) *Error {
	zerr := parseZuoraError(body)
	status := resp.StatusCode
	if status >= 200 && status < 300 {
		if zerr.success == nil || *zerr.success {
			return nil
		}
		e := &Error{Op: op, HTTPStatus: status, Code: zerr.code, Message: zerr.messageOr("Zuora answered success:false")}
		e.Retryable = retryableCode(zerr.code)
		return e
	}
	e := &Error{Op: op, HTTPStatus: status, Code: zerr.code, Message: zerr.messageOr(http.StatusText(status))}
	e.Message = fmt.Sprintf("HTTP %d: %s", status, e.Message)
	switch {
	case status == http.StatusTooManyRequests:
		e.Retryable = true
		e.RetryAfter = retryAfter(resp.Header, true)
	case status == http.StatusConflict, status == http.StatusRequestTimeout:
		e.Retryable = true
	case status >= 500:
		// A server error is never final by itself, whatever code its body
		// carries (the object API and SOAP answer a bare UNKNOWN_ERROR):
		// nothing says the request was wrong, and every call that changes
		// anything carries an idempotency key or is looked up by name.
		e.Retryable = true
		e.RetryAfter = retryAfter(resp.Header, false)
	default:
		// A 4xx says the request is wrong; sending it again will not help,
		// whatever its code says.
		e.Retryable = false
	}
	return e
}

// retryAfter reads how long Zuora asks us to wait: Retry-After in seconds
// (or as a date), else, when the call was refused for the rate limit
// (ratelimit-remaining 0), ratelimit-reset. Zuora sends ratelimit-reset on
// every answer; it is when the rate window resets, which says nothing
// about a 500 or a 429 for the concurrency limit: those back off.
func retryAfter(h http.Header, rateLimited bool) time.Duration {
	names := []string{"Retry-After"}
	if rateLimited && strings.TrimSpace(h.Get("ratelimit-remaining")) == "0" {
		names = append(names, "ratelimit-reset")
	}
	for _, name := range names {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
			return time.Duration(secs * float64(time.Second))
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(time.Until(t), 0)
		}
	}
	return 0
}

// category returns the last two digits of an 8-digit Zuora error code,
// which name the kind of error.
func category(code string) string {
	if len(code) != 8 {
		return ""
	}
	if _, err := strconv.Atoi(code); err != nil {
		return ""
	}
	return code[6:]
}

// retryableCode reports whether Zuora's error code says a retry may work:
// lock contention (50), temporary error (61), over a limit (70), and
// internal or integration errors (60, 99), which do() retries only a few
// times. Codes in other categories, and codes that are not 8 digits, are
// final.
func retryableCode(code string) bool {
	switch category(code) {
	case "50", "61", "70", "60", "99":
		return true
	}
	return false
}

// zuoraError is what can be read of Zuora's many error bodies.
type zuoraError struct {
	success *bool
	code    string
	message string
}

func (z zuoraError) messageOr(def string) string {
	if z.message == "" {
		return def
	}
	return z.message
}

// parseZuoraError reads the shapes Zuora answers in: {"success":false,
// "reasons":[{code,message}]} (REST), {"Success":false,"Errors":[{Code,
// Message}]} (object API), {"message":...} (gateway, 401) and OAuth's
// {"error","error_description"}.
func parseZuoraError(body []byte) zuoraError {
	var raw struct {
		SuccessLower *bool  `json:"success"`
		SuccessUpper *bool  `json:"Success"`
		Message      string `json:"message"`
		Error        string `json:"error"`
		ErrorDesc    string `json:"error_description"`
		Reasons      []struct {
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
		} `json:"reasons"`
		Errors []struct {
			Code    json.RawMessage `json:"Code"`
			Message string          `json:"Message"`
		} `json:"Errors"`
	}
	var z zuoraError
	if json.Unmarshal(body, &raw) != nil {
		return z
	}
	z.success = raw.SuccessLower
	if z.success == nil {
		z.success = raw.SuccessUpper
	}
	var msgs []string
	for _, r := range raw.Reasons {
		z.code = cmp.Or(z.code, strings.Trim(string(r.Code), `"`))
		msgs = append(msgs, r.Message)
	}
	for _, r := range raw.Errors {
		z.code = cmp.Or(z.code, strings.Trim(string(r.Code), `"`))
		msgs = append(msgs, r.Message)
	}
	if raw.ErrorDesc != "" {
		msgs = append(msgs, raw.Error+": "+raw.ErrorDesc)
	}
	if raw.Message != "" {
		msgs = append(msgs, raw.Message)
	}
	z.message = strings.Join(msgs, "; ")
	return z
}

// newTrackID returns a Zuora-Track-Id: short, ASCII, none of : ; " '.
func newTrackID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "usagedrop-" + hex.EncodeToString(b[:])
}

// redactURL returns err's text without the query of any URL in it, so that
// nothing secret that rode in a URL reaches a log.
func redactURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		if perr == nil {
			u.RawQuery, u.User = "", nil
			return fmt.Sprintf("%s %s: %v", ue.Op, u.Redacted(), ue.Err)
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}
