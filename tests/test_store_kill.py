# -*- test-case-name: tests.test_store_kill -*-
"""
C{kill -9} of a process in the middle of storing a report: on reopening,
the graph store holds exactly the last committed report, on a real SQLite
file and on the real PostgreSQL server.

The child process (this module run as a script) stores a small report,
says so, then stores a report of 200,000 links in one transaction and
says when it began; the test kills it with SIGKILL while that runs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.postgres import postgresSkip, requirePostgres, temporaryDatabase
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.serverinfo.payload import RemoteDomain
from xmppnetgraph.store.database import openDatabase
from xmppnetgraph.store.graph import GraphStore

SMALL = 50
BIG = 200_000


class _Child(ProcessProtocol):
    """
    Collects the child's output lines; fires C{ended} when it exits.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.buffer = b""
        self.waiting: dict[str, defer.Deferred[None]] = {}
        self.ended: defer.Deferred[BaseException] = defer.Deferred()
        self.errors = b""

    def expect(self, line: str) -> defer.Deferred[None]:
        if line in self.lines:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self.waiting[line] = d
        return d

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\n", 1)
            line = raw.decode()
            self.lines.append(line)
            d = self.waiting.pop(line, None)
            if d is not None:
                d.callback(None)

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def processEnded(self, reason: Failure) -> None:
        for d in self.waiting.values():
            d.errback(AssertionError(f"child ended early: {self.errors.decode()[-2000:]}"))
        self.waiting.clear()
        self.ended.callback(reason.value)


class KillDuringReportMixin:
    """
    The test, for a database given by L{url}.
    """

    url: str | None
    mktemp: Callable[[], str]

    async def test_killDuringReport(self) -> None:
        """
        SIGKILL while a 200,000-link report is being stored leaves the
        previous report, whole, and nothing of the new one.
        """
        dataDir = Path(self.mktemp()).absolute()
        dataDir.mkdir(parents=True)
        child = _Child()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        argv = [sys.executable, "-m", "tests.test_store_kill", str(dataDir), self.url or ""]
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            child, sys.executable, argv, env=env, path=os.getcwd()
        )
        await child.expect("small stored")
        await child.expect("big begins")
        # Let the big transaction get well under way, then kill.
        await deferLater(0.5)
        process.signalProcess(signal.SIGKILL)
        reason = await child.ended
        self.assertIn("signal 9", str(reason))
        self.assertNotIn("big stored", child.lines)

        database = openDatabase(self.url, dataDir, reactor)
        try:
            snapshot = await GraphStore(database, ChangeFeed()).graph()
        finally:
            await database.close()
        self.assertEqual(
            sorted(link.remote or "" for link in snapshot.links),
            sorted(f"s{n}.example" for n in range(SMALL)),
        )


def deferLater(seconds: float) -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
    return d


class SQLiteKillTests(KillDuringReportMixin, TestCase):
    """
    On a SQLite file.
    """

    url = None


class PostgreSQLKillTests(KillDuringReportMixin, TestCase):
    """
    On a database of its own on the test PostgreSQL server.
    """

    skip = postgresSkip()

    def setUp(self) -> None:
        requirePostgres()
        self.url = temporaryDatabase(self)


async def _child(dataDir: Path, url: str | None) -> None:
    database = openDatabase(url, dataDir, reactor)
    store = GraphStore(database, ChangeFeed())
    await store.storeReport("hub.example", [RemoteDomain(f"s{n}.example") for n in range(SMALL)])
    print("small stored", flush=True)
    big = [RemoteDomain(f"b{n}.example") for n in range(BIG)]
    print("big begins", flush=True)
    await store.storeReport("hub.example", big)
    print("big stored", flush=True)


def main() -> None:
    """
    The child: store the small report, then the big one (killed meanwhile).
    """
    dataDir, url = Path(sys.argv[1]), sys.argv[2] or None
    d = defer.Deferred.fromCoroutine(_child(dataDir, url))
    d.addErrback(lambda f: print(f.getTraceback(), file=sys.stderr, flush=True))
    d.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
