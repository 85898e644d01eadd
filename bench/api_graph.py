"""
C{GET /api/graph} over a generated graph store (SQLite in a temporary
directory): cold (snapshot read, view rules, JSON encoding, gzip) and warm
(the cached answer and its cached gzip copy: the client, treq, asks for
gzip), through the real router in memory, plus the parts of a cold answer
timed apart; then the GraphML and GEXF exports, cold and warm. Target:
warm <= 100 ms at 100,000 nodes.

    python bench/api_graph.py [--nodes 10000 100000] [--smoke]

Each domain is named by one or more reports (50 peers per reporter), with
the name policy 'reported' so that every domain is a named node.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from treq.testing import StubTreq
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater, react

from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.graphview import viewGraph
from xmppnetgraph.http.errors import encodeJSON
from xmppnetgraph.http.exports import gexf, graphML
from xmppnetgraph.http.graph import graphJSON
from xmppnetgraph.http.site import WebAPI
from xmppnetgraph.layout.service import Positions
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.serverinfo.payload import RemoteDomain
from xmppnetgraph.store.database import openDatabase
from xmppnetgraph.store.graph import GraphStore

reactor: Any = _reactor
PEERS = 50


async def fill(store: GraphStore, nodes: int) -> None:
    """
    Store reports naming C{nodes} domains.
    """
    rng = random.Random(1)
    names = [f"d{n}.example" for n in range(nodes)]
    reporters = names[: max(1, nodes // PEERS)]
    for index, reporter in enumerate(reporters):
        chunk = names[index * PEERS : (index + 1) * PEERS]
        extra = rng.sample(reporters, min(5, len(reporters)))
        peers = {name for name in chunk + extra if name != reporter}
        await store.storeReport(
            reporter, [RemoteDomain(name, ("incoming", "outgoing")) for name in sorted(peers)]
        )


async def get(http: StubTreq, path: str) -> tuple[int, int]:
    """
    @return: status and body length of C{GET path}, pumping the memory
        connection while the database threads work.
    """
    done: list[object] = []
    d: Deferred[Any] = http.get("http://bench" + path)
    d.addBoth(lambda r: (done.append(r), r)[1])
    while not done:
        http.flush()
        await deferLater(reactor, 0.0005, lambda: None)
    response = await d
    body: Deferred[bytes] = response.content()
    got: list[object] = []
    body.addBoth(lambda r: (got.append(r), r)[1])
    while not got:
        http.flush()
        await deferLater(reactor, 0.0005, lambda: None)
    return response.code, len(await body)


async def measure(nodes: int) -> None:
    """
    Print the figures for one size.
    """
    with tempfile.TemporaryDirectory() as tmp:
        database = openDatabase(None, Path(tmp), reactor)
        feed = ChangeFeed()
        store = GraphStore(database, feed)
        start = time.perf_counter()
        await fill(store, nodes)
        filled = time.perf_counter() - start
        api = WebAPI(
            "bench.example",
            LinkTable(feed),
            feed,
            reactor,
            graph=store,
            namePolicy="reported",
        )
        http = StubTreq(api.resource())

        start = time.perf_counter()
        snapshot = await store.graph()
        read = time.perf_counter() - start
        start = time.perf_counter()
        view = viewGraph(snapshot, namePolicy="reported")
        rules = time.perf_counter() - start
        start = time.perf_counter()
        body = encodeJSON(graphJSON(view, Positions(0, {})))
        encode = time.perf_counter() - start

        start = time.perf_counter()
        zipped = len(gzip.compress(body, 6, mtime=0))
        compress = time.perf_counter() - start

        async def coldAndWarm(path: str) -> tuple[float, float, int]:
            start = time.perf_counter()
            code, size = await get(http, path)
            cold = time.perf_counter() - start
            assert code == 200, code
            warm = []
            for _ in range(5):
                start = time.perf_counter()
                code, _ = await get(http, path)
                warm.append(time.perf_counter() - start)
            return cold, min(warm), size

        cold, warm, size = await coldAndWarm("/api/graph")
        exports = [(name, await coldAndWarm(f"/api/graph.{name}")) for name in ("graphml", "gexf")]
        placed = Positions(0, {}).place(view)
        start = time.perf_counter()
        graphML(view, placed)
        gexf(view, placed)
        writers = time.perf_counter() - start
        api.stop()
        await database.close()
        print(
            f"{len(view.nodes):>7} nodes {len(view.edges):>7} edges  body {size / 1e6:6.1f} MB"
            f" (gzip {zipped / 1e6:.2f} MB in {compress * 1000:.0f} ms)"
            f"  (fill {filled:5.1f} s)  cold {cold * 1000:7.0f} ms"
            f" [read {read * 1000:.0f} + view {rules * 1000:.0f} + json {encode * 1000:.0f}"
            f" + gzip]  warm {warm * 1000:6.1f} ms (best of 5)"
        )
        for name, (exportCold, exportWarm, exportSize) in exports:
            print(
                f"{'':>15} {name:>8}: {exportSize / 1e6:6.1f} MB  cold {exportCold * 1000:7.0f} ms"
                f"  warm {exportWarm * 1000:6.1f} ms"
            )
        print(f"{'':>15} (both writers alone: {writers * 1000:.0f} ms)")
        assert len(body) == size


async def main(nodes: list[int]) -> None:
    for n in nodes:
        await measure(n)


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--smoke", action="store_true", help="1,000 nodes, once")
    args = parser.parse_args(argv)
    nodes = [1000] if args.smoke else args.nodes
    react(lambda _: Deferred.fromCoroutine(main(nodes)))


if __name__ == "__main__":
    run()
