# -*- test-case-name: tests.test_http_static -*-
"""
Serving the built page (L{xmppnetgraph.http.static}) in memory, from a
build-shaped directory made by the test, and the package's real build.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from treq.testing import StubTreq
from twisted.trial.unittest import TestCase
from twisted.web.test.requesthelper import DummyRequest

from tests.prosody import inCI
from xmppnetgraph.http.routes import Route, Router
from xmppnetgraph.http.static import PAGE_PATHS, StaticPage

SCRIPT = b"console.log('map');" * 50


def requestAccepting(codings: bytes) -> DummyRequest:
    """
    @return: a request for an asset with C{Accept-Encoding: codings}.
    """
    request = DummyRequest([b"assets", b"main-ABC123.js"])
    request.requestHeaders.setRawHeaders(b"accept-encoding", [codings])
    return request


class StaticTests(TestCase):
    """
    The page, its hashed assets and their headers.
    """

    def serve(self, built: bool = True) -> StubTreq:
        """
        @return: a client of a router serving a build-shaped directory (or
            an empty one).
        """
        directory = Path(self.mktemp())
        (directory / "assets").mkdir(parents=True)
        if built:
            (directory / "index.html").write_bytes(b"<!doctype html><title>map</title>")
            (directory / "assets" / "main-ABC123.js").write_bytes(SCRIPT)
            (directory / "assets" / "main-ABC123.js.gz").write_bytes(gzip.compress(SCRIPT))
            (directory / "assets" / "main-ABC123.js.map").write_bytes(b"{}")
        page = self.page = StaticPage(directory)
        routes = [Route("GET", "/assets/{name}", page.asset)]
        routes += [Route("GET", path, page.page) for path in PAGE_PATHS]
        return StubTreq(Router(routes))

    async def test_page(self) -> None:
        """
        Every page path answers the page, revalidated by ETag, with a
        content security policy.
        """
        http = self.serve()
        for path in PAGE_PATHS:
            response = await http.get("http://node.example" + path)
            self.assertEqual(response.code, 200)
            self.assertEqual(await response.content(), b"<!doctype html><title>map</title>")
            headers = response.headers
            self.assertEqual(headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
            self.assertEqual(headers.getRawHeaders("cache-control"), ["no-cache"])
            self.assertIn("default-src 'self'", headers.getRawHeaders("content-security-policy")[0])
        etag = headers.getRawHeaders("etag")[0]
        again = await http.get("http://node.example/", headers={"if-none-match": etag})
        self.assertEqual(again.code, 304)
        self.assertEqual(await again.content(), b"")

    async def test_asset(self) -> None:
        """
        A hashed asset is cached for a year; its gzip copy goes to clients
        that accept gzip, the plain file to the others.
        """
        http = self.serve()
        url = "http://node.example/assets/main-ABC123.js"
        plain = await http.get(url)
        self.assertEqual(plain.code, 200)
        self.assertEqual(await plain.content(), SCRIPT)
        self.assertEqual(
            plain.headers.getRawHeaders("content-type"), ["text/javascript; charset=utf-8"]
        )
        self.assertIn("immutable", plain.headers.getRawHeaders("cache-control")[0])
        self.assertIsNone(plain.headers.getRawHeaders("content-encoding"))
        # (treq would decode the gzip answer itself: ask the handler.)
        zipped = self.page.asset(requestAccepting(b"br, gzip;q=0.8"), {"name": "main-ABC123.js"})
        self.assertEqual(zipped.headers[b"content-encoding"], b"gzip")
        self.assertEqual(zipped.headers[b"vary"], b"accept-encoding")
        self.assertEqual(gzip.decompress(zipped.body), SCRIPT)
        refused = self.page.asset(requestAccepting(b"gzip;q=0"), {"name": "main-ABC123.js"})
        self.assertNotIn(b"content-encoding", refused.headers)
        self.assertEqual(refused.body, SCRIPT)
        sourceMap = await http.get("http://node.example/assets/main-ABC123.js.map")
        self.assertEqual(sourceMap.headers.getRawHeaders("content-type"), ["application/json"])

    async def test_unknownAsset(self) -> None:
        """
        An asset that is not in the build is a JSON 404.
        """
        response = await self.serve().get("http://node.example/assets/main-OLD.js")
        self.assertEqual(response.code, 404)
        self.assertEqual(
            json.loads(await response.content())["error"]["message"],
            "no such file: /assets/main-OLD.js",
        )

    async def test_notBuilt(self) -> None:
        """
        Without a build the page paths answer 503, saying how to build it.
        """
        response = await self.serve(built=False).get("http://node.example/")
        self.assertEqual(response.code, 503)
        message = json.loads(await response.content())["error"]["message"]
        self.assertIn("scripts/build-web", message)


class PackageBuildTests(TestCase):
    """
    The package's own build (scripts/build-web, or setup.py for a wheel).
    """

    if not StaticPage().built and not inCI():
        skip = "the page is not built here (scripts/build-web)"

    def test_built(self) -> None:
        """
        The build has the page, and the page names a hashed script and
        stylesheet that are in the build, each with its gzip copy.
        """
        page = StaticPage()
        self.assertTrue(page.built)
        index = page._index.decode()
        names = [
            part.split('"')[0]
            for part in index.split('="/assets/')[1:]
            if part.split('"')[0].endswith((".js", ".css"))
        ]
        self.assertEqual(len(names), 2, index)
        for name in names:
            self.assertRegex(name, r"^main-[A-Z0-9]{8}\.(js|css)$")
            self.assertIsNotNone(page._assets[name].gzipped)
