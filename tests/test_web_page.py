# -*- test-case-name: tests.test_web_page -*-
"""
The page in a real browser: one of our nodes (web endpoint on loopback, a
real SQLite graph store filled through the store's own interface) and
Debian's Chromium, headless, driven by Playwright (L{tests.browser}).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image
from twisted.trial.unittest import TestCase

from tests.browser import Browser, browserSkip
from tests.nodes import RunningNode
from tests.test_http_api import NO_CONSENT, publishes
from xmppnetgraph.http.static import StaticPage
from xmppnetgraph.serverinfo.payload import RemoteDomain

ADDRESS = "127.0.0.1"


class PageFixture:
    """
    A started node with a small graph in its store, and a browser.
    """

    mktemp: Any
    addCleanup: Any

    async def startAll(self, browser: Browser | None = None, **config: Any) -> None:
        """
        Start the node (not crawling, unless C{config} says) and the
        browser.

        @param browser: the browser to start (default: a desktop-sized one).
        @param config: more L{Config} fields for the node.
        """
        if not StaticPage().built:
            raise RuntimeError("the page is not built: scripts/build-web")
        base = Path(self.mktemp()).absolute()
        base.mkdir(parents=True)
        self.node = RunningNode(base, "agg.example", ADDRESS)
        self.node.build(**config)
        self.node.start()
        self.addCleanup(self.node.stop)
        self.browser = Browser() if browser is None else browser
        self.addCleanup(self.browser.stop)
        await self.browser.start()
        self.url = f"http://{ADDRESS}:{self.node.webPort}"

    async def fill(self) -> None:
        """
        a.example and b.example publish and report each other; a.example
        also reports hidden.example (no consent) and an anonymous peer.
        """
        store = self.node.service.graph
        await store.recordFetch("a.example", publishes())
        await store.recordFetch("b.example", publishes("ejabberd", "25.07"))
        await store.recordFetch("hidden.example", NO_CONSENT)
        await store.storeReport(
            "a.example",
            [
                RemoteDomain("b.example", ("incoming", "outgoing")),
                RemoteDomain("hidden.example", ("outgoing",)),
                RemoteDomain(None, ("incoming",)),
            ],
        )
        await store.storeReport("b.example", [RemoteDomain("a.example", ("bidi",))])

    async def openPage(self, path: str = "/", state: str = "drawn") -> Any:
        """
        @param state: the C{data-state} the page has when it is done
            (C{drawn}, or C{no-webgl} where it cannot draw).
        @return: a tab showing C{path}, once the page says it is done.
        """
        page = await self.browser.newPage()

        def load() -> None:
            page.goto(self.url + path)
            page.wait_for_selector(f"html[data-state={state}]", timeout=20_000)

        await self.browser.run(load)
        return page


class PageTests(PageFixture, TestCase):
    """
    The page loads, draws the graph, and says what it shows.
    """

    skip = browserSkip()
    timeout = 120

    async def setUp(self) -> None:
        await self.startAll()
        await self.fill()

    async def test_draws(self) -> None:
        """
        The page draws the stored graph on a WebGL canvas: every node of
        /api/graph is in the page's graph, the counts are shown, the
        screenshot is not blank, and nothing went wrong in the console.
        """
        page = await self.openPage()

        def look() -> tuple[Any, str, bytes]:
            nodes = page.evaluate("window.xmppnetgraph.graph.nodes().sort()")
            counts = page.inner_text("#counts")
            shot = page.locator("#map").screenshot()
            return nodes, counts, shot

        nodes, counts, shot = await self.browser.run(look)
        self.assertEqual(len(nodes), 4)
        self.assertIn("a.example", nodes)
        self.assertIn("b.example", nodes)
        self.assertNotIn("hidden.example", nodes)
        self.assertIn("2 named", counts)
        self.assertGreater(distinctColours(shot), 3, "the map looks blank")
        self.assertEqual(page.errors, [])


def distinctColours(png: bytes) -> int:
    """
    @return: how many distinct colours a screenshot has: a blank canvas has
        one or two.
    """
    with Image.open(io.BytesIO(png)) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 24) or ())
