# -*- test-case-name: tests.test_http -*-
"""
JSON resources of the web API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from twisted.web import resource, static
from twisted.web.server import Request

from xmppnetgraph.interfaces import ILinkTable
from xmppnetgraph.model import Link, PublishedServerInfo
from xmppnetgraph.timestamp import formatTimestamp


def jsonResponse(request: Request, body: Any, code: int = 200) -> bytes:
    """
    Set JSON headers on C{request} and return C{body} encoded.
    """
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def linkJSON(link: Link) -> dict[str, object]:
    """
    @return: C{link} as C{/api/links} shows it.
    """
    return {
        "domain": link.domain,
        "local_domain": link.localDomain,
        "direction": link.direction,
        "auth": link.auth,
        "tls": link.tls,
        "cert_valid": link.certValid,
        "since": formatTimestamp(link.since),
        "last_activity": formatTimestamp(link.lastActivity),
        "stanzas_in": link.stanzasIn,
        "stanzas_out": link.stanzasOut,
    }


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
        return {"domain": self.domain, "links": [linkJSON(link) for link in self.linkTable.links()]}


class ServerInfoResource(JSONResource):
    """
    C{GET /api/serverinfo}: our XEP-0485 item as published, when, and each
    peer's consent state.
    """

    def __init__(
        self, status: Callable[[], PublishedServerInfo], service: str, node: str, itemId: str
    ) -> None:
        """
        @param status: tells what we publish (the publisher's C{status}).
        @param service: the pub-sub service it is published on.
        @param node: the node.
        @param itemId: the item id.
        """
        super().__init__()
        self._status = status
        self.service = service
        self.node = node
        self.itemId = itemId

    def body(self, request: Request) -> Any:
        """
        @return: the item (XML and decoded), its publication time and the
            consent state of every linked peer.
        """
        status = self._status()
        remotes = None
        if status.remotes is not None:
            remotes = [
                {"name": name, "connections": list(connections)}
                for name, connections in status.remotes
            ]
        return {
            "domain": status.domain,
            "service": self.service,
            "node": self.node,
            "item_id": self.itemId,
            "published": _optionalTimestamp(status.published),
            "item": status.xml,
            "remote_domains": remotes,
            "peers": [
                {
                    "domain": domain,
                    "consents": state.consents,
                    "checked": _optionalTimestamp(state.checkedAt),
                    "error": state.error,
                    "allowlisted": state.allowlisted,
                    "pending": state.pending,
                }
                for domain, state in status.peers
            ],
        }


def _optionalTimestamp(seconds: float | None) -> str | None:
    """
    @return: C{seconds} as an RFC 3339 timestamp, or L{None}.
    """
    return formatTimestamp(seconds) if seconds is not None else None


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
        self.putChild(b"openapi.json", static.Data(openAPIDocument(), "application/json"))

    def addServerInfo(self, serverInfo: ServerInfoResource) -> None:
        """
        Serve C{/api/serverinfo}.
        """
        self.putChild(b"serverinfo", serverInfo)

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        """
        Unknown children are JSON 404s.
        """
        return NotFound()


def openAPIDocument() -> bytes:
    """
    @return: the OpenAPI description of this API (C{openapi.json}, shipped
        with the package).
    """
    return resources.files(__package__).joinpath("openapi.json").read_bytes()


def buildRoot(domain: str, linkTable: ILinkTable) -> tuple[resource.Resource, API]:
    """
    @return: the root resource of the web endpoint and its C{/api}.
    """
    root = resource.Resource()
    api = API(domain, linkTable)
    root.putChild(b"api", api)
    return root, api
