package folder

import (
	"errors"
	"io/fs"
	"testing"
)

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"march.csv", true},
		{"processing/vm1/march.csv", true},
		{"bad\xff\xfe.csv", true},
		{"two\nlines.csv", true},
		{"-rf", true},
		{"..hidden", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../outside.csv", false},
		{"a/../../outside.csv", false},
		{"/etc/passwd", false},
		{"a//b", false},
		{"a/", false},
		{"nul\x00.csv", false},
	}
	for _, tt := range tests {
		err := CheckKey(tt.key)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, fs.ErrInvalid)) {
			t.Errorf("CheckKey(%q) = %v, want ok=%t", tt.key, err, tt.ok)
		}
	}
}

func TestLeaseOnly(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"10-aaa-7", "10-bbb-7", true},  // local: the lease moved the mtime
		{"10-aaa-7", "10-aaa-8", false}, // another inode: replaced
		{"10-aaa-7", "11-aaa-7", false}, // rewritten
		{"10-aaa", "10-bbb", true},      // SFTP
		{"10-aaa", "11-aaa", false},
		{"10-aaa", "10-aaa-7", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := leaseOnly(tt.a, tt.b); got != tt.want {
			t.Errorf("leaseOnly(%q, %q) = %t, want %t", tt.a, tt.b, got, tt.want)
		}
	}
}
