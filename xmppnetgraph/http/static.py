# -*- test-case-name: tests.test_http_static -*-
"""
The page: the files that C{web/build.mjs} builds into the package's
C{static/} directory, served from memory.

C{index.html} answers every page path (L{PAGE_PATHS}) with C{no-cache} and
an ETag; its assets have content-hashed names (C{/assets/main-<hash>.js})
and are cached for a year. Text assets have a gzip copy from the build,
sent to clients that accept it. Without a build (a checkout where
C{scripts/build-web} has not run), the page paths answer 503 saying so,
and the JSON API works as ever.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable

import attrs
from twisted.web.server import Request

from xmppnetgraph.error import Unavailable, UnknownPath
from xmppnetgraph.http.errors import Response
from xmppnetgraph.http.negotiate import acceptsGzip

#: The paths that show the page (its views choose by path).
PAGE_PATHS: tuple[str, ...] = ("/", "/stats", "/add")

#: Content types by file name extension.
CONTENT_TYPES: Mapping[str, bytes] = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".map": b"application/json",
    ".txt": b"text/plain; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".woff2": b"font/woff2",
}

#: What the page may load: its own files, workers from blobs (the layout
#: worker), and the API of its own origin.
CONTENT_SECURITY_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    b"worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    b"frame-ancestors 'none'"
)

_IMMUTABLE = b"public, max-age=31536000, immutable"


@attrs.frozen
class Asset:
    """
    One built file.

    @ivar body: its bytes.
    @ivar gzipped: its gzip copy, or L{None}.
    @ivar contentType: its content type.
    """

    body: bytes
    gzipped: bytes | None
    contentType: bytes


def builtFiles() -> Traversable:
    """
    @return: the build's directory in the installed package.
    """
    return resources.files(__package__).joinpath("static")


class StaticPage:
    """
    The page and its assets, read once from the build.

    @ivar built: whether there is a build to serve.
    """

    def __init__(self, directory: Traversable | None = None) -> None:
        """
        @param directory: where the build is (default: L{builtFiles}).
        """
        directory = builtFiles() if directory is None else directory
        index = directory.joinpath("index.html")
        self.built = index.is_file()
        self._index = index.read_bytes() if self.built else b""
        self._indexTag = b'"' + hashlib.sha256(self._index).hexdigest()[:32].encode() + b'"'
        self._assets: dict[str, Asset] = {}
        folder = directory.joinpath("assets")
        if self.built and folder.is_dir():
            for entry in folder.iterdir():
                name = entry.name
                if name.endswith(".gz") or not entry.is_file():
                    continue
                extension = name[name.rfind(".") :] if "." in name else ""
                gzipCopy = folder.joinpath(name + ".gz")
                self._assets[name] = Asset(
                    entry.read_bytes(),
                    gzipCopy.read_bytes() if gzipCopy.is_file() else None,
                    CONTENT_TYPES.get(extension, b"application/octet-stream"),
                )

    def page(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /} (and every L{PAGE_PATHS} entry): the page.

        @raise Unavailable: if the page has not been built.
        """
        if not self.built:
            raise Unavailable(
                "the web page is not built in this installation: run scripts/build-web "
                "(Node.js and npm) in the checkout; the JSON API under /api/ works without it"
            )
        headers = {
            b"cache-control": b"no-cache",
            b"content-security-policy": CONTENT_SECURITY_POLICY,
            b"x-content-type-options": b"nosniff",
            b"referrer-policy": b"same-origin",
        }
        return Response(self._index, 200, b"text/html; charset=utf-8", headers, self._indexTag)

    def asset(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /assets/{name}}: a built file, gzipped if the client takes it.

        @raise UnknownPath: if there is no such file.
        """
        asset = self._assets.get(path["name"])
        if asset is None:
            raise UnknownPath(f"no such file: /assets/{path['name']}")
        headers = {
            b"cache-control": _IMMUTABLE,
            b"x-content-type-options": b"nosniff",
            b"vary": b"accept-encoding",
        }
        if asset.gzipped is not None and acceptsGzip(request):
            headers[b"content-encoding"] = b"gzip"
            return Response(asset.gzipped, 200, asset.contentType, headers)
        return Response(asset.body, 200, asset.contentType, headers)
