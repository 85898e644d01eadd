# -*- test-case-name: tests.test_component -*-
"""
A local domain's handler host: Wokkel's L{InternalComponent} plus safe IQ
request tracking and answers for requests nobody handles.
"""

from __future__ import annotations

import secrets
from typing import Protocol, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.words.protocols.jabber import error, jid
from twisted.words.xish import domish
from wokkel.component import InternalComponent, Router

from xmppnetgraph.names import parseJID

_T = TypeVar("_T")


class IQRequest(Protocol):
    """
    What L{LocalComponent.request} needs of a request: Wokkel's
    C{generic.Request} has it.
    """

    timeout: float | None
    """Seconds to wait for the response, or L{None} for the default."""

    def toElement(self) -> domish.Element:
        """
        @return: the IQ to send, addressed (C{to}) to the entity asked.
        """


def _markHandled(iq: domish.Element) -> None:
    """
    Tell the IQ's other observers that it is answered.

    That is Twisted's and Wokkel's convention: an attribute C{handled} set
    on the element, which L{domish.Element} does not declare.
    """
    iq.handled = True  # type: ignore[attr-defined]


class QuietRouter(Router):
    """
    Wokkel's in-process router without its logging of every stanza in full
    (a 1 MB item to 100 subscribers would write 100 MB of log).
    """

    _log = Logger()

    def route(self, stanza: domish.Element) -> None:
        """
        Send C{stanza} to the route of its recipient's domain, or to the
        default route (the s2s service).
        """
        try:
            destination = parseJID(stanza["to"]).host
        except (KeyError, ValueError):
            self._log.warn("dropping a {name} with a bad or no 'to'", name=stanza.name)
            return
        route = self.routes.get(destination, self.routes.get(None))
        if route is None:
            self._log.warn("no route to {destination}", destination=destination)
            return
        route.send(stanza)


class LocalComponent(InternalComponent):
    """
    Hosts the Wokkel handlers of one or more local domains on the router.

    Unlike Wokkel's component this one can send tracked IQ requests
    (C{XMPPHandler.request} works): ids are random and a response only
    counts when it comes from the entity the request went to, so a third
    domain cannot answer for it. IQ get/set requests that no handler takes
    are answered with C{service-unavailable}.
    """

    _log = Logger()

    def __init__(
        self, router: Router, domains: list[str], reactor: IReactorTime, iqTimeout: float = 30.0
    ) -> None:
        """
        @param router: the router to connect to.
        @param domains: the local domains this component serves.
        @param reactor: the clock for IQ timeouts.
        @param iqTimeout: seconds to wait for a response, unless the request
            says otherwise.
        """
        super().__init__(router)
        self.domains.update(domains)
        self._reactor = reactor
        self.iqTimeout = iqTimeout
        self._pending: dict[tuple[str, str], defer.Deferred[domish.Element]] = {}

    def startService(self) -> None:
        """
        Connect to the router and install IQ tracking.
        """
        super().startService()
        self.xmlstream.addObserver("/iq[@type='result']", self._onResponse, 100)
        self.xmlstream.addObserver("/iq[@type='error']", self._onResponse, 100)
        self.xmlstream.addObserver("/iq", self._onUnhandled, -100)

    def stopService(self) -> None:
        """
        Disconnect and fail pending requests; a second stop does nothing
        (Wokkel's would fail on the pipe it already dropped).
        """
        if self._pipe is None:
            return
        pending = list(self._pending.values())
        self._pending.clear()
        for d in pending:
            d.cancel()
        super().stopService()

    def send(self, obj: domish.Element | str) -> None:
        """
        Send C{obj} to the router; once the component has stopped, drop it
        instead (Wokkel would raise): work that finishes while the node
        stops, like a publish whose notifications go out last, has nobody
        to send to any more.
        """
        if self.xmlstream is None:
            to = obj.getAttribute("to") if isinstance(obj, domish.Element) else None
            self._log.info("component stopped: dropping a stanza to {to}", to=to)
            return
        super().send(obj)

    def request(self, request: IQRequest) -> defer.Deferred[domish.Element]:
        """
        Send an IQ request (a Wokkel C{generic.Request}) and track the response.

        @param request: the request.
        @return: a Deferred firing with the result iq, failing with
            L{error.StanzaError} for an error response or
            L{defer.TimeoutError} after L{iqTimeout} seconds.
        """
        element = request.toElement()
        element["id"] = secrets.token_hex(12)
        to = jid.internJID(element["to"]).full()
        key = (to, element["id"])

        def cancel(_: defer.Deferred[domish.Element]) -> None:
            self._pending.pop(key, None)

        d: defer.Deferred[domish.Element] = defer.Deferred(cancel)
        self._pending[key] = d
        timeout = getattr(request, "timeout", None) or self.iqTimeout
        d.addTimeout(timeout, self._reactor)
        d.addBoth(self._forget, key)
        self.send(element)
        return d

    def _forget(self, result: _T, key: tuple[str, str]) -> _T:
        """
        Stop tracking the request C{key}, answered or not.
        """
        self._pending.pop(key, None)
        return result

    def _onResponse(self, iq: domish.Element) -> None:
        """
        An IQ result or error: fire the request it answers, if it comes
        from the entity the request went to.
        """
        try:
            sender = parseJID(iq.getAttribute("from", "")).full()
        except ValueError:
            return
        d = self._pending.pop((sender, iq.getAttribute("id", "")), None)
        if d is None:
            return
        _markHandled(iq)
        if iq["type"] == "result":
            d.callback(iq)
        else:
            d.errback(error.exceptionFromStanza(iq))

    def _onUnhandled(self, iq: domish.Element) -> None:
        """
        An IQ request no handler took: answer C{service-unavailable}.
        """
        if iq.handled or iq.getAttribute("type") not in ("get", "set"):
            return
        _markHandled(iq)
        self.send(error.StanzaError("service-unavailable").toResponse(iq))
