"""Errors that point at the cause: one clear message naming file, line and field, plain words,
the root cause first (its echoes left out), exit 1, nothing written, never `internal error`.

Each case is a class of input that once ended in `internal error`, a traceback, PyYAML's raw
words or a late failure. The live config is golden step 09; the desired state its `import`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from reconciler.cli.main import main
from reconciler.desired.importer import import_live
from reconciler.mox.live import locate, read_live

from .golden import build_step_config, golden_step


@dataclasses.dataclass
class Env:
    tmp: Path
    mox_conf: Path
    desired: Path
    doc: dict

    @property
    def file(self) -> Path:
        return self.desired / "desired.yaml"

    def write(self, text: str | None = None, edit: Callable[[dict], object] | None = None) -> None:
        if edit is not None:
            doc = json.loads(json.dumps(self.doc))
            edit(doc)
            text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
        assert text is not None
        self.file.write_text(text)

    def snapshot(self) -> dict[str, bytes]:
        root = self.mox_conf.parent
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    def refused_everywhere(self, capsys: pytest.CaptureFixture[str]) -> list[str]:
        """validate, plan and apply all refuse, with the same problems, writing nothing; the
        problems (one per line) are returned."""
        before = self.snapshot()
        rc, out, err = self.run(capsys, "validate", str(self.desired))
        assert rc == 1 and out == "", err
        problems = err.splitlines()[:-1]
        assert err.splitlines()[-1].startswith("error: desired state invalid:")
        for verb in (["plan"], ["apply", "--yes", "--force"]):
            rc, out, perr = self.run(capsys, "--config", str(self.mox_conf), *verb, str(self.desired))
            assert rc == 1 and out == "" and "internal error" not in perr and "Traceback" not in perr, perr
            assert perr == "error: " + "\n".join(problems) + "\n", perr
        assert self.snapshot() == before
        return problems


@pytest.fixture
def env(tmp_path: Path) -> Env:
    mox_conf = build_step_config(golden_step("09"), tmp_path / "server")
    live = read_live(locate(str(mox_conf)))
    doc = import_live(live.static, live.dynamic)
    (tmp_path / "desired").mkdir()
    e = Env(tmp_path, mox_conf, tmp_path / "desired", doc)
    e.write(edit=lambda d: None)
    return e


def test_deep_nesting(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("{" * 5000, "[" * 5000, "- " * 5000, "Domains: " + "{a: " * 3000):
        env.write(text)
        (problem,) = env.refused_everywhere(capsys)
        assert problem.startswith(f"{env.file}:1:") and "nested more than 64 levels deep" in problem


def test_control_character(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.write("Domains:\n  example.org: {Description: a\x01b}\n")
    assert env.refused_everywhere(capsys) == [
        f"{env.file}:2:31: control character U+0001 is not allowed in YAML text (write it as an escape inside "
        'double quotes, "\\x01", if it is meant)']


def test_nul_in_a_file_name(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(d: dict) -> None:
        d["Domains"]["example.org"]["DKIM"]["Selectors"]["x1"] = {"PrivateKeyFile": "dkim/a\x00b.pem"}

    env.write(edit=edit)
    (problem,) = env.refused_everywhere(capsys)
    assert problem.startswith(f"{env.file}:") and problem.endswith(
        "Domains.example.org.DKIM.Selectors.x1.PrivateKeyFile: must not contain control characters (a file name)")


@pytest.mark.parametrize("field", ["Description", "FullName"])
def test_line_break_in_a_value(field: str, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """domains.conf cannot hold a line break: refused where it is written, not at apply."""
    def edit(d: dict) -> None:
        d["Accounts"]["bob"][field] = "first line\nsecond line"

    env.write(edit=edit)
    (problem,) = env.refused_everywhere(capsys)
    assert problem.endswith(f"Accounts.bob.{field}: must be one line: domains.conf cannot hold a line break "
                            "(mox's config format has no multi-line values)")
    assert problem.startswith(f"{env.file}:")


def test_tabs(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.write("Domains:\n\texample.org: {}\n")
    assert env.refused_everywhere(capsys) == [
        f"{env.file}:2:1: tabs are not allowed for indentation in YAML; use spaces (domains.conf indents with "
        "tabs: replace each tab with two spaces when pasting from it)"]


def test_upper_case_domain_key_is_one_problem(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """The key is the cause; the addresses and alias members in that domain are not reported."""
    env.write(edit=lambda d: d["Domains"].__setitem__("Example.org", d["Domains"].pop("example.org")))
    (problem,) = env.refused_everywhere(capsys)
    assert problem.endswith("Domains.Example.org: must be lower case: example.org")


@pytest.mark.parametrize(("key", "message"), [
    ("exa mple.org", "invalid domain name: contains a space"),
    ("xn--caf-dma.example", "must be written in Unicode form: café.example (not xn--caf-dma.example)"),
])
def test_domain_key_wording(key: str, message: str, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.write(edit=lambda d: d["Domains"].__setitem__(key, {"ReportsAccount": "alice"}))
    assert any(p.endswith(f"Domains.{key}: {message}") for p in env.refused_everywhere(capsys))


def test_did_you_mean(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.write(env.file.read_text().replace("Accounts:", "accounts:", 1).replace("FullName", "Fullname"))
    problems = env.refused_everywhere(capsys)
    assert any(p.endswith("accounts: unknown key; did you mean Accounts?") for p in problems), problems


def test_global_options_after_the_verb(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = env.run(capsys, "plan", str(env.desired), "--config", str(env.mox_conf), "--log-format", "json")
    assert rc == 0 and out.rstrip().endswith("No changes. The live config matches the desired state."), err
    rc, out, err = env.run(capsys, "config", "test", "--config", str(env.mox_conf))
    assert (rc, out) == (0, "config OK\n"), err


def test_plan_out_into_a_missing_directory(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = env.tmp / "missing" / "plan.json"
    rc, out, err = env.run(capsys, "--config", str(env.mox_conf), "plan", "--out", str(out_file), str(env.desired))
    assert (rc, out) == (1, "")  # refused before planning
    assert err == f"error: --out {out_file}: the directory {out_file.parent} does not exist; create it first\n"
    rc, _, err = env.run(capsys, "--config", str(env.mox_conf), "plan", "--out", str(env.tmp), str(env.desired))
    assert rc == 1 and "is a directory" in err


def test_reports_dir_that_cannot_be_created(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """Checked before domains.conf is written: a failed apply writes nothing at all."""
    env.write(edit=lambda d: d["Domains"]["example.org"].__setitem__("Description", "changed"))
    blocker = env.tmp / "a-file"
    blocker.write_text("x")
    before = env.snapshot()
    rc, _, err = env.run(capsys, "--config", str(env.mox_conf), "apply", "--yes", "--reports-dir",
                         str(blocker / "reports"), str(env.desired))
    assert rc == 1 and "internal error" not in err
    assert err == (f"error: reports dir {blocker / 'reports'}: cannot be created: {blocker} is not a directory; "
                   "nothing was written (give --reports-dir a directory this user can write)\n")
    assert env.snapshot() == before


def test_stale_plan_is_refused_before_it_is_shown(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.write(edit=lambda d: d["Domains"]["example.org"].__setitem__("Description", "changed"))
    plan_file = env.tmp / "plan.json"
    assert env.run(capsys, "--config", str(env.mox_conf), "plan", "--out", str(plan_file), str(env.desired))[0] == 0
    env.write(edit=lambda d: d["Domains"]["example.org"].__setitem__("Description", "changed again"))
    rc, out, err = env.run(capsys, "--config", str(env.mox_conf), "apply", "--yes", "--plan", str(plan_file))
    assert (rc, out) == (1, "") and err.startswith("error: stale plan: the desired-state files changed"), err


def test_damaged_plan_files(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    before = env.snapshot()
    for content in ("[" * 5000, '{"version": 2, "changes": ' + "[" * 3000, "{" * 200 + "}" * 200):
        path = env.tmp / "plan.json"
        path.write_text(content)
        rc, out, err = env.run(capsys, "--config", str(env.mox_conf), "apply", "--yes", "--plan", str(path))
        assert (rc, out) == (1, "") and err.startswith(f"error: {path}") and "internal error" not in err, err
        assert len(err.splitlines()) == 1
    assert env.snapshot() == before


def test_subdir_hint(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    repo = env.tmp / "repo"
    (repo / "desired").mkdir(parents=True)
    (repo / "desired" / "desired.yaml").write_text(env.file.read_text())
    rc, _, err = env.run(capsys, "validate", str(repo))
    assert rc == 1 and err.startswith(f"{repo}: no *.yaml files in this directory; *.yaml files are in desired/: "
                                      "give that directory, or --subdir desired for a git URL")


def test_live_side_errors_point_at_the_yaml(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """Problems only the live config shows (a key file that is not there; removing an account
    mox.conf needs) name the file, line and field that cause them, and say what to do."""
    def missing_key(d: dict) -> None:
        d["Domains"]["example.org"]["DKIM"]["Selectors"]["x1"] = {"PrivateKeyFile": "dkim/missing.pem"}

    env.write(edit=missing_key)
    line = next(i for i, t in enumerate(env.file.read_text().splitlines(), 1) if "dkim/missing.pem" in t)
    before = env.snapshot()
    rc, _, err = env.run(capsys, "--config", str(env.mox_conf), "plan", str(env.desired))
    assert rc == 1 and err.splitlines() == [
        "error: the plan's result would be rejected by mox (1 problem; nothing was written):",
        f"  {env.file}:{line}:" + err.split(f"{env.file}:{line}:", 1)[1].split(":", 1)[0]
        + ": Domains.example.org.DKIM.Selectors.x1.PrivateKeyFile: domain example.org: selector x1: reading "
        f"private key: open {env.mox_conf.parent / 'dkim/missing.pem'}: no such file or directory (the key file is "
        "not in the config dir: put it there first, or leave PrivateKeyFile out and a key is generated)"]
    def remove_admin(d: dict) -> None:
        d["Accounts"].pop("admin")
        d["Domains"]["example.net"]["ReportsAccount"] = "alice"
        d["Removed"] = {"Accounts": ["admin"]}

    env.write(edit=remove_admin)
    rc, _, err = env.run(capsys, "--config", str(env.mox_conf), "apply", "--yes", "--force", str(env.desired))
    assert rc == 1
    assert ("Removed.Accounts.0: postmaster account \"admin\" does not exist (mox.conf's Postmaster.Account must "
            "exist: keep that account (do not list it under Removed.Accounts))") in err
    assert f"  {env.file}:" in err
    assert env.snapshot() == before


def test_messages_never_send_control_characters_to_the_terminal(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    bad = env.tmp / "plan\x1b[31m.json"
    rc, _, err = env.run(capsys, "--config", str(env.mox_conf), "apply", "--yes", "--plan", str(bad))
    assert rc == 1 and "\x1b" not in err and "plan\\x1b[31m.json" in err


def test_addresses_left_in_a_removed_domain(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(d: dict) -> None:
        d["Domains"].pop("café.example")
        d["Removed"] = {"Domains": ["café.example"]}

    env.write(edit=edit)
    problems = env.refused_everywhere(capsys)
    assert len(problems) == 3 and all(p.startswith(f"{env.file}:") for p in problems)
    assert problems[0].endswith("Accounts.alice.Destinations.postmaster@café.example: domain café.example is not "
                                "defined under Domains: it is listed under Removed.Domains, so remove this "
                                "address too")
