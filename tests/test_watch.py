"""Acceptance tests of `watch`: the real CLI in a subprocess, real git (a bare repository as the
remote and a working clone), a scratch copy of examples/mox/config, signals, HTTP /metrics.

Markers only: every wait polls the status file, domains.conf or the log until a condition holds;
DEADLINE only bounds a failure (it is far above what any run takes, busy machine or not), and
nothing asserts how long something took.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import git
import pytest

from reconciler.cli.main import main
from reconciler.desired.importer import import_files
from reconciler.mox import config as mc
from reconciler.mox import sconf
from reconciler.mox.live import locate, read_live

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_git")]

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 2.0
DEADLINE = 120.0  # bounds a failure only; a passing wait ends at its marker
NEW_DOMAIN = "Domains:\n  example.org:\n    ReportsAccount: admin\n"


@dataclasses.dataclass
class Env:
    tmp: Path
    mox_conf: Path
    bare: Path
    work: git.Repo

    @property
    def config_dir(self) -> Path:
        return self.mox_conf.parent

    @property
    def domains_conf(self) -> Path:
        return self.config_dir / "domains.conf"

    @property
    def status_file(self) -> Path:
        return self.config_dir / "mox-reconciler.status.json"

    def status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.status_file.read_text())
            return data
        except (FileNotFoundError, ValueError):
            return {}

    def live(self) -> mc.Dynamic:
        return read_live(locate(str(self.mox_conf))).dynamic

    def commit(self, files: dict[str, str | None], message: str, *extra: str) -> str:
        root = Path(self.work.working_tree_dir or "")
        for name, text in files.items():
            if text is None:
                (root / name).unlink()
            else:
                (root / name).write_text(text)
        self.work.git.add("-A")
        self.work.git.commit("-q", "-m", message, *extra)
        self.work.git.push("-q", "origin", "main")
        return str(self.work.head.commit.hexsha)


def desired_files(mox_conf: Path) -> dict[str, str]:
    """The import of the example config, plus one address the first reconcile adds."""
    live = read_live(locate(str(mox_conf)))
    files = import_files(live.static, live.dynamic)
    files["accounts.yaml"] = files["accounts.yaml"].replace(
        "      admin@example.com: {}\n", "      admin@example.com: {}\n      info@example.com: {}\n")
    assert "info@example.com" in files["accounts.yaml"]
    return files


def make_env(tmp_path: Path, work: git.Repo | None = None) -> Env:
    shutil.copytree(ROOT / "examples" / "mox", tmp_path / "mox")
    (tmp_path / "mox" / "data").mkdir(exist_ok=True)
    mox_conf = tmp_path / "mox" / "config" / "mox.conf"
    bare = tmp_path / "server" / "desired.git"
    git.Repo.init(bare, bare=True, mkdir=True, initial_branch="main").close()
    if work is None:
        work = git.Repo.init(tmp_path / "work", initial_branch="main")
    work.create_remote("origin", str(bare))
    env = Env(tmp_path, mox_conf, bare, work)
    return env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(tmp_path)
    e.commit(dict(desired_files(e.mox_conf)), "import")
    with e.work:
        yield e


def wait_for(what: str, cond: Callable[[], Any], proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text()[-4000:] if log is not None and log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n--- watcher log ---\n{tail}")


class Watcher:
    """`python -m reconciler ... watch SOURCE` as a child process, JSON logs in a file."""

    def __init__(self, env: Env, *args: str, source: str | None = None) -> None:
        self.log = env.tmp / f"watch-{time.monotonic_ns()}.log"
        cmd = [sys.executable, "-m", "reconciler", "--config", str(env.mox_conf), "--log-format", "json",
               "watch", source or str(env.bare), "--interval", f"{INTERVAL:g}s", "--debounce", "0.3",
               "--cache-dir", str(env.tmp / "cache"), *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def wait_for(self, what: str, cond: Callable[[], Any]) -> Any:
        return wait_for(what, cond, self.proc, self.log)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"watcher did not stop on SIGTERM\n{self.log.read_text()[-4000:]}")

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


@contextlib.contextmanager
def watching(env: Env, *args: str, source: str | None = None) -> Iterator[Watcher]:
    w = Watcher(env, *args, source=source)
    try:
        yield w
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def applied(env: Env, sha: str) -> Callable[[], bool]:
    def check() -> bool:
        st = env.status()
        return st.get("last_applied_revision") == sha and st.get("result") in ("applied", "unchanged")
    return check


def has_domain(env: Env, name: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return name in env.live().Domains
        except Exception:  # mid-write: try again
            return False
    return check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str) -> tuple[int, str]:
    """Status and body; (0, why) while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError) as e:
        return 0, str(e)


# ---------------------------------------------------------------------------------------------


def test_pushed_commit_is_applied_and_sigterm_stops_cleanly(env: Env) -> None:
    first = str(env.work.head.commit.hexsha)
    with watching(env) as w:
        w.wait_for("the first reconcile", applied(env, first))
        assert "info@example.com" in env.live().Accounts["admin"].Destinations
        sha = env.commit({"domain-example.org.yaml": NEW_DOMAIN}, "add example.org")
        w.wait_for("example.org in domains.conf", has_domain(env, "example.org"))
        w.wait_for("the status to name the new commit", applied(env, sha))
        assert w.stop() == 0
    st = env.status()
    assert st["watcher"]["state"] == "stopped"
    assert st["last_applied_revision"] == sha and st["commit"]["subject"] == "add example.org"
    assert {c["type"]: c["status"] for c in st["conditions"]} == {"Ready": "True", "Reconciling": "False",
                                                                   "Stalled": "False"}
    assert any(h["result"] == "applied" and h["revision"] == sha for h in st["history"])
    assert len(st["history"]) <= 10
    # Each stage is logged with the commit.
    stages = {(r.get("stage"), r.get("commit")) for r in w.logs()}
    assert {("fetch", sha), ("plan", sha), ("apply", sha)} <= stages


def test_invalid_yaml_is_reported_and_the_next_good_commit_applied(env: Env) -> None:
    first = str(env.work.head.commit.hexsha)
    with watching(env) as w:
        w.wait_for("the first reconcile", applied(env, first))
        before = env.domains_conf.read_bytes()
        bad = env.commit({"domain-example.org.yaml": "Domains:\n  example.org:\n    ReportsAccount: [admin\n"},
                         "broken yaml")
        st = w.wait_for("the failure in the status",
                        lambda: (s := env.status()).get("last_attempted_revision") == bad and s.get("error") and s)
        assert st["result"] == "failed" and st["reason"] == "DesiredInvalid"
        assert "domain-example.org.yaml:4:1: YAML syntax error" in st["error"]
        ready = {c["type"]: c for c in st["conditions"]}
        assert ready["Ready"]["status"] == "False" and ready["Ready"]["reason"] == "DesiredInvalid"
        assert ready["Stalled"]["status"] == "True"
        assert st["last_applied_revision"] == first  # the last good state stays applied
        assert env.domains_conf.read_bytes() == before
        good = env.commit({"domain-example.org.yaml": NEW_DOMAIN}, "fixed")
        w.wait_for("the fixed commit applied", applied(env, good))
        assert "example.org" in env.live().Domains
        assert w.proc.poll() is None  # the bad commit did not stop the loop
        assert w.stop() == 0


def test_signed_commits_required(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t", "-f", str(keys / "id")], check=True)
    allowed = keys / "allowed_signers"
    allowed.write_text(f"author@example.org {(keys / 'id.pub').read_text()}")
    work = git.Repo.init(tmp_path / "work", initial_branch="main")
    with work.config_writer() as cw:
        cw.set_value("gpg", "format", "ssh")
        cw.set_value("user", "signingkey", str(keys / "id"))
    env = make_env(tmp_path, work)
    first = env.commit(dict(desired_files(env.mox_conf)), "import", "-S")
    with work, watching(env, "--require-signed-commits", "--allowed-signers", str(allowed)) as w:
        w.wait_for("the signed first commit", applied(env, first))
        before = env.domains_conf.read_bytes()
        unsigned = env.commit({"domain-example.org.yaml": NEW_DOMAIN}, "unsigned")
        st = w.wait_for("the unsigned commit refused",
                        lambda: (s := env.status()).get("reason") == "SourceFailed" and s)
        assert f"commit {unsigned[:12]} ('unsigned') is not signed" in st["error"]
        assert st["last_applied_revision"] == first
        assert env.domains_conf.read_bytes() == before
        signed = env.commit({"domain-example.org.yaml": NEW_DOMAIN + "# signed\n"}, "signed", "-S")
        w.wait_for("the signed commit applied", applied(env, signed))
        assert "example.org" in env.live().Domains
        assert env.status()["commit"]["signed"] is True
        assert w.stop() == 0


def remove_address_by_hand(env: Env, account: str, address: str) -> None:
    """What an admin in mox's web pages would do: rewrite domains.conf without the address."""
    dyn = env.live()
    acc = dyn.Accounts[account]
    dests = {k: v for k, v in acc.Destinations.items() if k != address}
    new = dataclasses.replace(dyn, Accounts={**dyn.Accounts, account: dataclasses.replace(acc, Destinations=dests)})
    tmp = env.domains_conf.with_name(".domains.conf.hand")
    tmp.write_text(sconf.write(new))
    os.replace(tmp, env.domains_conf)


def test_drift_is_corrected_and_shown(env: Env) -> None:
    first = str(env.work.head.commit.hexsha)
    port = free_port()
    with watching(env, "--metrics-addr", f"127.0.0.1:{port}", "--instance", "mail-a") as w:
        w.wait_for("the first reconcile", applied(env, first))
        code, body = http_get(f"http://127.0.0.1:{port}/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok"
        remove_address_by_hand(env, "admin", "info@example.com")
        assert "info@example.com" not in env.live().Accounts["admin"].Destinations
        w.wait_for("info@example.com restored",
                   lambda: "info@example.com" in env.live().Accounts["admin"].Destinations)
        st = w.wait_for("the drift in the status", lambda: (s := env.status()).get("last_drift") and s)
        assert st["last_drift"]["revision"] == first
        assert any(h["drift"] and h["result"] == "applied" for h in st["history"])
        # The status file is written inside the run, the metrics right after it: wait for them.
        code, text = w.wait_for("the drift in the metrics", lambda: (
            r := http_get(f"http://127.0.0.1:{port}/metrics"))[0] == 200
            and 'mox_reconciler_drift_detected_total{instance="mail-a"} 1.0' in r[1] and r)
        assert 'mox_reconciler_reconcile_total{instance="mail-a",result="applied"} 2.0' in text
        assert 'mox_reconciler_objects_managed{instance="mail-a",kind="domain"} 1.0' in text
        assert f'revision="{first}"' in text  # last applied commit info
        assert w.stop() == 0


def test_broken_source_fails_readiness_not_liveness_and_the_clock_survives_a_restart(env: Env) -> None:
    """The git server goes away for longer than the grace period: /healthz (liveness) stays 200, so
    nothing restarts the process, while /readyz and the status file report the failure. A restart
    keeps the failure clock (the status file), so it is not ready again just for restarting."""
    first = str(env.work.head.commit.hexsha)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ("--metrics-addr", f"127.0.0.1:{port}", "--health-grace", "1s")
    with watching(env, *args) as w:
        w.wait_for("the first reconcile", applied(env, first))
        w.wait_for("ready", lambda: http_get(f"{url}/readyz")[0] == 200)
        down = env.bare.with_name("down.git")
        env.bare.rename(down)  # the git server is down
        code, body = w.wait_for("not ready after the grace period",
                                lambda: (r := http_get(f"{url}/readyz"))[0] == 503 and r)
        ready = json.loads(body)
        assert ready["status"] == "failing" and ready["reason"] == "SourceFailed"
        code, body = http_get(f"{url}/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok"
        st = env.status()
        assert st["result"] == "failed" and st["reason"] == "SourceFailed" and st["failing_since"] == ready["failing_since"]
        assert st["consecutive_failures"] >= 1
        assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "False"
        assert w.stop() == 0
    with watching(env, *args) as w:
        code, body = w.wait_for("the restarted watcher's /readyz", lambda: (r := http_get(f"{url}/readyz"))[0] and r)
        assert code == 503 and json.loads(body)["failing_since"] == ready["failing_since"]
        assert http_get(f"{url}/healthz")[0] == 200
        down.rename(env.bare)  # back up
        w.wait_for("ready again", lambda: http_get(f"{url}/readyz")[0] == 200)
        assert env.status()["failing_since"] is None and env.status()["consecutive_failures"] == 0
        assert w.stop() == 0


def test_once_on_unchanged_source_writes_nothing(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """In process: `watch --once` is one run, no loop, no signals."""
    argv = ["--config", str(env.mox_conf), "watch", str(env.bare), "--cache-dir", str(env.tmp / "cache"), "--once"]
    assert main(argv) == 0, capsys.readouterr().err
    assert env.status()["result"] == "applied"
    before = env.domains_conf.read_bytes(), env.domains_conf.stat().st_mtime_ns
    assert main(argv) == 0, capsys.readouterr().err
    assert (env.domains_conf.read_bytes(), env.domains_conf.stat().st_mtime_ns) == before
    assert env.status()["result"] == "unchanged" and env.status()["watcher"]["state"] == "once"
    env.commit({"domain-example.org.yaml": "Domains: [\n"}, "broken")
    assert main(argv) == 1
    assert env.status()["reason"] == "DesiredInvalid"
    assert (env.domains_conf.read_bytes(), env.domains_conf.stat().st_mtime_ns) == before


def test_suspend_file_pauses_applying(env: Env) -> None:
    first = str(env.work.head.commit.hexsha)
    suspend = env.tmp / "suspend"
    with watching(env, "--suspend-file", str(suspend)) as w:
        w.wait_for("the first reconcile", applied(env, first))
        suspend.touch()
        before = env.domains_conf.read_bytes()
        sha = env.commit({"domain-example.org.yaml": NEW_DOMAIN}, "add example.org")
        st = w.wait_for("the suspended plan",
                        lambda: (s := env.status()).get("last_attempted_revision") == sha and s)
        assert st["result"] == "planned" and st["suspended"] is True and st["counts"]["create"] >= 1
        ready = {c["type"]: c for c in st["conditions"]}["Ready"]
        assert ready["reason"] == "Suspended" and str(suspend) in ready["message"]
        assert env.domains_conf.read_bytes() == before
        suspend.unlink()
        w.wait_for("the commit applied once resumed", applied(env, sha))
        assert "example.org" in env.live().Domains
        assert w.stop() == 0


def test_local_checkout_changes_seen_by_watchfiles(env: Env) -> None:
    """With a long interval, only the file watcher can notice the change in time."""
    root = Path(env.work.working_tree_dir or "")
    with watching(env, "--interval", "10m", source=str(root)) as w:
        w.wait_for("the first reconcile", lambda: env.status().get("result") == "applied")
        # The watcher started before the first run read the files, so the edit right after it
        # (or during it) is seen, not left for the 10-minute resync.
        msgs = [r.get("msg", "") for r in w.logs()]
        watching_at = next(i for i, m in enumerate(msgs) if m.startswith(f"watching {root}"))
        assert watching_at < next(i for i, m in enumerate(msgs) if m.startswith("plan"))
        (root / "domain-example.org.yaml").write_text(NEW_DOMAIN)  # uncommitted: a dirty checkout
        w.wait_for("example.org in domains.conf", has_domain(env, "example.org"))
        st = w.wait_for("the status", lambda: (s := env.status()).get("result") == "applied" and
                        "+dirty" in str(s.get("last_applied_revision")) and s)
        assert st["history"][0]["trigger"] == "change"
        assert w.stop() == 0
