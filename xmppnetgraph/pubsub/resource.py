# -*- test-case-name: tests.test_pubsub -*-
"""
The XEP-0060 pub-sub resource of our node: Wokkel's L{IPubSubResource} in
front of a L{PubSubBackend<xmppnetgraph.pubsub.backend.PubSubBackend>}.

The resource only translates: it checks that a request is well formed
(a node id, one item with one payload, a size limit, the subscriber's JID
being the requester's), calls the backend, and turns the result into what
Wokkel answers. The backend decides who may do what, checks
configurations and stores; its errors (L{xmppnetgraph.error}) become stanza
errors in one place, L{PubSubResource._errorMap}. Notifications are not
sent here: the service observes the backend's changes on the change feed.
"""

from __future__ import annotations

import secrets
from collections.abc import Coroutine, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error as jabbererror
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import disco, pubsub
from wokkel.iwokkel import IPubSubResource
from zope.interface import implementer

from xmppnetgraph import error
from xmppnetgraph.interfaces import IPubSubBackend
from xmppnetgraph.model import Subscription
from xmppnetgraph.pubsub.backend import ACCESS_MODEL, DELIVER_PAYLOADS, MAX_ITEMS, PERSIST_ITEMS

_T = TypeVar("_T")

NS_PUBSUB = pubsub.NS_PUBSUB
NS_PUBSUB_EVENT = pubsub.NS_PUBSUB_EVENT
NS_PUBSUB_ERRORS = pubsub.NS_PUBSUB_ERRORS

#: The XEP-0060 features (C{pubsub#...}) this resource really supports.
FEATURES: tuple[str, ...] = (
    "access-open",
    "config-node",
    "create-and-configure",
    "create-nodes",
    "delete-items",
    "delete-nodes",
    "item-ids",
    "meta-data",
    "persistent-items",
    "publish",
    "retract-items",
    "retrieve-default",
    "retrieve-items",
    "retrieve-subscriptions",
    "subscribe",
)


def stanzaError(
    condition: str,
    pubsubCondition: str | None = None,
    type: str | None = None,
    text: str | None = None,
    feature: str | None = None,
) -> jabbererror.StanzaError:
    """
    @param condition: the RFC 6120 stanza error condition.
    @param pubsubCondition: the C{pubsub#errors} condition, if any.
    @param type: the error type; Twisted's default for C{condition} when
        omitted (it has none for C{policy-violation}: always pass one then).
    @param feature: the C{feature} attribute of the pubsub condition.
    @return: the stanza error.
    """
    appCondition = None
    if pubsubCondition is not None:
        appCondition = domish.Element((NS_PUBSUB_ERRORS, pubsubCondition))
        if feature:
            appCondition["feature"] = feature
    return jabbererror.StanzaError(condition, type=type, text=text, appCondition=appCondition)


def itemElement(
    namespace: str, itemIdentifier: str, payload: str | domish.SerializedXML | None
) -> domish.Element:
    """
    @param namespace: C{pubsub} (items results) or C{pubsub#event}
        (notifications); the element is built in it, so it serializes
        without a prefix (unlike an item re-emitted from the wire).
    @param payload: serialized XML we stored ourselves, added unparsed;
        one L{domish.SerializedXML} can be shared by many items (it is
        immutable), which spares a copy of a big payload per subscriber.
    @return: a new C{item} element.
    """
    item = domish.Element((namespace, "item"))
    item["id"] = itemIdentifier
    if payload is not None:
        if not isinstance(payload, domish.SerializedXML):
            payload = domish.SerializedXML(payload)
        item.addChild(payload)
    return item


def toWokkelSubscription(stored: Subscription) -> pubsub.Subscription:
    """
    @return: Wokkel's form of a stored subscription (state C{subscribed}).
    """
    return pubsub.Subscription(
        stored.nodeIdentifier,
        JID(stored.subscriber),
        "subscribed",
        subscriptionIdentifier=stored.subscriptionIdentifier,
    )


@implementer(IPubSubResource)
class PubSubResource(pubsub.PubSubResource):  # type: ignore[misc]  # Wokkel is untyped
    """
    The XEP-0060 requests to one pub-sub service, translated for its
    L{IPubSubBackend}.

    Requests arrive as Wokkel L{pubsub.PubSubRequest}s through the service
    (L{xmppnetgraph.pubsub.service.PubSubService}); each verb method returns
    a Deferred that fails with a L{jabbererror.StanzaError} only.

    No attribute of this class is named after a request verb other than the
    verb methods themselves: the service calls C{getattr(resource, verb)}.

    @ivar serviceJID: the pub-sub service's JID.
    @ivar features: the supported features, without the C{pubsub#} prefix
        (a tuple: never appended to).
    @ivar maxPayloadBytes: the largest payload a publish request may carry.
    @ivar maxItemIdentifiers: the most item ids one items or retract
        request may name.
    @ivar sendLastPublished: whether the service sends a new subscriber the
        node's newest item (XEP-0060 6.1.7, feature C{last-published}).
    """

    _log = Logger()

    discoIdentity = disco.DiscoIdentity("pubsub", "service", "xmppnetgraph publish-subscribe")

    #: domain error -> (stanza condition, error type, pubsub#errors
    #: condition, whether the error's message is sent as the text)
    _errorMap: Mapping[type[Exception], tuple[str, str | None, str | None, bool]] = (
        MappingProxyType(
            {
                error.NodeNotFound: ("item-not-found", None, None, False),
                error.ItemNotFound: ("item-not-found", None, None, False),
                error.NodeExists: ("conflict", None, None, False),
                error.NotSubscribed: ("unexpected-request", "cancel", "not-subscribed", False),
                error.InvalidSubscriptionId: ("not-acceptable", None, "invalid-subid", False),
                error.TooManySubscriptions: (
                    "policy-violation",
                    "wait",
                    "too-many-subscriptions",
                    False,
                ),
                error.Forbidden: ("forbidden", None, None, False),
                error.UnsupportedAccessModel: (
                    "not-acceptable",
                    None,
                    "unsupported-access-model",
                    False,
                ),
                error.BadNodeConfiguration: ("not-acceptable", None, None, True),
                error.StorageFull: ("resource-constraint", "wait", None, False),
                error.StorageError: ("internal-server-error", None, None, False),
            }
        )
    )

    def __init__(
        self,
        backend: IPubSubBackend,
        *,
        maxPayloadBytes: int = 1024 * 1024,
        maxItemIdentifiers: int = 100,
        sendLastPublished: bool = True,
    ) -> None:
        """
        @param backend: the service's nodes, permissions and storage.
        @param maxPayloadBytes: the largest payload accepted in a publish
            request.
        @param maxItemIdentifiers: the most item ids one items or retract
            request may name.
        @param sendLastPublished: advertise (and have the service send) a
            new subscriber the node's newest item.
        """
        self._backend = backend
        self.serviceJID = JID(backend.serviceJID)
        self.maxPayloadBytes = maxPayloadBytes
        self.maxItemIdentifiers = maxItemIdentifiers
        self.sendLastPublished = sendLastPublished
        self.features: tuple[str, ...] = FEATURES + (
            ("last-published",) if sendLastPublished else ()
        )

    # -- plumbing ------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> defer.Deferred[_T]:
        """
        Run C{coroutine}; its domain errors become stanza errors.
        """
        d = defer.Deferred.fromCoroutine(coroutine)
        d.addErrback(self._mapErrors)
        return d

    def _mapErrors(self, failure: Failure) -> Failure:
        """
        Turn a domain error into the stanza error of L{_errorMap}; let stanza
        errors pass; log anything else and report C{internal-server-error}.
        """
        if failure.check(jabbererror.StanzaError):
            return failure
        for kind, (condition, errorType, pubsubCondition, withText) in self._errorMap.items():
            if failure.check(kind):
                if condition == "internal-server-error":
                    self._log.failure("pub-sub storage failed", failure)
                text = str(failure.value) if withText else None
                return Failure(stanzaError(condition, pubsubCondition, errorType, text))
        self._log.failure("pub-sub request failed", failure)
        return Failure(stanzaError("internal-server-error"))

    @staticmethod
    def _sender(request: pubsub.PubSubRequest) -> str:
        """
        @return: the requester's JID.
        @raise jabbererror.StanzaError: C{bad-request} for a request
            without one.
        """
        if request.sender is None:
            raise stanzaError("bad-request")
        return str(request.sender.full())

    def _requireOwner(self, request: pubsub.PubSubRequest, action: str) -> str:
        """
        Refuse a stranger first, before anything else about an owner
        request is looked at (the backend checks again; this only fixes
        which error a stranger's bad request gets).

        @return: the requester's JID.
        @raise error.Forbidden: if the requester is not an owner.
        """
        if request.sender is None or not self._backend.isOwner(request.sender.full()):
            raise error.Forbidden(f"{request.sender} may not {action} on {self.serviceJID}")
        return str(request.sender.full())

    @staticmethod
    def _requireNode(request: pubsub.PubSubRequest) -> str:
        if not request.nodeIdentifier:
            raise stanzaError("bad-request", "nodeid-required")
        return str(request.nodeIdentifier)

    @staticmethod
    def _requireOwnJID(request: pubsub.PubSubRequest) -> JID:
        """
        @return: the subscriber JID of a subscribe request.
        @raise jabbererror.StanzaError: C{bad-request} with C{invalid-jid}
            if its bare JID is not the requester's (XEP-0060 6.1.3.1).
        """
        subscriber: JID = request.subscriber
        if request.sender is None or subscriber.userhostJID() != request.sender.userhostJID():
            raise stanzaError("bad-request", "invalid-jid")
        return subscriber

    # -- Wokkel IPubSubResource: discovery -----------------------------------

    def getConfigurationOptions(self) -> dict[str, dict[str, Any]]:
        """
        @return: the node options we store, as Wokkel field definitions (a
            new dict each time: Wokkel's form check writes into it).
        """
        return {
            ACCESS_MODEL: {
                "type": "list-single",
                "label": "Who may subscribe and retrieve items",
                "options": {"open": "Anyone"},
            },
            MAX_ITEMS: {"type": "text-single", "label": "Max # of items to persist"},
            PERSIST_ITEMS: {"type": "boolean", "label": "Persist items to storage"},
            DELIVER_PAYLOADS: {
                "type": "boolean",
                "label": "Deliver payloads with event notifications",
            },
        }

    def getInfo(
        self, requestor: JID, service: JID, nodeIdentifier: str
    ) -> defer.Deferred[dict[str, Any] | None]:
        """
        @return: for a node: type C{leaf} and its meta-data; L{None} for the
            service itself. Fails with C{item-not-found} for a missing node.
        """
        return self._run(self._getInfo(nodeIdentifier))

    async def _getInfo(self, nodeIdentifier: str) -> dict[str, Any] | None:
        if not nodeIdentifier:
            return None
        known = await self._backend.nodeMetaData(nodeIdentifier)
        metaData = [
            {"var": ACCESS_MODEL, "value": str(known.get(ACCESS_MODEL, "open"))},
            {"var": MAX_ITEMS, "value": str(known.get(MAX_ITEMS, ""))},
        ]
        return {"type": "leaf", "meta-data": metaData}

    def getNodes(
        self, requestor: JID, service: JID, nodeIdentifier: str
    ) -> defer.Deferred[list[str]]:
        """
        @return: all node identifiers for the service (disco#items); nothing
            below a node.
        """
        return self._run(self._getNodes(nodeIdentifier))

    async def _getNodes(self, nodeIdentifier: str) -> list[str]:
        if nodeIdentifier:
            return []
        return await self._backend.nodes()

    # -- verbs ---------------------------------------------------------------

    def publish(self, request: pubsub.PubSubRequest) -> defer.Deferred[domish.Element]:
        """
        Publish one item (owners only; the subscribers are notified).

        @return: the C{pubsub} result element naming the item id.
        """
        return self._run(self._publish(request))

    async def _publish(self, request: pubsub.PubSubRequest) -> domish.Element:
        sender = self._requireOwner(request, "publish")
        nodeIdentifier = self._requireNode(request)
        items = request.items or []
        if not items:
            raise stanzaError("bad-request", "item-required")
        if len(items) > 1:
            raise stanzaError("bad-request", "invalid-payload", text="publish one item at a time")
        item = items[0]
        payloads = [child for child in item.children if isinstance(child, domish.Element)]
        text = "".join(child for child in item.children if isinstance(child, str))
        if text.strip() or len(payloads) > 1:
            raise stanzaError("bad-request", "invalid-payload")
        if not payloads:
            raise stanzaError("bad-request", "payload-required")
        xml = payloads[0].toXml()
        if len(xml.encode("utf-8")) > self.maxPayloadBytes:
            raise stanzaError("not-acceptable", "payload-too-big")
        itemIdentifier = item.getAttribute("id") or secrets.token_hex(16)
        await self._backend.publish(nodeIdentifier, itemIdentifier, xml, requestor=sender)
        response = domish.Element((NS_PUBSUB, "pubsub"))
        published = response.addElement("publish")
        published["node"] = nodeIdentifier
        published.addElement("item")["id"] = itemIdentifier
        return response

    def retract(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Delete items (owners only; the subscribers are notified).
        """
        return self._run(self._retract(request))

    async def _retract(self, request: pubsub.PubSubRequest) -> None:
        sender = self._requireOwner(request, "retract")
        nodeIdentifier = self._requireNode(request)
        wanted = list(dict.fromkeys(request.itemIdentifiers or []))
        if not wanted:
            raise stanzaError("bad-request", "item-required")
        if len(wanted) > self.maxItemIdentifiers:
            raise stanzaError("policy-violation", type="modify", text="too many item ids")
        await self._backend.retract(nodeIdentifier, wanted, requestor=sender)

    def subscribe(self, request: pubsub.PubSubRequest) -> defer.Deferred[pubsub.Subscription]:
        """
        Subscribe the requestor's bare or full JID to a node. (The service
        sends the node's last item after the result.)

        @return: the new (or existing) subscription.
        """
        return self._run(self._subscribe(request))

    async def _subscribe(self, request: pubsub.PubSubRequest) -> pubsub.Subscription:
        nodeIdentifier = self._requireNode(request)
        subscriber = self._requireOwnJID(request)
        stored = await self._backend.subscribe(nodeIdentifier, subscriber.full())
        return toWokkelSubscription(stored)

    def unsubscribe(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Remove a subscription of the requestor's bare JID (or one of its full
        JIDs).
        """
        return self._run(self._unsubscribe(request))

    async def _unsubscribe(self, request: pubsub.PubSubRequest) -> None:
        nodeIdentifier = self._requireNode(request)
        subscriber: JID = request.subscriber
        if request.sender is None or subscriber.userhostJID() != request.sender.userhostJID():
            raise error.Forbidden(f"{request.sender} may not unsubscribe {subscriber}")
        await self._backend.unsubscribe(
            nodeIdentifier, subscriber.full(), request.subscriptionIdentifier or None
        )

    def subscriptions(
        self, request: pubsub.PubSubRequest
    ) -> defer.Deferred[list[pubsub.Subscription]]:
        """
        @return: the subscriptions of the requestor's bare JID and its full
            JIDs, on every node.
        """
        return self._run(self._subscriptions(request))

    async def _subscriptions(self, request: pubsub.PubSubRequest) -> list[pubsub.Subscription]:
        sender = self._sender(request)
        return [toWokkelSubscription(s) for s in await self._backend.subscriptionsOf(sender)]

    def items(self, request: pubsub.PubSubRequest) -> defer.Deferred[list[domish.Element]]:
        """
        @return: a node's items: all, those named, or the newest
            C{max_items}; newest first.
        """
        return self._run(self._items(request))

    async def _items(self, request: pubsub.PubSubRequest) -> list[domish.Element]:
        nodeIdentifier = self._requireNode(request)
        maxItems = request.maxItems
        if maxItems is not None and maxItems < 1:
            raise stanzaError("bad-request", text="max_items must be a positive integer")
        identifiers = list(dict.fromkeys(request.itemIdentifiers or [])) or None
        if identifiers is not None and len(identifiers) > self.maxItemIdentifiers:
            raise stanzaError("policy-violation", type="modify", text="too many item ids")
        stored = await self._backend.items(nodeIdentifier, identifiers, maxItems)
        return [itemElement(NS_PUBSUB, item.identifier, item.payload) for item in stored]

    def create(self, request: pubsub.PubSubRequest) -> defer.Deferred[str]:
        """
        Create a leaf node (owners only) with the default configuration, or
        the one submitted with the request.

        @return: the node identifier.
        """
        return self._run(self._create(request))

    async def _create(self, request: pubsub.PubSubRequest) -> str:
        sender = self._requireOwner(request, "create nodes")
        if not request.nodeIdentifier:
            raise stanzaError("not-acceptable", "nodeid-required")
        nodeIdentifier = str(request.nodeIdentifier)
        values = request.options.getValues() if request.options is not None else None
        await self._backend.createNode(nodeIdentifier, values, requestor=sender)
        return nodeIdentifier

    def default(self, request: pubsub.PubSubRequest) -> defer.Deferred[dict[str, object]]:
        """
        @return: the default configuration of a leaf node.
        """
        return self._run(self._default(request))

    async def _default(self, request: pubsub.PubSubRequest) -> dict[str, object]:
        if request.nodeType != "leaf":
            raise pubsub.Unsupported("collections")
        return dict(self._backend.defaultConfig)

    def configureGet(self, request: pubsub.PubSubRequest) -> defer.Deferred[dict[str, object]]:
        """
        @return: a node's configuration (owners only).
        """
        return self._run(self._configureGet(request))

    async def _configureGet(self, request: pubsub.PubSubRequest) -> dict[str, object]:
        sender = self._requireOwner(request, "configure nodes")
        nodeIdentifier = self._requireNode(request)
        config = await self._backend.nodeConfig(nodeIdentifier, requestor=sender)
        options = self.getConfigurationOptions()
        return {name: value for name, value in config.items() if name in options}

    def configureSet(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Change a node's configuration (owners only).
        """
        return self._run(self._configureSet(request))

    async def _configureSet(self, request: pubsub.PubSubRequest) -> None:
        sender = self._requireOwner(request, "configure nodes")
        nodeIdentifier = self._requireNode(request)
        await self._backend.configureNode(
            nodeIdentifier, request.options.getValues(), requestor=sender
        )

    def delete(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Delete a node (owners only; its subscribers are told).
        """
        return self._run(self._delete(request))

    async def _delete(self, request: pubsub.PubSubRequest) -> None:
        sender = self._requireOwner(request, "delete nodes")
        nodeIdentifier = self._requireNode(request)
        await self._backend.deleteNode(nodeIdentifier, requestor=sender)

    def optionsGet(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Subscription options are not supported.
        """
        return defer.fail(pubsub.Unsupported("subscription-options"))

    def optionsSet(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Subscription options are not supported.
        """
        return defer.fail(pubsub.Unsupported("subscription-options"))
