"""How the writer looks at domains.conf: a look that must see the file unchanged compares it a
piece at a time with what was read (`writer.check_unchanged`), and `read_stable` takes two
reads as the same content by digest, size and mtime, keeping the bytes already known."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from reconciler.apply import writer
from reconciler.errors import ConcurrentChange, LiveConfigError
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic

from .conftest import GOLDEN_STEPS


def _file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "domains.conf"
    data = (GOLDEN_STEPS[-1] / "domains.conf").read_bytes()
    path.write_bytes(data)
    return path, data


def test_an_unchanged_file_passes_when_it_is_larger_than_a_piece(tmp_path: Path) -> None:
    path, data = _file(tmp_path)
    snap = writer.read_stable(path)
    assert len(data) > 64
    assert writer.holds(snap, piece=7)
    assert writer.holds(snap)
    writer.check_unchanged(snap)


def test_different_bytes_under_the_same_stat_are_a_change(tmp_path: Path) -> None:
    """The stat alone does not decide: the bytes are compared (here a snapshot whose bytes
    differ in the last piece only, with the file's own stat)."""
    path, data = _file(tmp_path)
    snap = writer.read_stable(path)
    for changed in (data[:-1] + b"#", data[:-1], data + b"\n"):
        other = dataclasses.replace(snap, data=changed)
        assert not writer.holds(other, piece=5)
        with pytest.raises(ConcurrentChange, match="changed by another writer"):
            writer.check_unchanged(other)


def test_a_rewritten_file_is_a_change_even_with_the_same_bytes(tmp_path: Path) -> None:
    path, data = _file(tmp_path)
    snap = writer.read_stable(path)
    path.unlink()
    path.write_bytes(data)  # a new inode (as a rename makes)
    os.utime(path, ns=(snap.stat.st_atime_ns, snap.stat.st_mtime_ns))
    with pytest.raises(ConcurrentChange):
        writer.check_unchanged(snap)


def test_read_stable_keeps_the_known_bytes_and_config(tmp_path: Path) -> None:
    path, data = _file(tmp_path)
    known_bytes = bytes(bytearray(data))  # equal, another object
    known_cfg = sconf.parse_bytes(data, Dynamic)
    snap = writer.read_stable(path, known=[(known_bytes, known_cfg)])
    assert snap.data is known_bytes and snap.dynamic is known_cfg
    fresh = writer.read_stable(path, known=[(data + b"x", known_cfg)])
    assert fresh.data == data and fresh.dynamic is not known_cfg and fresh.dynamic == known_cfg


def test_read_stable_compares_known_bytes_without_reading_the_file_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that holds the known bytes is seen so a piece at a time: the whole-file read (a
    second copy of an 8.5 MB file at 10,000 domains) is not made."""
    path, data = _file(tmp_path)
    known_cfg = sconf.parse_bytes(data, Dynamic)

    def whole_read(_: Path) -> None:
        raise AssertionError("read whole")

    monkeypatch.setattr(writer, "_read_once", whole_read)
    snap = writer.read_stable(path, known=[(data + b"x", known_cfg), (data, known_cfg)])
    assert snap.data is data and snap.dynamic is known_cfg
    assert snap.stat.st_ino == path.stat().st_ino and snap.identity == writer.read_stable(path, known=[(data, known_cfg)]).identity


@pytest.mark.parametrize("change", ["late byte", "early byte", "shorter", "longer"])
def test_read_stable_parses_a_file_that_differs_from_the_known_bytes(tmp_path: Path, change: str) -> None:
    path, data = _file(tmp_path)
    known_cfg = sconf.parse_bytes(data, Dynamic)
    at = data.rindex(b".pem") if change == "late byte" else data.index(b".pem")
    now = {"late byte": data[:at] + b".pex" + data[at + 4:], "early byte": data[:at] + b".pex" + data[at + 4:],
           "shorter": data[:at] + data[at + 4:], "longer": b"# a comment\n" + data}[change]
    path.write_bytes(now)
    snap = writer.read_stable(path, known=[(data, known_cfg)])
    assert snap.data == now and snap.dynamic is not known_cfg


def test_read_stable_does_not_take_known_bytes_whose_mtime_moved_between_looks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two agreeing looks need the same mtime too: a write of the same bytes between them (mox
    rewriting the file in place) makes the known bytes not taken at once."""
    path, data = _file(tmp_path)
    known_cfg = sconf.parse_bytes(data, Dynamic)
    same_bytes = writer._same_bytes
    looks: list[int] = []

    def touching(p: Path, d: bytes, piece: int = 1 << 20) -> os.stat_result | None:
        st = same_bytes(p, d, piece)
        looks.append(st.st_mtime_ns if st is not None else -1)
        if len(looks) == 1:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000) if st else None)
        return st

    monkeypatch.setattr(writer, "_same_bytes", touching)
    assert writer._holds_twice(path, data) is None
    assert looks[0] != looks[1]
    snap = writer.read_stable(path, known=[(data, known_cfg)])  # a later look agrees
    assert snap.dynamic is known_cfg


def test_read_stable_known_bytes_of_a_link_keep_the_link_error(tmp_path: Path) -> None:
    path, data = _file(tmp_path)
    target = tmp_path / "real.conf"
    path.rename(target)
    path.symlink_to(target)
    with pytest.raises(LiveConfigError, match="is a symbolic link"):
        writer.read_stable(path, known=[(data, sconf.parse_bytes(data, Dynamic))])
