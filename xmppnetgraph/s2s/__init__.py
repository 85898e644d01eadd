"""
Server-to-server XMPP: streams, TLS, authentication, resolution, routing.
"""
