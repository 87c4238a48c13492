package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"usagedrop/convert"
	"usagedrop/internal/atomicfile"
	"usagedrop/internal/safetext"
	"usagedrop/ledger"
	"usagedrop/sources"
	"usagedrop/uploader"
)

// step does the one thing e's state calls for and commits its result. It
// returns a wait when the entry must be looked at again later for a reason
// that is not a failure (an import still processing), and an error for a
// failure worth retrying. Final failures are committed as outcomes.
func (p *Pipeline) step(ctx context.Context, src *Source, e *ledger.Entry) (time.Duration, error) {
	if e.State.Outcome() {
		return 0, p.finish(ctx, src, e)
	}
	switch e.State {
	case ledger.Discovered:
		return 0, p.claim(ctx, src, e)
	case ledger.Claimed:
		return 0, p.fetch(ctx, src, e)
	case ledger.Fetched:
		return 0, p.convert(ctx, src, e)
	case ledger.Converted, ledger.Uploading:
		return p.upload(ctx, src, e)
	}
	return 0, fmt.Errorf("entry %s in unknown state %q", e.ID, e.State)
}

func (p *Pipeline) claim(ctx context.Context, src *Source, e *ledger.Entry) error {
	o := sources.Object{Source: e.Source, Key: e.Key, Name: e.Name, Size: e.Size, ETag: e.ETag}
	c, err := src.Src.Claim(ctx, o)
	if errors.Is(err, fs.ErrNotExist) {
		// A crash may have come between the claim and its commit: the
		// file is then already ours.
		o.Key = path.Join("processing", p.opt.Instance, e.Name)
		if held, herr := p.heldBy(e, o.Key); herr != nil || held != "" {
			if herr != nil {
				return herr
			}
			return p.outcome(e.ID, ledger.Vanished, "the file is already being worked on as "+held, true)
		}
		c, err = src.Src.Claim(ctx, o)
		if errors.Is(err, sources.ErrChanged) {
			// Ours, but written to since it was listed: hand it back.
			if _, err := p.opt.Ledger.Claimed(e.ID, o.Key, e.ETag, e.Size); err != nil {
				return err
			}
			return p.outcome(e.ID, ledger.Failed, stillChanging, false)
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.release(e.Source, e.Key)
		return p.outcome(e.ID, ledger.Vanished, goneNote(e), true)
	case errors.Is(err, sources.ErrChanged):
		p.release(e.Source, e.Key)
		return p.outcome(e.ID, ledger.Vanished, changedNote(e), true)
	case errors.Is(err, sources.ErrClaimed):
		mine := path.Join("processing", p.opt.Instance, e.Name)
		if held, herr := p.heldBy(e, mine); herr != nil || held != "" {
			// An earlier drop of the same name is still ours in
			// processing/: wait for it to finish.
			return errors.Join(fmt.Errorf("claim: an earlier %s is still being worked on: %w", e.Name, err), herr)
		}
		if key, herr := p.claimedBefore(ctx, src, e); herr != nil || key != "" {
			// Claimed by the instance this drop was taken over from,
			// which died before it could commit the claim.
			if herr != nil {
				return herr
			}
			if _, err := p.opt.Ledger.Claimed(e.ID, key, e.ETag, e.Size); err != nil {
				return err
			}
			p.log.Info("the file was claimed by the instance the drop was taken over from; working it where it is", "id", e.ID, "key", safetext.Name(key))
			p.release(e.Source, e.Key)
			p.opt.Hook("claimed")
			return nil
		}
		// Another live instance has it; should it die, its lapsed claim
		// is listed again and becomes a new drop here.
		p.release(e.Source, e.Key)
		return p.outcome(e.ID, ledger.Vanished, "another instance took the file: "+err.Error(), true)
	case err != nil:
		return fmt.Errorf("claim: %w", sourceError{err})
	}
	if _, err = p.opt.Ledger.Claimed(e.ID, c.Key, c.ETag, c.Size); err != nil {
		return err
	}
	p.release(e.Source, e.Key)
	p.opt.Hook("claimed")
	return nil
}

// heldBy returns the id of another unfinished entry that holds key on e's
// source, or "".
func (p *Pipeline) heldBy(e *ledger.Entry, key string) (string, error) {
	active, err := p.opt.Ledger.Active()
	if err != nil {
		return "", err
	}
	for _, x := range active {
		if x.ID != e.ID && x.Source == e.Source && x.Key == key {
			return x.ID, nil
		}
	}
	return "", nil
}

// spoolDir holds a drop's working copy and parts until it is finished.
func (p *Pipeline) spoolDir(e *ledger.Entry) string { return filepath.Join(p.opt.Spool, e.ID) }

func (p *Pipeline) originalPath(e *ledger.Entry) string {
	return filepath.Join(p.spoolDir(e), "original")
}

// fetch copies the claimed file into the spool, hashing it as it streams.
// A torn copy never takes the final name.
func (p *Pipeline) fetch(ctx context.Context, src *Source, e *ledger.Entry) error {
	if p.opt.Caps.TooLarge(e.Size) != "" {
		// Refused from its listed size, before a byte fills the spool.
		return p.outcome(e.ID, ledger.Failed, p.tooLarge(e, e.Size), false)
	}
	rc, err := src.Src.Open(ctx, e.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return p.outcome(e.ID, ledger.Failed, "the file disappeared from "+path.Dir(e.Key)+" before it could be read", true)
	}
	if err != nil {
		err = sourceError{err}
	} else {
		defer rc.Close()
		var sha string
		var n int64
		sha, n, err = p.spoolCopy(e, rc)
		if errors.Is(err, errTooLarge) {
			return p.outcome(e.ID, ledger.Failed, p.tooLarge(e, n), false)
		}
		if err == nil {
			// One more look, now that the copy is whole: a write that came
			// after the read ended would otherwise go unseen.
			err = p.reclaim(ctx, src, e)
		}
		if err == nil {
			return p.fetched(e, sha)
		}
	}
	if errors.Is(err, sources.ErrChanged) {
		// Still being written after it had been quiet for the whole
		// settle period: whatever we read may be a prefix. Nothing is
		// sent; the user gets the file back in failed/ with the reason.
		return p.outcome(e.ID, ledger.Failed, stillChanging, false)
	}
	return fmt.Errorf("fetch %s: %w", safetext.Name(e.Key), err)
}

// spoolCopy copies rc, the file at e.Key, to the drop's spooled copy,
// hashing it as it streams, and returns its sha256 and size. A torn copy
// never takes the final name. Read errors are the source's, write errors
// the spool's. The copy stops one byte past max_file_size (errTooLarge):
// a file that grew after it was listed is refused without filling the
// spool.
func (p *Pipeline) spoolCopy(e *ledger.Entry, rc io.Reader) (sha string, n int64, err error) {
	dst := p.originalPath(e)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return "", 0, err
	}
	h := sha256.New()
	limit := p.opt.Caps.WithDefaults().MaxFileSize
	err = atomicfile.Write(dst, 0o600, func(w io.Writer) error {
		var err error
		n, err = io.Copy(io.MultiWriter(w, h), io.LimitReader(sourceReader{rc}, limit+1))
		if err == nil && n > limit {
			err = errTooLarge
		}
		return err
	})
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// errTooLarge stops a spool copy that passed Caps.MaxFileSize.
var errTooLarge = errors.New("the file is larger than max_file_size")

const stillChanging = "the file was still changing after it was taken, so it may have been incomplete; " +
	"nothing was sent. Drop it again once it is complete (programs that write slowly should write under a .part or .tmp name and rename the file when done)"

// fetched records the spooled copy's hash, which also decides whether the
// same bytes were already taken.
func (p *Pipeline) fetched(e *ledger.Entry, sha string) error {
	e, err := p.opt.Ledger.Fetched(e.ID, sha)
	if err != nil {
		return err
	}
	p.opt.Hook("fetched")
	if e.State == ledger.Duplicate {
		p.log.Warn("same bytes already taken", "id", e.ID, "name", safetext.Name(e.Name), "duplicate_of", e.DuplicateOf,
			"hint", "usagedrop forget "+e.DuplicateOf+" -yes lets these bytes be dropped and imported again")
	}
	return nil
}

// convertSpooled converts f, the drop's spooled copy, with the source's
// reading settings, into parts in the drop's spool. A crash mid-convert
// leaves half-written parts, so it starts clean.
func (p *Pipeline) convertSpooled(ctx context.Context, src *Source, e *ledger.Entry, f *os.File) (*convert.Result, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	partsDir := filepath.Join(p.spoolDir(e), "parts")
	if err := os.RemoveAll(partsDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(partsDir, 0o750); err != nil {
		return nil, err
	}
	read := src.Read
	read.Caps = p.opt.Caps
	return convert.Convert(ctx, e.Name, uploadID(e), f, fi.Size(), read, p.opt.Template, p.opt.Limits, partsDir)
}

// convert validates the spooled copy and writes its parts. The parts and
// their idempotency keys are committed together, before anything is sent.
func (p *Pipeline) convert(ctx context.Context, src *Source, e *ledger.Entry) error {
	f, err := os.Open(p.originalPath(e))
	if err != nil {
		// The spool is ours; losing it means fetching again.
		_, uerr := p.opt.Ledger.Refetch(e.ID, "spool copy missing; fetching again")
		return errors.Join(fmt.Errorf("open spooled copy: %w", err), uerr)
	}
	defer f.Close()
	p.opt.Hook("converting " + e.Name)
	res, err := p.convertSpooled(ctx, src, e, f)
	if err == nil && ctx.Err() != nil {
		// Stopped mid-file: whatever was found is not the file's fault.
		err = ctx.Err()
	}
	if err != nil {
		if ctx.Err() == nil {
			err = fileError{err}
		}
		return fmt.Errorf("convert: %w", err)
	}
	if res.Rejected() {
		if err := writeErrorsCSV(filepath.Join(p.spoolDir(e), "errors.csv"), res.Summary); err != nil {
			return err
		}
		note := rejectNote(res.Summary)
		_, err := p.opt.Ledger.Rejected(e.ID, len(res.Problems)+res.MoreProblems, ignoredWarning(res.Ignored), note)
		if err == nil {
			// An operator reading the log sees rejections as plainly as
			// imports, with the first reason.
			p.log.Warn("drop rejected; nothing was sent", "id", e.ID, "source", e.Source, "name", safetext.Name(e.Name),
				"problems", len(res.Problems)+res.MoreProblems, "first", safetext.Line(note, 512))
			p.opt.Hook("rejected")
		}
		return err
	}
	parts := make([]ledger.Part, len(res.Parts))
	for i, cp := range res.Parts {
		parts[i] = ledger.Part{
			Index: cp.Index, Name: cp.Name, Path: cp.Path, Size: cp.Size, SHA256: cp.SHA256,
			Records: cp.Records, State: ledger.PartPending,
			IdempotencyKey: idempotencyKey(e, cp.Index),
		}
	}
	_, err = p.opt.Ledger.Converted(e.ID, ledger.Conversion{
		Parts: parts, Records: res.Records, Warnings: ignoredWarning(res.Ignored),
		Note: fmt.Sprintf("%d records in %d part(s)", res.Records, len(parts)),
	})
	if err == nil {
		p.opt.Hook("converted")
	}
	return err
}

// idempotencyKey is derived from the bytes, the generation and the part:
// stable across restarts, and the same on every instance, so that if a
// daemon dies after sending a part and another takes the file over, Zuora
// replays the first answer instead of importing twice. The generation
// makes a re-drop after a failed import a new request: within 24 h Zuora
// would otherwise replay the failure.
func idempotencyKey(e *ledger.Entry, part int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "usagedrop\x00%s\x00%d\x00%d", e.SHA256, e.Generation, part))
	return "ud-" + hex.EncodeToString(h[:20])
}

// uploadID is the short string in every upload name of a drop. Like the
// idempotency key it comes from the bytes, so an instance that takes a
// file over finds an import the first one made by its name.
func uploadID(e *ledger.Entry) string {
	id := e.SHA256[:8]
	if e.Generation > 0 {
		id += fmt.Sprintf("g%d", e.Generation)
	}
	return id
}

// keyTTL is how long we trust Zuora to remember an idempotency key (24 h,
// with a margin). Past it, a part whose answer was lost is looked up by
// name before it is sent again.
const keyTTL = 23 * time.Hour

// upload sends the parts one after another, each only once the one before
// it has Completed, so that a failed part stops the rest.
func (p *Pipeline) upload(ctx context.Context, src *Source, e *ledger.Entry) (time.Duration, error) {
	if len(e.Parts) == 0 {
		// convert rejects a file without rows; should one get here, say so
		// rather than call nothing an import.
		return 0, p.outcome(e.ID, ledger.Failed, "the file gave no usage records to send; nothing was sent", false)
	}
	if err := p.respool(ctx, src, e); err != nil {
		return 0, err
	}
	for i := range e.Parts {
		part := e.Parts[i]
		switch {
		case part.State == ledger.PartCompleted:
			continue
		case part.State.Final():
			return 0, p.outcome(e.ID, ledger.Failed, fmt.Sprintf("part %d %s: %s", part.Index+1, part.State, part.Message), false)
		case part.State == ledger.PartAccepted:
			return p.poll(ctx, e, i)
		default:
			return 0, p.submit(ctx, src, e, i)
		}
	}
	return 0, p.outcome(e.ID, ledger.Done, fmt.Sprintf("%d records imported", e.Records), false)
}

func (p *Pipeline) submit(ctx context.Context, src *Source, e *ledger.Entry, i int) error {
	part := e.Parts[i]
	if part.State == ledger.PartPending {
		// Before anything is sent, make sure the file is still ours: a
		// daemon that was stopped for longer than the lease may have lost
		// it to another instance, which then imports it.
		if lost, err := p.lostClaim(ctx, src, e); lost || err != nil {
			return err
		}
		if _, err := p.opt.Ledger.PartSubmitted(e.ID, i, time.Now()); err != nil {
			return err
		}
		p.opt.Hook("submitted")
	}
	var r uploader.Receipt
	found := false
	// Look before sending when the first send may have landed under a key
	// Zuora has forgotten, or another instance may have sent it.
	if f, ok := p.opt.Uploader.(uploader.Finder); ok && (e.TakenOver ||
		part.State == ledger.PartSubmitted && time.Since(part.SubmittedAt) > keyTTL) {
		var err error
		if r, found, err = f.Find(ctx, part.Name); err != nil {
			return fmt.Errorf("look up %s: %w", part.Name, err)
		}
	}
	if rs, ok := p.opt.Uploader.(uploader.RecordSubmitter); ok && !found {
		var err error
		if r, err = p.submitRecords(ctx, rs, e, i); errors.Is(err, errPartFailed) {
			return nil
		} else if err != nil {
			return err
		}
	} else if !found {
		var err error
		r, err = p.opt.Uploader.Submit(ctx, p.upPart(e, part), part.IdempotencyKey)
		if err != nil {
			if uploader.IsRetryable(err) || ctx.Err() != nil {
				return err
			}
			return p.failPart(e.ID, i, ledger.PartFailed, err.Error())
		}
	}
	_, err := p.opt.Ledger.PartAccepted(e.ID, i, ledger.Receipt{
		ImportID: r.ImportID, StatusURL: r.StatusURL, RequestID: r.RequestID, TrackID: r.TrackID,
	})
	if err == nil {
		p.log.Info("part accepted", "id", e.ID, "part", part.Name, "import", r.ImportID, "zuora_request_id", r.RequestID)
		p.opt.Hook("accepted")
	}
	return err
}

// upPart is part pt of e as the uploader takes it.
func (p *Pipeline) upPart(e *ledger.Entry, pt ledger.Part) uploader.Part {
	return uploader.Part{Name: pt.Name, Path: p.partFile(e, pt), Size: pt.Size, SHA256: pt.SHA256, Records: pt.Records}
}

// maxObjectRecords caps the records of one drop sent through the object
// API: each is a call (Zuora's API sandbox allows 10,000 a day), and each
// is kept in the ledger until the drop is done (about 170 bytes of ledger
// file a record, measured).
const maxObjectRecords = 100_000

// recordsFile keeps, in the spool until the drop is finished, what became
// of each record of a part the object API stopped on: the ledger keeps
// only a clipped note, and the report lists Zuora's ids.
const recordsFile = "records.txt"

// maxListedIDs is how many Zuora ids of created records the report lists.
const maxListedIDs = 1000

// submitRecords sends part i through an API that creates records one by
// one (the object API): records a Failed drop already created are taken
// over, records this drop created on an earlier try are skipped, and each
// record Zuora creates is committed as it comes back. A record Zuora
// refuses fails the part, its report saying which records are in Zuora;
// any other error is retried, since the records' keys make that safe.
func (p *Pipeline) submitRecords(ctx context.Context, rs uploader.RecordSubmitter, e *ledger.Entry, i int) (uploader.Receipt, error) {
	part := e.Parts[i]
	if e.Records > maxObjectRecords && i == 0 {
		return uploader.Receipt{}, p.failRecords(e.ID, i, fmt.Sprintf("the file holds %d usage records; the object API takes one call per record, "+
			"and usagedrop sends at most %d records of one file that way; split the file, or use the file import (api: file); nothing was sent",
			e.Records, maxObjectRecords))
	}
	// A record's id counts the identical records before it in the whole
	// drop, so the parts before this one are read too (from the spool).
	seen := map[string]int{}
	var ids []string
	first := 0
	for j := 0; j <= i; j++ {
		got, err := rs.RecordIDs(p.upPart(e, e.Parts[j]), seen)
		if err != nil {
			return uploader.Receipt{}, p.failRecords(e.ID, i, err.Error()+"; nothing of this part was sent")
		}
		if j < i {
			first += len(got)
		}
		ids = got
	}
	if a, err := p.opt.Ledger.RecordsAdopted(e.ID, i, ids); err != nil {
		return uploader.Receipt{}, err
	} else if a.Records > 0 {
		p.log.Info("records already in Zuora", "id", e.ID, "part", part.Name, "records", a.Records, "from", a.From)
	}
	done, err := p.opt.Ledger.Records(e.ID)
	if err != nil {
		return uploader.Receipt{}, err
	}
	notes := &recordNotes{led: p.opt.Ledger, id: e.ID, part: i, last: time.Now()}
	r, err := rs.SubmitRecords(ctx, p.upPart(e, part), part.IdempotencyKey, ids, done, notes.add)
	if ferr := notes.flush(); ferr != nil {
		// Never fail the part, nor call it done, with records in Zuora
		// the ledger does not know: the next try is answered under the
		// same keys and notes them.
		return uploader.Receipt{}, errors.Join(ferr, err)
	}
	var (
		re *uploader.RecordsError
		ue *uploader.Error
	)
	switch {
	case err == nil:
		return r, nil
	case errors.As(err, &re) && ctx.Err() == nil:
		lines := re.Detail(first, maxListedIDs)
		if first > 0 {
			// The parts before this one Completed: all theirs are in.
			lines = append([]string{fmt.Sprintf("records 1-%d were created in Zuora (the file's earlier parts)", first)}, lines...)
		}
		detail := strings.Join(lines, "\n")
		if err := atomicfile.WriteBytes(filepath.Join(p.spoolDir(e), recordsFile), 0o600, []byte(detail+"\n")); err != nil {
			return uploader.Receipt{}, err
		}
		return uploader.Receipt{}, p.failRecords(e.ID, i, part.Name+": "+strings.Join(re.Detail(first, 0), "; "))
	case errors.As(err, &ue) && !ue.Retryable && ctx.Err() == nil:
		// Refused before a record could be sent (the part unreadable).
		return uploader.Receipt{}, p.failRecords(e.ID, i, err.Error())
	}
	return uploader.Receipt{}, err
}

// recordNotes commits the records Zuora creates in groups: one commit
// (and fsync) per record would bound the object API to the disk's fsync
// rate. A record created but not committed yet when the daemon dies is
// sent again under the same key on the next try, and Zuora answers it
// with the id it gave: the group only delays the note, it loses nothing.
type recordNotes struct {
	led  ledger.Store
	id   string
	part int

	mu      sync.Mutex
	pending []ledger.CreatedRecord
	last    time.Time
}

// Notes are committed every noteEvery records or notePeriod, whichever
// comes first, and when the part's submit returns.
const (
	noteEvery  = 100
	notePeriod = time.Second
)

func (n *recordNotes) add(c uploader.CreatedRecord) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending = append(n.pending, ledger.CreatedRecord{Key: c.ID, ZuoraID: c.ZuoraID})
	if len(n.pending) < noteEvery && time.Since(n.last) < notePeriod {
		return nil
	}
	return n.flushLocked()
}

func (n *recordNotes) flush() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.flushLocked()
}

func (n *recordNotes) flushLocked() error {
	if len(n.pending) == 0 {
		return nil
	}
	if err := n.led.RecordsCreated(n.id, n.part, n.pending); err != nil {
		return err
	}
	n.pending, n.last = n.pending[:0], time.Now()
	return nil
}

// errPartFailed says submitRecords committed the part's failure.
var errPartFailed = errors.New("the part failed")

// failRecords fails part i and returns errPartFailed, or the ledger's
// error.
func (p *Pipeline) failRecords(id string, i int, msg string) error {
	if err := p.failPart(id, i, ledger.PartFailed, msg); err != nil {
		return err
	}
	return errPartFailed
}

func (p *Pipeline) failPart(id string, i int, st ledger.PartState, msg string) error {
	_, err := p.opt.Ledger.PartFinal(id, i, st, msg, 0)
	return err
}

// poll asks Zuora once where part i stands; while it is not final the
// entry comes back after a growing wait.
func (p *Pipeline) poll(ctx context.Context, e *ledger.Entry, i int) (time.Duration, error) {
	part := e.Parts[i]
	st, err := p.opt.Uploader.Status(ctx, uploader.Receipt{
		ImportID: part.ImportID, StatusURL: part.StatusURL, RequestID: part.RequestID, TrackID: part.TrackID,
	})
	if err != nil {
		return 0, fmt.Errorf("status of %s: %w", part.Name, err)
	}
	if !st.State.Final() {
		if string(st.State) != part.ZuoraStatus {
			if _, err := p.opt.Ledger.PartStatus(e.ID, i, string(st.State)); err != nil {
				return 0, err
			}
		} else if e.WaitingFor != "" {
			// Zuora answers again: the entry no longer waits for it.
			if _, err := p.opt.Ledger.End(e.ID); err != nil {
				return 0, err
			}
		}
		age := time.Since(part.SubmittedAt)
		return min(p.opt.PollMax, max(200*time.Millisecond, age/4)), nil
	}
	_, err = p.opt.Ledger.PartFinal(e.ID, i, ledger.PartState(st.State), st.Message, st.Imported)
	if err == nil {
		p.log.Info("import finished", "id", e.ID, "part", part.Name, "import", part.ImportID, "status", st.State, "message", ledger.Text(st.Message))
		p.opt.Hook("polled")
	}
	return 0, err
}

// lostClaim renews e's claim and reports whether another instance has
// taken the file; if so the drop is closed as Vanished, nothing sent.
func (p *Pipeline) lostClaim(ctx context.Context, src *Source, e *ledger.Entry) (bool, error) {
	if p.fleet != nil {
		// The ledger's lease decides (fleet.go): a drop not held is left
		// to its holder, not closed.
		return !p.holds(e.ID), nil
	}
	err := p.reclaim(ctx, src, e)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, sources.ErrClaimed), errors.Is(err, fs.ErrNotExist):
		return true, p.outcome(e.ID, ledger.Vanished, "another instance took the file over while this one was stopped; nothing was sent from here", true)
	case errors.Is(err, sources.ErrChanged):
		// Our own claimed copy changed: we hold the spooled bytes, which
		// are what we validated, so go on with those.
		return false, nil
	}
	return false, fmt.Errorf("renew claim: %w", sourceError{err})
}

// reclaim refreshes e's claim and records the object's new ETag (on some
// stores a refresh changes it).
func (p *Pipeline) reclaim(ctx context.Context, src *Source, e *ledger.Entry) error {
	if p.fleet != nil {
		// The ledger's lease decides who works the drop, and renewing
		// the source's claim would move a taken-over file (fleet.go).
		return nil
	}
	o := sources.Object{Source: e.Source, Key: e.Key, Name: e.Name, ETag: e.ETag, Size: e.Size}
	c, err := src.Src.Claim(ctx, o)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.renewed[e.ID] = time.Now()
	p.mu.Unlock()
	if c.ETag != e.ETag {
		_, err = p.opt.Ledger.Renewed(e.ID, c.ETag)
	}
	return err
}

// renewLoop refreshes the claims of every drop this instance is working
// on, a few times per lease, so that a long import or a long wait before a
// retry never lets another daemon take a file over.
func (p *Pipeline) renewLoop(ctx context.Context) {
	for {
		// Asked each time: a reload may add a source with a shorter lease.
		every := time.Hour
		for _, s := range p.sourceList() {
			if s.Lease > 0 {
				every = min(every, s.Lease/4)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(every, 100*time.Millisecond)):
		}
		active, err := p.opt.Ledger.Active()
		if err != nil {
			p.log.Warn("renew claims: ledger", "err", err)
			continue
		}
		for _, e := range active {
			src, done := p.use(e.Source) // not closed by a reload meanwhile
			if src != nil && src.Lease > 0 && e.State != ledger.Discovered && e.State != ledger.Vanished {
				p.renew(ctx, src, e)
			}
			done()
		}
	}
}

// renew refreshes e's claim when a third of its lease has passed.
func (p *Pipeline) renew(ctx context.Context, src *Source, e *ledger.Entry) {
	p.mu.Lock()
	last, ok := p.renewed[e.ID]
	if !ok {
		last = e.Updated
	}
	p.mu.Unlock()
	if time.Since(last) < src.Lease/3 {
		return
	}
	if err := p.reclaim(ctx, src, e); err != nil && ctx.Err() == nil {
		p.log.Warn("could not renew claim", "id", e.ID, "key", safetext.Name(e.Key), "err", err)
	}
}

// outcome commits a final state. Vanished drops have no file to move, so
// they are finished at once.
func (p *Pipeline) outcome(id string, s ledger.State, note string, finished bool) error {
	e, err := p.opt.Ledger.Outcome(id, s, note, finished)
	if err == nil {
		p.log.Info("outcome", "id", id, "state", s, "note", ledger.Text(note))
		if finished {
			p.opt.Metrics.finished(e)
			p.mu.Lock()
			delete(p.renewed, id)
			p.mu.Unlock()
			if err := os.RemoveAll(p.spoolDir(e)); err != nil {
				p.log.Warn("could not clear spool", "dir", p.spoolDir(e), "err", err)
			}
		}
		p.opt.Hook(string(s))
	}
	return err
}

// finish moves the file to imported/ or failed/ with its reports, then
// records that it did and clears the spool.
func (p *Pipeline) finish(ctx context.Context, src *Source, e *ledger.Entry) error {
	rep, err := p.reports(e)
	if err != nil {
		return err
	}
	final, err := src.Src.Finish(ctx, e.Key, sources.Outcome{Imported: e.State == ledger.Done, Reports: rep})
	if errors.Is(err, fs.ErrNotExist) {
		// A crash after the move and before its commit: already done.
		final, err = "", nil
	}
	if err != nil {
		return fmt.Errorf("finish: %w", sourceError{err})
	}
	e, err = p.opt.Ledger.Finished(e.ID, final, "moved to "+final)
	if err != nil {
		return err
	}
	p.opt.Metrics.finished(e)
	p.opt.Hook("finished")
	p.mu.Lock()
	delete(p.renewed, e.ID)
	p.mu.Unlock()
	if err := os.RemoveAll(p.spoolDir(e)); err != nil {
		p.log.Warn("could not clear spool", "dir", p.spoolDir(e), "err", err)
	}
	return nil
}
