# -*- test-case-name: tests.test_http_api -*-
"""
C{GET /api/graph} and C{GET /data.json}: the stored graph through the view
rules (L{viewGraph}), encoded once per store state and parameters.

C{GET /api/graph.graphml} and C{GET /api/graph.gexf} are the same view
as files (L{xmppnetgraph.http.exports}), cached the same way: they are
other representations of C{/api/graph}, so they sit beside it under
C{/api/}, take its parameters, and are named by their file extension.

The answers are cached by (the encoding, the store's newest event id, the
parameters): the newest event id comes from the change feed
(L{GraphChanged}), so a cache hit costs no database query. A cached answer
of the current graph is also dropped after L{GraphViews.freshFor} seconds,
because an unchanged refresh moves C{last_seen} without an event. Each answer carries an ETag
(a hash of its body), with which the router answers a matching
C{If-None-Match} with a 304.

The work of a miss is a snapshot read in a database thread and then the
view and the encoding, which are pure functions of the frozen
snapshot: they run in the reactor's thread pool, so that the reactor keeps
serving while 100,000 nodes are laid out. Concurrent misses for one key
share one computation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TypeVar

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web.server import Request

from xmppnetgraph.error import StorageError, StorageFull, Unavailable
from xmppnetgraph.exclusions import Exclusions
from xmppnetgraph.graphview import GraphView, ViewEdge, ViewNode, viewGraph
from xmppnetgraph.http import params
from xmppnetgraph.http.errors import JSON_TYPE, Response, encodeJSON
from xmppnetgraph.http.exports import GEXF_TYPE, GRAPHML_TYPE, gexf, graphML
from xmppnetgraph.http.negotiate import etagOf
from xmppnetgraph.interfaces import IChangeFeed, IGraphStore
from xmppnetgraph.layout.place import Point
from xmppnetgraph.layout.service import Layout, Positions
from xmppnetgraph.model import GraphChanged, GraphSnapshot, NamePolicy
from xmppnetgraph.timestamp import formatOptionalTimestamp, formatTimestamp

_T = TypeVar("_T")


@attrs.frozen
class ViewParameters:
    """
    The parameters of a graph request (the public graph site's names).

    @ivar focus: C{?focus=DOMAIN}: only it and its neighbours.
    @ivar skipAnonymous: C{?skipAnon}.
    @ivar combineAnonymous: C{?combineAnon}.
    @ivar fold: C{?fold=0/1} (default 1).
    @ivar at: C{?at=<RFC 3339>}: the graph as it was then.
    """

    focus: str | None = None
    skipAnonymous: bool = False
    combineAnonymous: bool = False
    fold: bool = True
    at: float | None = None

    @classmethod
    def fromArgs(cls, args: params.Args) -> ViewParameters:
        """
        @return: the parameters of a request's query.
        @raise BadParameter: for a bad one.
        """
        return cls(
            focus=params.optionalDomain(args, "focus"),
            skipAnonymous=params.flag(args, "skipAnon"),
            combineAnonymous=params.flag(args, "combineAnon"),
            fold=params.flag(args, "fold", True),
            at=params.timestamp(args, "at"),
        )


def nodeJSON(node: ViewNode, position: Point) -> dict[str, object]:
    """
    @param position: where the node is drawn.
    @return: a node as C{/api/graph} shows it.
    """
    value: dict[str, object] = {
        "id": node.id,
        "x": round(position[0], 1),
        "y": round(position[1], 1),
        "publishes": node.publishes,
        "first_seen": formatTimestamp(node.firstSeen),
        "last_seen": formatTimestamp(node.lastSeen),
        "stale": node.stale,
    }
    if node.label is not None:
        value["label"] = node.label
    if node.members:
        value["members"] = list(node.members)
    if node.anonymous:
        value["anonymous"] = node.anonymous
    return value


def edgeJSON(edge: ViewEdge) -> dict[str, object]:
    """
    @return: an edge as C{/api/graph} shows it.
    """
    return {
        "from": edge.source,
        "to": edge.target,
        "confirmed": edge.confirmed,
        "directions": list(edge.directions),
    }


def graphJSON(view: GraphView, positions: Positions) -> dict[str, object]:
    """
    @param positions: the layout the nodes are drawn at (nodes it lacks are
        placed next to their neighbours).
    @return: C{/api/graph}'s body for C{view}.
    """
    placed = positions.place(view)
    named = sum(1 for node in view.nodes if node.label is not None)
    return {
        "at": formatTimestamp(view.at),
        "last_change": formatOptionalTimestamp(view.lastChange),
        "last_event_id": view.lastEventId,
        "counts": {
            "nodes": len(view.nodes),
            "named": named,
            "anonymous": len(view.nodes) - named,
            "edges": len(view.edges),
            "confirmed": sum(1 for edge in view.edges if edge.confirmed),
        },
        "nodes": [nodeJSON(node, placed[node.id]) for node in view.nodes],
        "edges": [edgeJSON(edge) for edge in view.edges],
    }


def dataJSON(view: GraphView, positions: Positions) -> dict[str, object]:
    """
    @param positions: not shown (the public shape has no positions).
    @return: C{/data.json}'s body: the public graph site's exact shape.
    """
    return {
        "nodes": [
            {"id": node.id, "label": node.label if node.label is not None else ""}
            for node in view.nodes
        ],
        "edges": [{"from": edge.source, "to": edge.target} for edge in view.edges],
    }


def withoutExcluded(snapshot: GraphSnapshot, excluded: Callable[[str], bool]) -> GraphSnapshot:
    """
    @return: C{snapshot} without the excluded domains and every link to or
        from one (an excluded domain is not even an anonymous peer).
    """
    gone = {domain.domain for domain in snapshot.domains if excluded(domain.domain)}
    if not gone:
        return snapshot
    return attrs.evolve(
        snapshot,
        domains=tuple(d for d in snapshot.domains if d.domain not in gone),
        links=tuple(
            link
            for link in snapshot.links
            if link.reporter not in gone and (link.remote is None or link.remote not in gone)
        ),
    )


@attrs.frozen
class Encoded:
    """
    One cached answer.

    @ivar body: the encoded body.
    @ivar etag: its entity tag (quoted).
    @ivar made: when it was made (the clock's time).
    @ivar eventId: the store's newest event id it shows.
    """

    body: bytes
    etag: bytes
    made: float
    eventId: int


@attrs.frozen
class Encoding:
    """
    One way of writing a view.

    @ivar write: writes it, with the positions of its nodes.
    @ivar contentType: the content type of what it writes.
    @ivar download: the file name it is offered as an attachment under,
        or L{None} (an API answer).
    """

    write: Callable[[GraphView, Positions], bytes]
    contentType: bytes = JSON_TYPE
    download: str | None = None


#: The encodings: C{/api/graph}, C{/data.json} and the exports.
ENCODINGS: Mapping[str, Encoding] = {
    "graph": Encoding(lambda view, positions: encodeJSON(graphJSON(view, positions))),
    "data": Encoding(lambda view, positions: encodeJSON(dataJSON(view, positions))),
    "graphml": Encoding(
        lambda view, positions: graphML(view, positions.place(view)),
        GRAPHML_TYPE,
        "xmppnetgraph.graphml",
    ),
    "gexf": Encoding(
        lambda view, positions: gexf(view, positions.place(view)),
        GEXF_TYPE,
        "xmppnetgraph.gexf",
    ),
}


class GraphViews:
    """
    The graph answers, cached.

    @ivar freshFor: seconds a cached answer of the current graph is kept
        when nothing changed.
    @ivar maxEntries: answers kept (least recently used dropped).
    @ivar misses: how many answers were computed (for tests and figures).
    """

    def __init__(
        self,
        store: IGraphStore,
        feed: IChangeFeed,
        reactor: IReactorTime,
        threads: IReactorThreads | None = None,
        *,
        namePolicy: NamePolicy = "consented",
        excluded: Callable[[str], bool] | None = None,
        anonymousKey: bytes = b"",
        freshFor: float = 30.0,
        maxEntries: int = 32,
        layout: Layout | None = None,
    ) -> None:
        """
        @param threads: where the view is computed (default: in the
            calling thread, as tests and benchmarks without a reactor want).
        @param layout: the positions of the nodes (default: none stored,
            every node placed next to its neighbours).
        """
        self.layout = layout if layout is not None else Layout()
        self._store = store
        self._clock = reactor
        self._threads = threads
        self._namePolicy = namePolicy
        self._excluded = excluded or Exclusions.empty().excluded
        self._anonymousKey = anonymousKey
        self.freshFor = freshFor
        self.maxEntries = maxEntries
        self.misses = 0
        self._latest: int | None = None
        self._cache: OrderedDict[tuple[object, ...], Encoded] = OrderedDict()
        self._pending: dict[tuple[object, ...], list[Deferred[Encoded]]] = {}
        self.stopObserving = feed.observe(GraphChanged, self._changed)

    def _changed(self, event: GraphChanged) -> None:
        """
        The store changed: answers of older states are no longer current.
        """
        self._latest = max(self._latest or 0, event.lastEventId)

    def _usable(self, key: tuple[object, ...], at: float | None) -> Encoded | None:
        """
        @return: the cached answer for C{key} if it shows the current state.
        """
        entry = self._cache.get(key)
        if entry is None or self._latest is None or entry.eventId != self._latest:
            return None
        if at is None and self._clock.seconds() - entry.made > self.freshFor:
            return None
        self._cache.move_to_end(key)
        return entry

    def answer(self, encoding: str, parameters: ViewParameters) -> Deferred[Encoded]:
        """
        @param encoding: C{"graph"} or C{"data"}.
        @return: the answer for C{parameters}, from the cache or computed.
        """
        positions = self.layout.current
        # A relayout changes the answers that carry positions, not /data.json's.
        key = (encoding, parameters, positions.version if encoding != "data" else 0)
        hit = self._usable(key, parameters.at)
        if hit is not None:
            return Deferred.fromCoroutine(_value(hit))
        d: Deferred[Encoded] = Deferred()
        waiting = self._pending.get(key)
        if waiting is not None:
            waiting.append(d)
            return d
        self._pending[key] = [d]
        computing = Deferred.fromCoroutine(self._compute(encoding, parameters, key, positions))
        computing.addBoth(self._computed, key)
        return d

    def _computed(self, result: Encoded | Failure, key: tuple[object, ...]) -> None:
        """
        Hand a computed answer (or its failure) to everyone who waits. When
        the store cannot be read (down, or failing), the last answer for
        the same parameters is handed instead, if there is one: the last
        state stays served.
        """
        if isinstance(result, Failure) and result.check(StorageError, StorageFull):
            last = self._cache.get(key)
            if last is not None:
                result = last
        for waiter in self._pending.pop(key, []):
            waiter.callback(result)

    async def _compute(
        self,
        encoding: str,
        parameters: ViewParameters,
        key: tuple[object, ...],
        positions: Positions,
    ) -> Encoded:
        """
        Read the snapshot, apply the view rules, encode, and cache.
        """
        self.misses += 1
        before = self._latest
        snapshot = await self._store.graph(parameters.at)
        if parameters.at is None:
            # The current graph shows exactly the snapshot's newest event.
            eventId = snapshot.lastEventId
            self._latest = max(self._latest or 0, eventId)
        else:
            # A past graph is recomputed after any later change (a write
            # may still land at or before a recent 'at'); unknown: never
            # reused until the feed has said where the store is.
            eventId = before if before is not None else -1
        body = await self._inThread(
            lambda: ENCODINGS[encoding].write(self.view(parameters, snapshot), positions)
        )
        entry = Encoded(body, etagOf(body), self._clock.seconds(), eventId)
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self.maxEntries:
            self._cache.popitem(last=False)
        return entry

    async def _inThread(self, work: Callable[[], _T]) -> _T:
        """
        @return: the result of C{work()}, run in the thread pool (or here,
            without one).
        """
        if self._threads is None:
            return work()
        from twisted.internet.interfaces import IReactorFromThreads

        pool = self._threads.getThreadPool()
        reactor = self._threads
        assert IReactorFromThreads.providedBy(reactor)
        return await deferToThreadPool(reactor, pool, work)

    @property
    def latest(self) -> int | None:
        """
        The store's newest event id as far as known, or L{None}.
        """
        return self._latest

    async def currentView(self, parameters: ViewParameters) -> GraphView:
        """
        @return: the view for C{parameters}, computed now (not cached; for
            other summaries of the graph, such as the statistics).
        """
        snapshot = await self._store.graph(parameters.at)
        if parameters.at is None:
            self._latest = max(self._latest or 0, snapshot.lastEventId)
        return await self._inThread(lambda: self.view(parameters, snapshot))

    def view(self, parameters: ViewParameters, snapshot: GraphSnapshot) -> GraphView:
        """
        @return: the view rules applied to C{snapshot} (the pure part of a
            miss; any thread).
        """
        return viewGraph(
            withoutExcluded(snapshot, self._excluded),
            fold=parameters.fold,
            combineAnonymous=parameters.combineAnonymous,
            skipAnonymous=parameters.skipAnonymous,
            namePolicy=self._namePolicy,
            focus=parameters.focus,
            anonymousKey=self._anonymousKey,
        )


async def _value(entry: Encoded) -> Encoded:
    return entry


class GraphEndpoints:
    """
    The handlers of C{/api/graph}, C{/data.json} and the exports.
    """

    def __init__(self, views: GraphViews | None) -> None:
        """
        @param views: the answers, or L{None} without a graph store.
        """
        self._views = views

    async def _answer(self, encoding: str, request: Request) -> Response:
        if self._views is None:
            raise Unavailable("this node keeps no graph store")
        parameters = ViewParameters.fromArgs(params.query(request))
        entry = await self._views.answer(encoding, parameters)
        headers = {b"cache-control": b"no-cache"}
        download = ENCODINGS[encoding].download
        if download is not None:
            headers[b"content-disposition"] = f'attachment; filename="{download}"'.encode()
        return Response(entry.body, 200, ENCODINGS[encoding].contentType, headers, entry.etag)

    async def graph(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /api/graph}.
        """
        return await self._answer("graph", request)

    async def data(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /data.json}.
        """
        return await self._answer("data", request)

    async def graphML(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /api/graph.graphml}: the graph as a GraphML file.
        """
        return await self._answer("graphml", request)

    async def gexf(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /api/graph.gexf}: the graph as a GEXF file.
        """
        return await self._answer("gexf", request)
