# -*- test-case-name: tests.test_serverinfo_federation -*-
"""
The builder of the XEP-0485 module: disco of the node's domain (XEP-0030,
with the consent feature and the XEP-0128 form), the XEP-0060 pub-sub
service on the pubsub host, and, unless publishing is off, the publisher
with its consent checks.
"""

from __future__ import annotations

import attrs
from twisted.application.service import IServiceCollection
from wokkel.disco import DiscoClientProtocol

from xmppnetgraph.config import Config
from xmppnetgraph.core import Core, attach
from xmppnetgraph.disco import ServerDisco
from xmppnetgraph.pubsub import PubSubBackend, PubSubHandlers, pubSubHandlers
from xmppnetgraph.serverinfo.consent import ConsentChecker, discoFeatures, loadAllowlist
from xmppnetgraph.serverinfo.payload import DEFAULT_NODE, ITEM_ID
from xmppnetgraph.serverinfo.publisher import ServerInfoPublisher, publisherFor
from xmppnetgraph.store.pubsub import PubSubStore


@attrs.frozen
class ServerInfoModule:
    """
    What L{buildServerInfo} made.

    @ivar disco: the disco handler of the node's domain.
    @ivar backend: the pub-sub service of the pubsub host: publish, read
        and subscribe through it (its changes reach the XMPP subscribers).
    @ivar pubsub: the XMPP handlers of that service.
    @ivar publisher: the publisher, or L{None} when publishing is off.
    @ivar service: the pub-sub host the item is published on.
    @ivar node: the node it is published on.
    @ivar itemIdentifier: its item id.
    """

    disco: ServerDisco
    backend: PubSubBackend
    pubsub: PubSubHandlers
    publisher: ServerInfoPublisher | None
    service: str
    node: str = DEFAULT_NODE
    itemIdentifier: str = ITEM_ID


def buildServerInfo(core: Core, config: Config, parent: IServiceCollection) -> ServerInfoModule:
    """
    Attach XEP-0485 to the core's hosts of C{config.domain} and
    C{config.effectivePubsubHost}, and the publisher (named
    C{"publisher"}) to C{parent}.

    Attach it after every module whose services the publisher's sends go
    through have been attached: it starts last.
    """
    domainHost = core.component(config.domain)
    disco = ServerDisco(config)
    disco.setHandlerParent(domainHost)

    pubsubHost = core.component(config.effectivePubsubHost)
    backend = PubSubBackend(
        PubSubStore(core.database, core.reactor),
        config.effectivePubsubHost,
        core.feed,
        owners=[config.domain, *config.pubsubAdmins],
        maxSubscriptionsPerDomain=config.maxSubscriptionsPerDomain,
    )
    handlers = pubSubHandlers(backend, core.feed, core.reactor)
    handlers.setHandlerParent(pubsubHost)

    publisher = None
    if config.publish:
        discoClient = DiscoClientProtocol()
        discoClient.setHandlerParent(domainHost)
        allowlist = (
            loadAllowlist(config.consentAllowlist) if config.consentAllowlist else frozenset()
        )
        consent = ConsentChecker(
            discoFeatures(discoClient, config.domain),
            core.scheduler,
            core.feed,
            ttl=config.consentTTL,
            allowlist=allowlist,
        )
        publisher = publisherFor(
            backend,
            core.feed,
            core.linkTable,
            consent,
            config.domain,
            frozenset(config.localDomains),
            core.reactor,
            delay=config.publishDelay,
            refresh=config.publishRefresh,
        )
        attach(publisher, "publisher", parent)
    return ServerInfoModule(disco, backend, handlers, publisher, config.effectivePubsubHost)
