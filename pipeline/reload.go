package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"usagedrop/config"
	"usagedrop/ledger"
	"usagedrop/sources"
	"usagedrop/watcher"
)

// HeartbeatEvery is how often the dispatcher and idle workers beat the
// heartbeat (Heartbeat).
const HeartbeatEvery = time.Second

// live is a source as the pipeline holds it.
type live struct {
	src   *Source
	watch *watcher.Watcher
	steps sync.WaitGroup // steps running on src now

	// Guarded by Pipeline.mu.
	stop    context.CancelFunc // ends the watcher; nil when none runs
	done    chan struct{}      // closed once the watcher has returned
	retired bool               // removed: not watched, its drops in flight finish
}

// running is what Run shares with the watchers started while it runs.
type running struct {
	ctx      context.Context
	offers   chan sources.Object
	watchers sync.WaitGroup
	closed   bool // Run is returning: no watcher starts any more (Pipeline.mu)
}

func (p *Pipeline) newLive(s Source) *live {
	wo := s.Watch
	wo.Logger = p.opt.Logger
	p.opt.Metrics.source(s.Src.Name())
	return &live{src: &s, watch: watcher.New(s.Src, wo)}
}

// startWatch starts l's watcher when Run runs. p.mu is held.
func (p *Pipeline) startWatch(name string, l *live) {
	r := p.run
	if r == nil || r.closed || l.retired || l.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	l.stop, l.done = cancel, done
	delete(p.stopped, name)
	p.opt.Metrics.up(name, true)
	r.watchers.Add(1)
	go func() {
		defer r.watchers.Done()
		defer close(done)
		err := l.watch.Run(ctx, r.offers)
		if err == nil || ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.sources[name] == l {
			p.stopped[name] = err
			p.opt.Metrics.up(name, false)
		}
	}()
}

// stopWatch ends l's watcher and waits until it has returned. p.mu must
// not be held: the watcher may be handing an offer to accept.
func (p *Pipeline) stopWatch(l *live) {
	p.mu.Lock()
	stop, done := l.stop, l.done
	l.stop = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// source returns the source called name, watched or finishing its last
// drops, or nil.
func (p *Pipeline) source(name string) *Source {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.sources[name]; l != nil {
		return l.src
	}
	return nil
}

// use is source, held until done is called: a reload closes a replaced
// source only once no step runs on it.
func (p *Pipeline) use(name string) (src *Source, done func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.sources[name]
	if l == nil {
		return nil, func() {}
	}
	l.steps.Add(1)
	return l.src, l.steps.Done
}

// sourceList returns every source held.
func (p *Pipeline) sourceList() []*Source {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Source, 0, len(p.sources))
	for _, l := range p.sources {
		out = append(out, l.src)
	}
	return out
}

// AddSource watches s from now on. A source of the same name is
// replaced: its watcher stops first, the next step of each of its drops
// runs on s, and the old backend is closed once the steps running on it
// have ended.
func (p *Pipeline) AddSource(s Source) {
	name := s.Src.Name()
	l := p.newLive(s)
	p.mu.Lock()
	old := p.sources[name]
	p.sources[name] = l
	p.mu.Unlock()
	if old != nil {
		p.stopWatch(old)
		go p.closeWhenIdle(old)
	}
	p.mu.Lock()
	if p.sources[name] == l {
		p.startWatch(name, l)
	}
	p.mu.Unlock()
}

// RemoveSource stops listing the source called name: files dropped there
// from now on stay where they are. Its drops already recorded finish on
// it; then it is closed.
func (p *Pipeline) RemoveSource(name string) {
	p.mu.Lock()
	l := p.sources[name]
	if l == nil || l.retired {
		p.mu.Unlock()
		return
	}
	l.retired = true
	delete(p.stopped, name)
	p.mu.Unlock()
	p.stopWatch(l)
	p.opt.Metrics.forget(name)
	p.settled(name)
}

// settled closes a removed source once none of its drops is active.
func (p *Pipeline) settled(name string) {
	p.mu.Lock()
	l := p.sources[name]
	retired := l != nil && l.retired
	p.mu.Unlock()
	if !retired {
		return
	}
	// No offer becomes an entry meanwhile, so none is missed below.
	p.acceptMu.Lock()
	defer p.acceptMu.Unlock()
	active, err := p.opt.Ledger.Active()
	if err != nil {
		return // asked again when its next drop finishes
	}
	if slices.ContainsFunc(active, func(e *ledger.Entry) bool { return e.Source == name }) {
		return
	}
	p.mu.Lock()
	if p.sources[name] != l {
		p.mu.Unlock()
		return
	}
	delete(p.sources, name)
	p.mu.Unlock()
	p.log.Info("removed source closed: its last drop is finished", "source", name)
	go p.closeWhenIdle(l)
}

// closeWhenIdle closes l's backend once no step runs on it.
func (p *Pipeline) closeWhenIdle(l *live) {
	l.steps.Wait()
	if err := l.src.Close(); err != nil {
		p.log.Warn("close source", "source", l.src.Src.Name(), "err", err)
	}
}

// closeSources closes every source held, once Run's steps have ended.
func (p *Pipeline) closeSources() {
	p.mu.Lock()
	ls := make([]*live, 0, len(p.sources))
	for _, l := range p.sources {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	for _, l := range ls {
		p.closeWhenIdle(l)
	}
}

// heartbeat records that a loop of the pipeline turned.
func (p *Pipeline) heartbeat() { p.beat.Store(time.Now().UnixNano()) }

// Heartbeat returns when a loop of the pipeline last turned: the
// dispatcher, which turns every HeartbeatEvery unless the ledger or a full queue
// holds it, or an idle worker. A systemd watchdog fed only while it is
// recent restarts a daemon whose loops are stuck, and not one that is
// merely busy.
func (p *Pipeline) Heartbeat() time.Time {
	n := p.beat.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Reload applies next's sources over cur's while Run runs: a new source
// is watched at once; a removed one stops listing new files while its
// drops in flight finish; a changed one, or one stopped for an operator,
// is replaced between two steps of its drops. A source whose folder
// moved (type, path, bucket, prefix, address, endpoint, imported_dir,
// failed_dir) while drops of it are in flight keeps its old settings,
// because their files are in the old folder; the log says so. When a
// source cannot be built nothing is applied, and the error names each.
// Reload returns the sources in effect afterwards.
func (p *Pipeline) Reload(cur, next *config.Config) ([]config.Source, error) {
	active, err := p.opt.Ledger.Active()
	if err != nil {
		return cur.Sources, fmt.Errorf("reload: ledger: %w", err)
	}
	inFlight := map[string]int{}
	for _, e := range active {
		inFlight[e.Source]++
	}
	// A source stopped for an operator (a changed host key, say) starts
	// again at a reload even if unchanged: the fix may be outside the
	// config, in a known_hosts file.
	stopped := p.Stopped()
	old := map[string]config.Source{}
	for _, s := range cur.Sources {
		old[s.Name] = s
	}
	var (
		effect []config.Source
		build  []Source
		errs   []error
		notes  []func()
	)
	for _, sc := range next.Sources {
		was, ok := old[sc.Name]
		delete(old, sc.Name)
		switch {
		case ok && reflect.DeepEqual(was, sc) && stopped[sc.Name] == nil:
			effect = append(effect, sc)
			continue
		case ok && !sameFolder(was, sc) && inFlight[sc.Name] > 0:
			n := inFlight[sc.Name]
			notes = append(notes, func() {
				p.log.Warn("reload: source keeps its old settings: its folder changed while drops of it are in flight, and their files are in the old one; reload again once they are finished",
					"source", sc.Name, "in_flight", n)
			})
			effect = append(effect, was)
			continue
		}
		s, err := BuildSource(sc, cur.Instance, p.log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		build = append(build, s)
		effect = append(effect, sc)
		verb := "reload: source added"
		switch {
		case ok && reflect.DeepEqual(was, sc):
			verb = "reload: stopped source started again"
		case ok:
			verb = "reload: source restarted with its new settings"
		}
		notes = append(notes, func() { p.log.Info(verb, "source", sc.Name, "type", sc.Type) })
	}
	if len(errs) > 0 {
		for _, s := range build {
			s.Close()
		}
		return cur.Sources, errors.Join(errs...)
	}
	for name := range old {
		n := inFlight[name]
		p.log.Info("reload: source removed: no new files are taken from it; its drops in flight finish first", "source", name, "in_flight", n)
		p.RemoveSource(name)
	}
	for _, s := range build {
		p.AddSource(s)
	}
	for _, note := range notes {
		note()
	}
	return effect, nil
}

// sameFolder reports whether a and b name the same place: a drop's key
// means the same file in both.
func sameFolder(a, b config.Source) bool {
	return a.Type == b.Type && a.Path == b.Path && a.Bucket == b.Bucket && a.Prefix == b.Prefix &&
		a.Address == b.Address && a.Endpoint == b.Endpoint && a.ImportedDir == b.ImportedDir && a.FailedDir == b.FailedDir
}

// liveKeys are the config keys Reload and the daemon apply without a
// restart.
var liveKeys = []string{"sources", "log.level", "readiness"}

// RestartKeys lists the keys whose values differ between cur and next
// and that only a restart applies (ledger, spool, http, zuora.endpoint,
// ...), by their YAML path. Values are not given: they may be secrets.
func RestartKeys(cur, next *config.Config) []string {
	var out []string
	diffKeys("", reflect.ValueOf(*cur), reflect.ValueOf(*next), &out)
	// A secret read from a file (yaml:"-") is reported under its parent.
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(k string) bool {
		return slices.ContainsFunc(liveKeys, func(l string) bool { return k == l || strings.HasPrefix(k, l+".") })
	})
}

func diffKeys(path string, a, b reflect.Value, out *[]string) {
	if a.Kind() != reflect.Struct {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, path)
		}
		return
	}
	for i := range a.NumField() {
		f := a.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		key := path
		if name != "-" && name != "" {
			key = strings.TrimPrefix(path+"."+name, ".")
		}
		diffKeys(key, a.Field(i), b.Field(i), out)
	}
}
