#!/usr/bin/env python3
"""
s2s throughput: stanzas per second over one established, authenticated
(TLS) s2s stream on loopback, for two xmppnetgraph nodes and, in the same
run, for two Prosody processes.

xmppnetgraph: node A (a.example) and node B (b.example) each run in a
process of their own (C{bench/_node.py}). A handler on A sends N messages
to a handler on B, which counts them and answers C{done} after the last.
The time runs from the first stanza sent to the C{done} received. Both s2s
streams (A to B, B to A) are opened and authenticated (TLS 1.3, dialback,
self-signed certificates) before timing starts.

Prosody: two Prosody processes (C{tests.prosody.ProsodyPeer}, self-signed
certificates, so TLS + dialback as well) on loopback addresses of their
own. alice@a.example sends the same N messages (same body size, same
batching) over c2s to Prosody A, which relays them over s2s to Prosody B,
which delivers them over c2s to bob@b.example. The time runs from the
first stanza sent to the last one received. Both clients live in this
process. As a check on the clients, a c2s-only run (alice to carol, both on
Prosody A) is timed too.

Rounds of the systems alternate (ours, Prosody s2s, Prosody c2s, ours,
...) so that background load on the machine hits all of them alike. The
CPU seconds each process used during a round are printed with it.

Usage: python bench/s2s_throughput.py [-n 20000] [--size 100] [--rounds 5]
       [--warmup 1000] [--batch 100] [--no-prosody] [--prosody-log info] [--keep]
       [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from _common import Child, cpuSeconds, freePort, printTable
from _prosody import quietLoopbackAddresses, setProsodyLogLevel
from twisted.internet import defer, task
from twisted.words.xish import domish

NODE_ADDRESS = "127.0.0.1"


class OurPair:
    """
    Two xmppnetgraph nodes, each in its own process; node A's handler
    times the rounds.
    """

    label = "xmppnetgraph"

    def __init__(self) -> None:
        self.rounds: list[dict[str, Any]] = []

    async def start(self, reactor: Any, args: argparse.Namespace, work: Path) -> None:
        """
        Start both nodes and wait until both streams are up and warm.
        """
        portA, portB = freePort(NODE_ADDRESS), freePort(NODE_ADDRESS)
        node = str(Path(__file__).resolve().parent / "_node.py")
        common = [
            "--size",
            str(args.size),
            "--batch",
            str(args.batch),
            "--warmup",
            str(args.warmup),
        ]
        work = work / "ours"
        work.mkdir()
        self.sink = Child.spawn(
            reactor,
            "sink",
            [
                sys.executable,
                node,
                "sink",
                "--domain",
                "b.example",
                "--address",
                NODE_ADDRESS,
                "--s2s-port",
                str(portB),
                "--data-dir",
                str(work / "b.example"),
                "--route",
                f"a.example={NODE_ADDRESS}:{portA}",
                *common,
            ],
            work,
        )
        _common.addCleanup(lambda: self.sink.stop(reactor))
        await self.sink.waitFor("ready", 30, reactor)
        self.source = Child.spawn(
            reactor,
            "source",
            [
                sys.executable,
                node,
                "source",
                "--domain",
                "a.example",
                "--address",
                NODE_ADDRESS,
                "--s2s-port",
                str(portA),
                "--data-dir",
                str(work / "a.example"),
                "--route",
                f"b.example={NODE_ADDRESS}:{portB}",
                "--peer",
                "sink@b.example",
                *common,
            ],
            work,
        )
        _common.addCleanup(lambda: self.source.stop(reactor))
        warm = await self.source.waitFor("warm", 120, reactor)
        print(
            f"{self.label}: streams up (first message {warm['firstPing'] * 1000:.0f} ms): "
            + "; ".join(
                f"{d} {direction} {auth} {tls}" for d, direction, auth, tls in warm["links"]
            )
        )
        sys.stdout.flush()

    async def round(self, reactor: Any, args: argparse.Namespace) -> None:
        """
        Have node A time one round of N messages.
        """
        self.source.events = [e for e in self.source.events if e.get("event") != "round"]
        self.source.writeLine({"round": args.n})
        result = await self.source.waitFor("round", 60 + args.n / 200, reactor)
        self.rounds.append(result)

    def printRounds(self) -> None:
        """
        Print one row per round.
        """
        rows = [
            [
                f"#{i + 1}",
                r["n"],
                f"{r['seconds']:.3f}",
                f"{r['rate']:.0f}",
                f"{r['sourceCPU']:.2f}",
                f"{r['sinkCPU']:.2f}",
            ]
            for i, r in enumerate(self.rounds)
        ]
        printTable(
            f"{self.label}: node A -> node B, one s2s stream (TLS), each node its own process",
            ["round", "N", "seconds", "stanzas/s", "node A CPU s", "node B CPU s"],
            rows,
        )

    async def stop(self, reactor: Any) -> None:
        """
        Stop both nodes.
        """
        await self.source.stop(reactor)
        await self.sink.stop(reactor)


class Receiver:
    """
    Counts a client's messages with a body and fires when N have arrived.
    """

    def __init__(self) -> None:
        self.count = 0
        self.expected = -1
        self.done: defer.Deferred[float] | None = None

    def expect(self, n: int) -> defer.Deferred[float]:
        """
        @return: a Deferred firing with the monotonic time of the N-th.
        """
        self.count = 0
        self.expected = n
        self.done = defer.Deferred()
        return self.done

    def onMessage(self, message: domish.Element) -> None:
        """
        Count a message that has a body; fail on an error bounce.
        """
        if message.getAttribute("type") == "error":
            if self.done is not None:
                d, self.done = self.done, None
                d.errback(RuntimeError(f"error bounce: {message.toXml()[:500]}"))
            return
        if message.body is None:
            return
        self.count += 1
        if self.count == self.expected and self.done is not None:
            d, self.done = self.done, None
            d.callback(time.monotonic())


async def sendMessages(
    reactor: Any, xs: Any, sender: str, recipient: str, n: int, size: int, batch: int
) -> None:
    """
    Send C{n} messages as node A's handler does: a new element each, in
    batches of C{batch} per reactor turn.
    """
    body = "x" * size
    sent = 0
    while sent < n:
        for _ in range(min(batch, n - sent)):
            message = domish.Element((None, "message"))
            message["to"] = recipient
            message["from"] = sender
            message["id"] = f"m{sent}"
            message.addElement("body", content=body)
            xs.send(message)
            sent += 1
        await task.deferLater(reactor, 0, lambda: None)


class ProsodyPair:
    """
    Two Prosody processes federating, and three c2s clients in this
    process: alice@a, carol@a, bob@b.
    """

    #: "Prosody <version>" once started (the version the peers logged).
    label = "Prosody"

    def __init__(self) -> None:
        self.rounds: dict[str, list[dict[str, Any]]] = {"s2s": [], "c2s": []}
        self.streams: list[Any] = []
        self.peers: dict[str, Any] = {}

    async def start(self, reactor: Any, args: argparse.Namespace, work: Path) -> None:
        """
        Start both, log the clients in, and open the s2s stream with a
        first message and the warm-up rounds.
        """
        from twisted.words.protocols.jabber.jid import JID

        from tests import c2sclient, prosody
        from tests.pki import selfSigned

        reason = prosody.prosodyAvailable()
        if reason is not None:
            raise RuntimeError(f"Prosody is not usable: {reason}")
        addresses = dict(zip(("a.example", "b.example"), quietLoopbackAddresses(2), strict=True))
        hosts = {
            name: address
            for domain, address in addresses.items()
            for name in (domain, f"pubsub.{domain}")
        }
        for domain, address in addresses.items():
            certPath, keyPath = selfSigned(
                work / "certs" / domain, [domain, f"pubsub.{domain}"], name=domain
            )
            self.peers[domain] = prosody.ProsodyPeer(
                work / f"prosody-{domain}",
                domain,
                address,
                certPath=certPath,
                keyPath=keyPath,
                hosts=hosts,
                s2sPort=5269,
                c2sPort=freePort(address),
            )
            _common.addCleanup(self.peers[domain].stop)
        await defer.gatherResults([p.start() for p in self.peers.values()])
        for p in self.peers.values():
            _common.trackPID(p.pid)
            await setProsodyLogLevel(reactor, p, args.prosody_log)
        a, b = self.peers["a.example"], self.peers["b.example"]
        self.label = f"Prosody {a.version or prosody.prosodyVersion() or '(version unknown)'}"
        self.pids = {"a": a.pid, "b": b.pid}
        await defer.gatherResults(
            [a.register("alice", "pw"), a.register("carol", "pw"), b.register("bob", "pw")]
        )

        async def login(peer: Any, user: str) -> Any:
            xs = await c2sclient.connectClient(
                reactor, JID(f"{user}@{peer.domain}/bench"), "pw", peer.address, peer.c2sPort
            )
            self.streams.append(xs)
            _common.addCleanup(lambda: c2sclient.disconnect(xs))
            xs.send("<presence/>")
            return xs

        self.alice = await login(a, "alice")
        bob = await login(b, "bob")
        carol = await login(a, "carol")
        self.aliceJID = self.alice.authenticator.jid.full()
        self.targets: dict[str, tuple[Receiver, str]] = {}
        for name, xs in (("s2s", bob), ("c2s", carol)):
            receiver = Receiver()
            xs.addObserver("/message", receiver.onMessage)
            self.targets[name] = (receiver, xs.authenticator.jid.full())
        began = time.monotonic()
        await self._round(reactor, args, "s2s", 1)
        first = time.monotonic() - began
        logSize = a.logPath.stat().st_size + b.logPath.stat().st_size
        if args.warmup:
            await self._round(reactor, args, "s2s", args.warmup)
            await self._round(reactor, args, "c2s", args.warmup)
        logGrowth = a.logPath.stat().st_size + b.logPath.stat().st_size - logSize
        s2sLines = [
            line.split("\t")[-1]
            for line in b.logPath.read_text(errors="replace").splitlines()
            if "s2sin" in line and "a.example->b.example complete" in line
        ]
        print(
            f"{self.label}: streams up (first message {first * 1000:.0f} ms): "
            f"{'; '.join(s2sLines) or '?'}; log level {args.prosody_log} "
            f"(logs grew {logGrowth} bytes over {2 * args.warmup} warm-up messages)"
        )
        sys.stdout.flush()

    async def _round(
        self, reactor: Any, args: argparse.Namespace, kind: str, n: int
    ) -> dict[str, Any]:
        """
        Send C{n} messages from alice to the C{kind} receiver and wait
        until it has them all.
        """
        receiver, to = self.targets[kind]
        cpu0 = {name: cpuSeconds(pid) for name, pid in self.pids.items()}
        own0 = sum(os.times()[:2])
        done = receiver.expect(n)
        done.addTimeout(60 + n / 200, reactor)
        start = time.monotonic()
        await sendMessages(reactor, self.alice, self.aliceJID, to, n, args.size, args.batch)
        end = await done
        elapsed = end - start
        cpu = {name: cpuSeconds(pid) - cpu0[name] for name, pid in self.pids.items()}
        cpu["clients"] = sum(os.times()[:2]) - own0
        return {"n": n, "seconds": elapsed, "rate": n / elapsed, "cpu": cpu}

    async def round(self, reactor: Any, args: argparse.Namespace, kind: str) -> None:
        """
        Time one round of N messages over C{kind} (C{"s2s"} or C{"c2s"}).
        """
        self.rounds[kind].append(await self._round(reactor, args, kind, args.n))

    def printRounds(self) -> None:
        """
        Print one table per kind.
        """
        titles = {
            "s2s": "Prosody: alice@a -c2s-> Prosody A -s2s (TLS)-> Prosody B -c2s-> bob@b",
            "c2s": "Prosody, c2s only (client check): alice@a -c2s-> Prosody A -c2s-> carol@a",
        }
        for kind, title in titles.items():
            rows = [
                [
                    f"#{i + 1}",
                    r["n"],
                    f"{r['seconds']:.3f}",
                    f"{r['rate']:.0f}",
                    f"{r['cpu']['a']:.2f}",
                    f"{r['cpu']['b']:.2f}",
                    f"{r['cpu']['clients']:.2f}",
                ]
                for i, r in enumerate(self.rounds[kind])
            ]
            printTable(
                title,
                [
                    "round",
                    "N",
                    "seconds",
                    "stanzas/s",
                    "Prosody A CPU s",
                    "Prosody B CPU s",
                    "clients CPU s",
                ],
                rows,
            )

    async def stop(self, reactor: Any) -> None:
        """
        Log the clients out and stop both Prosodys.
        """
        from tests import c2sclient

        for xs in self.streams:
            try:
                await c2sclient.disconnect(xs)
            except Exception:
                pass
        for p in self.peers.values():
            pid = p.pid
            await p.stop()
            if pid:
                _common.untrackPID(pid)


def rateCells(rounds: list[dict[str, Any]]) -> list[str]:
    """
    @return: median, best and worst rate of C{rounds}, formatted.
    """
    rates = [r["rate"] for r in rounds]
    return [f"{statistics.median(rates):.0f}", f"{max(rates):.0f}", f"{min(rates):.0f}"]


async def main(reactor: Any, argv: list[str]) -> None:
    """
    Run the benchmark and print the figures.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-n", type=int, default=20000, help="messages per timed round (default 20000)"
    )
    parser.add_argument(
        "--size", type=int, default=100, help="body characters per message (default 100)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per system (default 5)")
    parser.add_argument(
        "--warmup", type=int, default=1000, help="messages in an untimed first round (default 1000)"
    )
    parser.add_argument(
        "--batch", type=int, default=100, help="messages written per reactor turn (default 100)"
    )
    parser.add_argument("--no-prosody", action="store_true", help="measure our nodes only")
    parser.add_argument(
        "--prosody-log",
        default="info",
        choices=["debug", "info", "warn"],
        help="Prosody's log level while measuring (default info)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = _common.parseArguments(parser, argv, ["-n", "500", "--rounds", "1", "--warmup", "100"])
    work = _common.workDirectory(
        reactor,
        "xng-bench-",
        args.keep,
        f"N={args.n}, body {args.size} chars, {args.rounds} timed rounds, "
        f"{args.warmup} warm-up messages, {args.batch} messages per reactor turn",
    )
    sys.stdout.flush()
    try:
        ours = OurPair()
        await ours.start(reactor, args, work)
        theirs = None
        if not args.no_prosody:
            theirs = ProsodyPair()
            await theirs.start(reactor, args, work)
        for _ in range(args.rounds):
            await ours.round(reactor, args)
            if theirs is not None:
                await theirs.round(reactor, args, "s2s")
                await theirs.round(reactor, args, "c2s")
        ours.printRounds()
        summary: list[list[object]] = [[ours.label, *rateCells(ours.rounds)]]
        if theirs is not None:
            theirs.printRounds()
            summary.append(
                [f"{theirs.label} (s2s, driven by c2s clients)", *rateCells(theirs.rounds["s2s"])]
            )
            summary.append(
                [f"{theirs.label} (c2s only, client check)", *rateCells(theirs.rounds["c2s"])]
            )
        printTable(
            f"Summary: stanzas/s over one s2s stream, N={args.n}, body {args.size} chars, "
            f"{args.rounds} rounds each",
            ["system", "median", "best", "worst"],
            summary,
        )
        if theirs is not None:
            ourMedian = statistics.median(r["rate"] for r in ours.rounds)
            theirMedian = statistics.median(r["rate"] for r in theirs.rounds["s2s"])
            print(f"ratio xmppnetgraph / Prosody (medians): {ourMedian / theirMedian:.2f}")
    finally:
        await _common.runCleanups()
        if args.keep:
            print(f"kept {work}")


if __name__ == "__main__":
    _common.runMain(main)
