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
