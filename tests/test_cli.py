"""The command line itself: verbs loaded only when chosen, option defaults from MOX_RECONCILER_*
variables (the command line wins, a bad value is one error naming the variable)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import VERBS, build_parser, main
from reconciler.mox.live import DEFAULT_CONFIG

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pydantic", "cryptography", "git", "yaml", "watchfiles", "prometheus_client", "dns", "rich", "filelock")


def modules_after(argv: list[str]) -> set[str]:
    """The top-level packages and reconciler modules a fresh interpreter holds after main(argv)."""
    code = ("import sys\nfrom reconciler.cli.main import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('\\nmodules:', ' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.rsplit("\nmodules:", 1)[1].split())  # after the help text


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_no_verb_and_no_heavy_package(argv: list[str]) -> None:
    loaded = modules_after(argv)
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
    assert not loaded & {v.module for v in VERBS}
    assert "reconciler.cli.main" in loaded  # the check itself works


@pytest.mark.parametrize("verb", [v.name for v in VERBS])
def test_a_verbs_help_imports_no_heavy_package(verb: str) -> None:
    """`plan --help` costs what `--help` does: the options are described without the plan
    document, the mox config types or the record generator (format names are constants)."""
    loaded = modules_after([verb, "--help"])
    assert next(v.module for v in VERBS if v.name == verb) in loaded
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
    assert not loaded & {"reconciler.pipeline", "reconciler.plan.document", "reconciler.mox.config"}


def test_format_names_of_the_help_are_the_renderers() -> None:
    from reconciler.cli.plan import FORMAT_NAMES as PLAN_FORMATS
    from reconciler.cli.records import FORMAT_NAMES as RECORD_FORMATS
    from reconciler.dns.formats import FORMATS as RECORD_RENDERERS
    from reconciler.plan.render import FORMATS as PLAN_RENDERERS

    assert sorted(PLAN_FORMATS) == sorted(PLAN_RENDERERS)
    assert RECORD_FORMATS == RECORD_RENDERERS


def test_a_verb_imports_only_its_own_module() -> None:
    loaded = modules_after(["validate", "--help"])
    assert "reconciler.cli.validate" in loaded
    assert not loaded & {v.module for v in VERBS if v.name != "validate"}


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for verb in VERBS:
        assert f"    {verb.name} " in out and verb.help.split()[0] in out
    assert DEFAULT_CONFIG in out and "MOX_RECONCILER_CONFIG" in out


@pytest.mark.parametrize("verb", [v.name for v in VERBS])
def test_every_verb_has_help_naming_its_variables(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"], environ={})
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mox-reconciler {verb}")
    if verb != "config":  # `config` has only sub-verbs
        assert "[env: MOX_RECONCILER_" in " ".join(out.split())


def parse(argv: list[str], **env: str) -> argparse.Namespace:
    return build_parser({f"MOX_RECONCILER_{k}": v for k, v in env.items()}).parse_args(argv)


def test_environment_gives_defaults_for_every_kind_of_option() -> None:
    args = parse(["watch"], INTERVAL="5m", SOURCE="https://git.example.org/d.git", REF="main", FORCE="yes",
                 CONFIG="/etc/mox/mox.conf", LOG_FORMAT="json", STATUS_FILE="/run/s.json", HEALTH_URL="ignored")
    assert args.interval == 300.0 and args.source == "https://git.example.org/d.git" and args.ref == "main"
    assert args.force is True and args.config == "/etc/mox/mox.conf" and args.log_format == "json"
    assert args.status_file == Path("/run/s.json") and args.debounce == 2.0  # the rest keeps its default
    args = parse(["records"], DOMAIN="a.example, b.example c.example", DNSSEC="auto", FORMAT="zone")
    assert args.domain == ["a.example", "b.example", "c.example"] and args.dnssec == "auto"
    assert args.format == "zone"
    assert parse(["apply"], YES="0", VERIFY="on").yes is False
    assert parse(["apply"], YES="0", VERIFY="on").verify is True


def test_command_line_wins_over_environment() -> None:
    args = parse(["watch", "/srv/desired", "--interval", "30s"], INTERVAL="5m", SOURCE="/elsewhere")
    assert args.interval == 30.0 and args.source == "/srv/desired"
    args = parse(["records", "--domain", "x.example"], DOMAIN="a.example,b.example")
    assert args.domain == ["x.example"]
    # A bad variable the command line overrides is no error.
    assert parse(["watch", "--interval", "1m"], INTERVAL="soon").interval == 60.0


def test_empty_variable_counts_as_unset() -> None:
    args = parse(["apply"], SOURCE="", YES="", REF="")
    assert args.source == "." and args.yes is False and args.ref is None


@pytest.mark.parametrize(("argv", "var", "value", "why"), [
    (["watch"], "INTERVAL", "soon", "invalid duration 'soon'"),
    (["watch"], "INTERVAL", "-5s", "must be positive"),
    (["watch"], "DEBOUNCE", "two", "could not convert string to float"),
    (["apply"], "YES", "maybe", "expected one of 1, true, yes, on, 0, false, no, off"),
    (["plan"], "FORMAT", "yaml", "invalid choice (choose from 'json', 'markdown', 'text')"),
    (["plan"], "LOG_FORMAT", "xml", "invalid choice (choose from 'text', 'json')"),
])
def test_bad_variable_is_one_error_naming_it(argv: list[str], var: str, value: str, why: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv, environ={f"MOX_RECONCILER_{var}": value})
    assert e.value.code == 1  # a usage error; 2 means "changes" / "mismatches"
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"error: environment variable MOX_RECONCILER_{var}={value!r}: " in err and why in err


def test_moxconf_still_names_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """MOXCONF (mox's own variable) is read when neither --config nor MOX_RECONCILER_CONFIG is set."""
    monkeypatch.setenv("MOXCONF", str(tmp_path / "moxconf" / "mox.conf"))
    assert main(["config", "test"], environ={}) == 1
    assert str(tmp_path / "moxconf" / "mox.conf") in capsys.readouterr().err
    assert main(["config", "test"], environ={"MOX_RECONCILER_CONFIG": str(tmp_path / "var" / "mox.conf")}) == 1
    assert str(tmp_path / "var" / "mox.conf") in capsys.readouterr().err


def test_entry_point_runs_as_a_process() -> None:
    """The one true-subprocess check of the entry point: `python -m reconciler` and its exit codes."""
    out = subprocess.run([sys.executable, "-m", "reconciler", "--version"], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("mox-reconciler ")
    out = subprocess.run([sys.executable, "-m", "reconciler", "watch"], capture_output=True, text=True, cwd=ROOT,
                         env={"PATH": "/usr/bin:/bin", "MOX_RECONCILER_INTERVAL": "0s"})
    assert out.returncode == 1
    assert out.stderr == ("mox-reconciler watch: error: environment variable MOX_RECONCILER_INTERVAL='0s': "
                          "duration '0s' must be positive\n")


def test_broken_pipe_is_quiet_only_when_it_is_stdout(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`... | head` closes our stdout: exit 1 and nothing to say. A pipe to a child process (git)
    that breaks is an error, reported as one line, never swallowed as if stdout were closed."""
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "validate", str(ROOT / "examples" / "desired")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1 and err == ""

    import reconciler.cli.validate as verb

    def broken(_args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(verb, "run", broken)
    assert main(["validate", "."]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: internal error: BrokenPipeError: a child process (git?) exited before reading")


def test_one_shot_verbs_run_without_the_cyclic_collector_and_watch_turns_it_back_on(tmp_path: Path) -> None:
    code = ("import gc, sys\nfrom reconciler.cli import main as m\n"
            "real, seen = m.main, []\nm.main = lambda argv: seen.append(gc.isenabled()) or 0\n"
            "try:\n    m.entrypoint()\nexcept SystemExit:\n    pass\n"
            f"real(['--config', {str(tmp_path / 'none' / 'mox.conf')!r}, 'watch', '--once', 'x'])\n"
            "print(seen, gc.isenabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split("\n")[-2] == "[False] True", out.stdout + out.stderr
