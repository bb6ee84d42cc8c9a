"""The parse cache of desired-state files: a file whose bytes are unchanged is not parsed again,
the result equals a parse, problems are never cached, and a cache that cannot be trusted or
written is simply not used."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from reconciler import __version__
from reconciler.desired.cache import ParseCache, default_root
from reconciler.desired.load import load_desired
from reconciler.errors import DesiredStateError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "desired"


@pytest.fixture
def desired(tmp_path: Path) -> Path:
    d = tmp_path / "desired"
    shutil.copytree(EXAMPLES, d)
    return d


def load(desired: Path, root: Path) -> tuple[object, ParseCache]:
    cache = ParseCache(root, str(desired))
    return load_desired(desired, cache=cache), cache


def test_unchanged_files_come_from_the_cache_and_equal_a_parse(desired: Path, tmp_path: Path) -> None:
    files = len(list(desired.glob("*.yaml")))
    first, c1 = load(desired, tmp_path / "cache")
    assert (c1.hits, c1.misses) == (0, files)
    second, c2 = load(desired, tmp_path / "cache")
    assert (c2.hits, c2.misses) == (files, 0)
    plain = load_desired(desired)
    for state in (first, second):
        assert state == plain
        assert state.model_fields_set == plain.model_fields_set  # type: ignore[attr-defined]
        assert state._origins.as_dict() == plain._origins.as_dict()  # type: ignore[attr-defined]
        assert state.files == plain.files  # type: ignore[attr-defined]
    assert second.where("Domains", "example.com") == plain.where("Domains", "example.com")  # type: ignore[attr-defined]


def test_a_changed_file_is_parsed_again_alone(desired: Path, tmp_path: Path) -> None:
    load(desired, tmp_path / "cache")
    target = desired / "domain-example.net.yaml"
    target.write_text(target.read_text().replace("example.net:", "example.net:\n    Description: changed", 1))
    state, cache = load(desired, tmp_path / "cache")
    assert cache.misses == 1
    assert state.Domains["example.net"].Description == "changed"  # type: ignore[attr-defined]
    assert state == load_desired(desired)


def test_problems_are_reported_the_same_and_never_cached(desired: Path, tmp_path: Path) -> None:
    (desired / "bad.yaml").write_text("Domains:\n  bad.example:\n    Nonsense: 1\n  x: [\n")
    with pytest.raises(DesiredStateError) as plain:
        load_desired(desired)
    files = len(list(desired.glob("*.yaml")))
    for misses in (files, 1):  # all files the first time; then the bad file again, every time
        cache = ParseCache(tmp_path / "cache", str(desired))
        with pytest.raises(DesiredStateError) as cached:
            load_desired(desired, cache=cache)
        assert cached.value.problems == plain.value.problems
        assert cache.misses == misses


def test_an_untrusted_or_damaged_cache_is_not_used(desired: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # others could plant a bundle: not read, not written
    state, cache = load(desired, shared)
    assert cache.path is None and list(shared.iterdir()) == []
    assert state == load_desired(desired)

    root = tmp_path / "cache"
    load(desired, root)
    (bundle,) = root.iterdir()
    bundle.write_bytes(b"\x00 not a bundle")
    state, cache = load(desired, root)
    assert cache.hits == 0 and state == load_desired(desired)
    _, cache = load(desired, root)  # written again in the meantime
    assert cache.misses == 0


def test_unwritable_cache_dir_is_no_error(desired: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    state, cache = load(desired, blocker / "sub")  # cannot be created
    assert cache.path is None and state == load_desired(desired)


def test_the_cache_is_per_reconciler_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_root() == tmp_path / "mox-reconciler" / "parsed" / __version__
    assert default_root(tmp_path / "src") == tmp_path / "src" / "parsed" / __version__
    assert os.environ["XDG_CACHE_HOME"] == str(tmp_path)


def test_includes_are_followed_from_the_cache_too(tmp_path: Path) -> None:
    """The loader takes `Include` out of a file's data: the cache keeps its own copy."""
    root = tmp_path / "repo"
    (root / "common").mkdir(parents=True)
    (root / "instance").mkdir()
    for f in EXAMPLES.glob("*.yaml"):
        shutil.copy(f, root / ("instance" if f.name == "domain-example.net.yaml" else "common") / f.name)
    (root / "instance" / "include.yaml").write_text("Include: ../common\n")
    plain = load_desired(root / "instance", root)
    files = len(list(EXAMPLES.glob("*.yaml"))) + 1
    for hits in (0, files):
        cache = ParseCache(tmp_path / "cache", "repo")
        assert load_desired(root / "instance", root, cache) == plain
        assert cache.hits == hits


def test_strings_decoded_from_the_cache_are_one_object_per_text(tmp_path: Path) -> None:
    """The bundle keeps strings interned: the keys and names repeated in 10,000 files are one
    object each once decoded (memory), and the data is the same as parsed."""
    raw = {"a.yaml": b"Domains:\n  a.example: {ReportsAccount: ann}\n",
           "b.yaml": b"Domains:\n  b.example: {ReportsAccount: ann}\n"}
    first = ParseCache(tmp_path / "cache", "k")
    parsed = {name: first.document(name, name, text) for name, text in raw.items()}
    first.save()
    again = ParseCache(tmp_path / "cache", "k")
    docs = {name: again.document(name, name, text) for name, text in raw.items()}
    assert again.hits == 2
    assert {n: d.data for n, d in docs.items()} == {n: d.data for n, d in parsed.items()}
    a, b = docs["a.yaml"].data["Domains"], docs["b.yaml"].data["Domains"]
    assert next(iter(docs["a.yaml"].data)) is next(iter(docs["b.yaml"].data))
    assert a["a.example"]["ReportsAccount"] is b["b.example"]["ReportsAccount"]
    assert docs["a.yaml"].locations.value(("Domains", "a.example", "ReportsAccount")) == \
        parsed["a.yaml"].locations.value(("Domains", "a.example", "ReportsAccount"))
