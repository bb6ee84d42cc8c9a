"""The fast paths of loading a desired state give what the plain ones gave: the files listed and
read (plain text paths, one directory listing, reads sized by the file), the names shown in
messages, and the desired digest carried from the load instead of reading every file again."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from reconciler.desired import checks, models, yamlload, yamlparse
from reconciler.desired.cache import ParseCache
from reconciler.desired.importer import import_files
from reconciler.desired.includes import read_with_includes
from reconciler.desired.load import LINE_BREAK, load_desired
from reconciler.desired.models import DesiredState
from reconciler.desired.yamlload import YAMLProblem, problems_of, read_source_file, source_files, yaml_names
from reconciler.errors import DesiredStateError
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.pipeline import desired_digest

from . import golden

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "desired"
FLEET = ROOT / "examples" / "fleet"


def reference_digest(path: Path, files: list[Path]) -> str:
    """The desired digest as it was first written: every file read again, named by relpath."""
    base = Path(os.path.abspath(path if path.is_dir() else path.parent))
    h = hashlib.sha256()
    for name, p in sorted((os.path.relpath(p, base), p) for p in files):
        h.update(Path(name).as_posix().encode() + b"\0")
        h.update(Path(p).read_bytes() + b"\0")
    return h.hexdigest()


def reference_files(source: Path) -> list[Path]:
    """The files of a directory as pathlib listed them."""
    return sorted(p for p in source.iterdir() if p.suffix in (".yaml", ".yml") and (p.is_symlink() or p.is_file()))


# ---------------------------------------------------------------------------------------------
# Listing and reading files


def test_yaml_names_list_what_pathlib_listed(tmp_path: Path) -> None:
    for name in ["b.yaml", "a.yml", ".yaml", ".hidden.yaml", "c.YAML", "d.yaml.", "e.json", "f.yaml.bak",
                 "Z.yaml", "é.yaml", "ü.yml", "x..yaml", "10.yaml", "9.yaml"]:
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere")
    (tmp_path / "link.yml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "dirlink.yaml").symlink_to(tmp_path / "dir.yaml")
    os.mkfifo(tmp_path / "fifo.yaml")
    want = reference_files(tmp_path)
    assert len(want) == 12
    assert [tmp_path / n for n in yaml_names(tmp_path)] == want
    assert source_files(tmp_path) == want
    assert source_files(tmp_path / "b.yaml") == [tmp_path / "b.yaml"]


@pytest.mark.parametrize("size", [0, 1, 333, 65535, 65536, 65537, 200_001, yamlload.MAX_FILE_BYTES])
def test_a_file_is_read_whole(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f.yaml").write_bytes(data)
    assert read_source_file(tmp_path / "f.yaml") == data
    assert read_source_file(str(tmp_path / "f.yaml")) == data


def test_a_file_that_grew_since_its_size_was_taken_is_read_to_its_end(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"a" * 1000)
    real_fstat = os.fstat

    def fstat_then_grow(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        with path.open("ab") as f:  # the file grows between fstat and read
            f.write(b"b" * 150_000)
        return st

    monkeypatch.setattr(os, "fstat", fstat_then_grow)
    assert read_source_file(path) == b"a" * 1000 + b"b" * 150_000


def test_displayed_names_are_the_paths_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    for d in (tmp_path, tmp_path / "sub"):
        (d / "a.yaml").write_text("Policy: {}\n")
    monkeypatch.chdir(tmp_path)
    for source in (Path("."), Path("sub"), Path("./sub/"), tmp_path / "sub", Path("sub/a.yaml")):
        reading = read_with_includes(source, tmp_path)
        want = [str(source / "a.yaml")] if source.is_dir() else [str(source)]
        assert [doc.file for doc in reading.docs] == want
        assert reading.paths == [str(tmp_path / ("." if source == Path(".") else "sub") / "a.yaml").replace("/./", "/")]


# ---------------------------------------------------------------------------------------------
# The desired digest


def _copy_fleet(tmp_path: Path) -> Path:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET, fleet)
    return fleet


@pytest.mark.parametrize("case", ["examples", "fleet", "single-file", "hidden-and-relative"])
@pytest.mark.parametrize("cached", [False, True])
def test_the_digest_carried_from_the_load_is_the_digest_of_the_files(
        case: str, cached: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root: Path | None = None
    if case == "examples":
        source = tmp_path / "desired"
        shutil.copytree(EXAMPLES, source)
    elif case == "fleet":  # included files outside the directory: names with ../
        root = _copy_fleet(tmp_path)
        source = root / "instances" / "mail-a"
    elif case == "single-file":
        source = tmp_path / "one.yaml"
        source.write_text("Accounts:\n  ann:\n    Domain: a.example\n    Destinations: {}\n"
                          "Domains:\n  a.example:\n    ReportsAccount: ann\n")
    else:  # a hidden file, a source given relative to the working directory
        shutil.copytree(EXAMPLES, tmp_path / "desired")
        (tmp_path / "desired" / ".extra.yaml").write_text("MonitorDNSBLs: [dnsbl.example]\n")
        monkeypatch.chdir(tmp_path)
        source = Path("desired")
    cache = ParseCache(tmp_path / "cache", "k") if cached else None
    if cache is not None:
        load_desired(source, root, cache)
        cache = ParseCache(tmp_path / "cache", "k")
    state = load_desired(source, root, cache)
    assert cache is None or cache.misses == 0
    want = reference_digest(source, state.paths)
    assert state.digest_at(os.path.abspath(source if source.is_dir() else source.parent)) == want
    assert desired_digest(source, root, desired=state) == want
    assert desired_digest(source, root, files=state.paths) == want
    assert desired_digest(source, root) == want
    assert state.digest_at("/elsewhere") is None


def test_the_digest_of_a_state_is_of_the_bytes_it_was_loaded_from(tmp_path: Path) -> None:
    source = tmp_path / "desired"
    shutil.copytree(EXAMPLES, source)
    state = load_desired(source)
    before = desired_digest(source, desired=state)
    (source / "policy.yaml").write_text((source / "policy.yaml").read_text() + "# edited\n")
    assert desired_digest(source, desired=state) == before  # what was planned, not what is there now
    now = reference_digest(source, state.paths)
    assert now != before
    assert desired_digest(source, files=state.paths) == now
    assert desired_digest(source) == now


def test_the_digest_of_paths_given_unnormalised_names_them_as_relpath_does(tmp_path: Path) -> None:
    source = tmp_path / "desired"
    shutil.copytree(EXAMPLES, source)
    (source / "x").mkdir()
    files = [Path(f"{source}/./policy.yaml"), Path(f"{source}//accounts.yaml"), Path(f"{source}/x/../policy.yaml")]
    assert desired_digest(source, files=files) == reference_digest(source, files)


# ---------------------------------------------------------------------------------------------
# Loading: every fast path against the plain one (no parse cache, so no line-break verdicts
# kept; no model validated from the data of another; every duration parsed)


def _slow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_plain", lambda v: None)
    monkeypatch.setattr(models, "_DURATIONS", {})
    monkeypatch.setattr(models, "_DURATIONS_KEPT", 0)


def _outcome(source: Path, root: Path | None, cache: ParseCache | None) -> tuple[Any, ...]:
    """What a load gives, compared exactly: the state (with where each part was written, its
    files and digest), its values with their types (JSON), its warnings; or its problems."""
    try:
        state = load_desired(source, root, cache)
    except DesiredStateError as e:
        return ("problems", e.problems)
    # the models compared as JSON (a NaN written in the state is not equal to itself)
    return ("state", state.__pydantic_private__, state.model_dump_json(), state.warnings, _sharing(state))


def _sharing(state: DesiredState) -> list[int]:
    """Which of the small models in the state are one instance (each numbered by its first place)."""
    first: dict[int, int] = {}
    out = []

    def walk(v: Any) -> None:
        if isinstance(v, BaseModel):
            out.append(first.setdefault(id(v), len(first)))
            for x in v.__dict__.values():
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(state)
    return out


def assert_fast_equals_slow(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            root: Path | None = None) -> tuple[Any, ...]:
    cache_dir = tmp_path / "fast-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    cold = _outcome(source, root, ParseCache(cache_dir, "k"))
    warm_cache = ParseCache(cache_dir, "k")
    warm = _outcome(source, root, warm_cache)
    assert warm_cache.misses == 0 and warm_cache.hits > 0
    with monkeypatch.context() as m:
        _slow(m)
        slow = _outcome(source, root, None)
    assert cold == slow
    assert warm == slow
    return slow


GOLDEN_STEPS = [s.name[:2] for s in golden.GOLDEN_STEPS]


@pytest.mark.parametrize("step", GOLDEN_STEPS[::3])
def test_states_imported_from_the_golden_configs(step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = read_live(ConfigPaths(golden.build_step_config(golden.golden_step(step), tmp_path / "live")))
    source = tmp_path / "desired"
    source.mkdir()
    for name, text in import_files(live.static, live.dynamic).items():
        (source / name).write_text(text)
    assert assert_fast_equals_slow(source, tmp_path, monkeypatch)[0] == "state"


def test_the_examples_and_the_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert assert_fast_equals_slow(EXAMPLES, tmp_path, monkeypatch)[0] == "state"
    for inst in ("mail-a", "mail-b", "mail-c"):
        assert assert_fast_equals_slow(FLEET / "instances" / inst, tmp_path, monkeypatch, FLEET)[0] == "state"


# Values written in many objects, some in several spellings of one value: (valid, invalid).
_DESTINATIONS = (["{}", "{Mailbox: Inbox}", "{Mailbox: ''}", "null", "{Rulesets: [{MsgFromRegexp: a, Mailbox: b}]}"],
                 ["{Mailbox: 5}", "{Mailbx: x}", "{FullName: \"a\\nb\"}", "{Mailbox: \"x\\ry\"}"])
_JUNK = (["null", "{Threshold: 0.95, Params: {Onegrams: true, MaxPower: 0.01}}",
          "{Threshold: 0.95, Params: {Onegrams: 1, MaxPower: 0.01}}", "{Threshold: 1, Params: {}}",
          "{Threshold: 1.0, Params: {}}", "{Threshold: -0.0}", "{Threshold: 0.0}", "{Threshold: .nan}",
          "{Params: {TopWords: 10}}", "{Params: {TopWords: 10.0}}"],
         ["{Threshold: x}", "{Params: {TopWords: 1.5}}"])
_PERIODS = (["0s", "0h", "24h", "72h0m0s", "1.5h", "'0'"], ["5x", "''", "12", "1.5.h", "0"])
_SELECTORS = (["{Expiration: 72h, PrivateKeyFile: k.pem}", "{Algorithm: ed25519}", "{}", "{Algorithm: rsa}",
               "{Headers: [From, To], Canonicalization: {HeaderRelaxed: true}}",
               "{Headers: [From, To], Canonicalization: {HeaderRelaxed: 1}}"],
              ["{Algorithm: rsa, Expiration: 5q}", "{Algorithm: dsa}"])
_DESCRIPTIONS = (["plain", "x"], ['"two\\nlines"'])


def _generated(tmp_path: Path, seed: int, n: int = 50) -> Path:
    """A state of n domains and accounts, one file per domain, drawn from the pools above (an
    invalid value now and then for odd seeds)."""
    rnd = random.Random(seed)
    bad = 0.03 if seed % 2 else 0.0

    def pick(pool: tuple[list[str], list[str]]) -> str:
        return rnd.choice(pool[1] if rnd.random() < bad else pool[0])

    source = tmp_path / f"gen{seed}"
    source.mkdir()
    accounts = ["Accounts:\n"]
    for i in range(n):
        dom = f"d{i}.example"
        sels = "".join(f"        s{j}: {pick(_SELECTORS)}\n" for j in range(rnd.randint(1, 3)))
        text = (f"Domains:\n  {dom}:\n    ReportsAccount: u{i}\n    DKIM:\n      Selectors:\n{sels}"
                f"      Sign: [s0]\n")
        if rnd.random() < 0.2:
            text += f"    Description: {pick(_DESCRIPTIONS)}\n"
        if rnd.random() < bad:
            text += "    Descripton: typo\n"
        (source / f"domain-{dom}.yaml").write_text(text)
        accounts.append(
            f"  u{i}:\n    Domain: {dom}\n    Destinations:\n      u{i}@{dom}: {pick(_DESTINATIONS)}\n"
            f"      postmaster@{dom}: {pick(_DESTINATIONS)}\n"
            f"    SubjectPass: {{Period: {pick(_PERIODS)}}}\n"
            f"    KeepRetiredMessagePeriod: {pick(_PERIODS)}\n    JunkFilter: {pick(_JUNK)}\n")
    (source / "accounts.yaml").write_text("".join(accounts))
    if rnd.random() < bad * 10:  # a domain defined twice
        (source / "zz-again.yaml").write_text("Domains:\n  d1.example:\n    ReportsAccount: u1\n")
    return source


def test_generated_states_with_values_repeated_in_many_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = [assert_fast_equals_slow(_generated(tmp_path, seed), tmp_path, monkeypatch)[0] for seed in range(8)]
    assert kinds[::2] == ["state"] * 4  # the pools make both kinds: both are compared
    assert kinds[1::2] == ["problems"] * 4, kinds


def test_repeated_invalid_data_is_reported_at_each_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = "".join(f"  u{i}:\n    Domain: a.example\n    Destinations:\n      u{i}@a.example: {{Mailbx: x}}\n"
                       f"    SubjectPass: {{Period: 5x}}\n" for i in range(3))
    (tmp_path / "a.yaml").write_text("Domains:\n  a.example:\n    ReportsAccount: u0\nAccounts:\n" + accounts)
    kind, problems = assert_fast_equals_slow(tmp_path, tmp_path / "c", monkeypatch)
    assert kind == "problems"
    assert [p.split(": ", 1)[1] for p in problems] == [
        "Accounts.u0.Destinations.u0@a.example.Mailbx: unknown key; did you mean Mailbox?",
        'Accounts.u0.SubjectPass.Period: time: unknown unit "x" in duration "5x"',
        "Accounts.u1.Destinations.u1@a.example.Mailbx: unknown key; did you mean Mailbox?",
        'Accounts.u1.SubjectPass.Period: time: unknown unit "x" in duration "5x"',
        "Accounts.u2.Destinations.u2@a.example.Mailbx: unknown key; did you mean Mailbox?",
        'Accounts.u2.SubjectPass.Period: time: unknown unit "x" in duration "5x"',
    ]


def test_line_breaks_are_found_in_cached_files_and_in_changed_ones(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "desired"
    shutil.copytree(EXAMPLES, source)
    assert assert_fast_equals_slow(source, tmp_path, monkeypatch)[0] == "state"
    (source / "z.yaml").write_text('Domains:\n  b.example:\n    ReportsAccount: alice\n    Description: "a\\nb"\n'
                                   '    Aliases:\n      "x\\ry": {Addresses: [alice@example.com]}\n')
    kind, problems = assert_fast_equals_slow(source, tmp_path, monkeypatch)
    assert kind == "problems" and len(problems) == 2 and all(LINE_BREAK in p for p in problems)
    # the file with the line breaks unchanged (from the cache), another one changed
    cache = ParseCache(tmp_path / "c2", "k")
    with pytest.raises(DesiredStateError):
        load_desired(source, None, cache)
    (source / "policy.yaml").write_text((source / "policy.yaml").read_text() + "# changed\n")
    cache = ParseCache(tmp_path / "c2", "k")
    with pytest.raises(DesiredStateError) as e:
        load_desired(source, None, cache)
    assert cache.hits >= 1 and cache.misses == 1 and e.value.problems == problems


# ---------------------------------------------------------------------------------------------
# Parsing: built from the parser's events (one mapping, no anchors, no errors) or composed first


def _parsed(parse: Any, text: str) -> tuple[Any, ...]:
    """What parsing gives, compared exactly: the data with every value's type, the places of
    every key and value; or the problems in their words and places."""
    try:
        doc = parse("f.yaml", text)
    except YAMLProblem as e:
        return ("problems", [p.text() for p in problems_of(e)])
    return ("doc", doc.file, _typed(doc.data), doc.locations.tables())


def _typed(v: Any) -> Any:
    if isinstance(v, dict):
        return ("dict", [(_typed(k), _typed(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("list", [_typed(x) for x in v])
    return (type(v).__name__, repr(v))


_TEXTS = [
    "a: 1\n",
    "Accounts:\n  ann: {Domain: a.example, Destinations: {ann@a.example: {}}}\n",
    "2026: x\n'007': y\n\"a b\": [1, 2.5, -0.0, .inf, .nan, 0x1F, 0o17, 017, 1_000, true, yes, No, ~, null, '']\n",
    "a: !!str 5\nb: !!int '7'\nc: !!float 1\nd: ! 12\ne: !!binary aGk=\nf: 2026-03-04\ng: 2026-03-04T05:06:07Z\n",
    "a: !foo x\nb: !!int x\nc: !!bool maybe\n",
    "a:\n  b: 1\n  b: 2\n  c:\n    d: 1\n    d: 2\n",
    "a: 1\na:\n  b: 1\n  b: 2\n",
    "? [a, b]\n: c\n? {x: 1}\n: {y: 2, y: 3}\nd: 4\n",
    "a: &x 1\nb: 2\n",
    "a: &x 1\nb: &x 2\n",
    "a: &x 1\nb: *x\n",
    "a: [&y 1]\n",
    "a: 1\n---\nb: 2\n",
    "",
    "# only a comment\n",
    "---\n",
    "just a scalar\n",
    "- a\n- b\n",
    "a: b: c\n",
    "a: 1\nb: [1, 2\n",
    "a:\n  b: 1\n  b: 2\nc: [\n",
    "a:\t1\n",
    "a: \"\\x00\"\nb: |\n  two\n  lines\nc: >\n  folded\n  text\n",
    "a: {b: {c: {d: [[[{e: f}]]]}}}\n",
    "a: " + "[" * 70 + "]" * 70 + "\n",
    "a: " + "[" * 63 + "]" * 63 + "\n",
    "a: " + "{b: " * 64 + "1" + "}" * 64 + "\n",
    "a: 1\n? " + "[" * 70 + "]" * 70 + "\n: 2\n",
    "a: 1\nb: 2\na: " + "[" * 70 + "]" * 70 + "\n",
    "a: [1, 2, {b: 3, b: 4}]\nc: {? [x]: 1}\n",
    "é: ü\n\"\\u00e9\": 1\n",
    "a:\n- 1\n- b: 2\n  c: 3\n- - 4\n  - 5\n",
    "a: 1\n...\n",
    "%YAML 1.1\n---\na: 1\n",
    "!!map {a: 1}\n",
    "a: !!seq [1]\nb: !!map {c: 1}\nc: !!set {d, e}\nd: !!omap [{e: 1}]\n",
]


@pytest.mark.parametrize("text", _TEXTS)
def test_a_text_built_from_events_is_what_composing_gives(text: str) -> None:
    assert _parsed(yamlparse.parse_text, text) == _parsed(yamlparse.composed, text)


def _desired_files() -> list[Path]:
    return sorted({*EXAMPLES.glob("*.yaml"), *FLEET.glob("**/*.yaml"), *(ROOT / "tests" / "fixtures").glob("**/*.yaml")})


def test_the_files_of_the_repository_and_generated_states_parse_alike(tmp_path: Path) -> None:
    files = _desired_files() + sorted(_generated(tmp_path, 1, n=20).glob("*.yaml"))
    assert len(files) > 30
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        assert _parsed(yamlparse.parse_text, text) == _parsed(yamlparse.composed, text), path


def test_a_plain_file_is_not_composed(monkeypatch: pytest.MonkeyPatch) -> None:
    def no(name: str, text: str) -> None:
        raise AssertionError("composed")

    monkeypatch.setattr(yamlparse, "composed", no)
    doc = yamlparse.parse_text("f.yaml", (EXAMPLES / "accounts.yaml").read_text())
    assert "Accounts" in doc.data
    with pytest.raises(AssertionError, match="composed"):
        yamlparse.parse_text("f.yaml", "a: &x 1\n")


def test_a_scalar_that_does_not_fit_its_tag_is_a_problem_at_its_place() -> None:
    with pytest.raises(YAMLProblem) as e:
        yamlparse.parse_text("f.yaml", "a: !!int x\nb:\n  c: !!bool maybe\nd: !!timestamp x\ne: !!float y\n")
    assert [p.text() for p in problems_of(e.value)] == [
        "f.yaml:1:4: a: 'x' is not a valid tag:yaml.org,2002:int",
        "f.yaml:3:6: b.c: 'maybe' is not a valid tag:yaml.org,2002:bool",
        "f.yaml:4:4: d: 'x' is not a valid tag:yaml.org,2002:timestamp",
        "f.yaml:5:4: e: 'y' is not a valid tag:yaml.org,2002:float",
    ]


def test_checks_of_text_repeated_in_many_objects_are_reported_at_each_place(tmp_path: Path) -> None:
    """The pure checks remembered across objects (reporting localparts and mailboxes, selector
    names, destination mailboxes) still report at every place, in their words."""
    domain = ("  {d}:\n    ReportsAccount: ann\n    DMARC: {{Localpart: 'a b', Mailbox: \"Cafe\u0301\"}}\n"
              "    TLSRPT: {{Localpart: jos\u00e9}}\n    DKIM: {{Selectors: {{'s 1': {{PrivateKeyFile: k.pem}}}}, Sign: []}}\n")
    (tmp_path / "a.yaml").write_text(
        "Domains:\n" + domain.format(d="a.example") + domain.format(d="b.example")
        + "Accounts:\n  ann:\n    Domain: a.example\n    Destinations:\n"
        + "".join(f"      {u}@{d}: {{Mailbox: \"Cafe\u0301\"}}\n" for u in ("x", "y") for d in ("a.example", "b.example")))
    with pytest.raises(DesiredStateError) as e:
        load_desired(tmp_path)
    fields = [p.split(": ", 2)[1] for p in e.value.problems]
    assert fields == [f"Domains.{d}.{f}" for d in ("a.example", "b.example") for f in
                      ("DMARC.Localpart", "DMARC.Mailbox", "TLSRPT.Localpart", "DKIM.Selectors.s 1")] + [
        f"Accounts.ann.Destinations.{u}@{d}.Mailbox" for u in ("x", "y") for d in ("a.example", "b.example")]
    assert len({p.split(": ", 2)[2] for p in e.value.problems}) == 4


@pytest.mark.parametrize("path", ["dkim/k.pem", "..", "../k", "a/../k", "a\\..\\k", "a/..b/k", "...", "a/...",
                                  "a..b", "dkim/..", "/abs", "\\abs", "a\x01b", "", "a/./k", "a\\..", "..\\k"])
def test_key_file_paths_are_judged_as_by_their_parts(path: str) -> None:
    def reference(p: str) -> str | None:
        if checks._CONTROL.search(p):
            return "must not contain control characters (a file name)"
        if p.startswith("/") or p.startswith("\\"):
            return "must be relative to the config dir"
        if any(part == ".." for part in p.replace("\\", "/").split("/")):
            return "must not contain .. (it would leave the config dir)"
        return None

    assert checks._unsafe_relative_path(path) == reference(path)
