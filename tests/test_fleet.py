"""A fleet repository (examples/fleet: common/ + three instances) in CI and beside each mox:
the GitHub workflow's own Validate and Plan steps run by bash on a real merge commit, `plan
--all-instances` in every format, and one instance planned and applied with --subdir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from reconciler.cli.main import main

pytestmark = pytest.mark.usefixtures("isolated_git")

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "fleet"
WORKFLOW = ROOT / "deploy" / "ci" / "github-actions-fleet.yaml"


class Fleet:
    """A git repository holding examples/fleet, with pull requests merged as GitHub checks them out."""

    def __init__(self, root: Path) -> None:
        shutil.copytree(FLEET, root)
        self.root = root
        self.repo = git.Repo.init(root, initial_branch="main")
        self.commit("fleet")

    def commit(self, message: str) -> None:
        self.repo.git.add("-A")
        self.repo.git.commit("-q", "-m", message)

    def edit(self, name: str, text: str | None) -> None:
        path = self.root / name
        if text is None:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def pull_request(self, files: dict[str, str | None], branch: str = "pr") -> None:
        """Commit `files` on a branch, then check out the merge of it into main (HEAD^1 = main)."""
        self.repo.git.checkout("-q", "-b", branch, "main")
        for name, text in files.items():
            self.edit(name, text)
        self.commit(f"change on {branch}")
        self.repo.git.checkout("-q", "main")
        self.repo.git.checkout("-q", "--detach")
        self.repo.git.merge("-q", "--no-ff", "-m", f"Merge {branch}", branch)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(tmp_path / "fleet")
    with f.repo:
        yield f


def workflow_step(name: str) -> str:
    (wf,) = [d for d in yaml.safe_load_all(WORKFLOW.read_text()) if d]
    (step,) = [s for s in wf["jobs"]["plan"]["steps"] if s.get("name") == name]
    return str(step["run"])


def run_step(fleet: Fleet, name: str, summary: Path) -> subprocess.CompletedProcess[str]:
    """A run step as GitHub runs it (`bash -e -o pipefail`), with this checkout's mox-reconciler first on PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GITHUB_STEP_SUMMARY": str(summary)}
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", workflow_step(name)], cwd=fleet.root, env=env,
                          capture_output=True, text=True, timeout=300)


def sections(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("### ")]


def test_ci_job_plans_every_instance_one_section_per_changed_one(fleet: Fleet, tmp_path: Path) -> None:
    """The three-instance repository planned in one CI job: mail-a and mail-b change, mail-c
    does not and gets no section."""
    fleet.pull_request({
        "instances/mail-a/instance.yaml": (FLEET / "instances/mail-a/instance.yaml").read_text().replace(
            "      orders@shop-a.example: {}\n", "      orders@shop-a.example: {}\n      info@shop-a.example: {}\n"),
        "instances/mail-b/clinic.example.yaml": "Removed:\n  Domains: [clinic.example]\n  Accounts: [cleo]\n",
    })
    summary = tmp_path / "summary.md"
    validate = run_step(fleet, "Validate", summary)
    assert validate.returncode == 0, validate.stderr
    assert validate.stdout.splitlines()[-1] == "all 3 instances OK"
    plan = run_step(fleet, "Plan", summary)
    assert plan.returncode == 0, plan.stderr
    md = (fleet.root / "plan.md").read_text()
    assert summary.read_text() == md
    assert md.startswith("## mox-reconciler plan: 3 instances, compared with HEAD^1\n")
    assert "**Changes on 2 of 3: mail-a, mail-b; unchanged: mail-c.**" in md
    assert sections(md) == ["### Instance `mail-a` (`instances/mail-a`)", "### Instance `mail-b` (`instances/mail-b`)"]
    a, b = md.split("### Instance `mail-b`")
    assert "add address info@shop-a.example to account anna" in a and "clinic" not in a
    assert "remove domain clinic.example" in b and "shop-a" not in b
    assert "Plan: 0 to add, 1 to change, 0 to remove (1 operation)." in a


def test_a_change_in_common_shows_under_every_instance(fleet: Fleet, tmp_path: Path) -> None:
    policy = (FLEET / "common/policy.yaml").read_text()
    fleet.pull_request({"common/policy.yaml": policy.replace("  - dnsbl.example.org\n",
                                                             "  - dnsbl.example.org\n  - bl.example.net\n")})
    plan = run_step(fleet, "Plan", tmp_path / "summary.md")
    assert plan.returncode == 0, plan.stderr
    md = (fleet.root / "plan.md").read_text()
    assert [s.split("`")[1] for s in sections(md)] == ["mail-a", "mail-b", "mail-c"]
    assert md.count("change global config: MonitorDNSBLs") == 3


def test_a_broken_instance_fails_the_validate_step(fleet: Fleet, tmp_path: Path) -> None:
    fleet.pull_request({"instances/mail-c/instance.yaml": "Include: ../../common\nInclude2: x\n"})
    out = run_step(fleet, "Validate", tmp_path / "summary.md")
    assert out.returncode == 1
    assert "instances/mail-c/instance.yaml:2:1: Include2: unknown key" in out.stderr
    assert out.stderr.splitlines()[-1] == "error: 1 of 3 instances invalid: mail-c"


def test_plan_all_instances_formats_and_options(fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    fleet.pull_request({"instances/mail-d/instance.yaml": "Include: ../../common\n",
                        "instances/mail-c": None})
    src = str(fleet.root)
    assert main(["plan", src, "--all-instances", "--base-ref", "HEAD^1", "--format", "json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert data["version"] == 1 and data["base_ref"] == "HEAD^1"
    by_name = {i["name"]: i for i in data["instances"]}
    assert list(by_name) == ["mail-a", "mail-b", "mail-c", "mail-d"]
    assert not by_name["mail-a"]["changed"] and by_name["mail-a"]["plan"]["changes"] == []
    assert by_name["mail-c"]["removed"] and by_name["mail-c"]["plan"] is None
    d = by_name["mail-d"]
    assert d["added"] and d["changed"] and d["plan"]["source"]["subdir"] == "instances/mail-d"
    assert {c["object"] for c in d["plan"]["changes"]} >= {"domain/example.com", "config"}

    assert main(["plan", src, "--all-instances", "--base-ref", "HEAD^1", "--detailed-exitcode"]) == 2
    text = capsys.readouterr().out
    assert "=== instance mail-c (removed) ===" in text and "=== instance mail-d (instances/mail-d, new) ===" in text
    assert "=== instance mail-a" not in text
    assert main(["plan", src, "--all-instances", "--base-ref", "HEAD", "--detailed-exitcode"]) == 0
    assert "No changes on any of the 3 instances." in capsys.readouterr().out

    assert main(["plan", src, "--all-instances"]) == 1
    assert "pass --base-ref" in capsys.readouterr().err
    assert main(["plan", src, "--all-instances", "--base-ref", "HEAD^1", "--out", str(fleet.root / "p.json")]) == 1
    assert "cannot be combined with --out" in capsys.readouterr().err
    assert main(["plan", src, "--all-instances", "elsewhere", "--base-ref", "HEAD^1"]) == 1
    assert "no instance directories" in capsys.readouterr().err


def test_one_instance_planned_saved_and_applied_with_subdir(fleet: Fleet, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Beside its mox, an instance's reconciler reads SOURCE --subdir instances/<name>, shared
    files included; a saved plan is applied (its source re-read at the same subdir)."""
    shutil.copytree(ROOT / "examples" / "mox", tmp_path / "mox")
    conf = str(tmp_path / "mox" / "config" / "mox.conf")
    planfile = str(tmp_path / "plan.json")
    argv = ["--config", conf, "plan", str(fleet.root), "--subdir", "instances/mail-a", "--out", planfile]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"source: {fleet.root} (subdir instances/mail-a)" in out
    assert "add alias abuse@example.com" in out  # from common/
    assert main(["--config", conf, "apply", "--plan", planfile, "--yes"]) == 0, capsys.readouterr().err
    domains = (tmp_path / "mox" / "config" / "domains.conf").read_text()
    assert "shop-a.example" in domains and "abuse" in domains and "bakery" not in domains


def test_fleet_doc_commands_parse() -> None:
    """Every `mox-reconciler ...` line in docs/fleet.md's shell blocks is one the CLI accepts."""
    import re

    from .test_deploy import parse_cli, shell_invocations

    text = (ROOT / "docs" / "fleet.md").read_text()
    found = []
    for m in re.finditer(r"```(?:sh|shell|console|bash)\n(.*?)```", text, re.S):
        for argv in shell_invocations(m.group(1).replace("\\\n", " "), loose=True):
            found.append(parse_cli(argv, "docs/fleet.md"))
    assert {a.command for a in found} == {"watch", "validate", "plan"}
    assert any(getattr(a, "all_instances", None) for a in found)
    assert any(getattr(a, "notify", None) for a in found) and any(getattr(a, "receiver_addr", None) for a in found)
