# -*- test-case-name: tests.test_s2s_shutdown -*-
"""
Shutdown as users run the node: C{twistd -n xmppnetgraph} in a process of
its own, holding many authenticated incoming s2s streams (TLS and SASL
EXTERNAL with a test CA, opened by an S2SService in the test process, as
C{bench/_node.py loadgen} does), gets SIGTERM.

C{XMPPNETGRAPH_TEST_CONNECTIONS} sets how many streams (default 1000).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.error import ConnectionDone, ProcessTerminated
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.words.protocols.jabber import xmlstream

from tests.nodes import RunningNode, freePort, waitFor
from tests.pki import TestCA
from tests.test_s2s_limits import CONNECTIONS, Staller, connectFrom, raiseFileLimit
from xmppnetgraph.config import Route
from xmppnetgraph.s2s.initiate import Authenticate
from xmppnetgraph.s2s.service import OutgoingAuthenticator
from xmppnetgraph.s2s.xmlstream import S2SXmlStream

ADDRESS = "127.0.0.1"
TARGET = "target.example"
SUFFIX = "load.example"
FOOTER = b"</stream:stream>"

#: Connections stalled in their TLS handshake at the time of SIGTERM.
STALLED = 20


class _Twistd(protocol.ProcessProtocol):
    """
    The node's process: keeps its stderr and why it ended, and fires
    L{ended} when it has.
    """

    def __init__(self) -> None:
        self.errors = b""
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.reason: Failure | None = None
        self.endedAt = 0.0

    def errReceived(self, data: bytes) -> None:
        """
        Keep what it says on stderr.
        """
        self.errors += data

    def processEnded(self, reason: Failure) -> None:
        """
        The process exited.
        """
        self.endedAt = time.monotonic()
        self.reason = reason
        self.ended.callback(None)


class _Watched:
    """
    What one load stream received last, and how it ended.

    @ivar tail: the last bytes of the stream's (decrypted) input.
    @ivar reason: why the connection ended, once it has.
    """

    def __init__(self, xs: S2SXmlStream) -> None:
        self.tail = b""
        self.reason: Failure | None = None
        xs.rawDataInFn = self._received
        xs.addObserver(xmlstream.STREAM_END_EVENT, self._ended)

    def _received(self, data: bytes) -> None:
        self.tail = (self.tail + data)[-64:]

    def _ended(self, reason: Failure) -> None:
        self.reason = reason


def listening(port: int) -> bool:
    """
    @return: whether something accepts connections on C{port} of
        L{ADDRESS}.
    """
    with socket.socket() as s:
        return s.connect_ex((ADDRESS, port)) == 0


class ShutdownTests(TestCase):
    """
    SIGTERM to a node holding L{CONNECTIONS} authenticated streams.
    """

    timeout = 180

    async def test_sigtermClosesStreams(self) -> None:
        """
        After SIGTERM every stream gets C{</stream:stream>} as the last
        thing it reads and a clean close (TLS and TCP), not a reset; the
        connections stalled in a TLS handshake meanwhile are dropped (no
        footer can be sent before the handshake is done); and the process
        shuts down cleanly and exits, by the signal as twistd does (within
        a generous 30 s guard; the time it took is printed).
        """
        self.addCleanup(raiseFileLimit())
        base = Path(self.mktemp()).absolute()
        base.mkdir()
        ca = TestCA(base / "ca")
        certPath, keyPath = ca.issue([f"*.{SUFFIX}"], name="load", srvIDs=False, xmppAddrs=False)
        port = freePort(ADDRESS)
        twistd = _Twistd()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        argv = [
            sys.executable,
            "-c",
            "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
            "-n",
            "--pidfile=",
            "--logfile",
            str(base / "target.log"),
            "xmppnetgraph",
            "--domain",
            TARGET,
            "--s2s",
            f"tcp:{port}:interface={ADDRESS}:backlog=1024",
            "--no-web",
            "--data-dir",
            str(base / "target"),
            "--ca-file",
            str(ca.caPath),
            "--no-crawl",
            "--no-publish",
            "--max-unauthenticated-per-address",
            str(CONNECTIONS),
        ]
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            twistd, sys.executable, argv, env=env, path=str(base)
        )

        def kill() -> defer.Deferred[Any] | None:
            if twistd.ended.called:
                return None
            process.signalProcess(signal.SIGKILL)
            return twistd.ended

        self.addCleanup(kill)
        await waitFor(lambda: listening(port) or twistd.ended.called, timeout=60)
        self.assertFalse(twistd.ended.called, twistd.errors.decode(errors="replace"))

        load = RunningNode(base, SUFFIX, ADDRESS)
        load.build(
            tlsCert=certPath,
            tlsKey=keyPath,
            requireValidCerts=False,
            routes=(Route(TARGET, ADDRESS, port),),
            handshakeTimeout=120.0,
            connectTimeout=60.0,
            enableWeb=False,
            publish=False,
        )
        load.start()
        self.addCleanup(load.stop)
        s2s = load.s2s

        def openOne(index: int) -> defer.Deferred[S2SXmlStream]:
            local = f"n{index}.{SUFFIX}"

            def authInit(xs: S2SXmlStream) -> Authenticate:
                return Authenticate(xs, local, TARGET, s2s.secret, allowDialback=False)

            return s2s.openStream(TARGET, OutgoingAuthenticator(s2s, local, TARGET, authInit))

        semaphore = defer.DeferredSemaphore(50)
        streams = await defer.gatherResults(
            [semaphore.run(openOne, i) for i in range(CONNECTIONS)], consumeErrors=True
        )
        watched = [_Watched(xs) for xs in streams]
        stalled = [Staller("hello", TARGET) for _ in range(STALLED)]
        for staller in stalled:
            await connectFrom(ADDRESS, port, staller)
        await waitFor(lambda: all(b"<proceed" in s.received for s in stalled))

        start = time.monotonic()
        process.signalProcess(signal.SIGTERM)
        # A guard against a hang only, not a measure.
        await twistd.ended.addTimeout(30, reactor)
        seconds = twistd.endedAt - start
        print(f"\n{CONNECTIONS} streams: twistd exited {seconds:.2f} s after SIGTERM")
        # twistd stops its reactor, then ends itself with the signal it got.
        reason = twistd.reason
        assert reason is not None
        self.assertTrue(reason.check(ProcessTerminated), reason)
        self.assertEqual(
            reason.value.signal, signal.SIGTERM, twistd.errors.decode(errors="replace")
        )
        await waitFor(lambda: all(w.reason is not None for w in watched), timeout=30)
        self.assertTrue(all(s.closed.called for s in stalled))
        self.assertEqual(
            [w.tail[-len(FOOTER) :] for w in watched if not w.tail.endswith(FOOTER)], []
        )
        self.assertEqual(
            [w.reason for w in watched if not w.reason.check(ConnectionDone)],  # type: ignore[union-attr]
            [],
        )
        log = (base / "target.log").read_text(errors="replace")
        # The shutdown is logged once, not once per link.
        self.assertEqual(log.count("s2s stopping: closing"), 1)
        self.assertIn(f"({CONNECTIONS} links)", log)
        self.assertIn("s2s stopped:", log)
        self.assertNotIn("s2s link down", log)
        self.assertIn("Server Shut Down.", log)
        self.assertNotIn("Traceback", log)
        self.assertNotIn("Unhandled", log)
