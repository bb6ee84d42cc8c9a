"""The primitives against mox's golden vectors, and every precondition error of admin/admin.go."""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.apply import batch
from reconciler.errors import REPORTED, ConfigInvalid, RequestError
from reconciler.mox import sconf
from reconciler.mox.admin import (
    AccountAdd,
    AccountRemove,
    AccountSave,
    AddressAdd,
    AddressRemove,
    AliasAdd,
    AliasAddressesAdd,
    AliasAddressesRemove,
    AliasRemove,
    AliasUpdate,
    ConfigSave,
    Context,
    DKIMAdd,
    DKIMRemove,
    DomainAdd,
    DomainRemove,
    DomainSave,
    Operation,
    PrimitiveError,
    address_index,
)
from reconciler.mox.config import Dynamic
from reconciler.mox.golang import Duration
from reconciler.mox.live import ConfigPaths, read_static

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
STEPS = sorted(p for p in (GOLDEN / "steps").iterdir() if p.is_dir())
STATIC = read_static(ConfigPaths(GOLDEN / "instance" / "config" / "mox.conf"))
T0 = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)

# Each golden step as a primitive call (steps 13-15 were webadmin API calls, 16/17 `domain
# disable/enable` = DomainSave). Step 07 stores the address as typed, as mox does.
STEP_OPS: dict[str, Operation] = {
    "01": DomainAdd("example.org", "alice", "alice"),
    "02": DomainAdd("café.example", "alice"),
    "03": DomainAdd("example.net", "admin", disabled=True),
    "04": AccountAdd("bob", "bob@example.org"),
    "05": AddressAdd("bob.smith@example.org", "bob"),
    "06": AddressAdd("bob@café.example", "bob"),
    "07": AddressAdd("José@café.example", "bob", as_typed=True),
    "08": AddressAdd("@example.org", "alice"),
    "09": AliasAdd("team@example.org", ("alice@example.org", "bob@example.org")),
    "10": AliasUpdate("team@example.org", post_public=False, list_members=True, allow_msg_from=True),
    "11": AliasAddressesAdd("team@example.org", ("bob.smith@example.org",)),
    "12": AliasAddressesRemove("team@example.org", ("bob@example.org",)),
    "13": DKIMAdd("example.org", "202611e", "ed25519", "sha256", True, True, True, (), Duration(259200000000000)),
    "14": DKIMAdd(
        "café.example", "202611r", "rsa", "sha256", True, False, False,
        ("From", "To", "Subject", "Date"), Duration(3600000000000),
    ),
    "15": DKIMRemove("example.org", "2026b"),
    "16": DomainSave("café.example", {"Disabled": True}),
    "17": DomainSave("café.example", {"Disabled": False}),
    "18": DomainRemove("café.example"),
    "19": AddressRemove("José@café.example"),
    "20": AddressRemove("josé@café.example"),
    "21": AddressRemove("bob@café.example"),
    "22": AddressRemove("postmaster@café.example"),
    "23": AccountRemove("bob"),
    "24": AddressRemove("bob.smith@example.org"),
    "25": AddressRemove("alice@example.org"),
    "26": AliasRemove("team@example.org"),
    "27": AddressRemove("@example.org"),
    "28": AccountRemove("alice"),
    "29": AccountRemove("bob"),
    "30": DomainRemove("café.example"),
    "31": DomainAdd("example.org", "admin"),
    "32": AccountAdd("carol", "carol@unknown.example"),
    "33": AccountAdd("bob", "bob@example.org"),
    "34": DomainRemove("example.net"),
}

_KEY_TS = re.compile(r"PrivateKeyFile: dkim/\S+\.(\d{8}T\d{6})\.")


def golden_dynamic(step: str) -> Dynamic:
    (d,) = (p for p in STEPS if p.name.startswith(step))
    return sconf.parse((d / "domains.conf").read_text("utf-8"), Dynamic)


def step_now(step_dir: Path, prev_text: str) -> datetime:
    """The local (= UTC on the golden machine) time mox used: from the key file names it created."""
    new = set(_KEY_TS.findall((step_dir / "domains.conf").read_text("utf-8"))) - set(_KEY_TS.findall(prev_text))
    if not new:
        return T0
    (ts,) = new
    return datetime.strptime(ts, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def stderr_of(step_dir: Path) -> str:
    text = (step_dir / "step.txt").read_text("utf-8")
    err = text.split("--- stderr\n", 1)[1].split("\n--- ", 1)[0].strip()
    return err.split(": ", 1)[1]  # Drop the CLI's "removing domain: " prefix.


def make_instance(tmp: Path) -> ConfigPaths:
    """The golden instance's config dir with step 00's domains.conf, plus an empty data dir."""
    cfg = tmp / "config"
    shutil.copytree(GOLDEN / "instance" / "config", cfg)
    shutil.copy(GOLDEN / "steps" / "00-init-bootstrap" / "domains.conf", cfg / "domains.conf")
    (tmp / "data").mkdir()
    return ConfigPaths(cfg / "mox.conf")


def dkim_files(cfg: Path) -> set[str]:
    return {str(p.relative_to(cfg)) for p in (cfg / "dkim").rglob("*") if p.is_file()} if (cfg / "dkim").exists() else set()


def test_golden_replay(tmp_path: Path) -> None:
    """Replaying mox's 34 steps reproduces each domains.conf byte for byte, and each error text."""
    paths = make_instance(tmp_path)
    prev = (STEPS[0] / "domains.conf").read_text("utf-8")
    for step_dir in STEPS[1:]:
        step = step_dir.name[:2]
        op = STEP_OPS[step]
        before = paths.domains_conf.read_bytes()
        now = step_now(step_dir, prev)
        if "-ERR-" in step_dir.name:
            with pytest.raises(REPORTED) as exc:
                batch.apply_batch(paths, [op], now=now)
            want = stderr_of(step_dir)
            if isinstance(exc.value, ConfigInvalid):
                head, errs = want.split("config error: ", 1)
                assert exc.value.where + ": " == head, step
                assert sorted(exc.value.errors) == sorted(errs.split("; ")), step
            else:
                assert str(exc.value) == want, step
            assert paths.domains_conf.read_bytes() == before, step
        else:
            res = batch.apply_batch(paths, [op], now=now)
            assert res.written
        got = paths.domains_conf.read_text("utf-8")
        assert got == (step_dir / "domains.conf").read_text("utf-8"), step_dir.name
        want_files = {line.split(" ")[0] for line in (step_dir / "dkim-files.txt").read_text().splitlines() if line}
        assert dkim_files(paths.config_dir) == want_files, step_dir.name
        prev = got
    # Step 29: mox deletes bob's data dir; we never touch mail data (nothing was created here).
    assert not (tmp_path / "data" / "accounts").exists()


# ---------------------------------------------------------------------------
# Preconditions, pure: op.apply(config, context) with mox's texts.


def ctx(**kw: object) -> Context:
    return Context(STATIC, T0, **kw)  # type: ignore[arg-type]


def err(op: Operation, dyn: Dynamic, c: Context | None = None) -> str:
    with pytest.raises(REPORTED) as exc:
        op.apply(dyn, c or ctx())
    return str(exc.value)


S17 = golden_dynamic("17")  # Everything present: 4 domains, alias team, catchall, José.
S00 = golden_dynamic("00")


@pytest.mark.parametrize(
    ("op", "text"),
    [
        (DomainAdd("example.org", "admin"), "bad request: domain already present"),
        (DomainAdd("new.example", "alice", "x"),
         "bad request: account already exists (leave localpart empty when using an existing account)"),
        (DomainAdd("new.example", "nobody"), "bad request: account does not yet exist (specify a localpart)"),
        (DomainAdd("new.example", "", "x"), "bad request: account name is empty"),
        (DomainRemove("nope.example"), "bad request: domain does not exist"),
        (DKIMAdd("example.org", "s1", "rsa", "md5"), 'bad request: unknown hash algorithm "md5"'),
        (DKIMAdd("example.org", "s1", "ecdsa"), "bad request: making dkim key: unknown algorithm"),
        (DKIMAdd("nope.example", "s1"), "bad request: domain does not exist"),
        (DKIMAdd("example.org", "2026a"), "bad request: selector already exists for domain"),
        (DKIMRemove("nope.example", "2026a"), "bad request: domain does not exist"),
        (DKIMRemove("example.org", "2026b"), "bad request: selector does not exist for domain"),
        (AccountAdd("carol", "not-an-address"), "bad request: parsing email address: invalid email address: expected @"),
        (AccountAdd("bob", "bob2@example.org"), "bad request: account already present"),
        (AccountAdd("carol", "carol@unknown.example"), "bad request: address not available: domain does not exist"),
        (AccountAdd("carol", "Bob@example.org"),
         "bad request: address not available: canonicalized address bob@example.org already configured"),
        (AccountAdd("carol", "dmarcreports@example.org"),
         "bad request: address not available: canonicalized address dmarcreports@example.org already configured"),
        (AccountAdd("carol", "TLSreports@mail.example.org"),
         "bad request: address not available: canonicalized address tlsreports@mail.example.org already configured"),
        (AccountAdd("carol", "c+x@example.org"),
         "bad request: address not available: localpart cannot include domain catchall separator +"),
        (AccountAdd("carol", "team@example.org"), "bad request: address not available: address in use as alias"),
        (AddressAdd("x@example.org", "nobody"), "bad request: account does not exist"),
        (AddressAdd("@example.org", "bob"), "bad request: catchall address already configured for domain"),
        (AddressAdd("@nope.example", "bob"), "bad request: domain does not exist"),
        (AddressAdd("@-bad", "bob"), "bad request: parsing domain: idna: to ascii: idna: invalid label \"-bad\""),
        (AddressAdd("BOB.smith@example.org", "alice"),
         "bad request: address not available: canonicalized address bob.smith@example.org already configured"),
        (AddressRemove("nobody@example.org"), "bad request: address does not exists"),
        (AddressRemove("José@café.example"), "bad request: address does not exists"),
        (AddressRemove("josé@café.example"), "bad request: address not removed, likely a postmaster/reporting address"),
        (AddressRemove("dmarcreports@example.org"),
         "bad request: address not removed, likely a postmaster/reporting address"),
        (AliasAdd("team@example.org", ("alice@example.org",)), "bad request: alias already present"),
        (AliasAdd("team@nope.example", ("alice@example.org",)), "bad request: domain not present"),
        (AliasUpdate("x@example.org", post_public=True), "bad request: alias does not exist"),
        (AliasRemove("x@example.org"), "bad request: alias does not exist"),
        (AliasAddressesAdd("team@example.org", ()), "bad request: at least one address required"),
        (AliasAddressesAdd("x@example.org", ("a@example.org",)), "bad request: no such alias"),
        (AliasAddressesRemove("team@example.org", ()), "bad request: need at least one address"),
        (AliasAddressesRemove("team@example.org", ("a@example.org", "b@example.org")),
         "bad request: address not found: a@example.org, b@example.org"),
        (DomainSave("nope.example", {"Disabled": True}), "bad request: domain not present"),
        (DomainSave("example.org", {"Bogus": 1}), "bad request: unknown domain field Bogus"),
        (AccountSave("nobody", {"LoginDisabled": "x"}), "bad request: account not present"),
        (AccountRemove("nobody"), "bad request: open account: no such account"),
        (ConfigSave({"Domains": {}}),
         "bad request: Domains cannot be changed with ConfigSave, use the domain/account operations"),
    ],
)
def test_precondition_errors(op: Operation, text: str) -> None:
    assert err(op, S17) == text


def test_last_member_of_alias_is_not_a_bad_request() -> None:
    dyn = golden_dynamic("24")
    with pytest.raises(PrimitiveError) as exc:
        AddressRemove("alice@example.org").apply(dyn, ctx())
    assert str(exc.value) == (
        "address is last member of alias team@example.org, add new members or remove alias first"
    )


def test_account_directory_still_exists() -> None:
    c = ctx(data_dir=Path("/srv/mox/data"), account_dirs=frozenset({"carol"}))
    assert err(AccountAdd("carol", "carol@example.org"), S17, c) == (
        'bad request: account directory "/srv/mox/data/accounts/carol" already/still exists'
    )


def test_never_remove_last_domain_or_account() -> None:
    assert "last domain" in err(DomainRemove("mail.example.org"), S00)
    assert "last account" in err(AccountRemove("admin"), S00)


def test_account_names_must_be_directory_names() -> None:
    for bad in ("../x", ".", "a/b", "a\\b", "x\ny", ""):
        assert "invalid account name" in err(AccountAdd(bad, "x@example.org"), S17)


def test_inputs_are_not_modified() -> None:
    before = sconf.write(S17)
    for op in STEP_OPS.values():
        with contextlib.suppress(*REPORTED):
            op.apply(S17, ctx())
    assert sconf.write(S17) == before


def test_canonical_form_by_default() -> None:
    """Addresses and alias members are stored lower-case so mox can remove them again."""
    dyn = AddressAdd("Carol@Café.example", "bob").apply(S17, ctx()).dynamic
    assert "carol@café.example" in dyn.Accounts["bob"].Destinations
    dyn = AccountAdd("dave", "Dave@example.org").apply(dyn, ctx()).dynamic
    assert set(dyn.Accounts["dave"].Destinations) == {"dave@example.org"}
    dyn = AliasAddressesAdd("team@example.org", ("Dave@Example.org",)).apply(dyn, ctx()).dynamic
    assert dyn.Domains["example.org"].Aliases["team"].Addresses[-1] == "dave@example.org"
    # ... and then removable with mox's exact-key AddressRemove.
    AddressRemove("carol@café.example").apply(dyn, ctx())


def test_domain_add_effects() -> None:
    eff = DomainAdd("new.example", "bob").apply(S17, ctx())
    assert [k.path for k in eff.new_keys] == [
        "dkim/2026a._domainkey.new.example.20261125T160000.rsa2048.privatekey.pkcs8.pem",
        "dkim/2026b._domainkey.new.example.20261125T160000.rsa2048.privatekey.pkcs8.pem",
    ]
    assert "postmaster@new.example" in eff.dynamic.Accounts["bob"].Destinations
    # The postmaster account gets no postmaster@ address.
    eff = DomainAdd("new.example", "admin").apply(S17, ctx())
    assert eff.dynamic.Accounts["admin"] == S17.Accounts["admin"]
    # No MTA-STS without a listener serving it.
    static = replace(STATIC, Listeners={k: replace(v, MTASTSHTTPS=replace(v.MTASTSHTTPS, Enabled=False))
                                        for k, v in STATIC.Listeners.items()})
    eff = DomainAdd("new.example", "bob").apply(S17, Context(static, T0))
    assert eff.dynamic.Domains["new.example"].MTASTS is None


def test_remove_effects() -> None:
    eff = DomainRemove("café.example").apply(S17, ctx())
    assert len(eff.retired_keys) == 3
    eff = AccountRemove("bob").apply(golden_dynamic("28"), ctx(data_dir=Path("/d")))
    assert "/d/accounts/bob" in eff.notes[0] and "left in place" in eff.notes[0]


def test_address_index_matches_mox() -> None:
    idx = address_index(STATIC, S17)
    assert idx["tlsreports@mail.example.org"] == "admin"
    assert idx["josé@café.example"] == "bob"
    assert idx["@example.org"] == "alice"
    assert idx["dmarcreports@café.example"] == "alice"
    assert "José@café.example" not in idx


def test_operations_describe_and_json() -> None:
    for op in STEP_OPS.values():
        assert op.describe() and "\n" not in op.describe()
        j = op.to_json()
        assert j["op"] == type(op).__name__ and j["version"] == 1
    assert DomainRemove("x").destructive and not DomainAdd("x", "y").destructive
    assert AddressRemove("x").destructive and AccountRemove("x").destructive
    with pytest.raises(RequestError):
        DomainAdd("bad..", "x").apply(S17, ctx())


@pytest.mark.parametrize("step", [p.name[:2] for p in STEPS])
def test_address_index_agrees_with_validator(step: str) -> None:
    """The primitives' own index (no key I/O) is the validator's address index."""
    from reconciler.mox import validate

    dyn = golden_dynamic(step)
    cfg = GOLDEN / "instance" / "config"
    v = validate.validate_dynamic(STATIC, dyn, cfg)
    # Key files are not in the instance dir, so only key errors are expected.
    assert all("private key" in e for e in v.errors)
    assert address_index(STATIC, dyn) == v.addresses


def test_to_json_redacts_secrets() -> None:
    from reconciler.mox.config import IncomingWebhook

    op = AccountSave("bob", {"IncomingWebhook": IncomingWebhook(URL="https://x", Authorization="Bearer s3cret")})
    assert "s3cret" not in str(op.to_json()) and "s3cret" not in op.describe()
