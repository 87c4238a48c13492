//go:build unix

package local

import (
	"io/fs"
	"os"
	"syscall"
)

// openFlags make Open never block on a FIFO or a device, and refuse a
// final symlink. os.Root still resolves a link whose target stays inside
// the root; the protocol then finds that the opened file is not the one
// it looked at (the ETag holds the inode) and answers ErrChanged before a
// byte is read.
const openFlags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// inode identifies the file behind fi, so that a file replaced by rename
// gets a new ETag even with the same size and mtime.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
