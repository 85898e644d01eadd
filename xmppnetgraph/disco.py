# -*- test-case-name: tests.test_disco -*-
"""
Service discovery (XEP-0030) for the node's own domain.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.words.protocols.jabber.jid import JID
from wokkel import disco
from wokkel.subprotocols import XMPPHandler
from zope.interface import implementer

from xmppnetgraph.config import Config


@implementer(disco.IDisco)
class ServerDisco(XMPPHandler):  # type: ignore[misc]
    """
    Identity C{server/im} and the features this node supports, for its
    own domain; disco#items lists the pubsub host.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.domain = config.domain
        self.pubsubHost = config.effectivePubsubHost

    def getDiscoInfo(self, requestor: JID, target: JID, nodeIdentifier: str = "") -> defer.Deferred[list[Any]]:
        """
        @return: our identity and features, for our bare domain only.
        """
        if target.host != self.domain or target.user or nodeIdentifier:
            return defer.succeed([])
        info: list[Any] = [
            disco.DiscoIdentity("server", "im", "xmppnetgraph"),
            disco.DiscoFeature(disco.NS_DISCO_INFO),
            disco.DiscoFeature(disco.NS_DISCO_ITEMS),
        ]
        return defer.succeed(info)

    def getDiscoItems(self, requestor: JID, target: JID, nodeIdentifier: str = "") -> defer.Deferred[list[Any]]:
        """
        @return: nothing yet; the pubsub host is listed once it serves.
        """
        return defer.succeed([])
