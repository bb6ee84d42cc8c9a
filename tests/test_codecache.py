"""The CLI keeps the methods `dataclasses` generates compiled in the cache dir: every class made
with the cache, cold or warm, has the very methods it has without it; the cache is ours only,
and a library user's process is not touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import __version__
from reconciler.cli import codecache

ROOT = Path(__file__).resolve().parent.parent

# Prints a fingerprint of every generated method of every dataclass in the modules a plan and an
# apply use (ours, pydantic's, the standard library's), and the cache's counts.
FINGERPRINT = r"""
import dataclasses, json, re, sys, types, typing
import pydantic
if sys.argv[1] == "cache":
    from reconciler.cli import codecache
    codecache.install(["--cache-dir", sys.argv[2]])
import reconciler.cli.plan, reconciler.pipeline, reconciler.plan.render, reconciler.apply.batch

def code(c):
    return [c.co_code.hex(), c.co_names, c.co_varnames, c.co_freevars, c.co_filename, c.co_name,
            c.co_flags, [code(k) if isinstance(k, types.CodeType) else repr(k) for k in c.co_consts]]

out = {}
for mod in list(sys.modules.values()):
    for name, cls in sorted(vars(mod).items()):
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == mod.__name__:
            for meth in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
                fn = cls.__dict__.get(meth)
                if isinstance(fn, types.FunctionType):
                    ann = {k: v if isinstance(v, str) else repr(v) for k, v in fn.__annotations__.items()}
                    out[f"{cls.__module__}.{cls.__qualname__}.{meth}"] = [code(fn.__code__), ann]
            try:  # the annotations resolved (typing.ForwardRef compiles each)
                out[f"{cls.__module__}.{cls.__qualname__}:hints"] = repr(typing.get_type_hints(cls))
            except Exception as e:
                out[f"{cls.__module__}.{cls.__qualname__}:hints"] = type(e).__name__
        if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel) and cls.__module__ == mod.__name__:
            out[f"{cls.__module__}.{cls.__qualname__}:fields"] = re.sub(" at 0x[0-9a-f]+", "", repr(cls.model_fields))
stats = codecache.stats() if sys.argv[1] == "cache" else {}
print(json.dumps({"methods": out, "stats": stats}))
"""


def _fingerprint(*args: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run([sys.executable, "-c", FINGERPRINT, *args], capture_output=True, text=True, check=True,
                         cwd=ROOT, env=env).stdout
    result: dict[str, object] = json.loads(out)
    return result


def test_classes_made_with_the_cache_have_the_same_methods(tmp_path: Path) -> None:
    plain = _fingerprint("plain")
    cold = _fingerprint("cache", str(tmp_path))
    warm = _fingerprint("cache", str(tmp_path))
    methods = plain["methods"]
    assert isinstance(methods, dict) and len(methods) > 500
    assert any(k.startswith("reconciler.mox.config.") for k in methods)
    assert cold["methods"] == methods
    assert warm["methods"] == methods
    cold_stats, warm_stats = cold["stats"], warm["stats"]
    assert isinstance(cold_stats, dict) and isinstance(warm_stats, dict)
    assert cold_stats["compiled"] > 500  # some classes share a source (the same fields): reused at once
    assert warm_stats == {"compiled": 0, "reused": cold_stats["compiled"] + cold_stats["reused"]}
    path = tmp_path / "code" / __version__ / f"{sys.implementation.cache_tag}.marshal"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def _cache_file(root: Path) -> Path:
    return root / "code" / __version__ / f"{sys.implementation.cache_tag}.marshal"


def _plan(config: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """`plan` of the bundled example, as the README runs it (the plan memo off: `--now`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOX_RECONCILER_")}
    env["ALICE_PASSWORD"] = "test-only-not-a-secret-1"
    return subprocess.run([sys.executable, "-m", "reconciler", "--config", str(config / "mox.conf"), "plan",
                           "examples/desired", "--cache-dir", str(cache), "--now", "2026-11-30T12:00:00+00:00"],
                          capture_output=True, text=True, cwd=ROOT, env=env)


def test_the_cli_fills_the_cache_once_and_answers_the_same(tmp_path: Path) -> None:
    cache, config = tmp_path / "cache", tmp_path / "config"
    shutil.copytree(ROOT / "examples" / "mox" / "config", config)
    first = _plan(config, cache)
    path = _cache_file(cache)
    written = path.stat().st_mtime_ns
    second = _plan(config, cache)
    assert (first.returncode, first.stdout, first.stderr) == (second.returncode, second.stdout, second.stderr)
    assert first.returncode == 0, first.stderr
    assert path.stat().st_mtime_ns == written  # nothing new compiled: not written again
    (tmp_path / "a-file").write_text("")  # a cache dir that cannot be made: no cache, the same answer
    unwritable = _plan(config, tmp_path / "a-file")
    assert (unwritable.returncode, unwritable.stdout, unwritable.stderr) == (0, first.stdout, first.stderr)
    assert codecache.cache_root(["--cache-dir", str(cache), "plan"], {}) == cache
    assert codecache.cache_root(["--cache-dir=" + str(cache)], {}) == cache
    assert codecache.cache_root([], {"MOX_RECONCILER_CACHE_DIR": str(cache)}) == cache
    assert codecache.cache_root([], {"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "mox-reconciler"


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir the plan's and the apply's classes filled."""
    root = tmp_path_factory.mktemp("filled")
    _fingerprint("cache", str(root))
    assert codecache._load(_cache_file(root))
    return root


@pytest.mark.parametrize("spoil", ["group-writable file", "group-writable dir", "link", "damaged", "other python"])
def test_a_cache_that_may_not_be_ours_or_is_spoilt_is_not_read(filled: Path, tmp_path: Path, spoil: str) -> None:
    shutil.copytree(filled, tmp_path / "cache")
    path = _cache_file(tmp_path / "cache")
    if spoil == "group-writable file":
        path.chmod(0o620)
    elif spoil == "group-writable dir":
        path.parent.chmod(0o770)
    elif spoil == "link":
        real = path.with_name("real")
        path.rename(real)
        path.symlink_to(real)
    elif spoil == "damaged":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        data = path.read_bytes()
        path.write_bytes(data.replace(sys.version.encode(), b"3.99.0 (other)"))
    assert codecache._load(path) == {}
    if spoil == "damaged":  # compiled as without a cache, and written anew
        again = _fingerprint("cache", str(tmp_path / "cache"))["stats"]
        assert isinstance(again, dict) and again["compiled"] > 500
        assert codecache._load(path)


def test_importing_the_cli_as_a_library_changes_no_dataclass() -> None:
    code = "import dataclasses, reconciler.cli.main; print('exec' in vars(dataclasses))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout == "False\n"
