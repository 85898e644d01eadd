# -*- test-case-name: tests.test_certs -*-
"""
Tests for L{xmppnetgraph.certs}, including real TLS handshakes over loopback
between L{serverTLSOptions} and L{clientTLSOptions}.
"""

from __future__ import annotations

import datetime
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from pyasn1.codec.der.decoder import decode as derDecode
from pyasn1.type.char import IA5String, UTF8String
from twisted.internet import defer
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
)
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.internet.ssl import CertificateOptions
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from xmppnetgraph import certs
from xmppnetgraph.s2s.identity import peerCertificateValidFor

from .pki import TestCA, selfSigned


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    """
    @return: the subjectAltName extension of C{cert}.
    """
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def _otherNames(cert: x509.Certificate, oid: str, spec: Any) -> list[str]:
    """
    @return: the OtherName SANs of type C{oid}, decoded with pyasn1 C{spec}.
    """
    return [
        str(derDecode(o.value, asn1Spec=spec)[0])
        for o in _sans(cert).get_values_for_type(x509.OtherName)
        if o.type_id.dotted_string == oid
    ]


def _warnings(events: Sequence[Any]) -> list[str]:
    """
    @return: the format strings of the warnings among C{events}.
    """
    return [e["log_format"] for e in events if e["log_level"] == LogLevel.warn]


class SelfSignedTests(SynchronousTestCase):
    """
    Tests for L{certs.ensureSelfSigned} and L{certs.writeSelfSigned}.
    """

    def setUp(self) -> None:
        """
        Use a fresh data directory.
        """
        self.dataDir = Path(self.mktemp())

    def test_generates(self) -> None:
        """
        The certificate and key are written under C{tls/}, the key mode 0600,
        EC P-256, CN the first domain, valid for about ten years, and a
        warning says peers will fall back to dialback.
        """
        with capturedLogs() as events:
            certPath, keyPath = certs.ensureSelfSigned(self.dataDir, ["a.test", "pubsub.a.test"])
        self.assertEqual(certPath, self.dataDir / "tls" / "selfsigned.crt")
        self.assertEqual(keyPath, self.dataDir / "tls" / "selfsigned.key")
        self.assertEqual(stat.S_IMODE(os.stat(keyPath).st_mode), 0o600)
        creds = certs.loadCredentials(certPath, keyPath)
        cert = creds.certificate
        self.assertIsInstance(creds.key, ec.EllipticCurvePrivateKey)
        assert isinstance(creds.key, ec.EllipticCurvePrivateKey)
        self.assertEqual(creds.key.curve.name, "secp256r1")
        self.assertEqual(
            cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
            "a.test",
        )
        self.assertEqual(cert.issuer, cert.subject)
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        self.assertGreater(lifetime, datetime.timedelta(days=9 * 365))
        self.assertEqual(creds.chain, ())
        [warning] = _warnings(events)
        self.assertIn("dialback", warning)

    def test_subjectAltNames(self) -> None:
        """
        Each domain gets a DNS-ID, an SRVName C{_xmpp-server.<domain>} and an
        xmppAddr; IDN domains are A-labels except in the xmppAddr.
        """
        certPath, _ = certs.ensureSelfSigned(self.dataDir, ["a.test", "bücher.test"])
        cert = x509.load_pem_x509_certificate(certPath.read_bytes())
        self.assertEqual(
            _sans(cert).get_values_for_type(x509.DNSName),
            ["a.test", "xn--bcher-kva.test"],
        )
        self.assertEqual(
            _otherNames(cert, "1.3.6.1.5.5.7.8.7", IA5String()),
            ["_xmpp-server.a.test", "_xmpp-server.xn--bcher-kva.test"],
        )
        self.assertEqual(
            _otherNames(cert, "1.3.6.1.5.5.7.8.5", UTF8String()),
            ["a.test", "bücher.test"],
        )

    def test_opensslReadsSubjectAltNames(self) -> None:
        """
        The openssl command line tool decodes the SANs we write the way the
        notes say it should.
        """
        openssl = shutil.which("openssl")
        if openssl is None:
            raise self.skipTest("no openssl binary")
        certPath, _ = certs.ensureSelfSigned(self.dataDir, ["a.test"])
        out = subprocess.run(
            [openssl, "x509", "-in", str(certPath), "-noout", "-ext", "subjectAltName"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        self.assertIn("DNS:a.test", out)
        self.assertIn("SRVName::_xmpp-server.a.test", out)
        self.assertIn("XmppAddr::a.test", out)

    def test_reuse(self) -> None:
        """
        Files that cover the requested domains (or more) are reused as they
        are.
        """
        certPath, keyPath = certs.ensureSelfSigned(self.dataDir, ["a.test", "b.test"])
        before = (certPath.read_bytes(), keyPath.read_bytes())
        again = certs.ensureSelfSigned(self.dataDir, ["B.test"])
        self.assertEqual(again, (certPath, keyPath))
        self.assertEqual((certPath.read_bytes(), keyPath.read_bytes()), before)

    def test_regenerateForNewDomain(self) -> None:
        """
        Files that don't cover a requested domain are replaced, and that is
        logged.
        """
        certPath, keyPath = certs.ensureSelfSigned(self.dataDir, ["a.test"])
        before = certPath.read_bytes()
        with capturedLogs() as events:
            certs.ensureSelfSigned(self.dataDir, ["a.test", "b.test"])
        self.assertNotEqual(certPath.read_bytes(), before)
        cert = certs.loadCredentials(certPath, keyPath).certificate
        self.assertEqual(_sans(cert).get_values_for_type(x509.DNSName), ["a.test", "b.test"])
        self.assertTrue(any("does not cover" in e["log_format"] for e in events), events)

    def test_regenerateBroken(self) -> None:
        """
        A damaged or missing half of the pair is regenerated.
        """
        certPath, keyPath = certs.ensureSelfSigned(self.dataDir, ["a.test"])
        keyPath.write_bytes(b"garbage")
        certs.ensureSelfSigned(self.dataDir, ["a.test"])
        certs.loadCredentials(certPath, keyPath)
        certPath.unlink()
        certs.ensureSelfSigned(self.dataDir, ["a.test"])
        certs.loadCredentials(certPath, keyPath)

    def test_regenerateExpired(self) -> None:
        """
        An expired self-signed certificate is replaced.
        """
        tlsDir = self.dataDir / "tls"
        certPath, keyPath = tlsDir / "selfsigned.crt", tlsDir / "selfsigned.key"
        certs.writeSelfSigned(certPath, keyPath, ["a.test"], days=-1)
        certs.ensureSelfSigned(self.dataDir, ["a.test"])
        cert = certs.loadCredentials(certPath, keyPath).certificate
        self.assertGreater(cert.not_valid_after_utc, datetime.datetime.now(datetime.UTC))

    def test_noDomains(self) -> None:
        """
        A certificate needs a domain.
        """
        self.assertRaises(
            ValueError,
            certs.writeSelfSigned,
            self.dataDir / "c",
            self.dataDir / "k",
            [],
        )


class LoadCredentialsTests(SynchronousTestCase):
    """
    Tests for L{certs.loadCredentials}.
    """

    def setUp(self) -> None:
        """
        Make a CA and an intermediate in a temporary directory.
        """
        self.dir = Path(self.mktemp())
        self.ca = TestCA(self.dir)

    def assertConfigError(self, certPath: Path, keyPath: Path, *fragments: str) -> None:
        """
        Assert that loading fails with a message holding C{fragments}.
        """
        e = self.assertRaises(certs.TLSConfigError, certs.loadCredentials, certPath, keyPath)
        for fragment in fragments:
            self.assertIn(fragment, str(e))

    def test_leafAndChain(self) -> None:
        """
        A PEM file with the leaf and its intermediates gives both.
        """
        sub = TestCA(self.dir / "sub", name="sub CA", issuer=self.ca)
        certPath, keyPath = sub.issue(["a.test"])
        creds = certs.loadCredentials(certPath, keyPath)
        self.assertEqual(
            creds.certificate, x509.load_pem_x509_certificates(certPath.read_bytes())[0]
        )
        self.assertEqual(creds.chain, (sub.certificate,))

    def test_combinedFile(self) -> None:
        """
        Key and certificate may be in the same file.
        """
        certPath, keyPath = self.ca.issue(["a.test"])
        both = self.dir / "both.pem"
        both.write_bytes(keyPath.read_bytes() + certPath.read_bytes())
        creds = certs.loadCredentials(both, both)
        self.assertEqual(creds.chain, ())
        self.assertIn("a.test", _sans(creds.certificate).get_values_for_type(x509.DNSName))

    def test_missing(self) -> None:
        """
        A missing file is named in the error.
        """
        certPath, keyPath = self.ca.issue(["a.test"])
        nowhere = self.dir / "nowhere.pem"
        self.assertConfigError(nowhere, keyPath, str(nowhere), "does not exist")
        self.assertConfigError(certPath, nowhere, str(nowhere), "key", "does not exist")

    def test_unreadable(self) -> None:
        """
        A path that can't be read (here a directory) gives a clear error.
        """
        _, keyPath = self.ca.issue(["a.test"])
        self.assertConfigError(self.dir, keyPath, "cannot read", str(self.dir))

    def test_notPEM(self) -> None:
        """
        Files without a certificate or key are reported as such.
        """
        certPath, keyPath = self.ca.issue(["a.test"])
        junk = self.dir / "junk"
        junk.write_bytes(b"hello")
        self.assertConfigError(junk, keyPath, "no PEM certificate", str(junk))
        self.assertConfigError(certPath, junk, "private key", str(junk))

    def test_encryptedKey(self) -> None:
        """
        An encrypted key is refused.
        """
        certPath, keyPath = self.ca.issue(["a.test"])
        key = serialization.load_pem_private_key(keyPath.read_bytes(), None)
        locked = self.dir / "locked.key"
        locked.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        self.assertConfigError(certPath, locked, "unencrypted", str(locked))

    def test_mismatchedKey(self) -> None:
        """
        A key that does not belong to the certificate is refused.
        """
        certPath, _ = self.ca.issue(["a.test"])
        _, otherKey = self.ca.issue(["b.test"])
        self.assertConfigError(certPath, otherKey, "does not match", str(otherKey))


class LoadTrustRootsTests(SynchronousTestCase):
    """
    Tests for L{certs.loadTrustRoots}.
    """

    def setUp(self) -> None:
        """
        Make two CAs and a bundle of both.
        """
        self.dir = Path(self.mktemp())
        self.ca1 = TestCA(self.dir / "1", name="CA 1")
        self.ca2 = TestCA(self.dir / "2", name="CA 2")
        self.bundle = self.dir / "bundle.pem"
        self.bundle.write_bytes(self.ca1.caPath.read_bytes() + self.ca2.caPath.read_bytes())

    def test_caFile(self) -> None:
        """
        All certificates in the CA file are loaded.
        """
        self.assertEqual(
            certs.loadTrustRoots(self.bundle),
            (self.ca1.certificate, self.ca2.certificate),
        )

    def test_malformedEntrySkipped(self) -> None:
        """
        A malformed certificate in the file does not hide the others.
        """
        broken = self.dir / "broken.pem"
        broken.write_bytes(
            self.ca1.caPath.read_bytes()
            + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            + self.ca2.caPath.read_bytes()
        )
        self.assertEqual(certs.loadTrustRoots(broken), (self.ca1.certificate, self.ca2.certificate))

    def test_missingOrEmpty(self) -> None:
        """
        A missing or empty CA file gives no roots and a warning.
        """
        empty = self.dir / "empty.pem"
        empty.write_bytes(b"")
        for path in (self.dir / "missing.pem", empty):
            with capturedLogs() as events:
                self.assertEqual(certs.loadTrustRoots(path), ())
            [warning] = _warnings(events)
            self.assertIn("No trust roots", warning)

    def test_systemCAFile(self) -> None:
        """
        Without a CA file, the default verify paths' cafile is used.
        """
        paths = SimpleNamespace(cafile=str(self.bundle), capath=None)
        self.patch(certs.ssl, "get_default_verify_paths", lambda: paths)
        self.assertEqual(certs.loadTrustRoots(None), (self.ca1.certificate, self.ca2.certificate))

    def test_systemCAPath(self) -> None:
        """
        Without a usable cafile, the fallback bundle and then the capath
        directory are used.
        """
        paths = SimpleNamespace(cafile=None, capath=str(self.dir / "1"))
        self.patch(certs.ssl, "get_default_verify_paths", lambda: paths)
        self.patch(certs, "_FALLBACK_CAFILE", str(self.dir / "none.pem"))
        self.assertEqual(certs.loadTrustRoots(None), (self.ca1.certificate,))
        self.patch(certs, "_FALLBACK_CAFILE", str(self.bundle))
        self.assertEqual(certs.loadTrustRoots(None), (self.ca1.certificate, self.ca2.certificate))

    def test_systemEmpty(self) -> None:
        """
        An empty system store gives no roots and a warning.
        """
        paths = SimpleNamespace(cafile=None, capath=None)
        self.patch(certs.ssl, "get_default_verify_paths", lambda: paths)
        self.patch(certs, "_FALLBACK_CAFILE", str(self.dir / "none.pem"))
        with capturedLogs() as events:
            self.assertEqual(certs.loadTrustRoots(None), ())
        self.assertEqual(len(_warnings(events)), 1)


class OptionsTests(SynchronousTestCase):
    """
    Tests for L{certs.serverTLSOptions}, L{certs.clientTLSOptions} and
    L{certs.tlsVersion} without a network.
    """

    def setUp(self) -> None:
        """
        Load credentials from the test CA.
        """
        directory = Path(self.mktemp())
        self.creds = certs.loadCredentials(*TestCA(directory).issue(["a.test"]))

    def test_serverRequestsButDoesNotRequire(self) -> None:
        """
        The server context asks for a peer certificate but does not fail
        without one.
        """
        ctx = certs.serverTLSOptions(self.creds).getContext()
        mode = ctx.get_verify_mode()
        self.assertTrue(mode & SSL.VERIFY_PEER)
        self.assertFalse(mode & SSL.VERIFY_FAIL_IF_NO_PEER_CERT)

    def test_clientCreator(self) -> None:
        """
        The client options provide L{IOpenSSLClientConnectionCreator}.
        """
        creator = certs.clientTLSOptions(self.creds).creatorFor("a.test")
        self.assertTrue(verifyObject(IOpenSSLClientConnectionCreator, creator))

    def test_clientContextShared(self) -> None:
        """
        Every connection made from one L{certs.ClientTLSOptions} uses one
        OpenSSL context, whatever the server name; each sends its own SNI.
        """
        options = certs.clientTLSOptions(self.creds)
        first = options.creatorFor("a.test").clientConnectionForTLS(None)  # type: ignore[arg-type]
        second = options.creatorFor("b.test").clientConnectionForTLS(None)  # type: ignore[arg-type]
        self.assertIs(first.get_context(), second.get_context())
        self.assertEqual((first.get_servername(), second.get_servername()), (b"a.test", b"b.test"))
        other = certs.clientTLSOptions(self.creds).creatorFor("a.test")
        self.assertIsNot(
            other.clientConnectionForTLS(None).get_context(),  # type: ignore[arg-type]
            first.get_context(),
        )

    def test_tlsVersionWithoutTLS(self) -> None:
        """
        A transport without TLS has no TLS version.
        """
        self.assertIsNone(certs.tlsVersion(StringTransport()))
        self.assertIsNone(certs.tlsVersion(object()))


@implementer(IHandshakeListener)
class _TLSPeer(Protocol):
    """
    Starts TLS as soon as connected and reports the handshake.

    @ivar handshake: fires with this protocol when the handshake is done, or
        fails if the connection is lost first.
    @ivar lost: fires when the connection is lost.
    """

    def __init__(self, options: object) -> None:
        self.options = options
        self.handshake: defer.Deferred[_TLSPeer] = defer.Deferred()
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.serverName: bytes | None = None

    def connectionMade(self) -> None:
        """
        Start TLS.
        """
        self.transport.startTLS(self.options)  # type: ignore[union-attr]

    def handshakeCompleted(self) -> None:
        """
        Record SNI and report the handshake.
        """
        self.serverName = self.transport.getHandle().get_servername()  # type: ignore[union-attr]
        self.handshake.callback(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Report the loss, and fail the handshake if it had not finished.
        """
        if not self.handshake.called:
            self.handshake.errback(reason)
        self.lost.callback(None)


class HandshakeTests(TestCase):
    """
    Real TLS handshakes over 127.0.0.1 between L{certs.serverTLSOptions} and
    L{certs.clientTLSOptions}.
    """

    timeout = 20

    def setUp(self) -> None:
        """
        Make a CA, and certificates for a server and a client domain.
        """
        self.dir = Path(self.mktemp())
        self.ca = TestCA(self.dir)
        self.roots = certs.loadTrustRoots(self.ca.caPath)
        self.serverCreds = certs.loadCredentials(*self.ca.issue(["server.test"]))
        self.clientCreds = certs.loadCredentials(*self.ca.issue(["client.test"]))

    async def _handshake(
        self, serverOptions: object, clientOptions: object
    ) -> tuple[_TLSPeer, _TLSPeer]:
        """
        Connect a client to a server over loopback and wait until both ends
        finished the handshake. Cleanup closes both and the port.

        @return: the server and client protocols.
        """
        from twisted.internet import reactor as _reactor

        reactor: Any = _reactor
        servers: list[_TLSPeer] = []

        def buildServer(addr: object) -> _TLSPeer:
            servers.append(_TLSPeer(serverOptions))
            return servers[-1]

        serverFactory = Factory.forProtocol(Protocol)
        serverFactory.buildProtocol = buildServer  # type: ignore[method-assign]
        port = reactor.listenTCP(0, serverFactory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)

        client = _TLSPeer(clientOptions)
        clientFactory = ClientFactory()
        clientFactory.buildProtocol = lambda addr: client  # type: ignore[method-assign]
        reactor.connectTCP("127.0.0.1", port.getHost().port, clientFactory)

        async def close() -> None:
            for peer in [client, *servers]:
                if peer.transport is not None:
                    peer.transport.loseConnection()
            for peer in [client, *servers]:
                if peer.transport is not None:
                    await peer.lost

        self.addCleanup(lambda: defer.Deferred.fromCoroutine(close()))
        await client.handshake
        # The server accepted before it could send its half of the handshake.
        [server] = servers
        await server.handshake
        return server, client

    async def test_caCertificatesBothWays(self) -> None:
        """
        With test-CA certificates on both sides the handshake succeeds with
        TLS 1.3 and SNI, and each side finds the other's certificate valid
        for its domain and for no other.
        """
        server, client = await self._handshake(
            certs.serverTLSOptions(self.serverCreds),
            certs.clientTLSOptions(self.clientCreds).creatorFor("server.test"),
        )
        self.assertEqual(server.serverName, b"server.test")
        self.assertEqual(certs.tlsVersion(server.transport), "TLSv1.3")
        self.assertEqual(certs.tlsVersion(client.transport), "TLSv1.3")
        self.assertTrue(
            peerCertificateValidFor(server.transport, "client.test", self.roots, peerIsClient=True)
        )
        self.assertFalse(
            peerCertificateValidFor(server.transport, "server.test", self.roots, peerIsClient=True)
        )
        self.assertTrue(
            peerCertificateValidFor(client.transport, "server.test", self.roots, peerIsClient=False)
        )
        self.assertFalse(
            peerCertificateValidFor(client.transport, "client.test", self.roots, peerIsClient=False)
        )

    async def test_intermediateChain(self) -> None:
        """
        Certificates from an intermediate CA are valid on both sides: the
        chain sent in the handshake is used (the server-side chain lacks the
        leaf, the client-side one starts with it).
        """
        sub = TestCA(self.dir / "sub", name="sub CA", issuer=self.ca)
        serverCreds = certs.loadCredentials(*sub.issue(["server.test"]))
        clientCreds = certs.loadCredentials(*sub.issue(["client.test"]))
        server, client = await self._handshake(
            certs.serverTLSOptions(serverCreds),
            certs.clientTLSOptions(clientCreds).creatorFor("server.test"),
        )
        self.assertTrue(
            peerCertificateValidFor(server.transport, "client.test", self.roots, peerIsClient=True)
        )
        self.assertTrue(
            peerCertificateValidFor(client.transport, "server.test", self.roots, peerIsClient=False)
        )

    async def test_selfSignedAccepted(self) -> None:
        """
        Self-signed certificates on both sides don't stop the handshake, but
        are not valid for their own domains.
        """
        serverCreds = certs.loadCredentials(
            *selfSigned(self.dir, ["server.test"], name="server-self")
        )
        clientCreds = certs.loadCredentials(
            *selfSigned(self.dir, ["client.test"], name="client-self")
        )
        server, client = await self._handshake(
            certs.serverTLSOptions(serverCreds),
            certs.clientTLSOptions(clientCreds).creatorFor("server.test"),
        )
        self.assertIsNotNone(server.transport.getPeerCertificate())  # type: ignore[union-attr]
        self.assertIsNotNone(client.transport.getPeerCertificate())  # type: ignore[union-attr]
        self.assertFalse(
            peerCertificateValidFor(server.transport, "client.test", self.roots, peerIsClient=True)
        )
        self.assertFalse(
            peerCertificateValidFor(client.transport, "server.test", self.roots, peerIsClient=False)
        )

    async def test_wrongCAAccepted(self) -> None:
        """
        A client certificate from an untrusted CA is accepted at the
        handshake but not valid.
        """
        other = TestCA(self.dir / "other", name="other CA")
        clientCreds = certs.loadCredentials(*other.issue(["client.test"]))
        server, client = await self._handshake(
            certs.serverTLSOptions(self.serverCreds),
            certs.clientTLSOptions(clientCreds).creatorFor("server.test"),
        )
        self.assertFalse(
            peerCertificateValidFor(server.transport, "client.test", self.roots, peerIsClient=True)
        )
        self.assertTrue(
            peerCertificateValidFor(client.transport, "server.test", self.roots, peerIsClient=False)
        )

    async def test_clientWithoutCertificate(self) -> None:
        """
        A client that presents no certificate can still connect; there is
        then no valid peer certificate.
        """
        server, client = await self._handshake(
            certs.serverTLSOptions(self.serverCreds), CertificateOptions()
        )
        self.assertIsNone(server.transport.getPeerCertificate())  # type: ignore[union-attr]
        self.assertFalse(
            peerCertificateValidFor(server.transport, "client.test", self.roots, peerIsClient=True)
        )

    def _clientOffering(self, protocols: list[bytes]) -> object:
        """
        @return: Twisted client options that trust the test CA and offer
            C{protocols} over ALPN.
        """
        from twisted.internet import ssl

        root = ssl.Certificate.loadPEM(self.ca.caPath.read_bytes())
        return ssl.optionsForClientTLS("server.test", trustRoot=root, acceptableProtocols=protocols)

    async def test_xmppServerSelected(self) -> None:
        """
        ALPN on the receiving side: a client offering C{xmpp-server} (as
        Prosody does) gets it.
        """
        server, client = await self._handshake(
            certs.serverTLSOptions(self.serverCreds), self._clientOffering([b"h2", b"xmpp-server"])
        )
        self.assertEqual(client.transport.getHandle().get_alpn_proto_negotiated(), b"xmpp-server")  # type: ignore[union-attr]

    async def test_noOverlapStillConnects(self) -> None:
        """
        A client offering only other protocols still completes the
        handshake, without a negotiated protocol (Twisted's own callback
        made OpenSSL abort with an internal error here).
        """
        server, client = await self._handshake(
            certs.serverTLSOptions(self.serverCreds), self._clientOffering([b"h2"])
        )
        self.assertEqual(client.transport.getHandle().get_alpn_proto_negotiated(), b"")  # type: ignore[union-attr]
