"""Wall time of each stage of one CLI run (`plan`, `apply`, ...), without a profiler's distortion:
the stages' functions are wrapped with a timer, then the CLI runs with the given arguments.

    .venv/bin/python bench/plan_stages.py --config <copy>/mox/config/mox.conf plan <copy>/mox/desired

Prints `stage=seconds ...` on stderr when the process ends (indented: a part of the stage above).
"""

from __future__ import annotations

import atexit
import functools
import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

TIMES: dict[str, float] = {}

STAGES = [  # (module, function, label), in pipeline order
    ("reconciler.desired.load", "load_desired", "load_desired"),
    ("reconciler.desired.load", "read_with_includes", "  read_with_includes"),
    ("reconciler.desired.load", "check", "  checks"),
    ("reconciler.mox.live", "read_live", "read_live"),
    ("reconciler.plan.planner", "make_plan", "make_plan"),
    ("reconciler.plan.planner", "_Planner", "  planner_init"),
    ("reconciler.mox.admin", "_build_address_index", "  addr_index"),
    ("reconciler.pipeline", "check_result", "check_result"),
    ("reconciler.pipeline", "desired_digest", "desired_digest"),
    ("reconciler.pipeline", "prepare", "prepare"),
    ("reconciler.apply.batch", "apply_batch", "apply_batch"),
    ("reconciler.apply.batch", "fold", "  fold"),
    ("reconciler.apply.batch", "_validate", "  batch_validate"),
    ("reconciler.apply.writer", "read_stable", "  read_stable"),
]
# Modules that imported a stage's function by name: their copy is replaced too.
HOLDERS = ["reconciler.pipeline", "reconciler.apply.rounds", "reconciler.apply.batch"]


def timed(label: str, f: Callable[..., Any]) -> Callable[..., Any]:
    """`f`, adding the seconds of each call to TIMES[label]."""
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            TIMES[label] = TIMES.get(label, 0.0) + time.perf_counter() - t

    return wrapper


def _wrap(module: str, name: str, label: str) -> None:
    mod = importlib.import_module(module)
    f = getattr(mod, name, None)
    if f is None:
        return
    wrapper = timed(label, f)
    setattr(mod, name, wrapper)
    for holder in HOLDERS:
        held: Any = importlib.import_module(holder)
        if getattr(held, name, None) is f:
            setattr(held, name, wrapper)


def main() -> None:
    start = time.perf_counter()
    for module, name, label in STAGES:
        _wrap(module, name, label)

    def report() -> None:
        TIMES["total"] = time.perf_counter() - start
        print(" ".join(f"{k}={v:.2f}" for k, v in TIMES.items()), file=sys.stderr)

    atexit.register(report)
    from reconciler.cli.main import entrypoint

    sys.argv[0] = "mox-reconciler"
    run: Callable[[], Any] = entrypoint
    run()


if __name__ == "__main__":
    main()
