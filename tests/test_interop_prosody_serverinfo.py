# -*- test-case-name: tests.test_interop_prosody_serverinfo -*-
"""
Our XEP-0485 item as a real Prosody user sees it: alice on
C{prosody.example} retrieves the C{serverinfo} item of our node
(C{node.example}) over s2s, subscribes to it, and is notified when our
links change. This Prosody (13, or 0.12) runs without
C{mod_pubsub_serverinfo}, so it does not advertise
C{urn:xmpp:serverinfo:0} and must be listed without a name; a node of ours
that opts in is named. (The module's side: L{tests.test_interop_prosody_publisher}.)

Skipped when Prosody is not installed, except in CI, where that fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests import c2sclient
from tests.nodes import RunningNode, routesTo, waitFor
from tests.pki import selfSigned
from tests.prosody import prosodySkip, requireProsody, startBeside
from tests.test_serverinfo_federation import (
    LinkTimes,
    directions,
    names,
    publisherOf,
    remotesOf,
    settled,
)
from xmppnetgraph.config import Route
from xmppnetgraph.model import LinkUp
from xmppnetgraph.serverinfo.payload import NS_SERVERINFO, ServerInfo, parsePayload

_log = Logger()

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
PASSWORD = "alice's secret"
ALICE = "alice@prosody.example"


def serverInfoIn(items: domish.Element) -> list[tuple[str, ServerInfo]]:
    """
    @return: (item id, parsed payload) of each C{item} child of an C{items}
        element (of C{pubsub} or C{pubsub#event}).
    """
    found = []
    for item in items.elements(items.uri, "item"):
        (payload,) = [
            c for c in item.elements() if (c.uri, c.name) == (NS_SERVERINFO, "serverinfo")
        ]
        found.append((item.getAttribute("id", ""), parsePayload(payload)))
    return found


class ProsodyServerInfoTests(TestCase):
    """
    A Prosody user reads, subscribes to and is notified of our
    C{serverinfo} item.
    """

    skip = prosodySkip()
    timeout = 60

    def setUp(self) -> None:
        """
        Make a directory for Prosody and our nodes.
        """
        requireProsody()
        self.base = Path(self.mktemp()).absolute()
        self.base.mkdir(parents=True)

    async def start(self) -> tuple[RunningNode, RunningNode, Any]:
        """
        Start Prosody (self-signed: dialback over TLS) and our node on two
        free loopback addresses, port 5269 each, and build (not start) a
        second node of ours, C{b.example}, that can reach our node; log
        alice in and make her available, so that Prosody delivers messages
        to her bare JID.

        @return: our node, the second node, alice's stream.
        """
        certPath, keyPath = selfSigned(
            self.base / "pki", ["prosody.example", "pubsub.prosody.example"]
        )
        peer, nodeAddress = await startBeside(
            self.base / "prosody",
            "prosody.example",
            ["node.example", "pubsub.node.example"],
            certPath=certPath,
            keyPath=keyPath,
        )
        self.addCleanup(peer.stop)
        prosodyAddress = peer.address
        node = RunningNode(self.base, "node.example", nodeAddress, s2sPort=5269)
        other = RunningNode(self.base, "b.example", "127.0.0.1")
        prosodyRoutes = (
            Route("prosody.example", prosodyAddress, 5269),
            Route("*.prosody.example", prosodyAddress, 5269),
        )
        node.build(routes=prosodyRoutes + routesTo(other), publishDelay=0.2)
        other.build(routes=routesTo(node), publishDelay=0.2)
        node.start()
        self.addCleanup(node.stop)
        await peer.register("alice", PASSWORD)
        xs = await c2sclient.connectClient(
            reactor, JID(ALICE + "/test"), PASSWORD, peer.address, peer.c2sPort
        )
        self.addCleanup(c2sclient.disconnect, xs)
        xs.send(domish.Element((None, "presence")))
        return node, other, xs

    async def pubsubIQ(self, xs: Any, kind: str, child: str) -> domish.Element:
        """
        Send alice's IQ with a C{pubsub} child to our pub-sub service.

        @return: the C{pubsub} element of the result.
        """
        iq = domish.Element((None, "iq"))
        iq["type"] = kind
        iq["to"] = "pubsub.node.example"
        pubsub = iq.addElement((NS_PUBSUB, "pubsub"))
        pubsub.addRawXml(child)
        answer = await c2sclient.sendIQ(xs, iq, timeout=15)
        return next(answer.elements(NS_PUBSUB, "pubsub"))

    async def test_readSubscribeNotify(self) -> None:
        """
        Prosody (without the module) does not list
        C{urn:xmpp:serverinfo:0}: once our node has
        its answer, alice retrieves our item over s2s and it lists
        C{prosody.example} without a name, with one connection per stream.
        alice subscribes; when our node links with C{b.example} (which opts
        in), alice is notified of an item naming C{b.example} and still
        listing Prosody anonymously. The time from that link to the
        notification is logged.
        """
        node, other, xs = await self.start()
        notifications: list[tuple[float, str, ServerInfo]] = []

        def onMessage(message: domish.Element) -> None:
            for event in message.elements(NS_PUBSUB_EVENT, "event"):
                for items in event.elements(NS_PUBSUB_EVENT, "items"):
                    if (
                        message.getAttribute("from") == "pubsub.node.example"
                        and items.getAttribute("node") == "serverinfo"
                    ):
                        for itemId, info in serverInfoIn(items):
                            notifications.append((time.monotonic(), itemId, info))

        xs.addObserver("/message", onMessage)

        info = await node.disco.requestInfo(JID("prosody.example"), sender=JID("node.example"))
        self.assertIn(("server", "im"), info.identities)
        self.assertNotIn(NS_SERVERINFO, info.features)

        subscribed = await self.pubsubIQ(xs, "set", f"<subscribe node='serverinfo' jid='{ALICE}'/>")
        subscription = next(subscribed.elements(NS_PUBSUB, "subscription"))
        self.assertEqual(
            (
                subscription.getAttribute("node"),
                subscription.getAttribute("jid"),
                subscription.getAttribute("subscription"),
            ),
            ("serverinfo", ALICE, "subscribed"),
        )
        await waitFor(lambda: settled(node, "prosody.example"))
        state = publisherOf(node).consent.state("prosody.example")
        self.assertEqual((state.consents, state.error), (False, None))

        result = await self.pubsubIQ(xs, "get", "<items node='serverinfo'/>")
        ((itemId, item),) = serverInfoIn(next(result.elements(NS_PUBSUB, "items")))
        self.assertEqual(itemId, "current")
        (remote,) = remotesOf(item, "node.example")
        self.assertIsNone(remote.name)
        self.assertEqual(remote.connections, directions(node, "prosody.example"))
        self.assertEqual(set(remote.connections), {"incoming", "outgoing"})
        self.assertEqual(names(item), set())

        await waitFor(lambda: any(remotesOf(info, "node.example") for _, _, info in notifications))
        before = len(notifications)
        times = LinkTimes("b.example")
        node.service.core.feed.observe(LinkUp, times.linkUp)
        other.start()
        self.addCleanup(other.stop)
        await other.disco.requestInfo(JID("node.example"), sender=JID("b.example"))
        await waitFor(
            lambda: any("b.example" in names(info) for _, _, info in notifications[before:]),
            timeout=15,
        )
        arrived, itemId, changed = next(
            n for n in notifications[before:] if "b.example" in names(n[2])
        )
        _log.info(
            "serverinfo via Prosody: link change -> notification naming the new peer at alice: "
            "{seconds:.3f} s (publishDelay 0.2 s)",
            seconds=arrived - times.ups[0],
        )
        self.assertEqual(itemId, "current")
        self.assertEqual(names(changed), {"b.example"})
        anonymous = [r for r in remotesOf(changed, "node.example") if r.name is None]
        self.assertEqual(len(anonymous), 1)
        self.assertTrue(
            set(anonymous[0].connections) <= {"incoming", "outgoing"} and anonymous[0].connections
        )
        self.assertFalse(
            names(changed) & {"node.example", "pubsub.node.example", "prosody.example"}
        )
