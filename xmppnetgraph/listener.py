# -*- test-case-name: tests.test_listener -*-
"""
Listening endpoints (strports strings) as services whose failure to listen
says what and where, at start-up rather than later in the log; with a
listen backlog fit for a server, and TCP ports that refuse connections
cleanly, and say so once, when the process is out of file descriptors.

The backlog: Twisted listens with a backlog of 50, so that a burst of
peers connecting at once (a restart of a big server, a storm) has its SYNs
dropped and retried a second or more later; 500 connections opened at once
took 9.2 s against 0.07 s with a backlog of 1,024. Every C{tcp:}, C{ssl:}
and C{unix:} endpoint listens with L{DEFAULT_BACKLOG} unless its string
gives C{backlog=} (the kernel may cap it: C{net.core.somaxconn}).

File descriptors: when C{accept()} fails with C{EMFILE}, Twisted's TCP port
closes a descriptor it keeps in reserve, accepts and closes the waiting
connections, and takes the reserve again; it logs each step for each
connection, and when it cannot (no reserve, C{ENFILE}) the waiting
connection makes the port readable again at once, a busy loop.
L{GuardedPort} turns that into one warning when the descriptors run out
and one line when a connection is accepted again, and stops reading the
port for L{GuardedPort.retryDelay} when a round could refuse nothing.
Streams already open go on.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.internet import tcp
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
)
from twisted.logger import ILogObserver, LogEvent, Logger, globalLogPublisher
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import directlyProvides, providedBy

from xmppnetgraph.error import ListenError

#: The listen backlog of C{tcp:}, C{ssl:} and C{unix:} endpoints whose
#: string does not give one.
DEFAULT_BACKLOG = 1024

#: The endpoint types that take C{backlog=}.
_BACKLOG_TYPES = frozenset({"tcp", "tcp6", "ssl", "unix"})

# The names of the accept() errors that mean the process or the system is
# out of descriptors, as Twisted's port logs them.
_OUT_OF_DESCRIPTORS = {"EMFILE", "ENFILE"}


def _arguments(description: str) -> list[str]:
    """
    @return: the colon-separated parts of a strports description, with
        C{\\:} and C{\\\\} left escaped (as Twisted's parser reads them).
    """
    parts = [""]
    escaped = False
    for character in description:
        if escaped:
            parts[-1] += "\\" + character
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ":":
            parts.append("")
        else:
            parts[-1] += character
    return parts


def withBacklog(description: str, backlog: int = DEFAULT_BACKLOG) -> str:
    """
    @param description: a strports description, such as C{tcp:5269}.
    @param backlog: the backlog to give it.
    @return: C{description} with C{:backlog=N} added if it is of a type
        that takes one (C{tcp}, C{ssl}, C{unix}) and gives none; else
        C{description} itself.
    """
    parts = _arguments(description)
    if len(parts) < 2 or parts[0].strip().lower() not in _BACKLOG_TYPES:
        return description
    if any(part.split("=", 1)[0].strip() == "backlog" for part in parts[1:] if "=" in part):
        return description
    return f"{description}:backlog={backlog}"


class _CountedServer(tcp.Server):
    """
    A connection accepted by a L{GuardedPort}, which counts the open ones.
    """

    server: GuardedPort

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server.openConnections += 1

    def connectionLost(self, reason: Failure) -> None:
        try:
            super().connectionLost(reason)
        finally:
            self.server.openConnections -= 1


class GuardedPort(tcp.Port):
    """
    A TCP port that says once when it refuses connections for want of
    file descriptors, and never spins on a connection it cannot accept
    (see the module docstring).

    @ivar what: what listens here, for messages.
    @ivar openConnections: the connections it accepted that are open.
    @ivar exhausted: whether the last accept failed for want of
        descriptors (until one works again).
    @ivar refused: connections closed at once since L{exhausted} began.
    @ivar retryDelay: seconds the port stops reading after a round that
        could not even refuse the waiting connection.
    """

    transport = _CountedServer
    retryDelay = 1.0
    _log = Logger()

    def __init__(
        self,
        port: int,
        factory: IProtocolFactory,
        backlog: int = 50,
        interface: str = "",
        reactor: Any = None,
        what: str = "a port",
    ) -> None:
        super().__init__(port, factory, backlog, interface, reactor)
        self.what = what
        self.openConnections = 0
        self.exhausted = False
        self.refused = 0
        self._error: str | None = None
        self._closed = 0
        self._retry: IDelayedCall | None = None
        # What Twisted's accept loop logs comes here first (see doRead).
        observer: ILogObserver = self._acceptLogged  # type: ignore[assignment]
        self._logger = Logger(namespace=__name__, source=self, observer=observer)

    def _acceptLogged(self, event: LogEvent) -> None:
        """
        An event of Twisted's accept loop (buffered until the loop ends):
        note running out of descriptors and each connection closed for it;
        let anything else through to the log.
        """
        text = event.get("log_format") or ""
        error = event.get("acceptError")
        if text.startswith("EMFILE encountered"):
            self._error = "EMFILE"
        elif text.startswith("EMFILE recovery: Closed socket"):
            self._closed += 1
        elif text.startswith("Re-reserving EMFILE"):
            pass
        elif error in _OUT_OF_DESCRIPTORS:
            self._error = str(error)
        else:
            globalLogPublisher(event)

    def doRead(self) -> None:
        """
        Accept what waits, then say whether descriptors ran out or came
        back; pause reading when nothing could be done.
        """
        accepted = self.sessionno
        self._error, self._closed = None, 0
        super().doRead()
        if self._error is not None:
            self.refused += self._closed
            if not self.exhausted:
                self.exhausted = True
                self._log.warn(
                    "out of file descriptors ({error}): refusing new connections on {what} "
                    "(port {port}); {open} connections open on it",
                    error=self._error,
                    what=self.what,
                    port=self._realPortNumber,
                    open=self.openConnections,
                )
            if self._closed == 0 and self._retry is None:
                # The connection still waits and the port stays readable:
                # look again later rather than at once, forever.
                self.stopReading()
                self._retry = self.reactor.callLater(self.retryDelay, self._resume)
        elif self.exhausted and self.sessionno > accepted:
            self.exhausted = False
            self._log.info(
                "file descriptors available again: accepting connections on {what} "
                "(port {port}) after refusing {refused}",
                what=self.what,
                port=self._realPortNumber,
                refused=self.refused,
            )
            self.refused = 0

    def _resume(self) -> None:
        """
        Read the port again after a pause.
        """
        self._retry = None
        if self.connected and not self.disconnecting:
            self.startReading()

    def connectionLost(self, reason: Failure) -> None:
        """
        Stop the pause's timer with the port.
        """
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        super().connectionLost(reason)


class _GuardedReactor:
    """
    The reactor as endpoints see it when a L{Listener} listens: its TCP
    (and SSL, which is TLS over TCP) ports are L{GuardedPort}s; everything
    else is the reactor's own.
    """

    def __init__(self, reactor: Any, what: str) -> None:
        self._reactor = reactor
        self._what = what
        directlyProvides(self, providedBy(reactor))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def listenTCP(
        self, port: int, factory: IProtocolFactory, backlog: int = 50, interface: str = ""
    ) -> GuardedPort:
        """
        See L{IReactorTCP.listenTCP<twisted.internet.interfaces.IReactorTCP.listenTCP>}.
        """
        listening = GuardedPort(port, factory, backlog, interface, self._reactor, self._what)
        listening.startListening()
        return listening

    def listenSSL(
        self,
        port: int,
        factory: IProtocolFactory,
        contextFactory: Any,
        backlog: int = 50,
        interface: str = "",
    ) -> GuardedPort:
        """
        See L{IReactorSSL.listenSSL<twisted.internet.interfaces.IReactorSSL.listenSSL>}.
        """
        return self.listenTCP(
            port, TLSMemoryBIOFactory(contextFactory, False, factory), backlog, interface
        )


class Listener(service.Service):
    """
    Listen on a strports endpoint while running.

    Endpoints that listen at once (TCP, UNIX, SSL) raise L{ListenError}
    from L{privilegedStartService}, so that C{twistd} can end with a one-line
    message; an endpoint that listens later logs its failure. TCP and SSL
    ports are L{GuardedPort}s; the backlog is L{DEFAULT_BACKLOG} unless the
    description gives one.

    @ivar what: what listens here, for messages (C{"s2s"}).
    @ivar description: the strports description.
    @ivar port: the listening port while running, else L{None}.
    """

    _log = Logger()

    def __init__(
        self, what: str, description: str, factory: IProtocolFactory, reactor: IReactorCore
    ) -> None:
        self.what = what
        self.description = description
        self._endpoint = serverFromString(_GuardedReactor(reactor, what), withBacklog(description))
        self._factory = factory
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort] | None = None

    def privilegedStartService(self) -> None:
        """
        Listen now.

        @raise ListenError: with a clear message if we can't.
        """
        super().privilegedStartService()
        outcome: list[IListeningPort | Failure] = []
        later = False

        def arrived(result: IListeningPort | Failure) -> None:
            if later:
                self._listened(result)
            else:
                outcome.append(result)

        listening = self._endpoint.listen(self._factory)
        listening.addBoth(arrived)
        if not outcome:
            later = True
            self._listening = listening
            return
        if isinstance(outcome[0], Failure):
            raise self._error(outcome[0])
        self.port = outcome[0]

    def _listened(self, port: IListeningPort | Failure) -> None:
        """
        An endpoint that listens later has listened, or failed to.
        """
        self._listening = None
        if isinstance(port, Failure):
            if not port.check(CancelledError):
                self._log.error("{error}", error=str(self._error(port)))
        else:
            self.port = port

    def _error(self, failure: Failure) -> ListenError:
        """
        @return: the L{ListenError} that says why C{failure} happened.
        """
        value = failure.value
        if isinstance(value, CannotListenError):
            socketError = value.socketError
            reason = socketError.strerror if isinstance(socketError, OSError) else socketError
        else:
            reason = f"{type(value).__name__}: {value}"
        return ListenError(f"cannot listen for {self.what} on {self.description}: {reason}")

    def startService(self) -> None:
        """
        Listen, unless L{privilegedStartService} did already.
        """
        if self.port is None and self._listening is None:
            self.privilegedStartService()
        super().startService()

    def stopService(self) -> Deferred[None] | None:
        """
        Stop listening.
        """
        super().stopService()
        if self._listening is not None:
            self._listening.cancel()
            self._listening = None
        port, self.port = self.port, None
        if port is None:
            return None
        stopped: Deferred[None] | None = port.stopListening()
        return stopped
