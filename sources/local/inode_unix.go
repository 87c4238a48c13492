//go:build unix

package local

import (
	"io/fs"
	"os"
	"syscall"
)

// openFlags make Open refuse to follow a final symlink and never block on
// a FIFO or a device: what is opened is checked to be a regular file
// before a byte is read.
const openFlags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// inode identifies the file behind fi, so that a file replaced by rename
// gets a new ETag even with the same size and mtime.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
