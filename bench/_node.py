"""
One benchmark process: an xmppnetgraph node built with
L{xmppnetgraph.node.buildService}, in one of three roles.

  - C{sink}: counts the messages that arrive for its domain and answers
    the control messages of a C{source}.
  - C{source}: sends rounds of N messages from a local handler over its one
    s2s stream to the sink and times each round until the sink says it has
    them all.
  - C{loadgen}: opens authenticated (SASL EXTERNAL) s2s streams to a target
    node, each from a distinct domain, on request; pings the target from
    some of them, so that the target opens streams of its own back to
    those domains, which the load generator accepts for any domain under
    its C{--suffix}.

It speaks JSON lines: events on stdout, commands on stdin. The log goes to
C{<data dir>/node.log}. Run by L{bench.s2s_throughput} and
L{bench.s2s_load}; not meant to be run by hand.

The set-up every benchmark node process shares is here too (L{buildNode},
L{startNode}, L{listenForCommands}, L{runRole}); L{bench._serverinfo_node}
uses it. Nodes are reached only through the typed objects of
L{NodeService}: its C{core} (the hosts of the local domains, the link
table, the change feed, the database), C{s2s} and C{serverInfo}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, stdio, task
from twisted.internet.interfaces import IListeningPort
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.words.xish import domish
from twisted.words.xish.utility import XmlPipe
from wokkel.subprotocols import XMPPHandler

from xmppnetgraph.config import Config, parseRoute
from xmppnetgraph.listener import Listener
from xmppnetgraph.node import NodeService, buildService

NS_BENCH = "urn:xmppnetgraph:bench"
NS_PING = "urn:xmpp:ping"


def emit(event: str, **fields: Any) -> None:
    """
    Write one JSON event line on stdout.
    """
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class NoDNS:
    """
    A resolver whose every lookup fails: only static routes work.
    """

    def lookupService(self, name: str, timeout: Any = None) -> defer.Deferred[Any]:
        """
        Fail like a missing SRV record.
        """
        from twisted.names.error import DNSNameError

        return defer.fail(DNSNameError(name))


def control(op: str, **attrs: str) -> domish.Element:
    """
    @return: a C{<bench/>} control payload.
    """
    element = domish.Element((NS_BENCH, "bench"))
    element["op"] = op
    for key, value in attrs.items():
        element[key] = value
    return element


class Sink(XMPPHandler):  # type: ignore[misc]
    """
    Count C{<message><body/></message>} stanzas; answer C{ping} with
    C{pong} and C{start n=N} with C{done} once N have arrived.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.expected = -1
        self.replyTo = ""
        self.me = ""
        self.cpu0 = 0.0

    def connectionInitialized(self) -> None:
        """
        Observe messages.
        """
        self.xmlstream.addObserver("/message/body", self.onBody)
        self.xmlstream.addObserver(f"/message/bench[@xmlns='{NS_BENCH}']", self.onControl)

    def reply(self, to: str, sender: str, payload: domish.Element) -> None:
        """
        Send a control message back.
        """
        message = domish.Element((None, "message"))
        message["to"] = to
        message["from"] = sender
        message.addChild(payload)
        self.send(message)

    def onControl(self, message: domish.Element) -> None:
        """
        Handle C{ping} and C{start}.
        """
        payload = message.bench
        op = payload.getAttribute("op")
        if op == "ping":
            self.reply(message["from"], message["to"], control("pong"))
        elif op == "start":
            self.count = 0
            self.expected = int(payload["n"])
            self.replyTo = message["from"]
            self.me = message["to"]
            self.cpu0 = time.process_time()

    def onBody(self, message: domish.Element) -> None:
        """
        Count one message; say C{done} at the last.
        """
        self.count += 1
        if self.count == self.expected:
            cpu = time.process_time() - self.cpu0
            self.reply(
                self.replyTo, self.me, control("done", count=str(self.count), cpu=f"{cpu:.3f}")
            )


class Source(XMPPHandler):  # type: ignore[misc]
    """
    Send rounds of messages to the sink and time them.
    """

    def __init__(self, reactor: Any, sender: str, recipient: str) -> None:
        super().__init__()
        self.reactor = reactor
        self.sender = sender
        self.recipient = recipient
        self.waiting: dict[str, defer.Deferred[domish.Element]] = {}

    def connectionInitialized(self) -> None:
        """
        Observe control answers.
        """
        self.xmlstream.addObserver(f"/message/bench[@xmlns='{NS_BENCH}']", self.onControl)

    def onControl(self, message: domish.Element) -> None:
        """
        Fire whoever waits for this op.
        """
        d = self.waiting.pop(message.bench.getAttribute("op"), None)
        if d is not None:
            d.callback(message.bench)

    def expect(self, op: str, timeout: float) -> defer.Deferred[domish.Element]:
        """
        @return: a Deferred firing with the next control payload C{op}.
        """
        d: defer.Deferred[domish.Element] = defer.Deferred()
        d.addTimeout(timeout, self.reactor)
        self.waiting[op] = d
        return d

    def sendControl(self, payload: domish.Element) -> None:
        """
        Send a control message to the sink.
        """
        message = domish.Element((None, "message"))
        message["to"] = self.recipient
        message["from"] = self.sender
        message.addChild(payload)
        self.send(message)

    async def ping(self) -> float:
        """
        @return: seconds for a ping/pong (opens both s2s streams the first
            time).
        """
        start = time.monotonic()
        pong = self.expect("pong", 60)
        self.sendControl(control("ping"))
        await pong
        return time.monotonic() - start

    async def round(self, n: int, size: int, batch: int) -> dict[str, float]:
        """
        Send C{n} messages with a C{size}-character body, C{batch} per
        reactor turn, and wait until the sink has them all.
        """
        body = "x" * size
        done = self.expect("done", 600)
        cpu0 = time.process_time()
        start = time.monotonic()
        self.sendControl(control("start", n=str(n)))
        sent = 0
        while sent < n:
            for _ in range(min(batch, n - sent)):
                message = domish.Element((None, "message"))
                message["to"] = self.recipient
                message["from"] = self.sender
                message["id"] = f"m{sent}"
                message.addElement("body", content=body)
                self.send(message)
                sent += 1
            await task.deferLater(self.reactor, 0, lambda: None)
        sendDone = time.monotonic() - start
        answer = await done
        elapsed = time.monotonic() - start
        return {
            "n": n,
            "seconds": elapsed,
            "rate": n / elapsed,
            "sendSeconds": sendDone,
            "sourceCPU": time.process_time() - cpu0,
            "sinkCPU": float(answer["cpu"]),
        }


class Commands(LineReceiver):
    """
    JSON commands on stdin, handed to C{handler}; the reactor stops when
    stdin closes (our parent went away).
    """

    delimiter = b"\n"

    def __init__(self, handler: Any, reactor: Any) -> None:
        self.handler = handler
        self.reactor = reactor

    def lineReceived(self, line: bytes) -> None:
        """
        Decode and dispatch one command.
        """
        if line.strip():
            self.handler(json.loads(line))

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Our parent went away: stop.
        """
        if self.reactor.running:
            self.reactor.stop()


def addNodeArguments(parser: argparse.ArgumentParser) -> None:
    """
    Add the options every benchmark node process takes: C{--data-dir}
    (required), C{--address} and C{--route} (repeatable).
    """
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--route", action="append", default=[])


def buildNode(
    reactor: Any,
    domain: str,
    dataDir: Path,
    address: str,
    port: int,
    routes: Sequence[str],
    **options: Any,
) -> NodeService:
    """
    Build (not start) a node for C{domain} with the one node builder
    (L{buildService}), listening for s2s on C{address} and C{port}, with
    the static C{routes} (C{DOMAIN=HOST:PORT}) and no DNS. It has s2s and
    the local domains only: no web, no crawling and no XEP-0485 publisher
    (which would add disco traffic of their own while we measure), unless
    C{options} (more L{Config} fields) say otherwise.
    """
    settings: dict[str, Any] = dict(enableWeb=False, crawl=False, publish=False)
    settings.update(options)
    config = Config(
        domain=domain,
        dataDir=dataDir,
        s2s=f"tcp:{port}:interface={address}",
        routes=tuple(parseRoute(r) for r in routes),
        **settings,
    )
    return buildService(config, reactor, resolver=NoDNS())


async def startNode(reactor: Any, node: NodeService, timeout: float = 30.0) -> IListeningPort:
    """
    Start a built node, stop it at reactor shutdown, and wait until its
    s2s listener listens.

    @return: the listening port.
    @raise xmppnetgraph.error.ListenError: if it cannot listen.
    @raise RuntimeError: if it does not listen within C{timeout} seconds.
    """
    node.startService()
    reactor.addSystemEventTrigger("before", "shutdown", node.stopService)
    listener = node.getServiceNamed("s2s-listen")
    assert isinstance(listener, Listener)
    deadline = time.monotonic() + timeout
    # A TCP endpoint listens in startService; others may listen later.
    while listener.port is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no s2s listener on {listener.description} within {timeout:g} s")
        await task.deferLater(reactor, 0.01, lambda: None)
    return listener.port


def listenForCommands(
    reactor: Any, handle: Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
) -> None:
    """
    Read JSON commands on stdin; each is handled in a coroutine of its own
    whose failure is reported as an C{error} event. The process stops when
    stdin closes.
    """

    def command(cmd: dict[str, Any]) -> None:
        d: defer.Deferred[None] = defer.Deferred.fromCoroutine(handle(cmd))
        d.addErrback(lambda f: emit("error", message=f.getTraceback()))

    stdio.StandardIO(Commands(command, reactor), reactor=reactor)


def runRole(reactor: Any, dataDir: Path, role: Coroutine[Any, Any, None]) -> defer.Deferred[None]:
    """
    Run one benchmark process: log to C{<dataDir>/node.log} (info and
    above), run C{role} and report its failure as an C{error} event.
    """
    dataDir.mkdir(parents=True, exist_ok=True)
    logFile = open(dataDir / "node.log", "a")
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(logFile), [LogLevelFilterPredicate(LogLevel.info)]
            )
        ],
        redirectStandardIO=False,
    )

    def report(reason: Failure) -> Failure:
        emit("error", message=reason.getTraceback())
        return reason

    return defer.Deferred.fromCoroutine(role).addErrback(report)


def nodeOf(args: argparse.Namespace, reactor: Any, **options: Any) -> NodeService:
    """
    Build (not start) the node of this process's C{--domain},
    C{--address}, C{--s2s-port}, C{--data-dir} and C{--route}s.
    """
    return buildNode(
        reactor,
        args.domain,
        Path(args.data_dir),
        args.address,
        args.s2s_port,
        args.route,
        **options,
    )


async def runThroughput(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{sink} and C{source} roles.
    """
    node = nodeOf(args, reactor)
    host = node.core.component(args.domain)
    if args.role == "sink":
        Sink().setHandlerParent(host)
    else:
        source = Source(reactor, f"bench@{args.domain}", args.peer)
        source.setHandlerParent(host)
    await startNode(reactor, node)
    emit("ready", pid=os.getpid())
    if args.role == "sink":
        await defer.Deferred()  # until stopped
        return
    first = await source.ping()
    again = await source.ping()
    if args.warmup:
        await source.round(args.warmup, args.size, args.batch)
    emit(
        "warm",
        firstPing=first,
        ping=again,
        links=[
            (link.domain, link.direction, link.auth, link.tls)
            for link in node.core.linkTable.links()
        ],
    )
    pending: list[int] = []
    wake: list[defer.Deferred[None]] = []

    async def command(cmd: dict[str, Any]) -> None:
        if "round" in cmd:
            pending.append(int(cmd["round"]))
            if wake:
                wake.pop().callback(None)

    listenForCommands(reactor, command)
    index = 0
    while True:
        if not pending:
            d: defer.Deferred[None] = defer.Deferred()
            wake.append(d)
            await d
        n = pending.pop(0)
        result = await source.round(n, args.size, args.batch)
        emit("round", index=index, **result)
        index += 1


class SuffixDomains(frozenset[str]):
    """
    The local domains of a load generator: its own, and every domain under
    its suffix (C{n0.load.example}, C{n1.load.example}, ...), so that it
    accepts the streams a target opens to any of them.

    Iterating gives the fixed domains only; asking about a domain (as the
    receiving side does for a stream header, a dialback request or the
    recipient of a SASL EXTERNAL peer's stanza) accepts the suffix too.
    """

    suffix: str

    def __new__(cls, domains: frozenset[str], suffix: str) -> SuffixDomains:
        """
        @param domains: the node's own local domains.
        @param suffix: accept every domain ending in C{.<suffix>} too.
        """
        self = super().__new__(cls, domains)
        self.suffix = "." + suffix
        return self

    def __contains__(self, domain: object) -> bool:
        """
        @return: whether C{domain} is one of ours or under the suffix.
        """
        return super().__contains__(domain) or (
            isinstance(domain, str) and domain.endswith(self.suffix)
        )


def acceptAnyDomainUnder(node: NodeService, suffix: str) -> None:
    """
    Make a built (not started) node serve every domain under C{suffix} on
    its s2s listener: what a benchmark's load generator needs, not a feature
    of the node (which serves a fixed set of domains).
    """
    s2s = node.s2s
    s2s.localDomains = SuffixDomains(s2s.localDomains, suffix)


async def runLoadgen(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{loadgen} role: on C{{"open": K}} open K more streams to the
    target, each from the next domain C{n<i>.<suffix>}, at most
    C{--concurrency} handshakes at a time; answer with an C{opened} event.
    On C{{"ping": I, "count": K}} send an XEP-0199 ping to the target from
    C{n<I>} ... C{n<I+K-1>} over their open streams, so that the target
    answers over streams of its own to those domains, which we accept (at
    most C{--concurrency} at a time); answer with C{pinged} (how those
    streams authenticated, as our link table says). On C{{"storm": R,
    "seconds": S}} start R streams a second for S seconds, each on time
    (no cap), and answer with C{stormed} (outcomes, handshake times); on
    C{{"closeAll": true}} close every held stream (C{closed}).
    """
    from xmppnetgraph.s2s.initiate import Authenticate
    from xmppnetgraph.s2s.service import OutgoingAuthenticator

    node = nodeOf(
        args,
        reactor,
        tlsCert=Path(args.cert),
        tlsKey=Path(args.key),
        caFile=Path(args.ca) if args.ca else None,
        requireValidCerts=False,
        handshakeTimeout=120.0,
        connectTimeout=60.0,
        idleTimeout=args.idle_timeout,
    )
    acceptAnyDomainUnder(node, args.suffix)
    # The target's answers to our pings come to the load domains: the
    # router hands them to this pipe.
    answers = XmlPipe()
    waiting: dict[str, defer.Deferred[domish.Element]] = {}

    def answered(iq: domish.Element) -> None:
        d = waiting.pop(iq.getAttribute("id", ""), None)
        if d is not None:
            d.callback(iq)

    answers.source.addObserver("/iq", answered)
    await startNode(reactor, node)
    s2s = node.s2s
    semaphore = defer.DeferredSemaphore(args.concurrency)
    counter = [0]
    held: dict[str, Any] = {}

    def openOne(index: int) -> defer.Deferred[Any]:
        local = f"n{index}.{args.suffix}"
        methods: list[Authenticate] = []

        def authInit(xs: Any) -> Authenticate:
            a = Authenticate(xs, local, args.target, s2s.secret, allowDialback=False)
            methods.append(a)
            return a

        authenticator = OutgoingAuthenticator(s2s, local, args.target, authInit)
        d = s2s.openStream(args.target, authenticator)

        def ok(xs: Any) -> str:
            held[local] = xs
            return methods[0].method or "?"

        return d.addCallback(ok)

    async def openMany(k: int) -> None:
        start = time.monotonic()
        first = counter[0]
        counter[0] += k
        results = await defer.DeferredList(
            [semaphore.run(openOne, i) for i in range(first, first + k)], consumeErrors=True
        )
        failures = [str(r.getErrorMessage()) for ok, r in results if not ok]
        methods: dict[str, int] = {}
        for ok, r in results:
            if ok:
                methods[r] = methods.get(r, 0) + 1
        emit(
            "opened",
            requested=k,
            total=len(held),
            methods=methods,
            failures=len(failures),
            firstFailures=failures[:3],
            seconds=time.monotonic() - start,
        )

    async def pingOne(local: str) -> None:
        xs = held.get(local)
        if xs is None:
            raise RuntimeError(f"no open stream from {local}")
        iq = domish.Element((None, "iq"))
        iq["type"] = "get"
        iq["id"] = f"ping-{local}"
        iq["from"] = local
        iq["to"] = args.target
        iq.addElement((NS_PING, "ping"))
        answer: defer.Deferred[domish.Element] = defer.Deferred()
        answer.addTimeout(180, reactor)
        waiting[iq["id"]] = answer
        node.core.router.addRoute(local, answers.sink)
        xs.send(iq)
        try:
            result = await answer
        finally:
            waiting.pop(iq["id"], None)
        if result.getAttribute("type") != "result":
            raise RuntimeError(f"the target answered the ping from {local} with {result.toXml()}")

    async def pingMany(first: int, k: int) -> None:
        start = time.monotonic()
        domains = [f"n{i}.{args.suffix}" for i in range(first, first + k)]
        results = await defer.DeferredList(
            [semaphore.run(lambda d: defer.Deferred.fromCoroutine(pingOne(d)), d) for d in domains],
            consumeErrors=True,
        )
        seconds = time.monotonic() - start
        failures = [str(r.getErrorMessage()) for ok, r in results if not ok]
        pinged = set(domains)
        methods: dict[str, int] = {}
        for link in node.core.linkTable.links():
            if link.direction == "incoming" and link.localDomain in pinged:
                methods[link.auth] = methods.get(link.auth, 0) + 1
        emit(
            "pinged",
            requested=k,
            methods=methods,
            failures=len(failures),
            firstFailures=failures[:3],
            seconds=seconds,
        )

    def outcome(failure: Any) -> str:
        # A stream error from the target names its condition; anything
        # else (timeout, reset, refused connection) its type.
        condition = getattr(failure.value, "condition", None)
        if condition:
            return f"stream error {condition}"
        return f"{type(failure.value).__name__}: {failure.getErrorMessage()}"

    async def storm(rate: float, seconds: float) -> None:
        # Open rate streams per second for seconds, each started on time
        # whatever the others do (no concurrency cap), and hold them.
        start = time.monotonic()
        count = int(rate * seconds)
        first = counter[0]
        counter[0] += count
        outcomes: dict[str, int] = {}
        durations: list[float] = []

        def started(index: int) -> defer.Deferred[None]:
            began = time.monotonic()

            def done(result: Any) -> None:
                if isinstance(result, Failure):
                    key = outcome(result)
                else:
                    key = "served"
                    durations.append(time.monotonic() - began)
                outcomes[key] = outcomes.get(key, 0) + 1

            return openOne(index).addBoth(done)

        results = [task.deferLater(reactor, i / rate, started, first + i) for i in range(count)]
        await defer.DeferredList(results, consumeErrors=True)
        durations.sort()

        def quantile(q: float) -> float:
            return durations[min(len(durations) - 1, int(q * len(durations)))] if durations else 0.0

        emit(
            "stormed",
            requested=count,
            outcomes=outcomes,
            seconds=time.monotonic() - start,
            handshakeP50=quantile(0.5),
            handshakeP99=quantile(0.99),
            handshakeMax=durations[-1] if durations else 0.0,
        )

    def closeAll() -> None:
        streams = list(held.values())
        held.clear()
        for xs in streams:
            xs.close()
        emit("closed", streams=len(streams))

    async def command(cmd: dict[str, Any]) -> None:
        if "open" in cmd:
            await openMany(int(cmd["open"]))
        elif "ping" in cmd:
            await pingMany(int(cmd["ping"]), int(cmd["count"]))
        elif "storm" in cmd:
            await storm(float(cmd["storm"]), float(cmd["seconds"]))
        elif "closeAll" in cmd:
            closeAll()

    listenForCommands(reactor, command)
    emit("ready", pid=os.getpid())
    await defer.Deferred()


def main(reactor: Any, argv: list[str]) -> defer.Deferred[None]:
    """
    Parse C{argv} and run the role.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["sink", "source", "loadgen"])
    parser.add_argument("--domain", required=True)
    parser.add_argument("--s2s-port", type=int, required=True)
    addNodeArguments(parser)
    parser.add_argument("--peer", default="", help="JID of the sink (source)")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--target", default="")
    parser.add_argument("--suffix", default="load.example")
    parser.add_argument("--cert", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--ca", default="", help="CA file to trust (loadgen)")
    parser.add_argument("--idle-timeout", type=float, default=600.0)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    run = runLoadgen if args.role == "loadgen" else runThroughput
    return runRole(reactor, Path(args.data_dir), run(args, reactor))


if __name__ == "__main__":
    task.react(main, (sys.argv[1:],))
