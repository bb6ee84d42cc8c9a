"""How DKIM rotation shows: the plan (text, Markdown, JSON and a plan file read back), the status
file, the metrics, the watcher's log; and the options (`--now`, publishing) with their errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli.main import main
from reconciler.cli.watch import running_from
from reconciler.desired.importer import import_files
from reconciler.loop.metrics import Metrics
from reconciler.loop.notify import Notifier
from reconciler.loop.run import Result, RunResult, Trigger
from reconciler.loop.run import Stage as RunStage
from reconciler.loop.status import StatusBook
from reconciler.mox.live import locate, read_live
from reconciler.plan.document import parse_plan
from reconciler.plan.planner import PlanInput, make_plan, plan_document
from reconciler.plan.render import render_markdown, render_text
from reconciler.plan.rotation import RotationInput, RotationStatus, Stage, StageChange
from reconciler.plan.rotation_memory import Answer, Seen
from tests.httpcapture import capture_server
from tests.test_plan import ALL, LIVE, STATIC, imported, state
from tests.test_planrender import documented_fields
from tests.test_rotation import DAY, MADE, rotating

PREPARE_AT = MADE + 30 * DAY


def plan_at(at: datetime, answers: dict[str, Answer] | None = None) -> Any:
    rot = RotationInput(answers={"example.org": answers} if answers is not None else None)
    return make_plan(PlanInput(state(rotating()), STATIC, LIVE, ALL, at, rotation=rot))


def doc_at(at: datetime, answers: dict[str, Answer] | None = None) -> Any:
    return plan_document(plan_at(at, answers), source=None, live_path="domains.conf", live_digest="0" * 64)


def doc_plan_status(at: datetime) -> RotationStatus:
    (st,) = plan_at(at, {"2026a": Answer(Seen.PRESENT), "2026b": Answer(Seen.PRESENT)}).rotations
    return st


def test_plan_shows_stage_actions_and_the_next_step() -> None:
    doc = doc_at(PREPARE_AT, {"2026a": Answer(Seen.PRESENT), "2026b": Answer(Seen.PRESENT)})
    text = render_text(doc)
    assert "DKIM rotation:\n  example.org: prepare (signing 2026a, next 2026c, retiring 2026b)\n" in text
    assert "    now: prepare: add selector 2026c (rsa), not signing (signing key 2026a is 720h0m0s old)\n" in text
    switch_at = (PREPARE_AT + 2 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (f"    next: switch 2026c at the earliest {switch_at}, waiting for 2026c._domainkey.example.org TXT "
            "to be published and seen in DNS for 48h0m0s\n") in text
    md = render_markdown(doc)
    assert "#### DKIM rotation" in md
    assert f"| <code>example.org</code> | prepare | prepare: add selector 2026c (rsa), not signing (signing key 2026a is " \
           f"720h0m0s old) | switch 2026c | {switch_at} |" in md
    # The plan file keeps it, and reads back; docs/plan-format.md names every field.
    data = json.loads(doc.dumps())
    assert data["dkim_rotation"][0]["stage"] == "prepare"
    assert parse_plan(data) == doc
    assert "dkim_rotation" in documented_fields("Top level")
    assert set(documented_fields("`dkim_rotation`")) == set(data["dkim_rotation"][0])


def test_plan_shows_a_problem_loudly_and_an_unchecked_dns() -> None:
    doc = doc_at(MADE + DAY, {"2026a": Answer(Seen.MISSING), "2026b": Answer(Seen.PRESENT)})
    text = render_text(doc, color=True)
    assert "\x1b[31;1m      problem: selector 2026a signs, but 2026a._domainkey.example.org TXT is not in DNS" in text
    assert "- :warning: <code>example.org</code>: selector 2026a signs" in render_markdown(doc)
    assert "(DNS was not checked for this plan)" in render_text(doc_at(MADE + DAY))
    plain = make_plan(PlanInput(state(imported()), STATIC, LIVE, ALL, MADE))
    assert "dkim_rotation" not in plan_document(plain, source=None, live_path="d", live_digest="0" * 64).to_json()


def _run(rotation: dict[str, Any], *, checksum: str | None = "c" * 64, result: str = "unchanged",
         **kw: Any) -> RunResult:
    return RunResult(trigger=Trigger.RESYNC, started=1.0, duration=0.5, result=Result(result),
                     reason="ReconciliationSucceeded" if result != "failed" else "SourceFailed",
                     stage=RunStage.DONE, plan_checksum=checksum, rotation=rotation, **kw)


def test_status_file_and_metrics_carry_the_stage_per_domain(tmp_path: Path) -> None:
    info = json.loads(doc_at(PREPARE_AT, {"2026a": Answer(Seen.PRESENT), "2026b": Answer(Seen.PRESENT)})
                      .dumps())["dkim_rotation"][0]
    blocked = {**info, "domain": "b.example", "stage": "blocked", "pending": [], "problems": ["record gone"]}
    book = StatusBook(tmp_path / "status.json")
    book.record(_run({"example.org": info, "b.example": blocked}), 2.0)
    book.write()
    saved = json.loads((tmp_path / "status.json").read_text())["dkim_rotation"]
    assert saved["example.org"]["stage"] == "prepare" and saved["b.example"]["problems"] == ["record gone"]
    book.record(_run({}, checksum=None, result="failed"), 3.0)  # failed before planning: kept
    assert "dkim_rotation" in book.doc
    assert "dkim_rotation" in StatusBook(tmp_path / "status.json").doc  # and across a restart

    m = Metrics()
    m.observe(_run({"example.org": info, "b.example": blocked}))
    text = m.render().decode()
    assert 'mox_reconciler_dkim_rotation_stage{domain="example.org",stage="prepare"} 1.0' in text
    assert 'mox_reconciler_dkim_rotation_stage{domain="example.org",stage="switch"} 0.0' in text
    assert 'mox_reconciler_dkim_rotation_problems{domain="b.example"} 1.0' in text
    (line,) = [x for x in text.splitlines() if x.startswith("mox_reconciler_dkim_rotation_next_step_timestamp_seconds{")
               and 'domain="example.org"' in x]
    assert float(line.split()[-1]) == (PREPARE_AT + 2 * DAY).timestamp()
    m.observe(_run({"example.org": {**info, "publish_result": {"ok": False, "text": "refused"}}}))
    text = m.render().decode()
    assert 'domain="b.example"' not in text  # no longer rotating: its series are gone
    assert 'mox_reconciler_dkim_rotation_problems{domain="example.org"} 1.0' in text
    book.record(_run({}), 4.0)  # planned, nothing rotates any more
    assert "dkim_rotation" not in book.doc


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def config(golden_config: Any, tmp_path: Path) -> tuple[Path, Path]:
    """Golden step 01 and its desired state, plus a new domain that rotates (no DNS is asked: it
    has no selectors yet)."""
    moxconf = golden_config("01")
    live = read_live(locate(str(moxconf)))
    desired = tmp_path / "desired"
    desired.mkdir()
    for name, text in import_files(live.static, live.dynamic).items():
        (desired / name).write_text(text)
    (desired / "rot.yaml").write_text(yaml.safe_dump({"Domains": {"rot.example": {
        "ReportsAccount": "alice", "DKIM": {"Rotation": {"Every": "2160h", "Algorithm": "ed25519"}}}}}))
    return moxconf, desired


def test_now_plans_ahead(config: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    moxconf, desired = config
    assert main(["--config", str(moxconf), "plan", str(desired), "--format", "json",
                 "--now", "2031-03-01T09:00:00+01:00"]) == 0
    (info,) = json.loads(capsys.readouterr().out)["dkim_rotation"]
    assert (info["domain"], info["stage"], info["next"]) == ("rot.example", "prepare", "2031a")
    assert info["pending"][0]["earliest"] == "2031-03-03T08:00:00Z"
    env = {"MOX_RECONCILER_NOW": "2032-06-01T00:00:00Z"}
    assert main(["--config", str(moxconf), "plan", str(desired), "--format", "json"], environ=env) == 0
    assert json.loads(capsys.readouterr().out)["dkim_rotation"][0]["next"] == "2032a"


@pytest.mark.parametrize(("args", "usage", "message"), [
    (["--now", "yesterday"], True, "argument --now: invalid time 'yesterday': expected RFC 3339"),
    (["--now", "2026-12-01T12:00:00"], True, "has no UTC offset: add Z or e.g. +01:00"),
    (["--now", "2026-12-01T12:00:00Z", "--out", "plan.json"], False,
     "error: --now and --out do not go together: a plan made for another time must not be applied"),
    (["--publish", "rfc2136", "--server", "127.0.0.1"], False,
     "error: --publish rfc2136 needs --server and --tsig-key-file"),
    (["--zone", "example.org"], False, "error: --server, --zone and --tsig-key-file are for --publish rfc2136"),
    (["--resolver", "ns.example"], False, "error: bad server address 'ns.example': not an IP address"),
    (["--publish", "rfc2136", "--server", "127.0.0.1", "--tsig-key-file", "missing.key"], False,
     "error: missing.key: No such file or directory"),
])
def test_option_errors(config: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch, args: list[str], usage: bool, message: str) -> None:
    moxconf, desired = config
    monkeypatch.chdir(tmp_path)
    for verb in ("plan", "apply", "watch"):
        extra = ["--once"] if verb == "watch" else []
        if verb != "plan" and "--out" in args:
            continue
        try:
            rc = main(["--config", str(moxconf), verb, str(desired), *extra, *args])
        except SystemExit as e:  # a usage error, from argparse
            assert usage
            rc = int(e.code or 0)
        assert rc == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (verb, err)
    assert not (tmp_path / "plan.json").exists()
    assert not (moxconf.parent / "mox-reconciler.dkim-rotation.json").exists()


def test_the_watchers_now_runs_on() -> None:
    start = datetime(2026, 12, 1, 12).astimezone()
    clock = running_from(start)
    assert start <= clock() <= start + timedelta(seconds=60)


def test_stage_changes_are_notified() -> None:
    """The watcher's --notify gets a `rotation` event for every stage change of a run."""
    st = doc_plan_status(PREPARE_AT)
    change = StageChange("example.org", "retire", Stage.PREPARE, st)
    with capture_server() as cap:
        n = Notifier([cap.url], instance="mail-a", backoff=0.01)
        n.observe(_run({}, result="unchanged", rotation_changes=(change,)))
        n.close()
        (req,) = cap.requests
    body = json.loads(req.body)
    assert body["type"] == "rotation" and body["summary"].startswith(
        "DKIM rotation of example.org: retire -> prepare: prepare: add selector 2026c")
    assert body["details"] == {"domain": "example.org", "stage": "prepare", "selector": "2026c", "before": "retire",
                               "signing": "2026a", "next": "2026c", "retiring": ["2026b"], "problems": []}


def test_an_apply_limited_to_other_domains_keeps_the_rotation_memory(config: tuple[Path, Path]) -> None:
    """`apply --domain D` plans nothing for the rotating domains outside D: their memory (when
    keys were made, records seen) stays as it was, or their waits would start over."""
    moxconf, desired = config
    memory = moxconf.parent / "mox-reconciler.dkim-rotation.json"
    at = datetime(2031, 3, 1, 9).astimezone()
    assert main(["--config", str(moxconf), "apply", str(desired), "--yes", "--now", at.isoformat()]) == 0
    before = json.loads(memory.read_text())
    assert "2031a" in before["domains"]["rot.example"]["selectors"]
    later = (at + timedelta(hours=1)).isoformat()
    assert main(["--config", str(moxconf), "apply", str(desired), "--yes", "--now", later, "--domain", "example.org"]) == 0
    assert json.loads(memory.read_text()) == before
    # A plan for the rotating domain itself goes on from the memory kept.
    assert main(["--config", str(moxconf), "apply", str(desired), "--yes", "--now", later, "--domain", "rot.example"]) == 0
    after = json.loads(memory.read_text())["domains"]["rot.example"]
    assert after["selectors"]["2031a"]["created"] == before["domains"]["rot.example"]["selectors"]["2031a"]["created"]


def test_keeping_the_rotation_memory_takes_the_config_the_apply_left(
        config: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a rotation memory exists, every apply keeps it against domains.conf: the config the
    apply's last batch wrote or read is taken while the file still holds it, instead of reading
    and parsing the file again (seconds at 10,000 domains, on every watcher run); a file changed
    since is read again, and the memory kept is the same either way."""
    import reconciler.pipeline as pipeline
    from reconciler.apply import writer

    moxconf, desired = config
    at = datetime(2031, 3, 1, 9).astimezone()
    assert main(["--config", str(moxconf), "apply", str(desired), "--yes", "--now", at.isoformat()]) == 0
    memory = moxconf.parent / "mox-reconciler.dkim-rotation.json"
    assert "rot.example" in json.loads(memory.read_text())["domains"]
    reads: list[Path] = []
    real_read_live = pipeline.read_live

    def counting(paths: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(paths.domains_conf)
        return real_read_live(paths, *args, **kwargs)

    monkeypatch.setattr(pipeline, "read_live", counting)
    later = at + timedelta(hours=1)
    assert main(["--config", str(moxconf), "apply", str(desired), "--yes", "--now", later.isoformat(),
                 "--domain", "example.org"]) == 0
    assert len(reads) == 1  # the plan's read; keeping the memory read nothing again
    kept = memory.read_text()

    paths = locate(str(moxconf))
    snap = writer.read_stable(paths.domains_conf)
    run = pipeline.RotationRun()
    reads.clear()
    pipeline.keep_rotation(paths, run, later, snap)
    assert reads == [] and memory.read_text() == kept
    data = paths.domains_conf.read_bytes()
    paths.domains_conf.unlink()
    paths.domains_conf.write_bytes(data)  # the same bytes in a new file: someone wrote it since
    pipeline.keep_rotation(paths, run, later, snap)
    assert reads == [paths.domains_conf] and memory.read_text() == kept
