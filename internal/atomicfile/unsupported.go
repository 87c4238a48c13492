package atomicfile

import (
	"errors"
	"syscall"
)

// isUnsupported reports the errors a file system gives when it cannot
// fsync a directory.
func isUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP)
}
