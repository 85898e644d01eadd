# -*- test-case-name: tests.test_http -*-
"""
JSON resources of the web API.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web import resource
from twisted.web.server import Request

from xmppnetgraph.interfaces import ILinkTable


def jsonResponse(request: Request, body: Any, code: int = 200) -> bytes:
    """
    Set JSON headers on C{request} and return C{body} encoded.
    """
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class JSONResource(resource.Resource):
    """
    A leaf that answers GET (and HEAD) with JSON; other methods get 405.
    """

    isLeaf = True
    allowedMethods = (b"GET", b"HEAD")

    def render_GET(self, request: Request) -> bytes:
        """
        @return: the JSON body.
        """
        return jsonResponse(request, self.body(request))

    def body(self, request: Request) -> Any:
        """
        @return: the value to serialise; override.
        """
        raise NotImplementedError


class LinksResource(JSONResource):
    """
    C{GET /api/links}: this node's live s2s links.
    """

    def __init__(self, domain: str, linkTable: ILinkTable) -> None:
        super().__init__()
        self.domain = domain
        self.linkTable = linkTable

    def body(self, request: Request) -> Any:
        """
        @return: C{{"domain": ours, "links": [...]}}.
        """
        return {"domain": self.domain, "links": [link.asJSON() for link in self.linkTable.links()]}


class NotFound(resource.Resource):
    """
    A JSON 404 for unknown API paths.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        """
        @return: a JSON error body.
        """
        return jsonResponse(request, {"error": "not found"}, 404)


class API(resource.Resource):
    """
    C{/api/...}.
    """

    def __init__(self, domain: str, linkTable: ILinkTable) -> None:
        super().__init__()
        self.putChild(b"links", LinksResource(domain, linkTable))

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        """
        Unknown children are JSON 404s.
        """
        return NotFound()


def buildRoot(domain: str, linkTable: ILinkTable) -> resource.Resource:
    """
    @return: the root resource of the web endpoint.
    """
    root = resource.Resource()
    root.putChild(b"api", API(domain, linkTable))
    return root
