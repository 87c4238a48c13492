// Package postgres is a ledger.Store in PostgreSQL, for a fleet of daemons
// that share one ledger on a database their operators already run.
//
// The transitions are ledger.Machine's, the same as bbolt's: this package
// only implements ledger.Tx over its tables. Each transition is one
// transaction that locks its entry's row (SELECT ... FOR UPDATE), so two
// daemons moving one drop take turns; the index of which drop owns which
// bytes is guarded by a transaction-scoped advisory lock on the sum, so
// two drops of the same bytes fetched at once on two daemons cannot both
// pass. Entries are stored whole as JSONB (ledger.Entry's encoding) beside
// the columns the queries select on.
//
// The schema is created and migrated by Open: versioned migrations
// (migrations/*.sql) recorded in schema_migrations, run under an advisory
// lock, so that several daemons starting at once apply each exactly once.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"usagedrop/ledger"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)).
const (
	lockMigrations = 1 // second key 0
	lockSHA        = 2 // second key: hashtext(sum)
	lockDaemon     = 3 // second key 0: Options.Exclusive
	lockFile       = 4 // second key: hashtext(source, key): Admit
	lockInstance   = 5 // second key: hashtext(Options.Instance)
)

// Options tune Open.
type Options struct {
	// MaxStarts is ledger.Options.MaxStarts. Zero means 3.
	MaxStarts int
	// Password, when set, is used instead of the DSN's or PGPASSWORD's.
	Password string
	// Timeout bounds each transaction. Zero means 30 s.
	Timeout time.Duration
	// Tracer, when set, sees every query (tests count them).
	Tracer pgx.QueryTracer
	// Exclusive holds the ledger for this process, as bbolt's file lock
	// does: a second Exclusive Open fails with ledger.ErrLocked. The
	// daemon no longer asks for it: it leases each drop (Instance, Lease)
	// and resumes only those it holds, so daemons share the ledger. It
	// stays for a process that must be alone on a ledger.
	Exclusive bool
	// Instance and Lease lease each drop to the daemon working it (see
	// lease.go): Instance names this daemon, Lease is how long a hold
	// lasts without renewal. Both unset, nothing is leased (commands,
	// ledger copy).
	Instance string
	Lease    time.Duration
}

// Store is a ledger in a PostgreSQL database.
type Store struct {
	// Machine holds the transitions; Store its transactions and reads.
	ledger.Machine
	pool    *pgxpool.Pool
	timeout time.Duration
	// instance and lease are Options'; lease is zero when not leasing.
	instance string
	lease    time.Duration
	// held are the connections holding Options.Exclusive's lock and the
	// instance's, each lasting as long as its session.
	held []*pgx.Conn
}

var _ ledger.Store = (*Store)(nil)

// IsDSN reports whether s names a PostgreSQL ledger rather than a file.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns dsn with its password, if any, replaced by "xxxxx": what
// may be logged or shown.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(a DSN that does not parse)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Open connects to the database dsn names, creates or migrates the
// ledger's schema, and returns the ledger. Errors never show the
// password.
func Open(ctx context.Context, dsn string, opt Options) (*Store, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	if (opt.Instance == "") != (opt.Lease <= 0) {
		return nil, fmt.Errorf("open ledger %s: a lease needs both an instance name and a duration", Redact(dsn))
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the DSN, password and all.
		return nil, fmt.Errorf("open ledger %s: the DSN does not parse", Redact(dsn))
	}
	if opt.Password != "" {
		cfg.ConnConfig.Password = opt.Password
	}
	cfg.ConnConfig.Tracer = opt.Tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", Redact(dsn), err)
	}
	s := &Store{pool: pool, timeout: opt.Timeout, instance: opt.Instance, lease: max(opt.Lease, 0)}
	s.Machine = ledger.NewMachine(s.update, s.view, opt.MaxStarts)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open ledger %s: %w", Redact(dsn), err)
	}
	if opt.Exclusive {
		if err := s.hold(ctx, cfg.ConnConfig, lockDaemon, "",
			"another usagedrop daemon works this PostgreSQL ledger, opened for it alone"); err != nil {
			s.Close()
			return nil, fmt.Errorf("open ledger %s: %w", Redact(dsn), err)
		}
	}
	if s.lease > 0 {
		// Two daemons under one name would both believe they hold the
		// same drops.
		if err := s.hold(ctx, cfg.ConnConfig, lockInstance, s.instance,
			fmt.Sprintf("another usagedrop daemon already runs as instance %q on this PostgreSQL ledger; give each daemon of a fleet its own instance name", s.instance)); err != nil {
			s.Close()
			return nil, fmt.Errorf("open ledger %s: %w", Redact(dsn), err)
		}
	}
	return s, nil
}

// hold takes a session's advisory lock on (class, name) on a connection
// of its own, or fails with ledger.ErrLocked and busy.
func (s *Store) hold(ctx context.Context, cc *pgx.ConnConfig, class int, name, busy string) error {
	c, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err != nil {
		return err
	}
	// The lock goes with the session: should this machine vanish, the
	// server is to notice within about a minute, not the two hours of
	// the system's default, so that a daemon restarted elsewhere under
	// the same name may start.
	for _, set := range []string{"SET tcp_keepalives_idle = 30", "SET tcp_keepalives_interval = 10", "SET tcp_keepalives_count = 3"} {
		if _, err := c.Exec(ctx, set); err != nil {
			c.Close(ctx)
			return err
		}
	}
	var got bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", class, name).Scan(&got); err != nil {
		c.Close(ctx)
		return err
	}
	if !got {
		c.Close(ctx)
		return fmt.Errorf("%w (%s)", ledger.ErrLocked, busy)
	}
	s.held = append(s.held, c)
	return nil
}

// Check connects to the database dsn names and says where its schema
// stands, changing nothing: what `usagedrop test` shows.
func Check(ctx context.Context, dsn string, opt Options) (string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", fmt.Errorf("ledger %s: the DSN does not parse", Redact(dsn))
	}
	if opt.Password != "" {
		cfg.Password = opt.Password
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("ledger %s: %w", Redact(dsn), err)
	}
	defer c.Close(ctx)
	latest, err := latestMigration()
	if err != nil {
		return "", err
	}
	var version int
	err = c.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		return fmt.Sprintf("reachable; empty: the daemon creates the schema (version %d) at its start", latest), nil
	}
	if err != nil {
		return "", fmt.Errorf("ledger %s: %w", Redact(dsn), err)
	}
	if version > latest {
		return "", fmt.Errorf("ledger %s: schema version %d is newer than this usagedrop's (%d): upgrade usagedrop", Redact(dsn), version, latest)
	}
	if version < latest {
		return fmt.Sprintf("reachable; schema version %d, migrated to %d at the daemon's start", version, latest), nil
	}
	return fmt.Sprintf("reachable; schema version %d", version), nil
}

// Close implements ledger.Store.
func (s *Store) Close() error {
	s.pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, c := range s.held {
		// Closing the session releases the lock.
		errs = append(errs, c.Close(ctx))
	}
	s.held = nil
	return errors.Join(errs...)
}

// migrate applies the migrations not yet recorded, in order, in one
// transaction under an advisory lock: a daemon starting beside another
// waits for it and then finds the schema current.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	latest, err := latestMigration()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, 0)", lockMigrations); err != nil {
			return fmt.Errorf("lock the schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version int PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, _ := tx.Query(ctx, "SELECT version FROM schema_migrations")
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current := slices.Max(append(applied, 0)); current > latest {
			return fmt.Errorf("schema version %d is newer than this usagedrop's (%d): upgrade usagedrop", current, latest)
		}
		for _, name := range names {
			base := strings.TrimPrefix(name, "migrations/")
			v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
			if err != nil {
				return fmt.Errorf("migration %s: no version number", base)
			}
			// Each version not applied yet, rather than each above the
			// highest applied: migrations written on two branches at once
			// may be merged in either order.
			if slices.Contains(applied, v) {
				continue
			}
			sql, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", v, base); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
		}
		return nil
	})
}

// latestMigration is the highest version among the migrations: the
// schema version this program makes.
func latestMigration() (int, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return 0, err
	}
	latest := 0
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if err != nil {
			return 0, fmt.Errorf("migration %s: no version number", name)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// update runs fn in a write transaction. A deadlock or serialization
// failure, which PostgreSQL resolves by failing one side, is run again.
func (s *Store) update(fn func(ledger.Tx) error) error {
	for try := 1; ; try++ {
		err := s.run(pgx.TxOptions{}, true, fn)
		var pe *pgconn.PgError
		if try < 5 && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
			continue
		}
		return err
	}
}

func (s *Store) view(fn func(ledger.Tx) error) error {
	return s.run(pgx.TxOptions{AccessMode: pgx.ReadOnly}, false, fn)
}

func (s *Store) run(o pgx.TxOptions, write bool, fn func(ledger.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return pgx.BeginTxFunc(ctx, s.pool, o, func(tx pgx.Tx) error {
		return fn(&pgTx{ctx: ctx, tx: tx, write: write, s: s})
	})
}

// pgTx is a PostgreSQL transaction as ledger.Machine sees it.
type pgTx struct {
	ctx   context.Context
	tx    pgx.Tx
	write bool
	s     *Store
}

var _ ledger.Tx = (*pgTx)(nil)

func (t *pgTx) Entry(id string) (*ledger.Entry, error) {
	q := "SELECT entry, owner FROM entries WHERE id = $1"
	if t.write {
		q += " FOR UPDATE"
	}
	var raw []byte
	var owner *string
	err := t.tx.QueryRow(t.ctx, q, id).Scan(&raw, &owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decode(id, raw, owner)
}

// decode returns the entry stored as raw, held by owner.
func decode(id string, raw []byte, owner *string) (*ledger.Entry, error) {
	var e ledger.Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	e.Owner = ""
	if owner != nil {
		e.Owner = *owner
	}
	return &e, nil
}

func (t *pgTx) PutEntry(e *ledger.Entry) error {
	// The owner lives in its column, renewed without the entry: the
	// JSON never holds a stale one.
	c := *e
	c.Owner = ""
	raw, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	var sha, owner *string
	if e.SHA256 != "" {
		sha = &e.SHA256
	}
	if t.s.lease > 0 {
		owner = &t.s.instance
	}
	// A new entry is held by the instance that recorded it; an update
	// keeps whoever holds it.
	_, err = t.tx.Exec(t.ctx, `INSERT INTO entries (id, source, state, active, sha256, updated, entry, key, owner, lease_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $9::text IS NULL THEN NULL ELSE now() + make_interval(secs => $10) END)
		ON CONFLICT (id) DO UPDATE SET source = excluded.source, state = excluded.state, active = excluded.active,
			sha256 = excluded.sha256, updated = excluded.updated, entry = excluded.entry, key = excluded.key`,
		e.ID, e.Source, string(e.State), !e.Finished, sha, e.Updated, string(raw), []byte(e.Key), owner, t.s.lease.Seconds())
	return err
}

// Admit implements ledger.Admitter when leasing: of daemons that list one
// folder, the first to record a file holds it, and the others find it
// held. The lock on the file's name is held to the commit, so two at once
// take turns.
func (t *pgTx) Admit(e *ledger.Entry) error {
	if t.s.lease <= 0 {
		return nil
	}
	if _, err := t.tx.Exec(t.ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2 || encode($3::bytea, 'hex')))", lockFile, e.Source, []byte(e.Key)); err != nil {
		return err
	}
	var id string
	err := t.tx.QueryRow(t.ctx, "SELECT id FROM entries WHERE active AND source = $1 AND key = $2 LIMIT 1", e.Source, []byte(e.Key)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%s is drop %s: %w", e.Key, id, ledger.ErrHeld)
}

func (t *pgTx) Owner(sha string) (string, error) {
	if t.write {
		// Held to the commit: another drop of these bytes waits here,
		// then finds this one the owner.
		if _, err := t.tx.Exec(t.ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", lockSHA, sha); err != nil {
			return "", err
		}
	}
	var id string
	err := t.tx.QueryRow(t.ctx, "SELECT id FROM sha_owners WHERE sha256 = $1", sha).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

func (t *pgTx) SetOwner(sha, id string) error {
	_, err := t.tx.Exec(t.ctx, `INSERT INTO sha_owners (sha256, id) VALUES ($1, $2)
		ON CONFLICT (sha256) DO UPDATE SET id = excluded.id`, sha, id)
	return err
}

func (t *pgTx) HasRecords(id string) (bool, error) {
	var has bool
	err := t.tx.QueryRow(t.ctx, "SELECT EXISTS (SELECT 1 FROM records WHERE drop_id = $1)", id).Scan(&has)
	return has, err
}

func (t *pgTx) PutRecords(id string, recs []ledger.CreatedRecord) error {
	// One row per key, the last given winning, as a second Put would.
	byKey := make(map[string]string, len(recs))
	keys := make([]string, 0, len(recs))
	for _, r := range recs {
		if _, ok := byKey[r.Key]; !ok {
			keys = append(keys, r.Key)
		}
		byKey[r.Key] = r.ZuoraID
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = byKey[k]
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO records (drop_id, key, zuora_id)
		SELECT $1, k, z FROM unnest($2::text[], $3::text[]) AS r(k, z)
		ON CONFLICT (drop_id, key) DO UPDATE SET zuora_id = excluded.zuora_id`, id, keys, ids)
	return err
}

func (t *pgTx) DropRecords(id string) error {
	_, err := t.tx.Exec(t.ctx, "DELETE FROM records WHERE drop_id = $1", id)
	return err
}

func (t *pgTx) RecordHolders(id string) ([]string, error) {
	rows, _ := t.tx.Query(t.ctx, "SELECT DISTINCT drop_id FROM records WHERE drop_id <> $1 ORDER BY drop_id", id)
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (t *pgTx) TakeRecords(id string, from, keys []string) (map[string]int, error) {
	// Each wanted key once, from the first donor in from's order that
	// holds it: moved, in one statement.
	rows, _ := t.tx.Query(t.ctx, `WITH want AS (
			SELECT DISTINCT k FROM unnest($2::text[]) AS k
			WHERE NOT EXISTS (SELECT 1 FROM records WHERE drop_id = $1 AND key = k)
		), pick AS (
			SELECT DISTINCT ON (r.key) r.drop_id, r.key, r.zuora_id
			FROM records r JOIN want ON r.key = want.k
			WHERE r.drop_id = ANY($3::text[])
			ORDER BY r.key, array_position($3::text[], r.drop_id::text)
		), gone AS (
			DELETE FROM records r USING pick WHERE r.drop_id = pick.drop_id AND r.key = pick.key
			RETURNING r.drop_id
		), mine AS (
			INSERT INTO records (drop_id, key, zuora_id) SELECT $1, key, zuora_id FROM pick
		)
		SELECT drop_id, count(*) FROM gone GROUP BY drop_id`, id, keys, from)
	given := map[string]int{}
	var d string
	var n int
	_, err := pgx.ForEachRow(rows, []any{&d, &n}, func() error {
		given[d] = n
		return nil
	})
	return given, err
}

func (t *pgTx) Notice(key string) (*ledger.Notice, error) {
	q := "SELECT notice FROM notices WHERE key = $1"
	if t.write {
		q += " FOR UPDATE"
	}
	var raw []byte
	err := t.tx.QueryRow(t.ctx, q, key).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("notice %s: %w", key, ledger.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var n ledger.Notice
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("decode notice %s: %w", key, err)
	}
	return &n, nil
}

func (t *pgTx) NoticesOf(id string) ([]ledger.Notice, error) {
	rows, _ := t.tx.Query(t.ctx, "SELECT notice FROM notices WHERE drop_id = $1 ORDER BY key", id)
	return collectNotices(rows)
}

func collectNotices(rows pgx.Rows) ([]ledger.Notice, error) {
	var out []ledger.Notice
	var raw []byte
	_, err := pgx.ForEachRow(rows, []any{&raw}, func() error {
		var n ledger.Notice
		if err := json.Unmarshal(raw, &n); err != nil {
			return fmt.Errorf("decode notice: %w", err)
		}
		out = append(out, n)
		return nil
	})
	return out, err
}

func (t *pgTx) PutNotice(n *ledger.Notice) error {
	raw, err := json.Marshal(n)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO notices (key, drop_id, closed, notice) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO UPDATE SET closed = excluded.closed, notice = excluded.notice`,
		n.Key, n.DropID, n.Closed, string(raw))
	return err
}

func (t *pgTx) DeleteNotice(key string) error {
	_, err := t.tx.Exec(t.ctx, "DELETE FROM notices WHERE key = $1", key)
	return err
}

// The reads.

func (s *Store) query(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return fn(ctx)
}

func (s *Store) entries(q string, args ...any) ([]*ledger.Entry, error) {
	var out []*ledger.Entry
	err := s.query(func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, q, args...)
		var id string
		var raw []byte
		var owner *string
		_, err := pgx.ForEachRow(rows, []any{&id, &raw, &owner}, func() error {
			e, err := decode(id, raw, owner)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
		return err
	})
	return out, err
}

// Get implements ledger.Store in one statement: a read of one row needs
// no transaction of its own, and the pipeline reads a drop's entry about
// eight times.
func (s *Store) Get(id string) (*ledger.Entry, error) {
	var raw []byte
	var owner *string
	err := s.query(func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT entry, owner FROM entries WHERE id = $1", id).Scan(&raw, &owner)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", id, err)
	}
	return decode(id, raw, owner)
}

// Active implements ledger.Store.
func (s *Store) Active() ([]*ledger.Entry, error) {
	out, err := s.entries("SELECT id, entry, owner FROM entries WHERE active ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("ledger active entries: %w", err)
	}
	return out, nil
}

// page is how many entries List, ListAfter and ListBefore read at a time:
// no connection is held while their fn runs.
const page = 500

// List implements ledger.Store.
func (s *Store) List(fn func(e *ledger.Entry) bool) error { return s.ListAfter("", fn) }

// ListAfter calls fn for every entry whose id sorts after after, oldest
// first, until fn returns false; after "" starts at the first.
func (s *Store) ListAfter(after string, fn func(e *ledger.Entry) bool) error {
	for {
		es, err := s.entries("SELECT id, entry, owner FROM entries WHERE id > $1 ORDER BY id LIMIT $2", after, page)
		if err != nil {
			return fmt.Errorf("ledger list: %w", err)
		}
		for _, e := range es {
			if !fn(e) {
				return nil
			}
			after = e.ID
		}
		if len(es) < page {
			return nil
		}
	}
}

// ListBefore calls fn for every entry whose id sorts before before, newest
// first, until fn returns false; before "" starts at the newest.
func (s *Store) ListBefore(before string, fn func(e *ledger.Entry) bool) error {
	for {
		var es []*ledger.Entry
		var err error
		if before == "" {
			es, err = s.entries("SELECT id, entry, owner FROM entries ORDER BY id DESC LIMIT $1", page)
		} else {
			es, err = s.entries("SELECT id, entry, owner FROM entries WHERE id < $1 ORDER BY id DESC LIMIT $2", before, page)
		}
		if err != nil {
			return fmt.Errorf("ledger list: %w", err)
		}
		for _, e := range es {
			if !fn(e) {
				return nil
			}
			before = e.ID
		}
		if len(es) < page {
			return nil
		}
	}
}

// Prune implements ledger.Store: finished entries last updated before
// cutoff go, with their records and their hold on their bytes.
func (s *Store) Prune(cutoff time.Time) (int, error) {
	var n int
	err := s.query(func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `WITH gone AS (
				DELETE FROM entries WHERE NOT active AND updated < $1 RETURNING id, sha256
			), owners AS (
				DELETE FROM sha_owners o USING gone WHERE o.sha256 = gone.sha256 AND o.id = gone.id
			), recs AS (
				DELETE FROM records r USING gone WHERE r.drop_id = gone.id
			)
			SELECT count(*) FROM gone`, cutoff).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("ledger prune: %w", err)
	}
	return n, nil
}

// BySHA256 implements ledger.Store.
func (s *Store) BySHA256(sum string) (string, error) {
	sum = strings.ToLower(strings.TrimSpace(sum))
	if len(sum) < ledger.MinSHAPrefix {
		return "", fmt.Errorf("sha256 %q: give at least %d hex digits: %w", sum, ledger.MinSHAPrefix, ledger.ErrNotFound)
	}
	var shas, ids []string
	err := s.query(func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, "SELECT sha256, id FROM sha_owners WHERE sha256 >= $1 ORDER BY sha256 LIMIT 2", sum)
		var sha, id string
		_, err := pgx.ForEachRow(rows, []any{&sha, &id}, func() error {
			if strings.HasPrefix(sha, sum) {
				shas, ids = append(shas, sha), append(ids, id)
			}
			return nil
		})
		return err
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("sha256 %s: %w", sum, err)
	case len(ids) == 0:
		return "", fmt.Errorf("sha256 %s: no drop has those bytes: %w", sum, ledger.ErrNotFound)
	case len(ids) > 1:
		return "", fmt.Errorf("sha256 %s: %w; give more digits", sum, ledger.ErrAmbiguous)
	}
	return ids[0], nil
}

// Records implements ledger.Store.
func (s *Store) Records(id string) (map[string]string, error) {
	out := map[string]string{}
	err := s.query(func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, "SELECT key, zuora_id FROM records WHERE drop_id = $1", id)
		var k, z string
		_, err := pgx.ForEachRow(rows, []any{&k, &z}, func() error {
			out[k] = z
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: records: %w", id, err)
	}
	return out, nil
}

// Notices implements ledger.Store.
func (s *Store) Notices() ([]ledger.Notice, error) {
	var out []ledger.Notice
	err := s.query(func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, "SELECT notice FROM notices WHERE NOT closed ORDER BY key")
		var err error
		out, err = collectNotices(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger notices: %w", err)
	}
	return out, nil
}

var _ ledger.Copier = (*Store)(nil)

// Export implements ledger.Copier, a page of entries at a time with their
// records, notices and sums: not one snapshot, so no daemon should be
// using the ledger meanwhile.
func (s *Store) Export(fn func(ledger.Item) error) error {
	after := ""
	for {
		es, err := s.entries("SELECT id, entry, owner FROM entries WHERE id > $1 ORDER BY id LIMIT $2", after, page)
		if err != nil {
			return fmt.Errorf("ledger export: %w", err)
		}
		if len(es) == 0 {
			return nil
		}
		ids := make([]string, len(es))
		items := make(map[string]*ledger.Item, len(es))
		for i, e := range es {
			// Who held it is this database's business, not the copy's.
			e.Owner = ""
			ids[i] = e.ID
			items[e.ID] = &ledger.Item{Entry: e}
		}
		err = s.query(func(ctx context.Context) error {
			rows, _ := s.pool.Query(ctx, "SELECT id, sha256 FROM sha_owners WHERE id = ANY($1) ORDER BY sha256", ids)
			var id, a, b string
			if _, err := pgx.ForEachRow(rows, []any{&id, &a}, func() error {
				items[id].Owns = append(items[id].Owns, a)
				return nil
			}); err != nil {
				return err
			}
			rows, _ = s.pool.Query(ctx, "SELECT drop_id, key, zuora_id FROM records WHERE drop_id = ANY($1) ORDER BY drop_id, key", ids)
			if _, err := pgx.ForEachRow(rows, []any{&id, &a, &b}, func() error {
				it := items[id]
				it.Records = append(it.Records, ledger.CreatedRecord{Key: a, ZuoraID: b})
				return nil
			}); err != nil {
				return err
			}
			rows, _ = s.pool.Query(ctx, "SELECT notice FROM notices WHERE drop_id = ANY($1) ORDER BY key", ids)
			ns, err := collectNotices(rows)
			for _, n := range ns {
				if it := items[n.DropID]; it != nil {
					it.Notices = append(it.Notices, n)
				}
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("ledger export: %w", err)
		}
		for _, id := range ids {
			if err := fn(*items[id]); err != nil {
				return err
			}
		}
		after = ids[len(ids)-1]
	}
}
