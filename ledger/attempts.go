package ledger

import (
	"fmt"
	"time"

	"usagedrop/internal/safetext"
)

// Step is a piece of work the pipeline does on a drop.
type Step string

// Steps. Polling Zuora is not a step here: it only reads Zuora's answer,
// runs nothing of the file, and committing a Begin before every poll
// would double the ledger's writes while an import runs.
const (
	StepClaim   Step = "claim"
	StepFetch   Step = "fetch"
	StepConvert Step = "convert"
	StepUpload  Step = "upload"
	StepFinish  Step = "finish"
)

// while says in a user's words what was happening to the file in step s.
func (s Step) while() string {
	switch s {
	case StepClaim:
		return "being taken from the drop folder"
	case StepFetch:
		return "being copied"
	case StepConvert:
		return "being converted"
	case StepUpload:
		return "being sent to Zuora"
	case StepFinish:
		return "being moved to its final folder"
	}
	return "being worked on"
}

// Cause says whose fault a failed step was, which decides whether it
// counts towards setting the drop aside.
type Cause int

// Causes of a failed step.
const (
	// CauseOther is a failure of the daemon's own (a ledger write, a
	// bug): retried with backoff, never held against the file.
	CauseOther Cause = iota
	// CauseFile is a failure the file itself causes; MaxStarts of them
	// set the drop aside.
	CauseFile
	// CausePanic is a panic while working on the file: the drop is set
	// aside at once.
	CausePanic
	// CauseZuora, CauseSource and CauseSpace are outages, waited out.
	CauseZuora
	CauseSource
	CauseSpace
)

// waitingFor names what a drop waits for during an outage, as status
// shows it: "waiting for Zuora since ...".
func (c Cause) waitingFor() string {
	switch c {
	case CauseZuora:
		return "Zuora"
	case CauseSource:
		return "the drop folder"
	case CauseSpace:
		return "space in the spool"
	}
	return ""
}

// ShowWaitAfter is how many failed tries of an outage pass before the
// entry's LastError says what it is waiting for: one failed try is
// usually just a blip.
const ShowWaitAfter = 3

// Failure is one failed step, for Retry.
type Failure struct {
	Step  Step
	Cause Cause
	Err   string
	// Next is when the step will be tried again.
	Next time.Time
}

// Waiting returns "waiting for Zuora since 2026-12-01 14:05 UTC" while the
// drop waits out an outage, or "".
func (e *Entry) Waiting() string {
	if e.WaitingFor == "" {
		return ""
	}
	return fmt.Sprintf("waiting for %s since %s", e.WaitingFor, e.WaitingSince.UTC().Format("2006-01-02 15:04 UTC"))
}

// Begin implements Store.
func (m *Machine) Begin(id string, step Step) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.move(e, TBegin, e.State, ""); err != nil {
			return err
		}
		if e.Step != "" {
			e.Crashes++
			if e.Crashes >= m.maxStarts && mayFail(e) {
				return m.setAside(e, fmt.Sprintf("this file stopped the service %d times while %s; it was set aside", e.Crashes, e.Step.while()))
			}
		}
		e.Step = step
		return nil
	})
}

// End implements Store.
func (m *Machine) End(id string) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.move(e, TEnd, e.State, ""); err != nil {
			return err
		}
		e.Step, e.WaitingFor, e.WaitingSince = "", "", time.Time{}
		return nil
	})
}

// Retry implements Store.
func (m *Machine) Retry(id string, f Failure) (*Entry, error) {
	return m.apply(id, func(_ Tx, e *Entry) error {
		if err := m.move(e, TRetry, e.State, ""); err != nil {
			return err
		}
		e.Step = ""
		e.Attempts++
		e.NextTry = f.Next
		e.LastError = f.Err
		switch f.Cause {
		case CauseFile, CausePanic:
			e.Failures++
			e.WaitingFor, e.WaitingSince = "", time.Time{}
			if !mayFail(e) {
				return nil
			}
			if f.Cause == CausePanic {
				return m.setAside(e, fmt.Sprintf("usagedrop stopped on an internal error while this file was %s (%s); it was set aside", f.Step.while(), f.Err))
			}
			if e.Failures >= m.maxStarts {
				return m.setAside(e, fmt.Sprintf("this file failed %d times while %s (%s); it was set aside", e.Failures, f.Step.while(), f.Err))
			}
		case CauseOther:
			e.WaitingFor, e.WaitingSince = "", time.Time{}
		default:
			if w := f.Cause.waitingFor(); e.WaitingFor != w {
				e.WaitingFor, e.WaitingSince = w, m.now()
			}
			if e.Attempts >= ShowWaitAfter {
				e.LastError = e.Waiting() + ": " + f.Err
			}
		}
		return nil
	})
}

// mayFail reports whether e may be given a Failed outcome without losing
// track of an import: none of its parts is in Zuora's hands.
func mayFail(e *Entry) bool {
	for _, p := range e.Parts {
		if p.State == PartSubmitted || p.State == PartAccepted {
			return false
		}
	}
	return true
}

// setAside ends a drop that keeps stopping the service or failing: a
// Failed outcome whose reason is why, so the file goes to failed/ with its
// bytes. A drop that already has an outcome (its reports are what fail) is
// finished where it is.
func (m *Machine) setAside(e *Entry, why string) error {
	if e.State.Outcome() {
		e.addEvent(Event{At: m.now(), State: e.State, Note: why})
		e.Step, e.NextTry, e.WaitingFor, e.WaitingSince = "", time.Time{}, "", time.Time{}
		e.Finished, e.LastError = true, why+"; it was left at "+safetext.Name(e.Key)
		return nil
	}
	// The outcome is progress: finishing gets tries of its own.
	return m.outcome(e, Failed, why, false)
}
