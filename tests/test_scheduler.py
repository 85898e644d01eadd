# -*- test-case-name: tests.test_scheduler -*-
"""
Tests for L{xmppnetgraph.scheduler}: single flight and rest per domain, the
global cap and start interval, priorities, coalescing, cancellation, the
cache of answers and errors, timeouts, the queue cap and stopping, all on a
L{task.Clock} with queries answered by hand.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer, task
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.error import QueueFull, SchedulerStopped, XmppNetGraphError
from xmppnetgraph.scheduler import QueryScheduler

Request = tuple[str, str]


class Remote:
    """
    Remote domains whose answers the test gives by hand.

    @ivar started: the (domain, key) queries started, in order.
    @ivar startTimes: when each of them started.
    @ivar pending: the unanswered queries.
    @ivar cancelled: the queries cancelled, in order.
    @ivar maxInFlight: the most queries unanswered at one time.
    @ivar maxPerDomain: the most queries unanswered at one time by one
        domain.
    """

    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.started: list[Request] = []
        self.startTimes: list[float] = []
        self.pending: dict[Request, defer.Deferred[str]] = {}
        self.cancelled: list[Request] = []
        self.maxInFlight = 0
        self.maxPerDomain = 0

    def query(self, domain: str, key: str) -> Callable[[], defer.Deferred[str]]:
        """
        @return: a query function that asks C{domain} for C{key}.
        """

        def start() -> defer.Deferred[str]:
            request = (domain, key)
            assert request not in self.pending, f"{request} asked twice at once"
            self.started.append(request)
            self.startTimes.append(self.clock.seconds())

            def cancel(d: defer.Deferred[str]) -> None:
                self.cancelled.append(request)
                del self.pending[request]

            d: defer.Deferred[str] = defer.Deferred(cancel)
            self.pending[request] = d
            self.maxInFlight = max(self.maxInFlight, len(self.pending))
            self.maxPerDomain = max(
                self.maxPerDomain, sum(1 for other, _ in self.pending if other == domain)
            )
            return d

        return start

    def answer(self, domain: str, key: str, value: str | None = None) -> None:
        """
        Answer the query of C{key} to C{domain}, with C{value} or a value
        naming both.
        """
        self.pending.pop((domain, key)).callback(value or f"{key}@{domain}")

    def fail(self, domain: str, key: str, error: Exception) -> None:
        """
        Fail the query of C{key} to C{domain} with C{error}.
        """
        self.pending.pop((domain, key)).errback(error)

    def answerAll(self) -> None:
        """
        Answer the unanswered queries, and those they let start, oldest
        first.
        """
        while self.pending:
            self.answer(*next(iter(self.pending)))


class SchedulerTestsMixin:
    """
    A scheduler on a clock, asking a L{Remote}.
    """

    def makeScheduler(self, **kwargs: float) -> QueryScheduler:
        """
        @return: a scheduler on C{self.clock} asking C{self.remote};
            C{kwargs} override its settings (C{startInterval} is 0 unless
            given).
        """
        self.clock = task.Clock()
        self.clock.advance(100)
        self.remote = Remote(self.clock)
        kwargs.setdefault("startInterval", 0)
        self.scheduler = QueryScheduler(self.clock, **kwargs)  # type: ignore[arg-type]
        return self.scheduler

    def ask(
        self,
        domain: str,
        key: str = "k",
        *,
        ttl: float = 60,
        errorTtl: float = 10,
        priority: int = 0,
    ) -> defer.Deferred[str]:
        """
        Ask C{domain} for C{key} through the scheduler.
        """
        return self.scheduler.ask(
            domain,
            key,
            self.remote.query(domain, key),
            ttl=ttl,
            errorTtl=errorTtl,
            priority=priority,
        )


class PerDomainTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    One query at a time per domain, with a rest between them; a busy domain
    does not hold up the others.
    """

    def test_singleFlight(self) -> None:
        """
        Two keys of one domain are asked one after the other; another
        domain is asked meanwhile.
        """
        self.makeScheduler(maxConcurrent=10)
        first = self.ask("a.example", "info")
        second = self.ask("a.example", "items")
        other = self.ask("b.example", "info")
        self.assertEqual(self.remote.started, [("a.example", "info"), ("b.example", "info")])
        self.assertTrue(self.scheduler.isPending("a.example", "items"))
        self.remote.answer("a.example", "info")
        self.assertEqual(self.successResultOf(first), "info@a.example")
        self.assertEqual(self.remote.started[-1], ("a.example", "items"))
        self.remote.answerAll()
        self.assertEqual(self.successResultOf(second), "items@a.example")
        self.assertEqual(self.successResultOf(other), "info@b.example")
        self.assertEqual(self.remote.maxPerDomain, 1)

    def test_domainInterval(self) -> None:
        """
        The next query to a domain starts C{domainInterval} after the end of
        the last one, also after a failure; other domains are not held back.
        """
        self.makeScheduler(domainInterval=5)
        self.ask("a.example", "one")
        two = self.ask("a.example", "two")
        self.ask("a.example", "three")
        self.clock.advance(1)
        self.remote.answer("a.example", "one")
        self.clock.advance(4.9)
        self.assertEqual(self.remote.started, [("a.example", "one")])
        self.ask("b.example")
        self.assertEqual(self.remote.started[-1], ("b.example", "k"))
        self.clock.advance(0.1)
        self.assertEqual(self.remote.started[-1], ("a.example", "two"))
        self.assertEqual(self.remote.startTimes[-1], 106)
        self.remote.fail("a.example", "two", RuntimeError("refused"))
        self.failureResultOf(two, RuntimeError)
        self.clock.advance(4.9)
        self.assertNotIn(("a.example", "three"), self.remote.started)
        self.clock.advance(0.1)
        self.assertEqual(self.remote.started[-1], ("a.example", "three"))
        self.remote.answerAll()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_restingDomainQueuedLater(self) -> None:
        """
        A request for a domain that rests waits for the end of the rest.
        """
        self.makeScheduler(domainInterval=5)
        self.ask("a.example", "one")
        self.remote.answer("a.example", "one")
        self.clock.advance(2)
        self.ask("a.example", "two")
        self.assertEqual(len(self.remote.started), 1)
        self.clock.advance(3)
        self.assertEqual(self.remote.started[-1], ("a.example", "two"))

    def test_noHeadOfLineBlocking(self) -> None:
        """
        Requests queued for a busy domain, even of a higher priority, do not
        hold back a later request for another domain.
        """
        self.makeScheduler(maxConcurrent=2)
        self.ask("a.example", "one")
        self.ask("a.example", "two", priority=5)
        self.ask("a.example", "three", priority=5)
        self.ask("b.example")
        self.assertEqual(self.remote.started, [("a.example", "one"), ("b.example", "k")])

    def test_noHeadOfLineBlockingWhileResting(self) -> None:
        """
        A domain that rests does not hold back the others either.
        """
        self.makeScheduler(maxConcurrent=1, domainInterval=60)
        self.ask("a.example", "one")
        self.ask("a.example", "two", priority=5)
        self.ask("b.example")
        self.remote.answer("a.example", "one")
        self.assertEqual(self.remote.started[-1], ("b.example", "k"))

    def test_logsDomain(self) -> None:
        """
        The start of a query is logged with the domain as a field.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)  # type: ignore[arg-type]
        self.makeScheduler()
        self.ask("a.example", "info")
        self.assertEqual(
            [(e["domain"], e["key"]) for e in events if e["log_level"] == LogLevel.debug],
            [("a.example", "info")],
        )


class GlobalLimitTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    At most C{maxConcurrent} queries at once, started at least
    C{startInterval} apart.
    """

    def test_maxConcurrent(self) -> None:
        """
        A burst of requests runs C{maxConcurrent} at a time; every domain is
        asked once and every waiter gets its answer.
        """
        self.makeScheduler(maxConcurrent=3)
        domains = [f"d{i}.example" for i in range(20)]
        waiting = [self.ask(domain) for domain in domains]
        self.assertEqual(len(self.remote.pending), 3)
        self.remote.answerAll()
        self.assertEqual(self.remote.maxInFlight, 3)
        self.assertEqual(sorted(self.remote.started), sorted((d, "k") for d in domains))
        self.assertEqual(
            [self.successResultOf(d) for d in waiting], [f"k@{domain}" for domain in domains]
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_load(self) -> None:
        """
        L{QueryScheduler.load} tells how many requests wait and how many
        queries run, as they start and end.
        """
        self.makeScheduler(maxConcurrent=3)
        self.assertEqual(self.scheduler.load(), (0, 0))
        for i in range(5):
            self.ask(f"d{i}.example")
        self.assertEqual(self.scheduler.load(), (2, 3))
        self.remote.answerAll()
        self.assertEqual(self.scheduler.load(), (0, 0))

    def test_startInterval(self) -> None:
        """
        Starts are at least C{startInterval} apart, even when slots are free.
        """
        self.makeScheduler(maxConcurrent=10, startInterval=1.0)
        for i in range(4):
            self.ask(f"d{i}.example")
        self.assertEqual(self.remote.startTimes, [100])
        self.clock.advance(0.5)
        self.assertEqual(self.remote.startTimes, [100])
        self.clock.advance(0.5)
        self.assertEqual(self.remote.startTimes, [100, 101])
        self.clock.pump([1.0] * 3)
        self.assertEqual(self.remote.startTimes, [100, 101, 102, 103])
        self.remote.answerAll()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_startIntervalAfterIdle(self) -> None:
        """
        After a quiet time, a request starts at once.
        """
        self.makeScheduler(startInterval=10)
        self.ask("a.example")
        self.remote.answer("a.example", "k")
        self.clock.advance(10)
        self.ask("b.example")
        self.assertEqual(self.remote.startTimes, [100, 110])

    def test_fullCapNoTimer(self) -> None:
        """
        While every slot is taken, no timer waits (an answer makes room).
        """
        self.makeScheduler(maxConcurrent=1, startInterval=1, timeout=1000)
        self.ask("a.example")
        self.ask("b.example")
        self.clock.advance(5)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1, "only a's timeout")
        self.remote.answer("a.example", "k")
        self.assertEqual(self.remote.started[-1], ("b.example", "k"))


class PriorityTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    Higher priority first; first come, first served within a priority.
    """

    def test_order(self) -> None:
        """
        Queued requests start by priority, then in the order they came.
        """
        self.makeScheduler(maxConcurrent=1)
        self.ask("busy.example")
        self.ask("low1.example", priority=0)
        self.ask("high1.example", priority=5)
        self.ask("low2.example", priority=0)
        self.ask("high2.example", priority=5)
        self.ask("mid.example", priority=2)
        self.remote.answerAll()
        self.assertEqual(
            [domain for domain, _ in self.remote.started],
            [
                "busy.example",
                "high1.example",
                "high2.example",
                "mid.example",
                "low1.example",
                "low2.example",
            ],
        )

    def test_orderWithinDomain(self) -> None:
        """
        A domain's own requests also start by priority.
        """
        self.makeScheduler()
        self.ask("a.example", "first")
        self.ask("a.example", "low")
        self.ask("a.example", "high", priority=1)
        self.remote.answerAll()
        self.assertEqual([key for _, key in self.remote.started], ["first", "high", "low"])

    def test_joinRaisesPriority(self) -> None:
        """
        Joining a queued request with a higher priority moves it up; a lower
        priority does not move it down.
        """
        self.makeScheduler(maxConcurrent=1)
        self.ask("busy.example")
        self.ask("a.example", priority=1)
        self.ask("b.example", priority=1)
        self.ask("c.example", priority=1)
        self.ask("c.example", priority=3)
        self.ask("a.example", priority=0)
        self.remote.answerAll()
        self.assertEqual(
            [domain for domain, _ in self.remote.started],
            ["busy.example", "c.example", "a.example", "b.example"],
        )


class CoalescingTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    Identical requests share one query; a waiter that gives up only stops
    its own waiting.
    """

    def test_identicalShareOneQuery(self) -> None:
        """
        Requests with the same domain and key, queued or running, make one
        query, and all get its answer.
        """
        self.makeScheduler(maxConcurrent=1)
        self.ask("busy.example")
        queued = [self.ask("a.example") for _ in range(3)]
        self.remote.answer("busy.example", "k")
        running = self.ask("a.example")
        self.assertEqual(self.remote.started, [("busy.example", "k"), ("a.example", "k")])
        self.remote.answer("a.example", "k", "yes")
        self.assertEqual([self.successResultOf(d) for d in [*queued, running]], ["yes"] * 4)

    def test_differentKeysOrDomains(self) -> None:
        """
        Another key or another domain is another query.
        """
        self.makeScheduler(maxConcurrent=10)
        self.ask("a.example", "info")
        self.ask("a.example", "items")
        self.ask("b.example", "info")
        self.remote.answerAll()
        self.assertEqual(len(self.remote.started), 3)

    def test_cancelOneWaiter(self) -> None:
        """
        Cancelling one waiter leaves the query and the other waiters alone,
        and the answer is cached.
        """
        self.makeScheduler()
        first = self.ask("a.example")
        second = self.ask("a.example")
        first.cancel()
        self.failureResultOf(first, defer.CancelledError)
        self.assertEqual(self.remote.cancelled, [])
        self.remote.answer("a.example", "k")
        self.assertEqual(self.successResultOf(second), "k@a.example")
        self.assertEqual(self.successResultOf(self.ask("a.example")), "k@a.example")

    def test_cancelOnlyWaiterQueued(self) -> None:
        """
        A queued request whose only waiter gives up is dropped: it never
        starts.
        """
        self.makeScheduler(maxConcurrent=1)
        self.ask("busy.example")
        waiter = self.ask("a.example")
        waiter.cancel()
        self.failureResultOf(waiter, defer.CancelledError)
        self.assertFalse(self.scheduler.isPending("a.example", "k"))
        self.remote.answerAll()
        self.assertEqual(self.remote.started, [("busy.example", "k")])

    def test_cancelOnlyWaiterRunning(self) -> None:
        """
        A running query whose only waiter gives up is cancelled, and nothing
        is cached; the slot is refilled on the next turn of the clock.
        """
        self.makeScheduler(maxConcurrent=1)
        waiter = self.ask("a.example")
        self.ask("b.example")
        waiter.cancel()
        self.failureResultOf(waiter, defer.CancelledError)
        self.assertEqual(self.remote.cancelled, [("a.example", "k")])
        self.assertIsNone(self.scheduler.cached("a.example", "k"))
        self.assertFalse(self.scheduler.isPending("a.example", "k"))
        self.assertEqual(self.remote.started, [("a.example", "k")])
        self.clock.advance(0)
        self.assertEqual(self.remote.started[-1], ("b.example", "k"))

    def test_cancelSeveralInARow(self) -> None:
        """
        A caller that cancels its running and queued requests one after the
        other starts none of the queued ones, and no timer is left.
        """
        self.makeScheduler(maxConcurrent=1)
        waiting = [self.ask(f"d{i}.example") for i in range(4)]
        for d in waiting:
            d.cancel()
        self.assertEqual(self.remote.started, [("d0.example", "k")])
        self.assertEqual(self.remote.cancelled, [("d0.example", "k")])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        for d in waiting:
            self.failureResultOf(d, defer.CancelledError)

    def test_prefetch(self) -> None:
        """
        A prefetched query runs without a waiter, survives its waiters
        giving up, and fills the cache; a fresh answer is not fetched again.
        """
        self.makeScheduler()
        self.scheduler.prefetch(
            "a.example", "k", self.remote.query("a.example", "k"), ttl=60, errorTtl=10
        )
        self.assertTrue(self.scheduler.isPending("a.example", "k"))
        waiter = self.ask("a.example")
        waiter.cancel()
        self.failureResultOf(waiter, defer.CancelledError)
        self.assertEqual(self.remote.cancelled, [])
        self.remote.answer("a.example", "k")
        answer = self.scheduler.cached("a.example", "k")
        assert answer is not None
        self.assertEqual((answer.result, answer.when, answer.fresh), ("k@a.example", 100, True))
        self.scheduler.prefetch(
            "a.example", "k", self.remote.query("a.example", "k"), ttl=60, errorTtl=10
        )
        self.assertEqual(len(self.remote.started), 1)

    def test_prefetchJoinsWaitedRequest(self) -> None:
        """
        Prefetching a request that has a waiter keeps it running when the
        waiter gives up.
        """
        self.makeScheduler()
        waiter = self.ask("a.example")
        self.scheduler.prefetch(
            "a.example", "k", self.remote.query("a.example", "k"), ttl=60, errorTtl=10
        )
        waiter.cancel()
        self.failureResultOf(waiter, defer.CancelledError)
        self.assertEqual(self.remote.cancelled, [])
        self.assertEqual(len(self.remote.started), 1)
        self.remote.answer("a.example", "k")
        self.assertIsNotNone(self.scheduler.cached("a.example", "k"))


class CacheTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    Answers are cached for C{ttl}, failures for C{errorTtl}; at most
    C{maxEntries}, the oldest go first.
    """

    def test_answerFreshForTtl(self) -> None:
        """
        A fresh answer is given at once without asking; a stale one is kept
        but asked again.
        """
        self.makeScheduler()
        self.ask("a.example", ttl=60)
        self.remote.answer("a.example", "k", "one")
        self.clock.advance(59)
        self.assertEqual(self.successResultOf(self.ask("a.example", ttl=60)), "one")
        self.assertEqual(len(self.remote.started), 1)
        self.clock.advance(1)
        answer = self.scheduler.cached("a.example", "k")
        assert answer is not None
        self.assertEqual((answer.result, answer.when, answer.expires), ("one", 100, 160))
        self.assertFalse(answer.fresh)
        again = self.ask("a.example", ttl=60)
        self.assertNoResult(again)
        self.assertEqual(len(self.remote.started), 2)
        self.remote.answer("a.example", "k", "two")
        self.assertEqual(self.successResultOf(again), "two")
        answer = self.scheduler.cached("a.example", "k")
        assert answer is not None
        self.assertEqual((answer.result, answer.when, answer.fresh), ("two", 160, True))

    def test_zeroTtlKeepsNothing(self) -> None:
        """
        With a TTL of 0 nothing is kept, not even stale (and an earlier
        answer for the key is dropped): the next request asks again.
        """
        self.makeScheduler()
        self.ask("a.example", ttl=60)
        self.remote.answer("a.example", "k", "one")
        self.clock.advance(60)
        d = self.ask("a.example", ttl=0, errorTtl=0)
        self.remote.answer("a.example", "k", "two")
        self.assertEqual(self.successResultOf(d), "two")
        self.assertIsNone(self.scheduler.cached("a.example", "k"))
        failing = self.ask("a.example", ttl=0, errorTtl=0)
        self.remote.fail("a.example", "k", ValueError("no"))
        self.failureResultOf(failing, ValueError)
        self.assertIsNone(self.scheduler.cached("a.example", "k"))

    def test_errorFreshForErrorTtl(self) -> None:
        """
        A failure is cached for C{errorTtl}: later requests fail at once
        with it; then the domain is asked again.
        """
        self.makeScheduler()
        first = self.ask("a.example", ttl=60, errorTtl=10)
        self.remote.fail("a.example", "k", ValueError("no such node"))
        self.failureResultOf(first, ValueError)
        self.clock.advance(9)
        failure = self.failureResultOf(self.ask("a.example"), ValueError)
        self.assertEqual(failure.getErrorMessage(), "no such node")
        answer = self.scheduler.cached("a.example", "k")
        assert answer is not None
        self.assertIsInstance(answer.result, Failure)
        self.assertTrue(answer.fresh)
        self.assertEqual(len(self.remote.started), 1)
        self.clock.advance(1)
        self.ask("a.example")
        self.assertEqual(len(self.remote.started), 2)

    def test_cachedUnknown(self) -> None:
        """
        Nothing is cached for a request never answered.
        """
        self.makeScheduler()
        self.ask("a.example")
        self.assertIsNone(self.scheduler.cached("a.example", "k"))
        self.assertIsNone(self.scheduler.cached("b.example", "k"))

    def test_maxEntries(self) -> None:
        """
        At most C{maxEntries} answers are kept; the oldest answered goes
        first, and a new answer makes an entry the newest.
        """
        self.makeScheduler(maxEntries=2)
        for domain in ["a.example", "b.example"]:
            self.ask(domain, ttl=1)
            self.remote.answer(domain, "k")
        self.clock.advance(1)
        self.ask("a.example")
        self.remote.answer("a.example", "k")
        self.ask("c.example")
        self.remote.answer("c.example", "k")
        self.assertIsNone(self.scheduler.cached("b.example", "k"))
        self.assertIsNotNone(self.scheduler.cached("a.example", "k"))
        self.assertIsNotNone(self.scheduler.cached("c.example", "k"))

    def test_nothingCached(self) -> None:
        """
        With C{maxEntries} 0, waiters still get the answer.
        """
        self.makeScheduler(maxEntries=0)
        d = self.ask("a.example")
        self.remote.answer("a.example", "k")
        self.assertEqual(self.successResultOf(d), "k@a.example")
        self.assertIsNone(self.scheduler.cached("a.example", "k"))


class TimeoutTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    A query not answered in C{timeout} is cancelled and fails.
    """

    def test_timeout(self) -> None:
        """
        The query is cancelled at the timeout; its waiters fail with
        L{defer.TimeoutError}, which is cached for C{errorTtl}; the slot goes
        to the next request at once.
        """
        self.makeScheduler(maxConcurrent=1, timeout=30)
        d = self.ask("a.example", errorTtl=300)
        other = self.ask("b.example")
        self.clock.advance(29)
        self.assertNoResult(d)
        self.clock.advance(1)
        self.failureResultOf(d, defer.TimeoutError)
        self.assertEqual(self.remote.cancelled, [("a.example", "k")])
        self.assertEqual(self.remote.started[-1], ("b.example", "k"))
        self.clock.advance(269)
        self.failureResultOf(self.ask("a.example"), defer.TimeoutError)
        self.assertEqual(len(self.remote.started), 2)
        self.failureResultOf(other, defer.TimeoutError)

    def test_answerCancelsTimer(self) -> None:
        """
        An answer in time leaves no timer behind.
        """
        self.makeScheduler(timeout=30)
        self.ask("a.example")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.remote.answer("a.example", "k")
        self.assertEqual(self.clock.getDelayedCalls(), [])


class QueueTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    At most C{maxQueued} requests wait; more are refused with one warning.
    """

    def test_queueCap(self) -> None:
        """
        Beyond C{maxQueued} waiting requests, a new one fails with
        L{QueueFull} at once and nothing is queued, with one warning that
        names the domain; joining a queued request still works.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)  # type: ignore[arg-type]
        self.makeScheduler(maxConcurrent=1, maxQueued=2)
        self.ask("busy.example")
        joined = self.ask("a.example")
        self.ask("b.example")
        self.failureResultOf(self.ask("c.example"), QueueFull)
        self.assertFalse(self.scheduler.isPending("c.example", "k"))
        for i in range(10):
            self.failureResultOf(self.ask(f"more{i}.example"), QueueFull)
        self.scheduler.prefetch(
            "late.example", "k", self.remote.query("late.example", "k"), ttl=1, errorTtl=1
        )
        self.assertFalse(self.scheduler.isPending("late.example", "k"))
        again = self.ask("a.example")
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1, "one warning per time the queue fills up")
        self.assertEqual(warnings[0]["domain"], "c.example")
        self.remote.answerAll()
        self.assertEqual(self.successResultOf(joined), self.successResultOf(again))
        self.assertEqual(
            self.remote.started, [("busy.example", "k"), ("a.example", "k"), ("b.example", "k")]
        )

    def test_warnsAgainAfterDraining(self) -> None:
        """
        The queue warns again when it fills after draining to half, not when
        one slot frees and fills again.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)  # type: ignore[arg-type]
        self.makeScheduler(maxConcurrent=1, maxQueued=4)

        def warnings() -> int:
            return sum(1 for e in events if e["log_level"] == LogLevel.warn)

        for i in range(5):
            self.ask(f"d{i}.example")
        self.failureResultOf(self.ask("x1.example"), QueueFull)
        self.remote.answer("d0.example", "k")
        self.ask("y1.example")
        self.failureResultOf(self.ask("x2.example"), QueueFull)
        self.assertEqual(warnings(), 1)
        for i in range(1, 4):
            self.remote.answer(f"d{i}.example", "k")
        for i in range(3):
            self.ask(f"z{i}.example")
        self.failureResultOf(self.ask("x3.example"), QueueFull)
        self.assertEqual(warnings(), 2)


class StopTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    L{QueryScheduler.stop} ends everything.
    """

    def test_stop(self) -> None:
        """
        Running queries are cancelled, queued ones never start, every waiter
        fails with L{SchedulerStopped}, no timer is left and nothing more is
        asked.
        """
        self.makeScheduler(maxConcurrent=1, startInterval=1, domainInterval=5)
        running = self.ask("a.example")
        queued = self.ask("b.example")
        self.scheduler.prefetch(
            "c.example", "k", self.remote.query("c.example", "k"), ttl=1, errorTtl=1
        )
        self.scheduler.stop()
        self.failureResultOf(running, SchedulerStopped)
        self.failureResultOf(queued, SchedulerStopped)
        self.assertEqual(self.remote.cancelled, [("a.example", "k")])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(self.scheduler.isPending("b.example", "k"))
        self.assertIsNone(self.scheduler.cached("a.example", "k"))
        self.clock.advance(100)
        self.failureResultOf(self.ask("d.example"), SchedulerStopped)
        self.scheduler.prefetch(
            "e.example", "k", self.remote.query("e.example", "k"), ttl=1, errorTtl=1
        )
        self.assertEqual(self.remote.started, [("a.example", "k")])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.scheduler.stop()

    def test_stopKeepsCache(self) -> None:
        """
        After stopping, fresh cached answers are still given.
        """
        self.makeScheduler()
        self.ask("a.example")
        self.remote.answer("a.example", "k")
        self.scheduler.stop()
        self.assertEqual(self.successResultOf(self.ask("a.example")), "k@a.example")

    def test_stopFromCallback(self) -> None:
        """
        A waiter may stop the scheduler from its callback; the others fail
        with L{SchedulerStopped}.
        """
        self.makeScheduler(maxConcurrent=2)
        self.ask("a.example").addCallback(lambda _: self.scheduler.stop())
        other = self.ask("b.example")
        self.remote.answer("a.example", "k")
        self.failureResultOf(other, SchedulerStopped)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SynchronousTests(SchedulerTestsMixin, SynchronousTestCase):
    """
    Queries that answer, fail or raise at once.
    """

    def test_synchronousAnswer(self) -> None:
        """
        A query that answers at once gives its answer at once, also in a
        burst; no timer is left.
        """
        self.makeScheduler()
        asked: list[str] = []

        def query(domain: str) -> Callable[[], defer.Deferred[str]]:
            def start() -> defer.Deferred[str]:
                asked.append(domain)
                return defer.succeed(domain.upper())

            return start

        results = [
            self.scheduler.ask(f"d{i}.example", "k", query(f"d{i}.example"), ttl=60, errorTtl=10)
            for i in range(2000)
        ]
        self.assertEqual(len(asked), 2000)
        self.assertEqual(self.successResultOf(results[5]), "D5.EXAMPLE")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_queryRaises(self) -> None:
        """
        A query that raises instead of returning a L{Deferred} fails its
        request, which is cached as a failure; the domain and the slot are
        free again.
        """
        self.makeScheduler(maxConcurrent=1)

        def broken() -> defer.Deferred[str]:
            raise RuntimeError("no route")

        d = self.scheduler.ask("a.example", "k", broken, ttl=60, errorTtl=10)
        self.assertEqual(self.failureResultOf(d, RuntimeError).getErrorMessage(), "no route")
        self.failureResultOf(
            self.scheduler.ask("a.example", "k", broken, ttl=60, errorTtl=10), RuntimeError
        )
        self.ask("a.example", "other")
        self.assertEqual(self.remote.started, [("a.example", "other")])
        self.remote.answer("a.example", "other")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reentrantAsk(self) -> None:
        """
        A waiter may ask again from its callback; the new request runs.
        """
        self.makeScheduler(maxConcurrent=1)
        follow: list[defer.Deferred[str]] = []
        self.ask("a.example").addCallback(lambda _: follow.append(self.ask("b.example")))
        self.remote.answer("a.example", "k")
        self.assertEqual(self.remote.started[-1], ("b.example", "k"))
        self.remote.answer("b.example", "k")
        self.assertEqual(self.successResultOf(follow[0]), "k@b.example")


class SettingsTests(SynchronousTestCase):
    """
    The scheduler's settings and errors.
    """

    def test_badSettings(self) -> None:
        """
        No slot, or a negative limit, is refused.
        """
        clock = task.Clock()
        self.assertRaises(ValueError, QueryScheduler, clock, maxConcurrent=0)
        self.assertRaises(ValueError, QueryScheduler, clock, startInterval=-1)
        self.assertRaises(ValueError, QueryScheduler, clock, domainInterval=-1)
        self.assertRaises(ValueError, QueryScheduler, clock, maxQueued=-1)

    def test_domainErrors(self) -> None:
        """
        The scheduler's errors are domain errors.
        """
        self.assertTrue(issubclass(QueueFull, XmppNetGraphError))
        self.assertTrue(issubclass(SchedulerStopped, XmppNetGraphError))
