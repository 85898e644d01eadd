# -*- test-case-name: tests.test_fuzz_xmlstream -*-
"""
Hypothesis strategies for XMPP streams: valid s2s streams (a header and
stanzas with attributes, namespaces, entities, character references, CDATA
sections and multi-byte UTF-8), their mutations (bytes flipped, inserted,
cut) and ways to cut a byte string into reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from hypothesis import strategies as st

NS_STREAMS = "http://etherx.jabber.org/streams"
NS_DIALBACK = "jabber:server:dialback"

# Characters that take two, three and four bytes in UTF-8, always among
# those drawn, so that every stream has reads split inside a character.
_WIDE = "é€中😀𝄞"

# The characters XML 1.0 allows, as far as Hypothesis draws them: no C0
# controls but tab, newline and carriage return; no surrogates; not U+FFFE
# or U+FFFF.
_xmlCharacters = st.one_of(
    st.sampled_from("\t\n\r &<>'\"]" + _WIDE),
    st.characters(
        min_codepoint=0x20,
        exclude_categories=("Cs",),
        exclude_characters="\ufffe\uffff",
    ),
)

_names = st.sampled_from(["body", "x", "item", "thread", "query", "a-b", "c.d", "é"])
_attributeNames = st.sampled_from(["id", "type", "name", "node", "xml:lang", "var", "é"])
_namespaces = st.sampled_from(
    ["urn:example:a", "jabber:x:data", "urn:xmpp:serverinfo:0", "urn:é:ü", "http://x/?a=1&amp;b"]
)


def _escape(text: str, quote: bool) -> str:
    """
    @return: C{text} as XML character data, or as an attribute value
        within single quotes.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if quote:
        text = text.replace("'", "&apos;").replace("\r", "&#13;").replace("\t", "&#9;")
        text = text.replace("\n", "&#10;")
    return text


@st.composite
def xmlText(draw: st.DrawFn, quote: bool = False) -> str:
    """
    Text as it is written on the wire: escaped, with some characters as
    decimal or hexadecimal character references, or (outside attributes)
    in a CDATA section.
    """
    parts = []
    for piece in draw(st.lists(st.text(_xmlCharacters, max_size=12), max_size=4)):
        how = draw(st.sampled_from(["plain", "plain", "dec", "hex", "cdata"]))
        if how == "cdata" and not quote and piece and "]]>" not in piece:
            parts.append(f"<![CDATA[{piece}]]>")
        elif how in ("dec", "hex") and piece:
            reference = "&#{};" if how == "dec" else "&#x{:X};"
            parts.append(reference.format(ord(piece[0])) + _escape(piece[1:], quote))
        else:
            parts.append(_escape(piece, quote))
    return "".join(parts)


@st.composite
def xmlElement(draw: st.DrawFn, depth: int = 0, name: str | None = None) -> str:
    """
    An element with attributes, maybe a namespace of its own (default or
    prefixed) and children: text and elements, at most three deep.
    """
    name = name or draw(_names)
    attributes = []
    for attribute in sorted(set(draw(st.lists(_attributeNames, max_size=3)))):
        attributes.append(f"{attribute}='{draw(xmlText(quote=True))}'")
    how = draw(st.sampled_from(["inherit", "inherit", "default", "prefix"]))
    if how == "default":
        attributes.append(f"xmlns='{draw(_namespaces)}'")
    elif how == "prefix":
        attributes.append(f"xmlns:p='{draw(_namespaces)}'")
        name = f"p:{name}"
    children = []
    if depth < 3:
        for kind in draw(st.lists(st.sampled_from(["text", "element"]), max_size=3)):
            if kind == "text":
                children.append(draw(xmlText()))
            else:
                children.append(draw(xmlElement(depth + 1)))
    start = " ".join([name, *attributes])
    if not children and draw(st.booleans()):
        return f"<{start}/>"
    return f"<{start}>{''.join(children)}</{name}>"


def header(sender: str = "b.example", to: str = "a.example") -> bytes:
    """
    @return: an initiating server's stream header.
    """
    return (
        f"<stream:stream xmlns='jabber:server' xmlns:stream='{NS_STREAMS}' "
        f"xmlns:db='{NS_DIALBACK}' from='{sender}' to='{to}' version='1.0'>"
    ).encode()


@attrs.frozen
class Stream:
    """
    A valid stream as a peer sends it.

    @ivar data: its bytes.
    @ivar stanzas: how many stanzas follow the header.
    """

    data: bytes
    stanzas: int


@st.composite
def validStreams(
    draw: st.DrawFn, sender: str = "b.example", to: str = "a.example", maxStanzas: int = 5
) -> Stream:
    """
    A stream header, then one to C{maxStanzas} stanzas (C{message}, C{iq}, C{presence}, all
    from C{sender} to C{to}) separated by optional whitespace, and maybe
    the stream's end.
    """
    # One stanza has every wide character, so that every stream has some.
    parts = [header(sender, to).decode(), f"<message from='{sender}' to='{to}'>{_WIDE}</message>"]
    count = draw(st.integers(0, maxStanzas - 1))
    for _ in range(count):
        parts.append(draw(st.sampled_from(["", " ", "\n", "\r\n\t"])))
        kind = draw(st.sampled_from(["message", "iq", "presence"]))
        stanza = draw(xmlElement(name=kind))
        stanza = stanza.replace(f"<{kind}", f"<{kind} from='{sender}' to='{to}'", 1)
        parts.append(stanza)
    if draw(st.booleans()):
        parts.append("</stream:stream>")
    return Stream("".join(parts).encode("utf-8"), count + 1)


@st.composite
def chunked(draw: st.DrawFn, data: bytes, maxCuts: int = 12) -> list[bytes]:
    """
    C{data} cut into reads at random places (some of them empty).
    """
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=maxCuts)))
    return split(data, cuts)


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """
    @param cuts: where to cut C{data}, in ascending order.
    @return: the pieces.
    """
    pieces = []
    last = 0
    for cut in cuts:
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    return pieces


@st.composite
def mutated(draw: st.DrawFn, data: bytes, maxMutations: int = 4) -> bytes:
    """
    C{data} with one to C{maxMutations} changes: a byte flipped or
    replaced, bytes inserted (random ones, or markup that XMPP forbids or
    limits), a range cut out, or the end cut off.
    """
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, maxMutations))):
        at = draw(st.integers(0, len(buffer)))
        kind = draw(st.sampled_from(["flip", "replace", "insert", "markup", "cut", "truncate"]))
        if kind == "flip" and at < len(buffer):
            buffer[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "replace" and at < len(buffer):
            buffer[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "markup":
            buffer[at:at] = draw(
                st.sampled_from(
                    [
                        b"<!-- c -->",
                        b"<?pi x?>",
                        b"<!DOCTYPE s>",
                        b"&undefined;",
                        b"&#0;",
                        b"&#xD800;",
                        b"<![CDATA[",
                        b"]]>",
                        b"</stream:stream>",
                        b"<stream:stream>",
                        b"<stream:error/>",
                        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                        b"<db:result from='b.example' to='a.example'>k</db:result>",
                        b"<a>" * 70,
                        b"\xc3",
                        b"\xf0\x9f",
                        b"\xff\xfe",
                    ]
                )
            )
        elif kind == "cut":
            end = draw(st.integers(at, min(len(buffer), at + 16)))
            del buffer[at:end]
        elif kind == "truncate":
            del buffer[at:]
    return bytes(buffer)
