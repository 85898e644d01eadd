"""
The C{twistd xmppnetgraph} plugin: imports L{xmppnetgraph.tap} only when used.
"""

from twisted.application.service import ServiceMaker

xmppnetgraph = ServiceMaker(
    "xmppnetgraph",
    "xmppnetgraph.tap",
    "A federated XMPP node that maps the XMPP federation",
    "xmppnetgraph",
)
