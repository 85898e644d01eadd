# -*- test-case-name: tests.test_metrics -*-
"""
The node's metrics (C{GET /metrics}, OpenMetrics), with C{prometheus_client}.

Every node has its own L{Metrics} (on its L{Core<xmppnetgraph.core.Core>}):
one C{CollectorRegistry}, not the library's global one, so that several
nodes in one process (the tests, an embedder) each report their own. Each
module's builder registers what it knows; most figures are read from the
live state when a scrape asks for them (the link table, the crawl queue,
the scheduler, the store's status counts), so that nothing is counted twice
and the hot paths pay nothing: stanzas are the link table's own per-link
counts, and a stream error costs one dictionary increment. What must be
read from the database first (domains by status) is refreshed, in the
store's thread pool, before each scrape.

The metric names and what they mean are listed in README ("Metrics").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

if TYPE_CHECKING:
    from xmppnetgraph.interfaces import IGraphStore
    from xmppnetgraph.linktable import LinkTable
    from xmppnetgraph.model import CrawlQueue
    from xmppnetgraph.s2s.xmlstream import StreamErrorTally
    from xmppnetgraph.scheduler import QueryScheduler
    from xmppnetgraph.store.database import Database

#: Every metric's name starts with this.
PREFIX = "xmppnetgraph_"

#: Upper bounds (seconds) of the store transaction histogram's buckets.
TRANSACTION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class S2SCollector(Collector):
    """
    The s2s figures: links by direction and authentication, open streams,
    stanzas in and out, stream errors.
    """

    def __init__(
        self, linkTable: LinkTable, streams: Callable[[], int], errors: StreamErrorTally
    ) -> None:
        """
        @param linkTable: the live links and the stanza counts.
        @param streams: tells how many s2s streams are open (authenticated
            or not).
        @param errors: the stream errors.
        """
        self._linkTable = linkTable
        self._streams = streams
        self._errors = errors

    def collect(self) -> Iterator[Metric]:
        """
        @return: the figures as they are now.
        """
        links = GaugeMetricFamily(
            PREFIX + "s2s_links",
            "Live authenticated s2s links (one per stream and remote domain), "
            "by direction and authentication method.",
            labels=["direction", "auth"],
        )
        byKind = Counter((link.direction, link.auth) for link in self._linkTable.links())
        for direction in ("incoming", "outgoing"):
            for auth in ("sasl-external", "dialback"):
                links.add_metric([direction, auth], byKind[direction, auth])
        yield links
        yield GaugeMetricFamily(
            PREFIX + "s2s_streams",
            "Open s2s connections, authenticated or not (dialback verification connections too).",
            value=self._streams(),
        )
        totals = self._linkTable.stanzaTotals()
        received = CounterMetricFamily(
            PREFIX + "s2s_stanzas_received",
            "Stanzas received on authenticated s2s streams, by the stream's direction.",
            labels=["direction"],
        )
        sent = CounterMetricFamily(
            PREFIX + "s2s_stanzas_sent",
            "Stanzas sent on authenticated s2s streams, by the stream's direction.",
            labels=["direction"],
        )
        for direction, (stanzasIn, stanzasOut) in sorted(totals.items()):
            received.add_metric([direction], stanzasIn)
            sent.add_metric([direction], stanzasOut)
        yield received
        yield sent
        yield _conditions(
            PREFIX + "s2s_stream_errors_sent",
            "Stream errors this node sent, by condition.",
            self._errors.sent,
        )
        yield _conditions(
            PREFIX + "s2s_stream_errors_received",
            "Stream errors peers sent to this node, by condition "
            "('other' for a condition RFC 6120 does not define).",
            self._errors.received,
        )


def _conditions(name: str, documentation: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    """
    @return: a counter family of C{counts} by condition.
    """
    family = CounterMetricFamily(name, documentation, labels=["condition"])
    for condition in sorted(counts):
        family.add_metric([condition], counts[condition])
    return family


class SchedulerCollector(Collector):
    """
    The query scheduler's load: requests waiting and running.
    """

    def __init__(self, scheduler: QueryScheduler) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        """
        @return: the figures as they are now.
        """
        queued, running = self._scheduler.load()
        family = GaugeMetricFamily(
            PREFIX + "remote_queries",
            "Queries to remote domains in the polite scheduler (consent checks, "
            "discoveries), by state: queued (waiting for their turn) or running.",
            labels=["state"],
        )
        family.add_metric(["queued"], queued)
        family.add_metric(["running"], running)
        yield family


#: Seconds the domains' status counts are shown before a scrape reads
#: them again.
STATUS_MAX_AGE = 10.0


class CrawlerCollector(Collector):
    """
    The crawl queue, and the known domains by status (read from the store
    by L{refresh} before each scrape).
    """

    _log = Logger()

    def __init__(
        self,
        queue: Callable[[], CrawlQueue],
        store: IGraphStore,
        clock: IReactorTime,
        maxAge: float = STATUS_MAX_AGE,
    ) -> None:
        """
        @param queue: tells what the crawl queue holds now.
        @param store: the graph store, whose status counts are shown.
        @param clock: for the age of the counts.
        @param maxAge: seconds the counts are shown before they are read
            again.
        """
        self._queue = queue
        self._store = store
        self._clock = clock
        self._maxAge = maxAge
        self._statuses: Mapping[str, int] | None = None
        self._readAt: float | None = None
        # The scrapes waiting for the read that runs, if one does.
        self._waiters: list[Deferred[None]] | None = None
        self._failing = False

    def refresh(self) -> Deferred[None]:
        """
        Read the domains' status counts from the store, unless they are
        younger than C{maxAge}; scrapes that come while a read runs wait for
        that one (the read is a full-table query, and C{/metrics} is public).
        When the read fails the scrape goes without them (and the failure
        is logged once until a read works again).
        """
        now = self._clock.seconds()
        if self._readAt is not None and now - self._readAt < self._maxAge:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        if self._waiters is not None:
            self._waiters.append(waiter)
            return waiter
        self._waiters = [waiter]
        Deferred.fromCoroutine(self._read())
        return waiter

    async def _read(self) -> None:
        """
        One read of the status counts.
        """
        try:
            self._statuses = await self._store.statusCounts()
        except Exception as e:
            self._statuses = None
            if not self._failing:
                self._log.warn("metrics: cannot read the domains' status counts: {error}", error=e)
            self._failing = True
        else:
            self._failing = False
            self._readAt = self._clock.seconds()
        finally:
            waiters, self._waiters = self._waiters or [], None
            for waiter in waiters:
                waiter.callback(None)

    def collect(self) -> Iterator[Metric]:
        """
        @return: the figures as they are now.
        """
        queue = self._queue()
        family = GaugeMetricFamily(
            PREFIX + "crawl_queue",
            "Domains in the crawl queue, by state: pending (due, waiting for a "
            "slot), in_flight (being fetched), scheduled (due later).",
            labels=["state"],
        )
        family.add_metric(["pending"], queue.pending)
        family.add_metric(["in_flight"], queue.inFlight)
        family.add_metric(["scheduled"], queue.scheduled)
        yield family
        if self._statuses is not None:
            domains = GaugeMetricFamily(
                PREFIX + "domains",
                "Domains the graph store knows, by the status of their latest fetch "
                "('stale': not seen for --stale-after; 'unfetched': only named by others).",
                labels=["status"],
            )
            for status in sorted(self._statuses):
                domains.add_metric([status], self._statuses[status])
            yield domains


class Metrics:
    """
    The metrics of one node: its registry, what modules registered in it,
    and what is read before each scrape.

    @ivar registry: the node's own registry.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._refreshers: list[Callable[[], Awaitable[None]]] = []
        ProcessCollector(registry=self.registry)

    def register(
        self, collector: Collector, refresh: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """
        Add C{collector}'s figures to every scrape.

        @param refresh: what to await before each scrape (reading what
            the collector shows from the database).
        """
        self.registry.register(collector)
        if refresh is not None:
            self._refreshers.append(refresh)

    def timeTransactions(self, database: Database) -> Histogram:
        """
        Time every transaction of C{database}, by operation.

        @return: the histogram.
        """
        histogram = Histogram(
            PREFIX + "store_transaction_seconds",
            "Time from the request to the commit (or rollback) of each store "
            "transaction, by operation (storeReport: a crawled report; recordFetch: "
            "a domain's facts; publishItem: a pub-sub item).",
            ["operation"],
            registry=self.registry,
            buckets=TRANSACTION_BUCKETS,
        )
        database.observeTransactions(lambda name, seconds: histogram.labels(name).observe(seconds))
        return histogram

    async def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """
        Refresh what must be read first, then render every figure.

        @param accept: the client's C{Accept} header: OpenMetrics when it
            asks for C{application/openmetrics-text}, else Prometheus' plain
            text format (C{prometheus_client}'s own choice).
        @return: the body and its content type.
        """
        for refresh in self._refreshers:
            await refresh()
        encode, contentType = choose_encoder(accept or "")
        return encode(self.registry), contentType
