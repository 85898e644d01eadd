# -*- test-case-name: tests.test_pubsub -*-
"""
The XEP-0060 pub-sub resource of our node: Wokkel's L{IPubSubResource} over
an L{IPubSubStore}.

Only owners (the node's own domain and configured admins) publish, retract,
create, configure and delete; anyone may subscribe to and read a node (the
open access model is the only one). Storage raises the domain errors of
L{xmppnetgraph.error}; L{PubSubResource._errorMap} turns them into stanza
errors in one place.
"""

from __future__ import annotations

import secrets
from collections.abc import Coroutine, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error as jabbererror
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import disco, pubsub
from wokkel.iwokkel import IPubSubResource
from zope.interface import implementer

from xmppnetgraph import error
from xmppnetgraph.interfaces import IPubSubStore

if TYPE_CHECKING:
    from xmppnetgraph.pubsub.service import PubSubService
    from xmppnetgraph.store.pubsub import StoredItem, Subscription

_T = TypeVar("_T")

NS_PUBSUB = pubsub.NS_PUBSUB
NS_PUBSUB_EVENT = pubsub.NS_PUBSUB_EVENT
NS_PUBSUB_ERRORS = pubsub.NS_PUBSUB_ERRORS

ACCESS_MODEL = "pubsub#access_model"
MAX_ITEMS = "pubsub#max_items"
PERSIST_ITEMS = "pubsub#persist_items"
DELIVER_PAYLOADS = "pubsub#deliver_payloads"

#: The configuration a node gets when its creator gives none.
DEFAULT_NODE_CONFIG: Mapping[str, object] = MappingProxyType(
    {ACCESS_MODEL: "open", MAX_ITEMS: 10, PERSIST_ITEMS: True, DELIVER_PAYLOADS: True}
)

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


def _bare(entity: JID) -> JID:
    return entity.userhostJID()


@implementer(IPubSubResource)
class PubSubResource(pubsub.PubSubResource):  # type: ignore[misc]
    """
    A XEP-0060 service's nodes, items and subscriptions, kept in an
    L{IPubSubStore}.

    Requests arrive as Wokkel L{pubsub.PubSubRequest}s through the service
    (L{xmppnetgraph.pubsub.service.PubSubService}); each verb method returns
    a Deferred that fails with a L{jabbererror.StanzaError} only. The local
    API for our own publisher is L{publishLocal} and L{currentItems}.

    No attribute of this class is named after a request verb other than the
    verb methods themselves: the service calls C{getattr(resource, verb)}.

    @ivar serviceJID: the pub-sub service's JID (notifications come from it).
    @ivar owners: bare JIDs allowed to publish, retract, create, configure
        and delete.
    @ivar features: the supported features, without the C{pubsub#} prefix
        (a tuple: never appended to).
    @ivar notifier: the service that sends notifications (set by
        L{xmppnetgraph.pubsub.pubSubHandlers}); without it nothing is sent.
    """

    _log = Logger()

    discoIdentity = disco.DiscoIdentity("pubsub", "service", "xmppnetgraph publish-subscribe")

    #: domain error -> (stanza condition, error type, pubsub#errors condition)
    _errorMap: Mapping[type[Exception], tuple[str, str | None, str | None]] = MappingProxyType(
        {
            error.NodeNotFound: ("item-not-found", None, None),
            error.ItemNotFound: ("item-not-found", None, None),
            error.NodeExists: ("conflict", None, None),
            error.NotSubscribed: ("unexpected-request", "cancel", "not-subscribed"),
            error.TooManySubscriptions: ("policy-violation", "wait", "too-many-subscriptions"),
            error.Forbidden: ("forbidden", None, None),
            error.StorageFull: ("resource-constraint", "wait", None),
            error.StorageError: ("internal-server-error", None, None),
        }
    )

    def __init__(
        self,
        store: IPubSubStore,
        serviceJID: JID,
        owners: Iterable[JID | str],
        clock: IReactorTime,
        *,
        maxSubscriptionsPerDomain: int = 10,
        defaultConfig: Mapping[str, object] = DEFAULT_NODE_CONFIG,
        maxPayloadBytes: int = 1024 * 1024,
        maxItemsLimit: int = 1000,
        maxItemIdentifiers: int = 100,
        sendLastPublished: bool = True,
    ) -> None:
        """
        @param store: where nodes, items and subscriptions live.
        @param serviceJID: the JID of the pub-sub service.
        @param owners: JIDs (their bare JIDs count) with owner rights: the
            node's own domain and the configured admins.
        @param clock: schedules the last published item after a
            subscription's result.
        @param maxSubscriptionsPerDomain: subscriptions one remote domain
            may hold on one node.
        @param defaultConfig: configuration of nodes created without one.
        @param maxPayloadBytes: the largest payload accepted in a publish
            request (not enforced on L{publishLocal}).
        @param maxItemsLimit: the largest C{pubsub#max_items} accepted.
        @param maxItemIdentifiers: the most item ids one items request may
            name.
        @param sendLastPublished: send a new subscriber the node's newest
            item (XEP-0060 6.1.7, feature C{last-published}).
        """
        self.store = store
        self.serviceJID = serviceJID.userhostJID()
        self.owners = frozenset(_bare(JID(o) if isinstance(o, str) else o) for o in owners)
        self._clock = clock
        self.maxSubscriptionsPerDomain = maxSubscriptionsPerDomain
        self.defaultConfig: Mapping[str, object] = MappingProxyType(dict(defaultConfig))
        self.maxPayloadBytes = maxPayloadBytes
        self.maxItemsLimit = maxItemsLimit
        self.maxItemIdentifiers = maxItemIdentifiers
        self.sendLastPublished = sendLastPublished
        self.features: tuple[str, ...] = FEATURES + (
            ("last-published",) if sendLastPublished else ()
        )
        self.notifier: PubSubService | None = None

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
        for kind, (condition, errorType, pubsubCondition) in self._errorMap.items():
            if failure.check(kind):
                if condition == "internal-server-error":
                    self._log.failure("pub-sub storage failed", failure)
                return Failure(stanzaError(condition, pubsubCondition, errorType))
        self._log.failure("pub-sub request failed", failure)
        return Failure(stanzaError("internal-server-error"))

    def _requireOwner(self, request: pubsub.PubSubRequest) -> None:
        if request.sender is None or _bare(request.sender) not in self.owners:
            raise error.Forbidden(f"{request.sender} is not an owner of {self.serviceJID}")

    @staticmethod
    def _requireNode(request: pubsub.PubSubRequest) -> str:
        if not request.nodeIdentifier:
            raise stanzaError("bad-request", "nodeid-required")
        return str(request.nodeIdentifier)

    def _checkConfig(
        self, values: Mapping[str, object], base: Mapping[str, object]
    ) -> dict[str, object]:
        """
        @param values: submitted option values (typed by Wokkel's form
            check; unknown options already removed).
        @param base: the configuration the values change.
        @return: C{base} updated with C{values}.
        @raise jabbererror.StanzaError: C{not-acceptable} for a value we do
            not support.
        """
        config = dict(base)
        for name, value in values.items():
            if name == ACCESS_MODEL:
                if value != "open":
                    raise stanzaError("not-acceptable", "unsupported-access-model")
            elif name == MAX_ITEMS:
                try:
                    value = int(str(value))
                except ValueError:
                    raise stanzaError(
                        "not-acceptable", text=f"{MAX_ITEMS} must be a number"
                    ) from None
                if not 1 <= value <= self.maxItemsLimit:
                    raise stanzaError(
                        "not-acceptable", text=f"{MAX_ITEMS} must be 1 to {self.maxItemsLimit}"
                    )
            elif name == PERSIST_ITEMS:
                if value is not True:
                    raise stanzaError("not-acceptable", text="only persistent nodes are supported")
            elif name == DELIVER_PAYLOADS:
                value = bool(value)
            else:
                continue
            config[name] = value
        return config

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
        config = await self.store.nodeConfig(nodeIdentifier)
        metaData = [
            {"var": ACCESS_MODEL, "value": str(config.get(ACCESS_MODEL, "open"))},
            {"var": MAX_ITEMS, "value": str(config.get(MAX_ITEMS, ""))},
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
        return sorted(await self.store.nodes())

    # -- verbs ---------------------------------------------------------------

    def publish(self, request: pubsub.PubSubRequest) -> defer.Deferred[domish.Element]:
        """
        Publish one item (owners only), then notify the subscribers.

        @return: the C{pubsub} result element naming the item id.
        """
        return self._run(self._publish(request))

    async def _publish(self, request: pubsub.PubSubRequest) -> domish.Element:
        self._requireOwner(request)
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
        payload = payloads[0]
        xml = payload.toXml()
        if len(xml.encode("utf-8")) > self.maxPayloadBytes:
            raise stanzaError("not-acceptable", "payload-too-big")
        itemIdentifier = item.getAttribute("id") or secrets.token_hex(16)
        config = await self.store.nodeConfig(nodeIdentifier)
        await self._storeAndNotify(
            nodeIdentifier, itemIdentifier, xml, _bare(request.sender), config
        )
        response = domish.Element((NS_PUBSUB, "pubsub"))
        published = response.addElement("publish")
        published["node"] = nodeIdentifier
        published.addElement("item")["id"] = itemIdentifier
        return response

    def retract(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Delete items (owners only) and notify the subscribers of each.
        """
        return self._run(self._retract(request))

    async def _retract(self, request: pubsub.PubSubRequest) -> None:
        self._requireOwner(request)
        nodeIdentifier = self._requireNode(request)
        wanted = list(dict.fromkeys(request.itemIdentifiers or []))
        if not wanted:
            raise stanzaError("bad-request", "item-required")
        if len(wanted) > self.maxItemIdentifiers:
            raise stanzaError("policy-violation", type="modify", text="too many item ids")
        await self.store.nodeConfig(nodeIdentifier)
        deleted = await self.store.deleteItems(nodeIdentifier, wanted)
        if deleted:
            subscriptions = await self.store.subscriptions(nodeIdentifier)
            if self.notifier is not None and subscriptions:
                self.notifier.notifyRetract(
                    self.serviceJID,
                    nodeIdentifier,
                    [JID(s.subscriber) for s in subscriptions],
                    list(deleted),
                )
        missing = set(wanted) - set(deleted)
        if missing:
            raise error.ItemNotFound(", ".join(sorted(missing)))

    def subscribe(self, request: pubsub.PubSubRequest) -> defer.Deferred[pubsub.Subscription]:
        """
        Subscribe the requestor's bare or full JID to a node.

        @return: the new (or existing) subscription.
        """
        return self._run(self._subscribe(request))

    async def _subscribe(self, request: pubsub.PubSubRequest) -> pubsub.Subscription:
        nodeIdentifier = self._requireNode(request)
        subscriber: JID = request.subscriber
        if request.sender is None or _bare(subscriber) != _bare(request.sender):
            raise stanzaError("bad-request", "invalid-jid")
        await self.store.nodeConfig(nodeIdentifier)
        stored = await self.store.subscribe(
            nodeIdentifier, subscriber.full(), self.maxSubscriptionsPerDomain
        )
        result = self._toWokkel(stored)
        if self.sendLastPublished:
            self._clock.callLater(0, self._sendLastItem, nodeIdentifier, result.subscriber)
        return result

    def unsubscribe(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Remove a subscription of the requestor's bare JID (or one of its full
        JIDs).
        """
        return self._run(self._unsubscribe(request))

    async def _unsubscribe(self, request: pubsub.PubSubRequest) -> None:
        nodeIdentifier = self._requireNode(request)
        subscriber: JID = request.subscriber
        if request.sender is None or _bare(subscriber) != _bare(request.sender):
            raise error.Forbidden(f"{request.sender} may not unsubscribe {subscriber}")
        await self.store.nodeConfig(nodeIdentifier)
        if request.subscriptionIdentifier:
            subscriptions = await self.store.subscriptions(nodeIdentifier)
            mine = [s for s in subscriptions if s.subscriber == subscriber.full()]
            if not mine:
                raise error.NotSubscribed(subscriber.full())
            if all(s.subscriptionIdentifier != request.subscriptionIdentifier for s in mine):
                raise stanzaError("not-acceptable", "invalid-subid")
        await self.store.unsubscribe(nodeIdentifier, subscriber.full())

    def subscriptions(
        self, request: pubsub.PubSubRequest
    ) -> defer.Deferred[list[pubsub.Subscription]]:
        """
        @return: the subscriptions of the requestor's bare JID and its full
            JIDs, on every node.
        """
        return self._run(self._subscriptions(request))

    async def _subscriptions(self, request: pubsub.PubSubRequest) -> list[pubsub.Subscription]:
        if request.sender is None:
            raise stanzaError("bad-request")
        requestor = _bare(request.sender)
        result = []
        for nodeIdentifier in sorted(await self.store.nodes()):
            try:
                subscriptions = await self.store.subscriptions(nodeIdentifier)
            except error.NodeNotFound:
                continue
            for stored in subscriptions:
                wokkelSubscription = self._toWokkel(stored)
                if _bare(wokkelSubscription.subscriber) == requestor:
                    result.append(wokkelSubscription)
        return result

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
        await self.store.nodeConfig(nodeIdentifier)
        stored = await self.store.items(nodeIdentifier, identifiers, maxItems)
        return [self._itemElement(NS_PUBSUB, item.identifier, item.payload) for item in stored]

    def create(self, request: pubsub.PubSubRequest) -> defer.Deferred[str]:
        """
        Create a leaf node (owners only) with the default configuration, or
        the one submitted with the request.

        @return: the node identifier.
        """
        return self._run(self._create(request))

    async def _create(self, request: pubsub.PubSubRequest) -> str:
        self._requireOwner(request)
        if not request.nodeIdentifier:
            raise stanzaError("not-acceptable", "nodeid-required")
        config = dict(self.defaultConfig)
        if request.options is not None:
            config = self._checkConfig(request.options.getValues(), config)
        await self.store.createNode(request.nodeIdentifier, config)
        return str(request.nodeIdentifier)

    def default(self, request: pubsub.PubSubRequest) -> defer.Deferred[dict[str, object]]:
        """
        @return: the default configuration of a leaf node.
        """
        return self._run(self._default(request))

    async def _default(self, request: pubsub.PubSubRequest) -> dict[str, object]:
        if request.nodeType != "leaf":
            raise pubsub.Unsupported("collections")
        return dict(self.defaultConfig)

    def configureGet(self, request: pubsub.PubSubRequest) -> defer.Deferred[dict[str, object]]:
        """
        @return: a node's configuration (owners only).
        """
        return self._run(self._configureGet(request))

    async def _configureGet(self, request: pubsub.PubSubRequest) -> dict[str, object]:
        self._requireOwner(request)
        nodeIdentifier = self._requireNode(request)
        config = await self.store.nodeConfig(nodeIdentifier)
        options = self.getConfigurationOptions()
        return {name: value for name, value in config.items() if name in options}

    def configureSet(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Change a node's configuration (owners only).
        """
        return self._run(self._configureSet(request))

    async def _configureSet(self, request: pubsub.PubSubRequest) -> None:
        self._requireOwner(request)
        nodeIdentifier = self._requireNode(request)
        config = await self.store.nodeConfig(nodeIdentifier)
        await self.store.setNodeConfig(
            nodeIdentifier, self._checkConfig(request.options.getValues(), config)
        )

    def delete(self, request: pubsub.PubSubRequest) -> defer.Deferred[None]:
        """
        Delete a node (owners only) and tell its subscribers.
        """
        return self._run(self._delete(request))

    async def _delete(self, request: pubsub.PubSubRequest) -> None:
        self._requireOwner(request)
        nodeIdentifier = self._requireNode(request)
        await self.store.nodeConfig(nodeIdentifier)
        subscriptions = await self.store.subscriptions(nodeIdentifier)
        await self.store.deleteNode(nodeIdentifier)
        if self.notifier is not None and subscriptions:
            self.notifier.notifyDelete(
                self.serviceJID, nodeIdentifier, [JID(s.subscriber) for s in subscriptions]
            )

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

    # -- local API -----------------------------------------------------------

    async def publishLocal(
        self,
        nodeIdentifier: str,
        itemIdentifier: str,
        payload: domish.Element | str,
        config: Mapping[str, object] | None = None,
        publisher: JID | None = None,
    ) -> None:
        """
        Store an item published by this node itself and notify the node's
        subscribers; create the node first if it does not exist.

        @param payload: the item's payload element, or its serialization
            (which the caller may have at hand already).
        @param config: options (over L{defaultConfig}) for the node if it
            has to be created; ignored for an existing node.
        @param publisher: recorded as the item's publisher (default: the
            service JID).
        @raise xmppnetgraph.error.XmppNetGraphError: storage failures, as
            the store raises them.
        """
        try:
            nodeConfig = await self.store.nodeConfig(nodeIdentifier)
        except error.NodeNotFound:
            nodeConfig = {**self.defaultConfig, **(config or {})}
            try:
                await self.store.createNode(nodeIdentifier, nodeConfig)
            except error.NodeExists:
                nodeConfig = await self.store.nodeConfig(nodeIdentifier)
        await self._storeAndNotify(
            nodeIdentifier,
            itemIdentifier,
            payload if isinstance(payload, str) else payload.toXml(),
            publisher or self.serviceJID,
            nodeConfig,
        )

    async def currentItems(
        self, nodeIdentifier: str, maxItems: int | None = None
    ) -> list[StoredItem]:
        """
        @return: the node's stored items, newest first; none if the node
            does not exist.
        @raise xmppnetgraph.error.XmppNetGraphError: other storage failures.
        """
        try:
            return await self.store.items(nodeIdentifier, None, maxItems)
        except error.NodeNotFound:
            return []

    # -- storing and notifying ----------------------------------------------

    async def _storeAndNotify(
        self,
        nodeIdentifier: str,
        itemIdentifier: str,
        xml: str,
        publisher: JID,
        config: Mapping[str, object],
    ) -> None:
        maxItems = int(str(config.get(MAX_ITEMS, self.defaultConfig.get(MAX_ITEMS, 1))))
        await self.store.storeItem(nodeIdentifier, itemIdentifier, xml, publisher.full(), maxItems)
        subscriptions = await self.store.subscriptions(nodeIdentifier)
        if self.notifier is None or not subscriptions:
            return
        raw = domish.SerializedXML(xml) if config.get(DELIVER_PAYLOADS, True) else None
        notifications = []
        for stored in subscriptions:
            subscription = self._toWokkel(stored)
            item = self._itemElement(NS_PUBSUB_EVENT, itemIdentifier, raw)
            notifications.append((subscription.subscriber, [subscription], [item]))
        self.notifier.notifyPublish(self.serviceJID, nodeIdentifier, notifications)

    def _sendLastItem(self, nodeIdentifier: str, subscriber: JID) -> defer.Deferred[None]:
        d = defer.Deferred.fromCoroutine(self._lastItem(nodeIdentifier, subscriber))
        d.addErrback(self._logLastItemFailure, nodeIdentifier, subscriber)
        return d

    def _logLastItemFailure(self, failure: Failure, nodeIdentifier: str, subscriber: JID) -> None:
        self._log.failure(
            "sending the last item of {node} to {subscriber} failed",
            failure,
            node=nodeIdentifier,
            subscriber=subscriber.full(),
        )

    async def _lastItem(self, nodeIdentifier: str, subscriber: JID) -> None:
        if self.notifier is None:
            return
        config = await self.store.nodeConfig(nodeIdentifier)
        stored = await self.store.items(nodeIdentifier, None, 1)
        if not stored:
            return
        last = stored[0]
        withPayload = bool(config.get(DELIVER_PAYLOADS, True))
        item = self._itemElement(
            NS_PUBSUB_EVENT, last.identifier, last.payload if withPayload else None
        )
        self.notifier.notifyLastItem(
            self.serviceJID, nodeIdentifier, subscriber, item, last.published
        )

    @staticmethod
    def _itemElement(
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

    def _toWokkel(self, stored: Subscription) -> pubsub.Subscription:
        return pubsub.Subscription(
            stored.nodeIdentifier,
            JID(stored.subscriber),
            "subscribed",
            subscriptionIdentifier=stored.subscriptionIdentifier,
        )
