# -*- test-case-name: tests.test_store_pubsub -*-
"""
Pub-sub state in the node's database (L{IPubSubStore}).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class StoredItem:
    """
    One published item.

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
    One subscription of a JID to a node.
    """

    nodeIdentifier: str
    subscriber: str
    subscriptionIdentifier: str
    created: float
