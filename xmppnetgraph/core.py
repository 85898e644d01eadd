# -*- test-case-name: tests.test_core -*-
"""
The composable core of a node: what every module shares (reactor, DNS
resolver, router, link table, database, change feed, the hosts of the
local domains), in one typed object, and the service at the top of a
node's tree that owns it.

Each module has one builder that takes a L{Core} (and the node's
L{Config<xmppnetgraph.config.Config>}) and attaches its services under a
parent: L{xmppnetgraph.s2s.build.buildS2S},
L{xmppnetgraph.serverinfo.build.buildServerInfo},
L{xmppnetgraph.http.build.buildWeb}. L{xmppnetgraph.node.buildService}
composes them for C{twistd}; an embedder makes a L{Core} around its own
router and link table and calls only the builders it wants.
"""

from __future__ import annotations

import attrs
from twisted.application import service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IResolver
from wokkel.component import Router
from wokkel.disco import DiscoHandler

from xmppnetgraph.component import LocalComponent
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.interfaces import IChangeFeed, ILinkTable
from xmppnetgraph.metrics import Metrics, SchedulerCollector
from xmppnetgraph.reactortypes import INodeReactor
from xmppnetgraph.scheduler import QueryScheduler
from xmppnetgraph.store.database import Database


@attrs.define(eq=False)
class Core:
    """
    What the modules of one node share.

    @ivar reactor: the reactor everything runs on (time, TCP, threads).
    @ivar database: the node's database (pub-sub state, later the graph).
    @ivar router: the in-process router between the local domains' hosts
        and the s2s service (its default route).
    @ivar feed: the change feed every module emits on and observes.
    @ivar linkTable: the live s2s links.
    @ivar scheduler: the one polite scheduler of every query to a remote
        domain (consent checks, later the crawler's requests).
    @ivar resolver: the DNS resolver for s2s connections, or L{None} for
        an embedder without our s2s.
    @ivar iqTimeout: how long IQ requests of the local hosts wait.
    @ivar components: the service holding one L{LocalComponent} per local
        host, made by L{component}.
    @ivar metrics: the node's metrics (C{GET /metrics}): each module's
        builder registers its own; the core's are the scheduler's load and
        the database's transaction times.
    """

    reactor: INodeReactor
    database: Database
    router: Router
    feed: IChangeFeed
    linkTable: ILinkTable
    scheduler: QueryScheduler
    resolver: IResolver | None = None
    iqTimeout: float = 30.0
    components: service.MultiService = attrs.field(factory=service.MultiService)
    metrics: Metrics = attrs.field(factory=Metrics)
    _byDomain: dict[str, LocalComponent] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        """
        Register the core's own metrics.
        """
        self.metrics.register(SchedulerCollector(self.scheduler))
        self.metrics.timeTransactions(self.database)

    def component(self, domain: str) -> LocalComponent:
        """
        The host of a local domain's handlers on the router, made on first
        use (named after the domain, a child of L{components}) with the one
        L{DiscoHandler} that the domain's disco handlers need.

        @param domain: a local domain (our domain, the pubsub host).
        @return: the one L{LocalComponent} for C{domain}.
        """
        found = self._byDomain.get(domain)
        if found is None:
            found = LocalComponent(self.router, [domain], self.reactor, self.iqTimeout)
            DiscoHandler().setHandlerParent(found)
            attach(found, domain, self.components)
            self._byDomain[domain] = found
        return found


def attach(child: service.Service, name: str, parent: service.IServiceCollection) -> None:
    """
    Name C{child} and make it a child of C{parent}: how every builder adds
    its services to the node's tree.
    """
    child.setName(name)
    child.setServiceParent(parent)


class CoreService(service.MultiService):
    """
    The top of a node's service tree: the local hosts start first, the
    modules' services after them; once everything has stopped, the query
    scheduler is stopped and the database closed.

    @ivar core: what the modules share.
    """

    def __init__(self, core: Core) -> None:
        super().__init__()
        self.core = core
        attach(core.components, "components", self)

    def stopService(self) -> Deferred[None]:
        """
        Stop every module, then the scheduler, then close the database.
        """
        stopping: Deferred[None] = maybeDeferred(super().stopService)

        def stopped(result: object) -> Deferred[None]:
            self.core.scheduler.stop()
            return self.core.database.close()

        return stopping.addBoth(stopped)


def makeCore(
    reactor: INodeReactor,
    database: Database,
    *,
    router: Router | None = None,
    feed: IChangeFeed | None = None,
    linkTable: ILinkTable | None = None,
    resolver: IResolver | None = None,
    scheduler: QueryScheduler | None = None,
    iqTimeout: float = 30.0,
) -> Core:
    """
    A core with defaults for what is not given: a new router, a new change
    feed, a L{LinkTable<xmppnetgraph.linktable.LinkTable>} on it, and a
    query scheduler whose queries time out after C{iqTimeout}.
    """
    from xmppnetgraph.component import QuietRouter
    from xmppnetgraph.linktable import LinkTable

    feed = feed if feed is not None else ChangeFeed()
    return Core(
        reactor=reactor,
        database=database,
        router=router if router is not None else QuietRouter(),
        feed=feed,
        linkTable=linkTable if linkTable is not None else LinkTable(feed),
        scheduler=scheduler
        if scheduler is not None
        else QueryScheduler(reactor, timeout=iqTimeout),
        resolver=resolver,
        iqTimeout=iqTimeout,
    )
