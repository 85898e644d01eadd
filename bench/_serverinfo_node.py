"""
Benchmark processes for L{bench.serverinfo_publish}: xmppnetgraph nodes
built with L{xmppnetgraph.node.buildService} (through L{bench._node}'s
helpers), in one of five roles.

  - C{publisher}: one node (no XEP-0485 publisher service of its own) that
    publishes a fake C{serverinfo} item through its pub-sub backend
    (C{serverInfo.backend.publish}) on request and times every step:
    building, storing, handing the notifications to the s2s streams, and
    draining them into the sockets.
  - C{receivers}: one or more nodes in this process whose JIDs subscribe to
    the publisher's node, and that count the notifications they receive.
  - C{origin}: a node with the real XEP-0485 publisher (C{publish=True})
    that reports link, consent and publish events with their times.
  - C{subscriber}: one node that subscribes to the origin's node and
    reports every item it receives.
  - C{linker}: builds a new node on request and has it open a link to the
    origin (a disco#info request).

It speaks JSON lines like L{bench._node}: events on stdout, commands on
stdin. Times are C{time.monotonic()}, which on Linux is one clock for all
processes of the machine, so the parent compares them across processes.
The log goes to C{<data dir>/node.log}. Not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _node import addNodeArguments, buildNode, emit, listenForCommands, runRole, startNode
from twisted.internet import defer, task
from twisted.words.protocols.jabber.jid import JID
from twisted.words.protocols.jabber.xmlstream import STREAM_END_EVENT
from wokkel import generic, pubsub
from wokkel.disco import DiscoClientProtocol

from xmppnetgraph.component import LocalComponent
from xmppnetgraph.model import ConsentChanged, LinkDown, LinkUp
from xmppnetgraph.node import NodeService
from xmppnetgraph.pubsub import MAX_ITEMS
from xmppnetgraph.s2s.service import S2SService
from xmppnetgraph.serverinfo.payload import (
    NS_SERVERINFO,
    buildPayload,
    fromLinks,
    parsePayload,
)


def now() -> float:
    """
    @return: the machine-wide monotonic time in seconds.
    """
    return time.monotonic()


def nodeFor(
    reactor: Any, args: argparse.Namespace, domain: str, address: str, port: int, **options: Any
) -> NodeService:
    """
    Build (not start) a node for C{domain} listening on C{address} and
    C{port}, with its data in C{<data dir>/<domain>}: see
    L{bench._node.buildNode}.
    """
    return buildNode(
        reactor, domain, Path(args.data_dir) / domain, address, port, args.route, **options
    )


def fakeLinks(tag: str, peers: int, streams: int) -> tuple[list[tuple[str, str]], list[str]]:
    """
    @param tag: a prefix of every peer name (it marks the round).
    @param peers: how many remote domains.
    @param streams: live streams per peer: 1 (incoming) or 2 (incoming
        and outgoing).
    @return: C{(remoteDomain, direction)} for every stream, and the peer
        names.
    """
    names = [f"{tag}peer{i:05d}.example" for i in range(peers)]
    directions = ("incoming", "outgoing")[:streams]
    return [(name, direction) for name in names for direction in directions], names


class OutgoingStreams:
    """
    The live streams a node's s2s service opened, seen through its public
    L{S2SService.openStream} (which every outgoing stream goes through):
    how many bytes they sent, and whether any still has bytes buffered in
    this process.
    """

    def __init__(self, s2s: S2SService, reactor: Any) -> None:
        """
        Wrap C{s2s.openStream}; do it before the service starts.

        @param reactor: the reactor the streams write through (an
            L{IReactorFDSet<twisted.internet.interfaces.IReactorFDSet>}).
        """
        self.streams: set[Any] = set()
        self._reactor = reactor
        openStream = s2s.openStream

        def recordingOpenStream(remote: str, authenticator: Any) -> defer.Deferred[Any]:
            def opened(xs: Any) -> Any:
                self.streams.add(xs)
                xs.addObserver(STREAM_END_EVENT, lambda _: self.streams.discard(xs))
                return xs

            return openStream(remote, authenticator).addCallback(opened)

        s2s.openStream = recordingOpenStream  # type: ignore[method-assign]

    def pending(self) -> bool:
        """
        @return: whether bytes written to the streams are still buffered
            in this process, not yet handed to the kernel: a transport
            with buffered bytes stays among the reactor's writers until
            they are all written.
        """
        writers = set(self._reactor.getWriters())
        return any(xs.transport in writers for xs in self.streams)

    def bytesSent(self) -> int:
        """
        @return: bytes written so far on the streams.
        """
        return sum(xs.bytesOut for xs in self.streams)


# -- publisher ----------------------------------------------------------------


class GCTimer:
    """
    Adds up the time the cyclic garbage collector runs (all generations)
    from L{reset} on.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        """
        Start counting from zero.
        """
        self.seconds = 0.0
        self.collections = 0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1


class Marks:
    """
    Start and end times of the storage and notification calls made during
    one publish.
    """

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    def clear(self) -> None:
        """
        Forget the times recorded so far.
        """
        self.times = {}

    def wrapDeferred(
        self, name: str, f: Callable[..., defer.Deferred[Any]]
    ) -> Callable[..., defer.Deferred[Any]]:
        """
        @return: C{f}, recording the time of its call and of its result.
        """

        def wrapped(*args: Any, **kwargs: Any) -> defer.Deferred[Any]:
            marks = self.times.setdefault(name, [])
            marks.append(now())

            def done(result: object) -> object:
                marks.append(now())
                return result

            return f(*args, **kwargs).addBoth(done)

        return wrapped

    def wrapCall(self, name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        """
        @return: C{f} (synchronous), recording when it started and ended.
        """

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            marks = self.times.setdefault(name, [])
            marks.append(now())
            try:
                return f(*args, **kwargs)
            finally:
                marks.append(now())

        return wrapped


async def runPublisher(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{publisher} role.

    Commands: C{{"publish": {"tag", "peers", "streams", "consentEvery"}}}
    answers C{published} with the time of every step;
    C{{"naive": {"count"}}} answers C{naive} with the time to serialize the
    last payload C{count} times.
    """
    extra: dict[str, Any] = dict(maxSubscriptionsPerDomain=args.max_subscriptions)
    if args.database:
        extra["database"] = args.database
    node = nodeFor(reactor, args, args.domain, args.address, args.s2s_port, **extra)
    serverInfo = node.serverInfo
    backend = serverInfo.backend
    streams = OutgoingStreams(node.s2s, reactor)
    config = {MAX_ITEMS: 1}
    await startNode(reactor, node)
    # The node as the publisher service would create it, empty, so that a
    # new subscriber gets no last item.
    await backend.ensureNode(serverInfo.node, config)

    marks = Marks()
    gcTimer = GCTimer()
    # One transaction: store the item, trim the node, read its subscriptions.
    store = backend.store
    wrapped = marks.wrapDeferred("publishItem", store.publishItem)
    store.publishItem = wrapped  # type: ignore[method-assign]
    # The XMPP notifier, called (through the change feed) once it is stored.
    notifier = serverInfo.pubsub.service
    notifier.notifyPublish = marks.wrapCall("notifyPublish", notifier.notifyPublish)
    last: dict[str, Any] = {}
    localDomains = node.s2s.localDomains

    def outgoingLinks() -> int:
        return sum(1 for link in node.core.linkTable.links() if link.direction == "outgoing")

    async def publish(spec: dict[str, Any]) -> None:
        links, names = fakeLinks(spec["tag"], int(spec["peers"]), int(spec["streams"]))
        consenting = set(names[:: int(spec["consentEvery"])])
        gc.collect()
        gcTimer.reset()
        cpu0 = time.process_time()
        sent0 = streams.bytesSent()
        t0 = now()
        info = fromLinks(args.domain, links, consenting.__contains__, localDomains)
        t1 = now()
        payload = buildPayload(info)
        t2 = now()
        xml = payload.toXml()
        t3 = now()
        marks.clear()
        await backend.publish(serverInfo.node, serverInfo.itemIdentifier, xml, createConfig=config)
        t4 = now()
        cpuPublish = time.process_time() - cpu0
        gcSeconds, gcCollections = gcTimer.seconds, gcTimer.collections
        while streams.pending():
            await task.deferLater(reactor, 0.002, lambda: None)
        t5 = now()
        last["payload"] = payload
        stored = marks.times.get("publishItem", [t4, t4])
        notify = marks.times.get("notifyPublish", [t4, t4])
        emit(
            "published",
            tag=spec["tag"],
            itemBytes=len(xml.encode("utf-8")),
            named=len(consenting),
            start=t0,
            fromLinks=t1 - t0,
            buildPayload=t2 - t1,
            toXml=t3 - t2,
            publishStart=t3,
            storeStart=stored[0],
            storeEnd=stored[1],
            notifyStart=notify[0],
            notifyEnd=notify[1],
            publishEnd=t4,
            drained=t5,
            cpuPublish=cpuPublish,
            gcSeconds=gcSeconds,
            gcCollections=gcCollections,
            cpuTotal=time.process_time() - cpu0,
            bytesSent=streams.bytesSent() - sent0,
            streams=outgoingLinks(),
        )

    async def naive(spec: dict[str, Any]) -> None:
        payload = last["payload"]
        count = int(spec["count"])
        gc.collect()
        t0 = now()
        for _ in range(count):
            payload.toXml()
        emit("naive", count=count, seconds=now() - t0)

    async def handle(cmd: dict[str, Any]) -> None:
        if "publish" in cmd:
            await publish(cmd["publish"])
        elif "naive" in cmd:
            await naive(cmd["naive"])

    listenForCommands(reactor, handle)
    database = node.core.database
    if database.dialect == "sqlite":
        settings = {
            "journal_mode": (await database.runQuery("PRAGMA journal_mode"))[0][0],
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                (await database.runQuery("PRAGMA synchronous"))[0][0], "?"
            ),
        }
    else:
        settings = {
            name: (await database.runQuery(f"SHOW {name}"))[0][0]
            for name in ("fsync", "synchronous_commit")
        }
    emit("ready", database=database.description, settings=settings)
    await defer.Deferred()


# -- receivers and subscriber -------------------------------------------------


class EventSink(pubsub.PubSubClient):  # type: ignore[misc]
    """
    Hands every items event to a callback.
    """

    def __init__(self, received: Callable[[pubsub.ItemsEvent], None]) -> None:
        super().__init__()
        self.received = received

    def itemsReceived(self, event: pubsub.ItemsEvent) -> None:
        """
        Pass C{event} on.
        """
        self.received(event)


def serverInfoOf(event: pubsub.ItemsEvent) -> Any:
    """
    @return: the C{serverinfo} payload of the event's first item, or
        L{None}.
    """
    for item in event.items:
        if item.name == "item":
            for child in item.elements(NS_SERVERINFO, "serverinfo"):
                return child
    return None


class SubscribeRequest(generic.Request):  # type: ignore[misc]
    """
    A XEP-0060 subscribe request of a JID for itself.
    """

    def __init__(self, service: str, node: str, subscriber: str) -> None:
        super().__init__(recipient=JID(service), sender=JID(subscriber), stanzaType="set")
        self.node = node
        self.subscriber = subscriber

    def toElement(self) -> Any:
        """
        @return: the C{iq} with its C{pubsub/subscribe} child.
        """
        element = generic.Request.toElement(self)
        subscribe = element.addElement((pubsub.NS_PUBSUB, "pubsub")).addElement("subscribe")
        subscribe["node"] = self.node
        subscribe["jid"] = self.subscriber
        return element


async def startSubscribers(
    reactor: Any,
    args: argparse.Namespace,
    nodes: list[tuple[str, str, int]],
    received: Callable[[pubsub.ItemsEvent], None],
    **options: Any,
) -> dict[str, LocalComponent]:
    """
    Build and start one node per C{(domain, address, port)} in C{nodes};
    the host of each domain hands every items event it receives to
    C{received}.

    @return: the host of each domain, by domain.
    """
    hosts: dict[str, LocalComponent] = {}
    for domain, address, port in nodes:
        node = nodeFor(reactor, args, domain, address, port, **options)
        host = node.core.component(domain)
        EventSink(received).setHandlerParent(host)
        hosts[domain] = host
        await startNode(reactor, node)
    return hosts


async def subscribeAll(hosts: dict[str, LocalComponent], spec: dict[str, Any]) -> None:
    """
    The C{{"subscribe": {"service", "node", "jids"}}} command: subscribe
    every JID in C{jids} (each from the host of its domain) to C{node} at
    C{service}, and answer C{subscribed} with how many succeeded and the
    first few errors.
    """
    requests = [
        hosts[JID(subscriber).host].request(
            SubscribeRequest(spec["service"], spec["node"], subscriber)
        )
        for subscriber in spec["jids"]
    ]
    results = await defer.DeferredList(requests, consumeErrors=True)
    failures = [r.getErrorMessage() for ok, r in results if not ok]
    emit("subscribed", ok=len(results) - len(failures), failures=failures[:3])


async def runReceivers(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{receivers} role: one node per C{--node DOMAIN=ADDRESS:PORT}.

    Commands: C{{"subscribe": {"service", "node", "jids"}}} answers
    C{subscribed}; C{{"expect": {"count", "tag", "peers"}}} answers
    C{expecting}, then C{received} once C{count} notifications whose item
    has C{peers} remote domains, the first named C{tag...}, have arrived.
    """
    state: dict[str, Any] = {"expected": -1}
    gcTimer = GCTimer()

    def received(event: pubsub.ItemsEvent) -> None:
        arrived = now()
        if state["expected"] < 0:
            return
        payload = serverInfoOf(event)
        ok = False
        if payload is not None:
            federation = payload.firstChildElement()
            federation = federation.firstChildElement() if federation is not None else None
            if federation is not None:
                first = federation.firstChildElement()
                ok = (
                    len(federation.children) == state["peers"]
                    and first is not None
                    and first.getAttribute("name", "").startswith(state["tag"])
                )
        if not ok:
            state["other"] += 1
            return
        state["count"] += 1
        if state["count"] == 1:
            state["first"] = arrived
        if state["count"] == state["expected"]:
            state["expected"] = -1
            emit(
                "received",
                count=state["count"],
                other=state["other"],
                first=state["first"],
                last=arrived,
                cpu=time.process_time() - state["cpu0"],
                gcSeconds=gcTimer.seconds,
            )

    nodes = []
    for spec in args.node:
        domain, _, where = spec.partition("=")
        address, _, port = where.rpartition(":")
        nodes.append((domain, address, int(port)))
    hosts = await startSubscribers(
        reactor, args, nodes, received, maxStanzaSize=args.max_stanza_size
    )

    async def handle(cmd: dict[str, Any]) -> None:
        if "subscribe" in cmd:
            await subscribeAll(hosts, cmd["subscribe"])
        elif "expect" in cmd:
            spec = cmd["expect"]
            state.update(
                expected=int(spec["count"]),
                tag=spec["tag"],
                peers=int(spec["peers"]),
                count=0,
                other=0,
                cpu0=time.process_time(),
            )
            gcTimer.reset()
            emit("expecting", tag=spec["tag"])

    listenForCommands(reactor, handle)
    emit("ready")
    await defer.Deferred()


async def runSubscriber(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{subscriber} role: subscribes to the origin's node on
    C{{"subscribe": {"service", "node", "jids"}}} and reports every item as
    an C{item} event: when it arrived, the named peers, the number of
    anonymous ones.
    """

    def received(event: pubsub.ItemsEvent) -> None:
        arrived = now()
        payload = serverInfoOf(event)
        if payload is None:
            return
        info = parsePayload(payload)
        remotes = [r for d in info.domains for r in d.remotes]
        emit(
            "item",
            t=arrived,
            named=sorted(r.name for r in remotes if r.name is not None),
            anonymous=sum(1 for r in remotes if r.name is None),
            connections={r.name or "": list(r.connections) for r in remotes},
        )

    hosts = await startSubscribers(
        reactor, args, [(args.domain, args.address, args.s2s_port)], received
    )

    async def handle(cmd: dict[str, Any]) -> None:
        if "subscribe" in cmd:
            await subscribeAll(hosts, cmd["subscribe"])

    listenForCommands(reactor, handle)
    emit("ready")
    await defer.Deferred()


# -- origin and linker --------------------------------------------------------


def reportLink(event: LinkUp | LinkDown) -> None:
    """
    Report a link that came up or ended as a C{link} event.
    """
    link = event.link
    emit(
        "link",
        t=now(),
        up=isinstance(event, LinkUp),
        domain=link.domain,
        direction=link.direction,
        local=link.localDomain,
    )


async def runOrigin(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{origin} role: a node with its XEP-0485 publisher, reporting
    C{link}, C{consent} (a peer's consent changed) and C{publish} events
    (start and end of every publish, with the peers it names).
    """
    node = nodeFor(
        reactor,
        args,
        args.domain,
        args.address,
        args.s2s_port,
        publish=True,
        publishDelay=args.publish_delay,
    )
    feed = node.core.feed
    feed.observe(LinkUp, reportLink)
    feed.observe(LinkDown, reportLink)
    feed.observe(
        ConsentChanged,
        lambda event: emit("consent", t=now(), domain=event.domain, consents=event.consents),
    )
    # The publisher publishes through the backend: time each of its calls.
    backend = node.serverInfo.backend
    publish = backend.publish

    def reportingPublish(
        nodeIdentifier: str, itemIdentifier: str, payload: str, *a: Any, **kw: Any
    ) -> defer.Deferred[Any]:
        start = now()
        info = parsePayload(generic.parseXml(payload.encode()))
        remotes = [r for d in info.domains for r in d.remotes]
        named = sorted(r.name for r in remotes if r.name is not None)

        def published(stored: object) -> object:
            emit(
                "publish",
                start=start,
                end=now(),
                named=named,
                anonymous=sum(1 for r in remotes if r.name is None),
            )
            return stored

        return publish(nodeIdentifier, itemIdentifier, payload, *a, **kw).addCallback(published)

    backend.publish = reportingPublish  # type: ignore[method-assign]
    await startNode(reactor, node)
    emit("ready", delay=args.publish_delay)
    await defer.Deferred()


async def runLinker(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{linker} role: on C{{"link": {"domain", "address", "port",
    "target"}}} build
    and start a node for C{domain}, then time a disco#info request from it
    to C{target} (which opens the link); answers C{linked}.
    """
    nodes: list[NodeService] = []

    async def link(spec: dict[str, Any]) -> None:
        domain = spec["domain"]
        node = nodeFor(reactor, args, domain, spec["address"], int(spec["port"]))
        disco = DiscoClientProtocol()
        disco.setHandlerParent(node.core.component(domain))
        await startNode(reactor, node)
        nodes.append(node)
        t0 = now()
        emit("linking", domain=domain, t=t0)
        info = await disco.requestInfo(JID(spec["target"]), sender=JID(domain))
        emit("linked", domain=domain, t0=t0, answered=now(), optIn=NS_SERVERINFO in info.features)

    async def handle(cmd: dict[str, Any]) -> None:
        if "link" in cmd:
            await link(cmd["link"])

    listenForCommands(reactor, handle)
    emit("ready")
    await defer.Deferred()


def main(reactor: Any, argv: list[str]) -> defer.Deferred[None]:
    """
    Parse C{argv} and run the role.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "role", choices=["publisher", "receivers", "origin", "subscriber", "linker"]
    )
    parser.add_argument("--domain", default="")
    parser.add_argument("--s2s-port", type=int, default=0)
    addNodeArguments(parser)
    parser.add_argument(
        "--node", action="append", default=[], help="DOMAIN=ADDRESS:PORT (receivers)"
    )
    parser.add_argument("--database", default="")
    parser.add_argument("--max-subscriptions", type=int, default=10)
    parser.add_argument("--max-stanza-size", type=int, default=256 * 1024)
    parser.add_argument("--publish-delay", type=float, default=2.0)
    args = parser.parse_args(argv)
    roles = {
        "publisher": runPublisher,
        "receivers": runReceivers,
        "origin": runOrigin,
        "subscriber": runSubscriber,
        "linker": runLinker,
    }
    return runRole(reactor, Path(args.data_dir), roles[args.role](args, reactor))


if __name__ == "__main__":
    task.react(main, (sys.argv[1:],))
