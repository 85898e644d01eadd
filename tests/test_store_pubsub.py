# -*- test-case-name: tests.test_store_pubsub -*-
"""
Tests for L{xmppnetgraph.store.pubsub.PubSubStore}: one suite,
L{PubSubStoreTests}, run against a SQLite file and a real PostgreSQL
server (L{tests.postgres}; skipped when PostgreSQL is missing, except in
CI, where that fails).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from tests.postgres import postgresSkip, requirePostgres, temporaryDatabase
from tests.test_store_database import asyncTest
from xmppnetgraph.error import (
    NodeExists,
    NodeNotFound,
    NotSubscribed,
    StorageFull,
    TooManySubscriptions,
)
from xmppnetgraph.interfaces import IPubSubStore
from xmppnetgraph.model import Publication, Retraction, StoredItem, Subscription
from xmppnetgraph.store.database import Database, openDatabase
from xmppnetgraph.store.pubsub import PubSubStore, subscriberDomain

CONFIG: dict[str, object] = {
    "pubsub#access_model": "open",
    "pubsub#max_items": 1,
    "pubsub#persist_items": True,
    "pubsub#title": "Server information – ünïcode",
    "pubsub#children": ["a", "b"],
}

PAYLOAD = "<serverinfo xmlns='urn:xmpp:serverinfo:0'><domain name='example.org'/></serverinfo>"


class PubSubStoreTests:
    """
    Tests that every L{PubSubStore} backend passes. Subclasses provide
    L{openTestDatabase}; C{setUp} here makes C{self.store} with a
    L{Clock} for the timestamps.
    """

    store: PubSubStore
    database: Database
    clock: Clock

    # Provided by TestCase:
    addCleanup: Callable[..., None]
    assertEqual: Callable[..., None]
    assertNotEqual: Callable[..., None]
    assertTrue: Callable[..., None]
    assertIn: Callable[..., None]
    assertNotIn: Callable[..., None]
    assertFailure: Callable[..., Deferred[Any]]

    def openTestDatabase(self) -> Database:
        """
        @return: the test's database, open (the same one each call).
        """
        raise NotImplementedError()

    async def fillUp(self) -> None:
        """
        Make writing a new item fail as on a full disk (L{StorageFull}).
        """
        raise NotImplementedError()

    async def makeRoom(self) -> None:
        """
        Undo L{fillUp}.
        """
        raise NotImplementedError()

    async def counts(self) -> tuple[int, int, int]:
        """
        @return: how many nodes, items and subscriptions the database holds.
        """
        [row] = await self.database.runQuery(
            "SELECT (SELECT COUNT(*) FROM pubsub_nodes), (SELECT COUNT(*) FROM pubsub_items),"
            " (SELECT COUNT(*) FROM pubsub_subscriptions)"
        )
        return (row[0], row[1], row[2])

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.database = self.openTestDatabase()
        self.addCleanup(lambda: self.database.close())
        self.store = PubSubStore(self.database, self.clock)

    async def reopen(self) -> None:
        """
        Close the database and open it again, as a restart does.
        """
        await self.database.close()
        self.database = self.openTestDatabase()
        self.store = PubSubStore(self.database, self.clock)

    async def fill(self, node: str, count: int, maxItems: int = 100) -> None:
        """
        Publish items C{0} … C{count-1} to C{node}, one after the other.
        """
        for n in range(count):
            await self.store.storeItem(node, str(n), f"<n>{n}</n>", "pub@example.org", maxItems)

    async def itemIds(self, node: str, **kw: Any) -> list[str]:
        """
        @return: the ids that L{PubSubStore.items} gives for C{node}.
        """
        return [item.identifier for item in await self.store.items(node, **kw)]

    def test_interface(self) -> None:
        """
        L{PubSubStore} provides L{IPubSubStore}.
        """
        self.assertTrue(verifyObject(IPubSubStore, self.store))

    # Nodes

    @asyncTest
    async def test_createNode(self) -> None:
        """
        A created node is listed and has the configuration it was created
        with.
        """
        self.assertEqual(await self.store.nodes(), [])
        await self.store.createNode("serverinfo", CONFIG)
        self.assertEqual(await self.store.nodes(), ["serverinfo"])
        self.assertEqual(await self.store.nodeConfig("serverinfo"), CONFIG)

    @asyncTest
    async def test_createNodeExists(self) -> None:
        """
        Creating a node twice fails with L{NodeExists} and keeps the first
        configuration.
        """
        await self.store.createNode("n", {"a": 1})
        await self.assertFailure(self.store.createNode("n", {"a": 2}), NodeExists)
        self.assertEqual(await self.store.nodeConfig("n"), {"a": 1})

    @asyncTest
    async def test_configNotJSON(self) -> None:
        """
        A configuration that JSON cannot hold is refused with L{TypeError}
        before touching the database.
        """
        await self.assertFailure(self.store.createNode("n", {"a": object()}), TypeError)
        self.assertEqual(await self.store.nodes(), [])
        await self.store.createNode("n", {})
        await self.assertFailure(self.store.setNodeConfig("n", {"a": {1, 2}}), TypeError)
        self.assertEqual(await self.store.nodeConfig("n"), {})

    @asyncTest
    async def test_nodes(self) -> None:
        """
        L{PubSubStore.nodes} lists every node in code point order.
        """
        for node in ("b", "serverinfo/example.org", "A", "a"):
            await self.store.createNode(node, {})
        self.assertEqual(await self.store.nodes(), ["A", "a", "b", "serverinfo/example.org"])

    @asyncTest
    async def test_setNodeConfig(self) -> None:
        """
        L{PubSubStore.setNodeConfig} replaces the whole configuration.
        """
        await self.store.createNode("n", {"a": 1, "b": 2})
        await self.store.setNodeConfig("n", {"c": "three"})
        self.assertEqual(await self.store.nodeConfig("n"), {"c": "three"})

    @asyncTest
    async def test_missingNode(self) -> None:
        """
        Every operation on a node that does not exist fails with
        L{NodeNotFound} and creates nothing.
        """
        await self.store.createNode("other", {})
        for d in (
            self.store.nodeConfig("n"),
            self.store.setNodeConfig("n", {}),
            self.store.deleteNode("n"),
            self.store.storeItem("n", "i", PAYLOAD, "pub@example.org", 1),
            self.store.items("n"),
            self.store.items("n", ["i"]),
            self.store.deleteItems("n", ["i"]),
            self.store.subscribe("n", "user@example.net", 10),
            self.store.unsubscribe("n", "user@example.net"),
            self.store.subscriptions("n"),
        ):
            await self.assertFailure(d, NodeNotFound)
        self.assertEqual(await self.store.nodes(), ["other"])
        rows = await self.database.runQuery(
            "SELECT (SELECT COUNT(*) FROM pubsub_items),"
            " (SELECT COUNT(*) FROM pubsub_subscriptions)"
        )
        self.assertEqual(rows, [(0, 0)])

    @asyncTest
    async def test_deleteNode(self) -> None:
        """
        A deleted node is gone; the others stay.
        """
        await self.store.createNode("n", {})
        await self.store.createNode("m", {})
        await self.store.deleteNode("n")
        self.assertEqual(await self.store.nodes(), ["m"])
        await self.assertFailure(self.store.nodeConfig("n"), NodeNotFound)

    @asyncTest
    async def test_deleteNodeCascades(self) -> None:
        """
        Deleting a node deletes its items and subscriptions (and no other
        node's); a new node of the same name starts empty.
        """
        for node in ("n", "m"):
            await self.store.createNode(node, {})
            await self.fill(node, 3)
            await self.store.subscribe(node, "user@example.net", 10)
        await self.store.deleteNode("n")
        rows = await self.database.runQuery(
            "SELECT (SELECT COUNT(*) FROM pubsub_items WHERE node = ?),"
            " (SELECT COUNT(*) FROM pubsub_subscriptions WHERE node = ?),"
            " (SELECT COUNT(*) FROM pubsub_items WHERE node = ?)",
            ("n", "n", "m"),
        )
        self.assertEqual(rows, [(0, 0, 3)])
        await self.store.createNode("n", {})
        self.assertEqual(await self.store.items("n"), [])
        self.assertEqual(await self.store.subscriptions("n"), [])
        self.assertEqual(len(await self.store.subscriptions("m")), 1)

    # Items

    @asyncTest
    async def test_storeItem(self) -> None:
        """
        A stored item comes back with its payload, publisher and the
        clock's time.
        """
        await self.store.createNode("serverinfo", CONFIG)
        await self.store.storeItem("serverinfo", "current", PAYLOAD, "example.org", 1)
        self.assertEqual(
            await self.store.items("serverinfo"),
            [StoredItem("current", PAYLOAD, "example.org", 1_700_000_000.0)],
        )

    @asyncTest
    async def test_payloadKeptExactly(self) -> None:
        """
        Payloads and ids come back character for character, including
        non-ASCII text and the characters the SQL layer treats specially
        (C{?}, C{%}, quotes).
        """
        await self.store.createNode("n", {})
        payload = "<x xmlns='urn:x' a=\"?\" b='%s'>100% ü – 𝄞 ?%%</x>"
        await self.store.storeItem("n", "id ?%'\"", payload, "ü@example.org/r?", 5)
        [item] = await self.store.items("n")
        self.assertEqual(
            (item.identifier, item.payload, item.publisher),
            ("id ?%'\"", payload, "ü@example.org/r?"),
        )

    @asyncTest
    async def test_itemsNewestFirst(self) -> None:
        """
        Items come newest first, by publishing order even when the clock
        did not move between them.
        """
        await self.store.createNode("n", {})
        await self.fill("n", 5)
        self.assertEqual(await self.itemIds("n"), ["4", "3", "2", "1", "0"])

    @asyncTest
    async def test_publishedTime(self) -> None:
        """
        Each item carries the time it was (last) published.
        """
        await self.store.createNode("n", {})
        await self.store.storeItem("n", "a", "<a/>", "p@example.org", 10)
        self.clock.advance(60)
        await self.store.storeItem("n", "b", "<b/>", "p@example.org", 10)
        self.assertEqual(
            [(i.identifier, i.published) for i in await self.store.items("n")],
            [("b", 1_700_000_060.0), ("a", 1_700_000_000.0)],
        )

    @asyncTest
    async def test_storeItemReplaces(self) -> None:
        """
        Storing an item with an existing id replaces it (payload, publisher,
        time) and makes it the newest.
        """
        await self.store.createNode("n", {})
        await self.fill("n", 3)
        self.clock.advance(5)
        await self.store.storeItem("n", "0", "<new/>", "admin@example.org", 10)
        items = await self.store.items("n")
        self.assertEqual([i.identifier for i in items], ["0", "2", "1"])
        self.assertEqual(items[0], StoredItem("0", "<new/>", "admin@example.org", 1_700_000_005.0))

    @asyncTest
    async def test_trim(self) -> None:
        """
        After storing, only the newest C{maxItems} items are kept.
        """
        await self.store.createNode("n", {})
        await self.fill("n", 5, maxItems=3)
        self.assertEqual(await self.itemIds("n"), ["4", "3", "2"])
        rows = await self.database.runQuery(
            "SELECT COUNT(*) FROM pubsub_items WHERE node = ?", ("n",)
        )
        self.assertEqual(rows, [(3,)])

    @asyncTest
    async def test_trimToOne(self) -> None:
        """
        With C{maxItems} 1 (the serverinfo node), the node holds only the
        last item published, whatever its id.
        """
        await self.store.createNode("n", {})
        await self.store.storeItem("n", "current", "<v1/>", "p@example.org", 1)
        await self.store.storeItem("n", "current", "<v2/>", "p@example.org", 1)
        await self.store.storeItem("n", "other", "<v3/>", "p@example.org", 1)
        self.assertEqual(
            [(i.identifier, i.payload) for i in await self.store.items("n")], [("other", "<v3/>")]
        )

    @asyncTest
    async def test_trimLater(self) -> None:
        """
        A smaller C{maxItems} on a later publish trims the older items
        stored under a larger one; C{maxItems} 0 keeps nothing.
        """
        await self.store.createNode("n", {})
        await self.fill("n", 5, maxItems=10)
        await self.store.storeItem("n", "new", "<new/>", "p@example.org", 2)
        self.assertEqual(await self.itemIds("n"), ["new", "4"])
        await self.store.storeItem("n", "gone", "<gone/>", "p@example.org", 0)
        self.assertEqual(await self.itemIds("n"), [])

    @asyncTest
    async def test_trimOnlyThatNode(self) -> None:
        """
        Trimming one node leaves the items of other nodes alone.
        """
        await self.store.createNode("n", {})
        await self.store.createNode("m", {})
        await self.fill("m", 3)
        await self.fill("n", 3, maxItems=1)
        self.assertEqual(await self.itemIds("m"), ["2", "1", "0"])
        self.assertEqual(await self.itemIds("n"), ["2"])

    @asyncTest
    async def test_negativeCounts(self) -> None:
        """
        A negative C{maxItems} is a L{ValueError}.
        """
        await self.store.createNode("n", {})
        await self.assertFailure(
            self.store.storeItem("n", "i", "<i/>", "p@example.org", -1), ValueError
        )
        await self.assertFailure(self.store.items("n", maxItems=-1), ValueError)
        self.assertEqual(await self.store.items("n"), [])

    @asyncTest
    async def test_itemsByIds(self) -> None:
        """
        Items asked for by id come newest first, each once; ids that do not
        exist are left out.
        """
        await self.store.createNode("n", {})
        await self.fill("n", 4)
        self.assertEqual(
            await self.itemIds("n", itemIdentifiers=["1", "missing", "3", "1"]), ["3", "1"]
        )
        self.assertEqual(await self.itemIds("n", itemIdentifiers=[]), [])
        self.assertEqual(await self.itemIds("n", itemIdentifiers=["missing"]), [])

    @asyncTest
    async def test_itemsMaxItems(self) -> None:
        """
        C{maxItems} gives the newest that many items (of those asked for by
        id, when ids are given).
        """
        await self.store.createNode("n", {})
        await self.fill("n", 5)
        self.assertEqual(await self.itemIds("n", maxItems=2), ["4", "3"])
        self.assertEqual(await self.itemIds("n", maxItems=10), ["4", "3", "2", "1", "0"])
        self.assertEqual(await self.itemIds("n", maxItems=0), [])
        self.assertEqual(
            await self.itemIds("n", itemIdentifiers=["0", "2", "3"], maxItems=2), ["3", "2"]
        )

    @asyncTest
    async def test_deleteItems(self) -> None:
        """
        L{PubSubStore.deleteItems} deletes the given items and reports those
        that existed, in the order asked, each once.
        """
        await self.store.createNode("n", {})
        await self.fill("n", 4)
        deleted = await self.store.deleteItems("n", ["2", "missing", "0", "2"])
        self.assertEqual(deleted, ["2", "0"])
        self.assertEqual(await self.itemIds("n"), ["3", "1"])
        self.assertEqual(await self.store.deleteItems("n", ["2"]), [])

    @asyncTest
    async def test_publishAfterDeletingAll(self) -> None:
        """
        After all items are deleted, publishing again works and orders the
        new items correctly.
        """
        await self.store.createNode("n", {})
        await self.fill("n", 2)
        await self.store.deleteItems("n", ["0", "1"])
        await self.fill("n", 3)
        self.assertEqual(await self.itemIds("n"), ["2", "1", "0"])

    # Publishing in one transaction

    @asyncTest
    async def test_publishItemCreates(self) -> None:
        """
        L{PubSubStore.publishItem} with a C{createConfig} creates a missing
        node with it, stores the item and reports both, with no
        subscriptions yet; C{maxItems} is asked with the configuration.
        """
        asked: list[dict[str, object]] = []

        def maxItems(config: Any) -> int:
            asked.append(dict(config))
            return 1

        publication = await self.store.publishItem(
            "serverinfo", "current", PAYLOAD, "example.org", maxItems, CONFIG
        )
        item = StoredItem("current", PAYLOAD, "example.org", 1_700_000_000.0)
        self.assertEqual(publication, Publication(item, CONFIG, True, ()))
        self.assertEqual(asked, [CONFIG])
        self.assertEqual(await self.store.nodes(), ["serverinfo"])
        self.assertEqual(await self.store.nodeConfig("serverinfo"), CONFIG)
        self.assertEqual(await self.store.items("serverinfo"), [item])

    @asyncTest
    async def test_publishItemExisting(self) -> None:
        """
        Publishing to a node that exists keeps its configuration (the
        C{createConfig} is not used), trims to what C{maxItems} says for
        that configuration, and reports the node's subscriptions, oldest
        first.
        """
        await self.store.createNode("n", {"keep": 2})
        first = await self.store.subscribe("n", "b@example.net", 10)
        self.clock.advance(1)
        second = await self.store.subscribe("n", "a@example.net", 10)
        await self.fill("n", 3)

        def maxItems(config: Any) -> int:
            return int(config["keep"])

        publication = await self.store.publishItem(
            "n", "new", "<new/>", "p@example.org", maxItems, {"keep": 100}
        )
        self.assertEqual(
            publication,
            Publication(
                StoredItem("new", "<new/>", "p@example.org", 1_700_000_001.0),
                {"keep": 2},
                False,
                (first, second),
            ),
        )
        self.assertEqual(await self.store.nodeConfig("n"), {"keep": 2})
        self.assertEqual(await self.itemIds("n"), ["new", "2"])

    @asyncTest
    async def test_publishItemMissingNode(self) -> None:
        """
        Without a C{createConfig}, publishing to a missing node is
        L{NodeNotFound} and creates nothing.
        """
        await self.assertFailure(
            self.store.publishItem("n", "i", PAYLOAD, "p@example.org", lambda config: 1),
            NodeNotFound,
        )
        self.assertEqual(await self.counts(), (0, 0, 0))

    @asyncTest
    async def test_publishItemRolledBack(self) -> None:
        """
        A publish that fails after creating the node (here C{maxItems}
        gives a negative count) leaves neither node nor item; a
        configuration JSON cannot hold is refused before any of it.
        """
        await self.assertFailure(
            self.store.publishItem("n", "i", PAYLOAD, "p@example.org", lambda config: -1, {}),
            ValueError,
        )
        await self.assertFailure(
            self.store.publishItem(
                "n", "i", PAYLOAD, "p@example.org", lambda config: 1, {"a": object()}
            ),
            TypeError,
        )
        self.assertEqual(await self.counts(), (0, 0, 0))

    @asyncTest
    async def test_publishItemFull(self) -> None:
        """
        When the database is full, a publish to a new node leaves neither
        the node nor the item, and one to an existing node leaves its
        items as they were; once there is room, publishing works.
        """
        await self.store.createNode("m", {})
        await self.fill("m", 2)
        before = await self.store.items("m")
        await self.fillUp()
        big = f"<big>{'x' * 200_000}</big>"
        await self.assertFailure(
            self.store.publishItem("n", "i", big, "p@example.org", lambda config: 1, {}),
            StorageFull,
        )
        await self.assertFailure(
            self.store.publishItem("m", "i", big, "p@example.org", lambda config: 1),
            StorageFull,
        )
        await self.makeRoom()
        self.assertEqual(await self.store.nodes(), ["m"])
        self.assertEqual(await self.store.items("m"), before)
        publication = await self.store.publishItem(
            "n", "i", big, "p@example.org", lambda config: 1, {}
        )
        self.assertTrue(publication.created)
        self.assertEqual(await self.itemIds("n"), ["i"])

    @asyncTest
    async def test_concurrentCreatingPublishes(self) -> None:
        """
        Publishes issued at once, each creating the same missing node,
        all succeed: the node is created once (one of them says so), with
        the configuration of that one, and the trim leaves C{maxItems}.
        """
        publications = await gatherResults(
            [
                self.store.publishItem(
                    "n", str(n), f"<n>{n}</n>", "p@example.org", lambda config: 5, {"by": n}
                )
                for n in range(20)
            ],
            consumeErrors=True,
        )
        creators = [p for p in publications if p.created]
        self.assertEqual(len(creators), 1)
        self.assertEqual(await self.store.nodeConfig("n"), creators[0].config)
        self.assertEqual({p.config["by"] for p in publications}, {creators[0].config["by"]})
        self.assertEqual(len(await self.store.items("n")), 5)

    @asyncTest
    async def test_retractItems(self) -> None:
        """
        L{PubSubStore.retractItems} deletes like L{PubSubStore.deleteItems}
        and reports the node's subscriptions with the deleted ids.
        """
        await self.store.createNode("n", {})
        subscription = await self.store.subscribe("n", "user@example.net", 10)
        await self.fill("n", 4)
        retraction = await self.store.retractItems("n", ["2", "missing", "0", "2"])
        self.assertEqual(retraction, Retraction(("2", "0"), (subscription,)))
        self.assertEqual(await self.itemIds("n"), ["3", "1"])
        self.assertEqual(await self.store.retractItems("n", ["2"]), Retraction((), (subscription,)))
        await self.assertFailure(self.store.retractItems("missing", ["1"]), NodeNotFound)

    # Subscriptions

    @asyncTest
    async def test_subscribe(self) -> None:
        """
        A subscription has the node, the subscriber, a subscription id and
        the clock's time, and is listed.
        """
        await self.store.createNode("n", {})
        subscription = await self.store.subscribe("n", "user@example.net/res", 10)
        self.assertEqual(
            (subscription.nodeIdentifier, subscription.subscriber, subscription.created),
            ("n", "user@example.net/res", 1_700_000_000.0),
        )
        self.assertTrue(len(subscription.subscriptionIdentifier) >= 16)
        self.assertEqual(await self.store.subscriptions("n"), [subscription])

    @asyncTest
    async def test_subscribeIdempotent(self) -> None:
        """
        Subscribing again returns the existing subscription unchanged and
        stores no second one.
        """
        await self.store.createNode("n", {})
        first = await self.store.subscribe("n", "user@example.net", 10)
        self.clock.advance(30)
        again = await self.store.subscribe("n", "user@example.net", 10)
        self.assertEqual(again, first)
        self.assertEqual(await self.store.subscriptions("n"), [first])

    @asyncTest
    async def test_subscriptionIdentifiers(self) -> None:
        """
        Every subscription gets an identifier of its own, also for the same
        subscriber on another node and after unsubscribing.
        """
        await self.store.createNode("n", {})
        await self.store.createNode("m", {})
        identifiers = [
            (await self.store.subscribe("n", "a@example.net", 10)).subscriptionIdentifier,
            (await self.store.subscribe("n", "b@example.net", 10)).subscriptionIdentifier,
            (await self.store.subscribe("m", "a@example.net", 10)).subscriptionIdentifier,
        ]
        await self.store.unsubscribe("n", "a@example.net")
        identifiers.append(
            (await self.store.subscribe("n", "a@example.net", 10)).subscriptionIdentifier
        )
        self.assertEqual(len(set(identifiers)), 4)

    @asyncTest
    async def test_subscriptionsOldestFirst(self) -> None:
        """
        L{PubSubStore.subscriptions} lists the node's subscriptions (only
        that node's), oldest first.
        """
        await self.store.createNode("n", {})
        await self.store.createNode("m", {})
        for subscriber in ("z@example.net", "a@example.com", "m@example.org"):
            await self.store.subscribe("n", subscriber, 10)
            self.clock.advance(1)
        await self.store.subscribe("m", "other@example.net", 10)
        subscriptions = await self.store.subscriptions("n")
        self.assertEqual(
            [(s.subscriber, s.created) for s in subscriptions],
            [
                ("z@example.net", 1_700_000_000.0),
                ("a@example.com", 1_700_000_001.0),
                ("m@example.org", 1_700_000_002.0),
            ],
        )

    @asyncTest
    async def test_perDomainCap(self) -> None:
        """
        A domain may hold at most C{maxPerDomain} subscriptions to a node,
        counting every JID of that domain; other domains and other nodes
        are counted apart, and an existing subscription is still returned.
        """
        await self.store.createNode("n", {})
        await self.store.createNode("m", {})
        await self.store.subscribe("n", "a@flood.example/1", 3)
        await self.store.subscribe("n", "flood.example", 3)
        await self.store.subscribe("n", "b@FLOOD.example/x@y", 3)
        error = await self.assertFailure(
            self.store.subscribe("n", "c@flood.example", 3), TooManySubscriptions
        )
        self.assertIn("flood.example", str(error))
        await self.store.subscribe("n", "a@flood.example/1", 3)
        await self.store.subscribe("n", "c@other.example", 3)
        await self.store.subscribe("m", "c@flood.example", 3)
        subscribers = [s.subscriber for s in await self.store.subscriptions("n")]
        self.assertEqual(len(subscribers), 4)
        self.assertNotIn("c@flood.example", subscribers)

    @asyncTest
    async def test_capFreedByUnsubscribe(self) -> None:
        """
        Unsubscribing frees a place under the cap.
        """
        await self.store.createNode("n", {})
        await self.store.subscribe("n", "a@example.net", 1)
        await self.assertFailure(
            self.store.subscribe("n", "b@example.net", 1), TooManySubscriptions
        )
        await self.store.unsubscribe("n", "a@example.net")
        await self.store.subscribe("n", "b@example.net", 1)
        self.assertEqual(
            [s.subscriber for s in await self.store.subscriptions("n")], ["b@example.net"]
        )

    @asyncTest
    async def test_unsubscribe(self) -> None:
        """
        Unsubscribing removes the subscription; unsubscribing again (or
        someone never subscribed) fails with L{NotSubscribed}.
        """
        await self.store.createNode("n", {})
        await self.store.subscribe("n", "a@example.net", 10)
        kept = await self.store.subscribe("n", "b@example.net", 10)
        await self.store.unsubscribe("n", "a@example.net")
        self.assertEqual(await self.store.subscriptions("n"), [kept])
        await self.assertFailure(self.store.unsubscribe("n", "a@example.net"), NotSubscribed)
        await self.assertFailure(self.store.unsubscribe("n", "never@example.net"), NotSubscribed)

    @asyncTest
    async def test_subscriptionIdentifierGiven(self) -> None:
        """
        A new subscription gets the identifier the caller gives; an
        existing one keeps its own, so the caller can tell them apart.
        """
        await self.store.createNode("n", {})
        new = await self.store.subscribe("n", "user@example.net", 10, "chosen")
        self.assertEqual(new.subscriptionIdentifier, "chosen")
        again = await self.store.subscribe("n", "user@example.net", 10, "other")
        self.assertEqual(again, new)

    @asyncTest
    async def test_deleteNodeSubscriptions(self) -> None:
        """
        Deleting a node reports the subscriptions it had, oldest first.
        """
        await self.store.createNode("n", {})
        first = await self.store.subscribe("n", "z@example.net", 10)
        self.clock.advance(1)
        second = await self.store.subscribe("n", "a@example.net", 10)
        self.assertEqual(await self.store.deleteNode("n"), [first, second])
        await self.store.createNode("m", {})
        self.assertEqual(await self.store.deleteNode("m"), [])

    # Concurrency and restarts

    @asyncTest
    async def test_concurrentPublishes(self) -> None:
        """
        Publishes to one node issued at once all succeed, and the trim
        leaves exactly C{maxItems}.
        """
        await self.store.createNode("n", {})
        await gatherResults(
            [
                self.store.storeItem("n", str(n), f"<n>{n}</n>", "p@example.org", 5)
                for n in range(20)
            ],
            consumeErrors=True,
        )
        self.assertEqual(len(await self.store.items("n")), 5)

    @asyncTest
    async def test_concurrentSubscribes(self) -> None:
        """
        Subscriptions from one domain issued at once stop exactly at the
        cap.
        """
        await self.store.createNode("n", {})
        results = await gatherResults(
            [
                self.store.subscribe("n", f"u{n}@flood.example", 3).addErrback(
                    lambda f: f.trap(TooManySubscriptions)
                )
                for n in range(12)
            ]
        )
        self.assertEqual(sum(isinstance(r, Subscription) for r in results), 3)
        self.assertEqual(len(await self.store.subscriptions("n")), 3)

    @asyncTest
    async def test_survivesReopen(self) -> None:
        """
        Nodes, configuration, items (with their order) and subscriptions
        are all there after the database is closed and opened again.
        """
        await self.store.createNode("serverinfo", CONFIG)
        await self.fill("serverinfo", 3)
        subscription = await self.store.subscribe("serverinfo", "user@example.net", 10)
        items = await self.store.items("serverinfo")
        await self.reopen()
        self.assertEqual(await self.store.nodes(), ["serverinfo"])
        self.assertEqual(await self.store.nodeConfig("serverinfo"), CONFIG)
        self.assertEqual(await self.store.items("serverinfo"), items)
        self.assertEqual(await self.store.subscriptions("serverinfo"), [subscription])
        await self.store.storeItem("serverinfo", "after", "<after/>", "p@example.org", 10)
        self.assertEqual(await self.itemIds("serverinfo"), ["after", "2", "1", "0"])


class SQLiteTestDatabase:
    """
    A test's database in a SQLite file in its temporary directory, and the
    way to make it full. (Mix in before the suite that uses it.)
    """

    database: Database
    mktemp: Callable[[], str]

    def setUp(self) -> None:
        self.dataDir = Path(self.mktemp()).absolute()
        self.dataDir.mkdir(parents=True)
        super().setUp()  # type: ignore[misc]  # the TestCase it is mixed into

    def openTestDatabase(self) -> Database:
        """
        @return: the SQLite database in the test's data directory.
        """
        return openDatabase(None, self.dataDir, reactor)

    async def fillUp(self) -> None:
        """
        Let the file grow no more (C{max_page_count}): SQLite is really
        full then.
        """
        [(pages,)] = await self.database.runQuery("PRAGMA page_count")
        await self.database.runQuery(f"PRAGMA max_page_count = {pages}")

    async def makeRoom(self) -> None:
        """
        Let the file grow again.
        """
        await self.database.runQuery("PRAGMA max_page_count = 1000000")


class PostgreSQLTestDatabase:
    """
    A test's database of its own on the test PostgreSQL server, and the
    way to make it (look) full. (Mix in before the suite that uses it.)
    """

    skip = postgresSkip()
    database: Database
    mktemp: Callable[[], str]
    #: The table whose inserts fail once L{fillUp} made the disk look full.
    fullTable = "pubsub_items"

    def setUp(self) -> None:
        requirePostgres()
        self.dataDir = Path(self.mktemp()).absolute()
        self.url = temporaryDatabase(self)  # type: ignore[arg-type]  # mixed into a TestCase
        super().setUp()  # type: ignore[misc]  # the TestCase it is mixed into

    def openTestDatabase(self) -> Database:
        """
        @return: the test's PostgreSQL database.
        """
        return openDatabase(self.url, self.dataDir, reactor)

    async def fillUp(self) -> None:
        """
        Make every insert into L{fullTable} fail as PostgreSQL does on a
        full disk (SQLSTATE 53100, C{disk_full}), through a trigger.
        """
        await self.database.runOperation(
            "CREATE FUNCTION test_disk_full() RETURNS trigger AS $$ BEGIN"
            " RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full';"
            " END $$ LANGUAGE plpgsql"
        )
        await self.database.runOperation(
            f"CREATE TRIGGER test_disk_full BEFORE INSERT ON {self.fullTable}"
            " FOR EACH ROW EXECUTE FUNCTION test_disk_full()"
        )

    async def makeRoom(self) -> None:
        """
        Drop the trigger of L{fillUp}.
        """
        await self.database.runOperation(f"DROP TRIGGER test_disk_full ON {self.fullTable}")


class SQLitePubSubStoreTests(SQLiteTestDatabase, PubSubStoreTests, TestCase):
    """
    L{PubSubStoreTests} on a SQLite file in a temporary directory.
    """


class PostgreSQLPubSubStoreTests(PostgreSQLTestDatabase, PubSubStoreTests, TestCase):
    """
    L{PubSubStoreTests} on a database of its own on the test PostgreSQL
    server.
    """


class DefaultClockTests(TestCase):
    """
    Without a clock, L{PubSubStore} takes the time from the global reactor.
    """

    @asyncTest
    async def test_reactorTime(self) -> None:
        """
        Timestamps lie between the reactor's time before and after the
        operation.
        """
        dataDir = Path(self.mktemp()).absolute()
        dataDir.mkdir(parents=True)
        database = openDatabase(None, dataDir, reactor)
        self.addCleanup(database.close)
        store = PubSubStore(database)
        await store.createNode("n", {})
        before = reactor.seconds()
        await store.storeItem("n", "i", "<i/>", "p@example.org", 1)
        after = reactor.seconds()
        [item] = await store.items("n")
        self.assertTrue(before <= item.published <= after, (before, item.published, after))


class SubscriberDomainTests(SynchronousTestCase):
    """
    Tests for L{subscriberDomain}.
    """

    def test_domains(self) -> None:
        """
        The domain is the part between C{@} and C{/}, in lower case.
        """
        self.assertEqual(subscriberDomain("user@Example.ORG/res"), "example.org")
        self.assertEqual(subscriberDomain("example.org"), "example.org")
        self.assertEqual(subscriberDomain("example.org/res@with/slash"), "example.org")
        self.assertEqual(subscriberDomain("user@example.org"), "example.org")
