# -*- test-case-name: tests.test_embedding -*-
"""
Tests for embedding the XEP-0485 pieces (disco handler, stored pub-sub
service, publisher) in another Twisted XMPP service, as
C{docs/embedding.md} shows: a plain Wokkel router, no S2S service, no
L{xmppnetgraph.node.buildService}, and a link table of the embedder's own.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from twisted.application.service import IService
from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import disco, pubsub
from wokkel.component import InternalComponent, Router
from wokkel.disco import DiscoClientProtocol, DiscoHandler
from wokkel.generic import parseXml
from wokkel.subprotocols import XMPPHandler
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.nodes import RawRequest, waitFor
from xmppnetgraph.component import LocalComponent
from xmppnetgraph.config import Config
from xmppnetgraph.core import CoreService, makeCore
from xmppnetgraph.datadir import ensureDataDir
from xmppnetgraph.disco import ServerDisco
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.interfaces import IChangeFeed, ILinkTable, IPubSubBackend, IPubSubStore
from xmppnetgraph.model import Direction, Link, LinkDown, LinkUp
from xmppnetgraph.serverinfo.build import buildServerInfo
from xmppnetgraph.serverinfo.payload import DEFAULT_NODE
from xmppnetgraph.store.database import openDatabase

NS_SERVERINFO = "urn:xmpp:serverinfo:0"
FORM_TYPE = "http://jabber.org/network/serverinfo"
DOC = Path(__file__).resolve().parent.parent / "docs" / "embedding.md"


# -- the example of docs/embedding.md, verbatim ------------------------------


def attachServerInfo(
    router: Router, feed: IChangeFeed, linkTable: ILinkTable, config: Config, reactor: Any
) -> CoreService:
    """
    Serve XEP-0485 for C{config.domain} on C{router}: disco for the
    domain, a pub-sub service on C{config.effectivePubsubHost} stored in
    C{config.dataDir}, and a publisher that keeps the C{serverinfo} item
    equal to C{linkTable}, whose changes C{feed} announces.

    @return: a service with the child C{"publisher"}; start it after the
        router is ready.
    """
    database = openDatabase(config.database, ensureDataDir(config.dataDir), reactor)
    core = makeCore(
        reactor, database, router=router, feed=feed, linkTable=linkTable, iqTimeout=config.iqTimeout
    )
    top = CoreService(core)
    buildServerInfo(core, config, top)
    return top


# -- the embedder's side ------------------------------------------------------


@implementer(ILinkTable)
class FeedLinkTable:
    """
    The embedding service's own link table: its s2s code calls L{up} and
    L{down}; it is not L{xmppnetgraph.linktable.LinkTable}.
    """

    def __init__(self, localDomain: str, feed: IChangeFeed) -> None:
        self.localDomain = localDomain
        self.feed = feed
        self._links: list[Link] = []

    def links(self) -> Iterator[Link]:
        """
        @return: the live links, oldest first.
        """
        return iter(list(self._links))

    def up(self, domain: str, direction: Direction) -> Link:
        """
        A stream to or from C{domain} was authenticated.
        """
        now = reactor.seconds()
        link = Link(domain, self.localDomain, direction, "dialback", "TLSv1.3", True, now, now)
        self._links.append(link)
        self.feed.emit(LinkUp(link))
        return link

    def down(self, link: Link) -> None:
        """
        The stream behind C{link} ended.
        """
        self._links.remove(link)
        self.feed.emit(LinkDown(link))


@implementer(disco.IDisco)
class PeerDisco(XMPPHandler):  # type: ignore[misc]
    """
    Disco#info of remote servers: each is C{server/im}; those in
    C{consenting} also list C{urn:xmpp:serverinfo:0}.

    @ivar asked: C{(requestor, domain)} of each disco#info request.
    """

    def __init__(self, consenting: set[str]) -> None:
        super().__init__()
        self.consenting = consenting
        self.asked: list[tuple[str, str]] = []

    def getDiscoInfo(
        self, requestor: JID, target: JID, nodeIdentifier: str = ""
    ) -> defer.Deferred[list[Any]]:
        """
        @return: the server's identity and features.
        """
        if nodeIdentifier or target.user or target.resource:
            return defer.succeed([])
        self.asked.append((requestor.full(), target.host))
        info: list[Any] = [
            disco.DiscoIdentity("server", "im"),
            disco.DiscoFeature(disco.NS_DISCO_INFO),
        ]
        if target.host in self.consenting:
            info.append(disco.DiscoFeature(NS_SERVERINFO))
        return defer.succeed(info)

    def getDiscoItems(
        self, requestor: JID, target: JID, nodeIdentifier: str = ""
    ) -> defer.Deferred[list[Any]]:
        """
        @return: nothing.
        """
        return defer.succeed([])


class Reader(pubsub.PubSubClient):  # type: ignore[misc]
    """
    A subscriber: keeps the C{serverinfo} payloads of the items events it
    receives, and tells waiters.

    @ivar payloads: the payloads, parsed, in the order received.
    @ivar raw: the C{item} elements received, serialized.
    """

    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[domish.Element] = []
        self.raw: list[str] = []
        self._waiters: list[
            tuple[Callable[[domish.Element], bool], defer.Deferred[domish.Element]]
        ] = []

    def itemsReceived(self, event: pubsub.ItemsEvent) -> None:
        """
        Keep the payload of each item of C{event}.
        """
        if (event.sender, event.nodeIdentifier) != (JID("pubsub.example.net"), DEFAULT_NODE):
            return
        for item in event.items:
            self.raw.append(item.toXml())
            payload = payloadOf(item)
            self.payloads.append(payload)
            for waiter in list(self._waiters):
                if waiter[0](payload):
                    self._waiters.remove(waiter)
                    waiter[1].callback(payload)

    def waitFor(
        self, predicate: Callable[[domish.Element], bool]
    ) -> defer.Deferred[domish.Element]:
        """
        @return: a Deferred firing with the first payload received (now or
            later) for which C{predicate} is true.
        """
        for payload in self.payloads:
            if predicate(payload):
                return defer.succeed(payload)
        d: defer.Deferred[domish.Element] = defer.Deferred()
        self._waiters.append((predicate, d))
        return d


def parseXML(text: str) -> domish.Element:
    """
    @return: the one element in C{text}, parsed as an XML stream would.
    """
    return parseXml(text.encode("utf-8"))


def payloadOf(item: domish.Element) -> domish.Element:
    """
    @param item: a pub-sub C{item}. In process (no s2s in between) its
        payload is still the serialized XML the service stored, so it is
        serialized and parsed again, as a remote subscriber would see it.
    @return: its C{serverinfo} payload.
    """
    (payload,) = parseXML(item.toXml()).elements(NS_SERVERINFO, "serverinfo")
    return payload


def remotes(payload: domish.Element) -> list[tuple[str | None, list[str]]]:
    """
    @return: the C{remote-domain}s of the payload's only domain, which must
        be C{example.net}: C{(name or None, connection types)} in document
        order.
    """
    (domain,) = payload.elements(NS_SERVERINFO, "domain")
    assert domain["name"] == "example.net", domain.toXml()
    (federation,) = domain.elements(NS_SERVERINFO, "federation")
    return [
        (
            remote.getAttribute("name"),
            [c["type"] for c in remote.elements(NS_SERVERINFO, "connection")],
        )
        for remote in federation.elements(NS_SERVERINFO, "remote-domain")
    ]


def asyncTest(f: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., defer.Deferred[None]]:
    """
    Let trial run an C{async def} test method.
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kw: Any) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(f(*args, **kw))

    return wrapper


class EmbeddingTests(TestCase):
    """
    The pieces on a plain Wokkel router, set up exactly as
    C{docs/embedding.md} shows, fed by a link table of the embedder's own.
    The real reactor runs because the SQLite store works in threads.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Start the remote servers and the reader on the router, then the
        embedded pieces.
        """
        self.router = Router()
        self.peerDisco = PeerDisco({"peer.example"})
        peers = InternalComponent(self.router)
        peers.domains.update({"peer.example", "other.example"})
        DiscoHandler().setHandlerParent(peers)
        self.peerDisco.setHandlerParent(peers)

        readerComponent = LocalComponent(self.router, ["reader.example"], reactor)
        self.reader = Reader()
        self.reader.setHandlerParent(readerComponent)
        self.readerDisco = DiscoClientProtocol()
        self.readerDisco.setHandlerParent(readerComponent)

        self.feed = ChangeFeed()
        self.table = FeedLinkTable("example.net", self.feed)
        dataDir = Path(self.mktemp()).absolute() / "data"
        config = Config(domain="example.net", dataDir=dataDir, publishDelay=0.05)
        self.embedded = attachServerInfo(self.router, self.feed, self.table, config, reactor)
        self.publisher = self.embedded.getServiceNamed("publisher")
        self.readerComponent = readerComponent
        for started in (peers, readerComponent, self.embedded):
            started.startService()
            self.addCleanup(started.stopService)

    def pubsubRequest(self, kind: str, child: str) -> defer.Deferred[domish.Element]:
        """
        Send a XEP-0060 request from C{reader.example} to the pub-sub host.
        (Wokkel's L{pubsub.PubSubClient} requests need a stream with IQ
        tracking; an in-process component has none, so the request goes
        through L{LocalComponent.request}.)

        @param kind: C{"get"} or C{"set"}.
        @param child: the verb element, inside C{<pubsub/>}.
        @return: a Deferred firing with the result IQ.
        """
        body = f"<pubsub xmlns='{pubsub.NS_PUBSUB}'>{child}</pubsub>"
        return self.readerComponent.request(
            RawRequest("pubsub.example.net", "reader.example", kind, body)
        )

    def test_interfaces(self) -> None:
        """
        The embedder's link table provides L{ILinkTable}; the change feed,
        the disco handler, the pub-sub backend and its store provide
        theirs; the whole is an ordinary Twisted service.
        """
        self.assertTrue(verifyObject(ILinkTable, self.table))
        self.assertTrue(verifyObject(IChangeFeed, self.feed))
        self.assertTrue(verifyObject(IService, self.embedded))
        domainComponent = self.embedded.core.component("example.net")
        (serverDisco,) = [h for h in domainComponent if isinstance(h, ServerDisco)]
        self.assertTrue(verifyObject(disco.IDisco, serverDisco))
        pubsubComponent = self.embedded.core.component("pubsub.example.net")
        (service_,) = [h for h in pubsubComponent if isinstance(h, pubsub.PubSubService)]
        self.assertTrue(verifyObject(IPubSubBackend, service_.backend))
        self.assertTrue(verifyObject(IPubSubStore, service_.backend.store))

    @asyncTest
    async def test_discoOfDomain(self) -> None:
        """
        Disco#info of C{example.net}, asked over the router, shows the
        server identity, the consent feature and the XEP-0128 form naming
        the C{serverinfo} node; disco#items lists the pub-sub host, whose
        disco#info is a C{pubsub/service}.
        """
        info = await self.readerDisco.requestInfo(JID("example.net"), sender=JID("reader.example"))
        self.assertIn(("server", "im"), info.identities)
        self.assertIn(NS_SERVERINFO, info.features)
        form = info.extensions[FORM_TYPE]
        self.assertEqual(
            form.fields["serverinfo-pubsub-node"].values,
            ["xmpp:pubsub.example.net?;node=serverinfo"],
        )

        items = await self.readerDisco.requestItems(
            JID("example.net"), sender=JID("reader.example")
        )
        self.assertEqual([item.entity for item in items], [JID("pubsub.example.net")])
        pubsubInfo = await self.readerDisco.requestInfo(
            JID("pubsub.example.net"), sender=JID("reader.example")
        )
        self.assertIn(("pubsub", "service"), pubsubInfo.identities)
        self.assertIn("http://jabber.org/protocol/pubsub#subscribe", pubsubInfo.features)

    @asyncTest
    async def test_publishFromOwnLinkTable(self) -> None:
        """
        A subscriber on the router subscribes to C{serverinfo}; when the
        embedder's table reports links, it is notified of an item that names
        C{peer.example} (which advertises the feature) and lists
        C{other.example} (which does not) without its name; a link going
        down is published too. The consent queries went from C{example.net}
        to the peers, the name of C{other.example} never reached the
        subscriber, and the stored item is what it received last.
        """
        # The first (empty) item creates the node.
        await waitFor(lambda: self.publisher.lastPublished is not None)
        response = await self.pubsubRequest(
            "set", "<subscribe node='serverinfo' jid='reader.example'/>"
        )
        self.assertEqual(response.pubsub.subscription["subscription"], "subscribed")
        empty = await self.reader.waitFor(lambda payload: True)
        self.assertEqual(remotes(empty), [])

        self.table.up("peer.example", "outgoing")
        other = self.table.up("other.example", "incoming")
        both = await self.reader.waitFor(
            lambda payload: ("peer.example", ["outgoing"]) in remotes(payload)
        )
        self.assertEqual(remotes(both), [("peer.example", ["outgoing"]), (None, ["incoming"])])
        self.assertEqual(
            sorted(self.peerDisco.asked),
            [("example.net", "other.example"), ("example.net", "peer.example")],
        )

        self.table.down(other)
        one = await self.reader.waitFor(lambda payload: len(remotes(payload)) == 1)
        self.assertEqual(remotes(one), [("peer.example", ["outgoing"])])

        for raw in self.reader.raw:
            self.assertNotIn("other.example", raw)
        response = await self.pubsubRequest("get", "<items node='serverinfo'/>")
        stored = list(response.pubsub.items.elements(pubsub.NS_PUBSUB, "item"))
        self.assertEqual([item["id"] for item in stored], ["current"])
        self.assertEqual(payloadOf(stored[0]).toXml(), one.toXml())


class ServerDiscoKeywordTests(SynchronousTestCase):
    """
    L{ServerDisco} made without a L{Config}, as an embedder makes it.
    """

    def info(self, handler: ServerDisco, target: str = "example.net") -> disco.DiscoInfo:
        """
        @return: the disco#info C{handler} gives for C{target}, serialized
            and parsed again.
        """
        result: list[list[Any]] = []
        handler.getDiscoInfo(JID("peer.example"), JID(target), "").addCallback(result.append)
        response = disco.DiscoInfo()
        for element in result[0]:
            response.append(element)
        return disco.DiscoInfo.fromElement(response.toElement())

    def test_sameAsConfig(self) -> None:
        """
        Keywords describing the same domain give the same disco#info as
        the config.
        """
        contacts = (("abuse-addresses", ("mailto:abuse@example.net",)),)
        for kw in ({}, {"optIn": False}, {"publish": False}, {"pubsubHost": "ps.example.net"}):
            fromKeywords = ServerDisco(domain="example.net", contacts=contacts, **kw)  # type: ignore[arg-type]
            fromConfig = ServerDisco(
                Config(domain="example.net", dataDir=Path("unused"), contacts=contacts, **kw)  # type: ignore[arg-type]
            )
            self.assertEqual(
                self.info(fromKeywords).toElement().toXml(),
                self.info(fromConfig).toElement().toXml(),
            )
            self.assertEqual(fromKeywords.pubsubHost, fromConfig.pubsubHost)

    def test_defaults(self) -> None:
        """
        By default the pub-sub host is C{pubsub.<domain>}, the consent
        feature is listed and the form names the C{serverinfo} node there.
        """
        result = self.info(ServerDisco(domain="example.net"))
        self.assertIn(NS_SERVERINFO, result.features)
        self.assertEqual(
            result.extensions[FORM_TYPE].fields["serverinfo-pubsub-node"].values,
            ["xmpp:pubsub.example.net?;node=serverinfo"],
        )

    def test_normalized(self) -> None:
        """
        The domains are normalized, so requests (whose JIDs are) match.
        """
        handler = ServerDisco(domain="Example.NET", pubsubHost="PubSub.Example.NET")
        self.assertEqual(
            (handler.domain, handler.pubsubHost), ("example.net", "pubsub.example.net")
        )
        self.assertIn(("server", "im"), self.info(handler).identities)

    def test_configOrDomain(self) -> None:
        """
        Exactly one of a config and a domain is needed; a bad domain is
        refused.
        """
        config = Config(domain="example.net", dataDir=Path("unused"))
        self.assertRaises(TypeError, ServerDisco)
        self.assertRaises(TypeError, ServerDisco, config, domain="example.net")
        self.assertRaises(ValueError, ServerDisco, domain="user@example.net")


class DocumentationTests(SynchronousTestCase):
    """
    C{docs/embedding.md} shows the code these tests run.
    """

    def test_exampleInSync(self) -> None:
        """
        The doc's example contains L{attachServerInfo} exactly as this
        module defines and runs it.
        """
        blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.DOTALL)
        source = inspect.getsource(attachServerInfo)
        self.assertTrue(
            any(source in block for block in blocks),
            "docs/embedding.md is out of step with the test",
        )
