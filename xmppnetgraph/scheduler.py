# -*- test-case-name: tests.test_scheduler -*-
"""
One polite query scheduler for every request we send to remote domains
(consent checks now, the crawler's disco#info, disco#items and version
queries next).

A federation of thousands of domains is asked by one node: without a common
gate, a burst of new links or a crawl round would become a burst of stanzas
at peers that owe us nothing. So every such request goes through a
L{QueryScheduler}, which

 - runs at most one query per domain at a time (single flight across all
   the keys of that domain), waits C{domainInterval} between the end of one
   and the start of the next, and never lets a busy domain hold up the
   others;
 - runs at most C{maxConcurrent} queries at once, starts them at least
   C{startInterval} apart, higher priority first and first come, first
   served within a priority;
 - coalesces identical requests (same domain and key) into one query;
 - caches answers for their C{ttl} and failures for their C{errorTtl}, at
   most C{maxEntries} of them, and times queries out after C{timeout};
 - keeps at most C{maxQueued} requests waiting and refuses more with
   L{QueueFull};
 - runs on an injected clock and leaves no timer behind when idle or
   stopped.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar, cast

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from xmppnetgraph.error import QueueFull, SchedulerStopped

T = TypeVar("T")

# Times closer than this count as equal: the clock's float arithmetic must
# not make a timer wake up a hair too early to start anything.
_EPSILON = 1e-9


@attrs.frozen
class Answer(Generic[T]):
    """
    A cached answer, as L{QueryScheduler.cached} gives it.

    @ivar result: the query's result, or the L{Failure} it failed with.
    @ivar when: when it arrived, in the clock's seconds.
    @ivar expires: when it stops being fresh.
    @ivar fresh: whether it was still fresh when looked up; a stale answer
        is kept (until the cache is full) but makes L{QueryScheduler.ask}
        run the query again.
    """

    result: T | Failure
    when: float
    expires: float
    fresh: bool


@attrs.define(slots=True)
class _Entry:
    """
    A cached answer; L{Answer} is the public view of it.
    """

    result: object
    when: float
    expires: float


@attrs.define(eq=False, slots=True)
class _Request:
    """
    A query queued or running, with the callers waiting for it.

    @ivar order: a serial number: first come, first served within a
        priority; it also tells a request's queue entries apart.
    @ivar prefetched: whether the answer is wanted without a waiter, so the
        query runs even when every waiter has given up.
    @ivar started: whether the query has been started.
    @ivar running: the query's L{Deferred} once it has started.
    @ivar abandoned: whether we cancelled the running query (nobody wants it
        any more, or the scheduler stopped): its result is not cached.
    """

    domain: str
    key: Hashable
    query: Callable[[], defer.Deferred[Any]]
    ttl: float
    errorTtl: float
    priority: int
    order: int
    waiters: list[defer.Deferred[Any]] = attrs.Factory(list)
    prefetched: bool = False
    started: bool = False
    running: defer.Deferred[None] | None = None
    abandoned: bool = False


# A queue entry: (-priority, order, request); order is unique, so requests
# are never compared.
_Queued = tuple[int, int, _Request]


class QueryScheduler:
    """
    Every request to a remote domain goes through one of these.

    A request is named by its domain and a key (any hashable value, e.g.
    C{("disco#items", node)}) that stands for one question; a key always
    gets the same type of answer.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        *,
        maxConcurrent: int = 4,
        startInterval: float = 0.05,
        domainInterval: float = 0.0,
        timeout: float = 30.0,
        maxQueued: int = 10_000,
        maxEntries: int = 100_000,
    ) -> None:
        """
        @param clock: the time source and timer.
        @param maxConcurrent: at most this many queries run at once.
        @param startInterval: at least this many seconds between the starts
            of any two queries.
        @param domainInterval: at least this many seconds between the end of
            one query to a domain and the start of the next to it.
        @param timeout: a query not answered after this many seconds is
            cancelled and fails with L{defer.TimeoutError}.
        @param maxQueued: at most this many requests wait to start; more
            fail with L{QueueFull}.
        @param maxEntries: at most this many answers are cached; the oldest
            go first.
        @raise ValueError: if C{maxConcurrent} is below 1 or another limit
            is negative.
        """
        if maxConcurrent < 1:
            raise ValueError("maxConcurrent must be at least 1")
        if min(startInterval, domainInterval, timeout, maxQueued, maxEntries) < 0:
            raise ValueError("intervals, timeout and sizes must not be negative")
        self._clock = clock
        self._maxConcurrent = maxConcurrent
        self._startInterval = startInterval
        self._domainInterval = domainInterval
        self._timeout = timeout
        self._maxQueued = maxQueued
        self._maxEntries = maxEntries
        # Oldest first: pruning drops from the front.
        self._entries: dict[tuple[str, Hashable], _Entry] = {}
        # Every request queued or running, by (domain, key).
        self._requests: dict[tuple[str, Hashable], _Request] = {}
        # The queued requests of each domain (a heap); a domain without
        # queued requests has no entry.
        self._queues: dict[str, list[_Queued]] = {}
        self._queued = 0
        # Domains with a query running.
        self._busy: set[str] = set()
        # Domains resting after a query (domainInterval), with the time they
        # may be asked again; in that order, so expired ones are at the front.
        self._resting: dict[str, float] = {}
        # Domains that may start now, as (-priority, order, domain) of their
        # first request, and resting domains with queued requests, as
        # (readyAt, domain). Both heaps may hold stale entries, which
        # _peekReady and _peekResting skip.
        self._ready: list[tuple[int, int, str]] = []
        self._restingWork: list[tuple[float, str]] = []
        self._order = 0
        self._lastStart: float | None = None
        self._wakeUp: IDelayedCall | None = None
        self._pumping = False
        self._stopped = False
        self._refused = 0

    # -- the public API ------------------------------------------------------

    def ask(
        self,
        domain: str,
        key: Hashable,
        query: Callable[[], defer.Deferred[T]],
        *,
        ttl: float,
        errorTtl: float,
        priority: int = 0,
    ) -> defer.Deferred[T]:
        """
        Get the answer to C{query}: a fresh cached answer (or cached failure)
        at once; else join the queued or running identical request (same
        domain and key); else queue it.

        Cancelling the returned L{Deferred} only stops this caller's waiting;
        when nobody waits any more (and the answer was not L{prefetch}ed),
        the query is dropped from the queue, or cancelled if it runs, and
        nothing is cached.

        @param domain: the remote domain asked.
        @param key: what is asked; requests with the same domain and key
            share one query and one cached answer.
        @param query: starts the query; called when the limits allow, it
            returns a L{Deferred} (or raises).
        @param ttl: how long an answer is fresh, in seconds (a request that
            joins a queued or running one is cached with that one's TTLs).
        @param errorTtl: how long a failure is fresh, in seconds.
        @param priority: higher goes first; joining a queued request with a
            higher priority moves it up.
        @return: a L{Deferred} that fires with the answer, or fails with the
            query's failure, L{defer.TimeoutError}, L{QueueFull} (nothing was
            queued) or L{SchedulerStopped}.
        """
        entry = self._entries.get((domain, key))
        if entry is not None and self._isFresh(entry):
            if isinstance(entry.result, Failure):
                return defer.fail(entry.result)
            return defer.succeed(cast(T, entry.result))
        try:
            request = self._request(domain, key, query, ttl, errorTtl, priority)
        except (QueueFull, SchedulerStopped) as e:
            return defer.fail(e)

        def forget(waiter: defer.Deferred[T]) -> None:
            self._forget(request, waiter)

        waiter: defer.Deferred[T] = defer.Deferred(forget)
        request.waiters.append(waiter)
        # Only now: the query may answer synchronously.
        self._pump()
        return waiter

    def prefetch(
        self,
        domain: str,
        key: Hashable,
        query: Callable[[], defer.Deferred[Any]],
        *,
        ttl: float,
        errorTtl: float,
        priority: int = 0,
    ) -> None:
        """
        Like L{ask}, with nobody waiting: unless a fresh answer is cached,
        make sure the query runs, so that L{cached} has its answer later. A
        full queue or a stopped scheduler refuses it silently (the queue
        warns once when it fills).
        """
        entry = self._entries.get((domain, key))
        if entry is not None and self._isFresh(entry):
            return
        try:
            request = self._request(domain, key, query, ttl, errorTtl, priority)
        except (QueueFull, SchedulerStopped):
            return
        request.prefetched = True
        self._pump()

    def cached(self, domain: str, key: Hashable) -> Answer[object] | None:
        """
        @param domain: the remote domain.
        @param key: what was asked.
        @return: the last answer or failure cached, fresh or stale, or
            L{None} if there is none.
        """
        entry = self._entries.get((domain, key))
        if entry is None:
            return None
        return Answer(entry.result, entry.when, entry.expires, self._isFresh(entry))

    @property
    def timeout(self) -> float:
        """
        Seconds after which a running query is cancelled.
        """
        return self._timeout

    def isPending(self, domain: str, key: Hashable) -> bool:
        """
        @return: whether a query of C{key} to C{domain} is queued or running.
        """
        return (domain, key) in self._requests

    def load(self) -> tuple[int, int]:
        """
        @return: how many requests wait for their turn, and how many
            queries run.
        """
        return self._queued, len(self._busy)

    def stop(self) -> None:
        """
        Cancel the running queries, drop the queued ones and fail their
        waiters with L{SchedulerStopped}. Later requests fail the same way,
        unless a fresh answer is cached. No timer is left.
        """
        if self._stopped:
            return
        self._stopped = True
        self._cancelWakeUp()
        requests = list(self._requests.values())
        self._requests.clear()
        self._queues.clear()
        self._queued = 0
        self._ready.clear()
        self._restingWork.clear()
        self._resting.clear()
        for request in requests:
            request.abandoned = True
            if request.running is not None:
                request.running.cancel()
        for request in requests:
            waiters, request.waiters = request.waiters, []
            for waiter in waiters:
                if not waiter.called:
                    waiter.errback(SchedulerStopped())

    # -- requests ------------------------------------------------------------

    def _isFresh(self, entry: _Entry) -> bool:
        return self._clock.seconds() < entry.expires

    def _request(
        self,
        domain: str,
        key: Hashable,
        query: Callable[[], defer.Deferred[Any]],
        ttl: float,
        errorTtl: float,
        priority: int,
    ) -> _Request:
        """
        The request for C{key} to C{domain}: the one queued or running, or a
        new one, queued. The caller calls L{_pump} afterwards.

        @raise SchedulerStopped: if stopped.
        @raise QueueFull: if a new request would exceed C{maxQueued}.
        """
        if self._stopped:
            raise SchedulerStopped()
        request = self._requests.get((domain, key))
        if request is not None:
            if not request.started and priority > request.priority:
                self._removeQueued(request)
                request.priority = priority
                self._enqueue(request)
            return request
        if self._queued >= self._maxQueued:
            if not self._refused:
                self._log.warn(
                    "query scheduler: {queued} queries wait already; refusing more"
                    " (first {domain}) until the queue drains",
                    queued=self._queued,
                    domain=domain,
                )
            self._refused += 1
            raise QueueFull(f"{self._queued} queries queued")
        self._order += 1
        request = _Request(domain, key, query, ttl, errorTtl, priority, self._order)
        self._requests[(domain, key)] = request
        self._enqueue(request)
        self._queued += 1
        return request

    def _enqueue(self, request: _Request) -> None:
        """
        Put C{request} into its domain's queue and make the domain's first
        request known to the ready or resting heap.
        """
        domain = request.domain
        heapq.heappush(
            self._queues.setdefault(domain, []), (-request.priority, request.order, request)
        )
        readyAt = self._resting.get(domain)
        if readyAt is not None:
            heapq.heappush(self._restingWork, (readyAt, domain))
        else:
            self._pushReady(domain)
        self._compact()

    def _removeQueued(self, request: _Request) -> None:
        """
        Take the queued C{request} out of its domain's queue.
        """
        domain = request.domain
        queue = self._queues[domain]
        index = next(i for i, (_, _, queued) in enumerate(queue) if queued is request)
        queue[index] = queue[-1]
        queue.pop()
        heapq.heapify(queue)
        if not queue:
            del self._queues[domain]
        else:
            self._pushReady(domain)

    def _forget(self, request: _Request, waiter: defer.Deferred[Any]) -> None:
        """
        The canceller of L{ask}'s L{Deferred}: C{waiter} stops waiting; a
        request nobody wants any more is dropped or cancelled.
        """
        if waiter in request.waiters:
            request.waiters.remove(waiter)
        if request.waiters or request.prefetched or request.abandoned or self._stopped:
            return
        if not request.started:
            del self._requests[(request.domain, request.key)]
            self._removeQueued(request)
            self._dequeued()
            self._schedule()
            return
        request.abandoned = True
        # None while a synchronous query is still being started.
        if request.running is not None:
            request.running.cancel()

    def _dequeued(self) -> None:
        """
        One request less waits; a queue that had filled up has room again
        once it is half empty.
        """
        self._queued -= 1
        if self._refused and self._queued <= self._maxQueued // 2:
            self._log.info(
                "query scheduler: the queue has room again ({refused} queries were refused)",
                refused=self._refused,
            )
            self._refused = 0

    # -- starting and finishing ----------------------------------------------

    def _pump(self) -> None:
        """
        Start as many queued queries as the limits allow, then set the
        timer for the next one that has to wait.
        """
        if self._pumping or self._stopped:
            return
        self._pumping = True
        try:
            while len(self._busy) < self._maxConcurrent:
                now = self._clock.seconds()
                self._wakeRested(now)
                if (
                    self._lastStart is not None
                    and self._lastStart + self._startInterval > now + _EPSILON
                ):
                    break
                if self._peekReady() is None:
                    break
                _, _, domain = heapq.heappop(self._ready)
                self._start(domain, now)
        finally:
            self._pumping = False
        self._schedule()

    def _start(self, domain: str, now: float) -> None:
        """
        Start the first queued request of C{domain}.
        """
        queue = self._queues[domain]
        _, _, request = heapq.heappop(queue)
        if not queue:
            del self._queues[domain]
        self._dequeued()
        self._lastStart = now
        self._busy.add(domain)
        self._resting.pop(domain, None)
        self._log.debug(
            "query scheduler: asking {domain} for {key!r}", domain=domain, key=request.key
        )
        request.started = True
        running = defer.maybeDeferred(request.query)
        running.addTimeout(self._timeout, self._clock)
        request.running = running.addBoth(self._finished, request)

    def _finished(self, result: object, request: _Request) -> None:
        """
        A query ended: cache its result, give it to the waiters and start
        what may start now.
        """
        domain = request.domain
        self._busy.discard(domain)
        if self._stopped:
            return None
        if self._requests.get((domain, request.key)) is request:
            del self._requests[(domain, request.key)]
        now = self._clock.seconds()
        if self._domainInterval > 0:
            readyAt = self._resting[domain] = now + self._domainInterval
            if domain in self._queues:
                heapq.heappush(self._restingWork, (readyAt, domain))
        else:
            self._pushReady(domain)
        waiters, request.waiters = request.waiters, []
        if request.abandoned:
            # Nobody wanted it. Refill the slot on the next turn only (the
            # timer), so that a caller cancelling several requests in a row
            # does not start the ones it is about to cancel.
            self._fire(waiters, result)
            self._schedule()
            return None
        if isinstance(result, Failure):
            self._log.debug(
                "query scheduler: {domain} failed {key!r}: {error}",
                domain=domain,
                key=request.key,
                error=result.getErrorMessage(),
            )
        self._store(request, result, now)
        self._fire(waiters, result)
        self._pump()
        return None

    def _store(self, request: _Request, result: object, now: float) -> None:
        if isinstance(result, Failure):
            # Keep no frames (and the objects they hold) alive in the cache.
            result.cleanFailure()
            lifetime = request.errorTtl
        else:
            lifetime = request.ttl
        key = (request.domain, request.key)
        self._entries.pop(key, None)
        if lifetime <= 0:
            # Asked not to cache (the crawler's discoveries): keep nothing,
            # so that big answers do not crowd out the ones that are kept.
            return
        self._entries[key] = _Entry(result, now, now + lifetime)
        while len(self._entries) > self._maxEntries:
            del self._entries[next(iter(self._entries))]

    @staticmethod
    def _fire(waiters: list[defer.Deferred[Any]], result: object) -> None:
        for waiter in waiters:
            # A waiter's callback may have cancelled another waiter.
            if waiter.called:
                continue
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    # -- which domain is next ------------------------------------------------

    def _pushReady(self, domain: str) -> None:
        """
        Offer C{domain}'s first queued request to L{_ready}, if the domain
        may start one now.
        """
        queue = self._queues.get(domain)
        if queue and domain not in self._busy and domain not in self._resting:
            priority, order, _ = queue[0]
            heapq.heappush(self._ready, (priority, order, domain))

    def _peekReady(self) -> str | None:
        """
        @return: the domain whose first request goes next, or L{None}; stale
            entries at the top of L{_ready} are dropped.
        """
        while self._ready:
            priority, order, domain = self._ready[0]
            queue = self._queues.get(domain)
            if (
                queue is not None
                and queue[0][0] == priority
                and queue[0][1] == order
                and domain not in self._busy
                and domain not in self._resting
            ):
                return domain
            heapq.heappop(self._ready)
        return None

    def _wakeRested(self, now: float) -> None:
        """
        End the rest of the domains whose C{domainInterval} has passed, and
        offer their queued requests.
        """
        while self._resting:
            domain = next(iter(self._resting))
            if self._resting[domain] > now + _EPSILON:
                break
            del self._resting[domain]
        while self._restingWork and self._restingWork[0][0] <= now + _EPSILON:
            _, domain = heapq.heappop(self._restingWork)
            self._pushReady(domain)

    def _peekResting(self) -> float | None:
        """
        @return: when the first resting domain with queued requests may be
            asked again, or L{None}; stale entries are dropped.
        """
        while self._restingWork:
            readyAt, domain = self._restingWork[0]
            if (
                domain in self._queues
                and domain not in self._busy
                and self._resting.get(domain) == readyAt
            ):
                return readyAt
            heapq.heappop(self._restingWork)
        return None

    def _compact(self) -> None:
        """
        Rebuild the heaps when stale entries outnumber the live ones (after
        many priority changes or cancellations).
        """
        limit = 2 * len(self._queues) + 64
        if len(self._ready) > limit:
            self._ready = []
            for domain in self._queues:
                self._pushReady(domain)
        if len(self._restingWork) > limit:
            self._restingWork = [
                (readyAt, domain)
                for domain, readyAt in self._resting.items()
                if domain in self._queues
            ]
            heapq.heapify(self._restingWork)

    # -- the timer -----------------------------------------------------------

    def _schedule(self) -> None:
        """
        Set the timer for the next start, or cancel it when nothing could
        start (idle, or every slot taken: a query ending pumps). A start due
        now waits for the next turn of the clock.
        """
        if self._pumping:
            return
        if self._stopped:
            self._cancelWakeUp()
            return
        now = self._clock.seconds()
        self._wakeRested(now)
        at = self._nextStart(now)
        if at is None:
            self._cancelWakeUp()
            return
        if self._wakeUp is not None and self._wakeUp.active():
            if abs(self._wakeUp.getTime() - at) <= _EPSILON:
                return
            self._wakeUp.cancel()
        self._wakeUp = self._clock.callLater(max(0.0, at - now), self._wake)

    def _nextStart(self, now: float) -> float | None:
        """
        @return: when the next queued request may start, or L{None} if none
            can until a running query ends.
        """
        if len(self._busy) >= self._maxConcurrent:
            return None
        gate = now if self._lastStart is None else self._lastStart + self._startInterval
        if self._peekReady() is not None:
            return max(now, gate)
        readyAt = self._peekResting()
        if readyAt is not None:
            return max(now, gate, readyAt)
        return None

    def _wake(self) -> None:
        self._wakeUp = None
        self._pump()

    def _cancelWakeUp(self) -> None:
        if self._wakeUp is not None and self._wakeUp.active():
            self._wakeUp.cancel()
        self._wakeUp = None
