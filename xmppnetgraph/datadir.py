# -*- test-case-name: tests.test_datadir -*-
"""
The node's data directory: created on first start, holding what must
survive a restart (the dialback secret, the self-signed certificate, the
database).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from twisted.logger import Logger

# Raised here; defined with the other errors (and importable from here).
from xmppnetgraph.error import DataDirError as DataDirError

_log = Logger()

#: The file in the data directory that holds the dialback secret.
DIALBACK_SECRET_NAME = "dialback.secret"

#: The file in the data directory that holds the key of anonymous peers' ids.
ANONYMOUS_KEY_NAME = "anonymous-ids.key"

#: The shortest secret read from the file that is kept; shorter ones are
#: replaced. New secrets are 64 hexadecimal digits (256 bits).
MINIMUM_SECRET_LENGTH = 32


def ensureDataDir(path: Path) -> Path:
    """
    Create C{path} (mode 0700) if needed and check that we can write there.

    An existing directory is used as it is, whatever its mode.

    @param path: the data directory.
    @return: C{path}.
    @raise DataDirError: with a message saying what is wrong.
    """
    if path.exists() and not path.is_dir():
        raise DataDirError(f"the data directory {path} is not a directory")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise DataDirError(f"cannot create the data directory {path}: {e.strerror}") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"the data directory {path} is not writable")
    return path


def dialbackSecret(dataDir: Path) -> str:
    """
    The node's dialback secret, made once and kept in C{dataDir}, so that
    keys we issued before a restart still verify after it (see
    L{keptSecret}).

    @param dataDir: the data directory (see L{ensureDataDir}).
    @return: the secret.
    @raise DataDirError: if the file exists but cannot be read, or a new
        one cannot be written.
    """
    return keptSecret(dataDir, DIALBACK_SECRET_NAME, "dialback secret")


def anonymousKey(dataDir: Path) -> bytes:
    """
    The key of the graph's opaque ids for anonymous peers, made once and
    kept in C{dataDir}: ids stay stable across restarts, and nobody who
    lacks the key can confirm a guessed hidden name (see L{keptSecret}).

    @param dataDir: the data directory (see L{ensureDataDir}).
    @return: the key.
    @raise DataDirError: as L{keptSecret}.
    """
    return keptSecret(dataDir, ANONYMOUS_KEY_NAME, "anonymous-id key").encode("ascii")


def keptSecret(dataDir: Path, name: str, what: str) -> str:
    """
    A secret made once and kept in the file C{name} of C{dataDir}.

    A file whose content cannot be a secret (shorter than
    L{MINIMUM_SECRET_LENGTH} characters, or not ASCII text) is replaced by
    a new secret, with a warning. The file is written with mode 0600, to a
    temporary name first, so that it is never seen half written.

    @param dataDir: the data directory (see L{ensureDataDir}).
    @param name: the file's name.
    @param what: what the secret is, for messages.
    @return: the secret.
    @raise DataDirError: if the file exists but cannot be read, or a new
        one cannot be written.
    """
    path = dataDir / name
    try:
        secret = path.read_text("ascii").strip()
    except FileNotFoundError:
        pass
    except UnicodeDecodeError:
        _log.warn("The {what} in {path} is not text: making a new one", what=what, path=str(path))
    except OSError as e:
        raise DataDirError(f"cannot read the {what} {path}: {e.strerror or e}") from e
    else:
        if len(secret) >= MINIMUM_SECRET_LENGTH:
            return secret
        _log.warn(
            "The {what} in {path} is shorter than {length} characters: making a new one",
            what=what,
            path=str(path),
            length=MINIMUM_SECRET_LENGTH,
        )
    secret = secrets.token_hex(32)
    _writePrivate(path, secret + "\n", what)
    return secret


def _writePrivate(path: Path, text: str, what: str) -> None:
    """
    Replace C{path} with a file of mode 0600 holding C{text}.

    @raise DataDirError: if that fails.
    """
    temporary = path.with_name(path.name + ".new")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            # A leftover temporary file keeps its old mode through O_CREAT.
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as e:
        raise DataDirError(f"cannot write the {what} {path}: {e.strerror or e}") from e
