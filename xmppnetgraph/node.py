# -*- test-case-name: tests.test_federation -*-
"""
A whole node from a L{Config}: the core, then each module's builder (s2s,
XEP-0485, web). Embedders call L{buildService} directly, or make their own
L{Core<xmppnetgraph.core.Core>} and call only the builders they want;
C{twistd xmppnetgraph} goes through L{xmppnetgraph.tap}.
"""

from __future__ import annotations

from twisted.internet.interfaces import IResolver
from twisted.logger import Logger

from xmppnetgraph.config import Config
from xmppnetgraph.core import CoreService, makeCore
from xmppnetgraph.crawler.build import buildCrawler
from xmppnetgraph.crawler.crawler import Crawler
from xmppnetgraph.datadir import anonymousKey, ensureDataDir
from xmppnetgraph.exclusions import Exclusions
from xmppnetgraph.http.build import buildWeb
from xmppnetgraph.listener import Listener
from xmppnetgraph.reactortypes import INodeReactor, typedReactor
from xmppnetgraph.s2s.build import buildS2S
from xmppnetgraph.s2s.resolve import defaultResolver
from xmppnetgraph.s2s.service import S2SService
from xmppnetgraph.scheduler import QueryScheduler
from xmppnetgraph.serverinfo.build import ServerInfoModule, buildServerInfo
from xmppnetgraph.store.database import openDatabase
from xmppnetgraph.store.graph import GraphStore

_log = Logger()


class NodeService(CoreService):
    """
    The service of a whole node: its core and what each module built.

    @ivar s2s: the s2s service.
    @ivar serverInfo: the XEP-0485 module.
    @ivar graph: the graph store (also with C{--no-crawl}).
    @ivar crawler: the crawler, or L{None} with C{--no-crawl}.
    @ivar web: the web endpoint, or L{None} with C{--no-web}.
    """

    graph: GraphStore
    crawler: Crawler | None

    s2s: S2SService
    serverInfo: ServerInfoModule
    web: Listener | None


def buildService(config: Config, reactor: object, resolver: IResolver | None = None) -> NodeService:
    """
    Build the node's services; nothing listens until the returned service
    is started.

    Children, by name: C{"components"} (the hosts of the local domains,
    by domain), C{"s2s"}, C{"s2s-listen"}, C{"s2s-direct-tls"} (if
    configured), C{"publisher"} (unless publishing is off), C{"crawler"}
    (unless C{--no-crawl}), C{"layout"} (the graph's positions) and
    C{"web"} (both unless the web is disabled). The database
    is closed after they all stopped.

    @param reactor: the reactor, for instance the global one.
    @param resolver: the DNS resolver (default: the system's).
    @raise TypeError: if C{reactor} lacks one of the interfaces of
        L{INodeReactor}.
    """
    nodeReactor = typedReactor(reactor, INodeReactor)
    dataDir = ensureDataDir(config.dataDir)
    core = makeCore(
        nodeReactor,
        openDatabase(config.database, dataDir, nodeReactor),
        # One resolver for the node: s2s connections and the crawler's
        # direct-TLS lookups (the system's is made lazily).
        resolver=resolver if resolver is not None else defaultResolver(nodeReactor),
        scheduler=QueryScheduler(
            nodeReactor,
            maxConcurrent=config.crawlConcurrency,
            startInterval=0.0,
            domainInterval=1.0,
            # A discovery is several IQs, each with its own iqTimeout.
            timeout=3 * config.iqTimeout,
        ),
        iqTimeout=config.iqTimeout,
    )
    node = NodeService(core)
    node.s2s = buildS2S(core, config, node)
    node.serverInfo = buildServerInfo(core, config, node)
    node.graph = GraphStore(core.database, core.feed, nodeReactor)
    exclusions = Exclusions.load(config.excludeFile) if config.excludeFile else Exclusions.empty()
    node.crawler = (
        buildCrawler(core, config, node, node.graph, exclusions.excluded) if config.crawl else None
    )
    node.web = (
        buildWeb(
            core,
            config,
            node,
            node.serverInfo,
            graph=node.graph,
            crawler=node.crawler,
            excluded=exclusions.excluded,
            anonymousKey=anonymousKey(dataDir),
        )
        if config.enableWeb
        else None
    )
    _log.info(
        "xmppnetgraph node for {domain} (pubsub {pubsub}): s2s on {s2s}, web on {web}, "
        "data in {dataDir}",
        domain=config.domain,
        pubsub=config.effectivePubsubHost,
        s2s=config.s2s,
        web=config.web if config.enableWeb else "(disabled)",
        dataDir=str(dataDir),
    )
    return node
