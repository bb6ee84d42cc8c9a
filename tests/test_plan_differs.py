"""Everything that differs is on the plan: objects kept with Prune off, blocked removals,
warnings, the threshold hint; `--detailed-exitcode` says 2 whenever the live config differs, and
"No changes" appears only when nothing does. Two scenarios are recorded byte for byte in
tests/fixtures/plan/ (text and Markdown), made from a git checkout with uncommitted edits:

* plan-kept: Policy.Prune off: old -> new values (one of them drift: a description changed in
  mox by hand), an owned account the YAML dropped (kept), more change than the threshold allows;
* plan-blocked: Policy.Prune on: the same account is now a blocked removal, a Removed entry
  that names nothing and signing with a selector this apply creates are warnings.

Refresh after an intended change with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest
tests/test_plan_differs.py` and review the diff.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest

from reconciler import pipeline
from reconciler.cli.main import main
from reconciler.mox import sconf
from reconciler.mox.config import Account, Destination, Dynamic
from reconciler.plan.inventory import Inventory, write_inventory

from .conftest import GOLDEN_STEPS, build_step_config
from .test_planrender import check_expected

NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
ACTOR = git.Actor("Test", "test@example.org")
COMMITTED = "1796115600 +0000"  # 2026-12-01T09:00:00Z: the commit id is the same everywhere

DESIRED = """\
Policy: {Prune: PRUNE, MinObjectsForThreshold: 2}
Domains:
  example.org:
    ReportsAccount: alice
    Description: Example
    DKIM:
      Selectors:
        2026a: {Expiration: 72h}
        2026b: {Expiration: 72h}SELECTOR
      Sign: [SIGN]
Accounts:
  alice:
    Destinations: {alice@example.org: {}}
  shop:
    Description: Shop Team
    Destinations:
      shop@example.org: {}
      sales@example.org: {Mailbox: Sales}
REMOVED"""


def desired_text(*, prune: bool) -> str:
    text = DESIRED.replace("PRUNE", "true" if prune else "false")
    if prune:  # a typo under Removed, and signing with a selector made by this apply
        return (text.replace("SELECTOR", "\n        2026c: {Algorithm: ed25519}").replace("SIGN", "2026c")
                .replace("REMOVED", "Removed:\n  Domains: [nosuch.example]\n"))
    return text.replace("SELECTOR", "").replace("SIGN", "2026a").replace("REMOVED", "")


@dataclasses.dataclass
class Scenario:
    tmp: Path
    mox_conf: Path
    repo: Path

    @property
    def domains_conf(self) -> Path:
        return self.mox_conf.parent / "domains.conf"

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(["--config", str(self.mox_conf), *argv])
        out, err = capsys.readouterr()
        return rc, out.replace(str(self.tmp), "<tmp>"), err.replace(str(self.tmp), "<tmp>")


def make_scenario(tmp: Path, monkeypatch: pytest.MonkeyPatch, *, prune: bool) -> Scenario:
    """Golden step 01 plus the accounts olduser (owned, about to leave the YAML) and shop (its
    full name changed in mox by hand), all owned; a checkout whose last commit is not all."""
    monkeypatch.setattr(pipeline, "now_local", lambda: NOW)
    mox_conf = build_step_config(GOLDEN_STEPS[1], tmp / "mox")
    domains_conf = mox_conf.parent / "domains.conf"
    live = sconf.parse(domains_conf.read_text(), Dynamic)
    alice = live.Accounts["alice"]
    shop = dataclasses.replace(alice, Description="Shop (renamed by hand)",
                               Destinations={"shop@example.org": Destination()})
    live = dataclasses.replace(live, Accounts={**live.Accounts, "olduser": Account(Domain="example.org"), "shop": shop})
    domains_conf.write_text(sconf.write(live))
    write_inventory(mox_conf.parent, Inventory.of(["domain/example.org", "account/alice", "account/olduser",
                                                    "account/shop"]))
    repo_dir = tmp / "repo"
    repo = git.Repo.init(repo_dir)
    text = desired_text(prune=prune)
    (repo_dir / "desired.yaml").write_text(text.replace("Shop Team", "Shop"))
    repo.index.add(["desired.yaml"])
    repo.index.commit("shop and alice", author=ACTOR, committer=ACTOR, author_date=COMMITTED, commit_date=COMMITTED)
    (repo_dir / "desired.yaml").write_text(text)  # the edit not committed yet
    return Scenario(tmp, mox_conf, repo_dir)


@pytest.mark.parametrize("prune", [False, True], ids=["kept", "blocked"])
@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_recorded_renderings(prune: bool, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    sc = make_scenario(tmp_path, monkeypatch, prune=prune)
    rc, out, err = sc.cli(capsys, "plan", "--format", fmt, "--color", "never", "--detailed-exitcode", str(sc.repo))
    assert rc == 2, err
    name = f"plan-{'blocked' if prune else 'kept'}.{'md' if fmt == 'markdown' else 'txt'}"
    check_expected(name, out)
    head = out.split("\n\n", 2)[:2]
    assert "+ uncommitted changes (shop and alice)" in "".join(head)  # the dirty header
    assert "No changes" not in out


def test_kept_in_every_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    sc = make_scenario(tmp_path, monkeypatch, prune=False)
    _, text, _ = sc.cli(capsys, "plan", "--color", "never", str(sc.repo))
    assert "= account/olduser  kept (Prune off; list under Removed.Accounts to remove)" in text.splitlines()
    assert '        Description: "Shop (renamed by hand)" → "Shop Team"' in text.splitlines()
    assert "! apply needs --force: too much change: the plan changes or removes 2 of 4 managed objects" in text
    _, md, _ = sc.cli(capsys, "plan", "--format", "markdown", str(sc.repo))
    assert "#### Kept\n\n- <code>account/olduser</code> kept (Prune off; list under Removed.Accounts to remove)" in md
    assert "> :warning: **apply needs --force**: too much change:" in md
    _, js, _ = sc.cli(capsys, "plan", "--format", "json", str(sc.repo))
    doc = json.loads(js)
    assert doc["kept"] == ["account/olduser"] and doc["blocked"] == [] and doc["warnings"] == []
    assert doc["needs_force"].startswith("too much change: the plan changes or removes 2 of 4")
    assert doc["summary"]["text"].endswith("; 1 kept (Prune off).")
    assert "account/olduser" in doc["inventory_after"]  # still owned
    # over the threshold, plan itself succeeds (exit 0); apply refuses without --force
    assert sc.cli(capsys, "plan", str(sc.repo))[0] == 0
    before = sc.domains_conf.read_bytes()
    rc, _, err = sc.cli(capsys, "apply", "--yes", str(sc.repo))
    assert rc == 1 and "too much change" in err and sc.domains_conf.read_bytes() == before


def test_only_kept_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """A plan whose only difference is a kept account is not "No changes", exits 2 with
    --detailed-exitcode, and apply has nothing to do (exit 0)."""
    sc = make_scenario(tmp_path, monkeypatch, prune=False)
    # the desired state the live config already has, except that olduser left it
    live = sconf.parse(sc.domains_conf.read_text(), Dynamic)
    shop = dataclasses.replace(live.Accounts["shop"], Description="Shop Team",
                               Destinations={"shop@example.org": Destination(),
                                             "sales@example.org": Destination(Mailbox="Sales")})
    org = dataclasses.replace(live.Domains["example.org"], Description="Example")
    sc.domains_conf.write_text(sconf.write(dataclasses.replace(
        live, Accounts={**live.Accounts, "shop": shop}, Domains={**live.Domains, "example.org": org})))
    rc, out, _ = sc.cli(capsys, "plan", "--color", "never", "--detailed-exitcode", str(sc.repo))
    assert rc == 2
    assert out.endswith("= account/olduser  kept (Prune off; list under Removed.Accounts to remove)\n"
                        "Unmanaged, left alone: domain/mail.example.org, account/admin\n"
                        "Nothing to apply, but the live config differs from the desired state: 1 kept (Prune off).\n")
    _, md, _ = sc.cli(capsys, "plan", "--format", "markdown", str(sc.repo))
    assert "No changes" not in md and "#### Operations" not in md and "#### Kept" in md
    rc, out, _ = sc.cli(capsys, "apply", "--yes", str(sc.repo))
    assert rc == 0 and "Nothing to apply; the kept and blocked objects above stay as they are." in out
    # listing it under Removed removes it; then nothing differs
    (sc.repo / "desired.yaml").write_text(desired_text(prune=False) + "Removed: {Accounts: [olduser]}\n")
    assert sc.cli(capsys, "apply", "--yes", "--reports-dir", str(tmp_path / "r"), str(sc.repo))[0] == 0
    rc, out, _ = sc.cli(capsys, "plan", "--color", "never", "--detailed-exitcode", str(sc.repo))
    assert rc == 0 and out.endswith("No changes. The live config matches the desired state.\n")


def test_only_blocked_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """Prune on and nothing else to do: the plan says so, exit 2; apply refuses with the remedy
    (not "apply the rest"), and with --force has nothing to do."""
    sc = make_scenario(tmp_path, monkeypatch, prune=True)
    text = desired_text(prune=False).replace("Prune: false", "Prune: true")
    (sc.repo / "desired.yaml").write_text(text)
    assert sc.cli(capsys, "apply", "--yes", "--force", "--reports-dir", str(tmp_path / "r"), str(sc.repo))[0] == 0
    rc, out, _ = sc.cli(capsys, "plan", "--color", "never", "--detailed-exitcode", str(sc.repo))
    assert rc == 2
    assert "! blocked: account/olduser left the desired state" in out and "No changes" not in out
    assert out.endswith("Nothing to apply, but the live config differs from the desired state: "
                        "1 blocked (removal not stated).\n")
    before = sc.domains_conf.read_bytes()
    rc, out, err = sc.cli(capsys, "apply", "--yes", str(sc.repo))
    assert rc == 1 and "rest" not in err
    assert err.startswith("error: the plan implies removals that are not stated; there is nothing else to apply: "
                          "list them under Removed.Accounts to remove them, or set Policy.Prune off to keep them:")
    assert sc.domains_conf.read_bytes() == before
    rc, out, _ = sc.cli(capsys, "apply", "--yes", "--force", str(sc.repo))
    assert rc == 0 and "Nothing to apply" in out and sc.domains_conf.read_bytes() == before


def test_warnings_and_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    sc = make_scenario(tmp_path, monkeypatch, prune=True)
    rc, out, _ = sc.cli(capsys, "plan", "--color", "never", str(sc.repo))
    assert rc == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: <tmp>/repo/desired.yaml:11:14: Domains.example.org.DKIM.Sign.0: signs with selector 2026c, which "
        "this apply creates: its DNS record cannot be published before the key exists, and receivers cannot verify "
        "the signatures until it is. Publish first, then sign: apply with 2026c under Selectors but not in Sign, "
        "publish its record (`records --domain example.org`), then add it to Sign",
        "warning: <tmp>/repo/desired.yaml:21:13: Removed.Domains.0: nosuch.example is not a domain of the live "
        "config, so nothing is removed (already removed, or a typo?)",
    ]
    before = sc.domains_conf.read_bytes()
    rc, out, err = sc.cli(capsys, "plan", "--strict", str(sc.repo))
    assert rc == 1 and err.startswith("error: the plan has 2 warnings and --strict makes them errors:\n  <tmp>/repo/")
    assert "warning: " in out  # the plan was shown first
    rc, _, err = sc.cli(capsys, "apply", "--yes", "--force", "--strict", str(sc.repo))
    assert rc == 1 and "--strict" in err and sc.domains_conf.read_bytes() == before
    # a near miss gets a suggestion
    (sc.repo / "desired.yaml").write_text(desired_text(prune=False) + "Removed: {Domains: [Example.ORG], "
                                          "Accounts: [oldusr]}\n")
    doc = json.loads(sc.cli(capsys, "plan", "--format", "json", str(sc.repo))[1])
    assert [w.split(": ", 2)[2] for w in doc["warnings"]] == [
        "Example.ORG is not a domain of the live config, so nothing is removed (did you mean example.org?)",
        "oldusr is not an account of the live config, so nothing is removed (did you mean olduser?)",
    ]
