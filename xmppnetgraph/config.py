# -*- test-case-name: tests.test_tap -*-
"""
The node's configuration: one frozen value that L{xmppnetgraph.tap.Options}
(or an embedder) builds and L{xmppnetgraph.tap.buildService} consumes.
"""

from __future__ import annotations

from pathlib import Path

import attrs


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
