"""The compiled writer (`sconf_emit`) against sconf's generic writer (`sconf.write`): the same
bytes for every config the generic writer writes, and a refusal (then the generic writer's own
error, through `sconf.write_bytes`) for every config it refuses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from reconciler.mox import sconf, sconf_emit
from reconciler.mox.config import DMARC, TLSRPT, Account, Domain, Dynamic, Static
from reconciler.mox.sconf import WriteRefused, kind_of

from .conftest import GOLDEN, GOLDEN_STEPS
from .test_sconf import _strategy

GOLDEN_FILES = [(s / "domains.conf", Dynamic) for s in GOLDEN_STEPS] + [
    (GOLDEN / "instance" / "config" / "mox.conf", Static)]


def _generic(cfg: Any) -> bytes | str:
    """The generic writer's bytes, or its refusal's message."""
    try:
        return sconf.write(cfg).encode("utf-8", "surrogateescape")
    except WriteRefused as e:
        return f"refused: {e}"
    except UnicodeEncodeError:
        return "unencodable"


def _compiled(cfg: Any) -> bytes | str | None:
    """The compiled writer's bytes, or None when it refuses ("unencodable": a key with a lone
    surrogate, which neither writer can sort)."""
    try:
        return sconf_emit.emit_bytes(kind_of(type(cfg)), cfg)
    except sconf_emit.Refused:
        return None
    except UnicodeEncodeError:
        return "unencodable"


def _public(cfg: Any) -> bytes | str:
    try:
        return sconf.write_bytes(cfg)
    except WriteRefused as e:
        return f"refused: {e}"
    except UnicodeEncodeError:
        return "unencodable"


def _agree(cfg: Any) -> None:
    generic = _generic(cfg)
    compiled = _compiled(cfg)
    if isinstance(generic, bytes) or compiled == "unencodable":
        assert compiled == generic
    else:
        assert compiled is None, f"the compiled writer wrote what the generic one refuses ({generic})"
    assert _public(cfg) == generic


@pytest.mark.parametrize(("path", "cls"), GOLDEN_FILES,
                         ids=lambda x: x.parent.name if isinstance(x, Path) else x.__name__)
def test_golden_files_are_written_as_the_generic_writer_writes_them(path: Path, cls: type) -> None:
    data = path.read_bytes()
    cfg = sconf.parse_bytes(data, cls, str(path))
    if cls is Dynamic:  # mox wrote these (mox.conf is quickstart's, with comments)
        assert _compiled(cfg) == data
    _agree(cfg)


def test_a_generated_config_of_many_domains_is_written_as_the_generic_writer_writes_it() -> None:
    """Zero and non-zero values of every field of mox's domain and account types, in many entries."""
    base = sconf.parse_bytes(GOLDEN_STEPS[-1].joinpath("domains.conf").read_bytes(), Dynamic)
    domains: dict[str, Domain] = {}
    accounts: dict[str, Account] = {}
    for i, (name, d) in enumerate(sorted(base.Domains.items()) * 20):
        # A pointer to an all-zero struct is zero (left out), like no pointer at all.
        domains[f"{i}.{name}"] = dataclasses.replace(d, Description=f"d{i}" if i % 3 else "",
                                                     LocalpartCaseSensitive=bool(i % 2),
                                                     DMARC=DMARC() if i % 4 == 1 else d.DMARC,
                                                     TLSRPT=TLSRPT(Account="x") if i % 4 == 2 else d.TLSRPT)
    for i, (name, a) in enumerate(sorted(base.Accounts.items()) * 20):
        accounts[f"{name}{i}"] = dataclasses.replace(a, MaxOutgoingMessagesPerDay=i % 4,
                                                     KeepRejects=bool(i % 3))
    cfg = dataclasses.replace(base, Domains=domains, Accounts=accounts)
    assert _compiled(cfg) is not None
    _agree(cfg)
    assert len(sconf.write_bytes(cfg)) > sconf_emit.FLUSH  # written in several pieces


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_strategy(kind_of(Dynamic), wild=True))
def test_random_domains_confs_are_written_or_refused_as_the_generic_writer_does(cfg: Dynamic) -> None:
    _agree(cfg)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_strategy(kind_of(Static), wild=True))
def test_random_mox_confs_are_written_or_refused_as_the_generic_writer_does(cfg: Static) -> None:
    _agree(cfg)


@pytest.mark.parametrize("bad", ["a\nb", "nil-key:x", "\tx", "#c", "", "nil"])
def test_each_refusal_gives_the_generic_writers_message(bad: str) -> None:
    base = sconf.parse_bytes(GOLDEN_STEPS[-1].joinpath("domains.conf").read_bytes(), Dynamic)
    name, acc = sorted(base.Accounts.items())[0]
    if bad == "nil":  # a string map value that reads back empty: an account's destination mailbox map
        cfg = dataclasses.replace(base, Domains={**base.Domains, "x.example": dataclasses.replace(
            next(iter(base.Domains.values())), Description="a\nb")})
    elif "\n" in bad:
        cfg = dataclasses.replace(base, Accounts={**base.Accounts, name: dataclasses.replace(acc, Description=bad)})
    else:
        cfg = dataclasses.replace(base, Accounts={**base.Accounts, bad.replace("nil-key", "k"): acc})
    generic = _generic(cfg)
    assert isinstance(generic, str) and generic.startswith("refused: ")
    assert _compiled(cfg) is None
    with pytest.raises(WriteRefused) as e:
        sconf.write_bytes(cfg)
    assert f"refused: {e.value}" == generic


def test_an_entry_and_a_field_are_written_as_in_the_whole_file() -> None:
    data = GOLDEN_STEPS[-1].joinpath("domains.conf").read_bytes()
    cfg = sconf.parse_bytes(data, Dynamic)
    kind = kind_of(Dynamic)
    accounts = kind.by_name["Accounts"]
    pieces = [sconf_emit.emit_field_bytes(f, getattr(cfg, f.name)) for f in kind.fields
              if not (f.optional and sconf.is_zero(f.kind, getattr(cfg, f.name)))]
    assert b"".join(pieces) == data
    one = sconf_emit.emit_entry_bytes(accounts.kind.elem, "admin", cfg.Accounts["admin"])
    assert one.startswith(b"\tadmin:") and one in data
