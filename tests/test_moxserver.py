"""The real-mox harness itself (tests/moxserver.py): finding mox, `config test`, serving and stopping."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.mox.errors import CtlNotRunning

from . import moxserver
from .moxserver import MoxInstance, find_get_mox


@pytest.fixture
def fresh_resolution() -> Iterator[None]:
    """Forget the cached mox lookup before and after the test (it reads $MOX_BIN)."""
    moxserver._resolve.cache_clear()
    yield
    moxserver._resolve.cache_clear()


def test_get_mox_is_found_in_the_nearest_ancestor_with_a_shared_dir(tmp_path: Path) -> None:
    get_mox = tmp_path / "shared" / "mox" / "get-mox"
    get_mox.parent.mkdir(parents=True)
    get_mox.write_text("#!/bin/sh\n")
    get_mox.chmod(0o755)
    assert find_get_mox(tmp_path / "clone") == get_mox  # CI: a clone next to shared/
    assert find_get_mox(tmp_path / "wt" / "name") == get_mox  # a worktree one level deeper
    get_mox.chmod(0o644)
    assert find_get_mox(tmp_path / "clone") is None


def test_mox_bin_that_is_not_mox_fails_instead_of_skipping(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_resolution: None) -> None:
    fake = tmp_path / "mox"
    fake.write_text("#!/bin/sh\necho v0.0.16-go1.22\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MOX_BIN", str(fake))
    path, reason, explicit = moxserver._resolve()
    assert (path, explicit) == ("", True)
    assert reason == f"{fake} is not mox v0.0.17 (`mox version`: 'v0.0.16-go1.22')"
    monkeypatch.setenv("MOX_BIN", str(tmp_path / "absent"))
    moxserver._resolve.cache_clear()
    assert moxserver._resolve() == ("", f"MOX_BIN={tmp_path / 'absent'} is not an executable file", True)


def test_config_test_verdicts(mox_instance: Callable[[str], MoxInstance]) -> None:
    instance = mox_instance("01")
    assert moxserver.config_test(instance.mox_conf) == moxserver.Verdict(True, "config OK\n")
    with instance.domains_conf.open("a") as f:
        f.write("\tghost:\n\t\tDomain: example.org\n\t\tDestinations:\n\t\t\tghost@unknown.example: nil\n")
    verdict = instance.config_test()
    assert not verdict.ok
    assert 'account "ghost": destination "ghost@unknown.example": unknown domain for address' in verdict.output


def test_instance_has_its_own_ports_and_admin_password(mox_instance: Callable[[str], MoxInstance]) -> None:
    a, b = mox_instance("00"), mox_instance("00")
    assert set(a.ports) == set(moxserver.GOLDEN_PORTS.values())
    assert not set(a.ports.values()) & set(b.ports.values())
    assert a.root != b.root and a.admin_password and len(a.admin_password) >= 16
    text = a.mox_conf.read_text()
    assert f"\t\t\tPort: {a.ports['imaps']}\n" in text and "10993" not in text
    # uid 1000 (mox.conf User) must reach the instance: every directory up to it is searchable.
    for d in [a.root, *a.root.parents]:
        assert os.stat(d).st_mode & stat.S_IXOTH, d


def test_instance_in_a_directory_mox_cannot_reach_is_refused(tmp_path: Path) -> None:
    moxserver.mox_bin()
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(RuntimeError, match=f"^{closed} is not searchable by others, so mox's uid 1000 cannot reach"):
        moxserver.build_instance("00", base=closed)
    assert list(closed.iterdir()) == []  # nothing left behind


def test_serve_runs_as_mox_user_with_loopback_resolver_and_stops_without_leftovers(
        mox_instance: Callable[[str], MoxInstance]) -> None:
    instance = mox_instance("00")
    served = moxserver.start(instance)
    try:
        root_pid, child_pid = served.pids
        assert served.ctl().version() == "ctlv0"
        uid_line = next(line for line in Path(f"/proc/{child_pid}/status").read_text().splitlines()
                        if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["1000"] * 4
        # mox sees the private resolv.conf; this process still sees the machine's own.
        assert Path(f"/proc/{root_pid}/root/etc/resolv.conf").read_text() == "nameserver 127.0.0.1\n"
        assert Path("/etc/resolv.conf").read_bytes() != b"nameserver 127.0.0.1\n"
    finally:
        served.stop()
    assert served.leftover_pids() == []
    assert served.proc.returncode is not None
    with pytest.raises(CtlNotRunning):
        instance.ctl(timeout=5).version()


def test_graceful_stop_and_a_second_instance_beside_the_first(
        mox_instance: Callable[[str], MoxInstance]) -> None:
    first, second = mox_instance("00"), mox_instance("01")
    with moxserver.serve(first, graceful_stop=True) as a, moxserver.serve(second) as b:
        assert [x.name for x in a.ctl().account_list()] == ["admin"]
        assert [x.name for x in b.ctl().account_list()] == ["admin", "alice"]
    assert a.leftover_pids() == [] and b.leftover_pids() == []
    assert 'm="stopping after child exit"' in a.log()  # mox's own shutdown ran
    assert not first.ctl_path.exists()  # ... and removed its socket


def test_admin_password_logs_in_to_the_admin_api(mox_instance: Callable[[str], MoxInstance]) -> None:
    with moxserver.serve(mox_instance("01")) as served:
        domains = served.admin_api().call("Domains")
        assert sorted(d["Domain"]["ASCII"] for d in domains) == ["example.org", "mail.example.org"]
        wrong = moxserver.WebAPI(served.ports["http"], "/admin/api/")
        with pytest.raises(RuntimeError, match=r"^Login: invalid credentials$"):
            wrong.login(served.admin_password + "x")
