# -*- test-case-name: tests.test_fuzz_serverinfo -*-
"""
Property-based tests of the XEP-0485 parser (L{parsePayload},
L{parsePubsubNodeURI}) and of what the crawler calls on a fetched item
(L{reportFromItems}), on random items and on the publishers' fixtures in
C{tests/fixtures/serverinfo/} mutated: nothing but the documented error
escapes, and what comes back respects the limits, with every name
validated and canonical.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.xish import domish
from wokkel.generic import parseXml

from tests.fuzzing import examples
from xmppnetgraph.crawler.discovery import (
    BAD_ITEM,
    MAX_IGNORED,
    NO_ITEM,
    PUBLISHES,
    reportFromItems,
)
from xmppnetgraph.names import normalizeDomain, parseJID
from xmppnetgraph.serverinfo.payload import (
    CONNECTION_TYPES,
    NS_SERVERINFO,
    DomainInfo,
    PayloadError,
    RemoteDomain,
    ServerInfo,
    buildPayload,
    parsePayload,
    parsePubsubNodeURI,
    serverInfoFormField,
    validDomainName,
)

FIXTURES = Path(__file__).parent / "fixtures" / "serverinfo"

#: The C{<items/>} of every fixture, as bytes.
FIXTURE_ITEMS = {path.stem: path.read_bytes() for path in sorted(FIXTURES.glob("*.xml"))}

#: The limits the parser is run with here: small, so that random input
#: reaches them.
LIMITS = dict(maxDomains=3, maxRemoteDomains=8, maxConnections=2, maxUnicodeNames=3)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Names as publishers (or attackers) write them: canonical ones, other
# cases, Unicode and A-labels, a trailing dot, blanks, and invalid ones.
_domainNames = st.one_of(
    st.sampled_from(
        [
            "peer.example",
            "Peer.EXAMPLE",
            "peer.example.",
            " peer.example ",
            "chat.prosody.example",
            "prosody.example",
            "bücher.example",
            "BÜCHER.example",
            "xn--bcher-kva.example",
            "xn--bcher--.example",
            "xn--.example",
            "a..example",
            ".example",
            "-a.example",
            "a" * 64 + ".example",
            ("a" * 63 + ".") * 4 + "example",
            "127.0.0.1",
            "[::1]",
            "1.1.1",
            "user@peer.example",
            "peer.example/resource",
            "",
            " ",
            "ﬃ.example",
            "\u200d.example",
        ]
    ),
    st.text(max_size=30),
    st.text("abcXYZ-.é0", max_size=20),
)

_connectionTypes = st.one_of(
    st.sampled_from(["incoming", "outgoing", "bidi", "both", "BOTH", " incoming ", "", "x"]),
    st.text(max_size=8),
)

_namespaces = st.sampled_from([NS_SERVERINFO, NS_SERVERINFO, NS_SERVERINFO, "urn:example:x", ""])


@st.composite
def _element(draw: st.DrawFn, name: str, attributes: dict[str, str]) -> domish.Element:
    """
    An element, usually in the serverinfo namespace.
    """
    element = domish.Element((draw(_namespaces), name))
    for key, value in attributes.items():
        element[key] = value
    return element


@st.composite
def serverInfoElements(draw: st.DrawFn) -> domish.Element:
    """
    A random C{serverinfo} tree: domains, federations, remote domains and
    connections with random names and types, some in other namespaces,
    with noise (unknown elements, text) anywhere.
    """
    root = domish.Element((NS_SERVERINFO, "serverinfo"))

    def noise(parent: domish.Element) -> None:
        if draw(st.integers(0, 4)) == 0:
            parent.addChild(
                domish.Element((draw(_namespaces), draw(st.sampled_from(["x", "users", "domain"]))))
            )
        if draw(st.integers(0, 4)) == 0:
            parent.addContent(draw(st.text(max_size=5)))

    def named(name: str) -> dict[str, str]:
        return {"name": draw(_domainNames)} if draw(st.integers(0, 5)) else {}

    for _ in range(draw(st.integers(0, 5))):
        domain = root.addChild(draw(_element("domain", named("domain"))))
        noise(domain)
        for _ in range(draw(st.integers(0, 2))):
            federation = domain.addChild(draw(_element("federation", {})))
            for _ in range(draw(st.integers(0, 6))):
                remote = federation.addChild(draw(_element("remote-domain", named("remote"))))
                noise(remote)
                for _ in range(draw(st.integers(0, 4))):
                    typed = {"type": draw(_connectionTypes)} if draw(st.integers(0, 4)) else {}
                    remote.addChild(draw(_element("connection", typed)))
        noise(root)
    return root


def _clone(node: domish.Element | str) -> domish.Element | str:
    """
    @return: a copy of C{node} and what is below it (C{copy.deepcopy} would
        copy its parent too).
    """
    if not isinstance(node, domish.Element):
        return node
    clone = domish.Element((node.uri, node.name), node.defaultUri, dict(node.attributes))
    for child in node.children:
        clone.addChild(_clone(child))
    return clone


def _elements(root: domish.Element) -> list[domish.Element]:
    """
    @return: C{root} and every element below it, depth first.
    """
    found = [root]
    for child in root.children:
        if isinstance(child, domish.Element):
            found.extend(_elements(child))
    return found


@st.composite
def mutatedItems(draw: st.DrawFn) -> domish.Element:
    """
    The C{<items/>} of a publisher's fixture with random changes to its
    tree: names and types rewritten or dropped, elements copied, removed,
    moved to another namespace or renamed, and noise added.
    """
    items = parseXml(draw(st.sampled_from(sorted(FIXTURE_ITEMS.values()))))
    for _ in range(draw(st.integers(1, 6))):
        elements = _elements(items)
        target = draw(st.sampled_from(elements))
        kind = draw(
            st.sampled_from(
                ["name", "type", "id", "drop-attribute", "copy", "remove", "namespace", "rename"]
                + ["noise"]
            )
        )
        if kind == "name":
            target["name"] = draw(_domainNames)
        elif kind == "type":
            target["type"] = draw(_connectionTypes)
        elif kind == "id":
            target["id"] = draw(st.text(max_size=20))
        elif kind == "drop-attribute":
            target.attributes.clear()
        elif kind == "copy":
            copies = draw(st.integers(1, 10))
            target.children.extend(_clone(c) for c in list(target.children) * copies)
        elif kind == "remove" and target.children:
            del target.children[draw(st.integers(0, len(target.children) - 1))]
        elif kind == "namespace":
            target.uri = draw(_namespaces)
        elif kind == "rename":
            target.name = draw(
                st.sampled_from(
                    ["domain", "federation", "remote-domain", "connection", "item", "x"]
                )
            )
        else:
            target.addChild(draw(serverInfoElements()))
    return items


def payloadOf(domain: str, remote: str) -> domish.Element:
    """
    @return: a payload in which C{domain} has one peer, C{remote}.
    """
    return buildPayload(ServerInfo((DomainInfo(domain, (RemoteDomain(remote),)),)))


def _checkInfo(testCase: SynchronousTestCase, info: ServerInfo) -> None:
    """
    Assert that a parsed payload respects L{LIMITS} and that every name in
    it is valid and canonical.
    """
    testCase.assertLessEqual(len(info.domains), LIMITS["maxDomains"])
    testCase.assertLessEqual(sum(len(d.remotes) for d in info.domains), LIMITS["maxRemoteDomains"])
    for domain in info.domains:
        testCase.assertEqual(normalizeDomain(domain.name), domain.name)
        for remote in domain.remotes:
            if remote.name is not None:
                testCase.assertEqual(normalizeDomain(remote.name), remote.name)
            testCase.assertLessEqual(len(remote.connections), LIMITS["maxConnections"])
            testCase.assertLessEqual(set(remote.connections), CONNECTION_TYPES)
        named = [r.name for r in domain.remotes if r.name is not None]
        testCase.assertEqual(len(named), len(set(named)))
    names = [d.name for d in info.domains]
    testCase.assertEqual(len(names), len(set(names)))


class PayloadTests(SynchronousTestCase):
    """
    L{parsePayload} on random and mutated payloads.
    """

    @examples(300)
    @given(serverInfoElements())
    # Full-width digits and dots were accepted as the name 127.0.0.1.
    @example(payloadOf("\uff12", "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11"))
    def test_randomPayload(self, element: domish.Element) -> None:
        """
        A random payload parses within the limits, names canonical, and
        what it gives is what its own serialisation gives back.
        """
        info = parsePayload(element, **LIMITS)
        _checkInfo(self, info)
        again = parsePayload(buildPayload(info), **LIMITS)
        self.assertEqual(again, ServerInfo(info.domains))

    @examples(200)
    @given(mutatedItems())
    def test_mutatedFixtures(self, items: domish.Element) -> None:
        """
        Every C{serverinfo} element of a mutated fixture parses within the
        limits, or is refused with L{PayloadError} when it is in another
        namespace; anything else is refused with L{PayloadError} too.
        """
        for element in _elements(items):
            try:
                info = parsePayload(element, **LIMITS)
            except PayloadError:
                self.assertNotEqual((element.uri, element.name), (NS_SERVERINFO, "serverinfo"))
            else:
                self.assertEqual((element.uri, element.name), (NS_SERVERINFO, "serverinfo"))
                _checkInfo(self, info)

    @examples(100)
    @given(
        st.builds(
            lambda name, uri: domish.Element((uri, name)),
            st.text(max_size=12),
            st.text(max_size=12),
        )
    )
    def test_notAPayload(self, element: domish.Element) -> None:
        """
        Any element but C{serverinfo} in its namespace is a
        L{PayloadError}, never another exception.
        """
        if (element.uri, element.name) == (NS_SERVERINFO, "serverinfo"):
            _checkInfo(self, parsePayload(element, **LIMITS))
        else:
            self.assertRaises(PayloadError, parsePayload, element, **LIMITS)


class ReportTests(SynchronousTestCase):
    """
    L{reportFromItems}, what the crawler calls on a fetched item (or a
    notification), on mutated fixtures.
    """

    @examples(200)
    @given(
        mutatedItems(),
        st.sampled_from(
            [
                "prosody.example",
                "ejabberd.example",
                "openfire.example",
                "Prosody.Example",
                "x.example",
            ]
        ),
        st.integers(0, 10),
    )
    def test_mutatedItems(self, items: domish.Element, domain: str, maxRemotes: int) -> None:
        """
        A report is read or refused with a status, never an exception; a
        report has at most C{maxRemotes} remote domains with canonical
        names; the detail is one line of text.
        """
        children = [c for c in items.children if isinstance(c, domish.Element)]
        result = reportFromItems(domain, children, maxRemotes)
        self.assertIn(result.status, {PUBLISHES, NO_ITEM, BAD_ITEM})
        self.assertIsNone(_CONTROL.search(result.detail), result.detail)
        self.assertLessEqual(len(result.ignored), MAX_IGNORED)
        self.assertEqual(list(result.ignored), sorted(result.ignored))
        for name in result.ignored:
            self.assertEqual(validDomainName(name), name)
        if result.status != PUBLISHES:
            self.assertIsNone(result.report)
            return
        assert result.report is not None
        self.assertLessEqual(len(result.report), maxRemotes)
        for remote in result.report:
            self.assertIsInstance(remote, RemoteDomain)
            if remote.name is not None:
                self.assertEqual(normalizeDomain(remote.name), remote.name)


class NodeURITests(SynchronousTestCase):
    """
    L{parsePubsubNodeURI} on random and mutated URIs.
    """

    @examples(300)
    @given(
        st.one_of(
            st.text(max_size=40),
            st.builds(
                lambda prefix, host, node, tail: f"{prefix}{host}?{tail};node={node}",
                st.sampled_from(["xmpp:", "XMPP:", "xmpp://u@h/", "xmpp://", "http:"]),
                _domainNames,
                st.text(max_size=10),
                st.sampled_from(["", "pubsub", "pubsub;action=subscribe", "%zz", "#"]),
            ),
            st.builds(
                serverInfoFormField,
                st.sampled_from(["pubsub.example", "pubsub.bücher.example"]),
                st.text(min_size=1, max_size=10),
            ),
        )
    )
    def test_randomURI(self, value: str) -> None:
        """
        A URI is read or refused with a L{ValueError}; what it gives is a
        valid JID and a node name.
        """
        try:
            service, node = parsePubsubNodeURI(value)
        except ValueError:
            return
        self.assertEqual(parseJID(service).full(), service)
        self.assertTrue(node)
