package ledger

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Transition names one kind of change to an entry.
type Transition string

// Transitions, as in the package doc's table.
const (
	TClaimed       Transition = "Claimed"
	TFetched       Transition = "Fetched"
	TRefetch       Transition = "Refetch"
	TConverted     Transition = "Converted"
	TRejected      Transition = "Rejected"
	TPartSubmitted Transition = "PartSubmitted"
	TPartAccepted  Transition = "PartAccepted"
	TPartStatus    Transition = "PartStatus"
	TPartFinal     Transition = "PartFinal"
	TOutcome       Transition = "Outcome"
	TFinished      Transition = "Finished"
	// Records created one by one (the object API), while their part is
	// in Zuora's hands.
	TRecordsCreated Transition = "RecordsCreated"
	TRecordsAdopted Transition = "RecordsAdopted"
	// Bookkeeping: allowed in every unfinished state, never moving it.
	TBegin   Transition = "Begin"
	TEnd     Transition = "End"
	TRetry   Transition = "Retry"
	TRenewed Transition = "Renewed"
)

// Rule is one legal move: transition T takes an entry from From to To.
type Rule struct {
	T        Transition
	From, To State
}

// table is the one from → to table every transition is checked against
// (Allowed). Bookkeeping transitions (Begin, End, Retry, Renewed) are not
// listed: they are allowed in every unfinished state and keep it.
var table = [...]Rule{
	{TClaimed, Discovered, Claimed},
	{TFetched, Claimed, Fetched},
	{TFetched, Claimed, Duplicate},
	{TRefetch, Fetched, Claimed},
	{TConverted, Fetched, Converted},
	{TRejected, Fetched, Rejected},
	{TPartSubmitted, Converted, Uploading},
	{TPartSubmitted, Uploading, Uploading},
	{TPartAccepted, Uploading, Uploading},
	{TPartStatus, Uploading, Uploading},
	{TPartFinal, Uploading, Uploading},
	{TRecordsCreated, Uploading, Uploading},
	{TRecordsAdopted, Uploading, Uploading},
	{TOutcome, Uploading, Done},
	{TOutcome, Discovered, Failed},
	{TOutcome, Claimed, Failed},
	{TOutcome, Fetched, Failed},
	{TOutcome, Converted, Failed},
	{TOutcome, Uploading, Failed},
	{TOutcome, Discovered, Vanished},
	{TOutcome, Claimed, Vanished},
	{TOutcome, Converted, Vanished},
	{TOutcome, Uploading, Vanished},
	{TFinished, Done, Done},
	{TFinished, Rejected, Rejected},
	{TFinished, Failed, Failed},
	{TFinished, Duplicate, Duplicate},
	{TFinished, Vanished, Vanished},
	// The operator's, on finished entries only (operator.go).
	{TRequeue, Rejected, Discovered},
	{TRequeue, Failed, Discovered},
	{TForget, Done, Done},
	{TForget, Failed, Failed},
}

// PartRule is one legal move of a part.
type PartRule struct {
	T        Transition
	From, To PartState
}

// partTable is the from → to table of a part's states (PartAllowed).
var partTable = [...]PartRule{
	{TPartSubmitted, PartPending, PartSubmitted},
	{TPartSubmitted, PartSubmitted, PartSubmitted},
	{TPartAccepted, PartSubmitted, PartAccepted},
	{TPartStatus, PartAccepted, PartAccepted},
	{TRecordsCreated, PartSubmitted, PartSubmitted},
	{TRecordsAdopted, PartSubmitted, PartSubmitted},
	{TPartFinal, PartSubmitted, PartCompleted},
	{TPartFinal, PartSubmitted, PartFailed},
	{TPartFinal, PartSubmitted, PartCanceled},
	{TPartFinal, PartAccepted, PartCompleted},
	{TPartFinal, PartAccepted, PartFailed},
	{TPartFinal, PartAccepted, PartCanceled},
}

// Allowed reports whether transition t may take an unfinished entry from
// state from to state to; for Requeue and Forget, a finished one.
func Allowed(t Transition, from, to State) bool {
	switch t {
	case TBegin, TEnd, TRetry, TRenewed, TWake:
		return from == to
	}
	for _, r := range table {
		if r == (Rule{t, from, to}) {
			return true
		}
	}
	return false
}

// PartAllowed reports whether transition t may take a part from state from
// to state to.
func PartAllowed(t Transition, from, to PartState) bool {
	for _, r := range partTable {
		if r == (PartRule{t, from, to}) {
			return true
		}
	}
	return false
}

// TransitionError is a transition the table refuses.
type TransitionError struct {
	ID       string
	T        Transition
	From, To string // states of the entry, or of the part when Part >= 0
	Part     int    // -1 for the entry itself
	Finished bool
	Reason   string // set when the table allows it but the entry does not
}

func (e *TransitionError) Error() string {
	what := "entry"
	if e.Part >= 0 {
		what = fmt.Sprintf("part %d", e.Part)
	}
	s := fmt.Sprintf("%s %s: %s from %s to %s", e.T, e.ID, what, e.From, e.To)
	switch {
	case e.Finished:
		s += ": the drop is finished"
	case e.Reason != "":
		s += ": " + e.Reason
	}
	return s + ": " + ErrTransition.Error()
}

// Is makes errors.Is(err, ErrTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrTransition }

// apply runs fn on entry id inside one write transaction and commits the
// entry fn leaves, capped; an error from fn changes nothing.
func (l *Ledger) apply(id string, fn func(tx *bolt.Tx, e *Entry) error) (*Entry, error) {
	var out *Entry
	err := l.db.Update(func(tx *bolt.Tx) error {
		e, err := get(tx, id)
		if err != nil {
			return err
		}
		from := e.State
		if err := fn(tx, e); err != nil {
			return err
		}
		if err := l.notices(tx, from, e); err != nil {
			return err
		}
		e.clip()
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
		return nil, fmt.Errorf("ledger %s: %w", id, err)
	}
	return out, nil
}

// move takes e to state to by transition t when the table allows it, and
// records the event.
func (l *Ledger) move(e *Entry, t Transition, to State, note string) error {
	if e.Finished || !Allowed(t, e.State, to) {
		return &TransitionError{ID: e.ID, T: t, From: string(e.State), To: string(to), Part: -1, Finished: e.Finished}
	}
	e.Updated = l.now()
	if to != e.State || note != "" {
		e.addEvent(Event{At: e.Updated, State: to, Note: note})
	}
	e.State = to
	return nil
}

// movePart takes e's part i to st by t, after moving the entry by t to
// Uploading.
func (l *Ledger) movePart(e *Entry, i int, t Transition, st PartState, note string) error {
	if i < 0 || i >= len(e.Parts) {
		return &TransitionError{ID: e.ID, T: t, From: "?", To: string(st), Part: i, Reason: fmt.Sprintf("the drop has %d parts", len(e.Parts))}
	}
	if !PartAllowed(t, e.Parts[i].State, st) {
		return &TransitionError{ID: e.ID, T: t, From: string(e.Parts[i].State), To: string(st), Part: i}
	}
	if err := l.move(e, t, Uploading, note); err != nil {
		return err
	}
	e.Parts[i].State = st
	e.progress()
	return nil
}

// progress clears what counted towards setting the drop aside: it moved
// on.
func (e *Entry) progress() {
	e.Step, e.Crashes, e.Failures, e.Attempts = "", 0, 0, 0
	e.LastError, e.NextTry = "", time.Time{}
	e.WaitingFor, e.WaitingSince = "", time.Time{}
}

// Claimed implements Store.
func (l *Ledger) Claimed(id, key, etag string, size int64) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		if err := l.move(e, TClaimed, Claimed, key); err != nil {
			return err
		}
		e.Key, e.ETag, e.Size = key, etag, size
		e.progress()
		return nil
	})
}

// Fetched implements Store. Both outcomes happen in one transaction, so
// two drops of the same bytes can never both pass.
func (l *Ledger) Fetched(id, sha string) (*Entry, error) {
	return l.apply(id, func(tx *bolt.Tx, e *Entry) error {
		shas := tx.Bucket(bucketSHA)
		if owner := shas.Get([]byte(sha)); owner != nil && string(owner) != id {
			prev, err := get(tx, string(owner))
			if err == nil && holdsBytes(tx, prev) {
				if err := l.move(e, TFetched, Duplicate, "same bytes as "+prev.ID); err != nil {
					return err
				}
				e.SHA256, e.DuplicateOf = sha, prev.ID
				e.progress()
				return nil
			}
			if err == nil {
				e.Generation = prev.Generation + 1
			}
		}
		if err := l.move(e, TFetched, Fetched, "sha256 "+sha); err != nil {
			return err
		}
		e.SHA256 = sha
		e.progress()
		return shas.Put([]byte(sha), []byte(id))
	})
}

// holdsBytes reports whether drop e has imported its bytes or may still do
// so. A rejected or failed drop imported nothing (Zuora's file import is
// atomic), so the same bytes may be dropped again; but a failed drop that
// was split into parts may have had some of them imported, and sending
// those again would double them. A failed drop whose records were created
// one by one is the exception: the ledger knows each of them, and a drop
// of the same bytes takes them over (RecordsAdopted) and sends only the
// others.
func holdsBytes(tx *bolt.Tx, e *Entry) bool {
	if !e.Forgotten.IsZero() {
		// An operator let these bytes be taken again.
		return false
	}
	switch e.State {
	case Rejected, Vanished, Duplicate, Discovered, Claimed:
		return false
	case Failed:
		if b := tx.Bucket(bucketRecords).Bucket([]byte(e.ID)); b != nil {
			if k, _ := b.Cursor().First(); k != nil {
				return false
			}
		}
		for _, p := range e.Parts {
			if p.State == PartCompleted {
				return true
			}
		}
		return false
	}
	return true
}

// Refetch implements Store. It is a step back, not progress: what counts
// towards setting the drop aside is kept.
func (l *Ledger) Refetch(id, note string) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		return l.move(e, TRefetch, Claimed, note)
	})
}

// Converted implements Store.
func (l *Ledger) Converted(id string, c Conversion) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		for i, p := range c.Parts {
			if p.State != PartPending {
				return &TransitionError{ID: id, T: TConverted, From: "", To: string(p.State), Part: i, Reason: "a new part must be pending"}
			}
		}
		if err := l.move(e, TConverted, Converted, c.Note); err != nil {
			return err
		}
		e.Parts, e.Records, e.Warnings = c.Parts, c.Records, c.Warnings
		e.progress()
		return nil
	})
}

// Rejected implements Store.
func (l *Ledger) Rejected(id string, problems int, warnings []string, note string) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		if err := l.move(e, TRejected, Rejected, note); err != nil {
			return err
		}
		e.Problems, e.Warnings = problems, warnings
		e.progress()
		return nil
	})
}

// PartSubmitted implements Store.
func (l *Ledger) PartSubmitted(id string, i int, at time.Time) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		name := ""
		if i >= 0 && i < len(e.Parts) {
			name = e.Parts[i].Name
		}
		if err := l.movePart(e, i, TPartSubmitted, PartSubmitted, "submitting "+name); err != nil {
			return err
		}
		e.Parts[i].SubmittedAt = at
		return nil
	})
}

// PartAccepted implements Store.
func (l *Ledger) PartAccepted(id string, i int, r Receipt) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		if err := l.movePart(e, i, TPartAccepted, PartAccepted, "accepted as "+r.ImportID); err != nil {
			return err
		}
		p := &e.Parts[i]
		p.ImportID, p.StatusURL, p.RequestID, p.TrackID = r.ImportID, r.StatusURL, r.RequestID, r.TrackID
		return nil
	})
}

// PartStatus implements Store.
func (l *Ledger) PartStatus(id string, i int, zuoraStatus string) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		if err := l.movePart(e, i, TPartStatus, PartAccepted, ""); err != nil {
			return err
		}
		e.Parts[i].ZuoraStatus = zuoraStatus
		return nil
	})
}

// PartFinal implements Store.
func (l *Ledger) PartFinal(id string, i int, st PartState, message string, imported int) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		name := ""
		if i >= 0 && i < len(e.Parts) {
			name = e.Parts[i].Name
		}
		if err := l.movePart(e, i, TPartFinal, st, name+" "+string(st)); err != nil {
			return err
		}
		p := &e.Parts[i]
		p.ZuoraStatus, p.Message, p.Imported = string(st), message, imported
		return nil
	})
}

// Outcome implements Store. Done needs every part Completed.
func (l *Ledger) Outcome(id string, s State, note string, finished bool) (*Entry, error) {
	return l.apply(id, func(tx *bolt.Tx, e *Entry) error {
		if s == Done {
			for i, p := range e.Parts {
				if p.State != PartCompleted {
					return &TransitionError{ID: id, T: TOutcome, From: string(e.State), To: string(s), Part: -1,
						Reason: fmt.Sprintf("part %d is %s, not Completed", i, p.State)}
				}
			}
		}
		if s == Done {
			// Every record is in Zuora and the bytes are known by their
			// hash: no later drop needs the records one by one.
			if err := dropRecords(tx, id); err != nil {
				return err
			}
		}
		return l.outcome(e, s, note, finished)
	})
}

func (l *Ledger) outcome(e *Entry, s State, note string, finished bool) error {
	if err := l.move(e, TOutcome, s, note); err != nil {
		return err
	}
	e.progress()
	e.Finished = finished
	if s == Failed {
		e.LastError = note
	}
	return nil
}

// Finished implements Store.
func (l *Ledger) Finished(id, finalKey, note string) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		if err := l.move(e, TFinished, e.State, note); err != nil {
			return err
		}
		e.Step, e.NextTry, e.WaitingFor, e.WaitingSince = "", time.Time{}, "", time.Time{}
		e.Finished, e.FinalKey = true, finalKey
		return nil
	})
}

// Renewed implements Store.
func (l *Ledger) Renewed(id, etag string) (*Entry, error) {
	return l.apply(id, func(_ *bolt.Tx, e *Entry) error {
		if err := l.move(e, TRenewed, e.State, ""); err != nil {
			return err
		}
		e.ETag = etag
		return nil
	})
}
