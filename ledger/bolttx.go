package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// boltTx is a bbolt transaction as the Machine sees it. bbolt has one
// writer at a time, so an entry read in a write transaction is held
// against other writers without a lock of its own.
type boltTx struct{ tx *bolt.Tx }

var _ Tx = boltTx{}

func (t boltTx) Entry(id string) (*Entry, error) { return get(t.tx, id) }

func (t boltTx) PutEntry(e *Entry) error {
	if err := put(t.tx, e); err != nil {
		return err
	}
	active, id := t.tx.Bucket(bucketActive), []byte(e.ID)
	if e.Finished {
		return active.Delete(id)
	}
	if active.Get(id) == nil {
		return active.Put(id, nil)
	}
	return nil
}

func (t boltTx) Owner(sha string) (string, error) {
	return string(t.tx.Bucket(bucketSHA).Get([]byte(sha))), nil
}

func (t boltTx) SetOwner(sha, id string) error {
	return t.tx.Bucket(bucketSHA).Put([]byte(sha), []byte(id))
}

func (t boltTx) HasRecords(id string) (bool, error) {
	b := t.tx.Bucket(bucketRecords).Bucket([]byte(id))
	if b == nil {
		return false, nil
	}
	k, _ := b.Cursor().First()
	return k != nil, nil
}

func (t boltTx) PutRecords(id string, recs []CreatedRecord) error {
	b, err := t.tx.Bucket(bucketRecords).CreateBucketIfNotExists([]byte(id))
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := b.Put(recordKey(r.Key), []byte(r.ZuoraID)); err != nil {
			return err
		}
	}
	return nil
}

func (t boltTx) DropRecords(id string) error { return dropRecords(t.tx, id) }

func (t boltTx) RecordHolders(id string) ([]string, error) {
	var out []string
	err := t.tx.Bucket(bucketRecords).ForEachBucket(func(k []byte) error {
		if string(k) != id {
			out = append(out, string(k))
		}
		return nil
	})
	return out, err
}

func (t boltTx) TakeRecords(id string, from, keys []string) (map[string]int, error) {
	all := t.tx.Bucket(bucketRecords)
	mine, err := all.CreateBucketIfNotExists([]byte(id))
	if err != nil {
		return nil, err
	}
	given := map[string]int{}
	for _, k := range keys {
		rk := recordKey(k)
		if mine.Get(rk) != nil {
			continue
		}
		for _, d := range from {
			b := all.Bucket([]byte(d))
			if b == nil {
				continue
			}
			v := b.Get(rk)
			if v == nil {
				continue
			}
			if err := mine.Put(rk, bytes.Clone(v)); err != nil {
				return nil, err
			}
			if err := b.Delete(rk); err != nil {
				return nil, err
			}
			given[d]++
			break
		}
	}
	return given, nil
}

func (t boltTx) Notice(key string) (*Notice, error) {
	_, n, err := getNotice(t.tx, key)
	return n, err
}

func (t boltTx) NoticesOf(id string) ([]Notice, error) {
	b := t.tx.Bucket(bucketNotices)
	if b == nil {
		return nil, nil
	}
	var out []Notice
	prefix := []byte(id + "/")
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var n Notice
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("decode notice %s: %w", k, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func (t boltTx) PutNotice(n *Notice) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketNotices)
	if err != nil {
		return err
	}
	v, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return b.Put([]byte(n.Key), v)
}

func (t boltTx) DeleteNotice(key string) error {
	b := t.tx.Bucket(bucketNotices)
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}
