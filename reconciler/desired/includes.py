"""`Include:`: the files of a desired state, following the includes of each file.

A fleet repository keeps what all mox servers share in `common/` and one directory per server in
`instances/<name>/`; a file there says `Include: ../../common` (a path or a list of paths,
relative to the including file's directory: a `*.yaml`/`*.yml` file, or a directory whose
`*.yaml`/`*.yml` files are taken, not recursively). Every file taken is merged exactly like
the files of one directory. Problems, each at the `Include` entry that caused it:

* the path is absolute, leads outside the source root (the repository, or the SOURCE directory
  when it is not in git), or goes through a symbolic link (like the files of the desired-state
  directory, included files are plain files of the source, never read through a link);
* a cycle (a file that includes itself, directly or through others);
* a file taken twice (listed twice, included from two places, or already a file of the
  desired-state directory): its objects would be defined twice;
* a path that does not exist, an empty directory, a file that is not YAML.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from reconciler.desired.cache import ParseCache
from reconciler.desired.yamlload import (
    Document,
    Location,
    YAMLProblem,
    parse_source,
    problems_of,
    read_source_file,
    yaml_names,
)
from reconciler.errors import DesiredStateError

INCLUDE = "Include"
YAML_SUFFIXES = (".yaml", ".yml")

Problem = tuple[Location, str, str]


@dataclass
class Reading:
    """Every file of a desired state: the documents read, the files taken (resolved paths, in
    reading order, also those that did not parse), the problems found, and the bytes of each
    file read (by path: for the digest, `digest_of`)."""

    docs: list[Document] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)


def _absolute(path: str | Path) -> str:
    """Absolute and normalised (`..` removed) without following links: links are refused, not
    followed, so the normalised path is the file that is read."""
    return os.path.abspath(path)


def _below(root: str) -> str:
    """The prefix of every path inside `root` (absolute and normalised)."""
    return root if root.endswith("/") else root + "/"


def _inside(path: str, root: str) -> bool:
    """`Path(path).is_relative_to(root)` of absolute, normalised paths, without pathlib."""
    return path == root or path.startswith(_below(root))


def _first_link(root: Path, target: Path) -> Path | None:
    """A symbolic link on the way from `root` (exclusive) down to `target`, if any."""
    path = root
    for part in target.relative_to(root).parts:
        path = path / part
        if path.is_symlink():
            return path
    return None


class _Reader:
    def __init__(self, root: Path, cache: ParseCache | None = None) -> None:
        self.root = _absolute(root)
        self.cache = cache
        self.out = Reading()
        # Every file taken so far -> where it was included (None: a file of the source itself).
        self.taken: dict[str, Location | None] = {}

    def read(self, path: str, display: str, chain: tuple[str, ...]) -> None:
        """Read one file, then (depth first) what it includes; `chain` is the files including it.
        `path` is absolute and normalised (plain text: pathlib costs more than the rest of
        reading a file from the parse cache)."""
        self.out.paths.append(path)
        try:
            raw = read_source_file(path, display)
            self.out.contents[path] = raw
            if self.cache is not None:
                doc = self.cache.document(_rel(path, self.root), display, raw)
            else:
                doc = parse_source(display, raw)
        except YAMLProblem as e:
            self.out.problems.extend((p.where, p.field, p.message) for p in problems_of(e))
            return
        value = doc.data.pop(INCLUDE, None)
        self.out.docs.append(doc)
        if value is not None:
            for text, where, field_ in self._entries(doc, value):
                self._include(text, where, field_, path, display, (*chain, path))

    def _entries(self, doc: Document, value: Any) -> list[tuple[str, Location, str]]:
        """(path text, its location, field name) of each entry of an `Include` value."""
        items = [(value, (INCLUDE,))] if not isinstance(value, list) else \
            [(v, (INCLUDE, i)) for i, v in enumerate(value)]
        out = []
        for v, p in items:
            where = doc.locations.value(p) or doc.locations.key((INCLUDE,))
            assert where is not None  # the Include key was read from this file
            name = ".".join(map(str, p))
            if not isinstance(v, str) or not v.strip():
                self.out.problems.append((where, name, "expected a path (or a list of paths) relative to this file"))
            else:
                out.append((v, where, name))
        return out

    def _include(self, text: str, where: Location, name: str, including: str, display: str,
                 chain: tuple[str, ...]) -> None:
        def problem(msg: str) -> None:
            self.out.problems.append((where, name, msg))

        if PurePosixPath(text).is_absolute() or Path(text).is_absolute():
            return problem(f"{text!r}: must be a path relative to this file")
        target = _absolute(os.path.join(os.path.dirname(including), text))
        if not _inside(target, self.root):
            return problem(f"{text!r} leads outside the source root {self.root} (an include may only "
                           "name files of the same repository; run with SOURCE at the repository root "
                           "and --subdir for the instance)")
        link = _first_link(Path(self.root), Path(target))
        if link is not None:
            return problem(f"{text!r} goes through the symbolic link {_rel(str(link), self.root)}; the desired state "
                           "must be plain files inside the source: replace the link with the files themselves")
        shown = os.path.normpath(os.path.join(os.path.dirname(display), text))
        if os.path.isdir(target):
            names = yaml_names(target)
            if not names:
                return problem(f"{text!r}: no *.yaml files in this directory")
            taken = [(os.path.join(target, n), os.path.join(shown, n)) for n in names]
        elif os.path.isfile(target):
            if Path(target).suffix not in YAML_SUFFIXES:
                return problem(f"{text!r}: not a *.yaml or *.yml file")
            taken = [(target, shown)]
        else:
            return problem(f"{text!r}: no such file or directory")
        for path, shown_file in taken:
            if path in chain:
                cycle = " -> ".join(_rel(p, self.root) for p in (*chain[chain.index(path):], path))
                problem(f"include cycle: {cycle}")
            elif path in self.taken:
                first = self.taken[path]
                at = f"already included at {first}" if first else "already a file of the desired-state directory"
                problem(f"{_rel(path, self.root)} is taken twice ({at}); include it once")
            else:
                self.taken[path] = where
                self.read(path, shown_file, chain)


def _rel(path: str, root: str) -> str:
    """`path` relative to `root` (`Path.relative_to(...).as_posix()`), else as it is."""
    if path == root:
        return "."
    below = _below(root)
    return path[len(below):] if path.startswith(below) else path


def default_root(source: Path) -> Path:
    """The root includes may not leave when none is given: the git work tree holding SOURCE
    (a `.git` entry in it or above), else SOURCE's directory."""
    start = Path(_absolute(source if source.is_dir() else source.parent))
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return start


def read_with_includes(source: Path, root: Path | None = None, cache: ParseCache | None = None) -> Reading:
    """The documents of a desired state (a directory of *.yaml, or one file) and of every file
    they include, which must stay inside `root` (default: `default_root`); `cache`: parsed files
    by content (`reconciler.desired.cache`).

    Raises DesiredStateError when SOURCE does not exist or holds no YAML file; every other
    problem is in the result (file:line:col of the entry that caused it).
    """
    if not source.exists():
        raise DesiredStateError([f"{source}: no such file or directory"])
    if source.is_dir():
        names = yaml_names(source)
        shown, at = _joined(str(source)), _below(_absolute(source))
        files = [(at + n, shown + n) for n in names]
    else:
        files = [(_absolute(source), str(source))]
    if not files:
        raise DesiredStateError([f"{source}: no *.yaml files in this directory{_subdir_hint(source)}"])
    reader = _Reader(root if root is not None else default_root(source), cache)
    for path, _ in files:
        reader.taken[path] = None
    for path, display in files:
        reader.read(path, display, ())
    return reader.out


def _joined(directory: str) -> str:
    """What `str(Path(directory) / name)` puts before `name` (`directory` is a Path's text)."""
    return "" if directory == "." else _below(directory)


def _subdir_hint(source: Path) -> str:
    """Where the desired state probably is when SOURCE has no YAML: subdirectories that do
    (a repository with the desired state in `desired/` needs --subdir desired)."""
    found: list[str] = []
    try:
        for d in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if any(f.suffix in (".yaml", ".yml") for f in d.iterdir() if f.is_file()):
                found.append(d.name)
    except OSError:
        return ""
    if not found:
        return ""
    return (f"; *.yaml files are in {', '.join(f'{n}/' for n in found[:3])}: give that directory, or "
            f"--subdir {found[0]} for a git URL")


def desired_files(source: Path, root: Path | None = None, cache: ParseCache | None = None) -> list[Path]:
    """Every file of the desired state, included ones too (for digests); [] when there is none.
    `cache`: files parsed before with the same bytes are taken from it."""
    try:
        return [Path(p) for p in read_with_includes(source, root, cache).paths]
    except DesiredStateError:
        return []


def digest_of(base: str, paths: Iterable[str | Path], contents: Mapping[str, bytes] | None = None) -> str:
    """The desired digest: SHA-256 over the files `paths` (each name relative to the directory
    `base`, then its bytes), in the order of the names. The bytes are taken from `contents` (by
    path: what a reading read, so that a plan digests what it loaded without reading every file
    again), else read. Raises DesiredStateError for a file that cannot be read."""
    below = _below(base)
    named = []
    for p in paths:
        p = str(p)
        # relpath of an absolute path below base, without . or .. in it, is the rest of it
        fast = p.startswith(below) and "//" not in p and "/." not in p
        name = p[len(below):] if fast else Path(os.path.relpath(p, base)).as_posix()
        named.append((name, p))
    h = hashlib.sha256()
    for name, p in sorted(named):
        h.update(name.encode() + b"\0")
        raw = contents.get(p) if contents is not None else None
        if raw is None:
            try:
                raw = read_source_file(Path(p))
            except YAMLProblem as e:
                raise DesiredStateError([e.text()]) from None
        h.update(raw)
        h.update(b"\0")
    return h.hexdigest()
