# -*- test-case-name: tests.test_http_badge -*-
"""
The SVG badge (C{/badge/{domain}.svg}): in memory on a real SQLite store,
and the renderer on its own with markup in a name.
"""

from __future__ import annotations

from xml.etree import ElementTree

from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.test_http import validator
from tests.test_http_api import APIFixture
from xmppnetgraph.http.badge import BLUE, GREEN, GREY, SVG_NS, Standing, badgeSVG
from xmppnetgraph.model import DomainFacts
from xmppnetgraph.serverinfo.payload import RemoteDomain

_SVG = "{" + SVG_NS + "}"


def parse(body: bytes) -> ElementTree.Element:
    """
    @return: the root of C{body}, checked to be an SVG document.
    """
    root = ElementTree.fromstring(body)
    assert root.tag == _SVG + "svg", root.tag
    return root


def words(root: ElementTree.Element) -> list[str]:
    """
    @return: the visible texts of a badge (each is drawn twice: shadow
        and text).
    """
    return [text.text or "" for text in root.iter(_SVG + "text")][1::2]


def title(root: ElementTree.Element) -> str:
    """
    @return: the badge's title.
    """
    element = root.find(_SVG + "title")
    assert element is not None
    return element.text or ""


class BadgeTests(APIFixture, TestCase):
    """
    The badge through the API.
    """

    async def badge(self, domain: str) -> tuple[bytes, ElementTree.Element]:
        """
        @return: the body of a domain's badge and its parsed root, after
            checking the answer's headers.
        """
        code, headers, body = await self.request("GET", f"/badge/{domain}.svg")
        self.assertEqual(code, 200, body)
        self.assertEqual(headers[b"content-type"], [b"image/svg+xml; charset=utf-8"])
        self.assertEqual(headers[b"cache-control"], [b"public, max-age=300"])
        self.assertIn(b"etag", headers)
        return body, parse(body)

    async def test_onTheGraph(self) -> None:
        """
        A publisher's badge counts its peers on the default graph (its
        folded service subdomain's peer too), in green, and names it in
        its title.
        """
        self.makeAPI()
        await self.fill()
        body, root = await self.badge("a.example")
        self.assertEqual(words(root), ["XMPP federation", "3 peers"])
        self.assertEqual(title(root), "a.example: 3 peers on the XMPP federation graph")
        self.assertEqual(root.get("aria-label"), title(root))
        self.assertIn(GREEN.encode(), body)
        _, root = await self.badge("B.Example")
        self.assertEqual(words(root)[1], "1 peer")

    async def test_notPublishing(self) -> None:
        """
        A consenting domain that publishes nothing but is reported is on
        the graph in blue; one peer is "1 peer".
        """
        self.makeAPI()
        await self.fill()
        facts = DomainFacts(status="no-item", reachable=True, publishes=False, consents=True)
        await self.store.recordFetch("c.example", facts)
        await self.store.storeReport("b.example", [RemoteDomain("c.example", ("outgoing",))])
        self.clock.advance(100)
        body, root = await self.badge("c.example")
        self.assertEqual(words(root)[1], "1 peer")
        self.assertIn(BLUE.encode(), body)

    async def test_notOnTheGraph(self) -> None:
        """
        A domain nobody knows, one that did not consent to be named, a
        service subdomain folded into its parent and an excluded one all
        get the same grey badge (but for their name).
        """
        self.makeAPI(excluded=lambda d: d == "b.example")
        await self.fill()
        bodies = {}
        for domain in [
            "nobody.example",
            "hidden.example",
            "conference.a.example",
            "b.example",
        ]:
            body, root = await self.badge(domain)
            self.assertEqual(words(root)[1], "not on the graph")
            self.assertIn(GREY.encode(), body)
            bodies[domain] = body.replace(domain.encode(), b"X")
        self.assertEqual(len(set(bodies.values())), 1, bodies)

    async def test_stale(self) -> None:
        """
        A domain that went stale is not on the graph.
        """
        self.makeAPI()
        await self.fill()
        _, root = await self.badge("b.example")
        self.assertEqual(words(root)[1], "1 peer")
        self.clock.advance(7200)
        await self.store.storeReport("a.example", [])
        await self.store.markStale(3600)
        self.clock.advance(100)
        _, root = await self.badge("b.example")
        self.assertEqual(words(root)[1], "not on the graph")

    async def test_invalidDomain(self) -> None:
        """
        A name that is no domain, markup among them, is a JSON 400.
        """
        self.makeAPI()
        for domain in ["%3Cb%3Ex%3C%2Fb%3E.example", "a..example", "127.0.0.1", "%FF"]:
            error = await self.getJSON(f"/badge/{domain}.svg", 400)
            validator("Error").validate(error)
            self.assertTrue(error["error"]["message"].startswith("domain"), error)

    async def test_computedOnce(self) -> None:
        """
        The degrees are computed once per store state for every badge;
        a change of the store makes them anew.
        """
        self.makeAPI()
        await self.fill()
        for domain in ["a.example", "b.example", "nobody.example", "a.example"]:
            await self.badge(domain)
        self.assertEqual(self.api.badges.computed, 1)
        await self.store.storeReport("b.example", [RemoteDomain("a.example", ("bidi",))])
        _, root = await self.badge("b.example")
        self.assertEqual(self.api.badges.computed, 2)
        self.assertEqual(words(root)[1], "1 peer")
        self.clock.advance(61)  # unchanged, but older than freshFor
        await self.badge("b.example")
        self.assertEqual(self.api.badges.computed, 3)

    async def test_noStore(self) -> None:
        """
        Without a graph store a badge is a JSON 503.
        """
        self.makeAPI(graph=None)
        validator("Error").validate(await self.getJSON("/badge/a.example.svg", 503))


class RendererTests(SynchronousTestCase):
    """
    L{badgeSVG} on its own.
    """

    def test_markupIsText(self) -> None:
        """
        A name with markup, ampersands and quotes is written as text: the
        document is well-formed and its title reads the name back.
        """
        name = "<script>alert(\"x\")</script> & 'co'"
        body = badgeSVG(name, Standing(12, True))
        self.assertNotIn(b"<script>", body)
        root = parse(body)
        self.assertEqual(title(root), f"{name}: 12 peers on the XMPP federation graph")
        self.assertEqual(root.get("aria-label"), title(root))

    def test_width(self) -> None:
        """
        The badge is as wide as its two halves, and a longer message makes
        it wider.
        """
        short = parse(badgeSVG("a.example", Standing(1, False)))
        long = parse(badgeSVG("a.example", Standing(12345, False)))
        self.assertEqual(words(long)[1], "12,345 peers")
        self.assertLess(int(short.get("width", "0")), int(long.get("width", "0")))
        self.assertEqual(long.get("viewBox"), f"0 0 {long.get('width')} 20")
