"""
xmppnetgraph's tests. Importing L{xmppnetgraph} first installs the Wokkel
compatibility shim for every test module.
"""

import xmppnetgraph  # noqa: F401
