# -*- test-case-name: tests.test_layout_compute -*-
"""
Tests for L{xmppnetgraph.layout.compute}: igraph's layout, normalised,
and seeded relayouts that keep the picture where it was.
"""

from __future__ import annotations

import cmath
import math
import random

from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.layout.compute import fitTransform, layout, normalise
from xmppnetgraph.layout.place import EXTENT


def scaleFree(count: int, seed: int = 1) -> list[tuple[int, int]]:
    """
    @return: the edges of a preferential-attachment graph, two per new
        node.
    """
    rng = random.Random(seed)
    edges = [(0, 1)]
    ends = [0, 1]
    for node in range(2, count):
        for target in {rng.choice(ends), rng.choice(ends)}:
            edges.append((node, target))
            ends += [node, target]
    return edges


def meanDisplacement(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> float:
    """
    @return: the mean distance the nodes of C{before} moved, as a share of
        C{before}'s extent.
    """
    xs = [p[0] for p in before.values()]
    ys = [p[1] for p in before.values()]
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    return sum(math.dist(before[n], after[n]) for n in before) / len(before) / extent


class LayoutTests(SynchronousTestCase):
    """
    L{layout}.
    """

    def test_first(self) -> None:
        """
        A first layout spans [-EXTENT, EXTENT] on its longer axis, and
        linked nodes are nearer each other than unlinked ones on average.
        """
        edges = scaleFree(300)
        ids = [f"n{i}" for i in range(300)]
        positions = layout(ids, edges, {})
        self.assertEqual(len(positions), 300)
        xs = [p[0] for p in positions]
        ys = [p[1] for p in positions]
        self.assertAlmostEqual(max(max(xs) - min(xs), max(ys) - min(ys)), 2 * EXTENT)
        self.assertLessEqual(max(max(map(abs, xs)), max(map(abs, ys))), EXTENT + 1e-6)
        linked = sum(math.dist(positions[a], positions[b]) for a, b in edges) / len(edges)
        rng = random.Random(2)
        pairs = [(rng.randrange(300), rng.randrange(300)) for _ in range(2000)]
        unlinked = sum(math.dist(positions[a], positions[b]) for a, b in pairs) / len(pairs)
        self.assertLess(linked, unlinked / 2)

    def test_seededIsStable(self) -> None:
        """
        Relaid out with 1% new nodes, seeded from the first layout, the
        old nodes move less than 5% of the extent on average; laid out
        afresh with another seed they move far more.
        """
        edges = scaleFree(500)
        ids = [f"n{i}" for i in range(500)]
        first = dict(zip(ids, layout(ids, edges, {}), strict=True))
        grown = [*ids, *(f"new{i}" for i in range(5))]
        more = edges + [(500 + i, (7 * i) % 500) for i in range(5)]
        seeded = dict(zip(grown, layout(grown, more, first), strict=True))
        fresh = dict(zip(grown, layout(grown, more, {}, seed=7), strict=True))
        self.assertLess(meanDisplacement(first, seeded), 0.05)
        self.assertGreater(meanDisplacement(first, fresh), 4 * meanDisplacement(first, seeded))

    def test_empty(self) -> None:
        """
        No nodes, no positions; one node sits at the centre.
        """
        self.assertEqual(layout([], [], {}), [])
        self.assertEqual(layout(["a"], [], {}), [(0.0, 0.0)])


class TransformTests(SynchronousTestCase):
    """
    L{fitTransform} and L{normalise}.
    """

    def test_fitTransform(self) -> None:
        """
        The fit recovers a rotation, scale and shift exactly.
        """
        rng = random.Random(3)
        source = [(rng.uniform(-5, 5), rng.uniform(-5, 5)) for _ in range(20)]
        a = 3 * cmath.exp(0.7j)
        target = [((a * complex(*p)) + (10 - 4j)) for p in source]
        fit = fitTransform(source, [(w.real, w.imag) for w in target])
        for point, wanted in zip(source, target, strict=True):
            got = fit(point)
            self.assertAlmostEqual(got[0], wanted.real)
            self.assertAlmostEqual(got[1], wanted.imag)

    def test_fitOnePoint(self) -> None:
        """
        With all source points in one place, the fit only shifts.
        """
        fit = fitTransform([(1.0, 1.0), (1.0, 1.0)], [(3.0, 4.0), (5.0, 4.0)])
        self.assertEqual(fit((1.0, 1.0)), (4.0, 4.0))

    def test_normalise(self) -> None:
        """
        L{normalise} centres the bounding box and scales its longer side to
        2 EXTENT.
        """
        self.assertEqual(
            normalise([(0.0, 0.0), (4.0, 2.0)]),
            [(-EXTENT, -EXTENT / 2), (EXTENT, EXTENT / 2)],
        )
        self.assertEqual(normalise([]), [])
