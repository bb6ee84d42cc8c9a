"""Where each part of a merged desired state was written, found on demand (`yamlload.Origins`).

Merging keeps, per object, its file's packed locations and its path there instead of copying a
location for every key and value (a desired state of 10,000 files has hundreds of thousands).
These tests hold the lazy lookup to the eager copy it replaced (`eager` below: every location
of every file copied to its merged path, a later copy over an earlier one), for every path of
a state with includes, Removed lists merged from several files and an object defined twice, with
and without the parse cache; and check the messages where a lazy path could differ.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from reconciler.desired import yamlload
from reconciler.desired.cache import ParseCache
from reconciler.desired.includes import read_with_includes
from reconciler.desired.load import _MERGED_LISTS, _MERGED_MAPS, _Merged, load_desired
from reconciler.desired.models import DesiredState
from reconciler.desired.yamlload import Document, Location, Path_
from reconciler.errors import DesiredStateError

FILES = {
    "inst/main.yaml": (
        "Include: [../common]\n"
        "Domains:\n"
        "  a.example:\n"
        "    ReportsAccount: ann\n"
        "    Aliases:\n"
        "      team: {Addresses: [ann@a.example]}\n"
        "Removed:\n"
        "  Accounts: [old1, old2]\n"
    ),
    "inst/extra.yaml": (
        "Accounts:\n"
        "  bob:\n"
        "    Domain: a.example\n"
        "    Destinations: {bob@a.example: {}}\n"
        "Removed:\n"
        "  Accounts: [old3]\n"
        "  Domains: [gone.example]\n"
    ),
    "common/accounts.yaml": (
        "Accounts:\n"
        "  ann:\n"
        "    Domain: a.example\n"
        "    Destinations:\n"
        "      ann@a.example: {}\n"
        "Removed:\n"
        "  Accounts:\n"
        "    - old4\n"
        "MonitorDNSBLs: [dnsbl.example.org]\n"
    ),
    "common/policy.yaml": "Policy:\n  Prune: false\n",
}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def eager(docs: list[Document]) -> tuple[dict[Path_, Location], dict[Path_, Location]]:
    """The merged keys and values as the eager merge copied them (the oracle)."""
    keys: dict[Path_, Location] = {}
    values: dict[Path_, Location] = {}
    data: dict[str, object] = {}

    def take(doc: Document, src: Path_, dst: Path_) -> None:
        dkeys, dvalues = doc.locations.tables()
        for table, mine in ((dkeys, keys), (dvalues, values)):
            for p, (line, col) in table.items():
                if p[: len(src)] == src:
                    mine[dst + p[len(src):]] = Location(doc.file, line, col)

    def define(doc: Document, path: Path_, target: dict[str, object], value: object) -> None:
        if path[-1] not in target:
            target[str(path[-1])] = value
            take(doc, path, path)

    for doc in docs:
        for top, value in copy.deepcopy(doc.data).items():  # merging changes the first file's lists
            if top in _MERGED_MAPS and isinstance(value, dict):
                if top not in data:
                    data[top] = {}
                    k, v = doc.locations.key((top,)), doc.locations.value((top,))
                    assert k is not None and v is not None
                    keys[(top,)], values[(top,)] = k, v
                mine = data[top]
                assert isinstance(mine, dict)
                for name, obj in value.items():
                    define(doc, (top, name), mine, obj)
            elif top in _MERGED_LISTS and isinstance(value, dict) and isinstance(data.get(top), dict):
                lists = data[top]
                assert isinstance(lists, dict)
                for kind, items in value.items():
                    if isinstance(items, list) and isinstance(lists.get(kind), list):
                        offset = len(lists[kind])
                        lists[kind] = lists[kind] + items
                        for i in range(len(items)):
                            take(doc, (top, kind, i), (top, kind, offset + i))
                    else:
                        define(doc, (top, kind), lists, items)
            else:
                define(doc, (top,), data, value)
    return keys, values


@pytest.mark.parametrize("cached", [False, True])
def test_every_path_is_found_where_the_eager_merge_put_it(tmp_path: Path, cached: bool) -> None:
    write(tmp_path, {**FILES, "inst/twice.yaml": "Domains:\n  a.example:\n    Description: again\n"})
    cache = ParseCache(tmp_path / "cache", "k") if cached else None
    if cache is not None:  # parse once, so that the reading below comes from the cache
        read_with_includes(tmp_path / "inst", tmp_path, cache)
        cache.save()
        cache = ParseCache(tmp_path / "cache", "k")
    reading = read_with_includes(tmp_path / "inst", tmp_path, cache)
    assert cache is None or cache.hits == 5
    keys, values = eager(reading.docs)
    merged = _Merged()
    for doc in reading.docs:
        merged.add(doc)
    assert len(keys) > 20 and len(values) > 25
    for path, loc in keys.items():
        assert merged.origins.key(path) == loc, path
    for path, loc in values.items():
        assert merged.origins.value(path) == loc, path
    assert merged.origins.as_dict() == {**values, **keys}
    # a path no file wrote is nowhere; the fallback place is the first value merged
    assert merged.origins.key(("Domains", "nowhere.example")) is None
    assert merged.origins.first_value() == next(iter(values.values()))
    # the object defined twice is reported at both places, the first one kept
    assert merged.problems == [(Location(str(tmp_path / "inst/twice.yaml"), 2, 3), "Domains.a.example",
                                f"defined twice: here and at {tmp_path}/inst/main.yaml:3:3")]
    assert merged.data["Removed"]["Accounts"] == ["old3", "old1", "old2", "old4"]


def problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    write(tmp_path, files)
    with pytest.raises(DesiredStateError) as e:
        load_desired(tmp_path / "inst", tmp_path)
    return [line.replace(f"{tmp_path}/", "") for line in e.value.problems]


def test_problems_in_included_files_and_merged_list_entries_point_at_their_file(tmp_path: Path) -> None:
    files = dict(FILES)
    files["common/accounts.yaml"] += "Removed2: 1\n"
    files["inst/main.yaml"] = files["inst/main.yaml"].replace("[old1, old2]", "[old1, old2, {x: 1}]")
    files["inst/extra.yaml"] = files["inst/extra.yaml"].replace(
        "    Domain: a.example\n", "    Domain: a.example\n    Nonsense: 1\n")
    assert problems(tmp_path, files) == [
        "common/accounts.yaml:10:1: Removed2: unknown key; did you mean Removed?",
        "inst/extra.yaml:4:5: Accounts.bob.Nonsense: unknown key (not a mox or reconciler field; typo?)",
        "inst/main.yaml:8:26: Removed.Accounts.3: Input should be a valid string",
    ]


def _with_a_plain_secret(tmp_path: Path) -> DesiredState:
    """FILES with a secret written in inst/extra.yaml (a warning after loading), loaded."""
    files = dict(FILES)
    files["inst/extra.yaml"] = files["inst/extra.yaml"].replace(
        "    Domain: a.example\n",
        "    Domain: a.example\n    OutgoingWebhook: {URL: 'https://h.example/', Authorization: plain}\n")
    write(tmp_path, files)
    return load_desired(tmp_path / "inst", tmp_path)


def test_checks_and_warnings_after_loading_point_at_the_merged_place(tmp_path: Path) -> None:
    files = dict(FILES)
    # the fourth Removed.Accounts entry (common/accounts.yaml's, after extra.yaml's one and main.yaml's two) names an account
    # the desired state defines: the check's path is the merged index
    files["common/accounts.yaml"] = files["common/accounts.yaml"].replace("- old4", "- ann")
    assert problems(tmp_path, files) == [
        "common/accounts.yaml:8:7: Removed.Accounts.3: ann is both defined and listed as removed",
    ]
    state = _with_a_plain_secret(tmp_path)
    assert [w.replace(f"{tmp_path}/", "") for w in state.warnings] == [
        "inst/extra.yaml:4:65: Accounts.bob.OutgoingWebhook.Authorization: a secret written in the desired "
        "state is in git; use a secret reference, " + w.split("secret reference, ", 1)[1] for w in state.warnings
    ]
    assert str(state.where("Removed", "Accounts", 0)) == f"{tmp_path}/inst/extra.yaml:7:14"
    assert str(state.where("Removed", "Accounts", 3)) == f"{tmp_path}/common/accounts.yaml:8:7"
    assert str(state.where("Accounts", "ann", "Destinations", "ann@a.example")) == \
        f"{tmp_path}/common/accounts.yaml:5:7"
    assert state.where("Accounts", "nobody") is None


def test_no_file_stays_unpacked_after_loading(tmp_path: Path) -> None:
    """Loading unpacks files' locations to report problems and warnings, and packs them again
    before returning (a large file's tables weigh tens of megabytes); a later lookup still works."""
    state = _with_a_plain_secret(tmp_path)
    assert state.warnings  # a location was looked up
    last = yamlload._unpacked() if yamlload._unpacked is not None else None
    assert last is None or last._tables is None
    assert str(state.where("Accounts", "bob")) == f"{tmp_path}/inst/extra.yaml:2:3"
