# -*- test-case-name: tests.test_s2s_addresses -*-
"""
Which addresses the node may connect to for a remote domain it was told of.

A hostile publisher can name any domain, and a hostile domain's DNS can
point anywhere: at C{127.0.0.1}, at the operator's LAN, at a cloud metadata
service on C{169.254.169.254}. Without a check, the crawler (and the consent
checks and publishing, which share the s2s layer) would open TCP connections
to those places on the publisher's say-so. So outgoing s2s connections for a
domain without a static route go only to globally reachable unicast
addresses, unless the operator allows private ones
(C{--allow-private-addresses}).

The check is made on every address a name resolves to, at the moment the
connection is made: L{AddressFilter} wraps the reactor's host name resolver
(the one L{HostnameEndpoint<twisted.internet.endpoints.HostnameEndpoint>}
uses for SRV target names and for the domain itself), so a refused address
never reaches the endpoint, and a DNS answer that mixes public and private
addresses is reduced to its public ones.

The policy (L{refusalReason}) is the standard library's C{is_global} made
stricter, because C{is_global} alone lets through what we must not (and it
changes between Python versions; on 3.11 C{64:ff9b::a00:1} and
C{2002:7f00:1::} are "global"):
  - an IPv6 address that carries an IPv4 address (IPv4-mapped
    C{::ffff:0:0/96}, NAT64 C{64:ff9b::/96}, 6to4 C{2002::/16}) is judged by
    that IPv4 address, since that is where the packets end up;
  - refused: unspecified, loopback, link-local, site-local, multicast (even
    global multicast: no TCP there), broadcast, shared address space
    (CGNAT, C{100.64.0.0/10}), RFC 1918, unique local (C{fc00::/7}),
    local-use NAT64 (C{64:ff9b:1::/48}), reserved, and anything else that
    C{is_global} says is not globally reachable (documentation, benchmarking,
    Teredo, ORCHID, ...).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress,
    IConnector,
    IDelayedCall,
    IHostnameResolver,
    IHostResolution,
    IListeningPort,
    IReactorPluggableNameResolver,
    IReactorTCP,
    IReactorTime,
    IResolutionReceiver,
)
from twisted.internet.protocol import ClientFactory, P, ServerFactory
from twisted.logger import Logger
from zope.interface import implementer

from xmppnetgraph.reactortypes import IS2SReactor, typedReactor

__all__ = ["AddressFilter", "refusalReason"]

_log = Logger()

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918 = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embeddedIPv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """
    @return: the IPv4 address that C{address} carries and how (IPv4-mapped,
        NAT64, 6to4), or C{None} if it carries none.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    return None


def _reasonIPv4(address: ipaddress.IPv4Address) -> str | None:
    """
    @return: why C{address} is refused, or C{None} if it is allowed.
    """
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address == _BROADCAST:
        return "broadcast"
    if address in _CGNAT:
        return "shared address space (CGNAT)"
    if any(address in network for network in _RFC1918):
        return "private (RFC 1918)"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally reachable"
    return None


def _reasonIPv6(address: ipaddress.IPv6Address) -> str | None:
    """
    @return: why C{address} is refused, or C{None} if it is allowed.
    """
    embedded = _embeddedIPv4(address)
    if embedded is not None:
        inner, how = embedded
        reason = _reasonIPv4(inner)
        return None if reason is None else f"{reason} ({how} {inner})"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_site_local:
        return "site-local"
    if address.is_multicast:
        return "multicast"
    if address in _UNIQUE_LOCAL:
        return "unique local (private)"
    if address in _NAT64_LOCAL:
        return "local-use NAT64"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally reachable"
    return None


def refusalReason(host: str) -> str | None:
    """
    Decide whether an outgoing s2s connection for a domain without a static
    route may go to C{host} (see the module docstring for the policy).

    @param host: an IPv4 or IPv6 address as text (an IPv6 scope such as
        C{%eth0} is allowed).
    @return: C{None} if the address is allowed, otherwise why not, in a few
        words (C{"loopback"}, C{"private (RFC 1918)"}, ...). Text that is
        not an IP address is refused too.
    """
    try:
        address: _Address = ipaddress.ip_address(host)
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv4Address):
        return _reasonIPv4(address)
    return _reasonIPv6(address)


@implementer(IResolutionReceiver)
class _FilteringReceiver:
    """
    Passes on the allowed addresses of one resolution, collects the refused
    ones and reports them to the filter when the resolution is complete.
    """

    def __init__(self, receiver: IResolutionReceiver, hostName: str, owner: AddressFilter) -> None:
        """
        @param receiver: the receiver that gets the allowed addresses.
        @param hostName: the name being resolved.
        @param owner: the filter that decides and records.
        """
        self._receiver = receiver
        self._hostName = hostName
        self._owner = owner
        self._refused: list[tuple[str, str]] = []

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        """
        Pass it on.
        """
        self._receiver.resolutionBegan(resolutionInProgress)

    def addressResolved(self, address: IAddress) -> None:
        """
        Pass C{address} on if the policy allows it, otherwise keep it aside.
        """
        if isinstance(address, IPv4Address | IPv6Address):
            host = address.host
            reason = self._owner.refuse(host)
        else:
            host = repr(address)
            reason = "not an IP address"
        if reason is None:
            self._receiver.addressResolved(address)
        else:
            self._refused.append((host, reason))

    def resolutionComplete(self) -> None:
        """
        Report what was refused (once for the whole resolution), then pass
        the completion on.
        """
        if self._refused:
            self._owner.refused(self._hostName, self._refused)
        self._receiver.resolutionComplete()


@implementer(IHostnameResolver)
class _FilteringResolver:
    """
    An L{IHostnameResolver} that passes on only the addresses its
    L{AddressFilter} allows.
    """

    def __init__(self, resolver: IHostnameResolver, owner: AddressFilter) -> None:
        """
        @param resolver: the real resolver.
        @param owner: the filter that decides and records.
        """
        self._resolver = resolver
        self._owner = owner

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """
        Resolve C{hostName} with the real resolver; give
        C{resolutionReceiver} only the allowed addresses, and report the
        refused ones to the filter when the resolution is complete.
        """
        receiver = _FilteringReceiver(resolutionReceiver, hostName, self._owner)
        return self._resolver.resolveHostName(
            receiver, hostName, portNumber, addressTypes, transportSemantics
        )


@implementer(IReactorTime, IReactorTCP, IReactorPluggableNameResolver)
class _FilteringReactor:
    """
    A reactor for L{HostnameEndpoint<twisted.internet.endpoints.HostnameEndpoint>}:
    the real one's timers and TCP, with a filtering name resolver.

    @ivar nameResolver: the filtering resolver.
    """

    def __init__(self, reactor: IS2SReactor, nameResolver: IHostnameResolver) -> None:
        """
        @param reactor: the real reactor.
        @param nameResolver: the filtering resolver over the real one's.
        """
        self._reactor = reactor
        self.nameResolver = nameResolver

    def installNameResolver(self, resolver: IHostnameResolver) -> IHostnameResolver:
        """
        Not supported: the filter is fixed.

        @raise NotImplementedError: always.
        """
        raise NotImplementedError("the filtering reactor's name resolver is fixed")

    def seconds(self) -> float:
        """
        @return: the real reactor's time.
        """
        return self._reactor.seconds()

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kwargs: object
    ) -> IDelayedCall:
        """
        Schedule a call on the real reactor.
        """
        return self._reactor.callLater(delay, callable, *args, **kwargs)

    def getDelayedCalls(self) -> Sequence[IDelayedCall]:
        """
        @return: the real reactor's delayed calls.
        """
        return self._reactor.getDelayedCalls()

    def connectTCP(
        self,
        host: str,
        port: int,
        factory: ClientFactory[P],
        timeout: float = 30.0,
        bindAddress: tuple[str, int] | None = None,
    ) -> IConnector:
        """
        Connect with the real reactor (C{host} is an address the filter
        let through).
        """
        return self._reactor.connectTCP(host, port, factory, timeout, bindAddress)

    def listenTCP(
        self, port: int, factory: ServerFactory, backlog: int = 50, interface: str = ""
    ) -> IListeningPort:
        """
        Not supported: this reactor only connects.

        @raise NotImplementedError: always.
        """
        raise NotImplementedError("the filtering reactor does not listen")


class AddressFilter:
    """
    The address policy for the outgoing connection attempts of one remote
    domain (one L{connectToFirst<xmppnetgraph.s2s.resolve.connectToFirst>}
    call): it filters what each target's host name resolves to, logs what
    it refuses (once per name looked up, with every refused address), and
    remembers it so that a failed attempt can say why.

    @ivar domain: the remote domain the connection is for.
    """

    def __init__(self, domain: str, refuse: Callable[[str], str | None] = refusalReason) -> None:
        """
        @param domain: the remote domain.
        @param refuse: the policy: an address as text to C{None} (allowed)
            or why it is refused.
        """
        self.domain = domain
        self.refuse = refuse
        self._refused: dict[str, list[tuple[str, str]]] = {}

    def reactorFor(self, reactor: IS2SReactor) -> IS2SReactor:
        """
        @param reactor: the real reactor.
        @return: a reactor that connects and keeps time with C{reactor} but
            resolves host names through this filter.
        """
        resolver = _FilteringResolver(reactor.nameResolver, self)
        return typedReactor(_FilteringReactor(reactor, resolver), IS2SReactor)

    def refused(self, hostName: str, addresses: Sequence[tuple[str, str]]) -> None:
        """
        Record and log that C{hostName} resolved to C{addresses}, which the
        policy refuses.

        @param hostName: the name looked up.
        @param addresses: each refused address with the reason.
        """
        self._refused.setdefault(hostName, []).extend(addresses)
        _log.warn(
            "Not connecting to {addresses} for {domain}: {host} resolves to "
            "addresses that are not public",
            domain=self.domain,
            host=hostName,
            addresses=", ".join(f"{address} ({reason})" for address, reason in addresses),
        )

    def refusedFor(self, hostName: str) -> tuple[str, ...]:
        """
        @param hostName: a name looked up through this filter.
        @return: the addresses refused for it, in the order seen.
        """
        return tuple(address for address, _ in self._refused.get(hostName, ()))
