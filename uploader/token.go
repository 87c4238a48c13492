package uploader

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// tokenMargin is how long before its expiry a token is replaced, so that a
// call never starts with a token about to die; short-lived tokens (tests,
// odd tenants) are replaced when a quarter of their life is left.
const tokenMargin = 5 * time.Minute

// bearer returns a valid OAuth token, fetching one when none is cached or
// the cached one is near its end. Callers wait for one fetch in flight
// rather than each asking Zuora, whose token endpoint is rate limited.
func (c *Client) bearer(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.expires) {
		return c.token, nil
	}
	tok, ttl, err := c.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	margin := min(tokenMargin, ttl/4)
	c.token, c.expires = tok, time.Now().Add(ttl-margin)
	c.log.Debug("zuora token fetched", "expires_in", ttl)
	return c.token, nil
}

// dropToken forgets the cached token after Zuora refused it.
func (c *Client) dropToken() {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
}

// fetchToken asks Zuora for a token with the client credentials. The token
// and the secret never appear in an error or a log.
func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"grant_type":    {"client_credentials"},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.resolve("/oauth/token"), strings.NewReader(form))
	if err != nil {
		return "", 0, &Error{Op: "token", Message: err.Error(), Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "usagedrop")
	track := newTrackID()
	req.Header.Set("Zuora-Track-Id", track)
	release, err := c.acquire(ctx, "token")
	if err != nil {
		return "", 0, err
	}
	defer release()
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", 0, &Error{Op: "token", Message: redactURL(err), Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	c.log.Debug("zuora call", "op", "token", "status", resp.StatusCode,
		"request_id", resp.Header.Get("Zuora-Request-Id"), "track_id", track)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	if err != nil {
		return "", 0, &Error{Op: "token", HTTPStatus: resp.StatusCode, Message: "reading the answer: " + err.Error(), Retryable: true, Err: err}
	}
	if e := classify("token", resp, body); e != nil {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest {
			e.Message = fmt.Sprintf("Zuora refused the client credentials of client %q: %s", c.cfg.ClientID, e.Message)
		}
		return "", 0, e
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", 0, &Error{Op: "token", HTTPStatus: resp.StatusCode, Message: "the token answer has no access_token"}
	}
	ttl := time.Duration(tok.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	return tok.AccessToken, ttl, nil
}

// CheckToken asks Zuora for a token once, without retries or the cache,
// for `usagedrop test`: an error says why Zuora refused or could not be
// reached, and never holds the secret.
func (c *Client) CheckToken(ctx context.Context) error {
	_, _, err := c.fetchToken(ctx)
	return err
}
