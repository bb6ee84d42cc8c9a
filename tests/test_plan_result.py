"""The plan's result is validated as mox would, before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli.main import main

DESIRED = """\
Accounts:
  alice:
    Destinations: {alice@example.org: {}}
Domains:
  example.org:
    ReportsAccount: alice
Removed:
  Accounts: [admin]
"""


def test_plan_refuses_a_result_mox_would_reject(golden_config: Callable[[str], Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Removing the postmaster account passes every primitive's preconditions, but mox's
    validation rejects the result: the plan says so, and apply writes nothing."""
    mox_conf = golden_config("01")
    domains = mox_conf.parent / "domains.conf"
    before = domains.read_bytes()
    (tmp_path / "d.yaml").write_text(DESIRED)
    assert main(["--config", str(mox_conf), "plan", str(tmp_path / "d.yaml")]) == 1
    err = capsys.readouterr().err
    assert "the plan's result would be rejected by mox" in err
    assert 'postmaster account "admin" does not exist' in err
    assert main(["--config", str(mox_conf), "apply", "--yes", "--force", str(tmp_path / "d.yaml")]) == 1
    assert domains.read_bytes() == before


def test_new_keys_count_as_present_when_validating_the_plan(golden_config: Callable[[str], Path],
                                                            tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A new domain's selectors name key files that apply creates: the plan validates anyway."""
    mox_conf = golden_config("01")
    (tmp_path / "d.yaml").write_text(DESIRED.replace("Removed:\n  Accounts: [admin]\n", "")
                                     + "  example.com:\n    ReportsAccount: alice\n"
                                     "    DKIM:\n      Selectors:\n        e1: {Algorithm: ed25519}\n"
                                     "      Sign: [e1]\n")
    text = (tmp_path / "d.yaml").read_text().replace(
        "alice@example.org: {}", "alice@example.org: {}, postmaster@example.com: {}")
    (tmp_path / "d.yaml").write_text(text)
    assert main(["--config", str(mox_conf), "plan", "--detailed-exitcode", str(tmp_path / "d.yaml")]) == 2, \
        capsys.readouterr().err


def test_apply_leaves_a_report_naming_the_commit(golden_config: Callable[[str], Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The apply artifact: the commit applied, the operations, the config hash after, the DNS reports."""
    import hashlib
    import json

    import git

    mox_conf = golden_config("01")
    repo = git.Repo.init(tmp_path / "repo")
    actor = git.Actor("Test", "test@example.org")
    (tmp_path / "repo" / "d.yaml").write_text(DESIRED.replace("Removed:\n  Accounts: [admin]\n", "").replace(
        "ReportsAccount: alice\n", "ReportsAccount: alice\n    Description: main\n"))
    repo.index.add(["d.yaml"])
    sha = repo.index.commit("describe example.org", author=actor, committer=actor).hexsha
    reports = tmp_path / "reports"
    assert main(["--config", str(mox_conf), "apply", "--yes", "--reports-dir", str(reports),
                 str(tmp_path / "repo")]) == 0, capsys.readouterr().err
    report = json.loads((reports / "last-apply.json").read_text())
    assert report["source"]["commit"]["sha"] == sha
    assert report["source"]["commit"]["subject"] == "describe example.org"
    assert report["operations"] == ["change domain example.org: Description"]
    domains_conf = (mox_conf.parent / "domains.conf").read_bytes()
    assert report["live"]["sha256_after"] == hashlib.sha256(domains_conf).hexdigest()
    assert report["changed_domains"] == ["example.org"]
    assert "example.org.txt" in report["dns_reports"]
    assert (reports / "example.org.txt").read_text().startswith("; Time To Live of 5 minutes")


def test_reports_of_domains_no_longer_hosted_are_removed(golden_config: Callable[[str], Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Reports follow the config: a removed domain's reports go, and its records are listed to delete."""
    import json

    mox_conf = golden_config("01")
    reports = tmp_path / "reports"
    base = DESIRED.replace("Removed:\n  Accounts: [admin]\n", "")
    two = (base + "  example.com:\n    ReportsAccount: alice\n    DKIM:\n      Selectors:\n"
           "        e1: {Algorithm: ed25519}\n      Sign: [e1]\n")
    (tmp_path / "d.yaml").write_text(two)
    argv = ["--config", str(mox_conf), "apply", "--yes", "--reports-dir", str(reports), str(tmp_path / "d.yaml")]
    assert main(argv) == 0, capsys.readouterr().err
    assert {p.name for p in reports.iterdir()} >= {"example.com.txt", "example.com.zone", "example.com.json"}
    (reports / "notes.json").write_text('{"mine": true}\n')  # not a report of ours: stays
    capsys.readouterr()

    (tmp_path / "d.yaml").write_text(base + "Policy:\n  Prune: true\n")
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "DNS records to delete: example.com is no longer hosted (its reports were removed):" in out
    assert "  example.com. 300 IN MX 10 " in out
    assert "  e1._domainkey.example.com. 300 IN TXT " in out
    names = {p.name for p in reports.iterdir()}
    assert not {n for n in names if n.startswith("example.com.")} and "notes.json" in names
    report = json.loads((reports / "last-apply.json").read_text())
    assert any(line.startswith("example.com. 300 IN MX") for line in report["dns_records_to_delete"]["example.com"])
    # Nothing left to remove: the next apply lists nothing.
    assert main(argv) == 0
    assert "records to delete" not in capsys.readouterr().out
