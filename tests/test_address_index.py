"""The memoized address index stays equal to a fresh build through a run of operations."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
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
    now_local,
)
from reconciler.mox.config import Destination, Dynamic
from reconciler.mox.live import locate, read_live
from reconciler.mox.names import parse_domain


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
