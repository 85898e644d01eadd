# -*- test-case-name: tests.test_interop_prosody_publisher -*-
"""
Interop the other way: a real Prosody 13 publishing XEP-0485 server
information with the real C{mod_pubsub_serverinfo} (Debian's
C{prosody-modules} from bookworm-backports) federates with two nodes of
ours, one listing C{urn:xmpp:serverinfo:0} (C{node.example}) and one
started with C{--no-opt-in} (C{b.example}). The module's consent check asks
each node's disco#info; its item then names C{node.example} and lists
C{b.example} anonymously. Our node reads that item over s2s; and our own
item names Prosody, whose disco#info lists the feature.

What this module version was seen to do (13.0.1 with prosody-modules
0.0~hg20250402; the facts the crawler relies on, checked below):
 - the host's disco#info lists C{urn:xmpp:serverinfo:0} and a form
   C{http://jabber.org/network/serverinfo} with C{serverinfo-pubsub-node}
   = C{xmpp:pubsub.<host>?;node=serverinfo};
 - it publishes on C{pubsub.<host>}, node C{serverinfo}, item id
   C{current}, first 10 s after start, then every publication interval;
 - the payload is C{<serverinfo xmlns='urn:xmpp:serverinfo:0'>} with one
   C{<domain name='<host>'>} holding C{<federation>}, and in it one
   C{<remote-domain name='...'/>} per consenting peer and a bare
   C{<remote-domain/>} per other peer, with no C{connection} children (no
   directions) and nothing else;
 - a peer is named from the publication after its disco#info answer came
   back (the first publication that sees it lists it anonymously).

Skipped when Prosody 13 with the module is not installed, except in CI,
where that fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests.nodes import RawRequest, RunningNode, waitFor
from tests.pki import selfSigned
from tests.prosody import ProsodyPeer, requireServerInfo, serverInfoSkip, startAmong
from tests.test_serverinfo_federation import names, publisherOf, readXml, settled
from xmppnetgraph.config import Route
from xmppnetgraph.serverinfo.payload import (
    FORM_FIELD,
    FORM_TYPE,
    NS_SERVERINFO,
    RemoteDomain,
    ServerInfo,
    parsePayload,
)

_log = Logger()

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
PROSODY = "prosody.example"
SERVICE = "pubsub.prosody.example"


def itemsOf(response: domish.Element) -> list[domish.Element]:
    """
    @return: the C{item} elements of a pub-sub C{items} result.
    """
    pubsub = next(response.elements(NS_PUBSUB, "pubsub"))
    items = next(pubsub.elements(NS_PUBSUB, "items"))
    return list(items.elements(NS_PUBSUB, "item"))


def payloadOf(item: domish.Element) -> domish.Element:
    """
    @return: the one C{serverinfo} child of an item.
    """
    (payload,) = [c for c in item.elements() if (c.uri, c.name) == (NS_SERVERINFO, "serverinfo")]
    return payload


class ProsodyPublisherTests(TestCase):
    """
    The real C{mod_pubsub_serverinfo} asks our nodes for consent and
    publishes an item our node reads.
    """

    skip = serverInfoSkip()
    timeout = 90

    def setUp(self) -> None:
        """
        Make a directory for Prosody and our nodes.
        """
        requireServerInfo()
        self.base = Path(self.mktemp()).absolute()
        self.base.mkdir(parents=True)

    async def start(self) -> tuple[ProsodyPeer, RunningNode, RunningNode]:
        """
        Start Prosody publishing server information (self-signed: dialback
        over TLS), and our two nodes, each on its own free loopback address
        with port 5269 (Prosody dials that port: dialback and its consent
        checks).

        @return: Prosody, the opting-in node, the C{--no-opt-in} node.
        """
        certPath, keyPath = selfSigned(self.base / "pki", [PROSODY, SERVICE])
        peer, (nodeAddress, otherAddress) = await startAmong(
            self.base / "prosody",
            PROSODY,
            [["node.example", "pubsub.node.example"], ["b.example", "pubsub.b.example"]],
            certPath=certPath,
            keyPath=keyPath,
            serverinfo=True,
        )
        self.addCleanup(peer.stop)
        routes = (
            Route(PROSODY, peer.address, 5269),
            Route("*." + PROSODY, peer.address, 5269),
        )
        node = RunningNode(self.base, "node.example", nodeAddress, s2sPort=5269)
        other = RunningNode(self.base, "b.example", otherAddress, s2sPort=5269)
        node.build(routes=routes, publishDelay=0.2)
        other.build(routes=routes, publishDelay=0.2, optIn=False)
        for running in (node, other):
            running.start()
            self.addCleanup(running.stop)
        return peer, node, other

    async def readItems(self, node: RunningNode) -> list[domish.Element]:
        """
        Our node retrieves the items of Prosody's C{serverinfo} node over
        s2s (as its domain), asking for the newest one only.

        @return: the C{item} elements.
        """
        response = await node.domainHost.request(
            RawRequest(
                SERVICE,
                node.domain,
                "get",
                f"<pubsub xmlns='{NS_PUBSUB}'><items node='serverinfo' max_items='1'/></pubsub>",
            )
        )
        return itemsOf(response)

    async def waitForItem(
        self, peer: ProsodyPeer, node: RunningNode, done: Any, timeout: float
    ) -> tuple[float, domish.Element]:
        """
        Read Prosody's item once a second until C{done(parsed item)} holds.

        @return: when (C{time.monotonic}) and the raw item that satisfied it.
        @raise AssertionError: with the last item and Prosody's log if the
            time is up.
        """
        began = time.monotonic()
        last: list[domish.Element] = []
        while time.monotonic() - began < timeout:
            try:
                last = await self.readItems(node)
            except Exception as e:  # not there yet: item-not-found
                _log.info("serverinfo items not readable yet: {e}", e=e)
            else:
                if len(last) == 1 and done(parsePayload(payloadOf(last[0]))):
                    return time.monotonic(), last[0]
            await _sleep(1.0)
        raise AssertionError(
            f"Prosody's item never satisfied the test within {timeout} s; last: "
            f"{[i.toXml() for i in last]}\n{peer.logTail(60)}"
        )

    async def test_consentAndItem(self) -> None:
        """
        Prosody 13 advertises the feature and the form; after our nodes
        federated with it, its item (id C{current} on
        C{pubsub.prosody.example}, node C{serverinfo}) names C{node.example},
        which lists C{urn:xmpp:serverinfo:0}, and lists C{b.example}
        (C{--no-opt-in}) as a bare C{remote-domain}, without connection
        children. The item's XML and the time from the link to the naming
        are logged.
        """
        peer, node, other = await self.start()
        self.assertEqual(peer.version is not None and peer.version.split(".")[0], "13")

        linked = time.monotonic()
        info = await node.disco.requestInfo(JID(PROSODY), sender=JID(node.domain))
        self.assertIn(NS_SERVERINFO, info.features)
        form = info.extensions[FORM_TYPE]
        self.assertEqual(form.getValues()[FORM_FIELD], f"xmpp:{SERVICE}?;node=serverinfo")
        otherInfo = await other.disco.requestInfo(JID(PROSODY), sender=JID(other.domain))
        self.assertIn(NS_SERVERINFO, otherInfo.features)

        def complete(item: ServerInfo) -> bool:
            remotes = item.domains[0].remotes if item.domains else ()
            return RemoteDomain("node.example") in remotes and RemoteDomain(None) in remotes

        named, raw = await self.waitForItem(peer, node, complete, timeout=45)
        _log.info(
            "mod_pubsub_serverinfo (Prosody {version}): item naming our node "
            "{seconds:.1f} s after the link (publication interval {interval:g} s): {xml}",
            version=peer.version,
            seconds=named - linked,
            interval=peer.serverinfoInterval,
            xml=raw.toXml(),
        )

        self.assertEqual(raw.getAttribute("id"), "current")
        parsed = parsePayload(payloadOf(raw))
        self.assertEqual([d.name for d in parsed.domains], [PROSODY])
        self.assertEqual(
            parsed.domains[0].remotes,
            (RemoteDomain("node.example"), RemoteDomain(None)),
        )
        # The raw shape: one domain, one federation, remote-domain children
        # that are empty (no connection children), the anonymous one
        # without a name attribute at all.
        payload = payloadOf(raw)
        (domain,) = payload.elements()
        self.assertEqual(
            (domain.uri, domain.name, domain["name"]), (NS_SERVERINFO, "domain", PROSODY)
        )
        (federation,) = domain.elements()
        self.assertEqual(federation.name, "federation")
        remotes = list(federation.elements())
        self.assertEqual(
            sorted((r.name, r.attributes.get("name", "")) for r in remotes),
            [("remote-domain", ""), ("remote-domain", "node.example")],
            raw.toXml(),
        )
        self.assertEqual([list(r.children) for r in remotes], [[], []])
        self.assertNotIn("b.example", raw.toXml())

        # And the other way: our node's consent check finds the feature on
        # Prosody 13, so our own item names it.
        await waitFor(lambda: settled(node, PROSODY), timeout=15)
        self.assertIs(publisherOf(node).consent.state(PROSODY).consents, True)
        self.assertIn(PROSODY, names(readXml(publisherOf(node).lastPayload)))


async def _sleep(seconds: float) -> None:
    """
    Wait C{seconds} in the reactor.
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)
