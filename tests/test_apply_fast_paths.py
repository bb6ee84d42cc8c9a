"""The apply's fast paths give exactly what the slow ones give: domains.conf not parsed again
under the lock when it still holds the bytes the plan read, and the plan's checked result
validated again only in its key files. Compared with a batch of the same operations that
parses and validates in full, on golden configs (mox's own files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import pipeline
from reconciler.apply import writer
from reconciler.apply.batch import apply_batch
from reconciler.desired.importer import import_files
from reconciler.desired.source import resolve_source
from reconciler.mox import sconf
from reconciler.mox.admin import now_local
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.pipeline import Caches, Verdicts, _config_ops, apply_prepared, prepare

from .conftest import build_step_config
from .golden import golden_step

NEW = ("Domains:\n  new.example:\n    ReportsAccount: bob\n"
       "    DKIM: {Selectors: {ed: {Algorithm: ed25519}}, Sign: [ed]}\n")


def _config(tmp_path: Path, step: str, name: str) -> ConfigPaths:
    return ConfigPaths(build_step_config(golden_step(step), tmp_path / name))


def _desired(tmp_path: Path, paths: ConfigPaths, extra: str) -> Path:
    """The live config as `import` writes it, plus `extra` (a file of its own)."""
    live = read_live(paths)
    d = tmp_path / "desired"
    d.mkdir(exist_ok=True)
    for name, text in import_files(live.static, live.dynamic).items():
        (d / name).write_text(text)
    (d / "extra.yaml").write_text(extra)
    return d


@pytest.fixture
def domains_conf_parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths sconf parses a domains.conf of, from here on."""
    seen: list[str] = []
    real = sconf.parse_bytes

    def counting(data: bytes, cls: Any, path: str = "") -> Any:
        if path.endswith("domains.conf"):
            seen.append(path)
        return real(data, cls, path)

    monkeypatch.setattr(sconf, "parse_bytes", counting)
    yield seen


@pytest.mark.parametrize("step", ["13", "17"])
def test_fast_apply_writes_the_bytes_of_a_full_parse_and_validation(
        step: str, tmp_path: Path, domains_conf_parses: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _config(tmp_path, step, "fast"), _config(tmp_path, step, "slow")
    source = resolve_source(str(_desired(tmp_path, fast, NEW)))
    now = now_local()
    caches = Caches()
    try:
        prepared = prepare(fast, source, now=now, caches=caches)
        assert not prepared.plan.empty
        domains_conf_parses.clear()
        full: list[object] = []
        monkeypatch.setattr(pipeline, "require_valid", lambda *a, **k: full.append(a))
        outcome = apply_prepared(prepared)
    finally:
        caches.close()
    assert outcome.written
    assert domains_conf_parses == []  # the plan's parse served the batch and the key journal
    assert full == []  # the plan's checked result: only its key files were checked again
    monkeypatch.undo()

    ops, _ = _config_ops(prepared.plan.operations, [])
    done = apply_batch(slow, ops, now=now)  # parses under the lock, validates in full
    assert done.written
    assert slow.domains_conf.read_bytes() == fast.domains_conf.read_bytes()
    assert done.keys_created == outcome.keys_created


def test_a_file_this_writer_wrote_keeps_the_bytes_of_unchanged_entries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second apply writes over the first one's file (recorded as ours in the cache dir):
    only the changed entries are written again, and the file equals a full write's."""
    fast, slow = _config(tmp_path, "17", "fast"), _config(tmp_path, "17", "slow")
    desired = _desired(tmp_path, fast, NEW)
    caches = Caches(valid=Verdicts(tmp_path / "cache" / "valid"), written=Verdicts(tmp_path / "cache" / "written"))
    reused: list[bytes] = []
    real = sconf.write_bytes_reusing

    def spy(cfg: Any, before: bytes, parsed: Any) -> bytes:
        reused.append(before)
        return real(cfg, before, parsed)

    monkeypatch.setattr(sconf, "write_bytes_reusing", spy)
    try:
        for i, extra in enumerate([NEW, NEW + "  newer.example: {ReportsAccount: alice}\n"]):
            (desired / "extra.yaml").write_text(extra)
            now = now_local()
            before = fast.domains_conf.read_bytes()
            prepared = prepare(fast, resolve_source(str(desired)), now=now, caches=caches)
            assert apply_prepared(prepared).written
            assert reused == [before] * i  # the first file is mox's (not known as ours): written in full
            ops, _ = _config_ops(prepared.plan.operations, [])
            assert apply_batch(slow, ops, now=now).written
            assert slow.domains_conf.read_bytes() == fast.domains_conf.read_bytes()
    finally:
        caches.close()


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    paths = _config(tmp_path, "17", "mox")
    before = writer.read_stable(paths.domains_conf)
    assert writer.read_stable(paths.domains_conf, known=[(before.data, before.dynamic)]).dynamic is before.dynamic
    paths.domains_conf.write_bytes(before.data.replace(b"\tadmin:\n", b"\tadmin:\n\t\tDescription: x\n"))
    again = writer.read_stable(paths.domains_conf, known=[(before.data, before.dynamic)])
    assert again.dynamic is not before.dynamic
    assert again.dynamic.Accounts["admin"].Description == "x"
