# -*- test-case-name: tests.test_feed -*-
"""
Tests for L{xmppnetgraph.feed}: the one change feed of a node.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.interfaces import IChangeFeed
from xmppnetgraph.model import ChangeEvent, ConsentChanged, Link, LinkDown, LinkUp


def aLink(domain: str = "peer.example") -> Link:
    """
    @return: an incoming dialback link from C{domain}.
    """
    return Link(domain, "example.org", "incoming", "dialback", "TLSv1.3", False, 0.0, 0.0)


class ChangeFeedTests(SynchronousTestCase):
    """
    Observers hear the events of the type they observe, in order, and
    can be removed; a failing observer breaks nothing.
    """

    def setUp(self) -> None:
        self.feed = ChangeFeed()

    def test_interface(self) -> None:
        """
        L{ChangeFeed} provides L{IChangeFeed}.
        """
        self.assertTrue(verifyObject(IChangeFeed, self.feed))

    def test_byType(self) -> None:
        """
        An observer hears only instances of the type it observes; observing
        L{ChangeEvent} hears everything.
        """
        ups: list[LinkUp] = []
        everything: list[ChangeEvent] = []
        self.feed.observe(LinkUp, ups.append)
        self.feed.observe(ChangeEvent, everything.append)
        up, down = LinkUp(aLink()), LinkDown(aLink())
        consent = ConsentChanged("peer.example", True)
        for event in (up, down, consent):
            self.feed.emit(event)
        self.assertEqual(ups, [up])
        self.assertEqual(everything, [up, down, consent])

    def test_order(self) -> None:
        """
        Observers are called in the order they were added.
        """
        calls: list[str] = []
        self.feed.observe(LinkUp, lambda e: calls.append("first"))
        self.feed.observe(LinkUp, lambda e: calls.append("second"))
        self.feed.emit(LinkUp(aLink()))
        self.assertEqual(calls, ["first", "second"])

    def test_remove(self) -> None:
        """
        The function L{ChangeFeed.observe} returns removes the observer;
        calling it twice is harmless and removes nobody else.
        """
        seen: list[ChangeEvent] = []
        other: list[ChangeEvent] = []
        remove = self.feed.observe(LinkUp, seen.append)
        self.feed.observe(LinkUp, other.append)
        remove()
        remove()
        self.feed.emit(LinkUp(aLink()))
        self.assertEqual(seen, [])
        self.assertEqual(len(other), 1)

    def test_removedDuringEmit(self) -> None:
        """
        An observer removed by an earlier observer of the same event is not
        called for it.
        """
        seen: list[ChangeEvent] = []
        removeSecond = None

        def first(event: LinkUp) -> None:
            assert removeSecond is not None
            removeSecond()

        self.feed.observe(LinkUp, first)
        removeSecond = self.feed.observe(LinkUp, seen.append)
        self.feed.emit(LinkUp(aLink()))
        self.assertEqual(seen, [])

    def test_addedDuringEmit(self) -> None:
        """
        An observer added while an event is being emitted hears the next
        events, not that one.
        """
        late: list[ChangeEvent] = []

        def first(event: LinkUp) -> None:
            self.feed.observe(LinkUp, late.append)

        remove = self.feed.observe(LinkUp, first)
        self.feed.emit(LinkUp(aLink()))
        remove()
        second = LinkUp(aLink("other.example"))
        self.feed.emit(second)
        self.assertEqual(late, [second])

    def test_failingObserver(self) -> None:
        """
        An observer that raises is logged; the others still hear the
        event, and C{emit} does not raise.
        """
        seen: list[ChangeEvent] = []

        def broken(event: LinkUp) -> None:
            raise RuntimeError("oops")

        self.feed.observe(LinkUp, broken)
        self.feed.observe(LinkUp, seen.append)
        event = LinkUp(aLink())
        self.feed.emit(event)
        self.assertEqual(seen, [event])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_nestedEmit(self) -> None:
        """
        An observer may emit in turn; the nested event reaches its
        observers at once.
        """
        seen: list[ChangeEvent] = []
        self.feed.observe(LinkUp, lambda e: self.feed.emit(ConsentChanged("x.example", True)))
        self.feed.observe(ConsentChanged, seen.append)
        self.feed.emit(LinkUp(aLink()))
        self.assertEqual(seen, [ConsentChanged("x.example", True)])
