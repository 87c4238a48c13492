package uploader

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/zuorasim"
)

func TestTokenCachedAndRefreshed(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	ctx := context.Background()
	p := part(t, "usage.csv", tinyCSV)
	for i := range 3 {
		rc, err := r.fi.Submit(ctx, p, "k"+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		r.wait(t, rc)
	}
	if n := r.sim.TokensIssued(); n != 1 {
		t.Fatalf("%d tokens fetched for several calls, want 1 (cached)", n)
	}
	// The tenant revokes every token: the next call gets 401, fetches a
	// new token once and succeeds.
	r.sim.SetFaults(zuorasim.Faults{ExpireTokens: true})
	if _, err := r.fi.Submit(ctx, p, "after-expiry"); err != nil {
		t.Fatal(err)
	}
	if n := r.sim.TokensIssued(); n != 2 {
		t.Fatalf("%d tokens after a 401, want 2", n)
	}
	if strings.Contains(r.logs.String(), "Bearer") {
		t.Fatal("a bearer token reached the log")
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	r := newRig(t, zuorasim.Options{TokenTTL: time.Second}, nil)
	ctx := context.Background()
	if _, _, err := r.fi.Find(ctx, "x.csv"); err != nil {
		t.Fatal(err)
	}
	// A quarter of a one-second life is the margin: at 800ms the token is
	// still valid at Zuora but is replaced before use.
	time.Sleep(800 * time.Millisecond)
	if _, _, err := r.fi.Find(ctx, "x.csv"); err != nil {
		t.Fatal(err)
	}
	if n := r.sim.TokensIssued(); n != 2 {
		t.Fatalf("%d tokens, want 2 (renewed before expiry)", n)
	}
}

func TestBadCredentialsAreFinal(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, func(c *Config) { c.ClientSecret = "wrong-secret" })
	_, _, err := r.fi.Find(context.Background(), "x.csv")
	e := zerr(t, err)
	if e.Op != "token" || e.Retryable || e.HTTPStatus != http.StatusUnauthorized {
		t.Fatalf("error %+v, want a final token error", e)
	}
	if strings.Contains(e.Error(), "wrong-secret") {
		t.Fatal("the secret is in the error")
	}
	if n := r.sim.Requests(); n != 1 {
		t.Fatalf("%d requests, want 1: bad credentials are not retried", n)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		faults    zuorasim.Faults
		wantErr   bool
		retryable bool
		status    int
		minWait   time.Duration
	}{
		{name: "429 honours Retry-After", faults: zuorasim.Faults{TooManyRequests: 1, RetryAfter: time.Second}, minWait: time.Second},
		{name: "500 retried", faults: zuorasim.Faults{ServerErrors: 2}},
		// The sim's 500 carries category 60, retried only a few times.
		{name: "500 past the attempts", faults: zuorasim.Faults{ServerErrors: 10}, wantErr: true, retryable: true, status: 500},
		{name: "200 with success false", faults: zuorasim.Faults{Success200False: 1}, wantErr: true, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, zuorasim.Options{}, nil)
			p := part(t, "usage.csv", tinyCSV)
			// Fetch the token first so that the faults hit the upload.
			if _, _, err := r.fi.Find(context.Background(), "warm.csv"); err != nil {
				t.Fatal(err)
			}
			r.sim.SetFaults(tt.faults)
			start := time.Now()
			rc, err := r.fi.Submit(context.Background(), p, "key")
			if elapsed := time.Since(start); elapsed < tt.minWait {
				t.Errorf("retried after %v, before the %v asked for", elapsed, tt.minWait)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if st := r.wait(t, rc); st.State != Completed {
					t.Fatalf("status %+v", st)
				}
				return
			}
			e := zerr(t, err)
			if e.Retryable != tt.retryable || e.HTTPStatus != tt.status || (tt.retryable && !strings.Contains(e.Message, "after 3 attempts")) {
				t.Fatalf("error %+v, want status %d retryable %v", e, tt.status, tt.retryable)
			}
			if n := len(r.sim.Imports()); n != 0 {
				t.Fatalf("%d imports from a failed submit", n)
			}
		})
	}
}

func TestHeadersSent(t *testing.T) {
	sim := zuorasim.New(zuorasim.Options{ProcessingDelay: time.Millisecond})
	var mu sync.Mutex
	seen := map[string]http.Header{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		seen[req.URL.Path] = req.Header.Clone()
		mu.Unlock()
		sim.ServeHTTP(w, req)
	}))
	defer srv.Close()
	c := NewClient(Config{BaseURL: srv.URL + "/", ClientID: "id", ClientSecret: "s", EntityIDs: "e1", OrgIDs: "o1"})
	fi := NewFileImport(c)
	p := part(t, "usage.csv", tinyCSV)
	if _, err := fi.Submit(context.Background(), p, "hdr-key"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	up, tok := seen["/v1/usage"], seen["/oauth/token"]
	if up == nil || tok == nil {
		t.Fatalf("paths seen: %v", seen)
	}
	if up.Get("Idempotency-Key") != "hdr-key" || up.Get("Zuora-Track-Id") != trackIDFor("hdr-key") ||
		up.Get("Zuora-Entity-Ids") != "e1" || up.Get("Zuora-Org-Ids") != "o1" || !strings.HasPrefix(up.Get("Authorization"), "Bearer ") {
		up.Del("Authorization") // a test failure prints no token either
		t.Fatalf("upload headers %v", up)
	}
	if tok.Get("Authorization") != "" || !strings.HasPrefix(tok.Get("Zuora-Track-Id"), "usagedrop-") {
		t.Fatalf("token call headers %v: an Authorization header, or no track id", tok)
	}
}

func TestClassifyCodes(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		header    http.Header
		retryable bool
		code      string
		after     time.Duration
	}{
		{200, `{"success":true}`, nil, false, "", 0},
		{200, `{"success":false,"reasons":[{"code":53100320,"message":"bad"}]}`, nil, false, "53100320", 0},
		{200, `{"success":false,"reasons":[{"code":53100050,"message":"lock"}]}`, nil, true, "53100050", 0},
		{200, `{"Success":false,"Errors":[{"Code":"INVALID_VALUE","Message":"x"}]}`, nil, false, "INVALID_VALUE", 0},
		{400, `{"success":false,"reasons":[{"code":53100061,"message":"temp"}]}`, nil, false, "53100061", 0},
		{429, `{}`, http.Header{"Ratelimit-Reset": {"7"}, "Ratelimit-Remaining": {"0"}}, true, "", 7 * time.Second},
		{429, `{}`, http.Header{"Ratelimit-Reset": {"7"}, "Ratelimit-Remaining": {"12"}, "Concurrency-Limit-Remaining": {"0"}}, true, "", 0},
		{429, `{}`, http.Header{"Retry-After": {"2"}, "Ratelimit-Reset": {"7"}}, true, "", 2 * time.Second},
		{500, `{"success":false,"reasons":[{"code":50000060,"message":"oops"}]}`, nil, true, "50000060", 0},
		// A server error is never final by itself, whatever its code.
		{500, `{"success":false,"reasons":[{"code":50000020,"message":"bad field"}]}`, nil, true, "50000020", 0},
		{500, `{"Success":false,"Errors":[{"Code":"UNKNOWN_ERROR","Message":"x"}]}`, nil, true, "UNKNOWN_ERROR", 0},
		{502, `<html>bad gateway</html>`, nil, true, "", 0},
		{503, ``, nil, true, "", 0},
		{503, ``, http.Header{"Ratelimit-Reset": {"60"}}, true, "", 0},
		{503, ``, http.Header{"Retry-After": {"3"}}, true, "", 3 * time.Second},
		{404, `{"message":"not found"}`, nil, false, "", 0},
		{409, `{}`, nil, true, "", 0},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: tt.header}
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		e := classify("op", resp, []byte(tt.body))
		if tt.status == 200 && tt.code == "" {
			if e != nil {
				t.Errorf("%d %s: %v, want success", tt.status, tt.body, e)
			}
			continue
		}
		if e == nil || e.Retryable != tt.retryable || e.Code != tt.code || e.RetryAfter != tt.after {
			t.Errorf("%d %s: %+v, want retryable %v code %q after %v", tt.status, tt.body, e, tt.retryable, tt.code, tt.after)
		}
	}
}

func TestTokenStaysOnOurHost(t *testing.T) {
	c := NewClient(Config{BaseURL: "https://rest.apisandbox.zuora.com/"})
	tests := []struct{ in, want string }{
		{"/v1/usage/abc/status", "https://rest.apisandbox.zuora.com/v1/usage/abc/status"},
		{"v1/usage/abc/status", "https://rest.apisandbox.zuora.com/v1/usage/abc/status"},
		{"https://REST.apisandbox.zuora.com/v1/usage/abc/status", "https://REST.apisandbox.zuora.com/v1/usage/abc/status"},
		{"https://evil.example/v1/usage/abc/status?x=1", "https://rest.apisandbox.zuora.com/v1/usage/abc/status?x=1"},
	}
	for _, tt := range tests {
		if got := c.onOurHost(tt.in); got != tt.want {
			t.Errorf("onOurHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// A receipt from elsewhere (an old configuration, a hand edit)
	// pointing at another host is polled on ours.
	r := newRig(t, zuorasim.Options{}, nil)
	rc, err := r.fi.Submit(context.Background(), part(t, "a.csv", tinyCSV), "k")
	if err != nil {
		t.Fatal(err)
	}
	rc.StatusURL = strings.Replace(rc.StatusURL, r.srv.URL, "http://127.0.0.2:1", 1)
	if st := r.wait(t, rc); st.State != Completed {
		t.Fatalf("status %+v", st)
	}
	// The client itself never attaches the token to another host.
	_, err = r.cl.do(context.Background(), call{op: "status", method: http.MethodGet, url: "http://127.0.0.2:1/v1/usage/x/status"})
	if e := zerr(t, err); e.Retryable || !strings.Contains(e.Message, "refusing to send the token") {
		t.Fatalf("error %+v", e)
	}
}

func TestRateLimitWindow(t *testing.T) {
	r := newRig(t, zuorasim.Options{RequestsPerWindow: 3, RateWindow: 2 * time.Second}, nil)
	start := time.Now()
	// A token and three uploads: the third upload is the fourth request of
	// the window and waits for the next one.
	for i := range 3 {
		if _, err := r.fi.Submit(context.Background(), part(t, "usage.csv", tinyCSV), "rate-"+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Fatalf("done in %v: the rate limit was not met or not honoured", elapsed)
	}
	if n := len(r.sim.Imports()); n != 3 {
		t.Fatalf("%d imports, want 3", n)
	}
	if !strings.Contains(r.logs.String(), "status=429") {
		t.Fatalf("no 429 in the logs:\n%s", r.logs)
	}
}
