#!/usr/bin/env python3
"""
The web server of C{bench/web_render.py}, a child process: a graph store
(SQLite in the work directory) filled from a graph in C{/data.json}'s shape,
the node's own web API and page on a loopback port, and the baseline pages
(C{/bench/vis.html}, C{/bench/viva.html}) built in C{bench/web/dist}.

    python bench/_webserve.py GRAPH.json WORKDIR

Lays the graph out as a node does (L{LayoutService}, its worker process)
and prints one JSON line C{{"event": "ready", "port": N, "fill_s": S,
"layout_s": S}} when it serves; runs until killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.web import resource, server, static

from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.http.graph import ViewParameters
from xmppnetgraph.http.site import WebAPI
from xmppnetgraph.layout.service import Layout, LayoutService, runWorker
from xmppnetgraph.linktable import LinkTable
from xmppnetgraph.serverinfo.payload import RemoteDomain
from xmppnetgraph.store.database import openDatabase
from xmppnetgraph.store.graph import GraphStore
from xmppnetgraph.store.layout import LayoutStore

reactor: Any = _reactor
DIST = Path(__file__).resolve().parent / "web" / "dist"

BASELINE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{name}</title>
<style>html,body,#graph{{margin:0;width:100%;height:100%;overflow:hidden}}</style>{css}
</head><body><div id="graph"></div><script type="module" src="/bench/{name}.js"></script>
</body></html>"""


async def fill(store: GraphStore, graph: dict[str, Any]) -> None:
    """
    Store C{graph} as reports: a labelled node reports its links; a link
    between two labelled nodes is reported by its C{from} end, a link to
    an unlabelled node as an anonymous peer of the labelled end (the
    public snapshot's anonymous nodes each have one link).
    """
    labels = {node["id"]: node.get("label") or None for node in graph["nodes"]}
    reports: dict[str, list[RemoteDomain]] = {}
    for edge in graph["edges"]:
        source, target = edge["from"], edge["to"]
        if labels.get(source) is None:
            source, target = target, source
        reporter = labels.get(source)
        if reporter is None:
            continue
        peer = labels.get(target)
        reports.setdefault(reporter, []).append(RemoteDomain(peer, ("incoming", "outgoing")))
    for reporter, peers in reports.items():
        await store.storeReport(reporter, peers)


class Root(resource.Resource):
    """
    C{/bench/...} from the baselines' build, everything else from the
    node's web API.
    """

    def __init__(self, api: resource.Resource) -> None:
        super().__init__()
        self.api = api
        self.baselines = resource.Resource()
        for name in ("vis", "viva"):
            css = f'<link rel="stylesheet" href="/bench/{name}.css">' if name == "vis" else ""
            page = BASELINE_PAGE.format(name=name, css=css).encode()
            self.baselines.putChild(f"{name}.html".encode(), static.Data(page, "text/html"))
        for path in DIST.iterdir():
            self.baselines.putChild(path.name.encode(), static.File(str(path)))

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        if path == b"bench":
            return self.baselines
        return self.api

    def render(self, request: server.Request) -> Any:
        return self.api.render(request)


async def main(graphPath: Path, work: Path) -> None:
    graph = json.loads(graphPath.read_text())
    database = openDatabase(None, work, reactor)
    feed = ChangeFeed()
    store = GraphStore(database, feed)
    start = time.perf_counter()
    await fill(store, graph)
    filled = time.perf_counter() - start
    layout = Layout()
    api = WebAPI(
        "bench.example",
        LinkTable(feed),
        feed,
        reactor,
        threads=reactor,
        graph=store,
        namePolicy="reported",
        layout=layout,
    )
    views = api.views
    assert views is not None
    # The node's own layout service, and its first relayout (the worker
    # process), before the pages are measured.
    service = LayoutService(
        LayoutStore(database, reactor),
        feed,
        reactor,
        lambda: views.currentView(ViewParameters()),
        lambda ids, edges, previous: runWorker(reactor, reactor, ids, edges, previous),
        layout=layout,
    )
    service.startService()
    assert service.loaded is not None
    await service.loaded
    start = time.perf_counter()
    await service.relayoutNow()
    laidOut = time.perf_counter() - start
    port = reactor.listenTCP(0, server.Site(Root(api.resource())), interface="127.0.0.1")
    print(
        json.dumps(
            {
                "event": "ready",
                "port": port.getHost().port,
                "fill_s": round(filled, 2),
                "layout_s": round(laidOut, 2),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    d: Deferred[None] = Deferred.fromCoroutine(main(Path(sys.argv[1]), Path(sys.argv[2])))
    d.addErrback(lambda f: (f.printTraceback(), reactor.stop()))
    reactor.run()
