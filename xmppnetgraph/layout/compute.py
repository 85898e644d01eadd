# -*- test-case-name: tests.test_layout_compute -*-
"""
The full layout of a graph with python-igraph's Fruchterman-Reingold
(grid variant), the fastest candidate by measurement (C{docs/layout.md},
C{bench/layout.py}).

Positions are in layout units: a first layout is scaled to
[-L{EXTENT<xmppnetgraph.layout.place.EXTENT>}, L{EXTENT}] on its longer
axis. A relayout is seeded from the previous positions (new nodes placed
by L{place<xmppnetgraph.layout.place.place>}), runs few iterations at a low
temperature, and is then fitted back onto the previous positions (the
similarity transform -- shift, rotation, scale -- that moves the unchanged
nodes least), so that the picture moves as little as possible.

This holds the GIL for seconds at 50,000 nodes: the node runs it in a
worker process (L{xmppnetgraph.layout.worker}), never in the reactor.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

import igraph

from xmppnetgraph.layout.place import EXTENT, Point, place

#: Iterations of a first layout (igraph's default).
FIRST_ITERATIONS = 500

#: Iterations of a seeded relayout.
SEEDED_ITERATIONS = 50

#: A relayout is seeded when at least this share of its nodes has a
#: previous position; otherwise it starts afresh.
SEEDED_SHARE = 0.5


def _extentOf(points: Sequence[Point]) -> float:
    """
    @return: the longer side of the bounding box of C{points} (1 if that
        is 0).
    """
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    side = max(max(xs) - min(xs), max(ys) - min(ys))
    return side if side > 0 else 1.0


def normalise(points: Sequence[Point]) -> list[Point]:
    """
    @return: C{points} moved and scaled so that their bounding box is
        centred on 0 and its longer side spans [-EXTENT, EXTENT].
    """
    if not points:
        return []
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    cx = (max(xs) + min(xs)) / 2
    cy = (max(ys) + min(ys)) / 2
    scale = 2 * EXTENT / _extentOf(points) if len(points) > 1 else 0.0
    return [((x - cx) * scale, (y - cy) * scale) for x, y in points]


def fitTransform(source: Sequence[Point], target: Sequence[Point]) -> Callable[[Point], Point]:
    """
    The similarity transform (shift, rotation, uniform scale) that takes
    C{source} closest to C{target} in the least-squares sense.

    @param source: points.
    @param target: where each of C{source} should be (as many).
    @return: the transform.
    """
    zs = [complex(*p) for p in source]
    ws = [complex(*p) for p in target]
    zMean = sum(zs) / len(zs)
    wMean = sum(ws) / len(ws)
    spread = sum(abs(z - zMean) ** 2 for z in zs)
    a = (
        sum((z - zMean).conjugate() * (w - wMean) for z, w in zip(zs, ws, strict=True)) / spread
        if spread > 0
        else complex(1)
    )
    b = wMean - a * zMean

    def transform(point: Point) -> Point:
        moved = a * complex(*point) + b
        return (moved.real, moved.imag)

    return transform


def layout(
    ids: Sequence[str],
    edges: Sequence[tuple[int, int]],
    previous: Mapping[str, Point],
    parentOf: Callable[[str], str | None] = lambda node: None,
    seed: int = 0,
) -> list[Point]:
    """
    Lay out a graph.

    @param ids: the nodes' ids.
    @param edges: the edges, as pairs of indexes into C{ids}.
    @param previous: the previous positions (of some of C{ids}, maybe of
        others too).
    @param parentOf: see L{place<xmppnetgraph.layout.place.place>}.
    @param seed: the random seed of a first layout.
    @return: a position for each of C{ids}, in order.
    @raise ValueError: if an edge names an index outside C{ids}.
    """
    if not ids:
        return []
    if any(not (0 <= a < len(ids) and 0 <= b < len(ids)) for a, b in edges):
        raise ValueError("an edge names a node that is not in the graph")
    graph = igraph.Graph(n=len(ids), edges=list(edges))
    known = [node for node in ids if node in previous]
    if len(known) < SEEDED_SHARE * len(ids) or len(known) < 2:
        random.seed(seed)
        coords = graph.layout_fruchterman_reingold(grid=True, niter=FIRST_ITERATIONS).coords
        return normalise([(float(x), float(y)) for x, y in coords])
    start = place(ids, ((ids[a], ids[b]) for a, b in edges), previous, parentOf)
    seeded = [start[node] for node in ids]
    # FR's own length scale is about one unit per node spacing: work at a
    # scale where the picture spans 2 sqrt(n) units, then map back.
    scale = 2 * math.sqrt(len(ids)) / _extentOf(seeded)
    coords = graph.layout_fruchterman_reingold(
        seed=[[x * scale, y * scale] for x, y in seeded],
        grid=True,
        niter=SEEDED_ITERATIONS,
        start_temp=math.sqrt(len(ids)) / 200,
    ).coords
    result = [(float(x), float(y)) for x, y in coords]
    index = {node: i for i, node in enumerate(ids)}
    fit = fitTransform([result[index[node]] for node in known], [previous[node] for node in known])
    return [fit(point) for point in result]
