"""Batches: one validated write for many operations, nothing left behind on failure, key retirement."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.apply import batch, keyfiles
from reconciler.errors import ConfigInvalid, RequestError
from reconciler.mox import keygen, sconf
from reconciler.mox.admin import (
    AccountAdd,
    AccountRemove,
    AddressAdd,
    AddressRemove,
    DKIMAdd,
    DKIMRemove,
    DomainAdd,
    DomainRemove,
    DomainSave,
)
from reconciler.mox.config import Dynamic
from reconciler.mox.keyfiles import load_dkim_private_key
from reconciler.mox.live import ConfigPaths

from .conftest import build_step_config

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def make_instance(tmp: Path, step: str = "01-domain-add-example.org") -> ConfigPaths:
    return ConfigPaths(build_step_config(GOLDEN / "steps" / step, tmp))


def key_files(paths: ConfigPaths) -> set[str]:
    return {str(p.relative_to(paths.config_dir)) for p in (paths.config_dir / "dkim").rglob("*") if p.is_file()}


def test_operations_see_earlier_ones(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    before_keys = key_files(paths)
    res = batch.apply_batch(
        paths,
        [
            DomainAdd("new.example", "carol", "carol"),
            AddressAdd("info@new.example", "carol"),
            DKIMAdd("new.example", "ed", "ed25519"),
            AccountAdd("dave", "dave@new.example"),
        ],
        now=NOW,
    )
    dyn = sconf.parse(paths.domains_conf.read_text(), Dynamic)
    assert set(dyn.Accounts["carol"].Destinations) == {"carol@new.example", "info@new.example"}
    assert set(dyn.Domains["new.example"].DKIM.Selectors) == {"2026a", "2026b", "ed"}
    assert key_files(paths) - before_keys == set(res.keys_created)
    for rel in res.keys_created:  # Real, loadable keys, as mox would load them.
        load_dkim_private_key(paths.config_dir / rel)


def test_failing_precondition_writes_nothing(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    before = paths.domains_conf.read_bytes()
    keys = key_files(paths)
    with pytest.raises(RequestError, match="account does not exist") as exc:
        batch.apply_batch(paths, [DomainAdd("new.example", "alice"), AddressAdd("x@new.example", "nobody")])
    assert "operation 2 of 2" in "".join(exc.value.__notes__)
    assert paths.domains_conf.read_bytes() == before
    assert key_files(paths) == keys


def test_failing_validation_removes_new_keys(tmp_path: Path) -> None:
    """Keys are written before validation (it reads them) and removed again when it fails."""
    paths = make_instance(tmp_path)
    before = paths.domains_conf.read_bytes()
    keys = key_files(paths)
    with pytest.raises(ConfigInvalid) as exc:
        batch.apply_batch(
            paths,
            [DomainAdd("new.example", "alice"), DKIMAdd("example.org", "bad", "ed25519", "sha1")],
            workers=1,
        )
    assert str(exc.value) == (
        "writing domains.conf: config error: domain example.org: selector bad: "
        'hash algorithm "sha1" is not supported with ed25519, only sha256 is'
    )
    assert paths.domains_conf.read_bytes() == before
    assert key_files(paths) == keys


def test_parallel_key_generation(tmp_path: Path) -> None:
    paths = make_instance(tmp_path)
    ops = [DomainAdd(f"p{i}.example", "alice") for i in range(3)]
    res = batch.apply_batch(paths, ops, now=NOW, workers=2)
    assert len(res.keys_created) == 6
    pems = {(paths.config_dir / k).read_bytes() for k in res.keys_created}
    assert len(pems) == 6
    for k in res.keys_created:
        load_dkim_private_key(paths.config_dir / k)


def test_generate_keys_inline_and_in_threads_agree_on_format() -> None:
    reqs = [keygen.KeyRequest(f"s{i}", "example.org", keygen.ED25519, NOW) for i in range(5)]
    for pems in (batch.generate_keys(reqs, workers=1), batch.generate_keys(reqs, workers=2)):
        assert len(set(pems)) == 5
        for r, p in zip(reqs, pems, strict=True):
            assert p.decode().splitlines()[1] == f"Note: {r.note()}"


def test_removed_keys_move_to_old(tmp_path: Path) -> None:
    paths = make_instance(tmp_path, "12-alias-rmaddr-team")
    sel = "dkim/2026b._domainkey.example.org.20261125T162841.rsa2048.privatekey.pkcs8.pem"
    res = batch.apply_batch(paths, [DKIMRemove("example.org", "2026b")])
    assert res.keys_retired == (sel,)
    assert not (paths.config_dir / sel).exists()
    assert (paths.config_dir / "dkim/old" / Path(sel).name).exists()


def test_key_still_referenced_stays(tmp_path: Path) -> None:
    paths = make_instance(tmp_path, "12-alias-rmaddr-team")
    dyn = sconf.parse(paths.domains_conf.read_text(), Dynamic)
    org = dyn.Domains["example.org"]
    shared = org.DKIM.Selectors["2026b"]
    cafe = dyn.Domains["café.example"]
    # café.example also signs with example.org's 2026b key file (same path).
    new_dkim = replace(cafe.DKIM, Selectors={**cafe.DKIM.Selectors, "shared": shared})
    batch.apply_batch(paths, [DomainSave("café.example", {"DKIM": new_dkim})])
    res = batch.apply_batch(paths, [DKIMRemove("example.org", "2026b")])
    assert res.keys_retired == () and res.keys_left == (shared.PrivateKeyFile,)
    assert (paths.config_dir / shared.PrivateKeyFile).exists()


def test_old_destination_exists(tmp_path: Path) -> None:
    paths = make_instance(tmp_path, "12-alias-rmaddr-team")
    sel = "dkim/2026b._domainkey.example.org.20261125T162841.rsa2048.privatekey.pkcs8.pem"
    old = paths.config_dir / "dkim/old" / Path(sel).name
    old.parent.mkdir()
    old.write_bytes(b"older")
    res = batch.apply_batch(paths, [DKIMRemove("example.org", "2026b")])
    assert res.keys_left == (sel,)
    assert old.read_bytes() == b"older" and (paths.config_dir / sel).exists()


def test_domain_remove_refused_while_referenced(tmp_path: Path) -> None:
    """mox's validation names every reference; in one batch with the references it works."""
    paths = make_instance(tmp_path, "17-domain-enable-cafe.example")
    with pytest.raises(ConfigInvalid) as exc:
        batch.apply_batch(paths, [DomainRemove("café.example")])
    assert 'destination "postmaster@café.example": unknown domain for address' in str(exc.value)
    batch.apply_batch(
        paths,
        [
            AddressRemove("bob@café.example"),
            AddressRemove("postmaster@café.example"),
            AddressRemove("bob.smith@example.org"),  # Member of alias team.
            AccountRemove("bob"),  # Holds the unremovable José@café.example.
            DomainRemove("café.example"),
        ],
    )
    assert "café.example" not in paths.domains_conf.read_text()


def test_account_remove_keeps_data_dir(tmp_path: Path) -> None:
    paths = make_instance(tmp_path, "04-account-add-bob")
    data = tmp_path / "data" / "accounts" / "bob"
    data.mkdir(parents=True)
    (data / "index.db").write_bytes(b"mail")
    res = batch.apply_batch(paths, [AccountRemove("bob")])
    assert (data / "index.db").read_bytes() == b"mail"
    assert str(data) in res.notes[0]
    with pytest.raises(RequestError, match="already/still exists"):
        batch.apply_batch(paths, [AccountAdd("bob", "bob@example.org")])


def test_orphan_key_from_crashed_run_is_parked(tmp_path: Path) -> None:
    """A key file at the name we need, not referenced by the config, goes to old/ (never deleted)."""
    paths = make_instance(tmp_path)
    req = keygen.KeyRequest("s1", "example.org", keygen.ED25519, NOW)
    keyfiles.write_key_file(paths.config_dir, req.path, keygen.generate(req), None)
    orphan = (paths.config_dir / req.path).read_bytes()
    batch.apply_batch(paths, [DKIMAdd("example.org", "s1", "ed25519")], now=NOW)
    assert (paths.config_dir / "dkim/old" / Path(req.path).name).read_bytes() == orphan
    assert (paths.config_dir / req.path).read_bytes() != orphan
