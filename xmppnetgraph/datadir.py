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

# Raised here; defined with the other errors (and importable from here).
from xmppnetgraph.error import DataDirError as DataDirError


def ensureDataDir(path: Path) -> Path:
    """
    Create C{path} (mode 0700) if needed and check that we can write there.

    @raise DataDirError: with a message saying what is wrong.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise DataDirError(f"cannot create the data directory {path}: {e.strerror}") from e
    if not path.is_dir():
        raise DataDirError(f"the data directory {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"the data directory {path} is not writable")
    return path


def dialbackSecret(dataDir: Path) -> str:
    """
    The node's dialback secret, made once and kept in C{dataDir}, so that
    keys we issued before a restart still verify after it.
    """
    path = dataDir / "dialback.secret"
    try:
        secret = path.read_text("ascii").strip()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    except (OSError, UnicodeError) as e:
        raise DataDirError(f"cannot read {path}: {e}") from e
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret
