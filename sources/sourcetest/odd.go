package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"usagedrop/sources"
)

// Special is implemented by stores on a file system the test can reach,
// to put there what users can put in a folder besides files.
type Special interface {
	// Mkfifo makes a FIFO at key.
	Mkfifo(t *testing.T, key string)
	// Symlink makes key a symbolic link to target, a path on the machine.
	Symlink(t *testing.T, key, target string)
	// Remove removes the entry at key (not what a link points to).
	Remove(t *testing.T, key string)
	// Outside returns a folder outside the store that holds one file,
	// secret.csv, with the bytes "outside bytes". The suite checks that
	// nothing in it changes whatever links lead there.
	Outside(t *testing.T) string
}

// oddNames are names users and programs really give files, and names a
// hostile user could choose, each a test case.
var oddNames = []struct{ why, name string }{
	{"255 bytes", strings.Repeat("a", 251) + ".csv"},
	{"240 bytes, non-ASCII", strings.Repeat("é", 118) + ".csv"},
	{"not UTF-8", "bad\xff\xfe name.csv"},
	{"newline", "two\nlines.csv"},
	{"escape", "esc\x1b[31mred.csv"},
	{"leading dash", "-rf.csv"},
	{"spaces", "  spaced  out .csv"},
	{"no extension", "README"},
}

// holds reports whether st can keep name: any name on a file system (a
// store implementing Holds), else UTF-8 without control characters, what
// S3 and its XML listings carry.
func holds(st Store, name string) bool {
	if h, ok := st.(interface{ Holds(string) bool }); ok {
		return h.Holds(name)
	}
	return utf8.ValidString(name) && !strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// testOddNames takes every odd name from drop to imported/ with two
// reports; report names stay within the file system's limit and the file
// keeps its own name.
func testOddNames(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	reports := []sources.Report{
		{Suffix: ".status.txt", Body: []byte("imported")},
		{Suffix: ".errors.csv", Body: []byte("line,column,value,reason\n")},
	}
	var want []string
	for _, tt := range oddNames {
		if !holds(st, tt.name) {
			continue
		}
		body := []byte("records of " + tt.why)
		st.Put(t, tt.name, body)
		c, err := src.Claim(ctx, listOne(t, ctx, src, tt.name))
		if err != nil {
			t.Errorf("%s: Claim: %v", tt.why, err)
			continue
		}
		if c.Key == "" || c.Name != tt.name {
			t.Errorf("%s: Claim returned key %q, name %q", tt.why, c.Key, c.Name)
			continue
		}
		if got := mustRead(t, ctx, src, c.Key); !bytes.Equal(got, body) {
			t.Errorf("%s: Open = %q, want %q", tt.why, got, body)
		}
		key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true, Reports: reports})
		if err != nil {
			t.Errorf("%s: Finish: %v", tt.why, err)
			continue
		}
		if key != "imported/"+tt.name {
			t.Errorf("%s: Finish = %q, want the file to keep its name", tt.why, key)
		}
		if got := mustGet(t, st, key); !bytes.Equal(got, body) {
			t.Errorf("%s: %q holds %q", tt.why, key, got)
		}
		want = append(want, key)
		for _, r := range reports {
			rk := "imported/" + sources.ReportName(tt.name, r.Suffix)
			if got, err := st.Get(t, rk); err != nil || !bytes.Equal(got, r.Body) {
				t.Errorf("%s: report %q = %q, %v", tt.why, rk, got, err)
			}
			want = append(want, rk)
		}
	}
	keys := st.Keys(t)
	for _, k := range keys {
		if len(path.Base(k)) > sources.MaxName {
			t.Errorf("%q: name of %d bytes", k, len(path.Base(k)))
		}
	}
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("store holds\n%q\nwant\n%q", keys, want)
	}
}

// testReportLikeNames drops a file named like another's report before
// that file, and the other way round: no drop's bytes or report is ever
// overwritten, and each drop's reports sit beside it.
func testReportLikeNames(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	finish := func(name, body string) string {
		t.Helper()
		st.Put(t, name, []byte(body))
		c, err := src.Claim(ctx, listOne(t, ctx, src, name))
		if err != nil {
			t.Fatalf("Claim %s: %v", name, err)
		}
		rep := []sources.Report{{Suffix: ".status.txt", Body: []byte("report of " + body)}}
		key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true, Reports: rep})
		if err != nil {
			t.Fatalf("Finish %s: %v", name, err)
		}
		return key
	}
	drops := []struct{ name, body string }{
		{"victim.csv.status.txt", "the first drop's own bytes"},
		{"victim.csv", "the second drop"},
		{"other.csv", "a third drop"},
		{"other.csv.status.txt", "a fourth drop named like the third's report"},
	}
	wantBody := map[string]string{}
	for _, d := range drops {
		key := finish(d.name, d.body)
		report := "imported/" + sources.ReportName(path.Base(key), ".status.txt")
		for k, body := range map[string]string{key: d.body, report: "report of " + d.body} {
			if _, taken := wantBody[k]; taken {
				t.Errorf("%s: finishing it wrote %q, which an earlier drop had taken", d.name, k)
				continue
			}
			wantBody[k] = body
		}
	}
	for k, want := range wantBody {
		if got, err := st.Get(t, k); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", k, got, err, want)
		}
	}
	if keys := st.Keys(t); len(keys) != len(wantBody) {
		t.Errorf("store holds %q, want the %d drops and reports %q", keys, len(wantBody), wantBody)
	}
}

// special returns st as a Special store, or skips.
func special(t *testing.T, st Store) Special {
	sp, ok := st.(Special)
	if !ok {
		t.Skip("store has no links or FIFOs")
	}
	return sp
}

// assertOutsideUntouched checks that dir still holds only secret.csv,
// with its bytes.
func assertOutsideUntouched(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "secret.csv" {
		t.Errorf("folder outside the store now holds %q, want only secret.csv", names)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "secret.csv")); err != nil || string(b) != "outside bytes" {
		t.Errorf("outside secret.csv = %q, %v", b, err)
	}
}

// testSymlinkedFolders pre-makes each of the daemon's folders as a link
// to a folder outside: the source stops with ErrFatal naming the folder,
// writes nothing there, and works again once the link is gone.
func testSymlinkedFolders(t *testing.T, st Store) {
	sp := special(t, st)
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	outside := sp.Outside(t)
	st.Put(t, "authorized_keys", []byte("a dropped file"))
	for _, dir := range []string{"processing", "imported", "failed"} {
		sp.Symlink(t, dir, outside)
		_, err := src.List(ctx)
		if !errors.Is(err, sources.ErrFatal) || !strings.Contains(err.Error(), dir) {
			t.Errorf("List with %s/ a link: got %v, want ErrFatal naming it", dir, err)
		}
		if _, err := src.Claim(ctx, sources.Object{Key: "authorized_keys", Name: "authorized_keys"}); err == nil {
			t.Errorf("Claim with %s/ a link succeeded", dir)
		}
		sp.Remove(t, dir)
	}
	// processing/OWNER/ as a link, under a real processing/.
	st.Put(t, "processing/keep", nil)
	sp.Remove(t, "processing/keep")
	sp.Symlink(t, "processing/a", outside)
	if _, err := src.List(ctx); !errors.Is(err, sources.ErrFatal) || !strings.Contains(err.Error(), "processing/a") {
		t.Errorf("List with processing/a/ a link: got %v, want ErrFatal naming it", err)
	}
	sp.Remove(t, "processing/a")

	// A link made after the claim stops Finish before anything moves.
	c, err := src.Claim(ctx, listOne(t, ctx, src, "authorized_keys"))
	if err != nil {
		t.Fatalf("Claim once the links are gone: %v", err)
	}
	sp.Symlink(t, "failed", outside)
	rep := []sources.Report{{Suffix: ".status.txt", Body: []byte("rejected")}}
	if _, err := src.Finish(ctx, c.Key, sources.Outcome{Reports: rep}); !errors.Is(err, sources.ErrFatal) {
		t.Errorf("Finish into a linked failed/: got %v, want ErrFatal", err)
	}
	sp.Remove(t, "failed")
	key, err := src.Finish(ctx, c.Key, sources.Outcome{Reports: rep})
	if err != nil || key != "failed/authorized_keys" {
		t.Fatalf("Finish once the link is gone = %q, %v", key, err)
	}
	if got := mustGet(t, st, key); string(got) != "a dropped file" {
		t.Errorf("%s = %q", key, got)
	}
	assertOutsideUntouched(t, outside)
}

// testNotFiles: FIFOs and links in the drop folder are never listed or
// taken, and links are never followed.
func testNotFiles(t *testing.T, st Store) {
	sp := special(t, st)
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	outside := sp.Outside(t)
	st.Put(t, "real.csv", []byte("a real file"))
	sp.Mkfifo(t, "pipe.csv")
	sp.Symlink(t, "link.csv", filepath.Join(outside, "secret.csv"))
	sp.Symlink(t, "dirlink", outside)
	sp.Symlink(t, "dangling.csv", filepath.Join(outside, "missing.csv"))
	for range 2 { // the second listing must not differ, nor log again
		objs, err := src.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(objs) != 1 || objs[0].Key != "real.csv" {
			t.Errorf("List = %+v, want only real.csv", objs)
		}
	}
	for _, name := range []string{"pipe.csv", "link.csv", "dirlink"} {
		done := make(chan error, 1)
		go func() {
			_, err := src.Claim(ctx, sources.Object{Key: name, Name: name, ETag: "x"})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("Claim of %s succeeded", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Claim of %s blocked", name)
		}
		if _, err := readWithin(ctx, src, name); err == nil {
			t.Errorf("Open of %s succeeded", name)
		}
	}
	c, err := src.Claim(ctx, listOne(t, ctx, src, "real.csv"))
	if err != nil {
		t.Fatalf("Claim real.csv: %v", err)
	}
	if _, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true}); err != nil {
		t.Fatalf("Finish real.csv: %v", err)
	}
	assertOutsideUntouched(t, outside)
}

// readWithin reads key, failing the test if Open or the read blocks.
func readWithin(ctx context.Context, src sources.Source, key string) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := readAll(ctx, src, key)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(10 * time.Second):
		return nil, errors.New("Open blocked for 10s")
	}
}

// testSwappedAfterClaim swaps the claimed file for a FIFO, then for a link
// to a file outside, right after the claim: Open answers ErrChanged at
// once (never blocks, never reads outside), and Finish still sets the
// entry aside in failed/.
func testSwappedAfterClaim(t *testing.T, st Store) {
	sp := special(t, st)
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	outside := sp.Outside(t)
	swaps := []struct {
		name string
		swap func(key string)
	}{
		{"fifo.csv", func(key string) { sp.Mkfifo(t, key) }},
		{"link.csv", func(key string) { sp.Symlink(t, key, filepath.Join(outside, "secret.csv")) }},
	}
	for _, s := range swaps {
		st.Put(t, s.name, []byte("claimed bytes"))
		c, err := src.Claim(ctx, listOne(t, ctx, src, s.name))
		if err != nil {
			t.Fatalf("Claim %s: %v", s.name, err)
		}
		sp.Remove(t, c.Key)
		s.swap(c.Key)
		b, err := readWithin(ctx, src, c.Key)
		if !errors.Is(err, sources.ErrChanged) {
			t.Errorf("Open of %s swapped after claim: got %q, %v; want ErrChanged", s.name, b, err)
		}
		if again, err := src.Claim(ctx, c); err == nil || again.Key != "" {
			t.Errorf("re-Claim of %s swapped after claim: got %+v, %v; want an error, never an empty key", s.name, again, err)
		}
		key, err := src.Finish(ctx, c.Key, sources.Outcome{Reports: []sources.Report{{Suffix: ".status.txt", Body: []byte("changed")}}})
		if err != nil || key != "failed/"+s.name {
			t.Errorf("Finish of %s swapped after claim = %q, %v", s.name, key, err)
		}
	}
	assertOutsideUntouched(t, outside)
}

// testFilesNamedLikeFolders: files a user dropped under the names of the
// daemon's folders are drops like any other, not a reason to stop.
func testFilesNamedLikeFolders(t *testing.T, st Store) {
	special(t, st) // object stores cannot hold both "failed" and "failed/x"
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	for _, name := range []string{"imported", "failed"} {
		st.Put(t, name, []byte("a file named "+name))
		c, err := src.Claim(ctx, listOne(t, ctx, src, name))
		if err != nil {
			t.Fatalf("Claim %s: %v", name, err)
		}
		key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: name == "imported"})
		if err != nil || key != name+"/"+name {
			t.Fatalf("Finish %s = %q, %v", name, key, err)
		}
		if got := mustGet(t, st, key); string(got) != "a file named "+name {
			t.Errorf("%s = %q", key, got)
		}
	}
}

// testFinishRace has two instances finish two drops of one name at the
// same moment, again and again: both land, each under its own name with
// its own report beside it, and neither overwrites the other.
func testFinishRace(t *testing.T, st Store) {
	// Object stores keep a claimed object at its name, so two drops of
	// one name are never held at once there.
	special(t, st)
	ctx := testContext(t)
	a, b := st.Source(t, "a", time.Hour), st.Source(t, "b", time.Hour)
	want := map[string]string{}
	for i := range 10 {
		var claimed [2]sources.Object
		for j, src := range []sources.Source{a, b} {
			body := fmt.Sprintf("round %d drop %d", i, j)
			st.Put(t, "same.csv", []byte(body))
			c, err := src.Claim(ctx, listOne(t, ctx, src, "same.csv"))
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			claimed[j] = c
		}
		var keys [2]string
		var errs [2]error
		var wg sync.WaitGroup
		for j, src := range []sources.Source{a, b} {
			wg.Go(func() {
				rep := []sources.Report{{Suffix: ".status.txt", Body: []byte(fmt.Sprintf("report of round %d drop %d", i, j))}}
				keys[j], errs[j] = src.Finish(ctx, claimed[j].Key, sources.Outcome{Imported: true, Reports: rep})
			})
		}
		wg.Wait()
		for j := range 2 {
			if errs[j] != nil {
				t.Fatalf("round %d: Finish %d: %v", i, j, errs[j])
			}
			report := "imported/" + sources.ReportName(path.Base(keys[j]), ".status.txt")
			for k, body := range map[string]string{keys[j]: fmt.Sprintf("round %d drop %d", i, j),
				report: fmt.Sprintf("report of round %d drop %d", i, j)} {
				if _, taken := want[k]; taken {
					t.Fatalf("round %d: %q written twice", i, k)
				}
				want[k] = body
			}
		}
	}
	for k, body := range want {
		if got, err := st.Get(t, k); err != nil || string(got) != body {
			t.Errorf("%s = %q, %v; want %q", k, got, err, body)
		}
	}
	assertOnlyFinished(t, st)
}
