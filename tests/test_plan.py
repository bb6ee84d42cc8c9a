"""The pure planner on plain data: order, minimality, determinism, and plan+fold = desired.

The live config is a golden domains.conf (step 09: three domains made by mox's DomainAdd, the
mail host domain, accounts admin/alice/bob, alias team@example.org); the desired states are
`import` of it (which plans empty) with edits. Nothing here touches the disk but reading those.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reconciler.apply.batch import fold
from reconciler.desired.checks import check
from reconciler.desired.importer import import_live
from reconciler.desired.models import DesiredState
from reconciler.errors import UnsafePlan
from reconciler.mox import sconf
from reconciler.mox.admin import Context
from reconciler.mox.config import Dynamic, Static
from reconciler.plan.inventory import Inventory
from reconciler.plan.planner import Plan, PlanError, PlanInput, make_plan, plan_document

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
STATIC: Static = sconf.parse((GOLDEN / "instance" / "config" / "mox.conf").read_text(), Static, "mox.conf")
LIVE: Dynamic = sconf.parse((GOLDEN / "steps" / "09-alias-add-team" / "domains.conf").read_text(),
                            Dynamic, "domains.conf")
ALL = Inventory.of([f"domain/{d}" for d in LIVE.Domains] + [f"account/{a}" for a in LIVE.Accounts])


def imported() -> dict[str, Any]:
    """The live config as a desired-state document (a fresh deep copy to edit)."""
    return copy.deepcopy(import_live(STATIC, LIVE))


def state(doc: dict[str, Any]) -> DesiredState:
    s = DesiredState.model_validate(doc)
    assert check(s) == [], check(s)
    return s


def plan(doc: dict[str, Any], live: Dynamic = LIVE, inventory: Inventory = ALL) -> Plan:
    return make_plan(PlanInput(state(doc), STATIC, live, inventory, NOW))


def ops(p: Plan) -> list[str]:
    return [type(o).__name__ for o in p.operations]


def index(p: Plan, op: str, **fields: Any) -> int:
    """Position of the first operation named `op` whose JSON has `fields`."""
    for i, o in enumerate(p.operations):
        j = o.to_json()
        if j["op"] == op and all(j.get(k) == v for k, v in fields.items()):
            return i
    raise AssertionError(f"no {op} {fields} in {ops(p)}")


def refold_is_empty(doc: dict[str, Any], p: Plan, live: Dynamic = LIVE) -> None:
    """Applying the plan's operations to the live config gives a config whose re-plan is empty."""
    after = fold(p.operations, live, Context(STATIC, NOW)).dynamic
    again = plan(doc, after, Inventory.of(p.inventory_after))
    assert again.empty, [s.description() for s in again.steps]
    assert after == p.result


# -- minimality --------------------------------------------------------------------------------


def test_import_of_live_plans_nothing() -> None:
    p = plan(imported())
    assert p.empty and p.steps == () and p.blocked == () and p.unmanaged == ()
    assert p.summary().startswith("No changes.")


def test_fields_left_to_mox_defaults_plan_nothing() -> None:
    """A domain and account written with only what differs from DomainAdd/AccountAdd defaults."""
    doc = imported()
    doc["Domains"]["example.org"] = {
        "ReportsAccount": "alice",
        "DKIM": doc["Domains"]["example.org"]["DKIM"],
        "MTASTS": doc["Domains"]["example.org"]["MTASTS"],
        "Aliases": {"team": {"Addresses": ["alice@example.org", "bob@example.org"], "PostPublic": True}},
    }
    # Domain omitted: the domain of the first address, as AccountAdd (so bob@example.org goes first)
    doc["Accounts"]["bob"] = {"Destinations": {"bob@example.org": {}, "bob.smith@example.org": {},
                                               "bob@café.example": {}, "José@café.example": {}}}
    assert plan(doc).empty


def test_one_field_changed_is_one_save_of_that_field() -> None:
    doc = imported()
    doc["Domains"]["example.org"]["Description"] = "Example"
    doc["Accounts"]["bob"]["Description"] = "Bob's mailbox"
    p = plan(doc)
    assert [(s.op.to_json()["op"], s.object) for s in p.steps] == [
        ("DomainSave", "domain/example.org"), ("AccountSave", "account/bob")]
    assert p.steps[0].op.to_json()["fields"] == {"Description": "Example"}
    assert p.steps[1].op.to_json()["fields"] == {"Description": "Bob's mailbox"}
    assert p.counts() == {"create": 0, "update": 2, "delete": 0}
    refold_is_empty(doc, p)


def test_unnamed_live_objects_are_unmanaged_and_untouched() -> None:
    doc = imported()
    del doc["Domains"]["example.net"]
    p = plan(doc, inventory=Inventory())
    assert p.empty and p.unmanaged == ("domain/example.net",)
    # owned but not pruned: kept and not listed as unmanaged either
    p = plan(doc)
    assert p.empty and p.unmanaged == ()


# -- ordering ----------------------------------------------------------------------------------


def test_domain_before_its_addresses_and_accounts() -> None:
    doc = imported()
    doc["Domains"]["new.example"] = {"ReportsAccount": "carol"}
    doc["Accounts"]["carol"] = {"Destinations": {"carol@new.example": {}, "postmaster@new.example": {}}}
    doc["Accounts"]["alice"]["Destinations"]["alice@new.example"] = {}
    p = plan(doc)
    dom = index(p, "DomainAdd", domain="new.example")
    assert p.operations[dom].to_json()["localpart"] == "carol"  # DomainAdd creates the account
    assert dom < index(p, "AddressAdd", address="alice@new.example", account="alice")
    assert dom < index(p, "AddressAdd", address="postmaster@new.example", account="carol")
    assert set(p.objects("create")) == {"domain/new.example", "account/carol"}
    refold_is_empty(doc, p)


def test_address_and_report_removals_before_domain_removal() -> None:
    doc = imported()
    del doc["Domains"]["café.example"]
    doc["Removed"] = {"Domains": ["café.example"]}
    for acc in doc["Accounts"].values():
        for key in [k for k in acc["Destinations"] if k.endswith("@café.example")]:
            del acc["Destinations"][key]
    p = plan(doc)
    drop = index(p, "DomainRemove", domain="café.example")
    assert drop == len(p.steps) - 1
    for o in p.operations[:drop]:
        j = o.to_json()
        assert j["op"] in ("AddressRemove", "AccountSave"), j
    removed = {o.to_json().get("address") for o in p.operations[:drop]}
    assert {"postmaster@café.example", "bob@café.example"} <= removed
    assert p.steps[drop].destructive and p.objects("delete") == ["domain/café.example"]
    refold_is_empty(doc, p)


def test_alias_and_report_references_go_before_account_removal() -> None:
    doc = imported()
    del doc["Accounts"]["bob"]
    doc["Removed"] = {"Accounts": ["bob"]}
    del doc["Domains"]["example.org"]["Aliases"]
    doc["Domains"]["example.net"]["ReportsAccount"] = "bob"  # not possible: bob goes
    problems = check(DesiredState.model_validate(doc))
    assert [p for p, _ in problems] == [("Domains", "example.net", "ReportsAccount")]
    doc["Domains"]["example.net"]["ReportsAccount"] = "admin"
    p = plan(doc)
    assert index(p, "AliasRemove", address="team@example.org") < index(p, "AccountRemove", account="bob")
    refold_is_empty(doc, p)


def test_report_account_moved_before_its_account_is_removed() -> None:
    doc = imported()
    del doc["Accounts"]["alice"]
    doc["Removed"] = {"Accounts": ["alice"]}
    del doc["Domains"]["example.org"]["Aliases"]
    for name in ("example.org", "café.example"):
        doc["Domains"][name]["ReportsAccount"] = "bob"
    p = plan(doc)
    gone = index(p, "AccountRemove", account="alice")
    assert index(p, "DomainSave", domain="example.org") < gone
    assert index(p, "DomainSave", domain="café.example") < gone
    assert index(p, "AliasRemove", address="team@example.org") < gone
    refold_is_empty(doc, p)


def test_dkim_selector_added_before_sign_names_it_and_old_removed_after() -> None:
    doc = imported()
    dkim = doc["Domains"]["example.org"]["DKIM"]
    dkim["Selectors"]["2027a"] = {"Algorithm": "ed25519", "Expiration": "72h"}
    dkim["Sign"] = ["2027a"]
    del dkim["Selectors"]["2026a"]
    p = plan(doc)
    add = index(p, "DKIMAdd", domain="example.org", selector="2027a")
    save = index(p, "DKIMSave", domain="example.org")
    rm = index(p, "DKIMRemove", domain="example.org", selector="2026a")
    assert add < save < rm
    assert p.operations[save].to_json()["sign"] == ["2027a"]
    refold_is_empty(doc, p)


def test_account_removal_without_statement_is_blocked() -> None:
    doc = imported()
    del doc["Accounts"]["bob"]
    del doc["Domains"]["example.org"]["Aliases"]
    doc["Policy"] = {"Prune": True}
    p = plan(doc)
    assert ops(p) == ["AliasRemove"] and len(p.blocked) == 1 and "account/bob" in p.blocked[0]
    assert "account/bob" in p.inventory_after
    with pytest.raises(UnsafePlan, match=r"Removed\.Accounts"):
        p.check_safety()
    p.check_safety(force=True)


def test_prune_removes_owned_domain_only() -> None:
    doc = imported()
    del doc["Domains"]["example.net"]
    doc["Policy"] = {"Prune": True}
    assert ops(plan(doc, inventory=Inventory())) == []
    p = plan(doc)
    assert ops(p) == ["DomainRemove"] and "domain/example.net" not in p.inventory_after


def test_unreachable_target_names_the_objects() -> None:
    doc = imported()
    doc["Accounts"]["dave"] = {"Destinations": {"dave@nowhere.example": {}}}
    doc["Domains"]["nowhere.example"] = {"ReportsAccount": "erin"}
    doc["Accounts"]["erin"] = {"Destinations": {"@nowhere.example": {}}}
    with pytest.raises(PlanError, match="account/erin"):
        plan(doc)


# -- determinism -------------------------------------------------------------------------------


def big_change() -> dict[str, Any]:
    doc = imported()
    doc["Domains"]["new.example"] = {"ReportsAccount": "carol", "Description": "new"}
    doc["Domains"]["b.example"] = {"ReportsAccount": "alice"}
    doc["Accounts"]["carol"] = {"Destinations": {"carol@new.example": {}, "c2@b.example": {}}}
    doc["Accounts"]["alice"]["Destinations"]["alice@b.example"] = {}
    doc["Domains"]["example.org"]["Aliases"]["team"]["Addresses"] = ["alice@example.org", "carol@new.example"]
    doc["Domains"]["example.org"]["Aliases"]["all"] = {"Addresses": ["bob@example.org", "alice@example.org"]}
    doc["Domains"]["example.net"]["Disabled"] = False
    doc["Domains"]["café.example"]["DKIM"]["Selectors"]["2027e"] = {"Algorithm": "ed25519"}
    doc["Domains"]["café.example"]["DKIM"]["Sign"] = ["2026a", "2027e"]
    return doc


def test_same_input_same_plan() -> None:
    a, b = plan(big_change()), plan(big_change())
    assert a.steps == b.steps and a.checksum() == b.checksum()
    ja = plan_document(a, source=None, live_path="domains.conf", live_digest="0" * 64)
    jb = plan_document(b, source=None, live_path="domains.conf", live_digest="0" * 64)
    assert ja == jb
    refold_is_empty(big_change(), a)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_insertion_order_does_not_matter(rnd: random.Random) -> None:
    doc = big_change()
    reference = plan(doc)
    shuffled = copy.deepcopy(doc)
    for key in ("Domains", "Accounts"):
        items = list(shuffled[key].items())
        rnd.shuffle(items)
        shuffled[key] = dict(items)
    live_domains = list(LIVE.Domains.items())
    rnd.shuffle(live_domains)
    live = Dynamic(**{**{f: getattr(LIVE, f) for f in LIVE.__dataclass_fields__}, "Domains": dict(live_domains)})
    got = plan(shuffled, live)
    assert got.steps == reference.steps and got.checksum() == reference.checksum()


# -- property: plan + fold reaches the desired state --------------------------------------------

NEW_DOMAINS = ("n1.example", "n2.example")
EXISTING = ("example.org", "café.example", "example.net")


@st.composite
def edited(draw: st.DrawFn) -> dict[str, Any]:
    doc = imported()
    new = draw(st.lists(st.sampled_from(NEW_DOMAINS), unique=True))
    for d in new:
        doc["Domains"][d] = {"ReportsAccount": draw(st.sampled_from(["alice", "bob"])),
                             "Disabled": draw(st.booleans())}
        if draw(st.booleans()):
            doc["Domains"][d]["DKIM"] = {"Selectors": {"s1": {"Algorithm": "ed25519"}}, "Sign": ["s1"]}
    domains = [*EXISTING, *new]
    for d in EXISTING:
        dd = doc["Domains"][d]
        if draw(st.booleans()):
            dd["Description"] = draw(st.sampled_from(["", "x", "y z"]))
        if draw(st.booleans()):
            dd["DKIM"]["Selectors"]["e1"] = {"Algorithm": "ed25519", "Expiration": "72h"}
            if draw(st.booleans()):
                dd["DKIM"]["Sign"] = ["e1"]
        if draw(st.booleans()):
            dd["DKIM"]["Selectors"].pop("2026b", None)
    for acc in ("alice", "bob"):
        dests = doc["Accounts"][acc]["Destinations"]
        for lp in draw(st.lists(st.sampled_from(["x", "y", "z"]), unique=True, max_size=2)):
            dests[f"{lp}{acc}@{draw(st.sampled_from(domains))}"] = {}
        if draw(st.booleans()):
            for k in [k for k in dests if k not in ("alice@example.org", "bob@example.org")][:1]:
                del dests[k]
    if draw(st.booleans()):
        doc["Domains"]["example.org"].pop("Aliases", None)
    elif draw(st.booleans()):
        doc["Domains"]["example.org"]["Aliases"]["team"]["Addresses"] = ["bob@example.org"]
    if draw(st.booleans()):
        doc["Accounts"]["alice"]["FullName"] = "Alice"
    if draw(st.booleans()):
        del doc["Domains"]["example.net"]
        doc["Removed"] = {"Domains": ["example.net"]}
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_plan_then_fold_replans_empty(doc: dict[str, Any]) -> None:
    s = DesiredState.model_validate(doc)
    assume(check(s) == [])
    p = make_plan(PlanInput(s, STATIC, LIVE, ALL, NOW))
    refold_is_empty(doc, p)
    # every operation is needed for its object: no step re-saves what is already there
    blobs = [json.dumps(s.op.to_json(), sort_keys=True) for s in p.steps]
    assert len(set(blobs)) == len(blobs)
