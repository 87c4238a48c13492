package pipeline

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ZuoraWatch sees every HTTP request to Zuora, as the client's transport:
// it counts them by operation and status code, and remembers since when
// Zuora has not answered and the last failure, for /readyz and systemd's
// STATUS=. It reads only the method, the path and the status: never a
// header or a body, so no token or secret passes through it.
type ZuoraWatch struct {
	next    http.RoundTripper
	metrics *Metrics

	mu           sync.Mutex
	failingSince time.Time // zero while Zuora answers
	lastErr      string
	lastErrAt    time.Time
}

// NewZuoraWatch wraps next (nil: http.DefaultTransport), counting into m
// (nil: not counted).
func NewZuoraWatch(next http.RoundTripper, m *Metrics) *ZuoraWatch {
	if next == nil {
		next = http.DefaultTransport
	}
	return &ZuoraWatch{next: next, metrics: m}
}

// RoundTrip sends req and records what came back.
func (z *ZuoraWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	op := zuoraOp(req.Method, req.URL.Path)
	resp, err := z.next.RoundTrip(req)
	now := time.Now()
	z.mu.Lock()
	defer z.mu.Unlock()
	switch {
	case err != nil:
		z.metrics.zuoraRequest(op, "error")
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said once, by op
		}
		z.failed(now, fmt.Sprintf("%s: no answer: %v", op, err))
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		z.metrics.zuoraRequest(op, strconv.Itoa(resp.StatusCode))
		z.failed(now, fmt.Sprintf("%s: %s", op, resp.Status))
	default:
		z.metrics.zuoraRequest(op, strconv.Itoa(resp.StatusCode))
		z.failingSince = time.Time{}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			// An answer, but one that stops every drop: worth showing.
			z.lastErr, z.lastErrAt = fmt.Sprintf("%s: %s", op, resp.Status), now
		}
	}
	return resp, err
}

// failed records a call that got no useful answer. z.mu is held.
func (z *ZuoraWatch) failed(now time.Time, msg string) {
	if z.failingSince.IsZero() {
		z.failingSince = now
	}
	z.lastErr, z.lastErrAt = msg, now
}

// Unreachable returns since when every call to Zuora has failed without
// an answer (refused, timed out, a 5xx or a 429), or the zero time when
// the last call was answered.
func (z *ZuoraWatch) Unreachable() time.Time {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.failingSince
}

// LastError returns the last failed call and when it failed, or "".
func (z *ZuoraWatch) LastError() (string, time.Time) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.lastErr, z.lastErrAt
}

// zuoraOp names the operation of a request to Zuora by its method and
// path, as the uploader's calls do.
func zuoraOp(method, path string) string {
	switch {
	case strings.HasSuffix(path, "/oauth/token"):
		return "token"
	case strings.Contains(path, "/apps/services/"):
		return "soap"
	case strings.Contains(path, "/usage/bulk/"):
		return "mediation"
	case strings.HasSuffix(path, "/v1/action/query"):
		return "find"
	case strings.Contains(path, "/v1/object/import/"):
		return "import"
	case strings.Contains(path, "/v1/object/usage"):
		return "object"
	case method == http.MethodPost && strings.HasSuffix(path, "/v1/usage"):
		return "submit"
	case method == http.MethodGet && strings.Contains(path, "/v1/usage/"):
		return "status"
	}
	return "other"
}
