// Package local is a drop folder on a local (or mounted) file system.
//
// The claim protocol is sources/folder's; this package is its file system:
// an os.Root opened on the drop folder (or on the closest folder that
// holds it and the configured imported/ and failed/ folders), so that no
// path, link or race can lead a read or write out of that tree. Inside it,
// the protocol refuses links in the daemon's own folders and opens dropped
// files with O_NOFOLLOW|O_NONBLOCK.
//
// Claims, finishes and reports are renames and hard links inside one
// tree, so processing/, imported/ and failed/ must live on the same file
// system as the drop folder; a rename across file systems fails with a
// clear error rather than falling back to a copy that a crash could tear.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"usagedrop/internal/atomicfile"
	"usagedrop/sources"
	"usagedrop/sources/folder"
)

// DefaultLease is the lease New sets.
const DefaultLease = folder.DefaultLease

var _ sources.Source = (*Source)(nil)

// Source is a local directory into which users drop files.
//
// Configure it through its exported fields before the first call; they must
// not change afterwards.
type Source struct {
	// Dir is the drop folder. The watcher watches it with fsnotify.
	Dir string
	// Owner names this instance in processing/OWNER/. Two daemons on one
	// folder must have different owners. Defaults to the host name.
	Owner string
	// Lease is how long a claim stays another instance's after its last
	// refresh; after that List offers it for takeover. Zero means
	// DefaultLease, never "no lease".
	Lease time.Duration
	// ImportedDir and FailedDir receive finished files; they default to
	// Dir/imported and Dir/failed and must be on Dir's file system.
	ImportedDir, FailedDir string
	// Logger receives takeovers, collisions and skipped entries.
	Logger *slog.Logger

	name string

	mu     sync.Mutex
	folder *folder.Folder
	fs     *rootFS
}

// New returns a source named name over dir with the defaults described on
// the fields of Source.
func New(name, dir string) *Source {
	return &Source{
		Dir:         dir,
		Owner:       defaultOwner(),
		Lease:       DefaultLease,
		ImportedDir: filepath.Join(dir, "imported"),
		FailedDir:   filepath.Join(dir, "failed"),
		Logger:      slog.Default(),
		name:        name,
	}
}

// defaultOwner is the host name, made safe to use as one path element.
func defaultOwner() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "usagedrop"
	}
	return strings.NewReplacer("/", "_", "\\", "_").Replace(h)
}

// Name returns the configured name of the source.
func (s *Source) Name() string { return s.name }

// List returns the regular files waiting in Dir and the claims in
// processing/ whose lease has run out; see folder.Folder.List.
func (s *Source) List(ctx context.Context) ([]sources.Object, error) {
	f, err := s.open()
	if err != nil {
		return nil, err
	}
	if err := s.fs.reopen(); err != nil {
		return nil, fmt.Errorf("list %s: %w", s.Dir, err)
	}
	return f.List(ctx)
}

// Claim moves o into processing/OWNER/; see folder.Folder.Claim.
func (s *Source) Claim(ctx context.Context, o sources.Object) (sources.Object, error) {
	if err := folder.CheckKey(o.Key); err != nil {
		return sources.Object{}, err
	}
	f, err := s.open()
	if err != nil {
		return sources.Object{}, err
	}
	return f.Claim(ctx, o)
}

// Open returns the regular file at key; see folder.Folder.Open.
func (s *Source) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := folder.CheckKey(key); err != nil {
		return nil, err
	}
	f, err := s.open()
	if err != nil {
		return nil, err
	}
	return f.Open(ctx, key)
}

// Finish moves the file at key to imported/ or failed/ with its reports;
// see folder.Folder.Finish.
func (s *Source) Finish(ctx context.Context, key string, o sources.Outcome) (string, error) {
	if err := folder.CheckKey(key); err != nil {
		return "", err
	}
	f, err := s.open()
	if err != nil {
		return "", err
	}
	return f.Finish(ctx, key, o)
}

// open returns the folder, opening its root on first use. A failure is
// not kept: the next call tries again (the folder may appear later).
func (s *Source) open() (*folder.Folder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.folder != nil {
		return s.folder, nil
	}
	var abs [3]string
	for i, d := range []string{s.Dir, s.ImportedDir, s.FailedDir} {
		a, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.name, err)
		}
		abs[i] = a
	}
	top := commonDir(abs[:]...)
	root, err := os.OpenRoot(top)
	if err != nil {
		return nil, fmt.Errorf("source %s: open %s: %w", s.name, top, err)
	}
	rel := func(p string) string {
		r, _ := filepath.Rel(top, p)
		return filepath.ToSlash(r)
	}
	s.fs = &rootFS{dir: top, root: root}
	s.folder = &folder.Folder{
		FS:     s.fs,
		Source: s.name, Owner: s.Owner, Lease: s.Lease, Logger: s.Logger,
		Dir: rel(abs[0]), ImportedDir: rel(abs[1]), FailedDir: rel(abs[2]),
	}
	return s.folder, nil
}

// commonDir is the deepest folder that holds every one of paths.
func commonDir(paths ...string) string {
	c := paths[0]
	for _, p := range paths[1:] {
		for {
			r, err := filepath.Rel(c, p)
			if err == nil && filepath.IsLocal(r) || r == "." {
				break
			}
			if filepath.Dir(c) == c {
				break
			}
			c = filepath.Dir(c)
		}
	}
	return c
}

// rootFS is folder.FS on an os.Root: every path is resolved inside the
// root, by the kernel one level at a time, so neither ".." nor a link
// nor a rename racing the daemon can lead outside it.
type rootFS struct {
	dir string // the root's path, for messages and reopen

	mu   sync.RWMutex
	root *os.Root
}

func (r *rootFS) get() *os.Root {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.root
}

// reopen opens the root again when its path now names another folder
// (the drop folder was removed and made again), so that files dropped
// there are seen; a root whose folder has gone is an error, never an
// empty listing.
func (r *rootFS) reopen() error {
	cur, err := os.Stat(r.dir)
	if err != nil {
		return err
	}
	if open, err := r.get().Stat("."); err == nil && os.SameFile(cur, open) {
		return nil
	}
	nr, err := os.OpenRoot(r.dir)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.root
	r.root = nr
	r.mu.Unlock()
	return old.Close()
}

func (r *rootFS) Lstat(_ context.Context, p string) (fs.FileInfo, error) { return r.get().Lstat(p) }

func (r *rootFS) ReadDir(_ context.Context, p string) ([]fs.FileInfo, error) {
	d, err := r.get().OpenFile(p, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	infos := make([]fs.FileInfo, 0, len(names))
	for _, n := range names {
		fi, err := r.get().Lstat(path.Join(p, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue // moved away since it was read
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, fi)
	}
	return infos, nil
}

func (r *rootFS) Mkdir(_ context.Context, p string) error { return r.get().Mkdir(p, 0o755) }

func (r *rootFS) Rename(_ context.Context, oldp, newp string) error {
	return r.get().Rename(oldp, newp)
}

func (r *rootFS) Link(_ context.Context, oldp, newp string) error { return r.get().Link(oldp, newp) }

func (r *rootFS) Remove(_ context.Context, p string) error { return r.get().Remove(p) }

func (r *rootFS) Chtimes(_ context.Context, p string, mtime time.Time) error {
	return r.get().Chtimes(p, mtime, mtime)
}

func (r *rootFS) Open(_ context.Context, p string) (folder.File, error) {
	return r.get().OpenFile(p, openFlags, 0)
}

func (r *rootFS) Create(_ context.Context, p string, body []byte) error {
	f, err := r.get().OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.get().Remove(p)
	}
	return err
}

func (r *rootFS) SyncDir(_ context.Context, dirs ...string) error {
	native := make([]string, len(dirs))
	for i, d := range dirs {
		native[i] = r.Native(d)
	}
	return atomicfile.SyncDir(native...)
}

// ETag is size, mtime in nanoseconds and inode: a rewrite changes the
// first two, a replacement by rename changes the inode.
func (r *rootFS) ETag(fi fs.FileInfo) string {
	return fmt.Sprintf("%x-%x-%x", fi.Size(), fi.ModTime().UnixNano(), inode(fi))
}

func (r *rootFS) SameFile(a, b fs.FileInfo) bool { return os.SameFile(a, b) }

func (r *rootFS) Native(p string) string { return filepath.Join(r.dir, filepath.FromSlash(p)) }
