"""Confirmed applies without a running mox: the protocol of reconciler.apply.confirm against a
stand-in for mox's control socket that answers, and writes domains.conf in place, the way mox
does (its stale in-memory config overwriting ours: the lost update); the rounds that re-apply on
top of mox's version; the apply report. The same against the real mox: tests/test_confirm_mox.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.apply import confirm, rounds, writer
from reconciler.apply.confirm import Loaded, LoadNotConfirmed, NotLoaded
from reconciler.desired.source import resolve_source
from reconciler.mox.ctl import AccountEntry, Ctl
from reconciler.mox.errors import CtlCommandFailed, CtlTimeout
from reconciler.mox.live import ConfigPaths
from reconciler.pipeline import apply_prepared, prepare, reports_dir_default

from .conftest import build_step_config
from .golden import golden_step


class FakeMox:
    """Answers `version`, `accountlist` and `aliaslist` like mox, from `memory` (the config mox
    holds: the file it loaded last); `on_lock` runs when a command takes mox's config lock."""

    def __init__(self, paths: ConfigPaths, on_lock: Callable[[FakeMox], None] | None = None) -> None:
        self.paths = paths
        self.on_lock = on_lock
        self.calls = 0
        self.reload()

    def reload(self) -> None:
        self.memory = writer.read_stable(self.paths.domains_conf)

    def version(self) -> str:
        return "ctlv0"

    def account_list(self) -> list[AccountEntry]:
        self.calls += 1
        if self.on_lock is not None:
            self.on_lock(self)
        else:
            self.reload()  # what mox does after a second: stat, reload
        return [AccountEntry(n, bool(a.LoginDisabled)) for n, a in sorted(self.memory.dynamic.Accounts.items())]

    def account_addresses(self, account: str) -> list[str]:
        if account not in self.memory.dynamic.Accounts:
            raise CtlCommandFailed("mox refused", command="accountaddresses", reply="no such account")
        return sorted(self.memory.dynamic.Accounts[account].Destinations)

    def alias_list(self, domain: str) -> list[str]:
        if domain not in self.memory.dynamic.Domains:
            raise CtlCommandFailed("mox refused", command="aliaslist", reply="listing aliases: no such domain")
        return []

    def write_stale(self, change: Callable[[str], str]) -> None:
        """mox's admin writing its in-memory config (plus `change`) in place, as WriteDynamicLocked."""
        text = change(self.memory.data.decode())
        with open(self.paths.domains_conf, "r+") as f:
            f.write(text)
            f.truncate()
        self.reload()


def no_sleep(_seconds: float) -> None:
    pass


@pytest.fixture
def paths(tmp_path: Path) -> ConfigPaths:
    return ConfigPaths(build_step_config(golden_step("01"), tmp_path / "mox"))


def desired(tmp_path: Path, text: str) -> Path:
    d = tmp_path / "desired"
    d.mkdir(parents=True, exist_ok=True)
    (d / "desired.yaml").write_text(text)
    return d


CAROL = ("Domains:\n  carol.example: {ReportsAccount: carol, DKIM: null}\n"
         "Accounts:\n  carol:\n    Destinations:\n      carol@carol.example: {}\n")


# --- one confirmation


def test_the_wait_runs_from_the_file_time_plus_mox_throttle(paths: ConfigPaths) -> None:
    snap = writer.read_stable(paths.domains_conf)
    written = max(snap.stat.st_mtime_ns, snap.stat.st_ctime_ns) / 1e9
    slept: list[float] = []
    waited = confirm.wait_out_throttle(snap, clock=lambda: written + 0.25, sleep=slept.append)
    assert slept == [waited] and waited == pytest.approx(confirm.THROTTLE + confirm.MARGIN - 0.25)
    # written long ago: mox's next lock checks the file, no wait
    assert confirm.wait_out_throttle(snap, clock=lambda: written + 5, sleep=slept.append) == 0.0
    # a file time in the future (a clock set back) counts as now: one full throttle, not more
    assert confirm.wait_out_throttle(snap, clock=lambda: written - 3600, sleep=slept.append) == pytest.approx(
        confirm.THROTTLE + confirm.MARGIN)


def test_loaded_when_the_file_is_unchanged_after_mox_took_its_lock(paths: ConfigPaths) -> None:
    snap = writer.read_stable(paths.domains_conf)
    got = confirm.confirm(snap, FakeMox(paths), domains=["example.org"], sleep=no_sleep)  # type: ignore[arg-type]
    assert got is not None and got.status is Loaded.LOADED and got.message == "mox loaded the change"


def test_changed_when_mox_wrote_over_it(paths: ConfigPaths) -> None:
    snap = writer.read_stable(paths.domains_conf)
    mox = FakeMox(paths, on_lock=lambda m: m.write_stale(lambda t: t + "\tbob:\n\t\tDomain: example.org\n"))
    assert confirm.confirm(snap, mox, sleep=no_sleep) is None  # type: ignore[arg-type]


def test_mox_refused_the_file_is_not_loaded(paths: ConfigPaths) -> None:
    mox = FakeMox(paths, on_lock=lambda m: None)  # keeps its old config: the file was refused
    text = paths.domains_conf.read_text().replace("\talice:\n", "\talice2:\n\t\tDomain: example.org\n\talice:\n")
    paths.domains_conf.write_text(text)
    snap = writer.read_stable(paths.domains_conf)
    with pytest.raises(NotLoaded, match=r"mox did not load .*domains.conf: its accounts lack alice2\. mox keeps "
                                        r"serving its previous config and logs why as `loading domains config`"):
        confirm.confirm(snap, mox, sleep=no_sleep)  # type: ignore[arg-type]


def test_a_domain_missing_in_mox_memory_is_not_loaded(paths: ConfigPaths) -> None:
    mox = FakeMox(paths, on_lock=lambda m: None)
    text = paths.domains_conf.read_text().replace("\tmail.example.org: nil\n", "\tmail.example.org: nil\n\tnew.example: nil\n")
    paths.domains_conf.write_text(text)
    snap = writer.read_stable(paths.domains_conf)
    with pytest.raises(NotLoaded, match=r"domain new\.example is missing"):
        confirm.confirm(snap, mox, domains=["new.example", "example.org"], sleep=no_sleep)  # type: ignore[arg-type]


def test_not_running_is_said_without_waiting(paths: ConfigPaths) -> None:
    snap = writer.read_stable(paths.domains_conf)
    slept: list[float] = []
    got = confirm.confirm(snap, Ctl(paths.config_dir.parent / "data" / "ctl"), sleep=slept.append)
    assert got is not None and got.status is Loaded.NOT_RUNNING and slept == []
    assert got.message.startswith("not confirmed: mox not running (mox's control socket ")
    assert got.message.endswith("; mox reads domains.conf when it starts")


def test_a_socket_that_does_not_answer_is_a_failure(paths: ConfigPaths) -> None:
    class Hung:
        def version(self) -> str:
            raise CtlTimeout("mox's control socket /x/ctl did not answer within 30 s")

    snap = writer.read_stable(paths.domains_conf)
    with pytest.raises(LoadNotConfirmed, match=r"is written, but whether mox loaded it cannot be confirmed: "
                                               r"mox's control socket /x/ctl did not answer"):
        confirm.confirm(snap, Hung(), sleep=no_sleep)  # type: ignore[arg-type]


# --- seen at once: no wait when mox can be seen holding the write already


BOB = ("\talice:\n", "\tbob:\n\t\tDomain: example.org\n\talice:\n")  # a new account: shows over the socket
NOTE = ("\tadmin:\n", "\tadmin:\n\t\tDescription: changed\n")  # an account field: does not show
NEW_DOMAIN = ("\tmail.example.org: nil\n", "\tmail.example.org: nil\n\tnew.example: nil\n")
ADDRESS = ("\t\t\talice@example.org: nil\n", "\t\t\talice@example.org: nil\n\t\t\tali@example.org: nil\n")


def aged(snap: writer.Snapshot, seconds: float) -> writer.Snapshot:
    """`snap` as if written `seconds` ago (its mtime and ctime moved back)."""
    st = snap.stat
    back = int(seconds * 1e9)
    moved = os.stat_result(tuple(st[:10]), {"st_mtime_ns": st.st_mtime_ns - back, "st_ctime_ns": st.st_ctime_ns - back})
    return writer.Snapshot(snap.path, snap.data, snap.dynamic, moved)


def write_over(paths: ConfigPaths, change: tuple[str, str]) -> tuple[writer.Snapshot, writer.Snapshot]:
    """(the file before, the file after) our write of `change` (old text, new text) into domains.conf."""
    before = writer.read_stable(paths.domains_conf)
    text = before.data.decode()
    assert change[0] in text
    writer.replace(before, text.replace(change[0], change[1], 1).encode())
    return before, writer.read_stable(paths.domains_conf)


def never(_snap: writer.Snapshot) -> bool:
    raise AssertionError("asked whether the file before validates, needlessly")


def test_a_change_mox_shows_at_once_is_confirmed_without_waiting(paths: ConfigPaths) -> None:
    mox = FakeMox(paths)  # holds the file before; looks at the file at its next lock (idle)
    before, after = write_over(paths, BOB)
    asked: list[writer.Snapshot] = []
    slept: list[float] = []
    got = confirm.confirm(after, mox, before=aged(before, 5), accepted=lambda s: asked.append(s) or True,  # type: ignore[arg-type, func-returns-value]
                          sleep=slept.append)
    assert got == confirm.Confirmation(Loaded.LOADED, "mox loaded the change", 0.0, at_once=True)
    assert slept == [] and mox.calls == 1 and [a.data for a in asked] == [before.data]


def test_a_new_domain_shows_through_the_domain_probe(paths: ConfigPaths) -> None:
    mox = FakeMox(paths)
    before, after = write_over(paths, NEW_DOMAIN)  # the accounts are the same before and after
    slept: list[float] = []
    got = confirm.confirm(after, mox, domains=["new.example"], before=aged(before, 5),  # type: ignore[arg-type]
                          accepted=lambda _s: True, sleep=slept.append)
    assert got is not None and got.at_once and slept == []


def test_a_new_address_shows_in_its_account_addresses(paths: ConfigPaths) -> None:
    mox = FakeMox(paths)
    before, after = write_over(paths, ADDRESS)  # the accounts and domains are the same before and after
    asked: list[str] = []
    real = mox.account_addresses
    mox.account_addresses = lambda a: asked.append(a) or real(a)  # type: ignore[method-assign, func-returns-value]
    slept: list[float] = []
    got = confirm.confirm(after, mox, before=aged(before, 5), accepted=lambda _s: True, sleep=slept.append)  # type: ignore[arg-type]
    assert got is not None and got.at_once and slept == [] and asked == ["alice"]


def test_an_account_with_a_bare_localpart_is_not_looked_up(paths: ConfigPaths) -> None:
    """mox replaces a bare localpart destination by localpart@domain in its memory: what it
    answers is not the file's spelling, so the account's addresses are no evidence either way."""
    text = paths.domains_conf.read_text().replace("\t\t\talice@example.org: nil\n",
                                                  "\t\t\talice@example.org: nil\n\t\t\tal: nil\n")
    paths.domains_conf.write_text(text)
    mox = FakeMox(paths)
    before, after = write_over(paths, ADDRESS)
    mox.account_addresses = never  # type: ignore[assignment]
    slept: list[float] = []
    got = confirm.confirm(after, mox, before=aged(before, 5), accepted=never, sleep=slept.append)  # type: ignore[arg-type]
    assert got is not None and got.loaded and not got.at_once and len(slept) == 1


def test_mox_that_looked_less_than_a_second_before_the_write_is_waited_out(paths: ConfigPaths) -> None:
    def looked_just_before(mox: FakeMox) -> None:
        if mox.calls > 1:  # the first lock comes within its throttle: it still holds the file before
            mox.reload()

    mox = FakeMox(paths, on_lock=looked_just_before)
    before, after = write_over(paths, BOB)
    slept: list[float] = []
    got = confirm.confirm(after, mox, before=aged(before, 5), accepted=lambda _s: True, sleep=slept.append)  # type: ignore[arg-type]
    assert got is not None and got.loaded and not got.at_once
    assert mox.calls == 2 and len(slept) == 1 and got.waited == slept[0] > 0


@pytest.mark.parametrize("change", [NOTE, NEW_DOMAIN], ids=["account-field", "domain-not-probed"])
def test_a_change_that_does_not_show_over_the_socket_waits(paths: ConfigPaths, change: tuple[str, str]) -> None:
    mox = FakeMox(paths)
    before, after = write_over(paths, change)
    slept: list[float] = []
    got = confirm.confirm(after, mox, before=aged(before, 5), accepted=never, sleep=slept.append)  # type: ignore[arg-type]
    assert got is not None and got.loaded and not got.at_once
    assert mox.calls == 1 and len(slept) == 1  # no look before the wait


def test_a_file_before_younger_than_the_throttle_is_waited_out(paths: ConfigPaths) -> None:
    """mox may have looked just before that file was written, holding an older one that could
    look like ours (someone removed what we add back)."""
    mox = FakeMox(paths)
    before, after = write_over(paths, BOB)
    slept: list[float] = []
    got = confirm.confirm(after, mox, before=aged(before, confirm.THROTTLE), accepted=never,  # type: ignore[arg-type]
                          sleep=slept.append)
    assert got is not None and got.loaded and not got.at_once and mox.calls == 1 and len(slept) == 1


def test_a_file_before_that_does_not_validate_is_waited_out(paths: ConfigPaths) -> None:
    """mox may have refused it and kept an older file that looks like ours."""
    mox = FakeMox(paths)
    before, after = write_over(paths, BOB)
    slept: list[float] = []
    got = confirm.confirm(after, mox, before=aged(before, 5), accepted=lambda _s: False,  # type: ignore[arg-type]
                          sleep=slept.append)
    assert got is not None and got.loaded and not got.at_once and mox.calls == 2 and len(slept) == 1


def test_written_over_right_after_the_write_is_found_without_waiting(paths: ConfigPaths) -> None:
    mox = FakeMox(paths, on_lock=lambda m: m.write_stale(lambda t: t + "\tcarl:\n\t\tDomain: example.org\n"))
    before, after = write_over(paths, BOB)
    slept: list[float] = []
    assert confirm.confirm(after, mox, before=aged(before, 5), accepted=never, sleep=slept.append) is None  # type: ignore[arg-type]
    assert slept == []


def test_the_file_before_validates_by_mox_rules(paths: ConfigPaths) -> None:
    accepted = rounds.validates(paths)
    assert accepted(writer.read_stable(paths.domains_conf))
    text = paths.domains_conf.read_text().replace("\t\t\talice@example.org: nil\n",
                                                  "\t\t\talice@example.org: nil\n\t\t\tghost@unknown.example: nil\n")
    paths.domains_conf.write_text(text)
    assert not accepted(writer.read_stable(paths.domains_conf))  # mox refuses it: unknown domain


# --- applies: rounds, re-plans, the report


def test_a_lost_update_is_applied_again_on_top_of_mox_version(paths: ConfigPaths, tmp_path: Path) -> None:
    def stale_write_once(mox: FakeMox) -> None:
        if mox.calls == 1:  # mox's admin adds an address from its old config: our carol is gone
            mox.write_stale(lambda t: t.replace("\t\t\talice@example.org: nil\n",
                                                "\t\t\talice@example.org: nil\n\t\t\tmox.made@example.org: nil\n"))
        else:
            mox.reload()

    mox = FakeMox(paths, on_lock=stale_write_once)
    prepared = prepare(paths, resolve_source(str(desired(tmp_path, CAROL))))
    outcome = apply_prepared(prepared, ctl=mox)  # type: ignore[arg-type]
    # mox took its lock four times: after each of our two renames, and to confirm each write
    assert outcome.confirmation.loaded and outcome.rewrites == 1 and mox.calls == 4
    text = paths.domains_conf.read_text()
    assert "carol@carol.example: nil" in text and "mox.made@example.org: nil" in text  # ours and mox's
    report = json.loads((reports_dir_default(paths) / "last-apply.json").read_text())
    assert report["writes"] == 2 and report["confirmation"]["status"] == "loaded"
    assert report["confirmation"]["message"] == "mox loaded the change"


def test_a_mox_write_into_the_replaced_file_that_ends_after_the_rename_is_kept(
        paths: ConfigPaths, tmp_path: Path) -> None:
    """mox opened domains.conf for its in-place write before our rename, and its write ends after
    it (mox holds its config lock meanwhile). The apply makes mox take its lock right after the
    rename, so the write has ended when the replaced file is looked at: it is found there and our
    change is written again on top of mox's version. Before, it was lost with the unlinked file."""
    opened = os.open(paths.domains_conf, os.O_WRONLY)  # mox's WriteDynamicLocked, under way
    mox_text = paths.domains_conf.read_text().replace(*ADDRESS)

    def finish_the_write_once(mox: FakeMox) -> None:
        if mox.calls == 1:  # the lock mox held for its write: it writes, then answers
            os.pwrite(opened, mox_text.encode(), 0)
            os.ftruncate(opened, len(mox_text.encode()))
            os.close(opened)
        mox.reload()

    mox = FakeMox(paths, on_lock=finish_the_write_once)
    prepared = prepare(paths, resolve_source(str(desired(tmp_path, CAROL))))
    outcome = apply_prepared(prepared, ctl=mox)  # type: ignore[arg-type]
    assert outcome.confirmation.loaded and mox.calls >= 2
    text = paths.domains_conf.read_text()
    assert "carol@carol.example: nil" in text and "ali@example.org: nil" in text  # ours and mox's


def test_writes_run_out_naming_what_was_lost(paths: ConfigPaths, tmp_path: Path) -> None:
    n = iter(range(100))
    mox = FakeMox(paths, on_lock=lambda m: m.write_stale(lambda t: t.replace(
        "\t\t\talice@example.org: nil\n", f"\t\t\talice@example.org: nil\n\t\t\tmox{next(n)}@example.org: nil\n")))
    prepared = prepare(paths, resolve_source(str(desired(tmp_path, CAROL))))
    with pytest.raises(LoadNotConfirmed) as e:
        apply_prepared(prepared, ctl=mox)  # type: ignore[arg-type]
    assert str(e.value).startswith(
        f"{paths.domains_conf} was written over 5 times before mox loaded the change (mox's admin pages or CLI "
        "working from an older config, or another writer); lost: add domain carol.example for account carol, "
        "new account with localpart carol; save DKIM of carol.example")
    assert str(e.value).endswith(". Re-run to apply it again")
    assert "carol" not in paths.domains_conf.read_text()
    report = json.loads((reports_dir_default(paths) / "last-apply.json").read_text())
    assert report["writes"] == 5 and report["confirmation"]["status"] == "failed"
    assert report["confirmation"]["message"] == str(e.value)


def test_keys_written_for_a_change_mox_wrote_over_move_to_old(paths: ConfigPaths, tmp_path: Path) -> None:
    restore = paths.domains_conf.read_text()

    def stale_write_once(mox: FakeMox) -> None:
        if mox.calls == 1:
            mox.write_stale(lambda _t: restore)
        else:
            mox.reload()

    mox = FakeMox(paths, on_lock=stale_write_once)
    text = ("Domains:\n  keys.example:\n    ReportsAccount: kay\n"
            "    DKIM: {Selectors: {ed: {Algorithm: ed25519}}, Sign: [ed]}\n"
            "Accounts:\n  kay:\n    Destinations:\n      kay@keys.example: {}\n")
    prepared = prepare(paths, resolve_source(str(desired(tmp_path, text))))
    outcome = apply_prepared(prepared, ctl=mox)  # type: ignore[arg-type]
    assert outcome.rewrites == 1 and outcome.confirmation.loaded
    live = writer.read_stable(paths.domains_conf).dynamic
    (used,) = [s.PrivateKeyFile for s in live.Domains["keys.example"].DKIM.Selectors.values()]
    in_dkim = sorted(p.name for p in (paths.config_dir / "dkim").glob("*keys.example*"))
    assert in_dkim == [Path(used).name]  # no unreferenced key directly in dkim/
    old = sorted(p.name for p in (paths.config_dir / "dkim" / "old").glob("*keys.example*"))
    assert len(old) == 1  # the first write's key: it was in a domains.conf, so it is kept in old/
    assert not list(paths.config_dir.glob("mox-reconciler.keys.*"))  # the journal is settled


def test_a_change_by_another_writer_that_keeps_ours_is_confirmed_without_writing_again(
        paths: ConfigPaths, tmp_path: Path) -> None:
    def other_writer_once(mox: FakeMox) -> None:
        if mox.calls == 1:  # another reconciler renames its file (ours + its change) into place
            data = paths.domains_conf.read_text().replace("\tadmin:\n", "\tadmin:\n\t\tDescription: other\n")
            tmp = paths.config_dir / "other.tmp"
            tmp.write_text(data)
            os.replace(tmp, paths.domains_conf)
        mox.reload()

    mox = FakeMox(paths, on_lock=other_writer_once)
    prepared = prepare(paths, resolve_source(str(desired(tmp_path, CAROL))))
    outcome = apply_prepared(prepared, ctl=mox)  # type: ignore[arg-type]
    # mox took its lock after our rename and for each confirmation: three times
    assert outcome.confirmation.loaded and outcome.rewrites == 0 and mox.calls == 3
    assert len(outcome.applied.batches) == 2 and not outcome.applied.batches[1].written


def test_not_running_applies_and_says_so(paths: ConfigPaths, tmp_path: Path) -> None:
    prepared = prepare(paths, resolve_source(str(desired(tmp_path, CAROL))))
    outcome = apply_prepared(prepared)
    assert outcome.confirmation.status is Loaded.NOT_RUNNING and outcome.written
    assert outcome.confirmation.waited == 0  # nothing to wait for
    report = json.loads((reports_dir_default(paths) / "last-apply.json").read_text())
    assert report["confirmation"]["status"] == "mox-not-running"
    assert report["confirmation"]["message"].startswith("not confirmed: mox not running")


def test_cli_says_not_confirmed_when_mox_is_not_running_and_verify_is_a_deprecated_no_op(
        paths: ConfigPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.cli.main import main

    src = desired(tmp_path, CAROL)
    assert main(["--config", str(paths.mox_conf), "apply", "--yes", "--verify", str(src)]) == 0
    out, err = capsys.readouterr()
    assert "Applied 4 operations in one write of" in out
    assert "\nnot confirmed: mox not running (mox's control socket " in out
    assert "--verify is deprecated and does nothing more" in err
    assert main(["--config", str(paths.mox_conf), "apply", "--yes", str(src)]) == 0
    out, _ = capsys.readouterr()
    assert "Nothing to do: the live config matches the desired state.\nnot confirmed: mox not running" in out


# --- two reconcilers that planned before either wrote


def test_inventory_is_read_and_written_under_the_lock(paths: ConfigPaths, tmp_path: Path) -> None:
    """A and B plan against the same domains.conf and inventory, then A applies, then B: B plans
    again under the lock from the inventory A wrote, so neither drops the other's objects."""
    from reconciler.plan.inventory import read_inventory

    a = prepare(paths, resolve_source(str(desired(tmp_path / "a", CAROL))))
    b = prepare(paths, resolve_source(str(desired(tmp_path / "b", CAROL.replace("carol", "dave")))))
    assert apply_prepared(a).written
    outcome = apply_prepared(b)
    assert outcome.written and outcome.replanned
    assert {"domain/carol.example", "account/carol", "domain/dave.example", "account/dave"} <= read_inventory(
        paths.config_dir).objects
    text = paths.domains_conf.read_text()
    assert "carol@carol.example" in text and "dave@dave.example" in text


def test_the_same_desired_state_applied_twice_at_once_both_succeed(paths: ConfigPaths, tmp_path: Path) -> None:
    src = resolve_source(str(desired(tmp_path, CAROL)))
    first, second = prepare(paths, src), prepare(paths, src)
    assert apply_prepared(first).written
    outcome = apply_prepared(second)  # planned "add carol.example"; under the lock: nothing to do
    assert not outcome.written and outcome.replanned and outcome.operations == ()


def test_a_replanned_apply_sets_passwords_after_the_write_never_in_it(paths: ConfigPaths, tmp_path: Path) -> None:
    """The password steps of a plan made again under the lock go to mox's socket after the write
    (here: no mox, so pending), never into the batch that writes domains.conf."""
    from reconciler.plan.passwords import SetPassword

    secret = tmp_path / "carol.password"
    secret.write_text("test-only pass phrase 4vK9\n")
    a = prepare(paths, resolve_source(str(desired(tmp_path / "a", CAROL.replace("carol", "dave")))))
    b = prepare(paths, resolve_source(str(desired(tmp_path / "b", CAROL + f"    Password: {{File: {secret}}}\n"))))
    assert any(isinstance(s.op, SetPassword) for s in b.plan.steps)
    assert apply_prepared(a).written
    outcome = apply_prepared(b)
    assert outcome.written and outcome.replanned
    assert not any(isinstance(op, SetPassword) for op in outcome.operations)
    assert "carol@carol.example" in paths.domains_conf.read_text()
    assert [(r.account, r.set) for r in outcome.passwords] == [("carol", False)]
    assert "mox is not running" in outcome.passwords_pending[0].reason
    assert outcome.confirmation.status is Loaded.NOT_RUNNING


def test_the_status_file_says_whether_mox_loaded_it(paths: ConfigPaths, tmp_path: Path) -> None:
    from reconciler.loop.status import StatusBook
    from reconciler.loop.watch import WatchOptions, reconcile_once

    src = desired(tmp_path, CAROL)
    book = StatusBook(tmp_path / "status.json")
    run = reconcile_once(WatchOptions(paths, lambda: resolve_source(str(src))), book)
    doc = json.loads((tmp_path / "status.json").read_text())
    assert run.result == "applied" and doc["confirmation"] == run.confirmation
    assert doc["confirmation"].startswith("not confirmed: mox not running")
    assert doc["history"][0]["confirmation"] == doc["confirmation"]
    ready = next(c for c in doc["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["message"].endswith(doc["confirmation"])


def test_the_status_file_says_why_not_when_mox_keeps_writing_over_it(
        paths: ConfigPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler.pipeline
    from reconciler.loop.status import StatusBook
    from reconciler.loop.watch import WatchOptions, reconcile_once

    n = iter(range(100))
    mox = FakeMox(paths, on_lock=lambda m: m.write_stale(lambda t: t.replace(
        "\t\t\talice@example.org: nil\n", f"\t\t\talice@example.org: nil\n\t\t\tmox{next(n)}@example.org: nil\n")))
    monkeypatch.setattr(reconciler.pipeline, "Ctl", lambda _path: mox)
    src = desired(tmp_path, CAROL)
    run = reconcile_once(WatchOptions(paths, lambda: resolve_source(str(src))), StatusBook(tmp_path / "s.json"))
    doc = json.loads((tmp_path / "s.json").read_text())
    assert run.result == "failed" and doc["reason"] == "ApplyFailed"
    assert doc["confirmation"] == doc["error"] and "was written over 5 times" in doc["confirmation"]
