# -*- test-case-name: tests.test_http -*-
"""
JSON resources of the web API.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from twisted.web import resource, static
from twisted.web.server import Request

from xmppnetgraph.interfaces import ILinkTable
from xmppnetgraph.linktable import isoTime


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


class ServerInfoResource(JSONResource):
    """
    C{GET /api/serverinfo}: our XEP-0485 item as published, when, and each
    peer's consent state.
    """

    def __init__(self, publisher: Any, pubsubHost: str) -> None:
        super().__init__()
        self.publisher = publisher
        self.pubsubHost = pubsubHost

    def body(self, request: Request) -> Any:
        """
        @return: the item (XML and decoded), its publication time and the
            consent state of every linked peer.
        """
        from wokkel.generic import parseXml

        from xmppnetgraph.serverinfo.payload import parsePayload

        publisher = self.publisher
        payload = publisher.lastPayload
        remotes: list[dict[str, object]] | None = None
        if payload is not None:
            info = parsePayload(parseXml(payload.encode("utf-8")))
            remotes = [
                {"name": remote.name, "connections": list(remote.connections)}
                for domain in info.domains
                for remote in domain.remotes
            ]
        peers = []
        for domain in sorted(
            {link.domain for link in publisher.linkTable.links()} - set(publisher.localDomains)
        ):
            state = publisher.consent.state(domain)
            peers.append(
                {
                    "domain": domain,
                    "consents": state.consents,
                    "checked": isoTime(state.checkedAt) if state.checkedAt is not None else None,
                    "error": state.error,
                    "allowlisted": state.allowlisted,
                    "pending": state.pending,
                }
            )
        return {
            "domain": publisher.domain,
            "service": self.pubsubHost,
            "node": "serverinfo",
            "item_id": "current",
            "published": isoTime(publisher.lastPublished)
            if publisher.lastPublished is not None
            else None,
            "item": payload,
            "remote_domains": remotes,
            "peers": peers,
        }


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

    def addServerInfo(self, publisher: Any, pubsubHost: str) -> None:
        """
        Serve C{/api/serverinfo} from C{publisher}.
        """
        self.putChild(b"serverinfo", ServerInfoResource(publisher, pubsubHost))

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
