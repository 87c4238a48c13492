package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"usagedrop/internal/safetext"
	"usagedrop/ledger"
)

// A fleet of daemons on one shared ledger (ledger.Leaser): each daemon
// works only the drops it holds, and holds a drop while its heartbeat
// renews the lease in the ledger. The ledger's lease is the one that
// decides who works a drop, not the source's claim:
//
//   - The source's lease (an hour by default) is compared with the
//     store's clock, and its renewal is the wrong tool for a drop taken
//     over: on a folder, Claim of processing/DEAD/NAME moves the file into
//     this instance's folder, under a key the ledger does not know, and
//     on S3 the dead daemon's claim object refuses the claim until its
//     hour is up. Open and Finish work on the dead daemon's key as it is,
//     which is all a survivor needs, so with leases no step renews the
//     source's claim (reclaim, renewLoop).
//   - A claim whose source lease runs out while the drop is still being
//     worked on is listed again as stale, but the ledger admits one
//     active drop per file (ErrHeld), so no second drop is made of it.
//   - A daemon that cannot renew (the database is unreachable, or it was
//     stopped for longer than the lease) stops taking steps once its last
//     renewal is a lease old, measured on its own monotonic clock from
//     before the renewal was sent; another instance may by then hold the
//     drop. A step already under way when the process was stopped ends
//     after it is continued: its side effect is one the new holder's
//     idempotency keys and find-by-name rules answer for, and the
//     transition that follows it is checked against the drop's state.
//
// The spool is each daemon's own: a drop taken over after it was
// converted has no parts here, and they are made again from the file on
// the source (respool), checked against the sums the ledger holds.
type fleet struct {
	l     ledger.Leaser
	lease time.Duration

	mu     sync.Mutex
	held   map[string]bool   // ids this instance held at its last renewal, or made since
	at     time.Time         // when the last renewal that succeeded was sent
	parked map[string]bool   // held ids advance left for want of a fresh lease
	from   map[string]string // taken-over id → the instance whose lease ran out
	// added is when each id was made or taken over here: one added after
	// a renewal was sent is held even if the renewal did not return it.
	added map[string]time.Time
}

// acquireBatch is how many lapsed drops one heartbeat takes over at most:
// the other survivors take the rest on theirs.
const acquireBatch = 64

// newFleet returns the lease state for st, or nil when st is a ledger of
// one daemon.
func newFleet(st ledger.Store) *fleet {
	l, ok := st.(ledger.Leaser)
	if !ok || l.Lease() <= 0 {
		return nil
	}
	return &fleet{l: l, lease: l.Lease(), held: map[string]bool{}, parked: map[string]bool{}, from: map[string]string{}, added: map[string]time.Time{}}
}

// holds reports whether this instance may take a step on drop id: its
// lease is fresh. Without a fleet everything is held.
func (p *Pipeline) holds(id string) bool {
	f := p.fleet
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[id] && time.Since(f.at) < f.lease
}

// hold records that this instance holds id (it made the drop).
func (p *Pipeline) hold(id string) {
	if f := p.fleet; f != nil {
		f.mu.Lock()
		f.held[id], f.added[id] = true, time.Now()
		f.mu.Unlock()
	}
}

// unhold forgets id, finished.
func (p *Pipeline) unhold(id string) {
	if f := p.fleet; f != nil {
		f.mu.Lock()
		delete(f.held, id)
		delete(f.added, id)
		delete(f.from, id)
		f.mu.Unlock()
	}
}

// park leaves id until the next renewal says whether it is still held.
func (p *Pipeline) park(id string) {
	f := p.fleet
	f.mu.Lock()
	f.parked[id] = true
	f.mu.Unlock()
}

// renewLeases renews this instance's leases and returns the drops it no
// longer holds, and those to be worked again: the parked ones it still
// holds, and any it holds without knowing (an operator sent a finished
// drop again, from the command line).
func (p *Pipeline) renewLeases() (lost, resume []string, err error) {
	f := p.fleet
	sent := time.Now()
	ids, err := f.l.Renew()
	if err != nil {
		return nil, nil, err
	}
	now := make(map[string]bool, len(ids))
	for _, id := range ids {
		now[id] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, at := range f.added {
		if at.After(sent) {
			now[id] = true // made here while the renewal ran
		} else {
			delete(f.added, id)
		}
	}
	for id := range f.held {
		if !now[id] {
			lost = append(lost, id)
		}
	}
	for id := range f.parked {
		if now[id] {
			resume = append(resume, id)
		}
		delete(f.parked, id)
	}
	for id := range now {
		if !f.held[id] && !slices.Contains(resume, id) {
			resume = append(resume, id)
		}
	}
	for id := range f.from {
		if !now[id] {
			delete(f.from, id)
		}
	}
	f.held, f.at = now, sent
	return lost, resume, nil
}

// acquire takes over lapsed drops and returns them.
func (p *Pipeline) acquire() ([]*ledger.Entry, error) {
	f := p.fleet
	got, err := f.l.Acquire(acquireBatch)
	if err != nil {
		return nil, err
	}
	out := make([]*ledger.Entry, 0, len(got))
	f.mu.Lock()
	for _, a := range got {
		f.held[a.Entry.ID], f.added[a.Entry.ID] = true, time.Now()
		if a.From != "" && a.From != f.l.Instance() {
			f.from[a.Entry.ID] = a.From
		}
		out = append(out, a.Entry)
	}
	f.mu.Unlock()
	for _, a := range got {
		from := a.From
		if from == "" {
			from = "(no instance)"
		}
		p.log.Warn("took over a drop whose lease ran out", "id", a.Entry.ID, "name", safetext.Name(a.Entry.Name),
			"state", a.Entry.State, "from", from)
	}
	return out, nil
}

// resumable returns the drops Run resumes: every active one for a daemon
// alone, and for one of a fleet those it held (a restart within the
// lease) and those whose lease ran out.
func (p *Pipeline) resumable() ([]*ledger.Entry, error) {
	if p.fleet == nil {
		return p.opt.Ledger.Active()
	}
	if _, _, err := p.renewLeases(); err != nil {
		return nil, err
	}
	active, err := p.opt.Ledger.Active()
	if err != nil {
		return nil, err
	}
	var mine []*ledger.Entry
	for _, e := range active {
		if p.holds(e.ID) {
			mine = append(mine, e)
		}
	}
	got, err := p.acquire()
	if err != nil {
		return nil, err
	}
	return append(mine, got...), nil
}

// leaseLoop is a fleet daemon's heartbeat: a few times per lease it
// renews its leases and takes over drops whose lease ran out. It is the
// only loop that looks for them.
func (p *Pipeline) leaseLoop(ctx context.Context) {
	f := p.fleet
	tick := time.NewTicker(f.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lost, resume, err := p.renewLeases()
		if err != nil {
			p.log.Warn("could not renew leases; steps stop once the last renewal is a lease old", "lease", f.lease, "err", err)
			continue
		}
		for _, id := range lost {
			p.log.Warn("another instance holds a drop this one was working on; leaving it", "id", id)
		}
		got, err := p.acquire()
		if err != nil {
			p.log.Warn("could not take over lapsed drops", "err", err)
		}
		for _, e := range got {
			resume = append(resume, e.ID)
		}
		if len(resume) > 0 {
			go func() {
				for _, id := range resume {
					p.enqueue(ctx, id)
				}
			}()
		}
	}
}

// claimedBefore finds the file of drop e, taken over in state Discovered,
// that the instance whose lease ran out had claimed on the source without
// committing it: the source then says another instance holds it, and
// that instance's claim is this very drop's, since the ledger admits one
// active drop per file. It returns the file's key, or "" when it is not
// there. Nothing is claimed again: the ledger's lease decides (see the top
// of this file); on S3 the claim object stays until Finish.
func (p *Pipeline) claimedBefore(ctx context.Context, src *Source, e *ledger.Entry) (string, error) {
	f := p.fleet
	if f == nil || e.State != ledger.Discovered {
		return "", nil
	}
	f.mu.Lock()
	from := f.from[e.ID]
	f.mu.Unlock()
	if from == "" {
		return "", nil
	}
	// S3 claims by a claim object and keeps the key; folders move the
	// file into processing/OWNER/.
	for _, key := range []string{e.Key, path.Join("processing", from, e.Name)} {
		rc, err := src.Src.Open(ctx, key)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
			continue
		}
		if err != nil {
			return "", sourceError{err}
		}
		rc.Close()
		return key, nil
	}
	return "", nil
}

// partFile is where part pt of e is read from. A fleet daemon reads its
// own spool: the ledger holds the path of the spool the drop was
// converted in, perhaps another machine's.
func (p *Pipeline) partFile(e *ledger.Entry, pt ledger.Part) string {
	if p.fleet == nil {
		return pt.Path
	}
	return filepath.Join(p.spoolDir(e), "parts", pt.Name)
}

// respool makes again, from the file on the source, the parts of a drop
// this daemon took over after it was converted elsewhere: the same bytes
// (the sha256 the ledger holds) converted the same way give the same
// parts, which is checked part by part, so the idempotency keys and
// upload names the ledger holds still name what is sent.
func (p *Pipeline) respool(ctx context.Context, src *Source, e *ledger.Entry) error {
	if p.fleet == nil {
		return nil
	}
	missing := false
	for _, pt := range e.Parts {
		if pt.State == ledger.PartPending || pt.State == ledger.PartSubmitted {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	missing = false
	for _, pt := range e.Parts {
		if _, err := os.Stat(p.partFile(e, pt)); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	p.log.Info("making the parts again from the file on the source: the drop was converted on another instance",
		"id", e.ID, "name", safetext.Name(e.Name), "key", safetext.Name(e.Key))
	rc, err := src.Src.Open(ctx, e.Key)
	if err != nil {
		return fmt.Errorf("respool: %w", sourceError{err})
	}
	defer rc.Close()
	sum, _, err := p.spoolCopy(e, rc)
	if err != nil {
		return fmt.Errorf("respool %s: %w", safetext.Name(e.Key), err)
	}
	if sum != e.SHA256 {
		return fmt.Errorf("respool %s: the file on the source is not the one converted (sha256 %s, the ledger holds %s)",
			safetext.Name(e.Key), sum, e.SHA256)
	}
	f, err := os.Open(p.originalPath(e))
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := p.convertSpooled(ctx, src, e, f)
	if err != nil {
		return fmt.Errorf("respool: convert: %w", err)
	}
	if len(res.Parts) != len(e.Parts) {
		return fmt.Errorf("respool %s: converted here it gives %d parts, where it gave %d: do the instances of the fleet share one config?",
			safetext.Name(e.Name), len(res.Parts), len(e.Parts))
	}
	for i, cp := range res.Parts {
		if cp.SHA256 != e.Parts[i].SHA256 || cp.Name != e.Parts[i].Name {
			return fmt.Errorf("respool %s: part %d converted here differs from the one converted before: do the instances of the fleet share one config?",
				safetext.Name(e.Name), i+1)
		}
	}
	return nil
}
