# -*- test-case-name: tests.test_s2s_limits -*-
"""
Admission of incoming s2s connections: a cap on the connections that are
not yet authenticated, per source address and overall.

An unauthenticated connection costs a socket, a parser and, once STARTTLS
begins, a TLS session, and it may hold them for the whole handshake
timeout without doing anything (a half-open or deliberately slow peer).
Authenticated streams are not counted: they are the node's purpose and
have their own idle timeout. A connection counts from the moment it is
accepted until it authenticates or ends.

A connection past a cap gets the cheapest refusal that still says why: on
a plain TCP listener our stream header and a C{<resource-constraint/>}
stream error (RFC 6120, section 4.9.3.17), written at once without
parsing anything (section 4.9.1.2 lets an entity send its header first),
then the connection is closed; on a direct-TLS listener (XEP-0368) a plain
close, since saying anything would first cost a TLS handshake. Refusals are
logged once per episode: when a cap is first reached, and when the count
is a tenth below it again (at least one), with the number refused meanwhile. The
per-address cap counts an IPv6 source by its /64.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable

from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime, ISSLTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from xmppnetgraph.s2s.xmlstream import abortTransport

__all__ = ["Admission", "Refusal", "sourceOf"]


def sourceOf(address: IAddress | None) -> str:
    """
    @return: the key of the per-address cap: an IPv4 address (also when
        mapped into IPv6), the /64 network of an IPv6 address (one host
        usually has a whole /64 to pick addresses from), or C{""} for every
        other kind of address (UNIX sockets share one).
    """
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return ""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _lowWater(cap: int) -> int:
    """
    @return: at how many connections an episode at C{cap} ends: a tenth
        under the cap (at least one), so that a source held at its cap (each release
        admitting the next refused one) logs one episode, not two lines
        per connection.
    """
    return cap - max(1, cap // 10)


class Admission:
    """
    Counts the unauthenticated incoming connections, by source address and
    in total, and says whether one more may come in.

    @ivar perAddress: the cap per source address.
    @ivar total: the cap over all addresses.
    @ivar waiting: the unauthenticated connections now, by source address
        (only addresses that have some).
    @ivar refusedTotal: connections refused since the service started.
    """

    _log = Logger()

    def __init__(self, perAddress: int, total: int) -> None:
        """
        @param perAddress: the cap per source address.
        @param total: the cap over all addresses.
        """
        self.perAddress = perAddress
        self.total = total
        self.waiting: dict[str, int] = {}
        self.count = 0
        self.refusedTotal = 0
        # Refusals in the current episode of each cap: by address, and
        # overall (None: the overall cap is not reached).
        self._refusedFrom: dict[str, int] = {}
        self._refusedOverall: int | None = None

    def admit(self, source: str) -> Callable[[], None] | None:
        """
        Count one more unauthenticated connection from C{source}, if the
        caps allow it.

        @param source: the source address (L{sourceOf}).
        @return: the function to call (once or more) when it authenticates
            or ends; or L{None} if it must be refused.
        """
        if self.count >= self.total:
            self._refuse(source, overall=True)
            return None
        if self.waiting.get(source, 0) >= self.perAddress:
            self._refuse(source, overall=False)
            return None
        self.count += 1
        self.waiting[source] = self.waiting.get(source, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._release(source)

        return release

    def _refuse(self, source: str, overall: bool) -> None:
        """
        Count a refusal; log the start of an episode.
        """
        self.refusedTotal += 1
        if overall:
            if self._refusedOverall is None:
                self._refusedOverall = 0
                self._log.warn(
                    "{count} incoming s2s connections are not authenticated yet (limit "
                    "{limit}, --max-unauthenticated): refusing new ones with "
                    "<resource-constraint/> until some authenticate or close",
                    count=self.count,
                    limit=self.total,
                )
            self._refusedOverall += 1
            return
        if source not in self._refusedFrom:
            self._refusedFrom[source] = 0
            self._log.warn(
                "{count} incoming s2s connections from {address} are not authenticated yet "
                "(limit {limit}, --max-unauthenticated-per-address): refusing new ones from "
                "there with <resource-constraint/> until some authenticate or close",
                count=self.waiting.get(source, 0),
                address=source,
                limit=self.perAddress,
            )
        self._refusedFrom[source] += 1

    def _release(self, source: str) -> None:
        """
        One connection from C{source} authenticated or ended; log the end
        of an episode.
        """
        self.count -= 1
        left = self.waiting[source] - 1
        if left:
            self.waiting[source] = left
        else:
            del self.waiting[source]
        refused = self._refusedFrom.get(source)
        if refused is not None and left <= _lowWater(self.perAddress):
            del self._refusedFrom[source]
            self._log.info(
                "accepting incoming s2s connections from {address} again; {refused} refused "
                "meanwhile",
                address=source,
                refused=refused,
            )
        if self._refusedOverall is not None and self.count <= _lowWater(self.total):
            refused, self._refusedOverall = self._refusedOverall, None
            self._log.info(
                "accepting incoming s2s connections again; {refused} refused meanwhile",
                refused=refused,
            )


class Refusal(Protocol):
    """
    Answer a connection past a cap with our stream header and a
    C{<resource-constraint/>} stream error, then close: our side at once
    (after the bytes are sent), theirs when they close it or after C{grace}
    seconds. What the peer sends meanwhile is read and dropped, so that the
    close is a clean one (closing a socket with unread input resets it, and
    the reset may destroy the error before the peer reads it).
    """

    def __init__(self, domain: str, clock: IReactorTime, grace: float) -> None:
        """
        @param domain: our domain, for the header's C{from}.
        @param clock: for the grace timer.
        @param grace: seconds the peer has to close its side.
        """
        self._domain = domain
        self._clock = clock
        self._grace = grace
        self._drop: IDelayedCall | None = None

    def connectionMade(self) -> None:
        """
        Write the refusal, half-close, and give the peer C{grace} seconds;
        on a direct-TLS connection, close at once.
        """
        transport = self.transport
        assert transport is not None
        if ISSLTransport.providedBy(transport):
            abortTransport(transport)
            return
        transport.write(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
            b"xmlns:stream='http://etherx.jabber.org/streams' from='%s' id='%s' "
            b"version='1.0'><stream:error><resource-constraint "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many connections not yet "
            b"authenticated; try again later</text></stream:error></stream:stream>"
            % (self._domain.encode("utf-8"), secrets.token_hex(8).encode())
        )
        loseWrite: Callable[[], object] | None = getattr(transport, "loseWriteConnection", None)
        if loseWrite is None:
            transport.loseConnection()
            return
        loseWrite()
        self._drop = self._clock.callLater(self._grace, abortTransport, transport)

    def dataReceived(self, data: bytes) -> None:
        """
        Drop what the peer sends.
        """

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Cancel the grace timer.
        """
        if self._drop is not None and self._drop.active():
            self._drop.cancel()
        self._drop = None
