# -*- test-case-name: tests.test_disco -*-
"""
Service discovery (XEP-0030) for the node's own domain: identity
C{server/im}, our features (with C{urn:xmpp:serverinfo:0}, XEP-0485
consent to be named, when opted in), the pubsub host as an item, and one
XEP-0128 form (FORM_TYPE C{http://jabber.org/network/serverinfo}) carrying
both the XEP-0485 C{serverinfo-pubsub-node} and the XEP-0157 contact
addresses.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.words.protocols.jabber.jid import JID
from wokkel import data_form, disco
from wokkel.subprotocols import XMPPHandler
from zope.interface import implementer

from xmppnetgraph.config import Config

NS_SERVERINFO = "urn:xmpp:serverinfo:0"
FORM_TYPE_SERVERINFO = "http://jabber.org/network/serverinfo"
SERVERINFO_NODE = "serverinfo"

#: The XEP-0157 contact address fields.
CONTACT_FIELDS = (
    "abuse-addresses",
    "admin-addresses",
    "feedback-addresses",
    "sales-addresses",
    "security-addresses",
    "status-addresses",
    "support-addresses",
)


def pubsubNodeURI(pubsubHost: str, node: str = SERVERINFO_NODE) -> str:
    """
    @return: the XEP-0485 C{serverinfo-pubsub-node} value for C{node} on
        C{pubsubHost}.
    """
    return f"xmpp:{pubsubHost}?;node={node}"


def serverInfoForm(config: Config) -> data_form.Form | None:
    """
    @return: the merged XEP-0128 form of XEP-0485 and XEP-0157, or L{None}
        when there is nothing to put in it.
    """
    fields = [
        data_form.Field("list-multi", var=var, values=list(values)) for var, values in sorted(config.contacts) if values
    ]
    if config.publish:
        fields.append(data_form.Field(var="serverinfo-pubsub-node", values=[pubsubNodeURI(config.effectivePubsubHost)]))
    if not fields:
        return None
    return data_form.Form("result", formNamespace=FORM_TYPE_SERVERINFO, fields=fields)


@implementer(disco.IDisco)
class ServerDisco(XMPPHandler):  # type: ignore[misc]
    """
    Disco for the node's own bare domain.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.domain = config.domain
        self.pubsubHost = config.effectivePubsubHost
        self.optIn = config.optIn
        self.form = serverInfoForm(config)

    def _ours(self, target: JID, nodeIdentifier: str) -> bool:
        return target.host == self.domain and not target.user and not target.resource and not nodeIdentifier

    def getDiscoInfo(self, requestor: JID, target: JID, nodeIdentifier: str = "") -> defer.Deferred[list[Any]]:
        """
        @return: our identity, features and form, for our bare domain only.
        """
        if not self._ours(target, nodeIdentifier):
            return defer.succeed([])
        info: list[Any] = [
            disco.DiscoIdentity("server", "im", "xmppnetgraph"),
            disco.DiscoFeature(disco.NS_DISCO_INFO),
            disco.DiscoFeature(disco.NS_DISCO_ITEMS),
        ]
        if self.optIn:
            info.append(disco.DiscoFeature(NS_SERVERINFO))
        if self.form is not None:
            info.append(self.form)
        return defer.succeed(info)

    def getDiscoItems(self, requestor: JID, target: JID, nodeIdentifier: str = "") -> defer.Deferred[list[Any]]:
        """
        @return: the pubsub host, for our bare domain.
        """
        if not self._ours(target, nodeIdentifier):
            return defer.succeed([])
        return defer.succeed([disco.DiscoItem(JID(self.pubsubHost), name="Publish-subscribe service")])
