"""import -> validate -> load round trip on every golden mox config: adopting mox gives an empty diff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.desired import importer
from reconciler.desired.load import load_desired
from reconciler.mox import sconf
from reconciler.mox.config import Dynamic
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.mox.validate import validate_dynamic

from .conftest import GOLDEN_STEPS

STEPS = [s.name for s in GOLDEN_STEPS]


def _import_dir(mox_conf: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(mox_conf), "import", "-o", str(out)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("step", STEPS)
def test_import_validate_roundtrip(
    step: str, golden_config: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mox_conf = golden_config(step[:2])
    live = read_live(ConfigPaths(mox_conf))
    out = tmp_path / "desired"
    _import_dir(mox_conf, out, capsys)

    # validate succeeds and counts what is there
    assert main(["validate", str(out)]) == 0
    line = capsys.readouterr().out
    assert f"{len(live.dynamic.Domains)} domains" in line
    assert f"{len(live.dynamic.Accounts)} accounts" in line

    # loaded back, the desired state means exactly the live domains and accounts, even without
    # the live config to fill in defaults (so the plan is empty)
    state = load_desired(out)
    assert set(state.Domains) == set(live.dynamic.Domains)
    again = state.to_dynamic(live.static, None)
    assert again == live.dynamic
    with_live = state.to_dynamic(live.static, live.dynamic)
    assert with_live == live.dynamic
    # ... and it is a config mox accepts, byte-identical when written
    assert validate_dynamic(live.static, again, mox_conf.parent).errors == []
    assert sconf.write_bytes(again) == live.dynamic_bytes

    # importing what it means gives the same files (a fixed point)
    files = importer.import_files(live.static, again)
    assert files == {p.name: p.read_text(encoding="utf-8") for p in sorted(out.iterdir())}


def test_import_single_file_and_stdout(
    golden_config: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mox_conf = golden_config("14")
    assert main(["--config", str(mox_conf), "import", "--schema", "schema.json"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# yaml-language-server: $schema=schema.json\n")
    one = tmp_path / "all.yaml"
    assert main(["--config", str(mox_conf), "import", "-o", str(one), "--schema", "schema.json"]) == 0
    assert one.read_text(encoding="utf-8") == text
    live = read_live(ConfigPaths(mox_conf))
    assert load_desired(one).to_dynamic(live.static, None) == live.dynamic


def test_import_refuses_to_overwrite(
    golden_config: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mox_conf = golden_config("09")
    out = tmp_path / "d"
    _import_dir(mox_conf, out, capsys)
    before = (out / "accounts.yaml").read_text()
    (out / "accounts.yaml").write_text("# edited\n" + before)
    assert main(["--config", str(mox_conf), "import", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and ".yaml: exists (use --force to overwrite)" in err
    assert (out / "accounts.yaml").read_text().startswith("# edited")
    assert main(["--config", str(mox_conf), "import", "-o", str(out), "--force"]) == 0
    assert (out / "accounts.yaml").read_text() == before


def test_import_is_minimal_for_domain_add_defaults(
    golden_config: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A domain and account made by `mox config domain add` import as their differences only."""
    mox_conf = golden_config("01")
    out = tmp_path / "d"
    _import_dir(mox_conf, out, capsys)
    dom = (out / "domain-example.org.yaml").read_text()
    assert "ReportsAccount: alice" in dom
    for absent in ("ClientSettingsDomain", "LocalpartCatchallSeparator", "DMARC", "TLSRPT"):
        assert absent not in dom
    assert "PolicyID:" in dom and "PrivateKeyFile: dkim/2026a._domainkey.example.org." in dom
    accounts = (out / "accounts.yaml").read_text()
    alice = accounts[accounts.index("  alice:") :]
    assert "JunkFilter" not in alice and "RejectsMailbox" not in alice
    assert "alice@example.org: {}" in alice


def test_global_routes_and_dnsbls_round_trip(
    golden_config: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mox_conf = golden_config("17")
    dc = mox_conf.parent / "domains.conf"
    dc.write_text(dc.read_text() + "MonitorDNSBLs:\n\t- dnsbl.example\n")
    live = read_live(ConfigPaths(mox_conf))
    assert live.dynamic.MonitorDNSBLs == ("dnsbl.example",)
    out = tmp_path / "d"
    _import_dir(mox_conf, out, capsys)
    assert (out / "global.yaml").exists()
    assert load_desired(out).to_dynamic(live.static, Dynamic()) == live.dynamic
