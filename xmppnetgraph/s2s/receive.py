# -*- test-case-name: tests.test_s2s_receive -*-
"""
The receiving side of an s2s stream: stream header checks, STARTTLS,
SASL EXTERNAL (XEP-0178), dialback (XEP-0220, including multiplexed domain
pairs and answering verify requests as the authoritative server), and the
offer of a bidirectional stream (XEP-0288).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, jid, xmlstream
from twisted.words.xish import domish

from xmppnetgraph.model import AuthMethod
from xmppnetgraph.names import parseJID
from xmppnetgraph.s2s.initiate import (
    NS_BIDI,
    NS_BIDI_FEATURE,
    NS_DIALBACK,
    NS_DIALBACK_FEATURE,
    NS_SASL,
    NS_TLS,
    dialbackKey,
    keysEqual,
)
from xmppnetgraph.s2s.xmlstream import S2SXmlStream, StreamLogFields

if TYPE_CHECKING:
    from xmppnetgraph.s2s.service import S2SService

NS_SERVER = "jabber:server"
_AUTH_NAMESPACES = (NS_DIALBACK, NS_TLS, NS_SASL, NS_BIDI, xmlstream.NS_STREAMS)


def validDomain(value: str | None) -> str | None:
    """
    @return: C{value} if it is a bare domain JID, else L{None}.
    """
    if not value:
        return None
    try:
        parsed = parseJID(value)
    except ValueError:
        return None
    if parsed.user is not None or parsed.resource is not None:
        return None
    host: str = parsed.host
    return host


def connectionClosing(transport: object) -> bool:
    """
    @return: whether C{transport} is gone or being closed, as after we sent
        a stream error: nothing read on it any more may be acted on.
    """
    if transport is None:
        return True
    return bool(
        getattr(transport, "disconnecting", False) or getattr(transport, "disconnected", False)
    )


def verifyAnswer(service: S2SService, element: domish.Element) -> domish.Element:
    """
    As the authoritative server, answer a dialback verification request
    (C{db:verify} without a type): whether its key is one we issued.

    @raise error.StreamError: if it is badly addressed, or not to one of
        our domains.
    """
    receiving = validDomain(element.getAttribute("from"))
    originating = validDomain(element.getAttribute("to"))
    if receiving is None or originating is None:
        raise error.StreamError("improper-addressing")
    if originating not in service.localDomains:
        raise error.StreamError("host-unknown")
    streamID = element.getAttribute("id", "")
    expected = dialbackKey(service.secret, receiving, originating, streamID)
    reply = domish.Element((NS_DIALBACK, "verify"))
    reply["from"] = originating
    reply["to"] = receiving
    reply["id"] = streamID
    reply["type"] = "valid" if keysEqual(str(element).strip(), expected) else "invalid"
    return reply


class ReceivingAuthenticator(xmlstream.ListenAuthenticator):
    """
    Authenticate a peer that connected to us.

    @ivar authorized: the (remote, local) domain pairs dialback authorised
        (SASL EXTERNAL authorises the peer's domain for all our domains
        without listing them: see L{allows}).
    @ivar method: how the peer authenticated, once it has.
    @ivar certValid: whether the peer's certificate is valid for the domain
        it authenticated as.
    @ivar bidi: whether the peer asked for a bidirectional stream
        (XEP-0288): once a domain pair is authorised, we may send the
        stanzas of the inverse pair over this stream.
    """

    namespace = NS_SERVER
    _log = Logger()

    # Set by the stream it is made for, before any of our methods runs.
    xmlstream: S2SXmlStream

    def __init__(self, service: S2SService) -> None:
        """
        @param service: the s2s service the stream belongs to.
        """
        super().__init__()
        self.service = service
        self.authorized: set[tuple[str, str]] = set()
        self._saslAuthenticated = False
        self.method: AuthMethod | None = None
        self.certValid = False
        self.bidi = False
        self._bidiOffered = False
        self._peerDomain: str | None = None
        self._externalOffered = False
        self._saslDomain: str | None = None
        self._observing = False
        # The id of the current stream (a new one at every restart).
        self._streamID = ""

    @property
    def claimedDomain(self) -> str | None:
        """
        The domain the peer's stream header claims, if any.
        """
        return self._peerDomain

    @property
    def authenticated(self) -> bool:
        """
        Whether at least one domain pair is authorised on this stream.
        """
        return self._saslAuthenticated or bool(self.authorized)

    def allows(self, sender: str, recipient: str) -> bool:
        """
        @return: whether the peer may send from C{sender} to C{recipient}
            on this stream.
        """
        if (sender, recipient) in self.authorized:
            return True
        return (
            self._saslAuthenticated
            and sender == self._saslDomain
            and recipient in self.service.localDomains
        )

    def remoteDomains(self) -> set[str]:
        """
        @return: the peer's domains authorised on this stream.
        """
        remotes = {remote for remote, _ in self.authorized}
        if self._saslAuthenticated and self._saslDomain is not None:
            remotes.add(self._saslDomain)
        return remotes

    def _tls(self) -> bool:
        """
        @return: whether the stream runs over TLS.
        """
        return ISSLTransport.providedBy(self.xmlstream.transport)

    def streamStarted(self, rootElement: domish.Element) -> None:
        """
        Check a (re)started stream's header and send our features.
        """
        xs = self.xmlstream
        xmlstream.Authenticator.streamStarted(self, rootElement)
        xs.namespace = NS_SERVER
        xs.prefixes = {xmlstream.NS_STREAMS: "stream", NS_DIALBACK: "db"}
        self._streamID = xs.sid = secrets.token_hex(16)
        to = (
            validDomain(rootElement.getAttribute("to"))
            if rootElement.hasAttribute("to")
            else self.service.domain
        )
        xs.thisEntity = jid.internJID(
            to if to in self.service.localDomains else self.service.domain
        )
        refusal = None
        headerFrom = rootElement.getAttribute("from")
        if rootElement.uri != xmlstream.NS_STREAMS or rootElement.defaultUri != NS_SERVER:
            refusal = "invalid-namespace"
        elif to not in self.service.localDomains:
            refusal = "host-unknown"
        elif xs.version < (1, 0) and self.service.requireTLS:
            refusal = "unsupported-version"
        else:
            self._peerDomain = validDomain(headerFrom)
            if headerFrom is not None and self._peerDomain is None:
                refusal = "invalid-from"
            elif self._saslDomain is not None and self._peerDomain not in (
                None,
                self._saslDomain,
            ):
                refusal = "invalid-from"
        if refusal is not None:
            xs.sendStreamError(error.StreamError(refusal))
            return
        if not self._observing:
            self._observing = True
            xs.addObserver(f"/starttls[@xmlns='{NS_TLS}']", self._guard(self.onStartTLS))
            xs.addObserver(f"/auth[@xmlns='{NS_SASL}']", self._guard(self.onAuth))
            xs.addObserver(f"/result[@xmlns='{NS_DIALBACK}']", self._guard(self.onResult))
            xs.addObserver(f"/verify[@xmlns='{NS_DIALBACK}']", self._guard(self.onVerify))
            xs.addObserver(f"/bidi[@xmlns='{NS_BIDI}']", self._guard(self.onBidi))
            xs.addObserver("/*", self._guard(self.onOther), -1)
        xs.sendHeader()
        if xs.version >= (1, 0):
            xs.send(self._features())
        if self._saslDomain is not None and not self.authenticated:
            self.method = "sasl-external"
            self.certValid = True
            self._saslAuthenticated = True
            xs.otherEntity = jid.internJID(self._saslDomain)
            xs.dispatch(xs, xmlstream.STREAM_AUTHD_EVENT)

    def _features(self) -> domish.Element:
        """
        @return: the stream features to offer now.
        """
        features = domish.Element((xmlstream.NS_STREAMS, "features"))
        if not self._tls():
            starttls = features.addElement((NS_TLS, "starttls"))
            if self.service.requireTLS:
                starttls.addElement("required")
                return features
        if self._saslDomain is None:
            if self.service.config.bidi and self._tls() and not self.authenticated:
                # XEP-0288: over TLS only, asked for before authentication,
                # and kept over the restart after SASL.
                self._bidiOffered = True
                features.addElement((NS_BIDI_FEATURE, "bidi"))
            self._externalOffered = self._peerDomain is not None and self._certificateValidFor(
                self._peerDomain
            )
            if self._externalOffered:
                mechanisms = features.addElement((NS_SASL, "mechanisms"))
                mechanisms.addElement("mechanism", content="EXTERNAL")
            if not self.service.requireValidCerts:
                features.addElement((NS_DIALBACK_FEATURE, "dialback")).addElement("errors")
        return features

    def _certificateValidFor(self, domain: str) -> bool:
        """
        @return: whether the peer's certificate is valid for C{domain}.
        """
        return self._tls() and self.service.peerVerifier.validFor(
            self.xmlstream.transport, domain, peerIsClient=True
        )

    def _guard(self, handler: Callable[[domish.Element], None]) -> Callable[[domish.Element], None]:
        """
        Turn exceptions in C{handler} into stream errors.
        """

        def guarded(element: domish.Element) -> None:
            if connectionClosing(self.xmlstream.transport):
                # The rest of a read that followed a stream error.
                return
            try:
                handler(element)
            except error.StreamError as exc:
                self.xmlstream.sendStreamError(exc)
            except Exception:
                self._log.failure(
                    "error handling {name} from {domain}",
                    name=element.name,
                    **self._logFields(self._peerDomain),
                )
                self.xmlstream.sendStreamError(error.StreamError("internal-server-error"))

        return guarded

    def _logFields(self, domain: str | None, local: str | None = None) -> StreamLogFields:
        """
        @param domain: the remote domain the event is about.
        @param local: our domain it is about, if not the stream's.
        @return: the log fields of an event on this stream.
        """
        fields = self.xmlstream.logFields()
        fields["domain"] = domain
        if local is not None:
            fields["local"] = local
        return fields

    def _requireTLS(self) -> None:
        """
        @raise error.StreamError: if TLS is required and not active.
        """
        if self.service.requireTLS and not self._tls():
            raise error.StreamError("policy-violation", text="STARTTLS is required first")

    def onStartTLS(self, element: domish.Element) -> None:
        """
        Switch the stream to TLS; the peer restarts the stream.
        """
        xs = self.xmlstream
        if self._tls():
            raise error.StreamError("policy-violation", text="TLS is already active")
        xs.send(domish.Element((NS_TLS, "proceed")))
        # What was negotiated in plaintext does not count after TLS.
        self.bidi = self._bidiOffered = False
        ITLSTransport(xs.transport).startTLS(self.service.serverTLSOptions)
        xs.reset()

    def onBidi(self, element: domish.Element) -> None:
        """
        XEP-0288: the peer asks for a bidirectional stream; granted if we
        offered it (the request has no answer). After authentication, or
        unoffered, it is ignored.
        """
        if self._bidiOffered and not self.authenticated and self._saslDomain is None:
            self.bidi = True

    def onAuth(self, element: domish.Element) -> None:
        """
        SASL EXTERNAL: accept the identity our features offered.
        """
        xs = self.xmlstream

        def failure(condition: str) -> None:
            reply = domish.Element((NS_SASL, "failure"))
            reply.addElement(condition)
            xs.send(reply)

        if self.authorized or self._saslDomain is not None:
            raise error.StreamError("policy-violation", text="already authenticated")
        if element.getAttribute("mechanism") != "EXTERNAL" or not self._externalOffered:
            failure("invalid-mechanism")
            return
        content = str(element).strip()
        authzid = self._peerDomain
        if content not in ("", "="):
            try:
                authzid = base64.b64decode(content, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                failure("incorrect-encoding")
                return
        if authzid != self._peerDomain or authzid is None:
            failure("invalid-authzid")
            return
        self._saslDomain = authzid
        xs.send(domish.Element((NS_SASL, "success")))
        xs.reset()

    def onResult(self, element: domish.Element) -> None:
        """
        A dialback request: the peer claims a domain; verify it.
        """
        if element.hasAttribute("type"):
            return
        self._requireTLS()
        originating = validDomain(element.getAttribute("from"))
        receiving = validDomain(element.getAttribute("to"))
        if originating is None or receiving is None:
            raise error.StreamError("improper-addressing")
        if originating in self.service.localDomains:
            raise error.StreamError("invalid-from")
        if receiving not in self.service.localDomains:
            if not self.authenticated:
                raise error.StreamError("host-unknown")
            # XEP-0220 section 2.4: a dialback error, not a stream error,
            # once the stream carries other pairs.
            self._replyError(receiving, originating, "item-not-found")
            return
        if self.allows(originating, receiving):
            # Already authorised (SASL covers every local domain): target
            # multiplexing of a further local domain names the pair, so
            # that our stanzas for its inverse may use a bidirectional
            # stream.
            if (originating, receiving) in self.authorized:
                self._replyResult(receiving, originating, "valid")
            else:
                self._authorize(originating, receiving, self.method or "sasl-external")
            return
        if self.service.requireValidCerts:
            raise error.StreamError(
                "not-authorized", text="dialback is disabled; present a valid certificate"
            )
        key = str(element).strip()
        if self._certificateValidFor(originating):
            # XEP-0344: a certificate valid for the domain proves it.
            self._authorize(originating, receiving, "dialback")
            return
        d = self.service.verifyDialback(receiving, originating, self._streamID, key)

        def verdict(valid: bool) -> None:
            if connectionClosing(self.xmlstream.transport):
                return
            if valid:
                self._authorize(originating, receiving, "dialback")
            else:
                self._log.warn(
                    "dialback for {domain} -> {local} failed: "
                    "the authoritative server says invalid",
                    **self._logFields(originating, receiving),
                )
                self._replyResult(receiving, originating, "invalid")

        def failed(reason: Failure) -> None:
            self._log.warn(
                "dialback for {domain} -> {local} could not be verified: {reason}",
                reason=reason.getErrorMessage(),
                **self._logFields(originating, receiving),
            )
            if not connectionClosing(self.xmlstream.transport):
                self._replyResult(receiving, originating, "invalid")

        d.addCallbacks(verdict, failed)

    def _replyResult(self, receiving: str, originating: str, validity: str) -> None:
        """
        Send a C{db:result} verdict for a domain pair.
        """
        reply = domish.Element((NS_DIALBACK, "result"))
        reply["from"] = receiving
        reply["to"] = originating
        reply["type"] = validity
        self.xmlstream.send(reply)

    def _replyError(self, receiving: str, originating: str, condition: str) -> None:
        """
        Answer a C{db:result} with a dialback error (XEP-0220 section 2.4).
        """
        reply = domish.Element((NS_DIALBACK, "result"))
        reply["from"] = receiving
        reply["to"] = originating
        reply["type"] = "error"
        failure = reply.addElement((NS_SERVER, "error"))
        failure["type"] = "cancel"
        failure.addElement((error.NS_XMPP_STANZAS, condition))
        self.xmlstream.send(reply)

    def _authorize(self, originating: str, receiving: str, method: AuthMethod) -> None:
        """
        Authorise a domain pair; the first one authenticates the stream.
        """
        xs = self.xmlstream
        first = not self.authenticated
        self.authorized.add((originating, receiving))
        self._replyResult(receiving, originating, "valid")
        if first:
            self.method = method
            self.certValid = self._certificateValidFor(originating)
            xs.otherEntity = jid.internJID(originating)
            xs.thisEntity = jid.internJID(receiving)
            xs.dispatch(xs, xmlstream.STREAM_AUTHD_EVENT)
        else:
            self.service.incomingPairAdded(xs, originating, receiving)

    def onVerify(self, element: domish.Element) -> None:
        """
        As the authoritative server, say whether a key is one we issued.
        """
        if element.hasAttribute("type"):
            return
        self._requireTLS()
        self.xmlstream.send(verifyAnswer(self.service, element))

    def onOther(self, element: domish.Element) -> None:
        """
        Anything but negotiation before authentication is refused.
        """
        if element.uri in _AUTH_NAMESPACES or self.authenticated:
            return
        raise error.StreamError("not-authorized", text="authenticate first")
