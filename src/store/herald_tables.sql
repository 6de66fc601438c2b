-- Herald's own tables. Entity tables are generated from the schema
-- (src/store). Column names and meanings are a contract (CONTRACT.md of the
-- project); add columns, never rename or drop them.
-- Times are RFC 3339 UTC text with fixed microseconds
-- (`2026-04-14T08:02:07.556423Z`), so text order is time order.

CREATE TABLE IF NOT EXISTS herald_notification (
    id          INTEGER PRIMARY KEY,
    rule        TEXT    NOT NULL,
    event_uuid  TEXT    NOT NULL,
    user_pk     ANY     NOT NULL,   -- key of the recipient entity (its key type)
    severity    TEXT    NOT NULL CHECK (severity IN ('notice', 'warning', 'alert')),
    body        TEXT    NOT NULL,
    created     TEXT    NOT NULL,
    seen        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS herald_outbox (
    id              INTEGER PRIMARY KEY,
    rule            TEXT    NOT NULL,
    event_uuid      TEXT    NOT NULL,
    to_addrs        TEXT    NOT NULL,              -- JSON array of addresses
    cc              TEXT    NOT NULL DEFAULT '[]', -- JSON array
    bcc             TEXT    NOT NULL DEFAULT '[]', -- JSON array
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created         TEXT    NOT NULL,
    sent_at         TEXT,
    next_attempt_at TEXT,                           -- earliest retry after a failure
    lease_owner     TEXT,                           -- the sender delivering the row now
    lease_until     TEXT,                           -- when that claim lapses (src/store/outbox.rs)
    kind            TEXT    NOT NULL DEFAULT 'email' CHECK (kind IN ('email', 'webhook')),
    url             TEXT,                           -- webhook: the request's URL
    method          TEXT,                           -- webhook: POST or PUT
    headers         TEXT,                           -- webhook: JSON object of header names to values
    response_status INTEGER,                        -- webhook: the last answer's HTTP status
    response_excerpt TEXT,                          -- webhook: the start of the last failed answer's body
    given_up_at     TEXT                            -- webhook: delivery abandoned (a 4xx, or the attempt limit)
);
CREATE INDEX IF NOT EXISTS herald_outbox_unsent ON herald_outbox (status) WHERE status <> 'sent';

CREATE TABLE IF NOT EXISTS herald_firing (
    id          INTEGER PRIMARY KEY,
    rule        TEXT    NOT NULL,
    event_uuid  TEXT    NOT NULL,
    fired_at    TEXT    NOT NULL,
    line        INTEGER             -- input line number
);

CREATE TABLE IF NOT EXISTS herald_dead_letter (
    id       INTEGER PRIMARY KEY,
    source   TEXT    NOT NULL,      -- the input's name (`-` for standard input)
    line     INTEGER NOT NULL,
    raw      TEXT    NOT NULL,      -- the line (its first 64 KiB), lossily decoded when not UTF-8
    error    TEXT    NOT NULL,
    created  TEXT    NOT NULL,
    raw_length INTEGER,             -- the whole line's length in bytes
    raw_hash   TEXT,                -- XXH64 of the whole line (16 hex digits)
    resolved   TEXT                 -- when a later run processed the line without error
);

CREATE TABLE IF NOT EXISTS herald_rule_error (
    id          INTEGER PRIMARY KEY,
    rule        TEXT    NOT NULL,
    event_uuid  TEXT    NOT NULL,
    code        TEXT    NOT NULL,   -- an R code, e.g. R0001
    message     TEXT    NOT NULL,
    created     TEXT    NOT NULL,
    line        INTEGER
);

-- Replay protection: one row per event that fired (or failed) at least one
-- rule, written in the same transaction as the event's effects. `rule_set`
-- names the set of rules that have been applied to the event; stores made
-- before it existed have NULL there, read as "every rule of the policy".
CREATE TABLE IF NOT EXISTS herald_processed (
    event_key     TEXT    PRIMARY KEY,
    line          INTEGER,
    processed_at  TEXT    NOT NULL,
    rule_set      INTEGER             -- herald_rule_set.id
) WITHOUT ROWID;

-- The distinct sets of rule names applied to processed events: usually one
-- per policy version, so a processed event costs one integer, not a row per
-- rule.
CREATE TABLE IF NOT EXISTS herald_rule_set (
    id     INTEGER PRIMARY KEY,
    hash   TEXT    NOT NULL UNIQUE,  -- hash of `rules`
    rules  TEXT    NOT NULL          -- JSON array of rule names, sorted
);

-- Resume point per input, written with every commit.
CREATE TABLE IF NOT EXISTS herald_checkpoint (
    source_key  TEXT    PRIMARY KEY,  -- fingerprint of the input (hash of its first line)
    source      TEXT    NOT NULL,
    line        INTEGER NOT NULL,     -- lines fully processed
    offset      INTEGER NOT NULL,     -- bytes fully processed
    last_hash   TEXT    NOT NULL,     -- hash of the last processed line
    updated     TEXT    NOT NULL,
    prefix_hash TEXT                  -- XXH64 of the input's first `offset` bytes: resuming needs the same bytes
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS herald_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- `herald serve`'s durable intake (src/store/intake.rs): events acknowledged
-- over HTTP and not yet processed. A row is deleted in the same transaction
-- as the effects of its event, so an acknowledged event is processed exactly
-- once whatever the moment the service is killed.
CREATE TABLE IF NOT EXISTS herald_intake (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- intake order = processing order, never reused
    event_key    TEXT    NOT NULL UNIQUE,           -- the event's identity: a pending retry is not queued twice
    raw          TEXT    NOT NULL,                  -- the event as one line of JSON
    received_ns  INTEGER NOT NULL                   -- acknowledgment time, Unix nanoseconds (latency metric)
);
