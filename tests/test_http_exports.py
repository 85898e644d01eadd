# -*- test-case-name: tests.test_http_exports -*-
"""
The GraphML and GEXF exports (C{/api/graph.graphml}, C{/api/graph.gexf}),
read back with networkx and compared with C{/api/graph} for the same
parameters, in memory on a real SQLite store.
"""

from __future__ import annotations

import io
from typing import Any

import networkx
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.test_http import validator
from tests.test_http_api import APIFixture
from xmppnetgraph.graphview import GraphView, ViewEdge, ViewNode
from xmppnetgraph.http.exports import gexf, graphML


def readGraphML(body: bytes) -> Any:
    """
    @return: C{body} read by networkx.
    """
    return networkx.read_graphml(io.BytesIO(body))


def readGEXF(body: bytes) -> Any:
    """
    @return: C{body} read by networkx as a user would (C{read_gexf}'s
        default version is 1.2draft: it finds the 1.3 document's version
        itself).
    """
    return networkx.read_gexf(io.BytesIO(body))


READERS = {"graphml": readGraphML, "gexf": readGEXF}

#: Names that are markup, for the writers (the API never stores such a
#: domain: names are validated before they are stored).
MARKUP = ["<b>x</b>.example", "a&b.example", "q\"uo'te.example"]

#: Where the nodes of L{MARKUP} and C{anon-1} are drawn.
PLACED = {
    MARKUP[0]: (1.0, 2.0),
    MARKUP[1]: (-12.5, 30.0),
    MARKUP[2]: (0.0, 0.0),
    "anon-1": (5.0, 5.0),
}


class ExportTests(APIFixture, TestCase):
    """
    The exports through the API.
    """

    async def compare(self, graph: Any, query: str) -> None:
        """
        Check that C{graph} (read by networkx) has the nodes, edges and
        attributes of C{/api/graph?query}.
        """
        expected = await self.getJSON("/api/graph" + query)
        self.assertEqual(set(graph.nodes), {node["id"] for node in expected["nodes"]}, query)
        self.assertEqual(
            {frozenset(edge) for edge in graph.edges},
            {frozenset((edge["from"], edge["to"])) for edge in expected["edges"]},
            query,
        )
        for node in expected["nodes"]:
            attributes = graph.nodes[node["id"]]
            if "label" in node:
                self.assertEqual(attributes["label"], node["label"])
            else:
                self.assertIsNone(attributes.get("label"), node)
            self.assertEqual(attributes.get("publishes"), node["publishes"], node)
            self.assertEqual(attributes["first_seen"], node["first_seen"])
            self.assertEqual(attributes["last_seen"], node["last_seen"])
            self.assertEqual(attributes["anonymous"], node.get("anonymous", 0))
            self.assertEqual(attributes["stale"], node["stale"])
            self.assertEqual(attributes.get("members", ""), " ".join(node.get("members", [])))
            # GraphML's x/y attributes, or GEXF's viz:position.
            position = attributes["viz"]["position"] if "viz" in attributes else attributes
            self.assertEqual((position["x"], position["y"]), (node["x"], node["y"]), node)
        for edge in expected["edges"]:
            attributes = graph.edges[edge["from"], edge["to"]]
            self.assertEqual(attributes["confirmed"], edge["confirmed"])
            self.assertEqual(attributes["directions"].split(), edge["directions"])

    async def test_sameAsGraph(self) -> None:
        """
        Both formats, read back by networkx, have exactly the nodes, edges
        and attributes of C{/api/graph}, for each of its parameters.
        """
        self.makeAPI()
        await self.fill()
        for query in ["", "?fold=0", "?skipAnon", "?combineAnon", "?focus=b.example&fold=0"]:
            for name, read in READERS.items():
                code, headers, body = await self.request("GET", f"/api/graph.{name}{query}")
                self.assertEqual(code, 200, body)
                graph = read(body)
                self.assertFalse(graph.is_directed())
                await self.compare(graph, query)
        past = "?at=2023-11-14T22:13:25Z"
        for name, read in READERS.items():
            code, _, body = await self.request("GET", f"/api/graph.{name}{past}")
            graph = read(body)
            self.assertEqual((set(graph.nodes), len(graph.edges)), ({"a.example", "b.example"}, 0))
            await self.compare(graph, past)

    async def test_headers(self) -> None:
        """
        An export is an attachment of its own content type, revalidated
        by its ETag, and cached like C{/api/graph}: the same store state
        and parameters are encoded once.
        """
        self.makeAPI()
        await self.fill()
        for name, contentType in [
            ("graphml", b"application/graphml+xml; charset=utf-8"),
            ("gexf", b"application/gexf+xml; charset=utf-8"),
        ]:
            code, headers, body = await self.request("GET", f"/api/graph.{name}")
            self.assertEqual(headers[b"content-type"], [contentType])
            self.assertEqual(
                headers[b"content-disposition"],
                [f'attachment; filename="xmppnetgraph.{name}"'.encode()],
            )
            self.assertEqual(headers[b"cache-control"], [b"no-cache"])
            self.assertTrue(body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'))
            misses = self.api.views.misses  # type: ignore[union-attr]
            code, again, body2 = await self.request("GET", f"/api/graph.{name}")
            self.assertEqual((body2, again[b"etag"]), (body, headers[b"etag"]))
            self.assertEqual(self.api.views.misses, misses)  # type: ignore[union-attr]

    async def test_badParameter(self) -> None:
        """
        A bad parameter is the same JSON 400 as on C{/api/graph}.
        """
        self.makeAPI()
        for name in READERS:
            error = await self.getJSON(f"/api/graph.{name}?at=yesterday", 400)
            validator("Error").validate(error)
            self.assertTrue(error["error"]["message"].startswith("at:"))

    async def test_noStore(self) -> None:
        """
        Without a graph store an export is a JSON 503.
        """
        self.makeAPI(graph=None)
        for name in READERS:
            validator("Error").validate(await self.getJSON(f"/api/graph.{name}", 503))


class EscapingTests(SynchronousTestCase):
    """
    The writers escape every name and value.
    """

    def view(self) -> GraphView:
        """
        @return: a view whose ids and labels are markup.
        """
        nodes = tuple(ViewNode(name, name, True, 0.0, 60.0) for name in MARKUP)
        nodes += (ViewNode("anon-1", None, None, 0.0, 60.0, anonymous=1),)
        edges = (
            ViewEdge(MARKUP[0], MARKUP[1], ("incoming", "outgoing"), True),
            ViewEdge(MARKUP[2], "anon-1", ("bidi",), False),
        )
        return GraphView(120.0, nodes, edges, None, 7)

    def test_markupIsText(self) -> None:
        """
        Markup in names comes back from both formats as the same text,
        and an unknown C{publishes} is left out.
        """
        for write, read in [(graphML, readGraphML), (gexf, readGEXF)]:
            body = write(self.view(), PLACED)
            self.assertNotIn(b"<b>", body)
            graph = read(body)
            self.assertEqual(set(graph.nodes), {*MARKUP, "anon-1"})
            for name in MARKUP:
                self.assertEqual(graph.nodes[name]["label"], name)
                self.assertIs(graph.nodes[name]["publishes"], True)
            self.assertNotIn("publishes", graph.nodes["anon-1"])
            self.assertEqual(graph.nodes["anon-1"]["anonymous"], 1)
            self.assertEqual(graph.edges[MARKUP[0], MARKUP[1]]["directions"], "incoming outgoing")
            self.assertIs(graph.edges[MARKUP[2], "anon-1"]["confirmed"], False)
            node = graph.nodes[MARKUP[1]]
            position = node["viz"]["position"] if "viz" in node else node
            self.assertEqual((position["x"], position["y"]), (-12.5, 30.0))

    def test_graphData(self) -> None:
        """
        The GraphML graph says when it shows the federation, and the GEXF
        file's meta data the day.
        """
        graph = readGraphML(graphML(self.view(), PLACED))
        self.assertEqual(graph.graph["at"], "1970-01-01T00:02:00Z")
        self.assertNotIn("last_change", graph.graph)
        self.assertIn(b'lastmodifieddate="1970-01-01"', gexf(self.view(), PLACED))
