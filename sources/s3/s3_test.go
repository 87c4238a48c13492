package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"usagedrop/internal/testutil"
	"usagedrop/sources"
	"usagedrop/sources/sourcetest"
)

const testPrefix = "incoming/"

// isolateAWS keeps the ambient AWS environment (profiles, keys, region)
// out of a test; AWS_CA_BUNDLE is left alone unless a test sets it.
func isolateAWS(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		t.Setenv(k, missing)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
	}
}

// store is a bucket prefix seen through a plain client, as a user sees it.
type store struct {
	srv *testutil.S3
	c   *s3.Client
}

func newStore(srv *testutil.S3) store { return store{srv: srv, c: srv.Client()} }

func (st store) Source(t *testing.T, owner string, lease time.Duration) sources.Source {
	return newSource(st.srv, owner, lease)
}

func newSource(srv *testutil.S3, owner string, lease time.Duration) *Source {
	s := New("s3-test", srv.Bucket, testPrefix)
	s.Endpoint, s.PathStyle, s.Region = srv.URL, true, srv.Region
	s.AccessKeyID, s.SecretAccessKey = srv.AccessKeyID, srv.SecretAccessKey
	s.Owner, s.Lease, s.MaxBackoff = owner, lease, 100*time.Millisecond
	return s
}

func (st store) Put(t *testing.T, key string, body []byte) {
	t.Helper()
	_, err := st.c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(st.srv.Bucket),
		Key: aws.String(testPrefix + key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func (st store) Get(t *testing.T, key string) ([]byte, error) {
	out, err := st.c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(st.srv.Bucket),
		Key: aws.String(testPrefix + key)})
	if err != nil {
		return nil, classify(err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (st store) Keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(st.c, &s3.ListObjectsV2Input{Bucket: aws.String(st.srv.Bucket),
		Prefix: aws.String(testPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), testPrefix))
		}
	}
	return keys
}

// Deny: the test servers have one all-powerful user.
func (st store) Deny(t *testing.T, key string) bool { return false }

// setup isolates the test from the ambient AWS settings and gives it an
// in-process store and a source owned by "a" over it.
func setup(t *testing.T) (context.Context, *testutil.S3, store, *Source) {
	isolateAWS(t)
	srv := testutil.NewS3(t)
	return context.Background(), srv, newStore(srv), newSource(srv, "a", time.Hour)
}

func TestConformance(t *testing.T) {
	isolateAWS(t)
	sourcetest.Run(t, func(t *testing.T) sourcetest.Store { return newStore(testutil.NewS3(t)) })
}

// TestConformanceVersitygw runs the suite against a real S3 server
// process; without the binary it skips, or fails under CI.
func TestConformanceVersitygw(t *testing.T) {
	isolateAWS(t)
	srv := testutil.Versitygw(t)
	sourcetest.Run(t, func(t *testing.T) sourcetest.Store {
		return newStore(srv.WithBucket(t))
	})
}

// TestRetriesThrottling: a store answering SlowDown and 500 for a while
// delays List, Claim, Open and Finish but does not fail or double them.
func TestRetriesThrottling(t *testing.T) {
	ctx, srv, st, src := setup(t)
	st.Put(t, "busy.csv", []byte("under load"))
	faults := []struct {
		status int
		code   string
	}{{503, "SlowDown"}, {500, "InternalError"}}
	fail := func(i int) { f := faults[i%2]; srv.Fail(t, 4, f.status, f.code) }

	fail(0)
	objs, err := src.List(ctx)
	if err != nil || len(objs) != 1 {
		t.Fatalf("List under faults = %v, %v", objs, err)
	}
	fail(1)
	c, err := src.Claim(ctx, objs[0])
	if err != nil {
		t.Fatalf("Claim under faults: %v", err)
	}
	fail(2)
	rc, err := src.Open(ctx, c.Key)
	if err != nil {
		t.Fatalf("Open under faults: %v", err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(body) != "under load" {
		t.Fatalf("read under faults = %q, %v", body, err)
	}
	fail(3)
	key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true,
		Reports: []sources.Report{{Suffix: ".status.txt", Body: []byte("ok")}}})
	if err != nil || key != "imported/busy.csv" {
		t.Fatalf("Finish under faults = %q, %v", key, err)
	}
	if got := srv.Failed(); got != 16 {
		t.Errorf("store answered %d faults, want 16", got)
	}
	keys := st.Keys(t)
	want := []string{"imported/busy.csv", "imported/busy.csv.status.txt"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Errorf("keys after Finish = %q, want %q", keys, want)
	}
}

// TestGivesUpAfterMaxAttempts: a store that keeps failing is reported,
// not retried for ever.
func TestGivesUpAfterMaxAttempts(t *testing.T) {
	isolateAWS(t)
	srv := testutil.NewS3(t)
	src := newSource(srv, "a", time.Hour)
	src.MaxAttempts = 3
	srv.Fail(t, 100, 503, "SlowDown")
	if _, err := src.List(context.Background()); err == nil || !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("List against a failing store: got %v, want a SlowDown error", err)
	}
	if got := srv.Failed(); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
}

func TestFatalErrors(t *testing.T) {
	isolateAWS(t)
	srv := testutil.NewS3(t)
	tests := []struct {
		name   string
		modify func(*Source)
	}{
		{"missing bucket", func(s *Source) { s.Bucket = "no-such-bucket" }},
		{"no bucket configured", func(s *Source) { s.Bucket = "" }},
		{"no region anywhere", func(s *Source) { s.Region, s.Endpoint = "", "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(srv, "a", time.Hour)
			tt.modify(src)
			if _, err := src.List(context.Background()); !errors.Is(err, sources.ErrFatal) {
				t.Errorf("List: got %v, want ErrFatal", err)
			}
		})
	}
}

// TestCABundle: the source works over HTTPS with AWS_CA_BUNDLE naming the
// store's CA, over HTTP whether or not the variable is set, and says
// clearly when the bundle cannot be read.
func TestCABundle(t *testing.T) {
	isolateAWS(t)
	ctx := context.Background()
	tlsSrv, ca := testutil.NewS3TLS(t)
	plain := testutil.NewS3(t)
	tests := []struct {
		name, bundle string
		srv          *testutil.S3
		wantErr      error
	}{
		{"https with bundle", ca, tlsSrv, nil},
		{"http without bundle", "", plain, nil},
		{"http with bundle", ca, plain, nil},
		{"unreadable bundle", filepath.Join(t.TempDir(), "missing.pem"), plain, sources.ErrFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_CA_BUNDLE", tt.bundle)
			if tt.bundle == "" {
				os.Unsetenv("AWS_CA_BUNDLE")
			}
			_, err := newSource(tt.srv, "a", time.Hour).List(ctx)
			if !errors.Is(err, tt.wantErr) && (tt.wantErr != nil || err != nil) {
				t.Errorf("List: got %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("https without bundle", func(t *testing.T) {
		os.Unsetenv("AWS_CA_BUNDLE")
		t.Setenv("SSL_CERT_FILE", filepath.Join(t.TempDir(), "none.pem"))
		src := newSource(tlsSrv, "a", time.Hour)
		src.MaxAttempts = 1
		if _, err := src.List(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("List over HTTPS with an unknown CA: got %v, want a certificate error", err)
		}
	})
}

func TestStringRedactsSecret(t *testing.T) {
	s := New("n", "b", "p")
	s.AccessKeyID, s.SecretAccessKey = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG"
	if got := s.String(); strings.Contains(got, s.SecretAccessKey) || !strings.Contains(got, "redacted") {
		t.Errorf("String() = %q leaks or hides the secret wrongly", got)
	}
}

func TestCopySource(t *testing.T) {
	tests := []struct{ bucket, key, want string }{
		{"b", "in/a.csv", "b/in/a.csv"},
		{"b", "in/March 2026 + x.csv", "b/in/March%202026%20%2B%20x.csv"},
		{"b", "données.csv", "b/donn%C3%A9es.csv"},
	}
	for _, tt := range tests {
		if got := copySource(tt.bucket, tt.key); got != tt.want {
			t.Errorf("copySource(%q, %q) = %q, want %q", tt.bucket, tt.key, got, tt.want)
		}
	}
}

// TestOrphanedClaimRemoved: a claim left by a Finish cut short between its
// deletes must not hide a new drop of the same name for a whole lease.
func TestOrphanedClaimRemoved(t *testing.T) {
	ctx, srv, st, src := setup(t)
	st.Put(t, "o.csv", []byte("first"))
	sourcetest.ClaimOnly(t, ctx, src)
	// The crash: the object went to imported/, its claim stayed.
	if _, err := st.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(srv.Bucket),
		Key: aws.String(testPrefix + "o.csv")}); err != nil {
		t.Fatal(err)
	}
	src.List(ctx) // too young to remove
	if _, err := st.Get(t, "processing/o.csv.claim"); err != nil {
		t.Fatalf("young orphaned claim removed: %v", err)
	}
	src.orphanAge = 0
	src.List(ctx)
	st.Put(t, "o.csv", []byte("second"))
	if objs, err := src.List(ctx); err != nil || len(objs) != 1 || objs[0].Claimed {
		t.Fatalf("List after a new drop = %+v, %v; want it offered, unclaimed", objs, err)
	}
}

// TestFinishAfterReplacement: a user drops a new version under the same
// name while the claimed one is imported. Finish must not move the new
// bytes to imported/; they stay, unclaimed, as a new drop.
func TestFinishAfterReplacement(t *testing.T) {
	ctx, _, st, src := setup(t)
	st.Put(t, "r.csv", []byte("version 1"))
	c := sourcetest.ClaimOnly(t, ctx, src)
	st.Put(t, "r.csv", []byte("version 2"))
	_, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true})
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, sources.ErrChanged) {
		t.Fatalf("Finish after replacement: got %v, want fs.ErrNotExist and ErrChanged", err)
	}
	if _, err := st.Get(t, "imported/r.csv"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("imported/r.csv exists (err %v): the new version was moved", err)
	}
	objs, err := src.List(ctx)
	if err != nil || len(objs) != 1 || objs[0].Claimed {
		t.Fatalf("List after = %+v, %v; want the new version offered", objs, err)
	}
	if got, _ := st.Get(t, "r.csv"); string(got) != "version 2" {
		t.Errorf("r.csv = %q", got)
	}
}

// TestResumeBrokenDownload: a download whose connection breaks mid-body
// resumes with ranged GETs of the same version and yields the whole file.
func TestResumeBrokenDownload(t *testing.T) {
	ctx, srv, st, src := setup(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	st.Put(t, "cut.csv", body)
	c := sourcetest.ClaimOnly(t, ctx, src)
	srv.CutDownloads(t, 2, 300<<10)
	rc, err := src.Open(ctx, c.Key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read across two broken connections: %d of %d bytes, %v", len(got), len(body), err)
	}
	if n := srv.Failed(); n != 2 {
		t.Errorf("%d downloads cut, want 2", n)
	}
}

// TestBrokenDownloadGivesUp: a download that keeps breaking fails; it
// never ends as a short file that looks whole.
func TestBrokenDownloadGivesUp(t *testing.T) {
	ctx, srv, st, src := setup(t)
	st.Put(t, "cut.csv", bytes.Repeat([]byte("x"), 1<<20))
	c := sourcetest.ClaimOnly(t, ctx, src)
	srv.CutDownloads(t, 100, 100<<10)
	rc, err := src.Open(ctx, c.Key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err == nil {
		t.Fatalf("a download broken every time returned %d bytes and no error", len(got))
	}
}

// TestChangedOnEvent: with a queue configured, Changed returns as soon as
// S3 reports a file in the drop folder, ignores events about anything
// else, and deletes every message it read.
func TestChangedOnEvent(t *testing.T) {
	_, srv, _, src := setup(t)
	q := testutil.NewSQS(t)
	src.SQSQueueURL, src.SQSEndpoint = q.QueueURL, q.URL
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Changed(ctx) }()
	for _, other := range []struct{ bucket, key string }{
		{"other-bucket", testPrefix + "a.csv"},
		{srv.Bucket, "elsewhere/a.csv"},
		{srv.Bucket, testPrefix + "processing/a.csv.claim"},
		{srv.Bucket, testPrefix + "imported/a.csv"},
		{srv.Bucket, testPrefix + "upload.csv.part"},
	} {
		q.Send(testutil.S3Event(other.bucket, other.key))
	}
	q.Send("not an S3 event")
	select {
	case err := <-done:
		t.Fatalf("Changed returned %v on events about other files", err)
	case <-time.After(500 * time.Millisecond):
	}
	q.Send(testutil.S3Event(srv.Bucket, testPrefix+"March 2026 données.csv"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Changed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Changed did not return on an event about a dropped file")
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d messages left on the queue, want all deleted", n)
	}
}

func TestChangedSNSEnvelopeAndErrors(t *testing.T) {
	_, srv, _, src := setup(t)
	if err := src.Changed(context.Background()); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Changed without a queue: got %v, want ErrUnsupported", err)
	}
	q := testutil.NewSQS(t)
	src.SQSQueueURL, src.SQSEndpoint = q.QueueURL, q.URL
	envelope, _ := json.Marshal(map[string]string{"Type": "Notification",
		"Message": testutil.S3Event(srv.Bucket, testPrefix+"b.csv")})
	q.Send(string(envelope))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := src.Changed(ctx); err != nil {
		t.Errorf("Changed on an SNS-wrapped event: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := src.Changed(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Changed on a quiet queue: got %v, want the context's error", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Changed ignored its context for %s", took)
	}
}

// TestServerSideEncryption: with SSE set, claims, reports and the moved
// object are written with it, and the store accepts the requests.
func TestServerSideEncryption(t *testing.T) {
	ctx, _, st, src := setup(t)
	src.SSE = "AES256"
	st.Put(t, "enc.csv", []byte("secret usage"))
	c := sourcetest.ClaimOnly(t, ctx, src)
	key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true,
		Reports: []sources.Report{{Suffix: ".status.txt", Body: []byte("ok")}}})
	if err != nil {
		t.Fatalf("Finish with SSE: %v", err)
	}
	for _, k := range []string{key, key + ".status.txt"} {
		out, err := st.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(src.Bucket), Key: aws.String(testPrefix + k)})
		if err != nil {
			t.Fatal(err)
		}
		if out.ServerSideEncryption != "AES256" {
			t.Errorf("%s: server-side encryption %q, want AES256", k, out.ServerSideEncryption)
		}
	}
}
