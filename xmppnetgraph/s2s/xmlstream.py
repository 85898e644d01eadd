# -*- test-case-name: tests.test_xmlstream -*-
"""
The hardened XML stream used for every s2s stream, incoming and outgoing.

Twisted's L{twisted.words.protocols.jabber.xmlstream.XmlStream} trusts its
input more than a federated server may:

  - its expat parser accepts a DOCTYPE before the stream header and expands
    internal entities (a 490-byte "billion laughs" takes about a minute of
    CPU), and silently ignores comments and processing instructions;
  - it has no nesting-depth limit, and its per-stanza byte limit (10 MiB)
    also counts the whitespace between stanzas;
  - on a parse error it drops the connection without sending a stream error;
  - after C{reset()} (STARTTLS, SASL) the old parser keeps parsing the rest
    of the current read, so plaintext sent after C{<starttls/>} in the same
    TCP segment is dispatched as if it had arrived over TLS;
  - it sends no keepalives and has no idle or handshake timeouts;
  - closing waits for the peer: a connection whose peer stopped reading, or
    stalled in the middle of a TLS handshake, stays open for ever after
    C{loseConnection} (Twisted's TLS layer cannot send the stream error
    before its handshake is done, and so never closes).

L{S2SXmlStream} fixes all of this. L{StrictExpatElementStream} is its parser.
"""

from __future__ import annotations

import pyexpat
from collections import Counter
from collections.abc import Callable
from typing import Literal, TypedDict

from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IReactorTime,
    ISSLTransport,
    ITransport,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, jid, xmlstream
from twisted.words.xish import domish
from zope.interface import implementer

from xmppnetgraph.error import S2SError

__all__ = [
    "CLOSE_GRACE",
    "S2SXmlStream",
    "StreamLogFields",
    "StreamTimeout",
    "StrictExpatElementStream",
    "StrictParserError",
    "abortTransport",
    "StreamErrorTally",
]

#: Seconds a connection that we closed (with a stream error, at the idle
#: timeout) may take to send what is buffered and end, before it is dropped.
CLOSE_GRACE = 5.0

_UNDEFINED_ENTITY = pyexpat.errors.codes[pyexpat.errors.XML_ERROR_UNDEFINED_ENTITY]

#: Bytes fed to expat at a time (see L{StrictExpatElementStream.parse}).
_FEED_SIZE = 4096


def abortTransport(transport: ITransport) -> None:
    """
    Drop a connection at once.

    L{ITransport} does not declare C{abortConnection}, but the transports
    of our streams have it (TCP and TLS transports, and Twisted's
    C{StringTransport}); fall back to closing for any other.
    """
    abort: Callable[[], object] | None = getattr(transport, "abortConnection", None)
    if abort is None:
        transport.loseConnection()
    else:
        abort()


class StrictParserError(domish.ParserError, S2SError):
    """
    Input that is well-formed XML but not allowed on an XMPP stream.

    @ivar condition: the stream error condition to answer with
        (C{restricted-xml} or C{policy-violation}).
    @ivar text: a human-readable explanation, sent in the stream error's
        C{<text/>}.
    """

    def __init__(self, condition: str, text: str) -> None:
        """
        @param condition: the stream error condition.
        @param text: why the input was rejected.
        """
        super().__init__(f"{condition}: {text}")
        self.condition = condition
        self.text = text


class StreamTimeout(error.StreamError, S2SError):
    """
    A C{connection-timeout} stream error that this side detected and sent.

    L{S2SXmlStream} dispatches it (wrapped in a L{Failure}) as
    C{STREAM_ERROR_EVENT} when its idle or handshake timeout expires, so
    observers can tell it from an error the peer sent.
    """

    def __init__(self, text: str) -> None:
        """
        @param text: which timeout expired.
        """
        super().__init__("connection-timeout", text)


class _Discarded(S2SError):
    """
    Raised inside a discarded parser's handlers to stop expat at once.
    """


class StreamLogFields(TypedDict):
    """
    The fields by which every log event of the s2s layer names its stream.
    """

    domain: str | None
    """The remote domain, once known."""

    direction: Literal["incoming", "outgoing"]
    """Who opened the stream: the peer (C{incoming}) or we."""

    local: str | None
    """Our domain on the stream, once known."""

    sid: str | None
    """The stream id, once known."""

    address: object
    """The peer's network address (an L{IAddress}), if known."""


def _installed(handler: Callable[..., object] | None) -> Callable[..., object]:
    """
    @param handler: an expat handler that L{domish.ExpatElementStream}
        installs on its parser.
    @return: C{handler}.
    @raise TypeError: if there is none (a Twisted that works differently).
    """
    if handler is None:
        raise TypeError("domish.ExpatElementStream installed no expat handler")
    return handler


class StrictExpatElementStream(domish.ExpatElementStream):
    """
    An expat element stream that enforces RFC 6120 section 11 restrictions
    and our size limits.

      - DOCTYPE (and so every entity declaration), comments, processing
        instructions and references to undefined entities raise
        L{StrictParserError} with C{restricted-xml} as soon as expat sees
        them, before any entity can be declared or expanded.
      - A stanza nested deeper than C{maxDepth} raises C{policy-violation}.
        The stanza element itself is at depth 1, so C{maxDepth} levels pass.
      - A stanza, or the stream header, whose input is larger than
        C{maxStanzaSize} bytes raises C{policy-violation}. Bytes are counted
        with expat's byte positions, from the first byte of the stanza's
        start tag to the last byte of its end tag (for the header: from the
        start of the input to the end of the header's start tag), including
        what expat still buffers for it. Whitespace between stanzas is not
        counted.
      - Malformed XML raises a plain L{domish.ParserError}.

    A stanza's end (or the header's) is only known exactly at the next
    event at the root level, or when expat has consumed the current read.
    So C{DocumentStartEvent} and C{ElementEvent} are called at that point,
    once the size is checked, still within the same L{parse} call and in
    input order: an oversized stanza is never dispatched.

    After L{discard}, the stream never produces another event.

    Between stanzas, L{release} lets go of expat (about 11 KB of parser
    state and buffer per stream, most of an idle stream's XML side); the
    next input gets a new expat, first fed again the input up to the end of
    the stream header (kept for this, at most C{maxStanzaSize} bytes), so
    that it knows the same namespace prefixes, and the header's end tag
    still matches.

    @ivar maxStanzaSize: the largest stanza or stream header, in bytes.
    @ivar maxDepth: the deepest nesting allowed inside one stanza.
    """

    def __init__(self, maxStanzaSize: int, maxDepth: int) -> None:
        """
        @param maxStanzaSize: the largest stanza or stream header, in bytes.
        @param maxDepth: the deepest element nesting inside one stanza.
        """
        self._documentStartTarget: Callable[[domish.Element], object] | None = None
        self._elementTarget: Callable[[domish.Element], object] | None = None
        # A header or stanza whose size is not known yet: (is it the
        # header, element).
        self._pending: tuple[bool, domish.Element] | None = None
        super().__init__()
        self.maxStanzaSize = maxStanzaSize
        self.maxDepth = maxDepth
        # Bytes fed to this parser so far.
        self._received = 0
        # Depth of the current element below the stream root (0: between
        # stanzas).
        self._depth = 0
        # Byte position where the open unit (the header, or the current or
        # just-finished stanza) starts; None when no unit is open.
        self._unitStart: int | None = 0
        self._unitIsHeader = True
        self._discarded = False
        # The input up to the end of the stream header: growing until the
        # header is complete, then kept (as the prelude) for L{release}.
        self._header = bytearray()
        self._prelude: bytes | None = None
        # Feeding the prelude to a new expat: only namespaces count.
        self._replaying = False

        p = self.parser
        # The base class builds elements in the expat handlers it installed
        # on its parser (it has no other hook); keep them, and put ours in
        # front of them.
        self._buildStartElement = _installed(p.StartElementHandler)
        self._buildEndElement = _installed(p.EndElementHandler)
        self._buildCdata = _installed(p.CharacterDataHandler)
        self._buildStartNamespace = _installed(p.StartNamespaceDeclHandler)
        self._buildEndNamespace = _installed(p.EndNamespaceDeclHandler)
        self._installHandlers(p)

    def _installHandlers(self, p: pyexpat.XMLParserType) -> None:
        """
        Install our handlers on the expat parser C{p}.
        """
        p.StartElementHandler = self._checkedStartElement
        p.EndElementHandler = self._checkedEndElement
        p.CharacterDataHandler = self._checkedText
        p.StartNamespaceDeclHandler = self._checkedStartNamespace
        p.EndNamespaceDeclHandler = self._checkedEndNamespace
        p.StartDoctypeDeclHandler = self._forbid("a DOCTYPE")
        p.EntityDeclHandler = self._forbid("an entity declaration")
        p.UnparsedEntityDeclHandler = self._forbid("an entity declaration")
        p.NotationDeclHandler = self._forbid("a notation declaration")
        p.ElementDeclHandler = self._forbid("an element declaration")
        p.AttlistDeclHandler = self._forbid("an attribute list declaration")
        p.CommentHandler = self._forbid("a comment")
        p.ProcessingInstructionHandler = self._forbid("a processing instruction")

    # The base class calls self.DocumentStartEvent(root) and
    # self.ElementEvent(stanza) as soon as expat reports them; the owner sets
    # both attributes. These properties keep what the owner sets and hand the
    # base class a function that holds the element until its size is known.

    @property
    def DocumentStartEvent(self) -> Callable[[domish.Element], None]:
        """
        Called with the stream header's element, once its size is checked.
        """
        return self._holdDocumentStart

    @DocumentStartEvent.setter
    def DocumentStartEvent(self, target: Callable[[domish.Element], object] | None) -> None:
        self._documentStartTarget = target

    @property
    def ElementEvent(self) -> Callable[[domish.Element], None]:
        """
        Called with each stanza, once its size is checked.
        """
        return self._holdElement

    @ElementEvent.setter
    def ElementEvent(self, target: Callable[[domish.Element], object] | None) -> None:
        self._elementTarget = target

    def _holdDocumentStart(self, root: domish.Element) -> None:
        """
        Keep the stream header until its size is known.
        """
        self._pending = (True, root)

    def _holdElement(self, stanza: domish.Element) -> None:
        """
        Keep a complete stanza until its size is known.
        """
        self._pending = (False, stanza)

    def _forbid(self, what: str) -> Callable[..., None]:
        """
        Make an expat handler that rejects a restricted XML construct.

        @param what: the construct, for the error text.
        @return: the handler.
        """

        def handler(*args: object) -> None:
            self._checkDiscarded()
            if self.documentStarted and self._depth == 0:
                # Whatever came before it is still dispatched, in order.
                self._closeUnitInHandler()
            raise StrictParserError("restricted-xml", f"{what} is not allowed in an XMPP stream")

        return handler

    def discard(self) -> None:
        """
        Make sure this parser never produces another event.

        Called when the owning stream resets its parser. If this parser is
        still inside C{parse} (the reset happened in an observer), the next
        handler call raises and expat stops; the rest of the input is dropped.
        It also lets go of the owner and of expat (whose handlers point back
        here), so that neither waits for the garbage collector.
        """
        self._discarded = True
        self._pending = None
        self._documentStartTarget = None
        self._elementTarget = None
        self.DocumentEndEvent = None
        # A running Parse call holds expat itself until it returns.
        self.parser = None  # type: ignore[assignment]

    def _checkDiscarded(self) -> None:
        """
        @raise _Discarded: if L{discard} has been called.
        """
        if self._discarded:
            raise _Discarded()

    def parse(self, buffer: bytes) -> None:
        """
        Feed input to the parser.

        @param buffer: the input.
        @raise StrictParserError: for restricted or oversized input.
        @raise domish.ParserError: for malformed input.
        """
        # expat copies all it is given into its own buffer, which never
        # shrinks: fed a 256 KB read, a parser would keep 256 KB for the
        # rest of the stream. Fed in slices, it keeps a slice plus the token
        # it is in (bench/stream_memory.py measures it).
        for start in range(0, len(buffer), _FEED_SIZE):
            if self._discarded:
                return
            self._parseSlice(buffer[start : start + _FEED_SIZE])

    def release(self) -> bool:
        """
        Let go of expat between stanzas, once the stream header is in and
        all input is consumed (no partial token held); the next L{parse}
        makes a new one. Not to be called from within L{parse}.

        @return: whether expat was let go of now.
        """
        if (
            self._discarded
            or self.parser is None
            or self._prelude is None
            or self._depth != 0
            or self._pending is not None
            or self._received != self._position()
        ):
            return False
        self.parser = None  # type: ignore[assignment]
        return True

    def _revive(self, prelude: bytes) -> None:
        """
        Make a new expat after L{release}, and feed it the prelude: it
        declares the header's namespaces again and opens its root (whose
        element is not built again).
        """
        parser = pyexpat.ParserCreate("UTF-8", " ")
        self._installHandlers(parser)
        self.parser = parser
        self.defaultNsStack = [""]
        self._received = len(prelude)
        self._unitStart = None
        self._replaying = True
        try:
            parser.Parse(prelude)
        finally:
            self._replaying = False
        self.localPrefixes = {}

    def _parseSlice(self, buffer: bytes) -> None:
        """
        Feed one slice of a read to expat, then check and dispatch.
        """
        if self.parser is None and self._prelude is not None:
            if not buffer.strip(b" \t\r\n"):
                # Whitespace between stanzas (a keepalive): nothing to parse.
                return
            self._revive(self._prelude)
        elif self._prelude is None:
            self._header += buffer
        self._received += len(buffer)
        try:
            self.parser.Parse(buffer)
        except _Discarded:
            return
        except pyexpat.ExpatError as e:
            if not self._discarded and self.documentStarted and self._depth == 0:
                # A stanza completed before the bad input is still
                # dispatched, in order; its observers may reset the stream.
                self._closeUnit(self.parser.ErrorByteIndex)
            if self._discarded:
                # The rest of a read that arrived before a reset: not ours.
                return
            if e.code == _UNDEFINED_ENTITY:
                raise StrictParserError(
                    "restricted-xml",
                    "only the predefined entities may be referenced",
                ) from e
            raise domish.ParserError(str(e)) from e
        if self._discarded:
            return
        self._checkAfterParse()

    def _position(self) -> int:
        """
        @return: expat's current byte position in this parser's input: in a
            handler, where the event starts; after C{Parse}, how far expat
            has consumed the input.
        """
        return max(self.parser.CurrentByteIndex, 0)

    def _tooBig(self) -> StrictParserError:
        """
        @return: the error for an oversized unit.
        """
        what = "stream header" if self._unitIsHeader else "stanza"
        return StrictParserError(
            "policy-violation", f"{what} larger than {self.maxStanzaSize} bytes"
        )

    def _checkOpenUnit(self, end: int) -> None:
        """
        Check the size of the open unit so far.

        @param end: the byte position reached.
        @raise StrictParserError: if the unit is already too big.
        """
        if self._unitStart is not None and end - self._unitStart > self.maxStanzaSize:
            raise self._tooBig()

    def _closeUnit(self, end: int) -> None:
        """
        Close the open unit, if any, at byte position C{end}, then dispatch
        the element it held.

        @param end: where the unit ends.
        @raise StrictParserError: if the unit is too big.
        """
        self._checkOpenUnit(end)
        self._unitStart = None
        self._unitIsHeader = False
        pending, self._pending = self._pending, None
        if pending is not None and pending[0]:
            self._prelude = bytes(self._header[:end])
            self._header = bytearray()
        if pending is not None:
            isHeader, element = pending
            target = self._documentStartTarget if isHeader else self._elementTarget
            if target is not None:
                target(element)

    def _closeUnitInHandler(self) -> None:
        """
        Close the open unit where the current event starts, and stop if an
        observer reset the stream meanwhile.

        @raise StrictParserError: if the unit is too big.
        @raise _Discarded: if the stream was reset.
        """
        self._closeUnit(self._position())
        self._checkDiscarded()

    def _checkAfterParse(self) -> None:
        """
        Check sizes, and dispatch, once expat has consumed what it can of a
        read.

        @raise StrictParserError: if a unit, or a partial token expat holds
            between stanzas, is too big.
        """
        if self.documentStarted and self._depth == 0:
            consumed = self._position()
            self._closeUnit(consumed)
            if self._discarded:
                return
            if self._received - consumed > self.maxStanzaSize:
                raise self._tooBig()
        else:
            # Before the end of the header, or inside a stanza: everything
            # received since the unit started belongs to it.
            self._checkOpenUnit(self._received)

    def _checkedStartElement(self, name: str, attrs: dict[str, str]) -> None:
        """
        Enforce depth, element count and size, then build the element.
        """
        self._checkDiscarded()
        if self._replaying:
            return
        if self.documentStarted:
            if self._depth == 0:
                self._closeUnitInHandler()
                self._unitStart = self._position()
            else:
                self._checkOpenUnit(self._position())
            if self._depth >= self.maxDepth:
                raise StrictParserError(
                    "policy-violation",
                    f"elements nested more than {self.maxDepth} deep in a stanza",
                )
            if self.elementCount >= self.maxElementCount:
                raise StrictParserError(
                    "policy-violation",
                    f"more than {self.maxElementCount} elements in a stanza",
                )
            self._depth += 1
        self._buildStartElement(name, attrs)

    def _checkedEndElement(self, name: str) -> None:
        """
        Track depth, then close the element.
        """
        self._checkDiscarded()
        if self._replaying:
            return
        if self._depth > 0:
            self._checkOpenUnit(self._position())
            self._depth -= 1
        else:
            # The end of the stream.
            self._closeUnitInHandler()
        self._buildEndElement(name)

    def _checkedText(self, data: str) -> None:
        """
        Check the stanza size, then add the text.
        """
        self._checkDiscarded()
        if self._replaying:
            return
        if self.documentStarted:
            if self._depth == 0:
                self._closeUnitInHandler()
            else:
                self._checkOpenUnit(self._position())
        self._buildCdata(data)

    def _checkedStartNamespace(self, prefix: str | None, uri: str) -> None:
        """
        Record a namespace declaration unless discarded.
        """
        self._checkDiscarded()
        self._buildStartNamespace(prefix, uri)

    def _checkedEndNamespace(self, prefix: str | None) -> None:
        """
        Drop a namespace declaration unless discarded.
        """
        self._checkDiscarded()
        self._buildEndNamespace(prefix)


#: The stream error conditions of RFC 6120 section 4.9.3; a received
#: condition that is not one of these counts as C{"other"} (a peer must not
#: be able to make up label values).
STREAM_ERROR_CONDITIONS: frozenset[str] = frozenset(
    {
        "bad-format",
        "bad-namespace-prefix",
        "conflict",
        "connection-timeout",
        "host-gone",
        "host-unknown",
        "improper-addressing",
        "internal-server-error",
        "invalid-from",
        "invalid-namespace",
        "invalid-xml",
        "not-authorized",
        "not-well-formed",
        "policy-violation",
        "remote-connection-failed",
        "reset",
        "resource-constraint",
        "restricted-xml",
        "see-other-host",
        "system-shutdown",
        "undefined-condition",
        "unsupported-encoding",
        "unsupported-feature",
        "unsupported-stanza-type",
        "unsupported-version",
    }
)


class StreamErrorTally:
    """
    The stream errors of a node's s2s streams, by condition, sent and
    received; every stream of the node counts into the one tally.

    @ivar sent: condition -> how many we sent.
    @ivar received: condition -> how many peers sent us (conditions that
        RFC 6120 does not define count as C{"other"}).
    """

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()

    def countSent(self, condition: str) -> None:
        """
        Count one stream error we sent.
        """
        self.sent[_condition(condition)] += 1

    def countReceived(self, condition: str | None) -> None:
        """
        Count one stream error a peer sent.

        @param condition: its condition element's name, or L{None} if it
            had none.
        """
        self.received[_condition(condition)] += 1


def _condition(condition: str | None) -> str:
    """
    @return: C{condition} if RFC 6120 defines it, else C{"other"}.
    """
    if condition is not None and condition in STREAM_ERROR_CONDITIONS:
        return condition
    return "other"


@implementer(IHandshakeListener)
class S2SXmlStream(xmlstream.XmlStream):
    """
    An XMPP stream with a strict parser, stream errors that are actually
    sent, a STARTTLS/SASL injection guard, liveness timers, and closes that
    end within L{CLOSE_GRACE} seconds.

    Every rejection (restricted XML, size or depth limit, malformed XML,
    timeout) is logged once, answered with a stream error sent before the
    connection is closed, and dispatched as C{STREAM_ERROR_EVENT} with a
    L{Failure}: a L{domish.ParserError} (L{StrictParserError} for
    C{restricted-xml}/C{policy-violation}) for parser errors, as Twisted
    does, or a L{StreamTimeout}. Input arriving after that is ignored.

    @ivar bytesIn: bytes received.
    @ivar bytesOut: bytes sent.
    @ivar lastReceived: clock time of the last read.
    @ivar lastSent: clock time of the last write.
    @ivar lastStanza: clock time of the last element received or sent
        (whitespace keepalives do not count); the idle timeout runs from it.
    @ivar maxStanzaSize: the largest stanza or stream header accepted, in
        bytes.
    @ivar maxDepth: the deepest element nesting accepted inside a stanza.
    @ivar errors: where this stream's stream errors are counted (shared by
        the streams of one node).
    """

    _log = Logger()

    # Twisted's XmlStream sets these to None in its class body, which mypy
    # reads as the type None; they hold the stream's JIDs and id once known.
    thisEntity: jid.JID | None = None  # type: ignore[assignment]
    otherEntity: jid.JID | None = None  # type: ignore[assignment]
    sid: str | None = None  # type: ignore[assignment]

    def __init__(
        self,
        authenticator: xmlstream.Authenticator,
        *,
        maxStanzaSize: int = 256 * 1024,
        maxDepth: int = 64,
        clock: IReactorTime | None = None,
        errors: StreamErrorTally | None = None,
    ) -> None:
        """
        @param authenticator: the stream's authenticator.
        @param maxStanzaSize: the largest stanza or stream header accepted,
            in bytes.
        @param maxDepth: the deepest element nesting accepted inside a
            stanza (the stanza element is at depth 1).
        @param clock: the clock for timers; the global reactor if L{None}.
        @param errors: where the stream errors sent and received are
            counted (a new tally of its own if L{None}).
        """
        self._clock = clock
        self.errors = StreamErrorTally() if errors is None else errors
        self.maxStanzaSize = maxStanzaSize
        self.maxDepth = maxDepth
        self.bytesIn = 0
        self.bytesOut = 0
        self._failed = False
        self._footerSent = False
        self._connectionLost = False
        self._authenticated = False
        self._keepaliveInterval = 0.0
        self._idleTimeout = 0.0
        self._keepaliveCall: IDelayedCall | None = None
        self._idleCall: IDelayedCall | None = None
        self._handshakeCall: IDelayedCall | None = None
        self._dropCall: IDelayedCall | None = None
        self._tlsHandshakeDone = False
        super().__init__(authenticator)
        now = self._getClock().seconds()
        self.lastReceived = now
        self.lastSent = now
        self.lastStanza = now
        self.addObserver(xmlstream.STREAM_AUTHD_EVENT, self._onAuthenticated)

    # -- clock ------------------------------------------------------------

    def _getClock(self) -> IReactorTime:
        """
        @return: the injected clock, or the global reactor.
        """
        if self._clock is None:
            from twisted.internet import reactor

            self._clock = reactor
        return self._clock

    def _callLater(
        self, delay: float, f: Callable[..., object], *args: object, **kwargs: object
    ) -> IDelayedCall:
        """
        Put Twisted's IQ timeouts on our clock.

        The one private Twisted name in this module: C{IQ.send} in
        L{twisted.words.protocols.jabber.xmlstream} schedules its timeout
        with C{xmlstream._callLater} (the global reactor), and there is no
        public way to give it a clock. Our own timers use L{_getClock}.

        @return: the delayed call.
        """
        return self._getClock().callLater(delay, f, *args, **kwargs)

    # -- parser -----------------------------------------------------------

    def _installParser(self) -> None:
        """
        Replace the parser Twisted just made (at connect and on every reset)
        with a fresh L{StrictExpatElementStream}, before it sees any input.
        """
        parser = StrictExpatElementStream(self.maxStanzaSize, self.maxDepth)
        parser.DocumentStartEvent = self.onDocumentStart
        parser.ElementEvent = self.onElement
        parser.DocumentEndEvent = self.onDocumentEnd
        self.stream = parser

    def reset(self) -> None:
        """
        Reset the parser, discarding what the old one still holds.

        When this is called from an observer (after C{<starttls/>},
        C{<proceed/>}, C{<success/>}), the old parser is still inside
        C{dataReceived}: the rest of that read was sent before the new layer
        started, and is dropped instead of being dispatched.
        """
        old = self.stream
        super().reset()
        self._installParser()
        if isinstance(old, StrictExpatElementStream):
            old.discard()

    def releaseParser(self, quietFor: float) -> bool:
        """
        Let the parser release its expat if nothing was read for
        C{quietFor} seconds and it is between stanzas
        (L{StrictExpatElementStream.release}); the next input revives it.

        @return: whether it did now.
        """
        parser = self.stream
        return (
            isinstance(parser, StrictExpatElementStream)
            and self._getClock().seconds() - self.lastReceived >= quietFor
            and parser.release()
        )

    def dataReceived(self, data: bytes) -> None:
        """
        Parse received data; answer a parse error with a stream error.

        @param data: the bytes read.
        """
        self.bytesIn += len(data)
        self.lastReceived = self._getClock().seconds()
        if self._failed or self.stream is None:
            return
        try:
            if self.rawDataInFn:
                self.rawDataInFn(data)
            self.stream.parse(data)
        except StrictParserError as e:
            self._failStream(e.condition, e.text, Failure())
        except domish.ParserError as e:
            self._failStream("not-well-formed", str(e), Failure())

    # -- output -----------------------------------------------------------

    def send(self, obj: domish.Element | str | bytes) -> None:
        """
        Send data, counting bytes and recording the time.

        @param obj: an element (a direct child of the stream root), or
            serialized XML.
        """
        if domish.IElement.providedBy(obj):
            obj = obj.toXml(
                prefixes=self.prefixes,
                defaultUri=self.namespace,
                prefixesInScope=list(self.prefixes.values()),
            )
        if isinstance(obj, str):
            obj = obj.encode("utf-8")
        self.bytesOut += len(obj)
        self.lastSent = self._getClock().seconds()
        if obj.strip():
            self.lastStanza = self.lastSent
        super().send(obj)

    def onDocumentEnd(self) -> None:
        """
        The peer closed its stream: close ours too, with our closing tag if
        our header went out (RFC 6120 4.4), then the connection (Twisted's
        stream only drops the connection).
        """
        if not self._headerSent:
            self._closeWithinGrace()
            return
        self.close()

    def sendFooter(self) -> None:
        """
        Send the stream footer; no keepalive follows it.

        The idle timeout keeps running: if the peer never closes its side,
        the connection is dropped when it expires (without a stream error,
        since our stream is already closed).
        """
        self._footerSent = True
        self._cancel("_keepaliveCall")
        super().sendFooter()

    # -- failure ----------------------------------------------------------

    def sendStreamError(self, streamError: error.StreamError) -> None:
        """
        Send a stream error and close; nothing the peer sent after the
        offending element (even in the same read) is processed.
        """
        self.errors.countSent(streamError.condition)
        super().sendStreamError(streamError)
        self._failed = True
        self._stopTimers()
        if isinstance(self.stream, StrictExpatElementStream):
            self.stream.discard()
        # Twisted only asks the transport to close; over TLS that waits for
        # the peer's close_notify, which a hostile peer never sends.
        if self.transport is not None and self.tlsHandshakePending():
            abortTransport(self.transport)
        else:
            self._closeWithinGrace()

    def onStreamError(self, errelem: domish.Element) -> None:
        """
        A peer's stream error: count its condition, then close as Twisted
        does, dropping the connection if it has not ended within
        L{CLOSE_GRACE} seconds.
        """
        condition = None
        for child in errelem.elements():
            if child.uri == error.NS_XMPP_STREAMS:
                condition = child.name
                break
        self.errors.countReceived(condition)
        super().onStreamError(errelem)
        self._closeWithinGrace()

    def logFields(self) -> StreamLogFields:
        """
        @return: the log fields that identify this stream.
        """
        try:
            address = self.transport.getPeer() if self.transport is not None else None
        except Exception:
            address = None
        return StreamLogFields(
            domain=self.otherEntity.host if self.otherEntity is not None else None,
            direction="outgoing" if self.initiating else "incoming",
            local=self.thisEntity.host if self.thisEntity is not None else None,
            sid=self.sid,
            address=address,
        )

    def _failStream(self, condition: str, text: str, reason: Failure) -> None:
        """
        Log, send a stream error, close, and tell observers.

        @param condition: the stream error condition.
        @param text: why.
        @param reason: dispatched as C{STREAM_ERROR_EVENT}.
        """
        if self._failed:
            return
        self._failed = True
        self._stopTimers()
        self._log.warn(
            "Closing {direction} s2s stream {sid} with {domain} at {address} "
            "(local {local}): <{condition}/> {text}",
            condition=condition,
            text=text,
            **self.logFields(),
        )
        if self.transport is None:
            pass
        elif self.tlsHandshakePending():
            # Nothing can be sent before the handshake is done.
            abortTransport(self.transport)
        elif self._footerSent:
            self._closeWithinGrace()
        else:
            self.sendStreamError(error.StreamError(condition, text))
        self.dispatch(reason, xmlstream.STREAM_ERROR_EVENT)

    def handshakeCompleted(self) -> None:
        """
        L{IHandshakeListener}: Twisted's TLS layer finished its handshake
        (STARTTLS or direct TLS).
        """
        self._tlsHandshakeDone = True

    def tlsHandshakePending(self) -> bool:
        """
        @return: whether TLS has been started on the connection and its
            handshake is not done yet.
        """
        return ISSLTransport.providedBy(self.transport) and not self._tlsHandshakeDone

    def close(self) -> None:
        """
        Close the stream: send the footer (unless sent), and close the
        connection once what is buffered is sent; drop it if that takes
        more than L{CLOSE_GRACE} seconds, or at once during a TLS
        handshake (when nothing can be sent).
        """
        if self.transport is None or self._connectionLost:
            return
        if self.tlsHandshakePending():
            abortTransport(self.transport)
            return
        if not self._footerSent:
            self.sendFooter()
        self._closeWithinGrace()

    def _closeWithinGrace(self) -> None:
        """
        Close the connection, and drop it if it is still there after
        L{CLOSE_GRACE} seconds (a peer that does not read, or does not
        finish a TLS shutdown).
        """
        if self.transport is not None:
            self.transport.loseConnection()
        if self._dropCall is None and not self._connectionLost:
            self._dropCall = self._getClock().callLater(CLOSE_GRACE, self._drop)

    def _drop(self) -> None:
        """
        The connection did not end within L{CLOSE_GRACE} seconds of our
        close: drop it.
        """
        self._dropCall = None
        if self.transport is not None and not self._connectionLost:
            self._log.info(
                "dropping {direction} s2s connection with {domain} at {address}: not closed "
                "within {seconds:g} s",
                seconds=CLOSE_GRACE,
                **self.logFields(),
            )
            abortTransport(self.transport)

    # -- liveness -----------------------------------------------------------

    def startLiveness(self, keepaliveInterval: float, idleTimeout: float) -> None:
        """
        Start keepalives and the idle timeout (call once authenticated).

        A single space is sent whenever nothing has crossed the stream in
        either direction for C{keepaliveInterval} seconds (bytes the peer
        sends prove the connection alive as well as ours would, so a pair
        of streams between two nodes carries one keepalive per interval,
        not two). When no element has crossed the stream
        in either direction for C{idleTimeout} seconds (keepalives do not
        count), the stream is closed gracefully. Calling this again replaces
        the settings.

        @param keepaliveInterval: seconds of silence before a keepalive.
        @param idleTimeout: seconds without elements before closing.
        @raise ValueError: if either value is not positive.
        """
        if keepaliveInterval <= 0 or idleTimeout <= 0:
            raise ValueError("keepaliveInterval and idleTimeout must be positive")
        self._stopLiveness()
        if self._failed or self._connectionLost:
            return
        self._keepaliveInterval = keepaliveInterval
        self._idleTimeout = idleTimeout
        if not self._footerSent:
            self._armKeepalive()
        self._armIdle()

    def _armKeepalive(self) -> None:
        """
        Schedule the next keepalive check, C{keepaliveInterval} after the
        last read or write.
        """
        basis = max(self.lastSent, self.lastReceived)
        delay = max(0.0, basis + self._keepaliveInterval - self._getClock().seconds())
        self._keepaliveCall = self._getClock().callLater(delay, self._keepaliveDue, basis)

    def _keepaliveDue(self, basis: float) -> None:
        """
        Send a space if nothing was read or written since C{basis}, and
        re-arm.

        @param basis: the later of C{lastSent} and C{lastReceived} when the
            timer was armed.
        """
        self._keepaliveCall = None
        if max(self.lastSent, self.lastReceived) == basis:
            self.send(b" ")
        self._armKeepalive()

    def _armIdle(self) -> None:
        """
        Schedule the next idle check, C{idleTimeout} after the last element.
        """
        basis = self.lastStanza
        delay = max(0.0, basis + self._idleTimeout - self._getClock().seconds())
        self._idleCall = self._getClock().callLater(delay, self._idleDue, basis)

    def _idleDue(self, basis: float) -> None:
        """
        Close the stream if no element crossed it since C{basis}, else
        re-arm.

        @param basis: the value of C{lastStanza} when the timer was armed.
        """
        self._idleCall = None
        if self.lastStanza != basis:
            self._armIdle()
            return
        self._log.info(
            "closing s2s stream idle for {seconds:g} s ({direction}, {domain})",
            seconds=self._idleTimeout,
            **self.logFields(),
        )
        self._stopLiveness()
        self.close()

    def setHandshakeTimeout(self, seconds: float) -> None:
        """
        Close the stream with C{<connection-timeout/>} unless it is
        authenticated (C{STREAM_AUTHD_EVENT}) within C{seconds}.

        Calling this again restarts the timer with the new value. It does
        nothing once the stream is authenticated, failed or disconnected.

        @param seconds: the time allowed for TLS and authentication.
        """
        self._cancel("_handshakeCall")
        if self._authenticated or self._failed or self._connectionLost:
            return
        self._handshakeCall = self._getClock().callLater(seconds, self._handshakeTimedOut, seconds)

    def _handshakeTimedOut(self, seconds: float) -> None:
        """
        The stream was not authenticated in time.

        @param seconds: the time that was allowed.
        """
        self._handshakeCall = None
        text = f"not authenticated within {seconds:g} seconds"
        self._failStream("connection-timeout", text, Failure(StreamTimeout(text)))

    def _onAuthenticated(self, _: object) -> None:
        """
        C{STREAM_AUTHD_EVENT}: cancel the handshake timeout.
        """
        self._authenticated = True
        self._cancel("_handshakeCall")

    def _cancel(self, name: str) -> None:
        """
        Cancel the delayed call stored in attribute C{name}, if pending.

        @param name: the attribute's name.
        """
        call = getattr(self, name)
        setattr(self, name, None)
        if call is not None and call.active():
            call.cancel()

    def _stopLiveness(self) -> None:
        """
        Cancel the keepalive and idle timers.
        """
        self._cancel("_keepaliveCall")
        self._cancel("_idleCall")

    def _stopTimers(self) -> None:
        """
        Cancel every timer.
        """
        self._stopLiveness()
        self._cancel("_handshakeCall")

    def connectionMade(self) -> None:
        """
        Start counting silence from the moment of connection, and install
        our parser.

        Twisted makes its own parser first and tells the observers of
        C{STREAM_CONNECTED_EVENT} (nothing is read meanwhile); ours replaces
        it before the first read.
        """
        now = self._getClock().seconds()
        self.lastReceived = now
        self.lastSent = now
        self.lastStanza = now
        super().connectionMade()
        if not self._connectionLost:
            self._installParser()

    def onElement(self, element: domish.Element) -> None:
        """
        Note the time of a received element, then dispatch it.
        """
        self.lastStanza = self._getClock().seconds()
        super().onElement(element)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Stop all timers, then dispatch C{STREAM_END_EVENT}.

        @param reason: why the connection was lost.
        """
        self._connectionLost = True
        self._stopTimers()
        self._cancel("_dropCall")
        if isinstance(self.stream, StrictExpatElementStream):
            self.stream.discard()
        super().connectionLost(reason)
        # Break the stream's reference cycles (observers bound to it, its
        # authenticator, initializers and factory pointing back), so that reference
        # counting frees it, its parser and its TLS connection now, not at
        # the next full collection: under twistd's collector settings that
        # can be minutes away, and 1,000 closed streams kept 79 MB
        # (bench/s2s_storm.py).
        self._eventObservers = {}
        self._xpathObservers = {}
        self.initializers = []
        self.authenticator = None
        self.factory = None
