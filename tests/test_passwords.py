"""Account passwords from secret references, without a running mox: when the plan sets one, what
it shows, what the reconciler remembers (a keyed digest, never the password), and what an apply
does when mox is not there to take it (config applied, password pending, exit 1).

The real mox (IMAP logins with the passwords set) is in test_passwords_mox.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.desired.load import load_desired
from reconciler.desired.secrets import SecretRef, read_secrets
from reconciler.errors import LiveConfigError
from reconciler.mox.live import locate, read_live
from reconciler.plan.document import read_plan_file
from reconciler.plan.passwords import PASSWORDS_FILE, PasswordBook, PasswordStatus, SetPassword, read_password_book
from reconciler.plan.planner import PlanInput, make_plan
from reconciler.plan.render import render_markdown, render_text
from tests.test_secrets import STEP00_DOMAIN

PASSWORD = "test-only pass phrase 4vK9"  # never to be seen in any output
OTHER = "test-only other phrase 8mQ3"


def desired(tmp_path: Path, accounts: dict[str, str]) -> Path:
    """Golden step 00's domain plus accounts: name -> the YAML of its Password ("" for none)."""
    d = tmp_path / "desired"
    d.mkdir(parents=True, exist_ok=True)
    (d / "domains.yaml").write_text(STEP00_DOMAIN)
    text = "Accounts:\n"
    for name, password in accounts.items():
        text += f"  {name}:\n    Destinations:\n      {name}@mail.example.org: {{}}\n"
        if password:
            text += f"    Password: {password}\n"
    (d / "accounts.yaml").write_text(text)
    return d


def secret_file(tmp_path: Path, name: str, content: str) -> Path:
    f = tmp_path / "secrets" / name
    f.parent.mkdir(exist_ok=True)
    f.write_text(content + "\n")
    return f


def plan_for(d: Path, moxconf: Path, statuses: dict[str, PasswordStatus] | None = None):  # type: ignore[no-untyped-def]
    state = load_desired(d)
    read_secrets(state)
    live = read_live(locate(str(moxconf)))
    return make_plan(PlanInput(state, live.static, live.dynamic, passwords=statuses or {}))


# --- planning


def test_a_new_account_gets_its_password_set_and_the_plan_shows_only_the_reference(
        tmp_path: Path, golden_config: Callable[[str], Path]) -> None:
    f = secret_file(tmp_path, "alice", PASSWORD)
    plan = plan_for(desired(tmp_path, {"alice": f"{{File: {f}}}"}), golden_config("00"))
    assert [s.description() for s in plan.steps] == [
        "add account alice with address alice@mail.example.org",
        f"set password of account alice (from file {f})",
    ]
    step = plan.steps[-1]
    assert step.op.to_json() == {"version": 1, "op": "SetPassword", "account": "alice",
                                 "password": {"File": str(f)}, "changed": False}
    assert step.object == "account/alice" and not step.destructive


@pytest.mark.parametrize(("status", "want"), [
    (PasswordStatus.UNKNOWN, "set password of account admin (from environment variable ADMIN_PW)"),
    (PasswordStatus.CHANGED, "set password of account admin (from environment variable ADMIN_PW) (changed)"),
    (PasswordStatus.SAME, None),
])
def test_an_existing_account_by_what_the_reconciler_knows(
        tmp_path: Path, golden_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        status: PasswordStatus, want: str | None) -> None:
    monkeypatch.setenv("ADMIN_PW", PASSWORD)
    d = desired(tmp_path, {})
    (d / "admin.yaml").write_text("Accounts:\n  admin:\n    Domain: mail.example.org\n    Destinations: {}\n"
                                  "    SubjectPass: {Period: 0s}\n    RejectsMailbox: ''\n"
                                  "    AutomaticJunkFlags: {Enabled: false}\n    JunkFilter: null\n"
                                  "    NoCustomPassword: false\n    Password: {Env: ADMIN_PW}\n")
    (d / "accounts.yaml").unlink()
    plan = plan_for(d, golden_config("00"), {"admin": status})
    assert [s.description() for s in plan.steps] == ([want] if want else [])
    assert plan.summary() == ("Plan: 0 to add, 1 to change, 0 to remove (1 operation)." if want else
                              "No changes. The live config matches the desired state.")


def test_no_password_in_the_desired_state_leaves_the_password_alone(
        tmp_path: Path, golden_config: Callable[[str], Path]) -> None:
    plan = plan_for(desired(tmp_path, {"alice": ""}), golden_config("00"))
    assert not any(isinstance(s.op, SetPassword) for s in plan.steps)


def test_every_plan_format_shows_the_reference_never_the_password(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("00")
    f = secret_file(tmp_path, "alice", PASSWORD)
    d = desired(tmp_path, {"alice": f"{{File: {f}}}"})
    out = tmp_path / "plan.json"
    for fmt in ("text", "markdown", "json"):
        assert main(["--config", str(moxconf), "plan", str(d), "--format", fmt, "--out", str(out)]) == 0
        shown = capsys.readouterr().out
        assert f"set password of account alice (from file {f})" in shown
        assert PASSWORD not in shown + out.read_text()
    doc = read_plan_file(out)
    assert render_text(doc).count("set password") == 1 and PASSWORD not in render_markdown(doc)
    op = doc.operations[-1]
    assert isinstance(op, SetPassword) and op.password == SecretRef(File=str(f)) and not op.password.is_read


# --- the book: a keyed digest per account


def test_the_book_keeps_keyed_digests_not_passwords() -> None:
    book = PasswordBook(os.urandom(32)).recorded({"alice": PASSWORD, "bob": PASSWORD}, {"alice", "bob"})
    text = json.dumps(book.to_json())
    assert PASSWORD not in text
    assert book.digests["alice"] != book.digests["bob"]  # the same password does not show as the same
    assert book.status("alice", PASSWORD) is PasswordStatus.SAME
    assert book.status("alice", OTHER) is PasswordStatus.CHANGED
    assert book.status("carol", PASSWORD) is PasswordStatus.UNKNOWN
    other_key = PasswordBook(os.urandom(32), book.digests)
    assert other_key.status("alice", PASSWORD) is PasswordStatus.CHANGED  # a digest is worthless without its key
    assert set(book.recorded({}, {"bob"}).digests) == {"bob"}  # accounts that are gone are forgotten


def test_a_damaged_book_is_one_error_that_says_deleting_it_is_safe(tmp_path: Path) -> None:
    (tmp_path / PASSWORDS_FILE).write_text('{"version": 1, "key": "short", "accounts": {}}')
    with pytest.raises(LiveConfigError, match=r"passwords\.json: .*delete it to have every password set once more"):
        read_password_book(tmp_path)
    (tmp_path / PASSWORDS_FILE).write_text("{")
    with pytest.raises(LiveConfigError, match=r"passwords\.json: cannot read"):
        read_password_book(tmp_path)
    assert read_password_book(tmp_path / "nothing-here") == PasswordBook()


# --- applying without a running mox


def test_without_mox_the_config_is_applied_and_the_password_is_pending(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("00")
    f = secret_file(tmp_path, "alice", PASSWORD)
    d = desired(tmp_path, {"alice": f"{{File: {f}}}"})
    assert main(["--config", str(moxconf), "apply", str(d), "--yes"]) == 1
    out, err = capsys.readouterr()
    assert "Applied 1 operation in one write of" in out
    ctl = moxconf.parent.parent / "data" / "ctl"
    assert err == (f"error: password of account alice not set: mox's control socket {ctl} does not exist: mox is "
                   "not running (start it with `mox serve`), or mox.conf's DataDir is not this mox's data directory; "
                   "the config is applied; the next run (or the watcher's retry) sets the password\n")
    assert "alice" in read_live(locate(str(moxconf))).dynamic.Accounts
    assert not (moxconf.parent / PASSWORDS_FILE).exists()  # nothing recorded: the next run sets it
    report = json.loads((moxconf.parent / "mox-reconciler.records" / "last-apply.json").read_text())
    assert report["passwords"] == [{"account": "alice", "from": f"file {f}", "result": "pending",
                                    "reason": err.split("not set: ", 1)[1].rstrip("\n")}]
    # The next plan still has the password to set, and only that.
    assert main(["--config", str(moxconf), "plan", str(d), "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert f"~ set password of account alice (from file {f})" in out
    assert "Plan: 0 to add, 1 to change, 0 to remove (1 operation)." in out
    assert main(["--config", str(moxconf), "apply", str(d), "--yes"]) == 1
    out, err = capsys.readouterr()
    assert "The live config matches the desired state.\n" in out and "not set" in err
    assert PASSWORD not in out + err


def test_a_plan_file_reads_the_password_at_apply_before_writing_anything(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("00")
    f = secret_file(tmp_path, "alice", PASSWORD)
    d = desired(tmp_path, {"alice": f"{{File: {f}}}"})
    plan = tmp_path / "plan.json"
    assert main(["--config", str(moxconf), "plan", str(d), "--out", str(plan)]) == 0
    f.unlink()
    before = (moxconf.parent / "domains.conf").read_bytes()
    assert main(["--config", str(moxconf), "apply", "--plan", str(plan), "--yes"]) == 1
    err = capsys.readouterr().err
    assert err.endswith(f"error: password of account alice: secret file {f}: does not exist\n")
    assert (moxconf.parent / "domains.conf").read_bytes() == before
    f.write_text("short\n")
    assert main(["--config", str(moxconf), "apply", "--plan", str(plan), "--yes"]) == 1
    assert capsys.readouterr().err.endswith(
        f"error: password of account alice: the password from file {f} would be refused by mox: password must be "
        "at least 8 characters long (mox counts bytes)\n")
    assert (moxconf.parent / "domains.conf").read_bytes() == before


def test_a_password_mox_would_refuse_stops_the_plan_at_its_line(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_PW", "seven77")
    d = desired(tmp_path, {"alice": "{Env: ALICE_PW}"})
    assert main(["--config", str(golden_config("00")), "plan", str(d)]) == 1
    assert capsys.readouterr().err == (
        f"error: {d / 'accounts.yaml'}:5:16: Accounts.alice.Password: the password from environment variable "
        "ALICE_PW would be refused by mox: password must be at least 8 characters long (mox counts bytes)\n")


def test_a_pull_request_plan_sees_a_changed_reference_without_reading_secrets(
        tmp_path: Path, isolated_git: None, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    d = desired(repo, {"alice": "{File: /run/secrets/alice}", "bob": "{File: /run/secrets/bob}"})
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "base"], check=True)
    desired(repo, {"alice": "{File: /run/secrets/alice-2}", "bob": "{File: /run/secrets/bob}",
                   "carol": "{Env: CAROL_PW}"})
    assert main(["plan", str(d), "--base-ref", "main"]) == 0
    out = capsys.readouterr().out
    assert "set password of account alice (from file /run/secrets/alice-2)" in out
    assert "set password of account carol (from environment variable CAROL_PW)" in out
    assert "account bob" not in out


def test_the_watcher_reports_a_pending_password_and_retries(
        tmp_path: Path, golden_config: Callable[[str], Path]) -> None:
    from reconciler.desired.source import resolve_source
    from reconciler.loop.run import Reason, Result, Trigger
    from reconciler.loop.status import StatusBook
    from reconciler.loop.watch import WatchOptions, reconcile_once

    moxconf = golden_config("00")
    f = secret_file(tmp_path, "alice", PASSWORD)
    d = desired(tmp_path, {"alice": f"{{File: {f}}}"})
    status = tmp_path / "status.json"
    opts = WatchOptions(locate(str(moxconf)), lambda: resolve_source(str(d)))
    for _ in range(2):  # the second run: the config is there, the password still waits for mox
        run = reconcile_once(opts, StatusBook(status), Trigger.ONCE)
        assert (run.result, run.reason) == (Result.FAILED, Reason.PASSWORD_PENDING)
        assert run.message.startswith("password of account alice not set: mox's control socket ")
    doc = json.loads(status.read_text())
    conditions = {c["type"]: (c["status"], c["reason"]) for c in doc["conditions"]}
    assert conditions == {"Ready": ("False", "PasswordPending"), "Reconciling": ("True", "ProgressingWithRetry"),
                          "Stalled": ("False", "PasswordPending")}
    assert PASSWORD not in status.read_text()


def test_removing_an_account_forgets_its_digest(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """An account made again under the same name must get its password set again."""
    from reconciler.apply.passwords import write_password_book

    moxconf = golden_config("00")
    paths = locate(str(moxconf))
    d = desired(tmp_path, {"alice": "", "bob": ""})
    assert main(["--config", str(moxconf), "apply", str(d), "--yes"]) == 0
    write_password_book(paths, PasswordBook(), {"alice": PASSWORD, "bob": OTHER}, {"alice", "bob"})
    book = moxconf.parent / PASSWORDS_FILE
    assert oct(book.stat().st_mode & 0o777) == "0o600"
    assert set(read_password_book(moxconf.parent).digests) == {"alice", "bob"}
    d = desired(tmp_path, {"alice": ""})
    (d / "removed.yaml").write_text("Removed:\n  Accounts: [bob]\n")
    assert main(["--config", str(moxconf), "apply", str(d), "--yes"]) == 0
    after = read_password_book(moxconf.parent)
    assert set(after.digests) == {"alice"} and after.status("alice", PASSWORD) is PasswordStatus.SAME
    capsys.readouterr()


@pytest.mark.parametrize(("reference", "problem"), [
    ("{File: MISSING}", "secret file MISSING: does not exist"),
    ("{File: DIR}", "secret file DIR: is a directory, not a file"),
    ("{File: EMPTY}", "secret from file EMPTY: empty"),
    ("{Env: UNSET_PASSWORD}", "secret from environment variable UNSET_PASSWORD: the variable is not set"),
    ("{File: secrets/alice}", "File: must be an absolute path (starting with /), not 'secrets/alice'"),
])
def test_a_bad_password_reference_is_one_error_and_nothing_is_written(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, reference: str, problem: str) -> None:
    monkeypatch.delenv("UNSET_PASSWORD", raising=False)
    names = {"MISSING": tmp_path / "missing", "DIR": tmp_path, "EMPTY": secret_file(tmp_path, "empty", "")}
    for name, path in names.items():
        reference, problem = reference.replace(name, str(path)), problem.replace(name, str(path))
    moxconf = golden_config("00")
    before = {p: p.read_bytes() for p in moxconf.parent.rglob("*") if p.is_file()}
    d = desired(tmp_path, {"alice": reference})
    assert main(["--config", str(moxconf), "apply", str(d), "--yes"]) == 1
    err = capsys.readouterr().err
    col = 15 if "absolute" in problem else 16  # the reference's `{`, or its File/Env key
    assert err == f"error: {d / 'accounts.yaml'}:5:{col}: Accounts.alice.Password: {problem}\n"
    assert {p: p.read_bytes() for p in moxconf.parent.rglob("*") if p.is_file()} == before


def test_a_plan_against_a_snapshot_shows_only_the_passwords_of_new_accounts(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI job plans against `snapshot` without secrets and without the digests."""
    moxconf = golden_config("00")
    f = secret_file(tmp_path, "alice", PASSWORD)
    monkeypatch.setenv("BOB_PASSWORD", OTHER)
    accounts = {"alice": f"{{File: {f}}}", "bob": "{Env: BOB_PASSWORD}"}
    assert main(["--config", str(moxconf), "apply", str(desired(tmp_path, accounts)), "--yes"]) == 1  # pending
    snap = tmp_path / "snapshot"
    assert main(["--config", str(moxconf), "snapshot", str(snap)]) == 0
    f.unlink()
    monkeypatch.delenv("BOB_PASSWORD")  # the CI job has neither
    d = desired(tmp_path, {**accounts, "carol": "{File: /run/secrets/carol}"})
    capsys.readouterr()
    assert main(["--config", str(snap / "mox.conf"), "plan", str(d)]) == 0
    out = capsys.readouterr().out
    assert "set password of account carol (from file /run/secrets/carol)" in out
    assert "password of account alice" not in out and "password of account bob" not in out
