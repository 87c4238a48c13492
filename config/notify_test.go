package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func parseValid(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNotifyDefaults(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pw, []byte("mail-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := parseValid(t, `
sources:
  - name: partner
    type: local
    path: in
    notify:
      - webhook: https://hooks.example.com/services/T0/B0/tok3n
      - events: [rejected]
        email:
          server: smtp.example.com
          user: usagedrop
          password_file: `+pw+`
          from: usagedrop@example.com
          to: [finance@example.com]
      - name: ops
        email: {server: mail.example.com, tls: tls, from: a@example.com, to: [b@example.com]}
`)
	if c.Notify.StuckAfter != Duration(time.Hour) || c.Notify.PublicURL != "" {
		t.Fatalf("notify defaults: %+v", c.Notify)
	}
	ts := c.Sources[0].Notify
	if ts[0].Name != "webhook-1" || !slices.Equal(ts[0].Events, NotifyEvents) || ts[0].Kind() != "webhook" {
		t.Fatalf("webhook defaults: %+v", ts[0])
	}
	m := ts[1].Email
	if ts[1].Name != "email-2" || !ts[1].Wants("rejected") || ts[1].Wants("stuck") || m.TLS != "starttls" || m.Port != 587 || m.Password.Value() != "mail-s3cret" {
		t.Fatalf("email defaults: %+v %+v", ts[1], m)
	}
	if ts[2].Name != "ops" || ts[2].Email.Port != 465 {
		t.Fatalf("tls port: %+v", ts[2].Email)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"tok3n", "mail-s3cret"} {
		if strings.Contains(string(out), secret) {
			t.Fatalf("printed config leaks %q:\n%s", secret, out)
		}
	}
}

func TestNotifyValidation(t *testing.T) {
	src := "sources:\n  - name: a\n    type: local\n    path: x\n    notify:\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"neither", src + "      - name: x\n", `line 6: sources[0].notify[0]: needs either webhook or email (one per target) (got "x")`},
		{"both", src + "      - webhook: https://h.example.com/x\n        email: {server: s, from: a@b.c, to: [d@e.f]}\n", "needs either webhook or email"},
		{"plain http webhook", src + "      - webhook: http://hooks.example.com/T/tok3n\n",
			`line 6: sources[0].notify[0].webhook: must be an https URL (plain http only to this machine): a webhook URL usually carries its token (got "**redacted**")`},
		{"unknown event", src + "      - webhook: https://h.example.com/x\n        events: [rejected, late]\n",
			`line 7: sources[0].notify[0].events[1]: must be one of rejected, failed, stuck (got "late")`},
		{"event twice", src + "      - webhook: https://h.example.com/x\n        events: [failed, failed]\n", `sources[0].notify[0].events[1]: is listed twice`},
		{"same name twice", src + "      - webhook: https://h.example.com/x\n      - {name: webhook-1, webhook: https://h.example.com/y}\n",
			`sources[0].notify[1].name: is used by another target of this source (got "webhook-1")`},
		{"no recipients", src + "      - email: {server: s.example.com, from: a@example.com}\n", `sources[0].notify[0].email.to: must list at least one address (got "0")`},
		{"bad recipient", src + "      - email: {server: s.example.com, from: a@example.com, to: [\"Finance <f@example.com>\"]}\n",
			`sources[0].notify[0].email.to[0]: must be a mail address, e.g. finance@example.com (got "Finance <f@example.com>")`},
		{"bad from", src + "      - email: {server: s.example.com, from: nobody, to: [f@example.com]}\n", `sources[0].notify[0].email.from: must be a mail address`},
		{"server with port", src + "      - email: {server: \"s.example.com:25\", from: a@example.com, to: [f@example.com]}\n",
			`sources[0].notify[0].email.server: must be the SMTP server's host name, without a port`},
		{"clear text to another machine", src + "      - email: {server: s.example.com, tls: none, from: a@example.com, to: [f@example.com]}\n",
			`sources[0].notify[0].email.tls: none is only for a server on this machine`},
		{"unknown tls", src + "      - email: {server: s.example.com, tls: ssl, from: a@example.com, to: [f@example.com]}\n",
			`sources[0].notify[0].email.tls: must be starttls, tls or none (got "ssl")`},
		{"user without password", src + "      - email: {server: s.example.com, user: u, from: a@example.com, to: [f@example.com]}\n",
			`sources[0].notify[0].email.user: user and password_file go together (got "u")`},
		{"public url", "notify:\n  public_url: usagedrop.example.com\n" + src + "      - webhook: https://h.example.com/x\n",
			`line 2: notify.public_url: must be the status page's URL as its readers reach it`},
		{"stuck after", "notify:\n  stuck_after: 10s\n" + src + "      - webhook: https://h.example.com/x\n",
			`line 2: notify.stuck_after: must be at least 1m (got "10s")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "tok3n") {
				t.Fatalf("the error quotes the webhook's token: %v", err)
			}
		})
	}
	// Loopback may be plain: a relay or a receiver on this machine.
	parseValid(t, src+"      - webhook: http://127.0.0.1:9000/hook\n      - email: {server: localhost, tls: none, from: a@example.com, to: [f@example.com]}\n")
}
