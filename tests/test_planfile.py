"""`apply --plan FILE` with a file that is not a plan it can replay: another version, a wrong
shape, a damaged or edited file. Each gives one line naming the file (and the field), exit 1,
and nothing is written. Also: the published schema schemas/plan.schema.json is current and
describes what `plan --out` writes.

The plan is made once by the real CLI from golden step 01 (a plain directory of desired state);
each case edits a copy of its JSON.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from reconciler.cli.main import main
from reconciler.desired.importer import import_live
from reconciler.mox.live import locate, read_live
from reconciler.plan import schema as plan_schema
from reconciler.plan.document import PlanDocument, checksum_of, parse_plan, read_plan_file

from .conftest import GOLDEN_STEPS, build_step_config

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "plan.schema.json"

@dataclass(frozen=True)
class Made:
    mox_conf: Path
    plan: dict[str, Any]  # the plan file's JSON, as `plan --out` wrote it

    @property
    def domains_conf(self) -> Path:
        return self.mox_conf.parent / "domains.conf"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    tmp = tmp_path_factory.mktemp("planfile")
    mox_conf = build_step_config(GOLDEN_STEPS[1], tmp / "mox")
    live = read_live(locate(str(mox_conf)))
    desired = import_live(live.static, live.dynamic)
    desired["Domains"]["example.org"]["Description"] = "changed"  # the plan: one DomainSave
    (tmp / "desired").mkdir()
    (tmp / "desired" / "desired.yaml").write_text(yaml.safe_dump(desired, allow_unicode=True))
    out = tmp / "plan.json"
    assert main(["--config", str(mox_conf), "plan", "--out", str(out), str(tmp / "desired")]) == 0
    plan: dict[str, Any] = json.loads(out.read_text())
    assert [c["operation"]["op"] for c in plan["changes"]] == ["DomainSave"]
    return Made(mox_conf, plan)


def apply_file(made: Made, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    before = made.domains_conf.read_bytes()
    capsys.readouterr()
    rc = main(["--config", str(made.mox_conf), "apply", "--yes", "--plan", str(path)])
    out, err = capsys.readouterr()
    assert made.domains_conf.read_bytes() == before  # nothing written
    return rc, out, err


def edited(made: Made, edit: Callable[[dict[str, Any]], Any]) -> Any:
    data = copy.deepcopy(made.plan)
    result = edit(data)
    return data if result is None else result


def _delete(data: dict[str, Any], *path: str | int) -> None:
    for key in path[:-1]:
        data = data[key]  # type: ignore[index]
    del data[path[-1]]  # type: ignore[arg-type]


def _set(data: dict[str, Any], value: Any, *path: str | int) -> None:
    for key in path[:-1]:
        data = data[key]  # type: ignore[index]
    data[path[-1]] = value  # type: ignore[index]


# (edit of the plan JSON, the message after "error: <file>: ")
CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("newer version", lambda d: _set(d, 3, "version"),
     "plan file version 3 is not supported (this release reads versions 1 and 2)"),
    ("version as text", lambda d: _set(d, "2", "version"),
     'plan file version "2" is not supported (this release reads versions 1 and 2)'),
    ("version true", lambda d: _set(d, True, "version"),
     "plan file version true is not supported (this release reads versions 1 and 2)"),
    ("version 0", lambda d: _set(d, 0, "version"),
     "plan file version 0 is not supported (this release reads versions 1 and 2)"),
    ("value change of an unknown kind", lambda d: _set(d, "rename", "changes", 0, "values", 0, "kind"),
     "changes[0].values[0].kind: Input should be 'change', 'add' or 'remove'"),
    ("no version", lambda d: _delete(d, "version"), "version: Field required"),
    ("missing top-level field", lambda d: _delete(d, "safety"), "safety: Field required"),
    ("missing change field", lambda d: _delete(d, "changes", 0, "operation"), "changes[0].operation: Field required"),
    ("changes not a list", lambda d: _set(d, {}, "changes"), "changes: Input should be a valid list"),
    ("number as text", lambda d: _set(d, "2", "safety", "managed"), "safety.managed: Input should be a valid integer"),
    ("unknown action", lambda d: _set(d, "rename", "changes", 0, "action"),
     "changes[0].action: Input should be 'create', 'update' or 'delete'"),
    ("damaged digest", lambda d: _set(d, "628a", "live", "sha256"),
     "live.sha256: String should match pattern '^[0-9a-f]{64}$'"),
    ("unknown operation", lambda d: _set(d, "DomainRename", "changes", 0, "operation", "op"),
     "changes[0].operation.op: unknown operation 'DomainRename'"),
    ("operation format version", lambda d: _set(d, 2, "changes", 0, "operation", "version"),
     "changes[0].operation.version: Input should be 1"),
    ("missing operation argument", lambda d: _delete(d, "changes", 0, "operation", "domain"),
     "changes[0].operation: DomainSave: missing argument(s) domain"),
    ("wrong argument type", lambda d: _set(d, ["x"], "changes", 0, "operation", "domain"),
     "changes[0].operation: DomainSave.domain: not a valid value (TypeError: expected str, found list ['x'])"),
    ("edited operation", lambda d: _set(d, {"Description": "other"}, "changes", 0, "operation", "fields"),
     "checksum: does not match the operations (the file was edited or damaged); make a new plan"),
    ("several problems", lambda d: {k: v for k, v in d.items() if k not in ("summary", "live")},
     "live: Field required (and 1 more problem)"),
    ("not an object", lambda d: [d], "not a plan file: expected a JSON object, found an array"),
]


@pytest.mark.parametrize(("edit", "message"), [(e, m) for _, e, m in CASES], ids=[n for n, _, _ in CASES])
def test_bad_plan_file_is_one_line(made: Made, edit: Callable[[dict[str, Any]], Any], message: str,
                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(edited(made, edit), indent=2))
    rc, out, err = apply_file(made, path, capsys)
    assert (rc, out, err) == (1, "", f"error: {path}: {message}\n")


@pytest.mark.parametrize(("content", "message"), [
    (b'{"version": 1,\n  "changes": [', "{path}:2:15: not a plan file: invalid JSON: Expecting value"),
    (b"", "{path}:1:1: not a plan file: invalid JSON: Expecting value"),
    (b'{"version": 1}\n{"version": 1}\n', "{path}:2:1: not a plan file: invalid JSON: Extra data"),
    (b"\xff\xfe{\x00", "{path}: not a plan file: not UTF-8 text"),
], ids=["truncated", "empty", "two documents", "not UTF-8"])
def test_damaged_plan_file_is_one_line(made: Made, content: bytes, message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    rc, out, err = apply_file(made, path, capsys)
    assert (rc, out, err) == (1, "", f"error: {message.format(path=path)}\n")


def test_missing_plan_file(made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.json"
    rc, out, err = apply_file(made, path, capsys)
    assert (rc, out, err) == (1, "", f"error: {path}: cannot read plan file: No such file or directory\n")


def test_bad_plan_file_through_the_installed_command(made: Made, tmp_path: Path) -> None:
    """The same in a real process: one line on stderr, exit 1, no traceback."""
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({**made.plan, "version": 3}))
    p = subprocess.run([sys.executable, "-m", "reconciler", "--config", str(made.mox_conf), "apply", "--yes",
                        "--plan", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert (p.returncode, p.stdout, p.stderr) == (
        1, "", f"error: {path}: plan file version 3 is not supported (this release reads versions 1 and 2)\n")


def test_plan_file_round_trip_and_additions(made: Made, tmp_path: Path) -> None:
    """What `plan --out` writes reads back to the same document and writes out byte for byte;
    fields added later within version 2 are ignored, as docs/plan-format.md promises."""
    path = tmp_path / "plan.json"
    text = json.dumps(made.plan, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text)
    doc = read_plan_file(path)
    assert doc.dumps() == text
    assert [type(op).__name__ for op in doc.operations] == ["DomainSave"]
    later = {**made.plan, "added_later": {"x": 1},
             "changes": [{**made.plan["changes"][0], "note": "new in a later release"}]}
    assert parse_plan(later) == doc


def test_version_1_plan_file_still_applies(made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A plan file written by the release before old values (version 1: no `created`, no
    `changes[].values`) reads as a version 2 document without them, and applies."""
    assert made.plan["version"] == 2 and made.plan["changes"][0]["values"] == [
        {"path": ["Description"], "kind": "change", "old": "", "new": "changed", "object": None}]
    v1 = {k: v for k, v in made.plan.items() if k != "created"}
    v1 = {**v1, "version": 1, "changes": [{k: v for k, v in c.items() if k != "values"} for c in v1["changes"]]}
    path = tmp_path / "plan-v1.json"
    path.write_text(json.dumps(v1, indent=2))
    doc = read_plan_file(path)
    assert (doc.version, doc.created, doc.changes[0].values) == (1, None, [])
    assert doc.checksum == made.plan["checksum"]  # the operations are the same
    before = made.domains_conf.read_bytes()
    try:
        rc = main(["--config", str(made.mox_conf), "apply", "--yes", "--plan", str(path),
                   "--reports-dir", str(tmp_path / "reports")])
        out = capsys.readouterr().out
        assert rc == 0, out
        assert "Applied 1 operation" in out and "Description: changed" in made.domains_conf.read_text()
    finally:
        made.domains_conf.write_bytes(before)  # the module's other tests use the same config


def test_schema_is_up_to_date() -> None:
    """Regenerate with `python -m reconciler.plan.schema` after changing reconciler/plan/document.py."""
    assert SCHEMA.read_text(encoding="utf-8") == plan_schema.render()


def test_schema_generator_writes_where_it_is_told_and_answers_help(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        plan_schema.main(["--help"])
    assert exit_info.value.code == 0 and "usage" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # no file named --help
    assert plan_schema.main(["out.json"]) == 0
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == SCHEMA.read_text(encoding="utf-8")


def test_schema_describes_plan_files(made: Made) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    validator.validate(made.plan)
    base = PlanDocument.model_validate({**made.plan, "base_ref": "HEAD~1"}).to_json()
    assert base["base_ref"] == "HEAD~1"
    validator.validate(base)
    for bad in ({**made.plan, "version": 3}, {**made.plan, "checksum": "x"},
                {**made.plan, "changes": [{**made.plan["changes"][0], "action": "rename"}]}):
        assert not validator.is_valid(bad)
    empty = {**made.plan, "changes": [], "checksum": checksum_of([])}
    validator.validate(empty)
