"""Locking and atomic replacement of domains.conf, on a real filesystem."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from reconciler import fsutil
from reconciler.apply import batch, writer
from reconciler.errors import ConcurrentChange, LiveConfigError, LockTimeout
from reconciler.mox.admin import AddressAdd, DKIMAdd, DomainAdd
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.live import ConfigPaths

from .conftest import build_step_config

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


def make_instance(tmp: Path, step: str = "01-domain-add-example.org") -> ConfigPaths:
    return ConfigPaths(build_step_config(GOLDEN / "steps" / step, tmp))


def test_replace_keeps_owner_mode_and_changes_mtime(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    dc = paths.domains_conf
    os.chmod(dc, 0o660)
    if os.getuid() == 0:
        os.chown(dc, 1000, 1001)
    old = os.stat(dc)
    snap = writer.read_stable(dc)
    # Same mtime as the old file would make mox miss the change: force that case.
    new = writer.replace(snap, snap.data + b"").stat
    assert new.st_ino != old.st_ino
    assert stat.S_IMODE(new.st_mode) == 0o660
    assert (new.st_uid, new.st_gid) == (old.st_uid, old.st_gid)
    assert new.st_mtime_ns != old.st_mtime_ns
    assert not list(paths.config_dir.glob(".domains.conf.*"))


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give files to another uid")
def test_new_key_files_owned_like_domains_conf(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    shutil.rmtree(paths.config_dir / "dkim")
    shutil.copy(GOLDEN / "steps" / "00-init-bootstrap" / "domains.conf", paths.domains_conf)
    os.chown(paths.domains_conf, 1000, 1000)
    res = batch.apply_batch(paths, [DomainAdd("example.org", "alice", "alice")], workers=1)
    for rel in res.keys_created:
        st = os.stat(paths.config_dir / rel)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o640)
    st = os.stat(paths.config_dir / "dkim")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (1000, 0o2750)
    st = os.stat(paths.domains_conf)
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_key_files_mode_0640(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    res = batch.apply_batch(paths, [DKIMAdd("example.org", "s1", "ed25519")])
    (rel,) = res.keys_created
    st = os.stat(paths.config_dir / rel)
    assert stat.S_IMODE(st.st_mode) == 0o640
    text = (paths.config_dir / rel).read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----\nNote: ed25519 dkim private key for s1._domainkey.example.org")


def _other_writer(path: Path, calls: list[int], times: int) -> batch.Validator:
    """A validator that, like mox's admin, rewrites domains.conf in place while we hold our lock."""

    def validate(static: Static, dynamic: Dynamic, config_dir: Path) -> None:
        batch.default_validator(static, dynamic, config_dir)
        calls.append(1)
        if len(calls) <= times:
            text = path.read_text()
            new = text.replace("\tmail.example.org: nil\n", f"\tmail.example.org: nil\n\tother{len(calls)}.example: nil\n")
            with open(path, "r+") as f:  # In place, like mox.
                f.write(new)
                f.truncate()
    return validate


def test_concurrent_change_is_refused(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    calls: list[int] = []
    with pytest.raises(ConcurrentChange) as exc:
        batch.apply_batch(
            paths, [DKIMAdd("example.org", "s1", "ed25519")], retries=0,
            validator=_other_writer(paths.domains_conf, calls, 1),
        )
    assert "changed by another writer" in str(exc.value)
    text = paths.domains_conf.read_text()
    assert "other1.example" in text and "s1:" not in text  # Theirs kept, ours not written.
    assert not list((paths.config_dir / "dkim").glob("s1.*"))  # Our new key removed again.


def test_concurrent_change_is_retried(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    calls: list[int] = []
    res = batch.apply_batch(
        paths, [DKIMAdd("example.org", "s1", "ed25519")], retries=2,
        validator=_other_writer(paths.domains_conf, calls, 1),
    )
    assert res.attempts == 2
    text = paths.domains_conf.read_text()
    assert "other1.example" in text and "s1:" in text  # Both changes survive.
    assert len(list((paths.config_dir / "dkim").glob("s1.*"))) == 1


def test_read_stable_waits_for_a_complete_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = make_instance(tmp_path)
    dc = paths.domains_conf
    good = dc.read_bytes()
    dc.write_bytes(good[: len(good) // 3])  # mox caught mid-write: a truncated, unparsable file.
    pauses: list[float] = []

    def pause(seconds: float) -> None:  # mox finishes its write while read_stable pauses
        pauses.append(seconds)
        if len(pauses) == 2:
            with open(dc, "r+b") as f:
                f.write(good)
    monkeypatch.setattr(writer, "time", SimpleNamespace(sleep=pause))
    snap = writer.read_stable(dc)
    assert snap.data == good
    assert len(pauses) >= 3  # the truncated reads, the completed file, then two agreeing reads


def test_read_stable_gives_up_on_a_broken_file(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    paths.domains_conf.write_text("Domains:\n\tx:\n")
    with pytest.raises(LiveConfigError, match="expected indent"):
        writer.read_stable(paths.domains_conf, attempts=2, pause=0.01)


def test_lock_excludes_other_processes(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    code = (
        "import sys; from pathlib import Path; from reconciler.apply import writer\n"
        "with writer.config_lock(Path(sys.argv[1])):\n"
        "    print('locked', flush=True); sys.stdin.read()\n"  # holds the lock until killed
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(paths.config_dir)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        with pytest.raises(LockTimeout, match="another process holds the config lock"):
            batch.apply_batch(paths, [AddressAdd("x@example.org", "alice")], lock_timeout=0.3)
    finally:
        p.kill()
        p.communicate()
    batch.apply_batch(paths, [AddressAdd("x@example.org", "alice")], lock_timeout=5)
    assert "x@example.org" in paths.domains_conf.read_text()


def test_lock_serializes_threads(tmp_path: Path) -> None:
    """Many threads adding addresses at once: every change lands, none is lost."""
    paths = make_instance(tmp_path)
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            batch.apply_batch(paths, [AddressAdd(f"t{i}@example.org", "alice")])
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    text = paths.domains_conf.read_text()
    assert all(f"t{i}@example.org: nil" in text for i in range(8))


def test_a_mox_write_into_the_file_being_replaced_is_written_again_on_top(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mox opens domains.conf in place and writes it (WriteDynamicLocked): a write that lands after
    our last check but before our rename goes into the old file, which the rename then drops. It is
    found in the old file (kept open) and our change is written again on top of mox's version."""
    paths = make_instance(tmp_path)
    dc = paths.domains_conf
    real_replace = os.replace
    moxed: list[int] = []

    def rename_right_after_a_mox_write(src: str, dst: str, **kw: object) -> None:
        if dst == "domains.conf" and not moxed:
            moxed.append(os.stat(dc).st_ino)
            text = dc.read_text().replace("\tmail.example.org: nil\n", "\tmail.example.org: nil\n\tmox.example: nil\n")
            with open(dc, "r+") as f:  # in place, like mox
                f.write(text)
                f.truncate()
        real_replace(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(fsutil.os, "replace", rename_right_after_a_mox_write)
    res = batch.apply_batch(paths, [AddressAdd("v@example.org", "alice")])
    assert moxed
    text = dc.read_text()
    assert "mox.example: nil" in text and "v@example.org: nil" in text  # both: mox's and ours
    assert res.state.data == dc.read_bytes() and res.written
    assert res.before is None  # what the path held at the rename was mox's write, not the file read
    assert not list(paths.config_dir.glob(".domains.conf.*"))


def test_a_batch_names_the_file_its_write_replaced(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    read = writer.read_stable(paths.domains_conf)
    res = batch.apply_batch(paths, [AddressAdd("v@example.org", "alice")])
    assert res.written and res.before is not None and res.before.same_file(read)
    again = batch.apply_batch(paths, [])
    assert not again.written and again.before is None
