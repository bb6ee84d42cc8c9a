"""Accounts people can log in to, against a real `mox serve` on loopback: the password from a
secret reference is set through the control socket (IMAP login over TLS with it works, with a
wrong one it does not), set again when the secret changes (the new one works, the old one no
longer), set by the next run when mox was not running, and never shown or written anywhere.

The module shares one served mox (golden step 00); each test names its own accounts. mox allows
10 failed logins a minute per IP: these tests make 4 on the shared instance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.desired.source import resolve_source
from reconciler.loop.metrics import Health, Metrics
from reconciler.loop.run import Reason, Trigger
from reconciler.loop.status import StatusBook
from reconciler.loop.watch import WatchOptions, reconcile_once
from reconciler.mox.live import ConfigPaths
from reconciler.plan.passwords import PASSWORDS_FILE

from . import moxserver
from .moxserver import MoxInstance, ServedMox
from .test_ctl import imap_login
from .test_passwords import desired, secret_file

FIRST = "test-only first pass 3Zr8"
SECOND = "test-only second pass 6Wd1"


def run(moxconf: Path, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(moxconf), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def login(served: ServedMox, account: str, password: str) -> bool:
    return imap_login(served.imaps_port, f"{account}@mail.example.org", password)


def test_password_from_a_file_is_set_and_changed_with_the_file(
        served_mox: ServedMox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = served_mox.instance.mox_conf
    f = secret_file(tmp_path, "filepw", FIRST)
    d = desired(tmp_path, {"filepw": f"{{File: {f}}}"})
    code, out, err = run(moxconf, "apply", str(d), "--yes", capsys=capsys)
    assert (code, err) == (0, "")
    assert f"Set password of account filepw (from file {f}).\n" in out
    assert login(served_mox, "filepw", FIRST)
    assert not login(served_mox, "filepw", FIRST + "x")
    book = moxconf.parent / PASSWORDS_FILE
    assert oct(book.stat().st_mode & 0o777) == "0o600"
    assert (book.stat().st_uid, book.stat().st_gid) == (
        (moxconf.parent / "domains.conf").stat().st_uid, (moxconf.parent / "domains.conf").stat().st_gid)

    # Nothing to do while the secret is the same.
    assert run(moxconf, "plan", str(d), "--detailed-exitcode", capsys=capsys)[0] == 0

    f.write_text(SECOND + "\n")
    code, out, _ = run(moxconf, "plan", str(d), "--detailed-exitcode", capsys=capsys)
    assert code == 2 and f"~ set password of account filepw (from file {f}) (changed)" in out
    code, out, err = run(moxconf, "apply", str(d), "--yes", capsys=capsys)
    assert (code, err) == (0, "")
    assert f"Set password of account filepw (from file {f}).\n" in out
    assert login(served_mox, "filepw", SECOND)
    assert not login(served_mox, "filepw", FIRST)


def test_password_from_an_environment_variable(
        served_mox: ServedMox, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    moxconf = served_mox.instance.mox_conf
    monkeypatch.setenv("ENVPW_PASSWORD", FIRST)
    d = desired(tmp_path, {"envpw": "{Env: ENVPW_PASSWORD}"})
    code, out, err = run(moxconf, "apply", str(d), "--yes", capsys=capsys)
    assert (code, err) == (0, "")
    assert "Set password of account envpw (from environment variable ENVPW_PASSWORD).\n" in out
    assert login(served_mox, "envpw", FIRST)
    assert not login(served_mox, "envpw", SECOND)

    monkeypatch.setenv("ENVPW_PASSWORD", SECOND)
    code, out, err = run(moxconf, "apply", str(d), "--yes", capsys=capsys)
    assert (code, err) == (0, "")
    assert "set password of account envpw (from environment variable ENVPW_PASSWORD) (changed)" in out
    assert login(served_mox, "envpw", SECOND)
    assert not login(served_mox, "envpw", FIRST)

    # Removing Password leaves the password as it is.
    d = desired(tmp_path, {"envpw": ""})
    code, out, _ = run(moxconf, "apply", str(d), "--yes", capsys=capsys)
    assert code == 0 and "et password" not in out and "Nothing to" in out
    assert login(served_mox, "envpw", SECOND)


@pytest.fixture
def unserved(mox_instance: Callable[[str], MoxInstance]) -> Iterator[MoxInstance]:
    reason = moxserver.serve_reason()
    if reason:
        pytest.skip(reason)
    yield mox_instance("00")


def test_without_mox_the_password_is_pending_and_the_next_run_sets_it(
        unserved: MoxInstance, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = unserved.mox_conf
    f = secret_file(tmp_path, "later", FIRST)
    d = desired(tmp_path, {"later": f"{{File: {f}}}"})
    code, out, err = run(moxconf, "apply", str(d), "--yes", capsys=capsys)
    assert code == 1 and "Applied 1 operation" in out
    assert err.startswith("error: password of account later not set: mox's control socket ")
    assert "mox is not running" in err
    with moxserver.serve(unserved) as served:
        code, out, err = run(moxconf, "apply", str(d), "--yes", capsys=capsys)
        assert (code, err) == (0, "")
        assert "The live config matches the desired state.\n" in out
        assert f"Set password of account later (from file {f}).\n" in out
        assert login(served, "later", FIRST)


# --- never printed, never written


PASSWORD_FILE_SECRET = "test-only grep file pass 1Hn5"
PASSWORD_ENV_SECRET = "test-only grep env pass 2Jq7"
HOOK_FILE_SECRET = "test-only-grep-hook-file-4Ks2"
HOOK_ENV_SECRET = "test-only-grep-hook-env-9Pt4"
PASSWORDS = (PASSWORD_FILE_SECRET, PASSWORD_ENV_SECRET, "test-only grep file pass 3Xc8")
HOOKS = (HOOK_FILE_SECRET, HOOK_ENV_SECRET)


def grep_desired(tmp_path: Path) -> tuple[Path, Path]:
    """Two accounts with passwords (file, variable), one with webhooks (file, variable)."""
    pw = secret_file(tmp_path, "greppw", PASSWORD_FILE_SECRET)
    hook = secret_file(tmp_path, "grephook", HOOK_FILE_SECRET)
    d = desired(tmp_path, {"grepfile": f"{{File: {pw}}}", "grepenv": "{Env: GREP_PASSWORD}"})
    (d / "hooks.yaml").write_text(
        "Accounts:\n  grephook:\n    Destinations:\n      grephook@mail.example.org: {}\n"
        f"    OutgoingWebhook:\n      URL: https://hooks.example/out\n      Authorization: {{File: {hook}}}\n"
        "    IncomingWebhook:\n      URL: https://hooks.example/in\n      Authorization: {Env: GREP_HOOK}\n")
    return d, pw


def test_no_secret_in_any_output_or_any_file_the_reconciler_writes(
        served_mox: ServedMox, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, golden_config: Callable[[str], Path]) -> None:
    monkeypatch.setenv("GREP_PASSWORD", PASSWORD_ENV_SECRET)
    monkeypatch.setenv("GREP_HOOK", HOOK_ENV_SECRET)
    moxconf = served_mox.instance.mox_conf
    config_dir = moxconf.parent
    domains = config_dir / "domains.conf"
    mode = domains.stat().st_mode
    d, pw = grep_desired(tmp_path)
    reports = tmp_path / "reports"
    plan_files = [tmp_path / "plan.json", tmp_path / "stale.json"]
    outputs: list[str] = []

    def cli(*argv: str, conf: Path = moxconf) -> int:
        code, out, err = run(conf, *argv, capsys=capsys)
        outputs.append(out + err)
        return code

    assert cli("validate", str(d)) == 0
    for fmt in ("text", "markdown", "json"):
        assert cli("--debug", "-v", "plan", str(d), "--format", fmt, "--out", str(plan_files[0])) == 0
    assert cli("--debug", "-v", "--log-format", "json", "apply", "--plan", str(plan_files[0]), "--yes",
               "--reports-dir", str(reports)) == 0
    assert "Set password of account grepfile" in outputs[-1] and "Set password of account grepenv" in outputs[-1]
    assert login(served_mox, "grepfile", PASSWORD_FILE_SECRET)
    assert login(served_mox, "grepenv", PASSWORD_ENV_SECRET)

    # A plan file that will be stale: made with one more account, which then leaves the desired state.
    (d / "stale.yaml").write_text("Accounts:\n  grepstale:\n    Destinations:\n      grepstale@mail.example.org: {}\n")
    assert cli("--debug", "--log-format", "json", "plan", str(d), "--out", str(plan_files[1])) == 0
    (d / "stale.yaml").unlink()

    pw.write_text(PASSWORDS[2])  # a changed password, through the watcher (status file, JSON logs)
    status = tmp_path / "status.json"
    assert cli("--debug", "--log-format", "json", "watch", str(d), "--once", "--status-file", str(status),
               "--reports-dir", str(reports)) == 0
    assert "set password of account grepfile" in outputs[-1]
    # The watcher's in-process view: metrics and /readyz after a run.
    metrics, health = Metrics(), Health(60)
    result = reconcile_once(WatchOptions(served_mox.instance.config_paths, lambda: resolve_source(str(d))),
                            StatusBook(status), Trigger.ONCE)
    metrics.observe(result)
    health.observe(result)
    outputs += [metrics.render().decode(), json.dumps(health.ready()[1])]

    # Errors, with --debug tracebacks: a stale plan file, and passwords pending without mox.
    assert cli("--debug", "apply", "--plan", str(plan_files[1]), "--yes") == 1
    assert "Traceback" in outputs[-1] and "stale plan" in outputs[-1]
    other = golden_config("00")
    assert cli("--debug", "-v", "apply", str(d), "--yes", conf=other) == 1
    assert "password of account grepfile not set" in outputs[-1]
    book = StatusBook(tmp_path / "pending-status.json")
    pending = reconcile_once(WatchOptions(ConfigPaths(other), lambda: resolve_source(str(d))), book, Trigger.ONCE)
    assert pending.reason is Reason.PASSWORD_PENDING
    metrics.observe(pending)
    health.observe(pending)
    outputs += [metrics.render().decode(), json.dumps(health.ready()[1])]

    # Everything else a user looks at.
    for argv in (["config", "test"], ["config", "dump"], ["records", "--domain", "mail.example.org"],
                 ["import", "-o", str(tmp_path / "imported"), "--secrets-dir", str(tmp_path / "imported-secrets")]):
        assert cli(*argv) == 0

    files = [p for root in (config_dir, other.parent, reports, tmp_path / "imported")
             for p in root.rglob("*") if p.is_file()]
    files += [*plan_files, status, tmp_path / "pending-status.json"]
    assert len(files) > 10
    for text in outputs:
        for secret in (*PASSWORDS, *HOOKS):
            assert secret not in text
    for path in files:
        data = path.read_bytes()
        for secret in PASSWORDS:
            assert secret.encode() not in data, path
        if path.name != "domains.conf":
            for secret in HOOKS:
                assert secret.encode() not in data, path
    # mox needs the webhook secrets in domains.conf, which keeps its mode.
    assert all(secret.encode() in domains.read_bytes() for secret in HOOKS)
    assert domains.stat().st_mode == mode



@pytest.mark.parametrize("password", [
    "seven77",  # 7 bytes
    "eight888",  # 8 bytes
    "ääää",  # 4 characters, 8 bytes: mox counts bytes
    "äää",  # 6 bytes
    "tab\there8",  # a control character
    "nbsp\u00a0nbsp",  # a non-ASCII space, mapped to an ASCII one: 9 bytes
    "a\u0308a\u0308a\u0308a",  # NFC makes 3 × ä + a: 7 bytes
    "test-only long enough 1",
])
def test_password_rule_is_moxs(served_mox: ServedMox, password: str) -> None:
    """ctl.password_problem (checked at the YAML line) agrees with mox's setaccountpassword."""
    from reconciler.mox.ctl import password_problem
    from reconciler.mox.errors import CtlCommandFailed

    ctl = served_mox.ctl()
    if "pwrules" not in {a.name for a in ctl.account_list()}:
        ctl.account_add("pwrules", "pwrules@mail.example.org")
    try:
        ctl.set_account_password("pwrules", password)
        accepted = True
    except CtlCommandFailed as e:
        accepted = False
        assert password not in str(e)
    assert (password_problem(password) is None) == accepted


def test_as_moxs_user_on_its_own_config_dir(unserved: MoxInstance) -> None:
    """The usual deployment: the reconciler runs as mox's uid, which owns the config dir."""
    import os
    import shutil
    import tempfile

    from .asuser import MOX_UID, run_as

    for p in [unserved.config_dir, *unserved.config_dir.rglob("*")]:
        os.chown(p, MOX_UID, MOX_UID)
    root = Path(tempfile.mkdtemp(prefix="passwords-"))
    try:
        root.chmod(0o755)
        f = secret_file(root, "mine", FIRST)
        f.chmod(0o600)
        os.chown(f, MOX_UID, MOX_UID)
        d = desired(root, {"mine": f"{{File: {f}}}"})
        for p in (f.parent, d, *d.iterdir()):
            p.chmod(0o755 if p.is_dir() else 0o644)
        with moxserver.serve(unserved) as served:
            code = run_as(MOX_UID, lambda: main(["--config", str(unserved.mox_conf), "apply", str(d), "--yes"]))
            assert code == 0
            assert login(served, "mine", FIRST)
        st, conf = (unserved.config_dir / PASSWORDS_FILE).stat(), unserved.domains_conf.stat()
        assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o777)) == (MOX_UID, conf.st_gid, "0o600")
        assert conf.st_uid == MOX_UID  # owned like domains.conf (mox sets its group)
    finally:
        shutil.rmtree(root)


def test_a_password_mox_refuses_is_pending_with_moxs_reason(
        served_mox: ServedMox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PRECIS refuses an unassigned code point (U+0378), which the early check leaves to mox."""
    moxconf = served_mox.instance.mox_conf
    refused = secret_file(tmp_path, "refused", "test-only \u0378 refused")
    fine = secret_file(tmp_path, "fine", FIRST)
    d = desired(tmp_path, {"refusedpw": f"{{File: {refused}}}", "finepw": f"{{File: {fine}}}"})
    code, out, err = run(moxconf, "apply", str(d), "--yes", capsys=capsys)
    assert code == 1 and f"Set password of account finepw (from file {fine}).\n" in out
    assert err == ("error: password of account refusedpw not set: mox refused `setaccountpassword refusedpw`: "
                   'setting password: password not allowed by "precis"; fix the secret, the next run sets it\n')
    assert login(served_mox, "finepw", FIRST)
    code, out, _ = run(moxconf, "plan", str(d), capsys=capsys)
    assert f"set password of account refusedpw (from file {refused})" in out and "finepw" not in out.split(
        "Unmanaged")[0].split("refusedpw", 1)[1]
