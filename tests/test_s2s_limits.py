# -*- test-case-name: tests.test_s2s_limits -*-
"""
Slow, half-open and too many peers, on real loopback sockets against a
node started as in L{tests.nodes}: connections that stall before or during
STARTTLS, or drip their stream header a byte at a time, are closed at the
handshake timeout while an authenticated stream goes on; the caps on
unauthenticated connections refuse the excess with
C{<resource-constraint/>}.

C{XMPPNETGRAPH_TEST_CONNECTIONS} sets how many stalling connections the
slow-peer test opens (default 1000).
"""

from __future__ import annotations

import gc
import os
import resource
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber.jid import JID
from zope.interface import provider

from tests.nodes import freePort, waitFor
from tests.test_s2s_failures import ADDRESS, NodeTestCase, rawHeader, streamErrors
from xmppnetgraph.s2s.admission import Admission, sourceOf
from xmppnetgraph.s2s.xmlstream import CLOSE_GRACE, S2SXmlStream

#: Stalling connections the slow-peer test opens.
CONNECTIONS = int(os.environ.get("XMPPNETGRAPH_TEST_CONNECTIONS", "1000"))

#: The handshake timeout of the attacked node, in seconds.
HANDSHAKE_TIMEOUT = 2.0

#: Seconds between two bytes of a dripped header: the whole header takes
#: many handshake timeouts.
DRIP_INTERVAL = 0.1

STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"

#: The start of a TLS record that announces a 512-byte ClientHello, of
#: which only these bytes ever come.
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)


def raiseFileLimit() -> Callable[[], None]:
    """
    Raise this process's soft limit on open files to the hard one.

    @return: the function that restores the old limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def openFiles() -> int:
    """
    @return: the file descriptors this process has open.
    """
    return len(os.listdir("/proc/self/fd"))


def liveStreams() -> int:
    """
    @return: the L{S2SXmlStream} objects in memory, after a collection.
    """
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, S2SXmlStream))


class Staller(Protocol):
    """
    A peer that connects and stalls, in one of four ways (C{kind}):

      - C{silent}: sends nothing;
      - C{starttls}: sends a stream header and C{<starttls/>}, then, when
        told to proceed, nothing (no ClientHello);
      - C{hello}: the same, then the first bytes of a ClientHello that
        never ends;
      - C{drip}: sends a stream header a byte every L{DRIP_INTERVAL}
        seconds;
      - C{header}: sends a stream header, then nothing.

    @ivar received: everything the node sent.
    @ivar left: for C{drip}, the bytes of the header not sent when the
        connection ended.
    @ivar closed: fires when the connection is gone.
    """

    def __init__(self, kind: str, to: str) -> None:
        self.kind = kind
        self.header = rawHeader(to)
        self.received = b""
        self.left = 0
        self._helloSent = False
        self._drip: Any = None
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        """
        Start stalling.
        """
        if self.kind in ("starttls", "hello"):
            self.transport.write(self.header + STARTTLS)
        elif self.kind == "header":
            self.transport.write(self.header)
        elif self.kind == "drip":
            self.left = len(self.header)
            self._dripOne()

    def _dripOne(self) -> None:
        """
        Send the next byte of the header, and plan the one after.
        """
        from twisted.internet import reactor

        self._drip = None
        sent = len(self.header) - self.left
        self.transport.write(self.header[sent : sent + 1])
        self.left -= 1
        if self.left:
            self._drip = reactor.callLater(DRIP_INTERVAL, self._dripOne)

    def dataReceived(self, data: bytes) -> None:
        """
        Keep what the node says; for C{hello}, answer C{<proceed/>} with
        the start of a ClientHello.
        """
        self.received += data
        if self.kind == "hello" and not self._helloSent and b"<proceed" in self.received:
            self._helloSent = True
            self.transport.write(PARTIAL_CLIENT_HELLO)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The node closed the connection.
        """
        if self._drip is not None:
            self._drip.cancel()
            self._drip = None
        self.closed.callback(None)


async def connectFrom(source: str, port: int, protocol: Protocol) -> Protocol:
    """
    Connect C{protocol} from the loopback address C{source} to C{port} on
    L{ADDRESS}.
    """
    from twisted.internet import reactor

    endpoint = TCP4ClientEndpoint(reactor, ADDRESS, port, bindAddress=(source, 0))
    return await connectProtocol(endpoint, protocol)


class SlowPeerTests(NodeTestCase):
    """
    Stalled and dripping connections to A are closed at the handshake
    timeout, and everything they held is released, while A and B keep
    exchanging stanzas over their authenticated streams.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Allow enough open files for both ends of every connection.
        """
        super().setUp()
        self.addCleanup(raiseFileLimit())

    async def test_stalledConnectionsClosed(self) -> None:
        """
        L{CONNECTIONS} connections, a quarter of each kind of L{Staller},
        are all closed by A: the silent and dripping ones with
        C{<connection-timeout/>}, the dripping ones before their header is
        complete (the timeout runs from the connection, not from the last
        byte), the ones stalled in TLS without a word. Afterwards A has as
        many connections, streams in memory and open files as before, and
        the A-B streams that were up all along are the same ones and have
        answered every request meanwhile.
        """
        limits = dict(
            handshakeTimeout=HANDSHAKE_TIMEOUT,
            maxUnauthenticated=CONNECTIONS + 10,
            maxUnauthenticatedPerAddress=CONNECTIONS + 10,
        )
        port = freePort(ADDRESS)
        self.a.s2sPort = port
        self.startBoth(a=dict(limits, s2s=f"tcp:{port}:interface={ADDRESS}:backlog=1024"))
        await self.discoRoundTrip()
        links = set(self.a.s2s.linkTable.links())
        connections = self.a.s2s.connectionCount
        files = openFiles()
        streams = liveStreams()

        kinds = ("silent", "starttls", "hello", "drip")
        stallers = [Staller(kinds[i % len(kinds)], self.a.domain) for i in range(CONNECTIONS)]
        for staller in stallers:
            await connectFrom(ADDRESS, port, staller)

        answers = 0
        attackOver = defer.DeferredList([s.closed for s in stallers])
        while not attackOver.called:
            await self.a.disco.requestInfo(JID(self.b.domain), sender=JID(self.a.domain))
            await self.b.disco.requestInfo(JID(self.a.domain), sender=JID(self.b.domain))
            answers += 1
            await deferLater(self.reactor(), 0.1, lambda: None)
        self.assertGreater(answers, 0)
        self.assertEqual(set(self.a.s2s.linkTable.links()), links)

        for staller in stallers:
            conditions = streamErrors(staller.received.split(b"<proceed", 1)[0])
            if staller.kind in ("silent", "drip"):
                self.assertEqual(conditions, ["connection-timeout"], staller.kind)
            else:
                self.assertIn(b"<proceed", staller.received)
                self.assertEqual(conditions, [])
            if staller.kind == "drip":
                self.assertGreater(staller.left, 0)

        await waitFor(lambda: self.a.s2s.connectionCount == connections, timeout=CLOSE_GRACE + 10)
        self.assertEqual(self.a.s2s.admission.count, 0)
        del stallers, attackOver
        await waitFor(lambda: openFiles() <= files, timeout=10)
        self.assertLessEqual(liveStreams(), streams)

    def reactor(self) -> Any:
        """
        @return: the global reactor, which the nodes run in.
        """
        from twisted.internet import reactor

        return reactor


@provider(ILogObserver)
class _Warnings:
    """
    Collects the log events of L{xmppnetgraph.s2s.admission}.
    """

    def __init__(self) -> None:
        self.events: list[LogEvent] = []

    def __call__(self, event: LogEvent) -> None:
        """
        Keep an event of the admission module.
        """
        if event.get("log_namespace", "").startswith("xmppnetgraph.s2s.admission"):
            self.events.append(event)


class AdmissionTests(NodeTestCase):
    """
    The caps on unauthenticated connections, per source address and
    overall, on A's plain and direct-TLS listeners.
    """

    def setUp(self) -> None:
        """
        Collect the admission log.
        """
        super().setUp()
        self.log = _Warnings()
        globalLogPublisher.addObserver(self.log)
        self.addCleanup(globalLogPublisher.removeObserver, self.log)

    async def silent(self, source: str, port: int | None = None) -> Staller:
        """
        Open a connection to A from C{source} that says nothing, and wait
        until A counts it; it is closed after the test.
        """
        staller = Staller("silent", self.a.domain)
        before = self.a.s2s.admission.count
        await connectFrom(source, port or self.a.s2sPort, staller)

        def close() -> defer.Deferred[None]:
            if not staller.closed.called:
                staller.transport.loseConnection()
            return staller.closed

        self.addCleanup(close)
        await waitFor(lambda: self.a.s2s.admission.count > before)
        return staller

    async def refused(self, source: str, port: int | None = None) -> bytes:
        """
        Connect to A from C{source}, send a stream header, and wait until A
        closes the connection.

        @return: what A sent.
        """
        staller = Staller("header", self.a.domain)
        await connectFrom(source, port or self.a.s2sPort, staller)
        await staller.closed
        return staller.received

    def messages(self) -> list[str]:
        """
        @return: the admission log so far, formatted.
        """
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.log.events]

    async def test_caps(self) -> None:
        """
        With at most 2 unauthenticated connections per address and 3 in
        all, a third from one address and a fourth from anywhere are
        answered with C{<resource-constraint/>} and closed; each cap's
        episode is logged once when it starts, however many are refused,
        and once when it ends. Authenticated streams do not count: B's
        stream to A (from a fresh address) gets through once a place is
        free, and leaves the count as it was.
        """
        self.startBoth(a=dict(maxUnauthenticatedPerAddress=2, maxUnauthenticated=3))
        first = await self.silent("127.0.0.2")
        await self.silent("127.0.0.2")
        for _ in range(3):
            self.assertEqual(streamErrors(await self.refused("127.0.0.2")), ["resource-constraint"])
        self.assertEqual(len(self.messages()), 1)
        self.assertIn("from 127.0.0.2", self.messages()[0])

        await self.silent("127.0.0.3")
        for _ in range(3):
            self.assertEqual(streamErrors(await self.refused("127.0.0.4")), ["resource-constraint"])
        self.assertEqual(len(self.messages()), 2)
        self.assertIn("--max-unauthenticated)", self.messages()[1])
        self.assertEqual(self.a.s2s.admission.refusedTotal, 6)
        self.assertEqual(self.a.s2s.admission.count, 3)

        first.transport.loseConnection()
        await first.closed
        await waitFor(lambda: self.a.s2s.admission.count == 2)
        self.assertEqual(len(self.messages()), 4)
        self.assertIn("3 refused meanwhile", self.messages()[2])
        self.assertIn("3 refused meanwhile", self.messages()[3])

        await self.discoRoundTrip()
        self.assertEqual(self.a.s2s.admission.count, 2)
        self.assertEqual(self.a.s2s.admission.waiting, {"127.0.0.2": 1, "127.0.0.3": 1})

    async def test_directTLSClosedPlainly(self) -> None:
        """
        On the direct-TLS listener, a connection past a cap is closed
        without a word (answering would cost a TLS handshake); the plain
        listener shares the count.
        """
        directPort = freePort(ADDRESS)
        self.start(
            self.a,
            maxUnauthenticatedPerAddress=1,
            s2sDirectTLS=f"tcp:{directPort}:interface={ADDRESS}",
        )
        await self.silent("127.0.0.2", directPort)
        self.assertEqual(await self.refused("127.0.0.2", directPort), b"")
        self.assertEqual(streamErrors(await self.refused("127.0.0.2")), ["resource-constraint"])
        self.assertEqual(self.a.s2s.admission.refusedTotal, 2)


class AdmissionUnitTests(SynchronousTestCase):
    """
    L{Admission} and L{sourceOf} on their own.
    """

    def test_sourceOf(self) -> None:
        """
        IPv4 addresses count alone, also mapped into IPv6; IPv6 ones by
        their /64; anything else shares one key.
        """
        self.assertEqual(sourceOf(IPv4Address("TCP", "192.0.2.7", 1)), "192.0.2.7")
        self.assertEqual(sourceOf(IPv6Address("TCP", "::ffff:192.0.2.7", 1)), "192.0.2.7")
        self.assertEqual(
            sourceOf(IPv6Address("TCP", "2001:db8:1:2:aaaa::1", 1)),
            sourceOf(IPv6Address("TCP", "2001:db8:1:2:ffff::9", 1)),
        )
        self.assertNotEqual(
            sourceOf(IPv6Address("TCP", "2001:db8:1:2::1", 1)),
            sourceOf(IPv6Address("TCP", "2001:db8:1:3::1", 1)),
        )
        self.assertEqual(sourceOf(None), "")

    def test_heldAtTheCap(self) -> None:
        """
        A source held at its cap, each release letting the next refused
        connection in, is one episode: logged when it starts and when the
        count is a tenth under the cap, not twice per connection.
        """
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        admission = Admission(perAddress=20, total=1000)
        releases = [admission.admit("192.0.2.7") for _ in range(20)]
        for _ in range(10):
            self.assertIsNone(admission.admit("192.0.2.7"))
            releases.pop()()  # type: ignore[misc]
            new = admission.admit("192.0.2.7")
            self.assertIsNotNone(new)
            releases.append(new)
        self.assertEqual(len(events), 1)
        releases.pop()()  # type: ignore[misc]
        self.assertEqual(len(events), 1)
        releases.pop()()  # type: ignore[misc]
        self.assertEqual(len(events), 2)
        self.assertIn("10 refused", formatEvent(events[1]))
