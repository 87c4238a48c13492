// Package ledger records what happened to every dropped file, in bbolt
// or PostgreSQL, and is the state machine those files move through.
//
// One Entry per drop, holding its parts. Every transition is committed
// before the side effect that follows it, so a daemon that crashes at any
// point resumes from the last committed state: it never uploads a part
// under a second idempotency key and never forgets a file.
//
// # Transitions
//
// The ledger's API is its transitions, not a generic update: the pipeline
// decides when a drop moves, the ledger decides whether it may. Each
// transition is checked against one table (transitions.go); an illegal one
// returns an error satisfying errors.Is(err, ErrTransition) and changes
// nothing. Finished entries take no transition but the operator's:
// Requeue and Forget (operator.go).
//
//	transition     from                                       to
//	Claimed        discovered                                 claimed
//	Fetched        claimed                                    fetched | duplicate
//	Refetch        fetched                                    claimed
//	Converted      fetched                                    converted
//	Rejected       fetched                                    rejected
//	PartSubmitted  converted | uploading                      uploading   part pending | submitted → submitted
//	PartAccepted   uploading                                  uploading   part submitted → accepted
//	PartStatus     uploading                                  uploading   part accepted → accepted
//	PartFinal      uploading                                  uploading   part submitted | accepted → Completed | Failed | Canceled
//	RecordsCreated uploading                                  uploading   part submitted → submitted
//	RecordsAdopted uploading                                  uploading   part submitted → submitted
//	Outcome        uploading (every part Completed)           done
//	Outcome        discovered | claimed | fetched |
//	               converted | uploading                      failed
//	Outcome        discovered | claimed | converted |
//	               uploading                                  vanished
//	Finished       done | rejected | failed | duplicate |
//	               vanished                                   (same), finished
//	Begin, End,    any unfinished state                       (same)
//	Retry, Renewed,
//	Wake
//	Requeue        rejected | failed | duplicate, finished    discovered (an operator's retry; a duplicate once its bytes were forgotten)
//	Forget         done | failed, finished                    (same), still finished
//
// # Attempts
//
// Begin is committed before a step runs and records which step it is. A
// step that ends, by a transition, by Retry or by End, clears it; so a
// Begin that finds the previous one still open knows that the step killed
// the daemon (or the machine went down under it). Once a drop has done so
// Options.MaxStarts times without progress, the next Begin sets it aside
// as a Failed outcome instead ("this file stopped the service 3 times
// while being converted; it was set aside"), and the file goes to failed/
// with its bytes. Retry records a step that failed: MaxStarts failures the
// file causes set it aside too, a panic at once; an outage of Zuora, of a
// source or of spool space never does, and is shown as "waiting for Zuora
// since ..." instead. Nothing is set aside while a part
// may be in Zuora's hands (submitted or accepted): failing the drop then
// could hide an import that completes.
//
// # Records sent one by one
//
// The object API creates a part's records one at a time, so a part can
// stop half-done. Each record Zuora creates is committed (RecordsCreated)
// under a key made from its content, with Zuora's id, in a bucket of the
// drop's own; a retry or a restart sends only the records not there. A
// later drop of the same records, the same bytes again or a fixed file,
// takes over (RecordsAdopted) the records a Failed drop had created, and
// sends only the rest. Keys are 16 bytes and ids at most MaxRecordID
// (Zuora's are 32): 100,000 records took 16 MiB of ledger file (measured;
// random keys fill bbolt's pages about half). A Done drop's records are
// forgotten, and a pruned drop's too.
//
// # Names and text
//
// Names and keys are kept as the raw bytes they were dropped with; JSON
// would turn bytes that are not UTF-8 into U+FFFD, so such a name is also
// stored in base64 (name_b64, key_b64, final_key_b64) and restored on read.
// Every note, error, warning and message is escaped for display and
// clipped to MaxText bytes, and the history keeps its first and latest
// events with the middle folded into a count, so no drop can make its
// entry large. Ledgers written before these fields exist read unchanged:
// every new field is optional.
//
// # Stores
//
// The transitions live once, in Machine (machine.go), over a store's
// transactions (Tx). Ledger is the bbolt store, the embedded default;
// ledger/postgres is a PostgreSQL one that a fleet of daemons shares. Both
// pass the conformance suite in ledger/ledgertest, and `usagedrop ledger
// copy` moves drops between them (Copier).
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
	// Adopted counts the part's records an earlier drop had created in
	// Zuora (object API), taken over instead of sent again; AdoptedFrom
	// is the first such drop's id.
	Adopted     int    `json:"adopted,omitempty"`
	AdoptedFrom string `json:"adopted_from,omitempty"`
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
	// Folded counts the history events dropped from the middle of a long
	// history (see MaxHistory).
	Folded int `json:"folded,omitempty"`

	// Step is the step begun and not yet ended; one still set when Begin
	// is called again means the daemon died during it.
	Step Step `json:"step,omitempty"`
	// Crashes counts the starts of a step that never ended, since the
	// drop last moved on.
	Crashes int `json:"crashes,omitempty"`
	// Failures counts the failures the file itself caused since the drop
	// last moved on.
	Failures int `json:"failures,omitempty"`
	// WaitingFor names what the drop waits for ("Zuora", "the source",
	// "space in the spool") and WaitingSince when the wait began.
	WaitingFor   string    `json:"waiting_for,omitempty"`
	WaitingSince time.Time `json:"waiting_since,omitzero"`

	// Requeued counts the times an operator had the drop sent again
	// (Requeue); Forgotten is when an operator let its bytes be taken
	// again (Forget). See operator.go.
	Requeued  int       `json:"requeued,omitempty"`
	Forgotten time.Time `json:"forgotten,omitzero"`

	// Owner is the instance that holds the drop in a fleet's shared
	// ledger (Leaser); empty in a ledger of one daemon. The store sets it
	// when it reads the entry: it is not part of a transition.
	Owner string `json:"owner,omitempty"`
}

// Errors a caller decides on.
var (
	// ErrLocked means another process has the ledger open.
	ErrLocked = errors.New("ledger is in use by another process")
	// ErrNotFound means no entry has that id.
	ErrNotFound = errors.New("no such ledger entry")
	// ErrTransition means a transition is not allowed from the entry's
	// state; the entry was not changed. Errors carrying it are
	// *TransitionError.
	ErrTransition = errors.New("transition not allowed")
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
	// MaxStarts is how many times a step may start without the drop
	// moving on, by dying under it or failing for a reason the file
	// causes, before the drop is set aside. Zero means 3.
	MaxStarts int
	// NoSync skips fsync on commit. Only for tests and benchmarks: a crash
	// can then lose the last transitions, which breaks exactly-once.
	NoSync bool
}

// Ledger is an open ledger file.
type Ledger struct {
	// Machine holds the transitions; the Ledger its bbolt transactions
	// (boltTx) and reads.
	Machine
	db *bolt.DB
}

var _ Store = (*Ledger)(nil)

// Open opens or creates the ledger at path.
func Open(path string, opt Options) (*Ledger, error) {
	if opt.Timeout == 0 {
		opt.Timeout = time.Second
	}
	if opt.MaxStarts <= 0 {
		opt.MaxStarts = 3
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
		for _, b := range [][]byte{bucketDrops, bucketActive, bucketSHA, bucketRecords} {
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
	l := &Ledger{db: db}
	l.Machine = NewMachine(
		func(fn func(Tx) error) error { return db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) }) },
		func(fn func(Tx) error) error { return db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) }) },
		opt.MaxStarts)
	return l, nil
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
			if err := dropRecords(tx, string(k)); err != nil {
				return err
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
