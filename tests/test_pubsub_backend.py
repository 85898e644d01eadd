# -*- test-case-name: tests.test_pubsub_backend -*-
"""
Tests for L{xmppnetgraph.pubsub.backend.PubSubBackend}: permissions,
configuration checks, one store transaction per change (on SQLite and
PostgreSQL), the events on the change feed (once per committed change,
none on failure), and the XMPP notifier driven by those events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.words.xish import domish
from zope.interface.verify import verifyObject

from tests.test_pubsub import (
    ADMIN,
    LOCAL,
    NS_EVENT,
    PAYLOAD,
    PUBSUB,
    REMOTE,
    MemoryStore,
    PubSubTestsMixin,
)
from tests.test_store_database import asyncTest
from tests.test_store_pubsub import PostgreSQLTestDatabase, SQLiteTestDatabase
from xmppnetgraph import error
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.interfaces import IPubSubBackend
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.model import (
    ChangeEvent,
    ConsentState,
    ItemPublished,
    ItemsRetracted,
    NodeConfigured,
    NodeCreated,
    NodeDeleted,
    StoredItem,
    Subscription,
    SubscriptionChanged,
)
from xmppnetgraph.pubsub import (
    ACCESS_MODEL,
    DEFAULT_NODE_CONFIG,
    DELIVER_PAYLOADS,
    MAX_ITEMS,
    PERSIST_ITEMS,
    PubSubBackend,
)
from xmppnetgraph.serverinfo.payload import DEFAULT_NODE, ITEM_ID
from xmppnetgraph.serverinfo.publisher import publisherFor
from xmppnetgraph.store.database import Database
from xmppnetgraph.store.pubsub import PubSubStore

OWNERS = (LOCAL, ADMIN + "/ignored")

#: Requestors that are not owners: remote servers, their users, users of
#: our own domain, the pub-sub host's JID, and something that is no JID.
STRANGERS = (REMOTE, "user@b.example/r", "user@a.example", "user@a.example/r", PUBSUB, "a..b")


class BackendMixin:
    """
    A backend for C{pubsub.a.example} (owners C{a.example} and
    C{admin@c.example}) over an in-memory store, recording every event.
    """

    def setUp(self) -> None:
        self.store = MemoryStore()
        self.feed = ChangeFeed()
        self.events: list[ChangeEvent] = []
        self.feed.observe(ChangeEvent, self.events.append)
        self.backend = PubSubBackend(self.store, PUBSUB, self.feed, owners=OWNERS)

    def node(self, nodeIdentifier: str = "n", **config: object) -> None:
        """
        Create a node in the store directly (no event).
        """
        self.store.createNode(nodeIdentifier, {**DEFAULT_NODE_CONFIG, **config})


class BackendTests(BackendMixin, SynchronousTestCase):
    """
    The backend over a synchronous in-memory store.
    """

    def test_interface(self) -> None:
        """
        L{PubSubBackend} provides L{IPubSubBackend}; the service JID and
        the owners are kept as normalized bare JIDs.
        """
        backend = PubSubBackend(
            self.store, "PubSub.A.Example", self.feed, owners=["Admin@C.example/r"]
        )
        self.assertTrue(verifyObject(IPubSubBackend, backend))
        self.assertEqual(backend.serviceJID, PUBSUB)
        self.assertEqual(backend.owners, frozenset({ADMIN}))
        self.assertEqual(dict(backend.defaultConfig), dict(DEFAULT_NODE_CONFIG))

    def test_notJIDs(self) -> None:
        """
        A service or owner that is no JID is refused when the backend is
        made.
        """
        self.assertRaises(ValueError, PubSubBackend, self.store, "a..b", self.feed)
        self.assertRaises(
            ValueError, PubSubBackend, self.store, PUBSUB, self.feed, owners=["x@y@z"]
        )

    def test_owners(self) -> None:
        """
        The service itself (L{None}), the owners and their full JIDs are
        owners; nobody else is.
        """
        for owner in (None, LOCAL, ADMIN, ADMIN + "/laptop", "A.Example"):
            self.assertTrue(self.backend.isOwner(owner), owner)
        for stranger in STRANGERS:
            self.assertFalse(self.backend.isOwner(stranger), stranger)

    def test_forbidden(self) -> None:
        """
        Every owner operation refuses a stranger with L{error.Forbidden}
        before it touches the store, and announces nothing.
        """
        self.node("n")
        self.store.subscribe("n", REMOTE, 10)
        calls = len(self.store.calls)
        operations: list[Callable[[str], defer.Deferred[Any]]] = [
            lambda who: self.backend.publish("n", "i", PAYLOAD, requestor=who),
            lambda who: self.backend.publish("new", "i", PAYLOAD, who, createConfig={}),
            lambda who: self.backend.retract("n", ["i"], requestor=who),
            lambda who: self.backend.createNode("new", requestor=who),
            lambda who: self.backend.ensureNode("new", requestor=who),
            lambda who: self.backend.configureNode("n", {MAX_ITEMS: 2}, requestor=who),
            lambda who: self.backend.deleteNode("n", requestor=who),
            lambda who: self.backend.nodeConfig("n", requestor=who),
            lambda who: self.backend.subscriptions("n", requestor=who),
        ]
        for operation in operations:
            for stranger in STRANGERS:
                self.failureResultOf(operation(stranger), error.Forbidden)
        self.assertEqual(self.store.calls[calls:], [])
        self.assertEqual(self.events, [])

    def test_ownersAllowed(self) -> None:
        """
        An owner's full JID may do what the owner may; the item's publisher
        is the bare JID; the service itself publishes as the service JID.
        """
        self.node("n")
        item = self.successResultOf(
            self.backend.publish("n", "i", PAYLOAD, requestor=ADMIN + "/laptop")
        )
        self.assertEqual(item.publisher, ADMIN)
        item = self.successResultOf(self.backend.publish("n", "j", PAYLOAD))
        self.assertEqual(item.publisher, PUBSUB)
        self.assertEqual(
            self.successResultOf(self.backend.nodeConfig("n", requestor=LOCAL)),
            dict(DEFAULT_NODE_CONFIG),
        )

    def test_anyoneReads(self) -> None:
        """
        Anyone lists the nodes, reads the meta-data and the items, and
        subscribes.
        """
        self.node("n", **{MAX_ITEMS: 3})
        self.store.storeItem("n", "i", PAYLOAD, LOCAL, 3)
        self.assertEqual(self.successResultOf(self.backend.nodes()), ["n"])
        self.assertEqual(
            self.successResultOf(self.backend.nodeMetaData("n")),
            {ACCESS_MODEL: "open", MAX_ITEMS: 3, DELIVER_PAYLOADS: True},
        )
        (item,) = self.successResultOf(self.backend.items("n"))
        self.assertEqual(item.identifier, "i")
        subscription = self.successResultOf(self.backend.subscribe("n", "user@b.example/r"))
        self.assertEqual(subscription.subscriber, "user@b.example/r")

    # -- publish ---------------------------------------------------------------

    def test_publish(self) -> None:
        """
        A publish stores the item and announces one L{ItemPublished} with
        the item as stored, the node's subscriptions and whether payloads
        are delivered.
        """
        self.node("n", **{DELIVER_PAYLOADS: False})
        subscription = self.successResultOf(self.backend.subscribe("n", REMOTE))
        del self.events[:]
        item = self.successResultOf(self.backend.publish("n", "i", PAYLOAD, requestor=LOCAL))
        self.assertEqual(item, StoredItem("i", PAYLOAD, LOCAL, self.store.now))
        self.assertEqual(self.store.stored["n"], [item])
        self.assertEqual(
            self.events,
            [ItemPublished(PUBSUB, "n", item, (subscription,), deliverPayload=False)],
        )

    def test_publishCreates(self) -> None:
        """
        A publish with a C{createConfig} to a missing node creates it with
        the default configuration changed by C{createConfig}, in the one
        store call, and announces L{NodeCreated} before L{ItemPublished}.
        """
        item = self.successResultOf(
            self.backend.publish("new", "i", PAYLOAD, createConfig={MAX_ITEMS: 1})
        )
        config = {**DEFAULT_NODE_CONFIG, MAX_ITEMS: 1}
        self.assertEqual(self.store.configs["new"], config)
        self.assertEqual(self.store.calls, ["publishItem"])
        self.assertEqual(
            self.events, [NodeCreated(PUBSUB, "new", config), ItemPublished(PUBSUB, "new", item)]
        )

    def test_publishExistingWithCreateConfig(self) -> None:
        """
        For a node that exists, C{createConfig} changes nothing and no
        L{NodeCreated} is announced.
        """
        self.node("n", **{MAX_ITEMS: 3})
        item = self.successResultOf(
            self.backend.publish("n", "i", PAYLOAD, createConfig={MAX_ITEMS: 1})
        )
        self.assertEqual(self.store.configs["n"][MAX_ITEMS], 3)
        self.assertEqual(self.events, [ItemPublished(PUBSUB, "n", item)])

    def test_publishMissingNode(self) -> None:
        """
        Without a C{createConfig}, publishing to a missing node is
        L{error.NodeNotFound}: nothing is created or announced.
        """
        self.failureResultOf(self.backend.publish("missing", "i", PAYLOAD), error.NodeNotFound)
        self.assertEqual((self.store.configs, self.events), ({}, []))

    def test_publishBadCreateConfig(self) -> None:
        """
        A C{createConfig} the backend does not accept is refused before
        the store is asked.
        """
        for config, failure in (
            ({ACCESS_MODEL: "whitelist"}, error.UnsupportedAccessModel),
            ({MAX_ITEMS: 0}, error.BadNodeConfiguration),
        ):
            self.failureResultOf(
                self.backend.publish("new", "i", PAYLOAD, createConfig=config), failure
            )
        self.assertEqual((self.store.calls, self.events), ([], []))

    def test_noEventOnFailure(self) -> None:
        """
        A publish the store fails is not announced, and its error comes
        through unchanged.
        """
        self.node("n")
        self.store.subscribe("n", REMOTE, 10)
        self.store.failures["publishItem"] = error.StorageFull("quota")
        self.failureResultOf(self.backend.publish("n", "i", PAYLOAD), error.StorageFull)
        self.assertEqual(self.events, [])

    def test_failingObserver(self) -> None:
        """
        An observer that fails on L{ItemPublished} does not fail the
        publish (the item is stored), the failure is logged, and the other
        observers are still told.
        """
        self.node("n")

        def broken(event: ItemPublished) -> None:
            raise ZeroDivisionError("observer bug")

        self.feed.observe(ItemPublished, broken)
        after: list[ItemPublished] = []
        self.feed.observe(ItemPublished, after.append)
        item = self.successResultOf(self.backend.publish("n", "i", PAYLOAD))
        self.assertEqual(self.store.stored["n"], [item])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual([e.item for e in after], [item])

    def test_trimFromConfig(self) -> None:
        """
        A node keeps as many items as its C{pubsub#max_items} says; a node
        without one keeps the default configuration's number.
        """
        self.node("n", **{MAX_ITEMS: 2})
        self.store.createNode("bare", {})
        for ident in ("1", "2", "3"):
            self.successResultOf(self.backend.publish("n", ident, PAYLOAD))
        for ident in range(12):
            self.successResultOf(self.backend.publish("bare", str(ident), PAYLOAD))
        self.assertEqual([i.identifier for i in self.store.stored["n"]], ["3", "2"])
        self.assertEqual(len(self.store.stored["bare"]), DEFAULT_NODE_CONFIG[MAX_ITEMS])

    def test_currentItems(self) -> None:
        """
        L{PubSubBackend.currentItems} gives the newest items, and none for
        a missing node (where L{PubSubBackend.items} fails).
        """
        self.node("n")
        for ident in ("1", "2"):
            self.successResultOf(self.backend.publish("n", ident, PAYLOAD))
        (newest,) = self.successResultOf(self.backend.currentItems("n", 1))
        self.assertEqual(newest.identifier, "2")
        self.assertEqual(self.successResultOf(self.backend.currentItems("missing")), [])
        self.failureResultOf(self.backend.items("missing"), error.NodeNotFound)

    # -- retract ---------------------------------------------------------------

    def test_retract(self) -> None:
        """
        A retraction deletes the items and announces L{ItemsRetracted} with
        the deleted ids and the subscriptions.
        """
        self.node("n")
        subscription = self.successResultOf(self.backend.subscribe("n", REMOTE))
        for ident in ("1", "2", "3"):
            self.store.storeItem("n", ident, PAYLOAD, LOCAL, 10)
        del self.events[:]
        deleted = self.successResultOf(self.backend.retract("n", ["3", "1", "3"]))
        self.assertEqual(deleted, ["3", "1"])
        self.assertEqual([i.identifier for i in self.store.stored["n"]], ["2"])
        self.assertEqual(self.events, [ItemsRetracted(PUBSUB, "n", ("3", "1"), (subscription,))])

    def test_retractMissing(self) -> None:
        """
        Ids that do not exist are L{error.ItemNotFound}, after the others
        were deleted and announced; if none exists, nothing is announced.
        """
        self.node("n")
        self.store.storeItem("n", "1", PAYLOAD, LOCAL, 10)
        failure = self.failureResultOf(
            self.backend.retract("n", ["1", "x", "y"]), error.ItemNotFound
        )
        self.assertEqual(str(failure.value), "x, y")
        self.assertEqual(self.store.stored["n"], [])
        self.assertEqual(self.events, [ItemsRetracted(PUBSUB, "n", ("1",), ())])
        self.failureResultOf(self.backend.retract("n", ["1"]), error.ItemNotFound)
        self.failureResultOf(self.backend.retract("missing", ["1"]), error.NodeNotFound)
        self.assertEqual(len(self.events), 1)

    # -- nodes -----------------------------------------------------------------

    def test_createNode(self) -> None:
        """
        A created node has the default configuration changed by the values
        given (options we do not store are ignored) and is announced once;
        creating it again is L{error.NodeExists}, not announced.
        """
        config = self.successResultOf(
            self.backend.createNode("n", {MAX_ITEMS: "5", "pubsub#title": "T"}, requestor=LOCAL)
        )
        self.assertEqual(config, {**DEFAULT_NODE_CONFIG, MAX_ITEMS: 5})
        self.assertEqual(self.store.configs["n"], config)
        self.failureResultOf(self.backend.createNode("n"), error.NodeExists)
        self.assertEqual(self.events, [NodeCreated(PUBSUB, "n", config)])

    def test_ensureNode(self) -> None:
        """
        L{PubSubBackend.ensureNode} creates a missing node (and says so)
        and leaves one that exists as it is.
        """
        self.assertTrue(self.successResultOf(self.backend.ensureNode("n", {MAX_ITEMS: 1})))
        self.assertFalse(self.successResultOf(self.backend.ensureNode("n", {MAX_ITEMS: 7})))
        self.assertEqual(self.store.configs["n"][MAX_ITEMS], 1)
        self.assertEqual(
            self.events, [NodeCreated(PUBSUB, "n", {**DEFAULT_NODE_CONFIG, MAX_ITEMS: 1})]
        )

    def test_checkConfig(self) -> None:
        """
        Only the open access model, persistent items and an item limit
        from 1 to C{maxItemsLimit} are accepted; C{deliver_payloads} is a
        truth value. A refused configuration creates nothing.
        """
        backend = PubSubBackend(self.store, PUBSUB, self.feed, maxItemsLimit=50)
        refused = [
            ({ACCESS_MODEL: "presence"}, error.UnsupportedAccessModel),
            ({MAX_ITEMS: 0}, error.BadNodeConfiguration),
            ({MAX_ITEMS: 51}, error.BadNodeConfiguration),
            ({MAX_ITEMS: "many"}, error.BadNodeConfiguration),
            ({PERSIST_ITEMS: False}, error.BadNodeConfiguration),
        ]
        for values, kind in refused:
            self.failureResultOf(backend.createNode("n", values), kind)
        self.assertEqual(self.store.configs, {})
        config = self.successResultOf(
            backend.createNode("n", {MAX_ITEMS: 50, DELIVER_PAYLOADS: 0, ACCESS_MODEL: "open"})
        )
        self.assertEqual(config[MAX_ITEMS], 50)
        self.assertIs(config[DELIVER_PAYLOADS], False)

    def test_configureNode(self) -> None:
        """
        A configuration change is stored and announced with the new
        configuration; one that changes nothing is neither.
        """
        self.node("n")
        config = self.successResultOf(self.backend.configureNode("n", {MAX_ITEMS: "3"}))
        self.assertEqual(self.store.configs["n"], config)
        self.assertEqual(self.events, [NodeConfigured(PUBSUB, "n", config)])
        calls = len(self.store.calls)
        self.successResultOf(self.backend.configureNode("n", {MAX_ITEMS: 3, "x": 1}))
        self.assertEqual(self.store.calls[calls:], ["nodeConfig"])
        self.assertEqual(len(self.events), 1)
        self.failureResultOf(
            self.backend.configureNode("n", {PERSIST_ITEMS: False}), error.BadNodeConfiguration
        )
        self.failureResultOf(self.backend.configureNode("missing", {}), error.NodeNotFound)
        self.assertEqual(len(self.events), 1)

    def test_deleteNode(self) -> None:
        """
        Deleting a node announces L{NodeDeleted} with its subscriptions,
        then the end of each; deleting a missing node announces nothing.
        """
        self.node("n")
        first = self.successResultOf(self.backend.subscribe("n", REMOTE))
        second = self.successResultOf(self.backend.subscribe("n", "user@c.example/r"))
        del self.events[:]
        self.successResultOf(self.backend.deleteNode("n", requestor=LOCAL))
        self.assertEqual(self.store.configs, {})
        self.assertEqual(
            self.events,
            [
                NodeDeleted(PUBSUB, "n", (first, second)),
                SubscriptionChanged(PUBSUB, "n", REMOTE, subscribed=False),
                SubscriptionChanged(PUBSUB, "n", "user@c.example/r", subscribed=False),
            ],
        )
        self.failureResultOf(self.backend.deleteNode("n"), error.NodeNotFound)
        self.assertEqual(len(self.events), 3)

    # -- subscriptions -------------------------------------------------------

    def test_subscribe(self) -> None:
        """
        A new subscription is announced once; subscribing again returns it
        unchanged and announces nothing; one over the cap is
        L{error.TooManySubscriptions}, not announced.
        """
        self.node("n")
        backend = PubSubBackend(self.store, PUBSUB, self.feed, maxSubscriptionsPerDomain=1)
        first = self.successResultOf(backend.subscribe("n", "u1@b.example"))
        self.assertEqual(self.successResultOf(backend.subscribe("n", "u1@b.example")), first)
        self.failureResultOf(backend.subscribe("n", "u2@b.example"), error.TooManySubscriptions)
        self.failureResultOf(backend.subscribe("missing", REMOTE), error.NodeNotFound)
        self.assertEqual(
            self.events, [SubscriptionChanged(PUBSUB, "n", "u1@b.example", subscribed=True)]
        )

    def test_unsubscribe(self) -> None:
        """
        Ending a subscription (with or without its id) is announced; a
        wrong id is L{error.InvalidSubscriptionId} and no subscription
        L{error.NotSubscribed}, neither announced.
        """
        self.node("n")
        mine = self.successResultOf(self.backend.subscribe("n", REMOTE))
        self.successResultOf(self.backend.subscribe("n", "user@b.example/r"))
        del self.events[:]
        self.failureResultOf(
            self.backend.unsubscribe("n", REMOTE, "wrong"), error.InvalidSubscriptionId
        )
        self.failureResultOf(self.backend.unsubscribe("n", "c.example", "x"), error.NotSubscribed)
        self.failureResultOf(self.backend.unsubscribe("n", "c.example"), error.NotSubscribed)
        self.assertEqual(self.events, [])
        self.successResultOf(self.backend.unsubscribe("n", REMOTE, mine.subscriptionIdentifier))
        self.successResultOf(self.backend.unsubscribe("n", "user@b.example/r"))
        self.assertEqual(self.store.subs["n"], {})
        self.assertEqual(
            self.events,
            [
                SubscriptionChanged(PUBSUB, "n", REMOTE, subscribed=False),
                SubscriptionChanged(PUBSUB, "n", "user@b.example/r", subscribed=False),
            ],
        )

    def test_subscriptionsOf(self) -> None:
        """
        L{PubSubBackend.subscriptionsOf} gives the subscriptions of an
        entity's bare JID and its full JIDs on every node, by node, and
        nobody else's.
        """
        self.node("n")
        self.node("m")
        self.successResultOf(self.backend.subscribe("n", "user@b.example/r"))
        self.successResultOf(self.backend.subscribe("m", "user@b.example"))
        self.successResultOf(self.backend.subscribe("m", "other@b.example"))
        found = self.successResultOf(self.backend.subscriptionsOf("User@B.example/x"))
        self.assertEqual(
            [(s.nodeIdentifier, s.subscriber) for s in found],
            [("m", "user@b.example"), ("n", "user@b.example/r")],
        )
        self.assertEqual(self.successResultOf(self.backend.subscriptionsOf("a..b")), [])


class NotifierTests(PubSubTestsMixin, SynchronousTestCase):
    """
    The XMPP notifier (L{xmppnetgraph.pubsub.PubSubService}) sends what the
    change feed announces for its service JID, with no query of its own.
    """

    def subscription(self, subscriber: str) -> Subscription:
        """
        @return: a subscription to node C{n} (the store knows nothing of it).
        """
        return Subscription("n", subscriber, f"id-{subscriber}", 0.0)

    def test_itemPublished(self) -> None:
        """
        An L{ItemPublished} on the feed sends each subscriber it names one
        notification with the payload; the store is not asked.
        """
        item = StoredItem("i1", PAYLOAD, LOCAL, 0.0)
        subscriptions = (self.subscription(REMOTE), self.subscription("user@c.example/r"))
        self.feed.emit(ItemPublished(PUBSUB, "n", item, subscriptions))
        messages = self.messages()
        self.assertEqual(sorted(m["to"] for m in messages), [REMOTE, "user@c.example/r"])
        for message in messages:
            (element,) = list(message.event.items.elements())
            self.assertEqual((element.uri, element["id"]), (NS_EVENT, "i1"))
            self.assertEqual(str(element.entry.title), "hello")
        self.assertEqual(self.store.calls, [])

    def test_sharedPayload(self) -> None:
        """
        All notifications of one publish carry the same serialized payload
        object: it is serialized once, not once per subscriber.
        """
        sent: list[domish.Element] = []
        self.pubsub.service.send = sent.append  # type: ignore[method-assign]
        item = StoredItem("i1", PAYLOAD, LOCAL, 0.0)
        subscriptions = tuple(self.subscription(f"u{n}@b.example") for n in range(3))
        self.feed.emit(ItemPublished(PUBSUB, "n", item, subscriptions))
        payloads = [message.event.items.item.children[0] for message in sent]
        self.assertEqual(len(payloads), 3)
        self.assertIsInstance(payloads[0], domish.SerializedXML)
        self.assertTrue(all(p is payloads[0] for p in payloads))

    def test_withoutPayload(self) -> None:
        """
        With C{deliverPayload} false the notification names the item only.
        """
        item = StoredItem("i1", PAYLOAD, LOCAL, 0.0)
        self.feed.emit(
            ItemPublished(PUBSUB, "n", item, (self.subscription(REMOTE),), deliverPayload=False)
        )
        (message,) = self.messages()
        (element,) = list(message.event.items.elements())
        self.assertEqual((element["id"], list(element.elements())), ("i1", []))

    def test_retractedAndDeleted(self) -> None:
        """
        L{ItemsRetracted} and L{NodeDeleted} on the feed send retract and
        delete notifications to the subscribers they name.
        """
        self.feed.emit(ItemsRetracted(PUBSUB, "n", ("a", "b"), (self.subscription(REMOTE),)))
        self.feed.emit(NodeDeleted(PUBSUB, "n", (self.subscription("user@c.example"),)))
        retract, delete = self.messages()
        self.assertEqual(retract["to"], REMOTE)
        self.assertEqual(
            [(e.name, e["id"]) for e in retract.event.items.elements()],
            [("retract", "a"), ("retract", "b")],
        )
        self.assertEqual((delete["to"], delete.event.delete["node"]), ("user@c.example", "n"))

    def test_otherService(self) -> None:
        """
        Events of another pub-sub service, and events without subscribers,
        send nothing.
        """
        item = StoredItem("i1", PAYLOAD, LOCAL, 0.0)
        subscriptions = (self.subscription(REMOTE),)
        self.feed.emit(ItemPublished("pubsub.other.example", "n", item, subscriptions))
        self.feed.emit(ItemsRetracted("pubsub.other.example", "n", ("i1",), subscriptions))
        self.feed.emit(NodeDeleted("pubsub.other.example", "n", subscriptions))
        self.feed.emit(ItemPublished(PUBSUB, "n", item, ()))
        self.assertEqual(self.messages(), [])

    def test_stopObserving(self) -> None:
        """
        After L{PubSubService.stopObserving} the service sends nothing.
        """
        self.pubsub.service.stopObserving()
        item = StoredItem("i1", PAYLOAD, LOCAL, 0.0)
        self.feed.emit(ItemPublished(PUBSUB, "n", item, (self.subscription(REMOTE),)))
        self.assertEqual(self.messages(), [])

    def test_localPublishNotifies(self) -> None:
        """
        A publish through the backend (as the node's own publisher does)
        reaches the XMPP subscribers through the feed.
        """
        self.makeNode("n")
        self.store.subscribe("n", REMOTE, 10)
        self.successResultOf(self.backend.publish("n", "i1", PAYLOAD))
        (message,) = self.messages()
        self.assertEqual((message["to"], message.event.items.item["id"]), (REMOTE, "i1"))


class FakeConsent:
    """
    A consent checker for the publisher: nobody consents, nothing is asked.
    """

    def consents(self, domain: str) -> bool:
        """
        @return: C{False}.
        """
        return False

    def state(self, domain: str) -> ConsentState:
        """
        @return: no answer yet.
        """
        return ConsentState(None, None, None)

    def stop(self) -> None:
        """
        Nothing to stop.
        """


class PublisherForTests(BackendMixin, SynchronousTestCase):
    """
    L{publisherFor} runs the XEP-0485 publisher on the backend.
    """

    def publisher(self) -> Any:
        """
        @return: a started publisher for C{a.example} on the backend, with an
            empty link table, publishing one second after a change.
        """
        self.clock = task.Clock()
        publisher = publisherFor(
            self.backend,
            self.feed,
            LinkTable(self.feed),
            FakeConsent(),  # type: ignore[arg-type]
            LOCAL,
            frozenset({LOCAL, PUBSUB}),
            self.clock,
            delay=1.0,
        )
        publisher.startService()
        self.addCleanup(publisher.stopService)
        return publisher

    def test_nodeAtStart(self) -> None:
        """
        Starting the publisher creates the C{serverinfo} node with one item
        and open access; its first item is published through the backend.
        """
        publisher = self.publisher()
        config = {**DEFAULT_NODE_CONFIG, MAX_ITEMS: 1}
        self.assertEqual(self.store.configs[DEFAULT_NODE], config)
        self.assertEqual(self.events, [NodeCreated(PUBSUB, DEFAULT_NODE, config)])
        self.clock.advance(1.0)
        (item,) = self.store.stored[DEFAULT_NODE]
        self.assertEqual((item.identifier, item.payload), (ITEM_ID, publisher.lastPayload))
        self.assertEqual(self.events[1:], [ItemPublished(PUBSUB, DEFAULT_NODE, item)])

    def test_startsFromStoredItem(self) -> None:
        """
        An item stored before (a restart) is where the publisher starts:
        the same item is not published again.
        """
        first = self.publisher()
        self.clock.advance(1.0)
        payload = first.lastPayload
        self.successResultOf(defer.maybeDeferred(first.stopService))
        del self.events[:]
        second = self.publisher()
        self.assertEqual(second.lastPayload, payload)
        self.clock.advance(1.0)
        self.assertEqual(self.events, [])


class TransactionTestsMixin:
    """
    The backend over the real store: a change is one transaction, and only
    a committed change is announced. Mixed with a test database (SQLite or
    PostgreSQL, from L{tests.test_store_pubsub}).
    """

    database: Database
    openTestDatabase: Callable[[], Database]
    fillUp: Callable[[], Any]
    makeRoom: Callable[[], Any]
    addCleanup: Callable[..., None]
    assertEqual: Callable[..., None]
    assertFailure: Callable[..., defer.Deferred[Any]]

    def setUp(self) -> None:
        self.database = self.openTestDatabase()
        self.addCleanup(lambda: self.database.close())
        self.feed = ChangeFeed()
        self.events: list[ChangeEvent] = []
        self.feed.observe(ChangeEvent, self.events.append)
        self.clock = task.Clock()
        self.backend = PubSubBackend(
            PubSubStore(self.database, self.clock), PUBSUB, self.feed, owners=OWNERS
        )

    @asyncTest
    async def test_publishNewNodeFull(self) -> None:
        """
        A publish to a new node on a full disk fails with
        L{error.StorageFull} and leaves neither the node nor the item, and
        announces nothing; with room again, the same publish creates the
        node, stores the item and announces both once.
        """
        await self.fillUp()
        big = f"<big xmlns='urn:x'>{'x' * 200_000}</big>"
        await self.assertFailure(
            self.backend.publish("n", "i", big, createConfig={MAX_ITEMS: 1}), error.StorageFull
        )
        await self.makeRoom()
        self.assertEqual(await self.backend.nodes(), [])
        self.assertEqual(self.events, [])
        item = await self.backend.publish("n", "i", big, createConfig={MAX_ITEMS: 1})
        self.assertEqual(await self.backend.items("n"), [item])
        config = {**DEFAULT_NODE_CONFIG, MAX_ITEMS: 1}
        self.assertEqual(
            self.events, [NodeCreated(PUBSUB, "n", config), ItemPublished(PUBSUB, "n", item)]
        )

    @asyncTest
    async def test_publishExistingNodeFull(self) -> None:
        """
        A publish to an existing node on a full disk leaves its items as
        they were and announces nothing.
        """
        await self.backend.createNode("n")
        await self.backend.subscribe("n", REMOTE)
        before = await self.backend.publish("n", "old", "<old/>")
        del self.events[:]
        await self.fillUp()
        await self.assertFailure(
            self.backend.publish("n", "new", f"<big>{'x' * 200_000}</big>"), error.StorageFull
        )
        await self.makeRoom()
        self.assertEqual(await self.backend.items("n"), [before])
        self.assertEqual(self.events, [])

    @asyncTest
    async def test_eventCarriesCommittedState(self) -> None:
        """
        The L{ItemPublished} of a publish to a new node carries the item
        and the subscriptions as committed, and what it says is what a
        later read finds.
        """
        await self.backend.createNode("n", {DELIVER_PAYLOADS: False})
        subscription = await self.backend.subscribe("n", REMOTE)
        del self.events[:]
        item = await self.backend.publish("n", "i", PAYLOAD)
        self.assertEqual(
            self.events, [ItemPublished(PUBSUB, "n", item, (subscription,), deliverPayload=False)]
        )
        self.assertEqual(await self.backend.items("n"), [item])
        self.assertEqual(await self.backend.subscriptions("n"), [subscription])


class SQLiteTransactionTests(SQLiteTestDatabase, TransactionTestsMixin, TestCase):
    """
    L{TransactionTestsMixin} on SQLite.
    """


class PostgreSQLTransactionTests(PostgreSQLTestDatabase, TransactionTestsMixin, TestCase):
    """
    L{TransactionTestsMixin} on PostgreSQL.
    """
