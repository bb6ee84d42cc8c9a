"""Running as mox's user or as root on a config dir shared with mox's user, against the real CLI.

The config dir is laid out as mox leaves it (owner uid 1000 group root, dirs 02750, files 0640);
the desired state is a root-owned git checkout. Runs as uid 1000 use `setpriv` on the real CLI in
a subprocess; runs as root plant the links mox's user could plant (that uid owns the config dir)
and check victim files by hash and stat. Sources are attacked with committed links to a file
holding a known secret, which must never appear in any output.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli.main import main

from .asuser import MOX_UID, STRANGER_UID

ROOT = Path(__file__).resolve().parent.parent
MOX_GID = 0  # mox's fixperms: <mox uid>:root
NEW_DOMAIN = ("Domains:\n  example.org:\n    ReportsAccount: admin\n    DKIM:\n      Selectors:\n"
              "        ed1: {Algorithm: ed25519, Hash: sha256}\n      Sign: [ed1]\n")
SECRET = "secret-7f3a9c"
SECRET_FILE = f"Domains:\n  {SECRET}.example:\n    NoSuchField: {SECRET}\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (files owned by mox's uid, setpriv)")


def git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org",  # the test's own git trusts every repository
           "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()


def fixperms(path: Path, uid: int, gid: int) -> None:
    """What mox does to its config and data dirs on its first start as root."""
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, gid, follow_symlinks=False)
        if not p.is_symlink():
            p.chmod(0o2750 if p.is_dir() else 0o640)


@dataclass
class Site:
    base: Path  # reachable by uid 1000 (pytest's tmp_path is not)
    mox_conf: Path
    checkout: Path
    home: Path  # uid 1000's HOME and cache

    @property
    def config_dir(self) -> Path:
        return self.mox_conf.parent

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            (self.checkout / name).write_text(text)
        git(self.checkout, "add", "-A")
        git(self.checkout, "commit", "-q", "-m", message)
        return git(self.checkout, "rev-parse", "HEAD")

    def cli(self, *argv: str, uid: int | None = None, stdin: int | None = subprocess.DEVNULL,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The real CLI in a subprocess, as root or (setpriv) as `uid` with no supplementary groups."""
        prefix = [] if uid is None else ["setpriv", f"--reuid={uid}", f"--regid={uid if uid != MOX_UID else MOX_GID}",
                                         "--clear-groups"]
        full = {"PATH": os.environ["PATH"], "HOME": str(self.home), "XDG_CACHE_HOME": str(self.home / "cache"),
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LANG": "C.UTF-8", **(env or {})}
        return subprocess.run([*prefix, sys.executable, "-m", "reconciler", "--config", str(self.mox_conf), *argv],
                              cwd=self.base, env=full, stdin=stdin, capture_output=True, text=True, timeout=300)


@functools.cache
def _setpriv_reason() -> str:
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    out = subprocess.run(["setpriv", f"--reuid={MOX_UID}", f"--regid={MOX_UID}", "--clear-groups", sys.executable,
                          "-c", "import reconciler"], capture_output=True, text=True, cwd="/", timeout=60)
    if out.returncode != 0:
        return f"uid {MOX_UID} cannot run {sys.executable} with this package: {out.stderr.strip()[-300:]}"
    return ""


def desired_files(mox_conf: Path) -> dict[str, str]:
    from reconciler.desired.importer import import_files
    from reconciler.mox.live import locate, read_live

    live = read_live(locate(str(mox_conf)))
    files = import_files(live.static, live.dynamic)
    files["accounts.yaml"] = files["accounts.yaml"].replace(
        "      admin@example.com: {}\n", "      admin@example.com: {}\n      info@example.com: {}\n")
    return files


@pytest.fixture
def site() -> Iterator[Site]:
    base = Path(tempfile.mkdtemp(prefix="mox-reconciler-hardening-"))
    try:
        base.chmod(0o755)
        mox = base / "mox"
        shutil.copytree(ROOT / "examples" / "mox", mox)
        (mox / "data" / "accounts").mkdir(parents=True, exist_ok=True)
        os.chown(mox, 0, MOX_UID)
        mox.chmod(0o751)  # mox's working dir: root:<mox gid> 0751
        fixperms(mox / "config", MOX_UID, MOX_GID)
        fixperms(mox / "data", MOX_UID, MOX_GID)
        checkout = base / "desired"
        checkout.mkdir()
        git(checkout, "init", "-q", "-b", "main")
        home = base / "home"
        home.mkdir()
        os.chown(home, MOX_UID, MOX_UID)
        s = Site(base, mox / "config" / "mox.conf", checkout, home)
        s.commit(desired_files(s.mox_conf), "import")
        yield s
    finally:
        shutil.rmtree(base, ignore_errors=True)


def owned_like_domains_conf(config_dir: Path) -> list[str]:
    """Every path in the config dir whose owner differs from domains.conf's."""
    want = os.stat(config_dir / "domains.conf")
    return [f"{p} {p.lstat().st_uid}:{p.lstat().st_gid}" for p in [config_dir, *config_dir.rglob("*")]
            if (p.lstat().st_uid, p.lstat().st_gid) != (want.st_uid, want.st_gid)]


def mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


# ---------------------------------------------------------------------------------------------
# Root, then mox's user, on the same config dir and a root-owned checkout


def test_apply_as_root_then_as_mox_user(site: Site) -> None:
    reason = _setpriv_reason()
    if reason:
        pytest.skip(reason)
    first = git(site.checkout, "rev-parse", "HEAD")
    out = site.cli("apply", str(site.checkout), "--yes")
    assert out.returncode == 0, out.stderr
    records = site.config_dir / "mox-reconciler.records"
    assert json.loads((records / "last-apply.json").read_text())["source"]["commit"]["sha"] == first
    assert json.loads((site.config_dir / "mox-reconciler.inventory.json").read_text())["commit"]["sha"] == first
    assert owned_like_domains_conf(site.config_dir) == []

    second = site.commit({"domain-example.org.yaml": NEW_DOMAIN}, "add example.org")
    out = site.cli("apply", str(site.checkout), "--yes", uid=MOX_UID)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "created DKIM key dkim/ed1._domainkey.example.org." in out.stdout
    assert json.loads((records / "last-apply.json").read_text())["source"]["commit"]["sha"] == second
    assert json.loads((site.config_dir / "mox-reconciler.inventory.json").read_text())["commit"]["sha"] == second
    assert owned_like_domains_conf(site.config_dir) == []
    # The narrowest modes that work: mox reads its keys and the lock is shared by its writers.
    assert mode(site.config_dir / "domains.conf.lock") == 0o660
    assert mode(site.config_dir / "mox-reconciler.inventory.json") == 0o640
    assert mode(records) == 0o2750 and {mode(p) for p in records.iterdir()} == {0o640}
    (key,) = (site.config_dir / "dkim").glob("ed1._domainkey.example.org.*")
    assert mode(key) == 0o640 and mode(site.config_dir / "dkim") == 0o2750

    # And root again (the watcher, --once), now that mox's user wrote last: the status file too.
    out = site.cli("watch", str(site.checkout), "--once")
    assert out.returncode == 0, out.stderr
    status = site.config_dir / "mox-reconciler.status.json"
    assert json.loads(status.read_text())["result"] == "unchanged" and mode(status) == 0o640
    assert owned_like_domains_conf(site.config_dir) == []


def test_checkout_of_another_user_is_a_clear_error_with_the_remedy(site: Site) -> None:
    reason = _setpriv_reason()
    if reason:
        pytest.skip(reason)
    for p in [site.checkout, *site.checkout.rglob("*")]:
        os.chown(p, STRANGER_UID, STRANGER_UID, follow_symlinks=False)
    for _ in range(3):  # git's refusal once came out as no output at all, or as "not a checkout"
        out = site.cli("plan", str(site.checkout), uid=MOX_UID)
        assert out.returncode == 1 and out.stdout == ""
        assert f"git refuses the repository {site.checkout}: it belongs to uid {STRANGER_UID}" in out.stderr
        assert f"git config --global --add safe.directory {site.checkout}" in out.stderr
        assert "Traceback" not in out.stderr
    trusted = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": str(site.checkout)}
    out = site.cli("plan", str(site.checkout), uid=MOX_UID, env=trusted)
    assert out.returncode == 0, out.stderr
    assert git(site.checkout, "rev-parse", "--short=7", "HEAD") in out.stdout + out.stderr


def test_permission_problem_names_path_owner_and_remedy(site: Site) -> None:
    """A file left by an older version as root (0644 root:root) where mox's user must write."""
    reason = _setpriv_reason()
    if reason:
        pytest.skip(reason)
    records = site.config_dir / "mox-reconciler.records"
    records.mkdir()
    records.chmod(0o755)  # root's, as an older version left it
    site.commit({"domain-example.org.yaml": NEW_DOMAIN}, "add example.org")
    out = site.cli("apply", str(site.checkout), "--yes", uid=MOX_UID)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert f"{records}/example.org.txt: permission denied" in line
    assert f"owner uid 0 gid 0, mode 0755; this process runs as uid {MOX_UID}" in line
    assert f"run mox-reconciler as uid {MOX_UID} (the owner of domains.conf) or as root" in line
    assert f"chown {MOX_UID}:{MOX_GID} {records}" in line


# ---------------------------------------------------------------------------------------------
# Links planted by mox's user where root writes


@dataclass
class Victim:
    path: Path
    digest: str
    st: tuple[int, ...]

    @classmethod
    def make(cls, directory: Path, name: str = "victim") -> Victim:
        directory.mkdir(exist_ok=True)
        p = directory / name
        p.write_text("root's file: must never be written, read or chowned\n")
        p.chmod(0o600)
        return cls(p, *cls._look(p))

    @staticmethod
    def _look(p: Path) -> tuple[str, tuple[int, ...]]:
        st = p.lstat()
        return (hashlib.sha256(p.read_bytes()).hexdigest(),
                (st.st_uid, st.st_gid, st.st_mode, st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns))

    def untouched(self) -> bool:
        return self._look(self.path) == (self.digest, self.st)


def plant(link: Path, target: Path) -> None:
    """A link made by mox's user."""
    link.symlink_to(target)
    os.chown(link, MOX_UID, MOX_GID, follow_symlinks=False)


def run_in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The CLI in this process, so the temp file names (pid, thread) are known to the attacker."""
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_planted_temp_file_links_are_never_followed(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    victim = Victim.make(site.base / "root-only")
    tag = f"{os.getpid()}.{threading.get_ident()}.tmp"
    records = site.config_dir / "mox-reconciler.records"
    records.mkdir()
    os.chown(records, MOX_UID, MOX_GID)
    for link in (site.config_dir / f".domains.conf.{tag}", site.config_dir / f".mox-reconciler.inventory.json.{tag}",
                 site.config_dir / f".mox-reconciler.status.json.{tag}", records / f".last-apply.json.{tag}"):
        plant(link, victim.path)
    code, out = run_in_process(capsys, "--config", str(site.mox_conf), "watch", str(site.checkout), "--once")
    assert code == 0, out
    assert victim.untouched()
    assert "info@example.com" in (site.config_dir / "domains.conf").read_text()
    assert owned_like_domains_conf(site.config_dir) == []
    assert not [p for p in site.config_dir.rglob("*.tmp")]  # the planted names are gone, nothing left over


@pytest.mark.parametrize("where", ["dkim", "mox-reconciler.records", "domains.conf.lock"])
def test_planted_directory_and_lock_links_are_refused(site: Site, capsys: pytest.CaptureFixture[str],
                                                      where: str) -> None:
    victim_dir = site.base / "root-only"
    victim = Victim.make(victim_dir)
    link = site.config_dir / where
    if where == "dkim":  # the real keys stay readable for validation; the link leads to root's dir
        for key in link.iterdir():
            shutil.copy2(key, victim_dir / key.name)
        shutil.rmtree(link)
    listing = sorted(os.listdir(victim_dir))
    plant(link, victim_dir if where != "domains.conf.lock" else victim.path)
    site.commit({"domain-example.org.yaml": NEW_DOMAIN}, "add example.org")
    before = (site.config_dir / "domains.conf").read_bytes()
    code, out = run_in_process(capsys, "--config", str(site.mox_conf), "apply", str(site.checkout), "--yes")
    assert code == 1
    (line,) = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert f"{link}: is a symbolic link; refusing to" in line
    assert victim.untouched() and sorted(os.listdir(victim_dir)) == listing
    assert link.is_symlink()  # left for the operator to look at
    assert (site.config_dir / "domains.conf").read_bytes() == before  # refused before anything was written


# ---------------------------------------------------------------------------------------------
# Sources never leave the repository


def test_committed_link_to_a_secret_never_shows(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    secret = site.base / "secret.yaml"
    secret.write_text(SECRET_FILE)
    base = git(site.checkout, "rev-parse", "HEAD")
    (site.checkout / "shadow.yaml").symlink_to(secret)
    git(site.checkout, "add", "-A")
    git(site.checkout, "commit", "-q", "-m", "a link")
    bare = site.base / "server.git"
    git(site.base, "clone", "-q", "--bare", str(site.checkout), str(bare))
    before = (site.config_dir / "domains.conf").read_bytes()
    conf = ["--config", str(site.mox_conf)]
    runs = [
        [*conf, "plan", str(site.checkout)],
        [*conf, "plan", str(site.checkout), "--base-ref", base],
        [*conf, "plan", str(site.checkout), "--base-ref", "HEAD"],
        [*conf, "plan", str(site.checkout), "--ref", "HEAD", "--cache-dir", str(site.base / "cache")],
        [*conf, "plan", str(bare), "--cache-dir", str(site.base / "cache-remote")],
        [*conf, "apply", str(site.checkout), "--yes"],
        ["validate", str(site.checkout)],
        ["validate", str(site.checkout / "shadow.yaml")],
    ]
    for argv in runs:
        code, out = run_in_process(capsys, *argv)
        assert code == 1, (argv, out)
        assert SECRET not in out, argv
        assert "shadow.yaml" in out and "symbolic link" in out, (argv, out)
    assert (site.config_dir / "domains.conf").read_bytes() == before
    # The same file committed for real (no link) is read, and its problem shown: the test could fail.
    (site.checkout / "shadow.yaml").unlink()
    (site.checkout / "shadow.yaml").write_text(SECRET_FILE)
    code, out = run_in_process(capsys, "validate", str(site.checkout))
    assert code == 1 and SECRET in out


# ---------------------------------------------------------------------------------------------
# Unattended runs are explicit


def config_state(config_dir: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(config_dir)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                                             p.lstat().st_mtime_ns)
            for p in [config_dir, *config_dir.rglob("*")]}


def test_apply_without_yes_and_without_a_terminal_refuses(site: Site) -> None:
    before = config_state(site.config_dir)
    out = site.cli("apply", str(site.checkout))  # stdin: /dev/null, as cron, CI or `ssh host cmd`
    assert out.returncode == 1
    assert "not applying: --yes was not given and standard input is not a terminal" in out.stderr
    assert "info@example.com" in out.stdout  # the plan is shown
    assert config_state(site.config_dir) == before
    out = site.cli("apply", str(site.checkout), "--no-such-option")
    assert out.returncode == 1 and "unrecognized arguments: --no-such-option" in out.stderr
    out = site.cli("apply", str(site.checkout), env={"MOX_RECONCILER_YES": "1"})
    assert out.returncode == 0, out.stderr
    assert config_state(site.config_dir) != before
