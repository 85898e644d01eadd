# -*- test-case-name: tests.test_federation -*-
"""
Two real xmppnetgraph nodes federating over loopback TCP with TLS.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from OpenSSL import SSL
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.jid import JID

import xmppnetgraph
from tests.nodes import (
    RawRequest,
    RunningNode,
    SRVOnly,
    countAcceptedConnections,
    discoBothWays,
    freePort,
    linkedBothWays,
    routesTo,
    waitFor,
)
from tests.pki import TestCA
from xmppnetgraph.error import RemoteServerNotFound
from xmppnetgraph.s2s.xmlstream import S2SXmlStream


class FederationTests(TestCase):
    """
    Node A (a.example) and node B (b.example) on 127.0.0.1, each routing to
    the other statically.
    """

    timeout = 60

    def setUp(self) -> None:
        self.base = Path(self.mktemp())
        self.base.mkdir()
        self.a = RunningNode(self.base, "a.example", "127.0.0.1")
        self.b = RunningNode(self.base, "b.example", "127.0.0.1")

    def startBoth(self, **config: object) -> None:
        self.a.build(routes=routesTo(self.b), **config.get("a", {}))  # type: ignore[arg-type]
        self.b.build(routes=routesTo(self.a), **config.get("b", {}))  # type: ignore[arg-type]
        for node in (self.a, self.b):
            node.start()
            self.addCleanup(node.stop)

    async def discoRoundTrip(self) -> None:
        await discoBothWays(self, self.a, self.b)

    @defer.inlineCallbacks
    def test_selfSignedDialback(self):  # type: ignore[no-untyped-def]
        """
        With self-signed certificates, both streams run over TLS and
        authenticate by dialback; disco#info crosses and each link table
        shows both directions (without XEP-0288, which makes one stream do:
        tests.test_s2s_bidi).
        """
        self.startBoth(a=dict(bidi=False), b=dict(bidi=False))
        yield defer.Deferred.fromCoroutine(self.discoRoundTrip())
        self.assertEqual(
            self.a.links(),
            [
                ("b.example", "incoming", "dialback", "TLSv1.3"),
                ("b.example", "outgoing", "dialback", "TLSv1.3"),
            ],
        )
        self.assertEqual(
            self.b.links(),
            [
                ("a.example", "incoming", "dialback", "TLSv1.3"),
                ("a.example", "outgoing", "dialback", "TLSv1.3"),
            ],
        )
        api = yield defer.Deferred.fromCoroutine(self.a.apiLinks())
        self.assertEqual(api["domain"], "a.example")
        self.assertEqual(
            sorted(
                (link["domain"], link["direction"], link["auth"], link["tls"])
                for link in api["links"]
            ),
            self.a.links(),
        )

    async def test_closedStreamsFreedAtOnce(self) -> None:
        """
        Closed streams, incoming and outgoing, are freed by reference
        counting alone, with their TLS connections: with the garbage
        collector off, none is left in memory once the connections are
        gone (under twistd's collector settings a cycle would keep each
        for minutes, about 80 KiB a stream).
        """
        self.startBoth(a=dict(bidi=False), b=dict(bidi=False))
        await discoBothWays(self, self.a, self.b)
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        streams = [o for o in gc.get_objects() if isinstance(o, S2SXmlStream)]
        self.assertEqual(len(streams), 4)
        tls = sum(1 for o in gc.get_objects() if isinstance(o, SSL.Connection))
        for xs in streams:
            xs.close()
        del streams, xs
        await waitFor(lambda: self.a.s2s.connectionCount == 0 == self.b.s2s.connectionCount)
        await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual([o for o in gc.get_objects() if isinstance(o, S2SXmlStream)], [])
        self.assertEqual(sum(1 for o in gc.get_objects() if isinstance(o, SSL.Connection)), tls - 4)

    async def test_verifyOverOurStream(self) -> None:
        """
        A asks B, so A opens a stream to B. B verifies A's dialback key over
        the stream it opens to A (for its answers, too), and A verifies
        B's key on that one over its own stream to B: each listener accepts
        one stream and no verification connection.
        """
        accepted = countAcceptedConnections(self)
        # Without XEP-0288: B keeps its stream (tests.test_s2s_bidi).
        self.startBoth(a=dict(bidi=False), b=dict(bidi=False))
        info = await self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        self.assertIn(("server", "im"), info.identities)
        await waitFor(lambda: len(self.a.links()) == 2 and len(self.b.links()) == 2)
        self.assertEqual(
            self.a.links(),
            [
                ("b.example", "incoming", "dialback", "TLSv1.3"),
                ("b.example", "outgoing", "dialback", "TLSv1.3"),
            ],
        )
        self.assertEqual(accepted, {self.a.s2s: 1, self.b.s2s: 1})

    async def test_verifyFallsBackToAConnection(self) -> None:
        """
        When the stream B opens to A to verify A's key on fails before it
        can carry the request, B verifies over a connection of its own, and
        the stream from A is accepted all the same.
        """
        accepted = countAcceptedConnections(self)
        # Without bidirectional streams (tests.test_s2s_bidi), B's answer
        # needs a stream of its own.
        self.startBoth(a=dict(bidi=False), b=dict(bidi=False))
        openStream = self.b.s2s.openStream
        calls: list[str] = []

        def failFirst(remote: str, authenticator: Any) -> defer.Deferred[Any]:
            calls.append(remote)
            if len(calls) == 1:
                return defer.fail(RemoteServerNotFound("closed during the handshake (test)"))
            return openStream(remote, authenticator)

        self.patch(self.b.s2s, "openStream", failFirst)
        info = await self.a.disco.requestInfo(JID("b.example"), sender=JID("a.example"))
        self.assertIn(("server", "im"), info.identities)
        await waitFor(lambda: len(self.a.links()) == 2 and len(self.b.links()) == 2)
        # The failed stream, the verification connection, then the stream
        # for B's answer.
        self.assertEqual(calls, ["a.example"] * 3)
        self.assertEqual(accepted, {self.a.s2s: 2, self.b.s2s: 1})

    @defer.inlineCallbacks
    def test_pingAndFeatures(self):  # type: ignore[no-untyped-def]
        """
        A answers XEP-0199 pings and XEP-0092 version requests (name and
        version, no OS) to its domain and lists both features, with the
        XEP-0485 consent feature, in its disco#info.
        """
        self.startBoth()
        domain = self.b.domainHost
        pong = yield domain.request(
            RawRequest("a.example", "b.example", "get", "<ping xmlns='urn:xmpp:ping'/>")
        )
        self.assertEqual((pong["type"], pong["from"]), ("result", "a.example"))
        version = yield domain.request(
            RawRequest("a.example", "b.example", "get", "<query xmlns='jabber:iq:version'/>")
        )
        fields = {child.name: str(child) for child in version.query.elements()}
        self.assertEqual(fields, {"name": "xmppnetgraph", "version": xmppnetgraph.__version__})
        info = yield self.b.disco.requestInfo(JID("a.example"), sender=JID("b.example"))
        self.assertIn("urn:xmpp:ping", info.features)
        self.assertIn("jabber:iq:version", info.features)
        self.assertIn("urn:xmpp:serverinfo:0", info.features)

    @defer.inlineCallbacks
    def test_testCASaslExternal(self):  # type: ignore[no-untyped-def]
        """
        With certificates from a CA both trust, both streams authenticate
        with SASL EXTERNAL (without XEP-0288, which would make one stream do:
        tests.test_s2s_bidi).
        """
        ca = TestCA(self.base / "ca")
        aCert, aKey = ca.issue(["a.example", "pubsub.a.example"])
        bCert, bKey = ca.issue(["b.example", "pubsub.b.example"])
        self.startBoth(
            a=dict(
                tlsCert=aCert,
                tlsKey=aKey,
                caFile=ca.caPath,
                requireValidCerts=True,
                pubsubHost="a-pubsub.a.example",
                bidi=False,
            ),
            b=dict(
                tlsCert=bCert, tlsKey=bKey, caFile=ca.caPath, requireValidCerts=True, bidi=False
            ),
        )
        yield defer.Deferred.fromCoroutine(self.discoRoundTrip())
        self.assertEqual(
            self.a.links(),
            [
                ("b.example", "incoming", "sasl-external", "TLSv1.3"),
                ("b.example", "outgoing", "sasl-external", "TLSv1.3"),
            ],
        )
        # The incoming stream was opened to a.example, not to its pubsub host
        # (SASL authorises both; a-pubsub.a.example sorts first).
        self.assertEqual({link.localDomain for link in self.a.s2s.linkTable.links()}, {"a.example"})

    @defer.inlineCallbacks
    def test_directTLSBySRV(self):  # type: ignore[no-untyped-def]
        """
        B finds A only through an C{_xmpps-server._tcp} SRV record (XEP-0368)
        pointing at A's direct-TLS listener, and federates over it (with no
        C{_xmpp-server._tcp} record and no route there is no other way).
        The SRV target is loopback, so B must allow private addresses.
        """
        directPort = freePort()
        self.a.build(routes=routesTo(self.b), s2sDirectTLS=f"tcp:{directPort}:interface=127.0.0.1")
        self.b.build(
            resolver=SRVOnly({"_xmpps-server._tcp.a.example": ("127.0.0.1", directPort)}),
            allowPrivateAddresses=True,
        )
        for node in (self.a, self.b):
            node.start()
            self.addCleanup(node.stop)
        info = yield self.b.disco.requestInfo(JID("a.example"), sender=JID("b.example"))
        self.assertIn(("server", "im"), info.identities)
        yield defer.Deferred.fromCoroutine(waitFor(lambda: linkedBothWays(self.b, "a.example")))
        self.assertIn(("a.example", "outgoing", "dialback", "TLSv1.3"), self.b.links())
