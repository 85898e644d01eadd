#!/usr/bin/env python3
"""
The page in headless Chromium (software WebGL here), beside the public
graph site's two ways of drawing the same data: vis-network with
forceAtlas2Based physics, and VivaGraph's WebGL renderer (both from npm,
C{bench/web}, built by this benchmark; driven with the site's own physics
settings, on our C{/data.json}).

For each graph (the public snapshot in C{shared/data}, 5,783 nodes, and
generated preferential-attachment graphs of the snapshot's shape) and each
page it reports: navigation to the first frame after the first draw; when
the picture is stable (positions of 1,000 sampled nodes move less than
0.5% of the picture's size between two samples 0.5 s apart, checked for
up to C{--settle} seconds); frames per second while a real mouse drag pans
for 3 s; the page's JS heap after a forced GC; and C{/api/graph}'s size
and latency, cold and warm (best of 5), plain and gzip.

    python bench/web_render.py [--graphs snapshot 10000 50000]
        [--baselines snapshot 10000] [--settle 60] [--smoke]

Targets (issue 8): stable at the first frame, under 1 s for the snapshot
and under 5 s at 50k; panning at least twice VivaGraph's frame rate.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from tests.browser import CHROMIUM, FLAGS  # noqa: E402  (one set of flags for tests and bench)

SNAPSHOT = REPO.parent / "shared" / "data" / "xmpp-network-graph-2025-01.json"

#: Set before any script of a page runs (READ: the page's positions
#: function): counts animation frames, and notes the time and the positions
#: at the first frame after the page marks itself drawn.
PROBE = """
window.benchFrames = [];
(function tick(t) { window.benchFrames.push(t); requestAnimationFrame(tick); })(0);
new MutationObserver(() => {
  if (document.documentElement.dataset.state === "drawn" && window.benchDrawn === undefined) {
    window.benchDrawn = performance.now();
    requestAnimationFrame(() => {
      window.benchFirstPositions = (READ)();
      window.benchFirstFrame = performance.now();
    });
  }
}).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-state"] });
"""

#: Our page's positions (the others define window.benchPositions).
OUR_POSITIONS = """
() => {
  const graph = window.xmppnetgraph.graph;
  return graph.nodes().slice(0, 1000).map((id) => {
    const a = graph.getNodeAttributes(id);
    return [a.x, a.y];
  });
}
"""


def generated(nodes: int, seed: int = 1) -> dict[str, Any]:
    """
    @return: a graph in C{/data.json}'s shape with the snapshot's shape:
        preferential attachment, about 1.2 links per node, one node in 50
        named (the rest anonymous leaves of named ones).
    """
    rng = random.Random(seed)
    named = max(2, nodes // 50)
    ids = [f"d{n}.example" for n in range(named)]
    edges: list[dict[str, str]] = []
    ends: list[str] = [ids[0]]
    for index in range(1, named):
        for target in {rng.choice(ends) for _ in range(1 + (rng.random() < 0.5))}:
            edges.append({"from": ids[index], "to": target})
            ends += [ids[index], target]
    out = [{"id": i, "label": i} for i in ids]
    for n in range(nodes - named):
        anonymous = f"anon{n:x}"
        out.append({"id": anonymous, "label": ""})
        edges.append({"from": rng.choice(ends), "to": anonymous})
    return {"nodes": out, "edges": edges}


def buildBaselines() -> None:
    """
    Install and bundle the baseline pages (C{bench/web}) from npm.
    """
    web = HERE / "web"
    if not (web / "node_modules").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=web, check=True
        )
    subprocess.run(["npm", "run", "--silent", "build"], cwd=web, check=True)


class Server:
    """
    The C{bench/_webserve.py} child serving one graph.
    """

    def __init__(self, graph: dict[str, Any], work: Path) -> None:
        path = work / "graph.json"
        path.write_text(json.dumps(graph))
        (work / "store").mkdir()
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_webserve.py"), str(path), str(work / "store")],
            stdout=subprocess.PIPE,
            stderr=(work / "server.stderr").open("wb"),
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the server failed; see {work / 'server.stderr'}")
        ready = json.loads(line)
        self.url = f"http://127.0.0.1:{ready['port']}"
        self.fillSeconds = ready["fill_s"]
        self.layoutSeconds = ready["layout_s"]

    def get(self, path: str, gzipped: bool = False) -> tuple[float, int, int]:
        """
        @return: seconds, status and body size of C{GET path}.
        """
        headers = {"accept-encoding": "gzip"} if gzipped else {}
        start = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers)) as r:
            body = r.read()
            status = r.status
        return time.perf_counter() - start, status, len(body)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def apiFigures(server: Server) -> dict[str, Any]:
    """
    @return: C{/api/graph} cold and warm latency and size, plain and gzip.
    """
    cold, status, size = server.get("/api/graph")
    assert status == 200, status
    warm = min(server.get("/api/graph")[0] for _ in range(5))
    warmGzip, _, gzipSize = min(server.get("/api/graph", gzipped=True) for _ in range(5))
    return {
        "cold_ms": cold * 1000,
        "warm_ms": warm * 1000,
        "warm_gzip_ms": warmGzip * 1000,
        "bytes": size,
        "gzip_bytes": gzipSize,
    }


def moved(before: list[list[float]], after: list[list[float]]) -> float:
    """
    @return: the largest move of a node between two samples, as a share of
        the picture's size.
    """
    xs = [p[0] for p in before + after]
    ys = [p[1] for p in before + after]
    size = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    return (
        max(
            (abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(before, after, strict=True)),
            default=0.0,
        )
        / size
    )


def measurePage(context: Any, url: str, positions: str | None, settle: float) -> dict[str, Any]:
    """
    @return: first frame, stable time, pan fps and JS heap of one page.
    """
    read = positions or "() => window.benchPositions()"
    page = context.new_page()
    page.add_init_script(PROBE.replace("READ", read))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(max(60_000, settle * 2000))
    page.goto(url)
    try:
        page.wait_for_function("window.benchFirstFrame !== undefined", timeout=120_000)
    except Exception as e:
        raise RuntimeError(f"{url}: no first frame ({e}); page errors: {errors}") from None
    firstFrame, previous = page.evaluate("[window.benchFirstFrame, window.benchFirstPositions]")
    # Stable: two samples in a row moved less than 0.5% of the picture's
    # size; the time is that of the first of them.
    previousAt, stableAt = firstFrame, None
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current, now = page.evaluate(f"[({read})(), performance.now()]")
        if moved(previous, current) < 0.005:
            stableAt = previousAt if stableAt is None else stableAt
            if now - stableAt >= 1000:
                break
        else:
            stableAt = None
        previous, previousAt = current, now
    else:
        stableAt = None
    box = page.locator("canvas").first.bounding_box() or {
        "x": 0,
        "y": 0,
        "width": 800,
        "height": 600,
    }
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = page.evaluate("window.benchFrames.length")
    start = time.monotonic()
    page.mouse.move(cx, cy)
    page.mouse.down()
    steps = 0
    while time.monotonic() - start < 3:
        angle = steps / 10
        page.mouse.move(cx + 120 * math.cos(angle), cy + 120 * math.sin(angle))
        steps += 1
    page.mouse.up()
    elapsed = time.monotonic() - start
    fps = (page.evaluate("window.benchFrames.length") - before) / elapsed
    session = context.new_cdp_session(page)
    session.send("HeapProfiler.collectGarbage")
    heap = session.send("Runtime.getHeapUsage")["usedSize"] / 1e6
    page.close()
    return {
        "first_frame_ms": firstFrame,
        "stable_ms": stableAt,
        "pan_fps": fps,
        "heap_mb": heap,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--graphs", nargs="+", default=["snapshot", "10000", "50000"])
    parser.add_argument("--baselines", nargs="*", default=["snapshot", "10000"])
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait for stable")
    parser.add_argument("--smoke", action="store_true", help="a 1,000-node graph, 5 s settle")
    args = parser.parse_args()
    if args.smoke:
        args.graphs, args.baselines, args.settle = ["1000"], ["1000"], 5.0
    from playwright.sync_api import sync_playwright

    buildBaselines()
    rows = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as tmp:
        for name in args.graphs:
            graph = json.loads(SNAPSHOT.read_text()) if name == "snapshot" else generated(int(name))
            work = Path(tmp) / name
            work.mkdir()
            server = Server(graph, work)
            print(
                f"{name}: store filled in {server.fillSeconds} s, laid out in"
                f" {server.layoutSeconds} s",
                flush=True,
            )
            try:
                api = apiFigures(server)
                pages = [("xmppnetgraph", "/", OUR_POSITIONS)]
                if name in args.baselines:
                    pages += [("vis-network", "/bench/vis.html", None)]
                    pages += [("VivaGraph", "/bench/viva.html", None)]
                for label, path, positions in pages:
                    profile = work / f"profile-{label}"
                    context = playwright.chromium.launch_persistent_context(
                        str(profile),
                        executable_path=CHROMIUM,
                        headless=True,
                        args=list(FLAGS),
                        viewport={"width": 1280, "height": 800},
                        # (the probe polls with eval, which our CSP forbids)
                        bypass_csp=True,
                    )
                    try:
                        figures = measurePage(context, server.url + path, positions, args.settle)
                    finally:
                        context.close()
                        shutil.rmtree(profile, ignore_errors=True)
                    rows.append((name, len(graph["nodes"]), label, figures, api))
                    print(json.dumps({"graph": name, "page": label, **figures}), flush=True)
            finally:
                server.stop()
    print()
    print(
        f"{'graph':>9} {'nodes':>6} {'page':<13} {'first frame':>11} {'stable':>10}"
        f" {'pan fps':>8} {'heap MB':>8}"
    )
    for name, nodes, label, f, _ in rows:
        stable = f"{f['stable_ms']:.0f} ms" if f["stable_ms"] is not None else "not yet"
        print(
            f"{name:>9} {nodes:>6} {label:<13} {f['first_frame_ms']:>8.0f} ms {stable:>10}"
            f" {f['pan_fps']:>8.1f} {f['heap_mb']:>8.1f}"
        )
    print()
    print(f"{'graph':>9} /api/graph: cold, warm, warm gzip; size plain / gzip")
    for name, _, label, _, api in rows:
        if label == "xmppnetgraph":
            print(
                f"{name:>9} {api['cold_ms']:7.0f} ms {api['warm_ms']:6.1f} ms"
                f" {api['warm_gzip_ms']:6.1f} ms   {api['bytes'] / 1e6:6.2f} MB"
                f" / {api['gzip_bytes'] / 1e6:6.2f} MB"
            )
    print()
    for name in args.graphs:
        ours = next((f for n, _, page, f, _ in rows if n == name and page == "xmppnetgraph"), None)
        viva = next((f for n, _, page, f, _ in rows if n == name and page == "VivaGraph"), None)
        if ours and viva and viva["pan_fps"] > 0:
            print(f"{name}: pan fps ours / VivaGraph = {ours['pan_fps'] / viva['pan_fps']:.2f}")


if __name__ == "__main__":
    main()
