# -*- test-case-name: tests.test_serverinfo_payload -*-
"""
The XEP-0485 item payload: value types, building our own item, and a
tolerant parser for the items other servers publish.

The value types are canonical: their parts are sorted when they are made
(domains by name; remote domains by name with the anonymous ones last,
those ordered by their connections only; connections by type). Two equal
link sets therefore give equal values and byte-identical XML, which is how
the publisher avoids republishing an identical item.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Literal
from urllib.parse import quote, unquote

import attrs
from twisted.logger import Logger
from twisted.words.xish import domish

from xmppnetgraph.error import XmppNetGraphError
from xmppnetgraph.names import normalizeDomain, parseJID

NS_SERVERINFO = "urn:xmpp:serverinfo:0"
FORM_TYPE = "http://jabber.org/network/serverinfo"
FORM_FIELD = "serverinfo-pubsub-node"
DEFAULT_NODE = "serverinfo"
ITEM_ID = "current"

ConnectionType = Literal["incoming", "outgoing", "bidi"]
CONNECTION_TYPES: frozenset[str] = frozenset({"incoming", "outgoing", "bidi"})

# What other publishers write for a connection type, normalised. Openfire's
# plugin writes the pre-1.0 value "both".
_TYPE_ALIASES = {"incoming": "incoming", "outgoing": "outgoing", "bidi": "bidi", "both": "bidi"}

MAX_DOMAINS = 1000
MAX_REMOTE_DOMAINS = 50_000
MAX_CONNECTIONS = 32
MAX_UNICODE_NAMES = 1000

_log = Logger()


class PayloadError(XmppNetGraphError, ValueError):
    """
    The element is not a XEP-0485 C{serverinfo} payload at all.
    """


def _sortedConnections(connections: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(connections))


def _checkConnections(instance: object, attribute: object, value: tuple[str, ...]) -> None:
    for kind in value:
        if kind not in CONNECTION_TYPES:
            raise ValueError(f"connection type {kind!r} is not one of {sorted(CONNECTION_TYPES)}")


def _checkOptionalName(instance: object, attribute: object, value: str | None) -> None:
    if value is not None and not value:
        raise ValueError("a remote domain's name is a domain or None, never empty")


def _checkName(instance: object, attribute: object, value: str) -> None:
    if not value:
        raise ValueError("a domain needs a name")


@attrs.frozen
class RemoteDomain:
    """
    One peer of a local domain, as one C{remote-domain} element.

    @ivar name: the peer's domain, or L{None} for a peer that has not
        consented to be named.
    @ivar connections: one entry per live stream: C{"incoming"},
        C{"outgoing"} or C{"bidi"}, sorted. Empty when the publisher did not
        say (Prosody writes no C{connection} children).
    """

    name: str | None = attrs.field(validator=_checkOptionalName)
    connections: tuple[str, ...] = attrs.field(
        default=(), converter=_sortedConnections, validator=_checkConnections
    )


def _remoteKey(remote: RemoteDomain) -> tuple[bool, str, tuple[str, ...]]:
    # Anonymous peers are ordered by their connections only: their hidden
    # names must not leak through the order.
    return (remote.name is None, remote.name or "", remote.connections)


def _sortedRemotes(remotes: Iterable[RemoteDomain]) -> tuple[RemoteDomain, ...]:
    return tuple(sorted(remotes, key=_remoteKey))


@attrs.frozen
class DomainInfo:
    """
    One local domain of a publishing server and its peers.

    @ivar name: the local domain.
    @ivar remotes: its peers, sorted by name, the anonymous ones last.
    """

    name: str = attrs.field(validator=_checkName)
    remotes: tuple[RemoteDomain, ...] = attrs.field(default=(), converter=_sortedRemotes)


def _sortedDomains(domains: Iterable[DomainInfo]) -> tuple[DomainInfo, ...]:
    return tuple(sorted(domains, key=lambda domain: domain.name))


@attrs.frozen
class ServerInfo:
    """
    The content of one XEP-0485 item.

    @ivar domains: the publisher's local domains, sorted by name.
    @ivar truncated: whether L{parsePayload} left part of the item out
        because it exceeded a limit.
    """

    domains: tuple[DomainInfo, ...] = attrs.field(default=(), converter=_sortedDomains)
    truncated: bool = False


def buildPayload(info: ServerInfo) -> domish.Element:
    """
    Write C{info} as a XEP-0485 C{serverinfo} element.

    Anonymous peers are written without a C{name} attribute; every domain
    gets a C{federation} child, empty when it has no peers. The order is the
    canonical order of the value types, so equal values serialise to equal
    bytes.

    @param info: the content of the item.
    @return: the C{<serverinfo xmlns='urn:xmpp:serverinfo:0'/>} element.
    """
    root = domish.Element((NS_SERVERINFO, "serverinfo"))
    for domain in info.domains:
        domainElement = root.addElement("domain")
        domainElement["name"] = domain.name
        federation = domainElement.addElement("federation")
        for remote in domain.remotes:
            remoteElement = federation.addElement("remote-domain")
            if remote.name is not None:
                remoteElement["name"] = remote.name
            for kind in remote.connections:
                remoteElement.addElement("connection")["type"] = kind
    return root


def fromLinks(
    localDomain: str,
    links: Iterable[tuple[str, str]],
    consents: Callable[[str], bool],
    localDomains: set[str] | frozenset[str],
) -> ServerInfo:
    """
    Make the item content for C{localDomain} from its live links.

    @param localDomain: the domain the item is about.
    @param links: one C{(remoteDomain, direction)} per live stream, with
        C{direction} C{"incoming"} or C{"outgoing"} (C{"bidi"} is accepted
        too; anything else is skipped).
    @param consents: tells whether a peer consents to be named; asked once
        per remote domain. If it raises, the peer is not named.
    @param localDomains: all our own domains; links to them are left out.
    @return: one L{DomainInfo} with one L{RemoteDomain} per remote domain
        (named only if it consents; each peer that does not is a separate
        anonymous entry) and one connection per stream.
    """
    streams: dict[str, list[str]] = {}
    for remote, direction in links:
        if remote == localDomain or remote in localDomains:
            continue
        if direction not in CONNECTION_TYPES:
            _log.warn(
                "serverinfo: skipping a link to {domain} with direction {direction!r}",
                domain=remote,
                direction=direction,
            )
            continue
        streams.setdefault(remote, []).append(direction)
    remotes = []
    for remote, directions in streams.items():
        remotes.append(RemoteDomain(remote if _asks(consents, remote) else None, directions))
    return ServerInfo((DomainInfo(localDomain, remotes),))


def _asks(consents: Callable[[str], bool], domain: str) -> bool:
    try:
        return bool(consents(domain))
    except Exception:
        _log.failure("serverinfo: consent lookup for {domain} failed; not naming it", domain=domain)
        return False


_MAX_NAME = 253


class _NameChecker:
    """
    Validates the names in one payload with L{normalizeDomain}, with a
    budget for its slow (IDNA) path: non-ASCII names, and ASCII names with
    C{--}, which may hold A-labels.
    """

    def __init__(self, maxUnicodeNames: int) -> None:
        self.unicodeLeft = maxUnicodeNames
        self.exhausted = False

    def __call__(self, value: str | None) -> str | None:
        name = _trimName(value)
        if name is None:
            return None
        if not name.isascii() or "--" in name:
            if self.unicodeLeft <= 0:
                self.exhausted = True
                return None
            self.unicodeLeft -= 1
        try:
            return normalizeDomain(name)
        except ValueError:
            return None


def _trimName(value: str | None) -> str | None:
    if not value:
        return None
    name = value.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > _MAX_NAME:
        return None
    return name


def validDomainName(value: str | None) -> str | None:
    """
    @param value: a domain name as some publisher wrote it.
    @return: its canonical form (as L{xmppnetgraph.names.normalizeDomain}
        gives; one trailing dot and surrounding blanks are dropped), or
        L{None} if it is not a valid domain name.
    """
    return _NameChecker(1)(value)


@attrs.define
class _DomainAccumulator:
    named: dict[str, list[str]] = attrs.field(factory=dict)
    anonymous: list[list[str]] = attrs.field(factory=list)


def parsePayload(
    element: domish.Element,
    *,
    maxDomains: int = MAX_DOMAINS,
    maxRemoteDomains: int = MAX_REMOTE_DOMAINS,
    maxConnections: int = MAX_CONNECTIONS,
    maxUnicodeNames: int = MAX_UNICODE_NAMES,
) -> ServerInfo:
    """
    Read a XEP-0485 payload as any known publisher writes it.

    Accepted: several C{domain} elements (merged if they repeat a name);
    peers without C{connection} children (Prosody); C{name=''} (ejabberd)
    and invalid names as anonymous peers; C{type='both'} as C{bidi}
    (Openfire); C{connection} elements without or with an unknown C{type}
    are skipped (so Openfire's C{<remote-domain><connection/></remote-domain>}
    is an anonymous peer without known connections). Named peers that repeat
    are merged. Elements of other namespaces and unknown elements are
    ignored wherever they are; nothing below C{connection} is looked at.

    Hostile input: at most C{maxDomains} C{domain} elements and
    C{maxRemoteDomains} C{remote-domain} elements (in all domains together)
    are read, and at most C{maxConnections} connections per peer are kept;
    at most C{maxUnicodeNames} names that need IDNA processing (non-ASCII
    ones, and ASCII ones with C{--}, as in A-labels) are checked, later ones
    count as invalid. When any limit cut
    something off, the result has C{truncated=True}. Domains whose name is
    invalid are dropped.

    @param element: the C{serverinfo} element (the child of the C{item}).
    @return: what the item says.
    @raise PayloadError: if C{element} is not a C{serverinfo} element in the
        C{urn:xmpp:serverinfo:0} namespace. Nothing else is raised for bad
        content.
    """
    if (
        not isinstance(element, domish.Element)
        or element.name != "serverinfo"
        or element.uri != NS_SERVERINFO
    ):
        name = getattr(element, "name", None)
        uri = getattr(element, "uri", None)
        raise PayloadError(f"not a XEP-0485 payload: <{name}> in namespace {uri!r}")
    checkName = _NameChecker(maxUnicodeNames)
    domains: dict[str, _DomainAccumulator] = {}
    truncated = False
    domainsSeen = 0
    remotesSeen = 0
    remotesFull = False
    for domainElement in _children(element, "domain"):
        if domainsSeen >= maxDomains:
            truncated = True
            break
        domainsSeen += 1
        domainName = checkName(domainElement.getAttribute("name"))
        if domainName is None:
            continue
        accumulator = domains.setdefault(domainName, _DomainAccumulator())
        for federation in _children(domainElement, "federation"):
            for remoteElement in _children(federation, "remote-domain"):
                if remotesSeen >= maxRemoteDomains:
                    truncated = remotesFull = True
                    break
                remotesSeen += 1
                connections, cut = _connections(remoteElement, maxConnections)
                truncated = truncated or cut
                remoteName = checkName(remoteElement.getAttribute("name"))
                if remoteName is None:
                    accumulator.anonymous.append(connections)
                    continue
                merged = accumulator.named.setdefault(remoteName, [])
                merged.extend(connections)
                if len(merged) > maxConnections:
                    del merged[maxConnections:]
                    truncated = True
            if remotesFull:
                break
        if remotesFull:
            break
    if checkName.exhausted:
        truncated = True
    if truncated:
        _log.info(
            "serverinfo: payload cut at the limits "
            "({domains} domains, {remotes} remote domains read)",
            domains=domainsSeen,
            remotes=remotesSeen,
        )
    return ServerInfo(
        tuple(
            DomainInfo(
                name,
                [RemoteDomain(remote, kinds) for remote, kinds in acc.named.items()]
                + [RemoteDomain(None, kinds) for kinds in acc.anonymous],
            )
            for name, acc in domains.items()
        ),
        truncated=truncated,
    )


def _children(parent: domish.Element, name: str) -> Iterable[domish.Element]:
    for child in parent.children:
        if isinstance(child, domish.Element) and child.name == name and child.uri == NS_SERVERINFO:
            yield child


def _connections(remoteElement: domish.Element, maxConnections: int) -> tuple[list[str], bool]:
    kinds: list[str] = []
    seen = 0
    for connection in _children(remoteElement, "connection"):
        if seen >= maxConnections:
            return kinds, True
        seen += 1
        value = connection.getAttribute("type")
        kind = _TYPE_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
        if kind is not None:
            kinds.append(kind)
    return kinds, False


def serverInfoFormField(pubsubHost: str, node: str = DEFAULT_NODE) -> str:
    """
    @param pubsubHost: the JID of the pub-sub service.
    @param node: the node the item is published on.
    @return: the value of the C{serverinfo-pubsub-node} field: the XEP-0060
        (section 12.22) URI C{xmpp:<pubsubHost>?;node=<node>}, with the node
        name percent-encoded where needed.
    """
    return f"xmpp:{pubsubHost}?;node={quote(node, safe='/:@')}"


def parsePubsubNodeURI(value: str) -> tuple[str, str]:
    """
    Read a C{serverinfo-pubsub-node} value.

    Accepted: C{xmpp:host?;node=x} (XEP-0485), C{xmpp:host?node=x},
    C{xmpp:host?pubsub;node=x} (RFC 5122 with an action), C{;} or C{&}
    between parameters, percent-encoded JIDs and node names, and an
    authority part (C{xmpp://account@host/service?...}), which is skipped.

    @param value: the field value.
    @return: C{(jid, node)}, the JID prepared (full form).
    @raise ValueError: if C{value} is not such a URI, its JID is invalid or
        it names no node.
    """
    text = value.strip()
    if text[:5].lower() != "xmpp:":
        raise ValueError(f"{value!r} is not an xmpp: URI")
    rest = text[5:]
    if rest.startswith("//"):
        _, slash, rest = rest[2:].partition("/")
        if not slash:
            raise ValueError(f"{value!r} names an account but no pub-sub service")
    path, _, query = rest.partition("?")
    query = query.partition("#")[0]
    try:
        address = unquote(path, errors="strict").strip()
        if not address:
            raise ValueError("no JID before '?'")
        service = parseJID(address).full()
    except ValueError as e:
        raise ValueError(f"{value!r} has no valid JID: {e}") from None
    node = None
    for parameter in re.split("[;&]", query):
        key, equals, raw = parameter.partition("=")
        if equals and unquote(key).strip().lower() == "node":
            try:
                node = unquote(raw, errors="strict")
            except UnicodeError:
                raise ValueError(f"{value!r} has an undecodable node name") from None
            break
    if not node:
        raise ValueError(f"{value!r} names no node")
    return service, node
