#!/usr/bin/env python3
"""
The processes of C{crawl_federation.py}: a simulated federation and the
aggregator that crawls it.

C{simulator}: many domains C{d00000.sim}, C{d00001.sim}, ... and their
pub-sub services C{pubsub.dNNNNN.sim}, all in this one process behind one
of our L{S2SService}s: its C{localDomains} is set to every simulated
domain, so each one accepts streams (TLS; one self-signed certificate, or
with C{--certify-domains} one certificate per domain chosen by SNI, and
one dialback secret for all; SASL EXTERNAL from an aggregator whose
certificate is from the C{--ca} it trusts, dialback otherwise;
bidirectional streams unless C{--no-bidi}) and opens its own outgoing
streams, as a separate server would. One handler answers the IQs of all
of them: disco#info (C{urn:xmpp:serverinfo:0} and the serverinfo form
naming C{pubsub.dNNNNN.sim} node C{serverinfo}), disco#items, the items of
that node (a XEP-0485 item built with L{buildPayload} from the generated
graph, serialized once), subscriptions to it, and software version.

C{aggregator}: an ordinary node (L{buildService}, C{crawl=True}, one
seed, a static route C{*.sim} to the simulator) that reports its crawl
progress and when a report reaches its graph store.

Not part of the package.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import now
from _node import NoDNS, buildNode, emit, listenForCommands, runRole, startNode
from cryptography import x509
from OpenSSL import SSL
from twisted.application import service
from twisted.internet import defer, task
from twisted.words.protocols.jabber import error
from twisted.words.xish import domish
from wokkel.generic import XmlPipe

from xmppnetgraph.config import Config, parseRoute
from xmppnetgraph.core import makeCore
from xmppnetgraph.s2s.build import buildS2S
from xmppnetgraph.s2s.service import S2SService
from xmppnetgraph.serverinfo.payload import (
    DomainInfo,
    RemoteDomain,
    ServerInfo,
    buildPayload,
    serverInfoFormField,
)
from xmppnetgraph.store.database import openDatabase
from xmppnetgraph.tap import tuneGarbageCollector

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "xmpp-network-graph-2025-01.json"

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_VERSION = "jabber:iq:version"
NS_X_DATA = "jabber:x:data"
NS_SERVERINFO = "urn:xmpp:serverinfo:0"
FORM_TYPE = "http://jabber.org/network/serverinfo"
NODE = "serverinfo"

# Most named peers one simulated domain gets: below the aggregator's
# default --max-new-domains-per-reporter (500), so that no name of the
# generated graph is made anonymous by that cap.
MAX_NAMED = 400


# -- the generated federation ---------------------------------------------------


def degreeSamples(path: Path = DATA) -> list[tuple[int, int]]:
    """
    @return: for each named domain of the public snapshot, its number of
        named and of anonymous peers (the degree distribution to copy).
        Without the file, a small built-in heavy-tailed sample.
    """
    if not path.exists():
        return [(1, 2), (2, 5), (4, 10), (8, 20), (16, 40), (30, 100), (60, 250)]
    graph = json.loads(path.read_text())
    named = {n["id"] for n in graph["nodes"] if n.get("label")}
    peers: dict[str, set[str]] = {n: set() for n in named}
    anonymous: dict[str, int] = dict.fromkeys(named, 0)
    for edge in graph["edges"]:
        for a, b in ((edge["from"], edge["to"]), (edge["to"], edge["from"])):
            if a in named:
                if b in named:
                    peers[a].add(b)
                else:
                    anonymous[a] += 1
    return [(len(peers[n]), anonymous[n]) for n in sorted(named)]


def domainName(index: int) -> str:
    """
    @return: the name of simulated domain C{index}.
    """
    return f"d{index:05d}.sim"


def generate(
    count: int, samples: Sequence[tuple[int, int]], rng: random.Random, anonymous: bool = True
) -> tuple[list[set[int]], list[int]]:
    """
    A connected federation of C{count} domains whose degrees follow
    C{samples}: a preferential-attachment spanning tree (every domain links
    to an earlier one, hubs more likely) plus random pairings of the rest of
    each domain's named degree (a configuration model). Links are mutual:
    both ends name each other.

    @return: the named peers of each domain (indices), and the number of
        anonymous peers of each.
    """
    wanted: list[int] = []
    anon: list[int] = []
    for _ in range(count):
        n, a = rng.choice(samples)
        wanted.append(max(1, min(n, MAX_NAMED, count - 1)))
        anon.append(a if anonymous else 0)
    peers: list[set[int]] = [set() for _ in range(count)]
    pool: list[int] = []
    for i in range(count):
        if i:
            j = rng.choice(pool)
            peers[i].add(j)
            peers[j].add(i)
        pool.extend([i] * wanted[i])
    stubs = [i for i in range(count) for _ in range(max(0, wanted[i] - len(peers[i])))]
    rng.shuffle(stubs)
    for a, b in zip(stubs[::2], stubs[1::2], strict=False):
        if a != b and len(peers[a]) < MAX_NAMED and len(peers[b]) < MAX_NAMED:
            peers[a].add(b)
            peers[b].add(a)
    return peers, anon


def itemXml(domain: str, named: Iterable[str], anonymous: int, rng: random.Random) -> str:
    """
    @return: the serialized XEP-0485 payload of C{domain}, naming C{named}
        (each with an incoming and an outgoing stream) and C{anonymous}
        unnamed peers (one stream each, of a random direction).
    """
    remotes = [RemoteDomain(name, ("incoming", "outgoing")) for name in named]
    remotes += [
        RemoteDomain(None, (rng.choice(("incoming", "outgoing", "bidi")),))
        for _ in range(anonymous)
    ]
    payload = buildPayload(ServerInfo((DomainInfo(domain, tuple(remotes)),)))
    return str(payload.toXml())


# -- the simulator ----------------------------------------------------------------


class Federation:
    """
    The simulated domains' answers, for every domain at once.

    @ivar names: the simulated domains, by index.
    @ivar subscribers: the JIDs subscribed to each domain's node.
    """

    def __init__(self, peers: list[set[int]], anon: list[int], rng: random.Random) -> None:
        self.peers = peers
        self.anon = anon
        self.rng = rng
        self.names = [domainName(i) for i in range(len(peers))]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.pubsubIndex = {"pubsub." + name: i for i, name in enumerate(self.names)}
        self._items: dict[int, str] = {}
        self.subscribers: dict[int, set[str]] = {}
        self.requests: dict[str, int] = {}
        self.source: XmlPipe | None = None

    def localDomains(self) -> frozenset[str]:
        """
        @return: every simulated domain and pub-sub service.
        """
        return frozenset(self.index) | frozenset(self.pubsubIndex)

    def item(self, i: int) -> str:
        """
        @return: the serialized payload of domain C{i} (made on first use).
        """
        xml = self._items.get(i)
        if xml is None:
            named = sorted(self.names[j] for j in self.peers[i])
            xml = self._items[i] = itemXml(self.names[i], named, self.anon[i], self.rng)
        return xml

    def attach(self, router: Any) -> None:
        """
        Route every simulated domain to our one handler. (Wokkel's
        C{Router.addRoute} adds an observer per route, which would route
        every stanza once per domain: the table is filled directly.)
        """
        pipe = XmlPipe()
        self.source = pipe.source
        for name in self.localDomains():
            router.routes[name] = pipe.sink
        pipe.sink.addObserver("/*", router.route)
        pipe.source.addObserver("/iq", self.onIQ)

    def send(self, element: domish.Element) -> None:
        assert self.source is not None
        self.source.send(element)

    def onIQ(self, iq: domish.Element) -> None:
        """
        Answer an IQ to any simulated domain or service.
        """
        kind = iq.getAttribute("type")
        if kind not in ("get", "set"):
            return
        to = iq.getAttribute("to", "")
        child = iq.firstChildElement()
        what = (child.uri, child.name) if child is not None else ("", "")
        self.requests[what[0]] = self.requests.get(what[0], 0) + 1
        reply = domish.Element((None, "iq"))
        reply["type"] = "result"
        reply["to"] = iq.getAttribute("from", "")
        reply["from"] = to
        if "id" in iq.attributes:
            reply["id"] = iq["id"]
        if to in self.index:
            i = self.index[to]
            if what == (NS_DISCO_INFO, "query") and not child.getAttribute("node"):
                self.domainInfo(reply.addElement((NS_DISCO_INFO, "query")), i)
            elif what == (NS_DISCO_ITEMS, "query") and not child.getAttribute("node"):
                query = reply.addElement((NS_DISCO_ITEMS, "query"))
                query.addElement("item")["jid"] = "pubsub." + to
            elif what == (NS_VERSION, "query") and kind == "get":
                query = reply.addElement((NS_VERSION, "query"))
                query.addElement("name", content="xmppnetgraph-simfed")
                query.addElement("version", content="1")
            else:
                self.fail(iq, "service-unavailable")
                return
        elif to in self.pubsubIndex:
            i = self.pubsubIndex[to]
            if what == (NS_DISCO_INFO, "query") and not child.getAttribute("node"):
                query = reply.addElement((NS_DISCO_INFO, "query"))
                identity = query.addElement("identity")
                identity["category"], identity["type"] = "pubsub", "service"
                for feature in (NS_DISCO_INFO, NS_PUBSUB):
                    query.addElement("feature")["var"] = feature
            elif what == (NS_PUBSUB, "pubsub"):
                if not self.pubsub(reply, child, i, iq.getAttribute("from", ""), kind):
                    return
            else:
                self.fail(iq, "service-unavailable")
                return
        else:
            self.fail(iq, "item-not-found")
            return
        self.send(reply)

    def domainInfo(self, query: domish.Element, i: int) -> None:
        """
        Fill the disco#info of domain C{i}: a server with the serverinfo
        feature and form.
        """
        identity = query.addElement("identity")
        identity["category"], identity["type"] = "server", "im"
        for feature in (NS_DISCO_INFO, NS_DISCO_ITEMS, NS_VERSION, NS_SERVERINFO):
            query.addElement("feature")["var"] = feature
        form = query.addElement((NS_X_DATA, "x"))
        form["type"] = "result"
        field = form.addElement("field")
        field["var"], field["type"] = "FORM_TYPE", "hidden"
        field.addElement("value", content=FORM_TYPE)
        field = form.addElement("field")
        field["var"], field["type"] = "serverinfo-pubsub-node", "text-single"
        field.addElement("value", content=serverInfoFormField("pubsub." + self.names[i], NODE))

    def pubsub(
        self, reply: domish.Element, request: domish.Element, i: int, sender: str, kind: str
    ) -> bool:
        """
        Answer a pub-sub items request or subscription to domain C{i}'s
        node.

        @return: whether C{reply} is to be sent (else an error was).
        """
        verb = request.firstChildElement()
        name = verb.name if verb is not None else ""
        if verb is None or verb.getAttribute("node") != NODE:
            self.fail(reply, "item-not-found", swap=True)
            return False
        out = reply.addElement((NS_PUBSUB, "pubsub"))
        if kind == "get" and name == "items":
            items = out.addElement("items")
            items["node"] = NODE
            self.addItem(items, i)
            return True
        if kind == "set" and name == "subscribe":
            subscriber = verb.getAttribute("jid", "")
            self.subscribers.setdefault(i, set()).add(subscriber)
            subscription = out.addElement("subscription")
            subscription["node"] = NODE
            subscription["jid"] = subscriber
            subscription["subscription"] = "subscribed"
            return True
        self.fail(reply, "feature-not-implemented", swap=True)
        return False

    def addItem(self, parent: domish.Element, i: int) -> None:
        item = parent.addElement("item")
        item["id"] = "current"
        item.addRawXml(self.item(i))

    def fail(self, iq: domish.Element, condition: str, swap: bool = False) -> None:
        """
        Answer C{iq} (or, with C{swap}, the request a reply was made for)
        with a stanza error.
        """
        if swap:
            request = domish.Element((None, "iq"))
            request["from"], request["to"] = iq["to"], iq["from"]
            request["id"] = iq.getAttribute("id", "")
            request["type"] = "get"
            iq = request
        self.send(error.StanzaError(condition).toResponse(iq))

    def change(self, i: int, peer: int) -> int:
        """
        Make domain C{i} name C{peer} too (or no longer, if it did), and
        notify its subscribers.

        @return: how many notifications were sent.
        """
        if peer in self.peers[i]:
            self.peers[i].discard(peer)
        else:
            self.peers[i].add(peer)
        self._items.pop(i, None)
        sent = 0
        for subscriber in sorted(self.subscribers.get(i, ())):
            message = domish.Element((None, "message"))
            message["from"] = "pubsub." + self.names[i]
            message["to"] = subscriber
            items = message.addElement((NS_PUBSUB_EVENT, "event")).addElement("items")
            items["node"] = NODE
            self.addItem(items, i)
            self.send(message)
            sent += 1
        return sent


def vmHWM() -> int:
    """
    @return: this process's peak RSS in KiB.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def certifyEachDomain(s2s: S2SService, directory: Path) -> None:
    """
    Present a certificate of its own to each simulated domain's peers, as a
    server with one certificate per virtual host does: chosen by SNI,
    issued (once, on first use) by a CA made in C{directory} (its
    C{ca.crt} is for the aggregator to trust), for the domain and its
    pub-sub service, with the key of C{s2s}'s own certificate.
    """
    from tests.pki import TestCA

    ca = TestCA(directory)
    publicKey = s2s.credentials.key.public_key()
    issued: dict[bytes, x509.Certificate] = {}

    def present(connection: SSL.Connection) -> None:
        name = connection.get_servername()
        if name is None:
            return
        certificate = issued.get(name)
        if certificate is None:
            domain = name.decode("ascii").removeprefix("pubsub.")
            certificate = ca.certificateFor([domain, f"pubsub.{domain}"], publicKey)
            issued[name] = certificate
        connection.use_certificate(certificate)

    s2s.serverTLSOptions.getContext().set_tlsext_servername_callback(present)


async def runSimulator(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{simulator} role.
    """
    rng = random.Random(args.seed)
    start = time.monotonic()
    peers, anon = generate(args.domains, degreeSamples(), rng, anonymous=not args.no_anonymous)
    federation = Federation(peers, anon, rng)
    generated = time.monotonic() - start
    dataDir = Path(args.data_dir)
    config = Config(
        domain=federation.names[0],
        dataDir=dataDir,
        s2s=f"tcp:{args.s2s_port}:interface={args.address}:backlog=1024",
        routes=tuple(parseRoute(r) for r in args.route),
        enableWeb=False,
        crawl=False,
        publish=False,
        handshakeTimeout=120.0,
        connectTimeout=60.0,
        idleTimeout=args.idle_timeout,
        caFile=Path(args.ca) if args.ca else None,
        bidi=not args.no_bidi,
    )
    core = makeCore(reactor, openDatabase(config.database, dataDir, reactor), resolver=NoDNS())
    top = service.MultiService()
    s2s = buildS2S(core, config, top)
    s2s.localDomains = federation.localDomains()
    if args.certify_domains:
        certifyEachDomain(s2s, Path(args.certify_domains))
    federation.attach(core.router)
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    gc.collect()
    if args.gc == "twistd":
        tuneGarbageCollector()

    async def handle(cmd: dict[str, Any]) -> None:
        if "change" in cmd:
            spec = cmd["change"]
            i, peer = int(spec["domain"]), int(spec["peer"])
            t = now()
            sent = federation.change(i, peer)
            emit("changed", t=t, sent=sent, names=peer in federation.peers[i])
        elif "names" in cmd:
            spec = cmd["names"]
            emit("names", names=int(spec["peer"]) in federation.peers[int(spec["domain"])])
        elif "stats" in cmd:
            emit(
                "stats",
                requests=federation.requests,
                subscribed=sum(len(s) for s in federation.subscribers.values()),
                streams=len(s2s._streams),
                hwm=vmHWM(),
            )

    listenForCommands(reactor, handle)
    named = [len(p) for p in peers]
    emit(
        "ready",
        pid=os.getpid(),
        domains=len(peers),
        namedLinks=sum(named) // 2,
        anonymous=sum(anon),
        maxNamed=max(named),
        generated=generated,
        neighbours={str(i): sorted(peers[i])[:5] for i in range(min(3, len(peers)))},
    )
    await defer.Deferred()


# -- the aggregator ---------------------------------------------------------------


async def runAggregator(args: argparse.Namespace, reactor: Any) -> None:
    """
    The C{aggregator} role: crawl from C{--seed-domain}; report progress
    (reports stored, by simulated domain) every C{--interval} seconds and
    C{done} when C{--expect} simulated domains have their report stored.
    """
    options: dict[str, Any] = dict(
        crawl=True,
        seeds=(args.seed_domain,),
        publish=args.publish,
        crawlConcurrency=args.concurrency,
        idleTimeout=args.idle_timeout,
        handshakeTimeout=120.0,
        connectTimeout=60.0,
        bidi=not args.no_bidi,
    )
    if args.tls_cert:
        options.update(tlsCert=Path(args.tls_cert), tlsKey=Path(args.tls_key))
    if args.ca:
        options.update(caFile=Path(args.ca))
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    node = buildNode(
        reactor,
        args.domain,
        Path(args.data_dir),
        args.address,
        args.s2s_port,
        args.route,
        **options,
    )
    # The collector settings of twistd xmppnetgraph, as a deployed node has
    # them (buildService leaves the process's collector alone), unless the
    # benchmark asks for Python's defaults.
    if args.gc == "twistd":
        tuneGarbageCollector()
    graph = node.graph
    stored: dict[str, float] = {}
    fetched: dict[str, int] = {}
    watches: list[tuple[str, str, bool]] = []
    storeReport = graph.storeReport
    recordFetch = graph.recordFetch

    def countingRecordFetch(domain: str, facts: Any) -> Any:
        fetched[facts.status] = fetched.get(facts.status, 0) + 1
        return recordFetch(domain, facts)

    def countingStoreReport(reporter: str, remotes: Iterable[Any]) -> Any:
        remotes = list(remotes)
        d = storeReport(reporter, remotes)

        def done(result: Any) -> Any:
            t = now()
            if reporter.endswith(".sim") and reporter not in stored:
                stored[reporter] = t
            if watches:
                names = {r.name for r in remotes}
                for watch in list(watches):
                    domain, peer, present = watch
                    if domain == reporter and (peer in names) == present:
                        watches.remove(watch)
                        emit("seen", t=t, domain=domain, peer=peer, present=present)
            return result

        return d.addCallback(done)

    graph.storeReport = countingStoreReport  # type: ignore[method-assign]
    graph.recordFetch = countingRecordFetch  # type: ignore[method-assign]
    cpu0 = time.process_time()
    if args.profile:
        profiler.enable()
    t0 = now()
    await startNode(reactor, node)
    emit("started", t=t0, pid=os.getpid())
    finished = [False]

    def progress() -> None:
        if finished[0]:
            return
        count = sum(1 for d in stored if not d.startswith("pubsub."))
        assert node.crawler is not None
        emit(
            "progress",
            t=now(),
            stored=count,
            known=len(node.crawler._domains),
            fetched=dict(fetched),
            links=sum(1 for _ in node.core.linkTable.links()),
            cpu=time.process_time() - cpu0,
            hwm=vmHWM(),
        )
        if count >= args.expect:
            finished[0] = True
            if args.profile:
                profiler.disable()
                profiler.dump_stats(str(Path(args.data_dir) / "aggregator.prof"))
            times = sorted(stored.values())
            emit(
                "done",
                t=times[-1],
                quarters=[times[int(q * (len(times) - 1))] - t0 for q in (0.25, 0.5, 0.75)],
                stored=count,
                cpu=time.process_time() - cpu0,
                hwm=vmHWM(),
                fetched=dict(fetched),
                links=sum(1 for _ in node.core.linkTable.links()),
            )

    loop = task.LoopingCall(progress)
    loop.clock = reactor
    loop.start(args.interval, now=False).addErrback(
        lambda f: emit("error", message=f.getTraceback())
    )

    async def recrawl() -> None:
        # The crawl again over the streams that are up: every simulated
        # domain discovered, its fetch recorded and its report stored, as
        # the crawler's fetch does, with the same concurrency.
        assert node.crawler is not None
        discover = node.crawler._discover
        domains = sorted(d for d in stored if not d.startswith("pubsub."))
        semaphore = defer.DeferredSemaphore(args.concurrency)
        opened0 = len(node.s2s._streams)

        async def one(domain: str) -> None:
            discovery = await discover(domain)
            await recordFetch(domain, discovery.facts)
            if discovery.report is not None:
                await storeReport(domain, discovery.report)

        cpu = time.process_time()
        start = now()
        await defer.gatherResults(
            [semaphore.run(lambda d=d: defer.Deferred.fromCoroutine(one(d))) for d in domains]
        )
        emit(
            "recrawled",
            domains=len(domains),
            seconds=now() - start,
            cpu=time.process_time() - cpu,
            streams=len(node.s2s._streams) - opened0,
        )

    async def handle(cmd: dict[str, Any]) -> None:
        if "recrawl" in cmd:
            await recrawl()
        elif "watch" in cmd:
            spec = cmd["watch"]
            watches.append((spec["domain"], spec["peer"], bool(spec["present"])))
            emit("watching")
        elif "counts" in cmd:
            counts = await graph.counts()
            emit(
                "counts",
                domains=counts.domains,
                publishing=counts.publishing,
                reporters=counts.reporters,
                namedLinks=counts.namedLinks,
                anonymousLinks=counts.anonymousLinks,
                confirmedPairs=counts.confirmedPairs,
            )

    listenForCommands(reactor, handle)
    await defer.Deferred()


def main(reactor: Any, argv: list[str]) -> defer.Deferred[None]:
    """
    Parse C{argv} and run the role.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["simulator", "aggregator"])
    parser.add_argument("--s2s-port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--route", action="append", default=[])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=485)
    parser.add_argument("--no-anonymous", action="store_true")
    parser.add_argument("--domain", default="agg.example")
    parser.add_argument("--seed-domain", default=domainName(0))
    parser.add_argument("--expect", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--idle-timeout", type=float, default=600.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--ca", default="", help="CA file to trust")
    parser.add_argument(
        "--certify-domains",
        default="",
        help="DIR: make a CA there (ca.crt) and present, for each domain named by SNI, a "
        "certificate from it for the domain and its pub-sub service (simulator)",
    )
    parser.add_argument("--tls-cert", default="", help="certificate (aggregator)")
    parser.add_argument("--tls-key", default="", help="its key (aggregator)")
    parser.add_argument("--no-bidi", action="store_true", help="no XEP-0288 streams")
    parser.add_argument("--gc", choices=["twistd", "default"], default="twistd")
    args = parser.parse_args(argv)
    # Four streams per crawled domain stay open for --idle-timeout: raise
    # the soft limit on file descriptors to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    role = runSimulator if args.role == "simulator" else runAggregator
    return runRole(reactor, Path(args.data_dir), role(args, reactor))


if __name__ == "__main__":
    task.react(main, (sys.argv[1:],))
