# -*- test-case-name: tests.test_http -*-
"""
The builder of the web module: the JSON API (and later the page) on the
C{--web} endpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import IServiceCollection
from twisted.internet.interfaces import IReactorProcess
from twisted.web.server import Request, Site

from xmppnetgraph.config import Config
from xmppnetgraph.core import Core, attach
from xmppnetgraph.http.api import ServerInfo
from xmppnetgraph.http.errors import errorResponse
from xmppnetgraph.http.graph import GraphViews, ViewParameters
from xmppnetgraph.http.site import WebAPI
from xmppnetgraph.interfaces import ICrawler, IGraphStore
from xmppnetgraph.layout.place import Point
from xmppnetgraph.layout.service import Layout, LayoutService, runWorker
from xmppnetgraph.listener import Listener
from xmppnetgraph.serverinfo.build import ServerInfoModule
from xmppnetgraph.store.layout import LayoutStore

#: The largest request body the web endpoint takes (the API's only body,
#: C{POST /api/submit}, may be at most L{MAX_BODY<xmppnetgraph.http.submit.MAX_BODY>}).
MAX_REQUEST_BODY = 64 * 1024


class _BoundedRequest(Request):
    """
    A request whose body is kept only up to L{MAX_REQUEST_BODY} bytes:
    Twisted buffers any body whole (in a temporary file past 100 kB) before
    a resource sees it. A longer one is read and dropped, and answered with
    a JSON 413.
    """

    _tooLarge = False

    def gotLength(self, length: int | None) -> None:
        """
        Refuse to buffer a body announced as too large.
        """
        if length is not None and length > MAX_REQUEST_BODY:
            self._tooLarge = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        """
        Keep the body while it fits.
        """
        content = self.content
        assert content is not None, "gotLength made it"
        if not self._tooLarge and content.tell() + len(data) > MAX_REQUEST_BODY:
            self._tooLarge = True
            content.seek(0)
            content.truncate()
        if not self._tooLarge:
            super().handleContentChunk(data)

    def process(self) -> None:
        """
        Answer a too large body with a 413, anything else as usual.
        """
        if not self._tooLarge:
            super().process()
            return
        answer = errorResponse(413, f"the request body is larger than {MAX_REQUEST_BODY} bytes")
        self.setResponseCode(413)
        self.setHeader(b"content-type", answer.contentType)
        self.setHeader(b"connection", b"close")
        self.write(answer.body)
        self.finish()


class _APISite(Site):
    """
    The web endpoint's site: when its port closes (the node stops), the
    API's event streams are closed and it stops observing the feed.

    It keeps at most L{MAX_REQUEST_BODY} bytes of a request body
    (L{_BoundedRequest}) and leaves them to the API (C{POST /api/submit}
    reads its own, bounded): Twisted's form parsing reads any multipart upload whole, and
    answers a malformed one with a bare 400 instead of the API's JSON error.
    """

    def __init__(self, api: WebAPI) -> None:
        super().__init__(api.resource(), parsePOSTFormSubmission=False)
        self.requestFactory = _BoundedRequest
        self.api = api

    def stopFactory(self) -> None:
        """
        Close the streams.
        """
        super().stopFactory()
        self.api.stop()


def buildLayout(
    core: Core,
    config: Config,
    parent: IServiceCollection,
    views: GraphViews,
    layout: Layout,
) -> LayoutService | None:
    """
    Attach the service that keeps C{layout} up to date (named
    C{"layout"}) to C{parent}: relayouts of C{views}' default view in a
    worker process, kept in the node's database.

    @return: the service, or L{None} if the reactor cannot start processes
        (then new nodes are still placed next to their neighbours).
    """
    reactor = core.reactor
    if not IReactorProcess.providedBy(reactor):
        return None
    processes: IReactorProcess = reactor

    async def relayout(
        ids: list[str], edges: list[tuple[int, int]], previous: dict[str, Point]
    ) -> list[Point]:
        return await runWorker(processes, reactor, ids, edges, previous)

    service = LayoutService(
        LayoutStore(core.database, reactor),
        core.feed,
        reactor,
        lambda: views.currentView(ViewParameters()),
        relayout,
        layout=layout,
        interval=config.layoutInterval,
    )
    attach(service, "layout", parent)
    return service


def buildWeb(
    core: Core,
    config: Config,
    parent: IServiceCollection,
    serverInfo: ServerInfoModule | None,
    graph: IGraphStore | None = None,
    crawler: ICrawler | None = None,
    excluded: Callable[[str], bool] | None = None,
    anonymousKey: bytes = b"",
) -> Listener:
    """
    Attach the web endpoint (named C{"web"}) to C{parent}, and with a
    graph store the layout service (L{buildLayout}).

    @param serverInfo: what the XEP-0485 module made; with a publisher,
        C{/api/serverinfo} shows what it publishes.
    @param graph: the graph store (without one the graph endpoints answer
        503).
    @param crawler: the crawler (without one, C{--no-crawl}, submissions
        answer 503).
    @param excluded: tells whether a domain is on the exclusion list
        (C{Exclusions.excluded}).
    @param anonymousKey: the secret of the anonymous node ids (keep it
        fixed for ids that are stable across restarts).
    @return: the listener.
    """
    info = None
    if serverInfo is not None and serverInfo.publisher is not None:
        info = ServerInfo(
            serverInfo.publisher.status,
            serverInfo.service,
            serverInfo.node,
            serverInfo.itemIdentifier,
        )
    layout = Layout()
    api = WebAPI(
        config.domain,
        core.linkTable,
        core.feed,
        core.reactor,
        threads=core.reactor,
        graph=graph,
        crawler=crawler,
        serverInfo=info,
        namePolicy=config.namePolicy,
        excluded=excluded,
        anonymousKey=anonymousKey,
        submitRate=config.submitRate,
        trustedProxies=config.trustedProxies,
        layout=layout,
        metrics=core.metrics,
    )
    if graph is not None and api.views is not None:
        buildLayout(core, config, parent, api.views, layout)
    web = Listener("the web endpoint", config.web, _APISite(api), core.reactor)
    attach(web, "web", parent)
    return web
