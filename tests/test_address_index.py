"""The memoized address index stays equal to a fresh build through a run of operations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconciler.apply.batch import fold
from reconciler.mox.admin import (
    AccountAdd,
    AddressAdd,
    AddressRemove,
    AliasAdd,
    AliasAddressesAdd,
    Context,
    DomainAdd,
    _build_address_index,
    _build_reporting_index,
    _reporting_index,
    address_index,
    now_local,
)
from reconciler.mox.live import locate, read_live


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
    import dataclasses

    from reconciler.mox.config import Destination
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
