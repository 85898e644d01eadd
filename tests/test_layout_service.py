# -*- test-case-name: tests.test_layout_service -*-
"""
Tests for L{xmppnetgraph.layout.service}: when relayouts run (on a
L{Clock}, with a fake worker and store), the real worker process, and a
relayout applied to C{/api/graph} that survives a restart (a real SQLite
file).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.test_http_api import NoLinks, publishes
from tests.test_layout_compute import scaleFree
from tests.test_store_database import asyncTest
from xmppnetgraph.error import LayoutFailed
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.graphview import GraphView, ViewEdge, ViewNode
from xmppnetgraph.http.graph import ViewParameters
from xmppnetgraph.http.site import WebAPI
from xmppnetgraph.layout.place import EXTENT, Point
from xmppnetgraph.layout.service import (
    Layout,
    LayoutService,
    decodeResponse,
    encodeRequest,
    graphOf,
    runWorker,
)
from xmppnetgraph.model import GraphChanged
from xmppnetgraph.serverinfo.payload import RemoteDomain
from xmppnetgraph.store.database import openDatabase
from xmppnetgraph.store.graph import GraphStore
from xmppnetgraph.store.layout import LayoutStore, StoredLayout


def view(ids: list[str], edges: list[tuple[str, str]], eventId: int) -> GraphView:
    """
    @return: a view of named nodes C{ids} and C{edges}, showing the
        store's event C{eventId}.
    """
    return GraphView(
        0.0,
        tuple(ViewNode(node, node, True, 0.0, 0.0) for node in ids),
        tuple(ViewEdge(a, b, ("bidi",), True) for a, b in edges),
        None,
        eventId,
    )


class MemoryLayoutStore:
    """
    A L{LayoutStore} in memory.
    """

    def __init__(self, stored: StoredLayout | None = None) -> None:
        self.stored = stored or StoredLayout({}, None, None)
        self.saves: list[int] = []

    def load(self) -> Deferred[StoredLayout]:
        return succeed(self.stored)

    def save(self, positions: Mapping[str, Point], lastEventId: int) -> Deferred[None]:
        merged = {**self.stored.positions, **positions}
        self.stored = StoredLayout(merged, lastEventId, 0.0)
        self.saves.append(lastEventId)
        return succeed(None)


class Scheduling(SynchronousTestCase):
    """
    When L{LayoutService} relayouts: after a quiet time, at most every
    interval, again after changes during one, never after stop.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.feed = ChangeFeed()
        self.current = view(["a", "b", "c"], [("a", "b"), ("b", "c")], 5)
        self.calls: list[tuple[list[str], dict[str, Point]]] = []
        self.answers: list[Deferred[list[Point]]] = []

    def relayout(
        self, ids: list[str], edges: list[tuple[int, int]], previous: dict[str, Point]
    ) -> Deferred[list[Point]]:
        self.calls.append((ids, previous))
        d: Deferred[list[Point]] = Deferred()
        self.answers.append(d)
        return d

    def service(self, stored: StoredLayout | None = None) -> LayoutService:
        self.store = MemoryLayoutStore(stored)
        service = LayoutService(
            self.store,  # type: ignore[arg-type]
            self.feed,
            self.clock,
            lambda: succeed(self.current),
            self.relayout,
            interval=600.0,
            quiet=10.0,
        )
        service.startService()
        self.addCleanup(service.stopService)
        return service

    def answer(self, index: int = -1) -> None:
        """
        Let the worker answer one position per node.
        """
        ids = self.calls[index][0]
        self.answers[index].callback([(float(i), float(-i)) for i in range(len(ids))])

    def test_firstRelayout(self) -> None:
        """
        Without a stored layout, a relayout starts after the quiet time;
        its positions are saved with the view's event id and applied (a
        new version of the layout).
        """
        service = self.service()
        self.clock.advance(9)
        self.assertEqual(self.calls, [])
        self.clock.advance(1)
        self.assertEqual(self.calls, [(["a", "b", "c"], {})])
        version = service.layout.current.version
        self.answer()
        self.assertEqual(self.store.saves, [5])
        self.assertEqual(
            service.layout.current.positions, {"a": (0.0, 0.0), "b": (1.0, -1.0), "c": (2.0, -2.0)}
        )
        self.assertEqual(service.layout.current.version, version + 1)
        self.assertEqual(service.relayouts, 1)

    def test_upToDate(self) -> None:
        """
        A stored layout of the current state with every node is loaded and
        no worker runs.
        """
        stored = StoredLayout({"a": (1.0, 1.0), "b": (2.0, 2.0), "c": (3.0, 3.0)}, 5, 0.0)
        service = self.service(stored)
        self.assertEqual(service.layout.current.positions, stored.positions)
        self.clock.advance(3600)
        self.assertEqual(self.calls, [])

    def test_seededFromStored(self) -> None:
        """
        After a restart with an older stored layout, the relayout starts
        from the stored positions of the nodes still there.
        """
        stored = StoredLayout({"a": (1.0, 1.0), "gone": (9.0, 9.0)}, 3, 0.0)
        self.service(stored)
        self.clock.advance(10)
        self.assertEqual(self.calls, [(["a", "b", "c"], {"a": (1.0, 1.0)})])

    def test_interval(self) -> None:
        """
        A change after a relayout waits for the interval since that one
        started; a burst of changes makes one relayout.
        """
        self.service()
        self.clock.advance(10)
        self.answer()
        self.current = view(["a", "b", "c", "d"], [("c", "d")], 6)
        for eventId in (6, 7, 8):
            self.feed.emit(GraphChanged(eventId, eventId, ("d",)))
            self.clock.advance(1)
        self.clock.advance(500)
        self.assertEqual(len(self.calls), 1)
        self.clock.advance(100)
        self.assertEqual(len(self.calls), 2)
        self.assertEqual(self.calls[1][0], ["a", "b", "c", "d"])

    def test_oldEventsIgnored(self) -> None:
        """
        A change the last relayout already showed plans nothing.
        """
        stored = StoredLayout({"a": (1.0, 1.0), "b": (2.0, 2.0), "c": (3.0, 3.0)}, 5, 0.0)
        self.service(stored)
        self.feed.emit(GraphChanged(4, 5, ("a",)))
        self.clock.advance(3600)
        self.assertEqual(self.calls, [])

    def test_changeDuringRelayout(self) -> None:
        """
        A change while a relayout runs makes another one after it, once
        the interval has passed.
        """
        self.service()
        self.clock.advance(10)
        self.current = view(["a", "b", "c", "d"], [("c", "d")], 6)
        self.feed.emit(GraphChanged(6, 6, ("d",)))
        self.clock.advance(30)
        self.answer()
        self.assertEqual(len(self.calls), 1)
        self.clock.advance(570)
        self.assertEqual(len(self.calls), 2)

    def test_failure(self) -> None:
        """
        A failed relayout is logged and changes nothing.
        """
        service = self.service()
        self.clock.advance(10)
        version = service.layout.current.version
        self.answers[0].errback(LayoutFailed("the layout worker failed: boom"))
        self.assertEqual(len(self.flushLoggedErrors(LayoutFailed)), 1)
        self.assertEqual(service.layout.current.version, version)
        self.assertEqual(self.store.saves, [])
        self.assertIsNone(service.underway)

    def test_stopCancels(self) -> None:
        """
        Stopping cancels a relayout under way (its worker is killed) and
        plans no more.
        """
        service = self.service()
        self.clock.advance(10)
        service.stopService()
        # Cancelled: the Deferred the worker's result was awaited on.
        self.assertTrue(self.answers[0].called)
        self.assertIsNone(service.underway)
        self.feed.emit(GraphChanged(9, 9, ("x",)))
        self.clock.advance(3600)
        self.assertEqual(len(self.calls), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class WireTests(SynchronousTestCase):
    """
    The worker's input and output.
    """

    def test_graphOf(self) -> None:
        """
        L{graphOf} gives the ids in view order and edges as index pairs.
        """
        self.assertEqual(
            graphOf(view(["a", "b", "c"], [("a", "c"), ("b", "c")], 1)),
            (["a", "b", "c"], [(0, 2), (1, 2)]),
        )

    def test_roundTrip(self) -> None:
        """
        The request is the JSON the worker reads; a response of the wrong
        length is refused.
        """
        request = json.loads(encodeRequest(["a", "b"], [(0, 1)], {"a": (1.234, 5.0)}))
        self.assertEqual(
            request, {"nodes": ["a", "b"], "edges": [[0, 1]], "previous": {"a": [1.23, 5.0]}}
        )
        self.assertEqual(decodeResponse(b'{"positions": [[1, 2]]}', 1), [(1.0, 2.0)])
        self.assertRaises(ValueError, decodeResponse, b'{"positions": [[1, 2]]}', 2)


class WorkerTests(TestCase):
    """
    L{runWorker} runs C{python -m xmppnetgraph.layout.worker} for real.
    """

    @asyncTest
    async def test_layout(self) -> None:
        """
        The worker lays out a 300-node graph within [-EXTENT, EXTENT],
        while the reactor keeps running (a timer fires during it).
        """
        ids = [f"n{i}.example" for i in range(300)]
        ticks: list[float] = []
        from twisted.internet.task import LoopingCall

        loop = LoopingCall(lambda: ticks.append(reactor.seconds()))
        loop.clock = reactor
        loop.start(0.01)
        try:
            positions = await runWorker(reactor, reactor, ids, scaleFree(300), {})
        finally:
            loop.stop()
        self.assertEqual(len(positions), 300)
        self.assertLessEqual(max(max(abs(x), abs(y)) for x, y in positions), EXTENT + 0.01)
        self.assertGreater(len(ticks), 2)

    @asyncTest
    async def test_failure(self) -> None:
        """
        A worker that fails (an edge to a node that does not exist) is a
        L{LayoutFailed} with the end of its stderr.
        """
        try:
            await runWorker(reactor, reactor, ["a"], [(0, 5)], {})
        except LayoutFailed as e:
            self.assertIn("Traceback", str(e))
        else:
            self.fail("no LayoutFailed")


class RestartTests(TestCase):
    """
    A relayout by the real worker, applied to C{/api/graph}, saved in a
    SQLite file and loaded again after a restart.
    """

    async def startNode(self, dataDir: Path) -> tuple[Any, LayoutService, StubTreq]:
        """
        @return: the database, the layout service (started and loaded) and
            the API of a node on C{dataDir}.
        """
        database = openDatabase(None, dataDir, reactor)
        feed = ChangeFeed()
        self.store = GraphStore(database, feed)
        layout = Layout()
        api = WebAPI("agg.example", NoLinks(), feed, reactor, graph=self.store, layout=layout)
        assert api.views is not None
        views = api.views

        async def relayout(
            ids: list[str], edges: list[tuple[int, int]], previous: dict[str, Point]
        ) -> list[Point]:
            return await runWorker(reactor, reactor, ids, edges, previous)

        service = LayoutService(
            LayoutStore(database),
            feed,
            reactor,
            lambda: views.currentView(ViewParameters()),
            relayout,
            layout=layout,
            quiet=3600.0,
        )
        service.startService()
        assert service.loaded is not None
        await service.loaded
        return database, service, StubTreq(api.resource())

    async def graph(self, http: StubTreq) -> dict[str, tuple[float, float]]:
        """
        @return: the positions of C{/api/graph}'s nodes (pumping the memory
            connection while the database threads work).
        """

        async def settle(d: Deferred[Any]) -> Any:
            done: list[object] = []
            d.addBoth(lambda result: (done.append(result), result)[1])
            while not done:
                http.flush()
                await deferLater(reactor, 0.002, lambda: None)
            return await d

        response = await settle(http.get("http://agg.example/api/graph"))
        body = json.loads(await settle(response.content()))
        return {node["id"]: (node["x"], node["y"]) for node in body["nodes"]}

    @asyncTest
    async def test_relayoutSurvivesRestart(self) -> None:
        """
        The worker's positions reach C{/api/graph}, are saved, and after a
        restart are the answer's positions again without a relayout; a
        domain added after the restart sits next to its reporter.
        """
        dataDir = Path(self.mktemp()).absolute()
        dataDir.mkdir(parents=True)
        database, service, http = await self.startNode(dataDir)
        for name in ("a.example", "b.example", "c.example"):
            await self.store.recordFetch(name, publishes())
        await self.store.storeReport(
            "a.example", [RemoteDomain("b.example", ("bidi",)), RemoteDomain(None, ("bidi",))]
        )
        await self.store.storeReport("b.example", [RemoteDomain("c.example", ("bidi",))])
        await service.relayoutNow()
        self.assertEqual(service.relayouts, 1)
        before = await self.graph(http)
        self.assertEqual(len(before), 4)
        stored = service.layout.current.positions
        self.assertEqual(
            before, {k: (round(stored[k][0], 1), round(stored[k][1], 1)) for k in before}
        )
        await service.stopService()
        await database.close()

        database, service, http = await self.startNode(dataDir)
        self.addCleanup(database.close)
        self.addCleanup(service.stopService)
        self.assertEqual(await self.graph(http), before)
        await service.relayoutNow()
        self.assertEqual(service.relayouts, 0)

        await self.store.recordFetch("d.example", publishes())
        await self.store.storeReport("c.example", [RemoteDomain("d.example", ("bidi",))])
        after = await self.graph(http)
        self.assertLessEqual(math.dist(after["d.example"], after["c.example"]), 0.05 * EXTENT)
