package main

import (
	"context"
	"fmt"
	"log/slog"

	"usagedrop/config"
	"usagedrop/ledger"
	"usagedrop/ledger/postgres"
	"usagedrop/uploader"
)

// zuoraLimiter is what bounds the daemon's requests to Zuora: on a
// PostgreSQL ledger the fleet's limiter, in the database, so that the
// daemons sharing the ledger keep zuora.max_concurrency and
// zuora.requests_per_minute together; on bbolt nil, which is this
// process's own (pipeline.BuildZuoraLimited). release gives back the slots
// held; call release once the pipeline has stopped.
func zuoraLimiter(ctx context.Context, cfg *config.Config, led ledger.Store, log *slog.Logger) (lim uploader.Limiter, release func(), err error) {
	s, ok := led.(*postgres.Store)
	if !ok {
		return nil, func() {}, nil
	}
	l, err := s.ZuoraLimiter(ctx, postgres.LimitOptions{
		Holder: cfg.Instance, Max: cfg.Zuora.MaxConcurrency, PerMinute: cfg.Zuora.RequestsPerMinute, Logger: log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ledger %s: %w", ledgerName(cfg), err)
	}
	log.Info("Zuora's limits shared by the daemons on this ledger", "max_concurrency", cfg.Zuora.MaxConcurrency,
		"requests_per_minute", cfg.Zuora.RequestsPerMinute)
	return l, func() {
		if err := l.Close(); err != nil {
			log.Warn("giving back Zuora slots: they are free again when their leases end", "err", err)
		}
	}, nil
}
