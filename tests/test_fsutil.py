"""fsutil.atomic_write, the one way the package writes a file, and a check that it is the only one."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from reconciler import fsutil
from reconciler.errors import LockTimeout, UnsafePath

ROOT = Path(__file__).resolve().parent.parent


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


def test_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    target.write_text("old\n")
    fsutil.atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n" and not leftovers(tmp_path)
    fsutil.atomic_write_json(tmp_path / "x.json", {"b": 1, "a": "é"})
    assert (tmp_path / "x.json").read_text() == '{\n  "a": "é",\n  "b": 1\n}\n'


def test_mode_follows_umask_unless_exact(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        fsutil.atomic_write(tmp_path / "a", b"x", 0o666)
        fsutil.atomic_write(tmp_path / "b", b"x", 0o640, exact_mode=True, owner=(os.getuid(), os.getgid()))
        fsutil.atomic_write(tmp_path / "c", b"x", 0o664, exact_mode=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o664


def test_exclusive_never_replaces(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    fsutil.atomic_write(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        fsutil.atomic_write(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first" and not leftovers(tmp_path)


def test_before_rename_can_abort(tmp_path: Path) -> None:
    target = tmp_path / "domains.conf"
    target.write_bytes(b"old")
    seen: list[bytes] = []

    def refuse() -> None:
        (tmp_file,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        seen.append(tmp_file.read_bytes())  # the data is complete before the hook runs
        raise RuntimeError("changed under us")

    with pytest.raises(RuntimeError):
        fsutil.atomic_write(target, b"new", before_rename=refuse)
    assert seen == [b"new"] and target.read_bytes() == b"old" and not leftovers(tmp_path)


# What writes a file without fsutil: Path.write_text/write_bytes, os.replace/os.rename,
# open(..., "w"/"a"/"x"), os.open(..., O_WRONLY/O_RDWR/O_CREAT).
ALLOWED = {
    # A closed stdout (`| head`) pointed at /dev/null, so exiting writes nothing more: no file.
    ("reconciler/cli/main.py", "main", "open"),
    # The source cache: a tree extracted under a temporary name and renamed into place; a cache,
    # so a crash costs a re-extraction, never a wrong or partial tree (the rename is atomic).
    ("reconciler/desired/source.py", "_cached_tree", "rename"),
}


def imported_names(tree: ast.Module) -> set[str]:
    """Names bound by imports (modules such as `sconf`, whose `write_bytes` serializes, writes nothing)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names - {"os"}


def writes_in(source: str, where: str = "<source>") -> set[tuple[str, str]]:
    """(function, call) for every direct file write in `source`."""
    tree = ast.parse(source, where)
    modules = imported_names(tree)
    found = set()
    for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
            on_os = isinstance(receiver, ast.Name) and receiver.id == "os"
            if name in ("write_text", "write_bytes", "rename", "replace") and receiver is not None:
                if isinstance(receiver, ast.Constant) or (isinstance(receiver, ast.Name) and receiver.id in modules):
                    continue
                if name == "replace" and not on_os and len(node.args) != 1:  # str.replace(old, new)
                    continue
                found.add((func.name, name))
            elif name == "open":
                modes = [a.value for a in [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")]
                         if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                flags = ast.dump(node)
                if (on_os and any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT"))) or \
                        (not on_os and any(set(m) & set("wax+") for m in modes)):
                    found.add((func.name, name))
    return found


def direct_writes() -> set[tuple[str, str, str]]:
    out = set()
    for path in sorted((ROOT / "reconciler").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel != "reconciler/fsutil.py":
            out |= {(rel, func, call) for func, call in writes_in(path.read_text(), rel)}
    return out


def test_the_write_detector_finds_direct_writes() -> None:
    source = (
        "import os\nfrom reconciler.mox import sconf\n"
        "def bad(p, tmp, text):\n"
        "    tmp.write_text('x')\n    tmp.replace(p)\n    os.replace(tmp, p)\n"
        "    with open(p, 'wb') as f: pass\n    os.open(p, os.O_WRONLY | os.O_CREAT)\n"
        "def fine(p, text, c):\n"
        "    text.replace('a', 'b')\n    sconf.write_bytes(c)\n    open(p).read()\n"
        "    os.open(p, os.O_RDONLY | os.O_DIRECTORY)\n"
    )
    assert writes_in(source) == {("bad", "write_text"), ("bad", "replace"), ("bad", "open")}


def test_every_file_write_goes_through_fsutil() -> None:
    assert direct_writes() == ALLOWED


# ---------------------------------------------------------------------------------------------
# SharedDir: mox's config dir, where another uid can plant links


def test_shared_dir_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "config", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    victim = elsewhere / "victim"
    victim.write_bytes(b"keep")
    shared = fsutil.SharedDir(root)
    # A link where a temp file will be created: removed, never followed.
    (root / fsutil.temp_name("inventory.json")).symlink_to(victim)
    shared.write(root / "inventory.json", b"new")
    assert (root / "inventory.json").read_bytes() == b"new" and victim.read_bytes() == b"keep"
    assert stat.S_IMODE((root / "inventory.json").stat().st_mode) == fsutil.FILE_MODE
    # A link in place of a directory we write into: refused, naming it.
    (root / "dkim").symlink_to(elsewhere)
    with pytest.raises(UnsafePath, match=r"config/dkim: is a symbolic link; refusing to write through it"):
        shared.write(root / "dkim" / "key.pem", b"secret", exclusive=True)
    with pytest.raises(UnsafePath, match="symbolic link"):
        shared.names(root / "dkim")
    # A link in place of a file we read.
    (root / "status.json").symlink_to(victim)
    with pytest.raises(UnsafePath, match="refusing to read through it"):
        shared.read(root / "status.json")
    assert sorted(os.listdir(elsewhere)) == ["victim"] and victim.read_bytes() == b"keep"
    # Created directories get mox's mode; outside the root a write is a plain atomic write.
    shared.write(root / "records" / "a.txt", b"x")
    assert stat.S_IMODE((root / "records").stat().st_mode) == fsutil.DIR_MODE
    shared.write(tmp_path / "out.json", b"{}")
    assert (tmp_path / "out.json").read_bytes() == b"{}"


def test_shared_lock_never_truncates_and_refuses_links(tmp_path: Path) -> None:
    shared = fsutil.SharedDir(tmp_path)
    lock = tmp_path / "domains.conf.lock"
    with shared.lock(lock, 1):
        assert stat.S_IMODE(lock.stat().st_mode) == fsutil.LOCK_MODE
        with pytest.raises(LockTimeout, match="holds the config lock"), shared.lock(lock, 0.05):
            pass
    lock.write_bytes(b"not ours to truncate")
    with shared.lock(lock, 1):
        pass
    assert lock.read_bytes() == b"not ours to truncate"
    lock.unlink()
    lock.symlink_to(tmp_path / "victim")
    with pytest.raises(UnsafePath, match="refusing to open the lock through it"), shared.lock(lock, 1):
        pass
    assert not (tmp_path / "victim").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another uid needs root")
def test_shared_dir_gives_what_it_creates_to_the_owner(tmp_path: Path) -> None:
    owner = fsutil.Owner(1000, 0)
    shared = fsutil.SharedDir(tmp_path, owner)
    shared.write(tmp_path / "dkim" / "old" / "k.pem", b"k", exclusive=True)
    with shared.lock(tmp_path / "x.lock", 1):
        pass
    for p in (tmp_path / "dkim", tmp_path / "dkim" / "old", tmp_path / "dkim" / "old" / "k.pem", tmp_path / "x.lock"):
        assert (p.stat().st_uid, p.stat().st_gid) == (1000, 0), p
    assert stat.S_IMODE((tmp_path / "dkim").stat().st_mode) == 0o2750
    # A file that must keep its owner (domains.conf) gets it exactly.
    shared.write(tmp_path / "domains.conf", b"d", 0o660, owner=fsutil.Owner(1000, 1001))
    st = (tmp_path / "domains.conf").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o660)
    # Moving never replaces.
    shared.write(tmp_path / "dkim" / "k2.pem", b"2")
    with pytest.raises(FileExistsError):
        shared.move(tmp_path / "dkim" / "k2.pem", tmp_path / "dkim" / "old" / "k.pem")
    shared.move(tmp_path / "dkim" / "k2.pem", tmp_path / "dkim" / "old" / "k2.pem")
    assert (tmp_path / "dkim" / "old" / "k.pem").read_bytes() == b"k"
