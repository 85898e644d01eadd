# -*- test-case-name: tests.test_tap -*-
"""
The node's configuration: one frozen value that L{xmppnetgraph.tap.Options}
(or an embedder) builds and L{xmppnetgraph.node.buildService} consumes.

Every setting is declared once, here: each field of L{Config} carries in
its attrs metadata a L{Setting}, which names the command-line L{Option}
(kind, help text, default, C{--config} aliases) and the conversion and
checks of its value. L{xmppnetgraph.tap} derives the command line, the
C{--config} keys and README's table from these declarations, and the
checks run in L{Config} itself, so that an embedder who builds a L{Config}
gets the same L{ValueError}s, naming the same options, as the command line.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import attrs
from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor

from xmppnetgraph.model import NamePolicy
from xmppnetgraph.names import (
    normalizeBareJID,
    normalizeDomain,
    normalizeHost,
    normalizeLocalDomain,
)
from xmppnetgraph.serverinfo.consent import loadAllowlist

__all__ = [
    "CONTACT_FIELDS",
    "DEFAULT_DATA_DIR",
    "DEFAULT_S2S_PORT",
    "Config",
    "Option",
    "Route",
    "Setting",
    "normalizeDomain",
    "parseRoute",
    "settings",
]

DEFAULT_S2S_PORT = 5269
DEFAULT_DATA_DIR = "xmppnetgraph-data"

#: The XEP-0157 contact address fields, each set by C{--contact-NAME}.
CONTACT_FIELDS = (
    "abuse-addresses",
    "admin-addresses",
    "feedback-addresses",
    "sales-addresses",
    "security-addresses",
    "status-addresses",
    "support-addresses",
)

# Twisted's endpoint parser and memory reactor are not annotated: typed
# names, so that strict mypy checks the call.
_serverFromString: Callable[[object, str], object] = serverFromString
_memoryReactor: Callable[[], object] = MemoryReactor

_DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres"})

# A URI scheme (RFC 3986, section 3.1), its colon and something after it.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:.+", re.DOTALL)

OptionKind = Literal["string", "path", "int", "float", "flag", "switch", "list"]


@attrs.frozen
class Option:
    """
    How a setting is given on the command line and in a C{--config} file.

    @ivar name: the long option without C{--}; also its C{--config} key.
    @ivar kind: how the option takes its value:
          - C{string}, C{path}, C{int}, C{float}: a parameter. In a
            C{--config} file, a C{path} relative to the file's directory,
            and a TOML number or a string for C{int} and C{float}.
          - C{flag}: sets its boolean field to the opposite of the field's
            default (C{--no-crawl} sets C{crawl} to C{False}).
          - C{switch}: C{--NAME} sets its boolean field, C{--no-NAME}
            clears it; the last one given wins.
          - C{list}: repeatable; a list of strings (or one string) in a
            C{--config} file.
    @ivar help: the help text (plain text, also README's "meaning").
    @ivar short: a one-letter synonym, or L{None}.
    @ivar default: the command-line value when the option is not given, for
        a field without a default of its own (the data directory).
    @ivar defaultText: what happens when the option is not given, in words,
        where that is not a value (the node picks something).
    @ivar alias: for a C{flag}, a C{--config} key that holds the field's own
        value (C{crawl = false} is C{no-crawl = true}).
    @ivar key: for one of several options setting one field, what the field
        files its values under (the XEP-0157 field of C{--contact-abuse}).
    """

    name: str
    kind: OptionKind
    help: str
    short: str | None = None
    default: str | None = None
    defaultText: str | None = None
    alias: str | None = None
    key: str | None = None

    @property
    def longForm(self) -> str:
        """
        The option as written on the command line (C{--name}), as error
        messages name it.
        """
        return "--" + self.name


# A conversion: (option as written, given value) -> stored value.
Convert = Callable[[str, Any], Any]
# A check of the converted value: (config, option as written, value).
Check = Callable[["Config", str, Any], None]


@attrs.frozen
class Setting:
    """
    The declaration of one field of L{Config}, kept in its metadata.

    @ivar options: the options that set the field (one, except for
        C{contacts}, which has one per XEP-0157 field).
    @ivar convert: turns what the command line, a file or an embedder gives
        into the stored value; raises L{ValueError} naming the option.
    @ivar check: checks the stored value once all fields are set (so it
        can look at other fields); raises L{ValueError} naming the option.
    """

    options: tuple[Option, ...]
    convert: Convert | None = None
    check: Check | None = None


_SETTING = "xmppnetgraph.setting"


def _declare(
    *options: Option, convert: Convert | None = None, check: Check | None = None
) -> dict[str, Setting]:
    """
    @return: the attrs metadata of a field set by C{options}.
    """
    return {_SETTING: Setting(options, convert, check)}


def _attachSettings(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """
    An attrs field transformer: give every field the converter and the
    validator its L{Setting} declares, told the option to name in errors.
    """
    result = []
    for field in fields:
        setting = field.metadata.get(_SETTING)
        if setting is None:
            result.append(field)
            continue
        option = setting.options[0].longForm
        changes: dict[str, Any] = {}
        if setting.convert is not None:
            changes["converter"] = functools.partial(setting.convert, option)
        if setting.check is not None:
            changes["validator"] = _validator(setting.check, option)
        result.append(field.evolve(**changes))
    return result


def _validator(check: Check, option: str) -> Callable[[Config, attrs.Attribute[Any], Any], None]:
    """
    @return: an attrs validator calling C{check} with C{option}.
    """

    def validate(instance: Config, attribute: attrs.Attribute[Any], value: Any) -> None:
        check(instance, option, value)

    return validate


# Conversions and checks.  Each is told the option as written ("--domain").


def _text(option: str, value: object) -> str:
    """
    @return: C{value}, a string.
    @raise ValueError: if it is not one.
    """
    if not isinstance(value, str):
        raise ValueError(f"{option}: expected a string, got {value!r}")
    return value


def _domain(option: str, value: object, normalize: Callable[[str], str] = normalizeDomain) -> str:
    """
    @return: C{value} as a normalised domain (L{normalizeDomain}, or
        C{normalize}).
    @raise ValueError: if it is missing or not a bare domain name.
    """
    if not value:
        raise ValueError(f"{option} is required")
    try:
        return normalize(_text(option, value))
    except ValueError as e:
        raise ValueError(f"{option}: {e}") from None


def _localDomain(option: str, value: object) -> str:
    """
    @return: C{value} as a domain this node can serve (L{normalizeLocalDomain}).
    """
    return _domain(option, value, normalizeLocalDomain)


def _optionalLocalDomain(option: str, value: object) -> str:
    """
    @return: C{value} as a domain this node can serve, or C{""} for none.
    """
    return _localDomain(option, value) if value else ""


def _differsFromDomain(config: Config, option: str, value: str) -> None:
    """
    @raise ValueError: if C{value} is the node's own domain.
    """
    if value == config.domain:
        raise ValueError(f"{option} must differ from --domain")


def _endpoint(option: str, value: object) -> str:
    """
    Parse C{value} as a server endpoint, without listening.

    @return: C{value}, unchanged.
    @raise ValueError: if it does not parse.
    """
    description = _text(option, value)
    try:
        _serverFromString(_memoryReactor(), description)
    except Exception as e:
        # Endpoint parsers (including third-party plugins) raise anything
        # from ValueError to KeyError or TypeError.
        raise ValueError(
            f"{option}: {description!r} is not a valid endpoint: {type(e).__name__}: {e}"
        ) from None
    return description


def _optionalEndpoint(option: str, value: object) -> str | None:
    """
    @return: C{value} as an endpoint, or L{None} for none (C{""} included).
    """
    return _endpoint(option, value) if value else None


def _database(option: str, value: object) -> str | None:
    """
    @return: C{value} unchanged, or L{None} for none.
    @raise ValueError: unless it is C{sqlite:///PATH} or a C{postgresql://}
        URL.
    """
    if not value:
        return None
    url = _text(option, value)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _DATABASE_SCHEMES:
        raise ValueError(f"{option}: {url!r} is not a sqlite:///PATH or postgresql:// URL")
    if scheme.lower() == "sqlite":
        netloc, slash, dbPath = rest.partition("/")
        if netloc or not slash or not dbPath:
            raise ValueError(f"{option}: {url!r}: write a SQLite database as sqlite:///PATH")
    return url


def _path(option: str, value: object) -> Path:
    """
    @return: C{value} as an absolute path (relative to the current
        directory, C{~} expanded).
    """
    if not isinstance(value, (str, Path)):
        raise ValueError(f"{option}: expected a path, got {value!r}")
    return Path(value).expanduser().absolute()


def _optionalPath(option: str, value: object) -> Path | None:
    """
    @return: C{value} as an absolute path, or L{None} for none.
    """
    return _path(option, value) if value else None


def _directory(config: Config, option: str, value: Path) -> None:
    """
    @raise ValueError: if C{value} exists but is not a directory.
    """
    if value.exists() and not value.is_dir():
        raise ValueError(f"{option}: {str(value)!r} is not a directory")


def _file(config: Config, option: str, value: Path | None) -> None:
    """
    @raise ValueError: if C{value} is given but is not an existing file.
    """
    if value is not None and not value.is_file():
        raise ValueError(f"{option}: no such file: {str(value)!r}")


def _certificate(config: Config, option: str, value: Path | None) -> None:
    """
    @raise ValueError: unless the certificate and the key are given
        together, and the certificate is a file.
    """
    if (config.tlsCert is None) != (config.tlsKey is None):
        raise ValueError("--tls-cert and --tls-key go together: give both or neither")
    _file(config, option, value)


def _listFile(load: Callable[[Path], object]) -> Check:
    """
    @param load: reads a domain list file, raising L{ValueError} (naming
        the file and line) for a bad entry.
    @return: the check that a list file option is L{None} or a readable
        file that C{load} accepts.
    """

    def check(config: Config, option: str, value: Path | None) -> None:
        if value is None:
            return
        _file(config, option, value)
        try:
            load(value)
        except UnicodeDecodeError as e:
            raise ValueError(f"{option}: {str(value)!r} is not UTF-8 text: {e}") from None
        except ValueError as e:
            raise ValueError(f"{option}: {e}") from None
        except OSError as e:
            raise ValueError(f"{option}: cannot read {str(value)!r}: {e.strerror or e}") from None

    return check


def _loadExclusions(path: Path) -> object:
    from xmppnetgraph.exclusions import Exclusions

    return Exclusions.load(path)


def _secret(option: str, value: object) -> str | None:
    """
    @return: C{value}, or L{None} for none.
    @raise ValueError: if it is empty.
    """
    if value is None:
        return None
    secret = _text(option, value)
    if not secret:
        raise ValueError(f"{option} must not be empty")
    return secret


def _boolean(option: str, value: object) -> bool:
    """
    @return: C{value}, C{True} or C{False}.
    @raise ValueError: if it is something else.
    """
    if not isinstance(value, bool):
        raise ValueError(f"{option}: expected True or False, got {value!r}")
    return value


def _number(option: str, value: object, kind: type[int] | type[float]) -> Any:
    """
    @return: C{value} (a number, or a string of one) as C{kind}.
    @raise ValueError: unless it is a finite number greater than 0 (and
        whole, for C{int}).
    """
    name = "an integer" if kind is int else "a number"
    error = ValueError(f"{option}: expected {name} greater than 0, got {value!r}")
    if isinstance(value, bool) or (kind is int and isinstance(value, float)):
        raise error
    if not isinstance(value, (int, float, str)):
        raise error
    try:
        number = kind(value)
    except ValueError:
        raise error from None
    if not (math.isfinite(number) and number > 0):
        raise error
    return number


def _positiveInt(option: str, value: object) -> int:
    """
    @return: C{value} as an integer greater than 0.
    """
    number: int = _number(option, value, int)
    return number


def _namePolicy(option: str, value: object) -> NamePolicy:
    """
    @return: C{value}, C{"consented"} or C{"reported"}.
    """
    if value == "consented" or value == "reported":
        return value
    raise ValueError(f"{option}: expected 'consented' or 'reported', got {value!r}")


def _positiveFloat(option: str, value: object) -> float:
    """
    @return: C{value} as a finite float greater than 0.
    """
    number: float = _number(option, value, float)
    return number


def _strings(option: str, value: object) -> list[str]:
    """
    @return: C{value}, an iterable of strings (not one string), as a list.
    """
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{option}: expected a list of strings, got {value!r}")
    return [_text(option, item) for item in value]


def _domains(option: str, value: object) -> tuple[str, ...]:
    """
    @return: the normalised domains of C{value}, in order, each once.
    """
    return tuple(dict.fromkeys(_domain(option, text) for text in _strings(option, value)))


def _networks(option: str, value: object) -> tuple[str, ...]:
    """
    @return: the IP networks of C{value} (an address is a network of one),
        normalised, in order, each once.
    """
    networks: list[str] = []
    for text in _strings(option, value):
        try:
            networks.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"{option}: {text!r} is not an IP address or network (127.0.0.1, 10.0.0.0/8, ::1)"
            ) from None
    return tuple(dict.fromkeys(networks))


def _bareJIDs(option: str, value: object) -> tuple[str, ...]:
    """
    @return: the normalised bare JIDs of C{value}, in order, each once.
    """
    jids: list[str] = []
    for text in _strings(option, value):
        try:
            jids.append(normalizeBareJID(text))
        except ValueError as e:
            raise ValueError(f"{option}: {e}") from None
    return tuple(dict.fromkeys(jids))


def _routes(option: str, value: object) -> tuple[Route, ...]:
    """
    @param value: routes, as L{Route}s or as C{DOMAIN=HOST[:PORT]} text.
    @return: the routes, in order.
    @raise ValueError: if one is malformed or a pattern is routed twice.
    """
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{option}: expected a list of routes, got {value!r}")
    routes: dict[str, Route] = {}
    for item in value:
        try:
            route = item if isinstance(item, Route) else parseRoute(_text(option, item))
        except ValueError as e:
            raise ValueError(f"{option}: {e}") from None
        if route.pattern in routes:
            raise ValueError(f"{option}: {route.pattern!r} is routed twice")
        routes[route.pattern] = route
    return tuple(routes.values())


def _uri(option: str, value: object) -> str:
    """
    @return: C{value} unchanged.
    @raise ValueError: unless it is a URI with a scheme (C{mailto:...},
        C{https://...}) and no spaces or control characters.
    """
    text = _text(option, value)
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError(f"{option}: {text!r} contains spaces or control characters")
    if not _URI.fullmatch(text):
        raise ValueError(
            f"{option}: {text!r} is not a URI with a scheme, such as "
            "mailto:abuse@example.org, xmpp:admin@example.org or "
            "https://example.org/contact"
        )
    return text


def _contacts(option: str, value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """
    @param value: C{(field, URIs)} pairs, C{field} one of L{CONTACT_FIELDS}.
    @return: the pairs sorted by field, without fields that have no URIs;
        each field's URIs in order, each once.
    @raise ValueError: for an unknown field or a URI that is not one; the
        message names the field's option.
    """
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{option}: expected (field, URIs) pairs, got {value!r}")
    contacts: dict[str, dict[str, None]] = {}
    for pair in value:
        try:
            var, uris = pair
        except (TypeError, ValueError):
            raise ValueError(f"{option}: expected (field, URIs) pairs, got {pair!r}") from None
        if var not in CONTACT_FIELDS:
            raise ValueError(
                f"{option}: {var!r} is not a XEP-0157 field ({', '.join(CONTACT_FIELDS)})"
            )
        contactOption = "--" + _contactOptionName(var)
        contacts.setdefault(var, {}).update(
            dict.fromkeys(_uri(contactOption, uri) for uri in _strings(contactOption, uris))
        )
    return tuple(sorted((var, tuple(uris)) for var, uris in contacts.items() if uris))


def _parsePort(text: object) -> int:
    """
    @return: C{text}, a TCP port number (C{int} or decimal digits).
    @raise ValueError: if it is not a number from 1 to 65535.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        port = text
    elif isinstance(text, str) and text.isascii() and text.isdigit():
        port = int(text)
    else:
        port = 0
    if not 0 < port < 65536:
        raise ValueError(f"{text!r} is not a port number (1-65535)")
    return port


def _routePattern(text: str) -> str:
    """
    @return: C{text}, a domain or C{*.suffix}, normalised.
    """
    if text.startswith("*."):
        return "*." + normalizeDomain(text[2:])
    return normalizeDomain(text)


@attrs.frozen
class Route:
    """
    A static s2s route that overrides DNS.

    @ivar pattern: a domain, or C{*.suffix} for every subdomain of C{suffix}
        (normalised).
    @ivar host: host name or address to connect to (normalised).
    @ivar port: TCP port to connect to.
    """

    pattern: str = attrs.field(converter=_routePattern)
    host: str = attrs.field(converter=normalizeHost)
    port: int = attrs.field(converter=_parsePort)

    def matches(self, domain: str) -> bool:
        """
        @return: whether this route applies to C{domain}.
        """
        if self.pattern.startswith("*."):
            return domain.endswith(self.pattern[1:])
        return domain == self.pattern


def parseRoute(text: str) -> Route:
    """
    Parse a static route C{DOMAIN=HOST[:PORT]}.

    C{DOMAIN} is a domain or C{*.suffix}; C{HOST} is a domain name, an IPv4
    address or an IPv6 address in brackets (C{[::1]:5269}); C{PORT}
    defaults to 5269.

    @param text: the route as written on the command line or in a file.
    @return: the parsed route, with normalised names.
    @raise ValueError: if C{text} is malformed; the message says why.
    """
    pattern, sep, target = text.partition("=")
    pattern, target = pattern.strip(), target.strip()
    if not sep or not pattern or not target:
        raise ValueError(f"{text!r} is not of the form DOMAIN=HOST:PORT")
    pattern = _routePattern(pattern)

    if target.startswith("["):
        close = target.find("]")
        if close == -1:
            raise ValueError(f"{target!r}: missing ']' after the IPv6 address")
        hostText, rest = target[1:close], target[close + 1 :]
        try:
            host = str(ipaddress.IPv6Address(hostText))
        except ValueError:
            raise ValueError(f"{hostText!r} is not an IPv6 address") from None
        if rest and not rest.startswith(":"):
            raise ValueError(f"{target!r}: expected ':PORT' after ']'")
        portText = rest[1:] if rest else None
    else:
        if target.count(":") > 1:
            raise ValueError(f"{target!r}: write an IPv6 address in brackets, as in [::1]:5269")
        hostText, colon, rest = target.partition(":")
        host = normalizeHost(hostText)
        portText = rest if colon else None

    port = DEFAULT_S2S_PORT if portText is None else _parsePort(portText)
    return Route(pattern=pattern, host=host, port=port)


def _contactOptionName(var: str) -> str:
    """
    @return: the name of the option for XEP-0157 field C{var}:
        C{contact-NAME} for C{NAME-addresses}.
    """
    return "contact-" + var.removesuffix("-addresses")


def _contactOption(var: str, help: str) -> Option:
    """
    @return: the repeatable option for XEP-0157 field C{var}.
    """
    return Option(_contactOptionName(var), "list", help, key=var)


@attrs.frozen(field_transformer=_attachSettings)
class Config:
    """
    Everything C{twistd xmppnetgraph} can be told.

    Durations are seconds; sizes are bytes. Paths are made absolute (against
    the current directory) and names normalised; a value that cannot be used
    raises L{ValueError} with a message that names its command-line option.
    """

    domain: str = attrs.field(
        metadata=_declare(
            Option("domain", "string", "The XMPP domain this node serves (required)."),
            convert=_localDomain,
        )
    )
    dataDir: Path = attrs.field(
        metadata=_declare(
            Option(
                "data-dir",
                "path",
                "DIR for the database, the generated TLS key pair and the dialback secret; "
                "relative to the current directory.",
                default=DEFAULT_DATA_DIR,
            ),
            convert=_path,
            check=_directory,
        )
    )
    s2s: str = attrs.field(
        default="tcp:5269",
        metadata=_declare(
            Option("s2s", "string", "ENDPOINT for incoming s2s streams (STARTTLS)."),
            convert=_endpoint,
        ),
    )
    s2sDirectTLS: str | None = attrs.field(
        default=None,
        metadata=_declare(
            Option(
                "s2s-direct-tls",
                "string",
                "ENDPOINT for incoming direct-TLS s2s streams (XEP-0368), e.g. tcp:5270.",
                defaultText="off",
            ),
            convert=_optionalEndpoint,
        ),
    )
    web: str = attrs.field(
        default="tcp:8080:interface=127.0.0.1",
        metadata=_declare(
            Option("web", "string", "ENDPOINT for the web page and the JSON API."),
            convert=_endpoint,
        ),
    )
    database: str | None = attrs.field(
        default=None,
        metadata=_declare(
            Option(
                "database",
                "string",
                "Graph store URL: sqlite:///PATH (relative to the data directory; "
                "sqlite:////PATH for an absolute path) or postgresql://USER:PASSWORD@HOST/DB. "
                "It holds the pub-sub state (and later the graph).",
                defaultText="a SQLite file in the data directory",
            ),
            convert=_database,
        ),
    )
    tlsCert: Path | None = attrs.field(
        default=None,
        metadata=_declare(
            Option(
                "tls-cert",
                "path",
                "PEM certificate (chain) for s2s TLS; needs --tls-key.",
                defaultText="a self-signed pair made once in the data directory",
            ),
            convert=_optionalPath,
            check=_certificate,
        ),
    )
    tlsKey: Path | None = attrs.field(
        default=None,
        metadata=_declare(
            Option("tls-key", "path", "PEM private key for --tls-cert."),
            convert=_optionalPath,
            check=_file,
        ),
    )
    caFile: Path | None = attrs.field(
        default=None,
        metadata=_declare(
            Option(
                "ca-file",
                "path",
                "PEM file of CA certificates that peers' certificates must chain to.",
                defaultText="the system trust store",
            ),
            convert=_optionalPath,
            check=_file,
        ),
    )
    pubsubHost: str = attrs.field(
        default="",
        metadata=_declare(
            Option(
                "pubsub-host",
                "string",
                "Domain of this node's pub-sub service, served on the same s2s listener.",
                defaultText="pubsub.DOMAIN",
            ),
            convert=_optionalLocalDomain,
            check=_differsFromDomain,
        ),
    )
    routes: tuple[Route, ...] = attrs.field(
        default=(),
        metadata=_declare(
            Option(
                "route",
                "list",
                "DOMAIN=HOST[:PORT]: static route that overrides DNS. DOMAIN may be *.suffix "
                "for all its subdomains; HOST is a name, an IPv4 address or an IPv6 address "
                "in brackets ([::1]:5269); PORT defaults to 5269.",
            ),
            convert=_routes,
        ),
    )
    seeds: tuple[str, ...] = attrs.field(
        default=(),
        metadata=_declare(
            Option(
                "seed",
                "list",
                "DOMAIN to start crawling from (besides this node's own peers and the domains "
                "already in the store).",
            ),
            convert=_domains,
        ),
    )
    crawl: bool = attrs.field(
        default=True,
        metadata=_declare(
            Option(
                "no-crawl",
                "flag",
                "Do not crawl the federation (the web still serves the stored graph).",
                alias="crawl",
            ),
            convert=_boolean,
        ),
    )
    namePolicy: NamePolicy = attrs.field(
        default="consented",
        metadata=_declare(
            Option(
                "name-policy",
                "string",
                "Which remote domains the graph names: 'consented' (only those whose own "
                "disco#info lists urn:xmpp:serverinfo:0 by our check; others stay anonymous) or "
                "'reported' (every name a publisher reports).",
            ),
            convert=_namePolicy,
        ),
    )
    excludeFile: Path | None = attrs.field(
        default=None,
        metadata=_declare(
            Option(
                "exclude",
                "path",
                "FILE of domains to leave out of the graph and never crawl, one per line "
                "(*.suffix for the suffix and all its subdomains; # starts a comment).",
            ),
            convert=_optionalPath,
            check=_listFile(_loadExclusions),
        ),
    )
    staleAfter: float = attrs.field(
        default=6 * 3600.0,
        metadata=_declare(
            Option(
                "stale-after",
                "float",
                "SECONDS after which a domain not seen (not answering, not reporting, not named "
                "in a fresh report) is stale and leaves the current graph; it stays in history.",
            ),
            convert=_positiveFloat,
        ),
    )
    allowPrivateAddresses: bool = attrs.field(
        default=False,
        metadata=_declare(
            Option(
                "allow-private-addresses",
                "flag",
                "Let outgoing s2s connections (crawling, consent checks, publishing) go to "
                "loopback, private, link-local, multicast and other non-public addresses that "
                "DNS points to (static routes are always allowed).",
            ),
            convert=_boolean,
        ),
    )
    crawlConcurrency: int = attrs.field(
        default=16,
        metadata=_declare(
            Option(
                "crawl-concurrency",
                "int",
                "Most crawl requests in flight at once (one per domain at most).",
            ),
            convert=_positiveInt,
        ),
    )
    crawlPoll: float = attrs.field(
        default=300.0,
        metadata=_declare(
            Option(
                "crawl-poll",
                "float",
                "SECONDS between fetches of a publisher whose node we could not subscribe to.",
            ),
            convert=_positiveFloat,
        ),
    )
    crawlRefresh: float = attrs.field(
        default=3600.0,
        metadata=_declare(
            Option(
                "crawl-refresh",
                "float",
                "SECONDS between fetches of every known domain anyway (subscribed publishers "
                "too, so that a silent one is noticed; consent is checked again each time).",
            ),
            convert=_positiveFloat,
        ),
    )
    maxReportDomains: int = attrs.field(
        default=10_000,
        metadata=_declare(
            Option(
                "max-report-domains",
                "int",
                "Most remote domains taken from one publisher's report (the rest is cut, and "
                "logged once).",
            ),
            convert=_positiveInt,
        ),
    )
    maxNewDomainsPerReporter: int = attrs.field(
        default=500,
        metadata=_declare(
            Option(
                "max-new-domains-per-reporter",
                "int",
                "Most domains one publisher's reports may add to the crawl per hour.",
            ),
            convert=_positiveInt,
        ),
    )
    maxDomains: int = attrs.field(
        default=100_000,
        metadata=_declare(
            Option(
                "max-domains",
                "int",
                "Most domains the crawler knows; beyond it, newly named domains are not crawled.",
            ),
            convert=_positiveInt,
        ),
    )
    submitRate: int = attrs.field(
        default=10,
        metadata=_declare(
            Option(
                "submit-rate",
                "int",
                "Most domains one client address may submit (POST /api/submit) per hour.",
            ),
            convert=_positiveInt,
        ),
    )
    trustedProxies: tuple[str, ...] = attrs.field(
        default=(),
        metadata=_declare(
            Option(
                "trusted-proxy",
                "list",
                "ADDRESS or NETWORK (127.0.0.1, 10.0.0.0/8) of a reverse proxy in front of the "
                "web endpoint: for requests from it, --submit-rate counts the client that its "
                "X-Forwarded-For header names.",
            ),
            convert=_networks,
        ),
    )
    layoutInterval: float = attrs.field(
        default=600.0,
        metadata=_declare(
            Option(
                "layout-interval",
                "float",
                "SECONDS at least between two full relayouts of the graph (each in a worker "
                "process, seeded from the previous positions; new domains are placed next to "
                "their neighbours at once in between).",
            ),
            convert=_positiveFloat,
        ),
    )
    enableWeb: bool = attrs.field(
        default=True,
        metadata=_declare(
            Option("no-web", "flag", "Do not serve the web page and the JSON API.", alias="web"),
            convert=_boolean,
        ),
    )
    publish: bool = attrs.field(
        default=True,
        metadata=_declare(
            Option(
                "no-publish",
                "flag",
                "Do not publish this node's server information (the pub-sub service still runs).",
                alias="publish",
            ),
            convert=_boolean,
        ),
    )
    requireValidCerts: bool = attrs.field(
        default=False,
        metadata=_declare(
            Option(
                "require-valid-certs",
                "flag",
                "Refuse s2s peers without a valid certificate: SASL EXTERNAL only, no dialback "
                "fallback.",
            ),
            convert=_boolean,
        ),
    )
    requireTLS: bool = attrs.field(
        default=True,
        metadata=_declare(
            Option("allow-plaintext", "flag", "Allow s2s streams without TLS. For testing only."),
            convert=_boolean,
        ),
    )
    bidi: bool = attrs.field(
        default=True,
        metadata=_declare(
            Option(
                "bidi",
                "switch",
                "Use one s2s stream for both directions with peers that offer it "
                "(XEP-0288), and offer it to peers that connect.",
            ),
            convert=_boolean,
        ),
    )
    multiplex: bool = attrs.field(
        default=True,
        metadata=_declare(
            Option(
                "multiplex",
                "switch",
                "Carry stanzas to a subdomain of a peer (pubsub., conference., ...) over the s2s "
                "stream to the peer when its certificate covers the subdomain and it announces "
                "dialback errors (XEP-0220 target multiplexing), instead of opening a stream.",
            ),
            convert=_boolean,
        ),
    )
    optIn: bool = attrs.field(
        default=True,
        metadata=_declare(
            Option(
                "opt-in",
                "switch",
                "Let others name this domain in their server information: list the disco#info "
                "feature urn:xmpp:serverinfo:0.",
            ),
            convert=_boolean,
        ),
    )
    dialbackSecret: str | None = attrs.field(
        default=None,
        metadata=_declare(
            Option(
                "dialback-secret",
                "string",
                "Secret for dialback keys (XEP-0185).",
                defaultText="a random secret kept in the data directory",
            ),
            convert=_secret,
        ),
    )
    maxStanzaSize: int = attrs.field(
        default=256 * 1024,
        metadata=_declare(
            Option(
                "max-stanza-size",
                "int",
                "BYTES: close an s2s stream that sends a larger stanza (policy-violation).",
            ),
            convert=_positiveInt,
        ),
    )
    maxDepth: int = attrs.field(
        default=64,
        metadata=_declare(
            Option(
                "max-depth",
                "int",
                "Close an s2s stream whose XML nests deeper than this (policy-violation).",
            ),
            convert=_positiveInt,
        ),
    )
    connectTimeout: float = attrs.field(
        default=30.0,
        metadata=_declare(
            Option("connect-timeout", "float", "SECONDS to wait for an outgoing TCP connection."),
            convert=_positiveFloat,
        ),
    )
    handshakeTimeout: float = attrs.field(
        default=30.0,
        metadata=_declare(
            Option(
                "handshake-timeout",
                "float",
                "SECONDS for an s2s stream to finish TLS and authentication.",
            ),
            convert=_positiveFloat,
        ),
    )
    idleTimeout: float = attrs.field(
        default=600.0,
        metadata=_declare(
            Option(
                "idle-timeout",
                "float",
                "SECONDS without a stanza either way (keepalives do not count) after which an "
                "s2s stream is closed.",
            ),
            convert=_positiveFloat,
        ),
    )
    keepaliveInterval: float = attrs.field(
        default=300.0,
        metadata=_declare(
            Option(
                "keepalive-interval",
                "float",
                "SECONDS of silence both ways after which an s2s stream carries a whitespace "
                "keepalive.",
            ),
            convert=_positiveFloat,
        ),
    )
    iqTimeout: float = attrs.field(
        default=30.0,
        metadata=_declare(
            Option("iq-timeout", "float", "SECONDS to wait for the answer to an IQ request."),
            convert=_positiveFloat,
        ),
    )
    queueLimit: int = attrs.field(
        default=1000,
        metadata=_declare(
            Option(
                "queue-limit",
                "int",
                "Stanzas queued per remote domain while its stream is being set up; more are "
                "bounced.",
            ),
            convert=_positiveInt,
        ),
    )
    maxUnauthenticatedPerAddress: int = attrs.field(
        default=100,
        metadata=_declare(
            Option(
                "max-unauthenticated-per-address",
                "int",
                "Incoming s2s connections from one IP address that may be not yet "
                "authenticated at once; more are refused with <resource-constraint/>.",
            ),
            convert=_positiveInt,
        ),
    )
    maxUnauthenticated: int = attrs.field(
        default=10_000,
        metadata=_declare(
            Option(
                "max-unauthenticated",
                "int",
                "Incoming s2s connections, from all addresses, that may be not yet "
                "authenticated at once; more are refused with <resource-constraint/>.",
            ),
            convert=_positiveInt,
        ),
    )
    logTraffic: bool = attrs.field(
        default=False,
        metadata=_declare(
            Option("verbose", "flag", "Log every stanza sent and received.", short="v"),
            convert=_boolean,
        ),
    )
    contacts: tuple[tuple[str, tuple[str, ...]], ...] = attrs.field(
        default=(),
        metadata=_declare(
            _contactOption("abuse-addresses", "URI for reporting abuse, e.g. mailto:abuse@DOMAIN."),
            _contactOption("admin-addresses", "URI of the server's administrators."),
            _contactOption("feedback-addresses", "URI for feedback on the service."),
            _contactOption("sales-addresses", "URI for sales enquiries."),
            _contactOption("security-addresses", "URI for reporting security issues."),
            _contactOption("status-addresses", "URI of a page or feed with the service's status."),
            _contactOption("support-addresses", "URI for user support."),
            convert=_contacts,
        ),
    )
    pubsubAdmins: tuple[str, ...] = attrs.field(
        default=(),
        metadata=_declare(
            Option(
                "pubsub-admin",
                "list",
                "Bare JID that may publish and configure on our pub-sub service, besides "
                "DOMAIN itself.",
            ),
            convert=_bareJIDs,
        ),
    )
    consentAllowlist: Path | None = attrs.field(
        default=None,
        metadata=_declare(
            Option(
                "consent-allowlist",
                "path",
                "FILE of domains (one per line, # comments) that may be named in our server "
                "information without being asked.",
            ),
            convert=_optionalPath,
            check=_listFile(lambda path: loadAllowlist(path)),
        ),
    )
    consentTTL: float = attrs.field(
        default=3600.0,
        metadata=_declare(
            Option(
                "consent-ttl",
                "float",
                "SECONDS to trust a peer's answer on whether it may be named (its disco#info "
                "feature urn:xmpp:serverinfo:0).",
            ),
            convert=_positiveFloat,
        ),
    )
    publishDelay: float = attrs.field(
        default=2.0,
        metadata=_declare(
            Option(
                "publish-delay",
                "float",
                "SECONDS to wait after a link change before publishing, so that a burst of "
                "changes makes one item.",
            ),
            convert=_positiveFloat,
        ),
    )
    publishRefresh: float = attrs.field(
        default=300.0,
        metadata=_declare(
            Option(
                "publish-refresh",
                "float",
                "SECONDS between re-checks of the published server information (an unchanged "
                "item is not published again).",
            ),
            convert=_positiveFloat,
        ),
    )
    maxSubscriptionsPerDomain: int = attrs.field(
        default=10,
        metadata=_declare(
            Option(
                "max-subscriptions-per-domain",
                "int",
                "Subscriptions one remote domain may hold on one pub-sub node.",
            ),
            convert=_positiveInt,
        ),
    )

    @property
    def localDomains(self) -> tuple[str, ...]:
        """
        The domains this node serves: its own and its pubsub host.
        """
        return (self.domain, self.effectivePubsubHost)

    @property
    def effectivePubsubHost(self) -> str:
        """
        The pubsub host, defaulting to C{pubsub.<domain>}.
        """
        return self.pubsubHost or "pubsub." + self.domain

    def routeFor(self, domain: str) -> Route | None:
        """
        @return: the first static route matching C{domain}, exact names first.
        """
        for route in self.routes:
            if route.pattern == domain:
                return route
        for route in self.routes:
            if route.matches(domain):
                return route
        return None


def settings() -> list[tuple[attrs.Attribute[Any], Setting]]:
    """
    @return: every field of L{Config} with its declaration, in field order.
    """
    return [(field, field.metadata[_SETTING]) for field in attrs.fields(Config)]
