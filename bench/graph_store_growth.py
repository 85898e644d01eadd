"""
Store size after many unchanged re-crawls: a graph store (SQLite in a
temporary directory, and the test suite's throw-away PostgreSQL when it is
installed) holding reports of REPORTERS domains with PEERS peers each; then
each domain is "re-crawled" ROUNDS times with the same facts and report.
History is kept as intervals, so an unchanged re-crawl should write
timestamps only: the figures are the rows and bytes added, against the
rows a store that copies each crawl would add (the baseline, computed).

    python bench/graph_store_growth.py [--reporters 20 --peers 100 --rounds 1000] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import reactor as _reactor
from twisted.internet.task import react

from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.model import DiscoveryStep, DomainFacts
from xmppnetgraph.serverinfo.payload import RemoteDomain
from xmppnetgraph.store.database import Database, openDatabase
from xmppnetgraph.store.graph import GraphStore

reactor: Any = _reactor

TABLES = ("graph_domains", "graph_domain_facts", "graph_reports", "graph_links", "graph_events")

FACTS = DomainFacts(
    "publishes",
    True,
    publishes=True,
    consents=True,
    softwareName="Prosody",
    softwareVersion="13.0.1",
    tlsVersion="TLSv1.3",
    auth="dialback",
    certValid=False,
    steps=(DiscoveryStep("disco#info", True, "lists urn:xmpp:serverinfo:0"),),
)


async def rows(database: Database) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        [(count,)] = await database.runQuery(f"SELECT COUNT(*) FROM {table}")
        counts[table] = int(count)
    return counts


async def size(database: Database, path: Path | None) -> int:
    """
    @return: the database's size in bytes (the SQLite file and its WAL
        after a checkpoint, or PostgreSQL's pg_database_size).
    """
    if path is None:
        [(value,)] = await database.runQuery("SELECT pg_database_size(current_database())")
        return int(value)
    await database.runQuery("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def measure(
    label: str, database: Database, path: Path | None, reporters: int, peers: int, rounds: int
) -> None:
    store = GraphStore(database, ChangeFeed())
    reports = {
        f"r{r}.example": [
            RemoteDomain(f"p{(r * peers + p) % (reporters * peers)}.example", ("bidi",))
            for p in range(peers)
        ]
        for r in range(reporters)
    }
    for reporter, remotes in reports.items():
        await store.recordFetch(reporter, FACTS)
        await store.storeReport(reporter, remotes)
    before, bytesBefore = await rows(database), await size(database, path)
    start = time.perf_counter()
    for _ in range(rounds):
        for reporter, remotes in reports.items():
            await store.recordFetch(reporter, FACTS)
            await store.storeReport(reporter, remotes)
    elapsed = time.perf_counter() - start
    after, bytesAfter = await rows(database), await size(database, path)
    added = sum(after.values()) - sum(before.values())
    copies = rounds * reporters * (peers + 1)
    crawls = rounds * reporters
    print(
        f"{label:>10}: {reporters} reporters x {peers} peers, {rounds} unchanged re-crawls "
        f"({crawls} crawls, {crawls / elapsed:,.0f}/s): rows added {added} "
        f"(a copy per crawl: {copies:,}; ratio {added / copies:.4f}), "
        f"size {bytesBefore / 1e6:.2f} MB -> {bytesAfter / 1e6:.2f} MB "
        f"({(bytesAfter - bytesBefore) / 1e3:+.0f} kB)"
    )


async def main(reporters: int, peers: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database = openDatabase(None, Path(tmp), reactor)
        try:
            await measure(
                "SQLite",
                database,
                Path(tmp) / "xmppnetgraph.sqlite",
                reporters,
                peers,
                rounds,
            )
        finally:
            await database.close()
    try:
        from tests.postgres import postgresAvailable, sharedCluster
    except ImportError:
        return
    if postgresAvailable() is not None:
        print(f"PostgreSQL: skipped ({postgresAvailable()})")
        return
    cluster = sharedCluster()
    url = cluster.createDatabase()
    database = openDatabase(url, Path(tempfile.gettempdir()), reactor)
    try:
        await measure("PostgreSQL", database, None, reporters, peers, rounds)
    finally:
        await database.close()
        cluster.dropDatabase(url)


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--reporters", type=int, default=20)
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="10 reporters, 20 rounds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.reporters, args.peers, args.rounds = 10, 20, 20
    react(lambda _: main(args.reporters, args.peers, args.rounds), [])


if __name__ == "__main__":
    run()
