"""Loading the desired state: files -> merged data -> models -> cross-checks, every problem at once.

A desired state may be spread over many files (one per domain is usual); they are merged by
top-level key, and every problem (YAML syntax, a key defined twice, a model error, a rule the
checks find) is reported as `file:line:col: field.path: message`, all at once, sorted.

A file may `Include:` other files or directories (paths relative to the file, inside the source
root): a fleet of mox servers shares `common/` and keeps one `instances/<name>/` each. Included
files are merged exactly like the files of one directory; a cycle, a file taken twice and a path
that leaves the root are problems at the `Include` entry (`reconciler.desired.includes`).
"""

from __future__ import annotations

import difflib
import logging
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.desired.cache import ParseCache
from reconciler.desired.checks import check
from reconciler.desired.includes import digest_of, read_with_includes
from reconciler.desired.models import DesiredState, sharing_equal_models
from reconciler.desired.secrets import FORMS, plain_secrets
from reconciler.desired.yamlload import Document, Location, Origins, dotted, line_breaks, pack_all
from reconciler.errors import DesiredStateError, printable

log = logging.getLogger(__name__)

PLAIN_SECRET_WARNING = f"a secret written in the desired state is in git; use a secret reference, {FORMS}"
_MERGED_MAPS = ("Domains", "Accounts")
_MERGED_LISTS = ("Removed",)
# Maps whose keys are names (problems with such an entry point at its key).
_NAME_MAPS = frozenset(("Domains", "Accounts", "Destinations", "Aliases", "Selectors", "HeadersRegexp"))


class _Merged:
    """The merged data of all files, and where each part of it was written (`origins`)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origins = Origins()
        self.problems: list[tuple[Location, str, str]] = []

    def _define(self, doc: Document, path: tuple[str, ...], target: dict[str, Any], value: Any) -> None:
        key = path[-1]
        if key in target:
            first = self.origins.key(path)
            here = doc.locations.key(path)
            assert first is not None and here is not None  # every key merged was written somewhere
            self.problems.append(
                (here, dotted(path), f"defined twice: here and at {first.file}:{first.line}:{first.col}")
            )
            return
        target[key] = value
        self.origins.take(doc.locations, path, path)

    def add(self, doc: Document) -> None:
        for top, value in doc.data.items():
            if top in _MERGED_MAPS and isinstance(value, dict):
                if top not in self.data:
                    self.data[top] = {}
                    self.origins.take_exact(doc.locations, (top,))
                if not isinstance(self.data[top], dict):
                    self._define(doc, (top,), self.data, value)
                    continue
                for name, obj in value.items():
                    self._define(doc, (top, name), self.data[top], obj)
            elif top in _MERGED_LISTS and isinstance(value, dict) and isinstance(self.data.get(top), dict):
                mine = self.data[top]
                for kind, items in value.items():
                    if isinstance(items, list) and isinstance(mine.get(kind), list):
                        offset = len(mine[kind])
                        mine[kind] = mine[kind] + items
                        for i in range(len(items)):
                            self.origins.take(doc.locations, (top, kind, i), (top, kind, offset + i))
                    else:
                        self._define(doc, (top, kind), mine, items)
            else:
                self._define(doc, (top,), self.data, value)

    def locate(self, path: tuple[str | int, ...], *, key: bool = False) -> Location:
        """Where `path` was written: its value, or its key when the problem is about the key
        (`key`, or a name in a map of names such as Domains), else its nearest written ancestor."""
        if path and not key and not (len(path) >= 2 and path[-2] in _NAME_MAPS):
            found = self.origins.value(path)
            if found is not None:
                return found
        for n in range(len(path), 0, -1):
            found = self.origins.key(path[:n]) or self.origins.value(path[:n])
            if found is not None:
                return found
        return self.origins.first_value() or Location("?", 1, 1)


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """A pydantic error location as a path in the data (union branch names dropped)."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if in_dict or in_list:
            data = data[part]
            out.append(part)
        elif i == len(loc) - 1 and isinstance(part, str) and isinstance(data, dict):
            out.append(part)  # a missing key
        elif isinstance(part, str) and part.endswith("[key]"):
            continue
    return tuple(out)


LINE_BREAK = ("must be one line: domains.conf cannot hold a line break (mox's config format has no "
              "multi-line values)")


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the model allows where pydantic's error `loc` points (for "did you mean")."""
    tp: Any = DesiredState
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return []
            tp = field.annotation
        elif typing.get_origin(tp) in (dict, list):
            tp = typing.get_args(tp)[-1]
        else:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _unwrap(tp: Any) -> Any:
    """`X | None` and Annotated[X, ...] as X."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(inner) != 1:
                return tp
            tp = inner[0]
        else:
            return tp


def did_you_mean(key: str, allowed: list[str]) -> str | None:
    """The allowed key `key` probably means: the same in another case, else a close spelling."""
    for name in allowed:
        if name.lower() == key.lower():
            return name
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.7)
    return close[0] if close else None


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        loc = tuple(err["loc"])
        near = did_you_mean(str(loc[-1]), _fields_at(loc[:-1])) if loc else None
        if near:
            return f"unknown key; did you mean {near}?"
        return "unknown key (not a mox or reconciler field; typo?)"
    if kind == "missing":
        return "required key missing"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def load_desired(source: Path, root: Path | None = None, cache: ParseCache | None = None) -> DesiredState:
    """Load, merge and check a desired state (a directory of *.yaml, or one file), with the
    files it includes; `Include` paths may not leave `root` (default: the git work tree holding
    it, else its directory). `cache`: files parsed before with the same bytes are taken from it
    (`reconciler.desired.cache`).

    Raises DesiredStateError listing every problem as `file:line:col: field.path: message`.
    Secret references are checked for their form only; `secrets.read_secrets` reads them.
    `cache`: files parsed before with the same bytes are taken from it (`reconciler.desired.cache`).
    """
    reading = read_with_includes(source, root, cache)
    base = os.path.abspath(source if source.is_dir() else source.parent)
    digest = (base, digest_of(base, reading.paths, reading.contents)) if not reading.problems else None
    reading.contents.clear()
    merged = _Merged()
    for doc in reading.docs:
        merged.add(doc)
    files = [doc.file for doc in reading.docs]
    clean = [doc.line_breaks is False for doc in reading.docs]
    reading.docs.clear()  # their data is merged, their locations are in merged.origins
    if cache is not None:
        cache.save()
    problems = [*reading.problems, *merged.problems]
    if problems:
        raise DesiredStateError(_format(problems))
    if not all(clean):  # a file parsed before without a line break in it has none
        for path, is_key in line_breaks(merged.data, ()):
            problems.append((merged.locate(path, key=is_key), dotted(path), LINE_BREAK))
    try:
        with sharing_equal_models():
            state = DesiredState.model_validate(merged.data)
    except ValidationError as e:
        for err in e.errors():
            path = _data_path(merged.data, tuple(err["loc"]))
            at_key = err["type"] in ("extra_forbidden", "missing")
            problems.append((merged.locate(path, key=at_key), dotted(path), _message(err)))
        raise DesiredStateError(_format(problems)) from None
    if problems:
        raise DesiredStateError(_format(problems))
    merged.data = {}  # the models hold what is needed of it
    state._origins = merged.origins
    state._files.extend(files)
    state._paths.extend(reading.paths)
    state._digest = digest
    for path, msg in check(state):
        problems.append((merged.locate(path), dotted(path), msg))
    if problems:
        raise DesiredStateError(_format(problems))
    state._warnings.extend(_format([(merged.locate(path), dotted(path), PLAIN_SECRET_WARNING)
                                    for path in plain_secrets(state)]))
    for warning in state.warnings:
        log.warning("%s", warning)
    pack_all()
    return state


def _format(problems: list[tuple[Location, str, str]]) -> list[str]:
    def order(p: tuple[Location, str, str]) -> tuple[str, int, int, str]:
        return (p[0].file, p[0].line, p[0].col, p[2])

    out = []
    for where, field, msg in sorted(set(problems), key=order):
        # one line each, whatever the keys and values quoted in it hold (a key with a line break)
        out.append(printable(f"{where}: {field}: {msg}" if field else f"{where}: {msg}"))
    return out
