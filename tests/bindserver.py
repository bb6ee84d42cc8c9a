"""A real BIND 9 `named` for tests: 127.0.0.1 on a free port, one zone, a TSIG key allowed to update.

Runs from a temporary directory (`named -g -c named.conf -p PORT`), in the foreground of its own
process so stopping it is one signal to one pid we started. Needs the Debian packages `bind9`
and `bind9-utils`. `start_or_skip` fails (with the reason) under CI=... and skips otherwise when
named is missing or does not come up.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import dns.message
import dns.query
import dns.rcode
import pytest

NAMED_CANDIDATES = ("named", "/usr/sbin/named")
KEY_NAME = "reconciler-test"
KEY_SECRET = base64.b64encode(bytes(range(32))).decode()  # test-only


@dataclass
class BindServer:
    dir: Path
    port: int
    zone: str
    key_file: Path
    proc: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def log(self) -> str:
        p = self.dir / "named.log"
        return p.read_text(errors="replace") if p.exists() else ""


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def find_named() -> str | None:
    for c in NAMED_CANDIDATES:
        p = shutil.which(c)
        if p:
            return p
    return None


def zone_text(zone: str, extra: str = "") -> str:
    return (
        f"$ORIGIN {zone}.\n$TTL 300\n"
        f"@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n"
        f"@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n"
        f"mail IN A 192.0.2.25\n"
        f"www IN TXT \"unrelated\"\n" + extra
    )


def start(tmp: Path, zone: str = "example.org", extra_zone: str = "", timeout: float = 60.0) -> BindServer:
    """Start named; raises RuntimeError with named's output when it does not answer in time (the
    timeout only bounds a failure: a start returns as soon as named answers)."""
    named = find_named()
    if named is None:
        raise RuntimeError("named not found (install the Debian packages bind9 and bind9-utils)")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    key_file = tmp / "update.key"
    key_file.write_text(
        f'key "{KEY_NAME}" {{\n\talgorithm hmac-sha256;\n\tsecret "{KEY_SECRET}";\n}};\n')
    (tmp / f"{zone}.zone").write_text(zone_text(zone, extra_zone))
    (tmp / "named.conf").write_text(f"""
include "{key_file}";
options {{
    directory "{tmp}";
    pid-file "{tmp}/named.pid";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ none; }};
}};
controls {{ }};
zone "{zone}" {{
    type primary;
    file "{tmp}/{zone}.zone";
    allow-update {{ key "{KEY_NAME}"; }};
}};
""")
    cmd = [named, "-g", "-c", str(tmp / "named.conf"), "-p", str(port), "-n", "1"]
    log = open(tmp / "named.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    server = BindServer(tmp, port, zone, key_file, proc, log)
    deadline = time.monotonic() + timeout
    q = dns.message.make_query(zone + ".", "SOA")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
            if r.rcode() == dns.rcode.NOERROR and r.answer:
                return server
        except Exception:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"named did not start within {timeout}s: {server.log()[-2000:]}")


@contextmanager
def running(tmp: Path, **kw: str) -> Iterator[BindServer]:
    """A started server, always stopped; under CI a failure to start fails the test, else skips."""
    try:
        server = start(tmp, **kw)  # type: ignore[arg-type]
    except RuntimeError as e:
        if os.environ.get("CI"):
            pytest.fail(f"BIND 9 needed for DNS tests: {e}")
        pytest.skip(f"BIND 9 not available: {e}")
    try:
        yield server
    finally:
        server.stop()
