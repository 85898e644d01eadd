# -*- test-case-name: tests.test_federation -*-
"""
The builder of the s2s module: TLS credentials, the L{S2SService} as the
router's default route, its listeners, and the answers every XMPP server
gives on its domain (XEP-0199 ping).
"""

from __future__ import annotations

from twisted.application.service import IServiceCollection
from twisted.protocols.tls import TLSMemoryBIOFactory
from wokkel.generic import VersionHandler
from wokkel.ping import PingHandler

from xmppnetgraph import __version__
from xmppnetgraph.certs import ensureSelfSigned, loadCredentials, loadTrustRoots
from xmppnetgraph.config import Config
from xmppnetgraph.core import Core, attach
from xmppnetgraph.datadir import dialbackSecret, ensureDataDir
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.listener import Listener
from xmppnetgraph.metrics import S2SCollector
from xmppnetgraph.s2s.resolve import defaultResolver
from xmppnetgraph.s2s.service import S2SService


def buildS2S(core: Core, config: Config, parent: IServiceCollection) -> S2SService:
    """
    Attach the node's server-to-server streams to C{parent}: the service
    (named C{"s2s"}) and its listeners (C{"s2s-listen"}, and
    C{"s2s-direct-tls"} if configured), and its metrics.

    @param core: its C{linkTable} must be a L{LinkTable} (the s2s service
        adds and removes the links); without a C{resolver}, the system's
        DNS is used.
    @raise xmppnetgraph.datadir.DataDirError: if the data directory is
        unusable.
    @raise xmppnetgraph.certs.TLSConfigError: if the TLS files are.
    """
    if not isinstance(core.linkTable, LinkTable):
        raise TypeError("the s2s module keeps the core's link table: it must be a LinkTable")
    dataDir = ensureDataDir(config.dataDir)
    if config.tlsCert is not None and config.tlsKey is not None:
        certPath, keyPath = config.tlsCert, config.tlsKey
    else:
        certPath, keyPath = ensureSelfSigned(dataDir, config.localDomains)
    s2s = S2SService(
        config,
        core.router,
        core.linkTable,
        loadCredentials(certPath, keyPath),
        loadTrustRoots(config.caFile),
        config.dialbackSecret or dialbackSecret(dataDir),
        core.reactor,
        core.resolver if core.resolver is not None else defaultResolver(core.reactor),
    )
    attach(s2s, "s2s", parent)
    core.metrics.register(
        S2SCollector(core.linkTable, lambda: s2s.connectionCount, s2s.streamErrors)
    )

    listener = Listener("s2s", config.s2s, s2s.serverFactory(), core.reactor)
    attach(listener, "s2s-listen", parent)
    if config.s2sDirectTLS:
        direct = Listener(
            "direct-TLS s2s",
            config.s2sDirectTLS,
            TLSMemoryBIOFactory(s2s.serverTLSOptions, False, s2s.serverFactory()),
            core.reactor,
        )
        attach(direct, "s2s-direct-tls", parent)

    PingHandler().setHandlerParent(core.component(config.domain))
    # XEP-0092: name and version only (no operating system), as crawlers
    # ask (ours too).
    VersionHandler("xmppnetgraph", __version__).setHandlerParent(core.component(config.domain))
    return s2s
