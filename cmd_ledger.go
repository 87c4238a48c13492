package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"usagedrop/ledger"
	"usagedrop/ledger/postgres"
)

// copyBatch is how many drops one transaction of `ledger copy` writes.
const copyBatch = 500

// runLedger is `usagedrop ledger copy FROM TO`: it copies every drop of
// one ledger, a bbolt file or a postgres:// DSN, into another, with its
// history, its records and notices and its hold on its bytes, so that a
// VM joining a fleet keeps recognising what it imported. Drops already in
// TO under the same id are replaced: a copy run twice changes nothing.
func runLedger(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	flags := flag.NewFlagSet("ledger copy", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "Usage of ledger copy: usagedrop ledger copy [-password-file FILE] FROM TO\n\n"+
			"Copies every drop of the ledger FROM into the ledger TO; each is a bbolt file or\n"+
			"a postgres:// DSN. Stop the daemons using either first.\n\n")
		flags.PrintDefaults()
	}
	pwFile := flags.String("password-file", "", "the PostgreSQL password (default: PGPASSWORD)")
	switch args[0] {
	case "-h", "-help", "--help", "help":
		// copy is the one subcommand: its usage is the command's.
		flags.SetOutput(stdout)
		flags.Usage()
		return errHelp
	case "copy":
	default:
		return fmt.Errorf("ledger: unknown command %q (try: usagedrop ledger copy FROM TO)", args[0])
	}
	rest, err := parseArgs(flags, args[1:], stdout)
	if err != nil || len(rest) != 2 {
		return cmp.Or(err, errUsage)
	}
	var password string
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("password file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if rest[0] == rest[1] {
		return fmt.Errorf("ledger copy: FROM and TO are the same ledger")
	}
	from, err := openCopier(ctx, rest[0], password, false)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := openCopier(ctx, rest[1], password, true)
	if err != nil {
		return err
	}
	defer to.Close()

	var total ledger.Imported
	var batch []ledger.Item
	flush := func() error {
		n, err := to.Import(batch)
		if err != nil {
			return err
		}
		total.Entries += n.Entries
		total.Records += n.Records
		total.Notices += n.Notices
		total.OwnersKept += n.OwnersKept
		batch = batch[:0]
		return nil
	}
	err = from.Export(func(it ledger.Item) error {
		batch = append(batch, it)
		if len(batch) < copyBatch {
			return nil
		}
		return flush()
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("ledger copy after %d drops: %w", total.Entries, err)
	}
	fmt.Fprintf(stdout, "copied %s drops (%s records created one by one, %s notices) from %s to %s\n",
		ledger.Thousands(total.Entries), ledger.Thousands(total.Records), ledger.Thousands(total.Notices),
		displayLedger(rest[0]), displayLedger(rest[1]))
	if total.OwnersKept > 0 {
		fmt.Fprintf(stdout, "%s of them held bytes a drop already in %s holds: that drop stays their owner, and a re-drop of them is its duplicate\n",
			ledger.Thousands(total.OwnersKept), displayLedger(rest[1]))
	}
	return nil
}

// openCopier opens the ledger s names for `ledger copy`; a bbolt file is
// created only when create is set.
func openCopier(ctx context.Context, s, password string, create bool) (ledger.Copier, error) {
	if postgres.IsDSN(s) {
		return postgres.Open(ctx, s, postgres.Options{Password: password})
	}
	if _, err := os.Stat(s); !create && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no ledger at %s", s)
	}
	return ledger.Open(s, ledger.Options{Timeout: 300 * time.Millisecond})
}

// displayLedger is a ledger as it may be shown: a DSN's password hidden.
func displayLedger(s string) string {
	if postgres.IsDSN(s) {
		return postgres.Redact(s)
	}
	return s
}
