# -*- test-case-name: tests.test_http -*-
"""
The handlers of the node's own state: C{/api/links}, C{/api/serverinfo},
C{/metrics} and the OpenAPI document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from importlib import resources

from twisted.web.server import Request

from xmppnetgraph.http.errors import Response, jsonResponse
from xmppnetgraph.interfaces import ILinkTable
from xmppnetgraph.metrics import Metrics
from xmppnetgraph.model import Link, PublishedServerInfo
from xmppnetgraph.timestamp import formatOptionalTimestamp, formatTimestamp


def linkJSON(link: Link) -> dict[str, object]:
    """
    @return: C{link} as C{/api/links} shows it.
    """
    return {
        "domain": link.domain,
        "local_domain": link.localDomain,
        "direction": link.direction,
        "bidi": link.bidi,
        "auth": link.auth,
        "tls": link.tls,
        "cert_valid": link.certValid,
        "since": formatTimestamp(link.since),
        "last_activity": formatTimestamp(link.lastActivity),
        "stanzas_in": link.stanzasIn,
        "stanzas_out": link.stanzasOut,
    }


class Links:
    """
    C{GET /api/links}: this node's live s2s links.
    """

    def __init__(self, domain: str, linkTable: ILinkTable) -> None:
        self.domain = domain
        self.linkTable = linkTable

    def links(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        @return: C{{"domain": ours, "links": [...]}}.
        """
        return jsonResponse(
            {"domain": self.domain, "links": [linkJSON(link) for link in self.linkTable.links()]}
        )


class MetricsPage:
    """
    C{GET /metrics}: the node's metrics, in OpenMetrics for a client that
    asks for it (Prometheus does), else in Prometheus' plain text format.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def metricsPage(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        @return: every figure, as the client's C{Accept} header chooses.
        """
        accept = request.getHeader(b"accept")
        body, contentType = await self.metrics.exposition(
            None if accept is None else accept.decode("latin-1")
        )
        return Response(body, contentType=contentType.encode("ascii"))


class ServerInfo:
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
        self._status = status
        self.service = service
        self.node = node
        self.itemId = itemId

    def serverInfo(self, request: Request, path: Mapping[str, str]) -> Response:
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
        return jsonResponse(
            {
                "domain": status.domain,
                "service": self.service,
                "node": self.node,
                "item_id": self.itemId,
                "published": formatOptionalTimestamp(status.published),
                "item": status.xml,
                "remote_domains": remotes,
                "peers": [
                    {
                        "domain": domain,
                        "consents": state.consents,
                        "checked": formatOptionalTimestamp(state.checkedAt),
                        "error": state.error,
                        "allowlisted": state.allowlisted,
                        "pending": state.pending,
                    }
                    for domain, state in status.peers
                ],
            }
        )


@functools.cache
def openAPIDocument() -> bytes:
    """
    @return: the OpenAPI description of this API (C{openapi.json}, shipped
        with the package; read once).
    """
    return resources.files(__package__).joinpath("openapi.json").read_bytes()


@functools.cache
def _openAPIResponse() -> Response:
    return Response(
        openAPIDocument(), contentType=b"application/json", headers={b"cache-control": b"no-cache"}
    ).tagged()


def openAPI(request: Request, path: Mapping[str, str]) -> Response:
    """
    C{GET /api/openapi.json}, with its ETag.
    """
    return _openAPIResponse()
