//go:build !unix

package sourcetest

import "testing"

func mkfifo(t *testing.T, p string) {
	t.Skip("no FIFOs on this platform")
}
