"""A DKIM selector in Unicode (`ünï`), which mox accepts: records, `--check`, `--publish`, apply.

mox prints such a record as `ünï._domainkey.example.org.   TXT ...` (the selector as configured);
its owner in DNS is the selector's A-label followed by `_domainkey` and the domain, built label by
label (`_domainkey` is no host name: IDNA would refuse its underscore). An apply that adds such a
selector computes the records before writing domains.conf, so it cannot write and then fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from reconciler.cli.main import main
from reconciler.desired.importer import import_live
from reconciler.dns import reports as dnsreports
from reconciler.dns.check import Server, check
from reconciler.dns.publish import load_tsig_key, publish
from reconciler.mox import dnsrecords, names
from reconciler.mox.errors import RecordsError
from reconciler.mox.live import locate, read_live
from tests.bindserver import running

SELECTOR = "ünï"
OWNER = "xn--n-nga1b._domainkey.example.org."


def _add_unicode_selector(moxconf: Path) -> None:
    """Give example.org of a golden config a selector `ünï` with an Ed25519 key (as DKIMAdd would)."""
    conf_dir = moxconf.parent
    rel = "dkim/xn--n-nga1b._domainkey.example.org.20270101T000000.ed25519.privatekey.pkcs8.pem"
    key = ed25519.Ed25519PrivateKey.generate()
    (conf_dir / rel).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    domains = conf_dir / "domains.conf"
    entry = (f"\t\t\t\t{SELECTOR}:\n\t\t\t\t\tHash: sha256\n\t\t\t\t\tExpiration: 72h\n"
             f"\t\t\t\t\tPrivateKeyFile: {rel}\n")
    domains.write_text(_insert_selector(domains.read_text(), entry))


def _insert_selector(text: str, entry: str) -> str:
    """Insert `entry` as the last selector of example.org (selectors end where `Sign:` starts)."""
    i = text.index("\t\t\tSign:\n")
    return text[:i] + entry + text[i:]


def test_owner_is_built_label_by_label() -> None:
    d = names.parse_domain("café.example")
    assert dnsrecords.dkim_owner(SELECTOR, d) == "xn--n-nga1b._domainkey.xn--caf-dma.example."
    assert dnsrecords.dkim_owner("2026a", d) == "2026a._domainkey.xn--caf-dma.example."


def test_records_print_the_selector_as_mox_does(golden_config: Callable[[str], Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("34")
    _add_unicode_selector(moxconf)
    assert main(["--config", str(moxconf), "config", "test"]) == 0
    capsys.readouterr()
    assert main(["--config", str(moxconf), "records", "--domain", "example.org"]) == 0
    out = capsys.readouterr().out
    assert f"\n{SELECTOR}._domainkey.example.org.   TXT \"v=DKIM1;h=sha256;k=ed25519;p=" in out
    assert main(["--config", str(moxconf), "records", "--domain", "example.org", "--format", "zone"]) == 0
    zone = capsys.readouterr().out
    assert f"\n{OWNER} 300 IN TXT " in zone
    report = dnsreports.for_live(read_live(locate(str(moxconf))), "example.org")
    assert [r.name for r in report.records if "_domainkey" in r.name] == [
        "202611e._domainkey.example.org.", "2026a._domainkey.example.org.", OWNER]


@pytest.mark.dns
def test_check_and_publish_a_unicode_selector(golden_config: Callable[[str], Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("34")
    _add_unicode_selector(moxconf)
    with running(tmp_path / "bind") as bind:
        argv = ["--config", str(moxconf), "records", "--domain", "example.org", "--dnssec"]
        assert main([*argv, "--publish", "rfc2136", "--server", bind.address, "--zone", "example.org",
                     "--tsig-key-file", str(bind.key_file)]) == 0
        assert "sent update" in capsys.readouterr().out
        assert main([*argv, "--check", "--resolver", bind.address]) == 0
        out = capsys.readouterr().out
        assert f"present    {OWNER} TXT" in out
        srv = Server("127.0.0.1", bind.port)
        recs = dnsreports.merge([dnsreports.for_live(read_live(locate(str(moxconf))), "example.org",
                                                     dnssec=True)])
        assert {f.status for f in check(recs, srv) if f.name == OWNER} == {"present"}
        again = publish(recs, "example.org", srv, load_tsig_key(bind.key_file))
        assert again.changes == ()


def _desired_with_selector(moxconf: Path, tmp_path: Path) -> Path:
    live = read_live(locate(str(moxconf)))
    doc: dict[str, Any] = import_live(live.static, live.dynamic)
    doc["Domains"]["example.org"]["DKIM"]["Selectors"][SELECTOR] = {"Algorithm": "ed25519"}
    src = tmp_path / "desired"
    src.mkdir()
    (src / "desired.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return src


def test_apply_adding_a_unicode_selector_exits_0(golden_config: Callable[[str], Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("34")
    src = _desired_with_selector(moxconf, tmp_path)
    out_dir = tmp_path / "records"
    assert main(["--config", str(moxconf), "apply", str(src), "--yes", "--reports-dir", str(out_dir)]) == 0
    capsys.readouterr()
    live = read_live(locate(str(moxconf)))
    assert SELECTOR in live.dynamic.Domains["example.org"].DKIM.Selectors
    assert f"\n{SELECTOR}._domainkey.example.org.   TXT " in (out_dir / "example.org.txt").read_text()
    assert f"\n{OWNER} 300 IN TXT " in (out_dir / "example.org.zone").read_text()
    assert main(["--config", str(moxconf), "records", "--domain", "example.org"]) == 0
    assert main(["--config", str(moxconf), "plan", str(src), "--detailed-exitcode"]) == 0


def test_apply_whose_records_fail_writes_nothing(golden_config: Callable[[str], Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Records are made before the write: when they cannot be made (here: a failure injected into
    the generator), the apply stops with domains.conf and the key files as they were."""
    moxconf = golden_config("34")
    src = _desired_with_selector(moxconf, tmp_path)
    conf_dir = moxconf.parent
    before = hashlib.sha256((conf_dir / "domains.conf").read_bytes()).hexdigest()
    keys_before = sorted(p.name for p in (conf_dir / "dkim").iterdir())
    seen: list[list[str]] = []

    def failing_generate(inp: dnsrecords.Inputs) -> dnsrecords.Report:
        seen.append(sorted(inp.config.DKIM.Selectors))
        raise RecordsError("injected: records cannot be made")

    monkeypatch.setattr(dnsreports, "generate", failing_generate)
    rc = main(["--config", str(moxconf), "apply", str(src), "--yes", "--reports-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "injected: records cannot be made" in err and "Traceback" not in err
    assert seen == [["202611e", "2026a", SELECTOR]]  # the records of the config about to be written
    assert hashlib.sha256((conf_dir / "domains.conf").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in (conf_dir / "dkim").iterdir()) == keys_before
    assert not (tmp_path / "r").exists()
