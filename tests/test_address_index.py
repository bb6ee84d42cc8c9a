"""The memoized address index stays equal to a fresh build through a run of operations."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from reconciler.apply.batch import fold
from reconciler.mox.admin import (
    AccountAdd,
    AddressAdd,
    AddressRemove,
    AliasAdd,
    AliasAddressesAdd,
    Context,
    DomainAdd,
    _aliased,
    _build_address_index,
    _build_reporting_index,
    _memo_of,
    _reporting_index,
    address_index,
    canonical_key,
    localpart_rules,
    now_local,
    reporting_address,
)
from reconciler.mox.config import DMARC, TLSRPT, Destination, Domain, Dynamic, Static
from reconciler.mox.live import locate, read_live
from reconciler.mox.names import Address, ParseError, parse_address, parse_domain, parse_localpart


def test_index_after_each_operation_equals_a_fresh_build(golden_config: Callable[[str], Path]) -> None:
    live = read_live(locate(str(golden_config("17"))))
    ctx = Context(live.static, now_local())
    ops = [
        AddressAdd("carl@example.org", "alice"),
        AddressAdd("@café.example", "bob"),
        AddressAdd("Dora@example.org", "bob"),
        AccountAdd("erin", "erin@example.net"),
        AddressAdd("erin2@example.net", "erin"),
        AddressRemove("carl@example.org"),
    ]
    dyn = live.dynamic
    for op in ops:
        dyn = op.apply(dyn, ctx).dynamic
        assert address_index(live.static, dyn) == _build_address_index(live.static, dyn)
    assert address_index(live.static, dyn)["dora@example.org"] == "bob"
    assert "carl@example.org" not in address_index(live.static, dyn)
    assert fold(ops, live.dynamic, ctx).dynamic == dyn


def test_removing_a_reporting_address_destination_keeps_the_reporting_entry(
        golden_config: Callable[[str], Path]) -> None:
    """dmarcreports@example.org as a plain destination too: removing the destination must leave
    the reporting address in the index (a seeded index that just dropped it would be wrong)."""
    live = read_live(locate(str(golden_config("17"))))
    ctx = Context(live.static, now_local())
    dyn = AddressAdd("carl@example.org", "alice").apply(live.dynamic, ctx).dynamic
    acc = dyn.Accounts["alice"]
    dyn = dataclasses.replace(dyn, Accounts={**dyn.Accounts, "alice": dataclasses.replace(
        acc, Destinations={**acc.Destinations, "dmarcreports@example.org": Destination()})})
    dyn = AddressRemove("dmarcreports@example.org").apply(dyn, ctx).dynamic
    assert address_index(live.static, dyn) == _build_address_index(live.static, dyn)
    assert address_index(live.static, dyn)["dmarcreports@example.org"] == "alice"


def test_reporting_memo_follows_removals_that_change_aliases_and_new_domains(
        golden_config: Callable[[str], Path]) -> None:
    """AddressRemove carries the reporting index forward (only aliases change): after each
    operation of a run that adds domains and removes alias members in two domains, both indexes
    equal a fresh build, and the fold of the run equals the operations one by one."""
    live = read_live(locate(str(golden_config("17"))))
    ctx = Context(live.static, now_local())
    ops = [
        AliasAdd("crew@café.example", ("bob@example.org", "alice@example.org")),
        AliasAddressesAdd("team@example.org", ("bob@example.org",)),
        DomainAdd("new.example", "alice"),
        AddressRemove("postmaster@new.example"),
        AddressRemove("bob@example.org"),  # a member of team@example.org and crew@café.example
        DomainAdd("newer.example", "bob"),
        AddressRemove("postmaster@newer.example"),
    ]
    dyn = live.dynamic
    for op in ops:
        dyn = op.apply(dyn, ctx).dynamic
        assert _reporting_index(dyn) == _build_reporting_index(dyn.Domains), op
        assert address_index(live.static, dyn) == _build_address_index(live.static, dyn), op
        assert _aliased(dyn.Domains) == tuple(sorted(n for n, d in dyn.Domains.items() if d.Aliases)), op
    assert "bob@example.org" not in dyn.Domains["example.org"].Aliases["team"].Addresses
    assert dyn.Domains["café.example"].Aliases["crew"].Addresses == ("alice@example.org",)
    assert "postmaster@new.example" not in dyn.Accounts["alice"].Destinations
    assert fold(ops, live.dynamic, ctx).dynamic == dyn


def test_removal_keeps_the_domains_mapping_when_no_alias_names_the_address(
        golden_config: Callable[[str], Path]) -> None:
    live = read_live(locate(str(golden_config("17"))))
    ctx = Context(live.static, now_local())
    dyn = AddressRemove("bob@café.example").apply(live.dynamic, ctx).dynamic
    assert dyn.Domains is live.dynamic.Domains
    assert "bob@café.example" not in dyn.Accounts["bob"].Destinations


def _with_destination(dyn: Dynamic, account: str, key: str) -> Dynamic:
    acc = dyn.Accounts[account]
    return dataclasses.replace(dyn, Accounts={**dyn.Accounts, account: dataclasses.replace(
        acc, Destinations={**acc.Destinations, key: Destination()})})


@pytest.mark.parametrize("case", ["plain", "destination already in the new domain", "reports named there",
                                  "new account", "postmaster account", "the host's domain"])
def test_domain_add_carries_the_index_forward_as_a_build_would(
        case: str, golden_config: Callable[[str], Path]) -> None:
    """DomainAdd derives the new config's indexes from the old ones unless the new domain
    changes entries besides its own (then they are built again): equal to a fresh build."""
    live = read_live(locate(str(golden_config("17"))))
    ctx = Context(live.static, now_local())
    dyn = live.dynamic
    name, account, localpart = "new.example", "bob", ""
    if case == "destination already in the new domain":
        dyn = _with_destination(dyn, "alice", "Alice@new.example")  # unconfigured until now: not indexed
    elif case == "reports named there":
        d = dyn.Domains["example.org"]
        assert d.DMARC is not None
        dmarc = dataclasses.replace(d.DMARC, Localpart="Reports", Domain="new.example")
        dyn = dataclasses.replace(dyn, Domains={**dyn.Domains, "example.org": dataclasses.replace(d, DMARC=dmarc)})
    elif case == "new account":
        account, localpart = "newbie", "Newbie"
    elif case == "postmaster account":
        account = live.static.Postmaster.Account
    elif case == "the host's domain":
        name = parse_domain(live.static.Hostname).name()  # where the host TLSRPT address is
        dyn = dataclasses.replace(dyn, Domains={k: v for k, v in dyn.Domains.items() if k != name})
    address_index(live.static, dyn)  # known before the operation, as in a plan or a batch
    _reporting_index(dyn)
    new = DomainAdd(name, account, localpart).apply(dyn, ctx).dynamic
    carried = _memo_of(live.static, new) is not None
    assert carried == (case not in ("destination already in the new domain", "reports named there"))
    assert address_index(live.static, new) == _build_address_index(live.static, new)
    assert _reporting_index(new) == _build_reporting_index(new.Domains)
    after = AddressRemove(f"dmarcreports@{name}" if case == "postmaster account" else f"postmaster@{name}")
    if case in ("postmaster account", "new account"):
        return
    newer = after.apply(new, ctx).dynamic
    assert address_index(live.static, newer) == _build_address_index(live.static, newer)


@pytest.mark.parametrize("step", ["05", "09", "17", "21"])
def test_planner_canonical_keys_equal_canonical_address(step: str, golden_config: Callable[[str], Path]) -> None:
    """The planner's memoized canonical form of a destination key (its parse kept across
    configs, the domain's rules per config) is admin.canonical_address of the key."""
    from reconciler.mox.admin import canonical_address
    from reconciler.mox.names import ParseError, parse_address
    from reconciler.plan.planner import _canon

    live = read_live(locate(str(golden_config(step))))
    keys = [k for a in live.dynamic.Accounts.values() for k in a.Destinations]
    keys += ["Bob@Example.ORG", "x+tag@café.example", '"a b"@example.org', "nobody@unknown.example", "@EXAMPLE.org",
             "not an address"]
    for dyn in (live.dynamic, DomainAdd("unknown.example", "bob").apply(live.dynamic, Context(live.static,
                                                                                             now_local())).dynamic):
        for key in keys:
            try:
                want = ("@" + parse_domain(key[1:]).name() if key.startswith("@")
                        else canonical_address(dyn, parse_address(key)))
            except ParseError:
                want = key
            assert _canon(dyn, key) == want, key


def _reference_index(static: Static, dyn: Dynamic) -> tuple[dict[str, str], set[str]]:
    """The index and its blocked domains as mox's prepareDynamicConfig reads them, written out
    plainly (no memo: each key parsed, each domain's rules made, where it is met)."""
    blocked: set[str] = set()
    for d in dyn.Domains.values():
        for rep in (d.DMARC, d.TLSRPT):
            if rep is not None and rep.Domain:
                with contextlib.suppress(ParseError):
                    blocked.add(parse_domain(rep.Domain).name())
    index: dict[str, str] = {}
    if static.HostTLSRPT.Account:
        with contextlib.suppress(ParseError):
            index[str(Address(parse_localpart(static.HostTLSRPT.Localpart), parse_domain(static.Hostname)))] = \
                static.HostTLSRPT.Account
    for acc_name in sorted(dyn.Accounts):
        acc = dyn.Accounts[acc_name]
        for key in sorted(acc.Destinations):
            if key.startswith("@"):
                with contextlib.suppress(ParseError):
                    index["@" + parse_domain(key[1:]).name()] = acc_name
                continue
            addr = None
            for kind in ("address", "localpart") if "@" in key else ("localpart", "address"):
                try:
                    addr = (parse_address(key) if kind == "address"
                            else Address(parse_localpart(key), parse_domain(acc.Domain)))
                    break
                except ParseError:
                    continue
            if addr is None:
                continue
            if addr.domain.name() not in dyn.Domains:
                blocked.add(addr.domain.name())
                continue
            rules = localpart_rules(dyn.Domains, addr.domain.name())
            index.setdefault(str(Address(rules.canonical(addr.localpart), addr.domain)), acc_name)
    for name in sorted(dyn.Domains):
        d = dyn.Domains[name]
        for rep in (d.DMARC, d.TLSRPT):
            if rep is not None:
                with contextlib.suppress(ParseError):
                    index[str(reporting_address(dyn.Domains, name, rep))] = rep.Account
    return index, blocked


def _reference_reporting(domains: Mapping[str, Domain]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in sorted(domains):
        for rep in (domains[name].DMARC, domains[name].TLSRPT):
            if rep is not None:
                with contextlib.suppress(ParseError):
                    out[str(reporting_address(domains, name, rep))] = rep.Account
    return out


def test_builds_from_the_shared_canonical_forms_equal_a_plain_build(golden_config: Callable[[str], Path]) -> None:
    """The index build takes canonical forms and domain rules from the memo the planner fills
    (`canonical_key`), which moves from config to config keeping what did not change: through
    150 random changes of domains (case sensitivity, separators, reporting addresses naming
    other domains or unparsable ones, domains added and removed) and destinations (bare
    localparts, quoted ones with @, other spellings, unconfigured domains, keys that do not
    parse), asked in random orders, both indexes and the blocked domains equal a plain build."""
    live = read_live(locate(str(golden_config("17"))))
    static = live.static
    rng = random.Random(17)
    names = ["example.org", "café.example", "example.net", "new.example", "other.example", "xn--caf-dma.example"]
    keys = [f"{lp}@{d}" for lp in ("Bob", "x+tag", "dmarcreports+x", "TLSReports", '"a b"', '"a@b"', "Rep+orts",
                                   "rep-orts", "DMARC") for d in (*names, "EXAMPLE.org", "unknown.example")]
    keys += ["@EXAMPLE.org", "@new.example", "not an address", "Carl", "dmarcreports", '"x@y"', "a@@b"]
    base = live.dynamic.Domains["example.org"]
    dyn = live.dynamic
    for step in range(150):
        domains = dict(dyn.Domains)
        accounts = dict(dyn.Accounts)
        what = rng.randrange(5)
        name = rng.choice(names[:5])
        if what == 0 and len(domains) > 2:
            domains.pop(name, None)
        elif what in (1, 2):
            other = rng.choice([*names, "bad domain"])
            domains[name] = dataclasses.replace(
                domains.get(name, base),
                LocalpartCaseSensitive=rng.random() < 0.4,
                LocalpartCatchallSeparator=rng.choice(["", "+", "-"]),
                DMARC=DMARC(Localpart=rng.choice(["dmarcreports", "DMARC", "Rep+orts", "bad localpart"]),
                            Domain=rng.choice(["", "", other]), Account="alice", Mailbox="DMARC")
                if rng.random() < 0.8 else None,
                TLSRPT=TLSRPT(Localpart=rng.choice(["tlsreports", "TLSReports"]), Domain=rng.choice(["", other]),
                              Account="bob", Mailbox="TLSRPT") if rng.random() < 0.8 else None)
        else:
            account = rng.choice(sorted(accounts))
            acc = accounts[account]
            dests = dict(acc.Destinations)
            for key in rng.sample(keys, 3):
                if rng.random() < 0.3:
                    dests.pop(key, None)
                else:
                    dests[key] = Destination()
            accounts[account] = dataclasses.replace(acc, Destinations=dests,
                                                    Domain=rng.choice([acc.Domain, *names[:3], "bad domain"]))
        dyn = dataclasses.replace(dyn, Domains=domains if what < 3 else dyn.Domains, Accounts=accounts)
        if rng.random() < 0.5:  # the planner asked for some forms first, under this config
            for key in rng.sample(keys, 10):
                canonical_key(dyn, key)
        blocked: set[str] = set()
        want, want_blocked = _reference_index(static, dyn)
        assert _build_address_index(static, dyn, blocked) == want, step
        assert blocked == want_blocked, step
        assert _build_reporting_index(dyn.Domains) == _reference_reporting(dyn.Domains), step


def test_an_index_of_changes_reads_as_the_dict_it_stands_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operations derive each config's index from the previous one by a few changes
    (`admin._changed_index`); through a long random run (past the point where the changes are
    folded into a plain dict again) it reads as the plain dict the same changes make."""
    from reconciler.mox import admin

    monkeypatch.setattr(admin._Index, "MAX_CHANGES", 16)
    rng = random.Random(17)
    plain = {f"a{i}@example.org": f"acc{i % 7}" for i in range(200)}
    index: Mapping[str, str] = dict(plain)
    kinds = set()
    for step in range(300):
        key = f"a{rng.randrange(260)}@example.org"
        if key in plain and rng.random() < 0.5:
            del plain[key]
            index = admin._changed_index(index, {key: None})
        else:
            plain[key] = f"acc{step}"
            index = admin._changed_index(index, {key: f"acc{step}"})
        kinds.add(type(index).__name__)
        probe = f"a{rng.randrange(260)}@example.org"
        assert (probe in index) == (probe in plain)
        assert index.get(probe) == plain.get(probe) and index.get(probe, "-") == plain.get(probe, "-")
        if probe in plain:
            assert index[probe] == plain[probe]
        else:
            with pytest.raises(KeyError):
                index[probe]
    assert dict(index) == plain and len(index) == len(plain) and sorted(index) == sorted(plain)
    assert kinds == {"_Index", "dict"}


def test_a_batch_after_its_plan_builds_no_index_again(golden_config: Callable[[str], Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan and then its apply's batch fold the same operations from the same live config: the
    indexes of the live config are built once (kept besides the few recent ones), however many
    operations came between, and each fold gives the same config."""
    from reconciler.mox import admin

    live = read_live(locate(str(golden_config("17"))))
    ctx = Context(live.static, now_local())
    builds = {"address": 0, "reporting": 0}
    real_address, real_reporting = admin._build_address_index, admin._build_reporting_index

    def count(kind: str, real: Callable[..., object]) -> Callable[..., object]:
        def counted(*a: object, **k: object) -> object:
            builds[kind] += 1
            return real(*a, **k)
        return counted

    monkeypatch.setattr(admin, "_build_address_index", count("address", real_address))
    monkeypatch.setattr(admin, "_build_reporting_index", count("reporting", real_reporting))
    ops = [AddressRemove("bob@café.example"),  # asks for the live config's indexes first
           *(op for i in range(6) for op in (DomainAdd(f"n{i}.example", "bob"), AddressRemove(f"postmaster@n{i}.example")))]
    first = fold(ops, live.dynamic, ctx).dynamic
    once = dict(builds)
    assert fold(ops, live.dynamic, ctx).dynamic == first
    assert builds == once and once["address"] == 1 and once["reporting"] <= 1
    assert address_index(live.static, first) == real_address(live.static, first)
    assert _reporting_index(first) == real_reporting(first.Domains)
