# -*- test-case-name: tests.test_install -*-
"""
The installation the tests run in is one that a node can run from:
C{twistd} finds the C{xmppnetgraph} plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

# twistd's own entry point, run by this interpreter; with -c, sys.path[0] is
# the (empty) working directory, so only the installation can supply the
# plugin.
_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


class TwistdPluginTests(SynchronousTestCase):
    """
    C{twisted/plugins/xmppnetgraph_plugin.py} is visible to Twisted's plugin
    system, which scans C{twisted.plugins.__path__} (built from C{sys.path}).
    """

    def test_twistdFindsThePlugin(self) -> None:
        """
        C{twistd xmppnetgraph --help} works in an empty directory without
        C{PYTHONPATH}: the installation (C{scripts/venv}'s plain editable
        one, or a normal one) puts the plugin where twistd looks.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run(
            [sys.executable, "-c", _TWISTD, "xmppnetgraph", "--help"],
            cwd=directory,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("Usage: twistd [options] xmppnetgraph [options]", result.stdout)
        self.assertIn("--domain=", result.stdout)
