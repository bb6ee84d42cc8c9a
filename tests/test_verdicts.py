"""A domains.conf the reconciler wrote after validating it is remembered as valid (in the cache
dir), so the next plan checks only what changes on its own; the verdicts stay those of a full
validation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.desired.cache import default_root
from reconciler.mox.live import ConfigPaths
from reconciler.pipeline import Caches

DESIRED = """\
Accounts:
  alice:
    Destinations: {alice@example.org: {}, alice@a.example: {}}
Domains:
  example.org: {ReportsAccount: alice}
  a.example: {ReportsAccount: alice, DKIM: {Selectors: {e: {Algorithm: ed25519}}, Sign: [e]}}
"""


def digest(mox_conf: Path) -> str:
    return hashlib.sha256((mox_conf.parent / "domains.conf").read_bytes()).hexdigest()


def test_written_configs_are_remembered_and_verdicts_stay_full(golden_config: Callable[[str], Path],
                                                               tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mox_conf = golden_config("01")
    paths = ConfigPaths(mox_conf)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    caches = Caches.for_cli(None, generate=False)
    assert caches.parsed == default_root(None)
    assert not caches.valid.known(paths, digest(mox_conf))
    (tmp_path / "d.yaml").write_text(DESIRED)
    assert main(["--config", str(mox_conf), "apply", "--yes", str(tmp_path / "d.yaml")]) == 0, capsys.readouterr()
    assert caches.valid.known(paths, digest(mox_conf))

    # An unchanged domain's key file is damaged, and another domain changes: the same errors
    # whether the live config is known valid (incremental) or not (full validation).
    (key,) = (mox_conf.parent / "dkim").glob("e._domainkey.a.example.*")
    key.write_bytes(b"not a key\n")
    (tmp_path / "d.yaml").write_text(DESIRED.replace("example.org: {ReportsAccount: alice}",
                                                     "example.org: {ReportsAccount: alice, Description: x}"))
    capsys.readouterr()
    assert main(["--config", str(mox_conf), "plan", str(tmp_path / "d.yaml")]) == 1
    known_err = capsys.readouterr().err
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    assert main(["--config", str(mox_conf), "plan", str(tmp_path / "d.yaml")]) == 1
    full_err = capsys.readouterr().err
    assert "domain a.example: selector e: private key has no PEM block" in full_err
    assert known_err == full_err

    (mox_conf.parent / "domains.conf").write_bytes((mox_conf.parent / "domains.conf").read_bytes() + b"\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert not caches.valid.known(paths, digest(mox_conf))  # edited by hand: not known any more
