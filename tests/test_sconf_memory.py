"""sconf's fast reader leaves nothing behind for the cyclic collector: the one-shot verbs run
without it (`cli.main.entrypoint`), so the lines of a domains.conf held in a cycle stayed for the
whole run (32 MB at 10,000 domains, once more for each read of the file in an apply)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.mox import sconf
from reconciler.mox.config import Dynamic

STEPS = Path(__file__).resolve().parent / "fixtures" / "golden" / "steps"


@pytest.fixture
def no_collector() -> Iterator[None]:
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()


def test_reading_a_config_leaves_no_cycle_holding_its_lines(no_collector: None) -> None:
    text = max((p.read_text() for p in STEPS.rglob("domains.conf")), key=len)
    lines = text.count("\n")
    assert lines > 20
    dyn = sconf.parse(text, Dynamic)
    assert dyn.Domains
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector would free is kept in gc.garbage to be looked at
    gc.collect()
    held = [o for o in gc.garbage if isinstance(o, list) and len(o) >= lines // 2]
    assert held == []
