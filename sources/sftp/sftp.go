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
// The claim protocol is sources/folder's, shared with sources/local; this
// package is its file system over SFTP. Claims are plain renames (of two
// instances renaming the same file exactly one succeeds). Finished files
// and reports are never put over an existing name: they are linked with
// hardlink@openssh.com, which fails on an existing name, and the old name
// removed; posix-rename@openssh.com, which replaces, is never used. On a
// server without hardlink@openssh.com the name is checked and a plain
// rename made (OpenSSH's plain rename refuses an existing name too; a
// server whose rename replaces leaves a window in which two instances
// finishing the same name at once could collide). Every entry is looked
// at with lstat before it is opened, so a FIFO or a link in the drop
// folder is never opened on the server, and the open handle is checked to
// be the regular file that was looked at.
//
// # Caveats
//
// SFTP reports modification times in whole seconds, so the ETag (size and
// mtime) misses a rewrite to the same size within the same second; the
// lease is measured from the server's mtime with the local clock.
// Operations other than directory listing cannot be cancelled once sent;
// ctx is checked between them. SFTP cannot open without following links
// or without blocking: an entry swapped for a FIFO between the lstat and
// the open would hold one request on the server, and SETSTAT follows
// links: a link swapped in at a claimed name in the instant between the
// claim's rename and the start of its lease could have its target's
// modification time set (nothing is read or written through it). A crash between linking
// a finished file and removing its old name leaves it twice (SFTP has no
// inode to tell it is the same file); the retry finishes the second under
// a timestamped name, so nothing is lost or overwritten.
package sftp

import (
	"context"
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
	"usagedrop/sources/folder"
)

// Defaults used by New.
const (
	DefaultLease     = time.Hour
	DefaultTimeout   = 30 * time.Second
	DefaultKeepAlive = 30 * time.Second
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
	folder   *folder.Folder
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

// fold returns the claim protocol over this server, made on first use
// from the fields of s.
func (s *Source) fold() *folder.Folder {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.folder == nil {
		s.folder = &folder.Folder{
			FS: &serverFS{s}, Source: s.name, Owner: s.Owner, Logger: s.Logger,
			Dir: path.Clean(s.Dir), ImportedDir: path.Clean(s.ImportedDir), FailedDir: path.Clean(s.FailedDir),
			// Whole-second mtimes make a claim look up to a second older.
			Lease: s.Lease, Slack: time.Second,
		}
	}
	return s.folder
}

// List returns the regular files waiting in Dir and the claims in
// processing/ whose lease has run out; see folder.Folder.List. A drop
// folder that is missing or closed to us stops the source.
func (s *Source) List(ctx context.Context) ([]sources.Object, error) {
	objs, err := s.fold().List(ctx)
	if err != nil && !errors.Is(err, sources.ErrFatal) && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
		// The configured folder is wrong or closed to us: no retry mends it.
		return nil, fmt.Errorf("sftp %s: %w: %w", s.Address, sources.ErrFatal, err)
	}
	return objs, err
}

// Claim renames o into processing/OWNER/; see folder.Folder.Claim.
func (s *Source) Claim(ctx context.Context, o sources.Object) (sources.Object, error) {
	return s.fold().Claim(ctx, o)
}

// Open returns the regular file at key; see folder.Folder.Open.
func (s *Source) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.fold().Open(ctx, key)
}

// Finish moves the file at key to imported/ or failed/ with its reports;
// see folder.Folder.Finish.
func (s *Source) Finish(ctx context.Context, key string, o sources.Outcome) (string, error) {
	return s.fold().Finish(ctx, key, o)
}

// serverFS is folder.FS on the server, over the cached connection: every
// call gets the connection (dialling if needed) and drops it when an
// error says it is gone.
type serverFS struct{ s *Source }

func (f *serverFS) do(ctx context.Context, op func(c *conn) error) error {
	c, err := f.s.client(ctx)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.s.check(c, op(c))
}

func (f *serverFS) Lstat(ctx context.Context, p string) (fi fs.FileInfo, err error) {
	err = f.do(ctx, func(c *conn) error { fi, err = c.sftp.Lstat(p); return err })
	return fi, err
}

func (f *serverFS) ReadDir(ctx context.Context, p string) (fis []fs.FileInfo, err error) {
	err = f.do(ctx, func(c *conn) error { fis, err = c.sftp.ReadDirContext(ctx, p); return err })
	return fis, err
}

func (f *serverFS) Mkdir(ctx context.Context, p string) error {
	return f.do(ctx, func(c *conn) error { return c.sftp.Mkdir(p) })
}

func (f *serverFS) Rename(ctx context.Context, oldp, newp string) error {
	return f.do(ctx, func(c *conn) error { return c.sftp.Rename(oldp, newp) })
}

// Link uses hardlink@openssh.com. Servers answer a taken name with a
// bare failure, so the name is looked at to say fs.ErrExist.
func (f *serverFS) Link(ctx context.Context, oldp, newp string) error {
	return f.do(ctx, func(c *conn) error {
		if _, ok := c.sftp.HasExtension("hardlink@openssh.com"); !ok {
			return fmt.Errorf("link %s: %w", newp, errors.ErrUnsupported)
		}
		err := c.sftp.Link(oldp, newp)
		if err == nil || lostConnection(err) {
			return err
		}
		if _, serr := c.sftp.Lstat(newp); serr == nil {
			return fmt.Errorf("link %s: %w", newp, fs.ErrExist)
		}
		if _, serr := c.sftp.Lstat(oldp); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("link %s: %w", oldp, fs.ErrNotExist)
		}
		return err
	})
}

func (f *serverFS) Remove(ctx context.Context, p string) error {
	return f.do(ctx, func(c *conn) error { return c.sftp.Remove(p) })
}

func (f *serverFS) Chtimes(ctx context.Context, p string, mtime time.Time) error {
	return f.do(ctx, func(c *conn) error { return c.sftp.Chtimes(p, mtime, mtime) })
}

func (f *serverFS) Open(ctx context.Context, p string) (folder.File, error) {
	var rf *remoteFile
	err := f.do(ctx, func(c *conn) error {
		file, err := c.sftp.OpenFile(p, os.O_RDONLY)
		if err == nil {
			rf = &remoteFile{ctx: ctx, s: f.s, c: c, f: file, p: p}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return rf, nil
}

// Create writes p with O_EXCL, synced where the server offers
// fsync@openssh.com.
func (f *serverFS) Create(ctx context.Context, p string, body []byte) error {
	return f.do(ctx, func(c *conn) error {
		w, err := c.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return err
		}
		_, err = w.Write(body)
		if _, ok := c.sftp.HasExtension("fsync@openssh.com"); ok && err == nil {
			err = w.Sync()
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			c.sftp.Remove(p)
		}
		return err
	})
}

// SyncDir does nothing: SFTP has no way to sync a directory.
func (f *serverFS) SyncDir(context.Context, ...string) error { return nil }

// ETag is size and mtime, all SFTP offers (mtime in whole seconds).
func (f *serverFS) ETag(fi fs.FileInfo) string {
	return fmt.Sprintf("%x-%x", fi.Size(), fi.ModTime().Unix())
}

// SameFile is false: SFTP shows no inode, and a guess from size and
// mtime could take another file for this one.
func (f *serverFS) SameFile(a, b fs.FileInfo) bool { return false }

func (f *serverFS) Native(p string) string { return p }

// remoteFile is an open file on the server: reads honour ctx, and a
// broken read is never io.EOF, so the caller never keeps a torn copy.
type remoteFile struct {
	ctx context.Context
	s   *Source
	c   *conn
	f   *sftp.File
	p   string
}

func (r *remoteFile) Stat() (fs.FileInfo, error) {
	fi, err := r.f.Stat()
	return fi, r.s.check(r.c, err)
}

func (r *remoteFile) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.f.Read(p)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read %s: %w", r.p, r.s.check(r.c, noEOF(err)))
	}
	return n, err
}

// WriteTo lets io.Copy use pkg/sftp's concurrent reads, many requests in
// flight instead of one per round trip, which matters over a WAN.
func (r *remoteFile) WriteTo(w io.Writer) (int64, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	// pkg/sftp takes no context; a writer that refuses once ctx is done
	// ends the transfer at the next chunk.
	n, err := r.f.WriteTo(ctxWriter{r.ctx, w})
	if cerr := r.ctx.Err(); cerr != nil {
		return n, fmt.Errorf("read %s: %w", r.p, cerr)
	}
	if err != nil {
		return n, fmt.Errorf("read %s: %w", r.p, r.s.check(r.c, noEOF(err)))
	}
	return n, nil
}

func (r *remoteFile) Close() error { return r.f.Close() }

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

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", sftp.ErrSSHFxConnectionLost, io.ErrUnexpectedEOF)
	}
	return err
}
