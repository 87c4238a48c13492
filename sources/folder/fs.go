// Package folder is the rename-claim protocol of a drop folder on a file
// system: listing, claims in processing/OWNER/ with leases and takeover,
// reading a claimed file, and finishing it into imported/ or failed/ with
// its reports, under names that never land on another file.
//
// sources/local and sources/sftp are each an FS adapter plus their own
// connection code; the protocol, and every rule about odd and hostile
// entries, lives here once, as restic's backends share layout:
//
//   - the daemon's own folders (processing/, processing/OWNER/, imported/,
//     failed/) must be real directories: a symbolic link (or a FIFO, a
//     device) there stops the source with an error wrapping
//     sources.ErrFatal that names the path; a regular file a user dropped
//     under such a name is a drop like any other;
//   - only regular files are offered, claimed and read; symlinks, FIFOs,
//     devices and sockets in the drop folder are skipped and logged once;
//   - a file is opened without following a final symlink and without
//     blocking, and checked to be the regular file that was looked at;
//   - Finish picks one final name for the file and all its reports that is
//     free, and creates each of them without replacing anything;
//   - names that would pass sources.MaxName bytes with a report's suffix are
//     shortened with a hash; temp names are short whatever the name.
package folder

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// FS is the file system a Folder works on. Paths are '/'-separated and
// mean what the store means by them: relative to a root the adapter chose
// (sources/local), or paths on a server (sources/sftp). Errors satisfy
// errors.Is with fs.ErrNotExist, fs.ErrExist and fs.ErrPermission where
// those apply. Implementations must be safe for concurrent use and honour
// ctx where the store can be interrupted.
type FS interface {
	// Lstat describes p without following a final symbolic link.
	Lstat(ctx context.Context, p string) (fs.FileInfo, error)
	// ReadDir describes the entries of directory p as Lstat would. An
	// entry that goes away while it is read is left out.
	ReadDir(ctx context.Context, p string) ([]fs.FileInfo, error)
	// Mkdir makes directory p; its parent must exist. An existing p is an
	// error (any error: the caller looks at p again).
	Mkdir(ctx context.Context, p string) error
	// Rename moves oldp to newp in one step. It may replace newp.
	Rename(ctx context.Context, oldp, newp string) error
	// Link makes newp another name for the file at oldp and fails with
	// fs.ErrExist when newp exists. Stores without hard links return
	// another error, and the caller falls back to checking and renaming.
	Link(ctx context.Context, oldp, newp string) error
	// Remove removes the name p (a file, or an empty directory).
	Remove(ctx context.Context, p string) error
	// Chtimes sets p's modification time, which is the lease clock.
	Chtimes(ctx context.Context, p string, mtime time.Time) error
	// Open opens p read-only without following a final symbolic link
	// where the store allows it, and without blocking on a FIFO or a
	// device. It does not check what p is; the caller does, on the File.
	Open(ctx context.Context, p string) (File, error)
	// Create creates p exclusively (fs.ErrExist if p exists), writes body,
	// makes it durable where the store can, and closes it.
	Create(ctx context.Context, p string, body []byte) error
	// SyncDir makes renames into and out of the directories durable where
	// the store can; elsewhere it does nothing.
	SyncDir(ctx context.Context, dirs ...string) error
	// ETag identifies the version of the regular file fi describes: two
	// infos with equal ETags saw the same bytes. Its first '-'-separated
	// field is the size and its second the modification time; the lease
	// moves only the second.
	ETag(fi fs.FileInfo) string
	// SameFile reports whether a and b describe one file under two names
	// (a hard link), and false when the store cannot tell.
	SameFile(a, b fs.FileInfo) bool
	// Native returns p as an operator would write it, for keys outside
	// the drop folder and for messages.
	Native(p string) string
}

// File is an open file of an FS.
type File interface {
	io.ReadCloser
	// Stat describes the open file itself, not whatever its name now
	// holds.
	Stat() (fs.FileInfo, error)
}
