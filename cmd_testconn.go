package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"usagedrop/config"
	"usagedrop/internal/safetext"
	"usagedrop/ledger/postgres"
	"usagedrop/pipeline"
	"usagedrop/uploader"
)

// runTest is `usagedrop test`: it reaches everything the daemon needs —
// a token from Zuora, a listing of each source with its host key checked,
// the spool and the ledger's folder — and changes nothing: no file is
// claimed, moved or imported. It prints one line per check and reports
// whether any failed.
func runTest(ctx context.Context, args []string, stdout io.Writer) (failed bool, err error) {
	flags := flag.NewFlagSet("test", flag.ContinueOnError)
	cfgPath := flags.String("config", "", "config file (default: the embedded default)")
	timeout := flags.Duration("timeout", 30*time.Second, "how long each check may take")
	if rest, err := parseArgs(flags, args, stdout); err != nil || len(rest) > 0 {
		return false, cmp.Or(err, errUsage)
	}
	cfg, err := loadConfig(*cfgPath, nil)
	if printProblems(stdout, err) {
		fmt.Fprintln(stdout, "FAIL config: fix the problems above first")
		return true, nil
	}
	if err != nil {
		return false, err
	}
	t := &tester{out: stdout, timeout: *timeout, log: slog.New(slog.DiscardHandler)}
	t.zuora(ctx, cfg.Zuora)
	for _, sc := range cfg.Sources {
		t.source(ctx, sc, cfg.Instance)
	}
	t.writable("spool", cfg.Spool, true)
	if postgres.IsDSN(cfg.Ledger) {
		t.postgresLedger(ctx, cfg)
	} else {
		t.writable("ledger", cfg.Ledger, false)
	}
	return t.failed, nil
}

// tester runs the checks of `usagedrop test` and prints their verdicts.
type tester struct {
	out     io.Writer
	timeout time.Duration
	log     *slog.Logger
	failed  bool
}

func (t *tester) ok(what, detail string) { fmt.Fprintf(t.out, "ok   %s: %s\n", what, detail) }

func (t *tester) fail(what string, err error) {
	t.failed = true
	fmt.Fprintf(t.out, "FAIL %s: %s\n", what, safetext.Name(err.Error()))
}

// zuora gets a token with the configured client, and for api: soap logs
// in as well. The built-in simulator has nothing to reach.
func (t *tester) zuora(ctx context.Context, zc config.Zuora) {
	if zc.Endpoint == config.Builtin {
		t.ok("zuora", "the built-in simulator, started in process by the daemon (nothing reaches a real tenant)")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	z, err := pipeline.BuildZuora(zc, t.log)
	if err != nil {
		t.fail("zuora", err)
		return
	}
	defer z.Close()
	if err := z.Client.CheckToken(ctx); err != nil {
		t.fail("zuora", fmt.Errorf("token from %s: %w", zc.Endpoint, err))
		return
	}
	t.ok("zuora", fmt.Sprintf("token for client %q from %s", zc.ClientID, zc.EndpointKind()))
	if s, ok := z.Uploader.(*uploader.SOAPImport); ok {
		if err := s.CheckLogin(ctx); err != nil {
			t.fail("zuora soap", fmt.Errorf("login at %s as %q: %w", zc.SOAPEndpoint, zc.Username, err))
			return
		}
		t.ok("zuora soap", fmt.Sprintf("logged in at %s as %q", zc.SOAPEndpoint, zc.Username))
	}
}

// source lists a source once, as the daemon's first poll would. For
// SFTP that dials and verifies the host key; a missing local folder is
// left alone, since the daemon makes it at start.
func (t *tester) source(ctx context.Context, sc config.Source, instance string) {
	what := fmt.Sprintf("source %s (%s %s)", sc.Name, sc.Type, sc.Where())
	if sc.Type == "local" {
		fi, err := os.Stat(sc.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if dir, werr := nearestDir(sc.Path); werr != nil {
				t.fail(what, fmt.Errorf("the folder does not exist, and %w", werr))
			} else {
				t.ok(what, fmt.Sprintf("the folder does not exist yet; the daemon makes it in %s at start", dir))
			}
			return
		case err != nil:
			t.fail(what, err)
			return
		case !fi.IsDir():
			t.fail(what, fmt.Errorf("%s is not a folder", sc.Path))
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	s, err := pipeline.BuildSource(sc, instance, t.log)
	if err != nil {
		t.fail(what, err)
		return
	}
	defer s.Close()
	objs, err := s.Src.List(ctx)
	if err != nil {
		t.fail(what, err)
		return
	}
	waiting := 0
	for _, o := range objs {
		if !o.Claimed {
			waiting++
		}
	}
	detail := fmt.Sprintf("listed; %d file(s) waiting", waiting)
	if sc.Type == "sftp" {
		detail = "host key verified, " + detail
	}
	t.ok(what, detail)
}

// writable checks that path (a folder when dir is set, else a file) can
// be written, without changing it: an existing file is opened for
// writing and closed, a folder gets a temporary file that is removed at
// once. Where path does not exist yet, the nearest folder above it must
// be writable, since the daemon creates it.
func (t *tester) writable(what, path string, dir bool) {
	what = what + " " + path
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent, err := nearestDir(path)
		if err != nil {
			t.fail(what, fmt.Errorf("does not exist, and %w", err))
			return
		}
		t.ok(what, fmt.Sprintf("does not exist yet; the daemon creates it in %s, which is writable", parent))
	case err != nil:
		t.fail(what, err)
	case dir != fi.IsDir():
		kind := "a file"
		if fi.IsDir() {
			kind = "a folder"
		}
		t.fail(what, fmt.Errorf("is %s", kind))
	case dir:
		if err := probeDir(path); err != nil {
			t.fail(what, err)
			return
		}
		t.ok(what, "writable")
	default:
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.fail(what, err)
			return
		}
		f.Close()
		t.ok(what, "writable")
	}
}

// nearestDir returns the closest existing folder above path, once it has
// proved writable.
func nearestDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			if err := probeDir(d); err != nil {
				return "", err
			}
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no folder above %s exists", path)
		}
	}
}

// probeDir creates and removes a hidden temporary file in dir.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".usagedrop-test-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
