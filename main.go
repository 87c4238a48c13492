// Command usagedrop takes usage files dropped into folders and imports each
// into Zuora exactly once.
//
//	usagedrop run [-config FILE]             the daemon
//	usagedrop check [-source NAME] FILE...   validate offline
//	usagedrop status [-source S -state S -since T] [NAME|ID]
//	                                         what happened to each file
//	usagedrop retry ID                       try a drop now, or send it again
//	usagedrop forget ID|SHA256 -yes          let the same bytes be dropped again
//	usagedrop export [-since T] [-format csv|jsonl]
//	                                         every drop, streamed
//	usagedrop ledger copy FROM TO            a bbolt ledger into PostgreSQL, or back
//	usagedrop sim [-listen ADDR]             the Zuora simulator as a server
//	usagedrop config check FILE              every problem of a config at once
//	usagedrop test [-config FILE]            reach Zuora and every source
//	usagedrop version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"usagedrop/config"
)

const usage = `usagedrop imports usage files dropped into folders into Zuora, exactly once.

Usage:
  usagedrop run [-config FILE]               run the daemon (no config: ./drop → built-in simulator)
  usagedrop check [-config FILE] [-source NAME] [-o OUT.csv] [-json] FILE...
                                             convert and validate files offline
  usagedrop status [-config FILE] [-json] [-source NAME] [-state STATES] [-since 24h|DATE] [NAME|ID]
                                             one line per dropped file, or one drop with its history
  usagedrop retry [-config FILE] ID          try a waiting drop now, or send a rejected or failed one again
  usagedrop forget [-config FILE] [-yes] ID|SHA256
                                             let the same bytes as an imported drop be dropped again
  usagedrop export [-config FILE] [-since 24h|DATE] [-format jsonl|csv]
                                             every drop, streamed
  usagedrop ledger copy [-password-file FILE] FROM TO
                                             copy every drop of a ledger (a file or a postgres:// DSN)
                                             into another: a VM joining a fleet keeps what it imported
  usagedrop sim [-listen ADDR]               run the Zuora simulator as a server
  usagedrop config check FILE                list every problem of a config, or "ok"
  usagedrop test [-config FILE]              get a token from Zuora, list every source,
                                             check the spool and ledger are writable
  usagedrop version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage is a command line that does not parse; the usage is printed.
var errUsage = errors.New("usage")

// errHelp is -h or --help: the command's flags were printed, and that is
// a success.
var errHelp = errors.New("help")

// parseArgs parses fs's flags wherever they stand among the other
// arguments ("check march.csv -o out.csv" as well as "check -o out.csv
// march.csv"), as people type them, and returns the other arguments in
// order. -h and --help print the flags to out and give errHelp.
func parseArgs(fs *flag.FlagSet, args []string, out io.Writer) ([]string, error) {
	fs.SetOutput(out)
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		rest, args = append(rest, args[0]), args[1:]
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runDaemon(ctx, args[1:], stdout, stderr)
	case "check":
		var rejected bool
		rejected, err = runCheck(ctx, args[1:], stdout, stderr)
		if err == nil && rejected {
			return 1
		}
	case "status":
		err = runStatus(ctx, args[1:], stdout)
	case "retry":
		err = runRetry(ctx, args[1:], stdout)
	case "forget":
		err = runForget(ctx, args[1:], stdout)
	case "export":
		err = runExport(ctx, args[1:], stdout)
	case "ledger":
		err = runLedger(ctx, args[1:], stdout)
	case "sim":
		err = runSim(ctx, args[1:], stdout, stderr)
	case "config":
		var bad bool
		bad, err = runConfig(ctx, args[1:], stdout)
		if err == nil && bad {
			return 1
		}
	case "test":
		var failed bool
		failed, err = runTest(ctx, args[1:], stdout)
		if err == nil && failed {
			return 1
		}
	case "version", "-version", "--version":
		err = runVersion(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "usagedrop: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprint(stderr, usage)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "usagedrop:", err)
		return 1
	}
	return 0
}

// newLogger logs text to w at info, or debug with USAGEDROP_DEBUG: the
// logger of the commands that have no config, and of the daemon until
// its config is read.
func newLogger(w io.Writer) *slog.Logger {
	return newConfiguredLogger(w, config.Log{}, new(slog.LevelVar))
}

// newConfiguredLogger logs to w in c's format at level, which it sets to
// c's level (debug with USAGEDROP_DEBUG); a reload sets level again.
func newConfiguredLogger(w io.Writer, c config.Log, level *slog.LevelVar) *slog.Logger {
	level.Set(logLevel(c))
	opt := &slog.HandlerOptions{Level: level}
	if c.JSON() {
		return slog.New(slog.NewJSONHandler(w, opt))
	}
	return slog.New(slog.NewTextHandler(w, opt))
}

// logLevel is c's level, unless USAGEDROP_DEBUG asks for debug.
func logLevel(c config.Log) slog.Level {
	if os.Getenv("USAGEDROP_DEBUG") != "" {
		return slog.LevelDebug
	}
	return c.SlogLevel()
}
