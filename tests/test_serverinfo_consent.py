# -*- test-case-name: tests.test_serverinfo_consent -*-
"""
Tests for L{xmppnetgraph.serverinfo.consent}: the consent cache, its TTLs,
coalescing, rate limiting, allowlist, change callbacks and shutdown, all on
a L{task.Clock} with queries answered by hand.
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber.error import StanzaError

from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.model import ConsentChanged, ConsentState
from xmppnetgraph.scheduler import QueryScheduler
from xmppnetgraph.serverinfo.consent import ConsentChecker, loadAllowlist
from xmppnetgraph.serverinfo.payload import NS_SERVERINFO

CONSENTING = {"http://jabber.org/protocol/disco#info", NS_SERVERINFO}
SILENT = {"http://jabber.org/protocol/disco#info"}


class FakeQuery:
    """
    A disco#info query function whose answers the test gives by hand.

    @ivar calls: the domains asked, in order.
    @ivar pending: the unanswered queries, by domain.
    @ivar cancelled: the domains whose query was cancelled.
    @ivar maxInFlight: the most queries unanswered at one time.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.pending: dict[str, defer.Deferred[set[str]]] = {}
        self.cancelled: list[str] = []
        self.maxInFlight = 0

    def __call__(self, domain: str) -> defer.Deferred[set[str]]:
        """
        Start a query for C{domain}.
        """
        assert domain not in self.pending, f"two queries for {domain} at once"
        self.calls.append(domain)

        def cancel(d: defer.Deferred[set[str]]) -> None:
            self.cancelled.append(domain)
            self.pending.pop(domain, None)

        d: defer.Deferred[set[str]] = defer.Deferred(cancel)
        self.pending[domain] = d
        self.maxInFlight = max(self.maxInFlight, len(self.pending))
        return d

    def answer(self, domain: str, features: set[str]) -> None:
        """
        Answer the query for C{domain} with C{features}.
        """
        self.pending.pop(domain).callback(features)

    def fail(self, domain: str, error: Exception) -> None:
        """
        Fail the query for C{domain} with C{error}.
        """
        self.pending.pop(domain).errback(error)


class CheckerTestsMixin:
    """
    Set up a checker with a fake query and a clock.
    """

    def makeChecker(self, **kwargs: object) -> ConsentChecker:
        """
        @return: a checker on C{self.query} and a scheduler of its own,
            C{self.scheduler}, on C{self.clock}; C{kwargs} override the
            settings of both (C{startInterval} is 0 unless given).
        """
        self.clock = task.Clock()
        self.clock.advance(1_000_000)
        self.query = FakeQuery()
        kwargs.setdefault("startInterval", 0)
        schedulerSettings = {
            name: kwargs.pop(name)
            for name in ["maxConcurrent", "startInterval", "timeout", "maxQueued", "maxEntries"]
            if name in kwargs
        }
        self.scheduler = QueryScheduler(self.clock, **schedulerSettings)  # type: ignore[arg-type]
        self.feed = ChangeFeed()
        checker = ConsentChecker(self.query, self.scheduler, self.feed, **kwargs)  # type: ignore[arg-type]
        self.changes: list[str] = []
        self.feed.observe(ConsentChanged, lambda event: self.changes.append(event.domain))
        return checker


class CacheTests(CheckerTestsMixin, SynchronousTestCase):
    """
    Answers are cached with a TTL; failures count as no consent for a
    shorter time.
    """

    def test_unknownSchedulesCheck(self) -> None:
        """
        An unknown domain does not consent yet, and is asked.
        """
        checker = self.makeChecker()
        self.assertFalse(checker.consents("b.example"))
        self.assertEqual(self.query.calls, ["b.example"])
        self.assertEqual(checker.state("b.example"), ConsentState(None, None, None, pending=True))

    def test_featureMeansConsent(self) -> None:
        """
        A peer that lists the feature consents; the callbacks hear of it.
        """
        checker = self.makeChecker()
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        self.assertTrue(checker.consents("b.example"))
        self.assertEqual(self.changes, ["b.example"])
        self.assertEqual(checker.state("b.example"), ConsentState(True, self.clock.seconds(), None))
        self.assertEqual(self.query.calls, ["b.example"])

    def test_noFeatureNoConsent(self) -> None:
        """
        A peer that does not list the feature does not consent; as unknown
        peers do not consent either, that is no change.
        """
        checker = self.makeChecker()
        checker.consents("b.example")
        self.query.answer("b.example", SILENT)
        self.assertFalse(checker.consents("b.example"))
        self.assertEqual(self.changes, [])
        self.assertEqual(
            checker.state("b.example"), ConsentState(False, self.clock.seconds(), None)
        )

    def test_freshUntilTtl(self) -> None:
        """
        An answer is used without asking again until the TTL has passed;
        then the stale answer is used while the peer is asked again.
        """
        checker = self.makeChecker(ttl=3600)
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        self.clock.advance(3599)
        self.assertTrue(checker.consents("b.example"))
        self.assertEqual(self.query.calls, ["b.example"])
        self.clock.advance(1)
        self.assertTrue(checker.consents("b.example"))
        self.assertTrue(checker.consents("b.example"))
        self.assertEqual(self.query.calls, ["b.example", "b.example"])
        self.assertTrue(checker.state("b.example").pending)

    def test_withdrawnConsent(self) -> None:
        """
        A re-check that no longer finds the feature withdraws the consent
        and tells the callbacks.
        """
        checker = self.makeChecker(ttl=60)
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        self.clock.advance(61)
        checker.consents("b.example")
        self.query.answer("b.example", SILENT)
        self.assertFalse(checker.consents("b.example"))
        self.assertEqual(self.changes, ["b.example", "b.example"])

    def test_sameAnswerNoChange(self) -> None:
        """
        A re-check with the same answer is no change.
        """
        checker = self.makeChecker(ttl=60)
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        self.clock.advance(61)
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        self.assertEqual(self.changes, ["b.example"])

    def test_errorNegativeTtl(self) -> None:
        """
        A stanza error counts as no consent, is recorded, and is re-checked
        after the negative TTL, not the full one.
        """
        checker = self.makeChecker(ttl=3600, negativeTtl=300)
        checker.consents("b.example")
        self.query.fail("b.example", StanzaError("service-unavailable"))
        self.assertFalse(checker.consents("b.example"))
        self.assertEqual(
            checker.state("b.example"),
            ConsentState(False, self.clock.seconds(), "service-unavailable"),
        )
        self.clock.advance(299)
        checker.consents("b.example")
        self.assertEqual(self.query.calls, ["b.example"])
        self.clock.advance(1)
        checker.consents("b.example")
        self.assertEqual(self.query.calls, ["b.example", "b.example"])

    def test_errorWithdrawsConsent(self) -> None:
        """
        A peer that consented and now answers with an error is no longer
        named.
        """
        checker = self.makeChecker(ttl=60)
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        self.clock.advance(61)
        checker.consents("b.example")
        self.query.fail("b.example", StanzaError("remote-server-timeout"))
        self.assertFalse(checker.consents("b.example"))
        self.assertEqual(self.changes, ["b.example", "b.example"])

    def test_timeout(self) -> None:
        """
        A peer that never answers is cancelled after the timeout and counts
        as no consent, cached for the negative TTL.
        """
        checker = self.makeChecker(timeout=30, negativeTtl=300)
        checker.consents("b.example")
        self.clock.advance(29)
        self.assertEqual(self.query.cancelled, [])
        self.clock.advance(1)
        self.assertEqual(self.query.cancelled, ["b.example"])
        self.assertEqual(
            checker.state("b.example"), ConsentState(False, self.clock.seconds(), "timeout")
        )
        self.clock.advance(299)
        checker.consents("b.example")
        self.assertEqual(self.query.calls, ["b.example"])

    def test_unexpectedErrorLogged(self) -> None:
        """
        An unexpected exception from the query is no consent, described in
        the state, and logged.
        """
        checker = self.makeChecker()
        checker.consents("b.example")
        self.query.fail("b.example", ZeroDivisionError("boom"))
        self.assertFalse(checker.consents("b.example"))
        self.assertEqual(checker.state("b.example").error, "ZeroDivisionError: boom")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_queryRaises(self) -> None:
        """
        A query function that raises instead of returning a L{Deferred}
        does not break the checker.
        """

        def query(domain: str) -> defer.Deferred[set[str]]:
            raise RuntimeError("no route")

        checker = ConsentChecker(query, QueryScheduler(task.Clock(), startInterval=0), ChangeFeed())
        self.assertFalse(checker.consents("b.example"))
        self.assertEqual(checker.state("b.example").error, "RuntimeError: no route")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse(self.successResultOf(checker.check("c.example")))
        self.flushLoggedErrors(RuntimeError)

    def test_garbageAnswer(self) -> None:
        """
        An answer that is not a feature set is no consent.
        """
        for garbage in [None, 42, NS_SERVERINFO]:
            with self.subTest(garbage=garbage):
                checker = ConsentChecker(
                    lambda d, garbage=garbage: defer.succeed(garbage),  # type: ignore[misc]
                    QueryScheduler(task.Clock(), startInterval=0),
                    ChangeFeed(),
                )
                self.assertFalse(self.successResultOf(checker.check("b.example")))
                self.assertEqual(checker.state("b.example").error, "unusable answer")
        self.flushLoggedErrors(TypeError)

    def test_synchronousAnswer(self) -> None:
        """
        A query that answers at once works, also in a burst.
        """
        asked: list[str] = []

        def query(domain: str) -> defer.Deferred[set[str]]:
            asked.append(domain)
            return defer.succeed(CONSENTING if domain.startswith("yes") else SILENT)

        checker = ConsentChecker(query, QueryScheduler(task.Clock(), startInterval=0), ChangeFeed())
        self.assertTrue(self.successResultOf(checker.check("yes.example")))
        for i in range(2000):
            checker.consents(f"no{i}.example")
        self.assertEqual(len(asked), 2001)
        self.assertTrue(checker.consents("yes.example"))
        self.assertFalse(checker.consents("no5.example"))

    def test_maxEntries(self) -> None:
        """
        At most C{maxEntries} answers are kept; the oldest go first.
        """
        checker = self.makeChecker(maxEntries=2)
        for domain in ["a.example", "b.example", "c.example"]:
            checker.consents(domain)
            self.query.answer(domain, CONSENTING)
        self.assertEqual(checker.state("a.example").consents, None)
        self.assertTrue(checker.state("b.example").consents)
        self.assertTrue(checker.state("c.example").consents)


class CheckTests(CheckerTestsMixin, SynchronousTestCase):
    """
    L{ConsentChecker.check} waits for an answer; concurrent checks share
    one query.
    """

    def test_coalesced(self) -> None:
        """
        Several checks and lookups of one domain make one query, and all
        checks get its answer.
        """
        checker = self.makeChecker()
        waiting = [checker.check("b.example") for _ in range(3)]
        checker.consents("b.example")
        self.assertEqual(self.query.calls, ["b.example"])
        for d in waiting:
            self.assertNoResult(d)
        self.query.answer("b.example", CONSENTING)
        self.assertEqual([self.successResultOf(d) for d in waiting], [True, True, True])

    def test_fresh(self) -> None:
        """
        A fresh cached answer is returned at once, without a query.
        """
        checker = self.makeChecker()
        first = checker.check("b.example")
        self.query.answer("b.example", SILENT)
        self.assertFalse(self.successResultOf(first))
        self.assertFalse(self.successResultOf(checker.check("b.example")))
        self.assertEqual(self.query.calls, ["b.example"])

    def test_stale(self) -> None:
        """
        A stale answer is not returned: the check waits for a new one.
        """
        checker = self.makeChecker(ttl=10)
        checker.check("b.example")
        self.query.answer("b.example", SILENT)
        self.clock.advance(10)
        d = checker.check("b.example")
        self.assertNoResult(d)
        self.query.answer("b.example", CONSENTING)
        self.assertTrue(self.successResultOf(d))

    def test_neverFails(self) -> None:
        """
        A failed query makes the check answer C{False}, not fail.
        """
        checker = self.makeChecker()
        d = checker.check("b.example")
        self.query.fail("b.example", StanzaError("item-not-found"))
        self.assertFalse(self.successResultOf(d))

    def test_cancelOneWaiter(self) -> None:
        """
        Cancelling one check does not cancel the shared query.
        """
        checker = self.makeChecker()
        first = checker.check("b.example")
        second = checker.check("b.example")
        first.cancel()
        self.failureResultOf(first, defer.CancelledError)
        self.assertEqual(self.query.cancelled, [])
        self.query.answer("b.example", CONSENTING)
        self.assertTrue(self.successResultOf(second))


class RateLimitTests(CheckerTestsMixin, SynchronousTestCase):
    """
    A burst of new peers becomes a limited stream of queries.
    """

    def test_burstConcurrency(self) -> None:
        """
        1000 new peers at once make at most C{maxConcurrent} queries at a
        time; the others wait their turn, and every peer is asked once.
        """
        checker = self.makeChecker(maxConcurrent=4)
        domains = [f"p{i}.example" for i in range(1000)]
        for domain in domains:
            self.assertFalse(checker.consents(domain))
        self.assertEqual(len(self.query.pending), 4)
        while self.query.pending:
            self.query.answer(next(iter(self.query.pending)), CONSENTING)
        self.assertEqual(self.query.maxInFlight, 4)
        self.assertEqual(sorted(self.query.calls), sorted(domains))
        self.assertTrue(all(checker.consents(domain) for domain in domains))
        self.assertEqual(sorted(self.changes), sorted(domains))

    def test_startInterval(self) -> None:
        """
        Query starts are at least the scheduler's C{startInterval} apart.
        """
        checker = self.makeChecker(maxConcurrent=100, startInterval=1.0)
        for i in range(5):
            checker.consents(f"p{i}.example")
        self.assertEqual(len(self.query.calls), 1)
        self.clock.advance(0.5)
        self.assertEqual(len(self.query.calls), 1)
        self.clock.advance(0.5)
        self.assertEqual(len(self.query.calls), 2)
        self.clock.advance(1.0)
        self.assertEqual(len(self.query.calls), 3)
        self.clock.pump([1.0] * 5)
        self.assertEqual(len(self.query.calls), 5)
        while self.query.pending:
            self.query.answer(next(iter(self.query.pending)), SILENT)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeoutsFreeSlots(self) -> None:
        """
        Peers that never answer give their slot back at the timeout.
        """
        checker = self.makeChecker(maxConcurrent=2, timeout=30)
        for i in range(6):
            checker.consents(f"p{i}.example")
        self.assertEqual(len(self.query.calls), 2)
        self.clock.advance(30)
        self.assertEqual(len(self.query.calls), 4)
        self.clock.advance(30)
        self.assertEqual(len(self.query.calls), 6)
        self.clock.advance(30)
        self.assertEqual(len(self.query.pending), 0)
        self.assertEqual(self.query.maxInFlight, 2)

    def test_queueCap(self) -> None:
        """
        Beyond C{maxQueued} waiting peers, a check answers C{False} at once
        and nothing is queued (with one warning, not one per peer); it is
        asked later.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        checker = self.makeChecker(maxConcurrent=1, maxQueued=3)
        for i in range(4):
            checker.consents(f"p{i}.example")
        self.assertFalse(self.successResultOf(checker.check("late.example")))
        self.assertFalse(checker.state("late.example").pending)
        for i in range(100):
            checker.consents(f"more{i}.example")
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1, "one warning per time the queue fills up")
        while self.query.pending:
            self.query.answer(next(iter(self.query.pending)), SILENT)
        self.assertNotIn("late.example", self.query.calls)
        d = checker.check("late.example")
        self.query.answer("late.example", CONSENTING)
        self.assertTrue(self.successResultOf(d))


class AllowlistTests(CheckerTestsMixin, SynchronousTestCase):
    """
    Allowlisted peers consent without being asked.
    """

    def test_allowlisted(self) -> None:
        """
        An allowlisted peer consents at once and is not asked; others are.
        """
        checker = self.makeChecker(allowlist={"friend.example"})
        self.assertTrue(checker.consents("friend.example"))
        self.assertTrue(self.successResultOf(checker.check("friend.example")))
        self.assertEqual(
            checker.state("friend.example"), ConsentState(True, None, None, allowlisted=True)
        )
        self.assertFalse(checker.consents("other.example"))
        self.assertEqual(self.query.calls, ["other.example"])

    def test_offByDefault(self) -> None:
        """
        Without an allowlist, every peer is asked.
        """
        checker = self.makeChecker()
        checker.consents("friend.example")
        self.assertEqual(self.query.calls, ["friend.example"])

    def test_loadAllowlist(self) -> None:
        """
        The file has one domain per line; comments, blanks and case do not
        matter.
        """
        path = FilePath(self.mktemp())
        path.setContent(
            "# peers that agreed by mail\n"
            "\n"
            "Friend.Example   # since 2025\n"
            "  other.example\n"
            "b\u00fccher.example\n".encode("utf-8")
        )
        self.assertEqual(
            loadAllowlist(path.path),
            frozenset({"friend.example", "other.example", "b\u00fccher.example"}),
        )

    def test_loadAllowlistBadLine(self) -> None:
        """
        A line that is no domain is an error that names the line.
        """
        path = FilePath(self.mktemp())
        path.setContent(b"ok.example\nnot a domain\n")
        error = self.assertRaises(ValueError, loadAllowlist, path.path)
        self.assertIn(":2:", str(error))

    def test_loadAllowlistMissing(self) -> None:
        """
        A missing file raises L{OSError}.
        """
        self.assertRaises(OSError, loadAllowlist, self.mktemp())


class ChangeTests(CheckerTestsMixin, SynchronousTestCase):
    """
    Changes of consent are announced on the feed as L{ConsentChanged}.
    """

    def test_failingCallback(self) -> None:
        """
        An observer that raises is logged and does not stop the others.
        """
        checker = self.makeChecker()

        def broken(event: ConsentChanged) -> None:
            raise RuntimeError("oops")

        self.feed.observe(ConsentChanged, broken)
        later: list[str] = []
        self.feed.observe(ConsentChanged, lambda event: later.append(event.domain))
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        self.assertEqual(self.changes, ["b.example"])
        self.assertEqual(later, ["b.example"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_remove(self) -> None:
        """
        The function the feed's C{observe} returns removes the observer.
        """
        checker = self.makeChecker()
        seen: list[str] = []
        remove = self.feed.observe(ConsentChanged, lambda event: seen.append(event.domain))
        remove()
        remove()
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        self.assertEqual(seen, [])
        self.assertEqual(self.changes, ["b.example"])


class StopTests(CheckerTestsMixin, SynchronousTestCase):
    """
    L{ConsentChecker.stop} cancels everything pending.
    """

    def test_stop(self) -> None:
        """
        Running queries are cancelled, queued ones never start, waiting
        checks get C{False}, no timer is left and nothing more is asked.
        """
        checker = self.makeChecker(maxConcurrent=2, startInterval=1.0)
        waiting = checker.check("a.example")
        for domain in ["b.example", "c.example", "d.example"]:
            checker.consents(domain)
        self.clock.advance(1)
        self.assertEqual(self.query.calls, ["a.example", "b.example"])
        checker.stop()
        self.assertFalse(self.successResultOf(waiting))
        self.assertEqual(sorted(self.query.cancelled), ["a.example", "b.example"])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertFalse(checker.consents("e.example"))
        self.assertFalse(self.successResultOf(checker.check("f.example")))
        self.assertEqual(self.query.calls, ["a.example", "b.example"])
        self.assertEqual(checker.state("a.example"), ConsentState(None, None, None))
        self.assertEqual(self.changes, [])

    def test_stopKeepsCache(self) -> None:
        """
        After stopping, cached answers are still given.
        """
        checker = self.makeChecker()
        checker.consents("b.example")
        self.query.answer("b.example", CONSENTING)
        checker.stop()
        self.assertTrue(checker.consents("b.example"))
        self.assertTrue(self.successResultOf(checker.check("b.example")))
