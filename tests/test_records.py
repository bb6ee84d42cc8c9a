"""DNS records: byte-exact against mox v0.0.17 for every golden step, and the other formats."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from reconciler.cli.main import main
from reconciler.dns import formats
from reconciler.dns import reports as dnsreports
from reconciler.mox import config as mc
from reconciler.mox import dnsrecords
from reconciler.mox.errors import RecordsError
from reconciler.mox.live import locate, read_live
from tests.conftest import GOLDEN_STEPS, build_step_config

CASES = [
    (step, f)
    for step in GOLDEN_STEPS
    for f in sorted((step / "dnsrecords").glob("*.txt"))
]


def _domain_of(f: Path) -> tuple[str, bool]:
    if f.name.endswith(".dnssec.txt"):
        return f.name[: -len(".dnssec.txt")], True
    return f.name[: -len(".txt")], False


def test_every_golden_dnsrecords_file_is_covered() -> None:
    assert len(CASES) >= 100  # 35 steps, 1-4 domains each, plus .dnssec variants


@pytest.mark.parametrize("step", GOLDEN_STEPS, ids=lambda p: p.name)
def test_golden_byte_exact_all_domains(step: Path, tmp_path: Path) -> None:
    moxconf = build_step_config(step, tmp_path)
    live = read_live(locate(str(moxconf)))
    files = sorted((step / "dnsrecords").glob("*.txt"))
    assert files
    for f in files:
        domain, dnssec = _domain_of(f)
        rep = dnsreports.for_live(live, domain, dnssec=dnssec)
        assert rep.text() == f.read_text(encoding="utf-8"), f"{step.name}/{f.name}"


@pytest.mark.parametrize("prefix", ["02", "17", "34"])
def test_golden_through_cli(prefix: str, golden_config: Callable[[str], Path],
                            capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config(prefix)
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith(prefix)]
    for f in sorted((step / "dnsrecords").glob("*.txt")):
        domain, dnssec = _domain_of(f)
        # the Unicode spelling of an IDN must work as well as the A-label
        arg = "café.example" if domain == "xn--caf-dma.example" else domain
        argv = ["--config", str(moxconf), "records", "--domain", arg, "--format", "mox"]
        assert main([*argv, "--dnssec"] if dnssec else argv) == 0
        assert capsys.readouterr().out == f.read_text(encoding="utf-8"), f.name


def test_unknown_domain_is_one_clear_error(golden_config: Callable[[str], Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("34")
    assert main(["--config", str(moxconf), "records", "--domain", "café.example"]) == 1
    err = capsys.readouterr().err
    assert err == "error: unknown domain 'café.example' (not in domains.conf)\n"


def test_missing_dkim_key_file_names_the_file(golden_config: Callable[[str], Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("34")
    for p in (moxconf.parent / "dkim").glob("2026a._domainkey.example.org.*"):
        p.unlink()
    assert main(["--config", str(moxconf), "records", "--domain", "example.org"]) == 1
    err = capsys.readouterr().err
    assert "DKIM selector '2026a'" in err and "2026a._domainkey.example.org" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# Structured records and the other formats


@pytest.fixture
def step17(tmp_path: Path) -> list[dnsrecords.Report]:
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("17")]
    live = read_live(locate(str(build_step_config(step, tmp_path))))
    return [dnsreports.for_live(live, d, dnssec=True) for d in sorted(live.dynamic.Domains)]


def test_structured_records_parse_and_split_long_txt(step17: list[dnsrecords.Report]) -> None:
    rep = next(r for r in step17 if r.domain.ascii == "example.org")
    kinds = [(r.name, r.type) for r in rep.records]
    assert ("example.org.", "MX") in kinds and ("_dmarc.example.org.", "TXT") in kinds
    dkim = next(r for r in rep.records if r.name == "2026a._domainkey.example.org.")
    assert dkim.level == "required" and len(dkim.value) > 255
    strings = dkim.rdata().strings  # type: ignore[attr-defined]
    assert [len(s) for s in strings[:-1]] == [255] * (len(strings) - 1) and len(strings) >= 2
    assert b"".join(strings).decode() == dkim.value
    tlsa = [r for r in rep.records if r.type == "TLSA"]
    assert len(tlsa) == 2 and all(r.publish for r in tlsa)  # --dnssec
    for r in rep.records:
        r.rdata()  # every record is valid DNS


def test_tlsa_not_published_without_dnssec(tmp_path: Path) -> None:
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("17")]
    live = read_live(locate(str(build_step_config(step, tmp_path))))
    rep = dnsreports.for_live(live, "example.org", dnssec=False)
    tlsa = [r for r in rep.records if r.type == "TLSA"]
    assert tlsa and not any(r.publish for r in tlsa)
    assert all(r.type != "TLSA" for r in dnsreports.merge([rep]))


def test_zone_format_loads_with_dnspython(step17: list[dnsrecords.Report]) -> None:
    for rep in step17:
        text = formats.render_zone([rep])
        origin = dns.name.from_text(rep.domain.ascii + ".")
        zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        want = {
            (r.name, r.type, r.rdata().to_text()) for r in rep.records
            if r.publish and formats.in_zone(r.name, rep.domain.ascii)
        }
        got = {
            (name.to_text(), dns.rdatatype.to_text(rds.rdtype), rd.to_text())
            for name, rds in zone.iterate_rdatasets() for rd in rds
        }
        assert got == want


def _octodns_from_json(doc: dict[str, object], zone: str, host_is_hosted: bool) -> dict[str, dict[str, list[object]]]:
    """What the octoDNS file must contain, computed independently from the JSON output (and
    whether the mail host's name is a hosted domain: its SPF is then that domain's)."""
    out: dict[str, dict[str, list[object]]] = {}
    for dom in doc["domains"]:  # type: ignore[attr-defined]
        for r in dom["records"]:
            if not r["publish"] or r["placeholder"] or not formats.in_zone(r["name"], zone):
                continue
            rel = r["name"][: -len(zone) - 2] if r["name"] != zone + "." else ""
            parts = r["rdata"].split()
            t = r["type"]
            v: object
            if t == "TXT":
                v = r["value"].replace(";", "\\;")
                if r["value"] == dnsreports.HOST_SPF and host_is_hosted:  # the host's name is a hosted domain: its SPF
                    v = next(x["value"] for x in dom["records"] if x["name"] == zone + "." and x["type"] == "TXT"
                             and x["value"].startswith("v=spf1")).replace(";", "\\;")
            elif t == "MX":
                v = {"preference": int(parts[0]), "exchange": parts[1]}
            elif t == "SRV":
                v = {"priority": int(parts[0]), "weight": int(parts[1]), "port": int(parts[2]),
                     "target": parts[3]}
            elif t == "TLSA":
                v = {"certificate_usage": int(parts[0]), "selector": int(parts[1]),
                     "matching_type": int(parts[2]), "certificate_association_data": parts[3]}
            else:
                v = r["value"]
            vals = out.setdefault(rel, {}).setdefault(t, [])
            if v not in vals:
                vals.append(v)
    return out


def test_octodns_matches_json(step17: list[dnsrecords.Report]) -> None:
    for rep in step17:
        zone = rep.domain.ascii
        doc = json.loads(formats.render_json([rep]))
        data = yaml.safe_load(formats.render_octodns([rep]))
        got: dict[str, dict[str, list[object]]] = {}
        for rel, entry in data.items():
            for e in entry if isinstance(entry, list) else [entry]:
                assert e["ttl"] == 300
                vals = e["values"] if "values" in e else [e["value"]]
                got.setdefault(rel, {})[e["type"]] = vals
        assert got == _octodns_from_json(doc, zone, rep.host_is_hosted)


def test_octodns_yamlprovider_accepts_it(step17: list[dnsrecords.Report], tmp_path: Path) -> None:
    pytest.importorskip("octodns")
    from octodns.provider.yaml import YamlProvider
    from octodns.zone import Zone

    rep = next(r for r in step17 if r.domain.ascii == "example.org")
    (tmp_path / "example.org.yaml").write_text(formats.render_octodns([rep]))
    zone = Zone("example.org.", [])
    YamlProvider("in", str(tmp_path), escaped_semicolons=True).populate(zone)
    got = {(r.name, r._type) for r in zone.records}
    assert ("", "MX") in got and ("_dmarc", "TXT") in got and ("2026a._domainkey", "TXT") in got
    assert ("_25._tcp.mail", "TLSA") in got
    dkim = next(r for r in zone.records if r.name == "2026a._domainkey")
    assert "".join(dkim.values[0].replace("\\;", ";").split('" "')) == next(
        x.value for x in rep.records if x.name == "2026a._domainkey.example.org.")


def test_json_is_versioned_and_complete(step17: list[dnsrecords.Report]) -> None:
    doc = json.loads(formats.render_json(step17))
    assert doc["format"] == "mox-reconciler/dns-records" and doc["version"] == 1
    assert [d["domain"] for d in doc["domains"]] == [r.domain.ascii for r in step17]
    cafe = next(d for d in doc["domains"] if d["domain"] == "xn--caf-dma.example")
    assert cafe["domain_unicode"] == "café.example"
    keys = {"name", "type", "ttl", "value", "rdata", "purpose", "level", "publish", "placeholder"}
    assert all(set(r) == keys for r in cafe["records"])
    assert {r["level"] for r in cafe["records"]} == {"required", "recommended", "optional"}


def test_markdown_lists_every_record(step17: list[dnsrecords.Report]) -> None:
    rep = step17[0]
    md = formats.render_markdown([rep])
    assert md.startswith(f"### DNS records for `{rep.domain.name()}`")
    assert md.count("\n| ") == len(rep.records) + 1  # header row + one row per record


def test_out_dir_and_write_reports(golden_config: Callable[[str], Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("17")
    out = tmp_path / "out"
    assert main(["--config", str(moxconf), "records", "--format", "json", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["example.net.json", "example.org.json", "mail.example.org.json",
                     "xn--caf-dma.example.json"]
    live = read_live(locate(str(moxconf)))
    arts = tmp_path / "artifacts"
    written = formats.write_reports(live, ["example.org", "café.example"], arts, ["mox", "markdown"])
    assert sorted(p.name for p in written) == ["example.org.md", "example.org.txt",
                                               "xn--caf-dma.example.md", "xn--caf-dma.example.txt"]
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("17")]
    assert (arts / "example.org.txt").read_text() == (step / "dnsrecords/example.org.txt").read_text()


# ---------------------------------------------------------------------------------------------
# Records for a planned domain, host keys, CAA


def test_records_for_plan_marks_unknown_dkim_keys(tmp_path: Path) -> None:
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("17")]
    live = read_live(locate(str(build_step_config(step, tmp_path))))
    conf = live.dynamic.Domains["example.org"]
    new = dnsreports.records_for_plan("new.example", conf, live.static, paths=live.paths)
    dkim = [r for r in new.records if "._domainkey." in r.name]
    assert [r.name for r in dkim] == ["202611e._domainkey.new.example.", "2026a._domainkey.new.example."]
    assert all(r.placeholder and "generated at apply" in r.value for r in dkim)
    assert 'TXT "v=DKIM1;h=sha256;p=(generated at apply)"' in new.text()
    assert "generated at apply" in formats.render_markdown([new])
    assert not any("._domainkey." in r.name for r in dnsreports.merge([new]))
    zone = formats.render_zone([new])
    assert all(line.startswith(";") for line in zone.splitlines() if "_domainkey" in line)
    # With the keys known, a planned domain's records are what mox prints once it exists.
    keys = dnsreports.load_dkim_keys(live.paths, conf)
    same = dnsreports.records_for_plan("example.org", conf, live.static, paths=live.paths, dkim=keys,
                                    domains=live.dynamic.Domains)
    assert same.text() == (step / "dnsrecords/example.org.txt").read_text()


def _write_key(path: Path, key: object, fmt: serialization.PrivateFormat) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt,  # type: ignore[attr-defined]
                                       serialization.NoEncryption()))


def test_host_keys_formats_filter_and_order(tmp_path: Path) -> None:
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("17")]
    moxconf = build_step_config(step, tmp_path)
    hk_dir = moxconf.parent / "hostkeys"
    rsa2048 = rsa.generate_private_key(65537, 2048)
    rsa1024 = rsa.generate_private_key(65537, 1024)
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    edkey = ed25519.Ed25519PrivateKey.generate()
    _write_key(hk_dir / "a.pem", rsa2048, serialization.PrivateFormat.TraditionalOpenSSL)  # PKCS#1
    _write_key(hk_dir / "b.pem", rsa1024, serialization.PrivateFormat.PKCS8)
    _write_key(hk_dir / "c.pem", p256, serialization.PrivateFormat.TraditionalOpenSSL)  # SEC1
    _write_key(hk_dir / "d.pem", p384, serialization.PrivateFormat.PKCS8)
    _write_key(hk_dir / "e.pem", edkey, serialization.PrivateFormat.PKCS8)
    live = read_live(locate(str(moxconf)))
    public = live.static.Listeners["public"]
    assert public.TLS is not None
    tls = dataclasses.replace(public.TLS, HostPrivateKeyFiles=tuple(f"hostkeys/{c}.pem" for c in "abcde"))
    static = dataclasses.replace(live.static, Listeners={
        **live.static.Listeners, "public": dataclasses.replace(public, TLS=tls)})
    hk = dnsreports.load_host_keys(live.paths, static)
    assert len(hk.ecdsa_p256) == 1 and len(hk.rsa2048) == 1 and len(hk.ignored) == 3
    rep = dnsrecords.generate(dnsrecords.Inputs(
        dnsreports.find_domain(live.dynamic, "example.org")[0], live.dynamic.Domains["example.org"], static,
        dnsreports.load_dkim_keys(live.paths, live.dynamic.Domains["example.org"]), hk, dnssec=True))
    tlsa = [r.value for r in rep.records if r.type == "TLSA"]
    assert tlsa == [dnsrecords.tlsa_value(p256.public_key()), dnsrecords.tlsa_value(rsa2048.public_key())]
    assert f"_25._tcp.mail.example.org.      TLSA {tlsa[0]}" in rep.lines


def test_unreadable_host_key_is_one_error_in_mox_words(tmp_path: Path) -> None:
    """A host key mox could not load stops the records with mox's own message, naming the file."""
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("17")]
    moxconf = build_step_config(step, tmp_path)
    (moxconf.parent / "hostkeys" / "x.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    live = read_live(locate(str(moxconf)))
    public = live.static.Listeners["public"]
    assert public.TLS is not None
    for name, why in (("hostkeys/missing.pem", "reading host private key: open "),
                      ("hostkeys/x.pem", 'parsing private key: unknown pem type "CERTIFICATE"')):
        tls = dataclasses.replace(public.TLS, HostPrivateKeyFiles=(name,))
        static = dataclasses.replace(live.static, Listeners={
            **live.static.Listeners, "public": dataclasses.replace(public, TLS=tls)})
        with pytest.raises(RecordsError) as exc:
            dnsreports.load_host_keys(live.paths, static)
        assert str(exc.value).startswith(
            "listener public: parsing host private key for DANE and ACME certificates: " + why)


def test_caa_with_acme_matches_mox_layout(tmp_path: Path) -> None:
    """The CAA block as admin/dnsrecords.go DomainRecords prints it (d=example.org, h=mail.example.com)."""
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("17")]
    live = read_live(locate(str(build_step_config(step, tmp_path))))
    public = live.static.Listeners["public"]
    assert public.TLS is not None
    static = dataclasses.replace(
        live.static, Hostname="mail.example.com",
        ACME={"le": mc.ACME(DirectoryURL=dnsrecords.LETSENCRYPT_DIRECTORY, ContactEmail="a@b.c")},
        Listeners={**live.static.Listeners, "public": dataclasses.replace(
            public, TLS=dataclasses.replace(public.TLS, ACME="le", KeyCerts=()))})
    assert dnsrecords.cert_issuer(static) == "letsencrypt.org"
    conf = live.dynamic.Domains["example.org"]
    d = dnsreports.find_domain(live.dynamic, "example.org")[0]
    rep = dnsrecords.generate(dnsrecords.Inputs(d, conf, static, dnsreports.load_dkim_keys(live.paths, conf),
                                          dnssec=True, cert_issuer="letsencrypt.org",
                                          acme_account_uri="https://acme/acct/123"))
    x = 'CAA 0 issue "letsencrypt.org; accounturi=https://acme/acct/123; validationmethods=tls-alpn-01,http-01"'
    assert rep.lines[-13:] == (
        "; Optional:",
        "; You could mark Let's Encrypt as the only Certificate Authority allowed to",
        "; sign TLS certificates for your domain.",
        'example.org.                    CAA 0 issue "letsencrypt.org"',
        ";",
        "; Optionally limit certificates for this domain to the account ID and methods used by mox.",
        f";; example.org.                 {x}",
        ";",
        "; Or alternatively only limit for email-specific subdomains, so you can use",
        "; other accounts/methods for other subdomains.",
        f";; autoconfig.example.org.      {x}",
        f";; mta-sts.example.org.         {x}",
        f";; mail.example.org             {x}",
    )
    caa = [r for r in rep.records if r.type == "CAA"]
    assert [r.publish for r in caa] == [True, False, False, False, False]
    # Without an account URL: the note instead of the variants.
    rep2 = dnsrecords.generate(dataclasses.replace(
        dnsrecords.Inputs(d, conf, static, dnsreports.load_dkim_keys(live.paths, conf)),
        cert_issuer="letsencrypt.org"))
    assert rep2.lines[-1] == "; that restrict issuance to the account will be suggested."
