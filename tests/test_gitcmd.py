"""Running git without GitPython (`reconciler.desired.gitcmd`): output, failures, options, the
streamed process and the timeout, as the source resolution relies on them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.desired.gitcmd import Git, GitFailed


@pytest.fixture
def repo(tmp_path: Path, isolated_git: None) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], check=True)
    return tmp_path / "r"


def test_output_is_text_without_the_last_newline(repo: Path) -> None:
    git = Git(repo)
    assert git.execute(["git", "rev-parse", "--show-toplevel"]) == str(repo.resolve())
    (repo / "f.yaml").write_text("x: 1\n\n")
    subprocess.run(["git", "add", "f.yaml"], cwd=repo, check=True)
    assert git.execute(["git", "show", ":f.yaml"]) == "x: 1\n"  # one newline taken, as GitPython does


def test_a_failure_carries_gits_status_and_message(repo: Path) -> None:
    git = Git(repo)
    with pytest.raises(GitFailed) as e:
        git.execute(["git", "rev-parse", "--verify", "no-such-ref"])
    assert e.value.status == 128 and "fatal:" in e.value.stderr and not e.value.stderr.endswith("\n")
    status, out, err = git.execute(["git", "rev-parse", "--verify", "--quiet", "HEAD"], with_exceptions=False,
                                   with_extended_output=True)
    assert (status, out, err) == (1, "", "")


def test_config_goes_before_every_command_and_messages_are_in_english(repo: Path) -> None:
    git = Git(repo, ["-c", "core.abbrev=9"])
    assert git.execute(["git", "config", "core.abbrev"]) == "9"
    assert git.execute(["git", "var", "GIT_EDITOR"], env={"GIT_EDITOR": "ed"}) == "ed"
    env = git._env(None)
    assert env["LC_ALL"] == "C" and env["LANGUAGE"] == "C"


def test_a_streamed_process_reports_its_failure_at_the_end(repo: Path) -> None:
    git = Git(repo)
    proc = git.execute(["git", "archive", "--format=tar", "no-such-commit"], as_process=True)
    assert proc.stdout.read() == b""
    with pytest.raises(GitFailed) as e:
        proc.wait()
    assert "no-such-commit" in e.value.stderr


def test_a_command_past_its_timeout_is_killed(repo: Path) -> None:
    git = Git(repo, ["-c", "alias.wait=!sleep 5"])
    with pytest.raises(GitFailed) as e:
        git.execute(["git", "wait"], kill_after_timeout=0.2)
    assert e.value.status == -9 and "did not complete in 0.2 secs" in e.value.stderr


def test_no_git_is_an_os_error(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo))
    with pytest.raises(OSError):
        Git(repo).execute(["git", "version"])
