# -*- test-case-name: tests.test_identity -*-
"""
Checks of a peer server's certificate after the TLS handshake: the chain
(against our trust roots) and the identity (RFC 6120 section 13.7.2,
RFC 7590, XEP-0178).

Nothing here raises for a bad certificate; the answer is L{False} and the
reason is logged, so that the caller can fall back to dialback.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from OpenSSL import SSL
from pyasn1.codec.der.decoder import decode as _derDecode
from pyasn1.error import PyAsn1Error
from pyasn1.type.char import UTF8String
from service_identity import CertificateError
from service_identity import VerificationError as IdentityVerificationError
from service_identity.cryptography import extract_patterns
from service_identity.hazmat import DNS_ID, SRV_ID, verify_service_identity
from twisted.internet.interfaces import IReactorTime, ISSLTransport, ISystemHandle
from twisted.logger import Logger

from xmppnetgraph.certs import ID_ON_XMPPADDR, aLabel

_log = Logger()

_SERVICE = "_xmpp-server"


def xmppAddrs(cert: x509.Certificate) -> list[str]:
    """
    @param cert: a certificate.
    @return: the C{id-on-xmppAddr} subjectAltNames of C{cert}, decoded; values
        that are not a DER UTF8String are skipped.
    """
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    assert isinstance(san, x509.SubjectAlternativeName)
    result = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id != ID_ON_XMPPADDR:
            continue
        try:
            value, rest = _derDecode(other.value, asn1Spec=UTF8String())
        except PyAsn1Error:
            _log.debug("Skipping a malformed xmppAddr in {subject}", subject=cert.subject)
            continue
        if not rest:
            result.append(str(value))
    return result


def certificateMatchesDomain(cert: x509.Certificate, domain: str) -> bool:
    """
    Whether C{cert} identifies the XMPP server C{domain}.

    Any one of these reference identities is enough: a DNS-ID (wildcards as
    service_identity allows them), the SRV-ID C{_xmpp-server.<domain>}, or an
    C{id-on-xmppAddr} equal to the domain. Domains are compared as IDNA
    A-labels, ignoring case.

    @param cert: the peer's leaf certificate.
    @param domain: the peer's domain, as U-labels or A-labels.
    @return: whether it matches.
    """
    try:
        wanted = aLabel(domain)
    except ValueError:
        return False
    if not wanted or wanted.startswith("*."):
        return False
    try:
        patterns = extract_patterns(cert)
    except CertificateError as e:
        _log.info("Unusable subjectAltName: {error}", error=str(e))
        patterns = []
    # Each reference identity on its own: as optional ids, a non-matching
    # pattern of the same type would fail the whole check.
    for makeID, value in ((DNS_ID, wanted), (SRV_ID, f"{_SERVICE}.{wanted}")):
        try:
            verify_service_identity(patterns, [makeID(value)], [])
        except (IdentityVerificationError, CertificateError, ValueError):
            continue
        return True
    for addr in xmppAddrs(cert):
        if "@" in addr or "/" in addr:
            continue
        try:
            if aLabel(addr) == wanted:
                return True
        except ValueError:
            continue
    return False


_EKUValidator = Callable[[Policy, x509.Certificate, "x509.ExtendedKeyUsage | None"], None]


def _ekuValidator(allowed: frozenset[x509.ObjectIdentifier]) -> _EKUValidator:
    """
    @return: an extension validator that accepts a missing EKU, or one that
        lists any of C{allowed} (or anyExtendedKeyUsage).
    """
    accepted = allowed | {ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}

    def validate(
        policy: Policy,
        cert: x509.Certificate,
        eku: x509.ExtendedKeyUsage | None,
    ) -> None:
        if eku is not None and not accepted.intersection(eku):
            raise ValueError(
                "extended key usage allows none of "
                + ", ".join(sorted(o.dotted_string for o in allowed))
            )

    return validate


_SERVER_EKU = frozenset({ExtendedKeyUsageOID.SERVER_AUTH})
_CLIENT_EKU = frozenset({ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH})


# The verification store of the last trust roots seen (they are one list
# for the node's lifetime): building it takes about half of a verification.
_lastStore: tuple[Sequence[x509.Certificate], Store] | None = None


def _storeOf(roots: Sequence[x509.Certificate]) -> Store:
    """
    @return: a verification store of C{roots}, built once per roots object.
    """
    global _lastStore
    if _lastStore is None or _lastStore[0] is not roots:
        _lastStore = (roots, Store(list(roots)))
    return _lastStore[1]


def verifyChain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    peerIsClient: bool,
    now: datetime.datetime | None = None,
) -> bool:
    """
    Validate the chain from C{leaf} to one of C{roots} (Web PKI rules, no
    name check: see L{certificateMatchesDomain}).

    The leaf's extended key usage, if present, must allow serverAuth for a
    peer we connected to, and serverAuth or clientAuth for a peer that
    connected to us: public CAs are dropping clientAuth from server
    certificates.

    @param leaf: the peer's certificate.
    @param intermediates: the other certificates the peer sent.
    @param roots: trust anchors.
    @param peerIsClient: whether the peer initiated the connection.
    @param now: validation time (default: now).
    @return: whether the chain is valid.
    """
    if not roots:
        _log.info("No trust roots: certificate of {subject} not trusted", subject=leaf.subject)
        return False
    eePolicy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage,
        Criticality.AGNOSTIC,
        _ekuValidator(_CLIENT_EKU if peerIsClient else _SERVER_EKU),
    )
    try:
        builder = PolicyBuilder().store(_storeOf(roots))
        if now is not None:
            builder = builder.time(now)
        verifier = builder.extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=eePolicy
        ).build_client_verifier()
        verifier.verify(leaf, list(intermediates))
    except (VerificationError, ValueError) as e:
        _log.info(
            "Certificate of {subject} not valid: {reason}",
            subject=leaf.subject.rfc4514_string(),
            reason=str(e),
        )
        return False
    return True


def _peerCertificates(
    transport: object,
) -> tuple[x509.Certificate, list[x509.Certificate]] | None:
    """
    @return: the peer's leaf and the other certificates it sent, or L{None}
        if the transport is not TLS or the peer sent no certificate.
    """
    if not (ISSLTransport.providedBy(transport) and ISystemHandle.providedBy(transport)):
        return None
    connection = transport.getHandle()
    if not isinstance(connection, SSL.Connection):
        return None
    leaf = connection.get_peer_certificate(as_cryptography=True)
    if not isinstance(leaf, x509.Certificate):
        return None
    chain = connection.get_peer_cert_chain(as_cryptography=True) or []
    # On the server side OpenSSL's chain leaves out the leaf; on the client
    # side it starts with it.
    return leaf, [c for c in chain if isinstance(c, x509.Certificate) and c != leaf]


def _chainValid(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    peerIsClient: bool,
    now: datetime.datetime | None = None,
) -> bool:
    """
    L{verifyChain}, with an unexpected error logged as a verdict of
    L{False}.
    """
    try:
        return verifyChain(leaf, intermediates, roots, peerIsClient=peerIsClient, now=now)
    except Exception:
        _log.failure("Cannot check the certificate chain of {subject}", subject=leaf.subject)
        return False


def _identifies(leaf: x509.Certificate, domain: str) -> bool:
    """
    L{certificateMatchesDomain}, with a mismatch (or an unexpected error)
    logged.
    """
    try:
        if certificateMatchesDomain(leaf, domain):
            return True
        _log.info(
            "Certificate of {subject} does not identify {domain}",
            subject=leaf.subject.rfc4514_string(),
            domain=domain,
        )
    except Exception:
        _log.failure("Cannot check the certificate for {domain}", domain=domain)
    return False


def _certificatesOf(
    transport: object, domain: str
) -> tuple[x509.Certificate, list[x509.Certificate]] | None:
    """
    @return: the peer's certificates (see L{_peerCertificates}), or L{None}
        when there are none or they cannot be read (logged).
    """
    try:
        certs = _peerCertificates(transport)
    except Exception:
        _log.failure("Cannot read the peer certificate")
        return None
    if certs is None:
        _log.debug("No peer certificate for {domain}", domain=domain)
    return certs


def peerCertificateValidFor(
    transport: object,
    domain: str,
    roots: Sequence[x509.Certificate],
    *,
    peerIsClient: bool,
) -> bool:
    """
    Whether the peer of a TLS transport presented a certificate that chains
    to C{roots} and identifies C{domain}.

    @param transport: the stream's transport, after the TLS handshake.
    @param domain: the domain the peer claims.
    @param roots: trust anchors.
    @param peerIsClient: whether the peer initiated the connection.
    @return: the answer; L{False} when there is no TLS or no peer
        certificate.
    """
    certs = _certificatesOf(transport, domain)
    if certs is None:
        return False
    leaf, intermediates = certs
    return _chainValid(leaf, intermediates, roots, peerIsClient=peerIsClient) and _identifies(
        leaf, domain
    )


class PeerVerifier:
    """
    L{peerCertificateValidFor} against one set of trust roots, with the
    verdict on each chain remembered for a while.

    A server presents the same certificate on every stream it opens or
    accepts, for each of its domains, and a crawl meets each server on
    several streams; checking a chain costs about half a millisecond, and
    logging why it failed more. A chain's verdict is kept for C{ttl}
    seconds (a positive one no longer than the leaf is valid), at most
    C{maxEntries} of them (the oldest go first), so that the reason a
    certificate is not valid is logged once per C{ttl}, not once per
    stream. Whether a valid chain's leaf identifies the domain is checked
    each time.
    """

    def __init__(
        self,
        roots: Sequence[x509.Certificate],
        clock: IReactorTime,
        *,
        ttl: float = 600.0,
        maxEntries: int = 10_000,
    ) -> None:
        """
        @param roots: the trust anchors.
        @param clock: the time source: certificates are valid at its time,
            and verdicts expire by it.
        @param ttl: seconds a verdict is kept.
        @param maxEntries: most verdicts kept.
        """
        self.roots = roots
        self._clock = clock
        self._ttl = ttl
        self._maxEntries = maxEntries
        # (leaf, intermediates, peerIsClient) -> (verdict, expires), oldest
        # first.
        self._verdicts: dict[
            tuple[x509.Certificate, tuple[x509.Certificate, ...], bool], tuple[bool, float]
        ] = {}

    def validFor(self, transport: object, domain: str, *, peerIsClient: bool) -> bool:
        """
        See L{peerCertificateValidFor}.
        """
        certs = _certificatesOf(transport, domain)
        if certs is None:
            return False
        leaf, intermediates = certs
        return self.judge(leaf, intermediates, domain, peerIsClient=peerIsClient)

    def judge(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        domain: str,
        *,
        peerIsClient: bool,
    ) -> bool:
        """
        @return: whether C{leaf} (with C{intermediates}) chains to our roots
            (the verdict remembered, or a new one) and identifies C{domain}.
        """
        return self._chainValid(leaf, intermediates, peerIsClient) and _identifies(leaf, domain)

    def _chainValid(
        self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], peerIsClient: bool
    ) -> bool:
        key = (leaf, tuple(intermediates), peerIsClient)
        now = self._clock.seconds()
        known = self._verdicts.get(key)
        if known is not None and now < known[1]:
            return known[0]
        valid = _chainValid(
            leaf,
            intermediates,
            self.roots,
            peerIsClient=peerIsClient,
            now=datetime.datetime.fromtimestamp(now, datetime.UTC),
        )
        expires = now + self._ttl
        if valid:
            expires = min(expires, leaf.not_valid_after_utc.timestamp())
        self._verdicts.pop(key, None)
        while len(self._verdicts) >= self._maxEntries:
            del self._verdicts[next(iter(self._verdicts))]
        self._verdicts[key] = (valid, expires)
        return valid
