# -*- test-case-name: tests.test_prosody_fixture -*-
"""
A tiny XMPP client (c2s) for tests, on Twisted's own
L{twisted.words.protocols.jabber.client}: log in to a server under test
(STARTTLS required, SASL, resource binding) and send IQs.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from twisted.internet import defer, ssl
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import client, xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

# Fires when a stream from connectClient has lost its connection.
_ended: weakref.WeakKeyDictionary[xmlstream.XmlStream, defer.Deferred[None]] = (
    weakref.WeakKeyDictionary()
)


def _transport(xs: xmlstream.XmlStream) -> Any:
    """
    @return: the transport of a connected stream.
    """
    assert xs.transport is not None
    return xs.transport


def tlsConfiguration(host: str, caPath: Path | None) -> Any:
    """
    @param host: the name the server's certificate must carry.
    @param caPath: PEM file with the certificate(s) to trust (a test CA, or
        the server's self-signed certificate), or L{None} to accept any
        certificate without verification.
    @return: a client TLS configuration for C{startTLS}.
    """
    if caPath is None:
        return ssl.CertificateOptions()
    trust = ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(Path(caPath).read_bytes())])
    return ssl.optionsForClientTLS(host, trustRoot=trust)


def connectClient(
    reactor: Any,
    jid: JID,
    password: str,
    host: str,
    port: int,
    *,
    caPath: Path | None = None,
    timeout: float = 10.0,
) -> defer.Deferred[xmlstream.XmlStream]:
    """
    Connect and log in as C{jid}: STARTTLS (required), SASL, bind.

    @param reactor: an L{IReactorTCP} and L{IReactorTime}.
    @param jid: the account (a resource part is a suggestion for binding).
    @param password: its password.
    @param host: the server's address.
    @param port: its c2s port.
    @param caPath: see L{tlsConfiguration}; the certificate must name
        C{jid.host}.
    @param timeout: seconds for the whole log-in.
    @return: fires with the initialized stream (its authenticator's C{jid}
        holds the bound full JID); fails with the initialization failure,
        L{defer.TimeoutError} or the connection error. Close the stream
        with L{disconnect}.
    """
    factory = client.XMPPClientFactory(
        jid, password, configurationForTLS=tlsConfiguration(jid.host, caPath)
    )
    # Never reconnect: the endpoint connects once; make sure of it anyway.
    factory.continueTrying = False
    factory.maxRetries = 0
    ready: defer.Deferred[xmlstream.XmlStream] = defer.Deferred()
    streams: list[xmlstream.XmlStream] = []

    def connected(xs: xmlstream.XmlStream) -> None:
        streams.append(xs)
        # IQ timeouts on our reactor, not the global one.
        xs._callLater = reactor.callLater
        ended: defer.Deferred[None] = defer.Deferred()
        _ended[xs] = ended

        def lost(reason: Failure) -> None:
            ended.callback(None)
            if not ready.called:
                ready.errback(reason)

        xs.addOnetimeObserver(xmlstream.STREAM_END_EVENT, lost)

    def authenticated(xs: xmlstream.XmlStream) -> None:
        if not ready.called:
            ready.callback(xs)

    def failed(reason: Failure) -> None:
        if not ready.called:
            ready.errback(reason)
        for xs in streams:
            _transport(xs).loseConnection()

    factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, connected)
    factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, authenticated)
    factory.addBootstrap(xmlstream.INIT_FAILED_EVENT, failed)

    connecting = TCP4ClientEndpoint(reactor, host, port, timeout=timeout).connect(factory)
    connecting.addErrback(failed)

    def timedOut(result: Any) -> Any:
        if isinstance(result, Failure) and result.check(defer.TimeoutError):
            for xs in streams:
                _transport(xs).abortConnection()
        return result

    ready.addTimeout(timeout, reactor)
    ready.addBoth(timedOut)
    return ready


def disconnect(xs: xmlstream.XmlStream) -> defer.Deferred[None]:
    """
    Close a stream made by L{connectClient}.

    @return: fires when the connection is gone.
    """
    ended = _ended.get(xs)
    if ended is None or ended.called:
        return defer.succeed(None)
    waiting: defer.Deferred[None] = defer.Deferred()
    ended.addCallback(lambda _: waiting.callback(None))
    xs.sendFooter()
    _transport(xs).loseConnection()
    return waiting


def sendIQ(
    xs: xmlstream.XmlStream, iq: domish.Element, timeout: float = 10.0
) -> defer.Deferred[domish.Element]:
    """
    Send the IQ request C{iq} and wait for the response.

    @param iq: an C{<iq/>} element with C{type} and C{to} set and its
        payload as children; C{id} is added when missing.
    @param timeout: seconds to wait for the response.
    @return: fires with the C{result} stanza; fails with
        L{twisted.words.protocols.jabber.error.StanzaError} for an C{error}
        response and L{xmlstream.TimeoutError} when no answer comes.
    """
    request: Any = xmlstream.IQ(xs, iq.getAttribute("type", "get"))
    for name, value in iq.attributes.items():
        request[name] = value
    for child in iq.children:
        request.addChild(child)
    request.timeout = timeout
    return request.send()
