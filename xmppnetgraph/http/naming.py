# -*- test-case-name: tests.test_http_events -*-
"""
Who the web API may name, outside the graph view too: the server-sent
events, a domain's peers and its history name domains, and they must hide
the same ones that L{viewGraph<xmppnetgraph.graphview.viewGraph>} hides
(with C{namePolicy="consented"}, a domain whose own disco#info did not
list C{urn:xmpp:serverinfo:0} by our check; with either policy, excluded
domains).

L{Naming} knows every domain's consent as the store last said: loaded
once from a snapshot, then kept current from the store's events
(C{domain-changed} carries the new facts), which L{EventTail} reads once
for every consumer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from xmppnetgraph.exclusions import Exclusions
from xmppnetgraph.interfaces import IChangeFeed, IGraphStore
from xmppnetgraph.model import GraphChanged, GraphEvent, GraphSnapshot, NamePolicy

#: Events read from the store at once.
BATCH = 500


class Naming:
    """
    Whether a domain may be named.

    @ivar loaded: whether the consents have been loaded.
    @ivar position: the id of the newest event applied.
    """

    def __init__(
        self,
        namePolicy: NamePolicy = "consented",
        excluded: Callable[[str], bool] | None = None,
    ) -> None:
        self._policy = namePolicy
        self._excluded = excluded or Exclusions.empty().excluded
        self._consents: dict[str, bool] = {}
        # The id of the event that last set each domain's consent: a
        # snapshot older than it does not undo it.
        self._setBy: dict[str, int] = {}
        self.loaded = False
        self.position = 0

    def load(self, consents: Mapping[str, bool | None], position: int) -> None:
        """
        Start from a snapshot's consents (as of event C{position}); what
        newer events applied already stays (with a pool of database
        connections, the snapshot may be read after them).
        """
        for name, value in consents.items():
            if self._setBy.get(name, 0) <= position:
                self._consents[name] = value is True
        self.position = max(self.position, position)
        self.loaded = True

    def apply(self, events: Iterable[GraphEvent]) -> None:
        """
        Take the consents that C{events} (newer than L{position}) record.
        """
        for event in events:
            if event.id <= self.position:
                continue
            self.position = event.id
            if event.kind == "domain-changed":
                facts = event.data.get("facts")
                consents = facts.get("consents") if isinstance(facts, Mapping) else None
                self._consents[event.domain] = consents is True
                self._setBy[event.domain] = event.id

    def excluded(self, domain: str) -> bool:
        """
        @return: whether C{domain} is on the exclusion list.
        """
        return self._excluded(domain)

    def nameable(self, domain: str) -> bool:
        """
        @return: whether the API may show C{domain} by name.
        """
        if self._excluded(domain):
            return False
        return self._policy == "reported" or self._consents.get(domain, False)

    def redact(self, event: GraphEvent) -> dict[str, object]:
        """
        @return: C{event} as the API shows it: a domain that may not be
            named is L{None}, and so are the values of its own events.
        """
        domain: str | None = event.domain
        peer = event.peer
        data: Mapping[str, object] = event.data
        if not self.nameable(event.domain):
            domain, data = None, {}
        if peer is not None and not self.nameable(peer):
            peer = None
            if "remote" in data:
                data = {**data, "remote": None}
        return {"id": event.id, "kind": event.kind, "domain": domain, "peer": peer, "data": data}


class EventTail:
    """
    Reads the store's new events once, in order, as the change feed
    announces them, and hands them to L{Naming} and then to every
    listener.

    @ivar position: the id of the newest event read (L{None} until the
        start position is known).
    """

    _log = Logger()

    def __init__(self, store: IGraphStore, feed: IChangeFeed, naming: Naming) -> None:
        self._store = store
        self._naming = naming
        self._listeners: list[Callable[[list[GraphEvent]], object]] = []
        self.position: int | None = None
        self._target = 0
        self._reading = False
        self._ready: Deferred[None] | None = None
        self.stopObserving = feed.observe(GraphChanged, self._changed)

    def listen(self, listener: Callable[[list[GraphEvent]], object]) -> Callable[[], None]:
        """
        Call C{listener(events)} with every batch of new events.

        @return: a function that removes it.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def ready(self) -> Deferred[None]:
        """
        Load L{Naming} from the current graph once.

        @return: a Deferred that fires once it is loaded.
        """
        if self._ready is None:
            self._ready = self._store.graph().addCallback(self._loaded)
            self._ready.addErrback(self._loadFailed)
        d: Deferred[None] = Deferred()

        def fire(result: object) -> object:
            d.callback(None)
            return result

        self._ready.addBoth(fire)
        return d

    def _loadFailed(self, failure: Failure) -> None:
        """
        Log a failed load; the next L{ready} tries again.
        """
        self._ready = None
        self._log.failure("loading the graph's consents", failure)

    def _loaded(self, snapshot: GraphSnapshot) -> None:
        """
        Start L{Naming} (and the reading position) from C{snapshot}.
        """
        self._naming.load(
            {domain.domain: domain.consents for domain in snapshot.domains},
            snapshot.lastEventId,
        )
        if self.position is None:
            self.position = snapshot.lastEventId
        self._read()

    def _changed(self, event: GraphChanged) -> None:
        self._target = max(self._target, event.lastEventId)
        if self.position is None:
            self.position = event.firstEventId - 1
        self._read()

    def _read(self) -> None:
        """
        Read and hand on the events up to the newest announced one.
        """
        if self._reading or self.position is None or self.position >= self._target:
            return
        self._reading = True
        d = self._store.events(self.position, BATCH)
        d.addCallback(self._got)
        d.addErrback(self._readFailed)
        d.addBoth(self._done)

    def _got(self, events: list[GraphEvent]) -> None:
        if not events:
            assert self.position is not None
            self._target = self.position
            return
        self.position = events[-1].id
        self._naming.apply(events)
        for listener in list(self._listeners):
            try:
                listener(events)
            except Exception:
                self._log.failure("handing on the graph's events")

    def _readFailed(self, failure: Failure) -> None:
        """
        Log a failed read; try again at the next change.
        """
        self._log.failure("reading the graph's events", failure)
        self._target = self.position or 0

    def _done(self, result: object) -> None:
        self._reading = False
        self._read()
