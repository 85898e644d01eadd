# -*- test-case-name: tests.test_s2s_bidi -*-
"""
Bidirectional s2s streams (XEP-0288) between two real nodes over loopback
TLS: one stream for both directions when both sides offer it, two when one
does not, and the limits on what the peer may send back over our stream.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests.nodes import RunningNode, countAcceptedConnections, routesTo, waitFor
from tests.pki import TestCA
from xmppnetgraph.config import Route
from xmppnetgraph.s2s.initiate import NS_DIALBACK, dialbackKey
from xmppnetgraph.s2s.xmlstream import S2SXmlStream


def bidiLinks(node: RunningNode) -> list[tuple[str, str, str, bool]]:
    """
    @return: (domain, direction, auth, bidi) of every live link, sorted.
    """
    return sorted(
        (link.domain, link.direction, link.auth, link.bidi) for link in node.s2s.linkTable.links()
    )


class BidiTests(TestCase):
    """
    Node A (a.example) and node B (b.example) on 127.0.0.1.
    """

    timeout = 60

    def setUp(self) -> None:
        self.base = Path(self.mktemp())
        self.base.mkdir()
        self.a = RunningNode(self.base, "a.example", "127.0.0.1")
        self.b = RunningNode(self.base, "b.example", "127.0.0.1")
        self.accepted = countAcceptedConnections(self)

    def start(self, a: dict[str, object], b: dict[str, object]) -> None:
        self.a.build(**{"routes": routesTo(self.b), **a})
        self.b.build(**{"routes": routesTo(self.a), **b})
        for node in (self.a, self.b):
            node.start()
            self.addCleanup(node.stop)

    def startWithCA(self, **b: object) -> None:
        """
        Start both with certificates from a CA both trust (SASL EXTERNAL).
        """
        ca = TestCA(self.base / "ca")
        aCert, aKey = ca.issue(["a.example", "pubsub.a.example"])
        bCert, bKey = ca.issue(["b.example", "pubsub.b.example"])
        self.start(
            dict(tlsCert=aCert, tlsKey=aKey, caFile=ca.caPath),
            dict(tlsCert=bCert, tlsKey=bKey, caFile=ca.caPath, **b),
        )

    async def askBothWays(self) -> None:
        """
        A asks B for disco#info, then B asks A.
        """
        info = await self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        self.assertIn(("server", "im"), info.identities)
        info = await self.b.disco.requestInfo(JID("a.example"), sender=JID("b.example"))
        self.assertIn(("server", "im"), info.identities)

    async def test_saslOneStream(self) -> None:
        """
        With valid certificates, the stream A opens to B carries B's answers
        and B's own requests too: A's listener accepts nothing, each node
        has one link, marked bidirectional, with the stanzas of both
        directions counted, and A's server information reports the
        connection as C{bidi}.
        """
        self.startWithCA()
        await self.askBothWays()
        self.assertEqual(bidiLinks(self.a), [("b.example", "outgoing", "sasl-external", True)])
        self.assertEqual(bidiLinks(self.b), [("a.example", "incoming", "sasl-external", True)])
        self.assertEqual(self.accepted, {self.b.s2s: 1})
        self.assertEqual(self.a.s2s.connectionCount, 1)
        # Each side sent two requests (the test's disco#info, and its
        # consent check of the new peer) and answered the other's two.
        [aLink] = self.a.s2s.linkTable.links()
        self.assertEqual((aLink.stanzasOut, aLink.stanzasIn), (4, 4))
        [bLink] = self.b.s2s.linkTable.links()
        self.assertEqual((bLink.stanzasOut, bLink.stanzasIn), (4, 4))
        publisher = self.a.service.serverInfo.publisher
        assert publisher is not None
        [domain] = publisher.currentInfo().domains
        self.assertEqual([remote.connections for remote in domain.remotes], [("bidi",)])
        api = await self.a.apiLinks()
        self.assertEqual([link["bidi"] for link in api["links"]], [True])

    async def test_refusedByPeer(self) -> None:
        """
        When B does not offer bidirectional streams, A does not ask, and B
        opens a stream of its own for its answers, as without XEP-0288.
        """
        self.startWithCA(bidi=False)
        await self.askBothWays()
        await waitFor(lambda: len(self.a.links()) == 2)
        self.assertEqual(
            bidiLinks(self.a),
            [
                ("b.example", "incoming", "sasl-external", False),
                ("b.example", "outgoing", "sasl-external", False),
            ],
        )
        self.assertEqual(self.accepted, {self.a.s2s: 1, self.b.s2s: 1})

    async def test_notAsked(self) -> None:
        """
        A node that does not use bidirectional streams does not ask for one
        when offered, and still gets its answers, over B's own stream.
        """
        ca = TestCA(self.base / "ca")
        aCert, aKey = ca.issue(["a.example"])
        bCert, bKey = ca.issue(["b.example"])
        self.start(
            dict(tlsCert=aCert, tlsKey=aKey, caFile=ca.caPath, bidi=False),
            dict(tlsCert=bCert, tlsKey=bKey, caFile=ca.caPath),
        )
        await self.askBothWays()
        await waitFor(lambda: len(self.b.links()) == 2)
        self.assertEqual(
            [link[3] for link in bidiLinks(self.b)],
            [False, False],
        )
        self.assertEqual(self.accepted, {self.a.s2s: 1, self.b.s2s: 1})

    async def test_dialback(self) -> None:
        """
        With self-signed certificates A's stream to B is bidirectional and
        authenticated by dialback. B verifies A's key over a stream of its
        own to A (never on the stream the key came on); once A's stream is
        authorised, B gives that one up before it is authenticated, and
        answers over A's: one link each, stanzas both ways.
        """
        self.start({}, {})
        await self.askBothWays()
        self.assertEqual(bidiLinks(self.a), [("b.example", "outgoing", "dialback", True)])
        self.assertEqual(bidiLinks(self.b), [("a.example", "incoming", "dialback", True)])
        self.assertEqual(self.accepted, {self.a.s2s: 1, self.b.s2s: 1})
        await waitFor(lambda: self.a.s2s.connectionCount == 1 == self.b.s2s.connectionCount)

    async def incomingStreamOfB(self) -> S2SXmlStream:
        """
        Open A's bidirectional stream to B, and return B's end of it.
        """
        self.startWithCA()
        await self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        await waitFor(lambda: len(self.b.links()) == 1)
        xs, _ = self.b.s2s._outgoing[("b.example", "a.example")]
        return xs

    async def test_spoofedSenderRefused(self) -> None:
        """
        On A's stream to B, B may only send stanzas from b.example: one from
        another domain closes the stream with C{<invalid-from/>}, and is not
        delivered.
        """
        xs = await self.incomingStreamOfB()
        delivered: list[object] = []
        self.a.domainHost.xmlstream.addObserver("/message", delivered.append)
        xs.send("<message from='c.example' to='a.example'><body>x</body></message>")
        await waitFor(lambda: self.a.links() == [])
        self.assertEqual(self.a.s2s.streamErrors.sent.get("invalid-from"), 1)
        self.assertEqual(delivered, [])

    async def test_otherRecipientRefused(self) -> None:
        """
        Nor may B address another domain of A's than the one A authenticated
        as on the stream: C{<host-unknown/>}.
        """
        xs = await self.incomingStreamOfB()
        xs.send("<message from='b.example' to='pubsub.a.example'/>")
        await waitFor(lambda: self.a.links() == [])
        self.assertEqual(self.a.s2s.streamErrors.sent.get("host-unknown"), 1)

    async def test_verifyRequestAnswered(self) -> None:
        """
        A dialback verification request that B sends over A's
        bidirectional stream (as Prosody routes its requests) is answered
        there by A, as the authoritative server: valid for a key A issued,
        invalid for another.
        """
        xs = await self.incomingStreamOfB()
        answers: list[domish.Element] = []
        xs.addObserver(f"/verify[@xmlns='{NS_DIALBACK}'][@type]", answers.append)
        key = dialbackKey(self.a.s2s.secret, "b.example", "a.example", "stream-1")
        for streamID, offered in (("stream-1", key), ("stream-2", key)):
            verify = domish.Element((NS_DIALBACK, "verify"))
            verify["from"], verify["to"], verify["id"] = "b.example", "a.example", streamID
            verify.addContent(offered)
            xs.send(verify)
        await waitFor(lambda: len(answers) == 2)
        self.assertEqual(
            [(a["from"], a["to"], a["id"], a["type"]) for a in answers],
            [
                ("a.example", "b.example", "stream-1", "valid"),
                ("a.example", "b.example", "stream-2", "invalid"),
            ],
        )
        self.assertEqual(len(self.a.links()), 1)

    def startHanging(self, hangs: str) -> None:
        """
        Start both with certificates from one CA; the route of C{hangs}
        (C{"a"} or C{"b"}) to the other leads to an address that accepts
        connections and says nothing, and it gives up after 2 s.
        """
        #: What the silent address received.
        self.silentReceived: list[bytes] = []
        received = self.silentReceived

        class Silent(Protocol):
            def dataReceived(self, data: bytes) -> None:
                received.append(data)

        silent = reactor.listenTCP(0, Factory.forProtocol(Silent), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        ca = TestCA(self.base / "ca")
        config = {}
        for name, node in (("a", self.a), ("b", self.b)):
            cert, key = ca.issue([node.domain])
            config[name] = dict(tlsCert=cert, tlsKey=key, caFile=ca.caPath)
        other = self.b if hangs == "a" else self.a
        config[hangs].update(
            routes=(Route(other.domain, "127.0.0.1", silent.getHost().port),),
            connectTimeout=1.0,
            handshakeTimeout=1.0,
        )
        self.start(config["a"], config["b"])

    async def queuedThenPeerConnects(self, sender: RunningNode, peer: RunningNode) -> float:
        """
        C{sender} sends a message to C{peer} (its stream to it hangs); then
        C{peer} asks C{sender} for disco#info, over a bidirectional stream.

        @return: the seconds until C{peer} had the message.
        """
        received: list[domish.Element] = []
        peer.domainHost.xmlstream.addObserver("/message", received.append)
        message = domish.Element(
            (None, "message"), attribs={"from": sender.domain, "to": peer.domain}
        )
        message.addElement("body", content="queued")
        started = reactor.seconds()
        sender.domainHost.send(message)
        await peer.disco.requestInfo(JID(sender.domain), sender=JID(peer.domain))
        await waitFor(lambda: len(received) == 1, timeout=15)
        self.assertEqual(str(received[0].body), "queued")
        self.assertNotIn(peer.domain, sender.s2s._unreachable)
        return reactor.seconds() - started

    async def test_pendingStreamGivenUp(self) -> None:
        """
        B's stream to A hangs; A's bidirectional stream to B comes up
        meanwhile: B gives its own up at once (b.example sorts after
        a.example), and what it had queued goes over A's stream.
        """
        self.startHanging("b")
        seconds = await self.queuedThenPeerConnects(self.b, self.a)
        self.assertLess(seconds, 1.0)
        self.assertEqual(bidiLinks(self.b), [("a.example", "incoming", "sasl-external", True)])
        # The stream given up was closed as a stream, not just dropped.
        await waitFor(lambda: b"".join(self.silentReceived).endswith(b"</stream:stream>"))

    async def test_ownStreamFailsBidiCarries(self) -> None:
        """
        A's stream to B hangs; B's bidirectional stream to A comes up
        meanwhile. A (sorting first) keeps trying its own; when that fails,
        the stanza queued for it goes over B's stream, and B is not marked
        unreachable.
        """
        self.startHanging("a")
        seconds = await self.queuedThenPeerConnects(self.a, self.b)
        self.assertGreaterEqual(seconds, 1.0)
        self.assertEqual(bidiLinks(self.a), [("b.example", "incoming", "sasl-external", True)])

    async def test_bothOpenAtOnce(self) -> None:
        """
        A and B ask each other in the same moment, so each opens a stream
        before the other's is up: every answer arrives, one side keeps its
        own stream, and both keep answering afterwards.
        """
        self.startWithCA()
        for _ in range(3):
            infos = await defer.gatherResults(
                [
                    self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example")),
                    self.b.disco.requestInfo(JID("a.example"), sender=JID("b.example")),
                ]
            )
            self.assertEqual([("server", "im") in info.identities for info in infos], [True] * 2)
        self.assertTrue(bidiLinks(self.a))
        self.assertTrue(all(link[3] for link in bidiLinks(self.a) + bidiLinks(self.b)))
