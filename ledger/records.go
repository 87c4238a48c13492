package ledger

import (
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Records created one by one (the object API) are kept apart from the
// entry's JSON, in a bucket of their own per drop: a part may hold a
// hundred thousand records, and rewriting the entry for each would cost
// its whole JSON every time.
//
// A record is known by its content, not by its place in a file: RecordKey
// is a hash of the values sent plus how many identical records came before
// it in the drop. So a fixed file, whose bytes and line numbers differ
// from the drop that stopped, still finds the records that drop created.
// The key is stored as its 16 raw bytes and the value is Zuora's id.

// bucketRecords holds one bucket per drop id: record key → Zuora id.
var bucketRecords = []byte("records")

// MaxRecordID is the most bytes kept of a Zuora id; Zuora's are 32.
const MaxRecordID = 64

// CreatedRecord is one record Zuora created for a drop.
type CreatedRecord struct {
	// Key identifies the record by content: 32 hex digits (16 bytes).
	Key string
	// ZuoraID is the id Zuora gave the record.
	ZuoraID string
}

// Adoption is what RecordsAdopted found.
type Adoption struct {
	// Records is how many of the part's records were taken over.
	Records int
	// From lists the ids of the drops they were taken from.
	From []string
}

// recordKey is k as stored: its raw bytes when it is the hex Store
// documents, else as given.
func recordKey(k string) []byte {
	if b, err := hex.DecodeString(k); err == nil && len(b) == 16 {
		return b
	}
	return []byte(k)
}

// recordKeyString is a stored key as Store returns it: the hex of a
// 16-byte key.
func recordKeyString(k []byte) string {
	if len(k) == 16 {
		return hex.EncodeToString(k)
	}
	return string(k)
}

// checkRecords returns the error for a record transition on e's part i,
// or nil when the table allows it. Records are only written while the
// part is in Zuora's hands: after PartSubmitted and before its final
// state.
func checkRecords(e *Entry, t Transition, i int) error {
	if i < 0 || i >= len(e.Parts) {
		return &TransitionError{ID: e.ID, T: t, From: "?", To: "?", Part: i, Reason: fmt.Sprintf("the drop has %d parts", len(e.Parts))}
	}
	if e.Finished || !Allowed(t, e.State, e.State) {
		return &TransitionError{ID: e.ID, T: t, From: string(e.State), To: string(e.State), Part: -1, Finished: e.Finished}
	}
	if st := e.Parts[i].State; !PartAllowed(t, st, st) {
		return &TransitionError{ID: e.ID, T: t, From: string(st), To: string(st), Part: i}
	}
	return nil
}

// RecordsCreated implements Store. It does not rewrite the entry: a
// commit costs the records written, not the entry's JSON.
func (m *Machine) RecordsCreated(id string, i int, recs []CreatedRecord) error {
	err := m.update(func(tx Tx) error {
		e, err := tx.Entry(id)
		if err != nil {
			return err
		}
		if err := checkRecords(e, TRecordsCreated, i); err != nil {
			return err
		}
		clipped := make([]CreatedRecord, len(recs))
		for j, r := range recs {
			if len(r.ZuoraID) > MaxRecordID {
				r.ZuoraID = r.ZuoraID[:MaxRecordID]
			}
			clipped[j] = r
		}
		return tx.PutRecords(id, clipped)
	})
	if err != nil {
		return fmt.Errorf("ledger %s: record %d created records: %w", id, len(recs), err)
	}
	return nil
}

// RecordsAdopted implements Store.
func (m *Machine) RecordsAdopted(id string, i int, keys []string) (Adoption, error) {
	var a Adoption
	_, err := m.apply(id, func(tx Tx, e *Entry) error {
		a = Adoption{}
		if err := checkRecords(e, TRecordsAdopted, i); err != nil {
			return err
		}
		holders, err := tx.RecordHolders(id)
		if err != nil {
			return err
		}
		// The drops that stopped with records in Zuora: only those give
		// theirs up, since a drop still running may yet report its own.
		var donors []string
		for _, h := range holders {
			prev, err := entryOrNil(tx, h)
			if err != nil {
				return err
			}
			if prev != nil && prev.State == Failed {
				donors = append(donors, h)
			}
		}
		if len(donors) == 0 {
			return nil
		}
		given, err := tx.TakeRecords(id, donors, keys)
		if err != nil {
			return err
		}
		for _, d := range donors {
			if n := given[d]; n > 0 {
				a.Records += n
				a.From = append(a.From, d)
			}
		}
		p := &e.Parts[i]
		p.Adopted += a.Records
		if a.Records > 0 {
			p.AdoptedFrom = a.From[0]
			e.Updated = m.now()
			e.addEvent(Event{At: e.Updated, State: e.State,
				Note: fmt.Sprintf("%d records of %s were already created in Zuora by drop %v; they are not sent again", a.Records, p.Name, a.From)})
		}
		return nil
	})
	return a, err
}

// Records implements Store.
func (l *Ledger) Records(id string) (map[string]string, error) {
	out := map[string]string{}
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[recordKeyString(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: records: %w", id, err)
	}
	return out, nil
}

// dropRecords forgets the records of drop id: they are all in Zuora and
// the drop's bytes are known, so no later drop needs them.
func dropRecords(tx *bolt.Tx, id string) error {
	all := tx.Bucket(bucketRecords)
	if all.Bucket([]byte(id)) == nil {
		return nil
	}
	return all.DeleteBucket([]byte(id))
}
