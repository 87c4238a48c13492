package ledger

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"usagedrop/internal/safetext"
)

// Caps on what one entry stores, so that no drop can make the ledger, the
// status page or `status` large. Everything above them is dropped with a
// note of how much.
const (
	// MaxText is the most bytes kept of a note, an error, a warning or a
	// message from Zuora.
	MaxText = 1024
	// MaxHistory is the most events kept in an entry's history: the first
	// historyHead and the latest, the ones between counted in Folded.
	MaxHistory = 64
	// MaxWarnings is the most warnings kept per entry.
	MaxWarnings = 10

	historyHead = 8
)

// Text is s as the ledger stores a note, an error or a message: escaped
// for display (a name in it may hold any bytes) and clipped to MaxText.
// Text that needs no escape but for its backslashes is kept as it is, so
// that an error quoting a name already escaped is not escaped twice.
func Text(s string) string {
	c := safetext.Clip(s, MaxText)
	if bare := strings.ReplaceAll(c, `\`, ""); safetext.Name(bare) != bare {
		return safetext.Line(s, MaxText)
	}
	return c
}

// addEvent appends to e's history, folding the oldest events after the
// first few once it is full.
func (e *Entry) addEvent(ev Event) {
	ev.Note = Text(ev.Note)
	e.History = append(e.History, ev)
	if over := len(e.History) - MaxHistory; over > 0 {
		e.History = append(e.History[:historyHead], e.History[historyHead+over:]...)
		e.Folded += over
	}
}

// clip applies the caps to the text an entry holds.
func (e *Entry) clip() {
	e.LastError = Text(e.LastError)
	if len(e.Warnings) > MaxWarnings {
		n := len(e.Warnings) - MaxWarnings + 1
		e.Warnings = append(e.Warnings[:MaxWarnings-1], Text(strconv.Itoa(n)+" more warnings"))
	}
	for i := range e.Warnings {
		e.Warnings[i] = Text(e.Warnings[i])
	}
	for i := range e.Parts {
		e.Parts[i].Message = Text(e.Parts[i].Message)
	}
}

// entryJSON is Entry without its methods, so that the methods below can
// use the default encoding for everything but the names.
type entryJSON Entry

// wireEntry is an Entry as stored: names that are not valid UTF-8 are
// shown escaped in name/key/final_key and kept exactly in the _b64 fields.
type wireEntry struct {
	*entryJSON
	NameB64     string `json:"name_b64,omitempty"`
	KeyB64      string `json:"key_b64,omitempty"`
	FinalKeyB64 string `json:"final_key_b64,omitempty"`
}

// MarshalJSON keeps names as their raw bytes (see the package doc).
func (e Entry) MarshalJSON() ([]byte, error) {
	c := entryJSON(e)
	w := wireEntry{entryJSON: &c}
	c.Name, w.NameB64 = rawName(e.Name)
	c.Key, w.KeyB64 = rawName(e.Key)
	c.FinalKey, w.FinalKeyB64 = rawName(e.FinalKey)
	return json.Marshal(w)
}

// UnmarshalJSON restores names stored by MarshalJSON.
func (e *Entry) UnmarshalJSON(b []byte) error {
	w := wireEntry{entryJSON: (*entryJSON)(e)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	for _, f := range []struct {
		dst *string
		b64 string
	}{{&e.Name, w.NameB64}, {&e.Key, w.KeyB64}, {&e.FinalKey, w.FinalKeyB64}} {
		if f.b64 == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(f.b64)
		if err != nil {
			return err
		}
		*f.dst = string(raw)
	}
	return nil
}

// rawName returns what to store for s: s itself when JSON keeps it, else
// its escaped form to show and its bytes in base64. A NUL is valid UTF-8
// and JSON keeps it as \u0000, but PostgreSQL's JSONB refuses it.
func rawName(s string) (shown, b64 string) {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s, ""
	}
	return safetext.Name(s), base64.StdEncoding.EncodeToString([]byte(s))
}
