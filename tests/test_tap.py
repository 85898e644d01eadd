# -*- test-case-name: tests.test_tap -*-
"""
Tests for L{xmppnetgraph.tap} and the helpers it uses from
L{xmppnetgraph.config}.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import attrs
from twisted.application.service import IService, MultiService
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from xmppnetgraph import config as configModule
from xmppnetgraph.config import Config, Route, normalizeDomain, parseRoute, settings
from xmppnetgraph.disco import CONTACT_FIELDS
from xmppnetgraph.feed import ChangeFeed
from xmppnetgraph.freedmemory import FreedMemoryReleaser
from xmppnetgraph.tap import (
    CONFIG_OPTION,
    DEFAULT_DATA_DIR,
    CommandLineService,
    Options,
    makeService,
    optionsTable,
    toConfig,
)

README = Path(__file__).resolve().parent.parent / "README.md"

# The command line promised in DESIGN.md ("Contracts that users and tools
# rely on"), plus the options this module adds for Config's other fields.
CONTRACT_OPTIONS = [
    "domain",
    "s2s",
    "s2s-direct-tls",
    "web",
    "data-dir",
    "database",
    "tls-cert",
    "tls-key",
    "pubsub-host",
    "route",
    "seed",
    "no-crawl",
    "no-web",
    "no-publish",
    "require-valid-certs",
    "opt-in",
    "no-opt-in",
]
EXTRA_OPTIONS = [
    "ca-file",
    "trusted-proxy",
    "allow-plaintext",
    "dialback-secret",
    "max-stanza-size",
    "max-depth",
    "idle-timeout",
    "connect-timeout",
    "handshake-timeout",
    "keepalive-interval",
    "iq-timeout",
    "queue-limit",
    "verbose",
    "config",
]
# Options for publishing server information (XEP-0485, XEP-0157).
CONTACT_OPTIONS = [
    "contact-abuse",
    "contact-admin",
    "contact-feedback",
    "contact-sales",
    "contact-security",
    "contact-status",
    "contact-support",
]
PUBLISHING_OPTIONS = CONTACT_OPTIONS + [
    "pubsub-admin",
    "consent-allowlist",
    "consent-ttl",
    "publish-delay",
    "publish-refresh",
    "max-subscriptions-per-domain",
]


def parse(*argv: str) -> Config:
    """
    Parse C{argv} with a fresh L{Options}.

    @return: the resulting configuration.
    """
    options = Options()
    options.parseOptions(list(argv))
    return options.config


class TempDirMixin:
    """
    A fresh temporary directory per test.
    """

    def tempDir(self) -> Path:
        """
        @return: a new empty directory, removed by trial with the test's
            temporary files.
        """
        path = Path(self.mktemp())  # type: ignore[attr-defined]
        path.mkdir(parents=True)
        return path.absolute()


class DefaultsTests(SynchronousTestCase):
    """
    What C{--domain} alone gives.
    """

    def setUp(self) -> None:
        self.config = parse("--domain", "example.org")

    def test_domain(self) -> None:
        """
        C{--domain} lands in L{Config.domain}; the pubsub host derives from it.
        """
        self.assertEqual(self.config.domain, "example.org")
        self.assertEqual(self.config.pubsubHost, "")
        self.assertEqual(self.config.effectivePubsubHost, "pubsub.example.org")

    def test_endpoints(self) -> None:
        """
        s2s listens on C{tcp:5269}, the web on loopback port 8080, and there
        is no direct-TLS listener.
        """
        self.assertEqual(self.config.s2s, "tcp:5269")
        self.assertEqual(self.config.web, "tcp:8080:interface=127.0.0.1")
        self.assertIsNone(self.config.s2sDirectTLS)

    def test_dataDir(self) -> None:
        """
        The data directory defaults to C{xmppnetgraph-data} in the current
        directory, made absolute so that twistd's C{--rundir} cannot move it.
        """
        self.assertTrue(self.config.dataDir.is_absolute())
        self.assertEqual(self.config.dataDir, Path.cwd() / DEFAULT_DATA_DIR)

    def test_noneDefaults(self) -> None:
        """
        Database, key pair, CA file and dialback secret are left to the node
        (L{None}), and there are no routes or seeds.
        """
        self.assertIsNone(self.config.database)
        self.assertIsNone(self.config.tlsCert)
        self.assertIsNone(self.config.tlsKey)
        self.assertIsNone(self.config.caFile)
        self.assertIsNone(self.config.dialbackSecret)
        self.assertEqual(self.config.routes, ())
        self.assertEqual(self.config.seeds, ())
        self.assertEqual(self.config.contacts, ())
        self.assertEqual(self.config.pubsubAdmins, ())
        self.assertIsNone(self.config.consentAllowlist)

    def test_roles(self) -> None:
        """
        All roles are on, TLS is required, certificates need not validate,
        the node opts in, and traffic is not logged.
        """
        c = self.config
        self.assertEqual(
            (
                c.crawl,
                c.enableWeb,
                c.publish,
                c.requireTLS,
                c.requireValidCerts,
                c.optIn,
                c.logTraffic,
            ),
            (True, True, True, True, False, True, False),
        )

    def test_limitsAreConfigDefaults(self) -> None:
        """
        Numeric options default to L{Config}'s own defaults.
        """
        fields = attrs.fields_dict(Config)
        for name in [
            "maxStanzaSize",
            "maxDepth",
            "connectTimeout",
            "handshakeTimeout",
            "idleTimeout",
            "keepaliveInterval",
            "iqTimeout",
            "queueLimit",
            "consentTTL",
            "publishDelay",
            "publishRefresh",
            "maxSubscriptionsPerDomain",
        ]:
            self.assertEqual(getattr(self.config, name), fields[name].default, name)

    def test_defaultsInHelp(self) -> None:
        """
        The help text shows the default endpoints and data directory.
        """
        usage = str(Options())
        self.assertIn("tcp:5269", usage)
        self.assertIn("tcp:8080:interface=127.0.0.1", usage)
        self.assertIn(DEFAULT_DATA_DIR, usage)

    def test_publishingDefaultsInHelp(self) -> None:
        """
        The help for the publishing limits shows L{Config}'s defaults.
        """
        options = Options()
        fields = attrs.fields_dict(Config)
        for option, name in [
            ("consent-ttl", "consentTTL"),
            ("publish-delay", "publishDelay"),
            ("publish-refresh", "publishRefresh"),
            ("max-subscriptions-per-domain", "maxSubscriptionsPerDomain"),
        ]:
            self.assertEqual(options[option], f"{fields[name].default:g}", option)
        usage = " ".join(str(options).split())
        self.assertIn(f"[default: {fields['consentTTL'].default:g}]", usage)


class OptionsTests(TempDirMixin, SynchronousTestCase):
    """
    Every option lands in L{Config}.
    """

    def keyPair(self) -> tuple[Path, Path, Path]:
        """
        @return: paths of existing certificate, key and CA files.
        """
        d = self.tempDir()
        paths = (d / "cert.pem", d / "key.pem", d / "ca.pem")
        for p in paths:
            p.write_text("not checked here\n")
        return paths

    def test_everyOption(self) -> None:
        """
        Each option sets its own field of L{Config}.
        """
        cert, key, ca = self.keyPair()
        data = self.tempDir() / "data"
        allowlist = self.tempDir() / "allow.txt"
        allowlist.write_text("friend.example\n")
        config = parse(
            "--domain=Node.Example",
            "--s2s=tcp:15269:interface=127.0.0.2",
            "--s2s-direct-tls=tcp:15270:interface=127.0.0.2",
            "--web=tcp:18080:interface=127.0.0.2",
            "--data-dir",
            str(data),
            "--database=postgresql://graph@db.example/graph",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--ca-file",
            str(ca),
            "--pubsub-host=ps.node.example",
            "--route=peer.example=127.0.0.3:5270",
            "--seed=peer.example",
            "--no-crawl",
            "--no-web",
            "--no-publish",
            "--require-valid-certs",
            "--no-opt-in",
            "--allow-plaintext",
            "--dialback-secret=s3cret",
            "--max-stanza-size=1000",
            "--max-depth=10",
            "--idle-timeout=1.5",
            "--connect-timeout=2",
            "--handshake-timeout=3",
            "--keepalive-interval=4",
            "--iq-timeout=5",
            "--queue-limit=6",
            "--verbose",
            "--contact-security=mailto:security@node.example",
            "--contact-abuse=xmpp:abuse@node.example",
            "--pubsub-admin=Admin@Node.example",
            f"--consent-allowlist={allowlist}",
            "--consent-ttl=7.5",
            "--publish-delay=8",
            "--publish-refresh=9",
            "--max-subscriptions-per-domain=11",
        )
        self.assertEqual(
            config,
            Config(
                domain="node.example",
                dataDir=data,
                s2s="tcp:15269:interface=127.0.0.2",
                s2sDirectTLS="tcp:15270:interface=127.0.0.2",
                web="tcp:18080:interface=127.0.0.2",
                database="postgresql://graph@db.example/graph",
                tlsCert=cert,
                tlsKey=key,
                caFile=ca,
                pubsubHost="ps.node.example",
                routes=(Route("peer.example", "127.0.0.3", 5270),),
                seeds=("peer.example",),
                crawl=False,
                enableWeb=False,
                publish=False,
                requireValidCerts=True,
                requireTLS=False,
                optIn=False,
                dialbackSecret="s3cret",
                maxStanzaSize=1000,
                maxDepth=10,
                idleTimeout=1.5,
                connectTimeout=2.0,
                handshakeTimeout=3.0,
                keepaliveInterval=4.0,
                iqTimeout=5.0,
                queueLimit=6,
                logTraffic=True,
                contacts=(
                    ("abuse-addresses", ("xmpp:abuse@node.example",)),
                    ("security-addresses", ("mailto:security@node.example",)),
                ),
                pubsubAdmins=("admin@node.example",),
                consentAllowlist=allowlist,
                consentTTL=7.5,
                publishDelay=8.0,
                publishRefresh=9.0,
                maxSubscriptionsPerDomain=11,
            ),
        )

    def test_shortVerbose(self) -> None:
        """
        C{-v} is C{--verbose}.
        """
        self.assertTrue(parse("--domain=a.example", "-v").logTraffic)

    def test_optInLastWins(self) -> None:
        """
        Of C{--opt-in} and C{--no-opt-in}, the last one given wins.
        """
        self.assertFalse(parse("--domain=a.example", "--opt-in", "--no-opt-in").optIn)
        self.assertTrue(parse("--domain=a.example", "--no-opt-in", "--opt-in").optIn)

    def test_relativePaths(self) -> None:
        """
        Relative paths are made absolute against the current directory.
        """
        d = self.tempDir()
        (d / "c.pem").write_text("")
        (d / "k.pem").write_text("")
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(d)
        config = parse(
            "--domain=a.example",
            "--data-dir=state",
            "--tls-cert=c.pem",
            "--tls-key=k.pem",
        )
        self.assertEqual(config.dataDir, d / "state")
        self.assertEqual(config.tlsCert, d / "c.pem")
        self.assertEqual(config.tlsKey, d / "k.pem")

    def test_repeatableRoutesAndSeeds(self) -> None:
        """
        C{--route} and C{--seed} accumulate in order; repeated seeds count
        once.
        """
        config = parse(
            "--domain=a.example",
            "--route=b.example=127.0.0.2:5269",
            "--route",
            "c.example=[::1]:15269",
            "--seed=b.example",
            "--seed=C.example",
            "--seed=b.example",
        )
        self.assertEqual(
            config.routes,
            (
                Route("b.example", "127.0.0.2", 5269),
                Route("c.example", "::1", 15269),
            ),
        )
        self.assertEqual(config.seeds, ("b.example", "c.example"))

    def test_wildcardRoute(self) -> None:
        """
        A C{*.suffix} route applies to subdomains; an exact route wins over it.
        """
        config = parse(
            "--domain=a.example",
            "--route=*.test.example=127.0.0.5",
            "--route=x.test.example=127.0.0.6:6000",
        )
        self.assertEqual(
            config.routeFor("y.test.example"),
            Route("*.test.example", "127.0.0.5", 5269),
        )
        self.assertEqual(
            config.routeFor("x.test.example"),
            Route("x.test.example", "127.0.0.6", 6000),
        )
        self.assertIsNone(config.routeFor("test.example"))

    def test_sqliteDatabase(self) -> None:
        """
        A C{sqlite:///} URL is accepted unchanged.
        """
        config = parse("--domain=a.example", "--database=sqlite:///var/graph.db")
        self.assertEqual(config.database, "sqlite:///var/graph.db")

    def test_unicodeDomain(self) -> None:
        """
        An internationalised domain is accepted and nameprep'd.
        """
        self.assertEqual(parse("--domain=BÜCHER.example").domain, "bücher.example")

    def test_contacts(self) -> None:
        """
        Each C{--contact-*} option fills its XEP-0157 field; URIs keep the
        order given (repeats count once), fields are sorted, and fields not
        given are left out.
        """
        config = parse(
            "--domain=a.example",
            "--contact-support=https://a.example/help",
            "--contact-admin=xmpp:root@a.example",
            "--contact-support=mailto:help@a.example",
            "--contact-admin=tel:+1-555-0100",
            "--contact-support=https://a.example/help",
        )
        self.assertEqual(
            config.contacts,
            (
                ("admin-addresses", ("xmpp:root@a.example", "tel:+1-555-0100")),
                (
                    "support-addresses",
                    ("https://a.example/help", "mailto:help@a.example"),
                ),
            ),
        )

    def test_everyContactField(self) -> None:
        """
        There is one option for each of the seven XEP-0157 fields, named
        after it.
        """
        argv = ["--domain=a.example"]
        for option in CONTACT_OPTIONS:
            argv.append(f"--{option}=mailto:{option}@a.example")
        config = parse(*argv)
        self.assertEqual(
            config.contacts,
            tuple(
                (
                    var,
                    (f"mailto:contact-{var.removesuffix('-addresses')}@a.example",),
                )
                for var in sorted(CONTACT_FIELDS)
            ),
        )

    def test_pubsubAdmins(self) -> None:
        """
        C{--pubsub-admin} is repeatable; JIDs are normalised, kept in order,
        and counted once.
        """
        config = parse(
            "--domain=a.example",
            "--pubsub-admin=Boss@B.example",
            "--pubsub-admin=c.example",
            "--pubsub-admin=boss@b.example",
            "--pubsub-admin=Ärger@b.example",
        )
        self.assertEqual(config.pubsubAdmins, ("boss@b.example", "c.example", "ärger@b.example"))

    def test_trustedProxies(self) -> None:
        """
        C{--trusted-proxy} is repeatable and takes addresses and networks,
        normalised and counted once; anything else is a usage error that
        names the option.
        """
        config = parse(
            "--domain=a.example",
            "--trusted-proxy=127.0.0.1",
            "--trusted-proxy=10.1.0.0/16",
            "--trusted-proxy=::1",
            "--trusted-proxy=127.0.0.1/32",
        )
        self.assertEqual(config.trustedProxies, ("127.0.0.1/32", "10.1.0.0/16", "::1/128"))
        self.assertEqual(parse("--domain=a.example").trustedProxies, ())
        e = self.assertRaises(
            UsageError, parse, "--domain=a.example", "--trusted-proxy=proxy.example"
        )
        self.assertIn("--trusted-proxy: 'proxy.example' is not an IP address", str(e))

    def test_consentAllowlist(self) -> None:
        """
        C{--consent-allowlist} is kept as an absolute path, relative to the
        current directory.
        """
        d = self.tempDir()
        (d / "allow.txt").write_text("# friends\nb.example\n\nC.example  # too\n")
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(d)
        config = parse("--domain=a.example", "--consent-allowlist=allow.txt")
        self.assertEqual(config.consentAllowlist, d / "allow.txt")

    def test_publishingNumbers(self) -> None:
        """
        The publishing limits are read as numbers (whole for
        C{--max-subscriptions-per-domain}).
        """
        config = parse(
            "--domain=a.example",
            "--consent-ttl=0.5",
            "--publish-delay",
            "1e-1",
            "--publish-refresh=60",
            "--max-subscriptions-per-domain=3",
        )
        self.assertEqual(
            (
                config.consentTTL,
                config.publishDelay,
                config.publishRefresh,
                config.maxSubscriptionsPerDomain,
            ),
            (0.5, 0.1, 60.0, 3),
        )
        self.assertIsInstance(config.maxSubscriptionsPerDomain, int)


class ConfigFileTests(TempDirMixin, SynchronousTestCase):
    """
    C{--config FILE} reads the same keys from TOML, under the command line.
    """

    def configFile(self, text: str) -> Path:
        """
        @return: a file holding C{text}.
        """
        path = self.tempDir() / "node.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def test_keys(self) -> None:
        """
        Keys spelled like the long options set the same fields.
        """
        path = self.configFile(
            'domain = "file.example"\n'
            'web = "tcp:18080:interface=127.0.0.2"\n'
            'route = ["b.example=127.0.0.2:5270", "*.c.example=[::1]"]\n'
            'seed = ["b.example"]\n'
            "no-crawl = true\n"
            "publish = false\n"
            "opt-in = false\n"
            "require-valid-certs = true\n"
            "max-stanza-size = 4096\n"
            "idle-timeout = 12.5\n"
            'iq-timeout = "7"\n'
            'data-dir = "state"\n'
        )
        config = parse("--config", str(path))
        self.assertEqual(config.domain, "file.example")
        self.assertEqual(config.web, "tcp:18080:interface=127.0.0.2")
        self.assertEqual(
            config.routes,
            (
                Route("b.example", "127.0.0.2", 5270),
                Route("*.c.example", "::1", 5269),
            ),
        )
        self.assertEqual(config.seeds, ("b.example",))
        self.assertFalse(config.crawl)
        self.assertFalse(config.publish)
        self.assertTrue(config.enableWeb)
        self.assertFalse(config.optIn)
        self.assertTrue(config.requireValidCerts)
        self.assertEqual(config.maxStanzaSize, 4096)
        self.assertEqual(config.idleTimeout, 12.5)
        self.assertEqual(config.iqTimeout, 7.0)
        # Relative paths in the file are relative to the file.
        self.assertEqual(config.dataDir, path.parent / "state")

    def test_publishingKeys(self) -> None:
        """
        The publishing options have keys of the same names: repeatable ones
        take a list or one string; the allowlist path is relative to the
        file.
        """
        path = self.configFile(
            'domain = "a.example"\n'
            'contact-abuse = ["mailto:abuse@a.example", "xmpp:abuse@a.example"]\n'
            'contact-status = "https://status.a.example/"\n'
            'pubsub-admin = ["Admin@a.example", "b.example"]\n'
            'consent-allowlist = "allow.txt"\n'
            "consent-ttl = 120\n"
            "publish-delay = 0.25\n"
            'publish-refresh = "600"\n'
            "max-subscriptions-per-domain = 4\n"
        )
        (path.parent / "allow.txt").write_text("b.example\n")
        config = parse("--config", str(path))
        self.assertEqual(
            config.contacts,
            (
                (
                    "abuse-addresses",
                    ("mailto:abuse@a.example", "xmpp:abuse@a.example"),
                ),
                ("status-addresses", ("https://status.a.example/",)),
            ),
        )
        self.assertEqual(config.pubsubAdmins, ("admin@a.example", "b.example"))
        self.assertEqual(config.consentAllowlist, path.parent / "allow.txt")
        self.assertEqual(config.consentTTL, 120.0)
        self.assertEqual(config.publishDelay, 0.25)
        self.assertEqual(config.publishRefresh, 600.0)
        self.assertEqual(config.maxSubscriptionsPerDomain, 4)

    def test_publishingCommandLineOverrides(self) -> None:
        """
        A repeatable publishing option on the command line replaces the
        file's list for that option only.
        """
        path = self.configFile(
            'domain = "a.example"\n'
            'contact-abuse = ["mailto:file@a.example"]\n'
            'contact-admin = ["mailto:admin@a.example"]\n'
            'pubsub-admin = ["file@a.example"]\n'
            "publish-delay = 5\n"
        )
        config = parse(
            "--config",
            str(path),
            "--contact-abuse=mailto:cli@a.example",
            "--pubsub-admin=cli@a.example",
            "--publish-delay=2",
        )
        self.assertEqual(
            config.contacts,
            (
                ("abuse-addresses", ("mailto:cli@a.example",)),
                ("admin-addresses", ("mailto:admin@a.example",)),
            ),
        )
        self.assertEqual(config.pubsubAdmins, ("cli@a.example",))
        self.assertEqual(config.publishDelay, 2.0)

    def test_publishingFileValuesAreChecked(self) -> None:
        """
        Publishing values from the file go through the command line's checks.
        """
        for text, option in [
            ('contact-admin = "admin@a.example"', "--contact-admin"),
            ('pubsub-admin = ["a@b/c"]', "--pubsub-admin"),
            ('consent-allowlist = "absent.txt"', "--consent-allowlist"),
            ("publish-refresh = 0", "--publish-refresh"),
            ("max-subscriptions-per-domain = 1.5", "--max-subscriptions-per-domain"),
        ]:
            path = self.configFile('domain = "a.example"\n' + text)
            e = self.assertRaises(UsageError, parse, "--config", str(path))
            self.assertIn(option, str(e), text)

    def test_positiveAndNegativeFlagKeys(self) -> None:
        """
        C{crawl = false} is C{no-crawl = true}; C{web = false} is
        C{no-web = true}; C{no-opt-in = true} is C{opt-in = false}.
        """
        path = self.configFile(
            'domain = "a.example"\ncrawl = false\nweb = false\nno-opt-in = true\n'
        )
        config = parse("--config", str(path))
        self.assertEqual((config.crawl, config.enableWeb, config.optIn), (False, False, False))
        path = self.configFile('domain = "a.example"\ncrawl = true\nweb = true\n')
        config = parse("--config", str(path))
        self.assertEqual((config.crawl, config.enableWeb), (True, True))

    def test_commandLineOverrides(self) -> None:
        """
        An option given on the command line beats the file, whether it
        comes before or after C{--config}, even when it equals the default.
        """
        path = self.configFile(
            'domain = "file.example"\n'
            's2s = "tcp:15269"\n'
            'route = ["b.example=127.0.0.2:1"]\n'
            'seed = ["file-seed.example"]\n'
            "opt-in = false\n"
            "max-depth = 9\n"
        )
        config = parse(
            "--domain=cli.example",
            "--config",
            str(path),
            "--s2s=tcp:5269",
            "--route=c.example=127.0.0.3:2",
            "--opt-in",
        )
        self.assertEqual(config.domain, "cli.example")
        self.assertEqual(config.s2s, "tcp:5269")
        self.assertEqual(config.routes, (Route("c.example", "127.0.0.3", 2),))
        self.assertTrue(config.optIn)
        # Not given on the command line: from the file.
        self.assertEqual(config.seeds, ("file-seed.example",))
        self.assertEqual(config.maxDepth, 9)

    def test_commandLineFlagOverridesPositiveKey(self) -> None:
        """
        C{--no-crawl} beats C{crawl = true} in the file.
        """
        path = self.configFile('domain = "a.example"\ncrawl = true\n')
        self.assertFalse(parse("--config", str(path), "--no-crawl").crawl)

    def test_unknownKey(self) -> None:
        """
        An unknown key is an error that names the key and the file.
        """
        path = self.configFile('domain = "a.example"\nsseed = ["b.example"]\n')
        e = self.assertRaises(UsageError, parse, "--config", str(path))
        self.assertIn("'sseed'", str(e))
        self.assertIn(str(path), str(e))
        self.assertIn("'seed'", str(e))  # the suggestion

    def test_configKeyInFile(self) -> None:
        """
        A file cannot name another config file.
        """
        path = self.configFile('config = "other.toml"\n')
        e = self.assertRaises(UsageError, parse, "--config", str(path))
        self.assertIn("'config'", str(e))

    def test_wrongTypes(self) -> None:
        """
        Values of the wrong TOML type are errors that name the key.
        """
        for text, key in [
            ("domain = 5", "domain"),
            ("no-crawl = 1", "no-crawl"),
            ('verbose = "yes"', "verbose"),
            ("max-depth = true", "max-depth"),
            ("route = [1]", "route"),
            ("seed = {a = 1}", "seed"),
            ("contact-abuse = 1", "contact-abuse"),
            ('contact-sales = ["mailto:s@a.example", 2]', "contact-sales"),
            ("pubsub-admin = {jid = 'a@b'}", "pubsub-admin"),
            ("consent-allowlist = ['a.txt']", "consent-allowlist"),
            ("consent-ttl = true", "consent-ttl"),
            ("max-subscriptions-per-domain = [1]", "max-subscriptions-per-domain"),
            ("[s2s]\nport = 1", "s2s"),
        ]:
            path = self.configFile('domain = "a.example"\n' * (key != "domain") + text)
            e = self.assertRaises(UsageError, parse, "--config", str(path))
            self.assertIn(repr(key), str(e), text)

    def test_conflictingKeys(self) -> None:
        """
        Two keys for the same option (C{crawl} and C{no-crawl}) are an error.
        """
        path = self.configFile('domain = "a.example"\ncrawl = true\nno-crawl = true\n')
        e = self.assertRaises(UsageError, parse, "--config", str(path))
        self.assertIn("'crawl'", str(e))
        self.assertIn("'no-crawl'", str(e))

    def test_fileValuesAreChecked(self) -> None:
        """
        Values from the file go through the same checks as the command line.
        """
        path = self.configFile('domain = "a@b.example"\n')
        e = self.assertRaises(UsageError, parse, "--config", str(path))
        self.assertIn("--domain", str(e))

    def test_missingFile(self) -> None:
        """
        A file that cannot be read is a usage error.
        """
        path = self.tempDir() / "absent.toml"
        e = self.assertRaises(UsageError, parse, "--config", str(path))
        self.assertIn("absent.toml", str(e))

    def test_notToml(self) -> None:
        """
        A file that is not TOML is a usage error.
        """
        path = self.configFile("domain = \n")
        e = self.assertRaises(UsageError, parse, "--config", str(path))
        self.assertIn("not TOML", str(e))


class ValidationTests(TempDirMixin, SynchronousTestCase):
    """
    Bad input becomes a L{UsageError} that names the option.
    """

    def assertUsageError(self, fragment: str, *argv: str) -> None:
        """
        Assert that parsing C{argv} fails with a message containing
        C{fragment}.
        """
        e = self.assertRaises(UsageError, parse, *argv)
        self.assertIn(fragment, str(e))

    def test_missingDomain(self) -> None:
        """
        C{--domain} is required.
        """
        self.assertUsageError("--domain is required")

    def test_invalidDomain(self) -> None:
        """
        A JID with a node or resource, an IP address, an empty label or a
        forbidden character is not a domain.
        """
        for bad in [
            "user@a.example",
            "a.example/res",
            "127.0.0.1",
            "a..example",
            "a.example.",
            "a b.example",
            "-a.example",
            "x" * 64 + ".example",
        ]:
            self.assertUsageError("--domain", "--domain", bad)

    def test_invalidSeedAndPubsubHost(self) -> None:
        """
        Seeds and the pubsub host are checked like the domain.
        """
        self.assertUsageError("--seed", "--domain=a.example", "--seed=x@b.example")
        self.assertUsageError("--pubsub-host", "--domain=a.example", "--pubsub-host=p/q")

    def test_pubsubHostIsDomain(self) -> None:
        """
        The pubsub host must be another domain.
        """
        self.assertUsageError(
            "--pubsub-host must differ",
            "--domain=a.example",
            "--pubsub-host=A.example",
        )

    def test_badEndpoints(self) -> None:
        """
        Endpoints that do not parse are rejected, naming the option.
        """
        for option in ["s2s", "s2s-direct-tls", "web"]:
            for bad in ["tcp:notaport", "nosuchtype:1", ""]:
                if bad == "" and option == "s2s-direct-tls":
                    continue  # empty means off
                self.assertUsageError(f"--{option}:", "--domain=a.example", f"--{option}={bad}")

    def test_badRoutes(self) -> None:
        """
        Malformed routes are rejected with the reason.
        """
        for bad, reason in [
            ("b.example", "DOMAIN=HOST:PORT"),
            ("=127.0.0.1:1", "DOMAIN=HOST:PORT"),
            ("b.example=", "DOMAIN=HOST:PORT"),
            ("b.example=127.0.0.1:0", "port"),
            ("b.example=127.0.0.1:70000", "port"),
            ("b.example=127.0.0.1:x", "port"),
            ("b.example=::1:5269", "brackets"),
            ("b.example=[::1:5269", "']'"),
            ("b.example=[127.0.0.1]:1", "IPv6"),
            ("b@x.example=127.0.0.1:1", "bare domain"),
            ("*.=127.0.0.1:1", "empty"),
        ]:
            e = self.assertRaises(UsageError, parse, "--domain=a.example", "--route", bad)
            self.assertIn("--route", str(e), bad)
            self.assertIn(reason, str(e), bad)

    def test_duplicateRoute(self) -> None:
        """
        The same domain cannot be routed twice.
        """
        self.assertUsageError(
            "routed twice",
            "--domain=a.example",
            "--route=b.example=127.0.0.1:1",
            "--route=B.example=127.0.0.2:2",
        )

    def test_certWithoutKey(self) -> None:
        """
        C{--tls-cert} and C{--tls-key} come as a pair.
        """
        cert = self.tempDir() / "cert.pem"
        cert.write_text("")
        self.assertUsageError(
            "--tls-cert and --tls-key", "--domain=a.example", f"--tls-cert={cert}"
        )
        self.assertUsageError("--tls-cert and --tls-key", "--domain=a.example", f"--tls-key={cert}")

    def test_missingFiles(self) -> None:
        """
        Certificate, key and CA files must exist.
        """
        d = self.tempDir()
        there = d / "there.pem"
        there.write_text("")
        absent = str(d / "absent.pem")
        self.assertUsageError(
            "--tls-cert: no such file",
            "--domain=a.example",
            f"--tls-cert={absent}",
            f"--tls-key={there}",
        )
        self.assertUsageError(
            "--tls-key: no such file",
            "--domain=a.example",
            f"--tls-cert={there}",
            f"--tls-key={absent}",
        )
        self.assertUsageError(
            "--ca-file: no such file", "--domain=a.example", f"--ca-file={absent}"
        )

    def test_dataDirIsFile(self) -> None:
        """
        The data directory cannot be an existing file.
        """
        f = self.tempDir() / "file"
        f.write_text("")
        self.assertUsageError("--data-dir", "--domain=a.example", f"--data-dir={f}")

    def test_badDatabase(self) -> None:
        """
        Only C{sqlite:///PATH} and C{postgresql://} URLs are accepted.
        """
        for bad in [
            "mysql://db/graph",
            "graph.db",
            "sqlite://host/graph.db",
            "sqlite://",
            "sqlite:///",
        ]:
            self.assertUsageError("--database", "--domain=a.example", f"--database={bad}")

    def test_badNumbers(self) -> None:
        """
        Sizes and durations must be positive (and sizes whole) numbers.
        """
        for option, bad in [
            ("max-stanza-size", "big"),
            ("max-stanza-size", "0"),
            ("max-stanza-size", "1.5"),
            ("queue-limit", "-1"),
            ("idle-timeout", "soon"),
            ("idle-timeout", "0"),
            ("idle-timeout", "inf"),
            ("iq-timeout", "nan"),
        ]:
            self.assertUsageError(f"--{option}", "--domain=a.example", f"--{option}={bad}")

    def test_badPublishingNumbers(self) -> None:
        """
        The publishing limits must be positive (and the subscription limit
        whole) numbers.
        """
        for option, bad in [
            ("consent-ttl", "0"),
            ("consent-ttl", "an hour"),
            ("publish-delay", "-2"),
            ("publish-delay", "inf"),
            ("publish-refresh", "0"),
            ("publish-refresh", "nan"),
            ("max-subscriptions-per-domain", "0"),
            ("max-subscriptions-per-domain", "2.5"),
            ("max-subscriptions-per-domain", "many"),
        ]:
            self.assertUsageError(
                f"--{option}: expected", "--domain=a.example", f"--{option}={bad}"
            )

    def test_badContactURIs(self) -> None:
        """
        A contact address must be a URI with a scheme, without spaces or
        control characters; the error names the option and the value.
        """
        for bad in [
            "abuse@a.example",
            "a.example/abuse",
            "",
            "mailto:",
            "1tel:+1-555-0100",
            ":abuse@a.example",
            "mailto:abuse @a.example",
            "https://a.example/\n",
            "xmpp:abuse@a.example\x00",
        ]:
            for option in CONTACT_OPTIONS:
                e = self.assertRaises(UsageError, parse, "--domain=a.example", f"--{option}", bad)
                self.assertIn(f"--{option}:", str(e), bad)
                self.assertIn(repr(bad), str(e), bad)

    def test_goodContactURIs(self) -> None:
        """
        URIs of the usual schemes are accepted unchanged.
        """
        uris = (
            "mailto:abuse@a.example",
            "xmpp:abuse@a.example?message",
            "https://a.example/abuse",
            "http://a.example/",
            "tel:+1-555-0100",
            "sip:abuse@a.example",
            "mailto:bücher@bücher.example",
        )
        config = parse("--domain=a.example", *[f"--contact-abuse={uri}" for uri in uris])
        self.assertEqual(config.contacts, (("abuse-addresses", uris),))

    def test_badPubsubAdmins(self) -> None:
        """
        C{--pubsub-admin} takes bare JIDs only; the error says why.
        """
        for bad, reason in [
            ("", "empty domain"),
            ("admin@", "empty domain"),
            ("@a.example", "empty user part"),
            ("admin@a.example/laptop", "has a resource"),
            ("a.example/", "has a resource"),
            ("a b@a.example", "not a valid JID"),
            ('a"b@a.example', "not a valid JID"),
            ("a@b@a.example", "not a valid JID"),
            ("admin@a..example", "empty label"),
            ("admin@127.0.0.1", "IP address"),
        ]:
            e = self.assertRaises(UsageError, parse, "--domain=a.example", "--pubsub-admin", bad)
            self.assertIn("--pubsub-admin:", str(e), bad)
            self.assertIn(reason, str(e), bad)

    def test_missingAllowlist(self) -> None:
        """
        The consent allowlist must be an existing file.
        """
        d = self.tempDir()
        self.assertUsageError(
            "--consent-allowlist: no such file",
            "--domain=a.example",
            f"--consent-allowlist={d / 'absent.txt'}",
        )
        self.assertUsageError(
            "--consent-allowlist: no such file",
            "--domain=a.example",
            f"--consent-allowlist={d}",
        )

    def test_badAllowlist(self) -> None:
        """
        An allowlist with a line that is not a domain is refused with
        L{loadAllowlist}'s message, which names the file and the line.
        """
        path = self.tempDir() / "allow.txt"
        path.write_text("b.example\n# fine\nuser@c.example\n")
        e = self.assertRaises(
            UsageError,
            parse,
            "--domain=a.example",
            f"--consent-allowlist={path}",
        )
        self.assertIn("--consent-allowlist:", str(e))
        self.assertIn(f"{path}:3:", str(e))
        self.assertIn("bare domain", str(e))

    def test_allowlistNotText(self) -> None:
        """
        An allowlist that is not UTF-8 text is refused, naming the file.
        """
        path = self.tempDir() / "allow.bin"
        path.write_bytes(b"b.example\n\xff\xfe\n")
        e = self.assertRaises(
            UsageError,
            parse,
            "--domain=a.example",
            f"--consent-allowlist={path}",
        )
        self.assertIn("--consent-allowlist:", str(e))
        self.assertIn(str(path), str(e))
        self.assertIn("UTF-8", str(e))

    def test_unreadableAllowlist(self) -> None:
        """
        An allowlist that cannot be read is refused, naming the file and
        the reason.
        """
        path = self.tempDir() / "allow.txt"
        path.write_text("b.example\n")

        def loadAllowlist(p: object) -> frozenset[str]:
            raise PermissionError(13, "Permission denied", str(p))

        self.patch(configModule, "loadAllowlist", loadAllowlist)
        e = self.assertRaises(
            UsageError,
            parse,
            "--domain=a.example",
            f"--consent-allowlist={path}",
        )
        self.assertEqual(
            str(e),
            f"--consent-allowlist: cannot read {str(path)!r}: Permission denied",
        )

    def test_emptyDialbackSecret(self) -> None:
        """
        An empty dialback secret is refused.
        """
        self.assertUsageError("--dialback-secret", "--domain=a.example", "--dialback-secret=")

    def test_unknownOption(self) -> None:
        """
        Unknown options are refused by the parser.
        """
        self.assertRaises(UsageError, parse, "--domain=a.example", "--nosuch")


class HelpTests(SynchronousTestCase):
    """
    C{--help} documents the command line.
    """

    def test_contractOptionsListed(self) -> None:
        """
        Every option of the DESIGN.md contract, and every extra one, is in
        the help text.
        """
        usage = str(Options())
        listed = {
            word.split("=")[0][2:]
            for line in usage.splitlines()
            for word in line.replace(",", " ").split()[:2]
            if word.startswith("--")
        }
        for option in CONTRACT_OPTIONS + EXTRA_OPTIONS + PUBLISHING_OPTIONS:
            self.assertIn(option, listed)

    def test_everyOptionDocumented(self) -> None:
        """
        No option is listed without a description.
        """
        options = Options()
        for option in CONTRACT_OPTIONS + EXTRA_OPTIONS + PUBLISHING_OPTIONS:
            self.assertTrue(options.docs.get(option), option)

    def test_repeatableOptionsSayItself(self) -> None:
        """
        The help for C{--pubsub-admin} and each C{--contact-*} option says
        that it can be given more than once.
        """
        options = Options()
        for option in CONTACT_OPTIONS + ["pubsub-admin"]:
            self.assertIn("Repeatable", options.docs[option], option)

    def test_contactURIsExplained(self) -> None:
        """
        The help text says that contact addresses are URIs with a scheme.
        """
        usage = " ".join(str(Options()).split())
        self.assertIn("--contact-* options take URIs with a scheme", usage)

    def test_plaintextIsForTesting(self) -> None:
        """
        The help for C{--allow-plaintext} says it is for testing.
        """
        self.assertIn("testing only", Options().docs["allow-plaintext"])


class ToConfigTests(SynchronousTestCase):
    """
    L{toConfig} and L{Options.config}.
    """

    def test_sameAsPostOptions(self) -> None:
        """
        L{toConfig} rebuilds the configuration that L{Options.postOptions}
        stored.
        """
        options = Options()
        options.parseOptions(["--domain=a.example", "--seed=b.example"])
        self.assertEqual(toConfig(options), options.config)


class MakeServiceTests(SynchronousTestCase):
    """
    L{makeService} hands the configuration and the global reactor to
    L{xmppnetgraph.node.buildService}.
    """

    def setUp(self) -> None:
        """
        L{makeService} tunes the process's garbage collector: put it back.
        """
        import gc

        threshold = gc.get_threshold()

        def restore() -> None:
            gc.unfreeze()
            gc.set_threshold(*threshold)

        self.addCleanup(restore)

    def test_tunesGarbageCollector(self) -> None:
        """
        Under twistd the collector runs young collections every 50,000
        allocations and start-up objects are frozen.
        """
        import gc

        from xmppnetgraph.tap import tuneGarbageCollector

        tuneGarbageCollector()
        self.assertEqual(gc.get_threshold(), (50_000, 50, 50))
        self.assertGreater(gc.get_freeze_count(), 0)

    def test_buildService(self) -> None:
        """
        L{makeService} wraps what C{buildService(config, reactor)} returns
        in a L{CommandLineService}, and raises the open-files limit, and
        adds the L{FreedMemoryReleaser}.
        """
        from twisted.internet import reactor

        calls = []
        built = MultiService()
        built.core = types.SimpleNamespace(feed=ChangeFeed())  # type: ignore[attr-defined]

        def buildService(config: Config, reactor: object) -> MultiService:
            calls.append((config, reactor))
            return built

        fake = types.ModuleType("xmppnetgraph.node")
        fake.buildService = buildService  # type: ignore[attr-defined]
        missing = object()
        saved = sys.modules.get("xmppnetgraph.node", missing)
        sys.modules["xmppnetgraph.node"] = fake

        def restore() -> None:
            if saved is missing:
                del sys.modules["xmppnetgraph.node"]
            else:
                sys.modules["xmppnetgraph.node"] = saved  # type: ignore[assignment]

        self.addCleanup(restore)

        import xmppnetgraph.tap

        raised: list[bool] = []
        self.patch(xmppnetgraph.tap, "raiseFileLimit", lambda: raised.append(True))
        options = Options()
        options.parseOptions(["--domain=a.example"])
        service = makeService(options)
        self.assertIsInstance(service, CommandLineService)
        self.assertEqual(raised, [True])
        import gc

        self.assertEqual(gc.get_threshold()[0], 50_000)
        children = list(service)  # type: ignore[call-overload]
        self.assertEqual(children[0], built)
        self.assertEqual([type(c) for c in children[1:]], [FreedMemoryReleaser])
        self.assertTrue(IService.providedBy(service))
        self.assertEqual(calls, [(options.config, reactor)])

    def test_unusableDataDirExits(self) -> None:
        """
        A data directory that cannot be created ends the program with a
        one-line message naming it.
        """
        blocker = Path(self.mktemp())
        blocker.write_text("a file")
        options = Options()
        options.parseOptions(["--domain=a.example", f"--data-dir={blocker}/sub"])
        exc = self.assertRaises(SystemExit, makeService, options)
        self.assertIn(f"{blocker}/sub", str(exc.code))

    def test_busyPortExits(self) -> None:
        """
        A port that is taken ends the program with a one-line message
        naming the endpoint.
        """
        import socket

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            options = Options()
            options.parseOptions(
                [
                    "--domain=a.example",
                    f"--data-dir={self.mktemp()}",
                    f"--s2s=tcp:{port}:interface=127.0.0.1",
                    "--no-web",
                ]
            )
            service = makeService(options)
            exc = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(
            exc.code,
            f"xmppnetgraph: cannot listen for s2s on tcp:{port}:interface=127.0.0.1: "
            "Address already in use",
        )


class NormalizeDomainTests(SynchronousTestCase):
    """
    L{normalizeDomain}.
    """

    def test_caseFolded(self) -> None:
        """
        Domains are case-folded.
        """
        self.assertEqual(normalizeDomain("Example.ORG"), "example.org")

    def test_singleLabel(self) -> None:
        """
        A single label such as C{localhost} is a domain.
        """
        self.assertEqual(normalizeDomain("localhost"), "localhost")

    def test_rejects(self) -> None:
        """
        Empty strings, JIDs and IP addresses raise L{ValueError}.
        """
        for bad in ["", "a@b", "b/c", "::1", "10.0.0.1", "a_b.example"]:
            self.assertRaises(ValueError, normalizeDomain, bad)


class ParseRouteTests(SynchronousTestCase):
    """
    L{parseRoute}.
    """

    def test_hostAndPort(self) -> None:
        """
        C{DOMAIN=HOST:PORT} with a host name.
        """
        self.assertEqual(
            parseRoute("B.example=Host.example:15269"),
            Route("b.example", "host.example", 15269),
        )

    def test_defaultPort(self) -> None:
        """
        Without a port, 5269.
        """
        self.assertEqual(parseRoute("b.example=127.0.0.2"), Route("b.example", "127.0.0.2", 5269))
        self.assertEqual(parseRoute("b.example=[::1]"), Route("b.example", "::1", 5269))

    def test_ipv6(self) -> None:
        """
        IPv6 addresses are written in brackets and stored without them.
        """
        self.assertEqual(parseRoute("b.example=[0:0::1]:5270"), Route("b.example", "::1", 5270))

    def test_wildcard(self) -> None:
        """
        C{*.suffix} patterns keep their star and match subdomains only.
        """
        route = parseRoute("*.Test.example=127.0.0.1:1")
        self.assertEqual(route.pattern, "*.test.example")
        self.assertTrue(route.matches("a.test.example"))
        self.assertFalse(route.matches("test.example"))

    def test_whitespace(self) -> None:
        """
        Spaces around C{=} are allowed (handy in TOML lists).
        """
        self.assertEqual(parseRoute("b.example = 127.0.0.2:1"), Route("b.example", "127.0.0.2", 1))


class DeclarationTests(SynchronousTestCase):
    """
    Every setting is declared once, on L{Config}, and the command line, the
    C{--config} keys and README's table follow from the declarations.
    """

    def test_everyFieldDeclared(self) -> None:
        """
        Every field of L{Config} declares at least one option, and no two
        options share a name (with each other or with C{--config}).
        """
        declared = settings()
        self.assertEqual([f.name for f, _ in declared], [f.name for f in attrs.fields(Config)])
        names = [option.name for _, setting in declared for option in setting.options]
        self.assertTrue(all(setting.options for _, setting in declared))
        self.assertEqual(len(names), len(set(names + [CONFIG_OPTION.name])) - 1)

    def test_everyOptionOnTheCommandLine(self) -> None:
        """
        Each declared option is one of L{Options}'s, with its help text; a
        switch also has its C{--no-} form.
        """
        options = Options()
        for _, setting in settings():
            for option in setting.options:
                self.assertTrue(options.docs.get(option.name), option.name)
                self.assertTrue(options.docs[option.name].startswith(option.help), option.name)
                if option.kind == "switch":
                    self.assertIn("no-" + option.name, options.docs)
        self.assertIn("config", options.docs)

    def test_readmeTable(self) -> None:
        """
        README's Configuration section holds exactly the table that
        L{optionsTable} renders: one row per option, with its default.
        """
        text = README.read_text("utf-8")
        section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
        table = "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))
        self.assertEqual(
            table,
            optionsTable(),
            "README.md is out of step with the options: paste in the output of "
            "python -c 'from xmppnetgraph.tap import optionsTable; print(optionsTable())'",
        )

    def test_tableRows(self) -> None:
        """
        The table has one row per option and shows defaults, C{--config}
        aliases and the repeatable options.
        """
        rows = optionsTable().splitlines()[2:]
        declared = [o for _, s in settings() for o in s.options] + [CONFIG_OPTION]
        self.assertEqual([row.split("`")[1] for row in rows], [f"--{o.name}" for o in declared])
        byOption = {row.split("`")[1]: row for row in rows}
        self.assertIn("| `tcp:5269` |", byOption["--s2s"])
        self.assertIn("| `3600` |", byOption["--consent-ttl"])
        self.assertIn(f"| `{DEFAULT_DATA_DIR}` |", byOption["--data-dir"])
        self.assertIn("| (required) |", byOption["--domain"])
        self.assertIn("`no-crawl = true` or `crawl = false`", byOption["--no-crawl"])
        self.assertIn("`no-web = true` or `web = false`", byOption["--no-web"])
        self.assertIn("`opt-in = false` or `no-opt-in = true`", byOption["--opt-in"])
        self.assertIn("Repeatable.", byOption["--route"])
        self.assertIn("\\*.suffix", byOption["--route"])


class ConfigValidationTests(TempDirMixin, SynchronousTestCase):
    """
    L{Config} itself converts and checks its values: an embedder gets the
    command line's errors, as L{ValueError}.
    """

    def assertSameError(self, argv: list[str], values: dict[str, Any]) -> str:
        """
        Assert that parsing C{argv} and building C{Config(**values)} fail
        with the same message.

        @return: the message.
        """
        usageError = self.assertRaises(UsageError, parse, *argv)
        values = {"domain": "a.example", "dataDir": Path("unused"), **values}
        valueError = self.assertRaises(ValueError, Config, **values)
        self.assertEqual(str(valueError), str(usageError))
        return str(valueError)

    def test_sameErrors(self) -> None:
        """
        Each check gives the same message from the command line and from
        L{Config}.
        """
        d = self.tempDir()
        cert = d / "cert.pem"
        cert.write_text("")
        badList = d / "allow.txt"
        badList.write_text("user@b.example\n")
        cases: list[tuple[list[str], dict[str, Any], str]] = [
            (["--domain=a b"], {"domain": "a b"}, "--domain: 'a b' is not a valid domain"),
            (["--domain="], {"domain": ""}, "--domain is required"),
            (["--domain=faß.de"], {"domain": "faß.de"}, "--domain: 'faß.de' cannot be served"),
            (
                ["--domain=a.example", "--pubsub-host=ps.faß.de"],
                {"pubsubHost": "ps.faß.de"},
                "--pubsub-host: 'ps.faß.de' cannot be served",
            ),
            (
                ["--domain=a.example", "--pubsub-host=A.example"],
                {"pubsubHost": "A.example"},
                "must differ",
            ),
            (
                ["--domain=a.example", "--s2s=tcp:x"],
                {"s2s": "tcp:x"},
                "--s2s: 'tcp:x' is not a valid",
            ),
            (["--domain=a.example", "--web="], {"web": ""}, "--web:"),
            (
                ["--domain=a.example", "--database=graph.db"],
                {"database": "graph.db"},
                "--database:",
            ),
            (["--domain=a.example", f"--tls-cert={cert}"], {"tlsCert": cert}, "go together"),
            (
                ["--domain=a.example", f"--tls-cert={cert}", f"--tls-key={d / 'no'}"],
                {"tlsCert": cert, "tlsKey": d / "no"},
                "--tls-key: no such file",
            ),
            (["--domain=a.example", f"--ca-file={d}"], {"caFile": d}, "--ca-file: no such file"),
            (["--domain=a.example", f"--data-dir={cert}"], {"dataDir": cert}, "not a directory"),
            (
                ["--domain=a.example", "--route=b.example=[::1:5269"],
                {"routes": ["b.example=[::1:5269"]},
                "--route: ",
            ),
            (
                [
                    "--domain=a.example",
                    "--route=b.example=h.example",
                    "--route=B.example=g.example",
                ],
                {"routes": [Route("b.example", "h.example", 5269), "B.example=g.example"]},
                "routed twice",
            ),
            (["--domain=a.example", "--seed=b@c.example"], {"seeds": ["b@c.example"]}, "--seed:"),
            (["--domain=a.example", "--dialback-secret="], {"dialbackSecret": ""}, "empty"),
            (["--domain=a.example", "--max-depth=0"], {"maxDepth": "0"}, "--max-depth: expected"),
            (["--domain=a.example", "--queue-limit=1.5"], {"queueLimit": "1.5"}, "an integer"),
            (["--domain=a.example", "--iq-timeout=inf"], {"iqTimeout": "inf"}, "--iq-timeout:"),
            (
                ["--domain=a.example", "--contact-admin=admin@a.example"],
                {"contacts": [("admin-addresses", ["admin@a.example"])]},
                "--contact-admin: 'admin@a.example' is not a URI",
            ),
            (
                ["--domain=a.example", "--pubsub-admin=a@b/c"],
                {"pubsubAdmins": ["a@b/c"]},
                "--pubsub-admin: 'a@b/c' has a resource",
            ),
            (
                ["--domain=a.example", f"--consent-allowlist={badList}"],
                {"consentAllowlist": badList},
                f"--consent-allowlist: {badList}:1:",
            ),
        ]
        for argv, values, fragment in cases:
            self.assertIn(fragment, self.assertSameError(argv, values), argv)

    def test_typedValues(self) -> None:
        """
        Numbers given as numbers are checked like the strings of the
        command line.
        """
        for name, bad in [
            ("maxStanzaSize", 0),
            ("maxStanzaSize", 1.5),
            ("maxStanzaSize", True),
            ("idleTimeout", float("inf")),
            ("idleTimeout", -1),
            ("idleTimeout", "soon"),
            ("publishDelay", None),
        ]:
            e = self.assertRaises(
                ValueError, Config, domain="a.example", dataDir=Path("unused"), **{name: bad}
            )
            self.assertIn("greater than 0", str(e), (name, bad))
        config = Config(domain="a.example", dataDir=Path("unused"), idleTimeout=2, maxDepth=3)
        self.assertEqual((config.idleTimeout, config.maxDepth), (2.0, 3))
        self.assertIsInstance(config.idleTimeout, float)

    def test_wrongTypes(self) -> None:
        """
        Values of the wrong type are L{ValueError}s that name the option.
        """
        for name, bad, option in [
            ("domain", 5, "--domain"),
            ("crawl", "yes", "--no-crawl"),
            ("optIn", 1, "--opt-in"),
            ("dataDir", 3, "--data-dir"),
            ("seeds", "b.example", "--seed"),
            ("pubsubAdmins", [1], "--pubsub-admin"),
            ("routes", "b.example=h.example", "--route"),
            ("contacts", [("nosuch-addresses", ["mailto:a@b"])], "--contact-abuse"),
            ("contacts", [("abuse-addresses", "mailto:a@b")], "--contact-abuse"),
        ]:
            values: dict[str, Any] = {"domain": "a.example", "dataDir": Path("unused"), name: bad}
            e = self.assertRaises(ValueError, Config, **values)
            self.assertIn(option, str(e), (name, bad))

    def test_normalised(self) -> None:
        """
        L{Config} normalises what it is given: names, paths, routes (as
        text too), lists of repeated seeds, admins and contact addresses.
        """
        # Lists and route texts are what a --config file gives; typed as
        # Any because the field types say what Config holds, not takes.
        values: dict[str, Any] = {
            "routes": ["B.example=Host.example:5270", Route("*.C.example", "0:0::1", 1)],
            "seeds": ["B.example", "b.example"],
            "pubsubAdmins": ["Boss@B.example", "boss@b.example"],
            "contacts": [
                ("support-addresses", ["https://a/", "https://a/"]),
                ("abuse-addresses", ["mailto:x@y"]),
                ("admin-addresses", []),
            ],
        }
        config = Config(
            domain="Node.Example",
            dataDir=Path("state"),
            pubsubHost="PS.node.example",
            s2sDirectTLS="",
            database="",
            **values,
        )
        self.assertEqual(config.domain, "node.example")
        self.assertEqual(config.dataDir, Path.cwd() / "state")
        self.assertEqual(config.pubsubHost, "ps.node.example")
        self.assertEqual(
            config.routes,
            (Route("b.example", "host.example", 5270), Route("*.c.example", "::1", 1)),
        )
        self.assertEqual(config.seeds, ("b.example",))
        self.assertEqual(config.pubsubAdmins, ("boss@b.example",))
        self.assertEqual(
            config.contacts,
            (("abuse-addresses", ("mailto:x@y",)), ("support-addresses", ("https://a/",))),
        )
        self.assertIsNone(config.s2sDirectTLS)
        self.assertIsNone(config.database)
        self.assertEqual(attrs.evolve(config), config)

    def test_route(self) -> None:
        """
        L{Route} normalises and checks its own fields.
        """
        self.assertEqual(
            Route("B.example", "Host.example", "5270"), Route("b.example", "host.example", 5270)
        )
        for pattern, host, port in [
            ("b@x.example", "h.example", 1),
            ("b.example", "a b", 1),
            ("b.example", "h.example", 0),
            ("b.example", "h.example", 65536),
            ("b.example", "h.example", "x"),
        ]:
            self.assertRaises(ValueError, Route, pattern, host, port)
