# -*- test-case-name: tests.test_pubsub -*-
"""
The XEP-0060 protocol handler of our pub-sub host: Wokkel's
L{wokkel.pubsub.PubSubService} hardened against hostile requests, the
XMPP notifier of its backend's changes, and the disco#info bits Wokkel
leaves out.

The notifications are driven by the change feed: the service observes
L{ItemPublished}, L{ItemsRetracted} and L{NodeDeleted} for its own JID and
sends the C{pubsub#event} messages, whoever made the change (a publish
request, the node's own XEP-0485 publisher, an embedder). Only the last
published item sent to a new subscriber is a reply to a request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import jid
from twisted.words.xish import domish
from wokkel import data_form, disco, pubsub
from wokkel.subprotocols import XMPPHandler
from zope.interface import implementer

from xmppnetgraph.interfaces import IChangeFeed, IPubSubBackend
from xmppnetgraph.model import ItemPublished, ItemsRetracted, NodeDeleted
from xmppnetgraph.names import isValidJID, parseJID
from xmppnetgraph.pubsub.backend import DELIVER_PAYLOADS
from xmppnetgraph.pubsub.resource import (
    NS_PUBSUB_EVENT,
    PubSubResource,
    itemElement,
    stanzaError,
    toWokkelSubscription,
)
from xmppnetgraph.timestamp import formatTimestamp

NS_DELAY = "urn:xmpp:delay"


class PubSubService(pubsub.PubSubService):  # type: ignore[misc]  # Wokkel is untyped
    """
    Wokkel's pub-sub protocol handler for one L{PubSubResource}, with:
      - limits on the data forms of a request (checked before Wokkel
        parses them) and C{not-acceptable} instead of
        C{internal-server-error} for a form Wokkel cannot type-check;
      - C{jid-malformed} for a malformed JID in a request;
      - disco#info on a node answered from the resource, errors included;
      - notifications of the backend's changes, observed on the change
        feed, with an C{id} and C{type='headline'}; retractions
        (L{notifyRetract}) and the last item for a new subscriber
        (L{notifyLastItem}) too.

    @ivar serviceJID: the JID it serves (events for others are not its).
    @ivar backend: the service's state, behind the resource.
    @ivar maxFormFields: the most data form fields one request may carry.
    @ivar maxFormValues: the most data form values one request may carry.
    """

    _log = Logger()

    resource: PubSubResource

    def __init__(
        self,
        resource: PubSubResource,
        backend: IPubSubBackend,
        feed: IChangeFeed,
        clock: IReactorTime,
        maxFormFields: int = 64,
        maxFormValues: int = 256,
    ) -> None:
        """
        @param resource: translates the requests for C{backend}.
        @param backend: the service's state (the last published item is
            read from it).
        @param feed: where C{backend} announces its changes; observed from
            now on.
        @param clock: schedules the last published item after a
            subscription's result.
        """
        super().__init__(resource)
        self._service: str = backend.serviceJID
        self.serviceJID = parseJID(self._service)
        self.backend = backend
        self._clock = clock
        self.maxFormFields = maxFormFields
        self.maxFormValues = maxFormValues
        self._unobserve: list[Callable[[], None]] = [
            feed.observe(ItemPublished, self._itemPublished),
            feed.observe(ItemsRetracted, self._itemsRetracted),
            feed.observe(NodeDeleted, self._nodeDeleted),
        ]

    def stopObserving(self) -> None:
        """
        Stop sending notifications (for a service that is thrown away
        while its feed lives on).
        """
        for unobserve in self._unobserve:
            unobserve()
        self._unobserve = []

    # -- requests ------------------------------------------------------------

    def _onPubSubRequest(self, iq: domish.Element) -> defer.Deferred[Any]:
        self._checkRequest(iq)
        try:
            return super()._onPubSubRequest(iq)  # type: ignore[no-any-return]
        except data_form.Error as e:
            # Raised while Wokkel parses a form (an option without a value, ...).
            raise stanzaError("bad-request", text=f"bad data form: {e}") from None

    def _checkRequest(self, iq: domish.Element) -> None:
        """
        Refuse, before Wokkel parses anything, a request with malformed JIDs
        or with more data form fields or values than we accept.

        @raise jabbererror.StanzaError: C{jid-malformed} or
            C{not-acceptable}.
        """
        for attribute in ("from", "to"):
            if iq.hasAttribute(attribute) and not isValidJID(iq[attribute]):
                raise stanzaError("jid-malformed")
        fields = values = 0
        for verb in iq.pubsub.elements():
            for element in (verb, *verb.elements()):
                if element.hasAttribute("jid") and not isValidJID(element["jid"]):
                    raise stanzaError("jid-malformed")
            for form in verb.elements(data_form.NS_X_DATA, "x"):
                for field in form.elements(data_form.NS_X_DATA, "field"):
                    fields += 1
                    values += sum(1 for _ in field.elements())
        if fields > self.maxFormFields or values > self.maxFormValues:
            raise stanzaError("not-acceptable", text="data form too large")

    def _checkConfiguration(self, resource: PubSubResource, form: data_form.Form) -> None:
        try:
            super()._checkConfiguration(resource, form)
        except (TypeError, ValueError, data_form.Error) as e:
            raise stanzaError("not-acceptable", text=f"bad configuration form: {e}") from None

    # -- discovery -----------------------------------------------------------

    def getDiscoInfo(
        self, requestor: jid.JID, target: jid.JID, nodeIdentifier: str = ""
    ) -> defer.Deferred[list[Any]]:
        """
        Identity C{pubsub/service} and features for the service itself (by
        Wokkel); C{pubsub/leaf} and meta-data for an existing node, an
        C{item-not-found} error for a missing one.
        """
        if target.userhostJID() != self.serviceJID:
            return defer.succeed([])
        if not nodeIdentifier:
            return super().getDiscoInfo(requestor, target, nodeIdentifier)  # type: ignore[no-any-return]
        return self.resource.getInfo(requestor, target, nodeIdentifier).addCallback(self._nodeInfo)

    @staticmethod
    def _nodeInfo(nodeInfo: dict[str, Any] | None) -> list[Any]:
        if not nodeInfo:
            return []
        info: list[Any] = [disco.DiscoIdentity("pubsub", nodeInfo["type"])]
        if nodeInfo.get("meta-data"):
            form = data_form.Form("result", formNamespace=pubsub.NS_PUBSUB_META_DATA)
            form.addField(data_form.Field(var="pubsub#node_type", value=nodeInfo["type"]))
            for metaDatum in nodeInfo["meta-data"]:
                form.addField(data_form.Field.fromDict(metaDatum))
            info.append(form)
        return info

    # -- subscribing ---------------------------------------------------------

    def _toResponse_subscribe(
        self, result: pubsub.Subscription, resource: PubSubResource, request: pubsub.PubSubRequest
    ) -> domish.Element:
        """
        Answer a subscription (as Wokkel does) and, once the answer has
        left, send the node's last item (XEP-0060 6.1.7) if the resource
        advertises C{last-published}.
        """
        response: domish.Element = super()._toResponse_subscribe(result, resource, request)
        if resource.sendLastPublished:
            self._clock.callLater(0, self._sendLastItem, result.nodeIdentifier, result.subscriber)
        return response

    def _sendLastItem(self, nodeIdentifier: str, subscriber: jid.JID) -> defer.Deferred[None]:
        d = defer.Deferred.fromCoroutine(self._lastItem(nodeIdentifier, subscriber))
        d.addErrback(self._logLastItemFailure, nodeIdentifier, subscriber)
        return d

    def _logLastItemFailure(
        self, failure: Failure, nodeIdentifier: str, subscriber: jid.JID
    ) -> None:
        self._log.failure(
            "sending the last item of {node} to {subscriber} failed",
            failure,
            node=nodeIdentifier,
            subscriber=subscriber.full(),
        )

    async def _lastItem(self, nodeIdentifier: str, subscriber: jid.JID) -> None:
        stored = await self.backend.items(nodeIdentifier, None, 1)
        if not stored:
            return
        last = stored[0]
        metaData = await self.backend.nodeMetaData(nodeIdentifier)
        withPayload = bool(metaData.get(DELIVER_PAYLOADS, True))
        item = itemElement(NS_PUBSUB_EVENT, last.identifier, last.payload if withPayload else None)
        self.notifyLastItem(self.serviceJID, nodeIdentifier, subscriber, item, last.published)

    # -- notifications -------------------------------------------------------

    def _mine(self, service: str) -> bool:
        """
        @return: whether an event about C{service} is this service's.
        """
        return service == self._service

    def _itemPublished(self, event: ItemPublished) -> None:
        """
        Tell each subscriber of the node about the new item. The payload is
        serialized once, and that one L{domish.SerializedXML} is shared by
        every notification.
        """
        if not self._mine(event.service) or not event.subscriptions:
            return
        raw = domish.SerializedXML(event.item.payload) if event.deliverPayload else None
        notifications = []
        for stored in event.subscriptions:
            subscription = toWokkelSubscription(stored)
            item = itemElement(NS_PUBSUB_EVENT, event.item.identifier, raw)
            notifications.append((subscription.subscriber, [subscription], [item]))
        self.notifyPublish(self.serviceJID, event.node, notifications)

    def _itemsRetracted(self, event: ItemsRetracted) -> None:
        """
        Tell each subscriber of the node which items were retracted.
        """
        if not self._mine(event.service) or not event.subscriptions:
            return
        self.notifyRetract(
            self.serviceJID,
            event.node,
            [jid.JID(s.subscriber) for s in event.subscriptions],
            list(event.itemIdentifiers),
        )

    def _nodeDeleted(self, event: NodeDeleted) -> None:
        """
        Tell each (former) subscriber of the node that it was deleted.
        """
        if not self._mine(event.service) or not event.subscriptions:
            return
        self.notifyDelete(
            self.serviceJID, event.node, [jid.JID(s.subscriber) for s in event.subscriptions]
        )

    def _createNotification(
        self,
        eventType: str,
        service: jid.JID,
        nodeIdentifier: str,
        subscriber: jid.JID,
        subscriptions: list[pubsub.Subscription] | None = None,
    ) -> domish.Element:
        message = super()._createNotification(
            eventType, service, nodeIdentifier, subscriber, subscriptions
        )
        message["id"] = secrets.token_hex(8)
        message["type"] = "headline"
        return message  # type: ignore[no-any-return]

    def notifyRetract(
        self,
        service: jid.JID,
        nodeIdentifier: str,
        subscribers: list[jid.JID],
        itemIdentifiers: list[str],
    ) -> None:
        """
        Tell each subscriber that the items were retracted.
        """
        for subscriber in subscribers:
            message = self._createNotification("items", service, nodeIdentifier, subscriber)
            for itemIdentifier in itemIdentifiers:
                message.event.items.addElement("retract")["id"] = itemIdentifier
            self.send(message)

    def notifyLastItem(
        self,
        service: jid.JID,
        nodeIdentifier: str,
        subscriber: jid.JID,
        item: domish.Element,
        published: float,
    ) -> None:
        """
        Send a new subscriber the node's last item, stamped with when it was
        published (XEP-0060 6.1.7, XEP-0203).

        @param item: an C{item} element in the C{pubsub#event} namespace.
        @param published: seconds since the epoch.
        """
        message = self._createNotification("items", service, nodeIdentifier, subscriber)
        message.event.items.addChild(item)
        delay = message.addElement((NS_DELAY, "delay"))
        delay["from"] = service.full()
        delay["stamp"] = formatTimestamp(published)
        self.send(message)


@implementer(disco.IDisco)
class PubSubServiceDisco(XMPPHandler):  # type: ignore[misc]
    """
    What Wokkel's L{pubsub.PubSubService} leaves out of the pub-sub host's
    disco#info: the C{disco#info} feature. (The service itself gives the
    C{pubsub/service} identity, C{disco#items} and the C{pubsub#} features.)
    """

    def __init__(self, serviceJID: jid.JID) -> None:
        super().__init__()
        self.serviceJID = serviceJID

    def getDiscoInfo(
        self, requestor: jid.JID, target: jid.JID, nodeIdentifier: str = ""
    ) -> defer.Deferred[list[Any]]:
        """
        @return: the C{disco#info} feature for the service itself.
        """
        if nodeIdentifier or target != self.serviceJID:
            return defer.succeed([])
        return defer.succeed([disco.DiscoFeature(disco.NS_DISCO_INFO)])

    def getDiscoItems(
        self, requestor: jid.JID, target: jid.JID, nodeIdentifier: str = ""
    ) -> defer.Deferred[list[Any]]:
        """
        @return: nothing (the service lists its nodes).
        """
        return defer.succeed([])
