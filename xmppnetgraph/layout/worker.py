# -*- test-case-name: tests.test_layout_service -*-
"""
The layout worker process: C{python -m xmppnetgraph.layout.worker} reads
one graph as JSON on stdin and writes its positions as JSON on stdout.

Input: C{{"nodes": [id, ...], "edges": [[i, j], ...], "previous":
{id: [x, y], ...}}} (edges are indexes into C{nodes}). Output:
C{{"positions": [[x, y], ...]}}, one per node, in order. A failure exits
non-zero with the traceback on stderr.

A process of its own because igraph holds the GIL while it computes: in a
thread of the node it would stall the reactor.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from xmppnetgraph.graphview import serviceParent
from xmppnetgraph.layout.compute import layout


def run(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """
    Answer one request from C{stdin} on C{stdout}.
    """
    request: Any = json.loads(stdin.read())
    ids = [str(node) for node in request["nodes"]]
    edges = [(int(a), int(b)) for a, b in request["edges"]]
    previous = {str(node): (float(x), float(y)) for node, (x, y) in request["previous"].items()}
    positions = layout(ids, edges, previous, serviceParent)
    stdout.write(
        json.dumps(
            {"positions": [[round(x, 2), round(y, 2)] for x, y in positions]},
            separators=(",", ":"),
        ).encode()
    )
    stdout.flush()


if __name__ == "__main__":
    run(sys.stdin.buffer, sys.stdout.buffer)
