# -*- test-case-name: tests.test_wokkelcompat -*-
"""
Tests for L{xmppnetgraph._wokkelcompat}.
"""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase


def _importInFreshInterpreter(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


class CompatTests(SynchronousTestCase):
    """
    Wokkel 18.0.0 imports names Twisted no longer has; the shim restores them.
    """

    def test_wokkelNeedsTheShim(self) -> None:
        """
        Without the shim, importing Wokkel's s2s and MUC modules fails on this
        Twisted; if this ever passes, the shim can go.
        """
        result = _importInFreshInterpreter("import wokkel.server, wokkel.muc")
        self.assertNotEqual(result.returncode, 0, "Wokkel imports without the shim: delete it")
        self.assertRegex(result.stderr, "(ImportError|ModuleNotFoundError)")

    def test_shimMakesWokkelImportable(self) -> None:
        """
        After importing xmppnetgraph, every Wokkel module we use imports.
        """
        result = _importInFreshInterpreter(
            "import xmppnetgraph, wokkel.server, wokkel.muc, wokkel.pubsub, wokkel.disco, "
            "wokkel.component"
        )
        self.assertEqual(result.returncode, 0, result.stderr)
