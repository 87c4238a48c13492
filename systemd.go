package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"

	"usagedrop/config"
	"usagedrop/ledger"
	"usagedrop/notify"
	"usagedrop/pipeline"
)

// statusEvery is how often the daemon looks whether its STATUS= line
// changed; it is sent only when it did.
const statusEvery = 2 * time.Second

// service is the running daemon as systemd and /readyz see it: the
// config in effect, what a reload may change, and what tells whether it
// can work.
type service struct {
	path  string // the -config file; "" for the embedded default
	level *slog.LevelVar
	p     *pipeline.Pipeline
	led   ledger.Store
	zuora *pipeline.ZuoraWatch
	log   *slog.Logger
	// notifier gets the notify targets a reload brings; nil in tests
	// that run no notifier.
	notifier *notify.Notifier

	zuoraLimit atomic.Int64 // readiness.zuora_unreachable, in ns

	mu  sync.Mutex // one reload at a time
	cfg *config.Config
	// now is cfg for readers (the page, the operator's endpoints), who
	// must not wait for a reload to end.
	now atomic.Pointer[config.Config]
}

func newService(path string, cfg *config.Config, level *slog.LevelVar, p *pipeline.Pipeline, led ledger.Store, z *pipeline.ZuoraWatch, log *slog.Logger) *service {
	s := &service{path: path, cfg: cfg, level: level, p: p, led: led, zuora: z, log: log}
	s.zuoraLimit.Store(int64(cfg.Readiness.ZuoraLimit()))
	s.now.Store(cfg)
	return s
}

// current returns the config in effect, the last one a reload applied.
func (s *service) current() *config.Config { return s.now.Load() }

// sourceNames lists the sources in effect, in config order.
func (s *service) sourceNames() []string {
	var names []string
	for _, sc := range s.current().Sources {
		names = append(names, sc.Name)
	}
	return names
}

// sourceType returns the type of the source in effect called name, or
// "" when no such source is configured.
func (s *service) sourceType(name string) string {
	for _, sc := range s.current().Sources {
		if sc.Name == name {
			return sc.Type
		}
	}
	return ""
}

// notify sends state to systemd when it runs the daemon (NOTIFY_SOCKET).
func (s *service) notify(state string) {
	if _, err := sdnotify.SdNotify(false, state); err != nil {
		s.log.Warn("sd_notify", "state", strings.SplitN(state, "\n", 2)[0], "err", err)
	}
}

// serve runs the daemon's answers to systemd until ctx ends: a reload for
// each signal on hup, the watchdog, and STATUS=.
func (s *service) serve(ctx context.Context, hup <-chan os.Signal) {
	var wg sync.WaitGroup
	wg.Go(func() { s.watchdog(ctx) })
	if os.Getenv("NOTIFY_SOCKET") != "" {
		wg.Go(func() { s.statusLoop(ctx) })
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-hup:
			s.reload()
		}
	}
}

// reload re-reads the config (SIGHUP, systemctl reload) and applies what
// can change while drops are in flight: the sources, the log level and
// the readiness limit. A config with problems changes nothing, and every
// problem is logged; a change only a restart applies is logged as such.
func (s *service) reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify(sdnotify.SdNotifyReloading + "\n" + sdnotify.SdNotifyMonotonicUsec())
	defer s.notify(sdnotify.SdNotifyReady)
	s.log.Info("SIGHUP: re-reading the configuration", "config", cmp.Or(s.path, "(embedded default)"))
	next, err := loadConfig(s.path, nil)
	if err != nil {
		for _, line := range problems(err) {
			s.log.Error("reload refused: the new configuration has a problem; going on with the one in effect", "problem", line)
		}
		return
	}
	for _, key := range pipeline.RestartKeys(s.cfg, next) {
		s.log.Warn("reload: a changed setting needs a restart to apply; going on with the old value", "key", key)
	}
	srcs, err := s.p.Reload(s.cfg, next)
	if err != nil {
		for _, line := range problems(err) {
			s.log.Error("reload refused: a source cannot be started; going on with the configuration in effect", "problem", line)
		}
		return
	}
	applied := *s.cfg
	applied.Sources = srcs
	applied.Log.Level = next.Log.Level
	applied.Readiness = next.Readiness
	if s.notifier != nil {
		if err := s.notifier.Configure(srcs, next.Notify); err != nil {
			s.log.Error("reload: the notify targets could not be applied; the ones in effect stay", "err", err)
		} else {
			applied.Notify = next.Notify
		}
	}
	s.cfg = &applied
	s.now.Store(&applied)
	s.level.Set(logLevel(applied.Log))
	s.zuoraLimit.Store(int64(applied.Readiness.ZuoraLimit()))
	s.log.Info("configuration reloaded", "sources", len(srcs), "log_level", s.level.Level())
}

// problems is an error of loadConfig or Reload as its problems (a
// config's, or each source's that could not be built), so that each is
// its own log line.
func problems(err error) []string {
	if ve, ok := errors.AsType[*config.ValidationError](err); ok {
		return ve.Problems
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, problems(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// watchdog feeds systemd's watchdog (WatchdogSec=) at half its period,
// only while the pipeline's heartbeat is younger than that (and than
// three beats): a daemon whose loops are stuck is restarted, one that is
// busy is not. Before the first beat (drops being resumed at start) it
// is fed.
func (s *service) watchdog(ctx context.Context) {
	period, err := sdnotify.SdWatchdogEnabled(false)
	if err != nil || period <= 0 {
		return
	}
	half := period / 2
	stale := max(half, 3*pipeline.HeartbeatEvery)
	t := time.NewTicker(half)
	defer t.Stop()
	starved := false
	for {
		beat := s.p.Heartbeat()
		alive := beat.IsZero() || time.Since(beat) < stale
		switch {
		case alive:
			s.notify(sdnotify.SdNotifyWatchdog)
			starved = false
		case !starved:
			s.log.Error("the pipeline's loops have not turned; no longer feeding the watchdog, so systemd restarts the service",
				"last_beat", beat, "watchdog", period)
			starved = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// statusLoop keeps systemd's STATUS= line (systemctl status) saying the
// backlog and the last Zuora error, sending it when it changes.
func (s *service) statusLoop(ctx context.Context) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	last := ""
	for {
		if text := s.status(); text != last {
			s.notify("STATUS=" + text)
			last = text
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// status is the STATUS= line: "2 drops in progress (oldest 3m0s); last
// Zuora error 14:05:03: submit: 503 Service Unavailable".
func (s *service) status() string {
	var b strings.Builder
	active, err := s.led.Active()
	switch {
	case err != nil:
		fmt.Fprintf(&b, "ledger unreadable: %v", err)
	case len(active) == 0:
		b.WriteString("no drops in progress")
	default:
		oldest := time.Since(active[0].Created).Truncate(time.Minute)
		fmt.Fprintf(&b, "%d drops in progress (oldest %s)", len(active), shortDuration(oldest))
	}
	if msg, when := s.zuora.LastError(); msg != "" {
		fmt.Fprintf(&b, "; last Zuora error %s: %s", when.Format("2006-01-02 15:04:05"), msg)
	}
	if since := s.zuora.Unreachable(); !since.IsZero() {
		fmt.Fprintf(&b, "; Zuora unreachable since %s", since.Format("15:04:05"))
	}
	return b.String()
}

// shortDuration writes d without zero units: 3m, 2h5m.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	return cmp.Or(s, "0m")
}

// notReady says why the daemon cannot do its work now, for /readyz: Zuora
// unreachable longer than readiness.zuora_unreachable, or a source
// stopped for an operator. Nil means ready.
func (s *service) notReady() []string {
	var why []string
	if since := s.zuora.Unreachable(); !since.IsZero() && time.Since(since) > time.Duration(s.zuoraLimit.Load()) {
		msg, _ := s.zuora.LastError()
		why = append(why, fmt.Sprintf("Zuora unreachable for %s (since %s): %s",
			time.Since(since).Round(time.Second), since.Format(time.RFC3339), msg))
	}
	stopped := s.p.Stopped()
	for _, name := range slices.Sorted(maps.Keys(stopped)) {
		why = append(why, fmt.Sprintf("source %s stopped: %v", name, stopped[name]))
	}
	return why
}
