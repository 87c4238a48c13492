package ledger

import (
	"errors"
	"time"
)

// Leaser is a Store shared by a fleet of daemons (the PostgreSQL ledger):
// each active drop is held by one instance under a lease on the store's
// clock, which that instance's heartbeat renews. The pipeline works only
// the drops it holds; a drop whose lease ran out (its daemon died or was
// stopped) is taken over by another instance and resumed from its last
// committed state. A store of one daemon (bbolt) does not implement it:
// its daemon holds everything.
type Leaser interface {
	// Instance is the name this store leases drops to; Create records it
	// as the new drop's owner.
	Instance() string
	// Lease is how long a hold lasts without renewal.
	Lease() time.Duration
	// Renew extends the lease of every active drop this instance holds
	// and returns their ids. A drop another instance took over is not
	// among them.
	Renew() ([]string, error)
	// Acquire takes for this instance up to n active drops whose lease
	// has run out or that no instance holds, skipping those another
	// transaction has locked, and returns them with the instance that
	// held each.
	Acquire(n int) ([]Acquired, error)
}

// Acquired is a drop a Leaser took over.
type Acquired struct {
	Entry *Entry
	// From is the instance whose lease ran out, or "" for a drop no one
	// held (written before leases, or copied in).
	From string
}

// Admitter is a Tx that decides whether a new entry may be created:
// a shared ledger admits one active drop per file (source and key), so
// that daemons listing the same folder do not each record it.
type Admitter interface {
	// Admit returns an error satisfying errors.Is(err, ErrHeld) when an
	// active drop already holds e's file.
	Admit(e *Entry) error
}

// ErrHeld means an active drop, perhaps another instance's, already holds
// the file a new drop would be made of.
var ErrHeld = errors.New("an active drop already holds this file")
