-- What a fleet on one ledger shares beyond the drops (limits.go,
-- notices.go).

-- Zuora's concurrency limit: one row per slot, held by one request at a
-- time under a lease on the database's clock, renewed while the request
-- runs, so that a daemon that dies gives its slots back when their
-- leases end. holder is the instance, for people; owner the process (one
-- Limiter) and ticket the request holding it.
CREATE TABLE zuora_slots (
	slot   int PRIMARY KEY,
	holder text,
	owner  text,
	ticket bigint,
	until  timestamptz
);

-- Zuora's rate budget: the time the next request may start, requests
-- being spaced evenly (a generic cell rate algorithm without burst).
CREATE TABLE zuora_pace (
	name text PRIMARY KEY,
	next timestamptz NOT NULL
);

-- A notice being delivered is leased to one daemon's notifier.
ALTER TABLE notices ADD COLUMN holder text, ADD COLUMN lease_until timestamptz;
