# -*- test-case-name: tests.test_error -*-
"""
The project's exceptions.

The rule: every exception class of xmppnetgraph derives from
L{XmppNetGraphError}, through the base of its layer where a layer has
several (L{S2SError}), and every public one is defined here; the module
that raises it imports it from here (and keeps its old name importable).
Only two kinds are defined next to their code, still derived from a base
here: a private one that never leaves its module, and one that must also
be another exception type so that other code handles it (the s2s parser's
C{StrictParserError} is also a Twisted C{domish.ParserError}).

None of these is an XMPP type. Storage and services raise them; one
adapter per protocol edge (pub-sub, web) maps them to XMPP or HTTP errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xmppnetgraph.s2s.resolve import Target


class XmppNetGraphError(Exception):
    """
    Base class of the project's errors.
    """


def describeException(exception: BaseException) -> str:
    """
    @return: a one-line description of C{exception}: its class name and,
        if it has one, its message.
    """
    text = str(exception)
    name = type(exception).__name__
    return f"{name}: {text}" if text else name


# -- start-up -----------------------------------------------------------------


class DataDirError(XmppNetGraphError):
    """
    The data directory cannot be used.
    """


class TLSConfigError(XmppNetGraphError):
    """
    The configured certificate or key cannot be used.
    """


class ExclusionFileError(XmppNetGraphError, ValueError):
    """
    The exclusion list file (C{--exclude}) has a line that is neither a
    domain nor C{*.suffix}; the message names the file and the line. It is
    a L{ValueError}, as every bad setting is when the configuration is read.
    """


# -- server-to-server streams -------------------------------------------------


class ListenError(XmppNetGraphError):
    """
    A listening endpoint could not be opened (the message says what, where
    and why).
    """


class S2SError(XmppNetGraphError):
    """
    Base class of the errors of server-to-server streams: a remote server
    could not be reached, authenticated, or kept.
    """


class RemoteServerNotFound(S2SError):
    """
    The remote domain has no usable s2s service.
    """


class ConnectFailed(S2SError):
    """
    L{connectToFirst<xmppnetgraph.s2s.resolve.connectToFirst>} tried every
    target of a remote domain and none accepted a connection.

    @ivar attempts: each target tried, in order, with the reason it failed.
    """

    def __init__(self, attempts: Sequence[tuple[Target, BaseException]]) -> None:
        """
        @param attempts: each target tried, in order, with its failure.
        """
        self.attempts: tuple[tuple[Target, BaseException], ...] = tuple(attempts)
        super().__init__(self.attempts)

    def __str__(self) -> str:
        """
        @return: every target tried and why it failed.
        """
        if not self.attempts:
            return "no targets to connect to"
        return "; ".join(
            f"{target}: {describeException(reason)}" for target, reason in self.attempts
        )


class AddressRefused(S2SError):
    """
    A target's host name resolved only to addresses that the address policy
    refuses (L{xmppnetgraph.s2s.addresses}): loopback, private, link-local,
    multicast, ... No connection was attempted.

    @ivar host: the name that was resolved.
    @ivar addresses: the refused addresses, in the order seen.
    """

    def __init__(self, host: str, addresses: Sequence[str]) -> None:
        """
        @param host: the name that was resolved.
        @param addresses: the refused addresses.
        """
        self.host = host
        self.addresses: tuple[str, ...] = tuple(addresses)
        super().__init__(host, self.addresses)

    def __str__(self) -> str:
        """
        @return: e.g. C{xmpp.evil.example resolves only to private addresses
            (127.0.0.1)}.
        """
        return f"{self.host} resolves only to private addresses ({', '.join(self.addresses)})"


class PrivateAddressesOnly(ConnectFailed):
    """
    Every target of a remote domain was refused by the address policy
    (each attempt failed with L{AddressRefused}): the domain resolves only
    to loopback, private, link-local, multicast, ... addresses, and the node
    connected to none of them.

    @ivar domain: the remote domain.
    """

    def __init__(self, domain: str, attempts: Sequence[tuple[Target, BaseException]]) -> None:
        """
        @param domain: the remote domain.
        @param attempts: each target with its L{AddressRefused}.
        """
        self.domain = domain
        super().__init__(attempts)

    def __str__(self) -> str:
        """
        @return: e.g. C{pubsub.evil.example resolves only to private
            addresses (127.0.0.1)}, naming the SRV targets when they are
            other names (C{(xmpp.evil.example: 10.0.0.1)}).
        """
        parts: list[str] = []
        for target, reason in self.attempts:
            addresses = getattr(reason, "addresses", ())
            text = ", ".join(addresses)
            part = text if target.host == self.domain else f"{target.host}: {text}"
            if part not in parts:
                parts.append(part)
        return f"{self.domain} resolves only to private addresses ({'; '.join(parts)})"


class DialbackFailed(S2SError):
    """
    The receiving server did not accept our dialback key, or dialback was
    not possible.
    """


class PeerCertificateInvalid(S2SError):
    """
    The peer's certificate is not valid for its domain and policy demands it.
    """


# -- pub-sub and storage --------------------------------------------------------


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


class InvalidDomainName(XmppNetGraphError, ValueError):
    """
    A domain name given to the graph store is not a valid domain name (the
    message says which and why); nothing was stored.
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


# -- the web API --------------------------------------------------------------


class BadParameter(XmppNetGraphError, ValueError):
    """
    A parameter of a web API request is not valid (the message says which
    and why, in words fit for the requester).
    """


class UnknownDomain(XmppNetGraphError):
    """
    Nobody here knows the domain asked about: not the graph store, not the
    crawler.
    """


class UnknownPath(XmppNetGraphError):
    """
    The web endpoint serves nothing under the path asked for.
    """


class RateLimited(XmppNetGraphError):
    """
    A client asked more often than it may.

    @ivar retryAfter: seconds until it may ask again.
    """

    def __init__(self, message: str, retryAfter: float) -> None:
        super().__init__(message)
        self.retryAfter = retryAfter


class Unavailable(XmppNetGraphError):
    """
    The part of the node that would answer is not running (no graph store,
    C{--no-crawl}).
    """


class LayoutFailed(XmppNetGraphError):
    """
    The graph layout's worker process failed or answered nonsense (the
    message says how, with the end of its stderr).
    """
