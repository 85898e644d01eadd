# -*- test-case-name: tests.test_graphview -*-
"""
Tests for L{xmppnetgraph.graphview}: the view rules over a snapshot,
without a database.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.graphview import (
    COMBINED_ANONYMOUS,
    GraphView,
    ViewEdge,
    anonymousId,
    viewGraph,
)
from xmppnetgraph.model import GraphDomain, GraphSnapshot, ReportedLink

T0 = 1_700_000_000.0


def domain(
    name: str,
    *,
    publishes: bool | None = True,
    consents: bool | None = True,
    stale: bool = False,
    firstSeen: float = T0,
    lastSeen: float = T0 + 10,
) -> GraphDomain:
    """
    @return: a snapshot domain.
    """
    return GraphDomain(name, firstSeen, lastSeen, publishes, consents, stale)


def link(reporter: str, remote: str | None, *directions: str, slot: int = 0) -> ReportedLink:
    """
    @return: a current reported link.
    """
    return ReportedLink(reporter, remote, slot, tuple(sorted(directions)), T0)


def snapshot(domains: list[GraphDomain], links: list[ReportedLink]) -> GraphSnapshot:
    """
    @return: a snapshot of C{domains} and C{links} at C{T0 + 100}.
    """
    return GraphSnapshot(T0 + 100, tuple(domains), tuple(links), T0 + 5, 7)


def edges(view: GraphView) -> set[tuple[str, str, tuple[str, ...], bool]]:
    """
    @return: the view's edges as tuples.
    """
    return {(e.source, e.target, e.directions, e.confirmed) for e in view.edges}


def ids(view: GraphView) -> list[str]:
    """
    @return: the view's node ids.
    """
    return [node.id for node in view.nodes]


class ViewGraphTests(SynchronousTestCase):
    """
    Tests for L{viewGraph}.
    """

    def test_confirmed(self) -> None:
        """
        Two domains that report each other are one confirmed edge, with the
        directions of both as the first sees them; a link reported by one
        end only is unconfirmed.
        """
        view = viewGraph(
            snapshot(
                [domain("a.example"), domain("b.example"), domain("c.example")],
                [
                    link("a.example", "b.example", "outgoing"),
                    link("b.example", "a.example", "outgoing"),
                    link("a.example", "c.example", "incoming"),
                ],
            )
        )
        self.assertEqual(
            edges(view),
            {
                ("a.example", "b.example", ("incoming", "outgoing"), True),
                ("a.example", "c.example", ("incoming",), False),
            },
        )
        self.assertEqual(ids(view), ["a.example", "b.example", "c.example"])
        self.assertEqual((view.at, view.lastChange, view.lastEventId), (T0 + 100, T0 + 5, 7))

    def test_selfLinks(self) -> None:
        """
        A domain that reports itself gets no edge.
        """
        view = viewGraph(snapshot([domain("a.example")], [link("a.example", "a.example", "bidi")]))
        self.assertEqual(view.edges, ())
        self.assertEqual(ids(view), ["a.example"])

    def test_fold(self) -> None:
        """
        Service subdomains of a known parent are folded into it: their
        links become the parent's, links between them and the parent
        vanish, and the parent lists them; without the parent, or with
        C{fold=False}, they stay apart.
        """
        domains = [
            domain("example.org", publishes=False, firstSeen=T0 + 1),
            domain("conference.example.org", firstSeen=T0),
            domain("upload.example.org"),
            domain("muc.other.example"),
            domain("peer.example"),
        ]
        links = [
            link("conference.example.org", "peer.example", "outgoing"),
            link("peer.example", "example.org", "incoming"),
            link("example.org", "upload.example.org", "bidi"),
            link("peer.example", "muc.other.example", "bidi"),
        ]
        view = viewGraph(snapshot(domains, links))
        self.assertEqual(ids(view), ["example.org", "muc.other.example", "peer.example"])
        self.assertEqual(
            edges(view),
            {
                ("example.org", "peer.example", ("outgoing",), True),
                ("peer.example", "muc.other.example", ("bidi",), False),
            },
        )
        [parent] = [node for node in view.nodes if node.id == "example.org"]
        self.assertEqual(parent.members, ("conference.example.org", "upload.example.org"))
        self.assertEqual((parent.publishes, parent.firstSeen), (True, T0))
        apart = viewGraph(snapshot(domains, links), fold=False)
        self.assertEqual(len(apart.nodes), 5)
        self.assertIn(ViewEdge("example.org", "upload.example.org", ("bidi",), False), apart.edges)

    def test_anonymous(self) -> None:
        """
        Each anonymous peer of each reporter is its own node, with a stable
        opaque id and no label; C{combineAnonymous} makes them one node,
        C{skipAnonymous} drops them.
        """
        domains = [domain("a.example"), domain("b.example")]
        links = [
            link("a.example", None, "incoming", slot=1),
            link("a.example", None, slot=2),
            link("b.example", None, "bidi", slot=1),
        ]
        view = viewGraph(snapshot(domains, links))
        anon = [node for node in view.nodes if node.label is None]
        self.assertEqual(len(anon), 3)
        self.assertEqual(len({node.id for node in anon}), 3)
        first = anonymousId(b"", "a.example", "#1")
        self.assertIn(("a.example", first, ("incoming",), False), edges(view))
        self.assertNotIn("a.example", first)
        self.assertEqual(viewGraph(snapshot(domains, links)), view)
        combined = viewGraph(snapshot(domains, links), combineAnonymous=True)
        self.assertEqual(ids(combined), ["a.example", COMBINED_ANONYMOUS, "b.example"])
        self.assertEqual(
            edges(combined),
            {
                ("a.example", COMBINED_ANONYMOUS, ("incoming",), False),
                ("b.example", COMBINED_ANONYMOUS, ("bidi",), False),
            },
        )
        [node] = [node for node in combined.nodes if node.id == COMBINED_ANONYMOUS]
        self.assertEqual(node.anonymous, 3)
        skipped = viewGraph(snapshot(domains, links), skipAnonymous=True)
        self.assertEqual((ids(skipped), skipped.edges), (["a.example", "b.example"], ()))

    def test_namePolicy(self) -> None:
        """
        By default a domain that does not consent by our own check is not
        shown by name: a link to it shows as an anonymous peer of the
        reporter (an id that the name cannot be read from), and its own
        report does not count; C{namePolicy="reported"} names it.
        """
        domains = [domain("a.example"), domain("shy.example", consents=None)]
        links = [link("a.example", "shy.example", "bidi"), link("shy.example", "a.example")]
        view = viewGraph(snapshot(domains, links), anonymousKey=b"secret")
        hidden = anonymousId(b"secret", "a.example", "shy.example")
        self.assertEqual(ids(view), sorted(["a.example", hidden]))
        self.assertEqual(edges(view), {("a.example", hidden, ("bidi",), False)})
        self.assertNotEqual(hidden, anonymousId(b"other", "a.example", "shy.example"))
        named = viewGraph(snapshot(domains, links), namePolicy="reported")
        self.assertEqual(edges(named), {("a.example", "shy.example", ("bidi",), True)})

    def test_stale(self) -> None:
        """
        Stale domains leave the view with their links (also as hidden
        anonymous peers); C{includeStale} keeps them, marked.
        """
        domains = [
            domain("a.example"),
            domain("old.example", stale=True),
            domain("oldshy.example", stale=True, consents=False),
        ]
        links = [
            link("a.example", "old.example"),
            link("old.example", "a.example"),
            link("a.example", "oldshy.example"),
        ]
        view = viewGraph(snapshot(domains, links))
        self.assertEqual((ids(view), view.edges), (["a.example"], ()))
        kept = viewGraph(snapshot(domains, links), includeStale=True)
        self.assertIn(("a.example", "old.example", (), True), edges(kept))
        [old] = [node for node in kept.nodes if node.id == "old.example"]
        self.assertTrue(old.stale)

    def test_focus(self) -> None:
        """
        C{focus} keeps a domain, its neighbours and the edges among them;
        an unknown domain gives an empty view.
        """
        domains = [domain(n) for n in ("a.example", "b.example", "c.example", "d.example")]
        links = [
            link("a.example", "b.example"),
            link("b.example", "c.example"),
            link("c.example", "d.example"),
            link("a.example", "c.example"),
        ]
        view = viewGraph(snapshot(domains, links), focus="B.example")
        self.assertEqual(ids(view), ["a.example", "b.example", "c.example"])
        self.assertEqual(len(view.edges), 3)
        empty = viewGraph(snapshot(domains, links), focus="nowhere.example")
        self.assertEqual((empty.nodes, empty.edges), ((), ()))
