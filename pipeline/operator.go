package pipeline

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"usagedrop/internal/safetext"
	"usagedrop/ledger"
)

// What the pipeline does when an operator asks (`usagedrop retry`).
//
// A drop still being worked on is only woken: its next try is now. A
// finished rejection or failure is sent again by the ledger's Requeue,
// which takes it back to Discovered with its key where Finish moved the
// file (failed/NAME) and a new generation; the claim step then takes it
// from there as from the drop folder. Taking it from failed/ rather than
// asking for it to be dropped again keeps one entry, and so one history,
// for the file; and on the folder backends (local, SFTP) the claim is the
// same atomic rename into processing/OWNER/ as for a new drop, so two
// daemons never both take it and a file a user drops meanwhile under the
// same name is left alone. The ETag recorded at the last claim must
// still match: a file edited in failed/ is not taken (the user drops the
// new version instead). S3 keeps a claimed object at its key and has no
// atomic move: taking an object from failed/ would be a copy and a
// delete beside the live drops, which a user's new drop of the same name
// could fall between, so there the operator copies the file back into the
// drop folder, where the same bytes after a rejection or a failure are
// taken as a new drop under a new generation anyway.

// Retry wakes drop id when it is unfinished, or sends a finished
// rejection or failure again (ledger Requeue). sourceType is the config
// type of the drop's source ("local", "sftp", "s3"), "" when the config
// has no such source any more. A refusal is a
// *ledger.TransitionError whose Reason says why in plain words.
func Retry(st ledger.Store, id, sourceType string) (*ledger.Entry, error) {
	e, err := st.Get(id)
	if err != nil {
		return nil, err
	}
	if sourceType == "" {
		return nil, &ledger.TransitionError{ID: id, T: ledger.TWake, From: string(e.State), To: string(e.State), Part: -1,
			Reason: fmt.Sprintf("its source %s is not in the config, so no daemon would take it", safetext.Name(e.Source))}
	}
	if !e.Finished {
		return st.Wake(id, "an operator asked for a try now (usagedrop retry)")
	}
	if why := retakeRefusal(e, sourceType); why != "" {
		return nil, &ledger.TransitionError{ID: id, T: ledger.TRequeue, From: string(e.State), To: string(ledger.Discovered), Part: -1, Reason: why}
	}
	return st.Requeue(id, "sent again at an operator's request (usagedrop retry)")
}

// retakeRefusal says why the source cannot give e's file back, or "".
// The ledger decides everything else.
func retakeRefusal(e *ledger.Entry, sourceType string) string {
	if e.State != ledger.Rejected && e.State != ledger.Failed || e.FinalKey == "" {
		return ""
	}
	switch {
	case sourceType == "s3":
		return fmt.Sprintf("usagedrop cannot take a file back from failed/ on S3 (it has no atomic move); copy %s back into the drop folder "+
			"to send it again: the same bytes after a rejection or a failure are taken as a new drop", safetext.Name(e.FinalKey))
	case filepath.IsAbs(e.FinalKey) || path.IsAbs(e.FinalKey) || !filepath.IsLocal(filepath.FromSlash(e.FinalKey)):
		return fmt.Sprintf("its failed folder lies outside the drop folder; move %s back into the drop folder to send it again",
			safetext.Name(e.FinalKey))
	}
	return ""
}

// Wake has drop id looked at now, if the pipeline is running. A drop
// being worked on is not queued twice.
func (p *Pipeline) Wake(id string) {
	p.mu.Lock()
	ctx := p.runCtx
	p.mu.Unlock()
	if ctx != nil {
		// The queue may be full; the caller (an HTTP request) need not
		// wait for room.
		go p.enqueue(ctx, id)
	}
}

// goneNote is why a drop's file could not be claimed because it is gone.
func goneNote(e *ledger.Entry) string {
	if e.Requeued > 0 {
		return "the file is no longer at " + safetext.Name(e.Key) + ", where it was when it was sent again; drop it again to send it"
	}
	return "the file went away before it was taken"
}

// changedNote is why a drop's file was not claimed because it changed.
func changedNote(e *ledger.Entry) string {
	if e.Requeued > 0 && strings.Contains(e.Key, "/") {
		return "the file at " + safetext.Name(e.Key) + " changed after it was finished, so it was not taken again; " +
			"drop the changed file into the drop folder to send it"
	}
	return "the file changed before it was taken; it will be taken again once it settles"
}
