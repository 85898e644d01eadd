# -*- test-case-name: tests.test_headers -*-
"""
Every module of the package names the tests that cover it, in the
C{test-case-name} header of the Twisted coding standard, and they exist.
"""

from __future__ import annotations

import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

_ROOT = Path(__file__).resolve().parent.parent
_HEADER = re.compile(r"# -\*- test-case-name: ([\w.,]+) -\*-")


class TestCaseNameTests(SynchronousTestCase):
    """
    The C{test-case-name} headers of C{xmppnetgraph/}.
    """

    def test_everyModuleNamesExistingTests(self) -> None:
        """
        The first line of each module is a header naming test modules of
        C{tests/} that exist.
        """
        problems = []
        for path in sorted((_ROOT / "xmppnetgraph").rglob("*.py")):
            first = path.read_text("utf-8").split("\n", 1)[0]
            match = _HEADER.fullmatch(first)
            where = path.relative_to(_ROOT)
            if match is None:
                problems.append(f"{where}: no test-case-name header")
                continue
            for name in match.group(1).split(","):
                if not (_ROOT / (name.replace(".", "/") + ".py")).is_file():
                    problems.append(f"{where}: {name} does not exist")
        self.assertEqual(problems, [])
