# -*- test-case-name: tests.test_s2s_failures -*-
"""
Hostile input and failures on real loopback sockets: raw TCP clients that
send bad XML to a running node, unreachable and silent peers, queue limits,
reconnection on demand and idle timeouts. After each attack the node still
federates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests.nodes import (
    RunningNode,
    countAcceptedConnections,
    discoBothWays,
    freePort,
    linkedBothWays,
    routesTo,
    waitFor,
)
from xmppnetgraph.config import Route

ADDRESS = "127.0.0.1"


def rawHeader(to: str) -> bytes:
    """
    @return: an initiating server's stream header addressed to C{to}.
    """
    return (
        b"<stream:stream xmlns='jabber:server' "
        b"xmlns:stream='http://etherx.jabber.org/streams' "
        b"xmlns:db='jabber:server:dialback' "
        b"from='evil.example' to='" + to.encode() + b"' version='1.0'>"
    )


def billionLaughs(to: str) -> bytes:
    """
    @return: a 3 MB entity expansion (about a minute of CPU in an
        unprotected parser) in front of a stream header.
    """
    entities = [b'<!ENTITY l0 "lol">']
    for level in range(1, 7):
        entities.append(b'<!ENTITY l%d "%s">' % (level, b"&l%d;" % (level - 1) * 10))
    return (
        b"<?xml version='1.0'?>\n<!DOCTYPE s[\n"
        + b"\n".join(entities)
        + b"\n]>"
        + rawHeader(to)
        + b"<iq>&l6;</iq>"
    )


def streamErrors(data: bytes) -> list[str]:
    """
    @param data: everything a node sent on one connection.
    @return: the conditions of the stream errors in it.
    """
    elements: list[domish.Element] = []
    parser = domish.elementStream()
    parser.DocumentStartEvent = lambda root: None
    parser.ElementEvent = elements.append
    parser.DocumentEndEvent = lambda: None
    parser.parse(data)
    return [
        error.exceptionFromStreamError(e).condition
        for e in elements
        if (e.uri, e.name) == (xmlstream.NS_STREAMS, "error")
    ]


class _RawClient(Protocol):
    """
    Send C{payload} on connect and collect the answer until the node closes
    the connection.

    @ivar received: everything the node sent.
    @ivar closed: fires when the connection is gone.
    """

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.received = b""
        self.closed: defer.Deferred[None] = defer.Deferred(
            lambda _: self.transport.abortConnection()
        )

    def connectionMade(self) -> None:
        """
        Send the payload.
        """
        self.transport.write(self.payload)

    def dataReceived(self, data: bytes) -> None:
        """
        Collect what the node says.
        """
        self.received += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The node closed the connection.
        """
        self.closed.callback(None)


async def rawExchange(port: int, payload: bytes) -> bytes:
    """
    Connect to C{port} on loopback, send C{payload}, and wait until the
    node closes the connection.

    @return: what the node sent.
    """
    from twisted.internet import reactor

    client = _RawClient(payload)
    await connectProtocol(TCP4ClientEndpoint(reactor, ADDRESS, port), client)
    await client.closed.addTimeout(10, reactor)
    return client.received


class _SilentPeer(Protocol):
    """
    Accepts a TCP connection and never says anything.
    """

    def connectionMade(self) -> None:
        """
        Remember the connection.
        """
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.factory.connections.append(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The node gave up.
        """
        self.lost.callback(None)


class NodeTestCase(TestCase):
    """
    Node A (a.example) and node B (b.example) on 127.0.0.1.
    """

    timeout = 30

    def setUp(self) -> None:
        """
        Make the nodes; tests build and start them.
        """
        self.base = Path(self.mktemp())
        self.base.mkdir()
        self.a = RunningNode(self.base, "a.example", ADDRESS)
        self.b = RunningNode(self.base, "b.example", ADDRESS)

    def start(self, node: RunningNode, **config: Any) -> None:
        """
        Build and start C{node}; it is stopped after the test.
        """
        node.build(**config)
        node.start()
        self.addCleanup(node.stop)

    def startBoth(self, a: dict[str, Any] | None = None, b: dict[str, Any] | None = None) -> None:
        """
        Start A and B, each routing to the other.
        """
        self.start(self.a, routes=routesTo(self.b), **(a or {}))
        self.start(self.b, routes=routesTo(self.a), **(b or {}))

    async def discoRoundTrip(self) -> None:
        """
        A asks B for disco#info; both get an incoming and an outgoing link.
        """
        await discoBothWays(self, self.a, self.b)

    async def requestError(self, node: RunningNode, domain: str) -> str:
        """
        Send a disco#info request from C{node} to C{domain} that must fail.

        @return: the condition of the stanza error it fails with.
        """
        with self.assertRaises(error.StanzaError) as caught:
            await node.disco.requestInfo(JID(domain), sender=JID(node.domain))
        return caught.exception.condition  # type: ignore[no-any-return]

    def silentPeer(self) -> tuple[int, list[_SilentPeer]]:
        """
        Listen on loopback with a protocol that accepts and never answers;
        after the test, close every such connection that is still open.

        @return: the port, and the list of connections it accepts.
        """
        from twisted.internet import reactor

        factory = Factory.forProtocol(_SilentPeer)
        factory.connections = []  # type: ignore[attr-defined]
        port = reactor.listenTCP(0, factory, interface=ADDRESS)

        async def stop() -> None:
            await port.stopListening()
            for connection in factory.connections:  # type: ignore[attr-defined]
                connection.transport.loseConnection()
                await connection.lost

        self.addCleanup(lambda: defer.Deferred.fromCoroutine(stop()))
        return int(port.getHost().port), factory.connections  # type: ignore[attr-defined]


class HostileInputTests(NodeTestCase):
    """
    Bad XML from a raw TCP client gets a stream error; the node goes on
    serving its other streams.
    """

    async def test_restrictedAndMalformedXML(self) -> None:
        """
        The billion laughs and a comment get C{<restricted-xml/>}, broken
        XML gets C{<not-well-formed/>}, each connection is closed, and A
        federates with B afterwards.
        """
        self.startBoth()
        port = self.a.s2sPort
        laughs, comment, broken = await defer.gatherResults(
            [
                defer.Deferred.fromCoroutine(rawExchange(port, billionLaughs("a.example"))),
                defer.Deferred.fromCoroutine(
                    rawExchange(port, rawHeader("a.example") + b"<!-- hello -->")
                ),
                defer.Deferred.fromCoroutine(
                    rawExchange(port, rawHeader("a.example") + b"<message><</message>")
                ),
            ]
        )
        self.assertEqual(streamErrors(laughs), ["restricted-xml"])
        self.assertEqual(streamErrors(comment), ["restricted-xml"])
        self.assertEqual(streamErrors(broken), ["not-well-formed"])
        self.assertEqual(self.a.links(), [])
        await self.discoRoundTrip()

    async def test_policyViolation(self) -> None:
        """
        With federation up, a stanza over A's size limit and one nested
        deeper than its depth limit each get C{<policy-violation/>}; the
        established streams are undisturbed and keep working.
        """
        self.startBoth(a=dict(maxStanzaSize=8192, maxDepth=16))
        await self.discoRoundTrip()
        linksBefore = list(self.a.s2s.linkTable.links())
        port = self.a.s2sPort
        big = (
            b"<message from='evil.example' to='a.example'><body>"
            + b"x" * 10000
            + b"</body></message>"
        )
        deep = (
            b"<message from='evil.example' to='a.example'>"
            + b"<x>" * 20
            + b"</x>" * 20
            + b"</message>"
        )
        tooBig, tooDeep = await defer.gatherResults(
            [
                defer.Deferred.fromCoroutine(rawExchange(port, rawHeader("a.example") + big)),
                defer.Deferred.fromCoroutine(rawExchange(port, rawHeader("a.example") + deep)),
            ]
        )
        self.assertEqual(streamErrors(tooBig), ["policy-violation"])
        self.assertEqual(streamErrors(tooDeep), ["policy-violation"])
        await self.discoRoundTrip()
        self.assertEqual(list(self.a.s2s.linkTable.links()), linksBefore)


class SpoofingTests(NodeTestCase):
    """
    An impostor that claims another server's domain is found out by
    dialback: the genuine server, asked by the receiving one, says the key
    is not its own.
    """

    async def test_impostorRejected(self) -> None:
        """
        The impostor (claiming c.example) connects to A; A verifies with the
        genuine c.example, which answers invalid: no link appears on A for
        the impostor, its request bounces, and the genuine c.example then
        federates with A as usual.
        """
        genuine = RunningNode(self.base / "genuine", "c.example", ADDRESS)
        impostor = RunningNode(self.base / "impostor", "c.example", ADDRESS)
        self.start(self.a, routes=routesTo(genuine))
        self.start(impostor, routes=routesTo(self.a))
        self.start(genuine, routes=routesTo(self.a))

        self.assertEqual(await self.requestError(impostor, "a.example"), "remote-server-not-found")
        self.assertEqual([link for link in self.a.links() if link[1] == "incoming"], [])
        self.assertEqual(impostor.links(), [])

        await discoBothWays(self, genuine, self.a)
        self.assertTrue(linkedBothWays(self.a, "c.example"), self.a.links())

    async def test_impostorRejectedOverOurStream(self) -> None:
        """
        When A already has a stream to the genuine c.example, the impostor's
        key is checked over that stream (the genuine server accepts no new
        connection) and found invalid: the impostor gets no link, the
        genuine server's links stay.
        """
        accepted = countAcceptedConnections(self)
        genuine = RunningNode(self.base / "genuine", "c.example", ADDRESS)
        impostor = RunningNode(self.base / "impostor", "c.example", ADDRESS)
        self.start(self.a, routes=routesTo(genuine))
        self.start(genuine, routes=routesTo(self.a))
        self.start(impostor, routes=routesTo(self.a))
        await discoBothWays(self, self.a, genuine)
        before = dict(accepted)
        linksBefore = self.a.links()

        self.assertEqual(await self.requestError(impostor, "a.example"), "remote-server-not-found")
        self.assertEqual(accepted[genuine.s2s], before[genuine.s2s])
        self.assertEqual(accepted[self.a.s2s], before[self.a.s2s] + 1)
        self.assertEqual(self.a.links(), linksBefore)
        self.assertEqual(impostor.links(), [])

    async def test_sameSecretAccepted(self) -> None:
        """
        The control for L{test_impostorRejected}: a second process of the
        genuine server (sharing its dialback secret, as a cluster would) is
        accepted, so the rejection above is the key's doing.
        """
        genuine = RunningNode(self.base / "genuine", "c.example", ADDRESS)
        sibling = RunningNode(self.base / "sibling", "c.example", ADDRESS)
        self.start(self.a, routes=routesTo(genuine))
        self.start(genuine, routes=routesTo(self.a), dialbackSecret="shared secret of c.example")
        self.start(sibling, routes=routesTo(self.a), dialbackSecret="shared secret of c.example")
        # A answers through its route to the genuine node, so the sibling
        # never sees the answer: what counts is that A accepts its stream.
        request = sibling.disco.requestInfo(JID("a.example"), sender=JID("c.example"))
        request.addErrback(lambda f: f.trap(defer.CancelledError))
        # The sibling records its link when it reads A's verdict, which A
        # sends as it records its own: wait for both.
        await waitFor(lambda: self.a.links() and sibling.links())
        self.assertIn(("c.example", "incoming", "dialback", "TLSv1.3"), self.a.links())
        self.assertIn(("a.example", "outgoing", "dialback", "TLSv1.3"), sibling.links())
        request.cancel()


class UnreachablePeerTests(NodeTestCase):
    """
    Stanzas to peers that cannot be reached bounce with the right error.
    """

    async def test_closedPort(self) -> None:
        """
        A domain routed to a closed port: C{remote-server-not-found}.
        """
        closed = freePort(ADDRESS)
        self.start(self.a, routes=(Route("x.example", ADDRESS, closed),))
        self.assertEqual(await self.requestError(self.a, "x.example"), "remote-server-not-found")
        self.assertEqual(self.a.links(), [])

    async def test_noConnectionsAfterStop(self) -> None:
        """
        A stanza that reaches the stopped s2s service (work finishing during
        shutdown) opens no connection: it is dropped.
        """
        port, connections = self.silentPeer()
        self.start(self.a, routes=(Route("x.example", ADDRESS, port),))
        await self.a.s2s.stopService()
        message = domish.Element((None, "message"))
        message["from"] = "a.example"
        message["to"] = "x.example"
        self.a.s2s.send(message)
        from twisted.internet import reactor

        await deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(connections, [])

    async def test_silentPeer(self) -> None:
        """
        A peer that accepts TCP but never answers:
        C{remote-server-timeout}, and A closes the connection.
        """
        port, connections = self.silentPeer()
        self.start(
            self.a,
            routes=(Route("x.example", ADDRESS, port),),
            connectTimeout=0.5,
            handshakeTimeout=0.5,
        )
        self.assertEqual(await self.requestError(self.a, "x.example"), "remote-server-timeout")
        self.assertEqual(self.a.links(), [])
        self.assertEqual(len(connections), 1)
        await connections[0].lost

    async def test_queueLimit(self) -> None:
        """
        With C{queueLimit=2}, a third stanza while the stream is still
        being opened bounces at once with C{resource-constraint}; the two
        queued ones bounce when the connection fails.
        """
        closed = freePort(ADDRESS)
        self.start(self.a, routes=(Route("x.example", ADDRESS, closed),), queueLimit=2)
        requests = [
            self.a.disco.requestInfo(JID("x.example"), sender=JID("a.example")) for _ in range(3)
        ]
        third = self.failureResultOf(requests[2], error.StanzaError)
        self.assertEqual(third.value.condition, "resource-constraint")
        self.assertEqual(third.value.type, "wait")
        for d in requests[:2]:
            self.assertNoResult(d)
        for d in requests[:2]:
            with self.assertRaises(error.StanzaError) as caught:
                await d
            self.assertEqual(caught.exception.condition, "remote-server-not-found")


class StreamLifetimeTests(NodeTestCase):
    """
    Streams are reopened when needed and closed when idle.
    """

    async def test_reconnectAfterPeerRestart(self) -> None:
        """
        After B restarts (closing every stream), A's next stanza opens a new
        stream and succeeds.
        """
        self.startBoth()
        await self.discoRoundTrip()
        (oldOutgoing,) = [
            link for link in self.a.s2s.linkTable.links() if link.direction == "outgoing"
        ]
        await self.b.stop()
        await waitFor(lambda: self.a.links() == [])
        # A stopped endpoint service cannot be started again: build B anew,
        # on the same ports and data directory (its cleanup stops this one).
        self.b.build(routes=routesTo(self.a))
        self.b.start()
        await self.discoRoundTrip()
        (newOutgoing,) = [
            link for link in self.a.s2s.linkTable.links() if link.direction == "outgoing"
        ]
        self.assertIsNot(newOutgoing, oldOutgoing)
        self.assertEqual(newOutgoing.domain, "b.example")

    async def test_idleStreamsClosed(self) -> None:
        """
        With a small C{idleTimeout} (and keepalives rarer than that), the
        streams close and the links disappear from both link tables; the
        next stanza reopens them.
        """
        quick = dict(idleTimeout=1.0, keepaliveInterval=60)
        self.startBoth(a=quick, b=quick)
        await self.discoRoundTrip()
        await waitFor(lambda: self.a.links() == [] and self.b.links() == [])
        await self.discoRoundTrip()
