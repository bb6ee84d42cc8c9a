"""Python source compiled at run time by `dataclasses` and `typing`, compiled once and kept.

Every `@dataclass` makes its methods (`__init__`, `__repr__`, `__eq__`, `__hash__`, a frozen
class's `__setattr__`...) by formatting their Python source and passing it to `exec`, at every
start: the 190 or so dataclasses a plan imports (mox's config types, the plan's, pydantic's own)
are about 1,100 small sources, parsed and compiled again by each process: a third of a plan of the
bundled example (490 M of its 1.49 G instructions, valgrind; bench/README.md "startup"). And
every annotation resolved from its text (pydantic's models, sconf's field types) is compiled by
`typing.ForwardRef`, about 950 more (60 M). `install` gives the `dataclasses` module an `exec`
and the `typing` module a `compile` that compile each source once and keep the code in
`<cache>/code/<version>/`, keyed by the mode and the source text itself: the same text always
compiles to the same code (`compile(..., dont_inherit=True)`: what those modules' calls do, having
no `from __future__` imports), so the cache can only skip work, never change a class. Only the
CLI's entry point installs it; importing the package as a library changes nothing.

The file holds code that is run, so like the parse cache it is read only when it and its directory
are ours and no one else can write them (0600 in 0700); a file that is damaged, written by another
Python or another version is ignored and written anew. The cache dir is `--cache-dir` (or
`MOX_RECONCILER_CACHE_DIR`), else `$XDG_CACHE_HOME/mox-reconciler` or `~/.cache/mox-reconciler`.
Nothing here may fail a run: a cache that cannot be read or written means compiling as before.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import marshal
import os
import stat
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import CodeType
from typing import Any

from reconciler import __version__

FORMAT = 2


class _Cache:
    """This process's compiled sources: the file's, loaded on the first class made, and new ones."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        # (mode, source) -> code; None until the first class is made.
        self.codes: dict[tuple[str, str], CodeType] | None = None
        self.compiled = 0
        self.reused = 0

    def code(self, source: str, mode: str) -> CodeType:
        if self.codes is None:
            self.codes = _load(self.path)
        key = (mode, source)
        code = self.codes.get(key)
        if code is None:
            code = self.codes[key] = compile(source, "<string>", mode, dont_inherit=True)
            self.compiled += 1
        else:
            self.reused += 1
        return code


_cache = _Cache(None)


def cache_root(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> Path:
    """`--cache-dir` of the command line or its variable, else the user's cache dir (as
    `reconciler.desired.cache.default_root` finds it, without importing it)."""
    given = environ.get("MOX_RECONCILER_CACHE_DIR") or None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--cache-dir" and i + 1 < len(argv):
            given = argv[i + 1]
        elif arg.startswith("--cache-dir="):
            given = arg.split("=", 1)[1]
    if given:
        return Path(given)
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mox-reconciler"


def install(argv: Sequence[str]) -> None:
    """Let this process's dataclasses reuse compiled methods (see the module docstring)."""
    global _cache
    try:
        path = cache_root(argv) / "code" / __version__ / f"{sys.implementation.cache_tag}.marshal"
    except RuntimeError:  # no home directory to find the cache in
        return
    _cache = _Cache(path)
    # Found before the builtins by these modules' functions.
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    typing.compile = _compile  # type: ignore[attr-defined]
    atexit.register(_save)


def stats() -> dict[str, int]:
    """How many method sources this process compiled and how many it took from the cache."""
    return {"compiled": _cache.compiled, "reused": _cache.reused}


def _exec(source: Any, globals: dict[str, Any] | None = None, locals: Any = None, /, **kwargs: Any) -> None:
    """`exec` for dataclasses: a method's source (mode `exec`, no inherited flags: dataclasses.py
    has no `from __future__` imports)."""
    builtins.exec(_cache.code(source, "exec") if isinstance(source, str) else source, globals, locals, **kwargs)


def _compile(source: Any, filename: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
    """`compile` for typing: `ForwardRef("Mapping[str, Selector]")` compiles its text (mode
    `eval`, inheriting typing.py's flags: none) each time an annotation is resolved."""
    if isinstance(source, str) and filename == "<string>" and not args and not kwargs:
        return _cache.code(source, mode)
    return builtins.compile(source, filename, mode, *args, **kwargs)


def _header() -> str:
    return f"mox-reconciler code cache {FORMAT} {__version__} {sys.version}"


def _ours(st: os.stat_result, kind: int) -> bool:
    return stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _load(path: Path | None) -> dict[tuple[str, str], CodeType]:
    if path is None:
        return {}
    try:
        if not _ours(os.lstat(path.parent), stat.S_IFDIR):
            return {}
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        if not _ours(os.fstat(fd), stat.S_IFREG):
            return {}
        with os.fdopen(os.dup(fd), "rb") as f:
            data = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    finally:
        os.close(fd)
    if not (isinstance(data, tuple) and len(data) == 2 and data[0] == _header() and isinstance(data[1], dict)):
        return {}
    codes: dict[tuple[str, str], CodeType] = data[1]
    if all(isinstance(k, tuple) and len(k) == 2 and isinstance(v, CodeType) for k, v in codes.items()):
        return codes
    return {}


def _save() -> None:
    """Write the cache when this run compiled something new (at exit: classes are made as the
    verbs import what they use)."""
    path, codes = _cache.path, _cache.codes
    if not _cache.compiled or path is None or codes is None:
        return
    from reconciler.errors import ReconcilerError
    from reconciler.fsutil import atomic_write  # at exit only: a start imports no more than it must

    with contextlib.suppress(OSError, ValueError, ReconcilerError):  # unsafe or unwritable: no cache
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _ours(os.lstat(path.parent), stat.S_IFDIR):
            # A cache: no fsync (a torn file fails to load and is written again).
            atomic_write(path, marshal.dumps((_header(), codes)), 0o600, exact_mode=True, sync_dir=False,
                         sync_data=False)
