# -*- test-case-name: tests.test_store_layout -*-
"""
Tests for L{xmppnetgraph.store.layout.LayoutStore}: one suite,
L{LayoutStoreTests}, run against a SQLite file and a real PostgreSQL
server (skipped when PostgreSQL is missing, except in CI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.test_store_database import asyncTest
from tests.test_store_pubsub import PostgreSQLTestDatabase, SQLiteTestDatabase
from xmppnetgraph.error import StorageFull
from xmppnetgraph.store.database import Database
from xmppnetgraph.store.layout import LayoutStore, StoredLayout

T0 = 1_700_000_000.0


class LayoutStoreTests:
    """
    Tests that L{LayoutStore} passes on every database. Subclasses provide
    C{openTestDatabase}, C{fillUp} and C{makeRoom}.
    """

    database: Database
    openTestDatabase: Callable[[], Database]
    fillUp: Callable[[], Any]
    makeRoom: Callable[[], Any]
    addCleanup: Callable[..., None]
    assertEqual: Callable[..., None]
    assertGreaterEqual: Callable[..., None]
    assertFailure: Callable[..., Deferred[Any]]

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.database = self.openTestDatabase()
        self.addCleanup(lambda: self.database.close())
        self.store = LayoutStore(self.database, self.clock)

    @asyncTest
    async def test_empty(self) -> None:
        """
        A new database has no layout, and migration 4 is applied.
        """
        self.assertEqual(await self.store.load(), StoredLayout({}, None, None))
        self.assertGreaterEqual(self.database.schemaVersion, 4)

    @asyncTest
    async def test_saveAndLoad(self) -> None:
        """
        Saved positions, the event id and the time come back.
        """
        await self.store.save({"a.example": (1.5, -2.25), "anon-1": (1000.0, -1000.0)}, 7)
        self.assertEqual(
            await self.store.load(),
            StoredLayout({"a.example": (1.5, -2.25), "anon-1": (1000.0, -1000.0)}, 7, T0),
        )

    @asyncTest
    async def test_replace(self) -> None:
        """
        A later save replaces the positions of its nodes and keeps the
        others (a node that left the graph keeps its place for the past).
        """
        await self.store.save({"a.example": (1.0, 1.0), "b.example": (2.0, 2.0)}, 3)
        self.clock.advance(60)
        await self.store.save({"b.example": (5.0, 6.0), "c.example": (7.0, 8.0)}, 9)
        self.assertEqual(
            await self.store.load(),
            StoredLayout(
                {"a.example": (1.0, 1.0), "b.example": (5.0, 6.0), "c.example": (7.0, 8.0)},
                9,
                T0 + 60,
            ),
        )

    @asyncTest
    async def test_oneTransaction(self) -> None:
        """
        A save that fails (the database is full) stores nothing of itself:
        the previous layout is loaded whole; after room is made it saves.
        """
        await self.store.save({"a.example": (1.0, 1.0)}, 1)
        await self.fillUp()
        big = {f"n{i}.example": (float(i), float(-i)) for i in range(5000)}
        await self.assertFailure(self.store.save(big, 2), StorageFull)
        self.assertEqual(await self.store.load(), StoredLayout({"a.example": (1.0, 1.0)}, 1, T0))
        await self.makeRoom()
        await self.store.save(big, 2)
        self.assertEqual(len((await self.store.load()).positions), 5001)


class PostgreSQLLayoutDatabase(PostgreSQLTestDatabase):
    """
    L{PostgreSQLTestDatabase}, made full for the layout's state row (the
    last write of a save).
    """

    fullTable = "graph_layout_state"


class SQLiteLayoutStoreTests(SQLiteTestDatabase, LayoutStoreTests, TestCase):
    """
    L{LayoutStoreTests} on a SQLite file in a temporary directory.
    """


class PostgreSQLLayoutStoreTests(PostgreSQLLayoutDatabase, LayoutStoreTests, TestCase):
    """
    L{LayoutStoreTests} on a database of its own on the test PostgreSQL
    server.
    """
