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

from collections.abc import Iterable

from twisted.internet import defer
from twisted.words.protocols.jabber.jid import JID
from wokkel import data_form, disco
from wokkel.subprotocols import XMPPHandler
from zope.interface import implementer

# CONTACT_FIELDS (the XEP-0157 fields) is declared with their options.
from xmppnetgraph.config import CONTACT_FIELDS as CONTACT_FIELDS
from xmppnetgraph.config import Config
from xmppnetgraph.names import normalizeDomain
from xmppnetgraph.serverinfo.payload import (
    FORM_FIELD,
    FORM_TYPE,
    NS_SERVERINFO,
    serverInfoFormField,
)


def buildServerInfoForm(
    pubsubHost: str | None, contacts: Iterable[tuple[str, Iterable[str]]] = ()
) -> data_form.Form | None:
    """
    @param pubsubHost: the pub-sub host whose C{serverinfo} node the form
        names, or L{None} for no C{serverinfo-pubsub-node} field.
    @param contacts: XEP-0157 fields: C{(var, addresses)} pairs, C{var}
        one of L{CONTACT_FIELDS}.
    @return: the merged XEP-0128 form of XEP-0485 and XEP-0157, or L{None}
        when there is nothing to put in it.
    """
    fields = [
        data_form.Field("list-multi", var=var, values=list(values))
        for var, values in sorted((var, tuple(values)) for var, values in contacts)
        if values
    ]
    if pubsubHost is not None:
        fields.append(data_form.Field(var=FORM_FIELD, values=[serverInfoFormField(pubsubHost)]))
    if not fields:
        return None
    return data_form.Form("result", formNamespace=FORM_TYPE, fields=fields)


def serverInfoForm(config: Config) -> data_form.Form | None:
    """
    @return: the merged XEP-0128 form of XEP-0485 and XEP-0157 for
        C{config}, or L{None} when there is nothing to put in it.
    """
    return buildServerInfoForm(
        config.effectivePubsubHost if config.publish else None, config.contacts
    )


@implementer(disco.IDisco)
class ServerDisco(XMPPHandler):
    """
    Disco for the node's own bare domain.

    Made from the node's L{Config}, or, by an embedder without one, from
    keyword arguments: C{ServerDisco(domain="example.net")}.

    @ivar domain: the domain answered for.
    @ivar pubsubHost: the pub-sub host, listed in disco#items.
    @ivar optIn: whether C{urn:xmpp:serverinfo:0} is listed.
    @ivar form: the XEP-0128 form, or L{None}.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        domain: str | None = None,
        pubsubHost: str | None = None,
        optIn: bool = True,
        contacts: Iterable[tuple[str, Iterable[str]]] = (),
        publish: bool = True,
    ) -> None:
        """
        @param config: the node's configuration. Give either this or
            C{domain}; with a config the keywords below are not used.
        @param domain: the domain to answer for.
        @param pubsubHost: the pub-sub host (default C{pubsub.<domain>}).
        @param optIn: list C{urn:xmpp:serverinfo:0} (consent to be named).
        @param contacts: XEP-0157 fields, as for L{buildServerInfoForm}.
        @param publish: put C{serverinfo-pubsub-node} in the form.
        @raise TypeError: if both or neither of C{config} and C{domain}
            are given.
        @raise ValueError: if C{domain} or C{pubsubHost} is not a domain
            name.
        """
        super().__init__()
        if config is not None:
            if domain is not None:
                raise TypeError("ServerDisco takes a Config or a domain, not both")
            self.domain = config.domain
            self.pubsubHost = config.effectivePubsubHost
            self.optIn = config.optIn
            self.form = serverInfoForm(config)
            return
        if domain is None:
            raise TypeError("ServerDisco needs a Config or a domain")
        self.domain = normalizeDomain(domain)
        self.pubsubHost = normalizeDomain(pubsubHost) if pubsubHost else "pubsub." + self.domain
        self.optIn = optIn
        self.form = buildServerInfoForm(self.pubsubHost if publish else None, contacts)

    def _ours(self, target: JID, nodeIdentifier: str) -> bool:
        """
        @return: whether a request for C{target} and C{nodeIdentifier} is
            about our bare domain.
        """
        return (
            target.host == self.domain
            and not target.user
            and not target.resource
            and not nodeIdentifier
        )

    def getDiscoInfo(
        self, requestor: JID, target: JID, nodeIdentifier: str = ""
    ) -> defer.Deferred[list[object]]:
        """
        @return: our identity, features and form, for our bare domain only.
        """
        if not self._ours(target, nodeIdentifier):
            return defer.succeed([])
        info: list[object] = [
            disco.DiscoIdentity("server", "im", "xmppnetgraph"),
            disco.DiscoFeature(disco.NS_DISCO_INFO),
            disco.DiscoFeature(disco.NS_DISCO_ITEMS),
        ]
        if self.optIn:
            info.append(disco.DiscoFeature(NS_SERVERINFO))
        if self.form is not None:
            info.append(self.form)
        return defer.succeed(info)

    def getDiscoItems(
        self, requestor: JID, target: JID, nodeIdentifier: str = ""
    ) -> defer.Deferred[list[object]]:
        """
        @return: the pubsub host, for our bare domain.
        """
        if not self._ours(target, nodeIdentifier):
            return defer.succeed([])
        return defer.succeed(
            [disco.DiscoItem(JID(self.pubsubHost), name="Publish-subscribe service")]
        )
