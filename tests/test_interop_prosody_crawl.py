# -*- test-case-name: tests.test_interop_prosody_crawl -*-
"""
The aggregator crawling a real Prosody 13 that publishes XEP-0485 server
information with the real C{mod_pubsub_serverinfo} (Debian's
C{prosody-modules} from bookworm-backports), over s2s.

Prosody federates with three nodes of ours: the aggregator
(C{agg.example}, seeded with Prosody), C{node.example}, which opts in, and
C{b.example}, started with C{--no-opt-in}. The module's item names the
ones that opt in and lists C{b.example} as a bare C{remote-domain}. The
aggregator finds the item through the disco form, reads it, asks for the
software version, subscribes to the node, and from then on takes Prosody's
publications as notifications: a newcomer (C{c.example}) linking to
Prosody reaches the aggregator's graph with the crawler's refresh an hour
away.

What Prosody 13.0.1 (prosody-modules 0.0~hg20250402) was seen to do, and
the tests check: it accepts our subscription (bare C{agg.example}) with
state C{subscribed}; it notifies every publication (every interval, the
item changed or not) as C{<message type='headline'
from='pubsub.prosody.example' to='agg.example'>} with one item
C{current} of node C{serverinfo}; it keeps the subscription across its
restart. Measured here (publication interval 2 s): a new peer's link to
Prosody is in our store 1.6-2.0 s later (anonymous, as the module first lists
it), named 3.6-4.0 s later, in the view 0.1 s after that (4 runs).

Skipped when Prosody 13 with the module is not installed, except in CI,
where that fails.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
from twisted.internet import reactor
from twisted.internet.defer import succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests.nodes import RawRequest, RunningNode
from tests.pki import selfSigned
from tests.prosody import ProsodyPeer, requireServerInfo, serverInfoSkip, startAmong
from tests.test_interop_prosody_publisher import NS_PUBSUB, itemsOf, payloadOf
from xmppnetgraph.config import Route
from xmppnetgraph.crawler.crawler import Crawler
from xmppnetgraph.graphview import viewGraph
from xmppnetgraph.interfaces import IGraphStore
from xmppnetgraph.model import DomainFacts, GraphSnapshot, ReportedLink
from xmppnetgraph.serverinfo.payload import FORM_FIELD, RemoteDomain, ServerInfo, parsePayload

_log = Logger()

NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
PROSODY = "prosody.example"
SERVICE = "pubsub.prosody.example"
AGGREGATOR = "agg.example"
NODE = "node.example"
OTHER = "b.example"
NEWCOMER = "c.example"
OURS = (AGGREGATOR, NODE, OTHER, NEWCOMER)


async def _sleep(seconds: float) -> None:
    """
    Wait C{seconds} in the reactor.
    """
    await deferLater(reactor, seconds, lambda: None)


async def until(
    predicate: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.05
) -> float:
    """
    Poll the asynchronous C{predicate} until it holds.

    @return: when it held (C{time.monotonic}).
    @raise AssertionError: naming C{what} if it did not within C{timeout}
        seconds.
    """
    began = time.monotonic()
    while not await predicate():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        await _sleep(interval)
    return time.monotonic()


def prosodyLinks(snapshot: GraphSnapshot) -> list[ReportedLink]:
    """
    @return: the current links Prosody's report gives.
    """
    return [link for link in snapshot.links if link.reporter == PROSODY]


@attrs.frozen
class Notification:
    """
    One pub-sub event that reached the aggregator's domain.

    @ivar at: when (C{time.monotonic}).
    @ivar sender: the message's C{from}.
    @ivar recipient: its C{to}.
    @ivar type: its C{type}, or L{None}.
    @ivar node: the C{items} node.
    @ivar ids: the ids of its items.
    """

    at: float
    sender: str
    recipient: str
    type: str | None
    node: str | None
    ids: tuple[str | None, ...]


def notificationsIn(message: domish.Element) -> list[Notification]:
    """
    @return: the pub-sub item events in C{message}.
    """
    found = []
    for event in message.elements(NS_PUBSUB_EVENT, "event"):
        for items in event.elements(NS_PUBSUB_EVENT, "items"):
            found.append(
                Notification(
                    time.monotonic(),
                    message.getAttribute("from", ""),
                    message.getAttribute("to", ""),
                    message.getAttribute("type"),
                    items.getAttribute("node"),
                    tuple(i.getAttribute("id") for i in items.elements(NS_PUBSUB_EVENT, "item")),
                )
            )
    return found


@attrs.define
class Crawl:
    """
    A running crawl of Prosody (see L{ProsodyCrawlTests.crawled}).

    @ivar notifications: the pub-sub events that reached the aggregator's
        domain, in order (the list grows).
    @ivar began: when the aggregator started (C{time.monotonic}).
    """

    peer: ProsodyPeer
    agg: RunningNode
    crawler: Crawler
    store: IGraphStore
    notifications: list[Notification]
    began: float


class ProsodyCrawlTests(TestCase):
    """
    Our aggregator crawls Prosody 13 and follows its publications.
    """

    skip = serverInfoSkip()
    timeout = 150

    def setUp(self) -> None:
        """
        Make a directory for Prosody and our nodes.
        """
        requireServerInfo()
        self.base = Path(self.mktemp()).absolute()
        self.base.mkdir(parents=True)

    async def start(self) -> ProsodyPeer:
        """
        Start Prosody publishing server information (self-signed: dialback
        over TLS) with one free loopback address (port 5269, which Prosody
        dials) for each node of ours; build (not start) our nodes, each
        with static routes to Prosody and to the others.

        @return: Prosody.
        """
        certPath, keyPath = selfSigned(self.base / "pki", [PROSODY, SERVICE])
        peer, addresses = await startAmong(
            self.base / "prosody",
            PROSODY,
            [[domain, f"pubsub.{domain}"] for domain in OURS],
            certPath=certPath,
            keyPath=keyPath,
            serverinfo=True,
        )
        self.addCleanup(peer.stop)
        self.assertEqual(peer.version is not None and peer.version.split(".")[0], "13")
        routes = [Route(PROSODY, peer.address, 5269), Route("*." + PROSODY, peer.address, 5269)]
        for domain, address in zip(OURS, addresses, strict=True):
            routes += [Route(domain, address, 5269), Route("*." + domain, address, 5269)]
        self.nodes = {
            domain: RunningNode(self.base, domain, address, s2sPort=5269)
            for domain, address in zip(OURS, addresses, strict=True)
        }
        self.nodes[NODE].build(routes=tuple(routes), publishDelay=0.2)
        self.nodes[OTHER].build(routes=tuple(routes), publishDelay=0.2, optIn=False)
        self.nodes[NEWCOMER].build(routes=tuple(routes), publishDelay=0.2)
        self.nodes[AGGREGATOR].build(
            routes=tuple(routes),
            publishDelay=0.2,
            crawl=True,
            seeds=(PROSODY,),
            crawlRefresh=3600.0,
        )
        return peer

    def startNode(self, domain: str) -> RunningNode:
        """
        Start our node for C{domain}.
        """
        node = self.nodes[domain]
        node.start()
        self.addCleanup(lambda: node.stop() if node.service.running else None)
        return node

    async def prosodyItem(self, node: RunningNode) -> ServerInfo | None:
        """
        C{node} reads Prosody's item over s2s (as its domain).

        @return: the item, parsed, or L{None} while there is none.
        """
        request = RawRequest(
            SERVICE,
            node.domain,
            "get",
            f"<pubsub xmlns='{NS_PUBSUB}'><items node='serverinfo' max_items='1'/></pubsub>",
        )
        try:
            items = itemsOf(await node.domainHost.request(request))
        except Exception as e:  # not there yet: item-not-found
            _log.info("Prosody's item is not readable yet: {e}", e=e)
            return None
        return parsePayload(payloadOf(items[0])) if len(items) == 1 else None

    async def crawled(self) -> Crawl:
        """
        Start Prosody and link C{node.example} and C{b.example} to it; once
        its item names C{node.example}, start the aggregator, recording the
        pub-sub events that reach it, and wait until it has fetched Prosody
        and tried to subscribe.
        """
        peer = await self.start()
        node, other = self.startNode(NODE), self.startNode(OTHER)
        for each in (node, other):
            await each.disco.requestInfo(JID(PROSODY), sender=JID(each.domain))

        async def itemComplete() -> bool:
            item = await self.prosodyItem(node)
            remotes = item.domains[0].remotes if item is not None and item.domains else ()
            return RemoteDomain(NODE) in remotes and RemoteDomain(None) in remotes

        try:
            await until(itemComplete, 45, "Prosody's item naming node.example", interval=1.0)
        except AssertionError as e:
            self.fail(f"{e}\n{peer.logTail(60)}")

        began = time.monotonic()
        agg = self.startNode(AGGREGATOR)
        crawler = agg.service.crawler
        assert isinstance(crawler, Crawler)
        store = agg.service.graph
        notifications: list[Notification] = []
        agg.domainHost.xmlstream.addObserver(
            "/message", lambda m: notifications.extend(notificationsIn(m)), 200
        )

        async def facts(domain: str) -> DomainFacts | None:
            record = await store.domain(domain)
            return None if record is None else record.facts

        async def prosodyFetched() -> bool:
            status = crawler.status(PROSODY)
            return (
                await facts(PROSODY) is not None
                and status is not None
                and status.subscription is not None
            )

        await until(prosodyFetched, 20, "the aggregator's fetch of Prosody")
        _log.info("Prosody crawled in {s:.2f} s", s=time.monotonic() - began)

        return Crawl(peer, agg, crawler, store, notifications, began)

    async def test_crawlProsody(self) -> None:
        """
        From the seed C{prosody.example}, the aggregator finds the item by
        the form, reads it (C{node.example} named, C{b.example} anonymous,
        no directions), records the software version and subscribes; the
        module names the aggregator too. A newcomer's link to Prosody
        reaches the graph through the notification of Prosody's next
        publication.
        """
        crawl = await self.crawled()
        peer, agg, crawler, store = crawl.peer, crawl.agg, crawl.crawler, crawl.store
        notifications, began = crawl.notifications, crawl.began

        async def facts(domain: str) -> DomainFacts | None:
            record = await store.domain(domain)
            return None if record is None else record.facts

        prosody = await facts(PROSODY)
        assert prosody is not None
        self.assertEqual(prosody.status, "publishes", prosody)
        self.assertIs(prosody.consents, True)
        self.assertIs(prosody.publishes, True)
        self.assertEqual(prosody.softwareName, "Prosody")
        self.assertEqual((prosody.softwareVersion or "").split(".")[0], "13", prosody)
        steps = {step.step: step for step in prosody.steps}
        form = steps["serverinfo form"]
        self.assertTrue(form.ok, prosody.steps)
        self.assertEqual(form.detail, f"{FORM_FIELD} names node serverinfo on {SERVICE}")
        self.assertTrue(steps[f"items {SERVICE} node serverinfo"].ok, prosody.steps)
        self.assertNotIn("disco#items", steps)

        status = crawler.status(PROSODY)
        assert status is not None
        self.assertEqual(
            (status.subscription, status.service, status.node),
            ("subscribed", SERVICE, "serverinfo"),
        )

        # The report: node.example named, b.example anonymous, no
        # directions; node.example is named in the view once the crawler
        # has found that it consents.
        async def reportRead() -> bool:
            view = viewGraph(await store.graph())
            labels = {n.id: n.label for n in view.nodes}
            return labels.get(NODE) == NODE and any(
                PROSODY in (e.source, e.target) and labels.get(e.target) is None for e in view.edges
            )

        await until(reportRead, 20, "node.example named and an anonymous peer in the view")
        snapshot = await store.graph()
        links = prosodyLinks(snapshot)
        self.assertIn(NODE, [link.remote for link in links])
        self.assertNotIn(OTHER, [link.remote for link in links])
        self.assertGreaterEqual([link.remote for link in links].count(None), 1, links)
        self.assertEqual({link.directions for link in links}, {()}, links)
        view = viewGraph(snapshot)
        nodes = {n.id: n for n in view.nodes}
        self.assertEqual(nodes[PROSODY].label, PROSODY)
        self.assertIs(nodes[PROSODY].publishes, True)
        neighbours = [
            e.target if e.source == PROSODY else e.source
            for e in view.edges
            if PROSODY in (e.source, e.target)
        ]
        self.assertIn(NODE, neighbours)
        anonymous = [n for n in neighbours if nodes[n].label is None]
        self.assertTrue(anonymous, view.edges)
        self.assertNotIn(OTHER, nodes)
        # node.example reports Prosody too (it consents): a confirmed edge.
        (edge,) = [e for e in view.edges if {e.source, e.target} == {PROSODY, NODE}]
        self.assertTrue(edge.confirmed, edge)

        # Interop both ways: the module, asking the aggregator's disco#info,
        # names it in its own item.
        async def namesAggregator() -> bool:
            item = await self.prosodyItem(agg)
            return item is not None and RemoteDomain(AGGREGATOR) in item.domains[0].remotes

        await until(namesAggregator, 20, "Prosody's item naming agg.example", interval=0.5)

        # A link change at Prosody: the newcomer links to it. The crawler's
        # refresh is an hour away, so only a notification can bring it.
        fetchedAt = crawler.status(PROSODY).lastFetch  # type: ignore[union-attr]
        before = len(prosodyLinks(await store.graph()))
        newcomer = self.startNode(NEWCOMER)
        linked = time.monotonic()
        await newcomer.disco.requestInfo(JID(PROSODY), sender=JID(NEWCOMER))

        async def grew() -> bool:
            return len(prosodyLinks(await store.graph())) > before

        async def named() -> bool:
            return NEWCOMER in [link.remote for link in prosodyLinks(await store.graph())]

        async def shown() -> bool:
            view = viewGraph(await store.graph())
            return any(
                {e.source, e.target} == {PROSODY, NEWCOMER} for e in view.edges
            ) and NEWCOMER in {n.label for n in view.nodes}

        anonymousAt = await until(grew, 30, "the newcomer's link in Prosody's report")
        namedAt = await until(named, 30, "the newcomer named in Prosody's report")
        shownAt = await until(shown, 30, "the newcomer named in the view")
        _log.info(
            "Prosody link change to our graph (publication interval {interval:g} s): "
            "new peer stored {anonymous:.2f} s after the link, named in the report after "
            "{named:.2f} s, named in the view after {shown:.2f} s",
            interval=peer.serverinfoInterval,
            anonymous=anonymousAt - linked,
            named=namedAt - linked,
            shown=shownAt - linked,
        )

        # The notifications from Prosody: from the service, to our bare
        # domain, node serverinfo, item current, type headline; one of them
        # (sent after the link) brought the change. (node.example, found in
        # the report, is a publisher too: it notifies from its own service.)
        def fromProsody() -> list[Notification]:
            return [n for n in notifications if n.sender.endswith(PROSODY)]

        prosodys = fromProsody()
        self.assertEqual(
            {(n.sender, n.recipient, n.node, n.ids) for n in prosodys},
            {(SERVICE, AGGREGATOR, "serverinfo", ("current",))},
            prosodys,
        )
        self.assertTrue([n for n in prosodys if linked < n.at <= anonymousAt], prosodys)
        gaps = [b.at - a.at for a, b in zip(prosodys, prosodys[1:], strict=False)]
        _log.info(
            "{count} notifications from Prosody (type {types}), {gap:.2f} s apart on average; "
            "first {first:.2f} s after the aggregator started",
            count=len(prosodys),
            types=sorted({str(n.type) for n in prosodys}),
            gap=sum(gaps) / len(gaps) if gaps else 0.0,
            first=prosodys[0].at - began,
        )

        # Prosody publishes every interval, its peers in any order; an
        # unchanged publication is no change in the store.
        events = await store.history(PROSODY)
        await until(
            lambda: succeed(len(fromProsody()) >= len(prosodys) + 2),
            4 * peer.serverinfoInterval + 5,
            "two more publications",
        )
        await _sleep(0.5)
        self.assertEqual(await store.history(PROSODY), events)
        after = crawler.status(PROSODY)
        assert after is not None
        self.assertEqual(after.lastFetch, fetchedAt, "Prosody was fetched again")
        self.assertEqual(after.subscription, "subscribed")

    async def test_prosodyRestart(self) -> None:
        """
        Prosody keeps our subscription across a restart (mod_pubsub stores
        a node's subscribers with the node): its publications after the
        restart still reach the aggregator, which takes the new report
        without fetching again. That report lacks C{node.example} and
        C{b.example}, whose streams the restart ended (it names at most the
        aggregator, whose own publisher may link to Prosody's host again;
        the module counts the streams of the host only, not those of its
        pub-sub component, which sends us the notifications).
        """
        crawl = await self.crawled()
        peer, agg, crawler, store = crawl.peer, crawl.agg, crawl.crawler, crawl.store
        status = crawler.status(PROSODY)
        assert status is not None
        self.assertEqual(status.subscription, "subscribed")

        async def reported() -> bool:
            return NODE in [link.remote for link in prosodyLinks(await store.graph())]

        await until(reported, 20, "Prosody's report with node.example in the store")
        fetchedAt = status.lastFetch
        await peer.restart()
        restarted = time.monotonic()

        def since() -> list[Notification]:
            return [n for n in crawl.notifications if n.sender == SERVICE and n.at > restarted]

        async def dropped() -> bool:
            return NODE not in [link.remote for link in prosodyLinks(await store.graph())]

        try:
            firstAt = await until(lambda: succeed(bool(since())), 30, "a notification")
            droppedAt = await until(dropped, 10, "Prosody's new report in the store")
        except AssertionError as e:
            self.fail(f"after Prosody's restart: {e}\n{peer.logTail(60)}")
        _log.info(
            "Prosody restarted: first notification {first:.2f} s, its report in our graph "
            "{dropped:.2f} s after the restart began (the module publishes 10 s after start)",
            first=firstAt - restarted,
            dropped=droppedAt - restarted,
        )
        self.assertEqual(
            {(n.recipient, n.node, n.ids) for n in since()},
            {(AGGREGATOR, "serverinfo", ("current",))},
        )
        item = await self.prosodyItem(agg)
        assert item is not None
        self.assertEqual([d.name for d in item.domains], [PROSODY])
        self.assertLessEqual({r.name for r in item.domains[0].remotes}, {AGGREGATOR, None})
        remotes = {link.remote for link in prosodyLinks(await store.graph())}
        self.assertLessEqual(remotes, {AGGREGATOR, None})
        kinds = [event.kind for event in await store.history(PROSODY)]
        self.assertIn("link-removed", kinds)
        after = crawler.status(PROSODY)
        assert after is not None
        self.assertEqual(after.lastFetch, fetchedAt, "Prosody was fetched again")
