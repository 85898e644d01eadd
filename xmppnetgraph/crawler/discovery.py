# -*- test-case-name: tests.test_crawler_discovery -*-
"""
Discovery of one domain's XEP-0485 server information (XEP-0485 section
3), as a reader on the federation does it, and the reading of the items
found.

For a domain D, in order, each step recorded as a L{DiscoveryStep} in words
a server admin can act on:

 1. disco#info of D. Without C{urn:xmpp:serverinfo:0} D has not consented
    to be named and nothing it publishes counts: discovery stops there
    (after the version query).
 2. The XEP-0128 form with FORM_TYPE C{http://jabber.org/network/serverinfo}:
    the first valid value of its C{serverinfo-pubsub-node} field (any
    service JID, any node name) says where the item is.
 3. Otherwise disco#items of D: the first item whose disco#info has the
    identity C{pubsub/service}, node C{serverinfo}. At most
    L{MAX_ITEMS_CHECKED} items are asked, in the order D lists them; items
    with a node, and invalid JIDs, are skipped.
 4. The items of that node (C{max_items=1}, any item id), read by
    L{reportFromItems}: only the C{domain} element for D counts; other
    domains in the item are ignored (and logged once per read).
 5. XEP-0092 software version of D (name and version, never the OS), when
    D answered at all; a failure is a failed step, not a status.

The requests go out one after the other (one in flight per domain, as the
node's query scheduler wants), each through the handler's host, which
times it out (L{LocalComponent<xmppnetgraph.component.LocalComponent>}:
its C{iqTimeout}, or the C{timeout} given here). A remote error or timeout
is never a failure of L{Discoverer.discover}: it becomes a step and a
status. The statuses (L{STATUSES}):

 - C{publishes}: the item was read; the report counts.
 - C{no-consent}: disco#info without C{urn:xmpp:serverinfo:0}.
 - C{unreachable}: no answer to disco#info (C{remote-server-not-found},
   C{remote-server-timeout}, timeout, the host's connection lost).
 - C{error}: D answered disco#info with another error.
 - C{no-pubsub}: neither the form nor disco#items led to a pub-sub node.
 - C{no-node}: the service has no such node (C{item-not-found}).
 - C{no-item}: the node has no item.
 - C{bad-item}: no item with a C{serverinfo} payload, or one without a
   C{domain} element for D.
 - C{fetch-failed}: the items request failed otherwise (C{forbidden},
   timeout, the service unreachable, an answer without items).

Why our own requests and not Wokkel's C{requestInfo}/C{PubSubClient.items}:
Wokkel's L{DiscoInfo} keeps one form per FORM_TYPE (so a second serverinfo
form is lost) and raises on a form that repeats a field or holds an invalid
JID (so D's features would be lost with it); and C{PubSubClient.items}
sends through Twisted's IQ tracking on the host's stream, which matches a
response by its (predictable) id alone, from any sender, and has no timeout
there. The requests here are Wokkel C{generic.Request}s sent with the
handlers' C{request()}, which every Wokkel host tracks with a timeout (a
C{StreamManager}; our component, which also checks the responder and uses
random ids).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import attrs
from twisted.internet import defer
from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from twisted.words.protocols.jabber import xmlstream
from twisted.words.protocols.jabber.error import StanzaError
from twisted.words.xish import domish
from wokkel.disco import DiscoClientProtocol
from wokkel.generic import Request
from wokkel.pubsub import PubSubClient

from xmppnetgraph.model import DiscoveryStep, DomainFacts
from xmppnetgraph.names import parseJID
from xmppnetgraph.serverinfo.payload import (
    DEFAULT_NODE,
    FORM_FIELD,
    FORM_TYPE,
    MAX_DOMAINS,
    NS_SERVERINFO,
    RemoteDomain,
    parsePayload,
    parsePubsubNodeURI,
    validDomainName,
)

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_X_DATA = "jabber:x:data"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_VERSION = "jabber:iq:version"

PUBLISHES = "publishes"
NO_CONSENT = "no-consent"
UNREACHABLE = "unreachable"
ERROR = "error"
NO_PUBSUB = "no-pubsub"
NO_NODE = "no-node"
NO_ITEM = "no-item"
BAD_ITEM = "bad-item"
FETCH_FAILED = "fetch-failed"

#: Every status L{Discoverer.discover} gives.
STATUSES = frozenset(
    {PUBLISHES, NO_CONSENT, UNREACHABLE, ERROR, NO_PUBSUB, NO_NODE, NO_ITEM, BAD_ITEM, FETCH_FAILED}
)

#: How many disco#items entries of a domain are asked for their identity
#: (in the order listed) when its form names no node.
MAX_ITEMS_CHECKED = 10

#: How many C{serverinfo-pubsub-node} values are tried, and how many
#: disco#items entries are read at all.
MAX_URIS = 10
MAX_ITEMS_READ = 1000

#: How many ignored domain names a L{ReportResult} keeps (sorted), and how
#: many a detail or log line names.
MAX_IGNORED = 100
_IGNORED_SHOWN = 5

# Software names and versions, stanza error texts and form values are cut
# to this many characters.
_MAX_TEXT = 100

# The conditions with which our s2s layer bounces a stanza it could not
# deliver, and our word for no answer at all: the domain is unreachable.
_TIMEOUT = "timeout"
_CONNECTION_LOST = "connection-lost"
_UNREACHABLE_CONDITIONS = frozenset(
    {"remote-server-not-found", "remote-server-timeout", _TIMEOUT, _CONNECTION_LOST}
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

_log = Logger()


@attrs.frozen
class ReportResult:
    """
    What one read of a domain's XEP-0485 items gave.

    @ivar status: L{PUBLISHES} (the report counts), L{NO_ITEM} or
        L{BAD_ITEM}; from L{Discoverer.fetchItem} also L{NO_NODE} or
        L{FETCH_FAILED}.
    @ivar detail: what was found, in words a server admin can act on.
    @ivar report: the domain's remote domains (canonical order: named ones
        by name, then the anonymous ones), or L{None} unless C{status} is
        L{PUBLISHES}.
    @ivar ignored: the other valid domain names the item describes, sorted,
        at most L{MAX_IGNORED}.
    @ivar truncated: whether a limit cut the report (the C{maxRemotes}
        given, or the parser's limits).
    @ivar itemIdentifier: the id of the item read, or L{None}.
    """

    status: str
    detail: str
    report: tuple[RemoteDomain, ...] | None = None
    ignored: tuple[str, ...] = ()
    truncated: bool = False
    itemIdentifier: str | None = None


@attrs.frozen
class Discovery:
    """
    What the discovery of one domain found.

    @ivar domain: the domain.
    @ivar facts: its facts: C{status} (one of L{STATUSES}), C{reachable},
        C{error}, C{publishes}, C{consents}, the software, and every step.
        The TLS, auth, certificate and direct TLS facts are left L{None}:
        the crawler knows them from its streams.
    @ivar service: the pub-sub service where the domain's item lives, or
        L{None} if none was found.
    @ivar node: its node, or L{None}.
    @ivar report: the domain's remote domains, or L{None} when nothing
        counts (no consent, no node, no item, a bad item, ...).
    @ivar truncated: whether a limit cut the report.
    @ivar ignoredDomains: the other domains named in the item (ignored).
    """

    domain: str
    facts: DomainFacts
    service: str | None = None
    node: str | None = None
    report: tuple[RemoteDomain, ...] | None = None
    truncated: bool = False
    ignoredDomains: tuple[str, ...] = ()


# -- reading items -------------------------------------------------------------


def reportFromItems(domain: str, items: Sequence[domish.Element], maxRemotes: int) -> ReportResult:
    """
    Read the report of C{domain} from the items of its XEP-0485 node: from
    an items result or from a pub-sub notification.

    The first item (items are given newest first; any id) that holds a
    C{serverinfo} payload is read with L{parsePayload}, tolerantly; only its
    C{domain} elements for C{domain} count (several are merged). Every
    other domain it names is ignored, reported in C{ignored} and logged
    once here.

    @param domain: the domain whose discovery led to the node.
    @param items: the C{<item/>} elements.
    @param maxRemotes: at most this many remote domains are read.
    @return: the report, or why there is none (L{NO_ITEM}, L{BAD_ITEM}).
    """
    domain = validDomainName(domain) or domain
    if not items:
        return ReportResult(NO_ITEM, "the node has no item")
    for item in items:
        payload = _child(item, NS_SERVERINFO, "serverinfo")
        if payload is not None:
            break
    else:
        first = items[0]
        return ReportResult(
            BAD_ITEM,
            f"no urn:xmpp:serverinfo:0 serverinfo payload in {_itemWord(len(items))}"
            f" ({_itemName(first)} holds {_contentOf(first)})",
            itemIdentifier=_attribute(first, "id"),
        )
    itemIdentifier = _attribute(item, "id")
    mine, others, cut = _domainElements(payload, domain)
    ignored = tuple(sorted(others)[:MAX_IGNORED])
    if ignored:
        _log.info(
            "discovery: the item of {domain} also describes {count} other domains,"
            " ignored: {names}",
            domain=domain,
            count=len(others),
            names=", ".join(ignored[:_IGNORED_SHOWN]),
        )
    if not mine:
        what = (
            f"only {_otherDomains(others)}"
            if others
            else "no domain element with a valid name at all"
        )
        if cut:
            what += f" (only its first {MAX_DOMAINS} domain elements are read)"
        return ReportResult(
            BAD_ITEM,
            f"{_itemName(item)} has no domain element for {domain}: it describes {what}",
            ignored=ignored,
            truncated=cut,
            itemIdentifier=itemIdentifier,
        )
    selected = domish.Element((NS_SERVERINFO, "serverinfo"))
    # The elements stay where they are: only the filtered list is read.
    selected.children = list(mine)
    info = parsePayload(selected, maxRemoteDomains=maxRemotes)
    remotes: tuple[RemoteDomain, ...] = ()
    for found in info.domains:
        if found.name == domain:
            remotes = found.remotes
    truncated = cut or info.truncated
    detail = f"{_itemName(item)} read"
    if truncated:
        detail += f" (cut at the limits: at most {maxRemotes} remote domains)"
    if others:
        detail += f"; {_otherDomains(others)} in it ignored"
    return ReportResult(PUBLISHES, detail, remotes, ignored, truncated, itemIdentifier)


def _domainElements(
    payload: domish.Element, domain: str
) -> tuple[list[domish.Element], set[str], bool]:
    """
    @return: the C{domain} elements of C{payload} for C{domain}, the other
        valid names among the first L{MAX_DOMAINS} of them, and whether
        there were more.
    """
    mine: list[domish.Element] = []
    others: set[str] = set()
    seen = 0
    for child in payload.children:
        if not (
            isinstance(child, domish.Element)
            and (child.uri, child.name) == (NS_SERVERINFO, "domain")
        ):
            continue
        if seen >= MAX_DOMAINS:
            return mine, others, True
        seen += 1
        name = validDomainName(_attribute(child, "name"))
        if name == domain:
            mine.append(child)
        elif name is not None:
            others.add(name)
    return mine, others, False


def _otherDomains(names: set[str]) -> str:
    """
    @return: how many other domains an item describes, in words. Their
        names stay out of the steps (which the API shows): they may be
        excluded or hidden domains; the log has them.
    """
    return "1 other domain" if len(names) == 1 else f"{len(names)} other domains"


def _itemWord(count: int) -> str:
    return "the item" if count == 1 else f"the {count} items"


def _itemName(item: domish.Element) -> str:
    identifier = _attribute(item, "id")
    return f"item {_clip(identifier)!r}" if identifier is not None else "the item without id"


def _contentOf(item: domish.Element) -> str:
    """
    @return: what an item holds instead of a payload, in a few words.
    """
    for child in item.children:
        if isinstance(child, domish.Element):
            return f"<{_clip(child.name)}> in namespace {_clip(child.uri or '')!r}"
    return "nothing"


# -- the remote requests -------------------------------------------------------


class _Query(Request):  # type: ignore[misc]
    """
    An IQ get with one child element.
    """

    def __init__(
        self, recipient: str, sender: str, child: domish.Element, timeout: float | None
    ) -> None:
        super().__init__(recipient=parseJID(recipient), sender=parseJID(sender))
        self.child = child
        self.timeout = timeout

    def toElement(self) -> domish.Element:
        """
        @return: the IQ.
        """
        element: domish.Element = Request.toElement(self)
        element.addChild(self.child)
        return element


@attrs.frozen
class _Answer:
    """
    The outcome of one request: the result IQ, or why there is none.

    @ivar condition: the stanza error condition, or C{"timeout"}.
    @ivar text: the error's text, cleaned and cut, or L{None}.
    """

    result: domish.Element | None
    condition: str | None = None
    text: str | None = None

    @property
    def unreachable(self) -> bool:
        """
        Whether the entity asked could not be reached at all.
        """
        return self.condition in _UNREACHABLE_CONDITIONS

    def describe(self) -> str:
        """
        @return: the error in words.
        """
        if self.condition == _TIMEOUT:
            return "no answer (timeout)"
        if self.condition == _CONNECTION_LOST:
            return "no answer (our connection was lost)"
        if self.text:
            return f"{self.condition} ({self.text})"
        return str(self.condition)


class _Requester(Protocol):
    """
    A Wokkel handler: its C{request()} sends through its host.
    """

    def request(self, request: _Query) -> defer.Deferred[domish.Element]:
        """
        @return: a L{Deferred} firing with the result IQ, or failing with
            a L{StanzaError} or a timeout.
        """


def _query(namespace: str, name: str = "query", **attributes: str) -> domish.Element:
    element = domish.Element((namespace, name))
    for key, value in attributes.items():
        element[key] = value
    return element


class Discoverer:
    """
    Discovers domains (XEP-0485 section 3) through Wokkel client handlers
    attached to the host of our domain.

    @ivar sender: our domain: the requests' C{from}.
    @ivar maxRemotes: at most this many remote domains are taken from one
        report.
    @ivar versionTimeout: seconds to wait for a version answer, or L{None}
        for L{timeout}.
    @ivar timeout: seconds to wait for any other answer, or L{None} for the
        host's default.
    """

    _log = Logger()

    def __init__(
        self,
        disco: DiscoClientProtocol,
        pubsub: PubSubClient,
        sender: str,
        *,
        maxRemotes: int = 10_000,
        versionTimeout: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """
        @param disco: sends the disco#info, disco#items and version
            requests (its C{request()}, through its parent).
        @param pubsub: sends the pub-sub items requests.
        @param sender: see L{sender}.
        @param maxRemotes: see L{maxRemotes}.
        @param versionTimeout: see L{versionTimeout}.
        @param timeout: see L{timeout}.
        """
        self._disco = disco
        self._pubsub = pubsub
        self.sender = sender
        self.maxRemotes = maxRemotes
        self.versionTimeout = versionTimeout
        self.timeout = timeout

    def discover(self, domain: str) -> defer.Deferred[Discovery]:
        """
        Discover C{domain}: its consent, where it publishes, its report and
        its software.

        @param domain: the domain (normalised).
        @return: a L{Deferred} that fires with what was found. It does not
            fail for remote errors or timeouts; cancelling it cancels the
            request in flight.
        """
        return defer.Deferred.fromCoroutine(self._discover(domain))

    def fetchItem(self, domain: str, service: str, node: str) -> defer.Deferred[ReportResult]:
        """
        Read C{domain}'s item from C{node} on C{service} (a poll, once
        discovery has found them), with L{reportFromItems}.

        @return: a L{Deferred} that fires with the result: besides what
            L{reportFromItems} gives, L{NO_NODE} (C{item-not-found}) or
            L{FETCH_FAILED} (another error, a timeout, an answer without
            items). It does not fail for remote errors.
        """
        return defer.Deferred.fromCoroutine(self._fetch(domain, service, node))

    async def _ask(
        self, handler: _Requester, to: str, child: domish.Element, timeout: float | None = None
    ) -> _Answer:
        """
        Send an IQ get with C{child} to C{to} through C{handler}'s host.

        @return: the answer; remote errors and timeouts are in it.
        """
        request = _Query(to, self.sender, child, timeout if timeout is not None else self.timeout)
        try:
            result = await handler.request(request)
        except (defer.TimeoutError, xmlstream.TimeoutError):
            return _Answer(None, _TIMEOUT)
        except ConnectionLost:
            # A StreamManager host fails what is pending when its stream ends.
            return _Answer(None, _CONNECTION_LOST)
        except StanzaError as e:
            text = _clean(e.text) if isinstance(e.text, str) else None
            return _Answer(None, str(e.condition), text or None)
        return _Answer(result)

    async def _discover(self, domain: str) -> Discovery:
        steps: list[DiscoveryStep] = []
        answer = await self._ask(self._disco, domain, _query(NS_DISCO_INFO))
        if answer.result is None:
            detail = f"{domain}: {answer.describe()}"
            steps.append(DiscoveryStep("disco#info", False, detail))
            if answer.unreachable:
                return Discovery(
                    domain, DomainFacts(UNREACHABLE, reachable=False, error=detail, steps=steps)
                )
            name, version = await self._version(domain, steps)
            return Discovery(domain, _facts(ERROR, detail, steps, name, version))
        info = _parseInfo(answer.result)
        if NS_SERVERINFO not in info.features:
            detail = "disco#info answered without urn:xmpp:serverinfo:0"
            steps.append(DiscoveryStep("disco#info", False, detail))
            name, version = await self._version(domain, steps)
            return Discovery(
                domain, _facts(NO_CONSENT, detail, steps, name, version, consents=False)
            )
        steps.append(DiscoveryStep("disco#info", True, f"lists {NS_SERVERINFO}"))

        located = self._fromForm(info.nodeURIs, steps)
        if located is None:
            located = await self._fromItems(domain, steps)
        if located is None:
            detail = steps[-1].detail
            name, version = await self._version(domain, steps)
            return Discovery(
                domain,
                _facts(NO_PUBSUB, detail, steps, name, version, publishes=False, consents=True),
            )
        service, node = located
        result = await self._fetch(domain, service, node)
        ok = result.status == PUBLISHES
        steps.append(DiscoveryStep(f"items {service} node {node}", ok, result.detail))
        name, version = await self._version(domain, steps)
        publishes = True if ok else (None if result.status == FETCH_FAILED else False)
        facts = _facts(
            result.status,
            None if ok else result.detail,
            steps,
            name,
            version,
            publishes=publishes,
            consents=True,
        )
        return Discovery(
            domain, facts, service, node, result.report, result.truncated, result.ignored
        )

    def _fromForm(
        self, values: Sequence[str], steps: list[DiscoveryStep]
    ) -> tuple[str, str] | None:
        """
        Step 2: the first valid C{serverinfo-pubsub-node} value; one failed
        step for the invalid ones before it.

        @return: C{(service, node)}, or L{None}.
        """
        if not values:
            steps.append(
                DiscoveryStep(
                    "serverinfo form",
                    False,
                    f"no {FORM_FIELD} field in a {FORM_TYPE} form of disco#info;"
                    " looking for a pub-sub service in disco#items",
                )
            )
            return None
        bad: list[str] = []
        for value in values[:MAX_URIS]:
            try:
                service, node = parsePubsubNodeURI(value)
            except ValueError:
                bad.append(value)
                continue
            if bad:
                steps.append(self._badURIs(bad, "the first valid value is used"))
            steps.append(
                DiscoveryStep(
                    "serverinfo form", True, f"{FORM_FIELD} names node {node} on {service}"
                )
            )
            return service, node
        steps.append(self._badURIs(bad, "looking for a pub-sub service in disco#items"))
        return None

    @staticmethod
    def _badURIs(values: list[str], then: str) -> DiscoveryStep:
        shown = ", ".join(repr(_clip(value)) for value in values[:3])
        more = f" and {len(values) - 3} more" if len(values) > 3 else ""
        return DiscoveryStep(
            "serverinfo form",
            False,
            f"{FORM_FIELD} is not an xmpp: URI of a pub-sub node: {shown}{more}; {then}",
        )

    async def _fromItems(self, domain: str, steps: list[DiscoveryStep]) -> tuple[str, str] | None:
        """
        Step 3: the first disco#items entry of C{domain} that is a
        C{pubsub/service}, and its node C{serverinfo}.

        @return: C{(service, node)}, or L{None} (the last step says why).
        """
        answer = await self._ask(self._disco, domain, _query(NS_DISCO_ITEMS))
        if answer.result is None:
            steps.append(
                DiscoveryStep(
                    "disco#items", False, f"{domain}: {answer.describe()}; no pub-sub service found"
                )
            )
            return None
        candidates = _parseItems(answer.result)
        checked = candidates[:MAX_ITEMS_CHECKED]
        if not candidates:
            steps.append(DiscoveryStep("disco#items", False, "no items, so no pub-sub service"))
            return None
        steps.append(
            DiscoveryStep(
                "disco#items",
                True,
                f"{len(candidates)} items"
                + (
                    f"; the first {len(checked)} are checked"
                    if len(checked) < len(candidates)
                    else ""
                ),
            )
        )
        for jid in checked:
            info = await self._ask(self._disco, jid, _query(NS_DISCO_INFO))
            step = f"disco#info {jid}"
            if info.result is None:
                steps.append(DiscoveryStep(step, False, f"{jid}: {info.describe()}"))
                continue
            identities = _parseInfo(info.result).identities
            if ("pubsub", "service") in identities:
                steps.append(
                    DiscoveryStep(step, True, f"pubsub/service; using its node {DEFAULT_NODE}")
                )
                return jid, DEFAULT_NODE
            shown = ", ".join(f"{c}/{t}" for c, t in sorted(identities)[:5]) or "none"
            steps.append(
                DiscoveryStep(step, False, f"not a pubsub/service (identities: {_clip(shown)})")
            )
        steps.append(
            DiscoveryStep(
                "pub-sub service",
                False,
                f"none of the {len(checked)} disco#items entries checked"
                f" (of {len(candidates)}) is a pubsub/service",
            )
        )
        return None

    async def _fetch(self, domain: str, service: str, node: str) -> ReportResult:
        """
        Step 4: the items of C{node} on C{service}, read for C{domain}.
        """
        child = _query(NS_PUBSUB, "pubsub")
        itemsRequest = child.addElement("items")
        itemsRequest["node"] = node
        itemsRequest["max_items"] = "1"
        answer = await self._ask(self._pubsub, service, child)
        if answer.result is None:
            if answer.condition == "item-not-found":
                return ReportResult(
                    NO_NODE, f"node {node}: item-not-found (no such node on {service})"
                )
            return ReportResult(FETCH_FAILED, f"node {node}: {answer.describe()}")
        items = _child(_child(answer.result, NS_PUBSUB, "pubsub"), NS_PUBSUB, "items")
        if items is None:
            return ReportResult(FETCH_FAILED, f"node {node}: the answer holds no items element")
        elements = [
            child
            for child in items.children
            if isinstance(child, domish.Element) and (child.uri, child.name) == (NS_PUBSUB, "item")
        ]
        return reportFromItems(domain, elements, self.maxRemotes)

    async def _version(
        self, domain: str, steps: list[DiscoveryStep]
    ) -> tuple[str | None, str | None]:
        """
        Step 5: ask C{domain} for its XEP-0092 software name and version
        (the OS is not read).

        @return: the name and the version, each L{None} if not given.
        """
        timeout = self.versionTimeout if self.versionTimeout is not None else self.timeout
        answer = await self._ask(self._disco, domain, _query(NS_VERSION), timeout)
        if answer.result is None:
            steps.append(DiscoveryStep("version", False, f"{domain}: {answer.describe()}"))
            return None, None
        query = _child(answer.result, NS_VERSION, "query")
        name = _text(_child(query, NS_VERSION, "name"))
        version = _text(_child(query, NS_VERSION, "version"))
        if name is None:
            steps.append(DiscoveryStep("version", False, "answered without a software name"))
            return None, version
        steps.append(DiscoveryStep("version", True, f"{name} {version}" if version else name))
        return name, version


def _facts(
    status: str,
    error: str | None,
    steps: list[DiscoveryStep],
    softwareName: str | None,
    softwareVersion: str | None,
    *,
    publishes: bool | None = None,
    consents: bool | None = None,
) -> DomainFacts:
    """
    @return: the facts of a domain that answered disco#info.
    """
    return DomainFacts(
        status,
        reachable=True,
        error=error,
        publishes=publishes,
        consents=consents,
        softwareName=softwareName,
        softwareVersion=softwareVersion,
        steps=steps,
    )


# -- tolerant parsing of the answers ------------------------------------------


@attrs.frozen
class _Info:
    """
    What a disco#info answer says, as far as discovery needs it.

    @ivar nodeURIs: the values of C{serverinfo-pubsub-node} in every
        serverinfo form, in order, at most L{MAX_URIS}.
    """

    features: frozenset[str]
    identities: frozenset[tuple[str, str]]
    nodeURIs: tuple[str, ...]


def _parseInfo(iq: domish.Element) -> _Info:
    """
    Read a disco#info result; what is not there is empty.
    """
    features: set[str] = set()
    identities: set[tuple[str, str]] = set()
    uris: list[str] = []
    query = _child(iq, NS_DISCO_INFO, "query")
    for child in query.children if query is not None else ():
        if not isinstance(child, domish.Element):
            continue
        if (child.uri, child.name) == (NS_DISCO_INFO, "feature"):
            var = _attribute(child, "var")
            if var:
                features.add(var)
        elif (child.uri, child.name) == (NS_DISCO_INFO, "identity"):
            identities.add((_attribute(child, "category") or "", _attribute(child, "type") or ""))
        elif (child.uri, child.name) == (NS_X_DATA, "x") and len(uris) < MAX_URIS:
            uris.extend(_formValues(child))
    return _Info(frozenset(features), frozenset(identities), tuple(uris[:MAX_URIS]))


def _formValues(form: domish.Element) -> list[str]:
    """
    @return: the C{serverinfo-pubsub-node} values of C{form} if it is a
        serverinfo form, in order.
    """
    fields = [
        child
        for child in form.children
        if isinstance(child, domish.Element) and (child.uri, child.name) == (NS_X_DATA, "field")
    ]
    formTypes = {
        value
        for field in fields
        if _attribute(field, "var") == "FORM_TYPE"
        for value in _values(field)
    }
    if FORM_TYPE not in formTypes:
        return []
    return [
        value
        for field in fields
        if _attribute(field, "var") == FORM_FIELD
        for value in _values(field)
    ]


def _values(field: domish.Element) -> list[str]:
    return [
        str(child).strip()
        for child in field.children
        if isinstance(child, domish.Element) and (child.uri, child.name) == (NS_X_DATA, "value")
    ]


def _parseItems(iq: domish.Element) -> list[str]:
    """
    @return: the JIDs of a disco#items result's entries without a node,
        valid and each once, in order, of the first L{MAX_ITEMS_READ}.
    """
    query = _child(iq, NS_DISCO_ITEMS, "query")
    found: dict[str, None] = {}
    read = 0
    for child in query.children if query is not None else ():
        if not (
            isinstance(child, domish.Element)
            and (child.uri, child.name) == (NS_DISCO_ITEMS, "item")
        ):
            continue
        if read >= MAX_ITEMS_READ:
            break
        read += 1
        if _attribute(child, "node"):
            continue
        try:
            jid = parseJID(_attribute(child, "jid") or "").full()
        except ValueError:
            continue
        found.setdefault(jid, None)
    return list(found)


def _child(parent: domish.Element | None, uri: str, name: str) -> domish.Element | None:
    """
    @return: the first child element of C{parent} with that name and
        namespace, or L{None}.
    """
    if parent is None:
        return None
    for child in parent.children:
        if isinstance(child, domish.Element) and (child.uri, child.name) == (uri, name):
            return child
    return None


def _attribute(element: domish.Element, name: str) -> str | None:
    value = element.attributes.get(name)
    return value if isinstance(value, str) else None


def _clean(text: str) -> str:
    """
    @return: C{text} on one line, blanks collapsed, cut to L{_MAX_TEXT}.
    """
    return _clip(" ".join(_CONTROL.sub(" ", text).split()))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _text(element: domish.Element | None) -> str | None:
    """
    @return: the cleaned text of C{element}, or L{None} if it is absent or
        blank.
    """
    if element is None:
        return None
    return _clean(str(element)) or None
