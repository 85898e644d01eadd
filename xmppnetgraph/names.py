# -*- test-case-name: tests.test_names -*-
"""
The one home of domain-name and JID checks.

Two kinds of names meet in a node, and they are treated differently on
purpose:

  - Names we are I{told} (the command line, a C{--config} file, an
    allowlist, the names in a peer's XEP-0485 item) are checked and
    normalised here with IDNA 2008 and the UTS 46 mapping (the C{idna}
    package): L{normalizeDomain}, L{normalizeHost}, L{normalizeBareJID}.
    L{domainToASCII} turns any domain into the A-labels that go into DNS
    queries, certificate matching and the XEP-0185 dialback key.
  - Addresses on the wire (C{to} and C{from} of stanzas and streams) are
    parsed by L{parseJID} exactly as Twisted and Wokkel parse them, which
    route them: RFC 3920 stringprep (nameprep is IDNA 2003).

The two agree for ASCII names and for most internationalised ones. They
differ where IDNA 2003 and IDNA 2008 differ: C{ß} and final C{ς} are kept by
IDNA 2008 (C{faß.de} is C{xn--fa-hia.de}) but mapped to C{ss} and C{σ} by
IDNA 2003; a zero-width joiner is removed by IDNA 2003 and allowed by IDNA
2008 only where it belongs (after a virama); symbols such as C{☃} are
refused by IDNA 2008.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Iterator

import idna
from twisted.words.protocols.jabber import jid
from twisted.words.protocols.jabber.xmpp_stringprep import nodeprep

# The label separators IDNA recognises (RFC 3490, section 3.1), so that an
# ideographic full stop cannot hide an empty label.
_DOTS = re.compile("[.\u3002\uff0e\uff61]")

# A plain ASCII domain that needs no IDNA processing: letter-digit-hyphen
# labels of at most 63 characters that neither start nor end with a hyphen
# and have no hyphens in the 3rd and 4th position (which mark A-labels,
# C{xn--}, and labels reserved for other prefixes).
_PLAIN_LABEL = r"(?![a-z0-9]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_DOMAIN = re.compile(rf"{_PLAIN_LABEL}(?:\.{_PLAIN_LABEL})*")

# Twisted's stringprep and JID parser, typed (Twisted's are not annotated).
_nodeprep: Callable[[str], str] = nodeprep.prepare
_internJID: Callable[[str], jid.JID] = jid.internJID

# RFC 1035 section 2.3.4, for the name in A-labels without a trailing dot.
MAX_DOMAIN_LENGTH = 253


def normalizeDomain(text: str) -> str:
    """
    Check that C{text} is a bare DNS domain name (no C{@}, no C{/}, not an
    IP address, no empty label, so no trailing dot) and return its
    canonical form.

    Not an IP address means more than not parsing as one: an IPv6 address
    in brackets (C{[::1]}) is refused, and so is every name that the C
    library's resolver reads as an IPv4 address (C{127.1}, C{2130706433},
    C{0x7f.1}: C{inet_aton} notations), and every name whose last label is
    all digits (C{1.1.1}; no top-level domain is, RFC 3696 section 2), so
    that a name we store can never make us connect to an address.

    The canonical form is the UTS 46 mapping of C{text} (IDNA 2008,
    non-transitional, with the STD3 ASCII rules): case-folded, Unicode
    labels kept as Unicode (NFC), A-labels kept as A-labels. Every label is
    checked by IDNA 2008, A-labels included, and the name in A-labels must
    not be longer than 253 characters. Plain ASCII names take a fast path
    without IDNA processing.

    @param text: a domain as a user (or a peer) wrote it.
    @return: the normalised domain.
    @raise ValueError: if C{text} is not a usable domain name; the message
        says why.
    """
    if text.isascii():
        lowered = text.lower()
        last = lowered.rpartition(".")[2]
        if (
            len(lowered) <= MAX_DOMAIN_LENGTH
            and _PLAIN_DOMAIN.fullmatch(lowered)
            and not last[:1].isdigit()
        ):
            return lowered
    if not text:
        raise ValueError("empty domain")
    if "@" in text or "/" in text:
        raise ValueError(f"{text!r} is not a bare domain (no '@' or '/' allowed)")
    if _isIPAddress(text) or (
        text.startswith("[") and text.endswith("]") and _isIPAddress(text[1:-1])
    ):
        raise ValueError(f"{text!r} is an IP address, not a domain name")
    labels = _DOTS.split(text)
    if any(not label for label in labels):
        if not labels[-1] and len(labels) > 1 and all(labels[:-1]):
            raise ValueError(f"{text!r} has an empty label (no trailing dot allowed)")
        raise ValueError(f"{text!r} has an empty label")
    _refuseAddress(text, text)
    try:
        mapped = idna.uts46_remap(text, std3_rules=True, transitional=False)
        labels = _DOTS.split(mapped)
        if any(not label for label in labels):
            raise idna.IDNAError("a label maps to nothing")
        asciiLength = sum(len(idna.alabel(label)) for label in labels) + len(labels) - 1
    except idna.IDNAError as e:
        raise ValueError(f"{text!r} is not a valid domain name: {e}") from None
    # Full-width digits and dots, circled digits and the like map to ASCII
    # ones: the mapped name must not read as an address either.
    _refuseAddress(mapped, text)
    if asciiLength > MAX_DOMAIN_LENGTH:
        raise ValueError(f"{text!r} is longer than {MAX_DOMAIN_LENGTH} characters")
    return mapped


def _refuseAddress(name: str, text: str) -> None:
    """
    @param name: C{text}, or what the UTS 46 mapping made of it.
    @param text: the name as given, for the message.
    @raise ValueError: if C{name} is an IP address, or reads as one: in
        C{inet_aton} notation, or with an all-numeric last label.
    """
    if _isIPAddress(name):
        raise ValueError(f"{text!r} is an IP address, not a domain name")
    if name.isascii() and _isIPv4Notation(name):
        raise ValueError(f"{text!r} is an IPv4 address in inet_aton notation, not a domain name")
    last = _DOTS.split(name)[-1]
    if last and last.isascii() and last.isdigit():
        raise ValueError(
            f"{text!r} ends in an all-numeric label, which resolvers may read as an IPv4 "
            "address; no top-level domain is all-numeric"
        )


def normalizeLocalDomain(text: str) -> str:
    """
    Like L{normalizeDomain}, for a domain this node serves: stanzas reach
    it addressed as Twisted prepares JIDs (IDNA 2003 nameprep), so a name
    whose IDNA 2003 and IDNA 2008 forms differ (C{faß.de} is C{fass.de} in
    IDNA 2003) could never be served under the name configured.

    @param text: a domain as a user wrote it.
    @return: the normalised domain.
    @raise ValueError: if C{text} is not a usable domain name, or is one
        that IDNA 2003 writes differently; the message says why.
    """
    domain = normalizeDomain(text)
    if not domain.isascii():
        try:
            wire = jid.JID(tuple=(None, domain, None)).host
        except (jid.InvalidFormat, UnicodeError, IndexError):
            wire = None
        if wire != domain:
            raise ValueError(
                f"{text!r} cannot be served: XMPP addresses on the wire (IDNA 2003) "
                f"write it as {wire!r}; use the name they use"
            )
    return domain


def domainToASCII(domain: str) -> str:
    """
    Convert a domain to the ASCII form used in DNS queries, certificate
    names and the XEP-0185 dialback key.

    ASCII names are only lower-cased (so names with C{_}, which are not
    host names but may be in DNS, still work). Other names are converted
    with IDNA 2008 (UTS 46 mapping, non-transitional). Names that IDNA 2008
    refuses but IDNA 2003 accepts (symbols, for instance) fall back to IDNA
    2003: they can reach us only through L{parseJID}, whose nameprep is
    IDNA 2003, and must still be reachable.

    @param domain: a domain name in U-labels or A-labels, possibly with one
        trailing dot.
    @return: the domain in A-labels, lower case, without a trailing dot.
    @raise ValueError: if C{domain} is empty or cannot be encoded.
    """
    name = domain[:-1] if domain.endswith(".") else domain
    if not name:
        raise ValueError(f"{domain!r} is not a domain name")
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True, std3_rules=True).decode("ascii")
    except idna.IDNAError:
        pass
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise ValueError(f"{domain!r} is not a valid domain name: {e}") from None


def normalizeHost(text: str) -> str:
    """
    @param text: an IP address or a domain name.
    @return: C{text} as an IP address (compressed form) or as a normalised
        domain name (L{normalizeDomain}).
    @raise ValueError: if it is neither.
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return normalizeDomain(text)


def normalizeBareJID(text: str) -> str:
    """
    Check and normalise a bare JID that we are told (C{user@domain} or
    C{domain}): the user part with the XMPP nodeprep profile, the domain
    with L{normalizeDomain}.

    @param text: the JID as a user wrote it.
    @return: the normalised bare JID.
    @raise ValueError: if C{text} is not a bare JID; the message says why.
    """
    bare, slash, _ = text.partition("/")
    if slash:
        raise ValueError(f"{text!r} has a resource; give a bare JID (user@domain or domain)")
    user, at, domain = bare.rpartition("@")
    if at and not user:
        raise ValueError(f"{text!r} has an empty user part")
    try:
        host = normalizeDomain(domain)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a valid JID: {e}") from None
    if not at:
        return host
    try:
        node = _nodeprep(user)
    except UnicodeError:
        raise ValueError(
            f"{text!r} is not a valid JID: invalid character in the user part"
        ) from None
    if not node:
        raise ValueError(f"{text!r} has an empty user part")
    return f"{node}@{host}"


def parseJID(text: str) -> jid.JID:
    """
    Parse an address from the wire as Twisted and Wokkel do (RFC 3920
    stringprep; interned, so repeated addresses are cheap).

    @param text: a JID from a stanza or stream header.
    @return: the parsed JID.
    @raise ValueError: if C{text} is empty or not a valid JID (Twisted
        raises L{jid.InvalidFormat}, L{UnicodeError} or, for an empty label
        as in C{a..b}, L{IndexError}; all become L{ValueError}).
    """
    if not text:
        raise ValueError("empty JID")
    try:
        return _internJID(text)
    except IndexError:
        raise ValueError(f"{text!r} is not a valid JID: empty label") from None
    except (jid.InvalidFormat, UnicodeError) as e:
        raise ValueError(f"{text!r} is not a valid JID: {e}") from None


def isValidJID(text: str) -> bool:
    """
    @param text: a JID from a stanza.
    @return: whether L{parseJID} accepts it.
    """
    try:
        parseJID(text)
    except ValueError:
        return False
    return True


def _isIPv4Notation(text: str) -> bool:
    """
    @return: whether the C library reads C{text} (ASCII) as an IPv4 address
        (C{inet_aton}: C{127.1}, C{0x7f000001}, C{017700000001}, ...), as
        C{getaddrinfo} would before asking DNS.
    """
    try:
        socket.inet_aton(text)
    except (OSError, ValueError):
        return False
    return True


def _isIPAddress(text: str) -> bool:
    """
    @return: whether C{text} is an IPv4 or IPv6 address.
    """
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def listEntries(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """
    The entries of a domain list file (an allowlist, an exclusion list):
    one per line; blank lines and everything after a C{#} are ignored.

    @param lines: the file's lines.
    @return: C{(line number, entry)} for each entry, stripped.
    """
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            yield number, text
