// Package sftp is a drop folder on an SFTP server, reached with
// github.com/pkg/sftp over golang.org/x/crypto/ssh.
//
// The server's host key is always verified, against a known_hosts file or
// a pinned key; an unknown or changed key is a fatal error for the source
// that names the host and the fingerprint it saw. There is no option to
// accept any key.
//
// The connection is made on first use and kept. When it is lost, the
// cached client is dropped and the next call redials, with a backoff
// after failed dials so that a dead server is not hammered; other sources
// are not affected.
//
// Claims and finishes are renames on the server, like sources/local.
// OpenSSH refuses a plain rename onto an existing name and implements it
// as link+unlink, so of two instances renaming the same file exactly one
// succeeds; posix-rename@openssh.com is used where a report may replace
// an earlier one.
//
// # Caveats
//
// SFTP reports modification times in whole seconds, so the ETag (size and
// mtime) misses a rewrite to the same size within the same second; the
// lease is measured from the server's mtime with the local clock.
// Operations other than directory listing cannot be cancelled once sent;
// ctx is checked between them.
package sftp

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"usagedrop/sources"
)

// Defaults used by New.
const (
	DefaultLease     = time.Hour
	DefaultTimeout   = 30 * time.Second
	DefaultKeepAlive = 30 * time.Second
	processing       = "processing"
	maxRedialBackoff = time.Minute
)

var _ sources.Source = (*Source)(nil)

// Source is a directory on an SFTP server into which partners drop files.
//
// Configure it through its exported fields before the first call; they must
// not change afterwards.
type Source struct {
	// Address is host:port of the server.
	Address string
	// User logs in with any of Password, the key in KeyFile (decrypted
	// with KeyPassphrase) and the keys of the ssh-agent at Agent.
	User, Password         string
	KeyFile, KeyPassphrase string
	Agent                  string
	// KnownHosts is a known_hosts file listing the server; HostKey pins
	// one key instead ("ssh-ed25519 AAAA..."). One of them is required.
	KnownHosts, HostKey string
	// Timeout bounds dialling and the SSH handshake.
	Timeout time.Duration
	// KeepAlive is how often an idle connection is probed; a probe that
	// fails closes it so the next call redials.
	KeepAlive time.Duration
	// Dir is the drop folder on the server.
	Dir string
	// Owner names this instance in processing/OWNER/. Defaults to the
	// host name.
	Owner string
	// Lease is how long a claim stays another instance's after its last
	// refresh. Zero means DefaultLease, never "no lease".
	Lease time.Duration
	// ImportedDir and FailedDir receive finished files; they default to
	// Dir/imported and Dir/failed.
	ImportedDir, FailedDir string
	// Logger receives reconnects and takeovers.
	Logger *slog.Logger

	name string

	mu       sync.Mutex // guards the fields below
	conn     *conn
	failures int
	retryAt  time.Time
	lastErr  error
	closed   bool
	held     map[string]string // claimed key → ETag, as in sources/local

	// renameMu makes "is the target free?" and the rename into folders
	// this instance writes one step.
	renameMu sync.Mutex
}

// New returns a source named name for dir on the server at address,
// logging in as user, with the defaults described on the fields of Source
// and the ssh-agent from SSH_AUTH_SOCK.
func New(name, address, user, dir string) *Source {
	owner, err := os.Hostname()
	if err != nil || owner == "" {
		owner = "usagedrop"
	}
	return &Source{
		Address:     address,
		User:        user,
		Agent:       os.Getenv("SSH_AUTH_SOCK"),
		Timeout:     DefaultTimeout,
		KeepAlive:   DefaultKeepAlive,
		Dir:         dir,
		Owner:       owner,
		Lease:       DefaultLease,
		ImportedDir: path.Join(dir, "imported"),
		FailedDir:   path.Join(dir, "failed"),
		Logger:      slog.Default(),
		name:        name,
		held:        make(map[string]string),
	}
}

// Name returns the configured name of the source.
func (s *Source) Name() string { return s.name }

// String describes the source for logs, without password or passphrase.
func (s *Source) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sftp://%s@%s%s", s.User, s.Address, s.Dir)
	if s.KeyFile != "" {
		fmt.Fprintf(&b, " key_file=%s", s.KeyFile)
	}
	if s.KeyPassphrase != "" {
		b.WriteString(" key_passphrase=**redacted**")
	}
	if s.Password != "" {
		b.WriteString(" password=**redacted**")
	}
	return b.String()
}

// Close drops the connection; later calls fail.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
	return nil
}

// path maps a key to a path on the server.
func (s *Source) path(key string) string { return path.Join(s.Dir, key) }

func checkKey(key string) error {
	if key == "" || path.IsAbs(key) || strings.HasPrefix(path.Clean(key), "..") || path.Clean(key) == "." {
		return fmt.Errorf("key %q: not a path inside the drop folder: %w", key, fs.ErrInvalid)
	}
	return nil
}

// etag is size and mtime, all SFTP offers (mtime in whole seconds).
func etag(fi fs.FileInfo) string {
	return fmt.Sprintf("%x-%x", fi.Size(), fi.ModTime().Unix())
}

func (s *Source) object(key string, fi fs.FileInfo) sources.Object {
	return sources.Object{Source: s.name, Key: key, Name: path.Base(key), Size: fi.Size(),
		ModTime: fi.ModTime(), ETag: etag(fi)}
}

// List returns the files waiting in Dir and the claims in processing/
// whose lease has run out.
func (s *Source) List(ctx context.Context) ([]sources.Object, error) {
	c, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := c.sftp.ReadDirContext(ctx, s.Dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		// The configured folder is wrong or closed to us: no retry mends it.
		return nil, fmt.Errorf("list %s on %s: %w: %w", s.Dir, s.Address, sources.ErrFatal, err)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.Dir, s.check(c, err))
	}
	var objs []sources.Object
	for _, fi := range entries {
		if fi.Mode().IsRegular() && !sources.Ignored(fi.Name()) {
			objs = append(objs, s.object(fi.Name(), fi))
		}
	}
	stale, err := s.staleClaims(ctx, c)
	return append(objs, stale...), err
}

// staleClaims lists processing/*/* older than the lease.
func (s *Source) staleClaims(ctx context.Context, c *conn) ([]sources.Object, error) {
	owners, err := c.sftp.ReadDirContext(ctx, s.path(processing))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", processing, s.check(c, err))
	}
	var objs []sources.Object
	for _, owner := range owners {
		if !owner.IsDir() {
			continue
		}
		dir := path.Join(processing, owner.Name())
		files, err := c.sftp.ReadDirContext(ctx, s.path(dir))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, s.check(c, err))
		}
		for _, fi := range files {
			if fi.Mode().IsRegular() && !sources.Ignored(fi.Name()) && s.expired(fi.ModTime()) {
				o := s.object(path.Join(dir, fi.Name()), fi)
				o.Claimed = true
				objs = append(objs, o)
			}
		}
	}
	return objs, nil
}

// expired reports whether a claim whose mtime is claimed has run out.
// SFTP mtimes are whole seconds, which makes a claim look up to a second
// older than it is, so that second is added to the lease.
func (s *Source) expired(claimed time.Time) bool {
	return time.Since(claimed) > cmp.Or(max(s.Lease, 0), DefaultLease)+time.Second
}

// stat describes the regular file at key.
func (s *Source) stat(c *conn, key string) (sources.Object, error) {
	fi, err := c.sftp.Lstat(s.path(key))
	if err != nil {
		return sources.Object{}, fmt.Errorf("stat %s: %w", key, s.check(c, err))
	}
	if !fi.Mode().IsRegular() {
		return sources.Object{}, fmt.Errorf("stat %s: not a regular file: %w", key, fs.ErrInvalid)
	}
	return s.object(key, fi), nil
}

// Claim renames o into processing/OWNER/ and sets its mtime to now to
// start the lease.
func (s *Source) Claim(ctx context.Context, o sources.Object) (sources.Object, error) {
	if err := checkKey(o.Key); err != nil {
		return sources.Object{}, err
	}
	c, err := s.client(ctx)
	if err != nil {
		return sources.Object{}, err
	}
	cur, err := s.stat(c, o.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return sources.Object{}, s.goneOrClaimed(c, o)
	}
	if err != nil {
		return sources.Object{}, fmt.Errorf("claim %s: %w", o.Key, err)
	}
	mine := path.Join(processing, s.Owner, o.Name)
	if cur.ETag != o.ETag && (o.Key != mine || !leaseOnly(cur.ETag, o.ETag)) {
		return sources.Object{}, fmt.Errorf("claim %s: %w", o.Key, sources.ErrChanged)
	}
	if o.Key != mine {
		if err := s.claimMove(ctx, c, o, mine); err != nil {
			return sources.Object{}, err
		}
	}
	now := time.Now()
	if err := c.sftp.Chtimes(s.path(mine), now, now); err != nil {
		return sources.Object{}, fmt.Errorf("claim %s: start lease: %w", mine, s.check(c, err))
	}
	claimed, err := s.stat(c, mine)
	if err != nil {
		return sources.Object{}, err
	}
	s.mu.Lock()
	s.held[mine] = claimed.ETag
	s.mu.Unlock()
	return claimed, nil
}

// leaseOnly reports whether two ETags of a file this instance holds differ
// only in mtime, which the lease itself moves: a retry that lost the ETag
// of its last refresh must still be able to refresh.
func leaseOnly(a, b string) bool {
	as, bs := strings.Split(a, "-"), strings.Split(b, "-")
	return len(as) == 2 && len(bs) == 2 && as[0] == bs[0]
}

// claimMove renames o to mine, refusing to replace an earlier drop of the
// same name that this instance still holds.
func (s *Source) claimMove(ctx context.Context, c *conn, o sources.Object, mine string) error {
	s.renameMu.Lock()
	defer s.renameMu.Unlock()
	if _, err := c.sftp.Lstat(s.path(mine)); err == nil {
		return fmt.Errorf("claim %s: an earlier %s is still in %s: %w", o.Key, o.Name, path.Dir(mine), sources.ErrClaimed)
	}
	if err := c.sftp.MkdirAll(s.path(path.Dir(mine))); err != nil {
		return fmt.Errorf("claim %s: %w", o.Key, s.check(c, err))
	}
	err := c.sftp.Rename(s.path(o.Key), s.path(mine))
	if errors.Is(err, fs.ErrNotExist) || isFailure(err) {
		return s.goneOrClaimed(c, o)
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", o.Key, s.check(c, err))
	}
	if o.Claimed {
		s.Logger.Info("took over stale claim", "source", s.name, "from", o.Key, "to", mine)
	}
	return nil
}

// isFailure reports SSH_FX_FAILURE, OpenSSH's answer when a rename loses
// a race after link() succeeded.
func isFailure(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure
}

// goneOrClaimed explains why o is not at its key any more.
func (s *Source) goneOrClaimed(c *conn, o sources.Object) error {
	owners, err := c.sftp.ReadDir(s.path(processing))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("claim %s: %w", o.Key, s.check(c, err))
	}
	for _, owner := range owners {
		held := path.Join(processing, owner.Name(), o.Name)
		if owner.Name() == s.Owner || !owner.IsDir() {
			continue
		}
		if _, err := c.sftp.Lstat(s.path(held)); err == nil {
			return fmt.Errorf("claim %s: held as %s: %w", o.Key, held, sources.ErrClaimed)
		}
	}
	return fmt.Errorf("claim %s: %w", o.Key, fs.ErrNotExist)
}

// Open returns the file at key. Reading it to the end fails with
// ErrChanged if the file was rewritten or replaced meanwhile.
func (s *Source) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	c, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	f, err := c.sftp.Open(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, s.check(c, err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, s.check(c, err))
	}
	s.mu.Lock()
	want, ok := s.held[key]
	s.mu.Unlock()
	if ok && want != etag(fi) {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, sources.ErrChanged)
	}
	return &reader{ctx: ctx, s: s, c: c, f: f, key: key, etag: etag(fi)}, nil
}

type reader struct {
	ctx  context.Context
	s    *Source
	c    *conn
	f    *sftp.File
	key  string
	etag string
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.f.Read(p)
	switch {
	case err == io.EOF:
		if verr := r.verify(); verr != nil {
			return n, verr
		}
	case err != nil:
		// A broken read is never EOF: the caller must not keep a torn copy.
		return n, fmt.Errorf("read %s: %w", r.key, r.s.check(r.c, noEOF(err)))
	}
	return n, err
}

// WriteTo lets io.Copy use pkg/sftp's concurrent reads, many requests in
// flight instead of one per round trip, which matters over a WAN.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	// pkg/sftp takes no context; a writer that refuses once ctx is done
	// ends the transfer at the next chunk.
	n, err := r.f.WriteTo(ctxWriter{r.ctx, w})
	if cerr := r.ctx.Err(); cerr != nil {
		return n, fmt.Errorf("read %s: %w", r.key, cerr)
	}
	if err != nil {
		return n, fmt.Errorf("read %s: %w", r.key, r.s.check(r.c, noEOF(err)))
	}
	return n, r.verify()
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// verify checks at the end that the path still names the bytes read.
func (r *reader) verify() error {
	fi, err := r.c.sftp.Lstat(r.s.path(r.key))
	if err != nil || etag(fi) != r.etag {
		return fmt.Errorf("read %s: %w", r.key, sources.ErrChanged)
	}
	return nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", sftp.ErrSSHFxConnectionLost, io.ErrUnexpectedEOF)
	}
	return err
}

func (r *reader) Close() error { return r.f.Close() }

// Finish uploads the reports beside the target name, each under a temp
// name then renamed, and moves the file there last.
func (s *Source) Finish(ctx context.Context, key string, o sources.Outcome) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	c, err := s.client(ctx)
	if err != nil {
		return "", err
	}
	if _, err := s.stat(c, key); err != nil {
		return "", fmt.Errorf("finish %s: %w", key, err)
	}
	dir := s.FailedDir
	if o.Imported {
		dir = s.ImportedDir
	}
	if err := c.sftp.MkdirAll(dir); err != nil {
		return "", fmt.Errorf("finish %s: %w", key, s.check(c, err))
	}
	s.renameMu.Lock()
	defer s.renameMu.Unlock()
	name, err := s.freeName(c, dir, path.Base(key))
	if err != nil {
		return "", fmt.Errorf("finish %s: %w", key, s.check(c, err))
	}
	for _, r := range o.Reports {
		if err := s.upload(ctx, c, path.Join(dir, name+r.Suffix), r.Body); err != nil {
			return "", fmt.Errorf("finish %s: report %s: %w", key, r.Suffix, s.check(c, err))
		}
	}
	target := path.Join(dir, name)
	if err := c.sftp.Rename(s.path(key), target); err != nil {
		return "", fmt.Errorf("finish %s: move to %s: %w", key, target, s.check(c, err))
	}
	s.mu.Lock()
	delete(s.held, key)
	s.mu.Unlock()
	return s.keyOf(target), nil
}

// freeName returns name if dir has no such entry, else a timestamped one.
func (s *Source) freeName(c *conn, dir, name string) (string, error) {
	var serr error
	free := func(n string) bool {
		_, err := c.sftp.Lstat(path.Join(dir, n))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			serr = err // stop looking; the caller reports it
		}
		return err != nil
	}
	if free(name) {
		return name, serr
	}
	return sources.CollisionName(name, time.Now(), free), serr
}

// upload writes body to a temp name beside p, syncs it where the server
// offers fsync@openssh.com, and renames it over p.
func (s *Source) upload(ctx context.Context, c *conn, p string, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := make([]byte, 6)
	rand.Read(b)
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+"."+hex.EncodeToString(b)+".tmp")
	f, err := c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if _, ok := c.sftp.HasExtension("fsync@openssh.com"); ok && err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.replace(c, tmp, p)
	}
	if err != nil {
		c.sftp.Remove(tmp)
	}
	return err
}

// replace renames tmp over p: atomically with posix-rename, else by
// removing p first (plain SFTP rename refuses an existing target).
func (s *Source) replace(c *conn, tmp, p string) error {
	if _, ok := c.sftp.HasExtension("posix-rename@openssh.com"); ok {
		return c.sftp.PosixRename(tmp, p)
	}
	if err := c.sftp.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return c.sftp.Rename(tmp, p)
}

// keyOf returns the key of a path under Dir, or the path itself when the
// target folders were configured outside Dir.
func (s *Source) keyOf(p string) string {
	if rel, ok := strings.CutPrefix(p, strings.TrimSuffix(s.Dir, "/")+"/"); ok {
		return rel
	}
	return p
}
