# -*- test-case-name: tests.test_pubsub -*-
"""
The XEP-0060 protocol handler of our pub-sub host: Wokkel's
L{wokkel.pubsub.PubSubService} hardened against hostile requests, and the
disco#info bits Wokkel leaves out.
"""

from __future__ import annotations

import secrets
from typing import Any

from twisted.internet import defer
from twisted.words.protocols.jabber import jid
from twisted.words.xish import domish
from wokkel import data_form, disco, pubsub
from wokkel.subprotocols import XMPPHandler
from zope.interface import implementer

from xmppnetgraph.names import isValidJID
from xmppnetgraph.pubsub.resource import PubSubResource, stanzaError
from xmppnetgraph.timestamp import formatTimestamp

NS_DELAY = "urn:xmpp:delay"


class PubSubService(pubsub.PubSubService):  # type: ignore[misc]
    """
    Wokkel's pub-sub protocol handler for one L{PubSubResource}, with:
      - limits on the data forms of a request (checked before Wokkel
        parses them) and C{not-acceptable} instead of
        C{internal-server-error} for a form Wokkel cannot type-check;
      - C{jid-malformed} for a malformed JID in a request;
      - disco#info on a node answered from the resource, errors included;
      - notifications with an C{id} and C{type='headline'}, plus
        L{notifyRetract} and L{notifyLastItem}.

    @ivar maxFormFields: the most data form fields one request may carry.
    @ivar maxFormValues: the most data form values one request may carry.
    """

    def __init__(
        self, resource: PubSubResource, maxFormFields: int = 64, maxFormValues: int = 256
    ) -> None:
        super().__init__(resource)
        self.maxFormFields = maxFormFields
        self.maxFormValues = maxFormValues

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
        if target.userhostJID() != self.resource.serviceJID:
            return defer.succeed([])
        if not nodeIdentifier:
            return super().getDiscoInfo(requestor, target, nodeIdentifier)  # type: ignore[no-any-return]
        d = self.resource.getInfo(requestor, target, nodeIdentifier)
        d.addCallback(self._nodeInfo)
        return d

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

    # -- notifications -------------------------------------------------------

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
