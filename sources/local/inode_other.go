//go:build !unix

package local

import "io/fs"

// inode is 0 where the platform offers none through fs.FileInfo; the ETag
// then rests on size and mtime alone.
func inode(fi fs.FileInfo) uint64 { return 0 }
