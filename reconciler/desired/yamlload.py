"""YAML files to plain data plus the file:line:col of every key and value.

Error messages must point at the exact spot in the operator's file, so the loader composes
YAML nodes (which carry marks) and builds the Python values itself: mapping keys are always
the literal key text (a selector `2026` stays the string "2026"), duplicate keys are errors
(PyYAML silently keeps the last), anchors/aliases are refused (no billion-laughs expansion),
and a file must hold exactly one mapping. A directory of `*.yaml` files is merged; an object
defined in two files is an error naming both places. The composing itself (PyYAML) is
`reconciler.desired.yamlparse`, imported only for a file the parse cache does not hold.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

# A desired state is a handful of small files; anything bigger is a mistake (or an attack).
MAX_FILE_BYTES = 4 * 1024 * 1024

Path_ = tuple[str | int, ...]


class Location(NamedTuple):
    """Where something was written: file, 1-based line and column (a tuple: a desired state of
    10,000 domains has hundreds of thousands of them, made cheaply from the parse cache)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class YAMLProblem(Exception):
    """A problem found while reading; collected by the caller, never shown as a traceback."""

    def __init__(self, where: Location, field: str, message: str) -> None:
        self.where = where
        self.field = field
        self.message = message
        super().__init__(self.text())

    def text(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return f"{self.where}: {field}{self.message}"


def dotted(path: Iterable[str | int]) -> str:
    """`Domains.example.org.DMARC.Account`: the field path as the operator reads it."""
    return ".".join(str(p) for p in path)


@dataclass
class Document:
    """One file's data and the location of every key (`keys`) and value (`values`) by path."""

    file: str
    data: dict[str, Any]
    keys: dict[Path_, Location]
    values: dict[Path_, Location]


def _decode(path: Path, data: bytes) -> str:
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise YAMLProblem(
            Location(str(path), line, 1), "", "binary file (NUL byte), expected UTF-8 YAML text"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise YAMLProblem(Location(str(path), line, col), "", "not valid UTF-8 text") from None


def read_source_file(path: Path, display: str | None = None) -> bytes:
    """The bytes of one desired-state file: a regular file, never a link (it could lead anywhere:
    the desired state comes from a repository others write), at most MAX_FILE_BYTES."""
    name = display or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise YAMLProblem(Location(name, 1, 1), "", "is a symbolic link; the desired state must be plain files "
                              "inside the source, so it is not read: replace the link with the file itself") from None
        raise YAMLProblem(Location(name, 1, 1), "", f"cannot read: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise YAMLProblem(Location(name, 1, 1), "", "not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise YAMLProblem(
                Location(name, 1, 1), "", f"file too large ({st.st_size} bytes, limit {MAX_FILE_BYTES})"
            )
        try:
            return f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise YAMLProblem(Location(name, 1, 1), "", f"cannot read: {e.strerror or e}") from None


def load_file(path: Path, display: str | None = None) -> Document:
    """Read one YAML file (a mapping at the top). Raises YAMLProblem, or a list via `.problems`."""
    name = display or str(path)
    return parse_source(name, read_source_file(path, display))


def parse_source(name: str, raw: bytes) -> Document:
    """The Document of file `name` with contents `raw` (see load_file)."""
    from reconciler.desired.yamlparse import parse_text  # PyYAML: only for files not in the parse cache

    return parse_text(name, _decode(Path(name), raw))


class ManyProblems(YAMLProblem):
    """Several problems from one file."""

    def __init__(self, problems: list[YAMLProblem]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(first.where, first.field, first.message)


def problems_of(e: YAMLProblem) -> list[YAMLProblem]:
    return e.problems if isinstance(e, ManyProblems) else [e]


def source_files(source: Path) -> list[Path]:
    """The files of a desired state: SOURCE itself, or the `*.yaml`/`*.yml` in it (sorted; links
    included, so that reading them is refused by name)."""
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.suffix in (".yaml", ".yml") and (p.is_symlink() or p.is_file()))
    return [source]
