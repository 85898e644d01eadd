# -*- test-case-name: tests.test_fuzz_xmlstream -*-
"""
Property-based tests of the s2s XML stream (L{S2SXmlStream}), driven
through C{dataReceived} over L{StringTransport}:

  - whatever a peer sends (random bytes; valid streams with bytes flipped,
    inserted or cut), no exception escapes C{dataReceived}, nothing is
    logged as a failure, and the stream either goes on or ends with one
    RFC 6120 stream error and closes;
  - the same valid stream gives exactly the same stanzas however it is cut
    into reads, multi-byte UTF-8 characters cut in two included.
"""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.xish import domish

from tests.fuzzing import LoggedFailures, examples
from tests.test_s2s_receive import PEER, ReceivingTestsBase
from tests.xmlstrategies import Stream, chunked, header, mutated, split, validStreams
from xmppnetgraph.s2s.initiate import NS_TLS
from xmppnetgraph.s2s.xmlstream import STREAM_ERROR_CONDITIONS, S2SXmlStream

LOCAL = "a.example"

#: The stream error conditions of RFC 6120 section 4.9.3, less
#: C{internal-server-error}, which would mean that we failed, not the peer.
PEER_FAULTS = STREAM_ERROR_CONDITIONS - {"internal-server-error"}

#: A whole incoming handshake: STARTTLS, the restarted stream, dialback,
#: then stanzas; mutated, it reaches every state of the receiving side.
HANDSHAKE = (
    header(PEER, LOCAL)
    + f"<starttls xmlns='{NS_TLS}'/>".encode()
    + header(PEER, LOCAL)
    + f"<db:result from='{PEER}' to='{LOCAL}'>key</db:result>".encode()
    + f"<message from='u@{PEER}/r' to='{LOCAL}'>".encode()
    + "<body>h\u00e9 &amp; &#x1F600;</body></message>".encode()
    + f"<iq type='get' id='1' from='{PEER}' to='{LOCAL}'><query xmlns='urn:x'/></iq>".encode()
    + b"</stream:stream>"
)


def sentElements(data: bytes) -> list[domish.Element]:
    """
    Parse what a stream sent: one or more stream headers (a new one after
    each restart), their elements, and maybe the footer.

    @param data: everything the stream wrote.
    @return: the top-level elements of every stream, in order.
    """
    elements: list[domish.Element] = []
    for segment in data.replace(b"</stream:stream>", b"").split(b"<stream:stream")[1:]:
        parser = domish.elementStream()
        parser.DocumentStartEvent = lambda root: None
        parser.ElementEvent = elements.append
        parser.DocumentEndEvent = lambda: None
        parser.parse(b"<stream:stream" + segment)
    return elements


class HostileInputTests(ReceivingTestsBase):
    """
    An incoming stream of the real s2s service (L{S2SService}, a
    L{ReceivingAuthenticator}) fed hostile input.
    """

    def feed(self, reads: Iterable[bytes]) -> None:
        """
        Open a new incoming stream, feed it C{reads}, and check that it
        either goes on or ended with one stream error for the peer's fault
        and closed.

        @param reads: what the peer sends, read by read.
        """
        xs, transport = self.connect()
        ended: list[bool] = []
        xs.addObserver(xmlstream.STREAM_END_EVENT, lambda _: ended.append(True))
        peerEnded = self._watchDocumentEnd(xs)
        with LoggedFailures() as failures:
            for data in reads:
                xs.dataReceived(data)
        output = transport.value()
        self.assertEqual(failures.events, [], output)
        elements = sentElements(output)
        errors = [
            error.exceptionFromStreamError(e)
            for e in elements
            if (e.uri, e.name) == (xmlstream.NS_STREAMS, "error")
        ]
        if errors:
            (streamError,) = errors
            self.assertIn(streamError.condition, PEER_FAULTS, output)
            # Nothing after the error but the footer, and the connection
            # is being closed.
            self.assertEqual(elements[-1].name, "error", output)
            self.assertTrue(output.endswith(b"</stream:stream>"), output)
            self.assertTrue(transport.disconnecting, output)
        else:
            self.assertEqual(transport.disconnecting, bool(peerEnded), output)
        self.disconnect(xs)
        self.assertEqual(ended, [True])

    def _watchDocumentEnd(self, xs: S2SXmlStream) -> list[bool]:
        """
        @return: a list that gets an entry when the peer ends its stream
            (its parser's C{DocumentEndEvent}, in every parser the stream
            installs).
        """
        ended: list[bool] = []
        install = xs._installParser

        def installParser() -> None:
            install()
            assert xs.stream is not None
            onEnd = xs.stream.DocumentEndEvent

            def documentEnd() -> None:
                ended.append(True)
                onEnd()

            xs.stream.DocumentEndEvent = documentEnd

        xs._installParser = installParser  # type: ignore[method-assign]
        installParser()
        return ended

    @examples(150)
    @given(st.binary(max_size=300).flatmap(chunked))
    def test_randomBytes(self, reads: list[bytes]) -> None:
        """
        Random bytes from the first byte on.
        """
        self.feed(reads)

    @examples(150)
    @given(st.binary(max_size=300).map(lambda data: header(PEER, LOCAL) + data).flatmap(chunked))
    def test_randomBytesAfterHeader(self, reads: list[bytes]) -> None:
        """
        Random bytes after a valid stream header.
        """
        self.feed(reads)

    @examples(300)
    @given(st.just(HANDSHAKE).flatmap(mutated).flatmap(chunked))
    def test_mutatedHandshake(self, reads: list[bytes]) -> None:
        """
        A whole handshake and stanzas with bytes flipped, replaced,
        inserted (restricted markup too) or cut.
        """
        self.feed(reads)

    @examples(200)
    @given(validStreams(PEER, LOCAL).map(lambda s: s.data).flatmap(mutated).flatmap(chunked))
    def test_mutatedStream(self, reads: list[bytes]) -> None:
        """
        A stream of generated stanzas (before authentication) with bytes
        flipped, replaced, inserted or cut.
        """
        self.feed(reads)


class _Collector:
    """
    What a stream dispatched: the stream header's C{to} and default
    namespace, and every stanza, serialised.
    """

    def __init__(self, xs: S2SXmlStream) -> None:
        self.stanzas: list[str] = []
        self.headers: list[tuple[str | None, str | None]] = []
        xs.addObserver("/*", lambda e: self.stanzas.append(e.toXml()))
        xs.addObserver(
            xmlstream.STREAM_START_EVENT,
            lambda _: self.headers.append(
                (
                    xs.thisEntity.full() if xs.thisEntity is not None else None,
                    xs.namespace,
                )
            ),
        )


class ChunkingTests(SynchronousTestCase):
    """
    A valid stream gives the same stanzas however it is read.
    """

    def parse(
        self, reads: Iterable[bytes], *, release: bool = False
    ) -> tuple[list[tuple[object, ...]], list[str]]:
        """
        Feed C{reads} to a new incoming L{S2SXmlStream} (with Twisted's
        listening authenticator, which accepts any header).

        @param release: after each read, let the parser release its expat
            where it can (L{S2SXmlStream.releaseParser}).
        @return: the headers and the serialised stanzas it dispatched.
        """
        clock = task.Clock()
        xs = S2SXmlStream(xmlstream.ListenAuthenticator(), clock=clock)
        collector = _Collector(xs)
        transport = StringTransport()
        xs.makeConnection(transport)
        for data in reads:
            xs.dataReceived(data)
            if release:
                clock.advance(1)
                xs.releaseParser(1)
        self.assertNotIn(b"stream:error", transport.value())
        return list(collector.headers), collector.stanzas

    def assertSameStanzas(self, stream: Stream, reads: list[bytes]) -> None:
        """
        Assert that C{reads} give what C{stream} in one piece gives, and
        that this is every stanza of it.
        """
        whole = self.parse([stream.data])
        self.assertEqual(len(whole[1]), stream.stanzas, stream.data)
        self.assertEqual(self.parse(reads), whole, reads)

    @examples(15)
    @given(validStreams(maxStanzas=3))
    def test_everySplit(self, stream: Stream) -> None:
        """
        Cut in two at every byte (inside multi-byte characters too), and
        read byte by byte, a stream gives the same stanzas as in one read.
        """
        whole = self.parse([stream.data])
        self.assertEqual(len(whole[1]), stream.stanzas, stream.data)
        for at in range(1, len(stream.data)):
            self.assertEqual(self.parse(split(stream.data, [at])), whole, at)
        self.assertEqual(self.parse(split(stream.data, range(len(stream.data)))), whole)

    @examples(150)
    @given(st.data())
    def test_randomReads(self, data: st.DataObject) -> None:
        """
        Cut into random reads, a stream gives the same stanzas as in one
        read.
        """
        stream = data.draw(validStreams())
        self.assertSameStanzas(stream, data.draw(chunked(stream.data, maxCuts=40)))

    @examples(100)
    @given(st.data())
    def test_releasedBetweenReads(self, data: st.DataObject) -> None:
        """
        Cut after every tag (so at every stanza's end too) and at random
        places, with the parser let go of after each read wherever it is
        between stanzas, a stream gives the same stanzas as in one read.
        """
        stream = data.draw(validStreams())
        tagEnds = [at + 1 for at, byte in enumerate(stream.data) if byte == ord(">")]
        cuts = data.draw(st.lists(st.integers(0, len(stream.data)), max_size=20))
        reads = split(stream.data, sorted({*tagEnds, *cuts}))
        self.assertEqual(self.parse(reads, release=True), self.parse([stream.data]), reads)

    @examples(50)
    @given(st.data())
    def test_wideCharactersCut(self, data: st.DataObject) -> None:
        """
        Cut inside every multi-byte UTF-8 character at once, a stream gives
        the same stanzas as in one read.
        """
        stream = data.draw(validStreams())
        cuts = [
            at
            for at, byte in enumerate(stream.data)
            # A continuation byte: a character starts before it.
            if byte & 0xC0 == 0x80
        ]
        self.assertSameStanzas(stream, split(stream.data, cuts))
