# -*- test-case-name: tests.test_feed -*-
"""
The node's change feed: every module that changes shared state (the link
table, consent checks, the pub-sub backend, later the graph store) emits a
typed L{xmppnetgraph.model.ChangeEvent} here, and every module that reacts
(the publisher, later the crawler and the web layer's server-sent events)
observes the event types it wants. One observer style for the whole node.

Observers run synchronously, in the order they were added, inside
L{ChangeFeed.emit}; one that raises is logged and the others still run, so
an observer can never break the module that emits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from xmppnetgraph.interfaces import IChangeFeed
from xmppnetgraph.model import ChangeEvent

_E = TypeVar("_E", bound=ChangeEvent)


@attrs.define(eq=False)
class _Observer:
    """
    One registration: the event type, the callable, and whether it is
    still registered (an observer removed during an emit is not called
    for the rest of it).
    """

    kind: type[ChangeEvent]
    # Any: each callback takes the subclass it registered for; emit checks it.
    callback: Callable[[Any], object]
    active: bool = True


@implementer(IChangeFeed)
class ChangeFeed:
    """
    Fan typed change events out to their observers.
    """

    _log = Logger()

    def __init__(self) -> None:
        self._observers: list[_Observer] = []

    def observe(self, kind: type[_E], observer: Callable[[_E], object]) -> Callable[[], None]:
        """
        Call C{observer(event)} for every later event that is an instance
        of C{kind} (L{ChangeEvent} for all of them).

        @return: a function that removes the observer again (calling it
            twice is harmless).
        """
        entry = _Observer(kind, observer)
        self._observers.append(entry)

        def remove() -> None:
            if entry.active:
                entry.active = False
                self._observers.remove(entry)

        return remove

    def emit(self, event: ChangeEvent) -> None:
        """
        Tell every observer of C{event}'s type. Never raises because of an
        observer.
        """
        for entry in list(self._observers):
            if not entry.active or not isinstance(event, entry.kind):
                continue
            try:
                entry.callback(event)
            except Exception:
                self._log.failure(
                    "change feed observer {observer!r} failed on {event!r}",
                    observer=entry.callback,
                    event=event,
                )
