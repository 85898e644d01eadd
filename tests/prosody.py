# -*- test-case-name: tests.test_prosody_fixture -*-
"""
A real Prosody (Debian's C{prosody} 13 from bookworm-backports, or 0.12,
with C{lua-unbound}) as a test peer, optionally publishing XEP-0485 server
information with the real C{mod_pubsub_serverinfo} of C{prosody-modules}.

L{ProsodyPeer} writes a config, a hosts file and a data directory into a
directory of the test's own, starts Prosody as a child process of the test
reactor bound to one loopback address, and stops it by PID. Test domains
resolve through Prosody's libunbound with that hosts file only; every other
query goes to a dead loopback port, so nothing leaves the machine. See
C{shared/interop/PROSODY.md} for the recipe.

L{prosodyVersion} tells which Prosody is installed, and
L{ProsodyPeer.version} which one a started peer runs.

As root, Prosody runs as the C{prosody} user (through C{setpriv}), and the
directory is handed to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import Logger
from twisted.python.failure import Failure

#: The user Prosody runs as when the tests run as root.
PROSODY_USER = "prosody"

#: The module of C{prosody-modules} that publishes XEP-0485 server
#: information.
SERVERINFO_MODULE = "pubsub_serverinfo"

#: Where Prosody looks for its version file and its modules when the
#: C{prosody} script does not say (C{CFG_SOURCEDIR}).
_DEFAULT_SOURCE_DIR = "/usr/lib/prosody"

#: Where Debian (and a source install) put lua-unbound's C module.
_LUNBOUND_GLOBS = (
    "/usr/lib/*/lua/5.*/lunbound.so",
    "/usr/lib/lua/5.*/lunbound.so",
    "/usr/local/lib/lua/5.*/lunbound.so",
)


class ProsodyError(Exception):
    """
    Prosody could not be started, stopped or administered.
    """


class PortInUse(ProsodyError):
    """
    Prosody could not start because it could not bind its address and port,
    usually because they are taken (another Prosody, or a concurrent test
    run on the same address). Retry on other addresses.
    """


def _isRoot() -> bool:
    """
    @return: whether this process runs as root.
    """
    return os.geteuid() == 0


def prosodyAvailable() -> str | None:
    """
    Check, cheaply and without blocking, whether L{ProsodyPeer} can work here.

    @return: L{None} when Prosody is usable, else the reason it is not (for
        a skip or failure message).
    """
    for program in ("prosody", "prosodyctl"):
        if shutil.which(program) is None:
            return f"{program} is not installed (run scripts/setup-system)"
    if not any(glob.glob(pattern) for pattern in _LUNBOUND_GLOBS):
        return "lua-unbound is not installed (run scripts/setup-system)"
    if _isRoot():
        if shutil.which("setpriv") is None:
            return "running as root, but setpriv is missing"
        try:
            pwd.getpwnam(PROSODY_USER)
        except KeyError:
            return f"running as root, but there is no {PROSODY_USER!r} user"
    return None


def _sourceDir() -> Path | None:
    """
    @return: Prosody's source directory (C{CFG_SOURCEDIR} of the installed
        C{prosody} script: its version file and modules), or L{None} when
        Prosody is not installed.
    """
    program = shutil.which("prosody")
    if program is None:
        return None
    try:
        script = Path(program).read_text(errors="replace")
    except OSError:
        script = ""
    found = re.search(r"""^CFG_SOURCEDIR\s*=\s*['"]([^'"]+)['"]""", script, re.MULTILINE)
    return Path(found.group(1) if found else _DEFAULT_SOURCE_DIR)


def prosodyVersion() -> str | None:
    """
    The version of the installed Prosody, as Prosody itself reads it (its
    C{prosody.version} file), without starting it.

    @return: like C{"13.0.1"}, or L{None} when Prosody is not installed or
        has no version file (a source checkout).
    """
    source = _sourceDir()
    if source is None:
        return None
    try:
        return (source / "prosody.version").read_text().strip() or None
    except OSError:
        return None


def versionTuple(version: str | None) -> tuple[int, ...]:
    """
    @param version: a Prosody version like C{"13.0.1"} or C{"0.12.3"}.
    @return: its leading numeric parts, like C{(13, 0, 1)}; C{()} for
        L{None} or a version without numbers (C{"hg:..."}).
    """
    parts = []
    for part in (version or "").split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def serverInfoAvailable() -> str | None:
    """
    Check whether L{ProsodyPeer} can run with C{serverinfo=True}: Prosody 13
    or later and C{mod_pubsub_serverinfo} (Debian's C{prosody-modules}
    from bookworm-backports) installed.

    @return: L{None} when it can, else the reason it cannot.
    """
    reason = prosodyAvailable()
    if reason is not None:
        return reason
    version = prosodyVersion()
    if versionTuple(version) < (13,):
        return (
            f"Prosody {version} is installed; mod_{SERVERINFO_MODULE} needs 13 "
            "(run scripts/setup-system)"
        )
    source = _sourceDir()
    assert source is not None
    name = f"mod_{SERVERINFO_MODULE}"
    candidates = [source / "modules" / name / f"{name}.lua", source / "modules" / f"{name}.lua"]
    if not any(path.is_file() for path in candidates):
        return f"{name} is not installed (prosody-modules; run scripts/setup-system)"
    return None


def serverInfoSkip() -> str | None:
    """
    The value for a class-level C{skip} of a test case that needs a Prosody
    running C{mod_pubsub_serverinfo}.

    @return: the reason it is unusable, or L{None} when usable or in CI
        (then L{requireServerInfo} fails the test instead).
    """
    return skipOutsideCI(serverInfoAvailable())


def requireServerInfo() -> None:
    """
    Call from C{setUp} of a test case that uses L{serverInfoSkip}.

    @raise ProsodyError: if Prosody with C{mod_pubsub_serverinfo} is
        unusable (only reached in CI).
    """
    reason = serverInfoAvailable()
    if reason is not None:
        raise ProsodyError(f"Prosody with mod_{SERVERINFO_MODULE} is required in CI: {reason}")


def inCI() -> bool:
    """
    @return: whether the environment variable C{CI} says we run in CI, where
        a missing Prosody is an error and not a reason to skip.
    """
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skipOutsideCI(reason: str | None) -> str | None:
    """
    @param reason: why a component the tests need is unusable, or L{None}.
    @return: C{reason} as a class-level C{skip} value, except in CI, where
        a missing component must fail the tests rather than skip them.
    """
    return None if inCI() else reason


def prosodySkip() -> str | None:
    """
    The value for a class-level C{skip} of a test case that needs Prosody.

    @return: the reason Prosody is unusable, or L{None} when it is usable or
        when running in CI (then L{requireProsody} fails the test instead).
    """
    return skipOutsideCI(prosodyAvailable())


def requireProsody() -> None:
    """
    Call from C{setUp} of a test case that uses L{prosodySkip}.

    @raise ProsodyError: if Prosody is unusable (only reached in CI, where
        the test case is not skipped).
    """
    reason = prosodyAvailable()
    if reason is not None:
        raise ProsodyError(f"Prosody is required in CI but unusable: {reason}")


def _portFree(address: str, port: int) -> bool:
    """
    @return: whether a listening socket could bind C{address}:C{port} now.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def freeLoopbackAddresses(
    count: int,
    ports: Sequence[int] = (5269, 5222),
    first: int = 2,
    exclude: Collection[str] = (),
) -> list[str]:
    """
    Pick loopback addresses for peers on fixed ports, skipping addresses
    another test run (or Prosody) uses right now.

    @param count: how many addresses.
    @param ports: the ports that must be free on each address.
    @param first: start at C{127.0.0.<first>}; the result is that address
        and the following ones when they are free.
    @param exclude: addresses not to pick (like ones that turned out to be
        taken after all: see L{PortInUse}).
    @return: C{count} addresses from 127.0.0.0/8 (racy: a concurrent run may
        take one before Prosody binds it; L{ProsodyPeer.start} then fails
        clearly).
    @raise ProsodyError: if there are not enough free addresses.
    """
    found: list[str] = []
    for n in range(first, 255 * 256):
        address = f"127.0.{n // 256}.{n % 256}"
        if n % 256 in (0, 255) or address in exclude:
            continue
        if all(_portFree(address, port) for port in ports):
            found.append(address)
            if len(found) == count:
                return found
    raise ProsodyError(f"no {count} free loopback addresses for ports {ports}")


def _lua(value: str) -> str:
    """
    @return: C{value} as a Lua string literal.
    """
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )
    return f'"{escaped}"'


def _luaList(values: Sequence[str]) -> str:
    """
    @return: C{values} as a Lua array of strings.
    """
    return "{ " + "; ".join(_lua(v) for v in values) + " }"


class _ProsodyProcess(protocol.ProcessProtocol):
    """
    Collects Prosody's console output and reports its end.

    @ivar output: the last bytes Prosody wrote on stdout and stderr.
    @ivar endedReason: the C{processEnded} reason, once it ended.
    """

    _keep = 16384

    def __init__(self) -> None:
        self.output = b""
        self.endedReason: Failure | None = None
        self._waiting: list[defer.Deferred[None]] = []

    def _collect(self, data: bytes) -> None:
        self.output = (self.output + data)[-self._keep :]

    def outReceived(self, data: bytes) -> None:
        self._collect(data)

    def errReceived(self, data: bytes) -> None:
        self._collect(data)

    def processEnded(self, reason: Failure) -> None:
        self.endedReason = reason
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.callback(None)

    @property
    def hasEnded(self) -> bool:
        """
        Whether the process has ended (and its pipes are closed).
        """
        return self.endedReason is not None

    def whenEnded(self) -> defer.Deferred[None]:
        """
        @return: fires when the process has ended.
        """
        if self.hasEnded:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d


class ProsodyPeer:
    """
    One Prosody instance serving C{domain} on one loopback address.

    @ivar directory: holds everything of this instance: C{prosody.cfg.lua},
        C{hosts}, C{tls/}, C{data/}, C{prosody.pid} and C{prosody.log}.
    @ivar domain: the VirtualHost.
    @ivar address: the loopback address the c2s and s2s ports bind to.
    @ivar configPath: the generated config file.
    @ivar logPath: Prosody's log file (level debug).
    @ivar pidPath: Prosody's pid file.
    @ivar pid: the PID of the running Prosody, or L{None}.
    @ivar pubsubDomain: the pub-sub component's domain, or L{None}.
    @ivar serverinfo: whether the host publishes XEP-0485 server information
        (C{mod_pubsub_serverinfo}) on L{pubsubDomain}, node
        L{serverinfoNode}.
    @ivar serverinfoNode: the node it publishes on.
    @ivar version: the Prosody version this peer runs, as it logged it at
        its last start (like C{"13.0.1"}), or L{None} before.
    @ivar startTime: seconds the last L{start} took, or L{None}.
    @ivar stopTime: seconds the last L{stop} took, or L{None}.
    """

    _log = Logger()

    #: Seconds L{start} waits for both ports.
    startTimeout = 15.0
    #: Seconds L{stop} waits after SIGTERM before SIGKILL.
    stopTimeout = 10.0
    #: Seconds between two port probes.
    _probeInterval = 0.05

    def __init__(
        self,
        directory: Path,
        domain: str,
        address: str,
        *,
        certPath: Path,
        keyPath: Path,
        caPath: Path | None = None,
        hosts: Mapping[str, str] = {},
        s2sPort: int = 5269,
        c2sPort: int = 5222,
        secureAuth: bool = False,
        pubsub: bool = True,
        extraComponents: Mapping[str, str] = {},
        extraModules: Sequence[str] = (),
        serverinfo: bool = False,
        serverinfoInterval: float = 2.0,
        serverinfoCacheTtl: float = 30.0,
        testZone: str = "example",
        reactor: Any = None,
    ) -> None:
        """
        @param directory: a directory for this instance (created if missing).
        @param domain: the VirtualHost to serve.
        @param address: the loopback address to bind (one per peer).
        @param certPath: PEM certificate (chain) for C{domain} and its
            components.
        @param keyPath: PEM private key for C{certPath}.
        @param caPath: PEM CA certificate(s) Prosody trusts for s2s, in
            addition to the system ones.
        @param hosts: domain to IPv4 address, the only names Prosody resolves
            (through libunbound's hosts file). Prosody dials port 5269 of a
            resolved address, so peers it should reach need C{s2sPort=5269}.
        @param s2sPort: the s2s port.
        @param c2sPort: the c2s port.
        @param secureAuth: C{s2s_secure_auth}: require an authenticated
            certificate on s2s (no dialback fallback).
        @param pubsub: add the component C{pubsub.<domain>} (mod_pubsub).
        @param extraComponents: more internal components, domain to Prosody
            module name.
        @param extraModules: more modules for C{modules_enabled}.
        @param serverinfo: run the real C{mod_pubsub_serverinfo} on the host
            (needs C{pubsub}; see L{serverInfoAvailable}). The host is made
            an admin (the module publishes as the host's JID) and the module
            is told its service explicitly (it switches itself off when the
            pub-sub component loads after the host). It creates the node
            C{serverinfo} on C{pubsub.<domain>}, adds
            C{urn:xmpp:serverinfo:0} and the C{serverinfo-pubsub-node} form
            field to the host's disco#info, and publishes the item
            C{current} 10 s after start (fixed in the module), then every
            C{serverinfoInterval} seconds. A remote is named only from the
            second publication after the link on which its disco#info listed
            C{urn:xmpp:serverinfo:0}: the first publication that sees a new
            peer asks it, and lists it anonymously. The list of public
            providers the module fetches over HTTP points to a dead
            loopback port (nothing leaves the machine).
        @param serverinfoInterval: C{pubsub_serverinfo_publication_interval}
            in seconds.
        @param serverinfoCacheTtl: C{pubsub_serverinfo_cache_ttl}: how long
            a remote's consent answer counts, in seconds. Shorter than the
            interval + 60 s (as by default here), the module asks every peer
            again at every publication and uses the previous answer.
        @param testZone: the DNS zone all test domains are in; libunbound
            answers it locally (hosts file, else NXDOMAIN).
        @param reactor: an L{IReactorProcess} and L{IReactorTCP}; the global
            reactor by default.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self._reactor = reactor
        self.domain = domain
        self.address = address
        self.certPath = Path(certPath)
        self.keyPath = Path(keyPath)
        self.caPath = None if caPath is None else Path(caPath)
        self.hosts = dict(hosts)
        self.s2sPort = s2sPort
        self.c2sPort = c2sPort
        self.secureAuth = secureAuth
        self.pubsubDomain = f"pubsub.{domain}" if pubsub else None
        self.components = dict(extraComponents)
        if self.pubsubDomain is not None:
            self.components = {self.pubsubDomain: "pubsub", **self.components}
        self.extraModules = tuple(extraModules)
        if serverinfo and self.pubsubDomain is None:
            raise ProsodyError("serverinfo=True needs the pub-sub component (pubsub=True)")
        self.serverinfo = serverinfo
        self.serverinfoNode = "serverinfo"
        self.serverinfoInterval = serverinfoInterval
        self.serverinfoCacheTtl = serverinfoCacheTtl
        self.version: str | None = None
        self.testZone = testZone.strip(".")
        self._relocate(Path(directory).absolute())
        self._temporaryDirectory: Path | None = None
        self.pid: int | None = None
        self.startTime: float | None = None
        self.stopTime: float | None = None
        self._process: _ProsodyProcess | None = None
        self._transport: Any = None
        self._prepared = False
        self._startSettled: defer.Deferred[None] | None = None
        self._probeFactory: Any = protocol.Factory.forProtocol(protocol.Protocol)

    def __repr__(self) -> str:
        return f"<ProsodyPeer {self.domain} on {self.address} pid={self.pid}>"

    # -- files -------------------------------------------------------------

    def _tlsFiles(self) -> dict[str, Path]:
        """
        @return: the copies of the TLS files Prosody reads, by config key.
        """
        files = {
            "certificate": self.tlsPath / f"{self.domain}.crt",
            "key": self.tlsPath / f"{self.domain}.key",
        }
        if self.caPath is not None:
            files["cafile"] = self.tlsPath / "ca.crt"
        return files

    def configText(self) -> str:
        """
        @return: the Lua config this peer runs with.
        """
        modules = [
            "roster",
            "saslauth",
            "tls",
            "dialback",
            "disco",
            "ping",
            "version",
            *self.extraModules,
        ]
        ssl = "; ".join(f"{key} = {_lua(str(path))}" for key, path in self._tlsFiles().items())
        lines = [
            "-- Written by tests/prosody.py for one test; do not edit.",
            f"pidfile = {_lua(str(self.pidPath))}",
            f"data_path = {_lua(str(self.dataPath))}",
            f"log = {{ debug = {_lua(str(self.logPath))} }}",
            f"interfaces = {_luaList([self.address])}",
            f"c2s_ports = {{ {self.c2sPort} }}",
            f"s2s_ports = {{ {self.s2sPort} }}",
            "use_ipv6 = false",
            "http_ports = { }",
            "https_ports = { }",
            f"modules_enabled = {_luaList(modules)}",
            'authentication = "internal_hashed"',
            'storage = "internal"',
            "allow_registration = false",
            "c2s_require_encryption = true",
            "s2s_require_encryption = true",
            f"s2s_secure_auth = {'true' if self.secureAuth else 'false'}",
            f"certificates = {_lua(str(self.tlsPath))}",
            f"ssl = {{ {ssl} }}",
            "unbound = {",
            "    resolvconf = false;",
            f"    hoststxt = {_lua(str(self.hostsPath))};",
            # A dead loopback port: names outside the test zone fail, offline.
            '    forward = "127.0.0.1@9";',
            f'    options = {{ ["local-zone:"] = {_lua(self.testZone + ". static")} }};',
            "}",
        ]
        if self.serverinfo:
            # Prosody 13: a global admin is prosody:operator on every host,
            # which lets the module create and publish to its node.
            lines.append(f"admins = {_luaList([self.domain])}")
        lines += ["", f"VirtualHost {_lua(self.domain)}"]
        if self.serverinfo:
            assert self.pubsubDomain is not None
            option = f"    {SERVERINFO_MODULE}_"
            lines += [
                f"    modules_enabled = {_luaList([SERVERINFO_MODULE])}",
                f"{option}service = {_lua(self.pubsubDomain)}",
                f"{option}node = {_lua(self.serverinfoNode)}",
                f"{option}publication_interval = {self.serverinfoInterval:g}",
                f"{option}cache_ttl = {self.serverinfoCacheTtl:g}",
                # A dead loopback port: no fetch of data.xmpp.net's list.
                f'{option}public_providers_url = "http://127.0.0.1:9/providers.json"',
            ]
        for component, module in self.components.items():
            lines.append(f"Component {_lua(component)} {_lua(module)}")
        return "\n".join(lines) + "\n"

    def hostsText(self) -> str:
        """
        @return: the hosts file libunbound reads.
        """
        return "".join(f"{address} {name}\n" for name, address in self.hosts.items())

    def _prepare(self) -> None:
        """
        Write config, hosts file and TLS copies, and hand the directory to
        the Prosody user when running as root.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        if _isRoot():
            user = pwd.getpwnam(PROSODY_USER)
            try:
                self._checkReachable(user.pw_uid, user.pw_gid)
            except ProsodyError as e:
                # E.g. a checkout under /root (mode 0700): run from a
                # directory of our own in the system temporary directory.
                self._relocate(Path(tempfile.mkdtemp(prefix=f"prosody-{self.domain}-")))
                self._temporaryDirectory = self.directory
                self._log.info(
                    "{reason}: using {directory} instead",
                    reason=str(e),
                    directory=str(self.directory),
                )
                self._checkReachable(user.pw_uid, user.pw_gid)
        self.dataPath.mkdir(exist_ok=True)
        self.tlsPath.mkdir(exist_ok=True)
        sources = {"certificate": self.certPath, "key": self.keyPath}
        if self.caPath is not None:
            sources["cafile"] = self.caPath
        for key, target in self._tlsFiles().items():
            shutil.copyfile(sources[key], target)
        self.configPath.write_text(self.configText())
        self.hostsPath.write_text(self.hostsText())
        if _isRoot():
            user = pwd.getpwnam(PROSODY_USER)
            for root, dirs, files in os.walk(self.directory):
                os.chown(root, user.pw_uid, user.pw_gid)
                for name in dirs + files:
                    os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
        self._prepared = True

    def _relocate(self, directory: Path) -> None:
        """
        Keep Prosody's config, hosts file, TLS copies, data, pid file and
        log in C{directory}.
        """
        self.directory = directory
        self.configPath = directory / "prosody.cfg.lua"
        self.hostsPath = directory / "hosts"
        self.dataPath = directory / "data"
        self.tlsPath = directory / "tls"
        self.pidPath = directory / "prosody.pid"
        self.logPath = directory / "prosody.log"

    def _checkReachable(self, uid: int, gid: int) -> None:
        """
        Make sure the user C{uid}/C{gid} can traverse to L{directory}.

        Parents below the working directory or the system temporary
        directory (like trial's C{mktemp} directories, made with mode 0700)
        that are ours get search permission for others (not read).

        @raise ProsodyError: if another parent is closed to that user.
        """
        ownRoots = [Path.cwd().resolve(), Path(tempfile.gettempdir()).resolve()]
        for parent in self.directory.resolve().parents:
            st = parent.stat()
            if st.st_uid == uid:
                ok = bool(st.st_mode & 0o100)
            elif st.st_gid == gid:
                ok = bool(st.st_mode & 0o010)
            else:
                ok = bool(st.st_mode & 0o001)
            if ok:
                continue
            ours = st.st_uid == os.geteuid() and any(root in parent.parents for root in ownRoots)
            if not ours:
                raise ProsodyError(
                    f"{parent} is not searchable by the {PROSODY_USER} user; "
                    f"Prosody could not reach {self.directory}"
                )
            os.chmod(parent, stat.S_IMODE(st.st_mode) | 0o001)

    def _command(self, program: str, *args: str) -> tuple[str, list[str]]:
        """
        @return: executable and argv to run Prosody's C{program} with our
            config (through setpriv as the Prosody user when root).
        """
        path = shutil.which(program)
        if path is None:
            raise ProsodyError(f"{program} is not installed")
        argv = [path, "--config", str(self.configPath), *args]
        if program == "prosody" and _isRoot():
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise ProsodyError("setpriv is missing")
            argv = [
                setpriv,
                f"--reuid={PROSODY_USER}",
                f"--regid={PROSODY_USER}",
                "--init-groups",
                *argv,
            ]
        return argv[0], argv

    def logTail(self, lines: int = 40) -> str:
        """
        @return: the last C{lines} lines of Prosody's log and console
            output, for error messages.
        """
        parts = []
        try:
            text = self.logPath.read_text(errors="replace")
        except OSError as e:
            text = f"(no log: {e})"
        parts.append(f"--- {self.logPath} (tail) ---")
        parts.extend(text.splitlines()[-lines:])
        if self._process is not None and self._process.output:
            parts.append("--- console output (tail) ---")
            parts.extend(self._process.output.decode("utf-8", "replace").splitlines()[-lines:])
        return "\n".join(parts)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> defer.Deferred[None]:
        """
        Write the files, start Prosody and wait until its s2s and c2s ports
        accept connections.

        @return: fires when Prosody is ready; fails, after stopping it, with
            L{PortInUse} when a port is taken, or with L{ProsodyError}
            (including the tail of Prosody's log) when Prosody exits early
            or is not ready within L{startTimeout} seconds.
        """
        return defer.Deferred.fromCoroutine(self._start())

    async def _start(self) -> None:
        if self._process is not None or self._startSettled is not None:
            raise ProsodyError(f"{self!r} is running already")
        settled: defer.Deferred[None] = defer.Deferred()
        self._startSettled = settled
        try:
            await self._startProcess()
        finally:
            self._startSettled = None
            settled.callback(None)

    async def _startProcess(self) -> None:
        began = time.monotonic()
        self.version = None
        self._prepare()
        self._checkPortsFree()
        try:
            logOffset = self.logPath.stat().st_size
        except FileNotFoundError:
            logOffset = 0
        executable, argv = self._command("prosody", "-F")
        process = _ProsodyProcess()
        self._process = process
        self._transport = self._reactor.spawnProcess(
            process, executable, argv, env=dict(os.environ), path=str(self.directory)
        )
        self.pid = self._transport.pid
        self._log.info(
            "started Prosody for {domain} on {address}, pid {pid}",
            domain=self.domain,
            address=self.address,
            pid=self.pid,
        )
        try:
            await self._waitForPorts(process, began, logOffset)
        except BaseException:
            await self._terminate(process)
            raise
        self.startTime = time.monotonic() - began

    def _checkPortsFree(self) -> None:
        """
        Make sure nothing listens on our s2s and c2s ports yet (another
        Prosody, or a concurrent test run using the same address).

        @raise ProsodyError: if a port is taken.
        """
        for port in (self.s2sPort, self.c2sPort):
            if not _portFree(self.address, port):
                raise PortInUse(
                    f"cannot start Prosody for {self.domain}: "
                    f"{self.address}:{port} is taken; is another Prosody or test "
                    "run using this address? (see freeLoopbackAddresses)"
                )

    def _newLog(self, offset: int) -> str:
        """
        @return: what Prosody logged after byte C{offset} of its log.
        """
        try:
            with self.logPath.open("rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    async def _waitForPorts(self, process: _ProsodyProcess, began: float, logOffset: int) -> None:
        """
        Wait until Prosody logs that it listens on the s2s and c2s ports and
        both accept a connection.

        @param logOffset: the size of the log before this start.
        @raise ProsodyError: if Prosody fails to bind, exits, or the time is
            up.
        """
        pending = {
            port: f"Added listening service {service} to [{self.address}]:{port}"
            for service, port in (("s2s", self.s2sPort), ("c2s", self.c2sPort))
        }
        while pending:
            if process.hasEnded:
                raise ProsodyError(
                    f"Prosody for {self.domain} exited during start-up\n" + self.logTail()
                )
            logged = self._newLog(logOffset)
            if "Failed to open server port" in logged:
                raise PortInUse(
                    f"Prosody for {self.domain} could not bind its ports\n" + self.logTail()
                )
            if time.monotonic() - began > self.startTimeout:
                raise ProsodyError(
                    f"Prosody for {self.domain} did not open {self.address} ports "
                    f"{sorted(pending)} within {self.startTimeout} s\n" + self.logTail()
                )
            if self.version is None:
                hello = re.search(r"Hello and welcome to Prosody version (\S+)", logged)
                if hello is not None:
                    self.version = hello.group(1)
            for port, line in list(pending.items()):
                if line in logged and await self._probe(port):
                    del pending[port]
            if pending:
                await deferLater(self._reactor, self._probeInterval, lambda: None)

    async def _probe(self, port: int) -> bool:
        """
        @return: whether C{port} on our address accepts a TCP connection.
        """
        endpoint = TCP4ClientEndpoint(self._reactor, self.address, port, timeout=1)
        try:
            proto = await endpoint.connect(self._probeFactory)
        except (error.ConnectError, error.TimeoutError):
            return False
        proto.transport.abortConnection()
        return True

    def register(self, user: str, password: str) -> defer.Deferred[None]:
        """
        Create the account C{user@domain} with C{prosodyctl register}.

        @return: fires when the account exists; fails with L{ProsodyError}
            when prosodyctl fails.
        """
        if not self._prepared:
            self._prepare()
        executable, argv = self._command("prosodyctl", "register", user, self.domain, password)
        d = getProcessOutputAndValue(
            executable,
            argv[1:],
            env=dict(os.environ),
            path=str(self.directory),
            reactor=self._reactor,
        )

        def check(result: tuple[bytes, bytes, int]) -> None:
            out, err, code = result
            if code != 0:
                raise ProsodyError(
                    f"prosodyctl register {user} {self.domain} exited with {code}: "
                    + (out + err).decode("utf-8", "replace")
                )

        d.addCallback(check)
        return d

    def stop(self) -> defer.Deferred[None]:
        """
        Stop Prosody: SIGTERM, then SIGKILL after L{stopTimeout} seconds. A
        L{start} in progress is let finish first (at most L{startTimeout}
        seconds).

        @return: fires once the process has ended (immediately when it is
            not running).
        """
        return defer.Deferred.fromCoroutine(self._stop())

    def restart(self) -> defer.Deferred[None]:
        """
        Stop Prosody and start it again on the same data (where mod_pubsub
        keeps its nodes and their subscribers), as a server restart does.
        """

        async def restart() -> None:
            await self._stop(keepData=True)
            await self.start()

        return defer.Deferred.fromCoroutine(restart())

    async def _stop(self, keepData: bool = False) -> None:
        if self._startSettled is not None:
            await self._startSettled
        if self._process is not None:
            await self._terminate(self._process)
        if self._temporaryDirectory is not None and not keepData:
            shutil.rmtree(self._temporaryDirectory, ignore_errors=True)
            self._temporaryDirectory = None

    async def _terminate(self, process: _ProsodyProcess) -> None:
        """
        End C{process} (SIGTERM, then SIGKILL) and forget it.
        """
        began = time.monotonic()
        if not process.hasEnded:
            self._signal("TERM")
            if not await self._waitEnded(process, self.stopTimeout):
                self._log.warn(
                    "Prosody for {domain} ignored SIGTERM for {seconds} s; killing it",
                    domain=self.domain,
                    seconds=self.stopTimeout,
                )
                self._signal("KILL")
                await self._waitEnded(process, None)
        self.stopTime = time.monotonic() - began
        self._log.info(
            "Prosody for {domain} stopped in {seconds:.2f} s",
            domain=self.domain,
            seconds=self.stopTime,
        )
        if self._process is process:
            self._process = None
            self._transport = None
            self.pid = None

    def _signal(self, name: str) -> None:
        """
        Send the signal C{name} (like C{"TERM"}) unless the process is gone.
        """
        try:
            self._transport.signalProcess(name)
        except error.ProcessExitedAlready:
            pass

    async def _waitEnded(self, process: _ProsodyProcess, timeout: float | None) -> bool:
        """
        @return: whether C{process} ended within C{timeout} seconds
            (L{None}: wait for ever).
        """
        waiting = process.whenEnded()
        if timeout is not None:
            waiting.addTimeout(timeout, self._reactor)
        try:
            await waiting
        except defer.TimeoutError:
            return False
        return True


__all__ = [
    "PROSODY_USER",
    "SERVERINFO_MODULE",
    "PortInUse",
    "ProsodyError",
    "ProsodyPeer",
    "freeLoopbackAddresses",
    "inCI",
    "prosodyAvailable",
    "prosodySkip",
    "prosodyVersion",
    "requireProsody",
    "requireServerInfo",
    "serverInfoAvailable",
    "serverInfoSkip",
    "startAmong",
    "startBeside",
    "versionTuple",
]


async def startBeside(
    directory: Path,
    domain: str,
    neighbours: Sequence[str],
    *,
    certPath: Path,
    keyPath: Path,
    caPath: Path | None = None,
    secureAuth: bool = False,
    attempts: int = 5,
    **options: Any,
) -> tuple[ProsodyPeer, str]:
    """
    Start a Prosody for C{domain} on a free loopback address, with a second
    free address (port 5269 free) on which C{neighbours} resolve for it: the
    place for a node of ours that federates with it. When a concurrent run
    takes an address first, try others.

    @param options: more L{ProsodyPeer} arguments (like C{serverinfo}).
    @return: the started peer (the caller stops it) and the neighbours'
        address.
    """
    peer, (address,) = await startAmong(
        directory,
        domain,
        [neighbours],
        certPath=certPath,
        keyPath=keyPath,
        caPath=caPath,
        secureAuth=secureAuth,
        attempts=attempts,
        **options,
    )
    return peer, address


async def startAmong(
    directory: Path,
    domain: str,
    neighbourGroups: Sequence[Sequence[str]],
    *,
    certPath: Path,
    keyPath: Path,
    caPath: Path | None = None,
    secureAuth: bool = False,
    attempts: int = 5,
    **options: Any,
) -> tuple[ProsodyPeer, list[str]]:
    """
    Like L{startBeside}, with one free loopback address (port 5269 free)
    per group of neighbour names: the places for several nodes of ours that
    Prosody must be able to dial (dialback, its consent checks).

    For a Prosody publishing server information, for instance::

        peer, (aAddress, bAddress) = await startAmong(
            base, "prosody.example",
            [["a.example", "pubsub.a.example"], ["b.example"]],
            certPath=cert, keyPath=key, serverinfo=True,
        )

    @param neighbourGroups: the names that resolve to each address.
    @param options: more L{ProsodyPeer} arguments (like C{serverinfo}).
    @return: the started peer (the caller stops it) and the address of
        each group, in order.
    """
    tried: set[str] = set()
    for attempt in range(attempts):
        peerAddress, *addresses = freeLoopbackAddresses(1 + len(neighbourGroups), exclude=tried)
        tried.update((peerAddress, *addresses))
        peer = ProsodyPeer(
            directory / str(attempt),
            domain,
            peerAddress,
            certPath=certPath,
            keyPath=keyPath,
            caPath=caPath,
            hosts={
                name: address
                for names, address in zip(neighbourGroups, addresses, strict=True)
                for name in names
            },
            secureAuth=secureAuth,
            **options,
        )
        try:
            await peer.start()
        except PortInUse:
            await peer.stop()
            if attempt == attempts - 1:
                raise
            continue
        return peer, addresses
    raise ProsodyError(f"no free loopback addresses for Prosody after {attempts} attempts")
