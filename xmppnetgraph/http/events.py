# -*- test-case-name: tests.test_http_events -*-
"""
C{GET /api/events}: the graph store's committed changes as server-sent
events, one per store event (SSE id = store event id; data = the event as
JSON: id, kind, domain, peer, data, at), names hidden as the graph hides
them (L{Naming}).

A client starts after C{Last-Event-ID} (or C{?after=}), reading the events
it missed from the store, or with the next new event when it gives
neither. New events come from one L{EventTail}, read once for every client.

The store is each client's buffer: a client holds only the position of the
last event it was sent. The response is registered as a streaming
producer on the connection, so when a slow client's socket buffer fills,
twisted.web pauses us; a paused client is sent nothing, and when it
resumes it catches up from the store in batches of L{BATCH}. So memory per
client is bounded by one batch, however slow it reads. A comment line is
sent every L{HEARTBEAT} seconds so that proxies keep the connection; a
client that disconnects is forgotten at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import implementer

from xmppnetgraph.error import BadParameter, Unavailable
from xmppnetgraph.http import params
from xmppnetgraph.http.errors import encodeJSON
from xmppnetgraph.http.naming import BATCH, EventTail, Naming
from xmppnetgraph.http.routes import STREAMING, HandlerResult
from xmppnetgraph.interfaces import IGraphStore
from xmppnetgraph.model import GraphEvent
from xmppnetgraph.timestamp import formatTimestamp

#: Seconds between heartbeat comments.
HEARTBEAT = 15.0

#: The most clients at once (more get a 503).
MAX_CLIENTS = 1000


def formatEvent(event: GraphEvent, naming: Naming) -> bytes:
    """
    @return: C{event} as one server-sent event.
    """
    data = {**naming.redact(event), "at": formatTimestamp(event.at)}
    return b"id: %d\ndata: %s\n\n" % (event.id, encodeJSON(data))


@implementer(IPushProducer)
class _Client:
    """
    One connected client: its position and whether it may be written to.
    """

    def __init__(self, stream: EventStream, request: Request, position: int) -> None:
        self.stream = stream
        self.request = request
        self.position = position
        self.paused = False
        self.reading = False
        self.gone = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.stream.catchUp(self)

    def stopProducing(self) -> None:
        self.gone = True

    def write(self, data: bytes) -> None:
        if not self.gone:
            self.request.write(data)


class EventStream:
    """
    The handler of C{/api/events} and its clients.

    @ivar clients: the connected clients.
    """

    _log = Logger()

    def __init__(
        self,
        store: IGraphStore | None,
        tail: EventTail | None,
        naming: Naming,
        clock: IReactorTime,
        heartbeat: float = HEARTBEAT,
        maxClients: int = MAX_CLIENTS,
    ) -> None:
        self._store = store
        self._tail = tail
        self._naming = naming
        self._clock = clock
        self._maxClients = maxClients
        self.clients: list[_Client] = []
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = clock
        self._interval = heartbeat
        if tail is not None:
            self.stopListening = tail.listen(self._new)

    def stop(self) -> None:
        """
        Stop the heartbeat and close every stream.
        """
        if self._heartbeat.running:
            self._heartbeat.stop()
        for client in list(self.clients):
            self._forget(client)
            if not client.gone:
                client.gone = True
                client.request.unregisterProducer()
                try:
                    client.request.finish()
                except RuntimeError:
                    # Its connection went meanwhile; nothing to close.
                    pass

    def _start(self, request: Request) -> int | None:
        """
        @return: the event id after which C{request} starts, or L{None}
            for "with the next new one".
        """
        header = request.getHeader(b"last-event-id")
        if header is not None and header.strip():
            try:
                value = int(header.strip())
            except ValueError:
                raise BadParameter(f"Last-Event-ID: expected an event id, got {header!r}") from None
            if value < 0:
                raise BadParameter("Last-Event-ID: must not be negative")
            return value
        args = params.query(request)
        if args.get(b"after"):
            return params.integer(args, "after", 0)
        return None

    async def events(self, request: Request, path: Mapping[str, str]) -> HandlerResult:
        """
        C{GET /api/events}: take the request over as an event stream.
        """
        if self._store is None or self._tail is None:
            raise Unavailable("this node keeps no graph store")
        if len(self.clients) >= self._maxClients:
            raise Unavailable(f"too many event streams open ({self._maxClients})")
        after = self._start(request)
        # Asked before waiting: a client that leaves while we wait is seen
        # (notifyFinish asked after the connection is lost never fires).
        finished = request.notifyFinish()
        gone: list[object] = []
        finished.addErrback(gone.append)
        await self._tail.ready()
        if gone:
            return STREAMING
        if after is None:
            after = self._tail.position or 0
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        client = _Client(self, request, after)
        self.clients.append(client)
        request.registerProducer(client, True)
        finished.addBoth(self._finished, client)
        client.write(b": xmppnetgraph events\nretry: 5000\n\n")
        if not self._heartbeat.running:
            self._heartbeat.start(self._interval, now=False)
        self.catchUp(client)
        return STREAMING

    def _finished(self, result: Failure | None, client: _Client) -> None:
        client.gone = True
        self._forget(client)

    def _forget(self, client: _Client) -> None:
        if client in self.clients:
            self.clients.remove(client)
        if not self.clients and self._heartbeat.running:
            self._heartbeat.stop()

    def _beat(self) -> None:
        for client in list(self.clients):
            if not client.paused:
                client.write(b": heartbeat\n\n")

    def _new(self, events: list[GraphEvent]) -> None:
        """
        New events from the tail: send them to every client that is in
        step; the others catch up from the store.
        """
        first = events[0].id
        for client in list(self.clients):
            if client.gone or client.paused or client.reading:
                continue
            if client.position >= events[-1].id:
                continue
            if client.position >= first - 1:
                self._send(client, events)
            else:
                self.catchUp(client)

    def _send(self, client: _Client, events: list[GraphEvent]) -> None:
        chunks = [formatEvent(e, self._naming) for e in events if e.id > client.position]
        if chunks:
            client.write(b"".join(chunks))
            client.position = events[-1].id

    def catchUp(self, client: _Client) -> None:
        """
        Send C{client} what it missed, one batch from the store at a time,
        while it is connected and not paused.
        """
        target = self._tail.position if self._tail is not None else None
        if client.gone or client.paused or client.reading or self._store is None:
            return
        if target is not None and client.position >= target:
            return
        client.reading = True
        d = self._store.events(client.position, BATCH)

        def got(events: list[GraphEvent]) -> None:
            client.reading = False
            if events and not client.gone:
                self._send(client, events)
                # More in the store (a full batch, or news while reading).
                self.catchUp(client)

        def failed(failure: Failure) -> None:
            client.reading = False
            self._log.failure("reading events for a client", failure)

        d.addCallbacks(got, failed)
