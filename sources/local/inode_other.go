//go:build !unix

package local

import (
	"io/fs"
	"os"
)

// openFlags: Windows opens neither FIFOs nor symlinks the Unix way; Open
// still checks that it got a regular file.
const openFlags = os.O_RDONLY

// inode is 0 where the platform offers none through fs.FileInfo; the ETag
// then rests on size and mtime alone.
func inode(fi fs.FileInfo) uint64 { return 0 }
