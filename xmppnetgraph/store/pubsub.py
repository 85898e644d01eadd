# -*- test-case-name: tests.test_store_pubsub -*-
"""
Pub-sub state in the node's database (L{IPubSubStore}).

Each method is one transaction, and one interaction function (below the
class) runs it; the transactions that change more than one thing
(L{PubSubStore.publishItem}, L{PubSubStore.retractItems},
L{PubSubStore.deleteNode}) compose the same small steps the single ones
use, so that both agree on locking and trimming.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, fail
from zope.interface import implementer

from xmppnetgraph.error import NodeExists, NodeNotFound, NotSubscribed, TooManySubscriptions
from xmppnetgraph.interfaces import IPubSubStore
from xmppnetgraph.model import Publication, Retraction, StoredItem, Subscription
from xmppnetgraph.store.database import currentTime

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from xmppnetgraph.store.database import Cursor, Database


def subscriberDomain(subscriber: str) -> str:
    """
    @param subscriber: a JID, C{[local@]domain[/resource]}.
    @return: its domain (lower case), the unit of the subscription cap.
    """
    bare = subscriber.split("/", 1)[0]
    return bare.rpartition("@")[2].lower()


def _checkCount(name: str, value: int) -> None:
    """
    @raise ValueError: if C{value} is negative.
    """
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}")


def _lockNode(cursor: Cursor, nodeIdentifier: str) -> None:
    """
    Lock the node's row for the rest of the transaction (a no-op update,
    in SQL that SQLite and PostgreSQL share), so that concurrent writers to
    one node take turns.

    @raise NodeNotFound: if there is no such node.
    """
    cursor.execute("UPDATE pubsub_nodes SET last_seq = last_seq WHERE node = ?", (nodeIdentifier,))
    if cursor.rowcount == 0:
        raise NodeNotFound(nodeIdentifier)


def _requireNode(cursor: Cursor, nodeIdentifier: str) -> None:
    """
    @raise NodeNotFound: if there is no such node.
    """
    if (
        cursor.execute("SELECT 1 FROM pubsub_nodes WHERE node = ?", (nodeIdentifier,)).fetchone()
        is None
    ):
        raise NodeNotFound(nodeIdentifier)


@implementer(IPubSubStore)
class PubSubStore:
    """
    L{IPubSubStore} in the node's L{Database}: nodes with their
    configuration (a JSON object), items numbered in publishing order, and
    subscriptions. Each method is one transaction.
    """

    def __init__(self, database: Database, clock: IReactorTime | None = None) -> None:
        """
        @param database: where the state lives (its schema has the pub-sub
            tables).
        @param clock: the source of the timestamps (default: the global
            reactor, looked up on first use).
        """
        self._database = database
        self._clock = clock

    def _now(self) -> float:
        """
        @return: the current time from the clock.
        """
        return currentTime(self._clock)

    def createNode(self, nodeIdentifier: str, config: dict[str, object]) -> Deferred[None]:
        """
        See L{IPubSubStore.createNode}.

        @raise NodeExists: (in the Deferred) if the node exists.
        @raise TypeError: (in the Deferred) if C{config} is not JSON.
        """
        try:
            text = _configText(config)
        except TypeError:
            return fail()
        return self._database.runInteraction(_createNode, nodeIdentifier, text, self._now())

    def nodeConfig(self, nodeIdentifier: str) -> Deferred[dict[str, object]]:
        """
        See L{IPubSubStore.nodeConfig}.
        """
        return self._database.runInteraction(_nodeConfig, nodeIdentifier)

    def setNodeConfig(self, nodeIdentifier: str, config: dict[str, object]) -> Deferred[None]:
        """
        See L{IPubSubStore.setNodeConfig}.
        """
        try:
            text = _configText(config)
        except TypeError:
            return fail()
        return self._database.runInteraction(_setNodeConfig, nodeIdentifier, text)

    def deleteNode(self, nodeIdentifier: str) -> Deferred[list[Subscription]]:
        """
        See L{IPubSubStore.deleteNode}.

        @return: the node's subscriptions, oldest first.
        """
        return self._database.runInteraction(_deleteNode, nodeIdentifier)

    def nodes(self) -> Deferred[list[str]]:
        """
        See L{IPubSubStore.nodes}.

        @return: the identifiers in code point order.
        """
        return self._database.runInteraction(_nodes)

    def storeItem(
        self, nodeIdentifier: str, itemIdentifier: str, payload: str, publisher: str, maxItems: int
    ) -> Deferred[None]:
        """
        See L{IPubSubStore.storeItem}. A replaced item becomes the newest.

        @raise ValueError: (in the Deferred) if C{maxItems} is negative.
        """
        try:
            _checkCount("maxItems", maxItems)
        except ValueError:
            return fail()
        return self._database.runInteraction(
            _storeItem, nodeIdentifier, itemIdentifier, payload, publisher, maxItems, self._now()
        )

    def publishItem(
        self,
        nodeIdentifier: str,
        itemIdentifier: str,
        payload: str,
        publisher: str,
        maxItems: Callable[[Mapping[str, object]], int],
        createConfig: dict[str, object] | None = None,
    ) -> Deferred[Publication]:
        """
        See L{IPubSubStore.publishItem}. A replaced item becomes the newest.
        Concurrent publishes that each create a missing node create it once
        (one of them reports C{created}); the others store into it.

        @raise NodeNotFound: (in the Deferred) if the node is missing and
            C{createConfig} is L{None}.
        @raise TypeError: (in the Deferred) if C{createConfig} is not JSON.
        @raise ValueError: (in the Deferred) if C{maxItems} gives a negative
            count; nothing is stored then.
        """
        text = None
        if createConfig is not None:
            try:
                text = _configText(createConfig)
            except TypeError:
                return fail()
        return self._database.runInteraction(
            _publishItem,
            nodeIdentifier,
            itemIdentifier,
            payload,
            publisher,
            maxItems,
            text,
            self._now(),
        )

    def items(
        self,
        nodeIdentifier: str,
        itemIdentifiers: Sequence[str] | None = None,
        maxItems: int | None = None,
    ) -> Deferred[list[StoredItem]]:
        """
        See L{IPubSubStore.items}. Requested ids that do not exist are left
        out; with both C{itemIdentifiers} and C{maxItems}, the newest
        C{maxItems} of the requested items.

        @raise ValueError: (in the Deferred) if C{maxItems} is negative.
        """
        if maxItems is not None:
            try:
                _checkCount("maxItems", maxItems)
            except ValueError:
                return fail()
        ids = None if itemIdentifiers is None else list(itemIdentifiers)
        return self._database.runInteraction(_items, nodeIdentifier, ids, maxItems)

    def deleteItems(
        self, nodeIdentifier: str, itemIdentifiers: Sequence[str]
    ) -> Deferred[list[str]]:
        """
        See L{IPubSubStore.deleteItems}.

        @return: the deleted ids in the order requested.
        """
        return self._database.runInteraction(_deleteItems, nodeIdentifier, list(itemIdentifiers))

    def retractItems(
        self, nodeIdentifier: str, itemIdentifiers: Sequence[str]
    ) -> Deferred[Retraction]:
        """
        See L{IPubSubStore.retractItems}.

        @return: the deleted ids in the order requested, each once, and the
            subscriptions, oldest first.
        """
        return self._database.runInteraction(_retractItems, nodeIdentifier, list(itemIdentifiers))

    def subscribe(
        self,
        nodeIdentifier: str,
        subscriber: str,
        maxPerDomain: int,
        subscriptionIdentifier: str | None = None,
    ) -> Deferred[Subscription]:
        """
        See L{IPubSubStore.subscribe}. An existing subscription is returned
        as it is, whatever the cap.

        @raise TooManySubscriptions: (in the Deferred) if the subscriber's
            domain has C{maxPerDomain} subscriptions to the node already.
        """
        newIdentifier = subscriptionIdentifier or secrets.token_hex(16)
        return self._database.runInteraction(
            _subscribe, nodeIdentifier, subscriber, maxPerDomain, newIdentifier, self._now()
        )

    def unsubscribe(self, nodeIdentifier: str, subscriber: str) -> Deferred[None]:
        """
        See L{IPubSubStore.unsubscribe}.

        @raise NotSubscribed: (in the Deferred) if C{subscriber} has no
            subscription to the node.
        """
        return self._database.runInteraction(_unsubscribe, nodeIdentifier, subscriber)

    def subscriptions(self, nodeIdentifier: str) -> Deferred[list[Subscription]]:
        """
        See L{IPubSubStore.subscriptions}.

        @return: the subscriptions, oldest first.
        """
        return self._database.runInteraction(_subscriptions, nodeIdentifier)


def _configText(config: Mapping[str, object]) -> str:
    """
    @return: C{config} as a JSON object.
    @raise TypeError: if JSON cannot hold it.
    """
    try:
        return json.dumps(dict(config))
    except (TypeError, ValueError) as e:
        raise TypeError(f"node configuration is not JSON-serializable: {e}") from None


# The interactions: each runs in a pool thread, in one transaction.


def _createNode(cursor: Cursor, nodeIdentifier: str, config: str, now: float) -> None:
    """
    Insert a node.

    @raise NodeExists: if it exists.
    """
    cursor.execute(
        "INSERT INTO pubsub_nodes (node, config, created) VALUES (?, ?, ?)"
        " ON CONFLICT (node) DO NOTHING",
        (nodeIdentifier, config, now),
    )
    if cursor.rowcount == 0:
        raise NodeExists(nodeIdentifier)


def _nodeConfig(cursor: Cursor, nodeIdentifier: str) -> dict[str, object]:
    """
    @return: the node's configuration.
    @raise NodeNotFound: if there is no such node.
    """
    row = cursor.execute(
        "SELECT config FROM pubsub_nodes WHERE node = ?", (nodeIdentifier,)
    ).fetchone()
    if row is None:
        raise NodeNotFound(nodeIdentifier)
    config: dict[str, object] = json.loads(row[0])
    return config


def _setNodeConfig(cursor: Cursor, nodeIdentifier: str, config: str) -> None:
    """
    Replace the node's configuration.

    @raise NodeNotFound: if there is no such node.
    """
    cursor.execute("UPDATE pubsub_nodes SET config = ? WHERE node = ?", (config, nodeIdentifier))
    if cursor.rowcount == 0:
        raise NodeNotFound(nodeIdentifier)


def _deleteNode(cursor: Cursor, nodeIdentifier: str) -> list[Subscription]:
    """
    Delete the node; its items and subscriptions go with it (cascade).

    @return: the subscriptions it had, oldest first.
    @raise NodeNotFound: if there is no such node.
    """
    _lockNode(cursor, nodeIdentifier)
    subscriptions = _subscriptions(cursor, nodeIdentifier)
    cursor.execute("DELETE FROM pubsub_nodes WHERE node = ?", (nodeIdentifier,))
    return subscriptions


def _nodes(cursor: Cursor) -> list[str]:
    """
    @return: all node identifiers, sorted.
    """
    return sorted(row[0] for row in cursor.execute("SELECT node FROM pubsub_nodes").fetchall())


def _storeItem(
    cursor: Cursor,
    nodeIdentifier: str,
    itemIdentifier: str,
    payload: str,
    publisher: str,
    maxItems: int,
    now: float,
) -> None:
    """
    Store or replace an item as the node's newest, then keep only the
    newest C{maxItems}.

    @raise NodeNotFound: if there is no such node.
    """
    cursor.execute(
        "UPDATE pubsub_nodes SET last_seq = last_seq + 1 WHERE node = ?", (nodeIdentifier,)
    )
    if cursor.rowcount == 0:
        raise NodeNotFound(nodeIdentifier)
    row = cursor.execute(
        "SELECT last_seq FROM pubsub_nodes WHERE node = ?", (nodeIdentifier,)
    ).fetchone()
    assert row is not None
    seq = row[0]
    cursor.execute(
        "INSERT INTO pubsub_items (node, item, seq, payload, publisher, published)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (node, item) DO UPDATE SET seq = excluded.seq,"
        " payload = excluded.payload, publisher = excluded.publisher,"
        " published = excluded.published",
        (nodeIdentifier, itemIdentifier, seq, payload, publisher, now),
    )
    oldest = cursor.execute(
        "SELECT seq FROM pubsub_items WHERE node = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
        (nodeIdentifier, maxItems),
    ).fetchone()
    if oldest is not None:
        cursor.execute(
            "DELETE FROM pubsub_items WHERE node = ? AND seq <= ?", (nodeIdentifier, oldest[0])
        )


def _publishItem(
    cursor: Cursor,
    nodeIdentifier: str,
    itemIdentifier: str,
    payload: str,
    publisher: str,
    maxItems: Callable[[Mapping[str, object]], int],
    createConfig: str | None,
    now: float,
) -> Publication:
    """
    Create the node if missing (and C{createConfig} is given), lock it,
    store and trim, then read the subscriptions.

    @raise NodeNotFound: if the node is missing and C{createConfig} is
        L{None}.
    @raise ValueError: if C{maxItems} gives a negative count.
    """
    created = False
    if createConfig is not None:
        cursor.execute(
            "INSERT INTO pubsub_nodes (node, config, created) VALUES (?, ?, ?)"
            " ON CONFLICT (node) DO NOTHING",
            (nodeIdentifier, createConfig, now),
        )
        created = cursor.rowcount == 1
    _lockNode(cursor, nodeIdentifier)
    config = _nodeConfig(cursor, nodeIdentifier)
    keep = maxItems(config)
    _checkCount("maxItems", keep)
    _storeItem(cursor, nodeIdentifier, itemIdentifier, payload, publisher, keep, now)
    return Publication(
        StoredItem(itemIdentifier, payload, publisher, now),
        config,
        created,
        tuple(_subscriptions(cursor, nodeIdentifier)),
    )


def _items(
    cursor: Cursor, nodeIdentifier: str, itemIdentifiers: list[str] | None, maxItems: int | None
) -> list[StoredItem]:
    """
    @return: the requested items, newest first.
    @raise NodeNotFound: if there is no such node.
    """
    _requireNode(cursor, nodeIdentifier)
    columns = "SELECT seq, item, payload, publisher, published FROM pubsub_items WHERE node = ?"
    if itemIdentifiers is None:
        if maxItems is None:
            rows = cursor.execute(columns + " ORDER BY seq DESC", (nodeIdentifier,)).fetchall()
        else:
            rows = cursor.execute(
                columns + " ORDER BY seq DESC LIMIT ?", (nodeIdentifier, maxItems)
            ).fetchall()
    else:
        rows = []
        for itemIdentifier in dict.fromkeys(itemIdentifiers):
            row = cursor.execute(
                columns + " AND item = ?", (nodeIdentifier, itemIdentifier)
            ).fetchone()
            if row is not None:
                rows.append(row)
        rows.sort(key=lambda row: row[0], reverse=True)
        if maxItems is not None:
            rows = rows[:maxItems]
    return [
        StoredItem(item, payload, publisher, published)
        for _, item, payload, publisher, published in rows
    ]


def _deleteItems(cursor: Cursor, nodeIdentifier: str, itemIdentifiers: list[str]) -> list[str]:
    """
    @return: the ids that existed and were deleted.
    @raise NodeNotFound: if there is no such node.
    """
    _lockNode(cursor, nodeIdentifier)
    deleted = []
    for itemIdentifier in dict.fromkeys(itemIdentifiers):
        cursor.execute(
            "DELETE FROM pubsub_items WHERE node = ? AND item = ?", (nodeIdentifier, itemIdentifier)
        )
        if cursor.rowcount:
            deleted.append(itemIdentifier)
    return deleted


def _retractItems(cursor: Cursor, nodeIdentifier: str, itemIdentifiers: list[str]) -> Retraction:
    """
    @return: the ids that existed and were deleted, and the subscriptions.
    @raise NodeNotFound: if there is no such node.
    """
    deleted = _deleteItems(cursor, nodeIdentifier, itemIdentifiers)
    return Retraction(tuple(deleted), tuple(_subscriptions(cursor, nodeIdentifier)))


def _subscribe(
    cursor: Cursor,
    nodeIdentifier: str,
    subscriber: str,
    maxPerDomain: int,
    newIdentifier: str,
    now: float,
) -> Subscription:
    """
    @return: the existing or a new subscription.
    @raise NodeNotFound: if there is no such node.
    @raise TooManySubscriptions: if the cap is reached.
    """
    _lockNode(cursor, nodeIdentifier)
    row = cursor.execute(
        "SELECT subscription_id, created FROM pubsub_subscriptions"
        " WHERE node = ? AND subscriber = ?",
        (nodeIdentifier, subscriber),
    ).fetchone()
    if row is not None:
        return Subscription(nodeIdentifier, subscriber, row[0], row[1])
    domain = subscriberDomain(subscriber)
    counted = cursor.execute(
        "SELECT COUNT(*) FROM pubsub_subscriptions WHERE node = ? AND subscriber_domain = ?",
        (nodeIdentifier, domain),
    ).fetchone()
    assert counted is not None
    if counted[0] >= maxPerDomain:
        raise TooManySubscriptions(
            f"{domain} has {counted[0]} subscriptions to {nodeIdentifier!r}, the most allowed"
        )
    cursor.execute(
        "INSERT INTO pubsub_subscriptions"
        " (node, subscriber, subscriber_domain, subscription_id, created)"
        " VALUES (?, ?, ?, ?, ?)",
        (nodeIdentifier, subscriber, domain, newIdentifier, now),
    )
    return Subscription(nodeIdentifier, subscriber, newIdentifier, now)


def _unsubscribe(cursor: Cursor, nodeIdentifier: str, subscriber: str) -> None:
    """
    Remove a subscription.

    @raise NodeNotFound: if there is no such node.
    @raise NotSubscribed: if there is no such subscription.
    """
    _lockNode(cursor, nodeIdentifier)
    cursor.execute(
        "DELETE FROM pubsub_subscriptions WHERE node = ? AND subscriber = ?",
        (nodeIdentifier, subscriber),
    )
    if cursor.rowcount == 0:
        raise NotSubscribed(f"{subscriber} is not subscribed to {nodeIdentifier!r}")


def _subscriptions(cursor: Cursor, nodeIdentifier: str) -> list[Subscription]:
    """
    @return: the node's subscriptions, oldest first.
    @raise NodeNotFound: if there is no such node.
    """
    _requireNode(cursor, nodeIdentifier)
    rows = cursor.execute(
        "SELECT subscriber, subscription_id, created FROM pubsub_subscriptions WHERE node = ?",
        (nodeIdentifier,),
    ).fetchall()
    found = [
        Subscription(nodeIdentifier, subscriber, identifier, created)
        for subscriber, identifier, created in rows
    ]
    found.sort(key=lambda s: (s.created, s.subscriber))
    return found
