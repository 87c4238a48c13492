package watcher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"usagedrop/internal/testutil"
	"usagedrop/sources"
	"usagedrop/sources/local"
	"usagedrop/sources/s3"
)

func start(t *testing.T, settle time.Duration, events bool) (dir string, w *Watcher, out chan sources.Object) {
	t.Helper()
	dir = t.TempDir()
	opt := Options{Settle: settle, Interval: 5 * time.Second}
	if events {
		opt.Dir = dir
	} else {
		opt.Interval = 100 * time.Millisecond
	}
	w = New(local.New("test", dir), opt)
	out = make(chan sources.Object, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, out) }()
	t.Cleanup(func() { cancel(); <-done })
	return dir, w, out
}

func expectNone(t *testing.T, out chan sources.Object, d time.Duration) {
	t.Helper()
	select {
	case o := <-out:
		t.Fatalf("offered %s (size %d) too early or twice", o.Key, o.Size)
	case <-time.After(d):
	}
}

func expectOne(t *testing.T, out chan sources.Object, key string, size int64) {
	t.Helper()
	select {
	case o := <-out:
		if o.Key != key || o.Size != size {
			t.Fatalf("offered %s size %d, want %s size %d", o.Key, o.Size, key, size)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s never offered", key)
	}
}

// A file written slowly is offered once, when complete, whether the
// watcher hears of it from events or from listings alone.
func TestSlowWriteIsOfferedOnceComplete(t *testing.T) {
	for _, events := range []bool{true, false} {
		name := map[bool]string{true: "fsnotify", false: "polling"}[events]
		t.Run(name, func(t *testing.T) {
			dir, _, out := start(t, 400*time.Millisecond, events)
			f, err := os.Create(filepath.Join(dir, "slow.csv"))
			if err != nil {
				t.Fatal(err)
			}
			chunk := make([]byte, 1000)
			for range 12 { // 12 × 150ms: longer than settle, with gaps shorter than it
				if _, err := f.Write(chunk); err != nil {
					t.Fatal(err)
				}
				select {
				case o := <-out:
					t.Fatalf("offered %s at %d bytes while still being written", o.Key, o.Size)
				case <-time.After(150 * time.Millisecond):
				}
			}
			f.Close()
			expectOne(t, out, "slow.csv", 12000)
			expectNone(t, out, 600*time.Millisecond)
		})
	}
}

func TestIgnoredNamesAndForget(t *testing.T) {
	dir, w, out := start(t, 50*time.Millisecond, true)
	for _, n := range []string{".hidden.csv", "~$book.xlsx", "upload.csv.part", "x.tmp", ".~lock.book.xlsx#"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "usage.csv"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectOne(t, out, "usage.csv", 3)
	expectNone(t, out, 300*time.Millisecond)
	w.Forget("usage.csv")
	expectOne(t, out, "usage.csv", 3)
}

func TestChangedFileIsOfferedAgain(t *testing.T) {
	dir, _, out := start(t, 50*time.Millisecond, true)
	p := filepath.Join(dir, "usage.csv")
	os.WriteFile(p, []byte("one"), 0o644)
	expectOne(t, out, "usage.csv", 3)
	os.WriteFile(p, []byte("second"), 0o644)
	expectOne(t, out, "usage.csv", 6)
}

// With S3 event notifications, a new object is offered at once rather
// than at the next listing.
func TestNotificationsWakeAListing(t *testing.T) {
	srv := testutil.NewS3(t)
	q := testutil.NewSQS(t)
	src := s3.New("bucket", srv.Bucket, "in/")
	src.Endpoint, src.PathStyle, src.Region = srv.URL, true, srv.Region
	src.AccessKeyID, src.SecretAccessKey = srv.AccessKeyID, srv.SecretAccessKey
	src.SQSQueueURL, src.SQSEndpoint = q.QueueURL, q.URL
	w := New(src, Options{Settle: 0, Interval: time.Hour})
	out := make(chan sources.Object, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, out) }()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond) // the first listing, of an empty folder, is done
	_, err := srv.Client().PutObject(ctx, &awss3.PutObjectInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String("in/usage.csv"), Body: strings.NewReader("abc"),
	})
	if err != nil {
		t.Fatal(err)
	}
	q.Send(testutil.S3Event(srv.Bucket, "in/usage.csv"))
	expectOne(t, out, "usage.csv", 3)
}
