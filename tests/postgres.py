# -*- test-case-name: tests.test_store_pubsub -*-
"""
A throw-away PostgreSQL server for the tests.

L{sharedCluster} runs C{initdb} into a temporary directory (in
C{/dev/shm} when there is one) and starts
C{postgres} from Debian's C{/usr/lib/postgresql/*/bin} as a child process,
listening on a Unix socket in that directory only (no TCP), with trust
authentication and C{fsync} off. It is started once per test process and
stopped at exit; the server also gets a parent-death signal (through
C{setpriv}), so it ends when the test process dies. L{temporaryDatabase}
gives a test a fresh database of its own and drops it afterwards.

As root, C{initdb} and C{postgres} (which refuse to run as root) run as the
C{postgres} user through C{setpriv}, and the directory is handed to that
user.
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import quote

from twisted.trial.unittest import TestCase

from tests.prosody import skipOutsideCI

#: The user PostgreSQL runs as when the tests run as root.
POSTGRES_USER = "postgres"

#: The database superuser the fixture creates.
SUPERUSER = "xmppnetgraph"

#: Where Debian installs the server programs, one directory per version.
_BIN_GLOB = "/usr/lib/postgresql/*/bin"

#: Seconds to wait for the server to accept connections.
_START_TIMEOUT = 30.0

_PROGRAMS = ("initdb", "postgres")


class PostgresError(Exception):
    """
    The test PostgreSQL server could not be started or used.
    """


def _isRoot() -> bool:
    """
    @return: whether this process runs as root.
    """
    return os.geteuid() == 0


def postgresBinDir() -> Path | None:
    """
    @return: the C{bin} directory of the newest installed PostgreSQL that
        has C{initdb} and C{postgres}, or L{None}.
    """

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    for path in sorted(glob.glob(_BIN_GLOB), key=version, reverse=True):
        if all(os.access(os.path.join(path, p), os.X_OK) for p in _PROGRAMS):
            return Path(path)
    return None


def postgresAvailable() -> str | None:
    """
    Check, cheaply, whether L{sharedCluster} can work here.

    @return: L{None} when it can, else the reason it cannot (for a skip or
        failure message).
    """
    if postgresBinDir() is None:
        return f"PostgreSQL is not installed (no {_BIN_GLOB}; run scripts/setup-system)"
    if importlib.util.find_spec("psycopg") is None:
        return "the psycopg package is not installed (pip install 'psycopg[binary]')"
    if _isRoot():
        if shutil.which("setpriv") is None:
            return "running as root, but setpriv is missing"
        try:
            pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            return f"running as root, but there is no {POSTGRES_USER!r} user"
    return None


def postgresSkip() -> str | None:
    """
    The value for a class-level C{skip} of a test case that needs
    PostgreSQL.

    @return: the reason PostgreSQL is unusable, or L{None} when it is usable
        or when running in CI (then L{requirePostgres} fails the test).
    """
    return skipOutsideCI(postgresAvailable())


def requirePostgres() -> None:
    """
    Call from C{setUp} of a test case that uses L{postgresSkip}.

    @raise PostgresError: if PostgreSQL is unusable (only reached in CI,
        where the test case is not skipped).
    """
    reason = postgresAvailable()
    if reason is not None:
        raise PostgresError(f"PostgreSQL is required in CI but unusable: {reason}")


class PostgresCluster:
    """
    One PostgreSQL server in a directory of its own.

    @ivar directory: holds the data directory, the socket and the log.
    @ivar socketDirectory: where the server's Unix socket is.
    @ivar port: the number in the socket's name (no TCP port is opened).
    """

    port = 5432

    def __init__(self, binDir: Path, directory: Path) -> None:
        """
        @param binDir: where C{initdb} and C{postgres} are.
        @param directory: an empty directory of the cluster's own.
        """
        self._binDir = binDir
        self.directory = directory
        self.socketDirectory = directory
        self._dataDir = directory / "data"
        self._logPath = directory / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: Any = None
        self._names = count(1)

    def _argv(self, program: str, *args: str) -> list[str]:
        """
        @return: the command line that runs C{program}, as the PostgreSQL
            user when we are root, with a parent-death signal when
            C{setpriv} is there.
        """
        argv = [str(self._binDir / program), *args]
        setpriv = shutil.which("setpriv")
        if _isRoot():
            if setpriv is None:
                raise PostgresError("running as root, but setpriv is missing")
            return [
                setpriv,
                f"--reuid={POSTGRES_USER}",
                f"--regid={POSTGRES_USER}",
                "--init-groups",
                "--pdeathsig=INT",
                *argv,
            ]
        if setpriv is not None:
            return [setpriv, "--pdeathsig=INT", *argv]
        return argv

    def start(self) -> None:
        """
        Create the cluster and start the server; return once it accepts
        connections.

        @raise PostgresError: if that fails; the message has the end of
            the server's log.
        """
        if _isRoot():
            user = pwd.getpwnam(POSTGRES_USER)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        os.chmod(self.directory, 0o700)
        initdb = subprocess.run(
            self._argv(
                "initdb",
                f"--pgdata={self._dataDir}",
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        if initdb.returncode != 0:
            raise PostgresError(
                f"initdb failed ({initdb.returncode}): "
                f"{initdb.stdout.decode(errors='replace')[-2000:]}"
            )
        self._launch()
        self._admin = self._waitForServer()

    def _launch(self) -> None:
        """
        Start the server process on the cluster made by L{start}.
        """
        with open(self._logPath, "ab") as log:
            self._process = subprocess.Popen(
                self._argv(
                    "postgres",
                    "-D",
                    str(self._dataDir),
                    "-k",
                    str(self.socketDirectory),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "unix_socket_permissions=0700",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )

    def halt(self) -> None:
        """
        Stop the server (fast shutdown: its clients' connections are
        closed) and keep its files, for L{resume}.
        """
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        process, self._process = self._process, None
        assert process is not None, "the server is not running"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)

    def resume(self) -> None:
        """
        Start the server that L{halt} stopped, on the same files and
        socket; return once it accepts connections.
        """
        self._launch()
        self._admin = self._waitForServer()

    def _waitForServer(self) -> Any:
        """
        @return: an autocommit connection to the C{postgres} database, once
            the server takes one.
        @raise PostgresError: if the server ends or does not answer in time.
        """
        import psycopg

        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PostgresError(
                    f"postgres exited with {self._process.returncode}: {self._logTail()}"
                )
            try:
                return psycopg.connect(self.url("postgres"), autocommit=True)
            except psycopg.OperationalError as e:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PostgresError(
                        f"postgres did not start in {_START_TIMEOUT:.0f}s: {e}; {self._logTail()}"
                    ) from None
            time.sleep(0.02)

    def _logTail(self) -> str:
        """
        @return: the end of the server's log.
        """
        try:
            return self._logPath.read_text(errors="replace")[-2000:]
        except OSError as e:
            return f"(no log: {e})"

    def url(self, database: str) -> str:
        """
        @return: the libpq URL of C{database} on this server.
        """
        host = quote(str(self.socketDirectory), safe="/")
        return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={self.port}"

    def createDatabase(self) -> str:
        """
        Create an empty database with a new name.

        @return: its URL.
        """
        name = f"test_{os.getpid()}_{next(self._names)}"
        self._admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return self.url(name)

    def dropDatabase(self, url: str) -> None:
        """
        Drop the database that L{createDatabase} made for C{url}, closing
        any connections still open to it.
        """
        name = url.split("/", 3)[3].partition("?")[0]
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """
        Stop the server (fast shutdown) and remove its directory.
        """
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:
                pass
            self._admin = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # setpriv execs postgres, so this is the postmaster itself.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


_shared: PostgresCluster | None = None


def _scratchDir() -> str | None:
    """
    @return: C{/dev/shm} when it is a writable directory (memory: creating
        a database there takes milliseconds, on a busy disk it can take a
        quarter of a second), else L{None} for the usual temporary
        directory.
    """
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return None


def sharedCluster() -> PostgresCluster:
    """
    The server that every test of this process shares: started on first
    use, stopped when the process exits.

    @raise PostgresError: if it cannot be started.
    """
    global _shared
    if _shared is None:
        binDir = postgresBinDir()
        if binDir is None:
            raise PostgresError(f"PostgreSQL is not installed (no {_BIN_GLOB})")
        cluster = PostgresCluster(
            binDir, Path(tempfile.mkdtemp(prefix="xng-pg-", dir=_scratchDir()))
        )
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        atexit.register(cluster.stop)
        _shared = cluster
    return _shared


def privateCluster(testCase: TestCase) -> PostgresCluster:
    """
    A server of the test's own (which it may L{halt<PostgresCluster.halt>}
    and L{resume<PostgresCluster.resume>}), removed when the test's
    cleanups run (register anything that uses it later, so that it is
    cleaned up first).
    """
    binDir = postgresBinDir()
    if binDir is None:
        raise PostgresError(f"PostgreSQL is not installed (no {_BIN_GLOB})")
    cluster = PostgresCluster(binDir, Path(tempfile.mkdtemp(prefix="xng-pg-", dir=_scratchDir())))
    testCase.addCleanup(cluster.stop)
    cluster.start()
    return cluster


def temporaryDatabase(testCase: TestCase) -> str:
    """
    Create a database on the shared server for one test and drop it when
    the test's cleanups run (register anything that uses it later, so
    that it is cleaned up first).

    @return: the database's URL.
    """
    cluster = sharedCluster()
    url = cluster.createDatabase()
    testCase.addCleanup(cluster.dropDatabase, url)
    return url
