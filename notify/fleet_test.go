package notify

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"usagedrop/config"
	"usagedrop/internal/testutil"
	"usagedrop/ledger"
	"usagedrop/ledger/postgres"
)

// unleased is a PostgreSQL ledger seen without its leases, as a notifier
// that reads the whole outbox sees it: what two daemons would do without
// them.
type unleased struct{ ledger.Store }

// Two daemons' notifiers on one PostgreSQL ledger and one webhook: every
// notice is delivered once. Read without the leases, the same outbox
// gets notices delivered twice (so the test can fail).
func TestFleetSendsEachNoticeOnce(t *testing.T) {
	for _, tt := range []struct {
		name   string
		leased bool
	}{
		{"leased", true},
		{"unleased", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := testutil.Postgres(t)
			h := newHook(t)
			// A slow receiver widens the window in which both could
			// send.
			h.delay = 30 * time.Millisecond
			logs := &syncBuffer{}
			var stores []ledger.Store
			for i := range 2 {
				s, err := postgres.Open(context.Background(), db.DSN, postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				var led ledger.Store = s
				if !tt.leased {
					led = unleased{s}
				}
				stores = append(stores, s)
				n, err := New(Options{
					Ledger: led, Instance: fmt.Sprintf("d%d", i),
					Sources:  []config.Source{{Name: "finance", Notify: []config.NotifyTarget{webhookTo(h.url())}}},
					Logger:   slog.New(slog.NewTextHandler(logs, nil)),
					Interval: 10 * time.Millisecond, StuckEvery: time.Hour,
					Backoff: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Timeout: 2 * time.Second,
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { n.Run(ctx); close(done) }()
				t.Cleanup(func() { cancel(); <-done })
			}
			const drops = 20
			for i := range drops {
				rejectDrop(t, stores[i%2], fmt.Sprintf("f%02d.csv", i))
			}
			eventually(t, "the outbox to empty", func() bool {
				ns, err := stores[0].Notices()
				return err == nil && len(ns) == 0
			})
			time.Sleep(100 * time.Millisecond)
			per := map[string]int{}
			for _, m := range h.got() {
				per[m.DropID]++
			}
			dups := 0
			for _, c := range per {
				dups += c - 1
			}
			t.Logf("%d drops, %d notices delivered, %d twice or more", drops, len(h.got()), dups)
			if len(per) != drops {
				t.Fatalf("%d of %d drops were told", len(per), drops)
			}
			if !tt.leased {
				if dups == 0 {
					t.Fatal("without leases no notice went twice: the test cannot tell")
				}
				return
			}
			if dups != 0 {
				t.Fatalf("%d notices were delivered more than once: %v", dups, per)
			}
		})
	}
}

// rejectDrop records a drop that failed validation, and so its notice.
func rejectDrop(t *testing.T, led ledger.Store, name string) {
	t.Helper()
	e, err := led.Create("finance", name, name, 10, "", false)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(led.Claimed(e.ID, "processing/"+name, "", 10))
	must(t)(led.Fetched(e.ID, "sha-"+e.ID))
	must(t)(led.Rejected(e.ID, 3, nil, "rejected: 3 problems, first: "+firstProblem))
}
