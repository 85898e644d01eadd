# -*- test-case-name: tests.test_reactortypes -*-
"""
The reactor as one type.

Twisted describes a reactor by many small interfaces, and Python's typing
has no intersection of types. A parameter that needs several of them is
typed here, once, with a make-believe interface that extends them all, as
Twisted types its own global reactor (C{twisted.internet._IReactorCommon}):

  - L{IS2SReactor}: what the s2s layer uses (timers, TCP connections and the
    host name resolution they need);
  - L{INodeReactor}: what a whole node uses, the type of the reactor the
    node's core holds: the s2s layer's interfaces, start-up and shutdown
    events and a thread pool (the database), and UDP (DNS).

Because they extend Twisted's interfaces, a value of either type can be
passed on to anything that needs one of the parts, and an L{INodeReactor}
to anything that needs an L{IS2SReactor}. No reactor declares them: one
becomes such a value through L{typedReactor}, which checks every part at
run time. Parameters that need a single interface keep Twisted's (for
instance L{IReactorTime} for a clock).
"""

from __future__ import annotations

from typing import TypeVar, cast

from twisted.internet.interfaces import (
    IReactorCore,
    IReactorPluggableNameResolver,
    IReactorTCP,
    IReactorThreads,
    IReactorTime,
    IReactorUDP,
)
from zope.interface.interface import InterfaceClass

__all__ = ["INodeReactor", "IS2SReactor", "typedReactor"]

_I = TypeVar("_I")


class IS2SReactor(IReactorTime, IReactorTCP, IReactorPluggableNameResolver):
    """
    What the s2s layer needs of a reactor: timers, outgoing TCP connections
    and host name resolution for them (as L{HostnameEndpoint
    <twisted.internet.endpoints.HostnameEndpoint>} uses it).
    L{MemoryReactorClock<twisted.internet.testing.MemoryReactorClock>}
    provides it.
    """


class INodeReactor(IS2SReactor, IReactorCore, IReactorThreads, IReactorUDP):
    """
    What a node needs of its reactor: the s2s layer's interfaces, start-up
    and shutdown events and a thread pool (the database runs its queries
    there), and UDP (the DNS resolver).
    """


_MAKE_BELIEVE = frozenset({IS2SReactor, INodeReactor})


def _parts(interface: InterfaceClass) -> set[InterfaceClass]:
    """
    @return: the Twisted interfaces that C{interface} is made of: itself if
        it is not one of ours, else its bases' parts.
    """
    if interface not in _MAKE_BELIEVE:
        return {interface}
    parts: set[InterfaceClass] = set()
    for base in interface.__bases__:
        # An interface's bases are interfaces (typed as plain classes).
        parts |= _parts(cast(InterfaceClass, base))
    return parts


def typedReactor(reactor: object, interface: type[_I]) -> _I:
    """
    Check that C{reactor} provides every Twisted interface that
    C{interface} extends, and return it typed as C{interface}.

    @param reactor: a reactor, for instance the global one.
    @param interface: L{IS2SReactor} or L{INodeReactor}.
    @return: C{reactor}.
    @raise TypeError: if C{reactor} lacks one of the interfaces; the
        message names them.
    """
    # mypy-zope lets an interface stand for type[_I]; at run time it is an
    # InterfaceClass.
    combined = cast(InterfaceClass, interface)
    missing = sorted(p.__name__ for p in _parts(combined) if not p.providedBy(reactor))
    if missing:
        raise TypeError(
            f"{combined.__name__} needs a reactor that provides "
            f"{', '.join(missing)}: {reactor!r} does not"
        )
    return cast(_I, reactor)
