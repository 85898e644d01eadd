# -*- test-case-name: tests.test_serverinfo_publisher -*-
"""
The XEP-0485 publisher: keeps the C{current} item of our C{serverinfo}
node equal to the link table, naming only consenting peers.

It publishes a few seconds after a change that alters the item (changes
are debounced), never publishes an item identical to the last one that
was stored, re-evaluates periodically (consent answers expire), and retries
after a failed publish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.xish import domish
from wokkel.generic import parseXml

from xmppnetgraph.interfaces import IChangeFeed, ILinkTable, IPubSubBackend
from xmppnetgraph.model import ConsentChanged, LinkDown, LinkUp, PublishedServerInfo
from xmppnetgraph.serverinfo.consent import ConsentChecker
from xmppnetgraph.serverinfo.payload import (
    DEFAULT_NODE,
    ITEM_ID,
    ServerInfo,
    buildPayload,
    fromLinks,
    parsePayload,
)


class ServerInfoPublisher(service.Service):
    """
    Publish the link table as the XEP-0485 item, through C{publish}.

    @ivar lastPublished: when the current item was stored (seconds since
        the epoch), or L{None}.
    @ivar lastPayload: the serialized payload of the current item.
    @ivar lastInfo: its content, or L{None} (no item yet, or a stored item
        that does not parse).
    """

    _log = Logger()

    def __init__(
        self,
        feed: IChangeFeed,
        linkTable: ILinkTable,
        consent: ConsentChecker,
        publish: Callable[[str], defer.Deferred[Any]],
        domain: str,
        localDomains: frozenset[str],
        clock: IReactorTime,
        *,
        delay: float = 2.0,
        refresh: float = 300.0,
        retryDelay: float = 30.0,
        lastPayload: str | None = None,
        loadLast: Callable[[], defer.Deferred[str | None]] | None = None,
    ) -> None:
        """
        @param feed: announces link changes (L{LinkUp}, L{LinkDown}) and
            consent changes (L{ConsentChanged}).
        @param publish: stores the serialized payload as item C{current} and
            notifies subscribers.
        @param lastPayload: the payload already stored (after a restart), so
            that an identical item is not published again.
        @param loadLast: reads that payload from storage when the service
            starts, instead of C{lastPayload}.
        """
        self._feed = feed
        self.linkTable = linkTable
        self.consent = consent
        self._publish = publish
        self.domain = domain
        self.localDomains = localDomains
        self._clock = clock
        self.delay = delay
        self.refresh = refresh
        self.retryDelay = retryDelay
        self.lastPayload: str | None = None
        self.lastInfo: ServerInfo | None = None
        if lastPayload is not None:
            self._remember(lastPayload, None)
        self.lastPublished: float | None = None
        self._pending: IDelayedCall | None = None
        self._inFlight: defer.Deferred[Any] | None = None
        self._dirty = False
        self._unobserve: list[Callable[[], None]] = []
        self._loadLast = loadLast
        self._refresher = LoopingCall(self.schedule)
        self._refresher.clock = clock

    def startService(self) -> None:
        """
        Read the stored item (if told how), then watch links and consent
        answers and publish the current state soon.
        """
        super().startService()
        if self._loadLast is None:
            self._begin()
            return

        def loaded(payload: str | None) -> None:
            if payload is not None:
                self._remember(payload, None)

        def begin(_: object) -> None:
            self._inFlight = None
            if self.running:
                self._begin()

        d = defer.maybeDeferred(self._loadLast)
        d.addCallbacks(
            loaded, lambda f: self._log.failure("reading the stored serverinfo item failed", f)
        )
        if not d.called:
            # stopService waits for the read, so the store stays open for it.
            self._inFlight = d
        d.addCallback(begin)

    def _begin(self) -> None:
        self._unobserve = [
            self._feed.observe(LinkUp, self._linkUp),
            self._feed.observe(LinkDown, lambda event: self.schedule()),
            self._feed.observe(ConsentChanged, lambda event: self.schedule()),
        ]
        for link in self.linkTable.links():
            self.consent.consents(link.domain)
        self._refresher.start(self.refresh, now=True)

    def stopService(self) -> defer.Deferred[Any] | None:
        """
        Stop watching and checking consent; let a publish in flight finish.
        """
        super().stopService()
        self.consent.stop()
        for unobserve in self._unobserve:
            unobserve()
        self._unobserve = []
        if self._refresher.running:
            self._refresher.stop()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        if self._inFlight is not None:
            return defer.Deferred.fromCoroutine(self._settle(self._inFlight))
        return None

    async def _settle(self, d: defer.Deferred[Any]) -> None:
        try:
            await d
        except Exception:
            pass

    def _linkUp(self, event: LinkUp) -> None:
        """
        A new link: check the peer's consent and publish soon.
        """
        self.consent.consents(event.link.domain)
        self.schedule()

    def schedule(self) -> None:
        """
        Publish after the debounce delay, unless already scheduled.
        """
        if not self.running:
            return
        if self._inFlight is not None:
            self._dirty = True
            return
        if self._pending is None or not self._pending.active():
            self._pending = self._clock.callLater(self.delay, self._publishNow)

    def _remember(self, xml: str, info: ServerInfo | None) -> None:
        """
        Keep C{xml} as the stored item, with its content C{info} (decoded
        from C{xml} if not given: an item stored before a restart).
        """
        if info is None:
            try:
                info = parsePayload(parseXml(xml.encode("utf-8")))
            except Exception:
                self._log.failure("the stored serverinfo item does not parse")
        self.lastPayload = xml
        self.lastInfo = info

    def currentInfo(self) -> ServerInfo:
        """
        @return: the item content for the live links as they are now.
        """
        return fromLinks(
            self.domain,
            [
                (link.domain, "bidi" if link.bidi else link.direction)
                for link in self.linkTable.links()
            ],
            self.consent.consents,
            set(self.localDomains),
        )

    def currentPayload(self) -> domish.Element:
        """
        @return: the item payload for the live links as they are now.
        """
        return buildPayload(self.currentInfo())

    def status(self) -> PublishedServerInfo:
        """
        @return: what we publish, and the consent state of every linked
            peer.
        """
        remotes = None
        if self.lastInfo is not None:
            remotes = tuple(
                (remote.name, remote.connections)
                for domain in self.lastInfo.domains
                for remote in domain.remotes
            )
        peers = sorted({link.domain for link in self.linkTable.links()} - set(self.localDomains))
        return PublishedServerInfo(
            domain=self.domain,
            xml=self.lastPayload,
            published=self.lastPublished,
            remotes=remotes,
            peers=tuple((peer, self.consent.state(peer)) for peer in peers),
        )

    def _publishNow(self) -> None:
        self._pending = None
        info = self.currentInfo()
        xml = buildPayload(info).toXml()
        if xml == self.lastPayload:
            return
        self._dirty = False
        d = defer.maybeDeferred(self._publish, xml)
        self._inFlight = d

        def published(_: object) -> None:
            self._remember(xml, info)
            self.lastPublished = self._clock.seconds()
            self._log.info(
                "published serverinfo for {domain} ({n} bytes)", domain=self.domain, n=len(xml)
            )

        def failed(reason: Failure) -> None:
            self._log.failure(
                "publishing serverinfo failed; retrying in {delay} s", reason, delay=self.retryDelay
            )

        def done(_: object) -> None:
            self._inFlight = None
            if not self.running:
                return
            if self.lastPayload != xml:
                self._pending = self._clock.callLater(self.retryDelay, self._publishNow)
            elif self._dirty:
                self._dirty = False
                self.schedule()

        d.addCallbacks(published, failed)
        d.addBoth(done)


def publisherFor(
    backend: IPubSubBackend,
    feed: IChangeFeed,
    linkTable: ILinkTable,
    consent: ConsentChecker,
    domain: str,
    localDomains: frozenset[str],
    clock: IReactorTime,
    **options: Any,
) -> ServerInfoPublisher:
    """
    A publisher that keeps item C{current} of node C{serverinfo} on a
    pub-sub service of ours, through its backend
    (L{xmppnetgraph.pubsub.PubSubBackend}), which stores the item and
    announces it (the service's XMPP notifier tells the subscribers).

    The node is created when the publisher starts (disco points readers at
    it from the start: they must not get C{item-not-found} before the first
    publish), with open access and one item; the item stored before a
    restart is the starting point, so it is not published again.

    @param options: passed on to L{ServerInfoPublisher} (C{delay},
        C{refresh}, C{retryDelay}).
    """
    from xmppnetgraph.pubsub import MAX_ITEMS

    config = {MAX_ITEMS: 1}

    def publish(payload: str) -> defer.Deferred[None]:
        d = backend.publish(DEFAULT_NODE, ITEM_ID, payload, createConfig=config)
        return d.addCallback(lambda _: None)

    async def last() -> str | None:
        await backend.ensureNode(DEFAULT_NODE, config)
        items = await backend.items(DEFAULT_NODE, None, 1)
        return items[0].payload if items else None

    return ServerInfoPublisher(
        feed,
        linkTable,
        consent,
        publish,
        domain,
        localDomains,
        clock,
        loadLast=lambda: defer.Deferred.fromCoroutine(last()),
        **options,
    )
