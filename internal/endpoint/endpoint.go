// Package endpoint holds the rules for the URLs usagedrop sends secrets
// to and the addresses it listens on: plain http only to this machine,
// and a server's redirect of us to another URL only within the domain we
// were configured with. config checks them at start; the uploader checks
// what Zuora answers at run time; both call here, so the rule is one.
package endpoint

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Loopback reports whether host (a name or an IP, without a port) is this
// machine: localhost, 127.0.0.0/8 or ::1.
func Loopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ListenLoopback reports whether a listen address such as
// "127.0.0.1:8321" only accepts connections from this machine. An
// address without a host (":8321") listens on every interface.
func ListenLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && Loopback(host)
}

// Secure returns an error unless raw is an absolute https URL, or an http
// URL to a loopback host: anything else would carry a client secret, a
// password or a session in clear over the network.
func Secure(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if Loopback(u.Hostname()) {
			return u, nil
		}
		return nil, fmt.Errorf("%q is plain http to another machine: secrets would travel in clear; use https", raw)
	}
	return nil, fmt.Errorf("%q is not an https URL", raw)
}

// SameSite returns an error unless other is Secure and on the same site
// as base: the same registrable domain (any host under zuora.com for a
// zuora.com base), or for a loopback or IP base the very same host and
// port. A server that points us elsewhere is not followed, since what we
// send next carries the session.
func SameSite(base, other string) error {
	b, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("base %q: %w", base, err)
	}
	o, err := Secure(other)
	if err != nil {
		return err
	}
	bh, oh := strings.ToLower(b.Hostname()), strings.ToLower(o.Hostname())
	if Loopback(bh) || net.ParseIP(bh) != nil {
		if strings.EqualFold(b.Host, o.Host) {
			return nil
		}
		return fmt.Errorf("%q is not on %s", other, b.Host)
	}
	bd, err := publicsuffix.EffectiveTLDPlusOne(bh)
	if err != nil {
		bd = bh
	}
	if oh == bd || strings.HasSuffix(oh, "."+bd) {
		return nil
	}
	return fmt.Errorf("%q is not on %s", other, bd)
}
