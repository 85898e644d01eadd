# -*- test-case-name: tests.test_core -*-
"""
Tests for L{xmppnetgraph.core}: the shared core and the service at the top
of a node's tree.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase
from wokkel.disco import DiscoHandler

from xmppnetgraph.component import QuietRouter
from xmppnetgraph.core import CoreService, makeCore
from xmppnetgraph.datadir import ensureDataDir
from xmppnetgraph.error import SchedulerStopped, StorageError
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.store.database import openDatabase


class CoreTests(TestCase):
    """
    L{makeCore} fills in defaults; L{Core.component} makes one host per
    local domain; L{CoreService} starts the hosts and closes the database
    last.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.database = openDatabase(None, ensureDataDir(Path(self.mktemp()).absolute()), reactor)
        self.addCleanup(self.database.close)

    def test_defaults(self) -> None:
        """
        Without them, a core gets a router, a feed and a link table on
        that feed.
        """
        core = makeCore(Clock(), self.database)
        self.assertIsInstance(core.router, QuietRouter)
        self.assertIsInstance(core.feed, ChangeFeed)
        self.assertIsInstance(core.linkTable, LinkTable)
        self.assertIsNone(core.resolver)

    def test_given(self) -> None:
        """
        Given parts are used as they are.
        """
        feed = ChangeFeed()
        table = LinkTable(feed)
        router = QuietRouter()
        core = makeCore(Clock(), self.database, router=router, feed=feed, linkTable=table)
        self.assertIs(core.router, router)
        self.assertIs(core.feed, feed)
        self.assertIs(core.linkTable, table)

    def test_oneComponentPerDomain(self) -> None:
        """
        L{Core.component} makes a domain's host once, named after it, with
        one L{DiscoHandler}, as a child of C{components}.
        """
        core = makeCore(MemoryReactorClock(), self.database)
        host = core.component("example.org")
        self.assertIs(core.component("example.org"), host)
        other = core.component("pubsub.example.org")
        self.assertIsNot(other, host)
        self.assertEqual(host.domains, {"example.org"})
        self.assertIs(core.components.getServiceNamed("example.org"), host)
        self.assertEqual(len([h for h in host if isinstance(h, DiscoHandler)]), 1)

    async def test_serviceOrder(self) -> None:
        """
        L{CoreService} starts the hosts (on the router) with itself; after
        its children have stopped it stops the query scheduler and closes
        the database.
        """
        core = makeCore(MemoryReactorClock(), self.database)
        top = CoreService(core)
        host = core.component("example.org")
        top.startService()
        self.assertTrue(host.running)
        self.assertIn("example.org", core.router.routes)
        await top.stopService()
        self.assertFalse(host.running)
        self.assertNotIn("example.org", core.router.routes)
        with self.assertRaises(StorageError):
            await self.database.runQuery("SELECT 1")
        with self.assertRaises(SchedulerStopped):
            await core.scheduler.ask(
                "peer.example", "key", lambda: defer.succeed(1), ttl=1, errorTtl=1
            )
