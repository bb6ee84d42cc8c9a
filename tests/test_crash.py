"""SIGKILL a real `mox-reconciler apply` at every named checkpoint of an apply, beside a running mox
v0.0.17 (tests/moxserver.py; without one, against the config dir alone): domains.conf is always the
old or the new file and both mox and our validation accept it; the killed process leaves no process
behind (key generation runs in its threads); a re-run converges, mox loads the result, and then
no unreferenced key file is left directly in `dkim/`, no temp file, no key journal.

The child stops at the checkpoint the test names (`writer.STOP_ENV`), says so on stderr and waits;
the test kills it on that marker, so every window is hit on any machine, busy or not.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.apply import writer
from reconciler.cli.main import main
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic
from reconciler.mox.live import ConfigPaths, read_static
from reconciler.mox.validate import require_valid

from . import moxserver
from .golden import build_step_config, golden_step

ROOT = Path(__file__).resolve().parent.parent

# Where each checkpoint lies: before domains.conf is replaced (the old file stays) or after.
SIDE = {"keygen": "old", "journal": "old", "key-file": "old", "key-temp": "old", "before-temp": "old",
        "before-rename": "old", "after-rename": "new", "after-commit": "new", "inventory": "new", "confirm": "new"}
# The first time at each checkpoint, and the second key file (one key already written, or half).
STOPS = [*writer.CHECKPOINTS, "key-file:2", "key-temp:2"]


def checkpoint_calls() -> set[str]:
    """The names of every `checkpoint("...")` call in the package, read from the source."""
    names = set()
    for path in (ROOT / "reconciler").rglob("*.py"):
        text = path.read_text()
        if "checkpoint(" not in text:
            continue
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "checkpoint":
                (arg,) = node.args
                assert isinstance(arg, ast.Constant), f"{path}:{node.lineno}: checkpoint names are literals"
                names.add(arg.value)
    return names


def test_every_checkpoint_in_the_code_is_listed_and_placed() -> None:
    assert checkpoint_calls() == set(writer.CHECKPOINTS) == set(SIDE)


@dataclass
class Mox:
    """The config the applies write: a served instance's, or (no mox here) a plain copy."""

    paths: ConfigPaths
    served: moxserver.ServedMox | None

    def verdict(self) -> None:
        """mox's own `config test` (when mox is here) and our validation both accept domains.conf."""
        dyn = sconf.parse(self.paths.domains_conf.read_text("utf-8"), Dynamic)
        require_valid(read_static(self.paths), dyn, self.paths.config_dir)
        if self.served is not None:
            verdict = self.served.instance.config_test()
            assert verdict.ok, verdict.output


@pytest.fixture(scope="module")
def mox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mox]:
    """One mox for the module's kills (each adds objects of its own)."""
    if moxserver.serve_reason():
        yield Mox(ConfigPaths(build_step_config(golden_step("00"),
                                                          tmp_path_factory.mktemp("crash"))), None)
        return
    instance = moxserver.build_instance("00")
    try:
        with moxserver.serve(instance) as served:
            yield Mox(instance.config_paths, served)
    finally:
        instance.remove()


ED25519 = "DKIM: {Selectors: {ed: {Algorithm: ed25519}}, Sign: [ed]}, "


def desired(tmp: Path, tag: str, *, rsa: bool = False) -> Path:
    """Two new domains and an account with addresses in both. The domains' keys: one ed25519 key
    each (quick), or (`rsa`) DomainAdd's two RSA-2048 keys each: four keys, generated in threads
    on every core."""
    d = tmp / "desired"
    d.mkdir()
    dkim = "" if rsa else ED25519
    (d / "desired.yaml").write_text(
        f"Domains:\n  {tag}a.example: {{{dkim}ReportsAccount: {tag}}}\n  {tag}b.example: {{{dkim}ReportsAccount: {tag}}}\n"
        f"Accounts:\n  {tag}:\n    Destinations:\n      {tag}@{tag}a.example: {{}}\n      info@{tag}b.example: {{}}\n")
    return d


def session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # session id, state
            out.append(int(entry.name))
    return out


def kill_at(mox: Mox, source: Path, stop_at: str) -> None:
    """Run an apply until it reports the checkpoint, SIGKILL it (it alone) there, and check that
    no process it started remains."""
    env = {k: v for k, v in os.environ.items() if k != writer.STOP_ENV}
    env.update(PYTHONPATH=str(ROOT), **{writer.STOP_ENV: stop_at})
    p = subprocess.Popen([sys.executable, "-m", "reconciler", "--config", str(mox.paths.mox_conf), "apply", "--yes",
                          str(source)], env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    assert p.stderr is not None
    name, _, nth = stop_at.partition(":")
    marker = f"checkpoint {name}:{nth or 1}\n"
    seen = []
    for line in p.stderr:  # blocks until the child writes; EOF if it ends without reaching the point
        seen.append(line)
        if line == marker:
            break
    p.send_signal(signal.SIGKILL)
    p.wait()  # not its stderr: a surviving child process would hold that open
    p.stderr.close()
    try:
        assert marker in seen, f"the child never reached {stop_at}:\n{''.join(seen)}"
        assert p.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 30  # the kernel reaps a killed process's threads at once
        while session_processes(p.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert session_processes(p.pid) == [], "processes of the killed apply survived it"
    finally:
        for pid in session_processes(p.pid):  # what survived (a failed test): the test started them
            os.kill(pid, signal.SIGKILL)


def key_files(paths: ConfigPaths) -> tuple[set[str], set[str]]:
    dyn = sconf.parse(paths.domains_conf.read_text("utf-8"), Dynamic)
    referenced = {s.PrivateKeyFile for d in dyn.Domains.values() for s in d.DKIM.Selectors.values()}
    on_disk = {str(f.relative_to(paths.config_dir)) for f in (paths.config_dir / "dkim").glob("*.pem")}
    return referenced, on_disk


def converge(mox: Mox, source: Path, tag: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Apply again, uninterrupted: exit 0, everything there, loaded by mox; nothing left behind."""
    capsys.readouterr()
    rc = main(["--config", str(mox.paths.mox_conf), "apply", "--yes", str(source)])
    out, err = capsys.readouterr()
    assert rc == 0, (out, err)
    if mox.served is not None:
        assert re.search(r"^mox (loaded the change|has loaded domains\.conf as it is)\.$", out, re.M), out
        ctl = mox.served.ctl()
        assert tag in [a.name for a in ctl.account_list()]
        assert ctl.alias_list(f"{tag}a.example") == [] and ctl.alias_list(f"{tag}b.example") == []
    else:
        assert "\nnot confirmed: mox not running" in out
    dyn = sconf.parse(mox.paths.domains_conf.read_text("utf-8"), Dynamic)
    assert {f"{tag}a.example", f"{tag}b.example"} <= set(dyn.Domains)
    assert {f"{tag}@{tag}a.example", f"info@{tag}b.example"} <= set(dyn.Accounts[tag].Destinations)
    mox.verdict()
    referenced, on_disk = key_files(mox.paths)
    assert on_disk <= referenced, f"unreferenced key files in dkim/: {sorted(on_disk - referenced)}"
    config = mox.paths.config_dir
    assert [str(p) for p in config.rglob("*.tmp")] == []
    assert list(config.glob("mox-reconciler.keys.*")) == []
    capsys.readouterr()
    assert main(["--config", str(mox.paths.mox_conf), "plan", "--format", "json", str(source)]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []  # (the other kills' objects are kept, not changes)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", STOPS)
def test_sigkill_at_checkpoint_leaves_old_or_new_and_rerun_converges(
        mox: Mox, tmp_path: Path, stop_at: str, capsys: pytest.CaptureFixture[str]) -> None:
    tag = "k" + re.sub(r"[^a-z0-9]", "", stop_at)
    source = desired(tmp_path, tag, rsa=stop_at == "keygen")
    before = mox.paths.domains_conf.read_bytes()
    _, keys_before = key_files(mox.paths)
    kill_at(mox, source, stop_at)

    # Old or new, never anything in between; mox and we accept it.
    mox.verdict()
    dyn = sconf.parse(mox.paths.domains_conf.read_text("utf-8"), Dynamic)
    new = {f"{tag}a.example", f"{tag}b.example"} <= set(dyn.Domains)
    assert new == (SIDE[stop_at.partition(":")[0]] == "new")
    if not new:
        assert mox.paths.domains_conf.read_bytes() == before
    referenced, on_disk = key_files(mox.paths)
    if stop_at in ("key-file:2", "key-temp:2", "before-temp", "before-rename"):
        assert on_disk - keys_before - referenced, "a key file written before the kill (an orphan)"
    if stop_at == "key-temp:2":
        assert list((mox.paths.config_dir / "dkim").glob(".*.tmp")), "a key's temp file written before the kill"
    converge(mox, source, tag, capsys)


@pytest.mark.slow
def test_keys_of_a_killed_apply_that_mox_wrote_over_move_to_old(
        mox: Mox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Killed while waiting for mox to load the change, then mox writes its older config over it
    (a lost update): the keys that domains.conf named are never deleted, they move to old/."""
    tag = "klost"
    source = desired(tmp_path, tag)
    before = mox.paths.domains_conf.read_text("utf-8")
    kill_at(mox, source, "confirm")
    referenced, _ = key_files(mox.paths)
    published = sorted(k for k in referenced if f"{tag}a.example" in k or f"{tag}b.example" in k)
    assert len(published) == 2
    with open(mox.paths.domains_conf, "r+") as f:  # in place, from the older config, as mox's admin writes
        f.write(before)
        f.truncate()
    converge(mox, source, tag, capsys)
    old = mox.paths.config_dir / "dkim" / "old"
    assert all((old / Path(k).name).exists() for k in published)
