"""
Prosody helpers shared by the benchmarks, on top of the test suite's
L{tests.prosody.ProsodyPeer}.
"""

from __future__ import annotations

import os
import random
import signal
import socket
from typing import Any

from _common import sleep


def quietLoopbackAddresses(count: int, port: int = 5269) -> list[str]:
    """
    @return: C{count} loopback addresses C{127.x.y.2}, C{127.x.y.3}, ... on
        which C{port} is free. Prosody dials peers on 5269, so each Prosody
        needs an address of its own; random ones keep clear of the test
        suite (127.0.0.2, 127.0.0.3, ...) running at the same time.
    """
    for _ in range(50):
        prefix = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"
        addresses = [f"{prefix}.{i}" for i in range(2, 2 + count)]
        try:
            for address in addresses:
                with socket.socket() as s:
                    s.bind((address, port))
        except OSError:
            continue
        return addresses
    raise RuntimeError(f"no {count} free loopback addresses for port {port}")


def catchesSIGHUP(pid: int) -> bool:
    """
    @return: whether process C{pid} takes SIGHUP without dying: it has a
        handler (Prosody 0.12) or blocks it to read it from a signalfd
        (Prosody 13).
    """
    bit = 1 << (signal.SIGHUP - 1)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("SigCgt:", "SigBlk:")) and int(line.split()[1], 16) & bit:
                return True
    return False


async def setProsodyLogLevel(reactor: Any, peer: Any, level: str) -> None:
    """
    Switch a running Prosody's log level: rewrite the C{log} line of its
    config and send SIGHUP (Prosody then reloads its config and logging).

    The fixture logs at debug, which writes every stanza to the log, and
    needs that during start-up (it waits for a debug line); Debian's
    default is info.
    """
    if level == "debug":
        return
    # The fixture's line is C{log = { debug = "<log path>" }}: change the
    # level, keep the path as the fixture quoted it.
    debug = "log = { debug = "
    lines = peer.configPath.read_text().splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.startswith(debug)]
    if len(found) != 1:
        raise RuntimeError("tests.prosody changed its log line; update bench/_prosody.py")
    lines[found[0]] = f"log = {{ {level} = " + lines[found[0]][len(debug) :]
    peer.configPath.write_text("".join(lines))
    # Prosody installs its signal handlers from a timer once its main loop
    # runs, a little after its ports are open; until then SIGHUP would kill
    # it. The kernel shows caught signals in SigCgt and blocked ones (13
    # reads them from a signalfd) in SigBlk; SIGHUP is bit 0.
    for _ in range(200):
        if catchesSIGHUP(peer.pid):
            break
        await sleep(reactor, 0.05)
    else:
        raise RuntimeError(f"Prosody for {peer.domain} installed no SIGHUP handler within 10 s")
    before = peer.logPath.stat().st_size
    os.kill(peer.pid, signal.SIGHUP)
    for _ in range(100):
        await sleep(reactor, 0.05)
        with peer.logPath.open("rb") as f:
            f.seek(before)
            if b"SIGHUP" in f.read():
                break
    else:
        raise RuntimeError(f"Prosody for {peer.domain} did not log the SIGHUP; see {peer.logPath}")
    await sleep(reactor, 0.2)
