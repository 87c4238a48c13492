//go:build unix

package local

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"usagedrop/sources"
	"usagedrop/sources/sourcetest"
)

// TestOpenNeverBlocks opens a FIFO through the file system the protocol
// uses, as a swap between its look and its open would: the open returns
// at once and the handle says it is no regular file.
func TestOpenNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.csv"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := New("l", dir)
	f, err := src.open()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		file, err := f.FS.Open(context.Background(), "pipe.csv")
		if err == nil {
			fi, serr := file.Stat()
			if serr == nil && fi.Mode().IsRegular() {
				t.Errorf("a FIFO opened as a regular file")
			}
			file.Close()
		}
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}
}

// TestLinksCannotLeadOutside: even when the protocol's own checks are
// raced (a folder swapped for a link after it was looked at), the file
// system under it resolves every path inside the drop folder.
func TestLinksCannotLeadOutside(t *testing.T) {
	root := t.TempDir()
	dir, outside := filepath.Join(root, "drop"), filepath.Join(root, "outside")
	os.MkdirAll(filepath.Join(dir, "processing", "a"), 0o755)
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(dir, "processing", "a", "x.csv"), []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "imported"))
	src := New("l", dir)
	f, err := src.open()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.FS.Link(ctx, "processing/a/x.csv", "imported/x.csv"); err == nil {
		t.Error("Link through a link to outside succeeded")
	}
	if err := f.FS.Rename(ctx, "processing/a/x.csv", "imported/x.csv"); err == nil {
		t.Error("Rename through a link to outside succeeded")
	}
	if err := f.FS.Create(ctx, "imported/r.txt", []byte("r")); err == nil {
		t.Error("Create through a link to outside succeeded")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("outside now holds %v", entries)
	}
}

// TestFinishAfterCrashBetweenLinkAndRemove: the file was linked into
// imported/ (its reports already there) and the daemon died before its
// old name was removed. The retry completes the move; no second copy.
func TestFinishAfterCrashBetweenLinkAndRemove(t *testing.T) {
	dir := t.TempDir()
	src := New("l", dir)
	ctx := context.Background()
	os.WriteFile(filepath.Join(dir, "x.csv"), []byte("x"), 0o644)
	c := sourcetest.ClaimOnly(t, ctx, src)
	os.MkdirAll(filepath.Join(dir, "imported"), 0o755)
	if err := os.Link(filepath.Join(dir, c.Key), filepath.Join(dir, "imported", "x.csv")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "imported", "x.csv.status.txt"), []byte("imported"), 0o644)
	rep := []sources.Report{{Suffix: ".status.txt", Body: []byte("imported")}}
	key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true, Reports: rep})
	if err != nil || key != "imported/x.csv" {
		t.Fatalf("Finish = %q, %v; want imported/x.csv", key, err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "imported"))
	if len(entries) != 2 {
		t.Errorf("imported/ holds %d entries, want x.csv and its report", len(entries))
	}
	if _, err := os.Lstat(filepath.Join(dir, c.Key)); err == nil {
		t.Errorf("%s still there", c.Key)
	}
}

// TestSkippedLoggedOnce: a FIFO in the drop folder is logged at its first
// listing, not at every one.
func TestSkippedLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	syscall.Mkfifo(filepath.Join(dir, "pipe.csv"), 0o644)
	var logs bytes.Buffer
	src := New("l", dir)
	src.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	for range 5 {
		if objs, err := src.List(context.Background()); err != nil || len(objs) != 0 {
			t.Fatalf("List = %v, %v", objs, err)
		}
	}
	if n := strings.Count(logs.String(), "pipe.csv"); n != 1 {
		t.Errorf("logged %d times:\n%s", n, logs.String())
	}
}

// TestClaimReplacesNonFileInProcessing: a FIFO someone put at our claim
// name is not an earlier drop; the claim replaces the entry.
func TestClaimReplacesNonFileInProcessing(t *testing.T) {
	dir := t.TempDir()
	src := New("l", dir)
	src.Owner = "a"
	os.MkdirAll(filepath.Join(dir, "processing", "a"), 0o755)
	syscall.Mkfifo(filepath.Join(dir, "processing", "a", "x.csv"), 0o644)
	os.WriteFile(filepath.Join(dir, "x.csv"), []byte("x"), 0o644)
	ctx := context.Background()
	c := sourcetest.ClaimOnly(t, ctx, src)
	rc, err := src.Open(ctx, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil || b.String() != "x" {
		t.Errorf("read %q, %v", b.String(), err)
	}
}

// TestDropFolderItselfALink: the drop folder the operator configured may
// be a link; only the daemon's folders inside it must be real.
func TestDropFolderItselfALink(t *testing.T) {
	root := t.TempDir()
	real, link := filepath.Join(root, "real"), filepath.Join(root, "drop")
	os.MkdirAll(real, 0o755)
	os.Symlink(real, link)
	os.WriteFile(filepath.Join(real, "a.csv"), []byte("a"), 0o644)
	src := New("l", link)
	ctx := context.Background()
	c := sourcetest.ClaimOnly(t, ctx, src)
	if key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true}); err != nil || key != "imported/a.csv" {
		t.Fatalf("Finish = %q, %v", key, err)
	}
	if b, err := os.ReadFile(filepath.Join(real, "imported", "a.csv")); err != nil || string(b) != "a" {
		t.Errorf("imported/a.csv = %q, %v", b, err)
	}
}

// noLinks is the file system of a store without hard links (or one where
// protected_hardlinks refuses to link a file another user owns).
type noLinks struct{ *rootFS }

func (noLinks) Link(context.Context, string, string) error { return syscall.EPERM }

// TestFinishWithoutHardLinks: where files cannot be linked, Finish checks
// and renames, and still never writes over a report-like drop.
func TestFinishWithoutHardLinks(t *testing.T) {
	dir := t.TempDir()
	src := New("l", dir)
	f, err := src.open()
	if err != nil {
		t.Fatal(err)
	}
	f.FS = noLinks{src.fs}
	ctx := context.Background()
	rep := []sources.Report{{Suffix: ".status.txt", Body: []byte("report")}}
	var keys []string
	for _, name := range []string{"victim.csv.status.txt", "victim.csv"} {
		os.WriteFile(filepath.Join(dir, name), []byte("bytes of "+name), 0o644)
		c := sourcetest.ClaimOnly(t, ctx, src)
		key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true, Reports: rep})
		if err != nil {
			t.Fatalf("Finish %s: %v", name, err)
		}
		keys = append(keys, key)
	}
	if keys[0] != "imported/victim.csv.status.txt" || keys[1] == "imported/victim.csv" {
		t.Errorf("finished as %q", keys)
	}
	for i, name := range []string{"victim.csv.status.txt", "victim.csv"} {
		if b, err := os.ReadFile(filepath.Join(dir, keys[i])); err != nil || string(b) != "bytes of "+name {
			t.Errorf("%s = %q, %v", keys[i], b, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "imported"))
	if len(entries) != 4 {
		t.Errorf("imported/ holds %d entries, want 2 drops and 2 reports", len(entries))
	}
}
