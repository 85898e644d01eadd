"""
Test helpers: run real xmppnetgraph nodes on loopback inside the trial
reactor, and talk to them.
"""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.web.client import Agent, readBody
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel.disco import DiscoClientProtocol
from wokkel.generic import Request, parseXml

from xmppnetgraph.component import LocalComponent
from xmppnetgraph.config import Config, Route
from xmppnetgraph.node import buildService
from xmppnetgraph.s2s.service import S2SService


def _ephemeralPorts() -> range:
    """
    @return: the ports the system gives outgoing connections (and bind to
        port 0) on this machine.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(n) for n in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


_handedOut: set[int] = set()


def freePort(address: str = "127.0.0.1") -> int:
    """
    @return: a TCP port that is free on C{address} right now, taken from
        below the system's ephemeral range (a port from that range may be
        given to an outgoing connection before the test listens on it) and
        never handed out twice in one run (two picks before either listens,
        or a node from an earlier test still holding its port, would clash).
    """
    ephemeral = _ephemeralPorts()
    for _ in range(1000):
        port = random.randrange(10_000, max(10_001, ephemeral.start))
        if port in ephemeral:
            break
        if port in _handedOut:
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError:
                continue
            _handedOut.add(port)
            return port
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class NoDNS:
    """
    A resolver for tests: every lookup fails, so only static routes work and
    nothing leaves the machine.
    """

    def lookupService(self, name: str, timeout: Any = None) -> defer.Deferred[Any]:
        """
        Fail like a missing SRV record.
        """
        from twisted.names.error import DNSNameError

        return defer.fail(DNSNameError(name))


class SRVOnly:
    """
    A resolver for tests that knows some SRV records and nothing else.

    @ivar records: SRV name -> (target host, port).
    """

    def __init__(self, records: dict[str, tuple[str, int]]) -> None:
        self.records = records

    def lookupService(self, name: str, timeout: Any = None) -> defer.Deferred[Any]:
        """
        Answer from L{records}, or fail like a missing record.
        """
        from twisted.names import dns
        from twisted.names.error import DNSNameError

        if name not in self.records:
            return defer.fail(DNSNameError(name))
        host, port = self.records[name]
        answer = dns.RRHeader(name=name, type=dns.SRV, payload=dns.Record_SRV(0, 0, port, host))
        return defer.succeed(([answer], [], []))


class RunningNode:
    """
    One node of ours, built with L{buildService} and started.
    """

    def __init__(
        self, directory: Path, domain: str, address: str, s2sPort: int | None = None
    ) -> None:
        self.directory = directory
        self.domain = domain
        self.address = address
        self.s2sPort = s2sPort or freePort(address)

    def build(self, resolver: Any = None, **config: Any) -> None:
        """
        Build the node's service from C{config} (L{Config} fields).

        Unless C{crawl} is given, the node does not crawl: the tests of the
        other modules count stanzas and links that a crawler would add to
        (the crawler's own tests turn it on). Unless C{s2s} is given, the
        node listens on L{s2sPort} of L{address}.

        @param resolver: the DNS resolver (default: L{NoDNS}).
        """
        config.setdefault("crawl", False)
        self.config = Config(
            domain=self.domain,
            dataDir=self.directory / self.domain,
            s2s=config.pop("s2s", f"tcp:{self.s2sPort}:interface={self.address}"),
            # Port 0: the system picks a free one when the node starts (a
            # port picked beforehand may be taken by then; see webPort).
            web=f"tcp:0:interface={self.address}",
            **config,
        )
        self.service = buildService(self.config, reactor, resolver=resolver or NoDNS())
        self.disco = DiscoClientProtocol()
        self.disco.setHandlerParent(self.domainHost)

    @property
    def webPort(self) -> int:
        """
        The port the started node's web endpoint listens on.
        """
        web = self.service.web
        assert web is not None and web.port is not None, "the web endpoint is not listening"
        return int(web.port.getHost().port)

    @property
    def s2s(self) -> S2SService:
        """
        The node's S2SService.
        """
        return self.service.s2s

    @property
    def domainHost(self) -> LocalComponent:
        """
        The host of the node's domain's handlers.
        """
        return self.service.core.component(self.domain)

    def start(self) -> None:
        """
        Start listening.
        """
        self.service.startService()

    def stop(self) -> defer.Deferred[Any]:
        """
        Stop, closing every stream.
        """
        return defer.maybeDeferred(self.service.stopService)

    def links(self) -> list[tuple[str, str, str, str | None]]:
        """
        @return: (domain, direction, auth, tls) of every live link, sorted.
        """
        return sorted(
            (link.domain, link.direction, link.auth, link.tls)
            for link in self.s2s.linkTable.links()
        )

    async def apiLinks(self) -> Any:
        """
        @return: the decoded C{GET /api/links} of this node.
        """
        url = f"http://{self.address}:{self.webPort}/api/links".encode()
        response = await Agent(reactor).request(b"GET", url)
        return json.loads(await readBody(response))


def countAcceptedConnections(testCase: Any) -> dict[S2SService, int]:
    """
    Count the connections the s2s listeners of the nodes built from now on
    accept (streams and dialback verification connections alike), by the
    node's L{S2SService}; the count goes on for the rest of the test.

    @param testCase: the test, whose C{patch} undoes this afterwards.
    @return: the counts, updated as connections come.
    """
    counts: dict[S2SService, int] = {}
    connected = S2SService._incomingConnected

    def counting(self: S2SService, xs: Any) -> None:
        counts[self] = counts.get(self, 0) + 1
        connected(self, xs)

    testCase.patch(S2SService, "_incomingConnected", counting)
    return counts


def routesTo(*peers: Any) -> tuple[Route, ...]:
    """
    @return: static routes to each peer's domain and subdomains, for peers
        with C{domain}, C{address} and C{s2sPort}.
    """
    routes = []
    for peer in peers:
        routes.append(Route(peer.domain, peer.address, peer.s2sPort))
        routes.append(Route("*." + peer.domain, peer.address, peer.s2sPort))
    return tuple(routes)


async def waitFor(predicate: Any, timeout: float = 10.0) -> None:
    """
    Poll C{predicate} in the reactor until it is true.

    @raise AssertionError: if it is still false after C{timeout} seconds.
    """
    from twisted.internet.task import deferLater

    waited = 0.0
    while not predicate():
        if waited >= timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await deferLater(reactor, 0.05, lambda: None)
        waited += 0.05


def linkedBothWays(node: RunningNode, peer: str) -> bool:
    """
    @return: whether C{node}'s links with C{peer} carry stanzas both ways:
        a bidirectional one (XEP-0288), or an incoming and an outgoing one.
    """
    links = [link for link in node.s2s.linkTable.links() if link.domain == peer]
    return any(link.bidi for link in links) or {link.direction for link in links} == {
        "incoming",
        "outgoing",
    }


async def discoBothWays(testCase: Any, a: RunningNode, b: RunningNode) -> None:
    """
    A asks B for disco#info; assert the answer, then wait until each node's
    links with the other carry stanzas both ways (L{linkedBothWays}).
    """
    info = await a.disco.requestInfo(JID(b.domain), sender=JID(a.domain))
    testCase.assertIn(("server", "im"), info.identities)
    try:
        await waitFor(lambda: linkedBothWays(a, b.domain) and linkedBothWays(b, a.domain))
    except AssertionError:
        testCase.fail(f"links: a={a.links()} b={b.links()}")


def bare(value: str) -> JID:
    """
    @return: C{value} as a JID.
    """
    return JID(value)


class RawRequest(Request):  # type: ignore[misc]
    """
    An IQ request whose child is given as XML.
    """

    def __init__(self, recipient: str, sender: str, stanzaType: str, child: str) -> None:
        super().__init__(recipient=JID(recipient), sender=JID(sender), stanzaType=stanzaType)
        self.child = child

    def toElement(self) -> domish.Element:
        """
        @return: the IQ with the child.
        """
        element = Request.toElement(self)
        element.addChild(parseXml(self.child.encode("utf-8")))
        return element
