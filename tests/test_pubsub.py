# -*- test-case-name: tests.test_pubsub -*-
"""
Tests for L{xmppnetgraph.pubsub}: the XEP-0060 service over an
L{IPubSubStore}, driven with real stanzas through a L{LocalComponent} on a
Wokkel router; every stanza that leaves is serialized and re-parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.words.protocols.jabber import error as jabbererror
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import data_form, disco, pubsub
from wokkel.component import Router
from wokkel.disco import DiscoHandler
from wokkel.generic import XmlPipe, parseXml
from wokkel.iwokkel import IPubSubResource
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.nodes import RawRequest, RunningNode, routesTo, waitFor
from xmppnetgraph import error
from xmppnetgraph.component import LocalComponent
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.interfaces import IPubSubBackend, IPubSubStore
from xmppnetgraph.model import Publication, Retraction, StoredItem, Subscription
from xmppnetgraph.pubsub import (
    ACCESS_MODEL,
    DEFAULT_NODE_CONFIG,
    DELIVER_PAYLOADS,
    FEATURES,
    MAX_ITEMS,
    PERSIST_ITEMS,
    PubSubBackend,
    PubSubResource,
    pubSubHandlers,
)

LOCAL = "a.example"
PUBSUB = "pubsub.a.example"
ADMIN = "admin@c.example"
REMOTE = "b.example"
NS_PUBSUB = pubsub.NS_PUBSUB
NS_OWNER = pubsub.NS_PUBSUB_OWNER
NS_EVENT = pubsub.NS_PUBSUB_EVENT
NS_ERRORS = pubsub.NS_PUBSUB_ERRORS
NS_X = "urn:example:payload"
PAYLOAD = f"<entry xmlns='{NS_X}'><title>hello</title></entry>"


@implementer(IPubSubStore)
class MemoryStore:
    """
    An in-memory L{IPubSubStore} with the store's semantics, synchronous.

    @ivar failures: method name -> exception its next call fails with.
    """

    def __init__(self) -> None:
        self.configs: dict[str, dict[str, object]] = {}
        self.stored: dict[str, list[StoredItem]] = {}
        self.subs: dict[str, dict[str, Subscription]] = {}
        self.failures: dict[str, Exception] = {}
        self.calls: list[str] = []
        self.now = 1_000_000_000.0
        self.counter = 0

    def _check(self, method: str, nodeIdentifier: str | None = None) -> None:
        self.calls.append(method)
        if method in self.failures:
            raise self.failures.pop(method)
        if nodeIdentifier is not None and nodeIdentifier not in self.configs:
            raise error.NodeNotFound(nodeIdentifier)

    def _call(self, method: str, nodeIdentifier: str | None, f: Any) -> defer.Deferred[Any]:
        try:
            self._check(method, nodeIdentifier)
            return defer.succeed(f())
        except Exception as e:
            return defer.fail(e)

    def createNode(self, nodeIdentifier: str, config: dict[str, object]) -> defer.Deferred[None]:
        def f() -> None:
            if nodeIdentifier in self.configs:
                raise error.NodeExists(nodeIdentifier)
            self.configs[nodeIdentifier] = dict(config)
            self.stored[nodeIdentifier] = []
            self.subs[nodeIdentifier] = {}

        return self._call("createNode", None, f)

    def nodeConfig(self, nodeIdentifier: str) -> defer.Deferred[dict[str, object]]:
        return self._call("nodeConfig", nodeIdentifier, lambda: dict(self.configs[nodeIdentifier]))

    def setNodeConfig(self, nodeIdentifier: str, config: dict[str, object]) -> defer.Deferred[None]:
        return self._call(
            "setNodeConfig",
            nodeIdentifier,
            lambda: self.configs.__setitem__(nodeIdentifier, dict(config)),
        )

    def deleteNode(self, nodeIdentifier: str) -> defer.Deferred[list[Subscription]]:
        def f() -> list[Subscription]:
            ended = list(self.subs[nodeIdentifier].values())
            del self.configs[nodeIdentifier], self.stored[nodeIdentifier], self.subs[nodeIdentifier]
            return ended

        return self._call("deleteNode", nodeIdentifier, f)

    def nodes(self) -> defer.Deferred[list[str]]:
        return self._call("nodes", None, lambda: list(self.configs))

    def _store(
        self, nodeIdentifier: str, itemIdentifier: str, payload: str, publisher: str, maxItems: int
    ) -> StoredItem:
        self.now += 1
        item = StoredItem(itemIdentifier, payload, publisher, self.now)
        kept = [i for i in self.stored[nodeIdentifier] if i.identifier != itemIdentifier]
        kept.insert(0, item)
        self.stored[nodeIdentifier] = kept[:maxItems]
        return item

    def storeItem(
        self, nodeIdentifier: str, itemIdentifier: str, payload: str, publisher: str, maxItems: int
    ) -> defer.Deferred[None]:
        def f() -> None:
            self._store(nodeIdentifier, itemIdentifier, payload, publisher, maxItems)

        return self._call("storeItem", nodeIdentifier, f)

    def publishItem(
        self,
        nodeIdentifier: str,
        itemIdentifier: str,
        payload: str,
        publisher: str,
        maxItems: Callable[[Mapping[str, object]], int],
        createConfig: dict[str, object] | None = None,
    ) -> defer.Deferred[Publication]:
        created = createConfig is not None and nodeIdentifier not in self.configs

        def f() -> Publication:
            if created:
                assert createConfig is not None
                self.configs[nodeIdentifier] = dict(createConfig)
                self.stored[nodeIdentifier] = []
                self.subs[nodeIdentifier] = {}
            config = dict(self.configs[nodeIdentifier])
            item = self._store(nodeIdentifier, itemIdentifier, payload, publisher, maxItems(config))
            return Publication(item, config, created, tuple(self.subs[nodeIdentifier].values()))

        return self._call("publishItem", None if created else nodeIdentifier, f)

    def items(
        self,
        nodeIdentifier: str,
        itemIdentifiers: Sequence[str] | None = None,
        maxItems: int | None = None,
    ) -> defer.Deferred[list[StoredItem]]:
        def f() -> list[StoredItem]:
            found = self.stored[nodeIdentifier]
            if itemIdentifiers is not None:
                found = [i for i in found if i.identifier in itemIdentifiers]
            return found[:maxItems] if maxItems is not None else list(found)

        return self._call("items", nodeIdentifier, f)

    def deleteItems(
        self, nodeIdentifier: str, itemIdentifiers: Sequence[str]
    ) -> defer.Deferred[list[str]]:
        def f() -> list[str]:
            gone = [
                i.identifier for i in self.stored[nodeIdentifier] if i.identifier in itemIdentifiers
            ]
            self.stored[nodeIdentifier] = [
                i for i in self.stored[nodeIdentifier] if i.identifier not in gone
            ]
            return gone

        return self._call("deleteItems", nodeIdentifier, f)

    def retractItems(
        self, nodeIdentifier: str, itemIdentifiers: Sequence[str]
    ) -> defer.Deferred[Retraction]:
        def f() -> Retraction:
            wanted = list(dict.fromkeys(itemIdentifiers))
            present = {i.identifier for i in self.stored[nodeIdentifier]}
            gone = tuple(i for i in wanted if i in present)
            self.stored[nodeIdentifier] = [
                i for i in self.stored[nodeIdentifier] if i.identifier not in gone
            ]
            return Retraction(gone, tuple(self.subs[nodeIdentifier].values()))

        return self._call("retractItems", nodeIdentifier, f)

    def subscribe(
        self,
        nodeIdentifier: str,
        subscriber: str,
        maxPerDomain: int,
        subscriptionIdentifier: str | None = None,
    ) -> defer.Deferred[Subscription]:
        def f() -> Subscription:
            subs = self.subs[nodeIdentifier]
            if subscriber in subs:
                return subs[subscriber]
            domain = JID(subscriber).host
            if sum(1 for s in subs if JID(s).host == domain) >= maxPerDomain:
                raise error.TooManySubscriptions(domain)
            self.counter += 1
            subs[subscriber] = Subscription(
                nodeIdentifier,
                subscriber,
                subscriptionIdentifier or f"sub{self.counter}",
                self.now,
            )
            return subs[subscriber]

        return self._call("subscribe", nodeIdentifier, f)

    def unsubscribe(self, nodeIdentifier: str, subscriber: str) -> defer.Deferred[None]:
        def f() -> None:
            if self.subs[nodeIdentifier].pop(subscriber, None) is None:
                raise error.NotSubscribed(subscriber)

        return self._call("unsubscribe", nodeIdentifier, f)

    def subscriptions(self, nodeIdentifier: str) -> defer.Deferred[list[Subscription]]:
        return self._call(
            "subscriptions", nodeIdentifier, lambda: list(self.subs[nodeIdentifier].values())
        )


def errorOf(response: domish.Element) -> tuple[str, str, str | None, str | None]:
    """
    @return: (condition, type, pubsub#errors condition, its feature) of an
        error response.
    """
    assert response["type"] == "error", response.toXml()
    e = jabbererror.exceptionFromStanza(response)
    app = e.appCondition
    pubsubCondition = app.name if app is not None and app.uri == NS_ERRORS else None
    feature = app.getAttribute("feature") if app is not None else None
    return e.condition, response.error["type"], pubsubCondition, feature


class PubSubTestsMixin:
    """
    A pub-sub host C{pubsub.a.example} (owners: C{a.example} and
    C{admin@c.example}) on a router whose default route (the remote side)
    collects what leaves, serialized and re-parsed.
    """

    sendLastPublished = True

    def setUp(self) -> None:
        """
        Start the component with the pub-sub handlers and a disco handler.
        """
        self.clock = task.Clock()
        self.store = MemoryStore()
        self.feed = ChangeFeed()
        self.backend = PubSubBackend(
            self.store, PUBSUB, self.feed, owners=[LOCAL, ADMIN + "/ignored"]
        )
        self.router = Router()
        self.component = LocalComponent(self.router, [PUBSUB], self.clock)
        DiscoHandler().setHandlerParent(self.component)
        self.pubsub = pubSubHandlers(
            self.backend, self.feed, self.clock, sendLastPublished=self.sendLastPublished
        )
        self.resource = self.pubsub.resource
        self.pubsub.setHandlerParent(self.component)
        self.component.startService()
        self.addCleanup(self.component.stopService)  # type: ignore[attr-defined]
        pipe = XmlPipe()
        self.outgoing: list[domish.Element] = []
        pipe.source.addObserver(
            "/*", lambda e: self.outgoing.append(parseXml(e.toXml().encode("utf-8")))
        )
        self.remote = pipe.source
        self.router.addRoute(None, pipe.sink)
        self.serial = 0

    def iq(self, kind: str, body: str, sender: str = REMOTE, to: str = PUBSUB) -> domish.Element:
        """
        Send an IQ with C{body} from C{sender}, as received over s2s.

        @return: its response (serialized and re-parsed).
        """
        self.serial += 1
        ident = f"q{self.serial}"
        xml = (
            f"<iq xmlns='jabber:server' type='{kind}' id='{ident}' from='{sender}' to='{to}'>"
            f"{body}</iq>"
        )
        before = len(self.outgoing)
        self.remote.send(parseXml(xml.encode("utf-8")))
        responses = [
            e for e in self.outgoing[before:] if e.name == "iq" and e.getAttribute("id") == ident
        ]
        assert len(responses) == 1, [e.toXml() for e in self.outgoing[before:]]
        response = responses[0]
        assert response["to"] == sender and response["from"] == to, response.toXml()
        return response

    def messages(self, since: int = 0) -> list[domish.Element]:
        """
        @return: the messages that left since index C{since}.
        """
        return [e for e in self.outgoing[since:] if e.name == "message"]

    def publishIQ(
        self, node: str = "n", item: str = f"<item id='i1'>{PAYLOAD}</item>", sender: str = LOCAL
    ) -> domish.Element:
        """
        @return: the response to a publish request.
        """
        return self.iq(
            "set",
            f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'>{item}</publish></pubsub>",
            sender,
        )

    def subscribeIQ(
        self, node: str = "n", subscriber: str = REMOTE, sender: str | None = None
    ) -> domish.Element:
        """
        @return: the response to a subscribe request.
        """
        return self.iq(
            "set",
            f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{node}' jid='{subscriber}'/></pubsub>",
            sender or subscriber,
        )

    def itemsIQ(
        self, node: str = "n", attributes: str = "", children: str = "", sender: str = REMOTE
    ) -> domish.Element:
        """
        @return: the response to an items request.
        """
        return self.iq(
            "get",
            f"<pubsub xmlns='{NS_PUBSUB}'><items node='{node}' {attributes}>{children}</items>"
            "</pubsub>",
            sender,
        )

    def makeNode(self, node: str = "n", **config: object) -> None:
        """
        Create C{node} in the store directly.
        """
        self.store.createNode(node, {**DEFAULT_NODE_CONFIG, **config})

    def storeItem(self, node: str, ident: str, payload: str = PAYLOAD) -> None:
        """
        Store an item directly.
        """
        self.store.storeItem(node, ident, payload, LOCAL, 100)

    def assertError(
        self,
        response: domish.Element,
        condition: str,
        pubsubCondition: str | None = None,
        kind: str | None = None,
        feature: str | None = None,
    ) -> None:
        """
        Assert that C{response} is the given error.
        """
        got = errorOf(response)
        self.assertEqual(got[0], condition)  # type: ignore[attr-defined]
        self.assertEqual(got[2], pubsubCondition)  # type: ignore[attr-defined]
        if kind is not None:
            self.assertEqual(got[1], kind)  # type: ignore[attr-defined]
        if feature is not None:
            self.assertEqual(got[3], feature)  # type: ignore[attr-defined]


class InterfaceAndDiscoTests(PubSubTestsMixin, SynchronousTestCase):
    """
    Interfaces, features and service discovery.
    """

    def test_interfaces(self) -> None:
        """
        The resource provides Wokkel's L{IPubSubResource}, the service and
        disco additions L{disco.IDisco}, the backend L{IPubSubBackend}, and
        the fake store L{IPubSubStore}.
        """
        self.assertTrue(verifyObject(IPubSubResource, self.resource))
        self.assertTrue(verifyObject(IPubSubBackend, self.backend))
        self.assertTrue(verifyObject(disco.IDisco, self.pubsub.service))
        self.assertTrue(verifyObject(disco.IDisco, self.pubsub.disco))
        self.assertTrue(verifyObject(IPubSubStore, self.store))
        self.assertIs(self.pubsub.service.resource, self.resource)
        self.assertEqual(self.pubsub.handlers, [self.pubsub.service, self.pubsub.disco])

    def test_featuresNotShared(self) -> None:
        """
        Each resource has its own immutable feature tuple; creating
        resources changes neither Wokkel's class-level list nor another
        resource's features.
        """
        before = list(pubsub.PubSubResource.features)
        one = PubSubResource(self.backend)
        two = PubSubResource(self.backend, sendLastPublished=False)
        self.assertEqual(pubsub.PubSubResource.features, before)
        self.assertIsInstance(one.features, tuple)
        self.assertIn("last-published", one.features)
        self.assertNotIn("last-published", two.features)
        self.assertEqual(len(set(one.features)), len(one.features))

    def test_hostInfo(self) -> None:
        """
        disco#info on the host: the identity C{pubsub/service} once, and
        exactly the features we support, each once.
        """
        response = self.iq("get", f"<query xmlns='{disco.NS_DISCO_INFO}'/>")
        info = disco.DiscoInfo.fromElement(response.query)
        self.assertEqual(list(info.identities), [("pubsub", "service")])
        features = [str(e["var"]) for e in response.query.elements(disco.NS_DISCO_INFO, "feature")]
        expected = {disco.NS_DISCO_INFO, disco.NS_DISCO_ITEMS} | {
            f"{NS_PUBSUB}#{f}" for f in FEATURES + ("last-published",)
        }
        self.assertEqual(sorted(features), sorted(expected))

    def test_nodeInfo(self) -> None:
        """
        disco#info on an existing node says C{pubsub/leaf}, with the
        node's meta-data.
        """
        self.makeNode("serverinfo", **{MAX_ITEMS: 1})
        response = self.iq("get", f"<query xmlns='{disco.NS_DISCO_INFO}' node='serverinfo'/>")
        info = disco.DiscoInfo.fromElement(response.query)
        self.assertEqual(list(info.identities), [("pubsub", "leaf")])
        form = info.extensions[pubsub.NS_PUBSUB_META_DATA]
        self.assertEqual(
            (form["pubsub#node_type"], form[ACCESS_MODEL], form[MAX_ITEMS]), ("leaf", "open", "1")
        )

    def test_missingNodeInfo(self) -> None:
        """
        disco#info on a node that does not exist is C{item-not-found}.
        """
        response = self.iq("get", f"<query xmlns='{disco.NS_DISCO_INFO}' node='nope'/>")
        self.assertError(response, "item-not-found")

    def test_nodeInfoStorageError(self) -> None:
        """
        A storage failure during disco#info on a node is an
        C{internal-server-error}, not C{item-not-found}, and is logged.
        """
        self.makeNode("n")
        self.store.failures["nodeConfig"] = error.StorageError("disk on fire")
        response = self.iq("get", f"<query xmlns='{disco.NS_DISCO_INFO}' node='n'/>")
        self.assertError(response, "internal-server-error")
        self.assertNotIn("disk on fire", response.toXml())
        self.assertEqual(len(self.flushLoggedErrors(error.StorageError)), 1)

    def test_hostItems(self) -> None:
        """
        disco#items on the host lists the nodes; on a node, nothing.
        """
        self.makeNode("serverinfo")
        self.makeNode("other")
        response = self.iq("get", f"<query xmlns='{disco.NS_DISCO_ITEMS}'/>")
        items = disco.DiscoItems.fromElement(response.query)
        self.assertEqual(
            sorted((i.entity.full(), i.nodeIdentifier) for i in items),
            [(PUBSUB, "other"), (PUBSUB, "serverinfo")],
        )
        response = self.iq("get", f"<query xmlns='{disco.NS_DISCO_ITEMS}' node='serverinfo'/>")
        self.assertEqual(list(disco.DiscoItems.fromElement(response.query)), [])


class PublishTests(PubSubTestsMixin, SynchronousTestCase):
    """
    Publishing, access control and notifications.
    """

    def test_publishByDomain(self) -> None:
        """
        The node's own domain publishes: the item is stored as serialized XML
        and the result names the item.
        """
        self.makeNode("n")
        response = self.publishIQ()
        self.assertEqual(response["type"], "result")
        self.assertEqual(response.pubsub.publish["node"], "n")
        self.assertEqual(response.pubsub.publish.item["id"], "i1")
        (stored,) = self.store.stored["n"]
        self.assertEqual((stored.identifier, stored.publisher), ("i1", LOCAL))
        payload = parseXml(stored.payload.encode("utf-8"))
        self.assertEqual((payload.uri, payload.name, str(payload.title)), (NS_X, "entry", "hello"))

    def test_publishByAdminGeneratesId(self) -> None:
        """
        A configured admin publishes from a full JID; without an item id the
        service makes a unique one and returns it.
        """
        self.makeNode("n")
        first = self.publishIQ(item=f"<item>{PAYLOAD}</item>", sender=ADMIN + "/laptop")
        second = self.publishIQ(item=f"<item>{PAYLOAD}</item>", sender=ADMIN + "/laptop")
        ids = [r.pubsub.publish.item["id"] for r in (first, second)]
        self.assertNotEqual(ids[0], ids[1])
        self.assertEqual(sorted(i.identifier for i in self.store.stored["n"]), sorted(ids))
        self.assertEqual({i.publisher for i in self.store.stored["n"]}, {ADMIN})

    def test_publishForbidden(self) -> None:
        """
        Remote JIDs, a user of our own domain and the pub-sub host's users
        are not owners: C{forbidden}, even for a missing node, and nothing
        is stored.
        """
        self.makeNode("n")
        for sender in (
            REMOTE,
            "user@b.example/r",
            "user@a.example",
            "user@a.example/r",
            "c.example",
        ):
            self.assertError(self.publishIQ(sender=sender), "forbidden", kind="auth")
            self.assertError(self.publishIQ(node="missing", sender=sender), "forbidden")
        self.assertEqual(self.store.stored["n"], [])
        self.assertNotIn("publishItem", self.store.calls)
        self.assertNotIn("storeItem", self.store.calls)

    def test_publishMissingNode(self) -> None:
        """
        Publishing to a node that does not exist is C{item-not-found}
        (no auto-create).
        """
        self.assertError(self.publishIQ(node="missing"), "item-not-found")
        self.assertEqual(self.store.configs, {})

    def test_publishBadItems(self) -> None:
        """
        A publish request must carry exactly one item with exactly one
        payload element, within the size limit.
        """
        self.makeNode("n")
        self.resource.maxPayloadBytes = 4096
        fits = f"<item id='ok'><big xmlns='urn:x'>{'x' * 4000}</big></item>"
        self.assertEqual(self.publishIQ(item=fits)["type"], "result")
        self.store.stored["n"].clear()
        cases = [
            ("", "bad-request", "item-required"),
            (
                f"<item id='1'>{PAYLOAD}</item><item id='2'>{PAYLOAD}</item>",
                "bad-request",
                "invalid-payload",
            ),
            (f"<item id='1'>{PAYLOAD}{PAYLOAD}</item>", "bad-request", "invalid-payload"),
            ("<item id='1'>just text</item>", "bad-request", "invalid-payload"),
            (f"<item id='1'>text {PAYLOAD}</item>", "bad-request", "invalid-payload"),
            ("<item id='1'/>", "bad-request", "payload-required"),
            ("<item id='1'>  </item>", "bad-request", "payload-required"),
            (
                f"<item id='1'><big xmlns='urn:x'>{'x' * 4096}</big></item>",
                "not-acceptable",
                "payload-too-big",
            ),
        ]
        for item, condition, pubsubCondition in cases:
            self.assertError(self.publishIQ(item=item), condition, pubsubCondition)
        self.assertEqual(self.store.stored["n"], [])

    def test_notifications(self) -> None:
        """
        After a publish each subscriber gets one headline message from the
        pub-sub host with its own id; the serialized event has the item in
        the C{pubsub#event} namespace (no prefix) and the payload intact.
        """
        self.makeNode("n")
        self.store.subscribe("n", REMOTE, 10)
        self.store.subscribe("n", "user@c.example/res", 10)
        before = len(self.outgoing)
        self.publishIQ()
        messages = self.messages(before)
        self.assertEqual(sorted(m["to"] for m in messages), sorted([REMOTE, "user@c.example/res"]))
        self.assertEqual(len({m["id"] for m in messages}), 2)
        for message in messages:
            self.assertEqual((message["from"], message["type"]), (PUBSUB, "headline"))
            xml = message.toXml()
            self.assertNotIn("xn0", xml)
            self.assertNotIn(":item", xml)
            event = message.event
            self.assertEqual((event.uri, event.items["node"]), (NS_EVENT, "n"))
            (item,) = list(event.items.elements())
            self.assertEqual((item.uri, item.name, item["id"]), (NS_EVENT, "item", "i1"))
            (payload,) = list(item.elements())
            self.assertEqual(
                (payload.uri, payload.name, str(payload.title)), (NS_X, "entry", "hello")
            )
            self.assertEqual(payload.title.uri, NS_X)

    def test_notificationWithoutPayload(self) -> None:
        """
        With C{deliver_payloads} off the notification names the item only.
        """
        self.makeNode("n", **{DELIVER_PAYLOADS: False})
        self.store.subscribe("n", REMOTE, 10)
        before = len(self.outgoing)
        self.publishIQ()
        (message,) = self.messages(before)
        (item,) = list(message.event.items.elements())
        self.assertEqual((item["id"], list(item.elements())), ("i1", []))

    def test_noNotificationOnFailure(self) -> None:
        """
        If storing fails nobody is notified and the publisher gets the
        mapped error.
        """
        self.makeNode("n")
        self.store.subscribe("n", REMOTE, 10)
        self.store.failures["publishItem"] = error.StorageFull("quota")
        before = len(self.outgoing)
        self.assertError(self.publishIQ(), "resource-constraint", kind="wait")
        self.assertEqual(self.messages(before), [])

    def test_retract(self) -> None:
        """
        An owner retracts an item; subscribers are told.
        """
        self.makeNode("n")
        self.storeItem("n", "i1")
        self.storeItem("n", "i2")
        self.store.subscribe("n", REMOTE, 10)
        before = len(self.outgoing)
        response = self.iq(
            "set",
            f"<pubsub xmlns='{NS_PUBSUB}'><retract node='n'><item id='i1'/></retract></pubsub>",
            LOCAL,
        )
        self.assertEqual(response["type"], "result")
        self.assertEqual([i.identifier for i in self.store.stored["n"]], ["i2"])
        (message,) = self.messages(before)
        self.assertEqual(message["to"], REMOTE)
        self.assertEqual(
            [(e.name, e["id"]) for e in message.event.items.elements()], [("retract", "i1")]
        )

    def test_retractErrors(self) -> None:
        """
        Retracting: remote JIDs are C{forbidden}; a missing item or node is
        C{item-not-found}; an item without id is C{bad-request}.
        """
        self.makeNode("n")
        self.storeItem("n", "i1")
        retract = f"<pubsub xmlns='{NS_PUBSUB}'><retract node='%s'>%s</retract></pubsub>"
        self.assertError(self.iq("set", retract % ("n", "<item id='i1'/>"), REMOTE), "forbidden")
        self.assertEqual(len(self.store.stored["n"]), 1)
        self.assertError(
            self.iq("set", retract % ("n", "<item id='nope'/>"), LOCAL), "item-not-found"
        )
        self.assertError(
            self.iq("set", retract % ("missing", "<item id='i1'/>"), LOCAL), "item-not-found"
        )
        self.assertError(self.iq("set", retract % ("n", "<item/>"), LOCAL), "bad-request")
        self.assertError(self.iq("set", retract % ("n", ""), LOCAL), "bad-request", "item-required")

    def test_publishLocal(self) -> None:
        """
        L{PubSubBackend.publish} with a C{createConfig} creates a missing
        node with those options, stores the item and notifies;
        L{PubSubBackend.currentItems} returns it.
        """
        payload = parseXml(PAYLOAD.encode("utf-8"))
        self.successResultOf(
            self.backend.publish(
                "serverinfo", "current", payload.toXml(), createConfig={MAX_ITEMS: 1}
            )
        )
        self.assertEqual(self.store.configs["serverinfo"], {**DEFAULT_NODE_CONFIG, MAX_ITEMS: 1})
        self.store.subscribe("serverinfo", REMOTE, 10)
        payload2 = parseXml(f"<entry xmlns='{NS_X}'><title>again</title></entry>".encode())
        before = len(self.outgoing)
        self.successResultOf(
            self.backend.publish("serverinfo", "current", payload2.toXml(), createConfig={})
        )
        (message,) = self.messages(before)
        self.assertEqual(str(message.event.items.item.entry.title), "again")
        items = self.successResultOf(self.backend.currentItems("serverinfo"))
        self.assertEqual(
            [(i.identifier, i.payload, i.publisher) for i in items],
            [("current", payload2.toXml(), PUBSUB)],
        )
        missing = self.successResultOf(self.backend.currentItems("nope"))
        self.assertEqual(missing, [])

    def test_publishLocalExistingNode(self) -> None:
        """
        If the node exists already (made by someone else since the
        publisher last looked), the item is still stored, under the node's
        own configuration: C{createConfig} does not change it.
        """
        self.makeNode("serverinfo", **{MAX_ITEMS: 3})
        for ident in ("a", "b"):
            self.storeItem("serverinfo", ident)
        self.successResultOf(
            self.backend.publish("serverinfo", "current", PAYLOAD, createConfig={MAX_ITEMS: 1})
        )
        self.assertEqual(
            [i.identifier for i in self.store.stored["serverinfo"]], ["current", "b", "a"]
        )
        self.assertEqual(self.store.configs["serverinfo"][MAX_ITEMS], 3)

    def test_publishLocalFailure(self) -> None:
        """
        L{PubSubBackend.publish} fails with the store's domain error,
        unmapped, and nobody is notified.
        """
        self.makeNode("n")
        self.store.subscribe("n", REMOTE, 10)
        self.store.failures["publishItem"] = error.StorageError("broken")
        before = len(self.outgoing)
        self.failureResultOf(self.backend.publish("n", "current", PAYLOAD), error.StorageError)
        self.assertEqual(self.messages(before), [])


class SubscriptionTests(PubSubTestsMixin, SynchronousTestCase):
    """
    Subscribing, unsubscribing, the per-domain cap and the last item.
    """

    def test_subscribeBareAndFull(self) -> None:
        """
        A server subscribes its bare domain JID; a user subscribes its full
        JID; each result says C{subscribed} with a subscription id.
        """
        self.makeNode("n")
        for subscriber in (REMOTE, "user@b.example/res"):
            response = self.subscribeIQ(subscriber=subscriber)
            subscription = response.pubsub.subscription
            self.assertEqual(
                (subscription["node"], subscription["jid"], subscription["subscription"]),
                ("n", subscriber, "subscribed"),
            )
            self.assertTrue(subscription["subid"])
        self.assertEqual(sorted(self.store.subs["n"]), sorted([REMOTE, "user@b.example/res"]))

    def test_subscribeOtherJID(self) -> None:
        """
        Subscribing a JID whose bare JID is not the requestor's is
        C{bad-request} with C{invalid-jid} (XEP-0060 6.1.3.1).
        """
        self.makeNode("n")
        self.assertError(
            self.subscribeIQ(subscriber="c.example", sender=REMOTE), "bad-request", "invalid-jid"
        )
        self.assertError(
            self.subscribeIQ(subscriber="victim@b.example", sender="user@b.example/r"),
            "bad-request",
            "invalid-jid",
        )
        self.assertEqual(self.store.subs["n"], {})

    def test_subscribeMissingNode(self) -> None:
        """
        Subscribing to a node that does not exist is C{item-not-found}.
        """
        self.assertError(self.subscribeIQ(node="missing"), "item-not-found")

    def test_subscribeMalformedJID(self) -> None:
        """
        A malformed subscriber JID is C{jid-malformed}, not an internal
        error.
        """
        self.makeNode("n")
        for bad in ("a..b", "user@", "x@y@z", "a b.example"):
            self.assertError(self.subscribeIQ(subscriber=bad, sender=REMOTE), "jid-malformed")

    def test_subscriptionCap(self) -> None:
        """
        One remote domain holds at most C{maxSubscriptionsPerDomain}
        subscriptions on a node: the next is C{policy-violation} with
        C{too-many-subscriptions} (type C{wait}); re-subscribing and other
        domains are unaffected.
        """
        self.makeNode("n")
        for i in range(10):
            self.assertEqual(self.subscribeIQ(subscriber=f"u{i}@b.example")["type"], "result")
        response = self.subscribeIQ(subscriber="u10@b.example")
        self.assertError(response, "policy-violation", "too-many-subscriptions", kind="wait")
        self.assertEqual(self.subscribeIQ(subscriber="u3@b.example")["type"], "result")
        self.assertEqual(self.subscribeIQ(subscriber="c.example")["type"], "result")
        self.assertEqual(len(self.store.subs["n"]), 11)

    def test_lastItemAfterResult(self) -> None:
        """
        A new subscriber gets the node's newest item, after the subscribe
        result, stamped with when it was published.
        """
        self.makeNode("n")
        self.storeItem("n", "old")
        self.storeItem("n", "new", f"<entry xmlns='{NS_X}'><title>new</title></entry>")
        before = len(self.outgoing)
        self.subscribeIQ()
        self.assertEqual(self.messages(before), [])
        self.clock.advance(0)
        (message,) = self.messages(before)
        self.assertEqual([e.name for e in self.outgoing[before:]], ["iq", "message"])
        self.assertEqual((message["to"], message.event.items["node"]), (REMOTE, "n"))
        (item,) = list(message.event.items.elements())
        self.assertEqual((item.uri, item["id"], str(item.entry.title)), (NS_EVENT, "new", "new"))
        delay = message.delay
        self.assertEqual((delay.uri, delay["stamp"]), ("urn:xmpp:delay", "2001-09-09T01:46:42Z"))

    def test_noLastItemWhenEmpty(self) -> None:
        """
        Subscribing to an empty node sends nothing but the result.
        """
        self.makeNode("n")
        before = len(self.outgoing)
        self.subscribeIQ()
        self.clock.advance(0)
        self.assertEqual(self.messages(before), [])

    def test_lastItemFailureLogged(self) -> None:
        """
        If fetching the last item fails the subscription stands and the
        failure is logged.
        """
        self.makeNode("n")
        self.storeItem("n", "i1")
        self.assertEqual(self.subscribeIQ()["type"], "result")
        self.store.failures["items"] = error.StorageError("gone")
        self.clock.advance(0)
        self.assertEqual(len(self.flushLoggedErrors(error.StorageError)), 1)
        self.assertIn(REMOTE, self.store.subs["n"])

    def test_unsubscribe(self) -> None:
        """
        A subscriber unsubscribes (with or without its subscription id).
        """
        self.makeNode("n")
        subid = self.subscribeIQ().pubsub.subscription["subid"]
        self.subscribeIQ(subscriber="user@b.example/r")
        body = f"<pubsub xmlns='{NS_PUBSUB}'><unsubscribe node='n' jid='%s' %s/></pubsub>"
        self.assertEqual(
            self.iq("set", body % (REMOTE, f"subid='{subid}'"), REMOTE)["type"], "result"
        )
        self.assertEqual(
            self.iq("set", body % ("user@b.example/r", ""), "user@b.example/r")["type"], "result"
        )
        self.assertEqual(self.store.subs["n"], {})

    def test_unsubscribeErrors(self) -> None:
        """
        Unsubscribing: another entity's subscription is C{forbidden}; no
        subscription is C{unexpected-request} with C{not-subscribed}; a
        wrong subscription id is C{not-acceptable} with C{invalid-subid}; a
        missing node is C{item-not-found}.
        """
        self.makeNode("n")
        self.subscribeIQ()
        body = f"<pubsub xmlns='{NS_PUBSUB}'><unsubscribe node='%s' jid='%s' %s/></pubsub>"
        self.assertError(self.iq("set", body % ("n", REMOTE, ""), "c.example"), "forbidden")
        self.assertError(
            self.iq("set", body % ("n", "c.example", ""), "c.example"),
            "unexpected-request",
            "not-subscribed",
            kind="cancel",
        )
        self.assertError(
            self.iq("set", body % ("n", REMOTE, "subid='wrong'"), REMOTE),
            "not-acceptable",
            "invalid-subid",
        )
        self.assertError(self.iq("set", body % ("missing", REMOTE, ""), REMOTE), "item-not-found")
        self.assertIn(REMOTE, self.store.subs["n"])

    def test_subscriptions(self) -> None:
        """
        The requestor's subscriptions on every node, and only its own.
        """
        self.makeNode("n")
        self.makeNode("m")
        self.subscribeIQ(node="n", subscriber="user@b.example/r")
        self.subscribeIQ(node="m", subscriber="user@b.example")
        self.subscribeIQ(node="m", subscriber="other@b.example")
        response = self.iq(
            "get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions/></pubsub>", "user@b.example/x"
        )
        got = sorted(
            (s["node"], s["jid"], s["subscription"])
            for s in response.pubsub.subscriptions.elements(NS_PUBSUB, "subscription")
        )
        self.assertEqual(
            got, [("m", "user@b.example", "subscribed"), ("n", "user@b.example/r", "subscribed")]
        )


class NoLastItemTests(PubSubTestsMixin, SynchronousTestCase):
    """
    A service configured not to send the last item.
    """

    sendLastPublished = False

    def test_noLastItem(self) -> None:
        """
        Nothing follows the subscribe result, and C{last-published} is not
        advertised.
        """
        self.makeNode("n")
        self.storeItem("n", "i1")
        before = len(self.outgoing)
        self.subscribeIQ()
        self.clock.advance(0)
        self.assertEqual(self.messages(before), [])
        response = self.iq("get", f"<query xmlns='{disco.NS_DISCO_INFO}'/>")
        self.assertNotIn(f"{NS_PUBSUB}#last-published", response.query.toXml())


class ItemsTests(PubSubTestsMixin, SynchronousTestCase):
    """
    Retrieving items.
    """

    def setUp(self) -> None:
        """
        Node C{n} with items C{i1} (oldest) to C{i3}.
        """
        super().setUp()
        self.makeNode("n")
        for ident in ("i1", "i2", "i3"):
            self.storeItem("n", ident, f"<entry xmlns='{NS_X}'><title>{ident}</title></entry>")

    def ids(self, response: domish.Element) -> list[str]:
        """
        @return: the ids of the items in an items result (checking each
            is in the pubsub namespace and carries its payload).
        """
        self.assertEqual(response["type"], "result")
        self.assertEqual(response.pubsub.items["node"], "n")
        result = []
        for item in response.pubsub.items.elements():
            self.assertEqual((item.uri, item.name), (NS_PUBSUB, "item"))
            self.assertEqual(str(item.entry.title), item["id"])
            result.append(item["id"])
        return result

    def test_all(self) -> None:
        """
        Anyone retrieves all items, newest first.
        """
        self.assertEqual(self.ids(self.itemsIQ(sender="anyone@d.example/r")), ["i3", "i2", "i1"])

    def test_byId(self) -> None:
        """
        Items named by id; unknown ids give nothing (XEP-0060 6.5.9.12).
        """
        self.assertEqual(
            self.ids(self.itemsIQ(children="<item id='i1'/><item id='nope'/>")), ["i1"]
        )
        self.assertEqual(self.ids(self.itemsIQ(children="<item id='nope'/>")), [])

    def test_maxItems(self) -> None:
        """
        C{max_items} gives the newest items.
        """
        self.assertEqual(self.ids(self.itemsIQ(attributes="max_items='2'")), ["i3", "i2"])

    def test_errors(self) -> None:
        """
        A missing node is C{item-not-found}; a non-positive or non-numeric
        C{max_items} is C{bad-request}; too many ids is C{policy-violation};
        no node is C{bad-request} with C{nodeid-required}.
        """
        self.assertError(self.itemsIQ(node="missing"), "item-not-found")
        self.assertError(self.itemsIQ(attributes="max_items='0'"), "bad-request")
        self.assertError(self.itemsIQ(attributes="max_items='-3'"), "bad-request")
        self.assertError(self.itemsIQ(attributes="max_items='many'"), "bad-request")
        ids = "".join(f"<item id='x{i}'/>" for i in range(101))
        self.assertError(self.itemsIQ(children=ids), "policy-violation", kind="modify")
        response = self.iq("get", f"<pubsub xmlns='{NS_PUBSUB}'><items/></pubsub>")
        self.assertError(response, "bad-request", "nodeid-required")


class OwnerTests(PubSubTestsMixin, SynchronousTestCase):
    """
    Node creation, configuration and deletion.
    """

    def configureGet(self, node: str = "n", sender: str = LOCAL) -> domish.Element:
        """
        @return: the response to a configuration request.
        """
        return self.iq(
            "get", f"<pubsub xmlns='{NS_OWNER}'><configure node='{node}'/></pubsub>", sender
        )

    def form(self, fields: dict[str, str], kind: str = "submit", extra: str = "") -> str:
        """
        @return: a node configuration data form.
        """
        body = "".join(
            f"<field var='{var}'><value>{value}</value></field>" for var, value in fields.items()
        )
        return (
            f"<x xmlns='jabber:x:data' type='{kind}'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{pubsub.NS_PUBSUB_NODE_CONFIG}</value></field>{body}{extra}</x>"
        )

    def configureSet(self, form: str, node: str = "n", sender: str = LOCAL) -> domish.Element:
        """
        @return: the response to a configuration change.
        """
        return self.iq(
            "set",
            f"<pubsub xmlns='{NS_OWNER}'><configure node='{node}'>{form}</configure></pubsub>",
            sender,
        )

    def test_configureGet(self) -> None:
        """
        An owner gets the node's configuration as a form of exactly the four
        options we store.
        """
        self.makeNode("n", **{MAX_ITEMS: 1})
        response = self.configureGet()
        self.assertEqual(response.pubsub.configure["node"], "n")
        form = data_form.findForm(response.pubsub.configure, pubsub.NS_PUBSUB_NODE_CONFIG)
        self.assertEqual(form.formType, "form")
        form.typeCheck(self.resource.getConfigurationOptions())
        self.assertEqual(
            form.getValues(),
            {ACCESS_MODEL: "open", MAX_ITEMS: "1", PERSIST_ITEMS: True, DELIVER_PAYLOADS: True},
        )

    def test_configureGetErrors(self) -> None:
        """
        Remote JIDs are C{forbidden}; a missing node is C{item-not-found};
        no node is C{bad-request} with C{nodeid-required}.
        """
        self.makeNode("n")
        self.assertError(self.configureGet(sender=REMOTE), "forbidden")
        self.assertError(self.configureGet(node="missing"), "item-not-found")
        response = self.iq("get", f"<pubsub xmlns='{NS_OWNER}'><configure/></pubsub>", LOCAL)
        self.assertError(response, "bad-request", "nodeid-required")

    def test_configureSet(self) -> None:
        """
        An owner changes options; unknown options are ignored.
        """
        self.makeNode("n")
        response = self.configureSet(
            self.form({MAX_ITEMS: "5", DELIVER_PAYLOADS: "0", "pubsub#title": "T"})
        )
        self.assertEqual(response["type"], "result")
        self.assertEqual(
            self.store.configs["n"], {**DEFAULT_NODE_CONFIG, MAX_ITEMS: 5, DELIVER_PAYLOADS: False}
        )

    def test_configureSetRejected(self) -> None:
        """
        Unsupported or ill-typed values are C{not-acceptable}; remote JIDs
        are C{forbidden}; the configuration stays as it was.
        """
        self.makeNode("n")
        cases = [
            ({ACCESS_MODEL: "presence"}, "unsupported-access-model"),
            ({MAX_ITEMS: "0"}, None),
            ({MAX_ITEMS: "1001"}, None),
            ({MAX_ITEMS: "max"}, None),
            ({PERSIST_ITEMS: "false"}, None),
            ({DELIVER_PAYLOADS: "maybe"}, None),
        ]
        for fields, pubsubCondition in cases:
            self.assertError(
                self.configureSet(self.form(fields)), "not-acceptable", pubsubCondition
            )
        twoValues = f"<field var='{MAX_ITEMS}'><value>1</value><value>2</value></field>"
        self.assertError(self.configureSet(self.form({}, extra=twoValues)), "not-acceptable")
        wrongType = f"<field var='{MAX_ITEMS}' type='boolean'><value>1</value></field>"
        self.assertError(self.configureSet(self.form({}, extra=wrongType)), "not-acceptable")
        self.assertError(self.configureSet(self.form({MAX_ITEMS: "5"}), sender=REMOTE), "forbidden")
        self.assertEqual(self.store.configs["n"], dict(DEFAULT_NODE_CONFIG))

    def test_hugeForm(self) -> None:
        """
        A configuration form with too many fields or values is refused with
        C{not-acceptable} before anything reads it: not even the store.
        """
        self.makeNode("n")
        calls = len(self.store.calls)
        many = self.form({f"x#{i}": "v" for i in range(65)})
        self.assertError(self.configureSet(many), "not-acceptable")
        values = "<field var='x'>" + "<value>v</value>" * 300 + "</field>"
        self.assertError(self.configureSet(self.form({}, extra=values)), "not-acceptable")
        create = (
            f"<pubsub xmlns='{NS_PUBSUB}'><create node='new'/><configure>{many}</configure>"
            "</pubsub>"
        )
        self.assertError(self.iq("set", create, LOCAL), "not-acceptable")
        self.assertEqual(self.store.calls[calls:], [])

    def test_badFormOption(self) -> None:
        """
        A form Wokkel cannot parse (an option without a value) is
        C{bad-request}, not an internal error.
        """
        self.makeNode("n")
        bad = "<field var='x' type='list-single'><option label='no value'/></field>"
        self.assertError(self.configureSet(self.form({}, extra=bad)), "bad-request")

    def test_configureCancel(self) -> None:
        """
        A cancelled configuration changes nothing.
        """
        self.makeNode("n")
        self.assertEqual(self.configureSet(self.form({}, kind="cancel"))["type"], "result")
        self.assertEqual(self.store.configs["n"], dict(DEFAULT_NODE_CONFIG))

    def test_create(self) -> None:
        """
        An owner creates a node with the default configuration, or with a
        submitted one.
        """
        response = self.iq(
            "set", f"<pubsub xmlns='{NS_PUBSUB}'><create node='plain'/></pubsub>", LOCAL
        )
        self.assertEqual(response["type"], "result")
        self.assertEqual(self.store.configs["plain"], dict(DEFAULT_NODE_CONFIG))
        form = self.form({MAX_ITEMS: "1"})
        body = (
            f"<pubsub xmlns='{NS_PUBSUB}'><create node='one'/><configure>{form}</configure>"
            "</pubsub>"
        )
        self.assertEqual(self.iq("set", body, ADMIN + "/r")["type"], "result")
        self.assertEqual(self.store.configs["one"][MAX_ITEMS], 1)

    def test_createErrors(self) -> None:
        """
        Remote JIDs are C{forbidden}; an existing node is C{conflict}; no
        node id (instant nodes) is C{not-acceptable} with
        C{nodeid-required}; a bad option is C{not-acceptable}.
        """
        self.makeNode("n")
        create = f"<pubsub xmlns='{NS_PUBSUB}'><create %s/>%s</pubsub>"
        self.assertError(self.iq("set", create % ("node='new'", ""), REMOTE), "forbidden")
        self.assertError(self.iq("set", create % ("node='n'", ""), LOCAL), "conflict")
        self.assertError(
            self.iq("set", create % ("", ""), LOCAL), "not-acceptable", "nodeid-required"
        )
        form = f"<configure>{self.form({ACCESS_MODEL: 'whitelist'})}</configure>"
        self.assertError(
            self.iq("set", create % ("node='new'", form), LOCAL),
            "not-acceptable",
            "unsupported-access-model",
        )
        self.assertEqual(sorted(self.store.configs), ["n"])

    def test_default(self) -> None:
        """
        The default configuration of a leaf node; collections are not
        supported.
        """
        response = self.iq("get", f"<pubsub xmlns='{NS_OWNER}'><default/></pubsub>")
        form = data_form.findForm(response.pubsub.default, pubsub.NS_PUBSUB_NODE_CONFIG)
        form.typeCheck(self.resource.getConfigurationOptions())
        self.assertEqual(
            form.getValues(),
            {ACCESS_MODEL: "open", MAX_ITEMS: "10", PERSIST_ITEMS: True, DELIVER_PAYLOADS: True},
        )
        collection = self.form({"pubsub#node_type": "collection"})
        response = self.iq(
            "get", f"<pubsub xmlns='{NS_OWNER}'><default>{collection}</default></pubsub>"
        )
        self.assertError(response, "feature-not-implemented", "unsupported", feature="collections")

    def test_delete(self) -> None:
        """
        An owner deletes a node; its subscribers are told.
        """
        self.makeNode("n")
        self.store.subscribe("n", REMOTE, 10)
        before = len(self.outgoing)
        response = self.iq("set", f"<pubsub xmlns='{NS_OWNER}'><delete node='n'/></pubsub>", LOCAL)
        self.assertEqual(response["type"], "result")
        self.assertEqual(self.store.configs, {})
        (message,) = self.messages(before)
        self.assertEqual((message["to"], message.event.delete["node"]), (REMOTE, "n"))

    def test_deleteErrors(self) -> None:
        """
        Remote JIDs are C{forbidden}; a missing node is C{item-not-found}.
        """
        self.makeNode("n")
        self.assertError(
            self.iq("set", f"<pubsub xmlns='{NS_OWNER}'><delete node='n'/></pubsub>", REMOTE),
            "forbidden",
        )
        self.assertError(
            self.iq("set", f"<pubsub xmlns='{NS_OWNER}'><delete node='x'/></pubsub>", LOCAL),
            "item-not-found",
        )
        self.assertEqual(list(self.store.configs), ["n"])


class UnsupportedTests(PubSubTestsMixin, SynchronousTestCase):
    """
    What we do not implement is C{feature-not-implemented} with the
    C{unsupported} condition naming a feature we do not advertise.
    """

    def test_unsupported(self) -> None:
        """
        Purge, affiliations, subscription management and options.
        """
        self.makeNode("n")
        cases = [
            ("set", f"<pubsub xmlns='{NS_OWNER}'><purge node='n'/></pubsub>", "purge-nodes"),
            (
                "get",
                f"<pubsub xmlns='{NS_PUBSUB}'><affiliations/></pubsub>",
                "retrieve-affiliations",
            ),
            (
                "get",
                f"<pubsub xmlns='{NS_OWNER}'><affiliations node='n'/></pubsub>",
                "modify-affiliations",
            ),
            (
                "get",
                f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='n'/></pubsub>",
                "manage-subscriptions",
            ),
            (
                "get",
                f"<pubsub xmlns='{NS_PUBSUB}'><options node='n' jid='{REMOTE}'/></pubsub>",
                "subscription-options",
            ),
        ]
        for kind, body, feature in cases:
            self.assertError(
                self.iq(kind, body, LOCAL),
                "feature-not-implemented",
                "unsupported",
                feature=feature,
            )
            self.assertNotIn(feature, self.resource.features)


class ErrorMapTests(PubSubTestsMixin, SynchronousTestCase):
    """
    Every domain error the store or the backend raises becomes its stanza
    error.
    """

    def test_errorMap(self) -> None:
        """
        Each domain error, raised by the store during a subscribe, gives
        the mapped condition, type and pubsub condition; only a
        configuration error's message is sent, as the error's text.
        """
        self.makeNode("n")
        expected = [
            (error.NodeNotFound("n"), ("item-not-found", "cancel", None)),
            (error.ItemNotFound("i"), ("item-not-found", "cancel", None)),
            (error.NodeExists("n"), ("conflict", "cancel", None)),
            (error.NotSubscribed("x"), ("unexpected-request", "cancel", "not-subscribed")),
            (error.InvalidSubscriptionId("x"), ("not-acceptable", "modify", "invalid-subid")),
            (
                error.TooManySubscriptions("x"),
                ("policy-violation", "wait", "too-many-subscriptions"),
            ),
            (error.Forbidden("x"), ("forbidden", "auth", None)),
            (
                error.UnsupportedAccessModel("x"),
                ("not-acceptable", "modify", "unsupported-access-model"),
            ),
            (error.BadNodeConfiguration("say why"), ("not-acceptable", "modify", None)),
            (error.StorageFull("x"), ("resource-constraint", "wait", None)),
            (error.StorageError("secret detail"), ("internal-server-error", "wait", None)),
            (RuntimeError("bug"), ("internal-server-error", "wait", None)),
        ]
        for exception, (condition, kind, pubsubCondition) in expected:
            self.store.failures["subscribe"] = exception
            response = self.subscribeIQ()
            self.assertEqual(
                errorOf(response)[:3], (condition, kind, pubsubCondition), type(exception).__name__
            )
            self.assertNotIn("detail", response.toXml())
            text = jabbererror.exceptionFromStanza(response).text
            shown = "say why" if isinstance(exception, error.BadNodeConfiguration) else None
            self.assertEqual(text, shown, type(exception).__name__)
        self.assertEqual(len(self.flushLoggedErrors(error.StorageError, RuntimeError)), 2)
        self.assertEqual(set(PubSubResource._errorMap), {type(e) for e, _ in expected[:-1]})


class EventCollector(pubsub.PubSubClient):  # type: ignore[misc]
    """
    Collects the items events it receives.
    """

    def __init__(self) -> None:
        super().__init__()
        self.events: list[pubsub.ItemsEvent] = []

    def itemsReceived(self, event: pubsub.ItemsEvent) -> None:
        """
        Keep C{event}.
        """
        self.events.append(event)


def serverInfo(*peers: str) -> domish.Element:
    """
    @return: a XEP-0485 payload naming C{peers}.
    """
    payload = domish.Element(("urn:xmpp:serverinfo:0", "serverinfo"))
    federation = payload.addElement("domain")
    federation["name"] = "a.example"
    federation = federation.addElement("federation")
    for peer in peers:
        remote = federation.addElement("remote-domain")
        remote["name"] = peer
        remote.addElement("connection")["type"] = "incoming"
    return payload


class FederatedPubSubTests(TestCase):
    """
    Two real nodes on loopback: node A's own pub-sub service (on its
    C{pubsub.a.example} component, SQLite store; its XEP-0485 publisher is
    off so that the test publishes alone), node B subscribes to
    C{serverinfo} over s2s.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Build and start both nodes.
        """
        base = Path(self.mktemp())
        base.mkdir()
        self.a = RunningNode(base, "a.example", "127.0.0.1")
        self.b = RunningNode(base, "b.example", "127.0.0.1")
        self.a.build(routes=routesTo(self.b), publish=False)
        self.b.build(routes=routesTo(self.a), publish=False)
        self.backend = self.a.service.serverInfo.backend
        self.bDomain = self.b.domainHost
        self.collector = EventCollector()
        self.collector.setHandlerParent(self.bDomain)
        for node in (self.a, self.b):
            node.start()
            self.addCleanup(node.stop)

    def request(self, kind: str, child: str) -> defer.Deferred[domish.Element]:
        """
        Send an IQ from C{b.example} to A's pub-sub host.
        """
        return self.bDomain.request(RawRequest("pubsub.a.example", "b.example", kind, child))

    def publish(self, *peers: str) -> defer.Deferred[None]:
        """
        Publish A's C{serverinfo} item through its backend.
        """
        d = self.backend.publish(
            "serverinfo", "current", serverInfo(*peers).toXml(), createConfig={MAX_ITEMS: 1}
        )
        return d.addCallback(lambda _: None)

    def peersIn(self, item: domish.Element) -> list[str]:
        """
        @return: the peers named in the C{serverinfo} payload of C{item}.
        """
        (payload,) = list(item.elements("urn:xmpp:serverinfo:0", "serverinfo"))
        return [
            r["name"]
            for r in payload.domain.federation.elements("urn:xmpp:serverinfo:0", "remote-domain")
        ]

    @defer.inlineCallbacks
    def test_subscribeNotifyRetrieve(self):  # type: ignore[no-untyped-def]
        """
        B subscribes to A's C{serverinfo} over s2s, gets the current item
        at once, then a notification when A publishes again; B's items
        request returns the one current item; everything is stored.
        """
        yield self.publish("old.example")
        info = yield self.b.disco.requestInfo(
            JID("pubsub.a.example"), "serverinfo", sender=JID("b.example")
        )
        self.assertIn(("pubsub", "leaf"), info.identities)

        response = yield self.request(
            "set",
            f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='serverinfo' jid='b.example'/></pubsub>",
        )
        self.assertEqual(response.pubsub.subscription["subscription"], "subscribed")
        yield defer.Deferred.fromCoroutine(waitFor(lambda: len(self.collector.events) == 1))
        first = self.collector.events[0]
        self.assertEqual(
            (first.sender.full(), first.nodeIdentifier), ("pubsub.a.example", "serverinfo")
        )
        self.assertEqual(self.peersIn(first.items[0]), ["old.example"])

        yield self.publish("b.example", "c.example")
        yield defer.Deferred.fromCoroutine(waitFor(lambda: len(self.collector.events) == 2))
        second = self.collector.events[1]
        self.assertEqual((second.items[0].uri, second.items[0]["id"]), (NS_EVENT, "current"))
        self.assertEqual(self.peersIn(second.items[0]), ["b.example", "c.example"])

        response = yield self.request(
            "get", f"<pubsub xmlns='{NS_PUBSUB}'><items node='serverinfo'/></pubsub>"
        )
        items = list(response.pubsub.items.elements(NS_PUBSUB, "item"))
        self.assertEqual([i["id"] for i in items], ["current"])
        self.assertEqual(self.peersIn(items[0]), ["b.example", "c.example"])
        subscriptions = yield self.backend.subscriptions("serverinfo")
        self.assertEqual([s.subscriber for s in subscriptions], ["b.example"])

    @defer.inlineCallbacks
    def test_remotePublishForbidden(self):  # type: ignore[no-untyped-def]
        """
        B cannot publish to A's node over s2s: C{forbidden}, and the stored
        item is unchanged.
        """
        yield self.publish("old.example")
        payload = serverInfo("evil.example").toXml()
        d = self.request(
            "set",
            f"<pubsub xmlns='{NS_PUBSUB}'><publish node='serverinfo'>"
            f"<item id='current'>{payload}</item></publish></pubsub>",
        )
        failure = yield self.assertFailure(d, jabbererror.StanzaError)
        self.assertEqual(failure.condition, "forbidden")
        items = yield self.backend.items("serverinfo")
        self.assertEqual(len(items), 1)
        self.assertIn("old.example", items[0].payload)
