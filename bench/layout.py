"""
Graph layout on the server: python-igraph against networkx, on the real
snapshot (C{shared/data}, 5,783 nodes) and on generated scale-free graphs
(Barabasi-Albert, 3 edges per new node), and the reactor's lag while the
node relayouts in its worker process (against the same layout in a thread).

    python bench/layout.py [--sizes 10000 50000] [--data PATH] [--smoke]

Per method and graph, in a fresh child process each (for its peak RSS):
the first layout's wall time, a relayout's after adding 1% new nodes (3
links each, preferential attachment) seeded from the previous positions,
and the stability: the mean displacement of the unchanged nodes, as a
share of the layout's extent, after the same fit onto the previous
positions that the node applies (L{fitTransform}). igraph-fr is the node's
own code (L{xmppnetgraph.layout.compute.layout}); igraph-fr-fresh lays the
grown graph out again without seeding (what stability seeding buys).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, Child, parseArguments, printTable, runMain, waitEvent, workDirectory

DATA = REPO.parent / "shared" / "data" / "xmpp-network-graph-2025-01.json"

METHODS = ["igraph-fr", "igraph-fr-fresh", "igraph-drl", "networkx-spring", "networkx-fa2"]

Graph = tuple[list[str], list[tuple[int, int]]]


def snapshotGraph(path: Path) -> Graph:
    """
    @return: the nodes and edges of the public graph site's C{data.json}.
    """
    data = json.loads(path.read_text())
    ids = [str(node["id"]) for node in data["nodes"]]
    index = {node: i for i, node in enumerate(ids)}
    edges = {
        (index[e["from"]], index[e["to"]])
        for e in data["edges"]
        if e["from"] in index and e["to"] in index and e["from"] != e["to"]
    }
    return ids, sorted(edges)


def scaleFreeGraph(count: int, seed: int = 1) -> Graph:
    """
    @return: a Barabasi-Albert graph of C{count} nodes, 3 edges per node.
    """
    import igraph

    random.seed(seed)
    graph = igraph.Graph.Barabasi(count, 3)
    return [f"d{i}.example" for i in range(count)], [tuple(e) for e in graph.get_edgelist()]


def grow(graph: Graph, seed: int = 2) -> Graph:
    """
    @return: C{graph} with 1% new nodes, each linked to 3 nodes chosen by
        degree.
    """
    ids, edges = graph
    rng = random.Random(seed)
    ends = [end for edge in edges for end in edge] or [0]
    new = max(1, len(ids) // 100)
    more = list(edges)
    for i in range(new):
        node = len(ids) + i
        for target in {rng.choice(ends) for _ in range(3)}:
            more.append((target, node))
    return ids + [f"new{i}.example" for i in range(new)], more


def _layoutWith(method: str, graph: Graph, previous: dict[str, tuple[float, float]]) -> list[Any]:
    """
    @return: positions of C{graph} by C{method}, seeded from C{previous}
        (when not empty), fitted onto C{previous}.
    """
    from xmppnetgraph.graphview import serviceParent
    from xmppnetgraph.layout.compute import fitTransform, layout, normalise
    from xmppnetgraph.layout.place import place

    ids, edges = graph
    if method == "igraph-fr":
        return layout(ids, edges, previous, serviceParent)
    if method == "igraph-fr-fresh":
        result = layout(ids, edges, {}, seed=1 if previous else 0)
    else:
        start = None
        if previous:
            placed = place(ids, ((ids[a], ids[b]) for a, b in edges), previous)
            start = [placed[node] for node in ids]
        if method == "igraph-drl":
            import igraph

            g = igraph.Graph(n=len(ids), edges=edges)
            coords = g.layout_drl(seed=start).coords
        else:
            import networkx

            g = networkx.Graph()
            g.add_nodes_from(range(len(ids)))
            g.add_edges_from(edges)
            import numpy

            pos = None if start is None else {i: numpy.array(p) for i, p in enumerate(start)}
            if method == "networkx-spring":
                found = networkx.spring_layout(g, pos=pos, seed=1, iterations=50)
            else:
                found = networkx.forceatlas2_layout(g, pos=pos, seed=1, max_iter=100)
            coords = [found[i] for i in range(len(ids))]
        result = [(float(x), float(y)) for x, y in coords]
        if not previous:
            return normalise(result)
    if previous:
        index = {node: i for i, node in enumerate(ids)}
        known = [node for node in ids if node in previous]
        fit = fitTransform([result[index[n]] for n in known], [previous[n] for n in known])
        return [fit(p) for p in result]
    return normalise(result)


def child(method: str, source: str) -> None:
    """
    Measure C{method} on the graph C{source} (C{snapshot:PATH} or a node
    count) and print one JSON line.
    """
    graph = snapshotGraph(Path(source[9:])) if source.startswith("snapshot:") else None
    if graph is None:
        graph = scaleFreeGraph(int(source))
    ids, edges = graph
    start = time.perf_counter()
    first = dict(zip(ids, _layoutWith(method, graph, {}), strict=True))
    firstTime = time.perf_counter() - start
    grown = grow(graph)
    start = time.perf_counter()
    second = dict(zip(grown[0], _layoutWith(method, grown, first), strict=True))
    relayoutTime = time.perf_counter() - start
    xs = [p[0] for p in first.values()]
    ys = [p[1] for p in first.values()]
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    moved = sum(math.dist(first[n], second[n]) for n in ids) / len(ids) / extent
    print(
        json.dumps(
            {
                "event": "result",
                "nodes": len(ids),
                "edges": len(edges),
                "first": firstTime,
                "relayout": relayoutTime,
                "stability": moved,
                "rssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        ),
        flush=True,
    )


async def measureMethod(
    reactor: Any, work: Path, method: str, source: str, timeout: float
) -> dict[str, Any] | None:
    """
    @return: the child's figures, or L{None} if it took longer than
        C{timeout} seconds.
    """
    name = f"{method}-{Path(source).name}"
    process = Child.spawn(
        reactor, name, [sys.executable, __file__, "--child", method, source], work
    )
    try:
        return await waitEvent(reactor, process, "result", timeout)
    except RuntimeError as e:
        if process.alive():
            await process.stop(reactor)
            print(f"  {method} on {source}: stopped after {timeout:g} s", flush=True)
            return None
        raise RuntimeError(f"{method} on {source} failed: {e}") from None


class _Lag:
    """
    How late each tick of a 10 ms LoopingCall came.
    """

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._last = time.perf_counter()

    def tick(self) -> None:
        now = time.perf_counter()
        self.lags.append(max(0.0, now - self._last - 0.01))
        self._last = now


async def reactorLag(reactor: Any, count: int) -> list[list[object]]:
    """
    @return: table rows: the reactor's worst and 99th-percentile lag
        (a 10 ms LoopingCall) while a C{count}-node graph is laid out, a
        first layout and then a seeded relayout, in the node's worker
        process (L{runWorker}) and, as the baseline, in a thread.
    """
    from twisted.internet.task import LoopingCall
    from twisted.internet.threads import deferToThread

    from xmppnetgraph.layout.compute import layout
    from xmppnetgraph.layout.service import runWorker

    ids, edges = scaleFreeGraph(count)
    rows: list[list[object]] = []
    for where in ("worker process", "thread (baseline)"):
        lag = _Lag()
        loop = LoopingCall(lag.tick)
        loop.start(0.01)
        start = time.perf_counter()
        if where == "worker process":
            first = await runWorker(reactor, reactor, ids, edges, {})
            previous = dict(zip(ids, first, strict=True))
            await runWorker(reactor, reactor, ids, edges, previous)
        else:
            first = await deferToThread(layout, ids, edges, {})
            previous = dict(zip(ids, first, strict=True))
            await deferToThread(layout, ids, edges, previous)
        took = time.perf_counter() - start
        loop.stop()
        lags = sorted(lag.lags)
        rows.append(
            [
                where,
                f"{count:,}",
                f"{took:.1f} s",
                f"{max(lags) * 1000:.0f} ms",
                f"{lags[int(len(lags) * 0.99)] * 1000:.0f} ms",
            ]
        )
    return rows


async def main(reactor: Any, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--data", type=Path, default=DATA, help="the snapshot (data.json)")
    parser.add_argument("--no-snapshot", action="store_true", help="generated graphs only")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--networkx-max", type=int, default=6000, help="most nodes for networkx")
    parser.add_argument("--drl-max", type=int, default=10_000, help="most nodes for DrL")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per method and graph")
    parser.add_argument("--lag-nodes", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true")
    args = parseArguments(
        parser,
        argv,
        ["--sizes", "400", "--no-snapshot", "--networkx-max", "400", "--lag-nodes", "1000"],
    )
    work = workDirectory(reactor, "layout-bench-", args.keep)
    sources: list[tuple[str, int]] = []
    if not args.no_snapshot:
        if args.data.exists():
            sources.append((f"snapshot:{args.data}", 5783))
        else:
            print(f"no snapshot at {args.data}: generated graphs only")
    sources += [(str(n), n) for n in args.sizes]
    rows: list[list[object]] = []
    figures: dict[tuple[str, str], dict[str, Any]] = {}
    for source, size in sources:
        label = "snapshot" if source.startswith("snapshot:") else f"BA {size:,}"
        for method in args.methods:
            if method.startswith("networkx") and size > args.networkx_max:
                rows.append([method, label, "not run (--networkx-max)", "", "", ""])
                continue
            if method == "igraph-drl" and size > args.drl_max:
                rows.append([method, label, "not run (--drl-max)", "", "", ""])
                continue
            result = await measureMethod(reactor, work, method, source, args.timeout)
            if result is None:
                rows.append([method, label, f"> {args.timeout:g} s", "", "", ""])
                continue
            figures[(method, label)] = result
            rows.append(
                [
                    method,
                    f"{label} ({result['nodes']:,} n, {result['edges']:,} e)",
                    f"{result['first']:.2f} s",
                    f"{result['relayout']:.2f} s",
                    f"{result['stability']:.4f}",
                    f"{result['rssMiB']:.0f} MiB",
                ]
            )
    printTable(
        "Layouts (first; relayout with 1% new nodes, seeded; stability = mean displacement of "
        "the unchanged nodes / extent, lower is steadier)",
        ["method", "graph", "first", "relayout", "stability", "peak RSS"],
        rows,
    )
    ratios: list[list[object]] = []
    for (method, label), result in figures.items():
        ours = figures.get(("igraph-fr", label))
        if method == "igraph-fr" or ours is None:
            continue
        ratios.append(
            [
                f"{method} / igraph-fr",
                label,
                f"{result['first'] / ours['first']:.1f}x",
                f"{result['relayout'] / ours['relayout']:.1f}x",
                f"{result['stability'] / max(ours['stability'], 1e-9):.1f}x",
                f"{result['rssMiB'] / ours['rssMiB']:.1f}x",
            ]
        )
    printTable("Ratios", ["methods", "graph", "first", "relayout", "stability", "RSS"], ratios)
    printTable(
        "Reactor lag while laying out (first + seeded relayout; a 10 ms LoopingCall)",
        ["where", "nodes", "wall time", "max lag", "p99 lag"],
        await reactorLag(reactor, args.lag_nodes),
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        child(sys.argv[2], sys.argv[3])
    else:
        runMain(main)
