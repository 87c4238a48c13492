package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"usagedrop/ledger"
)

// Leases. Each active drop row carries its owner and lease_until, on the
// database's clock: daemons never compare their own clocks. The owner's
// heartbeat (Renew) pushes lease_until forward; Acquire takes the rows
// whose lease_until has passed with FOR UPDATE SKIP LOCKED, so that two
// daemons looking at once split them, and neither waits on a row a
// transition holds. The pipeline calls both on its heartbeat tick, and
// there is no other loop.

var _ ledger.Leaser = (*Store)(nil)

// Instance implements ledger.Leaser.
func (s *Store) Instance() string { return s.instance }

// Lease implements ledger.Leaser; zero when the store was opened without
// one (commands), which then leases nothing.
func (s *Store) Lease() time.Duration { return s.lease }

// Create implements ledger.Store; a leasing store returns the new drop
// with its owner, this instance.
func (s *Store) Create(source, name, key string, size int64, etag string, takenOver bool) (*ledger.Entry, error) {
	e, err := s.Machine.Create(source, name, key, size, etag, takenOver)
	if err == nil && s.lease > 0 {
		e.Owner = s.instance
	}
	return e, err
}

// Renew implements ledger.Leaser in one statement. A drop this instance
// held whose lease ran out is renewed too if no other instance took it
// meanwhile: the UPDATE re-reads a row another transaction changed and
// skips it when the owner is no longer this one.
func (s *Store) Renew() ([]string, error) {
	if s.lease <= 0 {
		return nil, nil
	}
	var ids []string
	err := s.query(func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `UPDATE entries SET lease_until = now() + make_interval(secs => $2)
			WHERE active AND owner = $1 RETURNING id`, s.instance, s.lease.Seconds())
		var err error
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger renew leases of %s: %w", s.instance, err)
	}
	return ids, nil
}

// Acquire implements ledger.Leaser in one statement, oldest drops first.
func (s *Store) Acquire(n int) ([]ledger.Acquired, error) {
	if s.lease <= 0 || n <= 0 {
		return nil, nil
	}
	var out []ledger.Acquired
	err := s.query(func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `WITH lapsed AS (
				SELECT id, owner FROM entries
				WHERE active AND (owner IS NULL OR lease_until IS NULL OR lease_until < now())
				ORDER BY id LIMIT $3
				FOR UPDATE SKIP LOCKED
			)
			UPDATE entries e SET owner = $1, lease_until = now() + make_interval(secs => $2)
			FROM lapsed WHERE e.id = lapsed.id
			RETURNING e.id, e.entry, lapsed.owner`, s.instance, s.lease.Seconds(), n)
		var id string
		var raw []byte
		var from *string
		_, err := pgx.ForEachRow(rows, []any{&id, &raw, &from}, func() error {
			e, err := decode(id, raw, &s.instance)
			if err != nil {
				return err
			}
			a := ledger.Acquired{Entry: e}
			if from != nil {
				a.From = *from
			}
			out = append(out, a)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger acquire lapsed drops for %s: %w", s.instance, err)
	}
	return out, nil
}
