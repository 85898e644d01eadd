# -*- test-case-name: tests.test_store -*-
"""
Domain errors. Storage and services raise these; one adapter per protocol
edge (pub-sub, web) maps them to XMPP or HTTP errors.
"""


class XmppNetGraphError(Exception):
    """
    Base class of the project's domain errors.
    """


class NodeNotFound(XmppNetGraphError):
    """
    No pub-sub node of that name.
    """


class NodeExists(XmppNetGraphError):
    """
    A pub-sub node of that name exists already.
    """


class ItemNotFound(XmppNetGraphError):
    """
    No item of that id in the node.
    """


class NotSubscribed(XmppNetGraphError):
    """
    The entity has no subscription to the node.
    """


class TooManySubscriptions(XmppNetGraphError):
    """
    The subscriber's domain has reached its subscription cap.
    """


class Forbidden(XmppNetGraphError):
    """
    The requesting entity may not do this.
    """


class InvalidSubscriptionId(XmppNetGraphError):
    """
    The subscription id given is not the entity's subscription to the node.
    """


class UnsupportedAccessModel(XmppNetGraphError):
    """
    A node configuration asks for an access model other than C{open}.
    """


class BadNodeConfiguration(XmppNetGraphError):
    """
    A node configuration value is not supported (the message says which
    and why, in words fit for the requester).
    """


class StorageFull(XmppNetGraphError):
    """
    The database cannot store more (disk full, quota).
    """


class StorageError(XmppNetGraphError):
    """
    The database failed for another reason (the message says which).
    """


class QueueFull(XmppNetGraphError):
    """
    The query scheduler has as many queries waiting as it may; this one was
    not queued.
    """


class SchedulerStopped(XmppNetGraphError):
    """
    The query scheduler has stopped; it runs no more queries.
    """
