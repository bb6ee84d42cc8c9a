"""The golden mox v0.0.17 vectors (tests/fixtures/golden) and rebuilding a step's config dir."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden"
GOLDEN_STEPS = sorted(p for p in (GOLDEN / "steps").iterdir() if p.is_dir())


def golden_step(prefix: str) -> Path:
    """The step folder whose name starts with `prefix` ("00", "17-domain-enable", ...)."""
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith(prefix)]
    return step


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
