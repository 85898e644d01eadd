# -*- test-case-name: tests.test_pubsub_backend -*-
"""
The pub-sub backend: what a pub-sub service of ours does, whatever the
protocol that asks (as idavoll's C{BackendService} sits between its
storage and Wokkel).

L{PubSubBackend} decides who may do what (owners publish, retract,
create, configure and delete; anyone subscribes and reads: the open access
model is the only one), checks node configurations, and keeps its state in
an L{IPubSubStore}: each change in one transaction (a publish creates a
missing node, stores, trims and reads the subscriptions at once). Once a
change is committed it is announced on the node's change feed, with what a
notifier needs (the subscriptions, whether payloads are delivered); the
XMPP notifier (L{xmppnetgraph.pubsub.service.PubSubService}) and later the
web layer's server-sent events observe it there. Nothing is announced for
a change that failed.

Failures are the errors of L{xmppnetgraph.error}; the protocol edges map
them (L{xmppnetgraph.pubsub.resource.PubSubResource._errorMap} for XMPP).
"""

from __future__ import annotations

import secrets
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from zope.interface import implementer

from xmppnetgraph import error
from xmppnetgraph.interfaces import IChangeFeed, IPubSubBackend, IPubSubStore
from xmppnetgraph.model import (
    ChangeEvent,
    ItemPublished,
    ItemsRetracted,
    NodeConfigured,
    NodeCreated,
    NodeDeleted,
    StoredItem,
    Subscription,
    SubscriptionChanged,
)
from xmppnetgraph.names import parseJID

_T = TypeVar("_T")

ACCESS_MODEL = "pubsub#access_model"
MAX_ITEMS = "pubsub#max_items"
PERSIST_ITEMS = "pubsub#persist_items"
DELIVER_PAYLOADS = "pubsub#deliver_payloads"

#: The configuration a node gets when its creator gives none.
DEFAULT_NODE_CONFIG: Mapping[str, object] = MappingProxyType(
    {ACCESS_MODEL: "open", MAX_ITEMS: 10, PERSIST_ITEMS: True, DELIVER_PAYLOADS: True}
)


def bareJID(entity: str) -> str | None:
    """
    @param entity: a JID.
    @return: its bare JID, normalized (C{User@Example.ORG/r} gives
        C{user@example.org}), or L{None} if C{entity} is not a JID.
    """
    try:
        return str(parseJID(entity).userhost())
    except ValueError:
        return None


def _requireBare(entity: str, what: str) -> str:
    """
    @return: the bare JID of C{entity}.
    @raise ValueError: if it is not a JID.
    """
    bare = bareJID(entity)
    if bare is None:
        raise ValueError(f"{what} {entity!r} is not a JID")
    return bare


@implementer(IPubSubBackend)
class PubSubBackend:
    """
    L{IPubSubBackend} over an L{IPubSubStore}, announcing on an
    L{IChangeFeed}.

    @ivar store: where the nodes, items and subscriptions are kept.
    @ivar serviceJID: the service's bare JID (the events name it).
    @ivar owners: the bare JIDs with owner rights.
    @ivar defaultConfig: the configuration of a node created without one.
    @ivar maxSubscriptionsPerDomain: subscriptions one domain may hold on
        one node.
    @ivar maxItemsLimit: the largest C{pubsub#max_items} accepted.
    """

    def __init__(
        self,
        store: IPubSubStore,
        serviceJID: str,
        feed: IChangeFeed,
        *,
        owners: Iterable[str] = (),
        defaultConfig: Mapping[str, object] = DEFAULT_NODE_CONFIG,
        maxSubscriptionsPerDomain: int = 10,
        maxItemsLimit: int = 1000,
    ) -> None:
        """
        @param store: where nodes, items and subscriptions live.
        @param serviceJID: the pub-sub service (a domain JID).
        @param feed: where the committed changes are announced.
        @param owners: JIDs (their bare JIDs count) with owner rights: the
            node's own domain and the configured admins.
        @param defaultConfig: configuration of nodes created without one.
        @param maxSubscriptionsPerDomain: subscriptions one remote domain
            may hold on one node.
        @param maxItemsLimit: the largest C{pubsub#max_items} accepted.
        @raise ValueError: if C{serviceJID} or an owner is not a JID.
        """
        self.store = store
        self.serviceJID = _requireBare(serviceJID, "service")
        self._feed = feed
        self.owners = frozenset(_requireBare(owner, "owner") for owner in owners)
        self.defaultConfig: Mapping[str, object] = MappingProxyType(dict(defaultConfig))
        self.maxSubscriptionsPerDomain = maxSubscriptionsPerDomain
        self.maxItemsLimit = maxItemsLimit

    # -- plumbing ------------------------------------------------------------

    @staticmethod
    def _run(coroutine: Coroutine[Any, Any, _T]) -> Deferred[_T]:
        """
        @return: a Deferred for C{coroutine}.
        """
        return Deferred.fromCoroutine(coroutine)

    def _emit(self, event: ChangeEvent) -> None:
        """
        Announce a committed change (the feed never raises because of an
        observer).
        """
        self._feed.emit(event)

    def isOwner(self, requestor: str | None) -> bool:
        """
        See L{IPubSubBackend.isOwner}: the service itself (L{None}) and the
        owners.
        """
        return requestor is None or bareJID(requestor) in self.owners

    def _requireOwner(self, requestor: str | None, action: str, nodeIdentifier: str) -> None:
        """
        @raise error.Forbidden: if C{requestor} is not an owner.
        """
        if not self.isOwner(requestor):
            raise error.Forbidden(
                f"{requestor} may not {action} {nodeIdentifier!r} on {self.serviceJID}"
            )

    def _publisher(self, requestor: str | None) -> str:
        """
        @return: the JID recorded as an item's publisher.
        """
        if requestor is None:
            return self.serviceJID
        return bareJID(requestor) or requestor

    def _maxItemsOf(self, config: Mapping[str, object]) -> int:
        """
        @return: how many items a node with C{config} keeps (the default
            configuration's number when C{config} has none or a bad one).
            Called in a database thread: it only computes.
        """
        for source in (config, self.defaultConfig):
            try:
                return int(str(source[MAX_ITEMS]))
            except (KeyError, ValueError):
                continue
        return 1

    def _checkConfig(
        self, values: Mapping[str, object], base: Mapping[str, object]
    ) -> dict[str, object]:
        """
        @param values: option values to set (options we do not store are
            ignored).
        @param base: the configuration they change.
        @return: C{base} changed by C{values}.
        @raise error.UnsupportedAccessModel: for an access model other than
            C{open}.
        @raise error.BadNodeConfiguration: for another value we do not
            support (the message says which).
        """
        config = dict(base)
        for name, value in values.items():
            if name == ACCESS_MODEL:
                if value != "open":
                    raise error.UnsupportedAccessModel(f"{ACCESS_MODEL} {value!r} is not supported")
            elif name == MAX_ITEMS:
                try:
                    value = int(str(value))
                except ValueError:
                    raise error.BadNodeConfiguration(f"{MAX_ITEMS} must be a number") from None
                if not 1 <= value <= self.maxItemsLimit:
                    raise error.BadNodeConfiguration(
                        f"{MAX_ITEMS} must be 1 to {self.maxItemsLimit}"
                    )
            elif name == PERSIST_ITEMS:
                if value is not True:
                    raise error.BadNodeConfiguration("only persistent nodes are supported")
            elif name == DELIVER_PAYLOADS:
                value = bool(value)
            else:
                continue
            config[name] = value
        return config

    # -- nodes ---------------------------------------------------------------

    def nodes(self) -> Deferred[list[str]]:
        """
        See L{IPubSubBackend.nodes}.
        """
        return self._run(self._nodes())

    async def _nodes(self) -> list[str]:
        return sorted(await self.store.nodes())

    def nodeMetaData(self, nodeIdentifier: str) -> Deferred[dict[str, object]]:
        """
        See L{IPubSubBackend.nodeMetaData}.

        @return: C{pubsub#access_model}, C{pubsub#deliver_payloads}, and
            C{pubsub#max_items} if the node has one.
        """
        return self._run(self._nodeMetaData(nodeIdentifier))

    async def _nodeMetaData(self, nodeIdentifier: str) -> dict[str, object]:
        config = await self.store.nodeConfig(nodeIdentifier)
        metaData: dict[str, object] = {
            ACCESS_MODEL: config.get(ACCESS_MODEL, "open"),
            DELIVER_PAYLOADS: bool(config.get(DELIVER_PAYLOADS, True)),
        }
        if MAX_ITEMS in config:
            metaData[MAX_ITEMS] = config[MAX_ITEMS]
        return metaData

    def nodeConfig(
        self, nodeIdentifier: str, requestor: str | None = None
    ) -> Deferred[dict[str, object]]:
        """
        See L{IPubSubBackend.nodeConfig}.
        """
        return self._run(self._nodeConfig(nodeIdentifier, requestor))

    async def _nodeConfig(self, nodeIdentifier: str, requestor: str | None) -> dict[str, object]:
        self._requireOwner(requestor, "read the configuration of", nodeIdentifier)
        return await self.store.nodeConfig(nodeIdentifier)

    def createNode(
        self,
        nodeIdentifier: str,
        values: Mapping[str, object] | None = None,
        requestor: str | None = None,
    ) -> Deferred[dict[str, object]]:
        """
        See L{IPubSubBackend.createNode}.

        @raise error.NodeExists: (in the Deferred) if the node exists.
        """
        return self._run(self._createNode(nodeIdentifier, values, requestor))

    async def _createNode(
        self, nodeIdentifier: str, values: Mapping[str, object] | None, requestor: str | None
    ) -> dict[str, object]:
        self._requireOwner(requestor, "create", nodeIdentifier)
        config = self._checkConfig(values or {}, self.defaultConfig)
        await self.store.createNode(nodeIdentifier, config)
        self._emit(NodeCreated(self.serviceJID, nodeIdentifier, MappingProxyType(dict(config))))
        return config

    def ensureNode(
        self,
        nodeIdentifier: str,
        values: Mapping[str, object] | None = None,
        requestor: str | None = None,
    ) -> Deferred[bool]:
        """
        See L{IPubSubBackend.ensureNode}.
        """
        return self._run(self._ensureNode(nodeIdentifier, values, requestor))

    async def _ensureNode(
        self, nodeIdentifier: str, values: Mapping[str, object] | None, requestor: str | None
    ) -> bool:
        try:
            await self._createNode(nodeIdentifier, values, requestor)
        except error.NodeExists:
            return False
        return True

    def configureNode(
        self, nodeIdentifier: str, values: Mapping[str, object], requestor: str | None = None
    ) -> Deferred[dict[str, object]]:
        """
        See L{IPubSubBackend.configureNode}. Values that change nothing
        store (and announce) nothing.
        """
        return self._run(self._configureNode(nodeIdentifier, values, requestor))

    async def _configureNode(
        self, nodeIdentifier: str, values: Mapping[str, object], requestor: str | None
    ) -> dict[str, object]:
        self._requireOwner(requestor, "configure", nodeIdentifier)
        config = await self.store.nodeConfig(nodeIdentifier)
        changed = self._checkConfig(values, config)
        if changed != config:
            await self.store.setNodeConfig(nodeIdentifier, changed)
            self._emit(
                NodeConfigured(self.serviceJID, nodeIdentifier, MappingProxyType(dict(changed)))
            )
        return changed

    def deleteNode(self, nodeIdentifier: str, requestor: str | None = None) -> Deferred[None]:
        """
        See L{IPubSubBackend.deleteNode}: announces L{NodeDeleted}, then
        the end of each subscription.
        """
        return self._run(self._deleteNode(nodeIdentifier, requestor))

    async def _deleteNode(self, nodeIdentifier: str, requestor: str | None) -> None:
        self._requireOwner(requestor, "delete", nodeIdentifier)
        subscriptions = tuple(await self.store.deleteNode(nodeIdentifier))
        self._emit(NodeDeleted(self.serviceJID, nodeIdentifier, subscriptions))
        for subscription in subscriptions:
            self._emit(
                SubscriptionChanged(
                    self.serviceJID, nodeIdentifier, subscription.subscriber, subscribed=False
                )
            )

    # -- items ---------------------------------------------------------------

    def publish(
        self,
        nodeIdentifier: str,
        itemIdentifier: str,
        payload: str,
        requestor: str | None = None,
        createConfig: Mapping[str, object] | None = None,
    ) -> Deferred[StoredItem]:
        """
        See L{IPubSubBackend.publish}: one store transaction, then
        L{NodeCreated} (if it created the node) and L{ItemPublished}.
        C{createConfig} is checked, but ignored for a node that exists.

        @raise error.NodeNotFound: (in the Deferred) if the node does not
            exist and C{createConfig} is L{None}.
        """
        return self._run(
            self._publish(nodeIdentifier, itemIdentifier, payload, requestor, createConfig)
        )

    async def _publish(
        self,
        nodeIdentifier: str,
        itemIdentifier: str,
        payload: str,
        requestor: str | None,
        createConfig: Mapping[str, object] | None,
    ) -> StoredItem:
        self._requireOwner(requestor, "publish to", nodeIdentifier)
        create = None
        if createConfig is not None:
            create = self._checkConfig(createConfig, self.defaultConfig)
        publication = await self.store.publishItem(
            nodeIdentifier,
            itemIdentifier,
            payload,
            self._publisher(requestor),
            self._maxItemsOf,
            create,
        )
        config = publication.config
        if publication.created:
            self._emit(NodeCreated(self.serviceJID, nodeIdentifier, MappingProxyType(dict(config))))
        self._emit(
            ItemPublished(
                self.serviceJID,
                nodeIdentifier,
                publication.item,
                publication.subscriptions,
                deliverPayload=bool(config.get(DELIVER_PAYLOADS, True)),
            )
        )
        return publication.item

    def retract(
        self, nodeIdentifier: str, itemIdentifiers: Sequence[str], requestor: str | None = None
    ) -> Deferred[list[str]]:
        """
        See L{IPubSubBackend.retract}: announces L{ItemsRetracted} when
        any item was deleted.

        @raise error.ItemNotFound: (in the Deferred) naming the ids that
            did not exist, after deleting the others.
        """
        return self._run(self._retract(nodeIdentifier, itemIdentifiers, requestor))

    async def _retract(
        self, nodeIdentifier: str, itemIdentifiers: Sequence[str], requestor: str | None
    ) -> list[str]:
        self._requireOwner(requestor, "retract from", nodeIdentifier)
        wanted = list(dict.fromkeys(itemIdentifiers))
        retraction = await self.store.retractItems(nodeIdentifier, wanted)
        deleted = retraction.itemIdentifiers
        if deleted:
            self._emit(
                ItemsRetracted(self.serviceJID, nodeIdentifier, deleted, retraction.subscriptions)
            )
        missing = set(wanted) - set(deleted)
        if missing:
            raise error.ItemNotFound(", ".join(sorted(missing)))
        return list(deleted)

    def items(
        self,
        nodeIdentifier: str,
        itemIdentifiers: Sequence[str] | None = None,
        maxItems: int | None = None,
    ) -> Deferred[list[StoredItem]]:
        """
        See L{IPubSubBackend.items}.
        """
        return self.store.items(nodeIdentifier, itemIdentifiers, maxItems)

    def currentItems(
        self, nodeIdentifier: str, maxItems: int | None = None
    ) -> Deferred[list[StoredItem]]:
        """
        See L{IPubSubBackend.currentItems}.
        """
        return self._run(self._currentItems(nodeIdentifier, maxItems))

    async def _currentItems(self, nodeIdentifier: str, maxItems: int | None) -> list[StoredItem]:
        try:
            return await self.store.items(nodeIdentifier, None, maxItems)
        except error.NodeNotFound:
            return []

    # -- subscriptions -------------------------------------------------------

    def subscribe(self, nodeIdentifier: str, subscriber: str) -> Deferred[Subscription]:
        """
        See L{IPubSubBackend.subscribe}: announces L{SubscriptionChanged}
        for a new subscription only.

        @raise error.TooManySubscriptions: (in the Deferred) if the
            subscriber's domain has L{maxSubscriptionsPerDomain} already.
        """
        return self._run(self._subscribe(nodeIdentifier, subscriber))

    async def _subscribe(self, nodeIdentifier: str, subscriber: str) -> Subscription:
        fresh = secrets.token_hex(16)
        subscription = await self.store.subscribe(
            nodeIdentifier, subscriber, self.maxSubscriptionsPerDomain, fresh
        )
        if subscription.subscriptionIdentifier == fresh:
            self._emit(
                SubscriptionChanged(self.serviceJID, nodeIdentifier, subscriber, subscribed=True)
            )
        return subscription

    def unsubscribe(
        self, nodeIdentifier: str, subscriber: str, subscriptionIdentifier: str | None = None
    ) -> Deferred[None]:
        """
        See L{IPubSubBackend.unsubscribe}.

        @raise error.NotSubscribed: (in the Deferred) if C{subscriber} has
            no subscription to the node.
        @raise error.InvalidSubscriptionId: (in the Deferred) if its
            subscription has another id.
        """
        return self._run(self._unsubscribe(nodeIdentifier, subscriber, subscriptionIdentifier))

    async def _unsubscribe(
        self, nodeIdentifier: str, subscriber: str, subscriptionIdentifier: str | None
    ) -> None:
        if subscriptionIdentifier:
            mine = [
                s
                for s in await self.store.subscriptions(nodeIdentifier)
                if s.subscriber == subscriber
            ]
            if not mine:
                raise error.NotSubscribed(f"{subscriber} is not subscribed to {nodeIdentifier!r}")
            if all(s.subscriptionIdentifier != subscriptionIdentifier for s in mine):
                raise error.InvalidSubscriptionId(
                    f"{subscriptionIdentifier!r} is not the subscription of {subscriber}"
                )
        await self.store.unsubscribe(nodeIdentifier, subscriber)
        self._emit(
            SubscriptionChanged(self.serviceJID, nodeIdentifier, subscriber, subscribed=False)
        )

    def subscriptions(
        self, nodeIdentifier: str, requestor: str | None = None
    ) -> Deferred[list[Subscription]]:
        """
        See L{IPubSubBackend.subscriptions}.
        """
        return self._run(self._subscriptions(nodeIdentifier, requestor))

    async def _subscriptions(
        self, nodeIdentifier: str, requestor: str | None
    ) -> list[Subscription]:
        self._requireOwner(requestor, "list the subscriptions of", nodeIdentifier)
        return await self.store.subscriptions(nodeIdentifier)

    def subscriptionsOf(self, entity: str) -> Deferred[list[Subscription]]:
        """
        See L{IPubSubBackend.subscriptionsOf}.
        """
        return self._run(self._subscriptionsOf(entity))

    async def _subscriptionsOf(self, entity: str) -> list[Subscription]:
        wanted = bareJID(entity)
        if wanted is None:
            return []
        found: list[Subscription] = []
        for nodeIdentifier in sorted(await self.store.nodes()):
            try:
                subscriptions = await self.store.subscriptions(nodeIdentifier)
            except error.NodeNotFound:
                continue
            found.extend(s for s in subscriptions if bareJID(s.subscriber) == wanted)
        return found
