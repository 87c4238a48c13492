package ledger

import "time"

// Store is a ledger: the bbolt one here, or another implementation (a
// PostgreSQL ledger shared by a fleet) that passes the conformance suite in
// ledger/ledgertest. Every method that changes an entry is one transition
// of the table in the package doc, committed atomically before it returns;
// an illegal one returns an error satisfying errors.Is(err, ErrTransition)
// and changes nothing. Methods returning *Entry return it as committed.
type Store interface {
	// Create stores a new entry in state Discovered. takenOver says the
	// file was another instance's claim whose lease ran out.
	Create(source, name, key string, size int64, etag string, takenOver bool) (*Entry, error)
	// Get returns the entry with id, or an error satisfying
	// errors.Is(err, ErrNotFound).
	Get(id string) (*Entry, error)
	// Active returns the entries not finished, oldest first.
	Active() ([]*Entry, error)
	// List calls fn for every entry, oldest first, until fn returns false.
	List(fn func(e *Entry) bool) error
	// ListAfter calls fn for every entry whose id sorts after after,
	// oldest first, until fn returns false; after "" starts at the first.
	// A page of a long ledger costs that page.
	ListAfter(after string, fn func(e *Entry) bool) error
	// ListBefore calls fn for every entry whose id sorts before before,
	// newest first, until fn returns false; before "" starts at the
	// newest.
	ListBefore(before string, fn func(e *Entry) bool) error
	// Prune deletes finished entries last updated before cutoff.
	Prune(cutoff time.Time) (int, error)

	// Begin commits that step is about to run on the drop. A Begin that
	// finds the previous step never ended counts a crash; once a drop
	// has stopped the service MaxStarts times it is set aside instead
	// (a Failed outcome, or finished in place when it already has an
	// outcome), and the returned entry says so.
	Begin(id string, step Step) (*Entry, error)
	// End commits that the running step stopped without progress and
	// without fault (the daemon is stopping, or it waits on Zuora), and
	// that any wait is over.
	End(id string) (*Entry, error)
	// Retry records a failed step and when to try again; a failure the
	// file causes counts towards MaxStarts, an outage does not.
	Retry(id string, f Failure) (*Entry, error)
	// Renewed records a refreshed claim's ETag.
	Renewed(id, etag string) (*Entry, error)

	// Claimed: the file is this instance's, now at key.
	Claimed(id, key, etag string, size int64) (*Entry, error)
	// Fetched records the sha256 of the spooled bytes. The entry becomes
	// a Duplicate when another drop holds the same bytes (has imported
	// them or may still), in the same transaction.
	Fetched(id, sha string) (*Entry, error)
	// Refetch sends the drop back to Claimed: its spooled copy is lost.
	Refetch(id, note string) (*Entry, error)
	// Converted stores the parts to send, each Pending.
	Converted(id string, c Conversion) (*Entry, error)
	// Rejected records a drop that failed validation; nothing was sent.
	Rejected(id string, problems int, warnings []string, note string) (*Entry, error)
	// PartSubmitted commits that part i is about to be sent.
	PartSubmitted(id string, i int, at time.Time) (*Entry, error)
	// PartAccepted records Zuora's receipt for part i.
	PartAccepted(id string, i int, r Receipt) (*Entry, error)
	// PartStatus records a status Zuora reports for part i that is not
	// final yet.
	PartStatus(id string, i int, zuoraStatus string) (*Entry, error)
	// PartFinal records part i's final state.
	PartFinal(id string, i int, st PartState, message string, imported int) (*Entry, error)
	// Outcome commits a final state; finished also marks the drop
	// finished (a Vanished drop has no file to move).
	Outcome(id string, s State, note string, finished bool) (*Entry, error)
	// Finished records that the file was moved to finalKey with its
	// reports; the entry is no longer active.
	Finished(id, finalKey, note string) (*Entry, error)

	// RecordsCreated records that Zuora created recs, records of part i
	// sent one by one (the object API), while the part is submitted. It
	// may be called concurrently and does not change the entry's JSON.
	RecordsCreated(id string, i int, recs []CreatedRecord) error
	// RecordsAdopted takes over, for part i, the records among keys that
	// a Failed drop had created in Zuora, so that they are not sent
	// again; it notes how many on the part (Adopted, AdoptedFrom) and in
	// the history. Calling it again adopts nothing twice.
	RecordsAdopted(id string, i int, keys []string) (Adoption, error)
	// Records returns the records created for drop id, by key, with
	// their Zuora ids. A drop that is Done has none left: its bytes are
	// known, and its records no later drop needs.
	Records(id string) (map[string]string, error)

	// Wake records an operator's request to try an unfinished drop now:
	// its next try is no longer scheduled.
	Wake(id, note string) (*Entry, error)
	// Requeue sends a finished Rejected or Failed drop again, from where
	// its file was moved (FinalKey): back to Discovered under a new
	// generation, so new idempotency keys. It refuses, with a
	// TransitionError whose Reason says why in plain words, a drop whose
	// file is gone or that imported something.
	Requeue(id, note string) (*Entry, error)
	// Forget lets the bytes of a finished drop that imported them (or may
	// have) be taken again: a later drop of them is a new generation, not
	// a Duplicate. The entry stays, with the event in its history.
	// Forgetting twice changes nothing.
	Forget(id, note string) (*Entry, error)
	// CanForget returns the error Forget would, changing nothing: what
	// `usagedrop forget` without -yes shows.
	CanForget(id string) error
	// BySHA256 returns the id of the drop that owns the bytes whose sha256
	// is, or starts with, sum (at least MinSHAPrefix hex digits).
	BySHA256(sum string) (string, error)
	// Notify records that drop id is to be told about ev (a drop stuck
	// too long), unless it was already; it reports whether it was
	// added. Rejected and failed notices need no call: the transition to
	// that outcome records them. Allowed in every state.
	Notify(id string, ev NoticeEvent) (bool, error)
	// Notices returns the notices not closed, oldest drop first.
	Notices() ([]Notice, error)
	// NoticeTried records a failed attempt to deliver notice key to
	// target, and when to try next.
	NoticeTried(key, target, errText string, next time.Time) (*Notice, error)
	// NoticeDelivered records that target got notice key, in the drop's
	// history too, in every state of the drop, finished or not.
	NoticeDelivered(key, target string) (*Notice, error)
	// NoticeGaveUp records that target will never get notice key, and
	// why, in the drop's history too.
	NoticeGaveUp(key, target, why string) (*Notice, error)
	// NoticeClosed takes notice key out of the outbox: each of its
	// targets has it or was given up. Delivered, GaveUp and Tried on a
	// closed notice, or on a target done with it, are a TransitionError.
	NoticeClosed(key string) error

	// Close releases the ledger.
	Close() error
}

// Conversion is what Converted stores.
type Conversion struct {
	Parts    []Part
	Records  int
	Warnings []string
	Note     string
}

// Receipt is Zuora's answer to a submitted part.
type Receipt struct {
	ImportID, StatusURL, RequestID, TrackID string
}
