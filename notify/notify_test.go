package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"usagedrop/config"
	"usagedrop/ledger"
)

// hook is a webhook receiver on loopback that answers from a script
// (then 200) and keeps what it received.
type hook struct {
	srv *httptest.Server

	mu       sync.Mutex
	script   []int
	bodies   []Message
	seen     int // requests whose body arrived, answered or not
	inFlight int
	maxIn    int
	delay    time.Duration
}

func newHook(t *testing.T, script ...int) *hook {
	h := &hook{script: script}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.inFlight++
		h.maxIn = max(h.maxIn, h.inFlight)
		delay := h.delay
		code := http.StatusOK
		if len(h.script) > 0 {
			code, h.script = h.script[0], h.script[1:]
		}
		h.mu.Unlock()
		defer func() { h.mu.Lock(); h.inFlight--; h.mu.Unlock() }()
		// The body is read first: the server sees the client hang up
		// (r.Context) only once it has.
		var m Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body: %v, content type %q", err, r.Header.Get("Content-Type"))
		}
		h.mu.Lock()
		h.seen++
		h.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		if code == http.StatusOK {
			h.mu.Lock()
			h.bodies = append(h.bodies, m)
			h.mu.Unlock()
		}
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// url is the hook's address with a token in its path, as Slack's are.
func (h *hook) url() string { return h.srv.URL + "/services/T0/B0/tok3n-s3cret" }

func (h *hook) got() []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Message(nil), h.bodies...)
}

// mailServer is a real SMTP server (go-smtp) on loopback, with STARTTLS
// and AUTH PLAIN, that keeps the mails it takes.
type mailServer struct {
	addr  string
	roots *x509.CertPool

	mu     sync.Mutex
	mails  []*mail.Message
	bodies []string
	rcpts  [][]string
	rcptOK bool
}

// newMailServer starts the server with STARTTLS offered, or without TLS.
func newMailServer(t *testing.T, starttls bool) *mailServer {
	return startMailServer(t, map[bool]string{true: "starttls", false: "none"}[starttls])
}

// startMailServer starts the server with mode starttls, tls (implicit, as
// on port 465) or none.
func startMailServer(t *testing.T, mode string) *mailServer {
	ms := &mailServer{rcptOK: true}
	cert, roots := selfSigned(t)
	ms.roots = roots
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{ms: ms}, nil }))
	s.Domain = "127.0.0.1"
	s.ErrorLog = log.New(io.Discard, "", 0)
	tc := &tls.Config{Certificates: []tls.Certificate{cert}}
	if mode == "starttls" {
		s.TLSConfig = tc
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if mode == "tls" {
		l = tls.NewListener(l, tc)
	}
	ms.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return ms
}

func (ms *mailServer) got() []*mail.Message {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]*mail.Message(nil), ms.mails...)
}

func (ms *mailServer) email() *config.Email {
	_, port, _ := net.SplitHostPort(ms.addr)
	p, _ := strconv.Atoi(port)
	return &config.Email{Server: "127.0.0.1", Port: p, TLS: "starttls", User: "usagedrop", Password: "mail-pw",
		From: "usagedrop@example.com", To: []string{"finance@example.com", "ops@example.com"}}
}

type session struct {
	ms    *mailServer
	authd bool
	rcpts []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "usagedrop" || pass != "mail-pw" {
			return errors.New("bad credentials")
		}
		s.authd = true
		return nil
	}), nil
}
func (s *session) Mail(string, *smtp.MailOptions) error {
	if !s.authd {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ms.mu.Lock()
	defer s.ms.mu.Unlock()
	if !s.ms.rcptOK {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		return err
	}
	s.ms.mu.Lock()
	defer s.ms.mu.Unlock()
	s.ms.mails = append(s.ms.mails, m)
	s.ms.bodies = append(s.ms.bodies, string(body))
	s.ms.rcpts = append(s.ms.rcpts, s.rcpts)
	return nil
}
func (s *session) Reset()        { s.rcpts = nil }
func (s *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usagedrop test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// rig is a ledger, its notifier's options and a log to read.
type rig struct {
	path string
	led  *ledger.Ledger
	opt  Options
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRig(t *testing.T, targets ...config.NotifyTarget) *rig {
	r := &rig{path: filepath.Join(t.TempDir(), "ledger.db"), logs: &syncBuffer{}}
	r.reopen(t)
	for i := range targets {
		if targets[i].Name == "" {
			targets[i].Name = targets[i].Kind()
		}
	}
	r.opt = Options{
		Ledger:   r.led,
		Sources:  []config.Source{{Name: "finance", Notify: targets}},
		Notify:   config.Notify{PublicURL: "https://usagedrop.example.com/", StuckAfter: config.Duration(time.Hour)},
		Logger:   slog.New(slog.NewTextHandler(r.logs, nil)),
		Interval: 10 * time.Millisecond, StuckEvery: 10 * time.Millisecond,
		Backoff: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Timeout: 2 * time.Second,
		Hostname: "test.example.com",
	}
	return r
}

// reopen opens the ledger file again, as a restarted daemon does.
func (r *rig) reopen(t *testing.T) {
	t.Helper()
	if r.led != nil {
		r.led.Close()
	}
	l, err := ledger.Open(r.path, ledger.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	r.led, r.opt.Ledger = l, l
	t.Cleanup(func() { l.Close() })
}

// start runs a Notifier until the returned stop is called (or t ends).
func (r *rig) start(t *testing.T) (stop func()) {
	t.Helper()
	n, err := New(r.opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

const firstProblem = `row 4: Start Date (STARTDATE): "31/02/2026" is not a date; write dates as 03/26/2026`

func (r *rig) rejected(t *testing.T, name string) *ledger.Entry {
	t.Helper()
	e, err := r.led.Create("finance", name, name, 10, "", false)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(r.led.Claimed(e.ID, "processing/"+name, "", 10))
	must(t)(r.led.Fetched(e.ID, "sha-"+e.ID))
	e, err = r.led.Rejected(e.ID, 3, nil, "rejected: 3 problems, first: "+firstProblem)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (r *rig) failed(t *testing.T, name string) *ledger.Entry {
	t.Helper()
	e, err := r.led.Create("finance", name, name, 10, "", false)
	if err != nil {
		t.Fatal(err)
	}
	id := e.ID
	must(t)(r.led.Claimed(id, "processing/"+name, "", 10))
	must(t)(r.led.Fetched(id, "sha-"+id))
	must(t)(r.led.Converted(id, ledger.Conversion{Parts: []ledger.Part{{Name: name, State: ledger.PartPending}}, Records: 5}))
	must(t)(r.led.PartSubmitted(id, 0, time.Now()))
	must(t)(r.led.PartAccepted(id, 0, ledger.Receipt{ImportID: "2c92c0f9-imp"}))
	must(t)(r.led.PartFinal(id, 0, ledger.PartFailed, "account A-9 does not exist", 0))
	e, err = r.led.Outcome(id, ledger.Failed, "Zuora failed the import: account A-9 does not exist", false)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func must(t *testing.T) func(*ledger.Entry, error) {
	return func(_ *ledger.Entry, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// eventually waits up to 10s for ok.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settled waits for the outbox to empty, then a few more rounds so
// that a second send would have had its chance.
func (r *rig) settled(t *testing.T) {
	t.Helper()
	eventually(t, "the outbox to empty", func() bool {
		ns, err := r.led.Notices()
		return err == nil && len(ns) == 0
	})
	time.Sleep(10 * r.opt.Interval)
}

func webhookTo(u string) config.NotifyTarget {
	return config.NotifyTarget{Name: "webhook-1", Webhook: config.Secret(u), Events: config.NotifyEvents}
}

func emailTo(m *config.Email) config.NotifyTarget {
	return config.NotifyTarget{Name: "email-2", Email: m, Events: config.NotifyEvents}
}

// A rejected drop gives one webhook and one mail that say what the
// finance user needs: which file, that nothing was sent, the first
// problem, and where to see more.
func TestRejectedSendsOneWebhookAndOneMail(t *testing.T) {
	h, ms := newHook(t), newMailServer(t, true)
	r := newRig(t, webhookTo(h.url()), emailTo(ms.email()))
	r.opt.RootCAs = ms.roots
	r.start(t)
	e := r.rejected(t, "march-usage.csv")
	r.settled(t)

	got := h.got()
	if len(got) != 1 {
		t.Fatalf("%d webhooks, want 1: %+v", len(got), got)
	}
	m := got[0]
	wantURL := "https://usagedrop.example.com/drops/" + e.ID
	if m.Event != "rejected" || m.Source != "finance" || m.Name != "march-usage.csv" || m.DropID != e.ID ||
		m.State != "rejected" || m.Problems != 3 || m.URL != wantURL || m.At.IsZero() {
		t.Fatalf("webhook fields: %+v", m)
	}
	if !strings.HasPrefix(m.Reason, "3 problems, first: row 4: Start Date (STARTDATE)") {
		t.Fatalf("reason %q", m.Reason)
	}
	for _, want := range []string{"march-usage.csv", "finance", "was rejected; nothing was sent to Zuora", "row 4: Start Date (STARTDATE)", wantURL} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text %q lacks %q", m.Text, want)
		}
	}

	mails := ms.got()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	hd := mails[0].Header
	subject, _ := new(mime.WordDecoder).DecodeHeader(hd.Get("Subject"))
	if subject != "usagedrop: march-usage.csv rejected (finance)" || hd.Get("From") != "usagedrop@example.com" ||
		hd.Get("To") != "finance@example.com, ops@example.com" || hd.Get("Message-Id") == "" {
		t.Fatalf("mail headers: %v (subject %q)", hd, subject)
	}
	ms.mu.Lock()
	rcpts, body := ms.rcpts[0], ms.bodies[0]
	ms.mu.Unlock()
	if len(rcpts) != 2 {
		t.Fatalf("recipients %v", rcpts)
	}
	for _, want := range []string{"march-usage.csv, dropped in finance, was rejected; nothing was sent to Zuora.", firstProblem,
		"Problems:  3", "Details:   " + wantURL, "moved to the failed folder"} {
		if !strings.Contains(body, want) {
			t.Errorf("mail body lacks %q:\n%s", want, body)
		}
	}

	// The drop's history says who was told.
	e, _ = r.led.Get(e.ID)
	var told []string
	for _, ev := range e.History {
		if strings.Contains(ev.Note, "notice sent") {
			told = append(told, ev.Note)
		}
	}
	if len(told) != 2 {
		t.Fatalf("history notes %v", told)
	}
	if strings.Contains(r.logs.String(), "tok3n") {
		t.Fatalf("the log shows the webhook's token:\n%s", r.logs)
	}
}

// A receiver that fails twice gets the notice on the third try, once; and
// a restarted notifier on the same ledger sends nothing again.
func TestRetriedUntilDeliveredOnceAndNotAfterRestart(t *testing.T) {
	h := newHook(t, 500, 503)
	r := newRig(t, webhookTo(h.url()))
	stop := r.start(t)
	e := r.rejected(t, "a.csv")
	r.settled(t)
	if got := h.got(); len(got) != 1 || got[0].DropID != e.ID {
		t.Fatalf("delivered %d times: %+v", len(got), got)
	}
	if n := strings.Count(r.logs.String(), "notice not sent; trying again"); n != 2 {
		t.Fatalf("%d retries logged, want 2:\n%s", n, r.logs)
	}
	stop()
	r.reopen(t)
	r.start(t)
	f := r.failed(t, "b.csv")
	r.settled(t)
	got := h.got()
	if len(got) != 2 || got[1].DropID != f.ID || got[1].Event != "failed" {
		t.Fatalf("after restart: %+v", got)
	}
	if got[1].Reason != "Zuora failed the import: account A-9 does not exist" || len(got[1].ImportIDs) != 1 || got[1].ImportIDs[0] != "2c92c0f9-imp" {
		t.Fatalf("failed notice: %+v", got[1])
	}
}

// A drop unfinished past stuck_after is told once, not at every look,
// nor after a restart.
func TestStuckToldOnce(t *testing.T) {
	h := newHook(t)
	r := newRig(t, webhookTo(h.url()))
	r.opt.Notify.StuckAfter = config.Duration(50 * time.Millisecond)
	stop := r.start(t)
	e, err := r.led.Create("finance", "slow.csv", "slow.csv", 1, "", false)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(r.led.Claimed(e.ID, "processing/slow.csv", "", 1))
	must(t)(r.led.Retry(e.ID, ledger.Failure{Step: ledger.StepFetch, Cause: ledger.CauseSource, Err: "connection refused"}))
	eventually(t, "the stuck notice", func() bool { return len(h.got()) == 1 })
	r.settled(t)
	stop()
	r.reopen(t)
	r.start(t)
	time.Sleep(20 * r.opt.StuckEvery)
	got := h.got()
	if len(got) != 1 {
		t.Fatalf("told stuck %d times", len(got))
	}
	if m := got[0]; m.Event != "stuck" || m.State != "claimed" || !strings.Contains(m.Text, "is not finished") || !strings.Contains(m.Reason, "waiting for the drop folder since") {
		t.Fatalf("stuck notice: %+v", m)
	}
}

// A refusal that says the request is wrong is final at once; other
// failures stop after MaxAttempts. Both say so at ERROR, and neither
// the log nor the ledger shows the webhook's token.
func TestGivingUp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script []int
		sends  int
	}{
		{"gone", []int{404}, 1},
		{"always down", []int{500, 500, 500, 500, 500}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHook(t, tc.script...)
			r := newRig(t, webhookTo(h.url()))
			r.opt.MaxAttempts = 3
			r.start(t)
			e := r.rejected(t, "a.csv")
			r.settled(t)
			h.mu.Lock()
			left := len(h.script)
			h.mu.Unlock()
			if sends := len(tc.script) - left; sends != tc.sends || len(h.got()) != 0 {
				t.Fatalf("%d sends, want %d", sends, tc.sends)
			}
			logs := r.logs.String()
			if !strings.Contains(logs, "level=ERROR msg=\"notice dropped: it will not be sent\"") {
				t.Fatalf("no ERROR line:\n%s", logs)
			}
			e, _ = r.led.Get(e.ID)
			js, _ := json.Marshal(e)
			if strings.Contains(logs, "tok3n") || strings.Contains(string(js), "tok3n") {
				t.Fatalf("token leaked:\n%s\n%s", logs, js)
			}
			if !strings.Contains(string(js), "notice to webhook-1 given up") {
				t.Fatalf("history does not say it was given up: %s", js)
			}
		})
	}
}

// Sends run at most Parallel at once, each within its Timeout: a
// receiver that hangs holds up neither the other target nor more than
// its share.
func TestBoundedAndNeverBlocking(t *testing.T) {
	slow, ms := newHook(t), newMailServer(t, true)
	slow.delay = time.Hour
	r := newRig(t, webhookTo(slow.url()), emailTo(ms.email()))
	r.opt.RootCAs = ms.roots
	r.opt.Parallel, r.opt.Timeout, r.opt.MaxAttempts = 2, 200*time.Millisecond, 2
	r.start(t)
	for _, name := range []string{"a.csv", "b.csv", "c.csv", "d.csv"} {
		r.rejected(t, name)
	}
	eventually(t, "four mails past a hanging webhook", func() bool { return len(ms.got()) == 4 })
	r.settled(t)
	slow.mu.Lock()
	defer slow.mu.Unlock()
	if slow.maxIn > 2 {
		t.Fatalf("%d sends at once, want at most 2", slow.maxIn)
	}
	if n := strings.Count(r.logs.String(), "context deadline exceeded"); n < 4 {
		t.Fatalf("%d sends timed out, want every webhook send:\n%s", n, r.logs)
	}
}

// Each target is told only the events it asked for; a source without
// targets closes its notices unsent.
func TestEventsPerTarget(t *testing.T) {
	h, ms := newHook(t), newMailServer(t, true)
	wh, em := webhookTo(h.url()), emailTo(ms.email())
	wh.Events, em.Events = []string{"failed"}, []string{"rejected"}
	r := newRig(t, wh, em)
	r.opt.RootCAs = ms.roots
	r.opt.Sources = append(r.opt.Sources, config.Source{Name: "quiet"})
	r.start(t)
	r.rejected(t, "a.csv")
	r.failed(t, "b.csv")
	q, _ := r.led.Create("quiet", "q.csv", "q.csv", 1, "", false)
	must(t)(r.led.Outcome(q.ID, ledger.Failed, "set aside", false))
	r.settled(t)
	if got := h.got(); len(got) != 1 || got[0].Name != "b.csv" {
		t.Fatalf("webhook got %+v", got)
	}
	if got := ms.got(); len(got) != 1 || !strings.Contains(got[0].Header.Get("Subject"), "a.csv") {
		t.Fatalf("mail got %d", len(got))
	}
}

// SMTP answers: a 5xx is final, a server without STARTTLS is refused
// rather than given the password in clear.
func TestMailRefusals(t *testing.T) {
	t.Run("no such user", func(t *testing.T) {
		ms := newMailServer(t, true)
		ms.rcptOK = false
		r := newRig(t, emailTo(ms.email()))
		r.opt.RootCAs = ms.roots
		r.start(t)
		r.rejected(t, "a.csv")
		r.settled(t)
		if logs := r.logs.String(); !strings.Contains(logs, "550") || strings.Count(logs, "level=ERROR") != 1 {
			t.Fatalf("550 not final:\n%s", logs)
		}
	})
	t.Run("no starttls", func(t *testing.T) {
		ms := newMailServer(t, false)
		r := newRig(t, emailTo(ms.email()))
		r.start(t)
		r.rejected(t, "a.csv")
		r.settled(t)
		if logs := r.logs.String(); !strings.Contains(logs, "does not offer STARTTLS") || strings.Count(logs, "level=ERROR") != 1 {
			t.Fatalf("plain server not refused:\n%s", logs)
		}
		if len(ms.got()) != 0 {
			t.Fatal("mail sent without TLS")
		}
	})
}

// A webhook URL is https, or http only to this machine; the error does
// not quote it.
func TestWebhookMustBeSecure(t *testing.T) {
	for _, u := range []string{"http://hooks.example.com/T/tok3n", "ftp://h/tok3n", "https://hooks.example.com/T/tok3n", "http://127.0.0.1:9/tok3n"} {
		_, err := New(Options{Sources: []config.Source{{Name: "s", Notify: []config.NotifyTarget{webhookTo(u)}}}})
		if ok := strings.HasPrefix(u, "https:") || strings.Contains(u, "127.0.0.1"); ok != (err == nil) {
			t.Errorf("%s: %v", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "tok3n") {
			t.Errorf("error quotes the URL: %v", err)
		}
	}
}

// Text from the file is escaped for chat markup and mail headers.
func TestMessageEscapes(t *testing.T) {
	r := newRig(t)
	n, err := New(r.opt)
	if err != nil {
		t.Fatal(err)
	}
	e := r.rejected(t, "a<b>&c\r\nBcc: x@evil.example.csv")
	no := ledger.Notice{Key: ledger.NoticeKey(e.ID, ledger.NoticeRejected), DropID: e.ID, Event: ledger.NoticeRejected, At: time.Now()}
	m := n.message(no, e)
	if !strings.Contains(m.Text, `a&lt;b&gt;&amp;c\r\nBcc`) || strings.ContainsAny(m.subject, "\r\n") {
		t.Fatalf("text %q, subject %q", m.Text, m.subject)
	}
	raw := string(n.mail(config.Email{From: "a@example.com", To: []string{"b@example.com"}}, m))
	if strings.Contains(raw, "\r\nBcc:") {
		t.Fatalf("header injected:\n%s", raw)
	}
}

// A stop between a send and its mark sends the notice once more at the
// next start, and no more than that: the one duplicate the package doc
// owns up to.
func TestStopMidSendOneDuplicateAtMost(t *testing.T) {
	h := newHook(t)
	h.delay = 300 * time.Millisecond
	r := newRig(t, webhookTo(h.url()))
	stop := r.start(t)
	r.rejected(t, "a.csv")
	eventually(t, "the first send to arrive", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.seen == 1 })
	stop()
	r.reopen(t)
	r.start(t)
	r.settled(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen != 2 || len(h.bodies) != 1 {
		t.Fatalf("%d sends arrived, %d answered; want 2 and 1", h.seen, len(h.bodies))
	}
}

// Mail over implicit TLS, and a webhook over https, each verified
// against the CA given; a webhook whose certificate is not trusted gets
// nothing.
func TestTLSReceivers(t *testing.T) {
	ms := startMailServer(t, "tls")
	var got []Message
	var mu sync.Mutex
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m Message
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	t.Cleanup(secure.Close)
	// httptest's servers share one certificate: this one gets its own.
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("a webhook with an untrusted certificate was sent the notice")
	}))
	cert, _ := selfSigned(t)
	untrusted.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)

	em := ms.email()
	em.TLS = "tls"
	untrustedHook := webhookTo(untrusted.URL + "/x")
	untrustedHook.Name = "untrusted"
	r := newRig(t, emailTo(em), webhookTo(secure.URL+"/hook"), untrustedHook)
	r.opt.RootCAs = ms.roots
	r.opt.RootCAs.AddCert(secure.Certificate())
	r.opt.MaxAttempts = 2
	r.start(t)
	r.rejected(t, "a.csv")
	r.settled(t)
	mu.Lock()
	defer mu.Unlock()
	if len(ms.got()) != 1 || len(got) != 1 {
		t.Fatalf("%d mails and %d webhooks, want 1 each:\n%s", len(ms.got()), len(got), r.logs)
	}
	if logs := r.logs.String(); !strings.Contains(logs, "certificate") || strings.Count(logs, "level=ERROR") != 1 {
		t.Fatalf("the untrusted webhook was not refused for its certificate:\n%s", logs)
	}
}

// The default backoff spreads 10 tries over about a day, each wait
// capped, and a Retry-After longer than the wait is honoured up to the
// cap.
func TestBackoffSchedule(t *testing.T) {
	n, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for try := 1; try < n.opt.MaxAttempts; try++ {
		d := n.backoff(try, errors.New("500"))
		if d > 8*time.Hour {
			t.Fatalf("wait after try %d is %v, over the cap", try, d)
		}
		total += d
	}
	if total < 18*time.Hour || total > 26*time.Hour {
		t.Fatalf("10 tries span %v, want about a day", total)
	}
	if d := n.backoff(1, &retryAfter{err: errors.New("429"), d: time.Hour}); d != time.Hour {
		t.Fatalf("Retry-After 1h gave %v", d)
	}
	if d := n.backoff(1, &retryAfter{err: errors.New("429"), d: 100 * time.Hour}); d != 8*time.Hour {
		t.Fatalf("Retry-After 100h gave %v", d)
	}
	t.Logf("10 tries span %v", total)
}
