"""`mox config dnsrecords` of the real mox, its one DNS lookup answered on loopback.

mox's dnsrecords reads the config files and asks the system resolver for `<domain>.` TXT, only to
learn the DNSSEC status from the AD bit of the answer (NXDOMAIN is fine; mox trusts AD because
the resolver is on loopback). `dnsrecords(jobs, dnssec=...)` runs a batch of them in one private
network and mount namespace (`unshare`): loopback up, a resolv.conf saying `nameserver 127.0.0.1`
bind-mounted over /etc/resolv.conf, and a stub resolver (dnspython) on 127.0.0.1:53 answering
every query NXDOMAIN, with AD when `dnssec`. Inside, this module runs as a program
(`python -m tests.moxdns`): it starts the stub, runs the jobs in parallel and prints their
results as JSON. Nothing leaves the namespace; the namespace ends with the batch.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode

REPO = Path(__file__).resolve().parent.parent
WORKERS = max(2, 2 * (os.cpu_count() or 1))


@functools.cache
def unavailable() -> str:
    """Why mox cannot be run in a private network namespace here, or ""."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare (util-linux) and ip (iproute2) are needed for mox's private network"
    r = subprocess.run([*_unshare(), "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"cannot make a private network and mount namespace: {r.stderr.strip()}"
    return ""


def _unshare() -> list[str]:
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--net", "--mount", "--propagation", "private"]


def dnsrecords(mox: str, jobs: list[tuple[Path, str]], *, dnssec: bool,
               timeout: float = 300) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of `mox -config CONF config dnsrecords DOMAIN` per job."""
    if not jobs:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        resolv = Path(tmp) / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")
        script = 'ip link set lo up && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
        argv = [*_unshare(), "sh", "-c", script, "sh", str(resolv), sys.executable, "-m", "tests.moxdns",
                *(["--dnssec"] if dnssec else [])]
        request = json.dumps({"mox": mox, "jobs": [[str(c), d] for c, d in jobs]})
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        r = subprocess.run(argv, input=request, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if r.returncode != 0:
        raise RuntimeError(f"the namespace batch failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return [(code, out, err) for code, out, err in json.loads(r.stdout)]


# --- inside the namespace


def _serve(sock: socket.socket, dnssec: bool) -> None:
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            query = dns.message.from_wire(data)
        except Exception:  # not DNS: nothing to answer
            continue
        answer = dns.message.make_response(query)
        answer.set_rcode(dns.rcode.NXDOMAIN)
        if dnssec:
            answer.flags |= dns.flags.AD
        sock.sendto(answer.to_wire(), peer)


def main() -> int:
    dnssec = "--dnssec" in sys.argv[1:]
    request = json.load(sys.stdin)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))
    threading.Thread(target=_serve, args=(sock, dnssec), daemon=True).start()

    def run(job: list[str]) -> tuple[int, str, str]:
        r = subprocess.run([request["mox"], "-config", job[0], "config", "dnsrecords", job[1]],
                           capture_output=True, text=True, errors="replace", timeout=120,
                           env={**os.environ, "GOMAXPROCS": "1"})
        return r.returncode, r.stdout, r.stderr

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(run, request["jobs"]))
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
