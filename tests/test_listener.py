# -*- test-case-name: tests.test_listener -*-
"""
Tests for L{xmppnetgraph.listener}.
"""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase

from tests.nodes import freePort
from xmppnetgraph.error import ListenError, XmppNetGraphError
from xmppnetgraph.listener import Listener


class ListenerTests(TestCase):
    """
    A L{Listener} listens at start, says clearly why it cannot, and stops
    listening when stopped.
    """

    def test_listensAndStops(self) -> None:
        """
        Started, it accepts connections on its endpoint; stopped, it does
        not any more.
        """
        port = freePort("127.0.0.1")
        listener = Listener(
            "tests", f"tcp:{port}:interface=127.0.0.1", Factory.forProtocol(Protocol), reactor
        )
        listener.privilegedStartService()
        listener.startService()
        self.assertIsNotNone(listener.port)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        d = listener.stopService()
        self.assertIsNotNone(d)
        return d

    def test_busy(self) -> None:
        """
        A port in use raises L{ListenError} at once, naming what listens,
        where, and why; it is one of the project's errors.
        """
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        description = f"tcp:{port}:interface=127.0.0.1"
        listener = Listener("tests", description, Factory.forProtocol(Protocol), reactor)
        with self.assertRaises(ListenError) as caught:
            listener.privilegedStartService()
        self.assertEqual(
            str(caught.exception),
            f"cannot listen for tests on {description}: Address already in use",
        )
        self.assertIsInstance(caught.exception, XmppNetGraphError)
        self.assertIsNone(listener.port)

    def test_startWithoutPrivileged(self) -> None:
        """
        L{Listener.startService} alone listens too, once.
        """
        port = freePort("127.0.0.1")
        listener = Listener(
            "tests", f"tcp:{port}:interface=127.0.0.1", Factory.forProtocol(Protocol), reactor
        )
        listener.startService()
        first = listener.port
        self.assertIsNotNone(first)
        return listener.stopService()
