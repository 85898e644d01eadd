# -*- test-case-name: tests.test_http_events -*-
"""
C{GET /api/events}: server-sent events from a real graph store, in memory
(StubTreq) and once over a real socket.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent
from twisted.web.http_headers import Headers
from twisted.web.server import Site

from tests.test_http import DOCUMENT
from tests.test_http_api import NO_CONSENT, APIFixture, publishes
from xmppnetgraph.http.events import HEARTBEAT
from xmppnetgraph.http.naming import Naming
from xmppnetgraph.model import GraphEvent
from xmppnetgraph.serverinfo.payload import RemoteDomain

EVENT = Draft202012Validator({**DOCUMENT, "$ref": "#/components/schemas/Event"})


class _Collect(Protocol):
    """
    Collects a streamed body.
    """

    def __init__(self) -> None:
        self.data = b""
        self.done: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        if not self.done.called:
            self.done.callback(None)


def parse(stream: bytes) -> tuple[list[tuple[int, dict[str, Any]]], list[bytes]]:
    """
    @return: the events (id, data) and the comment lines of a stream.
    """
    events = []
    comments = []
    for block in stream.split(b"\n\n"):
        fields: dict[bytes, bytes] = {}
        for line in block.split(b"\n"):
            if line.startswith(b":"):
                comments.append(line)
            elif b": " in line:
                name, _, value = line.partition(b": ")
                fields[name] = value
        if b"id" in fields:
            events.append((int(fields[b"id"]), json.loads(fields[b"data"])))
    return events, comments


class EventStreamTests(APIFixture, TestCase):
    """
    The stream in memory.
    """

    async def openStream(self, path: str = "/api/events", **kw: Any) -> _Collect:
        response = await self.settle(self.http.get("http://agg.example" + path, **kw))
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.headers.getRawHeaders(b"content-type"), [b"text/event-stream; charset=utf-8"]
        )
        collect = _Collect()
        response.deliverBody(collect)
        return collect

    async def pump(self, until: Any) -> None:
        for _ in range(2000):
            self.http.flush()
            if until():
                return
            await deferLater(reactor, 0.002, lambda: None)
        self.fail("never happened")

    async def test_resumeAndLive(self) -> None:
        """
        With Last-Event-ID the stream sends what came after it, then every
        new committed change, ids increasing, each valid against the
        schema, names hidden as the graph hides them.
        """
        self.makeAPI()
        await self.fill()
        collect = await self.openStream(headers={b"Last-Event-ID": [b"3"]})
        await self.pump(lambda: b"id: " in collect.data and parse(collect.data)[0][-1][0] >= 10)
        events, _ = parse(collect.data)
        ids = [i for i, _ in events]
        self.assertEqual(ids[0], 4)
        self.assertEqual(ids, sorted(ids))
        for _, data in events:
            EVENT.validate(data)
        self.assertNotIn("hidden.example", collect.data.decode())
        last = ids[-1]
        await self.store.storeReport("b.example", [RemoteDomain("a.example", ("bidi",))])
        await self.pump(lambda: parse(collect.data)[0][-1][0] > last)
        events, _ = parse(collect.data)
        new = [data for i, data in events if i > last]
        self.assertIn("link-changed", {d["kind"] for d in new})
        self.assertEqual([i for i, _ in events], list(range(4, events[-1][0] + 1)))

    async def test_startsWithNext(self) -> None:
        """
        Without Last-Event-ID the stream starts with the next change;
        C{?after=0} replays everything.
        """
        self.makeAPI()
        await self.store.recordFetch("a.example", publishes())
        collect = await self.openStream()
        await self.store.recordFetch("b.example", publishes())
        await self.pump(lambda: b"id: " in collect.data)
        events, _ = parse(collect.data)
        self.assertEqual({d["domain"] for _, d in events}, {"b.example"})
        replay = await self.openStream("/api/events?after=0")
        await self.pump(lambda: len(parse(replay.data)[0]) >= 4)
        self.assertEqual([i for i, _ in parse(replay.data)[0]], [1, 2, 3, 4])

    async def test_heartbeatAndDisconnect(self) -> None:
        """
        A comment every heartbeat; a client that goes is forgotten.
        """
        self.makeAPI()
        await self.store.recordFetch("hidden.example", NO_CONSENT)
        collect = await self.openStream()
        self.clock.advance(HEARTBEAT)
        await self.pump(lambda: b": heartbeat" in collect.data)
        self.assertEqual(len(self.api.events.clients), 1)
        self.api.events.clients[0].request.transport.loseConnection()  # type: ignore[union-attr]
        await self.pump(lambda: not self.api.events.clients)

    async def test_paused(self) -> None:
        """
        A paused (slow) client is sent nothing and holds no events; when it
        resumes it catches up from the store.
        """
        self.makeAPI()
        await self.store.recordFetch("a.example", publishes())
        collect = await self.openStream()
        client = self.api.events.clients[0]
        client.pauseProducing()
        for n in range(20):
            await self.store.recordFetch(f"d{n}.example", publishes())
        await deferLater(reactor, 0.05, lambda: None)
        self.http.flush()
        self.assertEqual(parse(collect.data)[0], [])
        client.resumeProducing()
        await self.pump(lambda: len(parse(collect.data)[0]) == 40)

    async def test_badLastEventId(self) -> None:
        """
        A Last-Event-ID that is no event id is a JSON 400.
        """
        self.makeAPI()
        code, _, body = await self.request(
            "GET", "/api/events", headers={b"Last-Event-ID": [b"yesterday"]}
        )
        self.assertEqual(code, 400)
        self.assertIn("Last-Event-ID", json.loads(body)["error"]["message"])


class RealSocketTests(APIFixture, TestCase):
    """
    The stream over a real TCP connection on loopback.
    """

    async def test_socket(self) -> None:
        """
        A client on a real socket (of another origin, taking gzip) gets
        the replayed and the new events, and closing the listening site
        ends its stream.
        """
        self.makeAPI()
        await self.store.recordFetch("a.example", publishes())
        site = Site(self.api.resource())
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/api/events?after=0".encode()
        response = await Agent(reactor).request(
            b"GET", url, Headers({b"accept-encoding": [b"gzip"], b"origin": [b"https://x.example"]})
        )
        self.assertEqual(response.code, 200)
        # Readable from other origins, and never gzipped (it would be
        # buffered).
        self.assertEqual(response.headers.getRawHeaders(b"access-control-allow-origin"), [b"*"])
        self.assertIsNone(response.headers.getRawHeaders(b"content-encoding"))
        collect = _Collect()
        response.deliverBody(collect)
        await self.store.recordFetch("b.example", publishes())
        for _ in range(500):
            if len(parse(collect.data)[0]) >= 4:
                break
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual([i for i, _ in parse(collect.data)[0]], [1, 2, 3, 4])
        self.api.stop()
        await collect.done
        self.assertEqual(self.api.events.clients, [])


class NamingTests(SynchronousTestCase):
    """
    L{Naming} keeps what newer events said over an older snapshot.
    """

    def test_snapshotOlderThanEvents(self) -> None:
        """
        A snapshot read after an event that withdrew consent, but as of an
        earlier state, does not make the domain nameable again.
        """
        naming = Naming()
        withdrawn = GraphEvent(
            5, 0.0, "domain-changed", "x.example", None, {"facts": {"consents": False}}
        )
        naming.apply([withdrawn])
        naming.load({"x.example": True, "y.example": True}, 3)
        self.assertFalse(naming.nameable("x.example"))
        self.assertTrue(naming.nameable("y.example"))
        naming.load({"x.example": True}, 6)
        self.assertTrue(naming.nameable("x.example"))
