-- Drops leased to the daemon working them (a fleet on one ledger): owner
-- is the instance that holds the drop, lease_until when its hold lapses
-- unless its heartbeat renews it, both on the database's clock (now()).
-- key is the drop's key on its source, so that one file has at most one
-- active drop in the fleet.
ALTER TABLE entries ADD COLUMN owner text;
ALTER TABLE entries ADD COLUMN lease_until timestamptz;
-- (bytea: a name may be any bytes.)
ALTER TABLE entries ADD COLUMN key bytea;
UPDATE entries SET key = convert_to(entry->>'key', 'UTF8');
CREATE INDEX entries_owner ON entries (owner) WHERE active;
CREATE INDEX entries_lease ON entries (lease_until) WHERE active;
CREATE INDEX entries_source_key ON entries (source, key) WHERE active;
