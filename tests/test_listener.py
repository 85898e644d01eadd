# -*- test-case-name: tests.test_listener -*-
"""
Tests for L{xmppnetgraph.listener}.
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess

from twisted.internet import reactor, tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.nodes import freePort
from xmppnetgraph.error import ListenError, XmppNetGraphError
from xmppnetgraph.listener import DEFAULT_BACKLOG, GuardedPort, Listener, withBacklog

_NullFileDescriptorReservation = tcp._NullFileDescriptorReservation


class ListenerTests(TestCase):
    """
    A L{Listener} listens at start, says clearly why it cannot, and stops
    listening when stopped.
    """

    def test_listensAndStops(self) -> None:
        """
        Started, it accepts connections on its endpoint; stopped, it does
        not any more.
        """
        port = freePort("127.0.0.1")
        listener = Listener(
            "tests", f"tcp:{port}:interface=127.0.0.1", Factory.forProtocol(Protocol), reactor
        )
        listener.privilegedStartService()
        listener.startService()
        self.assertIsNotNone(listener.port)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        d = listener.stopService()
        self.assertIsNotNone(d)
        return d

    def test_busy(self) -> None:
        """
        A port in use raises L{ListenError} at once, naming what listens,
        where, and why; it is one of the project's errors.
        """
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        description = f"tcp:{port}:interface=127.0.0.1"
        listener = Listener("tests", description, Factory.forProtocol(Protocol), reactor)
        with self.assertRaises(ListenError) as caught:
            listener.privilegedStartService()
        self.assertEqual(
            str(caught.exception),
            f"cannot listen for tests on {description}: Address already in use",
        )
        self.assertIsInstance(caught.exception, XmppNetGraphError)
        self.assertIsNone(listener.port)

    def test_startWithoutPrivileged(self) -> None:
        """
        L{Listener.startService} alone listens too, once.
        """
        port = freePort("127.0.0.1")
        listener = Listener(
            "tests", f"tcp:{port}:interface=127.0.0.1", Factory.forProtocol(Protocol), reactor
        )
        listener.startService()
        first = listener.port
        self.assertIsNotNone(first)
        return listener.stopService()


def listenBacklog(port: int) -> int:
    """
    @return: the backlog of the socket listening on C{port} on this
        machine, as the kernel reports it (C{ss}: the Send-Q column of a
        listening socket is its backlog).
    """
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[2])


class BacklogTests(TestCase):
    """
    Listening sockets get a server's backlog, unless the endpoint string
    gives its own.
    """

    skip = None if shutil.which("ss") else "needs ss (iproute2)"

    def listen(self, description: str) -> int:
        """
        Listen on C{description} until the test ends.

        @return: the port.
        """
        listener = Listener("tests", description, Factory.forProtocol(Protocol), reactor)
        listener.startService()
        self.addCleanup(listener.stopService)
        assert listener.port is not None
        return int(listener.port.getHost().port)

    def test_default(self) -> None:
        """
        A C{tcp:} endpoint listens with L{DEFAULT_BACKLOG} (where the
        kernel allows that many), not Twisted's 50.
        """
        with open("/proc/sys/net/core/somaxconn") as f:
            cap = int(f.read())
        port = self.listen("tcp:0:interface=127.0.0.1")
        self.assertEqual(listenBacklog(port), min(DEFAULT_BACKLOG, cap))
        self.assertGreater(min(DEFAULT_BACKLOG, cap), 50)

    def test_explicit(self) -> None:
        """
        C{backlog=} in the endpoint string wins.
        """
        port = self.listen("tcp:0:interface=127.0.0.1:backlog=7")
        self.assertEqual(listenBacklog(port), 7)

    def test_withBacklog(self) -> None:
        """
        L{withBacklog} adds the backlog to the types that take one and
        leave others, and descriptions that give one, alone; escaped colons
        are no separators.
        """
        self.assertEqual(withBacklog("tcp:5269"), "tcp:5269:backlog=1024")
        self.assertEqual(withBacklog("unix:/run/x.sock", 9), "unix:/run/x.sock:backlog=9")
        self.assertEqual(withBacklog("tcp:5269:backlog=3"), "tcp:5269:backlog=3")
        ssl = r"ssl:443:interface=\:\::privateKey=/k\:backlog=1"
        self.assertEqual(withBacklog(ssl), ssl + ":backlog=1024")
        self.assertEqual(withBacklog("systemd:domain=INET:index=0"), "systemd:domain=INET:index=0")


class FakeListeningSocket:
    """
    Stands for a listening socket: C{accept} raises each of L{results}
    that is an exception, returns the others, then says C{EAGAIN}.
    """

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.results: list[object] = []

    def accept(self) -> object:
        if not self.results:
            raise BlockingIOError(errno.EAGAIN, "try again")
        result = self.results.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


class GuardedPortTests(TestCase):
    """
    L{GuardedPort} on a L{MemoryReactorClock}, with accept results
    scripted: out of descriptors with no reserve to refuse with (the busy
    loop Twisted's port would spin in), then descriptors again.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.patch(tcp, "_reservedFD", _NullFileDescriptorReservation())
        self.port = GuardedPort(0, Factory.forProtocol(Protocol), 5, "127.0.0.1", self.reactor)
        self.port.what = "tests"
        self.port.startListening()
        self.addCleanup(self.port.socket.close)
        self.fake = FakeListeningSocket(self.port.socket)
        self.port.socket = self.fake  # type: ignore[assignment]
        self.events: list[dict[str, object]] = []
        observer = self.events.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def said(self, text: str) -> int:
        """
        @return: how many log events so far contain C{text}.
        """
        return sum(text in formatEvent(event) for event in self.events)

    def test_pausesAndSaysOnce(self) -> None:
        """
        When accept fails with C{EMFILE} and nothing can be refused, the
        port stops reading for L{GuardedPort.retryDelay} instead of spinning,
        and warns once however often it happens; the first connection
        accepted afterwards is said once too.
        """
        for _ in range(3):
            self.fake.results = [OSError(errno.EMFILE, "Too many open files")]
            self.port.doRead()
            self.assertNotIn(self.port, self.reactor.readers)
            self.assertTrue(self.port.exhausted)
            self.reactor.advance(self.port.retryDelay)
            self.assertIn(self.port, self.reactor.readers)
        self.assertEqual(self.said("out of file descriptors (EMFILE)"), 1)
        self.assertEqual(self.said("Could not accept"), 0)
        client, server = socket.socketpair()
        self.addCleanup(client.close)
        self.addCleanup(server.close)
        self.fake.results = [(server, ("127.0.0.1", 40000))]
        self.port.doRead()
        self.assertFalse(self.port.exhausted)
        self.assertEqual(self.port.openConnections, 1)
        self.assertEqual(self.said("file descriptors available again"), 1)
        self.assertIn(self.port, self.reactor.readers)

    def test_otherErrorsLogged(self) -> None:
        """
        Other accept failures Twisted logs still reach the log, and pause
        nothing.
        """
        self.fake.results = [OSError(errno.ECONNABORTED, "aborted")]
        self.port.doRead()
        self.assertEqual(self.said("ECONNABORTED"), 1)
        self.assertIn(self.port, self.reactor.readers)
        self.assertFalse(self.port.exhausted)

    def test_stopCancelsPause(self) -> None:
        """
        Stopping a paused port leaves no timer behind.
        """
        self.fake.results = [OSError(errno.ENFILE, "Too many open files in system")]
        self.port.doRead()
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)
        self.port.socket = self.fake.real
        self.port.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.reactor.getDelayedCalls(), [])
