# -*- test-case-name: tests.test_store_graph -*-
"""
Tests for L{xmppnetgraph.store.graph.GraphStore}: one suite,
L{GraphStoreTests}, run against a SQLite file and a real PostgreSQL server
(L{tests.postgres}; skipped when PostgreSQL is missing, except in CI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from tests.test_store_database import asyncTest
from tests.test_store_pubsub import PostgreSQLTestDatabase, SQLiteTestDatabase
from xmppnetgraph.error import InvalidDomainName, StorageFull
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.interfaces import IGraphStore
from xmppnetgraph.model import (
    DiscoveryStep,
    DomainFacts,
    DomainProfile,
    GraphChanged,
    GraphEvent,
    GraphSnapshot,
    ReportedLink,
    ReportOutcome,
)
from xmppnetgraph.serverinfo.payload import RemoteDomain
from xmppnetgraph.store.database import Database, openDatabase
from xmppnetgraph.store.graph import GraphStore

T0 = 1_700_000_000.0

#: The graph tables, for row counts.
TABLES = ("graph_domains", "graph_domain_facts", "graph_reports", "graph_links", "graph_events")

PUBLISHES = DomainFacts(
    status="publishes",
    reachable=True,
    publishes=True,
    consents=True,
    softwareName="Prosody",
    softwareVersion="13.0.1",
    tlsVersion="TLSv1.3",
    auth="sasl-external",
    certValid=True,
    directTLS=False,
    steps=(
        DiscoveryStep("disco#info", True, "lists urn:xmpp:serverinfo:0"),
        DiscoveryStep("items pubsub.example.org node serverinfo", True, "1 item, 3 peers — ok"),
    ),
)


def named(name: str, *connections: str) -> RemoteDomain:
    """
    @return: a named remote domain with C{connections}.
    """
    return RemoteDomain(name, connections)


def anonymous(*connections: str) -> RemoteDomain:
    """
    @return: an anonymous remote domain with C{connections}.
    """
    return RemoteDomain(None, connections)


def current(snapshot: GraphSnapshot) -> set[tuple[str, str | None, int, tuple[str, ...]]]:
    """
    @return: the links of C{snapshot} without their intervals.
    """
    return {(k.reporter, k.remote, k.slot, k.directions) for k in snapshot.links}


class GraphStoreTests:
    """
    Tests that every L{GraphStore} database passes. Subclasses provide
    L{openTestDatabase}, L{fillUp} and L{makeRoom}; C{setUp} here makes
    C{self.store} with a L{Clock} and a L{ChangeFeed} whose L{GraphChanged}
    events are kept in C{self.changes}.
    """

    store: GraphStore
    database: Database
    clock: Clock
    feed: ChangeFeed
    changes: list[GraphChanged]

    # Provided by TestCase:
    addCleanup: Callable[..., None]
    assertEqual: Callable[..., None]
    assertNotEqual: Callable[..., None]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]
    assertIn: Callable[..., None]
    assertIsNone: Callable[..., None]
    assertFailure: Callable[..., Deferred[Any]]

    def openTestDatabase(self) -> Database:
        """
        @return: the test's database, open (the same one each call).
        """
        raise NotImplementedError()

    async def fillUp(self) -> None:
        """
        Make writing links fail as on a full disk (L{StorageFull}).
        """
        raise NotImplementedError()

    async def makeRoom(self) -> None:
        """
        Undo L{fillUp}.
        """
        raise NotImplementedError()

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.database = self.openTestDatabase()
        self.addCleanup(lambda: self.database.close())
        self.feed = ChangeFeed()
        self.changes = []
        self.feed.observe(GraphChanged, self.changes.append)
        self.store = GraphStore(self.database, self.feed, self.clock)

    async def rowCounts(self) -> dict[str, int]:
        """
        @return: the number of rows of each graph table.
        """
        counts = {}
        for table in TABLES:
            [(count,)] = await self.database.runQuery(f"SELECT COUNT(*) FROM {table}")
            counts[table] = count
        return counts

    async def allEvents(self) -> list[GraphEvent]:
        """
        @return: every event stored.
        """
        return await self.store.events(0, 1_000_000)

    def test_interface(self) -> None:
        """
        L{GraphStore} provides L{IGraphStore}.
        """
        self.assertTrue(verifyObject(IGraphStore, self.store))

    # Reports

    @asyncTest
    async def test_firstReport(self) -> None:
        """
        A first report stores each link from now on, adds the reporter and
        its named peers as domains, numbers anonymous peers from 1, and
        says what it changed.
        """
        outcome = await self.store.storeReport(
            "a.example",
            [named("b.example", "incoming", "outgoing"), anonymous("bidi"), anonymous()],
        )
        self.assertEqual(outcome, ReportOutcome(3, 0, 0, 2, 5))
        snapshot = await self.store.graph()
        self.assertEqual(
            snapshot.links,
            (
                ReportedLink("a.example", None, 1, (), T0),
                ReportedLink("a.example", None, 2, ("bidi",), T0),
                ReportedLink("a.example", "b.example", 0, ("incoming", "outgoing"), T0),
            ),
        )
        self.assertEqual([d.domain for d in snapshot.domains], ["a.example", "b.example"])
        self.assertEqual(snapshot.lastChange, T0)
        self.assertEqual(snapshot.lastEventId, 5)

    @asyncTest
    async def test_unchangedWritesNoRows(self) -> None:
        """
        Storing the same report again and again writes no row and no
        event and emits nothing: only the report's confirmation time moves,
        and with it the reporter's and its peers' last-seen time.
        """
        report = [named(f"p{n}.example", "bidi") for n in range(20)] + [
            anonymous("incoming"),
            anonymous(),
        ]
        await self.store.storeReport("a.example", report)
        before = await self.rowCounts()
        snapshot = await self.store.graph()
        self.assertEqual(len(self.changes), 1)
        for _ in range(1000):
            self.clock.advance(60)
            outcome = await self.store.storeReport("a.example", list(reversed(report)))
            self.assertEqual(outcome, ReportOutcome(0, 0, 0, 0, 0))
        self.assertEqual(await self.rowCounts(), before)
        self.assertEqual(len(self.changes), 1)
        later = await self.store.graph()
        self.assertEqual(later.links, snapshot.links)
        self.assertEqual(later.lastEventId, snapshot.lastEventId)
        seen = {d.domain: d.lastSeen for d in later.domains}
        self.assertEqual(seen["a.example"], T0 + 60_000)
        self.assertEqual(seen["p7.example"], T0 + 60_000)
        record = await self.store.domain("a.example")
        assert record is not None
        self.assertEqual((record.reportChanged, record.reportConfirmed), (T0, T0 + 60_000))

    @asyncTest
    async def test_intervals(self) -> None:
        """
        A changed link closes its interval and opens a new one, a link no
        longer reported is closed, a new one opened; the graph at a time
        between shows the report as it was then.
        """
        await self.store.storeReport(
            "a.example", [named("b.example", "incoming"), named("c.example", "outgoing")]
        )
        self.clock.advance(100)
        outcome = await self.store.storeReport(
            "a.example", [named("b.example", "incoming", "outgoing"), named("d.example")]
        )
        self.assertEqual(outcome, ReportOutcome(1, 1, 1, 1, 4))
        now = await self.store.graph()
        self.assertEqual(
            now.links,
            (
                ReportedLink("a.example", "b.example", 0, ("incoming", "outgoing"), T0 + 100),
                ReportedLink("a.example", "d.example", 0, (), T0 + 100),
            ),
        )
        then = await self.store.graph(T0 + 50)
        self.assertEqual(
            then.links,
            (
                ReportedLink("a.example", "b.example", 0, ("incoming",), T0, T0 + 100),
                ReportedLink("a.example", "c.example", 0, ("outgoing",), T0, T0 + 100),
            ),
        )
        self.assertEqual([d.domain for d in then.domains], ["a.example", "b.example", "c.example"])
        self.assertEqual(then.lastChange, T0)
        self.assertEqual((await self.store.graph(T0 - 1)).links, ())
        self.assertEqual((await self.store.graph(T0 - 1)).domains, ())
        # The domain that left the report stays known, with its history.
        self.assertIn("c.example", [d.domain for d in now.domains])
        kinds = [(e.kind, e.peer) for e in await self.store.history("c.example")]
        self.assertEqual(
            kinds,
            [
                ("domain-added", None),
                ("link-added", "c.example"),
                ("link-removed", "c.example"),
            ],
        )
        # A limit keeps the newest, still in order.
        newest = [(e.kind, e.peer) for e in await self.store.history("c.example", limit=2)]
        self.assertEqual(newest, [("link-added", "c.example"), ("link-removed", "c.example")])

    @asyncTest
    async def test_graphAtManyTimes(self) -> None:
        """
        After a series of reports, the graph at each time in between is the
        report stored last before it.
        """
        reports = [
            [named("b.example", "incoming")],
            [named("b.example", "bidi"), anonymous()],
            [],
            [named("c.example"), anonymous(), anonymous("outgoing")],
        ]
        for report in reports:
            await self.store.storeReport("a.example", report)
            self.clock.advance(10)
        for n, report in enumerate(reports):
            snapshot = await self.store.graph(T0 + 10 * n + 5)
            self.assertEqual(
                sorted((k.remote or "", k.directions) for k in snapshot.links),
                sorted((r.name or "", tuple(sorted(set(r.connections)))) for r in report),
            )

    @asyncTest
    async def test_sameInstant(self) -> None:
        """
        Reports that change a link twice at the same time are stored; the
        interval that lasted no time is dropped.
        """
        await self.store.storeReport("a.example", [named("b.example", "incoming")])
        await self.store.storeReport("a.example", [named("b.example", "outgoing")])
        await self.store.storeReport("a.example", [named("b.example", "incoming")])
        self.assertEqual(
            current(await self.store.graph()), {("a.example", "b.example", 0, ("incoming",))}
        )
        [(rows,)] = await self.database.runQuery("SELECT COUNT(*) FROM graph_links")
        self.assertEqual(rows, 1)

    @asyncTest
    async def test_mergedAndNormalised(self) -> None:
        """
        Names are stored normalised, and entries that name the same peer
        are one link with the directions of all.
        """
        outcome = await self.store.storeReport(
            "A.Example",
            [named("B.example", "incoming"), named("b.EXAMPLE", "outgoing", "incoming")],
        )
        self.assertEqual(outcome.added, 1)
        self.assertEqual(
            current(await self.store.graph()),
            {("a.example", "b.example", 0, ("incoming", "outgoing"))},
        )

    @asyncTest
    async def test_anonymousSlotsStable(self) -> None:
        """
        New anonymous peers get slots in the order of their directions;
        they keep their slots while they are reported unchanged, whatever
        the order; one whose directions change keeps its slot; a peer no
        longer reported frees no slot for reuse.
        """
        await self.store.storeReport(
            "a.example", [anonymous("incoming"), anonymous("outgoing"), anonymous()]
        )

        async def slots() -> dict[int, tuple[str, ...]]:
            return {k.slot: k.directions for k in (await self.store.graph()).links}

        self.assertEqual(await slots(), {1: (), 2: ("incoming",), 3: ("outgoing",)})
        self.clock.advance(1)
        outcome = await self.store.storeReport(
            "a.example", [anonymous("outgoing"), anonymous(), anonymous("incoming")]
        )
        self.assertEqual(outcome.events, 0)
        self.assertEqual(await slots(), {1: (), 2: ("incoming",), 3: ("outgoing",)})
        self.clock.advance(1)
        outcome = await self.store.storeReport(
            "a.example", [anonymous("bidi"), anonymous("outgoing"), anonymous("incoming")]
        )
        self.assertEqual((outcome.added, outcome.changed, outcome.removed), (0, 1, 0))
        self.assertEqual(await slots(), {1: ("bidi",), 2: ("incoming",), 3: ("outgoing",)})
        self.clock.advance(1)
        await self.store.storeReport("a.example", [anonymous("outgoing")])
        self.assertEqual(await slots(), {3: ("outgoing",)})
        self.clock.advance(1)
        await self.store.storeReport("a.example", [anonymous("outgoing"), anonymous("incoming")])
        self.assertEqual(await slots(), {3: ("outgoing",), 4: ("incoming",)})
        # Slots belong to one reporter.
        await self.store.storeReport("b.example", [anonymous()])
        self.assertIn(("b.example", None, 1, ()), current(await self.store.graph()))

    @asyncTest
    async def test_confirmedPairs(self) -> None:
        """
        The counts say how many pairs of domains report each other.
        """
        await self.store.storeReport("a.example", [named("b.example"), named("c.example")])
        await self.store.storeReport("b.example", [named("a.example"), anonymous()])
        await self.store.storeReport("c.example", [named("d.example")])
        counts = await self.store.counts()
        self.assertEqual(
            (counts.domains, counts.reporters, counts.namedLinks, counts.anonymousLinks),
            (4, 3, 4, 1),
        )
        self.assertEqual(counts.confirmedPairs, 1)
        self.assertEqual(counts.lastEventId, len(await self.allEvents()))

    @asyncTest
    async def test_profiles(self) -> None:
        """
        L{GraphStore.profiles} lists the current software and stream facts
        of the fetched domains, leaving out stale ones and those only
        named.
        """
        ejabberd = attrs.evolve(
            PUBLISHES,
            softwareName="ejabberd",
            softwareVersion=None,
            tlsVersion=None,
            auth="dialback",
            certValid=False,
            directTLS=True,
        )
        await self.store.recordFetch("a.example", PUBLISHES)
        await self.store.recordFetch("b.example", ejabberd)
        await self.store.recordFetch("c.example", attrs.evolve(PUBLISHES, softwareName=None))
        await self.store.recordFetch("d.example", PUBLISHES)
        await self.store.storeReport("a.example", [RemoteDomain("named.example", ("outgoing",))])
        self.clock.advance(100)
        await self.store.recordFetch("a.example", PUBLISHES)
        await self.store.recordFetch("b.example", ejabberd)
        await self.store.markStale(50)
        self.assertEqual(
            await self.store.profiles(),
            [
                DomainProfile(
                    "a.example",
                    "Prosody",
                    "13.0.1",
                    PUBLISHES.tlsVersion,
                    PUBLISHES.auth,
                    PUBLISHES.certValid,
                    PUBLISHES.directTLS,
                ),
                DomainProfile("b.example", "ejabberd", None, None, "dialback", False, True),
            ],
        )

    # One transaction

    @asyncTest
    async def test_failedReportChangesNothing(self) -> None:
        """
        A report that fails part-way (the disk fills up while it is
        written) leaves the previous report, domains and events as they
        were and emits nothing; with room again it is stored.
        """
        await self.store.storeReport("a.example", [named("b.example", "incoming"), anonymous()])
        before = await self.rowCounts()
        snapshot = await self.store.graph()
        self.clock.advance(10)
        big = [named(f"peer-{n:05d}-{'x' * 40}.example", "bidi") for n in range(5000)]
        await self.fillUp()
        await self.assertFailure(self.store.storeReport("a.example", big), StorageFull)
        await self.makeRoom()
        self.assertEqual(await self.rowCounts(), before)
        self.assertEqual(await self.store.graph(snapshot.at), snapshot)
        self.assertEqual(len(self.changes), 1)
        outcome = await self.store.storeReport("a.example", big)
        self.assertEqual((outcome.added, outcome.removed), (5000, 2))
        self.assertEqual(len((await self.store.graph()).links), 5000)

    @asyncTest
    async def test_badNamesRefused(self) -> None:
        """
        A report whose reporter or any named peer is no valid domain name
        is refused with a message that names it, and nothing of it is
        stored.
        """
        await self.store.storeReport("a.example", [named("b.example")])
        before = await self.rowCounts()
        cases = [
            ("bad..example", [named("b.example")], "bad..example"),
            ("a.example", [named("c.example"), named("192.0.2.1")], "192.0.2.1"),
            ("a.example", [named("c.example"), named("trailing.example.")], "trailing.example."),
            ("a.example", [named("under_score.example")], "under_score.example"),
            ("a.example", [named("x" * 64 + ".example")], "x" * 64),
        ]
        for reporter, report, bad in cases:
            failure = await self.assertFailure(
                self.store.storeReport(reporter, report), InvalidDomainName
            )
            self.assertIn(bad, str(failure))
        await self.assertFailure(self.store.recordFetch("-bad.example", PUBLISHES), ValueError)
        self.assertEqual(await self.rowCounts(), before)
        self.assertEqual(len(self.changes), 1)

    # Events and the feed

    @asyncTest
    async def test_eventsResumable(self) -> None:
        """
        Event ids increase by one from 1 across all writes; reading after
        an id gives the rest, in order and with the new values; a limit
        cuts the page.
        """
        await self.store.storeReport("a.example", [named("b.example", "bidi")])
        await self.store.recordFetch("b.example", PUBLISHES)
        self.clock.advance(5)
        await self.store.storeReport("a.example", [named("b.example", "incoming")])
        events = await self.allEvents()
        self.assertEqual([e.id for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(
            [(e.kind, e.domain, e.peer) for e in events],
            [
                ("domain-added", "a.example", None),
                ("domain-added", "b.example", None),
                ("link-added", "a.example", "b.example"),
                ("domain-changed", "b.example", None),
                ("link-changed", "a.example", "b.example"),
            ],
        )
        self.assertEqual(
            events[-1].data, {"remote": "b.example", "slot": None, "directions": ["incoming"]}
        )
        self.assertEqual(events[-1].at, T0 + 5)
        facts = events[3].data["facts"]
        assert isinstance(facts, dict)
        self.assertEqual(facts["softwareName"], "Prosody")
        self.assertEqual(await self.store.events(3), events[3:])
        self.assertEqual(await self.store.events(1, limit=2), events[1:3])
        self.assertEqual(await self.store.events(len(events)), [])

    @asyncTest
    async def test_feedAfterCommit(self) -> None:
        """
        A change emits one L{GraphChanged} naming its event ids and the
        domains it touched, once the events can be read by others; an
        unchanged write or a failed one emits nothing.
        """
        reads: list[Deferred[list[GraphEvent]]] = []
        self.feed.observe(
            GraphChanged, lambda event: reads.append(self.store.events(event.firstEventId - 1))
        )
        await self.store.storeReport("a.example", [named("b.example")])
        self.assertEqual(self.changes, [GraphChanged(1, 3, ("a.example", "b.example"))])
        [read] = reads
        self.assertEqual([e.id for e in await read], [1, 2, 3])
        await self.store.storeReport("a.example", [named("b.example")])
        await self.store.recordFetch("a.example", PUBLISHES)
        await self.store.recordFetch("a.example", PUBLISHES)
        self.assertEqual(len(self.changes), 2)
        self.assertEqual(self.changes[-1], GraphChanged(4, 4, ("a.example",)))
        await self.assertFailure(self.store.storeReport("a.example", [named("..")]), ValueError)
        self.assertEqual(len(self.changes), 2)

    @asyncTest
    async def test_concurrentWrites(self) -> None:
        """
        Writes issued at once all succeed and their events get distinct,
        gap-free ids in the order of the feed events.
        """
        writes = [
            self.store.storeReport(f"r{n}.example", [named(f"p{n}.example"), anonymous()])
            for n in range(8)
        ] + [self.store.recordFetch(f"p{n}.example", PUBLISHES) for n in range(8)]
        await gatherResults(writes)
        events = await self.allEvents()
        self.assertEqual([e.id for e in events], list(range(1, len(events) + 1)))
        ranges = sorted((c.firstEventId, c.lastEventId) for c in self.changes)
        self.assertEqual(len(ranges), 16)
        self.assertEqual(ranges[0][0], 1)
        self.assertEqual(ranges[-1][1], len(events))
        for (_, last), (first, _) in zip(ranges, ranges[1:], strict=False):
            self.assertEqual(first, last + 1)

    # Domain facts

    @asyncTest
    async def test_recordFetch(self) -> None:
        """
        A fetch records its facts as of now; the same facts again change
        nothing but the fetch time; other facts open a new interval, and
        the graph at an earlier time shows the earlier ones.
        """
        self.assertTrue(await self.store.recordFetch("a.example", PUBLISHES))
        before = await self.rowCounts()
        self.clock.advance(10)
        self.assertFalse(await self.store.recordFetch("a.example", PUBLISHES))
        self.assertEqual(await self.rowCounts(), before)
        record = await self.store.domain("a.example")
        assert record is not None
        self.assertEqual(
            (record.firstSeen, record.lastSeen, record.lastFetch, record.factsSince),
            (T0, T0 + 10, T0 + 10, T0),
        )
        self.assertEqual((record.facts, record.stale), (PUBLISHES, False))
        self.clock.advance(10)
        gone = DomainFacts(
            "no-consent", True, error="disco#info answered without urn:xmpp:serverinfo:0"
        )
        self.assertTrue(await self.store.recordFetch("a.example", gone))
        self.clock.advance(10)
        down = DomainFacts("unreachable", False, error="no route")
        self.assertTrue(await self.store.recordFetch("A.EXAMPLE", down))
        record = await self.store.domain("a.example")
        assert record is not None
        self.assertEqual(
            (record.facts, record.factsSince, record.lastSeen, record.lastFetch),
            (down, T0 + 30, T0 + 20, T0 + 30),
        )
        [then] = (await self.store.graph(T0 + 15)).domains
        self.assertEqual((then.publishes, then.consents, then.status), (True, True, "publishes"))
        [later] = (await self.store.graph(T0 + 25)).domains
        self.assertEqual((later.publishes, later.status), (None, "no-consent"))

    @asyncTest
    async def test_unknownDomain(self) -> None:
        """
        A domain the store never heard of (or a name that is none) has no
        record, no peers and no history.
        """
        self.assertIsNone(await self.store.domain("nowhere.example"))
        self.assertIsNone(await self.store.domain("not a domain"))
        self.assertEqual(await self.store.peers("not a domain"), [])
        self.assertEqual(await self.store.history("nowhere.example"), [])

    @asyncTest
    async def test_peers(self) -> None:
        """
        A domain's peers are the current links it reports and those that
        name it.
        """
        await self.store.storeReport("a.example", [named("b.example", "bidi"), anonymous()])
        await self.store.storeReport("b.example", [named("c.example")])
        self.assertEqual(
            await self.store.peers("B.example"),
            [
                ReportedLink("a.example", "b.example", 0, ("bidi",), T0),
                ReportedLink("b.example", "c.example", 0, (), T0),
            ],
        )
        record = await self.store.domain("c.example")
        assert record is not None
        self.assertEqual((record.facts, record.reportConfirmed, record.stale), (None, None, False))

    @asyncTest
    async def test_markStale(self) -> None:
        """
        Domains not seen within the window become stale (once); a report
        that names a domain keeps it fresh while the report is confirmed;
        storing a report or fetching again makes a domain fresh; the graph
        at an earlier time shows it fresh.
        """
        await self.store.storeReport("a.example", [named("b.example")])
        await self.store.recordFetch("c.example", PUBLISHES)
        self.clock.advance(100)
        await self.store.storeReport("a.example", [named("b.example")])
        self.assertEqual(await self.store.markStale(50), ["c.example"])
        self.assertEqual(await self.store.markStale(50), [])
        self.clock.advance(100)
        self.assertEqual(await self.store.markStale(50), ["a.example", "b.example"])
        stale = {d.domain: d.stale for d in (await self.store.graph()).domains}
        self.assertEqual(stale, {"a.example": True, "b.example": True, "c.example": True})
        earlier = {d.domain: d.stale for d in (await self.store.graph(T0 + 150)).domains}
        self.assertEqual(earlier, {"a.example": False, "b.example": False, "c.example": True})
        record = await self.store.domain("c.example")
        assert record is not None
        self.assertEqual((record.stale, record.facts), (True, PUBLISHES))
        self.clock.advance(1)
        await self.store.storeReport("a.example", [named("b.example")])
        await self.store.recordFetch("c.example", PUBLISHES)
        stale = {d.domain: d.stale for d in (await self.store.graph()).domains}
        self.assertEqual(stale, {"a.example": False, "b.example": False, "c.example": False})
        await self.assertFailure(self.store.markStale(-1), ValueError)

    @asyncTest
    async def test_statusCounts(self) -> None:
        """
        Every known domain counts once: by the status of its current facts,
        as C{stale} once stale (whatever its last status), as
        C{unfetched} when only named by others.
        """
        self.assertEqual(await self.store.statusCounts(), {})
        await self.store.storeReport("a.example", [named("b.example"), named("d.example")])
        await self.store.recordFetch("a.example", PUBLISHES)
        await self.store.recordFetch("c.example", PUBLISHES)
        await self.store.recordFetch("d.example", DomainFacts("no-consent", True, consents=False))
        self.assertEqual(
            await self.store.statusCounts(),
            {"publishes": 2, "no-consent": 1, "unfetched": 1},
        )
        self.clock.advance(100)
        await self.store.storeReport("a.example", [named("b.example"), named("d.example")])
        self.assertEqual(await self.store.markStale(50), ["c.example"])
        self.assertEqual(
            await self.store.statusCounts(),
            {"publishes": 1, "no-consent": 1, "unfetched": 1, "stale": 1},
        )

    # Durability and size

    @asyncTest
    async def test_survivesReopen(self) -> None:
        """
        Everything is there after the database is closed and opened again,
        and event ids go on from where they were.
        """
        await self.store.storeReport("a.example", [named("b.example", "bidi"), anonymous()])
        await self.store.recordFetch("a.example", PUBLISHES)
        snapshot = await self.store.graph()
        events = await self.allEvents()
        await self.database.close()
        self.database = self.openTestDatabase()
        self.store = GraphStore(self.database, self.feed, self.clock)
        self.assertEqual(await self.store.graph(), snapshot)
        self.assertEqual(await self.allEvents(), events)
        self.clock.advance(1)
        await self.store.storeReport("a.example", [anonymous()])
        self.assertEqual((await self.allEvents())[-1].id, len(events) + 1)

    @asyncTest
    async def test_largeReport(self) -> None:
        """
        A report of 20,000 entries is stored in one go; the same again
        writes no row; replacing half of it changes only that half.
        """
        report = [named(f"peer{n}.example", "bidi") for n in range(10_000)] + [
            anonymous("incoming") for _ in range(10_000)
        ]
        outcome = await self.store.storeReport("hub.example", report)
        self.assertEqual((outcome.added, outcome.newDomains), (20_000, 10_001))
        before = await self.rowCounts()
        self.clock.advance(1)
        self.assertEqual((await self.store.storeReport("hub.example", report)).events, 0)
        self.assertEqual(await self.rowCounts(), before)
        self.clock.advance(1)
        changed = report[:5000] + [named(f"new{n}.example") for n in range(5000)] + report[10_000:]
        outcome = await self.store.storeReport("hub.example", changed)
        self.assertEqual((outcome.added, outcome.removed, outcome.changed), (5000, 5000, 0))
        self.assertEqual(len((await self.store.graph()).links), 20_000)


class PostgreSQLGraphDatabase(PostgreSQLTestDatabase):
    """
    L{PostgreSQLTestDatabase}, made full for the graph's links.
    """

    fullTable = "graph_links"


class SQLiteGraphStoreTests(SQLiteTestDatabase, GraphStoreTests, TestCase):
    """
    L{GraphStoreTests} on a SQLite file in a temporary directory.
    """


class PostgreSQLGraphStoreTests(PostgreSQLGraphDatabase, GraphStoreTests, TestCase):
    """
    L{GraphStoreTests} on a database of its own on the test PostgreSQL
    server.
    """


class DefaultClockTests(TestCase):
    """
    Without a clock, L{GraphStore} takes the time from the global reactor.
    """

    @asyncTest
    async def test_reactorTime(self) -> None:
        """
        Intervals begin between the reactor's time before and after the
        write.
        """
        from pathlib import Path

        dataDir = Path(self.mktemp()).absolute()
        dataDir.mkdir(parents=True)
        database = openDatabase(None, dataDir, reactor)
        self.addCleanup(database.close)
        store = GraphStore(database, ChangeFeed())
        before = reactor.seconds()
        await store.storeReport("a.example", [named("b.example")])
        after = reactor.seconds()
        [link] = (await store.graph()).links
        self.assertTrue(before <= link.validFrom <= after, (before, link.validFrom, after))
