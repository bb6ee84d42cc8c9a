"""A plan with nothing to do is remembered and answered again only while every input is the
same: each kind of input changed makes the next plan a fresh one, equal to a plan made without
any memo; the memo keeps no secret; a memo that cannot be trusted is not used."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler import planmemo
from reconciler.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Bearer hook-secret-4711"
HIT = "nothing changed since the plan of"


class World:
    """The bundled example applied to a scratch config dir (alice without a password, bob with an
    outgoing webhook whose Authorization is a secret file, a directory of shared files included
    whole), with its own cache dir."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp = tmp
        self.capsys = capsys
        self.config = tmp / "mox" / "config"
        shutil.copytree(ROOT / "examples" / "mox" / "config", self.config)
        (tmp / "mox" / "data").mkdir()
        self.desired = tmp / "desired"
        shutil.copytree(ROOT / "examples" / "desired", self.desired)
        self.secret = tmp / "hook.secret"
        self.secret.write_text(SECRET + "\n")
        accounts = self.desired / "accounts.yaml"
        text = accounts.read_text()
        text = re.sub(r"\n    Password: \{Env: ALICE_PASSWORD\}", "", text)
        text = text.replace("  bob:\n", "  bob:\n    OutgoingWebhook:\n      URL: https://hooks.example/bob\n"
                            f"      Authorization: {{File: {self.secret}}}\n", 1)
        accounts.write_text(text)
        shared = self.desired / "shared"
        shared.mkdir()
        (self.desired / "frank.yaml").write_text("Accounts:\n  frank:\n    Destinations:\n      frank@example.com: {}\n")
        (shared / "dave.yaml").write_text("Accounts:\n  dave:\n    Destinations:\n      dave@example.com: {}\n")
        (self.desired / "policy.yaml").write_text((self.desired / "policy.yaml").read_text() + "Include: shared\n")
        self.cache = tmp / "cache"
        rc, _out, err = self.cli("apply", "--yes", str(self.desired))
        assert rc == 0, err

    def cli(self, *argv: str, cache: Path | None = None) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(["-v", "--config", str(self.config / "mox.conf"), *argv[:1], "--cache-dir",
                   str(cache or self.cache), *argv[1:]])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def plan(self, *extra: str, cache: Path | None = None) -> tuple[int, dict[str, object], str]:
        rc, out, err = self.cli("plan", "--format", "json", *extra, str(self.desired), cache=cache)
        if rc != 0:
            return rc, {}, err
        doc = json.loads(out)
        doc.pop("created")
        return rc, doc, err

    def fresh_plan(self, *extra: str) -> tuple[int, dict[str, object], str]:
        """The plan made without any memo (a cache dir of its own, used once)."""
        fresh = self.tmp / f"fresh-{len(list(self.tmp.glob('fresh-*')))}"
        return self.plan(*extra, cache=fresh)

    def memos(self) -> list[Path]:
        return sorted(self.cache.glob("plans/*/*.json"))


@pytest.fixture
def world(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> World:
    # Files written by the test itself, before each plan starts, count as settled (in use, two
    # seconds: a file could change while a plan reads it).
    monkeypatch.setattr(planmemo, "SETTLED", 0.0)
    return World(tmp_path, capsys)


def test_a_plan_without_operations_is_remembered_and_the_same_answer_given_again(world: World) -> None:
    rc, first, err = world.plan()
    assert rc == 0 and first["changes"] == [] and HIT not in err
    assert len(world.memos()) == 1
    rc, second, err = world.plan()
    assert rc == 0 and HIT in err
    assert second == first == world.fresh_plan()[1]
    for fmt in ("text", "markdown"):
        remembered = world.cli("plan", "--format", fmt, str(world.desired))
        made = world.cli("plan", "--format", fmt, str(world.desired), cache=world.tmp / f"fresh-{fmt}")
        assert remembered[0] == made[0] == 0
        when = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")  # the time each was made
        assert when.sub("<made>", remembered[1]) == when.sub("<made>", made[1])


def test_the_snapshot_marker_is_the_one_snapshot_writes() -> None:
    from reconciler.pipeline import SNAPSHOT_FILE

    assert planmemo.SNAPSHOT_MARKER == SNAPSHOT_FILE


def test_the_memo_keeps_no_secret(world: World) -> None:
    world.plan()
    assert world.memos()
    for path in world.cache.rglob("plans/**/*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()
            assert os.stat(path).st_mode & 0o077 == 0


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


CHANGES: dict[str, Callable[[World], None]] = {
    "a desired file edited": lambda w: _edit(w.desired / "accounts.yaml", "      bob@example.com: {}\n",
                                             "      bob@example.com: {}\n      robert@example.com: {}\n"),
    "a desired file added": lambda w: (w.desired / "domain-new.example.yaml").write_text(
        "Domains:\n  new.example:\n    ReportsAccount: bob\n"),
    "a desired file removed": lambda w: (w.desired / "frank.yaml").unlink(),
    "a file added to an included directory": lambda w: (w.desired / "shared" / "erin.yaml").write_text(
        "Accounts:\n  erin:\n    Destinations:\n      erin@example.com: {}\n"),
    "domains.conf changed": lambda w: _edit(w.config / "domains.conf", "FullName: Alice Example",
                                            "FullName: Alice Changed"),
    "the inventory removed": lambda w: (w.config / "mox-reconciler.inventory.json").unlink(),
    "a secret changed": lambda w: w.secret.write_text("Bearer another-secret\n"),
    "mox.conf changed": lambda w: _edit(w.config / "mox.conf", "\n", "\n# a comment\n"),
    "an account directory appeared": lambda w: (w.tmp / "mox" / "data" / "accounts" / "zed").mkdir(parents=True),
    "a desired file touched, bytes the same": lambda w: os.utime(w.desired / "accounts.yaml"),
}


SAME_ANSWER = {"mox.conf changed", "the inventory removed", "an account directory appeared", "a desired file touched, bytes the same"}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_changed_input_makes_the_next_plan_a_fresh_one(world: World, change: str) -> None:
    _, first, _ = world.plan()
    assert world.memos()
    CHANGES[change](world)
    rc, doc, err = world.plan()
    assert rc == 0
    assert doc == world.fresh_plan()[1]
    if change == "a desired file touched, bytes the same":
        assert HIT in err  # the file's identity moved, its bytes did not: still the same answer
    else:
        assert HIT not in err
    assert (doc == first) == (change in SAME_ANSWER)


def test_a_file_replaced_by_a_link_is_refused_as_without_a_memo(world: World) -> None:
    world.plan()
    target = world.desired / "domain-example.net.yaml"
    copy = world.tmp / "elsewhere.yaml"
    shutil.copy(target, copy)
    target.unlink()
    target.symlink_to(copy)
    rc, _out, err = world.cli("plan", str(world.desired))
    assert rc == 1 and "symbolic link" in err and HIT not in err


def test_a_plan_with_operations_or_for_another_time_is_not_remembered(world: World) -> None:
    CHANGES["a desired file added"](world)
    rc, doc, _ = world.plan()
    assert rc == 0 and doc["changes"]
    assert world.memos() == []
    (world.desired / "domain-new.example.yaml").unlink()
    rc, _, _err = world.cli("plan", "--now", "2030-01-01T00:00:00+00:00", str(world.desired))
    assert rc == 0
    assert world.memos() == []


def test_another_domain_scope_has_a_memo_of_its_own(world: World) -> None:
    world.plan()
    rc, scoped, err = world.plan("--domain", "example.net")
    assert rc == 0 and HIT not in err and scoped["domains"] == ["example.net"]
    assert len(world.memos()) == 2
    rc, again, err = world.plan("--domain", "example.net")
    assert HIT in err and again == scoped


def test_a_plan_that_read_a_file_still_changing_is_not_remembered(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planmemo, "SETTLED", 3600.0)  # every file counts as changed within the hour
    world.plan()
    assert world.memos() == []


@pytest.mark.parametrize("damage", ["garbage", "group-writable", "other version"])
def test_a_memo_that_cannot_be_trusted_is_not_used(world: World, damage: str) -> None:
    world.plan()
    [memo] = world.memos()
    if damage == "garbage":
        memo.write_text("{not json")
    elif damage == "group-writable":
        memo.chmod(0o620)
    else:
        entry = json.loads(memo.read_text())
        entry["version"] = "0.0.0"
        memo.write_text(json.dumps(entry))
    rc, doc, err = world.plan()
    assert rc == 0 and HIT not in err
    assert doc == world.fresh_plan()[1]
