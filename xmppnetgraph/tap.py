# -*- test-case-name: tests.test_tap -*-
"""
The command line of C{twistd xmppnetgraph}: L{Options} parses and checks it
(optionally merged with a TOML file given by C{--config}), L{toConfig} turns
it into a L{Config}, and L{makeService} hands that to
L{xmppnetgraph.node.buildService}.
"""

from __future__ import annotations

import difflib
import gc
import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.application.service import IService, MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor
from twisted.python import usage
from twisted.words.protocols.jabber.jid import JID, InvalidFormat

from xmppnetgraph.config import Config, Route, normalizeDomain, parseRoute
from xmppnetgraph.disco import CONTACT_FIELDS
from xmppnetgraph.serverinfo.consent import loadAllowlist

DEFAULT_DATA_DIR = "xmppnetgraph-data"

_DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres"})

# --contact-abuse -> abuse-addresses, ... (XEP-0157 fields).
_CONTACT_OPTIONS = {"contact-" + var.removesuffix("-addresses"): var for var in CONTACT_FIELDS}

# A URI scheme (RFC 3986, section 3.1), its colon and something after it.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:.+", re.DOTALL)


def _configDefault(name: str) -> str:
    """
    @return: the default of L{Config} attribute C{name}, written as a
        command-line value, so that the help text and L{Config} agree.
    """
    value = attrs.fields_dict(Config)[name].default
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# Options taking a value, by kind.  The kind decides which TOML types a
# --config file may use for the key.
_STRING_PARAMETERS = frozenset(
    {
        "domain",
        "s2s",
        "s2s-direct-tls",
        "web",
        "database",
        "pubsub-host",
        "dialback-secret",
    }
)
_PATH_PARAMETERS = frozenset({"data-dir", "tls-cert", "tls-key", "ca-file", "consent-allowlist"})
_INT_PARAMETERS = frozenset(
    {"max-stanza-size", "max-depth", "queue-limit", "max-subscriptions-per-domain"}
)
_FLOAT_PARAMETERS = frozenset(
    {
        "idle-timeout",
        "connect-timeout",
        "handshake-timeout",
        "keepalive-interval",
        "iq-timeout",
        "consent-ttl",
        "publish-delay",
        "publish-refresh",
    }
)
_FLAGS = frozenset({"require-valid-certs", "allow-plaintext", "verbose"})
# TOML key -> (option it sets, whether the boolean is inverted).
_ROLE_KEYS = {
    "no-crawl": ("no-crawl", False),
    "crawl": ("no-crawl", True),
    "no-web": ("no-web", False),
    "no-publish": ("no-publish", False),
    "publish": ("no-publish", True),
    "opt-in": ("opt-in", False),
    "no-opt-in": ("opt-in", True),
}
# Repeatable options; in a --config file a list of strings or one string.
_LIST_KEYS = frozenset({"route", "seed", "pubsub-admin", *_CONTACT_OPTIONS})


def _listOption(name: str, doc: str) -> Callable[[Options, str], None]:
    """
    Make the handler of a repeatable option.

    @param name: the option; its values are collected in a list under it.
    @param doc: the help text.
    @return: an C{opt_} method for L{Options}.
    """

    def handler(self: Options, value: str) -> None:
        self._given.add(name)
        self[name].append(value)

    handler.__doc__ = doc
    return handler


class Options(usage.Options):
    """
    Options for C{twistd xmppnetgraph}.

    After L{parseOptions}, C{config} holds the resulting L{Config}.

    @ivar config: the checked configuration, set by L{postOptions}.
    """

    longdesc = (
        "Run an XMPP server-to-server node that publishes its federation "
        "links (XEP-0485), crawls the federation and serves the graph on a "
        "web page.  ENDPOINT values are Twisted strports strings.  A --route "
        "DOMAIN may be *.suffix for all its subdomains; HOST is a name, an "
        "IPv4 address or an IPv6 address in brackets ([::1]:5269); PORT "
        "defaults to 5269.  The --contact-* options take URIs with a scheme "
        "(mailto:, xmpp:, https:, tel:, ...) that disco#info announces as "
        "XEP-0157 contact addresses.  Relative "
        "paths on the command line are relative to the current directory; "
        "relative paths in a --config file are relative to the file's "
        "directory."
    )

    optParameters = [
        ["domain", None, None, "The XMPP domain this node serves (required)."],
        [
            "s2s",
            None,
            _configDefault("s2s"),
            "ENDPOINT for incoming s2s streams (STARTTLS).",
        ],
        [
            "s2s-direct-tls",
            None,
            None,
            "ENDPOINT for incoming direct-TLS s2s streams (XEP-0368), "
            "e.g. tcp:5270. Off by default.",
        ],
        [
            "web",
            None,
            _configDefault("web"),
            "ENDPOINT for the web page and the JSON API.",
        ],
        [
            "data-dir",
            None,
            DEFAULT_DATA_DIR,
            "DIR for the database, the generated TLS key pair and the "
            "dialback secret; relative to the current directory.",
        ],
        [
            "database",
            None,
            None,
            "Graph store URL: sqlite:///PATH or postgresql://... "
            "[default: a SQLite file in the data directory]",
        ],
        [
            "tls-cert",
            None,
            None,
            "PEM certificate (chain) for s2s TLS; needs --tls-key. "
            "[default: a self-signed pair made once in the data directory]",
        ],
        [
            "tls-key",
            None,
            None,
            "PEM private key for --tls-cert.",
        ],
        [
            "ca-file",
            None,
            None,
            "PEM file of CA certificates that peers' certificates must "
            "chain to. [default: the system trust store]",
        ],
        [
            "pubsub-host",
            None,
            None,
            "Domain of this node's pubsub service. [default: pubsub.DOMAIN]",
        ],
        [
            "dialback-secret",
            None,
            None,
            "Secret for dialback keys (XEP-0185). [default: a random secret "
            "kept in the data directory]",
        ],
        [
            "max-stanza-size",
            None,
            _configDefault("maxStanzaSize"),
            "BYTES: close an s2s stream that sends a larger stanza.",
        ],
        [
            "max-depth",
            None,
            _configDefault("maxDepth"),
            "Close an s2s stream whose XML nests deeper than this.",
        ],
        [
            "idle-timeout",
            None,
            _configDefault("idleTimeout"),
            "SECONDS without traffic after which an s2s stream is closed.",
        ],
        [
            "connect-timeout",
            None,
            _configDefault("connectTimeout"),
            "SECONDS to wait for an outgoing TCP connection.",
        ],
        [
            "handshake-timeout",
            None,
            _configDefault("handshakeTimeout"),
            "SECONDS for an s2s stream to finish TLS and authentication.",
        ],
        [
            "keepalive-interval",
            None,
            _configDefault("keepaliveInterval"),
            "SECONDS between whitespace keepalives on idle s2s streams.",
        ],
        [
            "iq-timeout",
            None,
            _configDefault("iqTimeout"),
            "SECONDS to wait for the answer to an IQ request.",
        ],
        [
            "queue-limit",
            None,
            _configDefault("queueLimit"),
            "Stanzas queued per remote domain while its stream is not up.",
        ],
        [
            "consent-allowlist",
            None,
            None,
            "FILE of domains (one per line, # comments) that may be named "
            "in our server information without being asked.",
        ],
        [
            "consent-ttl",
            None,
            _configDefault("consentTTL"),
            "SECONDS to trust a peer's answer on whether it may be named.",
        ],
        [
            "publish-delay",
            None,
            _configDefault("publishDelay"),
            "SECONDS to wait after a link change before publishing, so that "
            "a burst of changes makes one item.",
        ],
        [
            "publish-refresh",
            None,
            _configDefault("publishRefresh"),
            "SECONDS between re-checks of the published server information "
            "(an unchanged item is not published again).",
        ],
        [
            "max-subscriptions-per-domain",
            None,
            _configDefault("maxSubscriptionsPerDomain"),
            "Subscriptions one remote domain may hold on one pubsub node.",
        ],
        [
            "config",
            None,
            None,
            "FILE in TOML with the same keys as the long options "
            '(domain = "example.org", route = ["a.example=127.0.0.1:5269"], '
            "no-crawl = true or crawl = false, ...). Command-line options "
            "override the file.",
        ],
    ]

    optFlags = [
        ["no-crawl", None, "Do not crawl the federation."],
        ["no-web", None, "Do not serve the web page and the JSON API."],
        ["no-publish", None, "Do not publish this node's server information."],
        [
            "require-valid-certs",
            None,
            "Refuse s2s peers without a valid certificate (no dialback fallback).",
        ],
        [
            "allow-plaintext",
            None,
            "Allow s2s streams without TLS. For testing only.",
        ],
        ["verbose", "v", "Log every stanza sent and received."],
    ]

    compData = usage.Completions(
        optActions={
            "data-dir": usage.CompleteDirs(),
            "tls-cert": usage.CompleteFiles(),
            "tls-key": usage.CompleteFiles(),
            "ca-file": usage.CompleteFiles(),
            "consent-allowlist": usage.CompleteFiles(),
            "config": usage.CompleteFiles("*.toml"),
        }
    )

    config: Config

    def __init__(self) -> None:
        self._given: set[str] = set()
        super().__init__()
        # dict.__setitem__: these are defaults, not given on the command line.
        for name in _LIST_KEYS:
            dict.__setitem__(self, name, [])
        dict.__setitem__(self, "opt-in", True)

    def __setitem__(self, key: str, value: Any) -> None:
        """
        Record that option C{key} was given on the command line, so that a
        C{--config} file does not override it.  L{usage.Options} stores
        every parsed option through this method.
        """
        self._given.add(key)
        super().__setitem__(key, value)

    def opt_route(self, route: str) -> None:
        """DOMAIN=HOST[:PORT]: static route instead of DNS; see below. Repeatable."""
        self._given.add("route")
        self["route"].append(route)

    def opt_seed(self, domain: str) -> None:
        """DOMAIN to start crawling from. Repeatable."""
        self._given.add("seed")
        self["seed"].append(domain)

    opt_pubsub_admin = _listOption(
        "pubsub-admin",
        "Bare JID that may publish and configure on our pubsub service, "
        "besides DOMAIN itself. Repeatable.",
    )
    opt_contact_abuse = _listOption(
        "contact-abuse", "URI for reporting abuse, e.g. mailto:abuse@DOMAIN. Repeatable."
    )
    opt_contact_admin = _listOption(
        "contact-admin", "URI of the server's administrators. Repeatable."
    )
    opt_contact_feedback = _listOption(
        "contact-feedback", "URI for feedback on the service. Repeatable."
    )
    opt_contact_sales = _listOption("contact-sales", "URI for sales enquiries. Repeatable.")
    opt_contact_security = _listOption(
        "contact-security", "URI for reporting security issues. Repeatable."
    )
    opt_contact_status = _listOption(
        "contact-status", "URI of a page or feed with the service's status. Repeatable."
    )
    opt_contact_support = _listOption("contact-support", "URI for user support. Repeatable.")

    def opt_opt_in(self) -> None:
        """Let others name this domain in their server information (default)."""
        self["opt-in"] = True

    def opt_no_opt_in(self) -> None:
        """Do not let others name this domain in their server information."""
        self["opt-in"] = False

    def postOptions(self) -> None:
        """
        Merge the C{--config} file, if any, under the command line, then
        check everything and build C{config}.

        @raise usage.UsageError: if an option or the file is invalid.
        """
        if self["config"] is not None:
            self._mergeFile(Path(self["config"]))
        self.config = toConfig(self)

    def _mergeFile(self, path: Path) -> None:
        """
        Read the TOML file C{path} and take from it every option not given
        on the command line.

        @raise usage.UsageError: if the file cannot be read, is not TOML,
            or has an unknown key or a value of the wrong type.
        """
        try:
            with path.open("rb") as f:
                table = tomllib.load(f)
        except OSError as e:
            raise usage.UsageError(f"--config: cannot read {str(path)!r}: {e}") from e
        except tomllib.TOMLDecodeError as e:
            raise usage.UsageError(f"--config: {str(path)!r} is not TOML: {e}") from e

        where = f"config file {str(path)!r}"
        fromFile: dict[str, tuple[str, Any]] = {}
        for key, value in table.items():
            option, value = self._fileValue(where, path, key, value)
            if option in fromFile:
                raise usage.UsageError(
                    f"{where}: keys {fromFile[option][0]!r} and {key!r} set the same option"
                )
            fromFile[option] = (key, value)
        for option, (_key, value) in fromFile.items():
            if option not in self._given:
                dict.__setitem__(self, option, value)

    def _fileValue(self, where: str, path: Path, key: str, value: Any) -> tuple[str, Any]:
        """
        Map one key of a C{--config} file to the option it sets.

        @param where: names the file in error messages.
        @param path: the file, to resolve relative paths against.
        @param key: the TOML key.
        @param value: its TOML value.
        @return: the option name and the value to store under it.
        @raise usage.UsageError: for unknown keys and wrongly typed values.
        """

        def wrongType(expected: str) -> usage.UsageError:
            return usage.UsageError(f"{where}: {key!r} must be {expected}, not {value!r}")

        if key == "web" and isinstance(value, bool):
            # web = false is the same as no-web = true.
            return "no-web", not value
        if key in _STRING_PARAMETERS:
            if not isinstance(value, str):
                raise wrongType("a string")
            return key, value
        if key in _PATH_PARAMETERS:
            if not isinstance(value, str):
                raise wrongType("a string")
            return key, str(path.parent / Path(value).expanduser())
        if key in _INT_PARAMETERS | _FLOAT_PARAMETERS:
            # bool is an int: reject it explicitly.
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise wrongType("a number")
            return key, value
        if key in _FLAGS:
            if not isinstance(value, bool):
                raise wrongType("true or false")
            return key, int(value)
        if key in _ROLE_KEYS:
            if not isinstance(value, bool):
                raise wrongType("true or false")
            option, inverted = _ROLE_KEYS[key]
            return option, value != inverted
        if key in _LIST_KEYS:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise wrongType("a list of strings")
            return key, list(value)

        known = sorted(
            _STRING_PARAMETERS
            | _PATH_PARAMETERS
            | _INT_PARAMETERS
            | _FLOAT_PARAMETERS
            | _FLAGS
            | _ROLE_KEYS.keys()
            | _LIST_KEYS
        )
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise usage.UsageError(f"{where}: unknown key {key!r}{hint}")


def _checkDomain(option: str, value: str) -> str:
    """
    @return: C{value} as a normalised domain.
    @raise usage.UsageError: if it is not a bare domain name.
    """
    try:
        return normalizeDomain(value)
    except ValueError as e:
        raise usage.UsageError(f"--{option}: {e}") from None


def _checkEndpoint(option: str, description: str) -> str:
    """
    Parse C{description} as a server endpoint, without listening.

    @return: C{description}, unchanged.
    @raise usage.UsageError: if it does not parse.
    """
    try:
        serverFromString(MemoryReactor(), description)
    except Exception as e:
        # Endpoint parsers (including third-party plugins) raise anything
        # from ValueError to KeyError or TypeError.
        raise usage.UsageError(
            f"--{option}: {description!r} is not a valid endpoint: {type(e).__name__}: {e}"
        ) from None
    return description


def _checkDatabase(url: str) -> str:
    """
    @return: C{url} unchanged.
    @raise usage.UsageError: unless it is C{sqlite:///PATH} or a
        C{postgresql://} URL.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _DATABASE_SCHEMES:
        raise usage.UsageError(f"--database: {url!r} is not a sqlite:///PATH or postgresql:// URL")
    if scheme.lower() == "sqlite":
        netloc, slash, dbPath = rest.partition("/")
        if netloc or not slash or not dbPath:
            raise usage.UsageError(
                f"--database: {url!r}: write a SQLite database as sqlite:///PATH"
            )
    return url


def _checkFile(option: str, value: str) -> Path:
    """
    @return: C{value} as an absolute path.
    @raise usage.UsageError: if it is not an existing file.
    """
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        raise usage.UsageError(f"--{option}: no such file: {str(path)!r}")
    return path


def _checkURI(option: str, value: str) -> str:
    """
    @return: C{value} unchanged.
    @raise usage.UsageError: unless it is a URI with a scheme
        (C{mailto:...}, C{https://...}) and no spaces or control characters.
    """
    if any(c.isspace() or not c.isprintable() for c in value):
        raise usage.UsageError(f"--{option}: {value!r} contains spaces or control characters")
    if not _URI.fullmatch(value):
        raise usage.UsageError(
            f"--{option}: {value!r} is not a URI with a scheme, such as "
            "mailto:abuse@example.org, xmpp:admin@example.org or "
            "https://example.org/contact"
        )
    return value


def _checkBareJID(option: str, value: str) -> str:
    """
    @return: C{value} as a normalised bare JID (C{user@domain} or C{domain}).
    @raise usage.UsageError: if it is not a valid bare JID.
    """
    bare, slash, _ = value.partition("/")
    if slash:
        raise usage.UsageError(
            f"--{option}: {value!r} has a resource; give a bare JID (user@domain or domain)"
        )
    user, at, domain = bare.rpartition("@")
    if at and not user:
        raise usage.UsageError(f"--{option}: {value!r} has an empty user part")
    try:
        host = normalizeDomain(domain)
        return JID(tuple=(user or None, host, None)).userhost()
    except (ValueError, InvalidFormat) as e:
        raise usage.UsageError(f"--{option}: {value!r} is not a valid JID: {e}") from None


def _checkAllowlist(option: str, value: str) -> Path:
    """
    @return: C{value} as an absolute path.
    @raise usage.UsageError: if it is not a readable allowlist file (see
        L{loadAllowlist}).
    """
    path = _checkFile(option, value)
    try:
        loadAllowlist(path)
    except UnicodeDecodeError as e:
        raise usage.UsageError(f"--{option}: {str(path)!r} is not UTF-8 text: {e}") from None
    except ValueError as e:
        raise usage.UsageError(f"--{option}: {e}") from None
    except OSError as e:
        raise usage.UsageError(
            f"--{option}: cannot read {str(path)!r}: {e.strerror or e}"
        ) from None
    return path


def _checkNumber(option: str, value: object, convert: Callable[[str], int | float]) -> Any:
    """
    @return: C{value} converted by C{convert} (C{int} or C{float}).
    @raise usage.UsageError: unless it is a finite number greater than 0.
    """
    kind = "an integer" if convert is int else "a number"
    try:
        if isinstance(value, float) and convert is int:
            raise ValueError(value)
        number = convert(str(value))
    except ValueError:
        raise usage.UsageError(
            f"--{option}: expected {kind} greater than 0, got {value!r}"
        ) from None
    if not (math.isfinite(number) and number > 0):
        raise usage.UsageError(f"--{option}: expected {kind} greater than 0, got {value!r}")
    return number


def toConfig(options: Options) -> Config:
    """
    Check parsed options and build the node's configuration.

    @param options: options after parsing (and merging a C{--config} file).
    @return: the configuration; paths in it are absolute.
    @raise usage.UsageError: with a message naming the bad option.
    """
    if not options["domain"]:
        raise usage.UsageError("--domain is required")
    domain = _checkDomain("domain", options["domain"])

    pubsubHost = ""
    if options["pubsub-host"]:
        pubsubHost = _checkDomain("pubsub-host", options["pubsub-host"])
        if pubsubHost == domain:
            raise usage.UsageError("--pubsub-host must differ from --domain")

    s2s = _checkEndpoint("s2s", options["s2s"])
    s2sDirectTLS = None
    if options["s2s-direct-tls"]:
        s2sDirectTLS = _checkEndpoint("s2s-direct-tls", options["s2s-direct-tls"])
    web = _checkEndpoint("web", options["web"])

    dataDir = Path(options["data-dir"]).expanduser().absolute()
    if dataDir.exists() and not dataDir.is_dir():
        raise usage.UsageError(f"--data-dir: {str(dataDir)!r} is not a directory")

    database = None
    if options["database"]:
        database = _checkDatabase(options["database"])

    if bool(options["tls-cert"]) != bool(options["tls-key"]):
        raise usage.UsageError("--tls-cert and --tls-key go together: give both or neither")
    tlsCert = tlsKey = caFile = None
    if options["tls-cert"]:
        tlsCert = _checkFile("tls-cert", options["tls-cert"])
        tlsKey = _checkFile("tls-key", options["tls-key"])
    if options["ca-file"]:
        caFile = _checkFile("ca-file", options["ca-file"])

    routes: list[Route] = []
    for text in options["route"]:
        try:
            route = parseRoute(text)
        except ValueError as e:
            raise usage.UsageError(f"--route: {e}") from None
        if any(r.pattern == route.pattern for r in routes):
            raise usage.UsageError(f"--route: {route.pattern!r} is routed twice")
        routes.append(route)

    seeds: list[str] = []
    for text in options["seed"]:
        seed = _checkDomain("seed", text)
        if seed not in seeds:
            seeds.append(seed)

    if options["dialback-secret"] is not None and not options["dialback-secret"]:
        raise usage.UsageError("--dialback-secret must not be empty")

    contacts: list[tuple[str, tuple[str, ...]]] = []
    for option, var in _CONTACT_OPTIONS.items():
        uris: list[str] = []
        for text in options[option]:
            uri = _checkURI(option, text)
            if uri not in uris:
                uris.append(uri)
        if uris:
            contacts.append((var, tuple(uris)))
    contacts.sort()

    pubsubAdmins: list[str] = []
    for text in options["pubsub-admin"]:
        admin = _checkBareJID("pubsub-admin", text)
        if admin not in pubsubAdmins:
            pubsubAdmins.append(admin)

    consentAllowlist = None
    if options["consent-allowlist"]:
        consentAllowlist = _checkAllowlist("consent-allowlist", options["consent-allowlist"])

    return Config(
        domain=domain,
        dataDir=dataDir,
        s2s=s2s,
        s2sDirectTLS=s2sDirectTLS,
        web=web,
        database=database,
        tlsCert=tlsCert,
        tlsKey=tlsKey,
        caFile=caFile,
        pubsubHost=pubsubHost,
        routes=tuple(routes),
        seeds=tuple(seeds),
        crawl=not options["no-crawl"],
        enableWeb=not options["no-web"],
        publish=not options["no-publish"],
        requireValidCerts=bool(options["require-valid-certs"]),
        requireTLS=not options["allow-plaintext"],
        optIn=bool(options["opt-in"]),
        dialbackSecret=options["dialback-secret"],
        maxStanzaSize=_checkNumber("max-stanza-size", options["max-stanza-size"], int),
        maxDepth=_checkNumber("max-depth", options["max-depth"], int),
        connectTimeout=_checkNumber("connect-timeout", options["connect-timeout"], float),
        handshakeTimeout=_checkNumber("handshake-timeout", options["handshake-timeout"], float),
        idleTimeout=_checkNumber("idle-timeout", options["idle-timeout"], float),
        keepaliveInterval=_checkNumber("keepalive-interval", options["keepalive-interval"], float),
        iqTimeout=_checkNumber("iq-timeout", options["iq-timeout"], float),
        queueLimit=_checkNumber("queue-limit", options["queue-limit"], int),
        logTraffic=bool(options["verbose"]),
        contacts=tuple(contacts),
        pubsubAdmins=tuple(pubsubAdmins),
        consentAllowlist=consentAllowlist,
        consentTTL=_checkNumber("consent-ttl", options["consent-ttl"], float),
        publishDelay=_checkNumber("publish-delay", options["publish-delay"], float),
        publishRefresh=_checkNumber("publish-refresh", options["publish-refresh"], float),
        maxSubscriptionsPerDomain=_checkNumber(
            "max-subscriptions-per-domain",
            options["max-subscriptions-per-domain"],
            int,
        ),
    )


def tuneGarbageCollector() -> None:
    """
    Make the garbage collector fit a node: parsing a large stanza builds a
    tree of elements that point to their parents (cycles), and with the
    default thresholds the collector rescans them and every start-up
    object several times per stanza; that took about two thirds of the CPU
    time spent receiving a 1 MB XEP-0485 item (bench/parse_large_stanza.py).
    Start-up objects are frozen out of collection and young objects are
    collected every 50,000 allocations instead of 700.

    Process-wide, so only C{twistd xmppnetgraph} does this; embedders
    decide for their own process.
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)


class CommandLineService(MultiService):
    """
    The parent of the node's services under C{twistd}: a port that cannot
    be opened ends the program with a one-line message, not a traceback.
    """

    def privilegedStartService(self) -> None:
        """
        Open the listening ports.

        @raise SystemExit: with the reason, if one cannot be opened.
        """
        from xmppnetgraph.listener import ListenError

        try:
            super().privilegedStartService()
        except ListenError as e:
            raise SystemExit(f"xmppnetgraph: {e}") from None


def makeService(options: Options) -> IService:
    """
    Build the node's service tree for C{twistd}.

    @param options: parsed options.
    @return: a L{CommandLineService} holding the service from
        L{xmppnetgraph.node.buildService}, running on the global reactor.
    @raise SystemExit: with a clear message when the data directory or
        the TLS files cannot be used.
    """
    from twisted.internet import reactor

    from xmppnetgraph.certs import TLSConfigError
    from xmppnetgraph.datadir import DataDirError
    from xmppnetgraph.node import buildService

    try:
        node = buildService(options.config, reactor)
    except (DataDirError, TLSConfigError) as e:
        raise SystemExit(f"xmppnetgraph: {e}") from None
    top = CommandLineService()
    node.setServiceParent(top)
    tuneGarbageCollector()
    return top
