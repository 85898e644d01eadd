# -*- test-case-name: tests.test_http_badge -*-
"""
C{GET /badge/{domain}.svg}: a small SVG badge (in the style of
shields.io) that a server's admin can put on a web page: "XMPP federation
| 12 peers", or "not on the graph".

The count is the domain's degree on the default graph (C{/api/graph}
without parameters: service subdomains folded, each anonymous peer a
node), so the badge obeys the graph's rules: a domain that is excluded,
stale, not consenting to be named, folded into its parent, or unknown
gets the one same "not on the graph" badge. The degrees are computed once
per store state (at most every L{Badges.freshFor} seconds), not per
badge.

The domain is written into the SVG (its C{title}, for screen readers and
tooltips) as text by L{xml.etree.ElementTree}, which escapes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree import ElementTree

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.server import Request

from xmppnetgraph.error import Unavailable
from xmppnetgraph.graphview import GraphView
from xmppnetgraph.http import params
from xmppnetgraph.http.errors import Response
from xmppnetgraph.http.graph import GraphViews, ViewParameters
from xmppnetgraph.http.stats import degrees

SVG_NS = "http://www.w3.org/2000/svg"
SVG_TYPE = b"image/svg+xml; charset=utf-8"

#: How long browsers and proxies may keep a badge.
MAX_AGE = 300

#: The left half's words.
LABEL = "XMPP federation"

#: Colours: publishes, on the graph, not on it, the label's.
GREEN, BLUE, GREY, DARK = "#4c1", "#007ec6", "#9f9f9f", "#555"

# Approximate advance widths (pixels) of Verdana at 11 px, the font of the
# badge, by character class; textLength makes the text fit in any font.
_NARROW = frozenset("iIjl.,:;|!'`()[]{}")
_WIDE = frozenset("mwMW@%")


@attrs.frozen
class Standing:
    """
    A domain on the graph, as its badge shows it.

    @ivar peers: its degree.
    @ivar publishes: whether it publishes its server information.
    """

    peers: int
    publishes: bool


def textWidth(text: str) -> float:
    """
    @return: about how wide C{text} is in pixels (Verdana, 11 px).
    """
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 3.7
        elif char in _WIDE:
            width += 10.5
        elif char == " ":
            width += 3.9
        elif char.isupper():
            width += 7.6
        else:
            width += 6.8
    return width


def message(standing: Standing | None) -> tuple[str, str]:
    """
    @return: the right half's words and colour for C{standing}.
    """
    if standing is None:
        return "not on the graph", GREY
    words = "1 peer" if standing.peers == 1 else f"{standing.peers:,} peers"
    return words, GREEN if standing.publishes else BLUE


def badgeSVG(domain: str, standing: Standing | None) -> bytes:
    """
    @param domain: the domain the badge is for (any text: it is escaped).
    @param standing: where it stands, or L{None} if it is not on the graph.
    @return: the badge as an SVG document.
    """
    words, colour = message(standing)
    left = round(textWidth(LABEL)) + 10
    right = round(textWidth(words)) + 10
    width = left + right
    title = f"{domain}: {words} on the XMPP federation graph"
    svg = ElementTree.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": str(width),
            "height": "20",
            "viewBox": f"0 0 {width} 20",
            "role": "img",
            "aria-label": title,
        },
    )
    ElementTree.SubElement(svg, "title").text = title
    gradient = ElementTree.SubElement(svg, "linearGradient", {"id": "s", "x2": "0", "y2": "100%"})
    ElementTree.SubElement(
        gradient, "stop", {"offset": "0", "stop-color": "#bbb", "stop-opacity": ".1"}
    )
    ElementTree.SubElement(gradient, "stop", {"offset": "1", "stop-opacity": ".1"})
    clip = ElementTree.SubElement(svg, "clipPath", {"id": "r"})
    ElementTree.SubElement(
        clip, "rect", {"width": str(width), "height": "20", "rx": "3", "fill": "#fff"}
    )
    shapes = ElementTree.SubElement(svg, "g", {"clip-path": "url(#r)"})
    ElementTree.SubElement(shapes, "rect", {"width": str(left), "height": "20", "fill": DARK})
    ElementTree.SubElement(
        shapes, "rect", {"x": str(left), "width": str(right), "height": "20", "fill": colour}
    )
    ElementTree.SubElement(shapes, "rect", {"width": str(width), "height": "20", "fill": "url(#s)"})
    text = ElementTree.SubElement(
        svg,
        "g",
        {
            "fill": "#fff",
            "text-anchor": "middle",
            "font-family": "Verdana,Geneva,DejaVu Sans,sans-serif",
            "font-size": "11",
            "aria-hidden": "true",
        },
    )
    for x, content, span in ((left / 2, LABEL, left - 10), (left + right / 2, words, right - 10)):
        for y, fill in (("15", "#010101"), ("14", None)):
            line = ElementTree.SubElement(
                text,
                "text",
                {
                    "x": f"{x:g}",
                    "y": y,
                    "textLength": str(span),
                    "lengthAdjust": "spacingAndGlyphs",
                },
            )
            if fill is not None:
                line.set("fill", fill)
                line.set("fill-opacity", ".3")
            line.text = content
    return ElementTree.tostring(svg, encoding="unicode").encode("utf-8")


def standings(view: GraphView) -> dict[str, Standing]:
    """
    @return: every named domain of C{view} and where it stands.
    """
    degree = degrees(view)
    return {
        node.label: Standing(degree.get(node.id, 0), node.publishes is True)
        for node in view.nodes
        if node.label is not None
    }


class Badges:
    """
    The handler of C{/badge/{domain}.svg}.

    @ivar freshFor: seconds the degrees are kept while the store is
        unchanged.
    @ivar computed: how many times they were computed (for tests).
    """

    def __init__(
        self, views: GraphViews | None, clock: IReactorTime, freshFor: float = 60.0
    ) -> None:
        self._views = views
        self._clock = clock
        self.freshFor = freshFor
        self.computed = 0
        self._cached: tuple[int | None, float, dict[str, Standing]] | None = None
        self._waiting: list[Deferred[dict[str, Standing]]] | None = None

    def _standings(self) -> Deferred[dict[str, Standing]]:
        """
        @return: the standings of the current graph, from the cache or
            computed (once, for every request that waits meanwhile).
        """
        assert self._views is not None
        if self._cached is not None:
            eventId, made, known = self._cached
            fresh = self._clock.seconds() - made <= self.freshFor
            if eventId is not None and eventId == self._views.latest and fresh:
                return succeed(known)
        d: Deferred[dict[str, Standing]] = Deferred()
        if self._waiting is not None:
            self._waiting.append(d)
            return d
        self._waiting = [d]
        Deferred.fromCoroutine(self._compute()).addBoth(self._computed)
        return d

    async def _compute(self) -> dict[str, Standing]:
        assert self._views is not None
        self.computed += 1
        made = self._clock.seconds()
        view = await self._views.currentView(ViewParameters())
        known = standings(view)
        self._cached = (view.lastEventId, made, known)
        return known

    def _computed(self, result: dict[str, Standing] | Failure) -> None:
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.callback(result)

    async def badge(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /badge/{domain}.svg}.

        @raise BadParameter: if C{domain} is no valid domain name.
        @raise Unavailable: without a graph store.
        """
        name = params.domain(path["domain"])
        if self._views is None:
            raise Unavailable("this node keeps no graph store")
        known = await self._standings()
        body = badgeSVG(name, known.get(name))
        headers = {b"cache-control": f"public, max-age={MAX_AGE}".encode()}
        return Response(body, 200, SVG_TYPE, headers).tagged()
