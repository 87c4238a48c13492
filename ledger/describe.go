package ledger

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// objectReceiptPrefix starts the ImportID of a part whose records were
// created one by one (uploader.ObjectReceiptPrefix; the ledger does not
// import the uploader, a test keeps the two equal). Such a part has no
// import id to show.
const objectReceiptPrefix = "object:"

// setAsideSuffix ends the reason of a drop set aside (setAside).
const setAsideSuffix = "; it was set aside"

// Describe says in plain words, on one line, where the drop stands: the
// words the status page and `usagedrop status` show. Times are in loc
// (UTC when nil), to the minute, with the date when it is not today.
func (e *Entry) Describe(loc *time.Location) string {
	return e.describe(loc, time.Now())
}

func (e *Entry) describe(loc *time.Location, now time.Time) string {
	if loc == nil {
		loc = time.UTC
	}
	at := func(t time.Time) string { return clock(t, loc, now) }
	s := e.stateWords()
	if !e.State.Outcome() {
		switch {
		case e.WaitingFor != "":
			s = fmt.Sprintf("waiting for %s since %s", e.WaitingFor, at(e.WaitingSince))
		case e.Attempts > 0 && e.LastError != "":
			s += " — the last try failed"
		}
		if e.Attempts > 0 && !e.NextTry.IsZero() {
			s += fmt.Sprintf(" — try %d at %s", e.Attempts+1, at(e.NextTry))
		}
		return s
	}
	if !e.Finished {
		if e.State == Done {
			s += " — being moved to imported/"
		} else if e.State != Vanished {
			s += " — being moved to failed/ with its report"
		}
	}
	return s
}

// stateWords is the drop's state alone, without waits and retries.
func (e *Entry) stateWords() string {
	switch e.State {
	case Discovered:
		return "found; being taken from the drop folder"
	case Claimed:
		return "taken from the drop folder; being copied"
	case Fetched:
		return "converting"
	case Converted:
		return fmt.Sprintf("converted %s; sending to Zuora", plural(e.Records, "row", "rows"))
	case Uploading:
		return e.uploadingWords()
	case Done:
		return e.doneWords()
	case Rejected:
		return "rejected: " + plural(e.Problems, "problem", "problems")
	case Failed:
		return e.failedWords()
	case Duplicate:
		if e.DuplicateOf == "" {
			return "duplicate: the same bytes were already taken"
		}
		return "duplicate of drop " + e.DuplicateOf
	case Vanished:
		return "gone: the file went away before it could be taken"
	}
	return string(e.State)
}

// uploadingWords counts the parts Zuora has finished and says what the
// latest one still running is doing.
func (e *Entry) uploadingWords() string {
	done, status := 0, ""
	for _, p := range e.Parts {
		switch {
		case p.State.Final():
			done++
		case p.State == PartAccepted && status == "":
			status = "Zuora is importing it"
			if p.ZuoraStatus != "" {
				status = "Zuora says " + p.ZuoraStatus
			}
		}
	}
	s := "sending to Zuora"
	if len(e.Parts) > 1 {
		s += fmt.Sprintf(": %d of %d parts done", done, len(e.Parts))
	}
	if status != "" {
		s += " — " + status
	}
	return s
}

func (e *Entry) doneWords() string {
	rows := 0
	for _, p := range e.Parts {
		rows += p.Imported
	}
	if rows == 0 {
		rows = e.Records
	}
	s := "imported " + plural(rows, "row", "rows")
	switch ids := e.ImportIDs(); len(ids) {
	case 0:
		if len(e.Parts) > 0 && strings.HasPrefix(e.Parts[0].ImportID, objectReceiptPrefix) {
			s += " (one record at a time)"
		}
	case 1:
		s += " (import " + ids[0] + ")"
	default:
		s += fmt.Sprintf(" (%d imports: %s)", len(ids), strings.Join(ids, ", "))
	}
	return s
}

// failedWords gives the reason the outcome was recorded with; a drop set
// aside says so first, one Zuora refused says it was Zuora.
func (e *Entry) failedWords() string {
	why := e.LastError
	if why == "" {
		for i := len(e.History) - 1; i >= 0 && why == ""; i-- {
			if e.History[i].State == Failed {
				why = e.History[i].Note
			}
		}
	}
	if i := strings.Index(why, setAsideSuffix); i >= 0 {
		return "set aside: " + strings.TrimPrefix(why[:i], "this file ")
	}
	if why == "" {
		why = "no reason was recorded"
	}
	for _, p := range e.Parts {
		if p.State == PartFailed || p.State == PartCanceled {
			return "failed at Zuora: " + why
		}
	}
	return "failed: " + why
}

// ImportIDs returns the Zuora import ids of the drop's parts, in part
// order, leaving out parts sent one record at a time (they have none).
func (e *Entry) ImportIDs() []string {
	var ids []string
	for _, p := range e.Parts {
		if p.ImportID != "" && !strings.HasPrefix(p.ImportID, objectReceiptPrefix) {
			ids = append(ids, p.ImportID)
		}
	}
	return ids
}

// clock is t in loc to the minute, with the date when t is not on the
// same day as now, and always the zone's abbreviation, so that "14:05" is
// never read in the wrong zone.
func clock(t time.Time, loc *time.Location, now time.Time) string {
	t, now = t.In(loc), now.In(loc)
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return t.Format("15:04 MST")
	}
	return t.Format("2006-01-02 15:04 MST")
}

// plural is n with thousands separated by commas, then one or many.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Thousands(n) + " " + many
}

// Thousands writes n with commas between thousands: 1,250.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// HistoryFolded splits the history where the ledger folded it (see
// MaxHistory): the first events, then the latest; e.Folded counts the
// events dropped between them. Without a fold, tail is empty.
func (e *Entry) HistoryFolded() (head, tail []Event) {
	if e.Folded == 0 || len(e.History) <= historyHead {
		return e.History, nil
	}
	return e.History[:historyHead], e.History[historyHead:]
}
