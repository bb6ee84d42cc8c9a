"""DNS publish without surprises, against a real BIND 9 (one server for the module):

* one consistent record per name whatever --domain says: the mail host's name is a hosted domain
  (mail.example.org), so its SPF is that domain's SPF in a run for one domain and in a run for
  all (it once flipped between `v=spf1 a -all` and the domain SPF);
* an update that weakens an SPF record there (`-all` -> `~all`) or a DMARC policy is a warning,
  and refused (nothing sent) without --force;
* a --domain outside --zone is an error, not "up to date".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.update
import pytest

from reconciler.cli.main import main
from reconciler.dns.check import Server, lookup
from reconciler.dns.publish import Change, load_tsig_key, weakenings
from tests.bindserver import BindServer, running

pytestmark = pytest.mark.dns


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindServer]:
    with running(tmp_path_factory.mktemp("bind")) as server:
        yield server


def serial(server: BindServer) -> int:
    r = dns.query.udp(dns.message.make_query("example.org.", "SOA"), "127.0.0.1", port=server.port, timeout=2)
    return int(r.answer[0][0].serial)


def txt(server: BindServer, name: str) -> list[str]:
    return sorted(b"".join(rd.strings).decode() for rd in lookup(Server("127.0.0.1", server.port), name, "TXT"))


def hand_made(server: BindServer, name: str, *values: str) -> None:
    """Records set by hand in the zone (replacing the TXT RRset at `name`)."""
    key = load_tsig_key(server.key_file)
    upd = dns.update.UpdateMessage("example.org.", keyring=key, keyname=key.name)
    upd.replace(name, 300, "TXT", *(f'"{v}"' for v in values))
    assert dns.query.tcp(upd, "127.0.0.1", port=server.port, timeout=5).rcode() == 0


def publish(capsys: pytest.CaptureFixture[str], moxconf: Path, server: BindServer, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["--config", str(moxconf), "records", "--publish", "rfc2136", "--server", server.address,
               "--zone", "example.org", "--tsig-key-file", str(server.key_file), *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def test_one_record_per_name_whatever_domain_says(bind: BindServer, golden_config: Callable[[str], Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("17")
    hand_made(bind, "mail", "v=spf1 ip4:198.51.100.7 ~all")  # weaker than anything: no refusal here
    assert publish(capsys, moxconf, bind)[0] == 0  # every domain inside the zone
    host = txt(bind, "mail.example.org.")
    apex = [t for t in txt(bind, "example.org.") if t.startswith("v=spf1")]
    assert host == apex and apex[0].endswith("~all")  # the host's name is a hosted domain: its domain SPF
    for argv in (["--domain", "example.org"], [], ["--domain", "mail.example.org"], ["--domain", "example.org"]):
        before = serial(bind)
        rc, out, _ = publish(capsys, moxconf, bind, *argv)
        assert (rc, out) == (0, "zone example.org: up to date, nothing sent\n"), argv
        assert serial(bind) == before and txt(bind, "mail.example.org.") == host


def test_weakening_spf_is_refused_without_force(bind: BindServer, golden_config: Callable[[str], Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("17")
    hand_made(bind, "@", "v=spf1 ip4:198.51.100.7 mx -all", "site-verification=keep-me")
    hand_made(bind, "mail", "v=spf1 a -all")
    before = serial(bind)
    rc, out, err = publish(capsys, moxconf, bind, "--domain", "example.org")
    assert (rc, out) == (1, "")
    assert err.startswith("error: zone example.org: not publishing: ")
    assert "example.org. TXT: this would weaken the SPF from -all to ~all (now: v=spf1 ip4:198.51.100.7 mx -all)" \
        in err
    assert "mail.example.org. TXT: this would weaken the SPF from -all to ~all (now: v=spf1 a -all)" in err
    assert "re-run with --force" in err and "Nothing was sent" in err
    assert serial(bind) == before and txt(bind, "mail.example.org.") == ["v=spf1 a -all"]

    rc, out, _ = publish(capsys, moxconf, bind, "--domain", "example.org", "--dry-run")
    assert rc == 0 and "warning: example.org. TXT: this would weaken the SPF" in out
    assert "(refused without --force)" in out and serial(bind) == before

    rc, out, _ = publish(capsys, moxconf, bind, "--domain", "example.org", "--force")
    assert rc == 0 and "sent update" in out and "warning: mail.example.org. TXT: this would weaken" in out
    assert serial(bind) == before + 1
    assert txt(bind, "mail.example.org.")[0].endswith("~all")
    assert "site-verification=keep-me" in txt(bind, "example.org.")  # another kind of TXT: left alone


def test_domain_outside_the_zone_is_an_error(bind: BindServer, golden_config: Callable[[str], Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    moxconf = golden_config("17")
    before = serial(bind)
    rc, out, err = publish(capsys, moxconf, bind, "--domain", "café.example")
    assert (rc, out) == (1, "")
    assert err == ("error: --domain café.example is not inside --zone example.org: its records belong in another "
                   "zone; publish it with that zone's --zone\n")
    assert serial(bind) == before


def _change(name: str, old: list[str], new: list[str]) -> Change:
    def rd(v: str) -> dns.rdata.Rdata:
        return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, f'"{v}"')

    return Change(name, "TXT", tuple(map(rd, old)), tuple(map(rd, old)), tuple(map(rd, new)), 300)


@pytest.mark.parametrize(("old", "new", "weaker"), [
    ("v=DMARC1;p=reject", "v=DMARC1;p=none;rua=mailto:r@example.org", "DMARC policy from p=reject to p=none"),
    ("v=DMARC1; p=quarantine", "v=DMARC1;p=none", "DMARC policy from p=quarantine to p=none"),
    ("v=DMARC1;p=none", "v=DMARC1;p=reject", None),
    ("v=spf1 mx ~all", "v=spf1 mx ?all", "SPF from ~all to ?all"),
    ("v=spf1 mx", "v=spf1 mx +all", "SPF from no all (neutral) to +all"),
    ("v=spf1 mx ~all", "v=spf1 ip4:192.0.2.1 mx -all", None),
    ("v=spf1 -all", "v=spf1 -all include:x.example", None),
])
def test_weakenings(old: str, new: str, weaker: str | None) -> None:
    found = weakenings([_change("_dmarc.example.org.", [old], [new])])
    assert found == ([f"_dmarc.example.org. TXT: this would weaken the {weaker} (now: {old})"] if weaker else [])
