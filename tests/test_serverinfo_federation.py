# -*- test-case-name: tests.test_serverinfo_federation -*-
"""
XEP-0485 publishing between real nodes of ours on loopback, checked the
way a remote reader sees it: another node retrieves (or subscribes to) the
C{serverinfo} item over s2s and reads it with
L{xmppnetgraph.serverinfo.payload.parsePayload}.

Covers consent (a peer is named only when its disco#info lists
C{urn:xmpp:serverinfo:0}; opted out, silent and failing peers are
anonymous), persistence across a restart, a database that is full during a
publish, and the delay from a link change to the notification (logged, not
asserted).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import disco, pubsub
from wokkel.disco import DiscoHandler
from wokkel.generic import parseXml
from wokkel.subprotocols import XMPPHandler

from tests.nodes import RawRequest, RunningNode, freePort, waitFor
from xmppnetgraph.config import Config, Route
from xmppnetgraph.error import StorageFull
from xmppnetgraph.model import LinkUp
from xmppnetgraph.serverinfo.payload import NS_SERVERINFO, RemoteDomain, ServerInfo, parsePayload
from xmppnetgraph.store.database import Cursor

_log = Logger()

NS_PUBSUB = pubsub.NS_PUBSUB
ADDRESS = "127.0.0.1"
DOMAINS = ("a.example", "b.example", "c.example")
ITEMS_REQUEST = f"<pubsub xmlns='{NS_PUBSUB}'><items node='serverinfo'/></pubsub>"
FILLER_NODE = "test-filler"


def payloadIn(item: domish.Element) -> domish.Element:
    """
    @return: the one C{serverinfo} element of an C{item}.
    """
    (payload,) = [c for c in item.elements() if (c.uri, c.name) == (NS_SERVERINFO, "serverinfo")]
    return payload


def readXml(xml: str) -> ServerInfo:
    """
    @return: a serialized C{serverinfo} payload, parsed as a reader would.
    """
    return parsePayload(parseXml(xml.encode("utf-8")))


def remotesOf(info: ServerInfo, domain: str) -> tuple[RemoteDomain, ...]:
    """
    @return: the remote domains C{info} lists for the local C{domain}
        (which must be the only domain of the item).
    """
    assert [d.name for d in info.domains] == [domain], info
    return info.domains[0].remotes


def names(info: ServerInfo) -> set[str]:
    """
    @return: every named remote domain of C{info}.
    """
    return {r.name for d in info.domains for r in d.remotes if r.name is not None}


def directions(node: RunningNode, domain: str) -> tuple[str, ...]:
    """
    @return: the directions of C{node}'s live links with C{domain}, sorted
        (one per stream, as the item lists connections: C{bidi} for a
        bidirectional stream).
    """
    return tuple(
        sorted(
            "bidi" if link.bidi else link.direction
            for link in node.s2s.linkTable.links()
            if link.domain == domain
        )
    )


def publisherOf(node: RunningNode) -> Any:
    """
    @return: the node's L{ServerInfoPublisher}.
    """
    return node.service.serverInfo.publisher


def backendOf(node: RunningNode) -> Any:
    """
    @return: the node's pub-sub backend.
    """
    return node.service.serverInfo.backend


def settled(node: RunningNode, *checked: str) -> bool:
    """
    @return: whether every domain in C{checked} has a consent answer (or
        failure) and the node's last published item is what its link table
        gives now.
    """
    publisher = publisherOf(node)
    for domain in checked:
        state = publisher.consent.state(domain)
        if state.checkedAt is None or state.pending:
            return False
    return (
        publisher.lastPayload is not None
        and publisher.lastPayload == publisher.currentPayload().toXml()
    )


async def readItem(reader: RunningNode, owner: RunningNode) -> ServerInfo:
    """
    Retrieve C{owner}'s C{serverinfo} item over s2s, from C{reader}'s domain.

    @return: the item as L{parsePayload} reads it.
    """
    component = reader.domainHost
    response = await component.request(
        RawRequest("pubsub." + owner.domain, reader.domain, "get", ITEMS_REQUEST)
    )
    items = list(response.pubsub.items.elements(NS_PUBSUB, "item"))
    assert [i.getAttribute("id") for i in items] == ["current"], response.toXml()
    return parsePayload(payloadIn(items[0]))


async def apiGet(node: RunningNode, path: str) -> Any:
    """
    @return: the decoded JSON of C{GET path} on the node's web endpoint.
    """
    url = f"http://{node.address}:{node.webPort}{path}".encode()
    response = await Agent(reactor).request(b"GET", url)
    return json.loads(await readBody(response))


async def subscribe(subscriber: RunningNode, owner: RunningNode) -> None:
    """
    Subscribe C{subscriber}'s bare domain to C{owner}'s C{serverinfo} node.
    """
    component = subscriber.domainHost
    body = (
        f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='serverinfo' jid='{subscriber.domain}'/>"
        "</pubsub>"
    )
    response = await component.request(
        RawRequest("pubsub." + owner.domain, subscriber.domain, "set", body)
    )
    assert response.pubsub.subscription["subscription"] == "subscribed", response.toXml()


class Subscriber(pubsub.PubSubClient):  # type: ignore[misc]
    """
    Keeps the C{serverinfo} payloads a domain receives, with their arrival
    time (C{time.monotonic}).

    @ivar received: (arrival time, serialized payload), in arrival order.
    """

    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = JID("pubsub." + owner)
        self.received: list[tuple[float, str]] = []

    def itemsReceived(self, event: pubsub.ItemsEvent) -> None:
        """
        Keep the payload of each item of C{event} from the owner's node.
        """
        if (event.sender, event.nodeIdentifier) != (self.owner, "serverinfo"):
            return
        for item in event.items:
            self.received.append((time.monotonic(), payloadIn(item).toXml()))

    def infos(self) -> list[ServerInfo]:
        """
        @return: every payload received, parsed.
        """
        return [readXml(xml) for _, xml in self.received]


class LinkTimes:
    """
    Records when links of one domain come up (C{time.monotonic}).
    """

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.ups: list[float] = []

    def linkUp(self, event: LinkUp) -> None:
        """
        Note the time of a new link with our domain.
        """
        if event.link.domain == self.domain:
            self.ups.append(time.monotonic())


class SilentDisco(XMPPHandler):  # type: ignore[misc]
    """
    Marks every disco#info request to the bare domain as handled, without
    answering it (together with L{withoutDisco}: nobody answers).
    """

    def connectionInitialized(self) -> None:
        """
        Watch for disco#info requests.
        """
        self.xmlstream.addObserver(
            f"/iq[@type='get']/query[@xmlns='{disco.NS_DISCO_INFO}']", self._swallow, 10
        )

    def _swallow(self, iq: domish.Element) -> None:
        if not iq.query.getAttribute("node"):
            iq.handled = True  # type: ignore[attr-defined]


def withoutDisco(node: RunningNode) -> None:
    """
    Remove the disco handler of C{node}'s domain (before it starts): disco
    requests then get C{service-unavailable} from the component.
    """
    component = node.domainHost
    (handler,) = [h for h in component if isinstance(h, DiscoHandler)]
    handler.disownHandlerParent(component)


def silent(node: RunningNode) -> None:
    """
    Make C{node}'s domain (before it starts) take disco#info requests and
    never answer them: without its disco handler, and with L{SilentDisco}
    marking the requests handled so that the component does not answer
    C{service-unavailable} either.
    """
    withoutDisco(node)
    SilentDisco().setHandlerParent(node.domainHost)


def fillDatabase(cursor: Cursor) -> int:
    """
    Fill the database to the brim (an interaction, run in the pool's only
    connection): cap its size at its current page count with
    C{PRAGMA max_page_count}, which holds for this connection only, then
    add small items to a filler node until SQLite says the database is full.
    Every row is committed on its own, since C{SQLITE_FULL} rolls back the
    transaction it happens in.

    @return: how many filler items fit.
    """
    cursor.execute("COMMIT")
    cursor.execute(
        "INSERT INTO pubsub_nodes (node, config, created) VALUES (?, '{}', 0)", (FILLER_NODE,)
    )
    (pages,) = cursor.execute("PRAGMA page_count").fetchone() or (0,)
    cursor.execute(f"PRAGMA max_page_count = {int(pages)}")
    count = 0
    while True:
        try:
            cursor.execute(
                "INSERT INTO pubsub_items (node, item, seq, payload, publisher, published)"
                " VALUES (?, ?, ?, 'x', 'test', 0)",
                (FILLER_NODE, str(count), count),
            )
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            return count
        count += 1


def emptyDatabase(cursor: Cursor) -> None:
    """
    Lift the size cap of L{fillDatabase} and delete the filler node.
    """
    cursor.execute("PRAGMA max_page_count = 1073741823")
    cursor.execute("DELETE FROM pubsub_nodes WHERE node = ?", (FILLER_NODE,))


class NodesMixin:
    """
    Real nodes of ours for C{a.example}, C{b.example} and C{c.example} on
    127.0.0.1, each with static routes to the others, stopped at cleanup;
    a node can be restarted on its data directory and port.
    """

    timeout = 30

    def setUp(self) -> None:
        """
        Pick the nodes' s2s ports and make a base directory for their data.
        """
        self.base = Path(self.mktemp()).absolute()  # type: ignore[attr-defined]
        self.base.mkdir(parents=True)
        self.ports = {domain: freePort(ADDRESS) for domain in DOMAINS}

    def node(self, domain: str, start: bool = True, **config: Any) -> RunningNode:
        """
        Build (and start) the node for C{domain}; if it ran before (and has
        stopped), this is a restart on the same data and port.

        @param domain: one of L{DOMAINS}.
        @param start: start it now; else call L{startNode} later.
        @param config: L{Config} fields; C{publishDelay} is 0.2 unless
            given.
        """
        node = RunningNode(self.base, domain, ADDRESS, s2sPort=self.ports[domain])
        routes = []
        for other, port in self.ports.items():
            if other != domain:
                routes += [Route(other, ADDRESS, port), Route("*." + other, ADDRESS, port)]
        config.setdefault("publishDelay", 0.2)
        node.build(routes=tuple(routes), **config)
        if start:
            self.startNode(node)
        return node

    def startNode(self, node: RunningNode) -> None:
        """
        Start C{node}; stop it at cleanup unless it has stopped before.
        """
        node.start()

        def stop() -> Any:
            return node.stop() if node.service.running else None

        self.addCleanup(stop)  # type: ignore[attr-defined]


class ServiceTests(NodesMixin, TestCase):
    """
    The C{serverinfo} node that disco advertises.
    """

    async def test_nodeBeforeFirstPublish(self) -> None:
        """
        The node exists as soon as the publisher has started, before its
        first publish: B finds it (C{pubsub/leaf}), subscribes to it and
        retrieves no items, where it would get C{item-not-found} if the node
        were made by the first publish.
        """
        a, b = self.node("a.example", publishDelay=30.0), self.node("b.example")
        for _ in range(100):
            if "serverinfo" in await backendOf(a).nodes():
                break
            await deferLater(reactor, 0.05, lambda: None)
        else:
            self.fail("no serverinfo node 5 s after the start")
        info = await b.disco.requestInfo(
            JID("pubsub.a.example"), "serverinfo", sender=JID(b.domain)
        )
        self.assertIn(("pubsub", "leaf"), info.identities)
        await subscribe(b, a)
        component = b.domainHost
        response = await component.request(
            RawRequest("pubsub.a.example", b.domain, "get", ITEMS_REQUEST)
        )
        self.assertEqual(list(response.pubsub.items.elements(NS_PUBSUB, "item")), [])
        self.assertIsNone(publisherOf(a).lastPublished)


class ConsentTests(NodesMixin, TestCase):
    """
    A names B only when B's disco#info lists C{urn:xmpp:serverinfo:0};
    otherwise, B is an anonymous remote domain with its connections.
    """

    async def linkAndRead(self, a: RunningNode, b: RunningNode) -> ServerInfo:
        """
        Link A and B by a disco#info A -> B, let B read A's item once (so
        that the reader's own streams exist), wait until A's published item
        matches its link table with B's consent answered, and read it again
        as B.

        @return: A's item as B reads it at the end.
        """
        info = await a.disco.requestInfo(JID(b.domain), sender=JID(a.domain))
        self.assertIn(("server", "im"), info.identities)
        await waitFor(lambda: publisherOf(a).lastPayload is not None)
        await readItem(b, a)
        await waitFor(lambda: settled(a, b.domain))
        return await readItem(b, a)

    def assertOnlyPeer(self, a: RunningNode, info: ServerInfo, name: str | None, peer: str) -> None:
        """
        Assert that A's item lists exactly one remote domain, C{peer}, under
        C{name}, with one connection per live stream with it, and none of
        A's own domains.
        """
        (remote,) = remotesOf(info, a.domain)
        self.assertEqual(remote.name, name)
        self.assertEqual(remote.connections, directions(a, peer))
        # Bidirectional streams (XEP-0288) both ways: with dialback each
        # side verifies the other's key over a stream of its own.
        self.assertEqual(set(remote.connections), {"bidi"})
        self.assertFalse(names(info) & set(a.config.localDomains))
        self.assertFalse(info.truncated)
        self.assertEqual(info, readXml(publisherOf(a).lastPayload))

    async def test_optedInPeerNamed(self) -> None:
        """
        B is opted in (the default): after a disco#info A -> B, the item B
        retrieves from A over s2s names B, with its (bidirectional)
        connections; A's C{/api/serverinfo} shows the item, when it was
        published, and B's consent.
        """
        a, b = self.node("a.example"), self.node("b.example")
        info = await self.linkAndRead(a, b)
        self.assertOnlyPeer(a, info, "b.example", "b.example")

        api = await apiGet(a, "/api/serverinfo")
        self.assertEqual(
            (api["domain"], api["service"], api["node"]),
            ("a.example", "pubsub.a.example", "serverinfo"),
        )
        self.assertEqual(api["item"], publisherOf(a).lastPayload)
        self.assertIsNotNone(api["published"])
        self.assertEqual(
            api["remote_domains"],
            [{"name": "b.example", "connections": list(directions(a, "b.example"))}],
        )
        (peer,) = api["peers"]
        self.assertEqual(
            (peer["domain"], peer["consents"], peer["error"]), ("b.example", True, None)
        )
        self.assertIsNotNone(peer["checked"])

    async def test_optedOutPeerAnonymous(self) -> None:
        """
        B runs with C{optIn=False}: once A has B's answer, the item B
        retrieves lists B without a name, with its connections; the API
        says B does not consent.
        """
        a, b = self.node("a.example"), self.node("b.example", optIn=False)
        info = await self.linkAndRead(a, b)
        self.assertOnlyPeer(a, info, None, "b.example")
        self.assertNotIn("b.example", publisherOf(a).lastPayload)

        api = await apiGet(a, "/api/serverinfo")
        self.assertEqual(
            api["remote_domains"], [{"name": None, "connections": list(directions(a, "b.example"))}]
        )
        (peer,) = api["peers"]
        self.assertEqual(
            (peer["domain"], peer["consents"], peer["error"]), ("b.example", False, None)
        )
        self.assertIsNotNone(peer["checked"])

    async def peerWithoutAnswer(
        self, prepare: Callable[[RunningNode], None], expectedError: str
    ) -> None:
        """
        B (opted in) does not answer A's disco#info as it should; B links
        with A by a disco#info B -> A. Once A's check has failed with
        C{expectedError}, the item B retrieves lists B without a name.
        """
        a = self.node("a.example", iqTimeout=1.0)
        b = self.node("b.example", start=False)
        prepare(b)
        self.startNode(b)
        await b.disco.requestInfo(JID(a.domain), sender=JID(b.domain))
        await waitFor(lambda: publisherOf(a).consent.state("b.example").error is not None)
        state = publisherOf(a).consent.state("b.example")
        self.assertEqual((state.consents, state.error), (False, expectedError))
        await waitFor(lambda: publisherOf(a).lastPayload is not None)
        await readItem(b, a)
        await waitFor(lambda: settled(a, b.domain))
        info = await readItem(b, a)
        self.assertOnlyPeer(a, info, None, "b.example")
        api = await apiGet(a, "/api/serverinfo")
        (peer,) = api["peers"]
        self.assertEqual((peer["consents"], peer["error"]), (False, expectedError))

    async def test_silentPeerAnonymous(self) -> None:
        """
        B's domain takes disco#info requests and never answers: after A's
        timeout, B is listed without a name.
        """
        await self.peerWithoutAnswer(silent, "timeout")

    async def test_errorPeerAnonymous(self) -> None:
        """
        B's domain answers disco#info with an error (it has no disco
        handler): B is listed without a name.
        """
        await self.peerWithoutAnswer(withoutDisco, "service-unavailable")


class RestartTests(NodesMixin, TestCase):
    """
    Items and subscriptions are stored: they survive a restart; the last
    good item survives a publish that fails, and a restart in the middle of
    a publish.
    """

    async def test_survivesRestart(self) -> None:
        """
        C subscribes to A's C{serverinfo}; C leaves, A publishes the item
        without C; A restarts on the same data: C's subscription is still
        stored, A knows its stored item and publishes nothing while nothing
        changed, serves the item to C when C is back, and notifies C (which
        did not subscribe again) once C's links are in the item.
        """
        a, c = self.node("a.example"), self.node("c.example", start=False)
        events = Subscriber("a.example")
        events.setHandlerParent(c.domainHost)
        self.startNode(c)
        await subscribe(c, a)
        await waitFor(
            lambda: (
                settled(a, "c.example")
                and "c.example" in names(readXml(publisherOf(a).lastPayload))
            )
        )
        await waitFor(lambda: any("c.example" in names(i) for i in events.infos()))

        await c.stop()
        await waitFor(lambda: not list(a.s2s.linkTable.links()) and settled(a))
        empty = publisherOf(a).lastPayload
        self.assertEqual(remotesOf(readXml(empty), "a.example"), ())
        (stored,) = await backendOf(a).currentItems("serverinfo")
        self.assertEqual(stored.payload, empty)

        await a.stop()
        a = self.node("a.example", publishDelay=1.0)
        publisher = publisherOf(a)
        await waitFor(lambda: publisher.lastPayload is not None)
        self.assertEqual(publisher.lastPayload, empty)
        subscriptions = await backendOf(a).subscriptions("serverinfo")
        self.assertEqual([s.subscriber for s in subscriptions], ["c.example"])
        # The publisher has scheduled its first look at the links now; this
        # fires after it.
        await deferLater(reactor, publisher.delay + 0.1, lambda: None)
        self.assertIsNone(publisher.lastPublished)
        self.assertEqual(await backendOf(a).currentItems("serverinfo"), [stored])

        c = self.node("c.example", start=False)
        events = Subscriber("a.example")
        events.setHandlerParent(c.domainHost)
        self.startNode(c)
        self.assertEqual(await readItem(c, a), readXml(empty))
        await waitFor(lambda: any("c.example" in names(i) for i in events.infos()))
        self.assertIsNotNone(publisher.lastPublished)
        (latest,) = await backendOf(a).currentItems("serverinfo")
        self.assertEqual(latest.payload, publisher.lastPayload)

    async def fillDuringPublish(self) -> tuple[RunningNode, RunningNode, Subscriber, str, int]:
        """
        B subscribes to A's item, which names B; then A's database fills up
        and C links with A, so A's next publish fails with L{StorageFull}.

        @return: A, B, B's subscriber handler, A's last good payload, and
            how many payloads B had received when A's database filled up.
        """
        a, b = self.node("a.example"), self.node("b.example", start=False)
        events = Subscriber("a.example")
        events.setHandlerParent(b.domainHost)
        self.startNode(b)
        c = self.node("c.example")
        await subscribe(b, a)
        await waitFor(
            lambda: (
                settled(a, "b.example")
                and "b.example" in names(readXml(publisherOf(a).lastPayload))
            )
        )
        good = publisherOf(a).lastPayload
        await waitFor(lambda: any(xml == good for _, xml in events.received))
        publisherOf(a).retryDelay = 0.2
        received = len(events.received)

        database = a.service.core.database
        self.assertGreater(await database.runInteraction(fillDatabase), 0)
        await c.disco.requestInfo(JID(a.domain), sender=JID(c.domain))
        failures: list[Any] = []

        def failedTwice() -> bool:
            # The first publish and at least one retry.
            failures.extend(self.flushLoggedErrors(StorageFull))
            return len(failures) >= 2

        await waitFor(failedTwice)
        return a, b, events, good, received

    async def test_storageFullKeepsLastItem(self) -> None:
        """
        While A's database is full, A's publishes fail: the stored item,
        the item B retrieves, A's API and A's last payload stay the last
        good item, and B is sent nothing else; once there is room again,
        A's publisher retries and B is notified of C.
        """
        a, b, events, good, received = await self.fillDuringPublish()
        self.assertIn("c.example", {link.domain for link in a.s2s.linkTable.links()})
        (stored,) = await backendOf(a).currentItems("serverinfo")
        self.assertEqual(stored.payload, good)
        self.assertEqual(await readItem(b, a), readXml(good))
        self.assertEqual(publisherOf(a).lastPayload, good)
        self.assertEqual((await apiGet(a, "/api/serverinfo"))["item"], good)
        self.assertEqual(events.received[received:], [])

        database = a.service.core.database
        await database.runInteraction(emptyDatabase)
        await waitFor(lambda: any("c.example" in names(i) for i in events.infos()))
        await waitFor(lambda: settled(a, "b.example", "c.example"))
        (stored,) = await backendOf(a).currentItems("serverinfo")
        self.assertEqual(stored.payload, publisherOf(a).lastPayload)
        self.assertEqual(names(readXml(stored.payload)), {"b.example", "c.example"})
        self.flushLoggedErrors(StorageFull)

    async def test_restartAfterFailedPublish(self) -> None:
        """
        A restarts while its publishes fail for lack of room: after the
        restart A's stored and served item is the last good one, and A's
        publisher starts from it.
        """
        a, b, events, good, received = await self.fillDuringPublish()
        await a.stop()
        self.flushLoggedErrors(StorageFull)
        # A long delay: the restarted A does not publish while B reads.
        a = self.node("a.example", publishDelay=10.0)
        await waitFor(lambda: publisherOf(a).lastPayload is not None)
        self.assertEqual(publisherOf(a).lastPayload, good)
        (stored,) = await backendOf(a).currentItems("serverinfo")
        self.assertEqual(stored.payload, good)
        self.assertEqual(await readItem(b, a), readXml(good))

    async def test_stopInTheMiddleOfAPublish(self) -> None:
        """
        A stops while it is publishing (as the store transaction of the
        publish starts), with B subscribed: the publish
        completes without an error, and after the restart A serves that
        item and starts from it.
        """
        a, b = self.node("a.example"), self.node("b.example")
        c = self.node("c.example")
        await subscribe(b, a)
        await waitFor(
            lambda: (
                settled(a, "b.example")
                and "b.example" in names(readXml(publisherOf(a).lastPayload))
            )
        )
        store = backendOf(a).store
        publishItem = store.publishItem
        stopping: list[defer.Deferred[Any]] = []
        payloads: list[str] = []

        def stopThenStore(
            nodeIdentifier: str, itemIdentifier: str, payload: str, *args: Any
        ) -> Any:
            if not stopping:
                stopping.append(a.stop())
                payloads.append(payload)
            return publishItem(nodeIdentifier, itemIdentifier, payload, *args)

        store.publishItem = stopThenStore
        await c.disco.requestInfo(JID(a.domain), sender=JID(c.domain))
        await waitFor(lambda: bool(stopping))
        await stopping[0]
        (payload,) = payloads
        self.assertEqual(len(remotesOf(readXml(payload), "a.example")), 2)

        a = self.node("a.example", publishDelay=10.0)
        await waitFor(lambda: publisherOf(a).lastPayload is not None)
        self.assertEqual(publisherOf(a).lastPayload, payload)
        (stored,) = await backendOf(a).currentItems("serverinfo")
        self.assertEqual(stored.payload, payload)
        self.assertEqual(await readItem(b, a), readXml(payload))


class LatencyTests(NodesMixin, TestCase):
    """
    How long a subscriber waits for a link change: from the first link of
    a new peer C at A to the notification at subscriber B (logged).
    """

    async def measure(self, delay: float | None) -> None:
        """
        B subscribes to A's item; C links with A; log the time until B has
        an item listing C at all, and until B has one naming C.

        @param delay: A's C{publishDelay}, or L{None} for the default.
        """
        publishDelay = (
            Config(domain="a.example", dataDir=self.base).publishDelay if delay is None else delay
        )
        a = self.node("a.example", publishDelay=publishDelay)
        b = self.node("b.example", start=False)
        events = Subscriber("a.example")
        events.setHandlerParent(b.domainHost)
        self.startNode(b)
        c = self.node("c.example")
        await subscribe(b, a)
        await waitFor(
            lambda: (
                settled(a, "b.example")
                and "b.example" in names(readXml(publisherOf(a).lastPayload))
            )
        )
        await waitFor(lambda: any(xml == publisherOf(a).lastPayload for _, xml in events.received))
        before = len(events.received)
        times = LinkTimes("c.example")
        a.service.core.feed.observe(LinkUp, times.linkUp)

        await c.disco.requestInfo(JID(a.domain), sender=JID(c.domain))

        def arrival(wanted: Callable[[ServerInfo], bool]) -> float | None:
            for when, xml in events.received[before:]:
                if wanted(readXml(xml)):
                    return when
            return None

        listed = lambda info: len(remotesOf(info, "a.example")) == 2  # noqa: E731
        named = lambda info: "c.example" in names(info)  # noqa: E731
        await waitFor(lambda: arrival(named) is not None, timeout=publishDelay + 10)
        first, listedAt, namedAt = times.ups[0], arrival(listed), arrival(named)
        assert listedAt is not None and namedAt is not None
        _log.info(
            "serverinfo latency on loopback, publishDelay {delay} s: link change -> "
            "notification listing the new peer {listed:.3f} s, naming it {named:.3f} s",
            delay=publishDelay,
            listed=listedAt - first,
            named=namedAt - first,
        )
        self.assertEqual(names(readXml(publisherOf(a).lastPayload)), {"b.example", "c.example"})

    async def test_defaultDelay(self) -> None:
        """
        With the default C{publishDelay} (2 s).
        """
        await self.measure(None)

    async def test_shortDelay(self) -> None:
        """
        With a C{publishDelay} of 0.2 s.
        """
        await self.measure(0.2)
