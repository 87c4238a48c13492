// Package watcher finds files in a source that are complete.
//
// A file is complete when it has stayed the same (same ETag: size and time,
// or S3's ETag) across listings for the settle period. Listings happen at
// start, every interval, and, for local folders, soon after any fsnotify
// event; when a file is waiting to settle the next listing is timed for the
// moment it would. fsnotify only says "look again": the listing decides,
// so a lost or overflowing event stream costs latency, never a file.
package watcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"usagedrop/sources"
)

// Options tune a Watcher.
type Options struct {
	// Settle is how long a file must stay unchanged before it is taken.
	Settle time.Duration
	// Interval is the time between full listings when nothing happens.
	Interval time.Duration
	// Dir, when set, is a local directory watched with fsnotify.
	Dir string
	// Debounce is the pause after an event before listing, so that a burst
	// of writes costs one listing. Zero means 100ms.
	Debounce time.Duration
	Logger   *slog.Logger
}

// Watcher offers a source's complete files.
type Watcher struct {
	src  sources.Source
	opt  Options
	log  *slog.Logger
	wake chan struct{}

	mu   sync.Mutex
	seen map[string]*sighting
}

type sighting struct {
	etag  string
	since time.Time
	sent  bool
}

// New returns a watcher over src.
func New(src sources.Source, opt Options) *Watcher {
	if opt.Interval <= 0 {
		opt.Interval = 30 * time.Second
	}
	if opt.Debounce <= 0 {
		opt.Debounce = 100 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Watcher{
		src: src, opt: opt,
		log:  opt.Logger.With("source", src.Name()),
		wake: make(chan struct{}, 1),
		seen: map[string]*sighting{},
	}
}

// Forget makes the watcher offer key again once it is stable, for a file
// the pipeline could not take this time.
func (w *Watcher) Forget(key string) {
	w.mu.Lock()
	delete(w.seen, key)
	w.mu.Unlock()
	w.Wake()
}

// Wake asks for a listing soon.
func (w *Watcher) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run lists the source until ctx ends and sends every complete file to out
// once. A file is sent again only after it has changed or has gone away and
// come back, or after Forget. Run returns ctx's error, or an error wrapping
// sources.ErrFatal when the source cannot go on without an operator.
func (w *Watcher) Run(ctx context.Context, out chan<- sources.Object) error {
	if w.opt.Dir != "" {
		stop, err := w.notify(ctx)
		if err != nil {
			// Not fatal: listing every interval still finds every file.
			w.log.Warn("no file events; relying on periodic listing", "dir", w.opt.Dir, "err", err)
		} else {
			defer stop()
		}
	}
	if n, ok := w.src.(sources.Notifier); ok {
		go w.listen(ctx, n)
	}
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	due := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.wake:
			// Only ever bring the listing forward: a file written without
			// pause sends events without pause, and must not starve the
			// listing that would settle the others.
			if time.Until(due) > w.opt.Debounce {
				timer.Reset(w.opt.Debounce)
				due = time.Now().Add(w.opt.Debounce)
			}
			continue
		case <-timer.C:
		}
		ready, next, err := w.scan(ctx)
		if errors.Is(err, sources.ErrFatal) {
			w.log.Error("source stopped: it needs an operator", "err", err)
			return err
		}
		if err != nil && ctx.Err() == nil {
			failures++
			next = backoff(failures, w.opt.Interval)
			w.log.Warn("listing failed; will retry", "err", err, "retry_in", next.Round(time.Millisecond))
		} else {
			failures = 0
		}
		for _, o := range ready {
			select {
			case out <- o:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		timer.Reset(next)
		due = time.Now().Add(next)
	}
}

// scan lists once and returns the objects that became stable and when to
// list next.
func (w *Watcher) scan(ctx context.Context) ([]sources.Object, time.Duration, error) {
	objs, err := w.src.List(ctx)
	if err != nil {
		return nil, w.opt.Interval, err
	}
	now := time.Now()
	next := w.opt.Interval
	w.mu.Lock()
	defer w.mu.Unlock()
	present := make(map[string]bool, len(objs))
	var ready []sources.Object
	for _, o := range objs {
		present[o.Key] = true
		s := w.seen[o.Key]
		if s == nil || s.etag != o.ETag {
			s = &sighting{etag: o.ETag, since: now}
			w.seen[o.Key] = s
		}
		if s.sent {
			continue
		}
		if wait := s.since.Add(w.opt.Settle).Sub(now); wait > 0 {
			next = min(next, max(wait, 10*time.Millisecond))
			continue
		}
		s.sent = true
		ready = append(ready, o)
	}
	for k := range w.seen {
		if !present[k] {
			delete(w.seen, k)
		}
	}
	return ready, next, nil
}

// notify starts fsnotify on the directory; every event, an overflow or an
// error wakes a listing.
func (w *Watcher) notify(ctx context.Context) (stop func(), err error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := fw.Add(w.opt.Dir); err != nil {
		fw.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				// A chmod alone never makes a file complete or new.
				if ev.Op == fsnotify.Chmod {
					continue
				}
				w.Wake()
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				if errors.Is(err, fsnotify.ErrEventOverflow) {
					w.log.Info("file events overflowed; listing in full")
				} else {
					w.log.Warn("file events", "err", err)
				}
				w.Wake()
			}
		}
	}()
	return func() { fw.Close(); <-done }, nil
}

// listen wakes a listing whenever the source's notifications say files
// may have changed. Listing stays the backstop, so a failing notifier only
// costs latency.
func (w *Watcher) listen(ctx context.Context, n sources.Notifier) {
	failures := 0
	for ctx.Err() == nil {
		err := n.Changed(ctx)
		switch {
		case err == nil:
			failures = 0
			w.Wake()
			continue
		case errors.Is(err, errors.ErrUnsupported) || ctx.Err() != nil:
			return
		}
		failures++
		wait := backoff(failures, w.opt.Interval)
		w.log.Warn("change notifications failed; listing on schedule meanwhile", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func backoff(failures int, limit time.Duration) time.Duration {
	d := time.Second << min(failures-1, 10)
	return min(d, max(limit, time.Second))
}
