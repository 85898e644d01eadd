# -*- test-case-name: tests.test_faults_disk -*-
"""
A full disk while crawling: the crawl pauses (logged once) instead of
failing domain after domain, the last good graph stays readable, and
crawling resumes, storing what it finds, once there is room again.

As root (as in CI) the SQLite file lives on a small tmpfs of the test's
own, filled up by a file the test writes and freed by deleting it: the
disk is really full. Otherwise SQLite's C{max_page_count} stands in.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.test_crawler import T0, FakeSubscriber, outcome, publishes, settle
from xmppnetgraph.crawler.crawler import Crawler, CrawlSettings
from xmppnetgraph.crawler.discovery import Discovery
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.scheduler import QueryScheduler
from xmppnetgraph.serverinfo.payload import RemoteDomain
from xmppnetgraph.store.database import Database, openDatabase
from xmppnetgraph.store.graph import GraphStore

#: The size of the test's filesystem.
TMPFS_SIZE = "4m"


class SmallDisk:
    """
    Where the database lives, and a way to fill it and free it again.
    """

    def __init__(self, testCase: TestCase) -> None:
        """
        Mount a tmpfs of L{TMPFS_SIZE} (as root; unmounted after the test)
        or use a plain directory.
        """
        self.path = Path(tempfile.mkdtemp(prefix="xng-disk-"))
        testCase.addCleanup(shutil.rmtree, self.path, True)
        self.mounted = False
        if os.geteuid() == 0 and shutil.which("mount"):
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(self.path)],
                capture_output=True,
            )
            self.mounted = done.returncode == 0
        if self.mounted:
            testCase.addCleanup(subprocess.run, ["umount", "-l", str(self.path)], check=True)
        self._filler = self.path / "filler"
        self._pages: int | None = None

    async def fill(self, database: Database) -> None:
        """
        Leave no room: write a file until the filesystem is full, or cap
        the database at the pages it has.
        """
        if not self.mounted:
            [(pages,)] = await database.runQuery("PRAGMA page_count")
            await database.runQuery(f"PRAGMA max_page_count = {pages}")
            return
        chunk = b"\0" * 65536
        with open(self._filler, "wb", buffering=0) as filler:
            while True:
                try:
                    filler.write(chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        break
                    chunk = chunk[: len(chunk) // 2]

    async def free(self, database: Database) -> None:
        """
        Make room again.
        """
        if not self.mounted:
            await database.runQuery("PRAGMA max_page_count = 1073741823")
            return
        self._filler.unlink()


class FullDiskTests(TestCase):
    """
    L{Crawler} on a L{Clock}, with scripted discoveries, storing into a
    real SQLite file on a disk that fills up.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.disk = SmallDisk(self)
        self.database = openDatabase(None, self.disk.path, reactor)
        self.addCleanup(self.database.close)
        self.feed = ChangeFeed()
        self.store = GraphStore(self.database, self.feed, self.clock)
        self.scheduler = QueryScheduler(self.clock, maxConcurrent=4, startInterval=0.0)
        self.addCleanup(self.scheduler.stop)
        self.answers: dict[str, Discovery] = {}
        self.asked: list[str] = []
        self.messages: list[str] = []

        def observe(event: LogEvent) -> None:
            self.messages.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def discover(self, domain: str) -> defer.Deferred[Discovery]:
        self.asked.append(domain)
        return defer.succeed(
            self.answers.get(domain) or outcome(domain, "unreachable", reachable=False)
        )

    def said(self, text: str) -> int:
        """
        @return: how many log messages contain C{text}.
        """
        return sum(text in message for message in self.messages)

    async def test_fullDiskPausesAndResumes(self) -> None:
        """
        A report that does not fit pauses the crawl: the last good graph
        stays, nothing is fetched during the pause, the log says so once
        however often it is still full, and after room returns the crawl
        stores the new report.
        """
        bigReport = [RemoteDomain(f"r{n}.example") for n in range(3000)]
        self.answers["a.example"] = publishes("a.example", RemoteDomain("b.example"))
        crawler = Crawler(
            clock=self.clock,
            scheduler=self.scheduler,
            discover=self.discover,
            store=self.store,
            feed=self.feed,
            linkTable=LinkTable(self.feed),
            subscriber=FakeSubscriber(),
            localDomains=("aggregator.example",),
            seeds=("a.example", "c.example"),
            settings=CrawlSettings(maxNewDomainsPerReporter=5),
            rng=random.Random(4),
        )
        crawler.startService()
        self.addCleanup(crawler.stopService)
        await settle(self.clock, crawler)
        good = await self.store.graph()
        self.assertEqual([link.remote for link in good.links], ["b.example"])

        await self.disk.fill(self.database)
        self.answers["a.example"] = publishes("a.example", *bigReport)
        await settle(self.clock, crawler, crawler.settings.refresh)
        self.assertEqual(self.said("the store is full"), 1)
        self.assertEqual(self.said("database full"), 1)
        self.assertEqual((await self.store.graph()).links, good.links)

        # During the pause nothing is fetched.
        asked = len(self.asked)
        await settle(self.clock, crawler, crawler.settings.backoffBase / 2)
        self.assertEqual(len(self.asked), asked)
        # Still full after the pause: one fetch at a time tries, the pause
        # grows, and the log stays quiet.
        for pause in (1, 2, 4):
            await settle(self.clock, crawler, crawler.settings.backoffBase * pause)
        self.assertLessEqual(len(self.asked) - asked, 3 * 3)
        self.assertEqual(self.said("the store is full"), 1)
        self.assertEqual(self.said("database full"), 1)
        self.assertEqual(self.said("room again"), 0)
        self.assertEqual((await self.store.graph()).links, good.links)

        await self.disk.free(self.database)
        await settle(self.clock, crawler, crawler.settings.backoffBase * 8)
        await settle(self.clock, crawler)
        links = (await self.store.graph()).links
        self.assertEqual(len(links), len(bigReport))
        self.assertEqual(self.said("room again"), 1)
        self.assertEqual(self.said("the store is full"), 1)
        self.assertEqual(self.said("database full"), 1)
        self.assertEqual(self.flushLoggedErrors(), [])
