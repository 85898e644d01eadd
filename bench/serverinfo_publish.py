#!/usr/bin/env python3
"""
XEP-0485 publishing: what one big C{serverinfo} item costs to build, store
and send to many remote subscribers, and how long a link change takes to
reach a subscriber.

Part 1, cost. A publishing node (p.example) and receiving nodes
(r0.example ... r9.example) run in processes of their own on 127.0.0.1,
with TLS and dialback between them. Subscribers sub0@r0.example,
sub1@r1.example, ... subscribe to p.example's C{serverinfo} node over s2s
(10 per receiving domain with the defaults, which is the default cap per
domain; the cap is raised only if more are needed per domain). The
publisher then builds an item from fake links (C{--peers} remote domains,
C{--streams-per-peer} streams each, every C{--consent-every}-th peer
consenting), publishes it through its pub-sub backend (C{backend.publish},
its real SQLite store; and PostgreSQL when one can be started here) and we
time: building (C{fromLinks}, C{buildPayload}, C{toXml}), storing (one
transaction: the item, trimming, reading the subscriptions), handing all
notifications to the s2s streams (serialized, encrypted, queued), draining
them into the sockets, and the receivers getting them all. Baseline: the
time to serialize the same item once per subscriber with C{toXml()}, as an
implementation that puts the payload element in every notification does.

Part 2, latency. An origin node (a.example, its XEP-0485 publisher on),
a subscriber node (s.example, subscribed to a.example's serverinfo) and a
linker process run on 127.0.0.1. For each repetition the linker starts a
new node cN.example that sends a.example a disco#info request, which opens
a link. We time from that request to the moment s.example receives the
notification whose item names cN.example, for each C{--delays} value of
the origin's C{publishDelay}.

Usage: python bench/serverinfo_publish.py [--peers 10000] [--subscribers 100]
       [--rounds 1] [--delays 2,0.2] [--repeats 5] [--no-postgres]
       [--skip-cost] [--skip-latency] [--keep] [--smoke]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from _common import Child, ask, freePort, printTable, sleep, waitEvent
from _prosody import quietLoopbackAddresses

NODE = str(Path(__file__).resolve().parent / "_serverinfo_node.py")


def listeners(count: int) -> tuple[list[str], int]:
    """
    @return: C{count} loopback addresses C{127.x.y.2}, C{127.x.y.3}, ...
        and one port that is free on all of them. Each node listens on an
        address of its own: ports picked in advance on 127.0.0.1 could be
        taken meanwhile as the source port of an outgoing connection, while
        these addresses are never used as a source address.
    """
    port = freePort("127.0.0.1")
    return quietLoopbackAddresses(count, port), port


def spawn(reactor: Any, name: str, role: str, work: Path, *args: str) -> Child:
    """
    Start one benchmark process (L{bench._serverinfo_node}) in C{role};
    it is stopped by the cleanups.
    """
    dataDir = work / name
    dataDir.mkdir(parents=True, exist_ok=True)
    child = Child.spawn(
        reactor, name, [sys.executable, NODE, role, "--data-dir", str(dataDir), *args], work
    )
    _common.addCleanup(lambda: child.stop(reactor))
    return child


def ms(seconds: float) -> str:
    """
    @return: C{seconds} in milliseconds, formatted.
    """
    return f"{seconds * 1000:.0f}"


def spread(values: Sequence[float]) -> str:
    """
    @return: median (min-max) of C{values} in milliseconds.
    """
    return f"{ms(statistics.median(values))} ({ms(min(values))}-{ms(max(values))})"


# -- part 1: cost ---------------------------------------------------------------


class CostRun:
    """
    Part 1: one set of receiving processes, and a publishing process per
    database backend.
    """

    def __init__(self, reactor: Any, args: argparse.Namespace, work: Path) -> None:
        self.reactor = reactor
        self.args = args
        self.work = work / "cost"
        self.work.mkdir()
        domains = [f"r{k}.example" for k in range(args.receiver_domains)]
        addresses, self.port = listeners(1 + len(domains))
        self.publisherAddress = addresses[0]
        self.addresses = dict(zip(domains, addresses[1:], strict=True))
        # Subscriber j is sub<j>@r<j mod K>.example.
        self.jids = [f"sub{j}@{domains[j % len(domains)]}" for j in range(args.subscribers)]
        perDomain = math.ceil(args.subscribers / len(domains))
        self.maxSubscriptions = max(10, perDomain)
        processes = max(1, min(args.receiver_processes, len(domains)))
        self.groups = [domains[m::processes] for m in range(processes)]
        self.receivers: list[Child] = []
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.naive: dict[str, Any] | None = None
        self.databases: dict[str, str] = {}

    async def startReceivers(self) -> None:
        """
        Start the receiving processes.
        """
        where = f"{self.publisherAddress}:{self.port}"
        routes = ["--route", f"p.example={where}", "--route", f"*.p.example={where}"]
        for m, group in enumerate(self.groups):
            nodes = [
                a
                for domain in group
                for a in ("--node", f"{domain}={self.addresses[domain]}:{self.port}")
            ]
            child = spawn(
                self.reactor,
                f"receivers{m}",
                "receivers",
                self.work,
                *nodes,
                *routes,
                "--max-stanza-size",
                str(self.args.max_stanza_size),
            )
            self.receivers.append(child)
        for child in self.receivers:
            await waitEvent(self.reactor, child, "ready", 60)

    async def runBackend(self, label: str, database: str, naive: bool) -> None:
        """
        Start a publisher on C{database}, subscribe everybody, warm up,
        and time the rounds.
        """
        args = self.args
        routes = [
            a
            for domain, address in self.addresses.items()
            for a in ("--route", f"{domain}={address}:{self.port}")
        ]
        extra = ["--database", database] if database else []
        publisher = spawn(
            self.reactor,
            f"publisher-{label.lower()}",
            "publisher",
            self.work,
            "--domain",
            "p.example",
            "--address",
            self.publisherAddress,
            "--s2s-port",
            str(self.port),
            "--max-subscriptions",
            str(self.maxSubscriptions),
            *routes,
            *extra,
        )
        ready = await waitEvent(self.reactor, publisher, "ready", 60)
        settings = ", ".join(f"{k}={v}" for k, v in ready["settings"].items())
        self.databases[label] = f"{ready['database']} ({settings})"
        for child, group in zip(self.receivers, self.groups, strict=True):
            jids = [j for j in self.jids if j.partition("@")[2] in group]
            answer = await ask(
                self.reactor,
                child,
                {"subscribe": {"service": "pubsub.p.example", "node": "serverinfo", "jids": jids}},
                "subscribed",
                120,
            )
            if answer["ok"] != len(jids):
                raise RuntimeError(
                    f"{child.name}: only {answer['ok']} of {len(jids)} subscribed: "
                    f"{answer['failures']}"
                )
        await self.publishRound(publisher, "w-", 10)
        rounds = []
        for r in range(args.rounds):
            rounds.append(await self.publishRound(publisher, f"r{r}-", args.peers))
        self.results[label] = rounds
        if naive:
            self.naive = await ask(
                self.reactor, publisher, {"naive": {"count": args.subscribers}}, "naive", 600
            )
        await publisher.stop(self.reactor)

    async def publishRound(self, publisher: Child, tag: str, peers: int) -> dict[str, Any]:
        """
        Have the publisher publish one item and wait until every receiver
        has all its notifications.

        @return: the publisher's timings and the receivers' answers.
        """
        args = self.args
        marks = []
        for child, group in zip(self.receivers, self.groups, strict=True):
            count = sum(1 for j in self.jids if j.partition("@")[2] in group)
            marks.append(len(child.events))
            await ask(
                self.reactor,
                child,
                {"expect": {"count": count, "tag": tag, "peers": peers}},
                "expecting",
                30,
            )
        spec = {
            "tag": tag,
            "peers": peers,
            "streams": args.streams_per_peer,
            "consentEvery": args.consent_every,
        }
        published = await ask(self.reactor, publisher, {"publish": spec}, "published", 300)
        # About 0.4 CPU seconds per notification of a 10,000-peer item on
        # the receiving side were measured; allow 1 s each, plus a minute.
        timeout = 60 + args.subscribers * max(1, peers) / 10000
        received = [
            await waitEvent(self.reactor, child, "received", timeout, since)
            for child, since in zip(self.receivers, marks, strict=True)
        ]
        return {"published": published, "received": received}

    def report(self) -> None:
        """
        Print the tables.
        """
        args = self.args
        if not self.results:
            return
        build, sender, receiver, summary = [], [], [], []
        for label, rounds in self.results.items():
            for i, result in enumerate(rounds):
                p, received = result["published"], result["received"]
                buildTotal = p["fromLinks"] + p["buildPayload"] + p["toXml"]
                build.append(
                    [
                        f"{label} #{i + 1}",
                        f"{p['itemBytes'] / 1e6:.2f}",
                        ms(p["fromLinks"]),
                        ms(p["buildPayload"]),
                        ms(p["toXml"]),
                        ms(buildTotal),
                        ms(p["storeStart"] - p["publishStart"]),
                        ms(p["storeEnd"] - p["storeStart"]),
                        ms(p["notifyStart"] - p["storeEnd"]),
                    ]
                )
                first = min(r["first"] for r in received)
                last = max(r["last"] for r in received)
                sender.append(
                    [
                        f"{label} #{i + 1}",
                        ms(p["notifyEnd"] - p["notifyStart"]),
                        ms(p["drained"] - p["notifyStart"]),
                        f"{p['bytesSent'] / 1e6:.0f}",
                        p["streams"],
                        f"{p['cpuPublish']:.2f}",
                        f"{ms(p['gcSeconds'])} ({p['gcCollections']})",
                    ]
                )
                cpu = sum(r["cpu"] for r in received)
                receiver.append(
                    [
                        f"{label} #{i + 1}",
                        ms(first - p["notifyStart"]),
                        ms(last - p["notifyStart"]),
                        ms(last - p["start"]),
                        f"{cpu:.2f}",
                        f"{sum(r['gcSeconds'] for r in received):.2f}",
                        ms(cpu / sum(r["count"] for r in received)),
                    ]
                )
        printTable(
            f"Build and store: one item of {args.peers} peers "
            f"({args.streams_per_peer} streams each, every {args.consent_every}. named); ms",
            [
                "backend, round",
                "item MB",
                "fromLinks",
                "buildPayload",
                "toXml",
                "build total",
                "publish prelude",
                "store (item, trim, subscriptions)",
                "notifications made",
            ],
            build,
        )
        printTable(
            f"Notify {args.subscribers} remote subscribers, sender side; "
            "ms from the start of notifying",
            [
                "backend, round",
                "handed to s2s streams",
                "all in the kernel",
                "MB sent",
                "streams",
                "publisher CPU s (build+publish)",
                "publisher GC ms (runs)",
            ],
            sender,
        )
        printTable(
            f"Notify {args.subscribers} remote subscribers, receiver side "
            f"({args.receiver_domains} receiving domains in {len(self.groups)} processes); "
            "ms from the start of notifying",
            [
                "backend, round",
                "first received",
                "all received",
                "build start -> all received",
                "receivers CPU s",
                "of which GC s",
                "receiver CPU ms per notification",
            ],
            receiver,
        )
        for label, rounds in self.results.items():
            publishers = [r["published"] for r in rounds]
            builds = [p["fromLinks"] + p["buildPayload"] + p["toXml"] for p in publishers]
            stores = [p["storeEnd"] - p["storeStart"] for p in publishers]
            notifies = [p["notifyEnd"] - p["notifyStart"] for p in publishers]
            publishes = [p["publishEnd"] - p["publishStart"] for p in publishers]
            alls = [
                max(x["last"] for x in r["received"]) - r["published"]["notifyStart"]
                for r in rounds
            ]
            summary.append(
                [
                    label,
                    spread(builds),
                    spread(stores),
                    spread(publishes),
                    spread(notifies),
                    spread(alls),
                ]
            )
        printTable(
            "Summary, ms: median (min-max) over the rounds",
            [
                "backend",
                "build",
                "store",
                "publish (store+notify)",
                "handed to s2s streams",
                "all received",
            ],
            summary,
        )
        for label, description in self.databases.items():
            print(f"{label}: {description}")
        if self.naive is not None and self.results:
            naive = self.naive["seconds"]
            first = next(iter(self.results.values()))
            notifyMedian = statistics.median(
                r["published"]["notifyEnd"] - r["published"]["notifyStart"] for r in first
            )
            publishMedian = statistics.median(
                r["published"]["publishEnd"] - r["published"]["publishStart"] for r in first
            )
            print(
                f"baseline: serializing the item {self.naive['count']} times with toXml() "
                f"took {ms(naive)} ms ({ms(naive / self.naive['count'])} ms each)"
            )
            print(
                f"ratio handed-to-streams / baseline: {notifyMedian / naive:.3f}; "
                f"whole publish / baseline: {publishMedian / naive:.3f} "
                f"({next(iter(self.results))} medians)"
            )
        sizes = {r["published"]["itemBytes"] for rounds in self.results.values() for r in rounds}
        tooBig = " (the default, 262144, would close the stream)" if max(sizes) > 262144 else ""
        print(
            f"item size: {', '.join(f'{s} bytes' for s in sorted(sizes))}; "
            f"receivers run with maxStanzaSize {args.max_stanza_size} bytes{tooBig}; publisher's "
            f"maxSubscriptionsPerDomain {self.maxSubscriptions} "
            f"({'the default' if self.maxSubscriptions == 10 else 'raised from 10'}; "
            f"{math.ceil(args.subscribers / args.receiver_domains)} "
            "subscribers per receiving domain)"
        )
        sys.stdout.flush()


async def runCost(reactor: Any, args: argparse.Namespace, work: Path) -> None:
    """
    Part 1 for SQLite, then PostgreSQL if one can be started here.
    """
    backends: list[tuple[str, str]] = [("SQLite", "")]
    if not args.no_postgres:
        from tests import postgres

        reason = postgres.postgresAvailable()
        if reason is None:
            cluster = postgres.sharedCluster()
            _common.addCleanup(cluster.stop)
            backends.append(("PostgreSQL", cluster.createDatabase()))
        else:
            print(f"PostgreSQL skipped: {reason}")
    run = CostRun(reactor, args, work)
    await run.startReceivers()
    try:
        for i, (label, database) in enumerate(backends):
            await run.runBackend(label, database, naive=i == 0)
    finally:
        run.report()
        for child in run.receivers:
            await child.stop(reactor)


# -- part 2: latency ----------------------------------------------------------


async def quiet(
    reactor: Any, children: Sequence[Child], seconds: float, timeout: float = 60
) -> None:
    """
    Wait until none of C{children} has reported anything for C{seconds}.
    """
    deadline = time.monotonic() + timeout
    counts = [len(c.events) for c in children]
    stable = time.monotonic()
    while time.monotonic() - stable < seconds:
        await sleep(reactor, 0.05)
        now = [len(c.events) for c in children]
        if now != counts:
            counts, stable = now, time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError("the nodes did not settle")


async def runLatency(
    reactor: Any, args: argparse.Namespace, work: Path, delay: float
) -> list[dict[str, Any]]:
    """
    Part 2 with the origin's C{publishDelay} set to C{delay}.

    @return: one record per repetition.
    """
    work = work / f"latency-{delay:g}"
    work.mkdir()
    (addressA, addressS, *linkAddresses), port = listeners(2 + args.repeats)
    toA = ["--route", f"a.example={addressA}:{port}", "--route", f"*.a.example={addressA}:{port}"]
    routesA = ["--route", f"s.example={addressS}:{port}"]
    for i, address in enumerate(linkAddresses):
        routesA += ["--route", f"c{i}.example={address}:{port}"]
    origin = spawn(
        reactor,
        "origin",
        "origin",
        work,
        "--domain",
        "a.example",
        "--address",
        addressA,
        "--s2s-port",
        str(port),
        "--publish-delay",
        str(delay),
        *routesA,
    )
    subscriber = spawn(
        reactor,
        "subscriber",
        "subscriber",
        work,
        "--domain",
        "s.example",
        "--address",
        addressS,
        "--s2s-port",
        str(port),
        *toA,
    )
    linker = spawn(reactor, "linker", "linker", work, *toA)
    try:
        for child in (origin, subscriber, linker):
            await waitEvent(reactor, child, "ready", 60)
        # The origin publishes its first (empty) item after the delay; then
        # the node exists and s.example can subscribe. The new link makes
        # the origin publish again, naming s.example.
        await waitEvent(reactor, origin, "publish", 30)
        answer = await ask(
            reactor,
            subscriber,
            {
                "subscribe": {
                    "service": "pubsub.a.example",
                    "node": "serverinfo",
                    "jids": ["s.example"],
                }
            },
            "subscribed",
            60,
        )
        if answer["ok"] != 1:
            raise RuntimeError(f"s.example could not subscribe: {answer['failures']}")
        await waitEvent(
            reactor, subscriber, "item", 60, predicate=lambda e: "s.example" in e["named"]
        )
        await quiet(reactor, [origin, subscriber], delay + 0.5)
        records = []
        for i, address in enumerate(linkAddresses):
            domain = f"c{i}.example"
            markA, markS = len(origin.events), len(subscriber.events)
            spec = {"domain": domain, "address": address, "port": port, "target": "a.example"}
            linked = await ask(reactor, linker, {"link": spec}, "linked", 60)
            named = await waitEvent(
                reactor, subscriber, "item", 60, markS, lambda e, new=domain: new in e["named"]
            )
            await quiet(reactor, [origin, subscriber], delay + 0.5)
            t0 = linked["t0"]
            eventsA = origin.events[markA:]
            links = {
                e["direction"]: e["t"]
                for e in eventsA
                if e.get("event") == "link" and e["up"] and e["domain"] == domain
            }
            consent = [
                e["t"] for e in eventsA if e.get("event") == "consent" and e["domain"] == domain
            ]
            publishes = [e for e in eventsA if e.get("event") == "publish"]
            naming = next(e for e in publishes if domain in e["named"])
            items = [e for e in subscriber.events[markS:] if e.get("event") == "item"]
            records.append(
                {
                    "domain": domain,
                    "total": named["t"] - t0,
                    "answered": linked["answered"] - t0,
                    "incoming": links.get("incoming", math.nan) - t0,
                    "outgoing": links.get("outgoing", math.nan) - t0,
                    "consent": (consent[0] - t0) if consent else math.nan,
                    "publishStart": naming["start"] - t0,
                    "publishEnd": naming["end"] - t0,
                    "notify": named["t"] - naming["start"],
                    "firstChange": items[0]["t"] - t0,
                    "itemsBefore": sum(1 for e in items if e["t"] < named["t"]),
                    "publishes": len(publishes),
                    "optIn": linked["optIn"],
                }
            )
        return records
    finally:
        for child in (linker, subscriber, origin):
            await child.stop(reactor)


def reportLatency(results: dict[float, list[dict[str, Any]]]) -> None:
    """
    Print one table per delay and a summary.
    """
    summary = []
    for delay, records in results.items():
        rows = [
            [
                r["domain"],
                ms(r["answered"]),
                ms(r["incoming"]),
                ms(r["outgoing"]),
                ms(r["consent"]),
                ms(r["publishStart"]),
                ms(r["publishEnd"]),
                ms(r["notify"]),
                ms(r["firstChange"]),
                r["itemsBefore"],
                ms(r["total"]),
            ]
            for r in records
        ]
        printTable(
            f"publishDelay {delay:g} s: ms from cN.example's disco#info request to a.example",
            [
                "new peer",
                "disco answered",
                "link in",
                "link out",
                "consent yes",
                "publish start",
                "publish end",
                "publish -> s.example",
                "first notification",
                "earlier notifications",
                "total (named)",
            ],
            rows,
        )
        totals = [r["total"] for r in records]
        summary.append(
            [
                f"{delay:g}",
                len(records),
                ms(statistics.median(totals)),
                ms(min(totals)),
                ms(max(totals)),
                ms(statistics.median(r["firstChange"] for r in records)),
            ]
        )
    printTable(
        "Summary: link change -> notification naming the new peer at s.example, ms",
        ["publishDelay s", "repeats", "median", "min", "max", "median first notification"],
        summary,
    )
    sys.stdout.flush()


async def main(reactor: Any, argv: list[str]) -> None:
    """
    Run the benchmark and print the figures.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--peers", type=int, default=10000, help="remote domains in the item (default 10000)"
    )
    parser.add_argument(
        "--streams-per-peer",
        type=int,
        default=2,
        choices=[1, 2],
        help="streams per peer: 1 incoming, 2 incoming and outgoing (default 2)",
    )
    parser.add_argument(
        "--consent-every", type=int, default=2, help="every N-th peer consents (default 2)"
    )
    parser.add_argument(
        "--subscribers", type=int, default=100, help="remote subscribers (default 100)"
    )
    parser.add_argument(
        "--receiver-domains", type=int, default=10, help="receiving domains (default 10)"
    )
    parser.add_argument(
        "--receiver-processes",
        type=int,
        default=2,
        help="processes the receiving domains are spread over (default 2)",
    )
    parser.add_argument(
        "--max-stanza-size",
        type=int,
        default=16 * 1024 * 1024,
        help="maxStanzaSize of the receiving nodes in bytes (default 16 MiB)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="timed publishes per database (default 1)"
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--delays", default="2,0.2", help="publishDelay values for part 2 (default 2,0.2)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="new links per delay (default 5)")
    parser.add_argument("--skip-cost", action="store_true", help="skip part 1")
    parser.add_argument("--skip-latency", action="store_true", help="skip part 2")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    smoke = ["--peers", "300", "--subscribers", "10", "--receiver-domains", "2", "--repeats", "1"]
    args = _common.parseArguments(parser, argv, [*smoke, "--delays", "0.2"])
    work = _common.workDirectory(reactor, "xng-bench-serverinfo-", args.keep)
    sys.stdout.flush()
    began = time.monotonic()
    try:
        if not args.skip_cost:
            await runCost(reactor, args, work)
        if not args.skip_latency:
            results: dict[float, list[dict[str, Any]]] = {}
            try:
                for delay in (float(d) for d in args.delays.split(",")):
                    results[delay] = await runLatency(reactor, args, work, delay)
            finally:
                if results:
                    reportLatency(results)
    finally:
        await _common.runCleanups()
        print(
            f"\nfinished in {time.monotonic() - began:.0f} s"
            + (f"; kept {work}" if args.keep else "")
        )


if __name__ == "__main__":
    _common.runMain(main)
