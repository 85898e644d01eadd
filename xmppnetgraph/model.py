# -*- test-case-name: tests.test_feed -*-
"""
The values the node's modules hand each other: links, pub-sub items and
subscriptions, consent answers, what we publish, and the change events of the node's one
L{change feed<xmppnetgraph.feed.ChangeFeed>}.

Everything here is a plain value (frozen attrs, except the mutable counters
of a live L{Link}); the contracts that use them are in
L{xmppnetgraph.interfaces}. Nothing here imports an implementation module.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Literal

import attrs

Direction = Literal["incoming", "outgoing"]
AuthMethod = Literal["sasl-external", "dialback"]

_linkIds = itertools.count(1)


@attrs.define(eq=False)
class Link:
    """
    One authenticated s2s stream between a local and a remote domain.

    @ivar domain: the remote domain.
    @ivar localDomain: our domain on this stream.
    @ivar direction: C{"incoming"} (the peer connected to us) or
        C{"outgoing"}.
    @ivar auth: how the peer was authenticated.
    @ivar tls: the TLS version (C{"TLSv1.3"}), or L{None} for plaintext.
    @ivar certValid: whether the peer's certificate is valid for C{domain}.
    @ivar since: when the stream was authenticated (seconds since the epoch).
    @ivar lastActivity: when a stanza last crossed it.
    @ivar stanzasIn: stanzas received on it.
    @ivar stanzasOut: stanzas sent on it.
    @ivar bidi: whether the stream carries stanzas both ways (XEP-0288):
        those of the domain pair it was authenticated for and of the
        inverse pair.
    @ivar id: unique among the links of this process.
    """

    domain: str
    localDomain: str
    direction: Direction
    auth: AuthMethod
    tls: str | None
    certValid: bool
    since: float
    lastActivity: float
    stanzasIn: int = 0
    stanzasOut: int = 0
    bidi: bool = False
    id: int = attrs.field(factory=lambda: next(_linkIds))

    def touch(self, now: float, *, incoming: bool) -> None:
        """
        Count one stanza crossing the link at C{now}.
        """
        self.lastActivity = now
        if incoming:
            self.stanzasIn += 1
        else:
            self.stanzasOut += 1


@attrs.frozen
class StoredItem:
    """
    One published pub-sub item.

    @ivar identifier: the item id.
    @ivar payload: the item's payload element, serialized XML.
    @ivar publisher: the JID that published it.
    @ivar published: when (seconds since the epoch).
    """

    identifier: str
    payload: str
    publisher: str
    published: float


@attrs.frozen
class Subscription:
    """
    One subscription of a JID to a pub-sub node.

    @ivar nodeIdentifier: the node.
    @ivar subscriber: the subscribed JID (bare or full), as given.
    @ivar subscriptionIdentifier: its XEP-0060 subscription id.
    @ivar created: when it was made (seconds since the epoch).
    """

    nodeIdentifier: str
    subscriber: str
    subscriptionIdentifier: str
    created: float


@attrs.frozen
class Publication:
    """
    What one publish changed, read in the transaction that stored it.

    @ivar item: the item as stored.
    @ivar config: the node's configuration.
    @ivar created: whether the publish created the node.
    @ivar subscriptions: the node's subscriptions, oldest first.
    """

    item: StoredItem
    config: Mapping[str, object]
    created: bool
    subscriptions: tuple[Subscription, ...]


@attrs.frozen
class Retraction:
    """
    What one retraction changed, read in the transaction that deleted the
    items.

    @ivar itemIdentifiers: the ids that existed and were deleted, in the
        order asked.
    @ivar subscriptions: the node's subscriptions, oldest first.
    """

    itemIdentifiers: tuple[str, ...]
    subscriptions: tuple[Subscription, ...]


@attrs.frozen
class ConsentState:
    """
    What we know about one peer's consent, for the web API.

    @ivar consents: whether the peer may be named: the last answer, C{True}
        for an allowlisted peer, or L{None} if no answer has arrived yet.
    @ivar checkedAt: when that answer arrived (seconds since the epoch), or
        L{None}.
    @ivar error: why the last check failed (C{"timeout"}, a stanza error
        condition, ...), or L{None} if the peer answered.
    @ivar allowlisted: whether the allowlist makes the peer consent,
        whatever it answers.
    @ivar pending: whether a check is queued or running.
    """

    consents: bool | None
    checkedAt: float | None
    error: str | None
    allowlisted: bool = False
    pending: bool = False


@attrs.frozen
class PublishedServerInfo:
    """
    What this node publishes as XEP-0485 server information, and what it
    knows of each linked peer's consent to be named.

    @ivar domain: the domain the item is about.
    @ivar xml: the stored payload, or L{None} before the first publish.
    @ivar published: when it was stored by this process, or L{None}.
    @ivar remotes: the item's C{(name or None, connection types)} entries,
        or L{None} before the first publish.
    @ivar peers: each linked remote domain, sorted, with its consent state.
    """

    domain: str
    xml: str | None
    published: float | None
    remotes: tuple[tuple[str | None, tuple[str, ...]], ...] | None
    peers: tuple[tuple[str, ConsentState], ...]


# -- change events -------------------------------------------------------------


@attrs.frozen
class ChangeEvent:
    """
    Base of every event on the change feed; observe it to hear them all.
    """


@attrs.frozen
class LinkUp(ChangeEvent):
    """
    A stream to or from C{link.domain} has been authenticated.
    """

    link: Link


@attrs.frozen
class LinkDown(ChangeEvent):
    """
    The stream behind C{link} has ended.
    """

    link: Link


@attrs.frozen
class ConsentChanged(ChangeEvent):
    """
    A check changed whether C{domain} consents to be named (an unknown
    domain counts as not consenting, so a first answer of no is no change).
    """

    domain: str
    consents: bool


@attrs.frozen
class NodeCreated(ChangeEvent):
    """
    A node was created on one of our pub-sub services.

    @ivar service: the pub-sub service's JID.
    @ivar node: the node identifier.
    @ivar config: its configuration.
    """

    service: str
    node: str
    config: Mapping[str, object]


@attrs.frozen
class NodeConfigured(ChangeEvent):
    """
    The configuration of a node of one of our pub-sub services changed.

    @ivar config: the new configuration.
    """

    service: str
    node: str
    config: Mapping[str, object]


@attrs.frozen
class NodeDeleted(ChangeEvent):
    """
    A node of one of our pub-sub services was deleted, with its items and
    subscriptions (each ended subscription also gets a
    L{SubscriptionChanged}, after this event).

    @ivar subscriptions: the subscriptions the node had.
    """

    service: str
    node: str
    subscriptions: tuple[Subscription, ...]


@attrs.frozen
class ItemPublished(ChangeEvent):
    """
    An item was stored on a node of one of our pub-sub services. Everything
    a notifier needs is here, read in the transaction that stored it.

    @ivar service: the pub-sub service's JID.
    @ivar node: the node identifier.
    @ivar item: the item as stored.
    @ivar subscriptions: the node's subscriptions when it was stored.
    @ivar deliverPayload: whether notifications carry the payload (the
        node's C{pubsub#deliver_payloads}).
    """

    service: str
    node: str
    item: StoredItem
    subscriptions: tuple[Subscription, ...] = ()
    deliverPayload: bool = True


@attrs.frozen
class ItemsRetracted(ChangeEvent):
    """
    Items were deleted from a node of one of our pub-sub services.

    @ivar itemIdentifiers: the ids deleted.
    @ivar subscriptions: the node's subscriptions when they were deleted.
    """

    service: str
    node: str
    itemIdentifiers: tuple[str, ...]
    subscriptions: tuple[Subscription, ...] = ()


@attrs.frozen
class SubscriptionChanged(ChangeEvent):
    """
    A JID subscribed to or unsubscribed from a node of one of our pub-sub
    services (a deleted node ends all its subscriptions: one event each).
    Subscribing again with a subscription that exists is no change.

    @ivar subscribed: C{True} for a new subscription, C{False} when it ended.
    """

    service: str
    node: str
    subscriber: str
    subscribed: bool


# -- the graph store -----------------------------------------------------------


#: Which remote domains the graph names: those that consent by our own
#: check, or every name a publisher reports.
NamePolicy = Literal["consented", "reported"]


@attrs.frozen
class DiscoveryStep:
    """
    One step of the discovery of a domain (XEP-0485 section 3) and its
    result, in words a server admin can act on.

    @ivar step: what was done (C{"disco#info"}, C{"disco#items"},
        C{"items pubsub.example.org node serverinfo"}, C{"version"}, ...).
    @ivar ok: whether it gave what discovery needed.
    @ivar detail: what came back (C{"answered without urn:xmpp:serverinfo:0"},
        C{"remote-server-not-found"}, ...).
    """

    step: str
    ok: bool
    detail: str


def _steps(steps: Iterable[DiscoveryStep]) -> tuple[DiscoveryStep, ...]:
    return tuple(steps)


@attrs.frozen
class DomainFacts:
    """
    What one fetch of a domain found out about it (the crawler's words).
    Equal facts on a later fetch are no change.

    @ivar status: a short code for the outcome (C{"publishes"},
        C{"no-consent"}, C{"unreachable"}, ...; the crawler's vocabulary).
    @ivar reachable: whether the domain answered us at all.
    @ivar error: why it is not on the graph, in plain words a server
        admin can act on, or L{None}.
    @ivar publishes: whether it publishes XEP-0485 server information, or
        L{None} if unknown.
    @ivar consents: whether its disco#info lists C{urn:xmpp:serverinfo:0}
        (consent to be named), or L{None} if unknown.
    @ivar softwareName: its XEP-0092 software name, or L{None}.
    @ivar softwareVersion: its XEP-0092 software version, or L{None}.
    @ivar tlsVersion: the TLS version our stream to it used (C{"TLSv1.3"}),
        or L{None}.
    @ivar auth: how our stream authenticated (C{"sasl-external"},
        C{"dialback"}), or L{None}.
    @ivar certValid: whether its certificate was valid for it, or L{None}.
    @ivar directTLS: whether it offers XEP-0368 direct TLS, or L{None}.
    @ivar steps: each discovery step and its result, in order (no times in
        them, so that an unchanged refresh gives equal facts).
    """

    status: str
    reachable: bool
    error: str | None = None
    publishes: bool | None = None
    consents: bool | None = None
    softwareName: str | None = None
    softwareVersion: str | None = None
    tlsVersion: str | None = None
    auth: str | None = None
    certValid: bool | None = None
    directTLS: bool | None = None
    steps: tuple[DiscoveryStep, ...] = attrs.field(default=(), converter=_steps)


@attrs.frozen
class DomainRecord:
    """
    Everything the graph store knows about one domain now.

    @ivar domain: the domain (normalised).
    @ivar firstSeen: when it was first named or fetched.
    @ivar lastSeen: when it last answered, reported, or was named in a
        report that was confirmed.
    @ivar lastFetch: when we last tried to fetch it, or L{None}.
    @ivar facts: what the last fetch found, or L{None} if never fetched.
    @ivar factsSince: since when the facts (and C{stale}) are as they are,
        or L{None}.
    @ivar stale: whether it has not been refreshed within the window and
        so is out of the current graph.
    @ivar reportChanged: when its report last changed, or L{None} if it
        never reported.
    @ivar reportConfirmed: when its report was last stored (changed or
        not), or L{None}.
    """

    domain: str
    firstSeen: float
    lastSeen: float
    lastFetch: float | None
    facts: DomainFacts | None
    factsSince: float | None
    stale: bool
    reportChanged: float | None = None
    reportConfirmed: float | None = None


@attrs.frozen
class ReportedLink:
    """
    One link one reporter reports, valid over an interval.

    @ivar reporter: the domain whose XEP-0485 item reports it.
    @ivar remote: the named peer, or L{None} for an anonymous one.
    @ivar slot: 0 for a named peer; for an anonymous one, its number among
        the reporter's anonymous peers, stable while it is reported
        unchanged (never reused).
    @ivar directions: the connection types (C{"incoming"}, C{"outgoing"},
        C{"bidi"}) as the reporter sees them, sorted, each once; empty when
        it did not say.
    @ivar validFrom: since when it is reported so.
    @ivar validTo: until when (exclusive), or L{None} while it is current.
    """

    reporter: str
    remote: str | None
    slot: int
    directions: tuple[str, ...]
    validFrom: float
    validTo: float | None = None


@attrs.frozen
class GraphDomain:
    """
    One domain in a L{GraphSnapshot}, as it was at the snapshot's time.

    @ivar domain: the domain.
    @ivar firstSeen: when it was first named or fetched.
    @ivar lastSeen: when it was last seen (never after the snapshot's time).
    @ivar publishes: whether it publishes, or L{None} if unknown.
    @ivar consents: whether it consents to be named, or L{None} if unknown.
    @ivar stale: whether it was stale.
    @ivar status: the status code of its facts, or L{None}.
    """

    domain: str
    firstSeen: float
    lastSeen: float
    publishes: bool | None
    consents: bool | None
    stale: bool
    status: str | None = None


@attrs.frozen
class GraphSnapshot:
    """
    The stored graph at one time, before any view rule: every known domain
    and every reported link valid then.

    @ivar at: the time it shows.
    @ivar domains: the domains first seen by then, sorted by name.
    @ivar links: the links reported then, sorted by reporter, remote, slot.
    @ivar lastChange: the time of the newest change up to C{at}, or L{None}.
    @ivar lastEventId: the id of the newest event up to C{at} (0 for none).
    """

    at: float
    domains: tuple[GraphDomain, ...]
    links: tuple[ReportedLink, ...]
    lastChange: float | None
    lastEventId: int


@attrs.frozen
class GraphEvent:
    """
    One committed change of the graph store.

    @ivar id: its number; ids increase in commit order.
    @ivar at: when it was stored.
    @ivar kind: C{"domain-added"}, C{"domain-changed"}, C{"link-added"},
        C{"link-changed"} or C{"link-removed"}.
    @ivar domain: the domain it is about (for a link, its reporter).
    @ivar peer: for a link to a named peer, that peer; else L{None}.
    @ivar data: the new values (JSON-compatible).
    """

    id: int
    at: float
    kind: str
    domain: str
    peer: str | None
    data: Mapping[str, object]


@attrs.frozen
class ReportOutcome:
    """
    What storing one report changed.

    @ivar added: links that were not reported before.
    @ivar changed: links whose directions changed.
    @ivar removed: links no longer reported.
    @ivar newDomains: domains the store had not heard of.
    @ivar events: how many events the change wrote (0: nothing changed but
        a timestamp).
    """

    added: int
    changed: int
    removed: int
    newDomains: int
    events: int


@attrs.frozen
class GraphCounts:
    """
    Counts over the current graph store, for statistics.

    @ivar domains: domains known (named ones).
    @ivar publishing: domains whose current facts say they publish.
    @ivar stale: domains currently stale.
    @ivar reporters: domains with a stored report.
    @ivar namedLinks: current links to named peers.
    @ivar anonymousLinks: current links to anonymous peers.
    @ivar confirmedPairs: pairs of domains that currently report each
        other.
    @ivar lastEventId: the id of the newest event (0 for none).
    """

    domains: int
    publishing: int
    stale: int
    reporters: int
    namedLinks: int
    anonymousLinks: int
    confirmedPairs: int
    lastEventId: int


@attrs.frozen
class DomainProfile:
    """
    What the latest fetch of one current, not stale domain told about its
    server: the software it names and what our stream to it saw (the
    figures of C{/api/stats}).

    @ivar domain: the domain (normalised).
    @ivar softwareName: its XEP-0092 software name, or L{None}.
    @ivar softwareVersion: its XEP-0092 software version, or L{None}.
    @ivar tlsVersion: the TLS version of our stream to it, or L{None}.
    @ivar auth: how that stream authenticated (C{"sasl-external"},
        C{"dialback"}), or L{None} if we had no stream.
    @ivar certValid: whether its certificate was valid for it, or L{None}.
    @ivar directTLS: whether it offers XEP-0368 direct TLS, or L{None}.
    """

    domain: str
    softwareName: str | None = None
    softwareVersion: str | None = None
    tlsVersion: str | None = None
    auth: str | None = None
    certValid: bool | None = None
    directTLS: bool | None = None


@attrs.frozen
class GraphChanged(ChangeEvent):
    """
    The graph store committed changes: its events C{firstEventId} to
    C{lastEventId} (read them with C{IGraphStore.events}).

    @ivar domains: the domains the changes are about (reporters and
        domains whose facts changed), sorted.
    """

    firstEventId: int
    lastEventId: int
    domains: tuple[str, ...]


#: How the crawler learnt of a domain.
CrawlSource = Literal["seed", "link", "report", "submission", "store"]


@attrs.frozen
class CrawlQueue:
    """
    What the crawl queue holds now (L{ICrawler.queue<xmppnetgraph.interfaces.ICrawler.queue>}).

    @ivar pending: domains due for a fetch that has not started.
    @ivar inFlight: fetches running.
    @ivar scheduled: domains whose next fetch is due later.
    """

    pending: int
    inFlight: int
    scheduled: int


@attrs.frozen
class CrawlStatus:
    """
    Where the crawler stands with one domain.

    @ivar domain: the domain.
    @ivar state: C{"queued"} (waiting for its first or next fetch soon),
        C{"fetching"}, C{"waiting"} (fetched; next fetch at L{nextFetch}),
        C{"backoff"} (the last fetch failed; retried at L{nextFetch}), or
        C{"excluded"} (on the exclusion list: never crawled).
    @ivar source: how the crawler learnt of it first.
    @ivar nextFetch: when it is fetched next, or L{None}.
    @ivar lastFetch: when the crawler last finished fetching it (in this
        run), or L{None}.
    @ivar failures: failed fetches in a row.
    @ivar subscription: the state of our subscription to its node:
        C{"subscribed"}, C{"pending"}, C{"refused: <condition>"}, or
        L{None} (no node known).
    @ivar service: the pub-sub service of its node, or L{None}.
    @ivar node: its node, or L{None}.
    @ivar submitted: whether someone submitted it (the API then shows what
        we found even while it may not be named).
    """

    domain: str
    state: str
    source: CrawlSource
    nextFetch: float | None = None
    lastFetch: float | None = None
    failures: int = 0
    subscription: str | None = None
    service: str | None = None
    node: str | None = None
    submitted: bool = False


@attrs.frozen
class SubmitOutcome:
    """
    What a submission of a domain to the crawler will do.

    @ivar domain: the domain, normalised.
    @ivar accepted: whether it is (or already was) queued for a crawl.
    @ivar message: what will happen, in words for the submitter.
    @ivar status: where the crawler stands with it now, or L{None}.
    """

    domain: str
    accepted: bool
    message: str
    status: CrawlStatus | None = None
