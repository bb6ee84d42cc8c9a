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

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from reconciler.desired.cache import ParseCache
from reconciler.desired.yamlload import (
    Document,
    Location,
    YAMLProblem,
    load_file,
    problems_of,
    read_source_file,
    source_files,
)
from reconciler.errors import DesiredStateError

INCLUDE = "Include"
YAML_SUFFIXES = (".yaml", ".yml")

Problem = tuple[Location, str, str]


@dataclass
class Reading:
    """Every file of a desired state: the documents read, the files taken (resolved paths, in
    reading order, also those that did not parse) and the problems found."""

    docs: list[Document] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _absolute(path: Path) -> Path:
    """Absolute and normalised (`..` removed) without following links: links are refused, not
    followed, so the normalised path is the file that is read."""
    return Path(os.path.normpath(os.path.abspath(path)))


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
        self.taken: dict[Path, Location | None] = {}

    def read(self, path: Path, display: str, chain: tuple[Path, ...]) -> None:
        """Read one file, then (depth first) what it includes; `chain` is the files including it."""
        self.out.paths.append(path)
        try:
            if self.cache is not None:
                doc = self.cache.document(_rel(path, self.root), display, read_source_file(path, display))
            else:
                doc = load_file(path, display)
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

    def _include(self, text: str, where: Location, name: str, including: Path, display: str,
                 chain: tuple[Path, ...]) -> None:
        def problem(msg: str) -> None:
            self.out.problems.append((where, name, msg))

        if PurePosixPath(text).is_absolute() or Path(text).is_absolute():
            return problem(f"{text!r}: must be a path relative to this file")
        target = _absolute(including.parent / text)
        if not target.is_relative_to(self.root):
            return problem(f"{text!r} leads outside the source root {self.root} (an include may only "
                           "name files of the same repository; run with SOURCE at the repository root "
                           "and --subdir for the instance)")
        link = _first_link(self.root, target)
        if link is not None:
            return problem(f"{text!r} goes through the symbolic link {_rel(link, self.root)}; the desired state "
                           "must be plain files inside the source: replace the link with the files themselves")
        shown = os.path.normpath(os.path.join(os.path.dirname(display), text))
        if target.is_dir():
            files = source_files(target)
            if not files:
                return problem(f"{text!r}: no *.yaml files in this directory")
            taken = [(target / f.name, os.path.join(shown, f.name)) for f in files]
        elif target.is_file():
            if target.suffix not in YAML_SUFFIXES:
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


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def default_root(source: Path) -> Path:
    """The root includes may not leave when none is given: the git work tree holding SOURCE
    (a `.git` entry in it or above), else SOURCE's directory."""
    start = _absolute(source if source.is_dir() else source.parent)
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
    files = source_files(source)
    if not files:
        raise DesiredStateError([f"{source}: no *.yaml files in this directory{_subdir_hint(source)}"])
    reader = _Reader(root if root is not None else default_root(source), cache)
    for f in files:
        reader.taken[_absolute(f)] = None
    for f in files:
        reader.read(_absolute(f), str(f), ())
    return reader.out


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
        return read_with_includes(source, root, cache).paths
    except DesiredStateError:
        return []
