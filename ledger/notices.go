package ledger

// # Notices
//
// The ledger is also the outbox of the notifications people are sent
// (package notify). The transaction that commits a Rejected or Failed
// outcome records a notice in the same commit, so an outcome is never
// committed without its notice nor a notice without its outcome; a drop
// stuck too long gets one through Notify. The notifier sends a notice to
// each of its targets and then marks that target delivered: a crash
// between the send and the mark sends it once more at the next start, and
// never more, since the mark is the next write. Marking is allowed in
// every state, finished or not, and notes the delivery in the drop's
// history. A notice stays, closed, while its drop is unfinished, so that
// a drop is told stuck once; finishing the drop forgets its closed
// notices.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// NoticeEvent is what a notice tells.
type NoticeEvent string

// Notice events.
const (
	NoticeRejected NoticeEvent = "rejected" // failed validation; nothing was sent
	NoticeFailed   NoticeEvent = "failed"   // Zuora failed an import, or the drop was set aside
	NoticeStuck    NoticeEvent = "stuck"    // not finished long after it was dropped
)

// Notice is one event to tell people about, in the outbox until the
// notifier closes it.
type Notice struct {
	// Key is DropID/Event: one notice per drop and event.
	Key    string      `json:"key"`
	DropID string      `json:"drop_id"`
	Event  NoticeEvent `json:"event"`
	At     time.Time   `json:"at"`
	// Targets holds where each target stands, by the target's name; a
	// target not there has not been tried yet.
	Targets map[string]Delivery `json:"targets,omitempty"`
	// Closed is set once every target has the notice or was given up.
	Closed bool `json:"closed,omitempty"`
}

// Delivery is where one target of a notice stands.
type Delivery struct {
	Attempts  int       `json:"attempts,omitempty"`
	NextTry   time.Time `json:"next_try,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Done is when the target got the notice, or was given up (GaveUp).
	Done   time.Time `json:"done,omitzero"`
	GaveUp bool      `json:"gave_up,omitempty"`
}

// TNotice marks a notice's delivery. It is allowed in every state,
// finished or not, and never moves the drop.
const TNotice Transition = "Notice"

var bucketNotices = []byte("notices") // DropID/Event → Notice (JSON)

// NoticeKey is the key of drop id's notice of ev.
func NoticeKey(id string, ev NoticeEvent) string { return id + "/" + string(ev) }

// notices is the hook apply runs in every transition's transaction: an
// entry that has just come to Rejected or Failed gets its notice, and one
// that has just finished forgets its closed notices.
func (m *Machine) notices(tx Tx, from State, e *Entry) error {
	if e.State != from {
		switch e.State {
		case Rejected:
			if _, err := m.addNotice(tx, e.ID, NoticeRejected); err != nil {
				return err
			}
		case Failed:
			if _, err := m.addNotice(tx, e.ID, NoticeFailed); err != nil {
				return err
			}
		}
	}
	if !e.Finished {
		return nil
	}
	ns, err := tx.NoticesOf(e.ID)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n.Closed {
			if err := tx.DeleteNotice(n.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// addNotice records drop id's notice of ev unless there is one already.
func (m *Machine) addNotice(tx Tx, id string, ev NoticeEvent) (bool, error) {
	key := NoticeKey(id, ev)
	_, err := tx.Notice(key)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	return true, tx.PutNotice(&Notice{Key: key, DropID: id, Event: ev, At: m.now()})
}

// Notify implements Store.
func (m *Machine) Notify(id string, ev NoticeEvent) (bool, error) {
	added := false
	err := m.update(func(tx Tx) error {
		if _, err := tx.Entry(id); err != nil {
			return err
		}
		var err error
		added, err = m.addNotice(tx, id, ev)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("ledger %s: notice %s: %w", id, ev, err)
	}
	return added, nil
}

// Notices implements Store.
func (l *Ledger) Notices() ([]Notice, error) {
	var out []Notice
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNotices)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var n Notice
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("decode notice %s: %w", k, err)
			}
			if !n.Closed {
				out = append(out, n)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("ledger notices: %w", err)
	}
	return out, nil
}

// NoticeTried implements Store.
func (m *Machine) NoticeTried(key, target, errText string, next time.Time) (*Notice, error) {
	return m.applyNotice(key, target, func(d *Delivery) string {
		d.Attempts++
		d.LastError, d.NextTry = Text(errText), next
		return ""
	})
}

// NoticeDelivered implements Store.
func (m *Machine) NoticeDelivered(key, target string) (*Notice, error) {
	return m.applyNotice(key, target, func(d *Delivery) string {
		d.Attempts++
		d.Done, d.NextTry, d.LastError = m.now(), time.Time{}, ""
		return fmt.Sprintf("%s notice sent to %s", eventOf(key), target)
	})
}

// NoticeGaveUp implements Store.
func (m *Machine) NoticeGaveUp(key, target, why string) (*Notice, error) {
	return m.applyNotice(key, target, func(d *Delivery) string {
		d.Done, d.GaveUp, d.NextTry, d.LastError = m.now(), true, time.Time{}, Text(why)
		return fmt.Sprintf("%s notice to %s given up: %s", eventOf(key), target, why)
	})
}

// NoticeClosed implements Store.
func (m *Machine) NoticeClosed(key string) error {
	err := m.update(func(tx Tx) error {
		n, err := tx.Notice(key)
		if err != nil {
			return err
		}
		if n.Closed {
			return nil
		}
		n.Closed = true
		e, err := entryOrNil(tx, n.DropID)
		if err != nil {
			return err
		}
		if e == nil || e.Finished {
			// Nothing can be told about a finished drop again.
			return tx.DeleteNotice(key)
		}
		return tx.PutNotice(n)
	})
	if err != nil {
		return fmt.Errorf("ledger notice %s: %w", key, err)
	}
	return nil
}

// applyNotice runs fn on target's delivery of notice key, and adds the
// note fn returns, if any, to the history of the notice's drop, in one
// transaction. A closed notice, or a target that has it or was given up,
// takes no more: that is a TransitionError.
func (m *Machine) applyNotice(key, target string, fn func(d *Delivery) string) (*Notice, error) {
	var out *Notice
	err := m.update(func(tx Tx) error {
		n, err := tx.Notice(key)
		if err != nil {
			return err
		}
		d := n.Targets[target]
		if n.Closed || !d.Done.IsZero() {
			return &TransitionError{ID: n.DropID, T: TNotice, From: "notice " + string(n.Event), To: target, Part: -1,
				Reason: "the notice was delivered or given up already"}
		}
		note := fn(&d)
		if n.Targets == nil {
			n.Targets = map[string]Delivery{}
		}
		n.Targets[target] = d
		e, err := entryOrNil(tx, n.DropID)
		if err != nil {
			return err
		}
		// A drop pruned meanwhile has no history left to note it in.
		if note != "" && e != nil {
			// The drop does not move, and its Updated stays: a
			// notice is not progress.
			e.addEvent(Event{At: m.now(), State: e.State, Note: note})
			if err := tx.PutEntry(e); err != nil {
				return err
			}
		}
		out = n
		return tx.PutNotice(n)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger notice %s: %w", key, err)
	}
	return out, nil
}

func getNotice(tx *bolt.Tx, key string) (*bolt.Bucket, *Notice, error) {
	b := tx.Bucket(bucketNotices)
	var v []byte
	if b != nil {
		v = b.Get([]byte(key))
	}
	if v == nil {
		return nil, nil, fmt.Errorf("notice %s: %w", key, ErrNotFound)
	}
	var n Notice
	if err := json.Unmarshal(v, &n); err != nil {
		return nil, nil, fmt.Errorf("decode notice %s: %w", key, err)
	}
	return b, &n, nil
}

// eventOf is the event part of a notice key.
func eventOf(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}
