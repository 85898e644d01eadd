# -*- test-case-name: tests.test_descriptors -*-
"""
C{twistd xmppnetgraph} and file descriptors, in a child process started
with a low C{RLIMIT_NOFILE}: at start it raises the soft limit to the hard
one (and says so); when the descriptors run out, new s2s connections are
closed at once and that is logged once, while a stream already open goes
on; when some are closed, new connections are accepted again.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.nodes import freePort, waitFor

#: The limits the child starts with (soft, hard).
SOFT, HARD = 64, 160

_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
    b" xmlns:stream='http://etherx.jabber.org/streams' to='a.example'"
    b" from='c.example' version='1.0'>"
)

# Lower the limits, then run twistd in this process (the limits stay).
_CHILD = (
    "import resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({SOFT}, {HARD})); "
    "from twisted.scripts.twistd import run; "
    "sys.argv[0] = 'twistd'; run()"
)


class _Child(ProcessProtocol):
    """
    Keeps the child's log lines; C{ended} fires when it exits.
    """

    def __init__(self) -> None:
        self.output = b""
        self.ended: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def lines(self, text: str) -> int:
        """
        @return: how many lines of the log contain C{text}.
        """
        return sum(text in line for line in self.output.decode("utf-8", "replace").splitlines())

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)


def _answer(connection: socket.socket) -> bytes:
    """
    Send a stream header on C{connection}.

    @return: the first bytes the node answers, or C{b""} if it closed the
        connection instead.
    """
    connection.sendall(_HEADER)
    try:
        return connection.recv(4096)
    except ConnectionResetError:
        return b""


class DescriptorTests(TestCase):
    """
    A node under twistd with C{RLIMIT_NOFILE} at ({SOFT}, {HARD}).
    """

    timeout = 90

    async def startNode(self) -> tuple[_Child, int]:
        """
        Start the child and wait until its s2s port answers.

        @return: the child's protocol and its s2s port.
        """
        base = Path(self.mktemp()).absolute()
        base.mkdir()
        port = freePort()
        argv = [
            sys.executable,
            "-c",
            _CHILD,
            "-n",
            "--pidfile=",
            "xmppnetgraph",
            "--domain=a.example",
            f"--data-dir={base / 'data'}",
            f"--s2s=tcp:{port}:interface=127.0.0.1",
            "--no-web",
            "--no-crawl",
            "--no-publish",
            # The held connections must outlive the test.
            "--handshake-timeout=300",
        ]
        child = _Child()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            child, sys.executable, argv, env=env, path=str(base)
        )

        async def stop() -> None:
            if process.pid is not None:
                process.signalProcess(signal.SIGTERM)
            await child.ended

        self.addCleanup(lambda: defer.Deferred.fromCoroutine(stop()))
        self.pid = process.pid
        await waitFor(lambda: child.lines(f"starting on {port}") > 0, timeout=30)
        return child, port

    async def test_raisesSoftLimit(self) -> None:
        """
        At start, the soft limit of open files is raised to the hard one,
        and the log says so once.
        """
        child, _ = await self.startNode()
        limits = Path(f"/proc/{self.pid}/limits").read_text()
        [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
        self.assertEqual(line.split()[3:5], [str(HARD), str(HARD)])
        self.assertEqual(child.lines(f"open files: raised the limit from {SOFT} to {HARD}"), 1)

    async def test_outOfDescriptors(self) -> None:
        """
        Connections beyond the limit are closed at once, and the log says
        so once; a stream opened before goes on (it answers STARTTLS); once
        some connections are closed, new ones are accepted again, which
        the log says once too.
        """
        child, port = await self.startNode()

        def connect() -> socket.socket:
            connection = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(connection.close)
            return connection

        def exhaust() -> tuple[socket.socket, list[socket.socket], int]:
            first = connect()
            opened = _answer(first)
            while opened and b"</stream:features>" not in opened:
                opened += first.recv(4096)
            held = []
            refused = 0
            for _ in range(2 * HARD):
                connection = connect()
                if _answer(connection):
                    held.append(connection)
                else:
                    connection.close()
                    refused += 1
                    if refused == 3:
                        break
            return first, held, refused

        first, held, refused = await deferToThread(exhaust)
        self.assertEqual(refused, 3)
        self.assertLess(len(held), HARD)
        await waitFor(lambda: child.lines("out of file descriptors") > 0)
        self.assertEqual(child.lines("out of file descriptors"), 1, child.output.decode())
        self.assertEqual(child.lines("EMFILE recovery"), 0)

        def starttls() -> bytes:
            first.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            answer = first.recv(4096)
            while answer and b"<proceed" not in answer:
                answer += first.recv(4096)
            return answer

        self.assertIn(b"<proceed", await deferToThread(starttls))

        for connection in held[:5]:
            connection.close()

        def accepted() -> bool:
            return bool(_answer(connect()))

        for _ in range(100):
            if await deferToThread(accepted):
                break
        else:
            self.fail("no connection accepted after closing some")
        await waitFor(lambda: child.lines("file descriptors available again") > 0)
        self.assertEqual(child.lines("file descriptors available again"), 1)
        self.assertEqual(child.lines("out of file descriptors"), 1)
