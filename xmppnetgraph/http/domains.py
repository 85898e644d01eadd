# -*- test-case-name: tests.test_http_api -*-
"""
C{GET /api/domains/{domain}}: everything known about one domain (its
record and facts, its peers both ways, its history, each discovery step,
the crawler's status) and, in words a server admin can act on, why it is
or is not on the graph.

What it shows obeys the same naming rules as the graph (L{Naming}): the
record of a domain that has not consented is shown (the asker named it),
but not its links, which the graph shows only as anonymous peers; an
excluded domain shows only that it is excluded.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from twisted.web.server import Request

from xmppnetgraph.error import Unavailable, UnknownDomain
from xmppnetgraph.graphview import serviceParent
from xmppnetgraph.http import params
from xmppnetgraph.http.errors import Response, jsonResponse
from xmppnetgraph.http.naming import EventTail, Naming
from xmppnetgraph.interfaces import ICrawler, IGraphStore
from xmppnetgraph.model import CrawlStatus, DomainFacts, DomainRecord, NamePolicy, ReportedLink
from xmppnetgraph.timestamp import formatOptionalTimestamp, formatTimestamp

#: The most history events shown.
MAX_HISTORY = 1000


def crawlJSON(status: CrawlStatus | None) -> dict[str, object] | None:
    """
    @return: the crawler's status as the API shows it.
    """
    if status is None:
        return None
    return {
        "state": status.state,
        "source": status.source,
        "next_fetch": formatOptionalTimestamp(status.nextFetch),
        "last_fetch": formatOptionalTimestamp(status.lastFetch),
        "failures": status.failures,
        "subscription": status.subscription,
        "service": status.service,
        "node": status.node,
    }


def factsJSON(facts: DomainFacts | None) -> dict[str, object] | None:
    """
    @return: a fetch's facts as the API shows them.
    """
    if facts is None:
        return None
    return {
        "status": facts.status,
        "reachable": facts.reachable,
        "error": facts.error,
        "publishes": facts.publishes,
        "consents": facts.consents,
        "software": {"name": facts.softwareName, "version": facts.softwareVersion},
        "stream": {
            "tls_version": facts.tlsVersion,
            "auth": facts.auth,
            "cert_valid": facts.certValid,
            "direct_tls": facts.directTLS,
        },
        "steps": [{"step": s.step, "ok": s.ok, "detail": s.detail} for s in facts.steps],
    }


def recordJSON(record: DomainRecord) -> dict[str, object]:
    """
    @return: a domain's record (without its facts) as the API shows it.
    """
    return {
        "first_seen": formatTimestamp(record.firstSeen),
        "last_seen": formatTimestamp(record.lastSeen),
        "last_fetch": formatOptionalTimestamp(record.lastFetch),
        "facts_since": formatOptionalTimestamp(record.factsSince),
        "stale": record.stale,
        "report_changed": formatOptionalTimestamp(record.reportChanged),
        "report_confirmed": formatOptionalTimestamp(record.reportConfirmed),
    }


def peersJSON(domain: str, links: list[ReportedLink], naming: Naming) -> list[dict[str, object]]:
    """
    @return: C{domain}'s current links both ways, a peer that may not be
        named as L{None}.
    """
    result: list[dict[str, object]] = []
    for link in links:
        if link.reporter == domain:
            peer = link.remote if link.remote is not None and naming.nameable(link.remote) else None
            if link.remote is not None and naming.excluded(link.remote):
                continue
            way = "reports"
        else:
            if naming.excluded(link.reporter):
                continue
            peer = link.reporter if naming.nameable(link.reporter) else None
            way = "reported-by"
        result.append(
            {
                "peer": peer,
                "way": way,
                "directions": list(link.directions),
                "since": formatTimestamp(link.validFrom),
            }
        )
    return result


def _firstFailure(facts: DomainFacts) -> str | None:
    for step in facts.steps:
        if not step.ok:
            return f"{step.step}: {step.detail}"
    return None


def explain(
    domain: str,
    record: DomainRecord | None,
    status: CrawlStatus | None,
    excluded: bool,
    namePolicy: NamePolicy,
) -> tuple[bool, str]:
    """
    @return: whether C{domain} is on the current graph by name, and why
        (or why not), in plain words.
    """
    if excluded:
        return False, "excluded from the graph on request (it is on this node's exclusion list)"
    if record is None:
        where = "" if status is None else f" ({status.state}, learnt from a {status.source})"
        return False, f"submitted to the crawler{where} but not fetched yet: nothing known so far"
    if record.stale:
        return False, (
            f"stale: not seen since {formatTimestamp(record.lastSeen)}, longer than the stale"
            " window; it left the current graph and stays in its history"
        )
    facts = record.facts
    if facts is None:
        if namePolicy == "reported":
            return True, "named in another domain's report (name policy 'reported'); never fetched"
        return False, (
            "never fetched yet: another domain's report names it, but until our own"
            " disco#info check finds urn:xmpp:serverinfo:0 its links are shown as anonymous"
        )
    failed = _firstFailure(facts)
    if facts.consents is not True and namePolicy == "consented":
        if facts.consents is False:
            why = (
                "disco#info answered without urn:xmpp:serverinfo:0: it has not consented"
                " to be named, so its links are shown as anonymous peers"
            )
        else:
            why = "its consent is unknown ("
            why += (failed or facts.error or facts.status) + "), so it is not named"
        return False, why
    named = "it consents to be named (lists urn:xmpp:serverinfo:0)"
    if namePolicy == "reported" and facts.consents is not True:
        named = "named as reported (name policy 'reported')"
    if facts.publishes:
        return True, f"on the graph: {named} and publishes its server information"
    reason = failed or facts.error or f"status {facts.status}"
    return True, (
        f"on the graph: {named}, but publishes nothing we could read ({reason}); it shows"
        " through the reports of its peers"
    )


@attrs.define
class DomainPages:
    """
    The handler of C{/api/domains/{domain}}.
    """

    store: IGraphStore | None
    crawler: ICrawler | None
    tail: EventTail | None
    naming: Naming
    namePolicy: NamePolicy = "consented"

    async def domain(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{GET /api/domains/{domain}}.
        """
        name = params.domain(path["domain"])
        limit = min(params.integer(params.query(request), "history", 200), MAX_HISTORY)
        if self.store is None or self.tail is None:
            raise Unavailable("this node keeps no graph store")
        excluded = self.naming.excluded(name)
        status = self.crawler.status(name) if self.crawler is not None else None
        await self.tail.ready()
        # A domain that may not be named is answered exactly like one
        # nobody knows (whether the store holds it would confirm a guessed
        # hidden name), unless it was submitted: then its admin asks.
        hidden = not self.naming.nameable(name) and not (status is not None and status.submitted)
        record = None if excluded or hidden else await self.store.domain(name)
        if not excluded and record is None and (hidden or status is None):
            raise UnknownDomain(
                f"{name} is not on the graph here: no report names it, or it has not consented"
                " to be named (urn:xmpp:serverinfo:0); submit it (POST /api/submit) to see what"
                " the crawler finds"
            )
        onGraph, why = explain(name, record, status, excluded, self.namePolicy)
        body: dict[str, object] = {
            "domain": name,
            "on_graph": onGraph,
            "why": why,
            "excluded": excluded,
            "crawl": crawlJSON(status),
            "record": None,
            "facts": None,
            "peers": [],
            "history": [],
            "folded_into": serviceParent(name),
        }
        if excluded or record is None:
            return _revalidated(jsonResponse(body))
        body["record"] = recordJSON(record)
        body["facts"] = factsJSON(record.facts)
        if self.naming.nameable(name):
            links = await self.store.peers(name)
            body["peers"] = peersJSON(name, links, self.naming)
            events = await self.store.history(name, limit)
            body["history"] = [
                {**self.naming.redact(event), "at": formatTimestamp(event.at)} for event in events
            ]
        return _revalidated(jsonResponse(body))


def _revalidated(response: Response) -> Response:
    """
    @return: C{response} with its ETag, to be revalidated on every use.
    """
    return attrs.evolve(response, headers={b"cache-control": b"no-cache"}).tagged()
