"""The real mox v0.0.17 for tests and benchmarks: the binary, `config test`, loopback instances, `mox serve`.

* `mox_bin()`: `$MOX_BIN`, else the `shared/mox/get-mox` found beside the repository or one of its
  parent directories (a worktree under `/work/wt/NAME` and a CI clone next to `../shared` both find
  it). Skips the test with the reason when there is none; fails when `$MOX_BIN` names something
  that is not mox v0.0.17 (an explicit setting that is wrong is an error, not a reason to skip).
* `config_test(mox_conf)`: mox's own verdict on a config dir.
* `build_instance(step)`: a private copy of the golden instance (tests/fixtures/golden/instance)
  with a golden step's domains.conf and keys, on free loopback ports, with a fresh admin password,
  in a directory uid 1000 (mox.conf `User`) can reach.
* `serve(instance)`: `mox serve` as root, in private mount and PID namespaces (`unshare`), with a
  resolv.conf saying `nameserver 127.0.0.1` bind-mounted over /etc/resolv.conf so mox's DNS stays
  on loopback. Ready when the control socket answers `ctlv0` (mox listens on it after "ready to
  serve"). Stopping kills the namespace's first process, which makes the kernel kill and reap
  every other process in it: no zombie, no leftover child, even when mox hangs; the whole
  namespace also dies with the test process (parent-death signal).

Several test processes can do this at once: every instance has its own directory and ports, and a
start that loses a port race is retried on new ports.
"""

from __future__ import annotations

import functools
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from reconciler.mox.ctl import Ctl
from reconciler.mox.errors import CtlError
from reconciler.mox.live import ConfigPaths

from .golden import build_step_config, golden_step

MOX_VERSION = "v0.0.17"
REPO = Path(__file__).resolve().parent.parent
MOX_UID = 1000  # the golden mox.conf's `User: 1000`
START_TIMEOUT = 30.0  # generous: a busy two-core CI machine; a start takes ~0.3 s when idle
STOP_TIMEOUT = 15.0  # a graceful mox stop waits at least 1 s, at most ~4 s for connections

# The golden mox.conf's ports (base 10000 + the standard port) by what they serve.
GOLDEN_PORTS = {10025: "smtp", 10587: "submission", 10465: "submissions", 10143: "imap", 10993: "imaps",
                10443: "https", 10080: "http", 10010: "metrics"}


class MoxUnavailable(Exception):
    """No usable mox here: the reason a test skips."""


# --- the binary


def find_get_mox(start: Path = REPO) -> Path | None:
    """`shared/mox/get-mox` in the repository's parent directory or the nearest ancestor that has one."""
    for d in start.parents:
        candidate = d / "shared" / "mox" / "get-mox"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@functools.cache
def _resolve() -> tuple[str, str, bool]:
    """(path, reason, explicit): path "" when unavailable; explicit when $MOX_BIN chose it."""
    env = os.environ.get("MOX_BIN", "")
    if env:
        path, explicit = env, True
    else:
        explicit = False
        get_mox = find_get_mox()
        if get_mox is None:
            return "", f"no mox: $MOX_BIN is unset and no shared/mox/get-mox above {REPO}", False
        r = subprocess.run([str(get_mox)], capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not r.stdout.strip():
            return "", f"no mox: {get_mox} failed: {(r.stderr or r.stdout).strip()}", False
        path = r.stdout.strip()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return "", f"MOX_BIN={path} is not an executable file", explicit
    try:
        r = subprocess.run([path, "version"], capture_output=True, text=True, timeout=60)
    except OSError as e:
        return "", f"{path} does not run here: {e}", explicit
    version = r.stdout.strip()
    if r.returncode != 0 or not version.startswith(MOX_VERSION + "-"):
        return "", f"{path} is not mox {MOX_VERSION} (`mox version`: {version or r.stderr.strip()!r})", explicit
    return path, "", explicit


def mox_bin() -> str:
    """Path of mox v0.0.17; skips the calling test with the reason when there is none."""
    path, reason, explicit = _resolve()
    if not path:
        if explicit:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@dataclass(frozen=True)
class Verdict:
    ok: bool
    output: str


def config_test(mox_conf: Path) -> Verdict:
    """`mox -config MOX_CONF config test`: ok means exit 0 ("config OK")."""
    r = subprocess.run([mox_bin(), "-config", str(mox_conf), "config", "test"],
                       capture_output=True, text=True, timeout=60)
    return Verdict(r.returncode == 0, r.stdout + r.stderr)


# --- loopback instances


@functools.cache
def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports free right now on 127.0.0.1 (and on ::1 when the instance uses it)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s4)
            s4.bind(("127.0.0.1", 0))
            port = int(s4.getsockname()[1])
            if ipv6_loopback():
                s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                held.append(s6)
                s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    s6.bind(("::1", port))
                except OSError:
                    continue
            ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


@dataclass
class MoxInstance:
    """A mox config dir + data dir under `root`, on its own loopback ports."""

    root: Path
    ports: dict[str, int]
    admin_password: str  # test-only, random per test process (webadmin login)

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def mox_conf(self) -> Path:
        return self.config_dir / "mox.conf"

    @property
    def domains_conf(self) -> Path:
        return self.config_dir / "domains.conf"

    @property
    def config_paths(self) -> ConfigPaths:
        """The reconciler's view of where this instance keeps its config."""
        return ConfigPaths(self.mox_conf)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def ctl_path(self) -> Path:
        return self.data_dir / "ctl"

    @property
    def log_path(self) -> Path:
        return self.root / "mox.log"

    def ctl(self, timeout: float = 30.0) -> Ctl:
        return Ctl(self.ctl_path, timeout=timeout)

    def config_test(self) -> Verdict:
        return config_test(self.mox_conf)

    def mox(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """mox's own CLI for this instance (`mox -config MOX_CONF ARGS`), as root; not checked."""
        return subprocess.run([mox_bin(), "-config", str(self.mox_conf), *args], input=input,
                              capture_output=True, text=True, timeout=timeout)

    def assign_ports(self) -> None:
        """New free ports, written into mox.conf (the golden ports are replaced one for one)."""
        fresh = dict(zip(GOLDEN_PORTS.values(), free_ports(len(GOLDEN_PORTS)), strict=True))
        text = self.mox_conf.read_text()
        current = {v: k for k, v in self.ports.items()} if self.ports else {}

        def swap(m: re.Match[str]) -> str:
            old = int(m.group(2))
            name = current.get(old) or GOLDEN_PORTS[old]
            return f"{m.group(1)}{fresh[name]}"

        self.mox_conf.write_text(re.sub(r"(?m)^(\t+Port: )([0-9]+)$", swap, text))
        self.ports = fresh

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def build_instance(step: str = "00", *, base: Path | None = None) -> MoxInstance:
    """A loopback instance from the golden instance and golden step `step` (a name prefix).

    `base` must be reachable by uid 1000 (pytest's tmp_path is not: /tmp/pytest-of-root is 0700);
    the default is the system temp dir. The caller removes it (`remove()`).
    """
    root = Path(tempfile.mkdtemp(prefix="mox-", dir=base))
    try:
        root.chmod(0o755)
        closed = [d for d in root.parents if not os.stat(d).st_mode & stat.S_IXOTH]
        if closed:
            raise RuntimeError(f"{closed[0]} is not searchable by others, so mox's uid {MOX_UID} cannot reach "
                               f"{root}: choose another base directory (or TMPDIR)")
        build_step_config(golden_step(step), root)
        conf = (root / "config" / "mox.conf").read_text()
        if not ipv6_loopback():
            conf = conf.replace("\t\t\t- ::1\n", "")
        (root / "config" / "mox.conf").write_text(conf)
        (root / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        instance = MoxInstance(root, {}, "")
        instance.assign_ports()
        instance.admin_password = _set_admin_password(instance)
        return instance
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


_admin_secret: tuple[str, bytes] | None = None


def _set_admin_password(instance: MoxInstance) -> str:
    """The test process's admin password (random, made once by `mox setadminpassword`; its
    bcrypt hash is then copied, which saves a bcrypt per instance)."""
    global _admin_secret
    target = instance.config_dir / "adminpasswd"
    if _admin_secret is None:
        password = secrets.token_urlsafe(18)
        r = instance.mox("setadminpassword", input=password + "\n")
        if r.returncode != 0:
            raise RuntimeError(f"mox setadminpassword failed: {r.stderr.strip()}")
        _admin_secret = (password, target.read_bytes())
    else:
        target.write_bytes(_admin_secret[1])
    return _admin_secret[0]


# --- serving


@functools.cache
def _namespace_reason() -> str:
    """Why mox cannot be served here ("" when it can): root, unshare with PID + mount namespaces."""
    if os.geteuid() != 0:
        return "`mox serve` must be started as root (it drops to mox.conf's User itself)"
    unshare = shutil.which("unshare")
    if unshare is None:
        return "unshare (util-linux) not found: needed for mox's private resolv.conf"
    r = subprocess.run([unshare, "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "true"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"cannot make private mount and PID namespaces: {r.stderr.strip()}"
    return ""


def serve_reason() -> str:
    """Why tests cannot serve mox here, or ""."""
    path, reason, _ = _resolve()
    return reason if not path else _namespace_reason()


@dataclass
class ServedMox:
    """A running `mox serve` of `instance`; `pids` are mox's root and unprivileged processes."""

    instance: MoxInstance
    proc: subprocess.Popen[bytes]  # unshare, outside the namespaces; its child is mox's root process
    log_file: IO[bytes]
    pids: tuple[int, ...] = ()
    stopped: bool = field(default=False)

    @property
    def ports(self) -> dict[str, int]:
        return self.instance.ports

    @property
    def ctl_path(self) -> Path:
        return self.instance.ctl_path

    @property
    def admin_password(self) -> str:
        return self.instance.admin_password

    @property
    def imaps_port(self) -> int:
        return self.instance.ports["imaps"]

    def ctl(self, timeout: float = 30.0) -> Ctl:
        return self.instance.ctl(timeout)

    def log(self) -> str:
        return self.instance.log_path.read_text(errors="replace")

    def admin_api(self) -> WebAPI:
        """mox's admin API (webadmin), logged in with the instance's admin password."""
        api = WebAPI(self.ports["http"], "/admin/api/")
        api.login(self.admin_password)
        return api

    def stop(self, *, graceful: bool = False) -> None:
        """Stop mox and reap it. graceful: SIGTERM, mox's own shutdown (at least 1 s); otherwise
        SIGKILL to the namespace's first process, and the kernel takes the rest down at once."""
        if self.stopped:
            return
        self.stopped = True
        try:
            init = _children(self.proc.pid)
            if graceful and init and self.proc.poll() is None:
                os.kill(init[0], signal.SIGTERM)
                with suppress(subprocess.TimeoutExpired):
                    self.proc.wait(STOP_TIMEOUT)
            if self.proc.poll() is None and init:
                os.kill(init[0], signal.SIGKILL)  # unshare still waits for it: the pid is not reused
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # --kill-child passes it on to the namespace
                self.proc.wait(STOP_TIMEOUT)
        finally:
            self.log_file.close()

    def leftover_pids(self) -> list[int]:
        """mox's processes that still exist (in any state, zombies included)."""
        return [p for p in self.pids if os.path.exists(f"/proc/{p}")]


class WebAPI:
    """A client for mox's sherpa JSON APIs on the internal listener (`/admin/api/`, `/api/` of the
    account interface): POST {"params": [...]} to PATH/METHOD; errors come back as {"error": ...}.
    Login is LoginPrep (a token, plus a cookie) then Login (token, credentials...), which sets the
    session cookie and returns the CSRF token every later call sends as `x-mox-csrf`."""

    def __init__(self, port: int, path: str) -> None:
        self.base = f"http://127.0.0.1:{port}{path}"
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def call(self, method: str, *params: Any) -> Any:
        """The method's result; RuntimeError with mox's message when it answers with an error."""
        headers = {"Content-Type": "application/json", **({"x-mox-csrf": self.csrf} if self.csrf else {})}
        req = urllib.request.Request(self.base + method, data=json.dumps({"params": list(params)}).encode(),
                                     headers=headers)
        with self.opener.open(req, timeout=30) as r:
            answer = json.loads(r.read())
        if answer.get("error"):
            raise RuntimeError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result")

    def login(self, *credentials: str) -> None:
        self.csrf = self.call("Login", self.call("LoginPrep"), *credentials)


def _children(pid: int) -> list[int]:
    """The children of `pid`, forked by any of its threads: /proc lists a child under the task
    (thread) that forked it, and Go forks from whichever thread runs the goroutine."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return sorted(set(found))


def _launch(instance: MoxInstance) -> ServedMox:
    unshare = shutil.which("unshare") or "unshare"
    setpriv = shutil.which("setpriv")
    # setpriv: the namespace dies with the test process; --kill-child: ... and with unshare.
    argv = [*([setpriv, "--pdeathsig", "KILL"] if setpriv else []),
            unshare, "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
            "sh", "-c", 'mount --bind "$1" /etc/resolv.conf && exec "$2" -config "$3" serve',
            "sh", str(instance.root / "resolv.conf"), mox_bin(), str(instance.mox_conf)]
    log_file = open(instance.log_path, "wb")  # noqa: SIM115 - closed by ServedMox.stop
    try:
        proc = subprocess.Popen(argv, cwd=instance.root, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT)
    except BaseException:
        log_file.close()
        raise
    return ServedMox(instance, proc, log_file)


def _wait_ready(served: ServedMox, timeout: float) -> str:
    """"" once the control socket answers; otherwise why not (mox exited, or the time ran out)."""
    ctl = Ctl(served.ctl_path, timeout=2.0)
    deadline = time.monotonic() + timeout
    while True:
        if served.proc.poll() is not None:
            return "exited"
        try:
            ctl.version()
            return ""
        except CtlError:  # not there yet (or not answering yet): try again until the deadline
            pass
        if time.monotonic() > deadline:
            return "timeout"
        time.sleep(0.01)  # polling the marker (socket answers), not waiting for luck


def start(instance: MoxInstance, *, timeout: float = START_TIMEOUT, attempts: int = 3) -> ServedMox:
    """`mox serve` for `instance`, ready (control socket answering). Skips when mox cannot be
    served here; raises RuntimeError with mox's log when it does not come up."""
    mox_bin()
    reason = _namespace_reason()
    if reason:
        pytest.skip(reason)
    for attempt in range(attempts):
        served = _launch(instance)
        try:
            outcome = _wait_ready(served, timeout)
        except BaseException:  # interrupted: leave nothing running
            served.stop()
            raise
        if not outcome:
            init = _children(served.proc.pid)
            served.pids = tuple(init + [c for p in init for c in _children(p)])
            return served
        served.stop()
        log = served.log()
        if "address already in use" in log and attempt + 1 < attempts:
            instance.assign_ports()  # another process took a port between our probe and mox's bind
            continue
        what = "exited" if outcome == "exited" else f"did not answer on {instance.ctl_path} within {timeout:g} s"
        raise RuntimeError(f"mox serve {what}; its log:\n{log[-4000:]}")
    raise AssertionError("unreachable")


@contextmanager
def serve(instance: MoxInstance, *, graceful_stop: bool = False) -> Iterator[ServedMox]:
    """A served instance for the `with` block; always stopped and reaped afterwards."""
    served = start(instance)
    try:
        yield served
    finally:
        served.stop(graceful=graceful_stop)
