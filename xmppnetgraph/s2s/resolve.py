# -*- test-case-name: tests.test_resolve -*-
"""
Finding and connecting to a remote XMPP server.

L{resolveTargets} turns a domain into an ordered list of L{Target}s, following
RFC 6120 section 3.2 (C{_xmpp-server._tcp} SRV records, STARTTLS) and XEP-0368
(C{_xmpps-server._tcp} SRV records, TLS from the first byte), or a static
L{Route<xmppnetgraph.config.Route>} that overrides DNS.

L{connectToFirst} tries those targets one after another and hands back the
first connection that succeeds; given an
L{AddressFilter<xmppnetgraph.s2s.addresses.AddressFilter>}, it connects only
to the addresses the filter allows of what each target's name resolves to.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from itertools import accumulate, groupby
from typing import cast

import attrs
from twisted.internet import error as ierror
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    fail,
    maybeDeferred,
    succeed,
)
from twisted.internet.defer import (
    TimeoutError as DeferredTimeoutError,
)
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IResolver,
    IStreamClientEndpoint,
)
from twisted.logger import Logger
from twisted.names import client, dns
from twisted.names import error as nameserror
from twisted.names.common import ResolverBase
from twisted.python.failure import Failure
from zope.interface import implementer

from xmppnetgraph.config import Route
from xmppnetgraph.error import (
    AddressRefused,
    ConnectFailed,
    PrivateAddressesOnly,
    describeException,
)
from xmppnetgraph.names import domainToASCII
from xmppnetgraph.reactortypes import INodeReactor, IS2SReactor
from xmppnetgraph.s2s.addresses import AddressFilter

__all__ = [
    "AddressFilter",
    "AddressRefused",
    "ConnectFailed",
    "PrivateAddressesOnly",
    "Target",
    "connectToFirst",
    "defaultResolver",
    "resolveTargets",
]

_log = Logger()

# RFC 6120 section 3.2.2: the fallback port when there are no SRV records.
_DEFAULT_PORT = 5269

# SRV service labels: XEP-0368 direct TLS first, then RFC 6120 STARTTLS.
_DIRECT_TLS_SERVICE = "_xmpps-server._tcp."
_STARTTLS_SERVICE = "_xmpp-server._tcp."

# Retransmission schedule for each SRV query (seconds); 15 s in all.
_DNS_TIMEOUT: tuple[int, ...] = (1, 3, 11)

# DNS failures that mean "no usable answer"; anything else is a bug somewhere.
_EXPECTED_DNS_ERRORS = (
    nameserror.DomainError,
    nameserror.AuthoritativeDomainError,
    nameserror.ResolverError,
    ierror.TimeoutError,
    ierror.ConnectError,
    DeferredTimeoutError,
    OSError,
)

# Failures that mean "this name does not exist": logged at debug level only.
_NO_SUCH_NAME = (
    nameserror.DNSNameError,
    nameserror.AuthoritativeDomainError,
)

_defaultRandom = random.Random()

#: What a DNS lookup gives: the answer, authority and additional records.
_Records = tuple[list[dns.RRHeader], list[dns.RRHeader], list[dns.RRHeader]]
_Answer = Deferred[_Records]


@attrs.frozen
class Target:
    """
    One place to connect to for a remote XMPP domain.

    @ivar host: host name (ASCII, IDNA A-labels) or IP address.
    @ivar port: TCP port.
    @ivar directTLS: C{True} for a XEP-0368 C{_xmpps-server} target, where TLS
        starts with the first byte; C{False} for a plain connection that will
        negotiate STARTTLS.
    """

    host: str
    port: int
    directTLS: bool

    def __str__(self) -> str:
        """
        @return: C{host:port}, with C{(direct TLS)} for direct TLS targets.
        """
        suffix = " (direct TLS)" if self.directTLS else ""
        return f"{self.host}:{self.port}{suffix}"


def _exceptionOf(reason: Failure) -> BaseException:
    """
    @return: the exception that C{reason} wraps.
    """
    if reason.value is None:  # pragma: no cover (a Failure always has one)
        return Exception(reason.getErrorMessage())
    return reason.value


def _isRoot(record: dns.Record_SRV) -> bool:
    """
    @return: whether C{record}'s target is C{.} (RFC 2782: the service is
        decidedly not available).
    """
    return record.target.name in (b"", b".")


def _orderSRV(records: Sequence[dns.Record_SRV], rng: random.Random) -> list[dns.Record_SRV]:
    """
    Order SRV records as RFC 2782 says: lowest priority first; within one
    priority, a weighted random order where zero-weight records come first in
    the running sum and so are rarely picked first.

    @param records: the records of one SRV record set.
    @param rng: the source of randomness for the weighted choice.
    @return: the records in the order to try them.
    """
    ordered: list[dns.Record_SRV] = []
    byPriority = sorted(records, key=lambda r: r.priority)
    for _, group in groupby(byPriority, key=lambda r: r.priority):
        # Stable: zero weights first, otherwise the order DNS gave.
        remaining = sorted(group, key=lambda r: r.weight != 0)
        while remaining:
            total = sum(r.weight for r in remaining)
            threshold = rng.randint(0, total)
            sums = accumulate(r.weight for r in remaining)
            index = next(
                (i for i, running in enumerate(sums) if running >= threshold), len(remaining) - 1
            )
            ordered.append(remaining.pop(index))
    return ordered


def _logLookupFailure(reason: Failure, name: str) -> None:
    """
    Log a failed SRV query at a level that fits its cause.

    @param reason: why the query failed.
    @param name: the name queried.
    """
    if reason.check(*_NO_SUCH_NAME):
        _log.debug("SRV lookup {name}: no such name", name=name)
    elif reason.check(*_EXPECTED_DNS_ERRORS):
        _log.warn(
            "SRV lookup {name} failed, treating it as no records: {error}",
            name=name,
            error=describeException(_exceptionOf(reason)),
        )
    else:
        _log.failure(
            "SRV lookup {name} failed unexpectedly, treating it as no records",
            failure=reason,
            name=name,
        )


def _lookupSRV(
    resolver: IResolver, name: str, timeout: Sequence[int]
) -> Deferred[list[dns.Record_SRV] | None]:
    """
    Query the SRV records at C{name}.

    @param resolver: the resolver to ask.
    @param name: the ASCII name to query.
    @param timeout: the retransmission schedule passed to the resolver.
    @return: a L{Deferred} firing with the SRV records found, or C{None} when
        there are none (no such name, an empty answer, or any DNS error,
        which is logged). It fails only with L{CancelledError}.
    """

    def gotAnswer(result: _Records) -> list[dns.Record_SRV] | None:
        answers = result[0]
        records = [cast(dns.Record_SRV, rr.payload) for rr in answers if rr.type == dns.SRV]
        if not records:
            _log.debug("SRV lookup {name}: no records", name=name)
            return None
        return records

    def failed(reason: Failure) -> None:
        if reason.check(CancelledError):
            reason.raiseException()
        _logLookupFailure(reason, name)

    d: _Answer
    try:
        # IResolver declares a tuple of three RRHeaders; it is three lists.
        d = cast(_Answer, resolver.lookupService(name, timeout))
    except Exception:
        d = fail()
    return d.addCallback(gotAnswer).addErrback(failed)


def offersDirectTLS(
    resolver: IResolver, domain: str, timeout: Sequence[int] = _DNS_TIMEOUT
) -> Deferred[bool]:
    """
    Whether C{domain} publishes XEP-0368 direct TLS: an
    C{_xmpps-server._tcp} SRV record set with a usable target.

    @param resolver: the resolver to ask.
    @param domain: the domain (any form; queried in A-labels).
    @param timeout: the retransmission schedule of the query.
    @return: a L{Deferred} firing with C{True} or C{False} (no such name,
        only C{.} targets, or a DNS error, which is logged); it fails only
        with L{CancelledError}.
    """
    name = f"_xmpps-server._tcp.{domainToASCII(domain)}"

    def usable(records: list[dns.Record_SRV] | None) -> bool:
        return bool(records) and not all(_isRoot(r) for r in records or ())

    return _lookupSRV(resolver, name, timeout).addCallback(usable)


def _targetsFrom(
    records: list[dns.Record_SRV] | None, directTLS: bool, rng: random.Random
) -> list[Target] | None:
    """
    @param records: one SRV record set, or C{None} if there was none.
    @param directTLS: whether these are C{_xmpps-server} records.
    @param rng: the source of randomness for the weighted order.
    @return: the targets in the order to try, C{[]} if the set says the
        service is not available (C{.} targets only), or C{None} if there
        was no record set.
    """
    if records is None:
        return None
    usable = [r for r in records if not _isRoot(r)]
    return [
        Target(r.target.name.decode("ascii"), r.port, directTLS) for r in _orderSRV(usable, rng)
    ]


def resolveTargets(
    domain: str,
    route: Route | None,
    resolver: IResolver,
    *,
    rng: random.Random | None = None,
    timeout: Sequence[int] = _DNS_TIMEOUT,
) -> Deferred[list[Target]]:
    """
    Find where to connect for the XMPP server of C{domain}.

    With a route, that is the route's host and port (no DNS, no direct TLS).
    Otherwise both SRV record sets are queried in parallel and the result is
    the C{_xmpps-server._tcp} targets (direct TLS) followed by the
    C{_xmpp-server._tcp} targets (STARTTLS), each in RFC 2782 order.

    A record set whose only target is C{.} contributes no targets. When the
    C{_xmpp-server} set is missing (no such name, no answer, or a DNS error,
    which is logged) and the C{_xmpps-server} set gives no target either,
    the result is C{[Target(domain, 5269, False)]} (RFC 6120 section 3.2.2),
    with C{domain} in A-labels. If both sets say C{.}, the result is empty:
    the domain has no XMPP server.

    @param domain: the remote domain; Unicode labels are queried as IDNA
        A-labels.
    @param route: the static route for C{domain}
        (L{Config.routeFor<xmppnetgraph.config.Config.routeFor>}), or
        C{None} to use DNS. It is used as given, not matched again.
    @param resolver: the DNS resolver, for instance L{defaultResolver}.
    @param rng: the source of randomness for RFC 2782 weights; a
        module-wide L{random.Random} if C{None}.
    @param timeout: the retransmission schedule of each SRV query, seconds.
    @return: a L{Deferred} firing with the targets in the order to try them.
        It does not fail for DNS errors; it fails with L{ValueError} if
        C{domain} is not a domain name. Cancelling it cancels the queries.
    """
    if route is not None:
        target = Target(route.host, route.port, False)
        _log.debug("Static route for {domain}: {target}", domain=domain, target=target)
        return succeed([target])
    try:
        aLabel = domainToASCII(domain)
    except ValueError:
        return fail()
    return Deferred.fromCoroutine(
        _resolveSRV(domain, aLabel, resolver, rng or _defaultRandom, timeout)
    )


def _ignoreCancelled(reason: Failure) -> None:
    """
    Swallow a L{CancelledError}; let any other failure through.
    """
    reason.trap(CancelledError)


async def _resolveSRV(
    domain: str,
    aLabel: str,
    resolver: IResolver,
    rng: random.Random,
    timeout: Sequence[int],
) -> list[Target]:
    """
    Query both SRV record sets of C{aLabel} and combine them.

    @param domain: the domain as given, for logging.
    @param aLabel: the domain in A-labels.
    @param resolver: the DNS resolver.
    @param rng: the source of randomness for RFC 2782 weights.
    @param timeout: the retransmission schedule of each SRV query.
    @return: the targets; see L{resolveTargets}.
    """
    lookups = [
        _lookupSRV(resolver, _DIRECT_TLS_SERVICE + aLabel, timeout),
        _lookupSRV(resolver, _STARTTLS_SERVICE + aLabel, timeout),
    ]
    try:
        directRecords = await lookups[0]
        startTLSRecords = await lookups[1]
    except CancelledError:
        for lookup in lookups:
            lookup.addErrback(_ignoreCancelled)
            lookup.cancel()
        raise

    direct = _targetsFrom(directRecords, True, rng)
    startTLS = _targetsFrom(startTLSRecords, False, rng)
    if startTLS is None:
        startTLS = [] if direct else [Target(aLabel, _DEFAULT_PORT, False)]
    targets = (direct or []) + startTLS
    if targets:
        _log.debug(
            "Targets for {domain}: {targets}",
            domain=domain,
            targets=", ".join(str(t) for t in targets),
        )
    else:
        _log.info("{domain} publishes no XMPP server (SRV target '.')", domain=domain)
    return targets


def _endpointFor(
    reactor: IS2SReactor,
    target: Target,
    tlsOptionsFor: Callable[[], IOpenSSLClientConnectionCreator],
    timeout: float,
) -> IStreamClientEndpoint:
    """
    @return: the endpoint that connects to C{target}, TLS-wrapped for a
        direct TLS target.
    """
    endpoint: IStreamClientEndpoint = HostnameEndpoint(
        reactor, target.host, target.port, timeout=timeout
    )
    if target.directTLS:
        endpoint = wrapClientTLS(tlsOptionsFor(), endpoint, clock=reactor)
    return endpoint


class _FirstConnection:
    """
    The state of one L{connectToFirst} call.

    @ivar result: the L{Deferred} handed to the caller.
    @ivar _current: the connection attempt in progress, if any.
    @ivar _attempts: the targets that failed so far, with their reasons.
    """

    def __init__(
        self,
        reactor: IS2SReactor,
        targets: Sequence[Target],
        factory: IProtocolFactory,
        tlsOptionsFor: Callable[[], IOpenSSLClientConnectionCreator],
        timeout: float,
        addressFilter: AddressFilter | None,
    ) -> None:
        """
        @param reactor: see L{connectToFirst}.
        @param targets: see L{connectToFirst}.
        @param factory: see L{connectToFirst}.
        @param tlsOptionsFor: see L{connectToFirst}.
        @param timeout: see L{connectToFirst}.
        @param addressFilter: see L{connectToFirst}.
        """
        self._reactor = reactor
        self._addressFilter = addressFilter
        # The endpoints connect through the filter's reactor, whose name
        # resolver hands on only the allowed addresses.
        self._connectReactor = (
            reactor if addressFilter is None else addressFilter.reactorFor(reactor)
        )
        self._targets = list(targets)
        self._factory = factory
        self._tlsOptionsFor = tlsOptionsFor
        self._timeout = timeout
        self._attempts: list[tuple[Target, BaseException]] = []
        self._current: Deferred[IProtocol] | None = None
        self._cancelled = False
        self.result: Deferred[tuple[IProtocol, Target]] = Deferred(self._cancel)

    def _cancel(self, result: Deferred[tuple[IProtocol, Target]]) -> None:
        """
        Cancel the attempt in progress; try no further targets.
        """
        self._cancelled = True
        if self._current is not None:
            self._current.cancel()

    def start(self) -> Deferred[tuple[IProtocol, Target]]:
        """
        Start with the first target.

        @return: L{result}.
        """
        self._tryFrom(0)
        return self.result

    def _tryFrom(self, index: int) -> None:
        """
        Start connecting to the target at C{index}, or the first one after it
        whose endpoint can be built; fail L{result} when none is left.
        """
        while index < len(self._targets):
            target = self._targets[index]
            try:
                endpoint = _endpointFor(
                    self._connectReactor, target, self._tlsOptionsFor, self._timeout
                )
            except Exception:
                reason = Failure()
                _log.failure("Cannot build an endpoint for {target}", reason, target=target)
                self._attempts.append((target, _exceptionOf(reason)))
                index += 1
                continue
            _log.debug("Connecting to {target}", target=target)
            attempt = maybeDeferred(endpoint.connect, self._factory)
            self._current = attempt
            attempt.addCallbacks(
                self._connected,
                self._attemptFailed,
                callbackArgs=(target,),
                errbackArgs=(target, index),
            )
            return
        self._current = None
        if (
            self._addressFilter is not None
            and self._attempts
            and all(isinstance(reason, AddressRefused) for _, reason in self._attempts)
        ):
            self.result.errback(PrivateAddressesOnly(self._addressFilter.domain, self._attempts))
            return
        self.result.errback(ConnectFailed(self._attempts))

    def _connected(self, protocol: IProtocol, target: Target) -> None:
        """
        An attempt succeeded: hand the connection to the caller.
        """
        self._current = None
        if self._cancelled:
            # Connected although we asked it to stop: nobody wants it.
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.loseConnection()
            return
        _log.debug("Connected to {target}", target=target)
        self.result.callback((protocol, target))

    def _attemptFailed(self, reason: Failure, target: Target, index: int) -> None:
        """
        An attempt failed: record why and try the next target.
        """
        self._current = None
        if self._cancelled:
            return
        exception = _exceptionOf(reason)
        refused = () if self._addressFilter is None else self._addressFilter.refusedFor(target.host)
        if refused and reason.check(ierror.DNSLookupError):
            # The name resolved, but only to refused addresses (the filter
            # logged them): say so rather than "no results".
            exception = AddressRefused(target.host, refused)
        else:
            _log.info(
                "Connecting to {target} failed: {error}",
                target=target,
                error=describeException(exception),
            )
        self._attempts.append((target, exception))
        self._tryFrom(index + 1)


def connectToFirst(
    reactor: IS2SReactor,
    targets: Sequence[Target],
    factory: IProtocolFactory,
    tlsOptionsFor: Callable[[], IOpenSSLClientConnectionCreator],
    timeout: float,
    addressFilter: AddressFilter | None = None,
) -> Deferred[tuple[IProtocol, Target]]:
    """
    Connect to the first target that accepts a connection, trying them one
    after another in the order given.

    Each target is reached with a L{HostnameEndpoint}; a direct TLS target is
    wrapped with L{wrapClientTLS}. A direct TLS connection counts as made
    once TCP is connected: a failed TLS handshake shows up later as the
    protocol's C{connectionLost}.

    @param reactor: the reactor, for connections and timeouts.
    @param targets: where to connect, in order (from L{resolveTargets}).
    @param factory: builds the protocol of the connection.
    @param tlsOptionsFor: called once per direct TLS target, to get the TLS
        client options (with the expected peer identity).
    @param timeout: seconds to wait for each target's TCP connection.
    @param addressFilter: if given, each target's host is resolved through
        it and only the addresses it allows are connected to (an IP
        literal target is checked the same way); a target left with no
        address fails with L{AddressRefused}. C{None} connects to whatever
        the names resolve to (static routes, C{--allow-private-addresses}).
    @return: a L{Deferred} firing with the connected protocol and the target
        it is connected to, or failing with L{ConnectFailed} naming every
        target tried (L{PrivateAddressesOnly}, a L{ConnectFailed}, when the
        filter refused every target). Cancelling it cancels the attempt in
        progress and tries no further target.
    """
    return _FirstConnection(
        reactor, targets, factory, tlsOptionsFor, timeout, addressFilter
    ).start()


@implementer(IResolver)
class _LazyResolver(ResolverBase):
    """
    An L{IResolver} that builds the resolver it delegates to on first use.
    """

    def __init__(self, build: Callable[[], ResolverBase]) -> None:
        """
        @param build: builds the real resolver.
        """
        # ResolverBase.__init__ (it fills typeToMethod) has no annotations.
        super().__init__()  # type: ignore[no-untyped-call]
        self._build = build
        self._resolver: ResolverBase | None = None

    def _real(self) -> ResolverBase:
        """
        @return: the real resolver, built on the first call.
        """
        if self._resolver is None:
            self._resolver = self._build()
        return self._resolver

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Sequence[int] | None) -> _Answer:
        """
        Delegate every lookup to the real resolver.

        L{ResolverBase} sends each of its C{lookup*} methods here (this is
        how its subclasses implement them); the real resolver gets the
        query through its public C{query}, which picks its own method for
        the type (zone transfers included).
        """
        answer: _Answer = self._real().query(dns.Query(name, type, cls), timeout)
        return answer


def defaultResolver(reactor: INodeReactor, resolvConf: str = "/etc/resolv.conf") -> IResolver:
    """
    A DNS resolver that asks the system's name servers.

    Nothing happens until the first query: then C{resolvConf} is read and a
    L{twisted.names.client.Resolver} is built, which re-reads the file when
    it changes (it checks every minute from then on).

    @param reactor: the reactor (the resolver uses its UDP, TCP and time).
    @param resolvConf: the C{resolv.conf(5)} file to read.
    @return: the resolver.
    """
    return _LazyResolver(lambda: client.Resolver(resolv=resolvConf, reactor=reactor))
