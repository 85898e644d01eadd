# -*- test-case-name: tests.test_http_negotiate -*-
"""
What the router decides from a request's headers, in one place: entity
tags and C{If-None-Match} (RFC 9110 section 13.1.2), C{Accept-Encoding}
and the gzip copies of answers (RFC 9110 section 12.5.3), and the CORS
headers of read-only answers (the Fetch standard).

Gzip copies are kept by entity tag (L{GzipCache}): an answer with an ETag
(the graph, its exports, a badge) is compressed once per body, however
many clients fetch it, and a large one in a thread; an answer without an
ETag is compressed each time.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import OrderedDict
from collections.abc import Mapping

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads, IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web.server import Request

#: Content types (without parameters) that are worth compressing.
COMPRESSIBLE: frozenset[bytes] = frozenset(
    {
        b"application/json",
        b"application/xml",
        b"application/graphml+xml",
        b"application/gexf+xml",
        b"application/openmetrics-text",
        b"image/svg+xml",
        b"text/html",
        b"text/plain",
        b"text/css",
        b"text/javascript",
    }
)

#: Bodies shorter than this are sent as they are (gzip would not pay).
MIN_GZIP = 512

#: The CORS headers of every C{GET} and C{HEAD} answer: anyone may read the
#: graph from another origin, with the headers a client needs to
#: revalidate (ETag) and to name a download.
CORS_HEADERS: Mapping[bytes, bytes] = {
    b"access-control-allow-origin": b"*",
    b"access-control-expose-headers": b"ETag, Content-Disposition",
}

#: The headers of the answer to a CORS preflight of a read-only path.
PREFLIGHT_HEADERS: Mapping[bytes, bytes] = {
    **CORS_HEADERS,
    b"access-control-allow-methods": b"GET, HEAD",
    b"access-control-allow-headers": b"If-None-Match, Last-Event-ID, Cache-Control",
    b"access-control-max-age": b"86400",
}


def etagOf(body: bytes) -> bytes:
    """
    @return: the (strong, quoted) entity tag of C{body}: a hash of it.
    """
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


def weak(etag: bytes) -> bytes:
    """
    @return: C{etag} as a weak tag (C{W/"..."}), as the gzip copy of an
        answer is tagged: the same content, other bytes.
    """
    return etag if etag.startswith(b"W/") else b"W/" + etag


def matchesETag(request: Request, etag: bytes) -> bool:
    """
    @return: whether C{request}'s C{If-None-Match} names C{etag} (weak
        comparison, as RFC 9110 section 13.1.2 asks) or is C{*}.
    """
    header = request.getHeader(b"if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix(b"W/") for tag in header.split(b",")}
    return etag.removeprefix(b"W/") in tags or b"*" in tags


def acceptsGzip(request: Request) -> bool:
    """
    @return: whether the client takes C{Content-Encoding: gzip}.
    """
    accepted = (request.getHeader(b"accept-encoding") or b"").lower()
    for part in accepted.split(b","):
        coding, _, parameters = part.strip().partition(b";")
        if coding.strip() in (b"gzip", b"*"):
            return parameters.replace(b" ", b"") not in (b"q=0", b"q=0.0", b"q=0.00", b"q=0.000")
    return False


def compressible(contentType: bytes) -> bool:
    """
    @return: whether answers of C{contentType} are sent gzipped to clients
        that take it.
    """
    return contentType.split(b";")[0].strip().lower() in COMPRESSIBLE


class GzipCache:
    """
    The gzip copies of answers with entity tags, the most recently used
    kept up to L{maxBytes} in all. A large body is compressed in the
    reactor's thread pool (zlib lets go of the GIL), so that compressing
    a graph of 100,000 nodes does not stall the reactor; concurrent
    requests for one entity tag share one compression.

    @ivar compressions: how many bodies were compressed (for tests).
    """

    def __init__(
        self,
        threads: IReactorThreads | None = None,
        *,
        maxBytes: int = 64 * 1024 * 1024,
        level: int = 6,
        inlineBelow: int = 256 * 1024,
    ) -> None:
        """
        @param threads: where large bodies are compressed (L{None}: in the
            calling thread).
        @param maxBytes: the most bytes of gzip copies kept.
        @param level: the compression level (1 fastest, 9 smallest).
        @param inlineBelow: bodies shorter than this are compressed in the
            calling thread anyway.
        """
        self._threads = threads
        self.maxBytes = maxBytes
        self.level = level
        self.inlineBelow = inlineBelow
        self.compressions = 0
        self._kept: OrderedDict[bytes, bytes] = OrderedDict()
        self._size = 0
        self._pending: dict[bytes, list[Deferred[bytes]]] = {}

    def compress(self, body: bytes, etag: bytes | None) -> Deferred[bytes]:
        """
        @param etag: the entity tag of C{body}, or L{None} (then the copy is
            not kept).
        @return: C{body} gzipped.
        """
        if etag is not None:
            kept = self._kept.get(etag)
            if kept is not None:
                self._kept.move_to_end(etag)
                return succeed(kept)
            waiting = self._pending.get(etag)
            if waiting is not None:
                d: Deferred[bytes] = Deferred()
                waiting.append(d)
                return d
        self.compressions += 1
        if self._threads is None or len(body) < self.inlineBelow:
            return succeed(self._keep(etag, gzip.compress(body, self.level, mtime=0)))
        pool = self._threads.getThreadPool()
        assert IReactorFromThreads.providedBy(self._threads)
        working = deferToThreadPool(self._threads, pool, gzip.compress, body, self.level, mtime=0)
        if etag is None:
            return working
        first: Deferred[bytes] = Deferred()
        self._pending[etag] = [first]
        working.addBoth(self._compressed, etag)
        return first

    def _compressed(self, result: bytes | Failure, etag: bytes) -> None:
        """
        Keep a copy compressed in a thread and hand it to every waiter.
        """
        waiting = self._pending.pop(etag, [])
        if isinstance(result, bytes):
            result = self._keep(etag, result)
        for d in waiting:
            d.callback(result)

    def _keep(self, etag: bytes | None, compressed: bytes) -> bytes:
        """
        Keep C{compressed} as the copy of C{etag}, dropping the least
        recently used beyond L{maxBytes}.

        @return: C{compressed}.
        """
        if etag is not None and len(compressed) <= self.maxBytes:
            self._kept[etag] = compressed
            self._size += len(compressed)
            while self._size > self.maxBytes:
                _, dropped = self._kept.popitem(last=False)
                self._size -= len(dropped)
        return compressed
