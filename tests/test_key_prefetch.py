"""The keys of the domains an apply will add start before the plan names them (the planner takes
seconds at 1,000 domains): each prefetched key goes to the first request of its kind, with that
request's name and Note; none is generated twice, and those no request takes are never written."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler import pipeline
from reconciler.apply import keymaker
from reconciler.apply.keymaker import KeyMaker
from reconciler.desired.importer import import_files
from reconciler.desired.source import resolve_source
from reconciler.mox import keygen
from reconciler.mox.keyfiles import RSA, key_kind, parse_dkim_pem
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.pipeline import Caches, apply_prepared, prepare
from reconciler.plan import planner
from reconciler.plan.planner import Plan, PlanInput

from .conftest import build_step_config
from .golden import golden_step

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The kind of every key generated from here on."""
    kinds: list[str] = []
    lock = threading.Lock()
    real = keymaker._generate

    def counting(kind: str) -> bytes:
        with lock:
            kinds.append(kind)
        return real(kind)

    monkeypatch.setattr(keymaker, "_generate", counting)
    yield kinds


def _reqs(kind: str, n: int) -> list[keygen.KeyRequest]:
    return [keygen.KeyRequest(f"s{i}", "example.org", kind, NOW) for i in range(n)]


def test_prefetched_keys_go_to_requests_of_their_kind(generated: list[str]) -> None:
    with KeyMaker(2) as maker:
        maker.prefetch(keygen.ED25519, 3)
        maker.prefetch(keygen.ED25519, 3)  # asked again (a watcher's next run): none added
        assert maker.spare() == 3
        rsa = maker.pems(_reqs(keygen.RSA2048, 1))  # another kind: a key of its own
        assert maker.spare() == 3
        want = _reqs(keygen.ED25519, 2)
        pems = maker.pems(want)
        assert maker.spare() == 1
    assert sorted(generated) == sorted([keygen.ED25519] * 3 + [keygen.RSA2048])
    assert [p.decode().splitlines()[1] for p in pems] == [f"Note: {r.note()}" for r in want]
    assert len(set(pems)) == 2
    assert key_kind(parse_dkim_pem(rsa[0])) == RSA


def test_discard_drops_spare_keys(generated: list[str]) -> None:
    with KeyMaker(2) as maker:
        maker.prefetch(keygen.ED25519, 2)
        maker.discard()
        assert maker.spare() == 0
        maker.pems(_reqs(keygen.ED25519, 1))  # a new key, not a dropped one
        assert maker.spare() == 0
    assert len(generated) <= 3


def test_one_worker_prefetches_nothing(generated: list[str]) -> None:
    with KeyMaker(1) as maker:
        maker.prefetch(keygen.RSA2048, 4)
        assert maker.spare() == 0
    assert generated == []


def _desired_with_new_domains(tmp_path: Path, paths: ConfigPaths, names: list[str]) -> Path:
    live = read_live(paths)
    d = tmp_path / "desired"
    d.mkdir()
    for name, text in import_files(live.static, live.dynamic).items():
        (d / name).write_text(text)
    (d / "new.yaml").write_text("Domains:\n" + "".join(f"  {n}:\n    ReportsAccount: bob\n" for n in names))
    return d


def test_an_apply_generates_each_new_domains_keys_once(
        tmp_path: Path, generated: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two new domains: four RSA keys start before the plan, the plan's four requests take them,
    and the four key files written carry the names DomainAdd gives them."""
    paths = ConfigPaths(build_step_config(golden_step("17"), tmp_path / "config"))
    desired = _desired_with_new_domains(tmp_path, paths, ["one.example", "two.example"])
    caches = Caches(maker=KeyMaker(2))
    assert caches.maker is not None
    spare_when_planning: list[int] = []
    real_make_plan = planner.make_plan

    def make_plan(inp: PlanInput) -> Plan:
        assert caches.maker is not None
        spare_when_planning.append(caches.maker.spare())
        return real_make_plan(inp)

    monkeypatch.setattr(pipeline, "make_plan", make_plan)
    try:
        prepared = prepare(paths, resolve_source(str(desired)), caches=caches)
        assert spare_when_planning == [4]  # started before the planner named them
        assert caches.maker.spare() == 0  # all taken by the plan's requests
        assert len(prepared.plan.key_requests) == 4
        outcome = apply_prepared(prepared)
    finally:
        caches.close()
    assert outcome.written
    assert generated == [keygen.RSA2048] * 4
    for req in prepared.plan.key_requests:
        pem = (paths.config_dir / req.path).read_bytes()
        assert pem.decode().splitlines()[1] == f"Note: {req.note()}"
        assert key_kind(parse_dkim_pem(pem)) == RSA


def test_asking_for_fewer_cancels_the_surplus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first guess that was too high: the keys not started are cancelled, never generated."""
    release = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def held(kind: str) -> bytes:
        with lock:
            started.append(kind)
        release.wait(30)
        return b"key"

    monkeypatch.setattr(keymaker, "_generate", held)
    with KeyMaker(2) as maker:
        maker.prefetch(keygen.ED25519, 5)  # two start, three wait
        maker.prefetch(keygen.ED25519, 1)
        assert maker.spare() == 1
        release.set()
    assert len(started) == 2


def _with_new_domains(tmp_path: Path, hide_domains: bool) -> tuple[ConfigPaths, Path]:
    paths = ConfigPaths(build_step_config(golden_step("17"), tmp_path / "config"))
    desired = _desired_with_new_domains(tmp_path, paths, ["one.example", "two.example"])
    if hide_domains:  # a hand-written domains.conf: a comment first ends the scan's Domains block
        conf = paths.domains_conf
        conf.write_bytes(conf.read_bytes().replace(b"Domains:\n", b"Domains:\n# by hand\n", 1))
    return paths, desired


@pytest.mark.parametrize("hide_domains", [False, True], ids=["as-mox-writes-it", "scan-finds-no-domain"])
def test_keys_start_before_domains_conf_is_parsed(
        tmp_path: Path, generated: list[str], monkeypatch: pytest.MonkeyPatch, hide_domains: bool) -> None:
    """The names in domains.conf's bytes tell which desired domains are new before the parse
    (a second at 10,000 domains); the parsed names then make the count exact. A file whose
    layout hides its domains from that scan makes every desired domain look new: at most
    EARLY_KEYS keys start on that guess, and the surplus is cancelled after the parse."""
    from reconciler.mox import live

    paths, desired = _with_new_domains(tmp_path, hide_domains)
    monkeypatch.setattr(pipeline, "EARLY_KEYS", 6)
    caches = Caches(maker=KeyMaker(2))
    assert caches.maker is not None
    at_parse: list[int] = []
    real_parse = live.parse_dynamic

    def parse(data: bytes, path: Path) -> Any:
        assert caches.maker is not None
        at_parse.append(caches.maker.spare())
        return real_parse(data, path)

    monkeypatch.setattr(live, "parse_dynamic", parse)
    try:
        prepared = prepare(paths, resolve_source(str(desired)), caches=caches)
        n_live = len(read_live(paths).dynamic.Domains)
        assert at_parse[:1] == [6 if hide_domains else 4]  # (2 + n_live) * 2 keys, bounded to 6
        assert n_live * 2 + 4 > 6
        assert caches.maker.spare() == 0  # the plan's 4 requests took the 4 spares left
        assert len(prepared.plan.key_requests) == 4
    finally:
        caches.close()
    assert len(generated) <= 6


def test_the_scan_of_a_file_that_is_not_sconf_finds_nothing_and_never_fails() -> None:
    """The parse reports such a file (LiveUnreadable); the scan before it must not fail first."""
    from reconciler.mox import sconf

    assert sconf.entry_names(b"Domains:\n\tnot valid sconf\n", "Domains") == []
    assert sconf.entry_names(b"\x00\xff", "Domains") == []
    assert sconf.entry_names(b"Domains:\n\ta.example:\n\t\tX: 1\n\tb\n", "Domains") == []
    assert sconf.entry_names(b"Domains:\n\ta.example: nil\nAccounts:\n\tx: nil\n", "Domains") == ["a.example"]
