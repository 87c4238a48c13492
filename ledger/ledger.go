// Package ledger records what happened to every dropped file, in bbolt.
//
// One Entry per drop, holding its parts. Every transition is committed
// before the side effect that follows it, so a daemon that crashes at any
// point resumes from the last committed state: it never uploads a part
// under a second idempotency key and never forgets a file.
//
// # Caveats
//
// bbolt takes an exclusive file lock: only one process opens a ledger at a
// time. Open fails after Options.Timeout with ErrLocked rather than hang,
// so a second daemon on the same ledger exits with a clear message.
// Transactions here are short and never span network I/O.
package ledger

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// State is where a drop stands.
type State string

// Drop states. Done, Rejected, Failed, Duplicate and Vanished are outcomes;
// an entry with an outcome is still active until its file is finished
// (moved on the source with its reports).
const (
	Discovered State = "discovered" // seen and stable; being claimed
	Claimed    State = "claimed"    // moved to processing/ on the source
	Fetched    State = "fetched"    // copied to the spool, sha256 known
	Converted  State = "converted"  // parts written, none sent yet
	Uploading  State = "uploading"  // at least one part submitted
	Done       State = "done"       // every part Completed in Zuora
	Rejected   State = "rejected"   // failed validation; nothing sent
	Failed     State = "failed"     // Zuora failed or canceled an import, or a final error
	Duplicate  State = "duplicate"  // the same bytes were already taken
	Vanished   State = "vanished"   // the file went away before it was claimed
)

// Outcome reports whether s is a final state.
func (s State) Outcome() bool {
	switch s {
	case Done, Rejected, Failed, Duplicate, Vanished:
		return true
	}
	return false
}

// PartState is where one uploaded part stands.
type PartState string

// Part states. Submitted is committed before the upload starts, so a part
// found Submitted after a crash is sent again under the same key.
const (
	PartPending   PartState = "pending"
	PartSubmitted PartState = "submitted"
	PartAccepted  PartState = "accepted" // Zuora has it; poll its status
	PartCompleted PartState = "Completed"
	PartFailed    PartState = "Failed"
	PartCanceled  PartState = "Canceled"
)

// Final reports whether the part will not change again.
func (s PartState) Final() bool {
	return s == PartCompleted || s == PartFailed || s == PartCanceled
}

// Part is one file sent to Zuora.
type Part struct {
	Index          int       `json:"index"`
	Name           string    `json:"name"`
	Path           string    `json:"path"`
	Size           int64     `json:"size"`
	SHA256         string    `json:"sha256"`
	Records        int       `json:"records"`
	IdempotencyKey string    `json:"idempotency_key"`
	State          PartState `json:"state"`
	SubmittedAt    time.Time `json:"submitted_at,omitzero"`
	ImportID       string    `json:"import_id,omitempty"`
	StatusURL      string    `json:"status_url,omitempty"`
	RequestID      string    `json:"request_id,omitempty"`
	TrackID        string    `json:"track_id,omitempty"`
	ZuoraStatus    string    `json:"zuora_status,omitempty"`
	Message        string    `json:"message,omitempty"`
	Imported       int       `json:"imported,omitempty"`
}

// Event is one line of an entry's history.
type Event struct {
	At    time.Time `json:"at"`
	State State     `json:"state"`
	Note  string    `json:"note,omitempty"`
}

// Entry is one dropped file.
type Entry struct {
	ID       string    `json:"id"` // time-ordered, unique
	Source   string    `json:"source"`
	Name     string    `json:"name"` // as dropped
	Key      string    `json:"key"`  // where it is on the source now
	Size     int64     `json:"size"`
	ETag     string    `json:"etag,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
	State    State     `json:"state"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	Attempts int       `json:"attempts,omitempty"`
	NextTry  time.Time `json:"next_try,omitzero"`
	// LastError is the latest error, for operators; it may be transient.
	LastError   string `json:"last_error,omitempty"`
	Records     int    `json:"records,omitempty"`
	Problems    int    `json:"problems,omitempty"`
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// Generation counts the earlier drops of the same bytes that this
	// ledger saw fail or be rejected; it is part of the idempotency keys
	// and upload names, so a re-drop after a failure is a new request.
	Generation int `json:"generation,omitempty"`
	// TakenOver marks a drop taken from another instance whose claim had
	// lapsed: that instance may have sent it already.
	TakenOver bool `json:"taken_over,omitempty"`
	// Finished is set once the file has been moved to imported/ or failed/
	// with its reports; FinalKey is where it went.
	Finished bool     `json:"finished,omitempty"`
	FinalKey string   `json:"final_key,omitempty"`
	Parts    []Part   `json:"parts,omitempty"`
	History  []Event  `json:"history,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Errors a caller decides on.
var (
	// ErrLocked means another process has the ledger open.
	ErrLocked = errors.New("ledger is in use by another process")
	// ErrNotFound means no entry has that id.
	ErrNotFound = errors.New("no such ledger entry")
)

var (
	bucketDrops  = []byte("drops")  // id → Entry (JSON)
	bucketActive = []byte("active") // id → nil, for entries not finished
	bucketSHA    = []byte("sha256") // sha256 → id of the drop that owns those bytes
)

// Options tune Open.
type Options struct {
	// Timeout is how long to wait for another process to release the
	// ledger before failing with ErrLocked. Zero means one second.
	Timeout time.Duration
	// NoSync skips fsync on commit. Only for tests and benchmarks: a crash
	// can then lose the last transitions, which breaks exactly-once.
	NoSync bool
}

// Ledger is an open ledger file.
type Ledger struct {
	db  *bolt.DB
	now func() time.Time
}

// Open opens or creates the ledger at path.
func Open(path string, opt Options) (*Ledger, error) {
	if opt.Timeout == 0 {
		opt.Timeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout, NoSync: opt.NoSync})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open ledger %s: %w (is another usagedrop running?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketDrops, bucketActive, bucketSHA} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	return &Ledger{db: db, now: time.Now}, nil
}

// Close closes the ledger file.
func (l *Ledger) Close() error { return l.db.Close() }

// NewID returns a fresh entry id: a UTC timestamp, so ids sort in the order
// drops were seen, and random bits, so two are never equal.
func NewID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(b[:])
}

// Create stores a new entry in state Discovered and returns it. takenOver
// says the file was another instance's claim whose lease ran out.
func (l *Ledger) Create(source, name, key string, size int64, etag string, takenOver bool) (*Entry, error) {
	now := l.now()
	e := &Entry{
		ID: NewID(now), Source: source, Name: name, Key: key, Size: size, ETag: etag, TakenOver: takenOver,
		State: Discovered, Created: now, Updated: now,
		History: []Event{{At: now, State: Discovered, Note: key}},
	}
	err := l.db.Update(func(tx *bolt.Tx) error {
		if err := put(tx, e); err != nil {
			return err
		}
		return tx.Bucket(bucketActive).Put([]byte(e.ID), nil)
	})
	if err != nil {
		return nil, fmt.Errorf("create entry for %s: %w", key, err)
	}
	return e, nil
}

// Update applies fn to the stored entry with id and commits the result. If
// fn changes State, an event with note is added to the history. fn must not
// do I/O: it runs inside the write transaction.
func (l *Ledger) Update(id string, note string, fn func(e *Entry) error) (*Entry, error) {
	var out *Entry
	err := l.db.Update(func(tx *bolt.Tx) error {
		e, err := get(tx, id)
		if err != nil {
			return err
		}
		before := e.State
		if err := fn(e); err != nil {
			return err
		}
		e.Updated = l.now()
		if e.State != before || note != "" {
			e.History = append(e.History, Event{At: e.Updated, State: e.State, Note: note})
		}
		if err := put(tx, e); err != nil {
			return err
		}
		if e.Finished {
			if err := tx.Bucket(bucketActive).Delete([]byte(id)); err != nil {
				return err
			}
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", id, err)
	}
	return out, nil
}

// Fetched records the sha256 of a drop's bytes and moves it to Fetched,
// unless the same bytes were already taken by another drop that imported
// them or may still import them: then the entry becomes a Duplicate of that
// one. Both happen in one transaction, so two drops of the same bytes can
// never both pass.
func (l *Ledger) Fetched(id, sha string) (*Entry, error) {
	var out *Entry
	err := l.db.Update(func(tx *bolt.Tx) error {
		e, err := get(tx, id)
		if err != nil {
			return err
		}
		e.SHA256 = sha
		e.Updated = l.now()
		shas := tx.Bucket(bucketSHA)
		if owner := shas.Get([]byte(sha)); owner != nil && string(owner) != id {
			prev, err := get(tx, string(owner))
			if err == nil && holdsBytes(prev) {
				e.State = Duplicate
				e.DuplicateOf = prev.ID
				e.History = append(e.History, Event{At: e.Updated, State: Duplicate, Note: "same bytes as " + prev.ID})
				out = e
				return put(tx, e)
			}
			if err == nil {
				e.Generation = prev.Generation + 1
			}
		}
		if err := shas.Put([]byte(sha), []byte(id)); err != nil {
			return err
		}
		e.State = Fetched
		e.History = append(e.History, Event{At: e.Updated, State: Fetched, Note: "sha256 " + sha})
		out = e
		return put(tx, e)
	})
	if err != nil {
		return nil, fmt.Errorf("record fetch of %s: %w", id, err)
	}
	return out, nil
}

// holdsBytes reports whether drop e has imported its bytes or may still do
// so. A rejected or failed drop imported nothing (Zuora's file import is
// atomic), so the same bytes may be dropped again; but a failed drop that
// was split into parts may have had some of them imported, and sending
// those again would double them.
func holdsBytes(e *Entry) bool {
	switch e.State {
	case Rejected, Vanished, Duplicate, Discovered, Claimed:
		return false
	case Failed:
		for _, p := range e.Parts {
			if p.State == PartCompleted {
				return true
			}
		}
		return false
	}
	return true
}

// Get returns the entry with id.
func (l *Ledger) Get(id string) (*Entry, error) {
	var e *Entry
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		e, err = get(tx, id)
		return err
	})
	return e, err
}

// Active returns the entries that still need work, oldest first.
func (l *Ledger) Active() ([]*Entry, error) {
	var out []*Entry
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketActive).ForEach(func(k, _ []byte) error {
			e, err := get(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// List calls fn for every entry, oldest first, until fn returns false.
func (l *Ledger) List(fn func(e *Entry) bool) error {
	return l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDrops).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if !fn(&e) {
				return nil
			}
		}
		return nil
	})
}

// Prune deletes finished entries last updated before cutoff and returns how
// many it removed. Their sha256 stays known while an entry owns it, so a
// pruned drop's bytes can be imported again: keep entries longer than
// anyone would re-drop a file.
func (l *Ledger) Prune(cutoff time.Time) (int, error) {
	n := 0
	err := l.db.Update(func(tx *bolt.Tx) error {
		drops, shas := tx.Bucket(bucketDrops), tx.Bucket(bucketSHA)
		c := drops.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if !e.Finished || !e.Updated.Before(cutoff) {
				continue
			}
			if e.SHA256 != "" && bytes.Equal(shas.Get([]byte(e.SHA256)), k) {
				if err := shas.Delete([]byte(e.SHA256)); err != nil {
					return err
				}
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func get(tx *bolt.Tx, id string) (*Entry, error) {
	v := tx.Bucket(bucketDrops).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	return &e, nil
}

func put(tx *bolt.Tx, e *Entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketDrops).Put([]byte(e.ID), v)
}
