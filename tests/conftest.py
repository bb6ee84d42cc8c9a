"""Shared fixtures: golden mox v0.0.17 vectors and scratch mox config dirs built from them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from . import moxserver
from .golden import FIXTURES, GOLDEN, GOLDEN_STEPS, build_step_config, golden_step

__all__ = ["FIXTURES", "GOLDEN", "GOLDEN_STEPS", "build_step_config"]  # tests import them from here too

# Property tests must not depend on how busy the machine is: no per-example deadline, no
# "data generation too slow" health check (both measure wall-clock time). Nor on luck: the suite
# (CI) runs the same derandomized examples every time, so a red run is a change's fault, never the
# draw's. `HYPOTHESIS_PROFILE=explore` searches at random (with hypothesis's example database) to
# find new cases; a case it finds becomes an explicit test.
settings.register_profile("no-wall-clock", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                          derandomize=True, database=None)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "no-wall-clock"))


@pytest.fixture
def golden_config(tmp_path: Path) -> Callable[[str], Path]:
    """Returns a function: step name prefix (e.g. "17") -> mox.conf of a scratch copy of that step."""

    def make(prefix: str) -> Path:
        step = golden_step(prefix)
        return build_step_config(step, tmp_path / step.name)

    return make


@pytest.fixture(autouse=True)
def _no_option_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """MOX_RECONCILER_* variables of the shell running the tests would change every CLI default."""
    for name in list(os.environ):
        if name.startswith("MOX_RECONCILER_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed desired-state files and source clones are cached in the test session's own cache
    dir (shared by its tests, as runs of one user share theirs), never in the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


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


@pytest.fixture
def mox_instance() -> Iterator[Callable[[str], moxserver.MoxInstance]]:
    """Returns a function: golden step prefix (e.g. "00") -> a fresh loopback mox instance (config
    dir, data dir, free ports, admin password), not yet served; all removed after the test.
    Skips when there is no mox v0.0.17 (see tests/moxserver.py)."""
    made: list[moxserver.MoxInstance] = []

    def make(step: str = "00") -> moxserver.MoxInstance:
        made.append(moxserver.build_instance(step))
        return made[-1]

    yield make
    for instance in made:
        instance.remove()


@pytest.fixture(scope="module")
def served_mox() -> Iterator[moxserver.ServedMox]:
    """A real `mox serve` of the golden bootstrap (step 00: domain mail.example.org, account
    admin), shared by the tests of one module: give what you add names of your own. Failed
    logins count against mox's limit of 10 a minute per IP; tests with more need their own.
    Skips when mox cannot be served here (no mox v0.0.17, not root, no namespaces)."""
    reason = moxserver.serve_reason()
    if reason:
        pytest.skip(reason)
    instance = moxserver.build_instance("00")
    try:
        with moxserver.serve(instance) as served:
            yield served
    finally:
        instance.remove()
