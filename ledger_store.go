package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"usagedrop/config"
	"usagedrop/ledger"
	"usagedrop/ledger/postgres"
)

// openStore opens the ledger cfg names: the bbolt file, waiting at most
// timeout for another process to release it, or the PostgreSQL database
// of a postgres:// DSN, whose schema it creates or migrates. The daemon
// opens a PostgreSQL ledger leasing drops as cfg.Instance, so that a
// fleet of daemons shares it; commands open it without leases.
func openStore(ctx context.Context, cfg *config.Config, timeout time.Duration, daemon bool) (ledger.Store, error) {
	if !postgres.IsDSN(cfg.Ledger) {
		return ledger.Open(cfg.Ledger, ledger.Options{Timeout: timeout})
	}
	// PGPASSWORD, when the file is not set, is pgx's to read.
	opt := postgres.Options{Password: cfg.LedgerPassword.Value()}
	if daemon {
		opt.Instance, opt.Lease = cfg.Instance, time.Duration(cfg.LedgerLease)
	}
	return postgres.Open(ctx, cfg.Ledger, opt)
}

// ledgerName is cfg's ledger as it may be logged or shown: a DSN's
// password, if any, hidden.
func ledgerName(cfg *config.Config) string {
	if postgres.IsDSN(cfg.Ledger) {
		return postgres.Redact(cfg.Ledger)
	}
	return cfg.Ledger
}

// openCommandLedger opens cfg's ledger for a command. A bbolt file a running
// daemon holds gives ledger.ErrLocked; a file not there yet an error that
// says so, rather than creating it. A PostgreSQL ledger is shared: the
// command reads it directly, with the whole fleet's drops.
func openCommandLedger(ctx context.Context, cfg *config.Config) (ledger.Store, error) {
	if !postgres.IsDSN(cfg.Ledger) {
		if _, err := os.Stat(cfg.Ledger); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no ledger at %s: this daemon has seen no files yet (or -config names another)", cfg.Ledger)
		}
	}
	return openStore(ctx, cfg, 300*time.Millisecond, false)
}

// postgresLedger is `usagedrop test`'s check of a PostgreSQL ledger: it
// connects and reads the schema's version, changing nothing.
func (t *tester) postgresLedger(ctx context.Context, cfg *config.Config) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	what := "ledger " + ledgerName(cfg)
	detail, err := postgres.Check(ctx, cfg.Ledger, postgres.Options{Password: cfg.LedgerPassword.Value()})
	if err != nil {
		t.fail(what, err)
		return
	}
	t.ok(what, detail)
}
