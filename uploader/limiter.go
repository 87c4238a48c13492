package uploader

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Limiter bounds the requests sent to one Zuora tenant: how many are in
// flight at once (the tenant's concurrency limit) and, optionally, how
// many start per minute (its rate limit). Every HTTP request the Client
// sends, token requests and retries included, holds a Limiter's slot from
// just before it is sent until its answer has been read, and never while
// it waits to retry.
//
// Acquire blocks until the request may go, or ctx ends; release gives the
// slot back and must be called exactly once. A Limiter shared through a
// database (ledger/postgres) bounds a whole fleet of daemons.
type Limiter interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// LocalLimiter is a Limiter for one process: a semaphore of max slots and,
// when perMinute is set, requests spaced evenly at perMinute a minute.
type LocalLimiter struct {
	slots chan struct{}
	pace  *Pacer
}

// NewLocalLimiter returns a limiter of n requests in flight (at least
// one) and perMinute requests a minute; zero perMinute sets no rate.
func NewLocalLimiter(n, perMinute int) *LocalLimiter {
	l := &LocalLimiter{slots: make(chan struct{}, max(n, 1))}
	if perMinute > 0 {
		l.pace = NewPacer(perMinute)
	}
	return l
}

// Acquire implements Limiter: a slot first, then the rate's turn, so that
// a request waiting for its turn cannot be overtaken by one that got its
// turn earlier but no slot.
func (l *LocalLimiter) Acquire(ctx context.Context) (func(), error) {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a zuora slot: %w", ctx.Err())
	}
	release := sync.OnceFunc(func() { <-l.slots })
	if l.pace != nil {
		if err := l.pace.Wait(ctx); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// Pacer spaces requests evenly so that no minute holds more than its
// budget: each request is given a start time Interval after the one
// before (a generic cell rate algorithm with no burst), so any 60 s
// window holds at most perMinute+1 starts.
type Pacer struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time
}

// NewPacer returns a pacer of perMinute requests a minute (at least one).
func NewPacer(perMinute int) *Pacer {
	return &Pacer{interval: time.Minute / time.Duration(max(perMinute, 1))}
}

// Wait waits for the caller's turn. A caller that gives up (ctx ended)
// still spends its turn: the budget errs on the side of Zuora's limit.
func (p *Pacer) Wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		if err := sleepCtx(ctx, d); err != nil {
			return fmt.Errorf("waiting for the zuora rate budget: %w", err)
		}
	}
	return nil
}

// acquire takes a slot of the client's limiter for one request of op. A
// limiter that cannot answer (its database unreachable) is an outage:
// the error is retryable, and the request is not sent.
func (c *Client) acquire(ctx context.Context, op string) (func(), error) {
	if c.cfg.Limiter == nil {
		return func() {}, nil
	}
	release, err := c.cfg.Limiter.Acquire(ctx)
	if err != nil {
		return nil, &Error{Op: op, Message: err.Error(), Retryable: ctx.Err() == nil, Err: err}
	}
	return release, nil
}
