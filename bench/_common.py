"""
Shared plumbing of the benchmarks: child processes that talk JSON lines on
stdout, their clean-up (also on Ctrl-C and on failure), RSS and CPU readings
from C{/proc}, and table output.

Not part of the package. C{scripts/test} runs each benchmark once with
C{--smoke} (see L{parseArguments}).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from twisted.internet import defer, protocol  # noqa: E402
from twisted.internet.task import deferLater  # noqa: E402
from twisted.logger import Logger  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

_log = Logger()

# Every PID we started and have not seen exit; killed at interpreter exit
# whatever happened before.
_livePIDs: set[int] = set()


def _killLeftovers() -> None:
    """
    SIGKILL every child that is still alive (last resort at exit).
    """
    for pid in list(_livePIDs):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _livePIDs.discard(pid)


atexit.register(_killLeftovers)


def trackPID(pid: int) -> None:
    """
    Kill C{pid} at exit if it is still running then.
    """
    _livePIDs.add(pid)


def untrackPID(pid: int) -> None:
    """
    C{pid} has exited or is someone else's to stop.
    """
    _livePIDs.discard(pid)


_cleanups: list[Callable[[], Any]] = []


def addCleanup(cleanup: Callable[[], Any]) -> None:
    """
    Run C{cleanup} (which may return a Deferred or coroutine) when the
    reactor shuts down, also after Ctrl-C, unless it was run before by
    L{runCleanups}. Cleanups must be safe to run twice.
    """
    _cleanups.append(cleanup)


async def runCleanups() -> None:
    """
    Run the registered cleanups, last first, and forget them.
    """
    while _cleanups:
        cleanup = _cleanups.pop()
        try:
            result = cleanup()
            if result is not None:
                await result
        except Exception as e:
            print(f"cleanup failed: {e}", file=sys.stderr)


_state = {"shuttingDown": False, "mainFinished": False}


def installShutdownCleanup(reactor: Any) -> None:
    """
    Make reactor shutdown (normal end, Ctrl-C, SIGTERM) run L{runCleanups}.
    """

    async def shutdown() -> None:
        _state["shuttingDown"] = True
        await runCleanups()
        if not _state["mainFinished"]:
            print("interrupted; every process we started has been stopped", file=sys.stderr)

    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: defer.Deferred.fromCoroutine(shutdown())
    )


def workDirectory(reactor: Any, prefix: str, keep: bool, description: str = "") -> Path:
    """
    Set up a benchmark run: install the shutdown clean-up, make a work
    directory (mode 0755: Prosody peers read it) that is removed at the end
    unless C{keep}, and print the machine's load with the directory and
    C{description}.

    @return: the work directory.
    """
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    installShutdownCleanup(reactor)
    addCleanup(lambda: None if keep else shutil.rmtree(work, ignore_errors=True))
    suffix = f"; {description}" if description else ""
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
        f"work directory: {work}{suffix}"
    )
    return work


def parseArguments(
    parser: argparse.ArgumentParser, argv: Sequence[str], smoke: Sequence[str]
) -> argparse.Namespace:
    """
    Add C{--smoke} to C{parser} and parse C{argv}.

    C{--smoke} is a run of a few seconds with the options C{smoke} (command
    line words, e.g. C{["-n", "500"]}) in place of the defaults; options
    given on the command line still win. C{scripts/test} runs every
    benchmark so, to keep them working: the figures are printed, and
    nothing checks them (they are too small to mean much).

    @return: the parsed options.
    """
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"a quick run to check that the benchmark works: {' '.join(smoke)}",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        # Later words win, so the command line overrides the smoke options.
        args = parser.parse_args([*smoke, *argv])
    return args


def runMain(main: Callable[[Any, list[str]], Any]) -> None:
    """
    Run C{main(reactor, argv)} (a coroutine function) under C{task.react};
    after Ctrl-C, do not print the tracebacks that stopping causes.
    """
    from twisted.internet import task

    def finished(result: Any) -> Any:
        _state["mainFinished"] = True
        if _state["shuttingDown"] and isinstance(result, Failure):
            return None
        return result

    task.react(
        lambda reactor: defer.Deferred.fromCoroutine(main(reactor, sys.argv[1:])).addBoth(finished)
    )


def freePort(address: str = "127.0.0.1") -> int:
    """
    @return: a TCP port that is free on C{address} right now.
    """
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def rssKiB(pid: int) -> int:
    """
    @return: the resident set size of C{pid} in KiB (C{VmRSS}).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpuSeconds(pid: int) -> float:
    """
    @return: user + system CPU seconds that C{pid} has used so far.
    """
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[11], fields[12] are utime and stime (fields 14 and 15 of stat).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Child(protocol.ProcessProtocol):
    """
    A child process that writes one JSON object per line on stdout; its
    stderr goes to a file.

    @ivar pid: the child's PID once started.
    @ivar events: every JSON object received so far.
    """

    def __init__(self, name: str, stderrPath: Path) -> None:
        self.name = name
        self.stderrPath = stderrPath
        self.events: list[dict[str, Any]] = []
        self.pid: int | None = None
        self.ended: defer.Deferred[None] = defer.Deferred()
        self._stderr = stderrPath.open("ab")
        self._buffer = b""
        self._waiters: list[
            tuple[Callable[[dict[str, Any]], bool], defer.Deferred[dict[str, Any]]]
        ] = []
        self.exitReason: Any = None

    @classmethod
    def spawn(
        cls,
        reactor: Any,
        name: str,
        argv: Sequence[str],
        workDir: Path,
        env: dict[str, str] | None = None,
    ) -> Child:
        """
        Start C{argv} as a child process.

        @return: the running child.
        """
        child = cls(name, workDir / f"{name}.stderr")
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(REPO)] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        environment["PYTHONUNBUFFERED"] = "1"
        environment.update(env or {})
        transport = reactor.spawnProcess(
            child, argv[0], list(argv), env=environment, path=str(workDir)
        )
        child.pid = transport.pid
        trackPID(transport.pid)
        return child

    def outReceived(self, data: bytes) -> None:
        """
        Split stdout into lines and decode each as JSON.
        """
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                self._stderr.write(b"[stdout] " + line + b"\n")
                continue
            self.events.append(event)
            for waiter in list(self._waiters):
                predicate, d = waiter
                if predicate(event):
                    self._waiters.remove(waiter)
                    d.callback(event)

    def errReceived(self, data: bytes) -> None:
        """
        Keep stderr in a file.
        """
        self._stderr.write(data)
        self._stderr.flush()

    def processEnded(self, reason: Any) -> None:
        """
        Fail whoever still waits for output.
        """
        self.exitReason = reason
        if self.pid is not None:
            untrackPID(self.pid)
        self._stderr.close()
        waiters, self._waiters = self._waiters, []
        for _, d in waiters:
            d.errback(RuntimeError(f"{self.name} exited ({reason.value}); see {self.stderrPath}"))
        self.ended.callback(None)

    def waitFor(self, event: str, timeout: float, reactor: Any) -> defer.Deferred[dict[str, Any]]:
        """
        @return: a Deferred firing with the first (past or future) JSON
            object whose C{"event"} is C{event}.
        """
        for seen in self.events:
            if seen.get("event") == event:
                return defer.succeed(seen)
        if self.ended.called:
            return defer.fail(RuntimeError(f"{self.name} has exited; see {self.stderrPath}"))
        d: defer.Deferred[dict[str, Any]] = defer.Deferred()
        self._waiters.append((lambda e: e.get("event") == event, d))

        def timedOut(f: Any, t: float) -> Any:
            raise RuntimeError(f"{self.name}: no {event!r} within {t:g} s; see {self.stderrPath}")

        d.addTimeout(timeout, reactor, onTimeoutCancel=lambda r, t: timedOut(r, t))
        return d

    def writeLine(self, obj: dict[str, Any]) -> None:
        """
        Send one JSON object to the child's stdin.
        """
        if self.transport is not None and not self.ended.called:
            self.transport.write(json.dumps(obj).encode() + b"\n")

    def alive(self) -> bool:
        """
        @return: whether the child is still running.
        """
        return not self.ended.called

    async def stop(self, reactor: Any, grace: float = 5.0) -> None:
        """
        SIGTERM, then SIGKILL after C{grace} seconds.
        """
        if self.ended.called or self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        waited = 0.0
        while not self.ended.called and waited < grace:
            await deferLater(reactor, 0.05, lambda: None)
            waited += 0.05
        if not self.ended.called:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.ended


async def sleep(reactor: Any, seconds: float) -> None:
    """
    Wait C{seconds} in the reactor.
    """
    await deferLater(reactor, seconds, lambda: None)


def printTable(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """
    Print a plain-text table with right-aligned numeric columns.
    """
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    print()
    print(title)
    print(fmt(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(fmt(row))
    sys.stdout.flush()


def now() -> float:
    """
    @return: a monotonic time in seconds.
    """
    return time.monotonic()


async def waitEvent(
    reactor: Any,
    child: Child,
    name: str,
    timeout: float,
    since: int = 0,
    predicate: Callable[[dict[str, Any]], bool] = lambda e: True,
) -> dict[str, Any]:
    """
    @return: the first event C{name} of C{child} at index C{since} or later
        that satisfies C{predicate}.
    @raise RuntimeError: if the child reports an error, exits, or sends no
        such event within C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        for event in child.events[since:]:
            if event.get("event") == "error":
                raise RuntimeError(f"{child.name} failed:\n{event.get('message')}")
            if event.get("event") == name and predicate(event):
                return event
        if not child.alive():
            raise RuntimeError(f"{child.name} exited; see {child.stderrPath} and its node.log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name}: no {name!r} within {timeout:g} s; see its node.log")
        await sleep(reactor, 0.005)


async def ask(
    reactor: Any, child: Child, command: dict[str, Any], answer: str, timeout: float = 30
) -> dict[str, Any]:
    """
    Send C{command} and wait for the C{answer} event that follows it.
    """
    since = len(child.events)
    child.writeLine(command)
    return await waitEvent(reactor, child, answer, timeout, since)
