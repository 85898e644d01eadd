# -*- test-case-name: tests.test_xmlstream -*-
"""
Tests for L{xmppnetgraph.s2s.xmlstream}.
"""

from __future__ import annotations

import gc
import pyexpat
import time
import tracemalloc

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import Logger, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.xish import domish
from zope.interface import directlyProvides

from xmppnetgraph.s2s.xmlstream import (
    CLOSE_GRACE,
    S2SXmlStream,
    StreamTimeout,
    StrictExpatElementStream,
    StrictParserError,
)

_log = Logger()

NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_DIALBACK = "jabber:server:dialback"

HEADER = (
    b"<stream:stream xmlns='jabber:server' "
    b"xmlns:stream='http://etherx.jabber.org/streams' "
    b"xmlns:db='jabber:server:dialback' "
    b"from='a.test' to='b.test' version='1.0'>"
)

# 490 bytes that expand to 3,000,000 characters ("lol" * 10**6): the
# billion-laughs input of the Wokkel-on-Twisted notes, section 5 (57 s of CPU
# in a plain XmlStream).
BILLION_LAUGHS = (
    b"<?xml version='1.0'?>\n"
    b"<!DOCTYPE s[\n"
    b'<!ENTITY l0 "lol">\n'
    b'<!ENTITY l1 "&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;">\n'
    b'<!ENTITY l2 "&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;">\n'
    b'<!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;">\n'
    b'<!ENTITY l4 "&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;">\n'
    b'<!ENTITY l5 "&l4;&l4;&l4;&l4;&l4;&l4;&l4;&l4;&l4;&l4;">\n'
    b'<!ENTITY l6 "&l5;&l5;&l5;&l5;&l5;&l5;&l5;&l5;&l5;&l5;">\n'
    b"]><stream:stream xmlns='jabber:server' "
    b"xmlns:stream='http://etherx.jabber.org/streams'><iq>&l6;</iq>"
)

PEER = IPv4Address("TCP", "127.0.0.2", 45678)


def _stanzaOfSize(size: int) -> bytes:
    """
    @param size: the wanted length in bytes.
    @return: a C{<message/>} stanza of exactly C{size} bytes.
    """
    head = b"<message from='a.test' to='b.test'><body>"
    tail = b"</body></message>"
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _nested(depth: int) -> bytes:
    """
    @param depth: how many elements deep, counting the stanza itself.
    @return: a C{<message/>} stanza nested C{depth} elements deep.
    """
    return b"<message>" + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + b"</message>"


def _parseOutput(data: bytes) -> tuple[list[domish.Element], list[domish.Element]]:
    """
    Parse what a stream sent with a plain Twisted parser.

    @param data: the transport's output.
    @return: the stream headers and the top-level elements.
    """
    headers: list[domish.Element] = []
    elements: list[domish.Element] = []
    parser = domish.elementStream()
    parser.DocumentStartEvent = headers.append
    parser.ElementEvent = elements.append
    parser.DocumentEndEvent = lambda: None
    parser.parse(data)
    return headers, elements


def _streamErrors(data: bytes) -> list[error.StreamError]:
    """
    @param data: the transport's output.
    @return: the stream errors in it.
    """
    return [
        error.exceptionFromStreamError(e)
        for e in _parseOutput(data)[1]
        if (e.uri, e.name) == (xmlstream.NS_STREAMS, "error")
    ]


class _ConnectAuthenticator(xmlstream.ConnectAuthenticator):
    """
    An initiating authenticator for jabber:server streams.
    """

    namespace = "jabber:server"


class _StreamTestMixin:
    """
    Build an incoming L{S2SXmlStream} on a L{StringTransport} with a
    L{task.Clock}, and record what it dispatches.
    """

    def setUp(self) -> None:
        """
        Connect a receiving stream.
        """
        self.clock = task.Clock()
        self.xs, self.transport = self.connect()

    def connect(
        self,
        authenticator: xmlstream.Authenticator | None = None,
        **kwargs: object,
    ) -> tuple[S2SXmlStream, StringTransport]:
        """
        @param authenticator: defaults to a L{xmlstream.ListenAuthenticator}.
        @param kwargs: passed to L{S2SXmlStream}.
        @return: the connected stream and its transport.
        """
        if authenticator is None:
            authenticator = xmlstream.ListenAuthenticator()
        xs = S2SXmlStream(authenticator, clock=self.clock, **kwargs)  # type: ignore[arg-type]
        self.starts: list[object] = []
        self.stanzas: list[domish.Element] = []
        self.errorEvents: list[Failure] = []
        xs.addObserver(xmlstream.STREAM_START_EVENT, self.starts.append)
        xs.addObserver("/*", self.stanzas.append)
        xs.addObserver(xmlstream.STREAM_ERROR_EVENT, self.errorEvents.append)
        transport = StringTransport(peerAddress=PEER)
        xs.makeConnection(transport)
        return xs, transport

    def assertStreamError(self, condition: str) -> error.StreamError:
        """
        Assert that exactly one stream error with C{condition} was sent,
        that the connection is being closed, and that observers were told.

        @param condition: the expected condition.
        @return: the stream error that was sent.
        """
        sent = _streamErrors(self.transport.value())
        self.assertEqual([e.condition for e in sent], [condition])  # type: ignore[attr-defined]
        self.assertTrue(self.transport.value().endswith(b"</stream:stream>"))  # type: ignore[attr-defined]
        self.assertTrue(self.transport.disconnecting)  # type: ignore[attr-defined]
        self.assertEqual(len(self.errorEvents), 1)  # type: ignore[attr-defined]
        return sent[0]

    def assertAlive(self) -> None:
        """
        Assert that no stream error was sent and the connection is open.
        """
        self.assertEqual(_streamErrors(self.transport.value()), [])  # type: ignore[attr-defined]
        self.assertFalse(self.transport.disconnecting)  # type: ignore[attr-defined]
        self.assertEqual(self.errorEvents, [])  # type: ignore[attr-defined]


class NormalTrafficTests(_StreamTestMixin, SynchronousTestCase):
    """
    Legitimate input passes the strict parser.
    """

    def test_stanzasWithWhitespace(self) -> None:
        """
        Stanzas separated by whitespace, in one read or split across reads,
        are all dispatched, predefined entities included.
        """
        self.xs.dataReceived(HEADER)
        self.xs.dataReceived(b"\n  <message to='b.test'><body>a &amp; b</body></message>\r\n")
        self.xs.dataReceived(b" <iq type='get' id='1'/> \n <presence/>")
        self.xs.dataReceived(b"<iq type='get' ")
        self.xs.dataReceived(b"id='2'/>   ")
        self.assertAlive()
        self.assertEqual(len(self.starts), 1)
        self.assertEqual([e.name for e in self.stanzas], ["message", "iq", "presence", "iq"])
        self.assertEqual(str(self.stanzas[0].body), "a & b")

    def test_whitespaceKeepalivesForHours(self) -> None:
        """
        Whitespace keepalives never add up toward the stanza size limit,
        neither over many reads nor in one read bigger than the limit.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=200)
        self.xs.dataReceived(HEADER)
        for _ in range(10 * 60):
            self.clock.advance(60)
            self.xs.dataReceived(b" ")
        self.xs.dataReceived(b"\n" * 1000)
        self.xs.dataReceived(_stanzaOfSize(200))
        self.xs.dataReceived(b" " * 1000)
        self.xs.dataReceived(_stanzaOfSize(200))
        self.assertAlive()
        self.assertEqual(len(self.stanzas), 2)

    def test_largeAllowedStanza(self) -> None:
        """
        A stanza of exactly C{maxStanzaSize} bytes (default 256 KiB), sent in
        4 KiB reads, is dispatched intact.
        """
        stanza = _stanzaOfSize(256 * 1024)
        self.xs.dataReceived(HEADER + b" ")
        for i in range(0, len(stanza), 4096):
            self.xs.dataReceived(stanza[i : i + 4096])
        self.assertAlive()
        self.assertEqual(len(self.stanzas), 1)
        self.assertEqual(str(self.stanzas[0].body), "x" * stanza.count(b"x"))

    def test_largeReadNotKept(self) -> None:
        """
        A 256 KiB stanza in one read is dispatched whole, and the parser does
        not keep a buffer of that size afterwards (expat's buffer never
        shrinks; the stream feeds it in slices). pyexpat allocates through
        Python's allocator, so tracemalloc sees expat's buffer.
        """
        stanza = _stanzaOfSize(256 * 1024)
        self.xs.dataReceived(HEADER + b" ")
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        self.xs.dataReceived(stanza)
        self.assertEqual(len(self.stanzas), 1)
        del self.stanzas[:]
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
        self.assertAlive()
        self.assertLess(kept, 64 * 1024)

    def test_manySmallStanzas(self) -> None:
        """
        Many small stanzas that together exceed C{maxStanzaSize} all pass,
        whether they come in one read or in reads that cut through them.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        stanzas = b"".join(_stanzaOfSize(300) + b"\n" for _ in range(100))
        self.xs.dataReceived(HEADER)
        self.xs.dataReceived(stanzas)
        for i in range(0, len(stanzas), 700):
            self.xs.dataReceived(stanzas[i : i + 700])
        self.assertAlive()
        self.assertEqual(len(self.stanzas), 200)

    def test_depthAtLimit(self) -> None:
        """
        A stanza nested exactly C{maxDepth} deep (the stanza element
        counting as 1) passes.
        """
        self.xs.dataReceived(HEADER + _nested(64))
        self.assertAlive()
        self.assertEqual(len(self.stanzas), 1)

    def test_counters(self) -> None:
        """
        C{bytesIn}, C{bytesOut}, C{lastReceived} and C{lastSent} follow the
        traffic.
        """
        self.clock.advance(5)
        self.xs.dataReceived(HEADER)
        self.xs.dataReceived(b"<presence/>")
        self.assertEqual(self.xs.bytesIn, len(HEADER) + len(b"<presence/>"))
        self.assertEqual(self.xs.lastReceived, 5)
        self.clock.advance(5)
        self.xs.sendHeader()
        self.xs.send(domish.Element((None, "presence")))
        self.xs.send("<iq type='get' id='\u00e9'/>")
        self.assertEqual(self.xs.bytesOut, len(self.transport.value()))
        self.assertGreater(self.xs.bytesOut, 0)
        self.assertEqual(self.xs.lastSent, 10)

    def test_iqTimeoutUsesClock(self) -> None:
        """
        Twisted's IQ timeouts run on the injected clock.
        """
        xmlstream.upgradeWithIQResponseTracker(self.xs)
        self.xs.dataReceived(HEADER)
        iq = xmlstream.IQ(self.xs, "get")
        iq.timeout = 5
        d = iq.send()
        self.clock.advance(5)
        self.failureResultOf(d, xmlstream.TimeoutError)


class ParserReleaseTests(_StreamTestMixin, SynchronousTestCase):
    """
    A quiet stream lets go of expat between stanzas and makes a new one
    when input comes, with the header's namespaces.
    """

    def release(self) -> bool:
        """
        Let 10 s pass, then ask the stream to release its parser.
        """
        self.clock.advance(10)
        return self.xs.releaseParser(10)

    def test_releasedThenPrefixesStillKnown(self) -> None:
        """
        Released after the header, the parser's next stanza still resolves
        the header's C{db:} prefix, and so on, stanza after stanza.
        """
        self.xs.dataReceived(HEADER)
        for n in range(3):
            self.assertTrue(self.release())
            self.assertIsNone(self.xs.stream.parser)
            self.xs.dataReceived(f"<db:result from='a.test' to='b.test'>k{n}</db:result>".encode())
            self.assertIsNotNone(self.xs.stream.parser)
        self.assertEqual(
            [(e.uri, e.name, str(e)) for e in self.stanzas],
            [(NS_DIALBACK, "result", f"k{n}") for n in range(3)],
        )
        self.assertEqual(len(self.starts), 1)
        self.assertAlive()

    def test_notWhileQuietForLess(self) -> None:
        """
        Input in the last 10 s keeps the parser.
        """
        self.xs.dataReceived(HEADER)
        self.clock.advance(9)
        self.assertFalse(self.xs.releaseParser(10))
        self.assertIsNotNone(self.xs.stream.parser)

    def test_notInsideAStanza(self) -> None:
        """
        Not inside a stanza, nor with part of a tag held: the rest
        completes it.
        """
        self.xs.dataReceived(HEADER + b"<message from='a.test'><body>hi")
        self.assertFalse(self.release())
        self.xs.dataReceived(b"</body></mess")
        self.assertFalse(self.release())
        self.xs.dataReceived(b"age>")
        self.assertEqual([str(e.body) for e in self.stanzas], ["hi"])
        self.assertTrue(self.release())

    def test_notBeforeTheHeader(self) -> None:
        """
        Not before the stream header is complete.
        """
        self.xs.dataReceived(HEADER[:20])
        self.assertFalse(self.release())

    def test_whitespaceKeepsItReleased(self) -> None:
        """
        A keepalive (whitespace) does not bring expat back.
        """
        self.xs.dataReceived(HEADER)
        self.assertTrue(self.release())
        self.xs.dataReceived(b" \n ")
        self.assertIsNone(self.xs.stream.parser)
        self.assertAlive()

    def test_limitsStillApply(self) -> None:
        """
        After a release, an oversized stanza is still refused.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        self.xs.dataReceived(HEADER)
        self.assertTrue(self.release())
        self.xs.dataReceived(_stanzaOfSize(1001))
        self.assertStreamError("policy-violation")
        self.assertEqual(self.stanzas, [])

    def test_streamEndAfterRelease(self) -> None:
        """
        The peer's C{</stream:stream>} after a release ends the stream
        as usual: the connection is closed.
        """
        self.xs.dataReceived(HEADER)
        self.assertTrue(self.release())
        self.xs.dataReceived(b"</stream:stream>")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(_streamErrors(self.transport.value()), [])

    def test_memory(self) -> None:
        """
        What a released parser keeps is a small part of what it held.
        """

        def held(release: bool) -> int:
            streams = []
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(50):
                xs, _ = self.connect()
                xs.dataReceived(HEADER + b"<message from='a.test' to='b.test'/>")
                if release:
                    self.clock.advance(10)
                    self.assertTrue(xs.releaseParser(10))
                streams.append(xs)
            gc.collect()
            size = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            return size

        kept, released = held(False), held(True)
        self.assertLess(released, kept - 50 * 5000, (kept, released))


class RestrictedXMLTests(_StreamTestMixin, SynchronousTestCase):
    """
    DOCTYPE, entities, comments and processing instructions are answered
    with C{<restricted-xml/>}.
    """

    def test_billionLaughs(self) -> None:
        """
        The 490-byte billion-laughs input is rejected before any entity is
        declared or expanded.
        """
        self.assertEqual(len(BILLION_LAUGHS), 490)
        # The input really is a bomb: plain expat expands it to 3 MB.
        expanded = [0]
        plain = pyexpat.ParserCreate("UTF-8", " ")

        def count(data: str) -> None:
            expanded[0] += len(data)

        plain.CharacterDataHandler = count
        plain.Parse(BILLION_LAUGHS)
        self.assertEqual(expanded[0], 3 * 10**6)

        parser = self.xs.stream
        start = time.perf_counter()
        self.xs.dataReceived(BILLION_LAUGHS)
        elapsed = time.perf_counter() - start
        _log.info("billion laughs rejected in {elapsed:.6f} s", elapsed=elapsed)

        self.assertStreamError("restricted-xml")
        self.assertEqual(self.starts, [])
        self.assertEqual(self.stanzas, [])
        self.assertEqual(parser.documentStarted, 0)
        self.assertIsNone(parser.currElem)
        failure = self.errorEvents[0]
        self.assertIsInstance(failure.value, StrictParserError)
        self.assertIn("DOCTYPE", failure.value.text)

    def test_doctypeAfterHeader(self) -> None:
        """
        A DOCTYPE inside the stream is not well-formed.
        """
        self.xs.dataReceived(HEADER + b"<!DOCTYPE x []>")
        self.assertStreamError("not-well-formed")

    def test_comment(self) -> None:
        """
        A comment between stanzas is restricted XML.
        """
        self.xs.dataReceived(HEADER + b"<presence/><!-- hello -->")
        self.assertStreamError("restricted-xml")

    def test_stanzaBeforeRejectionDispatched(self) -> None:
        """
        A complete stanza that precedes restricted or malformed input in the
        same read is still dispatched, before the stream is closed.
        """
        self.xs.dataReceived(HEADER + b"<presence/> <!-- x -->")
        self.assertStreamError("restricted-xml")
        self.assertEqual([e.name for e in self.stanzas], ["presence"])

    def test_commentInStanza(self) -> None:
        """
        A comment inside a stanza is restricted XML, and the stanza is not
        dispatched.
        """
        self.xs.dataReceived(HEADER + b"<message><!-- x --></message>")
        self.assertStreamError("restricted-xml")
        self.assertEqual(self.stanzas, [])

    def test_commentBeforeHeader(self) -> None:
        """
        A comment before the stream header is restricted XML, and a stream
        header is sent before the error.
        """
        self.xs.dataReceived(b"<!-- hi -->" + HEADER)
        self.assertStreamError("restricted-xml")
        headers, _ = _parseOutput(self.transport.value())
        self.assertEqual(len(headers), 1)

    def test_processingInstruction(self) -> None:
        """
        A processing instruction is restricted XML.
        """
        self.xs.dataReceived(HEADER + b"<?evil stuff?>")
        self.assertStreamError("restricted-xml")

    def test_undefinedEntity(self) -> None:
        """
        A reference to an entity other than the predefined ones is
        restricted XML.
        """
        self.xs.dataReceived(HEADER + b"<message>&foo;</message>")
        self.assertStreamError("restricted-xml")
        self.assertEqual(self.stanzas, [])


class LimitTests(_StreamTestMixin, SynchronousTestCase):
    """
    Size and depth limits are answered with C{<policy-violation/>}.
    """

    def test_depthOverLimit(self) -> None:
        """
        A stanza nested C{maxDepth + 1} deep is refused, with a text saying
        why, and is not dispatched.
        """
        self.xs.dataReceived(HEADER + _nested(65))
        sent = self.assertStreamError("policy-violation")
        self.assertIn("nested more than 64", sent.text)
        self.assertEqual(self.stanzas, [])

    def test_depthConfigurable(self) -> None:
        """
        C{maxDepth} is honoured: limit passes, limit + 1 fails.
        """
        self.xs, self.transport = self.connect(maxDepth=3)
        self.xs.dataReceived(HEADER + _nested(3))
        self.assertAlive()
        self.xs.dataReceived(_nested(4))
        self.assertStreamError("policy-violation")
        self.assertEqual(len(self.stanzas), 1)

    def test_stanzaOneByteTooBig(self) -> None:
        """
        A stanza of C{maxStanzaSize + 1} bytes is refused, even when the
        stanza before it was exactly at the limit.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        self.xs.dataReceived(HEADER + _stanzaOfSize(1000) + _stanzaOfSize(1001))
        sent = self.assertStreamError("policy-violation")
        self.assertIn("stanza larger than 1000 bytes", sent.text)
        self.assertEqual(len(self.stanzas), 1)

    def test_sizeCountsBytes(self) -> None:
        """
        The limit is in bytes of input, not characters: a stanza of 1000
        bytes made mostly of two-byte characters, fed one byte at a time,
        passes a limit of 1000 and fails a limit of 999.
        """
        body = "\u00e9".encode() * 450
        stanza = _stanzaOfSize(1000 - len(body)).replace(b"<body>", b"<body>" + body)
        self.assertEqual(len(stanza), 1000)
        for limit, alive in [(1000, True), (999, False)]:
            self.xs, self.transport = self.connect(maxStanzaSize=limit)
            self.xs.dataReceived(HEADER)
            for i in range(len(stanza)):
                self.xs.dataReceived(stanza[i : i + 1])
            if alive:
                self.assertAlive()
                self.assertEqual(str(self.stanzas[0].body).count("\u00e9"), 450)
            else:
                self.assertStreamError("policy-violation")
                self.assertEqual(self.stanzas, [])

    def test_stanzaTooBigAcrossReads(self) -> None:
        """
        An unfinished stanza growing across reads is refused as soon as it
        exceeds the limit.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        self.xs.dataReceived(HEADER + b"<message><body>")
        for _ in range(9):
            self.xs.dataReceived(b"y" * 100)
        self.assertAlive()
        self.xs.dataReceived(b"y" * 100)
        self.assertStreamError("policy-violation")

    def test_stanzaCompletedOverLimit(self) -> None:
        """
        A stanza that reaches the limit in one read and is completed, one
        byte over it, by the next is refused and not dispatched.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        stanza = _stanzaOfSize(1001)
        self.xs.dataReceived(HEADER)
        self.xs.dataReceived(stanza[:1000])
        self.assertAlive()
        self.xs.dataReceived(stanza[1000:])
        self.assertStreamError("policy-violation")
        self.assertEqual(self.stanzas, [])

    def test_endTagCounted(self) -> None:
        """
        The bytes of a stanza's end tag count toward its size.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        stanza = _stanzaOfSize(1000)
        self.xs.dataReceived(HEADER + stanza[:-1] + b" " * 10 + b">")
        self.assertStreamError("policy-violation")

    def test_startTagTooBig(self) -> None:
        """
        A start tag that never ends (buffered by expat, with no event) is
        refused once it exceeds the limit.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        self.xs.dataReceived(HEADER + b"<message to='")
        for _ in range(10):
            self.xs.dataReceived(b"z" * 100)
        self.assertStreamError("policy-violation")

    def test_headerTooBig(self) -> None:
        """
        A complete stream header larger than the limit is refused.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        self.xs.dataReceived(HEADER[:-1] + b" x='" + b"h" * 1000 + b"'>")
        sent = self.assertStreamError("policy-violation")
        self.assertIn("stream header", sent.text)

    def test_headerAtLimit(self) -> None:
        """
        A stream header of exactly C{maxStanzaSize} bytes passes (counted
        from the first byte of input, XML declaration included); one byte
        more does not, and the stream is not started.
        """
        declaration = b"<?xml version='1.0'?>\n"
        padding = 1000 - len(declaration) - len(HEADER) - len(b" x=''")
        header = declaration + HEADER[:-1] + b" x='" + b"h" * padding + b"'>"
        self.assertEqual(len(header), 1000)
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        self.xs.dataReceived(header + b"<presence/>")
        self.assertAlive()
        self.assertEqual(len(self.starts), 1)
        self.assertEqual(len(self.stanzas), 1)

        self.xs, self.transport = self.connect(maxStanzaSize=999)
        self.xs.dataReceived(header + b"<presence/>")
        self.assertStreamError("policy-violation")
        self.assertEqual(self.starts, [])

    def test_headerTooBigUnfinished(self) -> None:
        """
        An unfinished stream header larger than the limit is refused.
        """
        self.xs, self.transport = self.connect(maxStanzaSize=1000)
        self.xs.dataReceived(HEADER[:-1] + b" x='")
        for _ in range(10):
            self.xs.dataReceived(b"h" * 100)
        self.assertStreamError("policy-violation")
        self.assertEqual(self.starts, [])


class ErrorHandlingTests(_StreamTestMixin, SynchronousTestCase):
    """
    How a rejection is sent, logged and dispatched.
    """

    def test_malformed(self) -> None:
        """
        Malformed XML is answered with C{<not-well-formed/>}; observers get
        a L{domish.ParserError}, as with Twisted's own stream.
        """
        self.xs.dataReceived(HEADER + b"<message></iq>")
        self.assertStreamError("not-well-formed")
        self.assertTrue(self.errorEvents[0].check(domish.ParserError))

    def test_streamEnd(self) -> None:
        """
        The peer's stream footer, after a stanza in the same read, first
        dispatches the stanza, then closes the connection without an error.
        """
        self.xs.dataReceived(HEADER + b"<presence/></stream:stream>")
        self.assertEqual(len(self.stanzas), 1)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(_streamErrors(self.transport.value()), [])

    def test_streamEndAnswered(self) -> None:
        """
        When our header went out, the peer's closing tag is answered with
        ours before the connection closes (RFC 6120 4.4).
        """
        self.xs.dataReceived(HEADER)
        self.xs.sendHeader()
        self.transport.clear()  # type: ignore[attr-defined]
        self.xs.dataReceived(b"</stream:stream>")
        self.assertEqual(self.transport.value(), b"</stream:stream>")  # type: ignore[attr-defined]
        self.assertTrue(self.transport.disconnecting)

    def test_headerOnceBeforeError(self) -> None:
        """
        When our header was already sent, the error follows it without a
        second header.
        """
        self.xs.dataReceived(HEADER)
        self.xs.sendHeader()
        self.xs.dataReceived(b"<<")
        self.assertStreamError("not-well-formed")
        headers, elements = _parseOutput(self.transport.value())
        self.assertEqual(len(headers), 1)
        self.assertEqual(len(elements), 1)

    def test_initiatingStream(self) -> None:
        """
        An outgoing stream sends the error after its header too.
        """
        self.xs, self.transport = self.connect(_ConnectAuthenticator("b.test"))
        self.assertTrue(self.xs.initiating)
        self.xs.dataReceived(HEADER + b"<?pi?>")
        self.assertStreamError("restricted-xml")

    def test_loggedOnceAndInputIgnored(self) -> None:
        """
        The rejection is logged once, with the peer's address; later input
        is neither parsed nor answered again.
        """
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.xs.dataReceived(HEADER + b"<!-- a -->")
        self.xs.dataReceived(b"<!-- b --><<<<")
        self.xs.dataReceived(b"<presence/>")
        self.assertStreamError("restricted-xml")
        self.assertEqual(self.stanzas, [])
        events = [e for e in logged if e.get("condition") is not None]
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["address"], PEER)
        self.assertEqual(events[0]["condition"], "restricted-xml")
        self.assertEqual(events[0]["direction"], "incoming")


class ResetGuardTests(_StreamTestMixin, SynchronousTestCase):
    """
    After C{reset()}, what the old parser still holds is never dispatched.
    """

    def setUp(self) -> None:
        """
        Reset the stream when C{<starttls/>} arrives, as a receiving
        STARTTLS implementation does, and record dialback results.
        """
        super().setUp()
        self.results: list[domish.Element] = []
        self.xs.addObserver(f"/starttls[@xmlns='{NS_TLS}']", self._onStartTLS)
        self.xs.addObserver(f"/result[@xmlns='{NS_DIALBACK}']", self.results.append)

    def _onStartTLS(self, element: domish.Element) -> None:
        """
        Answer C{<proceed/>} and reset the parser.
        """
        self.xs.send(domish.Element((NS_TLS, "proceed")))
        self.xs.reset()

    def test_injectedAfterStartTLS(self) -> None:
        """
        A C{db:result} sent in the same read as C{<starttls/>} is discarded.
        """
        self.xs.dataReceived(HEADER)
        self.xs.dataReceived(
            b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
            b"<db:result from='evil.test' to='b.test'>key</db:result>"
        )
        self.assertEqual([e.name for e in self.stanzas], ["starttls"])
        self.assertEqual(self.results, [])
        self.assertAlive()

    def test_garbageAfterStartTLS(self) -> None:
        """
        Malformed input after C{<starttls/>} in the same read is discarded
        too, not answered with a stream error.
        """
        self.xs.dataReceived(HEADER)
        self.xs.dataReceived(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><<<!-- -->")
        self.assertAlive()

    def test_restartInNewRead(self) -> None:
        """
        After the reset, a new stream header in a new read starts the new
        stream, and its stanzas are dispatched.
        """
        self.xs.dataReceived(HEADER)
        self.xs.dataReceived(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.xs.dataReceived(HEADER + b"<db:result from='a.test' to='b.test'>key</db:result>")
        self.assertAlive()
        self.assertEqual(len(self.starts), 2)
        self.assertEqual(len(self.results), 1)
        self.assertEqual(self.results[0]["from"], "a.test")

    def test_resetDiscardsParser(self) -> None:
        """
        The old parser is told to discard, and a discarded parser ignores
        input.
        """
        old = self.xs.stream
        self.xs.reset()
        self.assertIsNot(self.xs.stream, old)
        self.assertIsInstance(self.xs.stream, StrictExpatElementStream)
        events: list[object] = []
        old.DocumentStartEvent = events.append
        old.parse(HEADER)
        self.assertEqual(events, [])


class LivenessTests(_StreamTestMixin, SynchronousTestCase):
    """
    Keepalives, idle timeout and handshake timeout.
    """

    def setUp(self) -> None:
        """
        Start an authenticated stream whose header was sent.
        """
        super().setUp()
        self.xs.dataReceived(HEADER)
        self.xs.sendHeader()
        self.before = len(self.transport.value())

    def sent(self) -> bytes:
        """
        @return: what was sent since the header.
        """
        return self.transport.value()[self.before :]

    def test_keepaliveAfterInterval(self) -> None:
        """
        A single space is sent after C{keepaliveInterval} seconds of send
        silence, and again after each further interval.
        """
        self.xs.startLiveness(60, 600)
        self.clock.advance(59)
        self.assertEqual(self.sent(), b"")
        self.clock.advance(1)
        self.assertEqual(self.sent(), b" ")
        self.clock.advance(60)
        self.assertEqual(self.sent(), b"  ")
        self.assertAlive()

    def test_noKeepaliveWhenTrafficFlows(self) -> None:
        """
        No keepalive is sent while stanzas are being sent.
        """
        self.xs.startLiveness(60, 600)
        for _ in range(10):
            self.clock.advance(30)
            self.xs.send("<presence/>")
        self.assertEqual(self.sent(), b"<presence/>" * 10)
        self.clock.advance(60)
        self.assertEqual(self.sent(), b"<presence/>" * 10 + b" ")

    def test_noKeepaliveWhilePeerSends(self) -> None:
        """
        Bytes from the peer, its own keepalives included, prove the
        connection alive: no keepalive is sent until the stream has been
        silent both ways for a whole interval.
        """
        self.xs.startLiveness(60, 600)
        for _ in range(5):
            self.clock.advance(50)
            self.xs.dataReceived(b" ")
        self.assertEqual(self.sent(), b"")
        self.clock.advance(59)
        self.assertEqual(self.sent(), b"")
        self.clock.advance(1)
        self.assertEqual(self.sent(), b" ")

    def test_idleTimeout(self) -> None:
        """
        After C{idleTimeout} seconds without an element in either direction
        the stream is closed gracefully; whitespace keepalives from the peer
        do not keep it open, elements received or sent do.
        """
        self.xs.startLiveness(60, 600)
        self.clock.advance(300)
        self.xs.dataReceived(b"<message from='b.example' to='a.example'/>")
        self.clock.advance(200)
        self.xs.send("<message from='a.example' to='b.example'/>")
        self.clock.advance(300)
        self.xs.dataReceived(b" ")
        self.clock.advance(299)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(self.transport.disconnecting)
        self.assertTrue(self.sent().endswith(b"</stream:stream>"))
        self.assertEqual(self.errorEvents, [])
        # Only the deadline for the close is left.
        [drop] = self.clock.getDelayedCalls()
        self.assertEqual(drop.getTime(), self.clock.seconds() + CLOSE_GRACE)

    def test_startLivenessValidates(self) -> None:
        """
        Non-positive intervals are refused.
        """
        self.assertRaises(ValueError, self.xs.startLiveness, 0, 600)
        self.assertRaises(ValueError, self.xs.startLiveness, 60, -1)

    def test_noKeepaliveAfterFooter(self) -> None:
        """
        Once our footer is sent, no keepalive follows it; if the peer never
        closes, the idle timeout drops the connection without sending
        anything after the footer.
        """
        self.xs.startLiveness(60, 600)
        self.xs.sendFooter()
        self.clock.advance(599)
        self.assertEqual(self.sent(), b"</stream:stream>")
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)
        self.assertEqual(self.sent(), b"</stream:stream>")
        self.assertTrue(self.transport.disconnecting)

    def test_handshakeTimeout(self) -> None:
        """
        A stream not authenticated within the handshake timeout is closed
        with C{<connection-timeout/>}.
        """
        self.xs.setHandshakeTimeout(30)
        self.clock.advance(29)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)
        sent = self.assertStreamError("connection-timeout")
        self.assertIn("not authenticated", sent.text)

    def test_handshakeTimeoutNotResetByInput(self) -> None:
        """
        The handshake timeout runs from the moment it is set: input that
        keeps coming (a header dripped a byte at a time) does not postpone
        it.
        """
        xs, transport = self.connect()
        xs.setHandshakeTimeout(30)
        for byte in HEADER[:29]:
            self.clock.advance(1)
            xs.dataReceived(bytes([byte]))
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            [e.condition for e in _streamErrors(transport.value())], ["connection-timeout"]
        )

    def test_handshakeTimeoutDuringTLSHandshake(self) -> None:
        """
        When the handshake timeout expires while a TLS handshake is
        unfinished (nothing can be sent before it is done), the connection
        is dropped at once; observers are told as for any timeout.
        """
        directlyProvides(self.transport, ISSLTransport)
        self.xs.setHandshakeTimeout(30)
        self.clock.advance(30)
        self.assertTrue(self.transport.disconnected)
        self.assertEqual(self.sent(), b"")
        [reason] = self.errorEvents
        self.assertTrue(reason.check(StreamTimeout))

    def test_handshakeTimeoutAfterTLSHandshake(self) -> None:
        """
        Once the TLS handshake is done, the handshake timeout sends its
        stream error as usual.
        """
        directlyProvides(self.transport, ISSLTransport)
        self.xs.handshakeCompleted()
        self.xs.setHandshakeTimeout(30)
        self.clock.advance(30)
        self.assertFalse(self.transport.disconnected)
        self.assertStreamError("connection-timeout")

    def test_closeDeadline(self) -> None:
        """
        A connection closed after a stream error that does not end within
        L{CLOSE_GRACE} seconds (the peer does not read) is dropped; one that
        ends in time is not, and no timer is left.
        """
        self.xs.setHandshakeTimeout(30)
        self.clock.advance(30)
        self.assertTrue(self.transport.disconnecting)
        self.clock.advance(CLOSE_GRACE - 0.5)
        self.assertFalse(self.transport.disconnected)
        self.clock.advance(0.5)
        self.assertTrue(self.transport.disconnected)

        xs, transport = self.connect()
        xs.setHandshakeTimeout(30)
        self.clock.advance(30)
        xs.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(transport.disconnected)

    def test_directStreamErrorDeadline(self) -> None:
        """
        A stream error sent directly (as the authenticators do) is followed
        by a drop after L{CLOSE_GRACE} seconds when the connection has not
        ended (over TLS, Twisted waits for the peer's close_notify); so is
        a stream error the peer sent, and the peer's closing tag before our
        header.
        """
        self.xs.dataReceived(HEADER)
        self.xs.sendStreamError(error.StreamError("host-unknown"))
        self.assertTrue(self.transport.disconnecting)
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(self.transport.disconnected)

        xs, transport = self.connect()
        xs.dataReceived(
            HEADER + b"<stream:error><host-gone xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            b"</stream:error>"
        )
        self.assertTrue(transport.disconnecting)
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)

        xs, transport = self.connect()
        xs.dataReceived(HEADER + b"</stream:stream>")
        self.assertTrue(transport.disconnecting)
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)

    def test_directStreamErrorDuringTLSHandshake(self) -> None:
        """
        A stream error sent during an unfinished TLS handshake cannot go
        out: the connection is dropped at once.
        """
        self.xs.dataReceived(HEADER)
        directlyProvides(self.transport, ISSLTransport)
        self.xs.sendStreamError(error.StreamError("host-unknown"))
        self.assertTrue(self.transport.disconnected)

    def test_closeDuringTLSHandshake(self) -> None:
        """
        L{S2SXmlStream.close} sends the footer and closes; during an
        unfinished TLS handshake it drops the connection instead.
        """
        self.xs.close()
        self.assertEqual(self.sent(), b"</stream:stream>")
        self.assertTrue(self.transport.disconnecting)
        self.assertFalse(self.transport.disconnected)

        xs, transport = self.connect()
        directlyProvides(transport, ISSLTransport)
        xs.close()
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnected)

    def test_handshakeTimeoutCancelledByAuthd(self) -> None:
        """
        C{STREAM_AUTHD_EVENT} cancels the handshake timeout.
        """
        self.xs.setHandshakeTimeout(30)
        self.clock.advance(10)
        self.xs.dispatch(self.xs, xmlstream.STREAM_AUTHD_EVENT)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertAlive()
        self.xs.setHandshakeTimeout(30)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timersStoppedOnConnectionLost(self) -> None:
        """
        Losing the connection cancels every timer.
        """
        self.xs.setHandshakeTimeout(30)
        self.xs.startLiveness(60, 600)
        self.assertEqual(len(self.clock.getDelayedCalls()), 3)
        self.xs.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.xs.setHandshakeTimeout(30)
        self.xs.startLiveness(60, 600)
        self.assertEqual(self.clock.getDelayedCalls(), [])
