"""A watcher run with nothing changed is answered from the plan memo (`reconciler.planmemo`) and
ends exactly as a planned run would (result, status file, logs, drift, suspension); any changed
input makes the next run plan again; the revision is the desired state's digest as before, taken
from the plan instead of a second read of every file.

The real watcher run (`reconcile_once`, as the loop calls it) on a scratch copy of the bundled
example, real files, real git. `prepare` is counted: a run answered from the memo never plans.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import planmemo
from reconciler.cli.main import main
from reconciler.desired.importer import import_files
from reconciler.desired.source import Source, resolve_source
from reconciler.loop import watch
from reconciler.loop.run import Result, RunResult, Trigger
from reconciler.loop.status import StatusBook
from reconciler.loop.watch import WatchOptions, reconcile_once
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic
from reconciler.mox.live import locate, read_live
from reconciler.pipeline import Caches, desired_digest
from reconciler.planmemo import PlanMemo

ROOT = Path(__file__).resolve().parent.parent
HIT = "nothing changed since the plan of"
SECRET = "Bearer hook-secret-4711"
# What a run reports about the plan and the live config (not when or why it ran).
SAME = ("result", "reason", "stage", "message", "revision", "commit", "source", "counts", "plan_checksum",
        "objects_managed", "drift", "suspended", "summary", "operations", "rotation", "confirmation")
STATUS_SAME = ("result", "reason", "stage", "error", "counts", "plan_checksum", "objects_managed", "drift_detected",
               "suspended", "summary", "operations", "confirmation", "last_attempted_revision",
               "last_applied_revision", "commit", "source", "conditions")


@dataclass
class World:
    tmp: Path
    mox_conf: Path
    desired: Path
    secret: Path
    caplog: pytest.LogCaptureFixture
    monkeypatch: pytest.MonkeyPatch
    plans: list[str] = field(default_factory=list)  # one entry per `prepare` (a planned run)
    resolve: Callable[[], Source] = field(init=False)

    def __post_init__(self) -> None:
        self.resolve = lambda: resolve_source(str(self.desired), cache_dir=self.tmp / "cache")

    @property
    def config_dir(self) -> Path:
        return self.mox_conf.parent

    def opts(self, **kw: Any) -> WatchOptions:
        base: dict[str, Any] = {"caches": Caches.for_cli(self.tmp / "cache", generate=True),
                                "memo": PlanMemo.for_cli(self.tmp / "cache"), "suspend_file": self.tmp / "suspend",
                                "reports_dir": self.tmp / "reports"}
        base.update(kw)
        return WatchOptions(locate(str(self.mox_conf)), self.resolve, **base)

    def run(self, opts: WatchOptions, status: str = "status.json") -> RunResult:
        self.caplog.clear()
        with self.caplog.at_level(logging.INFO, logger="reconciler"):
            return reconcile_once(opts, StatusBook(self.tmp / status), Trigger.RESYNC)

    def recalled(self) -> bool:
        return any(HIT in r.getMessage() for r in self.caplog.records)

    def status(self, name: str = "status.json") -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.tmp / name).read_text())
        return data

    def lines(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records]

    def count_parses(self) -> list[str]:
        """From now on, one entry per parse of domains.conf."""
        parses: list[str] = []
        real = sconf.parse_bytes

        def counted(data: bytes, kind: Any, *a: Any, **kw: Any) -> Any:
            if kind is Dynamic:
                parses.append("domains.conf")
            return real(data, kind, *a, **kw)

        self.monkeypatch.setattr(sconf, "parse_bytes", counted)
        return parses


def import_live(mox_conf: Path, desired: Path) -> None:
    """The desired state `import` writes for the live config: nothing to do at first."""
    live = read_live(locate(str(mox_conf)))
    desired.mkdir()
    for name, text in import_files(live.static, live.dynamic).items():
        (desired / name).write_text(text)


@pytest.fixture
def world(tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # Files the test wrote before a run count as settled (the memo keeps no plan that read a file
    # changed within SETTLED seconds of its start: in use, two seconds).
    monkeypatch.setattr(planmemo, "SETTLED", 0.0)
    shutil.copytree(ROOT / "examples" / "mox", tmp_path / "mox")
    (tmp_path / "mox" / "data").mkdir(exist_ok=True)
    mox_conf = tmp_path / "mox" / "config" / "mox.conf"
    desired = tmp_path / "desired"
    import_live(mox_conf, desired)
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    with (desired / "accounts.yaml").open("a") as f:  # a new account, its webhook's secret in a file
        f.write("  bob:\n    Domain: example.com\n    Destinations:\n      bob@example.com: {}\n"
                "    OutgoingWebhook:\n      URL: https://hooks.example/bob\n"
                f"      Authorization: {{File: {secret}}}\n")
    w = World(tmp_path, mox_conf, desired, secret, caplog, monkeypatch)
    real = vars(watch)["prepare"]  # counted where the watcher calls it

    def counted(*a: Any, **kw: Any) -> Any:
        w.plans.append("prepare")
        return real(*a, **kw)

    monkeypatch.setattr(watch, "prepare", counted)
    first = w.run(w.opts())
    assert first.result is Result.APPLIED, first.message
    yield w


def same(a: RunResult, b: RunResult) -> None:
    assert {k: getattr(a, k) for k in SAME} == {k: getattr(b, k) for k in SAME}


def status_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    def strip(d: dict[str, Any]) -> dict[str, Any]:
        out = {k: d.get(k) for k in STATUS_SAME}
        out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in d["conditions"]]
        return out
    assert strip(a) == strip(b)


def test_a_run_with_nothing_changed_is_answered_from_the_memo_as_a_planned_run_ends(world: World) -> None:
    opts = world.opts()
    planned = world.run(opts)  # plans (the first run applied: its plan had operations, no memo)
    assert world.plans == ["prepare", "prepare"] and not world.recalled()
    planned_status = world.status()
    planned_lines = world.lines()
    parses = world.count_parses()
    recalled = world.run(opts)
    assert world.plans == ["prepare", "prepare"] and world.recalled()  # answered without a plan
    assert parses == []  # domains.conf as the last run left it, kept parsed for mox's confirmation
    assert recalled.result is Result.UNCHANGED and recalled.reason == "ReconciliationSucceeded"
    same(recalled, planned)
    status_same(world.status(), planned_status)
    assert recalled.objects_managed == {"domain": 1, "account": 2}
    # The same lines, the memo's own aside: fetch, plan, apply (mox's confirmation).
    assert [m for m in world.lines() if HIT not in m] == planned_lines
    # And the same as a watcher without any memo, in a status file of its own.
    fresh = world.run(world.opts(memo=None), "fresh.json")
    assert world.plans == ["prepare"] * 3 and not world.recalled()
    same(recalled, fresh)
    # A new watcher process (nothing kept in memory) is answered from the memo too; it parses
    # domains.conf once (for mox's confirmation), as the plan would.
    parses = world.count_parses()
    again = world.run(world.opts())
    assert world.plans == ["prepare"] * 3 and world.recalled() and parses == ["domains.conf"]
    same(again, planned)


def test_a_suspended_run_with_nothing_changed_is_answered_from_the_memo(world: World) -> None:
    opts = world.opts()
    (world.tmp / "suspend").touch()
    planned = world.run(opts)
    recalled = world.run(opts)
    assert world.plans == ["prepare", "prepare"] and world.recalled()
    assert recalled.suspended and recalled.message == "suspended; nothing to apply"
    same(recalled, planned)


def _desired(w: World) -> None:
    with (w.desired / "accounts.yaml").open("a") as f:
        f.write("# a comment changes no object, but the revision\n")


def _domains_conf_by_a_user(w: World) -> None:
    conf = w.config_dir / "domains.conf"
    conf.write_text(conf.read_text().replace("\t\t\tadmin@example.com: nil\n",
                                             "\t\t\tadmin@example.com: nil\n\t\t\tpostmaster2@example.com: nil\n", 1))


def _domains_conf_by_mox(w: World) -> None:
    # mox writes its config in place, as sconf formats it: the same objects, other bytes here
    conf = w.config_dir / "domains.conf"
    conf.write_bytes(conf.read_bytes() + b"\n")


def _inventory(w: World) -> None:
    path = w.config_dir / "mox-reconciler.inventory.json"
    inv = json.loads(path.read_text())
    inv["commit"] = {"sha": "0" * 40}
    path.write_text(json.dumps(inv))


def _secret(w: World) -> None:
    w.secret.write_text("Bearer another-secret\n")


CHANGES: dict[str, Callable[[World], None]] = {
    "desired file": _desired, "domains.conf by a user": _domains_conf_by_a_user,
    "domains.conf by mox": _domains_conf_by_mox, "inventory": _inventory, "secret": _secret,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_changed_input_makes_the_next_run_plan_again(world: World, change: str) -> None:
    opts = world.opts()
    before = world.run(opts)
    world.run(opts)
    assert world.recalled()
    n = len(world.plans)
    CHANGES[change](world)
    after = world.run(opts)
    assert len(world.plans) == n + 1 and not world.recalled(), change
    fresh = world.run(world.opts(memo=None), "fresh.json")  # what a watcher without a memo finds
    if change == "domains.conf by a user":
        assert after.result is Result.APPLIED and after.drift and fresh.result is Result.UNCHANGED
    else:
        same(after, fresh)
        assert after.result is Result.UNCHANGED
        assert (after.revision != before.revision) == (change == "desired file")


def test_a_run_for_another_time_never_uses_the_memo(world: World) -> None:
    start = datetime.fromisoformat("2027-01-01T00:00:00+00:00")
    opts = world.opts(clock=lambda: start + timedelta(seconds=len(world.plans)))
    for _ in range(3):
        assert world.run(opts).result is Result.UNCHANGED and not world.recalled()
    assert len(world.plans) == 4


@pytest.mark.parametrize("moved", ["domains.conf", "inventory"])
def test_a_change_between_the_recall_and_the_apply_is_planned_and_applied(world: World, moved: str) -> None:
    """domains.conf or the inventory changed after the memo was checked, before the lock: the
    batch finds it, writes nothing for the recalled plan, and the run plans again and applies."""
    opts = world.opts()
    world.run(opts)
    conf = world.config_dir / "domains.conf"
    inventory = world.config_dir / "mox-reconciler.inventory.json"

    def change_once() -> None:  # the heartbeat of each stage: change it as the safety check starts
        if not changed and world.caplog.records and world.recalled():
            changed.append(True)
            if moved == "domains.conf":
                _domains_conf_by_a_user(world)
            else:
                inv = json.loads(inventory.read_text())
                inv["objects"] = [o for o in inv["objects"] if o != "account/admin"]
                inventory.write_text(json.dumps(inv))

    changed: list[bool] = []
    run = world.run(watch_opts := world.opts(heartbeat=change_once))
    assert changed and world.recalled() and len(world.plans) == 3
    assert any("changed since the remembered plan; planning again" in m for m in world.lines())
    if moved == "domains.conf":
        assert run.result is Result.APPLIED and run.drift
        assert "postmaster2@example.com" not in conf.read_text()
    else:
        assert run.result is Result.UNCHANGED  # the plan adopts admin again; the inventory says so
        assert "account/admin" in json.loads(inventory.read_text())["objects"]
    assert world.run(watch_opts).ok


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _old_revision(source: Source) -> str:
    """The revision as the watcher took it before it was taken from the plan: every file read
    again (`desired_digest` of the source's path)."""
    if source.commit is None:
        return f"sha256:{desired_digest(source.path)[:16]}"
    if source.dirty:
        return f"{source.commit.sha}+dirty.sha256:{desired_digest(source.path)[:16]}"
    return source.commit.sha


@pytest.mark.usefixtures("isolated_git")
@pytest.mark.parametrize("kind", ["plain directory", "dirty checkout", "clean commit"])
def test_the_revision_is_the_one_read_from_the_files(world: World, kind: str) -> None:
    """Logged (the fetch line's field), in the status file and in the run, with and without the
    memo: the same value as reading every file again, included ones too."""
    shared = world.tmp / "repo" / "shared" if kind != "plain directory" else world.desired / "shared"
    if kind != "plain directory":
        shutil.move(world.desired, world.tmp / "repo")
        world.desired = world.tmp / "repo" / "desired"
        shutil.move(world.tmp / "repo", world.tmp / "staging")
        (world.tmp / "repo").mkdir()
        shutil.move(world.tmp / "staging", world.desired)
        _git(world.tmp / "repo", "init", "-q")
    shared.mkdir()
    (shared / "extra.yaml").write_text("# included: part of the digest\n{}\n")
    with (world.desired / "accounts.yaml").open("a") as f:
        f.write(f"Include: {'shared' if kind == 'plain directory' else '../shared'}\n")
    if kind != "plain directory":
        _git(world.tmp / "repo", "add", "-A")
        _git(world.tmp / "repo", "commit", "-q", "-m", "desired")
        if kind == "dirty checkout":
            (shared / "extra.yaml").write_text("# included, changed: not committed\n{}\n")
    source = world.resolve()
    assert (source.commit is None, source.dirty) == {"plain directory": (True, False), "dirty checkout": (
        False, True), "clean commit": (False, False)}[kind]
    want = _old_revision(source)
    opts = world.opts()
    for recalled in (False, True):
        run = world.run(opts)
        assert run.ok and world.recalled() == recalled, run.message
        assert run.revision == want and world.status()["last_attempted_revision"] == want
        fetch = [r for r in world.caplog.records if r.getMessage().startswith("fetch: ")]
        assert len(fetch) == 1 and fetch[0].__dict__["revision"] == want
    # A failed plan still names the revision (read from the files, as it was).
    (world.desired / "bad.yaml").write_text("Domains: [\n")
    failed = world.run(opts)
    assert failed.reason == "DesiredInvalid" and failed.revision == _old_revision(world.resolve())
    assert any(r.getMessage().startswith("fetch: ") for r in world.caplog.records)


def test_watch_once_keeps_and_recalls_memos_in_its_cache_dir(world: World,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["-v", "--config", str(world.mox_conf), "watch", "--once", "--cache-dir", str(world.tmp / "cli-cache"),
            "--reports-dir", str(world.tmp / "reports"), str(world.desired)]
    for expect_hit in (False, True):
        capsys.readouterr()
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert (HIT in err) == expect_hit, err
    assert list((world.tmp / "cli-cache").glob("plans/*/*.json"))


def test_a_run_answered_from_the_memo_is_confirmed_by_the_running_mox(
        served_mox: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """With mox serving: the recalled run asks mox whether it holds domains.conf, with the same
    answer as the planned run before it."""
    monkeypatch.setattr(planmemo, "SETTLED", 0.0)
    paths = served_mox.instance.config_paths
    desired = tmp_path / "desired"
    import_live(paths.mox_conf, desired)
    w = World(tmp_path, paths.mox_conf, desired, tmp_path / "unused.secret", caplog, monkeypatch)
    opts = w.opts()
    assert w.run(opts).ok  # takes the objects into the inventory: the next run plans again
    planned = w.run(opts)
    assert planned.result is Result.UNCHANGED and not w.recalled(), planned.message
    recalled = w.run(opts)
    assert w.recalled() and recalled.confirmation == planned.confirmation == "mox has loaded domains.conf as it is"
    same(recalled, planned)


def test_a_watcher_keeps_no_config_of_its_earlier_runs_alive(world: World) -> None:
    """Runs that plan parse domains.conf anew each time; the per-config memos of the mox port
    must not keep the configs of earlier runs alive between runs (a watcher runs for weeks: at
    10,000 domains four such configs were 100 MB). The config objects alive after each planned run
    stay as many as after the first."""
    import gc

    from reconciler.mox import config as mc

    def domains_alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, mc.Domain))

    opts = world.opts(memo=None)
    alive = []
    for _ in range(4):
        assert world.run(opts).ok
        alive.append(domains_alive())
    assert len(world.plans) >= 5  # every run planned (a parse of domains.conf each)
    assert alive[-1] <= alive[0], alive
