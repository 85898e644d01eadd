# -*- test-case-name: tests.test_http -*-
"""
The builder of the web module: the JSON API (and later the page) on the
C{--web} endpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import IServiceCollection
from twisted.web.server import Site

from xmppnetgraph.config import Config
from xmppnetgraph.core import Core, attach
from xmppnetgraph.http.api import ServerInfo
from xmppnetgraph.http.site import WebAPI
from xmppnetgraph.interfaces import ICrawler, IGraphStore
from xmppnetgraph.listener import Listener
from xmppnetgraph.serverinfo.build import ServerInfoModule


class _APISite(Site):
    """
    The web endpoint's site: when its port closes (the node stops), the
    API's event streams are closed and it stops observing the feed.
    """

    def __init__(self, api: WebAPI) -> None:
        super().__init__(api.resource())  # type: ignore[no-untyped-call]
        self.api = api

    def stopFactory(self) -> None:
        """
        Close the streams.
        """
        super().stopFactory()
        self.api.stop()


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
    Attach the web endpoint (named C{"web"}) to C{parent}.

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
    )
    web = Listener("the web endpoint", config.web, _APISite(api), core.reactor)
    attach(web, "web", parent)
    return web
