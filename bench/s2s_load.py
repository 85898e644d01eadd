#!/usr/bin/env python3
"""
Streams held under load: memory per idle authenticated s2s stream, incoming
and outgoing, how fast streams are established, and the CPU an idle server
spends holding them, for our node and for Prosody driven by the same
generator in the same run.

A target node runs as users run it (C{twistd -n xmppnetgraph ...}, its
own process) with C{--ca-file} of a throw-away test CA and a certificate
from it (C{--tls-cert}, C{--tls-key}). A load generator process (an
xmppnetgraph S2SService, see C{_node.py loadgen}) holds a certificate from
that CA for C{*.load.example} and opens incoming streams to the target from
distinct domains C{n0.load.example}, C{n1.load.example}, ...: TCP, STARTTLS
(TLS 1.3), SASL EXTERNAL, no dialback. After a warm-up of a few streams,
the target's RSS (C{/proc/PID/status} VmRSS) is the baseline; streams are
then added in steps until N, each step confirmed by the target's own
C{GET /api/links}, and the RSS growth per stream is printed.

Then the generator pings the target (XEP-0199) from M of those domains over
their streams; the target answers over streams of its own to each of them
(a static route C{*.load.example} to the generator, which accepts streams
to any domain under it), authenticated with SASL EXTERNAL too: the RSS step
of those M outgoing streams is measured on its own. A few outgoing streams
are part of the warm-up.

All up, the streams are held for C{--hold} seconds (keepalives flowing;
the idle timeout, which keepalives do not reset, is set beyond the run on
both sides) while the target's CPU time is read from C{/proc/PID/stat};
then every stream must still be there.

Then (unless C{--no-prosody}) the same load generator does the same to a
Prosody process (C{tests.prosody.ProsodyPeer}, logging at info) that
trusts the same CA and resolves the pinged domains to the generator.

Usage: python bench/s2s_load.py [-n 1000] [--outgoing 100] [--steps 4]
       [--warmup 20] [--concurrency 50] [--settle 2] [--hold 60]
       [--no-prosody] [--keep] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import socket
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
#: The idle timeout of the target and the generator: streams carry no
#: stanza while held, and keepalives do not reset it (default 600 s).
IDLE_TIMEOUT = 86400.0


def pingedIndexes(args: argparse.Namespace) -> tuple[range, range]:
    """
    @return: the indexes C{i} of the domains C{n<i>.load.example} the
        generator pings from: those of the warm-up (among the warm-up
        streams), those measured (among the first streams after the
        baseline).
    """
    warm = min(args.warmup, args.outgoing)
    return range(warm), range(args.warmup, args.warmup + args.outgoing)


def tcpEstablished(
    local: tuple[str, int] | None = None, remote: tuple[str, int] | None = None
) -> int:
    """
    @return: the established IPv4 TCP connections (C{/proc/net/tcp}) with
        this local address and port, or this remote one.
    """

    def hexAddress(address: tuple[str, int]) -> str:
        return f"{socket.inet_aton(address[0])[::-1].hex().upper()}:{address[1]:04X}"

    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] != "01":
            continue
        if local is not None and fields[1] == hexAddress(local):
            count += 1
        elif remote is not None and fields[2] == hexAddress(remote):
            count += 1
    return count


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
    The measured server: its PID, where it listens, where it finds the load
    domains (the generator's C{accept} address), and how many load streams
    it has.

    @ivar authMethods: how its load links authenticated, by direction, as
        the last L{countStreams} saw them.
    """

    name = ""
    pid = 0
    domain = ""
    address = ADDRESS
    port = 0
    accept: tuple[str, int] = (ADDRESS, 0)
    authMethods: dict[str, dict[str, int]] = {}

    async def countStreams(self, reactor: Any) -> tuple[int, int]:
        """
        @return: authenticated incoming streams from the load domains, and
            outgoing ones to them.
        """
        raise NotImplementedError


class OurTarget(Target):
    """
    An xmppnetgraph node started with twistd.
    """

    name = "xmppnetgraph"

    def __init__(
        self,
        reactor: Any,
        work: Path,
        caPath: Path,
        extra: Sequence[str] = (),
        *,
        certPath: Path | None = None,
        keyPath: Path | None = None,
    ) -> None:
        """
        @param extra: more command-line options for the node.
        @param certPath: the node's certificate (for C{target.example},
            from the CA), and C{keyPath} its key; without them, the node
            makes itself a self-signed one, and its outgoing streams cannot
            authenticate with SASL EXTERNAL.
        """
        self.domain = "target.example"
        self.port = freePort(ADDRESS)
        self.accept = (ADDRESS, freePort(ADDRESS))
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
            *(
                ["--tls-cert", str(certPath), "--tls-key", str(keyPath)]
                if certPath is not None and keyPath is not None
                else []
            ),
            "--route",
            f"*.{SUFFIX}={self.accept[0]}:{self.accept[1]}",
            "--idle-timeout",
            f"{IDLE_TIMEOUT:g}",
            "--no-crawl",
            "--no-publish",
            *extra,
        ]
        self.child = Child.spawn(reactor, "target", argv, work)
        assert self.child.pid is not None
        self.pid = self.child.pid
        self.authMethods = {}

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

    async def countStreams(self, reactor: Any) -> tuple[int, int]:
        """
        Count incoming and outgoing TLS + SASL EXTERNAL links with the load
        domains in C{GET /api/links}.
        """
        links = await getLinks(reactor, self.url)
        counts = {"incoming": 0, "outgoing": 0}
        methods: dict[str, dict[str, int]] = {"incoming": {}, "outgoing": {}}
        for link in links:
            direction = link["direction"]
            if direction not in counts or not link["domain"].endswith("." + SUFFIX):
                continue
            key = f"{link['auth']}/{link['tls']}"
            methods[direction][key] = methods[direction].get(key, 0) + 1
            # Only TLS + SASL EXTERNAL links count towards the target.
            if link["auth"] == "sasl-external" and link["tls"]:
                counts[direction] += 1
        self.authMethods = methods
        return counts["incoming"], counts["outgoing"]

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

    def __init__(
        self, work: Path, caPath: Path, certPath: Path, keyPath: Path, pinged: Sequence[int]
    ) -> None:
        """
        @param pinged: the indexes of the load domains the generator pings
            from: Prosody resolves those (and no other) to the generator,
            which listens on port 5269 of an address of its own, as Prosody
            dials.
        """
        from _prosody import quietLoopbackAddresses

        from tests import prosody

        self.domain = "p.example"
        self.address, acceptAddress = quietLoopbackAddresses(2)
        self.port = freePort(self.address)
        self.accept = (acceptAddress, 5269)
        self.peer = prosody.ProsodyPeer(
            work / "prosody",
            self.domain,
            self.address,
            certPath=certPath,
            keyPath=keyPath,
            caPath=caPath,
            s2sPort=self.port,
            c2sPort=freePort(self.address),
            hosts={f"n{i}.{SUFFIX}": acceptAddress for i in pinged},
        )
        _common.addCleanup(self.peer.stop)
        self.authMethods = {}

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

    async def countStreams(self, reactor: Any) -> tuple[int, int]:
        """
        Count the load domains' incoming streams, and the outgoing ones to
        them, that Prosody's log shows as complete and not closed (Prosody
        has no link API to ask without extra modules), cross-checked with
        the established TCP connections to its s2s port and to the
        generator's; a direction whose counts disagree counts as C{-1}.
        How the outgoing ones authenticated, the generator says (its
        C{pinged} event): Prosody logs that at debug only.
        """
        opened = {"Incoming": 0, "Outgoing": 0}
        closed = {"Incoming": 0, "Outgoing": 0}
        external = 0
        for line in self.peer.logPath.read_text(errors="replace").splitlines():
            if f".{SUFFIX}->{self.domain} " in line and "Incoming s2s" in line:
                direction = "Incoming"
            elif f"{self.domain}->n" in line and f".{SUFFIX} " in line and "Outgoing s2s" in line:
                direction = "Outgoing"
            else:
                if "Accepting SASL EXTERNAL identity from" in line and line.endswith(f".{SUFFIX}"):
                    external += 1
                continue
            if line.endswith(" complete"):
                opened[direction] += 1
            elif " closed" in line:
                closed[direction] += 1
        established = {
            "Incoming": tcpEstablished(local=(self.address, self.port)),
            "Outgoing": tcpEstablished(remote=self.accept),
        }
        self.authMethods = {
            "incoming": {
                "sasl-external (Prosody log)": external,
                "established TCP": established["Incoming"],
            },
            "outgoing": {"established TCP": established["Outgoing"]},
        }
        counts = []
        for direction in ("Incoming", "Outgoing"):
            live = opened[direction] - closed[direction]
            counts.append(live if live == established[direction] else -1)
        return counts[0], counts[1]

    async def stop(self, reactor: Any) -> None:
        """
        Stop Prosody.
        """
        pid = self.pid
        await self.peer.stop()
        if pid:
            _common.untrackPID(pid)


def spawnLoadgen(
    reactor: Any,
    name: str,
    work: Path,
    target: Target,
    listen: tuple[str, int],
    certPath: Path,
    keyPath: Path,
    extra: Sequence[str] = (),
) -> Child:
    """
    Start the load generator (C{_node.py loadgen}) for C{target}: its
    domains are C{n<i>.load.example}, with the certificate C{certPath}.

    @param name: the child's name (and its data directory's).
    @param listen: the address and port its own s2s listener takes.
    @param extra: more of its options.
    """
    return Child.spawn(
        reactor,
        name,
        [
            sys.executable,
            str(REPO / "bench" / "_node.py"),
            "loadgen",
            "--domain",
            SUFFIX,
            "--address",
            listen[0],
            "--s2s-port",
            str(listen[1]),
            "--data-dir",
            str(work / name),
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
            *extra,
        ],
        work,
    )


async def measure(
    reactor: Any,
    args: argparse.Namespace,
    work: Path,
    target: Target,
    certPath: Path,
    keyPath: Path,
    caPath: Path,
) -> tuple[list[list[object]], dict[str, float]]:
    """
    Open warm-up and then N incoming streams to C{target}, then make it
    open M outgoing ones, then hold them all.

    @return: the RSS table rows, and the summary: C{kibIn} and C{kibOut}
        per stream, C{rateIn} and C{rateOut} (streams established per
        second of opening), C{idleCPU} (percent of one core while
        holding), C{heldIn} and C{heldOut}.
    """
    loadgen = spawnLoadgen(
        reactor,
        f"loadgen-{target.name}",
        work,
        target,
        target.accept,
        certPath,
        keyPath,
        [
            "--ca",
            str(caPath),
            "--idle-timeout",
            f"{IDLE_TIMEOUT:g}",
            "--concurrency",
            str(args.concurrency),
        ],
    )
    _common.addCleanup(lambda: loadgen.stop(reactor))
    rows: list[list[object]] = []
    try:
        await loadgen.waitFor("ready", 30, reactor)
        incoming = outgoing = 0

        async def confirm() -> None:
            async def allThere() -> bool:
                return await target.countStreams(reactor) == (incoming, outgoing)

            await waitUntil(
                reactor,
                f"{incoming} incoming and {outgoing} outgoing links on {target.name}"
                f" (last seen: {target.authMethods})",
                allThere,
                60,
            )

        async def openStreams(k: int) -> float:
            nonlocal incoming
            loadgen.events.clear()
            loadgen.writeLine({"open": k})
            opened = await loadgen.waitFor("opened", 60 + k / 5, reactor)
            if opened["failures"]:
                raise RuntimeError(
                    f"{opened['failures']} of {k} streams failed, e.g. {opened['firstFailures']}"
                )
            if set(opened["methods"]) != {"sasl-external"}:
                raise RuntimeError(f"unexpected authentication methods {opened['methods']}")
            incoming += k
            await confirm()
            print(
                f"{target.name}: {incoming} incoming up"
                f" ({opened['seconds']:.1f} s for the last {k})"
            )
            sys.stdout.flush()
            return float(opened["seconds"])

        async def pingFrom(indexes: range) -> float:
            nonlocal outgoing
            k = len(indexes)
            loadgen.events.clear()
            loadgen.writeLine({"ping": indexes.start, "count": k})
            pinged = await loadgen.waitFor("pinged", 60 + k / 5, reactor)
            if pinged["failures"]:
                raise RuntimeError(
                    f"{pinged['failures']} of {k} pings failed, e.g. {pinged['firstFailures']}"
                )
            if pinged["methods"] != {"sasl-external": k}:
                raise RuntimeError(
                    f"{target.name}'s {k} streams to the generator authenticated as"
                    f" {pinged['methods']}, not all by SASL EXTERNAL"
                )
            outgoing += k
            await confirm()
            print(
                f"{target.name}: {outgoing} outgoing up"
                f" ({pinged['seconds']:.1f} s for the last {k})"
            )
            sys.stdout.flush()
            return float(pinged["seconds"])

        warmPings, measuredPings = pingedIndexes(args)
        await openStreams(args.warmup)
        if warmPings:
            await pingFrom(warmPings)
        await sleep(reactor, args.settle)
        base = rssKiB(target.pid)
        rows.append([target.name, incoming, outgoing, "baseline", f"{base / 1024:.1f}", "", ""])
        step = max(1, args.n // args.steps)
        added = 0
        openSeconds = 0.0
        while added < args.n:
            k = min(step, args.n - added)
            openSeconds += await openStreams(k)
            added += k
            await sleep(reactor, args.settle)
            rss = rssKiB(target.pid)
            rows.append(
                [
                    target.name,
                    incoming,
                    outgoing,
                    f"+{added} in",
                    f"{rss / 1024:.1f}",
                    f"{(rss - base) / 1024:.1f}",
                    f"{(rss - base) / added:.1f}",
                ]
            )
        rssIn = rssKiB(target.pid)
        pingSeconds = 0.0
        if measuredPings:
            pingSeconds = await pingFrom(measuredPings)
            await sleep(reactor, args.settle)
            rss = rssKiB(target.pid)
            rows.append(
                [
                    target.name,
                    incoming,
                    outgoing,
                    f"+{len(measuredPings)} out",
                    f"{rss / 1024:.1f}",
                    f"{(rss - rssIn) / 1024:.1f}",
                    f"{(rss - rssIn) / len(measuredPings):.1f}",
                ]
            )
        rssOut = rssKiB(target.pid)
        cpu = cpuSeconds(target.pid)
        print(f"{target.name}: holding {incoming} + {outgoing} streams for {args.hold:g} s")
        sys.stdout.flush()
        await sleep(reactor, args.hold)
        idleCPU = (cpuSeconds(target.pid) - cpu) / args.hold * 100
        counts = await target.countStreams(reactor)
        if counts != (incoming, outgoing):
            raise RuntimeError(
                f"{target.name} lost streams: {counts[0]} of {incoming} incoming and"
                f" {counts[1]} of {outgoing} outgoing left"
            )
        if target.authMethods:
            print(f"{target.name}: load links by direction, auth/TLS: {target.authMethods}")
        summary = {
            "kibIn": (rssIn - base) / max(added, 1),
            "kibOut": (rssOut - rssIn) / len(measuredPings) if measuredPings else 0.0,
            "rateIn": added / openSeconds if openSeconds else 0.0,
            "rateOut": len(measuredPings) / pingSeconds if pingSeconds else 0.0,
            "idleCPU": idleCPU,
            "heldIn": float(counts[0]),
            "heldOut": float(counts[1]),
        }
        return rows, summary
    finally:
        await loadgen.stop(reactor)


def printSummary(args: argparse.Namespace, summaries: dict[str, dict[str, float]]) -> None:
    """
    Print the load summary, and ours against Prosody as ratios.
    """
    keys = ["kibIn", "kibOut", "rateIn", "rateOut", "idleCPU"]
    formats = [".1f", ".1f", ".0f", ".0f", ".2f"]
    rows: list[list[object]] = [
        [name, f"{s['heldIn']:.0f}", f"{s['heldOut']:.0f}"]
        + [f"{s[key]:{f}}" for key, f in zip(keys, formats, strict=True)]
        for name, s in summaries.items()
    ]
    ours, prosody = summaries.get("xmppnetgraph"), summaries.get("Prosody")
    if ours and prosody:

        def ratio(key: str) -> str:
            return f"{ours[key] / prosody[key]:.2f}" if prosody[key] else "-"

        rows.append(["ours / Prosody", "", ""] + [ratio(key) for key in keys])
    printTable(
        f"Streams held for {args.hold:g} s after opening them at --concurrency"
        f" {args.concurrency} (in: incoming, out: outgoing; rate: streams established per"
        " second of opening; idle CPU: percent of one core while holding)",
        [
            "server",
            "held in",
            "held out",
            "KiB/in",
            "KiB/out",
            "in/s",
            "out/s",
            "idle CPU %",
        ],
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
        "--outgoing",
        type=int,
        default=100,
        help="outgoing streams the target opens after the N incoming ones, at most N (default 100)",
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
            "--outgoing",
            "5",
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

    if not 0 <= args.outgoing <= args.n:
        raise SystemExit(f"--outgoing must be between 0 and -n ({args.n}), not {args.outgoing}")

    from tests.pki import TestCA

    work = _common.workDirectory(
        reactor,
        "xng-bench-mem-",
        args.keep,
        f"N={args.n} incoming and M={args.outgoing} outgoing after {args.warmup} warm-up streams",
    )
    ca = TestCA(work / "ca")
    certPath, keyPath = ca.issue([f"*.{SUFFIX}"], name="load", srvIDs=False, xmppAddrs=False)
    rows: list[list[object]] = []
    summaries: dict[str, dict[str, float]] = {}
    try:
        tCert, tKey = ca.issue(["target.example"], name="target")
        ours = OurTarget(reactor, work, ca.caPath, certPath=tCert, keyPath=tKey)
        _common.addCleanup(lambda: ours.stop(reactor))
        await ours.ready(reactor)
        oursRows, summaries[ours.name] = await measure(
            reactor, args, work, ours, certPath, keyPath, ca.caPath
        )
        rows += oursRows
        await ours.stop(reactor)
        if not args.no_prosody:
            pCert, pKey = ca.issue(["p.example"], name="p.example")
            warmPings, measuredPings = pingedIndexes(args)
            prosody = ProsodyTarget(work, ca.caPath, pCert, pKey, [*warmPings, *measuredPings])
            await prosody.start(reactor)
            prosodyRows, summaries[prosody.name] = await measure(
                reactor, args, work, prosody, certPath, keyPath, ca.caPath
            )
            rows += prosodyRows
        printTable(
            "RSS of the target with idle authenticated s2s streams (TLS, SASL EXTERNAL):"
            " incoming steps against the baseline, the outgoing step against the RSS"
            " before it",
            ["server", "incoming", "outgoing", "step", "RSS MiB", "growth MiB", "KiB/stream"],
            rows,
        )
        printSummary(args, summaries)
    finally:
        await _common.runCleanups()
        if args.keep:
            print(f"kept {work}")


if __name__ == "__main__":
    _common.runMain(main)
