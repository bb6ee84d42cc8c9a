"""mox's config mutation primitives (admin/admin.go, v0.0.17) as pure functions over the config.

Each operation is a frozen value object named after the mox primitive. `op.apply(dynamic, ctx)`
composes a new `Dynamic` without touching the old one and returns it with its side-effect intents
(DKIM key files to create, key files to retire to `old/` after the write). Preconditions raise
`RequestError` with mox's texts verbatim. Full validation, key generation and the write happen in
`batch`, so plans and tests can run these without I/O, a clock or randomness (`ctx.now`).

Deliberate differences from mox, all for safety:
* AccountRemove keeps the account's data directory (mox deletes it) and reports its path.
* The last domain or account is never removed (mox would write an unparsable `Domains:\\n\\tx:`).
* AddressAdd/AccountAdd/AliasAdd/AliasAddressesAdd write addresses in canonical form
  (lower-case localpart unless the domain is case-sensitive), so they stay removable; pass
  `as_typed=True` to store the spelling as given, as mox does.
* Account names must be usable as directory names (`account_name_problem`).
The port's full list of differences is in reconciler/mox/README.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from reconciler.mox import config as mc
from reconciler.mox import keygen
from reconciler.mox.config import Account, Alias, Dynamic, Static
from reconciler.mox.errors import PrimitiveError, RequestError
from reconciler.mox.golang import Duration, format_compact, format_duration, go_lower, go_quote
from reconciler.mox.keygen import KeyRequest
from reconciler.mox.names import (
    Address,
    LocalpartRules,
    ParseError,
    localpart_string,
    parse_address,
    parse_domain,
    parse_localpart,
)
from reconciler.mox.names import Domain as DNSDomain
from reconciler.mox.secret import shown

JSON_VERSION = 1



@dataclass(frozen=True, slots=True)
class Context:
    """What the primitives need besides the config: mox.conf, the clock, and the data dir listing.

    `now` is an aware local time (key file names, DKIM year); MTA-STS PolicyIDs use it in UTC.
    `account_dirs` are the names under `DataDir/accounts` (AccountAdd refuses those).
    """

    static: Static
    now: datetime
    data_dir: Path = Path("data")
    account_dirs: frozenset[str] = frozenset()

    def account_dir(self, account: str) -> Path:
        """Where mox keeps the account's mail: `filepath.Join(mox.DataDirPath("accounts"), account)`."""
        return self.data_dir / "accounts" / account


@dataclass(frozen=True, slots=True)
class Effect:
    """A primitive's result: the new config plus what must happen on disk around the write."""

    dynamic: Dynamic
    new_keys: tuple[KeyRequest, ...] = ()
    retired_keys: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# Helpers: mox's address index and canonical forms.


def reporting_address(domains: Mapping[str, mc.Domain], own: str, rep: mc.DMARC | mc.TLSRPT) -> Address:
    """A DMARC/TLSRPT reporting address as mox keeps it once loaded (prepareDynamicConfig's
    ParsedLocalpart and DNSDomain): the localpart lower-cased unless the address's domain is a
    configured case-sensitive one (an unknown domain, which validation rejects, keeps it as is).
    Raises ParseError for a localpart or domain mox would reject."""
    lp = parse_localpart(rep.Localpart)
    if rep.Domain:
        addr_domain = parse_domain(rep.Domain)
        target = domains.get(addr_domain.name())
    else:
        addr_domain = parse_domain(own)
        target = domains.get(own)
    if target is not None and not target.LocalpartCaseSensitive:
        lp = go_lower(lp)
    return Address(lp, addr_domain)


def _reporting_localpart(domains: Mapping[str, mc.Domain], own: str, rep: mc.DMARC | mc.TLSRPT | None) -> str | None:
    if rep is None:
        return None
    try:
        return reporting_address(domains, own, rep).localpart
    except ParseError:
        return None


def localpart_rules(domains: Mapping[str, mc.Domain], name: str) -> LocalpartRules:
    """What CanonicalLocalpart (mox-/lookup.go) reads from the config of domain `name`."""
    d = domains[name]
    return LocalpartRules(
        case_sensitive=d.LocalpartCaseSensitive,
        separators=d.separators(),
        dmarc_localpart=_reporting_localpart(domains, name, d.DMARC),
        tlsrpt_localpart=_reporting_localpart(domains, name, d.TLSRPT),
    )


def canonical_lp(dyn: Dynamic, domain: DNSDomain, lp: str) -> str:
    """mox's CanonicalLocalpart of `lp` for a configured domain."""
    return localpart_rules(dyn.Domains, domain.name()).canonical(lp)


def canonical_address(dyn: Dynamic, addr: Address) -> str:
    """The canonical spelling of an address in a configured domain (else as parsed)."""
    if addr.domain.name() not in dyn.Domains:
        return str(addr)
    return str(Address(canonical_lp(dyn, addr.domain, addr.localpart), addr.domain))


@functools.lru_cache(maxsize=1 << 17)
def _destination_address(key: str, account_domain: str) -> Address | None:
    """A Destinations key as mox reads it: a bare localpart (deprecated: in the account's
    Domain) or a full address. A key with an "@" is tried as an address first (a localpart can
    hold "@" only quoted, and then is no address), which keeps the common case free of errors."""
    attempts = ("address", "localpart") if "@" in key else ("localpart", "address")
    for kind in attempts:
        try:
            if kind == "address":
                return parse_address(key)
            return Address(parse_localpart(key), parse_domain(account_domain))
        except ParseError:
            continue
    return None


@functools.lru_cache(maxsize=1 << 17)
def _canonical_string(addr: Address, rules: LocalpartRules) -> str:
    return str(Address(rules.canonical(addr.localpart), addr.domain))


class _CanonMemo:
    """The canonical forms of destination keys under one Domains mapping (kept alive here, so its
    identity is a safe key; configs are never mutated, a changed domain means a new mapping): the
    planner asks for the same keys of 10,000 accounts several times per phase, and the index
    build (`_build_address_index`) for all of them again. With it, the per-domain inputs of the
    canonical form (localpart_rules) under that mapping.

    Moving to another mapping keeps what it does not change: a key's form reads only its own
    domain's entry and the entries its reporting addresses name (`admin.localpart_rules`), so
    only the keys of the domains added, removed or replaced, and of the domains whose reporting
    addresses name one of those, are worked out again (a DomainAdd at 10,000 domains no longer
    redoes 20,000 keys)."""

    def __init__(self) -> None:
        self.domains: Mapping[str, mc.Domain] = {}
        self.forms: dict[str, str] = {}  # key -> canonical form
        self.keys_of: dict[str, list[str]] = {}  # domain name -> keys whose form reads it
        self.rules: dict[str, LocalpartRules] = {}
        self.readers: dict[str, set[str]] = {}  # domain name -> domains whose rules read its entry

    def move_to(self, domains: Mapping[str, mc.Domain]) -> None:
        old = self.domains
        if len(self.forms) > _CANON_MEMO_MAX:  # keys of configs long gone (a watcher runs for weeks)
            self.__init__()  # type: ignore[misc]
            old = self.domains
        changed = {n for n, v in domains.items() if old.get(n) is not v}
        changed.update(n for n in old if n not in domains)
        for name in [*changed]:
            changed.update(self.readers.pop(name, ()))
        for name in changed:
            for key in self.keys_of.pop(name, ()):
                self.forms.pop(key, None)
            self.rules.pop(name, None)
        self.domains = domains

    def rules_of(self, name: str) -> LocalpartRules:
        r = self.rules.get(name)
        if r is None:
            r = self.rules[name] = localpart_rules(self.domains, name)
            conf = self.domains[name]
            for rep in (conf.DMARC, conf.TLSRPT):
                if rep is not None and rep.Domain:
                    with contextlib.suppress(ParseError):  # a domain that does not parse names no entry
                        self.readers.setdefault(parse_domain(rep.Domain).name(), set()).add(name)
        return r


_CANON_MEMO = _CanonMemo()
_CANON_MEMO_MAX = 1 << 18


def canonical_key(dyn: Dynamic, key: str) -> str:
    """The address-index form of a destination key (catchalls as @<name>), as parsed alone (an
    address, or the key itself when it does not parse; not completed with the account's
    Domain): the planner's, and the index build's for every key that parses as an address."""
    memo = _CANON_MEMO
    if memo.domains is not dyn.Domains:
        memo.move_to(dyn.Domains)
    canon = memo.forms.get(key)
    if canon is None:
        canon = memo.forms[key] = _canon_uncached(dyn, key, memo)
    return canon


@functools.lru_cache(maxsize=1 << 17)
def _parsed_key(key: str) -> Address | str | None:
    """A destination key as parsed (whatever the config): a catchall's @<name>, an address, or
    None when it does not parse. Kept across mappings: after each new domain the canonical forms
    are asked again, and parsing is most of their cost."""
    try:
        if key.startswith("@"):
            return "@" + parse_domain(key[1:]).name()
        return parse_address(key)
    except ParseError:
        return None


def _canon_uncached(dyn: Dynamic, key: str, memo: _CanonMemo) -> str:
    """canonical_address of the parsed key (the key itself when it does not parse), with the
    domain's rules computed once per mapping; the key is filed under the domain it reads."""
    parsed = _parsed_key(key)
    if parsed is None:
        return key
    if isinstance(parsed, str):
        return parsed
    name = parsed.domain.name()
    memo.keys_of.setdefault(name, []).append(key)
    if name not in dyn.Domains:
        return str(parsed)
    r = memo.rules_of(name)
    try:
        return str(Address(r.canonical(parsed.localpart), parsed.domain))
    except ParseError:
        return key


# Indexes of the last few configs (kept alive here, so identity is a safe key): a plan or a
# batch of N operations would otherwise rebuild the index of every address N times. With each,
# the domain names whose addition changes more than the new domain's own entries (`_Blocked`).
_INDEX_MEMO: list[tuple[Static, Dynamic, Mapping[str, str], frozenset[str]]] = []


class _Index(Mapping[str, str]):
    """An address index as a few changes to one built before: each operation of a plan or a batch
    derives its config's index from the previous config's. Copied whole, that was 40,000 entries
    per operation at 10,000 accounts (and a dict with a deleted entry is copied entry by entry,
    about 4 ms), most of a plan of 100 new domains; here only the changes are copied. `changes`:
    address -> account, or None where the address is gone."""

    __slots__ = ("base", "changes")
    MAX_CHANGES = 4096  # then a plain dict again (one copy), so a long run's lookups stay one probe

    def __init__(self, base: dict[str, str], changes: dict[str, str | None]) -> None:
        self.base = base
        self.changes = changes

    def __getitem__(self, key: str) -> str:
        if key in self.changes:
            account = self.changes[key]
            if account is None:
                raise KeyError(key)
            return account
        return self.base[key]

    def __contains__(self, key: object) -> bool:
        if key in self.changes:
            return self.changes[key] is not None
        return key in self.base

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.changes:
            account = self.changes[key]
            return default if account is None else account
        return self.base.get(key, default)

    def __iter__(self) -> Iterator[str]:
        for key in self.base:
            if key not in self.changes:
                yield key
        for key, account in self.changes.items():
            if account is not None:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _changed_index(index: Mapping[str, str], changes: Mapping[str, str | None]) -> Mapping[str, str]:
    """`index` with `changes` (None: the address is gone), sharing `index`'s entries."""
    if isinstance(index, _Index):
        merged = {**index.changes, **changes}
        if len(merged) <= _Index.MAX_CHANGES:
            return _Index(index.base, merged)
        return dict(_Index(index.base, merged).items())
    assert isinstance(index, dict)
    return _Index(index, dict(changes))


# The last index built from scratch stays besides them: the live config's, which a plan and
# then its apply's batch (another Static object read again, equal) both start from.
_BUILT: list[tuple[Static, Dynamic, dict[str, str], frozenset[str]]] = []


def _remember_index(static: Static, dyn: Dynamic, index: Mapping[str, str], blocked: frozenset[str]) -> None:
    _INDEX_MEMO.insert(0, (static, dyn, index, blocked))
    del _INDEX_MEMO[4:]


def _memo_of(static: Static, dyn: Dynamic) -> tuple[Mapping[str, str], frozenset[str]] | None:
    for st, dy, index, blocked in (*_INDEX_MEMO, *_BUILT):
        if dy is dyn and (st is static or st == static):
            return index, blocked
    return None


def address_index(static: Static, dyn: Dynamic) -> Mapping[str, str]:
    """mox's AccountDestinationsLocked (mox-/config.go prepareDynamicConfig): canonical address -> account.

    Built leniently: entries mox would reject in validation are skipped (validation reports them).
    The result is shared (memoized per config object): do not modify it.
    """
    return _index_and_blocked(static, dyn)[0]


def _index_and_blocked(static: Static, dyn: Dynamic) -> tuple[Mapping[str, str], frozenset[str]]:
    known = _memo_of(static, dyn)
    if known is not None:
        return known
    blocked: set[str] = set()
    index = _build_address_index(static, dyn, blocked)
    _remember_index(static, dyn, index, frozenset(blocked))
    _BUILT[:] = [(static, dyn, index, frozenset(blocked))]
    return index, frozenset(blocked)


def _build_address_index(static: Static, dyn: Dynamic, blocked: set[str] | None = None) -> dict[str, str]:
    """The index, built from scratch. `blocked` receives the names of the domains whose addition
    would change entries besides the new domain's own: the domains of destinations skipped as
    unconfigured (they would enter the index) and the domains named by a reporting address's
    Domain (their case sensitivity decides that address's canonical form)."""
    blocked = blocked if blocked is not None else set()
    for d in dyn.Domains.values():
        for rep in (d.DMARC, d.TLSRPT):
            if rep is not None and rep.Domain:
                with contextlib.suppress(ParseError):
                    blocked.add(parse_domain(rep.Domain).name())
    index: dict[str, str] = {}
    host_address = _host_tlsrpt_address(static)
    if host_address is not None:
        index[host_address] = static.HostTLSRPT.Account
    # The canonical forms and per-domain rules the planner worked out for this config already
    # (its keys' forms are the same: a key that parses as an address is read as that address).
    memo = _CANON_MEMO
    if memo.domains is not dyn.Domains:
        memo.move_to(dyn.Domains)
    domains = dyn.Domains
    for acc_name in sorted(dyn.Accounts):
        acc = dyn.Accounts[acc_name]
        for key in sorted(acc.Destinations):
            if key.startswith("@"):
                with contextlib.suppress(ParseError):
                    index["@" + parse_domain(key[1:]).name()] = acc_name
                continue
            parsed = _parsed_key(key)
            if isinstance(parsed, Address):
                name = parsed.domain.name()
                if name not in domains:
                    blocked.add(name)
                    continue
                form = memo.forms.get(key)
                if form is None:
                    form = memo.forms[key] = _canon_uncached(dyn, key, memo)
                index.setdefault(form, acc_name)
                continue
            addr = _destination_address(key, acc.Domain)  # a bare localpart: in the account's Domain
            if addr is None:
                continue
            name = addr.domain.name()
            if name not in domains:
                blocked.add(name)
                continue
            index.setdefault(_canonical_string(addr, memo.rules_of(name)), acc_name)
    index.update(_reporting_index(dyn))
    return index


def _host_tlsrpt_address(static: Static) -> str | None:
    """The host TLSRPT address (mox.conf HostTLSRPT), first entry of the index."""
    htr = static.HostTLSRPT
    if not htr.Account:
        return None
    try:
        return str(Address(parse_localpart(htr.Localpart), parse_domain(static.Hostname)))
    except ParseError:
        return None


# The reporting index of the last few Domains mappings (kept alive here, so identity is a safe
# key): AddressRemove asks for it once per operation, and a batch of N removals over M domains
# would otherwise cost N x M.
_REPORTING_MEMO: list[tuple[Mapping[str, mc.Domain], dict[str, str]]] = []


def _remember_reporting(domains: Mapping[str, mc.Domain], index: dict[str, str]) -> None:
    _REPORTING_MEMO.insert(0, (domains, index))
    del _REPORTING_MEMO[4:]


# The last reporting index built from scratch stays besides them (like `_BUILT`): the live
# config's, which a plan and then its apply's batch both start from.
_REPORTING_BUILT: list[tuple[Mapping[str, mc.Domain], dict[str, str]]] = []


def _reporting_index(dyn: Dynamic) -> dict[str, str]:
    """The DMARC/TLSRPT reporting addresses -> account (they override destinations in the index).

    Shared (memoized per Domains mapping): do not modify it."""
    for domains, index in (*_REPORTING_MEMO, *_REPORTING_BUILT):
        if domains is dyn.Domains:
            return index
    index = _build_reporting_index(dyn.Domains)
    _remember_reporting(dyn.Domains, index)
    _REPORTING_BUILT[:] = [(dyn.Domains, index)]
    return index


# The names of the domains with aliases, sorted, per Domains mapping (kept alive here, so
# identity is a safe key): AddressRemove looks for its address among alias members.
_ALIASED_MEMO: list[tuple[Mapping[str, mc.Domain], tuple[str, ...]]] = []


def _remember_aliased(domains: Mapping[str, mc.Domain], names: tuple[str, ...]) -> None:
    _ALIASED_MEMO.insert(0, (domains, names))
    del _ALIASED_MEMO[4:]


def _aliased(domains: Mapping[str, mc.Domain]) -> tuple[str, ...]:
    for known, names in _ALIASED_MEMO:
        if known is domains:
            return names
    names = tuple(sorted(n for n, d in domains.items() if d.Aliases))
    _remember_aliased(domains, names)
    return names


def _build_reporting_index(domains: Mapping[str, mc.Domain]) -> dict[str, str]:
    """Each reporting address (`reporting_address`), from the localparts the domain's rules hold
    (None where it raises ParseError) and the domain it names, parsed as it parses them."""
    memo = _CANON_MEMO
    if memo.domains is not domains:
        memo.move_to(domains)
    out: dict[str, str] = {}
    for dom_name in sorted(domains):
        d = domains[dom_name]
        if d.DMARC is None and d.TLSRPT is None:
            continue
        r = memo.rules_of(dom_name)
        for rep, lp in ((d.DMARC, r.dmarc_localpart), (d.TLSRPT, r.tlsrpt_localpart)):
            if rep is None or lp is None:
                continue
            out[str(Address(lp, parse_domain(rep.Domain or dom_name)))] = rep.Account
    return out


def _parse_domain_req(s: str, what: str = "parsing domain") -> DNSDomain:
    try:
        return parse_domain(s)
    except ParseError as e:
        raise RequestError(f"{what}: {e}") from None


def _parse_address_req(s: str, what: str = "parsing email address") -> Address:
    try:
        return parse_address(s)
    except ParseError as e:
        raise RequestError(f"{what}: {e}") from None


def check_address_available(static: Static, dyn: Dynamic, addr: Address) -> None:
    """mox's checkAddressAvailable (admin/admin.go), raising `address not available: <reason>`."""
    d = dyn.Domains.get(addr.domain.name())
    if d is None:
        raise RequestError("address not available: domain does not exist")
    lp = canonical_lp(dyn, addr.domain, addr.localpart)
    canon = Address(lp, addr.domain)
    if str(canon) in address_index(static, dyn):
        raise RequestError(f"address not available: canonicalized address {canon} already configured")
    for sep in d.separators():
        if sep in addr.localpart:
            raise RequestError(
                f"address not available: localpart cannot include domain catchall separator {sep}"
            )
    if localpart_string(lp) in d.Aliases:
        raise RequestError("address not available: address in use as alias")


def _with_domain(dyn: Dynamic, name: str, d: mc.Domain) -> Dynamic:
    return replace(dyn, Domains={**dyn.Domains, name: d})


def _with_account(dyn: Dynamic, name: str, a: Account) -> Dynamic:
    return replace(dyn, Accounts={**dyn.Accounts, name: a})


def make_account_config(dest_key: str, domain: DNSDomain) -> Account:
    """mox's MakeAccountConfig (admin/admin.go) for a destination key in `domain`."""
    return Account(
        Domain=domain.name(),
        Destinations={dest_key: mc.Destination()},
        SubjectPass=mc.SubjectPass(Period=Duration(12 * 3600 * 10**9)),
        RejectsMailbox="Rejects",
        AutomaticJunkFlags=mc.AutomaticJunkFlags(
            Enabled=True,
            JunkMailboxRegexp="^(junk|spam)",
            NeutralMailboxRegexp="^(inbox|introbox|neutral|postmaster|dmarc|tlsrpt|rejects)",
        ),
        JunkFilter=mc.JunkFilter(
            Threshold=0.95,
            Params=mc.JunkParams(
                Onegrams=True, MaxPower=0.01, TopWords=10, IgnoreWords=0.1, RareWords=2
            ),
        ),
        NoCustomPassword=True,
    )


# The suffixes of the two RSA-2048 selectors MakeDomainConfig makes (`<year>a`, `<year>b`).
DOMAIN_ADD_SELECTORS = ("a", "b")


def make_domain_config(
    domain: DNSDomain, hostname: DNSDomain, account: str, with_mtasts: bool, now: datetime
) -> tuple[mc.Domain, tuple[KeyRequest, ...]]:
    """mox's MakeDomainConfig (admin/admin.go): the config DomainAdd writes, and its two keys.

    Two RSA-2048 selectors `<year>a`/`<year>b` (Expiration 72h, signing with the first), catchall
    separator `+`, client settings at `mail.<domain>`, DMARC and TLSRPT reports to `account`, and
    MTA-STS (enforce, 24h, the host as MX) when a listener serves MTA-STS. `now` is an aware local
    time (key names, the year); the MTA-STS policy ID is its UTC form.
    """
    year = now.strftime("%Y")
    keys = tuple(KeyRequest(year + s, domain.ascii, keygen.RSA2048, now) for s in DOMAIN_ADD_SELECTORS)
    selectors = {k.selector: mc.Selector(Expiration="72h", PrivateKeyFile=k.path) for k in keys}
    conf = mc.Domain(
        ClientSettingsDomain=client_settings_domain(domain),
        LocalpartCatchallSeparator="+",
        DKIM=mc.DKIM(Selectors=selectors, Sign=(year + "a",)),
        DMARC=mc.DMARC(Localpart="dmarcreports", Account=account, Mailbox="DMARC"),
        TLSRPT=mc.TLSRPT(Localpart="tlsreports", Account=account, Mailbox="TLSRPT"),
        MTASTS=mc.MTASTS(
            PolicyID=format_compact(now.astimezone(UTC)),
            Mode="enforce",
            MaxAge=Duration(24 * 3600 * 10**9),
            MX=(hostname.ascii,),
        )
        if with_mtasts
        else None,
    )
    return conf, keys


def client_settings_domain(domain: DNSDomain) -> str:
    """MakeDomainConfig's ClientSettingsDomain: `mail.<domain>` (the one part of its config,
    besides key file names and report accounts, that depends on the domain)."""
    return "mail." + domain.name()


def mtasts_listener(static: Static) -> bool:
    """Whether a listener serves MTA-STS policies (DomainAdd then configures MTA-STS)."""
    return any(lst.MTASTSHTTPS.Enabled for lst in static.Listeners.values())


@functools.lru_cache(maxsize=1 << 16)
def _clean_path(name: str) -> str:
    return str(PurePosixPath(name))


# The used key paths of the last few Domains mappings (kept alive here, so identity is a safe
# key): an apply asks for them of the same config several times (fold, leftovers, key files, retiring).
_USED_KEYS_MEMO: list[tuple[Mapping[str, mc.Domain], frozenset[str]]] = []


def release_configs() -> None:
    """Let go of the configs the per-config memos keep alive (up to four each: the indexes, the
    reporting indexes, the aliased addresses, the used key paths). Within one run they save
    rebuilding per operation; between a watcher's runs, which parse their configs anew, they are
    dead weight (a watcher at 10,000 domains grew from about 200 to 300 MB over its first runs).
    The canonical forms (`_CANON_MEMO`) stay: they follow one mapping from run to run."""
    for memo in (_INDEX_MEMO, _BUILT, _REPORTING_MEMO, _REPORTING_BUILT, _ALIASED_MEMO, _USED_KEYS_MEMO):
        memo.clear()


def used_key_paths(dyn: Dynamic) -> set[str]:
    """Cleaned PrivateKeyFile paths still referenced by any selector (a new set each call)."""
    for domains, used in _USED_KEYS_MEMO:
        if domains is dyn.Domains:
            return set(used)
    used = frozenset(
        _clean_path(sel.PrivateKeyFile)
        for d in dyn.Domains.values()
        for sel in d.DKIM.Selectors.values()
        if sel.PrivateKeyFile
    )
    _USED_KEYS_MEMO.insert(0, (dyn.Domains, used))
    del _USED_KEYS_MEMO[4:]
    return set(used)


class Operation:
    """Common behaviour of the operation value objects."""

    destructive: ClassVar[bool] = False

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        # Config values as plain JSON, secrets as `shown` shows them (never their text).
        body = {f.name: shown(getattr(self, f.name), f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {"version": JSON_VERSION, "op": type(self).__name__, **body}


# ---------------------------------------------------------------------------
# Domains and DKIM.


@dataclass(frozen=True, slots=True)
class DomainAdd(Operation):
    """mox `config domain add [-disabled] domain account [localpart]` (admin/admin.go DomainAdd)."""

    domain: str
    account: str
    localpart: str = ""
    disabled: bool = False

    def describe(self) -> str:
        extra = f", new account with localpart {self.localpart}" if self.localpart else ""
        dis = " (disabled)" if self.disabled else ""
        return f"add domain {self.domain}{dis} for account {self.account}{extra}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        domain = _parse_domain_req(self.domain)
        lp = ""
        if self.localpart:
            try:
                lp = parse_localpart(self.localpart)
            except ParseError as e:
                raise RequestError(f"parsing localpart: {e}") from None
        if domain.name() in dyn.Domains:
            raise RequestError("domain already present")
        hostname = parse_domain(ctx.static.Hostname)
        conf, keys = make_domain_config(domain, hostname, self.account, mtasts_listener(ctx.static), ctx.now)
        conf = replace(conf, Disabled=self.disabled)
        exists = self.account in dyn.Accounts
        if exists and lp:
            raise RequestError(
                "account already exists (leave localpart empty when using an existing account)"
            )
        if not exists and not lp:
            raise RequestError("account does not yet exist (specify a localpart)")
        if not self.account:
            raise RequestError("account name is empty")
        nd = _with_domain(dyn, domain.name(), conf)
        new_address: Address | None = None
        if not exists:
            _check_account_name(self.account)
            new_address = Address(lp, domain)
            nd = _with_account(nd, self.account, make_account_config(str(new_address), domain))
        elif self.account != ctx.static.Postmaster.Account:
            acc = dyn.Accounts[self.account]
            new_address = Address("postmaster", domain)
            dests = {**acc.Destinations, str(new_address): mc.Destination()}
            nd = _with_account(nd, self.account, replace(acc, Destinations=dests))
        _carry_index_to_new_domain(ctx.static, dyn, nd, domain.name(), new_address, self.account)
        if not conf.Aliases:
            _remember_aliased(nd.Domains, _aliased(dyn.Domains))
        return Effect(nd, new_keys=keys)


def _carry_index_to_new_domain(static: Static, dyn: Dynamic, nd: Dynamic, name: str, address: Address | None,
                               account: str) -> None:
    """The indexes of `nd` (`dyn` plus the new domain `name` and its one new destination), from
    those of `dyn`: what a build from scratch gives, because no destination of `dyn` is in the
    new domain and no reporting address names it (else they are rebuilt when needed)."""
    old, blocked = _index_and_blocked(static, dyn)  # built once for a run of new domains, then carried
    if name in blocked:
        return
    conf = nd.Domains[name]
    own: dict[str, str] = {}
    for rep in (conf.DMARC, conf.TLSRPT):
        if rep is not None:
            with contextlib.suppress(ParseError):
                own[str(reporting_address(nd.Domains, name, rep))] = rep.Account
    changes: dict[str, str | None] = {}
    if address is not None:
        canon = _canonical_string(address, localpart_rules(nd.Domains, name))
        if canon not in old:
            changes[canon] = account
    changes.update(own)  # reporting addresses override destinations, as in a build
    index = _changed_index(old, changes)
    new_blocked = set(blocked)
    for rep in (conf.DMARC, conf.TLSRPT):
        if rep is not None and rep.Domain:
            with contextlib.suppress(ParseError):
                new_blocked.add(parse_domain(rep.Domain).name())
    _remember_index(static, nd, index, frozenset(new_blocked))
    for domains, reporting in (*_REPORTING_MEMO, *_REPORTING_BUILT):
        if domains is dyn.Domains:
            _remember_reporting(nd.Domains, {**reporting, **own})
            break


@dataclass(frozen=True, slots=True)
class DomainRemove(Operation):
    """mox `config domain rm` (admin/admin.go DomainRemove); refused for the last domain."""

    destructive: ClassVar[bool] = True
    domain: str

    def describe(self) -> str:
        return f"remove domain {self.domain} (DKIM keys move to dkim/old/)"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        name = _parse_domain_req(self.domain).name()
        conf = dyn.Domains.get(name)
        if conf is None:
            raise RequestError("domain does not exist")
        if len(dyn.Domains) == 1:
            raise RequestError(
                f"cannot remove {name}: it is the last domain, "
                "and mox cannot read a domains.conf without domains"
            )
        nd = replace(dyn, Domains={k: v for k, v in dyn.Domains.items() if k != name})
        retired = tuple(sel.PrivateKeyFile for _, sel in sorted(conf.DKIM.Selectors.items()))
        return Effect(nd, retired_keys=retired)


_HASHES = ("sha256", "sha1")
_72H = Duration(72 * 3600 * 10**9)
_ALGORITHMS = {"rsa": keygen.RSA2048, "ed25519": keygen.ED25519}


@dataclass(frozen=True, slots=True)
class DKIMAdd(Operation):
    """mox's DKIMAdd (admin/admin.go; web admin `DomainDKIMAdd`); not added to Sign."""

    domain: str
    selector: str
    algorithm: str = "rsa"
    hash: str = "sha256"
    header_relaxed: bool = True
    body_relaxed: bool = True
    seal: bool = True
    headers: tuple[str, ...] = ()
    lifetime: Duration = _72H

    def describe(self) -> str:
        return f"add DKIM selector {self.selector} ({self.algorithm}) to {self.domain}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        if self.hash not in _HASHES:
            raise RequestError(f"unknown hash algorithm {go_quote(self.hash)}")
        kind = _ALGORITHMS.get(self.algorithm)
        if kind is None:
            raise RequestError("making dkim key: unknown algorithm")
        domain = _parse_domain_req(self.domain)
        selector = _parse_domain_req(self.selector, "parsing selector")
        d = dyn.Domains.get(domain.name())
        if d is None:
            raise RequestError("domain does not exist")
        if selector.name() in d.DKIM.Selectors:
            raise RequestError("selector already exists for domain")
        key = KeyRequest(selector.ascii, domain.ascii, kind, ctx.now)
        sel = mc.Selector(
            Hash=self.hash,
            Canonicalization=mc.Canonicalization(self.header_relaxed, self.body_relaxed),
            Headers=tuple(self.headers),
            DontSealHeaders=not self.seal,
            Expiration=format_duration(self.lifetime),
            PrivateKeyFile=key.path,
        )
        dkim = replace(d.DKIM, Selectors={**d.DKIM.Selectors, selector.name(): sel})
        return Effect(_with_domain(dyn, domain.name(), replace(d, DKIM=dkim)), new_keys=(key,))


@dataclass(frozen=True, slots=True)
class DKIMRemove(Operation):
    """mox's DKIMRemove (admin/admin.go): selector out of Selectors and Sign, key to old/."""

    destructive: ClassVar[bool] = True
    domain: str
    selector: str

    def describe(self) -> str:
        return f"remove DKIM selector {self.selector} from {self.domain} (key moves to dkim/old/)"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        domain = _parse_domain_req(self.domain)
        selector = _parse_domain_req(self.selector, "parsing selector").name()
        d = dyn.Domains.get(domain.name())
        if d is None:
            raise RequestError("domain does not exist")
        sel = d.DKIM.Selectors.get(selector)
        if sel is None:
            raise RequestError("selector does not exist for domain")
        dkim = mc.DKIM(
            Selectors={k: v for k, v in d.DKIM.Selectors.items() if k != selector},
            Sign=tuple(s for s in d.DKIM.Sign if s != selector),
        )
        nd = _with_domain(dyn, domain.name(), replace(d, DKIM=dkim))
        return Effect(nd, retired_keys=(sel.PrivateKeyFile,))


# ---------------------------------------------------------------------------
# Accounts and addresses.


def account_name_problem(name: str) -> str | None:
    """Why `name` cannot be an account name, or None. mox does not check account names, but each
    becomes a directory under DataDir/accounts: refuse what is unsafe as one."""
    if name in ("", ".", ".."):
        return "must not be empty, . or .."
    if any(c in name for c in "/\\") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "must not contain /, \\ or control characters (it names a directory under the data dir)"
    return None


def _check_account_name(name: str) -> None:
    why = account_name_problem(name)
    if why:
        raise RequestError(f"invalid account name {go_quote(name)}: {why}")


def _dest_key(dyn: Dynamic, addr: Address, as_typed: bool) -> str:
    return str(addr) if as_typed else canonical_address(dyn, addr)


@dataclass(frozen=True, slots=True)
class AccountAdd(Operation):
    """mox `config account add account address` (admin/admin.go AccountAdd)."""

    account: str
    address: str
    as_typed: bool = False

    def describe(self) -> str:
        return f"add account {self.account} with address {self.address}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        addr = _parse_address_req(self.address)
        if self.account in dyn.Accounts:
            raise RequestError("account already present")
        _check_account_name(self.account)
        if self.account in ctx.account_dirs:
            raise RequestError(f"account directory {go_quote(str(ctx.account_dir(self.account)))} already/still exists")
        check_address_available(ctx.static, dyn, addr)
        acc = make_account_config(_dest_key(dyn, addr, self.as_typed), addr.domain)
        return Effect(_with_account(dyn, self.account, acc))


@dataclass(frozen=True, slots=True)
class AccountRemove(Operation):
    """mox `config account rm` (admin/admin.go AccountRemove), but the data directory is kept, never deleted."""

    destructive: ClassVar[bool] = True
    account: str

    def describe(self) -> str:
        return f"remove account {self.account} from the config (its mail data directory is kept)"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        if self.account not in dyn.Accounts:
            raise RequestError("open account: no such account")
        if len(dyn.Accounts) == 1:
            raise RequestError(
                f"cannot remove account {go_quote(self.account)}: it is the last account, "
                "and mox cannot read a domains.conf without accounts"
            )
        nd = replace(dyn, Accounts={k: v for k, v in dyn.Accounts.items() if k != self.account})
        path = ctx.account_dir(self.account)
        note = (
            f"account {self.account} removed from domains.conf; its mail data directory {path} was left "
            "in place (remove it yourself once no longer needed; while it exists mox refuses to add "
            "an account with this name)"
        )
        return Effect(nd, notes=(note,))


@dataclass(frozen=True, slots=True)
class AddressAdd(Operation):
    """mox `config address add address account` (admin/admin.go AddressAdd); `@domain` adds a catchall."""

    address: str
    account: str
    as_typed: bool = False

    def describe(self) -> str:
        return f"add address {self.address} to account {self.account}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        acc = dyn.Accounts.get(self.account)
        if acc is None:
            raise RequestError("account does not exist")
        if self.address.startswith("@"):
            dname = _parse_domain_req(self.address[1:]).name()
            key = "@" + dname
            if dname not in dyn.Domains:
                raise RequestError("domain does not exist")
            if key in address_index(ctx.static, dyn):
                raise RequestError("catchall address already configured for domain")
            canon = key
        else:
            addr = _parse_address_req(self.address)
            check_address_available(ctx.static, dyn, addr)
            key = _dest_key(dyn, addr, self.as_typed)
            canon = canonical_address(dyn, addr)
        dests = {**acc.Destinations, key: mc.Destination()}
        nd = _with_account(dyn, self.account, replace(acc, Destinations=dests))
        # The new config's index is the old one plus this address (it was free): no rebuild.
        index, blocked = _index_and_blocked(ctx.static, dyn)
        _remember_index(ctx.static, nd, _changed_index(index, {canon: self.account}), blocked)
        return Effect(nd)


@dataclass(frozen=True, slots=True)
class AddressRemove(Operation):
    """mox `config address rm address` (admin/admin.go AddressRemove): exact canonical spelling, also out of
    aliases."""

    destructive: ClassVar[bool] = True
    address: str

    def describe(self) -> str:
        return f"remove address {self.address}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        account = address_index(ctx.static, dyn).get(self.address)
        if account is None:
            raise RequestError("address does not exists")
        acc = dyn.Accounts.get(account)
        if acc is None:
            raise PrimitiveError("internal error: cannot find account")
        if self.address not in acc.Destinations:
            raise RequestError("address not removed, likely a postmaster/reporting address")
        dests = {k: v for k, v in acc.Destinations.items() if k != self.address}
        catchall = self.address.startswith("@")
        pa: Address | None = None
        if catchall:
            dom = _parse_domain_req(self.address[1:], "parsing domain for catchall address")
        else:
            pa = _parse_address_req(self.address, "parsing address")
            dom = pa.domain
        if dom.name() not in dyn.Domains:
            raise RequestError(f"unknown domain in address {go_quote(self.address)}")
        fromids: list[str] = []
        for fa_s in acc.FromIDLoginAddresses:
            try:
                fa = parse_address(fa_s)
            except ParseError:
                fromids.append(fa_s)
                continue
            if fa.domain != dom:
                fromids.append(fa_s)
                continue
            if pa is None:
                continue
            if canonical_lp(dyn, dom, fa.localpart) != canonical_lp(dyn, dom, pa.localpart):
                fromids.append(fa_s)
        # Only domains with an alias naming the address change (found without sorting them all:
        # this runs once per removal), in mox's order (sorted), which decides the error raised.
        aliased = _aliased(dyn.Domains)
        members_of = [dname for dname in aliased
                      if any(self.address in a.Addresses for a in dyn.Domains[dname].Aliases.values())]
        domains = dict(dyn.Domains)
        for dname in members_of:
            d = domains[dname]
            aliases = dict(d.Aliases)
            changed = False
            for key in sorted(d.Aliases):
                alias = d.Aliases[key]
                if self.address not in alias.Addresses:
                    continue
                members = tuple(m for m in alias.Addresses if m != self.address)
                if not members:
                    raise PrimitiveError(
                        f"address is last member of alias {key}@{dname}, "
                        "add new members or remove alias first"
                    )
                aliases[key] = replace(alias, Addresses=members)
                changed = True
            if changed:
                domains[dname] = replace(d, Aliases=aliases)
        nacc = replace(acc, Destinations=dests, FromIDLoginAddresses=tuple(fromids))
        nd = replace(dyn, Domains=domains if members_of else dyn.Domains, Accounts={**dyn.Accounts, account: nacc})
        reporting = _reporting_index(dyn)
        if nd.Domains is not dyn.Domains:  # only alias members changed: reporting addresses and aliased
            _remember_reporting(nd.Domains, reporting)  # domains are the same (a last member is refused)
            _remember_aliased(nd.Domains, aliased)
        # The new index is the old one without this address, unless the address is also a
        # reporting or host TLSRPT address (those entries stay): then it is rebuilt when needed.
        if self.address != _host_tlsrpt_address(ctx.static) and self.address not in reporting:
            old, blocked = _index_and_blocked(ctx.static, dyn)
            _remember_index(ctx.static, nd, _changed_index(old, {self.address: None}), blocked)
        return Effect(nd)


# ---------------------------------------------------------------------------
# Aliases (all through DomainSave in mox, keyed by the exact encoded localpart).


def _alias_target(dyn: Dynamic, address: str) -> tuple[str, str, mc.Domain]:
    addr = _parse_address_req(address, "parsing alias address")
    d = dyn.Domains.get(addr.domain.name())
    if d is None:
        raise RequestError("domain not present")
    return addr.domain.name(), localpart_string(addr.localpart), d


def _canonical_members(dyn: Dynamic, members: tuple[str, ...], as_typed: bool) -> tuple[str, ...]:
    if as_typed:
        return members
    out: list[str] = []
    for m in members:
        try:
            out.append(canonical_address(dyn, parse_address(m)))
        except ParseError:
            out.append(m)  # Validation reports it with mox's text.
    return tuple(out)


@dataclass(frozen=True, slots=True)
class AliasAdd(Operation):
    """mox `config alias add alias@domain member...` (PostPublic true like the CLI by default)."""

    address: str
    members: tuple[str, ...]
    post_public: bool = True
    list_members: bool = False
    allow_msg_from: bool = False
    as_typed: bool = False

    def describe(self) -> str:
        return f"add alias {self.address} with members {', '.join(self.members)}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        dname, key, d = _alias_target(dyn, self.address)
        if key in d.Aliases:
            raise RequestError("alias already present")
        alias = Alias(
            Addresses=_canonical_members(dyn, tuple(self.members), self.as_typed),
            PostPublic=self.post_public,
            ListMembers=self.list_members,
            AllowMsgFrom=self.allow_msg_from,
        )
        return Effect(_with_domain(dyn, dname, replace(d, Aliases={**d.Aliases, key: alias})))


@dataclass(frozen=True, slots=True)
class AliasUpdate(Operation):
    """mox `config alias update`: changes only the flags given (None = keep)."""

    address: str
    post_public: bool | None = None
    list_members: bool | None = None
    allow_msg_from: bool | None = None

    def describe(self) -> str:
        flags = [
            f"{n}={v}"
            for n, v in (
                ("postpublic", self.post_public),
                ("listmembers", self.list_members),
                ("allowmsgfrom", self.allow_msg_from),
            )
            if v is not None
        ]
        return f"update alias {self.address}: {', '.join(flags) or 'no changes'}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        dname, key, d = _alias_target(dyn, self.address)
        alias = d.Aliases.get(key)
        if alias is None:
            raise RequestError("alias does not exist")
        alias = replace(
            alias,
            PostPublic=alias.PostPublic if self.post_public is None else self.post_public,
            ListMembers=alias.ListMembers if self.list_members is None else self.list_members,
            AllowMsgFrom=alias.AllowMsgFrom if self.allow_msg_from is None else self.allow_msg_from,
        )
        return Effect(_with_domain(dyn, dname, replace(d, Aliases={**d.Aliases, key: alias})))


@dataclass(frozen=True, slots=True)
class AliasRemove(Operation):
    """mox `config alias rm`."""

    destructive: ClassVar[bool] = True
    address: str

    def describe(self) -> str:
        return f"remove alias {self.address}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        dname, key, d = _alias_target(dyn, self.address)
        if key not in d.Aliases:
            raise RequestError("alias does not exist")
        aliases = {k: v for k, v in d.Aliases.items() if k != key}
        return Effect(_with_domain(dyn, dname, replace(d, Aliases=aliases)))


@dataclass(frozen=True, slots=True)
class AliasAddressesAdd(Operation):
    """mox `config alias addaddr`: members appended at the end."""

    address: str
    members: tuple[str, ...]
    as_typed: bool = False

    def describe(self) -> str:
        return f"add members {', '.join(self.members)} to alias {self.address}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        if not self.members:
            raise RequestError("at least one address required")
        dname, key, d = _alias_target(dyn, self.address)
        alias = d.Aliases.get(key)
        if alias is None:
            raise RequestError("no such alias")
        members = alias.Addresses + _canonical_members(dyn, tuple(self.members), self.as_typed)
        alias = replace(alias, Addresses=members)
        return Effect(_with_domain(dyn, dname, replace(d, Aliases={**d.Aliases, key: alias})))


@dataclass(frozen=True, slots=True)
class AliasAddressesRemove(Operation):
    """mox `config alias rmaddr`: members equal to a given string are removed, order kept."""

    destructive: ClassVar[bool] = True
    address: str
    members: tuple[str, ...]

    def describe(self) -> str:
        return f"remove members {', '.join(self.members)} from alias {self.address}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        if not self.members:
            raise RequestError("need at least one address")
        dname, key, d = _alias_target(dyn, self.address)
        alias = d.Aliases.get(key)
        if alias is None:
            raise RequestError("no such alias")
        missing = [m for m in self.members if m not in alias.Addresses]
        if missing:
            raise RequestError("address not found: " + ", ".join(missing))
        alias = replace(alias, Addresses=tuple(m for m in alias.Addresses if m not in self.members))
        return Effect(_with_domain(dyn, dname, replace(d, Aliases={**d.Aliases, key: alias})))


# ---------------------------------------------------------------------------
# Generic savers: replace fields of a domain, an account or the whole config.


def _replace_fields(obj: Any, fields: Mapping[str, Any], what: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise RequestError(f"unknown {what} field {', '.join(unknown)}")
    return replace(obj, **dict(fields))


@dataclass(frozen=True, slots=True)
class DomainSave(Operation):
    """mox admin DomainSave: set fields of a domain (e.g. `{"Disabled": True}` = `domain disable`)."""

    domain: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"change domain {self.domain}: {', '.join(sorted(self.fields))}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        name = _parse_domain_req(self.domain).name()
        d = dyn.Domains.get(name)
        if d is None:
            raise RequestError("domain not present")
        nd = _replace_fields(d, self.fields, "domain")
        retired: tuple[str, ...] = ()
        if "DKIM" in self.fields:
            old = {s.PrivateKeyFile for s in d.DKIM.Selectors.values()}
            new = {s.PrivateKeyFile for s in nd.DKIM.Selectors.values()}
            retired = tuple(sorted(old - new))
        return Effect(_with_domain(dyn, name, nd), retired_keys=retired)


@dataclass(frozen=True, slots=True)
class AccountSave(Operation):
    """mox admin AccountSave: set fields of an account (e.g. `{"LoginDisabled": "..."}`)."""

    account: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"change account {self.account}: {', '.join(sorted(self.fields))}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        acc = dyn.Accounts.get(self.account)
        if acc is None:
            raise RequestError("account not present")
        return Effect(_with_account(dyn, self.account, _replace_fields(acc, self.fields, "account")))


@dataclass(frozen=True, slots=True)
class ConfigSave(Operation):
    """mox admin ConfigSave: set top-level fields (Routes, MonitorDNSBLs, WebHandlers, ...)."""

    fields: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"change global config: {', '.join(sorted(self.fields))}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        for k in ("Domains", "Accounts"):
            if k in self.fields:
                raise RequestError(
                    f"{k} cannot be changed with ConfigSave, use the domain/account operations"
                )
        return Effect(_replace_fields(dyn, self.fields, "config"))


OPERATIONS: tuple[type[Operation], ...] = (
    DomainAdd,
    DomainRemove,
    DKIMAdd,
    DKIMRemove,
    AccountAdd,
    AccountRemove,
    AddressAdd,
    AddressRemove,
    AliasAdd,
    AliasUpdate,
    AliasRemove,
    AliasAddressesAdd,
    AliasAddressesRemove,
    DomainSave,
    AccountSave,
    ConfigSave,
)


def now_local() -> datetime:
    """The current local time, aware, truncated to seconds (mox's timestamps have second resolution)."""
    return datetime.now().astimezone().replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class DKIMSave(Operation):
    """mox web admin `DomainDKIMSave` (webadmin/admin.go): selector settings and the Sign list.

    Like mox it cannot create keys or remove selectors (DKIMAdd/DKIMRemove do): a selector given
    with an empty PrivateKeyFile keeps its key file; a selector that does not exist yet is added
    only with an explicit PrivateKeyFile (adopting a key file already in the config dir).
    """

    domain: str
    selectors: Mapping[str, mc.Selector] = field(default_factory=dict)
    sign: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"save DKIM of {self.domain}: selectors {', '.join(sorted(self.selectors)) or '-'}; " \
               f"sign with {', '.join(self.sign) or 'none'}"

    def apply(self, dyn: Dynamic, ctx: Context) -> Effect:
        name = _parse_domain_req(self.domain).name()
        d = dyn.Domains.get(name)
        if d is None:
            raise RequestError("domain not present")
        sels = dict(d.DKIM.Selectors)
        for sel, conf in self.selectors.items():
            have = sels.get(sel)
            if have is None and not conf.PrivateKeyFile:
                raise RequestError(f"selector {sel} does not exist (add it with DKIMAdd)")
            key = conf.PrivateKeyFile or (have.PrivateKeyFile if have is not None else "")
            sels[sel] = replace(conf, PrivateKeyFile=key)
        for sel in self.sign:
            if sel not in sels:
                raise RequestError(f"unknown selector {sel} for signing")
        dkim = replace(d.DKIM, Selectors=sels, Sign=tuple(self.sign))
        return Effect(_with_domain(dyn, name, replace(d, DKIM=dkim)))


OPERATIONS = (*OPERATIONS, DKIMSave)
