"""
CPU time to receive one large stanza (a XEP-0485 notification of N peers)
through our hardened s2s stream, with Python's default garbage collector
settings and with the ones `twistd xmppnetgraph` uses
(`xmppnetgraph.tap.tuneGarbageCollector`). Each setting runs in a fresh
process that has imported the whole node first, as a running node has.

    python bench/parse_large_stanza.py [--peers 10000] [--repeat 10] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

SETTINGS = ("default", "tuned", "off")


def child(setting: str, peers: int, repeat: int) -> dict[str, float]:
    """
    Parse the stanza C{repeat} times under C{setting}; return figures.
    """
    import gc

    from twisted.internet.testing import StringTransport
    from twisted.words.protocols.jabber import xmlstream

    import xmppnetgraph.node  # noqa: F401 (load what a node loads)
    from xmppnetgraph.s2s.xmlstream import S2SXmlStream
    from xmppnetgraph.serverinfo.payload import buildPayload, fromLinks
    from xmppnetgraph.tap import tuneGarbageCollector

    links = [(f"peer{i}.example", d) for i in range(peers) for d in ("incoming", "outgoing")]
    item = buildPayload(fromLinks("a.example", links, lambda d: d < "peer5", set())).toXml()
    stanza = (
        "<message from='pubsub.a.example' to='b.example'>"
        "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='serverinfo'>"
        f"<item id='current'>{item}</item></items></event></message>"
    ).encode()
    if setting == "tuned":
        tuneGarbageCollector()
    elif setting == "off":
        gc.disable()
    received: list[object] = []
    xs = S2SXmlStream(
        xmlstream.ListenAuthenticator(), maxStanzaSize=len(stanza) + 1024, maxDepth=64
    )
    xs.makeConnection(StringTransport())
    xs.addObserver("/message", received.append)
    xs.dataReceived(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
        b" to='b.example' version='1.0'>"
    )
    kept = []
    start = time.process_time()
    for _ in range(repeat):
        for offset in range(0, len(stanza), 16384):
            xs.dataReceived(stanza[offset : offset + 16384])
        kept.append(received.pop())  # keep them alive, as a crawler would
    elapsed = time.process_time() - start
    return {"bytes": len(stanza), "ms": elapsed / repeat * 1000}


def main() -> None:
    """
    Run each setting in its own process and print a table with ratios.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = _common.parseArguments(parser, sys.argv[1:], ["--peers", "300", "--repeat", "2"])
    if args.child:
        print(json.dumps(child(args.child, args.peers, args.repeat)))
        return
    results = {}
    for setting in SETTINGS:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                setting,
                "--peers",
                str(args.peers),
                "--repeat",
                str(args.repeat),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results[setting] = json.loads(out.stdout.strip().splitlines()[-1])
    size = results["default"]["bytes"]
    print(
        f"one stanza of {size:,} bytes ({args.peers:,} peers), "
        f"CPU ms per stanza, mean of {args.repeat}"
    )
    print(f"{'gc setting':<10}  {'ms':>8}  {'vs default':>10}")
    for setting in SETTINGS:
        ms = results[setting]["ms"]
        print(f"{setting:<10}  {ms:8.0f}  {ms / results['default']['ms']:10.2f}")


if __name__ == "__main__":
    main()
