# -*- test-case-name: tests.test_identity -*-
"""
Tests for L{xmppnetgraph.s2s.identity}.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph import certs
from xmppnetgraph.s2s import identity
from xmppnetgraph.s2s.identity import (
    PeerVerifier,
    certificateMatchesDomain,
    peerCertificateValidFor,
    verifyChain,
    xmppAddrs,
)

from .pki import TestCA, selfSigned


def _load(paths: tuple[Path, Path]) -> list[x509.Certificate]:
    """
    @return: the certificates in the PEM file C{paths[0]}, leaf first.
    """
    return x509.load_pem_x509_certificates(paths[0].read_bytes())


def _now() -> datetime.datetime:
    """
    @return: the current time, UTC.
    """
    return datetime.datetime.now(datetime.UTC)


class _PKIMixin:
    """
    A fresh test CA per test.
    """

    def setUp(self) -> None:
        """
        Make a CA in a temporary directory.
        """
        self.dir = Path(self.mktemp())  # type: ignore[attr-defined]
        self.dir.mkdir()
        self.ca = TestCA(self.dir)

    def leaf(self, domains: Sequence[str], **kwargs: object) -> x509.Certificate:
        """
        @return: a leaf issued by the test CA.
        """
        return _load(self.ca.issue(domains, **kwargs))[0]  # type: ignore[arg-type]


class XmppAddrsTests(_PKIMixin, SynchronousTestCase):
    """
    Tests for L{xmppAddrs}.
    """

    def test_decodes(self) -> None:
        """
        Every id-on-xmppAddr is decoded, Unicode included.
        """
        cert = self.leaf(["a.test", "bücher.test"])
        self.assertEqual(xmppAddrs(cert), ["a.test", "bücher.test"])

    def test_none(self) -> None:
        """
        A certificate without xmppAddr, or without SANs at all, has none.
        """
        self.assertEqual(xmppAddrs(self.leaf(["a.test"], xmppAddrs=False)), [])
        noSAN = self.leaf(["b.test"], dnsIDs=False, srvIDs=False, xmppAddrs=False)
        self.assertEqual(xmppAddrs(noSAN), [])

    def test_malformed(self) -> None:
        """
        An xmppAddr whose value is not a UTF8String is skipped.
        """
        cert = self.leaf(["a.test"])
        san = x509.SubjectAlternativeName(
            [
                x509.OtherName(certs.ID_ON_XMPPADDR, b"\x16\x06a.test"),
                certs.xmppAddrName("good.test"),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(cert.subject)
            .public_key(cert.public_key())
            .serial_number(1)
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
            .add_extension(san, critical=False)
        )
        odd = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        self.assertEqual(xmppAddrs(odd), ["good.test"])


class CertificateMatchesDomainTests(_PKIMixin, SynchronousTestCase):
    """
    Tests for L{certificateMatchesDomain}.
    """

    def test_dnsID(self) -> None:
        """
        A DNS-ID matches its domain, case-insensitively, and no other.
        """
        cert = self.leaf(["a.test", "b.test"], srvIDs=False, xmppAddrs=False)
        self.assertTrue(certificateMatchesDomain(cert, "a.test"))
        self.assertTrue(certificateMatchesDomain(cert, "B.Test"))
        self.assertFalse(certificateMatchesDomain(cert, "c.test"))
        self.assertFalse(certificateMatchesDomain(cert, "x.a.test"))

    def test_wildcard(self) -> None:
        """
        A wildcard DNS-ID matches exactly one leftmost label.
        """
        cert = self.leaf(["*.w.test"], srvIDs=False, xmppAddrs=False, name="wild")
        self.assertTrue(certificateMatchesDomain(cert, "pubsub.w.test"))
        self.assertFalse(certificateMatchesDomain(cert, "w.test"))
        self.assertFalse(certificateMatchesDomain(cert, "a.pubsub.w.test"))
        self.assertFalse(certificateMatchesDomain(cert, "*.w.test"))

    def test_srvIDOnly(self) -> None:
        """
        A certificate whose only identity is SRV-ID C{_xmpp-server.<domain>}
        matches that domain.
        """
        cert = self.leaf(["s.test"], dnsIDs=False, xmppAddrs=False)
        self.assertTrue(certificateMatchesDomain(cert, "s.test"))
        self.assertFalse(certificateMatchesDomain(cert, "t.test"))

    def test_xmppAddrOnly(self) -> None:
        """
        A certificate whose only identity is an xmppAddr matches its domain.
        """
        cert = self.leaf(["x.test"], dnsIDs=False, srvIDs=False)
        self.assertTrue(certificateMatchesDomain(cert, "x.test"))
        self.assertTrue(certificateMatchesDomain(cert, "X.TEST"))
        self.assertFalse(certificateMatchesDomain(cert, "y.test"))

    def test_anyOneIdentityIsEnough(self) -> None:
        """
        A matching SRV-ID is enough even if the certificate's DNS-IDs are for
        other domains, and vice versa (service_identity's optional ids would
        reject both).
        """
        san = x509.SubjectAlternativeName([x509.DNSName("other.test"), certs.srvName("a.test")])
        cert = self._withSAN(san)
        self.assertTrue(certificateMatchesDomain(cert, "a.test"))
        self.assertTrue(certificateMatchesDomain(cert, "other.test"))
        self.assertFalse(certificateMatchesDomain(cert, "third.test"))

    def test_xmppAddrWithLocalpartIgnored(self) -> None:
        """
        An xmppAddr holding a full JID does not identify its domain.
        """
        san = x509.SubjectAlternativeName(
            [certs.xmppAddrName("user@a.test"), certs.xmppAddrName("b.test/r")]
        )
        cert = self._withSAN(san)
        self.assertFalse(certificateMatchesDomain(cert, "a.test"))
        self.assertFalse(certificateMatchesDomain(cert, "b.test"))

    def _withSAN(self, san: x509.SubjectAlternativeName) -> x509.Certificate:
        """
        @return: a self-signed certificate with exactly C{san}.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([])
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(_now() - datetime.timedelta(days=1))
            .not_valid_after(_now() + datetime.timedelta(days=1))
            .add_extension(san, critical=True)
            .sign(key, hashes.SHA256())
        )

    def test_mismatch(self) -> None:
        """
        A certificate with all three identity types for one domain does not
        match another, nor a malformed domain.
        """
        cert = self.leaf(["a.test"])
        self.assertTrue(certificateMatchesDomain(cert, "a.test"))
        self.assertFalse(certificateMatchesDomain(cert, "b.test"))
        self.assertFalse(certificateMatchesDomain(cert, ""))
        self.assertFalse(certificateMatchesDomain(cert, "a..test"))

    def test_noSAN(self) -> None:
        """
        A certificate without subjectAltName matches nothing, not even its CN.
        """
        cert = self.leaf(["n.test"], dnsIDs=False, srvIDs=False, xmppAddrs=False)
        self.assertFalse(certificateMatchesDomain(cert, "n.test"))

    def test_idn(self) -> None:
        """
        IDN domains match in U-label or A-label form, for each identity type.
        """
        for flags in (
            {"srvIDs": False, "xmppAddrs": False},
            {"dnsIDs": False, "xmppAddrs": False},
            {"dnsIDs": False, "srvIDs": False},
        ):
            cert = self.leaf(["bücher.test"], name=f"idn-{sorted(flags)}", **flags)
            self.assertTrue(certificateMatchesDomain(cert, "bücher.test"), flags)
            self.assertTrue(certificateMatchesDomain(cert, "xn--bcher-kva.test"), flags)
            self.assertTrue(certificateMatchesDomain(cert, "BÜCHER.test"), flags)
            self.assertFalse(certificateMatchesDomain(cert, "bucher.test"), flags)


class VerifyChainTests(_PKIMixin, SynchronousTestCase):
    """
    Tests for L{verifyChain}.
    """

    def test_valid(self) -> None:
        """
        A leaf issued by a trusted CA is valid for both directions.
        """
        leaf = self.leaf(["a.test"])
        roots = [self.ca.certificate]
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=True))
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=False))

    def test_rootsChangeTheStore(self) -> None:
        """
        The verification store is built once per roots object and not
        reused for other roots: the same roots verify again, another CA's
        roots do not verify this leaf.
        """
        leaf = self.leaf(["a.test"])
        roots = (self.ca.certificate,)
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=True))
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=True))
        other = TestCA(self.dir / "other", name="other CA")
        self.assertFalse(verifyChain(leaf, [], (other.certificate,), peerIsClient=True))
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=True))

    def test_wrongCA(self) -> None:
        """
        A leaf from another CA is not valid, and the reason is logged.
        """
        other = TestCA(self.dir / "other", name="other CA")
        leaf = _load(other.issue(["a.test"]))[0]
        with capturedLogs() as events:
            result = verifyChain(leaf, [], [self.ca.certificate], peerIsClient=True)
        self.assertFalse(result)
        self.assertTrue(any("not valid" in e.get("log_format", "") for e in events), events)

    def test_noRoots(self) -> None:
        """
        Without trust roots nothing is valid.
        """
        self.assertFalse(verifyChain(self.leaf(["a.test"]), [], [], peerIsClient=True))

    def test_expired(self) -> None:
        """
        An expired leaf is not valid now, but was before it expired.
        """
        leaf = self.leaf(["e.test"], notAfter=_now() - datetime.timedelta(hours=1))
        roots = [self.ca.certificate]
        self.assertFalse(verifyChain(leaf, [], roots, peerIsClient=False))
        self.assertTrue(
            verifyChain(
                leaf,
                [],
                roots,
                peerIsClient=False,
                now=_now() - datetime.timedelta(hours=2),
            )
        )

    def test_notYetValid(self) -> None:
        """
        Before the start of its validity a leaf is not valid.
        """
        leaf = self.leaf(["a.test"])
        self.assertFalse(
            verifyChain(
                leaf,
                [],
                [self.ca.certificate],
                peerIsClient=True,
                now=_now() - datetime.timedelta(days=3),
            )
        )

    def test_selfSigned(self) -> None:
        """
        A self-signed certificate is not valid, even when it is its own root.
        """
        leaf = _load(selfSigned(self.dir, ["s.test"]))[0]
        self.assertFalse(verifyChain(leaf, [], [self.ca.certificate], peerIsClient=True))
        self.assertFalse(verifyChain(leaf, [], [leaf], peerIsClient=True))

    def test_intermediate(self) -> None:
        """
        A leaf from an intermediate CA is valid only with the intermediate.
        """
        sub = TestCA(self.dir / "sub", name="sub CA", issuer=self.ca)
        leaf, *chain = _load(sub.issue(["a.test"]))
        self.assertEqual(chain, [sub.certificate])
        roots = [self.ca.certificate]
        self.assertTrue(verifyChain(leaf, chain, roots, peerIsClient=True))
        self.assertFalse(verifyChain(leaf, [], roots, peerIsClient=True))

    def test_ekuServerAuthOnly(self) -> None:
        """
        A serverAuth-only leaf is valid for a peer in either direction: a
        client peer need not have clientAuth.
        """
        leaf = self.leaf(["a.test"], extendedKeyUsage=[ExtendedKeyUsageOID.SERVER_AUTH])
        roots = [self.ca.certificate]
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=True))
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=False))

    def test_ekuClientAuthOnly(self) -> None:
        """
        A clientAuth-only leaf is valid for a client peer but not for a
        server we connected to.
        """
        leaf = self.leaf(["a.test"], extendedKeyUsage=[ExtendedKeyUsageOID.CLIENT_AUTH])
        roots = [self.ca.certificate]
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=True))
        self.assertFalse(verifyChain(leaf, [], roots, peerIsClient=False))

    def test_ekuUnrelated(self) -> None:
        """
        A leaf whose EKU allows neither TLS purpose is not valid.
        """
        leaf = self.leaf(["a.test"], extendedKeyUsage=[ExtendedKeyUsageOID.CODE_SIGNING])
        roots = [self.ca.certificate]
        self.assertFalse(verifyChain(leaf, [], roots, peerIsClient=True))
        self.assertFalse(verifyChain(leaf, [], roots, peerIsClient=False))

    def test_noEKU(self) -> None:
        """
        A leaf without EKU is valid in either direction.
        """
        leaf = self.leaf(["a.test"], extendedKeyUsage=[])
        self.assertIsNone(
            next(
                (e for e in leaf.extensions if isinstance(e.value, x509.ExtendedKeyUsage)),
                None,
            )
        )
        roots = [self.ca.certificate]
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=True))
        self.assertTrue(verifyChain(leaf, [], roots, peerIsClient=False))


class PeerCertificateValidForTests(SynchronousTestCase):
    """
    Tests for L{peerCertificateValidFor} without TLS; the TLS cases are in
    L{tests.test_certs.HandshakeTests}.
    """

    def test_notTLS(self) -> None:
        """
        A transport without TLS has no valid peer certificate, and nothing
        is logged above debug level.
        """
        with capturedLogs() as events:
            result = peerCertificateValidFor(StringTransport(), "a.test", [], peerIsClient=True)
        self.assertFalse(result)
        self.assertEqual([e for e in events if e["log_level"] > LogLevel.debug], [])


class PeerVerifierTests(_PKIMixin, SynchronousTestCase):
    """
    Tests for L{PeerVerifier}: verdicts remembered per chain, domain and
    direction, for a while.
    """

    def setUp(self) -> None:
        """
        A verifier trusting the test CA, on a fake clock, counting the chain
        verifications it makes.
        """
        super().setUp()
        self.clock = Clock()
        self.clock.advance(_now().timestamp())
        self.verifier = PeerVerifier((self.ca.certificate,), self.clock, ttl=60.0, maxEntries=3)
        self.checks: list[x509.Certificate] = []
        verify = identity.verifyChain

        def counting(leaf: x509.Certificate, *args: object, **kwargs: object) -> bool:
            self.checks.append(leaf)
            return verify(leaf, *args, **kwargs)  # type: ignore[arg-type]

        self.patch(identity, "verifyChain", counting)

    def test_remembered(self) -> None:
        """
        The same chain in the same direction is verified once, whatever the
        domain; whether the leaf identifies the domain is checked each time.
        The other direction is a verdict of its own.
        """
        leaf = self.leaf(["a.test", "pubsub.a.test"])
        self.assertTrue(self.verifier.judge(leaf, [], "a.test", peerIsClient=True))
        self.assertTrue(self.verifier.judge(leaf, [], "pubsub.a.test", peerIsClient=True))
        self.assertFalse(self.verifier.judge(leaf, [], "b.test", peerIsClient=True))
        self.assertEqual(len(self.checks), 1)
        self.assertTrue(self.verifier.judge(leaf, [], "a.test", peerIsClient=False))
        self.assertEqual(len(self.checks), 2)

    def test_invalidLoggedOnce(self) -> None:
        """
        Why a certificate is not valid is logged once while its verdict is
        remembered, and again after the TTL, when it is checked again.
        """
        leaf = _load(selfSigned(self.dir, ["s.test"]))[0]
        with capturedLogs() as events:
            for _ in range(5):
                self.assertFalse(self.verifier.judge(leaf, [], "s.test", peerIsClient=False))
            self.clock.advance(61)
            self.assertFalse(self.verifier.judge(leaf, [], "s.test", peerIsClient=False))
        notValid = [e for e in events if "not valid" in e["log_format"]]
        self.assertEqual(len(notValid), 2)
        self.assertEqual(len(self.checks), 2)

    def test_validNoLongerThanTheLeaf(self) -> None:
        """
        A valid verdict ends when the leaf expires, even within the TTL.
        """
        leaf = self.leaf(["a.test"], notAfter=_now() + datetime.timedelta(seconds=30))
        self.assertTrue(self.verifier.judge(leaf, [], "a.test", peerIsClient=True))
        self.clock.advance(29)
        self.assertTrue(self.verifier.judge(leaf, [], "a.test", peerIsClient=True))
        self.assertEqual(len(self.checks), 1)
        self.clock.advance(2)
        self.assertFalse(self.verifier.judge(leaf, [], "a.test", peerIsClient=True))
        self.assertEqual(len(self.checks), 2)

    def test_bounded(self) -> None:
        """
        At most C{maxEntries} verdicts are kept; the oldest goes first.
        """
        leaves = [self.leaf([f"{i}.test"]) for i in range(4)]
        for i, leaf in enumerate(leaves):
            self.verifier.judge(leaf, [], f"{i}.test", peerIsClient=True)
        self.verifier.judge(leaves[3], [], "3.test", peerIsClient=True)
        self.assertEqual(len(self.checks), 4)
        self.verifier.judge(leaves[0], [], "0.test", peerIsClient=True)
        self.assertEqual(len(self.checks), 5)

    def test_notTLS(self) -> None:
        """
        A transport without TLS has no valid peer certificate.
        """
        self.assertFalse(self.verifier.validFor(StringTransport(), "a.test", peerIsClient=True))
