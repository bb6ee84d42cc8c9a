"""DKIM rotation end to end: the watcher's run (`watch --once --now TIME`) stepped through the
calendar against a real BIND 9 on loopback (checked through it, published to it with RFC 2136 +
TSIG), on a golden mox config made by mox's DomainAdd. After every step the real mox accepts
domains.conf (`mox config test`) and every selector in Sign is served by BIND with its key; the
watcher's `--notify` webhook gets a `rotation` event for every stage change. One BIND serves the
module: each test starts from the zone with only mox's suggested records (`Mail`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import socket
import stat
import string
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.update
import pytest
import yaml

from reconciler.cli.main import main
from reconciler.desired.importer import import_files
from reconciler.dns.check import Server, lookup
from reconciler.dns.publish import load_tsig_key
from reconciler.dns.rotation import selector_records
from reconciler.mox.keygen import parse_key_name
from reconciler.mox.live import locate, read_live
from tests import moxserver
from tests.asuser import MOX_UID, run_as
from tests.bindserver import BindServer, running
from tests.golden import build_step_config, golden_step
from tests.httpcapture import Capture, capture_server

pytestmark = [pytest.mark.dns, pytest.mark.slow]

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
POLICY = {"Every": "720h", "PublishWait": "48h", "RetireAfter": "168h"}


class Mail:
    """A mox config dir (golden step 01: example.org by DomainAdd, keys 2026a/2026b, Sign 2026a),
    its desired state with a rotation policy, and BIND serving the zone example.org."""

    def __init__(self, tmp: Path, bind: BindServer, mox_conf: Path | None = None) -> None:
        self.mox_conf = mox_conf or build_step_config(golden_step("01"), tmp / "mox")
        self.config_dir = self.mox_conf.parent
        self.bind = bind
        self.server = Server("127.0.0.1", bind.port)
        self.notify: str | None = None  # a webhook URL for the watcher's --notify
        self.desired = tmp / "desired"
        self.desired.mkdir()
        live = self.live()
        for name, text in import_files(live.static, live.dynamic).items():
            doc = yaml.safe_load(text)
            if "example.org" in doc.get("Domains", {}):
                doc["Domains"]["example.org"]["DKIM"] = {"Rotation": POLICY}
            (self.desired / name).write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        made = parse_key_name(live.dynamic.Domains["example.org"].DKIM.Selectors["2026a"].PrivateKeyFile)
        assert made is not None
        self.made = made.created
        self.clear_selectors()  # what an earlier test of the module published
        # The zone as the operator had it: every record mox suggests, 2026a and 2026b included.
        assert main(["--config", str(self.mox_conf), "records", "--domain", "example.org", "--publish", "rfc2136",
                     *self.dns_args()[2:]]) == 0

    def live(self) -> Any:
        return read_live(locate(str(self.mox_conf)))

    def dns_args(self) -> list[str]:
        return ["--resolver", self.bind.address, "--server", self.bind.address, "--zone", "example.org",
                "--tsig-key-file", str(self.bind.key_file)]

    def run(self, at: datetime, *, publish: bool = True, vanished: str = "") -> dict[str, Any]:
        """One watcher run at `at`; then mox accepts the config and BIND serves what Sign names
        (but the `vanished` selector someone deleted from the zone)."""
        args = ["--publish", "rfc2136", *self.dns_args()] if publish else ["--resolver", self.bind.address]
        if self.notify is not None:
            args += ["--notify", self.notify]
        assert main(["--config", str(self.mox_conf), "watch", str(self.desired), "--once",
                     "--now", at.isoformat(), *args]) == 0
        verdict = moxserver.config_test(self.mox_conf)
        assert verdict.ok, verdict.output
        live = self.live()
        conf = live.dynamic.Domains["example.org"]
        for sel, rec in selector_records(live, "example.org", conf.DKIM.Sign).items():
            if sel != vanished:
                assert self.served(sel) == [rec.value], f"Sign names {sel}, BIND does not serve its key"
        status: dict[str, Any] = json.loads((self.config_dir / "mox-reconciler.status.json").read_text())
        assert status["result"] in ("applied", "unchanged"), status
        return dict(status["dkim_rotation"]["example.org"])

    def served(self, selector: str) -> list[str]:
        """The DKIM values BIND serves for `selector`."""
        found = lookup(self.server, f"{selector}._domainkey.example.org.", "TXT")
        return [b"".join(rd.strings).decode() for rd in found]  # type: ignore[attr-defined]

    def dkim(self) -> Any:
        return self.live().dynamic.Domains["example.org"].DKIM

    def delete_record(self, *selectors: str) -> None:
        """Someone removes selectors' records from the zone."""
        key = load_tsig_key(self.bind.key_file)
        upd = dns.update.UpdateMessage("example.org.", keyring=key, keyname=key.name, keyalgorithm=key.algorithm)
        for selector in selectors:
            upd.delete(f"{selector}._domainkey.example.org.", "TXT")
        assert dns.query.tcp(upd, "127.0.0.1", port=self.bind.port, timeout=5).rcode() == dns.rcode.NOERROR

    def clear_selectors(self) -> None:
        """The zone without the DKIM records of selectors the rotation makes (<year>c and on, in
        the years the tests step through), which an earlier test may have published."""
        years = (self.made.year, self.made.year + 1)
        self.delete_record(*(f"{y}{c}" for y in years for c in string.ascii_lowercase[2:]))
        assert self.served(f"{self.made.year}c") == []


@contextlib.contextmanager
def failing_resolver() -> Iterator[str]:
    """A resolver on loopback that answers every query with SERVFAIL: a DNS check that fails."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            reply = dns.message.make_response(dns.message.from_wire(data))
            reply.set_rcode(dns.rcode.SERVFAIL)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        sock.close()


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindServer]:
    with running(tmp_path_factory.mktemp("bind")) as server:
        yield server


@pytest.fixture
def mail(tmp_path: Path, bind: BindServer) -> Mail:
    moxserver.mox_bin()  # skips (or fails under CI) without mox v0.0.17: every step asks it
    return Mail(tmp_path, bind)


def rotation_events(cap: Capture) -> list[tuple[str | None, str, str]]:
    """The `rotation` notifications received: (stage before, stage after, selector)."""
    bodies = [json.loads(r.body) for r in cap.requests]
    return [(b["details"]["before"], b["details"]["stage"], b["details"]["selector"])
            for b in bodies if b["type"] == "rotation"]


def test_rotation_prepare_publish_switch_retire(mail: Mail, capsys: pytest.CaptureFixture[str]) -> None:
    with capture_server() as cap:
        mail.notify = cap.url
        rotate_through_the_calendar(mail, capsys)
    # Every stage change reached the watcher's webhook, in order, once each (repeated runs in
    # one stage notify nothing).
    assert rotation_events(cap) == [
        (None, "retire", "2026a"), ("retire", "signing", "2026a"), ("signing", "prepare", "2026c"),
        ("prepare", "publish", "2026c"), ("publish", "switch", "2026c"), ("switch", "retire", "2026c"),
        ("retire", "signing", "2026c")]
    events = [json.loads(r.body) for r in cap.requests]
    switch = next(e for e in events if e["type"] == "rotation" and e["details"]["stage"] == "switch")
    assert switch["summary"].startswith("DKIM rotation of example.org: publish -> switch: switch: sign with 2026c")
    assert (switch["details"]["signing"], switch["details"]["retiring"]) == ("2026c", ["2026a"])


def rotate_through_the_calendar(mail: Mail, capsys: pytest.CaptureFixture[str]) -> None:
    t = mail.made + DAY
    st = mail.run(t)
    assert (st["stage"], st["signing"], st["retiring"]) == ("retire", "2026a", ["2026b"])  # DomainAdd's spare
    st = mail.run(t + 7 * DAY)
    assert st["actions"][0].startswith("retire: remove selector 2026b")
    assert mail.served("2026b") == [] and "2026b" not in mail.dkim().Selectors
    assert list((mail.config_dir / "dkim" / "old").glob("2026b._domainkey.example.org.*"))

    # prepare: 2026a is 30 days old; 2026c is added (not signing) and published in the same run
    t = mail.made + 30 * DAY
    assert mail.run(t - HOUR)["stage"] == "signing"
    st = mail.run(t)
    assert (st["stage"], st["next"]) == ("prepare", "2026c") and mail.dkim().Sign == ("2026a",)
    assert len(mail.served("2026c")) == 1

    # publish -> switch only once BIND has shown the record for PublishWait (first seen at t + 6h)
    for h in (6, 18, 30, 42, 53):
        st = mail.run(t + h * HOUR)
        assert st["stage"] == "publish" and mail.dkim().Sign == ("2026a",)
        if h == 6:  # planning ahead: what happens once the wait is over (nothing is written)
            assert main(["--config", str(mail.mox_conf), "plan", str(mail.desired), "--format", "json",
                         "--resolver", mail.bind.address, "--now", (t + 60 * HOUR).isoformat()]) == 0
            (ahead,) = json.loads(capsys.readouterr().out)["dkim_rotation"]
            assert ahead["stage"] == "switch" and mail.dkim().Sign == ("2026a",)
    assert st["pending"][0]["earliest"] == (t + 54 * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The wait is over, but the DNS check fails: no switch.
    with failing_resolver() as resolver:
        args = ["--config", str(mail.mox_conf), "watch", str(mail.desired), "--once", "--now",
                (t + 54 * HOUR).isoformat(), "--resolver", resolver]
        assert main(args) == 0
    st = json.loads((mail.config_dir / "mox-reconciler.status.json").read_text())["dkim_rotation"]["example.org"]
    assert st["stage"] == "publish" and mail.dkim().Sign == ("2026a",)
    assert "the DNS check of 2026c._domainkey.example.org failed" in st["pending"][0]["waiting_for"]
    assert "SERVFAIL" in st["pending"][0]["waiting_for"]
    st = mail.run(t + 54 * HOUR + 60 * SECOND)
    assert st["stage"] == "switch" and mail.dkim().Sign == ("2026c",)
    switched = t + 54 * HOUR + 60 * SECOND

    # retire 2026a RetireAfter after the switch: key to dkim/old/, record deleted from BIND
    st = mail.run(switched + 7 * DAY - HOUR)
    assert st["stage"] == "retire" and "2026a" in mail.dkim().Selectors and mail.served("2026a")
    st = mail.run(switched + 7 * DAY)
    assert st["actions"][0].startswith("retire: remove selector 2026a")
    assert list(mail.dkim().Selectors) == ["2026c"] and mail.served("2026a") == []
    assert list((mail.config_dir / "dkim" / "old").glob("2026a._domainkey.example.org.*"))
    st = mail.run(switched + 7 * DAY + HOUR)
    assert st["stage"] == "signing" and st["pending"][0]["step"] == "prepare"


def test_a_missing_record_waits_and_a_vanished_one_blocks_retirement(
        mail: Mail, capsys: pytest.CaptureFixture[str]) -> None:
    t = mail.made + 30 * DAY
    mail.run(t, publish=False)
    assert mail.dkim().Sign == ("2026a",) and "2026c" in mail.dkim().Selectors
    # Nobody publishes 2026c: long past PublishWait, no switch, and the status says why.
    for d in (1, 2, 3, 4):
        st = mail.run(t + d * DAY, publish=False)
        assert st["stage"] == "publish" and mail.dkim().Sign == ("2026a",)
    assert "2026c._domainkey.example.org TXT is not in DNS" in st["pending"][0]["waiting_for"]
    assert any("2026c._domainkey.example.org. 300 IN TXT" in r for r in st["publish"])
    assert st["published_by"] is None

    # The operator publishes it by hand, from the report; the watcher carries on by itself.
    assert main(["--config", str(mail.mox_conf), "records", "--domain", "example.org", "--publish", "rfc2136",
                 *mail.dns_args()[2:]]) == 0
    seen = t + 4 * DAY + HOUR
    for h in (0, 12, 24, 36):
        assert mail.run(seen + h * HOUR, publish=False)["stage"] == "publish"
    assert mail.run(seen + 48 * HOUR, publish=False)["stage"] == "switch"
    assert mail.dkim().Sign == ("2026c",)

    # The signing record disappears: loud, and 2026a is kept long past RetireAfter.
    mail.delete_record("2026c")
    capsys.readouterr()
    st = mail.run(seen + 20 * DAY, publish=False, vanished="2026c")
    assert st["stage"] == "blocked" and "2026a" in mail.dkim().Selectors
    assert st["problems"] == ["selector 2026c signs, but 2026c._domainkey.example.org TXT is not in DNS: "
                              "verifiers cannot check its signatures; retiring 2026a, 2026b is blocked until the "
                              "record is back"]
    assert "ERROR DKIM rotation of example.org: selector 2026c signs, but" in capsys.readouterr().err
    # Back in DNS: retirement goes ahead.
    assert main(["--config", str(mail.mox_conf), "records", "--domain", "example.org", "--publish", "rfc2136",
                 *mail.dns_args()[2:]]) == 0
    st = mail.run(seen + 21 * DAY, publish=False)
    assert st["stage"] == "retire" and sorted(mail.dkim().Selectors) == ["2026c"]
    assert st["unpublish"] == ["2026a._domainkey.example.org. TXT v=DKIM1", "2026b._domainkey.example.org. TXT v=DKIM1"]


def test_a_rotation_step_as_mox_user(bind: BindServer) -> None:
    """The watcher runs as mox's user: the new key, the memory and domains.conf stay mox's."""
    instance = moxserver.build_instance("01")  # where uid 1000 can reach it
    try:
        mail = Mail(instance.root, bind, instance.mox_conf)
        key_file = instance.root / "update.key"
        shutil.copyfile(bind.key_file, key_file)
        for p in [instance.root, *instance.root.rglob("*")]:
            os.chown(p, MOX_UID, MOX_UID)
        at = (mail.made + 30 * DAY).isoformat()
        common = ["--now", at, "--resolver", bind.address, "--publish", "rfc2136", "--server", bind.address,
                  "--tsig-key-file", str(key_file)]
        # A plan first, as root: the child (uid 1000) cannot import from this root-only virtualenv;
        # nor can it import the thread pool the new key is made in (the standard library's, also
        # under /root), which concurrent.futures imports on first use.
        assert main(["--config", str(mail.mox_conf), "plan", str(mail.desired), *common]) == 0
        assert concurrent.futures.ThreadPoolExecutor is not None
        apply = ["--config", str(mail.mox_conf), "apply", str(mail.desired), "--yes", *common]
        assert run_as(MOX_UID, lambda: main(apply)) == 0
        assert "2026c" in mail.dkim().Selectors and len(mail.served("2026c")) == 1
        (new,) = (mail.config_dir / "dkim").glob("2026c._domainkey.example.org.*")
        for path in (new, mail.config_dir / "mox-reconciler.dkim-rotation.json", mail.config_dir / "domains.conf"):
            assert (path.stat().st_uid, path.stat().st_gid) == (MOX_UID, MOX_UID), path
        assert stat.S_IMODE(new.stat().st_mode) == 0o640
        assert moxserver.config_test(mail.mox_conf).ok
    finally:
        instance.remove()
