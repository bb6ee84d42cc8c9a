"""The sconf codec against mox's own files: byte-exact reads and writes, mox's parse errors."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.mox import sconf
from reconciler.mox.config import (
    DKIM,
    Account,
    Alias,
    Domain,
    Dynamic,
    JunkFilter,
    JunkParams,
    Static,
)
from reconciler.mox.sconf import Kind, SconfError, WriteRefused, kind_of

from .conftest import FIXTURES, GOLDEN, GOLDEN_STEPS

GOLDEN_DOMAINS_CONFS = [s / "domains.conf" for s in GOLDEN_STEPS]
GOLDEN_MOX_CONF = GOLDEN / "instance" / "config" / "mox.conf"


@pytest.mark.parametrize("path", GOLDEN_DOMAINS_CONFS, ids=lambda p: p.parent.name)
def test_golden_domains_conf_round_trips_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    cfg = sconf.parse_bytes(data, Dynamic, str(path))
    assert sconf.write_bytes(cfg) == data


def test_golden_mox_conf_reads_and_writes_in_schema_order() -> None:
    """mox never writes mox.conf; the golden one is hand-written in another key order.

    Our writer puts keys where sconf.Write puts them (struct order, sorted map keys). The
    canonical fixture is the golden file re-ordered by hand: same lines, other order.
    """
    data = GOLDEN_MOX_CONF.read_bytes()
    canonical = (FIXTURES / "mox.conf.canonical").read_bytes()
    static = sconf.parse_bytes(data, Static, str(GOLDEN_MOX_CONF))
    assert sconf.write_bytes(static) == canonical
    assert sorted(data.splitlines()) == sorted(canonical.splitlines())
    assert sconf.parse_bytes(canonical, Static) == static
    assert sconf.write_bytes(sconf.parse_bytes(canonical, Static)) == canonical


def _fields_with_optional_marks(text: str) -> list[str]:
    """Describe-file lines, each key line marked with whether its comment says (optional)."""
    out, optional = [], False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("#"):
            optional = optional or "(optional)" in stripped
            continue
        if not stripped:
            continue
        out.append(line + ("  [optional]" if optional else ""))
        optional = False
    return out


def _describe_with_marks(cls: type) -> list[str]:
    """Our schema rendered like `mox config describe-*`, optional fields marked from metadata."""
    lines = [line for line in sconf.describe(cls).split("\n") if line]
    marked: list[str] = []
    stack: list[Kind] = [kind_of(cls)]
    for line in lines:
        depth = len(line) - len(line.lstrip("\t"))
        del stack[depth + 1 :]
        key = line.strip().split(":", 1)[0]
        parent = stack[depth] if depth < len(stack) else None
        spec = parent.by_name.get(key) if parent is not None and parent.tag == "struct" else None
        marked.append(line + ("  [optional]" if spec is not None and spec.optional else ""))
        child: Kind | None = None
        if spec is not None:
            child = spec.kind
        elif parent is not None and parent.tag in ("map", "list"):
            child = parent.elem
        while child is not None and child.tag in ("ptr", "list") and child.elem is not None:
            if child.tag == "list" and not (line.strip().startswith("-")):
                break
            child = child.elem
        if (child is not None and child.tag == "map" and child.elem is not None and key != "x") or (child is not None and child.tag == "list"):
            stack.append(child)
        else:
            stack.append(child if child is not None else Kind("str"))
    return marked


@pytest.mark.parametrize(
    ("cls", "name"), [(Dynamic, "describe-domains.conf"), (Static, "describe-static.conf")]
)
def test_schema_matches_mox_describe(cls: type, name: str) -> None:
    """Field names, order, types (by their zero values) and required/optional equal mox's schema."""
    want = [line.removesuffix("  [optional]") for line in _fields_with_optional_marks(
        (GOLDEN / "schema" / name).read_text())]
    got = [line for line in sconf.describe(cls).split("\n") if line]
    assert got == want


@pytest.mark.parametrize(
    ("cls", "name"), [(Dynamic, "describe-domains.conf"), (Static, "describe-static.conf")]
)
def test_schema_optional_marks_match_mox(cls: type, name: str) -> None:
    want = _fields_with_optional_marks((GOLDEN / "schema" / name).read_text())
    want_struct_fields = [w for w in want if not w.strip().startswith(("-", "x:"))]
    got = [g for g in _describe_with_marks(cls) if not g.strip().startswith(("-", "x:"))]
    assert got == want_struct_fields


# --- malformed input: mox's messages and line numbers -------------------------------------

BOOTSTRAP = "Domains:\n\tmail.example.org: nil\nAccounts:\n\tadmin:\n\t\tDomain: mail.example.org\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("Domains:\n  mail.example.org: nil\n", 2, "expected indent"),
        ("Domains:\n\tmail.example.org: nil\n    Accounts:\n", 3,
         "key in struct starting with space (perhaps mixed tab/space indenting)"),
        ("Domains:\n\tmail.example.org: nil\n    Accounts\n", 3,
         'missing colon for struct key/value on non-empty line "    Accounts" '
         "(perhaps mixed tab/space indenting)"),
        (BOOTSTRAP + "Foo: bar\n", 6, 'unknown key "Foo"'),
        (BOOTSTRAP.replace("\t\tDomain:", "\t\t\tDomain:"), 5,
         'unknown key "\\tDomain" (perhaps stray whitespace in key)'),
        (BOOTSTRAP + "Domains:\n\tx.example: nil\n", 6, "duplicate key in struct"),
        ("Domains:\n\ta.example: nil\n\ta.example: nil\n", 3, "duplicate key in map"),
        (BOOTSTRAP.replace("admin:\n", "admin:\n\t\tKeepRejects: maybe\n"), 5,
         'bad boolean value "maybe"'),
        (BOOTSTRAP.replace("admin:\n", "admin:\n\t\tQuotaMessageSize: 1_000\n"), 5,
         'parsing integer: strconv.ParseInt: parsing "1_000": invalid syntax'),
        (BOOTSTRAP.replace("admin:\n", "admin:\n\t\tKeepRetiredMessagePeriod: 3d\n"), 5,
         'parsing duration: time: unknown unit "d" in duration "3d"'),
        (BOOTSTRAP.replace("admin:\n", "admin:\n\t\tJunkFilter:\n\t\t\tThreshold: x\n"), 6,
         'parsing float: strconv.ParseFloat: parsing "x": invalid syntax'),
        ("Domains:\n\tmail.example.org: nil\nAccounts:\n\tadmin:\n", 4, "expected indent"),
        ("Domains:\n\tmail.example.org: nil\nAccounts:\n\tadmin:\n\t\tFullName: x\n", 5,
         'missing required key "Domain"'),
        ("Domains:\n\tmail.example.org: nil\n", 2, 'missing required key "Accounts"'),
        ("Domains:\n", 1, "expected indent"),
        ("Domains: nil\n", 1, "expected indent"),
        ("Domains:\n\tx:\nAccounts:\n", 3, "expected indent"),
        ("Domains:x\n", 1, "missing space after colon in struct"),
        ("Domains:\n\ta.example:nil\n", 2, "missing space after colon in map"),
        (BOOTSTRAP + "MonitorDNSBLs:\n\t-x\n", 7, "missing space after -"),
        (BOOTSTRAP + "MonitorDNSBLs:\n\tx\n", 7, 'expected item, prefix "\\t-", saw "\\tx"'),
        (BOOTSTRAP + "\t\n", 6, 'missing colon for map key/value on non-empty line "\\t" (perhaps stray whitespace)'),
        (BOOTSTRAP.replace("Accounts:", "\nAccounts:") + " \n", 7,
         'missing colon for struct key/value on non-empty line " " (perhaps stray whitespace)'),
        (": x\n", 1, "empty key in struct"),
        (" Domains: x\n", 1, "key in struct starting with space (perhaps mixed tab/space indenting)"),
    ],
)
def test_parse_errors_match_sconf(text: str, line: int, message: str) -> None:
    with pytest.raises(SconfError) as exc:
        sconf.parse(text, Dynamic, "domains.conf")
    assert (exc.value.line, exc.value.message) == (line, message)
    assert str(exc.value) == f"domains.conf:{line}: {message}"


def test_comments_blank_lines_and_missing_final_newline_are_accepted() -> None:
    text = "# top\n\nDomains:\n\t# a comment at any indentation\n\tmail.example.org: nil\n" \
           "Accounts:\n\n\tadmin:\n\t\tDomain: mail.example.org"
    cfg = sconf.parse(text, Dynamic)
    assert sconf.write(cfg) == BOOTSTRAP


def test_trailing_comment_is_part_of_the_value() -> None:
    cfg = sconf.parse(BOOTSTRAP.replace("Domain: mail.example.org", "Domain: a # b"), Dynamic)
    assert cfg.Accounts["admin"].Domain == "a # b"


def test_bom_and_crlf_are_reported_with_a_line() -> None:
    with pytest.raises(SconfError, match=r"^d.conf:1: .*byte order mark"):
        sconf.parse_bytes(b"\xef\xbb\xbf" + BOOTSTRAP.encode(), Dynamic, "d.conf")
    with pytest.raises(SconfError, match=r"^d.conf:1: carriage return"):
        sconf.parse_bytes(BOOTSTRAP.replace("\n", "\r\n").encode(), Dynamic, "d.conf")


def test_invalid_utf8_survives_a_round_trip() -> None:
    data = BOOTSTRAP.replace("Domain: mail.example.org", "Domain: mail.example.org").encode()
    data = data + b"\t\tDescription: \xff\xfe\n"
    assert sconf.write_bytes(sconf.parse_bytes(data, Dynamic)) == data


def test_nil_means_zero_value_even_with_required_fields() -> None:
    cfg = sconf.parse("Domains:\n\td.example: nil\nAccounts:\n\ta: nil\n", Dynamic)
    assert cfg.Accounts["a"] == Account()
    # Account has a required field, so it is written out, not as nil.
    assert sconf.write(cfg) == "Domains:\n\td.example: nil\nAccounts:\n\ta:\n\t\tDomain: \n"


def test_float_and_duration_are_normalized_like_mox() -> None:
    text = BOOTSTRAP.replace(
        "admin:\n",
        "admin:\n\t\tKeepRetiredMessagePeriod: 72h\n\t\tJunkFilter:\n\t\t\tThreshold: 0.95\n"
        "\t\t\tParams:\n\t\t\t\tMaxPower: 1e-7\n\t\t\t\tTopWords: 10\n",
    )
    out = sconf.write(sconf.parse(text, Dynamic))
    assert "\t\tKeepRetiredMessagePeriod: 72h0m0s\n" in out
    assert "\t\t\tThreshold: 0.950000\n" in out
    assert "\t\t\t\tMaxPower: 0.000000\n" in out


def test_keys_are_sorted_bytewise_and_fields_in_schema_order() -> None:
    text = ("Accounts:\n\tz:\n\t\tDomain: b.example\n\t\tDescription: d\n\tA:\n\t\tDomain: b.example\n"
            "Domains:\n\tb.example: nil\n\tB.example: nil\n\tä.example: nil\n")
    assert sconf.write(sconf.parse(text, Dynamic)) == (
        "Domains:\n\tB.example: nil\n\tb.example: nil\n\tä.example: nil\nAccounts:\n"
        "\tA:\n\t\tDomain: b.example\n\tz:\n\t\tDomain: b.example\n\t\tDescription: d\n"
    )


# --- refusing to write what mox could not read back ---------------------------------------

def _bootstrap() -> Dynamic:
    return sconf.parse(BOOTSTRAP, Dynamic)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: dataclasses.replace(c, Domains={}), "required map is empty"),
        (lambda c: dataclasses.replace(c, Accounts={}), "required map is empty"),
        (lambda c: dataclasses.replace(c, WebDomainRedirects={"^(?:a|b)$": "x"}), "contains ':'"),
        (lambda c: dataclasses.replace(c, WebDomainRedirects={"#x": "y"}), "read as a comment"),
        (lambda c: dataclasses.replace(c, WebDomainRedirects={"a": "nil"}), "'nil'"),
        (lambda c: dataclasses.replace(c, WebDomainRedirects={"": "y"}), "empty map key"),
        # Found by the write-read-write property: after the first account's fields, "\t\tb:" reads
        # as an (empty-keyed) field of that account.
        (lambda c: dataclasses.replace(c, Accounts={"a": Account(Domain="x"), "\tb": Account(Domain="x")}),
         "starts with a tab"),
        (lambda c: dataclasses.replace(
            c, Accounts={"admin": Account(Domain="a\nb")}), "multiline"),
        (lambda c: dataclasses.replace(
            c, Domains={"d": Domain(Aliases={"team": Alias()})}), "required list is empty"),
        (lambda c: dataclasses.replace(
            c, Domains={"d": Domain(DKIM=DKIM(Sign=("a",)))}), "required map is empty"),
    ],
)
def test_write_refuses_unreadable_output(change: Any, message: str) -> None:
    with pytest.raises(WriteRefused, match=message):
        sconf.write(change(_bootstrap()))


def test_write_refusal_names_the_place() -> None:
    cfg = dataclasses.replace(_bootstrap(), Accounts={"admin": Account(Domain="a\nb")})
    with pytest.raises(WriteRefused) as exc:
        sconf.write(cfg)
    assert str(exc.value).startswith("Accounts.admin.Domain:")


def test_pointer_to_zero_struct_is_omitted() -> None:
    cfg = dataclasses.replace(
        _bootstrap(), Accounts={"admin": Account(Domain="x", JunkFilter=JunkFilter(Params=JunkParams()))})
    assert "JunkFilter" not in sconf.write(cfg)


# --- property: write -> read -> write is stable --------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n"), max_size=12)
# What the writer accepts as a map key (test_write_refuses_unreadable_output covers the others).
_KEY = _TEXT.filter(lambda k: k != "" and ":" not in k and not k.strip().startswith("#") and not k.startswith("\t"))


# Text the writer must refuse or cannot encode too: newlines, "nil", a colon, a leading tab or
# '#', surrogates (for `wild` strategies).
_WILD_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n"), max_size=6),
    st.sampled_from(["", "nil", "a\nb", "a:b", "\tx", " #c", "#", "\udcff", "\ud800", "x\udce9y"]),
)


def _strategy(kind: Kind, depth: int = 0, *, wild: bool = False) -> st.SearchStrategy[Any]:
    """Values of the schema node that write and read back stably; `wild`: any value, including
    the ones the writer must refuse (empty required lists and maps, unreadable keys and text)."""
    tag = kind.tag
    if tag == "str":
        return _WILD_TEXT if wild else _TEXT
    if tag == "bool":
        return st.booleans()
    if tag == "int":
        return st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
    if tag == "float":
        if wild:
            return st.floats() | st.sampled_from([0.0, -0.0])
        # %f keeps six decimals (as mox): values finer than that change on the first write, by
        # design (see test_float_and_duration_are_normalized_like_mox). Generate stable ones.
        return st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12).map(
            lambda f: float(f"{f:f}"))
    if tag == "duration":
        from reconciler.mox.golang import Duration

        return st.integers(min_value=-(1 << 63) + 1, max_value=(1 << 63) - 1).map(Duration)
    assert kind.elem is not None or kind.cls is not None
    low = 0 if wild else 1
    if tag == "ptr":
        assert kind.elem is not None
        return st.none() | _strategy(kind.elem, depth, wild=wild)
    if tag == "list":
        assert kind.elem is not None
        return st.lists(_strategy(kind.elem, depth + 1, wild=wild), min_size=low,
                        max_size=2 if depth < 2 else 1).map(tuple)
    if tag == "map":
        assert kind.elem is not None
        values = _strategy(kind.elem, depth + 1, wild=wild)
        if kind.elem.tag == "str" and not wild:
            values = values.filter(lambda v: v != "nil")
        return st.dictionaries(_WILD_TEXT if wild else _KEY, values, min_size=low, max_size=2 if depth < 2 else 1)
    assert kind.cls is not None
    return st.builds(kind.cls, **{f.name: _strategy(f.kind, depth + 1, wild=wild) for f in kind.fields})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_strategy(kind_of(Dynamic)))
def test_write_read_write_is_stable(cfg: Dynamic) -> None:
    first = sconf.write(cfg)
    again = sconf.parse(first, Dynamic)
    assert sconf.write(again) == first
    assert sconf.parse(sconf.write(again), Dynamic) == again


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_strategy(kind_of(Static)))
def test_static_write_read_write_is_stable(cfg: Static) -> None:
    first = sconf.write(cfg)
    assert sconf.write(sconf.parse(first, Static)) == first


# --- writing again only what changed (sconf.write_bytes_reusing)


def _mixed(base: Dynamic, other: Dynamic, take: list[bool]) -> Dynamic:
    """`base` (its entries shared, by identity) with some entries replaced, added or removed from `other`."""
    choices = iter(take * 8)
    out: dict[str, Any] = {}
    for field in ("Domains", "Accounts"):
        mine: dict[str, Any] = dict(getattr(base, field))
        for k, v in getattr(other, field).items():
            if next(choices, False):
                mine[k] = v
        for k in sorted(mine):
            if len(mine) > 1 and next(choices, False) and k not in getattr(other, field):
                del mine[k]
        out[field] = mine
    return dataclasses.replace(base, **out)


@pytest.mark.parametrize("path", GOLDEN_DOMAINS_CONFS, ids=lambda p: p.parent.name)
def test_reusing_writer_equals_the_writer_on_golden_configs(path: Path) -> None:
    data = path.read_bytes()
    parsed = sconf.parse_bytes(data, Dynamic, str(path))
    assert sconf.write_bytes_reusing(parsed, data, parsed) == data
    for other_path in GOLDEN_DOMAINS_CONFS[::4]:
        other = sconf.parse_bytes(other_path.read_bytes(), Dynamic)
        for take in ([True], [False, True], [True, True, False]):
            mixed = _mixed(parsed, other, take)
            assert sconf.write_bytes_reusing(mixed, data, parsed) == sconf.write_bytes(mixed)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_strategy(kind_of(Dynamic)), _strategy(kind_of(Dynamic)), st.lists(st.booleans(), min_size=1, max_size=5))
def test_reusing_writer_equals_the_writer_on_random_configs(first: Dynamic, second: Dynamic,
                                                            take: list[bool]) -> None:
    text = sconf.write(first)
    parsed = sconf.parse(text, Dynamic)  # as an apply has it: the file read back
    before = text.encode("utf-8", "surrogateescape")
    mixed = _mixed(parsed, second, take)
    try:
        full = sconf.write_bytes(mixed)
    except WriteRefused as e:
        with pytest.raises(WriteRefused, match=re.escape(str(e).split(":")[0])):
            sconf.write_bytes_reusing(mixed, before, parsed)
        return
    assert sconf.write_bytes_reusing(mixed, before, parsed) == full
