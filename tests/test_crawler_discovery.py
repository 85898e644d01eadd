# -*- test-case-name: tests.test_crawler_discovery -*-
"""
Tests for L{xmppnetgraph.crawler.discovery}: reading the report of one
domain from its items (every publisher variant of DESIGN.md, from the
fixtures in C{tests/fixtures/serverinfo/}), each step and status of the
discovery of a domain against a scripted federation behind a real
L{LocalComponent} on a L{task.Clock}, and discovery between two real nodes
of ours on loopback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.words.protocols.jabber.error import StanzaError
from twisted.words.protocols.jabber.jid import JID
from twisted.words.protocols.jabber.xmlstream import toResponse
from twisted.words.xish import domish
from wokkel.component import Router
from wokkel.disco import DiscoClientProtocol
from wokkel.generic import XmlPipe, parseXml
from wokkel.pubsub import PubSubClient

from tests.nodes import waitFor
from tests.test_serverinfo_federation import NodesMixin, publisherOf, settled
from xmppnetgraph.component import LocalComponent
from xmppnetgraph.crawler.discovery import (
    BAD_ITEM,
    ERROR,
    FETCH_FAILED,
    MAX_ITEMS_CHECKED,
    NO_CONSENT,
    NO_ITEM,
    NO_NODE,
    NO_PUBSUB,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PUBSUB,
    NS_VERSION,
    PUBLISHES,
    STATUSES,
    UNREACHABLE,
    Discoverer,
    Discovery,
    ReportResult,
    reportFromItems,
)
from xmppnetgraph.model import DiscoveryStep, DomainFacts
from xmppnetgraph.serverinfo.payload import NS_SERVERINFO, RemoteDomain

FIXTURES = Path(__file__).parent / "fixtures" / "serverinfo"

LOCAL = "a.example"
D = "d.example"
PUBSUB = "pubsub.d.example"
IQ_TIMEOUT = 5.0


def fixtureItems(name: str) -> list[domish.Element]:
    """
    @return: the C{item} elements of the fixture C{name}.xml.
    """
    items = parseXml((FIXTURES / f"{name}.xml").read_bytes())
    return [child for child in items.elements() if child.name == "item"]


def itemsOf(xml: str) -> list[domish.Element]:
    """
    @return: the C{item} elements of an C{<items/>} written as XML (in the
        pub-sub namespace unless it says otherwise).
    """
    items = parseXml(xml.encode("utf-8"))
    return [child for child in items.elements() if child.name == "item"]


def item(payload: str, identifier: str = "current") -> str:
    """
    @return: an C{items} element holding one item with C{payload}.
    """
    return (
        f"<items xmlns='{NS_PUBSUB}' node='serverinfo'>"
        f"<item id='{identifier}'>{payload}</item></items>"
    )


def serverinfo(*domains: str) -> str:
    """
    @return: a C{serverinfo} payload with one C{domain} element per name,
        each with one named peer C{peer.example}.
    """
    body = "".join(
        f"<domain name='{name}'><federation><remote-domain name='peer.example'>"
        "<connection type='bidi'/></remote-domain></federation></domain>"
        for name in domains
    )
    return f"<serverinfo xmlns='{NS_SERVERINFO}'>{body}</serverinfo>"


class ReportFromItemsTests(SynchronousTestCase):
    """
    L{reportFromItems} picks the item, keeps only the domain asked about,
    and accepts what every known publisher writes (the payload parser's own
    cases are in L{tests.test_serverinfo_payload}).
    """

    def test_prosody(self) -> None:
        """
        Prosody: item id other than C{current}, no connection children,
        bare C{<remote-domain/>} peers; the sibling virtual host described
        in the same item is ignored (and named as such), though it stays a
        peer of the domain asked.
        """
        result = reportFromItems("prosody.example", fixtureItems("prosody"), 1000)
        self.assertEqual(result.status, PUBLISHES)
        self.assertEqual(
            result.report,
            (
                RemoteDomain("chat.prosody.example"),
                RemoteDomain("peer.example"),
                RemoteDomain(None),
                RemoteDomain(None),
            ),
        )
        self.assertEqual(result.ignored, ("chat.prosody.example",))
        self.assertEqual(result.itemIdentifier, "5f2c1a0e-prosody")
        self.assertFalse(result.truncated)
        self.assertEqual(
            result.detail,
            "item '5f2c1a0e-prosody' read; 1 other domain in it ignored",
        )

    def test_siblingOnlyCountsForItself(self) -> None:
        """
        The same Prosody item, read for the sibling host, gives the sibling's
        peers only: a report counts for the domain whose discovery led to it.
        """
        result = reportFromItems("chat.prosody.example", fixtureItems("prosody"), 1000)
        self.assertEqual(
            result.report, (RemoteDomain("elsewhere.example"), RemoteDomain("prosody.example"))
        )
        self.assertEqual(result.ignored, ("prosody.example",))

    def test_ejabberd(self) -> None:
        """
        ejabberd: incoming and outgoing connections, C{name=''} anonymous,
        a foreign-namespace child of C{domain} ignored.
        """
        result = reportFromItems("ejabberd.example", fixtureItems("ejabberd"), 1000)
        self.assertEqual(
            result.report,
            (
                RemoteDomain("in.example", ["incoming"]),
                RemoteDomain("peer.example", ["incoming", "outgoing"]),
                RemoteDomain(None, ["outgoing"]),
            ),
        )
        self.assertEqual(
            (result.status, result.ignored, result.detail), (PUBLISHES, (), "item 'current' read")
        )

    def test_openfire(self) -> None:
        """
        Openfire: C{both} is C{bidi}; C{<remote-domain><connection/>} is an
        anonymous peer without known connections; the version query under
        C{serverinfo} is ignored.
        """
        result = reportFromItems("openfire.example", fixtureItems("openfire"), 1000)
        self.assertEqual(
            result.report,
            (
                RemoteDomain("out.example", ["incoming"]),
                RemoteDomain("peer.example", ["bidi"]),
                RemoteDomain(None),
            ),
        )

    def test_severalDomainElementsMerged(self) -> None:
        """
        Two C{domain} elements for the domain (one with its name in upper
        case and a trailing dot) are merged; the one for another domain is
        ignored.
        """
        payload = (
            f"<serverinfo xmlns='{NS_SERVERINFO}'>"
            "<domain name='d.example'><federation>"
            "<remote-domain name='x.example'/></federation></domain>"
            "<domain name='other.example'><federation>"
            "<remote-domain name='y.example'/></federation></domain>"
            "<domain name='D.Example.'><federation><remote-domain name='z.example'>"
            "<connection type='outgoing'/></remote-domain></federation></domain>"
            "</serverinfo>"
        )
        result = reportFromItems(D, itemsOf(item(payload)), 1000)
        self.assertEqual(
            result.report, (RemoteDomain("x.example"), RemoteDomain("z.example", ["outgoing"]))
        )
        self.assertEqual(result.ignored, ("other.example",))

    def test_unknownNamespacedChildren(self) -> None:
        """
        Children in other namespaces under C{serverinfo} and C{domain}, and
        a C{domain} element of another namespace naming the domain, change
        nothing.
        """
        payload = (
            f"<serverinfo xmlns='{NS_SERVERINFO}'>"
            "<query xmlns='jabber:iq:version'><name>x</name></query>"
            "<domain xmlns='urn:example:other' name='d.example'><federation>"
            "<remote-domain name='fake.example'/></federation></domain>"
            "<domain name='d.example'><count xmlns='urn:example:stats'>7</count>"
            "<federation><remote-domain name='x.example'/></federation></domain>"
            "</serverinfo>"
        )
        result = reportFromItems(D, itemsOf(item(payload)), 1000)
        self.assertEqual((result.status, result.report), (PUBLISHES, (RemoteDomain("x.example"),)))

    def test_firstItemWithPayload(self) -> None:
        """
        Items come newest first: the first one holding a C{serverinfo}
        payload is read, whatever its id; later ones are not.
        """
        items = itemsOf(
            f"<items xmlns='{NS_PUBSUB}'>"
            "<item id='junk'><other xmlns='urn:example:x'/></item>"
            f"<item id='2024-05-01'>{serverinfo(D)}</item>"
            f"<item id='current'>{serverinfo('other.example')}</item>"
            "</items>"
        )
        result = reportFromItems(D, items, 1000)
        self.assertEqual(result.itemIdentifier, "2024-05-01")
        self.assertEqual(result.report, (RemoteDomain("peer.example", ["bidi"]),))
        self.assertEqual(result.ignored, ())

    def test_notificationItems(self) -> None:
        """
        Items of a pub-sub notification (the C{pubsub#event} namespace) are
        read the same way.
        """
        items = itemsOf(
            "<items xmlns='http://jabber.org/protocol/pubsub#event' node='serverinfo'>"
            f"<item id='current'>{serverinfo(D)}</item></items>"
        )
        result = reportFromItems(D, items, 1000)
        self.assertEqual(
            (result.status, result.report), (PUBLISHES, (RemoteDomain("peer.example", ["bidi"]),))
        )

    def test_noItems(self) -> None:
        """
        No items: L{NO_ITEM}.
        """
        self.assertEqual(
            reportFromItems(D, [], 1000), ReportResult(NO_ITEM, "the node has no item")
        )

    def test_noPayload(self) -> None:
        """
        Items without a C{serverinfo} payload: L{BAD_ITEM}, saying what the
        first holds.
        """
        items = itemsOf(
            f"<items xmlns='{NS_PUBSUB}'><item id='current'>"
            "<serverinfo xmlns='urn:xmpp:serverinfo:1'/></item><item id='b'/></items>"
        )
        self.assertEqual(
            reportFromItems(D, items, 1000),
            ReportResult(
                BAD_ITEM,
                "no urn:xmpp:serverinfo:0 serverinfo payload in the 2 items (item 'current'"
                " holds <serverinfo> in namespace 'urn:xmpp:serverinfo:1')",
                itemIdentifier="current",
            ),
        )

    def test_otherDomainOnly(self) -> None:
        """
        A payload describing other domains only: L{BAD_ITEM}, naming them;
        nothing counts.
        """
        result = reportFromItems(D, itemsOf(item(serverinfo("b.example", "c.example"))), 1000)
        self.assertEqual(
            result,
            ReportResult(
                BAD_ITEM,
                "item 'current' has no domain element for d.example:"
                " it describes only 2 other domains",
                ignored=("b.example", "c.example"),
                itemIdentifier="current",
            ),
        )

    def test_noValidDomain(self) -> None:
        """
        A payload whose only domain element has an invalid name: L{BAD_ITEM}.
        """
        result = reportFromItems(D, itemsOf(item(serverinfo("not a domain!"))), 1000)
        self.assertEqual(result.status, BAD_ITEM)
        self.assertIn("no domain element with a valid name at all", result.detail)
        self.assertIsNone(result.report)

    def test_ignoredLoggedOnce(self) -> None:
        """
        However many other domains an item describes, one log line says so,
        naming a few; C{ignored} keeps at most 100, sorted; the detail
        only counts them.
        """
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        names = [f"h{i:03}.example" for i in range(150)]
        result = reportFromItems(D, itemsOf(item(serverinfo(*names, D))), 1000)
        self.assertEqual(result.status, PUBLISHES)
        self.assertEqual(result.ignored, tuple(sorted(names)[:100]))
        # The detail (shown by the API) counts them; names only in the log.
        self.assertIn("150 other domains in it ignored", result.detail)
        self.assertNotIn("h000.example", result.detail)
        ignoredLines = [e for e in observer if "other domains" in e["log_format"]]
        self.assertEqual(len(ignoredLines), 1)
        self.assertEqual(ignoredLines[0]["count"], 150)

    def test_domainElementsBounded(self) -> None:
        """
        Only the first 1000 C{domain} elements are looked at: a domain
        described after them is not found, and the detail says why.
        """
        names = [f"h{i:04}.example" for i in range(1000)]
        result = reportFromItems(D, itemsOf(item(serverinfo(*names, D))), 1000)
        self.assertEqual((result.status, result.truncated), (BAD_ITEM, True))
        self.assertIn("(only its first 1000 domain elements are read)", result.detail)

    def test_maxRemotes(self) -> None:
        """
        A report of 20,000 peers is cut at C{maxRemotes}, and says so,
        quickly.
        """
        remotes = "".join(f"<remote-domain name='p{i}.example'/>" for i in range(20_000))
        payload = (
            f"<serverinfo xmlns='{NS_SERVERINFO}'><domain name='d.example'><federation>"
            f"{remotes}</federation></domain></serverinfo>"
        )
        items = itemsOf(item(payload))
        started = time.monotonic()
        result = reportFromItems(D, items, 100)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertTrue(result.truncated)
        self.assertEqual(len(result.report or ()), 100)
        self.assertIn("cut at the limits: at most 100 remote domains", result.detail)

    def test_otherDomainsDoNotUseTheBudget(self) -> None:
        """
        The remote-domain cap counts the domain's own peers only: peers of
        other domains listed before it do not push its peers out.
        """
        many = "".join(f"<remote-domain name='p{i}.example'/>" for i in range(50))
        payload = (
            f"<serverinfo xmlns='{NS_SERVERINFO}'>"
            f"<domain name='other.example'><federation>{many}</federation></domain>"
            "<domain name='d.example'><federation>"
            "<remote-domain name='x.example'/></federation></domain>"
            "</serverinfo>"
        )
        result = reportFromItems(D, itemsOf(item(payload)), 10)
        self.assertEqual((result.report, result.truncated), ((RemoteDomain("x.example"),), False))


# -- discovery flows against a scripted federation ----------------------------


class Federation:
    """
    The remote side behind the router's default route: answers each IQ
    from a table keyed by (recipient, kind); kinds are C{"info"},
    C{"items"}, C{"pubsub"} and C{"version"}.

    An answer is the XML of the result's child, a L{StanzaError}, or
    L{None} for no answer at all; without an entry, the answer is
    C{service-unavailable}.

    @ivar asked: (recipient, kind) of every IQ, in order.
    @ivar sent: every IQ as it arrived.
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        pipe = XmlPipe()
        router.addRoute(None, pipe.sink)
        pipe.source.addObserver("/iq", self._received)
        self.answers: dict[tuple[str, str], str | StanzaError | None] = {}
        self.asked: list[tuple[str, str]] = []
        self.sent: list[domish.Element] = []

    def answer(self, to: str, kind: str, answer: str | StanzaError | None) -> None:
        """
        Answer IQs of C{kind} to C{to} with C{answer}.
        """
        self.answers[(to, kind)] = answer

    def _received(self, iq: domish.Element) -> None:
        (child,) = list(iq.elements())
        kind = {
            NS_DISCO_INFO: "info",
            NS_DISCO_ITEMS: "items",
            NS_PUBSUB: "pubsub",
            NS_VERSION: "version",
        }[child.uri]
        key = (iq["to"], kind)
        self.asked.append(key)
        self.sent.append(iq)
        answer = self.answers.get(key, StanzaError("service-unavailable"))
        if answer is None:
            return
        if isinstance(answer, StanzaError):
            response = answer.toResponse(iq)
        else:
            response = toResponse(iq, "result")
            response.addChild(parseXml(answer.encode("utf-8")))
        self.router.route(response)


def info(
    *features: str, identities: tuple[tuple[str, str], ...] = (("server", "im"),), forms: str = ""
) -> str:
    """
    @return: a disco#info query with these features, identities and forms.
    """
    body = "".join(f"<identity category='{c}' type='{t}'/>" for c, t in identities)
    body += "".join(f"<feature var='{f}'/>" for f in features)
    return f"<query xmlns='{NS_DISCO_INFO}'>{body}{forms}</query>"


def form(
    *values: str, formType: str = "http://jabber.org/network/serverinfo", extra: str = ""
) -> str:
    """
    @return: a XEP-0128 form with C{serverinfo-pubsub-node} holding C{values}.
    """
    valueXml = "".join(f"<value>{v}</value>" for v in values)
    return (
        "<x xmlns='jabber:x:data' type='result'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{formType}</value></field>"
        f"{extra}<field var='serverinfo-pubsub-node'>{valueXml}</field></x>"
    )


def items(*jids: str, withNode: tuple[str, ...] = ()) -> str:
    """
    @return: a disco#items query listing C{jids} (and C{withNode} entries,
        which carry a node).
    """
    body = "".join(f"<item jid='{j}'/>" for j in jids)
    body += "".join(f"<item jid='{j}' node='n'/>" for j in withNode)
    return f"<query xmlns='{NS_DISCO_ITEMS}'>{body}</query>"


VERSION = (
    f"<query xmlns='{NS_VERSION}'><name>Prosody</name><version>13.0.1</version>"
    "<os>Linux 6.1 secret-host</os></query>"
)
CONSENTS = info(NS_DISCO_INFO, NS_SERVERINFO)
PAYLOAD = f"<pubsub xmlns='{NS_PUBSUB}'>{item(serverinfo(D))}</pubsub>"
REPORT = (RemoteDomain("peer.example", ["bidi"]),)


class DiscovererTests(SynchronousTestCase):
    """
    L{Discoverer.discover} on a real L{LocalComponent} for C{a.example}
    (IQ timeout 5 s on a L{task.Clock}), the remote side scripted by a
    L{Federation}.
    """

    def setUp(self) -> None:
        """
        Start the component with a disco and a pub-sub client handler.
        """
        self.clock = task.Clock()
        router = Router()
        self.component = LocalComponent(router, [LOCAL], self.clock, iqTimeout=IQ_TIMEOUT)
        self.disco = DiscoClientProtocol()
        self.disco.setHandlerParent(self.component)
        self.pubsub = PubSubClient()
        self.pubsub.setHandlerParent(self.component)
        self.component.startService()
        self.addCleanup(self.component.stopService)
        self.remote = Federation(router)

    def discover(self, domain: str = D, **kwargs: Any) -> Discovery:
        """
        @return: the discovery of C{domain}, which must be done without the
            clock moving.
        """
        return self.successResultOf(self.discoverer(**kwargs).discover(domain))

    def discoverer(self, **kwargs: Any) -> Discoverer:
        """
        @return: a discoverer on the test's handlers, as C{a.example}.
        """
        return Discoverer(self.disco, self.pubsub, LOCAL, **kwargs)

    def publisher(self, where: str = "form") -> None:
        """
        Script C{d.example} as a consenting publisher, found through its
        form (C{where="form"}) or its disco#items (C{"items"}).
        """
        forms = form(f"xmpp:{PUBSUB}?;node=serverinfo") if where == "form" else ""
        self.remote.answer(D, "info", info(NS_DISCO_INFO, NS_SERVERINFO, forms=forms))
        self.remote.answer(D, "items", items("conference.d.example", PUBSUB))
        self.remote.answer(
            "conference.d.example", "info", info(identities=(("conference", "text"),))
        )
        self.remote.answer(PUBSUB, "info", info(identities=(("pubsub", "service"),)))
        self.remote.answer(PUBSUB, "pubsub", PAYLOAD)
        self.remote.answer(D, "version", VERSION)

    def test_formPublishes(self) -> None:
        """
        The form names the node: disco#info, the items of that node (any
        node name: Prosody's C{serverinfo/<host>}) and the version are
        asked, nothing else; the report counts, with every step.
        """
        self.remote.answer(
            D, "info", info(NS_SERVERINFO, forms=form(f"xmpp:{PUBSUB}?;node=serverinfo/d.example"))
        )
        self.remote.answer(PUBSUB, "pubsub", PAYLOAD)
        self.remote.answer(D, "version", VERSION)
        found = self.discover()
        self.assertEqual(self.remote.asked, [(D, "info"), (PUBSUB, "pubsub"), (D, "version")])
        self.assertEqual(
            found,
            Discovery(
                D,
                DomainFacts(
                    PUBLISHES,
                    reachable=True,
                    publishes=True,
                    consents=True,
                    softwareName="Prosody",
                    softwareVersion="13.0.1",
                    steps=[
                        DiscoveryStep("disco#info", True, "lists urn:xmpp:serverinfo:0"),
                        DiscoveryStep(
                            "serverinfo form",
                            True,
                            "serverinfo-pubsub-node names node serverinfo/d.example"
                            " on pubsub.d.example",
                        ),
                        DiscoveryStep(
                            "items pubsub.d.example node serverinfo/d.example",
                            True,
                            "item 'current' read",
                        ),
                        DiscoveryStep("version", True, "Prosody 13.0.1"),
                    ],
                ),
                PUBSUB,
                "serverinfo/d.example",
                REPORT,
            ),
        )

    def test_requests(self) -> None:
        """
        Every request comes from our bare domain; the items request asks for
        one item of the node, without an item id.
        """
        self.publisher()
        self.discover()
        self.assertEqual({iq["from"] for iq in self.remote.sent}, {LOCAL})
        (request,) = [iq for iq in self.remote.sent if iq["to"] == PUBSUB]
        self.assertEqual(request["type"], "get")
        itemsElement = request.pubsub.items
        self.assertEqual((itemsElement["node"], itemsElement["max_items"]), ("serverinfo", "1"))
        self.assertEqual(list(itemsElement.elements()), [])

    def test_versionWithoutOS(self) -> None:
        """
        The version answer's OS is never kept or shown.
        """
        self.publisher()
        found = self.discover()
        self.assertNotIn("Linux", repr(found))
        self.assertNotIn("secret-host", repr(found))

    def test_refreshGivesEqualFacts(self) -> None:
        """
        Discovering an unchanged domain again, later, gives an equal result.
        """
        self.publisher("items")
        first = self.discover()
        self.clock.advance(3600)
        self.assertEqual(self.discover(), first)

    def test_unreachable(self) -> None:
        """
        C{remote-server-not-found} for disco#info: unreachable, and nothing
        else is asked.
        """
        self.remote.answer(D, "info", StanzaError("remote-server-not-found"))
        found = self.discover()
        self.assertEqual(
            found.facts,
            DomainFacts(
                UNREACHABLE,
                reachable=False,
                error="d.example: remote-server-not-found",
                steps=[DiscoveryStep("disco#info", False, "d.example: remote-server-not-found")],
            ),
        )
        self.assertEqual(self.remote.asked, [(D, "info")])
        self.assertEqual((found.service, found.node, found.report), (None, None, None))

    def test_remoteServerTimeout(self) -> None:
        """
        C{remote-server-timeout} is unreachable too.
        """
        self.remote.answer(D, "info", StanzaError("remote-server-timeout"))
        self.assertEqual(self.discover().facts.status, UNREACHABLE)

    def test_timeout(self) -> None:
        """
        No answer to disco#info within the IQ timeout: unreachable.
        """
        self.remote.answer(D, "info", None)
        d = self.discoverer().discover(D)
        self.clock.advance(IQ_TIMEOUT - 0.1)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        facts = self.successResultOf(d).facts
        self.assertEqual(
            (facts.status, facts.reachable, facts.error),
            (UNREACHABLE, False, "d.example: no answer (timeout)"),
        )

    def test_ownTimeout(self) -> None:
        """
        The C{timeout} given to the discoverer replaces the host's.
        """
        self.remote.answer(D, "info", None)
        d = self.discoverer(timeout=1.0).discover(D)
        self.clock.advance(1.0)
        self.assertEqual(self.successResultOf(d).facts.status, UNREACHABLE)

    def test_connectionLost(self) -> None:
        """
        A host whose stream ends fails what is pending with
        L{ConnectionLost} (a Wokkel C{StreamManager} does): unreachable, not
        a failed discovery.
        """
        self.remote.answer(D, "info", None)
        d = self.discoverer().discover(D)
        (pending,) = self.component._pending.values()
        pending.errback(ConnectionLost())
        facts = self.successResultOf(d).facts
        self.assertEqual(
            (facts.status, facts.error),
            (UNREACHABLE, "d.example: no answer (our connection was lost)"),
        )

    def test_programmingErrorFails(self) -> None:
        """
        A handler without a host is our mistake, not the remote's: the
        discovery fails.
        """
        self.failureResultOf(
            Discoverer(DiscoClientProtocol(), self.pubsub, LOCAL).discover(D), AttributeError
        )

    def test_error(self) -> None:
        """
        Another error to disco#info: status C{error}, reachable; the version
        is still asked.
        """
        self.remote.answer(D, "info", StanzaError("forbidden", text="go away"))
        self.remote.answer(D, "version", VERSION)
        facts = self.discover().facts
        self.assertEqual(
            (facts.status, facts.reachable, facts.error, facts.consents, facts.softwareName),
            (ERROR, True, "d.example: forbidden (go away)", None, "Prosody"),
        )
        self.assertEqual(self.remote.asked, [(D, "info"), (D, "version")])

    def test_noConsent(self) -> None:
        """
        disco#info without the feature: no consent; nothing it publishes is
        looked at (though its form names a node), the version is asked.
        """
        self.publisher()
        self.remote.answer(
            D, "info", info(NS_DISCO_INFO, forms=form(f"xmpp:{PUBSUB}?;node=serverinfo"))
        )
        found = self.discover()
        detail = "disco#info answered without urn:xmpp:serverinfo:0"
        self.assertEqual(
            found,
            Discovery(
                D,
                DomainFacts(
                    NO_CONSENT,
                    reachable=True,
                    error=detail,
                    consents=False,
                    softwareName="Prosody",
                    softwareVersion="13.0.1",
                    steps=[
                        DiscoveryStep("disco#info", False, detail),
                        DiscoveryStep("version", True, "Prosody 13.0.1"),
                    ],
                ),
            ),
        )
        self.assertEqual(self.remote.asked, [(D, "info"), (D, "version")])

    def test_itemsFallback(self) -> None:
        """
        Without a form (Openfire), the first disco#items entry that is a
        C{pubsub/service} is used, node C{serverinfo}; entries with a node
        are not asked.
        """
        self.publisher("items")
        self.remote.answer(
            D,
            "items",
            items("conference.d.example", PUBSUB, "other.d.example", withNode=("x.d.example",)),
        )
        found = self.discover()
        self.assertEqual(
            (found.facts.status, found.service, found.node), (PUBLISHES, PUBSUB, "serverinfo")
        )
        self.assertEqual(found.report, REPORT)
        self.assertEqual(
            self.remote.asked,
            [
                (D, "info"),
                (D, "items"),
                ("conference.d.example", "info"),
                (PUBSUB, "info"),
                (PUBSUB, "pubsub"),
                (D, "version"),
            ],
        )
        self.assertEqual(
            found.facts.steps[1:5],
            (
                DiscoveryStep(
                    "serverinfo form",
                    False,
                    "no serverinfo-pubsub-node field in a http://jabber.org/network/serverinfo"
                    " form of disco#info; looking for a pub-sub service in disco#items",
                ),
                DiscoveryStep("disco#items", True, "3 items"),
                DiscoveryStep(
                    "disco#info conference.d.example",
                    False,
                    "not a pubsub/service (identities: conference/text)",
                ),
                DiscoveryStep(
                    "disco#info pubsub.d.example", True, "pubsub/service; using its node serverinfo"
                ),
            ),
        )

    def test_badURIFallsBack(self) -> None:
        """
        A form value that is no pub-sub node URI is a failed step, then
        disco#items is used.
        """
        self.publisher("items")
        self.remote.answer(
            D, "info", info(NS_SERVERINFO, forms=form("https://d.example/serverinfo"))
        )
        found = self.discover()
        self.assertEqual((found.facts.status, found.service), (PUBLISHES, PUBSUB))
        self.assertEqual(
            found.facts.steps[1],
            DiscoveryStep(
                "serverinfo form",
                False,
                "serverinfo-pubsub-node is not an xmpp: URI of a pub-sub node:"
                " 'https://d.example/serverinfo'; looking for a pub-sub service in disco#items",
            ),
        )

    def test_firstValidValue(self) -> None:
        """
        Of several values and several serverinfo forms, the first valid
        value is used (a form of another type is not read); the invalid one
        before it is a failed step. A form that repeats a field and holds an
        invalid JID (on which Wokkel's parser raises) does not hide the
        features.
        """
        forms = (
            form("xmpp:wrong.example?;node=serverinfo", formType="urn:example:other")
            + form(
                "xmpp:?;node=x",
                extra="<field var='admin' type='jid-single'><value>@@bad@@</value></field>"
                "<field var='admin'><value>again</value></field>",
            )
            + form(f"xmpp:{PUBSUB}?;node=second", "xmpp:third.example?;node=third")
        )
        self.remote.answer(D, "info", info(NS_SERVERINFO, forms=forms))
        self.remote.answer(PUBSUB, "pubsub", PAYLOAD)
        found = self.discover()
        self.assertEqual(
            (found.facts.status, found.service, found.node), (PUBLISHES, PUBSUB, "second")
        )
        self.assertEqual(
            [(s.step, s.ok) for s in found.facts.steps[1:3]],
            [("serverinfo form", False), ("serverinfo form", True)],
        )
        self.assertIn("'xmpp:?;node=x'; the first valid value is used", found.facts.steps[1].detail)

    def test_noPubsub(self) -> None:
        """
        disco#items without a pub-sub service: C{no-pubsub}, publishing no.
        """
        self.remote.answer(D, "info", CONSENTS)
        self.remote.answer(D, "items", items("conference.d.example"))
        self.remote.answer(
            "conference.d.example", "info", info(identities=(("conference", "text"),))
        )
        facts = self.discover().facts
        detail = "none of the 1 disco#items entries checked (of 1) is a pubsub/service"
        self.assertEqual(
            (facts.status, facts.publishes, facts.consents, facts.error),
            (NO_PUBSUB, False, True, detail),
        )
        self.assertEqual(
            facts.steps[-1], DiscoveryStep("version", False, "d.example: service-unavailable")
        )

    def test_noItemsAtAll(self) -> None:
        """
        An empty disco#items: C{no-pubsub}.
        """
        self.remote.answer(D, "info", CONSENTS)
        self.remote.answer(D, "items", items())
        facts = self.discover().facts
        self.assertEqual(
            (facts.status, facts.error), (NO_PUBSUB, "no items, so no pub-sub service")
        )

    def test_itemsError(self) -> None:
        """
        disco#items answered with an error: C{no-pubsub}, with the error.
        """
        self.remote.answer(D, "info", CONSENTS)
        self.remote.answer(D, "items", StanzaError("feature-not-implemented"))
        facts = self.discover().facts
        self.assertEqual(
            (facts.status, facts.error),
            (NO_PUBSUB, "d.example: feature-not-implemented; no pub-sub service found"),
        )

    def test_itemsChecksBounded(self) -> None:
        """
        Only the first L{MAX_ITEMS_CHECKED} disco#items entries are asked;
        the steps say how many there were.
        """
        self.remote.answer(D, "info", CONSENTS)
        entries = [f"s{i}.d.example" for i in range(MAX_ITEMS_CHECKED + 5)]
        self.remote.answer(D, "items", items(*entries))
        found = self.discover()
        asked = [to for to, kind in self.remote.asked if kind == "info" and to != D]
        self.assertEqual(asked, entries[:MAX_ITEMS_CHECKED])
        self.assertIn(
            DiscoveryStep("disco#items", True, "15 items; the first 10 are checked"),
            found.facts.steps,
        )
        self.assertEqual(
            found.facts.error,
            "none of the 10 disco#items entries checked (of 15) is a pubsub/service",
        )

    def test_itemTimeoutNext(self) -> None:
        """
        An entry whose disco#info times out (or fails) is a failed step; the
        next entry is asked.
        """
        self.publisher("items")
        self.remote.answer(D, "items", items("slow.d.example", "gone.d.example", PUBSUB))
        self.remote.answer("slow.d.example", "info", None)
        self.remote.answer("gone.d.example", "info", StanzaError("remote-server-not-found"))
        d = self.discoverer().discover(D)
        self.assertNoResult(d)
        self.clock.advance(IQ_TIMEOUT)
        found = self.successResultOf(d)
        self.assertEqual(found.facts.status, PUBLISHES)
        self.assertIn(
            DiscoveryStep(
                "disco#info slow.d.example", False, "slow.d.example: no answer (timeout)"
            ),
            found.facts.steps,
        )
        self.assertIn(
            DiscoveryStep(
                "disco#info gone.d.example", False, "gone.d.example: remote-server-not-found"
            ),
            found.facts.steps,
        )

    def test_noNode(self) -> None:
        """
        C{item-not-found} for the items: C{no-node}.
        """
        self.publisher()
        self.remote.answer(PUBSUB, "pubsub", StanzaError("item-not-found"))
        found = self.discover()
        detail = "node serverinfo: item-not-found (no such node on pubsub.d.example)"
        self.assertEqual(
            (found.facts.status, found.facts.publishes, found.facts.error), (NO_NODE, False, detail)
        )
        self.assertIn(
            DiscoveryStep("items pubsub.d.example node serverinfo", False, detail),
            found.facts.steps,
        )
        self.assertEqual((found.service, found.node, found.report), (PUBSUB, "serverinfo", None))

    def test_forbidden(self) -> None:
        """
        C{forbidden} for the items: C{fetch-failed}, the condition in words;
        whether it publishes stays unknown.
        """
        self.publisher()
        self.remote.answer(PUBSUB, "pubsub", StanzaError("forbidden"))
        facts = self.discover().facts
        self.assertEqual(
            (facts.status, facts.publishes, facts.error),
            (FETCH_FAILED, None, "node serverinfo: forbidden"),
        )

    def test_serviceUnreachable(self) -> None:
        """
        The pub-sub service times out: C{fetch-failed}; the version is
        asked after it.
        """
        self.publisher()
        self.remote.answer(PUBSUB, "pubsub", None)
        d = self.discoverer().discover(D)
        self.clock.advance(IQ_TIMEOUT)
        facts = self.successResultOf(d).facts
        self.assertEqual(
            (facts.status, facts.error), (FETCH_FAILED, "node serverinfo: no answer (timeout)")
        )
        self.assertEqual(facts.softwareName, "Prosody")

    def test_answerWithoutItems(self) -> None:
        """
        A result without an C{items} element: C{fetch-failed}.
        """
        self.publisher()
        self.remote.answer(PUBSUB, "pubsub", f"<pubsub xmlns='{NS_PUBSUB}'/>")
        facts = self.discover().facts
        self.assertEqual(
            (facts.status, facts.error),
            (FETCH_FAILED, "node serverinfo: the answer holds no items element"),
        )

    def test_noItem(self) -> None:
        """
        No items in the node: C{no-item}.
        """
        self.publisher()
        self.remote.answer(
            PUBSUB, "pubsub", f"<pubsub xmlns='{NS_PUBSUB}'><items node='serverinfo'/></pubsub>"
        )
        facts = self.discover().facts
        self.assertEqual(
            (facts.status, facts.publishes, facts.error), (NO_ITEM, False, "the node has no item")
        )

    def test_badItem(self) -> None:
        """
        An item describing another domain only: C{bad-item}, naming it;
        the other domain is in C{ignoredDomains}; no report.
        """
        self.publisher()
        self.remote.answer(
            PUBSUB,
            "pubsub",
            f"<pubsub xmlns='{NS_PUBSUB}'>{item(serverinfo('b.example'))}</pubsub>",
        )
        found = self.discover()
        self.assertEqual(
            (found.facts.status, found.facts.publishes, found.facts.error),
            (
                BAD_ITEM,
                False,
                "item 'current' has no domain element for d.example:"
                " it describes only 1 other domain",
            ),
        )
        self.assertEqual((found.report, found.ignoredDomains), (None, ("b.example",)))

    def test_ignoredAndTruncated(self) -> None:
        """
        The discovery carries the ignored domains and the cut of
        C{maxRemotes}.
        """
        self.publisher()
        remotes = "".join(f"<remote-domain name='p{i}.example'/>" for i in range(5))
        payload = (
            f"<serverinfo xmlns='{NS_SERVERINFO}'><domain name='d.example'><federation>{remotes}"
            "</federation></domain><domain name='sibling.example'/></serverinfo>"
        )
        self.remote.answer(
            PUBSUB, "pubsub", f"<pubsub xmlns='{NS_PUBSUB}'>{item(payload)}</pubsub>"
        )
        found = self.discover(maxRemotes=3)
        self.assertEqual(
            (found.facts.status, len(found.report or ()), found.truncated, found.ignoredDomains),
            (PUBLISHES, 3, True, ("sibling.example",)),
        )

    def test_versionFailureIsAStep(self) -> None:
        """
        A failed version query is a failed step, not a status; its timeout
        is C{versionTimeout}.
        """
        self.publisher()
        self.remote.answer(D, "version", None)
        d = self.discoverer(versionTimeout=2.0).discover(D)
        self.clock.advance(2.0)
        found = self.successResultOf(d)
        self.assertEqual(found.facts.status, PUBLISHES)
        self.assertEqual(
            found.facts.steps[-1], DiscoveryStep("version", False, "d.example: no answer (timeout)")
        )
        self.assertIsNone(found.facts.softwareName)

    def test_versionCleaned(self) -> None:
        """
        Software names are put on one line and cut; a version answer without
        a name is a failed step.
        """
        self.publisher()
        self.remote.answer(
            D,
            "version",
            f"<query xmlns='{NS_VERSION}'><name> My\n\tServer </name>"
            f"<version>{'9' * 300}</version></query>",
        )
        facts = self.discover().facts
        self.assertEqual(facts.softwareName, "My Server")
        self.assertEqual(len(facts.softwareVersion or ""), 100)
        self.remote.answer(
            D, "version", f"<query xmlns='{NS_VERSION}'><version>1</version></query>"
        )
        facts = self.discover().facts
        self.assertEqual(
            (facts.softwareName, facts.softwareVersion, facts.steps[-1]),
            (None, "1", DiscoveryStep("version", False, "answered without a software name")),
        )

    def test_cancel(self) -> None:
        """
        Cancelling a discovery cancels the request in flight; the component
        forgets it.
        """
        self.remote.answer(D, "info", None)
        d = self.discoverer().discover(D)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.component._pending, {})

    def test_fetchItem(self) -> None:
        """
        L{Discoverer.fetchItem} reads the node once discovery found it.
        """
        self.remote.answer(PUBSUB, "pubsub", PAYLOAD)
        result = self.successResultOf(self.discoverer().fetchItem(D, PUBSUB, "serverinfo"))
        self.assertEqual(
            result, ReportResult(PUBLISHES, "item 'current' read", REPORT, itemIdentifier="current")
        )
        self.remote.answer(PUBSUB, "pubsub", StanzaError("item-not-found"))
        result = self.successResultOf(self.discoverer().fetchItem(D, PUBSUB, "serverinfo"))
        self.assertEqual(result.status, NO_NODE)

    def test_statusesDocumented(self) -> None:
        """
        Every status the tests above see is in L{STATUSES}.
        """
        self.assertEqual(
            STATUSES,
            {
                PUBLISHES,
                NO_CONSENT,
                UNREACHABLE,
                ERROR,
                NO_PUBSUB,
                NO_NODE,
                NO_ITEM,
                BAD_ITEM,
                FETCH_FAILED,
            },
        )


# -- between real nodes ----------------------------------------------------------


class FederationTests(NodesMixin, TestCase):
    """
    Node A discovers node B over s2s on loopback.
    """

    def discoverer(self, node: Any) -> Discoverer:
        """
        @return: a discoverer on C{node}'s domain (its disco client and a
            new pub-sub client).
        """
        pubsub = PubSubClient()
        pubsub.setHandlerParent(node.domainHost)
        return Discoverer(node.disco, pubsub, node.domain)

    async def test_publishes(self) -> None:
        """
        B publishes with A as its peer: A's discovery of B finds B's form,
        node and item, and the report names A with B's connections to it.
        """
        a, b = self.node("a.example"), self.node("b.example")
        await a.disco.requestInfo(JID(b.domain), sender=JID(a.domain))
        await waitFor(
            lambda: settled(b, a.domain) and "a.example" in (publisherOf(b).lastPayload or "")
        )
        found = await self.discoverer(a).discover(b.domain)
        self.assertEqual(found.facts.status, PUBLISHES, found.facts.steps)
        self.assertEqual((found.service, found.node), ("pubsub.b.example", "serverinfo"))
        (peer,) = found.report or ()
        self.assertEqual(peer.name, "a.example")
        # Bidirectional streams (XEP-0288), one each way for dialback.
        self.assertEqual(set(peer.connections), {"bidi"})
        self.assertEqual(
            [s.step for s in found.facts.steps],
            ["disco#info", "serverinfo form", "items pubsub.b.example node serverinfo", "version"],
        )
        self.assertEqual(
            (found.facts.consents, found.facts.publishes, found.facts.reachable), (True, True, True)
        )

    async def test_noOptIn(self) -> None:
        """
        B runs with C{--no-opt-in}: A's discovery of B says C{no-consent}.
        """
        a, b = self.node("a.example"), self.node("b.example", optIn=False)
        found = await self.discoverer(a).discover(b.domain)
        self.assertEqual(found.facts.status, NO_CONSENT)
        self.assertEqual(found.facts.error, "disco#info answered without urn:xmpp:serverinfo:0")
        self.assertEqual((found.service, found.report), (None, None))
        self.assertEqual(found.facts.steps[-1].step, "version")
