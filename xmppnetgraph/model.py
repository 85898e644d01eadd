# -*- test-case-name: tests.test_feed -*-
"""
The values the node's modules hand each other: links, pub-sub items and
subscriptions, consent answers, what we publish, and the change events of the node's one
L{change feed<xmppnetgraph.feed.ChangeFeed>}.

Everything here is a plain value (frozen attrs, except the mutable counters
of a live L{Link}); the contracts that use them are in
L{xmppnetgraph.interfaces}. Nothing here imports an implementation module.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Literal

import attrs

Direction = Literal["incoming", "outgoing"]
AuthMethod = Literal["sasl-external", "dialback"]

_linkIds = itertools.count(1)


@attrs.define(eq=False)
class Link:
    """
    One authenticated s2s stream between a local and a remote domain.

    @ivar domain: the remote domain.
    @ivar localDomain: our domain on this stream.
    @ivar direction: C{"incoming"} (the peer connected to us) or
        C{"outgoing"}.
    @ivar auth: how the peer was authenticated.
    @ivar tls: the TLS version (C{"TLSv1.3"}), or L{None} for plaintext.
    @ivar certValid: whether the peer's certificate is valid for C{domain}.
    @ivar since: when the stream was authenticated (seconds since the epoch).
    @ivar lastActivity: when a stanza last crossed it.
    @ivar stanzasIn: stanzas received on it.
    @ivar stanzasOut: stanzas sent on it.
    @ivar id: unique among the links of this process.
    """

    domain: str
    localDomain: str
    direction: Direction
    auth: AuthMethod
    tls: str | None
    certValid: bool
    since: float
    lastActivity: float
    stanzasIn: int = 0
    stanzasOut: int = 0
    id: int = attrs.field(factory=lambda: next(_linkIds))

    def touch(self, now: float, *, incoming: bool) -> None:
        """
        Count one stanza crossing the link at C{now}.
        """
        self.lastActivity = now
        if incoming:
            self.stanzasIn += 1
        else:
            self.stanzasOut += 1


@attrs.frozen
class StoredItem:
    """
    One published pub-sub item.

    @ivar identifier: the item id.
    @ivar payload: the item's payload element, serialized XML.
    @ivar publisher: the JID that published it.
    @ivar published: when (seconds since the epoch).
    """

    identifier: str
    payload: str
    publisher: str
    published: float


@attrs.frozen
class Subscription:
    """
    One subscription of a JID to a pub-sub node.

    @ivar nodeIdentifier: the node.
    @ivar subscriber: the subscribed JID (bare or full), as given.
    @ivar subscriptionIdentifier: its XEP-0060 subscription id.
    @ivar created: when it was made (seconds since the epoch).
    """

    nodeIdentifier: str
    subscriber: str
    subscriptionIdentifier: str
    created: float


@attrs.frozen
class Publication:
    """
    What one publish changed, read in the transaction that stored it.

    @ivar item: the item as stored.
    @ivar config: the node's configuration.
    @ivar created: whether the publish created the node.
    @ivar subscriptions: the node's subscriptions, oldest first.
    """

    item: StoredItem
    config: Mapping[str, object]
    created: bool
    subscriptions: tuple[Subscription, ...]


@attrs.frozen
class Retraction:
    """
    What one retraction changed, read in the transaction that deleted the
    items.

    @ivar itemIdentifiers: the ids that existed and were deleted, in the
        order asked.
    @ivar subscriptions: the node's subscriptions, oldest first.
    """

    itemIdentifiers: tuple[str, ...]
    subscriptions: tuple[Subscription, ...]


@attrs.frozen
class ConsentState:
    """
    What we know about one peer's consent, for the web API.

    @ivar consents: whether the peer may be named: the last answer, C{True}
        for an allowlisted peer, or L{None} if no answer has arrived yet.
    @ivar checkedAt: when that answer arrived (seconds since the epoch), or
        L{None}.
    @ivar error: why the last check failed (C{"timeout"}, a stanza error
        condition, ...), or L{None} if the peer answered.
    @ivar allowlisted: whether the allowlist makes the peer consent,
        whatever it answers.
    @ivar pending: whether a check is queued or running.
    """

    consents: bool | None
    checkedAt: float | None
    error: str | None
    allowlisted: bool = False
    pending: bool = False


@attrs.frozen
class PublishedServerInfo:
    """
    What this node publishes as XEP-0485 server information, and what it
    knows of each linked peer's consent to be named.

    @ivar domain: the domain the item is about.
    @ivar xml: the stored payload, or L{None} before the first publish.
    @ivar published: when it was stored by this process, or L{None}.
    @ivar remotes: the item's C{(name or None, connection types)} entries,
        or L{None} before the first publish.
    @ivar peers: each linked remote domain, sorted, with its consent state.
    """

    domain: str
    xml: str | None
    published: float | None
    remotes: tuple[tuple[str | None, tuple[str, ...]], ...] | None
    peers: tuple[tuple[str, ConsentState], ...]


# -- change events -------------------------------------------------------------


@attrs.frozen
class ChangeEvent:
    """
    Base of every event on the change feed; observe it to hear them all.
    """


@attrs.frozen
class LinkUp(ChangeEvent):
    """
    A stream to or from C{link.domain} has been authenticated.
    """

    link: Link


@attrs.frozen
class LinkDown(ChangeEvent):
    """
    The stream behind C{link} has ended.
    """

    link: Link


@attrs.frozen
class ConsentChanged(ChangeEvent):
    """
    A check changed whether C{domain} consents to be named (an unknown
    domain counts as not consenting, so a first answer of no is no change).
    """

    domain: str
    consents: bool


@attrs.frozen
class NodeCreated(ChangeEvent):
    """
    A node was created on one of our pub-sub services.

    @ivar service: the pub-sub service's JID.
    @ivar node: the node identifier.
    @ivar config: its configuration.
    """

    service: str
    node: str
    config: Mapping[str, object]


@attrs.frozen
class NodeConfigured(ChangeEvent):
    """
    The configuration of a node of one of our pub-sub services changed.

    @ivar config: the new configuration.
    """

    service: str
    node: str
    config: Mapping[str, object]


@attrs.frozen
class NodeDeleted(ChangeEvent):
    """
    A node of one of our pub-sub services was deleted, with its items and
    subscriptions (each ended subscription also gets a
    L{SubscriptionChanged}, after this event).

    @ivar subscriptions: the subscriptions the node had.
    """

    service: str
    node: str
    subscriptions: tuple[Subscription, ...]


@attrs.frozen
class ItemPublished(ChangeEvent):
    """
    An item was stored on a node of one of our pub-sub services. Everything
    a notifier needs is here, read in the transaction that stored it.

    @ivar service: the pub-sub service's JID.
    @ivar node: the node identifier.
    @ivar item: the item as stored.
    @ivar subscriptions: the node's subscriptions when it was stored.
    @ivar deliverPayload: whether notifications carry the payload (the
        node's C{pubsub#deliver_payloads}).
    """

    service: str
    node: str
    item: StoredItem
    subscriptions: tuple[Subscription, ...] = ()
    deliverPayload: bool = True


@attrs.frozen
class ItemsRetracted(ChangeEvent):
    """
    Items were deleted from a node of one of our pub-sub services.

    @ivar itemIdentifiers: the ids deleted.
    @ivar subscriptions: the node's subscriptions when they were deleted.
    """

    service: str
    node: str
    itemIdentifiers: tuple[str, ...]
    subscriptions: tuple[Subscription, ...] = ()


@attrs.frozen
class SubscriptionChanged(ChangeEvent):
    """
    A JID subscribed to or unsubscribed from a node of one of our pub-sub
    services (a deleted node ends all its subscriptions: one event each).
    Subscribing again with a subscription that exists is no change.

    @ivar subscribed: C{True} for a new subscription, C{False} when it ended.
    """

    service: str
    node: str
    subscriber: str
    subscribed: bool
