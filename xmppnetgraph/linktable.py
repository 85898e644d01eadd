# -*- test-case-name: tests.test_linktable -*-
"""
The live link table: one L{Link} per authenticated s2s stream and remote
domain, and the observers that want to hear about them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Literal

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from xmppnetgraph.interfaces import ILinkObserver, ILinkTable

Direction = Literal["incoming", "outgoing"]
AuthMethod = Literal["sasl-external", "dialback"]

_ids = itertools.count(1)


@attrs.define(eq=False)
class Link:
    """
    One authenticated s2s stream between a local and a remote domain.

    @ivar domain: the remote domain.
    @ivar localDomain: our domain on this stream.
    @ivar direction: C{"incoming"} (the peer connected to us) or
        C{"outgoing"}.
    @ivar auth: how the peer was authenticated.
    @ivar tls: the TLS version (C{"TLSv1.3"}), or L{None} for plaintext.
    @ivar certValid: whether the peer's certificate is valid for C{domain}.
    @ivar since: when the stream was authenticated (seconds since the epoch).
    @ivar lastActivity: when a stanza last crossed it.
    """

    domain: str
    localDomain: str
    direction: Direction
    auth: AuthMethod
    tls: str | None
    certValid: bool
    since: float
    lastActivity: float
    stanzasIn: int = 0
    stanzasOut: int = 0
    id: int = attrs.field(factory=lambda: next(_ids))

    def touch(self, now: float, *, incoming: bool) -> None:
        """
        Count one stanza crossing the link at C{now}.
        """
        self.lastActivity = now
        if incoming:
            self.stanzasIn += 1
        else:
            self.stanzasOut += 1

    def asJSON(self) -> dict[str, object]:
        """
        @return: the link as the web API shows it.
        """
        return {
            "domain": self.domain,
            "local_domain": self.localDomain,
            "direction": self.direction,
            "auth": self.auth,
            "tls": self.tls,
            "cert_valid": self.certValid,
            "since": isoTime(self.since),
            "last_activity": isoTime(self.lastActivity),
            "stanzas_in": self.stanzasIn,
            "stanzas_out": self.stanzasOut,
        }


def isoTime(seconds: float) -> str:
    """
    @return: C{seconds} since the epoch as an RFC 3339 UTC timestamp.
    """
    moment = datetime.fromtimestamp(int(seconds), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@implementer(ILinkTable)
class LinkTable:
    """
    The live links of one node; observers hear of each change.
    """

    _log = Logger()

    def __init__(self) -> None:
        self._links: dict[int, Link] = {}
        self._observers: list[ILinkObserver] = []

    def links(self) -> Iterator[Link]:
        """
        @return: the live links, oldest first.
        """
        return iter(list(self._links.values()))

    def add(self, link: Link) -> None:
        """
        Record a newly authenticated link and tell the observers.
        """
        self._links[link.id] = link
        self._log.info(
            "s2s link up: {direction} {local} <-> {domain} ({auth}, {tls})",
            direction=link.direction,
            local=link.localDomain,
            domain=link.domain,
            auth=link.auth,
            tls=link.tls or "plaintext",
        )
        self._notify("linkUp", link)

    def remove(self, link: Link) -> None:
        """
        Forget a link whose stream ended and tell the observers.
        """
        if self._links.pop(link.id, None) is None:
            return
        self._log.info(
            "s2s link down: {direction} {local} <-> {domain}",
            direction=link.direction,
            local=link.localDomain,
            domain=link.domain,
        )
        self._notify("linkDown", link)

    def addObserver(self, observer: ILinkObserver) -> Callable[[], None]:
        """
        Tell C{observer} about every later change.

        @return: a function that removes the observer again.
        """
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def _notify(self, event: str, link: Link) -> None:
        for observer in list(self._observers):
            try:
                getattr(observer, event)(link)
            except Exception:
                self._log.failure("link observer {observer!r} failed", observer=observer)
