# -*- test-case-name: tests.test_timestamp -*-
"""
The one way this node writes a moment: RFC 3339 / XEP-0082 UTC, to the
second (C{2026-01-01T00:00:00Z}), as the web API and XEP-0203 delay stamps
show it.
"""

from __future__ import annotations

import time


def formatTimestamp(seconds: float) -> str:
    """
    @param seconds: seconds since the epoch; the fraction is dropped.
    @return: the moment as an RFC 3339 (XEP-0082) UTC timestamp.
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def formatOptionalTimestamp(seconds: float | None) -> str | None:
    """
    @return: C{seconds} as L{formatTimestamp} writes it, or L{None} for
        L{None} (a moment not known).
    """
    return None if seconds is None else formatTimestamp(seconds)
