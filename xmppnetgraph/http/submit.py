# -*- test-case-name: tests.test_http_api -*-
"""
C{POST /api/submit}: a user asks the crawler to look at a domain (a form
field or a JSON body C{{"domain": ...}}); the answer says what will happen
(the crawler's L{SubmitOutcome}). Each client address may submit
C{--submit-rate} valid domains per hour (L{RateLimiter}); more get a 429
with C{Retry-After}. Without a crawler (C{--no-crawl}) it is a 503.

The client address is the connection's peer, unless that is a trusted
reverse proxy (C{--trusted-proxy}): then it is the rightmost address of
C{X-Forwarded-For} that is not a trusted proxy itself (L{clientAddress}),
so that a client cannot choose its own address by sending the header.
"""

from __future__ import annotations

import ipaddress
import json
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request

from xmppnetgraph.error import BadParameter, RateLimited, Unavailable
from xmppnetgraph.http import params
from xmppnetgraph.http.domains import crawlJSON
from xmppnetgraph.http.errors import Response, jsonResponse
from xmppnetgraph.interfaces import ICrawler

#: The window of the rate limit.
HOUR = 3600.0

#: The largest body read.
MAX_BODY = 4096


class RateLimiter:
    """
    At most C{rate} events per client per C{window} seconds (a sliding
    window), for at most C{maxClients} clients remembered at once (the
    least recently active are forgotten first).
    """

    def __init__(
        self, clock: IReactorTime, rate: int, window: float = HOUR, maxClients: int = 10_000
    ) -> None:
        self._clock = clock
        self.rate = rate
        self.window = window
        self.maxClients = maxClients
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def take(self, client: str) -> None:
        """
        Count one event of C{client}.

        @raise RateLimited: if it had C{rate} in the window already
            (nothing is counted then).
        """
        now = self._clock.seconds()
        stamps = self._seen.get(client)
        if stamps is None:
            stamps = self._seen[client] = deque()
        self._seen.move_to_end(client)
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if len(stamps) >= self.rate:
            wait = stamps[0] + self.window - now if stamps else self.window
            raise RateLimited(
                f"at most {self.rate} submissions per hour from one address; try again in"
                f" {int(wait) + 1} seconds",
                wait,
            )
        stamps.append(now)
        while len(self._seen) > self.maxClients:
            self._seen.popitem(last=False)


def _submitted(request: Request) -> str:
    """
    The body is read here, not by Twisted (the site does not parse forms:
    L{xmppnetgraph.http.build}), so that only the two documented bodies are
    read, at most L{MAX_BODY} bytes of them, and a malformed one is a JSON
    400 like every other error (Twisted answers a malformed multipart body
    with a bare 400 of its own before the request reaches the API).

    @return: the C{domain} of a form (C{application/x-www-form-urlencoded})
        or JSON body, or of the query.
    @raise BadParameter: if there is none or the body is malformed.
    """
    contentType = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if contentType == b"application/json":
        try:
            body = json.loads(_body(request))
        except (ValueError, UnicodeDecodeError):
            raise BadParameter("the body is not JSON") from None
        value = body.get("domain") if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise BadParameter('expected a JSON object {"domain": "example.org"}')
        return value
    args = dict(params.query(request))
    if contentType == b"application/x-www-form-urlencoded":
        for name, values in params.parseForm(_body(request)).items():
            args[name] = [*args.get(name, ()), *values]
    value = params.text(args, "domain")
    if value is None:
        raise BadParameter('domain: missing (a form field, or a JSON body {"domain": ...})')
    return value


def _body(request: Request) -> bytes:
    """
    @return: the body of C{request}.
    @raise BadParameter: if it is larger than L{MAX_BODY}.
    """
    raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
    if len(raw) > MAX_BODY:
        raise BadParameter(f"the body is larger than {MAX_BODY} bytes")
    return raw


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def clientAddress(request: Request, trusted: Iterable[Network]) -> str:
    """
    @param trusted: the networks of trusted reverse proxies.
    @return: the address of the client of C{request}: its peer's, or, from
        a trusted proxy, the rightmost untrusted address of its
        C{X-Forwarded-For} headers (the nearest hop, if one is malformed,
        or all are trusted).
    """
    trusted = tuple(trusted)
    peer = request.getClientAddress()
    client = str(getattr(peer, "host", None) or peer)

    def isTrusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in trusted)

    if not isTrusted(_address(client)):
        return client
    forwarded = b",".join(request.requestHeaders.getRawHeaders(b"x-forwarded-for", []))
    for hop in reversed(forwarded.decode("latin-1").split(",")):
        address = _address(hop)
        if address is None:
            break
        client = str(address)
        if not isTrusted(address):
            break
    return client


class Submissions:
    """
    The handler of C{POST /api/submit}.
    """

    def __init__(
        self, crawler: ICrawler | None, limiter: RateLimiter, trustedProxies: Iterable[str] = ()
    ) -> None:
        """
        @param trustedProxies: the addresses or networks of the reverse
            proxies whose C{X-Forwarded-For} is believed.
        """
        self._crawler = crawler
        self.limiter = limiter
        self._trusted = tuple(ipaddress.ip_network(n, strict=False) for n in trustedProxies)

    def submit(self, request: Request, path: Mapping[str, str]) -> Response:
        """
        C{POST /api/submit}.
        """
        if self._crawler is None:
            raise Unavailable("this node does not crawl (--no-crawl): submissions are off")
        domain = params.domain(_submitted(request).strip())
        self.limiter.take(clientAddress(request, self._trusted))
        outcome = self._crawler.submit(domain)
        return jsonResponse(
            {
                "domain": outcome.domain,
                "accepted": outcome.accepted,
                "message": outcome.message,
                "status": crawlJSON(outcome.status),
            },
            202 if outcome.accepted else 200,
        )
