"""DKIM key files' verdicts kept in the cache dir (`reconciler.plan.keyverdicts`): a later run
knows an unchanged key file without parsing it, re-reads one that changed in any way, and never
trusts a verdict file that is damaged or that others could have written."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from reconciler.mox.keyfiles import KeyCache, KeyFileError
from reconciler.plan.keyverdicts import FILE_NAME, StoredKeyCache

from .test_validate import ed25519_pkcs8, pkcs1_rsa


def keys(tmp_path: Path) -> tuple[Path, Path]:
    good, bad = tmp_path / "good.pem", tmp_path / "bad.pem"
    good.write_bytes(ed25519_pkcs8())
    bad.write_bytes(pkcs1_rsa())  # PKCS#1: mox refuses it
    return good, bad


def learn(root: Path | None, *files: Path) -> StoredKeyCache:
    cache = StoredKeyCache(root)
    for f in files:
        with contextlib.suppress(KeyFileError):
            cache.kind(f)
    cache.save()
    return cache


def test_a_later_run_knows_unchanged_files_without_parsing(tmp_path: Path) -> None:
    good, bad = keys(tmp_path)
    root = tmp_path / "cache"
    assert learn(root, good, bad).loads == 2
    later = StoredKeyCache(root)
    assert later.kind(good) == "ed25519"
    with pytest.raises(KeyFileError, match="ParsePKCS1PrivateKey"):  # mox's error, kept as well
        later.kind(bad)
    assert later.loads == 0
    assert (root / FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_a_changed_file_is_parsed_again_and_a_gone_one_forgotten(tmp_path: Path) -> None:
    good, bad = keys(tmp_path)
    root = tmp_path / "cache"
    learn(root, good, bad)
    bad.write_bytes(ed25519_pkcs8())  # fixed in place: new mtime and ctime
    good.unlink()
    later = StoredKeyCache(root)
    assert later.kind(bad) == "ed25519" and later.loads == 1
    later.save()
    stored = json.loads((root / FILE_NAME).read_text())["verdicts"]
    assert [(v[0], v[-1]) for v in stored] == [(str(bad), "ed25519")]


def test_verdicts_learnt_by_a_cache_sharing_them_are_saved(tmp_path: Path) -> None:
    """The plan's validation learns through a KeyCache sharing the stored one's verdicts."""
    good, _ = keys(tmp_path)
    root = tmp_path / "cache"
    stored = StoredKeyCache(root)
    sharing = KeyCache()
    sharing.verdicts = stored.verdicts
    assert sharing.kind(good) == "ed25519"
    stored.save()
    assert StoredKeyCache(root).verdicts == stored.verdicts != {}


@pytest.mark.parametrize("spoil", ["damaged", "group-writable", "other-format"])
def test_an_untrustworthy_verdict_file_is_ignored(tmp_path: Path, spoil: str) -> None:
    good, _ = keys(tmp_path)
    root = tmp_path / "cache"
    learn(root, good)
    path = root / FILE_NAME
    if spoil == "damaged":
        path.write_text(path.read_text()[:-5])
    elif spoil == "group-writable":
        os.chmod(path, 0o620)
    else:
        path.write_text(json.dumps({"format": 99, "verdicts": []}))
    later = StoredKeyCache(root)
    assert later.verdicts == {}
    assert later.kind(good) == "ed25519" and later.loads == 1


def test_without_a_private_directory_nothing_is_kept(tmp_path: Path) -> None:
    good, _ = keys(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    learn(shared, good)
    assert not (shared / FILE_NAME).exists()
    assert learn(None, good).loads == 1  # no cache dir at all: still a working KeyCache
