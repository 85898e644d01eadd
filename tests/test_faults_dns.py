# -*- test-case-name: tests.test_faults_dns -*-
"""
DNS that fails: a tiny name server on 127.0.0.2 that answers every query
with SERVFAIL, or never answers, is the node's only resolver. Stanzas to a
domain it cannot resolve bounce, and while they keep coming the node backs
off: the name server sees no new query until the wait after the last
failure is over, and then one new attempt.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater
from twisted.names import client, dns
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID

from tests.nodes import RunningNode, waitFor
from xmppnetgraph.s2s import service

ADDRESS = "127.0.0.1"
DNS_ADDRESS = "127.0.0.2"


class BrokenNameServer(DatagramProtocol):
    """
    Counts the queries it receives; answers each with SERVFAIL, or not at
    all.

    @ivar queries: the names asked for, in order, once per datagram (a
        query the resolver sends again after a timeout is there again).
    @ivar lookups: the distinct queries (by message id and name): what the
        node asked, without the resolver's retransmissions.
    """

    def __init__(self, answer: bool) -> None:
        """
        @param answer: whether to answer (SERVFAIL) or stay silent.
        """
        self.answer = answer
        self.queries: list[bytes] = []
        self.lookups: set[tuple[int, bytes]] = set()

    def datagramReceived(self, datagram: bytes, address: tuple[str, int]) -> None:
        """
        Count the query; answer SERVFAIL if so told.
        """
        message = dns.Message()
        message.fromStr(datagram)
        for query in message.queries:
            self.queries.append(query.name.name)
            self.lookups.add((message.id, query.name.name))
        if self.answer:
            reply = dns.Message(id=message.id, answer=1, rCode=dns.ESERVER)
            reply.queries = message.queries
            self.transport.write(reply.toStr(), address)


def forgetRetransmissions() -> None:
    """
    Cancel the timers that the resolver's UDP protocols keep for queries
    that were given up on (they would outlive the test).
    """
    for call in reactor.getDelayedCalls():  # type: ignore[attr-defined]
        if isinstance(getattr(call.func, "__self__", None), dns.DNSDatagramProtocol):
            call.cancel()


class FailingDNSTests(TestCase):
    """
    Node A resolves through L{BrokenNameServer}.
    """

    timeout = 30

    def startNode(self, answer: bool) -> BrokenNameServer:
        """
        Start the name server and node A, which uses only it.
        """
        server = BrokenNameServer(answer)
        port = reactor.listenUDP(0, server, interface=DNS_ADDRESS)  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        resolver = client.Resolver(
            servers=[(DNS_ADDRESS, port.getHost().port)],
            reactor=reactor,  # type: ignore[arg-type]
        )
        self.addCleanup(forgetRetransmissions)
        base = Path(self.mktemp())
        base.mkdir()
        self.a = RunningNode(base, "a.example", ADDRESS)
        self.a.build(resolver=resolver, connectTimeout=0.5, handshakeTimeout=0.5)
        # A short first wait, so that the test sees it end.
        self.a.s2s.retryFirst = 1.0
        self.a.start()
        self.addCleanup(self.a.stop)
        return server

    async def requestError(self, domain: str) -> str:
        """
        @return: the condition a disco#info request from A to C{domain}
            fails with.
        """
        with self.assertRaises(error.StanzaError) as caught:
            await self.a.disco.requestInfo(JID(domain), sender=JID(self.a.domain))
        return caught.exception.condition  # type: ignore[no-any-return]

    async def backsOff(self, server: BrokenNameServer, condition: str) -> None:
        """
        The first request to x.example asks the name server and bounces
        with C{condition}; requests during the wait that follows bounce
        the same way without a query; the first request after it asks
        again.
        """
        self.assertEqual(await self.requestError("x.example"), condition)
        failedBy = reactor.seconds()  # type: ignore[attr-defined]
        asked = len(server.lookups)
        self.assertGreater(asked, 0)
        self.assertTrue(all(b"x.example" in name for name in server.queries))
        during = 0
        while reactor.seconds() < failedBy + self.a.s2s.retryFirst / 2:  # type: ignore[attr-defined]
            self.assertEqual(await self.requestError("x.example"), condition)
            during += 1
            await deferLater(reactor, 0.02, lambda: None)  # type: ignore[arg-type]
        self.assertGreater(during, 0)
        self.assertEqual(len(server.lookups), asked)
        # The wait began at the failure, before failedBy; once it is over,
        # the next stanza tries again (and fails again).
        await waitFor(
            lambda: reactor.seconds() > failedBy + self.a.s2s.retryFirst  # type: ignore[attr-defined]
        )
        self.assertEqual(await self.requestError("x.example"), condition)
        self.assertGreater(len(server.lookups), asked)

    async def test_servfail(self) -> None:
        """
        SERVFAIL for every name: C{remote-server-not-found}, with backoff.
        """
        server = self.startNode(answer=True)
        await self.backsOff(server, "remote-server-not-found")

    async def test_noAnswer(self) -> None:
        """
        No answer at all: C{remote-server-timeout} (the attempt's time
        runs out), with backoff.
        """
        server = self.startNode(answer=False)
        await self.backsOff(server, "remote-server-timeout")


class UnreachableMemoryTests(SynchronousTestCase):
    """
    What the s2s service remembers of failed domains stays bounded (the
    names come from remote input, e.g. dialback requests).
    """

    def test_bounded(self) -> None:
        """
        Past the cap the oldest failure is forgotten; a failure long
        expired is forgotten at the next one; a domain failing again moves
        to the back.
        """
        base = Path(self.mktemp())
        base.mkdir()
        node = RunningNode(base, "a.example", ADDRESS)
        node.build()
        s2s = node.s2s
        self.patch(service, "_UNREACHABLE_KEPT", 3)
        for name in ("d1.example", "d2.example", "d3.example"):
            s2s._failedToReach(name, "remote-server-not-found")
        s2s._failedToReach("d1.example", "remote-server-not-found")
        s2s._failedToReach("d4.example", "remote-server-not-found")
        self.assertEqual(list(s2s._unreachable), ["d3.example", "d1.example", "d4.example"])
        self.assertEqual(s2s._unreachable["d1.example"][1], 2)
        clock = [reactor.seconds()]  # type: ignore[attr-defined]
        self.patch(s2s._reactor, "seconds", lambda: clock[0] + 2 * s2s.retryMost + 60)
        s2s._failedToReach("d5.example", "remote-server-not-found")
        self.assertEqual(list(s2s._unreachable), ["d5.example"])
