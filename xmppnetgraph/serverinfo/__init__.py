# -*- test-case-name: tests.test_serverinfo_payload -*-
"""
XEP-0485 (PubSub Server Information): the item payload
(L{xmppnetgraph.serverinfo.payload}) and the peers' consent to be named
(L{xmppnetgraph.serverinfo.consent}).
"""
