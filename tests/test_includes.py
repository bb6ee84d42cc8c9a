"""`Include:` and the fleet layout: merging, cycles, files taken twice, paths leaving the root,
each problem as file:line:col through the real CLI; `validate --subdir` / `--all-instances` on
the bundled fleet (examples/fleet); digests and dirtiness that follow includes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import git
import pytest

from reconciler.cli.main import main
from reconciler.desired.includes import desired_files
from reconciler.desired.load import load_desired
from reconciler.desired.source import resolve_source
from reconciler.errors import DesiredStateError
from reconciler.pipeline import desired_digest

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "fleet"

ACCOUNT = "Accounts:\n  ann:\n    Domain: a.example\n    Destinations:\n      ann@a.example: {}\n"
DOMAIN = "Domains:\n  a.example:\n    ReportsAccount: ann\n"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def problems(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    """`validate` of tmp_path/inst (root tmp_path): exit 1, the problem lines relative to tmp_path."""
    assert main(["validate", str(tmp_path), "--subdir", "inst", *args]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert lines[-1].startswith("error: desired state invalid: ")
    return [line.replace(f"{tmp_path}/", "") for line in lines[:-1]]


# ---------------------------------------------------------------------------------------------
# Merging


def test_fleet_example_instances_merge_common() -> None:
    a = load_desired(FLEET / "instances" / "mail-a", FLEET)
    assert set(a.Domains) == {"example.com", "shop-a.example"}
    assert set(a.Accounts) == {"admin", "anna"}
    assert a.MonitorDNSBLs == ["dnsbl.example.org"]
    assert "abuse" in a.Domains["example.com"].Aliases
    # Included files are named as the operator reads them, relative to the including file.
    shown = [f.removeprefix(str(FLEET) + "/") for f in a.files]
    assert shown == ["instances/mail-a/instance.yaml", "common/operator.yaml", "common/policy.yaml"]
    where = a.where("Domains", "example.com")
    assert where is not None and where.file.endswith("common/operator.yaml") and where.line == 6
    b = load_desired(FLEET / "instances" / "mail-b", FLEET)
    assert set(b.Domains) == {"example.com", "bakery.example", "clinic.example"}
    c = load_desired(FLEET / "instances" / "mail-c", FLEET)
    assert set(c.Domains) == {"example.com"} and set(c.Accounts) == {"admin"}


def test_included_files_merge_like_one_directory(tmp_path: Path) -> None:
    """Maps are combined and Removed lists concatenated across includes, as across the files of
    one directory; the same object in both places is `defined twice`, naming both."""
    write(tmp_path, {
        "inst/main.yaml": f"Include: ../common\n{DOMAIN}Removed:\n  Accounts: [old1]\n",
        "common/accounts.yaml": ACCOUNT + "Removed:\n  Accounts: [old2]\n",
    })
    state = load_desired(tmp_path / "inst", tmp_path)
    assert set(state.Accounts) == {"ann"} and set(state.Domains) == {"a.example"}
    assert list(state.Removed.Accounts) == ["old1", "old2"]
    write(tmp_path, {"common/again.yaml": "Domains:\n  a.example:\n    ReportsAccount: ann\n"})
    with pytest.raises(DesiredStateError) as e:
        load_desired(tmp_path / "inst", tmp_path)
    rel = [p.replace(f"{tmp_path}/", "") for p in e.value.problems]
    assert rel == ["common/again.yaml:2:3: Domains.a.example: defined twice: here and at inst/main.yaml:3:3"]


def test_nested_includes_and_a_single_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "inst/main.yaml": "Include: ../shared/top.yaml\n" + DOMAIN,
        "shared/top.yaml": "Include: [deeper]\n",
        "shared/deeper/accounts.yaml": ACCOUNT,
    })
    state = load_desired(tmp_path / "inst" / "main.yaml", tmp_path)
    assert set(state.Accounts) == {"ann"}
    assert [f.replace(f"{tmp_path}/", "") for f in state.files] == [
        "inst/main.yaml", "shared/top.yaml", "shared/deeper/accounts.yaml"]


def test_problems_inside_included_files_point_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {
        "inst/main.yaml": "Include: ../common\n" + DOMAIN,
        "common/accounts.yaml": ACCOUNT.replace("Domain: a.example", "Domain: a.example\n    Bogus: 1"),
    })
    assert problems(tmp_path, capsys) == ["common/accounts.yaml:4:5: Accounts.ann.Bogus: unknown key "
                                          "(not a mox or reconciler field; typo?)"]


# ---------------------------------------------------------------------------------------------
# Problems, each at its Include entry


CASES = [
    ("cycle", {"inst/main.yaml": "Include: ../shared/x.yaml\n" + DOMAIN,
               "shared/x.yaml": "Include: ../inst/main.yaml\n" + ACCOUNT},
     ["shared/x.yaml:1:10: Include: include cycle: inst/main.yaml -> shared/x.yaml -> inst/main.yaml"]),
    ("self", {"inst/main.yaml": "Include: [./main.yaml]\n" + DOMAIN + ACCOUNT},
     ["inst/main.yaml:1:11: Include.0: include cycle: inst/main.yaml -> inst/main.yaml"]),
    ("listed-twice", {"inst/main.yaml": "Include:\n  - ../common\n  - ../common/accounts.yaml\n" + DOMAIN,
                      "common/accounts.yaml": ACCOUNT},
     ["inst/main.yaml:3:5: Include.1: common/accounts.yaml is taken twice (already included at "
      "inst/main.yaml:2:5); include it once"]),
    ("diamond", {"inst/main.yaml": "Include: [../left.yaml, ../right.yaml]\n" + DOMAIN,
                 "left.yaml": "Include: common\n", "right.yaml": "Include: common/accounts.yaml\n",
                 "common/accounts.yaml": ACCOUNT},
     ["right.yaml:1:10: Include: common/accounts.yaml is taken twice (already included at "
      "left.yaml:1:10); include it once"]),
    ("sibling", {"inst/main.yaml": "Include: accounts.yaml\n" + DOMAIN, "inst/accounts.yaml": ACCOUNT},
     ["inst/main.yaml:1:10: Include: inst/accounts.yaml is taken twice (already a file of the "
      "desired-state directory); include it once"]),
    ("escape", {"inst/main.yaml": "Include: ../../outside\n" + DOMAIN + ACCOUNT},
     ["inst/main.yaml:1:10: Include: '../../outside' leads outside the source root TMP (an include may only "
      "name files of the same repository; run with SOURCE at the repository root and --subdir for the instance)"]),
    ("absolute", {"inst/main.yaml": "Include: [/etc/passwd]\n" + DOMAIN + ACCOUNT},
     ["inst/main.yaml:1:11: Include.0: '/etc/passwd': must be a path relative to this file"]),
    ("missing", {"inst/main.yaml": "Include: ../nope\n" + DOMAIN + ACCOUNT},
     ["inst/main.yaml:1:10: Include: '../nope': no such file or directory"]),
    ("empty-dir", {"inst/main.yaml": "Include: ../common\n" + DOMAIN + ACCOUNT, "common/README.md": "x"},
     ["inst/main.yaml:1:10: Include: '../common': no *.yaml files in this directory"]),
    ("not-yaml", {"inst/main.yaml": "Include: ../notes.txt\n" + DOMAIN + ACCOUNT, "notes.txt": "x"},
     ["inst/main.yaml:1:10: Include: '../notes.txt': not a *.yaml or *.yml file"]),
    ("not-a-path", {"inst/main.yaml": "Include: [../c.yaml, 3, '']\n" + DOMAIN + ACCOUNT, "c.yaml": "{}\n"},
     ["inst/main.yaml:1:22: Include.1: expected a path (or a list of paths) relative to this file",
      "inst/main.yaml:1:25: Include.2: expected a path (or a list of paths) relative to this file"]),
    ("not-a-list", {"inst/main.yaml": "Include: {a: b}\n" + DOMAIN + ACCOUNT},
     ["inst/main.yaml:1:10: Include: expected a path (or a list of paths) relative to this file"]),
    ("yaml-error-in-include", {"inst/main.yaml": "Include: ../c.yaml\n" + DOMAIN + ACCOUNT,
                               "c.yaml": "Domains: [\n"},
     ["c.yaml:2:1: YAML syntax error: expected the node content, but found '<stream end>'"]),
]


@pytest.mark.parametrize(("name", "files", "expected"), CASES, ids=[c[0] for c in CASES])
def test_include_problems(name: str, files: dict[str, str], expected: list[str], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, files)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    got = problems(tmp_path, capsys)
    assert got == [e.replace("TMP", str(tmp_path)) for e in expected]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing written


def test_links_are_refused_not_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A link on the way to an included file (leading out of the root or not) and a linked file
    in an included directory are refused, as links in the desired-state directory are."""
    outside = tmp_path / "outside"
    write(outside, {"accounts.yaml": ACCOUNT})
    repo = tmp_path / "repo"
    write(repo, {"inst/main.yaml": "Include: [../common/accounts.yaml, ../shared, ../real]\n" + DOMAIN,
                 "real/x.yaml": "MonitorDNSBLs: []\n", "files/y.yaml": "Routes: []\n"})
    (repo / "common").symlink_to(outside)
    (repo / "shared").symlink_to(repo / "real")
    (repo / "real" / "y.yaml").symlink_to(repo / "files" / "y.yaml")
    assert main(["validate", str(repo), "--subdir", "inst"]) == 1
    lines = [line.replace(f"{repo}/", "") for line in capsys.readouterr().err.splitlines()]
    assert lines[:-1] == [
        "inst/main.yaml:1:11: Include.0: '../common/accounts.yaml' goes through the symbolic link common; the "
        "desired state must be plain files inside the source: replace the link with the files themselves",
        "inst/main.yaml:1:36: Include.1: '../shared' goes through the symbolic link shared; the desired state "
        "must be plain files inside the source: replace the link with the files themselves",
        "real/y.yaml:1:1: is a symbolic link; the desired state must be plain files inside the source, "
        "so it is not read: replace the link with the file itself",
    ]


# ---------------------------------------------------------------------------------------------
# validate


def test_validate_all_instances_of_the_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FLEET), "--all-instances"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[:-1]] == ["instances/mail-a", "instances/mail-b", "instances/mail-c"]
    assert "desired state OK: 3 domains" in out[1] and out[-1] == "all 3 instances OK"


def test_validate_all_instances_reports_each_broken_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET, fleet)
    (fleet / "common" / "policy.yaml").write_text("Policy:\n  Prune: maybe\n")
    (fleet / "instances" / "mail-b" / "clinic.example.yaml").write_text("Domains:\n  clinic.example: {Bogus: 1}\n")
    assert main(["validate", str(fleet), "--all-instances"]) == 1
    out, err = capsys.readouterr()
    prune = "common/policy.yaml:2:10: Policy.Prune: Input should be a valid boolean, unable to interpret input"
    # Every instance is checked on its own, so the shared file's problem shows under each.
    assert err.replace(f"{fleet}/", "").splitlines() == [
        prune, "error: instances/mail-a: desired state invalid: 1 problem",
        prune, "instances/mail-b/clinic.example.yaml:2:20: Domains.clinic.example.Bogus: unknown key "
        "(not a mox or reconciler field; typo?)", "error: instances/mail-b: desired state invalid: 2 problems",
        prune, "error: instances/mail-c: desired state invalid: 1 problem",
        "error: 3 of 3 instances invalid: mail-a, mail-b, mail-c"]
    assert out == ""
    (fleet / "common" / "policy.yaml").write_text("Policy:\n  Prune: false\n")
    assert main(["validate", str(fleet), "--all-instances"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == "error: 1 of 3 instances invalid: mail-b"
    assert out.splitlines()[0].startswith("instances/mail-a: desired state OK")


def test_validate_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FLEET), "--subdir", "instances/mail-b"]) == 0
    assert "3 domains" in capsys.readouterr().out
    assert main(["validate", str(FLEET), "--subdir", "../x"]) == 1
    assert "error: --subdir '../x': must be a relative path inside the repository" in capsys.readouterr().err
    assert main(["validate", str(tmp_path), "--all-instances"]) == 1
    assert f"error: {tmp_path}/instances: no such directory" in capsys.readouterr().err
    assert main(["validate", str(FLEET), "--all-instances", "--subdir", "instances/mail-a"]) == 1
    assert "exclude each other" in capsys.readouterr().err
    # An instance directory given directly outside any git repository: its root is itself.
    copy = tmp_path / "copy"
    shutil.copytree(FLEET, copy)
    assert main(["validate", str(copy / "instances" / "mail-a")]) == 1
    assert "leads outside the source root" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Digests and dirtiness follow includes


def test_digest_covers_included_files(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET, fleet)
    inst = fleet / "instances" / "mail-a"
    files = desired_files(inst, fleet)
    assert {p.name for p in files} == {"instance.yaml", "operator.yaml", "policy.yaml"}
    before = desired_digest(inst, fleet)
    (fleet / "instances" / "mail-b" / "clinic.example.yaml").write_text("# other instance\n")
    assert desired_digest(inst, fleet) == before  # another instance's files are not part of it
    (fleet / "common" / "policy.yaml").write_text((fleet / "common" / "policy.yaml").read_text() + "# x\n")
    assert desired_digest(inst, fleet) != before


@pytest.mark.usefixtures("isolated_git")
def test_uncommitted_change_in_an_included_file_makes_the_instance_dirty(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET, fleet)
    repo = git.Repo.init(fleet, initial_branch="main")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "fleet")
    src = resolve_source(str(fleet), subdir="instances/mail-a")
    assert not src.dirty and src.root == fleet.resolve() and src.subdir == "instances/mail-a"
    (fleet / "instances" / "mail-b" / "clinic.example.yaml").write_text("# other instance\n")
    assert not resolve_source(str(fleet), subdir="instances/mail-a").dirty
    (fleet / "common" / "operator.yaml").write_text("# changed\n" + (fleet / "common" / "operator.yaml").read_text())
    assert resolve_source(str(fleet), subdir="instances/mail-a").dirty
    subprocess.run(["git", "-C", str(fleet), "checkout", "-q", "--", "common"], check=True)
    (fleet / "common" / "new.yaml").write_text("MonitorDNSBLs: []\n")  # untracked, included by the directory
    assert resolve_source(str(fleet), subdir="instances/mail-a").dirty
    repo.close()
