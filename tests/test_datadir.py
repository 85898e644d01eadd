# -*- test-case-name: tests.test_datadir -*-
"""
Tests for L{xmppnetgraph.datadir}: the data directory and the dialback
secret kept in it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from xmppnetgraph.datadir import (
    ANONYMOUS_KEY_NAME,
    DIALBACK_SECRET_NAME,
    DataDirError,
    anonymousKey,
    dialbackSecret,
    ensureDataDir,
)


def _skipAsRoot() -> None:
    """
    Skip a test of file permissions when running as root, who may read and
    write whatever the mode says.

    @raise SkipTest: if the effective user is root.
    """
    if os.geteuid() == 0:
        raise SkipTest("root may read and write whatever the mode says")


def _mode(path: Path) -> int:
    """
    @return: the permission bits of C{path}.
    """
    return stat.S_IMODE(path.stat().st_mode)


class EnsureDataDirTests(SynchronousTestCase):
    """
    L{ensureDataDir} creates the directory or says why it cannot be used.
    """

    def setUp(self) -> None:
        """
        A fresh base directory that does not exist yet.
        """
        self.base = Path(self.mktemp())

    def test_created(self) -> None:
        """
        A missing directory is created, with its parents, mode 0700, and
        returned.
        """
        path = self.base / "nested" / "data"
        self.assertEqual(ensureDataDir(path), path)
        self.assertTrue(path.is_dir())
        self.assertEqual(_mode(path), 0o700)

    def test_existingKept(self) -> None:
        """
        An existing directory is used as it is: its mode and files stay.
        """
        self.base.mkdir(mode=0o750)
        os.chmod(self.base, 0o750)
        (self.base / "keep").write_text("x")
        self.assertEqual(ensureDataDir(self.base), self.base)
        self.assertEqual(_mode(self.base), 0o750)
        self.assertEqual((self.base / "keep").read_text(), "x")

    def test_notADirectory(self) -> None:
        """
        A file in the way is an error that says so.
        """
        self.base.write_text("")
        e = self.assertRaises(DataDirError, ensureDataDir, self.base)
        self.assertEqual(str(e), f"the data directory {self.base} is not a directory")

    def test_parentNotADirectory(self) -> None:
        """
        A file where a parent directory should be: the directory cannot be
        created, and the error says why.
        """
        self.base.write_text("")
        path = self.base / "data"
        e = self.assertRaises(DataDirError, ensureDataDir, path)
        self.assertEqual(str(e), f"cannot create the data directory {path}: Not a directory")

    def test_notWritable(self) -> None:
        """
        A directory we may not write to is an error that says so.
        """
        _skipAsRoot()
        self.base.mkdir()
        os.chmod(self.base, 0o500)
        self.addCleanup(os.chmod, self.base, 0o700)
        e = self.assertRaises(DataDirError, ensureDataDir, self.base)
        self.assertEqual(str(e), f"the data directory {self.base} is not writable")


class DialbackSecretTests(SynchronousTestCase):
    """
    L{dialbackSecret} makes the secret once and keeps it.
    """

    def setUp(self) -> None:
        """
        An empty data directory, and the warnings logged.
        """
        self.dataDir = ensureDataDir(Path(self.mktemp()))
        self.path = self.dataDir / DIALBACK_SECRET_NAME
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def warnings(self) -> list[str]:
        """
        @return: the format strings of the warnings logged so far.
        """
        return [e["log_format"] for e in self.events if e["log_level"] == LogLevel.warn]

    def assertNewSecret(self, secret: str) -> None:
        """
        C{secret} is a new one: 64 hexadecimal digits, stored alone in the
        file, which only we may read.
        """
        self.assertRegex(secret, r"^[0-9a-f]{64}$")
        self.assertEqual(self.path.read_text("ascii"), secret + "\n")
        self.assertEqual(_mode(self.path), 0o600)
        self.assertEqual(sorted(p.name for p in self.dataDir.iterdir()), [DIALBACK_SECRET_NAME])

    def test_created(self) -> None:
        """
        Without a file, a new secret is made and written, mode 0600, with
        no warning.
        """
        self.assertNewSecret(dialbackSecret(self.dataDir))
        self.assertEqual(self.warnings(), [])

    def test_keptAcrossCalls(self) -> None:
        """
        Later calls (a restart) return the stored secret.
        """
        first = dialbackSecret(self.dataDir)
        self.assertEqual(dialbackSecret(self.dataDir), first)
        self.assertEqual(dialbackSecret(self.dataDir), first)
        self.assertEqual(self.warnings(), [])

    def test_ownSecretKept(self) -> None:
        """
        A secret of 32 characters or more that is not ours (an admin wrote
        it) is used as it is, without its surrounding whitespace.
        """
        self.path.write_text("  " + "s" * 32 + "\n")
        self.assertEqual(dialbackSecret(self.dataDir), "s" * 32)
        self.assertEqual(self.path.read_text(), "  " + "s" * 32 + "\n")

    def test_shortReplaced(self) -> None:
        """
        A secret shorter than 32 characters is replaced, with a warning.
        """
        self.path.write_text("s" * 31 + "\n")
        self.assertNewSecret(dialbackSecret(self.dataDir))
        self.assertEqual(len(self.warnings()), 1)
        self.assertIn("shorter than", self.warnings()[0])

    def test_emptyReplaced(self) -> None:
        """
        An empty file is replaced.
        """
        self.path.write_text("")
        self.assertNewSecret(dialbackSecret(self.dataDir))

    def test_corruptReplaced(self) -> None:
        """
        A file that is not ASCII text is replaced, with a warning.
        """
        self.path.write_bytes(b"\xff\xfe" + b"\x00" * 62)
        self.assertNewSecret(dialbackSecret(self.dataDir))
        self.assertEqual(len(self.warnings()), 1)
        self.assertIn("not text", self.warnings()[0])

    def test_replacedFileMode(self) -> None:
        """
        A replaced file gets mode 0600 even if the old one, or a leftover
        temporary file, was readable by others.
        """
        self.path.write_text("short")
        os.chmod(self.path, 0o644)
        leftover = self.dataDir / (DIALBACK_SECRET_NAME + ".new")
        leftover.write_text("half")
        os.chmod(leftover, 0o666)
        self.assertNewSecret(dialbackSecret(self.dataDir))

    def test_unreadable(self) -> None:
        """
        A secret that cannot be read (here: a directory in its place) is an
        error naming the file and the reason, and nothing is replaced.
        """
        self.path.mkdir()
        e = self.assertRaises(DataDirError, dialbackSecret, self.dataDir)
        self.assertEqual(str(e), f"cannot read the dialback secret {self.path}: Is a directory")
        self.assertTrue(self.path.is_dir())

    def test_noPermission(self) -> None:
        """
        A secret we may not read is an error naming the file and the
        reason.
        """
        _skipAsRoot()
        self.path.write_text("s" * 64)
        os.chmod(self.path, 0)
        e = self.assertRaises(DataDirError, dialbackSecret, self.dataDir)
        self.assertEqual(str(e), f"cannot read the dialback secret {self.path}: Permission denied")

    def test_notWritable(self) -> None:
        """
        When no secret can be written, the error names the file and the
        reason.
        """
        _skipAsRoot()
        os.chmod(self.dataDir, 0o500)
        self.addCleanup(os.chmod, self.dataDir, 0o700)
        e = self.assertRaises(DataDirError, dialbackSecret, self.dataDir)
        self.assertEqual(str(e), f"cannot write the dialback secret {self.path}: Permission denied")


class AnonymousKeyTests(SynchronousTestCase):
    """
    L{anonymousKey} is made once, kept across calls (and so restarts) in
    its own file of mode 0600, and differs from the dialback secret.
    """

    def test_keptAndPrivate(self) -> None:
        dataDir = ensureDataDir(Path(self.mktemp()))
        key = anonymousKey(dataDir)
        self.assertGreaterEqual(len(key), 32)
        self.assertEqual(anonymousKey(dataDir), key)
        path = dataDir / ANONYMOUS_KEY_NAME
        self.assertEqual(path.read_bytes().strip(), key)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertNotEqual(dialbackSecret(dataDir).encode("ascii"), key)
