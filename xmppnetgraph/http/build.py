# -*- test-case-name: tests.test_http -*-
"""
The builder of the web module: the JSON API (and later the page) on the
C{--web} endpoint.
"""

from __future__ import annotations

from twisted.application.service import IServiceCollection
from twisted.web.server import Site

from xmppnetgraph.config import Config
from xmppnetgraph.core import Core, attach
from xmppnetgraph.http.api import ServerInfoResource, buildRoot
from xmppnetgraph.listener import Listener
from xmppnetgraph.serverinfo.build import ServerInfoModule


def buildWeb(
    core: Core, config: Config, parent: IServiceCollection, serverInfo: ServerInfoModule | None
) -> Listener:
    """
    Attach the web endpoint (named C{"web"}) to C{parent}.

    @param serverInfo: what the XEP-0485 module made; with a publisher,
        C{/api/serverinfo} shows what it publishes.
    @return: the listener.
    """
    root, api = buildRoot(config.domain, core.linkTable)
    if serverInfo is not None and serverInfo.publisher is not None:
        api.addServerInfo(
            ServerInfoResource(
                serverInfo.publisher.status,
                serverInfo.service,
                serverInfo.node,
                serverInfo.itemIdentifier,
            )
        )
    web = Listener("the web endpoint", config.web, Site(root), core.reactor)
    attach(web, "web", parent)
    return web
