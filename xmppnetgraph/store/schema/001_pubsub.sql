-- Pub-sub state of the XEP-0060 service: nodes, items, subscriptions.
-- Runs on SQLite and PostgreSQL alike. Times are seconds since the epoch.

-- A node; config is the node configuration as a JSON object. last_seq
-- numbers the node's items in publishing order; updating it also locks
-- the node's row for the rest of the transaction.
CREATE TABLE pubsub_nodes (
    node TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0
);

-- An item; payload is its payload element as serialized XML; the highest
-- seq of a node is its newest item.
CREATE TABLE pubsub_items (
    node TEXT NOT NULL REFERENCES pubsub_nodes (node) ON DELETE CASCADE,
    item TEXT NOT NULL,
    seq BIGINT NOT NULL,
    payload TEXT NOT NULL,
    publisher TEXT NOT NULL,
    published DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (node, item)
);

CREATE UNIQUE INDEX pubsub_items_by_seq ON pubsub_items (node, seq);

-- A subscription of a JID; subscriber_domain is the JID's domain, for
-- the per-domain cap.
CREATE TABLE pubsub_subscriptions (
    node TEXT NOT NULL REFERENCES pubsub_nodes (node) ON DELETE CASCADE,
    subscriber TEXT NOT NULL,
    subscriber_domain TEXT NOT NULL,
    subscription_id TEXT NOT NULL UNIQUE,
    created DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (node, subscriber)
);

CREATE INDEX pubsub_subscriptions_by_domain ON pubsub_subscriptions (node, subscriber_domain);
