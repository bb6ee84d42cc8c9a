"""Fuzzing the two inputs an operator hands the CLI: desired-state files and plan files.

Whatever the input: no `internal error`, no traceback, an exit code of 0, 1 or 2 (with an error
on stderr for 1), and nothing written when the command refuses. Desired states are made by
mutating a real one (golden step 09's `import`): values replaced by odd ones (control
characters, line breaks, NUL, upper case, deep nesting, wrong types), keys renamed, removed or
added, or the YAML text itself cut, spliced and sprinkled with YAML's punctuation; each goes
through validate, plan and apply. Plan files are mutated copies of a real one, through
`apply --plan`.

Budget: the suite's run is a fixed, derandomized set of FUZZ_EXAMPLES examples per test (default
25): the same inputs every run, so CI never meets a new input by chance, about 10 seconds on a
busy two-core machine. `FUZZ_SECONDS=60 pytest tests/test_fuzz.py` searches at random instead, in
rounds of new seeds, for at most that many seconds in all (half per test); a failure prints the
seed that reproduces it.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from reconciler.cli.main import main
from reconciler.desired.importer import import_live
from reconciler.mox.live import locate, read_live

from .golden import build_step_config, golden_step

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SECONDS = float(os.environ.get("FUZZ_SECONDS", "0"))
_COMMON: dict[str, Any] = {"deadline": None, "database": None,
                           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


def search(body: Callable[..., None], *args: Any) -> None:
    """Run `body(*args, data=...)` as a hypothesis test: the fixed set, or short rounds of
    random seeds while the next round (as long as the last one) ends within FUZZ_SECONDS/2."""
    def test(**kwargs: Any) -> Callable[..., None]:
        return settings(**_COMMON, **kwargs)(given(data=st.data())(body))

    if not SECONDS:
        test(max_examples=EXAMPLES, derandomize=True)(*args)
        return
    end = time.monotonic() + SECONDS / 2
    last = 0.0
    while time.monotonic() + last < end:
        start = time.monotonic()
        seed(random.getrandbits(64))(test(max_examples=3, derandomize=False))(*args)
        last = time.monotonic() - start


ODD_TEXT = st.sampled_from([
    "", " ", "a b", "Example.ORG", "xn--caf-dma.example", "café.example", "a\nb", "a\r\nb", "a\x00b", "a\x01b",
    "\x1b[31m", "\t", "#", "- x", "{", "}", "[", "]", "*alias", "&anchor", "!!python/object:os.system", "..",
    "/etc/passwd", "../../x", "@", "@example.org", "x@", "a@b@c", "ß@example.org", "\u202e", "\ufeff", "0x10",
    "1e400", "-1", "null", "true", "24h", "72x", "x" * 300, "{" * 80, "[" * 80,
])
ODD = st.recursive(
    st.one_of(ODD_TEXT, st.text(max_size=12), st.integers(-(2**70), 2**70), st.floats(), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ODD_TEXT, inner, max_size=3)),
    max_leaves=6,
)
PUNCTUATION = st.sampled_from([*":{}[],-#&*!|>'\"%@`\t\n\r\x00\x01\\?", "\n  ", ": ", "- ", "{" * 70])


class Live:
    """The golden config and a desired state that matches it; a fresh copy per example."""

    def __init__(self, tmp: Path) -> None:
        self.base = tmp / "base"
        self.mox_conf = build_step_config(golden_step("09"), self.base)
        live = read_live(locate(str(self.mox_conf)))
        self.doc = import_live(live.static, live.dynamic, str(tmp / "secrets"))
        self.text = yaml.safe_dump(self.doc, allow_unicode=True, sort_keys=False)
        self.tmp = tmp
        self.n = 0

    def fresh(self) -> tuple[Path, Path]:
        """A new copy of the config dir and an empty desired-state dir."""
        self.n += 1
        where = self.tmp / f"run{self.n}"
        shutil.copytree(self.base, where / "server", symlinks=True)
        (where / "desired").mkdir(parents=True)
        return where / "server" / "config" / "mox.conf", where / "desired"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Live:
    return Live(tmp_path_factory.mktemp("fuzz"))


def contents(config_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(config_dir)): p.read_bytes() for p in sorted(config_dir.rglob("*")) if p.is_file()}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(argv))
    _, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, (argv, err)
    assert rc in (0, 1, 2), (argv, rc, err)
    if rc == 1:
        assert err.strip(), argv
    return rc, err


def check_desired(live: Live, capsys: pytest.CaptureFixture[str], text: str | bytes) -> None:
    mox_conf, desired = live.fresh()
    path = desired / "desired.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    valid, err = run(capsys, "validate", str(desired))
    if valid == 1:  # every problem of the desired state names the file, line and column
        for line in err.splitlines()[:-1]:
            assert line.startswith(f"{path}:"), line
    before = contents(mox_conf.parent)
    planned, _ = run(capsys, "--config", str(mox_conf), "plan", str(desired))
    if valid == 1:
        assert planned == 1
    applied, _ = run(capsys, "--config", str(mox_conf), "apply", "--yes", "--force",
                     "--reports-dir", str(mox_conf.parent.parent / "reports"), str(desired))
    if applied == 1:
        assert contents(mox_conf.parent) == before  # refused: nothing written
    if planned == 1:
        assert applied == 1  # what plan refuses, apply refuses


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*path, i))
    return out


def _pick(draw: st.DrawFn, data: Any) -> tuple[Any, Any]:
    """A place in `data`, drawn: its container and key."""
    path = draw(st.sampled_from([p for p in _paths(data) if p]))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    return parent, path[-1]


@st.composite
def mutated_doc(draw: st.DrawFn, doc: dict[str, Any]) -> str:
    """The desired state with a few changes: values replaced, keys renamed, removed or added."""
    data = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        parent, key = _pick(draw, data)
        action = draw(st.sampled_from(["value", "rename", "delete", "add"]))
        if action == "value":
            parent[key] = draw(ODD)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(ODD_TEXT)] = parent.pop(key)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(ODD_TEXT)] = draw(ODD)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@st.composite
def mangled_text(draw: st.DrawFn, text: str) -> str:
    """The YAML text cut, spliced and sprinkled with punctuation."""
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "cut", "truncate"]))
        if kind == "insert":
            text = text[:at] + draw(st.one_of(PUNCTUATION, ODD_TEXT)) + text[at:]
        elif kind == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        else:
            text = text[:at]
    return text


def test_fuzz_desired_state(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    def body(data: st.DataObject) -> None:
        check_desired(live, capsys, data.draw(st.one_of(mutated_doc(live.doc), mangled_text(live.text))))

    search(body)


@pytest.mark.parametrize("text", [
    "{" * 5000, "[" * 5000, "- " * 5000, "Domains:\n  x.example: {Description: a\x01b}\n", b"Domains: \xff\xfe\n",
    "Domains:\n\texample.org: {}\n", "\ufeffDomains: {}\n", "", "---\n...\n", "a: &x [*x]\n", "- 1\n- 2\n",
    "Domains: {example.org: {DKIM: {Selectors: {x: {PrivateKeyFile: \"dkim/a\\0b\"}}}}}\n",
], ids=["5000 {", "5000 [", "5000 -", "control character", "not UTF-8", "tab", "BOM", "empty", "no document",
        "alias", "a list", "NUL in a file name"])
def test_desired_state_classes(live: Live, capsys: pytest.CaptureFixture[str], text: str | bytes) -> None:
    check_desired(live, capsys, text)


@pytest.mark.parametrize("field", ["Description", "FullName"])
def test_line_breaks_that_apply_refused(live: Live, capsys: pytest.CaptureFixture[str], field: str) -> None:
    doc = copy.deepcopy(live.doc)
    doc["Accounts"]["bob"][field] = "two\nlines"
    check_desired(live, capsys, yaml.safe_dump(doc, allow_unicode=True))


# ---------------------------------------------------------------------------------------------
# Plan files


@pytest.fixture(scope="module")
def plan_file(live: Live, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    doc = copy.deepcopy(live.doc)
    doc["Domains"]["example.org"]["Description"] = "changed"
    doc["Accounts"]["bob"]["FullName"] = "Bob"
    mox_conf, desired = live.fresh()
    (desired / "d.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    out = tmp_path_factory.mktemp("planfile") / "plan.json"
    assert main(["--config", str(mox_conf), "plan", "--out", str(out), str(desired)]) == 0
    plan: dict[str, Any] = json.loads(out.read_text())
    plan["source"] = None  # nothing to re-read: each copy of the config is its own
    return plan


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), ODD_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ODD_TEXT, inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def mutated_plan(draw: st.DrawFn, plan: dict[str, Any]) -> str:
    data = copy.deepcopy(plan)
    for _ in range(draw(st.integers(1, 3))):
        parent, key = _pick(draw, data)
        if draw(st.booleans()):
            parent[key] = draw(JSONISH)
        else:
            del parent[key]
    text = json.dumps(data)
    if draw(st.booleans()):
        text = draw(mangled_text(text))
    return text


def test_fuzz_plan_files(live: Live, plan_file: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    def body(data: st.DataObject) -> None:
        text = data.draw(mutated_plan(plan_file))
        mox_conf, _ = live.fresh()
        path = mox_conf.parent.parent / "plan.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        before = contents(mox_conf.parent)
        rc, _ = run(capsys, "--config", str(mox_conf), "apply", "--yes", "--force", "--plan", str(path),
                    "--reports-dir", str(mox_conf.parent.parent / "reports"))
        if rc != 0:
            assert contents(mox_conf.parent) == before

    search(body)
