-- The graph of the federation as the aggregator sees it: domains, the
-- facts about them, the links each publisher reports, and the log of
-- changes. Runs on SQLite and PostgreSQL alike. Times are seconds since
-- the epoch; booleans are INTEGER 0/1 (NULL where unknown).
--
-- History is kept as intervals: a row is valid from valid_from until
-- valid_to (exclusive); valid_to IS NULL marks the current row. A change
-- closes the current row and opens a new one; an unchanged refresh writes
-- no row, it only moves a timestamp in graph_domains or graph_reports.

-- Every domain the store has heard of: one row each, never deleted.
-- first_seen: when it was first named or fetched; last_seen: when it last
-- answered us, reported, or was first named (a report that keeps naming
-- it is counted at read time, through graph_reports.last_confirmed);
-- last_fetch: when we last tried to fetch it.
CREATE TABLE graph_domains (
    domain TEXT PRIMARY KEY,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    last_fetch DOUBLE PRECISION
);

-- What we found out about a domain, as intervals. At most one row per
-- domain has valid_to IS NULL. A domain only named by others has no row
-- until it is fetched or marked stale (then status IS NULL: never
-- fetched).
CREATE TABLE graph_domain_facts (
    domain TEXT NOT NULL REFERENCES graph_domains (domain),
    valid_from DOUBLE PRECISION NOT NULL,
    valid_to DOUBLE PRECISION,
    reachable INTEGER,
    status TEXT,
    error TEXT,
    publishes INTEGER,
    consents INTEGER,
    software_name TEXT,
    software_version TEXT,
    tls_version TEXT,
    auth TEXT,
    cert_valid INTEGER,
    direct_tls INTEGER,
    stale INTEGER NOT NULL,
    PRIMARY KEY (domain, valid_from)
);

CREATE INDEX graph_domain_facts_current ON graph_domain_facts (domain, valid_to);

-- One row per domain whose report we stored: when first, when it last
-- changed, and when it was last confirmed (fetched again, equal or not).
CREATE TABLE graph_reports (
    reporter TEXT PRIMARY KEY REFERENCES graph_domains (domain),
    first_reported DOUBLE PRECISION NOT NULL,
    last_changed DOUBLE PRECISION NOT NULL,
    last_confirmed DOUBLE PRECISION NOT NULL,
    next_slot INTEGER NOT NULL
);

-- The links a reporter reports, as intervals. remote is the named peer,
-- or '' for an anonymous one; slot is 0 for a named peer and numbers the
-- anonymous peers of one reporter (1, 2, ..., never reused). directions
-- are the connection types, sorted and comma-separated ('' when the
-- publisher gave none).
CREATE TABLE graph_links (
    reporter TEXT NOT NULL REFERENCES graph_domains (domain),
    remote TEXT NOT NULL,
    slot INTEGER NOT NULL,
    directions TEXT NOT NULL,
    valid_from DOUBLE PRECISION NOT NULL,
    valid_to DOUBLE PRECISION,
    PRIMARY KEY (reporter, remote, slot, valid_from)
);

CREATE INDEX graph_links_current ON graph_links (reporter, valid_to);
CREATE INDEX graph_links_by_remote ON graph_links (remote, valid_to);

-- The change log: one event per committed change, numbered in commit
-- order (the counter row in graph_counters is updated first in every
-- writing transaction, which also makes graph writers take turns).
-- domain is the domain the change is about (for a link: its reporter),
-- peer the named remote of a link; data is the new values as JSON.
CREATE TABLE graph_events (
    id BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    peer TEXT,
    data TEXT NOT NULL
);

CREATE INDEX graph_events_by_domain ON graph_events (domain, id);
CREATE INDEX graph_events_by_peer ON graph_events (peer, id);
CREATE INDEX graph_events_by_time ON graph_events (at);

CREATE TABLE graph_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO graph_counters (name, value) VALUES ('events', 0);
