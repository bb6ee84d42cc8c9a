"""The desired state in mox's terms: the domains.conf entries a desired domain or account stands for.

The planner compares field by field, so every default must come out exactly as mox would write it:
an omitted field of a domain takes what mox's DomainAdd writes (`admin.make_domain_config`, the
one copy of MakeDomainConfig), an omitted field of an account takes MakeAccountConfig's value (the
model defaults in `models`, taken from `admin.make_account_config`). Fields given in a block are
converted as written; the sub-models carry mox's field names, so conversion is by name.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from reconciler.desired.models import MTASTS, DesiredAccount, DesiredDomain, DesiredState
from reconciler.desired.secrets import SecretRef
from reconciler.mox import config as mc
from reconciler.mox.admin import client_settings_domain, make_domain_config, mtasts_listener
from reconciler.mox.config import Static
from reconciler.mox.golang import Duration
from reconciler.mox.names import Domain, ParseError, parse_address, parse_domain

# A time for the template when the caller has none (no selectors or policy ID come from it then).
_NO_TIME = datetime(2000, 1, 1).astimezone()


def _dataclass_of(tp: Any) -> type[Any] | None:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg  # type: ignore[return-value]
        return None
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    """What `convert` needs to know of a type, worked out once per type (10,000 accounts convert
    hundreds of thousands of values)."""

    cls: type[Any] | None  # the dataclass, also of `X | None`
    optional: bool
    args: tuple[Any, ...]
    fields: tuple[tuple[str, Any, bool], ...]  # (name, type, taken as is) of the dataclass's fields


_SHAPES: dict[Any, _Shape] = {}
_AS_IS = (str, bool, int, float)  # field types whose desired value is the mox value
_PLAIN = frozenset(_AS_IS)  # exactly these types: no secret reference, nothing to convert


def _shape(tp: Any) -> _Shape:
    shape = _SHAPES.get(tp)
    if shape is None:
        cls = _dataclass_of(tp)
        hints = typing.get_type_hints(cls, vars(mc), vars(mc)) if cls is not None else {}
        fields = tuple((f.name, hints[f.name], hints[f.name] in _AS_IS) for f in dataclasses.fields(cls)) \
            if cls is not None else ()
        optional = isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union
        shape = _SHAPES[tp] = _Shape(cls, optional, typing.get_args(tp), fields)
    return shape


# What one conversion pass made of each sub-model, by the model's identity (the model itself is
# kept in the entry, so the identity cannot be reused while the memo lives): the loader shares
# equal sub-models (`desired.cache`), so 10,000 accounts with the same junk filter, subject pass
# and destination settings convert each of them once. Only for one pass over a state that does
# not change meanwhile (the planner's targets): a model's conversion depends on nothing else.
Memo = dict[int, tuple[BaseModel, Any, Any]]  # id(model) -> (model, type converted to, result)


def _field(value: Any, tp: Any, as_is: bool, memo: Memo | None = None) -> Any:
    return value if as_is and not isinstance(value, SecretRef) else convert(value, tp, memo)


def convert(value: Any, tp: Any, memo: Memo | None = None) -> Any:
    """A desired sub-model (same field names as mox's config) as the mox config value of type
    `tp`; `memo`: sub-models converted before in the same pass are taken from it (see `Memo`)."""
    if isinstance(value, SecretRef):
        return value.secret()  # read by secrets.read_secrets; shown as its reference
    if value is None or isinstance(value, (BaseModel, list, dict)):
        shape = _shape(tp)
        if value is None:
            return None if shape.optional or shape.cls is None else shape.cls()
        if isinstance(value, BaseModel):
            if memo is not None:
                hit = memo.get(id(value))
                if hit is not None and hit[0] is value and hit[1] is tp:
                    return hit[2]
            assert shape.cls is not None, tp
            given = value.__dict__  # a model's field values (getattr for anything else)
            kw = {}
            for name, ftp, as_is in shape.fields:
                v = given[name] if name in given else getattr(value, name)
                tv = type(v)
                if as_is and tv in _PLAIN:
                    kw[name] = v
                elif tv is list and not v:  # what convert makes of an empty list or mapping
                    kw[name] = ()
                elif tv is dict and not v:
                    kw[name] = {}
                elif tv is Duration and ftp is Duration:  # mox's already (an immutable int)
                    kw[name] = v
                elif memo is not None and (hit := memo.get(id(v))) is not None and hit[0] is v and hit[1] is ftp:
                    kw[name] = hit[2]  # a shared sub-model converted before (see below)
                else:
                    kw[name] = _field(v, ftp, as_is, memo)
            out = shape.cls(**kw)
            if memo is not None:
                memo[id(value)] = (value, tp, out)
            return out
        args = shape.args
        if isinstance(value, list):
            return tuple(convert(v, args[0] if args else Any, memo) for v in value)
        return {k: convert(v, args[1] if len(args) == 2 else Any, memo) for k, v in value.items()}
    if tp is Duration:
        return Duration(value)
    return value


def _dns_domain(name: str) -> Domain:
    """`name` parsed; a name mox would refuse (reported by the checks) is kept as it is."""
    try:
        return parse_domain(name)
    except ParseError:
        return Domain(name)


def domain_template(name: str, account: str, hostname: str, with_mtasts: bool, now: datetime | None) -> mc.Domain:
    """What mox's DomainAdd would write for this domain (reports to `account`), without key
    files: the selectors' keys are generated at apply. No selectors and no MTA-STS policy ID
    without `now`."""
    when = now.astimezone() if now is not None else _NO_TIME  # the year of the selectors is local
    conf, _ = make_domain_config(_dns_domain(name), _dns_domain(hostname), account, with_mtasts, when)
    sels = {k: dataclasses.replace(s, PrivateKeyFile="") for k, s in conf.DKIM.Selectors.items()}
    dkim = dataclasses.replace(conf.DKIM, Selectors=sels) if now is not None else mc.DKIM()
    mtasts = conf.MTASTS
    if mtasts is not None and now is None:
        mtasts = dataclasses.replace(mtasts, PolicyID="")
    return dataclasses.replace(conf, DKIM=dkim, MTASTS=mtasts)


@functools.lru_cache(maxsize=16)
def _shared_template(hostname: str, with_mtasts: bool, now: datetime | None) -> mc.Domain:
    """The template's selectors, MTA-STS policy and catchall separator, which do not depend on
    the domain (key file names, blanked, and report accounts do; `domain_to_mox` takes neither
    from the template): made once per plan instead of once per domain."""
    return domain_template("example.org", "", hostname, with_mtasts, now)


def _catchall_separator(d: DesiredDomain, template: mc.Domain) -> str:
    """LocalpartCatchallSeparator: as given, else DomainAdd's `+` unless the list form is used
    (mox refuses both at once)."""
    if d.LocalpartCatchallSeparator is not None:
        return d.LocalpartCatchallSeparator
    return "" if d.LocalpartCatchallSeparators else template.LocalpartCatchallSeparator


def _reporting(d: DesiredDomain) -> tuple[mc.DMARC | None, mc.TLSRPT | None]:
    """DMARC and TLSRPT; an omitted Account is the domain's ReportsAccount (DomainAdd's ACCOUNT)."""
    dmarc = None
    if d.DMARC is not None:
        dmarc = mc.DMARC(
            d.DMARC.Localpart, d.DMARC.Domain, d.DMARC.Account or d.ReportsAccount, d.DMARC.Mailbox
        )
    tlsrpt = None
    if d.TLSRPT is not None:
        tlsrpt = mc.TLSRPT(
            d.TLSRPT.Localpart, d.TLSRPT.Domain, d.TLSRPT.Account or d.ReportsAccount, d.TLSRPT.Mailbox
        )
    return dmarc, tlsrpt


# The separator default does not depend on the domain: one template serves `names_to_mox`.
_NAMES_TEMPLATE, _ = make_domain_config(Domain("example.org"), Domain("mail.example.org"), "", False, _NO_TIME)


def names_to_mox(d: DesiredDomain) -> mc.Domain:
    """The part of `domain_to_mox` that mox's name rules read (catchall separators, case
    sensitivity, reporting addresses), cheap enough to make for every domain of a large state."""
    dmarc, tlsrpt = _reporting(d)
    return mc.Domain(
        LocalpartCatchallSeparator=_catchall_separator(d, _NAMES_TEMPLATE),
        LocalpartCatchallSeparators=tuple(d.LocalpartCatchallSeparators),
        LocalpartCaseSensitive=d.LocalpartCaseSensitive,
        DMARC=dmarc,
        TLSRPT=tlsrpt,
    )


def domain_to_mox(
    name: str, d: DesiredDomain, static: Static, existing: mc.Domain | None, now: datetime | None,
    memo: Memo | None = None,
) -> mc.Domain:
    """See DesiredState.domain_to_mox."""
    template = _shared_template(static.Hostname, mtasts_listener(static), now)
    rotating = d.DKIM is not None and d.DKIM.Rotation is not None
    if "DKIM" not in d.model_fields_set or rotating:
        # A rotation's selectors are decided by the planner (plan/rotation.py) from the live ones.
        dkim = existing.DKIM if existing is not None else template.DKIM
    elif d.DKIM is None:
        dkim = mc.DKIM()
    else:
        live_sel = existing.DKIM.Selectors if existing is not None else {}
        sels = {}
        for sname, s in d.DKIM.Selectors.items():
            key = s.PrivateKeyFile or (live_sel[sname].PrivateKeyFile if sname in live_sel else "")
            sels[sname] = mc.Selector(
                Hash=s.Hash,
                Canonicalization=convert(s.Canonicalization, mc.Canonicalization, memo),
                Headers=tuple(s.Headers),
                DontSealHeaders=s.DontSealHeaders,
                Expiration=s.Expiration,
                PrivateKeyFile=key,
            )
        dkim = mc.DKIM(Selectors=sels, Sign=tuple(d.DKIM.Sign))

    dmarc, tlsrpt = _reporting(d)

    mtasts: mc.MTASTS | None = None
    want = d.MTASTS
    if "MTASTS" not in d.model_fields_set:
        want = MTASTS() if template.MTASTS is not None else None
    if want is not None:
        mx = tuple(want.MX) if want.MX is not None else (_dns_domain(static.Hostname).ascii,)
        mtasts = mc.MTASTS(want.PolicyID, want.Mode, Duration(want.MaxAge), mx)
        if not want.PolicyID:
            old = existing.MTASTS if existing is not None else None
            if old is not None and (old.Mode, old.MaxAge, old.MX) == (mtasts.Mode, mtasts.MaxAge, mtasts.MX):
                policy_id = old.PolicyID
            else:
                policy_id = template.MTASTS.PolicyID if template.MTASTS is not None else ""
            mtasts = dataclasses.replace(mtasts, PolicyID=policy_id)

    client = d.ClientSettingsDomain
    if client is None:
        client = client_settings_domain(_dns_domain(name))
    return mc.Domain(
        Disabled=d.Disabled,
        Description=d.Description,
        ClientSettingsDomain=client,
        LocalpartCatchallSeparator=_catchall_separator(d, template),
        LocalpartCatchallSeparators=tuple(d.LocalpartCatchallSeparators),
        LocalpartCaseSensitive=d.LocalpartCaseSensitive,
        DKIM=dkim,
        DMARC=dmarc,
        MTASTS=mtasts,
        TLSRPT=tlsrpt,
        Routes=tuple(convert(r, mc.Route, memo) for r in d.Routes),
        Aliases={k: convert(v, mc.Alias, memo) for k, v in d.Aliases.items()},
    )


def default_account_domain(a: DesiredAccount) -> str:
    """AccountAdd's Domain: the domain of the (first) address."""
    for key in a.Destinations:
        try:
            if key.startswith("@"):
                return parse_domain(key[1:]).name()
            return parse_address(key).domain.name()
        except ParseError:
            continue
    return ""


def account_to_mox(a: DesiredAccount, memo: Memo | None = None) -> mc.Account:
    """See DesiredState.account_to_mox."""
    acc: mc.Account = convert(a, mc.Account, memo)
    if not a.Domain:
        acc = dataclasses.replace(acc, Domain=default_account_domain(a))
    return acc


def to_dynamic(state: DesiredState, static: Static, existing: mc.Dynamic | None,
               now: datetime | None = None) -> mc.Dynamic:
    """See DesiredState.to_dynamic."""
    live = existing or mc.Dynamic()
    prune = state.Policy.Prune
    removed_d, removed_a = set(state.Removed.Domains), set(state.Removed.Accounts)
    domains = {
        k: v
        for k, v in live.Domains.items()
        if not prune and k not in removed_d and k not in state.Domains
    }
    for k in state.Domains:
        domains[k] = domain_to_mox(k, state.Domains[k], static, live.Domains.get(k), now)
    accounts = {
        k: v
        for k, v in live.Accounts.items()
        if not prune and k not in removed_a and k not in state.Accounts
    }
    for k in state.Accounts:
        accounts[k] = account_to_mox(state.Accounts[k])
    routes = live.Routes if state.Routes is None else tuple(convert(r, mc.Route) for r in state.Routes)
    dnsbls = live.MonitorDNSBLs if state.MonitorDNSBLs is None else tuple(state.MonitorDNSBLs)
    return dataclasses.replace(
        live,
        Domains=dict(sorted(domains.items())),
        Accounts=dict(sorted(accounts.items())),
        Routes=routes,
        MonitorDNSBLs=dnsbls,
    )
