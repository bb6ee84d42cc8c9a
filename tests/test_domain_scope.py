"""`--domain D` (repeatable) for plan and apply, as octoDNS's --zone: only operations on those
domains and on the addresses and aliases in them; the rest stays as it is, for a later run.

The live config is golden step 09 (café.example, example.net, example.org, mail.example.org);
the desired state its `import` with changes in two domains, in an account's own field and in
mox's global settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli.main import main
from reconciler.desired.importer import import_live
from reconciler.mox.live import locate, read_live

from .golden import build_step_config, golden_step


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    mox_conf = build_step_config(golden_step("09"), tmp_path / "server")
    live = read_live(locate(str(mox_conf)))
    doc: dict[str, Any] = import_live(live.static, live.dynamic)
    doc["Domains"]["example.org"]["Description"] = "Example"
    doc["Domains"]["example.org"]["Aliases"]["team"]["Addresses"].remove("bob@example.org")
    doc["Domains"]["café.example"]["Description"] = "Café"
    bob = doc["Accounts"]["bob"]
    bob["Description"] = "Bob"  # the account's own field: no domain's
    bob["Destinations"]["bobby@example.org"] = {}
    bob["Destinations"]["robert@café.example"] = {}
    doc["Accounts"]["carol"] = {"Domain": "example.org", "Destinations": {"carol@café.example": {}}}
    doc["MonitorDNSBLs"] = ["dnsbl.example"]  # global: no domain's
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "d.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return mox_conf, desired


def plan_json(capsys: pytest.CaptureFixture[str], mox_conf: Path, desired: Path, *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["--config", str(mox_conf), "plan", "--format", "json", *extra, str(desired)]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def described(plan: dict[str, Any]) -> list[str]:
    return [c["description"] for c in plan["changes"]]


def test_plan_for_one_domain(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf, desired = setup
    everything = described(plan_json(capsys, mox_conf, desired))
    assert any("café.example" in d for d in everything) and any("change account bob" in d for d in everything)
    assert any("MonitorDNSBLs" in d for d in everything)

    plan = plan_json(capsys, mox_conf, desired, "--domain", "Example.ORG")
    assert plan["domains"] == ["example.org"]
    assert {c["object"] for c in plan["changes"]} == {"domain/example.org", "account/bob"}
    steps = described(plan)
    assert any("bobby@example.org" in d for d in steps)
    assert any("Description" in d for d in steps)
    assert any("team@example.org" in d for d in steps)
    for out_of_scope in ("café", "robert", "carol", "change account bob", "MonitorDNSBLs"):
        assert not any(out_of_scope in d for d in steps), (out_of_scope, steps)

    two = plan_json(capsys, mox_conf, desired, "--domain", "example.org", "--domain", "café.example")
    assert two["domains"] == ["café.example", "example.org"]
    assert any("robert@café.example" in d for d in described(two))
    assert any(c["object"] == "account/carol" and c["action"] == "create" for c in two["changes"])
    assert not any("change account bob" in d or "MonitorDNSBLs" in d for d in described(two))

    capsys.readouterr()
    assert main(["--config", str(mox_conf), "plan", "--domain", "example.org", str(desired)]) == 0
    assert "  scope:  domains example.org only (--domain)\n" in capsys.readouterr().out


def test_apply_one_domain_then_the_rest(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf, desired = setup
    domains_conf = mox_conf.parent / "domains.conf"
    assert main(["--config", str(mox_conf), "apply", "--yes", "--force", "--domain", "example.org",
                 str(desired)]) == 0
    text = domains_conf.read_text()
    assert "bobby@example.org" in text and "robert@" not in text and "carol" not in text
    assert "Description: Bob" not in text and "dnsbl.example" not in text
    # the same scope again: nothing left to do there
    assert plan_json(capsys, mox_conf, desired, "--domain", "example.org")["changes"] == []
    # the rest, without --domain
    rest = described(plan_json(capsys, mox_conf, desired))
    assert rest and not any("bobby" in d or "team@example.org" in d for d in rest)
    assert any("café.example" in d for d in rest) and any("change account bob" in d for d in rest)


@pytest.mark.parametrize(("domain", "message"), [
    ("nosuch.example", "--domain nosuch.example: not a domain of the desired state or the live config"),
    ("exampel.org", "(did you mean example.org?)"),
    ("exa mple.org", "--domain exa mple.org: "),
])
def test_unknown_domain_is_an_error(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                    domain: str, message: str) -> None:
    mox_conf, desired = setup
    before = (mox_conf.parent / "domains.conf").read_bytes()
    for verb in (["plan"], ["apply", "--yes"]):
        capsys.readouterr()
        assert main(["--config", str(mox_conf), *verb, "--domain", domain, str(desired)]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("error: ") and message in err, err
    assert (mox_conf.parent / "domains.conf").read_bytes() == before


def test_domain_with_a_plan_file_is_refused(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    mox_conf, desired = setup
    plan_file = tmp_path / "plan.json"
    assert main(["--config", str(mox_conf), "plan", "--domain", "example.org", "--out", str(plan_file),
                 str(desired)]) == 0
    assert json.loads(plan_file.read_text())["domains"] == ["example.org"]
    capsys.readouterr()
    assert main(["--config", str(mox_conf), "apply", "--yes", "--plan", str(plan_file), "--domain",
                 "example.org"]) == 1
    assert "--domain cannot be combined with --plan" in capsys.readouterr().err
    # the plan file replays exactly its scoped operations
    assert main(["--config", str(mox_conf), "apply", "--yes", "--force", "--plan", str(plan_file)]) == 0
    assert "robert@" not in (mox_conf.parent / "domains.conf").read_text()
