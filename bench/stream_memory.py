"""
Where an idle s2s stream's memory goes: the parts of one stream measured
apart, each in a fresh process, as heap bytes in use per stream (glibc
C{mallinfo2}: C allocations, which is where OpenSSL and expat keep theirs)
and RSS growth per stream.

TLS: N server-side OpenSSL connections made with the node's own contexts
(C{certs.serverTLSOptions}, C{certs.clientTLSOptions}: TLS 1.3, client
certificate requested as for SASL EXTERNAL), handshaken over memory BIOs
as Twisted's TLS layer does, a few bytes exchanged, the client side freed,
the server side kept; beside it the same with the key exchange limited to
X25519 (no ML-KEM hybrid, OpenSSL 3.5+'s default), with TLS 1.2, and with
no client certificate requested. The XML parser: N of the stream's
parsers (C{StrictExpatElementStream}) after a stream header and three
stanzas, and after one 15 KB stanza (expat keeps its buffer at the largest
input it had to hold).

``bench/s2s_load.py`` measures whole streams in a running node; this one
says which part of that figure is which.

    python bench/stream_memory.py [-n 2000] [--smoke]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

#: Variant name: what it measures.
VARIANTS = {
    "tls": "TLS 1.3 server connection, as the node makes it",
    "tls-x25519": "the same, key exchange X25519 only (no ML-KEM)",
    "tls12": "the same, TLS 1.2",
    "tls-no-client-cert": "TLS 1.3, no client certificate requested",
    "parser": "XML parser after header + 3 stanzas",
    "parser-big": "XML parser after a 15 KB stanza",
}


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        ).split()
    ]


def heapInUse() -> int:
    """
    @return: bytes of the C heap in use (small blocks plus mmapped ones).
    """
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _tlsObjects(variant: str, n: int) -> list[object]:
    """
    Make C{n} handshaken server-side connections for a TLS variant.
    """
    from OpenSSL import SSL
    from OpenSSL._util import lib

    from tests.pki import TestCA
    from xmppnetgraph import certs

    work = Path(tempfile.mkdtemp(prefix="xng-bench-tlsmem-"))
    ca = TestCA(work)
    serverCreds = certs.loadCredentials(*ca.issue(["server.example"]))
    clientCreds = certs.loadCredentials(*ca.issue(["client.example"]))
    server = certs.serverTLSOptions(serverCreds).getContext()
    creator = certs.clientTLSOptions(clientCreds).creatorFor("server.example")
    if variant == "tls-x25519":
        # pyOpenSSL has no public call for the group list (benchmark only).
        lib.SSL_CTX_set1_curves_list(server._context, b"X25519")
    elif variant == "tls12":
        server.set_max_proto_version(SSL.TLS1_2_VERSION)
    elif variant == "tls-no-client-cert":
        server.set_verify(SSL.VERIFY_NONE, None)

    def pump(a: SSL.Connection, b: SSL.Connection) -> None:
        moved = True
        while moved:
            moved = False
            for source, sink in ((a, b), (b, a)):
                try:
                    data = source.bio_read(65536)
                except SSL.WantReadError:
                    continue
                sink.bio_write(data)
                moved = True

    def step(c: SSL.Connection) -> None:
        try:
            c.do_handshake()
        except SSL.WantReadError:
            pass

    def drain(c: SSL.Connection) -> None:
        try:
            while c.recv(65536):
                pass
        except SSL.WantReadError:
            pass

    kept: list[object] = []
    for _ in range(n):
        s = SSL.Connection(server, None)
        s.set_accept_state()
        c = creator.clientConnectionForTLS(None)  # type: ignore[arg-type]
        c.set_connect_state()
        for _ in range(4):
            step(c)
            pump(c, s)
            step(s)
            pump(s, c)
        c.send(b"<presence/>")
        pump(c, s)
        drain(s)
        s.send(b"<presence/>")
        pump(s, c)
        drain(c)
        kept.append(s)
    return kept


def _parserObjects(variant: str, n: int) -> list[object]:
    """
    Make C{n} stream parsers fed a header and stanzas.
    """
    from xmppnetgraph.s2s.xmlstream import StrictExpatElementStream

    header = (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
        b" xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"
        b" from='n1.load.example' to='target.example' version='1.0' id='x1'>"
    )
    stanza = (
        b"<iq type='get' id='1' to='target.example' from='n1.load.example'>"
        b"<ping xmlns='urn:xmpp:ping'/></iq>"
    )
    big = b"<message to='a.example' from='b.example'><body>" + b"x" * 15000 + b"</body></message>"
    kept: list[object] = []
    for _ in range(n):
        parser = StrictExpatElementStream(1 << 18, 64)
        parser.DocumentStartEvent = lambda element: None
        parser.ElementEvent = lambda element: None
        parser.parse(header)
        parser.parse(stanza * 3)
        if variant == "parser-big":
            parser.parse(big)
        kept.append(parser)
    return kept


def child(variant: str, n: int) -> dict[str, float]:
    """
    Measure one variant in this (fresh) process.
    """
    import xmppnetgraph.node  # noqa: F401 (load what a node loads)

    make = _parserObjects if variant.startswith("parser") else _tlsObjects
    make(variant, 10)  # warm up: contexts, caches, first allocations
    gc.collect()
    heap, rss = heapInUse(), _common.rssKiB(_own())
    kept = make(variant, n)
    gc.collect()
    result = {
        "heapKiB": (heapInUse() - heap) / 1024 / n,
        "rssKiB": (_common.rssKiB(_own()) - rss) / n,
    }
    del kept
    return result


def _own() -> int:
    import os

    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=2000, help="objects per variant (default 2000)")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = _common.parseArguments(parser, sys.argv[1:], ["-n", "50"])
    if args.child:
        print(json.dumps(child(args.child, args.n)))
        return
    results = {}
    for variant in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant, "-n", str(args.n)],
            check=True,
            capture_output=True,
            text=True,
            cwd=_common.REPO,
        ).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    base = results["tls"]["heapKiB"]
    rows = [
        [
            name,
            VARIANTS[name],
            f"{r['heapKiB']:.1f}",
            f"{r['rssKiB']:.1f}",
            f"{r['heapKiB'] / base:.2f}" if name.startswith("tls") else "",
        ]
        for name, r in results.items()
    ]
    _common.printTable(
        f"Memory per stream part ({args.n} each, fresh process per row)",
        ["part", "what", "heap KiB", "RSS KiB", "heap vs tls"],
        rows,
    )


if __name__ == "__main__":
    main()
