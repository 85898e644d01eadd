# -*- test-case-name: tests.test_resolve -*-
"""
Tests for L{xmppnetgraph.s2s.resolve}: SRV resolution (RFC 6120 section 3.2,
XEP-0368), static routes, and connecting to the first target that answers.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLClientConnectionCreator,
    ISSLTransport,
)
from twisted.internet.protocol import Factory, Protocol, ServerFactory
from twisted.internet.testing import (
    EventLoggingObserver,
    MemoryReactorClock,
    StringTransport,
)
from twisted.logger import LogLevel, globalLogPublisher
from twisted.names import authority, client, dns
from twisted.names import error as nameserror
from twisted.names.common import ResolverBase
from twisted.names.server import DNSServerFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from xmppnetgraph.config import Config, Route
from xmppnetgraph.s2s.resolve import (
    ConnectFailed,
    Target,
    connectToFirst,
    defaultResolver,
    offersDirectTLS,
    resolveTargets,
)

TLS_NAME = "_xmpps-server._tcp."
STARTTLS_NAME = "_xmpp-server._tcp."


def srv(name: str, priority: int, weight: int, port: int, target: str) -> dns.RRHeader:
    """
    @param target: the target host; C{"."} for "service not available".
    @return: an SRV answer record for C{name}.
    """
    targetName = b"" if target == "." else target.encode("ascii")
    return dns.RRHeader(
        name.encode("ascii"),
        dns.SRV,
        dns.IN,
        300,
        dns.Record_SRV(priority, weight, port, targetName, ttl=300),
    )


class FakeResolver(ResolverBase):
    """
    A resolver answering from a table and recording every query.

    @ivar answers: maps a queried name (C{bytes}) to a list of answer
        records, an exception to fail with, or a L{Deferred} to return.
        Names not in it fail with L{nameserror.DNSNameError} (NXDOMAIN).
    @ivar queries: C{(name, type, timeout)} of every query, in order.
    """

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        """
        @param answers: see L{answers}; keys given as text.
        """
        super().__init__()
        self.answers = {k.encode("ascii"): v for k, v in (answers or {}).items()}
        self.queries: list[tuple[bytes, int, Any]] = []

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> Deferred[Any]:
        """
        Answer from L{answers}.
        """
        self.queries.append((name, type, timeout))
        answer = self.answers.get(name, nameserror.DNSNameError(name))
        if isinstance(answer, Deferred):
            return answer
        if isinstance(answer, BaseException):
            return fail(answer)
        return succeed((list(answer), [], []))

    def queriedNames(self) -> list[str]:
        """
        @return: the names queried, as text, in order.
        """
        return [name.decode("ascii") for name, _, _ in self.queries]


class ScriptedRandom(random.Random):
    """
    A L{random.Random} whose C{randint} returns scripted values and records
    its arguments.
    """

    def __init__(self, values: Sequence[int]) -> None:
        """
        @param values: what C{randint} returns, in order.
        """
        super().__init__(0)
        self.values = list(values)
        self.calls: list[tuple[int, int]] = []

    def randint(self, a: int, b: int) -> int:
        """
        Record the bounds, return the next scripted value.
        """
        self.calls.append((a, b))
        return self.values.pop(0)


def resolve(
    testCase: SynchronousTestCase,
    domain: str,
    answers: dict[str, Any],
    rng: random.Random | None = None,
) -> tuple[list[Target], FakeResolver]:
    """
    Resolve C{domain} against a L{FakeResolver} with C{answers}.

    @return: the targets and the resolver.
    """
    resolver = FakeResolver(answers)
    targets = testCase.successResultOf(
        resolveTargets(domain, None, resolver, rng=rng or random.Random(0))
    )
    return targets, resolver


class RouteTests(SynchronousTestCase):
    """
    A static route overrides DNS.
    """

    def test_routeGivesItsTarget(self) -> None:
        """
        With a route, the only target is the route's host and port, without
        direct TLS, and DNS is not asked.
        """
        resolver = FakeResolver()
        route = Route("example.com", "10.1.2.3", 5999)
        targets = self.successResultOf(resolveTargets("example.com", route, resolver))
        self.assertEqual(targets, [Target("10.1.2.3", 5999, False)])
        self.assertEqual(resolver.queries, [])

    def test_exactRouteBeatsWildcard(self) -> None:
        """
        An exact route wins over a wildcard that also matches, whatever their
        order in the configuration.
        """
        config = Config(
            domain="self.example",
            dataDir=Path("."),
            routes=(
                Route("*.example.com", "wild.host", 5270),
                Route("a.example.com", "exact.host", 5271),
            ),
        )
        resolver = FakeResolver()
        targets = self.successResultOf(
            resolveTargets("a.example.com", config.routeFor("a.example.com"), resolver)
        )
        self.assertEqual(targets, [Target("exact.host", 5271, False)])
        self.assertEqual(resolver.queries, [])

    def test_wildcardRoute(self) -> None:
        """
        A C{*.suffix} route applies to a subdomain without an exact route.
        """
        config = Config(
            domain="self.example",
            dataDir=Path("."),
            routes=(
                Route("*.example.com", "wild.host", 5270),
                Route("a.example.com", "exact.host", 5271),
            ),
        )
        resolver = FakeResolver()
        targets = self.successResultOf(
            resolveTargets("b.example.com", config.routeFor("b.example.com"), resolver)
        )
        self.assertEqual(targets, [Target("wild.host", 5270, False)])
        self.assertEqual(resolver.queries, [])

    def test_wildcardDoesNotCoverItsSuffix(self) -> None:
        """
        C{*.example.com} does not route C{example.com} itself: that domain is
        resolved with DNS.
        """
        config = Config(
            domain="self.example",
            dataDir=Path("."),
            routes=(Route("*.example.com", "wild.host", 5270),),
        )
        targets, resolver = resolve(self, "example.com", {})
        self.assertIsNone(config.routeFor("example.com"))
        self.assertEqual(targets, [Target("example.com", 5269, False)])
        self.assertEqual(len(resolver.queries), 2)


class SRVTests(SynchronousTestCase):
    """
    SRV resolution with a fake resolver.
    """

    def test_bothServicesQueried(self) -> None:
        """
        Both C{_xmpps-server._tcp} and C{_xmpp-server._tcp} are queried as SRV
        before either answers, with the given timeout.
        """
        pending: dict[str, Any] = {
            TLS_NAME + "example.com": Deferred(),
            STARTTLS_NAME + "example.com": Deferred(),
        }
        resolver = FakeResolver(pending)
        d = resolveTargets("example.com", None, resolver, timeout=(2, 5))
        self.assertNoResult(d)
        self.assertEqual(
            resolver.queries,
            [
                ((TLS_NAME + "example.com").encode(), dns.SRV, (2, 5)),
                ((STARTTLS_NAME + "example.com").encode(), dns.SRV, (2, 5)),
            ],
        )
        pending[STARTTLS_NAME + "example.com"].callback(
            ([srv(STARTTLS_NAME + "example.com", 0, 0, 5269, "x.example.com")], [], [])
        )
        self.assertNoResult(d)
        pending[TLS_NAME + "example.com"].callback(([], [], []))
        self.assertEqual(self.successResultOf(d), [Target("x.example.com", 5269, False)])

    def test_priorityOrder(self) -> None:
        """
        Records are tried lowest priority value first, whatever order DNS
        gives them in and whatever the random source says.
        """
        name = STARTTLS_NAME + "example.com"
        answers = {
            name: [
                srv(name, 20, 5, 5202, "b.example.com"),
                srv(name, 10, 5, 5201, "a.example.com"),
                srv(name, 30, 5, 5203, "c.example.com"),
                srv(name, 10, 5, 5204, "d.example.com"),
            ]
        }
        for seed in range(20):
            targets, _ = resolve(self, "example.com", answers, random.Random(seed))
            priorities = [{5201: 10, 5204: 10, 5202: 20, 5203: 30}[t.port] for t in targets]
            self.assertEqual(priorities, sorted(priorities))
            self.assertEqual(len(targets), 4)

    def test_weightedSelection(self) -> None:
        """
        Within one priority, RFC 2782's running-sum selection is used: a
        random number between 0 and the sum of the remaining weights picks
        the first record whose running sum reaches it.
        """
        name = STARTTLS_NAME + "example.com"
        answers = {
            name: [
                srv(name, 0, 10, 1, "a.example.com"),
                srv(name, 0, 30, 2, "b.example.com"),
                srv(name, 0, 60, 3, "c.example.com"),
            ]
        }
        # 35: sums 10, 40 -> b. Then a, c (sum 70): 11 -> sums 10, 70 -> c.
        rng = ScriptedRandom([35, 11, 0])
        targets, _ = resolve(self, "example.com", answers, rng)
        self.assertEqual([t.port for t in targets], [2, 3, 1])
        self.assertEqual(rng.calls, [(0, 100), (0, 70), (0, 10)])

    def test_zeroWeightFirstInRunningSum(self) -> None:
        """
        Zero-weight records go first in the running sum, so they are chosen
        first only when the random number is 0.
        """
        name = STARTTLS_NAME + "example.com"
        answers = {
            name: [
                srv(name, 0, 50, 1, "heavy.example.com"),
                srv(name, 0, 0, 2, "zero.example.com"),
            ]
        }
        targets, _ = resolve(self, "example.com", answers, ScriptedRandom([0, 0]))
        self.assertEqual([t.port for t in targets], [2, 1])
        targets, _ = resolve(self, "example.com", answers, ScriptedRandom([1, 0]))
        self.assertEqual([t.port for t in targets], [1, 2])

    def test_weightProportions(self) -> None:
        """
        Over many resolutions a record of weight 90 comes first about nine
        times out of ten against one of weight 10.
        """
        name = STARTTLS_NAME + "example.com"
        answers = {
            name: [
                srv(name, 0, 10, 1, "light.example.com"),
                srv(name, 0, 90, 2, "heavy.example.com"),
            ]
        }
        rng = random.Random(2782)
        heavyFirst = 0
        for _ in range(1000):
            targets, _ = resolve(self, "example.com", answers, rng)
            heavyFirst += targets[0].port == 2
        self.assertTrue(850 <= heavyFirst <= 930, heavyFirst)

    def test_directTLSFirst(self) -> None:
        """
        Direct TLS targets come before STARTTLS targets, even when their
        priority values are higher.
        """
        tls = TLS_NAME + "example.com"
        plain = STARTTLS_NAME + "example.com"
        answers = {
            tls: [
                srv(tls, 50, 0, 5224, "t2.example.com"),
                srv(tls, 40, 0, 5223, "t1.example.com"),
            ],
            plain: [srv(plain, 0, 0, 5269, "p.example.com")],
        }
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(
            targets,
            [
                Target("t1.example.com", 5223, True),
                Target("t2.example.com", 5224, True),
                Target("p.example.com", 5269, False),
            ],
        )

    def test_directTLSOnly(self) -> None:
        """
        With only C{_xmpps-server} records there is no STARTTLS fallback to
        the domain: the records are the answer.
        """
        tls = TLS_NAME + "example.com"
        answers = {tls: [srv(tls, 0, 0, 5223, "t.example.com")]}
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [Target("t.example.com", 5223, True)])

    def test_otherRecordTypesIgnored(self) -> None:
        """
        Records other than SRV in the answer (a CNAME chain) are ignored.
        """
        plain = STARTTLS_NAME + "example.com"
        cname = dns.RRHeader(
            plain.encode(), dns.CNAME, dns.IN, 300, dns.Record_CNAME(b"srv.example.com")
        )
        answers = {plain: [cname, srv("srv.example.com", 0, 0, 5270, "h.example.com")]}
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [Target("h.example.com", 5270, False)])


class OffersDirectTLSTests(SynchronousTestCase):
    """
    L{offersDirectTLS} says whether a domain has usable
    C{_xmpps-server._tcp} records (queried in A-labels).
    """

    def answer(self, domain: str, answers: dict[str, Any]) -> tuple[bool, list[str]]:
        resolver = FakeResolver(answers)
        return self.successResultOf(offersDirectTLS(resolver, domain)), resolver.queriedNames()

    def test_offered(self) -> None:
        tls = TLS_NAME + "xn--bcher-kva.example"
        self.assertEqual(
            self.answer("bücher.example", {tls: [srv(tls, 0, 0, 5270, "t.example")]}),
            (True, [tls]),
        )

    def test_notOffered(self) -> None:
        tls = TLS_NAME + "example.com"
        self.assertEqual(self.answer("example.com", {}), (False, [tls]))
        self.assertEqual(
            self.answer("example.com", {tls: [srv(tls, 0, 0, 0, ".")]}), (False, [tls])
        )
        self.assertEqual(
            self.answer("example.com", {tls: nameserror.DNSServerError(tls)}), (False, [tls])
        )


class NotAvailableTests(SynchronousTestCase):
    """
    A lone C{.} target: the service is decidedly not available (RFC 2782).
    """

    def test_dotDirectTLS(self) -> None:
        """
        C{.} for C{_xmpps-server} removes only the direct TLS targets.
        """
        tls = TLS_NAME + "example.com"
        plain = STARTTLS_NAME + "example.com"
        answers = {
            tls: [srv(tls, 0, 0, 0, ".")],
            plain: [srv(plain, 0, 0, 5269, "p.example.com")],
        }
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [Target("p.example.com", 5269, False)])

    def test_dotStartTLS(self) -> None:
        """
        C{.} for C{_xmpp-server} removes the STARTTLS targets and the
        fallback; direct TLS targets remain.
        """
        tls = TLS_NAME + "example.com"
        plain = STARTTLS_NAME + "example.com"
        answers = {
            tls: [srv(tls, 0, 0, 5223, "t.example.com")],
            plain: [srv(plain, 0, 0, 0, ".")],
        }
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [Target("t.example.com", 5223, True)])

    def test_dotStartTLSNoDirectTLS(self) -> None:
        """
        C{.} for C{_xmpp-server} and no C{_xmpps-server} records: no target
        at all, not even the fallback.
        """
        plain = STARTTLS_NAME + "example.com"
        answers = {plain: [srv(plain, 0, 0, 0, ".")]}
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [])

    def test_dotBoth(self) -> None:
        """
        C{.} for both services: an empty list.
        """
        tls = TLS_NAME + "example.com"
        plain = STARTTLS_NAME + "example.com"
        answers = {tls: [srv(tls, 0, 0, 0, ".")], plain: [srv(plain, 0, 0, 0, ".")]}
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [])

    def test_dotDirectTLSNoStartTLS(self) -> None:
        """
        C{.} for C{_xmpps-server} only declines direct TLS: with no
        C{_xmpp-server} records the usual fallback to the domain applies.
        """
        tls = TLS_NAME + "example.com"
        answers = {tls: [srv(tls, 0, 0, 0, ".")]}
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [Target("example.com", 5269, False)])


class FallbackTests(SynchronousTestCase):
    """
    Without SRV records the domain itself is tried on port 5269.
    """

    def setUp(self) -> None:
        """
        Capture log events.
        """
        self.events = EventLoggingObserver.createWithCleanup(
            cast(TestCase, self), globalLogPublisher
        )

    def test_nxdomain(self) -> None:
        """
        NXDOMAIN for both names: fall back to the domain on 5269, logging
        at debug level only.
        """
        targets, resolver = resolve(self, "example.com", {})
        self.assertEqual(targets, [Target("example.com", 5269, False)])
        self.assertEqual(
            resolver.queriedNames(),
            [TLS_NAME + "example.com", STARTTLS_NAME + "example.com"],
        )
        self.assertFalse(
            [e for e in self.events if e["log_level"] > LogLevel.debug],
            list(self.events),
        )

    def test_emptyAnswer(self) -> None:
        """
        An empty answer (NOERROR, no data) counts as no records.
        """
        targets, _ = resolve(
            self,
            "example.com",
            {TLS_NAME + "example.com": [], STARTTLS_NAME + "example.com": []},
        )
        self.assertEqual(targets, [Target("example.com", 5269, False)])

    def test_timeout(self) -> None:
        """
        A DNS timeout does not fail the resolution: it is logged as a
        warning and the domain is used.
        """
        answers = {
            TLS_NAME + "example.com": nameserror.DNSQueryTimeoutError(1),
            STARTTLS_NAME + "example.com": nameserror.DNSQueryTimeoutError(2),
        }
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [Target("example.com", 5269, False)])
        warnings = [e for e in self.events if e["log_level"] == LogLevel.warn]
        self.assertEqual(
            sorted(e["name"] for e in warnings),
            [STARTTLS_NAME + "example.com", TLS_NAME + "example.com"],
        )

    def test_serverFailure(self) -> None:
        """
        SERVFAIL on C{_xmpp-server} with NXDOMAIN on C{_xmpps-server}: fall
        back, logging a warning that names the error.
        """
        answers = {
            STARTTLS_NAME + "example.com": nameserror.DNSServerError("SERVFAIL"),
        }
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [Target("example.com", 5269, False)])
        warnings = [e for e in self.events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("DNSServerError", warnings[0]["error"])

    def test_unexpectedError(self) -> None:
        """
        An unexpected exception from the resolver is logged as a failure and
        still falls back.
        """
        answers = {STARTTLS_NAME + "example.com": RuntimeError("resolver bug")}
        targets, _ = resolve(self, "example.com", answers)
        self.assertEqual(targets, [Target("example.com", 5269, False)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_resolverRaises(self) -> None:
        """
        A resolver that raises instead of returning a failed L{Deferred} is
        handled the same way.
        """

        class RaisingResolver(FakeResolver):
            def lookupService(self, name: str, timeout: Any = None) -> Any:
                raise RuntimeError("synchronous bug")

        targets = self.successResultOf(resolveTargets("example.com", None, RaisingResolver()))
        self.assertEqual(targets, [Target("example.com", 5269, False)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_cancel(self) -> None:
        """
        Cancelling the resolution cancels both queries.
        """
        pending: dict[str, Deferred[Any]] = {
            TLS_NAME + "example.com": Deferred(),
            STARTTLS_NAME + "example.com": Deferred(),
        }
        d = resolveTargets("example.com", None, FakeResolver(pending))
        d.cancel()
        self.failureResultOf(d, CancelledError)
        for lookup in pending.values():
            self.assertTrue(lookup.called)


class IDNTests(SynchronousTestCase):
    """
    Internationalised domain names are queried as IDNA A-labels.
    """

    def test_aLabelQueried(self) -> None:
        """
        A Unicode domain is queried, and falls back, in A-labels.
        """
        targets, resolver = resolve(self, "Bücher.example", {})
        self.assertEqual(
            resolver.queriedNames(),
            [
                TLS_NAME + "xn--bcher-kva.example",
                STARTTLS_NAME + "xn--bcher-kva.example",
            ],
        )
        self.assertEqual(targets, [Target("xn--bcher-kva.example", 5269, False)])

    def test_idna2008(self) -> None:
        """
        Encoding follows IDNA 2008: C{ß} is kept, not mapped to C{ss}.
        """
        _, resolver = resolve(self, "faß.de", {})
        self.assertEqual(resolver.queriedNames()[0], TLS_NAME + "xn--fa-hia.de")

    def test_idna2003Fallback(self) -> None:
        """
        A name IDNA 2008 rejects but IDNA 2003 accepts (a symbol) is still
        queried.
        """
        _, resolver = resolve(self, "☃.example", {})
        self.assertEqual(resolver.queriedNames()[0], TLS_NAME + "xn--n3h.example")

    def test_asciiUntouched(self) -> None:
        """
        ASCII names are only lower-cased and lose a trailing dot, so labels
        IDNA would reject (an underscore) still work.
        """
        _, resolver = resolve(self, "My_Host.Example.", {})
        self.assertEqual(resolver.queriedNames()[0], TLS_NAME + "my_host.example")

    def test_emptyDomain(self) -> None:
        """
        An empty domain fails with L{ValueError} without asking DNS.
        """
        resolver = FakeResolver()
        self.failureResultOf(resolveTargets("", None, resolver), ValueError)
        self.assertEqual(resolver.queries, [])


def _realReactor() -> Any:
    """
    @return: the global reactor, imported only when a test needs it.
    """
    from twisted.internet import reactor

    return reactor


class _FakeUDPPort:
    """
    A UDP port that records datagrams instead of sending them.
    """

    def __init__(self, protocol: Any) -> None:
        """
        @param protocol: the datagram protocol bound to this port.
        """
        self.protocol = protocol
        self.written: list[tuple[bytes, Any]] = []
        self.stopped = False

    def write(self, data: bytes, addr: Any = None) -> None:
        """
        Record a datagram.
        """
        self.written.append((data, addr))

    def stopListening(self) -> None:
        """
        Record that the port was closed.
        """
        self.stopped = True


class _UDPMemoryReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} with an in-memory C{listenUDP}.
    """

    def __init__(self) -> None:
        """
        Start with no UDP ports.
        """
        super().__init__()
        self.udp: list[_FakeUDPPort] = []

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> _FakeUDPPort:
        """
        Bind C{protocol} to a fake port.
        """
        fake = _FakeUDPPort(protocol)
        protocol.makeConnection(fake)
        self.udp.append(fake)
        return fake


class DefaultResolverTests(SynchronousTestCase):
    """
    L{defaultResolver} reads resolv.conf lazily.
    """

    def test_lazyAndUsesResolvConf(self) -> None:
        """
        Building the resolver touches neither the file nor the reactor; the
        first query reads the file (written after the resolver was built)
        and goes to its name server.
        """
        reactor = _UDPMemoryReactor()
        path = Path(self.mktemp())
        resolver = defaultResolver(reactor, resolvConf=str(path))
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(reactor.udp, [])

        path.write_text("nameserver 127.0.0.53\n")
        d = resolver.lookupService(STARTTLS_NAME + "example.com", (5,))
        self.assertNoResult(d)
        [port] = reactor.udp
        [(data, addr)] = port.written
        self.assertEqual(addr, ("127.0.0.53", 53))
        query = dns.Message()
        query.fromStr(data)
        self.assertEqual(
            [(q.name.name, q.type) for q in query.queries],
            [((STARTTLS_NAME + "example.com").encode(), dns.SRV)],
        )

        response = dns.Message(id=query.id, answer=1)
        response.queries = query.queries
        response.answers = [srv(STARTTLS_NAME + "example.com", 0, 0, 5269, "x.example.com")]
        port.protocol.datagramReceived(response.toStr(), addr)
        answers, _, _ = cast(Any, self.successResultOf(d))
        self.assertEqual([a.payload.target.name for a in answers], [b"x.example.com"])
        self.assertTrue(port.stopped)


class _MemoryAuthority(authority.FileAuthority):
    """
    An authority serving records given in memory.
    """

    def __init__(self, soa: tuple[bytes, dns.Record_SOA], records: dict[bytes, list[Any]]) -> None:
        """
        @param soa: the zone's name and SOA record.
        @param records: lower-cased names to their records.
        """
        super().__init__((soa, records))

    def loadFile(self, data: Any) -> None:
        """
        Take the records from C{data}, not a file.
        """
        self.soa, self.records = data


class _TrackingServerFactory(DNSServerFactory):
    """
    A L{DNSServerFactory} that truncates UDP answers at 512 bytes (as RFC
    1035 servers do; Twisted's never truncates), counts TCP connections and
    can wait for them to close.

    @ivar tcpConnections: how many TCP connections were made.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """
        Start with no connection and nobody waiting.
        """
        super().__init__(*args, **kwargs)
        self._waiting: list[Deferred[None]] = []
        self.tcpConnections = 0

    def sendReply(self, protocol: Any, message: dns.Message, address: Any) -> None:
        """
        Truncate replies sent over UDP (those with an C{address}).
        """
        if address is not None:
            message.maxSize = 512
        super().sendReply(protocol, message, address)

    def connectionMade(self, protocol: Any) -> None:
        """
        Count a TCP connection.
        """
        super().connectionMade(protocol)
        self.tcpConnections += 1

    def connectionLost(self, protocol: Any) -> None:
        """
        Stop tracking C{protocol}; wake waiters when none is left.
        """
        super().connectionLost(protocol)
        if not self.connections:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    def allClosed(self) -> Deferred[None]:
        """
        @return: a L{Deferred} firing once no TCP connection is open.
        """
        if not self.connections:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d


class _TrackingClientResolver(client.Resolver):
    """
    A L{client.Resolver} that can close its TCP connections and wait.
    """

    _closing: list[Deferred[None]] | None = None

    def connectionLost(self, protocol: Any) -> None:
        """
        Stop tracking C{protocol}; wake waiters when none is left.
        """
        super().connectionLost(protocol)
        if not self.connections and self._closing:
            waiting, self._closing = self._closing, []
            for d in waiting:
                d.callback(None)

    def closeAll(self) -> Deferred[None]:
        """
        Close every TCP connection.

        @return: a L{Deferred} firing once they are closed.
        """
        if not self.connections:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._closing = [d]
        for protocol in list(self.connections):
            protocol.transport.loseConnection()
        return d


class DNSServerIntegrationTests(TestCase):
    """
    SRV resolution end to end against a real DNS server on 127.0.0.1.
    """

    def setUp(self) -> None:
        """
        Serve the zone C{example.test} over UDP and TCP on one port.
        """
        zone = b"example.test"
        soa = dns.Record_SOA(
            mname=b"ns.example.test",
            rname=b"hostmaster.example.test",
            serial=1,
            refresh=3600,
            retry=600,
            expire=86400,
            minimum=60,
            ttl=60,
        )
        tls = (TLS_NAME + "example.test").encode()
        plain = (STARTTLS_NAME + "example.test").encode()
        many = (STARTTLS_NAME + "many.example.test").encode()
        records: dict[bytes, list[Any]] = {
            zone: [soa],
            tls: [dns.Record_SRV(5, 0, 5223, b"tls.example.test", ttl=60)],
            plain: [
                dns.Record_SRV(20, 0, 5270, b"backup.example.test", ttl=60),
                dns.Record_SRV(10, 0, 5269, b"xmpp.example.test", ttl=60),
            ],
            (TLS_NAME + "closed.example.test").encode(): [dns.Record_SRV(0, 0, 0, b"", ttl=60)],
            (STARTTLS_NAME + "closed.example.test").encode(): [
                dns.Record_SRV(0, 0, 0, b"", ttl=60)
            ],
            # Far more than fits in 512 bytes of UDP: forces a TCP retry.
            many: [
                dns.Record_SRV(i, 0, 6000 + i, b"host%d.many.example.test" % i, ttl=60)
                for i in range(40)
            ],
        }
        self.serverFactory = _TrackingServerFactory(
            authorities=[_MemoryAuthority((zone, soa), records)]
        )
        self.udpPort, self.tcpPort = self._listen(self.serverFactory)
        self.addCleanup(self.tcpPort.stopListening)
        self.addCleanup(self.udpPort.stopListening)
        self.resolver = _TrackingClientResolver(
            servers=[("127.0.0.1", cast(IPv4Address, self.udpPort.getHost()).port)],
            reactor=_realReactor(),
        )
        self.addCleanup(self.serverFactory.allClosed)
        self.addCleanup(self.resolver.closeAll)

    def _listen(self, factory: DNSServerFactory) -> tuple[IListeningPort, IListeningPort]:
        """
        Listen for UDP and TCP on the same free port of 127.0.0.1.
        """
        from twisted.internet.error import CannotListenError

        for _ in range(20):
            udp = _realReactor().listenUDP(
                0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1"
            )
            try:
                tcp = _realReactor().listenTCP(
                    cast(IPv4Address, udp.getHost()).port,
                    factory,
                    interface="127.0.0.1",
                )
            except CannotListenError:
                udp.stopListening()
                continue
            return udp, tcp
        self.fail("no port free for both UDP and TCP")

    async def test_srv(self) -> None:
        """
        Both record sets come from the server: direct TLS first, then the
        STARTTLS targets by priority.
        """
        targets = await resolveTargets("example.test", None, self.resolver)
        self.assertEqual(
            targets,
            [
                Target("tls.example.test", 5223, True),
                Target("xmpp.example.test", 5269, False),
                Target("backup.example.test", 5270, False),
            ],
        )

    async def test_nxdomain(self) -> None:
        """
        A name the server does not know: fall back to the domain on 5269.
        """
        targets = await resolveTargets("nothing.example.test", None, self.resolver)
        self.assertEqual(targets, [Target("nothing.example.test", 5269, False)])

    async def test_notAvailable(self) -> None:
        """
        C{.} for both services: no targets.
        """
        targets = await resolveTargets("closed.example.test", None, self.resolver)
        self.assertEqual(targets, [])

    async def test_truncatedOverTCP(self) -> None:
        """
        An answer too large for UDP is fetched again over TCP; all 40
        records arrive, in priority order.
        """
        targets = await resolveTargets("many.example.test", None, self.resolver)
        self.assertEqual([t.port for t in targets], [6000 + i for i in range(40)])
        self.assertEqual(targets[39].host, "host39.many.example.test")
        self.assertEqual(self.serverFactory.tcpConnections, 1)


class _Recorder(Protocol):
    """
    A protocol recording what it receives and when it connects and closes.
    """

    def __init__(self) -> None:
        """
        Start with nothing received.
        """
        self.received = b""
        self.made: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.greeting = b""
        self._waiting: list[tuple[int, Deferred[bytes]]] = []

    def connectionMade(self) -> None:
        """
        Send the greeting, if any, and note the connection.
        """
        if self.greeting:
            assert self.transport is not None
            self.transport.write(self.greeting)
        self.made.callback(None)

    def dataReceived(self, data: bytes) -> None:
        """
        Record C{data}; wake waiters with enough bytes.
        """
        self.received += data
        still = []
        for size, d in self._waiting:
            if len(self.received) >= size:
                d.callback(self.received)
            else:
                still.append((size, d))
        self._waiting = still

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Note the close.
        """
        self.lost.callback(None)

    def receive(self, size: int) -> Deferred[bytes]:
        """
        @return: a L{Deferred} firing with what was received once it is at
            least C{size} bytes.
        """
        d: Deferred[bytes] = Deferred()
        self._waiting.append((size, d))
        self.dataReceived(b"")
        return d


class _RecordingServerFactory(ServerFactory):
    """
    Builds L{_Recorder}s that greet, and keeps them.
    """

    def __init__(self, greeting: bytes) -> None:
        """
        @param greeting: what each server protocol sends first.
        """
        self.greeting = greeting
        self.protocols: list[_Recorder] = []
        self.connected: Deferred[_Recorder] = Deferred()

    def buildProtocol(self, addr: Any) -> _Recorder:
        """
        Build and keep a greeting L{_Recorder}.
        """
        protocol = _Recorder()
        protocol.factory = self
        protocol.greeting = self.greeting
        self.protocols.append(protocol)
        if not self.connected.called:
            protocol.made.addCallback(lambda _: self.connected.callback(protocol))
        return protocol


def _selfSignedPEM(name: str) -> tuple[bytes, bytes]:
    """
    @return: a fresh key and a self-signed certificate for C{name}, as PEM.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyPEM = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return keyPEM, cert.public_bytes(serialization.Encoding.PEM)


def _noTLS() -> IOpenSSLClientConnectionCreator:
    """
    Stand-in for C{tlsOptionsFor} where TLS must not be asked for.
    """
    raise AssertionError("TLS options asked for a STARTTLS target")


class ConnectToFirstLoopbackTests(TestCase):
    """
    L{connectToFirst} against real listeners on 127.0.0.1.
    """

    def _listen(self, factory: ServerFactory, tls: Any = None) -> int:
        """
        Listen on a free port of 127.0.0.1 until the test ends.

        @param tls: server TLS options, or C{None} for plain TCP.
        @return: the port number.
        """
        if tls is None:
            port = _realReactor().listenTCP(0, factory, interface="127.0.0.1")
        else:
            port = _realReactor().listenSSL(0, factory, tls, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    async def _closedPort(self) -> int:
        """
        @return: a port of 127.0.0.1 nobody listens on (one just closed).
        """
        port = _realReactor().listenTCP(0, ServerFactory(), interface="127.0.0.1")
        number = port.getHost().port
        await port.stopListening()
        return number

    async def _close(self, *protocols: _Recorder) -> None:
        """
        Close the client side of a connection and wait for every given
        protocol to see it closed.
        """
        transport = protocols[0].transport
        assert transport is not None
        transport.loseConnection()
        for protocol in protocols:
            await protocol.lost

    async def test_firstRefusedSecondAccepts(self) -> None:
        """
        A refused first target is skipped; the connection to the second is
        returned with that target, and it is plain TCP.
        """
        server = _RecordingServerFactory(b"hello")
        closed = await self._closedPort()
        good = self._listen(server)
        targets = [Target("127.0.0.1", closed, False), Target("127.0.0.1", good, False)]
        connected, target = await connectToFirst(
            _realReactor(), targets, Factory.forProtocol(_Recorder), _noTLS, 5
        )
        protocol = cast(_Recorder, connected)
        self.assertEqual(target, targets[1])
        self.assertEqual(cast(Any, protocol.transport).getPeer().port, good)
        self.assertEqual(await protocol.receive(5), b"hello")
        self.assertFalse(ISSLTransport.providedBy(protocol.transport))
        serverProtocol = await server.connected
        await self._close(protocol, serverProtocol)

    async def test_allRefused(self) -> None:
        """
        When every target refuses, L{ConnectFailed} names each one with its
        reason.
        """
        first, second = await self._closedPort(), await self._closedPort()
        targets = [Target("127.0.0.1", first, False), Target("127.0.0.1", second, True)]
        with self.assertRaises(ConnectFailed) as caught:
            await connectToFirst(
                _realReactor(),
                targets,
                Factory.forProtocol(_Recorder),
                lambda: ssl.optionsForClientTLS("unused.example.test"),
                5,
            )
        failure = caught.exception
        self.assertEqual([t for t, _ in failure.attempts], targets)
        for _, reason in failure.attempts:
            self.assertIsInstance(reason, ConnectionRefusedError)
        text = str(failure)
        self.assertIn(f"127.0.0.1:{first}", text)
        self.assertIn(f"127.0.0.1:{second} (direct TLS)", text)

    async def test_directTLS(self) -> None:
        """
        A direct TLS target gets TLS from the first byte, with the options
        C{tlsOptionsFor} returns: the server's self-signed certificate is
        accepted as the trust root and data flows.
        """
        name = "tls.example.test"
        keyPEM, certPEM = _selfSignedPEM(name)
        serverTLS = ssl.PrivateCertificate.loadPEM(keyPEM + certPEM).options()
        server = _RecordingServerFactory(b"secret")
        port = self._listen(server, serverTLS)
        asked: list[str] = []

        def tlsOptionsFor() -> IOpenSSLClientConnectionCreator:
            asked.append(name)
            return ssl.optionsForClientTLS(name, trustRoot=ssl.Certificate.loadPEM(certPEM))

        targets = [Target("127.0.0.1", port, True)]
        connected, target = await connectToFirst(
            _realReactor(), targets, Factory.forProtocol(_Recorder), tlsOptionsFor, 5
        )
        protocol = cast(_Recorder, connected)
        self.assertEqual(target, targets[0])
        self.assertEqual(asked, [name])
        self.assertTrue(ISSLTransport.providedBy(protocol.transport))
        self.assertEqual(await protocol.receive(6), b"secret")
        peer: Any = cast(ISSLTransport, protocol.transport).getPeerCertificate()
        self.assertEqual(
            peer.to_cryptography().subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
            name,
        )
        serverProtocol = await server.connected
        await self._close(protocol, serverProtocol)


class ConnectToFirstMemoryTests(SynchronousTestCase):
    """
    L{connectToFirst} against a L{MemoryReactorClock}.
    """

    def setUp(self) -> None:
        """
        Make a reactor and two targets.
        """
        self.reactor = MemoryReactorClock()
        self.targets = [
            Target("127.0.0.1", 5001, False),
            Target("127.0.0.1", 5002, False),
        ]

    def _refuse(self, index: int) -> None:
        """
        Refuse the C{index}th TCP connection attempt, and let the
        L{HostnameEndpoint} notice that it has no other address to try.
        """
        self.reactor.tcpClients[index][2].clientConnectionFailed(
            self.reactor.connectors[index], Failure(ConnectionRefusedError())
        )
        self.reactor.advance(1)

    def test_oneAtATime(self) -> None:
        """
        Targets are tried in order, the next only after the previous failed,
        each with the given connect timeout.
        """
        d = connectToFirst(self.reactor, self.targets, Factory.forProtocol(_Recorder), _noTLS, 7)
        self.assertEqual([(c[1], c[3]) for c in self.reactor.tcpClients], [(5001, 7)])
        self._refuse(0)
        self.assertEqual([(c[1], c[3]) for c in self.reactor.tcpClients], [(5001, 7), (5002, 7)])
        self.assertNoResult(d)
        protocol = self.reactor.tcpClients[1][2].buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(StringTransport())
        connected, target = self.successResultOf(d)
        self.assertIsInstance(connected, _Recorder)
        self.assertEqual(target, self.targets[1])

    def test_cancel(self) -> None:
        """
        Cancelling stops the attempt in progress and tries no other target.
        """
        d = connectToFirst(self.reactor, self.targets, Factory.forProtocol(_Recorder), _noTLS, 7)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_noTargets(self) -> None:
        """
        With no targets, L{ConnectFailed} at once, naming none.
        """
        d = connectToFirst(self.reactor, [], Factory.forProtocol(_Recorder), _noTLS, 7)
        failure = self.failureResultOf(d, ConnectFailed)
        self.assertEqual(failure.value.attempts, ())
        self.assertEqual(str(failure.value), "no targets to connect to")

    def test_tlsOptionsFail(self) -> None:
        """
        If C{tlsOptionsFor} raises, that target counts as failed (and the
        error is logged); the next target is tried.
        """
        targets = [Target("127.0.0.1", 5223, True), Target("127.0.0.1", 5269, False)]

        def broken() -> IOpenSSLClientConnectionCreator:
            raise ValueError("no certificate configured")

        d = connectToFirst(self.reactor, targets, Factory.forProtocol(_Recorder), broken, 7)
        self.assertEqual([c[1] for c in self.reactor.tcpClients], [5269])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self._refuse(0)
        failure = self.failureResultOf(d, ConnectFailed)
        self.assertEqual([t for t, _ in failure.value.attempts], targets)
        self.assertIsInstance(failure.value.attempts[0][1], ValueError)
