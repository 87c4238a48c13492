package ledger

import (
	"errors"
	"fmt"
	"time"

	"usagedrop/internal/safetext"
)

// Tx is one transaction of a store as the transitions see it: the entries,
// the index of which drop owns which bytes, the records created one by
// one and the notices. Machine runs every transition inside one; each
// store implements it over its own storage (bbolt's buckets here,
// PostgreSQL's tables in ledger/postgres), so the rules live once, in
// Machine, and a store holds none of them.
//
// In a write transaction Entry holds the entry it returns against other
// writers until the commit.
type Tx interface {
	// Entry returns the entry with id, or an error satisfying
	// errors.Is(err, ErrNotFound).
	Entry(id string) (*Entry, error)
	// PutEntry stores e, which is active (Store.Active) while it is not
	// Finished.
	PutEntry(e *Entry) error

	// Owner returns the id of the drop that owns the bytes whose sha256
	// is sha, or "".
	Owner(sha string) (string, error)
	// SetOwner makes drop id the owner of sha's bytes.
	SetOwner(sha, id string) error

	// HasRecords reports whether drop id holds records created one by
	// one.
	HasRecords(id string) (bool, error)
	// PutRecords stores records created for drop id.
	PutRecords(id string, recs []CreatedRecord) error
	// DropRecords deletes drop id's records.
	DropRecords(id string) error
	// RecordHolders returns the ids of the drops other than id that hold
	// records, oldest first.
	RecordHolders(id string) ([]string, error)
	// TakeRecords moves to drop id each of keys that id lacks and one of
	// from holds, from the first of from that holds it, and returns how
	// many each of from gave.
	TakeRecords(id string, from, keys []string) (map[string]int, error)

	// Notice returns the notice key, or an error satisfying
	// errors.Is(err, ErrNotFound).
	Notice(key string) (*Notice, error)
	// NoticesOf returns drop id's notices, closed or not.
	NoticesOf(id string) ([]Notice, error)
	// PutNotice stores n.
	PutNotice(n *Notice) error
	// DeleteNotice deletes the notice key.
	DeleteNotice(key string) error
}

// Machine is the state machine every Store shares: each transition checked
// against the table and applied to its entry inside one transaction of
// the store's. A store embeds it and adds its reads (List, Active, Prune,
// BySHA256, Records, Notices).
type Machine struct {
	update    func(fn func(tx Tx) error) error
	view      func(fn func(tx Tx) error) error
	now       func() time.Time
	maxStarts int
}

// NewMachine returns the state machine over a store's transactions: update
// runs fn in a write transaction committed when fn returns nil, view in a
// read one. maxStarts is Options.MaxStarts (zero means 3).
func NewMachine(update, view func(fn func(tx Tx) error) error, maxStarts int) Machine {
	if maxStarts <= 0 {
		maxStarts = 3
	}
	return Machine{update: update, view: view, now: time.Now, maxStarts: maxStarts}
}

// Create implements Store.
func (m *Machine) Create(source, name, key string, size int64, etag string, takenOver bool) (*Entry, error) {
	now := m.now()
	e := &Entry{
		ID: NewID(now), Source: source, Name: name, Key: key, Size: size, ETag: etag, TakenOver: takenOver,
		State: Discovered, Created: now, Updated: now,
		History: []Event{{At: now, State: Discovered, Note: Text(key)}},
	}
	err := m.update(func(tx Tx) error {
		if a, ok := tx.(Admitter); ok {
			if err := a.Admit(e); err != nil {
				return err
			}
		}
		return tx.PutEntry(e)
	})
	if err != nil {
		return nil, fmt.Errorf("create entry for %s: %w", safetext.Name(key), err)
	}
	return e, nil
}

// Get implements Store.
func (m *Machine) Get(id string) (*Entry, error) {
	var e *Entry
	err := m.view(func(tx Tx) error {
		var err error
		e, err = tx.Entry(id)
		return err
	})
	return e, err
}

// apply runs fn on entry id inside one write transaction and commits the
// entry fn leaves, capped; an error from fn changes nothing.
func (m *Machine) apply(id string, fn func(tx Tx, e *Entry) error) (*Entry, error) {
	var out *Entry
	err := m.update(func(tx Tx) error {
		e, err := tx.Entry(id)
		if err != nil {
			return err
		}
		from := e.State
		if err := fn(tx, e); err != nil {
			return err
		}
		if err := m.notices(tx, from, e); err != nil {
			return err
		}
		e.clip()
		if err := tx.PutEntry(e); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", id, err)
	}
	return out, nil
}

// move takes e to state to by transition t when the table allows it, and
// records the event.
func (m *Machine) move(e *Entry, t Transition, to State, note string) error {
	if e.Finished || !Allowed(t, e.State, to) {
		return &TransitionError{ID: e.ID, T: t, From: string(e.State), To: string(to), Part: -1, Finished: e.Finished}
	}
	e.Updated = m.now()
	if to != e.State || note != "" {
		e.addEvent(Event{At: e.Updated, State: to, Note: note})
	}
	e.State = to
	return nil
}

// movePart takes e's part i to st by t, after moving the entry by t to
// Uploading.
func (m *Machine) movePart(e *Entry, i int, t Transition, st PartState, note string) error {
	if i < 0 || i >= len(e.Parts) {
		return &TransitionError{ID: e.ID, T: t, From: "?", To: string(st), Part: i, Reason: fmt.Sprintf("the drop has %d parts", len(e.Parts))}
	}
	if !PartAllowed(t, e.Parts[i].State, st) {
		return &TransitionError{ID: e.ID, T: t, From: string(e.Parts[i].State), To: string(st), Part: i}
	}
	if err := m.move(e, t, Uploading, note); err != nil {
		return err
	}
	e.Parts[i].State = st
	e.progress()
	return nil
}

// entryOrNil is tx.Entry with a missing entry as nil.
func entryOrNil(tx Tx, id string) (*Entry, error) {
	e, err := tx.Entry(id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return e, err
}
