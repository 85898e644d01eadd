# -*- test-case-name: tests.test_graphview -*-
"""
The graph view rules: how a stored L{GraphSnapshot} becomes the nodes and
edges that C{/api/graph} and C{/data.json} show. One pure function,
L{viewGraph}, so that every endpoint applies the same rules:

  - stale domains leave the graph (with their links), unless asked;
  - by default (C{namePolicy="consented"}) a domain is shown by name only
    if our own check found that it consents (lists
    C{urn:xmpp:serverinfo:0}); a link to one that does not is shown as an
    anonymous peer of its reporter;
  - well-known service subdomains (C{conference.}, C{muc.}, C{upload.}, ...)
    are folded into their parent when the parent is known, unless
    C{fold=False};
  - self-links (also those that folding makes) are dropped;
  - each anonymous peer of each reporter is its own node, with an opaque id
    that is stable while the store keeps its slot, unless
    C{combineAnonymous} makes them one node (or C{skipAnonymous} drops
    them);
  - the two reports of a pair of domains are one edge, confirmed when both
    ends report each other.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable

import attrs

from xmppnetgraph.model import GraphDomain, GraphSnapshot, NamePolicy

#: First labels of service subdomains that are folded into their parent.
FOLDED_PREFIXES: frozenset[str] = frozenset(
    {
        "conference",
        "muc",
        "chat",
        "rooms",
        "groupchat",
        "pubsub",
        "upload",
        "httpupload",
        "proxy",
        "proxy65",
        "share",
        "files",
    }
)

#: The id of the one node of all anonymous peers (C{combineAnonymous}).
COMBINED_ANONYMOUS = "anonymous"

# How each side of a link sees its directions.
_FLIPPED = {"incoming": "outgoing", "outgoing": "incoming", "bidi": "bidi"}


@attrs.frozen
class ViewNode:
    """
    One node of the view.

    @ivar id: its id: the domain, or an opaque id for an anonymous peer.
    @ivar label: the domain, or L{None} for an anonymous peer.
    @ivar publishes: whether it (or a domain folded into it) publishes, or
        L{None} if unknown.
    @ivar firstSeen: when it was first seen.
    @ivar lastSeen: when it was last seen.
    @ivar stale: whether it is stale (only with C{includeStale}).
    @ivar members: the domains folded into it (not itself), sorted.
    @ivar anonymous: how many anonymous peers it stands for (0 for a named
        domain).
    """

    id: str
    label: str | None
    publishes: bool | None
    firstSeen: float
    lastSeen: float
    stale: bool = False
    members: tuple[str, ...] = ()
    anonymous: int = 0


@attrs.frozen
class ViewEdge:
    """
    One edge of the view.

    @ivar source: the id of one end (the reporter, or the smaller id when
        both ends report).
    @ivar target: the id of the other end.
    @ivar directions: the connection types as C{source} sees them, sorted.
    @ivar confirmed: whether both ends report each other.
    """

    source: str
    target: str
    directions: tuple[str, ...]
    confirmed: bool


@attrs.frozen
class GraphView:
    """
    The graph as shown.

    @ivar at: the time it shows.
    @ivar nodes: its nodes, sorted by id.
    @ivar edges: its edges, sorted by source and target.
    @ivar lastChange: the time of the store's newest change up to C{at}.
    @ivar lastEventId: the store's newest event id up to C{at}.
    """

    at: float
    nodes: tuple[ViewNode, ...]
    edges: tuple[ViewEdge, ...]
    lastChange: float | None
    lastEventId: int


def anonymousId(key: bytes, reporter: str, peer: str) -> str:
    """
    @param key: the secret that keeps ids of hidden named peers from being
        guessed (any fixed value keeps ids stable).
    @param reporter: the reporting domain.
    @param peer: which of its peers (C{"#<slot>"} or a hidden name).
    @return: an opaque, stable node id for an anonymous peer.
    """
    digest = hmac.new(key, f"{reporter}\0{peer}".encode(), hashlib.sha256).hexdigest()
    return f"anon-{digest[:20]}"


def serviceParent(domain: str, prefixes: frozenset[str] = FOLDED_PREFIXES) -> str | None:
    """
    @return: the domain C{domain} is a service subdomain of (C{a.example}
        for C{conference.a.example}), or L{None} if its first label is not
        a service's.
    """
    label, dot, rest = domain.partition(".")
    return rest if dot and label in prefixes else None


def _parent(domain: str, known: set[str], prefixes: frozenset[str]) -> str:
    """
    @return: the known domain that C{domain} folds into (itself if none).
    """
    while True:
        parent = serviceParent(domain, prefixes)
        if parent is None or parent not in known:
            return domain
        domain = parent


def _any(values: Iterable[bool | None]) -> bool | None:
    """
    @return: C{True} if any is, else C{False} if any is, else L{None}.
    """
    found: bool | None = None
    for value in values:
        if value:
            return True
        if value is not None:
            found = False
    return found


def viewGraph(
    snapshot: GraphSnapshot,
    *,
    fold: bool = True,
    combineAnonymous: bool = False,
    skipAnonymous: bool = False,
    includeStale: bool = False,
    namePolicy: NamePolicy = "consented",
    focus: str | None = None,
    anonymousKey: bytes = b"",
    foldPrefixes: frozenset[str] = FOLDED_PREFIXES,
) -> GraphView:
    """
    Apply the view rules (see the module docstring) to C{snapshot}.

    @param fold: fold service subdomains into their parent.
    @param combineAnonymous: show all anonymous peers as one node,
        L{COMBINED_ANONYMOUS}.
    @param skipAnonymous: leave anonymous peers out.
    @param includeStale: keep stale domains (marked C{stale}).
    @param namePolicy: C{"consented"} names only domains that consent by
        our own check; C{"reported"} names every domain a report names.
    @param focus: a domain: show only it and its neighbours (an unknown one
        gives an empty view).
    @param anonymousKey: see L{anonymousId}.
    @param foldPrefixes: the first labels that make a service subdomain.
    @return: the view.
    """
    domains: dict[str, GraphDomain] = {}
    staleNames = {domain.domain for domain in snapshot.domains if domain.stale}
    for domain in snapshot.domains:
        if domain.stale and not includeStale:
            continue
        if namePolicy == "consented" and domain.consents is not True:
            continue
        domains[domain.domain] = domain
    known = set(domains)
    canonical = {name: (_parent(name, known, foldPrefixes) if fold else name) for name in domains}

    members: dict[str, list[GraphDomain]] = defaultdict(list)
    for name, domain in domains.items():
        members[canonical[name]].append(domain)
    nodes: dict[str, ViewNode] = {}
    for name, group in members.items():
        nodes[name] = ViewNode(
            id=name,
            label=name,
            publishes=_any(d.publishes for d in group),
            firstSeen=min(d.firstSeen for d in group),
            lastSeen=max(d.lastSeen for d in group),
            stale=domains[name].stale,
            members=tuple(sorted(d.domain for d in group if d.domain != name)),
        )

    # reported[(a, b)]: the directions a reports for b (a and b node ids).
    reported: dict[tuple[str, str], set[str]] = defaultdict(set)
    anonymous: dict[str, tuple[float, float, int]] = {}
    for link in snapshot.links:
        source = canonical.get(link.reporter)
        if source is None:
            continue
        if link.remote is not None and link.remote in domains:
            target = canonical[link.remote]
            if target == source:
                continue
            reported[(source, target)].update(link.directions)
            continue
        if link.remote is not None and link.remote in staleNames and not includeStale:
            continue
        # An anonymous peer, or a named one not shown by name.
        if skipAnonymous:
            continue
        peer = f"#{link.slot}" if link.remote is None else link.remote
        target = (
            COMBINED_ANONYMOUS
            if combineAnonymous
            else anonymousId(anonymousKey, link.reporter, peer)
        )
        lastSeen = nodes[source].lastSeen
        first, last, count = anonymous.get(target, (link.validFrom, lastSeen, 0))
        anonymous[target] = (min(first, link.validFrom), max(last, lastSeen), count + 1)
        reported[(source, target)].update(link.directions)
    for target, (first, last, count) in anonymous.items():
        nodes[target] = ViewNode(target, None, None, first, last, anonymous=count)

    edges: list[ViewEdge] = []
    for (a, b), directions in reported.items():
        back = reported.get((b, a))
        if back is not None and b < a:
            continue
        seen = set(directions)
        if back is not None:
            seen.update(_FLIPPED[kind] for kind in back)
        edges.append(ViewEdge(a, b, tuple(sorted(seen)), back is not None))

    if focus is not None:
        centre = canonical.get(focus.lower())
        keep = set() if centre is None else {centre}
        for edge in edges:
            if centre in (edge.source, edge.target):
                keep.update((edge.source, edge.target))
        edges = [e for e in edges if e.source in keep and e.target in keep]
        nodes = {id_: node for id_, node in nodes.items() if id_ in keep}

    return GraphView(
        snapshot.at,
        tuple(nodes[id_] for id_ in sorted(nodes)),
        tuple(sorted(edges, key=lambda e: (e.source, e.target))),
        snapshot.lastChange,
        snapshot.lastEventId,
    )
