#!/usr/bin/env python3
"""
Crawling a simulated federation end to end from one seed, and how fast a
link change on a publisher reaches the aggregator's graph store.

A simulator process (C{bench/_simfed.py simulator}) serves N domains
C{d00000.sim} ... on one loopback address behind one of our s2s services
(TLS and dialback for every stream, each domain its own streams). Each
domain lists C{urn:xmpp:serverinfo:0} and the serverinfo form, and
publishes a XEP-0485 item on C{pubsub.dNNNNN.sim} node C{serverinfo}
whose named and anonymous peers copy the degree distribution of the public
snapshot in C{shared/data} (a few hubs, many leaves; named links are
mutual and connect every domain). An aggregator process (an ordinary node,
C{crawl=True}, seeded with C{d00000.sim} only, a static route C{*.sim})
crawls it: it has to follow the names to find them all. The time runs
from the aggregator's start until the report of the N-th simulated domain
is stored.

How the aggregator's streams authenticate is the C{--modes} choice (each
mode is a separate crawl, in the same run, so that they compare):
C{sasl+bidi+mux} (the default) is C{sasl+bidi} below, and each simulated
domain presents a certificate of its own (chosen by SNI, from a CA the
aggregator trusts) for it and its pub-sub service, so that the aggregator
carries C{pubsub.dNNNNN.sim} over its stream to C{dNNNNN.sim} (XEP-0220
target multiplexing): one stream per domain. C{sasl+bidi} gives the
aggregator a certificate from a
throw-away CA the simulator trusts, so its streams use SASL EXTERNAL, and
both sides use bidirectional streams (XEP-0288): the simulated domains
answer over the aggregator's streams, two streams per domain (to
C{dNNNNN.sim} and to C{pubsub.dNNNNN.sim}); C{sasl} is the same without
XEP-0288 (four streams per domain: each answer needs a stream of its own);
C{dialback} has self-signed certificates on both sides and no XEP-0288
(four streams, each authenticated by dialback, verified over the others);
C{dialback+bidi} the same with XEP-0288 (the simulated domain verifies the
aggregator's key over a stream of its own, which it gives up once the
aggregator's stream is authorised: two streams stay per domain).

Then, for freshness, the simulator changes one domain's item (a link added
or removed) and sends the notification to the aggregator's subscription;
the time runs until the aggregator's graph store has committed it.

Usage: python bench/crawl_federation.py [--domains 1000,10000]
       [--modes sasl+bidi+mux,sasl+bidi,sasl,dialback+bidi,dialback]
       [--concurrency 16] [--publish] [--no-anonymous] [--freshness 5]
       [--gc twistd|default] [--idle-timeout SECONDS]
       [--profile] [--timeout 900] [--keep] [--smoke]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from _common import Child, ask, cpuSeconds, freePort, printTable, sleep, waitEvent
from _prosody import quietLoopbackAddresses
from _simfed import domainName

NODE = str(Path(__file__).resolve().parent / "_simfed.py")
AGGREGATOR = "agg.example"
#: Mode -> (the aggregator has a certificate the simulator trusts, both
#: use XEP-0288, each simulated domain has a certificate the aggregator
#: trusts for it and its pub-sub service, which the aggregator then
#: multiplexes onto the stream to the domain).
MODES = {
    "sasl+bidi+mux": (True, True, True),
    "sasl+bidi": (True, True, False),
    "sasl": (True, False, False),
    "dialback+bidi": (False, True, False),
    "dialback": (False, False, False),
}


def streamsPerDomain(mode: str) -> int:
    """
    @return: the s2s streams one crawled domain keeps open in C{mode}.
    """
    _, bidi, multiplexed = MODES[mode]
    return (1 if multiplexed else 2) * (1 if bidi else 2)


def peakKiB(pid: int) -> int:
    """
    @return: the peak resident set size of C{pid} in KiB (C{VmHWM}).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def spawn(reactor: Any, name: str, work: Path, *args: str) -> Child:
    """
    Start one process of C{_simfed.py}; the cleanups stop it.
    """
    dataDir = work / name
    dataDir.mkdir(parents=True, exist_ok=True)
    child = Child.spawn(
        reactor, name, [sys.executable, NODE, *args, "--data-dir", str(dataDir)], work
    )
    _common.addCleanup(lambda: child.stop(reactor))
    return child


def idleTimeout(given: float | None, count: int, streams: int) -> float:
    """
    @return: the C{--idle-timeout} for a crawl of C{count} domains with
        C{streams} streams each: the one C{given}, else the node's default
        (600 s) unless the streams that stay open that long would not fit
        in the hard limit on open files, then 60 s.
    """
    if given is not None:
        return given
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and streams * count + 1000 > hard:
        print(
            f"  {count} domains keep {streams * count} streams open for 600 s, more than the "
            f"{hard} open files allowed here: --idle-timeout 60 for this size",
            flush=True,
        )
        return 60.0
    return 600.0


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


async def runOne(
    reactor: Any, args: argparse.Namespace, work: Path, count: int, mode: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """
    Crawl a federation of C{count} domains in C{mode}, then measure
    freshness.

    @return: the crawl's figures and one row per freshness repeat.
    """
    run = work / f"n{count}-{mode}"
    run.mkdir()
    idle = idleTimeout(args.idle_timeout, count, streamsPerDomain(mode))
    certified, bidi, multiplexed = MODES[mode]
    simModeArgs: list[str] = [] if bidi else ["--no-bidi"]
    aggModeArgs = list(simModeArgs)
    if certified:
        from tests.pki import TestCA

        ca = TestCA(run / "ca")
        cert, key = ca.issue([AGGREGATOR, f"pubsub.{AGGREGATOR}"], name="aggregator")
        simModeArgs += ["--ca", str(ca.caPath)]
        aggModeArgs += ["--tls-cert", str(cert), "--tls-key", str(key)]
    if multiplexed:
        simModeArgs += ["--certify-domains", str(run / "simca")]
        aggModeArgs += ["--ca", str(run / "simca" / "ca.crt")]
    port = freePort("127.0.0.1")
    simAddress, aggAddress = quietLoopbackAddresses(2, port)
    simArgs = [
        "--domains",
        str(count),
        "--seed",
        str(args.seed),
        "--idle-timeout",
        str(idle),
    ]
    if args.no_anonymous:
        simArgs.append("--no-anonymous")
    simArgs += ["--gc", args.gc, *simModeArgs]
    sim = spawn(
        reactor,
        "simulator",
        run,
        "simulator",
        "--address",
        simAddress,
        "--s2s-port",
        str(port),
        "--route",
        f"{AGGREGATOR}={aggAddress}:{port}",
        "--route",
        f"*.{AGGREGATOR}={aggAddress}:{port}",
        *simArgs,
    )
    ready = await waitEvent(reactor, sim, "ready", 300)
    assert sim.pid is not None
    simCPU0 = cpuSeconds(sim.pid)
    aggArgs = [
        "--concurrency",
        str(args.concurrency),
        "--expect",
        str(count),
        "--domain",
        AGGREGATOR,
        "--idle-timeout",
        str(idle),
        "--gc",
        args.gc,
        *aggModeArgs,
    ]
    if args.publish:
        aggArgs.append("--publish")
    if args.profile:
        aggArgs.append("--profile")
    agg = spawn(
        reactor,
        "aggregator",
        run,
        "aggregator",
        "--address",
        aggAddress,
        "--s2s-port",
        str(port),
        "--route",
        f"*.sim={simAddress}:{port}",
        *aggArgs,
    )
    started = await waitEvent(reactor, agg, "started", 120)
    try:
        done = await waitEvent(reactor, agg, "done", args.timeout)
    except RuntimeError:
        last = [e for e in agg.events if e.get("event") == "progress"][-1:]
        print(f"  the crawl did not finish; last progress: {last}", flush=True)
        raise
    assert agg.pid is not None
    simCPU = cpuSeconds(sim.pid) - simCPU0
    aggCPU = cpuSeconds(agg.pid)
    wall = done["t"] - started["t"]
    quarters = [f"{t:.1f}" for t in done["quarters"]]
    stats = await ask(reactor, sim, {"stats": {}}, "stats")
    # Let the last stores land before counting.
    await sleep(reactor, 1.0)
    counts = await ask(reactor, agg, {"counts": {}}, "counts", 120)
    result = {
        "domains": count,
        "mode": mode,
        "idle": idle,
        "namedLinks": ready["namedLinks"],
        "anonymous": ready["anonymous"],
        "maxNamed": ready["maxNamed"],
        "wall": wall,
        "rate": count / wall,
        "quarters": quarters,
        "aggCPU": aggCPU,
        "simCPU": simCPU,
        "aggPeak": peakKiB(agg.pid),
        "simPeak": peakKiB(sim.pid),
        "fetched": done["fetched"],
        "links": done["links"],
        "subscribed": stats["subscribed"],
        "requests": stats["requests"],
        "counts": counts,
    }
    print(
        f"  {count} domains, {mode}: {wall:.1f} s, {count / wall:.0f} domains/s; "
        f"aggregator CPU {aggCPU:.1f} s, simulator CPU {simCPU:.1f} s",
        flush=True,
    )
    cpuSim, cpuAgg = cpuSeconds(sim.pid), cpuSeconds(agg.pid)
    again = await ask(reactor, agg, {"recrawl": {}}, "recrawled", args.timeout)
    result["warm"] = again["seconds"]
    result["warmAggCPU"] = cpuSeconds(agg.pid) - cpuAgg
    result["warmSimCPU"] = cpuSeconds(sim.pid) - cpuSim
    result["warmNewStreams"] = again["streams"]
    fresh = await freshness(reactor, args, sim, agg, count)
    await agg.stop(reactor, 30)
    await sim.stop(reactor, 30)
    return result, fresh


async def freshness(
    reactor: Any, args: argparse.Namespace, sim: Child, agg: Child, count: int
) -> list[dict[str, Any]]:
    """
    Toggle a link of a random domain C{--freshness} times and time each
    change from the simulator's notification to the aggregator's commit.
    """
    rng = random.Random(args.seed + count)
    rows = []
    for _ in range(args.freshness):
        i = rng.randrange(count)
        peer = rng.randrange(count)
        while peer == i:
            peer = rng.randrange(count)
        names = await ask(reactor, sim, {"names": {"domain": i, "peer": peer}}, "names")
        present = not names["names"]
        await ask(
            reactor,
            agg,
            {"watch": {"domain": domainName(i), "peer": domainName(peer), "present": present}},
            "watching",
        )
        since = len(agg.events)
        changed = await ask(reactor, sim, {"change": {"domain": i, "peer": peer}}, "changed")
        if not changed["sent"]:
            raise RuntimeError(f"{domainName(i)} has no subscriber: nothing to notify")
        seen = await waitEvent(reactor, agg, "seen", 60, since)
        rows.append(
            {
                "domain": domainName(i),
                "change": ("+" if present else "-") + domainName(peer),
                "seconds": seen["t"] - changed["t"],
            }
        )
        await sleep(reactor, 0.2)
    return rows


def report(
    results: list[dict[str, Any]], fresh: dict[tuple[int, str], list[dict[str, Any]]]
) -> None:
    """
    Print the tables.
    """
    rows = []
    for r in results:
        rows.append(
            [
                r["domains"],
                r["mode"],
                f"{r['idle']:.0f}",
                f"{r['wall']:.1f}",
                f"{r['rate']:.0f}",
                " / ".join(r["quarters"]),
                f"{r['aggCPU']:.1f}",
                f"{r['simCPU']:.1f}",
                mib(r["aggPeak"]),
                mib(r["simPeak"]),
            ]
        )
    printTable(
        "Crawl from one seed (time from the aggregator's start to the last report stored)",
        [
            "domains",
            "mode",
            "idle timeout s",
            "wall s",
            "domains/s",
            "25/50/75 % at s",
            "aggregator CPU s",
            "simulator CPU s",
            "aggregator peak RSS MiB",
            "simulator peak RSS MiB",
        ],
        rows,
    )
    rows = [
        [
            r["domains"],
            r["mode"],
            f"{r['wall']:.1f}",
            f"{r['warm']:.1f}",
            f"{r['domains'] / r['warm']:.0f}",
            f"{r['warmAggCPU']:.1f}",
            f"{r['warmSimCPU']:.1f}",
            r["warmNewStreams"],
            f"{r['wall'] / r['warm']:.1f}",
        ]
        for r in results
        if "warm" in r
    ]
    printTable(
        "Baseline: the same discoveries and stores again over the streams already up",
        [
            "domains",
            "mode",
            "crawl s",
            "again s",
            "domains/s",
            "aggregator CPU s",
            "simulator CPU s",
            "new streams",
            "crawl / again",
        ],
        rows,
    )
    rows = []
    for r in results:
        c = r["counts"]
        fetched = ", ".join(f"{k} {v}" for k, v in sorted(r["fetched"].items()))
        rows.append(
            [
                r["domains"],
                r["mode"],
                f"{r['namedLinks']} ({r['maxNamed']})",
                r["anonymous"],
                c["domains"],
                c["publishing"],
                c["confirmedPairs"],
                c["namedLinks"],
                c["anonymousLinks"],
                r["subscribed"],
                r["links"],
                fetched,
            ]
        )
    printTable(
        "What was crawled (simulated links vs the aggregator's store)",
        [
            "domains",
            "mode",
            "sim named links (max per domain)",
            "sim anonymous peers",
            "stored domains",
            "publishing",
            "confirmed pairs",
            "named links",
            "anonymous links",
            "subscriptions",
            "s2s links at end",
            "fetches by status",
        ],
        rows,
    )
    rows = []
    base = {r["domains"]: r for r in results if r["mode"] == "dialback"}
    for r in results:
        b = base.get(r["domains"])
        if b is None or b is r:
            continue
        rows.append(
            [
                r["domains"],
                r["mode"],
                f"{r['wall'] / b['wall']:.2f}",
                f"{r['aggCPU'] / b['aggCPU']:.2f}",
                f"{r['simCPU'] / b['simCPU']:.2f}",
                f"{r['aggPeak'] / b['aggPeak']:.2f}",
            ]
        )
    if rows:
        printTable(
            "Against dialback without XEP-0288 in the same run (ratio; lower is better)",
            ["domains", "mode", "wall", "aggregator CPU", "simulator CPU", "aggregator peak RSS"],
            rows,
        )
    rows = []
    for (count, mode), repeats in fresh.items():
        if not repeats:
            continue
        times = [f["seconds"] * 1000 for f in repeats]
        rows.append(
            [
                count,
                mode,
                len(times),
                f"{statistics.median(times):.1f}",
                f"{min(times):.1f}",
                f"{max(times):.1f}",
            ]
        )
    if rows:
        printTable(
            "Freshness: notification sent by the publisher -> change committed in the "
            "aggregator's graph store, ms",
            ["domains", "mode", "changes", "median", "min", "max"],
            rows,
        )


async def main(reactor: Any, argv: list[str]) -> None:
    """
    Run the benchmark and print the figures.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--domains", default="1000,10000", help="federation sizes, comma-separated")
    parser.add_argument(
        "--modes",
        default="sasl+bidi+mux",
        help=f"how the streams authenticate, comma-separated, each a crawl: {', '.join(MODES)}",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="the aggregator's --crawl-concurrency"
    )
    parser.add_argument(
        "--publish", action="store_true", help="the aggregator runs its XEP-0485 publisher too"
    )
    parser.add_argument(
        "--no-anonymous", action="store_true", help="items name only the simulated peers"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help="--idle-timeout of both processes (default: the node's 600 s, or 60 s when "
        "the streams per domain would exceed the open-files limit)",
    )
    parser.add_argument(
        "--gc",
        choices=["twistd", "default"],
        default="twistd",
        help="garbage collector settings of both processes: twistd xmppnetgraph's "
        "(tap.tuneGarbageCollector) or Python's defaults",
    )
    parser.add_argument("--freshness", type=int, default=5, help="link changes timed per size")
    parser.add_argument("--seed", type=int, default=485, help="seed of the generated graph")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the aggregator (aggregator.prof)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per crawl")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = _common.parseArguments(
        parser, argv, ["--domains", "50", "--freshness", "2", "--modes", "sasl+bidi+mux,dialback"]
    )
    modes = args.modes.split(",")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown --modes {', '.join(sorted(unknown))}; known: {', '.join(MODES)}")
    work = _common.workDirectory(reactor, "xng-bench-crawl-", args.keep)
    began = time.monotonic()
    results: list[dict[str, Any]] = []
    fresh: dict[tuple[int, str], list[dict[str, Any]]] = {}
    try:
        for count in (int(n) for n in args.domains.split(",")):
            for mode in modes:
                result, repeats = await runOne(reactor, args, work, count, mode)
                results.append(result)
                fresh[count, mode] = repeats
    finally:
        await _common.runCleanups()
        report(results, fresh)
        print(
            f"\nfinished in {time.monotonic() - began:.0f} s"
            + (f"; kept {work}" if args.keep else "")
        )


if __name__ == "__main__":
    _common.runMain(main)
