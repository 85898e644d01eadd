# -*- test-case-name: tests.test_web_map -*-
"""
The map view (C{/}) in a real browser: legend, search and focus, the side
panel, the switches, live updates, the time slider, keyboard, phones and
the pages shown instead of a map. A node with a real SQLite store and
Debian's Chromium (L{tests.test_web_page.PageFixture}).
"""

from __future__ import annotations

import math
import time
from typing import Any

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.browser import Browser, browserSkip
from tests.test_http_api import publishes
from tests.test_web_page import PageFixture, distinctColours
from xmppnetgraph.model import DiscoveryStep, DomainFacts
from xmppnetgraph.serverinfo.payload import RemoteDomain

#: The colour of a dimmed node (web/src/emphasis.js).
DIM = "#e6e8ec"

#: A domain added later.
C = "c.example"

#: Markup where a remote server's own words arrive (its XEP-0092 software
#: name, a discovery step's detail).
MARKUP = '<img src="x" onerror="window.pwned = 1"><b>bold</b>'


def sleep(seconds: float) -> defer.Deferred[None]:
    """
    @return: a L{Deferred} that fires after C{seconds} on the reactor.
    """
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
    return d


def waitFor(page: Any, expression: str, timeout: float = 10.0) -> None:
    """
    Wait (in the browser's thread) until a JavaScript expression is true.
    Playwright's own C{wait_for_function} evaluates strings in the page,
    which the page's CSP (no C{unsafe-eval}) forbids.

    @raise AssertionError: if it is still false after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(50)


def state(page: Any) -> Any:
    """
    @return: (in the browser's thread) what the map shows: its node ids,
        the focused one, and the camera.
    """
    return page.evaluate(
        """() => {
            const { graph, renderer } = window.xmppnetgraph;
            return {
                nodes: graph.nodes().sort(),
                focus: document.documentElement.dataset.focus ?? "",
                camera: renderer.getCamera().getState(),
                search: location.search,
            };
        }"""
    )


def shownColour(page: Any, node: str) -> str:
    """
    @return: (in the browser's thread) the colour sigma draws C{node} in.
    """
    return str(
        page.evaluate("id => window.xmppnetgraph.renderer.getNodeDisplayData(id).color", node)
    )


class MapTests(PageFixture, TestCase):
    """
    The map view with the fixture's graph: a.example and b.example publish
    and report each other; a.example reports hidden.example (no consent)
    and an anonymous peer.
    """

    skip = browserSkip()
    timeout = 120

    async def setUp(self) -> None:
        await self.startAll()
        await self.fill()

    async def test_legend(self) -> None:
        """
        The legend counts each kind of node and the links, and the whole
        graph is in view when the page opens.
        """
        page = await self.openPage()

        def look() -> Any:
            counts = {
                kind: page.inner_text(f'.map-legend [data-kind="{kind}"]')
                for kind in ("publisher", "named", "anonymous", "links", "confirmed")
            }
            inside = page.evaluate(
                """() => {
                    const { graph, renderer } = window.xmppnetgraph;
                    const { width, height } = renderer.getDimensions();
                    return graph.mapNodes((id, a) => {
                        const p = renderer.graphToViewport(a);
                        return p.x >= 0 && p.x <= width && p.y >= 0 && p.y <= height;
                    });
                }"""
            )
            return counts, inside

        counts, inside = await self.browser.run(look)
        self.assertEqual(
            counts,
            {"publisher": "2", "named": "0", "anonymous": "2", "links": "3", "confirmed": "1"},
        )
        self.assertEqual(inside, [True] * 4)
        self.assertEqual(page.errors, [])

    async def test_searchFocuses(self) -> None:
        """
        Typing into the search offers matching domains; the arrow keys and
        Enter pick one, which is focused: its neighbours keep their colour,
        the rest is dimmed, the camera moves and the URL says
        C{?focus=}. Escape clears the focus.
        """
        page = await self.openPage()

        def search() -> Any:
            before = state(page)
            page.click("#search")
            page.keyboard.type("exam")
            options = page.locator("#search-options [role=option]").all_inner_texts()
            page.keyboard.press("ArrowDown")
            page.keyboard.press("ArrowDown")
            active = page.get_attribute("#search", "aria-activedescendant")
            page.keyboard.press("Enter")
            page.wait_for_selector("html[data-focus='b.example']")
            page.wait_for_timeout(600)
            focused = state(page)
            anonymous = [n for n in focused["nodes"] if n.startswith("anon-")]
            colours = {n: shownColour(page, n) for n in ["a.example", "b.example", *anonymous]}
            page.keyboard.press("Escape")
            page.wait_for_selector("html[data-focus='']")
            restored = shownColour(page, anonymous[0])
            return before, options, active, focused, colours, state(page), restored

        before, options, active, focused, colours, cleared, restored = await self.browser.run(
            search
        )
        anonymous = [n for n in focused["nodes"] if n.startswith("anon-")]
        self.assertEqual(options, ["a.example", "b.example"])
        self.assertEqual(active, "search-option-1")
        self.assertEqual(focused["search"], "?focus=b.example")
        self.assertNotEqual(focused["camera"], before["camera"])
        self.assertEqual(len(anonymous), 2)
        self.assertNotEqual(colours["a.example"], DIM)
        self.assertNotEqual(colours["b.example"], DIM)
        for node in anonymous:
            self.assertEqual(colours[node], DIM)
        self.assertEqual(cleared["search"], "")
        self.assertEqual(restored, "#9aa0a6")
        self.assertEqual(page.errors, [])

    async def test_focusFromURL(self) -> None:
        """
        C{/?focus=DOMAIN} opens with that domain focused and its panel:
        software, our streams, discovery steps, why it is on the graph and
        its peers, whose links focus them.
        """
        page = await self.openPage("/?focus=a.example")

        def look() -> Any:
            page.wait_for_selector("#panel table.facts")
            first = page.inner_text("#panel")
            page.click("#panel a.peer >> text=b.example")
            page.wait_for_selector("html[data-focus='b.example']")
            page.wait_for_selector("#panel h2 >> text=b.example")
            page.wait_for_selector("#panel table.facts")
            second = page.inner_text("#panel")
            return first, second, state(page)["search"]

        first, second, search = await self.browser.run(look)
        self.assertIn("on the graph: it consents to be named", first.lower())
        self.assertIn("Prosody 13.0.1", first)
        self.assertIn("TLSv1.3", first)
        self.assertIn("SASL EXTERNAL", first)
        self.assertIn("lists urn:xmpp:serverinfo:0", first)
        self.assertIn("confirmed by both", first)
        self.assertIn("an anonymous peer", first)
        self.assertIn("ejabberd 25.07", second)
        self.assertEqual(search, "?focus=b.example")
        self.assertEqual(page.errors, [])

    async def test_doubleClickFocuses(self) -> None:
        """
        Double-clicking a node focuses it (the public graph site's
        gesture) instead of zooming in as sigma would.
        """
        page = await self.openPage()

        def doubleClick() -> Any:
            page.wait_for_timeout(300)
            x, y = page.evaluate(
                """() => {
                    const { renderer } = window.xmppnetgraph;
                    const at = window.xmppnetgraph.graph.getNodeAttributes("b.example");
                    const p = renderer.graphToViewport(at);
                    const box = document.getElementById("map").getBoundingClientRect();
                    return [box.left + p.x, box.top + p.y];
                }"""
            )
            page.mouse.dblclick(x, y)
            page.wait_for_selector("html[data-focus='b.example']", timeout=5000)
            page.wait_for_timeout(1000)
            return state(page)

        shown = await self.browser.run(doubleClick)
        self.assertEqual(shown["focus"], "b.example")
        # The focus's zoom (0.6), not sigma's double-click zoom (1 / 2.2).
        self.assertAlmostEqual(shown["camera"]["ratio"], 0.6, places=3)
        self.assertEqual(page.errors, [])

    async def test_switches(self) -> None:
        """
        The switches ask /api/graph again: without anonymous peers, with
        them combined, with service subdomains apart; the URL carries
        them, and the camera stays where it was.
        """
        store = self.node.service.graph
        await store.recordFetch("conference.a.example", publishes())
        await store.storeReport(
            "b.example",
            [RemoteDomain("a.example", ("bidi",)), RemoteDomain("conference.a.example", ("bidi",))],
        )
        page = await self.openPage()

        def flip(name: str) -> Any:
            loads = page.get_attribute("#map", "data-loads")
            page.click(f".switches input[name={name}]")
            waitFor(page, f"document.getElementById('map').dataset.loads !== '{loads}'", timeout=10)
            return state(page)

        def run() -> Any:
            before = state(page)
            return before, flip("skipAnon"), flip("skipAnon"), flip("combineAnon"), flip("fold")

        before, skipped, again, combined, apart = await self.browser.run(run)
        self.assertEqual(len(before["nodes"]), 4)
        self.assertEqual(skipped["nodes"], ["a.example", "b.example"])
        self.assertEqual(skipped["search"], "?skipAnon=1")
        self.assertEqual(skipped["camera"], before["camera"])
        self.assertEqual(again["nodes"], before["nodes"])
        self.assertEqual(combined["nodes"], ["a.example", "anonymous", "b.example"])
        self.assertEqual(combined["search"], "?combineAnon=1")
        self.assertIn("conference.a.example", apart["nodes"])
        self.assertEqual(apart["search"], "?combineAnon=1&fold=0")
        self.assertEqual(page.errors, [])

    async def test_liveLink(self) -> None:
        """
        A link stored while the page is open appears on it without a
        reload, marked as new until the mark fades, and the counts follow.
        """
        page = await self.openPage()
        await self.browser.run(page.wait_for_selector, ".live-status[data-state=live]")
        store = self.node.service.graph
        await store.recordFetch("c.example", publishes())
        await store.storeReport(
            "b.example",
            [RemoteDomain("a.example", ("bidi",)), RemoteDomain("c.example", ("bidi",))],
        )

        def look() -> Any:
            waitFor(page, "window.xmppnetgraph.graph.hasNode('c.example')", timeout=10)
            fresh = page.evaluate("[...window.xmppnetgraph.view.emphasis.fresh.keys()].sort()")
            colour = shownColour(page, "c.example")
            publishers = page.inner_text('.map-legend [data-kind="publisher"]')
            waitFor(page, "window.xmppnetgraph.view.emphasis.fresh.size === 0")
            return fresh, colour, publishers, shownColour(page, "c.example")

        fresh, colour, publishers, faded = await self.browser.run(look)
        self.assertIn("n:c.example", fresh)
        self.assertIn("e:b.example|c.example", fresh)
        self.assertNotEqual(colour, "#1f6feb")
        self.assertEqual(faded, "#1f6feb")
        self.assertEqual(publishers, "3")
        self.assertEqual(page.errors, [])

    async def test_liveResumes(self) -> None:
        """
        When the server drops the event stream, the page reconnects and
        gets the change it missed meanwhile.
        """
        page = await self.openPage()
        await self.browser.run(page.wait_for_selector, ".live-status[data-state=live]")
        web = self.node.service.web
        assert web is not None and web.port is not None
        web.port.factory.api.events.stop()  # type: ignore[attr-defined]
        await self.browser.run(page.wait_for_selector, ".live-status[data-state=reconnecting]")
        store = self.node.service.graph
        await store.recordFetch("c.example", publishes())
        await store.storeReport("a.example", [RemoteDomain("c.example", ("outgoing",))])
        await self.browser.run(
            waitFor, page, "window.xmppnetgraph.graph.hasNode('c.example')", timeout=15
        )
        self.assertEqual(page.errors, [])

    async def test_markupIsText(self) -> None:
        """
        Names and words from remote servers show as text, never as markup:
        a software name and a step's detail in the panel, and a node label
        in the search and the list view. (The store refuses domain names
        with markup, so a label with markup is put into the page's graph.)
        """
        store = self.node.service.graph
        with self.assertRaises(ValueError):
            await store.recordFetch("<b>x</b>.example", publishes())
        await store.recordFetch(
            "a.example",
            DomainFacts(
                status="publishes",
                reachable=True,
                publishes=True,
                consents=True,
                softwareName=MARKUP,
                steps=(DiscoveryStep("disco#info", True, MARKUP),),
            ),
        )
        page = await self.openPage("/?focus=a.example")

        def look() -> Any:
            page.wait_for_selector("#panel table.facts")
            text = page.inner_text("#panel")
            elements = page.locator("#panel img, #panel b").count()
            page.evaluate(
                """label => {
                    const { view } = window.xmppnetgraph;
                    view.graph.addNode(label, { label, kind: "named", x: 0, y: 0, size: 3 });
                    view.list.update(view.graph, null);
                }""",
                MARKUP,
            )
            page.fill("#search", "<img")
            option = page.locator("#search-options [role=option]").all_inner_texts()
            listed = page.locator(".domain-list button").all_inner_texts()
            elements += page.locator(
                "#search-options img, .domain-list img, .domain-list b"
            ).count()
            return text, elements, option, listed, page.evaluate("window.pwned ?? null")

        text, elements, option, listed, pwned = await self.browser.run(look)
        self.assertIn(MARKUP, text)
        self.assertEqual(elements, 0)
        self.assertEqual(option, [MARKUP])
        self.assertIn(f"{MARKUP} (0 peers)", listed)
        self.assertIsNone(pwned)
        self.assertEqual(page.errors, [])

    async def test_listView(self) -> None:
        """
        A list of the named domains is there for screen readers, hidden
        from sight until the keyboard enters it; its buttons focus a
        domain.
        """
        page = await self.openPage()

        def look() -> Any:
            names = page.locator(".domain-list button").all_inner_texts()
            hidden = page.locator(".domain-list").bounding_box()
            page.focus(".domain-list button >> nth=0")
            shown = page.locator(".domain-list").bounding_box()
            page.keyboard.press("Enter")
            page.wait_for_selector("html[data-focus='a.example']")
            return names, hidden, shown

        names, hidden, shown = await self.browser.run(look)
        self.assertEqual(names, ["a.example (3 peers)", "b.example (1 peers)"])
        self.assertLessEqual(hidden["width"], 1)
        self.assertGreater(shown["width"], 100)
        self.assertEqual(page.errors, [])


class HistoryTests(PageFixture, TestCase):
    """
    The time slider shows the graph as it was, on the same positions.
    """

    skip = browserSkip()
    timeout = 120

    async def setUp(self) -> None:
        await self.startAll()

    async def test_sliderShowsOlderGraph(self) -> None:
        """
        Dragging the slider back to a time between two reports shows the
        graph of then (without the domain added later), its nodes where
        they are now; its right end is the live graph again.
        """
        store = self.node.service.graph
        await store.recordFetch("a.example", publishes())
        await store.recordFetch("b.example", publishes())
        await store.storeReport("a.example", [RemoteDomain("b.example", ("bidi",))])
        first = time.time()
        await sleep(1.3)
        await store.recordFetch("c.example", publishes())
        await store.storeReport(
            "a.example",
            [RemoteDomain("b.example", ("bidi",)), RemoteDomain("c.example", ("bidi",))],
        )
        second = time.time() - 0.1
        between = math.floor(first) + 1
        self.assertLess(between, second)
        page = await self.openPage()

        def drag() -> Any:
            now = page.evaluate(
                "window.xmppnetgraph.graph.mapNodes((id, a) => [id, a.x, a.y]).sort()"
            )
            value = page.evaluate("t => window.xmppnetgraph.timeline.valueFor(t)", between + 0.5)
            page.fill("#timeline", str(value))
            waitFor(page, "document.documentElement.dataset.shown !== 'now'", timeout=10)
            waitFor(page, "!window.xmppnetgraph.graph.hasNode('c.example')")
            then = page.evaluate(
                "window.xmppnetgraph.graph.mapNodes((id, a) => [id, a.x, a.y]).sort()"
            )
            shown = page.evaluate("document.documentElement.dataset.shown")
            label = page.inner_text(".timeline-at")
            page.focus("#timeline")
            page.keyboard.press("End")
            waitFor(page, "window.xmppnetgraph.graph.hasNode('c.example')")
            return now, then, shown, label, page.evaluate("document.documentElement.dataset.shown")

        now, then, shown, label, back = await self.browser.run(drag)
        self.assertEqual([n[0] for n in now], ["a.example", "b.example", "c.example"])
        self.assertEqual(then, [n for n in now if n[0] != "c.example"])
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(between))
        self.assertEqual(shown, moment)
        self.assertEqual(label, moment)
        self.assertEqual(back, "now")
        self.assertEqual(page.errors, [])

    async def test_play(self) -> None:
        """
        The play button runs the history from its oldest time (live
        updates pause meanwhile, and the page says so); pressed again, it
        stops.
        """
        store = self.node.service.graph
        await store.recordFetch("a.example", publishes())
        await store.storeReport("a.example", [RemoteDomain(None, ("bidi",))])
        page = await self.openPage()

        def play() -> Any:
            page.wait_for_selector(".live-status[data-state=live]")
            page.click(".map-timeline .play")
            waitFor(page, "document.documentElement.dataset.shown !== 'now'")
            playing = page.get_attribute(".map-timeline .play", "aria-pressed")
            status = page.inner_text(".live-status")
            page.click(".map-timeline .play")
            stopped = page.get_attribute(".map-timeline .play", "aria-pressed")
            page.focus("#timeline")
            page.keyboard.press("End")
            waitFor(page, "document.documentElement.dataset.shown === 'now'")
            return playing, status, stopped, page.inner_text(".live-status")

        playing, status, stopped, live = await self.browser.run(play)
        self.assertEqual(playing, "true")
        self.assertIn("paused", status)
        self.assertEqual(stopped, "false")
        self.assertEqual(live, "live")
        self.assertEqual(page.errors, [])


class EmptyTests(PageFixture, TestCase):
    """
    A node whose store holds nothing yet.
    """

    skip = browserSkip()
    timeout = 120

    async def setUp(self) -> None:
        await self.startAll()

    async def test_empty(self) -> None:
        """
        An empty graph says so instead of showing a blank canvas.
        """
        page = await self.openPage()
        message = await self.browser.run(page.inner_text, "#message")
        self.assertIn("The graph is empty", message)
        self.assertEqual(await self.browser.run(page.is_visible, "#message"), True)
        self.assertEqual(page.errors, [])


class NoWebGLTests(PageFixture, TestCase):
    """
    A browser without WebGL.
    """

    skip = browserSkip()
    timeout = 120

    async def setUp(self) -> None:
        await self.startAll(Browser(flags=("--disable-webgl", "--disable-3d-apis")))
        await self.fill()

    async def test_message(self) -> None:
        """
        Without WebGL the page says that it needs it, and where the data
        is, instead of a blank canvas.
        """
        page = await self.openPage(state="no-webgl")
        message = await self.browser.run(page.inner_text, "#message")
        self.assertIn("needs WebGL", message)
        self.assertIn("/api/graph", message)
        self.assertEqual(page.errors, [])


class PhoneTests(PageFixture, TestCase):
    """
    The map on a phone-sized viewport (390×844).
    """

    skip = browserSkip()
    timeout = 120

    async def setUp(self) -> None:
        await self.startAll(Browser(viewport=(390, 844)))
        await self.fill()

    async def test_bottomSheet(self) -> None:
        """
        On a phone the panel is a bottom sheet across the width, leaving
        the top of the map visible and drawn; nothing is wider than the
        screen.
        """
        page = await self.openPage("/?focus=a.example")

        def look() -> Any:
            page.wait_for_selector("#panel table.facts")
            panel = page.locator("#panel").bounding_box()
            width = page.evaluate("document.documentElement.scrollWidth")
            shot = page.screenshot(clip={"x": 0, "y": 100, "width": 390, "height": 250})
            return panel, width, shot

        panel, width, shot = await self.browser.run(look)
        self.assertEqual(panel["width"], 390)
        self.assertAlmostEqual(panel["y"] + panel["height"], 844, delta=1)
        self.assertLessEqual(panel["height"], 844 * 0.6)
        self.assertEqual(width, 390)
        self.assertGreater(distinctColours(shot), 3)
        self.assertEqual(page.errors, [])
