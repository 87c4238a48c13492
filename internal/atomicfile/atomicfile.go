// Package atomicfile writes files so that their final name only ever holds
// complete bytes, and the name itself survives a crash: a temp file beside
// the target, fsync, rename, then fsync of the directory. It is the one
// place the daemon does this; the spool, the reports and the local source
// all write through it.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write creates or replaces dst with what fill writes. On any error the
// temp file is removed and dst is left as it was. The temp file is created
// with O_EXCL in dst's directory under a dot-name, so listings skip it.
func Write(dst string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return SyncDir(dir)
}

// WriteBytes is Write for a body already in memory.
func WriteBytes(dst string, perm os.FileMode, body []byte) error {
	return Write(dst, perm, func(w io.Writer) error {
		_, err := w.Write(body)
		return err
	})
}

// SyncDir fsyncs each directory, so that renames and creations in them are
// on disk before the caller commits that they happened. File systems that
// cannot sync a directory (some network mounts) are not an error.
func SyncDir(dirs ...string) error {
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil && !errors.Is(err, os.ErrInvalid) && !isUnsupported(err) {
			return fmt.Errorf("sync %s: %w", d, err)
		}
	}
	return nil
}
