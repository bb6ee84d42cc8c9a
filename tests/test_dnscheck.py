"""`records --check` and `--dnssec=auto` against a real BIND 9 zone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dns.query
import dns.rcode
import dns.update
import pytest

from reconciler.cli.main import main
from reconciler.dns import reports as dnsreports
from reconciler.dns.check import DNSCheckError, Server, check, dnssec_status, parse_server
from reconciler.dns.publish import load_tsig_key, publish
from reconciler.mox import dnsrecords
from reconciler.mox.live import locate, read_live
from tests.bindserver import BindServer, running

pytestmark = pytest.mark.dns


def _records(moxconf: Path) -> list[dnsrecords.Record]:
    live = read_live(locate(str(moxconf)))
    return dnsreports.merge([dnsreports.for_live(live, "example.org", dnssec=True)])


def _update(server: BindServer, fill: Callable[[dns.update.UpdateMessage], None]) -> None:
    key = load_tsig_key(server.key_file)
    upd = dns.update.UpdateMessage("example.org.", keyring=key, keyname=key.name)
    fill(upd)
    assert dns.query.tcp(upd, "127.0.0.1", port=server.port, timeout=5).rcode() == dns.rcode.NOERROR


def test_check_reports_exactly_the_missing_different_and_extra(
    tmp_path: Path, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    moxconf = golden_config("17")
    recs = _records(moxconf)
    with running(tmp_path / "bind") as bind:
        srv = Server("127.0.0.1", bind.port)
        publish(recs, "example.org", srv, load_tsig_key(bind.key_file))
        assert {f.status for f in check(recs, srv)} == {"present"}

        def damage(u: dns.update.UpdateMessage) -> None:
            u.delete("_dmarc", "TXT")
            u.delete("_imaps._tcp", "SRV")
            u.replace("_mta-sts", 300, "TXT", '"v=STSv1; id=old"')
            u.add("@", 300, "MX", "20 backup.example.net.")
            # the same DKIM text split at 100 bytes, as in mox's zone text: still "present"
            dkim = next(r for r in recs if r.name == "2026a._domainkey.example.org.").value
            u.replace("2026a._domainkey", 300, "TXT",
                      " ".join(f'"{dkim[i:i + 100]}"' for i in range(0, len(dkim), 100)))

        _update(bind, damage)
        findings = check(recs, srv)
        bad = {(f.status, f.name, f.type) for f in findings if f.status != "present"}
        assert bad == {
            ("missing", "_dmarc.example.org.", "TXT"),
            ("missing", "_imaps._tcp.example.org.", "SRV"),
            ("different", "_mta-sts.example.org.", "TXT"),
            ("extra", "example.org.", "MX"),
        }
        diff = next(f for f in findings if f.status == "different")
        assert diff.found == ('"v=STSv1; id=old"',)

        argv = ["--config", str(moxconf), "records", "--domain", "example.org", "--dnssec",
                "--check", "--resolver", bind.address]
        assert main(argv) == 2  # DMARC is required
        out = capsys.readouterr().out
        assert "missing    _dmarc.example.org. TXT" in out
        assert "extra      example.org. MX 20 backup.example.net." in out

        # Only recommended records missing: exit 0.
        _update(bind, lambda u: u.add("_dmarc", 300, "TXT",
                                      next(r for r in recs if r.name.startswith("_dmarc")).presentation()))
        assert main(argv) == 0
        assert "missing    _imaps._tcp.example.org. SRV" in capsys.readouterr().out


def test_dnssec_auto_reads_the_ad_bit(tmp_path: Path, golden_config: Callable[[str], Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("17")
    with running(tmp_path / "bind") as bind:
        srv = Server("127.0.0.1", bind.port)
        assert dnssec_status(srv, "example.org") is False  # unsigned zone, no AD
        assert dnssec_status(srv, "nonexistent.example.org") is False  # NXDOMAIN is fine
        assert main(["--config", str(moxconf), "records", "--domain", "example.org", "--dnssec=auto",
                     "--resolver", bind.address]) == 0
        out = capsys.readouterr().out
        assert ";; _25._tcp.mail.example.org." in out  # TLSA commented out: not DNSSEC-signed


def test_parse_server() -> None:
    assert parse_server("127.0.0.1") == Server("127.0.0.1", 53)
    assert parse_server("127.0.0.1:5353") == Server("127.0.0.1", 5353)
    assert parse_server("[::1]:5353") == Server("::1", 5353)
    assert parse_server("::1") == Server("::1", 53)
    with pytest.raises(DNSCheckError, match="not an IP address"):
        parse_server("ns.example:53")
    with pytest.raises(DNSCheckError, match="port must be"):
        parse_server("127.0.0.1:99999")


def test_unreachable_resolver_is_one_clear_error(golden_config: Callable[[str], Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from tests.bindserver import free_port

    moxconf = golden_config("17")
    port = free_port()  # nobody listens here
    rc = main(["--config", str(moxconf), "records", "--domain", "example.org", "--check",
               "--resolver", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: querying ") and f"127.0.0.1:{port}" in err
