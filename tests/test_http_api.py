# -*- test-case-name: tests.test_http_api -*-
"""
The aggregator's JSON API in memory (L{treq.testing.StubTreq}) against a
real L{GraphStore} on a SQLite file, filled through C{storeReport} and
C{recordFetch}, with a fake crawler; every answer is validated against the
OpenAPI document.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from jsonschema import Draft202012Validator
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from tests.postgres import postgresSkip, requirePostgres, temporaryDatabase
from tests.test_http import DOCUMENT, validator
from xmppnetgraph.error import InvalidDomainName
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.http.api import ServerInfo
from xmppnetgraph.http.build import MAX_REQUEST_BODY, _APISite
from xmppnetgraph.http.site import WebAPI
from xmppnetgraph.interfaces import ICrawler, IGraphStore, ILinkTable
from xmppnetgraph.layout.place import JITTER
from xmppnetgraph.layout.service import Layout
from xmppnetgraph.model import CrawlStatus, DiscoveryStep, DomainFacts, Link, SubmitOutcome
from xmppnetgraph.names import normalizeDomain
from xmppnetgraph.serverinfo.payload import RemoteDomain
from xmppnetgraph.store.database import Database, openDatabase
from xmppnetgraph.store.graph import GraphStore

T0 = 1_700_000_000.0


def publishes(software: str = "Prosody", version: str = "13.0.1") -> DomainFacts:
    """
    @return: the facts of a domain that consents and publishes.
    """
    return DomainFacts(
        status="publishes",
        reachable=True,
        publishes=True,
        consents=True,
        softwareName=software,
        softwareVersion=version,
        tlsVersion="TLSv1.3",
        auth="sasl-external",
        certValid=True,
        directTLS=False,
        steps=(
            DiscoveryStep("disco#info", True, "lists urn:xmpp:serverinfo:0"),
            DiscoveryStep("items pubsub.x node serverinfo", True, "1 item"),
        ),
    )


NO_CONSENT = DomainFacts(
    status="no-consent",
    reachable=True,
    publishes=False,
    consents=False,
    steps=(DiscoveryStep("disco#info", False, "answered without urn:xmpp:serverinfo:0"),),
)


@implementer(ILinkTable)
class NoLinks:
    """
    A link table without links.
    """

    def links(self) -> list[Link]:
        return []


@implementer(ICrawler)
@attrs.define
class FakeCrawler:
    """
    A crawler that remembers submissions.
    """

    statuses: dict[str, CrawlStatus] = attrs.Factory(dict)
    submitted: list[str] = attrs.Factory(list)

    def submit(self, domain: str) -> SubmitOutcome:
        try:
            name = normalizeDomain(domain)
        except ValueError as e:
            raise InvalidDomainName(str(e)) from None
        self.submitted.append(name)
        status = self.statuses.get(name)
        status = attrs.evolve(status, submitted=True) if status else None
        status = self.statuses[name] = status or CrawlStatus(
            name, "queued", "submission", submitted=True
        )
        return SubmitOutcome(name, True, f"{name} will be crawled soon", status)

    def status(self, domain: str) -> CrawlStatus | None:
        return self.statuses.get(domain)


def schemaOf(path: str, method: str = "get", status: str = "200") -> Draft202012Validator:
    """
    @return: a validator of the JSON answer C{status} of C{method path}.
    """
    schema = DOCUMENT["paths"][path][method]["responses"][status]["content"]["application/json"][
        "schema"
    ]
    return Draft202012Validator({**DOCUMENT, **schema})


class APIFixture:
    """
    A graph store on a SQLite file (clock: a L{Clock}) and the web API on
    it, reached through L{StubTreq}.
    """

    database: Database
    mktemp: Any
    addCleanup: Any

    def databaseURL(self) -> str | None:
        """
        @return: the store's database URL (L{None}: a SQLite file).
        """
        return None

    def makeAPI(self, **kw: Any) -> None:
        """
        Open the store and build the API (C{kw}: more L{WebAPI} arguments).
        """
        base = Path(self.mktemp()).absolute()
        base.mkdir(parents=True)
        self.clock = Clock()
        self.clock.advance(T0)
        self.database = openDatabase(self.databaseURL(), base, reactor)
        self.addCleanup(self.database.close)
        self.feed = ChangeFeed()
        self.store: IGraphStore = GraphStore(self.database, self.feed, self.clock)
        self.crawler = kw.pop("crawler", FakeCrawler())
        self.api = WebAPI(
            "agg.example",
            NoLinks(),
            self.feed,
            self.clock,
            graph=kw.pop("graph", self.store),
            crawler=self.crawler,
            **kw,
        )
        self.addCleanup(self.api.stop)
        self.http = StubTreq(self.api.resource())

    async def settle(self, d: Deferred[Any]) -> Any:
        """
        Pump the in-memory connection until C{d} (a request's) fires;
        database threads answer on the real reactor meanwhile.
        """
        done: list[object] = []
        d.addBoth(lambda result: (done.append(result), result)[1])
        for _ in range(5000):
            self.http.flush()
            if done:
                break
            await deferLater(reactor, 0.002, lambda: None)
        return await d

    async def request(
        self, method: str, path: str, **kw: Any
    ) -> tuple[int, Mapping[bytes, list[bytes]], bytes]:
        """
        @return: status, headers and body of a request.
        """
        response = await self.settle(self.http.request(method, "http://agg.example" + path, **kw))
        body = await self.settle(response.content())
        headers = {k.lower(): v for k, v in response.headers.getAllRawHeaders()}
        return response.code, headers, body

    async def getJSON(self, path: str, status: int = 200, **kw: Any) -> Any:
        """
        @return: the decoded JSON body of C{GET path}, after checking its
            status and content type.
        """
        code, headers, body = await self.request("GET", path, **kw)
        self.assertEqual(code, status, body)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            headers[b"content-type"], [b"application/json; charset=utf-8"]
        )
        return json.loads(body)

    async def fill(self) -> None:
        """
        A small federation: a.example and b.example publish and report each
        other; a.example also reports hidden.example (no consent) and an
        anonymous peer; conference.a.example is a service subdomain.
        """
        await self.store.recordFetch("a.example", publishes())
        await self.store.recordFetch("b.example", publishes("ejabberd", "25.07"))
        await self.store.recordFetch("conference.a.example", publishes())
        await self.store.recordFetch("hidden.example", NO_CONSENT)
        self.clock.advance(10)
        await self.store.storeReport(
            "a.example",
            [
                RemoteDomain("b.example", ("incoming", "outgoing")),
                RemoteDomain("hidden.example", ("outgoing",)),
                RemoteDomain(None, ("incoming",)),
            ],
        )
        await self.store.storeReport(
            "b.example",
            [
                RemoteDomain("a.example", ("incoming", "outgoing")),
                RemoteDomain("conference.a.example", ("outgoing",)),
            ],
        )


class GraphTests(APIFixture, TestCase):
    """
    C{/api/graph} and C{/data.json}.
    """

    async def test_graph(self) -> None:
        """
        The graph has the named, consenting domains (the service subdomain
        folded), an anonymous node for the anonymous peer and one for the
        peer that did not consent, a confirmed edge between the two
        publishers; valid against its schema.
        """
        self.makeAPI()
        await self.fill()
        graph = await self.getJSON("/api/graph")
        schemaOf("/api/graph").validate(graph)
        labels = {node["id"]: node.get("label") for node in graph["nodes"]}
        self.assertEqual({k for k, v in labels.items() if v}, {"a.example", "b.example"})
        self.assertEqual(sum(1 for v in labels.values() if v is None), 2)
        self.assertNotIn("hidden.example", json.dumps(graph))
        edge = next(e for e in graph["edges"] if {e["from"], e["to"]} == {"a.example", "b.example"})
        self.assertTrue(edge["confirmed"])
        self.assertEqual(graph["counts"]["named"], 2)
        self.assertEqual(graph["last_change"], "2023-11-14T22:13:30Z")
        a = next(node for node in graph["nodes"] if node["id"] == "a.example")
        self.assertEqual(a["members"], ["conference.a.example"])

    async def test_parameters(self) -> None:
        """
        C{?fold=0} shows the subdomain apart, C{?skipAnon} drops the
        anonymous nodes, C{?combineAnon} makes them one, C{?focus} keeps a
        domain and its neighbours, and C{?at} shows the past.
        """
        self.makeAPI()
        await self.fill()
        unfolded = await self.getJSON("/api/graph?fold=0")
        self.assertIn("conference.a.example", {n["id"] for n in unfolded["nodes"]})
        skipped = await self.getJSON("/api/graph?skipAnon")
        self.assertEqual({n["id"] for n in skipped["nodes"]}, {"a.example", "b.example"})
        combined = await self.getJSON("/api/graph?combineAnon=1")
        self.assertIn("anonymous", {n["id"] for n in combined["nodes"]})
        self.assertEqual(len(combined["nodes"]), 3)
        focus = await self.getJSON("/api/graph?focus=B.example&fold=0")
        self.assertEqual(
            {n["id"] for n in focus["nodes"]},
            {"a.example", "b.example", "conference.a.example"},
        )
        past = await self.getJSON("/api/graph?at=2023-11-14T22:13:25Z")
        schemaOf("/api/graph").validate(past)
        self.assertEqual(past["edges"], [])
        self.assertEqual({n["id"] for n in past["nodes"]}, {"a.example", "b.example"})

    async def test_positions(self) -> None:
        """
        Every node carries numbers C{x} and C{y}: the stored position when
        the layout has one; C{/data.json} has none.
        """
        layout = Layout({"a.example": (-500.0, 250.0), "b.example": (400.0, -100.0)})
        self.makeAPI(layout=layout)
        await self.fill()
        graph = await self.getJSON("/api/graph")
        positions = {node["id"]: (node["x"], node["y"]) for node in graph["nodes"]}
        self.assertEqual(positions["a.example"], (-500.0, 250.0))
        self.assertEqual(positions["b.example"], (400.0, -100.0))
        for x, y in positions.values():
            self.assertIsInstance(x, float)
            self.assertIsInstance(y, float)
        data = await self.getJSON("/data.json")
        self.assertEqual({key for node in data["nodes"] for key in node}, {"id", "label"})

    async def test_newDomainNextToNeighbour(self) -> None:
        """
        A domain that a report adds appears in the next answer next to the
        domain that reports it (within the placement's jitter), not
        somewhere at random; the anonymous peers sit next to their
        reporter too.
        """
        layout = Layout({"a.example": (-500.0, 250.0), "b.example": (400.0, -100.0)})
        self.makeAPI(layout=layout)
        await self.fill()
        await self.getJSON("/api/graph")
        await self.store.recordFetch("new.example", publishes())
        await self.store.storeReport(
            "b.example",
            [
                RemoteDomain("a.example", ("incoming", "outgoing")),
                RemoteDomain("conference.a.example", ("outgoing",)),
                RemoteDomain("new.example", ("outgoing",)),
            ],
        )
        graph = await self.getJSON("/api/graph")
        nodes = {node["id"]: node for node in graph["nodes"]}
        near = JITTER * 500.0
        self.assertLessEqual(
            math.dist((nodes["new.example"]["x"], nodes["new.example"]["y"]), (400.0, -100.0)),
            near + 0.1,
        )
        for node in graph["nodes"]:
            if "label" not in node:
                self.assertLessEqual(math.dist((node["x"], node["y"]), (-500.0, 250.0)), near + 0.1)

    async def test_otherViewsReusePositions(self) -> None:
        """
        C{?fold=0} puts the service subdomain next to its parent,
        C{?combineAnon} the combined node next to the reporter of the
        anonymous peers, and both keep the stored positions of the rest.
        """
        layout = Layout({"a.example": (-500.0, 250.0), "b.example": (400.0, -100.0)})
        self.makeAPI(layout=layout)
        await self.fill()
        for query, node in [("fold=0", "conference.a.example"), ("combineAnon", "anonymous")]:
            graph = await self.getJSON(f"/api/graph?{query}")
            nodes = {n["id"]: (n["x"], n["y"]) for n in graph["nodes"]}
            self.assertEqual(nodes["b.example"], (400.0, -100.0))
            # conference.a.example: next to its parent; the combined node:
            # at the centroid of its one reporter.
            self.assertLessEqual(math.dist(nodes[node], (-500.0, 250.0)), JITTER * 500.0 + 0.1)

    async def test_relayoutIsANewAnswer(self) -> None:
        """
        A relayout (new positions applied) changes C{/api/graph}'s answer
        and ETag, though the store did not change; C{/data.json} stays.
        """
        layout = Layout({"a.example": (-500.0, 250.0), "b.example": (400.0, -100.0)})
        self.makeAPI(layout=layout)
        await self.fill()
        code, headers, _ = await self.request("GET", "/api/graph")
        _, dataHeaders, _ = await self.request("GET", "/data.json")
        layout.apply({"a.example": (0.0, 0.0)})
        graph = await self.getJSON("/api/graph")
        a = next(node for node in graph["nodes"] if node["id"] == "a.example")
        self.assertEqual((a["x"], a["y"]), (0.0, 0.0))
        _, after, _ = await self.request("GET", "/api/graph")
        self.assertNotEqual(after[b"etag"], headers[b"etag"])
        _, dataAfter, _ = await self.request("GET", "/data.json")
        self.assertEqual(dataAfter[b"etag"], dataHeaders[b"etag"])

    async def test_badParameters(self) -> None:
        """
        A bad parameter is a JSON 400 that names it.
        """
        self.makeAPI()
        for query, name in [
            ("at=yesterday", "at"),
            ("fold=maybe", "fold"),
            ("focus=not%20a%20domain", "focus"),
            ("skipAnon=1&skipAnon=0", "skipAnon"),
            ("focus=%FF", "focus"),
            ("focus=b%C3%BC..example", "focus"),
        ]:
            error = await self.getJSON(f"/api/graph?{query}", 400)
            validator("Error").validate(error)
            self.assertEqual(error["error"]["status"], 400)
            self.assertTrue(error["error"]["message"].startswith(name + ":"), error)

    async def test_percentEncodedUnicode(self) -> None:
        """
        A parameter's value is percent-encoded UTF-8; non-ASCII ones are
        read too. (Until fuzzing found it, every byte above 0x7F in a
        query was a 500.)
        """
        self.makeAPI()
        await self.fill()
        graph = await self.getJSON("/api/graph?focus=b%C3%BCcher.example")
        self.assertEqual(graph["nodes"], [])
        error = await self.getJSON("/api/graph?at=2026-01-01%C3%BC", 400)
        self.assertIn("'2026-01-01\u00fc'", error["error"]["message"])

    async def test_dataJSON(self) -> None:
        """
        C{/data.json} has exactly the public graph site's shape, with
        opaque anonymous ids that are the same on every request.
        """
        self.makeAPI()
        await self.fill()
        data = await self.getJSON("/data.json")
        schemaOf("/data.json").validate(data)
        self.assertEqual(set(data), {"nodes", "edges"})
        for node in data["nodes"]:
            self.assertEqual(set(node), {"id", "label"})
        anonymous = sorted(n["id"] for n in data["nodes"] if not n["label"])
        self.assertEqual(len(anonymous), 2)
        self.assertTrue(all(i.startswith("anon-") for i in anonymous))
        self.clock.advance(100)  # past the cache's freshness
        await self.store.recordFetch("c.example", publishes())
        again = await self.getJSON("/data.json")
        self.assertEqual(sorted(n["id"] for n in again["nodes"] if not n["label"]), anonymous)

    async def test_cacheAndETag(self) -> None:
        """
        The same store state and parameters are answered from the cache
        with the same ETag; If-None-Match gives a bodiless 304; a change of
        the store makes a new answer.
        """
        self.makeAPI()
        await self.fill()
        code, headers, body = await self.request("GET", "/api/graph")
        etag = headers[b"etag"][0]
        misses = self.api.views.misses  # type: ignore[union-attr]
        code2, headers2, body2 = await self.request("GET", "/api/graph")
        self.assertEqual((code2, headers2[b"etag"][0], body2), (200, etag, body))
        self.assertEqual(self.api.views.misses, misses)  # type: ignore[union-attr]
        code3, _, body3 = await self.request(
            "GET", "/api/graph", headers={b"If-None-Match": [etag]}
        )
        self.assertEqual((code3, body3), (304, b""))
        await self.store.storeReport("b.example", [RemoteDomain("a.example", ("bidi",))])
        code4, headers4, _ = await self.request(
            "GET", "/api/graph", headers={b"If-None-Match": [etag]}
        )
        self.assertEqual(code4, 200)
        self.assertNotEqual(headers4[b"etag"][0], etag)

    async def test_excluded(self) -> None:
        """
        An excluded domain is not on the graph, not even anonymously, and
        its page says only that it is excluded.
        """
        self.makeAPI(excluded=lambda d: d == "b.example" or d.endswith(".b.example"))
        await self.fill()
        graph = await self.getJSON("/api/graph?fold=0")
        self.assertNotIn("b.example", json.dumps(graph))
        self.assertEqual(
            {n["id"] for n in graph["nodes"] if n.get("label")},
            {"a.example", "conference.a.example"},
        )
        page = await self.getJSON("/api/domains/b.example")
        schemaOf("/api/domains/{domain}").validate(page)
        self.assertEqual((page["on_graph"], page["excluded"]), (False, True))
        self.assertIn("exclusion list", page["why"])
        self.assertIsNone(page["facts"])

    async def test_noStore(self) -> None:
        """
        Without a graph store the graph endpoints are a JSON 503.
        """
        self.makeAPI(graph=None)
        for path in ("/api/graph", "/data.json", "/api/stats", "/api/domains/a.example"):
            error = await self.getJSON(path, 503)
            validator("Error").validate(error)


class DomainTests(APIFixture, TestCase):
    """
    C{/api/domains/{domain}}.
    """

    async def test_publisher(self) -> None:
        """
        A publisher's page has its record, facts (software, stream), steps,
        peers both ways (the one without consent unnamed), history and the
        crawler's status, and says it is on the graph.
        """
        self.makeAPI()
        await self.fill()
        self.crawler.statuses["a.example"] = CrawlStatus(
            "a.example",
            "waiting",
            "seed",
            nextFetch=T0 + 600,
            lastFetch=T0,
            subscription="subscribed",
        )
        page = await self.getJSON("/api/domains/A.Example")
        schemaOf("/api/domains/{domain}").validate(page)
        self.assertEqual(page["domain"], "a.example")
        self.assertTrue(page["on_graph"])
        self.assertIn("publishes", page["why"])
        self.assertEqual(page["facts"]["software"], {"name": "Prosody", "version": "13.0.1"})
        self.assertEqual(page["facts"]["stream"]["auth"], "sasl-external")
        self.assertEqual(page["facts"]["steps"][0]["step"], "disco#info")
        self.assertEqual(page["crawl"]["subscription"], "subscribed")
        peers = {(p["peer"], p["way"]) for p in page["peers"]}
        self.assertEqual(
            peers,
            {("b.example", "reports"), (None, "reports"), ("b.example", "reported-by")},
        )
        self.assertEqual(sum(1 for p in page["peers"] if p["peer"] is None), 2)
        self.assertNotIn("hidden.example", json.dumps(page))
        self.assertTrue(page["history"])

    async def test_noConsent(self) -> None:
        """
        A domain that did not consent is not confirmed to exist until it is
        submitted; then the page says why in the crawler's words and shows
        none of its links.
        """
        self.makeAPI()
        await self.fill()
        # Until its admin submits it, the answer is that of a domain nobody
        # knows: it does not confirm that the store holds the name.
        hidden = await self.getJSON("/api/domains/hidden.example", 404)
        unknown = await self.getJSON("/api/domains/nobody.example", 404)
        self.assertEqual(
            hidden["error"]["message"].replace("hidden", "X"),
            unknown["error"]["message"].replace("nobody", "X"),
        )
        self.crawler.submit("hidden.example")
        page = await self.getJSON("/api/domains/hidden.example")
        schemaOf("/api/domains/{domain}").validate(page)
        self.assertFalse(page["on_graph"])
        self.assertIn("without urn:xmpp:serverinfo:0", page["why"])
        self.assertEqual((page["peers"], page["history"]), ([], []))

    async def test_staleAndFolded(self) -> None:
        """
        A stale domain says it is stale; a service subdomain names its
        parent.
        """
        self.makeAPI()
        await self.fill()
        self.clock.advance(7200)
        await self.store.storeReport("b.example", [RemoteDomain("a.example", ("bidi",))])
        await self.store.markStale(3600)
        page = await self.getJSON("/api/domains/conference.a.example")
        self.assertFalse(page["on_graph"])
        self.assertIn("stale", page["why"])
        self.assertEqual(page["folded_into"], "a.example")

    async def test_submittedAndUnknown(self) -> None:
        """
        A submitted domain the store does not know yet is known (404 only
        for a domain nobody knows); a bad name is a 400.
        """
        self.makeAPI()
        self.crawler.submit("new.example")
        page = await self.getJSON("/api/domains/new.example")
        schemaOf("/api/domains/{domain}").validate(page)
        self.assertIn("submitted", page["why"])
        self.assertEqual(page["crawl"]["state"], "queued")
        error = await self.getJSON("/api/domains/nobody.example", 404)
        self.assertEqual(error["error"]["status"], 404)
        error = await self.getJSON("/api/domains/127.0.0.1", 400)
        self.assertIn("IP address", error["error"]["message"])


class StatsTests(APIFixture, TestCase):
    """
    C{/api/stats}.
    """

    async def test_stats(self) -> None:
        """
        The figures count the default view and the store.
        """
        self.makeAPI()
        await self.fill()
        stats = await self.getJSON("/api/stats")
        schemaOf("/api/stats").validate(stats)
        self.assertEqual(stats["domains"]["named"], 2)
        self.assertEqual(stats["domains"]["anonymous"], 2)
        self.assertEqual(stats["domains"]["publishing"], 2)
        self.assertEqual(stats["domains"]["known"], 4)
        self.assertEqual((stats["links"], stats["confirmed_links"]), (3, 1))
        self.assertEqual(stats["components"], {"count": 1, "largest": 4, "sizes": [4]})
        self.assertEqual(stats["hubs"][0], {"domain": "a.example", "degree": 3})
        self.assertEqual(
            stats["degree_distribution"], [{"degree": 1, "nodes": 3}, {"degree": 3, "nodes": 1}]
        )
        self.assertEqual(
            {(s["name"], s["version"]) for s in stats["software"]},
            {("Prosody", "13.0.1"), ("ejabberd", "25.07")},
        )

    async def test_security(self) -> None:
        """
        The security posture counts the named domains our streams reached:
        their TLS versions, SASL EXTERNAL or dialback, valid certificates
        and direct TLS; a domain that may not be named counts not, nor
        does one we had no stream with.
        """
        self.makeAPI()
        await self.fill()
        await self.store.recordFetch(
            "c.example",
            attrs.evolve(
                publishes(),
                tlsVersion="TLSv1.2",
                auth="dialback",
                certValid=False,
                directTLS=True,
            ),
        )
        await self.store.recordFetch("d.example", attrs.evolve(publishes(), auth=None))
        await self.store.recordFetch(
            "hidden.example", attrs.evolve(NO_CONSENT, tlsVersion="TLSv1.3", auth="dialback")
        )
        await self.store.storeReport("a.example", [RemoteDomain("c.example", ("outgoing",))])
        stats = await self.getJSON("/api/stats")
        schemaOf("/api/stats").validate(stats)
        self.assertEqual(
            stats["security"],
            {
                "domains": 3,
                "tls_versions": [
                    {"version": "TLSv1.3", "domains": 2},
                    {"version": "TLSv1.2", "domains": 1},
                ],
                "auth": [
                    {"method": "sasl-external", "domains": 2},
                    {"method": "dialback", "domains": 1},
                ],
                "cert_valid": 2,
                "direct_tls": 1,
            },
        )


class SubmitTests(APIFixture, TestCase):
    """
    C{POST /api/submit}.
    """

    async def post(self, status: int, **kw: Any) -> Any:
        code, headers, body = await self.request("POST", "/api/submit", **kw)
        self.assertEqual(code, status, body)
        self.headers = headers
        return json.loads(body)

    async def test_formAndJSON(self) -> None:
        """
        A form field or a JSON body is submitted to the crawler, and the
        answer says what will happen.
        """
        self.makeAPI()
        answer = await self.post(202, data={"domain": "New.Example"})
        schemaOf("/api/submit", "post", "202").validate(answer)
        self.assertEqual(answer["message"], "new.example will be crawled soon")
        self.assertEqual(answer["status"]["source"], "submission")
        answer = await self.post(
            202,
            data=json.dumps({"domain": "other.example"}).encode(),
            headers={b"Content-Type": [b"application/json"]},
        )
        self.assertEqual(self.crawler.submitted, ["new.example", "other.example"])

    async def test_invalid(self) -> None:
        """
        No domain, a bad one, or a bad JSON body is a 400; nothing is
        submitted.
        """
        self.makeAPI()
        for kw in [
            {"data": {}},
            {"data": {"domain": "a..example"}},
            {"data": b"{", "headers": {b"Content-Type": [b"application/json"]}},
            {"data": b"[1]", "headers": {b"Content-Type": [b"application/json"]}},
        ]:
            error = await self.post(400, **kw)
            validator("Error").validate(error)
        self.assertEqual(self.crawler.submitted, [])

    def test_bodiesOnTheNodesSite(self) -> None:
        """
        On the node's own site (which leaves bodies to the API), a form
        body is submitted, and a malformed multipart body or content type
        is the API's JSON 400, not Twisted's bare 400 or a dropped
        connection. (Found by fuzzing.)
        """
        self.makeAPI()
        site = _APISite(self.api)
        answers = []
        for contentType, body in [
            (b"application/x-www-form-urlencoded", b"domain=New.Example"),
            (b"multipart/form-data; boundary=x", b"\x00"),
            (b";+*", b"\x00"),
        ]:
            channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
            transport = StringTransport()
            channel.makeConnection(transport)
            channel.dataReceived(
                b"POST /api/submit HTTP/1.1\r\nHost: agg.example\r\nContent-Type: "
                + contentType
                + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                + body
            )
            head, _, answer = transport.value().partition(b"\r\n\r\n")
            channel.connectionLost(Failure(ConnectionDone()))
            self.assertIn(b"\r\ncontent-type: application/json; charset=utf-8", head.lower())
            answers.append((head.split(b" ")[1], json.loads(answer)))
        self.assertEqual(answers[0][0], b"202")
        self.assertEqual(self.crawler.submitted, ["new.example"])
        for status, error in answers[1:]:
            self.assertEqual(status, b"400")
            validator("Error").validate(error)
            self.assertIn("domain: missing", error["error"]["message"])

    def test_bodyTooLarge(self) -> None:
        """
        On the node's own site, a body past C{MAX_REQUEST_BODY} (announced
        by its length, or sent chunked) is not buffered: it is answered
        with a JSON 413, and nothing is submitted.
        """
        self.makeAPI()
        site = _APISite(self.api)
        big = b"domain=x.example&pad=" + b"x" * MAX_REQUEST_BODY
        chunked = b"".join(
            b"%x\r\n%s\r\n" % (len(big[i : i + 4096]), big[i : i + 4096])
            for i in range(0, len(big), 4096)
        )
        for framing, body in [
            (b"Content-Length: %d" % len(big), big),
            (b"Transfer-Encoding: chunked", chunked + b"0\r\n\r\n"),
        ]:
            channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
            transport = StringTransport()
            channel.makeConnection(transport)
            channel.dataReceived(
                b"POST /api/submit HTTP/1.1\r\nHost: agg.example\r\nContent-Type: "
                b"application/x-www-form-urlencoded\r\n" + framing + b"\r\n\r\n" + body
            )
            head, _, answer = transport.value().partition(b"\r\n\r\n")
            channel.connectionLost(Failure(ConnectionDone()))
            self.assertEqual(head.split(b" ")[1], b"413", head)
            if b"chunked" in head.lower():
                answer = answer.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0].strip()
            validator("Error").validate(json.loads(answer))
        self.assertEqual(self.crawler.submitted, [])

    async def test_rateLimit(self) -> None:
        """
        After C{submitRate} submissions in an hour, a 429 with Retry-After;
        an hour later it is allowed again.
        """
        self.makeAPI(submitRate=2)
        await self.post(202, data={"domain": "a.example"})
        self.clock.advance(60)
        await self.post(202, data={"domain": "b.example"})
        error = await self.post(429, data={"domain": "c.example"})
        schemaOf("/api/submit", "post", "429").validate(error)
        self.assertEqual(self.headers[b"retry-after"], [b"3540"])
        self.clock.advance(3540)
        await self.post(202, data={"domain": "c.example"})

    async def test_rateLimitBehindProxy(self) -> None:
        """
        Behind a trusted proxy (the in-memory client's address), each
        client named by X-Forwarded-For has a limit of its own; a client
        that sends the header itself, not through a trusted proxy, is
        counted by its own address.
        """
        self.makeAPI(submitRate=1, trustedProxies=("127.0.0.0/8",))
        for client in (b"192.0.2.1", b"192.0.2.2"):
            await self.post(
                202, data={"domain": "a.example"}, headers={b"X-Forwarded-For": [client]}
            )
        await self.post(
            429, data={"domain": "a.example"}, headers={b"X-Forwarded-For": [b"192.0.2.1"]}
        )
        self.makeAPI(submitRate=1, trustedProxies=("10.0.0.1",))
        await self.post(
            202, data={"domain": "a.example"}, headers={b"X-Forwarded-For": [b"1.1.1.1"]}
        )
        await self.post(
            429, data={"domain": "a.example"}, headers={b"X-Forwarded-For": [b"2.2.2.2"]}
        )

    async def test_noCrawl(self) -> None:
        """
        Without a crawler (--no-crawl) submissions are a 503.
        """
        self.makeAPI(crawler=None)
        error = await self.post(503, data={"domain": "a.example"})
        self.assertIn("--no-crawl", error["error"]["message"])


class ErrorEdgeTests(APIFixture, TestCase):
    """
    The one JSON error edge of the router.
    """

    async def test_unknownPathAndMethod(self) -> None:
        """
        An unknown path is a JSON 404; a known path with the wrong method
        is a JSON 405 with Allow.
        """
        self.makeAPI()
        error = await self.getJSON("/api/nothing", 404)
        validator("Error").validate(error)
        code, headers, body = await self.request("POST", "/api/graph")
        self.assertEqual(code, 405)
        self.assertEqual(headers[b"allow"], [b"GET, HEAD, OPTIONS"])
        validator("Error").validate(json.loads(body))
        code, headers, body = await self.request("GET", "/api/submit")
        self.assertEqual((code, headers[b"allow"]), (405, [b"POST, OPTIONS"]))

    async def test_unexpectedException(self) -> None:
        """
        A bug in a handler is a JSON 500 that shows nothing of it, and it
        is logged.
        """

        @implementer(IGraphStore)
        class Broken:
            def graph(self, at: float | None = None) -> Deferred[Any]:
                raise ZeroDivisionError("secret detail")

        self.makeAPI(graph=Broken())
        error = await self.getJSON("/api/graph", 500)
        validator("Error").validate(error)
        self.assertNotIn("secret", json.dumps(error))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class DocumentCoverageTests(APIFixture, TestCase):
    """
    The OpenAPI document describes every route, and what the routes
    answer.
    """

    def test_everyRoute(self) -> None:
        """
        Every route of the table (C{/api/serverinfo} too) is a path and
        method of the document, and the document has no path that is not
        a route.
        """
        info = ServerInfo(lambda: None, "pubsub.agg.example", "serverinfo", "current")  # type: ignore[arg-type, return-value]
        self.makeAPI(serverInfo=info)
        routes = {(route.pattern, route.method.lower()) for route in self.api.routes()}
        documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
        self.assertEqual(routes, documented)

    async def test_answersDocumented(self) -> None:
        """
        The content type and status of live answers, and the 304 of those
        with an ETag, are documented for their path.
        """
        self.makeAPI()
        await self.fill()
        for path, status in [
            ("/api/graph", 200),
            ("/api/graph.graphml", 200),
            ("/api/graph.gexf?at=yesterday", 400),
            ("/data.json", 200),
            ("/api/domains/a.example", 200),
            ("/api/domains/nobody.example", 404),
            ("/api/stats", 200),
            ("/badge/a.example.svg", 200),
            ("/badge/a..example.svg", 400),
            ("/api/openapi.json", 200),
        ]:
            code, headers, _ = await self.request("GET", path)
            self.assertEqual(code, status, path)
            route = next(
                r for r in self.api.routes() if r.match(path.partition("?")[0]) is not None
            )
            answers = DOCUMENT["paths"][route.pattern]["get"]["responses"]
            contentType = headers[b"content-type"][0].split(b";")[0].decode()
            self.assertIn(contentType, answers[str(code)]["content"], path)
            if b"etag" in headers:
                self.assertIn("304", answers, path)


class PostgreSQLMixin:
    """
    The store on a database of its own on the test PostgreSQL server.
    """

    skip = postgresSkip()

    def databaseURL(self) -> str | None:
        requirePostgres()
        return temporaryDatabase(self)  # type: ignore[arg-type]  # mixed into a TestCase


class PostgreSQLGraphTests(PostgreSQLMixin, GraphTests):
    """
    L{GraphTests} with the store on PostgreSQL.
    """


class PostgreSQLStatsTests(PostgreSQLMixin, StatsTests):
    """
    L{StatsTests} with the store on PostgreSQL.
    """


class PostgreSQLDomainTests(PostgreSQLMixin, DomainTests):
    """
    L{DomainTests} with the store on PostgreSQL.
    """
