package folder

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
	"path"
	"strings"
	"sync"
	"time"

	"usagedrop/internal/safetext"
	"usagedrop/sources"
)

// Processing is the folder under the drop folder that holds claims.
const Processing = "processing"

// DefaultLease is the lease when Folder.Lease is zero.
const DefaultLease = time.Hour

// maxSkipped bounds the memory of entries already logged as skipped.
const maxSkipped = 4096

// Folder is a drop folder on an FS. It implements every method of
// sources.Source but Name. Set its fields before the first call; they must
// not change afterwards.
type Folder struct {
	FS FS
	// Source is the source's name, put on every Object.
	Source string
	// Dir is the drop folder; ImportedDir and FailedDir receive finished
	// files. All three are FS paths; the finish folders may lie outside Dir.
	Dir, ImportedDir, FailedDir string
	// Owner names this instance in processing/OWNER/.
	Owner string
	// Lease is how long a claim stays its owner's after its last refresh;
	// zero means DefaultLease. Slack is added for stores whose mtimes are
	// coarse (SFTP's whole seconds make a claim look older than it is).
	Lease, Slack time.Duration
	Logger       *slog.Logger

	// mu serialises moves into the folders this instance writes, so that
	// "is the name free?" and the move are one step within the process.
	mu sync.Mutex
	// held maps the keys this instance claimed to their ETag then, so
	// Open can tell a file replaced in processing/.
	held map[string]string
	// skipped holds the entries already logged as not regular files.
	skipped map[string]bool
}

func (f *Folder) p(key string) string { return path.Join(f.Dir, key) }

func (f *Folder) mine(name string) string { return path.Join(Processing, f.Owner, name) }

func (f *Folder) logger() *slog.Logger { return cmp.Or(f.Logger, slog.Default()) }

// CheckKey refuses keys that are not a path inside the drop folder. Any
// bytes but '/' and NUL may make up a name, UTF-8 or not.
func CheckKey(key string) error {
	bad := key == "" || strings.Contains(key, "\x00")
	for _, e := range strings.Split(key, "/") {
		bad = bad || e == "" || e == "." || e == ".."
	}
	if bad {
		return fmt.Errorf("key %q: not a path inside the drop folder: %w", safetext.Name(key), fs.ErrInvalid)
	}
	return nil
}

// List returns the regular files waiting in Dir and the claims in
// processing/ whose lease has run out. Entries that are not regular files
// (symbolic links, FIFOs, devices, sockets, folders other than its own)
// are skipped, logged once, and never taken. A daemon folder that is not
// a real directory stops the source (sources.ErrFatal).
func (f *Folder) List(ctx context.Context) ([]sources.Object, error) {
	for _, d := range []string{Processing, f.mine("")} {
		if err := f.realDir(ctx, f.p(d), false); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{f.ImportedDir, f.FailedDir} {
		if err := f.realDir(ctx, d, false); err != nil {
			return nil, err
		}
	}
	entries, err := f.FS.ReadDir(ctx, f.Dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", safetext.Name(f.FS.Native(f.Dir)), err)
	}
	var objs []sources.Object
	for _, fi := range entries {
		if fi.IsDir() || sources.Ignored(fi.Name()) {
			continue
		}
		if !fi.Mode().IsRegular() {
			f.skip(fi.Name(), fi)
			continue
		}
		objs = append(objs, f.object(fi.Name(), fi))
	}
	stale, err := f.staleClaims(ctx)
	return append(objs, stale...), err
}

// skip logs, once per name and kind, an entry that is not a regular file.
func (f *Folder) skip(key string, fi fs.FileInfo) {
	id := key + "\x00" + fi.Mode().Type().String()
	f.mu.Lock()
	if f.skipped == nil || len(f.skipped) >= maxSkipped {
		f.skipped = make(map[string]bool)
	}
	seen := f.skipped[id]
	f.skipped[id] = true
	f.mu.Unlock()
	if !seen {
		f.logger().Warn("skipped: not a regular file; only regular files are taken", "source", f.Source,
			"name", safetext.Name(key), "kind", kind(fi.Mode()))
	}
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "folder"
	}
	return "special file"
}

// staleClaims lists processing/*/* whose modification time, set at claim
// and refreshed by the owner, is older than the lease.
func (f *Folder) staleClaims(ctx context.Context) ([]sources.Object, error) {
	owners, err := f.FS.ReadDir(ctx, f.p(Processing))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Processing, err)
	}
	var objs []sources.Object
	for _, owner := range owners {
		if !owner.IsDir() {
			continue // a link here is never followed
		}
		dir := path.Join(Processing, owner.Name())
		files, err := f.FS.ReadDir(ctx, f.p(dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", safetext.Name(dir), err)
		}
		for _, fi := range files {
			if !fi.Mode().IsRegular() || sources.Ignored(fi.Name()) || !f.expired(fi.ModTime()) {
				continue
			}
			o := f.object(path.Join(dir, fi.Name()), fi)
			o.Claimed = true
			objs = append(objs, o)
		}
	}
	return objs, nil
}

func (f *Folder) expired(claimed time.Time) bool {
	return time.Since(claimed) > cmp.Or(max(f.Lease, 0), DefaultLease)+f.Slack
}

func (f *Folder) object(key string, fi fs.FileInfo) sources.Object {
	return sources.Object{Source: f.Source, Key: key, Name: path.Base(key), Size: fi.Size(),
		ModTime: fi.ModTime(), ETag: f.FS.ETag(fi)}
}

// stat describes the regular file at key. Anything else there is
// sources.ErrChanged: what was listed as a file is no longer one.
func (f *Folder) stat(ctx context.Context, key string) (sources.Object, fs.FileInfo, error) {
	fi, err := f.FS.Lstat(ctx, f.p(key))
	if err != nil {
		return sources.Object{}, nil, fmt.Errorf("stat %s: %w", safetext.Name(key), err)
	}
	if !fi.Mode().IsRegular() {
		return sources.Object{}, nil, fmt.Errorf("%s is now a %s, not a regular file: %w",
			safetext.Name(key), kind(fi.Mode()), sources.ErrChanged)
	}
	return f.object(key, fi), fi, nil
}

// realDir checks that the daemon folder d is a real directory, making it
// when create is set and it is missing. Every level of d below Dir is
// checked, since a link there would lead writes out of the drop folder.
// Dir itself, and a finish folder configured outside it, are the
// operator's paths and may be links the operator made.
func (f *Folder) realDir(ctx context.Context, d string, create bool) error {
	rel, inside := f.under(d)
	if rel == "." {
		return nil
	}
	if !inside {
		return f.operatorDir(ctx, d, create)
	}
	var dirs []string
	for i, c := range strings.Split(rel, "/") {
		if i == 0 {
			dirs = append(dirs, f.p(c))
		} else {
			dirs = append(dirs, path.Join(dirs[i-1], c))
		}
	}
	for _, d := range dirs {
		fi, err := f.FS.Lstat(ctx, d)
		if errors.Is(err, fs.ErrNotExist) && create {
			if err = f.mkdir(ctx, d); err == nil {
				fi, err = f.FS.Lstat(ctx, d)
			}
		}
		if errors.Is(err, fs.ErrNotExist) && !create {
			return nil
		}
		if err != nil {
			return fmt.Errorf("folder %s: %w", safetext.Name(f.FS.Native(d)), err)
		}
		switch {
		case fi.IsDir():
		case fi.Mode().IsRegular() && !create:
			// A file a user dropped under that name is a drop like any
			// other; once claimed, its name is free for the folder.
			return nil
		case fi.Mode().IsRegular():
			return fmt.Errorf("a file named %s is where usagedrop needs its folder", safetext.Name(f.FS.Native(d)))
		default:
			return fmt.Errorf("%s is a %s, not a folder; usagedrop writes only into real folders, so it stopped "+
				"this source: remove it and let usagedrop create the folder: %w",
				safetext.Name(f.FS.Native(d)), kind(fi.Mode()), sources.ErrFatal)
		}
	}
	return nil
}

// operatorDir makes a configured finish folder outside Dir when create is
// set and it is missing.
func (f *Folder) operatorDir(ctx context.Context, d string, create bool) error {
	_, err := f.FS.Lstat(ctx, d)
	if errors.Is(err, fs.ErrNotExist) && create {
		err = f.mkdir(ctx, d)
	}
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && !create) {
		return fmt.Errorf("folder %s: %w", safetext.Name(f.FS.Native(d)), err)
	}
	return nil
}

// mkdir makes d and any missing parents; an error that leaves d a
// directory is no error.
func (f *Folder) mkdir(ctx context.Context, d string) error {
	err := f.FS.Mkdir(ctx, d)
	if err != nil && errors.Is(err, fs.ErrNotExist) && path.Dir(d) != d {
		if perr := f.mkdir(ctx, path.Dir(d)); perr == nil {
			err = f.FS.Mkdir(ctx, d)
		}
	}
	if err != nil {
		if fi, serr := f.FS.Lstat(ctx, d); serr == nil && fi.IsDir() {
			return nil
		}
	}
	return err
}

// under returns p relative to Dir, and whether p is inside it.
func (f *Folder) under(p string) (string, bool) {
	if f.Dir == "." || f.Dir == "" {
		return p, p != ".." && !strings.HasPrefix(p, "../") && !strings.HasPrefix(p, "/")
	}
	if p == f.Dir {
		return ".", true
	}
	return strings.CutPrefix(p, strings.TrimSuffix(f.Dir, "/")+"/")
}

// keyOf returns the key of an FS path under Dir, or the path as an
// operator would write it when the finish folders lie outside Dir.
func (f *Folder) keyOf(p string) string {
	if rel, ok := f.under(p); ok {
		return rel
	}
	return f.FS.Native(p)
}

// Claim moves o into processing/OWNER/ by rename, which the store makes
// atomic: of two instances renaming the same file, one finds it gone. The
// claimed file's modification time is set to now to start the lease.
func (f *Folder) Claim(ctx context.Context, o sources.Object) (sources.Object, error) {
	if err := CheckKey(o.Key); err != nil {
		return sources.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return sources.Object{}, err
	}
	cur, _, err := f.stat(ctx, o.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return sources.Object{}, f.goneOrClaimed(ctx, o)
	}
	if err != nil {
		return sources.Object{}, fmt.Errorf("claim: %w", err)
	}
	mine := f.mine(o.Name)
	if cur.ETag != o.ETag && (o.Key != mine || !leaseOnly(cur.ETag, o.ETag)) {
		return sources.Object{}, fmt.Errorf("claim %s: %w", safetext.Name(o.Key), sources.ErrChanged)
	}
	if o.Key != mine {
		if err := f.claimMove(ctx, o, mine); err != nil {
			return sources.Object{}, err
		}
	}
	if err := f.FS.Chtimes(ctx, f.p(mine), time.Now()); err != nil {
		return sources.Object{}, fmt.Errorf("claim %s: start lease: %w", safetext.Name(mine), err)
	}
	c, _, err := f.stat(ctx, mine)
	if err != nil {
		// Swapped for something else right after the move: never hand
		// out an object that is not the file we took.
		return sources.Object{}, fmt.Errorf("claim: %w", err)
	}
	f.mu.Lock()
	if f.held == nil {
		f.held = make(map[string]string)
	}
	f.held[mine] = c.ETag
	f.mu.Unlock()
	return c, nil
}

// leaseOnly reports whether two ETags of a file this instance holds differ
// only in mtime, which the lease itself moves: a retry that lost the ETag
// of its last refresh must still be able to refresh.
func leaseOnly(a, b string) bool {
	as, bs := strings.Split(a, "-"), strings.Split(b, "-")
	if len(as) != len(bs) || len(as) < 2 {
		return false
	}
	as[1], bs[1] = "", ""
	return strings.Join(as, "-") == strings.Join(bs, "-")
}

// claimMove renames o to mine, refusing to replace an earlier drop of the
// same name that this instance still holds.
func (f *Folder) claimMove(ctx context.Context, o sources.Object, mine string) error {
	if err := f.realDir(ctx, f.p(path.Dir(mine)), true); err != nil {
		return fmt.Errorf("claim %s: %w", safetext.Name(o.Key), err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fi, err := f.FS.Lstat(ctx, f.p(mine)); err == nil {
		if fi.Mode().IsRegular() {
			return fmt.Errorf("claim %s: an earlier %s is still in %s: %w",
				safetext.Name(o.Key), safetext.Name(o.Name), safetext.Name(path.Dir(mine)), sources.ErrClaimed)
		}
		// Not a drop (a link or FIFO someone put in our folder): the
		// rename replaces the entry, never what it points to.
		f.logger().Warn("replacing a non-file in processing/", "source", f.Source, "name", safetext.Name(mine),
			"kind", kind(fi.Mode()))
	}
	if err := f.FS.Rename(ctx, f.p(o.Key), f.p(mine)); err != nil {
		if _, serr := f.FS.Lstat(ctx, f.p(o.Key)); errors.Is(serr, fs.ErrNotExist) {
			return f.goneOrClaimed(ctx, o)
		}
		return fmt.Errorf("claim %s: %w", safetext.Name(o.Key), err)
	}
	if o.Claimed {
		f.logger().Info("took over stale claim", "source", f.Source, "from", safetext.Name(o.Key), "to", safetext.Name(mine))
	}
	return f.FS.SyncDir(ctx, f.Dir, f.p(path.Dir(o.Key)), f.p(path.Dir(mine)))
}

// goneOrClaimed explains why o is no longer at its key: another instance
// took it, or it has gone altogether.
func (f *Folder) goneOrClaimed(ctx context.Context, o sources.Object) error {
	owners, err := f.FS.ReadDir(ctx, f.p(Processing))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("claim %s: %w", safetext.Name(o.Key), err)
	}
	for _, owner := range owners {
		if owner.Name() == f.Owner || !owner.IsDir() {
			continue
		}
		held := path.Join(Processing, owner.Name(), o.Name)
		if _, err := f.FS.Lstat(ctx, f.p(held)); err == nil {
			return fmt.Errorf("claim %s: held as %s: %w", safetext.Name(o.Key), safetext.Name(held), sources.ErrClaimed)
		}
	}
	return fmt.Errorf("claim %s: %w", safetext.Name(o.Key), fs.ErrNotExist)
}

// Open returns the regular file at key. What is not a regular file, or
// not the file this instance claimed, is sources.ErrChanged, found before
// reading a byte; reading to the end fails with ErrChanged if the file was
// rewritten or replaced meanwhile.
func (f *Folder) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Look before opening: on stores that cannot open without following
	// links or blocking (SFTP), a FIFO or link is never opened at all.
	_, before, err := f.stat(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	file, err := f.FS.Open(ctx, f.p(key))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", safetext.Name(key), err)
	}
	fi, err := file.Stat()
	if err == nil && (!fi.Mode().IsRegular() || f.FS.ETag(fi) != f.FS.ETag(before)) {
		err = fmt.Errorf("open %s: what was opened is not the regular file that was there: %w", safetext.Name(key), sources.ErrChanged)
	}
	if err == nil {
		f.mu.Lock()
		want, ok := f.held[key]
		f.mu.Unlock()
		if ok && want != f.FS.ETag(fi) {
			err = fmt.Errorf("open %s: %w", safetext.Name(key), sources.ErrChanged)
		}
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return &reader{f: f, ctx: ctx, file: file, key: key, etag: f.FS.ETag(fi)}, nil
}

// reader checks at end of file that the path still names the bytes it
// read, so a torn read is an error and never a short, valid-looking file.
type reader struct {
	f    *Folder
	ctx  context.Context
	file File
	key  string
	etag string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.file.Read(p)
	if err == io.EOF {
		if verr := r.verify(); verr != nil {
			return n, verr
		}
	}
	return n, err
}

// WriteTo passes on the file's own WriteTo where it has one (SFTP's keeps
// many reads in flight), and verifies at the end.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	wt, ok := r.file.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	n, err := wt.WriteTo(w)
	if err != nil {
		return n, err
	}
	return n, r.verify()
}

func (r *reader) verify() error {
	fi, err := r.f.FS.Lstat(r.ctx, r.f.p(r.key))
	if err != nil || r.f.FS.ETag(fi) != r.etag {
		return fmt.Errorf("read %s: %w", safetext.Name(r.key), sources.ErrChanged)
	}
	return nil
}

func (r *reader) Close() error { return r.file.Close() }

// Finish moves the file at key to imported/ or failed/ with its reports
// beside it; see sources.Source. The final name is chosen so that the file
// and every report name are free, and each is created without replacing
// anything: a report of an earlier drop is never overwritten, and a name
// a dropped file could take ("x.csv.status.txt") only moves this drop to
// a timestamped name. Reports are this process's own files, so they can
// always be linked into place; written first, they also settle a race
// with another instance over a name where the dropped file itself cannot
// be linked and is checked and renamed.
func (f *Folder) Finish(ctx context.Context, key string, o sources.Outcome) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := f.realDir(ctx, f.p(path.Dir(key)), false); err != nil {
		return "", fmt.Errorf("finish %s: %w", safetext.Name(key), err)
	}
	src, err := f.FS.Lstat(ctx, f.p(key))
	if err != nil {
		return "", fmt.Errorf("finish %s: %w", safetext.Name(key), err)
	}
	if src.IsDir() {
		return "", fmt.Errorf("finish %s: a folder, not a drop: %w", safetext.Name(key), fs.ErrInvalid)
	}
	dir := f.FailedDir
	if o.Imported {
		dir = f.ImportedDir
	}
	if err := f.realDir(ctx, dir, true); err != nil {
		return "", fmt.Errorf("finish %s: %w", safetext.Name(key), err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	const tries = 5 // another instance may take a chosen name; never loop
	for range tries {
		target, done, err := f.finishOnce(ctx, key, src, dir, o.Reports)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("finish %s: %w", safetext.Name(key), err)
		}
		if !done {
			continue
		}
		delete(f.held, key)
		if err := f.FS.SyncDir(ctx, dir, f.p(path.Dir(key))); err != nil {
			return "", fmt.Errorf("finish %s: %w", safetext.Name(key), err)
		}
		return f.keyOf(target), nil
	}
	return "", fmt.Errorf("finish %s: every name tried in %s was taken meanwhile", safetext.Name(key),
		safetext.Name(f.FS.Native(dir)))
}

// finishOnce chooses a name, writes the reports and moves the file. It
// reports fs.ErrExist, having removed what it wrote, when a name it chose
// was taken before it could create it.
func (f *Folder) finishOnce(ctx context.Context, key string, src fs.FileInfo, dir string,
	reports []sources.Report) (target string, done bool, err error) {
	name, ours, err := f.freeName(ctx, dir, path.Base(key), src, reports)
	if err != nil {
		return "", false, err
	}
	target = path.Join(dir, name)
	if ours {
		// A crash came after the file was linked there and before its old
		// name was removed; its reports were written before the link.
		if err := f.FS.Remove(ctx, f.p(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", false, err
		}
		return target, true, nil
	}
	var written []string
	undo := func() {
		for _, w := range written {
			f.FS.Remove(ctx, w)
		}
	}
	for _, r := range reports {
		rp := path.Join(dir, sources.ReportName(name, r.Suffix))
		if err := f.writeNew(ctx, rp, r.Body); err != nil {
			undo()
			return "", false, fmt.Errorf("report %s: %w", safetext.Name(path.Base(rp)), err)
		}
		written = append(written, rp)
	}
	if linked, err := f.moveNew(ctx, f.p(key), target); err != nil {
		if !linked {
			// Still at its old name: the reports would stand alone.
			undo()
		}
		return "", false, fmt.Errorf("move to %s: %w", safetext.Name(f.FS.Native(target)), err)
	}
	return target, true, nil
}

// freeName returns the first name for base in dir whose file and report
// names are all free: base itself, then timestamped ones. ours reports
// that dir already holds this very file under the name (see finishOnce).
func (f *Folder) freeName(ctx context.Context, dir, base string, src fs.FileInfo,
	reports []sources.Report) (name string, ours bool, err error) {
	free := func(n string) bool {
		if err != nil {
			return true // stop looking; the error is returned
		}
		names := []string{n}
		for _, r := range reports {
			names = append(names, sources.ReportName(n, r.Suffix))
		}
		for _, c := range names {
			fi, serr := f.FS.Lstat(ctx, path.Join(dir, c))
			if c == n && serr == nil && f.FS.SameFile(fi, src) {
				ours = true
				return true
			}
			if !errors.Is(serr, fs.ErrNotExist) {
				if serr != nil {
					err = serr
				}
				return false
			}
		}
		return true
	}
	if free(base) {
		return base, ours, err
	}
	name = sources.CollisionName(base, time.Now(), free)
	return name, ours, err
}

// writeNew creates p with body, atomically and without replacing
// anything: a short temp name (whatever p's length), then a link or
// checked rename to p. It returns fs.ErrExist when p is taken.
func (f *Folder) writeNew(ctx context.Context, p string, body []byte) error {
	tmp := path.Join(path.Dir(p), ".tmp-"+randHex())
	if err := f.FS.Create(ctx, tmp, body); err != nil {
		return err
	}
	linked, err := f.moveNew(ctx, tmp, p)
	if err != nil {
		f.FS.Remove(ctx, tmp)
	}
	if linked {
		return nil // the report is in place; a temp name left is a dotfile
	}
	return err
}

// moveNew moves oldp to newp, which must not exist: a hard link, then the
// old name removed, so a name taken meanwhile fails with fs.ErrExist
// instead of being replaced. Where the store cannot link (no hard links,
// or protected_hardlinks on a file another user owns) it checks and
// renames, which holds against everything but another instance writing
// the same name at the same moment. linked reports that newp names the
// file, even when removing oldp then failed.
func (f *Folder) moveNew(ctx context.Context, oldp, newp string) (linked bool, err error) {
	err = f.FS.Link(ctx, oldp, newp)
	switch {
	case err == nil:
		return true, f.FS.Remove(ctx, oldp)
	case errors.Is(err, fs.ErrExist), errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if _, serr := f.FS.Lstat(ctx, newp); serr == nil {
		return false, fmt.Errorf("%s: %w", safetext.Name(path.Base(newp)), fs.ErrExist)
	} else if !errors.Is(serr, fs.ErrNotExist) {
		return false, serr
	}
	return false, f.FS.Rename(ctx, oldp, newp)
}

func randHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
