# -*- test-case-name: tests.test_layout_place -*-
"""
Tests for L{xmppnetgraph.layout.place}: nodes without a stored position
are placed next to their neighbours, their parent, or on a ring.
"""

from __future__ import annotations

import math

from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.graphview import serviceParent
from xmppnetgraph.layout.place import EXTENT, JITTER, halfExtent, offset, place

KNOWN = {"a.example": (100.0, 100.0), "b.example": (-300.0, 100.0), "c.example": (900.0, -900.0)}


class PlaceTests(SynchronousTestCase):
    """
    L{place}.
    """

    def test_known(self) -> None:
        """
        Nodes with a stored position keep it; stored positions of nodes not
        asked for are not returned.
        """
        self.assertEqual(
            place(["a.example", "b.example"], [], KNOWN),
            {"a.example": (100.0, 100.0), "b.example": (-300.0, 100.0)},
        )

    def test_centroid(self) -> None:
        """
        A new node with placed neighbours sits near their centroid: within
        the jitter of the picture's half-extent.
        """
        positions = place(
            [*KNOWN, "new.example"],
            [("new.example", "a.example"), ("b.example", "new.example")],
            KNOWN,
        )
        x, y = positions["new.example"]
        distance = math.dist((x, y), (-100.0, 100.0))
        self.assertLessEqual(distance, JITTER * 900.0 + 1e-9)
        self.assertGreaterEqual(distance, JITTER * 900.0 / 2 - 1e-9)

    def test_deterministic(self) -> None:
        """
        The same graph and positions give the same placement; another id
        is placed in another direction.
        """
        edges = [("new.example", "a.example"), ("other.example", "a.example")]
        ids = [*KNOWN, "new.example", "other.example"]
        first = place(ids, edges, KNOWN)
        self.assertEqual(first, place(list(reversed(ids)), edges, KNOWN))
        self.assertNotEqual(first["new.example"], first["other.example"])

    def test_chain(self) -> None:
        """
        A chain of new nodes grows outwards from the placed node it hangs
        on, each next to the one before.
        """
        edges = [("a.example", "n1"), ("n1", "n2"), ("n2", "n3")]
        positions = place([*KNOWN, "n1", "n2", "n3"], edges, KNOWN)
        step = JITTER * halfExtent(KNOWN.values())
        self.assertLessEqual(math.dist(positions["n1"], KNOWN["a.example"]), step + 1e-9)
        self.assertLessEqual(math.dist(positions["n2"], positions["n1"]), step + 1e-9)
        self.assertLessEqual(math.dist(positions["n3"], positions["n2"]), step + 1e-9)

    def test_parent(self) -> None:
        """
        An unfolded service subdomain without links of its own sits next to
        its parent.
        """
        positions = place([*KNOWN, "conference.c.example"], [], KNOWN, serviceParent)
        self.assertLessEqual(
            math.dist(positions["conference.c.example"], KNOWN["c.example"]),
            JITTER * 900.0 + 1e-9,
        )

    def test_newComponent(self) -> None:
        """
        A new component is started just outside the picture and grows from
        there.
        """
        positions = place([*KNOWN, "x.example", "y.example"], [("x.example", "y.example")], KNOWN)
        self.assertGreater(math.hypot(*positions["x.example"]), 900.0)
        self.assertLessEqual(
            math.dist(positions["x.example"], positions["y.example"]), 2 * JITTER * 1000
        )

    def test_nothingKnown(self) -> None:
        """
        Without stored positions every node still gets one, near the
        centre, each of a component near the others.
        """
        ids = [f"n{i}" for i in range(50)]
        edges = [(f"n{i}", f"n{i + 1}") for i in range(49)]
        positions = place(ids, edges, {})
        self.assertEqual(set(positions), set(ids))
        self.assertLessEqual(halfExtent(positions.values()), 50 * JITTER * EXTENT)

    def test_offset(self) -> None:
        """
        L{offset} has a length between half the radius and the radius.
        """
        for key in ("a", "b", "c", "d"):
            length = math.hypot(*offset(key, 10.0))
            self.assertTrue(5.0 - 1e-9 <= length <= 10.0 + 1e-9, length)

    def test_halfExtent(self) -> None:
        """
        L{halfExtent} is the largest absolute coordinate, or L{EXTENT} for
        nothing.
        """
        self.assertEqual(halfExtent(KNOWN.values()), 900.0)
        self.assertEqual(halfExtent([]), EXTENT)
