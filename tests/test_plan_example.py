"""`plan` on the bundled example (examples/desired against examples/mox/config) as a user runs it:
a new interpreter that imports only what the verb needs. Its output in text, Markdown and JSON is
compared byte for byte with recorded files (tests/fixtures/plan/example.*), so making the start
faster (modules imported later or not at all, the checkout's commit read without GitPython)
cannot change what a plan says. And the packages that run must not import: the plan reads a
local checkout, the parse cache is warm, no DKIM key rotates (no DNS query), nothing is locked.

The scenario is deterministic: a git checkout of the example with a fixed author, committer and
dates (so a fixed commit id), the clock fixed with --now, the temporary path replaced by `<tmp>`.
After an intended change of the output, refresh the files with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_plan_example.py

and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = Path(__file__).parent / "fixtures" / "plan"
NOW = "2026-11-30T00:00:00Z"
FORMATS = {"text": "example.txt", "markdown": "example.md", "json": "example.json"}
# What a plan of a local checkout with a warm parse cache does not need (bench/README.md "startup").
NOT_IMPORTED = ("git", "dns", "filelock", "cryptography", "yaml", "watchfiles", "prometheus_client", "rich")

# Runs `plan` once per format in one interpreter (the first run imports what plan needs, lazily,
# as from the command line), then prints the outputs and exit codes as JSON.
DRIVER = """\
import contextlib, io, json, sys
from reconciler.cli.main import main
formats, argv = json.loads(sys.argv[1])
out = {}
for fmt in formats:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main([*argv[:-1], "--format", fmt, argv[-1]])
    out[fmt] = [rc, buf.getvalue()]
print(json.dumps(out))
"""

# One plan (text) in a new interpreter, then the top-level packages it imported.
MODULES = """\
import contextlib, io, json, sys
from reconciler.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(json.loads(sys.argv[1]))
print(json.dumps([rc, sorted({m.split(".")[0] for m in sys.modules})]))
"""


def run_python(code: str, arg: object, env: dict[str, str]) -> Any:
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(arg)], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, str]]:
    """(temporary root, the plan's argv without --format, the environment): the example desired
    state committed in a new repository, a scratch copy of the example mox config."""
    tmp = tmp_path_factory.mktemp("example")
    repo = tmp / "repo"
    shutil.copytree(ROOT / "examples" / "desired", repo / "desired")
    shutil.copytree(ROOT / "examples" / "mox", tmp / "mox", symlinks=True)
    (tmp / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "MOX_RECONCILER_")) and k not in ("ALICE_PASSWORD", "PYTHONDONTWRITEBYTECODE")}
    when = "2026-11-29T12:00:00+00:00"
    env.update(GIT_CONFIG_GLOBAL=str(tmp / "gitconfig"), GIT_CONFIG_NOSYSTEM="1", XDG_CACHE_HOME=str(tmp / "cache"),
               ALICE_PASSWORD="example-only-not-a-secret-1", LC_ALL="C.UTF-8")
    git_env = {**env, "GIT_AUTHOR_NAME": "Example Author", "GIT_AUTHOR_EMAIL": "author@example.org",
               "GIT_COMMITTER_NAME": "Example Author", "GIT_COMMITTER_EMAIL": "author@example.org",
               "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "example desired state"]):
        subprocess.run(["git", *cmd], cwd=repo, env=git_env, check=True)
    argv = ["--config", str(tmp / "mox" / "config" / "mox.conf"), "plan", "--color", "never", "--now", NOW,
            str(repo / "desired")]
    return tmp, argv, env


def test_plan_of_the_example_matches_recorded(example: tuple[Path, list[str], dict[str, str]]) -> None:
    tmp, argv, env = example
    out = run_python(DRIVER, [list(FORMATS), argv], env)
    assert isinstance(out, dict)
    for fmt, name in FORMATS.items():
        rc, text = out[fmt]
        assert rc == 0
        text = text.replace(str(tmp), "<tmp>")
        path = EXPECTED / name
        if os.environ.get("UPDATE_GOLDEN"):
            path.write_text(text)
        assert text == path.read_text(), f"{name} differs (UPDATE_GOLDEN=1 to refresh, then review the diff)"
    assert "commit: " in out["text"][1] and "(example desired state)" in out["text"][1]  # read from the checkout


def test_plan_of_a_checkout_imports_no_package_it_does_not_use(
        example: tuple[Path, list[str], dict[str, str]]) -> None:
    """A second plan (the parse cache warm from the first) in a new interpreter."""
    _, argv, env = example
    run_python(MODULES, argv, env)  # warms the parse cache, whatever ran before
    rc, loaded = run_python(MODULES, argv, env)
    assert rc == 0
    assert "reconciler" in loaded and "pydantic" in loaded  # the check itself works
    unexpected = set(loaded) & set(NOT_IMPORTED)
    assert not unexpected, f"plan imported {sorted(unexpected)}"
