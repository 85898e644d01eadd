# -*- test-case-name: tests.test_disco -*-
"""
Tests for L{xmppnetgraph.disco}.
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber.jid import JID
from wokkel import disco

from xmppnetgraph.config import Config
from xmppnetgraph.disco import ServerDisco
from xmppnetgraph.serverinfo.payload import NS_SERVERINFO


def info(config: Config, target: str = "example.org", node: str = "") -> disco.DiscoInfo:
    """
    @return: the disco#info C{ServerDisco} gives for C{target}, as a
        serialized and re-parsed response.
    """
    handler = ServerDisco(config)
    result = []
    handler.getDiscoInfo(JID("peer.example"), JID(target), node).addCallback(result.append)
    response = disco.DiscoInfo()
    for item in result[0]:
        response.append(item)
    return disco.DiscoInfo.fromElement(response.toElement())


def config(**kw: object) -> Config:
    """
    @return: a config for example.org.
    """
    return Config(domain="example.org", dataDir=Path("unused"), **kw)  # type: ignore[arg-type]


class ServerDiscoTests(SynchronousTestCase):
    """
    Disco#info and #items of the node's domain.
    """

    def test_identityAndConsent(self) -> None:
        """
        The domain is C{server/im} and, opted in by default, lists the
        XEP-0485 consent feature.
        """
        result = info(config())
        self.assertIn(("server", "im"), result.identities)
        self.assertIn(NS_SERVERINFO, result.features)
        self.assertIn(disco.NS_DISCO_ITEMS, result.features)

    def test_noOptIn(self) -> None:
        """
        With C{optIn} off the consent feature is absent.
        """
        self.assertNotIn(NS_SERVERINFO, info(config(optIn=False)).features)

    def test_serverInfoForm(self) -> None:
        """
        The XEP-0128 form names the serverinfo node on the pubsub host.
        """
        form = info(config(pubsubHost="ps.example.org")).extensions[
            "http://jabber.org/network/serverinfo"
        ]
        self.assertEqual(form.formType, "result")
        self.assertEqual(
            form.fields["serverinfo-pubsub-node"].values, ["xmpp:ps.example.org?;node=serverinfo"]
        )

    def test_formMergedWithContacts(self) -> None:
        """
        XEP-0157 contact addresses share the one form with the XEP-0485
        field (same FORM_TYPE: merged, not duplicated).
        """
        result = info(
            config(
                contacts=(
                    ("abuse-addresses", ("mailto:abuse@example.org",)),
                    ("admin-addresses", ("xmpp:admin@example.org", "mailto:a@example.org")),
                )
            )
        )
        self.assertEqual(list(result.extensions), ["http://jabber.org/network/serverinfo"])
        form = result.extensions["http://jabber.org/network/serverinfo"]
        self.assertEqual(form.fields["abuse-addresses"].values, ["mailto:abuse@example.org"])
        self.assertEqual(
            form.fields["admin-addresses"].values,
            ["xmpp:admin@example.org", "mailto:a@example.org"],
        )
        self.assertIn("serverinfo-pubsub-node", form.fields)

    def test_noPublishNoNodeField(self) -> None:
        """
        Without publishing there is no C{serverinfo-pubsub-node}, and with
        no contacts either, no form at all.
        """
        self.assertEqual(info(config(publish=False)).extensions, {})

    def test_otherTargetsEmpty(self) -> None:
        """
        Other JIDs and nodes get nothing from this handler.
        """
        self.assertEqual(info(config(), target="user@example.org").identities, {})
        self.assertEqual(info(config(), node="x").identities, {})

    def test_itemsListPubsubHost(self) -> None:
        """
        Disco#items of the domain lists the pubsub host.
        """
        result = []
        ServerDisco(config()).getDiscoItems(
            JID("peer.example"), JID("example.org"), ""
        ).addCallback(result.append)
        self.assertEqual([item.entity for item in result[0]], [JID("pubsub.example.org")])
