#!/usr/bin/env python3
"""
A storm of new s2s streams: R new incoming streams a second for S seconds
(default 200 for 30 s), each started on time whatever the others do, to a
node run as users run it (C{twistd -n xmppnetgraph}); then all of them
closed.

The same target and load generator as C{s2s_load.py} (TLS 1.3, SASL
EXTERNAL, each stream from its own domain C{n<i>.load.example}). Printed:
how each stream ended (served, or refused with which stream error, or
failed otherwise: a storm passes when every stream is served or refused
with a stream error), handshake times of the served ones (p50, p99, max),
the target's CPU during the storm, and its RSS before, at the peak (read
every 0.5 s), with the streams held, and after they are closed
(C{--settle} seconds later): memory should return to its level. Each of
C{--rounds} storms in turn against the same target: the last column,
against the RSS before the first, shows whether storms leave memory
behind.

Usage: python bench/s2s_storm.py [--rate 200] [--seconds 30] [--settle 10]
       [--rounds 2] [--node-option=--max-unauthenticated-per-address=1000 ...] [--keep]
       [--smoke]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from _common import cpuSeconds, freePort, printTable, rssKiB, sleep
from s2s_load import ADDRESS, SUFFIX, OurTarget, getLinks, spawnLoadgen, waitUntil


async def storm(
    reactor: Any,
    args: argparse.Namespace,
    work: Path,
    target: OurTarget,
    cert: Path,
    key: Path,
    number: int,
    baseline: int,
) -> list[list[object]]:
    """
    Run one storm against C{target}; @return: the table rows.

    @param baseline: the target's RSS before the first storm, in KiB.
    """
    loadgen = spawnLoadgen(
        reactor, f"loadgen{number}", work, target, (ADDRESS, freePort(ADDRESS)), cert, key
    )
    _common.addCleanup(lambda: loadgen.stop(reactor))
    await loadgen.waitFor("ready", 30, reactor)
    before = rssKiB(target.pid)
    cpu = cpuSeconds(target.pid)
    peak = [before]
    sampling = [True]

    async def sample() -> None:
        while sampling[0]:
            peak[0] = max(peak[0], rssKiB(target.pid))
            await sleep(reactor, 0.5)

    sampler = defer.Deferred.fromCoroutine(sample())
    loadgen.writeLine({"storm": args.rate, "seconds": args.seconds})
    result = await loadgen.waitFor("stormed", args.seconds + 240, reactor)
    stormCPU = cpuSeconds(target.pid) - cpu
    held = rssKiB(target.pid)
    served = result["outcomes"].get("served", 0)

    async def linksThere() -> bool:
        links = await getLinks(reactor, target.url)
        return sum(1 for link in links if link["direction"] == "incoming") == served

    await waitUntil(reactor, f"{served} links on the target", linksThere, 60)
    loadgen.writeLine({"closeAll": True})
    await loadgen.waitFor("closed", 60, reactor)

    async def linksGone() -> bool:
        return not [
            link for link in await getLinks(reactor, target.url) if link["direction"] == "incoming"
        ]

    await waitUntil(reactor, "the target's links to close", linksGone, 60)
    await sleep(reactor, args.settle)
    after = rssKiB(target.pid)
    sampling[0] = False
    await sampler
    if not target.child.alive():
        raise RuntimeError("the target died during the storm")
    await loadgen.stop(reactor)

    rows: list[list[object]] = [
        [what, n, f"{n / result['requested'] * 100:.1f} %"]
        for what, n in sorted(result["outcomes"].items(), key=lambda kv: -kv[1])
    ]
    printTable(
        f"{result['requested']} streams started at {args.rate:g}/s for {args.seconds:g} s"
        f" (took {result['seconds']:.1f} s to settle)",
        ["outcome", "streams", "share"],
        rows,
    )
    failed = sum(n for what, n in result["outcomes"].items() if what != "served")
    refused = sum(n for what, n in result["outcomes"].items() if what.startswith("stream error"))
    print(
        "every stream served or refused with a stream error"
        if failed == refused
        else f"{failed - refused} streams failed without a stream error"
    )
    return [
        [
            number,
            f"{served}/{result['requested']}",
            f"{result['handshakeP50'] * 1000:.0f}",
            f"{result['handshakeP99'] * 1000:.0f}",
            f"{result['handshakeMax'] * 1000:.0f}",
            f"{stormCPU / result['seconds'] * 100:.0f}",
            f"{before / 1024:.1f}",
            f"{peak[0] / 1024:.1f}",
            f"{held / 1024:.1f}",
            f"{after / 1024:.1f}",
            f"{(after - baseline) / 1024:+.1f}",
        ]
    ]


async def main(reactor: Any, argv: list[str]) -> None:
    """
    Start the target, run the storm, print.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0, help="new streams a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the storm lasts")
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds after closing before the last RSS"
    )
    parser.add_argument(
        "--node-option",
        action="append",
        default=[],
        help="an option for the target node, e.g. --node-option=--max-unauthenticated=20000",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="storms one after the other (default 2)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = _common.parseArguments(
        parser, argv, ["--rate", "20", "--seconds", "1", "--settle", "0.5", "--rounds", "1"]
    )

    from tests.pki import TestCA

    work = _common.workDirectory(
        reactor, "xng-bench-storm-", args.keep, f"{args.rate:g} streams/s for {args.seconds:g} s"
    )
    ca = TestCA(work / "ca")
    certPath, keyPath = ca.issue([f"*.{SUFFIX}"], name="load", srvIDs=False, xmppAddrs=False)
    try:
        target = OurTarget(reactor, work, ca.caPath, args.node_option)
        _common.addCleanup(lambda: target.stop(reactor))
        await target.ready(reactor)
        baseline = rssKiB(target.pid)
        rows = []
        for number in range(1, args.rounds + 1):
            rows += await storm(reactor, args, work, target, certPath, keyPath, number, baseline)
        printTable(
            "The target through the storm (handshakes of the served streams; CPU in percent of"
            " one core while it lasted; RSS in MiB)",
            [
                "round",
                "served",
                "p50 ms",
                "p99 ms",
                "max ms",
                "CPU %",
                "RSS before",
                "peak",
                "held",
                "after close",
                "after - first before",
            ],
            rows,
        )
        await target.stop(reactor)
    finally:
        await _common.runCleanups()
        if args.keep:
            print(f"kept {work}")


if __name__ == "__main__":
    _common.runMain(main)
