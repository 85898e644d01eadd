# -*- test-case-name: tests.test_http_negotiate -*-
"""
What the router does for every answer (L{xmppnetgraph.http.negotiate}):
ETags and 304s, gzip, CORS and C{OPTIONS}, in memory through the whole
web API on a real SQLite store (raw answers, not decoded by a client), and
gzip once over a real socket.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from typing import Any

from treq.testing import RequestTraversalAgent
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorThreads
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, ContentDecoderAgent, GzipDecoder, readBody
from twisted.web.http_headers import Headers
from twisted.web.server import Site
from twisted.web.test.requesthelper import DummyRequest
from zope.interface import implementer

from tests.test_http_api import APIFixture
from xmppnetgraph.http.negotiate import (
    GzipCache,
    acceptsGzip,
    compressible,
    etagOf,
    matchesETag,
    weak,
)

#: Every cacheable GET of the API (a filled store knows a.example).
CACHEABLE = (
    "/api/graph",
    "/api/graph?skipAnon",
    "/data.json",
    "/api/graph.graphml",
    "/api/graph.gexf?fold=0",
    "/api/domains/a.example",
    "/api/stats",
    "/badge/a.example.svg",
    "/api/openapi.json",
)


@implementer(IReactorThreads, IReactorFromThreads)
class FakeThreads:
    """
    A reactor's threads that run their work when told: a thread pool
    whose calls wait in a list, answered through L{callFromThread} at once.
    """

    def __init__(self) -> None:
        self.queued: list[Any] = []

    def getThreadPool(self) -> Any:
        return self

    def callInThreadWithCallback(self, onResult: Any, f: Any, *args: Any, **kw: Any) -> None:
        self.queued.append(lambda: onResult(True, f(*args, **kw)))

    def callFromThread(self, f: Any, *args: Any, **kw: Any) -> None:
        f(*args, **kw)

    def runAll(self) -> None:
        while self.queued:
            self.queued.pop(0)()


def requestWith(**headers: bytes) -> DummyRequest:
    """
    @return: a request with the given headers (C{if_none_match=...}).
    """
    request = DummyRequest([b""])
    for name, value in headers.items():
        request.requestHeaders.setRawHeaders(name.replace("_", "-"), [value])
    return request


class HelperTests(SynchronousTestCase):
    """
    The header rules themselves.
    """

    def test_matchesETag(self) -> None:
        """
        C{If-None-Match} matches by weak comparison, in a list, or with
        C{*}; another tag or no header does not match.
        """
        tag = etagOf(b"body")
        self.assertTrue(matchesETag(requestWith(if_none_match=tag), tag))
        self.assertTrue(matchesETag(requestWith(if_none_match=b'"x", ' + weak(tag)), tag))
        self.assertTrue(matchesETag(requestWith(if_none_match=tag), weak(tag)))
        self.assertTrue(matchesETag(requestWith(if_none_match=b"*"), tag))
        self.assertFalse(matchesETag(requestWith(if_none_match=etagOf(b"other")), tag))
        self.assertFalse(matchesETag(requestWith(), tag))
        self.assertEqual(weak(weak(tag)), weak(tag))

    def test_acceptsGzip(self) -> None:
        """
        gzip (or C{*}) is taken unless its quality is 0.
        """
        for header, expected in [
            (b"gzip", True),
            (b"br, gzip;q=0.8", True),
            (b"*", True),
            (b"gzip;q=0", False),
            (b"GZIP; q=0.000", False),
            (b"br, deflate", False),
            (b"", False),
        ]:
            self.assertEqual(acceptsGzip(requestWith(accept_encoding=header)), expected, header)

    def test_compressible(self) -> None:
        """
        JSON, SVG, XML and text are compressed; images and event streams
        are not.
        """
        for contentType in [
            b"application/json; charset=utf-8",
            b"image/svg+xml",
            b"application/graphml+xml; charset=utf-8",
            b"text/html; charset=utf-8",
        ]:
            self.assertTrue(compressible(contentType), contentType)
        for contentType in [b"image/png", b"text/event-stream; charset=utf-8"]:
            self.assertFalse(compressible(contentType), contentType)

    def test_gzipCache(self) -> None:
        """
        A body with an ETag is compressed once; one without is compressed
        each time; the copies kept stay under the bound.
        """
        cache = GzipCache(maxBytes=100)
        body = b"x" * 1000
        first = self.successResultOf(cache.compress(body, b'"a"'))
        self.assertEqual(gzip.decompress(first), body)
        self.assertIs(self.successResultOf(cache.compress(body, b'"a"')), first)
        cache.compress(body, None)
        cache.compress(body, None)
        self.assertEqual(cache.compressions, 3)
        for n in range(10):
            cache.compress(body, f'"{n}"'.encode())
        self.assertLessEqual(sum(len(v) for v in cache._kept.values()), 100)
        self.assertNotIn(b'"a"', cache._kept)

    def test_gzipInThread(self) -> None:
        """
        A large body is compressed in the thread pool, once for every
        request that asks meanwhile; a small one at once.
        """
        threads = FakeThreads()
        cache = GzipCache(threads, inlineBelow=100)
        large = b"y" * 1000
        waiting = [cache.compress(large, b'"big"') for _ in range(3)]
        self.assertEqual([d.called for d in waiting], [False] * 3)
        self.assertEqual(cache.compressions, 1)
        threads.runAll()
        results = [self.successResultOf(d) for d in waiting]
        self.assertEqual({gzip.decompress(r) for r in results}, {large})
        self.assertIs(self.successResultOf(cache.compress(large, b'"big"')), results[0])
        self.assertEqual(
            gzip.decompress(self.successResultOf(cache.compress(b"z" * 50, None))), b"z" * 50
        )
        self.assertEqual(cache.compressions, 2)


class RouterTests(APIFixture, TestCase):
    """
    The API's answers as they leave the router.
    """

    async def raw(
        self, method: str, path: str, **headers: bytes
    ) -> tuple[int, Mapping[bytes, list[bytes]], bytes]:
        """
        @return: status, headers and the undecoded body of a request.
        """
        agent = RequestTraversalAgent(self.api.resource())
        sent = Headers({name.replace("_", "-"): [value] for name, value in headers.items()})
        url = f"http://agg.example{path}".encode()
        d: Deferred[Any] = agent.request(method.encode(), url, sent)
        self.http.flush = agent.flush  # what settle pumps
        response = await self.settle(d)
        body = await self.settle(readBody(response))
        return (
            response.code,
            {k.lower(): v for k, v in response.headers.getAllRawHeaders()},
            body,
        )

    async def test_etagAndNotModified(self) -> None:
        """
        Every cacheable GET carries an ETag; the same request with
        C{If-None-Match} is a bodiless 304 with the same ETag, and so is a
        HEAD.
        """
        self.makeAPI()
        await self.fill()
        for path in CACHEABLE:
            code, headers, body = await self.raw("GET", path)
            self.assertEqual(code, 200, path)
            self.assertTrue(body, path)
            etag = headers[b"etag"][0]
            self.assertEqual(etag, etagOf(body), path)
            code, again, body = await self.raw("GET", path, if_none_match=etag)
            self.assertEqual((code, body, again[b"etag"]), (304, b"", [etag]), path)
            code, _, body = await self.raw("HEAD", path, if_none_match=etag)
            self.assertEqual((code, body), (304, b""), path)
            code, _, _ = await self.raw("GET", path, if_none_match=b'"other"')
            self.assertEqual(code, 200, path)

    async def test_gzip(self) -> None:
        """
        A JSON, XML or SVG answer is gzipped for a client that takes it
        (then with a weak ETag, which still revalidates), and sent as it
        is to one that does not; both say C{Vary: Accept-Encoding}. The
        gzip copy of a cached answer is made once.
        """
        self.makeAPI()
        await self.fill()
        for path in ("/api/graph", "/api/graph.graphml", "/api/graph.gexf", "/api/openapi.json"):
            code, plainHeaders, plain = await self.raw("GET", path)
            self.assertNotIn(b"content-encoding", plainHeaders, path)
            self.assertEqual(plainHeaders[b"vary"], [b"accept-encoding"], path)
            code, headers, zipped = await self.raw("GET", path, accept_encoding=b"gzip")
            self.assertEqual(code, 200)
            self.assertEqual(headers[b"content-encoding"], [b"gzip"], path)
            self.assertEqual(headers[b"vary"], [b"accept-encoding"], path)
            self.assertEqual(gzip.decompress(zipped), plain, path)
            self.assertLess(len(zipped), len(plain))
            etag = headers[b"etag"][0]
            self.assertEqual(etag, weak(plainHeaders[b"etag"][0]))
            code, notModified, body = await self.raw(
                "GET", path, accept_encoding=b"gzip", if_none_match=etag
            )
            self.assertEqual((code, body, notModified[b"etag"]), (304, b"", [etag]))

    async def test_gzipOnce(self) -> None:
        """
        One router compresses a cached answer once, however often it is
        fetched; a small answer is not compressed at all.
        """
        self.makeAPI()
        await self.fill()
        router = self.api.resource()
        agent = RequestTraversalAgent(router)
        self.http.flush = agent.flush
        for _ in range(3):
            response = await self.settle(
                agent.request(
                    b"GET",
                    b"http://agg.example/api/graph",
                    Headers({b"accept-encoding": [b"gzip"]}),
                )
            )
            self.assertEqual(response.headers.getRawHeaders(b"content-encoding"), [b"gzip"])
            await self.settle(readBody(response))
        self.assertEqual(router.gzipped.compressions, 1)
        code, headers, body = await self.raw(
            "GET", "/api/domains/nobody.example", accept_encoding=b"gzip"
        )
        self.assertEqual(code, 404)
        self.assertLess(len(body), 512)
        self.assertNotIn(b"content-encoding", headers)
        self.assertIn(b'"status":404', body)

    async def test_cors(self) -> None:
        """
        Every GET and HEAD answer, errors too, may be read from any origin
        and exposes its ETag; a POST answer may not.
        """
        self.makeAPI()
        await self.fill()
        for method, path in [
            ("GET", "/api/graph"),
            ("HEAD", "/api/stats"),
            ("GET", "/badge/a.example.svg"),
            ("GET", "/api/domains/nobody.example"),
            ("GET", "/api/graph?fold=maybe"),
        ]:
            _, headers, _ = await self.raw(method, path, origin=b"https://elsewhere.example")
            self.assertEqual(headers[b"access-control-allow-origin"], [b"*"], path)
            self.assertIn(b"ETag", headers[b"access-control-expose-headers"][0])
        _, headers, _ = await self.raw(
            "POST", "/api/submit?domain=a.example", origin=b"https://elsewhere.example"
        )
        self.assertNotIn(b"access-control-allow-origin", headers)

    async def test_options(self) -> None:
        """
        C{OPTIONS} on a readable path is a CORS preflight answer (204);
        on C{/api/submit} it says only which methods there are; on an
        unknown path it is a JSON 404.
        """
        self.makeAPI()
        code, headers, body = await self.raw(
            "OPTIONS",
            "/api/graph",
            origin=b"https://elsewhere.example",
            access_control_request_method=b"GET",
            access_control_request_headers=b"if-none-match",
        )
        self.assertEqual((code, body), (204, b""))
        self.assertEqual(headers[b"allow"], [b"GET, HEAD, OPTIONS"])
        self.assertEqual(headers[b"access-control-allow-origin"], [b"*"])
        self.assertEqual(headers[b"access-control-allow-methods"], [b"GET, HEAD"])
        self.assertIn(b"if-none-match", headers[b"access-control-allow-headers"][0].lower())
        self.assertIn(b"access-control-max-age", headers)
        code, headers, _ = await self.raw("OPTIONS", "/badge/a.example.svg")
        self.assertEqual((code, headers[b"access-control-allow-origin"]), (204, [b"*"]))
        code, headers, _ = await self.raw(
            "OPTIONS", "/api/submit", access_control_request_method=b"POST"
        )
        self.assertEqual((code, headers[b"allow"]), (204, [b"POST, OPTIONS"]))
        self.assertNotIn(b"access-control-allow-origin", headers)
        self.assertNotIn(b"access-control-allow-methods", headers)
        code, _, _ = await self.raw("OPTIONS", "/api/nothing")
        self.assertEqual(code, 404)


class RealSocketTests(APIFixture, TestCase):
    """
    gzip over a real TCP connection on loopback.
    """

    async def test_gzipOverSocket(self) -> None:
        """
        A client on a real socket that asks for gzip gets the graph
        gzipped, and a decoding client (Twisted's ContentDecoderAgent)
        reads the same JSON as one that does not ask.
        """
        self.makeAPI()
        await self.fill()
        port = reactor.listenTCP(0, Site(self.api.resource()), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/api/graph".encode()
        plain = await Agent(reactor).request(b"GET", url)
        plainBody = await readBody(plain)
        self.assertIsNone(plain.headers.getRawHeaders(b"content-encoding"))
        zipped = await Agent(reactor).request(b"GET", url, Headers({b"accept-encoding": [b"gzip"]}))
        self.assertEqual(zipped.headers.getRawHeaders(b"content-encoding"), [b"gzip"])
        zippedBody = await readBody(zipped)
        self.assertEqual(zipped.length, len(zippedBody))
        self.assertEqual(gzip.decompress(zippedBody), plainBody)
        decoding = ContentDecoderAgent(Agent(reactor), [(b"gzip", GzipDecoder)])
        decoded = await decoding.request(b"GET", url)
        self.assertEqual(await readBody(decoded), plainBody)
