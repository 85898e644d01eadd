# -*- test-case-name: tests.test_s2s_federation -*-
"""
The s2s service: accepts and opens server-to-server streams, authenticates
them, keeps the link table current and routes stanzas between the remote
domains and the local router.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import TimeoutError as ConnectTimeout
from twisted.internet.interfaces import IReactorTime, ISSLTransport
from twisted.logger import Logger
from twisted.names.error import DNSNameError
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, jid, xmlstream
from twisted.words.xish import domish
from wokkel.component import Router
from wokkel.generic import XmlPipe

from xmppnetgraph.certs import TLSCredentials, clientTLSOptions, serverTLSOptions, tlsVersion
from xmppnetgraph.config import Config
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.model import Link
from xmppnetgraph.names import parseJID
from xmppnetgraph.s2s.identity import peerCertificateValidFor
from xmppnetgraph.s2s.initiate import NS_DIALBACK, Authenticate, DialbackFailed, VerifyDialback
from xmppnetgraph.s2s.receive import NS_SERVER, ReceivingAuthenticator, connectionClosing
from xmppnetgraph.s2s.resolve import ConnectFailed, connectToFirst, resolveTargets
from xmppnetgraph.s2s.xmlstream import S2SXmlStream

_STANZAS = ("message", "presence", "iq")


class RemoteServerNotFound(Exception):
    """
    The remote domain has no usable s2s service.
    """


class PeerCertificateInvalid(Exception):
    """
    The peer's certificate is not valid for its domain and policy demands it.
    """


class StreamFactory(xmlstream.XmlStreamServerFactory):  # type: ignore[misc]
    """
    Builds one hardened L{S2SXmlStream} per connection, with a fresh
    authenticator, for either direction.
    """

    def __init__(
        self,
        authenticatorFactory: Callable[[], xmlstream.Authenticator],
        config: Config,
        clock: IReactorTime,
    ) -> None:
        super().__init__(authenticatorFactory)
        self.protocol = functools.partial(
            S2SXmlStream, maxStanzaSize=config.maxStanzaSize, maxDepth=config.maxDepth, clock=clock
        )


class OutgoingAuthenticator(xmlstream.ConnectAuthenticator):  # type: ignore[misc]
    """
    Open a stream to C{otherHost}: STARTTLS, then C{finalInitializer}.

    @ivar certValid: whether the receiving server's certificate is valid
        for C{otherHost}.
    """

    namespace = NS_SERVER

    def __init__(
        self,
        s2s: S2SService,
        thisHost: str,
        otherHost: str,
        finalInitializer: Callable[[xmlstream.XmlStream], Any],
    ) -> None:
        super().__init__(otherHost)
        self.s2s = s2s
        self.thisHost = thisHost
        self.finalInitializer = finalInitializer
        self.final: Any = None
        self.certValid = False

    def connectionMade(self) -> None:
        """
        Send our stream header, as C{thisHost}, and plan the initializers.
        """
        xs = self.xmlstream
        xs.thisEntity = jid.internJID(self.thisHost)
        xs.prefixes = {xmlstream.NS_STREAMS: "stream", NS_DIALBACK: "db"}
        inits: list[Any] = []
        if not ISSLTransport.providedBy(xs.transport):
            inits.append(
                xmlstream.TLSInitiatingInitializer(
                    xs,
                    required=self.s2s.requireTLS,
                    configurationForTLS=clientTLSOptions(self.s2s.credentials, self.otherHost),
                )
            )
        inits.append(_CheckPeer(self))
        self.final = self.finalInitializer(xs)
        inits.append(self.final)
        xs.initializers = inits
        super().connectionMade()

    def streamStarted(self, rootElement: domish.Element) -> None:
        """
        Take the stream id; the peer is who we connected to, whatever its
        header says.
        """
        xmlstream.Authenticator.streamStarted(self, rootElement)
        xs = self.xmlstream
        xs.sid = rootElement.getAttribute("id")
        if xs.version < (1, 0):
            xs.sendStreamError(error.StreamError("unsupported-version"))
            return
        xs.addOnetimeObserver(f"/features[@xmlns='{xmlstream.NS_STREAMS}']", self._onFeatures)

    def _onFeatures(self, element: domish.Element) -> None:
        self.xmlstream.features = {(f.uri, f.name): f for f in element.elements()}
        self.initializeStream()


class _CheckPeer:
    """
    After TLS: judge the receiving server's certificate, and apply policy.
    """

    def __init__(self, authenticator: OutgoingAuthenticator) -> None:
        self.authenticator = authenticator

    def initialize(self) -> None:
        a = self.authenticator
        xs = a.xmlstream
        tls = ISSLTransport.providedBy(xs.transport)
        a.certValid = tls and peerCertificateValidFor(
            xs.transport, a.otherHost, a.s2s.roots, peerIsClient=False
        )
        if a.s2s.requireValidCerts and not a.certValid:
            raise PeerCertificateInvalid(f"the certificate of {a.otherHost} is not valid for it")


class _Handshake:
    """
    Follows one outgoing stream until it is authenticated or fails.

    @ivar done: fires with the stream once authenticated; fails when
        initialisation fails, the peer sends a stream error or the
        connection ends first; cancelling it aborts the connection.
    """

    def __init__(self, remote: str) -> None:
        self.remote = remote
        self.stream: S2SXmlStream | None = None
        self.done: defer.Deferred[S2SXmlStream] = defer.Deferred(self._abort)

    def watch(self, xs: S2SXmlStream) -> None:
        """
        Observe C{xs}, just connected.
        """
        self.stream = xs
        xs.addObserver(xmlstream.STREAM_AUTHD_EVENT, self._authenticated)
        xs.addObserver(xmlstream.INIT_FAILED_EVENT, self._initFailed)
        xs.addObserver(xmlstream.STREAM_ERROR_EVENT, self._fail)
        xs.addObserver(xmlstream.STREAM_END_EVENT, self._ended)

    def _authenticated(self, xs: S2SXmlStream) -> None:
        if not self.done.called:
            self.done.callback(xs)

    def _initFailed(self, reason: Failure) -> None:
        self._fail(reason)
        xs = self.stream
        if xs is not None and xs.transport is not None:
            xs.sendFooter()
            xs.transport.loseConnection()

    def _ended(self, reason: object) -> None:
        self._fail(
            Failure(RemoteServerNotFound(f"stream to {self.remote} closed during the handshake"))
        )

    def _fail(self, reason: Failure) -> None:
        if not self.done.called:
            self.done.errback(reason)

    def _abort(self, _: object) -> None:
        if self.stream is not None and self.stream.transport is not None:
            self.stream.transport.abortConnection()


class S2SService(service.Service):
    """
    All server-to-server streams of one node.

    @ivar localDomains: the domains we serve (our domain and pubsub host).
    @ivar router: the in-process router; we are its default route.
    """

    _log = Logger()

    def __init__(
        self,
        config: Config,
        router: Router,
        linkTable: LinkTable,
        credentials: TLSCredentials,
        roots: tuple[Any, ...],
        secret: str,
        reactor: Any,
        resolver: Any,
    ) -> None:
        self.config = config
        self.domain = config.domain
        self.localDomains = frozenset(config.localDomains)
        self.router = router
        self.linkTable = linkTable
        self.credentials = credentials
        self.roots = roots
        self.secret = secret
        self.requireTLS = config.requireTLS
        self.requireValidCerts = config.requireValidCerts
        self.serverTLSOptions = serverTLSOptions(credentials)
        self._reactor = reactor
        self._resolver = resolver
        self._outgoing: dict[tuple[str, str], tuple[xmlstream.XmlStream, Link]] = {}
        self._queues: dict[tuple[str, str], list[domish.Element]] = {}
        self._connecting: dict[tuple[str, str], defer.Deferred[Any]] = {}
        self._streams: set[xmlstream.XmlStream] = set()
        pipe = XmlPipe()
        self._pipe = pipe.source
        router.addRoute(None, pipe.sink)
        self._pipe.addObserver("/*", self.send)

    # Incoming streams

    def serverFactory(self) -> StreamFactory:
        """
        @return: the factory for our s2s listening endpoints.
        """
        factory = StreamFactory(lambda: ReceivingAuthenticator(self), self.config, self._reactor)
        factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, self._incomingConnected)
        factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, self._incomingAuthenticated)
        return factory

    def _track(self, xs: xmlstream.XmlStream) -> None:
        self._streams.add(xs)
        xs.addObserver(xmlstream.STREAM_END_EVENT, lambda _: self._streams.discard(xs))
        if self.config.logTraffic:
            peer = xs.transport.getPeer()
            xs.rawDataInFn = lambda data: self._log.info(
                "RECV {peer}: {data!r}", peer=peer, data=data
            )
            xs.rawDataOutFn = lambda data: self._log.info(
                "SEND {peer}: {data!r}", peer=peer, data=data
            )

    def _incomingConnected(self, xs: S2SXmlStream) -> None:
        self._track(xs)
        xs.setHandshakeTimeout(self.config.handshakeTimeout)
        peer = xs.transport.getPeer()

        def ended(reason: Failure) -> None:
            if not xs.authenticator.authenticated:
                self._log.info(
                    "incoming s2s connection from {address} (claiming {claimed}) "
                    "closed before authentication: {reason}",
                    address=f"{peer.host}:{peer.port}" if hasattr(peer, "host") else str(peer),
                    claimed=xs.authenticator.claimedDomain or "nothing",
                    reason=reason.getErrorMessage() if isinstance(reason, Failure) else reason,
                )

        xs.addObserver(xmlstream.STREAM_END_EVENT, ended)

    def _incomingAuthenticated(self, xs: S2SXmlStream) -> None:
        links: dict[str, Link] = {}
        xs.s2sLinks = links
        # The first authorised pair is the peer's domain and the local domain
        # it opened the stream to (SASL authorises every local domain).
        self.incomingPairAdded(xs, xs.otherEntity.host, xs.thisEntity.host)

        def ended(_: object) -> None:
            for link in links.values():
                self.linkTable.remove(link)

        xs.addObserver(xmlstream.STREAM_END_EVENT, ended)
        xs.addObserver("/*", functools.partial(self._incomingElement, xs))
        xs.startLiveness(self.config.keepaliveInterval, self.config.idleTimeout)

    def incomingPairAdded(self, xs: xmlstream.XmlStream, remote: str, local: str) -> None:
        """
        A further domain pair was authorised on an incoming stream.
        """
        links: dict[str, Link] = xs.s2sLinks
        if remote in links:
            return
        authenticator: ReceivingAuthenticator = xs.authenticator
        now = self._reactor.seconds()
        link = Link(
            domain=remote,
            localDomain=local,
            direction="incoming",
            auth=authenticator.method or "dialback",
            tls=tlsVersion(xs.transport),
            certValid=authenticator.certValid,
            since=now,
            lastActivity=now,
        )
        links[remote] = link
        self.linkTable.add(link)

    def _incomingElement(self, xs: xmlstream.XmlStream, element: domish.Element) -> None:
        if (
            element.uri != NS_SERVER
            or element.name not in _STANZAS
            or connectionClosing(xs.transport)
        ):
            return
        authenticator: ReceivingAuthenticator = xs.authenticator
        sender = validDomainOf(element.getAttribute("from"))
        recipient = validDomainOf(element.getAttribute("to"))
        if sender is None or recipient is None:
            xs.sendStreamError(error.StreamError("improper-addressing"))
            return
        if (sender, recipient) not in authenticator.authorized:
            known = {remote for remote, _ in authenticator.authorized}
            condition = "invalid-from" if sender not in known else "host-unknown"
            self._log.warn(
                "closing stream from {peer}: stanza from {sender} to {recipient} "
                "not authorised ({condition})",
                peer=xs.otherEntity.host,
                sender=sender,
                recipient=recipient,
                condition=condition,
            )
            xs.sendStreamError(error.StreamError(condition))
            return
        link = xs.s2sLinks.get(sender)
        if link is not None:
            link.touch(self._reactor.seconds(), incoming=True)
        self.router.route(element)

    # Outgoing streams

    def send(self, stanza: domish.Element) -> None:
        """
        Send a stanza from a local domain to a remote one, opening (and
        authenticating) a stream first if there is none yet.
        """
        if not self.running:
            self._log.info(
                "s2s stopped: dropping a {name} to {to}",
                name=stanza.name,
                to=stanza.getAttribute("to"),
            )
            return
        sender = validDomainOf(stanza.getAttribute("from"))
        recipient = validDomainOf(stanza.getAttribute("to"))
        if sender not in self.localDomains or recipient is None:
            self._log.warn(
                "dropping stanza with bad addressing: from={sender} to={recipient}",
                sender=stanza.getAttribute("from"),
                recipient=stanza.getAttribute("to"),
            )
            return
        if recipient in self.localDomains:
            self._bounce(stanza, "item-not-found")
            return
        key = (sender, recipient)
        established = self._outgoing.get(key)
        if established is not None:
            xs, link = established
            link.touch(self._reactor.seconds(), incoming=False)
            xs.send(stanza)
            return
        queue = self._queues.setdefault(key, [])
        if len(queue) >= self.config.queueLimit:
            self._log.warn(
                "queue to {recipient} is full ({n} stanzas): bouncing",
                recipient=recipient,
                n=len(queue),
            )
            self._bounce(stanza, "resource-constraint", "wait")
            return
        queue.append(stanza)
        if key not in self._connecting:
            self._connectOutgoing(sender, recipient)

    def _connectOutgoing(self, local: str, remote: str) -> None:
        key = (local, remote)

        def authInit(xs: xmlstream.XmlStream) -> Authenticate:
            return Authenticate(
                xs, local, remote, self.secret, allowDialback=not self.requireValidCerts
            )

        authenticator = OutgoingAuthenticator(self, local, remote, authInit)
        d = self.openStream(remote, authenticator)
        self._connecting[key] = d

        def established(xs: S2SXmlStream) -> None:
            now = self._reactor.seconds()
            link = Link(
                domain=remote,
                localDomain=local,
                direction="outgoing",
                auth=authenticator.final.method,
                tls=tlsVersion(xs.transport),
                certValid=authenticator.certValid,
                since=now,
                lastActivity=now,
            )
            self._outgoing[key] = (xs, link)
            self.linkTable.add(link)

            def ended(_: object) -> None:
                if self._outgoing.get(key, (None,))[0] is xs:
                    del self._outgoing[key]
                self.linkTable.remove(link)

            xs.addObserver(xmlstream.STREAM_END_EVENT, ended)
            xs.addObserver("/*", functools.partial(self._outgoingElement, xs))
            xs.startLiveness(self.config.keepaliveInterval, self.config.idleTimeout)
            for stanza in self._queues.pop(key, []):
                link.touch(now, incoming=False)
                xs.send(stanza)

        def failed(reason: Failure) -> None:
            condition = (
                "remote-server-timeout"
                if reason.check(defer.TimeoutError, ConnectTimeout)
                else "remote-server-not-found"
            )
            self._log.warn(
                "s2s connection {local} -> {remote} failed: {reason}; "
                "bouncing {n} stanzas with {condition}",
                local=local,
                remote=remote,
                reason=describe(reason),
                n=len(self._queues.get(key, [])),
                condition=condition,
            )
            for stanza in self._queues.pop(key, []):
                self._bounce(stanza, condition)

        def done(result: object) -> object:
            self._connecting.pop(key, None)
            return result

        d.addBoth(done)
        d.addCallbacks(established, failed)
        d.addErrback(lambda f: self._log.failure("s2s bookkeeping failed", f))

    def _outgoingElement(self, xs: xmlstream.XmlStream, element: domish.Element) -> None:
        # Receiving servers send nothing but negotiation and errors on our
        # outgoing streams; stanzas there are not authorised.
        if element.uri == NS_SERVER and element.name in _STANZAS:
            xs.sendStreamError(
                error.StreamError("not-authorized", text="stanzas on an outgoing stream")
            )

    def verifyDialback(
        self, receiving: str, originating: str, streamID: str, key: str
    ) -> defer.Deferred[bool]:
        """
        Ask the authoritative server of C{originating} whether C{key} is one
        it issued for a stream to us (XEP-0220 section 2.1.3).
        """
        verify: list[VerifyDialback] = []

        def init(xs: xmlstream.XmlStream) -> VerifyDialback:
            verify.append(VerifyDialback(xs, receiving, originating, streamID, key))
            return verify[0]

        authenticator = OutgoingAuthenticator(self, receiving, originating, init)
        d = self.openStream(originating, authenticator)

        def opened(xs: S2SXmlStream) -> defer.Deferred[bool]:
            answer = verify[0].valid
            answer.addTimeout(self.config.handshakeTimeout, self._reactor)

            def close(result: object) -> object:
                xs.sendFooter()
                xs.transport.loseConnection()
                return result

            return answer.addBoth(close)

        return d.addCallback(opened)

    def openStream(self, remote: str, authenticator: OutgoingAuthenticator) -> defer.Deferred[Any]:
        """
        Resolve C{remote}, connect, and run C{authenticator}'s initializers.

        @return: a Deferred firing with the authenticated stream, or
            failing (after at most connect + handshake timeout).
        """

        async def run() -> S2SXmlStream:
            targets = await resolveTargets(remote, self.config.routeFor(remote), self._resolver)
            if not targets:
                raise RemoteServerNotFound(f"{remote} announces no XMPP s2s service")
            handshake = _Handshake(remote)
            factory = StreamFactory(lambda: authenticator, self.config, self._reactor)
            factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, self._track)
            factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, handshake.watch)
            await connectToFirst(
                self._reactor,
                targets,
                factory,
                lambda: clientTLSOptions(self.credentials, remote),
                self.config.connectTimeout,
            )
            return await handshake.done

        d = defer.Deferred.fromCoroutine(run())
        d.addTimeout(self.config.connectTimeout + self.config.handshakeTimeout, self._reactor)
        return d

    def _bounce(self, stanza: domish.Element, condition: str, kind: str = "cancel") -> None:
        if stanza.getAttribute("type") == "error" or (
            stanza.name == "iq" and stanza.getAttribute("type") == "result"
        ):
            return
        self.router.route(error.StanzaError(condition, kind).toResponse(stanza))

    def stopService(self) -> defer.Deferred[None]:
        """
        Give up on pending connections and close every stream: gracefully,
        then (after the handshake timeout, at most 5 s) by force.

        @return: a Deferred that fires when every connection is gone.
        """
        super().stopService()
        for d in list(self._connecting.values()):
            d.cancel()
        ended = []
        for xs in list(self._streams):
            if xs.transport is None:
                continue
            done: defer.Deferred[None] = defer.Deferred()
            xs.addObserver(
                xmlstream.STREAM_END_EVENT, lambda _, done=done: done.called or done.callback(None)
            )
            ended.append(done)
            xs.sendFooter()
            xs.transport.loseConnection()
        if not ended:
            return defer.succeed(None)
        force = self._reactor.callLater(min(5.0, self.config.handshakeTimeout), self._abortAll)
        d = defer.DeferredList(ended)
        d.addBoth(lambda _: force.cancel() if force.active() else None)
        return d

    def _abortAll(self) -> None:
        for xs in list(self._streams):
            if xs.transport is not None:
                xs.transport.abortConnection()


def validDomainOf(value: str | None) -> str | None:
    """
    @return: the domain of the JID C{value}, or L{None} if it is malformed.
    """
    if not value:
        return None
    try:
        return parseJID(value).host
    except ValueError:
        return None


def describe(reason: Failure) -> str:
    """
    @return: a one-line description of a connection failure for the log.
    """
    if reason.check(DNSNameError):
        return "no such domain"
    if reason.check(ConnectFailed, RemoteServerNotFound, DialbackFailed, PeerCertificateInvalid):
        return str(reason.value)
    return f"{reason.type.__name__}: {reason.getErrorMessage()}"
