# -*- test-case-name: tests.test_serverinfo_consent -*-
"""
Whether a peer consents to be named in our XEP-0485 item: it does if the
disco#info of its bare domain lists the feature C{urn:xmpp:serverinfo:0}.

The queries go through the node's L{QueryScheduler}, which coalesces,
rate-limits and caches them: answers for an hour by default; errors and
timeouts count as no consent and are cached for less. A burst of new links
becomes a trickle of disco#info queries.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable

import attrs
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber.error import StanzaError
from wokkel.disco import DiscoClientProtocol, DiscoInfo

from xmppnetgraph.error import QueueFull, SchedulerStopped, XmppNetGraphError
from xmppnetgraph.interfaces import IChangeFeed
from xmppnetgraph.model import ConsentChanged, ConsentState
from xmppnetgraph.names import listEntries, normalizeDomain
from xmppnetgraph.scheduler import Answer, QueryScheduler
from xmppnetgraph.serverinfo.payload import NS_SERVERINFO

FeatureQuery = Callable[[str], "defer.Deferred[set[str]]"]

# The scheduler's key for a consent check (its answer: a bool).
_KEY = "serverinfo consent"


class _UnusableAnswer(XmppNetGraphError):
    """
    The peer's disco#info gave no usable feature set.
    """


@attrs.define(eq=False)
class _Check:
    """
    Our one scheduler request for a domain, and the L{ConsentChecker.check}
    calls waiting for it.

    @ivar before: whether the domain consented when we asked.
    @ivar asking: the scheduler's L{Deferred}, or L{None} until it is known.
    """

    before: bool
    waiters: list[defer.Deferred[bool]] = attrs.Factory(list)
    asking: defer.Deferred[bool] | None = None


def _consentOf(answer: Answer[object] | None) -> bool:
    """
    @return: whether a cached answer says the peer consents (no answer and
        failures say no).
    """
    return answer is not None and answer.result is True


def _describe(reason: Failure) -> str:
    """
    @return: why a check failed, in a few words for L{ConsentState.error}.
    """
    if isinstance(reason.value, defer.TimeoutError):
        return "timeout"
    if isinstance(reason.value, StanzaError):
        return str(reason.value.condition)
    if isinstance(reason.value, _UnusableAnswer):
        return "unusable answer"
    return f"{type(reason.value).__name__}: {reason.getErrorMessage()}"


class ConsentChecker:
    """
    Peers' consent, asked by disco#info queries through a L{QueryScheduler}
    that caches the answers.

    @ivar ttl: how long an answer is fresh, in seconds.
    @ivar negativeTtl: how long a failed check (error, timeout) is fresh.
    """

    _log = Logger()

    def __init__(
        self,
        query: FeatureQuery,
        scheduler: QueryScheduler,
        feed: IChangeFeed,
        *,
        ttl: float = 3600.0,
        negativeTtl: float = 300.0,
        allowlist: Iterable[str] = frozenset(),
    ) -> None:
        """
        @param query: asks a domain for its disco#info features; returns a
            L{Deferred} that fires with the feature set or fails.
        @param scheduler: runs, limits and caches the queries (its timeout,
            concurrency, start interval, queue and cache sizes apply); it
            may be shared with other users, and whoever made it stops it.
        @param feed: where L{ConsentChanged} is announced when a check
            changes whether a domain consents (an unknown domain counts as
            not consenting, so a first answer of no is no change).
        @param ttl: see L{ttl}.
        @param negativeTtl: see L{negativeTtl}.
        @param allowlist: domains treated as consenting without asking (see
            L{loadAllowlist}).
        """
        self._query = query
        self._scheduler = scheduler
        self.ttl = ttl
        self.negativeTtl = negativeTtl
        self._allowlist = frozenset(allowlist)
        # Domains we asked the scheduler about and wait for.
        self._checks: dict[str, _Check] = {}
        self._feed = feed
        self._stopped = False

    def consents(self, domain: str) -> bool:
        """
        Answer from the cache, at once.

        An unknown domain does not consent (yet): a check is scheduled, and
        a L{ConsentChanged} on the feed tells if the answer turns out to be
        yes. A stale answer is returned while a re-check is scheduled.

        @param domain: the peer's bare domain.
        @return: whether C{domain} may be named.
        """
        if domain in self._allowlist:
            return True
        answer = self._scheduler.cached(domain, _KEY)
        if answer is None or not answer.fresh:
            self._ask(domain, answer, None)
        return _consentOf(answer)

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
        answer = self._scheduler.cached(domain, _KEY)
        if self._stopped or (answer is not None and answer.fresh):
            return defer.succeed(_consentOf(answer))

        def forget(waiter: defer.Deferred[bool]) -> None:
            check = self._checks.get(domain)
            if check is not None and waiter in check.waiters:
                check.waiters.remove(waiter)

        waiter: defer.Deferred[bool] = defer.Deferred(forget)
        self._ask(domain, answer, waiter)
        return waiter

    def state(self, domain: str) -> ConsentState:
        """
        @param domain: the peer's bare domain.
        @return: what is known about C{domain}'s consent.
        """
        if domain in self._allowlist:
            return ConsentState(True, None, None, allowlisted=True)
        answer = self._scheduler.cached(domain, _KEY)
        pending = self._scheduler.isPending(domain, _KEY)
        if answer is None:
            return ConsentState(None, None, None, pending=pending)
        error = _describe(answer.result) if isinstance(answer.result, Failure) else None
        return ConsentState(_consentOf(answer), answer.when, error, pending=pending)

    def stop(self) -> None:
        """
        Stop waiting for answers: waiting L{check} calls get the cached
        answer, or C{False}; later calls only read the cache.

        The scheduler is not stopped (it may serve others), but a query only
        this checker wanted is dropped from its queue or cancelled.
        """
        self._stopped = True
        checks, self._checks = self._checks, {}
        for domain, check in checks.items():
            consents = _consentOf(self._scheduler.cached(domain, _KEY))
            for waiter in check.waiters:
                if not waiter.called:
                    waiter.callback(consents)
        for check in checks.values():
            if check.asking is not None:
                check.asking.cancel()

    def _ask(
        self, domain: str, answer: Answer[object] | None, waiter: defer.Deferred[bool] | None
    ) -> None:
        """
        Ask the scheduler about C{domain} unless we wait for it already;
        C{waiter} (if any) fires with the outcome.

        @param answer: what the cache holds for C{domain} now.
        """
        if self._stopped:
            if waiter is not None:
                waiter.callback(_consentOf(answer))
            return
        check = self._checks.get(domain)
        if check is not None:
            if waiter is not None:
                check.waiters.append(waiter)
            return
        check = self._checks[domain] = _Check(_consentOf(answer))
        if waiter is not None:
            check.waiters.append(waiter)
        asking = self._scheduler.ask(
            domain,
            _KEY,
            lambda: self._features(domain),
            ttl=self.ttl,
            errorTtl=self.negativeTtl,
        )
        check.asking = asking
        # It may have fired already: a full queue, or a synchronous query.
        asking.addCallbacks(
            self._answered, self._failed, callbackArgs=(domain, check), errbackArgs=(domain, check)
        )

    def _features(self, domain: str) -> defer.Deferred[bool]:
        """
        The query the scheduler runs (and logs): ask C{domain} for its
        features.

        @return: a L{Deferred} firing with whether they include ours, or
            failing (with L{_UnusableAnswer} if they are no feature set).
        """
        features = defer.maybeDeferred(self._query, domain)
        return features.addCallback(self._consentIn, domain)

    def _consentIn(self, features: Collection[str], domain: str) -> bool:
        try:
            if isinstance(features, (str, bytes)):
                raise TypeError(f"a string is not a feature set: {features!r}")
            return NS_SERVERINFO in features
        except Exception:
            self._log.failure(
                "serverinfo consent: {domain} gave an unusable feature set", domain=domain
            )
            raise _UnusableAnswer(domain) from None

    def _answered(self, consents: bool, domain: str, check: _Check) -> None:
        if self._checks.get(domain) is not check:
            return None
        del self._checks[domain]
        self._done(domain, check, consents)
        return None

    def _failed(self, reason: Failure, domain: str, check: _Check) -> None:
        if self._checks.get(domain) is not check:
            # Stopped: the waiters have their answer.
            return None
        del self._checks[domain]
        if isinstance(reason.value, (QueueFull, SchedulerStopped)):
            # Not asked: nothing new is known.
            self._done(domain, check, check.before)
            return None
        error = _describe(reason)
        if not isinstance(reason.value, (defer.TimeoutError, StanzaError, _UnusableAnswer)):
            self._log.failure(
                "serverinfo consent: disco#info to {domain} failed", reason, domain=domain
            )
        self._log.info(
            "serverinfo consent: no answer from {domain} ({error})", domain=domain, error=error
        )
        self._done(domain, check, False)
        return None

    def _done(self, domain: str, check: _Check, consents: bool) -> None:
        """
        Give the waiters the outcome of a check and announce it if it
        changed whether C{domain} consents.
        """
        for waiter in check.waiters:
            if not waiter.called:
                waiter.callback(consents)
        if check.before == consents or domain in self._allowlist:
            return
        self._log.info(
            "serverinfo consent: {domain} {now}",
            domain=domain,
            now="consents to be named" if consents else "no longer consents to be named",
        )
        self._feed.emit(ConsentChanged(domain, consents))


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
        for number, text in listEntries(f):
            try:
                domains.add(normalizeDomain(text))
            except ValueError as e:
                raise ValueError(f"{os.fspath(path)}:{number}: {e}") from None
    return frozenset(domains)


def discoFeatures(
    discoClient: DiscoClientProtocol, sender: str
) -> Callable[[str], defer.Deferred[set[str]]]:
    """
    The query a L{ConsentChecker} needs, made with a Wokkel
    C{DiscoClientProtocol} attached to a component with a working
    C{request()} (L{xmppnetgraph.component.LocalComponent}).

    @param sender: our domain, which asks.
    @return: domain -> the features of its disco#info.
    """
    from twisted.words.protocols.jabber.jid import JID

    def features(domain: str) -> defer.Deferred[set[str]]:
        # Wokkel is untyped: the Deferred fires with a DiscoInfo.
        d: defer.Deferred[DiscoInfo] = discoClient.requestInfo(JID(domain), sender=JID(sender))
        return d.addCallback(lambda info: set(info.features))

    return features
