package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"usagedrop/internal/testutil"
	"usagedrop/zuorasim"
)

const tinyCSV = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID\nA1,GB,1,03/01/2026,,,\nA2,GB,2.5,03/02/2026,03/03/2026,,\n"

// rig is a zuorasim behind a real HTTP server and a FileImport talking to
// it with tiny backoffs.
type rig struct {
	sim  *zuorasim.Sim
	srv  *httptest.Server
	cl   *Client
	fi   *FileImport
	logs *syncBuffer
}

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newRig(t *testing.T, opt zuorasim.Options, tweak func(*Config)) *rig {
	t.Helper()
	if opt.ProcessingDelay == 0 {
		opt.ProcessingDelay = 20 * time.Millisecond
	}
	if opt.ClientID == "" {
		opt.ClientID, opt.ClientSecret = "usagedrop", "s3cret-value"
	}
	r := &rig{sim: zuorasim.New(opt), logs: &syncBuffer{}}
	r.srv = httptest.NewServer(r.sim)
	t.Cleanup(r.srv.Close)
	cfg := Config{
		BaseURL:      r.srv.URL,
		ClientID:     opt.ClientID,
		ClientSecret: opt.ClientSecret,
		MaxAttempts:  4,
		BackoffBase:  time.Millisecond,
		BackoffCap:   5 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	r.cl = NewClient(cfg)
	r.fi = NewFileImport(r.cl)
	r.fi.ConflictWait = 20 * time.Millisecond
	t.Cleanup(func() {
		if strings.Contains(r.logs.String(), opt.ClientSecret) {
			t.Error("the client secret reached the log")
		}
	})
	return r
}

// part writes content to a file in a temp dir and describes it as a Part.
func part(t *testing.T, name, content string) Part {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	return Part{Name: name, Path: p, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
}

// fixturePart copies a shared fixture into a temp dir as a Part.
func fixturePart(t *testing.T, name string) Part {
	t.Helper()
	b, err := os.ReadFile(testutil.CopyFixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return part(t, name, string(b))
}

// wait polls the receipt until its import is final.
func (r *rig) wait(t *testing.T, rc Receipt) Status {
	t.Helper()
	return waitFinal(t, r.fi, rc)
}

// waitFinal polls u until the import of rc is final.
func waitFinal(t *testing.T, u Uploader, rc Receipt) Status {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		st, err := u.Status(context.Background(), rc)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if st.State.Final() {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("import %s never reached a final state", rc.ImportID)
	return Status{}
}

// zerr returns err as *Error or fails the test.
func zerr(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not *uploader.Error", err, err)
	}
	return e
}

func TestSubmitTemplateFixture(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	p := fixturePart(t, "partner-template.csv")
	rc, err := r.fi.Submit(context.Background(), p, p.SHA256+":0")
	if err != nil {
		t.Fatal(err)
	}
	if rc.API != "file" || len(rc.ImportID) != 32 || rc.RequestID == "" || rc.TrackID != trackIDFor(p.SHA256+":0") {
		t.Fatalf("receipt %+v", rc)
	}
	st := r.wait(t, rc)
	if st.State != Completed || st.Imported != 1000 || st.Total != 1000 {
		t.Fatalf("status %+v", st)
	}
	if n := len(r.sim.Records()); n != 1000 {
		t.Fatalf("sim has %d records, want 1000", n)
	}
}

func TestStatusURLForms(t *testing.T) {
	for _, abs := range []bool{false, true} {
		t.Run(map[bool]string{false: "relative", true: "absolute"}[abs], func(t *testing.T) {
			r := newRig(t, zuorasim.Options{AbsoluteStatusURL: abs}, nil)
			p := part(t, "usage.csv", tinyCSV)
			rc, err := r.fi.Submit(context.Background(), p, "key-"+p.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			want := r.srv.URL + "/v1/usage/" + rc.ImportID + "/status"
			if rc.StatusURL != want || len(rc.ImportID) != 32 {
				t.Fatalf("status URL %q, want %q", rc.StatusURL, want)
			}
			if st := r.wait(t, rc); st.State != Completed || st.Imported != 2 {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

func TestBadRowsImportFails(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	p := fixturePart(t, "bad-rows.csv")
	rc, err := r.fi.Submit(context.Background(), p, "bad-rows")
	if err != nil {
		t.Fatal(err)
	}
	st := r.wait(t, rc)
	if st.State != Failed || !strings.Contains(st.Message, "Row 8: The UOM is missing") || st.Imported != 0 || st.Total != 40 {
		t.Fatalf("status %+v", st)
	}
	if n := len(r.sim.Records()); n != 0 {
		t.Fatalf("%d records imported from a failed file", n)
	}
}

func TestTenantEndsImport(t *testing.T) {
	tests := []struct {
		faults zuorasim.Faults
		want   State
	}{
		{zuorasim.Faults{FailImports: 1}, Failed},
		{zuorasim.Faults{CancelImports: 1}, Canceled},
	}
	for _, tt := range tests {
		t.Run(string(tt.want), func(t *testing.T) {
			r := newRig(t, zuorasim.Options{}, nil)
			r.sim.SetFaults(tt.faults)
			rc, err := r.fi.Submit(context.Background(), part(t, "usage.csv", tinyCSV), "k")
			if err != nil {
				t.Fatal(err)
			}
			if st := r.wait(t, rc); st.State != tt.want || st.Message == "" || st.Imported != 0 {
				t.Fatalf("status %+v, want %s", st, tt.want)
			}
			if n := len(r.sim.Records()); n != 0 {
				t.Fatalf("%d records", n)
			}
		})
	}
}

// TestLostAnswerImportsOnce drops the connection after the sim took the
// upload. The retry goes out under the same key and gets the first answer
// replayed: one import, each record once.
func TestLostAnswerImportsOnce(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*Config)
	}{
		{"pooled connections", nil},
		// Without reuse Go's transport never resends by itself, so the
		// client's own retry is what recovers.
		{"fresh connections", func(c *Config) {
			c.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, zuorasim.Options{}, tt.tweak)
			r.sim.SetFaults(zuorasim.Faults{DropAfterRead: 1})
			p := part(t, "usage.csv", tinyCSV)
			rc, err := r.fi.Submit(context.Background(), p, "drop-key")
			if err != nil {
				t.Fatal(err)
			}
			imps := r.sim.Imports()
			if len(imps) != 1 || imps[0].ID != rc.ImportID || imps[0].IdempotencyKey != "drop-key" {
				t.Fatalf("imports %+v, receipt %+v", imps, rc)
			}
			if st := r.wait(t, rc); st.State != Completed {
				t.Fatalf("status %+v", st)
			}
			if n := len(r.sim.Records()); n != 2 {
				t.Fatalf("%d records, want 2: the part was imported twice", n)
			}
		})
	}
}

// TestTimeoutThenConflict: the first answer is slower than the client's
// timeout; the resend finds the key in flight (409), waits, and gets the
// first answer.
func TestTimeoutThenConflict(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, func(c *Config) {
		// The wait for the answer times out, never the sending of the
		// body: the upload surely arrives, its answer surely does not.
		c.HTTPClient = &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 150 * time.Millisecond}}
	})
	// The hold is long against the timeout so that the resend surely
	// finds the first request still in flight, even on a loaded machine.
	r.sim.SetFaults(zuorasim.Faults{AnswerDelay: time.Second})
	p := part(t, "usage.csv", tinyCSV)
	rc, err := r.fi.Submit(context.Background(), p, "slow-key")
	if err != nil {
		t.Fatal(err)
	}
	if imps := r.sim.Imports(); len(imps) != 1 || imps[0].ID != rc.ImportID {
		t.Fatalf("imports %+v, receipt %+v", imps, rc)
	}
	if !strings.Contains(r.logs.String(), "still busy") {
		t.Errorf("no 409 was seen; logs:\n%s", r.logs)
	}
}

// TestPersistentConflictFindsByName: Zuora keeps answering 409 for a key
// it already used; Submit finds the import by its name.
func TestPersistentConflictFindsByName(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	r.fi.ConflictTries, r.fi.ConflictWait = 2, time.Millisecond
	p := part(t, "usage-a1b2.csv", tinyCSV)
	first, err := r.fi.Submit(context.Background(), p, "k409")
	if err != nil {
		t.Fatal(err)
	}
	r.sim.SetFaults(zuorasim.Faults{Conflicts: 10})
	again, err := r.fi.Submit(context.Background(), p, "k409")
	if err != nil {
		t.Fatal(err)
	}
	if again.ImportID != first.ImportID || again.StatusURL != first.StatusURL {
		t.Fatalf("found %+v, first %+v", again, first)
	}

	other := part(t, "never-sent.csv", tinyCSV)
	r.sim.SetFaults(zuorasim.Faults{Conflicts: 10})
	_, err = r.fi.Submit(context.Background(), other, "k-other")
	if e := zerr(t, err); e.HTTPStatus != http.StatusConflict || !e.Retryable {
		t.Fatalf("error %+v, want a retryable 409", e)
	}
	if n := len(r.sim.Imports()); n != 1 {
		t.Fatalf("%d imports, want 1", n)
	}
}

func TestFindEscapesName(t *testing.T) {
	r := newRig(t, zuorasim.Options{}, nil)
	p := part(t, `o'brien\usage.csv`, tinyCSV)
	rc, err := r.fi.Submit(context.Background(), p, "quote")
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := r.fi.Find(context.Background(), p.Name)
	if err != nil || !ok || got.ImportID != rc.ImportID {
		t.Fatalf("Find = %+v, %v, %v; want %s", got, ok, err, rc.ImportID)
	}
	if _, ok, err := r.fi.Find(context.Background(), "nothing.csv"); ok || err != nil {
		t.Fatalf("Find(nothing) = %v, %v", ok, err)
	}
	// A second import of the same name: Find returns the newer one.
	newer, err := r.fi.Submit(context.Background(), p, "quote-2")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := r.fi.Find(context.Background(), p.Name); err != nil || !ok || got.ImportID != newer.ImportID {
		t.Fatalf("Find = %+v, %v, %v; want the newer %s", got, ok, err, newer.ImportID)
	}
}

func TestLatestImport(t *testing.T) {
	tests := []struct {
		dates []string
		want  int
	}{
		{[]string{"2026-03-01T10:00:00.000-08:00"}, 0},
		{[]string{"2026-03-02T10:00:00.000-08:00", "2026-03-01T10:00:00.000-08:00"}, 0},
		{[]string{"2026-03-01T10:00:00.000-08:00", "2026-03-01T10:00:00.000-08:00"}, 1},
		{[]string{"2026-03-01T17:00:00Z", "2026-03-01T10:00:00-08:00", "2026-03-01T10:00:00.500-08:00"}, 2},
		{[]string{"", ""}, 1},
	}
	for _, tt := range tests {
		if got := latestImport(len(tt.dates), func(i int) string { return tt.dates[i] }); got != tt.want {
			t.Errorf("latestImport(%v) = %d, want %d", tt.dates, got, tt.want)
		}
	}
}

func TestSubmitRefusesBeforeSending(t *testing.T) {
	big := part(t, "big.csv", strings.Repeat("x", MaxFileSize+1))
	good := part(t, "ok.csv", tinyCSV)
	changed := good
	changed.SHA256 = strings.Repeat("0", 64)
	tests := []struct {
		name string
		p    Part
		key  string
		want string
	}{
		{"no key", good, "", "no idempotency key"},
		{"long name", Part{Name: strings.Repeat("n", 47) + ".csv", Path: good.Path}, "k", "1 to 50 characters"},
		{"not csv or zip", Part{Name: "usage.xlsx", Path: good.Path}, "k", ".csv or .zip"},
		{"too big", big, "k", "at most 4194304"},
		{"missing file", Part{Name: "gone.csv", Path: filepath.Join(t.TempDir(), "gone.csv")}, "k", "no such file"},
		{"changed on disk", changed, "k", errPartChanged.Error()},
	}
	r := newRig(t, zuorasim.Options{}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.fi.Submit(context.Background(), tt.p, tt.key)
			e := zerr(t, err)
			if e.Retryable || !strings.Contains(e.Error(), tt.want) {
				t.Fatalf("error %q (retryable %v), want final with %q", e, e.Retryable, tt.want)
			}
		})
	}
	if n := len(r.sim.Imports()); n != 0 {
		t.Fatalf("%d imports from refused parts", n)
	}
}

func TestRatePlanChargeNeedsWSDL146(t *testing.T) {
	const csv = "ACCOUNT_ID,UOM,QTY,STARTDATE,ENDDATE,SUBSCRIPTION_ID,CHARGE_ID,PRODUCT_RATE_PLAN_CHARGE_ID\nA1,GB,1,03/01/2026,,,,PRPC-1\n"
	tests := []struct {
		version string
		want    State
	}{
		{"", Failed},
		{"119", Failed},
		{"146", Completed},
	}
	for _, tt := range tests {
		t.Run("wsdl "+tt.version, func(t *testing.T) {
			r := newRig(t, zuorasim.Options{}, func(c *Config) { c.WSDLVersion = tt.version })
			rc, err := r.fi.Submit(context.Background(), part(t, "prpc.csv", csv), "prpc")
			if err != nil {
				t.Fatal(err)
			}
			if st := r.wait(t, rc); st.State != tt.want {
				t.Fatalf("status %+v, want %s", st, tt.want)
			}
			if recs := r.sim.Records(); tt.want == Completed && (len(recs) != 1 || recs[0].RatePlanCharge != "PRPC-1") {
				t.Fatalf("records %+v", recs)
			}
		})
	}
}

// newSink serves the sim, except that uploads are read as a stream, counted
// into got and thrown away, so that what a Submit allocates is the
// client's own.
func newSink(t testing.TB, got *atomic.Int64) *httptest.Server {
	sim := zuorasim.New(zuorasim.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/usage" {
			sim.ServeHTTP(w, req)
			return
		}
		mr, err := req.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p, err := mr.NextPart()
		if err != nil || p.FormName() != "file" {
			http.Error(w, "no file part", http.StatusBadRequest)
			return
		}
		n, _ := io.Copy(io.Discard, p)
		got.Store(n)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"checkImportStatus":"/v1/usage/00000000000000000000000000000000/status","size":1,"success":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fullSizeCSV returns a template CSV just under Zuora's 4 MB limit.
func fullSizeCSV() string {
	content := genCSV(1)
	row := strings.Split(content, "\r\n")[1] + "\r\n"
	return content + strings.Repeat(row, (MaxFileSize-len(content))/len(row))
}

// TestSubmitStreamsFromDisk sends a part of Zuora's full 4 MB and checks
// that the client did not hold the file in memory.
func TestSubmitStreamsFromDisk(t *testing.T) {
	var got atomic.Int64
	srv := newSink(t, &got)
	p := part(t, "big.csv", fullSizeCSV())
	fi := NewFileImport(NewClient(Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "s"}))
	if _, _, err := fi.Find(context.Background(), "warm.csv"); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := fi.Submit(context.Background(), p, "stream"); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got.Load() != p.Size {
		t.Fatalf("server read %d bytes, part has %d", got.Load(), p.Size)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("submitting %d bytes allocated %d bytes (client and server together)", p.Size, alloc)
	if alloc > uint64(p.Size)/4 {
		t.Fatalf("submitting %d bytes allocated %d: the file is being buffered", p.Size, alloc)
	}
}

// benchmarkSubmit uploads a full-size part to srv again and again.
func benchmarkSubmit(b *testing.B, srv *httptest.Server, poll bool) {
	content := fullSizeCSV()
	path := filepath.Join(b.TempDir(), "big.csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
	fi := NewFileImport(NewClient(Config{BaseURL: srv.URL}))
	p := Part{Name: "big.csv", Path: path, Size: int64(len(content))}
	b.SetBytes(p.Size)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rc, err := fi.Submit(context.Background(), p, "bench-"+strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		if !poll {
			continue
		}
		if st, err := fi.Status(context.Background(), rc); err != nil || st.State != Completed {
			b.Fatalf("status %+v, %v", st, err)
		}
	}
}

// BenchmarkSubmit4MB uploads a full-size part to the sim over loopback; the
// sim checks every row before it answers and imports them on the poll.
func BenchmarkSubmit4MB(b *testing.B) {
	srv := httptest.NewServer(zuorasim.New(zuorasim.Options{ProcessingDelay: -1}))
	defer srv.Close()
	benchmarkSubmit(b, srv, true)
}

// BenchmarkSubmitStream4MB measures the client alone: the server reads the
// upload and throws it away.
func BenchmarkSubmitStream4MB(b *testing.B) {
	var got atomic.Int64
	benchmarkSubmit(b, newSink(b, &got), false)
}

// An answer Zuora gave but nobody can read may hide an import that exists:
// the part must stay retryable, never failed.
func TestUnreadableAnswerIsRetryable(t *testing.T) {
	sim := zuorasim.New(zuorasim.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v1/usage" {
			_, _ = io.Copy(io.Discard, req.Body)
			_, _ = io.WriteString(w, `{"success":true}`)
			return
		}
		sim.ServeHTTP(w, req)
	}))
	defer srv.Close()
	fi := NewFileImport(NewClient(Config{BaseURL: srv.URL}))
	_, err := fi.Submit(context.Background(), part(t, "a.csv", tinyCSV), "k")
	if e := zerr(t, err); !e.Retryable || !strings.Contains(e.Message, "no checkImportStatus") {
		t.Fatalf("error %+v, want retryable", e)
	}
}

// Zuora stores a failed answer under its key and replays it for 24 h. A
// part whose first send got a stored 500 is looked up by name; if no
// import exists it is sent under the next key of its chain, if one exists
// it is adopted. Either way Zuora holds the part exactly once, also when a
// fresh process (no memory of the chain) submits it again.
func TestStoredServerErrorRecovers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		faults  zuorasim.Faults
		wantKey string
	}{
		{"nothing imported", zuorasim.Faults{StoredServerErrors: 1}, "stored-key-r1"},
		{"imported, then 500", zuorasim.Faults{StoredServerErrorsImported: 1}, "stored-key"},
		{"two stored 500s", zuorasim.Faults{StoredServerErrors: 2}, "stored-key-r2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, zuorasim.Options{}, nil)
			r.sim.SetFaults(tt.faults)
			p := part(t, "usage-5e1f.csv", tinyCSV)
			rc, err := r.fi.Submit(context.Background(), p, "stored-key")
			if err != nil {
				t.Fatalf("submit: %v\n%s", err, r.logs)
			}
			imps := r.sim.Imports()
			if len(imps) != 1 || imps[0].ID != rc.ImportID || imps[0].IdempotencyKey != tt.wantKey {
				t.Fatalf("imports %+v, receipt %+v, want one under %s", imps, rc, tt.wantKey)
			}
			if st := r.wait(t, rc); st.State != Completed {
				t.Fatalf("status %+v", st)
			}
			// A restarted daemon sends the part again from the start of
			// its chain: the stored answers replay, the look-up finds it.
			again, err := NewFileImport(r.cl).Submit(context.Background(), p, "stored-key")
			if err != nil || again.ImportID != rc.ImportID {
				t.Fatalf("resubmit: %+v, %v; want import %s", again, err, rc.ImportID)
			}
			if n, imps := len(r.sim.Records()), r.sim.Imports(); n != 2 || len(imps) != 1 {
				t.Fatalf("%d records in %d imports, want 2 in 1", n, len(imps))
			}
		})
	}
}
