# -*- test-case-name: tests.test_crawler -*-
"""
Tests for L{xmppnetgraph.crawler.crawler}: the crawl loop on a L{Clock},
the node's real L{QueryScheduler}, and a real L{GraphStore} in a SQLite
file; discoveries and subscriptions are scripted.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.error import StanzaError
from twisted.words.xish import domish
from zope.interface.verify import verifyObject

from tests.nodes import waitFor
from tests.test_feed import aLink
from xmppnetgraph.crawler.crawler import Crawler, CrawlSettings
from xmppnetgraph.crawler.discovery import Discovery
from xmppnetgraph.error import InvalidDomainName, StorageError
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.interfaces import ICrawler
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.model import CrawlQueue, DiscoveryStep, DomainFacts, GraphSnapshot
from xmppnetgraph.scheduler import QueryScheduler
from xmppnetgraph.serverinfo.payload import (
    DomainInfo,
    RemoteDomain,
    ServerInfo,
    buildPayload,
)
from xmppnetgraph.store.database import openDatabase
from xmppnetgraph.store.graph import GraphStore

T0 = 1_700_000_000.0


def publishes(domain: str, *remotes: RemoteDomain, consents: bool = True) -> Discovery:
    """
    @return: the discovery of a domain that publishes C{remotes}.
    """
    return Discovery(
        domain=domain,
        facts=DomainFacts(
            "publishes",
            True,
            publishes=True,
            consents=consents,
            steps=(DiscoveryStep("disco#info", True, "lists urn:xmpp:serverinfo:0"),),
        ),
        service=f"pubsub.{domain}",
        node="serverinfo",
        report=tuple(remotes),
        truncated=False,
        ignoredDomains=(),
    )


def outcome(domain: str, status: str, reachable: bool = True) -> Discovery:
    """
    @return: the discovery of a domain that ended with C{status}.
    """
    return Discovery(
        domain=domain,
        facts=DomainFacts(status, reachable, consents=False if reachable else None),
        service=None,
        node=None,
        report=None,
        truncated=False,
        ignoredDomains=(),
    )


def item(domain: str, *remotes: RemoteDomain) -> domish.Element:
    """
    @return: an C{item} element with the XEP-0485 payload of C{domain}.
    """
    element = domish.Element(("http://jabber.org/protocol/pubsub#event", "item"))
    element["id"] = "current"
    element.addChild(buildPayload(ServerInfo((DomainInfo(domain, remotes),))))
    return element


class FakeSubscriber:
    """
    Records subscriptions; answers with C{answer}, or fails with it.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.answer: str | Exception = "subscribed"

    def subscribeTo(self, service: str, node: str) -> defer.Deferred[str]:
        self.calls.append((service, node))
        if isinstance(self.answer, Exception):
            return defer.fail(self.answer)
        return defer.succeed(self.answer)


class CrawlerTests(TestCase):
    """
    L{Crawler} on a L{Clock}, with scripted discoveries.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.dataDir = Path(self.mktemp()).absolute()
        self.dataDir.mkdir(parents=True)
        self.database = openDatabase(None, self.dataDir, reactor)
        self.addCleanup(self.database.close)
        self.feed = ChangeFeed()
        self.store = GraphStore(self.database, self.feed, self.clock)
        self.linkTable = LinkTable(self.feed)
        self.scheduler = QueryScheduler(self.clock, maxConcurrent=4, startInterval=0.0)
        self.addCleanup(self.scheduler.stop)
        self.subscriber = FakeSubscriber()
        self.answers: dict[str, Callable[[], Discovery]] = {}
        self.asked: list[str] = []
        self.excludedNames: set[str] = set()

    def discover(self, domain: str) -> defer.Deferred[Discovery]:
        self.asked.append(domain)
        answer = self.answers.get(domain)
        if answer is None:
            return defer.succeed(outcome(domain, "unreachable", reachable=False))
        return defer.succeed(answer())

    def makeCrawler(
        self,
        *seeds: str,
        directTLS: Callable[[str], defer.Deferred[bool | None]] | None = None,
        **settings: float,
    ) -> Crawler:
        crawler = Crawler(
            clock=self.clock,
            scheduler=self.scheduler,
            discover=self.discover,
            store=self.store,
            feed=self.feed,
            linkTable=self.linkTable,
            subscriber=self.subscriber,
            localDomains=("aggregator.example", "pubsub.aggregator.example"),
            seeds=seeds,
            excluded=self.excludedNames.__contains__,
            settings=CrawlSettings(**settings),  # type: ignore[arg-type]
            directTLS=directTLS,
            rng=random.Random(4),
        )
        crawler.startService()
        self.addCleanup(crawler.stopService)
        return crawler

    async def settle(self, crawler: Crawler, seconds: float = 0.0) -> None:
        """
        Advance the clock by C{seconds}, then let every fetch that became
        due finish (their store writes run in the database's thread).
        """
        await settle(self.clock, crawler, seconds)

    async def snapshot(self) -> GraphSnapshot:
        return await self.store.graph()

    def test_interface(self) -> None:
        """
        L{Crawler} provides L{ICrawler}.
        """
        self.assertTrue(verifyObject(ICrawler, self.makeCrawler()))

    async def test_queue(self) -> None:
        """
        L{Crawler.queue} counts the fetches in flight, the domains due that
        wait for a slot, and those due later (a failed fetch backs off).
        """
        held: dict[str, defer.Deferred[Discovery]] = {}

        def discover(domain: str) -> defer.Deferred[Discovery]:
            held[domain] = defer.Deferred()
            return held[domain]

        self.discover = discover  # type: ignore[method-assign]
        seeds = [f"s{n}.example" for n in range(6)]
        crawler = self.makeCrawler(*seeds, maxInFlight=2)
        await waitFor(lambda: len(held) == 2)
        self.assertEqual(crawler.queue(), CrawlQueue(pending=4, inFlight=2, scheduled=0))
        first = sorted(held)[0]
        held.pop(first).callback(outcome(first, "unreachable", reachable=False))
        await waitFor(lambda: len(held) == 2)
        self.assertEqual(crawler.queue(), CrawlQueue(pending=3, inFlight=2, scheduled=1))

    async def test_seedsAndFollow(self) -> None:
        """
        A seed is fetched; the named peers of its report are fetched next,
        and so are theirs; anonymous peers are stored but followed nowhere.
        """
        self.answers["a.example"] = lambda: publishes(
            "a.example",
            RemoteDomain("b.example", ("outgoing",)),
            RemoteDomain(None, ("incoming",)),
        )
        self.answers["b.example"] = lambda: publishes(
            "b.example", RemoteDomain("a.example", ("incoming",)), RemoteDomain("c.example")
        )
        self.answers["c.example"] = lambda: outcome("c.example", "no-consent")
        crawler = self.makeCrawler("a.example")
        await self.settle(crawler)
        self.assertEqual(self.asked, ["a.example", "b.example", "c.example"])
        snapshot = await self.snapshot()
        self.assertEqual(
            sorted((link.reporter, link.remote or "", link.directions) for link in snapshot.links),
            [
                ("a.example", "", ("incoming",)),
                ("a.example", "b.example", ("outgoing",)),
                ("b.example", "a.example", ("incoming",)),
                ("b.example", "c.example", ()),
            ],
        )
        record = await self.store.domain("c.example")
        assert record is not None and record.facts is not None
        self.assertEqual(record.facts.status, "no-consent")
        self.assertEqual(
            self.subscriber.calls,
            [("pubsub.a.example", "serverinfo"), ("pubsub.b.example", "serverinfo")],
        )
        status = crawler.status("b.example")
        assert status is not None
        self.assertEqual(
            (status.state, status.source, status.subscription, status.failures),
            ("waiting", "report", "subscribed", 0),
        )

    async def test_refreshIntervals(self) -> None:
        """
        A subscribed publisher is fetched again after C{refresh}; one whose
        subscription was refused after C{poll}; an unreachable domain backs
        off exponentially, with jitter, and success resets it.
        """
        self.answers["sub.example"] = lambda: publishes("sub.example")
        crawler = self.makeCrawler("sub.example", refresh=1000.0, poll=100.0, backoffBase=10.0)
        await self.settle(crawler)
        status = crawler.status("sub.example")
        assert status is not None and status.nextFetch is not None
        self.assertTrue(900 <= status.nextFetch - T0 <= 1000, status.nextFetch - T0)

        self.subscriber.answer = StanzaError("forbidden")
        self.answers["poll.example"] = lambda: publishes("poll.example")
        crawler.submit("poll.example")
        await self.settle(crawler)
        status = crawler.status("poll.example")
        assert status is not None and status.nextFetch is not None
        self.assertEqual(status.subscription, "refused: forbidden")
        self.assertTrue(90 <= status.nextFetch - T0 <= 100, status.nextFetch - T0)

        crawler.submit("down.example")
        await self.settle(crawler)
        delays = []
        for _ in range(4):
            status = crawler.status("down.example")
            assert status is not None and status.nextFetch is not None
            self.assertEqual(status.state, "backoff")
            delay = status.nextFetch - self.clock.seconds()
            delays.append(delay)
            await self.settle(crawler, delay)
        for n, delay in enumerate(delays):
            self.assertTrue(10 * 2**n * 0.5 <= delay <= 10 * 2**n, delays)
        self.answers["down.example"] = lambda: outcome("down.example", "no-consent")
        status = crawler.status("down.example")
        assert status is not None and status.nextFetch is not None
        await self.settle(crawler, status.nextFetch - self.clock.seconds())
        status = crawler.status("down.example")
        assert status is not None
        self.assertEqual((status.state, status.failures), ("waiting", 0))

    async def test_quietSubscription(self) -> None:
        """
        A subscription that delivers nothing for half a refresh interval
        is quiet: the publisher is polled until a notification comes again.
        """
        self.answers["a.example"] = lambda: publishes("a.example")
        crawler = self.makeCrawler("a.example", refresh=1000.0, poll=100.0)
        await self.settle(crawler)

        def delay() -> float:
            status = crawler.status("a.example")
            assert status is not None and status.nextFetch is not None
            return status.nextFetch - self.clock.seconds()

        self.assertGreater(delay(), 900)
        await self.settle(crawler, delay())
        self.assertLessEqual(delay(), 100)
        await self.settle(crawler, delay())
        self.assertLessEqual(delay(), 100)
        crawler.notified("pubsub.a.example", "serverinfo", [item("a.example")])
        await self.settle(crawler, delay())
        self.assertGreater(delay(), 900)

    async def test_submit(self) -> None:
        """
        A submitted domain goes before queued refreshes; an invalid name is
        refused with L{InvalidDomainName}; an excluded one is not accepted;
        one fetched a moment ago is not fetched again.
        """
        self.scheduler = QueryScheduler(self.clock, maxConcurrent=1, startInterval=0.0)
        self.addCleanup(self.scheduler.stop)
        crawler = self.makeCrawler(*(f"s{n}.example" for n in range(5)), maxInFlight=1)
        result = crawler.submit("Submitted.Example")
        self.assertEqual((result.domain, result.accepted), ("submitted.example", True))
        await self.settle(crawler)
        self.assertEqual(self.asked[:2], ["s0.example", "submitted.example"])
        self.assertRaises(InvalidDomainName, crawler.submit, "not a domain")
        self.assertRaises(InvalidDomainName, crawler.submit, "127.0.0.1")
        self.excludedNames.add("private.example")
        result = crawler.submit("private.example")
        self.assertFalse(result.accepted)
        self.assertIn("exclusion list", result.message)
        asked = len(self.asked)
        result = crawler.submit("submitted.example")
        self.assertTrue(result.accepted)
        self.assertIn("fetched", result.message)
        await self.settle(crawler)
        self.assertEqual(len(self.asked), asked)

    async def test_consentWithdrawn(self) -> None:
        """
        A publisher that drops urn:xmpp:serverinfo:0 loses its links from
        the current graph (history keeps them); one that is only
        unreachable keeps them until they go stale.
        """
        self.answers["a.example"] = lambda: publishes("a.example", RemoteDomain("b.example"))
        crawler = self.makeCrawler("a.example", refresh=100.0)
        await self.settle(crawler)
        self.assertEqual(len((await self.snapshot()).links), 1)
        self.answers["a.example"] = lambda: outcome("a.example", "unreachable", reachable=False)
        await self.settle(crawler, 100)
        self.assertEqual(len((await self.snapshot()).links), 1)
        status = crawler.status("a.example")
        assert status is not None and status.nextFetch is not None
        self.answers["a.example"] = lambda: outcome("a.example", "no-consent")
        await self.settle(crawler, status.nextFetch - self.clock.seconds())
        self.assertEqual((await self.snapshot()).links, ())
        before = await self.store.graph(at=T0 + 50)
        self.assertEqual(len(before.links), 1)

    async def test_caps(self) -> None:
        """
        A report naming more new domains than a reporter may add per hour
        queues only that many; the rest are stored as anonymous links and
        cut once in the log; excluded names are left out; the report is
        cut at C{maxReportDomains}.
        """
        self.excludedNames.add("hidden.example")
        remotes = [RemoteDomain(f"n{n}.example") for n in range(300)]
        remotes.append(RemoteDomain("hidden.example"))
        self.answers["hostile.example"] = lambda: publishes("hostile.example", *remotes)
        crawler = self.makeCrawler(
            "hostile.example", maxNewDomainsPerReporter=50, maxReportDomains=250
        )
        await self.settle(crawler)
        self.assertEqual(len(self.asked), 51)
        snapshot = await self.snapshot()
        named = [link for link in snapshot.links if link.remote is not None]
        anonymous = [link for link in snapshot.links if link.remote is None]
        self.assertEqual((len(named), len(anonymous)), (50, 200))
        self.assertNotIn("hidden.example", {link.remote for link in snapshot.links})
        self.assertIsNone(crawler.status("n60.example"))

    async def test_maxDomains(self) -> None:
        """
        Beyond C{maxDomains}, newly named domains are not crawled and a
        submission is not accepted.
        """
        self.answers["a.example"] = lambda: publishes(
            "a.example", *(RemoteDomain(f"n{n}.example") for n in range(10))
        )
        crawler = self.makeCrawler("a.example", maxDomains=4)
        await self.settle(crawler)
        self.assertEqual(len(self.asked), 4)
        self.assertFalse(crawler.submit("late.example").accepted)

    async def test_maxDomainsSaidOnce(self) -> None:
        """
        Reaching C{maxDomains} is logged once however many domains are
        refused and however many writes follow, and says nothing about the
        store (the cap and the full store's pause once shared a flag: each
        write logged "the store has room again" and re-armed the warning).
        """
        self.answers["a.example"] = lambda: publishes(
            "a.example", *(RemoteDomain(f"n{n}.example") for n in range(10))
        )
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        crawler = self.makeCrawler("a.example", maxDomains=4)
        await self.settle(crawler)
        self.assertFalse(crawler.submit("late.example").accepted)
        await self.settle(crawler, CrawlSettings().refresh)
        self.assertFalse(crawler.submit("later.example").accepted)
        formats = [e.get("log_format", "") for e in events]
        self.assertEqual(len([f for f in formats if "domains known" in f]), 1)
        self.assertEqual([f for f in formats if "room again" in f], [])

    async def test_storeErrorOnce(self) -> None:
        """
        A store that fails (not full: unavailable) is not the domains'
        fault: it is logged once, each domain is fetched again later
        without a failure counted, and "storing works again" once a write
        succeeds.
        """
        for n in range(3):
            self.answers[f"s{n}.example"] = lambda n=n: publishes(f"s{n}.example")
        failing = [True]
        recordFetch = self.store.recordFetch

        def flaky(domain: str, facts: Any) -> defer.Deferred[bool]:
            if failing[0]:
                return defer.fail(StorageError("the database is unavailable (test)"))
            return recordFetch(domain, facts)

        self.patch(self.store, "recordFetch", flaky)
        warnings = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        crawler = self.makeCrawler("s0.example", "s1.example", "s2.example")
        await self.settle(crawler)
        said = [e for e in warnings if "storing" in e.get("log_format", "")]
        self.assertEqual(len(said), 1)
        self.assertEqual(crawler.queue().scheduled, 3)
        failing[0] = False
        await self.settle(crawler, CrawlSettings().backoffBase)
        self.assertEqual(len(self.asked), 6)
        self.assertEqual(
            len([e for e in warnings if "storing works again" in e.get("log_format", "")]), 1
        )

    async def test_notifications(self) -> None:
        """
        A notification from the service and node we subscribed to for a
        consenting domain updates its report; one from anywhere else, or
        naming another domain, changes nothing.
        """
        self.answers["a.example"] = lambda: publishes("a.example", RemoteDomain("b.example"))
        crawler = self.makeCrawler("a.example")
        await self.settle(crawler)
        crawler.notified("evil.example", "serverinfo", [item("a.example")])
        crawler.notified("pubsub.a.example", "other", [item("a.example")])
        crawler.notified("pubsub.a.example", "serverinfo", [item("b.example")])
        await self.settle(crawler)
        self.assertEqual(len((await self.snapshot()).links), 1)
        crawler.notified(
            "pubsub.a.example",
            "serverinfo",
            [item("a.example", RemoteDomain("b.example"), RemoteDomain("c.example"))],
        )
        for _ in range(20):
            await deferLater()
        self.assertEqual(
            {link.remote for link in (await self.snapshot()).links}, {"b.example", "c.example"}
        )
        # Once a.example no longer consents, its notifications count no more.
        self.answers["a.example"] = lambda: outcome("a.example", "no-consent")
        self.clock.advance(61)
        self.assertTrue(crawler.submit("a.example").accepted)
        await self.settle(crawler)
        self.assertEqual((await self.snapshot()).links, ())
        crawler.notified(
            "pubsub.a.example", "serverinfo", [item("a.example", RemoteDomain("b.example"))]
        )
        for _ in range(20):
            await deferLater()
        self.assertEqual((await self.snapshot()).links, ())

    async def test_linksAndRestart(self) -> None:
        """
        Our own links' peers are crawled; after a restart, the known
        domains are fetched again (and subscribed to again).
        """
        self.answers["a.example"] = lambda: publishes("a.example", RemoteDomain("b.example"))
        crawler = self.makeCrawler()
        self.linkTable.add(aLink("a.example"))
        await self.settle(crawler)
        self.assertEqual(self.asked, ["a.example", "b.example"])
        await crawler.stopService()
        self.asked.clear()
        self.subscriber.calls.clear()
        again = self.makeCrawler(quietStart=10.0)
        for _ in range(20):
            await deferLater()
        # b.example, known from the store only, waits for its turn within
        # quietStart (a.example is linked: it is fetched at once).
        status = again.status("b.example")
        assert status is not None and status.nextFetch is not None
        self.assertEqual((status.state, status.source), ("waiting", "store"))
        self.assertTrue(0 < status.nextFetch - self.clock.seconds() <= 10, status)
        self.assertEqual(self.asked, ["a.example"])
        await self.settle(again, 10)
        self.assertEqual(sorted(self.asked), ["a.example", "b.example"])
        self.assertEqual(self.subscriber.calls, [("pubsub.a.example", "serverinfo")])

    async def test_publisherRestart(self) -> None:
        """
        A new stream from the service of a publisher we subscribed to (it
        may have restarted and lost our subscription) has the publisher
        fetched, and so subscribed to, again; not within C{recentFetch} of
        the last fetch.
        """
        self.answers["a.example"] = lambda: publishes("a.example")
        crawler = self.makeCrawler("a.example", recentFetch=60.0, refresh=10_000.0)
        await self.settle(crawler)
        self.linkTable.add(aLink("pubsub.a.example"))
        await self.settle(crawler)
        self.assertEqual(self.subscriber.calls, [("pubsub.a.example", "serverinfo")])
        self.clock.advance(61)
        # Our own new stream to the service is no sign of a restart.
        outgoing = attrs.evolve(aLink("pubsub.a.example"), direction="outgoing")
        self.linkTable.add(outgoing)
        await self.settle(crawler)
        self.assertEqual(self.subscriber.calls, [("pubsub.a.example", "serverinfo")])
        self.linkTable.add(aLink("pubsub.a.example"))
        await self.settle(crawler)
        self.assertEqual(self.subscriber.calls, [("pubsub.a.example", "serverinfo")] * 2)
        # The service of a known domain is not crawled as a domain of its
        # own (it is folded into it on the graph).
        self.assertEqual(self.asked, ["a.example"] * 2)
        self.assertIsNone(crawler.status("pubsub.a.example"))

    async def test_directTLS(self) -> None:
        """
        The direct-TLS lookup's answer goes with the facts of a domain that
        answered; an unreachable one is not looked up.
        """
        looked: list[str] = []

        def lookup(domain: str) -> defer.Deferred[bool | None]:
            looked.append(domain)
            return defer.succeed(True)

        self.answers["a.example"] = lambda: publishes("a.example")
        crawler = self.makeCrawler("a.example", "down.example", directTLS=lookup)
        await self.settle(crawler)
        record = await self.store.domain("a.example")
        assert record is not None and record.facts is not None
        self.assertIs(record.facts.directTLS, True)
        self.assertEqual(looked, ["a.example"])

    async def test_stale(self) -> None:
        """
        Domains not seen within C{staleAfter} are marked stale and leave the
        current graph.
        """
        self.answers["a.example"] = lambda: publishes("a.example", RemoteDomain("b.example"))
        crawler = self.makeCrawler("a.example", staleAfter=400.0, refresh=10_000.0)
        await self.settle(crawler)
        for _ in range(5):
            await self.settle(crawler, 100)
        for _ in range(20):
            await deferLater()
        record = await self.store.domain("a.example")
        assert record is not None
        self.assertTrue(record.stale)


async def settle(clock: Clock, crawler: Crawler, seconds: float = 0.0) -> None:
    """
    Advance C{clock} by C{seconds}, then let every fetch of C{crawler} that
    became due finish (their store writes run in the database's thread).
    """
    clock.advance(seconds)
    for _ in range(200):
        while crawler._inFlight:
            await defer.DeferredList(list(crawler._inFlight.values()), consumeErrors=True)
            clock.advance(0)
        await deferLater()
        clock.advance(0)
        if not crawler._inFlight:
            return
    raise AssertionError("the crawler did not settle")


def deferLater() -> defer.Deferred[None]:
    """
    @return: a L{Deferred} that fires on the real reactor's next turn.
    """
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(0.001, d.callback, None)  # type: ignore[attr-defined]
    return d
