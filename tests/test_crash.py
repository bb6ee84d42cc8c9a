"""SIGKILL a real batch process at many points: domains.conf always parses and validates, a re-run converges."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.apply import writer
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic
from reconciler.mox.live import ConfigPaths, read_static
from reconciler.mox.validate import require_valid

from .conftest import build_step_config

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


def make_instance(tmp: Path) -> ConfigPaths:
    return ConfigPaths(build_step_config(GOLDEN / "steps" / "01-domain-add-example.org", tmp))


def run(paths: ConfigPaths, slow: str | None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    if slow:
        env[writer.SLOW_ENV] = slow
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(paths.mox_conf)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def assert_valid(paths: ConfigPaths) -> Dynamic:
    dyn = sconf.parse(paths.domains_conf.read_text("utf-8"), Dynamic)
    require_valid(read_static(paths), dyn, paths.config_dir)
    return dyn


@pytest.mark.slow
def test_sigkill_anywhere_leaves_old_or_new_and_rerun_converges(tmp_path: Path) -> None:
    rng = random.Random(4)
    outcomes = {"killed": 0, "finished": 0, "old": 0, "new": 0, "orphan-keys": 0}
    for i in range(25):
        paths = make_instance(tmp_path / f"run{i}")
        original = paths.domains_conf.read_bytes()
        p = run(paths, slow="0.03")
        time.sleep(rng.uniform(0.0, 0.3) + 0.25)  # 0.25 s ~ interpreter start and imports.
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
        outcomes["killed" if p.returncode == -signal.SIGKILL else "finished"] += 1
        assert p.returncode in (0, -signal.SIGKILL), err.decode()
        dyn = assert_valid(paths)
        # Old or new, never anything in between.
        unchanged = paths.domains_conf.read_bytes() == original
        assert unchanged or "crash2.example" in dyn.Domains
        outcomes["old" if unchanged else "new"] += 1
        referenced = {s.PrivateKeyFile for d in dyn.Domains.values() for s in d.DKIM.Selectors.values()}
        on_disk = {str(f.relative_to(paths.config_dir)) for f in (paths.config_dir / "dkim").glob("*.pem")}
        outcomes["orphan-keys"] += bool(on_disk - referenced)
        # Re-run without interruption: converges to the full desired state.
        p = run(paths, slow=None)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
        dyn = assert_valid(paths)
        assert {"crash.example", "crash2.example"} <= set(dyn.Domains)
        assert "info@crash.example" in dyn.Accounts["alice"].Destinations
        assert "ed" in dyn.Domains["example.org"].DKIM.Selectors
        # A third run finds nothing to do.
        p = run(paths, slow=None)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip() == b"0", err.decode()
        assert not list(paths.config_dir.glob(".domains.conf.*.tmp"))
    # The kills landed before, during and after the write.
    assert outcomes["killed"] >= 15 and outcomes["old"] and outcomes["new"] and outcomes["orphan-keys"], outcomes
