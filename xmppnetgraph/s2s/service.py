# -*- test-case-name: tests.test_s2s_receive,tests.test_federation,tests.test_s2s_failures -*-
"""
The s2s service: accepts and opens server-to-server streams, authenticates
them, keeps the link table current and routes stanzas between the remote
domains and the local router.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Generic, TypeVar

import attrs
from cryptography import x509
from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.error import TimeoutError as ConnectTimeout
from twisted.internet.interfaces import (
    IAddress,
    IReactorTime,
    IResolver,
    ISSLTransport,
)
from twisted.logger import Logger
from twisted.names.error import DNSNameError
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, ijabber, jid, xmlstream
from twisted.words.xish import domish
from wokkel.component import Router
from wokkel.generic import XmlPipe
from zope.interface import implementer

from xmppnetgraph.certs import TLSCredentials, clientTLSOptions, serverTLSOptions, tlsVersion
from xmppnetgraph.config import Config, Route
from xmppnetgraph.error import AddressRefused, ConnectFailed, DialbackFailed

# Raised here; defined with the other errors (and importable from here).
from xmppnetgraph.error import PeerCertificateInvalid as PeerCertificateInvalid
from xmppnetgraph.error import RemoteServerNotFound as RemoteServerNotFound
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.model import Link
from xmppnetgraph.names import parseJID
from xmppnetgraph.reactortypes import IS2SReactor
from xmppnetgraph.s2s.addresses import AddressFilter
from xmppnetgraph.s2s.admission import Admission, Refusal, sourceOf
from xmppnetgraph.s2s.identity import PeerVerifier
from xmppnetgraph.s2s.initiate import (
    NS_DIALBACK,
    Authenticate,
    OriginatingDialback,
    RequestBidi,
    VerifyDialback,
    offersDialbackErrors,
)
from xmppnetgraph.s2s.receive import (
    NS_SERVER,
    ReceivingAuthenticator,
    connectionClosing,
    verifyAnswer,
)
from xmppnetgraph.s2s.resolve import connectToFirst, resolveTargets
from xmppnetgraph.s2s.xmlstream import CLOSE_GRACE, S2SXmlStream, StreamErrorTally, abortTransport

#: Domains whose failed attempts L{S2SService} remembers at most.
_UNREACHABLE_KEPT = 10_000
#: Seconds without input after which a stream lets go of its XML parser
#: (it makes a new one when input comes): most of an idle stream's memory
#: on the XML side.
PARSER_RELEASE_AFTER = 10.0

_STANZAS = ("message", "presence", "iq")

# Failures after which another connection to the same server is no use.
_UNREACHABLE = (
    defer.TimeoutError,
    defer.CancelledError,
    ConnectTimeout,
    ConnectFailed,
    AddressRefused,
    DNSNameError,
)

#: The initializer that authenticates an outgoing stream.
_Final = TypeVar("_Final", Authenticate, VerifyDialback)
_T = TypeVar("_T")


class StreamFactory(xmlstream.XmlStreamServerFactory):
    """
    Builds one hardened L{S2SXmlStream} per connection, with a fresh
    authenticator, for either direction.
    """

    def __init__(
        self,
        authenticatorFactory: Callable[[], xmlstream.Authenticator],
        config: Config,
        clock: IReactorTime,
        admission: Admission | None = None,
        errors: StreamErrorTally | None = None,
    ) -> None:
        """
        @param authenticatorFactory: makes the authenticator of each stream.
        @param config: the stanza size and depth limits.
        @param clock: the streams' clock.
        @param admission: for a listening factory, the caps on
            unauthenticated connections; L{None} for outgoing streams.
        @param errors: where the streams count their stream errors (a
            tally of their own each if L{None}).
        """
        super().__init__(authenticatorFactory)
        self._config = config
        self._clock = clock
        self._admission = admission
        self._errors = errors

    def buildProtocol(self, addr: IAddress | None) -> S2SXmlStream | Refusal:  # type: ignore[override]
        """
        @return: a new stream with a new authenticator and our bootstrap
            observers; past a cap on unauthenticated connections, a
            L{Refusal}.
        """
        release = None
        if self._admission is not None:
            release = self._admission.admit(sourceOf(addr))
            if release is None:
                return Refusal(self._config.domain, self._clock, CLOSE_GRACE)
        xs = S2SXmlStream(
            self.authenticatorFactory(),
            maxStanzaSize=self._config.maxStanzaSize,
            maxDepth=self._config.maxDepth,
            clock=self._clock,
            errors=self._errors,
        )
        xs.factory = self
        if release is not None:
            xs.addOnetimeObserver(xmlstream.STREAM_AUTHD_EVENT, lambda _: release())
            xs.addOnetimeObserver(xmlstream.STREAM_END_EVENT, lambda _: release())
        self.installBootstraps(xs)
        return xs

    def release(self) -> None:
        """
        Let go of the authenticator factory and the bootstraps, once the
        one stream an outgoing factory is made for has ended: the factory
        outlives it (the connector keeps it), and through them it would
        keep the stream, its parser and its TLS connection until a full
        garbage collection.
        """
        self.authenticatorFactory = None
        self.bootstraps = []


class OutgoingAuthenticator(xmlstream.ConnectAuthenticator, Generic[_Final]):
    """
    Open a stream to C{otherHost}: STARTTLS, then C{finalInitializer}.

    @ivar final: the initializer C{finalInitializer} made, once connected.
    @ivar certValid: whether the receiving server's certificate is valid
        for C{otherHost}.
    @ivar bidi: whether the stream was made bidirectional (XEP-0288).
    @ivar dialbackErrors: whether the receiving server announced dialback
        with error handling in any of the stream's features (XEP-0220: the
        condition for target multiplexing).
    """

    namespace = NS_SERVER

    # Set by the stream it is made for, before any of our methods runs.
    xmlstream: S2SXmlStream

    def __init__(
        self,
        s2s: S2SService,
        thisHost: str,
        otherHost: str,
        finalInitializer: Callable[[S2SXmlStream], _Final],
        *,
        requestBidi: bool = False,
    ) -> None:
        """
        @param s2s: the service.
        @param thisHost: our domain on the stream.
        @param otherHost: the remote domain.
        @param finalInitializer: makes the initializer that authenticates
            the stream, once TLS is up and the peer checked.
        @param requestBidi: ask for a bidirectional stream (XEP-0288) if
            the receiving server offers one, before authenticating.
        """
        super().__init__(otherHost)
        self.s2s = s2s
        self.thisHost = thisHost
        self.finalInitializer: Callable[[S2SXmlStream], _Final] = finalInitializer
        self.final: _Final | None = None
        self.certValid = False
        self.dialbackErrors = False
        self._requestBidi = requestBidi
        self._bidi: RequestBidi | None = None

    @property
    def bidi(self) -> bool:
        """
        Whether we asked the receiving server for a bidirectional stream
        (it offered one, so it accepts the request).
        """
        return self._bidi is not None and self._bidi.requested

    def connectionMade(self) -> None:
        """
        Send our stream header, as C{thisHost}, and plan the initializers.
        """
        xs = self.xmlstream
        xs.thisEntity = jid.internJID(self.thisHost)
        xs.prefixes = {xmlstream.NS_STREAMS: "stream", NS_DIALBACK: "db"}
        inits: list[object] = []
        if not ISSLTransport.providedBy(xs.transport):
            inits.append(
                xmlstream.TLSInitiatingInitializer(
                    xs,
                    required=self.s2s.requireTLS,
                    configurationForTLS=self.s2s.clientTLSOptions.creatorFor(self.otherHost),
                )
            )
        inits.append(_CheckPeer(self))
        if self._requestBidi:
            self._bidi = RequestBidi(xs)
            inits.append(self._bidi)
        final = self.final = self.finalInitializer(xs)
        inits.append(final)
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
        """
        Keep the receiving server's features, and run the initializers.
        """
        self.xmlstream.features = {(f.uri, f.name): f for f in element.elements()}
        self.dialbackErrors = self.dialbackErrors or offersDialbackErrors(element)
        self.initializeStream()


@implementer(ijabber.IInitiatingInitializer)
class _CheckPeer(Generic[_Final]):
    """
    After TLS: judge the receiving server's certificate, and apply policy.
    """

    def __init__(self, authenticator: OutgoingAuthenticator[_Final]) -> None:
        """
        @param authenticator: the stream's authenticator.
        """
        self.authenticator: OutgoingAuthenticator[_Final] = authenticator
        self.xmlstream = authenticator.xmlstream

    def initialize(self) -> None:
        """
        Record whether the certificate is valid for the peer's domain.

        @raise PeerCertificateInvalid: if it is not, and we require that.
        """
        a = self.authenticator
        xs = a.xmlstream
        tls = ISSLTransport.providedBy(xs.transport)
        a.certValid = tls and a.s2s.peerVerifier.validFor(
            xs.transport, a.otherHost, peerIsClient=False
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
        """
        @param remote: the remote domain.
        """
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
        """
        C{STREAM_AUTHD_EVENT}: done.
        """
        if not self.done.called:
            self.done.callback(xs)

    def _initFailed(self, reason: Failure) -> None:
        """
        C{INIT_FAILED_EVENT}: fail, and close the stream.
        """
        self._fail(reason)
        xs = self.stream
        if xs is not None:
            xs.close()

    def _ended(self, reason: object) -> None:
        """
        C{STREAM_END_EVENT}: fail, if still in the handshake; forget the
        stream.
        """
        self._fail(
            Failure(RemoteServerNotFound(f"stream to {self.remote} closed during the handshake"))
        )
        self.stream = None

    def _fail(self, reason: Failure) -> None:
        """
        Fail L{done}, unless it fired already.
        """
        if not self.done.called:
            self.done.errback(reason)

    def _abort(self, _: object) -> None:
        """
        L{done} was cancelled (given up, or timed out): close the stream
        with C{</stream:stream>}, so that the peer knows it was closed on
        purpose; the connection is dropped if that does not end it soon (or
        during a TLS handshake).
        """
        if self.stream is not None:
            self.stream.close()


@attrs.define(eq=False)
class _OutgoingStream:
    """
    An authenticated outgoing stream of ours.

    @ivar links: its links by remote domain: the domain it was opened to,
        and those multiplexed onto it (XEP-0220 target multiplexing).
    @ivar dialbackErrors: whether the receiving server announced dialback
        errors, without which no target is multiplexed onto the stream.
    @ivar refused: whether the receiving server refused a target we asked
        to multiplex (no more are asked).
    """

    links: dict[str, Link]
    dialbackErrors: bool
    refused: bool = False


class S2SService(service.Service):
    """
    All server-to-server streams of one node.

    @ivar localDomains: the domains we serve (our domain and pubsub host).
    @ivar router: the in-process router; we are its default route.
    @ivar admission: the caps on incoming connections not yet
        authenticated, shared by all our listening endpoints.
    @ivar streamErrors: the stream errors of all our streams.
    """

    _log = Logger()

    #: Seconds after a failed attempt to open a stream to a domain during
    #: which stanzas to it bounce at once with the same error (no new DNS
    #: query, no new connection); doubled on each further failure.
    retryFirst = 5.0
    #: The longest such wait.
    retryMost = 300.0

    def __init__(
        self,
        config: Config,
        router: Router,
        linkTable: LinkTable,
        credentials: TLSCredentials,
        roots: tuple[x509.Certificate, ...],
        secret: str,
        reactor: IS2SReactor,
        resolver: IResolver,
    ) -> None:
        """
        @param config: the node's configuration.
        @param router: the in-process router; the service becomes its
            default route.
        @param linkTable: where authenticated streams are recorded.
        @param credentials: what we present in TLS handshakes.
        @param roots: the trust anchors for peer certificates.
        @param secret: the dialback secret.
        @param reactor: for timers and outgoing connections.
        @param resolver: for the SRV lookups of remote domains.
        """
        self.config = config
        self.domain = config.domain
        self.localDomains = frozenset(config.localDomains)
        self.router = router
        self.linkTable = linkTable
        self.credentials = credentials
        self.roots = roots
        self.peerVerifier = PeerVerifier(roots, reactor)
        self.secret = secret
        self.requireTLS = config.requireTLS
        self.requireValidCerts = config.requireValidCerts
        self.serverTLSOptions = serverTLSOptions(credentials)
        self.clientTLSOptions = clientTLSOptions(credentials)
        self._reactor = reactor
        self._resolver = resolver
        self._outgoing: dict[tuple[str, str], tuple[S2SXmlStream, Link]] = {}
        self._queues: dict[tuple[str, str], list[domish.Element]] = {}
        # The pairs whose stream is being opened, or that are being
        # multiplexed onto one of ours: cancelling gives that up.
        self._connecting: dict[
            tuple[str, str], defer.Deferred[S2SXmlStream] | defer.Deferred[None]
        ] = {}
        # Remote domains whose last stream attempt failed: until when
        # stanzas to them bounce at once, after how many failures in a row,
        # with which condition.
        self._unreachable: dict[str, tuple[float, int, str]] = {}
        # Outgoing streams that may carry dialback verification requests to
        # the remote domain's server, by (local, remote) pair: authenticated
        # ones, and ones authenticating by dialback.
        self._verifiers: dict[tuple[str, str], S2SXmlStream] = {}
        # Verifications waiting for the outgoing stream being opened for
        # their pair to be able to carry them.
        self._verifierWaiters: dict[tuple[str, str], list[defer.Deferred[S2SXmlStream]]] = {}
        # Every stream being opened (for stanzas or to verify a key), until
        # it is authenticated or fails.
        self._opening: set[defer.Deferred[S2SXmlStream]] = set()
        self._streams: set[S2SXmlStream] = set()
        self.admission = Admission(config.maxUnauthenticatedPerAddress, config.maxUnauthenticated)
        self.streamErrors = StreamErrorTally()
        # The links of each authenticated incoming stream, by remote domain.
        self._incomingLinks: dict[S2SXmlStream, dict[tuple[str, str], Link]] = {}
        # Our authenticated outgoing streams.
        self._outgoingStreams: dict[S2SXmlStream, _OutgoingStream] = {}
        # Incoming bidirectional streams (XEP-0288) that may carry our
        # stanzas for a (local, remote) pair, whether or not _outgoing uses
        # them now (a stream of our own, when there is one, goes first).
        self._bidiRoutes: dict[tuple[str, str], tuple[S2SXmlStream, Link]] = {}
        self._releasing: task.LoopingCall | None = None
        pipe = XmlPipe()
        self._pipe = pipe.source
        router.addRoute(None, pipe.sink)
        self._pipe.addObserver("/*", self.send)

    @property
    def connectionCount(self) -> int:
        """
        The connections of our streams open now: incoming and outgoing,
        authenticated or not (not those refused by L{admission}).
        """
        return len(self._streams)

    # Incoming streams

    def serverFactory(self) -> StreamFactory:
        """
        @return: the factory for one of our s2s listening endpoints; all
            share L{admission}.
        """
        factory = StreamFactory(
            lambda: ReceivingAuthenticator(self),
            self.config,
            self._reactor,
            admission=self.admission,
            errors=self.streamErrors,
        )
        factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, self._incomingConnected)
        factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, self._incomingAuthenticated)
        return factory

    def _track(self, xs: S2SXmlStream) -> None:
        """
        C{STREAM_CONNECTED_EVENT}, both directions: keep the stream until it
        ends, and log its traffic if configured.
        """
        self._streams.add(xs)
        xs.addObserver(xmlstream.STREAM_END_EVENT, lambda _: self._streams.discard(xs))
        if self.config.logTraffic:
            xs.rawDataInFn = lambda data: self._log.info(
                "RECV {address}: {data!r}", data=data, **xs.logFields()
            )
            xs.rawDataOutFn = lambda data: self._log.info(
                "SEND {address}: {data!r}", data=data, **xs.logFields()
            )

    def _incomingConnected(self, xs: S2SXmlStream) -> None:
        """
        C{STREAM_CONNECTED_EVENT} of an incoming stream: start the
        handshake timeout, and log a stream that ends unauthenticated.
        """
        self._track(xs)
        xs.setHandshakeTimeout(self.config.handshakeTimeout)
        authenticator: ReceivingAuthenticator = xs.authenticator

        def ended(reason: object) -> None:
            if not authenticator.authenticated:
                fields = xs.logFields()
                fields["domain"] = authenticator.claimedDomain
                self._log.info(
                    "incoming s2s connection from {address} (claiming {domain}) "
                    "closed before authentication: {reason}",
                    reason=reason.getErrorMessage() if isinstance(reason, Failure) else reason,
                    **fields,
                )

        xs.addObserver(xmlstream.STREAM_END_EVENT, ended)

    def _incomingAuthenticated(self, xs: S2SXmlStream) -> None:
        """
        C{STREAM_AUTHD_EVENT} of an incoming stream: record its first link,
        route its stanzas and keep it alive.
        """
        links: dict[tuple[str, str], Link] = {}
        self._incomingLinks[xs] = links
        # The first authorised pair is the peer's domain and the local domain
        # it opened the stream to (SASL authorises every local domain); the
        # authenticator set both entities before it said so.
        assert xs.otherEntity is not None and xs.thisEntity is not None
        self.incomingPairAdded(xs, xs.otherEntity.host, xs.thisEntity.host)

        def ended(_: object) -> None:
            self._incomingLinks.pop(xs, None)
            for link in links.values():
                self.linkTable.remove(link, logged=bool(self.running))
                key = (link.localDomain, link.domain)
                if self._bidiRoutes.get(key, (None,))[0] is xs:
                    del self._bidiRoutes[key]
                if self._outgoing.get(key, (None,))[0] is xs:
                    del self._outgoing[key]

        xs.addObserver(xmlstream.STREAM_END_EVENT, ended)
        xs.addObserver("/*", functools.partial(self._incomingElement, xs))
        xs.startLiveness(self.config.keepaliveInterval, self.config.idleTimeout)

    def incomingPairAdded(self, xs: S2SXmlStream, remote: str, local: str) -> None:
        """
        A further domain pair was authorised on an incoming stream.

        @param xs: the stream, already authenticated.
        @param remote: the peer's domain.
        @param local: our domain.
        """
        links = self._incomingLinks[xs]
        if (remote, local) in links:
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
            bidi=authenticator.bidi,
        )
        links[(remote, local)] = link
        key = (local, remote)
        if link.bidi:
            # XEP-0288: our stanzas from the domain it authorised to the
            # peer's domain may go back over this stream; they do unless a
            # stream of our own is up. One of ours being opened is given up
            # (its queue comes here, in order) unless it is needed to verify
            # a dialback key, and only by the side whose domain sorts after
            # the other's: when both open a stream at once, one of the two
            # must stay. Before the link is announced: what its observers
            # send takes this stream.
            self._bidiRoutes[key] = (xs, link)
            if key not in self._outgoing:
                pending = self._connecting.get(key)
                if pending is None:
                    self._outgoing[key] = (xs, link)
                elif local > remote and not self._verifierWaiters.get(key):
                    pending.cancel()
        self.linkTable.add(link)

    def _incomingElement(self, xs: S2SXmlStream, element: domish.Element) -> None:
        """
        A stanza on an incoming stream: route it if its domain pair is
        authorised there, else close the stream.
        """
        if (
            element.uri != NS_SERVER
            or element.name not in _STANZAS
            or connectionClosing(xs.transport)
        ):
            return
        authenticator: ReceivingAuthenticator = xs.authenticator
        sender = self._authorisedSender(
            xs, element, authenticator.allows, authenticator.remoteDomains
        )
        if sender is None:
            return
        links = self._incomingLinks[xs]
        link = links.get((sender, validDomainOf(element.getAttribute("to")) or ""))
        if link is None:
            # To a local domain that SASL authorised without a pair of its
            # own: the sender's first link counts it.
            link = next((lk for (remote, _), lk in links.items() if remote == sender), None)
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
                "s2s stopped: dropping a {name} to {recipient}",
                name=stanza.name,
                recipient=stanza.getAttribute("to"),
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
        if established is not None and connectionClosing(established[0].transport):
            # Closed by the peer a moment ago: what we sent now would be
            # lost; a new stream takes it.
            del self._outgoing[key]
            established = self._bidiRoute(key)
        if established is not None:
            xs, link = established
            link.touch(self._reactor.seconds(), incoming=False)
            xs.send(stanza)
            return
        failedBefore = self._unreachable.get(recipient)
        if (
            failedBefore is not None
            and key not in self._connecting
            and self._reactor.seconds() < failedBefore[0]
        ):
            self._bounce(stanza, failedBefore[2])
            return
        queue = self._queues.setdefault(key, [])
        if len(queue) >= self.config.queueLimit:
            self._log.warn(
                "queue from {local} to {domain} is full ({n} stanzas): bouncing",
                local=sender,
                domain=recipient,
                direction="outgoing",
                n=len(queue),
            )
            self._bounce(stanza, "resource-constraint", "wait")
            return
        queue.append(stanza)
        if key not in self._connecting:
            carrier = self._multiplexCarrier(sender, recipient)
            if carrier is None:
                self._connectOutgoing(sender, recipient)
            else:
                self._multiplex(sender, recipient, *carrier)

    def _connectOutgoing(self, local: str, remote: str) -> None:
        """
        Open and authenticate a stream from C{local} to C{remote}; then
        send what is queued for it, or bounce that if it fails.
        """
        key = (local, remote)

        def authInit(xs: S2SXmlStream) -> Authenticate:
            return Authenticate(
                xs,
                local,
                remote,
                self.secret,
                allowDialback=not self.requireValidCerts,
                dialbackStarted=lambda xs: self._carriesVerifications(key, xs),
            )

        authenticator = OutgoingAuthenticator(
            self, local, remote, authInit, requestBidi=self.config.bidi
        )
        d = self.openStream(remote, authenticator)
        self._connecting[key] = d

        def established(xs: S2SXmlStream) -> None:
            now = self._reactor.seconds()
            final = authenticator.final
            # An authenticated stream ran its final initializer, which
            # decided on the method.
            assert final is not None and final.method is not None
            link = Link(
                domain=remote,
                localDomain=local,
                direction="outgoing",
                auth=final.method,
                tls=tlsVersion(xs.transport),
                certValid=authenticator.certValid,
                since=now,
                lastActivity=now,
                bidi=authenticator.bidi,
            )
            stream = _OutgoingStream({remote: link}, authenticator.dialbackErrors)
            self._outgoingStreams[xs] = stream
            self._outgoing[key] = (xs, link)
            self._carriesVerifications(key, xs)
            self.linkTable.add(link)

            def ended(_: object) -> None:
                del self._outgoingStreams[xs]
                for pairLink in stream.links.values():
                    pair = (local, pairLink.domain)
                    if self._outgoing.get(pair, (None,))[0] is xs:
                        del self._outgoing[pair]
                        self._bidiRoute(pair)
                    self.linkTable.remove(pairLink, logged=bool(self.running))

            xs.addObserver(xmlstream.STREAM_END_EVENT, ended)
            xs.addObserver("/*", functools.partial(self._outgoingElement, xs, stream))
            if link.bidi:
                # Prosody sends its dialback verification requests to us
                # over whatever stream it routes to us: this one too.
                xs.addObserver(
                    f"/verify[@xmlns='{NS_DIALBACK}']",
                    functools.partial(self._verifyRequestOnOutgoing, xs),
                )
            xs.startLiveness(self.config.keepaliveInterval, self.config.idleTimeout)
            self._sendQueued(key, xs, link)

        def failed(reason: Failure) -> None:
            for waiter in self._verifierWaiters.pop(key, []):
                waiter.errback(reason)
            route = self._bidiRoute(key) if self.running else None
            if route is not None:
                self._log.info(
                    "s2s connection {local} -> {domain} {outcome}; "
                    "{n} queued stanzas go over the bidirectional stream {domain} opened",
                    local=local,
                    domain=remote,
                    direction="outgoing",
                    outcome="given up"
                    if reason.check(defer.CancelledError)
                    else f"failed: {describe(reason)}",
                    n=len(self._queues.get(key, [])),
                )
                self._sendQueued(key, *route)
                return
            condition = (
                "remote-server-timeout"
                if reason.check(defer.TimeoutError, ConnectTimeout)
                else "remote-server-not-found"
            )
            retry = self._failedToReach(remote, condition) if self.running else 0.0
            self._log.warn(
                "s2s connection {local} -> {domain} failed: {reason}; "
                "bouncing {n} stanzas with {condition}, and those of the next {retry:.0f} s",
                local=local,
                domain=remote,
                direction="outgoing",
                reason=describe(reason),
                n=len(self._queues.get(key, [])),
                condition=condition,
                retry=retry,
            )
            for stanza in self._queues.pop(key, []):
                self._bounce(stanza, condition)

        def done(result: object) -> object:
            self._connecting.pop(key, None)
            return result

        d.addBoth(done)
        d.addCallbacks(established, failed)
        d.addErrback(lambda f: self._log.failure("s2s bookkeeping failed", f))

    def _bidiRoute(self, key: tuple[str, str]) -> tuple[S2SXmlStream, Link] | None:
        """
        Let the incoming bidirectional stream that may carry the pair
        C{key}, if one is up, carry it from now on.

        @return: that stream and its link, or L{None}.
        """
        route = self._bidiRoutes.get(key)
        if route is None or connectionClosing(route[0].transport):
            return None
        self._outgoing[key] = route
        return route

    def _verifyRequestOnOutgoing(self, xs: S2SXmlStream, element: domish.Element) -> None:
        """
        A dialback verification request on one of our bidirectional
        outgoing streams: answer it as the authoritative server.
        """
        if element.hasAttribute("type") or connectionClosing(xs.transport):
            return
        try:
            xs.send(verifyAnswer(self, element))
        except error.StreamError as exc:
            xs.sendStreamError(exc)

    def _sendQueued(self, key: tuple[str, str], xs: S2SXmlStream, link: Link) -> None:
        """
        Send what is queued for the pair C{key} over C{xs}.
        """
        now = self._reactor.seconds()
        for stanza in self._queues.pop(key, []):
            link.touch(now, incoming=False)
            xs.send(stanza)

    def _failedToReach(self, remote: str, condition: str) -> float:
        """
        Remember that a stream to C{remote} could not be opened: stanzas
        to it bounce with C{condition} for a while, longer after each
        failure in a row (L{retryFirst}, doubled up to L{retryMost}).

        @return: the seconds until the next attempt may be made.
        """
        now = self._reactor.seconds()
        previous = self._unreachable.pop(remote, None)
        failures = 1 if previous is None else previous[1] + 1
        delay = min(self.retryFirst * 2.0 ** min(failures - 1, 30), self.retryMost)
        # The map is in the order of the last failure, so the front holds
        # the oldest: forget those long expired, and the oldest beyond
        # _UNREACHABLE_KEPT (names come from remote input), in O(1) each.
        unreachable = self._unreachable
        while unreachable:
            oldest = next(iter(unreachable))
            until = unreachable[oldest][0]
            if until + self.retryMost >= now and len(unreachable) < _UNREACHABLE_KEPT:
                break
            del unreachable[oldest]
        unreachable[remote] = (now + delay, failures, condition)
        return delay

    def _outgoingElement(
        self, xs: S2SXmlStream, stream: _OutgoingStream, element: domish.Element
    ) -> None:
        """
        An element on an outgoing stream: a receiving server sends nothing
        but negotiation and errors there, unless the stream is
        bidirectional (XEP-0288); then it may send stanzas from a domain
        the stream carries (the one we connected to, or one multiplexed
        onto it), to our domain on the stream (the inverse of the pairs we
        authenticated), and nothing else.
        """
        if (
            element.uri != NS_SERVER
            or element.name not in _STANZAS
            or connectionClosing(xs.transport)
        ):
            return
        links = stream.links
        first = next(iter(links.values()))
        if not first.bidi:
            xs.sendStreamError(
                error.StreamError("not-authorized", text="stanzas on an outgoing stream")
            )
            return
        sender = self._authorisedSender(
            xs,
            element,
            lambda sender, recipient: sender in links and recipient == first.localDomain,
            lambda: set(links),
        )
        if sender is not None:
            links[sender].touch(self._reactor.seconds(), incoming=True)
            self.router.route(element)

    # Target multiplexing (XEP-0220 section 2.6.2)

    def _multiplexCarrier(
        self, local: str, target: str
    ) -> tuple[S2SXmlStream, _OutgoingStream] | None:
        """
        Find an outgoing stream of ours that may carry the pair (C{local},
        C{target}) too: one to a parent domain of C{target} (the services
        of a domain live at its subdomains: C{pubsub.}, C{conference.},
        ...), whose receiving server announced dialback errors, presented a
        certificate valid for C{target} (so it is authoritative for it,
        RFC 7712), and is reached by the same static route, if any.

        @return: that stream and its record, or L{None}.
        """
        if not self.config.multiplex:
            return None
        route = _destination(self.config.routeFor(target))
        labels = target.split(".")
        for i in range(1, len(labels)):
            parent = ".".join(labels[i:])
            established = self._outgoing.get((local, parent))
            if established is None:
                continue
            xs = established[0]
            stream = self._outgoingStreams.get(xs)
            if (
                stream is not None
                and stream.dialbackErrors
                and not stream.refused
                and not connectionClosing(xs.transport)
                and _destination(self.config.routeFor(parent)) == route
                and self.peerVerifier.validFor(xs.transport, target, peerIsClient=False)
            ):
                return xs, stream
        return None

    def _multiplex(
        self, local: str, target: str, xs: S2SXmlStream, stream: _OutgoingStream
    ) -> None:
        """
        Ask the receiving server of C{xs} to accept the pair (C{local},
        C{target}) on it (a C{db:result} for C{target}); then send what is
        queued for the pair over it. If the server refuses, or does not
        answer within the handshake timeout, the pair gets a stream of its
        own, as without multiplexing.
        """
        key = (local, target)
        carrier = next(iter(stream.links.values()))
        request = OriginatingDialback(xs, local, target, self.secret, authenticates=False)
        d = self._answerOf(xs, request.initialize(), carrier.domain)
        self._connecting[key] = d

        def added(_: None) -> None:
            now = self._reactor.seconds()
            link = Link(
                domain=target,
                localDomain=local,
                direction="outgoing",
                auth=carrier.auth,
                tls=carrier.tls,
                certValid=True,
                since=now,
                lastActivity=now,
                bidi=carrier.bidi,
            )
            stream.links[target] = link
            self._outgoing[key] = (xs, link)
            self._carriesVerifications(key, xs)
            self.linkTable.add(link)
            self._sendQueued(key, xs, link)

        def refused(reason: Failure) -> None:
            route = self._bidiRoute(key) if self.running else None
            if route is not None:
                self._sendQueued(key, *route)
                return
            if not reason.check(defer.CancelledError):
                stream.refused = True
            self._log.info(
                "{target} not multiplexed on the stream {local} -> {domain} ({reason}); "
                "opening a stream of its own",
                target=target,
                local=local,
                domain=carrier.domain,
                direction="outgoing",
                reason=describe(reason),
            )
            if self.running:
                self._connectOutgoing(local, target)
            else:
                for stanza in self._queues.pop(key, []):
                    self._bounce(stanza, "remote-server-not-found")

        def done(result: object) -> object:
            if self._connecting.get(key) is d:
                del self._connecting[key]
            return result

        d.addBoth(done)
        d.addCallbacks(added, refused)
        d.addErrback(lambda f: self._log.failure("s2s bookkeeping failed", f))

    def _authorisedSender(
        self,
        xs: S2SXmlStream,
        element: domish.Element,
        allows: Callable[[str, str], bool],
        senders: Callable[[], set[str]],
    ) -> str | None:
        """
        Check the addressing of a stanza the peer sent on C{xs}; close the
        stream with the stream error RFC 6120 names if it may not be sent
        there.

        @param allows: whether the pair (sender, recipient) may be sent.
        @param senders: the peer's domains authorised on the stream.
        @return: the sender's domain, if the stanza may be routed.
        """
        sender = validDomainOf(element.getAttribute("from"))
        recipient = validDomainOf(element.getAttribute("to"))
        if sender is None or recipient is None:
            xs.sendStreamError(error.StreamError("improper-addressing"))
            return None
        if allows(sender, recipient):
            return sender
        condition = "invalid-from" if sender not in senders() else "host-unknown"
        self._log.warn(
            "closing stream from {domain}: stanza from {sender} to {recipient} "
            "not authorised ({condition})",
            sender=sender,
            recipient=recipient,
            condition=condition,
            **xs.logFields(),
        )
        xs.sendStreamError(error.StreamError(condition))
        return None

    def _carriesVerifications(self, key: tuple[str, str], xs: S2SXmlStream) -> None:
        """
        Let C{xs}, an outgoing stream for the pair C{key}, carry dialback
        verification requests from now on, until it ends.
        """
        if self._verifiers.get(key) is xs:
            return
        self._verifiers[key] = xs

        def ended(_: object) -> None:
            if self._verifiers.get(key) is xs:
                del self._verifiers[key]

        xs.addObserver(xmlstream.STREAM_END_EVENT, ended)
        for waiter in self._verifierWaiters.pop(key, []):
            waiter.callback(xs)

    def verifyDialback(
        self, receiving: str, originating: str, streamID: str, key: str
    ) -> defer.Deferred[bool]:
        """
        Ask the authoritative server of C{originating} whether C{key} is one
        it issued for a stream to us (XEP-0220 section 2.1.3).

        The request goes over our outgoing stream from C{receiving} to
        C{originating}, which reaches the same server a new connection would
        (XEP-0220 lets the receiving server reuse a connection to the
        authoritative server; Prosody and ejabberd answer C{db:verify} on any
        incoming stream): the one that is up (authenticated, or
        authenticating by dialback: TLS is up), or else a new one, opened
        for it as for stanzas (a peer that opens a stream to us mostly wants
        answers on ours; Prosody does the same). Only when that stream
        fails before it answers does the request get a connection of its
        own (not when it could not be reached, or did not answer in time:
        a connection of its own would fare no better).

        @param receiving: our domain, which the key was sent to.
        @param originating: the domain that claims to have issued it.
        @param streamID: the id of the stream the key came on.
        @param key: the key.
        @return: a Deferred firing with the answer.
        """
        pair = (receiving, originating)
        stream = self._verifiers.get(pair)
        if stream is not None and not connectionClosing(stream.transport):
            return self._verifyOn(stream, receiving, originating, streamID, key)
        if stream is None and pair not in self._outgoing and self.running:
            return defer.Deferred.fromCoroutine(
                self._verifyOnNewStream(receiving, originating, streamID, key)
            )
        return self._verifyOverConnection(receiving, originating, streamID, key)

    async def _verifyOnNewStream(
        self, receiving: str, originating: str, streamID: str, key: str
    ) -> bool:
        """
        Open (or join the opening of) our outgoing stream from C{receiving}
        to C{originating} and verify over it once it can carry the request;
        over a connection of its own if that stream fails first, unless the
        server could not be reached or the answer timed out.
        """
        pair = (receiving, originating)
        ready: defer.Deferred[S2SXmlStream] = defer.Deferred()
        self._verifierWaiters.setdefault(pair, []).append(ready)
        if pair not in self._connecting:
            self._connectOutgoing(receiving, originating)
        try:
            xs = await ready
            return await self._verifyOn(xs, receiving, originating, streamID, key)
        except _UNREACHABLE:
            raise
        except Exception as e:
            if not self.running:
                raise
            self._log.info(
                "verifying the dialback key of {domain} over our stream failed ({reason}); "
                "over a connection of its own",
                domain=originating,
                local=receiving,
                reason=str(e) or type(e).__name__,
            )
        return await self._verifyOverConnection(receiving, originating, streamID, key)

    def _verifyOverConnection(
        self, receiving: str, originating: str, streamID: str, key: str
    ) -> defer.Deferred[bool]:
        """
        Verify a dialback key over a connection opened for it, closed after
        the answer.

        @return: a Deferred firing with the answer.
        """
        verify: list[VerifyDialback] = []

        def init(xs: S2SXmlStream) -> VerifyDialback:
            verify.append(VerifyDialback(xs, receiving, originating, streamID, key))
            return verify[0]

        authenticator = OutgoingAuthenticator(self, receiving, originating, init)
        d = self.openStream(originating, authenticator)

        def opened(xs: S2SXmlStream) -> defer.Deferred[bool]:
            answer = self._answerOf(xs, verify[0].valid, originating)

            def close(result: _T) -> _T:
                xs.sendFooter()
                if xs.transport is not None:
                    xs.transport.loseConnection()
                return result

            return answer.addBoth(close)

        return d.addCallback(opened)

    def _verifyOn(
        self, xs: S2SXmlStream, receiving: str, originating: str, streamID: str, key: str
    ) -> defer.Deferred[bool]:
        """
        Send a dialback verification request over C{xs}, a stream of ours
        to C{originating} that stays open.

        @return: a Deferred firing with the answer.
        """
        verify = VerifyDialback(xs, receiving, originating, streamID, key)
        verify.initialize()
        return self._answerOf(xs, verify.valid, originating)

    def _answerOf(
        self, xs: S2SXmlStream, answer: defer.Deferred[_T], originating: str
    ) -> defer.Deferred[_T]:
        """
        @param answer: the answer to a request sent on C{xs}, a stream to
            C{originating}.
        @return: C{answer}, failing when the stream ends first or after
            the handshake timeout.
        """

        def ended(_: object) -> None:
            if not answer.called:
                answer.errback(
                    DialbackFailed(f"the stream to {originating} ended before the answer")
                )

        def stopWatching(result: _T) -> _T:
            xs.removeObserver(xmlstream.STREAM_END_EVENT, ended)
            return result

        xs.addObserver(xmlstream.STREAM_END_EVENT, ended)
        answer.addTimeout(self.config.handshakeTimeout, self._reactor)
        return answer.addBoth(stopWatching)

    def openStream(
        self, remote: str, authenticator: OutgoingAuthenticator[_Final]
    ) -> defer.Deferred[S2SXmlStream]:
        """
        Resolve C{remote}, connect, and run C{authenticator}'s initializers.

        Without a static route for C{remote}, and unless
        C{allowPrivateAddresses} is set, only public addresses are connected
        to (L{AddressFilter}); a domain that resolves only to private ones
        fails with L{PrivateAddressesOnly<xmppnetgraph.error.PrivateAddressesOnly>},
        which bounces queued stanzas with C{remote-server-not-found}.

        @param remote: the remote domain.
        @param authenticator: the new stream's authenticator.
        @return: a Deferred firing with the authenticated stream, or
            failing (after at most connect + handshake timeout).
        """

        async def run() -> S2SXmlStream:
            route = self.config.routeFor(remote)
            targets = await resolveTargets(remote, route, self._resolver)
            # A static route is the operator's choice and goes anywhere;
            # where DNS (that is, the remote domain) chose, only public
            # addresses, unless the operator allows private ones.
            addressFilter = (
                None
                if route is not None or self.config.allowPrivateAddresses
                else AddressFilter(remote)
            )
            if not targets:
                raise RemoteServerNotFound(f"{remote} announces no XMPP s2s service")
            handshake = _Handshake(remote)
            factory = StreamFactory(
                lambda: authenticator, self.config, self._reactor, errors=self.streamErrors
            )
            factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, self._track)
            factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, handshake.watch)
            factory.addBootstrap(xmlstream.STREAM_END_EVENT, lambda _: factory.release())
            await connectToFirst(
                self._reactor,
                targets,
                factory,
                lambda: self.clientTLSOptions.creatorFor(remote),
                self.config.connectTimeout,
                addressFilter,
            )
            return await handshake.done

        d = defer.Deferred.fromCoroutine(run())
        d.addTimeout(self.config.connectTimeout + self.config.handshakeTimeout, self._reactor)
        self._opening.add(d)

        def opened(result: _T) -> _T:
            self._opening.discard(d)
            if not isinstance(result, Failure):
                # Reached (for stanzas or to verify a key): no more waiting.
                self._unreachable.pop(remote, None)
            return result

        return d.addBoth(opened)

    def _bounce(self, stanza: domish.Element, condition: str, kind: str = "cancel") -> None:
        """
        Answer C{stanza} with a stanza error from its recipient (unless it
        is an error or an IQ result itself).
        """
        if stanza.getAttribute("type") == "error" or (
            stanza.name == "iq" and stanza.getAttribute("type") == "result"
        ):
            return
        self.router.route(error.StanzaError(condition, kind).toResponse(stanza))

    def startService(self) -> None:
        """
        Start releasing the XML parsers of quiet streams.
        """
        super().startService()
        self._releasing = task.LoopingCall(self._releaseParsers)
        self._releasing.clock = self._reactor
        self._releasing.start(PARSER_RELEASE_AFTER, now=False)

    def _releaseParsers(self) -> None:
        """
        Let every stream that read nothing for L{PARSER_RELEASE_AFTER}
        seconds release its parser (L{S2SXmlStream.releaseParser}).
        """
        for xs in self._streams:
            xs.releaseParser(PARSER_RELEASE_AFTER)

    def stopService(self) -> defer.Deferred[None]:
        """
        Give up on streams being opened (for stanzas, or to verify a
        dialback key) and close every stream: gracefully, then (after the
        handshake timeout, at most 5 s) by force. A verification waiting for
        its answer fails when its stream ends.

        @return: a Deferred that fires when every connection is gone.
        """
        super().stopService()
        if self._releasing is not None and self._releasing.running:
            self._releasing.stop()
        for d in list(self._opening):
            d.cancel()
        links = len(list(self.linkTable.links()))
        started = self._reactor.seconds()
        ended: list[defer.Deferred[None]] = []
        for xs in list(self._streams):
            if xs.transport is None:
                continue
            done: defer.Deferred[None] = defer.Deferred()
            xs.addObserver(
                xmlstream.STREAM_END_EVENT, lambda _, done=done: done.called or done.callback(None)
            )
            ended.append(done)
            xs.close()
        if not ended:
            return defer.succeed(None)
        self._log.info(
            "s2s stopping: closing {streams} streams ({links} links)",
            streams=len(ended),
            links=links,
        )
        force = self._reactor.callLater(min(5.0, self.config.handshakeTimeout), self._abortAll)

        def allEnded(_: object) -> None:
            if force.active():
                force.cancel()
            self._log.info(
                "s2s stopped: {streams} streams closed in {seconds:.2f} s",
                streams=len(ended),
                seconds=self._reactor.seconds() - started,
            )

        return defer.DeferredList(ended).addBoth(allEnded)

    def _abortAll(self) -> None:
        """
        Drop every connection still open.
        """
        for xs in list(self._streams):
            if xs.transport is not None:
                abortTransport(xs.transport)


def _destination(route: Route | None) -> tuple[str, int] | None:
    """
    @return: where a static route leads (host and port), if there is one.
    """
    return None if route is None else (route.host, route.port)


def validDomainOf(value: str | None) -> str | None:
    """
    @return: the domain of the JID C{value}, or L{None} if it is malformed.
    """
    if not value:
        return None
    try:
        host: str = parseJID(value).host
    except ValueError:
        return None
    return host


def describe(reason: Failure) -> str:
    """
    @return: a one-line description of a connection failure for the log.
    """
    if reason.check(DNSNameError):
        return "no such domain"
    if reason.check(ConnectFailed, RemoteServerNotFound, DialbackFailed, PeerCertificateInvalid):
        return str(reason.value)
    return f"{type(reason.value).__name__}: {reason.getErrorMessage()}"
