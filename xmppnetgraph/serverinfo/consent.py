# -*- test-case-name: tests.test_serverinfo_consent -*-
"""
Whether a peer consents to be named in our XEP-0485 item: it does if the
disco#info of its bare domain lists the feature C{urn:xmpp:serverinfo:0}.

Answers are cached (an hour by default; errors and timeouts count as no
consent and are cached for less), re-checked when stale, coalesced per
domain and rate-limited, so that a burst of new links becomes a trickle of
disco#info queries.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Collection, Iterable
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber.error import StanzaError

from xmppnetgraph.model import ConsentState
from xmppnetgraph.names import normalizeDomain
from xmppnetgraph.serverinfo.payload import NS_SERVERINFO

FeatureQuery = Callable[[str], "defer.Deferred[set[str]]"]


@attrs.define
class _Entry:
    consents: bool
    checkedAt: float
    error: str | None
    expiresAt: float


class ConsentChecker:
    """
    A cache of peers' consent, fed by rate-limited disco#info queries.

    @ivar ttl: how long an answer is fresh, in seconds.
    @ivar negativeTtl: how long a failed check (error, timeout) is fresh.
    """

    _log = Logger()

    def __init__(
        self,
        query: FeatureQuery,
        clock: IReactorTime,
        *,
        ttl: float = 3600.0,
        negativeTtl: float = 300.0,
        timeout: float = 30.0,
        maxConcurrent: int = 4,
        minInterval: float = 0.05,
        maxQueued: int = 10_000,
        maxEntries: int = 100_000,
        allowlist: Iterable[str] = frozenset(),
    ) -> None:
        """
        @param query: asks a domain for its disco#info features; returns a
            L{Deferred} that fires with the feature set or fails.
        @param clock: the time source and scheduler.
        @param ttl: see L{ttl}.
        @param negativeTtl: see L{negativeTtl}.
        @param timeout: a query not answered after this many seconds is
            cancelled and counts as a failure.
        @param maxConcurrent: at most this many queries run at once.
        @param minInterval: at least this many seconds between the starts of
            two queries.
        @param maxQueued: at most this many domains wait for a query; checks
            beyond that answer C{False} at once and are not cached.
        @param maxEntries: at most this many answers are cached; the oldest
            go first.
        @param allowlist: domains treated as consenting without asking (see
            L{loadAllowlist}).
        """
        if maxConcurrent < 1:
            raise ValueError("maxConcurrent must be at least 1")
        self._query = query
        self._clock = clock
        self.ttl = ttl
        self.negativeTtl = negativeTtl
        self._timeout = timeout
        self._maxConcurrent = maxConcurrent
        self._minInterval = minInterval
        self._maxQueued = maxQueued
        self._maxEntries = maxEntries
        self._allowlist = frozenset(allowlist)
        self._entries: dict[str, _Entry] = {}
        self._queue: deque[str] = deque()
        # Domains queued or being asked, with the check() calls waiting.
        self._pending: dict[str, list[defer.Deferred[bool]]] = {}
        self._running: dict[str, defer.Deferred[tuple[bool, str | None]]] = {}
        self._callbacks: list[Callable[[str], object]] = []
        self._lastStart: float | None = None
        self._wakeUp: IDelayedCall | None = None
        self._pumping = False
        self._stopped = False
        self._queueFull = False

    def consents(self, domain: str) -> bool:
        """
        Answer from the cache, at once.

        An unknown domain does not consent (yet): a check is scheduled, and
        L{onChange} callbacks hear if the answer turns out to be yes. A stale
        answer is returned while a re-check is scheduled.

        @param domain: the peer's bare domain.
        @return: whether C{domain} may be named.
        """
        if domain in self._allowlist:
            return True
        entry = self._entries.get(domain)
        if entry is None or self._isStale(entry):
            if self._enqueue(domain) is not None:
                self._pump()
        return entry.consents if entry is not None else False

    def check(self, domain: str) -> defer.Deferred[bool]:
        """
        Find out whether C{domain} consents, asking it if the cache has no
        fresh answer. Concurrent checks of one domain share one query.

        @param domain: the peer's bare domain.
        @return: a L{Deferred} that fires with the answer; it never fails
            (a failed query is C{False}). Cancelling it only stops waiting.
        """
        if domain in self._allowlist:
            return defer.succeed(True)
        entry = self._entries.get(domain)
        if entry is not None and not self._isStale(entry):
            return defer.succeed(entry.consents)
        waiters = self._enqueue(domain)
        if waiters is None:
            return defer.succeed(entry.consents if entry is not None else False)

        def forget(waiter: defer.Deferred[bool]) -> None:
            if waiter in waiters:
                waiters.remove(waiter)

        waiter: defer.Deferred[bool] = defer.Deferred(forget)
        waiters.append(waiter)
        # Only now: the query may answer synchronously.
        self._pump()
        return waiter

    def state(self, domain: str) -> ConsentState:
        """
        @param domain: the peer's bare domain.
        @return: what is known about C{domain}'s consent.
        """
        entry = self._entries.get(domain)
        pending = domain in self._pending
        if domain in self._allowlist:
            return ConsentState(True, None, None, allowlisted=True)
        if entry is None:
            return ConsentState(None, None, None, pending=pending)
        return ConsentState(entry.consents, entry.checkedAt, entry.error, pending=pending)

    def onChange(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """
        Call C{callback(domain)} whenever a check changes whether C{domain}
        consents (an unknown domain counts as not consenting, so a first
        answer of no is no change).

        @return: a function that removes the callback again.
        """
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def stop(self) -> None:
        """
        Cancel all queued and running queries. Waiting L{check} calls get
        the cached answer, or C{False}; later calls only read the cache.
        """
        self._stopped = True
        if self._wakeUp is not None and self._wakeUp.active():
            self._wakeUp.cancel()
        self._wakeUp = None
        self._queue.clear()
        for running in list(self._running.values()):
            running.cancel()
        self._running.clear()
        pending, self._pending = self._pending, {}
        for domain, waiters in pending.items():
            entry = self._entries.get(domain)
            for waiter in waiters:
                waiter.callback(entry.consents if entry is not None else False)

    def _isStale(self, entry: _Entry) -> bool:
        return self._clock.seconds() >= entry.expiresAt

    def _enqueue(self, domain: str) -> list[defer.Deferred[bool]] | None:
        """
        Queue a query for C{domain} unless one is queued or running. The
        caller calls L{_pump} afterwards.

        @return: the list of waiters for that query, or L{None} if there is
            none (stopped, or the queue is full).
        """
        if self._stopped:
            return None
        waiters = self._pending.get(domain)
        if waiters is not None:
            return waiters
        if len(self._queue) >= self._maxQueued:
            if not self._queueFull:
                self._queueFull = True
                self._log.warn(
                    "serverinfo consent: {queued} checks queued; "
                    "more peers are not checked for now",
                    queued=len(self._queue),
                )
            return None
        self._queueFull = False
        self._queue.append(domain)
        waiters = self._pending[domain] = []
        return waiters

    def _pump(self) -> None:
        """
        Start as many queued queries as the limits allow; wake up later if
        C{minInterval} holds the next one back.
        """
        if self._pumping or self._stopped:
            return
        self._pumping = True
        try:
            while self._queue and len(self._running) < self._maxConcurrent:
                now = self._clock.seconds()
                if self._lastStart is not None and now - self._lastStart < self._minInterval:
                    if self._wakeUp is None or not self._wakeUp.active():
                        delay = self._minInterval - (now - self._lastStart)
                        self._wakeUp = self._clock.callLater(delay, self._pump)
                    return
                self._lastStart = now
                self._start(self._queue.popleft())
        finally:
            self._pumping = False

    def _start(self, domain: str) -> None:
        self._log.debug("serverinfo consent: asking {domain} for its disco#info", domain=domain)
        query = defer.maybeDeferred(self._query, domain)
        query.addTimeout(self._timeout, self._clock)
        finished = query.addCallbacks(
            self._answered, self._failed, callbackArgs=(domain,), errbackArgs=(domain,)
        )
        self._running[domain] = finished
        finished.addBoth(self._finished, domain)

    def _answered(self, features: Collection[str], domain: str) -> tuple[bool, str | None]:
        try:
            if isinstance(features, (str, bytes)):
                raise TypeError(f"a string is not a feature set: {features!r}")
            return NS_SERVERINFO in features, None
        except Exception:
            self._log.failure(
                "serverinfo consent: {domain} gave an unusable feature set", domain=domain
            )
            return False, "unusable answer"

    def _failed(self, reason: Failure, domain: str) -> tuple[bool, str | None] | Failure:
        if reason.check(defer.CancelledError) and self._stopped:
            return reason
        if reason.check(defer.TimeoutError):
            error = "timeout"
        elif isinstance(reason.value, StanzaError):
            error = str(reason.value.condition)
        else:
            error = f"{type(reason.value).__name__}: {reason.getErrorMessage()}"
            self._log.failure(
                "serverinfo consent: disco#info to {domain} failed", reason, domain=domain
            )
        self._log.info(
            "serverinfo consent: no answer from {domain} ({error})", domain=domain, error=error
        )
        return False, error

    def _finished(self, result: tuple[bool, str | None] | Failure, domain: str) -> None:
        self._running.pop(domain, None)
        if self._stopped:
            return None
        if isinstance(result, Failure):
            self._log.failure("serverinfo consent: checking {domain} failed", result, domain=domain)
            result = (False, "internal error")
        consents, error = result
        now = self._clock.seconds()
        old = self._entries.pop(domain, None)
        lifetime = self.ttl if error is None else self.negativeTtl
        self._entries[domain] = _Entry(consents, now, error, now + lifetime)
        self._prune()
        for waiter in self._pending.pop(domain, []):
            waiter.callback(consents)
        before = old.consents if old is not None else False
        if before != consents and domain not in self._allowlist:
            self._log.info(
                "serverinfo consent: {domain} {now}",
                domain=domain,
                now="consents to be named" if consents else "no longer consents to be named",
            )
            for callback in list(self._callbacks):
                try:
                    callback(domain)
                except Exception:
                    self._log.failure(
                        "serverinfo consent: change callback {callback!r} failed", callback=callback
                    )
        self._pump()
        return None

    def _prune(self) -> None:
        while len(self._entries) > self._maxEntries:
            del self._entries[next(iter(self._entries))]


def loadAllowlist(path: str | os.PathLike[str]) -> frozenset[str]:
    """
    Read an allowlist file: one domain per line; blank lines and everything
    after a C{#} are ignored.

    @param path: the file.
    @return: the domains, normalised.
    @raise ValueError: if a line is not a valid domain (the message names the
        file and line).
    @raise OSError: if the file cannot be read.
    """
    domains = set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                domains.add(normalizeDomain(text))
            except ValueError as e:
                raise ValueError(f"{os.fspath(path)}:{number}: {e}") from None
    return frozenset(domains)


def discoFeatures(discoClient: Any, sender: str) -> Callable[[str], defer.Deferred[set[str]]]:
    """
    The query a L{ConsentChecker} needs, made with a Wokkel
    C{DiscoClientProtocol} attached to a component with a working
    C{request()} (L{xmppnetgraph.component.LocalComponent}).

    @param sender: our domain, which asks.
    @return: domain -> the features of its disco#info.
    """
    from twisted.words.protocols.jabber.jid import JID

    def features(domain: str) -> defer.Deferred[set[str]]:
        d = discoClient.requestInfo(JID(domain), sender=JID(sender))
        return d.addCallback(lambda info: set(info.features))

    return features
