"""Plan documents and their renderings: every field of docs/plan-format.md on a real plan, and
`plan --format markdown` / text byte for byte against recorded files in tests/fixtures/plan/.

The recorded scenario is deterministic: golden step 01, a plain directory (no git commit), the
clock fixed (key file names, MTA-STS policy IDs), keys still to be generated shown as
placeholders, and the temporary path replaced by `<tmp>`. After an intended change of the
output, refresh the files with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_planrender.py

and review the diff.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import git
import pytest

from reconciler import pipeline
from reconciler.cli.main import main
from reconciler.mox import sconf
from reconciler.mox.config import Account, Dynamic
from reconciler.mox.live import locate, read_live
from reconciler.plan.document import PlanDocument, checksum_of
from reconciler.plan.render import render_markdown, render_text

from .conftest import GOLDEN_STEPS, build_step_config

EXPECTED = Path(__file__).parent / "fixtures" / "plan"
NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
ACTOR = git.Actor("Test", "test@example.org")

DESIRED = """\
Domains:
  example.org:                       # as DomainAdd made it, plus a description and an alias
    ReportsAccount: alice
    Description: 'Example | main'
    DKIM:
      Selectors:
        2026a: {Expiration: 72h, PrivateKeyFile: dkim/2026a._domainkey.example.org.20261125T162841.rsa2048.privatekey.pkcs8.pem}
        2026b: {Expiration: 72h, PrivateKeyFile: dkim/2026b._domainkey.example.org.20261125T162841.rsa2048.privatekey.pkcs8.pem}
      Sign: [2026a]
    MTASTS: {PolicyID: 20261125T162841, Mode: enforce, MaxAge: 24h0m0s, MX: [mail.example.org]}
    Aliases:
      team: {Addresses: [alice@example.org, carol@example.net], PostPublic: true}
  example.net:                       # new: DomainAdd's defaults (two RSA keys, generated at apply)
    ReportsAccount: carol
Accounts:
  alice:
    Destinations: {alice@example.org: {}}
  carol:
    FullName: Carol
    Destinations: {carol@example.net: {}, postmaster@example.net: {}}
Removed:
  Accounts: [olduser]
"""


def scenario_config(tmp: Path) -> Path:
    """Golden step 01 plus an account `olduser` for the plan to remove (mox needs the others)."""
    mox_conf = build_step_config(GOLDEN_STEPS[1], tmp / "mox")
    domains_conf = mox_conf.parent / "domains.conf"
    live = sconf.parse(domains_conf.read_text(), Dynamic)
    live = dataclasses.replace(live, Accounts={**live.Accounts, "olduser": Account(Domain="example.org")})
    domains_conf.write_text(sconf.write(live))
    return mox_conf


def fixed_scenario(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setattr(pipeline, "now_local", lambda: NOW)
    mox_conf = scenario_config(tmp)
    desired = tmp / "desired"
    desired.mkdir()
    (desired / "desired.yaml").write_text(DESIRED)
    return mox_conf, desired


def check_expected(name: str, text: str) -> None:
    path = EXPECTED / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (UPDATE_GOLDEN=1 to refresh, then review the diff)"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(("fmt", "name"), [("markdown", "plan.md"), ("text", "plan.txt")])
def test_rendering_matches_recorded(fmt: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf, desired = fixed_scenario(tmp_path, monkeypatch)
    rc, out, err = cli(capsys, "--config", str(mox_conf), "plan", "--format", fmt, "--color", "never",
                       "--detailed-exitcode", str(desired))
    assert rc == 2, err
    check_expected(name, out.replace(str(tmp_path), "<tmp>"))


def test_drift_shows_old_and_new_values_in_every_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Someone changed alice's full name and a webhook secret in mox, and the desired state
    enforces them (Policy.SelfService): the plan says what it overwrites (old -> new) in text,
    Markdown and JSON, and never prints the secret."""
    mox_conf, desired = fixed_scenario(tmp_path, monkeypatch)
    (desired / "desired.yaml").write_text(DESIRED.replace("  alice:\n", "  alice:\n    SelfService: enforce\n"))
    domains_conf = mox_conf.parent / "domains.conf"
    live = sconf.parse(domains_conf.read_text(), Dynamic)
    from reconciler.mox.config import OutgoingWebhook

    alice = dataclasses.replace(live.Accounts["alice"], FullName="Alice (set by hand)",
                                OutgoingWebhook=OutgoingWebhook(URL="https://hooks.example/a", Authorization="s3cret"))
    domains_conf.write_text(sconf.write(dataclasses.replace(live, Accounts={**live.Accounts, "alice": alice})))
    want = ['FullName: "Alice (set by hand)" → ""', "OutgoingWebhook: "]
    _, text, _ = cli(capsys, "--config", str(mox_conf), "plan", "--color", "never", str(desired))
    _, md, _ = cli(capsys, "--config", str(mox_conf), "plan", "--format", "markdown", str(desired))
    _, js, _ = cli(capsys, "--config", str(mox_conf), "plan", "--format", "json", str(desired))
    assert "        " + want[0] in text.splitlines()
    assert '<code>FullName: "Alice (set by hand)" → ""</code>' in md
    for out in (text, md, js):
        assert "s3cret" not in out and "<redacted>" in out.replace("&lt;", "<").replace("&gt;", ">")
    save = next(c for c in json.loads(js)["changes"] if c["object"] == "account/alice")
    assert save["values"][0] == {"path": ["OutgoingWebhook"], "kind": "change", "object": None, "new": None,
                                 "old": {"URL": "https://hooks.example/a", "Authorization": "<redacted>",
                                         "Events": []}}
    assert save["values"][1] == {"path": ["FullName"], "kind": "change", "old": "Alice (set by hand)", "new": "",
                                 "object": None}


def test_markdown_is_a_github_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf, desired = fixed_scenario(tmp_path, monkeypatch)
    _, out, _ = cli(capsys, "--config", str(mox_conf), "plan", "--format", "markdown", str(desired))
    lines = out.splitlines()
    start = lines.index("| | object | operation |")
    assert lines[start + 1] == "|---|---|---|"
    rows = []
    for line in lines[start + 2:]:
        if not line:
            break
        rows.append(line)
    doc = json.loads(cli(capsys, "--config", str(mox_conf), "plan", "--format", "json", str(desired))[1])
    assert len(rows) == len(doc["changes"])
    for row in rows:
        # exactly 3 cells: unescaped pipes only as separators (the description has an escaped one)
        cells = re.split(r"(?<!\\)\|", row)
        assert len(cells) == 5 and cells[0] == "" and cells[-1] == "", row
    piped = PlanDocument.model_validate({**doc, "changes": [{**doc["changes"][0], "description": "a | b"}]})
    assert "| a \\| b |" in render_markdown(piped)
    assert "**(destructive)**" in out  # the account removal
    assert "<details><summary>example.net (" in out and "generated at apply" in out  # placeholders
    assert "<details><summary>Unmanaged objects (left alone)</summary>\n\n- <code>domain/mail.example.org</code>" in out


def test_no_changes_renderings(tmp_path: Path) -> None:
    paths = locate(str(build_step_config(GOLDEN_STEPS[1], tmp_path / "mox")))
    live = read_live(paths)
    doc = PlanDocument.model_validate({
        "version": 1, "source": None, "live": {"path": "domains.conf", "sha256": live.digest},
        "summary": {"create": 0, "update": 0, "delete": 0, "objects": 0,
                    "text": "No changes. The live config matches the desired state."},
        "changes": [], "unmanaged": ["domain/x.example"], "blocked": [],
        "desired_digest": None, "inventory_after": [], "changed_domains": [], "checksum": checksum_of([]),
        "safety": {"managed": 0, "touched": 0, "max_change_share": 0.3, "min_objects": 10},
    })
    md = render_markdown(doc)
    assert "**No changes.**" in md and "| | object |" not in md and "- <code>domain/x.example</code>" in md
    txt = render_text(doc)
    assert txt.endswith("Unmanaged, left alone: domain/x.example\nNo changes. The live config matches the desired state.\n")
    blocked = doc.model_copy(update={"blocked": ["b"]})
    assert "\x1b[" not in txt and "\x1b[" not in render_text(blocked)
    assert "\x1b[31;1m! blocked: b" in render_text(blocked, color=True)


# -- every documented field on a real plan ------------------------------------------------------


@pytest.fixture
def real_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], Path, git.Repo]:
    """A plan from a git repository over golden step 01 with creates, updates and deletes."""
    mox_conf = scenario_config(tmp_path)
    repo = git.Repo.init(tmp_path / "repo")
    (tmp_path / "repo" / "desired.yaml").write_text(DESIRED)
    repo.index.add(["desired.yaml"])
    repo.index.commit("the fixed scenario", author=ACTOR, committer=ACTOR)
    out = tmp_path / "plan.json"
    rc, _, err = cli(capsys, "--config", str(mox_conf), "plan", "--out", str(out), str(tmp_path / "repo"))
    assert rc == 0, err
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc, mox_conf, repo


DOCUMENTED_TOP = {"version": int, "created": str, "source": dict, "desired_digest": str, "live": dict, "summary": dict,
                  "changes": list, "unmanaged": list, "blocked": list, "kept": list, "warnings": list,
                  "needs_force": type(None), "inventory_after": list,
                  "safety": dict, "changed_domains": list, "kept_self_service": list, "checksum": str}


def documented_fields(section: str) -> list[str]:
    """Field names from the first column of a table under `## <section>` in docs/plan-format.md."""
    text = (Path(__file__).parent.parent / "docs" / "plan-format.md").read_text()
    part = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(r"^\| `([a-z0-9_.]+)` \|", part, re.M)


def test_documented_fields_are_the_fields(real_plan: tuple[dict[str, Any], Path, git.Repo]) -> None:
    doc, _, _ = real_plan
    # base_ref, domains and dkim_rotation only in some plans (test_rotation_report checks dkim_rotation's fields)
    assert (set(documented_fields("Top level")) - {"base_ref", "domains", "dkim_rotation"} == set(doc)
            == set(DOCUMENTED_TOP))
    for name, tp in DOCUMENTED_TOP.items():
        assert isinstance(doc[name], tp), name
    assert {f for f in documented_fields("`source`") if "." not in f} == set(doc["source"])
    assert {f.split(".")[1] for f in documented_fields("`source`") if "." in f} == set(doc["source"]["commit"])
    assert set(documented_fields("`live`")) == set(doc["live"])
    assert set(documented_fields("`summary`")) == set(doc["summary"])
    assert set(documented_fields("`safety`")) == set(doc["safety"])
    for c in doc["changes"]:
        assert set(c) == set(documented_fields("Change (`changes[]`)"))


def test_version_source_live(real_plan: tuple[dict[str, Any], Path, git.Repo], tmp_path: Path) -> None:
    doc, mox_conf, repo = real_plan
    assert doc["version"] == 2
    created = datetime.fromisoformat(doc["created"])
    assert created.tzinfo is not None and abs((datetime.now(UTC) - created).total_seconds()) < 600
    src = doc["source"]
    assert src["location"] == str(tmp_path / "repo") and src["ref"] is None and src["subdir"] == ""
    assert src["commit"]["sha"] == repo.head.commit.hexsha
    assert src["commit"]["subject"] == "the fixed scenario"
    assert src["commit"]["author"] == "Test <test@example.org>"
    assert datetime.fromisoformat(src["commit"]["date"]).tzinfo is not None
    assert src["commit"]["signed"] is None and src["dirty"] is False and src["remote"] is False
    domains_conf = locate(str(mox_conf)).domains_conf
    assert doc["live"] == {"path": str(domains_conf),
                           "sha256": hashlib.sha256(domains_conf.read_bytes()).hexdigest()}
    desired = tmp_path / "repo" / "desired.yaml"
    h = hashlib.sha256(b"desired.yaml\0" + desired.read_bytes() + b"\0").hexdigest()
    assert doc["desired_digest"] == h


def test_summary_and_changes(real_plan: tuple[dict[str, Any], Path, git.Repo]) -> None:
    doc, _, _ = real_plan
    changes = doc["changes"]
    s = doc["summary"]
    for action in ("create", "update", "delete"):
        assert s[action] == sum(c["action"] == action for c in changes)
    assert s["create"] + s["update"] + s["delete"] == len(changes)
    objects = {c["object"] for c in changes} | {o for c in changes for o in c["creates"]}
    assert s["objects"] == len(objects)
    assert s["text"] == f"Plan: 2 to add, 1 to change, 1 to remove ({len(changes)} operations)."
    ops = [c["operation"]["op"] for c in changes]
    assert ops[0] == "DomainAdd" and ops[-1] == "AccountRemove"
    first = changes[0]
    assert first["object"] == "domain/example.net" and first["action"] == "create"
    assert first["creates"] == ["account/carol"] and first["operation"]["localpart"] == "carol"
    assert all(c["operation"]["version"] == 1 for c in changes)
    last = changes[-1]
    assert (last["object"], last["action"], last["destructive"]) == ("account/olduser", "delete", True)
    assert last["description"] == "remove account olduser from the config (its mail data directory is kept)"
    # example.net keeps DomainAdd's default selectors (DKIM omitted): nothing else is destructive
    assert not any(c["destructive"] for c in changes[:-1])
    saves = [c for c in changes if c["operation"]["op"] == "DomainSave"]
    assert saves[0]["operation"]["fields"] == {"Description": "Example | main"}


def test_unmanaged_blocked_inventory_safety(real_plan: tuple[dict[str, Any], Path, git.Repo]) -> None:
    doc, _, _ = real_plan
    # mail.example.org is in the live config, not named and not in the (absent) inventory
    assert doc["unmanaged"] == ["domain/mail.example.org", "account/admin"]
    assert doc["blocked"] == []
    assert doc["inventory_after"] == ["account/alice", "account/carol", "domain/example.net", "domain/example.org"]
    # owned and live before: example.org, alice, admin (Removed is a statement of ownership)
    assert doc["safety"] == {"managed": 2, "touched": 1, "max_change_share": 0.3, "min_objects": 10}
    assert doc["changed_domains"] == ["example.net", "example.org"]


def test_checksum_is_over_the_operations(real_plan: tuple[dict[str, Any], Path, git.Repo],
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc, mox_conf, repo = real_plan
    blob = json.dumps([c["operation"] for c in doc["changes"]], sort_keys=True, ensure_ascii=False)
    assert doc["checksum"] == hashlib.sha256(blob.encode()).hexdigest()
    # same operations, another commit: same checksum
    (tmp_path / "repo" / "README").write_text("x")
    repo.index.add(["README"])
    repo.index.commit("readme", author=ACTOR, committer=ACTOR)
    again = json.loads(cli(capsys, "--config", str(mox_conf), "plan", "--format", "json",
                           str(tmp_path / "repo"))[1])
    assert again["checksum"] == doc["checksum"] and again["source"]["commit"]["sha"] != doc["source"]["commit"]["sha"]
    # one operation different: another checksum
    (tmp_path / "repo" / "desired.yaml").write_text(DESIRED.replace("FullName: Carol", "FullName: Caro"))
    other = json.loads(cli(capsys, "--config", str(mox_conf), "plan", "--format", "json",
                           str(tmp_path / "repo"))[1])
    assert other["checksum"] != doc["checksum"] and other["source"]["dirty"] is True


def test_every_operation_is_documented_with_its_arguments() -> None:
    from reconciler.mox.admin import OPERATIONS

    text = (Path(__file__).parent.parent / "docs" / "plan-format.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Za-z]+)` \| (.*?) \|", text, re.M))
    for cls in OPERATIONS:
        assert cls.__name__ in rows, cls.__name__
        documented = set(re.findall(r"`([a-z_]+)`", rows[cls.__name__]))
        assert {f.name for f in dataclasses.fields(cls)} <= documented, cls.__name__  # type: ignore[arg-type]
