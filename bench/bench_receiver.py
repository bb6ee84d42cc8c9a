"""Benchmark: how soon a signed push at `watch --receiver-addr` starts a reconcile, and how many
runs a burst of pushes makes.

A scratch copy of examples/mox/config, its import committed to a bare repository (the remote), and
`python -m reconciler watch BARE --interval 1h --receiver-addr 127.0.0.1:PORT` (so only the
webhook can start a run). Each round commits and pushes a change, then POSTs a GitHub-signed push
and measures (time.perf_counter) until the watcher's JSON log shows the run's `fetch` line
(trigger webhook: the run started) and until the status file names the pushed commit (applied).
Then `--burst` pushes are POSTed back to back and the webhook runs counted.

    .venv/bin/python bench/bench_receiver.py            # --rounds 10 --burst 20
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import git

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.desired.importer import import_files  # noqa: E402
from reconciler.mox.live import locate, read_live  # noqa: E402

SECRET = b"bench-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(port: int, body: bytes) -> int:
    sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/hook", body=body, headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sig})
        return conn.getresponse().status
    finally:
        conn.close()


def webhook_fetches(log: Path) -> list[str]:
    out = []
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("stage") == "fetch" and rec.get("trigger") == "webhook":
            out.append(str(rec.get("commit")))
    return out


def wait(cond: object, deadline: float = 120.0) -> float:
    t0 = time.perf_counter()
    while not cond():  # type: ignore[operator]
        if time.perf_counter() - t0 > deadline:
            raise SystemExit("timed out")
        time.sleep(0.005)
    return time.perf_counter()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--burst", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-receiver-"))
    try:
        shutil.copytree(ROOT / "examples" / "mox", tmp / "mox")
        conf = tmp / "mox" / "config" / "mox.conf"
        live = read_live(locate(str(conf)))
        bare = tmp / "desired.git"
        git.Repo.init(bare, bare=True, initial_branch="main").close()
        work = git.Repo.init(tmp / "work", initial_branch="main")
        work.create_remote("origin", str(bare))
        with work.config_writer() as cw:
            cw.set_value("user", "name", "bench")
            cw.set_value("user", "email", "bench@example.org")
        root = Path(work.working_tree_dir or "")
        for name, text in import_files(live.static, live.dynamic).items():
            (root / name).write_text(text)
        work.git.add("-A")
        work.git.commit("-q", "-m", "import")
        work.git.push("-q", "origin", "main")
        (tmp / "secret").write_bytes(SECRET)
        port = free_port()
        log = tmp / "watch.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "reconciler", "--config", str(conf), "--log-format", "json", "watch", str(bare),
                 "--interval", "1h", "--cache-dir", str(tmp / "cache"), "--receiver-addr", f"127.0.0.1:{port}",
                 "--receiver-secret-file", str(tmp / "secret")], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        status = conf.parent / "mox-reconciler.status.json"

        def status_rev() -> str | None:
            try:
                return json.loads(status.read_text()).get("last_applied_revision")
            except (OSError, ValueError):
                return None

        try:
            first = work.head.commit.hexsha
            wait(lambda: status_rev() == first and "receiver: accepting" in log.read_text())
            started, applied = [], []
            for i in range(args.rounds):
                (root / "domain-example.com.yaml").write_text(
                    (root / "domain-example.com.yaml").read_text().split("    Description:")[0].rstrip("\n")
                    + f"\n    Description: round {i}\n")
                work.git.commit("-q", "-am", f"round {i}")
                work.git.push("-q", "origin", "main")
                sha = work.head.commit.hexsha
                n = len(webhook_fetches(log))
                t0 = time.perf_counter()
                assert post(port, json.dumps({"after": sha}).encode()) == 202
                started.append(wait(lambda n=n: len(webhook_fetches(log)) > n) - t0)
                applied.append(wait(lambda sha=sha: status_rev() == sha) - t0)
            before = len(webhook_fetches(log))
            for _ in range(args.burst):
                assert post(port, b"{}") == 202
            time.sleep(3)  # the bench only: let any folded run finish before counting
            runs = len(webhook_fetches(log)) - before
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        print(f"push -> run started (fetch logged): median {statistics.median(started) * 1000:.0f} ms, "
              f"max {max(started) * 1000:.0f} ms over {args.rounds} pushes")
        print(f"push -> commit applied (status file): median {statistics.median(applied) * 1000:.0f} ms, "
              f"max {max(applied) * 1000:.0f} ms")
        print(f"burst of {args.burst} signed pushes -> {runs} run(s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
