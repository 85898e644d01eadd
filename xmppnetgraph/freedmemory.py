# -*- test-case-name: tests.test_freedmemory -*-
"""
Give the memory of closed streams back to the system.

glibc's allocator keeps what a process frees for its later allocations:
after a burst of streams has closed (a storm of new peers, the crawler's
streams timing out), a node's resident size stays at its peak although it
uses far less (bench/s2s_storm.py: 1,000 closed streams, 46 MB of 77 MB
returned only by C{malloc_trim}). L{FreedMemoryReleaser} asks glibc to
return its free pages a few seconds after the last link of a burst went
down (at most every five minutes); with another C library it does nothing.

Process-wide, like the collector settings: C{twistd xmppnetgraph}
installs it, and an embedding program decides for its own process.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from xmppnetgraph.interfaces import IChangeFeed
from xmppnetgraph.model import LinkDown

#: Seconds without a link going down before free memory is returned.
QUIET = 5.0

#: Seconds at least between two returns: C{malloc_trim} walks the whole
#: heap in the reactor thread, and links of a busy node go down all day.
INTERVAL = 300.0


def mallocTrim() -> Callable[[int], int] | None:
    """
    @return: glibc's C{malloc_trim}, or L{None} if the C library has none.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class FreedMemoryReleaser(Service):
    """
    Return free memory to the system once links stop going down.
    """

    _log = Logger()

    def __init__(
        self,
        feed: IChangeFeed,
        clock: IReactorTime,
        trim: Callable[[int], int] | None,
        quiet: float = QUIET,
        interval: float = INTERVAL,
    ) -> None:
        """
        @param feed: where links going down are announced.
        @param clock: for the quiet period.
        @param trim: L{mallocTrim}'s answer; L{None} makes this a no-op.
        @param quiet: seconds without a link going down before trimming.
        @param interval: seconds at least between two trims.
        """
        self._feed = feed
        self._clock = clock
        self._trim = trim
        self._quiet = quiet
        self._interval = interval
        self._last: float | None = None
        self._call: IDelayedCall | None = None
        self._stopObserving: Callable[[], None] | None = None

    def startService(self) -> None:
        """
        Watch links going down (if there is anything to call).
        """
        super().startService()
        if self._trim is not None:
            self._stopObserving = self._feed.observe(LinkDown, self._linkDown)

    def stopService(self) -> None:
        """
        Stop watching; forget a pending release.
        """
        super().stopService()
        if self._stopObserving is not None:
            self._stopObserving()
            self._stopObserving = None
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _linkDown(self, event: LinkDown) -> None:
        """
        A link went down: release L{QUIET} seconds after the last one, but
        not sooner than L{INTERVAL} seconds after the last release.
        """
        delay = self._quiet
        if self._last is not None:
            delay = max(delay, self._last + self._interval - self._clock.seconds())
        if self._call is not None and self._call.active():
            self._call.reset(delay)
        else:
            self._call = self._clock.callLater(delay, self._release)

    def _release(self) -> None:
        """
        Ask the C library to return its free pages.
        """
        self._call = None
        self._last = self._clock.seconds()
        assert self._trim is not None
        self._trim(0)
