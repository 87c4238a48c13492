package sourcetest

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"usagedrop/sources"
)

// Dir is a Store over a directory on this machine, for backends that serve
// one: sources/local, and SFTP servers started by tests.
type Dir struct {
	// Root is the directory the source sees as its root.
	Root string
	// Chown makes what Put creates belong to UID:GID, for a server that
	// runs as that user and must be able to rename it.
	Chown    bool
	UID, GID int
	// Deniable says the source reads as a user whom a mode-0 file keeps
	// out (not root).
	Deniable bool
	// New returns a source over Root.
	New func(t *testing.T, owner string, lease time.Duration) sources.Source
}

var (
	_ Store   = (*Dir)(nil)
	_ Special = (*Dir)(nil)
)

// Source returns d.New(t, owner, lease).
func (d *Dir) Source(t *testing.T, owner string, lease time.Duration) sources.Source {
	return d.New(t, owner, lease)
}

func (d *Dir) path(key string) string { return filepath.Join(d.Root, filepath.FromSlash(key)) }

// Put writes the file in place, as an editor saving over it would.
func (d *Dir) Put(t *testing.T, key string, body []byte) {
	t.Helper()
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if !d.Chown {
		return
	}
	for q := p; q != d.Root && len(q) > len(d.Root); q = filepath.Dir(q) {
		if err := os.Lchown(q, d.UID, d.GID); err != nil {
			t.Fatal(err)
		}
	}
}

// Mkfifo makes a FIFO at key.
func (d *Dir) Mkfifo(t *testing.T, key string) {
	t.Helper()
	mkfifo(t, d.path(key))
	d.chown(t, d.path(key))
}

// Symlink makes key a symbolic link to target.
func (d *Dir) Symlink(t *testing.T, key, target string) {
	t.Helper()
	if err := os.Symlink(target, d.path(key)); err != nil {
		t.Fatal(err)
	}
	d.chown(t, d.path(key))
}

// Remove removes the entry at key.
func (d *Dir) Remove(t *testing.T, key string) {
	t.Helper()
	if err := os.Remove(d.path(key)); err != nil {
		t.Fatal(err)
	}
}

// Outside makes a folder beside Root, with one file in it.
func (d *Dir) Outside(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(filepath.Dir(d.Root), "outside-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "secret.csv"), []byte("outside bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.chown(t, dir)
	d.chown(t, filepath.Join(dir, "secret.csv"))
	return dir
}

// Holds reports true: a file system takes any bytes as a name.
func (d *Dir) Holds(name string) bool { return true }

func (d *Dir) chown(t *testing.T, p string) {
	if d.Chown {
		if err := os.Lchown(p, d.UID, d.GID); err != nil {
			t.Fatal(err)
		}
	}
}

// Get reads the file at key.
func (d *Dir) Get(t *testing.T, key string) ([]byte, error) { return os.ReadFile(d.path(key)) }

// Keys walks Root.
func (d *Dir) Keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(d.Root, p)
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Deny makes the file mode 0 when the source reads as a user it stops.
func (d *Dir) Deny(t *testing.T, key string) bool {
	if !d.Deniable {
		return false
	}
	if err := os.Chmod(d.path(key), 0); err != nil {
		t.Fatal(err)
	}
	return true
}

// ClaimOnly lists src, expects exactly one waiting object, claims it and
// returns the claimed object; any other outcome fails the test.
func ClaimOnly(t *testing.T, ctx context.Context, src sources.Source) sources.Object {
	t.Helper()
	objs, err := src.List(ctx)
	if err != nil || len(objs) != 1 {
		t.Fatalf("List = %+v, %v; want one object", objs, err)
	}
	c, err := src.Claim(ctx, objs[0])
	if err != nil {
		t.Fatalf("Claim %s: %v", objs[0].Key, err)
	}
	return c
}
