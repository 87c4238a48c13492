package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"usagedrop/config"
	"usagedrop/convert"
	"usagedrop/ledger"
	"usagedrop/notify"
	"usagedrop/pipeline"
	"usagedrop/web"
)

func loadConfig(path string, log *slog.Logger) (*config.Config, error) {
	if path == "" {
		c := config.DefaultConfig()
		if log != nil {
			log.Info("no -config given: running on the embedded default",
				"drop", c.Sources[0].Path, "ledger", c.Ledger, "zuora", "built-in simulator (nothing reaches a real tenant)")
		}
		return c, c.Validate()
	}
	c, err := config.ParseFile(path)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file (default: the embedded default)")
	if rest, err := parseArgs(fs, args, stdout); err != nil || len(rest) > 0 {
		return cmp.Or(err, errUsage)
	}
	log := newLogger(stderr)
	// SIGHUP (logrotate habits, `systemctl reload`) re-reads the config;
	// caught from the start, so that an early one does not end the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := loadConfig(*cfgPath, log)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log = newConfiguredLogger(stderr, cfg.Log, level)
	if err := os.MkdirAll(cfg.Spool, 0o750); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	led, err := openStore(ctx, cfg, time.Second, true)
	if err != nil {
		return err
	}
	defer led.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bv := readVersion()
	revision := bv.Revision
	if bv.Modified {
		revision += "-modified"
	}
	pipeline.RegisterBuildInfo(reg, bv.Version, revision)
	metrics := pipeline.NewMetrics(reg)
	zw := pipeline.NewZuoraWatch(nil, metrics)
	lim, closeLimiter, err := zuoraLimiter(ctx, cfg, led, log)
	if err != nil {
		return err
	}
	defer closeLimiter()
	z, err := pipeline.BuildZuoraLimited(cfg.Zuora, log, zw, lim)
	if err != nil {
		return err
	}
	defer z.Close()
	if z.Sim != nil {
		log.Info("built-in Zuora simulator listening", "url", z.BaseURL)
	}

	var srcs []pipeline.Source
	for _, sc := range cfg.Sources {
		s, err := pipeline.BuildSource(sc, cfg.Instance, log)
		if err != nil {
			return err
		}
		srcs = append(srcs, s)
		log.Info("watching", "source", sc.Name, "type", sc.Type, "path", firstOf(sc.Path, sc.Bucket+"/"+sc.Prefix), "settle", time.Duration(sc.Settle))
	}
	loc, _ := cfg.Location() // Validate has checked it
	p := pipeline.New(pipeline.Options{
		Metrics: metrics,
		Ledger:  led, Uploader: z.Uploader, Sources: srcs, Spool: cfg.Spool,
		Instance: cfg.Instance, Template: pipeline.Template(cfg.Zuora), Workers: cfg.Workers, Caps: convert.Caps(cfg.Limits),
		PollMax: time.Duration(cfg.Zuora.Poll), Logger: log, Hook: crashHook(log),
		RetryBase: time.Duration(cfg.Zuora.Backoff), RetryMax: time.Duration(cfg.Zuora.BackoffMax),
		TimeZone: loc,
	})

	// Notices go out from the ledger's outbox on their own goroutine: a
	// receiver that hangs never holds up a drop.
	notifier, err := notify.New(notify.Options{Ledger: led, Sources: cfg.Sources, Notify: cfg.Notify, Logger: log, Instance: cfg.Instance})
	if err != nil {
		return err
	}
	svc := newService(*cfgPath, cfg, level, p, led, zw, log)
	svc.notifier = notifier
	var wg sync.WaitGroup
	if cfg.HTTP != "off" && cfg.HTTP != "" {
		page := web.Options{Report: p.ReadReport, NoReport: pipeline.ErrNoReport, Location: loc, Logger: log}
		page.Sources = svc.sourceNames
		ops := &opsAPI{Ledger: led, Wake: p.Wake, SourceType: svc.sourceType, Logger: log}
		srv, err := serveHTTP(cfg.HTTP, api{Auth: cfg.HTTPAuth, Ledger: led, Stopped: p.Stopped, NotReady: svc.notReady, Metrics: reg, Page: page, Ops: ops}, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	wg.Go(func() { prune(ctx, led, time.Duration(cfg.Retention), log) })
	wg.Go(func() { notifier.Run(ctx) })
	wg.Go(func() {
		<-ctx.Done()
		log.Info("stopping: unfinished drops resume from the ledger at the next start")
		sdnotify.SdNotify(false, sdnotify.SdNotifyStopping)
	})
	sdnotify.SdNotify(false, sdnotify.SdNotifyReady)
	wg.Go(func() { svc.serve(ctx, hup) })
	log.Info("usagedrop running", "version", readVersion().String(), "instance", cfg.Instance, "ledger", ledgerName(cfg))
	err = p.Run(ctx)
	wg.Wait()
	return err
}

// prune forgets finished drops older than retention, once a day.
func prune(ctx context.Context, led ledger.Store, retention time.Duration, log *slog.Logger) {
	if retention <= 0 {
		return
	}
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		n, err := led.Prune(time.Now().Add(-retention))
		if err != nil {
			log.Warn("ledger prune", "err", err)
		} else if n > 0 {
			log.Info("ledger pruned", "entries", n, "older_than", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// crashHook kills the process with SIGKILL right after the transition
// named in USAGEDROP_CRASH_AT ("submitted", or "submitted:2" for the second
// time), or whenever it starts converting the file named in
// USAGEDROP_CRASH_CONVERTING. The crash tests use the first to prove every
// state resumes, the poison test the second to prove a file that keeps
// killing the daemon is set aside.
func crashHook(log *slog.Logger) func(string) {
	spec, poison := os.Getenv("USAGEDROP_CRASH_AT"), os.Getenv("USAGEDROP_CRASH_CONVERTING")
	if spec == "" && poison == "" {
		return nil
	}
	point, nth := spec, 1
	if i := strings.IndexByte(spec, ':'); i >= 0 {
		point = spec[:i]
		nth, _ = strconv.Atoi(spec[i+1:])
	}
	var mu sync.Mutex
	seen := 0
	die := func(p string) {
		log.Warn("test hook: killing myself", "point", p)
		if me, err := os.FindProcess(os.Getpid()); err == nil {
			me.Kill()
		}
		select {}
	}
	return func(p string) {
		if poison != "" && p == "converting "+poison {
			die(p)
		}
		if spec == "" || p != point {
			return
		}
		mu.Lock()
		seen++
		n := seen
		mu.Unlock()
		if n == nth {
			die(p)
		}
	}
}
