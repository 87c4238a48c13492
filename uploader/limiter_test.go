package uploader

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"usagedrop/zuorasim"
)

// Uploads at once against a tenant whose concurrency limit is small: with
// a limiter of that size the sim never sees more in flight and refuses
// nothing; without one it does (so the test can fail). A limit of one
// also shows that a request waiting for its token does not wait for
// itself.
func TestLocalLimiterHoldsTheConcurrencyLimit(t *testing.T) {
	for _, tt := range []struct {
		name    string
		limit   int
		limiter bool
	}{
		{"limited to 3", 3, true},
		{"limited to 1", 1, true},
		{"no limiter", 3, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, zuorasim.Options{ConcurrencyLimit: tt.limit}, func(c *Config) {
				if tt.limiter {
					c.Limiter = NewLocalLimiter(tt.limit, 0)
				}
				c.MaxAttempts = 1 // a 429 shows, rather than being retried away
			})
			r.sim.SetFaults(zuorasim.Faults{AnswerDelay: 30 * time.Millisecond})
			var wg sync.WaitGroup
			errs := make(chan error, 12)
			for i := range 12 {
				wg.Go(func() {
					p := part(t, fmt.Sprintf("u%d.csv", i), tinyCSV)
					_, err := r.fi.Submit(context.Background(), p, fmt.Sprintf("key-%d", i))
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			failed := 0
			for err := range errs {
				if err != nil {
					failed++
				}
			}
			got := r.sim.Limits()
			t.Logf("peak in flight %d, refused for concurrency %d, failed uploads %d", got.PeakInFlight, got.OverConcurrency, failed)
			if !tt.limiter {
				if got.PeakInFlight <= tt.limit || got.OverConcurrency == 0 {
					t.Fatalf("without a limiter the sim saw %+v: the test cannot tell", got)
				}
				return
			}
			if got.PeakInFlight > tt.limit || got.OverConcurrency != 0 || failed != 0 {
				t.Fatalf("sim saw %+v and %d uploads failed, limit %d", got, failed, tt.limit)
			}
		})
	}
}

// The pacer spaces requests: n turns at perMinute take (n-1) intervals,
// and a caller whose context ends stops waiting.
func TestPacer(t *testing.T) {
	p := NewPacer(6000) // one every 10 ms
	start := time.Now()
	for range 11 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > time.Second {
		t.Fatalf("11 turns at 10 ms took %v, want about 100 ms", el)
	}
	slow := NewPacer(1)
	slow.Wait(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := slow.Wait(ctx); err == nil {
		t.Fatal("a turn a minute away came at once")
	}
}

// A limiter whose context ends gives no slot, and a slot released is
// taken by the next.
func TestLocalLimiterWaits(t *testing.T) {
	l := NewLocalLimiter(1, 0)
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx); err == nil {
		t.Fatal("a second slot of one")
	}
	release()
	release() // twice is harmless
	r2, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2()
}
