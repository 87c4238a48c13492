package zuorasim

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// soapAnswer is what the SOAP tests read of an answer.
type soapAnswer struct {
	status    int
	ServerURL string `xml:"Body>loginResponse>result>ServerUrl"`
	Session   string `xml:"Body>loginResponse>result>Session"`
	Fault     string `xml:"Body>Fault>detail>UnexpectedErrorFault>FaultCode"`
	FaultMsg  string `xml:"Body>Fault>faultstring"`
	Results   []struct {
		ID      string `xml:"Id"`
		Success bool   `xml:"Success"`
		Message string `xml:"Errors>Message"`
	} `xml:"Body>createResponse>result"`
	Records []struct {
		ID            string `xml:"Id"`
		Name          string `xml:"Name"`
		Status        string `xml:"Status"`
		ImportedCount int    `xml:"ImportedCount"`
	} `xml:"Body>queryResponse>result>records"`
}

// soapFile is the attachment of a create call.
type soapFile struct {
	ctype string // its Content-Type
	data  []byte
}

// soap posts envelope body to /apps/services/a/version, as MTOM when file
// is not nil, and reads the answer.
func (e *env) soap(version, session, body string, file *soapFile) soapAnswer {
	e.t.Helper()
	env := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:api="http://api.zuora.com/" xmlns:obj="http://object.api.zuora.com/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`
	if session != "" {
		env += `<soapenv:Header><api:SessionHeader><api:session>` + session + `</api:session></api:SessionHeader></soapenv:Header>`
	}
	env += `<soapenv:Body>` + body + `</soapenv:Body></soapenv:Envelope>`
	var buf bytes.Buffer
	ctype := "text/xml; charset=utf-8"
	if file == nil {
		buf.WriteString(env)
	} else {
		mw := multipart.NewWriter(&buf)
		root := textproto.MIMEHeader{}
		root.Set("Content-Type", `application/xop+xml; charset=UTF-8; type="text/xml"`)
		root.Set("Content-ID", "<root>")
		w, _ := mw.CreatePart(root)
		_, _ = io.WriteString(w, env)
		att := textproto.MIMEHeader{}
		if file.ctype != "" {
			att.Set("Content-Type", file.ctype)
		}
		att.Set("Content-ID", "<file>")
		w, _ = mw.CreatePart(att)
		_, _ = w.Write(file.data)
		_ = mw.Close()
		ctype = `multipart/related; type="application/xop+xml"; start="<root>"; boundary="` + mw.Boundary() + `"`
	}
	token := e.token
	e.token = "" // SOAP carries its session in the envelope
	resp := e.do("POST", "/apps/services/a/"+version, ctype, &buf, nil)
	e.token = token
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	ans := soapAnswer{status: resp.StatusCode}
	if err := xml.Unmarshal(raw, &ans); err != nil {
		e.t.Fatalf("SOAP answer %d is not XML: %s", resp.StatusCode, raw)
	}
	return ans
}

// soapLogin logs in and returns the session.
func (e *env) soapLogin(version string) string {
	e.t.Helper()
	ans := e.soap(version, "", `<api:login><api:username>id</api:username><api:password>secret</api:password></api:login>`, nil)
	if ans.Session == "" {
		e.t.Fatalf("login: %+v", ans)
	}
	return ans.Session
}

// createImport is a create call for one Import whose file is attachment
// cid:file.
func createImport(name, md5sum string) string {
	s := `<api:create><api:zObjects xsi:type="obj:Import"><obj:ImportType>Usage</obj:ImportType>`
	if name != "" {
		s += `<obj:Name>` + name + `</obj:Name>`
	}
	s += `<obj:FileContent><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:file"/></obj:FileContent>`
	if md5sum != "" {
		s += `<obj:Md5>` + md5sum + `</obj:Md5>`
	}
	return s + `</api:zObjects></api:create>`
}

func TestSOAPLogin(t *testing.T) {
	e := newEnv(t, Options{ClientID: "id", ClientSecret: "secret"})
	ans := e.soap("119.0", "", `<api:login><api:username>id</api:username><api:password>secret</api:password></api:login>`, nil)
	if ans.status != http.StatusOK || ans.Session == "" || ans.ServerURL != e.srv.URL+"/apps/services/a/119.0" {
		t.Fatalf("login %+v", ans)
	}
	tests := []struct {
		name, version, body, fault string
	}{
		{"bad password", "119.0", `<api:login><api:username>id</api:username><api:password>no</api:password></api:login>`, "INVALID_VALUE"},
		{"WSDL below 37.0", "36.0", `<api:login><api:username>id</api:username><api:password>secret</api:password></api:login>`, "INVALID_VERSION"},
		{"WSDL not a number", "latest", `<api:login><api:username>id</api:username><api:password>secret</api:password></api:login>`, "INVALID_VERSION"},
		{"no session", "119.0", `<api:query><api:queryString>select Id from Import where Name = 'x'</api:queryString></api:query>`, "INVALID_SESSION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans := e.soap(tt.version, "", tt.body, nil)
			if ans.status != http.StatusInternalServerError || ans.Fault != tt.fault {
				t.Fatalf("answer %+v, want HTTP 500 fault %s", ans, tt.fault)
			}
		})
	}

	// A session dies with ExpireTokens, as one 15 minutes old does.
	session := e.soapLogin("119.0")
	query := `<api:query><api:queryString>select Id from Import where Name = 'x'</api:queryString></api:query>`
	if ans := e.soap("119.0", session, query, nil); ans.Fault != "" {
		t.Fatalf("query with a live session: %+v", ans)
	}
	e.sim.SetFaults(Faults{ExpireTokens: true})
	if ans := e.soap("119.0", session, query, nil); ans.Fault != "INVALID_SESSION" {
		t.Fatalf("query with an expired session: %+v", ans)
	}

	far := newEnv(t, Options{SOAPServerURL: "https://evil.example/apps/services/a/119.0"})
	if ans := far.soap("119.0", "", `<api:login><api:username>u</api:username><api:password>p</api:password></api:login>`, nil); ans.ServerURL != "https://evil.example/apps/services/a/119.0" {
		t.Fatalf("SOAPServerURL not answered: %+v", ans)
	}
}

// The attachment rules of seed 000: text/plain with the file's name, an
// MTOM attachment, the MD5 when given, the size and zip rules.
func TestSOAPCreateAttachment(t *testing.T) {
	csv := []byte(tinyCSV)
	sum := md5.Sum(csv)
	good := hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		body    string
		file    *soapFile
		wantErr string // "" means created
	}{
		{"documented type", createImport("u.csv", good), &soapFile{"text/plain;name=u.csv", csv}, ""},
		{"quoted name, no Name field", createImport("", ""), &soapFile{`text/plain; name="u2.csv"`, csv}, ""},
		{"octet-stream", createImport("u.csv", ""), &soapFile{`application/octet-stream; name="u.csv"`, csv}, "Cannot detect the file name from your Content-Type"},
		{"text/plain without a name", createImport("u.csv", ""), &soapFile{"text/plain", csv}, "Cannot detect the file name from your Content-Type"},
		{"no Content-Type", createImport("u.csv", ""), &soapFile{"", csv}, "Cannot detect the file name from your Content-Type"},
		{"inline base64", strings.Replace(createImport("u.csv", ""), `<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:file"/>`, "QUNDT1VOVF9JRA==", 1), nil, "Cannot detect the file name from your Content-Type"},
		{"no such attachment", strings.Replace(createImport("u.csv", ""), "cid:file", "cid:other", 1), &soapFile{"text/plain;name=u.csv", csv}, "no attachment cid:other"},
		{"wrong MD5", createImport("u.csv", strings.Repeat("0", 32)), &soapFile{"text/plain;name=u.csv", csv}, "File MD5 verification error"},
		{"too big", createImport("big.csv", ""), &soapFile{"text/plain;name=big.csv", bytes.Repeat([]byte("x"), maxFileSize+1)}, "exceeds the maximum file size of 4,194,304 bytes"},
		{"file name over 50", createImport("u.csv", ""), &soapFile{"text/plain;name=" + strings.Repeat("n", 47) + ".csv", csv}, "longer than the 50 character maximum"},
		{"not csv or zip by the file's name", createImport("u.csv", ""), &soapFile{"text/plain;name=u.txt", csv}, "not a .csv or .zip"},
		{"zip with a directory", createImport("d.zip", ""), &soapFile{"text/plain;name=d.zip", readFixture(t, "zip-with-dir.zip")}, "The zip file cannot contain a directory"},
		{"not an Import", strings.Replace(createImport("u.csv", ""), "obj:Import", "obj:Account", 1), &soapFile{"text/plain;name=u.csv", csv}, "only Import objects"},
	}
	e := newEnv(t, Options{})
	session := e.soapLogin("119.0")
	created := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans := e.soap("119.0", session, tt.body, tt.file)
			if ans.status != http.StatusOK || len(ans.Results) != 1 {
				t.Fatalf("answer %+v", ans)
			}
			r := ans.Results[0]
			if tt.wantErr == "" {
				if !r.Success || len(r.ID) != 32 {
					t.Fatalf("result %+v, want created", r)
				}
				created++
				return
			}
			if r.Success || !strings.Contains(r.Message, tt.wantErr) {
				t.Fatalf("result %+v, want %q", r, tt.wantErr)
			}
		})
	}
	imps := e.sim.Imports()
	if len(imps) != created || created != 2 || imps[0].Name != "u.csv" || imps[1].Name != "u2.csv" {
		t.Fatalf("imports %+v", imps)
	}
}

// An Import is found by Name or Id with a query and goes from Pending to
// Completed; the URL's WSDL version gates the newer columns as the REST
// header does.
func TestSOAPQueryAndWSDL(t *testing.T) {
	e := newEnv(t, Options{})
	session := e.soapLogin("119.0")
	rpc := []byte("ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,PRODUCT_RATE_PLAN_CHARGE_ID\nA1,GB,1,03/01/2026,,,,P1\n")
	for _, v := range []string{"119.0", "146.0"} {
		name := "rpc-" + v + ".csv"
		ans := e.soap(v, session, createImport(name, ""), &soapFile{"text/plain;name=" + name, rpc})
		if len(ans.Results) != 1 || !ans.Results[0].Success {
			t.Fatalf("create %s: %+v", v, ans)
		}
	}
	want := map[string]string{"rpc-119.0.csv": "Failed", "rpc-146.0.csv": "Completed"}
	for name, status := range want {
		query := `<api:query><api:queryString>select Id, Name, Status, ImportedCount from Import where Name = '` + name + `'</api:queryString></api:query>`
		var got string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			ans := e.soap("119.0", session, query, nil)
			if len(ans.Records) != 1 {
				t.Fatalf("query %s: %+v", name, ans)
			}
			if got = ans.Records[0].Status; got == "Completed" || got == "Failed" {
				break
			}
		}
		if got != status {
			t.Errorf("%s: %s, want %s", name, got, status)
		}
	}
	if ans := e.soap("119.0", session, `<api:query><api:queryString>select Id from Account</api:queryString></api:query>`, nil); ans.Fault != "MALFORMED_QUERY" {
		t.Fatalf("bad query: %+v", ans)
	}
}

// Faults reach SOAP in SOAP's form: a server error is an UNKNOWN_ERROR
// fault with HTTP 500, before anything is created or after the Import was
// made; a dropped answer leaves the Import made and the client without a
// reply.
func TestSOAPFaults(t *testing.T) {
	e := newEnv(t, Options{})
	session := e.soapLogin("119.0")
	file := &soapFile{"text/plain;name=u.csv", []byte(tinyCSV)}
	e.sim.SetFaults(Faults{ServerErrors: 1})
	if ans := e.soap("119.0", session, createImport("u.csv", ""), file); ans.status != http.StatusInternalServerError || ans.Fault != "UNKNOWN_ERROR" {
		t.Fatalf("server error: %+v", ans)
	}
	if n := len(e.sim.Imports()); n != 0 {
		t.Fatalf("%d imports after a server error", n)
	}
	e.sim.SetFaults(Faults{SOAPFaultsAfterCreate: 1})
	if ans := e.soap("119.0", session, createImport("made.csv", ""), &soapFile{"text/plain;name=made.csv", []byte(tinyCSV)}); ans.status != http.StatusInternalServerError || ans.Fault != "UNKNOWN_ERROR" {
		t.Fatalf("fault after create: %+v", ans)
	}
	if imps := e.sim.Imports(); len(imps) != 1 || imps[0].Name != "made.csv" {
		t.Fatalf("imports after a fault after create: %+v", imps)
	}
	e.sim.SetFaults(Faults{DropAfterRead: 1})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	root := textproto.MIMEHeader{"Content-Id": {"<root>"}, "Content-Type": {"application/xop+xml"}}
	w, _ := mw.CreatePart(root)
	fmt.Fprintf(w, `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><SessionHeader><session>%s</session></SessionHeader></soapenv:Header><soapenv:Body>%s</soapenv:Body></soapenv:Envelope>`,
		session, strings.ReplaceAll(createImport("u.csv", ""), "obj:Import", "Import"))
	w, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Id": {"<file>"}, "Content-Type": {file.ctype}})
	_, _ = w.Write(file.data)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/apps/services/a/119.0", &buf)
	req.Header.Set("Content-Type", `multipart/related; type="application/xop+xml"; boundary="`+mw.Boundary()+`"`)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped create got an answer: %d", resp.StatusCode)
	}
	if imps := e.sim.Imports(); len(imps) != 2 || imps[1].Name != "u.csv" {
		t.Fatalf("imports after a dropped answer: %+v", imps)
	}
}
