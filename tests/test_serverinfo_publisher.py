# -*- test-case-name: tests.test_serverinfo_publisher -*-
"""
Tests for L{xmppnetgraph.serverinfo.publisher}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from wokkel.generic import parseXml

from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.model import Link
from xmppnetgraph.scheduler import QueryScheduler
from xmppnetgraph.serverinfo.consent import ConsentChecker
from xmppnetgraph.serverinfo.payload import parsePayload
from xmppnetgraph.serverinfo.publisher import ServerInfoPublisher

LOCAL = frozenset({"example.org", "pubsub.example.org"})


class PublisherTests(SynchronousTestCase):
    """
    The publisher turns link-table changes into (debounced, deduplicated)
    publishes, naming only consenting peers.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.feed = ChangeFeed()
        self.table = LinkTable(self.feed)
        self.features: dict[str, set[str]] = {}
        self.queries: list[str] = []
        self.published: list[str] = []
        self.publishResult: Any = None

        def query(domain: str) -> defer.Deferred[set[str]]:
            self.queries.append(domain)
            return defer.succeed(self.features.get(domain, set()))

        def publish(payload: str) -> defer.Deferred[None]:
            self.published.append(payload)
            if self.publishResult is not None:
                return self.publishResult
            return defer.succeed(None)

        self.consent = ConsentChecker(query, QueryScheduler(self.clock, startInterval=0), self.feed)
        self.publisher = ServerInfoPublisher(
            self.feed,
            self.table,
            self.consent,
            publish,
            "example.org",
            LOCAL,
            self.clock,
            delay=2,
            refresh=300,
            retryDelay=30,
        )
        self.publisher.startService()
        self.addCleanup(self.publisher.stopService)

    def link(self, domain: str, direction: str = "incoming") -> Link:
        link = Link(domain, "example.org", direction, "dialback", "TLSv1.3", False, 0.0, 0.0)  # type: ignore[arg-type]
        self.table.add(link)
        return link

    def remotes(self, index: int = -1) -> list[tuple[str | None, tuple[str, ...]]]:
        info = parsePayload(parseXml(self.published[index].encode("utf-8")))
        return [(r.name, r.connections) for r in info.domains[0].remotes]

    def test_firstPublishAfterDelay(self) -> None:
        """
        The initial state is published after the debounce delay, not at once.
        """
        self.assertEqual(self.published, [])
        self.clock.advance(2)
        self.assertEqual(len(self.published), 1)
        self.assertEqual(self.remotes(), [])

    def test_debounced(self) -> None:
        """
        A burst of link changes within the delay gives one publish.
        """
        self.clock.advance(2)
        self.features["a.example"] = {"urn:xmpp:serverinfo:0"}
        self.link("a.example")
        self.link("a.example", "outgoing")
        self.link("b.example")
        self.clock.advance(1)
        self.assertEqual(len(self.published), 1)
        self.clock.advance(1)
        self.assertEqual(len(self.published), 2)
        self.assertEqual(
            self.remotes(), [("a.example", ("incoming", "outgoing")), (None, ("incoming",))]
        )

    def test_namedOnlyAfterConsent(self) -> None:
        """
        A peer is anonymous until its consent is known; the answer arriving
        later triggers a republish that names it.
        """
        pending: defer.Deferred[set[str]] = defer.Deferred()
        self.consent = ConsentChecker(
            lambda d: pending, QueryScheduler(self.clock, startInterval=0), self.feed
        )
        self.publisher.stopService()
        self.publisher = ServerInfoPublisher(
            self.feed,
            self.table,
            self.consent,
            lambda p: defer.succeed(self.published.append(p)),
            "example.org",
            LOCAL,
            self.clock,
        )
        self.publisher.startService()
        self.link("c.example")
        self.clock.advance(2)
        self.assertEqual(self.remotes(), [(None, ("incoming",))])
        pending.callback({"urn:xmpp:serverinfo:0"})
        self.clock.advance(2)
        self.assertEqual(self.remotes(), [("c.example", ("incoming",))])

    def test_noIdenticalRepublish(self) -> None:
        """
        Changes that do not alter the item (a link that comes and goes, the
        periodic refresh) publish nothing.
        """
        self.link("a.example")
        self.clock.advance(2)
        count = len(self.published)
        link = self.link("b.example", "outgoing")
        self.table.remove(link)
        self.clock.advance(2)
        self.clock.advance(300)
        self.clock.advance(2)
        self.assertEqual(len(self.published), count)

    def test_ownDomainsNeverListed(self) -> None:
        """
        Streams with our own domains (e.g. to our pubsub host) are not peers.
        """
        self.link("pubsub.example.org")
        self.link("a.example")
        self.clock.advance(2)
        self.assertEqual(self.remotes(), [(None, ("incoming",))])

    def test_retryAfterFailure(self) -> None:
        """
        A failed publish is retried after C{retryDelay}, and a later success
        is recorded.
        """
        self.publishResult = defer.fail(RuntimeError("disk full"))
        self.clock.advance(2)
        self.assertEqual(len(self.published), 1)
        self.assertIsNone(self.publisher.lastPublished)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.publishResult = None
        self.clock.advance(29)
        self.assertEqual(len(self.published), 1)
        self.clock.advance(1)
        self.assertEqual(len(self.published), 2)
        self.assertEqual(self.publisher.lastPublished, 32)

    def test_restartDoesNotRepublish(self) -> None:
        """
        Given the payload already stored, a new publisher publishes nothing
        until the links change.
        """
        self.clock.advance(2)
        stored = self.publisher.lastPayload
        self.publisher.stopService()
        again = ServerInfoPublisher(
            self.feed,
            self.table,
            ConsentChecker(lambda d: defer.succeed(set()), QueryScheduler(self.clock), self.feed),
            lambda p: defer.succeed(self.published.append(p)),
            "example.org",
            LOCAL,
            self.clock,
            lastPayload=stored,
        )
        again.startService()
        self.addCleanup(again.stopService)
        self.clock.advance(10)
        self.assertEqual(len(self.published), 1)
        self.link("z.example")
        self.clock.advance(2)
        self.assertEqual(len(self.published), 2)


class LoadLastTests(SynchronousTestCase):
    """
    A publisher that reads the stored item when it starts.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.feed = ChangeFeed()
        self.table = LinkTable(self.feed)
        self.published: list[str] = []
        self.loading: defer.Deferred[str | None] = defer.Deferred()
        self.publisher = ServerInfoPublisher(
            self.feed,
            self.table,
            ConsentChecker(lambda d: defer.succeed(set()), QueryScheduler(self.clock), self.feed),
            lambda p: defer.succeed(self.published.append(p)),
            "example.org",
            LOCAL,
            self.clock,
            loadLast=lambda: self.loading,
        )

    def test_waitsForTheStoredItem(self) -> None:
        """
        Nothing is published before the stored item is known; an identical
        stored item is not published again.
        """
        self.publisher.startService()
        self.clock.advance(10)
        self.assertEqual(self.published, [])
        empty = self.publisher.currentPayload().toXml()
        self.loading.callback(empty)
        self.clock.advance(10)
        self.assertEqual(self.published, [])
        self.assertEqual(self.publisher.lastPayload, empty)
        self.publisher.stopService()

    def test_stopWaitsForTheRead(self) -> None:
        """
        Stopping while the stored item is being read waits for the read
        (the database must stay open for it) and then publishes nothing.
        """
        self.publisher.startService()
        stopped = self.publisher.stopService()
        self.assertNoResult(stopped)
        self.loading.callback(None)
        self.successResultOf(stopped)
        self.clock.advance(10)
        self.assertEqual(self.published, [])
