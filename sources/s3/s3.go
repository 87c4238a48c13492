// Package s3 is a drop folder under a prefix of an S3 bucket, on AWS or an
// S3-compatible store (MinIO, Ceph, R2, Wasabi, versitygw).
//
// # Claims
//
// S3 has no atomic rename, so a claim is a small object,
// PREFIX/processing/NAME.claim, written with a conditional PutObject:
// If-None-Match: * to take a free file, If-Match on the old claim's ETag to
// refresh our own claim or take over one whose lease ran out. Of two
// instances racing, the store lets exactly one write succeed. The lease
// runs from the claim object's LastModified, the store's clock.
//
// The dropped object itself stays at PREFIX/NAME until Finish. Moving it
// to processing/ at claim time would need a copy and a delete, and a user
// who drops a new NAME between the two would lose it on stores without
// conditional deletes. Left in place, a replacement is caught by its ETag
// (Open answers ErrChanged) and the new bytes are still there after the
// claim is gone. So for this backend Claim returns the object under the
// key it already had. New files are found by List, or sooner with SQS
// event notifications (Changed, in notify.go).
//
// # Finish
//
// Finish picks a final name whose object and report names are all free
// (sources.ReportName, sources.CollisionName), puts each report with
// If-None-Match: * so that nothing, not even a report of an earlier drop
// or a file a user dropped under a report's name, is replaced, then
// copies the object there and deletes the original. A report refused by
// its condition means another writer took the name: the reports put so
// far are deleted and another name is chosen. Claim objects for long
// names are shortened like report names, since some stores keep objects
// as files.
//
// # Caveats
//
// The copy of the object itself is unconditional: two instances that
// finish the same name at the same moment are kept apart by their
// reports' conditional writes, which come first. The lease compares the store's LastModified with the local clock; keep
// clocks in sync (NTP) or use a lease well above any skew. On stores that
// ignore If-Match on DeleteObject, a file re-dropped in the milliseconds
// between Finish's copy and delete is lost; AWS honours it.
package s3

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"usagedrop/sources"
)

// Defaults used by New.
const (
	DefaultLease       = time.Hour
	DefaultMaxAttempts = 10
	DefaultMaxBackoff  = 10 * time.Second
	claimDir           = "processing/"
	claimSuffix        = ".claim"
	resumeAttempts     = 3
)

var _ sources.Source = (*Source)(nil)

// Source is a drop folder under Prefix in Bucket.
//
// Configure it through its exported fields before the first call; the
// client is made on first use and the fields must not change afterwards.
type Source struct {
	// Bucket and Prefix locate the drop folder; Prefix is a folder such as
	// "incoming/" (a missing trailing slash is added) or "" for the root.
	Bucket, Prefix string
	// Region to sign for; the SDK's default (AWS_REGION, profile) when
	// empty, and us-east-1 for a custom Endpoint without one.
	Region string
	// Endpoint and PathStyle address S3-compatible stores.
	Endpoint  string
	PathStyle bool
	// AccessKeyID and SecretAccessKey, when set, replace the default
	// credential chain (environment, shared profile, web identity, IMDS).
	AccessKeyID, SecretAccessKey string
	// SSE is the server-side encryption for objects this source writes
	// ("AES256" or "aws:kms"), and SSEKMSKeyID the KMS key for "aws:kms".
	SSE, SSEKMSKeyID string
	// Owner names this instance in claims. Defaults to the host name.
	Owner string
	// Lease is how long a claim stays another instance's after its last
	// refresh. Zero means DefaultLease, never "no lease".
	Lease time.Duration
	// ImportedDir and FailedDir are folders under Prefix that receive
	// finished objects; they default to "imported/" and "failed/".
	ImportedDir, FailedDir string
	// SQSQueueURL, when set, is an SQS queue that receives the bucket's
	// S3 event notifications; Changed waits on it so new files are seen
	// before the next listing. SQSEndpoint overrides the SQS endpoint.
	SQSQueueURL, SQSEndpoint string
	// MaxAttempts bounds the SDK's retries of throttled (SlowDown), 5xx
	// and network failures, with capped exponential backoff and jitter.
	MaxAttempts int
	// MaxBackoff caps the wait between two attempts.
	MaxBackoff time.Duration
	// Logger receives takeovers.
	Logger *slog.Logger

	name string
	// orphanAge is how old a claim without its object must be before
	// List removes it.
	orphanAge time.Duration

	mu     sync.Mutex
	cfg    aws.Config
	client *s3.Client
	queue  *sqs.Client
	// held maps keys this instance claimed to the ETag it claimed, so
	// Open and Finish act only on those bytes.
	held map[string]string
}

// New returns a source named name over bucket and prefix with the defaults
// described on the fields of Source.
func New(name, bucket, prefix string) *Source {
	owner, err := os.Hostname()
	if err != nil || owner == "" {
		owner = "usagedrop"
	}
	return &Source{
		Bucket:      bucket,
		Prefix:      prefix,
		Owner:       owner,
		Lease:       DefaultLease,
		ImportedDir: "imported/",
		FailedDir:   "failed/",
		MaxAttempts: DefaultMaxAttempts,
		MaxBackoff:  DefaultMaxBackoff,
		Logger:      slog.Default(),
		name:        name,
		orphanAge:   time.Minute,
		held:        make(map[string]string),
	}
}

// Name returns the configured name of the source.
func (s *Source) Name() string { return s.name }

// String describes the source for logs, without the secret key.
func (s *Source) String() string {
	secret := ""
	if s.SecretAccessKey != "" {
		secret = " secret_access_key=**redacted**"
	}
	return fmt.Sprintf("s3://%s/%s (region=%q endpoint=%q path_style=%t access_key_id=%q%s)",
		s.Bucket, s.prefix(), s.Region, s.Endpoint, s.PathStyle, s.AccessKeyID, secret)
}

// prefix is Prefix as a folder: no leading slash, one trailing slash.
func (s *Source) prefix() string {
	p := strings.TrimLeft(s.Prefix, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

func folder(dir string) string {
	return strings.TrimSuffix(strings.TrimLeft(dir, "/"), "/") + "/"
}

// s3 returns the client, making it on first use.
func (s *Source) s3(ctx context.Context) (*s3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	if s.Bucket == "" {
		return nil, fmt.Errorf("s3 source %s: bucket: required: %w", s.name, sources.ErrFatal)
	}
	region := s.Region
	if region == "" && s.Endpoint != "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		region = "us-east-1"
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = max(s.MaxAttempts, 1)
				o.MaxBackoff = s.MaxBackoff
				// A store shedding load for a while must not exhaust a
				// client-side retry budget and fail calls outright.
				o.RateLimiter = ratelimit.None
			})
		}),
		// S3-compatible stores often reject the SDK's newer default
		// checksums; send them only where the API requires them.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if s.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 source %s: load AWS configuration: %w: %w", s.name, sources.ErrFatal, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("s3 source %s: region: required (or set AWS_REGION): %w", s.name, sources.ErrFatal)
	}
	s.cfg = cfg
	s.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
		o.UsePathStyle = s.PathStyle
	})
	return s.client, nil
}

// errPrecondition marks a conditional request the store refused.
var errPrecondition = errors.New("precondition failed")

// classify maps an SDK error to the errors callers decide on.
func classify(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	case "PreconditionFailed", "ConditionalRequestConflict":
		return fmt.Errorf("%w: %w", errPrecondition, err)
	case "AccessDenied", "Forbidden":
		return fmt.Errorf("%w: %w", fs.ErrPermission, err)
	case "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName", "PermanentRedirect":
		return fmt.Errorf("%w: %w", sources.ErrFatal, err)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
		case http.StatusPreconditionFailed:
			return fmt.Errorf("%w: %w", errPrecondition, err)
		case http.StatusForbidden:
			return fmt.Errorf("%w: %w", fs.ErrPermission, err)
		}
	}
	return err
}

// List returns the objects directly under Prefix, and those whose claim's
// lease has run out with Claimed set; objects with a live claim are left
// out.
func (s *Source) List(ctx context.Context) ([]sources.Object, error) {
	c, err := s.s3(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := s.claims(ctx, c)
	if err != nil {
		return nil, err
	}
	var objs []sources.Object
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.Bucket), Prefix: aws.String(s.prefix()), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.listErr(err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.prefix())
			if name == "" || sources.Ignored(name) {
				continue
			}
			obj := sources.Object{Source: s.name, Key: name, Name: name, Size: aws.ToInt64(o.Size),
				ModTime: aws.ToTime(o.LastModified), ETag: aws.ToString(o.ETag)}
			claimed, ok := claims[claimName(name)]
			delete(claims, claimName(name))
			if ok && !s.expired(claimed) {
				continue
			}
			obj.Claimed = ok
			objs = append(objs, obj)
		}
	}
	s.removeOrphans(ctx, c, claims)
	return objs, nil
}

// removeOrphans deletes claims whose object has gone: left by a Finish
// that stopped between deleting the object and its claim, they would
// otherwise hide a new drop of the same name for a whole lease.
func (s *Source) removeOrphans(ctx context.Context, c *s3.Client, orphans map[string]time.Time) {
	for name, claimed := range orphans {
		if time.Since(claimed) < s.orphanAge {
			continue // a Finish may be between its two deletes right now
		}
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.prefix() + claimDir + name)})
		if err != nil {
			s.Logger.Warn("remove orphaned claim", "source", s.name, "key", name, "err", err)
			continue
		}
		s.Logger.Info("removed orphaned claim", "source", s.name, "key", name, "claimed", claimed)
	}
}

// listErr makes a refused listing fatal: without it the source does
// nothing, and only an operator can grant access or create the bucket.
func (s *Source) listErr(err error) error {
	err = classify(err)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w: %w", sources.ErrFatal, err)
	}
	return fmt.Errorf("list s3://%s/%s: %w", s.Bucket, s.prefix(), err)
}

// claims returns the time each claim object (by its claimName) was last
// written.
func (s *Source) claims(ctx context.Context, c *s3.Client) (map[string]time.Time, error) {
	dir := s.prefix() + claimDir
	claims := make(map[string]time.Time)
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.Bucket), Prefix: aws.String(dir), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.listErr(err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), dir)
			if strings.HasSuffix(name, claimSuffix) && name != claimSuffix {
				claims[name] = aws.ToTime(o.LastModified)
			}
		}
	}
	return claims, nil
}

// expired reports whether a claim written at claimed has run out. Stores
// give LastModified in whole seconds, which makes a claim look up to a
// second older than it is, so that second is added to the lease.
func (s *Source) expired(claimed time.Time) bool {
	return time.Since(claimed) > cmp.Or(max(s.Lease, 0), DefaultLease)+time.Second
}

// claim is the body of a claim object.
type claim struct {
	Owner   string    `json:"owner"`
	Key     string    `json:"key"`
	ETag    string    `json:"etag"`
	Claimed time.Time `json:"claimed"`
}

func (s *Source) claimKey(name string) string { return s.prefix() + claimDir + claimName(name) }

// claimName is the name of the claim object on name, shortened like a
// report name so that stores keeping objects as files (versitygw's posix
// backend) take it whatever the length of name.
func claimName(name string) string { return sources.ReportName(name, claimSuffix) }

// readClaim returns the claim on name and its object's ETag and time, or
// a nil claim when there is none.
func (s *Source) readClaim(ctx context.Context, c *s3.Client, name string) (*claim, string, time.Time, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.claimKey(name))})
	if err != nil {
		if err = classify(err); errors.Is(err, fs.ErrNotExist) {
			return nil, "", time.Time{}, nil
		}
		return nil, "", time.Time{}, fmt.Errorf("read claim on %s: %w", name, err)
	}
	defer out.Body.Close()
	var cl claim
	if err := json.NewDecoder(io.LimitReader(out.Body, 64<<10)).Decode(&cl); err != nil {
		// An unreadable claim still holds the name until its lease runs
		// out; taking it over rewrites it.
		cl = claim{Owner: "(unreadable claim)"}
	}
	return &cl, aws.ToString(out.ETag), aws.ToTime(out.LastModified), nil
}

// checkKey refuses keys that are not a file directly in the drop folder.
// A key in a sub-folder, such as processing/OWNER/NAME where other
// backends keep claimed files, names nothing here: fs.ErrNotExist.
func checkKey(key string) error {
	switch {
	case key == "" || key == "." || key == ".." || strings.HasPrefix(key, "/"):
		return fmt.Errorf("key %q: not a file in the drop folder: %w", key, fs.ErrInvalid)
	case strings.Contains(key, "/"):
		return fmt.Errorf("key %q: claimed objects keep their key on S3: %w", key, fs.ErrNotExist)
	}
	return nil
}

// Claim writes the claim object for o conditionally, so that exactly one
// instance holds it; see the package documentation.
func (s *Source) Claim(ctx context.Context, o sources.Object) (sources.Object, error) {
	if err := checkKey(o.Key); err != nil {
		return sources.Object{}, err
	}
	c, err := s.s3(ctx)
	if err != nil {
		return sources.Object{}, err
	}
	old, oldETag, oldTime, err := s.readClaim(ctx, c, o.Key)
	if err != nil {
		return sources.Object{}, fmt.Errorf("claim %s: %w", o.Key, err)
	}
	put := &s3.PutObjectInput{IfNoneMatch: aws.String("*")}
	if old != nil {
		if old.Owner != s.Owner && !s.expired(oldTime) {
			return sources.Object{}, fmt.Errorf("claim %s: held by %s since %s: %w",
				o.Key, old.Owner, oldTime.Format(time.RFC3339), sources.ErrClaimed)
		}
		put = &s3.PutObjectInput{IfMatch: aws.String(oldETag)}
	}
	cur, err := s.head(ctx, c, o.Key)
	if err != nil {
		return sources.Object{}, fmt.Errorf("claim %s: %w", o.Key, err)
	}
	if cur.ETag != o.ETag {
		return sources.Object{}, fmt.Errorf("claim %s: %w", o.Key, sources.ErrChanged)
	}
	if err := s.writeClaim(ctx, c, put, o); err != nil {
		return sources.Object{}, err
	}
	if old != nil && old.Owner != s.Owner {
		s.Logger.Info("took over stale claim", "source", s.name, "key", o.Key, "from", old.Owner)
	}
	// The object may have been replaced between the check and the claim.
	if now, err := s.head(ctx, c, o.Key); err != nil || now.ETag != o.ETag {
		s.release(ctx, c, o.Key)
		if err == nil {
			err = sources.ErrChanged
		}
		return sources.Object{}, fmt.Errorf("claim %s: %w", o.Key, err)
	}
	s.mu.Lock()
	s.held[o.Key] = o.ETag
	s.mu.Unlock()
	cur.Claimed = false
	return cur, nil
}

// writeClaim puts the claim object with put's condition; a refused
// condition means another instance got there first.
func (s *Source) writeClaim(ctx context.Context, c *s3.Client, put *s3.PutObjectInput, o sources.Object) error {
	body, _ := json.Marshal(claim{Owner: s.Owner, Key: o.Key, ETag: o.ETag, Claimed: time.Now().UTC()})
	put.Bucket, put.Key = aws.String(s.Bucket), aws.String(s.claimKey(o.Key))
	put.Body, put.ContentType = bytes.NewReader(body), aws.String("application/json")
	s.encrypt(put)
	_, err := c.PutObject(ctx, put)
	if err = classify(err); errors.Is(err, errPrecondition) {
		return fmt.Errorf("claim %s: another instance wrote the claim first: %w", o.Key, sources.ErrClaimed)
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", o.Key, err)
	}
	return nil
}

// encrypt sets the configured server-side encryption on a write.
func (s *Source) encrypt(put *s3.PutObjectInput) {
	put.ServerSideEncryption, put.SSEKMSKeyId = s.sse()
}

func (s *Source) sse() (types.ServerSideEncryption, *string) {
	var kms *string
	if s.SSEKMSKeyID != "" {
		kms = aws.String(s.SSEKMSKeyID)
	}
	return types.ServerSideEncryption(s.SSE), kms
}

// release deletes the claim on key; a failure only delays the next claim
// until the lease runs out, so it is logged, not returned.
func (s *Source) release(ctx context.Context, c *s3.Client, key string) {
	s.mu.Lock()
	delete(s.held, key)
	s.mu.Unlock()
	_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.claimKey(key))})
	if err != nil && !errors.Is(classify(err), fs.ErrNotExist) {
		s.Logger.Warn("release claim", "source", s.name, "key", key, "err", err)
	}
}

// head describes the object at key under Prefix.
func (s *Source) head(ctx context.Context, c *s3.Client, key string) (sources.Object, error) {
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.prefix() + key)})
	if err != nil {
		return sources.Object{}, fmt.Errorf("head %s: %w", key, classify(err))
	}
	return sources.Object{Source: s.name, Key: key, Name: path.Base(key), Size: aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified), ETag: aws.ToString(out.ETag)}, nil
}

// wantETag is the ETag this instance claimed key with, from memory or,
// after a restart, from the claim object.
func (s *Source) wantETag(ctx context.Context, c *s3.Client, key string) (string, error) {
	s.mu.Lock()
	etag, ok := s.held[key]
	s.mu.Unlock()
	if ok {
		return etag, nil
	}
	cl, _, _, err := s.readClaim(ctx, c, key)
	if err != nil || cl == nil {
		return "", err
	}
	return cl.ETag, nil
}

// Open streams the object at key. For a claimed object it reads only the
// claimed version (If-Match), answering ErrChanged if it was replaced, and
// resumes a broken transfer with a ranged GET of the same version.
func (s *Source) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	c, err := s.s3(ctx)
	if err != nil {
		return nil, err
	}
	want, err := s.wantETag(ctx, c, key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	r := &reader{ctx: ctx, s: s, c: c, key: key, etag: want}
	if err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

// reader streams one version of an object, resuming after broken reads.
type reader struct {
	ctx     context.Context
	s       *Source
	c       *s3.Client
	key     string
	etag    string // the version being read; empty until the first answer
	body    io.ReadCloser
	off     int64
	resumes int
}

// get requests the object from the current offset.
func (r *reader) get() error {
	in := &s3.GetObjectInput{Bucket: aws.String(r.s.Bucket), Key: aws.String(r.s.prefix() + r.key)}
	if r.etag != "" {
		in.IfMatch = aws.String(r.etag)
	}
	if r.off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", r.off))
	}
	out, err := r.c.GetObject(r.ctx, in)
	if err = classify(err); errors.Is(err, errPrecondition) {
		return fmt.Errorf("open %s: %w", r.key, sources.ErrChanged)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", r.key, err)
	}
	// Stores that ignore If-Match still say which version they sent.
	if got := aws.ToString(out.ETag); r.etag != "" && got != "" && got != r.etag {
		out.Body.Close()
		return fmt.Errorf("open %s: %w", r.key, sources.ErrChanged)
	}
	if r.etag == "" {
		r.etag = aws.ToString(out.ETag)
	}
	r.body = out.Body
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	r.off += int64(n)
	if err == nil || err == io.EOF || r.ctx.Err() != nil || r.resumes >= resumeAttempts || r.etag == "" {
		return n, err
	}
	r.resumes++
	r.s.Logger.Warn("resume broken download", "source", r.s.name, "key", r.key, "offset", r.off, "err", err)
	r.body.Close()
	if gerr := r.get(); gerr != nil {
		return n, fmt.Errorf("read %s at %d: %w (resume: %w)", r.key, r.off, err, gerr)
	}
	return n, nil
}

func (r *reader) Close() error { return r.body.Close() }

// Finish puts the reports into the target folder, copies the object
// beside them, deletes the original and then the claim.
func (s *Source) Finish(ctx context.Context, key string, o sources.Outcome) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	c, err := s.s3(ctx)
	if err != nil {
		return "", err
	}
	cur, err := s.head(ctx, c, key)
	if err != nil {
		return "", fmt.Errorf("finish %s: %w", key, err)
	}
	want, err := s.wantETag(ctx, c, key)
	if err != nil {
		return "", fmt.Errorf("finish %s: %w", key, err)
	}
	if want == "" {
		want = cur.ETag
	}
	if cur.ETag != want {
		// A user dropped a new version under the same name after the
		// claim: it is a new drop, not ours to move.
		s.release(ctx, c, key)
		return "", fmt.Errorf("finish %s: the claimed version was replaced; the new one stays as a new drop: %w: %w",
			key, fs.ErrNotExist, sources.ErrChanged)
	}
	dir := folder(s.FailedDir)
	if o.Imported {
		dir = folder(s.ImportedDir)
	}
	const tries = 5 // another instance may take a chosen name; never loop
	for range tries {
		name, err := s.finishOnce(ctx, c, key, dir, want, o.Reports)
		if errors.Is(err, errPrecondition) {
			continue
		}
		if err != nil {
			return "", err
		}
		s.release(ctx, c, key)
		return dir + name, nil
	}
	return "", fmt.Errorf("finish %s: every name tried in %s was taken meanwhile", key, dir)
}

// finishOnce chooses a name whose object and report names are all free,
// puts the reports there without replacing anything (If-None-Match: *),
// and moves the object. It returns errPrecondition, having deleted the
// reports it put, when a name it chose was taken before it could write.
func (s *Source) finishOnce(ctx context.Context, c *s3.Client, key, dir, etag string, reports []sources.Report) (string, error) {
	name, ours, err := s.freeName(ctx, c, dir, key, etag, reports)
	if err != nil {
		return "", fmt.Errorf("finish %s: %w", key, err)
	}
	var put []string
	for _, r := range reports {
		if ours {
			break // a retry after the copy: the reports went first
		}
		rk := s.prefix() + dir + sources.ReportName(name, r.Suffix)
		in := &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(rk),
			Body: bytes.NewReader(r.Body), IfNoneMatch: aws.String("*")}
		s.encrypt(in)
		if _, err := c.PutObject(ctx, in); err != nil {
			for _, k := range put {
				c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(k)})
			}
			err = classify(err)
			if errors.Is(err, errPrecondition) {
				return "", err
			}
			return "", fmt.Errorf("finish %s: report %s: %w", key, r.Suffix, err)
		}
		put = append(put, rk)
	}
	if err := s.move(ctx, c, key, dir+name, etag); err != nil {
		return "", err
	}
	return name, nil
}

// move copies key to target, only if key still holds the version etag,
// then deletes key under the same condition.
func (s *Source) move(ctx context.Context, c *s3.Client, key, target, etag string) error {
	cp := &s3.CopyObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.prefix() + target),
		CopySource: aws.String(copySource(s.Bucket, s.prefix()+key)), CopySourceIfMatch: aws.String(etag)}
	cp.ServerSideEncryption, cp.SSEKMSKeyId = s.sse()
	if _, err := c.CopyObject(ctx, cp); err != nil {
		if err = classify(err); errors.Is(err, errPrecondition) {
			err = sources.ErrChanged
		}
		return fmt.Errorf("finish %s: copy to %s: %w", key, target, err)
	}
	_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket),
		Key: aws.String(s.prefix() + key), IfMatch: aws.String(etag)})
	switch err = classify(err); {
	case errors.Is(err, errPrecondition):
		s.Logger.Info("replaced while finishing; the new version stays as a new drop", "source", s.name, "key", key)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("finish %s: delete after copy to %s: %w", key, target, err)
	}
	return nil
}

// copySource is the x-amz-copy-source value: bucket/key, URL-encoded per
// segment, with '+' encoded too since some stores decode it as a space.
func copySource(bucket, key string) string {
	segs := strings.Split(bucket+"/"+key, "/")
	for i, seg := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(seg), "+", "%2B")
	}
	return strings.Join(segs, "/")
}

// freeName returns the name key gets in dir: its own if it and its report
// names are free, else a timestamped one. ours reports that the name
// already holds these very bytes (a Finish retried after the copy), whose
// reports were put before it.
func (s *Source) freeName(ctx context.Context, c *s3.Client, dir, key, etag string,
	reports []sources.Report) (name string, ours bool, err error) {
	free := func(n string) bool {
		if err != nil {
			return true // stop looking; the error is returned
		}
		o, herr := s.head(ctx, c, dir+n)
		if herr == nil && o.ETag == etag && n == path.Base(key) {
			ours = true
			return true
		}
		names := []string{n}
		for _, r := range reports {
			names = append(names, sources.ReportName(n, r.Suffix))
		}
		for i, m := range names {
			if i > 0 {
				_, herr = s.head(ctx, c, dir+m)
			}
			if !errors.Is(herr, fs.ErrNotExist) {
				if herr != nil {
					err = herr
				}
				return false
			}
		}
		return true
	}
	if free(key) {
		return key, ours, err
	}
	return sources.CollisionName(key, time.Now(), free), ours, err
}
