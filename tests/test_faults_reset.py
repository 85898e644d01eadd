# -*- test-case-name: tests.test_faults_reset -*-
"""
A peer that resets its TCP connections in the middle of a stanza: node B
writes half a stanza on each of its streams with A, then resets them (an
RST, through C{SO_LINGER} 0) and goes away. A's links to B go down, A
keeps no stream to B, and what A sends to B afterwards bounces instead
of waiting forever.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID

from tests.nodes import RunningNode, discoBothWays, routesTo, waitFor
from xmppnetgraph.config import Route

ADDRESS = "127.0.0.1"


def tcpTransport(transport: Any) -> Any:
    """
    @return: the TCP transport under C{transport} (which may be TLS).
    """
    while hasattr(transport, "transport") and not hasattr(transport, "socket"):
        transport = transport.transport
    return transport


def reset(transport: Any) -> None:
    """
    Close C{transport}'s TCP connection with an RST.
    """
    tcp = tcpTransport(transport)
    tcp.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tcp.abortConnection()


class _HalfThenReset(Protocol):
    """
    Answers a stream header with the start of its own and half of its
    features, then resets the connection.
    """

    def connectionMade(self) -> None:
        self.transport.write(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
            b"xmlns:stream='http://etherx.jabber.org/streams' from='x.example' id='r1' "
            b"version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'"
            b"><requ"
        )
        reactor.callLater(0.05, reset, self.transport)  # type: ignore[attr-defined]


class ResetMidStanzaTests(TestCase):
    """
    Nodes A and B, B resetting its connections.
    """

    timeout = 30

    async def test_resetMidStanza(self) -> None:
        """
        After B sends half a stanza and resets every stream: A's link table
        has no link to B, and A's next request to B bounces with
        C{remote-server-not-found} or C{remote-server-timeout}; nothing
        is logged as an unhandled error.
        """
        base = Path(self.mktemp())
        base.mkdir()
        a = RunningNode(base, "a.example", ADDRESS)
        b = RunningNode(base, "b.example", ADDRESS)
        a.build(routes=routesTo(b), connectTimeout=1.0, handshakeTimeout=1.0)
        b.build(routes=routesTo(a))
        for node in (a, b):
            node.start()
            # B is stopped by the test; a stopped node is not stopped again.
            self.addCleanup(lambda node=node: node.stop() if node.service.running else None)
        await discoBothWays(self, a, b)

        streams = list(b.s2s._streams)
        self.assertTrue(streams)
        for xs in streams:
            xs.transport.write(b"<message from='b.example' to='a.example'><body>half a st")
        # Let the bytes leave, then reset.
        await deferLater(reactor, 0.1, lambda: None)  # type: ignore[arg-type]
        for xs in streams:
            reset(xs.transport)
        await b.stop()

        await waitFor(lambda: a.links() == [])
        self.assertEqual(a.s2s._outgoing, {})
        with self.assertRaises(error.StanzaError) as caught:
            await a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        self.assertIn(
            caught.exception.condition, ("remote-server-not-found", "remote-server-timeout")
        )
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_resetWhileOpening(self) -> None:
        """
        A peer that resets the connection in the middle of its stream
        features: the stanzas queued for it while the stream was being
        opened all bounce, and no link is made.
        """
        port = reactor.listenTCP(  # type: ignore[attr-defined]
            0, Factory.forProtocol(_HalfThenReset), interface=ADDRESS
        )
        self.addCleanup(port.stopListening)
        base = Path(self.mktemp())
        base.mkdir()
        a = RunningNode(base, "a.example", ADDRESS)
        a.build(
            routes=(Route("x.example", ADDRESS, port.getHost().port),),
            connectTimeout=1.0,
            handshakeTimeout=1.0,
        )
        a.start()
        self.addCleanup(a.stop)
        requests = [
            a.disco.requestInfo(JID("x.example"), sender=JID("a.example")) for _ in range(3)
        ]
        results = await defer.DeferredList(requests, consumeErrors=True)
        for ok, result in results:
            self.assertFalse(ok)
            result.trap(error.StanzaError)
            self.assertIn(
                result.value.condition, ("remote-server-not-found", "remote-server-timeout")
            )
        self.assertEqual(a.links(), [])
        self.assertEqual(self.flushLoggedErrors(), [])
