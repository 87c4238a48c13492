package config

import (
	"cmp"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"usagedrop/internal/endpoint"
)

// NotifyEvents are the events a notice tells, in the order listed.
var NotifyEvents = []string{"rejected", "failed", "stuck"}

// Notify is what every source's notifications share.
type Notify struct {
	// PublicURL is the status page's address as its readers reach it
	// (https://usagedrop.example.com); a notice links to the drop's page
	// under it. Empty: notices carry no link.
	PublicURL string `yaml:"public_url"`
	// StuckAfter is how long a drop may go unfinished after it was seen
	// before it is told stuck, once; default 1h.
	StuckAfter Duration `yaml:"stuck_after"`
}

// NotifyTarget is one place a source's notices go: a webhook or a mail.
type NotifyTarget struct {
	// Name names the target in the ledger, the drop's history and the
	// log; default webhook-N or email-N, N its place in the list. Renaming
	// a target makes notices it has not had yet go out again to it.
	Name string `yaml:"name"`
	// Events are the events it is told of; default all of NotifyEvents.
	Events []string `yaml:"events"`
	// Webhook is the URL a JSON notice is posted to (Slack's incoming
	// webhooks, Teams' workflows, your own). It often carries a token,
	// so it prints redacted and only its host is logged.
	Webhook Secret `yaml:"webhook"`
	Email   *Email `yaml:"email"`
}

// Email is a notice by mail, sent through an SMTP server.
type Email struct {
	Server string `yaml:"server"`
	// Port defaults to 587 for starttls, 465 for tls and 25 for none.
	Port int `yaml:"port"`
	// TLS is starttls (the default), tls (implicit, port 465) or none,
	// which only a server on this machine may use.
	TLS string `yaml:"tls"`
	// User and PasswordFile log in to the server, when it asks.
	User         string   `yaml:"user"`
	PasswordFile string   `yaml:"password_file"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`

	// Password is what PasswordFile holds, once parsed.
	Password Secret `yaml:"-"`
}

// Kind is "webhook" or "email".
func (t NotifyTarget) Kind() string {
	if t.Email != nil {
		return "email"
	}
	return "webhook"
}

// Wants reports whether the target is told of event.
func (t NotifyTarget) Wants(event string) bool { return slices.Contains(t.Events, event) }

func (c *Config) notifyDefaults() {
	if c.Notify.StuckAfter == 0 {
		c.Notify.StuckAfter = Duration(time.Hour)
	}
	for i := range c.Sources {
		for j := range c.Sources[i].Notify {
			t := &c.Sources[i].Notify[j]
			if t.Name == "" {
				t.Name = fmt.Sprintf("%s-%d", t.Kind(), j+1)
			}
			if len(t.Events) == 0 {
				t.Events = slices.Clone(NotifyEvents)
			}
			if m := t.Email; m != nil {
				m.TLS = cmp.Or(strings.ToLower(m.TLS), "starttls")
				if m.Port == 0 {
					m.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[m.TLS]
				}
			}
		}
	}
}

// notify checks the notify section and every source's targets.
func (v *validator) notify() {
	n := v.c.Notify
	if n.PublicURL != "" {
		u, err := url.Parse(n.PublicURL)
		v.check(err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "", "notify.public_url",
			"must be the status page's URL as its readers reach it, e.g. https://usagedrop.example.com", n.PublicURL)
	}
	v.check(n.StuckAfter >= Duration(time.Minute), "notify.stuck_after", "must be at least 1m", time.Duration(n.StuckAfter))
	for i, s := range v.c.Sources {
		names := map[string]bool{}
		for j, t := range s.Notify {
			k := fmt.Sprintf("sources[%d].notify[%d]", i, j)
			v.check(!names[t.Name], k+".name", "is used by another target of this source", t.Name)
			names[t.Name] = true
			v.notifyTarget(k, t)
		}
	}
}

func (v *validator) notifyTarget(k string, t NotifyTarget) {
	v.check((t.Webhook == "") != (t.Email == nil), k, "needs either webhook or email (one per target)", t.Name)
	seen := map[string]bool{}
	for e, ev := range t.Events {
		key := fmt.Sprintf("%s.events[%d]", k, e)
		v.check(slices.Contains(NotifyEvents, ev), key, "must be one of "+strings.Join(NotifyEvents, ", "), ev)
		v.check(!seen[ev], key, "is listed twice", ev)
		seen[ev] = true
	}
	if t.Webhook != "" {
		// The URL itself is never quoted back: it may hold a token.
		_, err := endpoint.Secure(t.Webhook.Value())
		v.check(err == nil, k+".webhook", "must be an https URL (plain http only to this machine): "+
			"a webhook URL usually carries its token", t.Webhook)
	}
	if m := t.Email; m != nil {
		v.email(k+".email", *m)
	}
}

func (v *validator) email(k string, m Email) {
	v.check(m.Server != "" && !strings.ContainsAny(m.Server, ":/ "), k+".server", "must be the SMTP server's host name, without a port", m.Server)
	v.check(m.Port > 0 && m.Port < 65536, k+".port", "must be a port number", m.Port)
	v.check(slices.Contains([]string{"starttls", "tls", "none"}, m.TLS), k+".tls", "must be starttls, tls or none", m.TLS)
	v.check(m.TLS != "none" || endpoint.Loopback(m.Server), k+".tls",
		"none is only for a server on this machine: the mail and the password would travel in clear", m.TLS)
	v.check((m.User == "") == (m.PasswordFile == ""), k+".user", "user and password_file go together", m.User)
	if m.PasswordFile != "" {
		v.check(m.Password != "", k+".password_file", "must hold a password", m.PasswordFile)
	}
	v.check(validAddress(m.From), k+".from", "must be a mail address, e.g. usagedrop@example.com", m.From)
	v.check(len(m.To) > 0, k+".to", "must list at least one address", len(m.To))
	for i, to := range m.To {
		v.check(validAddress(to), fmt.Sprintf("%s.to[%d]", k, i), "must be a mail address, e.g. finance@example.com", to)
	}
}

// validAddress reports whether s is one plain address, as SMTP's MAIL
// FROM and RCPT TO take it: no display name, no line breaks.
func validAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}
