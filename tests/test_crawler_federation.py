# -*- test-case-name: tests.test_crawler_federation -*-
"""
The aggregator crawling a federation of our own nodes on loopback, over
real s2s streams: one seed, a publisher that opted out (C{--no-opt-in}),
an unreachable domain, and a hostile publisher whose item names another
domain as itself and lists 100,000 invented peers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody
from twisted.words.protocols.jabber.jid import JID

from tests.nodes import RunningNode, freePort, linkedBothWays, waitFor
from xmppnetgraph.config import Route
from xmppnetgraph.crawler.crawler import Crawler
from xmppnetgraph.graphview import viewGraph
from xmppnetgraph.model import GraphChanged, GraphSnapshot
from xmppnetgraph.serverinfo.payload import DomainInfo, RemoteDomain, ServerInfo, buildPayload

_log = Logger()

ADDRESS = "127.0.0.1"
AGGREGATOR = "agg.example"
DOMAINS = (AGGREGATOR, "a.example", "b.example", "c.example", "evil.example")


class _Collect(Protocol):
    """
    Collects a streamed body (the server-sent events).
    """

    def __init__(self) -> None:
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data


class CrawlFederationTests(TestCase):
    """
    One aggregator, seeded with C{a.example}, crawls the others.
    """

    timeout = 120

    def setUp(self) -> None:
        self.base = Path(self.mktemp()).absolute()
        self.base.mkdir(parents=True)
        self.ports = {domain: freePort(ADDRESS) for domain in DOMAINS}
        # Nothing listens here: connecting is refused at once.
        self.closedPort = freePort(ADDRESS)

    def node(self, domain: str, **config: Any) -> RunningNode:
        """
        Build and start the node for C{domain}, with routes to the others,
        to C{down.example} and to C{*.invented.example} (a closed port).
        """
        node = RunningNode(self.base, domain, ADDRESS, s2sPort=self.ports[domain])
        routes = [
            Route("down.example", ADDRESS, self.closedPort),
            Route("*.invented.example", ADDRESS, self.closedPort),
        ]
        for other, port in self.ports.items():
            if other != domain:
                routes += [Route(other, ADDRESS, port), Route("*." + other, ADDRESS, port)]
        config.setdefault("publishDelay", 0.2)
        node.build(routes=tuple(routes), **config)
        node.start()
        self.addCleanup(lambda: node.stop() if node.service.running else None)
        return node

    async def link(self, x: RunningNode, y: RunningNode) -> None:
        """
        X asks Y for disco#info; wait until each has a stream to the other
        both ways.
        """
        await x.disco.requestInfo(JID(y.domain), sender=JID(x.domain))

        await waitFor(lambda: linkedBothWays(x, y.domain) and linkedBothWays(y, x.domain))

    async def getJSON(self, node: RunningNode, path: str) -> Any:
        """
        @return: the decoded JSON of C{GET path} on C{node}'s web endpoint.
        """
        url = f"http://{node.address}:{node.webPort}{path}".encode()
        response = await Agent(reactor).request(b"GET", url)
        body = await readBody(response)
        self.assertEqual(response.code, 200, body)
        return json.loads(body)

    async def published(self, node: RunningNode, names: set[str], anonymous: int) -> None:
        """
        Wait until C{node} publishes C{names} and C{anonymous} unnamed peers.
        """
        publisher = node.service.serverInfo.publisher
        assert publisher is not None

        def done() -> bool:
            remotes = publisher.status().remotes or ()
            return {name for name, _ in remotes if name} == names and (
                sum(1 for name, _ in remotes if name is None) == anonymous
            )

        await waitFor(done, timeout=20)

    async def publishHostileItem(self, evil: RunningNode, count: int) -> None:
        """
        Publish on C{evil}'s node an item that reports for C{a.example} too
        and lists C{count} invented peers of its own.
        """
        invented = [RemoteDomain(f"n{n}.invented.example") for n in range(count)]
        info = ServerInfo(
            (
                DomainInfo("a.example", (RemoteDomain("evil-friend.example"),)),
                DomainInfo("evil.example", invented),
            )
        )
        payload = buildPayload(info).toXml()
        await evil.service.serverInfo.backend.publish(
            "serverinfo", "current", payload, requestor=None, createConfig={}
        )

    def view(self, snapshot: GraphSnapshot) -> dict[str, Any]:
        view = viewGraph(snapshot)
        return {
            "named": {n.label for n in view.nodes if n.label is not None},
            "anonymous": sum(1 for n in view.nodes if n.label is None),
            "edges": {(e.source, e.target): (e.confirmed, e.directions) for e in view.edges},
            "nodes": {n.id: n for n in view.nodes},
        }

    async def test_crawl(self) -> None:
        """
        From one seed the aggregator finds the reachable domains, names only
        those that consent, keeps opted-out and unreachable peers anonymous,
        confirms the edge both ends report, ignores what the hostile
        publisher says for another domain and caps what it invents; a link
        change at a publisher reaches the graph through the subscription.
        """
        a = self.node("a.example")
        b = self.node("b.example", optIn=False)
        c = self.node("c.example")
        evil = self.node("evil.example", publish=False, maxStanzaSize=16 * 1024 * 1024)
        await self.link(a, b)
        await self.link(a, c)
        await self.published(a, {"c.example"}, 1)
        await self.published(c, {"a.example"}, 0)
        started = time.monotonic()
        await self.publishHostileItem(evil, 2500)
        _log.info("hostile item published in {s:.1f} s", s=time.monotonic() - started)

        agg = self.node(
            AGGREGATOR,
            crawl=True,
            seeds=("a.example",),
            maxStanzaSize=16 * 1024 * 1024,
            maxReportDomains=2000,
            maxNewDomainsPerReporter=20,
            crawlRefresh=3600.0,
        )
        crawler = agg.service.crawler
        assert isinstance(crawler, Crawler)
        store = agg.service.graph
        self.assertTrue(crawler.submit("b.example").accepted)
        self.assertTrue(crawler.submit("down.example").accepted)
        started = time.monotonic()
        self.assertTrue(crawler.submit("evil.example").accepted)

        async def facts(domain: str) -> Any:
            record = await store.domain(domain)
            return None if record is None else record.facts

        async def allFetched() -> bool:
            for domain in ("a.example", "b.example", "c.example", "down.example", "evil.example"):
                if await facts(domain) is None:
                    return False
            return True

        for _ in range(600):
            if await allFetched():
                break
            await deferLater(reactor, 0.05, lambda: None)
        else:
            self.fail("not every domain was fetched within 30 s")
        _log.info("crawled in {s:.1f} s", s=time.monotonic() - started)

        self.assertEqual((await facts("a.example")).status, "publishes")
        self.assertEqual((await facts("c.example")).status, "publishes")
        aFacts = await facts("a.example")
        self.assertEqual(
            (aFacts.tlsVersion, aFacts.auth, aFacts.certValid, aFacts.softwareName),
            ("TLSv1.3", "dialback", False, "xmppnetgraph"),
        )
        self.assertEqual((await facts("b.example")).status, "no-consent")
        evilFacts = await facts("evil.example")
        self.assertEqual(evilFacts.status, "publishes", evilFacts)
        down = await facts("down.example")
        self.assertFalse(down.reachable)
        self.assertTrue(down.error)

        snapshot = await store.graph()
        seen = self.view(snapshot)
        self.assertTrue({"a.example", "c.example", "evil.example"} <= seen["named"], seen["named"])
        self.assertNotIn("b.example", seen["named"])
        self.assertNotIn("evil-friend.example", seen["named"])
        self.assertEqual(seen["edges"][("a.example", "c.example")][0], True)
        # a's report: c named, b anonymous (and the aggregator, once a has
        # seen its streams); nothing from evil's claim.
        aLinks = [k.remote for k in snapshot.links if k.reporter == "a.example"]
        self.assertEqual(aLinks.count(None), 1)
        self.assertIn("c.example", aLinks)
        self.assertNotIn("evil-friend.example", aLinks)
        evilLinks = [k for k in snapshot.links if k.reporter == "evil.example"]
        self.assertEqual(len(evilLinks), 2000)
        invented = [d for d in crawler._domains if d.endswith(".invented.example")]
        self.assertEqual(len(invented), 20)

        # 100,000 invented peers: more elements than a stanza may have. The
        # notification is refused (the stream closed with policy-violation)
        # and costs nothing more: the last report stays, no domain is added.
        started = time.monotonic()
        await self.publishHostileItem(evil, 100_000)
        await deferLater(reactor, 2.0, lambda: None)
        _log.info(
            "100,000-peer item published and refused in {s:.1f} s", s=time.monotonic() - started
        )
        self.assertEqual(
            len([k for k in (await store.graph()).links if k.reporter == "evil.example"]), 2000
        )
        self.assertEqual(len([d for d in crawler._domains if d.endswith(".invented.example")]), 20)
        self.assertTrue(agg.service.running)

        # The API shows the same graph.
        graph = await self.getJSON(agg, "/api/graph")
        labels = {n.get("label") for n in graph["nodes"]}
        self.assertTrue({"a.example", "c.example", "evil.example"} <= labels, labels)
        self.assertNotIn("b.example", labels)
        edge = [e for e in graph["edges"] if {e["from"], e["to"]} == {"a.example", "c.example"}]
        self.assertEqual([e["confirmed"] for e in edge], [True])
        page = await self.getJSON(agg, "/api/domains/b.example")
        self.assertIn("urn:xmpp:serverinfo:0", page["why"])

        # A link change at c reaches the aggregator by notification (the
        # refresh is an hour away), and so /api/events and /api/graph.
        events = _Collect()
        url = f"http://{agg.address}:{agg.webPort}/api/events".encode()
        response = await Agent(reactor).request(b"GET", url)
        response.deliverBody(events)
        self.addCleanup(lambda: events.transport and events.transport.stopProducing())
        changed: list[GraphChanged] = []
        agg.service.core.feed.observe(GraphChanged, changed.append)
        started = time.monotonic()
        await b.disco.requestInfo(JID("c.example"), sender=JID("b.example"))

        async def cReportsB() -> bool:
            links = (await store.graph()).links
            return any(k.reporter == "c.example" and k.remote is None for k in links)

        for _ in range(200):
            if await cReportsB():
                break
            await deferLater(reactor, 0.05, lambda: None)
        else:
            self.fail("c's new link did not reach the aggregator within 10 s")
        _log.info("link change to graph in {s:.2f} s", s=time.monotonic() - started)
        self.assertTrue(any("c.example" in event.domains for event in changed))
        await waitFor(lambda: b'"domain":"c.example"' in events.data, timeout=10)
        graph = await self.getJSON(agg, "/api/graph")
        self.assertTrue(
            any(
                "c.example" in (e["from"], e["to"])
                and "b.example" not in (e["from"], e["to"])
                and any(
                    n["id"] in (e["from"], e["to"]) and "label" not in n for n in graph["nodes"]
                )
                for e in graph["edges"]
            )
        )
