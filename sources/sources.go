// Package sources defines where dropped usage files come from.
//
// A Source is a folder somewhere (a local directory, an S3 prefix, an SFTP
// directory) into which people and systems drop files. Each backend lives in
// its own package (sources/local, sources/s3, sources/sftp) and is checked by
// the conformance suite in sources/sourcetest.
//
// The life of a file on a source is:
//
//	NAME                       dropped by a user, listed by List
//	processing/OWNER/NAME      after Claim: this instance has taken it
//	imported/NAME  or failed/NAME, plus reports beside it, after Finish
//
// A name is any bytes but '/' and NUL: UTF-8 or not, with newlines or
// escape characters; show it through safetext.Name. Backends never
// interpret file contents and never talk to Zuora. sources/folder holds
// the rename-claim protocol that local folders and SFTP share.
package sources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// Object is one file a source offers.
type Object struct {
	// Source is the name of the source that listed the object.
	Source string
	// Key is the object's path relative to the source root, '/'-separated,
	// e.g. "march.xlsx" or "processing/vm1/march.xlsx".
	Key string
	// Name is the file name the user dropped, without any folder; it stays
	// the same when Claim moves the object.
	Name    string
	Size    int64
	ModTime time.Time
	// ETag identifies this version of the object: S3's ETag, or a token
	// made from size and modification time where the store has no ETag.
	// Two listings with equal ETags saw the same bytes.
	ETag string
	// Claimed reports that the object sits in processing/ under another
	// owner whose lease has run out, so it may be taken over.
	Claimed bool
}

// Report is a small file written beside a finished object, such as
// "march.xlsx.errors.csv" or "march.xlsx.status.txt".
type Report struct {
	// Suffix is appended to the final name of the object, e.g. ".status.txt".
	Suffix string
	Body   []byte
}

// Outcome says where a finished object goes.
type Outcome struct {
	// Imported moves the object to imported/; otherwise it goes to failed/.
	Imported bool
	// Reports are written beside the object in its final folder.
	Reports []Report
}

// Errors a caller decides on.
var (
	// ErrClaimed is returned by Claim when another instance holds the
	// object and its lease has not run out.
	ErrClaimed = errors.New("claimed by another instance")
	// ErrChanged is returned by Claim or Open when the object's bytes are
	// no longer those that were listed (its ETag changed).
	ErrChanged = errors.New("object changed since it was listed")
	// ErrFatal marks errors that no retry can mend until an operator acts:
	// an unknown or changed host key, refused credentials, a missing
	// bucket. Backends wrap it (fmt.Errorf("...: %w", ErrFatal)) with a
	// message that names what to fix; the pipeline stops polling that
	// source and keeps the others running.
	ErrFatal = errors.New("source needs an operator")
)

// Source is one drop folder.
//
// Implementations must be safe for concurrent use. Every method that touches
// the store honours ctx. A missing object is reported with an error that
// satisfies errors.Is(err, fs.ErrNotExist).
type Source interface {
	// Name returns the configured name of the source, used in logs and in
	// the ledger's identity of a drop.
	Name() string

	// List returns the regular files waiting directly in the drop folder,
	// skipping folders, the source's own sub-folders (processing/,
	// imported/, failed/) and names that mark unfinished or temporary files
	// (dotfiles, "~$*", ".~lock.*#", "*.part", "*.tmp", "*.filepart").
	// Entries that are not regular files (symbolic links, FIFOs, devices,
	// sockets) are skipped and logged once at most; they are never taken,
	// opened or followed. It also returns claims in processing/ whose
	// owner's lease has run out, with Claimed set. Every Object has a Key.
	// A daemon folder (processing/, processing/OWNER/, imported/, failed/)
	// that is not a real directory, such as a symbolic link someone made
	// there, is an error wrapping ErrFatal that names the path. List does
	// not decide whether a file is complete: the watcher does, by comparing
	// listings over time.
	List(ctx context.Context) ([]Object, error)

	// Claim takes o for this instance by an atomic move into
	// processing/OWNER/ (or an equivalent conditional write), so that two
	// daemons on one folder never both take a file. It returns the object
	// under its new key (S3, which claims by a separate claim object,
	// keeps the key); callers use the returned Key from then on. Claiming an object this instance already holds
	// refreshes its lease and returns it unchanged. It returns ErrClaimed
	// when another live instance holds it, ErrChanged when its ETag no
	// longer matches o.ETag, and fs.ErrNotExist when it has gone.
	Claim(ctx context.Context, o Object) (Object, error)

	// Open returns the bytes of the object at key. The caller must close it.
	// It never blocks on, follows or reads what is not a regular file:
	// something other than the file that was claimed at key is ErrChanged.
	Open(ctx context.Context, key string) (io.ReadCloser, error)

	// Finish moves the object at key to imported/ or failed/ and writes the
	// outcome's reports beside it, named ReportName(final name, suffix).
	// The final name is the object's own unless it or any of its report
	// names is taken in the target folder; then CollisionName picks one
	// whose every name is free. Nothing is ever overwritten: reports are
	// created exclusively (temp name, then a move that fails on an existing
	// name), each atomically, and the object is moved last the same way,
	// so a crash in between leaves the object where a retry finds it. It
	// returns the key the object now has, and an error satisfying
	// errors.Is(err, fs.ErrNotExist) when nothing is at key (a retry after
	// the move already happened).
	Finish(ctx context.Context, key string, o Outcome) (string, error)
}

// Ignored reports whether a file name marks a file that is not (yet) a
// drop: dotfiles, Office lock files ("~$*", ".~lock.*#") and the temporary
// names that uploaders and editors write before renaming ("*.part",
// "*.tmp", "*.filepart"). Every backend's List skips these names.
func Ignored(name string) bool {
	switch {
	case name == "", strings.HasPrefix(name, "."), strings.HasPrefix(name, "~$"):
		return true
	}
	for _, ext := range []string{".part", ".tmp", ".filepart"} {
		if strings.HasSuffix(strings.ToLower(name), ext) {
			return true
		}
	}
	return false
}

// MaxName is the longest file name, in bytes, that the file systems under
// drop folders take (ext4, XFS, btrfs, and most SFTP servers on them).
const MaxName = 255

// ShortName returns name when it has at most max bytes. Otherwise it keeps
// the start of name, then "~" and a hash of the whole name, then name's
// extension, in max bytes: a report or collision name made from a long
// dropped name still fits the file system, and two long names that share
// their start still differ.
func ShortName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	tag := "~" + hex.EncodeToString(sum[:4])
	ext := path.Ext(name)
	if len(ext) > 16 || len(ext)+len(tag) >= max {
		ext = ""
	}
	keep := max - len(tag) - len(ext)
	if keep < 0 {
		return tag[:max]
	}
	// Cut on a character boundary where the name is UTF-8, so the kept
	// start stays readable.
	if utf8.ValidString(name) {
		for keep > 0 && !utf8.RuneStart(name[keep]) {
			keep--
		}
	}
	return name[:keep] + tag + ext
}

// ReportName is the name of the report with suffix beside a file named
// name: name+suffix, shortened with ShortName when that would pass
// MaxName.
func ReportName(name, suffix string) string {
	if len(name)+len(suffix) <= MaxName {
		return name + suffix
	}
	return ShortName(name, MaxName-len(suffix)) + suffix
}

// CollisionName returns a name for name in a folder where name is taken:
// the UTC time before the extension ("march-20260301T101500Z.xlsx"), then
// a counter ("march-20260301T101500Z-2.xlsx") until free reports true. A
// long name is shortened first so the result stays within MaxName.
// Backends use it so that Finish never overwrites an earlier file.
func CollisionName(name string, now time.Time, free func(string) bool) string {
	name = ShortName(name, MaxName-len("-20060102T150405Z-99999"))
	ext := path.Ext(name)
	if ext == name {
		ext = ""
	}
	stem := strings.TrimSuffix(name, ext) + "-" + now.UTC().Format("20060102T150405Z")
	candidate := stem + ext
	for i := 2; !free(candidate); i++ {
		candidate = fmt.Sprintf("%s-%d%s", stem, i, ext)
	}
	return candidate
}

// Notifier is implemented by sources that can hear of new files sooner
// than a listing finds them, such as S3 with event notifications on an
// SQS queue. Listing stays the backstop: notifications may be late, lost
// or shared with another instance.
type Notifier interface {
	// Changed blocks until the store reports that files in the drop
	// folder may have appeared or changed, and returns nil; the caller
	// then lists. It returns errors.ErrUnsupported when notifications are
	// not configured, and other errors when they fail; the caller then
	// relies on listing alone, or calls again after a pause.
	Changed(ctx context.Context) error
}
