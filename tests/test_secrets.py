"""Secret references in the desired state: their forms, reading them, and the one rule that shows
a secret anywhere (`reconciler.mox.secret.shown`).

Bad references go through the real CLI (`apply` on a scratch copy of a golden config): one
`file:line:col: field: message` naming the reference and never the secret, exit 1, nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.desired.load import load_desired
from reconciler.desired.secrets import SecretError, SecretRef, read_secret, read_secrets
from reconciler.errors import DesiredStateError
from reconciler.mox import config as mc
from reconciler.mox.admin import AccountSave
from reconciler.mox.secret import REDACTED, Secret, shown
from tests.asuser import MOX_UID, run_as

SECRET = "test-only-Bearer-7Qx2vLm9"  # never to be seen in any output


# Golden step 00's domain as `import` writes it: the plans below change only the accounts.
STEP00_DOMAIN = """\
Domains:
  mail.example.org:
    ClientSettingsDomain: ''
    LocalpartCatchallSeparator: ''
    DKIM: null
    DMARC: null
    MTASTS: null
    TLSRPT: null
"""


def desired(tmp_path: Path, authorization: str, *, extra: str = "") -> Path:
    """A desired state adding account hooky (with an outgoing webhook) to golden step 00."""
    d = tmp_path / "desired"
    d.mkdir(exist_ok=True)
    (d / "domains.yaml").write_text(STEP00_DOMAIN)
    (d / "accounts.yaml").write_text(
        "Accounts:\n"
        "  hooky:\n"
        "    Destinations:\n"
        "      hooky@mail.example.org: {}\n"
        "    OutgoingWebhook:\n"
        "      URL: https://hooks.example/out\n"
        f"      Authorization: {authorization}\n" + extra)
    return d


def snapshot(config_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under the config dir with its bytes and mtime: "nothing written" compares these."""
    return {str(p.relative_to(config_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(config_dir.rglob("*")) if p.is_file()}


# --- the forms (checked by validate too, which reads no secret)


@pytest.mark.parametrize(("value", "message"), [
    ("{File: run/secrets/x}", "File: must be an absolute path (starting with /), not 'run/secrets/x'"),
    ("{File: ''}", "File: must be a non-empty string"),
    ("{Env: 2BAD}", "Env: '2BAD' is not an environment variable name"),
    ("{File: /x, Env: Y}", "give exactly one of File and Env"),
    ("{file: /x}", "unknown key file"),
    ("{}", "give exactly one of File and Env"),
    ("[a, b]", "must be a secret reference, {File: /absolute/path} or {Env: VARIABLE}"),
])
def test_malformed_references_are_file_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    value: str, message: str) -> None:
    d = desired(tmp_path, value)
    assert main(["validate", str(d)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{d / 'accounts.yaml'}:7:22: Accounts.hooky.OutgoingWebhook.Authorization: " + (
        err[0].split("Authorization: ", 1)[1])
    assert message in err[0]
    assert err[1] == "error: desired state invalid: 1 problem"


def test_validate_checks_the_form_but_reads_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator validates on a laptop: the server's secret files are not there."""
    d = desired(tmp_path, "{File: /run/secrets/not-here}")
    assert main(["validate", str(d)]) == 0
    assert "desired state OK" in capsys.readouterr().out


def test_a_plain_webhook_secret_is_allowed_with_a_warning(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    d = desired(tmp_path, SECRET)
    assert main(["validate", str(d)]) == 0
    out, err = capsys.readouterr()
    assert "desired state OK" in out
    assert err == (f"WARNING {d / 'accounts.yaml'}:7:22: Accounts.hooky.OutgoingWebhook.Authorization: a secret "
                   "written in the desired state is in git; use a secret reference, {File: /absolute/path} or "
                   "{Env: VARIABLE}\n")
    assert load_desired(d).warnings == [err.removeprefix("WARNING ").rstrip("\n")]


# --- reading


def test_file_content_without_one_trailing_newline(tmp_path: Path) -> None:
    f = tmp_path / "s"
    for content, want in ((SECRET, SECRET), (SECRET + "\n", SECRET), (SECRET + "\r\n", SECRET),
                          (" spaced secret\t", " spaced secret\t")):
        f.write_text(content, newline="")
        assert read_secret(SecretRef(File=str(f))) == want
    assert read_secret(SecretRef(Env="HOOK"), {"HOOK": SECRET}) == SECRET


def bad_file(tmp_path: Path, kind: str) -> str:
    """A path whose secret cannot be used, of the given kind."""
    f = tmp_path / f"secret-{kind}"
    if kind == "missing":
        return str(f)
    if kind == "directory":
        f.mkdir()
    elif kind == "fifo":
        os.mkfifo(f)
    elif kind == "empty":
        f.write_text("\n")
    elif kind == "two-lines":
        f.write_text(SECRET + "\n" + SECRET + "\n")
    elif kind == "not-utf8":
        f.write_bytes(b"\xff" + SECRET.encode())
    elif kind == "control":
        f.write_text(SECRET + "\x00")
    elif kind == "huge":
        f.write_text(SECRET * 3000)
    return str(f)


FILE_PROBLEMS = {
    "missing": "does not exist",
    "directory": "is a directory, not a file",
    "fifo": "not a regular file",
    "empty": "empty",
    "two-lines": "more than one line (a secret is one line; one trailing newline is ignored)",
    "not-utf8": "not UTF-8 text",
    "control": "contains a control character",
    "huge": "too large (75000 bytes; a secret is at most 65536)",
}


def apply_fails_cleanly(moxconf: Path, d: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`apply` refuses: exit 1, nothing written in the config dir; returns the error lines."""
    before = snapshot(moxconf.parent)
    assert main(["--config", str(moxconf), "apply", str(d), "--yes"]) == 1
    out, err = capsys.readouterr()
    assert snapshot(moxconf.parent) == before
    assert not (moxconf.parent / "mox-reconciler.records").exists()
    assert "Traceback" not in err and SECRET not in out + err
    return err.splitlines()


@pytest.mark.parametrize("kind", sorted(FILE_PROBLEMS))
def test_unusable_secret_file_is_one_error_and_nothing_is_written(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str], kind: str) -> None:
    path = bad_file(tmp_path, kind)
    d = desired(tmp_path, f"{{File: {path}}}")
    err = apply_fails_cleanly(golden_config("00"), d, capsys)
    where = "secret from file" if kind in ("empty", "two-lines", "control") else "secret file"
    assert err == [f"error: {d / 'accounts.yaml'}:7:23: Accounts.hooky.OutgoingWebhook.Authorization: "
                   f"{where} {path}: {FILE_PROBLEMS[kind]}"]


@pytest.mark.parametrize(("environ", "problem"), [({}, "the variable is not set"), ({"HOOK_AUTH": ""}, "empty"),
                                                  ({"HOOK_AUTH": f"{SECRET}\nx"}, "more than one line")])
def test_unusable_environment_variable_is_one_error(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], problem: str) -> None:
    monkeypatch.delenv("HOOK_AUTH", raising=False)
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    d = desired(tmp_path, "{Env: HOOK_AUTH}")
    err = apply_fails_cleanly(golden_config("00"), d, capsys)
    assert len(err) == 1 and err[0].startswith(
        f"error: {d / 'accounts.yaml'}:7:23: Accounts.hooky.OutgoingWebhook.Authorization: "
        f"secret from environment variable HOOK_AUTH: {problem}")


def test_a_secret_file_mox_user_cannot_read() -> None:
    """Run as mox's uid: a root-only secret file is an error naming the uid, not a traceback."""
    root = Path(tempfile.mkdtemp(prefix="secrets-"))  # not pytest's tmp dir: uid 1000 cannot reach that
    try:
        root.chmod(0o755)
        secret = root / "root-only"
        secret.write_text(SECRET)
        secret.chmod(0o600)
        d = desired(root, f"{{File: {secret}}}")
        d.chmod(0o755)

        def load() -> str:
            try:
                read_secrets(load_desired(d))
            except DesiredStateError as e:
                return str(e)
            return "read"

        message = run_as(MOX_UID, load)
    finally:
        shutil.rmtree(root)
    assert message == (f"{d / 'accounts.yaml'}:7:23: Accounts.hooky.OutgoingWebhook.Authorization: secret file "
                       f"{secret}: cannot be read: permission denied (this process runs as uid {MOX_UID})")


def test_several_bad_references_are_reported_at_once(tmp_path: Path) -> None:
    d = desired(tmp_path, "{Env: UNSET_ONE}", extra="    IncomingWebhook:\n      URL: https://hooks.example/in\n"
                "      Authorization: {File: /nonexistent/secret}\n")
    state = load_desired(d)
    with pytest.raises(Exception) as e:
        read_secrets(state, {})
    assert [line.split(": ", 1)[1] for line in str(e.value).splitlines()] == [
        "Accounts.hooky.OutgoingWebhook.Authorization: secret from environment variable UNSET_ONE: the variable is "
        "not set",
        "Accounts.hooky.IncomingWebhook.Authorization: secret file /nonexistent/secret: does not exist",
    ]


def test_an_unread_reference_is_never_used_as_a_secret() -> None:
    with pytest.raises(SecretError, match="was not read"):
        SecretRef(File="/x").text()


# --- showing


def test_a_reference_shows_as_where_it_points(tmp_path: Path) -> None:
    ref = SecretRef(File="/run/secrets/hook")
    ref.remember(SECRET)
    assert ref.text() == SECRET
    assert SECRET not in repr(ref) and ref == SecretRef(File="/run/secrets/hook")
    value = ref.secret()
    assert value == SECRET and isinstance(value, str)  # written and compared as its text
    assert repr(value) == "<secret from file /run/secrets/hook>"
    hook = mc.OutgoingWebhook(URL="https://h.example/", Authorization=value)
    assert SECRET not in repr(hook)


def test_shown_is_the_one_rule_for_every_rendering() -> None:
    live = mc.IncomingWebhook(URL="https://h.example/in", Authorization=SECRET)  # read from domains.conf
    ours = mc.OutgoingWebhook(URL="https://h.example/out", Authorization=Secret(SECRET, "environment variable H"))
    data = shown({"IncomingWebhook": live, "OutgoingWebhook": ours, "FullName": "Hooky"})
    assert data == {"IncomingWebhook": {"URL": "https://h.example/in", "Authorization": REDACTED},
                    "OutgoingWebhook": {"URL": "https://h.example/out",
                                        "Authorization": "<secret from environment variable H>", "Events": []},
                    "FullName": "Hooky"}
    assert shown(mc.IncomingWebhook(URL="u"))["Authorization"] == ""  # no secret: nothing to hide
    op = AccountSave("hooky", {"OutgoingWebhook": ours, "IncomingWebhook": live})
    assert SECRET not in json.dumps(op.to_json()) and SECRET not in op.describe()


# --- a webhook secret from a reference, end to end


def test_webhook_secret_from_a_file_reaches_domains_conf_and_nothing_else(
        tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("00")
    domains = moxconf.parent / "domains.conf"
    domains.chmod(0o640)
    secret = tmp_path / "hook"
    secret.write_text(SECRET + "\n")
    d = desired(tmp_path, f"{{File: {secret}}}")
    plan_file = tmp_path / "plan.json"
    assert main(["--config", str(moxconf), "plan", str(d), "--out", str(plan_file)]) == 0
    shown_plan = capsys.readouterr().out + plan_file.read_text()
    assert SECRET not in shown_plan
    assert f'"Authorization": "<secret from file {secret}>"' in plan_file.read_text()

    assert main(["--config", str(moxconf), "apply", "--plan", str(plan_file), "--yes"]) == 0
    assert SECRET not in "".join(capsys.readouterr())
    assert f"\t\t\tAuthorization: {SECRET}\n" in domains.read_text()  # mox reads it from there
    assert oct(domains.stat().st_mode & 0o777) == "0o640"  # the file holding it keeps its mode
    for written in (moxconf.parent / "mox-reconciler.records").iterdir():
        assert SECRET not in written.read_text()

    assert main(["--config", str(moxconf), "config", "dump"]) == 0
    dump = capsys.readouterr().out
    assert SECRET not in dump and "\t\t\tAuthorization: <redacted>\n" in dump
    assert main(["--config", str(moxconf), "config", "dump", "--show-secrets"]) == 0
    assert f"Authorization: {SECRET}\n" in capsys.readouterr().out

    # import writes a reference instead of the secret, and says where to put it
    secrets_dir = tmp_path / "secrets"
    out = tmp_path / "imported"
    assert main(["--config", str(moxconf), "import", "-o", str(out), "--secrets-dir", str(secrets_dir)]) == 0
    err = capsys.readouterr().err
    hook_file = secrets_dir / "hooky.outgoing-webhook"
    assert (f"note: Accounts.hooky.OutgoingWebhook.Authorization is a secret: not written, but read from "
            f"{hook_file}; put the value from {domains} there before the next plan") in err
    text = (out / "accounts.yaml").read_text()
    assert SECRET not in text and f"Authorization:\n        File: {hook_file}\n" in text
    secrets_dir.mkdir()
    hook_file.write_text(SECRET)
    assert main(["--config", str(moxconf), "plan", str(out), "--detailed-exitcode"]) == 0
    assert SECRET not in "".join(capsys.readouterr())
