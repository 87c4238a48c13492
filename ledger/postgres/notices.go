package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"usagedrop/ledger"
)

// LeaseNotices returns the open notices of drops of sources (or of drops
// no longer in the ledger), up to limit, leased to holder for lease:
// those leased to nobody, to holder already (renewed), or whose lease has
// ended. The rows are chosen FOR UPDATE SKIP LOCKED, so that notifiers
// leasing at once on several daemons never take the same notice nor wait
// on each other; a notice is sent by the daemon holding it, and by
// another only once that one has stopped renewing it (it died). This is
// what the notifier reads on a ledger a fleet shares.
func (s *Store) LeaseNotices(holder string, sources []string, lease time.Duration, limit int) ([]ledger.Notice, error) {
	var out []ledger.Notice
	err := s.query(func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `UPDATE notices n SET holder = $1, lease_until = clock_timestamp() + $2::bigint * interval '1 microsecond'
			WHERE n.key IN (
				SELECT key FROM notices o
				WHERE NOT closed AND (holder IS NULL OR holder = $1 OR lease_until < clock_timestamp())
					AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = o.drop_id AND NOT e.source = ANY(coalesce($3::text[], '{}')))
				ORDER BY key LIMIT $4 FOR UPDATE SKIP LOCKED)
			RETURNING n.notice`, holder, lease.Microseconds(), sources, limit)
		var err error
		out, err = collectNotices(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger notices: lease: %w", err)
	}
	// RETURNING keeps no order.
	sortNotices(out)
	return out, nil
}

// ReleaseNotices ends holder's leases, as a daemon stopping does, so that
// another daemon sends what it had not.
func (s *Store) ReleaseNotices(holder string) error {
	err := s.query(func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, "UPDATE notices SET holder = NULL, lease_until = NULL WHERE holder = $1", holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger notices: release: %w", err)
	}
	return nil
}

func sortNotices(ns []ledger.Notice) {
	slices.SortFunc(ns, func(a, b ledger.Notice) int { return strings.Compare(a.Key, b.Key) })
}
