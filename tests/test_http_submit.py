# -*- test-case-name: tests.test_http_submit -*-
"""
L{xmppnetgraph.http.submit.clientAddress}: whom the submission rate limit
counts, behind trusted reverse proxies or not.
"""

from __future__ import annotations

import ipaddress

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from xmppnetgraph.http.submit import Network, clientAddress

TRUSTED: tuple[Network, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("::1"),
)


def request(peer: str, *forwarded: bytes) -> DummyRequest:
    """
    @return: a request from C{peer} with these C{X-Forwarded-For} headers.
    """
    result = DummyRequest([b""])
    address = IPv6Address if ":" in peer else IPv4Address
    result.client = address("TCP", peer, 40000)
    if forwarded:
        result.requestHeaders.setRawHeaders(b"x-forwarded-for", list(forwarded))
    return result


class ClientAddressTests(SynchronousTestCase):
    """
    L{clientAddress}.
    """

    def test_untrustedPeer(self) -> None:
        """
        A peer that is no trusted proxy is the client, whatever header it
        sends.
        """
        self.assertEqual(clientAddress(request("192.0.2.7", b"198.51.100.1"), TRUSTED), "192.0.2.7")
        self.assertEqual(clientAddress(request("192.0.2.7"), ()), "192.0.2.7")

    def test_trustedProxy(self) -> None:
        """
        From a trusted proxy, the client is the rightmost address that is
        not a trusted proxy, over several headers too; what a client
        wrote to the left of it does not count.
        """
        self.assertEqual(clientAddress(request("10.1.2.3", b"192.0.2.9"), TRUSTED), "192.0.2.9")
        self.assertEqual(
            clientAddress(request("10.1.2.3", b"6.6.6.6, 192.0.2.9, 10.0.0.2"), TRUSTED),
            "192.0.2.9",
        )
        self.assertEqual(
            clientAddress(request("::1", b"6.6.6.6", b"[2001:db8::5], 10.0.0.9"), TRUSTED),
            "2001:db8::5",
        )

    def test_malformedOrMissing(self) -> None:
        """
        Without the header, the proxy itself is the client; at a malformed
        entry, the nearest hop before it is.
        """
        self.assertEqual(clientAddress(request("10.1.2.3"), TRUSTED), "10.1.2.3")
        self.assertEqual(
            clientAddress(request("10.1.2.3", b"192.0.2.9, unknown, 10.0.0.5"), TRUSTED),
            "10.0.0.5",
        )
        self.assertEqual(clientAddress(request("10.1.2.3", b"10.0.0.4"), TRUSTED), "10.0.0.4")
