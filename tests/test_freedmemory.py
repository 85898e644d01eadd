# -*- test-case-name: tests.test_freedmemory -*-
"""
Tests for L{xmppnetgraph.freedmemory}.
"""

from __future__ import annotations

import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.freedmemory import INTERVAL, QUIET, FreedMemoryReleaser, mallocTrim
from xmppnetgraph.model import Link, LinkDown, LinkUp


def _link(domain: str) -> Link:
    """
    @return: an incoming link from C{domain}.
    """
    return Link(
        domain=domain,
        localDomain="a.example",
        direction="incoming",
        auth="dialback",
        tls="TLSv1.3",
        certValid=False,
        since=0.0,
        lastActivity=0.0,
    )


class FreedMemoryReleaserTests(SynchronousTestCase):
    """
    Free memory is returned once links have stopped going down for
    L{QUIET} seconds.
    """

    def setUp(self) -> None:
        self.feed = ChangeFeed()
        self.clock = Clock()
        self.trims: list[int] = []
        self.releaser = FreedMemoryReleaser(self.feed, self.clock, self.record)
        self.releaser.startService()
        self.addCleanup(self.releaser.stopService)

    def record(self, pad: int) -> int:
        self.trims.append(pad)
        return 1

    def test_afterQuiet(self) -> None:
        """
        A burst of links going down gives one trim, L{QUIET} seconds after
        the last of them.
        """
        for i in range(3):
            self.feed.emit(LinkDown(_link(f"p{i}.example")))
            self.clock.advance(QUIET - 1)
        self.assertEqual(self.trims, [])
        self.clock.advance(1)
        self.assertEqual(self.trims, [0])
        self.clock.advance(QUIET * 10)
        self.assertEqual(self.trims, [0])

    def test_interval(self) -> None:
        """
        A link going down soon after a trim trims again only L{INTERVAL}
        seconds after that trim.
        """
        self.feed.emit(LinkDown(_link("p.example")))
        self.clock.advance(QUIET)
        self.assertEqual(self.trims, [0])
        self.feed.emit(LinkDown(_link("q.example")))
        self.clock.advance(INTERVAL - 1)
        self.assertEqual(self.trims, [0])
        self.clock.advance(1)
        self.assertEqual(self.trims, [0, 0])

    def test_linksUpIgnored(self) -> None:
        """
        Links coming up do not trim.
        """
        self.feed.emit(LinkUp(_link("p.example")))
        self.clock.advance(QUIET * 2)
        self.assertEqual(self.trims, [])

    def test_stopCancels(self) -> None:
        """
        Stopping forgets a pending trim and stops watching.
        """
        self.feed.emit(LinkDown(_link("p.example")))
        self.releaser.stopService()
        self.feed.emit(LinkDown(_link("q.example")))
        self.clock.advance(QUIET * 2)
        self.assertEqual(self.trims, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_withoutTrim(self) -> None:
        """
        Without C{malloc_trim} (another C library) nothing is scheduled.
        """
        feed = ChangeFeed()
        releaser = FreedMemoryReleaser(feed, self.clock, None)
        releaser.startService()
        feed.emit(LinkDown(_link("p.example")))
        releaser.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class MallocTrimTests(SynchronousTestCase):
    """
    L{mallocTrim} finds glibc's function where there is one.
    """

    def test_glibc(self) -> None:
        """
        On glibc (Linux, as CI runs) it is found and can be called.
        """
        if not sys.platform.startswith("linux"):
            raise self.skipTest("not Linux")
        trim = mallocTrim()
        self.assertIsNotNone(trim)
        assert trim is not None
        self.assertIn(trim(0), (0, 1))
