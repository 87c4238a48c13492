package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"usagedrop/sources"
	"usagedrop/sources/sourcetest"
)

func newStore(t *testing.T) sourcetest.Store {
	d := &sourcetest.Dir{Root: t.TempDir(), Deniable: os.Geteuid() != 0}
	d.New = func(t *testing.T, owner string, lease time.Duration) sources.Source {
		src := New("local-test", d.Root)
		src.Owner, src.Lease = owner, lease
		return src
	}
	return d
}

func TestConformance(t *testing.T) { sourcetest.Run(t, newStore) }

func TestKeysOutsideDirRefused(t *testing.T) {
	dir := t.TempDir()
	src := New("l", filepath.Join(dir, "drop"))
	os.WriteFile(filepath.Join(dir, "outside.csv"), []byte("x"), 0o644)
	ctx := context.Background()
	for _, key := range []string{"../outside.csv", "/etc/passwd", "", "a/../../outside.csv"} {
		if _, err := src.Open(ctx, key); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q): got %v, want fs.ErrInvalid", key, err)
		}
		if _, err := src.Finish(ctx, key, sources.Outcome{}); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Finish(%q): got %v, want fs.ErrInvalid", key, err)
		}
		if _, err := src.Claim(ctx, sources.Object{Key: key}); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Claim(%q): got %v, want fs.ErrInvalid", key, err)
		}
	}
}

func TestFinishToConfiguredDirs(t *testing.T) {
	root := t.TempDir()
	src := New("l", filepath.Join(root, "drop"))
	src.ImportedDir = filepath.Join(root, "archive", "ok")
	os.MkdirAll(src.Dir, 0o755)
	os.WriteFile(filepath.Join(src.Dir, "a.csv"), []byte("a"), 0o644)
	ctx := context.Background()
	c := sourcetest.ClaimOnly(t, ctx, src)
	key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true})
	if want := filepath.Join(root, "archive", "ok", "a.csv"); err != nil || key != want {
		t.Fatalf("Finish = %q, %v; want %q", key, err, want)
	}
	if b, err := os.ReadFile(key); err != nil || string(b) != "a" {
		t.Errorf("archived file = %q, %v", b, err)
	}
}

func TestClaimKeepsEarlierDropOfSameName(t *testing.T) {
	dir := t.TempDir()
	src := New("l", dir)
	ctx := context.Background()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("first"), 0o644)
	objs, _ := src.List(ctx)
	if _, err := src.Claim(ctx, objs[0]); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("second"), 0o644)
	objs, _ = src.List(ctx)
	if _, err := src.Claim(ctx, objs[0]); !errors.Is(err, sources.ErrClaimed) {
		t.Fatalf("Claim while an earlier a.csv is processed: got %v, want ErrClaimed", err)
	}
	for name, want := range map[string]string{"a.csv": "second", "processing/" + src.Owner + "/a.csv": "first"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
}

func TestCollisionName(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	taken := map[string]bool{"march-20260301T101500Z.xlsx": true}
	tests := []struct{ name, taken, want string }{
		{"march.xlsx", "", "march-20260301T101500Z.xlsx"},
		{"march.xlsx", "march-20260301T101500Z.xlsx", "march-20260301T101500Z-2.xlsx"},
		{"README", "", "README-20260301T101500Z"},
		{".env", "", ".env-20260301T101500Z"},
	}
	for _, tt := range tests {
		got := sources.CollisionName(tt.name, now, func(n string) bool { return !(n == tt.taken && taken[n]) })
		if got != tt.want {
			t.Errorf("CollisionName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestDropFolderMadeAgain: a drop folder removed and made again is
// listed anew, and a missing one is an error, never an empty listing.
func TestDropFolderMadeAgain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "drop")
	os.MkdirAll(dir, 0o755)
	src := New("l", dir)
	ctx := context.Background()
	if _, err := src.List(ctx); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	if objs, err := src.List(ctx); err == nil {
		t.Errorf("List of a removed drop folder = %v, no error", objs)
	}
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("a"), 0o644)
	if objs, err := src.List(ctx); err != nil || len(objs) != 1 {
		t.Errorf("List of the drop folder made again = %v, %v; want a.csv", objs, err)
	}
}
