# -*- test-case-name: tests.test_http -*-
"""
The JSON API of real nodes against its OpenAPI description.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody

from tests.nodes import RunningNode, discoBothWays, routesTo, waitFor
from xmppnetgraph.http.api import openAPIDocument

DOCUMENT = json.loads(openAPIDocument())


def validator(schemaName: str) -> Draft202012Validator:
    """
    @return: a validator for the named schema of the OpenAPI document.
    """
    return Draft202012Validator({**DOCUMENT, "$ref": f"#/components/schemas/{schemaName}"})


class DocumentTests(SynchronousTestCase):
    """
    The OpenAPI document itself.
    """

    def test_schemasAreValid(self) -> None:
        """
        Every schema in the document is a valid JSON Schema.
        """
        for schema in DOCUMENT["components"]["schemas"].values():
            Draft202012Validator.check_schema(schema)

    def test_schemasCatchMistakes(self) -> None:
        """
        The schemas reject a response with a misspelt or missing field
        (so that the API tests below can fail).
        """
        link = {
            "domain": "a.example",
            "local_domain": "b.example",
            "direction": "incoming",
            "bidi": False,
            "auth": "dialback",
            "tls": "TLSv1.3",
            "cert_valid": False,
            "since": "2026-01-01T00:00:00Z",
            "last_activity": "2026-01-01T00:00:00Z",
            "stanzas_in": 1,
            "stanzas_out": 0,
        }
        self.assertTrue(validator("Links").is_valid({"domain": "b.example", "links": [link]}))
        self.assertFalse(
            validator("Links").is_valid(
                {"domain": "b.example", "links": [{**link, "direction": "both"}]}
            )
        )
        broken = dict(link)
        broken["stanzasIn"] = broken.pop("stanzas_in")
        self.assertFalse(validator("Links").is_valid({"domain": "b.example", "links": [broken]}))


class APITests(TestCase):
    """
    Two federating nodes; A's API answers as its OpenAPI document says.
    """

    timeout = 60

    def setUp(self) -> None:
        base = Path(self.mktemp())
        base.mkdir()
        self.a = RunningNode(base, "a.example", "127.0.0.1")
        self.b = RunningNode(base, "b.example", "127.0.0.1")
        self.a.build(routes=routesTo(self.b), publishDelay=0.1)
        self.b.build(routes=routesTo(self.a), publishDelay=0.1)
        for node in (self.a, self.b):
            node.start()
            self.addCleanup(node.stop)

    async def get(self, path: str) -> tuple[int, bytes, str]:
        """
        @return: status, body and content type of C{GET path} on A.
        """
        url = f"http://{self.a.address}:{self.a.webPort}{path}".encode()
        response = await Agent(reactor).request(b"GET", url)
        body = await readBody(response)
        contentType = response.headers.getRawHeaders(b"content-type", [b""])[0].decode()
        return response.code, body, contentType

    async def test_linksAndServerInfo(self) -> None:
        """
        With links both ways and the item published, C{/api/links} and
        C{/api/serverinfo} are valid against their schemas and describe
        the same peer.
        """
        await discoBothWays(self, self.a, self.b)
        publisher: Any = self.a.service.serverInfo.publisher
        await waitFor(
            lambda: publisher.lastPayload is not None and "b.example" in publisher.lastPayload
        )

        code, body, contentType = await self.get("/api/links")
        self.assertEqual((code, contentType), (200, "application/json; charset=utf-8"))
        links = json.loads(body)
        validator("Links").validate(links)
        self.assertEqual({link["domain"] for link in links["links"]}, {"b.example"})

        code, body, _ = await self.get("/api/serverinfo")
        self.assertEqual(code, 200)
        info = json.loads(body)
        validator("ServerInfo").validate(info)
        self.assertEqual(info["remote_domains"], [{"name": "b.example", "connections": ["bidi"]}])
        self.assertEqual(
            [(p["domain"], p["consents"]) for p in info["peers"]], [("b.example", True)]
        )

    async def test_documentAndErrors(self) -> None:
        """
        The node serves its OpenAPI document; an unknown API path is a JSON
        404.
        """
        code, body, contentType = await self.get("/api/openapi.json")
        self.assertEqual((code, contentType), (200, "application/json"))
        self.assertEqual(json.loads(body), DOCUMENT)
        code, body, _ = await self.get("/api/nothing-here")
        self.assertEqual(code, 404)
        validator("Error").validate(json.loads(body))
        self.assertEqual(json.loads(body)["error"]["status"], 404)
