# -*- test-case-name: tests.test_wokkelcompat -*-
"""
xmppnetgraph: a federated XMPP node that maps the XMPP federation.

Importing the package installs the Wokkel compatibility shim, so every module
below may import Wokkel directly.
"""

from importlib import metadata

from xmppnetgraph import _wokkelcompat

_wokkelcompat.install()

try:
    __version__ = metadata.version("xmppnetgraph")
except metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
    __version__ = "unknown"

__all__ = ["__version__", "_wokkelcompat"]
