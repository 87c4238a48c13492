// Package pipeline moves every dropped file through the ledger's states.
//
// It wires the steps together and owns nothing of their insides: watchers
// offer complete files, each becomes a ledger entry, and a pool of workers
// takes entries one state at a time (claim, fetch, convert, upload, poll,
// finish), committing each transition before the side effect that follows
// it. On start every unfinished entry is resumed from its state; on stop
// the workers leave at the next step boundary and the ledger says where
// each file stands, so `systemctl stop` loses nothing.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"usagedrop/convert"
	"usagedrop/ledger"
	"usagedrop/sources"
	"usagedrop/uploader"
	"usagedrop/watcher"
)

// Source is one configured drop folder with its reading settings.
type Source struct {
	Src     sources.Source
	Watch   watcher.Options
	Read    convert.Options
	Lease   time.Duration // renew a held claim this often, at most
	Closers []func() error
}

// Options configure a Pipeline.
type Options struct {
	Ledger   *ledger.Ledger
	Uploader uploader.Uploader
	Sources  []Source
	Spool    string
	// Instance is this daemon's owner name in processing/.
	Instance string
	Template convert.Template
	Limits   convert.Limits
	Workers  int
	// PollMax is the longest wait between two status checks.
	PollMax time.Duration
	// RetryBase and RetryMax bound the wait before a step that failed
	// for a passing reason is tried again (full jitter).
	RetryBase, RetryMax time.Duration
	Logger              *slog.Logger
	// Metrics, if set, counts outcomes and retries.
	Metrics *Metrics
	// Hook, if set, is called after each committed transition with its
	// name ("claimed", "fetched", "submitted", ...). The crash tests use
	// it to kill the daemon at every state in turn.
	Hook func(point string)
}

// Pipeline runs the daemon's work.
type Pipeline struct {
	opt     Options
	log     *slog.Logger
	sources map[string]*Source
	watch   map[string]*watcher.Watcher
	queue   chan string

	mu      sync.Mutex
	queued  map[string]bool // entry ids queued or being worked on
	pending map[string]bool // source+key of objects offered but not yet claimed
	stopped map[string]error
	renewed map[string]time.Time // entry id → when its claim was last renewed
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
		sources: map[string]*Source{}, watch: map[string]*watcher.Watcher{},
		queue:  make(chan string, 1024),
		queued: map[string]bool{}, pending: map[string]bool{}, stopped: map[string]error{},
		renewed: map[string]time.Time{},
	}
	for i := range opt.Sources {
		s := &opt.Sources[i]
		wo := s.Watch
		wo.Logger = opt.Logger
		p.sources[s.Src.Name()] = s
		p.watch[s.Src.Name()] = watcher.New(s.Src, wo)
	}
	return p
}

// Run resumes unfinished entries, watches every source and works until ctx
// ends. It returns after every worker has stopped at a step boundary.
func (p *Pipeline) Run(ctx context.Context) error {
	active, err := p.opt.Ledger.Active()
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
	offers := make(chan sources.Object)
	for name, w := range p.watch {
		p.opt.Metrics.up(name, true)
		wg.Go(func() {
			err := w.Run(ctx, offers)
			if err != nil && ctx.Err() == nil {
				p.mu.Lock()
				p.stopped[name] = err
				p.mu.Unlock()
				p.opt.Metrics.up(name, false)
			}
		})
	}
	wg.Go(func() { p.accept(ctx, offers) })
	wg.Go(func() { p.renewLoop(ctx) })
	wg.Wait()
	return nil
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
func (p *Pipeline) accept(ctx context.Context, offers <-chan sources.Object) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-offers:
			key := o.Source + "\x00" + o.Key
			p.mu.Lock()
			dup := p.pending[key]
			p.pending[key] = true
			p.mu.Unlock()
			if dup {
				continue
			}
			e, err := p.opt.Ledger.Create(o.Source, o.Name, o.Key, o.Size, o.ETag, o.Claimed)
			if err != nil {
				p.log.Error("cannot record a new drop; it will be offered again", "source", o.Source, "key", o.Key, "err", err)
				p.release(o.Source, o.Key)
				continue
			}
			p.log.Info("new drop", "id", e.ID, "source", o.Source, "name", o.Name, "size", o.Size)
			p.opt.Hook("discovered")
			p.enqueue(ctx, e.ID)
		}
	}
}

// release forgets an offered object, so that its watcher offers it again
// when it is still there and stable.
func (p *Pipeline) release(source, key string) {
	p.mu.Lock()
	delete(p.pending, source+"\x00"+key)
	p.mu.Unlock()
	if w := p.watch[source]; w != nil {
		w.Forget(key)
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
	for {
		select {
		case <-ctx.Done():
			return
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
	for ctx.Err() == nil {
		e, err := p.opt.Ledger.Get(id)
		if err != nil {
			p.log.Error("ledger read failed", "id", id, "err", err)
			return p.opt.RetryMax
		}
		if e.Finished {
			return 0
		}
		src := p.sources[e.Source]
		if src == nil {
			p.log.Warn("drop belongs to a source no longer configured; leaving it", "id", id, "source", e.Source)
			return 0
		}
		wait, err := p.step(ctx, src, e)
		if err == nil {
			if wait > 0 {
				return wait
			}
			continue
		}
		if ctx.Err() != nil {
			return 0
		}
		return p.retry(e, err)
	}
	return 0
}

// retry records a passing failure and returns the wait before the next try.
func (p *Pipeline) retry(e *ledger.Entry, cause error) time.Duration {
	d := fullJitter(p.opt.RetryBase, p.opt.RetryMax, e.Attempts)
	var ue *uploader.Error
	if errors.As(cause, &ue) && ue.RetryAfter > d {
		d = ue.RetryAfter
	}
	_, err := p.opt.Ledger.Update(e.ID, "", func(x *ledger.Entry) error {
		x.Attempts++
		x.LastError = cause.Error()
		x.NextTry = time.Now().Add(d)
		return nil
	})
	if err != nil {
		p.log.Error("ledger update failed", "id", e.ID, "err", err)
	}
	p.opt.Metrics.retried(e)
	p.log.Warn("step failed; will retry", "id", e.ID, "name", e.Name, "state", e.State,
		"attempt", e.Attempts+1, "retry_in", d.Round(time.Millisecond), "err", cause)
	return d
}

// fullJitter is random(0, min(max, base·2^n)), never less than a tenth of
// base so that a burst of failures does not spin.
func fullJitter(base, limit time.Duration, n int) time.Duration {
	c := min(limit, base<<min(n, 20))
	return max(base/10, time.Duration(rand.Int64N(int64(c)+1)))
}
