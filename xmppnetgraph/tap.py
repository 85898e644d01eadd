# -*- test-case-name: tests.test_tap -*-
"""
The command line of C{twistd xmppnetgraph}.

Every option is derived from the declarations on L{Config} (see
L{xmppnetgraph.config.Option}): L{Options} parses the command line
(optionally merged with a TOML file given by C{--config}, which takes the
same keys), L{toConfig} hands the values to L{Config}, which converts and
checks them, and turns its L{ValueError}s into L{usage.UsageError}s;
L{makeService} hands the result to L{xmppnetgraph.node.buildService}.
L{optionsTable} renders the same declarations as README's table.
"""

from __future__ import annotations

import difflib
import gc
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.application.service import IService, MultiService
from twisted.logger import Logger
from twisted.python import usage

from xmppnetgraph.config import DEFAULT_DATA_DIR as DEFAULT_DATA_DIR
from xmppnetgraph.config import Config, Option, settings

#: The option that is not a setting of its own: it reads the others from a file.
CONFIG_OPTION = Option(
    "config",
    "path",
    "FILE in TOML with the same keys as the long options "
    '(domain = "example.org", route = ["a.example=127.0.0.1:5269"], '
    "no-crawl = true or crawl = false, ...). Command-line options "
    "override the file.",
)

# Twisted's usage and application.service modules are not annotated: typed
# names for what this module calls, so that strict mypy checks the calls.
_completions: Callable[..., usage.Completions] = usage.Completions
_completeFiles: Callable[..., usage.CompleteFiles] = usage.CompleteFiles
_completeDirs: Callable[[], usage.CompleteDirs] = usage.CompleteDirs
_initOptions: Callable[[usage.Options], None] = usage.Options.__init__
_privilegedStartService: Callable[[MultiService], None] = MultiService.privilegedStartService
_setServiceParent: Callable[[MultiService, MultiService], None] = MultiService.setServiceParent

_PARAMETER_KINDS = frozenset({"string", "path", "int", "float"})

# Every option with the Config field it sets (None for --config), in the
# order of Config's fields.
_log = Logger()

_OPTIONS: list[tuple[attrs.Attribute[Any] | None, Option]] = [
    *((field, option) for field, setting in settings() for option in setting.options),
    (None, CONFIG_OPTION),
]


def _fieldDefault(field: attrs.Attribute[Any] | None) -> Any:
    """
    @return: the default of C{field}, or L{None} if it has none.
    """
    if field is None or field.default is attrs.NOTHING:
        return None
    return field.default


def _commandLineDefault(field: attrs.Attribute[Any] | None, option: Option) -> str | None:
    """
    @return: the value of parameter C{option} when it is not given, written
        as on the command line, so that the help text and L{Config} agree;
        L{None} where the node decides.
    """
    if option.default is not None:
        return option.default
    value = _fieldDefault(field)
    if value is None or value == "":
        return None
    if isinstance(value, float) and float(f"{value:g}") == value:
        return f"{value:g}"
    return str(value)


def _help(option: Option) -> str:
    """
    @return: the help text of C{option}, saying if it is repeatable.
    """
    if option.kind == "list":
        return option.help + " Repeatable."
    return option.help


def _commandLineHelp(option: Option) -> str:
    """
    @return: the C{--help} text of C{option}, with its default in words.
    """
    if option.defaultText is None:
        return _help(option)
    return f"{_help(option)} [default: {option.defaultText}]"


def _listHandler(option: Option) -> Callable[[Options, str], None]:
    """
    @return: the C{opt_} method of the repeatable C{option}: its values are
        collected in a list under its name.
    """

    def handler(self: Options, value: str) -> None:
        self._given.add(option.name)
        self[option.name].append(value)

    handler.__doc__ = _commandLineHelp(option)
    return handler


def _switchHandler(option: Option, value: bool, default: bool) -> Callable[[Options], None]:
    """
    @return: the C{opt_} method of C{--NAME} (C{value} true) or C{--no-NAME}
        (C{value} false) of the switch C{option}, whose field defaults to
        C{default}.
    """

    def handler(self: Options) -> None:
        self[option.name] = value

    doc = _commandLineHelp(option) if value else f"The opposite of --{option.name}."
    handler.__doc__ = doc + (" (default)" if value == default else "")
    return handler


def _attributeName(option: str) -> str:
    """
    @return: the name of the C{opt_} method of C{option}.
    """
    return "opt_" + option.replace("-", "_")


@attrs.frozen
class _FileKey:
    """
    A key of a C{--config} file.

    @ivar option: the option it sets.
    @ivar boolean: whether it takes C{true} or C{false} (flags, switches
        and their aliases).
    @ivar inverted: for a boolean key, whether C{true} means the option is
        not given (C{crawl = true}, C{no-opt-in = false}).
    """

    option: Option
    boolean: bool = False
    inverted: bool = False


def _fileKeys() -> dict[str, list[_FileKey]]:
    """
    @return: every C{--config} key, with what it sets; a key may have two
        meanings told apart by the TOML type (C{web = "tcp:80"},
        C{web = false}).
    """
    keys: dict[str, list[_FileKey]] = {}
    for field, option in _OPTIONS:
        if option is CONFIG_OPTION:
            continue
        if option.kind == "flag":
            keys.setdefault(option.name, []).append(_FileKey(option, True))
            if option.alias is not None:
                # The alias holds the field's value: true is the default.
                inverted = bool(_fieldDefault(field))
                keys.setdefault(option.alias, []).append(_FileKey(option, True, inverted))
        elif option.kind == "switch":
            keys.setdefault(option.name, []).append(_FileKey(option, True))
            keys.setdefault("no-" + option.name, []).append(_FileKey(option, True, True))
        else:
            keys.setdefault(option.name, []).append(_FileKey(option))
    return keys


_FILE_KEYS = _fileKeys()


def _handlers() -> dict[str, Callable[..., None]]:
    """
    @return: the C{opt_} methods of the repeatable options and switches.
    """
    handlers: dict[str, Callable[..., None]] = {}
    for field, option in _OPTIONS:
        if option.kind == "list":
            handlers[_attributeName(option.name)] = _listHandler(option)
        elif option.kind == "switch":
            default = bool(_fieldDefault(field))
            handlers[_attributeName(option.name)] = _switchHandler(option, True, default)
            handlers[_attributeName("no-" + option.name)] = _switchHandler(option, False, default)
    return handlers


def _addHandlers(cls: type[Options]) -> type[Options]:
    """
    Give L{Options} the C{opt_} methods of L{_handlers} (L{usage.Options}
    finds them in the class dictionary).
    """
    for name, handler in _handlers().items():
        setattr(cls, name, handler)
    return cls


@_addHandlers
class Options(usage.Options):
    """
    Options for C{twistd xmppnetgraph}, one for each setting of L{Config}
    plus C{--config}.

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
        [option.name, option.short, _commandLineDefault(field, option), _commandLineHelp(option)]
        for field, option in _OPTIONS
        if option.kind in _PARAMETER_KINDS
    ]

    optFlags = [
        [option.name, option.short, _commandLineHelp(option)]
        for _, option in _OPTIONS
        if option.kind == "flag"
    ]

    compData = _completions(
        optActions={
            **{option.name: _completeFiles() for _, option in _OPTIONS if option.kind == "path"},
            "data-dir": _completeDirs(),
            "config": _completeFiles("*.toml"),
        }
    )

    config: Config

    def __init__(self) -> None:
        self._given: set[str] = set()
        _initOptions(self)
        # dict.__setitem__: these are defaults, not given on the command line.
        for field, option in _OPTIONS:
            if option.kind == "list":
                dict.__setitem__(self, option.name, [])
            elif option.kind == "switch":
                dict.__setitem__(self, option.name, bool(_fieldDefault(field)))

    def __setitem__(self, key: str, value: Any) -> None:
        """
        Record that option C{key} was given on the command line, so that a
        C{--config} file does not override it.  L{usage.Options} stores
        every parsed option through this method.
        """
        self._given.add(key)
        super().__setitem__(key, value)

    def postOptions(self) -> None:
        """
        Merge the C{--config} file, if any, under the command line, then
        build C{config}.

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
            option, value = _fileValue(where, path, key, value)
            if option in fromFile:
                raise usage.UsageError(
                    f"{where}: keys {fromFile[option][0]!r} and {key!r} set the same option"
                )
            fromFile[option] = (key, value)
        for option, (_key, value) in fromFile.items():
            if option not in self._given:
                dict.__setitem__(self, option, value)


def _fileValue(where: str, path: Path, key: str, value: Any) -> tuple[str, Any]:
    """
    Map one key of a C{--config} file to the option it sets.

    @param where: names the file in error messages.
    @param path: the file, to resolve relative paths against.
    @param key: the TOML key.
    @param value: its TOML value.
    @return: the option name and the value to store under it, as the
        command line would store it.
    @raise usage.UsageError: for unknown keys and wrongly typed values.
    """
    meanings = _FILE_KEYS.get(key)
    if not meanings:
        close = difflib.get_close_matches(key, sorted(_FILE_KEYS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise usage.UsageError(f"{where}: unknown key {key!r}{hint}")
    # A boolean value picks the boolean meaning of a key that has both.
    meaning = next((m for m in meanings if m.boolean == isinstance(value, bool)), meanings[0])
    option = meaning.option

    def wrongType(expected: str) -> usage.UsageError:
        return usage.UsageError(f"{where}: {key!r} must be {expected}, not {value!r}")

    if meaning.boolean:
        if not isinstance(value, bool):
            raise wrongType("true or false")
        return option.name, value != meaning.inverted
    if option.kind == "string":
        if not isinstance(value, str):
            raise wrongType("a string")
        return option.name, value
    if option.kind == "path":
        if not isinstance(value, str):
            raise wrongType("a string")
        return option.name, str(path.parent / Path(value).expanduser())
    if option.kind in ("int", "float"):
        # bool is an int: reject it explicitly.
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise wrongType("a number")
        return option.name, value
    # A repeatable option: a list of strings, or one string.
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise wrongType("a list of strings")
    return option.name, list(value)


def toConfig(options: Options) -> Config:
    """
    Build the node's configuration from parsed options.

    @param options: options after parsing (and merging a C{--config} file).
    @return: the configuration; paths in it are absolute.
    @raise usage.UsageError: with L{Config}'s message, which names the bad
        option.
    """
    values: dict[str, Any] = {}
    for field, setting in settings():
        first = setting.options[0]
        if len(setting.options) > 1:
            # One option per key of the field (the XEP-0157 contacts).
            values[field.name] = tuple(
                (option.key, tuple(options[option.name])) for option in setting.options
            )
        elif first.kind == "flag":
            # A flag sets its field to the opposite of the default.
            values[field.name] = field.default != bool(options[first.name])
        elif first.kind == "switch":
            values[field.name] = bool(options[first.name])
        else:
            values[field.name] = options[first.name]
    try:
        return Config(**values)
    except ValueError as e:
        raise usage.UsageError(str(e)) from None


def _markdown(text: str) -> str:
    """
    @return: C{text} escaped for a cell of a Markdown table.
    """
    for special in "\\|*<":
        text = text.replace(special, "\\" + special)
    return text


def _tableRow(field: attrs.Attribute[Any] | None, option: Option) -> str:
    """
    @return: README's table row of C{option}.
    """
    default = _fieldDefault(field)
    names = [f"`--{option.name}`"]
    if option.kind == "switch":
        names.append(f"`--no-{option.name}`")
    if option.short:
        names.append(f"`-{option.short}`")

    if option is CONFIG_OPTION:
        keys = "(command line only)"
    elif option.kind == "flag":
        keys = f"`{option.name} = true`"
        if option.alias is not None:
            keys += f" or `{option.alias} = {str(not default).lower()}`"
    elif option.kind == "switch":
        value = str(not default).lower()
        keys = f"`{option.name} = {value}` or `no-{option.name} = {str(bool(default)).lower()}`"
    elif option.kind == "list":
        keys = f"`{option.name}` (a list)"
    else:
        keys = f"`{option.name}`"

    if option.defaultText is not None:
        shown = _markdown(option.defaultText)
    elif option.kind == "flag":
        shown = "off"
    elif option.kind == "switch":
        shown = f"`--{option.name}`" if default else f"`--no-{option.name}`"
    elif option.kind == "list":
        shown = "none"
    elif field is not None and field.default is attrs.NOTHING and option.default is None:
        shown = "(required)"
    else:
        given = _commandLineDefault(field, option)
        shown = "none" if given is None else f"`{given}`"
    return f"| {', '.join(names)} | {keys} | {shown} | {_markdown(_help(option))} |"


def optionsTable() -> str:
    """
    Render every option as the Markdown table in README's "Configuration"
    section (a test checks that README holds exactly this table).

    @return: the table, one line per option, ending with a newline.
    """
    lines = [
        "| option | `--config` key | default | meaning |",
        "|---|---|---|---|",
        *(_tableRow(field, option) for field, option in _OPTIONS),
    ]
    return "\n".join(lines) + "\n"


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


def raiseFileLimit() -> tuple[int, int]:
    """
    Raise the soft limit of open files to the hard one, and log the
    result once: a node holds a descriptor per s2s stream, and systems
    start processes with a soft limit of 1,024 (systemd's default, for
    select()'s sake) under a hard one of 524,288. An unlimited hard limit
    is taken as the kernel's C{fs.nr_open}.

    Process-wide, so only C{twistd xmppnetgraph} does this.

    @return: the soft limit before and after.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover (not POSIX)
        return (0, 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            target = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            target = soft
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as e:
            _log.warn(
                "open files: could not raise the limit from {soft} to {target}: {error}",
                soft=soft,
                target=target,
                error=e,
            )
            return (soft, soft)
        _log.info("open files: raised the limit from {soft} to {target}", soft=soft, target=target)
        return (soft, target)
    _log.info("open files: the limit is {soft}", soft=soft)
    return (soft, soft)


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
        from xmppnetgraph.error import ListenError

        try:
            _privilegedStartService(self)
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
    from xmppnetgraph.core import attach
    from xmppnetgraph.datadir import DataDirError
    from xmppnetgraph.freedmemory import FreedMemoryReleaser, mallocTrim
    from xmppnetgraph.node import buildService

    try:
        node = buildService(options.config, reactor)
    except (DataDirError, TLSConfigError) as e:
        raise SystemExit(f"xmppnetgraph: {e}") from None
    newTop: Callable[[], CommandLineService] = CommandLineService
    top = newTop()
    _setServiceParent(node, top)
    tuneGarbageCollector()
    raiseFileLimit()
    attach(FreedMemoryReleaser(node.core.feed, reactor, mallocTrim()), "freed-memory", top)
    return top
