# -*- test-case-name: tests.test_http_api -*-
"""
The one JSON error edge of the web API: every error answer is
C{{"error": {"status": N, "message": "..."}}}, and the domain errors of
L{xmppnetgraph.error} map to their HTTP status here, in L{_errorMap}, and
nowhere else (as the pub-sub edge's C{_errorMap} maps them to stanza
errors). An exception that is not in the map is a 500 whose message says
nothing of the code; it is logged by the router.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import attrs

from xmppnetgraph.error import (
    BadParameter,
    InvalidDomainName,
    RateLimited,
    StorageError,
    StorageFull,
    Unavailable,
    UnknownDomain,
    UnknownPath,
    XmppNetGraphError,
)
from xmppnetgraph.http.negotiate import etagOf

#: The content type of every JSON answer.
JSON_TYPE = b"application/json; charset=utf-8"

#: Domain errors -> HTTP status. Subclasses come before their bases.
_errorMap: tuple[tuple[type[XmppNetGraphError], int], ...] = (
    (InvalidDomainName, 400),
    (BadParameter, 400),
    (UnknownDomain, 404),
    (UnknownPath, 404),
    (RateLimited, 429),
    (Unavailable, 503),
    (StorageFull, 503),
    (StorageError, 503),
)

#: The words of the statuses the API answers with.
REASONS: Mapping[int, str] = {
    400: "bad request",
    404: "not found",
    405: "method not allowed",
    429: "too many requests",
    500: "internal error",
    503: "unavailable",
}


@attrs.frozen
class Response:
    """
    One complete answer of an API handler.

    @ivar body: the encoded body.
    @ivar status: the HTTP status.
    @ivar contentType: its content type.
    @ivar headers: more headers (name -> value).
    @ivar etag: its entity tag, or L{None}: with one, the router answers a
        matching C{If-None-Match} with a 304.
    """

    body: bytes
    status: int = 200
    contentType: bytes = JSON_TYPE
    headers: Mapping[bytes, bytes] = attrs.field(factory=dict)
    etag: bytes | None = None

    def tagged(self) -> Response:
        """
        @return: this answer with the entity tag of its body.
        """
        return attrs.evolve(self, etag=etagOf(self.body))


def encodeJSON(value: object) -> bytes:
    """
    @return: C{value} as compact UTF-8 JSON.
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def jsonResponse(
    value: object, status: int = 200, headers: Mapping[bytes, bytes] | None = None
) -> Response:
    """
    @return: a JSON answer of C{value}.
    """
    return Response(encodeJSON(value), status, JSON_TYPE, dict(headers or {}))


def errorResponse(
    status: int, message: str, headers: Mapping[bytes, bytes] | None = None
) -> Response:
    """
    @return: the JSON error answer with C{status} and C{message}.
    """
    return jsonResponse({"error": {"status": status, "message": message}}, status, headers)


def statusOf(error: BaseException) -> int | None:
    """
    @return: the HTTP status of a domain error, or L{None} for any other
        exception (a bug: 500).
    """
    for cls, status in _errorMap:
        if isinstance(error, cls):
            return status
    return None


def errorFor(error: BaseException) -> Response:
    """
    @return: the JSON error answer for C{error}: its mapped status and its
        message, or a 500 that does not show the exception.
    """
    status = statusOf(error)
    if status is None:
        return errorResponse(500, "internal error (logged)")
    headers: dict[bytes, bytes] = {}
    if isinstance(error, RateLimited):
        headers[b"retry-after"] = str(max(1, int(error.retryAfter + 0.999))).encode()
    message = str(error) or REASONS.get(status, "error")
    return errorResponse(status, message, headers)
