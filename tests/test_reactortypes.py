# -*- test-case-name: tests.test_reactortypes -*-
"""
Tests for L{xmppnetgraph.reactortypes}.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTCP, IReactorThreads, IReactorTime, IReactorUDP
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.reactortypes import INodeReactor, IS2SReactor, typedReactor


class TypedReactorTests(SynchronousTestCase):
    """
    L{typedReactor} checks every part of a combined interface.
    """

    def test_globalReactorIsANodeReactor(self) -> None:
        """
        The reactor trial runs on (a real one) provides all a node needs;
        it is returned as it is.
        """
        from twisted.internet import reactor

        self.assertIs(typedReactor(reactor, INodeReactor), reactor)
        self.assertIs(typedReactor(reactor, IS2SReactor), reactor)

    def test_memoryReactorForS2S(self) -> None:
        """
        L{MemoryReactorClock} is enough for the s2s layer.
        """
        fake = MemoryReactorClock()
        self.assertIs(typedReactor(fake, IS2SReactor), fake)

    def test_missingNamed(self) -> None:
        """
        A reactor lacking parts is refused, and the message names each
        missing interface.
        """
        e = self.assertRaises(TypeError, typedReactor, MemoryReactorClock(), INodeReactor)
        self.assertIn(
            "INodeReactor needs a reactor that provides IReactorThreads, IReactorUDP", str(e)
        )
        e = self.assertRaises(TypeError, typedReactor, Clock(), IS2SReactor)
        self.assertIn("provides IReactorPluggableNameResolver, IReactorTCP:", str(e))

    def test_extendsTwisted(self) -> None:
        """
        The combined interfaces extend Twisted's, so their values can be
        passed on to code that needs one part.
        """
        for s2sPart in (IReactorTime, IReactorTCP):
            self.assertTrue(IS2SReactor.extends(s2sPart), s2sPart)
        for nodePart in (IS2SReactor, IReactorThreads, IReactorUDP):
            self.assertTrue(INodeReactor.extends(nodePart), nodePart)
