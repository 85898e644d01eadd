# -*- test-case-name: tests.test_http_exports -*-
"""
The graph as GraphML and GEXF files, for Gephi, networkx, igraph and
yEd users: the same view as C{/api/graph} (L{GraphView}), written with
the standard library's streaming XML writer
(L{xml.sax.saxutils.XMLGenerator}), which escapes every name and value.

Nodes carry C{label} (absent for an anonymous peer), C{publishes} (absent
when unknown), C{first_seen} and C{last_seen} (RFC 3339), C{stale},
C{anonymous} (how many anonymous peers the node stands for; 0 for a named
domain) and C{members} (the service subdomains folded into it,
space-separated); edges carry C{confirmed} and C{directions} (the
connection types as the edge's source sees them, space-separated). The
graph is undirected, as in C{/api/graph}: each edge is one pair of
domains, written from its C{from} to its C{to}.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

from xmppnetgraph.graphview import GraphView, ViewEdge, ViewNode
from xmppnetgraph.layout.place import Point
from xmppnetgraph.timestamp import formatOptionalTimestamp, formatTimestamp

#: The content types of the two formats.
GRAPHML_TYPE = b"application/graphml+xml; charset=utf-8"
GEXF_TYPE = b"application/gexf+xml; charset=utf-8"

GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"
GEXF_NS = "http://gexf.net/1.3"
#: GEXF's visualisation module (node positions).
GEXF_VIZ_NS = "http://gexf.net/1.3/viz"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"

#: The attributes of nodes and edges: (name, GraphML type, GEXF type).
_NODE_ATTRIBUTES = (
    ("label", "string", None),
    ("publishes", "boolean", "boolean"),
    ("first_seen", "string", "string"),
    ("last_seen", "string", "string"),
    ("stale", "boolean", "boolean"),
    ("anonymous", "int", "integer"),
    ("members", "string", "string"),
)
_EDGE_ATTRIBUTES = (
    ("confirmed", "boolean", "boolean"),
    ("directions", "string", "string"),
)


class _Writer:
    """
    An L{XMLGenerator} with one element per line.
    """

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self._xml = XMLGenerator(self.out, "utf-8", short_empty_elements=True)
        self._xml.startDocument()

    @contextmanager
    def element(self, name: str, attributes: dict[str, str] | None = None) -> Iterator[None]:
        """
        Write an element around what the body of the C{with} writes.
        """
        self._xml.startElement(name, AttributesImpl(attributes or {}))
        yield
        self._xml.endElement(name)
        self._xml.ignorableWhitespace("\n")

    def leaf(self, name: str, attributes: dict[str, str], text: str | None = None) -> None:
        """
        Write an element without children, with C{text} if given.
        """
        self._xml.startElement(name, AttributesImpl(attributes))
        if text is not None:
            self._xml.characters(text)
        self._xml.endElement(name)
        self._xml.ignorableWhitespace("\n")

    def newline(self) -> None:
        self._xml.ignorableWhitespace("\n")

    def done(self) -> bytes:
        """
        @return: the document.
        """
        self._xml.endDocument()
        return self.out.getvalue()


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def nodeValues(node: ViewNode, position: Point | None = None) -> dict[str, str]:
    """
    @param position: where the node is drawn (as in C{/api/graph}), if
        written as attributes.
    @return: the attribute values of C{node} as text (an unknown one
        absent).
    """
    values = {
        "first_seen": formatTimestamp(node.firstSeen),
        "last_seen": formatTimestamp(node.lastSeen),
        "stale": _boolean(node.stale),
        "anonymous": str(node.anonymous),
    }
    if node.label is not None:
        values["label"] = node.label
    if node.publishes is not None:
        values["publishes"] = _boolean(node.publishes)
    if node.members:
        values["members"] = " ".join(node.members)
    if position is not None:
        values["x"], values["y"] = (str(round(c, 1)) for c in position)
    return values


def edgeValues(edge: ViewEdge) -> dict[str, str]:
    """
    @return: the attribute values of C{edge} as text.
    """
    return {"confirmed": _boolean(edge.confirmed), "directions": " ".join(edge.directions)}


def graphML(view: GraphView, placed: Mapping[str, Point]) -> bytes:
    """
    @param placed: every node's position (C{x} and C{y} attributes, the
        coordinates of C{/api/graph}).
    @return: C{view} as a GraphML document (UTF-8).
    """
    w = _Writer()
    root = {
        "xmlns": GRAPHML_NS,
        "xmlns:xsi": _XSI,
        "xsi:schemaLocation": f"{GRAPHML_NS} {GRAPHML_NS}/1.0/graphml.xsd",
    }
    with w.element("graphml", root):
        w.newline()
        for name, kind in (("at", "string"), ("last_change", "string")):
            w.leaf("key", {"id": name, "for": "graph", "attr.name": name, "attr.type": kind})
        for where, attributes in (("node", _NODE_ATTRIBUTES), ("edge", _EDGE_ATTRIBUTES)):
            for name, kind, _ in attributes:
                w.leaf("key", {"id": name, "for": where, "attr.name": name, "attr.type": kind})
        for name in ("x", "y"):
            w.leaf("key", {"id": name, "for": "node", "attr.name": name, "attr.type": "double"})
        with w.element("graph", {"id": "xmppnetgraph", "edgedefault": "undirected"}):
            w.newline()
            w.leaf("data", {"key": "at"}, formatTimestamp(view.at))
            lastChange = formatOptionalTimestamp(view.lastChange)
            if lastChange is not None:
                w.leaf("data", {"key": "last_change"}, lastChange)
            for node in view.nodes:
                with w.element("node", {"id": node.id}):
                    for key, value in nodeValues(node, placed[node.id]).items():
                        w.leaf("data", {"key": key}, value)
            for edge in view.edges:
                with w.element("edge", {"source": edge.source, "target": edge.target}):
                    for key, value in edgeValues(edge).items():
                        w.leaf("data", {"key": key}, value)
    return w.done()


def _attvalues(w: _Writer, values: dict[str, str]) -> None:
    with w.element("attvalues"):
        for key, value in values.items():
            w.leaf("attvalue", {"for": key, "value": value})


def gexf(view: GraphView, placed: Mapping[str, Point]) -> bytes:
    """
    @param placed: every node's position (GEXF's C{viz:position}, the
        coordinates of C{/api/graph}), so that Gephi opens on the picture
        the page shows.
    @return: C{view} as a GEXF 1.3 document (UTF-8), as Gephi reads it; a
        node's label is GEXF's own C{label}.
    """
    w = _Writer()
    root = {
        "xmlns": GEXF_NS,
        "xmlns:viz": GEXF_VIZ_NS,
        "xmlns:xsi": _XSI,
        "xsi:schemaLocation": f"{GEXF_NS} {GEXF_NS}/gexf.xsd",
        "version": "1.3",
    }
    with w.element("gexf", root):
        w.newline()
        with w.element("meta", {"lastmodifieddate": formatTimestamp(view.at)[:10]}):
            w.leaf("creator", {}, "xmppnetgraph")
            w.leaf("description", {}, f"The XMPP federation as of {formatTimestamp(view.at)}")
        with w.element("graph", {"defaultedgetype": "undirected", "mode": "static"}):
            w.newline()
            for where, attributes in (("node", _NODE_ATTRIBUTES), ("edge", _EDGE_ATTRIBUTES)):
                with w.element("attributes", {"class": where}):
                    w.newline()
                    for name, _, kind in attributes:
                        if kind is not None:
                            w.leaf("attribute", {"id": name, "title": name, "type": kind})
            with w.element("nodes"):
                w.newline()
                for node in view.nodes:
                    values = nodeValues(node)
                    element = {"id": node.id}
                    label = values.pop("label", None)
                    if label is not None:
                        element["label"] = label
                    with w.element("node", element):
                        _attvalues(w, values)
                        x, y = placed[node.id]
                        w.leaf("viz:position", {"x": str(round(x, 1)), "y": str(round(y, 1))})
            with w.element("edges"):
                w.newline()
                for number, edge in enumerate(view.edges):
                    ends = {"id": str(number), "source": edge.source, "target": edge.target}
                    with w.element("edge", ends):
                        _attvalues(w, edgeValues(edge))
    return w.done()
