"""Reports are artifacts: an apply writes them without an fsync each and syncs their directory
once, while domains.conf and new DKIM keys keep their fsyncs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli.main import main

DESIRED = """\
Accounts:
  alice:
    Destinations: {alice@example.org: {}, alice@a.example: {}, alice@b.example: {}, alice@c.example: {}}
Domains:
  example.org: {ReportsAccount: alice}
  a.example: {ReportsAccount: alice, DKIM: {Selectors: {e: {Algorithm: ed25519}}, Sign: [e]}}
  b.example: {ReportsAccount: alice, DKIM: {Selectors: {e: {Algorithm: ed25519}}, Sign: [e]}}
  c.example: {ReportsAccount: alice, DKIM: {Selectors: {e: {Algorithm: ed25519}}, Sign: [e]}}
"""


def test_reports_are_written_with_one_directory_sync(golden_config: Callable[[str], Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf = golden_config("01")
    reports = mox_conf.parent / "mox-reconciler.records"
    (tmp_path / "d.yaml").write_text(DESIRED)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert main(["--config", str(mox_conf), "apply", "--yes", str(tmp_path / "d.yaml")]) == 0, \
        capsys.readouterr().err
    written = sorted(p.name for p in reports.iterdir())
    assert len(written) == 3 * 3 + 1  # 3 new domains x 3 formats, and last-apply.json
    report_files = [p for p in synced if Path(p).parent == reports]
    assert report_files == []
    assert synced.count(str(reports)) == 1
    # domains.conf (its temp file) and each new key file are still synced, then their directories.
    assert any(Path(p).name.startswith(".domains.conf.") for p in synced)
    assert sum(Path(p).parent.name == "dkim" and ".pem" in Path(p).name for p in synced) == 3
