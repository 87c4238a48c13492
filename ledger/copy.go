package ledger

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Item is everything a store holds of one drop, as `usagedrop ledger copy`
// moves it from one store to another.
type Item struct {
	Entry *Entry
	// Owns lists the sums of the bytes this drop owns (the duplicate
	// index).
	Owns []string
	// Records are those created one by one and not yet forgotten.
	Records []CreatedRecord
	// Notices are the drop's notices, closed or not.
	Notices []Notice
}

// Copier is a Store that can be read and written whole: both stores here.
type Copier interface {
	Store
	// Export calls fn for every drop, oldest first, until fn returns an
	// error. The store should not be in use meanwhile.
	Export(fn func(Item) error) error
	// Import stores items as they are, in one transaction.
	Import(items []Item) (Imported, error)
}

// Imported counts what Import stored.
type Imported struct {
	Entries, Records, Notices int
	// OwnersKept counts the sums whose bytes a drop already in the
	// store held (imported them, or may): that drop stays their owner,
	// and the copied one does not take them over.
	OwnersKept int
}

// Import implements Copier. An entry with the same id is replaced, so a
// copy run twice changes nothing the second time. Where the destination
// already has a drop that holds the same bytes, that drop stays their
// owner: a re-drop of them is its Duplicate.
func (m *Machine) Import(items []Item) (Imported, error) {
	var n Imported
	err := m.update(func(tx Tx) error {
		n = Imported{}
		for _, it := range items {
			e := it.Entry
			if err := tx.PutEntry(e); err != nil {
				return fmt.Errorf("entry %s: %w", e.ID, err)
			}
			n.Entries++
			if err := tx.DropRecords(e.ID); err != nil {
				return err
			}
			if len(it.Records) > 0 {
				if err := tx.PutRecords(e.ID, it.Records); err != nil {
					return fmt.Errorf("records of %s: %w", e.ID, err)
				}
				n.Records += len(it.Records)
			}
			for _, no := range it.Notices {
				if err := tx.PutNotice(&no); err != nil {
					return fmt.Errorf("notice %s: %w", no.Key, err)
				}
				n.Notices++
			}
			for _, sha := range it.Owns {
				kept, err := m.importOwner(tx, sha, e.ID)
				if err != nil {
					return fmt.Errorf("owner of %s: %w", sha, err)
				}
				if kept {
					n.OwnersKept++
				}
			}
		}
		return nil
	})
	if err != nil {
		return Imported{}, fmt.Errorf("ledger import: %w", err)
	}
	return n, nil
}

// importOwner makes id the owner of sha unless another drop holds those
// bytes already, and reports whether that one was kept.
func (m *Machine) importOwner(tx Tx, sha, id string) (bool, error) {
	cur, err := tx.Owner(sha)
	if err != nil {
		return false, err
	}
	if cur != "" && cur != id {
		prev, err := entryOrNil(tx, cur)
		if err != nil {
			return false, err
		}
		if prev != nil {
			holds, err := holdsBytes(tx, prev)
			if err != nil || holds {
				return holds, err
			}
		}
	}
	return false, tx.SetOwner(sha, id)
}

// Export implements Copier, in one read transaction.
func (l *Ledger) Export(fn func(Item) error) error {
	return l.db.View(func(tx *bolt.Tx) error {
		owns := map[string][]string{}
		err := tx.Bucket(bucketSHA).ForEach(func(k, v []byte) error {
			owns[string(v)] = append(owns[string(v)], string(k))
			return nil
		})
		if err != nil {
			return err
		}
		bt := boltTx{tx}
		c := tx.Bucket(bucketDrops).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			it := Item{Entry: &e, Owns: owns[e.ID]}
			if b := tx.Bucket(bucketRecords).Bucket(k); b != nil {
				err := b.ForEach(func(rk, zid []byte) error {
					it.Records = append(it.Records, CreatedRecord{Key: recordKeyString(rk), ZuoraID: string(zid)})
					return nil
				})
				if err != nil {
					return err
				}
			}
			if it.Notices, err = bt.NoticesOf(e.ID); err != nil {
				return err
			}
			if err := fn(it); err != nil {
				return err
			}
		}
		return nil
	})
}
