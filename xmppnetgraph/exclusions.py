# -*- test-case-name: tests.test_exclusions -*-
"""
The exclusion list: domains whose operators asked to be left out of the
graph (C{--exclude FILE}).

The file has one entry per line: a domain (C{example.org}: that domain
only) or C{*.suffix} (C{*.example.org}: C{example.org} I{and} every name
under it). The wildcard covers its suffix too, unlike a static route's,
because the people who ask mean "my server and its components"
(C{conference.example.org}, C{pubsub.example.org}) and would be surprised
to find C{example.org} itself still shown. Everything after a C{#} is a
comment; blank lines are ignored. Names are normalised with
L{normalizeDomain<xmppnetgraph.names.normalizeDomain>} and kept in
A-labels, so that C{faß.de} and C{xn--fa-hia.de} are one entry.

L{Exclusions.excluded} costs one set lookup per label of the name asked
about, whatever the size of the list.

The list is read once, at start; a change to the file takes a restart.
(Reloading it on C{SIGHUP} would be easy here, but the crawler and the
graph view would have to drop what they hold for newly excluded domains:
not done yet.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from xmppnetgraph.error import ExclusionFileError
from xmppnetgraph.names import domainToASCII, listEntries, normalizeDomain

__all__ = ["Exclusions"]


class Exclusions:
    """
    A set of excluded domains and domain suffixes.

    @ivar _exact: domains excluded by name only, in A-labels.
    @ivar _suffixes: suffixes excluded with everything under them, in
        A-labels.
    """

    def __init__(self, exact: Iterable[str] = (), suffixes: Iterable[str] = ()) -> None:
        """
        @param exact: normalised domains excluded by name.
        @param suffixes: normalised domains excluded with all their
            subdomains (the part after C{*.} of a wildcard entry).
        """
        self._exact = frozenset(domainToASCII(d) for d in exact)
        self._suffixes = frozenset(domainToASCII(d) for d in suffixes)

    @classmethod
    def empty(cls) -> Exclusions:
        """
        @return: a list that excludes nothing.
        """
        return cls()

    @classmethod
    def fromLines(cls, lines: Iterable[str], source: str = "<exclusions>") -> Exclusions:
        """
        Parse exclusion entries (the file format, see the module docstring).

        @param lines: the lines, with or without their line ends.
        @param source: what to call them in errors (the file name).
        @return: the exclusions.
        @raise ExclusionFileError: for the first line that is not a domain
            or C{*.suffix}; the message is C{SOURCE:LINE: why}.
        """
        exact: set[str] = set()
        suffixes: set[str] = set()
        for number, text in listEntries(lines):
            wildcard = text.startswith("*.")
            name = text[2:] if wildcard else text
            try:
                if "*" in name:
                    raise ValueError(f"{text!r}: '*' is only allowed as '*.suffix'")
                domain = normalizeDomain(name)
            except ValueError as e:
                raise ExclusionFileError(
                    f"{source}:{number}: not a domain or *.suffix: {e}"
                ) from None
            (suffixes if wildcard else exact).add(domain)
        return cls(exact, suffixes)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Exclusions:
        """
        Read an exclusion list file (UTF-8).

        @param path: the file.
        @return: the exclusions.
        @raise ExclusionFileError: if a line is not a domain or
            C{*.suffix}, naming the file and the line.
        @raise OSError: if the file cannot be read.
        @raise UnicodeDecodeError: if it is not UTF-8.
        """
        with open(path, encoding="utf-8") as f:
            return cls.fromLines(f, os.fspath(path))

    def excluded(self, domain: str) -> bool:
        """
        @param domain: a domain, as L{normalizeDomain} gives it (U-labels
            or A-labels; either matches).
        @return: whether C{domain} is excluded: named, or equal to or under
            a C{*.suffix} entry. A name that cannot be written in A-labels
            (so was never stored or crawled) is not.
        """
        if not self._exact and not self._suffixes:
            return False
        try:
            name = domainToASCII(domain)
        except ValueError:
            return False
        if name in self._exact or name in self._suffixes:
            return True
        dot = name.find(".")
        while dot != -1:
            if name[dot + 1 :] in self._suffixes:
                return True
            dot = name.find(".", dot + 1)
        return False

    def __len__(self) -> int:
        """
        @return: how many entries (domains and suffixes) the list has.
        """
        return len(self._exact) + len(self._suffixes)

    def __repr__(self) -> str:
        """
        @return: the entries, for debugging.
        """
        entries = sorted(self._exact) + sorted(f"*.{s}" for s in self._suffixes)
        return f"Exclusions({entries!r})"
