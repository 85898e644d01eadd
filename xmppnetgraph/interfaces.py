# -*- test-case-name: tests.test_linktable -*-
"""
The contracts between the node's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from zope.interface import Interface

if TYPE_CHECKING:
    from xmppnetgraph.linktable import Link


class ILinkObserver(Interface):
    """
    Something told about s2s links as they come and go.
    """

    def linkUp(link: Link) -> None:
        """
        A stream to or from C{link.domain} has been authenticated.
        """

    def linkDown(link: Link) -> None:
        """
        The stream behind C{link} has ended.
        """


class ILinkTable(Interface):
    """
    The live table of authenticated s2s links of one node.
    """

    def links() -> Iterable[Link]:
        """
        @return: the live links, oldest first.
        """

    def addObserver(observer: ILinkObserver) -> Callable[[], None]:
        """
        Tell C{observer} about every later change.

        @return: a function that removes the observer again.
        """
