# -*- test-case-name: tests.test_s2s_multiplex -*-
"""
XEP-0220 target multiplexing between two real nodes over loopback TLS: a
stanza to a subdomain of a peer (its pub-sub service) goes over the stream
already open to the peer when the peer's certificate covers the subdomain,
and over a stream of its own otherwise, or when the peer refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.error import StanzaError
from twisted.words.protocols.jabber.jid import JID

from tests.nodes import RunningNode, countAcceptedConnections, routesTo, waitFor
from tests.pki import TestCA


def linksOf(node: RunningNode) -> list[tuple[str, str, str, str, bool]]:
    """
    @return: (remote, local, direction, auth, bidi) of every live link, sorted.
    """
    return sorted(
        (link.domain, link.localDomain, link.direction, link.auth, link.bidi)
        for link in node.s2s.linkTable.links()
    )


class MultiplexTests(TestCase):
    """
    Node A (a.example) asks node B (b.example, serving pubsub.b.example).
    """

    timeout = 60

    def setUp(self) -> None:
        self.base = Path(self.mktemp())
        self.base.mkdir()
        self.ca = TestCA(self.base / "ca")
        self.a = RunningNode(self.base, "a.example", "127.0.0.1")
        self.b = RunningNode(self.base, "b.example", "127.0.0.1")
        self.accepted = countAcceptedConnections(self)

    def start(
        self,
        bNames: list[str] | None = None,
        a: dict[str, Any] | None = None,
        b: dict[str, Any] | None = None,
        *,
        aCertified: bool = True,
    ) -> None:
        """
        Start both nodes; B's certificate from the CA covers C{bNames}
        (default: its domain and pub-sub host); A's too, unless not
        C{aCertified} (a self-signed one: A authenticates by dialback).
        """
        bCert, bKey = self.ca.issue(bNames or ["b.example", "pubsub.b.example"], name="b")
        aOptions: dict[str, Any] = {"routes": routesTo(self.b), "caFile": self.ca.caPath}
        if aCertified:
            aCert, aKey = self.ca.issue(["a.example", "pubsub.a.example"], name="a")
            aOptions.update(tlsCert=aCert, tlsKey=aKey)
        self.a.build(**{**aOptions, **(a or {})})
        self.b.build(
            **{
                "routes": routesTo(self.a),
                "caFile": self.ca.caPath,
                "tlsCert": bCert,
                "tlsKey": bKey,
                **(b or {}),
            }
        )
        for node in (self.a, self.b):
            node.start()
            self.addCleanup(node.stop)

    async def askDomainThenPubsub(self) -> None:
        """
        A asks B's domain for disco#info, then B's pub-sub service.
        """
        info = await self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        self.assertIn(("server", "im"), info.identities)
        info = await self.a.disco.requestInfo(JID("pubsub.b.example"), sender=JID("a.example"))
        self.assertIn(("pubsub", "service"), info.identities)

    async def test_oneStream(self) -> None:
        """
        With a certificate covering both, the pub-sub service is
        multiplexed onto the stream to B: B accepts one connection, A
        opens no other and accepts none (B answers over it, XEP-0288), and
        each side has a link per pair, SASL EXTERNAL.
        """
        self.start()
        await self.askDomainThenPubsub()
        self.assertEqual(self.accepted, {self.b.s2s: 1})
        self.assertEqual(self.a.s2s.connectionCount, 1)
        self.assertEqual(
            linksOf(self.a),
            [
                ("b.example", "a.example", "outgoing", "sasl-external", True),
                ("pubsub.b.example", "a.example", "outgoing", "sasl-external", True),
            ],
        )
        self.assertEqual(
            linksOf(self.b),
            [
                ("a.example", "b.example", "incoming", "sasl-external", True),
                ("a.example", "pubsub.b.example", "incoming", "sasl-external", True),
            ],
        )
        links = {link.domain: link for link in self.a.s2s.linkTable.links()}
        self.assertTrue(links["pubsub.b.example"].certValid)
        # Each link counts its own stanzas: the test's request, and A's
        # consent check of its new peer, and their answers.
        self.assertEqual(
            (links["pubsub.b.example"].stanzasOut, links["pubsub.b.example"].stanzasIn), (2, 2)
        )
        # When the stream ends, both links go.
        await self.b.stop()
        await waitFor(lambda: linksOf(self.a) == [])

    async def test_dialbackCarrier(self) -> None:
        """
        A stream A authenticated by dialback (its certificate is
        self-signed) carries the pub-sub service too: B verifies the key
        for the further pair as for the first.
        """
        self.start(aCertified=False)
        await self.askDomainThenPubsub()
        self.assertEqual(
            [link[:4] for link in linksOf(self.a) if link[2] == "outgoing"],
            [
                ("b.example", "a.example", "outgoing", "dialback"),
                ("pubsub.b.example", "a.example", "outgoing", "dialback"),
            ],
        )
        outgoingStreams = {
            xs for xs, _ in self.a.s2s._outgoing.values() if xs in self.a.s2s._outgoingStreams
        }
        self.assertEqual(len(outgoingStreams), 1)

    async def test_certificateNotCovering(self) -> None:
        """
        When B's certificate does not name its pub-sub service, that gets a
        stream of its own.
        """
        self.start(["b.example"], b={"bidi": False})
        await self.askDomainThenPubsub()
        self.assertEqual(self.accepted[self.b.s2s], 2)

    async def test_turnedOff(self) -> None:
        """
        With C{multiplex} off, A opens a stream for each domain.
        """
        self.start(a={"multiplex": False})
        await self.askDomainThenPubsub()
        self.assertEqual(self.accepted, {self.b.s2s: 2})

    async def test_refusedThenOwnStream(self) -> None:
        """
        A domain B does not serve but its certificate names: B answers the
        request with a dialback error, the stream to B goes on, and A tries
        a stream of its own (which B refuses: the stanza bounces), and asks
        no more over that stream.
        """
        self.start(["b.example", "pubsub.b.example", "muc.b.example"])
        await self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        failure = await self.assertFailure(
            self.a.disco.requestInfo(JID("muc.b.example"), sender=JID("a.example")),
            StanzaError,
        )
        self.assertEqual(failure.condition, "remote-server-not-found")
        self.assertEqual(self.accepted[self.b.s2s], 2)
        [stream] = self.a.s2s._outgoingStreams.values()
        self.assertTrue(stream.refused)
        # The stream to B still serves, and the pub-sub service now gets a
        # stream of its own too.
        info = await self.a.disco.requestInfo(JID("pubsub.b.example"), sender=JID("a.example"))
        self.assertIn(("pubsub", "service"), info.identities)
        self.assertEqual(self.accepted[self.b.s2s], 3)
