"""The value types where the planner, the plan file, the inventory and the safety check meet:
object references, the change threshold and the problems that need --force."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.desired.models import Policy
from reconciler.errors import LiveConfigError, UnsafePlan
from reconciler.mox.config import Account, Domain, Dynamic
from reconciler.plan.inventory import INVENTORY_FILE, Inventory, read_inventory, write_inventory
from reconciler.plan.objects import CONFIG, ObjectKind, ObjectRef
from reconciler.plan.safety import (
    DEFAULT_THRESHOLD,
    BlockedRemoval,
    SafetyThreshold,
    TooMuchChange,
    UnstatedRemovals,
    require_safe,
    safety_problem,
)

from .conftest import GOLDEN_STEPS, build_step_config


def test_object_ref_text_kind_and_name() -> None:
    d = ObjectRef.domain("café.example")
    assert (d, d.kind, d.name) == ("domain/café.example", ObjectKind.DOMAIN, "café.example")
    a = ObjectRef.parse("account/alice/x")  # a name may contain a slash; the kind is before the first
    assert (a.kind, a.name) == (ObjectKind.ACCOUNT, "alice/x")
    assert (CONFIG, CONFIG.kind, CONFIG.name) == ("config", ObjectKind.CONFIG, "")
    assert ObjectRef.parse("config") == CONFIG and ObjectRef.parse(d) is d
    # It is its text: sorts, hashes and serializes as the ids of plan files and the inventory.
    assert sorted([d, ObjectRef.account("zed"), ObjectRef.account("alice")]) == [
        "account/alice", "account/zed", "domain/café.example"]
    assert {d: 1}["domain/café.example"] == 1 and json.dumps([d]) == '["domain/caf\\u00e9.example"]'
    for clone in (copy.deepcopy(d), pickle.loads(pickle.dumps(d))):
        assert type(clone) is ObjectRef and (clone.kind, clone.name) == (d.kind, d.name)


@pytest.mark.parametrize("text", ["", "domain", "domain/", "mailbox/x", "config/x", "Domain/x", "/x"])
def test_object_ref_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not an object reference"):
        ObjectRef.parse(text)


def test_object_ref_needs_a_name_except_config() -> None:
    with pytest.raises(ValueError):
        ObjectRef(ObjectKind.DOMAIN)
    with pytest.raises(ValueError):
        ObjectRef(ObjectKind.CONFIG, "x")
    with pytest.raises(ValueError, match="domain: a name is needed"):
        ObjectRef.domain("")
    with pytest.raises(ValueError, match="account: a name is needed"):
        ObjectRef.account("")


@pytest.mark.parametrize("name", ["x.example", "café.example", "a/b", " ", "config"])
def test_object_ref_domain_and_account_are_the_constructor_s(name: str) -> None:
    """`domain` and `account` make what the checked constructor makes (without its checks)."""
    for made, kind in ((ObjectRef.domain(name), ObjectKind.DOMAIN), (ObjectRef.account(name), ObjectKind.ACCOUNT)):
        want = ObjectRef(kind, name)
        assert (made, type(made), made.kind, made.name) == (want, ObjectRef, kind, name)


def test_object_ref_exists_in() -> None:
    dyn = Dynamic(Domains={"example.org": Domain()}, Accounts={"alice": Account(Domain="example.org")})
    assert ObjectRef.domain("example.org").exists_in(dyn) and ObjectRef.account("alice").exists_in(dyn)
    assert not ObjectRef.domain("alice").exists_in(dyn) and not ObjectRef.account("example.org").exists_in(dyn)
    assert not CONFIG.exists_in(dyn)  # global settings are never owned


def test_inventory_reads_back_references(tmp_path: Path) -> None:
    inv = Inventory.of(["domain/example.org", ObjectRef.account("alice")])
    write_inventory(tmp_path, inv, None)
    again = read_inventory(tmp_path)
    assert again == inv and all(type(o) is ObjectRef for o in again.objects)
    assert again.owns(ObjectRef.domain("example.org")) and not again.owns(ObjectRef.domain("alice"))


def test_inventory_with_a_bad_object_is_one_message(tmp_path: Path) -> None:
    (tmp_path / INVENTORY_FILE).write_text(json.dumps({"version": 1, "objects": ["domain/a", "mailbox/b"]}))
    with pytest.raises(LiveConfigError) as e:
        read_inventory(tmp_path)
    assert str(e.value) == (f"{tmp_path / INVENTORY_FILE}: objects: not an object reference "
                            "(domain/<name>, account/<name> or config): 'mailbox/b'")


def test_inventory_with_a_bad_object_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf = build_step_config(GOLDEN_STEPS[1], tmp_path / "mox")
    (mox_conf.parent / INVENTORY_FILE).write_text(json.dumps({"version": 1, "objects": ["example.org"]}))
    (tmp_path / "d.yaml").write_text("Domains: {}\n")
    assert main(["--config", str(mox_conf), "plan", str(tmp_path / "d.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{INVENTORY_FILE}: objects: not an object reference" in err


def test_threshold_comes_from_the_policy() -> None:
    assert DEFAULT_THRESHOLD == SafetyThreshold(0.3, 10) == SafetyThreshold.of(Policy())
    assert SafetyThreshold.of(Policy(MaxChangeShare=0.5, MinObjectsForThreshold=3)) == SafetyThreshold(0.5, 3)


@pytest.mark.parametrize(("managed", "touched", "exceeded"), [
    (0, 0, False),  # nothing owned yet
    (9, 9, False),  # below min_objects: any share
    (10, 3, False),  # exactly the share is allowed
    (10, 4, True),
    (14, 5, True),
])
def test_threshold_boundaries(managed: int, touched: int, exceeded: bool) -> None:
    t = SafetyThreshold(0.3, 10)
    assert t.exceeded(managed, touched) is exceeded
    problem = safety_problem(managed, touched, t, [], 1)
    assert (problem == TooMuchChange(managed, touched, t)) if exceeded else problem is None


def test_problems_and_their_messages() -> None:
    t = SafetyThreshold(0.3, 10)
    too_much = safety_problem(14, 5, t, [], 5)
    assert str(too_much) == ("too much change: the plan changes or removes 5 of 14 managed objects (36% > 30%, "
                             "Policy.MaxChangeShare); re-run with --force to apply it")
    blocked = BlockedRemoval(ObjectRef.account("bob"))
    assert blocked.object == "account/bob" and blocked.startswith("account/bob left the desired state")
    assert pickle.loads(pickle.dumps(blocked)).object == "account/bob"
    unstated = safety_problem(14, 5, t, [blocked], 5)  # unstated removals come first
    assert unstated == UnstatedRemovals((blocked,), 5)
    assert str(unstated) == ("the plan implies removals that are not stated; re-run with --force to apply the "
                             f"other 5 operations (the blocked objects stay):\n  {blocked}")
    # nothing else to apply: --force would do nothing, so the message says what would
    only = safety_problem(14, 0, t, [blocked], 0)
    assert str(only) == ("the plan implies removals that are not stated; there is nothing else to apply: list "
                         "them under Removed.Accounts to remove them, or set Policy.Prune off to keep them:\n  "
                         f"{blocked}")
    with pytest.raises(UnsafePlan) as e:
        require_safe(unstated, force=False)
    assert e.value.problem == unstated and str(e.value) == str(unstated)
    require_safe(unstated, force=True)
    require_safe(None, force=False)
