# -*- test-case-name: tests.test_error -*-
"""
Tests for L{xmppnetgraph.error}: the one rule for the project's exceptions.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from twisted.trial.unittest import SynchronousTestCase

import xmppnetgraph
from xmppnetgraph import error
from xmppnetgraph.s2s.resolve import Target


def _packageExceptions() -> list[type[BaseException]]:
    """
    @return: every exception class defined in a module of the package.
    """
    found: list[type[BaseException]] = []
    modules = pkgutil.walk_packages(xmppnetgraph.__path__, "xmppnetgraph.")
    for name in sorted(info.name for info in modules):
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                found.append(value)
    return found


def _qualifiedName(cls: type) -> str:
    """
    @return: C{module.ClassName}.
    """
    return f"{cls.__module__}.{cls.__qualname__}"


class ExceptionRuleTests(SynchronousTestCase):
    """
    Every exception derives from L{error.XmppNetGraphError}; the public ones
    are defined in L{xmppnetgraph.error}, except those that must also be
    another exception type.
    """

    def test_found(self) -> None:
        """
        The walk over the package finds the exceptions of its modules,
        wherever they are defined.
        """
        names = {_qualifiedName(cls) for cls in _packageExceptions()}
        self.assertIn("xmppnetgraph.error.ConnectFailed", names)
        self.assertIn("xmppnetgraph.s2s.xmlstream.StrictParserError", names)

    def test_oneBase(self) -> None:
        """
        Every exception class of the package derives from
        L{error.XmppNetGraphError}.
        """
        strays = [
            _qualifiedName(cls)
            for cls in _packageExceptions()
            if not issubclass(cls, error.XmppNetGraphError)
        ]
        self.assertEqual(strays, [])

    def test_definedInErrorModule(self) -> None:
        """
        A public exception is defined in L{xmppnetgraph.error} unless it
        must also be an exception type from outside the package.
        """

        def alsoForeign(cls: type[BaseException]) -> bool:
            return any(
                issubclass(base, BaseException)
                and base not in (Exception, BaseException)
                and not base.__module__.startswith("xmppnetgraph.")
                for base in cls.__mro__
            )

        elsewhere = [
            _qualifiedName(cls)
            for cls in _packageExceptions()
            if cls.__module__ != "xmppnetgraph.error"
            and not cls.__name__.startswith("_")
            and not alsoForeign(cls)
        ]
        self.assertEqual(elsewhere, [])

    def test_layerBase(self) -> None:
        """
        The errors of server-to-server streams share L{error.S2SError}.
        """
        for cls in (
            error.RemoteServerNotFound,
            error.ConnectFailed,
            error.DialbackFailed,
            error.PeerCertificateInvalid,
        ):
            self.assertTrue(issubclass(cls, error.S2SError), cls)

    def test_oldNames(self) -> None:
        """
        The modules that raise an error still offer it under its old name.
        """
        from xmppnetgraph import certs, datadir
        from xmppnetgraph.s2s import initiate, resolve, service

        self.assertIs(certs.TLSConfigError, error.TLSConfigError)
        self.assertIs(datadir.DataDirError, error.DataDirError)
        self.assertIs(resolve.ConnectFailed, error.ConnectFailed)
        self.assertIs(initiate.DialbackFailed, error.DialbackFailed)
        self.assertIs(service.RemoteServerNotFound, error.RemoteServerNotFound)
        self.assertIs(service.PeerCertificateInvalid, error.PeerCertificateInvalid)


class ConnectFailedTests(SynchronousTestCase):
    """
    L{error.ConnectFailed} says what was tried.
    """

    def test_message(self) -> None:
        """
        The message names every target with the class and text of its
        failure.
        """
        e = error.ConnectFailed(
            [
                (Target("a.example", 5269, False), ConnectionRefusedError("refused")),
                (Target("b.example", 5270, True), TimeoutError()),
            ]
        )
        self.assertEqual(
            str(e),
            "a.example:5269: ConnectionRefusedError: refused; "
            "b.example:5270 (direct TLS): TimeoutError",
        )

    def test_noTargets(self) -> None:
        """
        Without targets the message says so.
        """
        self.assertEqual(str(error.ConnectFailed([])), "no targets to connect to")
