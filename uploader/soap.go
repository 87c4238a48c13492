package uploader

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"sync"

	"usagedrop/internal/endpoint"
	"usagedrop/internal/safetext"
)

// SOAPImport sends parts through the legacy SOAP API: login, create of an
// Import object with the file as an MTOM attachment, and a query on the
// Import to follow it. Zuora keeps SOAP for existing integrations; use it
// only for tenants that still do.
//
// SOAP has no idempotency key, so exactly-once rests on the upload name:
// Submit first looks for an import of the part's name and returns it when
// there is one, and after a create whose answer was lost it looks again
// before sending anything twice. Part names must therefore be unique per
// content (the packager's names carry the content hash).
type SOAPImport struct {
	c *Client
	// Endpoint is the SOAP URL, e.g.
	// https://apisandbox.zuora.com/apps/services/a/119.0.
	Endpoint string
	Username string
	Password string

	mu        sync.Mutex
	session   string
	serverURL string
}

var (
	_ Uploader = (*SOAPImport)(nil)
	_ Finder   = (*SOAPImport)(nil)
)

// NewSOAPImport returns the SOAP uploader for the API user username. The
// client c carries the HTTP client, retry settings and logger; its OAuth
// credentials are not used.
func NewSOAPImport(c *Client, endpoint, username, password string) *SOAPImport {
	return &SOAPImport{c: c, Endpoint: endpoint, Username: username, Password: password}
}

const (
	soapEnvOpen = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:api="http://api.zuora.com/" xmlns:obj="http://object.api.zuora.com/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`
	soapRootID  = "root.message@usagedrop"
	soapFileID  = "file@usagedrop"
)

// Submit creates the Import for p, or returns the one already made under
// p's name.
func (s *SOAPImport) Submit(ctx context.Context, p Part, idempotencyKey string) (Receipt, error) {
	if err := checkPart(p, idempotencyKey); err != nil {
		return Receipt{}, err
	}
	sum, err := fileMD5(p.Path)
	if err != nil {
		return Receipt{}, &Error{Op: "submit", Message: err.Error(), Err: err}
	}
	var last error
	for attempt := 0; attempt < s.c.cfg.MaxAttempts; attempt++ {
		if r, ok, err := s.Find(ctx, p.Name); err != nil {
			return Receipt{}, err
		} else if ok {
			return r, nil
		}
		if attempt > 0 {
			var e *Error
			errors.As(last, &e)
			if err := s.c.sleep(ctx, attempt-1, e.RetryAfter); err != nil {
				return Receipt{}, err
			}
		}
		id, err := s.create(ctx, p, sum)
		if err == nil {
			return Receipt{API: "soap", ImportID: id, TrackID: trackIDFor(idempotencyKey)}, nil
		}
		if !IsRetryable(err) {
			return Receipt{}, err
		}
		last = err
		s.c.log.Warn("SOAP create failed; looking the import up by name before trying again", "part", p.Name, "error", err)
	}
	return Receipt{}, last
}

// create sends one create call, which is never resent by the client: the
// caller looks the import up first.
func (s *SOAPImport) create(ctx context.Context, p Part, md5sum string) (string, error) {
	var id string
	err := s.withSession(ctx, func(session, url string) error {
		envelope := soapEnvOpen + `<soapenv:Header><api:SessionHeader><api:session>` + xmlEscape(session) +
			`</api:session></api:SessionHeader></soapenv:Header><soapenv:Body><api:create><api:zObjects xsi:type="obj:Import">` +
			`<obj:ImportType>Usage</obj:ImportType><obj:Name>` + xmlEscape(p.Name) + `</obj:Name>` +
			`<obj:FileContent><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:` + soapFileID + `"/></obj:FileContent>` +
			`<obj:Md5>` + md5sum + `</obj:Md5></api:zObjects></api:create></soapenv:Body></soapenv:Envelope>`
		rep, err := s.c.do(ctx, call{op: "submit", method: http.MethodPost, url: url, body: mtomBody(p, envelope), soap: true, attempts: 1})
		if err != nil {
			return err
		}
		var res struct {
			Result []struct {
				ID      string `xml:"Id"`
				Success bool   `xml:"Success"`
				Errors  []struct {
					Code    string `xml:"Code"`
					Message string `xml:"Message"`
				} `xml:"Errors"`
			} `xml:"Body>createResponse>result"`
		}
		if err := xml.Unmarshal(rep.body, &res); err != nil || len(res.Result) != 1 {
			return &Error{Op: "submit", HTTPStatus: rep.status, Message: fmt.Sprintf("cannot read the create answer: %.200s", rep.body)}
		}
		r := res.Result[0]
		if !r.Success {
			e := &Error{Op: "submit", HTTPStatus: rep.status, Message: "Zuora refused the Import"}
			for _, x := range r.Errors {
				e.Code, e.Message = x.Code, x.Message
			}
			e.Retryable = retryableFault(e.Code)
			return e
		}
		id = r.ID
		return nil
	})
	return id, err
}

// mtomBody is the create call as multipart/related: the envelope, then the
// file streamed from disk, named in its Content-Type as Zuora requires.
func mtomBody(p Part, envelope string) bodyFunc {
	return streamedMultipart(p, func(mw *multipart.Writer) (string, error) {
		root := textproto.MIMEHeader{}
		root.Set("Content-Type", `application/xop+xml; charset=UTF-8; type="text/xml"`)
		root.Set("Content-Transfer-Encoding", "8bit")
		root.Set("Content-ID", "<"+soapRootID+">")
		w, err := mw.CreatePart(root)
		if err != nil {
			return "", err
		}
		if _, err := io.WriteString(w, envelope); err != nil {
			return "", err
		}
		att := textproto.MIMEHeader{}
		// The type Zuora documents for the file (zuora-api.md, SOAP Import:
		// "text/plain;name=<file name>"); anything else risks "Cannot
		// detect the file name from your Content-Type". Upload names are
		// tokens, so the name goes unquoted as in the docs.
		att.Set("Content-Type", attachmentType(p.Name))
		att.Set("Content-Transfer-Encoding", "binary")
		att.Set("Content-ID", "<"+soapFileID+">")
		if _, err := mw.CreatePart(att); err != nil {
			return "", err
		}
		return fmt.Sprintf(`multipart/related; type="application/xop+xml"; start="<%s>"; start-info="text/xml"; boundary="%s"`, soapRootID, mw.Boundary()), nil
	})
}

// importRecord is an Import as a SOAP query returns it.
type importRecord struct {
	ID            string `xml:"Id"`
	Status        string `xml:"Status"`
	StatusReason  string `xml:"StatusReason"`
	ImportedCount int    `xml:"ImportedCount"`
	TotalCount    int    `xml:"TotalCount"`
	CreatedDate   string `xml:"CreatedDate"`
}

// query runs a ZOQL query on Import objects.
func (s *SOAPImport) query(ctx context.Context, op, zoql string) ([]importRecord, error) {
	var recs []importRecord
	err := s.withSession(ctx, func(session, url string) error {
		envelope := soapEnvOpen + `<soapenv:Header><api:SessionHeader><api:session>` + xmlEscape(session) +
			`</api:session></api:SessionHeader></soapenv:Header><soapenv:Body><api:query><api:queryString>` +
			xmlEscape(zoql) + `</api:queryString></api:query></soapenv:Body></soapenv:Envelope>`
		rep, err := s.c.do(ctx, call{op: op, method: http.MethodPost, url: url, body: xmlBody(envelope), soap: true})
		if err != nil {
			return err
		}
		var res struct {
			Records []importRecord `xml:"Body>queryResponse>result>records"`
		}
		if err := xml.Unmarshal(rep.body, &res); err != nil {
			return &Error{Op: op, HTTPStatus: rep.status, Retryable: true, Message: fmt.Sprintf("cannot read the query answer: %v", err)}
		}
		recs = res.Records
		return nil
	})
	return recs, err
}

// Status queries the Import by its id.
func (s *SOAPImport) Status(ctx context.Context, r Receipt) (Status, error) {
	if r.ImportID == "" {
		return Status{}, &Error{Op: "status", Message: "the receipt has no import id"}
	}
	recs, err := s.query(ctx, "status", fmt.Sprintf("select Id, Status, StatusReason, ImportedCount, TotalCount from Import where Id = '%s'", zoqlEscaper.Replace(r.ImportID)))
	if err != nil {
		return Status{}, err
	}
	if len(recs) == 0 {
		return Status{}, &Error{Op: "status", Message: "Zuora has no Import " + r.ImportID}
	}
	x := recs[0]
	return Status{State: State(x.Status), Message: x.StatusReason, Imported: x.ImportedCount, Total: x.TotalCount}, nil
}

// Find returns the most recent Import uploaded under name.
func (s *SOAPImport) Find(ctx context.Context, name string) (Receipt, bool, error) {
	recs, err := s.query(ctx, "find", fmt.Sprintf("select Id, Status, CreatedDate from Import where Name = '%s'", zoqlEscaper.Replace(name)))
	if err != nil || len(recs) == 0 {
		return Receipt{}, false, err
	}
	latest := latestImport(len(recs), func(i int) string { return recs[i].CreatedDate })
	return Receipt{API: "soap", ImportID: recs[latest].ID}, true, nil
}

// withSession runs fn with a session, logging in when there is none, and
// once more when Zuora says the session is no longer valid.
func (s *SOAPImport) withSession(ctx context.Context, fn func(session, url string) error) error {
	for try := 0; ; try++ {
		session, url, err := s.login(ctx)
		if err != nil {
			return err
		}
		err = fn(session, url)
		var e *Error
		if errors.As(err, &e) && e.Code == "INVALID_SESSION" {
			s.mu.Lock()
			if s.session == session {
				s.session = ""
			}
			s.mu.Unlock()
			if try == 0 {
				continue
			}
			// The new session was refused too: the call was not taken,
			// so it is retried later like an outage, never final.
			e.Retryable = true
		}
		return err
	}
}

// CheckLogin logs in once, for `usagedrop test`.
func (s *SOAPImport) CheckLogin(ctx context.Context) error {
	_, _, err := s.login(ctx)
	return err
}

// login returns the cached session or opens one. The password never
// appears in an error or a log.
func (s *SOAPImport) login(ctx context.Context) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != "" {
		return s.session, s.serverURL, nil
	}
	envelope := soapEnvOpen + `<soapenv:Body><api:login><api:username>` + xmlEscape(s.Username) +
		`</api:username><api:password>` + xmlEscape(s.Password) + `</api:password></api:login></soapenv:Body></soapenv:Envelope>`
	rep, err := s.c.do(ctx, call{op: "login", method: http.MethodPost, url: s.Endpoint, body: xmlBody(envelope), soap: true})
	if err != nil {
		return "", "", err
	}
	var res struct {
		Session   string `xml:"Body>loginResponse>result>Session"`
		ServerURL string `xml:"Body>loginResponse>result>ServerUrl"`
	}
	if err := xml.Unmarshal(rep.body, &res); err != nil || res.Session == "" {
		return "", "", &Error{Op: "login", HTTPStatus: rep.status, Message: "the login answer has no session"}
	}
	serverURL := cmp.Or(res.ServerURL, s.Endpoint)
	if err := endpoint.SameSite(s.Endpoint, serverURL); err != nil {
		// Every later call carries the session: a login answer that sends
		// us off the tenant's domain, or to plain http, is not followed.
		return "", "", &Error{Op: "login", HTTPStatus: rep.status, Err: err,
			Message: fmt.Sprintf("Zuora's login answered with the server %q, which is not on %s's domain or not https; it was not followed: %v",
				safetext.Clip(serverURL, 512), s.Endpoint, err)}
	}
	s.session, s.serverURL = res.Session, serverURL
	return s.session, s.serverURL, nil
}

// classifySOAP reads a SOAP answer: a fault is an *Error with Zuora's
// fault code; an answer without a fault is judged like a REST one by its
// status.
func classifySOAP(op string, resp *http.Response, body []byte) *Error {
	var f struct {
		FaultCode    string `xml:"Body>Fault>faultcode"`
		FaultString  string `xml:"Body>Fault>faultstring"`
		DetailCode   string `xml:"Body>Fault>detail>UnexpectedErrorFault>FaultCode"`
		DetailString string `xml:"Body>Fault>detail>UnexpectedErrorFault>FaultMessage"`
	}
	if xml.Unmarshal(body, &f) != nil || (f.FaultCode == "" && f.DetailCode == "") {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return nil
		}
		return classify(op, resp, nil)
	}
	code := f.DetailCode
	if code == "" {
		_, code, _ = strings.Cut(f.FaultCode, ":")
	}
	msg := cmp.Or(f.DetailString, f.FaultString)
	if op == "login" {
		msg = "Zuora refused the SOAP login: " + msg
	}
	return &Error{Op: op, HTTPStatus: resp.StatusCode, Code: code, Message: "SOAP fault " + code + ": " + msg, Retryable: retryableFault(code)}
}

// retryableFault reports whether a SOAP fault code may clear on its own.
// INVALID_SESSION is handled by logging in again. SOAP sends every fault
// with HTTP 500, so the status says nothing; the code does. UNKNOWN_ERROR
// is Zuora's server error: nothing says the request was wrong, and the
// Import is looked up by name before it is sent again.
func retryableFault(code string) bool {
	switch code {
	case "TEMPORARY_ERROR", "REQUEST_EXCEEDED_LIMIT", "REQUEST_EXCEEDED_RATE", "LOCK_COMPETITION", "SERVER_UNAVAILABLE", "UNKNOWN_ERROR":
		return true
	}
	return false
}

// fileMD5 returns the hex MD5 of a file, which Zuora checks on receipt.
func fileMD5(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// xmlBody returns a body func for a small SOAP envelope.
func xmlBody(envelope string) bodyFunc {
	return func() (io.ReadCloser, string, int64, error) {
		return io.NopCloser(strings.NewReader(envelope)), "text/xml; charset=utf-8", int64(len(envelope)), nil
	}
}

// xmlEscape escapes s for XML character data.
func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// attachmentType is the Content-Type of an Import's file attachment:
// text/plain;name=NAME, the name quoted only when it is not a MIME token.
func attachmentType(name string) string {
	if strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?=`, r)
	}) {
		return fmt.Sprintf(`text/plain;name="%s"`, quoteEscaper.Replace(name))
	}
	return "text/plain;name=" + name
}
