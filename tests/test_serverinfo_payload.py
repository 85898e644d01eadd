# -*- test-case-name: tests.test_serverinfo_payload -*-
"""
Tests for L{xmppnetgraph.serverinfo.payload}: building our XEP-0485 item,
parsing the items of Prosody, ejabberd, Openfire and hostile publishers,
and the disco form helpers.
"""

from __future__ import annotations

import itertools
import random

from twisted.trial.unittest import SynchronousTestCase
from twisted.words.xish import domish
from wokkel.generic import parseXml

from xmppnetgraph.config import normalizeDomain
from xmppnetgraph.serverinfo.payload import (
    FORM_TYPE,
    NS_SERVERINFO,
    DomainInfo,
    PayloadError,
    RemoteDomain,
    ServerInfo,
    buildPayload,
    fromLinks,
    parsePayload,
    parsePubsubNodeURI,
    serverInfoFormField,
    validDomainName,
)

NS = NS_SERVERINFO


def parseXML(text: str) -> domish.Element:
    """
    @return: the one element in C{text}, parsed as an XML stream would.
    """
    return parseXml(text.encode("utf-8"))


def roundtrip(element: domish.Element) -> domish.Element:
    """
    @return: C{element} serialised and parsed again.
    """
    return parseXML(element.toXml())


def yes(domain: str) -> bool:
    """
    Every peer consents.
    """
    return True


def no(domain: str) -> bool:
    """
    No peer consents.
    """
    return False


class ValueTypeTests(SynchronousTestCase):
    """
    The value types are canonical and refuse impossible content.
    """

    def test_connectionsSorted(self) -> None:
        """
        Connections are kept sorted, so the order they came in does not
        matter.
        """
        self.assertEqual(
            RemoteDomain("a.example", ["outgoing", "incoming"]),
            RemoteDomain("a.example", ("incoming", "outgoing")),
        )
        self.assertEqual(
            RemoteDomain("a.example", ["outgoing", "incoming"]).connections,
            ("incoming", "outgoing"),
        )

    def test_remotesSortedAnonymousLast(self) -> None:
        """
        Remote domains are sorted by name; anonymous ones come last, ordered
        by their connections.
        """
        info = DomainInfo(
            "local.example",
            [
                RemoteDomain(None, ["outgoing"]),
                RemoteDomain("z.example"),
                RemoteDomain(None, ["incoming"]),
                RemoteDomain("a.example"),
            ],
        )
        self.assertEqual(
            [(r.name, r.connections) for r in info.remotes],
            [("a.example", ()), ("z.example", ()), (None, ("incoming",)), (None, ("outgoing",))],
        )

    def test_domainsSorted(self) -> None:
        """
        Domains are sorted by name.
        """
        info = ServerInfo([DomainInfo("b.example"), DomainInfo("a.example")])
        self.assertEqual([d.name for d in info.domains], ["a.example", "b.example"])

    def test_badConnectionType(self) -> None:
        """
        Only incoming, outgoing and bidi are connection types.
        """
        self.assertRaises(ValueError, RemoteDomain, "a.example", ["both"])
        self.assertRaises(ValueError, RemoteDomain, "a.example", [""])

    def test_emptyNames(self) -> None:
        """
        An empty name is neither a domain nor anonymous.
        """
        self.assertRaises(ValueError, RemoteDomain, "")
        self.assertRaises(ValueError, DomainInfo, "")


class BuildTests(SynchronousTestCase):
    """
    L{buildPayload} writes XEP-0485 items.
    """

    def test_named(self) -> None:
        """
        A named peer gets a C{name} and one C{connection} per stream.
        """
        info = ServerInfo(
            [DomainInfo("local.example", [RemoteDomain("peer.example", ["outgoing", "incoming"])])]
        )
        self.assertEqual(
            buildPayload(info).toXml(),
            "<serverinfo xmlns='urn:xmpp:serverinfo:0'><domain name='local.example'><federation>"
            "<remote-domain name='peer.example'>"
            "<connection type='incoming'/><connection type='outgoing'/>"
            "</remote-domain></federation></domain></serverinfo>",
        )

    def test_anonymous(self) -> None:
        """
        An anonymous peer's C{remote-domain} has no C{name} attribute at
        all.
        """
        info = ServerInfo([DomainInfo("local.example", [RemoteDomain(None, ["bidi"])])])
        element = buildPayload(info)
        remote = element.domain.federation.firstChildElement()
        self.assertEqual(remote.name, "remote-domain")
        self.assertNotIn("name", remote.attributes)
        self.assertEqual(
            element.toXml(),
            "<serverinfo xmlns='urn:xmpp:serverinfo:0'><domain name='local.example'><federation>"
            "<remote-domain><connection type='bidi'/></remote-domain>"
            "</federation></domain></serverinfo>",
        )

    def test_noPeers(self) -> None:
        """
        A domain without peers gets an empty C{federation}.
        """
        self.assertEqual(
            buildPayload(ServerInfo([DomainInfo("local.example")])).toXml(),
            "<serverinfo xmlns='urn:xmpp:serverinfo:0'>"
            "<domain name='local.example'><federation/></domain></serverinfo>",
        )

    def test_namespace(self) -> None:
        """
        Every element of the payload is in the XEP-0485 namespace.
        """
        info = ServerInfo([DomainInfo("local.example", [RemoteDomain("p.example", ["incoming"])])])
        element = roundtrip(buildPayload(info))
        uris = set()
        todo = [element]
        while todo:
            current = todo.pop()
            uris.add(current.uri)
            todo.extend(current.elements())
        self.assertEqual(uris, {NS})

    def test_escaping(self) -> None:
        """
        Names are escaped, so the output stays well-formed XML whatever the
        caller passes.
        """
        info = ServerInfo([DomainInfo("a'<b>&.example", [RemoteDomain("c\"d'.example")])])
        parsed = roundtrip(buildPayload(info))
        self.assertEqual(parsed.domain["name"], "a'<b>&.example")
        self.assertEqual(parsed.domain.federation.firstChildElement()["name"], "c\"d'.example")


class FromLinksTests(SynchronousTestCase):
    """
    L{fromLinks} turns the link table into the item content.
    """

    def test_oneRemotePerDomain(self) -> None:
        """
        All streams with one consenting peer become one named
        C{remote-domain} with one connection each.
        """
        info = fromLinks(
            "local.example",
            [
                ("peer.example", "incoming"),
                ("peer.example", "outgoing"),
                ("peer.example", "incoming"),
            ],
            yes,
            {"local.example"},
        )
        self.assertEqual(
            info,
            ServerInfo(
                [
                    DomainInfo(
                        "local.example",
                        [RemoteDomain("peer.example", ["incoming", "incoming", "outgoing"])],
                    )
                ]
            ),
        )

    def test_neverOwnDomains(self) -> None:
        """
        Links to the domain itself or to another of our local domains are
        left out.
        """
        info = fromLinks(
            "local.example",
            [
                ("local.example", "incoming"),
                ("pubsub.local.example", "outgoing"),
                ("peer.example", "outgoing"),
            ],
            yes,
            {"local.example", "pubsub.local.example"},
        )
        self.assertEqual([r.name for r in info.domains[0].remotes], ["peer.example"])

    def test_ownDomainWithoutLocalSet(self) -> None:
        """
        The domain itself is left out even if C{localDomains} does not list
        it.
        """
        info = fromLinks("local.example", [("local.example", "incoming")], yes, set())
        self.assertEqual(info.domains[0].remotes, ())

    def test_anonymousPerPeer(self) -> None:
        """
        Each peer that does not consent is its own anonymous entry, with its
        own connections; consenting peers are named.
        """
        consenting = {"named.example"}
        info = fromLinks(
            "local.example",
            [
                ("hidden1.example", "incoming"),
                ("named.example", "outgoing"),
                ("hidden2.example", "outgoing"),
                ("hidden1.example", "outgoing"),
            ],
            consenting.__contains__,
            {"local.example"},
        )
        self.assertEqual(
            info.domains[0].remotes,
            (
                RemoteDomain("named.example", ["outgoing"]),
                RemoteDomain(None, ["incoming", "outgoing"]),
                RemoteDomain(None, ["outgoing"]),
            ),
        )
        xml = buildPayload(info).toXml()
        self.assertNotIn("hidden", xml)

    def test_consentAskedOncePerDomain(self) -> None:
        """
        C{consents} is asked once per remote domain, not per stream.
        """
        asked: list[str] = []

        def consents(domain: str) -> bool:
            asked.append(domain)
            return True

        fromLinks(
            "l.example",
            [("p.example", "incoming"), ("p.example", "outgoing"), ("q.example", "incoming")],
            consents,
            set(),
        )
        self.assertEqual(sorted(asked), ["p.example", "q.example"])

    def test_consentRaises(self) -> None:
        """
        A peer whose consent lookup raises is not named, and the error is
        logged.
        """

        def consents(domain: str) -> bool:
            raise RuntimeError("broken")

        info = fromLinks("l.example", [("p.example", "incoming")], consents, set())
        self.assertEqual(info.domains[0].remotes, (RemoteDomain(None, ["incoming"]),))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_badDirectionSkipped(self) -> None:
        """
        A link with a direction that is no connection type is skipped.
        """
        info = fromLinks(
            "l.example", [("p.example", "sideways"), ("q.example", "incoming")], yes, set()
        )
        self.assertEqual([r.name for r in info.domains[0].remotes], ["q.example"])

    def test_deterministicBytes(self) -> None:
        """
        The same set of links, in any order, gives byte-identical XML.
        """
        links = [
            ("b.example", "incoming"),
            ("a.example", "outgoing"),
            ("a.example", "incoming"),
            ("h1.example", "incoming"),
            ("h2.example", "outgoing"),
            ("h2.example", "incoming"),
            ("c.example", "outgoing"),
        ]
        consenting = {"a.example", "b.example", "c.example"}
        outputs = set()
        rng = random.Random(4)
        for _ in range(30):
            rng.shuffle(links)
            info = fromLinks("l.example", links, consenting.__contains__, {"l.example"})
            outputs.add(buildPayload(info).toXml().encode("utf-8"))
        self.assertEqual(len(outputs), 1)

    def test_changeChangesBytes(self) -> None:
        """
        A changed link set gives different XML (the comparison the
        publisher relies on is not trivially true).
        """
        before = buildPayload(
            fromLinks("l.example", [("a.example", "incoming")], yes, set())
        ).toXml()
        after = buildPayload(
            fromLinks(
                "l.example", [("a.example", "incoming"), ("a.example", "outgoing")], yes, set()
            )
        ).toXml()
        self.assertNotEqual(before, after)

    def test_anonymousOrderHidesNames(self) -> None:
        """
        Anonymous peers are ordered by their connections only: swapping
        which hidden peer has which connections gives the same bytes.
        """
        one = fromLinks(
            "l.example", [("a.example", "incoming"), ("z.example", "outgoing")], no, set()
        )
        other = fromLinks(
            "l.example", [("a.example", "outgoing"), ("z.example", "incoming")], no, set()
        )
        self.assertEqual(buildPayload(one).toXml(), buildPayload(other).toXml())


PROSODY = """
<serverinfo xmlns='urn:xmpp:serverinfo:0'>
  <domain name='prosody.example'>
    <federation>
      <remote-domain name='peer.example'/>
      <remote-domain/>
      <remote-domain name='other.example'/>
      <remote-domain/>
    </federation>
  </domain>
</serverinfo>
"""

EJABBERD = """
<serverinfo xmlns='urn:xmpp:serverinfo:0'>
  <domain name='ejabberd.example'>
    <federation>
      <remote-domain name='peer.example'>
        <connection type='incoming'/>
        <connection type='outgoing'/>
      </remote-domain>
      <remote-domain name=''>
        <connection type='outgoing'/>
      </remote-domain>
    </federation>
  </domain>
</serverinfo>
"""

OPENFIRE = """
<serverinfo xmlns="urn:xmpp:serverinfo:0">
  <domain name="openfire.example">
    <federation>
      <remote-domain name="peer.example"><connection type="both"/></remote-domain>
      <remote-domain name="out.example"><connection type="incoming"/></remote-domain>
      <remote-domain><connection/></remote-domain>
    </federation>
  </domain>
  <query xmlns="jabber:iq:version"><name>Openfire</name><version>4.9.0</version></query>
</serverinfo>
"""

MULTI = """
<serverinfo xmlns='urn:xmpp:serverinfo:0'>
  <domain name='b.example'>
    <federation>
      <remote-domain name='a.example'><connection type='bidi'/></remote-domain>
    </federation>
  </domain>
  <domain name='a.example'>
    <federation>
      <remote-domain name='b.example'><connection type='bidi'/></remote-domain>
    </federation>
    <users xmlns='urn:example:stats'>42</users>
  </domain>
</serverinfo>
"""


class ParseTests(SynchronousTestCase):
    """
    L{parsePayload} reads every known publisher's style.
    """

    def test_xepExample(self) -> None:
        """
        The example of XEP-0485 section 4.
        """
        info = parsePayload(
            parseXML(
                """<serverinfo xmlns="urn:xmpp:serverinfo:0">
                <domain name="shakespeare.lit"><federation>
                <remote-domain name='denmark.lit'>
                <connection type="incoming"/><connection type="outgoing"/>
                </remote-domain>
                <remote-domain name='montague.net'><connection type="bidi"/></remote-domain>
                </federation></domain></serverinfo>"""
            )
        )
        self.assertEqual(
            info,
            ServerInfo(
                [
                    DomainInfo(
                        "shakespeare.lit",
                        [
                            RemoteDomain("denmark.lit", ["incoming", "outgoing"]),
                            RemoteDomain("montague.net", ["bidi"]),
                        ],
                    )
                ]
            ),
        )
        self.assertFalse(info.truncated)

    def test_minimal(self) -> None:
        """
        A domain without C{federation} has no peers.
        """
        info = parsePayload(
            parseXML(
                "<serverinfo xmlns='urn:xmpp:serverinfo:0'><domain name='x.example'/></serverinfo>"
            )
        )
        self.assertEqual(info, ServerInfo([DomainInfo("x.example")]))

    def test_prosody(self) -> None:
        """
        Prosody: no C{connection} children, anonymous peers as bare
        C{<remote-domain/>}.
        """
        info = parsePayload(parseXML(PROSODY))
        self.assertEqual(
            info.domains,
            (
                DomainInfo(
                    "prosody.example",
                    [
                        RemoteDomain("other.example"),
                        RemoteDomain("peer.example"),
                        RemoteDomain(None),
                        RemoteDomain(None),
                    ],
                ),
            ),
        )

    def test_ejabberd(self) -> None:
        """
        ejabberd: C{name=''} is an anonymous peer.
        """
        info = parsePayload(parseXML(EJABBERD))
        self.assertEqual(
            info.domains[0].remotes,
            (
                RemoteDomain("peer.example", ["incoming", "outgoing"]),
                RemoteDomain(None, ["outgoing"]),
            ),
        )

    def test_openfire(self) -> None:
        """
        Openfire: C{both} is C{bidi}; C{<remote-domain><connection/>} is an
        anonymous peer whose connection has no known type; the version
        query is ignored.
        """
        info = parsePayload(parseXML(OPENFIRE))
        self.assertEqual(
            info.domains,
            (
                DomainInfo(
                    "openfire.example",
                    [
                        RemoteDomain("out.example", ["incoming"]),
                        RemoteDomain("peer.example", ["bidi"]),
                        RemoteDomain(None),
                    ],
                ),
            ),
        )

    def test_multiDomain(self) -> None:
        """
        Several C{domain} elements are all read; unknown children of a
        domain are ignored.
        """
        info = parsePayload(parseXML(MULTI))
        self.assertEqual(
            info,
            ServerInfo(
                [
                    DomainInfo("a.example", [RemoteDomain("b.example", ["bidi"])]),
                    DomainInfo("b.example", [RemoteDomain("a.example", ["bidi"])]),
                ]
            ),
        )

    def test_unknownChildren(self) -> None:
        """
        Elements of other namespaces, and unknown elements anywhere, are
        ignored, even if their local names are C{domain} or
        C{remote-domain}.
        """
        info = parsePayload(
            parseXML(
                """<serverinfo xmlns='urn:xmpp:serverinfo:0'>
                <domain xmlns='urn:example:other' name='fake.example'/>
                <extra><domain name='nested.example'/></extra>
                <domain name='real.example'>
                  <federation>
                    <remote-domain xmlns='urn:example:other' name='fake-peer.example'/>
                    <remote-domain name='peer.example'>
                      <connection type='incoming'><junk/></connection>
                      <connection xmlns='urn:example:other' type='outgoing'/>
                      <note>text</note>
                    </remote-domain>
                    <something-else name='x.example'/>
                  </federation>
                  <query xmlns='jabber:iq:version'><name>x</name></query>
                  <remote-domain name='misplaced.example'/>
                </domain>
                text between elements
                </serverinfo>"""
            )
        )
        self.assertEqual(
            info,
            ServerInfo([DomainInfo("real.example", [RemoteDomain("peer.example", ["incoming"])])]),
        )

    def test_connectionTypesTolerant(self) -> None:
        """
        Types are read without regard to case and surrounding blanks;
        unknown types are skipped.
        """
        info = parsePayload(
            parseXML(
                """<serverinfo xmlns='urn:xmpp:serverinfo:0'><domain name='d.example'><federation>
                <remote-domain name='p.example'>
                  <connection type=' Incoming '/><connection type='BIDI'/>
                  <connection type='sideways'/>
                  <connection type=''/>
                </remote-domain></federation></domain></serverinfo>"""
            )
        )
        self.assertEqual(
            info.domains[0].remotes, (RemoteDomain("p.example", ["bidi", "incoming"]),)
        )

    def test_duplicatesMerged(self) -> None:
        """
        A named peer listed twice is one peer with all its connections; a
        domain listed twice is one domain; anonymous peers stay separate.
        """
        info = parsePayload(
            parseXML(
                """<serverinfo xmlns='urn:xmpp:serverinfo:0'>
                <domain name='d.example'><federation>
                  <remote-domain name='p.example'><connection type='incoming'/></remote-domain>
                  <remote-domain/>
                </federation></domain>
                <domain name='D.example'><federation>
                  <remote-domain name='P.EXAMPLE'><connection type='outgoing'/></remote-domain>
                  <remote-domain/>
                </federation></domain>
                </serverinfo>"""
            )
        )
        self.assertEqual(
            info,
            ServerInfo(
                [
                    DomainInfo(
                        "d.example",
                        [
                            RemoteDomain("p.example", ["incoming", "outgoing"]),
                            RemoteDomain(None),
                            RemoteDomain(None),
                        ],
                    )
                ]
            ),
        )

    def test_invalidNamesAnonymous(self) -> None:
        """
        A remote domain whose name is not a valid domain is an anonymous
        peer; a domain with an invalid name is dropped. Nothing raises.
        """
        bad = [
            "",
            "   ",
            "bad name",
            "a..b",
            "-a.example",
            "a-.example",
            "x" * 300,
            "user@host.example",
            "host.example/resource",
            "1.2.3.4",
            "[::1]",
            "a_b.example",
            "a.b\u3002.example",
            "l" * 64 + ".example",
        ]
        remotes = "".join(f"<remote-domain name={quoteAttribute(name)}/>" for name in bad)
        xml = (
            "<serverinfo xmlns='urn:xmpp:serverinfo:0'>"
            f"<domain name='d.example'><federation>{remotes}</federation></domain>"
            "<domain name='bad domain'>"
            "<federation><remote-domain name='p.example'/></federation></domain>"
            "<domain><federation><remote-domain name='q.example'/></federation></domain>"
            "</serverinfo>"
        )
        element = parseXML(xml)
        info = parsePayload(element)
        self.assertEqual([d.name for d in info.domains], ["d.example"])
        self.assertEqual(info.domains[0].remotes, tuple(RemoteDomain(None) for _ in bad))

    def test_namesNormalised(self) -> None:
        """
        Names are case-folded and nameprep'd; a trailing dot and blanks
        are dropped.
        """
        info = parsePayload(
            parseXML(
                "<serverinfo xmlns='urn:xmpp:serverinfo:0'>"
                "<domain name=' Local.Example. '><federation>"
                "<remote-domain name='B\u00dcCHER.example'/>"
                "<remote-domain name='xn--bcher-kva.example'/>"
                "</federation></domain></serverinfo>"
            )
        )
        self.assertEqual(info.domains[0].name, "local.example")
        self.assertEqual(
            [r.name for r in info.domains[0].remotes],
            ["b\u00fccher.example", "xn--bcher-kva.example"],
        )

    def test_notServerinfo(self) -> None:
        """
        A root that is not C{serverinfo} in the XEP-0485 namespace raises
        L{PayloadError}, which is a L{ValueError}.
        """
        for xml in [
            "<serverinfo xmlns='urn:xmpp:serverinfo:1'/>",
            "<serverinfo/>",
            "<item xmlns='http://jabber.org/protocol/pubsub'>"
            "<serverinfo xmlns='urn:xmpp:serverinfo:0'/></item>",
            "<domain xmlns='urn:xmpp:serverinfo:0' name='x.example'/>",
        ]:
            with self.subTest(xml=xml):
                error = self.assertRaises(PayloadError, parsePayload, parseXML(xml))
                self.assertIsInstance(error, ValueError)

    def test_notAnElement(self) -> None:
        """
        Something that is not an element at all raises L{PayloadError} too.
        """
        self.assertRaises(PayloadError, parsePayload, "serverinfo")
        self.assertRaises(PayloadError, parsePayload, None)

    def test_empty(self) -> None:
        """
        An empty C{serverinfo} is an empty L{ServerInfo}.
        """
        self.assertEqual(
            parsePayload(parseXML("<serverinfo xmlns='urn:xmpp:serverinfo:0'/>")), ServerInfo()
        )


def quoteAttribute(value: str) -> str:
    """
    @return: C{value} as a quoted XML attribute value.
    """
    return "'" + value.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;") + "'"


def hugeItem(remotes: int, domains: int = 1) -> domish.Element:
    """
    @return: a C{serverinfo} element with C{domains} domains of C{remotes}
        named peers each, built directly (no XML parser in between).
    """
    root = domish.Element((NS, "serverinfo"))
    for d in range(domains):
        federation = root.addElement("domain")
        federation["name"] = f"d{d}.example"
        federation = federation.addElement("federation")
        for i in range(remotes):
            remote = federation.addElement("remote-domain")
            remote["name"] = f"peer{i}.example"
            remote.addElement("connection")["type"] = "incoming"
    return root


class HostileTests(SynchronousTestCase):
    """
    L{parsePayload} stays within its limits on huge and hostile items.
    """

    def test_hugeTruncatedAtDefault(self) -> None:
        """
        100,000 remote domains are cut at the default limit of 50,000, and
        the result says so.
        """
        info = parsePayload(hugeItem(100_000))
        self.assertTrue(info.truncated)
        self.assertEqual(len(info.domains[0].remotes), 50_000)

    def test_remoteLimitAcrossDomains(self) -> None:
        """
        The remote-domain limit counts all domains together; later domains
        are not read at all.
        """
        info = parsePayload(hugeItem(10, domains=5), maxRemoteDomains=25)
        self.assertTrue(info.truncated)
        self.assertEqual([len(d.remotes) for d in info.domains], [10, 10, 5])

    def test_exactlyAtLimit(self) -> None:
        """
        An item exactly at the limits is not truncated.
        """
        info = parsePayload(hugeItem(10, domains=2), maxRemoteDomains=20, maxDomains=2)
        self.assertFalse(info.truncated)
        self.assertEqual(sum(len(d.remotes) for d in info.domains), 20)

    def test_domainLimit(self) -> None:
        """
        At most C{maxDomains} C{domain} elements are read.
        """
        info = parsePayload(hugeItem(1, domains=10), maxDomains=3)
        self.assertTrue(info.truncated)
        self.assertEqual([d.name for d in info.domains], ["d0.example", "d1.example", "d2.example"])

    def test_connectionLimit(self) -> None:
        """
        At most C{maxConnections} connections are kept per peer, also when
        a peer is listed many times.
        """
        root = domish.Element((NS, "serverinfo"))
        domain = root.addElement("domain")
        domain["name"] = "d.example"
        federation = domain.addElement("federation")
        flood = federation.addElement("remote-domain")
        flood["name"] = "flood.example"
        for _ in range(100_000):
            flood.addElement("connection")["type"] = "incoming"
        for _ in range(100):
            again = federation.addElement("remote-domain")
            again["name"] = "again.example"
            for _ in range(5):
                again.addElement("connection")["type"] = "outgoing"
        info = parsePayload(root, maxConnections=8)
        self.assertTrue(info.truncated)
        self.assertEqual(
            info.domains[0].remotes,
            (
                RemoteDomain("again.example", ["outgoing"] * 8),
                RemoteDomain("flood.example", ["incoming"] * 8),
            ),
        )

    def test_deepJunk(self) -> None:
        """
        Deeply nested junk below a connection, a remote domain and the root
        is never walked into.
        """
        root = domish.Element((NS, "serverinfo"))
        domain = root.addElement("domain")
        domain["name"] = "d.example"
        remote = domain.addElement("federation").addElement("remote-domain")
        remote["name"] = "p.example"
        connection = remote.addElement("connection")
        connection["type"] = "outgoing"
        for parent in (connection, remote, root):
            current = parent
            for _ in range(50_000):
                current = current.addElement("remote-domain")
                current["name"] = "deep.example"
        info = parsePayload(root)
        self.assertEqual(
            info, ServerInfo([DomainInfo("d.example", [RemoteDomain("p.example", ["outgoing"])])])
        )

    def test_deepJunkFromXML(self) -> None:
        """
        The same, from real XML through Twisted's parser.
        """
        depth = 5_000
        junk = "<junk>" * depth + "</junk>" * depth
        info = parsePayload(
            parseXML(
                "<serverinfo xmlns='urn:xmpp:serverinfo:0'>"
                + junk
                + "<domain name='d.example'><federation>"
                "<remote-domain name='p.example'>"
                + junk
                + "</remote-domain>"
                + junk
                + "</federation></domain></serverinfo>"
            )
        )
        self.assertEqual(info, ServerInfo([DomainInfo("d.example", [RemoteDomain("p.example")])]))

    def test_unicodeNameBudget(self) -> None:
        """
        Only C{maxUnicodeNames} non-ASCII names are checked; later ones
        count as invalid and the result is truncated. ASCII names are not
        limited by it.
        """
        root = domish.Element((NS, "serverinfo"))
        domain = root.addElement("domain")
        domain["name"] = "d.example"
        federation = domain.addElement("federation")
        for name in ["\u00e4.example", "\u00f6.example", "ascii.example", "\u00fc.example"]:
            federation.addElement("remote-domain")["name"] = name
        info = parsePayload(root, maxUnicodeNames=2)
        self.assertTrue(info.truncated)
        self.assertEqual(
            [r.name for r in info.domains[0].remotes],
            ["ascii.example", "\u00e4.example", "\u00f6.example", None],
        )
        self.assertFalse(parsePayload(root, maxUnicodeNames=3).truncated)

    def test_hugeName(self) -> None:
        """
        A megabyte-long name is anonymous (and not fed to stringprep).
        """
        root = domish.Element((NS, "serverinfo"))
        domain = root.addElement("domain")
        domain["name"] = "d.example"
        domain.addElement("federation").addElement("remote-domain")["name"] = "\u00e4" * 1_000_000
        info = parsePayload(root)
        self.assertEqual(info.domains[0].remotes, (RemoteDomain(None),))


class RoundtripTests(SynchronousTestCase):
    """
    What L{buildPayload} writes, L{parsePayload} reads back unchanged.
    """

    def test_roundtrip(self) -> None:
        """
        Named and anonymous peers, several connections and several domains
        survive serialisation and parsing.
        """
        info = ServerInfo(
            [
                DomainInfo(
                    "a.example",
                    [
                        RemoteDomain("p.example", ["incoming", "outgoing", "outgoing"]),
                        RemoteDomain("q.example", ["bidi"]),
                        RemoteDomain(None, ["incoming"]),
                        RemoteDomain(None, ["incoming"]),
                        RemoteDomain(None),
                    ],
                ),
                DomainInfo("b.example"),
                DomainInfo("\u00e4.example", [RemoteDomain("\u00f6.example", ["outgoing"])]),
            ]
        )
        self.assertEqual(parsePayload(roundtrip(buildPayload(info))), info)

    def test_fromLinksRoundtrip(self) -> None:
        """
        An item made from links reads back as the same value.
        """
        links = [(f"p{i % 50}.example", "incoming" if i % 3 else "outgoing") for i in range(200)]
        info = fromLinks("l.example", links, lambda d: d < "p3", {"l.example"})
        self.assertEqual(parsePayload(roundtrip(buildPayload(info))), info)


class DomainNameTests(SynchronousTestCase):
    """
    L{validDomainName} agrees with L{normalizeDomain}, which the rest of the
    node uses, but is fast for plain ASCII names.
    """

    def test_agreesWithNormalizeDomain(self) -> None:
        """
        For a mix of valid and invalid names (without a trailing dot, which
        only L{validDomainName} drops), the result is what
        L{normalizeDomain} gives, or L{None} where it raises.
        """
        labels = [
            "a",
            "Z9",
            "xn--bcher-kva",
            "-x",
            "x-",
            "a_b",
            "b\u00fccher",
            "1",
            "255",
            "l" * 63,
            "l" * 64,
            "",
        ]
        for parts in itertools.product(labels, repeat=3):
            name = ".".join(parts)
            if name.endswith("."):
                continue
            try:
                expected: str | None = normalizeDomain(name)
            except ValueError:
                expected = None
            with self.subTest(name=name):
                self.assertEqual(validDomainName(name), expected)

    def test_blanksAndTrailingDot(self) -> None:
        """
        Surrounding blanks and one trailing dot are dropped.
        """
        self.assertEqual(validDomainName(" Example.ORG. "), "example.org")
        self.assertIsNone(validDomainName("example.org.."))
        self.assertIsNone(validDomainName(None))


class FormTests(SynchronousTestCase):
    """
    The C{serverinfo-pubsub-node} field of the disco form.
    """

    def test_formType(self) -> None:
        """
        The form type is the one XEP-0485 shares with XEP-0157.
        """
        self.assertEqual(FORM_TYPE, "http://jabber.org/network/serverinfo")

    def test_field(self) -> None:
        """
        The value is the XEP-0060 URI of the node.
        """
        self.assertEqual(
            serverInfoFormField("pubsub.a.example"), "xmpp:pubsub.a.example?;node=serverinfo"
        )
        self.assertEqual(
            serverInfoFormField("pubsub.a.example", "serverinfo/a.example"),
            "xmpp:pubsub.a.example?;node=serverinfo/a.example",
        )
        self.assertEqual(
            serverInfoFormField("ps.a.example", "a b;c"), "xmpp:ps.a.example?;node=a%20b%3Bc"
        )

    def test_fieldRoundtrip(self) -> None:
        """
        L{parsePubsubNodeURI} reads what L{serverInfoFormField} writes, even
        for awkward node names.
        """
        for node in ["serverinfo", "serverinfo/a.example", "a b;c&d=e?#%", "n\u00f6de"]:
            with self.subTest(node=node):
                self.assertEqual(
                    parsePubsubNodeURI(serverInfoFormField("pubsub.a.example", node)),
                    ("pubsub.a.example", node),
                )

    def test_parseVariants(self) -> None:
        """
        The forms other servers and older texts use are understood.
        """
        cases = {
            "xmpp:pubsub.a.example?;node=serverinfo": ("pubsub.a.example", "serverinfo"),
            "xmpp:pubsub.a.example?node=serverinfo": ("pubsub.a.example", "serverinfo"),
            "xmpp:pubsub.a.example?pubsub;node=serverinfo": ("pubsub.a.example", "serverinfo"),
            "xmpp:pubsub.a.example?pubsub;action=subscribe;node=serverinfo": (
                "pubsub.a.example",
                "serverinfo",
            ),
            "xmpp:pubsub.a.example?;node=serverinfo%2Fa.example": (
                "pubsub.a.example",
                "serverinfo/a.example",
            ),
            "XMPP:PubSub.A.Example?;NODE=serverinfo": ("pubsub.a.example", "serverinfo"),
            "  xmpp:pubsub.a.example?;node=serverinfo\n": ("pubsub.a.example", "serverinfo"),
            "xmpp:pubsub.a.example?x=1&node=s": ("pubsub.a.example", "s"),
            "xmpp://admin@a.example/pubsub.a.example?;node=serverinfo": (
                "pubsub.a.example",
                "serverinfo",
            ),
            "xmpp:pubsub.%C3%A4.example?;node=serverinfo": ("pubsub.\u00e4.example", "serverinfo"),
            "xmpp:pep@a.example?;node=serverinfo#frag": ("pep@a.example", "serverinfo"),
        }
        for value, expected in cases.items():
            with self.subTest(value=value):
                self.assertEqual(parsePubsubNodeURI(value), expected)

    def test_parseErrors(self) -> None:
        """
        Values that name no pub-sub node raise L{ValueError}.
        """
        for value in [
            "",
            "pubsub.a.example",
            "https://pubsub.a.example/?node=serverinfo",
            "xmpp:pubsub.a.example",
            "xmpp:pubsub.a.example?;node=",
            "xmpp:?;node=serverinfo",
            "xmpp:a..b?;node=serverinfo",
            "xmpp:bad host?;node=serverinfo",
            "xmpp:pubsub.a.example?;node=%ff",
            "xmpp://admin@a.example?;node=serverinfo",
        ]:
            with self.subTest(value=value):
                self.assertRaises(ValueError, parsePubsubNodeURI, value)
