# -*- test-case-name: tests.test_node -*-
"""
Tests for L{xmppnetgraph.node.buildService}: the node's tree as its
builders make it, without starting it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from xmppnetgraph.config import Config
from xmppnetgraph.node import NodeService, buildService


class BuildServiceTests(TestCase):
    """
    The builders attach their parts under one L{NodeService}.
    """

    def build(self, **config: Any) -> NodeService:
        """
        @return: a node for C{example.org} in a new data directory (not
            started); its database is closed at the end of the test.
        """
        node = buildService(
            Config(domain="example.org", dataDir=Path(self.mktemp()).absolute(), **config),
            reactor,
        )
        self.addCleanup(node.core.database.close)
        return node

    def test_children(self) -> None:
        """
        The tree has the hosts first, then s2s, its listener, the publisher,
        the crawler, the layout and the web endpoint, by name; the node keeps
        what each module made.
        """
        node = self.build()
        self.assertEqual(
            [child.name for child in node],
            ["components", "s2s", "s2s-listen", "publisher", "crawler", "layout", "web"],
        )
        self.assertEqual(
            sorted(child.name for child in node.core.components),
            ["example.org", "pubsub.example.org"],
        )
        self.assertIs(node.s2s, node.getServiceNamed("s2s"))
        self.assertIs(node.serverInfo.publisher, node.getServiceNamed("publisher"))
        self.assertIs(node.web, node.getServiceNamed("web"))
        self.assertIs(node.crawler, node.getServiceNamed("crawler"))

    def test_roles(self) -> None:
        """
        C{--no-publish} and C{--no-web} leave their parts out; a direct-TLS
        endpoint adds its listener.
        """
        node = self.build(publish=False, enableWeb=False, s2sDirectTLS="tcp:5270")
        self.assertEqual(
            [child.name for child in node],
            ["components", "s2s", "s2s-listen", "s2s-direct-tls", "crawler"],
        )
        self.assertIsNone(node.serverInfo.publisher)
        self.assertIsNone(node.web)

    def test_noCrawl(self) -> None:
        """
        C{--no-crawl} leaves the crawler out; the graph store stays (the
        web serves what is stored).
        """
        node = self.build(crawl=False)
        self.assertNotIn("crawler", [child.name for child in node])
        self.assertIsNone(node.crawler)
        self.assertIsNotNone(node.graph)

    def test_reactorChecked(self) -> None:
        """
        A reactor without what a node needs (here a bare clock: no TCP, no
        threads) is refused at once, naming what is missing.
        """
        from twisted.internet.task import Clock

        config = Config(domain="example.org", dataDir=Path(self.mktemp()).absolute())
        with self.assertRaises(TypeError) as caught:
            buildService(config, Clock())
        self.assertIn("IReactorTCP", str(caught.exception))
        self.assertIn("IReactorThreads", str(caught.exception))
