# -*- test-case-name: tests.test_http_api -*-
"""
Query parameters of the web API: each read once here, validated, and
turned into a L{BadParameter} (a JSON 400) that says which and why.
"""

from __future__ import annotations

import re
from calendar import timegm
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs

from twisted.web.server import Request

from xmppnetgraph.error import BadParameter
from xmppnetgraph.names import normalizeDomain

Args = Mapping[bytes, Sequence[bytes]]

_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# RFC 3339 section 5.6 date-time (a space for the T too, as section 5.6's
# note allows).
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"([Zz]|[+-]\d{2}:\d{2})"
)


def query(request: Request) -> Args:
    """
    @return: the query parameters of C{request}, with those given without
        a value (C{?skipAnon}) as empty values, which C{request.args}
        drops.
    """
    return parseForm((request.uri or b"").partition(b"?")[2])


def parseForm(raw: bytes) -> Args:
    """
    @param raw: a query string, or an C{application/x-www-form-urlencoded}
        body.
    @return: its parameters, each value as the bytes sent; those given
        without a value as empty values.
    """
    # Latin-1 maps every byte to one character and back, so the values come
    # out as the very bytes the client sent or percent-encoded (L{text}
    # decodes them as UTF-8). parse_qs on bytes decodes and re-encodes them
    # as ASCII, and raised on every other byte (a 500 for ?focus=b%C3%BCcher.de).
    parsed = parse_qs(raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return {
        name.encode("latin-1"): [value.encode("latin-1") for value in values]
        for name, values in parsed.items()
    }


def text(args: Args, name: str) -> str | None:
    """
    @return: the one value of parameter C{name}, or L{None} if absent.
    @raise BadParameter: if it is given more than once or is not UTF-8.
    """
    values = args.get(name.encode())
    if not values:
        return None
    if len(values) > 1:
        raise BadParameter(f"{name}: give it once, not {len(values)} times")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise BadParameter(f"{name}: not UTF-8") from None


def flag(args: Args, name: str, default: bool = False) -> bool:
    """
    A boolean parameter: present without a value (C{?skipAnon}) or with
    C{1/true/yes/on} is true, C{0/false/no/off} is false.

    @return: its value, or C{default} if absent.
    @raise BadParameter: for another value.
    """
    value = text(args, name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadParameter(f"{name}: expected 0 or 1 (or true/false), got {value!r}")


def parseTimestamp(value: str) -> float:
    """
    @param value: an RFC 3339 date-time (C{2026-01-01T00:00:00Z},
        C{2026-01-01T01:00:00.5+01:00}).
    @return: seconds since the epoch.
    @raise ValueError: if it is not one.
    """
    found = _DATE_TIME.fullmatch(value.strip())
    if found is None:
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    year, month, day, hour, minute, second = (int(found.group(n)) for n in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    seconds = float(timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0)))
    if found.group(7):
        seconds += float(found.group(7))
    zone = found.group(8)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


def timestamp(args: Args, name: str) -> float | None:
    """
    @return: parameter C{name} as an RFC 3339 time, or L{None} if absent.
    @raise BadParameter: if it is not one.
    """
    value = text(args, name)
    if value is None:
        return None
    try:
        return parseTimestamp(value)
    except ValueError as e:
        raise BadParameter(f"{name}: {e}") from None


def domain(value: str, name: str = "domain") -> str:
    """
    @return: C{value} as a normalised domain.
    @raise BadParameter: if it is no valid domain name.
    """
    try:
        return normalizeDomain(value)
    except ValueError as e:
        raise BadParameter(f"{name}: {e}") from None


def optionalDomain(args: Args, name: str) -> str | None:
    """
    @return: parameter C{name} as a normalised domain, or L{None}.
    @raise BadParameter: if it is no valid domain name.
    """
    value = text(args, name)
    return None if value is None else domain(value, name)


def integer(args: Args, name: str, default: int, minimum: int = 0) -> int:
    """
    @return: parameter C{name} as an integer of at least C{minimum}, or
        C{default}.
    @raise BadParameter: if it is not one.
    """
    value = text(args, name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise BadParameter(f"{name}: expected an integer, got {value!r}") from None
    if number < minimum:
        raise BadParameter(f"{name}: must be at least {minimum}, not {number}")
    return number
