// Package local is a drop folder on a local (or mounted) file system.
//
// Claims, finishes and reports are renames inside one directory tree, so
// processing/, imported/ and failed/ must live on the same file system as
// the drop folder; a rename across file systems fails with a clear error
// rather than falling back to a copy that a crash could tear.
package local

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
	"path/filepath"
	"strings"
	"sync"
	"time"

	"usagedrop/sources"
)

// Default values used by New.
const (
	DefaultLease = time.Hour
	processing   = "processing"
)

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
	// Logger receives takeovers and collisions.
	Logger *slog.Logger

	name string
	// mu serialises renames into folders this instance writes, so that
	// "is the target free?" and "rename" happen as one step.
	mu sync.Mutex
	// held maps the keys this instance claimed to their ETag at claim
	// time, so Open can tell a file replaced in processing/.
	held map[string]string
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
		held:        make(map[string]string),
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

// List returns the files waiting in Dir and the claims in processing/
// whose lease has run out.
func (s *Source) List(ctx context.Context) ([]sources.Object, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.Dir, err)
	}
	var objs []sources.Object
	for _, e := range entries {
		if e.IsDir() || sources.Ignored(e.Name()) {
			continue
		}
		o, err := s.stat(e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // moved away since ReadDir
		}
		if err != nil {
			return nil, err
		}
		if o.Key != "" {
			objs = append(objs, o)
		}
	}
	stale, err := s.staleClaims(ctx)
	if err != nil {
		return nil, err
	}
	return append(objs, stale...), nil
}

// staleClaims lists processing/*/* whose modification time, set at claim
// and refreshed by the owner, is older than the lease.
func (s *Source) staleClaims(ctx context.Context) ([]sources.Object, error) {
	owners, err := os.ReadDir(filepath.Join(s.Dir, processing))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", processing, err)
	}
	var objs []sources.Object
	for _, owner := range owners {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !owner.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.Dir, processing, owner.Name()))
		if err != nil {
			return nil, fmt.Errorf("list %s/%s: %w", processing, owner.Name(), err)
		}
		for _, f := range files {
			if f.IsDir() || sources.Ignored(f.Name()) {
				continue
			}
			o, err := s.stat(path.Join(processing, owner.Name(), f.Name()))
			if err != nil || o.Key == "" || !s.expired(o.ModTime) {
				continue
			}
			o.Claimed = true
			objs = append(objs, o)
		}
	}
	return objs, nil
}

func (s *Source) expired(claimed time.Time) bool {
	return time.Since(claimed) > cmp.Or(max(s.Lease, 0), DefaultLease)
}

// stat describes the regular file at key; a zero Object means "not a
// regular file".
func (s *Source) stat(key string) (sources.Object, error) {
	fi, err := os.Lstat(s.path(key))
	if err != nil {
		return sources.Object{}, fmt.Errorf("stat %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return sources.Object{}, nil
	}
	return sources.Object{
		Source:  s.name,
		Key:     key,
		Name:    path.Base(key),
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
		ETag:    etag(fi),
	}, nil
}

// etag is size, mtime in nanoseconds and inode: a rewrite changes the
// first two, a replacement by rename changes the inode.
func etag(fi fs.FileInfo) string {
	return fmt.Sprintf("%x-%x-%x", fi.Size(), fi.ModTime().UnixNano(), inode(fi))
}

// path maps a '/'-separated key to a file path under Dir.
func (s *Source) path(key string) string {
	return filepath.Join(s.Dir, filepath.FromSlash(key))
}

// checkKey refuses keys that would leave Dir.
func checkKey(key string) error {
	if key == "" || !filepath.IsLocal(filepath.FromSlash(key)) {
		return fmt.Errorf("key %q: not a path inside the drop folder: %w", key, fs.ErrInvalid)
	}
	return nil
}

// Claim moves o into processing/OWNER/ by rename, which the file system
// makes atomic: of two instances renaming the same file, one finds it gone.
// The claimed file's modification time is set to now to start the lease.
func (s *Source) Claim(ctx context.Context, o sources.Object) (sources.Object, error) {
	if err := checkKey(o.Key); err != nil {
		return sources.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return sources.Object{}, err
	}
	cur, err := s.stat(o.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return sources.Object{}, s.goneOrClaimed(o)
	}
	if err != nil {
		return sources.Object{}, fmt.Errorf("claim %s: %w", o.Key, err)
	}
	mine := path.Join(processing, s.Owner, o.Name)
	if cur.ETag != o.ETag && (o.Key != mine || !leaseOnly(cur.ETag, o.ETag)) {
		return sources.Object{}, fmt.Errorf("claim %s: %w", o.Key, sources.ErrChanged)
	}
	if o.Key != mine {
		if err := s.claimMove(o, mine); err != nil {
			return sources.Object{}, err
		}
	}
	now := time.Now()
	if err := os.Chtimes(s.path(mine), now, now); err != nil {
		return sources.Object{}, fmt.Errorf("claim %s: start lease: %w", mine, err)
	}
	c, err := s.stat(mine)
	if err != nil {
		return sources.Object{}, err
	}
	s.mu.Lock()
	s.held[mine] = c.ETag
	s.mu.Unlock()
	return c, nil
}

// leaseOnly reports whether two ETags of a file this instance holds differ
// only in mtime, which the lease itself moves: a retry that lost the ETag
// of its last refresh must still be able to refresh.
func leaseOnly(a, b string) bool {
	as, bs := strings.Split(a, "-"), strings.Split(b, "-")
	return len(as) == 3 && len(bs) == 3 && as[0] == bs[0] && as[2] == bs[2]
}

// claimMove renames o to mine, refusing to replace an earlier drop of the
// same name that this instance still holds.
func (s *Source) claimMove(o sources.Object, mine string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Lstat(s.path(mine)); err == nil {
		return fmt.Errorf("claim %s: an earlier %s is still in %s: %w", o.Key, o.Name, path.Dir(mine), sources.ErrClaimed)
	}
	if err := os.MkdirAll(filepath.Dir(s.path(mine)), 0o755); err != nil {
		return fmt.Errorf("claim %s: %w", o.Key, err)
	}
	err := os.Rename(s.path(o.Key), s.path(mine))
	if errors.Is(err, fs.ErrNotExist) {
		return s.goneOrClaimed(o)
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", o.Key, err)
	}
	if o.Claimed {
		s.Logger.Info("took over stale claim", "source", s.name, "from", o.Key, "to", mine)
	}
	return syncDirs(s.Dir, filepath.Dir(s.path(o.Key)), filepath.Dir(s.path(mine)))
}

// goneOrClaimed explains why o is no longer at its key: another instance
// took it, or it has gone altogether.
func (s *Source) goneOrClaimed(o sources.Object) error {
	held, _ := filepath.Glob(filepath.Join(s.Dir, processing, "*", globEscape(o.Name)))
	for _, h := range held {
		rel, _ := filepath.Rel(s.Dir, h)
		if filepath.ToSlash(rel) != path.Join(processing, s.Owner, o.Name) {
			return fmt.Errorf("claim %s: held as %s: %w", o.Key, filepath.ToSlash(rel), sources.ErrClaimed)
		}
	}
	return fmt.Errorf("claim %s: %w", o.Key, fs.ErrNotExist)
}

func globEscape(name string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(name)
}

// Open returns the file at key. Reading it to the end fails with
// ErrChanged if the file was rewritten or replaced while it was read.
func (s *Source) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file: %w", key, fs.ErrInvalid)
	}
	s.mu.Lock()
	want, ok := s.held[key]
	s.mu.Unlock()
	if ok && want != etag(fi) {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, sources.ErrChanged)
	}
	return &reader{f: f, path: s.path(key), key: key, etag: etag(fi)}, nil
}

// reader checks at end of file that the path still names the bytes it
// read, so a torn read is an error and never a short, valid-looking file.
type reader struct {
	f    *os.File
	path string
	key  string
	etag string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if err == io.EOF {
		fi, serr := os.Lstat(r.path)
		if serr != nil || etag(fi) != r.etag {
			return n, fmt.Errorf("read %s: %w", r.key, sources.ErrChanged)
		}
	}
	return n, err
}

func (r *reader) Close() error { return r.f.Close() }

// Finish writes the reports into the target folder, then moves the file
// there. Names already taken get a timestamp suffix.
func (s *Source) Finish(ctx context.Context, key string, o sources.Outcome) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if _, err := os.Lstat(s.path(key)); err != nil {
		return "", fmt.Errorf("finish %s: %w", key, err)
	}
	dir := s.FailedDir
	if o.Imported {
		dir = s.ImportedDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("finish %s: %w", key, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	name, err := freeName(dir, path.Base(key), time.Now())
	if err != nil {
		return "", fmt.Errorf("finish %s: %w", key, err)
	}
	for _, r := range o.Reports {
		if err := writeAtomic(filepath.Join(dir, name+r.Suffix), r.Body); err != nil {
			return "", fmt.Errorf("finish %s: report %s: %w", key, r.Suffix, err)
		}
	}
	target := filepath.Join(dir, name)
	if err := os.Rename(s.path(key), target); err != nil {
		return "", fmt.Errorf("finish %s: move to %s: %w", key, target, err)
	}
	delete(s.held, key)
	if err := syncDirs(dir, filepath.Dir(s.path(key))); err != nil {
		return "", fmt.Errorf("finish %s: %w", key, err)
	}
	return s.keyOf(target), nil
}

// keyOf returns the key of a path under Dir, or the path itself when the
// target folders were configured outside Dir.
func (s *Source) keyOf(p string) string {
	rel, err := filepath.Rel(s.Dir, p)
	if err != nil || !filepath.IsLocal(rel) {
		return p
	}
	return filepath.ToSlash(rel)
}

// freeName returns name if dir has no such entry, else name with a
// timestamp before its extension ("march-20260301T101500Z.xlsx"), with a
// counter if even that is taken.
func freeName(dir, name string, now time.Time) (string, error) {
	var serr error
	free := func(n string) bool {
		_, err := os.Lstat(filepath.Join(dir, n))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			serr = err // stop looking; the caller reports it
		}
		return err != nil
	}
	if free(name) {
		return name, serr
	}
	return sources.CollisionName(name, now, free), serr
}

// writeAtomic writes body to a temp file beside p, syncs it and renames it
// over p, so readers see the old report or the new one, never half.
func writeAtomic(p string, body []byte) error {
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+"."+randHex()+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
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
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func randHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// syncDirs fsyncs directories so that renames into and out of them survive
// a power cut.
func syncDirs(dirs ...string) error {
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
	}
	return nil
}
