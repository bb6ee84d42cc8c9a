"""Validation of domains.conf, equivalent to mox v0.0.17's `prepareDynamicConfig` (mox-/config.go).

mox validates domains.conf on every load and before every write, and an invalid file keeps the old
config running until mox's next own write overwrites it. So we must never write a file mox would
refuse, and must be able to say why, with mox's own texts: errors here are mox's messages with
mox's prefixes, all collected (like mox), in a deterministic order.

Determinism: mox iterates Go maps in random order. Here every map is iterated sorted by key
(Python code point order = Go byte order), phases run in mox's order. Where mox's *outcome* depends
on that order we pick a fixed, documented rule (see `_Validator._destination` and
`_Validator._fromid_final`).

Out of scope (not config-only): TLS public keys and queue contents (mox databases). mox.conf's
checks are in `validate_static`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.mox import keyfiles
from reconciler.mox.config import (
    Account,
    Destination,
    Dynamic,
    Route,
    Ruleset,
    Selector,
    Static,
    WebHandler,
)
from reconciler.mox.config import Domain as DomainConfig
from reconciler.mox.errors import ConfigInvalid
from reconciler.mox.golang import (
    URL,
    GoSyntaxError,
    go_lower,
    go_quote,
    parse_duration,
    parse_url,
    regexp_compile_error,
    sprintf_noargs,
    utf8_len,
)
from reconciler.mox.keyfiles import KeyCache, KeyFileError
from reconciler.mox.live import LiveConfig, config_dir_path
from reconciler.mox.names import (
    ZERO_DOMAIN,
    Address,
    Domain,
    ParseError,
    canonical_localpart,
    check_mailbox_name,
    check_mailbox_nfc,
    is_international_localpart,
    localpart_string,
    parse_address,
    parse_domain_or_zero,
    parse_localpart,
)
from reconciler.mox.validate_static import validate_static

__all__ = [
    "Validation",
    "check_live",
    "dynamic_errors",
    "require_valid",
    "validate_dynamic",
]


@dataclass
class Validation:
    """Outcome of validating domains.conf: mox's errors and the lookup tables mox derives."""

    errors: list[str]
    # mox's AccountDestinationsLocked: canonical address string -> account name. Holds the host
    # TLSRPT address, every destination (catchall as "@domain") and DMARC/TLSRPT addresses.
    addresses: dict[str, str] = field(default_factory=dict)
    # Canonical alias address -> (domain key, alias key).
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Domain keys with no address of their own, only reports (mox's ReportsOnly).
    reports_only: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------
# Rules of one value, in mox's words: the validator below uses them, and so do the desired-state
# checks (reconciler.desired.checks), which attach the YAML location.


def both_separators_error(conf: DomainConfig) -> str | None:
    if conf.LocalpartCatchallSeparator and conf.LocalpartCatchallSeparators:
        return "cannot have both LocalpartCatchallSeparator and LocalpartCatchallSeparators"
    return None


def duplicate_separators(separators: Sequence[str]) -> list[tuple[int, str]]:
    """(position, error) of each separator that repeats an earlier one."""
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for i, sep in enumerate(separators):
        if sep in seen:
            out.append((i, f"duplicate localpart catchall separator {go_quote(sep)}"))
        seen.add(sep)
    return out


def unknown_sign_selectors(selectors: Collection[str], sign: Sequence[str]) -> list[tuple[int, str]]:
    """(position in Sign, error) of each signing selector that is not configured."""
    return [(i, f"unknown selector {s} for signing") for i, s in enumerate(sign) if s not in selectors]


def dkim_headers_error(headers: Sequence[str]) -> str | None:
    if headers and not any(h.lower() == "from" for h in headers):
        return "From-field must always be DKIM-signed"
    return None


def ed25519_hash_error(hash_name: str) -> str | None:
    """An ed25519 key signs with sha256 only (`hash_name` "" means sha256)."""
    hash_eff = hash_name or "sha256"
    if hash_eff != "sha256":
        return f"hash algorithm {go_quote(hash_eff)} is not supported with ed25519, only sha256 is"
    return None


def rejects_mailbox_error(mailbox: str) -> str | None:
    if mailbox.lower() == "inbox":
        return "cannot set RejectsMailbox to inbox, messages will be removed automatically from the rejects mailbox"
    return None


def separator_in_address_errors(address: str, localpart: str, separators: Sequence[str]) -> list[str]:
    """A destination's localpart must not contain a catchall separator (one error per separator)."""
    return [f"localpart of address {address} includes domain catchall separator {sep}"
            for sep in separators if sep in localpart]


def separator_in_alias_errors(localpart: str, separators: Sequence[str]) -> list[str]:
    return ["alias contains localpart catchall separator" for sep in separators if sep in localpart]


# ---------------------------------------------------------------------------------------------
# The validator: phases in mox's order


@dataclass
class _Dom:
    """What mox derives per domain and later phases need."""

    domain: Domain
    separators: tuple[str, ...]
    case_sensitive: bool
    # Parsed reporting localparts; "" until the DMARC/TLSRPT phase (mox's ParsedLocalpart).
    dmarc_lp: str | None
    tlsrpt_lp: str | None


_HOOK_EVENTS = (
    "delivered",
    "suppressed",
    "delayed",
    "failed",
    "relayed",
    "expanded",
    "canceled",
    "unrecognized",
)
_WEB_SERVICES = ("admin", "account", "webmail", "webapi")


class _Validator:
    def __init__(self, static: Static, dyn: Dynamic, config_dir: Path, keys: KeyCache | None,
                 base: Dynamic | None = None) -> None:
        self.static = static
        self.dyn = dyn
        self.base = base
        self.config_dir = config_dir
        self.keys = keys if keys is not None else KeyCache()
        self.pedantic = static.Pedantic
        self.errors: list[str] = []
        self.addresses: dict[str, str] = {}
        self.aliases: dict[str, tuple[str, str]] = {}
        self.doms: dict[str, _Dom] = {}
        self.domain_has_address: set[str] = set()
        self.host_tlsrpt_key: str | None = None

    def err(self, msg: str) -> None:
        self.errors.append(msg)

    def _known_good(self, kind: str, name: str, value: object) -> bool:
        """`value` equals the base's object of that name: its own checks found nothing there.

        Only the checks of one object alone are skipped for it (they see nothing but the object
        and mox.conf); what involves other objects, and its key files, is checked as always."""
        if self.base is None:
            return False
        had = getattr(self.base, kind).get(name)
        return had is value or (had is not None and had == value)

    def nfc(self, what: str, mailbox: str, prefix: str = "") -> None:
        msg = check_mailbox_nfc(what, mailbox)
        if msg is not None:
            self.err(prefix + msg)

    def run(self) -> Validation:
        self._global()
        self._routes("global routes", self.dyn.Routes)
        for d in sorted(self.dyn.Domains):
            self._domain(d)
        for name in sorted(self.dyn.Accounts):
            self._account(name, self.dyn.Accounts[name])
        for d in sorted(self.dyn.Domains):
            self._reporting(d, "DMARC")
        for d in sorted(self.dyn.Domains):
            self._reporting(d, "TLSRPT")
        reports_only = {
            d for d in self.dyn.Domains if self.doms[d].domain.name() not in self.domain_has_address
        }
        for d in sorted(self.dyn.Domains):
            self._aliases(d)
        self._web()
        self._dnsbls()
        return Validation(self.errors, self.addresses, self.aliases, reports_only)

    def added_domains_only(self) -> list[str] | None:
        """The domains this config adds to the base, when that is all that differs for the other
        objects (None otherwise): every account and every other domain equal to the base's, and
        each added domain named as mox keys it, with no aliases and its reporting addresses in
        itself (no Domain).

        Then only the added domains can bring an error besides key files (`errors_added_only`):
        the base validated without one against the same mox.conf, and what else could fail
        reads nothing an added domain changes. An account's or a kept domain's checks read the
        domains its addresses, FromID logins and reporting addresses name, which all existed in
        the base (else it had an error) and are the same; the accounts' addresses are the same,
        so no new duplicates; the index only gains the added domains' reporting addresses, in
        those domains, where no alias of a kept domain is and no account has an address."""
        base, dyn = self.base, self.dyn
        if base is None:
            return None
        if dyn.Accounts is not base.Accounts:
            if len(dyn.Accounts) != len(base.Accounts):
                return None
            for name, acc in dyn.Accounts.items():
                had_acc = base.Accounts.get(name)
                if had_acc is not acc and had_acc != acc:
                    return None
        added: list[str] = []
        for name, conf in dyn.Domains.items():
            had = base.Domains.get(name)
            if had is None:
                if conf.Aliases or any(rep is not None and rep.Domain for rep in (conf.DMARC, conf.TLSRPT)):
                    return None
                parsed, error = parse_domain_or_zero(name)
                if error or parsed.name() != name:  # its addresses would be in a domain spelled otherwise
                    return None
                added.append(name)
            elif had is not conf and had != conf:
                return None
        if len(dyn.Domains) - len(added) != len(base.Domains):
            return None  # a domain removed
        return added

    def errors_added_only(self, added: list[str]) -> list[str]:
        """`run`'s errors for a config whose only difference is `added` (`added_domains_only`):
        the phases in `run`'s order, the kept objects only where they can fail (key files)."""
        self._global()
        self._routes("global routes", self.dyn.Routes)
        for d in sorted(self.dyn.Domains):
            self._domain(d)  # a kept domain: its key files only (`_known_good`)
        for kind in ("DMARC", "TLSRPT"):
            for d in sorted(added):
                self._reporting(d, kind)
        self._web()
        self._dnsbls()
        return self.errors

    # -- 3.1 global

    def _global(self) -> None:
        st = self.static
        if st.Postmaster.Account not in self.dyn.Accounts:
            self.err(f"postmaster account {go_quote(st.Postmaster.Account)} does not exist")
        self.nfc("postmaster mailbox", st.Postmaster.Mailbox)
        if st.HostTLSRPT.Account:
            if st.HostTLSRPT.Account not in self.dyn.Accounts:
                self.err(f"host tlsrpt account {go_quote(st.HostTLSRPT.Account)} does not exist")
            self.nfc("host tlsrpt mailbox", st.HostTLSRPT.Mailbox)
            try:
                lp = parse_localpart(st.HostTLSRPT.Localpart, self.pedantic)
            except ParseError:
                lp = ""  # reported by validate_static
            host, _ = parse_domain_or_zero(st.Hostname)
            key = str(Address(lp, host))
            self.addresses[key] = st.HostTLSRPT.Account
            self.host_tlsrpt_key = key

    # -- 3.2 routes

    def _routes(self, descr: str, routes: Sequence[Route]) -> None:
        for r in routes:
            for e in (*r.FromDomain, *r.ToDomain):
                if e == ".":
                    continue
                e = e.removeprefix(".")
                _, error = parse_domain_or_zero(e)
                if error:
                    self.err(f"{descr}: invalid domain {e}: {error}")
            if r.Transport not in self.static.Transports:
                self.err(f"{descr}: route references undefined transport {r.Transport}")

    # -- 3.3 domains

    def _domain_err(self, d: str) -> Callable[[str], None]:
        def derr(msg: str) -> None:
            self.err(sprintf_noargs(f"domain {d}: {msg}"))

        return derr

    def key_files(self) -> list[str]:
        """Only the checks of the DKIM key files, in `run`'s order (see `key_file_errors`)."""
        for d in sorted(self.dyn.Domains):
            selectors = self.dyn.Domains[d].DKIM.Selectors
            derr = self._domain_err(d)
            for name in sorted(selectors):
                self._selector_key(name, selectors[name], derr)
        return self.errors

    def _domain(self, d: str) -> None:
        conf = self.dyn.Domains[d]
        derr = self._domain_err(d)

        dom, error = parse_domain_or_zero(d)
        if self._known_good("Domains", d, conf):
            seps = conf.separators()
            self.doms[d] = _Dom(dom, seps, conf.LocalpartCaseSensitive, "" if conf.DMARC is not None else None,
                                "" if conf.TLSRPT is not None else None)
            for name in sorted(conf.DKIM.Selectors):
                self._selector_key(name, conf.DKIM.Selectors[name], derr)
            return
        if error:
            derr(f"parsing domain: {error}")
        elif dom.name() != d:
            derr(f"must be specified in unicode form, {dom.name()}")

        if conf.ClientSettingsDomain:
            _, error = parse_domain_or_zero(conf.ClientSettingsDomain)
            if error:
                derr(f"bad client settings domain {go_quote(conf.ClientSettingsDomain)}: {error}")

        error = both_separators_error(conf)
        if error:
            derr(error)
        seps = conf.separators()
        for _, error in duplicate_separators(seps):
            derr(error)
        self.doms[d] = _Dom(
            dom,
            seps,
            conf.LocalpartCaseSensitive,
            "" if conf.DMARC is not None else None,
            "" if conf.TLSRPT is not None else None,
        )

        for _, error in unknown_sign_selectors(conf.DKIM.Selectors, conf.DKIM.Sign):
            derr(error)
        for name in sorted(conf.DKIM.Selectors):
            self._selector(name, conf.DKIM.Selectors[name], derr)

        if conf.MTASTS is not None:
            if not any(lst.MTASTSHTTPS.Enabled for lst in self.static.Listeners.values()):
                # mox passes a superfluous argument here; Go's fmt appends it like this.
                derr(f"MTA-STS enabled, but there is no listener for MTASTS%!(EXTRA string={d})")
            if conf.MTASTS.PolicyID == "":
                derr("invalid empty MTA-STS PolicyID")
            if conf.MTASTS.Mode not in ("none", "testing", "enforce"):
                derr(f"invalid mtasts mode {go_quote(conf.MTASTS.Mode)}")

        self._routes("routes for domain", conf.Routes)

    def _selector(self, name: str, sel: Selector, derr: Callable[[str], None]) -> None:
        def serr(msg: str) -> None:
            derr(f"selector {name}: {msg}")

        seld, error = parse_domain_or_zero(name)
        if error:
            serr(f"parsing selector: {error}")
        elif seld.name() != name:
            serr(f"must be specified in unicode form, {go_quote(seld.name())}")
        if sel.Expiration:
            try:
                parse_duration(sel.Expiration)
            except GoSyntaxError as e:
                serr(f"invalid expiration {go_quote(sel.Expiration)}: {e}")
        hash_eff = sel.Hash or "sha256"
        if hash_eff not in ("sha1", "sha256"):
            serr(f"unsupported hash {go_quote(hash_eff)}")
        if not self._selector_key(name, sel, derr):
            return  # mox stops checking this selector here
        error = dkim_headers_error(sel.Headers)
        if error:
            serr(error)

    def _selector_key(self, name: str, sel: Selector, derr: Callable[[str], None]) -> bool:
        """The selector's key file, as mox loads it; False where mox stops checking the selector."""
        path = config_dir_path(self.config_dir, sel.PrivateKeyFile)
        try:
            kind = self.keys.kind(path)
        except KeyFileError as e:
            msg = str(e)
            derr(f"selector {name}: {msg}")
            if msg.startswith(("reading private key", "private key has no PEM", "parsing private key")):
                return False
            kind = None
        if kind == keyfiles.ED25519:
            error = ed25519_hash_error(sel.Hash)
            if error:
                derr(f"selector {name}: {error}")
        return True

    # -- 3.4 accounts

    def _account(self, name: str, acc: Account) -> None:
        def aerr(msg: str) -> None:
            self.err(f"account {go_quote(name)}: {msg}")

        acc_dom, error = parse_domain_or_zero(acc.Domain)
        alone = not self._known_good("Accounts", name, acc)  # checks of this account alone are needed
        if alone:
            if error:
                aerr(f"parsing domain {acc.Domain}: {error}")
            self._account_settings(acc, aerr)

        fromids: list[Address] = []
        for s in acc.FromIDLoginAddresses:
            try:
                a = parse_address(s, pedantic=self.pedantic)
            except ParseError as e:
                aerr(f"invalid fromid login address {go_quote(s)}: {e}")
                a = Address("", ZERO_DOMAIN)
            dn = a.domain.name()
            if dn not in self.dyn.Domains:
                aerr(f"unknown domain in fromid login address {go_quote(s)}")
            elif not self.dyn.Domains[dn].separators():
                aerr(
                    "localpart catchall separator not configured for domain "
                    f"for fromid login address {go_quote(s)}"
                )
            fromids.append(a)

        if alone:
            self._account_hooks(acc, aerr)

        own: set[str] = set()
        for key in sorted(acc.Destinations):
            self._destination(name, acc, acc_dom, key, acc.Destinations[key], aerr, own, alone)

        self._fromid_final(acc, fromids, own, aerr)
        if alone:
            self._routes("routes for account", acc.Routes)

    def _account_settings(self, acc: Account, aerr: Callable[[str], None]) -> None:
        error = rejects_mailbox_error(acc.RejectsMailbox)
        if error:
            aerr(error)
        self.nfc("rejects mailbox", acc.RejectsMailbox)

        if acc.Introbox:
            introbox, error = check_mailbox_name(acc.Introbox, False)
            if error:
                aerr(f"invalid Introbox mailbox: {error}")
            elif introbox == acc.RejectsMailbox:
                aerr("cannot set Introbox and RejectsMailbox to the same mailbox")

        if utf8_len(acc.LoginDisabled) > 256:
            aerr("message for disabled login must be <256 characters")
        for c in acc.LoginDisabled:
            if c < " " or ord(c) >= 0x7F:
                # mox reports once per offending character.
                aerr("message cannot contain control characters including newlines, and must be ascii-only")

        ajf = acc.AutomaticJunkFlags
        for what, rx in (
            ("JunkMailboxRegexp", ajf.JunkMailboxRegexp),
            ("NeutralMailboxRegexp", ajf.NeutralMailboxRegexp),
            ("NotJunkMailboxRegexp", ajf.NotJunkMailboxRegexp),
        ):
            if rx:
                error = regexp_compile_error(rx)
                if error:
                    aerr(f"invalid {what} regular expression: {error}")

        if acc.JunkFilter is not None:
            p = acc.JunkFilter.Params
            if p.MaxPower < 0 or p.MaxPower > 0.5:
                aerr("junk filter MaxPower must be >= 0 and < 0.5")
            if p.TopWords < 0:
                aerr("junk filter TopWords must be >= 0")
            if p.IgnoreWords < 0 or p.IgnoreWords > 0.5:
                aerr("junk filter IgnoreWords must be >= 0 and < 0.5")
            if p.RareWords < 0:
                aerr("junk filter RareWords must be >= 0")

    def _account_hooks(self, acc: Account, aerr: Callable[[str], None]) -> None:
        for what, hook_url in (
            ("outgoing", acc.OutgoingWebhook.URL if acc.OutgoingWebhook else None),
            ("incoming", acc.IncomingWebhook.URL if acc.IncomingWebhook else None),
        ):
            if hook_url is None:
                continue
            try:
                u = parse_url(hook_url)
                if u.scheme not in ("http", "https"):
                    raise ValueError("scheme must be http or https")
            except ValueError as e:
                aerr(f"parsing {what} hook url {go_quote(hook_url)}: {e}")
            if what == "outgoing" and acc.OutgoingWebhook is not None:
                for ev in acc.OutgoingWebhook.Events:
                    if ev not in _HOOK_EVENTS:
                        aerr(f"unknown outgoing hook event {go_quote(ev)}")

    def _canonical(self, lp: str, dom: _Dom | None) -> str:
        if dom is None:
            return go_lower(lp)
        return canonical_localpart(lp, case_sensitive=dom.case_sensitive, separators=dom.separators,
                                   dmarc_localpart=dom.dmarc_lp, tlsrpt_localpart=dom.tlsrpt_lp)

    def _destination(
        self,
        acc_name: str,
        acc: Account,
        acc_dom: Domain,
        key: str,
        dest: Destination,
        aerr: Callable[[str], None],
        own: set[str],
        alone: bool = True,
    ) -> None:
        """One destination. Duplicates: destinations are visited in (account, key) order and the
        later one gets the error (mox: whichever Go's random map order visits second). `alone`:
        also the checks of the destination by itself (not needed when its account is known good)."""

        def derr(msg: str) -> None:
            aerr(f"destination {go_quote(key)}: {msg}")

        if alone:
            self._destination_settings(dest, derr)
        self._destination_address(acc_name, acc_dom, key, derr, own)

    def _destination_settings(self, dest: Destination, derr: Callable[[str], None]) -> None:
        msg = check_mailbox_nfc("destination mailbox", dest.Mailbox)
        if msg:
            derr(msg)

        if dest.SMTPError:
            if utf8_len(dest.SMTPError) > 256:
                derr("smtp error must be smaller than 256 bytes")
            if any(c < " " or ord(c) >= 0x7F for c in dest.SMTPError):
                derr("smtp error cannot contain contain control characters (including newlines) or non-ascii")
            if dest.Mailbox:
                derr("cannot have both SMTPError and Mailbox")
            if dest.Rulesets:
                derr("cannot have both SMTPError and Rulesets")
            if dest.SMTPError.split(" ", 1)[0] not in ("421", "550"):
                derr(f"smtp error must be 421 or 550 (with optional message), not {go_quote(dest.SMTPError)}")
        if dest.MessageAuthRequiredSMTPError:
            if utf8_len(dest.MessageAuthRequiredSMTPError) > 256:
                derr("message authentication required smtp error must be smaller than 256 bytes")
            if any(c < " " or ord(c) >= 0x7F for c in dest.MessageAuthRequiredSMTPError):
                derr(
                    "message authentication required smtp error cannot contain contain control "
                    "characters (including newlines) or non-ascii"
                )

        for i, rs in enumerate(dest.Rulesets):
            self._ruleset(i + 1, rs, derr)

    def _destination_address(self, acc_name: str, acc_dom: Domain, key: str, derr: Callable[[str], None],
                             own: set[str]) -> None:
        """The destination's address in the index: its domain, separators, canonical form, duplicates."""
        if key.startswith("@"):
            d, error = parse_domain_or_zero(key[1:])
            if error:
                derr(f"parsing domain {go_quote(key[1:])}")
                return
            if d.name() not in self.dyn.Domains:
                derr("unknown domain for address")
                return
            self.domain_has_address.add(d.name())
            full = "@" + d.name()
            if full in self.addresses:
                derr(f"duplicate canonicalized catchall destination address {full}")
            self.addresses[full] = acc_name
            own.add(full)
            return

        lp: str | None = None
        if "@" not in key or key.startswith('"'):  # else no localpart (an unquoted one has no "@"):
            with contextlib.suppress(ParseError):  # parse_localpart's error, not raised for each address
                lp = parse_localpart(key, self.pedantic)
        if lp is None:
            try:
                addr = parse_address(key, pedantic=self.pedantic)
            except ParseError:
                derr("invalid email address")
                return
            if addr.domain.name() not in self.dyn.Domains:
                derr("unknown domain for address")
                return
        else:
            # Deprecated: a bare localpart, completed with the account's domain.
            addr = Address(lp, acc_dom)
            if acc_dom.name() not in self.dyn.Domains:
                derr(f"unknown domain {acc_dom.name()}")
                return

        dn = addr.domain.name()
        self.domain_has_address.add(dn)
        dom = self.doms.get(dn)
        full = str(addr)
        sep_errors = separator_in_address_errors(full, addr.localpart, dom.separators if dom else ())
        for error in sep_errors:
            derr(error)
        if not sep_errors:
            canonical = self._canonical(addr.localpart, dom)
            if canonical != addr.localpart:
                full = str(Address(canonical, addr.domain))
        if full in self.addresses:
            derr(f"duplicate canonicalized destination address {full}")
        self.addresses[full] = acc_name
        own.add(full)

    def _ruleset(self, n: int, rs: Ruleset, derr: Callable[[str], None]) -> None:
        def rerr(msg: str) -> None:
            derr(f"ruleset {n}: {msg}")

        msg = check_mailbox_nfc("ruleset mailbox", rs.Mailbox)
        if msg:
            rerr(msg)
        count = 0
        if rs.SMTPMailFromRegexp:
            count += 1
            error = regexp_compile_error(rs.SMTPMailFromRegexp)
            if error:
                rerr(f"invalid SMTPMailFrom regular expression: {error}")
        if rs.MsgFromRegexp:
            count += 1
            error = regexp_compile_error(rs.MsgFromRegexp)
            if error:
                rerr(f"invalid MsgFrom regular expression: {error}")
        if rs.VerifiedDomain:
            count += 1
            _, error = parse_domain_or_zero(rs.VerifiedDomain)
            if error:
                rerr(f"invalid VerifiedDomain: {error}")
        for k in sorted(rs.HeadersRegexp):
            v = rs.HeadersRegexp[k]
            count += 1
            if go_lower(k) != k:
                rerr(f"header field {go_quote(k)} must only have lower case characters")
            if go_lower(v) != v:
                rerr(f"header value {go_quote(v)} must only have lower case characters")
            for rx in (k, v):
                error = regexp_compile_error(rx)
                if error:
                    rerr(f"invalid rule header regexp {go_quote(rx)}: {error}")
        if count == 0:
            rerr("ruleset must have at least one rule")
        if rs.IsForward and rs.ListAllowDomain:
            rerr("ruleset cannot have both IsForward and ListAllowDomain")
        if rs.IsForward and (not rs.SMTPMailFromRegexp or not rs.VerifiedDomain):
            rerr("ruleset with IsForward must have both SMTPMailFromRegexp and VerifiedDomain too")
        if rs.ListAllowDomain:
            _, error = parse_domain_or_zero(rs.ListAllowDomain)
            if error:
                rerr(f"invalid ListAllowDomain {go_quote(rs.ListAllowDomain)}: {error}")
        msg = check_mailbox_nfc("rejects mailbox", rs.AcceptRejectsToMailbox)
        if msg:
            rerr(msg)
        if rs.AcceptRejectsToMailbox.lower() == "inbox":
            rerr("AcceptRejectsToMailbox cannot be set to Inbox")

    def _fromid_final(
        self, acc: Account, fromids: list[Address], own: set[str], aerr: Callable[[str], None]
    ) -> None:
        """FromID login addresses must be (or fall under the catchall of) the account's addresses.

        mox consults its partially built index, so whether another account's address counts
        depends on Go's map order. We accept only this account's own addresses and the host
        TLSRPT address (present in every order): never more lenient than mox.
        """
        usable = own | ({self.host_tlsrpt_key} if self.host_tlsrpt_key else set())
        for s, a in zip(acc.FromIDLoginAddresses, fromids, strict=True):
            if "@" + a.domain.name() in usable:
                continue
            dom = self.doms.get(a.domain.name())
            canon = Address(self._canonical(a.localpart, dom), a.domain)
            key = "" if canon.is_zero() else str(canon)
            if key not in usable:
                aerr(f"fromid login address {go_quote(s)} does not match its destination addresses")

    # -- 3.5 reporting addresses

    def _reporting(self, d: str, kind: str) -> None:
        conf = self.dyn.Domains[d]
        rep = conf.DMARC if kind == "DMARC" else conf.TLSRPT
        if rep is None:
            return

        def derr(msg: str) -> None:
            self.err(f"domain {d}: {msg}")

        if rep.Account not in self.dyn.Accounts:
            derr(f"{kind} account {go_quote(rep.Account)} does not exist")
        try:
            lp = parse_localpart(rep.Localpart, self.pedantic)
        except ParseError as e:
            derr(f"invalid {kind} localpart {go_quote(rep.Localpart)}: {e}")
            lp = ""
        if is_international_localpart(lp):
            allowed = "possible" if kind == "DMARC" else "allowed"
            derr(
                f"{kind} localpart {go_quote(localpart_string(lp))} is an internationalized address, "
                f"only conventional ascii-only address {allowed} for interopability"
            )
        own = self.doms[d]
        addrdom = own.domain
        if rep.Domain:
            addrdom, error = parse_domain_or_zero(rep.Domain)
            if error:
                derr(f"{kind} domain {go_quote(rep.Domain)}: {error}")
            elif addrdom.name() not in self.dyn.Domains:
                shown = addrdom.log_string() if kind == "DMARC" else rep.Domain
                derr(f"unknown domain {go_quote(shown)} for {kind} address")
            elif not self.dyn.Domains[addrdom.name()].LocalpartCaseSensitive:
                lp = go_lower(lp)
        elif not own.case_sensitive:
            lp = go_lower(lp)
        if addrdom == own.domain:
            self.domain_has_address.add(addrdom.name())
        if kind == "DMARC":
            own.dmarc_lp = lp
            what = "DMARC mailbox for account"
        else:
            own.tlsrpt_lp = lp
            what = "TLSRPT mailbox"
        msg = check_mailbox_nfc(what, rep.Mailbox)
        if msg:
            derr(msg)
        # No duplicate check: a reporting address silently takes over an equal destination.
        self.addresses[str(Address(lp, addrdom))] = rep.Account

    # -- 3.7 aliases

    def _aliases(self, d: str) -> None:
        conf = self.dyn.Domains[d]
        dom = self.doms[d]
        for lpstr in sorted(conf.Aliases):
            alias = conf.Aliases[lpstr]

            def aerr(msg: str, lpstr: str = lpstr) -> None:
                self.err(f"domain {d}: alias {lpstr}: {msg}")

            try:
                lp = parse_localpart(lpstr, self.pedantic)
            except ParseError as e:
                aerr(f"parsing alias: {e}")
                continue
            sep_errors = separator_in_alias_errors(lp, dom.separators)
            for error in sep_errors:
                aerr(error)
            if sep_errors:
                continue
            addr = str(Address(self._canonical(lp, dom), dom.domain))
            if addr in self.aliases:
                aerr(f"duplicate alias address {go_quote(addr)}")
                continue
            if addr in self.addresses:
                aerr(f"alias {go_quote(addr)} already present as regular address")
                continue
            if not alias.Addresses:
                aerr(f"alias {go_quote(addr)} needs at least one destination address")
                continue
            seen: set[str] = set()
            for member in alias.Addresses:
                try:
                    da = parse_address(member, pedantic=self.pedantic)
                except ParseError as e:
                    aerr(f"parsing destination address {go_quote(member)}: {e}")
                    continue
                dastr = str(da)
                if dastr not in self.addresses:
                    aerr(f"references non-existent address {go_quote(member)}")
                    continue
                if dastr in seen:
                    aerr(f"duplicate address {go_quote(member)}")
                    continue
                seen.add(dastr)
            self.aliases[addr] = (d, lpstr)

    # -- 3.8 web, DNSBLs

    def _web(self) -> None:
        dyn = self.dyn
        if (dyn.WebDomainRedirects or dyn.WebHandlers) and not any(
            lst.WebserverHTTP.Enabled or lst.WebserverHTTPS.Enabled for lst in self.static.Listeners.values()
        ):
            self.err(
                "WebDomainRedirects or WebHandlers configured but no listener with "
                "WebserverHTTP or WebserverHTTPS enabled"
            )
        seen: set[Domain] = set()
        for frm in sorted(dyn.WebDomainRedirects):
            to = dyn.WebDomainRedirects[frm]

            def rerr(msg: str, frm: str = frm, to: str = to) -> None:
                self.err(f"web redirect {frm} to {to}: {msg}")

            fromdom, error = parse_domain_or_zero(frm)
            if error:
                rerr(f"parsing domain for redirect {frm}: {error}")
            todom, error = parse_domain_or_zero(to)
            if error:
                rerr(f"parsing domain for redirect {to}: {error}")
            elif fromdom == todom:
                rerr(f"will not redirect domain {todom.log_string()} to itself")
            if fromdom in seen and fromdom != ZERO_DOMAIN:
                rerr(f"duplicate redirect domain {frm}")
            seen.add(fromdom)
        for wh in dyn.WebHandlers:
            self._webhandler(wh)

    def _webhandler(self, wh: WebHandler) -> None:
        def herr(msg: str) -> None:
            self.err(f"webhandler {wh.Domain} {wh.PathRegexp}: {msg}")

        _, error = parse_domain_or_zero(wh.Domain)
        if error:
            herr(f"parsing domain: {error}")
        if not wh.PathRegexp.startswith("^"):
            herr("path regexp must start with a ^")
        error = regexp_compile_error(wh.PathRegexp)
        if error:
            herr(f"compiling regexp: {error}")
        n = 0
        if wh.WebStatic is not None:
            n += 1
            ws = wh.WebStatic
            if ws.StripPrefix and not ws.StripPrefix.startswith("/"):
                herr(f"static: prefix to strip {ws.StripPrefix} must start with a slash")
            for k in sorted(ws.ResponseHeaders):
                if k.strip() != k or not k:
                    herr(f"static: bad header {go_quote(k)}")
        if wh.WebRedirect is not None:
            n += 1
            wr = wh.WebRedirect
            if wr.BaseURL:
                try:
                    u = parse_url(wr.BaseURL)
                except ValueError as e:
                    herr(f"redirect: parsing redirect url {wr.BaseURL}: {e}")
                    u = URL("", "")
                if u.path not in ("", "/"):
                    # mox passes a superfluous argument here; Go's fmt appends it like this.
                    herr(f"redirect: BaseURL must have empty path%!(EXTRA string={wr.BaseURL})")
            if wr.OrigPathRegexp and wr.ReplacePath:
                error = regexp_compile_error(wr.OrigPathRegexp)
                if error:
                    herr(f"compiling regexp {wr.OrigPathRegexp}: {error}")
            elif wr.OrigPathRegexp or wr.ReplacePath:
                herr("redirect: must have either both OrigPathRegexp and ReplacePath, or neither")
            elif not wr.BaseURL:
                herr("must at least one of BaseURL and OrigPathRegexp+ReplacePath")
            if wr.StatusCode != 0 and (wr.StatusCode < 300 or wr.StatusCode >= 400):
                herr(f"redirect: invalid redirect status code {wr.StatusCode}")
        if wh.WebForward is not None:
            n += 1
            wf = wh.WebForward
            try:
                parse_url(wf.URL)
            except ValueError as e:
                herr(f"forward: parsing url {wf.URL}: {e}")
            for k in sorted(wf.ResponseHeaders):
                if k.strip() != k or not k:
                    herr(f"forrward: bad header {go_quote(k)}")  # sic, mox's spelling
        if wh.WebInternal is not None:
            n += 1
            wi = wh.WebInternal
            if not wi.BasePath.startswith("/") or not wi.BasePath.endswith("/"):
                herr(f"internal service: base path {go_quote(wi.BasePath)} must start and end with /")
            if wi.Service not in _WEB_SERVICES:
                herr(f"internal service: unknown service {go_quote(wi.Service)}")
        if n != 1:
            herr(f"must have exactly one handler, not {n}")

    def _dnsbls(self) -> None:
        zones: list[Domain] = []
        for s in self.dyn.MonitorDNSBLs:
            d, error = parse_domain_or_zero(s)
            if error:
                self.err(f"dnsbl {s}: parsing dnsbl zone: {error}")
                continue
            if d in zones:
                self.err(f"dnsbl {s}: duplicate zone")
                continue
            zones.append(d)


def validate_dynamic(
    static: Static, dynamic: Dynamic, config_dir: Path, *, keys: KeyCache | None = None,
    base: Dynamic | None = None,
) -> Validation:
    """Validate domains.conf like mox's prepareDynamicConfig; key files relative to `config_dir`.

    `base`: a config that validated without any error against the same `static` (the live
    config mox accepted, or a plan's checked result). Domains and accounts equal to base's are
    not checked again on their own; their key files and everything that involves other objects
    (addresses, reporting addresses, aliases, references) are. The result is the same as
    without `base` (tests/test_validate_incremental.py); it is faster when few objects changed.
    """
    return _Validator(static, dynamic, config_dir, keys, base).run()


def dynamic_errors(
    static: Static, dynamic: Dynamic, config_dir: Path, *, keys: KeyCache | None = None,
    base: Dynamic | None = None,
) -> list[str]:
    """validate_dynamic's errors (the same, in its order), without the indexes it also returns:
    for a config that only adds domains to a `base` that validated (a plan of new domains),
    only the added domains and the key files are checked (`_Validator.added_domains_only`)."""
    v = _Validator(static, dynamic, config_dir, keys, base)
    added = v.added_domains_only()
    if added is not None:
        return v.errors_added_only(added)
    return v.run().errors


def key_file_errors(static: Static, dynamic: Dynamic, config_dir: Path, *, keys: KeyCache | None = None) -> list[str]:
    """validate_dynamic's errors for a config whose every other check is known to pass: a plan's
    result that validated without an error against the same `static` with its new key files
    taken as made (`pipeline.check_result`), validated again before it is written, when those
    files exist. Only the key files can then fail (missing, unreadable, of another kind than the
    selector's hash allows): their errors are validate_dynamic's errors, in its order
    (tests/test_validate_incremental.py compares them)."""
    return _Validator(static, dynamic, config_dir, keys).key_files()


def require_valid(
    static: Static, dynamic: Dynamic, config_dir: Path, *, keys: KeyCache | None = None,
    base: Dynamic | None = None,
) -> Validation:
    """validate_dynamic, raising ConfigInvalid with every error when mox would refuse the config."""
    v = validate_dynamic(static, dynamic, config_dir, keys=keys, base=base)
    if v.errors:
        raise ConfigInvalid(v.errors)
    return v


def check_live(live: LiveConfig, *, keys: KeyCache | None = None) -> list[str]:
    """Every error of mox.conf and domains.conf as read, for `mox-reconciler config test`.

    mox stops after mox.conf errors; we report both files' errors at once (same verdict).
    """
    errs = validate_static(live.static, live.paths)
    errs.extend(validate_dynamic(live.static, live.dynamic, live.paths.config_dir, keys=keys).errors)
    return errs
