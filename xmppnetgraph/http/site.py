# -*- test-case-name: tests.test_http_api -*-
"""
The web API of one node: its parts and, in L{WebAPI.routes}, the one
table of every path it serves.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorThreads, IReactorTime

from xmppnetgraph.http.api import Links, MetricsPage, ServerInfo, openAPI
from xmppnetgraph.http.badge import Badges
from xmppnetgraph.http.domains import DomainPages
from xmppnetgraph.http.events import EventStream
from xmppnetgraph.http.graph import GraphEndpoints, GraphViews
from xmppnetgraph.http.naming import EventTail, Naming
from xmppnetgraph.http.routes import Route, Router
from xmppnetgraph.http.static import PAGE_PATHS, StaticPage
from xmppnetgraph.http.stats import Stats
from xmppnetgraph.http.submit import RateLimiter, Submissions
from xmppnetgraph.interfaces import IChangeFeed, ICrawler, IGraphStore, ILinkTable
from xmppnetgraph.layout.service import Layout
from xmppnetgraph.metrics import Metrics
from xmppnetgraph.model import NamePolicy


class WebAPI:
    """
    Every part of the JSON API, made from what the node has.

    @ivar views: the cached graph answers (L{None} without a graph store).
    @ivar events: the server-sent events endpoint and its clients.
    @ivar submissions: the submission endpoint and its rate limit.
    @ivar page: the page and its built files.
    """

    def __init__(
        self,
        domain: str,
        linkTable: ILinkTable,
        feed: IChangeFeed,
        clock: IReactorTime,
        *,
        threads: IReactorThreads | None = None,
        graph: IGraphStore | None = None,
        crawler: ICrawler | None = None,
        serverInfo: ServerInfo | None = None,
        namePolicy: NamePolicy = "consented",
        excluded: Callable[[str], bool] | None = None,
        anonymousKey: bytes = b"",
        submitRate: int = 10,
        trustedProxies: tuple[str, ...] = (),
        page: StaticPage | None = None,
        layout: Layout | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """
        @param threads: where graph views are computed (L{None}: in the
            reactor thread).
        @param graph: the graph store, or L{None} (the graph endpoints
            answer 503).
        @param crawler: the crawler, or L{None} (C{--no-crawl}: submissions
            answer 503).
        @param serverInfo: C{/api/serverinfo}, or L{None} (C{--no-publish}).
        @param excluded: tells whether a domain is on the exclusion list.
        @param submitRate: submissions per client address per hour.
        @param trustedProxies: reverse proxies (addresses or networks)
            whose C{X-Forwarded-For} names the client.
        @param page: the page's files (default: the package's build).
        @param layout: the positions of the graph's nodes (default: none
            stored; every node placed next to its neighbours).
        @param metrics: the node's metrics for C{/metrics} (default: none
            registered but the process's).
        """
        self._threads = threads
        self.naming = Naming(namePolicy, excluded)
        self.tail = EventTail(graph, feed, self.naming) if graph is not None else None
        self.views = (
            GraphViews(
                graph,
                feed,
                clock,
                threads,
                namePolicy=namePolicy,
                excluded=excluded,
                anonymousKey=anonymousKey,
                layout=layout,
            )
            if graph is not None
            else None
        )
        self.links = Links(domain, linkTable)
        self.serverInfo = serverInfo
        self.graphs = GraphEndpoints(self.views)
        self.domains = DomainPages(graph, crawler, self.tail, self.naming, namePolicy)
        self.stats = Stats(graph, self.views, clock)
        self.badges = Badges(self.views, clock)
        self.events = EventStream(graph, self.tail, self.naming, clock)
        self.submissions = Submissions(crawler, RateLimiter(clock, submitRate), trustedProxies)
        self.page = StaticPage() if page is None else page
        self.metrics = MetricsPage(Metrics() if metrics is None else metrics)

    def routes(self) -> list[Route]:
        """
        @return: the routing table: every path of the web endpoint.
        """
        table = [
            Route("GET", "/api/graph", self.graphs.graph),
            Route("GET", "/api/graph.graphml", self.graphs.graphML),
            Route("GET", "/api/graph.gexf", self.graphs.gexf),
            Route("GET", "/data.json", self.graphs.data),
            Route("GET", "/api/domains/{domain}", self.domains.domain),
            Route("GET", "/api/stats", self.stats.stats),
            Route("GET", "/api/events", self.events.events),
            Route("POST", "/api/submit", self.submissions.submit),
            Route("GET", "/api/links", self.links.links),
            Route("GET", "/api/openapi.json", openAPI),
            Route("GET", "/metrics", self.metrics.metricsPage),
            Route("GET", "/badge/{domain}.svg", self.badges.badge),
            Route("GET", "/assets/{name}", self.page.asset),
        ]
        table += [Route("GET", path, self.page.page) for path in PAGE_PATHS]
        if self.serverInfo is not None:
            table.append(Route("GET", "/api/serverinfo", self.serverInfo.serverInfo))
        return table

    def resource(self) -> Router:
        """
        @return: the root resource serving L{routes}.
        """
        return Router(self.routes(), self._threads)

    def stop(self) -> None:
        """
        Close the event streams and stop observing the change feed.
        """
        self.events.stop()
        if self.tail is not None:
            self.tail.stopObserving()
        if self.views is not None:
            self.views.stopObserving()
