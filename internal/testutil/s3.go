// Package testutil starts real protocol servers for tests: in-process S3
// (gofakes3, with injectable faults), SFTP (pkg/sftp behind x/crypto/ssh)
// and SQS (the JSON protocol, enough for event notifications), and the
// real OpenSSH sshd and versitygw S3 gateway as child processes.
//
// NewSshd needs root: it creates the local account usagedrop-sftp
// (password field "*") on first use and /run/sshd.
//
// Helpers that need a binary skip the test when it is missing, except under
// CI (env CI set), where a missing server is a failure: an integration test
// that silently skips proves nothing. scripts/ci-deps.sh installs both.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an S3 endpoint for tests, with one bucket made for the caller.
type S3 struct {
	// URL is the endpoint, for path-style addressing.
	URL string
	// Bucket exists and is empty when the helper returns.
	Bucket string
	// AccessKeyID and SecretAccessKey are accepted by the server.
	AccessKeyID, SecretAccessKey string
	// Region is the region clients should sign for.
	Region string

	faults     *faults
	httpClient *http.Client // trusts the test certificate
}

// NewS3 starts an in-process gofakes3 server under httptest, served
// path-style on loopback, with a fresh bucket.
func NewS3(t testing.TB) *S3 {
	t.Helper()
	s, _ := newS3(t, httptest.NewServer)
	return s
}

// NewS3TLS is NewS3 served over HTTPS with a self-signed certificate,
// written as PEM to the returned CA file (for AWS_CA_BUNDLE).
func NewS3TLS(t testing.TB) (s *S3, caFile string) {
	t.Helper()
	s, srv := newS3(t, httptest.NewTLSServer)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	return s, caFile
}

func newS3(t testing.TB, start func(http.Handler) *httptest.Server) (*S3, *httptest.Server) {
	t.Helper()
	f := &faults{}
	fake := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(false))
	srv := start(f.wrap(fake.Server()))
	t.Cleanup(srv.Close)
	s := &S3{URL: srv.URL, Bucket: "drops", AccessKeyID: "test-key",
		SecretAccessKey: "test-secret", Region: "us-east-1", faults: f, httpClient: srv.Client()}
	s.createBucket(t)
	return s, srv
}

// Client returns a plain SDK client for the server, to play the user who
// drops and inspects files out of band. It reads nothing from the ambient
// AWS environment.
func (s *S3) Client() *s3.Client {
	o := s3.Options{
		BaseEndpoint:     aws.String(s.URL),
		Region:           s.Region,
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, ""),
		RetryMaxAttempts: 5,
	}
	if s.httpClient != nil {
		o.HTTPClient = s.httpClient
	}
	return s3.New(o)
}

func (s *S3) createBucket(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("create bucket %s at %s: %v", s.Bucket, s.URL, err)
	}
}

// Fail makes the next n requests answer HTTP status with the S3 error
// code (e.g. 503 "SlowDown", 500 "InternalError") instead of reaching the
// server. Only in-process servers can fail on request.
func (s *S3) Fail(t testing.TB, n, status int, code string) {
	t.Helper()
	if s.faults == nil {
		t.Fatal("Fail: only the in-process S3 injects faults")
	}
	s.faults.set(n, status, code)
}

// CutDownloads makes the next n object downloads (GET of an object) stop
// after the given number of body bytes, the connection closed mid-body
// as a network failure would.
func (s *S3) CutDownloads(t testing.TB, n int, after int64) {
	t.Helper()
	if s.faults == nil {
		t.Fatal("CutDownloads: only the in-process S3 injects faults")
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.cuts, s.faults.cutAfter = n, after
}

// Failed returns how many requests were answered with an injected fault.
func (s *S3) Failed() int {
	if s.faults == nil {
		return 0
	}
	return s.faults.count()
}

// faults answers a number of requests with an error before passing the
// rest to the real handler.
type faults struct {
	mu     sync.Mutex
	left   int
	status int
	code   string
	served int

	cuts     int
	cutAfter int64
}

// takeCut reports whether r is a download to cut, and after how many bytes.
func (f *faults) takeCut(r *http.Request) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cuts <= 0 || r.Method != http.MethodGet || r.URL.Query().Has("list-type") {
		return 0, false
	}
	f.cuts--
	f.served++
	return f.cutAfter, true
}

// cutWriter passes the first left bytes of a body, then closes the
// connection under the client.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.left {
		p = p[:w.left]
	}
	n, err := w.ResponseWriter.Write(p)
	w.left -= int64(n)
	if err != nil || w.left > 0 {
		return n, err
	}
	rc := http.NewResponseController(w.ResponseWriter)
	rc.Flush()
	if conn, _, err := rc.Hijack(); err == nil {
		conn.Close()
	}
	return n, errors.New("download cut by test")
}

func (f *faults) set(n, status int, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left, f.status, f.code = n, status, code
}

func (f *faults) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served
}

// take reports the fault to answer with, if any is left.
func (f *faults) take() (int, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.left <= 0 {
		return 0, "", false
	}
	f.left--
	f.served++
	return f.status, f.code, true
}

func (f *faults) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if after, ok := f.takeCut(r); ok {
			h.ServeHTTP(&cutWriter{ResponseWriter: w, left: after}, r)
			return
		}
		status, code, ok := f.take()
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by test</Message></Error>`, code)
	})
}

// Versitygw starts the real versitygw S3 gateway serving a temp directory,
// with a fresh bucket. The binary comes from VERSITYGW, PATH, or the cache
// scripts/ci-deps.sh builds into.
func Versitygw(t testing.TB) *S3 {
	t.Helper()
	bin := findBinary(t, "versitygw", os.Getenv("VERSITYGW"), filepath.Join(CacheDir(), "versitygw"))
	root := t.TempDir()
	addr := freeAddr(t)
	key, secret := "vgw-"+randHex(4), randHex(16)
	cmd := exec.Command(bin, "--port", addr, "posix", root)
	cmd.Env = append(minimalEnv(), "ROOT_ACCESS_KEY="+key, "ROOT_SECRET_KEY="+secret)
	logf, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	waitListening(t, addr, logf.Name())
	s := &S3{URL: "http://" + addr, Bucket: "drops", AccessKeyID: key, SecretAccessKey: secret, Region: "us-east-1"}
	s.createBucket(t)
	return s
}

// CacheDir is where scripts/ci-deps.sh puts the server binaries it builds.
func CacheDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "usagedrop-test", "bin")
}

// findBinary returns the first executable among the candidates and name on
// PATH; when none is found it skips the test, or fails it under CI.
func findBinary(t testing.TB, name string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return c
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	Unavailable(t, "%s not found (run scripts/ci-deps.sh)", name)
	return ""
}

// Unavailable skips the test for a missing dependency, or fails it when
// the CI environment variable is set.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// minimalEnv is the environment for child servers: enough to run, and no
// ambient AWS_* or proxy settings that would change their behaviour.
func minimalEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "TMPDIR", "LANG":
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListening waits until addr accepts connections, failing with the
// server's log when it does not within 15 s.
func waitListening(t testing.TB, addr, logPath string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(logPath)
	t.Fatalf("server on %s did not start; log:\n%s", addr, log)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// WithBucket returns the same server with a new, empty bucket, so tests
// sharing one server process do not see each other's objects.
func (s *S3) WithBucket(t testing.TB) *S3 {
	t.Helper()
	c := *s
	c.Bucket = "drops-" + randHex(4)
	c.createBucket(t)
	return &c
}
