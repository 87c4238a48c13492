package uploader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"usagedrop/zuorasim"
)

// A token refused even after a fresh one was fetched (tokens expiring
// faster than a call, or revoked again) says nothing wrong of the
// request, which was not taken: the call's error is retryable, so the
// drop waits for Zuora instead of failing. Found by the pipeline's fault
// test with tokens expiring every 20 ms: a drop failed on "HTTP 401:
// Authentication error" with half its object API records created.
func TestRefusedFreshTokenIsRetryable(t *testing.T) {
	r := newRig(t, zuorasim.Options{TokenTTL: time.Nanosecond}, nil)
	_, err := r.fi.Status(context.Background(), Receipt{ImportID: "0123456789abcdef0123456789abcdef"})
	var e *Error
	if !errors.As(err, &e) || e.HTTPStatus != http.StatusUnauthorized || !e.Retryable {
		t.Fatalf("err = %#v, want a retryable 401", err)
	}
	if n := r.sim.TokensIssued(); n < 3 {
		t.Fatalf("%d tokens fetched, want a new one for each attempt after a 401", n)
	}
}

// The same for SOAP: a call refused INVALID_SESSION again after a new
// login is retryable, never final.
func TestRefusedFreshSessionIsRetryable(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	var logins atomic.Int32
	// Every session expires before its first use: only a login passes.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if bytes.Contains(body, []byte("<api:login>")) {
			logins.Add(1)
			req.Body = io.NopCloser(bytes.NewReader(body))
			r.sim.ServeHTTP(w, req)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault>`+
			`<faultcode>fns:INVALID_SESSION</faultcode><faultstring>Invalid session</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`)
	}))
	t.Cleanup(srv.Close)
	s := NewSOAPImport(r.cl, srv.URL+"/apps/services/a/119.0", "usagedrop", "s3cret-value")
	_, _, err := s.Find(context.Background(), "usage.csv")
	var e *Error
	if !errors.As(err, &e) || e.Code != "INVALID_SESSION" || !e.Retryable {
		t.Fatalf("err = %#v, want a retryable INVALID_SESSION", err)
	}
	if n := logins.Load(); n != 2 {
		t.Fatalf("%d logins, want 2: the first session and one more after INVALID_SESSION", n)
	}
	if strings.Contains(r.logs.String(), "s3cret-value") {
		t.Fatal("the password reached the log")
	}
}
