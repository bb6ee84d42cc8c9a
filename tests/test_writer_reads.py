"""How the writer looks at domains.conf: a look that must see the file unchanged compares it a
piece at a time with what was read (`writer.check_unchanged`), and `read_stable` takes two
reads as the same content by digest, size and mtime, keeping the bytes already known."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from reconciler.apply import writer
from reconciler.errors import ConcurrentChange
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
