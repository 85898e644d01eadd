# -*- test-case-name: tests.test_store_database -*-
"""
The node's database: SQLite (the default, a file in the data directory) or
PostgreSQL, behind one small wrapper around L{adbapi.ConnectionPool}.

Queries are written once, with C{?} placeholders, in the SQL that SQLite
and PostgreSQL share; for PostgreSQL (psycopg) the placeholders are
rewritten to C{%s} (and a literal C{%} to C{%%}). That is the only dialect
trick: the SQL must not contain a C{?} outside a placeholder.

Every operation runs in its own transaction in a pool thread; a failure
rolls the transaction back. Driver errors become L{StorageFull} (disk or
memory full) or L{StorageError}; other exceptions, such as the domain
errors an interaction raises, pass through unchanged.

A database server that goes away (stopped, restarted, unreachable) fails
the operations while it is away, with L{StorageError}; the pool replaces
each dead connection by a new one on its next use, so operations work
again as soon as the server answers. An interaction whose connection was
found dead is run once more on a new connection (nothing of it was
committed: the server rolls back what a lost connection began). The log
says so once ("database unavailable: …", then "database available
again"), rather than once per operation; a full database is logged at
most once in L{FULL_LOG_INTERVAL} (its writers, which know what they
write, say when writing works again).

The schema lives in numbered SQL files (C{schema/NNN_name.sql}, package
data). L{openDatabase} applies those that the database lacks, in order and
in one transaction, and records them in the C{schema_version} table.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import attrs
from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from xmppnetgraph.error import StorageError, StorageFull, XmppNetGraphError
from xmppnetgraph.reactortypes import INodeReactor

_log = Logger()

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: The file name of the default SQLite database in the data directory.
DEFAULT_SQLITE_NAME = "xmppnetgraph.sqlite"

#: Seconds SQLite waits for a lock held by another connection.
SQLITE_BUSY_TIMEOUT = 10.0

#: Seconds to wait for a PostgreSQL server to accept a connection.
POSTGRESQL_CONNECT_TIMEOUT = 10

#: The most connections to a PostgreSQL server.
POSTGRESQL_POOL_SIZE = 5

#: Seconds between two log messages saying that the database is full.
FULL_LOG_INTERVAL = 3600.0

#: SQLSTATEs that mean PostgreSQL cannot store more: disk_full and
#: out_of_memory.
_POSTGRESQL_FULL = frozenset({"53100", "53200"})

_SCHEMA_FILE = re.compile(r"^(\d+)_([A-Za-z0-9_]+)\.sql$")


def currentTime(clock: IReactorTime | None) -> float:
    """
    The time the stores write: from C{clock}, or from the global reactor
    (looked up only then) when a store was made without one.

    @return: seconds since the epoch.
    """
    if clock is None:
        from twisted.internet import reactor

        clock = cast(IReactorTime, reactor)
    return clock.seconds()


@attrs.frozen
class Migration:
    """
    One schema change.

    @ivar version: its number; migrations apply in ascending order.
    @ivar name: a short description (the file name without number).
    @ivar sql: statements separated by C{;}, written for both SQLite and
        PostgreSQL. C{--} comments are allowed on lines of their own; a
        C{;} must not appear other than as a statement terminator.
    """

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """
        @return: the migration's statements, comments removed.
        """
        lines = [line for line in self.sql.splitlines() if not line.lstrip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def schemaMigrations() -> list[Migration]:
    """
    @return: the migrations shipped in C{xmppnetgraph/store/schema/}, in
        order.
    """
    found: list[Migration] = []
    for entry in (resources.files("xmppnetgraph.store") / "schema").iterdir():
        match = _SCHEMA_FILE.match(entry.name)
        if match is not None:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    return found


@attrs.frozen
class _Dialect:
    """
    What differs between the drivers.

    @ivar name: C{"sqlite"} or C{"postgresql"}.
    @ivar errors: the driver's exception base classes.
    @ivar format: whether the driver wants C{%s} placeholders.
    @ivar begin: the statement that starts a transaction, or L{None} when
        the driver starts one by itself.
    """

    name: str
    errors: tuple[type[BaseException], ...]
    format: bool
    begin: str | None

    def convert(self, sql: str) -> str:
        """
        @return: C{sql} with the driver's placeholders.
        """
        if self.format:
            return sql.replace("%", "%%").replace("?", "%s")
        return sql

    def isFull(self, error: BaseException) -> bool:
        """
        @return: whether C{error} means the database cannot store more.
        """
        if isinstance(error, sqlite3.Error):
            return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
                "database or disk is full" in str(error)
            )
        return getattr(error, "sqlstate", None) in _POSTGRESQL_FULL

    def isUnavailable(self, error: BaseException) -> bool:
        """
        @return: whether C{error} means the database cannot be reached (as
            opposed to refusing this one operation): for PostgreSQL a lost
            or refused connection or a server shutting down, for SQLite a
            file that cannot be opened or read.
        """
        if isinstance(error, adbapi.ConnectionLost):
            return True
        if isinstance(error, sqlite3.Error):
            code = getattr(error, "sqlite_errorcode", None)
            return code is not None and code & 0xFF in (
                sqlite3.SQLITE_CANTOPEN,
                sqlite3.SQLITE_IOERR,
            )
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate is None:
            # psycopg raises OperationalError without a SQLSTATE when it
            # cannot connect or the connection broke.
            return type(error).__name__ == "OperationalError"
        return str(sqlstate).startswith("08") or sqlstate in _POSTGRESQL_GONE


#: SQLSTATEs of a server that is going away: admin_shutdown, crash_shutdown,
#: cannot_connect_now.
_POSTGRESQL_GONE = frozenset({"57P01", "57P02", "57P03"})


class _ConnectionDropped(XmppNetGraphError):
    """
    An interaction failed because its connection is dead (raised in the
    pool thread, so that L{Database} runs it again on a new connection).

    @ivar error: the driver's error.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _PooledConnection(adbapi.Connection):
    """
    A pooled connection whose rollback after a failure replaces a dead
    connection quietly: adbapi's own logs a traceback per failed operation
    (twice) while the server is away; L{Database} logs the outage once.
    """

    def rollback(self) -> None:
        """
        Roll back; if that fails, or the connection is closed, drop it
        from the pool (the next operation in this thread connects anew).
        """
        raw: Any = self._connection
        try:
            raw.rollback()
        except BaseException:
            self._pool.disconnect(raw)
            return
        if getattr(raw, "closed", False):
            self._pool.disconnect(raw)


class _Pool(adbapi.ConnectionPool):
    """
    L{adbapi.ConnectionPool} with L{_PooledConnection}s.
    """

    connectionFactory = _PooledConnection


class Cursor:
    """
    The cursor an interaction works with: a DB-API cursor that takes C{?}
    placeholders whatever the driver.
    """

    def __init__(self, cursor: Any, dialect: _Dialect) -> None:
        """
        @param cursor: a DB-API cursor (or an adbapi C{Transaction}).
        @param dialect: how to talk to its driver.
        """
        self._cursor = cursor
        self._dialect = dialect

    @property
    def dialect(self) -> str:
        """
        C{"sqlite"} or C{"postgresql"}.
        """
        return self._dialect.name

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        """
        Run one statement.

        @param sql: the statement, with C{?} placeholders.
        @param params: a value for each placeholder.
        @return: this cursor.
        """
        self._cursor.execute(self._dialect.convert(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> Cursor:
        """
        Run one statement once for each row of parameters (psycopg
        pipelines them; both drivers parse the statement once).

        @param sql: the statement, with C{?} placeholders.
        @param rows: the values for the placeholders, one sequence per run.
        @return: this cursor.
        """
        if rows:
            self._cursor.executemany(self._dialect.convert(sql), [tuple(row) for row in rows])
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        """
        @return: the next row of the last query, or L{None}.
        """
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def fetchall(self) -> list[tuple[Any, ...]]:
        """
        @return: the remaining rows of the last query.
        """
        return [tuple(row) for row in self._cursor.fetchall()]

    @property
    def rowcount(self) -> int:
        """
        The number of rows the last statement changed.
        """
        return int(self._cursor.rowcount)


class Database:
    """
    The node's database: runs interactions in a thread pool, one
    transaction each, and turns driver errors into L{StorageFull} and
    L{StorageError}. Make one with L{openDatabase}.

    @ivar dialect: C{"sqlite"} or C{"postgresql"}.
    @ivar description: which database this is, for messages (a path, or
        host and database name; never a password).
    @ivar schemaVersion: the version of the newest migration applied.
    """

    #: Durations (seconds) are measured on this clock.
    _timer: Callable[[], float] = staticmethod(time.perf_counter)

    def __init__(
        self,
        pool: adbapi.ConnectionPool,
        dialect: _Dialect,
        description: str,
        schemaVersion: int,
        clock: IReactorTime | None = None,
    ) -> None:
        """
        @param pool: the connection pool, not used by anybody else.
        @param dialect: its driver's differences.
        @param description: see L{Database.description}.
        @param schemaVersion: see L{Database.schemaVersion}.
        @param clock: the time for spacing the messages about a full
            database (default: the global reactor's).
        """
        self._pool = pool
        self._dialect = dialect
        self.dialect = dialect.name
        self.description = description
        self.schemaVersion = schemaVersion
        self._running = 0
        self._closed = False
        self._idle: list[Deferred[None]] = []
        self._clock = clock
        # Whether an outage was logged and has not ended yet.
        self._unavailable = False
        # When a full database was last logged.
        self._fullLogged: float | None = None
        self._observers: list[Callable[[str, float], object]] = []

    def observeTransactions(self, observer: Callable[[str, float], object]) -> None:
        """
        Tell C{observer} the name of each interaction (C{"storeReport"}
        for C{_storeReport}) and the seconds from its request to its
        commit or rollback (waiting for a pool thread included), in the
        reactor thread.
        """
        self._observers.append(observer)

    def runInteraction(
        self, interaction: Callable[Concatenate[Cursor, _P], _T], *args: _P.args, **kw: _P.kwargs
    ) -> Deferred[_T]:
        """
        Run C{interaction(cursor, *args, **kw)} in a pool thread, inside one
        transaction: committed when it returns, rolled back when it raises.

        @param interaction: the work; it must not touch the reactor.
        @return: a Deferred that fires with its result, or fails with
            L{StorageFull} or L{StorageError} for a driver error, or with
            whatever else C{interaction} raised.
        """
        if self._closed:
            return fail(StorageError(f"the {self.description} is closed"))
        self._running += 1
        d = self._attempt(interaction, args, kw, again=True)
        if self._observers:
            d.addBoth(self._timed, interaction.__name__.lstrip("_"), self._timer())
        d.addCallbacks(self._succeeded, self._mapFailure)
        d.addBoth(self._finished)
        return d

    def _timed(self, result: _T, name: str, started: float) -> _T:
        """
        Tell the observers how long interaction C{name} took (both tries,
        when the first met a dead connection).
        """
        seconds = self._timer() - started
        for observer in self._observers:
            observer(name, seconds)
        return result

    def _attempt(
        self,
        interaction: Callable[..., _T],
        args: tuple[Any, ...],
        kw: dict[str, Any],
        again: bool,
    ) -> Deferred[_T]:
        """
        Run C{interaction} in the pool; if its connection was dead and
        C{again}, once more (on the connection that replaces it).

        @return: a Deferred firing with its result.
        """
        d: Deferred[_T] = self._pool.runInteraction(self._interact, interaction, args, kw)

        def dropped(failure: Failure) -> Deferred[_T]:
            error = failure.value
            if not isinstance(error, _ConnectionDropped):
                return fail(failure)
            if again:
                return self._attempt(interaction, args, kw, again=False)
            return fail(error.error)

        return d.addErrback(dropped)

    def _succeeded(self, result: _T) -> _T:
        """
        Log the end of an outage; hand on the interaction's result.
        """
        if self._unavailable:
            self._unavailable = False
            _log.info("database available again: the {database} answers", database=self.description)
        return result

    def runQuery(self, sql: str, params: Sequence[object] = ()) -> Deferred[list[tuple[Any, ...]]]:
        """
        Run one query in its own transaction.

        @param sql: the query, with C{?} placeholders.
        @param params: a value for each placeholder.
        @return: a Deferred that fires with all rows.
        """
        return self.runInteraction(_query, sql, params)

    def runOperation(self, sql: str, params: Sequence[object] = ()) -> Deferred[None]:
        """
        Run one statement in its own transaction.

        @param sql: the statement, with C{?} placeholders.
        @param params: a value for each placeholder.
        @return: a Deferred that fires with L{None} once it is committed.
        """
        return self.runInteraction(_operation, sql, params)

    def close(self) -> Deferred[None]:
        """
        Refuse new operations, wait for those running, then close the
        connections and stop the pool's threads.

        @return: a Deferred that fires when the database is closed.
        """
        if not self._closed:
            self._closed = True
            if self._running == 0:
                self._pool.close()
                return succeed(None)
        if self._running == 0:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idle.append(d)
        return d

    def _interact(
        self,
        transaction: Any,
        interaction: Callable[..., _T],
        args: tuple[Any, ...],
        kw: dict[str, Any],
    ) -> _T:
        """
        Start the transaction (where the driver needs that) and run
        C{interaction} on a L{Cursor}. Runs in a pool thread.

        @return: its result.
        @raise _ConnectionDropped: if it failed because the connection is
            dead (a pooled connection whose server went away meanwhile).
        """
        cursor = Cursor(transaction, self._dialect)
        try:
            if self._dialect.begin is not None:
                transaction.execute(self._dialect.begin)
            return interaction(cursor, *args, **kw)
        except self._dialect.errors as e:
            connection = getattr(transaction, "connection", None)
            if getattr(connection, "closed", False) is True:
                raise _ConnectionDropped(e) from e
            raise

    def _mapFailure(self, failure: Failure) -> Failure:
        """
        Turn a driver error into L{StorageFull} or L{StorageError}; leave
        anything else alone.
        """
        error = failure.value
        driverErrors = self._dialect.errors + (adbapi.ConnectionLost,)
        if error is None or not isinstance(error, driverErrors):
            return failure
        mapped: Exception
        if self._dialect.isFull(error):
            now = currentTime(self._clock)
            if self._fullLogged is None or now - self._fullLogged >= FULL_LOG_INTERVAL:
                self._fullLogged = now
                _log.error(
                    "database full: the {database} cannot store more: {error} (writes fail "
                    "until there is room; said at most once an hour)",
                    database=self.description,
                    error=_errorText(error),
                )
            mapped = StorageFull(f"the {self.description} is full: {_errorText(error)}")
        elif self._dialect.isUnavailable(error):
            if not self._unavailable:
                self._unavailable = True
                _log.error(
                    "database unavailable: the {database} failed: {error} (operations fail "
                    "until it answers again)",
                    database=self.description,
                    error=_errorText(error),
                )
            mapped = StorageError(f"the {self.description} is unavailable: {_errorText(error)}")
        else:
            _log.failure("Operation on the {database} failed", failure, database=self.description)
            mapped = StorageError(f"the {self.description} failed: {_errorText(error)}")
        mapped.__cause__ = error
        return Failure(mapped)

    def _finished(self, result: _T) -> _T:
        """
        Count an operation as done; close the pool if L{close} waits for it.
        """
        self._running -= 1
        if self._closed and self._running == 0 and self._idle:
            self._pool.close()
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)
        return result


def _query(cursor: Cursor, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """
    @return: all rows of C{sql}.
    """
    return cursor.execute(sql, params).fetchall()


def _operation(cursor: Cursor, sql: str, params: Sequence[object]) -> None:
    """
    Run C{sql}.
    """
    cursor.execute(sql, params)


def _errorText(error: BaseException) -> str:
    """
    @return: the first line of a driver error's message, or its class name.
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _redact(url: str) -> str:
    """
    @return: C{url} with any password replaced by C{***}.
    """
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "(an unparsable URL)"


def sqlitePath(url: str | None, dataDir: Path) -> Path | None:
    """
    Where a C{sqlite:///PATH} URL puts the database.

    C{sqlite:///relative/file} is relative to C{dataDir};
    C{sqlite:////absolute/file} (four slashes) is absolute. L{None} means
    C{dataDir/xmppnetgraph.sqlite}.

    @return: the database file, or L{None} if C{url} is not a SQLite URL.
    @raise StorageError: for a C{sqlite:} URL without a path.
    """
    if url is None:
        return dataDir / DEFAULT_SQLITE_NAME
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        return None
    if not rest.startswith("/") or not rest[1:]:
        raise StorageError(f"bad database URL {url!r}: write a SQLite database as sqlite:///PATH")
    return dataDir / rest[1:]


def openDatabase(
    url: str | None,
    dataDir: Path,
    reactor: INodeReactor | None = None,
    migrations: Sequence[Migration] | None = None,
) -> Database:
    """
    Open (creating if needed) the node's database and bring its schema up
    to date. This blocks while it connects and migrates: call it at
    startup, before the reactor runs.

    @param url: L{None} for C{<dataDir>/xmppnetgraph.sqlite};
        C{sqlite:///PATH} (a relative C{PATH} is relative to C{dataDir},
        C{sqlite:////abs/path} is absolute); or a libpq URL
        C{postgresql://user:password@host:port/dbname?…} (C{postgres://}
        too), which needs the C{psycopg} package.
    @param dataDir: the node's data directory (it must exist).
    @param reactor: the reactor whose threads run the queries, and whose
        start-up and shutdown events open and close the connections
        (default: the global reactor).
    @param migrations: the schema (default: L{schemaMigrations}).
    @return: the open database.
    @raise StorageError: if the URL is bad, the driver is missing, the
        server cannot be reached, the file is no database, or the schema is
        newer than this code; the message says which (never a password).
    @raise StorageFull: if there is no room for the schema.
    """
    if migrations is None:
        migrations = schemaMigrations()
    path = sqlitePath(url, dataDir)
    if path is not None:
        return _openSQLite(path, reactor, migrations)
    assert url is not None
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres"):
        return _openPostgreSQL(url, reactor, migrations)
    raise StorageError(
        f"unsupported database URL {_redact(url)!r}: use sqlite:///PATH or postgresql://…"
    )


def _sqliteSetup(connection: sqlite3.Connection) -> None:
    """
    Configure a new SQLite connection: foreign keys (for cascading
    deletes) and write-ahead logging.
    """
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA journal_mode = WAL")


def _openSQLite(
    path: Path, reactor: INodeReactor | None, migrations: Sequence[Migration]
) -> Database:
    """
    Open the SQLite database at C{path}: one connection, so writes are
    serialised, with autocommit off in the driver and explicit C{BEGIN}.
    """
    dialect = _Dialect("sqlite", (sqlite3.Error,), format=False, begin="BEGIN")
    description = f"SQLite database {str(path)!r}"
    connectArgs: dict[str, Any] = dict(
        isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT
    )

    def connect() -> Any:
        connection = sqlite3.connect(str(path), **connectArgs)
        try:
            _sqliteSetup(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    version = _migrate(connect, dialect, description, migrations)
    pool = _Pool(  # type: ignore[no-untyped-call]
        "sqlite3",
        str(path),
        cp_min=1,
        cp_max=1,
        cp_noisy=False,
        cp_openfun=_sqliteSetup,
        cp_reactor=reactor,
        **connectArgs,
    )
    return Database(pool, dialect, description, version, reactor)


def _openPostgreSQL(
    url: str, reactor: INodeReactor | None, migrations: Sequence[Migration]
) -> Database:
    """
    Open the PostgreSQL database that C{url} names, through psycopg (3).
    """
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise StorageError(
            "a PostgreSQL database needs the psycopg package (pip install 'psycopg[binary]')"
        ) from None
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error as e:
        raise StorageError(f"bad PostgreSQL URL {_redact(url)!r}: {_errorText(e)}") from None
    host = str(info.get("host") or "the default socket")
    port = f" port {info['port']}" if info.get("port") else ""
    dbname = str(info.get("dbname") or info.get("user") or "(default)")
    description = f"PostgreSQL database {dbname!r} on {host}{port}"
    password = str(info.get("password") or "")
    dialect = _Dialect("postgresql", (psycopg.Error,), format=True, begin=None)

    def connect() -> Any:
        try:
            return psycopg.connect(url, connect_timeout=POSTGRESQL_CONNECT_TIMEOUT)
        except psycopg.Error as e:
            reason = _errorText(e)
            if password:
                reason = reason.replace(password, "***")
            raise StorageError(f"cannot connect to the {description}: {reason}") from None

    version = _migrate(connect, dialect, description, migrations)
    pool = _Pool(  # type: ignore[no-untyped-call]
        "psycopg",
        url,
        connect_timeout=POSTGRESQL_CONNECT_TIMEOUT,
        cp_min=1,
        cp_max=POSTGRESQL_POOL_SIZE,
        cp_noisy=False,
        cp_reconnect=True,
        cp_reactor=reactor,
    )
    return Database(pool, dialect, description, version, reactor)


def _migrate(
    connect: Callable[[], Any], dialect: _Dialect, description: str, migrations: Sequence[Migration]
) -> int:
    """
    Connect once and apply the migrations the database lacks, in one
    transaction.

    @return: the schema version afterwards.
    @raise StorageError: if that fails or the database is newer.
    @raise StorageFull: if there is no room.
    """
    try:
        connection = connect()
    except dialect.errors as e:
        raise StorageError(f"cannot open the {description}: {_errorText(e)}") from None
    try:
        raw = connection.cursor()
        try:
            if dialect.begin is not None:
                raw.execute(dialect.begin)
            version = _applyMigrations(Cursor(raw, dialect), description, migrations)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            raw.close()
    except dialect.errors as e:
        if dialect.isFull(e):
            raise StorageFull(f"the {description} is full: {_errorText(e)}") from None
        raise StorageError(f"cannot prepare the {description}: {_errorText(e)}") from None
    finally:
        connection.close()
    return version


def _applyMigrations(cursor: Cursor, description: str, migrations: Sequence[Migration]) -> int:
    """
    Create C{schema_version} if needed and apply the missing migrations.

    @return: the schema version afterwards.
    """
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
    )
    applied = {row[0] for row in cursor.execute("SELECT version FROM schema_version").fetchall()}
    known = max((m.version for m in migrations), default=0)
    newest = max(applied, default=0)
    if newest > known:
        raise StorageError(
            f"the {description} has schema version {newest}, newer than this "
            f"xmppnetgraph knows ({known}); upgrade xmppnetgraph"
        )
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in applied:
            continue
        _log.info(
            "Applying schema migration {version} ({name}) to {database}",
            version=migration.version,
            name=migration.name,
            database=description,
        )
        for statement in migration.statements():
            cursor.execute(statement)
        cursor.execute(
            "INSERT INTO schema_version (version, name) VALUES (?, ?)",
            (migration.version, migration.name),
        )
    return max(newest, known)
