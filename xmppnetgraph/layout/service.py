# -*- test-case-name: tests.test_layout_service -*-
"""
The node's layout: the positions the graph answers show (L{Layout}), and
the service that keeps them up to date (L{LayoutService}).

Between relayouts a node without a stored position is placed next to its
neighbours when an answer is computed (L{Layout.place}, which the graph
views call for every answer: a change of the graph is a new answer, so a
new domain shows up next to its neighbours at once).

A full relayout runs in a worker process (L{runWorker}: C{python -m
xmppnetgraph.layout.worker}), seeded from the current positions, when the
graph changed since the last one, at most every C{interval} seconds and
after C{quiet} seconds without a change (so a burst makes one relayout).
Its positions are saved in one transaction (L{LayoutStore}) and then
replace the old ones in memory, which changes every answer (new ETag).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ProcessDone, ProcessExitedAlready
from twisted.internet.interfaces import IDelayedCall, IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

import xmppnetgraph
from xmppnetgraph.error import LayoutFailed
from xmppnetgraph.graphview import GraphView, serviceParent
from xmppnetgraph.interfaces import IChangeFeed
from xmppnetgraph.layout.place import Point, place
from xmppnetgraph.model import GraphChanged
from xmppnetgraph.store.layout import LayoutStore

_log = Logger()


@attrs.frozen
class Positions:
    """
    One state of the layout: what an answer is computed with.

    @ivar version: counts the relayouts applied (answers cache by it).
    @ivar positions: a position per node id of the default view.
    """

    version: int
    positions: Mapping[str, Point]

    def place(self, view: GraphView) -> dict[str, Point]:
        """
        @return: a position for every node of C{view}: its stored one, or
            one next to its neighbours (or its parent service domain).
        """
        return place(
            [node.id for node in view.nodes],
            ((edge.source, edge.target) for edge in view.edges),
            self.positions,
            serviceParent,
        )


class Layout:
    """
    The current positions (replaced whole by each relayout, so that a
    thread computing an answer sees one consistent state).
    """

    def __init__(self, positions: Mapping[str, Point] | None = None) -> None:
        self.current = Positions(0, dict(positions or {}))

    def load(self, positions: Mapping[str, Point]) -> None:
        """
        Take the stored positions (at start).
        """
        self.current = Positions(self.current.version + 1, dict(positions))

    def apply(self, positions: Mapping[str, Point]) -> None:
        """
        Take the positions of a relayout (other nodes keep theirs).
        """
        merged = dict(self.current.positions)
        merged.update(positions)
        self.current = Positions(self.current.version + 1, merged)


def encodeRequest(
    ids: list[str], edges: list[tuple[int, int]], previous: dict[str, Point]
) -> bytes:
    """
    @return: the worker's input for a graph.
    """
    return json.dumps(
        {
            "nodes": ids,
            "edges": edges,
            "previous": {node: [round(x, 2), round(y, 2)] for node, (x, y) in previous.items()},
        },
        separators=(",", ":"),
    ).encode()


def decodeResponse(body: bytes, count: int) -> list[Point]:
    """
    @param count: how many positions the request asked for.
    @return: the positions in the worker's output.
    @raise ValueError: if it is not the worker's output for C{count}
        nodes.
    """
    value: Any = json.loads(body)
    positions = value["positions"]
    if not isinstance(positions, list) or len(positions) != count:
        raise ValueError(f"the layout worker answered {len(positions)} positions for {count} nodes")
    return [(float(x), float(y)) for x, y in positions]


class _Collect(ProcessProtocol):
    """
    Feed the worker its input, collect its output and the end of its
    stderr.
    """

    def __init__(self, request: bytes) -> None:
        self._request = request
        self.stdout: list[bytes] = []
        self.stderr = b""
        self.ended: Deferred[bytes] = Deferred(self._kill)

    def _kill(self, ended: Deferred[bytes]) -> None:
        """
        Cancelled: kill the worker.
        """
        if self.transport is not None:
            try:
                self.transport.signalProcess("KILL")
            except ProcessExitedAlready:
                pass

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self._request)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.stdout.append(data)

    def errReceived(self, data: bytes) -> None:
        self.stderr = (self.stderr + data)[-4000:]

    def processEnded(self, reason: Failure) -> None:
        if self.ended.called:
            # Cancelled (the worker was killed for it).
            return
        if reason.check(ProcessDone):
            self.ended.callback(b"".join(self.stdout))
        else:
            detail = self.stderr.decode("utf-8", "replace").strip()
            self.ended.errback(LayoutFailed(f"the layout worker failed ({reason.value}): {detail}"))


def workerCommand() -> tuple[str, list[str], dict[str, str]]:
    """
    @return: the executable, arguments and environment of the worker: this
        Python, with this copy of xmppnetgraph first on its path.
    """
    env = dict(os.environ)
    root = str(Path(xmppnetgraph.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return sys.executable, [sys.executable, "-m", "xmppnetgraph.layout.worker"], env


async def runWorker(
    processes: IReactorProcess,
    clock: IReactorTime,
    ids: list[str],
    edges: list[tuple[int, int]],
    previous: dict[str, Point],
    timeout: float = 1800.0,
) -> list[Point]:
    """
    Lay out a graph in a worker process, without blocking the reactor.

    @param ids: the nodes.
    @param edges: the edges, as index pairs into C{ids}.
    @param previous: positions to start from.
    @param timeout: seconds after which the worker is killed.
    @return: a position per node.
    @raise LayoutFailed: if the worker fails or takes too long.
    """
    protocol = _Collect(encodeRequest(ids, edges, previous))
    executable, argv, env = workerCommand()
    transport = processes.spawnProcess(protocol, executable, argv, env=env)

    timer = clock.callLater(timeout, lambda: transport.signalProcess("KILL"))
    try:
        body = await protocol.ended
    finally:
        if timer.active():
            timer.cancel()
    try:
        return decodeResponse(body, len(ids))
    except (ValueError, KeyError, TypeError) as e:
        raise LayoutFailed(f"the layout worker answered nonsense: {e}") from None


def graphOf(view: GraphView) -> tuple[list[str], list[tuple[int, int]]]:
    """
    @return: the node ids of C{view} and its edges as index pairs.
    """
    ids = [node.id for node in view.nodes]
    index = {node: i for i, node in enumerate(ids)}
    return ids, [(index[edge.source], index[edge.target]) for edge in view.edges]


#: A relayout of a graph: ids, edges, positions to start from.
Relayout = Callable[[list[str], list[tuple[int, int]], dict[str, Point]], Awaitable[list[Point]]]


class LayoutService(Service):
    """
    Keep L{Layout} up to date: load the stored positions at start, relayout
    after changes (debounced), save.

    @ivar layout: the positions the answers use.
    @ivar relayouts: relayouts applied since start (for tests and
        figures).
    @ivar underway: the relayout under way, or L{None}.
    @ivar loaded: fires when the stored layout was loaded (after start).
    """

    def __init__(
        self,
        store: LayoutStore,
        feed: IChangeFeed,
        clock: IReactorTime,
        currentView: Callable[[], Awaitable[GraphView]],
        relayout: Relayout,
        *,
        layout: Layout | None = None,
        interval: float = 600.0,
        quiet: float = 10.0,
    ) -> None:
        """
        @param layout: the positions to keep up to date (default: new).
        @param currentView: the default view of the current graph.
        @param relayout: how to lay out (L{runWorker}, bound).
        @param interval: the fewest seconds between two relayouts' starts.
        @param quiet: seconds without a change before a relayout starts.
        """
        self.layout = layout if layout is not None else Layout()
        self.relayouts = 0
        self.underway: Deferred[None] | None = None
        self._store = store
        self._feed = feed
        self._clock = clock
        self._currentView = currentView
        self._relayout = relayout
        self.interval = interval
        self.quiet = quiet
        self._laidOutEventId: int | None = None
        self._lastStart: float | None = None
        self._timer: IDelayedCall | None = None
        self._dirty = False
        self._stopObserving: Callable[[], None] | None = None
        self.loaded: Deferred[None] | None = None

    def startService(self) -> None:
        """
        Load the stored layout, then relayout if the graph changed since.
        """
        super().startService()
        self._stopObserving = self._feed.observe(GraphChanged, self._changed)
        self.loaded = Deferred.fromCoroutine(self._load())
        self.loaded.addErrback(lambda f: _log.failure("Loading the stored layout failed", f))

    async def _load(self) -> None:
        stored = await self._store.load()
        self.layout.load(stored.positions)
        self._laidOutEventId = stored.lastEventId
        self._lastStart = None
        # The graph may have changed while we were stopped: look.
        self._schedule()

    def stopService(self) -> Deferred[None]:
        """
        Stop relayouts; one under way is cancelled (its worker killed).
        """
        super().stopService()
        if self._stopObserving is not None:
            self._stopObserving()
            self._stopObserving = None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        underway = self.underway
        if underway is None:
            return Deferred.fromCoroutine(_nothing())
        underway.cancel()
        return Deferred.fromCoroutine(_nothing())

    def _changed(self, event: GraphChanged) -> None:
        if self._laidOutEventId is None or event.lastEventId > self._laidOutEventId:
            self._schedule()

    def _schedule(self) -> None:
        """
        Plan a relayout (after the quiet time and the interval), or mark
        that another one is due after the one under way.
        """
        if not self.running:
            return
        if self.underway is not None:
            self._dirty = True
            return
        now = self._clock.seconds()
        earliest = now + self.quiet
        if self._lastStart is not None:
            earliest = max(earliest, self._lastStart + self.interval)
        if self._timer is not None and self._timer.active():
            self._timer.reset(max(earliest, self._timer.getTime()) - now)
            return
        self._timer = self._clock.callLater(earliest - now, self._start)

    def _start(self) -> None:
        self._timer = None
        self.relayoutNow()

    def relayoutNow(self) -> Deferred[None]:
        """
        Relayout now (unless one is under way: then that one's end).

        @return: a Deferred that fires when it is applied (or failed and was
            logged).
        """
        if self.underway is not None:
            done: Deferred[None] = Deferred()
            self.underway.addBoth(lambda _: done.callback(None))
            return done
        self._dirty = False
        self._lastStart = self._clock.seconds()
        underway = Deferred.fromCoroutine(self._run())
        underway.addErrback(self._failed)
        self.underway = underway
        underway.addBoth(self._ran)
        return underway

    def _failed(self, failure: Failure) -> None:
        if not failure.check(CancelledError):
            _log.failure("Graph relayout failed", failure)

    def _ran(self, result: None) -> None:
        self.underway = None
        if self._dirty:
            self._schedule()

    async def _run(self) -> None:
        view = await self._currentView()
        ids, edges = graphOf(view)
        current = self.layout.current.positions
        if view.lastEventId == self._laidOutEventId and all(node in current for node in ids):
            return
        previous = {node: current[node] for node in ids if node in current}
        started = self._clock.seconds()
        positions = await self._relayout(ids, edges, previous)
        result = dict(zip(ids, positions, strict=True))
        await self._store.save(result, view.lastEventId)
        self.layout.apply(result)
        self._laidOutEventId = view.lastEventId
        self.relayouts += 1
        _log.info(
            "Graph relayout of {nodes} nodes, {edges} edges in {seconds:.1f} s",
            nodes=len(ids),
            edges=len(edges),
            seconds=self._clock.seconds() - started,
        )


async def _nothing() -> None:
    return None
