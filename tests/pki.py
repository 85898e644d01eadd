# -*- test-case-name: tests.test_identity -*-
"""
A throw-away PKI for tests: a CA that issues XMPP server certificates, and
self-signed certificates made by L{xmppnetgraph.certs}.

Every file written here (keys included) has mode 0644 on purpose: the
Prosody interop peer runs as the C{prosody} user and must be able to read
the certificate and key we issue for it. These keys protect nothing.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from xmppnetgraph import certs

# World-readable on purpose, see the module docstring.
_MODE = 0o644


def _write(path: Path, data: bytes) -> None:
    """
    Write C{data} to C{path} with mode 0644 (world-readable, keys too).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, _MODE)


def _keyPEM(key: ec.EllipticCurvePrivateKey) -> bytes:
    """
    @return: C{key} as unencrypted PKCS#8 PEM.
    """
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _safeName(name: str) -> str:
    """
    @return: C{name} made safe for a file name.
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class TestCA:
    """
    A certificate authority for tests (EC P-256, valid from a day ago for 30
    days).

    @ivar directory: where the CA and the certificates it issues are written.
    @ivar caPath: the CA certificate (PEM), C{directory/ca.crt}.
    @ivar certificate: the CA certificate.
    @ivar chain: for an intermediate CA, its certificate and those of its
        issuers below the root; empty for a root.
    """

    def __init__(
        self,
        directory: Path,
        name: str = "xmppnetgraph test CA",
        *,
        issuer: TestCA | None = None,
    ) -> None:
        """
        @param directory: where to write C{ca.crt} and issued certificates.
        @param name: the CA's common name.
        @param issuer: make an intermediate CA signed by C{issuer} (default:
            a self-signed root).
        """
        self.directory = Path(directory)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        publicKey = self._key.public_key()
        signer = self if issuer is None else issuer
        builder = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(signer._name)
            .public_key(publicKey)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(
                x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0),
                True,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(publicKey), critical=False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer._key.public_key()),
                critical=False,
            )
        self.certificate = builder.sign(signer._key, hashes.SHA256())
        self.chain: tuple[x509.Certificate, ...] = (
            () if issuer is None else (self.certificate, *issuer.chain)
        )
        self.caPath = self.directory / "ca.crt"
        _write(self.caPath, self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        domains: Sequence[str],
        *,
        name: str | None = None,
        dnsIDs: bool = True,
        srvIDs: bool = True,
        xmppAddrs: bool = True,
        notAfter: datetime.datetime | None = None,
        extendedKeyUsage: Sequence[x509.ObjectIdentifier] = (
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
    ) -> tuple[Path, Path]:
        """
        Issue a server certificate (serverAuth and clientAuth EKU).

        @param domains: the domains; each gets the SANs the flags select.
        @param name: base name of the files (default: the first domain).
        @param dnsIDs: include DNS-IDs.
        @param srvIDs: include SRV-IDs C{_xmpp-server.<domain>}.
        @param xmppAddrs: include C{id-on-xmppAddr} names.
        @param notAfter: end of validity (default: in 30 days); the start is
            always a day ago, so a past C{notAfter} gives an expired
            certificate.
        @param extendedKeyUsage: the EKU purposes; empty for no EKU extension.
        @return: C{(certPath, keyPath)}, PEM, the key unencrypted. The
            certificate file holds the leaf followed by L{chain}.
        """
        base = _safeName(name if name is not None else domains[0])
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.certificateFor(
            domains,
            key.public_key(),
            dnsIDs=dnsIDs,
            srvIDs=srvIDs,
            xmppAddrs=xmppAddrs,
            notAfter=notAfter,
            extendedKeyUsage=extendedKeyUsage,
        )
        certPath = self.directory / f"{base}.crt"
        keyPath = self.directory / f"{base}.key"
        _write(
            certPath,
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *self.chain)),
        )
        _write(keyPath, _keyPEM(key))
        return certPath, keyPath

    def certificateFor(
        self,
        domains: Sequence[str],
        publicKey: ec.EllipticCurvePublicKey,
        *,
        dnsIDs: bool = True,
        srvIDs: bool = True,
        xmppAddrs: bool = True,
        notAfter: datetime.datetime | None = None,
        extendedKeyUsage: Sequence[x509.ObjectIdentifier] = (
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
    ) -> x509.Certificate:
        """
        Sign a server certificate for C{publicKey}, in memory (the
        parameters are those of L{issue}).

        @return: the certificate (without L{chain}).
        """
        now = datetime.datetime.now(datetime.UTC)
        if notAfter is None:
            notAfter = now + datetime.timedelta(days=30)
        notBefore = min(now - datetime.timedelta(days=1), notAfter)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, certs.aLabel(domains[0]))])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(publicKey)
            .serial_number(x509.random_serial_number())
            .not_valid_before(notBefore)
            .not_valid_after(notAfter)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        san = certs.subjectAltNames(domains, dnsIDs=dnsIDs, srvIDs=srvIDs, xmppAddrs=xmppAddrs)
        if extendedKeyUsage:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage(list(extendedKeyUsage)), critical=False
            )
        if len(san):
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self._key, hashes.SHA256())


def selfSigned(directory: Path, domains: Sequence[str], name: str = "self") -> tuple[Path, Path]:
    """
    Write a self-signed certificate for C{domains}, made by
    L{xmppnetgraph.certs.writeSelfSigned}.

    @param directory: where to write C{<name>.crt} and C{<name>.key}.
    @param domains: the domains.
    @param name: base name of the files.
    @return: C{(certPath, keyPath)}, both mode 0644.
    """
    directory = Path(directory)
    certPath = directory / f"{_safeName(name)}.crt"
    keyPath = directory / f"{_safeName(name)}.key"
    certs.writeSelfSigned(certPath, keyPath, domains, keyMode=_MODE)
    return certPath, keyPath
