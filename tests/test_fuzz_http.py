# -*- test-case-name: tests.test_fuzz_http -*-
"""
Property-based tests of the web API's parameters: every route of
L{WebAPI.routes}, in memory (L{treq.testing.StubTreq}) on a real graph
store on a SQLite file, with random paths and path parameters, query
strings, headers (C{Last-Event-ID}, C{If-None-Match}, C{Accept-Encoding},
C{Content-Type}, C{X-Forwarded-For}) and C{POST /api/submit} bodies.

Every answer is a 2xx, a 3xx (304 included) or a 4xx with the documented
JSON error; never a 5xx, never a traceback; nothing is logged as a
failure.

Hypothesis runs its examples one after the other in a thread of the
reactor's pool; each request is made in the reactor's thread
(C{blockingCallFromThread}), where the store's answers arrive, so the real
store, thread pool and all, answers every example.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote_from_bytes

import attrs
from hypothesis import example, given
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread, deferToThread
from twisted.trial.unittest import TestCase

from tests.fuzzing import LoggedFailures, examples
from tests.test_http import validator
from tests.test_http_api import APIFixture
from xmppnetgraph.http.api import ServerInfo
from xmppnetgraph.model import ConsentState, PublishedServerInfo

_percentEncoded = st.binary(max_size=12).map(lambda raw: quote_from_bytes(raw, safe=""))

# Path and query values: domain-like, numbers, dates, random text and
# random (percent-encoded) bytes.
_values = st.one_of(
    st.sampled_from(
        [
            "",
            "a.example",
            "A.Example",
            "b.example",
            "nobody.example",
            "a..example",
            "b%C3%BCcher.example",
            "%FF",
            "%",
            "%2F",
            "0",
            "1",
            "-1",
            "99999999999999999999999999",
            "1e9",
            "true",
            "off",
            "2023-11-14T22:13:30Z",
            "2023-11-14 22:13:30.5+01:00",
            "9999-12-31T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "2023-02-31T00:00:00Z",
            "2023-01-01T00:00:00.99999999999999999999Z",
            "yesterday",
        ]
    ),
    st.text(max_size=12).map(lambda t: quote_from_bytes(t.encode("utf-8"), safe="")),
    _percentEncoded,
)

_parameterNames = st.sampled_from(
    ["focus", "skipAnon", "combineAnon", "fold", "at", "after", "domain", "x", "", "%FF"]
)


@st.composite
def queries(draw: st.DrawFn) -> str:
    """
    A query string: known and unknown parameters, repeated, without a
    value, with random values.
    """
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(_parameterNames)
        if draw(st.integers(0, 3)) == 0:
            parts.append(name)
        else:
            parts.append(f"{name}={draw(_values)}")
    separator = draw(st.sampled_from(["&", "&", ";"]))
    return separator.join(parts)


@st.composite
def paths(draw: st.DrawFn) -> str:
    """
    A path: one of the routes, with random path parameters, or something
    near one.
    """
    return draw(
        st.one_of(
            st.sampled_from(
                [
                    "/",
                    "/stats",
                    "/add",
                    "/api/graph",
                    "/api/graph.graphml",
                    "/api/graph.gexf",
                    "/data.json",
                    "/api/stats",
                    "/api/events",
                    "/api/submit",
                    "/api/links",
                    "/api/openapi.json",
                    "/api/serverinfo",
                    "/api/domains/",
                    "/badge/.svg",
                    "/assets/",
                    "/api/domains/a.example/x",
                    "//api/graph",
                    "/api/../api/graph",
                    "/nothing",
                ]
            ),
            _values.map(lambda v: f"/api/domains/{v}"),
            _values.map(lambda v: f"/badge/{v}.svg"),
            _values.map(lambda v: f"/assets/{v}"),
            _percentEncoded.map(lambda v: f"/{v}"),
        )
    )


_headerValues = st.one_of(
    st.sampled_from(
        [
            b"",
            b"*",
            b"gzip",
            b"gzip;q=0",
            b"identity, gzip;q=1.0",
            b"deflate, br",
            b'"x"',
            b'W/"x", "y"',
            b"0",
            b"-1",
            b"3",
            b"99999999999999999999999999",
            b"1.5",
            b"application/json",
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b";+*",
            b"text/plain",
            b"192.0.2.1",
            b"192.0.2.1, 10.0.0.1",
            b"::1",
            b"not an address",
        ]
    ),
    # What RFC 9110 allows in a field value (visible characters, blanks,
    # obs-text): Twisted's HTTP parser answers anything else itself with a
    # bare 400 before the request reaches a resource. Not 0x85 either, which
    # Twisted's client refuses to send (a line break in Latin-1 text).
    st.binary(max_size=20).map(
        lambda b: bytes(c for c in b if c == 0x09 or (0x20 <= c != 0x7F and c != 0x85)).strip()
    ),
)

_headerNames = st.sampled_from(
    [
        b"Last-Event-ID",
        b"If-None-Match",
        b"Accept-Encoding",
        b"Accept",
        b"Content-Type",
        b"X-Forwarded-For",
    ]
)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

_bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=40),
    st.builds(lambda v: json.dumps(v).encode(), _json),
    st.builds(lambda v: json.dumps({"domain": v}).encode(), _json),
    st.builds(lambda v: b"domain=" + v.encode("ascii"), _values),
)


@attrs.frozen
class FuzzRequest:
    """
    One request.
    """

    method: str
    path: str
    query: str
    headers: Mapping[bytes, list[bytes]]
    body: bytes | None


requests = st.builds(
    FuzzRequest,
    st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE"]),
    paths(),
    queries(),
    st.dictionaries(_headerNames, st.lists(_headerValues, min_size=1, max_size=2), max_size=3),
    st.none() | _bodies,
)

submissions = st.builds(
    FuzzRequest,
    st.just("POST"),
    st.just("/api/submit"),
    st.just(""),
    st.dictionaries(
        st.sampled_from([b"Content-Type", b"X-Forwarded-For"]),
        st.lists(_headerValues, min_size=1, max_size=2),
        max_size=2,
    ),
    _bodies,
)


def _notes(error: BaseException) -> list[str]:
    """
    @return: the notes of C{error} and of the errors it groups, and the
        errors themselves.
    """
    notes = [repr(error), *getattr(error, "__notes__", [])]
    for inner in getattr(error, "exceptions", ()):
        notes.extend(_notes(inner))
    return notes


def _serverInfo() -> PublishedServerInfo:
    """
    @return: what the fake publisher says it publishes.
    """
    return PublishedServerInfo(
        "agg.example",
        "<serverinfo xmlns='urn:xmpp:serverinfo:0'/>",
        1_700_000_000.0,
        (("b.example", ("incoming",)),),
        (("b.example", ConsentState(True, 1_700_000_000.0, None)),),
    )


class ParameterTests(APIFixture, TestCase):
    """
    Random requests to every route.
    """

    async def answer(self, request: FuzzRequest) -> tuple[int, Mapping[bytes, list[bytes]], bytes]:
        """
        Make C{request}; an event stream that opens is closed at once.

        @return: the status, headers and body of the answer.
        """
        url = "http://agg.example" + request.path + ("?" + request.query if request.query else "")
        kw: dict[str, Any] = {"headers": dict(request.headers)}
        if request.body is not None:
            kw["data"] = request.body
        response = await self.settle(self.http.request(request.method, url, **kw))
        if response.headers.getRawHeaders(b"content-type") == [b"text/event-stream; charset=utf-8"]:
            self.api.events.stop()
        body = await self.settle(response.content())
        headers = {k.lower(): v for k, v in response.headers.getAllRawHeaders()}
        return response.code, headers, body

    def check(self, request: FuzzRequest) -> None:
        """
        Make C{request} from a thread that is not the reactor's, and check
        what it answers.
        """
        with LoggedFailures() as failures:
            code, headers, body = blockingCallFromThread(
                reactor, lambda: Deferred.fromCoroutine(self.answer(request))
            )
        self.assertEqual(failures.events, [], request)
        self.assertTrue(200 <= code < 500, (code, headers, body, request))
        self.assertNotIn(b"Traceback", body)
        if code >= 400:
            self.assertEqual(
                headers.get(b"content-type"),
                [b"application/json; charset=utf-8"],
                (code, headers, body, request),
            )
            if request.method != "HEAD":
                error = json.loads(body)
                validator("Error").validate(error)
                self.assertEqual(error["error"]["status"], code)

    async def hunt(
        self,
        strategy: st.SearchStrategy[FuzzRequest],
        count: int,
        regressions: Sequence[FuzzRequest] = (),
    ) -> None:
        """
        Check C{count} requests drawn from C{strategy} against a filled
        store, and the C{regressions} first.
        """
        info = ServerInfo(_serverInfo, "pubsub.agg.example", "serverinfo", "current")
        self.makeAPI(serverInfo=info)
        await self.fill()
        # StubTreq's in-memory site parses POST bodies as Twisted does by
        # default; the node's site (http.build) leaves them to the API, and
        # so must this one, or Twisted's own answers (a bare 400 for a bad
        # multipart body, an IndexError for some content types) are tested.
        site = self.http._agent._serverFactory
        self.assertTrue(site._parsePOSTFormSubmission)
        site._parsePOSTFormSubmission = False

        def check(request: FuzzRequest) -> None:
            self.check(request)

        for regression in regressions:
            check = example(regression)(check)
        check = examples(count)(given(strategy)(check))

        try:
            await deferToThread(check)
        except Exception as e:
            # Trial does not show the notes in which Hypothesis names the
            # failing example.
            raise AssertionError("\n".join(_notes(e))) from e

    async def test_everyRoute(self) -> None:
        """
        Random methods, paths, query strings, headers and bodies.
        """
        await self.hunt(
            requests,
            200,
            [
                # Any byte above 0x7F in a query was a 500.
                FuzzRequest("GET", "/api/graph", "focus=b%C3%BCcher.example", {}, None),
                FuzzRequest("GET", "/api/domains/a.example", "history=%FF", {}, None),
            ],
        )

    async def test_submit(self) -> None:
        """
        Random C{POST /api/submit} bodies and content types.
        """
        await self.hunt(
            submissions,
            100,
            [
                # Twisted's form parsing answered these itself, or failed.
                FuzzRequest(
                    "POST",
                    "/api/submit",
                    "",
                    {b"Content-Type": [b"multipart/form-data; boundary=x"]},
                    b"\x00",
                ),
                FuzzRequest("POST", "/api/submit", "", {b"Content-Type": [b";+*"]}, b"\x00"),
            ],
        )
