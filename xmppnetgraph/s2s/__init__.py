# -*- test-case-name: tests.test_s2s_receive,tests.test_federation -*-
"""
Server-to-server XMPP: streams, TLS, authentication, resolution, routing.
"""
