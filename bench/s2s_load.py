#!/usr/bin/env python3
"""
Streams held under load: memory per idle authenticated s2s stream, how fast
streams are established, and the CPU an idle server spends holding them,
for our node and for Prosody driven by the same generator in the same run.

A target node runs as users run it (C{twistd -n xmppnetgraph ...}, its
own process) with C{--ca-file} of a throw-away test CA. A load
generator process (an xmppnetgraph S2SService, see C{_node.py loadgen})
holds a certificate from that CA for C{*.load.example} and opens incoming
streams to the target from distinct domains C{n0.load.example},
C{n1.load.example}, ...: TCP, STARTTLS (TLS 1.3), SASL EXTERNAL, no
dialback. After a warm-up of a few streams, the target's RSS
(C{/proc/PID/status} VmRSS) is the baseline; streams are then added in
steps until N, each step confirmed by the target's own C{GET /api/links},
and the RSS growth per stream is printed. All N up, the streams are held for
C{--hold} seconds (keepalives flowing) while the target's CPU time is read
from C{/proc/PID/stat}; then every stream must still be there.

Then (unless C{--no-prosody}) the same load generator does the same to a
Prosody process (C{tests.prosody.ProsodyPeer}, logging at info) that
trusts the same CA.

Usage: python bench/s2s_load.py [-n 1000] [--steps 4] [--warmup 20]
       [--concurrency 50] [--settle 2] [--hold 60] [--no-prosody] [--keep]
       [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from _common import REPO, Child, cpuSeconds, freePort, printTable, rssKiB, sleep
from twisted.web.client import Agent, readBody

# Agent + readBody on Twisted 26 warns about abortConnection; harmless here.
warnings.filterwarnings("ignore", message="Using readBody with a transport")

ADDRESS = "127.0.0.1"
SUFFIX = "load.example"


class APIBroken(Exception):
    """
    The target's web API answered, but not with a link table.
    """


async def getLinks(reactor: Any, url: str) -> list[dict[str, Any]]:
    """
    @return: the C{links} of C{GET url}.
    @raise APIBroken: if the answer is not a 200 with a JSON link table.
    """
    response = await Agent(reactor).request(b"GET", url.encode())
    body = await readBody(response)
    if response.code != 200:
        raise APIBroken(f"GET {url} answered HTTP {response.code}: {body[:300]!r}")
    try:
        return list(json.loads(body)["links"])
    except (ValueError, KeyError, TypeError) as e:
        raise APIBroken(f"GET {url} answered {body[:300]!r}: {e}") from None


async def waitUntil(
    reactor: Any, what: str, check: Callable[[], Awaitable[bool]], timeout: float
) -> None:
    """
    Poll C{check} every 0.2 s until it is true.

    @raise RuntimeError: after C{timeout} seconds.
    """
    waited = 0.0
    while True:
        try:
            if await check():
                return
        except SystemExit as e:
            raise RuntimeError(str(e)) from None
        except APIBroken:
            raise
        except Exception:
            pass
        if waited >= timeout:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        await sleep(reactor, 0.2)
        waited += 0.2


class Target:
    """
    The measured server: its PID and how many incoming load streams it has.
    """

    name = ""
    pid = 0
    domain = ""
    address = ADDRESS
    port = 0

    async def countStreams(self, reactor: Any) -> int:
        """
        @return: authenticated incoming streams from the load domains.
        """
        raise NotImplementedError


class OurTarget(Target):
    """
    An xmppnetgraph node started with twistd.
    """

    name = "xmppnetgraph"

    def __init__(self, reactor: Any, work: Path, caPath: Path, extra: Sequence[str] = ()) -> None:
        """
        @param extra: more command-line options for the node.
        """
        self.domain = "target.example"
        self.port = freePort(ADDRESS)
        self.webPort = freePort(ADDRESS)
        self.url = f"http://{ADDRESS}:{self.webPort}/api/links"
        argv = [
            sys.executable,
            "-c",
            "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
            "-n",
            "--pidfile=",
            "--logfile",
            str(work / "target.log"),
            "xmppnetgraph",
            "--domain",
            self.domain,
            "--s2s",
            f"tcp:{self.port}:interface={ADDRESS}",
            "--web",
            f"tcp:{self.webPort}:interface={ADDRESS}",
            "--data-dir",
            str(work / "target"),
            "--ca-file",
            str(caPath),
            "--no-crawl",
            "--no-publish",
            *extra,
        ]
        self.child = Child.spawn(reactor, "target", argv, work)
        assert self.child.pid is not None
        self.pid = self.child.pid
        self.authMethods: dict[str, int] = {}

    async def ready(self, reactor: Any) -> None:
        """
        Wait until the web API answers.
        """

        async def answers() -> bool:
            if not self.child.alive():
                raise SystemExit(f"the target exited; see {self.child.stderrPath}")
            await getLinks(reactor, self.url)
            return True

        await waitUntil(reactor, "the target's web API", answers, 30)

    async def countStreams(self, reactor: Any) -> int:
        """
        Count incoming TLS + SASL EXTERNAL links from the load domains in
        C{GET /api/links}.
        """
        links = await getLinks(reactor, self.url)
        mine = [
            link
            for link in links
            if link["direction"] == "incoming" and link["domain"].endswith("." + SUFFIX)
        ]
        methods: dict[str, int] = {}
        for link in mine:
            key = f"{link['auth']}/{link['tls']}"
            methods[key] = methods.get(key, 0) + 1
        self.authMethods = methods
        # Only TLS + SASL EXTERNAL links count towards the target.
        return sum(1 for link in mine if link["auth"] == "sasl-external" and link["tls"])

    async def stop(self, reactor: Any) -> None:
        """
        Stop the twistd process.
        """
        await self.child.stop(reactor, grace=10)


class ProsodyTarget(Target):
    """
    A Prosody process (tests.prosody.ProsodyPeer) that trusts the test CA,
    logging at info while measured.
    """

    name = "Prosody"

    def __init__(self, work: Path, caPath: Path, certPath: Path, keyPath: Path) -> None:
        from _prosody import quietLoopbackAddresses

        from tests import prosody

        self.domain = "p.example"
        self.address = quietLoopbackAddresses(1)[0]
        self.port = freePort(self.address)
        self.peer = prosody.ProsodyPeer(
            work / "prosody",
            self.domain,
            self.address,
            certPath=certPath,
            keyPath=keyPath,
            caPath=caPath,
            s2sPort=self.port,
            c2sPort=freePort(self.address),
        )
        _common.addCleanup(self.peer.stop)
        self.authMethods: dict[str, int] = {}

    async def start(self, reactor: Any) -> None:
        """
        Start Prosody, note its PID and turn its log down to info.
        """
        from _prosody import setProsodyLogLevel

        await self.peer.start()
        assert self.peer.pid is not None
        self.pid = self.peer.pid
        _common.trackPID(self.pid)
        await setProsodyLogLevel(reactor, self.peer, "info")

    async def countStreams(self, reactor: Any) -> int:
        """
        Count the load domains' incoming streams that Prosody's log shows
        as complete and not closed (Prosody has no link API to ask without
        extra modules), cross-checked with the established TCP connections
        to its s2s port.
        """
        opened = closed = external = 0
        for line in self.peer.logPath.read_text(errors="replace").splitlines():
            if f".{SUFFIX}->{self.domain} " in line and "Incoming s2s" in line:
                if line.endswith(" complete"):
                    opened += 1
                elif " closed" in line:
                    closed += 1
            elif "Accepting SASL EXTERNAL identity from" in line and line.endswith(f".{SUFFIX}"):
                external += 1
        established = 0
        hexPort = f"{self.port:04X}"
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(":" + hexPort) and fields[3] == "01":
                established += 1
        live = opened - closed
        self.authMethods = {"sasl-external (Prosody log)": external, "established TCP": established}
        return live if live == established else -1

    async def stop(self, reactor: Any) -> None:
        """
        Stop Prosody.
        """
        pid = self.pid
        await self.peer.stop()
        if pid:
            _common.untrackPID(pid)


async def measure(
    reactor: Any,
    args: argparse.Namespace,
    work: Path,
    target: Target,
    certPath: Path,
    keyPath: Path,
) -> tuple[list[list[object]], dict[str, float]]:
    """
    Open warm-up and then N streams to C{target}, then hold them.

    @return: the RSS table rows, and the summary: C{kib} per stream,
        C{rate} (streams established per second of opening), C{idleCPU}
        (percent of one core while holding), C{held}.
    """
    loadgen = Child.spawn(
        reactor,
        f"loadgen-{target.name}",
        [
            sys.executable,
            str(REPO / "bench" / "_node.py"),
            "loadgen",
            "--domain",
            SUFFIX,
            "--address",
            ADDRESS,
            "--s2s-port",
            str(freePort(ADDRESS)),
            "--data-dir",
            str(work / f"loadgen-{target.name}"),
            "--route",
            f"{target.domain}={target.address}:{target.port}",
            "--target",
            target.domain,
            "--suffix",
            SUFFIX,
            "--cert",
            str(certPath),
            "--key",
            str(keyPath),
            "--concurrency",
            str(args.concurrency),
        ],
        work,
    )
    _common.addCleanup(lambda: loadgen.stop(reactor))
    rows: list[list[object]] = []
    try:
        await loadgen.waitFor("ready", 30, reactor)
        total = 0
        openSeconds = 0.0

        async def openStreams(k: int) -> None:
            nonlocal total, openSeconds
            loadgen.events.clear()
            loadgen.writeLine({"open": k})
            opened = await loadgen.waitFor("opened", 60 + k / 5, reactor)
            if opened["failures"]:
                raise RuntimeError(
                    f"{opened['failures']} of {k} streams failed, e.g. {opened['firstFailures']}"
                )
            if set(opened["methods"]) != {"sasl-external"}:
                raise RuntimeError(f"unexpected authentication methods {opened['methods']}")
            total += k
            openSeconds += opened["seconds"]

            async def allThere() -> bool:
                return await target.countStreams(reactor) == total

            await waitUntil(reactor, f"{total} links on {target.name}", allThere, 60)
            print(f"{target.name}: {total} streams up ({opened['seconds']:.1f} s for the last {k})")
            sys.stdout.flush()

        await openStreams(args.warmup)
        await sleep(reactor, args.settle)
        base = rssKiB(target.pid)
        rows.append([target.name, total, 0, f"{base / 1024:.1f}", "", ""])
        step = max(1, args.n // args.steps)
        added = 0
        openSeconds = 0.0
        while added < args.n:
            k = min(step, args.n - added)
            await openStreams(k)
            added += k
            await sleep(reactor, args.settle)
            rss = rssKiB(target.pid)
            rows.append(
                [
                    target.name,
                    total,
                    added,
                    f"{rss / 1024:.1f}",
                    f"{(rss - base) / 1024:.1f}",
                    f"{(rss - base) / added:.1f}",
                ]
            )
        rss = rssKiB(target.pid)
        cpu = cpuSeconds(target.pid)
        print(f"{target.name}: holding {total} streams for {args.hold:g} s")
        sys.stdout.flush()
        await sleep(reactor, args.hold)
        idleCPU = (cpuSeconds(target.pid) - cpu) / args.hold * 100
        count = await target.countStreams(reactor)
        if count != total:
            raise RuntimeError(f"{target.name} lost streams: {count} of {total} left")
        methods = getattr(target, "authMethods", {})
        if methods:
            print(f"{target.name}: incoming load links by auth/TLS: {methods}")
        summary = {
            "kib": (rss - base) / max(added, 1),
            "rate": added / openSeconds if openSeconds else 0.0,
            "idleCPU": idleCPU,
            "held": float(count),
        }
        return rows, summary
    finally:
        await loadgen.stop(reactor)


def printSummary(args: argparse.Namespace, summaries: dict[str, dict[str, float]]) -> None:
    """
    Print the load summary, and ours against Prosody as ratios.
    """
    rows: list[list[object]] = [
        [
            name,
            f"{s['held']:.0f}",
            f"{s['kib']:.1f}",
            f"{s['rate']:.0f}",
            f"{s['idleCPU']:.2f}",
        ]
        for name, s in summaries.items()
    ]
    ours, prosody = summaries.get("xmppnetgraph"), summaries.get("Prosody")
    if ours and prosody:

        def ratio(key: str) -> str:
            return f"{ours[key] / prosody[key]:.2f}" if prosody[key] else "-"

        rows.append(["ours / Prosody", "", ratio("kib"), ratio("rate"), ratio("idleCPU")])
    printTable(
        f"Streams held for {args.hold:g} s after opening them at --concurrency"
        f" {args.concurrency} (rate: streams established per second of opening;"
        " idle CPU: percent of one core while holding)",
        ["server", "held", "KiB/stream", "streams/s", "idle CPU %"],
        rows,
    )
    if not prosody:
        print("(Prosody not measured: --no-prosody)")


async def main(reactor: Any, argv: list[str]) -> None:
    """
    Measure and print.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-n", type=int, default=1000, help="streams to add after the warm-up (default 1000)"
    )
    parser.add_argument(
        "--steps", type=int, default=4, help="RSS readings on the way to N (default 4)"
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="streams opened before the baseline (default 20)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="handshakes in flight (default 50)"
    )
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds to wait before each RSS reading"
    )
    parser.add_argument(
        "--no-prosody", action="store_true", help="do not measure a Prosody process"
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=60.0,
        help="seconds to hold all streams while measuring idle CPU (default 60)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = _common.parseArguments(
        parser,
        argv,
        [
            "-n",
            "20",
            "--steps",
            "1",
            "--warmup",
            "5",
            "--concurrency",
            "10",
            "--settle",
            "0.2",
            "--hold",
            "1",
        ],
    )

    from tests.pki import TestCA

    work = _common.workDirectory(
        reactor, "xng-bench-mem-", args.keep, f"N={args.n} after {args.warmup} warm-up streams"
    )
    ca = TestCA(work / "ca")
    certPath, keyPath = ca.issue([f"*.{SUFFIX}"], name="load", srvIDs=False, xmppAddrs=False)
    rows: list[list[object]] = []
    summaries: dict[str, dict[str, float]] = {}
    try:
        ours = OurTarget(reactor, work, ca.caPath)
        _common.addCleanup(lambda: ours.stop(reactor))
        await ours.ready(reactor)
        oursRows, summaries[ours.name] = await measure(reactor, args, work, ours, certPath, keyPath)
        rows += oursRows
        await ours.stop(reactor)
        if not args.no_prosody:
            pCert, pKey = ca.issue(["p.example"], name="p.example")
            prosody = ProsodyTarget(work, ca.caPath, pCert, pKey)
            await prosody.start(reactor)
            prosodyRows, summaries[prosody.name] = await measure(
                reactor, args, work, prosody, certPath, keyPath
            )
            rows += prosodyRows
        printTable(
            "RSS of the receiving server with idle authenticated incoming s2s streams"
            " (TLS, SASL EXTERNAL)",
            ["server", "streams", "added", "RSS MiB", "growth MiB", "KiB/stream"],
            rows,
        )
        printSummary(args, summaries)
    finally:
        await _common.runCleanups()
        if args.keep:
            print(f"kept {work}")


if __name__ == "__main__":
    _common.runMain(main)
