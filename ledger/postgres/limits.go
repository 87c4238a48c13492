package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// slotsChannel is the LISTEN/NOTIFY channel a released slot is announced
// on, so that daemons waiting for one try again at once.
const slotsChannel = "usagedrop_zuora_slots"

// LimitOptions configure a Limiter.
type LimitOptions struct {
	// Holder names this daemon (its instance) on the slots it holds.
	Holder string
	// Max is the fleet's limit of requests in flight at once; at least 1.
	// Daemons configured with different limits share the slots numbered
	// up to each one's own.
	Max int
	// PerMinute is the fleet's budget of requests started a minute; zero
	// sets none.
	PerMinute int
	// Lease is how long a slot stays held without renewal: a daemon that
	// dies gives its slots back this long after its last renewal. Zero
	// means 30 s; the slots held are renewed every third of it.
	Lease  time.Duration
	Logger *slog.Logger
}

// Limiter is Zuora's concurrency limit and rate budget shared by every
// daemon on the ledger (an uploader.Limiter). A request takes a slot, a
// row of zuora_slots, with an UPDATE of one free row chosen FOR UPDATE
// SKIP LOCKED, so that daemons taking slots at once never wait on each
// other's rows; the row holds a lease on the database's clock, renewed
// while the request runs and released when it ends. A daemon finding no
// slot free waits for a release (LISTEN) or for a lease to run out,
// whichever comes first. The rate budget is a single row holding when the
// next request may start, moved on by each request in the statement that
// takes its slot.
//
// A local semaphore of Max sits in front, and one request of a daemon at
// a time asks the database for a slot, so that a daemon's own waiting
// requests cost the database nothing: a release wakes one request per
// daemon, not every one.
type Limiter struct {
	s      *Store
	opt    LimitOptions
	owner  string
	ticket atomic.Int64
	local  chan struct{}
	turn   chan struct{} // held by the request asking the database
	log    *slog.Logger

	mu   sync.Mutex
	wake chan struct{} // closed, and replaced, at each notice of a release
	held int           // slots this Limiter holds

	stop context.CancelFunc
	done sync.WaitGroup
}

// ZuoraLimiter returns the fleet's limiter of requests to Zuora, with
// opt.Max slots. It listens for releases on a connection of its own and
// renews its leases until Close.
func (s *Store) ZuoraLimiter(ctx context.Context, opt LimitOptions) (*Limiter, error) {
	opt.Max = max(opt.Max, 1)
	if opt.Lease <= 0 {
		opt.Lease = 30 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	var nonce [6]byte
	rand.Read(nonce[:])
	l := &Limiter{
		s: s, opt: opt, owner: opt.Holder + "/" + hex.EncodeToString(nonce[:]),
		local: make(chan struct{}, opt.Max), turn: make(chan struct{}, 1), log: opt.Logger.With("part", "zuora-limiter"),
		wake: make(chan struct{}),
	}
	err := s.query(func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, "INSERT INTO zuora_slots (slot) SELECT generate_series(1, $1::int) ON CONFLICT DO NOTHING", opt.Max)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("zuora slots: %w", err)
	}
	conn, err := l.listen(ctx)
	if err != nil {
		return nil, fmt.Errorf("zuora slots: listen: %w", err)
	}
	run, stop := context.WithCancel(context.Background())
	l.stop = stop
	l.done.Go(func() { l.notices(run, conn) })
	l.done.Go(func() { l.renew(run) })
	return l, nil
}

func (l *Limiter) listen(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, l.s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "LISTEN "+slotsChannel); err != nil {
		c.Close(ctx)
		return nil, err
	}
	return c, nil
}

// notices wakes the waiters at each release announced, and listens again
// after a lost connection (meanwhile they wake at their leases' ends).
func (l *Limiter) notices(ctx context.Context, c *pgx.Conn) {
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = l.listen(ctx); err != nil {
				l.log.Warn("listening for released Zuora slots", "err", err)
				sleep(ctx, time.Second)
				continue
			}
		}
		if _, err := c.WaitForNotification(ctx); err != nil {
			if ctx.Err() == nil {
				l.log.Warn("listening for released Zuora slots", "err", err)
				c.Close(context.Background())
				c = nil
			}
			continue
		}
		l.mu.Lock()
		close(l.wake)
		l.wake = make(chan struct{})
		l.mu.Unlock()
	}
}

// renew extends the leases of the slots held, every third of a lease.
func (l *Limiter) renew(ctx context.Context) {
	t := time.NewTicker(l.opt.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		held := l.held
		l.mu.Unlock()
		if held == 0 {
			continue
		}
		err := l.s.query(func(ctx context.Context) error {
			_, err := l.s.pool.Exec(ctx, "UPDATE zuora_slots SET until = clock_timestamp() + $2::bigint * interval '1 microsecond' WHERE owner = $1",
				l.owner, l.opt.Lease.Microseconds())
			return err
		})
		if err != nil {
			l.log.Warn("renewing Zuora slots: another daemon may take them when their leases end", "err", err)
		}
	}
}

// Close stops the renewals and gives back every slot still held.
func (l *Limiter) Close() error {
	l.stop()
	l.done.Wait()
	return l.s.query(func(ctx context.Context) error {
		_, err := l.s.pool.Exec(ctx, `WITH r AS (
				UPDATE zuora_slots SET holder = NULL, owner = NULL, ticket = NULL, until = NULL WHERE owner = $1 RETURNING slot
			) SELECT pg_notify($2, '') FROM r`, l.owner, slotsChannel)
		return err
	})
}

// take takes a free slot, and the rate budget's next turn with it, in one
// statement: ok is false when no slot is free, and then soonest is when
// the first lease ends. wait is how long the request waits for its turn.
func (l *Limiter) take(ctx context.Context, ticket int64) (ok bool, wait, soonest time.Duration, err error) {
	lease := l.opt.Lease.Microseconds()
	interval := int64(0)
	if l.opt.PerMinute > 0 {
		interval = (time.Minute / time.Duration(l.opt.PerMinute)).Microseconds()
	}
	var slot *int
	var waitUS, soonestUS *int64
	err = l.s.query(func(qctx context.Context) error {
		return l.s.pool.QueryRow(qctx, `WITH pick AS (
				UPDATE zuora_slots s SET holder = $1, owner = $2, ticket = $3, until = clock_timestamp() + $4::bigint * interval '1 microsecond'
				WHERE s.slot = (SELECT slot FROM zuora_slots
					WHERE slot <= $5::int AND (owner IS NULL OR until < clock_timestamp())
					ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
				RETURNING s.slot
			), pace AS (
				INSERT INTO zuora_pace AS p (name, next)
				SELECT 'zuora', clock_timestamp() + $6::bigint * interval '1 microsecond' FROM pick WHERE $6::bigint > 0
				ON CONFLICT (name) DO UPDATE SET next = greatest(p.next, clock_timestamp()) + $6::bigint * interval '1 microsecond'
				RETURNING next
			)
			SELECT (SELECT slot FROM pick),
				(SELECT (extract(epoch FROM next - clock_timestamp()) * 1e6)::bigint - $6::bigint FROM pace),
				(SELECT (extract(epoch FROM min(until) - clock_timestamp()) * 1e6)::bigint FROM zuora_slots WHERE slot <= $5::int)`,
			l.opt.Holder, l.owner, ticket, lease, l.opt.Max, interval).Scan(&slot, &waitUS, &soonestUS)
	})
	if err != nil {
		return false, 0, 0, err
	}
	if waitUS != nil {
		wait = time.Duration(*waitUS) * time.Microsecond
	}
	if soonestUS != nil {
		soonest = time.Duration(*soonestUS) * time.Microsecond
	}
	return slot != nil, wait, soonest, nil
}

// Acquire takes a slot of the fleet's, waiting for one when all are held,
// and then waits for its turn in the rate budget. It implements
// uploader.Limiter.
func (l *Limiter) Acquire(ctx context.Context) (func(), error) {
	select {
	case l.local <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a zuora slot: %w", ctx.Err())
	}
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		<-l.local
		return nil, fmt.Errorf("waiting for a zuora slot: %w", ctx.Err())
	}
	ticket := l.ticket.Add(1)
	for {
		l.mu.Lock()
		wake := l.wake
		l.mu.Unlock()
		ok, wait, soonest, err := l.take(ctx, ticket)
		if err != nil {
			<-l.turn
			<-l.local
			return nil, fmt.Errorf("taking a zuora slot in the ledger: %w", err)
		}
		if ok {
			<-l.turn
			l.mu.Lock()
			l.held++
			l.mu.Unlock()
			release := sync.OnceFunc(func() { l.release(ticket) })
			if wait > 0 {
				if err := sleep(ctx, wait); err != nil {
					release()
					return nil, fmt.Errorf("waiting for the zuora rate budget: %w", err)
				}
			}
			return release, nil
		}
		// A release wakes us; a lease that ends does not, so wait at
		// most until the first one does (a few milliseconds past, for
		// the clocks' sake), and no longer than a lease.
		t := time.NewTimer(min(max(soonest, 0)+10*time.Millisecond, l.opt.Lease))
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			<-l.turn
			<-l.local
			return nil, fmt.Errorf("waiting for a zuora slot: %w", ctx.Err())
		}
	}
}

// release gives the slot of ticket back and announces it. A slot whose
// lease ran out and was taken by another request is left alone.
func (l *Limiter) release(ticket int64) {
	defer func() { <-l.local }()
	l.mu.Lock()
	l.held--
	l.mu.Unlock()
	err := l.s.query(func(ctx context.Context) error {
		_, err := l.s.pool.Exec(ctx, `WITH r AS (
				UPDATE zuora_slots SET holder = NULL, owner = NULL, ticket = NULL, until = NULL
				WHERE owner = $1 AND ticket = $2 RETURNING slot
			) SELECT pg_notify($3, '') FROM r`, l.owner, ticket, slotsChannel)
		return err
	})
	if err != nil {
		l.log.Warn("giving back a Zuora slot: it is free again when its lease ends", "err", err)
	}
}

// Slot is one slot of the fleet's concurrency limit as it stands.
type Slot struct {
	Slot   int
	Holder string // the instance holding it, "" when free
	Until  time.Time
}

// Slots returns the slots of the fleet's concurrency limit, for people.
func (s *Store) Slots() ([]Slot, error) {
	var out []Slot
	err := s.query(func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, "SELECT slot, coalesce(holder, ''), coalesce(until, 'epoch') FROM zuora_slots ORDER BY slot")
		var err error
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Slot])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("zuora slots: %w", err)
	}
	return out, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
