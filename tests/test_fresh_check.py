"""A saved plan's freshness (`pipeline.check_fresh`) reads files, it does not parse them: the live
config's SHA-256 from domains.conf's bytes, the desired digest from the files' bytes when none of
them can include another (the same digest `read_with_includes` gives, which parses every file to
find its includes); a file that may include is read with includes, as before. Any change still
makes the plan stale."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler import pipeline
from reconciler.desired import includes, yamlload
from reconciler.desired.importer import import_files
from reconciler.desired.source import resolve_source
from reconciler.errors import DesiredStateError, StalePlan
from reconciler.mox.live import ConfigPaths, locate, read_live
from reconciler.pipeline import check_fresh, desired_digest, prepare
from reconciler.plan.document import PlanDocument

ROOT = Path(__file__).resolve().parent.parent


def digest_by_parsing(path: Path, root: Path | None = None) -> str:
    """The digest as every file is parsed to find what it includes (as `desired_digest` did)."""
    base = str(path if path.is_dir() else path.parent)
    try:
        reading = includes.read_with_includes(path, root)
    except DesiredStateError:
        return includes.digest_of(base, [])
    return includes.digest_of(base, reading.paths, reading.contents)


def outcome(digest: Callable[[Path], str], path: Path) -> str:
    try:
        return digest(path)
    except DesiredStateError as e:
        return f"error: {e}"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per desired-state file parsed, or domains.conf parsed, from now on."""
    seen: list[str] = []
    real_source, real_live = yamlload.parse_source, vars(pipeline)["read_live"]

    def source(name: str, raw: bytes) -> Any:
        seen.append(name)
        return real_source(name, raw)

    def live(*a: Any, **kw: Any) -> Any:
        seen.append("domains.conf")
        return real_live(*a, **kw)

    monkeypatch.setattr(yamlload, "parse_source", source)
    monkeypatch.setattr(includes, "parse_source", source)
    monkeypatch.setattr(pipeline, "read_live", live)
    return seen


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


LAYOUTS: dict[str, Callable[[Path], Path]] = {}


def layout(fn: Callable[[Path], Path]) -> Callable[[Path], Path]:
    LAYOUTS[fn.__name__] = fn
    return fn


@layout
def plain(d: Path) -> Path:
    write(d / "a.yaml", "Accounts:\n  a:\n    Destinations:\n      a@example.com: {}\n")
    write(d / "b.yml", "# just a comment\n")
    write(d / "broken.yaml", "Domains: [\n")  # read, not parsed: it is in the digest all the same
    return d


@layout
def with_include(d: Path) -> Path:
    write(d / "a.yaml", "Include: shared\n")
    write(d / "shared" / "s.yaml", "Accounts:\n  s:\n    Destinations:\n      s@example.com: {}\n")
    return d


@layout
def escaped_key(d: Path) -> Path:
    write(d / "a.yaml", '"Incl\\u0075de": shared\n')  # the key is Include, spelled with an escape
    write(d / "shared" / "s.yaml", "Accounts: {}\n")
    return d


@layout
def one_file(d: Path) -> Path:
    write(d / "only.yaml", "Accounts: {}\n")
    return d / "only.yaml"


@layout
def a_link(d: Path) -> Path:
    write(d / "real.txt", "Accounts: {}\n")
    (d / "a.yaml").symlink_to(d / "real.txt")
    return d


@layout
def empty(d: Path) -> Path:
    d.mkdir()
    return d


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_the_digest_read_without_parsing_is_the_digest_read_with_includes(tmp_path: Path, name: str,
                                                                            parses: list[str]) -> None:
    source = LAYOUTS[name](tmp_path / "desired")
    want = outcome(digest_by_parsing, source)
    parses.clear()
    assert outcome(desired_digest, source) == want
    if name in ("plain", "one_file"):
        assert parses == []  # no file can include another: read, not parsed
    if name in ("with_include", "escaped_key"):
        assert parses  # one may: read with its includes
        assert desired_digest(source) != digest_by_parsing(source / "shared")


class Env:
    def __init__(self, tmp: Path) -> None:
        shutil.copytree(ROOT / "examples" / "mox", tmp / "mox")
        (tmp / "mox" / "data").mkdir(exist_ok=True)
        self.paths: ConfigPaths = locate(str(tmp / "mox" / "config" / "mox.conf"))
        live = read_live(self.paths)
        self.desired = tmp / "desired"
        self.desired.mkdir()
        for name, text in import_files(live.static, live.dynamic).items():
            (self.desired / name).write_text(text)
        (self.desired / "extra.yaml").write_text("Accounts:\n  bob:\n    Domain: example.com\n    Destinations:\n"
                                                 "      bob@example.com: {}\n")

    def doc(self) -> PlanDocument:
        return prepare(self.paths, resolve_source(str(self.desired))).doc


def _edit_domains_conf(env: Env) -> None:
    conf = env.paths.domains_conf
    conf.write_bytes(conf.read_bytes() + b"\n")


CHANGES: dict[str, Callable[[Env], object]] = {
    "domains.conf": _edit_domains_conf,
    "a desired file": lambda env: (env.desired / "extra.yaml").write_text(
        (env.desired / "extra.yaml").read_text() + "# changed\n"),
    "a desired file added": lambda env: (env.desired / "new.yml").write_text("{}\n"),
    "an included file": lambda env: (env.desired / "shared" / "s.yaml").write_text("Accounts: {}\n# changed\n"),
}


@pytest.mark.parametrize("change", [None, *CHANGES])
@pytest.mark.parametrize("include", [False, True])
def test_check_fresh_reads_without_parsing_and_refuses_any_change(tmp_path: Path, parses: list[str],
                                                                  change: str | None, include: bool) -> None:
    env = Env(tmp_path)
    if include or change == "an included file":
        write(env.desired / "shared" / "s.yaml", "Accounts: {}\n")
        (env.desired / "extra.yaml").write_text((env.desired / "extra.yaml").read_text() + "Include: shared\n")
    doc = env.doc()
    if change is not None:
        CHANGES[change](env)
    parses.clear()
    if change is None:
        assert check_fresh(env.paths, doc) is not None
    else:
        with pytest.raises(StalePlan):
            check_fresh(env.paths, doc)
    assert "domains.conf" not in parses  # its SHA-256 is of the bytes
    uses_includes = include or change == "an included file"
    assert bool(parses) == (uses_includes and change != "domains.conf")
