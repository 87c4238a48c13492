package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The operator's transitions: what a person asks of a drop with
// `usagedrop retry` and `usagedrop forget`. They are checked against the
// same table as the pipeline's, and refuse with a reason a person reads.
const (
	// TWake is bookkeeping: an unfinished drop is tried now.
	TWake Transition = "Wake"
	// TRequeue takes a finished Rejected or Failed drop back to
	// Discovered, to be taken again from failed/.
	TRequeue Transition = "Requeue"
	// TForget lets a finished drop's bytes be taken again.
	TForget Transition = "Forget"
)

// MinSHAPrefix is the fewest hex digits of a sha256 BySHA256 takes:
// `status` shows twelve.
const MinSHAPrefix = 8

// ErrAmbiguous means a sha256 prefix matches the bytes of more than one
// drop.
var ErrAmbiguous = errors.New("more than one drop matches")

// Wake implements Store.
func (m *Machine) Wake(id, note string) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.move(e, TWake, e.State, note); err != nil {
			return err
		}
		e.NextTry = time.Time{}
		return nil
	})
}

// Requeue implements Store. The generation goes up by one: when this
// drop still owns its bytes it is the latest drop of them, so the new
// keys are unused; when a later drop owns them, Fetched sets the
// generation past that one's, or calls this drop a Duplicate if that one
// imported them.
func (m *Machine) Requeue(id, note string) (*Entry, error) {
	return m.apply(id, func(tx Tx, e *Entry) error {
		if why := requeueRefusal(tx, e); why != "" {
			return &TransitionError{ID: id, T: TRequeue, From: string(e.State), To: string(Discovered), Part: -1, Reason: why}
		}
		now := m.now()
		from := e.FinalKey
		e.Updated = now
		e.addEvent(Event{At: now, State: Discovered, Note: note + "; taken again from " + from})
		e.State, e.Key, e.FinalKey, e.Finished = Discovered, from, "", false
		e.Parts, e.Records, e.Problems, e.Warnings, e.DuplicateOf = nil, 0, 0, nil, ""
		e.Generation++
		e.Requeued++
		e.TakenOver = false
		e.progress()
		return nil
	})
}

// requeueRefusal says why e cannot be sent again, or "". A Duplicate may
// be sent again once the drop that owned its bytes was forgotten: that
// is what an operator who forgot it wants for the copy already dropped.
func requeueRefusal(tx Tx, e *Entry) string {
	if !e.Finished {
		return "it is still being worked on"
	}
	switch e.State {
	case Done:
		return "it was imported; sending it again would import its usage twice. To import the same bytes again on purpose, " +
			"forget it (usagedrop forget " + e.ID + " -yes) and drop the file again"
	case Duplicate:
		if orig, err := tx.Entry(e.DuplicateOf); err != nil || orig.Forgotten.IsZero() {
			return "it held the same bytes as drop " + e.DuplicateOf + ", so nothing of it was sent; retry that drop instead, " +
				"or forget that drop (usagedrop forget " + e.DuplicateOf + " -yes) and retry this one"
		}
	case Vanished:
		return "its file went away before it was taken, so there is nothing to send again"
	case Rejected, Failed:
	default:
		return "a drop that is " + string(e.State) + " cannot be sent again"
	}
	for _, p := range e.Parts {
		if p.State == PartCompleted {
			return fmt.Sprintf("part %d of %d was imported (import %s); sending the file again would import those rows twice",
				p.Index+1, len(e.Parts), p.ImportID)
		}
	}
	if e.FinalKey == "" {
		return "its file was not moved to failed/, so there is nothing to take again" + leftAt(e)
	}
	if !Allowed(TRequeue, e.State, Discovered) {
		return "the table does not allow it"
	}
	return ""
}

// leftAt says where a drop set aside in place left its file, if it did.
func leftAt(e *Entry) string {
	if _, at, ok := strings.Cut(e.LastError, "it was left at "); ok {
		return " (it was left at " + at + ")"
	}
	return ""
}

// Forget implements Store. The entry keeps owning its bytes in the
// sha256 index, so the next drop of them still counts its generation
// from this one's and gets idempotency keys Zuora has not seen: a drop
// of generation 0 again would be answered with this one's import.
func (m *Machine) Forget(id, note string) (*Entry, error) {
	return m.apply(id, func(tx Tx, e *Entry) error {
		if !e.Forgotten.IsZero() {
			return nil
		}
		if err := checkForget(tx, e); err != nil {
			return err
		}
		e.Updated, e.Forgotten = m.now(), m.now()
		e.addEvent(Event{At: e.Updated, State: e.State, Note: note})
		return nil
	})
}

// CanForget implements Store.
func (m *Machine) CanForget(id string) error {
	err := m.view(func(tx Tx) error {
		e, err := tx.Entry(id)
		if err != nil || !e.Forgotten.IsZero() {
			return err
		}
		return checkForget(tx, e)
	})
	if err != nil {
		return fmt.Errorf("ledger %s: %w", id, err)
	}
	return nil
}

// checkForget returns the TransitionError saying why e's bytes cannot be
// forgotten, or nil.
func checkForget(tx Tx, e *Entry) error {
	why, err := forgetRefusal(tx, e)
	if err != nil || why == "" {
		return err
	}
	return &TransitionError{ID: e.ID, T: TForget, From: string(e.State), To: string(e.State), Part: -1, Reason: why}
}

// forgetRefusal says why e's bytes cannot be forgotten, or "".
func forgetRefusal(tx Tx, e *Entry) (string, error) {
	switch {
	case e.State == Duplicate:
		return "it held the same bytes as drop " + e.DuplicateOf + " and sent nothing; forget that drop instead", nil
	case !e.Finished:
		return "it is still being worked on; forget it once it has finished", nil
	}
	holds, err := holdsBytes(tx, e)
	switch {
	case err != nil:
		return "", err
	case !holds:
		return "nothing of it was imported, so the same bytes may already be dropped again", nil
	case !Allowed(TForget, e.State, e.State):
		return "a drop that is " + string(e.State) + " holds no bytes to forget", nil
	}
	return "", nil
}

// BySHA256 implements Store.
func (l *Ledger) BySHA256(sum string) (string, error) {
	sum = strings.ToLower(strings.TrimSpace(sum))
	if len(sum) < MinSHAPrefix {
		return "", fmt.Errorf("sha256 %q: give at least %d hex digits: %w", sum, MinSHAPrefix, ErrNotFound)
	}
	var id string
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSHA).Cursor()
		k, v := c.Seek([]byte(sum))
		if k == nil || !bytes.HasPrefix(k, []byte(sum)) {
			return fmt.Errorf("sha256 %s: no drop has those bytes: %w", sum, ErrNotFound)
		}
		id = string(v)
		if k2, _ := c.Next(); k2 != nil && bytes.HasPrefix(k2, []byte(sum)) {
			return fmt.Errorf("sha256 %s: %w; give more digits", sum, ErrAmbiguous)
		}
		return nil
	})
	return id, err
}

// Resolve returns the entry ref names: an entry id, or the sha256 (or a
// prefix of it) of the bytes a drop owns.
func Resolve(s Store, ref string) (*Entry, error) {
	e, err := s.Get(ref)
	if !errors.Is(err, ErrNotFound) || !isHex(ref) {
		return e, err
	}
	id, serr := s.BySHA256(ref)
	if serr != nil {
		return nil, serr
	}
	return s.Get(id)
}

func isHex(s string) bool {
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}
