# -*- test-case-name: tests.test_linktable -*-
"""
The live link table: one L{Link} per authenticated s2s stream and remote
domain. Each change is announced on the node's change feed. The stanzas
counted on links that ended are kept, so that the node's totals
(L{LinkTable.stanzaTotals}, for the metrics) only grow.
"""

from __future__ import annotations

from collections.abc import Iterator

from twisted.logger import Logger
from zope.interface import implementer

from xmppnetgraph.interfaces import IChangeFeed, ILinkTable
from xmppnetgraph.model import Direction, Link, LinkDown, LinkUp


@implementer(ILinkTable)
class LinkTable:
    """
    The live links of one node; L{LinkUp} and L{LinkDown} go to the feed.
    """

    _log = Logger()

    def __init__(self, feed: IChangeFeed) -> None:
        """
        @param feed: where changes are announced.
        """
        self._feed = feed
        self._links: dict[int, Link] = {}
        # Direction -> [stanzas in, stanzas out] of the links that ended.
        self._ended: dict[Direction, list[int]] = {"incoming": [0, 0], "outgoing": [0, 0]}

    def links(self) -> Iterator[Link]:
        """
        @return: the live links, oldest first.
        """
        return iter(list(self._links.values()))

    def stanzaTotals(self) -> dict[Direction, tuple[int, int]]:
        """
        @return: by the streams' direction, the stanzas received and sent
            on every link this table has held, live or ended.
        """
        totals = {direction: list(counts) for direction, counts in self._ended.items()}
        for link in self._links.values():
            total = totals[link.direction]
            total[0] += link.stanzasIn
            total[1] += link.stanzasOut
        return {direction: (total[0], total[1]) for direction, total in totals.items()}

    def add(self, link: Link) -> None:
        """
        Record a newly authenticated link and announce it.
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
        self._feed.emit(LinkUp(link))

    def remove(self, link: Link, *, logged: bool = True) -> None:
        """
        Forget a link whose stream ended and announce it; a link that is
        not in the table is ignored.

        @param logged: log the link going down (a node shutting down says
            once how many went instead).
        """
        if self._links.pop(link.id, None) is None:
            return
        ended = self._ended[link.direction]
        ended[0] += link.stanzasIn
        ended[1] += link.stanzasOut
        if logged:
            self._log.info(
                "s2s link down: {direction} {local} <-> {domain}",
                direction=link.direction,
                local=link.localDomain,
                domain=link.domain,
            )
        self._feed.emit(LinkDown(link))
