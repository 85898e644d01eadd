# -*- test-case-name: tests.test_s2s_receive -*-
"""
Tests for the receiving side of s2s streams: L{ReceivingAuthenticator} and
the incoming path of L{S2SService}, driven over L{StringTransport} with no
sockets.

TLS is simulated: L{_StartTLSTransport} starts claiming L{ISSLTransport}
when C{startTLS} is called, and certificate checks are answered by a
patched C{PeerVerifier.validFor} of the service.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.internet.testing import EventLoggingObserver, MemoryReactorClock, StringTransport
from twisted.logger import LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.xish import domish
from wokkel.component import Router
from wokkel.generic import XmlPipe
from zope.interface import alsoProvides, implementer

from xmppnetgraph.certs import ensureSelfSigned, loadCredentials
from xmppnetgraph.config import Config, Route
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.s2s.initiate import (
    NS_BIDI,
    NS_BIDI_FEATURE,
    NS_DIALBACK,
    NS_SASL,
    NS_TLS,
    dialbackKey,
)
from xmppnetgraph.s2s.service import S2SService
from xmppnetgraph.s2s.xmlstream import S2SXmlStream

LOCAL = "a.example"
PUBSUB = "pubsub.a.example"
PEER = "b.example"
THIRD = "c.example"
SECRET = "s3cret-for-tests"

_PEER_ADDRESS = IPv4Address("TCP", "127.0.0.2", 45678)

# What we prepend to output that lacks a stream header, so that a plain
# parser accepts it.
_FAKE_ROOT = (
    b"<stream:stream xmlns='jabber:server' "
    b"xmlns:stream='http://etherx.jabber.org/streams' "
    b"xmlns:db='jabber:server:dialback'>"
)


def header(
    sender: str | None = PEER,
    to: str | None = LOCAL,
    *,
    namespace: str = "jabber:server",
    streamNamespace: str = xmlstream.NS_STREAMS,
) -> bytes:
    """
    @param sender: the C{from} attribute, or L{None} for none.
    @param to: the C{to} attribute, or L{None} for none.
    @param namespace: the default namespace.
    @param streamNamespace: the namespace of the C{stream} prefix.
    @return: an initiating server's stream header.
    """
    attributes = [
        f"xmlns='{namespace}'",
        f"xmlns:stream='{streamNamespace}'",
        f"xmlns:db='{NS_DIALBACK}'",
        "version='1.0'",
    ]
    if sender is not None:
        attributes.append(f"from='{sender}'")
    if to is not None:
        attributes.append(f"to='{to}'")
    return f"<stream:stream {' '.join(attributes)}>".encode()


def dbResult(sender: str, to: str, key: str = "some-key") -> bytes:
    """
    @return: a dialback request (C{db:result} without a type).
    """
    return f"<db:result from='{sender}' to='{to}'>{key}</db:result>".encode()


def dbVerify(sender: str, to: str, streamID: str, key: str) -> bytes:
    """
    @return: a dialback verification request (C{db:verify} without a type).
    """
    return f"<db:verify from='{sender}' to='{to}' id='{streamID}'>{key}</db:verify>".encode()


def saslAuth(mechanism: str = "EXTERNAL", authzid: str | None = None) -> bytes:
    """
    @param authzid: encoded as the initial response; L{None} sends C{=}.
    @return: a SASL C{<auth/>} element.
    """
    content = "=" if authzid is None else base64.b64encode(authzid.encode()).decode()
    return f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{content}</auth>".encode()


STARTTLS = f"<starttls xmlns='{NS_TLS}'/>".encode()


def parseOutput(data: bytes) -> list[domish.Element]:
    """
    Parse what a stream sent, ignoring stream headers and footers.

    @param data: output of one or more steps, starting at an element
        boundary.
    @return: the top-level elements (stream headers not included).
    """
    elements: list[domish.Element] = []
    data = data.replace(b"</stream:stream>", b"")
    if not data.startswith(b"<stream:stream"):
        data = _FAKE_ROOT + data
    parser = domish.elementStream()
    parser.DocumentStartEvent = lambda root: None
    parser.ElementEvent = elements.append
    parser.DocumentEndEvent = lambda: None
    parser.parse(data)
    return elements


def streamErrorConditions(elements: list[domish.Element]) -> list[str]:
    """
    @return: the conditions of the stream errors among C{elements}.
    """
    return [
        error.exceptionFromStreamError(e).condition
        for e in elements
        if (e.uri, e.name) == (xmlstream.NS_STREAMS, "error")
    ]


@implementer(ITLSTransport)
class _StartTLSTransport(StringTransport):
    """
    A L{StringTransport} that claims L{ISSLTransport} once C{startTLS} has
    been called, as a real TLS transport does (no handshake happens: the
    protocol is told at once that it is done, as a real one is before any
    data reaches it over TLS).

    @ivar tlsOptions: what C{startTLS} was given, or L{None}.
    @ivar listener: the protocol to tell, if any.
    """

    tlsOptions: object = None
    listener: Any = None

    def startTLS(self, contextFactory: object, normal: bool = True) -> None:
        """
        Record the options and start claiming to be TLS.
        """
        self.tlsOptions = contextFactory
        alsoProvides(self, ISSLTransport)
        if self.listener is not None:
            self.listener.handshakeCompleted()

    def getPeerCertificate(self) -> None:
        """
        No certificate: the patched check decides instead.
        """
        return None


class _Recorder:
    """
    A router destination that records what it is sent.
    """

    def __init__(self, router: Router, destination: str | None) -> None:
        pipe = XmlPipe()
        self.received: list[domish.Element] = []
        pipe.source.addObserver("/*", self.received.append)
        router.addRoute(destination, pipe.sink)


class ReceivingTestsBase(SynchronousTestCase):
    """
    Build an L{S2SService} for C{a.example} (and C{pubsub.a.example}) on a
    L{MemoryReactorClock}, with a fake dialback verifier, and connect
    incoming streams to it.

    @ivar verifyCalls: the arguments of every C{verifyDialback} call.
    @ivar verdict: what the fake authoritative server answers.
    @ivar validCertificates: the domains whose (simulated) peer certificate
        is valid.
    @ivar routed: the stanzas the service routed to each local domain.
    """

    configuration: dict[str, Any] = {}

    def setUp(self) -> None:
        """
        Build the service.
        """
        self.verifyCalls: list[tuple[str, str, str, str]] = []
        self.verdict: defer.Deferred[bool] | None = None
        self.validCertificates: set[str] = set()
        self.service = self.buildService(**self.configuration)

    def buildService(self, **configuration: Any) -> S2SService:
        """
        @param configuration: L{Config} fields.
        @return: a new service with its own router and link table.
        """
        dataDir = Path(self.mktemp())
        config = Config(domain=LOCAL, dataDir=dataDir, **configuration)
        credentials = loadCredentials(*ensureSelfSigned(dataDir, config.localDomains))
        self.reactor = MemoryReactorClock()
        self.router = Router()
        self.routed = {
            domain: _Recorder(self.router, domain).received for domain in config.localDomains
        }
        self.remote = _Recorder(self.router, None).received
        service = S2SService(
            config,
            self.router,
            LinkTable(ChangeFeed()),
            credentials,
            (),
            SECRET,
            self.reactor,
            None,
        )
        self.patch(service, "verifyDialback", self._verifyDialback)
        self.patch(service.peerVerifier, "validFor", self._certificateValidFor)
        return service

    def _verifyDialback(
        self, receiving: str, originating: str, streamID: str, key: str
    ) -> defer.Deferred[bool]:
        """
        Record the call; answer L{verdict}, or valid if there is none.
        """
        self.verifyCalls.append((receiving, originating, streamID, key))
        if self.verdict is not None:
            return self.verdict
        return defer.succeed(True)

    def _certificateValidFor(self, transport: object, domain: str, *, peerIsClient: bool) -> bool:
        """
        Replaces the service's L{PeerVerifier.validFor}: valid for the domains in
        L{validCertificates}, once the transport is TLS.
        """
        return ISSLTransport.providedBy(transport) and domain in self.validCertificates

    def connect(self) -> tuple[S2SXmlStream, _StartTLSTransport]:
        """
        @return: a new incoming stream from the service's factory, connected
            to a fresh transport.
        """
        xs = self.service.serverFactory().buildProtocol(_PEER_ADDRESS)
        transport = _StartTLSTransport(peerAddress=_PEER_ADDRESS)
        transport.listener = xs
        xs.makeConnection(transport)
        self.addCleanup(self.disconnect, xs)
        return xs, transport

    def disconnect(self, xs: S2SXmlStream) -> None:
        """
        Tell C{xs} its connection is gone, unless it was already told.
        """
        if not xs._connectionLost:
            xs.connectionLost(Failure(ConnectionDone()))

    def sent(self, transport: StringTransport) -> list[domish.Element]:
        """
        @return: the elements sent on C{transport} since the last call;
            the transport's buffer is cleared.
        """
        data = transport.value()
        transport.clear()
        return parseOutput(data)

    def startTLS(
        self, sender: str | None = PEER, to: str | None = LOCAL
    ) -> tuple[S2SXmlStream, _StartTLSTransport]:
        """
        Connect, negotiate (simulated) TLS and restart the stream.

        @return: the stream and its transport, after the post-TLS features.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(sender, to))
        xs.dataReceived(STARTTLS)
        self.assertTrue(ISSLTransport.providedBy(transport))
        xs.dataReceived(header(sender, to))
        transport.clear()
        return xs, transport

    def dialback(
        self, sender: str = PEER, to: str = LOCAL
    ) -> tuple[S2SXmlStream, _StartTLSTransport]:
        """
        Connect and authenticate C{sender} for C{to} by dialback over TLS.

        @return: the authenticated stream and its transport.
        """
        xs, transport = self.startTLS(sender, to)
        xs.dataReceived(dbResult(sender, to))
        self.assertEqual(self.resultTypes(self.sent(transport)), [(to, sender, "valid")])
        return xs, transport

    def resultTypes(self, elements: list[domish.Element]) -> list[tuple[str, str, str]]:
        """
        @return: (from, to, type) of the C{db:result} elements.
        """
        return [
            (e["from"], e["to"], e["type"])
            for e in elements
            if (e.uri, e.name) == (NS_DIALBACK, "result")
        ]

    def assertStreamError(
        self, xs: S2SXmlStream, transport: StringTransport, condition: str
    ) -> None:
        """
        Assert that exactly C{condition} was sent as a stream error, that the
        connection is being closed and no stanza of the stream was routed;
        then let the connection close.
        """
        self.assertEqual(streamErrorConditions(self.sent(transport)), [condition])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(sum(len(r) for r in self.routed.values()), 0)
        self.disconnect(xs)

    def assertNoStreamError(self, transport: StringTransport) -> list[domish.Element]:
        """
        Assert that the stream is alive and sent no stream error.

        @return: what it sent.
        """
        elements = self.sent(transport)
        self.assertEqual(streamErrorConditions(elements), [])
        self.assertFalse(transport.disconnecting)
        return elements

    def assertStillServes(self) -> None:
        """
        Assert that the service still accepts and authenticates a new
        stream and routes its stanzas, and that no link of an earlier,
        failed stream is left.
        """
        for link in self.service.linkTable.links():
            self.assertEqual(link.domain, PEER)
        before = len(list(self.service.linkTable.links()))
        for recorded in self.routed.values():
            del recorded[:]
        xs, transport = self.dialback(PEER, LOCAL)
        xs.dataReceived(
            f"<message from='user@{PEER}/r' to='{LOCAL}'><body>hi</body></message>".encode()
        )
        self.assertNoStreamError(transport)
        self.assertEqual([str(m.body) for m in self.routed[LOCAL]], ["hi"])
        self.assertEqual(len(list(self.service.linkTable.links())), before + 1)
        self.disconnect(xs)
        self.assertEqual(len(list(self.service.linkTable.links())), before)


class StreamHeaderTests(ReceivingTestsBase):
    """
    The stream header is checked before anything else happens.
    """

    def test_features(self) -> None:
        """
        A good header is answered with our header (from the domain it was
        addressed to) and features requiring STARTTLS.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(PEER, PUBSUB))
        self.assertIn(f"from='{PUBSUB}'".encode(), transport.value())
        (features,) = self.assertNoStreamError(transport)
        self.assertEqual((features.uri, features.name), (xmlstream.NS_STREAMS, "features"))
        self.assertEqual([(c.uri, c.name) for c in features.elements()], [(NS_TLS, "starttls")])
        self.assertTrue(features.starttls.required)

    def test_unknownHost(self) -> None:
        """
        A header addressed to a domain we do not serve gets
        C{<host-unknown/>}.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(PEER, "z.example"))
        self.assertStreamError(xs, transport, "host-unknown")
        self.assertStillServes()

    def test_wrongDefaultNamespace(self) -> None:
        """
        A client stream (C{jabber:client}) gets C{<invalid-namespace/>}.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(namespace="jabber:client"))
        self.assertStreamError(xs, transport, "invalid-namespace")
        self.assertStillServes()

    def test_wrongStreamNamespace(self) -> None:
        """
        A stream element in the wrong namespace gets C{<invalid-namespace/>}.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(streamNamespace="urn:example:not-streams"))
        self.assertStreamError(xs, transport, "invalid-namespace")
        self.assertStillServes()

    def test_headerFromNotADomain(self) -> None:
        """
        A header C{from} that is a JID with a localpart gets
        C{<invalid-from/>}.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(sender=f"user@{PEER}"))
        self.assertStreamError(xs, transport, "invalid-from")
        self.assertStillServes()

    def test_headerFromMalformed(self) -> None:
        """
        A header C{from} with an empty label gets C{<invalid-from/>} (no
        exception escapes the parser).
        """
        xs, transport = self.connect()
        xs.dataReceived(header(sender="b..example"))
        self.assertStreamError(xs, transport, "invalid-from")
        self.assertStillServes()

    def test_headerToMalformed(self) -> None:
        """
        A header C{to} with an empty label gets C{<host-unknown/>}.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(to="a..example"))
        self.assertStreamError(xs, transport, "host-unknown")
        self.assertStillServes()


class BeforeAuthenticationTests(ReceivingTestsBase):
    """
    Until a domain pair is authenticated only negotiation is accepted, and
    dialback requests are checked before anything is verified.
    """

    def test_stanzaBeforeTLS(self) -> None:
        """
        A stanza on a fresh stream gets C{<not-authorized/>}.
        """
        xs, transport = self.connect()
        xs.dataReceived(header())
        transport.clear()
        xs.dataReceived(f"<message from='{PEER}' to='{LOCAL}'/>".encode())
        self.assertStreamError(xs, transport, "not-authorized")
        self.assertStillServes()

    def test_stanzaWhileDialbackPending(self) -> None:
        """
        A stanza sent after a dialback request but before the verdict gets
        C{<not-authorized/>}, and the later verdict does not authorise the
        closed stream.
        """
        self.verdict = defer.Deferred()
        xs, transport = self.startTLS()
        xs.dataReceived(dbResult(PEER, LOCAL))
        xs.dataReceived(f"<message from='{PEER}' to='{LOCAL}'/>".encode())
        self.assertStreamError(xs, transport, "not-authorized")
        self.verdict.callback(True)
        self.assertEqual(self.sent(transport), [])
        self.assertEqual(list(self.service.linkTable.links()), [])
        self.verdict = None
        self.assertStillServes()

    def test_nothingActedOnAfterStreamError(self) -> None:
        """
        What follows a refused stanza in the same read is ignored: a
        dialback request is not verified and a C{db:verify} not answered
        after our stream error.
        """
        xs, transport = self.startTLS()
        xs.dataReceived(
            f"<message from='{PEER}' to='{LOCAL}'/>".encode()
            + dbResult(PEER, LOCAL)
            + dbVerify(PEER, LOCAL, "sid", dialbackKey(SECRET, PEER, LOCAL, "sid"))
        )
        self.assertTrue(transport.value().endswith(b"</stream:stream>"))
        self.assertStreamError(xs, transport, "not-authorized")
        self.assertEqual(self.verifyCalls, [])
        self.assertStillServes()

    def test_dialbackBeforeTLS(self) -> None:
        """
        When TLS is required, C{db:result} before STARTTLS gets
        C{<policy-violation/>} and nothing is verified.
        """
        xs, transport = self.connect()
        xs.dataReceived(header())
        transport.clear()
        xs.dataReceived(dbResult(PEER, LOCAL))
        self.assertStreamError(xs, transport, "policy-violation")
        self.assertEqual(self.verifyCalls, [])
        self.assertStillServes()

    def test_verifyBeforeTLS(self) -> None:
        """
        When TLS is required, C{db:verify} before STARTTLS gets
        C{<policy-violation/>} and is not answered.
        """
        xs, transport = self.connect()
        xs.dataReceived(header())
        transport.clear()
        xs.dataReceived(dbVerify(PEER, LOCAL, "sid", dialbackKey(SECRET, PEER, LOCAL, "sid")))
        self.assertStreamError(xs, transport, "policy-violation")
        self.assertStillServes()

    def test_plaintextAfterStartTLSIgnored(self) -> None:
        """
        A C{db:result} sent in the clear in the same packet as
        C{<starttls/>} is never processed: not verified, not refused.
        After the TLS restart the same request is verified.
        """
        xs, transport = self.connect()
        xs.dataReceived(header() + STARTTLS + dbResult(PEER, LOCAL, "injected"))
        self.assertTrue(ISSLTransport.providedBy(transport))
        self.assertIs(transport.tlsOptions, self.service.serverTLSOptions)
        self.assertEqual(
            [e.name for e in self.assertNoStreamError(transport)], ["features", "proceed"]
        )
        self.assertEqual(self.verifyCalls, [])
        xs.dataReceived(header() + dbResult(PEER, LOCAL, "genuine"))
        self.assertEqual([call[3] for call in self.verifyCalls], ["genuine"])
        self.assertEqual(
            self.resultTypes(self.assertNoStreamError(transport)), [(LOCAL, PEER, "valid")]
        )

    def test_plaintextStanzaAfterStartTLSIgnored(self) -> None:
        """
        A stanza sent in the clear after C{<starttls/>} in the same packet
        is dropped with the rest of that read, not answered with a stream
        error.
        """
        xs, transport = self.connect()
        xs.dataReceived(header() + STARTTLS + f"<message from='{PEER}' to='{LOCAL}'/>".encode())
        self.assertEqual(
            [e.name for e in self.assertNoStreamError(transport)], ["features", "proceed"]
        )

    def test_dialbackForOurOwnDomain(self) -> None:
        """
        A dialback request claiming one of our own domains gets
        C{<invalid-from/>} and is not verified.
        """
        xs, transport = self.startTLS(PUBSUB, LOCAL)
        xs.dataReceived(dbResult(PUBSUB, LOCAL))
        self.assertStreamError(xs, transport, "invalid-from")
        self.assertEqual(self.verifyCalls, [])
        self.assertStillServes()

    def test_dialbackToUnknownHost(self) -> None:
        """
        A dialback request for a receiving domain we do not serve gets
        C{<host-unknown/>}.
        """
        xs, transport = self.startTLS()
        xs.dataReceived(dbResult(PEER, "z.example"))
        self.assertStreamError(xs, transport, "host-unknown")
        self.assertEqual(self.verifyCalls, [])
        self.assertStillServes()

    def test_dialbackWithoutTo(self) -> None:
        """
        A dialback request without C{to} gets C{<improper-addressing/>}.
        """
        xs, transport = self.startTLS()
        xs.dataReceived(f"<db:result from='{PEER}'>key</db:result>".encode())
        self.assertStreamError(xs, transport, "improper-addressing")
        self.assertEqual(self.verifyCalls, [])
        self.assertStillServes()

    def test_dialbackMalformedFrom(self) -> None:
        """
        A dialback request whose C{from} is not a domain gets
        C{<improper-addressing/>}.
        """
        xs, transport = self.startTLS()
        xs.dataReceived(dbResult("b..example", LOCAL))
        self.assertStreamError(xs, transport, "improper-addressing")
        self.assertEqual(self.verifyCalls, [])
        self.assertStillServes()

    def test_dialbackRefused(self) -> None:
        """
        When the authoritative server says the key is invalid, the result
        is C{type='invalid'} and the stream stays unauthenticated.
        """
        self.verdict = defer.succeed(False)
        xs, transport = self.startTLS()
        xs.dataReceived(dbResult(PEER, LOCAL))
        self.assertEqual(
            self.resultTypes(self.assertNoStreamError(transport)), [(LOCAL, PEER, "invalid")]
        )
        self.assertEqual(self.verifyCalls, [(LOCAL, PEER, xs.sid, "some-key")])
        self.assertEqual(list(self.service.linkTable.links()), [])
        xs.dataReceived(f"<message from='{PEER}' to='{LOCAL}'/>".encode())
        self.assertStreamError(xs, transport, "not-authorized")
        self.verdict = None
        self.assertStillServes()


class SASLTests(ReceivingTestsBase):
    """
    SASL EXTERNAL is offered only for a valid certificate, and only for the
    domain in the stream header.
    """

    def test_authNotOffered(self) -> None:
        """
        Without a valid certificate EXTERNAL is not offered, and an
        C{<auth/>} anyway gets C{<failure><invalid-mechanism/></failure>};
        the stream stays unauthenticated.
        """
        xs, transport = self.connect()
        xs.dataReceived(header() + STARTTLS)
        transport.clear()
        xs.dataReceived(header())
        (features,) = self.assertNoStreamError(transport)
        self.assertNotIn((NS_SASL, "mechanisms"), [(c.uri, c.name) for c in features.elements()])
        xs.dataReceived(saslAuth())
        (failure,) = self.assertNoStreamError(transport)
        self.assertEqual((failure.uri, failure.name), (NS_SASL, "failure"))
        self.assertEqual([c.name for c in failure.elements()], ["invalid-mechanism"])
        self.assertFalse(xs.authenticator.authenticated)
        self.assertEqual(list(self.service.linkTable.links()), [])

    def test_authBeforeTLS(self) -> None:
        """
        An C{<auth/>} before TLS gets C{<invalid-mechanism/>} even for a
        peer whose certificate would be valid.
        """
        self.validCertificates.add(PEER)
        xs, transport = self.connect()
        xs.dataReceived(header())
        transport.clear()
        xs.dataReceived(saslAuth())
        (failure,) = self.assertNoStreamError(transport)
        self.assertEqual([c.name for c in failure.elements()], ["invalid-mechanism"])
        self.assertFalse(xs.authenticator.authenticated)

    def test_otherMechanism(self) -> None:
        """
        A mechanism other than EXTERNAL gets C{<invalid-mechanism/>}.
        """
        self.validCertificates.add(PEER)
        xs, transport = self.startTLS()
        xs.dataReceived(saslAuth("PLAIN", f"\0{PEER}\0secret"))
        (failure,) = self.assertNoStreamError(transport)
        self.assertEqual([c.name for c in failure.elements()], ["invalid-mechanism"])
        self.assertFalse(xs.authenticator.authenticated)

    def test_authzidForAnotherDomain(self) -> None:
        """
        EXTERNAL with an authzid other than the header's C{from} gets
        C{<failure><invalid-authzid/></failure>}, even if the certificate is
        valid for that domain too; nothing is authorised.
        """
        self.validCertificates.update({PEER, THIRD})
        xs, transport = self.startTLS()
        xs.dataReceived(saslAuth(authzid=THIRD))
        (failure,) = self.assertNoStreamError(transport)
        self.assertEqual((failure.uri, failure.name), (NS_SASL, "failure"))
        self.assertEqual([c.name for c in failure.elements()], ["invalid-authzid"])
        self.assertFalse(xs.authenticator.authenticated)
        xs.dataReceived(f"<message from='{THIRD}' to='{LOCAL}'/>".encode())
        self.assertStreamError(xs, transport, "not-authorized")
        self.assertStillServes()

    def test_external(self) -> None:
        """
        EXTERNAL with the header's domain as authzid succeeds; after the
        restart the peer is authorised for all our domains and its stanzas
        are routed, but not stanzas from another domain.
        """
        self.validCertificates.add(PEER)
        xs, transport = self.startTLS()
        xs.dataReceived(saslAuth(authzid=PEER))
        self.assertEqual(
            [(e.uri, e.name) for e in self.assertNoStreamError(transport)], [(NS_SASL, "success")]
        )
        xs.dataReceived(header())
        (features,) = self.assertNoStreamError(transport)
        self.assertEqual(list(features.elements()), [])
        authenticator = xs.authenticator
        self.assertTrue(authenticator.allows(PEER, LOCAL) and authenticator.allows(PEER, PUBSUB))
        self.assertFalse(authenticator.allows(THIRD, LOCAL) or authenticator.allows(PEER, THIRD))
        self.assertEqual(
            [(link.domain, link.direction, link.auth) for link in self.service.linkTable.links()],
            [(PEER, "incoming", "sasl-external")],
        )
        xs.dataReceived(f"<iq type='get' id='1' from='{PEER}' to='{PUBSUB}'/>".encode())
        self.assertNoStreamError(transport)
        self.assertEqual(len(self.routed[PUBSUB]), 1)
        xs.dataReceived(f"<iq type='get' id='2' from='{THIRD}' to='{PUBSUB}'/>".encode())
        self.assertEqual(streamErrorConditions(self.sent(transport)), ["invalid-from"])
        self.assertEqual(len(self.routed[PUBSUB]), 1)

    def test_restartClaimingAnotherDomain(self) -> None:
        """
        After SASL success, a restarted header from a different domain gets
        C{<invalid-from/>}.
        """
        self.validCertificates.add(PEER)
        xs, transport = self.startTLS()
        xs.dataReceived(saslAuth())
        transport.clear()
        xs.dataReceived(header(sender=THIRD))
        self.assertStreamError(xs, transport, "invalid-from")
        self.assertEqual(list(self.service.linkTable.links()), [])
        self.assertStillServes()


class _NotIterable(frozenset[str]):
    """
    A set of domains that may be asked about but not listed.
    """

    def __iter__(self) -> Any:
        raise AssertionError("the local domains were listed")


class SASLLocalDomainsTests(ReceivingTestsBase):
    """
    SASL EXTERNAL authorises the peer for all our domains without listing
    them: a node serving many domains (the crawl benchmark's simulator
    serves 20,000) would otherwise keep a pair per domain on every stream.
    """

    def test_notListed(self) -> None:
        self.service.localDomains = _NotIterable(self.service.localDomains)
        self.validCertificates.add(PEER)
        xs, transport = self.startTLS()
        xs.dataReceived(saslAuth(authzid=PEER))
        xs.dataReceived(header())
        self.assertNoStreamError(transport)
        xs.dataReceived(f"<iq type='get' id='1' from='{PEER}' to='{PUBSUB}'/>".encode())
        self.assertNoStreamError(transport)
        self.assertEqual(len(self.routed[PUBSUB]), 1)
        self.assertEqual(xs.authenticator.authorized, set())


class VerifyTests(ReceivingTestsBase):
    """
    As the authoritative server we answer C{db:verify} truthfully.
    """

    def verify(self, sender: str, to: str, streamID: str, key: str) -> domish.Element:
        """
        Send one C{db:verify} on a TLS stream.

        @return: the single C{db:verify} answer.
        """
        xs, transport = self.startTLS(sender, to)
        xs.dataReceived(dbVerify(sender, to, streamID, key))
        (answer,) = self.assertNoStreamError(transport)
        self.assertEqual((answer.uri, answer.name), (NS_DIALBACK, "verify"))
        self.assertEqual((answer["from"], answer["to"], answer["id"]), (to, sender, streamID))
        return answer

    def test_genuineKey(self) -> None:
        """
        A key we generated for that receiving server and stream is valid.
        """
        key = dialbackKey(SECRET, PEER, LOCAL, "stream-1")
        self.assertEqual(self.verify(PEER, LOCAL, "stream-1", key)["type"], "valid")

    def test_forgedKey(self) -> None:
        """
        A key we did not generate is invalid.
        """
        self.assertEqual(self.verify(PEER, LOCAL, "stream-1", "f" * 64)["type"], "invalid")

    def test_keyForAnotherStream(self) -> None:
        """
        A genuine key presented for another stream is invalid.
        """
        key = dialbackKey(SECRET, PEER, LOCAL, "stream-1")
        self.assertEqual(self.verify(PEER, LOCAL, "stream-2", key)["type"], "invalid")

    def test_keyForAnotherReceiver(self) -> None:
        """
        A genuine key that we issued towards another receiving server is
        invalid when presented by this one.
        """
        key = dialbackKey(SECRET, THIRD, LOCAL, "stream-1")
        self.assertEqual(self.verify(PEER, LOCAL, "stream-1", key)["type"], "invalid")

    def test_keyWithAnotherSecret(self) -> None:
        """
        A key made with another secret is invalid.
        """
        key = dialbackKey("not-" + SECRET, PEER, LOCAL, "stream-1")
        self.assertEqual(self.verify(PEER, LOCAL, "stream-1", key)["type"], "invalid")

    def test_verifyForForeignDomain(self) -> None:
        """
        A C{db:verify} about a domain we do not serve gets
        C{<host-unknown/>}.
        """
        xs, transport = self.startTLS()
        xs.dataReceived(dbVerify(PEER, "z.example", "sid", "key"))
        self.assertStreamError(xs, transport, "host-unknown")
        self.assertStillServes()


class AuthenticatedStreamTests(ReceivingTestsBase):
    """
    On an authenticated stream only stanzas of authorised domain pairs are
    routed.
    """

    def test_stanzaRouted(self) -> None:
        """
        A stanza of the authenticated pair is routed and counted on its
        link.
        """
        xs, transport = self.dialback()
        self.assertEqual(self.verifyCalls, [(LOCAL, PEER, xs.sid, "some-key")])
        xs.dataReceived(f"<message from='{PEER}' to='user@{LOCAL}'/>".encode())
        self.assertNoStreamError(transport)
        self.assertEqual(len(self.routed[LOCAL]), 1)
        (link,) = self.service.linkTable.links()
        self.assertEqual(
            (link.domain, link.localDomain, link.direction, link.auth),
            (PEER, LOCAL, "incoming", "dialback"),
        )
        self.assertEqual(link.stanzasIn, 1)

    def test_fromUnauthenticatedDomain(self) -> None:
        """
        A stanza from a domain the stream is not authenticated for gets
        C{<invalid-from/>}; the stream's link goes away.
        """
        xs, transport = self.dialback()
        xs.dataReceived(f"<message from='user@{THIRD}' to='{LOCAL}'/>".encode())
        self.assertStreamError(xs, transport, "invalid-from")
        self.assertEqual(list(self.service.linkTable.links()), [])
        self.assertStillServes()

    def test_toLocalDomainNotAuthorised(self) -> None:
        """
        On a dialback stream authorised for C{a.example} only, a stanza to
        C{pubsub.a.example} gets C{<host-unknown/>}.
        """
        xs, transport = self.dialback()
        xs.dataReceived(f"<iq type='get' id='1' from='{PEER}' to='{PUBSUB}'/>".encode())
        self.assertStreamError(xs, transport, "host-unknown")
        self.assertStillServes()

    def test_toForeignDomain(self) -> None:
        """
        A stanza addressed to a domain we do not serve gets
        C{<host-unknown/>} and is not relayed.
        """
        xs, transport = self.dialback()
        xs.dataReceived(f"<message from='{PEER}' to='{THIRD}'/>".encode())
        self.assertStreamError(xs, transport, "host-unknown")
        self.assertEqual(self.remote, [])
        self.assertStillServes()

    def test_stanzaAfterStreamErrorNotRouted(self) -> None:
        """
        A stanza that follows a refused one in the same read is not routed,
        although its addressing would be fine.
        """
        xs, transport = self.dialback()
        xs.dataReceived(
            f"<message from='{THIRD}' to='{LOCAL}'/><message from='{PEER}' to='{LOCAL}'/>".encode()
        )
        self.assertStreamError(xs, transport, "invalid-from")
        self.assertStillServes()

    def test_multiplexedPair(self) -> None:
        """
        A second dialback request on the same stream authorises a further
        pair; stanzas of both pairs are routed.
        """
        xs, transport = self.dialback()
        xs.dataReceived(dbResult(PEER, PUBSUB))
        self.assertEqual(
            self.resultTypes(self.assertNoStreamError(transport)), [(PUBSUB, PEER, "valid")]
        )
        xs.dataReceived(f"<iq type='get' id='1' from='{PEER}' to='{PUBSUB}'/>".encode())
        xs.dataReceived(f"<iq type='get' id='2' from='{PEER}' to='{LOCAL}'/>".encode())
        self.assertNoStreamError(transport)
        self.assertEqual((len(self.routed[PUBSUB]), len(self.routed[LOCAL])), (1, 1))

    def test_missingFrom(self) -> None:
        """
        A stanza without C{from} gets C{<improper-addressing/>}.
        """
        xs, transport = self.dialback()
        xs.dataReceived(f"<message to='{LOCAL}'/>".encode())
        self.assertStreamError(xs, transport, "improper-addressing")
        self.assertStillServes()

    def test_missingTo(self) -> None:
        """
        A stanza without C{to} gets C{<improper-addressing/>}.
        """
        xs, transport = self.dialback()
        xs.dataReceived(f"<presence from='{PEER}'/>".encode())
        self.assertStreamError(xs, transport, "improper-addressing")
        self.assertStillServes()

    def test_malformedFrom(self) -> None:
        """
        A stanza whose C{from} is not a JID (here: an empty label, on which
        Twisted's nameprep raises L{IndexError}) gets
        C{<improper-addressing/>}.
        """
        xs, transport = self.dialback()
        xs.dataReceived(f"<message from='user@b..example' to='{LOCAL}'/>".encode())
        self.assertStreamError(xs, transport, "improper-addressing")
        self.assertStillServes()

    def test_malformedTo(self) -> None:
        """
        A stanza whose C{to} is not a JID gets C{<improper-addressing/>}.
        """
        xs, transport = self.dialback()
        xs.dataReceived(f"<message from='{PEER}' to='.{LOCAL}'/>".encode())
        self.assertStreamError(xs, transport, "improper-addressing")
        self.assertStillServes()

    def test_otherStreamsUnaffected(self) -> None:
        """
        Closing one stream with a stream error leaves a concurrent stream
        of the same peer working.
        """
        good, goodTransport = self.dialback()
        bad, badTransport = self.dialback()
        bad.dataReceived(f"<message from='{THIRD}' to='{LOCAL}'/>".encode())
        self.assertStreamError(bad, badTransport, "invalid-from")
        good.dataReceived(f"<message from='{PEER}' to='{LOCAL}'/>".encode())
        self.assertNoStreamError(goodTransport)
        self.assertEqual(len(self.routed[LOCAL]), 1)
        self.assertEqual(len(list(self.service.linkTable.links())), 1)


BIDI = f"<bidi xmlns='{NS_BIDI}'/>".encode()


class BidiTests(ReceivingTestsBase):
    """
    XEP-0288 on the receiving side: the offer after TLS, the request before
    authentication, and where our own stanzas to the peer go.
    """

    def featuresAfterTLS(self) -> tuple[S2SXmlStream, _StartTLSTransport, list[tuple[str, str]]]:
        xs, transport = self.connect()
        xs.dataReceived(header(PEER, LOCAL))
        xs.dataReceived(STARTTLS)
        transport.clear()
        xs.dataReceived(header(PEER, LOCAL))
        (features,) = self.sent(transport)
        return xs, transport, [(c.uri, c.name) for c in features.elements()]

    def test_offeredAfterTLS(self) -> None:
        """
        The features after TLS offer bidi; those before (STARTTLS required)
        do not.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(PEER, LOCAL))
        (features,) = self.sent(transport)
        self.assertNotIn((NS_BIDI_FEATURE, "bidi"), [(c.uri, c.name) for c in features.elements()])
        _, _, after = self.featuresAfterTLS()
        self.assertIn((NS_BIDI_FEATURE, "bidi"), after)

    def test_requestedThenAnswersGoBack(self) -> None:
        """
        A peer that asks for bidi before dialback gets a bidirectional link;
        a stanza from our domain to it goes over its stream, with no
        connection of our own.
        """
        xs, transport, _ = self.featuresAfterTLS()
        xs.dataReceived(BIDI)
        self.assertNoStreamError(transport)
        xs.dataReceived(dbResult(PEER, LOCAL))
        self.assertEqual(self.resultTypes(self.sent(transport)), [(LOCAL, PEER, "valid")])
        [link] = self.service.linkTable.links()
        self.assertTrue(link.bidi)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.service.send(domish.Element((None, "message"), attribs={"from": LOCAL, "to": PEER}))
        [message] = self.sent(transport)
        self.assertEqual((message.name, message["to"]), ("message", PEER))
        self.assertEqual(self.reactor.tcpClients, [])
        self.assertEqual(link.stanzasOut, 1)
        # Only the pair the peer authenticated goes back over it: for
        # another, we open a stream of our own.
        opened: list[tuple[str, str]] = []
        self.patch(self.service, "_connectOutgoing", lambda *pair: opened.append(pair))
        self.service.send(domish.Element((None, "message"), attribs={"from": PUBSUB, "to": PEER}))
        self.assertEqual(self.sent(transport), [])
        self.assertEqual(opened, [(PUBSUB, PEER)])
        self.disconnect(xs)
        self.assertNotIn((LOCAL, PEER), self.service._outgoing)

    def test_requestAfterAuthenticationIgnored(self) -> None:
        """
        A request after authentication is ignored: no stream error, and the
        link stays one way.
        """
        xs, transport = self.dialback()
        xs.dataReceived(BIDI)
        self.assertNoStreamError(transport)
        self.assertFalse(xs.authenticator.bidi)
        [link] = self.service.linkTable.links()
        self.assertFalse(link.bidi)
        self.assertNotIn((LOCAL, PEER), self.service._outgoing)

    def test_requestAfterSASLIgnored(self) -> None:
        """
        A request in the stream restarted after SASL's success is too late.
        """
        self.validCertificates.add(PEER)
        xs, transport, _ = self.featuresAfterTLS()
        xs.dataReceived(saslAuth(authzid=PEER))
        xs.dataReceived(header())
        xs.dataReceived(BIDI)
        self.assertNoStreamError(transport)
        self.assertFalse(xs.authenticator.bidi)
        [link] = self.service.linkTable.links()
        self.assertEqual((link.auth, link.bidi), ("sasl-external", False))

    def test_notBeforeTLS(self) -> None:
        """
        Where TLS is optional, bidi is not offered before it, and a request
        made in plaintext does not count after STARTTLS (RFC 6120: what was
        negotiated before TLS is discarded).
        """
        self.service = self.buildService(requireTLS=False)
        xs, transport = self.connect()
        xs.dataReceived(header(PEER, LOCAL))
        (features,) = self.sent(transport)
        self.assertNotIn((NS_BIDI_FEATURE, "bidi"), [(c.uri, c.name) for c in features.elements()])
        xs.authenticator._bidiOffered = True  # as if an older version had offered it
        xs.dataReceived(BIDI)
        self.assertTrue(xs.authenticator.bidi)
        xs.dataReceived(STARTTLS)
        xs.dataReceived(header(PEER, LOCAL))
        self.assertFalse(xs.authenticator.bidi)
        xs.dataReceived(dbResult(PEER, LOCAL))
        [link] = self.service.linkTable.links()
        self.assertFalse(link.bidi)

    def test_multiplexedPair(self) -> None:
        """
        A further pair that dialback authorises on a bidirectional stream
        takes our stanzas of the inverse pair too.
        """
        xs, transport, _ = self.featuresAfterTLS()
        xs.dataReceived(BIDI)
        xs.dataReceived(dbResult(PEER, LOCAL))
        xs.dataReceived(dbResult(THIRD, PUBSUB))
        self.assertIn((PUBSUB, THIRD, "valid"), self.resultTypes(self.sent(transport)))
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.service.send(domish.Element((None, "message"), attribs={"from": PUBSUB, "to": THIRD}))
        [message] = self.sent(transport)
        self.assertEqual((message["from"], message["to"]), (PUBSUB, THIRD))

    def test_closingStreamNotUsed(self) -> None:
        """
        Once the peer is closing its bidirectional stream, our next stanza
        to it opens a stream of our own instead of being lost.
        """
        xs, transport, _ = self.featuresAfterTLS()
        xs.dataReceived(BIDI)
        xs.dataReceived(dbResult(PEER, LOCAL))
        self.service.startService()
        self.addCleanup(self.service.stopService)
        opened: list[tuple[str, str]] = []
        self.patch(self.service, "_connectOutgoing", lambda *pair: opened.append(pair))
        transport.clear()
        transport.loseConnection()
        self.service.send(domish.Element((None, "message"), attribs={"from": LOCAL, "to": PEER}))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(opened, [(LOCAL, PEER)])

    def test_notOffered(self) -> None:
        """
        With bidi off, the features do not offer it, and a request anyway is
        ignored.
        """
        self.service = self.buildService(bidi=False)
        xs, transport, features = self.featuresAfterTLS()
        self.assertNotIn((NS_BIDI_FEATURE, "bidi"), features)
        xs.dataReceived(BIDI)
        self.assertNoStreamError(transport)
        xs.dataReceived(dbResult(PEER, LOCAL))
        [link] = self.service.linkTable.links()
        self.assertFalse(link.bidi)


class TargetMultiplexingTests(ReceivingTestsBase):
    """
    XEP-0220 target multiplexing on the receiving side: a peer adds a
    further local domain to its authenticated stream with C{db:result}.
    """

    def sasl(self, *, bidi: bool = False) -> tuple[S2SXmlStream, _StartTLSTransport]:
        """
        @return: a stream authenticated by SASL EXTERNAL as L{PEER}, to
            L{LOCAL}, bidirectional if C{bidi}.
        """
        self.validCertificates.add(PEER)
        xs, transport = self.startTLS()
        if bidi:
            xs.dataReceived(BIDI)
        xs.dataReceived(saslAuth(authzid=PEER))
        xs.dataReceived(header())
        transport.clear()
        return xs, transport

    def test_saslFurtherLocalDomain(self) -> None:
        """
        On a SASL stream, a C{db:result} for another local domain is valid
        at once (the certificate proved the sender), names the pair with a
        link of its own, and our stanzas of its inverse go back over the
        bidirectional stream.
        """
        xs, transport = self.sasl(bidi=True)
        xs.dataReceived(dbResult(PEER, PUBSUB))
        self.assertEqual(
            self.resultTypes(self.assertNoStreamError(transport)), [(PUBSUB, PEER, "valid")]
        )
        self.assertEqual(self.verifyCalls, [])
        self.assertEqual(
            sorted(
                (link.domain, link.localDomain, link.auth, link.bidi)
                for link in self.service.linkTable.links()
            ),
            [(PEER, LOCAL, "sasl-external", True), (PEER, PUBSUB, "sasl-external", True)],
        )
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.service.send(domish.Element((None, "iq"), attribs={"from": PUBSUB, "to": PEER}))
        [iq] = self.sent(transport)
        self.assertEqual((iq["from"], iq["to"]), (PUBSUB, PEER))
        self.assertEqual(self.reactor.tcpClients, [])
        # A stanza to the pubsub domain counts on its own link.
        xs.dataReceived(f"<iq type='get' id='1' from='{PEER}' to='{PUBSUB}'/>".encode())
        links = {link.localDomain: link for link in self.service.linkTable.links()}
        self.assertEqual((links[PUBSUB].stanzasIn, links[LOCAL].stanzasIn), (1, 0))
        # Asked again: valid again, no second link.
        xs.dataReceived(dbResult(PEER, PUBSUB))
        self.assertEqual(self.resultTypes(self.sent(transport)), [(PUBSUB, PEER, "valid")])
        self.assertEqual(len(list(self.service.linkTable.links())), 2)
        self.disconnect(xs)
        self.assertEqual(list(self.service.linkTable.links()), [])
        self.assertNotIn((PUBSUB, PEER), self.service._outgoing)

    def test_unknownTargetIsADialbackError(self) -> None:
        """
        On an authenticated stream, a C{db:result} for a domain we do not
        serve gets a dialback error (C{item-not-found}), not a stream
        error: the pairs already on the stream go on.
        """
        xs, transport = self.dialback()
        xs.dataReceived(dbResult(PEER, THIRD))
        [answer] = self.assertNoStreamError(transport)
        self.assertEqual((answer["from"], answer["to"], answer["type"]), (THIRD, PEER, "error"))
        [failure] = [child for child in answer.elements() if child.name == "error"]
        self.assertEqual(
            [(c.uri, c.name) for c in failure.elements()],
            [(error.NS_XMPP_STANZAS, "item-not-found")],
        )
        self.assertEqual(failure["type"], "cancel")
        xs.dataReceived(f"<message from='{PEER}' to='{LOCAL}'/>".encode())
        self.assertNoStreamError(transport)
        self.assertEqual(len(self.routed[LOCAL]), 1)

    def test_saslWithDialbackDisabled(self) -> None:
        """
        With dialback disabled, a SASL stream may still add a local domain
        (no dialback verification is involved), but a dialback stream
        cannot be started.
        """
        self.service = self.buildService(requireValidCerts=True)
        xs, transport = self.sasl()
        xs.dataReceived(dbResult(PEER, PUBSUB))
        self.assertEqual(
            self.resultTypes(self.assertNoStreamError(transport)), [(PUBSUB, PEER, "valid")]
        )
        # Another sender on the same stream is dialback, and refused.
        xs.dataReceived(dbResult(THIRD, LOCAL))
        self.assertStreamError(xs, transport, "not-authorized")


class DialbackDisabledTests(ReceivingTestsBase):
    """
    With C{requireValidCerts}, dialback is neither offered nor accepted.
    """

    configuration = {"requireValidCerts": True}

    def test_dialbackRefused(self) -> None:
        """
        A dialback request gets C{<not-authorized/>} and is not verified.
        """
        xs, transport = self.startTLS()
        xs.dataReceived(dbResult(PEER, LOCAL))
        self.assertStreamError(xs, transport, "not-authorized")
        self.assertEqual(self.verifyCalls, [])


class LogFieldTests(ReceivingTestsBase):
    """
    Log events of incoming streams name the stream by the same fields:
    C{domain}, C{direction}, C{local}, C{sid} (and C{address}).
    """

    def setUp(self) -> None:
        """
        Build the service and record what is logged.
        """
        super().setUp()
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def logged(self, start: str) -> list[LogEvent]:
        """
        @return: the events whose format starts with C{start}.
        """
        return [e for e in self.events if e.get("log_format", "").startswith(start)]

    def assertStreamFields(
        self, event: LogEvent, xs: S2SXmlStream, domain: str | None, local: str | None
    ) -> None:
        """
        C{event} names the incoming stream C{xs} from C{domain} to C{local}.
        """
        self.assertEqual(
            {key: event.get(key) for key in ("domain", "direction", "local", "sid", "address")},
            {
                "domain": domain,
                "direction": "incoming",
                "local": local,
                "sid": xs.sid,
                "address": _PEER_ADDRESS,
            },
        )

    def test_unauthorisedStanza(self) -> None:
        """
        The warning about a stanza from a domain the stream is not
        authorised for names the stream.
        """
        xs, transport = self.dialback()
        xs.dataReceived(f"<message from='user@{THIRD}' to='{LOCAL}'/>".encode())
        [event] = self.logged("closing stream from")
        self.assertStreamFields(event, xs, PEER, LOCAL)
        self.assertEqual((event["sender"], event["recipient"]), (THIRD, LOCAL))

    def test_dialbackRefused(self) -> None:
        """
        The warning about a refused dialback key names the claimed domain
        and ours.
        """
        self.verdict = defer.succeed(False)
        xs, transport = self.startTLS()
        xs.dataReceived(dbResult(PEER, PUBSUB))
        [event] = self.logged("dialback for")
        self.assertStreamFields(event, xs, PEER, PUBSUB)

    def test_closedBeforeAuthentication(self) -> None:
        """
        A stream that ends unauthenticated is logged with the domain its
        header claimed.
        """
        xs, transport = self.connect()
        xs.dataReceived(header(PEER, LOCAL))
        self.disconnect(xs)
        [event] = self.logged("incoming s2s connection from")
        self.assertStreamFields(event, xs, PEER, LOCAL)

    def test_traffic(self) -> None:
        """
        With C{logTraffic}, what is read and written is logged with the
        stream's fields as they are at that moment.
        """
        self.service = self.buildService(logTraffic=True)
        xs, transport = self.dialback()
        first = self.logged("RECV")[0]
        self.assertEqual(first["data"], header(PEER, LOCAL))
        self.assertEqual(
            (first["domain"], first["local"], first["sid"], first["address"]),
            (None, None, None, _PEER_ADDRESS),
        )
        self.assertTrue(self.logged("SEND"))
        xs.dataReceived(b" ")
        self.assertStreamFields(self.logged("RECV")[-1], xs, PEER, LOCAL)


class StopTests(ReceivingTestsBase):
    """
    L{S2SService.stopService} leaves no stream being opened behind.
    """

    configuration = {"routes": (Route(PEER, "127.0.0.2", 5269),)}

    def test_verificationBeingOpened(self) -> None:
        """
        A dialback verification whose stream is still connecting is given
        up when the service stops: it fails, and no timer is left.
        """
        self.service.startService()
        d = S2SService.verifyDialback(self.service, LOCAL, PEER, "sid", "key")
        self.assertEqual([c[1] for c in self.reactor.tcpClients], [5269])
        self.successResultOf(self.service.stopService())
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
