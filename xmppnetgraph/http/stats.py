# -*- test-case-name: tests.test_http_api -*-
"""
C{GET /api/stats}: figures over the current graph as C{/api/graph} shows it
by default (folded, anonymous peers apart), plus the store's own counts,
the software mix of the publishers and the security posture of the named
domains our streams reached (from the store's L{IGraphStore.profiles}).
Computed at most once per store state and L{Stats.freshFor} seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request

from xmppnetgraph.error import Unavailable
from xmppnetgraph.graphview import GraphView
from xmppnetgraph.http.errors import Response, jsonResponse
from xmppnetgraph.http.graph import GraphViews, ViewParameters
from xmppnetgraph.interfaces import IGraphStore
from xmppnetgraph.model import DomainProfile, GraphCounts
from xmppnetgraph.timestamp import formatTimestamp

#: How many of the largest hubs are listed.
HUBS = 20


def components(view: GraphView) -> list[int]:
    """
    @return: the sizes of the connected components of C{view}, largest
        first.
    """
    parent = {node.id: node.id for node in view.nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for edge in view.edges:
        a, b = find(edge.source), find(edge.target)
        if a != b:
            parent[a] = b
    return sorted(Counter(find(x) for x in parent).values(), reverse=True)


def degrees(view: GraphView) -> Counter[str]:
    """
    @return: each node's degree (nodes without edges are absent).
    """
    degree: Counter[str] = Counter()
    for edge in view.edges:
        degree[edge.source] += 1
        degree[edge.target] += 1
    return degree


def softwareMix(view: GraphView, profiles: Iterable[DomainProfile]) -> list[dict[str, object]]:
    """
    @return: how many of the publishing domains of C{view} run which
        software (XEP-0092 name and version), most first.
    """
    shown = {node.id for node in view.nodes if node.label is not None and node.publishes}
    mix: Counter[tuple[str, str | None]] = Counter(
        (p.softwareName, p.softwareVersion)
        for p in profiles
        if p.domain in shown and p.softwareName is not None
    )
    return [
        {"name": name, "version": version, "domains": n}
        for (name, version), n in sorted(
            mix.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1] or "")
        )
    ]


def security(view: GraphView, profiles: Iterable[DomainProfile]) -> dict[str, object]:
    """
    @return: the security posture of the named domains of C{view} that our
        own streams reached (those with a stream's facts): their TLS
        versions (L{None} for plaintext), how the streams authenticated,
        and how many had a valid certificate and offer direct TLS.
    """
    named = {node.id for node in view.nodes if node.label is not None}
    reached = [p for p in profiles if p.domain in named and p.auth is not None]
    versions = Counter(p.tlsVersion for p in reached)
    methods = Counter(p.auth for p in reached)
    return {
        "domains": len(reached),
        "tls_versions": [
            {"version": version, "domains": n}
            for version, n in sorted(versions.items(), key=lambda kv: (-kv[1], kv[0] or ""))
        ],
        "auth": [
            {"method": method, "domains": n}
            for method, n in sorted(methods.items(), key=lambda kv: (-kv[1], kv[0] or ""))
        ],
        "cert_valid": sum(1 for p in reached if p.certValid),
        "direct_tls": sum(1 for p in reached if p.directTLS),
    }


def statsJSON(
    view: GraphView, counts: GraphCounts, profiles: Sequence[DomainProfile]
) -> dict[str, object]:
    """
    @param profiles: the store's L{IGraphStore.profiles}.
    @return: C{/api/stats}'s body.
    """
    degree = degrees(view)
    labels = {node.id: node.label for node in view.nodes}
    distribution = Counter(degree.get(node.id, 0) for node in view.nodes)
    named = [node for node in view.nodes if node.label is not None]
    hubs = sorted((n for n in named if degree.get(n.id)), key=lambda n: (-degree[n.id], n.id))
    sizes = components(view)
    return {
        "at": formatTimestamp(view.at),
        "last_event_id": view.lastEventId,
        "domains": {
            "named": len(named),
            "anonymous": len(view.nodes) - len(named),
            "publishing": sum(1 for node in named if node.publishes),
            "stale": counts.stale,
            "known": counts.domains,
        },
        "links": len(view.edges),
        "confirmed_links": sum(1 for edge in view.edges if edge.confirmed),
        "components": {
            "count": len(sizes),
            "largest": sizes[0] if sizes else 0,
            "sizes": sizes[:HUBS],
        },
        "degree_distribution": [{"degree": d, "nodes": n} for d, n in sorted(distribution.items())],
        "hubs": [{"domain": labels[node.id], "degree": degree[node.id]} for node in hubs[:HUBS]],
        "software": softwareMix(view, profiles),
        "security": security(view, profiles),
    }


class Stats:
    """
    The handler of C{/api/stats}.

    @ivar freshFor: seconds an answer is kept while the store is unchanged.
    """

    def __init__(
        self,
        store: IGraphStore | None,
        views: GraphViews | None,
        clock: IReactorTime,
        freshFor: float = 30.0,
    ) -> None:
        self._store = store
        self._views = views
        self._clock = clock
        self.freshFor = freshFor
        self._cached: tuple[int | None, float, Response] | None = None

    async def stats(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /api/stats}.
        """
        if self._store is None or self._views is None:
            raise Unavailable("this node keeps no graph store")
        now = self._clock.seconds()
        if self._cached is not None:
            eventId, made, response = self._cached
            if eventId == self._views.latest and now - made <= self.freshFor:
                return response
        view = await self._views.currentView(ViewParameters())
        counts = await self._store.counts()
        profiles = await self._store.profiles()
        response = jsonResponse(
            statsJSON(view, counts, profiles), headers={b"cache-control": b"no-cache"}
        ).tagged()
        self._cached = (view.lastEventId, now, response)
        return response
