# -*- test-case-name: tests.test_interop_prosody -*-
"""
Interop with a real Prosody (13 from bookworm-backports; 0.12 as well): our
node (C{node.example}) and a Prosody server (C{prosody.example}) federate
over loopback in both directions.

Skipped when Prosody is not installed, except in CI, where that fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests import c2sclient
from tests.nodes import RunningNode, waitFor
from tests.pki import TestCA, selfSigned
from tests.prosody import ProsodyPeer, prosodySkip, requireProsody, startBeside
from xmppnetgraph.config import Route

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
PASSWORD = "alice's secret"


def identities(stanza: domish.Element) -> set[tuple[str, str]]:
    """
    @return: the (category, type) pairs of a disco#info result.
    """
    query = next(stanza.elements(NS_DISCO_INFO, "query"))
    return {
        (i.getAttribute("category", ""), i.getAttribute("type", ""))
        for i in query.elements(NS_DISCO_INFO, "identity")
    }


async def federate(
    testCase: TestCase, base: Path, *, ca: TestCA | None, prosodyBidi: bool = False
) -> tuple[RunningNode, ProsodyPeer, Any]:
    """
    Start Prosody and our node on two free loopback addresses (port 5269
    each: Prosody dials that port), register and log in alice.

    @param testCase: the test, whose cleanups stop everything.
    @param base: the test's directory.
    @param ca: a CA for both sides (SASL EXTERNAL), or L{None} for
        self-signed certificates (dialback over TLS).
    @param prosodyBidi: load Prosody's C{mod_s2s_bidi} (XEP-0288; not
        in its default configuration).
    @return: our node, the Prosody peer, alice's client stream.
    """
    names = ["prosody.example", "pubsub.prosody.example"]
    if ca is not None:
        certPath, keyPath = ca.issue(names)
    else:
        certPath, keyPath = selfSigned(base / "pki", names)
    peer, nodeAddress = await startBeside(
        base / "prosody",
        "prosody.example",
        ["node.example", "pubsub.node.example"],
        certPath=certPath,
        keyPath=keyPath,
        caPath=ca.caPath if ca is not None else None,
        secureAuth=ca is not None,
        extraModules=["s2s_bidi"] if prosodyBidi else [],
    )
    testCase.addCleanup(peer.stop)
    prosodyAddress = peer.address
    node = RunningNode(base, "node.example", nodeAddress, s2sPort=5269)
    routes = (
        Route("prosody.example", prosodyAddress, 5269),
        Route("*.prosody.example", prosodyAddress, 5269),
    )
    if ca is not None:
        nodeCert, nodeKey = ca.issue(["node.example", "pubsub.node.example"])
        node.build(
            routes=routes,
            tlsCert=nodeCert,
            tlsKey=nodeKey,
            caFile=ca.caPath,
            requireValidCerts=True,
        )
    else:
        node.build(routes=routes)
    node.start()
    testCase.addCleanup(node.stop)
    await peer.register("alice", PASSWORD)
    xs = await c2sclient.connectClient(
        reactor,
        JID("alice@prosody.example/test"),
        PASSWORD,
        peer.address,
        peer.c2sPort,
        caPath=ca.caPath if ca else None,
    )
    testCase.addCleanup(c2sclient.disconnect, xs)
    return node, peer, xs


def countOpenedStreams(testCase: TestCase, node: RunningNode) -> list[str]:
    """
    @return: the remote domains C{node} opens streams to from now on (for
        stanzas or to verify a key), as it opens them.
    """
    opened: list[str] = []
    openStream = node.s2s.openStream

    def counting(remote: str, authenticator: Any) -> Any:
        opened.append(remote)
        return openStream(remote, authenticator)

    testCase.patch(node.s2s, "openStream", counting)
    return opened


class _ProsodyTestCase(TestCase):
    """
    Tests against a real Prosody, each in a directory of its own.
    """

    skip = prosodySkip()
    timeout = 60

    def setUp(self) -> None:
        requireProsody()
        self.base = Path(self.mktemp()).absolute()
        self.base.mkdir(parents=True)

    async def aliceAsks(self, xs: Any) -> None:
        """
        alice@prosody.example asks our node for disco#info.
        """
        iq = domish.Element((None, "iq"))
        iq["type"] = "get"
        iq["to"] = "node.example"
        iq.addElement((NS_DISCO_INFO, "query"))
        answer = await c2sclient.sendIQ(xs, iq, timeout=15)
        self.assertIn(("server", "im"), identities(answer))

    async def nodeAsks(self, node: RunningNode) -> None:
        """
        Our node asks prosody.example for disco#info.
        """
        info = await node.disco.requestInfo(JID("prosody.example"), sender=JID("node.example"))
        self.assertIn(("server", "im"), info.identities)


class ProsodyInteropTests(_ProsodyTestCase):
    """
    A Prosody user asks our node for disco#info (Prosody -> node), our node
    asks Prosody (node -> Prosody), and our link table shows both
    directions with their authentication method and TLS.
    """

    async def roundTrips(self, node: RunningNode, xs: Any, auth: str) -> None:
        """
        disco#info both ways; then both links are in our table and API.
        """
        await self.aliceAsks(xs)
        await self.nodeAsks(node)

        expected = [
            ("prosody.example", "incoming", auth, "TLSv1.3"),
            ("prosody.example", "outgoing", auth, "TLSv1.3"),
        ]
        try:
            await waitFor(lambda: node.links() == expected)
        except AssertionError:
            self.fail(f"link table {node.links()} != {expected}")
        api = await node.apiLinks()
        self.assertEqual(
            sorted(
                (link["domain"], link["direction"], link["auth"], link["tls"])
                for link in api["links"]
            ),
            expected,
        )
        self.assertTrue(
            all(link["stanzas_in"] + link["stanzas_out"] >= 1 for link in api["links"]), api
        )

    async def test_selfSignedDialback(self) -> None:
        """
        With self-signed certificates Prosody and our node authenticate each
        other by dialback over TLS 1.3, in both directions. Prosody's stream
        comes first; our node verifies its key over the stream it opens to
        Prosody (which Prosody answers before that stream is authenticated),
        so it opens that one connection and no verification connection.
        """
        node, peer, xs = await federate(self, self.base, ca=None)
        opened = countOpenedStreams(self, node)
        await self.roundTrips(node, xs, "dialback")
        self.assertEqual(opened, ["prosody.example"])

    async def test_testCASaslExternal(self) -> None:
        """
        With certificates from a CA both trust (and Prosody's
        C{s2s_secure_auth}), both directions use SASL EXTERNAL.
        """
        ca = TestCA(self.base / "ca")
        node, peer, xs = await federate(self, self.base, ca=ca)
        await self.roundTrips(node, xs, "sasl-external")


class ProsodyBidiTests(_ProsodyTestCase):
    """
    XEP-0288 with Prosody's C{mod_s2s_bidi}: one stream carries both
    directions, whichever side opens it, with SASL EXTERNAL.
    """

    async def start(self) -> tuple[RunningNode, Any, list[str]]:
        """
        Federate our node with a Prosody running C{mod_s2s_bidi}.

        @return: our node, alice's client stream, and the domains our node
            opens streams to from now on.
        """
        node, _, xs = await federate(self, self.base, ca=TestCA(self.base / "ca"), prosodyBidi=True)
        opened = countOpenedStreams(self, node)
        return node, xs, opened

    def assertOneLink(self, node: RunningNode, direction: str) -> None:
        """
        Assert that our node has one link with Prosody, bidirectional, with
        stanzas counted both ways.
        """
        [link] = node.s2s.linkTable.links()
        self.assertEqual(
            (link.domain, link.direction, link.auth, link.bidi),
            ("prosody.example", direction, "sasl-external", True),
        )
        self.assertGreaterEqual(link.stanzasIn, 1)
        self.assertGreaterEqual(link.stanzasOut, 1)

    async def test_prosodyOpens(self) -> None:
        """
        Prosody opens the stream (alice asks first) and asks for bidi: our
        answer to alice, and our own request to Prosody, go back over it;
        our node opens no stream.
        """
        node, xs, opened = await self.start()
        await self.aliceAsks(xs)
        await self.nodeAsks(node)
        self.assertOneLink(node, "incoming")
        self.assertEqual(opened, [])

    async def test_nodeOpens(self) -> None:
        """
        Our node opens the stream (it asks first) and asks for bidi: Prosody
        answers over it, and alice's request to our node comes over it too.
        """
        node, xs, opened = await self.start()
        await self.nodeAsks(node)
        await self.aliceAsks(xs)
        self.assertOneLink(node, "outgoing")
        self.assertEqual(opened, ["prosody.example"])


class ProsodyMultiplexTests(_ProsodyTestCase):
    """
    XEP-0220 target multiplexing and Prosody: Prosody 13 announces dialback
    without C{<errors/>}, so (XEP-0220 section 2.6.2: not without them) our
    request to its pub-sub component gets a stream of its own, although
    Prosody's certificate covers the component.
    """

    async def test_notWithoutDialbackErrors(self) -> None:
        """
        Our node asks Prosody, then its pub-sub component: two streams of
        ours, and no C{db:result} for the component on the first.
        """
        node, _, _ = await federate(self, self.base, ca=TestCA(self.base / "ca"), prosodyBidi=True)
        opened = countOpenedStreams(self, node)
        await self.nodeAsks(node)
        [stream] = node.s2s._outgoingStreams.values()
        self.assertFalse(stream.dialbackErrors)
        info = await node.disco.requestInfo(
            JID("pubsub.prosody.example"), sender=JID("node.example")
        )
        self.assertIn(("pubsub", "service"), info.identities)
        self.assertEqual(opened, ["prosody.example", "pubsub.prosody.example"])
        self.assertEqual(list(stream.links), ["prosody.example"])
