# -*- test-case-name: tests.test_tap -*-
"""
The node's configuration: one frozen value that L{xmppnetgraph.tap.Options}
(or an embedder) builds and L{xmppnetgraph.tap.buildService} consumes.
"""

from __future__ import annotations

import ipaddress
from encodings import idna as _idnaCodec
from pathlib import Path

import attrs
from twisted.words.protocols.jabber.jid import InvalidFormat, prep

DEFAULT_S2S_PORT = 5269


@attrs.frozen
class Route:
    """
    A static s2s route that overrides DNS.

    @ivar pattern: a domain, or C{*.suffix} for every subdomain of C{suffix}.
    @ivar host: host name or address to connect to.
    @ivar port: TCP port to connect to.
    """

    pattern: str
    host: str
    port: int

    def matches(self, domain: str) -> bool:
        """
        @return: whether this route applies to C{domain}.
        """
        if self.pattern.startswith("*."):
            return domain.endswith(self.pattern[1:])
        return domain == self.pattern


@attrs.frozen
class Config:
    """
    Everything C{twistd xmppnetgraph} can be told.

    Durations are seconds; sizes are bytes.
    """

    domain: str
    dataDir: Path
    s2s: str = "tcp:5269"
    s2sDirectTLS: str | None = None
    web: str = "tcp:8080:interface=127.0.0.1"
    database: str | None = None
    tlsCert: Path | None = None
    tlsKey: Path | None = None
    caFile: Path | None = None
    pubsubHost: str = ""
    routes: tuple[Route, ...] = ()
    seeds: tuple[str, ...] = ()
    crawl: bool = True
    enableWeb: bool = True
    publish: bool = True
    requireValidCerts: bool = False
    requireTLS: bool = True
    optIn: bool = True
    dialbackSecret: str | None = None
    maxStanzaSize: int = 256 * 1024
    maxDepth: int = 64
    connectTimeout: float = 30.0
    handshakeTimeout: float = 30.0
    idleTimeout: float = 600.0
    keepaliveInterval: float = 60.0
    iqTimeout: float = 30.0
    queueLimit: int = 1000
    logTraffic: bool = False
    contacts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    pubsubAdmins: tuple[str, ...] = ()
    consentAllowlist: Path | None = None
    consentTTL: float = 3600.0
    publishDelay: float = 2.0
    publishRefresh: float = 300.0
    maxSubscriptionsPerDomain: int = 10

    @property
    def localDomains(self) -> tuple[str, ...]:
        """
        The domains this node serves: its own and its pubsub host.
        """
        return (self.domain, self.effectivePubsubHost)

    @property
    def effectivePubsubHost(self) -> str:
        """
        The pubsub host, defaulting to C{pubsub.<domain>}.
        """
        return self.pubsubHost or "pubsub." + self.domain

    def routeFor(self, domain: str) -> Route | None:
        """
        @return: the first static route matching C{domain}, exact names first.
        """
        for route in self.routes:
            if route.pattern == domain:
                return route
        for route in self.routes:
            if route.matches(domain):
                return route
        return None


def normalizeDomain(text: str) -> str:
    """
    Check that C{text} is a bare DNS domain name (no C{@}, no C{/}, not an
    IP address) and return its canonical form (nameprep: case-folded,
    Unicode labels kept as Unicode).

    @param text: a domain as a user wrote it.
    @return: the nameprep'd domain.
    @raise ValueError: if C{text} is not a usable domain name; the message
        says why.
    """
    if not text:
        raise ValueError("empty domain")
    if "@" in text or "/" in text:
        raise ValueError(f"{text!r} is not a bare domain (no '@' or '/' allowed)")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        raise ValueError(f"{text!r} is an IP address, not a domain name")
    if any(not label for label in _idnaCodec.dots.split(text)):
        raise ValueError(f"{text!r} has an empty label")
    try:
        _, host, _ = prep(None, text, None)
        asciiHost = host.encode("idna")
    except (InvalidFormat, UnicodeError) as e:
        raise ValueError(f"{text!r} is not a valid domain name: {e}") from None
    if len(asciiHost) > 253:
        raise ValueError(f"{text!r} is longer than 253 characters")
    return host


def _normalizeHost(text: str) -> str:
    """
    @return: C{text} as an IP address (compressed form) or a normalised
        domain name.
    @raise ValueError: if it is neither.
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return normalizeDomain(text)


def parseRoute(text: str) -> Route:
    """
    Parse a static route C{DOMAIN=HOST[:PORT]}.

    C{DOMAIN} is a domain or C{*.suffix}; C{HOST} is a domain name, an IPv4
    address or an IPv6 address in brackets (C{[::1]:5269}); C{PORT}
    defaults to 5269.

    @param text: the route as written on the command line or in a file.
    @return: the parsed route, with normalised names.
    @raise ValueError: if C{text} is malformed; the message says why.
    """
    pattern, sep, target = text.partition("=")
    pattern, target = pattern.strip(), target.strip()
    if not sep or not pattern or not target:
        raise ValueError(f"{text!r} is not of the form DOMAIN=HOST:PORT")
    if pattern.startswith("*."):
        pattern = "*." + normalizeDomain(pattern[2:])
    else:
        pattern = normalizeDomain(pattern)

    if target.startswith("["):
        close = target.find("]")
        if close == -1:
            raise ValueError(f"{target!r}: missing ']' after the IPv6 address")
        hostText, rest = target[1:close], target[close + 1 :]
        try:
            host = str(ipaddress.IPv6Address(hostText))
        except ValueError:
            raise ValueError(f"{hostText!r} is not an IPv6 address") from None
        if rest and not rest.startswith(":"):
            raise ValueError(f"{target!r}: expected ':PORT' after ']'")
        portText = rest[1:] if rest else None
    else:
        if target.count(":") > 1:
            raise ValueError(f"{target!r}: write an IPv6 address in brackets, as in [::1]:5269")
        hostText, colon, rest = target.partition(":")
        host = _normalizeHost(hostText)
        portText = rest if colon else None

    if portText is None:
        port = DEFAULT_S2S_PORT
    elif portText.isascii() and portText.isdigit() and 0 < int(portText) < 65536:
        port = int(portText)
    else:
        raise ValueError(f"{portText!r} is not a port number (1-65535)")
    return Route(pattern=pattern, host=host, port=port)
