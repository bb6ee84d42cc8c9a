"""Shared fixtures: golden mox v0.0.17 vectors and scratch mox config dirs built from them."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden"
GOLDEN_STEPS = sorted(p for p in (GOLDEN / "steps").iterdir() if p.is_dir())


def build_step_config(step: Path, dest: Path) -> Path:
    """Rebuild a golden step's config dir as the golden README says; returns mox.conf's path."""
    config = dest / "config"
    shutil.copytree(GOLDEN / "instance" / "config", config)
    (dest / "data").mkdir(exist_ok=True)
    shutil.copyfile(step / "domains.conf", config / "domains.conf")
    for line in (step / "dkim-files.txt").read_text().splitlines():
        if not line.strip():
            continue
        rel = line.split()[0]
        target = config / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GOLDEN / "dkim-keys" / Path(rel).name, target)
    return config / "mox.conf"


@pytest.fixture
def golden_config(tmp_path: Path) -> Callable[[str], Path]:
    """Returns a function: step name prefix (e.g. "17") -> mox.conf of a scratch copy of that step."""

    def make(prefix: str) -> Path:
        (step,) = [s for s in GOLDEN_STEPS if s.name.startswith(prefix)]
        return build_step_config(step, tmp_path / step.name)

    return make


@pytest.fixture(autouse=True)
def _reset_reconciler_logger() -> Iterator[None]:
    """cli.main installs handlers and a level on the 'reconciler' logger; undo that after each
    test so later tests' caplog sees every record, whatever order the tests run in."""
    yield
    logger = logging.getLogger("reconciler")
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


@pytest.fixture
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config, no real cache directory, no secrets from the environment."""
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[user]\n\tname = Test Author\n\temail = author@example.org\n"
                   "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for name in list(os.environ):
        if any(w in name.upper() for w in ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL")):
            monkeypatch.delenv(name)
