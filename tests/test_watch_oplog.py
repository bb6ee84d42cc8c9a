"""The watcher logs each operation it applied: one line each, in order, destructive ones marked
(and at warning level), so its log says what it changed weeks later."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.desired.importer import import_live
from reconciler.desired.source import resolve_source
from reconciler.loop.run import Result, Trigger
from reconciler.loop.status import StatusBook
from reconciler.loop.watch import WatchOptions, reconcile_once
from reconciler.mox.live import locate, read_live

from .golden import build_step_config, golden_step


def test_each_applied_operation_is_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    mox_conf = build_step_config(golden_step("09"), tmp_path / "server")
    live = read_live(locate(str(mox_conf)))
    doc: dict[str, Any] = import_live(live.static, live.dynamic)
    doc["Domains"]["example.org"]["Description"] = "Example"
    del doc["Accounts"]["bob"]["Destinations"]["bob.smith@example.org"]
    doc["Domains"]["example.org"]["Aliases"]["team"]["Addresses"].remove("bob@example.org")
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "d.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    opts = WatchOptions(locate(str(mox_conf)), lambda: resolve_source(str(desired)),
                        reports_dir=tmp_path / "reports")

    with caplog.at_level(logging.INFO, logger="reconciler"):
        run = reconcile_once(opts, StatusBook(tmp_path / "status.json"), Trigger.ONCE)
    assert run.result is Result.APPLIED, run.message
    lines = [(r.levelno, r.getMessage(), r.__dict__) for r in caplog.records if "] " in r.getMessage()
             and r.getMessage().startswith("apply: [")]
    assert [(level, msg) for level, msg, _ in lines] == [
        (logging.INFO, "apply: [1/3] domain/example.org: change domain example.org: Description"),
        (logging.WARNING, "apply: [2/3] DESTRUCTIVE domain/example.org: remove members bob@example.org from alias "
                          "team@example.org"),
        (logging.WARNING, "apply: [3/3] DESTRUCTIVE account/bob: remove address bob.smith@example.org"),
    ], [m for _, m, _ in lines]
    fields = lines[1][2]
    assert (fields["object"], fields["destructive"], fields["stage"]) == ("domain/example.org", True, "apply")
    # and nothing is logged per operation when nothing is applied
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="reconciler"):
        again = reconcile_once(opts, StatusBook(tmp_path / "status.json"), Trigger.ONCE)
    assert again.result is Result.UNCHANGED
    assert not any(r.getMessage().startswith("apply: [") for r in caplog.records)
    assert json.loads((tmp_path / "status.json").read_text())
