"""Desired-state models: defaults as DomainAdd/AccountAdd, merging, origins, JSON Schema, examples."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from reconciler.cli.main import main
from reconciler.desired import schema as schema_mod
from reconciler.desired.load import load_desired
from reconciler.desired.models import DesiredState
from reconciler.desired.tomox import domain_to_mox, names_to_mox
from reconciler.mox import config as mc
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.mox.validate import validate_dynamic

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONF = ROOT / "examples" / "mox" / "config" / "mox.conf"
EXAMPLE_DESIRED = ROOT / "examples" / "desired"
SCHEMA = ROOT / "schemas" / "desired-state.schema.json"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "d.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_schema_is_up_to_date() -> None:
    """Regenerate with `python -m reconciler.desired.schema` after changing reconciler/desired/models.py."""
    assert SCHEMA.read_text(encoding="utf-8") == schema_mod.render()


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


FLEET_DESIRED = [p for p in (ROOT / "examples" / "fleet").rglob("*.yaml") if "deploy" not in p.parts]


@pytest.mark.parametrize("path", sorted([*EXAMPLE_DESIRED.glob("*.yaml"), *FLEET_DESIRED]),
                         ids=lambda p: str(p.relative_to(ROOT / "examples")))
def test_schema_accepts_examples_and_modeline(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert m, first
    assert (path.parent / m.group(1)).resolve() == SCHEMA
    errors = list(_validator().iter_errors(yaml.safe_load(text)))
    assert errors == []


def test_schema_rejects_typo() -> None:
    doc = yaml.safe_load((EXAMPLE_DESIRED / "accounts.yaml").read_text(encoding="utf-8"))
    doc["Accounts"]["alice"]["FulName"] = "Alice"
    errors = list(_validator().iter_errors(doc))
    assert len(errors) == 1
    assert "'FulName' was unexpected" in errors[0].message
    assert list(errors[0].absolute_path) == ["Accounts", "alice"]
    doc = {"Domains": {"example.org": {"DMARC": {"Mailbx": "x"}}}}
    best = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
    assert best is not None and "'Mailbx' was unexpected" in best.message


def test_example_config_is_valid_and_matches_import(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(EXAMPLE_CONF), "config", "test"]) == 0
    assert capsys.readouterr().out == "config OK\n"
    assert main(["validate", str(EXAMPLE_DESIRED)]) == 0
    assert capsys.readouterr().out == (
        "desired state OK: 3 domains (1 internationalized), 4 accounts, 8 addresses, 1 aliases, 5 files\n"
    )


def test_example_desired_means_valid_mox_config() -> None:
    """What the example asks for, keys still to be generated aside, is a config mox accepts."""
    live = read_live(ConfigPaths(EXAMPLE_CONF))
    state = load_desired(EXAMPLE_DESIRED)
    dyn = state.to_dynamic(live.static, live.dynamic, NOW)
    assert set(dyn.Domains) == {"example.com", "example.net", "bücher.example"}
    # existing domain: the existing key is adopted, the new selector awaits generation
    com = dyn.Domains["example.com"]
    assert com.DKIM.Selectors["2026a"] == live.dynamic.Domains["example.com"].DKIM.Selectors["2026a"]
    assert com.DKIM.Selectors["2026e"].PrivateKeyFile == ""
    assert com.MTASTS == live.dynamic.Domains["example.com"].MTASTS
    assert dyn.Accounts["admin"] == live.dynamic.Accounts["admin"]
    # new domain: DomainAdd's defaults
    net = dyn.Domains["example.net"]
    assert net.ClientSettingsDomain == "mail.example.net"
    assert net.LocalpartCatchallSeparator == "+"
    assert mc.DMARC("dmarcreports", "", "carol", "DMARC") == net.DMARC
    assert mc.TLSRPT("tlsreports", "", "carol", "TLSRPT") == net.TLSRPT
    assert mc.MTASTS("20260304T050607", "enforce", net.MTASTS.MaxAge, ("mail.example.com",)) == net.MTASTS
    assert net.MTASTS.MaxAge == 24 * 3600 * 10**9
    assert sorted(net.DKIM.Selectors) == ["2026a", "2026b"] and net.DKIM.Sign == ("2026a",)
    idn = dyn.Domains["bücher.example"]
    assert (
        idn.MTASTS is not None and idn.MTASTS.Mode == "testing" and idn.MTASTS.PolicyID == "20260304T050607"
    )
    carol = dyn.Accounts["carol"]
    assert carol.Domain == "example.net" and carol.RejectsMailbox == "Rejects"
    assert carol.JunkFilter is not None and carol.JunkFilter.Threshold == 0.95
    # With placeholder key files for the selectors still to generate, mox's validation passes.
    placeholder = "dkim/2026a._domainkey.example.com.20260101T000000.rsa2048.privatekey.pkcs8.pem"
    domains = {}
    for name, d in dyn.Domains.items():
        sels = {
            k: (s if s.PrivateKeyFile else mc.Selector(**{**_fields(s), "PrivateKeyFile": placeholder}))
            for k, s in d.DKIM.Selectors.items()
        }
        domains[name] = mc.Domain(**{**_fields(d), "DKIM": mc.DKIM(sels, d.DKIM.Sign)})
    dyn2 = mc.Dynamic(Domains=domains, Accounts=dyn.Accounts)
    # the ed25519 selector gets an RSA placeholder: only its sha256 hash matters for validation
    assert validate_dynamic(live.static, dyn2, EXAMPLE_CONF.parent).errors == []


def test_checks_see_the_same_name_rules_as_the_conversion() -> None:
    """The checks apply mox's name rules to `names_to_mox`, the cheap part of `domain_to_mox`:
    separators, case sensitivity and reporting addresses must come out the same."""
    live = read_live(ConfigPaths(EXAMPLE_CONF))
    state = load_desired(EXAMPLE_DESIRED)
    for name, d in state.Domains.items():
        full = domain_to_mox(name, d, live.static, live.dynamic.Domains.get(name), NOW)
        names = names_to_mox(d)
        assert names.separators() == full.separators()
        assert (names.LocalpartCaseSensitive, names.DMARC, names.TLSRPT) == (
            full.LocalpartCaseSensitive, full.DMARC, full.TLSRPT)


def _fields(obj: object) -> dict[str, object]:
    import dataclasses

    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def test_null_means_none_and_omitted_means_default(tmp_path: Path) -> None:
    static = read_live(ConfigPaths(EXAMPLE_CONF)).static
    p = _write(
        tmp_path,
        "Domains:\n  a.example:\n    DMARC: null\n    TLSRPT: {Account: x, Mailbox: Reports}\n"
        "    MTASTS: null\n    DKIM: null\n    ClientSettingsDomain: ''\n"
        "Accounts:\n  x:\n    JunkFilter: null\n    Destinations: {x@a.example: null}\n",
    )
    s = load_desired(p)
    d = s.domain_to_mox("a.example", static, None, NOW)
    assert d.DMARC is None and d.MTASTS is None and mc.DKIM() == d.DKIM
    assert mc.TLSRPT("tlsreports", "", "x", "Reports") == d.TLSRPT
    assert d.ClientSettingsDomain == ""
    a = s.account_to_mox("x")
    assert a.JunkFilter is None and a.Domain == "a.example"
    assert a.Destinations == {"x@a.example": mc.Destination()}


def test_omitted_dkim_keeps_existing_and_policy_id_follows_policy(tmp_path: Path) -> None:
    live = read_live(ConfigPaths(EXAMPLE_CONF))
    p = _write(tmp_path, "Domains:\n  example.com: {ReportsAccount: admin}\nAccounts:\n  admin: {}\n")
    s = load_desired(p)
    existing = live.dynamic.Domains["example.com"]
    d = s.domain_to_mox("example.com", live.static, existing, NOW)
    assert d.DKIM == existing.DKIM
    assert d.MTASTS == existing.MTASTS  # same policy: policy ID kept
    p.write_text(
        "Domains:\n  example.com: {ReportsAccount: admin, MTASTS: {Mode: testing}}\nAccounts:\n  admin: {}\n"
    )
    d = load_desired(p).domain_to_mox("example.com", live.static, existing, NOW)
    assert d.MTASTS is not None and d.MTASTS.PolicyID == "20260304T050607"  # changed policy: new ID


def test_generated_selector_adopts_live_key_by_name(tmp_path: Path) -> None:
    live = read_live(ConfigPaths(EXAMPLE_CONF))
    p = _write(
        tmp_path,
        "Domains:\n  example.com:\n    ReportsAccount: admin\n    DKIM:\n      Selectors:\n"
        "        2026a: {Algorithm: rsa, Expiration: 72h}\n      Sign: [2026a]\nAccounts:\n  admin: {}\n",
    )
    d = load_desired(p).domain_to_mox("example.com", live.static, live.dynamic.Domains["example.com"], NOW)
    assert d.DKIM == live.dynamic.Domains["example.com"].DKIM


def test_origins_and_merge(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "Domains:\n  a.example: {ReportsAccount: x}\nRemoved:\n  Accounts: [old1]\n"
    )
    (tmp_path / "b.yml").write_text(
        "Accounts:\n  x:\n    Destinations: {x@a.example: {}}\nRemoved:\n  Accounts: [old2]\n"
    )
    (tmp_path / "notes.txt").write_text("not yaml: [")
    s = load_desired(tmp_path)
    assert s.files == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yml")]
    assert str(s.where("Domains", "a.example")) == f"{tmp_path}/a.yaml:2:3"
    assert str(s.where("Accounts", "x", "Destinations", "x@a.example")) == f"{tmp_path}/b.yml:3:20"
    assert s.Removed.Accounts == ["old1", "old2"]
    assert s.where("Removed", "Accounts", 1) is not None
    assert (
        s.Policy.Prune is False and s.Policy.MaxChangeShare == 0.3 and s.Policy.MinObjectsForThreshold == 10
    )


def test_removed_and_prune_in_to_dynamic(tmp_path: Path) -> None:
    live = read_live(ConfigPaths(EXAMPLE_CONF))
    extra = mc.Account(Domain="example.com")
    dyn = mc.Dynamic(
        Domains=live.dynamic.Domains, Accounts={**live.dynamic.Accounts, "old": extra, "keep": extra}
    )
    p = _write(tmp_path, "Removed:\n  Accounts: [old]\n")
    out = load_desired(p).to_dynamic(live.static, dyn)
    assert set(out.Accounts) == {"admin", "keep"} and set(out.Domains) == {"example.com"}
    p.write_text("Policy: {Prune: true}\nAccounts:\n  keep: {Domain: example.com, Destinations: {}}\n")
    out = load_desired(p).to_dynamic(live.static, dyn)
    assert set(out.Accounts) == {"keep"} and out.Domains == {}


def test_selector_named_like_a_number_stays_a_string(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "Domains:\n  a.example:\n    ReportsAccount: x\n    DKIM:\n      Selectors:\n        2026: {}\n"
        "      Sign: ['2026']\nAccounts:\n  x: {}\n",
    )
    assert list(load_desired(p).Domains["a.example"].DKIM.Selectors) == ["2026"]  # type: ignore[union-attr]


def test_docs_complete_example_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "docs" / "desired-state.md").read_text(encoding="utf-8")
    example = text.split("## Complete example")[1].split("```yaml\n")[1].split("```")[0]
    p = tmp_path / "example.yaml"
    p.write_text(example, encoding="utf-8")
    assert main(["validate", str(p)]) == 0
    assert "3 domains (1 internationalized), 4 accounts, 8 addresses, 1 aliases" in capsys.readouterr().out
    assert list(_validator().iter_errors(yaml.safe_load(example))) == []


def test_models_given_the_same_fields_share_one_set_of_their_names() -> None:
    """model_fields_set is shared between models given the same fields (memory at 10,000 domains):
    each still says what was given, and a copy with changes does not change the others."""
    s = DesiredState.model_validate({"Domains": {"a.example": {"ReportsAccount": "x"}, "b.example": {"ReportsAccount": "x"},
                                                 "c.example": {"ReportsAccount": "x", "Description": "c"}}})
    a, b, c = (s.Domains[n] for n in ("a.example", "b.example", "c.example"))
    assert a.model_fields_set == b.model_fields_set == {"ReportsAccount"}
    assert a.model_fields_set is b.model_fields_set
    assert c.model_fields_set == {"ReportsAccount", "Description"}
    changed = a.model_copy(update={"Description": "new"})
    assert changed.model_fields_set == {"ReportsAccount", "Description"}
    assert a.model_fields_set == b.model_fields_set == {"ReportsAccount"}
    with pytest.raises(ValidationError):
        a.Description = "frozen"  # type: ignore[misc]
    assert b.model_fields_set == {"ReportsAccount"}


def test_equal_small_models_of_one_load_are_one_instance(tmp_path: Path) -> None:
    """Loading shares equal selectors, destinations, junk filters (memory at 10,000 domains):
    only equal values given the same fields, nothing outside a load, and the state is the same."""
    account = ("    Domain: a.example\n    Destinations: {{{n}@a.example: {{}}, x{n}@a.example: {{Mailbox: Other}}}}\n"
               "    JunkFilter: {{Threshold: 0.95, Params: {{Onegrams: true, MaxPower: {p}}}}}\n")
    (tmp_path / "a.yaml").write_text(
        "Domains:\n  a.example:\n    ReportsAccount: ann\n    DKIM:\n      Selectors:\n"
        "        s1: {Expiration: 72h, PrivateKeyFile: k.pem}\n        s2: {Expiration: 72h, PrivateKeyFile: k.pem}\n"
        "        s3: {Expiration: 72h, PrivateKeyFile: other.pem}\n        s4: {PrivateKeyFile: k.pem}\n"
        "        s5: {PrivateKeyFile: k.pem, Expiration: ''}\n"
        "Accounts:\n  ann:\n" + account.format(n="ann", p="0.01") + "  bob:\n" + account.format(n="bob", p="0.01")
        + "  cid:\n" + account.format(n="cid", p="-0.0") + "  dan:\n" + account.format(n="dan", p="0.0")
    )
    s = load_desired(tmp_path)
    sel = s.Domains["a.example"].DKIM.Selectors  # type: ignore[union-attr]
    assert sel["s1"] is sel["s2"] and sel["s1"] is not sel["s3"]
    assert sel["s4"] == sel["s5"] and sel["s4"] is not sel["s5"]  # equal, but Expiration given in one only
    ann, bob, cid, dan = (s.Accounts[n] for n in ("ann", "bob", "cid", "dan"))
    assert ann.Destinations["ann@a.example"] is bob.Destinations["bob@a.example"]
    assert ann.Destinations["ann@a.example"] is not ann.Destinations["xann@a.example"]
    assert ann.JunkFilter is bob.JunkFilter and ann.JunkFilter is not cid.JunkFilter
    assert cid.JunkFilter is not dan.JunkFilter  # -0.0 and 0.0 are written differently
    assert str(cid.JunkFilter.Params.MaxPower) == "-0.0"  # type: ignore[union-attr]
    assert s.model_dump() == DesiredState.model_validate(yaml.safe_load((tmp_path / "a.yaml").read_text())).model_dump()
    again = load_desired(tmp_path)
    assert again == s and again.Accounts["ann"].JunkFilter is not ann.JunkFilter  # nothing kept between loads
