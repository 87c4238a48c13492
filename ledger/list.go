package ledger

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// ListAfter calls fn for every entry whose id sorts after after, oldest
// first, until fn returns false; after "" starts at the first. It seeks to
// after instead of reading past the entries before it, so a page of a
// long ledger costs that page.
func (l *Ledger) ListAfter(after string, fn func(e *Entry) bool) error {
	return l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDrops).Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && bytes.Equal(k, []byte(after)) {
			k, _ = c.Next()
		}
		for ; k != nil; k, _ = c.Next() {
			e, err := get(tx, string(k))
			if err != nil {
				return err
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}

// ListBefore calls fn for every entry whose id sorts before before, newest
// first, until fn returns false; before "" starts at the newest. Like
// ListAfter it seeks, so the newest drops of a long ledger cost only
// themselves: the status page lists them this way.
func (l *Ledger) ListBefore(before string, fn func(e *Entry) bool) error {
	return l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDrops).Cursor()
		var k []byte
		if before == "" {
			k, _ = c.Last()
		} else if k, _ = c.Seek([]byte(before)); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil; k, _ = c.Prev() {
			e, err := get(tx, string(k))
			if err != nil {
				return err
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}
