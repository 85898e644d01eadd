# -*- test-case-name: tests.test_store_database -*-
"""
Tests for L{xmppnetgraph.store.database}: opening, migrating, restarting,
error mapping and rollback, against a real SQLite file and (through
L{tests.postgres}) a real PostgreSQL server.
"""

from __future__ import annotations

import functools
import socket
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.postgres import postgresSkip, requirePostgres, temporaryDatabase
from xmppnetgraph.error import NodeExists, StorageError, StorageFull
from xmppnetgraph.store.database import (
    DEFAULT_SQLITE_NAME,
    Cursor,
    Database,
    Migration,
    openDatabase,
    schemaMigrations,
    sqlitePath,
)


def asyncTest(f: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., Deferred[None]]:
    """
    Let trial run an C{async def} test method: wrap it so that it returns
    a Deferred.
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kw: Any) -> Deferred[None]:
        return Deferred.fromCoroutine(f(*args, **kw))

    return wrapper


#: A first and a second schema change for the migration tests. Neither
#: uses IF NOT EXISTS, so applying one twice fails.
FIRST = Migration(1, "first", "-- the first\nCREATE TABLE first_table (a TEXT PRIMARY KEY);\n")
SECOND = Migration(
    2, "second", "CREATE TABLE second_table (b TEXT);\nCREATE INDEX second_b ON second_table (b);"
)
BROKEN = Migration(2, "broken", "CREATE TABLE second_table (b TEXT);\nTHIS IS NOT SQL;")


def _insertThenRaise(cursor: Cursor, error: Exception) -> None:
    """
    An interaction that writes a row and then fails with C{error}.
    """
    cursor.execute("INSERT INTO first_table (a) VALUES (?)", ("written",))
    raise error


def _insertThenBadSQL(cursor: Cursor) -> None:
    """
    An interaction that writes a row and then runs a statement the
    database rejects.
    """
    cursor.execute("INSERT INTO first_table (a) VALUES (?)", ("written",))
    cursor.execute("SELECT no_such_column FROM first_table")


class DatabaseTestsMixin:
    """
    Tests for L{Database} that every backend passes. Subclasses set
    C{url} in C{setUp} (and C{dataDir}).
    """

    url: str | None
    dataDir: Path
    dialect: str

    # Provided by TestCase:
    addCleanup: Callable[..., None]
    assertEqual: Callable[..., None]
    assertIn: Callable[..., None]
    assertNoResult: Callable[..., None]
    assertFailure: Callable[..., Deferred[Any]]
    flushLoggedErrors: Callable[..., list[Any]]
    assertRaises: Callable[..., Any]

    def open(self, migrations: list[Migration] | None = None) -> Database:
        """
        Open the test's database; close it when the test ends.
        """
        database = openDatabase(self.url, self.dataDir, reactor, migrations)
        self.addCleanup(database.close)
        return database

    @asyncTest
    async def test_openMigrates(self) -> None:
        """
        Opening a new database applies the shipped schema: the pub-sub
        tables exist and C{schema_version} records each migration.
        """
        database = self.open()
        shipped = schemaMigrations()
        self.assertEqual(database.dialect, self.dialect)
        self.assertEqual(database.schemaVersion, shipped[-1].version)
        rows = await database.runQuery("SELECT version, name FROM schema_version ORDER BY version")
        self.assertEqual(rows, [(m.version, m.name) for m in shipped])
        self.assertEqual(await database.runQuery("SELECT COUNT(*) FROM pubsub_nodes"), [(0,)])

    @asyncTest
    async def test_migrateTwice(self) -> None:
        """
        Opening the database again applies nothing twice: the migrations
        (which would fail a second time) are recorded once.
        """
        await self.open([FIRST]).close()
        database = self.open([FIRST])
        self.assertEqual(database.schemaVersion, 1)
        self.assertEqual(
            await database.runQuery("SELECT version, name FROM schema_version"), [(1, "first")]
        )

    @asyncTest
    async def test_restartKeepsData(self) -> None:
        """
        What was committed before a close is there after reopening.
        """
        database = self.open([FIRST])
        await database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("kept",))
        await database.close()
        database = self.open([FIRST])
        self.assertEqual(await database.runQuery("SELECT a FROM first_table"), [("kept",)])

    @asyncTest
    async def test_newMigrationApplied(self) -> None:
        """
        A migration added since the last start is applied on the next
        open, and only that one.
        """
        database = self.open([FIRST])
        await database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("before",))
        await database.close()
        database = self.open([FIRST, SECOND])
        self.assertEqual(database.schemaVersion, 2)
        self.assertEqual(
            await database.runQuery("SELECT version FROM schema_version ORDER BY version"),
            [(1,), (2,)],
        )
        self.assertEqual(await database.runQuery("SELECT COUNT(*) FROM second_table"), [(0,)])
        self.assertEqual(await database.runQuery("SELECT a FROM first_table"), [("before",)])

    @asyncTest
    async def test_newerSchemaRefused(self) -> None:
        """
        A database migrated by a newer version of the code is not opened by
        an older one: the message says so.
        """
        await self.open([FIRST, SECOND]).close()
        error = self.assertRaises(
            StorageError, openDatabase, self.url, self.dataDir, reactor, [FIRST]
        )
        self.assertIn("schema version 2", str(error))
        self.assertIn("newer", str(error))

    @asyncTest
    async def test_failedMigrationLeavesNothing(self) -> None:
        """
        When one migration fails, none of the pending ones is applied, not
        even the statements of the failing one that ran: afterwards nothing
        is recorded and both can be applied afresh.
        """
        error = self.assertRaises(
            StorageError, openDatabase, self.url, self.dataDir, reactor, [FIRST, BROKEN]
        )
        self.assertIn("cannot prepare", str(error))
        database = self.open([])
        self.assertEqual(await database.runQuery("SELECT version FROM schema_version"), [])
        await database.close()
        database = self.open([FIRST, SECOND])
        self.assertEqual(database.schemaVersion, 2)

    @asyncTest
    async def test_placeholders(self) -> None:
        """
        Queries take C{?} placeholders whatever the driver, and a literal
        C{%} in the SQL stays a C{%}.
        """
        database = self.open([FIRST])
        await database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("100%",))
        rows = await database.runQuery(
            "SELECT a, '%s %' FROM first_table WHERE a LIKE ? AND a = ?", ("1%", "100%")
        )
        self.assertEqual(rows, [("100%", "%s %")])

    @asyncTest
    async def test_interactionResult(self) -> None:
        """
        L{Database.runInteraction} passes its arguments on and fires with
        the interaction's result, after committing.
        """
        database = self.open([FIRST])

        def insert(cursor: Cursor, first: str, *, second: str) -> int:
            cursor.execute("INSERT INTO first_table (a) VALUES (?)", (first,))
            cursor.execute("INSERT INTO first_table (a) VALUES (?)", (second,))
            return cursor.rowcount

        self.assertEqual(await database.runInteraction(insert, "x", second="y"), 1)
        self.assertEqual(
            await database.runQuery("SELECT a FROM first_table ORDER BY a"), [("x",), ("y",)]
        )

    @asyncTest
    async def test_interactionRollback(self) -> None:
        """
        An interaction that raises is rolled back, and its exception (not a
        driver error) comes out unchanged.
        """
        database = self.open([FIRST])
        await self.assertFailure(
            database.runInteraction(_insertThenRaise, NodeExists("n")), NodeExists
        )
        self.assertEqual(await database.runQuery("SELECT COUNT(*) FROM first_table"), [(0,)])

    @asyncTest
    async def test_driverErrorRollback(self) -> None:
        """
        A driver error becomes L{StorageError} naming the database, the
        failure is logged, and the transaction is rolled back.
        """
        database = self.open([FIRST])
        error = await self.assertFailure(database.runInteraction(_insertThenBadSQL), StorageError)
        self.assertIn(database.description, str(error))
        self.assertIn("no_such_column", str(error))
        self.assertEqual(len(self.flushLoggedErrors()), 1)
        self.assertEqual(await database.runQuery("SELECT COUNT(*) FROM first_table"), [(0,)])

    @asyncTest
    async def test_constraintViolation(self) -> None:
        """
        A constraint violation is a L{StorageError} too, and the database
        stays usable afterwards.
        """
        database = self.open([FIRST])
        await database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("k",))
        await self.assertFailure(
            database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("k",)), StorageError
        )
        self.flushLoggedErrors()
        await database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("l",))
        self.assertEqual(await database.runQuery("SELECT COUNT(*) FROM first_table"), [(2,)])

    @asyncTest
    async def test_closeWaits(self) -> None:
        """
        L{Database.close} waits for running operations; afterwards new
        operations fail with L{StorageError}.
        """
        database = self.open([FIRST])
        release = threading.Event()
        self.addCleanup(release.set)

        def blocked(cursor: Cursor) -> str:
            release.wait(30)
            cursor.execute("INSERT INTO first_table (a) VALUES (?)", ("late",))
            return "done"

        running = database.runInteraction(blocked)
        closed = database.close()
        self.assertNoResult(closed)
        release.set()
        self.assertEqual(await running, "done")
        await closed
        error = await self.assertFailure(database.runQuery("SELECT 1"), StorageError)
        self.assertIn("closed", str(error))
        await database.close()
        database = self.open([FIRST])
        self.assertEqual(await database.runQuery("SELECT a FROM first_table"), [("late",)])


class SQLiteDatabaseTests(DatabaseTestsMixin, TestCase):
    """
    L{DatabaseTestsMixin} on a SQLite file, plus SQLite's own cases.
    """

    dialect = "sqlite"

    def setUp(self) -> None:
        self.dataDir = Path(self.mktemp()).absolute()
        self.dataDir.mkdir(parents=True)
        self.url = None

    def test_defaultFile(self) -> None:
        """
        Without a URL the database is C{xmppnetgraph.sqlite} in the data
        directory.
        """
        database = self.open()
        self.assertTrue((self.dataDir / DEFAULT_SQLITE_NAME).is_file())
        self.assertIn(str(self.dataDir / DEFAULT_SQLITE_NAME), database.description)

    def test_relativeFile(self) -> None:
        """
        A relative C{sqlite:///PATH} is relative to the data directory.
        """
        (self.dataDir / "sub").mkdir()
        self.url = "sqlite:///sub/graph.db"
        self.open()
        self.assertTrue((self.dataDir / "sub" / "graph.db").is_file())

    def test_absoluteFile(self) -> None:
        """
        C{sqlite:////PATH} (four slashes) is an absolute path.
        """
        elsewhere = Path(self.mktemp()).absolute()
        elsewhere.mkdir()
        self.url = f"sqlite:///{elsewhere}/graph.db"
        self.open()
        self.assertTrue((elsewhere / "graph.db").is_file())
        self.assertFalse((self.dataDir / DEFAULT_SQLITE_NAME).exists())

    @asyncTest
    async def test_connectionSettings(self) -> None:
        """
        The connection enforces foreign keys, logs ahead (WAL) and waits
        for locks.
        """
        database = self.open()
        self.assertEqual(await database.runQuery("PRAGMA foreign_keys"), [(1,)])
        self.assertEqual(await database.runQuery("PRAGMA journal_mode"), [("wal",)])
        [(timeout,)] = await database.runQuery("PRAGMA busy_timeout")
        self.assertGreater(timeout, 0)

    def test_notADatabase(self) -> None:
        """
        A file that is not a SQLite database gives a L{StorageError} naming
        the file.
        """
        path = self.dataDir / DEFAULT_SQLITE_NAME
        path.write_bytes(b"this is not a database, just some text" * 100)
        error = self.assertRaises(StorageError, openDatabase, None, self.dataDir, reactor)
        self.assertIn(str(path), str(error))
        self.assertIn("not a database", str(error))

    def test_unopenable(self) -> None:
        """
        A file in a directory that does not exist cannot be opened: a
        L{StorageError} names it.
        """
        error = self.assertRaises(
            StorageError, openDatabase, "sqlite:///missing/graph.db", self.dataDir, reactor
        )
        self.assertIn(str(self.dataDir / "missing" / "graph.db"), str(error))
        self.assertIn("cannot open", str(error))

    @asyncTest
    async def test_full(self) -> None:
        """
        When SQLite runs out of room (here: C{max_page_count}), the write
        fails with L{StorageFull}, what was stored before is intact, and
        writing works again once there is room.
        """
        database = self.open([FIRST])
        await database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("small",))
        [(pages,)] = await database.runQuery("PRAGMA page_count")
        await database.runQuery(f"PRAGMA max_page_count = {pages}")
        error = await self.assertFailure(
            database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("x" * 200_000,)),
            StorageFull,
        )
        self.assertIn(database.description, str(error))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(await database.runQuery("SELECT a FROM first_table"), [("small",)])
        await database.runQuery("PRAGMA max_page_count = 1000000")
        await database.runOperation("INSERT INTO first_table (a) VALUES (?)", ("x" * 200_000,))
        self.assertEqual(await database.runQuery("SELECT COUNT(*) FROM first_table"), [(2,)])

    def test_unsupportedScheme(self) -> None:
        """
        A URL of another database is refused, without echoing a password.
        """
        error = self.assertRaises(
            StorageError, openDatabase, "mysql://graph:s3cret@db.example/graph", self.dataDir
        )
        self.assertIn("unsupported database URL", str(error))
        self.assertIn("db.example", str(error))
        self.assertNotIn("s3cret", str(error))


class SQLitePathTests(SynchronousTestCase):
    """
    Tests for L{sqlitePath}.
    """

    def test_paths(self) -> None:
        """
        L{None} is the default file, three slashes a relative path, four an
        absolute one, and other schemes are not SQLite.
        """
        dataDir = Path("/srv/data")
        self.assertEqual(sqlitePath(None, dataDir), dataDir / DEFAULT_SQLITE_NAME)
        self.assertEqual(sqlitePath("sqlite:///a/b.db", dataDir), dataDir / "a" / "b.db")
        self.assertEqual(sqlitePath("sqlite:////var/b.db", dataDir), Path("/var/b.db"))
        self.assertEqual(sqlitePath("SQLITE:///b.db", dataDir), dataDir / "b.db")
        self.assertIsNone(sqlitePath("postgresql://h/db", dataDir))

    def test_noPath(self) -> None:
        """
        A SQLite URL without a path, or with a host, is a L{StorageError}.
        """
        for url in ("sqlite://", "sqlite:///", "sqlite://host/file.db"):
            error = self.assertRaises(StorageError, sqlitePath, url, Path("/srv"))
            self.assertIn("sqlite:///PATH", str(error))


class PostgreSQLOpenErrorTests(SynchronousTestCase):
    """
    PostgreSQL URLs that cannot work give clear messages (no server
    needed).
    """

    def setUp(self) -> None:
        self.dataDir = Path(self.mktemp())

    def test_unreachable(self) -> None:
        """
        A server that refuses the connection gives a L{StorageError} that
        names the host and the database but not the password.
        """
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"postgresql://graph:s3cret@127.0.0.1:{port}/graphdb"
        error = self.assertRaises(StorageError, openDatabase, url, self.dataDir, reactor)
        message = str(error)
        self.assertIn("cannot connect", message)
        self.assertIn("'graphdb'", message)
        self.assertIn(f"127.0.0.1 port {port}", message)
        self.assertNotIn("s3cret", message)

    def test_postgresScheme(self) -> None:
        """
        C{postgres://} is PostgreSQL too.
        """
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        error = self.assertRaises(
            StorageError, openDatabase, f"postgres://127.0.0.1:{port}/g", self.dataDir, reactor
        )
        self.assertIn("cannot connect to the PostgreSQL database 'g'", str(error))

    def test_badURL(self) -> None:
        """
        A URL that libpq cannot parse is a L{StorageError} that says so.
        """
        error = self.assertRaises(
            StorageError, openDatabase, "postgresql://u:s3cret@h/db?bogus=1", self.dataDir, reactor
        )
        self.assertIn("bad PostgreSQL URL", str(error))
        self.assertIn("bogus", str(error))
        self.assertNotIn("s3cret", str(error))

    def test_missingDriver(self) -> None:
        """
        Without psycopg, a PostgreSQL URL gives a L{StorageError} that says
        what to install.
        """
        saved = {
            name: module for name, module in sys.modules.items() if name.split(".")[0] == "psycopg"
        }
        self.addCleanup(sys.modules.update, saved)
        for name in saved:
            del sys.modules[name]
        sys.modules["psycopg"] = None  # type: ignore[assignment]
        self.addCleanup(sys.modules.pop, "psycopg", None)
        error = self.assertRaises(
            StorageError, openDatabase, "postgresql://h/db", self.dataDir, reactor
        )
        self.assertIn("psycopg", str(error))


class PostgreSQLDatabaseTests(DatabaseTestsMixin, TestCase):
    """
    L{DatabaseTestsMixin} on a real PostgreSQL server (L{tests.postgres}),
    plus PostgreSQL's own cases.
    """

    skip = postgresSkip()
    dialect = "postgresql"

    def setUp(self) -> None:
        requirePostgres()
        self.dataDir = Path(self.mktemp()).absolute()
        self.dataDir.mkdir(parents=True)
        self.url = temporaryDatabase(self)

    @asyncTest
    async def test_full(self) -> None:
        """
        PostgreSQL's disk_full (53100) and out_of_memory (53200) become
        L{StorageFull}, and the transaction is rolled back.
        """
        import psycopg.errors

        database = self.open([FIRST])
        for error in (
            psycopg.errors.DiskFull("could not extend file"),
            psycopg.errors.OutOfMemory("out of memory"),
        ):
            failure = await self.assertFailure(
                database.runInteraction(_insertThenRaise, error), StorageFull
            )
            self.assertIn(database.description, str(failure))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(await database.runQuery("SELECT COUNT(*) FROM first_table"), [(0,)])

    def test_description(self) -> None:
        """
        The description names the database and its host, not the URL.
        """
        database = self.open([FIRST])
        self.assertIn("PostgreSQL database 'test_", database.description)
        self.assertIn("host=", self.url or "")
        self.assertNotIn("postgresql://", database.description)
