//go:build unix

package local

import (
	"io/fs"
	"syscall"
)

// inode identifies the file behind fi, so that a file replaced by rename
// gets a new ETag even with the same size and mtime.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
