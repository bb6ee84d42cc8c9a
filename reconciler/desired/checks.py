"""Cross-checks of a desired state: what mox's validation would reject, found before anything
touches the live config, each problem with the data path of where it was written.

The rules are mox's where mox has them: names are parsed by `reconciler.mox.names`, separators,
canonical localparts and reporting addresses are computed by the mox port from the domains.conf
entries the desired domains stand for (`tomox`). What is left here is the reconciler's own: names
that must be usable as file names, references between desired objects (accounts, domains, alias
members), and removal lists.
"""

from __future__ import annotations

import functools
import re

from reconciler.desired.models import DKIM, DesiredAccount, DesiredDomain, DesiredState
from reconciler.desired.tomox import names_to_mox
from reconciler.desired.yamlload import dotted
from reconciler.mox.admin import account_name_problem, localpart_rules, reporting_address
from reconciler.mox.golang import Duration, format_duration
from reconciler.mox.names import (
    Domain,
    LocalpartRules,
    ParseError,
    check_mailbox_nfc,
    is_international_localpart,
    localpart_string,
    parse_address,
    parse_domain,
    parse_localpart,
)
from reconciler.mox.validate import (
    both_separators_error,
    dkim_headers_error,
    duplicate_separators,
    ed25519_hash_error,
    rejects_mailbox_error,
    separator_in_address_errors,
    separator_in_alias_errors,
    unknown_sign_selectors,
)

_P = tuple[str | int, ...]
_MIN_EVERY = Duration(24 * 3600 * 10**9)


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SPACE = re.compile(r"\s")  # str.isspace() of a character (both: Py_UNICODE_ISSPACE)


def _unsafe_relative_path(p: str) -> str | None:
    if _CONTROL.search(p):
        return "must not contain control characters (a file name)"
    if p.startswith("/") or p.startswith("\\"):
        return "must be relative to the config dir"
    if ".." in p and ".." in p.replace("\\", "/").split("/"):
        return "must not contain .. (it would leave the config dir)"
    return None


def _domain_key_problem(key: str) -> str | None:
    """mox's rule for config keys: ParseDomain, and spelled as its Name() (lower-case, Unicode),
    said plainly (mox says "must be specified in unicode form" for upper case too)."""
    if _SPACE.search(key):
        return "invalid domain name: contains a space" if " " in key else "invalid domain name: contains white space"
    try:
        d = parse_domain(key)
    except ParseError as e:
        return f"invalid domain name: {e}"
    if d.is_zero():
        return "invalid domain name: empty"
    if d.name() != key:
        if d.name() == key.lower() or d.name() == key.casefold():
            return f"must be lower case: {d.name()}"
        if key.lower() == d.ascii.lower():
            return f"must be written in Unicode form: {d.name()} (not {key})"
        return f"must be written as {d.name()} (lower case, Unicode form)"
    return None


# Pure checks of text that every domain or account repeats (a selector name, a mailbox, a
# reporting localpart), remembered: a state of 10,000 domains asks each of them 10,000 times.
_selector_name_problem = functools.lru_cache(maxsize=1024)(_domain_key_problem)
_mailbox_problem = functools.lru_cache(maxsize=1024)(check_mailbox_nfc)


@functools.lru_cache(maxsize=1024)
def _reporting_localpart_problem(key: str, localpart: str) -> str | None:
    try:
        lp = parse_localpart(localpart)
    except ParseError as e:
        return f"invalid {key} localpart: {e}"
    return "reporting localpart must be ASCII" if is_international_localpart(lp) else None


def _misspelled_domain(key: str) -> str | None:
    """The domain a misspelled key names (`Example.org` -> example.org), None when it is fine or
    names no domain: references to that domain are follow-ons of the key's problem."""
    try:
        d = parse_domain(key)
    except ParseError:
        return None
    return d.name() if not d.is_zero() and d.name() != key else None


class _Checker:
    def __init__(self, state: DesiredState) -> None:
        self.s = state
        self.problems: list[tuple[_P, str]] = []
        self.domains: dict[str, Domain] = {}  # desired key -> parsed
        self.index: dict[str, _P] = {}  # canonical address -> where defined
        # The domains.conf entries the desired domains stand for, as far as names go (separators,
        # case sensitivity, reporting addresses): mox's rules are applied to these.
        self.mox = {name: names_to_mox(d) for name, d in state.Domains.items()}
        self._rules: dict[str, LocalpartRules] = {}
        # Domains whose key is misspelled (reported once, at the key): references to them are
        # follow-on problems, not reported (the root cause first, and alone).
        self.misspelled = {m for name in state.Domains if (m := _misspelled_domain(name)) is not None}

    def err(self, path: _P, msg: str) -> None:
        self.problems.append((path, msg))

    def undefined_domain(self, name: str) -> str:
        """An address in a domain the desired state does not define (with what to do when the
        domain is being removed: its addresses go first)."""
        if name in self.s.Removed.Domains:
            return (f"domain {name} is not defined under Domains: it is listed under Removed.Domains, so remove "
                    "this address too")
        return f"domain {name} is not defined under Domains"

    def run(self) -> list[tuple[_P, str]]:
        s = self.s
        for name in s.Domains:
            why = _domain_key_problem(name)
            if why:
                self.err(("Domains", name), why)
            else:
                self.domains[name] = parse_domain(name)
        for name in s.Accounts:
            why = account_name_problem(name)
            if why:
                self.err(("Accounts", name), f"account name {why}")
        for kind, defined in (("Domains", s.Domains), ("Accounts", s.Accounts)):
            for i, name in enumerate(getattr(s.Removed, kind)):
                if name in defined:
                    self.err(("Removed", kind, i), f"{name} is both defined and listed as removed")
        for name, d in s.Domains.items():
            self.domain(name, d)
        for name, a in s.Accounts.items():
            self.account(name, a)
        for name in self.domains:
            self.reporting_addresses(name)
        for name, d in s.Domains.items():
            self.aliases(name, d)
        return self.problems

    # -- domains -----------------------------------------------------------------------------

    def domain(self, name: str, d: DesiredDomain) -> None:
        base: _P = ("Domains", name)
        if d.ClientSettingsDomain:
            try:
                parse_domain(d.ClientSettingsDomain)
            except ParseError as e:
                self.err((*base, "ClientSettingsDomain"), f"invalid domain name: {e}")
        why = both_separators_error(self.mox[name])
        if why:
            self.err((*base, "LocalpartCatchallSeparator"), why)
        for i, why in duplicate_separators(d.LocalpartCatchallSeparators) if d.LocalpartCatchallSeparators else ():
            self.err((*base, "LocalpartCatchallSeparators", i), why)
        if d.DKIM is not None:
            self.dkim(base, d.DKIM)
        defaulted = []
        for key, rep in (("DMARC", d.DMARC), ("TLSRPT", d.TLSRPT)):
            if rep is None:
                continue
            if not rep.Account:
                defaulted.append(key)
            elif rep.Account not in self.s.Accounts:
                self.err((*base, key, "Account"), f"account {rep.Account!r} is not defined under Accounts")
            why = _reporting_localpart_problem(key, rep.Localpart)
            if why:
                self.err((*base, key, "Localpart"), why)
            if rep.Domain and rep.Domain not in self.s.Domains and rep.Domain.lower() not in self.misspelled:
                self.err((*base, key, "Domain"), f"domain {rep.Domain!r} is not defined under Domains")
            why = _mailbox_problem("Mailbox", rep.Mailbox)
            if why:
                self.err((*base, key, "Mailbox"), why)
        if defaulted and not d.ReportsAccount:
            what = " and ".join(defaulted)
            self.err(
                (*base, "ReportsAccount"),
                f"needed for the default {what} reporting address (or set their Account, or null)",
            )
        if d.ReportsAccount and d.ReportsAccount not in self.s.Accounts:
            self.err((*base, "ReportsAccount"), f"account {d.ReportsAccount!r} is not defined under Accounts")

    def dkim(self, base: _P, dkim: DKIM) -> None:
        if dkim.Rotation is not None:
            self.rotation((*base, "DKIM"), dkim)
        for sname, sel in dkim.Selectors.items():
            p: _P = (*base, "DKIM", "Selectors", sname)
            why = _selector_name_problem(sname)
            if why:
                self.err(p, why.replace("domain name", "selector name"))
            if sel.PrivateKeyFile and sel.Algorithm:
                self.err(
                    (*p, "Algorithm"), "give either Algorithm (generate a key) or PrivateKeyFile (adopt one)"
                )
            if sel.PrivateKeyFile:
                why = _unsafe_relative_path(sel.PrivateKeyFile)
                if why:
                    self.err((*p, "PrivateKeyFile"), why)
            why = ed25519_hash_error(sel.Hash) if sel.Algorithm == "ed25519" else None
            if why:
                self.err((*p, "Hash"), why)
            why = dkim_headers_error(sel.Headers) if sel.Headers else None
            if why:
                self.err((*p, "Headers"), why)
        if dkim.Rotation is None:
            for i, why in unknown_sign_selectors(dkim.Selectors, dkim.Sign):
                self.err((*base, "DKIM", "Sign", i), why)

    def rotation(self, base: _P, dkim: DKIM) -> None:
        """A rotated domain's selectors and Sign are the rotation's (docs/dkim-rotation.md)."""
        rot = dkim.Rotation
        assert rot is not None
        if "Sign" in dkim.model_fields_set:
            self.err((*base, "Sign"), "not together with Rotation: the rotation decides which selector signs")
        if "Selectors" in dkim.model_fields_set:
            self.err((*base, "Selectors"), "not together with Rotation: the rotation names and keeps the "
                     "selectors (a live domain's selectors are taken over as they are)")
        p: _P = (*base, "Rotation")
        if rot.Every < _MIN_EVERY:
            self.err((*p, "Every"), f"must be at least {format_duration(_MIN_EVERY)} (a rotation takes days)")
        elif rot.Every <= rot.PublishWait:
            self.err((*p, "Every"), f"must be longer than PublishWait ({format_duration(rot.PublishWait)}): "
                     "each new key would be replaced as soon as it signs")
        for key in ("PublishWait", "RetireAfter"):
            if getattr(rot, key) < 0:
                self.err((*p, key), "must not be negative")

    def mailbox(self, path: _P, mailbox: str) -> None:
        why = _mailbox_problem(str(path[-1]), mailbox)
        if why:
            self.err(path, why)

    def rules(self, dom: str) -> LocalpartRules:
        """What mox's CanonicalLocalpart reads in the desired domain `dom` (its separators too)."""
        rules = self._rules.get(dom)
        if rules is None:
            rules = self._rules[dom] = localpart_rules(self.mox, dom)
        return rules

    def canonical(self, dom: str, lp: str) -> str:
        """mox's CanonicalLocalpart in the desired domain `dom`."""
        return self.rules(dom).canonical(lp)

    # -- accounts ----------------------------------------------------------------------------

    def known_domain(self, d: Domain) -> str | None:
        return d.name() if d.name() in self.domains else None

    def account(self, name: str, a: DesiredAccount) -> None:
        base: _P = ("Accounts", name)
        if a.Domain:
            try:
                parse_domain(a.Domain)
            except ParseError as e:
                self.err((*base, "Domain"), f"invalid domain name: {e}")
        why = rejects_mailbox_error(a.RejectsMailbox)
        if why:
            self.err((*base, "RejectsMailbox"), why)
        for key, dest in a.Destinations.items():
            p: _P = (*base, "Destinations", key)
            if key.startswith("@"):
                try:
                    dom = parse_domain(key[1:])
                except ParseError as e:
                    self.err(p, f"invalid catchall domain: {e}")
                    continue
                if self.known_domain(dom) is None:
                    if dom.name() not in self.misspelled:
                        self.err(p, self.undefined_domain(dom.name()))
                    continue
                self.enter("@" + dom.name(), p, "catchall destination")
            else:
                try:
                    addr = parse_address(key)
                except ParseError as e:
                    self.err(p, f"{e} (write the full address localpart@domain)")
                    continue
                dname = addr.domain.name()
                if dname not in self.domains:
                    if dname not in self.misspelled:
                        self.err(p, self.undefined_domain(dname))
                    continue
                rules = self.rules(dname)
                sep_errors = separator_in_address_errors(key, addr.localpart, rules.separators) \
                    if rules.separators else ()
                for why in sep_errors:
                    self.err(p, why)
                if not sep_errors:
                    self.enter(localpart_string(rules.canonical(addr.localpart)) + "@" + dname, p,
                               "destination address")
            if dest is not None and (why := _mailbox_problem("Mailbox", dest.Mailbox)):
                self.err((*p, "Mailbox"), why)

    def enter(self, canon: str, path: _P, what: str) -> None:
        if canon in self.index:
            first = self.index[canon]
            loc = self.s.where(*first)
            at = f" (first at {loc.file}:{loc.line}:{loc.col})" if loc else f" (first at {dotted(first)})"
            self.err(path, f"duplicate canonicalized {what} {canon}{at}")
            return
        self.index[canon] = path

    def reporting_addresses(self, name: str) -> None:
        """Reporting addresses join the index without a duplicate check, as in mox
        (mox-/config.go prepareDynamicConfig: they silently take over an equal destination)."""
        conf = self.mox[name]
        for rep in (conf.DMARC, conf.TLSRPT):
            if rep is None:
                continue
            try:
                self.index.setdefault(str(reporting_address(self.mox, name, rep)), ("Domains", name))
            except ParseError:
                continue

    def aliases(self, name: str, d: DesiredDomain) -> None:
        seen_alias: dict[str, str] = {}
        for key, alias in d.Aliases.items():
            p: _P = ("Domains", name, "Aliases", key)
            try:
                lp = parse_localpart(key)
            except ParseError as e:
                self.err(p, f"parsing alias: {e}")
                continue
            sep_errors = separator_in_alias_errors(lp, self.mox[name].separators())
            for why in sep_errors:
                self.err(p, why)
            if sep_errors:
                continue
            canon = localpart_string(self.canonical(name, lp)) + "@" + name
            if canon in seen_alias:
                self.err(p, f"duplicate alias address {canon} (also alias {seen_alias[canon]})")
            elif canon in self.index:
                self.err(p, f"alias {canon} already present as regular address")
            seen_alias[canon] = key
            members: set[str] = set()
            for i, member in enumerate(alias.Addresses):
                mp: _P = (*p, "Addresses", i)
                try:
                    addr = parse_address(member)
                except ParseError as e:
                    self.err(mp, f"alias member: {e}")
                    continue
                as_key = localpart_string(addr.localpart) + "@" + addr.domain.name()
                follow_on = addr.domain.name() in self.misspelled or name not in self.domains
                if as_key not in self.index and not follow_on:
                    self.err(
                        mp,
                        f"alias member {member} is not an address of any account "
                        "(members must be written in canonical form, e.g. lower-case)",
                    )
                if as_key in members:
                    self.err(mp, f"duplicate alias member {member}")
                members.add(as_key)


def check(state: DesiredState) -> list[tuple[_P, str]]:
    """Problems mox would reject, with the data path of each (no live config needed)."""
    return _Checker(state).run()
