# -*- test-case-name: tests.test_linktable -*-
"""
Tests for L{xmppnetgraph.linktable}.
"""

from __future__ import annotations

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.test_feed import aLink
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.interfaces import ILinkTable
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.model import ChangeEvent, Link, LinkDown, LinkUp


class LinkTableTests(SynchronousTestCase):
    """
    The table keeps the live links in order and announces each change on
    the feed.
    """

    def setUp(self) -> None:
        self.feed = ChangeFeed()
        self.events: list[ChangeEvent] = []
        self.feed.observe(ChangeEvent, self.events.append)
        self.table = LinkTable(self.feed)

    def test_interface(self) -> None:
        """
        L{LinkTable} provides L{ILinkTable}.
        """
        self.assertTrue(verifyObject(ILinkTable, self.table))

    def test_addOldestFirst(self) -> None:
        """
        Added links are listed oldest first, each announced with L{LinkUp}.
        """
        first, second = aLink("a.example"), aLink("b.example")
        self.table.add(first)
        self.table.add(second)
        self.assertEqual(list(self.table.links()), [first, second])
        self.assertEqual(self.events, [LinkUp(first), LinkUp(second)])

    def test_sameDomainTwice(self) -> None:
        """
        Two streams with one domain are two links.
        """
        first, second = aLink(), aLink()
        self.table.add(first)
        self.table.add(second)
        self.assertEqual(list(self.table.links()), [first, second])

    def test_remove(self) -> None:
        """
        A removed link is gone and announced with L{LinkDown}.
        """
        link = aLink()
        self.table.add(link)
        self.table.remove(link)
        self.assertEqual(list(self.table.links()), [])
        self.assertEqual(self.events, [LinkUp(link), LinkDown(link)])

    def test_removeUnlogged(self) -> None:
        """
        A link removed with C{logged=False} is announced all the same, but
        not logged.
        """
        logged: list[dict[str, object]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        link = aLink()
        self.table.add(link)
        self.table.remove(link, logged=False)
        self.assertEqual(self.events, [LinkUp(link), LinkDown(link)])
        formats = [str(event.get("log_format")) for event in logged]
        self.assertEqual([f for f in formats if "link down" in f], [])
        self.assertEqual(len([f for f in formats if "link up" in f]), 1)

    def test_removeUnknown(self) -> None:
        """
        Removing a link that is not in the table (or twice) changes and
        announces nothing.
        """
        link = aLink()
        self.table.remove(link)
        self.table.add(link)
        self.table.remove(link)
        self.table.remove(link)
        self.assertEqual(self.events, [LinkUp(link), LinkDown(link)])

    def test_snapshot(self) -> None:
        """
        L{LinkTable.links} is a snapshot: changing the table while iterating
        is safe.
        """
        links = [aLink(f"p{i}.example") for i in range(3)]
        for link in links:
            self.table.add(link)
        for link in self.table.links():
            self.table.remove(link)
        self.assertEqual(list(self.table.links()), [])

    def test_failingObserverKeepsTable(self) -> None:
        """
        An observer that raises does not stop the link from being recorded.
        """

        def broken(event: LinkUp) -> None:
            raise RuntimeError("oops")

        self.feed.observe(LinkUp, broken)
        link = aLink()
        self.table.add(link)
        self.assertEqual(list(self.table.links()), [link])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_linkCounts(self) -> None:
        """
        L{Link.touch} counts stanzas each way and moves the last activity.
        """
        link = aLink()
        link.touch(5.0, incoming=True)
        link.touch(7.0, incoming=False)
        link.touch(9.0, incoming=True)
        self.assertEqual((link.stanzasIn, link.stanzasOut, link.lastActivity), (2, 1, 9.0))

    def test_stanzaTotals(self) -> None:
        """
        L{LinkTable.stanzaTotals} adds up the stanzas of the live links and
        of those that ended, by direction: removing a link keeps its counts.
        """
        self.assertEqual(self.table.stanzaTotals(), {"incoming": (0, 0), "outgoing": (0, 0)})
        incoming = aLink("a.example")
        outgoing = Link("b.example", "example.org", "outgoing", "dialback", None, False, 0.0, 0.0)
        for link in (incoming, outgoing):
            self.table.add(link)
        incoming.touch(1.0, incoming=True)
        incoming.touch(1.0, incoming=True)
        outgoing.touch(1.0, incoming=False)
        expected = {"incoming": (2, 0), "outgoing": (0, 1)}
        self.assertEqual(self.table.stanzaTotals(), expected)
        self.table.remove(incoming)
        self.table.remove(incoming)
        self.assertEqual(self.table.stanzaTotals(), expected)
        outgoing.touch(2.0, incoming=True)
        self.assertEqual(self.table.stanzaTotals(), {"incoming": (2, 0), "outgoing": (1, 1)})

    def test_uniqueIds(self) -> None:
        """
        Every link has its own id.
        """
        self.assertNotEqual(aLink().id, aLink().id)
