# -*- test-case-name: tests.test_faults_kill -*-
"""
C{kill -9} of a process while it publishes its server information item
and while subscriptions to its node change: on reopening, the pub-sub
store holds the item of the last committed publish (or of the one that
was being committed), whole, and the subscriptions of exactly the
committed subscribes and unsubscribes (the same, or with the one in
flight), on a real SQLite file and on the real PostgreSQL server.

The child process (this module run as a script) runs L{operations} one
after another, each in its own transaction, and prints C{op N} once the
Nth is committed; the test kills it with SIGKILL while it runs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.postgres import postgresSkip, requirePostgres, temporaryDatabase
from tests.test_store_kill import _Child, deferLater
from xmppnetgraph.store.database import openDatabase
from xmppnetgraph.store.pubsub import PubSubStore

NODE = "serverinfo"

#: Remote domains in each published item (about 200 KB: a publish takes
#: a while, so the kill often lands in one).
DOMAINS = 4000

#: How many operations the child commits before the test kills it.
BEFORE_KILL = 30


def payload(version: int) -> str:
    """
    @return: the item of publish number C{version}.
    """
    remotes = "".join(f"<remote-domain name='d{version}-{n}.example'/>" for n in range(DOMAINS))
    return (
        f"<serverinfo xmlns='urn:xmpp:serverinfo:0' version='{version}'>"
        f"<domain name='a.example'><federation>{remotes}</federation></domain></serverinfo>"
    )


def operations() -> Iterator[tuple[str, int]]:
    """
    @return: the child's operations, in order: publish item C{k},
        subscribe C{s<k>.example}, unsubscribe C{s<k-2>.example}.
    """
    k = 0
    while True:
        k += 1
        yield ("publish", k)
        yield ("subscribe", k)
        if k >= 3:
            yield ("unsubscribe", k - 2)


def stateAfter(count: int) -> tuple[int | None, frozenset[str]]:
    """
    @return: the item's version and the subscribers after the first
        C{count} operations.
    """
    version: int | None = None
    subscribers: set[str] = set()
    for kind, k in islice(operations(), count):
        if kind == "publish":
            version = k
        elif kind == "subscribe":
            subscribers.add(f"s{k}.example")
        else:
            subscribers.discard(f"s{k}.example")
    return version, frozenset(subscribers)


class KillDuringPublishMixin:
    """
    The test, for a database given by L{url}.
    """

    url: str | None
    mktemp: Callable[[], str]

    async def test_killWhilePublishingAndSubscribing(self) -> None:
        """
        After SIGKILL, the item is one of the published payloads, whole,
        and item and subscriptions are the state after the last committed
        operation or after the one in flight.
        """
        dataDir = Path(self.mktemp()).absolute()
        dataDir.mkdir(parents=True)
        child = _Child()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        argv = [sys.executable, "-m", "tests.test_faults_kill", str(dataDir), self.url or ""]
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            child, sys.executable, argv, env=env, path=os.getcwd()
        )
        await child.expect(f"op {BEFORE_KILL}")
        await deferLater(0.05)
        process.signalProcess(signal.SIGKILL)
        reason = await child.ended
        self.assertIn("signal 9", str(reason))
        committed = max(int(line.split()[1]) for line in child.lines if line.startswith("op "))

        database = openDatabase(self.url, dataDir, reactor)
        try:
            store = PubSubStore(database)
            items = await store.items(NODE)
            subscriptions = await store.subscriptions(NODE)
        finally:
            await database.close()
        self.assertEqual(len(items), 1)
        (item,) = items
        version = int(item.payload.split("version='", 1)[1].split("'", 1)[0])
        self.assertEqual(item.payload, payload(version))
        subscribers = [s.subscriber for s in subscriptions]
        self.assertEqual(len(subscribers), len(set(subscribers)))
        found = (version, frozenset(subscribers))
        self.assertIn(found, (stateAfter(committed), stateAfter(committed + 1)))


class SQLiteKillTests(KillDuringPublishMixin, TestCase):
    """
    On a SQLite file.
    """

    url = None


class PostgreSQLKillTests(KillDuringPublishMixin, TestCase):
    """
    On a database of its own on the test PostgreSQL server.
    """

    skip = postgresSkip()

    def setUp(self) -> None:
        requirePostgres()
        self.url = temporaryDatabase(self)


async def _child(dataDir: Path, url: str | None) -> None:
    database = openDatabase(url, dataDir, reactor)
    store = PubSubStore(database)
    for count, (kind, k) in enumerate(operations(), 1):
        if kind == "publish":
            await store.publishItem(
                NODE, "current", payload(k), "a.example", lambda config: 1, createConfig={}
            )
        elif kind == "subscribe":
            await store.subscribe(NODE, f"s{k}.example", maxPerDomain=1)
        else:
            await store.unsubscribe(NODE, f"s{k}.example")
        print(f"op {count}", flush=True)


def main() -> None:
    """
    The child: run the operations until killed.
    """
    dataDir, url = Path(sys.argv[1]), sys.argv[2] or None
    d = defer.Deferred.fromCoroutine(_child(dataDir, url))
    d.addErrback(lambda f: print(f.getTraceback(), file=sys.stderr, flush=True))
    d.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
