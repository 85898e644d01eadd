# -*- test-case-name: tests.test_federation,tests.test_s2s_receive -*-
"""
Initiating-side authentication of an s2s stream after TLS: SASL EXTERNAL
(XEP-0178) when the receiving server offers it, dialback (XEP-0220)
otherwise; and the request for a bidirectional stream (XEP-0288).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from hashlib import sha256

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, ijabber, jid, sasl, xmlstream
from twisted.words.protocols.jabber.sasl_mechanisms import ISASLMechanism
from twisted.words.xish import domish
from zope.interface import implementer

# Raised here; defined with the other errors (and importable from here).
from xmppnetgraph.error import DialbackFailed as DialbackFailed
from xmppnetgraph.model import AuthMethod
from xmppnetgraph.names import domainToASCII
from xmppnetgraph.s2s.xmlstream import S2SXmlStream

NS_DIALBACK = "jabber:server:dialback"
NS_DIALBACK_FEATURE = "urn:xmpp:features:dialback"
#: XEP-0288: the stream feature a receiving server offers, and the element
#: the initiating server answers it with.
NS_BIDI_FEATURE = "urn:xmpp:features:bidi"
NS_BIDI = "urn:xmpp:bidi"
NS_SASL = sasl.NS_XMPP_SASL
NS_TLS = xmlstream.NS_XMPP_TLS


def dialbackKey(secret: str, receiving: str, originating: str, streamID: str) -> str:
    """
    The XEP-0185 dialback key, on the A-label forms of the domains so that
    internationalised names work too (a name that cannot be encoded is used
    as it is).
    """
    hashedSecret = sha256(secret.encode("utf-8")).hexdigest().encode("ascii")
    domains = []
    for domain in (receiving, originating):
        try:
            domains.append(domainToASCII(domain))
        except ValueError:
            domains.append(domain)
    message = " ".join([*domains, streamID])
    return hmac.new(hashedSecret, message.encode("utf-8"), sha256).hexdigest()


def _verdict(result: domish.Element) -> str:
    """
    @return: a C{db:result} answer that is not C{valid}, in words: its type,
        and the condition of a dialback error.
    """
    verdict = repr(result.getAttribute("type"))
    for child in result.elements():
        if child.name == "error":
            for condition in child.elements(error.NS_XMPP_STANZAS):
                return f"{verdict} ({condition.name})"
    return verdict


def offersDialbackErrors(features: domish.Element) -> bool:
    """
    @return: whether stream C{features} announce dialback with error
        handling (XEP-0220 section 2.4), which target multiplexing needs.
    """
    for feature in features.elements(NS_DIALBACK_FEATURE, "dialback"):
        return any(True for _ in feature.elements(NS_DIALBACK_FEATURE, "errors"))
    return False


def keysEqual(a: str, b: str) -> bool:
    """
    Compare two dialback keys in constant time.
    """
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@implementer(ijabber.IInitiatingInitializer)
class OriginatingDialback:
    """
    Ask the receiving server to accept stanzas from C{thisHost} to
    C{otherHost} by dialback: to authenticate the stream, or (with
    C{authenticates} false) to add that domain pair to a stream already
    authenticated (XEP-0220 target multiplexing).
    """

    def __init__(
        self,
        xs: S2SXmlStream,
        thisHost: str,
        otherHost: str,
        secret: str,
        *,
        authenticates: bool = True,
    ) -> None:
        self.xmlstream = xs
        self.thisHost = thisHost
        self.otherHost = otherHost
        self.secret = secret
        self.authenticates = authenticates

    def initialize(self) -> defer.Deferred[None]:
        """
        Send C{db:result} and wait for the verdict: the Deferred fires on
        C{valid}, and fails with L{DialbackFailed} on C{invalid} or a
        dialback error. Cancelling it stops the wait.
        """
        query = f"/result[@xmlns='{NS_DIALBACK}']"

        def onResult(result: domish.Element) -> None:
            if (
                result.getAttribute("from") != self.otherHost
                or result.getAttribute("to") != self.thisHost
                or not result.hasAttribute("type")
                or d.called
            ):
                return
            if result.getAttribute("type") == "valid":
                if self.authenticates:
                    self.xmlstream.otherEntity = jid.internJID(self.otherHost)
                d.callback(None)
            else:
                d.errback(DialbackFailed(f"{self.otherHost} answered {_verdict(result)}"))

        def stopObserving(result: object) -> object:
            self.xmlstream.removeObserver(query, onResult)
            return result

        d: defer.Deferred[None] = defer.Deferred()
        self.xmlstream.addObserver(query, onResult)
        d.addBoth(stopObserving)
        result = domish.Element((NS_DIALBACK, "result"))
        result["from"] = self.thisHost
        result["to"] = self.otherHost
        result.addContent(
            dialbackKey(self.secret, self.otherHost, self.thisHost, self.xmlstream.sid or "")
        )
        self.xmlstream.send(result)
        return d


@implementer(ijabber.IInitiatingInitializer)
class VerifyDialback:
    """
    As receiving server, ask the authoritative server whether a key it
    allegedly issued on stream C{streamID} is genuine: as the last
    initializer of a connection opened for it, or on a stream of ours to
    that server that is already up (L{initialize} sends the request at once).

    @ivar valid: fires with the answer.
    """

    def __init__(
        self, xs: S2SXmlStream, thisHost: str, otherHost: str, streamID: str, key: str
    ) -> None:
        self.xmlstream = xs
        self.thisHost = thisHost
        self.otherHost = otherHost
        self.streamID = streamID
        self.key = key
        self.valid: defer.Deferred[bool] = defer.Deferred()

    def initialize(self) -> defer.Deferred[None]:
        """
        Send C{db:verify}; L{valid} fires with the answer. The observer of
        the answer goes once L{valid} has fired (or was cancelled).
        """
        query = f"/verify[@xmlns='{NS_DIALBACK}']"

        def onVerify(verify: domish.Element) -> None:
            if (
                verify.getAttribute("id") != self.streamID
                or verify.getAttribute("from") != self.otherHost
                or verify.getAttribute("to") != self.thisHost
                or not verify.hasAttribute("type")
            ):
                return
            if not self.valid.called:
                self.valid.callback(verify.getAttribute("type") == "valid")

        def stopObserving(result: object) -> object:
            self.xmlstream.removeObserver(query, onVerify)
            return result

        self.xmlstream.addObserver(query, onVerify)
        self.valid.addBoth(stopObserving)
        verify = domish.Element((NS_DIALBACK, "verify"))
        verify["from"] = self.thisHost
        verify["to"] = self.otherHost
        verify["id"] = self.streamID
        verify.addContent(self.key)
        self.xmlstream.send(verify)
        return defer.succeed(None)


@implementer(ISASLMechanism)
class External:
    """
    The SASL EXTERNAL mechanism: the identity is our TLS certificate.
    """

    name = "EXTERNAL"

    def getInitialResponse(self) -> bytes:
        """
        An empty response: authorise as the identity of our certificate.
        """
        return b""

    def getResponse(self, challenge: bytes) -> bytes:
        """
        EXTERNAL has no challenges; answer empty.
        """
        return b""


class SASLExternal(sasl.SASLInitiatingInitializer):
    """
    SASL EXTERNAL for s2s (XEP-0178).
    """

    def setMechanism(self) -> None:
        """
        Use EXTERNAL, which the receiving server must have offered.
        """
        if "EXTERNAL" not in sasl.get_mechanisms(self.xmlstream):
            raise sasl.SASLNoAcceptableMechanism()
        # mypy infers the attribute's type from the base class's first
        # assignment (DigestMD5); any ISASLMechanism is what it takes.
        self.mechanism = External()  # type: ignore[assignment]


@implementer(ijabber.IInitiatingInitializer)
class RequestBidi:
    """
    XEP-0288: when the receiving server offers bidirectional streams, ask
    for one before authenticating (it may then send its own stanzas to us
    over this stream instead of opening one of its own).

    @ivar requested: whether C{<bidi/>} was sent.
    """

    def __init__(self, xs: S2SXmlStream) -> None:
        self.xmlstream = xs
        self.requested = False

    def initialize(self) -> None:
        """
        Send C{<bidi xmlns='urn:xmpp:bidi'/>} if the features offer it.
        """
        if (NS_BIDI_FEATURE, "bidi") in self.xmlstream.features:
            self.xmlstream.send(domish.Element((NS_BIDI, "bidi")))
            self.requested = True


def offersExternal(xs: S2SXmlStream) -> bool:
    """
    @return: whether the receiving server's features offer SASL EXTERNAL.
    """
    return (NS_SASL, "mechanisms") in xs.features and "EXTERNAL" in sasl.get_mechanisms(xs)


@implementer(ijabber.IInitiatingInitializer)
class Authenticate:
    """
    Authenticate an outgoing stream: SASL EXTERNAL when offered and our
    certificate is worth trying, dialback otherwise (unless forbidden).

    @ivar method: C{"sasl-external"} or C{"dialback"} once decided.
    """

    _log = Logger()

    def __init__(
        self,
        xs: S2SXmlStream,
        thisHost: str,
        otherHost: str,
        secret: str,
        *,
        allowDialback: bool,
        dialbackStarted: Callable[[S2SXmlStream], object] | None = None,
    ) -> None:
        """
        @param dialbackStarted: called with the stream when dialback starts
            on it (TLS is up, the receiving server's features are in): from
            then on it may carry dialback verification requests too.
        """
        self.xmlstream = xs
        self.thisHost = thisHost
        self.otherHost = otherHost
        self.secret = secret
        self.allowDialback = allowDialback
        self.dialbackStarted = dialbackStarted
        self.method: AuthMethod | None = None

    def initialize(self) -> defer.Deferred[None]:
        """
        Pick a method and run it.

        @return: a Deferred that fires once the stream is authenticated.
        """
        if offersExternal(self.xmlstream):
            self.method = "sasl-external"
            d: defer.Deferred[None] = defer.maybeDeferred(
                SASLExternal(self.xmlstream, required=True).start
            )
            if self.allowDialback:
                d.addErrback(self._externalFailed)
            return d
        if not self.allowDialback:
            return defer.fail(
                DialbackFailed(
                    f"{self.otherHost} does not offer SASL EXTERNAL and dialback is disabled"
                )
            )
        return self._dialback()

    def _externalFailed(self, reason: Failure) -> defer.Deferred[None]:
        """
        SASL EXTERNAL was refused: log why, and try dialback.
        """
        self._log.info(
            "SASL EXTERNAL from {local} to {domain} failed ({reason}); trying dialback",
            local=self.thisHost,
            domain=self.otherHost,
            direction="outgoing",
            reason=reason.getErrorMessage(),
        )
        return self._dialback()

    def _dialback(self) -> defer.Deferred[None]:
        """
        Authenticate by dialback.
        """
        self.method = "dialback"
        if self.dialbackStarted is not None:
            self.dialbackStarted(self.xmlstream)
        return OriginatingDialback(
            self.xmlstream, self.thisHost, self.otherHost, self.secret
        ).initialize()
