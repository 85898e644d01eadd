# -*- test-case-name: tests.test_listener -*-
"""
Listening endpoints (strports strings) as services whose failure to listen
says what and where, at start-up rather than later in the log.
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure

from xmppnetgraph.error import ListenError


class Listener(service.Service):
    """
    Listen on a strports endpoint while running.

    Endpoints that listen at once (TCP, UNIX, SSL) raise L{ListenError}
    from L{privilegedStartService}, so that C{twistd} can end with a one-line
    message; an endpoint that listens later logs its failure.

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
        self._endpoint = serverFromString(reactor, description)
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
