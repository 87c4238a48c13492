-- The ledger's tables. Entries are kept whole as JSON (ledger.Entry's
-- encoding, the same bbolt stores) beside the columns the queries select
-- on. Ids, keys and sums sort bytewise (COLLATE "C"), as in bbolt.
CREATE TABLE entries (
	id      text COLLATE "C" PRIMARY KEY,
	source  text NOT NULL,
	state   text NOT NULL,
	active  boolean NOT NULL,
	sha256  text COLLATE "C",
	updated timestamptz NOT NULL,
	entry   jsonb NOT NULL
);
CREATE INDEX entries_active ON entries (id) WHERE active;
CREATE INDEX entries_source ON entries (source, id);
CREATE INDEX entries_sha256 ON entries (sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX entries_finished_updated ON entries (updated) WHERE NOT active;

-- Which drop owns which bytes (ledger.Tx.Owner).
CREATE TABLE sha_owners (
	sha256 text COLLATE "C" PRIMARY KEY,
	id     text COLLATE "C" NOT NULL
);

-- Records created one by one (the object API), per drop.
CREATE TABLE records (
	drop_id  text COLLATE "C" NOT NULL,
	key      text COLLATE "C" NOT NULL,
	zuora_id text NOT NULL,
	PRIMARY KEY (drop_id, key)
);

-- The notifications' outbox.
CREATE TABLE notices (
	key     text COLLATE "C" PRIMARY KEY,
	drop_id text COLLATE "C" NOT NULL,
	closed  boolean NOT NULL,
	notice  jsonb NOT NULL
);
CREATE INDEX notices_drop ON notices (drop_id);
