package ledger

import (
	"fmt"
	"time"
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
	{TRequeue, Duplicate, Discovered},
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

// progress clears what counted towards setting the drop aside: it moved
// on.
func (e *Entry) progress() {
	e.Step, e.Crashes, e.Failures, e.Attempts = "", 0, 0, 0
	e.LastError, e.NextTry = "", time.Time{}
	e.WaitingFor, e.WaitingSince = "", time.Time{}
}

// Claimed implements Store.
func (m *Machine) Claimed(id, key, etag string, size int64) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.move(e, TClaimed, Claimed, key); err != nil {
			return err
		}
		e.Key, e.ETag, e.Size = key, etag, size
		e.progress()
		return nil
	})
}

// Fetched implements Store. Both outcomes happen in one transaction, so
// two drops of the same bytes can never both pass.
func (m *Machine) Fetched(id, sha string) (*Entry, error) {
	return m.apply(id, func(tx Tx, e *Entry) error {
		owner, err := tx.Owner(sha)
		if err != nil {
			return err
		}
		if owner != "" && owner != id {
			prev, err := entryOrNil(tx, owner)
			if err != nil {
				return err
			}
			holds := false
			if prev != nil {
				if holds, err = holdsBytes(tx, prev); err != nil {
					return err
				}
			}
			if holds {
				if err := m.move(e, TFetched, Duplicate, "same bytes as "+prev.ID); err != nil {
					return err
				}
				e.SHA256, e.DuplicateOf = sha, prev.ID
				e.progress()
				return nil
			}
			if prev != nil {
				e.Generation = prev.Generation + 1
			}
		}
		if err := m.move(e, TFetched, Fetched, "sha256 "+sha); err != nil {
			return err
		}
		e.SHA256 = sha
		e.progress()
		return tx.SetOwner(sha, id)
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
func holdsBytes(tx Tx, e *Entry) (bool, error) {
	if !e.Forgotten.IsZero() {
		// An operator let these bytes be taken again.
		return false, nil
	}
	switch e.State {
	case Rejected, Vanished, Duplicate, Discovered, Claimed:
		return false, nil
	case Failed:
		has, err := tx.HasRecords(e.ID)
		if err != nil || has {
			return false, err
		}
		for _, p := range e.Parts {
			if p.State == PartCompleted {
				return true, nil
			}
		}
		return false, nil
	}
	return true, nil
}

// Refetch implements Store. It is a step back, not progress: what counts
// towards setting the drop aside is kept.
func (m *Machine) Refetch(id, note string) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		return m.move(e, TRefetch, Claimed, note)
	})
}

// Converted implements Store.
func (m *Machine) Converted(id string, c Conversion) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		for i, p := range c.Parts {
			if p.State != PartPending {
				return &TransitionError{ID: id, T: TConverted, From: "", To: string(p.State), Part: i, Reason: "a new part must be pending"}
			}
		}
		if err := m.move(e, TConverted, Converted, c.Note); err != nil {
			return err
		}
		e.Parts, e.Records, e.Warnings = c.Parts, c.Records, c.Warnings
		e.progress()
		return nil
	})
}

// Rejected implements Store.
func (m *Machine) Rejected(id string, problems int, warnings []string, note string) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.move(e, TRejected, Rejected, note); err != nil {
			return err
		}
		e.Problems, e.Warnings = problems, warnings
		e.progress()
		return nil
	})
}

// PartSubmitted implements Store.
func (m *Machine) PartSubmitted(id string, i int, at time.Time) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		name := ""
		if i >= 0 && i < len(e.Parts) {
			name = e.Parts[i].Name
		}
		if err := m.movePart(e, i, TPartSubmitted, PartSubmitted, "submitting "+name); err != nil {
			return err
		}
		e.Parts[i].SubmittedAt = at
		return nil
	})
}

// PartAccepted implements Store.
func (m *Machine) PartAccepted(id string, i int, r Receipt) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.movePart(e, i, TPartAccepted, PartAccepted, "accepted as "+r.ImportID); err != nil {
			return err
		}
		p := &e.Parts[i]
		p.ImportID, p.StatusURL, p.RequestID, p.TrackID = r.ImportID, r.StatusURL, r.RequestID, r.TrackID
		return nil
	})
}

// PartStatus implements Store.
func (m *Machine) PartStatus(id string, i int, zuoraStatus string) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.movePart(e, i, TPartStatus, PartAccepted, ""); err != nil {
			return err
		}
		e.Parts[i].ZuoraStatus = zuoraStatus
		return nil
	})
}

// PartFinal implements Store.
func (m *Machine) PartFinal(id string, i int, st PartState, message string, imported int) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		name := ""
		if i >= 0 && i < len(e.Parts) {
			name = e.Parts[i].Name
		}
		if err := m.movePart(e, i, TPartFinal, st, name+" "+string(st)); err != nil {
			return err
		}
		p := &e.Parts[i]
		p.ZuoraStatus, p.Message, p.Imported = string(st), message, imported
		return nil
	})
}

// Outcome implements Store. Done needs every part Completed.
func (m *Machine) Outcome(id string, s State, note string, finished bool) (*Entry, error) {
	return m.apply(id, func(tx Tx, e *Entry) error {
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
			if err := tx.DropRecords(id); err != nil {
				return err
			}
		}
		return m.outcome(e, s, note, finished)
	})
}

func (m *Machine) outcome(e *Entry, s State, note string, finished bool) error {
	if err := m.move(e, TOutcome, s, note); err != nil {
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
func (m *Machine) Finished(id, finalKey, note string) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.move(e, TFinished, e.State, note); err != nil {
			return err
		}
		e.Step, e.NextTry, e.WaitingFor, e.WaitingSince = "", time.Time{}, "", time.Time{}
		e.Finished, e.FinalKey = true, finalKey
		return nil
	})
}

// Renewed implements Store.
func (m *Machine) Renewed(id, etag string) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.move(e, TRenewed, e.State, ""); err != nil {
			return err
		}
		e.ETag = etag
		return nil
	})
}
