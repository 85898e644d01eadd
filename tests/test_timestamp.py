# -*- test-case-name: tests.test_timestamp -*-
"""
Tests for L{xmppnetgraph.timestamp}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.timestamp import formatOptionalTimestamp, formatTimestamp


class FormatTimestampTests(SynchronousTestCase):
    """
    L{formatTimestamp} writes RFC 3339 UTC to the second.
    """

    def test_epoch(self) -> None:
        """
        Zero is the epoch.
        """
        self.assertEqual(formatTimestamp(0), "1970-01-01T00:00:00Z")

    def test_fractionDropped(self) -> None:
        """
        The fraction of a second is dropped, not rounded.
        """
        self.assertEqual(formatTimestamp(1767225599.999), "2025-12-31T23:59:59Z")

    def test_leapDay(self) -> None:
        """
        A leap day is written as such, in UTC whatever the local zone.
        """
        self.assertEqual(formatTimestamp(1709208000), "2024-02-29T12:00:00Z")


class FormatOptionalTimestampTests(SynchronousTestCase):
    """
    L{formatOptionalTimestamp} writes a moment as L{formatTimestamp} does,
    and keeps an unknown one unknown.
    """

    def test_values(self) -> None:
        self.assertEqual(formatOptionalTimestamp(0.9), "1970-01-01T00:00:00Z")
        self.assertIsNone(formatOptionalTimestamp(None))
