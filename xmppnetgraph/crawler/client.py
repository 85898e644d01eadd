# -*- test-case-name: tests.test_crawler -*-
"""
The crawler's XEP-0060 subscriber: Wokkel's L{PubSubClient} on our
domain, subscribing with our bare domain JID and handing notifications to
the crawl loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.internet import defer
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel.pubsub import PubSubClient

Notified = Callable[[str, str, Sequence[domish.Element]], None]
NodeChanged = Callable[[str, str], None]


class CrawlerPubSubClient(PubSubClient):
    """
    Subscribes as our domain (bare JID) and passes item notifications, and
    purges and deletions of nodes, to the crawler.

    @ivar notified: called with the sender, the node and the items of each
        item notification (set by the builder).
    @ivar nodeChanged: called with the sender and the node of a purge or a
        deletion.
    """

    def __init__(self, domain: str) -> None:
        """
        @param domain: our domain: the subscriber and the sender.
        """
        super().__init__()
        self._jid = JID(domain)
        self.notified: Notified = lambda service, node, items: None
        self.nodeChanged: NodeChanged = lambda service, node: None

    def subscribeTo(self, service: str, node: str) -> defer.Deferred[str]:
        """
        Subscribe our domain to C{node} at C{service}.

        @return: a L{Deferred} firing with the subscription's state.
        """
        d: defer.Deferred[object] = self.subscribe(JID(service), node, self._jid, sender=self._jid)

        def state(subscription: object) -> str:
            return str(getattr(subscription, "state", "subscribed"))

        return d.addCallback(state)

    def itemsReceived(self, event: object) -> None:
        """
        An item notification: pass it on (Wokkel parsed sender and node).
        """
        sender = getattr(event, "sender", None)
        recipient = getattr(event, "recipient", None)
        if sender is None or (recipient is not None and recipient.userhost() != self._jid.full()):
            return
        items = [item for item in getattr(event, "items", ()) if item.name == "item"]
        if items:
            self.notified(sender.full(), getattr(event, "nodeIdentifier", "") or "", items)

    def deleteReceived(self, event: object) -> None:
        """
        A node was deleted.
        """
        self._changed(event)

    def purgeReceived(self, event: object) -> None:
        """
        A node's items were purged.
        """
        self._changed(event)

    def _changed(self, event: object) -> None:
        sender = getattr(event, "sender", None)
        if sender is not None:
            self.nodeChanged(sender.full(), getattr(event, "nodeIdentifier", "") or "")
