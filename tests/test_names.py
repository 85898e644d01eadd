# -*- test-case-name: tests.test_names -*-
"""
Tests for L{xmppnetgraph.names}: domain names (IDNA 2008, UTS 46) and JIDs.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph.names import (
    domainToASCII,
    isValidJID,
    listEntries,
    normalizeBareJID,
    normalizeDomain,
    normalizeHost,
    normalizeLocalDomain,
    parseJID,
)


class NormalizeDomainTests(SynchronousTestCase):
    """
    L{normalizeDomain} checks a domain we are told and returns its
    canonical form.
    """

    def assertRejected(self, text: str, reason: str) -> None:
        """
        Assert that C{text} is refused with a message containing C{reason}.
        """
        e = self.assertRaises(ValueError, normalizeDomain, text)
        self.assertIn(reason, str(e), text)

    def test_ascii(self) -> None:
        """
        Plain ASCII names are case-folded and otherwise kept.
        """
        self.assertEqual(normalizeDomain("Example.ORG"), "example.org")
        self.assertEqual(normalizeDomain("a-b.c9.example"), "a-b.c9.example")
        self.assertEqual(normalizeDomain("localhost"), "localhost")

    def test_unicodeKept(self) -> None:
        """
        Unicode labels are case-folded and stay Unicode; A-labels stay
        A-labels (lower case).
        """
        self.assertEqual(normalizeDomain("BÜCHER.example"), "bücher.example")
        self.assertEqual(normalizeDomain("XN--BCHER-KVA.example"), "xn--bcher-kva.example")

    def test_uts46Mapping(self) -> None:
        """
        UTS 46 maps compatibility characters (a Roman numeral, full-width
        letters) and an ideographic full stop between labels.
        """
        self.assertEqual(normalizeDomain("\u216b.example"), "xii.example")
        self.assertEqual(normalizeDomain("\uff21.example"), "a.example")
        self.assertEqual(normalizeDomain("b\u00fccher\u3002example"), "b\u00fccher.example")
        self.assertEqual(normalizeDomain("B\u00dcCHER.Example"), "b\u00fccher.example")

    def test_sharpS(self) -> None:
        """
        IDNA 2008 keeps C{ß} (IDNA 2003 mapped it to C{ss}, another domain).
        """
        self.assertEqual(normalizeDomain("FAß.de"), "faß.de")

    def test_finalSigma(self) -> None:
        """
        IDNA 2008 keeps the final sigma C{ς} (IDNA 2003 mapped it to C{σ}).
        """
        self.assertEqual(normalizeDomain("\u03c2.example"), "\u03c2.example")

    def test_zeroWidthJoiner(self) -> None:
        """
        A zero-width joiner is allowed after a virama (CONTEXTJ) and kept;
        elsewhere it is refused (IDNA 2003 silently removed it).
        """
        devanagari = "\u0915\u094d\u200d\u0937.example"
        self.assertEqual(normalizeDomain(devanagari), devanagari)
        self.assertRejected("a\u200db.example", "not a valid domain name")

    def test_symbolsRefused(self) -> None:
        """
        Symbols are not in IDNA 2008 (IDNA 2003 allowed them).
        """
        self.assertRejected("\u2603.example", "not a valid domain name")

    def test_aLabelsChecked(self) -> None:
        """
        An A-label must be valid Punycode of a valid U-label.
        """
        self.assertRejected("xn--zz.example", "not a valid domain name")
        self.assertRejected("xn--n3h.example", "not a valid domain name")

    def test_hyphens(self) -> None:
        """
        Labels do not start or end with a hyphen, nor have hyphens in the
        third and fourth position unless they are A-labels.
        """
        for bad in ["-a.example", "a-.example", "ab--cd.example"]:
            self.assertRejected(bad, "not a valid domain name")

    def test_notBare(self) -> None:
        """
        JIDs with a user part or a resource are not domains.
        """
        for bad in ["user@a.example", "a.example/res", "a@b", "b/c"]:
            self.assertRejected(bad, "not a bare domain")

    def test_ipAddress(self) -> None:
        """
        IPv4 and IPv6 addresses are not domain names, bracketed or not.
        """
        for bad in ["127.0.0.1", "10.0.0.1", "::1", "::ffff:127.0.0.1", "fe80::1%eth0"]:
            self.assertRejected(bad, "IP address")
        for bad in ["[::1]", "[2001:db8::1]", "[127.0.0.1]"]:
            self.assertRejected(bad, "is an IP address")

    def test_otherIPv4Notations(self) -> None:
        """
        Names that the C library's resolver reads as IPv4 addresses
        (C{inet_aton}: fewer parts, one number, hexadecimal, octal) are
        refused, in the fast path and the slow one. (Until these checks,
        C{1.1.1} was accepted as a domain.)
        """
        for bad in ["1.1.1", "127.1", "2130706433", "0x7f000001", "0x7f.1", "0X7F.0.0.1"]:
            self.assertRejected(bad, "IPv4")
        self.assertRejected("017700000001", "IPv4")

    def test_numericTopLevelLabel(self) -> None:
        """
        A name whose last label is all digits is refused (no top-level
        domain is, and resolvers may take it for an address); digits
        elsewhere, and a last label that starts with one, are fine.
        """
        for bad in ["example.123", "1.2.3.4.5", "b\u00fccher.42", "08.09"]:
            self.assertRejected(bad, "all-numeric")
        self.assertEqual(normalizeDomain("123.example"), "123.example")
        self.assertEqual(normalizeDomain("1e100.net"), "1e100.net")
        self.assertEqual(normalizeDomain("a.1a"), "a.1a")
        self.assertEqual(normalizeDomain("xmpp.3com"), "xmpp.3com")

    def test_mappedToAnAddress(self) -> None:
        """
        A name that the UTS 46 mapping turns into an address (full-width
        digits and dots, circled digits) is refused like the address.
        (Found by fuzzing: C{\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11} was
        accepted as C{127.0.0.1}.)
        """
        self.assertRejected("\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11", "IP address")
        self.assertRejected("\uff12", "IPv4")
        self.assertRejected("x.example.\uff12", "all-numeric")
        self.assertRejected("a.\u2460", "all-numeric")
        self.assertEqual(normalizeDomain("\uff41.example"), "a.example")

    def test_emptyLabels(self) -> None:
        """
        Empty names, empty labels (also behind an ideographic full stop), a
        trailing dot and a label that maps to nothing are refused.
        """
        self.assertRejected("", "empty domain")
        for bad in ["a..example", "a.example.", ".a.example", "a.b\u3002.example"]:
            self.assertRejected(bad, "empty label")
        self.assertRejected("a.example.", "no trailing dot allowed")
        self.assertRejected("a.example\u3002", "no trailing dot allowed")
        self.assertRejected("a.\u00ad.example", "not a valid domain name")

    def test_characters(self) -> None:
        """
        Spaces, underscores and brackets are not allowed (STD3 rules).
        """
        for bad in ["a b.example", "a_b.example", "[a.example]"]:
            self.assertRejected(bad, "not a valid domain name")

    def test_lengths(self) -> None:
        """
        A label has at most 63 characters, a name at most 253 in A-labels.
        """
        self.assertRejected("l" * 64 + ".example", "not a valid domain name")
        self.assertRejected("a." + "\u00e4" * 60 + ".example", "not a valid domain name")
        longest = ".".join(["l" * 63] * 3 + ["l" * 61])
        self.assertEqual(normalizeDomain(longest), longest)
        self.assertRejected(longest + "l", "longer than 253 characters")
        # 229 characters, but 259 in A-labels.
        unicode = ".".join(["\u00e4" * 45] * 5)
        self.assertRejected(unicode, "longer than 253 characters")


class NormalizeLocalDomainTests(SynchronousTestCase):
    """
    L{normalizeLocalDomain} accepts only domains that arrive on the wire
    (IDNA 2003 nameprep) as they are configured.
    """

    def test_sameBothWays(self) -> None:
        """
        ASCII and Unicode names that both IDNA versions write alike are
        normalised as L{normalizeDomain} does.
        """
        self.assertEqual(normalizeLocalDomain("Example.ORG"), "example.org")
        self.assertEqual(normalizeLocalDomain("BÜCHER.example"), "bücher.example")

    def test_differentOnTheWire(self) -> None:
        """
        C{faß.de} is C{fass.de} in IDNA 2003, so stanzas for it would never
        reach a node configured with it: refused, naming the wire form.
        """
        with self.assertRaises(ValueError) as caught:
            normalizeLocalDomain("faß.de")
        self.assertIn("'fass.de'", str(caught.exception))
        self.assertEqual(normalizeLocalDomain("fass.de"), "fass.de")

    def test_invalid(self) -> None:
        """
        What L{normalizeDomain} refuses is refused too.
        """
        self.assertRaises(ValueError, normalizeLocalDomain, "a@b.example")


class DomainToASCIITests(SynchronousTestCase):
    """
    L{domainToASCII} gives the A-label form for DNS, certificates and the
    dialback key.
    """

    def test_ascii(self) -> None:
        """
        ASCII names are lower-cased, lose one trailing dot and are not
        otherwise checked (an underscore works).
        """
        self.assertEqual(domainToASCII("My_Host.Example."), "my_host.example")

    def test_idna2008(self) -> None:
        """
        Unicode names are encoded with IDNA 2008: C{ß} and C{ς} are kept.
        """
        self.assertEqual(domainToASCII("Bücher.example"), "xn--bcher-kva.example")
        self.assertEqual(domainToASCII("faß.de"), "xn--fa-hia.de")
        self.assertEqual(domainToASCII("\u03c2.example"), "xn--3xa.example")

    def test_agreesWithNormalizeDomain(self) -> None:
        """
        The A-labels of a normalised name are those of the name itself.
        """
        for name in ["BÜCHER.example", "faß.de", "\u216b.example"]:
            self.assertEqual(domainToASCII(normalizeDomain(name)), domainToASCII(name))

    def test_idna2003Fallback(self) -> None:
        """
        A name only IDNA 2003 accepts (a symbol, which a JID may carry) is
        encoded with it.
        """
        self.assertEqual(domainToASCII("\u2603.example"), "xn--n3h.example")

    def test_rejects(self) -> None:
        """
        An empty name, or one neither IDNA version can encode, raises
        L{ValueError}.
        """
        for bad in ["", ".", "\u00e4" * 64 + ".example"]:
            self.assertRaises(ValueError, domainToASCII, bad)


class NormalizeHostTests(SynchronousTestCase):
    """
    L{normalizeHost} takes IP addresses and domain names.
    """

    def test_addresses(self) -> None:
        """
        Addresses are given in their compressed form.
        """
        self.assertEqual(normalizeHost("127.0.0.1"), "127.0.0.1")
        self.assertEqual(normalizeHost("0:0::1"), "::1")

    def test_names(self) -> None:
        """
        Anything else is a domain name.
        """
        self.assertEqual(normalizeHost("Host.Example"), "host.example")
        self.assertRaises(ValueError, normalizeHost, "a b")


class NormalizeBareJIDTests(SynchronousTestCase):
    """
    L{normalizeBareJID} checks a bare JID we are told.
    """

    def test_normalised(self) -> None:
        """
        The user part is nodeprep'd, the domain normalised with IDNA 2008.
        """
        self.assertEqual(normalizeBareJID("Boss@B.example"), "boss@b.example")
        self.assertEqual(normalizeBareJID("Ärger@FAß.de"), "ärger@faß.de")
        self.assertEqual(normalizeBareJID("C.example"), "c.example")

    def test_rejects(self) -> None:
        """
        The message says what is wrong.
        """
        for bad, reason in [
            ("", "empty domain"),
            ("admin@", "empty domain"),
            ("@a.example", "empty user part"),
            ("\u00ad@a.example", "empty user part"),
            ("admin@a.example/laptop", "has a resource"),
            ("a b@a.example", "not a valid JID"),
            ("a@b@a.example", "not a valid JID"),
            ("admin@a..example", "empty label"),
            ("admin@127.0.0.1", "IP address"),
        ]:
            e = self.assertRaises(ValueError, normalizeBareJID, bad)
            self.assertIn(reason, str(e), bad)
            self.assertIn(repr(bad), str(e), bad)


class ParseJIDTests(SynchronousTestCase):
    """
    L{parseJID} parses addresses from the wire as Twisted does, with one
    exception type.
    """

    def test_parsed(self) -> None:
        """
        A full JID is parsed and prepared, and interned as Twisted does.
        """
        parsed = parseJID("User@Example.ORG/Res")
        self.assertEqual(
            (parsed.user, parsed.host, parsed.resource), ("user", "example.org", "Res")
        )
        self.assertIs(parseJID("User@Example.ORG/Res"), parsed)

    def test_invalid(self) -> None:
        """
        Empty strings, empty labels (Twisted raises L{IndexError}), bad
        characters and missing hosts raise L{ValueError}.
        """
        for bad in ["", "a..b", "a b@c.example", "user@", "@/"]:
            self.assertRaises(ValueError, parseJID, bad)
            self.assertFalse(isValidJID(bad), bad)

    def test_valid(self) -> None:
        """
        L{isValidJID} accepts what L{parseJID} parses.
        """
        for good in ["a.example", "u@a.example", "u@a.example/r/s", "b\u00fccher.example"]:
            self.assertTrue(isValidJID(good), good)


class ListEntriesTests(SynchronousTestCase):
    """
    L{listEntries} gives the entries of a domain list file with their line
    numbers, without comments and blank lines.
    """

    def test_entries(self) -> None:
        lines = ["# a comment\n", "a.example\n", "\n", "  b.example  # why\n", "#\n"]
        self.assertEqual(list(listEntries(lines)), [(2, "a.example"), (4, "b.example")])
