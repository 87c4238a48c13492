package uploader

import (
	"context"
	"strings"
	"testing"

	"usagedrop/zuorasim"
)

// newSOAP returns a SOAP uploader for the rig's sim.
func (r *rig) newSOAP(password string) *SOAPImport {
	return NewSOAPImport(r.cl, r.srv.URL+"/apps/services/a/119.0", "usagedrop", password)
}

func TestSOAPImport(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	s := r.newSOAP("s3cret-value")
	p := fixturePart(t, "partner-template.csv")
	ctx := context.Background()
	rc, err := s.Submit(ctx, p, "soap-key")
	if err != nil {
		t.Fatal(err)
	}
	if rc.API != "soap" || len(rc.ImportID) != 32 {
		t.Fatalf("receipt %+v", rc)
	}
	st := waitFinal(t, s, rc)
	if st.State != Completed || st.Imported != 1000 || st.Total != 1000 {
		t.Fatalf("status %+v", st)
	}
	// The same part again: found by name, not imported twice.
	again, err := s.Submit(ctx, p, "soap-key")
	if err != nil || again.ImportID != rc.ImportID {
		t.Fatalf("resubmit %+v, %v; want %s", again, err, rc.ImportID)
	}
	if n := len(r.sim.Records()); n != 1000 {
		t.Fatalf("%d records, want 1000", n)
	}
}

func TestSOAPLostAnswerAndSessionExpiry(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	s := r.newSOAP("s3cret-value")
	ctx := context.Background()
	if _, _, err := s.Find(ctx, "warm.csv"); err != nil {
		t.Fatal(err)
	}
	r.sim.SetFaults(zuorasim.Faults{DropAfterRead: 1, ExpireTokens: true})
	p := part(t, "soap.csv", tinyCSV)
	rc, err := s.Submit(ctx, p, "k")
	if err != nil {
		t.Fatal(err)
	}
	imps := r.sim.Imports()
	if len(imps) != 1 || imps[0].ID != rc.ImportID {
		t.Fatalf("imports %+v, receipt %+v", imps, rc)
	}
	if !strings.Contains(r.logs.String(), "looking the import up by name") {
		t.Errorf("the create's answer was not lost; logs:\n%s", r.logs)
	}
	if st := waitFinal(t, s, rc); st.State != Completed || st.Imported != 2 {
		t.Fatalf("status %+v", st)
	}
}

func TestSOAPErrors(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	ctx := context.Background()
	_, err := r.newSOAP("wrong-password").Submit(ctx, part(t, "a.csv", tinyCSV), "k")
	e := zerr(t, err)
	if e.Op != "login" || e.Retryable || strings.Contains(e.Error(), "wrong-password") {
		t.Fatalf("error %+v, want a final login error without the password", e)
	}
	_, err = r.newSOAP("s3cret-value").Submit(ctx, fixturePart(t, "zip-with-dir.zip"), "k")
	if e := zerr(t, err); e.Retryable || !strings.Contains(e.Message, "The zip file cannot contain a directory") {
		t.Fatalf("error %+v", e)
	}
	if n := len(r.sim.Imports()); n != 0 {
		t.Fatalf("%d imports", n)
	}
}

// The file goes as Zuora documents it, text/plain;name=<file name>; the
// sim refuses any other type, and an endpoint below WSDL 37.0, for good.
func TestSOAPAttachmentTypeAndVersion(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"usage-1a2b.csv", "text/plain;name=usage-1a2b.csv"},
		{"march usage.csv", `text/plain;name="march usage.csv"`},
	} {
		if got := attachmentType(tt.name); got != tt.want {
			t.Errorf("attachmentType(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	r := newRig(t, zuorasim.Options{}, nil)
	old := NewSOAPImport(r.cl, r.srv.URL+"/apps/services/a/30.0", "usagedrop", "s3cret-value")
	_, err := old.Submit(context.Background(), part(t, "a.csv", tinyCSV), "k")
	if e := zerr(t, err); e.Retryable || !strings.Contains(e.Message, "37.0") {
		t.Fatalf("error %+v, want a final refusal of WSDL 30.0", e)
	}
}

// A login that names a server off the configured domain, or plain http to
// another host, is refused before anything else is sent: every later call
// would carry the session there.
func TestSOAPLoginServerURLStaysOnDomain(t *testing.T) {
	tests := []struct {
		name, serverURL, want string
	}{
		{"another domain", "https://zuora.com.evil.example/apps/services/a/119.0", "zuora.com.evil.example"},
		{"plain http elsewhere", "http://services1.zuora.com/apps/services/a/119.0", "plain http"},
		{"another port on loopback", "http://127.0.0.1:1/apps/services/a/119.0", "is not on 127.0.0.1:"},
		{"not a URL", "::", "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, zuorasim.Options{SOAPServerURL: tt.serverURL}, nil)
			_, err := r.newSOAP("s3cret-value").Submit(context.Background(), part(t, "a.csv", tinyCSV), "k")
			e := zerr(t, err)
			if e.Op != "login" || e.Retryable || !strings.Contains(e.Message, tt.want) || !strings.Contains(e.Message, "was not followed") {
				t.Fatalf("error %+v, want a final login error naming %q", e, tt.want)
			}
			if n := len(r.sim.Imports()); n != 0 {
				t.Fatalf("%d imports", n)
			}
		})
	}
	// The server's own URL (loopback, same host and port) is followed.
	r := newRig(t, zuorasim.Options{}, nil)
	s := r.newSOAP("s3cret-value")
	if _, _, err := s.Find(context.Background(), "x.csv"); err != nil {
		t.Fatal(err)
	}
}
