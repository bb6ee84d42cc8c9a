"""SIGKILL a real batch process at every named checkpoint of the write protocol: domains.conf
always parses and validates (the old file or the new one, never anything in between), and a re-run
converges.

The child stops at the checkpoint the test names (`writer.STOP_ENV`), says so on stderr and waits;
the test kills it on that marker, so every window is hit on any machine, busy or not.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.apply import writer
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic
from reconciler.mox.live import ConfigPaths, read_static
from reconciler.mox.validate import require_valid

from .conftest import build_step_config

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "fixtures" / "golden"

# Applies whatever part of the desired change is still missing (a tiny planner), as one batch.
SCRIPT = r"""
import sys
from datetime import UTC, datetime
from pathlib import Path
from reconciler.apply import batch
from reconciler.apply import writer
from reconciler.mox.live import ConfigPaths
from reconciler.mox.admin import AddressAdd, DKIMAdd, DomainAdd

paths = ConfigPaths(Path(sys.argv[1]))
dyn = writer.read_stable(paths.domains_conf).dynamic
ops = []
if "crash.example" not in dyn.Domains:
    ops.append(DomainAdd("crash.example", "alice"))
if "crash2.example" not in dyn.Domains:
    ops.append(DomainAdd("crash2.example", "alice"))
if "info@crash.example" not in dyn.Accounts["alice"].Destinations:
    ops.append(AddressAdd("info@crash.example", "alice"))
if "ed" not in dyn.Domains["example.org"].DKIM.Selectors:
    ops.append(DKIMAdd("example.org", "ed", "ed25519"))
# A fixed clock: a re-run in the same second must cope with key files of the killed run.
now = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
print(len(ops), flush=True)
batch.apply_batch(paths, ops, now=now, workers=1)
"""

# Where each checkpoint lies: before domains.conf is replaced (the old file stays) or after.
# A checkpoint missing here is still killed at and checked for "old or new, valid, converges".
SIDE = {"key-file": "old", "before-temp": "old", "before-rename": "old", "after-rename": "new",
        "after-commit": "new"}
# Stops: the first time at each checkpoint, and the second key file (one key already written).
STOPS = [*writer.CHECKPOINTS, "key-file:2"]


def checkpoint_calls() -> set[str]:
    """The names of every `checkpoint("...")` call in the package, read from the source."""
    names = set()
    for path in (ROOT / "reconciler").rglob("*.py"):
        text = path.read_text()
        if "checkpoint(" not in text:
            continue
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "checkpoint":
                (arg,) = node.args
                assert isinstance(arg, ast.Constant), f"{path}:{node.lineno}: checkpoint names are literals"
                names.add(arg.value)
    return names


def test_every_checkpoint_in_the_code_is_listed() -> None:
    assert checkpoint_calls() == set(writer.CHECKPOINTS)


def make_instance(tmp: Path) -> ConfigPaths:
    return ConfigPaths(build_step_config(GOLDEN / "steps" / "01-domain-add-example.org", tmp))


def run(paths: ConfigPaths, stop_at: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != writer.STOP_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if stop_at:
        env[writer.STOP_ENV] = stop_at
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(paths.mox_conf)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_at(paths: ConfigPaths, stop_at: str) -> None:
    """Run until the child reports the checkpoint, then SIGKILL it there."""
    p = run(paths, stop_at)
    assert p.stderr is not None
    name, _, nth = stop_at.partition(":")
    marker = f"checkpoint {name}:{nth or 1}\n"
    seen = []
    for line in p.stderr:  # blocks until the child writes; EOF if it ends without reaching the point
        seen.append(line)
        if line == marker:
            break
    p.send_signal(signal.SIGKILL)
    p.communicate()
    assert marker in seen, f"the child never reached {stop_at}:\n{''.join(seen)}"
    assert p.returncode == -signal.SIGKILL


def assert_valid(paths: ConfigPaths) -> Dynamic:
    dyn = sconf.parse(paths.domains_conf.read_text("utf-8"), Dynamic)
    require_valid(read_static(paths), dyn, paths.config_dir)
    return dyn


def key_files(paths: ConfigPaths) -> tuple[set[str], set[str]]:
    dyn = sconf.parse(paths.domains_conf.read_text("utf-8"), Dynamic)
    referenced = {s.PrivateKeyFile for d in dyn.Domains.values() for s in d.DKIM.Selectors.values()}
    on_disk = {str(f.relative_to(paths.config_dir)) for f in (paths.config_dir / "dkim").glob("*.pem")}
    return referenced, on_disk


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", STOPS)
def test_sigkill_at_checkpoint_leaves_old_or_new_and_rerun_converges(tmp_path: Path, stop_at: str) -> None:
    paths = make_instance(tmp_path)
    original = paths.domains_conf.read_bytes()
    _, keys_before = key_files(paths)
    kill_at(paths, stop_at)

    # Old or new, never anything in between; always valid.
    dyn = assert_valid(paths)
    unchanged = paths.domains_conf.read_bytes() == original
    assert unchanged or {"crash.example", "crash2.example"} <= set(dyn.Domains)
    side = SIDE.get(stop_at.partition(":")[0])
    if side is not None:
        assert unchanged == (side == "old")
    referenced, on_disk = key_files(paths)
    if stop_at in ("key-file:2", "before-temp", "before-rename"):
        assert on_disk - keys_before - referenced, "a key file written before the kill (an orphan)"
    if stop_at == "key-file":
        assert on_disk == keys_before  # killed before the first key file

    # Re-run without interruption: converges to the full desired state.
    p = run(paths)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    dyn = assert_valid(paths)
    assert {"crash.example", "crash2.example"} <= set(dyn.Domains)
    assert "info@crash.example" in dyn.Accounts["alice"].Destinations
    assert "ed" in dyn.Domains["example.org"].DKIM.Selectors
    # A third run finds nothing to do.
    p = run(paths)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and out.strip() == "0", err
    assert not list(paths.config_dir.glob(".domains.conf.*.tmp"))
