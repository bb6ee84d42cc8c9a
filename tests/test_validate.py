"""reconciler.mox.validate(_static) against mox's rules (mox-/config.go prepareDynamicConfig,
PrepareStaticConfig): golden configs pass, every rule rejects.

Each rule has an invalid variant (must give the expected mox message) and a valid twin built the
same way (must give no error at all), on a real golden config dir with real key files.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, strategies

from reconciler.errors import ConfigInvalid
from reconciler.mox.admin import canonical_address
from reconciler.mox.config import (
    DKIM,
    DMARC,
    MTASTS,
    TLSRPT,
    Alias,
    AutomaticJunkFlags,
    Destination,
    Dynamic,
    IncomingWebhook,
    InitialMailboxes,
    JunkFilter,
    JunkParams,
    ListenerWebserver,
    ListenerWellKnown,
    OutgoingWebhook,
    Route,
    Ruleset,
    Selector,
    Static,
    Transport,
    TransportDirect,
    TransportSMTP,
    WebForward,
    WebHandler,
    WebInternal,
    WebRedirect,
    WebStatic,
)
from reconciler.mox.golang import go_quote
from reconciler.mox.keyfiles import KeyCache, KeyFileError, load_dkim_private_key
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.mox.names import Address, ParseError, parse_address, parse_domain, parse_localpart
from reconciler.mox.validate import (
    check_live,
    require_valid,
    validate_dynamic,
    validate_static,
)

from .conftest import GOLDEN_STEPS, build_step_config

replace = dataclasses.replace
Cfg = tuple[Static, Dynamic]
Mut = Callable[[Cfg, Path], Cfg]


# ---------------------------------------------------------------------------------------------
# Golden configs


@pytest.mark.parametrize("step", GOLDEN_STEPS, ids=lambda p: p.name)
def test_golden_configs_are_valid(step: Path, tmp_path: Path) -> None:
    live = read_live(ConfigPaths(build_step_config(step, tmp_path)))
    assert check_live(live) == []
    v = require_valid(live.static, live.dynamic, live.paths.config_dir)
    assert v.errors == []
    # The host TLSRPT address is always indexed, for the HostTLSRPT account.
    assert v.addresses["tlsreports@mail.example.org"] == "admin"
    # The bootstrap domain has no address of its own.
    assert v.reports_only == {"mail.example.org"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Static, Dynamic, Path]:
    """Step 13: 4 domains (IDN, disabled), RSA + Ed25519 selectors, alias, catchall, José."""
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("13")]
    live = read_live(ConfigPaths(build_step_config(step, tmp_path_factory.mktemp("base"))))
    return live.static, live.dynamic, live.paths.config_dir


def test_index_and_aliases(base: tuple[Static, Dynamic, Path]) -> None:
    static, dyn, cdir = base
    v = validate_dynamic(static, dyn, cdir)
    assert v.errors == []
    assert v.addresses["@example.org"] == "alice"
    assert v.addresses["josé@café.example"] == "bob"  # canonical: lower-cased
    assert "José@café.example" not in v.addresses
    assert v.addresses["dmarcreports@example.net"] == "admin"
    assert v.aliases == {"team@example.org": ("example.org", "team")}
    assert v.reports_only == {"mail.example.org"}


# ---------------------------------------------------------------------------------------------
# Mutation helpers


def dom(name: str, **ch: Any) -> Mut:
    def m(c: Cfg, _: Path) -> Cfg:
        s, d = c
        doms = dict(d.Domains)
        doms[name] = replace(doms[name], **ch)
        return s, replace(d, Domains=doms)

    return m


def add_dom(name: str, **ch: Any) -> Mut:
    def m(c: Cfg, _: Path) -> Cfg:
        s, d = c
        from reconciler.mox.config import Domain

        return s, replace(d, Domains={**d.Domains, name: Domain(**ch)})

    return m


def acc(name: str, **ch: Any) -> Mut:
    def m(c: Cfg, _: Path) -> Cfg:
        s, d = c
        accs = dict(d.Accounts)
        accs[name] = replace(accs[name], **ch)
        return s, replace(d, Accounts=accs)

    return m


def dest(account: str, key: str, value: Destination | None = None) -> Mut:
    def m(c: Cfg, _: Path) -> Cfg:
        s, d = c
        a = d.Accounts[account]
        ds = dict(a.Destinations)
        ds[key] = value or Destination()
        accs = {**d.Accounts, account: replace(a, Destinations=ds)}
        return s, replace(d, Accounts=accs)

    return m


def rm_dest(account: str, key: str) -> Mut:
    def m(c: Cfg, _: Path) -> Cfg:
        s, d = c
        a = d.Accounts[account]
        ds = {k: v for k, v in a.Destinations.items() if k != key}
        return s, replace(d, Accounts={**d.Accounts, account: replace(a, Destinations=ds)})

    return m


def top(**ch: Any) -> Mut:
    return lambda c, _: (c[0], replace(c[1], **ch))


def static(**ch: Any) -> Mut:
    return lambda c, _: (replace(c[0], **ch), c[1])


def seq(*ms: Mut) -> Mut:
    def m(c: Cfg, p: Path) -> Cfg:
        for f in ms:
            c = f(c, p)
        return c

    return m


def selector(
    domain: str,
    name: str,
    sel: Selector | None = None,
    *,
    sign: tuple[str, ...] | None = None,
    keyfile: Callable[[Path], Path] | None = None,
    **ch: Any,
) -> Mut:
    """Add or change a selector; `keyfile(tmp)` writes a key file and returns its (absolute) path."""

    def m(c: Cfg, p: Path) -> Cfg:
        s, d = c
        dc = d.Domains[domain]
        sels = dict(dc.DKIM.Selectors)
        cur = sel or sels.get(name) or sels["2026a"]
        if keyfile is not None:
            cur = replace(cur, PrivateKeyFile=str(keyfile(p)))
        sels[name] = replace(cur, **ch)
        dk = DKIM(Selectors=sels, Sign=dc.DKIM.Sign if sign is None else sign)
        return s, replace(d, Domains={**d.Domains, domain: replace(dc, DKIM=dk)})

    return m


def pem_pkcs8(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def write_key(name: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], Path]:
    def w(p: Path) -> Path:
        f = p / name
        f.write_bytes(data() if callable(data) else data)
        return f

    return w


def rsa_key(bits: int) -> Callable[[], bytes]:
    return lambda: pem_pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def openssl_key(args: list[str]) -> Callable[[], bytes]:
    """A key produced by the openssl CLI (real external tool, e.g. for 512-bit RSA and PKCS#1)."""
    return lambda: subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


def pkcs1_rsa() -> bytes:
    k = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return k.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def ecdsa_pkcs8() -> bytes:
    return pem_pkcs8(ec.generate_private_key(ec.SECP256R1()))


def ed25519_pkcs8() -> bytes:
    return pem_pkcs8(ed25519.Ed25519PrivateKey.generate())


def listeners(**public_changes: Any) -> Mut:
    def m(c: Cfg, _: Path) -> Cfg:
        s, d = c
        ls = dict(s.Listeners)
        ls["public"] = replace(ls["public"], **public_changes)
        return replace(s, Listeners=ls), d

    return m


WEB_ON = listeners(WebserverHTTP=ListenerWebserver(Enabled=True, Port=10081))
WITH_TRANSPORT = static(Transports={"direct": Transport(Direct=TransportDirect())})
OK: Mut = seq()  # no change


def handler(**ch: Any) -> Mut:
    base_h = WebHandler(Domain="www.example.org", PathRegexp="^/", WebStatic=WebStatic(Root="/srv/www"))
    return seq(WEB_ON, top(WebHandlers=(replace(base_h, **ch),)))


def ruleset(**ch: Any) -> Mut:
    ch.setdefault("Mailbox", "Lists")
    return dest("bob", "bob@example.org", Destination(Rulesets=(Ruleset(**ch),)))


def _ajf() -> AutomaticJunkFlags:
    return AutomaticJunkFlags(Enabled=True, JunkMailboxRegexp="^(junk|spam)")


JF = JunkFilter(Threshold=0.95, Params=JunkParams(Onegrams=True, MaxPower=0.01, TopWords=10))


# ---------------------------------------------------------------------------------------------
# The rules: (id, invalid variant, valid twin, expected error substring)

RULES: list[tuple[str, Mut, Mut, str]] = [
    # 3.1 global
    (
        "postmaster-account",
        static(Postmaster=replace(Static().Postmaster, Account="nobody", Mailbox="P")),
        static(Postmaster=replace(Static().Postmaster, Account="bob", Mailbox="P")),
        'postmaster account "nobody" does not exist',
    ),
    (
        "postmaster-mailbox-nfc",
        static(Postmaster=replace(Static().Postmaster, Account="admin", Mailbox="Cafe\u0301")),
        static(Postmaster=replace(Static().Postmaster, Account="admin", Mailbox="Caf\u00e9")),
        'postmaster mailbox: mailbox "Cafe\u0301" is not in NFC normalized form, should be "Caf\u00e9"',
    ),
    (
        "host-tlsrpt-account",
        lambda c, _: (replace(c[0], HostTLSRPT=replace(c[0].HostTLSRPT, Account="x")), c[1]),
        lambda c, _: (replace(c[0], HostTLSRPT=replace(c[0].HostTLSRPT, Account="bob")), c[1]),
        'host tlsrpt account "x" does not exist',
    ),
    (
        "host-tlsrpt-mailbox-nfc",
        lambda c, _: (replace(c[0], HostTLSRPT=replace(c[0].HostTLSRPT, Mailbox="A\u030a")), c[1]),
        lambda c, _: (replace(c[0], HostTLSRPT=replace(c[0].HostTLSRPT, Mailbox="\u00c5")), c[1]),
        "host tlsrpt mailbox: mailbox",
    ),
    # 3.2 routes
    (
        "global-route-transport",
        top(Routes=(Route(Transport="nope"),)),
        seq(WITH_TRANSPORT, top(Routes=(Route(Transport="direct"),))),
        "global routes: route references undefined transport nope",
    ),
    (
        "global-route-empty-transport",
        seq(WITH_TRANSPORT, top(Routes=(Route(),))),
        seq(WITH_TRANSPORT, top(Routes=(Route(Transport="direct"),))),
        "global routes: route references undefined transport ",
    ),
    (
        "global-route-domain",
        seq(WITH_TRANSPORT, top(Routes=(Route(FromDomain=("a_b.example",), Transport="direct"),))),
        seq(WITH_TRANSPORT, top(Routes=(Route(FromDomain=(".", ".ab.example"), Transport="direct"),))),
        "global routes: invalid domain a_b.example: idna: to ascii: idna: disallowed rune U+005F",
    ),
    (
        "domain-route",
        seq(
            WITH_TRANSPORT, dom("example.org", Routes=(Route(ToDomain=(".-x.example",), Transport="direct"),))
        ),
        seq(
            WITH_TRANSPORT, dom("example.org", Routes=(Route(ToDomain=(".x.example",), Transport="direct"),))
        ),
        "routes for domain: invalid domain -x.example: idna",
    ),
    (
        "account-route",
        acc("bob", Routes=(Route(Transport="t2"),)),
        seq(
            static(Transports={"t2": Transport(Direct=TransportDirect())}),
            acc("bob", Routes=(Route(Transport="t2"),)),
        ),
        "routes for account: route references undefined transport t2",
    ),
    # 3.3 domains
    (
        "domain-parse",
        add_dom("bad_domain.example"),
        add_dom("good-domain.example"),
        "domain bad_domain.example: parsing domain: idna: to ascii: idna: disallowed rune U+005F",
    ),
    (
        "domain-unicode-form",
        add_dom("Upper.example"),
        add_dom("upper.example"),
        "domain Upper.example: must be specified in unicode form, upper.example",
    ),
    (
        "domain-xn-form",
        add_dom("xn--mnchen-3ya.example"),
        add_dom("münchen.example"),
        "domain xn--mnchen-3ya.example: must be specified in unicode form, münchen.example",
    ),
    (
        "domain-trailing-dot",
        add_dom("x.example."),
        add_dom("x.example"),
        "domain x.example.: parsing domain: dns name has trailing dot",
    ),
    (
        "domain-percent-reformatted",
        add_dom("a%b.example"),
        add_dom("ab.example"),
        "domain a%!b(MISSING).example: parsing domain",
    ),
    (
        "client-settings-domain",
        dom("example.org", ClientSettingsDomain="mail_x.example.org"),
        dom("example.org", ClientSettingsDomain="mail-x.example.org"),
        'domain example.org: bad client settings domain "mail_x.example.org": idna',
    ),
    (
        "both-separators",
        dom("example.org", LocalpartCatchallSeparators=("-",)),
        dom("example.org", LocalpartCatchallSeparator="", LocalpartCatchallSeparators=("-", "+")),
        "domain example.org: cannot have both LocalpartCatchallSeparator and LocalpartCatchallSeparators",
    ),
    (
        "duplicate-separator",
        dom("example.org", LocalpartCatchallSeparator="", LocalpartCatchallSeparators=("+", "+")),
        dom("example.org", LocalpartCatchallSeparator="", LocalpartCatchallSeparators=("+", "-")),
        'domain example.org: duplicate localpart catchall separator "+"',
    ),
    (
        "dkim-sign-unknown",
        selector("example.org", "2026a", sign=("2026a", "nope")),
        selector("example.org", "2026a", sign=("2026a", "2026b")),
        "domain example.org: unknown selector nope for signing",
    ),
    (
        "selector-parse",
        selector("example.org", "bad_sel"),
        selector("example.org", "goodsel"),
        "domain example.org: selector bad_sel: parsing selector: idna",
    ),
    (
        "selector-unicode-form",
        selector("example.org", "Sel"),
        selector("example.org", "sel"),
        'domain example.org: selector Sel: must be specified in unicode form, "sel"',
    ),
    (
        "selector-expiration",
        selector("example.org", "2026a", Expiration="3d"),
        selector("example.org", "2026a", Expiration="72h"),
        'selector 2026a: invalid expiration "3d": time: unknown unit "d" in duration "3d"',
    ),
    (
        "selector-hash",
        selector("example.org", "2026a", Hash="sha512"),
        selector("example.org", "2026a", Hash="sha1"),
        'selector 2026a: unsupported hash "sha512"',
    ),
    (
        "selector-ed25519-sha1",
        selector("example.org", "202611e", Hash="sha1"),
        selector("example.org", "202611e", Hash=""),
        'selector 202611e: hash algorithm "sha1" is not supported with ed25519, only sha256 is',
    ),
    (
        "selector-headers-from",
        selector("example.org", "2026a", Headers=("To", "Subject")),
        selector("example.org", "2026a", Headers=("To", "from")),
        "selector 2026a: From-field must always be DKIM-signed",
    ),
    (
        "key-missing",
        selector("example.org", "2026a", PrivateKeyFile="dkim/missing.pem"),
        selector("example.org", "2026a", keyfile=write_key("ok-ed.pem", ed25519_pkcs8)),
        "selector 2026a: reading private key: open ",
    ),
    (
        "key-garbage",
        selector("example.org", "2026a", keyfile=write_key("garbage.pem", b"not a key\n")),
        selector("example.org", "2026a", keyfile=write_key("ok-rsa.pem", rsa_key(1024))),
        "selector 2026a: private key has no PEM block",
    ),
    (
        "key-pkcs1",
        selector("example.org", "2026a", keyfile=write_key("pkcs1.pem", pkcs1_rsa)),
        selector("example.org", "2026a", keyfile=write_key("ok-rsa2.pem", rsa_key(2048))),
        "selector 2026a: parsing private key: x509: failed to parse private key "
        "(use ParsePKCS1PrivateKey instead for this key format)",
    ),
    (
        "key-ecdsa",
        selector("example.org", "2026a", keyfile=write_key("ec.pem", ecdsa_pkcs8)),
        selector("example.org", "2026a", keyfile=write_key("ok-ed2.pem", ed25519_pkcs8)),
        "selector 2026a: private key type *ecdsa.PrivateKey not yet supported",
    ),
    (
        "key-rsa-512",
        selector(
            "example.org",
            "2026a",
            keyfile=write_key(
                "rsa512.pem", openssl_key(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"])
            ),
        ),
        selector(
            "example.org",
            "2026a",
            keyfile=write_key(
                "rsa1024.pem",
                openssl_key(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]),
            ),
        ),
        "selector 2026a: rsa keys should be >= 1024 bits, is 512 bits",
    ),
    (
        "mtasts-no-listener",
        listeners(MTASTSHTTPS=ListenerWellKnown()),
        seq(
            listeners(MTASTSHTTPS=ListenerWellKnown()),
            *[dom(d, MTASTS=None) for d in ("example.org", "example.net", "café.example")],
        ),
        "domain example.org: MTA-STS enabled, but there is no listener for MTASTS",
    ),
    (
        "mtasts-policyid",
        dom("example.org", MTASTS=MTASTS(PolicyID="", Mode="enforce")),
        dom("example.org", MTASTS=MTASTS(PolicyID="1", Mode="none")),
        "domain example.org: invalid empty MTA-STS PolicyID",
    ),
    (
        "mtasts-mode",
        dom("example.org", MTASTS=MTASTS(PolicyID="1", Mode="Enforce")),
        dom("example.org", MTASTS=MTASTS(PolicyID="1", Mode="testing")),
        'domain example.org: invalid mtasts mode "Enforce"',
    ),
    # 3.4 accounts
    (
        "account-domain",
        acc("bob", Domain="bad_d.example"),
        acc("bob", Domain=""),
        'account "bob": parsing domain bad_d.example: idna',
    ),
    (
        "rejects-inbox",
        acc("bob", RejectsMailbox="INBOX"),
        acc("bob", RejectsMailbox="Inbox/Rejects"),
        'account "bob": cannot set RejectsMailbox to inbox',
    ),
    (
        "rejects-nfc",
        acc("bob", RejectsMailbox="Re\u0301jects"),
        acc("bob", RejectsMailbox="R\u00e9jects"),
        'rejects mailbox: mailbox "Re\u0301jects" is not in NFC normalized form',
    ),
    (
        "introbox-inbox",
        acc("bob", Introbox="inbox"),
        acc("bob", Introbox="inbox/intro"),
        'account "bob": invalid Introbox mailbox: special mailbox name Inbox not allowed',
    ),
    (
        "introbox-slashes",
        acc("bob", Introbox="a//b"),
        acc("bob", Introbox="a/b"),
        "invalid Introbox mailbox: empty mailbox name",
    ),
    (
        "introbox-hash",
        acc("bob", Introbox="#intro"),
        acc("bob", Introbox="intro#"),
        "invalid Introbox mailbox: mailbox name cannot start with hash",
    ),
    (
        "introbox-dotdot",
        acc("bob", Introbox="a/.."),
        acc("bob", Introbox="a/..."),
        'invalid Introbox mailbox: ".." not allowed',
    ),
    (
        "introbox-control",
        acc("bob", Introbox="a\u0085b"),
        acc("bob", Introbox="a\u00a0b"),
        "invalid Introbox mailbox: control characters not allowed in mailbox name",
    ),
    (
        "introbox-equals-rejects",
        acc("bob", Introbox="Rejects"),
        acc("bob", Introbox="Intro"),
        'account "bob": cannot set Introbox and RejectsMailbox to the same mailbox',
    ),
    (
        "login-disabled-long",
        acc("bob", LoginDisabled="x" * 257),
        acc("bob", LoginDisabled="x" * 256),
        "message for disabled login must be <256 characters",
    ),
    (
        "login-disabled-control",
        acc("bob", LoginDisabled="no\nway"),
        acc("bob", LoginDisabled="no way"),
        "message cannot contain control characters including newlines, and must be ascii-only",
    ),
    (
        "login-disabled-nonascii",
        acc("bob", LoginDisabled="gesperrt für dich"),
        acc("bob", LoginDisabled="gesperrt fuer dich"),
        "must be ascii-only",
    ),
    (
        "junk-regexp",
        acc("bob", AutomaticJunkFlags=replace(_ajf(), JunkMailboxRegexp="(junk")),
        acc("bob", AutomaticJunkFlags=_ajf()),
        'account "bob": invalid JunkMailboxRegexp regular expression',
    ),
    (
        "neutral-regexp-lookahead",
        acc("bob", AutomaticJunkFlags=replace(_ajf(), NeutralMailboxRegexp="^(?=x)")),
        acc("bob", AutomaticJunkFlags=replace(_ajf(), NeutralMailboxRegexp=r"^\pL+\z")),
        "invalid NeutralMailboxRegexp regular expression: error parsing regexp",
    ),
    (
        "notjunk-regexp",
        acc("bob", AutomaticJunkFlags=replace(_ajf(), NotJunkMailboxRegexp="a{2,1}")),
        acc("bob", AutomaticJunkFlags=replace(_ajf(), NotJunkMailboxRegexp="a{1,2}")),
        "invalid NotJunkMailboxRegexp regular expression",
    ),
    (
        "junk-maxpower",
        acc("bob", JunkFilter=replace(JF, Params=replace(JF.Params, MaxPower=0.6))),
        acc("bob", JunkFilter=replace(JF, Params=replace(JF.Params, MaxPower=0.5))),
        "junk filter MaxPower must be >= 0 and < 0.5",
    ),
    (
        "junk-topwords",
        acc("bob", JunkFilter=replace(JF, Params=replace(JF.Params, TopWords=-1))),
        acc("bob", JunkFilter=replace(JF, Params=replace(JF.Params, TopWords=0))),
        "junk filter TopWords must be >= 0",
    ),
    (
        "junk-ignorewords",
        acc("bob", JunkFilter=replace(JF, Params=replace(JF.Params, IgnoreWords=-0.1))),
        acc("bob", JunkFilter=replace(JF, Params=replace(JF.Params, IgnoreWords=0.0))),
        "junk filter IgnoreWords must be >= 0 and < 0.5",
    ),
    (
        "junk-rarewords",
        acc("bob", JunkFilter=replace(JF, Params=replace(JF.Params, RareWords=-2))),
        acc("bob", JunkFilter=replace(JF, Params=replace(JF.Params, RareWords=2))),
        "junk filter RareWords must be >= 0",
    ),
    (
        "fromid-parse",
        acc("bob", FromIDLoginAddresses=("bob@@example.org",)),
        acc("bob", FromIDLoginAddresses=("bob@example.org",)),
        'account "bob": invalid fromid login address "bob@@example.org": invalid email address',
    ),
    (
        "fromid-unknown-domain",
        acc("bob", FromIDLoginAddresses=("bob@unknown.example",)),
        acc("bob", FromIDLoginAddresses=("bob.smith@example.org",)),
        'unknown domain in fromid login address "bob@unknown.example"',
    ),
    (
        "fromid-no-separator",
        seq(
            dom("example.org", LocalpartCatchallSeparator=""),
            acc("bob", FromIDLoginAddresses=("bob@example.org",)),
        ),
        seq(
            dom("example.org", LocalpartCatchallSeparator="", LocalpartCatchallSeparators=("-",)),
            acc("bob", FromIDLoginAddresses=("bob@example.org",)),
        ),
        'localpart catchall separator not configured for domain for fromid login address "bob@example.org"',
    ),
    (
        "fromid-not-own",
        acc("bob", FromIDLoginAddresses=("alice@example.org",)),
        acc("bob", FromIDLoginAddresses=("Bob+x@example.org",)),
        'account "bob": fromid login address "alice@example.org" does not match its destination addresses',
    ),
    (
        "outgoing-hook-scheme",
        acc("bob", OutgoingWebhook=OutgoingWebhook(URL="ftp://hooks.example/x")),
        acc(
            "bob",
            OutgoingWebhook=OutgoingWebhook(URL="https://hooks.example/x", Events=("delivered", "failed")),
        ),
        'parsing outgoing hook url "ftp://hooks.example/x": scheme must be http or https',
    ),
    (
        "outgoing-hook-parse",
        acc("bob", OutgoingWebhook=OutgoingWebhook(URL="http://h.example:port/")),
        acc("bob", OutgoingWebhook=OutgoingWebhook(URL="http://h.example:8080/")),
        'parsing outgoing hook url "http://h.example:port/": parse',
    ),
    (
        "outgoing-hook-event",
        acc("bob", OutgoingWebhook=OutgoingWebhook(URL="http://h.example/", Events=("bounced",))),
        acc("bob", OutgoingWebhook=OutgoingWebhook(URL="http://h.example/", Events=("unrecognized",))),
        'unknown outgoing hook event "bounced"',
    ),
    (
        "incoming-hook-scheme",
        acc("bob", IncomingWebhook=IncomingWebhook(URL="hooks.example/in")),
        acc("bob", IncomingWebhook=IncomingWebhook(URL="HTTP://hooks.example/in")),
        'parsing incoming hook url "hooks.example/in": scheme must be http or https',
    ),
    # destinations
    (
        "dest-mailbox-nfc",
        dest("bob", "bob@example.org", Destination(Mailbox="Cafe\u0301")),
        dest("bob", "bob@example.org", Destination(Mailbox="Caf\u00e9")),
        'destination "bob@example.org": destination mailbox: mailbox "Cafe\u0301" is not in NFC',
    ),
    (
        "smtperror-code",
        dest("bob", "bob@example.org", Destination(SMTPError="451 busy")),
        dest("bob", "bob@example.org", Destination(SMTPError="421 busy")),
        'smtp error must be 421 or 550 (with optional message), not "451 busy"',
    ),
    (
        "smtperror-long",
        dest("bob", "bob@example.org", Destination(SMTPError="550 " + "x" * 300)),
        dest("bob", "bob@example.org", Destination(SMTPError="550 " + "x" * 200)),
        "smtp error must be smaller than 256 bytes",
    ),
    (
        "smtperror-control",
        dest("bob", "bob@example.org", Destination(SMTPError="550 gone\tnow")),
        dest("bob", "bob@example.org", Destination(SMTPError="550 gone now")),
        "smtp error cannot contain contain control characters (including newlines) or non-ascii",
    ),
    (
        "smtperror-mailbox",
        dest("bob", "bob@example.org", Destination(SMTPError="550", Mailbox="X")),
        dest("bob", "bob@example.org", Destination(SMTPError="550")),
        "cannot have both SMTPError and Mailbox",
    ),
    (
        "smtperror-rulesets",
        dest(
            "bob",
            "bob@example.org",
            Destination(SMTPError="550", Rulesets=(Ruleset(MsgFromRegexp="x", Mailbox="X"),)),
        ),
        dest("bob", "bob@example.org", Destination(Rulesets=(Ruleset(MsgFromRegexp="x", Mailbox="X"),))),
        "cannot have both SMTPError and Rulesets",
    ),
    (
        "msgauth-smtperror",
        dest("bob", "bob@example.org", Destination(MessageAuthRequiredSMTPError="nö")),
        dest("bob", "bob@example.org", Destination(MessageAuthRequiredSMTPError="no")),
        "message authentication required smtp error cannot contain",
    ),
    (
        "msgauth-smtperror-long",
        dest("bob", "bob@example.org", Destination(MessageAuthRequiredSMTPError="x" * 257)),
        dest("bob", "bob@example.org", Destination(MessageAuthRequiredSMTPError="x" * 256)),
        "message authentication required smtp error must be smaller than 256 bytes",
    ),
    (
        "ruleset-empty",
        ruleset(),
        ruleset(VerifiedDomain="list.example"),
        'destination "bob@example.org": ruleset 1: ruleset must have at least one rule',
    ),
    (
        "ruleset-smtpmailfrom",
        ruleset(SMTPMailFromRegexp="(?<!x)a"),
        ruleset(SMTPMailFromRegexp="(?i)a"),
        "ruleset 1: invalid SMTPMailFrom regular expression: error parsing regexp",
    ),
    (
        "ruleset-msgfrom",
        ruleset(MsgFromRegexp="[a"),
        ruleset(MsgFromRegexp="[a]"),
        "ruleset 1: invalid MsgFrom regular expression",
    ),
    (
        "ruleset-verifieddomain",
        ruleset(VerifiedDomain="-list.example"),
        ruleset(VerifiedDomain="list.example"),
        "ruleset 1: invalid VerifiedDomain: idna",
    ),
    (
        "ruleset-header-case",
        ruleset(HeadersRegexp={"List-Id": "x"}),
        ruleset(HeadersRegexp={"list-id": "x"}),
        'ruleset 1: header field "List-Id" must only have lower case characters',
    ),
    (
        "ruleset-header-value-case",
        ruleset(HeadersRegexp={"list-id": "X"}),
        ruleset(HeadersRegexp={"list-id": "x"}),
        'ruleset 1: header value "X" must only have lower case characters',
    ),
    (
        "ruleset-header-regexp",
        ruleset(HeadersRegexp={"list-id": "(x"}),
        ruleset(HeadersRegexp={"list-id": "(x)"}),
        'ruleset 1: invalid rule header regexp "(x"',
    ),
    (
        "ruleset-forward-listallow",
        ruleset(
            IsForward=True, SMTPMailFromRegexp="x", VerifiedDomain="f.example", ListAllowDomain="l.example"
        ),
        ruleset(IsForward=True, SMTPMailFromRegexp="x", VerifiedDomain="f.example"),
        "ruleset cannot have both IsForward and ListAllowDomain",
    ),
    (
        "ruleset-forward-needs",
        ruleset(IsForward=True, SMTPMailFromRegexp="x"),
        ruleset(IsForward=True, SMTPMailFromRegexp="x", VerifiedDomain="f.example"),
        "ruleset with IsForward must have both SMTPMailFromRegexp and VerifiedDomain too",
    ),
    (
        "ruleset-listallow",
        ruleset(VerifiedDomain="l.example", ListAllowDomain="l_.example"),
        ruleset(VerifiedDomain="l.example", ListAllowDomain="l.example"),
        'ruleset 1: invalid ListAllowDomain "l_.example"',
    ),
    (
        "ruleset-mailbox-nfc",
        ruleset(MsgFromRegexp="x", Mailbox="Cafe\u0301"),
        ruleset(MsgFromRegexp="x", Mailbox="Caf\u00e9"),
        "ruleset 1: ruleset mailbox: mailbox",
    ),
    (
        "ruleset-acceptrejects-inbox",
        ruleset(MsgFromRegexp="x", AcceptRejectsToMailbox="inbox"),
        ruleset(MsgFromRegexp="x", AcceptRejectsToMailbox="Lists"),
        "ruleset 1: AcceptRejectsToMailbox cannot be set to Inbox",
    ),
    (
        "ruleset-acceptrejects-nfc",
        ruleset(MsgFromRegexp="x", AcceptRejectsToMailbox="Cafe\u0301"),
        ruleset(MsgFromRegexp="x", AcceptRejectsToMailbox="Caf\u00e9"),
        "ruleset 1: rejects mailbox: mailbox",
    ),
    (
        "catchall-parse",
        dest("bob", "@bad_.example"),
        dest("bob", "@example.net"),
        'destination "@bad_.example": parsing domain "bad_.example"',
    ),
    (
        "catchall-unknown",
        dest("bob", "@unknown.example"),
        dest("bob", "@café.example"),
        'destination "@unknown.example": unknown domain for address',
    ),
    (
        "catchall-duplicate",
        dest("bob", "@EXAMPLE.org"),
        dest("bob", "@EXAMPLE.net"),
        'account "bob": destination "@EXAMPLE.org": duplicate canonicalized catchall destination address @example.org',
    ),
    (
        "dest-invalid-address",
        dest("bob", "bob@@example.org"),
        dest("bob", '"b b"@example.org'),
        'destination "bob@@example.org": invalid email address',
    ),
    (
        "dest-unknown-domain",
        dest("bob", "bob@unknown.example"),
        dest("bob", "bob@example.net"),
        'destination "bob@unknown.example": unknown domain for address',
    ),
    (
        "dest-bare-localpart-unknown-domain",
        seq(acc("bob", Domain="other.example"), dest("bob", "robert")),
        dest("bob", "robert"),
        'destination "robert": unknown domain other.example',
    ),
    (
        "dest-separator",
        dest("bob", "bob+tag@example.org"),
        dest("bob", "bob-tag@example.org"),
        'destination "bob+tag@example.org": localpart of address bob+tag@example.org '
        "includes domain catchall separator +",
    ),
    (
        "dest-duplicate-case",
        dest("bob", "Alice@example.org"),
        dest("bob", "Alice@example.net"),
        'account "bob": destination "Alice@example.org": duplicate canonicalized destination address alice@example.org',
    ),
    (
        "dest-duplicate-case-sensitive-ok",
        seq(
            dom("example.org", LocalpartCaseSensitive=True),
            dest("bob", "Alice@example.org"),
            dest("bob", "ALICE@example.org"),
            dest("bob", "alice@example.org"),
        ),
        seq(dom("example.org", LocalpartCaseSensitive=True), dest("bob", "Alice@example.org")),
        "duplicate canonicalized destination address alice@example.org",
    ),
    # 3.5 DMARC / TLSRPT
    (
        "dmarc-account",
        dom("example.org", DMARC=DMARC(Localpart="dmarcreports", Account="carol", Mailbox="DMARC")),
        dom("example.org", DMARC=DMARC(Localpart="dmarcreports", Account="bob", Mailbox="DMARC")),
        'domain example.org: DMARC account "carol" does not exist',
    ),
    (
        "dmarc-localpart",
        dom("example.org", DMARC=DMARC(Localpart="a..b", Account="alice", Mailbox="DMARC")),
        dom("example.org", DMARC=DMARC(Localpart="a.b", Account="alice", Mailbox="DMARC")),
        'domain example.org: invalid DMARC localpart "a..b"',
    ),
    (
        "dmarc-international",
        dom("example.org", DMARC=DMARC(Localpart="rapports-dé", Account="alice", Mailbox="D")),
        dom("example.org", DMARC=DMARC(Localpart="rapports-de", Account="alice", Mailbox="D")),
        'DMARC localpart "rapports-dé" is an internationalized address',
    ),
    (
        "dmarc-domain-parse",
        dom("example.org", DMARC=DMARC(Localpart="d", Domain="x_.example", Account="alice", Mailbox="D")),
        dom("example.org", DMARC=DMARC(Localpart="d", Domain="café.example", Account="alice", Mailbox="D")),
        'domain example.org: DMARC domain "x_.example"',
    ),
    (
        "dmarc-domain-unknown",
        dom(
            "example.org", DMARC=DMARC(Localpart="d", Domain="münchen.example", Account="alice", Mailbox="D")
        ),
        dom("example.org", DMARC=DMARC(Localpart="d", Domain="example.net", Account="alice", Mailbox="D")),
        'domain example.org: unknown domain "münchen.example/xn--mnchen-3ya.example" for DMARC address',
    ),
    (
        "dmarc-mailbox-nfc",
        dom("example.org", DMARC=DMARC(Localpart="d", Account="alice", Mailbox="Cafe\u0301")),
        dom("example.org", DMARC=DMARC(Localpart="d", Account="alice", Mailbox="Caf\u00e9")),
        "domain example.org: DMARC mailbox for account: mailbox",
    ),
    (
        "tlsrpt-account",
        dom("example.org", TLSRPT=TLSRPT(Localpart="tlsreports", Account="carol", Mailbox="T")),
        dom("example.org", TLSRPT=TLSRPT(Localpart="tlsreports", Account="admin", Mailbox="T")),
        'domain example.org: TLSRPT account "carol" does not exist',
    ),
    (
        "tlsrpt-localpart",
        dom("example.org", TLSRPT=TLSRPT(Localpart="", Account="alice", Mailbox="T")),
        dom("example.org", TLSRPT=TLSRPT(Localpart="tls", Account="alice", Mailbox="T")),
        'domain example.org: invalid TLSRPT localpart ""',
    ),
    (
        "tlsrpt-international",
        dom("example.org", TLSRPT=TLSRPT(Localpart="tlsé", Account="alice", Mailbox="T")),
        dom("example.org", TLSRPT=TLSRPT(Localpart="tlse", Account="alice", Mailbox="T")),
        'TLSRPT localpart "tlsé" is an internationalized address',
    ),
    (
        "tlsrpt-domain-unknown",
        dom(
            "example.org",
            TLSRPT=TLSRPT(Localpart="t", Domain="unknown.example", Account="alice", Mailbox="T"),
        ),
        dom("example.org", TLSRPT=TLSRPT(Localpart="t", Domain="example.net", Account="alice", Mailbox="T")),
        'domain example.org: unknown domain "unknown.example" for TLSRPT address',
    ),
    (
        "tlsrpt-mailbox-nfc",
        dom("example.org", TLSRPT=TLSRPT(Localpart="t", Account="alice", Mailbox="A\u030a")),
        dom("example.org", TLSRPT=TLSRPT(Localpart="t", Account="alice", Mailbox="\u00c5")),
        "domain example.org: TLSRPT mailbox: mailbox",
    ),
    # 3.7 aliases
    (
        "alias-parse",
        dom("example.org", Aliases={"a..b": Alias(Addresses=("alice@example.org",))}),
        dom("example.org", Aliases={"a.b": Alias(Addresses=("alice@example.org",))}),
        "domain example.org: alias a..b: parsing alias: invalid localpart",
    ),
    (
        "alias-separator",
        dom("example.org", Aliases={"team+x": Alias(Addresses=("alice@example.org",))}),
        dom("example.org", Aliases={"team-x": Alias(Addresses=("alice@example.org",))}),
        "domain example.org: alias team+x: alias contains localpart catchall separator",
    ),
    (
        "alias-duplicate",
        dom(
            "example.org",
            Aliases={
                "Team": Alias(Addresses=("alice@example.org",)),
                "team": Alias(Addresses=("alice@example.org",)),
            },
        ),
        dom(
            "example.org",
            Aliases={
                "Team2": Alias(Addresses=("alice@example.org",)),
                "team": Alias(Addresses=("alice@example.org",)),
            },
        ),
        'domain example.org: alias team: duplicate alias address "team@example.org"',
    ),
    (
        "alias-is-address",
        dom("example.org", Aliases={"Bob": Alias(Addresses=("alice@example.org",))}),
        dom("example.org", Aliases={"Bobby": Alias(Addresses=("alice@example.org",))}),
        'alias Bob: alias "bob@example.org" already present as regular address',
    ),
    (
        "alias-no-members",
        dom("example.org", Aliases={"team": Alias(Addresses=())}),
        dom("example.org", Aliases={"team": Alias(Addresses=("bob@example.org",))}),
        'alias team: alias "team@example.org" needs at least one destination address',
    ),
    (
        "alias-member-parse",
        dom("example.org", Aliases={"team": Alias(Addresses=("alice",))}),
        dom("example.org", Aliases={"team": Alias(Addresses=("alice@example.org",))}),
        'alias team: parsing destination address "alice"',
    ),
    (
        "alias-member-noncanonical",
        dom("example.org", Aliases={"team": Alias(Addresses=("Alice@example.org",))}),
        dom("example.org", Aliases={"team": Alias(Addresses=("alice@example.org",))}),
        'alias team: references non-existent address "Alice@example.org"',
    ),
    (
        "alias-member-duplicate",
        dom("example.org", Aliases={"team": Alias(Addresses=("alice@example.org", "alice@example.org"))}),
        dom("example.org", Aliases={"team": Alias(Addresses=("alice@example.org", "bob@example.org"))}),
        'alias team: duplicate address "alice@example.org"',
    ),
    # 3.8 web, DNSBLs
    (
        "web-no-listener",
        top(WebDomainRedirects={"www.example.org": "example.org"}),
        seq(WEB_ON, top(WebDomainRedirects={"www.example.org": "example.org"})),
        "WebDomainRedirects or WebHandlers configured but no listener with WebserverHTTP or WebserverHTTPS enabled",
    ),
    (
        "redirect-from-parse",
        seq(WEB_ON, top(WebDomainRedirects={"w_.example.org": "example.org"})),
        seq(WEB_ON, top(WebDomainRedirects={"w.example.org": "example.org"})),
        "web redirect w_.example.org to example.org: parsing domain for redirect w_.example.org",
    ),
    (
        "redirect-to-parse",
        seq(WEB_ON, top(WebDomainRedirects={"w.example.org": "-x.example"})),
        seq(WEB_ON, top(WebDomainRedirects={"w.example.org": "x.example"})),
        "web redirect w.example.org to -x.example: parsing domain for redirect -x.example",
    ),
    (
        "redirect-self",
        seq(WEB_ON, top(WebDomainRedirects={"W.example.org": "w.example.org"})),
        seq(WEB_ON, top(WebDomainRedirects={"W.example.org": "ww.example.org"})),
        "web redirect W.example.org to w.example.org: will not redirect domain w.example.org to itself",
    ),
    (
        "redirect-duplicate",
        seq(WEB_ON, top(WebDomainRedirects={"W.example.org": "a.example", "w.example.org": "b.example"})),
        seq(WEB_ON, top(WebDomainRedirects={"W.example.org": "a.example", "x.example.org": "b.example"})),
        "web redirect w.example.org to b.example: duplicate redirect domain w.example.org",
    ),
    (
        "handler-domain",
        handler(Domain="w_.example"),
        handler(Domain="w.example"),
        "webhandler w_.example ^/: parsing domain",
    ),
    (
        "handler-path-caret",
        handler(PathRegexp="/"),
        handler(PathRegexp="^/"),
        "webhandler www.example.org /: path regexp must start with a ^",
    ),
    (
        "handler-path-regexp",
        handler(PathRegexp="^/(a"),
        handler(PathRegexp="^/(a)"),
        "webhandler www.example.org ^/(a: compiling regexp: error parsing regexp",
    ),
    (
        "handler-none",
        handler(WebStatic=None),
        handler(WebStatic=None, WebForward=WebForward(URL="http://127.0.0.1:8080/")),
        "must have exactly one handler, not 0",
    ),
    (
        "handler-two",
        handler(WebInternal=WebInternal(BasePath="/admin/", Service="admin")),
        handler(WebStatic=None, WebInternal=WebInternal(BasePath="/admin/", Service="admin")),
        "must have exactly one handler, not 2",
    ),
    (
        "static-stripprefix",
        handler(WebStatic=WebStatic(Root="/srv", StripPrefix="x/")),
        handler(WebStatic=WebStatic(Root="/srv", StripPrefix="/x/")),
        "static: prefix to strip x/ must start with a slash",
    ),
    (
        "static-header",
        handler(WebStatic=WebStatic(Root="/srv", ResponseHeaders={" X-A": "1"})),
        handler(WebStatic=WebStatic(Root="/srv", ResponseHeaders={"X-A": "1"})),
        'static: bad header " X-A"',
    ),
    (
        "redirect-baseurl-path",
        handler(WebStatic=None, WebRedirect=WebRedirect(BaseURL="https://example.org/x")),
        handler(WebStatic=None, WebRedirect=WebRedirect(BaseURL="https://example.org/")),
        "redirect: BaseURL must have empty path",
    ),
    (
        "redirect-baseurl-parse",
        handler(WebStatic=None, WebRedirect=WebRedirect(BaseURL="https://example.org:x/")),
        handler(WebStatic=None, WebRedirect=WebRedirect(BaseURL="https://example.org:443")),
        "redirect: parsing redirect url https://example.org:x/",
    ),
    (
        "redirect-pair",
        handler(WebStatic=None, WebRedirect=WebRedirect(BaseURL="https://e.org", ReplacePath="/x")),
        handler(WebStatic=None, WebRedirect=WebRedirect(OrigPathRegexp="^/a", ReplacePath="/x")),
        "redirect: must have either both OrigPathRegexp and ReplacePath, or neither",
    ),
    (
        "redirect-origpath-regexp",
        handler(WebStatic=None, WebRedirect=WebRedirect(OrigPathRegexp="^/(", ReplacePath="/x")),
        handler(WebStatic=None, WebRedirect=WebRedirect(OrigPathRegexp="^/()", ReplacePath="/x")),
        "compiling regexp ^/(: error parsing regexp",
    ),
    (
        "redirect-empty",
        handler(WebStatic=None, WebRedirect=WebRedirect(StatusCode=301)),
        handler(WebStatic=None, WebRedirect=WebRedirect(BaseURL="https://e.org", StatusCode=301)),
        "must at least one of BaseURL and OrigPathRegexp+ReplacePath",
    ),
    (
        "redirect-status",
        handler(WebStatic=None, WebRedirect=WebRedirect(BaseURL="https://e.org", StatusCode=200)),
        handler(WebStatic=None, WebRedirect=WebRedirect(BaseURL="https://e.org", StatusCode=399)),
        "redirect: invalid redirect status code 200",
    ),
    (
        "forward-url",
        handler(WebStatic=None, WebForward=WebForward(URL="http://[::1/")),
        handler(WebStatic=None, WebForward=WebForward(URL="http://[::1]/")),
        "forward: parsing url http://[::1/",
    ),
    (
        "forward-header",
        handler(WebStatic=None, WebForward=WebForward(URL="http://h/", ResponseHeaders={"": "1"})),
        handler(WebStatic=None, WebForward=WebForward(URL="http://h/", ResponseHeaders={"X": "1"})),
        'forrward: bad header ""',
    ),
    (
        "internal-basepath",
        handler(WebStatic=None, WebInternal=WebInternal(BasePath="/admin", Service="admin")),
        handler(WebStatic=None, WebInternal=WebInternal(BasePath="/admin/", Service="admin")),
        'internal service: base path "/admin" must start and end with /',
    ),
    (
        "internal-service",
        handler(WebStatic=None, WebInternal=WebInternal(BasePath="/x/", Service="imap")),
        handler(WebStatic=None, WebInternal=WebInternal(BasePath="/x/", Service="webapi")),
        'internal service: unknown service "imap"',
    ),
    (
        "dnsbl-parse",
        top(MonitorDNSBLs=("bl_.example",)),
        top(MonitorDNSBLs=("bl.example",)),
        "dnsbl bl_.example: parsing dnsbl zone: idna",
    ),
    (
        "dnsbl-duplicate",
        top(MonitorDNSBLs=("bl.example", "BL.example")),
        top(MonitorDNSBLs=("bl.example", "bl2.example")),
        "dnsbl BL.example: duplicate zone",
    ),
]


@pytest.mark.parametrize(("bad", "expected"), [(r[1], r[3]) for r in RULES], ids=[r[0] for r in RULES])
def test_rule_rejects(base: tuple[Static, Dynamic, Path], tmp_path: Path, bad: Mut, expected: str) -> None:
    static0, dyn0, cdir = base
    st, dyn = bad((static0, dyn0), tmp_path)
    errors = validate_dynamic(st, dyn, cdir).errors
    assert any(expected in e for e in errors), errors
    with pytest.raises(ConfigInvalid) as exc:
        require_valid(st, dyn, cdir)
    assert exc.value.errors == errors


@pytest.mark.parametrize("good", [r[2] for r in RULES], ids=[r[0] for r in RULES])
def test_rule_twin_is_valid(base: tuple[Static, Dynamic, Path], tmp_path: Path, good: Mut) -> None:
    static0, dyn0, cdir = base
    st, dyn = good((static0, dyn0), tmp_path)
    assert validate_dynamic(st, dyn, cdir).errors == []


def test_rule_ids_unique() -> None:
    ids = [r[0] for r in RULES]
    assert len(ids) == len(set(ids)) and len(ids) >= 80


# ---------------------------------------------------------------------------------------------
# Behaviour beyond single rules


def test_all_errors_collected_in_deterministic_order(
    base: tuple[Static, Dynamic, Path], tmp_path: Path
) -> None:
    """Like golden step 18 (domain rm café.example with addresses left): every error, mox's texts."""
    static0, dyn0, cdir = base
    dyn = replace(dyn0, Domains={k: v for k, v in dyn0.Domains.items() if k != "café.example"})
    errors = validate_dynamic(static0, dyn, cdir).errors
    assert errors == [
        'account "alice": destination "postmaster@café.example": unknown domain for address',
        'account "bob": destination "José@café.example": unknown domain for address',
        'account "bob": destination "bob@café.example": unknown domain for address',
    ]
    assert validate_dynamic(static0, dyn, cdir).errors == errors


def test_account_removal_reports_every_reference(base: tuple[Static, Dynamic, Path]) -> None:
    """Golden step 28's refusal (account rm alice): DMARC and TLSRPT of both domains."""
    static0, dyn0, cdir = base
    dyn = replace(
        dyn0,
        Accounts={k: v for k, v in dyn0.Accounts.items() if k != "alice"},
        Domains={**dyn0.Domains, "example.org": replace(dyn0.Domains["example.org"], Aliases={})},
    )
    errors = validate_dynamic(static0, dyn, cdir).errors
    for d in ("café.example", "example.org"):
        assert f'domain {d}: DMARC account "alice" does not exist' in errors
        assert f'domain {d}: TLSRPT account "alice" does not exist' in errors


def test_alias_member_removed_address(base: tuple[Static, Dynamic, Path], tmp_path: Path) -> None:
    """Golden step 23: removing bob leaves alias team referencing bob.smith@example.org."""
    static0, dyn0, cdir = base
    dyn = replace(dyn0, Accounts={k: v for k, v in dyn0.Accounts.items() if k != "bob"})
    errors = validate_dynamic(static0, dyn, cdir).errors
    assert errors == [
        'domain example.org: alias team: references non-existent address "bob.smith@example.org"'
    ]


def test_reporting_address_overrides_destination(base: tuple[Static, Dynamic, Path], tmp_path: Path) -> None:
    static0, dyn0, cdir = base
    st, dyn = dest("bob", "dmarcreports@example.org")((static0, dyn0), tmp_path)
    v = validate_dynamic(st, dyn, cdir)
    assert v.errors == []
    assert v.addresses["dmarcreports@example.org"] == "alice"


def test_reports_only(base: tuple[Static, Dynamic, Path], tmp_path: Path) -> None:
    static0, dyn0, cdir = base
    st, dyn = add_dom("reports.example")((static0, dyn0), tmp_path)
    assert validate_dynamic(st, dyn, cdir).reports_only == {"mail.example.org", "reports.example"}
    st, dyn = dest("bob", "@reports.example")((st, dyn), tmp_path)
    assert validate_dynamic(st, dyn, cdir).reports_only == {"mail.example.org"}


def test_bare_localpart_destination_indexed_with_account_domain(
    base: tuple[Static, Dynamic, Path], tmp_path: Path
) -> None:
    static0, dyn0, cdir = base
    st, dyn = dest("bob", "Robert")((static0, dyn0), tmp_path)
    assert validate_dynamic(st, dyn, cdir).addresses["robert@example.org"] == "bob"


@pytest.mark.parametrize("key", ['"a@b"', '"Ro@bert"', '"a@b"@example.org', '"x"@example.org', "a@b@example.org",
                                 '"un"closed@example.org', "Robert", '""', '"a\\"@b"'])
def test_destination_keys_with_quotes_and_at_signs(
    key: str, base: tuple[Static, Dynamic, Path], tmp_path: Path
) -> None:
    """A quoted localpart may hold "@" (a bare localpart, in the account's domain); anything else
    with an "@" is an address or invalid: the index and the errors as mox reads the key
    (ParseLocalpart first, then ParseAddress), shown here by trying both in that order."""
    static0, dyn0, cdir = base
    st, dyn = dest("bob", key)((static0, dyn0), tmp_path)
    v = validate_dynamic(st, dyn, cdir)
    mine = [e for e in v.errors if e.startswith(f'account "bob": destination {go_quote(key)}: ')]
    try:
        addr: Address | None = Address(parse_localpart(key), parse_domain(dyn.Accounts["bob"].Domain))
    except ParseError:
        try:
            addr = parse_address(key)
        except ParseError:
            addr = None
    if addr is None:
        assert mine == [f'account "bob": destination {go_quote(key)}: invalid email address']
    else:
        assert mine == [] and v.addresses[canonical_address(dyn, addr)] == "bob", (addr, v.errors)


@given(strategies.text(alphabet='a@".\\ b', max_size=8))
def test_an_unquoted_key_with_an_at_sign_is_no_localpart(key: str) -> None:
    """What the validator skips parse_localpart for: it raises for these keys."""
    if "@" in key and not key.startswith('"'):
        with pytest.raises(ParseError):
            parse_localpart(key)


# ---------------------------------------------------------------------------------------------
# Key files and the cache


def test_keyfile_errors_name_no_key_material(tmp_path: Path) -> None:
    f = tmp_path / "k.pem"
    f.write_bytes(pkcs1_rsa())
    with pytest.raises(KeyFileError) as exc:
        load_dkim_private_key(f)
    assert "PRIVATE KEY" not in str(exc.value) and "MII" not in str(exc.value)
    with pytest.raises(KeyFileError, match=r"^reading private key: read .*: is a directory$"):
        load_dkim_private_key(tmp_path)


def test_keyfile_first_pem_block_used(tmp_path: Path) -> None:
    f = tmp_path / "two.pem"
    f.write_bytes(b"leading text\n" + ed25519_pkcs8() + pkcs1_rsa())
    assert isinstance(load_dkim_private_key(f), ed25519.Ed25519PrivateKey)
    f.write_bytes(pkcs1_rsa() + ed25519_pkcs8())
    with pytest.raises(KeyFileError, match="ParsePKCS1PrivateKey"):
        load_dkim_private_key(f)


def test_keyfile_unreadable(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    f = tmp_path / "k.pem"
    f.write_bytes(ed25519_pkcs8())
    f.chmod(0)
    with pytest.raises(KeyFileError, match="permission denied"):
        load_dkim_private_key(f)


def test_key_cache_loads_once_and_notices_changes(tmp_path: Path) -> None:
    cache = KeyCache()
    f = tmp_path / "k.pem"
    f.write_bytes(ed25519_pkcs8())
    assert cache.kind(f) == "ed25519"
    assert cache.kind(f) == "ed25519" and cache.loads == 1
    f2 = tmp_path / "k2.pem"
    f2.write_bytes(pkcs1_rsa())
    os.replace(f2, f)  # new inode: must be read again, and now fails like mox
    with pytest.raises(KeyFileError, match="ParsePKCS1PrivateKey"):
        cache.kind(f)
    with pytest.raises(KeyFileError):
        cache.kind(f)
    assert cache.loads == 2
    again = KeyCache(cache.verdicts)  # verdicts carried to a new cache (a later run)
    with pytest.raises(KeyFileError, match="ParsePKCS1PrivateKey"):
        again.kind(f)
    assert again.loads == 0
    f.write_bytes(ed25519_pkcs8())  # rewritten in place: new mtime/ctime, read again
    assert again.kind(f) == "ed25519" and again.loads == 1


def test_validate_with_cache_twice_loads_keys_once(base: tuple[Static, Dynamic, Path]) -> None:
    static0, dyn0, cdir = base
    cache = KeyCache()
    assert validate_dynamic(static0, dyn0, cdir, keys=cache).errors == []
    n = cache.loads
    assert n == 7  # 7 selectors, 7 distinct files
    assert validate_dynamic(static0, dyn0, cdir, keys=cache).errors == []
    assert cache.loads == n


# ---------------------------------------------------------------------------------------------
# mox.conf and check_live


def test_check_live_hostname_not_unicode_form(tmp_path: Path) -> None:
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("17")]
    moxconf = build_step_config(step, tmp_path)
    text = moxconf.read_text().replace("Hostname: mail.example.org", "Hostname: Mail.Example.org")
    moxconf.write_text(text)
    live = read_live(ConfigPaths(moxconf))
    errors = check_live(live)
    assert 'hostname must be in unicode form "mail.example.org" instead of "Mail.Example.org"' in errors
    moxconf.write_text(text.replace("Mail.Example.org", "mail.example.org"))
    assert check_live(read_live(ConfigPaths(moxconf))) == []


def _static_errors(mut: Callable[[Static], Static], tmp_path: Path) -> list[str]:
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("00")]
    paths = ConfigPaths(build_step_config(step, tmp_path))
    st = read_live(paths).static
    return validate_static(mut(st), paths)


STATIC_RULES: list[tuple[str, Callable[[Static], Static], str]] = [
    ("hostname-parse", lambda s: replace(s, Hostname="mail_.example.org"), "parsing hostname: idna"),
    (
        "hostname-idn",
        lambda s: replace(s, Hostname="mail.xn--caf-dma.example"),
        'hostname must be in unicode form "mail.café.example" instead of "mail.xn--caf-dma.example"',
    ),
    ("loglevel", lambda s: replace(s, LogLevel="verbose"), 'invalid log level "verbose"'),
    (
        "package-loglevel",
        lambda s: replace(s, PackageLogLevels={"smtpserver": "loud"}),
        'invalid package log level "loud"',
    ),
    (
        "host-tlsrpt-localpart",
        lambda s: replace(s, HostTLSRPT=replace(s.HostTLSRPT, Localpart="a..b")),
        'invalid localpart "a..b" for host tlsrpt',
    ),
    (
        "listener-no-tls",
        lambda s: replace(s, Listeners={"public": replace(s.Listeners["public"], TLS=None)}),
        "listener public: no tls config specified, but requires tls for IMAPS, SMTP, Submissions, Submission, "
        "AutoconfigHTTPS, MTASTSHTTPS",
    ),
    (
        "listener-host-key",
        lambda s: replace(
            s,
            Listeners={
                "public": replace(
                    s.Listeners["public"],
                    TLS=replace(s.Listeners["public"].TLS, HostPrivateKeyFiles=("nope.pem",)),
                )
            },
        ),
        "listener public: parsing host private key for DANE and ACME certificates: reading host private key: open ",
    ),
    (
        "listener-natip",
        lambda s: replace(s, Listeners={"public": replace(s.Listeners["public"], NATIPs=("127.0.0.1",))}),
        "listener public: NAT ip that is the unspecified or loopback address 127.0.0.1",
    ),
    (
        "listener-ip",
        lambda s: replace(s, Listeners={"public": replace(s.Listeners["public"], IPs=("1.2.3",))}),
        'listener public: invalid IP "1.2.3"',
    ),
    (
        "listener-minversion",
        lambda s: replace(
            s,
            Listeners={
                "public": replace(
                    s.Listeners["public"], TLS=replace(s.Listeners["public"].TLS, MinVersion="TLSv1.4")
                )
            },
        ),
        'unknown TLS mininum version "TLSv1.4"',
    ),
    (
        "transport-two-methods",
        lambda s: replace(
            s,
            Transports={
                "t": Transport(Direct=TransportDirect(), Submission=TransportSMTP(Host="smtp.example"))
            },
        ),
        "transport t: cannot have multiple methods in a transport",
    ),
    (
        "transport-direct",
        lambda s: replace(
            s, Transports={"t": Transport(Direct=TransportDirect(DisableIPv4=True, DisableIPv6=True))}
        ),
        "transport t: both IPv4 and IPv6 are disabled, enable at least one",
    ),
    (
        "initial-mailbox-inbox",
        lambda s: replace(s, InitialMailboxes=InitialMailboxes(Regular=("INBOX",))),
        "initial regular mailbox cannot be set to Inbox (Inbox is always created)",
    ),
]


@pytest.mark.parametrize(
    ("mut", "expected"), [(r[1], r[2]) for r in STATIC_RULES], ids=[r[0] for r in STATIC_RULES]
)
def test_static_rules(mut: Callable[[Static], Static], expected: str, tmp_path: Path) -> None:
    assert _static_errors(lambda s: s, tmp_path / "ok") == []
    errors = _static_errors(mut, tmp_path / "bad")
    assert any(expected in e for e in errors), errors


def _with_host_key(s: Static, name: str) -> Static:
    public = s.Listeners["public"]
    assert public.TLS is not None
    return replace(s, Listeners={**s.Listeners, "public": replace(public, TLS=replace(public.TLS, HostPrivateKeyFiles=(name,)))})


@pytest.mark.parametrize(
    ("pem_type", "fmt", "error"),
    [
        ("PRIVATE KEY", serialization.PrivateFormat.TraditionalOpenSSL, "use ParsePKCS1PrivateKey instead"),
        ("RSA PRIVATE KEY", serialization.PrivateFormat.PKCS8, "use ParsePKCS8PrivateKey instead"),
        ("EC PRIVATE KEY", serialization.PrivateFormat.PKCS8, "use ParsePKCS8PrivateKey instead"),
        ("RSA PRIVATE KEY", serialization.PrivateFormat.TraditionalOpenSSL, ""),
        ("PRIVATE KEY", serialization.PrivateFormat.PKCS8, ""),
    ],
)
def test_host_key_pem_type_must_match_its_contents(
    pem_type: str, fmt: serialization.PrivateFormat, error: str, tmp_path: Path
) -> None:
    """mox's loadPrivateKeyFile parses by PEM type (PKCS#8, PKCS#1, SEC1); Go's x509 refuses a
    block whose contents are another format, naming the parser to use."""
    key = rsa.generate_private_key(65537, 2048)
    body = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode().splitlines()[1:-1]
    path = tmp_path / "hostkey.pem"  # the key's base64 under a PEM type of our choosing
    path.write_text(f"-----BEGIN {pem_type}-----\n" + "\n".join(body) + f"\n-----END {pem_type}-----\n")
    errors = _static_errors(lambda s: _with_host_key(s, str(path)), tmp_path / "cfg")
    if error:
        assert errors == [
            "listener public: parsing host private key for DANE and ACME certificates: "
            f"parsing private key: x509: failed to parse private key ({error} for this key format)"
        ]
    else:
        assert errors == []
