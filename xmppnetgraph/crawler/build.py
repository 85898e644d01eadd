# -*- test-case-name: tests.test_crawler_federation -*-
"""
The builder of the aggregator: the discovery client and the subscriber on
our domain, and the crawl loop over the node's scheduler and graph store.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import IServiceCollection
from twisted.internet.defer import Deferred, succeed
from wokkel.disco import DiscoClientProtocol

from xmppnetgraph.config import Config
from xmppnetgraph.core import Core, attach
from xmppnetgraph.crawler.client import CrawlerPubSubClient
from xmppnetgraph.crawler.crawler import Crawler, CrawlSettings
from xmppnetgraph.crawler.discovery import Discoverer
from xmppnetgraph.interfaces import IGraphStore
from xmppnetgraph.metrics import CrawlerCollector
from xmppnetgraph.s2s.resolve import offersDirectTLS


def crawlSettings(config: Config) -> CrawlSettings:
    """
    @return: the crawler's intervals and caps from C{config}.
    """
    return CrawlSettings(
        poll=config.crawlPoll,
        refresh=config.crawlRefresh,
        staleAfter=config.staleAfter,
        maxDomains=config.maxDomains,
        maxNewDomainsPerReporter=config.maxNewDomainsPerReporter,
        maxReportDomains=config.maxReportDomains,
    )


def directTLSLookup(core: Core, config: Config) -> Callable[[str], Deferred[bool | None]]:
    """
    @return: whether a domain offers XEP-0368 direct TLS, by its
        C{_xmpps-server._tcp} SRV records (unknown for a domain with a
        static route, whose DNS the node does not use).
    """
    resolver = core.resolver

    def lookup(domain: str) -> Deferred[bool | None]:
        if resolver is None or config.routeFor(domain) is not None:
            return succeed(None)
        offered: Deferred[bool | None] = offersDirectTLS(resolver, domain)  # type: ignore[assignment]
        return offered

    return lookup


def buildCrawler(
    core: Core,
    config: Config,
    parent: IServiceCollection,
    store: IGraphStore,
    excluded: Callable[[str], bool],
) -> Crawler:
    """
    Attach the crawler (named C{"crawler"}) to C{parent}, and register
    its metrics (the crawl queue, the store's domains by status).

    @param store: where the graph goes.
    @param excluded: whether a domain is on the exclusion list.
    @return: the crawler.
    """
    domainHost = core.component(config.domain)
    disco = DiscoClientProtocol()
    disco.setHandlerParent(domainHost)
    pubsub = CrawlerPubSubClient(config.domain)
    pubsub.setHandlerParent(domainHost)
    discoverer = Discoverer(disco, pubsub, config.domain, maxRemotes=config.maxReportDomains)
    crawler = Crawler(
        clock=core.reactor,
        scheduler=core.scheduler,
        discover=discoverer.discover,
        store=store,
        feed=core.feed,
        linkTable=core.linkTable,
        subscriber=pubsub,
        localDomains=config.localDomains,
        seeds=config.seeds,
        excluded=excluded,
        settings=crawlSettings(config),
        directTLS=directTLSLookup(core, config),
    )
    pubsub.notified = crawler.notified
    pubsub.nodeChanged = crawler.nodeChanged
    attach(crawler, "crawler", parent)
    collector = CrawlerCollector(crawler.queue, store, core.reactor)
    core.metrics.register(collector, collector.refresh)
    return crawler
