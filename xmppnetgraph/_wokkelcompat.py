# -*- test-case-name: tests.test_wokkelcompat -*-
"""
Make Wokkel 18.0.0 importable on today's Twisted.

Wokkel 18.0.0 (its last release) imports C{_PY3} from C{twisted.python.compat},
which Twisted has removed, and C{twisted.python.constants}, which now lives in
the C{constantly} package. This module restores both names; it must run before
the first Wokkel import, which C{xmppnetgraph/__init__.py} guarantees.
"""

import sys

import constantly
import twisted.python.compat as _compat


def install() -> None:
    """
    Restore the names Wokkel 18.0.0 imports and Twisted no longer has.
    """
    if not hasattr(_compat, "_PY3"):
        # The name Twisted removed, put back: mypy knows it is not there.
        _compat._PY3 = True  # type: ignore[attr-defined]
    sys.modules.setdefault("twisted.python.constants", constantly)
