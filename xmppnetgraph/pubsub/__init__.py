# -*- test-case-name: tests.test_pubsub -*-
"""
The node's XEP-0060 pub-sub service: a L{PubSubBackend} (permissions,
configuration, state in an L{IPubSubStore}, changes announced on the
change feed) and the Wokkel handlers that put it on XMPP.

Make the backend, then L{pubSubHandlers} for it, and attach them to the
host's L{xmppnetgraph.component.LocalComponent} (or any Wokkel stream
manager), next to one L{wokkel.disco.DiscoHandler}. Publish locally (and
read, subscribe, ...) through the backend: the handlers notify the XMPP
subscribers of every change the backend announces.
"""

from __future__ import annotations

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.words.protocols.jabber.jid import JID
from wokkel.subprotocols import StreamManager, XMPPHandler, XMPPHandlerCollection

from xmppnetgraph.interfaces import IChangeFeed, IPubSubBackend
from xmppnetgraph.pubsub.backend import (
    ACCESS_MODEL,
    DEFAULT_NODE_CONFIG,
    DELIVER_PAYLOADS,
    MAX_ITEMS,
    PERSIST_ITEMS,
    PubSubBackend,
)
from xmppnetgraph.pubsub.resource import FEATURES, PubSubResource
from xmppnetgraph.pubsub.service import PubSubService, PubSubServiceDisco

__all__ = [
    "ACCESS_MODEL",
    "DEFAULT_NODE_CONFIG",
    "DELIVER_PAYLOADS",
    "FEATURES",
    "MAX_ITEMS",
    "PERSIST_ITEMS",
    "PubSubBackend",
    "PubSubHandlers",
    "PubSubResource",
    "PubSubService",
    "PubSubServiceDisco",
    "pubSubHandlers",
]


@attrs.frozen
class PubSubHandlers:
    """
    The XMPP pieces of one pub-sub host.

    @ivar resource: translates the requests for the backend.
    @ivar service: the XEP-0060 protocol handler and notifier.
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

    def setHandlerParent(self, parent: StreamManager | XMPPHandlerCollection) -> None:
        """
        Attach every handler to C{parent} (a stream manager or component
        that also has a L{wokkel.disco.DiscoHandler}).
        """
        for handler in self.handlers:
            handler.setHandlerParent(parent)


def pubSubHandlers(
    backend: IPubSubBackend,
    feed: IChangeFeed,
    clock: IReactorTime,
    *,
    maxPayloadBytes: int = 1024 * 1024,
    maxItemIdentifiers: int = 100,
    sendLastPublished: bool = True,
    maxFormFields: int = 64,
) -> PubSubHandlers:
    """
    Build the XMPP handlers of a pub-sub host.

    @param backend: the service (its C{serviceJID} is the host).
    @param feed: where C{backend} announces its changes; the service sends
        the notifications of those on its JID.
    @param clock: the reactor.
    @param maxPayloadBytes: the largest payload a publish request may carry.
    @param maxItemIdentifiers: the most item ids one request may name.
    @param sendLastPublished: send a new subscriber the node's last item.
    @param maxFormFields: the most data form fields one request may carry.
    @return: the resource, the service (whose C{resource} it is) and the
        disco additions.
    """
    resource = PubSubResource(
        backend,
        maxPayloadBytes=maxPayloadBytes,
        maxItemIdentifiers=maxItemIdentifiers,
        sendLastPublished=sendLastPublished,
    )
    protocol = PubSubService(resource, backend, feed, clock, maxFormFields=maxFormFields)
    return PubSubHandlers(resource, protocol, PubSubServiceDisco(JID(backend.serviceJID)))
