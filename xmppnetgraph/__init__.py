# -*- test-case-name: tests.test_wokkelcompat -*-
"""
xmppnetgraph: a federated XMPP node that maps the XMPP federation.

Importing the package installs the Wokkel compatibility shim, so every module
below may import Wokkel directly.
"""

from xmppnetgraph import _wokkelcompat

_wokkelcompat.install()

__all__ = ["_wokkelcompat"]
