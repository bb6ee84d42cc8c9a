"""RFC 2136 publishing against a real BIND 9: publish, idempotence, a changed DKIM key, races."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.update
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from reconciler.cli.main import main
from reconciler.dns import reports as dnsreports
from reconciler.dns.check import Server, check, lookup
from reconciler.dns.publish import PublishError, build_update, load_tsig_key, plan, publish
from reconciler.mox import dnsrecords
from reconciler.mox.live import locate, read_live
from tests.bindserver import KEY_SECRET, BindServer, running

pytestmark = pytest.mark.dns

APEX_EXTRA = '@ IN TXT "site-verification=keep-me"\n'


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[BindServer]:
    with running(tmp_path / "bind", extra_zone=APEX_EXTRA) as server:
        yield server


def serial(server: BindServer) -> int:
    q = dns.message.make_query("example.org.", "SOA")
    r = dns.query.udp(q, "127.0.0.1", port=server.port, timeout=2)
    return int(r.answer[0][0].serial)


def report_records(moxconf: Path, dnssec: bool = True) -> list[dnsrecords.Record]:
    live = read_live(locate(str(moxconf)))
    return dnsreports.merge([dnsreports.for_live(live, "example.org", dnssec=dnssec)])


def publish_args(moxconf: Path, server: BindServer, *extra: str) -> list[str]:
    return ["--config", str(moxconf), "records", "--domain", "example.org", "--dnssec",
            "--publish", "rfc2136", "--server", server.address, "--zone", "example.org",
            "--tsig-key-file", str(server.key_file), *extra]


def test_publish_check_republish_and_key_change(
    bind: BindServer, golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    moxconf = golden_config("17")
    srv = Server("127.0.0.1", bind.port)
    before = serial(bind)

    assert main(publish_args(moxconf, bind)) == 0
    out = capsys.readouterr().out
    assert "sent update" in out
    assert serial(bind) == before + 1  # one message for everything

    # Everything generated for the zone is now in DNS, and unrelated data survived.
    assert main(["--config", str(moxconf), "records", "--domain", "example.org", "--dnssec",
                 "--check", "--resolver", bind.address]) == 0
    out = capsys.readouterr().out
    assert "missing" not in out and "different" not in out and "extra" not in out
    assert "present    _dmarc.example.org. TXT" in out
    apex = [rd.to_text() for rd in lookup(srv, "example.org.", "TXT")]
    assert '"site-verification=keep-me"' in apex
    assert any("v=spf1 ip4:198.51.100.7" in t for t in apex)

    # Second publish: nothing to do, nothing sent.
    result = publish(report_records(moxconf), "example.org", srv, load_tsig_key(bind.key_file))
    assert result.changes == () and result.update is None and not result.sent
    assert main(publish_args(moxconf, bind)) == 0
    assert "up to date, nothing sent" in capsys.readouterr().out
    assert serial(bind) == before + 1

    # A new key for selector 2026a: only that RRset changes.
    conf_dir = moxconf.parent
    key = ed25519.Ed25519PrivateKey.generate()
    rel = "dkim/2026a._domainkey.example.org.20270101T000000.ed25519.privatekey.pkcs8.pem"
    (conf_dir / rel).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    domains = conf_dir / "domains.conf"
    text = domains.read_text()
    new_text, n = re.subn(r"dkim/2026a\._domainkey\.example\.org\.[^\n]*", rel, text)
    assert n == 1
    domains.write_text(new_text)

    dry = main(publish_args(moxconf, bind, "--dry-run"))
    out = capsys.readouterr().out
    assert dry == 0 and "would send (dry run)" in out and ";UPDATE" in out
    assert serial(bind) == before + 1  # dry run sent nothing
    assert KEY_SECRET not in out  # the printed update shows the TSIG record, never the key's secret

    recs = report_records(moxconf)
    result = publish(recs, "example.org", srv, load_tsig_key(bind.key_file))
    assert result.sent
    assert [(c.name, c.type, len(c.delete), len(c.add)) for c in result.changes] == [
        ("2026a._domainkey.example.org.", "TXT", 1, 1)]
    assert result.update is not None
    update_names = {rrset.name.to_text() for rrset in result.update.update}
    assert update_names == {"2026a._domainkey.example.org."}
    assert serial(bind) == before + 2
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    import base64

    want = "v=DKIM1;h=sha256;k=ed25519;p=" + base64.b64encode(pub).decode()
    got = [b"".join(rd.strings).decode() for rd in lookup(srv, "2026a._domainkey.example.org.", "TXT")]
    assert got == [want]
    assert all(f.status == "present" for f in check(recs, srv))


def test_concurrent_change_is_not_clobbered(bind: BindServer, golden_config: Callable[[str], Path]) -> None:
    moxconf = golden_config("17")
    srv = Server("127.0.0.1", bind.port)
    key = load_tsig_key(bind.key_file)
    recs = report_records(moxconf)
    publish(recs, "example.org", srv, key)

    # We read the zone (plan) for a change of the DMARC record...
    changed = [r if r.name != "_dmarc.example.org." else
               dnsrecords.Record(r.name, r.type, "v=DMARC1;p=none", r.purpose, r.level) for r in recs]
    changes = plan(changed, "example.org", srv)
    assert [c.name for c in changes] == ["_dmarc.example.org."]
    # ... someone else changes that RRset in between ...
    other = dns.update.UpdateMessage("example.org.", keyring=key, keyname=key.name)
    other.replace("_dmarc", 300, "TXT", '"v=DMARC1;p=quarantine"')
    assert dns.query.tcp(other, "127.0.0.1", port=bind.port, timeout=5).rcode() == dns.rcode.NOERROR
    # ... so our update's prerequisite fails and their change stays.
    resp = dns.query.tcp(build_update("example.org", changes, key), "127.0.0.1", port=bind.port, timeout=5)
    assert resp.rcode() == dns.rcode.NXRRSET
    got = [rd.to_text() for rd in lookup(srv, "_dmarc.example.org.", "TXT")]
    assert got == ['"v=DMARC1;p=quarantine"']


def test_adding_to_absent_rrset_uses_does_not_exist_prerequisite(
    bind: BindServer, golden_config: Callable[[str], Path]
) -> None:
    moxconf = golden_config("17")
    srv = Server("127.0.0.1", bind.port)
    key = load_tsig_key(bind.key_file)
    recs = report_records(moxconf)
    changes = plan(recs, "example.org", srv)
    mx = [c for c in changes if c.type == "MX"]
    assert mx and mx[0].current == ()
    # Someone creates the MX first: our "RRset does not exist" prerequisite fails.
    other = dns.update.UpdateMessage("example.org.", keyring=key, keyname=key.name)
    other.add("@", 300, "MX", "20 other.example.net.")
    dns.query.tcp(other, "127.0.0.1", port=bind.port, timeout=5)
    resp = dns.query.tcp(build_update("example.org", changes, key), "127.0.0.1", port=bind.port, timeout=5)
    assert resp.rcode() == dns.rcode.YXRRSET
    got = [rd.to_text() for rd in lookup(srv, "example.org.", "MX")]
    assert got == ["20 other.example.net."]


def test_wrong_key_is_refused(bind: BindServer, golden_config: Callable[[str], Path], tmp_path: Path) -> None:
    moxconf = golden_config("17")
    bad = tmp_path / "bad.key"
    bad.write_text('key "reconciler-test" { algorithm hmac-sha256; secret "AAAAAAAAAAAAAAAAAAAAAA=="; };\n')
    with pytest.raises(PublishError) as ei:
        publish(report_records(moxconf), "example.org", Server("127.0.0.1", bind.port), load_tsig_key(bad))
    print(ei.value)
    assert "example.org" in str(ei.value)
    assert lookup(Server("127.0.0.1", bind.port), "example.org.", "MX") == []


def test_tsig_key_file_parsing(tmp_path: Path) -> None:
    p = tmp_path / "k.key"
    p.write_text('// made by tsig-keygen\nkey "upd.example." {\n\talgorithm hmac-sha512;\n'
                 '\tsecret "c2VjcmV0c2VjcmV0c2VjcmV0";\n};\n')
    key = load_tsig_key(p)
    assert key.name.to_text() == "upd.example."
    assert key.algorithm == dns.tsig.HMAC_SHA512
    assert key.secret == b"secretsecretsecret"
    p.write_text("secret nope;\n")
    with pytest.raises(PublishError, match=r"k\.key: not a BIND key file"):
        load_tsig_key(p)
    p.write_text('key x { algorithm hmac-foo; secret "AA=="; };')
    with pytest.raises(PublishError, match="unsupported algorithm \\(use one of hmac-md5, "):
        load_tsig_key(p)
    p.write_text('key x { algorithm hmac-sha256; secret "not base64!"; };')
    with pytest.raises(PublishError, match="secret is not base64"):
        load_tsig_key(p)


SECRET_B64 = "c2VjcmV0c2VjcmV0c2VjcmV0"  # "secretsecretsecret"


@pytest.mark.parametrize(("text", "expected"), [
    # a statement that does not parse, named by its keyword, never by what follows it
    (f'key k {{ algorithm hmac-sha256; secret "{SECRET_B64}" }};', "cannot parse the 'secret' statement"),
    (f'key k {{ secret {SECRET_B64} extra; }};', "cannot parse the 'secret' statement"),
    (f'key k {{ algorithm hmac-sha256 secret "{SECRET_B64}"; }};', "cannot parse the 'algorithm' statement"),
    (f'key k {{ {SECRET_B64}; }};', "cannot parse statement 1"),
    (f'key k {{ "{SECRET_B64}"; }};', "cannot parse statement 1"),
    # the secret where the algorithm goes, and a secret that is not base64
    (f'key k {{ algorithm "{SECRET_B64}"; secret hmac-sha256; }};', "unsupported algorithm"),
    (f'key k {{ algorithm hmac-sha256; secret "{SECRET_B64}!"; }};', "secret is not base64"),
    (f'key {{ secret "{SECRET_B64}"; }};', "not a BIND key file"),
])
def test_tsig_key_file_errors_never_echo_the_secret(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "k.key"
    p.write_text(text + "\n")
    with pytest.raises(PublishError) as e:
        load_tsig_key(p)
    assert expected in str(e.value)
    for part in (SECRET_B64[:8], SECRET_B64[-8:], "secretse"):
        assert part not in str(e.value)


def test_tsig_key_file_that_is_not_text_is_one_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "k.key"
    p.write_bytes(b'key k { secret "\xff\xfe\x9c"; };\n')
    with pytest.raises(PublishError, match="not UTF-8 text") as e:
        load_tsig_key(p)
    assert "0xff" not in str(e.value)


def test_publish_cli_needs_all_options(golden_config: Callable[[str], Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("17")
    assert main(["--config", str(moxconf), "records", "--publish", "rfc2136", "--zone", "example.org"]) == 1
    assert "needs --server, --zone and --tsig-key-file" in capsys.readouterr().err
