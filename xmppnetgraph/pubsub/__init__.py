# -*- test-case-name: tests.test_pubsub -*-
"""
The node's XEP-0060 pub-sub service, kept in an L{IPubSubStore}.

L{pubSubHandlers} builds the Wokkel handlers for a pub-sub host; attach
them to the host's L{xmppnetgraph.component.LocalComponent} (or any Wokkel
stream manager), next to one L{wokkel.disco.DiscoHandler}.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.words.protocols.jabber.jid import JID
from wokkel.subprotocols import XMPPHandler

from xmppnetgraph.interfaces import IPubSubStore
from xmppnetgraph.pubsub.resource import (
    ACCESS_MODEL,
    DEFAULT_NODE_CONFIG,
    DELIVER_PAYLOADS,
    FEATURES,
    MAX_ITEMS,
    PERSIST_ITEMS,
    PubSubResource,
)
from xmppnetgraph.pubsub.service import PubSubService, PubSubServiceDisco

__all__ = [
    "ACCESS_MODEL",
    "DEFAULT_NODE_CONFIG",
    "DELIVER_PAYLOADS",
    "FEATURES",
    "MAX_ITEMS",
    "PERSIST_ITEMS",
    "PubSubHandlers",
    "PubSubResource",
    "PubSubService",
    "PubSubServiceDisco",
    "pubSubHandlers",
]


@attrs.frozen
class PubSubHandlers:
    """
    The pieces of one pub-sub host.

    @ivar resource: the nodes and the local API (C{publishLocal},
        C{currentItems}).
    @ivar service: the XEP-0060 protocol handler.
    @ivar disco: the disco#info additions for the host.
    """

    resource: PubSubResource
    service: PubSubService
    disco: PubSubServiceDisco

    @property
    def handlers(self) -> list[XMPPHandler]:
        """
        The Wokkel handlers to attach.
        """
        return [self.service, self.disco]

    def setHandlerParent(self, parent: Any) -> None:
        """
        Attach every handler to C{parent} (a stream manager or component
        that also has a L{wokkel.disco.DiscoHandler}).
        """
        for handler in self.handlers:
            handler.setHandlerParent(parent)


def pubSubHandlers(
    store: IPubSubStore,
    serviceJID: JID | str,
    owners: Iterable[JID | str],
    clock: IReactorTime,
    *,
    maxSubscriptionsPerDomain: int = 10,
    defaultConfig: Mapping[str, object] = DEFAULT_NODE_CONFIG,
    maxPayloadBytes: int = 1024 * 1024,
    sendLastPublished: bool = True,
    maxFormFields: int = 64,
) -> PubSubHandlers:
    """
    Build the handlers of a pub-sub host.

    @param store: where nodes, items and subscriptions are kept.
    @param serviceJID: the pub-sub host (a bare domain JID).
    @param owners: who may publish, retract, create, configure and delete:
        the node's own domain and the configured admins (bare JIDs count).
    @param clock: the reactor.
    @param maxSubscriptionsPerDomain: subscriptions one remote domain may
        hold on one node.
    @param defaultConfig: configuration of nodes created without one.
    @param maxPayloadBytes: the largest payload a publish request may carry.
    @param sendLastPublished: send a new subscriber the node's last item.
    @param maxFormFields: the most data form fields one request may carry.
    @return: the resource, the service (whose C{resource} it is and which
        sends its notifications) and the disco additions.
    """
    service = JID(serviceJID) if isinstance(serviceJID, str) else serviceJID
    resource = PubSubResource(
        store,
        service,
        owners,
        clock,
        maxSubscriptionsPerDomain=maxSubscriptionsPerDomain,
        defaultConfig=defaultConfig,
        maxPayloadBytes=maxPayloadBytes,
        sendLastPublished=sendLastPublished,
    )
    protocol = PubSubService(resource, maxFormFields=maxFormFields)
    resource.notifier = protocol
    return PubSubHandlers(resource, protocol, PubSubServiceDisco(service))
