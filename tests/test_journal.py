"""The key-file intent journal (reconciler.apply.journal) and the removal of temp files of dead
processes, on a real filesystem; the kills themselves are in tests/test_crash.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.apply import batch, journal, writer
from reconciler.fsutil import SharedDir, temp_name, temp_owner
from reconciler.mox.admin import used_key_paths
from reconciler.mox.live import ConfigPaths

from .conftest import build_step_config
from .golden import golden_step


@pytest.fixture
def paths(tmp_path: Path) -> ConfigPaths:
    return ConfigPaths(build_step_config(golden_step("01"), tmp_path / "mox"))


def dead_pid() -> int:
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                       check=True)
    return int(p.stdout)


def plant_journal(paths: ConfigPaths, pid: int, keys: list[tuple[str, bool]], base: os.stat_result,
                  process: dict[str, object] | None = None) -> Path:
    """A journal as a killed apply leaves it, and its key files."""
    for rel, _ in keys:
        (paths.config_dir / rel).write_text("-----BEGIN PRIVATE KEY-----\n")
    path = paths.config_dir / f"{journal.PREFIX}{pid}{journal.SUFFIX}"
    path.write_text(json.dumps({"version": 1, "process": process or {"pid": pid, "boot": "", "start": ""},
                                "keys": [{"path": r, "base": [base.st_dev, base.st_ino], "published": pub}
                                         for r, pub in keys]}))
    return path


def settle_dead(paths: ConfigPaths) -> None:
    snap = writer.read_stable(paths.domains_conf)
    journal.settle_dead(paths.config_dir, writer.config_dir_of(paths.config_dir), used_key_paths(snap.dynamic),
                        snap.stat, batch.mover(paths.config_dir, snap.stat))


def test_a_dead_apply_keys_never_named_are_removed_published_ones_move_to_old(paths: ConfigPaths) -> None:
    base = os.stat(paths.domains_conf)
    used = sorted(used_key_paths(writer.read_stable(paths.domains_conf).dynamic))[0]
    j = plant_journal(paths, dead_pid(), [("dkim/never.pem", False), ("dkim/was-published.pem", True)], base)
    j_used = {"path": used, "base": [base.st_dev, base.st_ino], "published": True}
    data = json.loads(j.read_text())
    j.write_text(json.dumps({**data, "keys": [*data["keys"], j_used]}))
    settle_dead(paths)
    dkim = paths.config_dir / "dkim"
    assert not (dkim / "never.pem").exists() and not (dkim / "old" / "never.pem").exists()
    assert (dkim / "old" / "was-published.pem").exists() and not (dkim / "was-published.pem").exists()
    assert (paths.config_dir / used).exists()  # named by domains.conf: stays
    assert not j.exists()


def test_an_unpublished_key_is_kept_in_old_when_domains_conf_was_replaced_since(paths: ConfigPaths) -> None:
    """Killed after the rename but before the journal said so: the file there is not the one the
    journal recorded, so the key may have been named; it is never deleted."""
    base = os.stat(paths.domains_conf)
    plant_journal(paths, dead_pid(), [("dkim/maybe.pem", False)], base)
    snap = writer.read_stable(paths.domains_conf)
    writer.replace(snap, snap.data)  # a new inode, as after our rename
    settle_dead(paths)
    assert (paths.config_dir / "dkim" / "old" / "maybe.pem").exists()


def test_the_journal_of_a_running_process_is_left_alone(paths: ConfigPaths) -> None:
    base = os.stat(paths.domains_conf)
    with subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE) as p:
        j = plant_journal(paths, p.pid, [("dkim/busy.pem", False)], base, journal.process_identity(p.pid))
        settle_dead(paths)
        assert j.exists() and (paths.config_dir / "dkim" / "busy.pem").exists()
        assert p.stdin is not None
        p.stdin.close()
    # the same pid with another start time is another process: the writer is gone
    ident = journal.process_identity(os.getpid())
    assert not journal.process_gone(ident)
    assert journal.process_gone({**ident, "start": "1"})
    assert journal.process_gone({"pid": p.pid, "boot": "", "start": ""})


def test_an_unreadable_journal_is_reported_and_left(paths: ConfigPaths, caplog: pytest.LogCaptureFixture) -> None:
    j = paths.config_dir / f"{journal.PREFIX}{dead_pid()}{journal.SUFFIX}"
    j.write_text("{not json")
    settle_dead(paths)
    assert j.exists() and "unreadable key journal, left alone" in caplog.text


def test_temp_names_and_stale_temp_files(paths: ConfigPaths) -> None:
    assert temp_owner(temp_name("domains.conf")) == os.getpid()
    assert temp_owner(".x.tmp") is None and temp_owner("domains.conf") is None and temp_owner(".a.b.c.tmp") is None
    assert temp_owner(".2026a._domainkey.example.org.20261125T162841.pem.123.456.tmp") == 123
    dead, config = dead_pid(), paths.config_dir
    stale = [config / f".mox-reconciler.inventory.json.{dead}.1.tmp", config / "dkim" / f".k.pem.{dead}.7.tmp"]
    live = [config / temp_name("mox-reconciler.status.json"), config / ".notours.tmp"]
    for f in stale + live:
        f.write_text("x")
    shared = SharedDir(config)
    assert shared.remove_stale_temps(config) == [stale[0].name]
    assert shared.remove_stale_temps(config / "dkim") == [stale[1].name]
    assert all(f.exists() for f in live) and not any(f.exists() for f in stale)
    assert shared.remove_stale_temps(config / "missing") == []


def test_an_apply_removes_what_a_killed_one_left(paths: ConfigPaths) -> None:
    """Temp files of a dead writer beside domains.conf and in the key directory, and its journal,
    are gone after the next batch, even one with nothing to write."""
    dead, config = dead_pid(), paths.config_dir
    base = os.stat(paths.domains_conf)
    leftovers = [config / f".domains.conf.{dead}.1.tmp", config / f".mox-reconciler.inventory.json.{dead}.1.tmp",
                 config / "dkim" / f".x.pem.{dead}.2.tmp"]
    for f in leftovers:
        f.write_text("x")
    j = plant_journal(paths, dead, [("dkim/x.pem", False)], base)
    res = batch.apply_batch(paths, [])
    assert not res.written
    assert not any(f.exists() for f in [*leftovers, j, config / "dkim" / "x.pem"])
