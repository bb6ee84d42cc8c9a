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
import marshal
import os
import stat
import weakref
import zlib
from collections.abc import Iterable, Iterator
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


_Table = dict[Path_, tuple[int, int]]  # path -> (line, col)


class Locations:
    """The line:col of every key (`key`) and value (`value`) of one file by path, kept packed.

    A desired state of 10,000 files has hundreds of thousands of paths and a handful are ever
    asked for (a problem, a warning): the tables are kept as the zlib of their marshal (what the
    parse cache stores) and unpacked when asked; only the file unpacked last stays unpacked.
    """

    __slots__ = ("__weakref__", "_tables", "file", "packed")

    def __init__(self, file: str, packed: bytes) -> None:
        self.file = file
        self.packed = packed
        self._tables: tuple[_Table, _Table] | None = None

    @classmethod
    def packing(cls, file: str, keys: _Table, values: _Table) -> Locations:
        """The tables (path -> (line, col)) packed."""
        return cls(file, zlib.compress(marshal.dumps((keys, values)), 1))

    def tables(self) -> tuple[_Table, _Table]:
        """(keys, values), unpacked; the file unpacked before this one is packed again."""
        global _unpacked
        tables = self._tables
        if tables is None:
            before = _unpacked() if _unpacked is not None else None
            if before is not None and before is not self:
                before._tables = None
            try:
                keys, values = marshal.loads(zlib.decompress(self.packed))
                tables = (keys, values) if isinstance(keys, dict) and isinstance(values, dict) else ({}, {})
            except (zlib.error, EOFError, ValueError, TypeError):  # a damaged cache entry: no places known
                tables = ({}, {})
            self._tables = tables
            _unpacked = weakref.ref(self)
        return tables

    def key(self, path: Path_) -> Location | None:
        """Where the key at `path` was written."""
        lc = self.tables()[0].get(path)
        return Location(self.file, *lc) if lc is not None else None

    def value(self, path: Path_) -> Location | None:
        """Where the value at `path` was written."""
        lc = self.tables()[1].get(path)
        return Location(self.file, *lc) if lc is not None else None

    def under(self, src: Path_, dst: Path_) -> Iterator[tuple[str, Path_, Location]]:
        """("keys" or "values", path, location) of every path at or below `src`, as if at `dst`."""
        n = len(src)
        for which, table in zip(("keys", "values"), self.tables(), strict=True):
            for p, (line, col) in table.items():
                if p[:n] == src:
                    yield which, dst + p[n:], Location(self.file, line, col)


_unpacked: weakref.ref[Locations] | None = None


def pack_all() -> None:
    """Pack again the file unpacked last (a large file's tables weigh tens of megabytes): after
    loading, a lookup is rare (a warning, a problem the plan finds)."""
    before = _unpacked() if _unpacked is not None else None
    if before is not None:
        before._tables = None


class Document:
    """One file's data and the location of every key and value in it (`locations`);
    `line_breaks`: whether a text in it holds a line break (`line_breaks`), None: not known."""

    __slots__ = ("data", "file", "line_breaks", "locations")

    def __init__(self, file: str, data: dict[str, Any], locations: Locations, line_breaks: bool | None = None) -> None:
        self.file = file
        self.data = data
        self.locations = locations
        self.line_breaks = line_breaks


def line_breaks(data: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], bool]]:
    """Paths of strings (and keys: True) with a line break, which no domains.conf can hold:
    refused when loading with their place, not when apply writes the file."""
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(k, str) and ("\n" in k or "\r" in k):
                yield (*path, k), True
            yield from line_breaks(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from line_breaks(v, (*path, i))
    elif isinstance(data, str) and ("\n" in data or "\r" in data):
        yield path, False


class Origins:
    """Where every key and value of the merged desired state was written, found when asked.

    Merging records, for each object taken from a file, that file's `Locations` and the object's
    path there (`take`): nothing is copied per path. A path is found under its longest recorded
    prefix, as if every location had been copied there in merge order (a later, deeper record
    over an earlier one: `Removed` lists merged from several files).
    """

    __slots__ = ("_exact", "_first", "_under")

    def __init__(self) -> None:
        self._under: dict[Path_, tuple[Locations, Path_]] = {}
        self._exact: dict[Path_, Locations] = {}
        self._first: tuple[Locations, Path_] | None = None

    def take(self, locations: Locations, src: Path_, dst: Path_) -> None:
        """Everything at or below `src` in `locations` is at `dst` here."""
        self._under[dst] = (locations, src)
        if self._first is None:
            self._first = (locations, src)

    def take_exact(self, locations: Locations, path: Path_) -> None:
        """The key and value at `path` itself (not below it) are those of `locations`."""
        self._exact[path] = locations
        if self._first is None:
            self._first = (locations, path)

    def _find(self, path: Path_, value: bool) -> Location | None:
        exact = self._exact.get(path)
        if exact is not None:
            found = exact.value(path) if value else exact.key(path)
            if found is not None:
                return found
        for n in range(len(path), 0, -1):
            record = self._under.get(path[:n])
            if record is not None:
                locations, src = record
                p = src + path[n:]
                found = locations.value(p) if value else locations.key(p)
                if found is not None:
                    return found
        return None

    def key(self, path: Path_) -> Location | None:
        """Where the key at `path` was written."""
        return self._find(path, False)

    def value(self, path: Path_) -> Location | None:
        """Where the value at `path` was written."""
        return self._find(path, True)

    def get(self, path: Path_) -> Location | None:
        """Where `path` was written: its key, else its value (a list item)."""
        return self._find(path, False) or self._find(path, True)

    def first_value(self) -> Location | None:
        """The first value merged (where a problem without a place is shown)."""
        return self._first[0].value(self._first[1]) if self._first is not None else None

    def __eq__(self, other: object) -> bool:  # a state equals another loaded from the same places
        return isinstance(other, Origins) and (self is other or self.as_dict() == other.as_dict())

    __hash__ = None  # type: ignore[assignment]

    def as_dict(self) -> dict[Path_, Location]:
        """Every path's location (`get` of each; for tests and comparisons, not for a large state)."""
        out: dict[Path_, Location] = {}
        keys: dict[Path_, Location] = {}
        for path, locations in self._exact.items():
            for which, table in (("keys", keys), ("values", out)):
                loc = locations.key(path) if which == "keys" else locations.value(path)
                if loc is not None:
                    table[path] = loc
        for dst, (locations, src) in self._under.items():
            for which, p, loc in locations.under(src, dst):
                (keys if which == "keys" else out)[p] = loc
        out.update(keys)
        return out


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


def read_source_file(path: str | Path, display: str | None = None) -> bytes:
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
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise YAMLProblem(Location(name, 1, 1), "", "not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise YAMLProblem(
                Location(name, 1, 1), "", f"file too large ({st.st_size} bytes, limit {MAX_FILE_BYTES})"
            )
        try:
            return _read_to_end(fd, st.st_size)
        except OSError as e:
            raise YAMLProblem(Location(name, 1, 1), "", f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _read_to_end(fd: int, size: int) -> bytes:
    """Up to MAX_FILE_BYTES + 1 bytes of `fd`, to its end (a file that grew since `size` was
    taken too). Read in pieces of about the expected size: a buffer of the whole limit per file
    (4 MB allocated and given back) made reading 10,000 small files three times slower."""
    chunks = []
    left = MAX_FILE_BYTES + 1
    want = min(size + 1, left)
    while left > 0:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
        want = min(_READ_PIECE, left)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_READ_PIECE = 64 * 1024


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
    names = yaml_names(source) if source.is_dir() else None
    return [source] if names is None else [source / name for name in names]


def yaml_names(directory: str | Path) -> list[str]:
    """The names of the `*.yaml`/`*.yml` files in `directory`, links too, sorted (the order of
    their paths). One listing, no stat per file where the directory says what each entry is."""
    with os.scandir(directory) as entries:
        return sorted(e.name for e in entries
                      if _suffix(e.name) in (".yaml", ".yml") and (e.is_symlink() or e.is_file()))


def _suffix(name: str) -> str:
    """`PurePath(name).suffix`: ".yaml" of "a.yaml", nothing for ".yaml" itself."""
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""
