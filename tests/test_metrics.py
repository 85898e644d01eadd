# -*- test-case-name: tests.test_metrics -*-
"""
C{GET /metrics}: the figures of real nodes federating on loopback, parsed
with C{prometheus_client}'s own parsers (so that a format error fails),
against the link table and what the test sent; and the stream error tally
of one stream.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import (
    text_string_to_metric_families as text_plain_to_metric_families,
)
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from twisted.words.protocols.jabber import xmlstream

from tests.nodes import RawRequest, RunningNode, discoBothWays, routesTo, waitFor
from xmppnetgraph.metrics import CrawlerCollector
from xmppnetgraph.model import CrawlQueue, DomainFacts
from xmppnetgraph.s2s.xmlstream import S2SXmlStream, StreamErrorTally

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
    b" xmlns:stream='http://etherx.jabber.org/streams' to='a.example' from='c.example'"
    b" version='1.0'>"
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(families: Any) -> Samples:
    """
    @return: every sample of C{families} by (name, sorted labels).
    """
    found: Samples = {}
    for family in families:
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


class _Raw(Protocol):
    """
    A raw TCP client: collects what the server sends; C{closed} fires when
    the connection ends.
    """

    def __init__(self) -> None:
        self.received = b""
        self.closed: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed.callback(None)


class ScrapeTests(TestCase):
    """
    Node A (a.example) and node B (b.example) federate over loopback
    (TLS, dialback); A's C{/metrics} is scraped over HTTP.
    """

    timeout = 60

    def setUp(self) -> None:
        base = Path(self.mktemp())
        base.mkdir()
        self.a = RunningNode(base, "a.example", "127.0.0.1")
        self.b = RunningNode(base, "b.example", "127.0.0.1")
        # Nothing but what the test sends crosses the streams: no
        # publisher (no consent checks), no crawler; and one stream each
        # way, without XEP-0288, so that the stanzas of each direction
        # have a stream of their own.
        self.a.build(routes=routesTo(self.b), publish=False, bidi=False)
        self.b.build(routes=routesTo(self.a), publish=False, bidi=False)
        for node in (self.a, self.b):
            node.start()
            self.addCleanup(lambda node=node: node.stop() if node.service.running else None)

    async def scrape(self, accept: str | None = OPENMETRICS) -> tuple[str, str]:
        """
        @return: A's C{GET /metrics} body and content type.
        """
        url = f"http://127.0.0.1:{self.a.webPort}/metrics".encode()
        headers = Headers({} if accept is None else {b"accept": [accept.encode()]})
        response = await Agent(reactor).request(b"GET", url, headers)
        body = await readBody(response)
        self.assertEqual(response.code, 200)
        [contentType] = response.headers.getRawHeaders(b"content-type")
        return body.decode("utf-8"), contentType.decode()

    async def openMetrics(self) -> Samples:
        """
        @return: A's samples, scraped in OpenMetrics and parsed by the
            OpenMetrics parser (which fails on any format error, and
            requires the C{# EOF}).
        """
        body, contentType = await self.scrape()
        self.assertTrue(contentType.startswith(OPENMETRICS), contentType)
        return samples(text_string_to_metric_families(body))

    async def test_afterFederation(self) -> None:
        """
        After A asked B for disco#info and pinged it five times, A's links
        by direction and authentication and its stanza counts are those of
        its link table: one disco and five pings sent on the outgoing
        stream, their six answers received on the incoming one. When B has
        gone, the links are gone from the figures but the stanza counters
        keep their values.
        """
        await discoBothWays(self, self.a, self.b)
        for _ in range(5):
            await self.a.domainHost.request(
                RawRequest("b.example", "a.example", "get", "<ping xmlns='urn:xmpp:ping'/>")
            )
        found = await self.openMetrics()
        links = Counter((link.direction, link.auth) for link in self.a.s2s.linkTable.links())
        self.assertEqual(links, Counter({("incoming", "dialback"): 1, ("outgoing", "dialback"): 1}))
        for direction in ("incoming", "outgoing"):
            for auth in ("dialback", "sasl-external"):
                key = ("xmppnetgraph_s2s_links", (("auth", auth), ("direction", direction)))
                self.assertEqual(found[key], links[direction, auth], key)
        sent = {d: 0 for d in ("incoming", "outgoing")}
        received = dict(sent)
        for link in self.a.s2s.linkTable.links():
            sent[link.direction] += link.stanzasOut
            received[link.direction] += link.stanzasIn
        self.assertEqual((sent["outgoing"], received["incoming"]), (6, 6))
        for direction in ("incoming", "outgoing"):
            label = (("direction", direction),)
            self.assertEqual(found["xmppnetgraph_s2s_stanzas_sent_total", label], sent[direction])
            self.assertEqual(
                found["xmppnetgraph_s2s_stanzas_received_total", label], received[direction]
            )
        self.assertEqual(found["xmppnetgraph_s2s_streams", ()], self.a.s2s.connectionCount)

        await self.b.stop()
        await waitFor(lambda: not self.a.links())
        after = await self.openMetrics()
        for direction in ("incoming", "outgoing"):
            label = (("direction", direction),)
            self.assertEqual(
                after["xmppnetgraph_s2s_stanzas_sent_total", label],
                found["xmppnetgraph_s2s_stanzas_sent_total", label],
            )
            self.assertEqual(
                after["xmppnetgraph_s2s_stanzas_received_total", label],
                found["xmppnetgraph_s2s_stanzas_received_total", label],
            )
            for auth in ("dialback", "sasl-external"):
                key = ("xmppnetgraph_s2s_links", (("auth", auth), ("direction", direction)))
                self.assertEqual(after[key], 0)

    async def rawStream(self, data: bytes) -> bytes:
        """
        Open a plain TCP connection to A's s2s port, send C{data}, and
        wait until A closes it.

        @return: what A sent.
        """
        raw = _Raw()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.a.s2sPort)
        await connectProtocol(endpoint, raw)
        assert raw.transport is not None
        raw.transport.write(data)
        await raw.closed
        return raw.received

    async def test_streamErrors(self) -> None:
        """
        A stream error a peer sends is counted by its condition (one that
        RFC 6120 does not define as C{other}); one A sends, for XML that
        is not well-formed, by its own.
        """
        before = await self.openMetrics()
        self.assertNotIn(
            ("xmppnetgraph_s2s_stream_errors_received_total", (("condition", "host-gone"),)),
            before,
        )
        error = b"<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
        await self.rawStream(_HEADER + error % b"host-gone")
        await self.rawStream(_HEADER + error % b"made-up-condition")
        answer = await self.rawStream(_HEADER + b"<iq><</iq>")
        self.assertIn(b"not-well-formed", answer)
        found = await self.openMetrics()
        received = "xmppnetgraph_s2s_stream_errors_received_total"
        self.assertEqual(found[received, (("condition", "host-gone"),)], 1)
        self.assertEqual(found[received, (("condition", "other"),)], 1)
        self.assertEqual(
            found["xmppnetgraph_s2s_stream_errors_sent_total", (("condition", "not-well-formed"),)],
            1,
        )

    async def test_storeTransactions(self) -> None:
        """
        Each store transaction is timed by its operation: the histogram's
        count for C{recordFetch} grows by the number of fetches recorded.
        """
        key = ("xmppnetgraph_store_transaction_seconds_count", (("operation", "recordFetch"),))
        before = (await self.openMetrics()).get(key, 0)
        for n in range(3):
            await self.a.service.graph.recordFetch(
                f"d{n}.example", DomainFacts("unreachable", False)
            )
        found = await self.openMetrics()
        self.assertEqual(found[key] - before, 3)
        self.assertGreater(
            found["xmppnetgraph_store_transaction_seconds_sum", (("operation", "recordFetch"),)],
            0,
        )

    async def test_plainText(self) -> None:
        """
        A client that does not ask for OpenMetrics gets Prometheus' plain
        text format, which its parser reads; the figures are the same.
        """
        body, contentType = await self.scrape(accept=None)
        self.assertTrue(contentType.startswith("text/plain; version=0.0.4"), contentType)
        found = samples(text_plain_to_metric_families(body))
        self.assertEqual(
            found["xmppnetgraph_s2s_links", (("auth", "dialback"), ("direction", "incoming"))], 0
        )
        self.assertIn(("xmppnetgraph_s2s_stanzas_sent_total", (("direction", "outgoing"),)), found)


class CrawlerScrapeTests(TestCase):
    """
    A crawling node shows its crawl queue and its store's domains by
    status.
    """

    timeout = 30

    async def test_domainsByStatus(self) -> None:
        """
        The domains by status are the store's status counts, and the crawl
        queue's figures are there.
        """
        base = Path(self.mktemp())
        base.mkdir()
        node = RunningNode(base, "a.example", "127.0.0.1")
        node.build(crawl=True, publish=False)
        node.start()
        self.addCleanup(node.stop)
        store = node.service.graph
        await store.recordFetch("x.example", DomainFacts("no-consent", True, consents=False))
        url = f"http://127.0.0.1:{node.webPort}/metrics".encode()
        response = await Agent(reactor).request(
            b"GET", url, Headers({b"accept": [b"application/openmetrics-text"]})
        )
        found = samples(text_string_to_metric_families((await readBody(response)).decode()))
        counts = await store.statusCounts()
        self.assertEqual(counts["no-consent"], 1)
        shown = {
            dict(labels)["status"]: value
            for (name, labels), value in found.items()
            if name == "xmppnetgraph_domains"
        }
        self.assertEqual(shown, counts)
        for state in ("pending", "in_flight", "scheduled"):
            self.assertIn(("xmppnetgraph_crawl_queue", (("state", state),)), found)


class StreamErrorTallyTests(SynchronousTestCase):
    """
    L{S2SXmlStream} counts the stream errors it sends and receives into
    its L{StreamErrorTally}.
    """

    def stream(self, tally: StreamErrorTally) -> S2SXmlStream:
        """
        @return: a connected stream counting into C{tally}, its header
            received.
        """
        xs = S2SXmlStream(xmlstream.Authenticator(), errors=tally, clock=Clock())
        xs.makeConnection(StringTransport())
        xs.dataReceived(_HEADER)
        return xs

    def test_received(self) -> None:
        """
        A received stream error counts by its condition; a condition that
        RFC 6120 does not define, or none, counts as C{other}.
        """
        shared = StreamErrorTally()
        for condition in (b"host-gone", b"no-such-thing", b"host-gone"):
            xs = self.stream(shared)
            xs.dataReceived(
                b"<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                b"</stream:error>" % condition
            )
        self.stream(shared).dataReceived(b"<stream:error/>")
        self.assertEqual(dict(shared.received), {"host-gone": 2, "other": 2})
        self.assertEqual(dict(shared.sent), {})

    def test_sent(self) -> None:
        """
        A stream error we send (here for XML that is not well-formed)
        counts by its condition.
        """
        tally = StreamErrorTally()
        self.stream(tally).dataReceived(b"<iq><</iq>")
        self.assertEqual(dict(tally.sent), {"not-well-formed": 1})
        self.assertEqual(dict(tally.received), {})


class _CountingStore:
    """
    A store whose C{statusCounts} answers when the test says so.
    """

    def __init__(self) -> None:
        self.reads: list[Deferred[dict[str, int]]] = []

    def statusCounts(self) -> Deferred[dict[str, int]]:
        self.reads.append(Deferred())
        return self.reads[-1]


class CrawlerCollectorTests(SynchronousTestCase):
    """
    The domains' status counts are read at most once per C{maxAge}, and
    scrapes that come during a read share it (the read is a full-table
    query and C{/metrics} is public).
    """

    def test_coalescedAndKept(self) -> None:
        """
        Three scrapes during one read cause one read and all finish with
        it; a scrape within C{maxAge} reads nothing; one after it reads.
        """
        store = _CountingStore()
        clock = Clock()
        collector = CrawlerCollector(lambda: CrawlQueue(0, 0, 0), store, clock, maxAge=10)  # type: ignore[arg-type]
        scrapes = [collector.refresh() for _ in range(3)]
        self.assertEqual(len(store.reads), 1)
        for scrape in scrapes:
            self.assertNoResult(scrape)
        store.reads[0].callback({"publishes": 2})
        for scrape in scrapes:
            self.successResultOf(scrape)
        clock.advance(9)
        self.successResultOf(collector.refresh())
        self.assertEqual(len(store.reads), 1)
        clock.advance(1)
        self.assertNoResult(collector.refresh())
        self.assertEqual(len(store.reads), 2)
