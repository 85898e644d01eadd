# -*- test-case-name: tests.test_prosody_fixture -*-
"""
Tests for L{tests.prosody} and L{tests.c2sclient}: two real Prosody peers
federate over loopback (s2s with TLS), found through the fixture's hosts
file and libunbound, and a c2s client queries across them.

Skipped when Prosody is not installed, except in CI (C{CI} set), where that
is a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.words.protocols.jabber.error import StanzaError
from twisted.words.protocols.jabber.jid import JID
from twisted.words.protocols.jabber.xmlstream import XmlStream
from twisted.words.xish import domish

from tests import c2sclient
from tests.pki import TestCA, selfSigned
from tests.prosody import (
    PortInUse,
    ProsodyError,
    ProsodyPeer,
    freeLoopbackAddresses,
    prosodySkip,
    prosodyVersion,
    requireProsody,
    versionTuple,
)

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"

DOMAINS = ("a.example", "b.example")
PASSWORD = "alice's secret"

_skip = prosodySkip()

Certificates = Callable[[Path, str], tuple[Path, Path]]


def _identities(stanza: domish.Element) -> set[tuple[str, str]]:
    """
    @return: the (category, type) pairs of a disco#info result.
    """
    query = next(stanza.elements(NS_DISCO_INFO, "query"))
    return {
        (identity.getAttribute("category", ""), identity.getAttribute("type", ""))
        for identity in query.elements(NS_DISCO_INFO, "identity")
    }


def _items(stanza: domish.Element) -> set[str]:
    """
    @return: the item JIDs of a disco#items result.
    """
    query = next(stanza.elements(NS_DISCO_ITEMS, "query"))
    return {item.getAttribute("jid", "") for item in query.elements(NS_DISCO_ITEMS, "item")}


def _discoRequest(namespace: str, to: str) -> domish.Element:
    """
    @return: a disco request IQ of C{namespace} to C{to}.
    """
    iq = domish.Element((None, "iq"))
    iq["type"] = "get"
    iq["to"] = to
    iq.addElement((namespace, "query"))
    return iq


class ProsodyFixtureTests(TestCase):
    """
    Prosody peers C{a.example} (127.0.0.2) and C{b.example} (127.0.0.3, or
    the next free loopback addresses when a concurrent run holds those),
    each knowing the other through its hosts file, and the client
    C{alice@a.example}.
    """

    if _skip is not None:
        skip = _skip

    timeout = 60

    def setUp(self) -> None:
        requireProsody()
        self.base = Path(self.mktemp()).absolute()
        self.base.mkdir(parents=True)

    async def startPeers(
        self,
        certificates: Certificates,
        *,
        caPath: Path | None = None,
        secureAuth: bool = False,
    ) -> tuple[ProsodyPeer, ProsodyPeer]:
        """
        Start both peers (stopped in cleanup) and register alice on
        C{a.example}. When a concurrent run takes an address first, try
        other addresses.

        @param certificates: makes C{(certPath, keyPath)} in a directory for
            a domain and its pub-sub component.
        @param caPath: the CA both peers trust.
        @param secureAuth: the peers' C{s2s_secure_auth}.
        @return: the peers for a.example and b.example.
        """
        tried: set[str] = set()
        for attempt in range(5):
            addresses = freeLoopbackAddresses(len(DOMAINS), exclude=tried)
            tried.update(addresses)
            # Every name either peer may dial: the hosts and their components.
            hosts = {
                name: address
                for domain, address in zip(DOMAINS, addresses, strict=True)
                for name in (domain, f"pubsub.{domain}")
            }
            peers = []
            for domain, address in zip(DOMAINS, addresses, strict=True):
                certPath, keyPath = certificates(self.base / "pki", domain)
                peer = ProsodyPeer(
                    self.base / f"{attempt}" / domain,
                    domain,
                    address,
                    certPath=certPath,
                    keyPath=keyPath,
                    caPath=caPath,
                    hosts=hosts,
                    secureAuth=secureAuth,
                )
                self.addCleanup(peer.stop)
                peers.append(peer)
            # Let every start settle before looking at failures.
            results = await defer.DeferredList([peer.start() for peer in peers], consumeErrors=True)
            failures = [result for ok, result in results if not ok]
            if not failures:
                break
            for peer in peers:
                await peer.stop()
            for failure in failures:
                assert isinstance(failure, Failure)
                if not failure.check(PortInUse) or attempt == 4:
                    failure.raiseException()
        await peers[0].register("alice", PASSWORD)
        return peers[0], peers[1]

    async def login(self, peer: ProsodyPeer, caPath: Path) -> XmlStream:
        """
        Log in as alice on C{peer} (disconnected in cleanup).

        @return: the client stream.
        """
        from twisted.internet import reactor

        xs = await c2sclient.connectClient(
            reactor,
            JID("alice@a.example/test"),
            PASSWORD,
            peer.address,
            peer.c2sPort,
            caPath=caPath,
        )
        self.addCleanup(c2sclient.disconnect, xs)
        return xs

    async def test_selfSignedDialback(self) -> None:
        """
        With self-signed certificates and C{s2s_secure_auth = false}, the
        peers can only authenticate each other by dialback: disco#info to
        C{b.example} and its pub-sub component crosses that s2s link; the
        local server and its listed pub-sub component answer too. Both
        peers run the installed Prosody version and say so.
        """

        def certificates(directory: Path, domain: str) -> tuple[Path, Path]:
            return selfSigned(directory, [domain, f"pubsub.{domain}"], domain)

        a, b = await self.startPeers(certificates)
        self.assertIsNotNone(prosodyVersion())
        self.assertEqual((a.version, b.version), (prosodyVersion(), prosodyVersion()))
        xs = await self.login(a, a.certPath)

        remote = await c2sclient.sendIQ(xs, _discoRequest(NS_DISCO_INFO, "b.example"))
        self.assertEqual(remote["from"], "b.example")
        self.assertIn(("server", "im"), _identities(remote))

        local = await c2sclient.sendIQ(xs, _discoRequest(NS_DISCO_INFO, "a.example"))
        self.assertEqual(local["from"], "a.example")
        self.assertIn(("server", "im"), _identities(local))

        items = await c2sclient.sendIQ(xs, _discoRequest(NS_DISCO_ITEMS, "a.example"))
        self.assertIn("pubsub.a.example", _items(items))

        pubsub = await c2sclient.sendIQ(xs, _discoRequest(NS_DISCO_INFO, "pubsub.b.example"))
        self.assertIn(("pubsub", "service"), _identities(pubsub))

    async def test_testCASecureAuth(self) -> None:
        """
        With certificates from a test CA that both peers trust (C{caPath})
        and C{s2s_secure_auth = true}, disco#info to C{b.example} crosses
        the certificate-authenticated s2s link.
        """
        ca = TestCA(self.base / "ca")

        def certificates(directory: Path, domain: str) -> tuple[Path, Path]:
            return ca.issue([domain, f"pubsub.{domain}"])

        a, b = await self.startPeers(certificates, caPath=ca.caPath, secureAuth=True)
        xs = await self.login(a, ca.caPath)

        remote = await c2sclient.sendIQ(xs, _discoRequest(NS_DISCO_INFO, "b.example"))
        self.assertEqual(remote["from"], "b.example")
        self.assertIn(("server", "im"), _identities(remote))

    async def test_secureAuthRejectsSelfSigned(self) -> None:
        """
        With self-signed certificates and C{s2s_secure_auth = true}, no s2s
        link can be authenticated: disco#info to C{b.example} comes back as
        an error naming the certificate, while the local server still
        answers.
        """

        def certificates(directory: Path, domain: str) -> tuple[Path, Path]:
            return selfSigned(directory, [domain, f"pubsub.{domain}"], domain)

        a, b = await self.startPeers(certificates, secureAuth=True)
        xs = await self.login(a, a.certPath)

        with self.assertRaises(StanzaError) as caught:
            await c2sclient.sendIQ(xs, _discoRequest(NS_DISCO_INFO, "b.example"))
        failure = caught.exception
        # Prosody bounces the queued stanza with the stream's error text:
        # 0.12 says "certificate is not trusted", 13 "Remote server's
        # certificate is self-signed".
        self.assertIn(failure.condition, ("remote-server-timeout", "remote-server-not-found"))
        if versionTuple(a.version) >= (13,):
            self.assertIn("certificate is self-signed", failure.text or "")
        else:
            self.assertIn("certificate is not trusted", failure.text or "")

        local = await c2sclient.sendIQ(xs, _discoRequest(NS_DISCO_INFO, "a.example"))
        self.assertIn(("server", "im"), _identities(local))

    async def test_portTaken(self) -> None:
        """
        L{ProsodyPeer.start} fails with L{PortInUse} naming the address
        when something listens on its s2s port already, and starts no
        Prosody.
        """
        from twisted.internet import protocol
        from twisted.internet import reactor as _reactor

        reactor: Any = _reactor
        (address,) = freeLoopbackAddresses(1)
        port = reactor.listenTCP(0, protocol.Factory(), interface=address)
        self.addCleanup(port.stopListening)
        s2sPort = port.getHost().port
        certPath, keyPath = selfSigned(self.base / "pki", ["a.example"], "a")
        peer = ProsodyPeer(
            self.base / "a.example",
            "a.example",
            address,
            certPath=certPath,
            keyPath=keyPath,
            s2sPort=s2sPort,
        )
        self.addCleanup(peer.stop)
        with self.assertRaises(PortInUse) as caught:
            await peer.start()
        self.assertIn(f"{address}:{s2sPort} is taken", str(caught.exception))
        self.assertIsNone(peer.pid)


class ConfigTests(SynchronousTestCase):
    """
    The config L{ProsodyPeer} writes (no Prosody needed).
    """

    def peer(self, **kwargs: object) -> ProsodyPeer:
        """
        @return: a peer for C{a.example} on 127.0.0.2 (not started).
        """
        base = Path(self.mktemp())
        return ProsodyPeer(
            base,
            "a.example",
            "127.0.0.2",
            certPath=base / "a.crt",
            keyPath=base / "a.key",
            reactor=MemoryReactorClock(),
            **kwargs,  # type: ignore[arg-type]
        )

    def test_defaults(self) -> None:
        """
        By default the peer binds only its address without IPv6 or HTTP,
        requires TLS on c2s and s2s, allows dialback, has a pub-sub
        component and resolves the C{example} zone locally only.
        """
        config = self.peer().configText()
        for line in [
            'interfaces = { "127.0.0.2" }',
            "s2s_ports = { 5269 }",
            "c2s_ports = { 5222 }",
            "use_ipv6 = false",
            "http_ports = { }",
            "https_ports = { }",
            "c2s_require_encryption = true",
            "s2s_require_encryption = true",
            "s2s_secure_auth = false",
            "allow_registration = false",
            '    forward = "127.0.0.1@9";',
            '    options = { ["local-zone:"] = "example. static" };',
            'VirtualHost "a.example"',
            'Component "pubsub.a.example" "pubsub"',
        ]:
            self.assertIn(line, config.splitlines())
        self.assertNotIn("cafile", config)

    def test_options(self) -> None:
        """
        Ports, secure auth, the CA file, components and modules follow the
        arguments; without pub-sub there is no pub-sub component.
        """
        peer = self.peer(
            s2sPort=5270,
            c2sPort=5223,
            secureAuth=True,
            caPath=Path("/ca.crt"),
            pubsub=False,
            extraComponents={"muc.a.example": "muc"},
            extraModules=["admin_shell"],
        )
        lines = peer.configText().splitlines()
        self.assertIn("s2s_ports = { 5270 }", lines)
        self.assertIn("c2s_ports = { 5223 }", lines)
        self.assertIn("s2s_secure_auth = true", lines)
        self.assertIn('Component "muc.a.example" "muc"', lines)
        self.assertNotIn("pubsub", peer.configText())
        self.assertIn('"admin_shell"', peer.configText())
        self.assertIn(f'cafile = "{peer.tlsPath / "ca.crt"}"', peer.configText())

    def test_hosts(self) -> None:
        """
        The hosts file lists each name with its address.
        """
        peer = self.peer(hosts={"b.example": "127.0.0.3", "c.example": "127.0.0.4"})
        self.assertEqual(peer.hostsText(), "127.0.0.3 b.example\n127.0.0.4 c.example\n")

    def test_serverinfoOff(self) -> None:
        """
        By default the host does not run C{mod_pubsub_serverinfo} and has
        no admins.
        """
        config = self.peer().configText()
        self.assertNotIn("pubsub_serverinfo", config)
        self.assertFalse([line for line in config.splitlines() if line.startswith("admins")])

    def test_serverinfo(self) -> None:
        """
        With C{serverinfo}, the host is an admin and runs the module (in
        its own section), told its service, node, intervals, and a dead
        provider-list URL.
        """
        peer = self.peer(serverinfo=True, serverinfoInterval=3, serverinfoCacheTtl=7.5)
        lines = peer.configText().splitlines()
        host = lines.index('VirtualHost "a.example"')
        self.assertIn('admins = { "a.example" }', lines[:host])
        self.assertEqual(
            lines[host + 1 : host + 7],
            [
                '    modules_enabled = { "pubsub_serverinfo" }',
                '    pubsub_serverinfo_service = "pubsub.a.example"',
                '    pubsub_serverinfo_node = "serverinfo"',
                "    pubsub_serverinfo_publication_interval = 3",
                "    pubsub_serverinfo_cache_ttl = 7.5",
                '    pubsub_serverinfo_public_providers_url = "http://127.0.0.1:9/providers.json"',
            ],
        )
        self.assertIn('Component "pubsub.a.example" "pubsub"', lines[host:])
        self.assertNotIn("pubsub_serverinfo", "\n".join(lines[:host]))

    def test_serverinfoNeedsPubsub(self) -> None:
        """
        C{serverinfo} without the pub-sub component is refused.
        """
        with self.assertRaises(ProsodyError):
            self.peer(serverinfo=True, pubsub=False)

    def test_versionTuple(self) -> None:
        """
        L{versionTuple} keeps the leading numeric parts of a version.
        """
        self.assertEqual(versionTuple("13.0.1"), (13, 0, 1))
        self.assertEqual(versionTuple("0.12.3"), (0, 12, 3))
        self.assertEqual(versionTuple("13.0.1+dfsg"), (13, 0, 1))
        self.assertEqual(versionTuple("hg:0123456789ab"), ())
        self.assertEqual(versionTuple(None), ())

    def test_luaQuoting(self) -> None:
        """
        Strings are written as Lua literals: quotes and backslashes escaped.
        """
        peer = self.peer(hosts={})
        peer.domain = 'we"ird\\x'
        self.assertIn('VirtualHost "we\\"ird\\\\x"', peer.configText())
