# -*- test-case-name: tests.test_http_tls -*-
"""
The web endpoint on twisted.web's own TLS, as README's "Deploy a public
node" configures it: C{--web ssl:PORT:privateKey=...:certKey=...:
extraCertChain=...}, parsed by the command line, served by a real node on
loopback, fetched over HTTPS by a client that trusts only the test CA.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, ResponseNeverReceived, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from tests.nodes import NoDNS
from tests.pki import TestCA
from xmppnetgraph.node import buildService
from xmppnetgraph.tap import Options


@implementer(IPolicyForHTTPS)
class TrustFor:
    """
    Verify the server as C{hostname} against C{root}, whatever address
    the URL names.
    """

    def __init__(self, hostname: str, root: Certificate) -> None:
        self.hostname = hostname
        self.root = root

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return optionsForClientTLS(self.hostname, trustRoot=self.root)


class TLSWebTests(TestCase):
    """
    C{--web ssl:...}.
    """

    timeout = 30

    async def test_https(self) -> None:
        """
        A node started with C{--web ssl:0:privateKey=...:certKey=...:
        extraCertChain=...} (a certificate from an intermediate CA, for the
        domain and its pubsub host, the one pair that s2s uses too) answers
        over HTTPS to a client that trusts only the root: so the endpoint
        sent the intermediate. A client that expects another name refuses
        it (the client does verify).
        """
        base = Path(self.mktemp()).absolute()
        root = TestCA(base / "root", "test root")
        intermediate = TestCA(base / "intermediate", "test intermediate", issuer=root)
        cert, key = intermediate.issue(["node.example", "pubsub.node.example"])
        options = Options()
        options.parseOptions(
            [
                "--domain=node.example",
                f"--data-dir={base / 'data'}",
                "--s2s=tcp:0:interface=127.0.0.1",
                f"--web=ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
                f":extraCertChain={intermediate.caPath}",
                f"--tls-cert={cert}",
                f"--tls-key={key}",
                "--no-crawl",
            ]
        )
        node = buildService(options.config, reactor, resolver=NoDNS())
        node.startService()
        self.addCleanup(node.stopService)
        web = node.web
        assert web is not None and web.port is not None
        port = web.port.getHost().port
        trust = Certificate.loadPEM(root.caPath.read_bytes())
        agent = Agent(reactor, contextFactory=TrustFor("node.example", trust))
        response = await agent.request(
            b"GET",
            f"https://127.0.0.1:{port}/api/links".encode(),
            Headers({b"host": [b"node.example"]}),
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(await readBody(response))["domain"], "node.example")
        wrong = Agent(reactor, contextFactory=TrustFor("other.example", trust))
        with self.assertRaises(ResponseNeverReceived):
            await wrong.request(b"GET", f"https://127.0.0.1:{port}/api/links".encode())
