# -*- test-case-name: tests.test_s2s_addresses -*-
"""
Tests for L{xmppnetgraph.s2s.addresses}: the node never connects to a
private address for a domain that has no static route.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import EventLoggingObserver, MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber.jid import JID
from zope.interface import implementer

from tests.nodes import SRVOnly
from tests.test_resolve import FakeResolver, srv
from tests.test_s2s_failures import ADDRESS, NodeTestCase
from xmppnetgraph.config import Route
from xmppnetgraph.error import AddressRefused, ConnectFailed, PrivateAddressesOnly
from xmppnetgraph.s2s.addresses import AddressFilter, refusalReason
from xmppnetgraph.s2s.resolve import Target, connectToFirst, resolveTargets

STARTTLS_NAME = "_xmpp-server._tcp."

#: Addresses the policy refuses, with the reason it gives.
REFUSED = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "not globally reachable"),
    ("127.0.0.1", "loopback"),
    ("127.3.4.5", "loopback"),
    ("10.1.2.3", "private (RFC 1918)"),
    ("172.16.0.1", "private (RFC 1918)"),
    ("172.31.255.254", "private (RFC 1918)"),
    ("192.168.1.1", "private (RFC 1918)"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("100.127.255.254", "shared address space (CGNAT)"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.1", "not globally reachable"),
    ("198.18.0.1", "not globally reachable"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "unique local (private)"),
    ("fd12:3456::1", "unique local (private)"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback (IPv4-mapped 127.0.0.1)"),
    ("::ffff:10.0.0.1", "private (RFC 1918) (IPv4-mapped 10.0.0.1)"),
    ("64:ff9b::a00:1", "private (RFC 1918) (NAT64 10.0.0.1)"),
    ("64:ff9b::7f00:1", "loopback (NAT64 127.0.0.1)"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:7f00:1::1", "loopback (6to4 127.0.0.1)"),
    ("2002:a9fe:a9fe::1", "link-local (6to4 169.254.169.254)"),
    ("::7f00:1", "reserved"),
    ("100::1", "reserved"),
    ("2001:db8::1", "not globally reachable"),
    ("2001::1", "not globally reachable"),
    ("localhost", "not an IP address"),
]

#: Addresses the policy allows.
ALLOWED = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.215.14",
    "100.63.255.255",
    "100.128.0.0",
    "172.32.0.1",
    "192.88.99.1",
    "2001:4860:4860::8888",
    "2a00:1450:4001::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


class RefusalReasonTests(SynchronousTestCase):
    """
    L{refusalReason}: the address policy, by table.
    """

    def test_refused(self) -> None:
        """
        Loopback, private, link-local, multicast, CGNAT, reserved and
        other non-global addresses are refused, IPv6 addresses carrying an
        IPv4 address by that address, each with its reason.
        """
        self.assertEqual([(a, refusalReason(a)) for a, _ in REFUSED], REFUSED)

    def test_allowed(self) -> None:
        """
        Globally reachable unicast addresses are allowed, also when they
        come IPv4-mapped, through NAT64 or 6to4.
        """
        self.assertEqual([(a, refusalReason(a)) for a in ALLOWED], [(a, None) for a in ALLOWED])


@implementer(IHostResolution)
class _Resolution:
    """
    A finished resolution.
    """

    def __init__(self, name: str) -> None:
        """
        @param name: the name resolved.
        """
        self.name = name

    def cancel(self) -> None:
        """
        Nothing to cancel.
        """


@implementer(IHostnameResolver)
class TableNameResolver:
    """
    A host name resolver answering from a table, synchronously, and
    recording the names asked for.

    @ivar hosts: name to addresses (text); unknown names resolve to none.
    @ivar asked: the names resolved, in order.
    """

    def __init__(self, hosts: dict[str, Sequence[str]]) -> None:
        """
        @param hosts: see L{hosts}.
        """
        self.hosts = hosts
        self.asked: list[str] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """
        Give the receiver the addresses in the table.
        """
        self.asked.append(hostName)
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        for host in self.hosts.get(hostName, ()):
            kind = IPv6Address if ":" in host else IPv4Address
            resolutionReceiver.addressResolved(kind("TCP", host, portNumber))
        resolutionReceiver.resolutionComplete()
        return resolution


class ConnectThroughFilterTests(SynchronousTestCase):
    """
    L{connectToFirst} with an L{AddressFilter} on a L{MemoryReactorClock}
    whose host names resolve from a table, after SRV resolution against a
    fake DNS resolver: only allowed addresses are connected to.
    """

    def setUp(self) -> None:
        """
        Make the reactor, its name table and a log observer.
        """
        self.reactor = MemoryReactorClock()
        self.names = TableNameResolver({})
        self.reactor.installNameResolver(self.names)
        self.log = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def targets(self, domain: str, answers: dict[str, Any]) -> list[Target]:
        """
        @return: the targets of C{domain} by SRV against C{answers}.
        """
        return self.successResultOf(
            resolveTargets(domain, None, FakeResolver(answers), rng=random.Random(0))
        )

    def connect(self, domain: str, targets: list[Target]) -> defer.Deferred[Any]:
        """
        Connect to C{targets} through a filter for C{domain}.
        """
        return connectToFirst(
            self.reactor,
            targets,
            Factory.forProtocol(Protocol),
            lambda: None,  # type: ignore[arg-type,return-value]
            7,
            AddressFilter(domain),
        )

    def refusals(self) -> list[dict[str, Any]]:
        """
        @return: the warnings the filter logged.
        """
        return [e for e in self.log if e["log_level"] == LogLevel.warn and "addresses" in e]

    def connectedTo(self) -> list[tuple[str, int]]:
        """
        @return: host and port of every TCP connection attempted.
        """
        return [(c[0], c[1]) for c in self.reactor.tcpClients]

    def test_srvTargetPrivate(self) -> None:
        """
        SRV names a target whose name resolves to loopback: nothing is
        connected to, the failure says which domain resolves only to
        private addresses (and through which name), and the refusal is
        logged once, with the domain and the address.
        """
        targets = self.targets(
            "evil.example",
            {STARTTLS_NAME + "evil.example": [srv(STARTTLS_NAME, 0, 0, 5269, "xmpp.evil.example")]},
        )
        self.names.hosts["xmpp.evil.example"] = ["127.0.0.1"]
        d = self.connect("evil.example", targets)
        self.reactor.advance(1)
        failure = self.failureResultOf(d, PrivateAddressesOnly)
        self.assertIsInstance(failure.value, ConnectFailed)
        self.assertEqual(self.connectedTo(), [])
        self.assertEqual(self.names.asked, ["xmpp.evil.example"])
        self.assertEqual(
            str(failure.value),
            "evil.example resolves only to private addresses (xmpp.evil.example: 127.0.0.1)",
        )
        [(target, reason)] = failure.value.attempts
        self.assertIsInstance(reason, AddressRefused)
        self.assertEqual(
            str(reason), "xmpp.evil.example resolves only to private addresses (127.0.0.1)"
        )
        [event] = self.refusals()
        self.assertEqual(event["domain"], "evil.example")
        self.assertEqual(event["host"], "xmpp.evil.example")
        self.assertEqual(event["addresses"], "127.0.0.1 (loopback)")

    def test_fallbackToDomain(self) -> None:
        """
        Without SRV records the domain itself is resolved, and refused when
        it points at private addresses; the message names the domain alone.
        """
        targets = self.targets("pubsub.evil.example", {})
        self.assertEqual(targets, [Target("pubsub.evil.example", 5269, False)])
        self.names.hosts["pubsub.evil.example"] = ["127.0.0.1", "::1"]
        d = self.connect("pubsub.evil.example", targets)
        self.reactor.advance(1)
        failure = self.failureResultOf(d, PrivateAddressesOnly)
        self.assertEqual(
            str(failure.value),
            "pubsub.evil.example resolves only to private addresses (127.0.0.1, ::1)",
        )
        self.assertEqual(self.connectedTo(), [])
        self.assertEqual(len(self.refusals()), 1)

    def test_mixedAnswer(self) -> None:
        """
        A name that resolves to a private and a public address: only the
        public one is connected to, even after it fails; the private one is
        logged as refused, and the failure is the public one's.
        """
        targets = self.targets(
            "mixed.example",
            {
                STARTTLS_NAME + "mixed.example": [
                    srv(STARTTLS_NAME, 0, 0, 5269, "xmpp.mixed.example")
                ]
            },
        )
        self.names.hosts["xmpp.mixed.example"] = ["10.0.0.1", "93.184.215.14", "fd00::1"]
        d = self.connect("mixed.example", targets)
        self.assertEqual(self.connectedTo(), [("93.184.215.14", 5269)])
        self.reactor.tcpClients[0][2].clientConnectionFailed(
            self.reactor.connectors[0], Failure(ConnectionRefusedError())
        )
        self.reactor.advance(1)
        failure = self.failureResultOf(d, ConnectFailed)
        self.assertNotIsInstance(failure.value, PrivateAddressesOnly)
        self.assertIsInstance(failure.value.attempts[0][1], ConnectionRefusedError)
        self.assertEqual(self.connectedTo(), [("93.184.215.14", 5269)])
        [event] = self.refusals()
        self.assertEqual(
            event["addresses"], "10.0.0.1 (private (RFC 1918)), fd00::1 (unique local (private))"
        )

    def test_mixedAnswerConnects(self) -> None:
        """
        The control: the public address of a mixed answer is connected to
        and the connection is handed back.
        """
        targets = [Target("xmpp.mixed.example", 5269, False)]
        self.names.hosts["xmpp.mixed.example"] = ["127.0.0.1", "93.184.215.14"]
        d = self.connect("mixed.example", targets)
        self.assertEqual(self.connectedTo(), [("93.184.215.14", 5269)])
        protocol = self.reactor.tcpClients[0][2].buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(StringTransport())
        _, target = self.successResultOf(d)
        self.assertEqual(target, targets[0])

    def test_privateThenPublicTarget(self) -> None:
        """
        A refused SRV target is skipped for the next one, which is public;
        when that fails too, L{ConnectFailed} names both, the first with
        L{AddressRefused}.
        """
        targets = self.targets(
            "two.example",
            {
                STARTTLS_NAME + "two.example": [
                    srv(STARTTLS_NAME, 0, 0, 5269, "inside.two.example"),
                    srv(STARTTLS_NAME, 10, 0, 5270, "outside.two.example"),
                ]
            },
        )
        self.names.hosts["inside.two.example"] = ["192.168.0.10"]
        self.names.hosts["outside.two.example"] = ["1.1.1.1"]
        d = self.connect("two.example", targets)
        self.assertEqual(self.connectedTo(), [("1.1.1.1", 5270)])
        self.reactor.tcpClients[0][2].clientConnectionFailed(
            self.reactor.connectors[0], Failure(ConnectionRefusedError())
        )
        self.reactor.advance(1)
        failure = self.failureResultOf(d, ConnectFailed)
        self.assertNotIsInstance(failure.value, PrivateAddressesOnly)
        self.assertEqual(
            [type(reason) for _, reason in failure.value.attempts],
            [AddressRefused, ConnectionRefusedError],
        )

    def test_ipLiteralTarget(self) -> None:
        """
        An SRV target written as an IP address goes through the same check.
        """
        targets = [Target("169.254.169.254", 80, False)]
        self.names.hosts["169.254.169.254"] = ["169.254.169.254"]
        d = self.connect("cloud.example", targets)
        self.reactor.advance(1)
        failure = self.failureResultOf(d, PrivateAddressesOnly)
        self.assertEqual(
            str(failure.value),
            "cloud.example resolves only to private addresses (169.254.169.254: 169.254.169.254)",
        )
        self.assertEqual(self.connectedTo(), [])

    def test_noAddressesAtAll(self) -> None:
        """
        A name that resolves to nothing fails as before (no refusal is
        logged; the error is Twisted's DNS lookup error, not ours).
        """
        d = self.connect("nothing.example", [Target("nothing.example", 5269, False)])
        self.reactor.advance(1)
        failure = self.failureResultOf(d, ConnectFailed)
        self.assertNotIsInstance(failure.value, PrivateAddressesOnly)
        self.assertNotIsInstance(failure.value.attempts[0][1], AddressRefused)
        self.assertEqual(self.refusals(), [])


class PrivateAddressNodeTests(NodeTestCase):
    """
    Real nodes on 127.0.0.1: A reaches B only through DNS (an SRV record
    naming C{localhost}, which the system resolves to 127.0.0.1), B reaches
    A by a static route.
    """

    def startWithSRV(self, **aConfig: Any) -> None:
        """
        Start B with a route to A, and A with an SRV record for B pointing
        at C{localhost} and B's port.
        """
        resolver = SRVOnly({STARTTLS_NAME + "b.example": ("localhost", self.b.s2sPort)})
        self.a.build(resolver=resolver, **aConfig)
        self.a.start()
        self.addCleanup(self.a.stop)
        self.start(self.b, routes=(Route("a.example", ADDRESS, self.a.s2sPort),))

    async def test_refused(self) -> None:
        """
        By default A does not connect: the request bounces with
        C{remote-server-not-found}, the warning names B's domain and
        127.0.0.1, and no link appears.
        """
        log = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.startWithSRV()
        self.assertEqual(await self.requestError(self.a, "b.example"), "remote-server-not-found")
        self.assertEqual(self.a.links(), [])
        self.assertEqual(self.b.links(), [])
        refusals = [e for e in log if e.get("host") == "localhost" and "addresses" in e]
        self.assertEqual(len(refusals), 1)
        self.assertEqual(refusals[0]["domain"], "b.example")
        self.assertIn("127.0.0.1 (loopback)", refusals[0]["addresses"])
        failures = [e["reason"] for e in log if e.get("domain") == "b.example" and "reason" in e]
        self.assertIn(
            "b.example resolves only to private addresses (localhost: 127.0.0.1", failures[0]
        )

    async def test_allowed(self) -> None:
        """
        With C{allowPrivateAddresses}, the same setup federates.
        """
        self.startWithSRV(allowPrivateAddresses=True)
        info = await self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        self.assertIsNotNone(info)
        self.assertIn(("b.example", "outgoing"), [link[:2] for link in self.a.links()])

    async def test_routeToLoopbackName(self) -> None:
        """
        A static route is the operator's choice: a route whose host is a
        name resolving to loopback is used even without
        C{allowPrivateAddresses}.
        """
        self.start(self.a, routes=(Route("b.example", "localhost", self.b.s2sPort),))
        self.start(self.b, routes=(Route("a.example", ADDRESS, self.a.s2sPort),))
        info = await self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        self.assertIsNotNone(info)
        self.assertIn(("b.example", "outgoing"), [link[:2] for link in self.a.links()])
