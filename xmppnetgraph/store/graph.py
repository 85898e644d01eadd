# -*- test-case-name: tests.test_store_graph -*-
"""
The aggregator's graph in the node's database (L{IGraphStore}).

History is kept as intervals (see C{schema/002_graph.sql}): a change closes
the current row (C{valid_to}) and opens a new one; an unchanged refresh only
moves a timestamp, so storage grows with changes, not with crawls. Each
writing method is one transaction that first updates the event counter row
(which makes graph writers take turns, so event ids increase in commit
order), diffs the new state against the stored one, writes the changes and
one event per change, and, after the commit, emits one L{GraphChanged} on
the change feed.

Bulk inserts go through C{executemany} (pipelined by psycopg, parsed once
by both drivers) and bulk lookups and closes through C{IN} lists of
L{_CHUNK} names, so that a report of 100,000 entries costs no 100,000
round trips.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from zope.interface import implementer

from xmppnetgraph.error import InvalidDomainName
from xmppnetgraph.interfaces import IChangeFeed, IGraphStore
from xmppnetgraph.model import (
    DiscoveryStep,
    DomainFacts,
    DomainProfile,
    DomainRecord,
    GraphChanged,
    GraphCounts,
    GraphDomain,
    GraphEvent,
    GraphSnapshot,
    ReportedLink,
    ReportOutcome,
)
from xmppnetgraph.names import normalizeDomain
from xmppnetgraph.store.database import currentTime

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from xmppnetgraph.serverinfo.payload import RemoteDomain
    from xmppnetgraph.store.database import Cursor, Database

_T = TypeVar("_T")

#: Rows per multi-row statement (SQLite allows 32,766 placeholders).
_CHUNK = 500

#: The columns of C{graph_domain_facts} that hold L{DomainFacts}, in the
#: order of L{_factsRow}.
_FACT_COLUMNS = (
    "reachable, status, error, publishes, consents, software_name, software_version,"
    " tls_version, auth, cert_valid, direct_tls, steps"
)

# What an entry of a report is in the diff: the named peer ("" for an
# anonymous one) and its directions, as stored.
_Entry = tuple[str, str]


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    """
    @return: C{items} in slices of at most C{size}.
    """
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _bool(value: object) -> bool | None:
    """
    @return: a stored 0/1/NULL as a boolean or L{None}.
    """
    return None if value is None else bool(value)


def _int(value: bool | None) -> int | None:
    """
    @return: a boolean or L{None} as stored (0/1/NULL).
    """
    return None if value is None else int(value)


def _directionsText(directions: Iterable[str]) -> str:
    """
    @return: connection types as stored: sorted, each once, comma-separated.
    """
    return ",".join(sorted(set(directions)))


def _directionsTuple(text: str) -> tuple[str, ...]:
    """
    @return: stored connection types as a tuple.
    """
    return tuple(text.split(",")) if text else ()


def _checkDomain(name: str, what: str) -> str:
    """
    @return: C{name}, normalised.
    @raise InvalidDomainName: if it is not a valid domain name.
    """
    try:
        return normalizeDomain(name)
    except ValueError as e:
        raise InvalidDomainName(f"{what}: {e}") from None


def _lookupName(name: str) -> str | None:
    """
    @return: C{name} normalised, or L{None} if it is no valid domain name
        (and so cannot be in the store).
    """
    try:
        return normalizeDomain(name)
    except ValueError:
        return None


def _stepsText(steps: Sequence[DiscoveryStep]) -> str | None:
    """
    @return: C{steps} as JSON, or L{None} for none.
    """
    if not steps:
        return None
    return json.dumps([[step.step, step.ok, step.detail] for step in steps], ensure_ascii=False)


def _stepsTuple(text: str | None) -> tuple[DiscoveryStep, ...]:
    """
    @return: the steps L{_stepsText} wrote.
    """
    if not text:
        return ()
    return tuple(DiscoveryStep(str(a), bool(b), str(c)) for a, b, c in json.loads(text))


def _factsRow(facts: DomainFacts) -> tuple[object, ...]:
    """
    @return: C{facts} as the values of L{_FACT_COLUMNS}.
    """
    return (
        int(facts.reachable),
        facts.status,
        facts.error,
        _int(facts.publishes),
        _int(facts.consents),
        facts.softwareName,
        facts.softwareVersion,
        facts.tlsVersion,
        facts.auth,
        _int(facts.certValid),
        _int(facts.directTLS),
        _stepsText(facts.steps),
    )


def _factsFromRow(row: Sequence[Any]) -> DomainFacts | None:
    """
    @param row: the values of L{_FACT_COLUMNS}.
    @return: the facts, or L{None} for a domain never fetched.
    """
    if row[1] is None:
        return None
    return DomainFacts(
        status=row[1],
        reachable=bool(row[0]),
        error=row[2],
        publishes=_bool(row[3]),
        consents=_bool(row[4]),
        softwareName=row[5],
        softwareVersion=row[6],
        tlsVersion=row[7],
        auth=row[8],
        certValid=_bool(row[9]),
        directTLS=_bool(row[10]),
        steps=_stepsTuple(row[11]),
    )


def _factsData(facts: DomainFacts | None, stale: bool) -> dict[str, object]:
    """
    @return: the event data of a domain's new facts.
    """
    return {"facts": None if facts is None else attrs.asdict(facts), "stale": stale}


@attrs.define
class _Changes:
    """
    The events one transaction writes, collected until it ends.
    """

    now: float
    events: list[tuple[str, str, str | None, dict[str, object]]] = attrs.Factory(list)
    domains: set[str] = attrs.Factory(set)

    def add(self, kind: str, domain: str, peer: str | None, data: dict[str, object]) -> None:
        """
        Note one change.
        """
        self.events.append((kind, domain, peer, data))
        self.domains.add(domain)


@attrs.frozen
class _Written:
    """
    The result of a writing interaction and the event ids it wrote.
    """

    result: object
    firstEventId: int
    lastEventId: int
    domains: tuple[str, ...]


def _lock(cursor: Cursor) -> None:
    """
    Take the graph's write lock (the event counter row) for the rest of the
    transaction: graph writers take turns, so event ids are in commit order.
    """
    cursor.execute("UPDATE graph_counters SET value = value WHERE name = 'events'")


def _writeEvents(cursor: Cursor, changes: _Changes) -> tuple[int, int]:
    """
    Number and store the collected events.

    @return: the first and last id written (C{(0, 0)} when there are none).
    """
    if not changes.events:
        return (0, 0)
    row = cursor.execute("SELECT value FROM graph_counters WHERE name = 'events'").fetchone()
    assert row is not None
    first = int(row[0]) + 1
    cursor.execute(
        "UPDATE graph_counters SET value = value + ? WHERE name = 'events'",
        (len(changes.events),),
    )
    rows = [
        (first + n, changes.now, kind, domain, peer, json.dumps(data, sort_keys=True))
        for n, (kind, domain, peer, data) in enumerate(changes.events)
    ]
    cursor.executemany(
        "INSERT INTO graph_events (id, at, kind, domain, peer, data) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    return (first, first + len(rows) - 1)


def _written(cursor: Cursor, changes: _Changes, result: object) -> _Written:
    """
    Write the collected events and wrap C{result} for the store.
    """
    first, last = _writeEvents(cursor, changes)
    return _Written(result, first, last, tuple(sorted(changes.domains)))


def _addDomains(cursor: Cursor, domains: Sequence[str], changes: _Changes) -> int:
    """
    Add the domains the store does not know (first and last seen now),
    with a C{domain-added} event each.

    @return: how many were new.
    """
    known: set[str] = set()
    for chunk in _chunks(domains):
        rows = cursor.execute(
            "SELECT domain FROM graph_domains WHERE domain IN ("
            + ", ".join("?" * len(chunk))
            + ")",
            chunk,
        ).fetchall()
        known.update(row[0] for row in rows)
    new = [domain for domain in dict.fromkeys(domains) if domain not in known]
    cursor.executemany(
        "INSERT INTO graph_domains (domain, first_seen, last_seen) VALUES (?, ?, ?)",
        [(domain, changes.now, changes.now) for domain in new],
    )
    for domain in new:
        changes.add("domain-added", domain, None, {"firstSeen": changes.now})
    return len(new)


def _currentFacts(cursor: Cursor, domain: str) -> tuple[DomainFacts | None, bool] | None:
    """
    @return: the domain's current facts and staleness, or L{None} if it
        has no facts row.
    """
    row = cursor.execute(
        f"SELECT {_FACT_COLUMNS}, stale FROM graph_domain_facts"
        " WHERE domain = ? AND valid_to IS NULL",
        (domain,),
    ).fetchone()
    if row is None:
        return None
    return (_factsFromRow(row), bool(row[12]))


def _setFacts(
    cursor: Cursor, domain: str, facts: DomainFacts | None, stale: bool, changes: _Changes
) -> bool:
    """
    Make C{facts} and C{stale} the domain's current facts: close the
    current row and open a new one, unless they are the same.

    @return: whether they changed.
    """
    current = _currentFacts(cursor, domain)
    if current == (facts, stale):
        return False
    now = changes.now
    if current is not None:
        cursor.execute(
            "UPDATE graph_domain_facts SET valid_to = ? WHERE domain = ? AND valid_to IS NULL",
            (now, domain),
        )
        # An interval that began in this instant never showed: drop it, so
        # that the new one can take its key.
        cursor.execute(
            "DELETE FROM graph_domain_facts WHERE domain = ? AND valid_from = ? AND valid_to = ?",
            (domain, now, now),
        )
    values = (None,) * 12 if facts is None else _factsRow(facts)
    cursor.execute(
        f"INSERT INTO graph_domain_facts (domain, valid_from, valid_to, {_FACT_COLUMNS}, stale)"
        " VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (domain, now, *values, int(stale)),
    )
    changes.add("domain-changed", domain, None, _factsData(facts, stale))
    return True


def _unstale(cursor: Cursor, domains: Iterable[str], changes: _Changes) -> None:
    """
    Make those of C{domains} that are stale fresh again (facts kept).
    """
    for domain in domains:
        current = _currentFacts(cursor, domain)
        if current is not None and current[1]:
            _setFacts(cursor, domain, current[0], False, changes)


def _matchAnonymous(
    old: dict[int, str], new: list[str], nextSlot: int
) -> tuple[dict[int, str], list[int], dict[int, str], int]:
    """
    Give the anonymous entries of a new report their slots: an entry with
    the same directions as a current slot keeps it (lowest slot first);
    the remaining ones take the remaining current slots in order (their
    directions changed); any more get new slots.

    @param old: the current slots and their directions.
    @param new: the directions of each anonymous entry of the new report.
    @param nextSlot: the first slot never used by this reporter.
    @return: the slots whose directions changed (new directions), the slots
        no longer reported, the new slots (directions), and the next free
        slot.
    """
    free: dict[str, list[int]] = defaultdict(list)
    for slot in sorted(old):
        free[old[slot]].append(slot)
    unmatched: list[str] = []
    for directions in new:
        slots = free.get(directions)
        if slots:
            slots.pop(0)
        else:
            unmatched.append(directions)
    left = sorted(slot for slots in free.values() for slot in slots)
    unmatched.sort()
    changed = dict(zip(left, unmatched, strict=False))
    removed = left[len(unmatched) :]
    added: dict[int, str] = {}
    for directions in unmatched[len(left) :]:
        added[nextSlot] = directions
        nextSlot += 1
    return changed, removed, added, nextSlot


def _linkData(remote: str, slot: int, directions: str | None) -> dict[str, object]:
    """
    @return: the event data of a link.
    """
    data: dict[str, object] = {"remote": remote or None, "slot": slot if not remote else None}
    if directions is not None:
        data["directions"] = list(_directionsTuple(directions))
    return data


def _closeLinks(cursor: Cursor, reporter: str, keys: Sequence[tuple[str, int]], now: float) -> None:
    """
    Close the current intervals of C{reporter}'s links C{keys}
    (C{(remote, slot)}); drop those that began now.
    """
    named = [remote for remote, _ in keys if remote]
    slots = [slot for remote, slot in keys if not remote]
    for column, values, extra in (("remote", named, ""), ("slot", slots, " AND remote = ''")):
        for chunk in _chunks(values):
            where = f"reporter = ? AND {column} IN ({', '.join('?' * len(chunk))}){extra}"
            cursor.execute(
                f"UPDATE graph_links SET valid_to = ? WHERE {where} AND valid_to IS NULL",
                (now, reporter, *chunk),
            )
            cursor.execute(
                f"DELETE FROM graph_links WHERE {where} AND valid_from = ? AND valid_to = ?",
                (reporter, *chunk, now, now),
            )


def _openLinks(
    cursor: Cursor, reporter: str, rows: Sequence[tuple[str, int, str]], now: float
) -> None:
    """
    Open intervals for C{reporter}'s links C{rows} (C{(remote, slot,
    directions)}).
    """
    cursor.executemany(
        "INSERT INTO graph_links (reporter, remote, slot, directions, valid_from)"
        " VALUES (?, ?, ?, ?, ?)",
        [(reporter, remote, slot, dirs, now) for remote, slot, dirs in rows],
    )


def _storeReport(
    cursor: Cursor, reporter: str, remotes: list[RemoteDomain], now: float
) -> _Written:
    """
    Validate and store one report (see L{GraphStore.storeReport}).

    @raise InvalidDomainName: before anything is written.
    """
    reporter = _checkDomain(reporter, "the reporter")
    named: dict[str, set[str]] = {}
    anonymous: list[str] = []
    for remote in remotes:
        if remote.name is None:
            anonymous.append(_directionsText(remote.connections))
        else:
            name = _checkDomain(remote.name, f"a remote domain reported by {reporter}")
            named.setdefault(name, set()).update(remote.connections)
    newNamed = {name: _directionsText(directions) for name, directions in named.items()}

    _lock(cursor)
    changes = _Changes(now)
    newDomains = _addDomains(cursor, [reporter], changes)
    row = cursor.execute(
        "SELECT next_slot FROM graph_reports WHERE reporter = ?", (reporter,)
    ).fetchone()
    if row is None:
        cursor.execute(
            "INSERT INTO graph_reports"
            " (reporter, first_reported, last_changed, last_confirmed, next_slot)"
            " VALUES (?, ?, ?, ?, 1)",
            (reporter, now, now, now),
        )
        nextSlot = 1
    else:
        nextSlot = int(row[0])
    oldNamed: dict[str, str] = {}
    oldAnonymous: dict[int, str] = {}
    for remote, slot, directions in cursor.execute(
        "SELECT remote, slot, directions FROM graph_links WHERE reporter = ? AND valid_to IS NULL",
        (reporter,),
    ).fetchall():
        if remote:
            oldNamed[remote] = directions
        else:
            oldAnonymous[int(slot)] = directions

    close: list[tuple[str, int]] = []
    open_: list[tuple[str, int, str]] = []
    added = changed = removed = 0
    for name, directions in oldNamed.items():
        if name not in newNamed:
            close.append((name, 0))
            removed += 1
            changes.add("link-removed", reporter, name, _linkData(name, 0, None))
        elif newNamed[name] != directions:
            close.append((name, 0))
            open_.append((name, 0, newNamed[name]))
            changed += 1
            changes.add("link-changed", reporter, name, _linkData(name, 0, newNamed[name]))
    newPeers = [name for name in newNamed if name not in oldNamed]
    newDomains += _addDomains(cursor, newPeers, changes)
    for name in newPeers:
        open_.append((name, 0, newNamed[name]))
        added += 1
        changes.add("link-added", reporter, name, _linkData(name, 0, newNamed[name]))
    slotsChanged, slotsRemoved, slotsAdded, nextSlot = _matchAnonymous(
        oldAnonymous, anonymous, nextSlot
    )
    for slot, directions in slotsChanged.items():
        close.append(("", slot))
        open_.append(("", slot, directions))
        changed += 1
        changes.add("link-changed", reporter, None, _linkData("", slot, directions))
    for slot in slotsRemoved:
        close.append(("", slot))
        removed += 1
        changes.add("link-removed", reporter, None, _linkData("", slot, None))
    for slot, directions in slotsAdded.items():
        open_.append(("", slot, directions))
        added += 1
        changes.add("link-added", reporter, None, _linkData("", slot, directions))

    _closeLinks(cursor, reporter, close, now)
    _openLinks(cursor, reporter, open_, now)
    if close or open_:
        cursor.execute(
            "UPDATE graph_reports SET last_changed = ?, last_confirmed = ?, next_slot = ?"
            " WHERE reporter = ?",
            (now, now, nextSlot, reporter),
        )
    elif row is not None:
        cursor.execute(
            "UPDATE graph_reports SET last_confirmed = ? WHERE reporter = ?", (now, reporter)
        )
    # A confirmed report makes its reporter and the peers it names fresh.
    staleNamed = cursor.execute(
        "SELECT f.domain FROM graph_domain_facts f JOIN graph_links l ON l.remote = f.domain"
        " WHERE l.reporter = ? AND l.valid_to IS NULL AND f.valid_to IS NULL AND f.stale = 1",
        (reporter,),
    ).fetchall()
    _unstale(cursor, [reporter, *sorted(row[0] for row in staleNamed)], changes)
    outcome = ReportOutcome(added, changed, removed, newDomains, len(changes.events))
    return _written(cursor, changes, outcome)


def _recordFetch(cursor: Cursor, domain: str, facts: DomainFacts, now: float) -> _Written:
    """
    Record one fetch of C{domain} (see L{GraphStore.recordFetch}).

    @raise InvalidDomainName: before anything is written.
    """
    domain = _checkDomain(domain, "the fetched domain")
    _lock(cursor)
    changes = _Changes(now)
    _addDomains(cursor, [domain], changes)
    if facts.reachable:
        cursor.execute(
            "UPDATE graph_domains SET last_fetch = ?, last_seen = ? WHERE domain = ?",
            (now, now, domain),
        )
    else:
        cursor.execute("UPDATE graph_domains SET last_fetch = ? WHERE domain = ?", (now, domain))
    changed = _setFacts(cursor, domain, facts, False, changes)
    return _written(cursor, changes, changed)


def _markStale(cursor: Cursor, cutoff: float, now: float) -> _Written:
    """
    Mark stale the domains not seen since C{cutoff} (see
    L{GraphStore.markStale}).
    """
    _lock(cursor)
    changes = _Changes(now)
    rows = cursor.execute(
        "SELECT d.domain FROM graph_domains d"
        " LEFT JOIN graph_domain_facts f ON f.domain = d.domain AND f.valid_to IS NULL"
        " LEFT JOIN graph_reports r ON r.reporter = d.domain"
        " WHERE COALESCE(f.stale, 0) = 0 AND d.last_seen < ?"
        " AND COALESCE(r.last_confirmed, d.last_seen) < ?"
        " AND NOT EXISTS (SELECT 1 FROM graph_links l JOIN graph_reports n"
        " ON n.reporter = l.reporter"
        " WHERE l.remote = d.domain AND l.valid_to IS NULL AND n.last_confirmed >= ?)",
        (cutoff, cutoff, cutoff),
    ).fetchall()
    marked = sorted(row[0] for row in rows)
    for domain in marked:
        current = _currentFacts(cursor, domain)
        _setFacts(cursor, domain, None if current is None else current[0], True, changes)
    return _written(cursor, changes, marked)


def _graph(cursor: Cursor, at: float) -> GraphSnapshot:
    """
    @return: the stored graph at C{at}.
    """
    links = [
        ReportedLink(
            reporter,
            remote or None,
            int(slot),
            _directionsTuple(directions),
            validFrom,
            validTo,
        )
        for reporter, remote, slot, directions, validFrom, validTo in cursor.execute(
            "SELECT reporter, remote, slot, directions, valid_from, valid_to FROM graph_links"
            " WHERE valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
            " ORDER BY reporter, remote, slot",
            (at, at),
        ).fetchall()
    ]
    confirmed: dict[str, float] = {}
    rows = cursor.execute(
        "SELECT reporter, last_confirmed FROM graph_reports WHERE first_reported <= ?", (at,)
    ).fetchall()
    for reporter, lastConfirmed in rows:
        confirmed[reporter] = lastConfirmed
    seen: dict[str, float] = dict(confirmed)
    for link in links:
        if link.remote is not None and link.reporter in confirmed:
            seen[link.remote] = max(seen.get(link.remote, 0.0), confirmed[link.reporter])
    domains = []
    for domain, firstSeen, lastSeen, publishes, consents, stale, status in cursor.execute(
        "SELECT d.domain, d.first_seen, d.last_seen, f.publishes, f.consents, f.stale, f.status"
        " FROM graph_domains d LEFT JOIN graph_domain_facts f ON f.domain = d.domain"
        " AND f.valid_from <= ? AND (f.valid_to IS NULL OR f.valid_to > ?)"
        " WHERE d.first_seen <= ? ORDER BY d.domain",
        (at, at, at),
    ).fetchall():
        last = min(max(lastSeen, seen.get(domain, lastSeen)), at)
        domains.append(
            GraphDomain(
                domain,
                firstSeen,
                max(last, firstSeen),
                _bool(publishes),
                _bool(consents),
                bool(stale),
                status,
            )
        )
    row = cursor.execute(
        "SELECT MAX(at), MAX(id) FROM graph_events WHERE at <= ?", (at,)
    ).fetchone()
    assert row is not None
    return GraphSnapshot(at, tuple(domains), tuple(links), row[0], int(row[1] or 0))


def _domain(cursor: Cursor, domain: str) -> DomainRecord | None:
    """
    @return: what is known about C{domain} now, or L{None}.
    """
    row = cursor.execute(
        "SELECT d.first_seen, d.last_seen, d.last_fetch, r.last_changed, r.last_confirmed"
        " FROM graph_domains d LEFT JOIN graph_reports r ON r.reporter = d.domain"
        " WHERE d.domain = ?",
        (domain,),
    ).fetchone()
    if row is None:
        return None
    firstSeen, lastSeen, lastFetch, reportChanged, reportConfirmed = row
    named = cursor.execute(
        "SELECT MAX(r.last_confirmed) FROM graph_links l JOIN graph_reports r"
        " ON r.reporter = l.reporter WHERE l.remote = ? AND l.valid_to IS NULL",
        (domain,),
    ).fetchone()
    candidates = [lastSeen, reportConfirmed, named[0] if named else None]
    facts = cursor.execute(
        f"SELECT {_FACT_COLUMNS}, stale, valid_from FROM graph_domain_facts"
        " WHERE domain = ? AND valid_to IS NULL",
        (domain,),
    ).fetchone()
    return DomainRecord(
        domain=domain,
        firstSeen=firstSeen,
        lastSeen=max(c for c in candidates if c is not None),
        lastFetch=lastFetch,
        facts=None if facts is None else _factsFromRow(facts),
        factsSince=None if facts is None else facts[13],
        stale=facts is not None and bool(facts[12]),
        reportChanged=reportChanged,
        reportConfirmed=reportConfirmed,
    )


def _peers(cursor: Cursor, domain: str) -> list[ReportedLink]:
    """
    @return: the current links C{domain} reports or that name it.
    """
    rows = cursor.execute(
        "SELECT reporter, remote, slot, directions, valid_from FROM graph_links"
        " WHERE valid_to IS NULL AND (reporter = ? OR remote = ?)"
        " ORDER BY reporter, remote, slot",
        (domain, domain),
    ).fetchall()
    return [
        ReportedLink(reporter, remote or None, int(slot), _directionsTuple(directions), since)
        for reporter, remote, slot, directions, since in rows
    ]


def _eventsFrom(rows: list[tuple[Any, ...]]) -> list[GraphEvent]:
    """
    @return: event rows as values.
    """
    return [
        GraphEvent(int(id_), at, kind, domain, peer, json.loads(data))
        for id_, at, kind, domain, peer, data in rows
    ]


def _history(cursor: Cursor, domain: str, limit: int) -> list[GraphEvent]:
    """
    @return: the newest C{limit} events about C{domain}, oldest first.
    """
    rows = cursor.execute(
        "SELECT id, at, kind, domain, peer, data FROM graph_events"
        " WHERE domain = ? OR peer = ? ORDER BY id DESC LIMIT ?",
        (domain, domain, limit),
    ).fetchall()
    rows.reverse()
    return _eventsFrom(rows)


def _events(cursor: Cursor, afterId: int, limit: int) -> list[GraphEvent]:
    """
    @return: the first C{limit} events after C{afterId}.
    """
    rows = cursor.execute(
        "SELECT id, at, kind, domain, peer, data FROM graph_events"
        " WHERE id > ? ORDER BY id LIMIT ?",
        (afterId, limit),
    ).fetchall()
    return _eventsFrom(rows)


def _profiles(cursor: Cursor) -> list[DomainProfile]:
    """
    @return: the software and stream facts of every current domain that is
        not stale and was fetched, by domain.
    """
    return [
        DomainProfile(str(domain), name, version, tls, auth, _bool(certValid), _bool(directTLS))
        for domain, name, version, tls, auth, certValid, directTLS in cursor.execute(
            "SELECT domain, software_name, software_version, tls_version, auth, cert_valid,"
            " direct_tls FROM graph_domain_facts"
            " WHERE valid_to IS NULL AND stale = 0 AND status IS NOT NULL"
            " ORDER BY domain"
        ).fetchall()
    ]


def _counts(cursor: Cursor) -> GraphCounts:
    """
    @return: counts over the current store.
    """
    row = cursor.execute(
        "SELECT (SELECT COUNT(*) FROM graph_domains),"
        " (SELECT COUNT(*) FROM graph_domain_facts WHERE valid_to IS NULL AND publishes = 1),"
        " (SELECT COUNT(*) FROM graph_domain_facts WHERE valid_to IS NULL AND stale = 1),"
        " (SELECT COUNT(*) FROM graph_reports),"
        " (SELECT COUNT(*) FROM graph_links WHERE valid_to IS NULL AND remote <> ''),"
        " (SELECT COUNT(*) FROM graph_links WHERE valid_to IS NULL AND remote = ''),"
        " (SELECT COUNT(*) FROM graph_links a JOIN graph_links b"
        " ON b.reporter = a.remote AND b.remote = a.reporter"
        " WHERE a.valid_to IS NULL AND b.valid_to IS NULL AND a.reporter < a.remote),"
        " (SELECT value FROM graph_counters WHERE name = 'events')"
    ).fetchone()
    assert row is not None
    return GraphCounts(*(int(value) for value in row))


def _statusCounts(cursor: Cursor) -> dict[str, int]:
    """
    @return: see L{IGraphStore.statusCounts}.
    """
    rows = cursor.execute(
        "SELECT CASE WHEN f.stale = 1 THEN 'stale' ELSE COALESCE(f.status, 'unfetched') END,"
        " COUNT(*) FROM graph_domains d LEFT JOIN graph_domain_facts f"
        " ON f.domain = d.domain AND f.valid_to IS NULL GROUP BY 1"
    ).fetchall()
    return {str(status): int(n) for status, n in rows}


@implementer(IGraphStore)
class GraphStore:
    """
    L{IGraphStore} in the node's L{Database} (its schema has the graph
    tables of migration 2).
    """

    _log = Logger()

    def __init__(
        self, database: Database, feed: IChangeFeed, clock: IReactorTime | None = None
    ) -> None:
        """
        @param database: where the graph lives.
        @param feed: where L{GraphChanged} is emitted after each commit that
            changed something.
        @param clock: the source of the timestamps (default: the global
            reactor, looked up on first use).
        """
        self._database = database
        self._feed = feed
        self._clock = clock

    def _now(self) -> float:
        """
        @return: the current time from the clock.
        """
        return currentTime(self._clock)

    def _emitted(self, written: _Written) -> object:
        """
        After a commit: emit L{GraphChanged} if anything changed.

        @return: the interaction's result.
        """
        if written.lastEventId:
            self._feed.emit(
                GraphChanged(written.firstEventId, written.lastEventId, written.domains)
            )
        return written.result

    def storeReport(
        self, reporter: str, remotes: Iterable[RemoteDomain]
    ) -> Deferred[ReportOutcome]:
        """
        See L{IGraphStore.storeReport}.
        """
        d = self._database.runInteraction(_storeReport, reporter, list(remotes), self._now())
        return cast("Deferred[ReportOutcome]", d.addCallback(self._emitted))

    def recordFetch(self, domain: str, facts: DomainFacts) -> Deferred[bool]:
        """
        See L{IGraphStore.recordFetch}.
        """
        d = self._database.runInteraction(_recordFetch, domain, facts, self._now())
        return cast("Deferred[bool]", d.addCallback(self._emitted))

    def markStale(self, window: float) -> Deferred[list[str]]:
        """
        See L{IGraphStore.markStale}.

        @raise ValueError: (in the Deferred) if C{window} is negative.
        """
        if window < 0:
            return fail(ValueError(f"the stale window must not be negative, not {window}"))
        now = self._now()
        d = self._database.runInteraction(_markStale, now - window, now)
        return cast("Deferred[list[str]]", d.addCallback(self._emitted))

    def graph(self, at: float | None = None) -> Deferred[GraphSnapshot]:
        """
        See L{IGraphStore.graph}.
        """
        return self._database.runInteraction(_graph, self._now() if at is None else at)

    def domain(self, domain: str) -> Deferred[DomainRecord | None]:
        """
        See L{IGraphStore.domain}. A name that is no valid domain is
        unknown.
        """
        name = _lookupName(domain)
        if name is None:
            return succeed(None)
        return self._database.runInteraction(_domain, name)

    def peers(self, domain: str) -> Deferred[list[ReportedLink]]:
        """
        See L{IGraphStore.peers}. A name that is no valid domain has none.
        """
        name = _lookupName(domain)
        if name is None:
            return succeed([])
        return self._database.runInteraction(_peers, name)

    def history(self, domain: str, limit: int = 1000) -> Deferred[list[GraphEvent]]:
        """
        See L{IGraphStore.history}. A name that is no valid domain has none.
        """
        name = _lookupName(domain)
        if name is None:
            return succeed([])
        return self._database.runInteraction(_history, name, limit)

    def events(self, afterId: int = 0, limit: int = 1000) -> Deferred[list[GraphEvent]]:
        """
        See L{IGraphStore.events}.
        """
        return self._database.runInteraction(_events, afterId, limit)

    def counts(self) -> Deferred[GraphCounts]:
        """
        See L{IGraphStore.counts}.
        """
        return self._database.runInteraction(_counts)

    def statusCounts(self) -> Deferred[dict[str, int]]:
        """
        See L{IGraphStore.statusCounts}.
        """
        return self._database.runInteraction(_statusCounts)

    def profiles(self) -> Deferred[list[DomainProfile]]:
        """
        See L{IGraphStore.profiles}.
        """
        return self._database.runInteraction(_profiles)
