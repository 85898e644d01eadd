# -*- test-case-name: tests.test_certs -*-
"""
TLS material for the s2s layer: our credentials, a self-signed fallback,
trust roots, and the pyOpenSSL options for both directions of a stream.

Both directions accept any peer certificate during the handshake; the chain
and the identity are checked afterwards (see L{xmppnetgraph.s2s.identity}),
so that a peer with a bad certificate can still use dialback (RFC 7590,
XEP-0344).
"""

from __future__ import annotations

import datetime
import os
import re
import ssl
import warnings
from collections.abc import Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto
from pyasn1.codec.der.encoder import encode as _derEncode
from pyasn1.type.char import IA5String, UTF8String
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import CertificateOptions, TLSVersion
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

# Raised here; defined with the other errors (and importable from here).
from xmppnetgraph.error import TLSConfigError as TLSConfigError
from xmppnetgraph.names import domainToASCII

_log = Logger()

ID_ON_XMPPADDR = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.5")
"""C{id-on-xmppAddr} (RFC 6120 section 13.7.1.4): a UTF8String JID."""

ID_ON_DNSSRV = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.7")
"""C{id-on-dnsSRV} (RFC 4985): an IA5String C{_service.name}."""

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
"""The private key types we accept for TLS."""

_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)

_MINIMUM_TLS = TLSVersion.TLSv1_2
_SELF_SIGNED_DAYS = 3650
_FALLBACK_CAFILE = "/etc/ssl/certs/ca-certificates.crt"


@attrs.frozen
class TLSCredentials:
    """
    What we present in a TLS handshake.

    @ivar key: our private key.
    @ivar certificate: our leaf certificate.
    @ivar chain: intermediate certificates sent after the leaf.
    """

    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


def aLabel(domain: str) -> str:
    """
    Convert a domain to its IDNA A-label form, lower case
    (L{domainToASCII}, without trailing dots).

    A leading C{*.} (a wildcard certificate name) is kept as it is.

    @param domain: a domain in U-label or A-label form.
    @return: the ASCII form of C{domain}.
    @raise ValueError: if C{domain} is empty or cannot be encoded.
    """
    prefix = ""
    if domain.startswith("*."):
        prefix, domain = "*.", domain[2:]
    return prefix + domainToASCII(domain.rstrip("."))


def xmppAddrName(jid: str) -> x509.OtherName:
    """
    @param jid: a JID (for a server: its domain).
    @return: an C{id-on-xmppAddr} subjectAltName for C{jid}.
    """
    return x509.OtherName(ID_ON_XMPPADDR, _derEncode(UTF8String(jid)))


def srvName(domain: str, service: str = "_xmpp-server") -> x509.OtherName:
    """
    @param domain: a domain; it is written as an A-label.
    @param service: the SRV service label.
    @return: an C{SRVName} subjectAltName, e.g. C{_xmpp-server.example.com}.
    """
    return x509.OtherName(ID_ON_DNSSRV, _derEncode(IA5String(f"{service}.{aLabel(domain)}")))


def subjectAltNames(
    domains: Sequence[str],
    *,
    dnsIDs: bool = True,
    srvIDs: bool = True,
    xmppAddrs: bool = True,
) -> x509.SubjectAlternativeName:
    """
    Build the subjectAltName extension of an XMPP server certificate.

    @param domains: the domains the certificate is for.
    @param dnsIDs: include a DNS-ID (A-label) for each domain.
    @param srvIDs: include an SRV-ID C{_xmpp-server.<domain>} for each domain.
    @param xmppAddrs: include an C{id-on-xmppAddr} for each domain.
    @return: the extension value.
    """
    names: list[x509.GeneralName] = []
    for domain in domains:
        if dnsIDs:
            names.append(x509.DNSName(aLabel(domain)))
        if srvIDs:
            names.append(srvName(domain))
        if xmppAddrs:
            names.append(xmppAddrName(domain))
    return x509.SubjectAlternativeName(names)


def _writeFile(path: Path, data: bytes, mode: int) -> None:
    """
    Write C{data} to C{path}, creating it with C{mode}.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def writeSelfSigned(
    certPath: Path,
    keyPath: Path,
    domains: Sequence[str],
    *,
    days: int = _SELF_SIGNED_DAYS,
    keyMode: int = 0o600,
) -> None:
    """
    Generate a self-signed XMPP server certificate and its key.

    The key is EC P-256. The certificate's CN is the first domain and it has a
    DNS-ID, an SRV-ID and an xmppAddr for every domain.

    @param certPath: where the PEM certificate is written.
    @param keyPath: where the unencrypted PEM key is written.
    @param domains: the domains, at least one.
    @param days: validity in days, starting one day in the past.
    @param keyMode: file mode of the key file.
    """
    if not domains:
        raise ValueError("a certificate needs at least one domain")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, aLabel(domains[0]))])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(subjectAltNames(domains), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    _writeFile(
        keyPath,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        keyMode,
    )
    _writeFile(certPath, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _covers(certPath: Path, keyPath: Path, domains: Sequence[str]) -> bool:
    """
    @return: whether the certificate at C{certPath} loads with C{keyPath}, is
        still valid and has a DNS-ID for every one of C{domains}.
    """
    try:
        creds = loadCredentials(certPath, keyPath)
    except TLSConfigError:
        return False
    cert = creds.certificate
    if cert.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    have = {n.lower() for n in san.value.get_values_for_type(x509.DNSName)}
    return all(aLabel(d) in have for d in domains)


def ensureSelfSigned(dataDir: Path, domains: Sequence[str]) -> tuple[Path, Path]:
    """
    Make sure C{dataDir/tls/selfsigned.crt} and C{.key} exist for C{domains}.

    Existing files are reused when they cover every domain; otherwise they are
    replaced. Peers that check certificates will not accept this one and fall
    back to dialback, which is logged as a warning.

    @param dataDir: the node's data directory.
    @param domains: the domains to cover, the first one being the CN.
    @return: C{(certPath, keyPath)}.
    """
    tlsDir = dataDir / "tls"
    certPath = tlsDir / "selfsigned.crt"
    keyPath = tlsDir / "selfsigned.key"
    if certPath.exists() or keyPath.exists():
        if _covers(certPath, keyPath, domains):
            _log.debug("Reusing self-signed certificate {path}", path=str(certPath))
        else:
            _log.info(
                "Self-signed certificate {path} does not cover {domains}; generating a new one",
                path=str(certPath),
                domains=", ".join(domains),
            )
            writeSelfSigned(certPath, keyPath, domains)
    else:
        writeSelfSigned(certPath, keyPath, domains)
    _log.warn(
        "Using the self-signed certificate {path} for {domains}: peers that "
        "check certificates will fall back to dialback",
        path=str(certPath),
        domains=", ".join(domains),
    )
    return certPath, keyPath


def _readFile(path: Path, what: str) -> bytes:
    """
    @return: the contents of C{path}.
    @raise TLSConfigError: if it cannot be read.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TLSConfigError(f"TLS {what} file {path} does not exist") from None
    except OSError as e:
        raise TLSConfigError(f"cannot read TLS {what} file {path}: {e.strerror or e}") from None


def loadCredentials(certPath: Path, keyPath: Path) -> TLSCredentials:
    """
    Load our certificate, its chain and the private key.

    @param certPath: PEM file with the leaf certificate first, optionally
        followed by intermediate certificates.
    @param keyPath: PEM file with the unencrypted private key (it may be the
        same file as C{certPath}).
    @return: the credentials.
    @raise TLSConfigError: if a file is missing or unreadable, holds no
        certificate or key, or the key does not belong to the certificate.
    """
    certData = _readFile(certPath, "certificate")
    keyData = _readFile(keyPath, "key")
    try:
        certs = x509.load_pem_x509_certificates(certData)
    except ValueError as e:
        raise TLSConfigError(f"no PEM certificate found in {certPath}: {e}") from None
    try:
        key = serialization.load_pem_private_key(keyData, password=None)
    except (ValueError, TypeError) as e:
        raise TLSConfigError(
            f"cannot load the private key in {keyPath} (PEM, unencrypted expected): {e}"
        ) from None
    if not isinstance(key, _KEY_TYPES):
        raise TLSConfigError(f"unsupported private key type in {keyPath}")
    leaf = certs[0]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, pub) != leaf.public_key().public_bytes(der, pub):
        raise TLSConfigError(
            f"the private key in {keyPath} does not match the certificate in {certPath}"
        )
    return TLSCredentials(key=key, certificate=leaf, chain=tuple(certs[1:]))


_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


def _loadPEMCertificates(path: Path) -> list[x509.Certificate]:
    """
    @return: the certificates in the PEM file C{path} that parse, or C{[]} if
        it cannot be read. One malformed certificate (system stores have some)
        does not spoil the others.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        _log.debug("Cannot read {path}: {error}", path=str(path), error=str(e))
        return []
    result = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for block in _PEM_CERTIFICATE.findall(data):
            try:
                result.append(x509.load_pem_x509_certificate(block))
            except ValueError as e:
                _log.debug(
                    "Skipping a malformed certificate in {path}: {error}",
                    path=str(path),
                    error=str(e),
                )
    return result


def loadTrustRoots(caFile: Path | None) -> tuple[x509.Certificate, ...]:
    """
    Load the certificates that anchor peer chain validation.

    @param caFile: a PEM file of CA certificates, or L{None} for the system
        trust store.
    @return: the root certificates; empty (with a warning logged) if none
        could be loaded.
    """
    roots: list[x509.Certificate] = []
    if caFile is not None:
        roots = _loadPEMCertificates(caFile)
        source = str(caFile)
    else:
        paths = ssl.get_default_verify_paths()
        source = "the system trust store"
        candidates = [p for p in (paths.cafile, _FALLBACK_CAFILE) if p]
        for candidate in candidates:
            roots = _loadPEMCertificates(Path(candidate))
            if roots:
                source = candidate
                break
        if not roots and paths.capath and os.path.isdir(paths.capath):
            for entry in sorted(Path(paths.capath).iterdir()):
                if entry.is_file():
                    roots.extend(_loadPEMCertificates(entry))
            source = paths.capath
        roots = list({c.fingerprint(hashes.SHA256()): c for c in roots}.values())
    if not roots:
        _log.warn(
            "No trust roots loaded from {source}: no peer certificate will "
            "validate, peers must use dialback",
            source=source,
        )
    else:
        _log.debug("Loaded {n} trust roots from {source}", n=len(roots), source=source)
    return tuple(roots)


def _acceptAnyCertificate(
    connection: SSL.Connection,
    certificate: crypto.X509,
    errno: int,
    depth: int,
    ok: int,
) -> bool:
    """
    OpenSSL verify callback that accepts every certificate; the chain is
    checked after the handshake.
    """
    return True


def _selectALPN(
    connection: SSL.Connection, offered: list[bytes]
) -> bytes | SSL._NoOverlappingProtocols:
    """
    Choose C{xmpp-server} (XEP-0368) when the client offers it; otherwise
    go on without ALPN.

    @return: the protocol, or C{SSL.NO_OVERLAPPING_PROTOCOLS} (whose type
        pyOpenSSL names only privately; it is used in this annotation only).
    """
    if b"xmpp-server" in offered:
        return b"xmpp-server"
    return SSL.NO_OVERLAPPING_PROTOCOLS


class _AnyPeerCertificateOptions(CertificateOptions):
    """
    L{CertificateOptions} that ask the peer for a certificate but accept any,
    or none.
    """

    _verifyInstalled = False

    def getContext(self) -> SSL.Context:
        """
        @return: the cached context, set to request and accept any peer
            certificate.
        """
        ctx = super().getContext()
        if not self._verifyInstalled:
            ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE, _acceptAnyCertificate)
            # With VERIFY_PEER, OpenSSL aborts a handshake that offers a
            # session to resume ("internal error" alert; Prosody does offer
            # one) unless a session id context is set.
            ctx.set_session_id(b"xmppnetgraph-s2s")
            # Twisted's own ALPN callback answers a client that offers ALPN
            # without overlap with b"", which OpenSSL turns into an
            # "internal error" alert; Prosody offers "xmpp-server".
            ctx.set_alpn_select_callback(_selectALPN)
            self._verifyInstalled = True
        return ctx


def _options(creds: TLSCredentials) -> _AnyPeerCertificateOptions:
    """
    @return: options that present C{creds} and accept any peer certificate.
    """
    # pyOpenSSL deprecates its own PKey/X509 in Context.use_*; Twisted only
    # passes these through, so hand it the cryptography objects. Twisted's
    # annotations still name PKey and X509 only, hence the three ignores.
    return _AnyPeerCertificateOptions(
        privateKey=creds.key,  # type: ignore[arg-type]
        certificate=creds.certificate,  # type: ignore[arg-type]
        extraCertChain=list(creds.chain),  # type: ignore[arg-type]
        raiseMinimumTo=_MINIMUM_TLS,
    )


def serverTLSOptions(creds: TLSCredentials) -> CertificateOptions:
    """
    TLS options for the receiving side of an s2s stream, for
    C{transport.startTLS}.

    They present C{creds}, require TLS 1.2 or later, and request a client
    certificate without requiring it or checking it during the handshake.

    @param creds: our credentials.
    @return: the options.
    """
    return _options(creds)


@implementer(IOpenSSLClientConnectionCreator)
class _AnyServerCertificateCreator:
    """
    Client connection creator that sends SNI and accepts any server
    certificate.
    """

    def __init__(self, options: _AnyPeerCertificateOptions, serverName: str) -> None:
        """
        @param options: options holding our credentials.
        @param serverName: the domain to send as SNI.
        """
        self._options = options
        self.serverName = serverName
        self._serverNameBytes = aLabel(serverName).encode("ascii")

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """
        @param tlsProtocol: the TLS protocol initiating the connection.
        @return: a client connection with SNI set.
        """
        connection = SSL.Connection(self._options.getContext(), None)
        connection.set_tlsext_host_name(self._serverNameBytes)
        return connection


class ClientTLSOptions:
    """
    TLS options for the initiating side of s2s streams: one OpenSSL context
    for every outgoing connection (building one, with our key and
    certificate loaded, costs about a millisecond and tens of KiB).

    Connections send SNI, present our credentials (for SASL EXTERNAL),
    require TLS 1.2 or later, and accept any server certificate during the
    handshake.
    """

    def __init__(self, creds: TLSCredentials) -> None:
        """
        @param creds: our credentials.
        """
        self._options = _options(creds)

    def creatorFor(self, serverName: str) -> IOpenSSLClientConnectionCreator:
        """
        @param serverName: the peer domain, sent as SNI.
        @return: a connection creator for C{transport.startTLS} or
            L{wrapClientTLS<twisted.internet.endpoints.wrapClientTLS>}.
        """
        return _AnyServerCertificateCreator(self._options, serverName)


def clientTLSOptions(creds: TLSCredentials) -> ClientTLSOptions:
    """
    TLS options for the initiating side of s2s streams (see
    L{ClientTLSOptions}); make them once and use them for every connection.

    @param creds: our credentials.
    @return: the options.
    """
    return ClientTLSOptions(creds)


def tlsVersion(transport: object) -> str | None:
    """
    @param transport: a Twisted transport.
    @return: the negotiated protocol, e.g. C{"TLSv1.3"}, or L{None} if the
        transport is not (yet) TLS.
    """
    getHandle = getattr(transport, "getHandle", None)
    if getHandle is None:
        return None
    try:
        handle = getHandle()
    except Exception:
        return None
    getVersion = getattr(handle, "get_protocol_version_name", None)
    if getVersion is None:
        return None
    version = getVersion()
    if not version or version == "Unknown":
        return None
    return str(version)
