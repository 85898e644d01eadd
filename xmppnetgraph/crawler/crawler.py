# -*- test-case-name: tests.test_crawler -*-
"""
The crawl loop: which domain is fetched when, what a fetch stores, and
the subscriptions that keep publishers' reports current between fetches.

Domains come from the seeds, this node's own links, the named peers in
reports and submissions. Each fetch is one discovery (L{Discovery}) run
through the node's L{QueryScheduler} (global concurrency, one request in
flight per domain, a minimum interval per domain); the crawler itself
only decides the order: submitted domains first, then new ones, then
refreshes, each when it is due.

After a fetch:
  - the facts are recorded (one timestamp when nothing changed);
  - a report that counts is stored, after the caps (see L{CrawlSettings})
    and the exclusion list: names over a cap are kept as anonymous links;
  - a domain that no longer consents, or has no node or item any more,
    loses its links (its report is stored empty; history keeps them);
  - a publisher's node is subscribed to (again, idempotently, on every
    fetch: that renews subscriptions a restarted publisher lost), and
    notifications from exactly that service and node update its report;
  - the next fetch is due after L{CrawlSettings.refresh} when subscribed,
    L{CrawlSettings.poll} when not or when the subscription went quiet
    (nothing heard for half a refresh interval), or after a backoff with jitter
    when the fetch failed.

A full store (L{StorageFull}) pauses the whole crawl rather than failing
domain after domain: nothing is fetched for a while (L{CrawlSettings.backoffBase},
doubled while the store stays full, up to L{CrawlSettings.refresh}), then
one fetch at a time tries again until a write succeeds. The log says so
once when the store fills and once when crawling resumes; the fetches
that met the full store are fetched again after the pause.

Every L{CrawlSettings.staleAfter} / 4 the store marks the domains not seen
within that window as stale.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Protocol

import attrs
from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.xish import domish
from zope.interface import implementer

from xmppnetgraph.crawler.discovery import Discovery, reportFromItems
from xmppnetgraph.error import (
    InvalidDomainName,
    QueueFull,
    SchedulerStopped,
    StorageError,
    StorageFull,
    XmppNetGraphError,
)
from xmppnetgraph.graphview import serviceParent
from xmppnetgraph.interfaces import IChangeFeed, ICrawler, IGraphStore, ILinkTable
from xmppnetgraph.model import (
    CrawlQueue,
    CrawlSource,
    CrawlStatus,
    DiscoveryStep,
    DomainFacts,
    Link,
    LinkDown,
    LinkUp,
    SubmitOutcome,
)
from xmppnetgraph.names import normalizeDomain
from xmppnetgraph.scheduler import QueryScheduler
from xmppnetgraph.serverinfo.payload import RemoteDomain

# The scheduler's key for a discovery.
_KEY = "crawl"

# Priority classes, most urgent first.
_SUBMITTED, _NEW, _REFRESH = 0, 1, 2

# Outcomes after which a domain's stored links no longer count: it said
# so itself (they are not failures to reach it).
_WITHDRAWN = frozenset({"no-consent", "no-pubsub", "no-node", "no-item"})


class Subscriber(Protocol):
    """
    Subscribes our domain to a publisher's node (XEP-0060 section 6.1).
    """

    def subscribeTo(self, service: str, node: str) -> defer.Deferred[str]:
        """
        @return: a L{Deferred} firing with the subscription's state
            (C{"subscribed"}, C{"pending"}, C{"unconfigured"}), or failing
            (a L{StanzaError<twisted.words.protocols.jabber.error.StanzaError>}
            when refused).
        """


@attrs.frozen
class CrawlSettings:
    """
    The crawler's intervals and caps (the C{--crawl-*}, C{--max-*} and
    C{--stale-after} options).

    @ivar poll: seconds between fetches of a publisher we are not
        subscribed to.
    @ivar refresh: seconds between fetches of any other domain.
    @ivar staleAfter: seconds without news after which a domain is stale.
    @ivar maxDomains: most domains the crawler knows.
    @ivar maxNewDomainsPerReporter: most domains one reporter's reports add
        per hour.
    @ivar maxReportDomains: most remote domains taken from one report.
    @ivar backoffBase: seconds before the first retry of a failed fetch;
        doubled on each further failure, up to L{refresh}, with jitter.
    @ivar recentFetch: a domain fetched less than this many seconds ago is
        not fetched again for a submission.
    @ivar maxInFlight: most fetches handed to the scheduler at once (its
        own limits decide how many of them run).
    @ivar quietStart: the seconds over which the known domains' first
        refreshes after a start are spread.
    """

    poll: float = 300.0
    refresh: float = 3600.0
    staleAfter: float = 6 * 3600.0
    maxDomains: int = 100_000
    maxNewDomainsPerReporter: int = 500
    maxReportDomains: int = 10_000
    backoffBase: float = 60.0
    recentFetch: float = 60.0
    maxInFlight: int = 256
    quietStart: float = 60.0


@attrs.define(eq=False)
class _Domain:
    """
    The crawler's state for one domain.

    @ivar due: when it is fetched next (L{None}: not scheduled).
    @ivar klass: its priority class for that fetch.
    @ivar generation: bumped whenever C{due} changes, so that stale heap
        entries are recognised.
    @ivar heard: when our subscription last showed life (it began, or a
        notification came), or L{None}.
    """

    name: str
    source: CrawlSource
    state: str = "queued"
    due: float | None = None
    klass: int = _NEW
    generation: int = 0
    lastFetch: float | None = None
    failures: int = 0
    consents: bool | None = None
    service: str | None = None
    node: str | None = None
    subscription: str | None = None
    heard: float | None = None
    hasReport: bool = False
    submitted: bool = False


@attrs.define
class _Budget:
    """
    How many new domains one reporter added in the current hour.
    """

    start: float
    used: int = 0
    warned: bool = False


@implementer(ICrawler)
class Crawler(service.Service):
    """
    The crawl loop (see the module docstring).
    """

    _log = Logger()

    def __init__(
        self,
        *,
        clock: IReactorTime,
        scheduler: QueryScheduler,
        discover: Callable[[str], defer.Deferred[Discovery]],
        store: IGraphStore,
        feed: IChangeFeed,
        linkTable: ILinkTable,
        subscriber: Subscriber,
        localDomains: Collection[str],
        seeds: Iterable[str] = (),
        excluded: Callable[[str], bool] = lambda domain: False,
        settings: CrawlSettings = CrawlSettings(),
        directTLS: Callable[[str], defer.Deferred[bool | None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """
        @param clock: the time source and timer.
        @param scheduler: runs the discoveries (shared with the node's
            other remote queries).
        @param discover: discovers one domain; never fails for remote
            trouble (that is in the result).
        @param store: the graph store.
        @param feed: the change feed (new links name new domains).
        @param linkTable: this node's links (their stream facts go with the
            facts of the domain).
        @param subscriber: subscribes to publishers' nodes.
        @param localDomains: this node's domains (crawled like any other;
            their links come from our own publisher).
        @param seeds: the domains to start from.
        @param excluded: whether a domain is on the exclusion list.
        @param settings: intervals and caps.
        @param directTLS: whether a domain offers XEP-0368 direct TLS (by
            DNS), or L{None} if unknown; not asked when not given.
        @param rng: the jitter's source.
        """
        self._clock = clock
        self._scheduler = scheduler
        self._discover = discover
        self._store = store
        self._feed = feed
        self._linkTable = linkTable
        self._subscriber = subscriber
        self._localDomains = frozenset(localDomains)
        self._seeds = tuple(seeds)
        self._excluded = excluded
        self.settings = settings
        self._random = rng or random.Random()
        self._directTLS = directTLS
        self._domains: dict[str, _Domain] = {}
        # (due, sequence, generation, domain): fetches not due yet.
        self._waiting: list[tuple[float, int, int, str]] = []
        # (class, due, sequence, generation, domain): due, not started.
        self._ready: list[tuple[int, float, int, int, str]] = []
        self._sequence = itertools.count()
        self._inFlight: dict[str, defer.Deferred[None]] = {}
        self._timer: IDelayedCall | None = None
        self._timerAt: float | None = None
        self._bySubscription: dict[tuple[str, str], str] = {}
        self._budgets: dict[str, _Budget] = {}
        self._ignoredSenders: set[tuple[str, str]] = set()
        # The store was full: no fetch starts before _fullUntil, then one
        # at a time until a write works (_storeFullWarned until then).
        self._storeFullWarned = False
        self._fullUntil: float | None = None
        # A store failure other than full was logged (until a write works).
        self._storeErrorWarned = False
        # --max-domains was reached and said so.
        self._maxDomainsWarned = False
        self._fullPauses = 0
        self._removeObservers: list[Callable[[], None]] = []
        # Our live links by remote domain (kept from the feed: a fetch
        # looks up its domain's streams without scanning the table).
        self._links: dict[str, dict[int, Link]] = {}
        self._staleCall: LoopingCall | None = None
        self._starting: defer.Deferred[None] | None = None
        self._writes: set[defer.Deferred[Any]] = set()

    # Service

    def startService(self) -> None:
        """
        Queue the seeds, our links and every domain in the store, observe
        new links, and start the stale check.
        """
        super().startService()
        removeUp = self._feed.observe(LinkUp, self._linkUp)
        removeDown = self._feed.observe(LinkDown, self._linkDown)
        self._removeObservers = [removeUp, removeDown]
        for seed in self._seeds:
            self._add(seed, "seed", _NEW)
        for link in self._linkTable.links():
            self._linkUp(LinkUp(link))
        self._starting = defer.Deferred.fromCoroutine(self._loadStore())
        self._staleCall = LoopingCall(self._markStale)
        self._staleCall.clock = self._clock
        self._staleCall.start(min(self.settings.staleAfter / 4, 600.0), now=False).addErrback(
            lambda f: self._log.failure("stale check stopped", f)
        )

    def stopService(self) -> defer.Deferred[None]:
        """
        Stop fetching; wait for the fetches that run (the scheduler, which
        is stopped after us, fails the ones that wait).
        """
        super().stopService()
        for remove in self._removeObservers:
            remove()
        self._removeObservers = []
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._staleCall is not None and self._staleCall.running:
            self._staleCall.stop()
        running = list(self._inFlight.values())
        if self._starting is not None:
            running.append(self._starting)
        for d in running:
            d.cancel()
        # Writes already sent to the database are let finish.
        running.extend(self._writes)
        return defer.DeferredList(running, consumeErrors=True).addCallback(lambda _: None)

    async def _loadStore(self) -> None:
        """
        Queue every current domain of the store for a refresh, spread over
        L{CrawlSettings.quietStart} (nothing is lost across a restart:
        subscriptions are renewed on these fetches).
        """
        try:
            snapshot = await self._store.graph()
        except defer.CancelledError:
            return
        except Exception:
            self._log.failure("could not read the known domains from the store")
            return
        now = self._clock.seconds()
        for known in snapshot.domains:
            due = now + self._random.uniform(0, self.settings.quietStart)
            self._add(known.domain, "store", _REFRESH, due=due, quiet=True)
        self._log.info(
            "crawler: {count} known domains queued, {seeds} seeds",
            count=len(snapshot.domains),
            seeds=len(self._seeds),
        )

    # ICrawler

    def submit(self, domain: str) -> SubmitOutcome:
        """
        See L{ICrawler.submit}.
        """
        try:
            name = normalizeDomain(domain)
        except ValueError as e:
            raise InvalidDomainName(str(e)) from None
        if self._excluded(name):
            return SubmitOutcome(name, False, f"{name} is on this node's exclusion list.")
        state = self._domains.get(name)
        now = self._clock.seconds()
        if state is None:
            state = self._add(name, "submission", _SUBMITTED)
            if state is None:
                return SubmitOutcome(
                    name, False, "The crawler knows as many domains as it may; try later."
                )
            state.submitted = True
            return SubmitOutcome(name, True, f"{name} is queued for a crawl.", self._status(state))
        state.submitted = True
        if state.state == "fetching":
            message = f"{name} is being fetched now."
        elif state.lastFetch is not None and now - state.lastFetch < self.settings.recentFetch:
            message = f"{name} was fetched {now - state.lastFetch:.0f} s ago; see its results."
        else:
            self._schedule(state, now, _SUBMITTED)
            message = f"{name} is queued for a crawl."
        return SubmitOutcome(name, True, message, self._status(state))

    def status(self, domain: str) -> CrawlStatus | None:
        """
        See L{ICrawler.status}.
        """
        if self._excluded(domain):
            return CrawlStatus(domain, "excluded", "store")
        state = self._domains.get(domain)
        return None if state is None else self._status(state)

    def queue(self) -> CrawlQueue:
        """
        See L{ICrawler.queue}: counted over the known domains (a heap entry
        may be outdated, a domain's own due time is not).
        """
        now = self._clock.seconds()
        pending = scheduled = 0
        for state in self._domains.values():
            if state.due is None:
                continue
            if state.due <= now:
                pending += 1
            else:
                scheduled += 1
        return CrawlQueue(pending=pending, inFlight=len(self._inFlight), scheduled=scheduled)

    def _status(self, state: _Domain) -> CrawlStatus:
        return CrawlStatus(
            domain=state.name,
            state=state.state,
            source=state.source,
            nextFetch=state.due,
            lastFetch=state.lastFetch,
            failures=state.failures,
            subscription=state.subscription,
            service=state.service,
            node=state.node,
            submitted=state.submitted,
        )

    # Queue

    def _linkUp(self, event: LinkUp) -> None:
        """
        A new stream: crawl its domain if it is new, unless it is a service
        of a known domain (C{pubsub.}, C{conference.}, ...: folded into it
        on the graph; our own fetches open streams to them). A new
        I{incoming} stream from a publisher we subscribed to, or from its
        service, may mean that it restarted and lost our subscription:
        fetch it (and so subscribe) again soon, unless it was fetched a
        moment ago (our fetches make peers open streams to us too).
        """
        link = event.link
        domain = link.domain
        self._links.setdefault(domain, {})[link.id] = link
        service = serviceParent(domain)
        if service is None or service not in self._domains:
            if self._add(domain, "link", _NEW) is None:
                return
        if link.direction != "incoming":
            return
        now = self._clock.seconds()
        for candidate in (domain, domain.partition(".")[2]):
            state = self._domains.get(candidate)
            if (
                state is not None
                and state.subscription == "subscribed"
                and (candidate == domain or (state.service or "").split("/")[0] == domain)
                and state.state != "fetching"
                and state.lastFetch is not None
                and now - state.lastFetch >= self.settings.recentFetch
            ):
                self._schedule(state, now, _NEW)

    def _linkDown(self, event: LinkDown) -> None:
        links = self._links.get(event.link.domain)
        if links is not None:
            links.pop(event.link.id, None)
            if not links:
                del self._links[event.link.domain]

    def _add(
        self,
        domain: str,
        source: CrawlSource,
        klass: int,
        *,
        due: float | None = None,
        quiet: bool = False,
    ) -> _Domain | None:
        """
        Know C{domain} and have it fetched at C{due} (default: now), unless
        it is known already.

        @return: its state, or L{None} if it is excluded or the crawler is
            full.
        """
        state = self._domains.get(domain)
        if state is not None:
            return state
        if self._excluded(domain):
            return None
        if len(self._domains) >= self.settings.maxDomains:
            if not self._maxDomainsWarned:
                self._maxDomainsWarned = True
                self._log.warn(
                    "crawler: {max} domains known (--max-domains); newly named domains are not "
                    "crawled",
                    max=self.settings.maxDomains,
                )
            return None
        state = _Domain(domain, source)
        self._domains[domain] = state
        if not quiet:
            self._log.debug("crawler: new domain {domain} ({source})", domain=domain, source=source)
        self._schedule(state, self._clock.seconds() if due is None else due, klass)
        return state

    def _schedule(self, state: _Domain, due: float, klass: int) -> None:
        """
        Make C{state}'s next fetch due at C{due} with priority C{klass}; a
        fetch planned earlier, or more urgent, keeps its time or class. A
        domain being fetched plans its next fetch when the fetch ends.
        """
        if state.state == "fetching":
            return
        if state.due is not None:
            due, klass = min(due, state.due), min(klass, state.klass)
            if (due, klass) == (state.due, state.klass):
                return
        state.due, state.klass = due, klass
        state.generation += 1
        if state.state != "backoff":
            state.state = "queued" if due <= self._clock.seconds() else "waiting"
        heapq.heappush(self._waiting, (due, next(self._sequence), state.generation, state.name))
        self._pump()

    def _pump(self) -> None:
        """
        Move due fetches to the ready queue and start as many as allowed;
        set the timer for the next one.
        """
        if not self.running:
            return
        now = self._clock.seconds()
        paused = self._fullUntil is not None and now < self._fullUntil
        # After a pause for a full store, one fetch at a time finds out
        # whether there is room again.
        limit = 1 if self._storeFullWarned else self.settings.maxInFlight
        while self._waiting and self._waiting[0][0] <= now:
            due, sequence, generation, name = heapq.heappop(self._waiting)
            state = self._domains.get(name)
            if state is None or state.generation != generation:
                continue
            heapq.heappush(self._ready, (state.klass, due, sequence, generation, name))
        while not paused and self._ready and len(self._inFlight) < limit:
            _, _, _, generation, name = heapq.heappop(self._ready)
            state = self._domains.get(name)
            if state is None or state.generation != generation or name in self._inFlight:
                continue
            self._start(state)
        # One timer, for the earliest waiting fetch; left alone while that
        # does not change (a start queues every stored domain).
        earliest = self._waiting[0][0] if self._waiting else None
        if paused:
            earliest = self._fullUntil
        if self._timer is not None and self._timer.active():
            if self._timerAt == earliest:
                return
            self._timer.cancel()
        self._timer = None
        self._timerAt = earliest
        if earliest is not None:
            self._timer = self._clock.callLater(max(0.0, earliest - now), self._timerFired)

    def _timerFired(self) -> None:
        self._timer = None
        self._pump()

    def _start(self, state: _Domain) -> None:
        klass = state.klass
        state.state = "fetching"
        state.due = None
        d = defer.Deferred.fromCoroutine(self._fetch(state, klass))
        self._inFlight[state.name] = d

        def done(result: object) -> None:
            self._inFlight.pop(state.name, None)
            if isinstance(result, Failure) and not result.check(defer.CancelledError):
                self._log.failure("crawler: fetching {domain} failed", result, domain=state.name)
                self._planNext(state, failed=True)
            self._pump()

        d.addBoth(done)

    # Fetch

    async def _fetch(self, state: _Domain, klass: int) -> None:
        """
        Discover C{state}'s domain, store what was found, subscribe, and
        plan the next fetch.
        """
        name = state.name
        try:
            discovery = await self._scheduler.ask(
                name,
                _KEY,
                lambda: self._discover(name),
                ttl=0.0,
                errorTtl=0.0,
                # Below 0, the priority of the consent checks our own
                # item waits for: those go first.
                priority=-1 - klass,
            )
        except QueueFull:
            state.state = "queued"
            self._schedule(state, self._clock.seconds() + 1.0, klass)
            return
        except SchedulerStopped:
            return
        except defer.TimeoutError:
            discovery = _timedOut(name, self._scheduler.timeout)
        state.lastFetch = self._clock.seconds()
        facts = self._withStreamFacts(name, discovery.facts)
        if self._directTLS is not None and facts.reachable:
            facts = attrs.evolve(facts, directTLS=await self._directTLS(name))
        state.consents = facts.consents
        failed = not facts.reachable
        try:
            if await self._store.recordFetch(name, facts):
                self._storeWorks()
            if discovery.report is not None:
                await self._storeReport(state, discovery.report, discovery.truncated)
                self._storeWorks()
            elif facts.status in _WITHDRAWN and state.hasReport:
                await self._store.storeReport(name, ())
                state.hasReport = False
                self._log.info(
                    "crawler: {domain} no longer publishes for us ({status}): its links are "
                    "withdrawn",
                    domain=name,
                    status=facts.status,
                )
        except StorageFull as e:
            # Not the domain's failure: fetched again after the pause.
            self._storeFull(e)
            state.state = "queued"
            self._schedule(state, self._fullUntil or self._clock.seconds(), klass)
            return
        except StorageError as e:
            # Not the domain's failure either (the database logs an outage
            # once); said once here too, and fetched again after a while.
            if not self._storeErrorWarned:
                self._storeErrorWarned = True
                self._log.warn(
                    "crawler: storing {domain} failed: {error}; domains are fetched again "
                    "later (not logged again until storing works)",
                    domain=name,
                    error=e,
                )
            state.state = "queued"
            self._schedule(state, self._clock.seconds() + self.settings.backoffBase, klass)
            return
        except XmppNetGraphError as e:
            self._log.warn("crawler: storing {domain} failed: {error}", domain=name, error=e)
            failed = True
        if discovery.service is not None and discovery.node is not None and facts.publishes:
            await self._subscribe(state, discovery.service, discovery.node)
        self._planNext(state, failed=failed)

    def _storeFull(self, error: StorageFull) -> None:
        """
        The store is full: pause the crawl (unless a pause runs already),
        for longer each time it is still full; say so once.
        """
        now = self._clock.seconds()
        if self._fullUntil is not None:
            if now < self._fullUntil:
                return
            if now - self._fullUntil > self.settings.refresh:
                # Full again long after the last time: start short again.
                self._fullPauses = 0
        self._fullPauses += 1
        pause = min(self.settings.backoffBase * 2 ** (self._fullPauses - 1), self.settings.refresh)
        self._fullUntil = now + pause
        if not self._storeFullWarned:
            self._storeFullWarned = True
            self._log.error(
                "crawler: the store is full ({error}); crawling pauses and tries again after "
                "{pause:.0f} s, then less often while it stays full",
                error=error,
                pause=pause,
            )
        self._pump()

    def _storeWorks(self) -> None:
        """
        A write that adds to the store succeeded: if it was full, crawling
        resumes (the next pause, should it fill again soon, is longer).
        """
        if self._storeErrorWarned:
            self._storeErrorWarned = False
            self._log.info("crawler: storing works again")
        if self._storeFullWarned:
            self._storeFullWarned = False
            self._log.info("crawler: the store has room again; crawling resumes")
            self._pump()

    def _withStreamFacts(self, domain: str, facts: DomainFacts) -> DomainFacts:
        """
        @return: C{facts} with what our outgoing (or else incoming) stream
            to C{domain} saw.
        """
        links = list(self._links.get(domain, {}).values())
        if not links:
            return facts
        link = _preferOutgoing(links)
        return attrs.evolve(facts, tlsVersion=link.tls, auth=link.auth, certValid=link.certValid)

    async def _storeReport(
        self, state: _Domain, report: Sequence[RemoteDomain], truncated: bool
    ) -> None:
        """
        Store C{state}'s report after the exclusion list and the caps, and
        queue the new domains it names.
        """
        remotes, new = self._admit(state.name, report)
        if truncated:
            self._log.warn(
                "crawler: the report of {domain} exceeded a limit and was cut",
                domain=state.name,
            )
        await self._store.storeReport(state.name, remotes)
        state.hasReport = True
        for domain in new:
            self._add(domain, "report", _NEW)

    def _admit(
        self, reporter: str, report: Sequence[RemoteDomain]
    ) -> tuple[list[RemoteDomain], list[str]]:
        """
        Apply the exclusion list and the caps to a report.

        @return: the remote domains to store (excluded ones left out, names
            over a cap made anonymous) and the new named domains to crawl.
        """
        budget = self._budget(reporter)
        remotes: list[RemoteDomain] = []
        new: dict[str, None] = {}
        cut = 0
        for remote in report[: self.settings.maxReportDomains]:
            name = remote.name
            if (
                name is not None
                and name != reporter
                and name not in self._domains
                and name not in new
            ):
                if self._excluded(name):
                    continue
                full = len(self._domains) + len(new) >= self.settings.maxDomains
                if full or budget.used >= self.settings.maxNewDomainsPerReporter:
                    remote = RemoteDomain(None, remote.connections)
                    cut += 1
                else:
                    budget.used += 1
                    new[name] = None
            remotes.append(remote)
        if len(report) > self.settings.maxReportDomains:
            self._log.warn(
                "crawler: {domain} reports {count} remote domains; only the first {max} are "
                "taken (--max-report-domains)",
                domain=reporter,
                count=len(report),
                max=self.settings.maxReportDomains,
            )
        if cut and not budget.warned:
            budget.warned = True
            self._log.warn(
                "crawler: {domain} named more new domains than it may add this hour "
                "(--max-new-domains-per-reporter {max}, --max-domains); {cut} kept as anonymous",
                domain=reporter,
                max=self.settings.maxNewDomainsPerReporter,
                cut=cut,
            )
        return remotes, list(new)

    def _budget(self, reporter: str) -> _Budget:
        now = self._clock.seconds()
        budget = self._budgets.get(reporter)
        if budget is None or now - budget.start >= 3600.0:
            budget = self._budgets[reporter] = _Budget(now)
        return budget

    async def _subscribe(self, state: _Domain, service: str, node: str) -> None:
        """
        Subscribe to the node where C{state}'s item lives (again: it is
        idempotent, and renews what a restarted publisher lost).
        """
        key = (service, node)
        if (state.service, state.node) != key and state.service is not None:
            self._bySubscription.pop((state.service, state.node or ""), None)
        state.service, state.node = service, node
        self._bySubscription[key] = state.name
        try:
            subscription = await self._subscriber.subscribeTo(service, node)
        except defer.CancelledError:
            raise
        except Exception as e:
            condition = getattr(e, "condition", None) or type(e).__name__
            if state.subscription != f"refused: {condition}":
                self._log.info(
                    "crawler: subscribing to {service} node {node} for {domain} refused "
                    "({condition}); polling instead",
                    service=service,
                    node=node,
                    domain=state.name,
                    condition=condition,
                )
            state.subscription = f"refused: {condition}"
            return
        if subscription == "subscribed" and state.subscription != "subscribed":
            state.heard = self._clock.seconds()
        state.subscription = subscription

    def _planNext(self, state: _Domain, *, failed: bool) -> None:
        now = self._clock.seconds()
        if failed:
            state.failures += 1
            delay = min(
                self.settings.backoffBase * 2 ** (state.failures - 1), self.settings.refresh
            )
            delay *= self._random.uniform(0.5, 1.0)
            state.state = "backoff"
        else:
            state.failures = 0
            state.state = "waiting"
            delay = self.settings.poll if self._polled(state, now) else self.settings.refresh
            # Spread refreshes a little, so that domains found together are
            # not fetched together forever.
            delay *= self._random.uniform(0.9, 1.0)
        self._schedule(state, now + delay, _REFRESH)

    def _polled(self, state: _Domain, now: float) -> bool:
        """
        @return: whether C{state}'s publisher is polled: it has a node but
            no subscription, or a subscription that went quiet (nothing
            heard for half of L{CrawlSettings.refresh} since it began or
            since the last notification: all known publishers republish
            every few minutes).
        """
        if state.service is None:
            return False
        if state.subscription != "subscribed" or state.heard is None:
            return True
        return now - state.heard >= self.settings.refresh / 2

    # Notifications

    def notified(self, service: str, node: str, items: Sequence[domish.Element]) -> None:
        """
        A pub-sub notification with items arrived: if it comes from a node
        we subscribed to for a domain that consents, store its report.

        @param service: the JID the notification came from.
        @param node: its node.
        @param items: its C{item} elements.
        """
        domain = self._bySubscription.get((service, node))
        if domain is None:
            if (service, node) not in self._ignoredSenders and len(self._ignoredSenders) < 10_000:
                self._ignoredSenders.add((service, node))
                self._log.info(
                    "crawler: ignoring a notification from {service} node {node}: not a node we "
                    "subscribed to",
                    service=service,
                    node=node,
                )
            return
        state = self._domains.get(domain)
        if state is None or state.consents is not True:
            return
        state.heard = self._clock.seconds()
        result = reportFromItems(domain, items, self.settings.maxReportDomains)
        if result.report is None:
            return
        d = defer.Deferred.fromCoroutine(self._storeReport(state, result.report, result.truncated))

        def failed(reason: Failure) -> None:
            full = reason.value
            if isinstance(full, StorageFull):
                # Fetched again, after the pause, with what it says then.
                self._storeFull(full)
                self._schedule(state, self._fullUntil or self._clock.seconds(), _NEW)
                return
            self._log.failure(
                "crawler: storing the notified report of {domain} failed", reason, domain=domain
            )

        d.addCallbacks(lambda _: self._storeWorks(), failed)
        self._track(d)

    def _track(self, d: defer.Deferred[Any]) -> None:
        """
        Keep C{d}, a store write not tied to a fetch, until it ends, so that
        L{stopService} waits for it (the database closes after us).
        """
        self._writes.add(d)

        def ended(result: object) -> object:
            self._writes.discard(d)
            return result

        d.addBoth(ended)

    def nodeChanged(self, service: str, node: str) -> None:
        """
        A node we subscribed to was purged or deleted: fetch its domain
        again soon.
        """
        domain = self._bySubscription.get((service, node))
        state = None if domain is None else self._domains.get(domain)
        if state is not None:
            state.subscription = None
            self._schedule(state, self._clock.seconds(), _NEW)

    # Stale

    def _markStale(self) -> defer.Deferred[None]:
        def marked(domains: list[str]) -> None:
            if domains:
                self._log.info(
                    "crawler: {count} domains not seen for {window:.0f} s are stale now "
                    "(first: {first})",
                    count=len(domains),
                    window=self.settings.staleAfter,
                    first=domains[0],
                )

        def failed(reason: Failure) -> None:
            self._log.warn(
                "crawler: marking stale domains failed: {error}", error=reason.getErrorMessage()
            )

        d = self._store.markStale(self.settings.staleAfter).addCallbacks(marked, failed)
        self._track(d)
        return d


def _preferOutgoing(links: Sequence[Link]) -> Link:
    for link in links:
        if link.direction == "outgoing":
            return link
    return links[0]


def _timedOut(domain: str, timeout: float) -> Discovery:
    """
    @return: the discovery of a domain that did not finish in time.
    """
    detail = f"no answer within {timeout:.0f} s"
    facts = DomainFacts(
        status="unreachable",
        reachable=False,
        error=f"{domain}: {detail}",
        steps=(DiscoveryStep("discovery", False, detail),),
    )
    return Discovery(
        domain=domain,
        facts=facts,
        service=None,
        node=None,
        report=None,
        truncated=False,
        ignoredDomains=(),
    )
