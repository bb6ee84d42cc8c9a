"""DKIM keys are generated in threads of the process itself: no worker process to outlive a
SIGKILL, keys a plan named are started early and handed out once, unclaimed ones discarded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from reconciler.apply.keymaker import KeyMaker
from reconciler.mox import keygen
from reconciler.mox.keyfiles import ED25519, RSA, key_kind, parse_dkim_pem

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def reqs(kind: str, n: int, domain: str = "example.org") -> list[keygen.KeyRequest]:
    return [keygen.KeyRequest(f"s{i}", domain, kind, NOW) for i in range(n)]


def test_started_keys_are_handed_out_once_in_request_order() -> None:
    want = reqs(keygen.ED25519, 6)
    with KeyMaker(2) as maker:
        maker.start(want[:4])
        pems = maker.pems(want)  # four were under way, two are started now
        again = maker.pems(want[:1])
    assert [p.decode().splitlines()[1] for p in pems] == [f"Note: {r.note()}" for r in want]
    assert len(set(pems)) == 6
    assert again[0] not in pems  # handed out once: asking again makes a new key
    assert {key_kind(parse_dkim_pem(p)) for p in pems} == {ED25519}


def test_rsa_keys_from_threads_are_what_mox_reads() -> None:
    with KeyMaker(2) as maker:
        maker.start(reqs(keygen.RSA2048, 2))
        pems = maker.pems(reqs(keygen.RSA2048, 2))
    assert [key_kind(parse_dkim_pem(p)) for p in pems] == [RSA, RSA]


def test_discard_forgets_keys_not_handed_out() -> None:
    with KeyMaker(2) as maker:
        maker.start(reqs(keygen.ED25519, 3))
        maker.discard()
        assert maker._futures == {}
        assert len(maker.pems(reqs(keygen.ED25519, 3))) == 3  # still usable after a discard


GENERATOR = """
import sys
from datetime import UTC, datetime
from reconciler.apply.keymaker import KeyMaker
from reconciler.mox import keygen
now = datetime(2026, 11, 25, tzinfo=UTC)
maker = KeyMaker(2)
reqs = [keygen.KeyRequest(f"s{i}", "example.org", keygen.RSA2048, now) for i in range(400)]
maker.start(reqs)
print("generating", flush=True)
maker.pems(reqs)
"""


def test_generators_are_threads_that_die_with_the_process() -> None:
    """While keys are generated the process has generator threads and no child process; after
    a SIGKILL nothing of it is left."""
    with subprocess.Popen([sys.executable, "-c", GENERATOR], stdout=subprocess.PIPE, text=True, cwd=ROOT) as proc:
        _kill_after_looking(proc)
    assert proc.returncode == -signal.SIGKILL
    assert not Path(f"/proc/{proc.pid}").exists()


def _kill_after_looking(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "generating\n"
        tasks = list(Path(f"/proc/{proc.pid}/task").iterdir())
        children = [c for t in tasks for c in (t / "children").read_text().split()]
        assert children == []
        assert len(tasks) >= 3  # the main thread and two generators
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
