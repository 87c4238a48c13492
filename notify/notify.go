// Package notify tells people what happened to their drops: a webhook
// (a JSON POST with a Slack-compatible "text") or a mail over SMTP, per
// source, when a drop is rejected, fails (at Zuora, or set aside), or is
// stuck, not finished long after it was dropped.
//
// The ledger is the outbox. The transaction that commits a Rejected or
// Failed outcome records the notice (ledger.Notice), and the Notifier
// records a stuck one (ledger.Store.Notify) when it finds a drop
// unfinished past config.Notify.StuckAfter. The Notifier reads the outbox,
// sends each notice to each target of the drop's source that wants its
// event, and then marks that target delivered, so a notice is sent once
// per event and target, across restarts.
//
// # Caveats
//
// A crash, or a stop, between a send and its mark in the ledger sends
// that notice to that target once more at the next start: at most one
// duplicate, never a loss. So does a send whose answer is lost (a
// timeout after the receiver took it), on the next try. Receivers that
// must not see one can dedupe on the drop_id and event fields.
//
// A failed send is tried again after a capped exponential backoff
// (Options.Backoff, BackoffMax), at most Options.MaxAttempts times (by
// default 10 over about 21 hours), and then dropped with an ERROR log
// line; an answer that says the request itself is wrong (a 4xx other
// than 408 and 429, an SMTP 5xx) is final at once. The Notifier runs in
// its own goroutine with its own timeout per send and a cap on sends at
// once: a receiver that hangs or refuses never holds up a drop.
//
// On a ledger a fleet of daemons shares (Leaser), every daemon's notifier
// sees the same outbox: each reads it through a lease on the notices it
// will send, so that one daemon sends a notice, and another only after
// the first stopped renewing its lease (it died): then at most once more,
// as after a crash. A notice is leased only by a daemon that has its
// drop's source.
//
// Webhook URLs usually carry a token: only their host is logged, kept in
// the ledger or shown, and a plain http URL is refused unless it is this
// machine (internal/endpoint). Redirects are not followed.
package notify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"usagedrop/config"
	"usagedrop/internal/endpoint"
	"usagedrop/internal/safetext"
	"usagedrop/ledger"
)

// Options configure a Notifier. Zero values take the defaults given.
type Options struct {
	Ledger  ledger.Store
	Sources []config.Source // each source's notify targets
	Notify  config.Notify   // public URL; stuck_after, zero telling no drop stuck
	Logger  *slog.Logger

	// Interval is how often the outbox is read; 2s.
	Interval time.Duration
	// StuckEvery is how often unfinished drops are looked at for being
	// stuck; a minute.
	StuckEvery time.Duration
	// Backoff is the wait after a first failed send, doubled after each
	// further one up to BackoffMax; 3m and 8h.
	Backoff, BackoffMax time.Duration
	// MaxAttempts is how many sends a notice gets per target before it
	// is dropped; 10.
	MaxAttempts int
	// Timeout bounds one send, connection and answer included; 10s.
	Timeout time.Duration
	// Parallel is how many sends may run at once; 4.
	Parallel int
	// RootCAs verifies webhook and SMTP servers; nil trusts the
	// system's.
	RootCAs *x509.CertPool
	// Hostname is given to SMTP servers in EHLO and in Message-IDs; the
	// machine's name.
	Hostname string
	// Instance names this daemon on the notices it leases from a shared
	// ledger; the host name.
	Instance string
}

// Leaser is a ledger a fleet of daemons shares (ledger/postgres): its
// notices are leased to one daemon's notifier at a time.
type Leaser interface {
	// LeaseNotices returns up to limit open notices of drops of sources
	// (or of drops gone from the ledger) that nobody else holds, leased
	// to holder for lease, its own leases renewed.
	LeaseNotices(holder string, sources []string, lease time.Duration, limit int) ([]ledger.Notice, error)
	// ReleaseNotices ends holder's leases.
	ReleaseNotices(holder string) error
}

// leaseBatch is how many notices one reading of a shared outbox leases.
const leaseBatch = 1000

// Notifier sends the ledger's notices. Run it in a goroutine of its own.
type Notifier struct {
	opt  Options
	log  *slog.Logger
	http *http.Client
	tls  *tls.Config

	// leaser is the ledger when a fleet shares it, holder this
	// notifier's name on its leases (the instance and a nonce, so that
	// a restarted daemon waits out its old leases like any other).
	leaser Leaser
	holder string

	mu      sync.Mutex
	targets map[string][]target // by source name
	sources []string            // every source configured, with targets or not
	notify  config.Notify
	busy    map[string]bool // key + "\x00" + target: a send under way
	// ended are the busy sends that have ended and recorded it. Only
	// deliver takes them out of busy, before it reads the outbox, so it
	// never starts a send from a reading older than the last one's mark.
	ended []string
	stuck map[string]bool // drops already told stuck, this run
}

// target is one configured receiver of a source's notices.
type target struct {
	name   string
	where  string // for logs: the webhook's host or the SMTP server
	events []string
	send   func(ctx context.Context, m *Message) error
}

// New returns a Notifier for opt; it sends nothing until Run.
func New(opt Options) (*Notifier, error) {
	opt.Interval = orDefault(opt.Interval, 2*time.Second)
	opt.StuckEvery = orDefault(opt.StuckEvery, time.Minute)
	opt.Backoff = orDefault(opt.Backoff, 3*time.Minute)
	opt.BackoffMax = orDefault(opt.BackoffMax, 8*time.Hour)
	opt.Timeout = orDefault(opt.Timeout, 10*time.Second)
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 10
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Hostname == "" {
		opt.Hostname, _ = os.Hostname()
	}
	if opt.Instance == "" {
		opt.Instance = opt.Hostname
	}
	n := &Notifier{
		opt: opt, log: opt.Logger.With("part", "notify"),
		tls:  &tls.Config{RootCAs: opt.RootCAs, MinVersion: tls.VersionTLS12},
		busy: map[string]bool{}, stuck: map[string]bool{},
	}
	if l, ok := opt.Ledger.(Leaser); ok {
		var nonce [6]byte
		rand.Read(nonce[:])
		n.leaser, n.holder = l, opt.Instance+"/"+hex.EncodeToString(nonce[:])
	}
	n.http = &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: n.tls, Proxy: http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: opt.Parallel, IdleConnTimeout: time.Minute,
		},
		// A redirect would send the notice somewhere not configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if err := n.Configure(opt.Sources, opt.Notify); err != nil {
		return nil, err
	}
	return n, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Configure replaces the targets, as when the configuration is read
// again. Notices not yet delivered go to the new targets.
func (n *Notifier) Configure(sources []config.Source, settings config.Notify) error {
	all := map[string][]target{}
	names := make([]string, 0, len(sources))
	for _, s := range sources {
		names = append(names, s.Name)
		for _, t := range s.Notify {
			tg, err := n.target(t)
			if err != nil {
				return fmt.Errorf("source %s: notify %s: %w", s.Name, t.Name, err)
			}
			all[s.Name] = append(all[s.Name], tg)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.targets, n.notify, n.sources = all, settings, names
	return nil
}

func (n *Notifier) target(t config.NotifyTarget) (target, error) {
	tg := target{name: t.Name, events: t.Events}
	if len(tg.events) == 0 {
		tg.events = config.NotifyEvents
	}
	if m := t.Email; m != nil {
		tg.where = "smtp " + net.JoinHostPort(m.Server, strconv.Itoa(m.Port))
		tg.send = func(ctx context.Context, msg *Message) error { return n.sendMail(ctx, *m, msg) }
		return tg, nil
	}
	u, err := endpoint.Secure(t.Webhook.Value())
	if err != nil {
		// The error quotes the URL: say which rule, not what it was.
		return tg, errors.New("webhook must be an https URL, or http to this machine")
	}
	tg.where = "webhook " + u.Host
	tg.send = func(ctx context.Context, msg *Message) error { return n.post(ctx, u, msg) }
	return tg, nil
}

// Run sends notices until ctx ends, then waits for the sends under way
// and gives up its leases on a shared outbox.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		if n.leaser != nil {
			if err := n.leaser.ReleaseNotices(n.holder); err != nil {
				n.log.Warn("giving up the notices held: another daemon sends them when the leases end", "err", err)
			}
		}
	}()
	sem := make(chan struct{}, n.opt.Parallel)
	tick := time.NewTicker(n.opt.Interval)
	defer tick.Stop()
	stuck := time.NewTicker(n.opt.StuckEvery)
	defer stuck.Stop()
	n.findStuck()
	n.deliver(ctx, &wg, sem)
	for {
		select {
		case <-ctx.Done():
			return
		case <-stuck.C:
			n.findStuck()
		case <-tick.C:
			n.deliver(ctx, &wg, sem)
		}
	}
}

// findStuck records a stuck notice for every drop unfinished past
// stuck_after whose source has a target for it.
func (n *Notifier) findStuck() {
	n.mu.Lock()
	after := time.Duration(n.notify.StuckAfter)
	n.mu.Unlock()
	if after <= 0 {
		return
	}
	active, err := n.opt.Ledger.Active()
	if err != nil {
		n.log.Warn("reading unfinished drops", "err", err)
		return
	}
	n.mu.Lock()
	told := make(map[string]bool, len(n.stuck))
	for _, e := range active {
		if n.stuck[e.ID] {
			told[e.ID] = true
		}
	}
	n.stuck = told // finished drops are forgotten
	n.mu.Unlock()
	for _, e := range active {
		if time.Since(e.Created) < after || n.wantedBy(e.Source, string(ledger.NoticeStuck)) == 0 {
			continue
		}
		n.mu.Lock()
		told := n.stuck[e.ID]
		n.stuck[e.ID] = true
		n.mu.Unlock()
		if told {
			continue
		}
		if _, err := n.opt.Ledger.Notify(e.ID, ledger.NoticeStuck); err != nil {
			n.log.Warn("recording a stuck notice", "id", e.ID, "err", err)
			n.mu.Lock()
			delete(n.stuck, e.ID)
			n.mu.Unlock()
		}
	}
}

// wantedBy counts the targets of source that are told of event.
func (n *Notifier) wantedBy(source, event string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, t := range n.targets[source] {
		if slices.Contains(t.events, event) {
			c++
		}
	}
	return c
}

// deliver starts a send for every notice and target that is due, as
// many as Parallel allows; the rest wait for the next tick.
func (n *Notifier) deliver(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}) {
	n.mu.Lock()
	for _, k := range n.ended {
		delete(n.busy, k)
	}
	n.ended = nil
	n.mu.Unlock()
	notices, err := n.outbox()
	if err != nil {
		n.log.Warn("reading the notices", "err", err)
		return
	}
	for _, no := range notices {
		e, err := n.opt.Ledger.Get(no.DropID)
		if errors.Is(err, ledger.ErrNotFound) {
			n.close(no.Key, "its drop is no longer in the ledger")
			continue
		}
		if err != nil {
			n.log.Warn("reading a notice's drop", "id", no.DropID, "err", err)
			continue
		}
		due := n.due(no, e.Source)
		if due == nil {
			n.close(no.Key, "")
			continue
		}
		msg := n.message(no, e)
		for _, t := range due {
			if !n.claim(no, t) {
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				n.end(no.Key, t.name)
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				defer n.end(no.Key, t.name)
				n.attempt(ctx, no, e.Source, t, msg)
			})
		}
	}
}

// outbox returns the notices to send: all the ledger's open ones, or on
// a shared ledger those this notifier holds the lease of. A lease lasts
// three send timeouts and is renewed at every reading, so it never ends
// while a send of it is under way.
func (n *Notifier) outbox() ([]ledger.Notice, error) {
	if n.leaser == nil {
		return n.opt.Ledger.Notices()
	}
	n.mu.Lock()
	sources := n.sources
	n.mu.Unlock()
	return n.leaser.LeaseNotices(n.holder, sources, 3*n.opt.Timeout+n.opt.Interval, leaseBatch)
}

// due returns the targets of source that still have notice no to get,
// or nil when none has: each got it or was given up.
func (n *Notifier) due(no ledger.Notice, source string) []target {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []target
	for _, t := range n.targets[source] {
		if d := no.Targets[t.name]; slices.Contains(t.events, string(no.Event)) && d.Done.IsZero() {
			out = append(out, t)
		}
	}
	return out
}

// claim marks a send of no to t under way, unless one is or it is not
// time yet.
func (n *Notifier) claim(no ledger.Notice, t target) bool {
	if time.Now().Before(no.Targets[t.name].NextTry) {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	k := no.Key + "\x00" + t.name
	if n.busy[k] {
		return false
	}
	n.busy[k] = true
	return true
}

// end notes that a send claimed has ended, its outcome recorded.
func (n *Notifier) end(key, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ended = append(n.ended, key+"\x00"+name)
}

// attempt sends notice no to t once and records what came of it.
func (n *Notifier) attempt(ctx context.Context, no ledger.Notice, source string, t target, msg *Message) {
	sctx, cancel := context.WithTimeout(ctx, n.opt.Timeout)
	err := t.send(sctx, msg)
	cancel()
	log := n.log.With("id", no.DropID, "event", no.Event, "target", t.name, "to", t.where)
	var rec *ledger.Notice
	tries := no.Targets[t.name].Attempts + 1
	var perm *permanent
	switch {
	case err == nil:
		rec, err = n.opt.Ledger.NoticeDelivered(no.Key, t.name)
		if err == nil {
			log.Info("notice sent")
		}
	case ctx.Err() != nil:
		// Stopping: the send is tried again at the next start.
		return
	case errors.As(err, &perm) || tries >= n.opt.MaxAttempts:
		why := err.Error()
		if perm == nil {
			why = fmt.Sprintf("%d tries failed, the last: %s", tries, why)
		}
		log.Error("notice dropped: it will not be sent", "tries", tries, "err", why)
		rec, err = n.opt.Ledger.NoticeGaveUp(no.Key, t.name, why)
	default:
		wait := n.backoff(tries, err)
		log.Warn("notice not sent; trying again", "try", tries, "retry_in", wait, "err", err)
		rec, err = n.opt.Ledger.NoticeTried(no.Key, t.name, err.Error(), time.Now().Add(wait))
	}
	if err != nil {
		n.log.Warn("recording a notice", "id", no.DropID, "target", t.name, "err", err)
		return
	}
	if n.due(*rec, source) == nil {
		n.close(no.Key, "")
	}
}

func (n *Notifier) close(key, why string) {
	if why != "" {
		n.log.Warn("notice closed unsent", "notice", key, "why", why)
	}
	if err := n.opt.Ledger.NoticeClosed(key); err != nil && !errors.Is(err, ledger.ErrNotFound) {
		n.log.Warn("closing a notice", "notice", key, "err", err)
	}
}

// backoff is the wait before try n+1: Backoff·2^(n-1) up to BackoffMax,
// or longer when the receiver asked for it (Retry-After), within
// BackoffMax as well.
func (n *Notifier) backoff(tries int, err error) time.Duration {
	d := min(n.opt.BackoffMax, n.opt.Backoff<<min(tries-1, 30))
	var ra *retryAfter
	if errors.As(err, &ra) {
		d = max(d, min(ra.d, n.opt.BackoffMax))
	}
	return d
}

// permanent is an answer that says the notice will never be taken as
// sent: trying again cannot help.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// retryAfter is a refusal that says when to come back.
type retryAfter struct {
	err error
	d   time.Duration
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// Message is what a notice says, as a webhook's JSON body; a mail says
// the same in text.
type Message struct {
	// Text is one line for a chat (Slack's and Mattermost's "text").
	Text      string    `json:"text"`
	Event     string    `json:"event"`
	Source    string    `json:"source"`
	Name      string    `json:"name"`
	DropID    string    `json:"drop_id"`
	State     string    `json:"state"`
	Problems  int       `json:"problems,omitempty"`
	ImportIDs []string  `json:"import_ids,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	URL       string    `json:"url,omitempty"`
	At        time.Time `json:"at"`

	subject, body string
}

// maxReason caps the reason a notice quotes: enough for the first problem
// in full, never a chat message of megabytes.
const maxReason = 1000

// message says what notice no tells about drop e.
func (n *Notifier) message(no ledger.Notice, e *ledger.Entry) *Message {
	n.mu.Lock()
	public := n.notify.PublicURL
	n.mu.Unlock()
	m := &Message{
		Event: string(no.Event), Source: e.Source, Name: safetext.Name(e.Name), DropID: e.ID,
		State: string(e.State), Problems: e.Problems, At: no.At,
	}
	for _, p := range e.Parts {
		if p.ImportID != "" {
			m.ImportIDs = append(m.ImportIDs, p.ImportID)
		}
	}
	if public != "" {
		m.URL = strings.TrimRight(public, "/") + "/drops/" + url.PathEscape(e.ID)
	}
	var what string
	switch no.Event {
	case ledger.NoticeRejected:
		m.Reason = strings.TrimPrefix(note(e, ledger.Rejected), "rejected: ")
		what = "was rejected; nothing was sent to Zuora"
	case ledger.NoticeFailed:
		m.Reason = cmp.Or(e.LastError, note(e, ledger.Failed))
		what = "could not be imported into Zuora"
	case ledger.NoticeStuck:
		m.Reason = cmp.Or(e.Waiting(), e.LastError)
		what = fmt.Sprintf("is not finished %s after it was dropped (%s)", roundAge(no.At.Sub(e.Created)), e.State)
	}
	m.Reason = safetext.Line(m.Reason, maxReason)
	m.Text = fmt.Sprintf("usagedrop: %s (source %s) %s", m.Name, m.Source, what)
	if m.Reason != "" {
		m.Text += ": " + m.Reason
	}
	if m.URL != "" {
		m.Text += " " + m.URL
	}
	m.subject = fmt.Sprintf("usagedrop: %s %s (%s)", m.Name, no.Event, m.Source)
	m.body = mailBody(m, what)
	// Slack reads &, < and > as markup.
	m.Text = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(m.Text)
	return m
}

// note is the note of e's first event in state s.
func note(e *ledger.Entry, s ledger.State) string {
	for _, ev := range e.History {
		if ev.State == s && ev.Note != "" {
			return ev.Note
		}
	}
	return ""
}

func roundAge(d time.Duration) time.Duration {
	if d >= time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

func mailBody(m *Message, what string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, dropped in %s, %s.\n\n", m.Name, m.Source, what)
	if m.Reason != "" {
		fmt.Fprintf(&b, "%s\n\n", m.Reason)
	}
	if m.Event == string(ledger.NoticeRejected) {
		b.WriteString("The file is moved to the failed folder, with a report beside it naming each problem's row and column. Fix the file and drop it again.\n\n")
	}
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-10s %s\n", k+":", v)
		}
	}
	row("File", m.Name)
	row("Source", m.Source)
	row("Drop", m.DropID)
	row("State", m.State)
	if m.Problems > 0 {
		row("Problems", strconv.Itoa(m.Problems))
	}
	row("Imports", strings.Join(m.ImportIDs, ", "))
	row("Details", m.URL)
	return b.String()
}

// post sends m to a webhook as JSON. Errors name the host, never the
// URL, which may carry a token.
func (n *Notifier) post(ctx context.Context, u *url.URL, m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return errors.New("webhook request could not be made")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "usagedrop")
	resp, err := n.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post to %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("%s answered %s: %s", u.Host, resp.Status, safetext.Line(strings.TrimSpace(string(snippet)), 200))
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			return &retryAfter{err: err, d: time.Duration(s) * time.Second}
		}
		return err
	case code == http.StatusRequestTimeout || code >= 500:
		return err
	}
	// The rest (4xx, a redirect) says the request or the URL is wrong.
	return &permanent{err}
}

// sendMail sends m through the SMTP server of c.
func (n *Notifier) sendMail(ctx context.Context, c config.Email, m *Message) error {
	addr := net.JoinHostPort(c.Server, strconv.Itoa(c.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// net/smtp takes no context: closing the connection ends a
	// conversation the daemon no longer waits for.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tc := n.tls.Clone()
	tc.ServerName = c.Server
	if c.TLS == "tls" {
		conn = tls.Client(conn, tc)
	}
	err = n.smtpSession(conn, c, tc, m)
	if err != nil {
		err = fmt.Errorf("smtp %s: %w", addr, err)
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 500 {
			return &permanent{err}
		}
	}
	return err
}

func (n *Notifier) smtpSession(conn net.Conn, c config.Email, tc *tls.Config, m *Message) error {
	cl, err := smtp.NewClient(conn, c.Server)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Hello(n.opt.Hostname); err != nil {
		return err
	}
	if c.TLS == "starttls" {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return &permanent{errors.New("the server does not offer STARTTLS (set tls: tls for port 465, or none for a relay on this machine)")}
		}
		if err := cl.StartTLS(tc); err != nil {
			return err
		}
	}
	if c.User != "" {
		// PlainAuth itself refuses to send the password in clear to
		// another machine.
		if err := cl.Auth(smtp.PlainAuth("", c.User, c.Password.Value(), c.Server)); err != nil {
			return err
		}
	}
	if err := cl.Mail(c.From); err != nil {
		return err
	}
	for _, to := range c.To {
		if err := cl.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(n.mail(c, m)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

// mail is m as an RFC 5322 message, its text quoted-printable so that
// any name and any line length pass every server.
func (n *Notifier) mail(c config.Email, m *Message) []byte {
	var id [12]byte
	rand.Read(id[:])
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", c.From)
	h("To", strings.Join(c.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", m.subject))
	h("Date", time.Now().Format(time.RFC1123Z))
	h("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+cmp.Or(n.opt.Hostname, "usagedrop")+">")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(m.body, "\n", "\r\n")))
	qp.Close()
	return b.Bytes()
}
