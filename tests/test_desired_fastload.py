"""The fast paths of loading a desired state give what the plain ones gave: the files listed and
read (plain text paths, one directory listing, reads sized by the file), the names shown in
messages, and the desired digest carried from the load instead of reading every file again."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from reconciler.desired import yamlload
from reconciler.desired.cache import ParseCache
from reconciler.desired.includes import read_with_includes
from reconciler.desired.load import load_desired
from reconciler.desired.yamlload import read_source_file, source_files, yaml_names
from reconciler.pipeline import desired_digest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "desired"
FLEET = ROOT / "examples" / "fleet"


def reference_digest(path: Path, files: list[Path]) -> str:
    """The desired digest as it was first written: every file read again, named by relpath."""
    base = Path(os.path.abspath(path if path.is_dir() else path.parent))
    h = hashlib.sha256()
    for name, p in sorted((os.path.relpath(p, base), p) for p in files):
        h.update(Path(name).as_posix().encode() + b"\0")
        h.update(Path(p).read_bytes() + b"\0")
    return h.hexdigest()


def reference_files(source: Path) -> list[Path]:
    """The files of a directory as pathlib listed them."""
    return sorted(p for p in source.iterdir() if p.suffix in (".yaml", ".yml") and (p.is_symlink() or p.is_file()))


# ---------------------------------------------------------------------------------------------
# Listing and reading files


def test_yaml_names_list_what_pathlib_listed(tmp_path: Path) -> None:
    for name in ["b.yaml", "a.yml", ".yaml", ".hidden.yaml", "c.YAML", "d.yaml.", "e.json", "f.yaml.bak",
                 "Z.yaml", "é.yaml", "ü.yml", "x..yaml", "10.yaml", "9.yaml"]:
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere")
    (tmp_path / "link.yml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "dirlink.yaml").symlink_to(tmp_path / "dir.yaml")
    os.mkfifo(tmp_path / "fifo.yaml")
    want = reference_files(tmp_path)
    assert len(want) == 12
    assert [tmp_path / n for n in yaml_names(tmp_path)] == want
    assert source_files(tmp_path) == want
    assert source_files(tmp_path / "b.yaml") == [tmp_path / "b.yaml"]


@pytest.mark.parametrize("size", [0, 1, 333, 65535, 65536, 65537, 200_001, yamlload.MAX_FILE_BYTES])
def test_a_file_is_read_whole(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f.yaml").write_bytes(data)
    assert read_source_file(tmp_path / "f.yaml") == data
    assert read_source_file(str(tmp_path / "f.yaml")) == data


def test_a_file_that_grew_since_its_size_was_taken_is_read_to_its_end(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"a" * 1000)
    real_fstat = os.fstat

    def fstat_then_grow(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        with path.open("ab") as f:  # the file grows between fstat and read
            f.write(b"b" * 150_000)
        return st

    monkeypatch.setattr(yamlload.os, "fstat", fstat_then_grow)
    assert read_source_file(path) == b"a" * 1000 + b"b" * 150_000


def test_displayed_names_are_the_paths_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    for d in (tmp_path, tmp_path / "sub"):
        (d / "a.yaml").write_text("Policy: {}\n")
    monkeypatch.chdir(tmp_path)
    for source in (Path("."), Path("sub"), Path("./sub/"), tmp_path / "sub", Path("sub/a.yaml")):
        reading = read_with_includes(source, tmp_path)
        want = [str(source / "a.yaml")] if source.is_dir() else [str(source)]
        assert [doc.file for doc in reading.docs] == want
        assert reading.paths == [str(tmp_path / ("." if source == Path(".") else "sub") / "a.yaml").replace("/./", "/")]


# ---------------------------------------------------------------------------------------------
# The desired digest


def _copy_fleet(tmp_path: Path) -> Path:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET, fleet)
    return fleet


@pytest.mark.parametrize("case", ["examples", "fleet", "single-file", "hidden-and-relative"])
@pytest.mark.parametrize("cached", [False, True])
def test_the_digest_carried_from_the_load_is_the_digest_of_the_files(
        case: str, cached: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root: Path | None = None
    if case == "examples":
        source = tmp_path / "desired"
        shutil.copytree(EXAMPLES, source)
    elif case == "fleet":  # included files outside the directory: names with ../
        root = _copy_fleet(tmp_path)
        source = root / "instances" / "mail-a"
    elif case == "single-file":
        source = tmp_path / "one.yaml"
        source.write_text("Accounts:\n  ann:\n    Domain: a.example\n    Destinations: {}\n"
                          "Domains:\n  a.example:\n    ReportsAccount: ann\n")
    else:  # a hidden file, a source given relative to the working directory
        shutil.copytree(EXAMPLES, tmp_path / "desired")
        (tmp_path / "desired" / ".extra.yaml").write_text("MonitorDNSBLs: [dnsbl.example]\n")
        monkeypatch.chdir(tmp_path)
        source = Path("desired")
    cache = ParseCache(tmp_path / "cache", "k") if cached else None
    if cache is not None:
        load_desired(source, root, cache)
        cache = ParseCache(tmp_path / "cache", "k")
    state = load_desired(source, root, cache)
    assert cache is None or cache.misses == 0
    want = reference_digest(source, state.paths)
    assert state.digest_at(os.path.abspath(source if source.is_dir() else source.parent)) == want
    assert desired_digest(source, root, desired=state) == want
    assert desired_digest(source, root, files=state.paths) == want
    assert desired_digest(source, root) == want
    assert state.digest_at("/elsewhere") is None


def test_the_digest_of_a_state_is_of_the_bytes_it_was_loaded_from(tmp_path: Path) -> None:
    source = tmp_path / "desired"
    shutil.copytree(EXAMPLES, source)
    state = load_desired(source)
    before = desired_digest(source, desired=state)
    (source / "policy.yaml").write_text((source / "policy.yaml").read_text() + "# edited\n")
    assert desired_digest(source, desired=state) == before  # what was planned, not what is there now
    now = reference_digest(source, state.paths)
    assert now != before
    assert desired_digest(source, files=state.paths) == now
    assert desired_digest(source) == now


def test_the_digest_of_paths_given_unnormalised_names_them_as_relpath_does(tmp_path: Path) -> None:
    source = tmp_path / "desired"
    shutil.copytree(EXAMPLES, source)
    (source / "x").mkdir()
    files = [Path(f"{source}/./policy.yaml"), Path(f"{source}//accounts.yaml"), Path(f"{source}/x/../policy.yaml")]
    assert desired_digest(source, files=files) == reference_digest(source, files)
