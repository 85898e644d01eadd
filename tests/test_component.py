# -*- test-case-name: tests.test_component -*-
"""
Tests for L{xmppnetgraph.component.LocalComponent}: IQ requests tracked by
(peer, id), timeouts, and answers for IQs nobody handles.
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID
from twisted.words.protocols.jabber.xmlstream import toResponse
from twisted.words.xish import domish
from wokkel.component import Router
from wokkel.disco import NS_DISCO_INFO, DiscoHandler
from wokkel.generic import Request, XmlPipe

from xmppnetgraph.component import LocalComponent

LOCAL = "a.example"
PEER = "b.example"
THIRD = "c.example"


class LocalComponentTests(SynchronousTestCase):
    """
    A L{LocalComponent} for C{a.example} on a L{Router} whose default route
    (the remote side) is recorded, with a L{task.Clock}.
    """

    def setUp(self) -> None:
        """
        Start the component and connect the recording default route.
        """
        self.clock = task.Clock()
        self.requests: list[defer.Deferred[domish.Element]] = []
        self.router = Router()
        self.component = LocalComponent(self.router, [LOCAL], self.clock, iqTimeout=5)
        DiscoHandler().setHandlerParent(self.component)
        self.component.startService()
        self.addCleanup(self.stop)
        pipe = XmlPipe()
        self.outgoing: list[domish.Element] = []
        pipe.source.addObserver("/*", self.outgoing.append)
        self.remote = pipe.source
        self.router.addRoute(None, pipe.sink)

    def stop(self) -> None:
        """
        Stop the component if it still runs; requests a test left pending
        are cancelled by that.
        """
        if self.component.running:
            self.component.stopService()
        for d in self.requests:
            d.addErrback(lambda f: f.trap(defer.CancelledError))

    def request(
        self, to: str = PEER, timeout: float | None = None
    ) -> tuple[defer.Deferred[domish.Element], domish.Element]:
        """
        Send an IQ get to C{to} through the component.

        @param timeout: the request's own timeout, if any.
        @return: the response Deferred and the request as it left.
        """
        request = Request(recipient=JID(to), sender=JID(LOCAL))
        request.timeout = timeout
        before = len(self.outgoing)
        d = self.component.request(request)
        self.requests.append(d)
        (sent,) = self.outgoing[before:]
        return d, sent

    def respond(
        self,
        request: domish.Element,
        sender: str,
        kind: str = "result",
        condition: str | None = None,
    ) -> None:
        """
        Deliver a response to C{request} that claims to come from C{sender}.

        @param condition: the error condition when C{kind} is C{"error"}.
        """
        if condition is not None:
            response = error.StanzaError(condition).toResponse(request)
        else:
            response = toResponse(request, kind)
        response["from"] = sender
        self.remote.send(response)

    def test_requestAddressing(self) -> None:
        """
        The request leaves as an IQ get from our domain to the peer, with an
        unpredictable id that differs between requests.
        """
        _, first = self.request()
        _, second = self.request()
        self.assertEqual(
            (first.name, first["type"], first["from"], first["to"]), ("iq", "get", LOCAL, PEER)
        )
        self.assertNotEqual(first["id"], second["id"])
        self.assertGreaterEqual(len(first["id"]), 16)

    def test_genuineResult(self) -> None:
        """
        The result from the peer the request went to fires the Deferred,
        and its timeout is cancelled.
        """
        d, sent = self.request()
        self.respond(sent, PEER)
        result = self.successResultOf(d)
        self.assertEqual(
            (result["type"], result["from"], result["id"]), ("result", PEER, sent["id"])
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_resultFromThirdDomainIgnored(self) -> None:
        """
        A result with the right id from a third domain neither fires the
        Deferred nor is answered; the genuine result still fires it.
        """
        d, sent = self.request()
        before = len(self.outgoing)
        self.respond(sent, THIRD)
        self.respond(sent, f"user@{PEER}")
        self.assertNoResult(d)
        self.assertEqual(self.outgoing[before:], [])
        self.respond(sent, PEER)
        self.assertEqual(self.successResultOf(d)["from"], PEER)

    def test_errorFromThirdDomainIgnored(self) -> None:
        """
        An error response from a third domain does not fail the request.
        """
        d, sent = self.request()
        self.respond(sent, THIRD, "error", "item-not-found")
        self.assertNoResult(d)
        self.respond(sent, PEER)
        self.successResultOf(d)

    def test_resultWithOtherIdIgnored(self) -> None:
        """
        A result from the peer with another id does not fire the Deferred.
        """
        d, sent = self.request()
        sent["id"] = "guessed"
        self.respond(sent, PEER)
        self.assertNoResult(d)

    def test_malformedSenderIgnored(self) -> None:
        """
        A response whose C{from} is not a valid JID is ignored without an
        error.
        """
        d, sent = self.request()
        self.respond(sent, "b..example")
        self.assertNoResult(d)
        self.respond(sent, PEER)
        self.successResultOf(d)

    def test_errorResponse(self) -> None:
        """
        An error from the peer fails the Deferred with the stanza error.
        """
        d, sent = self.request()
        self.respond(sent, PEER, "error", "service-unavailable")
        failure = self.failureResultOf(d, error.StanzaError)
        self.assertEqual(failure.value.condition, "service-unavailable")

    def test_timeout(self) -> None:
        """
        Without a response the Deferred fails with L{defer.TimeoutError}
        after C{iqTimeout}; a late result is then ignored.
        """
        d, sent = self.request()
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.failureResultOf(d, defer.TimeoutError)
        before = len(self.outgoing)
        self.respond(sent, PEER)
        self.assertEqual(self.outgoing[before:], [])

    def test_requestTimeout(self) -> None:
        """
        A request's own C{timeout} overrides C{iqTimeout}.
        """
        d, _ = self.request(timeout=1)
        self.clock.advance(1)
        self.failureResultOf(d, defer.TimeoutError)

    def test_stopCancelsPending(self) -> None:
        """
        Stopping the component fails pending requests and leaves no timer.
        """
        d, _ = self.request()
        self.component.stopService()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopTwice(self) -> None:
        """
        A second C{stopService} does nothing (Wokkel's raises
        C{AttributeError} on the pipe the first stop dropped).
        """
        self.component.stopService()
        self.component.stopService()
        self.assertFalse(self.component.running)

    def test_unhandledGet(self) -> None:
        """
        An IQ get that no handler takes is answered with
        C{service-unavailable}.
        """
        iq = domish.Element((None, "iq"))
        iq["type"] = "get"
        iq["id"] = "q1"
        iq["from"] = f"user@{PEER}/r"
        iq["to"] = LOCAL
        iq.addElement(("urn:example:unknown", "query"))
        self.remote.send(iq)
        (answer,) = self.outgoing
        self.assertEqual(
            (answer["type"], answer["id"], answer["to"], answer["from"]),
            ("error", "q1", f"user@{PEER}/r", LOCAL),
        )
        self.assertEqual(error.exceptionFromStanza(answer).condition, "service-unavailable")

    def test_unhandledSet(self) -> None:
        """
        An IQ set that no handler takes is answered with
        C{service-unavailable}.
        """
        iq = domish.Element((None, "iq"))
        iq["type"] = "set"
        iq["id"] = "q2"
        iq["from"] = PEER
        iq["to"] = LOCAL
        self.remote.send(iq)
        (answer,) = self.outgoing
        self.assertEqual(error.exceptionFromStanza(answer).condition, "service-unavailable")

    def test_handledGetAnsweredOnce(self) -> None:
        """
        An IQ get a handler takes gets that handler's answer only.
        """
        iq = domish.Element((None, "iq"))
        iq["type"] = "get"
        iq["id"] = "q3"
        iq["from"] = PEER
        iq["to"] = LOCAL
        iq.addElement((NS_DISCO_INFO, "query"))
        self.remote.send(iq)
        (answer,) = self.outgoing
        self.assertEqual((answer["type"], answer["id"]), ("result", "q3"))

    def test_unhandledResultIgnored(self) -> None:
        """
        An IQ result or error nobody asked for is not answered.
        """
        for kind in ("result", "error"):
            iq = domish.Element((None, "iq"))
            iq["type"] = kind
            iq["id"] = "unsolicited"
            iq["from"] = PEER
            iq["to"] = LOCAL
            self.remote.send(iq)
        self.assertEqual(self.outgoing, [])
