# -*- test-case-name: tests.test_faults_database -*-
"""
The PostgreSQL server stopped and started again under a running node: its
s2s streams go on, the API serves the last graph, writes fail while the
server is away and work again when it is back, nothing committed is lost,
and the log says what happened once.

The server is one of the test's own (L{privateCluster}), on its own socket
directory, so that stopping it disturbs no other test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody
from twisted.words.protocols.jabber.jid import JID

from tests.nodes import RunningNode, discoBothWays, routesTo
from tests.postgres import postgresSkip, privateCluster, requirePostgres
from xmppnetgraph.error import StorageError
from xmppnetgraph.serverinfo.payload import RemoteDomain

ADDRESS = "127.0.0.1"


async def getJSON(node: RunningNode, path: str) -> tuple[int, Any]:
    """
    @return: the status and decoded body of C{GET path} on C{node}'s web
        endpoint.
    """
    url = f"http://{node.address}:{node.webPort}{path}".encode()
    response = await Agent(reactor).request(b"GET", url)
    return response.code, json.loads(await readBody(response))


def domainsOf(graph: Any) -> set[str]:
    """
    @return: the names of the nodes of an C{/api/graph} answer.
    """
    return {node["id"] for node in graph["nodes"]}


class DatabaseRestartTests(TestCase):
    """
    Node A on a PostgreSQL server that is stopped and started again; node
    B (SQLite) federates with it.
    """

    skip = postgresSkip()
    timeout = 60

    def setUp(self) -> None:
        requirePostgres()
        self.cluster = privateCluster(self)
        base = Path(self.mktemp())
        base.mkdir()
        self.a = RunningNode(base, "a.example", ADDRESS)
        self.b = RunningNode(base, "b.example", ADDRESS)
        self.messages: list[str] = []

        def observe(event: LogEvent) -> None:
            self.messages.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def said(self, text: str) -> int:
        """
        @return: how many log messages contain C{text}.
        """
        return sum(text in message for message in self.messages)

    async def test_restartUnderRunningNode(self) -> None:
        """
        While the server is down: streams go on and new requests over s2s
        are answered, C{/api/graph} answers with the last graph, C{/api/links}
        answers, writes fail with L{StorageError}, and "database unavailable"
        is logged once for several failures. After the server is back,
        writes work again (the pool's dead connections are replaced), what
        was committed before is there, and "database available again" is
        logged once.
        """
        url = self.cluster.createDatabase()
        self.a.build(routes=routesTo(self.b), database=url, namePolicy="reported")
        self.b.build(routes=routesTo(self.a))
        for node in (self.a, self.b):
            node.start()
            self.addCleanup(node.stop)
        await discoBothWays(self, self.a, self.b)
        store = self.a.service.graph
        await store.storeReport("hub.example", [RemoteDomain("before.example")])
        code, before = await getJSON(self.a, "/api/graph")
        self.assertEqual(code, 200)
        self.assertIn("before.example", domainsOf(before))
        # Every later answer of the current graph is computed anew (from
        # the store, or from the last answer when the store fails).
        self.a.service.web._factory.api.views.freshFor = -1.0  # type: ignore[union-attr]

        self.cluster.halt()
        for n in range(3):
            await self.assertFailure(
                store.storeReport("hub.example", [RemoteDomain(f"down{n}.example")]),
                StorageError,
            )
        code, during = await getJSON(self.a, "/api/graph")
        self.assertEqual((code, during["nodes"]), (200, before["nodes"]))
        code, links = await getJSON(self.a, "/api/links")
        self.assertEqual(code, 200)
        self.assertIn("b.example", json.dumps(links))
        info = await self.b.disco.requestInfo(JID(self.a.domain), sender=JID(self.b.domain))
        self.assertIn(("server", "im"), info.identities)
        self.assertEqual(self.said("database unavailable"), 1)
        self.assertEqual(self.said("database available again"), 0)

        self.cluster.resume()
        # More writes than the pool has connections: each dead one is met.
        for n in range(8):
            await store.storeReport("hub.example", [RemoteDomain(f"after{n}.example")])
        code, after = await getJSON(self.a, "/api/graph")
        self.assertEqual(code, 200)
        self.assertIn("after7.example", domainsOf(after))
        self.assertNotIn("down0.example", domainsOf(after))
        history = await store.history("hub.example")
        self.assertTrue(any("before.example" in repr(event) for event in history))
        self.assertEqual(self.said("database unavailable"), 1)
        self.assertEqual(self.said("database available again"), 1)
        self.assertEqual(self.flushLoggedErrors(), [])
