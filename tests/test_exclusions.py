# -*- test-case-name: tests.test_exclusions -*-
"""
Tests for L{xmppnetgraph.exclusions}: the exclusion list file.
"""

from __future__ import annotations

import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.config import Config
from xmppnetgraph.error import ExclusionFileError, XmppNetGraphError
from xmppnetgraph.exclusions import Exclusions

SAMPLE = """\
# Asked to be left out, 2026-11-30.
private.example
  Shouting.EXAMPLE   # normalised
*.corp.example
faß.de

*.xn--bcher-kva.example
"""


class LoadTests(SynchronousTestCase):
    """
    L{Exclusions.load} reads the file format.
    """

    def write(self, text: str) -> Path:
        """
        @return: a file holding C{text}.
        """
        path = Path(self.mktemp())
        path.write_text(text, encoding="utf-8")
        return path

    def test_entries(self) -> None:
        """
        Domains and C{*.suffix} entries are read; comments and blank lines
        are not entries.
        """
        exclusions = Exclusions.load(self.write(SAMPLE))
        self.assertEqual(len(exclusions), 5)
        for domain in ["private.example", "shouting.example", "corp.example", "faß.de"]:
            self.assertTrue(exclusions.excluded(domain), domain)

    def test_badLine(self) -> None:
        """
        A line that is not a domain or C{*.suffix} is refused with an error
        naming the file and the line; it is a project error and a
        L{ValueError}.
        """
        for bad in ["127.0.0.1", "a..example", "*", "*.", "a.*.example", "**.example", "x y"]:
            path = self.write(f"# header\nfine.example\n{bad}\n")
            with self.assertRaises(ExclusionFileError) as caught:
                Exclusions.load(path)
            self.assertTrue(str(caught.exception).startswith(f"{path}:3: "), caught.exception)
            self.assertIsInstance(caught.exception, XmppNetGraphError)
            self.assertIsInstance(caught.exception, ValueError)

    def test_emptyFile(self) -> None:
        """
        A file with only comments excludes nothing.
        """
        exclusions = Exclusions.load(self.write("# nothing yet\n\n"))
        self.assertEqual(len(exclusions), 0)
        self.assertFalse(exclusions.excluded("example.org"))

    def test_missingFile(self) -> None:
        """
        A file that does not exist raises L{OSError}.
        """
        self.assertRaises(OSError, Exclusions.load, Path(self.mktemp()))


class ExcludedTests(SynchronousTestCase):
    """
    L{Exclusions.excluded} matches names and suffixes.
    """

    def setUp(self) -> None:
        """
        Parse the sample list.
        """
        self.exclusions = Exclusions.fromLines(SAMPLE.splitlines())

    def test_exactOnly(self) -> None:
        """
        A plain domain entry excludes that domain, not its subdomains nor
        its parent.
        """
        self.assertTrue(self.exclusions.excluded("private.example"))
        self.assertFalse(self.exclusions.excluded("conference.private.example"))
        self.assertFalse(self.exclusions.excluded("example"))
        self.assertFalse(self.exclusions.excluded("notprivate.example"))

    def test_wildcard(self) -> None:
        """
        C{*.corp.example} excludes C{corp.example} itself and every name
        under it, at any depth, but not names that merely end alike.
        """
        for domain in ["corp.example", "muc.corp.example", "a.b.c.corp.example"]:
            self.assertTrue(self.exclusions.excluded(domain), domain)
        for domain in ["megacorp.example", "corp.example.org", "example"]:
            self.assertFalse(self.exclusions.excluded(domain), domain)

    def test_idnBothForms(self) -> None:
        """
        An entry matches the domain in U-labels and in A-labels, whichever
        form the entry was written in.
        """
        self.assertTrue(self.exclusions.excluded("faß.de"))
        self.assertTrue(self.exclusions.excluded("xn--fa-hia.de"))
        self.assertFalse(self.exclusions.excluded("fass.de"))
        self.assertTrue(self.exclusions.excluded("bücher.example"))
        self.assertTrue(self.exclusions.excluded("upload.bücher.example"))

    def test_caseInsensitive(self) -> None:
        """
        A name is matched whatever its case.
        """
        self.assertTrue(self.exclusions.excluded("Shouting.Example"))
        self.assertTrue(self.exclusions.excluded("PUBSUB.CORP.EXAMPLE"))

    def test_invalidName(self) -> None:
        """
        A name that cannot be a domain is not excluded (and raises nothing).
        """
        self.assertFalse(self.exclusions.excluded(""))

    def test_empty(self) -> None:
        """
        L{Exclusions.empty} excludes nothing and has no entries.
        """
        empty = Exclusions.empty()
        self.assertEqual(len(empty), 0)
        self.assertFalse(empty.excluded("private.example"))

    def test_fast(self) -> None:
        """
        With 100,000 entries, 100,000 lookups take well under a second: the
        cost is per label of the name, not per entry.
        """
        many = Exclusions(
            exact=[f"host{i}.example" for i in range(50_000)],
            suffixes=[f"zone{i}.example" for i in range(50_000)],
        )
        self.assertEqual(len(many), 100_000)
        names = [f"a.b.c.d.other{i}.example" for i in range(100_000)]
        started = time.perf_counter()
        hits = sum(many.excluded(name) for name in names)
        elapsed = time.perf_counter() - started
        self.assertEqual(hits, 0)
        self.assertTrue(many.excluded("x.y.zone49999.example"))
        self.assertLess(elapsed, 1.0)


class ConfigTests(SynchronousTestCase):
    """
    C{--exclude} is checked when the configuration is built.
    """

    def test_badFileIsAConfigError(self) -> None:
        """
        A bad line makes L{Config} refuse the option, naming the option,
        the file and the line.
        """
        path = Path(self.mktemp())
        path.write_text("ok.example\nnot a domain\n", encoding="utf-8")
        with self.assertRaises(ValueError) as caught:
            Config(domain="node.example", dataDir=Path(self.mktemp()), excludeFile=path)
        self.assertIn("--exclude", str(caught.exception))
        self.assertIn(f"{path}:2:", str(caught.exception))

    def test_goodFile(self) -> None:
        """
        A good file is accepted and kept as a path.
        """
        path = Path(self.mktemp())
        path.write_text("*.ok.example\n", encoding="utf-8")
        self.assertEqual(
            Config(
                domain="node.example", dataDir=Path(self.mktemp()), excludeFile=path
            ).excludeFile,
            path.absolute(),
        )
