package zuorasim

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// sessionTTL is how long a SOAP session lives, as Zuora's default.
const sessionTTL = 15 * time.Minute

// soapEnvelope is what the sim reads of a SOAP request. encoding/xml
// matches local names, so any namespace prefixes work.
type soapEnvelope struct {
	Session string `xml:"Header>SessionHeader>session"`
	Body    struct {
		Login *struct {
			Username string `xml:"username"`
			Password string `xml:"password"`
		} `xml:"login"`
		Create *struct {
			Objects []soapImport `xml:"zObjects"`
		} `xml:"create"`
		Query *struct {
			QueryString string `xml:"queryString"`
		} `xml:"query"`
	} `xml:"Body"`
}

// soapImport is an Import zObject in a create call.
type soapImport struct {
	Type        string `xml:"type,attr"`
	ImportType  string `xml:"ImportType"`
	Name        string `xml:"Name"`
	Md5         string `xml:"Md5"`
	FileContent struct {
		Include struct {
			Href string `xml:"href,attr"`
		} `xml:"Include"`
		Inline string `xml:",chardata"`
	} `xml:"FileContent"`
}

// handleSOAP is the SOAP API at /apps/services/a/{version}: login, create
// of an Import (MTOM or inline base64) and query of Import objects.
func (s *Sim) handleSOAP(w http.ResponseWriter, r *http.Request) {
	root, attachments, err := readSOAP(r)
	if err != nil {
		writeFault(w, "INVALID_VALUE", err.Error())
		return
	}
	var env soapEnvelope
	if err := xml.Unmarshal(root, &env); err != nil {
		writeFault(w, "INVALID_VALUE", "the SOAP envelope cannot be read: "+err.Error())
		return
	}
	// The SOAP endpoint is /apps/services/a/<WSDL version>, 37.0 or
	// higher (zuora-api.md, SOAP Import).
	if v := wsdlVersion(r.PathValue("version")); v < 37 {
		writeFault(w, "INVALID_VERSION", fmt.Sprintf("the WSDL version in the URL must be 37.0 or higher (got %q)", r.PathValue("version")))
		return
	}
	b := env.Body
	if b.Login != nil {
		s.soapLogin(w, r, b.Login.Username, b.Login.Password)
		return
	}
	if !s.validSession(env.Session) {
		writeFault(w, "INVALID_SESSION", "Invalid session")
		return
	}
	switch {
	case b.Create != nil:
		s.soapCreate(w, b.Create.Objects, attachments, wsdlVersion(r.PathValue("version")))
	case b.Query != nil:
		s.soapQuery(w, b.Query.QueryString)
	default:
		writeFault(w, "INVALID_VALUE", "the sim answers only login, create (Import) and query")
	}
}

// attachment is one MIME part of an MTOM request besides the envelope.
type attachment struct {
	header textproto.MIMEHeader
	data   []byte
}

// readSOAP returns the envelope and, for an MTOM request, the attachments
// by Content-ID.
func readSOAP(r *http.Request) ([]byte, map[string]attachment, error) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/related" {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		return b, nil, err
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var root []byte
	atts := map[string]attachment{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return root, atts, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("the multipart/related body cannot be read: %v", err)
		}
		limit := int64(maxFileSize + 1)
		if root == nil {
			limit = 1 << 20
		}
		data, err := io.ReadAll(io.LimitReader(p, limit))
		if err != nil {
			return nil, nil, fmt.Errorf("a MIME part cannot be read: %v", err)
		}
		if root == nil {
			root = data
			continue
		}
		atts[strings.Trim(p.Header.Get("Content-ID"), "<>")] = attachment{header: p.Header, data: data}
	}
}

// soapLogin checks the credentials and opens a session.
func (s *Sim) soapLogin(w http.ResponseWriter, r *http.Request, user, pass string) {
	if s.opt.ClientID != "" && (user != s.opt.ClientID || pass != s.opt.ClientSecret) {
		writeFault(w, "INVALID_VALUE", "Invalid login. User name and password do not match.")
		return
	}
	session := newID()
	s.mu.Lock()
	s.sessions[session] = time.Now().Add(sessionTTL)
	s.mu.Unlock()
	serverURL := cmp.Or(s.opt.SOAPServerURL, "http://"+r.Host+r.URL.Path)
	writeSOAP(w, fmt.Sprintf(`<ns1:loginResponse><ns1:result><ns1:ServerUrl>%s</ns1:ServerUrl><ns1:Session>%s</ns1:Session></ns1:result></ns1:loginResponse>`, xmlText(serverURL), session))
}

func (s *Sim) validSession(session string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.sessions[session]
	return ok && time.Now().Before(exp)
}

// soapCreate creates Import objects; each gets its own SaveResult. The
// DropAfterRead fault applies here as to the REST upload: the import is
// made and the answer lost.
func (s *Sim) soapCreate(w http.ResponseWriter, objs []soapImport, atts map[string]attachment, wsdl float64) {
	var results strings.Builder
	for _, o := range objs {
		id, err := s.soapImport(o, atts, wsdl)
		if err != nil {
			fmt.Fprintf(&results, `<ns1:result><ns1:Errors><ns1:Code>INVALID_VALUE</ns1:Code><ns1:Message>%s</ns1:Message></ns1:Errors><ns1:Success>false</ns1:Success></ns1:result>`, xmlText(err.Error()))
			continue
		}
		fmt.Fprintf(&results, `<ns1:result><ns1:Id>%s</ns1:Id><ns1:Success>true</ns1:Success></ns1:result>`, id)
	}
	s.mu.Lock()
	drop := s.faults.DropAfterRead > 0
	if drop {
		s.faults.DropAfterRead--
	}
	s.mu.Unlock()
	if drop {
		panic(http.ErrAbortHandler)
	}
	writeSOAP(w, `<ns1:createResponse>`+results.String()+`</ns1:createResponse>`)
}

// soapImport checks one Import zObject and its file, and creates it.
func (s *Sim) soapImport(o soapImport, atts map[string]attachment, wsdl float64) (string, error) {
	if !strings.HasSuffix(o.Type, "Import") || o.ImportType != "Usage" {
		return "", fmt.Errorf("only Import objects of ImportType Usage are supported (got %s, %s)", o.Type, o.ImportType)
	}
	var data []byte
	name := o.Name
	if href := o.FileContent.Include.Href; href != "" {
		att, ok := atts[strings.TrimPrefix(href, "cid:")]
		if !ok {
			return "", fmt.Errorf("no attachment %s", href)
		}
		// Zuora documents the attachment as text/plain;name=<file name>
		// (zuora-api.md, SOAP Import); the stricter reading refuses any
		// other type with the message Zuora gives for a missing name.
		mt, params, _ := mime.ParseMediaType(att.header.Get("Content-Type"))
		if mt != "text/plain" || params["name"] == "" {
			return "", errors.New("Cannot detect the file name from your Content-Type")
		}
		name = params["name"]
		data = att.data
	} else {
		var err error
		if data, err = base64.StdEncoding.DecodeString(strings.TrimSpace(o.FileContent.Inline)); err != nil {
			return "", fmt.Errorf("FileContent is not base64: %v", err)
		}
	}
	if len(data) > maxFileSize {
		return "", errors.New("The file exceeds the maximum file size of 4,194,304 bytes")
	}
	if o.Md5 != "" {
		sum := md5.Sum(data)
		if !strings.EqualFold(o.Md5, hex.EncodeToString(sum[:])) {
			return "", errors.New("File MD5 verification error")
		}
	}
	if o.Name != "" {
		name = o.Name
	}
	im, err := s.newImport(name, data, "", wsdl)
	if err != nil {
		return "", err
	}
	return im.ID, nil
}

// soapQuery answers a ZOQL query on Import objects.
func (s *Sim) soapQuery(w http.ResponseWriter, q string) {
	sel, records, err := s.queryImports(q)
	if err != nil {
		writeFault(w, "MALFORMED_QUERY", err.Error())
		return
	}
	var b strings.Builder
	b.WriteString(`<ns1:queryResponse><ns1:result><ns1:done>true</ns1:done>`)
	for _, rec := range records {
		b.WriteString(`<ns1:records xsi:type="ns2:Import">`)
		for _, f := range sel {
			fmt.Fprintf(&b, "<ns2:%s>%s</ns2:%s>", f, xmlText(fmt.Sprint(rec[f])), f)
		}
		b.WriteString(`</ns1:records>`)
	}
	fmt.Fprintf(&b, `<ns1:size>%d</ns1:size></ns1:result></ns1:queryResponse>`, len(records))
	writeSOAP(w, b.String())
}

// writeSOAP answers with body inside a SOAP envelope.
func writeSOAP(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ns1="http://api.zuora.com/" xmlns:ns2="http://object.api.zuora.com/"><soapenv:Body>%s</soapenv:Body></soapenv:Envelope>`, body)
}

// writeFault answers with a SOAP fault, HTTP 500 as SOAP 1.1 has it.
func writeFault(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>fns:%s</faultcode><faultstring>%s</faultstring><detail><fns:UnexpectedErrorFault xmlns:fns="http://fault.api.zuora.com/"><fns:FaultCode>%s</fns:FaultCode><fns:FaultMessage>%s</fns:FaultMessage></fns:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
		code, xmlText(msg), code, xmlText(msg))
}

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
