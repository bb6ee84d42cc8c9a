"""plan/apply end to end: a desired state committed to a real git repository, the CLI
(`reconciler.cli.main.main`) against a real mox config dir built from a golden step, real key files.

Each scenario edits the desired state as a dict, commits it as desired.yaml, and runs the verbs
the way an operator or a CI job would. New domains use Ed25519 or no DKIM to keep key
generation fast; DomainAdd's RSA default selectors are dropped by the plan before generation.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from reconciler.cli.main import main
from reconciler.desired.importer import import_live
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic
from reconciler.mox.live import ConfigPaths, locate, read_live
from reconciler.plan.inventory import read_inventory

from .conftest import GOLDEN_STEPS, build_step_config

ACTOR = git.Actor("Test", "test@example.org")


class Env:
    """A mox config dir (golden step 01: example.org by DomainAdd, accounts admin and alice)
    plus a git repository holding the desired state."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.mox_conf = build_step_config(GOLDEN_STEPS[1], tmp / "mox")
        self.paths: ConfigPaths = locate(str(self.mox_conf))
        self.repo_dir = tmp / "repo"
        self.repo = git.Repo.init(self.repo_dir)
        live = read_live(self.paths)
        self.doc: dict[str, Any] = copy.deepcopy(import_live(live.static, live.dynamic))

    def commit(self, message: str) -> str:
        (self.repo_dir / "desired.yaml").write_text(yaml.safe_dump(self.doc, allow_unicode=True, sort_keys=False))
        self.repo.index.add(["desired.yaml"])
        return self.repo.index.commit(message, author=ACTOR, committer=ACTOR).hexsha

    def run(self, *args: str, source: bool = True) -> tuple[int, str, str]:
        self.capsys.readouterr()
        argv = ["--config", str(self.mox_conf), *args]
        if source:
            argv.append(str(self.repo_dir))
        rc = main(argv)
        out, err = self.capsys.readouterr()
        return rc, out, err

    def ok(self, *args: str) -> str:
        rc, out, err = self.run(*args)
        assert rc == 0, (out, err)
        return out

    def plan_json(self, tmp_name: str = "plan.json") -> dict[str, Any]:
        path = self.repo_dir.parent / tmp_name
        self.ok("plan", "--out", str(path))
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc

    def apply(self, *extra: str) -> str:
        return self.ok("apply", "--yes", *extra)

    @property
    def live(self) -> Dynamic:
        return read_live(self.paths).dynamic

    def assert_converged(self) -> None:
        rc, out, err = self.run("plan", "--detailed-exitcode")
        assert rc == 0, (out, err)
        assert "No changes." in out


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Env]:
    e = Env(tmp_path, capsys)
    e.commit("import")
    assert "Nothing to do" in e.apply()  # takes ownership: the inventory lists what was imported
    assert read_inventory(e.paths.config_dir).objects == {
        "domain/example.org", "domain/mail.example.org", "account/admin", "account/alice"}
    yield e


def ops_of(plan: dict[str, Any]) -> list[str]:
    return [c["operation"]["op"] for c in plan["changes"]]


def new_domain(reports: str = "alice", **extra: Any) -> dict[str, Any]:
    return {"ReportsAccount": reports, "DKIM": {"Selectors": {"ed1": {"Algorithm": "ed25519"}}, "Sign": ["ed1"]},
            **extra}


# ---------------------------------------------------------------------------------------------


def test_add_domain_accounts_addresses_aliases(env: Env) -> None:
    env.doc["Domains"]["new.example"] = new_domain(
        Aliases={"team": {"Addresses": ["carol@new.example", "alice@new.example"], "PostPublic": True}})
    env.doc["Accounts"]["carol"] = {"Destinations": {"carol@new.example": {}, "postmaster@new.example": {}}}
    env.doc["Accounts"]["alice"]["Destinations"]["alice@new.example"] = {"Mailbox": "New"}
    env.commit("add new.example, carol, alias team")
    rc, out, _ = env.run("plan", "--detailed-exitcode")
    assert rc == 2
    assert "+ domain/new.example" in out and "+ account/carol" in out
    assert "add alias team@new.example" in out
    out = env.apply()
    assert "Applied" in out and "created DKIM key dkim/ed1._domainkey.new.example." in out
    live = env.live
    d = live.Domains["new.example"]
    assert list(d.DKIM.Selectors) == ["ed1"] and d.DKIM.Sign == ("ed1",)
    assert (env.paths.config_dir / d.DKIM.Selectors["ed1"].PrivateKeyFile).is_file()
    assert tuple(d.Aliases["team"].Addresses) == ("carol@new.example", "alice@new.example")
    assert set(live.Accounts["carol"].Destinations) == {"carol@new.example", "postmaster@new.example"}
    assert live.Accounts["alice"].Destinations["alice@new.example"].Mailbox == "New"
    # DomainAdd's default RSA selectors were dropped before generation: only the Ed25519 key exists
    assert sorted(p.name.split(".")[0] for p in (env.paths.config_dir / "dkim").glob("*new.example*")) == ["ed1"]
    assert {"domain/new.example", "account/carol"} <= read_inventory(env.paths.config_dir).objects
    env.assert_converged()


def test_dkim_rotation_in_three_commits(env: Env) -> None:
    dkim = env.doc["Domains"]["example.org"]["DKIM"]
    old_file = dkim["Selectors"]["2026a"]["PrivateKeyFile"]
    # written as mox's DKIMAdd writes a selector (sha256, 72h0m0s): one operation. With Hash ""
    # or Expiration "72h" the plan adds a DKIMSave after the DKIMAdd to store exactly that.
    dkim["Selectors"]["2027a"] = {"Algorithm": "ed25519", "Hash": "sha256", "Expiration": "72h0m0s"}
    env.commit("dkim: add 2027a")
    assert ops_of(env.plan_json()) == ["DKIMAdd"]
    env.apply()
    assert env.live.Domains["example.org"].DKIM.Sign == ("2026a",)

    dkim["Sign"] = ["2027a"]
    env.commit("dkim: sign with 2027a")
    plan = env.plan_json()
    assert ops_of(plan) == ["DKIMSave"] and plan["changes"][0]["operation"]["sign"] == ["2027a"]
    env.apply()
    assert env.live.Domains["example.org"].DKIM.Sign == ("2027a",)

    del dkim["Selectors"]["2026a"]
    env.commit("dkim: remove 2026a")
    plan = env.plan_json()
    assert ops_of(plan) == ["DKIMRemove"] and plan["changes"][0]["destructive"]
    out = env.apply()
    assert "moved retired DKIM key" in out
    assert "2026a" not in env.live.Domains["example.org"].DKIM.Selectors
    cfg = env.paths.config_dir
    assert not (cfg / old_file).exists()
    assert (cfg / "dkim" / "old" / Path(old_file).name).is_file()
    env.assert_converged()


def test_disable_domain(env: Env) -> None:
    env.doc["Domains"]["example.org"]["Disabled"] = True
    env.commit("disable example.org")
    plan = env.plan_json()
    assert ops_of(plan) == ["DomainSave"] and plan["changes"][0]["operation"]["fields"] == {"Disabled": True}
    env.apply()
    assert env.live.Domains["example.org"].Disabled
    assert "\t\tDisabled: true\n" in env.paths.domains_conf.read_text()
    env.assert_converged()


def test_remove_alias_member(env: Env) -> None:
    env.doc["Accounts"]["admin"]["Destinations"] = {"admin@example.org": {}}
    env.doc["Domains"]["example.org"]["Aliases"] = {
        "team": {"Addresses": ["alice@example.org", "admin@example.org"], "PostPublic": True}}
    env.commit("alias team")
    env.apply()
    env.doc["Domains"]["example.org"]["Aliases"]["team"]["Addresses"] = ["alice@example.org"]
    env.commit("team: drop admin")
    plan = env.plan_json()
    assert ops_of(plan) == ["AliasAddressesRemove"]
    assert plan["changes"][0]["operation"]["members"] == ["admin@example.org"]
    env.apply()
    assert env.live.Domains["example.org"].Aliases["team"].Addresses == ("alice@example.org",)
    assert "admin@example.org" in env.live.Accounts["admin"].Destinations  # the address stays
    env.assert_converged()


def test_prune_managed_domain_with_its_addresses(env: Env) -> None:
    env.doc["Domains"]["gone.example"] = new_domain()
    env.doc["Accounts"]["alice"]["Destinations"]["alice@gone.example"] = {}
    env.doc["Accounts"]["alice"]["Destinations"]["@gone.example"] = {}
    env.commit("add gone.example")
    env.apply()
    assert "domain/gone.example" in read_inventory(env.paths.config_dir).objects

    del env.doc["Domains"]["gone.example"]
    del env.doc["Accounts"]["alice"]["Destinations"]["alice@gone.example"]
    del env.doc["Accounts"]["alice"]["Destinations"]["@gone.example"]
    env.doc["Policy"] = {"Prune": True}
    env.commit("prune gone.example")
    plan = env.plan_json()
    assert ops_of(plan)[-1] == "DomainRemove"
    assert sorted(c["operation"].get("address", "") for c in plan["changes"][:-1]) == [
        "@gone.example", "alice@gone.example"]
    assert plan["summary"]["delete"] == 1 and "domain/gone.example" not in plan["inventory_after"]
    env.apply()
    live = env.live
    assert "gone.example" not in live.Domains
    assert not any(k.endswith("gone.example") for k in live.Accounts["alice"].Destinations)
    assert "domain/gone.example" not in read_inventory(env.paths.config_dir).objects
    env.assert_converged()


def add_unmanaged_domain(env: Env, name: str) -> None:
    """Another admin adds a domain behind the reconciler's back (mox's `nil` domain form)."""
    text = env.paths.domains_conf.read_text()
    env.paths.domains_conf.write_text(text.replace("Domains:\n", f"Domains:\n\t{name}: nil\n", 1))


def test_unmanaged_domain_left_alone(env: Env) -> None:
    add_unmanaged_domain(env, "other.example")
    env.doc["Policy"] = {"Prune": True}
    env.doc["Domains"]["example.org"]["Description"] = "ours"
    env.commit("prune on, describe example.org")
    plan = env.plan_json()
    assert plan["unmanaged"] == ["domain/other.example"]
    assert ops_of(plan) == ["DomainSave"]
    _rc, out, _ = env.run("plan")
    assert "Unmanaged, left alone: domain/other.example" in out
    env.apply()
    assert "other.example" in env.live.Domains
    assert "domain/other.example" not in read_inventory(env.paths.config_dir).objects
    env.assert_converged()


def test_account_removal_needs_explicit_statement(env: Env) -> None:
    env.doc["Accounts"]["dave"] = {"Destinations": {"dave@example.org": {}}}
    env.commit("add dave")
    env.apply()
    data = env.paths.data_dir(read_live(env.paths).static) / "accounts" / "dave"
    data.mkdir(parents=True)
    (data / "index.db").write_bytes(b"mail")  # stands for dave's mail

    del env.doc["Accounts"]["dave"]
    env.doc["Policy"] = {"Prune": True}
    env.commit("dave left")
    plan = env.plan_json()
    assert plan["changes"] == []  # nothing of dave's is touched while the removal is blocked
    assert len(plan["blocked"]) == 1 and "account/dave" in plan["blocked"][0]
    rc, out, _ = env.run("plan")
    assert "! blocked: account/dave left the desired state" in out
    rc, out, err = env.run("apply", "--yes")
    assert rc == 1 and "Removed.Accounts" in err and "account/dave" in err
    assert "dave" in env.live.Accounts and "dave@example.org" in env.live.Accounts["dave"].Destinations

    env.doc["Removed"] = {"Accounts": ["dave"]}
    env.commit("remove dave")
    plan = env.plan_json()
    assert ops_of(plan) == ["AccountRemove"] and plan["blocked"] == [] and plan["changes"][0]["destructive"]
    env.apply()
    assert "dave" not in env.live.Accounts
    assert (data / "index.db").read_bytes() == b"mail"  # mail data is never deleted
    assert "account/dave" not in read_inventory(env.paths.config_dir).objects
    env.assert_converged()


def test_change_above_threshold_needs_force(env: Env) -> None:
    for i in range(10):
        env.doc["Domains"][f"d{i}.example"] = {"ReportsAccount": "alice", "DKIM": None}
    env.commit("ten domains")
    env.apply()  # 4 managed objects before: below MinObjectsForThreshold
    assert len(read_inventory(env.paths.config_dir).objects) == 14

    for i in range(5):
        env.doc["Domains"][f"d{i}.example"]["Description"] = "changed"
    env.commit("change 5 of 14")
    plan = env.plan_json()
    assert plan["safety"] == {"managed": 14, "touched": 5, "max_change_share": 0.3, "min_objects": 10}
    before = env.paths.domains_conf.read_bytes()
    rc, out, err = env.run("apply", "--yes")
    assert rc == 1 and "too much change" in err and "5 of 14" in err and "--force" in err
    assert env.paths.domains_conf.read_bytes() == before
    rc, _, err = env.run("apply", "--yes", "--plan", str(env.repo_dir.parent / "plan.json"))
    assert rc == 1 and "too much change" in err
    out = env.apply("--force")
    assert "Applied 5 operations" in out
    env.assert_converged()

    env.doc["Policy"] = {"MaxChangeShare": 0.5}  # or raise the threshold
    for i in range(5):
        env.doc["Domains"][f"d{i}.example"]["Description"] = "again"
    env.commit("change 5 of 14, threshold 50%")
    assert "Applied 5 operations" in env.apply()


def test_stale_plan_refused_fresh_plan_applies_exactly(env: Env) -> None:
    planfile = env.repo_dir.parent / "f.json"
    env.doc["Domains"]["example.org"]["Description"] = "one"
    env.commit("describe")
    env.ok("plan", "--out", str(planfile))

    # the live config changes (another admin): stale
    add_unmanaged_domain(env, "other.example")
    before = env.paths.domains_conf.read_bytes()
    rc, out, err = env.run("apply", "--yes", "--plan", str(planfile), source=False)
    assert rc == 1 and "stale plan" in err and "domains.conf changed" in err
    assert env.paths.domains_conf.read_bytes() == before

    # the source moves on: stale
    env.ok("plan", "--out", str(planfile))
    env.doc["Domains"]["example.org"]["Description"] = "two"
    env.commit("describe again")
    rc, out, err = env.run("apply", "--yes", "--plan", str(planfile), source=False)
    assert rc == 1 and "stale plan" in err and "source moved" in err

    # fresh: exactly the reviewed operations
    env.doc["Accounts"]["alice"]["Description"] = "Alice"
    env.commit("alice's description")
    env.ok("plan", "--out", str(planfile))
    doc = json.loads(planfile.read_text())
    assert ops_of(doc) == ["DomainSave", "AccountSave"]
    rc, out, err = env.run("apply", "--yes", "--plan", str(planfile), source=False)
    assert rc == 0, err
    assert "Applied 2 operations" in out
    live = env.live
    assert live.Domains["example.org"].Description == "two" and live.Accounts["alice"].Description == "Alice"
    env.assert_converged()
    # applied once: the same file is now stale
    rc, _, err = env.run("apply", "--yes", "--plan", str(planfile), source=False)
    assert rc == 1 and "stale plan" in err


def test_detailed_exitcode(env: Env) -> None:
    assert env.run("plan", "--detailed-exitcode")[0] == 0
    env.doc["Domains"]["example.org"]["Description"] = "x"
    env.commit("change")
    assert env.run("plan", "--detailed-exitcode")[0] == 2
    assert env.run("plan")[0] == 0  # without the flag: 0 either way
    (env.repo_dir / "desired.yaml").write_text("Domains: {example.org: {Bogus: 1}}\n")
    rc, _out, err = env.run("plan", "--detailed-exitcode")
    assert rc == 1 and "desired.yaml:1" in err and "Bogus" in err and "Traceback" not in err


def test_base_ref_shows_change_between_commits(env: Env) -> None:
    env.doc["Domains"]["new.example"] = new_domain()
    env.doc["Accounts"]["alice"]["Destinations"]["alice@new.example"] = {}
    head = env.commit("add new.example")
    rc, out, err = env.run("plan", "--base-ref", "HEAD~1", "--format", "json", "--detailed-exitcode")
    assert rc == 2, err
    doc = json.loads(out)
    assert doc["base_ref"] == "HEAD~1" and doc["source"]["commit"]["sha"] == head
    assert ops_of(doc)[0] == "DomainAdd" and doc["changes"][0]["operation"]["domain"] == "new.example"
    assert {"AddressAdd", "DKIMAdd"} <= set(ops_of(doc))
    assert doc["changed_domains"] == ["new.example"]
    # a --base-ref plan describes a merge, not the server: it cannot be applied
    planfile = env.repo_dir.parent / "base.json"
    planfile.write_text(out)
    rc, _, err = env.run("apply", "--yes", "--plan", str(planfile), source=False)
    assert rc == 1 and "--base-ref" in err


def test_apply_is_idempotent(env: Env) -> None:
    env.doc["Domains"]["example.org"]["Description"] = "x"
    env.commit("change")
    env.apply()
    conf = env.paths.domains_conf
    data, mtime = conf.read_bytes(), os.stat(conf).st_mtime_ns
    out = env.apply()
    assert "Nothing to do" in out and "Inventory updated" not in out
    assert conf.read_bytes() == data and os.stat(conf).st_mtime_ns == mtime


@pytest.mark.parametrize("step", GOLDEN_STEPS, ids=lambda p: p.name)
def test_golden_import_then_plan_is_empty(step: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf = build_step_config(step, tmp_path / "mox")
    desired = tmp_path / "desired"
    assert main(["--config", str(mox_conf), "import", "-o", str(desired)]) == 0
    capsys.readouterr()
    rc = main(["--config", str(mox_conf), "plan", "--detailed-exitcode", str(desired)])
    out, err = capsys.readouterr()
    assert rc == 0, (out, err)
    assert "No changes." in out
    # and the live config parses to what the golden file says (nothing was written)
    assert sconf.write(read_live(locate(str(mox_conf))).dynamic) == (step / "domains.conf").read_text()


def test_apply_plan_file_with_redacted_secret_writes_the_real_one(env: Env) -> None:
    """The plan file redacts webhook credentials; apply --plan must not write "<redacted>"."""
    env.doc["Accounts"]["alice"]["OutgoingWebhook"] = {"URL": "https://hooks.example/x",
                                                       "Authorization": "Basic c2VjcmV0"}
    env.doc["Accounts"]["alice"]["SelfService"] = "enforce"  # the webhook is alice's own setting otherwise
    env.commit("alice webhook")
    planfile = env.repo_dir.parent / "secret.json"
    env.ok("plan", "--out", str(planfile))
    assert "c2VjcmV0" not in planfile.read_text() and "<redacted>" in planfile.read_text()
    rc, _out, err = env.run("apply", "--yes", "--plan", str(planfile), source=False)
    assert rc == 0, err
    hook = env.live.Accounts["alice"].OutgoingWebhook
    assert hook is not None and hook.Authorization == "Basic c2VjcmV0"
    env.assert_converged()
