# -*- test-case-name: tests.test_http_api -*-
"""
The routing of the web endpoint, in one place: a table of L{Route}s
(method, path pattern with C{{name}} parameters, handler) served by one
twisted.web leaf resource, L{Router}, which is also the one place where
answers are written and errors become JSON (L{xmppnetgraph.http.errors}).

Why plain twisted.web and not klein: klein 24.8 installs and works on
Twisted 26.10, but it brings Werkzeug and Tubes (unmaintained since 2017)
as runtime dependencies of every node for what this module does in a page:
match about ten patterns. Klein's error handlers and its coroutine
support would not remove our JSON edge, and the server-sent events
endpoint needs the bare twisted.web request anyway (producer, finish
notification). The API is tested in memory with C{treq.testing.StubTreq}
either way.

A handler takes the request and the path parameters (percent-decoded
UTF-8) and returns, or returns a coroutine or Deferred of, a L{Response};
or L{STREAMING}, when it has taken over the request (server-sent events)
and finishes it itself. Whatever it raises becomes the mapped JSON error.

What every answer shares is done here, once (L{xmppnetgraph.http.negotiate}):
an answer with an entity tag gets a 304 for a matching C{If-None-Match};
JSON, SVG and XML bodies are gzipped for clients that take it (C{Vary:
Accept-Encoding}); every C{GET} and C{HEAD} answer, the event stream too,
may be read from any origin (CORS), and C{OPTIONS} on a path answers
which methods it has (and, for a readable one, the CORS preflight).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final
from urllib.parse import unquote

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.server import Request

from xmppnetgraph.error import BadParameter
from xmppnetgraph.http.errors import Response, errorFor, errorResponse
from xmppnetgraph.http.negotiate import (
    CORS_HEADERS,
    MIN_GZIP,
    PREFLIGHT_HEADERS,
    GzipCache,
    acceptsGzip,
    compressible,
    matchesETag,
    weak,
)


class _Streaming:
    """
    The type of L{STREAMING}.
    """

    def __repr__(self) -> str:
        return "STREAMING"


#: What a handler returns when it writes and finishes the request itself.
STREAMING: Final = _Streaming()

HandlerResult = Response | _Streaming
Handler = Callable[[Request, Mapping[str, str]], HandlerResult | Awaitable[HandlerResult]]

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _compile(pattern: str) -> re.Pattern[str]:
    """
    @param pattern: a path such as C{/api/domains/{domain}}; a parameter
        matches within one segment.
    @return: the regular expression matching raw (still percent-encoded)
        paths.
    """
    if not pattern.startswith("/"):
        raise ValueError(f"a route pattern starts with '/', not {pattern!r}")
    parts = []
    last = 0
    for match in _PARAMETER.finditer(pattern):
        parts.append(re.escape(pattern[last : match.start()]))
        parts.append(f"(?P<{match.group(1)}>[^/]+)")
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts))


@attrs.frozen
class Route:
    """
    One entry of the routing table.

    @ivar method: C{"GET"}, C{"POST"}, ... (a C{GET} route answers C{HEAD}
        too).
    @ivar pattern: the path, with C{{name}} for a parameter.
    @ivar handler: what answers.
    """

    method: str
    pattern: str
    handler: Handler
    _regex: re.Pattern[str] = attrs.field(init=False)

    @_regex.default
    def _compilePattern(self) -> re.Pattern[str]:
        return _compile(self.pattern)

    def match(self, path: str) -> dict[str, str] | None:
        """
        @param path: the raw path of a request.
        @return: the decoded parameters if C{path} matches, else L{None}.
        @raise BadParameter: if a parameter is not percent-encoded UTF-8.
        """
        found = self._regex.fullmatch(path)
        if found is None:
            return None
        parameters = {}
        for name, raw in found.groupdict().items():
            try:
                parameters[name] = unquote(raw, errors="strict")
            except UnicodeDecodeError:
                raise BadParameter(f"{name}: not percent-encoded UTF-8") from None
        return parameters


class Router(resource.Resource):
    """
    The root resource of the web endpoint: dispatches every request by
    L{Route}, answers unknown paths with a JSON 404, wrong methods with a
    JSON 405 (with C{Allow}), and every failure with its JSON error.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, routes: Sequence[Route], threads: IReactorThreads | None = None) -> None:
        """
        @param routes: the table; the first matching route wins.
        @param threads: where large answers are compressed (L{None}: in
            the reactor's thread).
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self.routes = tuple(routes)
        self.gzipped = GzipCache(threads)

    def render(self, request: Request) -> int:
        """
        Dispatch C{request}.

        @return: C{NOT_DONE_YET}: the answer is written when the handler
            is done.
        """
        if request.method in (b"GET", b"HEAD"):
            for name, value in CORS_HEADERS.items():
                request.setHeader(name, value)
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))
        d = Deferred.fromCoroutine(self._answer(request, finished))
        d.addErrback(lambda f: self._log.failure("writing to {path}", f, path=request.path))
        return server.NOT_DONE_YET

    async def _answer(self, request: Request, finished: list[bool]) -> None:
        """
        Run the handler of C{request} and write what it gives, or its JSON
        error.
        """
        try:
            result = await self._dispatch(request)
        except Exception:
            result = self._failed(Failure(), request)
        await self._write(result, request, finished)

    async def _dispatch(self, request: Request) -> HandlerResult:
        """
        Find the route of C{request} and call its handler.

        @return: the handler's result, or an error answer.
        """
        path = (request.path or b"/").decode("ascii", "replace")
        method = (request.method or b"GET").decode("ascii", "replace").upper()
        allowed: list[str] = []
        for route in self.routes:
            parameters = route.match(path)
            if parameters is None:
                continue
            methods = {route.method, "HEAD"} if route.method == "GET" else {route.method}
            if method not in methods:
                allowed.extend(sorted(methods))
                continue
            result = route.handler(request, parameters)
            if isinstance(result, (Response, _Streaming)):
                return result
            return await result
        if allowed:
            allow = ", ".join([*dict.fromkeys(allowed), "OPTIONS"]).encode()
            if method == "OPTIONS":
                headers = {b"allow": allow, b"cache-control": b"max-age=86400"}
                if "GET" in allowed:
                    headers.update(PREFLIGHT_HEADERS)
                return Response(b"", 204, b"text/plain", headers)
            return errorResponse(405, f"{method} is not allowed on {path}", {b"allow": allow})
        return errorResponse(404, f"no such path: {path}")

    def _failed(self, failure: Failure, request: Request) -> Response:
        """
        @return: the JSON error answer of a handler's failure; a failure
            that is no domain error is logged.
        """
        assert failure.value is not None
        response = errorFor(failure.value)
        if response.status == 500:
            self._log.failure(
                "answering {method} {path}", failure, method=request.method, path=request.path
            )
        return response

    async def _write(self, result: HandlerResult, request: Request, finished: list[bool]) -> None:
        """
        Write C{result} to C{request} and finish it, unless the handler
        streams or the client has gone.
        """
        if isinstance(result, _Streaming) or finished[0]:
            return
        status, body, etag = result.status, result.body, result.etag
        headers = dict(result.headers)
        headers.setdefault(b"cache-control", b"no-store")
        if status == 200 and etag is not None and matchesETag(request, etag):
            status, body = 304, b""
        if compressible(result.contentType) and b"content-encoding" not in headers:
            headers[b"vary"] = b"accept-encoding"
            if acceptsGzip(request) and len(result.body) >= MIN_GZIP:
                etag = None if etag is None else weak(etag)
                if status != 304:
                    body = await self.gzipped.compress(body, result.etag)
                    headers[b"content-encoding"] = b"gzip"
                    if finished[0]:
                        return
        request.setResponseCode(status)
        if status != 204:
            request.setHeader(b"content-type", result.contentType)
        if etag is not None:
            headers[b"etag"] = etag
        for name, value in headers.items():
            request.setHeader(name, value)
        if status not in (204, 304):
            request.setHeader(b"content-length", str(len(body)).encode())
            if request.method != b"HEAD":
                request.write(body)
        request.finish()
