# -*- test-case-name: tests.test_s2s_federation -*-
"""
Wire one node from a L{Config}: s2s listener and service, local domains
with their handlers, and the web endpoint. Embedders call L{buildService}
directly; C{twistd xmppnetgraph} goes through L{xmppnetgraph.tap}.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.server import Site
from wokkel.disco import DiscoClientProtocol, DiscoHandler
from wokkel.ping import PingHandler

from xmppnetgraph.certs import ensureSelfSigned, loadCredentials, loadTrustRoots
from xmppnetgraph.component import LocalComponent, QuietRouter
from xmppnetgraph.config import Config
from xmppnetgraph.datadir import dialbackSecret, ensureDataDir
from xmppnetgraph.disco import ServerDisco
from xmppnetgraph.http.api import buildRoot
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.pubsub import pubSubHandlers
from xmppnetgraph.s2s.resolve import defaultResolver
from xmppnetgraph.s2s.service import S2SService
from xmppnetgraph.scheduler import QueryScheduler
from xmppnetgraph.serverinfo.consent import ConsentChecker, discoFeatures, loadAllowlist
from xmppnetgraph.serverinfo.publisher import ServerInfoPublisher, publisherFor
from xmppnetgraph.store.database import DatabaseOwner, openDatabase
from xmppnetgraph.store.pubsub import PubSubStore

_log = Logger()


class ListenError(Exception):
    """
    A listening endpoint could not be opened.
    """


class Listener(StreamServerEndpointService):
    """
    A strports listener whose failure to listen says what and where.
    """

    def __init__(self, what: str, description: str, factory: Any, reactor: Any) -> None:
        super().__init__(serverFromString(reactor, description), factory)
        self._raiseSynchronously = True
        self.what = what
        self.description = description

    def privilegedStartService(self) -> None:
        """
        Listen now; raise L{ListenError} with a clear message if we can't.
        """
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            reason = e.socketError.strerror if isinstance(e.socketError, OSError) else e.socketError
            raise ListenError(
                f"cannot listen for {self.what} on {self.description}: {reason}"
            ) from e


def buildService(config: Config, reactor: Any, resolver: Any = None) -> DatabaseOwner:
    """
    Build the node's services; nothing listens until the returned service
    is started.

    The returned L{DatabaseOwner} holds the node's C{database} and closes
    it after its children have stopped. Children, by name: C{"s2s"}
    (the L{S2SService}, whose C{linkTable} is the node's link table),
    C{"s2s-listen"}, C{"s2s-direct-tls"} (if configured), C{"domain"} and
    C{"pubsub"} (the L{LocalComponent}s of the two local domains; the
    latter's C{pubsubResource} is the pub-sub service), C{"publisher"}
    (the XEP-0485 L{ServerInfoPublisher}, unless disabled) and C{"web"}
    (unless disabled).
    """
    dataDir = ensureDataDir(config.dataDir)
    if config.tlsCert is not None and config.tlsKey is not None:
        certPath, keyPath = config.tlsCert, config.tlsKey
    else:
        certPath, keyPath = ensureSelfSigned(dataDir, config.localDomains)
    credentials = loadCredentials(certPath, keyPath)
    roots = loadTrustRoots(config.caFile)
    secret = config.dialbackSecret or dialbackSecret(dataDir)

    database = openDatabase(config.database, dataDir, reactor)
    top = DatabaseOwner(database)
    router = QuietRouter()
    linkTable = LinkTable()
    s2s = S2SService(
        config,
        router,
        linkTable,
        credentials,
        roots,
        secret,
        reactor,
        resolver if resolver is not None else defaultResolver(reactor),
    )
    s2s.setName("s2s")
    s2s.setServiceParent(top)

    listener = Listener("s2s", config.s2s, s2s.serverFactory(), reactor)
    listener.setName("s2s-listen")
    listener.setServiceParent(top)
    if config.s2sDirectTLS:
        direct = Listener(
            "direct-TLS s2s",
            config.s2sDirectTLS,
            TLSMemoryBIOFactory(s2s.serverTLSOptions, False, s2s.serverFactory()),
            reactor,
        )
        direct.setName("s2s-direct-tls")
        direct.setServiceParent(top)

    domain = LocalComponent(router, [config.domain], reactor, config.iqTimeout)
    domain.setName("domain")
    DiscoHandler().setHandlerParent(domain)
    ServerDisco(config).setHandlerParent(domain)
    PingHandler().setHandlerParent(domain)
    domain.setServiceParent(top)

    pubsub = LocalComponent(router, [config.effectivePubsubHost], reactor, config.iqTimeout)
    pubsub.setName("pubsub")
    DiscoHandler().setHandlerParent(pubsub)
    pubsubHandlers = pubSubHandlers(
        PubSubStore(database, reactor),
        config.effectivePubsubHost,
        [config.domain, *config.pubsubAdmins],
        reactor,
        maxSubscriptionsPerDomain=config.maxSubscriptionsPerDomain,
    )
    pubsubHandlers.setHandlerParent(pubsub)
    pubsub.pubsubResource = pubsubHandlers.resource
    pubsub.setServiceParent(top)

    root, api = buildRoot(config.domain, linkTable)
    if config.publish:
        publisher = buildPublisher(config, linkTable, domain, pubsubHandlers.resource, reactor)
        publisher.setName("publisher")
        publisher.setServiceParent(top)
        api.addServerInfo(publisher, config.effectivePubsubHost)

    if config.enableWeb:
        web = Listener("the web endpoint", config.web, Site(root), reactor)
        web.setName("web")
        web.setServiceParent(top)

    _log.info(
        "xmppnetgraph node for {domain} (pubsub {pubsub}): s2s on {s2s}, web on {web}, data in {dataDir}",
        domain=config.domain,
        pubsub=config.effectivePubsubHost,
        s2s=config.s2s,
        web=config.web if config.enableWeb else "(disabled)",
        dataDir=str(dataDir),
    )
    return top


def buildPublisher(
    config: Config, linkTable: LinkTable, domain: LocalComponent, resource: Any, reactor: Any
) -> ServerInfoPublisher:
    """
    The XEP-0485 publisher: consent checks by disco#info from our domain,
    items stored and sent by the pub-sub C{resource}.
    """
    discoClient = DiscoClientProtocol()
    discoClient.setHandlerParent(domain)
    allowlist = loadAllowlist(config.consentAllowlist) if config.consentAllowlist else frozenset()
    consent = ConsentChecker(
        discoFeatures(discoClient, config.domain),
        QueryScheduler(reactor, timeout=config.iqTimeout),
        ttl=config.consentTTL,
        allowlist=allowlist,
    )
    return publisherFor(
        resource,
        linkTable,
        consent,
        config.domain,
        frozenset(config.localDomains),
        reactor,
        delay=config.publishDelay,
        refresh=config.publishRefresh,
    )
