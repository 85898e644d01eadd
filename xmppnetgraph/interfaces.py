# -*- test-case-name: tests.test_feed -*-
"""
The contracts between the node's modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from zope.interface import Attribute, Interface

from xmppnetgraph.model import (
    ChangeEvent,
    CrawlQueue,
    CrawlStatus,
    DomainFacts,
    DomainProfile,
    DomainRecord,
    GraphCounts,
    GraphEvent,
    GraphSnapshot,
    Link,
    Publication,
    ReportedLink,
    ReportOutcome,
    Retraction,
    StoredItem,
    SubmitOutcome,
    Subscription,
)

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from xmppnetgraph.serverinfo.payload import RemoteDomain

_E = TypeVar("_E", bound=ChangeEvent)


class IChangeFeed(Interface):
    """
    The node's one stream of typed change events
    (L{xmppnetgraph.model.ChangeEvent}): emitters call L{emit}, observers
    register with L{observe}. A failing observer is logged and never
    breaks the emitter or the other observers.
    """

    def observe(kind: type[_E], observer: Callable[[_E], object]) -> Callable[[], None]:
        """
        Call C{observer(event)} for every later event that is an instance
        of C{kind}.

        @return: a function that removes the observer again.
        """

    def emit(event: ChangeEvent) -> None:
        """
        Tell every observer of C{event}'s type.
        """


class ILinkTable(Interface):
    """
    The live table of authenticated s2s links of one node. Changes are
    announced on the node's change feed as L{xmppnetgraph.model.LinkUp}
    and L{xmppnetgraph.model.LinkDown}.
    """

    def links() -> Iterable[Link]:
        """
        @return: the live links, oldest first.
        """


class IPubSubStore(Interface):
    """
    Persistent pub-sub state: nodes with their configuration, items and
    subscriptions. Every method returns a Deferred and is one transaction;
    failures are the errors of L{xmppnetgraph.error} (C{NodeNotFound},
    C{NodeExists}, C{NotSubscribed}, C{TooManySubscriptions},
    C{StorageFull}, C{StorageError}). The store checks no permissions and
    no configuration values: that is L{IPubSubBackend}'s work.
    """

    def createNode(nodeIdentifier: str, config: dict[str, object]) -> Deferred[None]:
        """
        Create a leaf node with C{config} (option name -> value).
        """

    def nodeConfig(nodeIdentifier: str) -> Deferred[dict[str, object]]:
        """
        @return: the node's configuration.
        """

    def setNodeConfig(nodeIdentifier: str, config: dict[str, object]) -> Deferred[None]:
        """
        Replace the node's configuration.
        """

    def deleteNode(nodeIdentifier: str) -> Deferred[list[Subscription]]:
        """
        Delete the node with its items and subscriptions.

        @return: the subscriptions it had, oldest first.
        """

    def nodes() -> Deferred[list[str]]:
        """
        @return: the identifiers of all nodes.
        """

    def storeItem(
        nodeIdentifier: str, itemIdentifier: str, payload: str, publisher: str, maxItems: int
    ) -> Deferred[None]:
        """
        Store (or replace) an item whose payload is serialized XML, then
        keep only the newest C{maxItems} items of the node.
        """

    def publishItem(
        nodeIdentifier: str,
        itemIdentifier: str,
        payload: str,
        publisher: str,
        maxItems: Callable[[Mapping[str, object]], int],
        createConfig: dict[str, object] | None = None,
    ) -> Deferred[Publication]:
        """
        Publish in one transaction: create the node with C{createConfig}
        if it is missing (with L{None}, a missing node is C{NodeNotFound}),
        store (or replace) the item as the node's newest, keep only the
        newest C{maxItems(config)} items, and read the node's configuration
        and subscriptions. Either all of it is committed or none of it.

        @param maxItems: how many items a node of that configuration keeps;
            called inside the transaction (in a database thread: it must
            only compute).
        @return: what was stored and read.
        """

    def items(
        nodeIdentifier: str,
        itemIdentifiers: Sequence[str] | None = None,
        maxItems: int | None = None,
    ) -> Deferred[list[StoredItem]]:
        """
        @return: the requested items (all, by id, or the newest
            C{maxItems}), newest first.
        """

    def deleteItems(nodeIdentifier: str, itemIdentifiers: Sequence[str]) -> Deferred[list[str]]:
        """
        @return: the ids that existed and were deleted.
        """

    def retractItems(nodeIdentifier: str, itemIdentifiers: Sequence[str]) -> Deferred[Retraction]:
        """
        Delete items and read the node's subscriptions, in one transaction.

        @return: the ids that existed and were deleted, and the
            subscriptions.
        """

    def subscribe(
        nodeIdentifier: str,
        subscriber: str,
        maxPerDomain: int,
        subscriptionIdentifier: str | None = None,
    ) -> Deferred[Subscription]:
        """
        Subscribe the JID C{subscriber} (idempotent), unless its domain
        has C{maxPerDomain} subscriptions to this node already.

        @param subscriptionIdentifier: the id a new subscription gets
            (default: a random one); an existing subscription keeps its
            own, so a caller that compares tells a new subscription from
            an existing one.
        """

    def unsubscribe(nodeIdentifier: str, subscriber: str) -> Deferred[None]:
        """
        Remove a subscription.
        """

    def subscriptions(nodeIdentifier: str) -> Deferred[list[Subscription]]:
        """
        @return: the node's subscriptions.
        """


class IPubSubBackend(Interface):
    """
    The pub-sub service of one JID without its protocol: permissions,
    configuration checks, and every state change stored in one transaction
    and then announced on the node's change feed (the pub-sub events of
    L{xmppnetgraph.model}: C{NodeCreated}, C{NodeConfigured},
    C{NodeDeleted}, C{ItemPublished}, C{ItemsRetracted},
    C{SubscriptionChanged}); notifiers (XMPP, later server-sent events)
    observe the feed. Protocol edges translate their requests into these
    calls and map the L{xmppnetgraph.error} failures to their own errors.

    A method that needs owner rights takes C{requestor}: the JID (its bare
    JID counts) asking, or L{None} for the service itself (this node's own
    code, such as the XEP-0485 publisher). Every method returns a Deferred.
    """

    serviceJID = Attribute("The service's bare JID, as a string.")
    defaultConfig = Attribute(
        "The configuration (a read-only mapping) of a node created without one."
    )

    def isOwner(requestor: str | None) -> bool:
        """
        @return: whether C{requestor} may publish, retract, create,
            configure and delete.
        """

    def nodes() -> Deferred[list[str]]:
        """
        @return: the node identifiers, sorted.
        """

    def nodeMetaData(nodeIdentifier: str) -> Deferred[dict[str, object]]:
        """
        @return: what anyone may know of a node's configuration (its access
            model, item limit and whether notifications carry payloads).
        """

    def nodeConfig(
        nodeIdentifier: str, requestor: str | None = None
    ) -> Deferred[dict[str, object]]:
        """
        @return: the node's whole configuration (owners only).
        """

    def createNode(
        nodeIdentifier: str,
        values: Mapping[str, object] | None = None,
        requestor: str | None = None,
    ) -> Deferred[dict[str, object]]:
        """
        Create a node with the default configuration changed by C{values}.

        @return: its configuration.
        """

    def ensureNode(
        nodeIdentifier: str,
        values: Mapping[str, object] | None = None,
        requestor: str | None = None,
    ) -> Deferred[bool]:
        """
        Create the node as L{createNode} does unless it exists (then leave
        it as it is).

        @return: whether it was created.
        """

    def configureNode(
        nodeIdentifier: str, values: Mapping[str, object], requestor: str | None = None
    ) -> Deferred[dict[str, object]]:
        """
        Change the options C{values} names.

        @return: the new configuration.
        """

    def deleteNode(nodeIdentifier: str, requestor: str | None = None) -> Deferred[None]:
        """
        Delete a node, its items and subscriptions.
        """

    def publish(
        nodeIdentifier: str,
        itemIdentifier: str,
        payload: str,
        requestor: str | None = None,
        createConfig: Mapping[str, object] | None = None,
    ) -> Deferred[StoredItem]:
        """
        Store an item (payload: serialized XML) as the requestor's bare JID
        (the service's for L{None}), in one transaction with creating the
        node (with the default configuration changed by C{createConfig}) if
        it is missing and C{createConfig} is given.

        @return: the item as stored.
        """

    def retract(
        nodeIdentifier: str, itemIdentifiers: Sequence[str], requestor: str | None = None
    ) -> Deferred[list[str]]:
        """
        Delete items. The ones that exist are deleted (and announced) even
        when others do not: then it fails with C{ItemNotFound}.

        @return: the ids deleted.
        """

    def items(
        nodeIdentifier: str,
        itemIdentifiers: Sequence[str] | None = None,
        maxItems: int | None = None,
    ) -> Deferred[list[StoredItem]]:
        """
        @return: a node's items (all, by id, or the newest C{maxItems}),
            newest first.
        """

    def currentItems(
        nodeIdentifier: str, maxItems: int | None = None
    ) -> Deferred[list[StoredItem]]:
        """
        @return: like L{items}, but none for a node that does not exist.
        """

    def subscribe(nodeIdentifier: str, subscriber: str) -> Deferred[Subscription]:
        """
        Subscribe C{subscriber} (idempotent: an existing subscription is
        returned as it is).
        """

    def unsubscribe(
        nodeIdentifier: str, subscriber: str, subscriptionIdentifier: str | None = None
    ) -> Deferred[None]:
        """
        End a subscription (only the one with C{subscriptionIdentifier},
        when given).
        """

    def subscriptions(
        nodeIdentifier: str, requestor: str | None = None
    ) -> Deferred[list[Subscription]]:
        """
        @return: a node's subscriptions, oldest first (owners only).
        """

    def subscriptionsOf(entity: str) -> Deferred[list[Subscription]]:
        """
        @return: the subscriptions of C{entity}'s bare JID and of its full
            JIDs, on every node, by node.
        """


class IGraphStore(Interface):
    """
    The aggregator's graph with its history: domains and their facts, and
    the links each publisher reports, kept as intervals so that the graph
    at any past time can be rebuilt and an unchanged refresh writes only a
    timestamp. Every method returns a Deferred; every writing method is one
    transaction and, when it changed anything, writes numbered events in
    that transaction and then, after the commit, emits one
    L{xmppnetgraph.model.GraphChanged} on the node's change feed. Times
    come from the store's clock. Failures: L{xmppnetgraph.error.InvalidDomainName}
    (nothing stored), C{StorageFull}, C{StorageError}.
    """

    def storeReport(reporter: str, remotes: Iterable[RemoteDomain]) -> Deferred[ReportOutcome]:
        """
        Store C{reporter}'s full report (the remote domains of its
        XEP-0485 item for its own domain), replacing the previous one:
        unchanged links keep their intervals, changed ones are closed and
        opened anew, missing ones are closed; anonymous peers keep their
        slots when unchanged. Named peers the store does not know are added
        as domains. Entries naming the same peer are merged.

        @param reporter: the reporting domain.
        @param remotes: every remote domain of the report.
        @return: what changed.
        """

    def recordFetch(domain: str, facts: DomainFacts) -> Deferred[bool]:
        """
        Record that C{domain} was fetched now and what was found (a stale
        domain that is fetched is no longer stale).

        @return: whether the facts changed.
        """

    def markStale(window: float) -> Deferred[list[str]]:
        """
        Mark stale every domain not seen for C{window} seconds (neither
        answering, nor reporting, nor named in a report confirmed in that
        time).

        @return: the domains newly marked, sorted.
        """

    def graph(at: float | None = None) -> Deferred[GraphSnapshot]:
        """
        @param at: a past time, or L{None} for now.
        @return: the stored graph as it was at C{at}.
        """

    def domain(domain: str) -> Deferred[DomainRecord | None]:
        """
        @return: what is known about C{domain} now, or L{None} if nothing.
        """

    def peers(domain: str) -> Deferred[list[ReportedLink]]:
        """
        @return: the current links that C{domain} reports or that name it.
        """

    def history(domain: str, limit: int = 1000) -> Deferred[list[GraphEvent]]:
        """
        @return: the newest C{limit} events about C{domain} (its facts, its
            links, the links that name it), oldest first.
        """

    def events(afterId: int = 0, limit: int = 1000) -> Deferred[list[GraphEvent]]:
        """
        @return: the first C{limit} events with an id above C{afterId}, in
            order.
        """

    def counts() -> Deferred[GraphCounts]:
        """
        @return: counts over the current store.
        """

    def statusCounts() -> Deferred[dict[str, int]]:
        """
        @return: how many known domains have each status: the status of
            their current facts (the crawler's vocabulary), C{"stale"} for
            a stale one, C{"unfetched"} for one only named by others. Every
            known domain counts once.
        """

    def profiles() -> Deferred[list[DomainProfile]]:
        """
        @return: the software and stream facts of every current, not stale
            domain that was fetched, by domain.
        """


class ICrawler(Interface):
    """
    The aggregator's crawl loop, as the web API drives and explains it.
    """

    def submit(domain: str) -> SubmitOutcome:
        """
        Queue C{domain} for a crawl with priority (a known domain is
        fetched again soon, unless it was fetched a moment ago).

        @param domain: the domain as a user typed it.
        @return: what will happen.
        @raise xmppnetgraph.error.InvalidDomainName: if C{domain} is not a
            valid domain name (nothing is queued).
        """

    def status(domain: str) -> CrawlStatus | None:
        """
        @param domain: a normalised domain name.
        @return: where the crawler stands with C{domain}, or L{None} if it
            does not know it.
        """

    def queue() -> CrawlQueue:
        """
        @return: what the crawl queue holds now.
        """
