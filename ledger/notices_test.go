package ledger

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A notice survives a restart, and a finished drop's closed notices are
// forgotten with it while an open one stays until it is delivered.
func TestNoticesSurviveReopenAndFinish(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := l.Create("src", "a.csv", "a.csv", 1, "", false)
	b, _ := l.Create("src", "b.csv", "b.csv", 1, "", false)
	for _, id := range []string{a.ID, b.ID} {
		mustDo(t)(l.Claimed(id, "p/x.csv", "", 1))
		mustDo(t)(l.Fetched(id, "sha-"+id))
		mustDo(t)(l.Rejected(id, 1, nil, "rejected: row 2: ACCOUNT_ID is empty"))
		if _, err := l.Notify(id, NoticeStuck); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ns, err := l.Notices()
	if err != nil || len(ns) != 4 {
		t.Fatalf("after reopen: %d notices, %v", len(ns), err)
	}
	for _, ev := range []NoticeEvent{NoticeRejected, NoticeStuck} {
		if _, err := l.NoticeDelivered(NoticeKey(a.ID, ev), "hook"); err != nil {
			t.Fatal(err)
		}
		if err := l.NoticeClosed(NoticeKey(a.ID, ev)); err != nil {
			t.Fatal(err)
		}
	}
	mustDo(t)(l.Finished(a.ID, "failed/a.csv", "moved"))
	mustDo(t)(l.Finished(b.ID, "failed/b.csv", "moved"))
	if n := noticeCount(t, l); n != 2 {
		t.Fatalf("%d notices kept, want b's 2 still open", n)
	}
	if err := l.NoticeClosed(NoticeKey(b.ID, NoticeStuck)); err != nil {
		t.Fatal(err)
	}
	if n := noticeCount(t, l); n != 1 {
		t.Fatalf("closing a finished drop's notice kept it: %d notices", n)
	}
}

func mustDo(t *testing.T) func(*Entry, error) {
	return func(_ *Entry, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func noticeCount(t *testing.T, l *Ledger) int {
	t.Helper()
	n := 0
	err := l.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketNotices).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
