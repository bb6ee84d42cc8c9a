"""`mox-reconciler config test|dump` through the CLI, on golden configs and on broken ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli.main import main

from .conftest import GOLDEN_STEPS, build_step_config


@pytest.mark.parametrize("step", GOLDEN_STEPS, ids=lambda p: p.name)
def test_config_dump_prints_golden_domains_conf(step: Path, tmp_path: Path,
                                                capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    mox_conf = build_step_config(step, tmp_path)
    assert main(["--config", str(mox_conf), "config", "dump"]) == 0
    assert capsysbinary.readouterr().out == (step / "domains.conf").read_bytes()


@pytest.mark.parametrize("step", GOLDEN_STEPS, ids=lambda p: p.name)
def test_config_test_accepts_golden(step: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf = build_step_config(step, tmp_path)
    assert main(["--config", str(mox_conf), "config", "test"]) == 0
    assert capsys.readouterr().out == "config OK\n"


def test_moxconf_environment_variable_names_the_config(golden_config: Callable[[str], Path],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MOXCONF", str(golden_config("17")))
    assert main(["config", "test"]) == 0
    assert capsys.readouterr().out == "config OK\n"


def test_default_config_path_is_config_mox_conf(golden_config: Callable[[str], Path],
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf = golden_config("17")
    monkeypatch.delenv("MOXCONF", raising=False)
    monkeypatch.chdir(mox_conf.parent.parent)
    assert main(["config", "test"]) == 0
    monkeypatch.chdir(mox_conf.parent)
    assert main(["config", "test"]) == 1
    assert "config/mox.conf: file not found" in capsys.readouterr().err


def test_config_test_reports_every_error(golden_config: Callable[[str], Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf = golden_config("17")
    domains = mox_conf.parent / "domains.conf"
    text = domains.read_text()
    text = text.replace("\t\t\tMode: enforce\n", "\t\t\tMode: sometimes\n", 1)
    text = text.replace("\t\tRejectsMailbox: Rejects\n", "\t\tRejectsMailbox: INBOX\n", 1)
    domains.write_text(text)
    assert main(["--config", str(mox_conf), "config", "test"]) == 1
    err = capsys.readouterr().err
    assert 'invalid mtasts mode "sometimes"' in err
    assert "cannot set RejectsMailbox to inbox" in err


MALFORMED = [
    ("bad indentation", "Domains:\n\tmail.example.org: nil\nAccounts:\n\tadmin:\n\tDomain: x\n", 5,
     "expected indent"),
    ("too deep", "Domains:\n\tmail.example.org: nil\nAccounts:\n\tadmin:\n\t\t\tDomain: x\n", 5,
     'unknown key "\\tDomain" (perhaps stray whitespace in key)'),
    ("spaces instead of tabs", "Domains:\n    mail.example.org: nil\n", 2, "expected indent"),
    ("unknown key", "Domains:\n\tmail.example.org: nil\nAccounts:\n\tadmin:\n\t\tDomian: x\n", 5,
     'unknown key "Domian"'),
    ("duplicate key", "Domains:\n\tmail.example.org: nil\n\tmail.example.org: nil\n", 3, "duplicate key in map"),
    ("bad value type", "Domains:\n\tmail.example.org:\n\t\tDisabled: yes\n", 3, 'bad boolean value "yes"'),
]


@pytest.mark.parametrize(("name", "text", "line", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize("verb", ["test", "dump"])
def test_malformed_sconf_is_one_line_with_file_and_line(
    name: str, text: str, line: int, message: str, verb: str, golden_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    mox_conf = golden_config("00")
    domains = mox_conf.parent / "domains.conf"
    domains.write_text(text)
    before = domains.read_bytes()
    assert main(["--config", str(mox_conf), "config", verb]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"error: {domains}:{line}: {message}\n"
    assert "Traceback" not in err
    assert domains.read_bytes() == before


def test_mox_conf_errors_name_mox_conf(golden_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    mox_conf = golden_config("00")
    mox_conf.write_text(mox_conf.read_text().replace("LogLevel: info", "LogLevel: info\nFoo: bar"))
    assert main(["--config", str(mox_conf), "config", "test"]) == 1
    assert capsys.readouterr().err == f'error: {mox_conf}:4: unknown key "Foo"\n'
