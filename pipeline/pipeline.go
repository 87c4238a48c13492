// Package pipeline moves every dropped file through the ledger's states.
//
// It wires the steps together and owns nothing of their insides: watchers
// offer complete files, each becomes a ledger entry, and a pool of workers
// takes entries one state at a time (claim, fetch, convert, upload, poll,
// finish), committing each transition before the side effect that follows
// it. On start every unfinished entry is resumed from its state; on stop
// the workers leave at the next step boundary and the ledger says where
// each file stands, so `systemctl stop` loses nothing.
//
// The pipeline decides when a drop moves; the ledger decides whether it
// may, and how many tries a drop gets. Before each step the worker
// commits ledger.Begin, so a file that kills the daemon is seen at the
// next start; drops caught mid-step by a crash are resumed first, one at
// a time, so the next crash is charged to the file that caused it and no
// other. A panic in a step is recovered and ends that drop, not the
// daemon. Every failure is classified once (classify): what the file
// causes is bounded, an outage of Zuora, a source or the spool's disk is
// waited out with backoff and shown as such.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"usagedrop/convert"
	"usagedrop/internal/safetext"
	"usagedrop/ledger"
	"usagedrop/sources"
	"usagedrop/uploader"
	"usagedrop/watcher"
)

// Source is one configured drop folder with its reading settings.
type Source struct {
	Src   sources.Source
	Watch watcher.Options
	Read  convert.Options
	Lease time.Duration // renew a held claim this often, at most
	// Closers release the backend. The pipeline calls them once no step
	// uses the source any more: when a reload replaced or removed it, or
	// when Run returns.
	Closers []func() error
}

// Close releases the backend: every closer runs, and their errors are
// joined.
func (s *Source) Close() error {
	var errs []error
	for _, f := range s.Closers {
		errs = append(errs, f())
	}
	return errors.Join(errs...)
}

// Options configure a Pipeline.
type Options struct {
	Ledger   ledger.Store
	Uploader uploader.Uploader
	// Sources are watched from the start; AddSource and RemoveSource
	// change them while Run runs.
	Sources []Source
	Spool   string
	// Instance is this daemon's owner name in processing/.
	Instance string
	Template convert.Template
	Limits   convert.Limits
	// Caps bound what one drop may cost (config limits:); zero fields
	// take convert's defaults.
	Caps    convert.Caps
	Workers int
	// PollMax is the longest wait between two status checks.
	PollMax time.Duration
	// RetryBase and RetryMax bound the wait before a step that failed
	// for a passing reason is tried again (full jitter).
	RetryBase, RetryMax time.Duration
	Logger              *slog.Logger
	// Metrics, if set, counts outcomes and retries.
	Metrics *Metrics
	// TimeZone is the zone of the times in the reports users read; nil
	// is UTC.
	TimeZone *time.Location
	// Hook, if set, is called after each committed transition with its
	// name ("claimed", "fetched", "submitted", ...), and as "converting
	// NAME" just before a file is converted. The crash and poison tests
	// use it to kill the daemon at every state in turn, or on one file.
	Hook func(point string)
}

// Pipeline runs the daemon's work.
type Pipeline struct {
	opt   Options
	log   *slog.Logger
	queue chan string
	beat  atomic.Int64 // unix nanoseconds of the last heartbeat

	// acceptMu is held while an offer becomes an entry, so that a removed
	// source is closed only once no entry of it can still appear.
	acceptMu sync.Mutex

	mu      sync.Mutex
	sources map[string]*live
	run     *running        // set while Run runs
	queued  map[string]bool // entry ids queued or being worked on
	pending map[string]bool // source+key of objects offered but not yet claimed
	stopped map[string]error
	renewed map[string]time.Time // entry id → when its claim was last renewed
	runCtx  context.Context      // Run's, for Wake
	// fleet holds the leases of a daemon on a shared ledger; nil for a
	// ledger of one daemon, which works every drop (fleet.go).
	fleet *fleet
}

// New returns a pipeline; Run starts it.
func New(opt Options) *Pipeline {
	if opt.Workers <= 0 {
		opt.Workers = 2
	}
	if opt.PollMax <= 0 {
		opt.PollMax = 30 * time.Second
	}
	if opt.RetryBase <= 0 {
		opt.RetryBase = 2 * time.Second
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = 5 * time.Minute
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Hook == nil {
		opt.Hook = func(string) {}
	}
	p := &Pipeline{
		opt: opt, log: opt.Logger,
		sources: map[string]*live{},
		queue:   make(chan string, 1024),
		queued:  map[string]bool{}, pending: map[string]bool{}, stopped: map[string]error{},
		renewed: map[string]time.Time{},
		fleet:   newFleet(opt.Ledger),
	}
	opt.Metrics.watchLedger(opt.Ledger)
	for _, s := range opt.Sources {
		p.sources[s.Src.Name()] = p.newLive(s)
	}
	return p
}

// Run resumes unfinished entries, watches every source and works until ctx
// ends. It returns after every worker has stopped at a step boundary.
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	p.runCtx = ctx
	p.mu.Unlock()
	defer p.closeSources()
	active, err := p.resumable()
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if len(active) > 0 {
		p.log.Info("resuming unfinished drops", "count", len(active))
	}
	p.sweepSpool(active)
	for _, e := range active {
		if e.State == ledger.Discovered {
			// Still in the drop folder: the watcher will offer it again,
			// and it must not become a second entry.
			p.pending[e.Source+"\x00"+e.Key] = true
		}
	}
	// After pending is set, so that a suspect claimed now releases it.
	p.resumeSuspects(ctx, active)
	var wg sync.WaitGroup
	for range p.opt.Workers {
		wg.Go(func() { p.work(ctx) })
	}
	// Enqueue after the workers start: the queue is bounded, and a ledger
	// may hold more unfinished entries than it holds.
	wg.Go(func() {
		for _, e := range active {
			p.enqueue(ctx, e.ID)
		}
	})
	r := &running{ctx: ctx, offers: make(chan sources.Object)}
	p.mu.Lock()
	p.run = r
	for name, l := range p.sources {
		p.startWatch(name, l)
	}
	p.mu.Unlock()
	wg.Go(func() { p.accept(ctx, r.offers) })
	if p.fleet != nil {
		wg.Go(func() { p.leaseLoop(ctx) })
	} else {
		wg.Go(func() { p.renewLoop(ctx) })
	}
	wg.Wait()
	p.mu.Lock()
	r.closed = true
	p.mu.Unlock()
	r.watchers.Wait()
	return nil
}

// resumeSuspects takes the drops that were mid-step when the daemon died
// one at a time, before anything else runs: should one of them kill the
// daemon again, that start is charged to it alone (ledger.Begin counts
// it), and after Options.MaxStarts of them the ledger sets it aside.
func (p *Pipeline) resumeSuspects(ctx context.Context, active []*ledger.Entry) {
	for _, e := range active {
		if e.Step == "" || ctx.Err() != nil {
			continue
		}
		p.log.Warn("resuming alone a drop that was being worked on when the service stopped",
			"id", e.ID, "name", safetext.Name(e.Name), "step", e.Step, "crashes", e.Crashes+1)
		p.mu.Lock()
		p.queued[e.ID] = true
		p.mu.Unlock()
		wait := p.advance(ctx, e.ID)
		p.mu.Lock()
		delete(p.queued, e.ID)
		p.mu.Unlock()
		if wait > 0 {
			p.later(ctx, e.ID, wait)
		}
	}
}

// sweepSpool removes what a crash left in the spool for drops that are no
// longer active: their outcome was committed, the clean-up was not.
func (p *Pipeline) sweepSpool(active []*ledger.Entry) {
	keep := make(map[string]bool, len(active))
	for _, e := range active {
		keep[e.ID] = true
	}
	dirs, err := os.ReadDir(p.opt.Spool)
	if err != nil {
		return // nothing spooled yet
	}
	for _, d := range dirs {
		if keep[d.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(p.opt.Spool, d.Name())); err != nil {
			p.log.Warn("could not clear spool", "dir", d.Name(), "err", err)
		}
	}
}

// Stopped returns the sources that stopped for an error an operator must
// fix, with that error.
func (p *Pipeline) Stopped() map[string]error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.stopped)
}

// accept turns each complete file a watcher offers into a ledger entry.
// It is the pipeline's dispatcher: its loop beats the heartbeat.
func (p *Pipeline) accept(ctx context.Context, offers <-chan sources.Object) {
	tick := time.NewTicker(HeartbeatEvery)
	defer tick.Stop()
	p.heartbeat()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.heartbeat()
		case o := <-offers:
			p.offer(ctx, o)
			p.heartbeat()
		}
	}
}

// offer records o as a new drop, unless it is already one or its source
// was removed meanwhile.
func (p *Pipeline) offer(ctx context.Context, o sources.Object) {
	if id := p.record(o); id != "" {
		p.enqueue(ctx, id)
	}
}

// record makes o an entry and returns its id, or "" when it is not to be
// worked on. Enqueuing is left to the caller: a full queue must not hold
// acceptMu.
func (p *Pipeline) record(o sources.Object) string {
	p.acceptMu.Lock()
	defer p.acceptMu.Unlock()
	key := o.Source + "\x00" + o.Key
	p.mu.Lock()
	l := p.sources[o.Source]
	skip := p.pending[key] || l == nil || l.retired
	if !skip {
		p.pending[key] = true
	}
	p.mu.Unlock()
	if skip {
		return ""
	}
	e, err := p.opt.Ledger.Create(o.Source, o.Name, o.Key, o.Size, o.ETag, o.Claimed)
	if errors.Is(err, ledger.ErrHeld) {
		// Another instance of the fleet recorded it first.
		p.log.Debug("file already held by a drop", "source", o.Source, "key", safetext.Name(o.Key), "err", err)
		p.release(o.Source, o.Key)
		return ""
	}
	if err != nil {
		p.log.Error("cannot record a new drop; it will be offered again", "source", o.Source, "key", safetext.Name(o.Key), "err", err)
		p.release(o.Source, o.Key)
		return ""
	}
	p.hold(e.ID)
	p.log.Info("new drop", "id", e.ID, "source", o.Source, "name", safetext.Name(o.Name), "size", o.Size)
	p.opt.Hook("discovered")
	return e.ID
}

// release forgets an offered object, so that its watcher offers it again
// when it is still there and stable.
func (p *Pipeline) release(source, key string) {
	p.mu.Lock()
	delete(p.pending, source+"\x00"+key)
	l := p.sources[source]
	p.mu.Unlock()
	if l != nil {
		l.watch.Forget(key)
	}
}

func (p *Pipeline) enqueue(ctx context.Context, id string) {
	p.mu.Lock()
	if p.queued[id] {
		p.mu.Unlock()
		return
	}
	p.queued[id] = true
	p.mu.Unlock()
	select {
	case p.queue <- id:
	case <-ctx.Done():
	}
}

// later queues id again after d, unless ctx ends first.
func (p *Pipeline) later(ctx context.Context, id string, d time.Duration) {
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			p.enqueue(ctx, id)
		case <-ctx.Done():
		}
	}()
}

func (p *Pipeline) work(ctx context.Context) {
	tick := time.NewTicker(HeartbeatEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// Idle: nothing holds this worker up.
			p.heartbeat()
		case id := <-p.queue:
			wait := p.advance(ctx, id)
			p.mu.Lock()
			delete(p.queued, id)
			p.mu.Unlock()
			if wait > 0 {
				p.later(ctx, id, wait)
			}
		}
	}
}

// advance takes entry id through as many states as it can. It returns how
// long to wait before trying again, or 0 when the entry is finished or ctx
// has ended.
func (p *Pipeline) advance(ctx context.Context, id string) time.Duration {
	begun := false // a step this call began ended without a transition
	for ctx.Err() == nil {
		if !p.holds(id) {
			// Another instance may hold it by now: the next renewal
			// says, and sends it back here if it is still ours.
			// A step begun here is not ended: that would write to a
			// drop another instance may hold.
			p.log.Warn("not working on a drop whose lease is not fresh", "id", id)
			p.park(id)
			return 0
		}
		e, err := p.opt.Ledger.Get(id)
		if err == nil && begun && e.Step != "" {
			e, err = p.opt.Ledger.End(id)
		}
		if err != nil {
			p.log.Error("ledger read failed", "id", id, "err", err)
			return p.opt.RetryMax
		}
		if e.Finished {
			p.unhold(id)
			p.settled(e.Source)
			return 0
		}
		if p.source(e.Source) == nil {
			p.log.Warn("drop belongs to a source no longer configured; leaving it", "id", id, "source", e.Source)
			return 0
		}
		step := stepOf(e)
		if step != "" {
			x, err := p.opt.Ledger.Begin(id, step)
			if err != nil {
				p.log.Error("ledger write failed", "id", id, "err", err)
				return p.opt.RetryMax
			}
			if x.Finished || stepOf(x) != step {
				p.log.Warn("drop set aside", "id", id, "name", safetext.Name(x.Name), "reason", x.LastError)
				p.opt.Metrics.setAsideAt(x, step)
				continue
			}
			e = x
		}
		src, done := p.use(e.Source)
		if src == nil {
			// Removed and closed since the look-up above: nothing ran.
			p.end(id, step)
			return 0
		}
		start := time.Now()
		wait, err := p.safeStep(ctx, src, e)
		done()
		if step == ledger.StepConvert {
			p.opt.Metrics.converted(time.Since(start))
		}
		begun = step != ""
		if err == nil {
			if wait > 0 {
				p.end(id, step)
				return wait
			}
			continue
		}
		if ctx.Err() != nil {
			// Stopping is not the file's fault: the step ended.
			p.end(id, step)
			return 0
		}
		if !p.holds(id) {
			// Lost while the step ran: the failure is not ours to
			// record on a drop another instance may hold.
			continue
		}
		if wait := p.retry(e, step, err); wait > 0 {
			return wait
		}
	}
	return 0
}

// end commits that a begun step stopped without fault or transition, so
// that the next Begin does not take it for a crash.
func (p *Pipeline) end(id string, step ledger.Step) {
	if step == "" {
		return
	}
	if _, err := p.opt.Ledger.End(id); err != nil {
		p.log.Warn("ledger write failed", "id", id, "err", err)
	}
}

// stepOf is the step e's state calls for, as ledger.Begin counts it: ""
// when the next thing to do only reads Zuora's answer (poll) or commits
// an outcome already decided.
func stepOf(e *ledger.Entry) ledger.Step {
	if e.State.Outcome() {
		return ledger.StepFinish
	}
	switch e.State {
	case ledger.Discovered:
		return ledger.StepClaim
	case ledger.Claimed:
		return ledger.StepFetch
	case ledger.Fetched:
		return ledger.StepConvert
	}
	for _, part := range e.Parts {
		switch {
		case part.State == ledger.PartCompleted:
			continue
		case part.State.Final(), part.State == ledger.PartAccepted:
			return ""
		}
		return ledger.StepUpload
	}
	return ""
}

// safeStep is step with a panic turned into an error, so that one file
// that trips a bug ends as an outcome instead of ending the daemon.
func (p *Pipeline) safeStep(ctx context.Context, src *Source, e *ledger.Entry) (wait time.Duration, err error) {
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("panic while working on a drop", "id", e.ID, "name", safetext.Name(e.Name), "state", e.State,
				"panic", v, "stack", string(debug.Stack()))
			err = &panicError{v}
		}
	}()
	return p.step(ctx, src, e)
}

// retry records a failed step and returns the wait before the next try,
// or 0 when the ledger set the drop aside (it is then finished next).
func (p *Pipeline) retry(e *ledger.Entry, step ledger.Step, cause error) time.Duration {
	d := fullJitter(p.opt.RetryBase, p.opt.RetryMax, e.Attempts)
	var ue *uploader.Error
	if errors.As(cause, &ue) && ue.RetryAfter > d {
		d = ue.RetryAfter
	}
	x, err := p.opt.Ledger.Retry(e.ID, ledger.Failure{Step: step, Cause: classify(cause), Err: cause.Error(), Next: time.Now().Add(d)})
	if err != nil {
		p.log.Error("ledger write failed", "id", e.ID, "err", err)
		return d
	}
	p.opt.Metrics.retried(e)
	if x.State != e.State {
		p.log.Warn("drop set aside", "id", e.ID, "name", safetext.Name(e.Name), "reason", x.LastError)
		p.opt.Metrics.setAsideAt(x, step)
		return 0
	}
	p.log.Warn("step failed; will retry", "id", e.ID, "name", safetext.Name(e.Name), "state", e.State,
		"attempt", x.Attempts, "retry_in", d.Round(time.Millisecond), "err", x.LastError)
	return d
}

// Marks on an error for classify, set where the error arises.
type (
	// sourceError is a failure of the source: its network, its
	// permissions, its disk. An outage, waited out.
	sourceError struct{ err error }
	// fileError is a failure that reading the file itself caused.
	fileError struct{ err error }
	// panicError is a panic recovered in a step.
	panicError struct{ v any }
)

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }
func (e fileError) Error() string   { return e.err.Error() }
func (e fileError) Unwrap() error   { return e.err }
func (e *panicError) Error() string { return fmt.Sprint(e.v) }

// sourceReader marks the errors of a reader on a source as the source's.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		err = sourceError{err}
	}
	return n, err
}

// classify says whose fault a failed step was; the ledger bounds the
// file's faults and waits out the others. A full spool disk anywhere but
// on the source is ours to wait for, even when convert met it; convert
// words what the file gets wrong as a rejection, so the errors it returns
// are the file's only when no system call failed under them.
func classify(err error) ledger.Cause {
	var (
		pe *panicError
		se sourceError
		ue *uploader.Error
		fe fileError
	)
	switch {
	case errors.As(err, &pe):
		return ledger.CausePanic
	case errors.As(err, &se) && errors.Is(err, fs.ErrInvalid):
		// The source refuses this key: no wait mends that, the name is
		// the file's.
		return ledger.CauseFile
	case errors.As(err, &se), errors.Is(err, sources.ErrFatal):
		return ledger.CauseSource
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return ledger.CauseSpace
	case errors.As(err, &ue):
		return ledger.CauseZuora
	case errors.As(err, &fe) && !errors.As(fe.err, new(syscall.Errno)):
		// An error of the operating system (EIO, EMFILE) while reading
		// the spool is this machine's fault, not the file's.
		return ledger.CauseFile
	}
	return ledger.CauseOther
}

// fullJitter is random(0, min(max, base·2^n)), never less than a tenth of
// base so that a burst of failures does not spin.
func fullJitter(base, limit time.Duration, n int) time.Duration {
	c := min(limit, base<<min(n, 20))
	return max(base/10, time.Duration(rand.Int64N(int64(c)+1)))
}
