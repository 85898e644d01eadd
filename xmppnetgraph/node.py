# -*- test-case-name: tests.test_s2s_federation -*-
"""
Wire one node from a L{Config}: s2s listener and service, local domains
with their handlers, and the web endpoint. Embedders call L{buildService}
directly; C{twistd xmppnetgraph} goes through L{xmppnetgraph.tap}.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service, strports
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.server import Site
from wokkel.component import Router
from wokkel.disco import DiscoHandler

from xmppnetgraph.certs import ensureSelfSigned, loadCredentials, loadTrustRoots
from xmppnetgraph.component import LocalComponent
from xmppnetgraph.config import Config
from xmppnetgraph.datadir import dialbackSecret, ensureDataDir
from xmppnetgraph.disco import ServerDisco
from xmppnetgraph.http.api import buildRoot
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.s2s.resolve import defaultResolver
from xmppnetgraph.s2s.service import S2SService

_log = Logger()


def buildService(config: Config, reactor: Any, resolver: Any = None) -> service.MultiService:
    """
    Build the node's services; nothing listens until the returned service
    is started.

    Children, by name: C{"s2s"} (the L{S2SService}, whose C{linkTable} is
    the node's link table), C{"s2s-listen"}, C{"s2s-direct-tls"} (if
    configured), C{"domain"} and C{"pubsub"} (the L{LocalComponent}s of the
    two local domains) and C{"web"} (unless disabled).
    """
    dataDir = ensureDataDir(config.dataDir)
    if config.tlsCert is not None and config.tlsKey is not None:
        certPath, keyPath = config.tlsCert, config.tlsKey
    else:
        certPath, keyPath = ensureSelfSigned(dataDir, config.localDomains)
    credentials = loadCredentials(certPath, keyPath)
    roots = loadTrustRoots(config.caFile)
    secret = config.dialbackSecret or dialbackSecret(dataDir)

    top = service.MultiService()
    router = Router()
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

    listener = strports.service(config.s2s, s2s.serverFactory(), reactor=reactor)
    listener.setName("s2s-listen")
    listener.setServiceParent(top)
    if config.s2sDirectTLS:
        direct = strports.service(
            config.s2sDirectTLS,
            TLSMemoryBIOFactory(s2s.serverTLSOptions, False, s2s.serverFactory()),
            reactor=reactor,
        )
        direct.setName("s2s-direct-tls")
        direct.setServiceParent(top)

    domain = LocalComponent(router, [config.domain], reactor, config.iqTimeout)
    domain.setName("domain")
    DiscoHandler().setHandlerParent(domain)
    ServerDisco(config).setHandlerParent(domain)
    domain.setServiceParent(top)

    pubsub = LocalComponent(router, [config.effectivePubsubHost], reactor, config.iqTimeout)
    pubsub.setName("pubsub")
    DiscoHandler().setHandlerParent(pubsub)
    pubsub.setServiceParent(top)

    if config.enableWeb:
        web = strports.service(config.web, Site(buildRoot(config.domain, linkTable)), reactor=reactor)
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
