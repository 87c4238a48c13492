// Package sourcetest is the conformance suite every sources.Source backend
// runs, so that local folders, S3 prefixes and SFTP directories behave the
// same for the pipeline.
//
// A backend's test calls Run with a Harness that makes an empty store per
// test and a way to touch it out of band, as a user or another system
// would: drop a file, replace it, read what is there.
package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"usagedrop/sources"
)

// Harness returns an empty store for one test. Run calls it once per
// subtest, possibly from parallel subtests.
type Harness func(t *testing.T) Store

// Store is the backing store of a source, seen from outside the source.
// Keys are '/'-separated and relative to the source root.
type Store interface {
	// Source returns a source over this store whose claims are made as
	// owner and last lease.
	Source(t *testing.T, owner string, lease time.Duration) sources.Source
	// Put writes body at key, creating folders and replacing what is
	// there, as a user dropping a file would.
	Put(t *testing.T, key string, body []byte)
	// Get returns the bytes at key, or an error satisfying
	// errors.Is(err, fs.ErrNotExist).
	Get(t *testing.T, key string) ([]byte, error)
	// Keys lists every object under the root, recursively.
	Keys(t *testing.T) []string
	// Deny makes key unreadable to the source. It returns false when the
	// store has no such notion (or the test runs as a user it cannot
	// deny), and the suite then skips the permission test.
	Deny(t *testing.T, key string) bool
}

// Names used by the suite: plain, with spaces, and non-ASCII in NFC.
var names = []string{"usage.csv", "March 2026 – usage.xlsx", "données é.csv", "売上.csv"}

// Run runs the conformance suite against the stores h makes.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		run  func(t *testing.T, st Store)
	}{
		{"ListIgnores", testListIgnores},
		{"ETagChanges", testETagChanges},
		{"Lifecycle", testLifecycle},
		{"ClaimRace", testClaimRace},
		{"ClaimChanged", testClaimChanged},
		{"ClaimRefresh", testClaimRefresh},
		{"ReclaimWithListedETag", testReclaimWithListedETag},
		{"StaleTakeover", testStaleTakeover},
		{"FinishFailedCollision", testFinishFailedCollision},
		{"TwoInstances", testTwoInstances},
		{"Missing", testMissing},
		{"PermissionDenied", testPermissionDenied},
		{"ReplacedWhileRead", testReplacedWhileRead},
		{"OddNames", testOddNames},
		{"ReportLikeNames", testReportLikeNames},
		{"SymlinkedFolders", testSymlinkedFolders},
		{"NotFiles", testNotFiles},
		{"SwappedAfterClaim", testSwappedAfterClaim},
		{"FilesNamedLikeFolders", testFilesNamedLikeFolders},
		{"FinishRace", testFinishRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, h(t))
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testListIgnores(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	for _, n := range names {
		st.Put(t, n, []byte("body of "+n))
	}
	ignored := []string{".hidden.csv", "~$march.xlsx", ".~lock.march.xlsx#", "up.csv.part",
		"x.tmp", "y.csv.filepart", "sub/inner.csv", "processing/other/claimed.csv",
		"imported/old.csv", "failed/bad.csv"}
	for _, n := range ignored {
		st.Put(t, n, []byte("ignored"))
	}
	objs, err := src.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Key)
		if o.Name != o.Key || o.Claimed || o.Source != src.Name() || o.ETag == "" {
			t.Errorf("List: %+v: want Key == Name, not Claimed, Source %q, an ETag", o, src.Name())
		}
		if want := int64(len("body of " + o.Name)); o.Size != want {
			t.Errorf("List: %s: size %d, want %d", o.Key, o.Size, want)
		}
		if time.Since(o.ModTime) > time.Hour || time.Until(o.ModTime) > time.Hour {
			t.Errorf("List: %s: mod time %v is not about now", o.Key, o.ModTime)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
}

func testETagChanges(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	st.Put(t, "a.csv", []byte("one"))
	first := listOne(t, ctx, src, "a.csv")
	if again := listOne(t, ctx, src, "a.csv"); again.ETag != first.ETag {
		t.Errorf("unchanged file: ETag %q then %q", first.ETag, again.ETag)
	}
	st.Put(t, "a.csv", []byte("three"))
	if second := listOne(t, ctx, src, "a.csv"); second.ETag == first.ETag {
		t.Errorf("rewritten file kept ETag %q", first.ETag)
	}
}

// listOne lists src and returns the object named name, failing if absent.
func listOne(t *testing.T, ctx context.Context, src sources.Source, name string) sources.Object {
	t.Helper()
	objs, err := src.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, o := range objs {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("List: %q not in %+v", name, objs)
	return sources.Object{}
}

// listed reports whether a listing of src holds name.
func listed(t *testing.T, ctx context.Context, src sources.Source, name string) bool {
	t.Helper()
	objs, err := src.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return slices.ContainsFunc(objs, func(o sources.Object) bool { return o.Name == name })
}

func readAll(ctx context.Context, src sources.Source, key string) ([]byte, error) {
	rc, err := src.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func mustRead(t *testing.T, ctx context.Context, src sources.Source, key string) []byte {
	t.Helper()
	b, err := readAll(ctx, src, key)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func mustGet(t *testing.T, st Store, key string) []byte {
	t.Helper()
	b, err := st.Get(t, key)
	if err != nil {
		t.Fatalf("store: get %s: %v", key, err)
	}
	return b
}

// testLifecycle takes every kind of name from drop to imported/.
func testLifecycle(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	for _, n := range names {
		body := []byte("records of " + n + "\n")
		st.Put(t, n, body)
		o := listOne(t, ctx, src, n)
		c, err := src.Claim(ctx, o)
		if err != nil {
			t.Fatalf("Claim %s: %v", n, err)
		}
		if c.Name != n {
			t.Errorf("Claim %s: name became %q", n, c.Name)
		}
		if got := mustRead(t, ctx, src, c.Key); !bytes.Equal(got, body) {
			t.Errorf("Open %s: got %q, want %q", c.Key, got, body)
		}
		if listed(t, ctx, src, n) {
			t.Errorf("List after Claim still offers %s", n)
		}
		reports := []sources.Report{
			{Suffix: ".status.txt", Body: []byte("imported " + n)},
			{Suffix: ".errors.csv", Body: []byte("line,column,value,reason\n")},
		}
		key, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true, Reports: reports})
		if err != nil {
			t.Fatalf("Finish %s: %v", c.Key, err)
		}
		if want := "imported/" + n; key != want {
			t.Errorf("Finish %s = %q, want %q", c.Key, key, want)
		}
		if got := mustGet(t, st, "imported/"+n); !bytes.Equal(got, body) {
			t.Errorf("imported/%s holds %q, want %q", n, got, body)
		}
		for _, r := range reports {
			if got := mustGet(t, st, "imported/"+n+r.Suffix); !bytes.Equal(got, r.Body) {
				t.Errorf("report %s%s holds %q, want %q", n, r.Suffix, got, r.Body)
			}
		}
		if _, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true}); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("second Finish %s: got %v, want fs.ErrNotExist", c.Key, err)
		}
	}
	assertOnlyFinished(t, st)
}

// assertOnlyFinished checks that nothing but finished files and their
// reports is left: no temp files, no copies in processing/.
func assertOnlyFinished(t *testing.T, st Store) {
	t.Helper()
	for _, k := range st.Keys(t) {
		if !strings.HasPrefix(k, "imported/") && !strings.HasPrefix(k, "failed/") {
			t.Errorf("left behind: %s", k)
		}
		if strings.HasPrefix(path.Base(k), ".") {
			t.Errorf("temp file left behind: %s", k)
		}
	}
}

// testClaimRace has two owners claim the same files at once: each file
// goes to exactly one of them.
func testClaimRace(t *testing.T, st Store) {
	ctx := testContext(t)
	a, b := st.Source(t, "a", time.Hour), st.Source(t, "b", time.Hour)
	const n = 8
	for i := range n {
		st.Put(t, fmt.Sprintf("race-%d.csv", i), []byte(fmt.Sprint("race ", i)))
	}
	for i := range n {
		name := fmt.Sprintf("race-%d.csv", i)
		oa, ob := listOne(t, ctx, a, name), listOne(t, ctx, b, name)
		var errs [2]error
		var wg sync.WaitGroup
		for j, c := range []struct {
			src sources.Source
			o   sources.Object
		}{{a, oa}, {b, ob}} {
			wg.Go(func() { _, errs[j] = c.src.Claim(ctx, c.o) })
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, sources.ErrClaimed):
				t.Errorf("%s: loser got %v, want ErrClaimed", name, err)
			}
		}
		if wins != 1 {
			t.Errorf("%s: %d owners won the claim (errors %v), want 1", name, wins, errs)
		}
	}
}

func testClaimChanged(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	st.Put(t, "c.csv", []byte("first"))
	old := listOne(t, ctx, src, "c.csv")
	st.Put(t, "c.csv", []byte("second, longer"))
	if _, err := src.Claim(ctx, old); !errors.Is(err, sources.ErrChanged) {
		t.Fatalf("Claim of a rewritten file: got %v, want ErrChanged", err)
	}
	cur := listOne(t, ctx, src, "c.csv")
	c, err := src.Claim(ctx, cur)
	if err != nil {
		t.Fatalf("Claim after relisting: %v", err)
	}
	if got := mustRead(t, ctx, src, c.Key); string(got) != "second, longer" {
		t.Errorf("Open %s = %q", c.Key, got)
	}
}

// testClaimRefresh: a second Claim by the owner restarts the lease, so
// another owner never sees the claim as stale while it is refreshed.
func testClaimRefresh(t *testing.T, st Store) {
	if testing.Short() {
		t.Skip("waits for leases")
	}
	ctx := testContext(t)
	const lease = 3 * time.Second
	a, b := st.Source(t, "a", lease), st.Source(t, "b", lease)
	st.Put(t, "r.csv", []byte("refresh"))
	c, err := a.Claim(ctx, listOne(t, ctx, a, "r.csv"))
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	for range 2 {
		time.Sleep(lease / 2)
		again, err := a.Claim(ctx, c)
		if err != nil {
			t.Fatalf("re-Claim by owner: %v", err)
		}
		if again.Key != c.Key || again.Name != c.Name {
			t.Errorf("re-Claim moved %s to %s", c.Key, again.Key)
		}
		c = again
	}
	if listed(t, ctx, b, "r.csv") {
		t.Errorf("refreshed claim offered to another owner as stale")
	}
	if got := mustRead(t, ctx, a, c.Key); string(got) != "refresh" {
		t.Errorf("Open %s = %q", c.Key, got)
	}
}

// testReclaimWithListedETag: an owner that crashed before recording what
// Claim returned retries with the ETag it listed; its own claim must still
// refresh, though the lease moved the mtime.
func testReclaimWithListedETag(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	st.Put(t, "crash.csv", []byte("claimed before the crash"))
	listed := listOne(t, ctx, src, "crash.csv")
	c, err := src.Claim(ctx, listed)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	retry := listed
	retry.Key = c.Key
	again, err := src.Claim(ctx, retry)
	if err != nil {
		t.Fatalf("re-Claim with the listed ETag: %v", err)
	}
	if again.Key != c.Key {
		t.Errorf("re-Claim moved %s to %s", c.Key, again.Key)
	}
	if got := mustRead(t, ctx, src, again.Key); string(got) != "claimed before the crash" {
		t.Errorf("Open %s = %q", again.Key, got)
	}
}

// testStaleTakeover: a claim whose lease ran out is offered by List and
// taken over by exactly one of two racing owners.
func testStaleTakeover(t *testing.T, st Store) {
	ctx := testContext(t)
	const lease = time.Second
	a, b, c := st.Source(t, "a", lease), st.Source(t, "b", lease), st.Source(t, "c", lease)
	st.Put(t, "s.csv", []byte("stale"))
	if _, err := a.Claim(ctx, listOne(t, ctx, a, "s.csv")); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if _, err := b.Claim(ctx, sources.Object{Key: "s.csv", Name: "s.csv"}); !errors.Is(err, sources.ErrClaimed) {
		t.Errorf("Claim of a held file by another owner: got %v, want ErrClaimed", err)
	}
	ob, oc := waitStale(t, ctx, b, "s.csv"), waitStale(t, ctx, c, "s.csv")
	var wg sync.WaitGroup
	var got [2]sources.Object
	var errs [2]error
	wg.Go(func() { got[0], errs[0] = b.Claim(ctx, ob) })
	wg.Go(func() { got[1], errs[1] = c.Claim(ctx, oc) })
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("both owners took over the stale claim")
		case !errors.Is(err, sources.ErrClaimed) && !errors.Is(err, sources.ErrChanged):
			t.Errorf("takeover loser got %v, want ErrClaimed", err)
		}
	}
	if winner < 0 {
		t.Fatalf("nobody took over the stale claim: %v", errs)
	}
	srcs := []sources.Source{b, c}
	if body := mustRead(t, ctx, srcs[winner], got[winner].Key); string(body) != "stale" {
		t.Errorf("Open after takeover = %q", body)
	}
	if _, err := srcs[winner].Finish(ctx, got[winner].Key, sources.Outcome{Imported: true}); err != nil {
		t.Errorf("Finish after takeover: %v", err)
	}
	if got := mustGet(t, st, "imported/s.csv"); string(got) != "stale" {
		t.Errorf("imported/s.csv = %q", got)
	}
}

// waitStale lists src until it offers name as a stale claim.
func waitStale(t *testing.T, ctx context.Context, src sources.Source, name string) sources.Object {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		objs, err := src.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, o := range objs {
			if o.Name == name {
				if !o.Claimed {
					t.Fatalf("List offers held %s as unclaimed: %+v", name, o)
				}
				return o
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("stale claim of %s never offered", name)
	return sources.Object{}
}

func testFinishFailedCollision(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	st.Put(t, "failed/dup.csv", []byte("earlier"))
	st.Put(t, "failed/dup.csv.status.txt", []byte("earlier report"))
	st.Put(t, "dup.csv", []byte("later"))
	c, err := src.Claim(ctx, listOne(t, ctx, src, "dup.csv"))
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	report := sources.Report{Suffix: ".status.txt", Body: []byte("rejected")}
	key, err := src.Finish(ctx, c.Key, sources.Outcome{Reports: []sources.Report{report}})
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if key == "failed/dup.csv" || !strings.HasPrefix(key, "failed/dup-") || path.Ext(key) != ".csv" {
		t.Errorf("Finish onto a taken name = %q, want failed/dup-TIME.csv", key)
	}
	for k, want := range map[string]string{
		"failed/dup.csv": "earlier", "failed/dup.csv.status.txt": "earlier report",
		key: "later", key + ".status.txt": "rejected",
	} {
		if got := mustGet(t, st, k); string(got) != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	assertOnlyFinished(t, st)
}

func testMissing(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	if _, err := src.Open(ctx, "nope.csv"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: got %v, want fs.ErrNotExist", err)
	}
	st.Put(t, "gone.csv", []byte("x"))
	o := listOne(t, ctx, src, "gone.csv")
	o.Key, o.Name = "gone-too.csv", "gone-too.csv"
	if _, err := src.Claim(ctx, o); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Claim of a missing file: got %v, want fs.ErrNotExist", err)
	}
	if _, err := src.Finish(ctx, "nope.csv", sources.Outcome{Imported: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Finish of a missing file: got %v, want fs.ErrNotExist", err)
	}
}

func testPermissionDenied(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	st.Put(t, "secret.csv", []byte("locked"))
	o := listOne(t, ctx, src, "secret.csv")
	if !st.Deny(t, "secret.csv") {
		t.Skip("store cannot deny access as this user")
	}
	c, err := src.Claim(ctx, o)
	if err == nil {
		_, err = readAll(ctx, src, c.Key)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Claim+Open of an unreadable file: got %v, want fs.ErrPermission", err)
	}
	found := false
	for _, k := range st.Keys(t) {
		found = found || path.Base(k) == "secret.csv"
	}
	if !found {
		t.Errorf("unreadable file lost: keys %q", st.Keys(t))
	}
}

// testReplacedWhileRead: a file replaced under a reader yields the original
// bytes or ErrChanged, never a mix; a later Open says ErrChanged.
func testReplacedWhileRead(t *testing.T, st Store) {
	ctx := testContext(t)
	src := st.Source(t, "a", time.Hour)
	orig := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	st.Put(t, "big.csv", orig)
	c, err := src.Claim(ctx, listOne(t, ctx, src, "big.csv"))
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	rc, err := src.Open(ctx, c.Key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	head := make([]byte, 1024)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatalf("read head: %v", err)
	}
	st.Put(t, c.Key, bytes.Repeat([]byte("replaced!"), 100))
	rest, err := io.ReadAll(rc)
	rc.Close()
	if err == nil && !bytes.Equal(append(head, rest...), orig) {
		t.Errorf("read across a replacement returned %d mixed bytes without ErrChanged", len(head)+len(rest))
	}
	if err != nil && !errors.Is(err, sources.ErrChanged) {
		t.Errorf("read across a replacement: got %v, want ErrChanged or the original bytes", err)
	}
	if _, err := readAll(ctx, src, c.Key); !errors.Is(err, sources.ErrChanged) {
		t.Errorf("Open after replacement: got %v, want ErrChanged", err)
	}
}

// testTwoInstances has two instances work one folder of many files at
// once; one dies holding some claims. Every file must end in imported/
// exactly once, the dead instance's files after its lease ran out.
func testTwoInstances(t *testing.T, st Store) {
	const files, abandon = 60, 5
	ctx := testContext(t)
	for i := range files {
		st.Put(t, fmt.Sprintf("f%03d.csv", i), []byte(fmt.Sprintf("file %d", i)))
	}
	var mu sync.Mutex
	finished := map[string]string{} // name -> instance
	work := func(owner string, claimLimit int) {
		src := st.Source(t, owner, time.Second)
		claims := 0
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			objs, err := src.List(ctx)
			if err != nil {
				t.Errorf("%s: List: %v", owner, err)
				return
			}
			mu.Lock()
			done := len(finished) == files
			mu.Unlock()
			if done {
				return
			}
			for _, o := range objs {
				c, err := src.Claim(ctx, o)
				if errors.Is(err, sources.ErrClaimed) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, sources.ErrChanged) {
					continue
				}
				if err != nil {
					t.Errorf("%s: Claim %s: %v", owner, o.Key, err)
					return
				}
				if claims++; claimLimit > 0 && claims > claimLimit {
					return // dies holding this claim and the ones before
				}
				if claimLimit > 0 {
					continue // claims without finishing until it dies
				}
				body, err := readAll(ctx, src, c.Key)
				if want := fmt.Sprintf("file %d", mustIndex(t, c.Name)); err != nil || string(body) != want {
					t.Errorf("%s: read %s = %q, %v; want %q", owner, c.Key, body, err, want)
				}
				if _, err := src.Finish(ctx, c.Key, sources.Outcome{Imported: true}); err != nil {
					t.Errorf("%s: Finish %s: %v", owner, c.Key, err)
					continue
				}
				mu.Lock()
				if prev, ok := finished[c.Name]; ok {
					t.Errorf("%s finished by both %s and %s", c.Name, prev, owner)
				}
				finished[c.Name] = owner
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { work("dies", abandon) })
	wg.Go(func() { work("lives", 0) })
	wg.Wait()
	if len(finished) != files {
		t.Errorf("%d of %d files finished", len(finished), files)
	}
	imported := 0
	for _, k := range st.Keys(t) {
		if strings.HasPrefix(k, "imported/") {
			imported++
		}
	}
	if imported != files {
		t.Errorf("imported/ holds %d files, want %d", imported, files)
	}
	assertOnlyFinished(t, st)
}

func mustIndex(t *testing.T, name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "f%03d.csv", &i); err != nil {
		t.Errorf("unexpected name %q", name)
	}
	return i
}
