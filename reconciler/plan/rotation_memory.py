"""What DKIM rotation remembers between runs: when selectors were made, started and stopped
signing, and when their DNS records were seen. One small JSON file beside the inventory.

Everything else a rotation needs is read again on every run (the live config, the key files, DNS),
so this file holds only what cannot be read back: times. Losing it is safe: every unknown time
becomes "now" when next noticed, so waits start over (a switch or a retirement comes later, never
earlier) and nothing is removed early. `remember` folds the live selectors in; `observe` folds in
one DNS check. Both are pure; `read_memory`/`write_memory` do the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconciler.errors import REPORTED, LiveConfigError
from reconciler.fsutil import SharedDir
from reconciler.mox import config as mc
from reconciler.mox.keygen import parse_key_name

MEMORY_FILE = "mox-reconciler.dkim-rotation.json"
VERSION = 1


class Seen(StrEnum):
    """What one DNS check found for one selector's record."""

    PRESENT = "present"  # the record with the selector's public key
    MISSING = "missing"  # no DKIM record at the name
    DIFFERENT = "different"  # DKIM records at the name, none with this key
    FAILED = "failed"  # the check itself failed (timeout, SERVFAIL): tells nothing


@dataclass(frozen=True, slots=True)
class Answer:
    seen: Seen
    detail: str = ""  # the error of a failed check, the values of a different record
    value: str = ""  # a digest of the record expected (a new key restarts the sightings)


@dataclass(frozen=True, slots=True)
class SelectorMemory:
    """One live selector of a rotating domain."""

    created: datetime | None = None  # from the key file name, else when first noticed
    signing_since: datetime | None = None  # when first noticed in Sign
    retiring_since: datetime | None = None  # when noticed out of Sign after signing, or as an old spare
    record: str | None = None  # the TXT value the sightings below are of
    first_seen: datetime | None = None  # start of the current unbroken run of sightings
    last_seen: datetime | None = None
    missing_since: datetime | None = None  # first check that did not find it, since the last sighting


@dataclass(frozen=True, slots=True)
class Retired:
    """A selector the rotation (or someone) removed; its DNS record is to be deleted."""

    at: datetime
    record_removed: bool = False


@dataclass(frozen=True, slots=True)
class DomainMemory:
    selectors: Mapping[str, SelectorMemory] = field(default_factory=dict)
    retired: Mapping[str, Retired] = field(default_factory=dict)
    stage: str | None = None  # the stage last recorded, to tell a change


Memory = Mapping[str, DomainMemory]


# ---------------------------------------------------------------------------------------------
# Folding in the live config and DNS


def remember(mem: DomainMemory, dkim: mc.DKIM, now: datetime) -> DomainMemory:
    """`mem` brought up to date with the live selectors: unknown times become `now`, selectors
    that left the config become retired (their record is to be deleted)."""
    signing = set(dkim.Sign)
    selectors: dict[str, SelectorMemory] = {}
    for name, sel in dkim.Selectors.items():
        m = mem.selectors.get(name, SelectorMemory())
        key = parse_key_name(sel.PrivateKeyFile)
        created = key.created if key is not None else (m.created or now)
        if name in signing:
            m = replace(m, signing_since=m.signing_since or now, retiring_since=None)
        elif m.signing_since is not None and m.retiring_since is None:
            m = replace(m, retiring_since=now)
        selectors[name] = replace(m, created=created)
    retired = {k: v for k, v in mem.retired.items() if k not in selectors}
    for name in mem.selectors.keys() - selectors.keys():
        retired.setdefault(name, Retired(now))
    return DomainMemory(selectors, retired, mem.stage)


def retiring_from(mem: DomainMemory, names: Iterable[str], now: datetime) -> DomainMemory:
    """`names` (non-signing selectors the rotation will retire) count as retiring from `now` on,
    unless known earlier."""
    sels = dict(mem.selectors)
    for n in names:
        m = sels.get(n, SelectorMemory(created=now))
        if m.retiring_since is None:
            sels[n] = replace(m, retiring_since=now)
    return replace(mem, selectors=sels)


def observe(mem: DomainMemory, answers: Mapping[str, Answer], now: datetime,
            max_gap: timedelta | None) -> DomainMemory:
    """One DNS check folded in. A sighting extends the current run of sightings, or starts a new
    one when the value changed, the clock went back, or the last sighting is more than `max_gap`
    ago (the record may have been away in between; None: no limit, for planning ahead). Missing
    or different ends the run; a failed check changes nothing."""
    sels = dict(mem.selectors)
    retired = dict(mem.retired)
    for name, a in answers.items():
        if name in retired:
            if a.seen is not Seen.FAILED:
                retired[name] = replace(retired[name], record_removed=a.seen is not Seen.PRESENT)
            continue
        m = sels.get(name)
        if m is None or a.seen is Seen.FAILED:
            continue
        if a.seen is Seen.PRESENT:
            value = a.value or None
            fresh = (m.first_seen is None or m.last_seen is None or m.record != value or now < m.last_seen
                     or (max_gap is not None and now - m.last_seen > max_gap))
            sels[name] = replace(m, record=value, first_seen=now if fresh else m.first_seen, last_seen=now,
                                 missing_since=None)
        else:
            sels[name] = replace(m, first_seen=None, last_seen=None, missing_since=m.missing_since or now)
    return replace(mem, selectors=sels, retired=retired)


def forget_removed(mem: DomainMemory) -> DomainMemory:
    """Retired selectors whose records are gone need no memory (the key in dkim/old/ keeps the name taken)."""
    return replace(mem, retired={k: v for k, v in mem.retired.items() if not v.record_removed})


# ---------------------------------------------------------------------------------------------
# The file


def memory_path(config_dir: Path) -> Path:
    return config_dir / MEMORY_FILE


_TIMES = ("created", "signing_since", "retiring_since", "first_seen", "last_seen", "missing_since")


def _time(t: datetime | None) -> str | None:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else None


def _parse_time(v: Any, where: str) -> datetime | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError(f"{where}: expected an RFC 3339 time or null")
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{where}: {v!r} is not an RFC 3339 time") from None
    if t.tzinfo is None:
        raise ValueError(f"{where}: {v!r} has no UTC offset")
    return t


def to_json(memory: Memory) -> dict[str, Any]:
    domains: dict[str, Any] = {}
    for name, dm in sorted(memory.items()):
        domains[name] = {
            "stage": dm.stage,
            "selectors": {s: {"record": m.record, **{k: _time(getattr(m, k)) for k in _TIMES}}
                          for s, m in sorted(dm.selectors.items())},
            "retired": {s: {"at": _time(r.at), "record_removed": r.record_removed}
                        for s, r in sorted(dm.retired.items())},
        }
    return {"version": VERSION, "domains": domains}


def _obj(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError(f"{where}: expected an object")
    return v


def from_json(data: Any) -> dict[str, DomainMemory]:
    """The memory in a file's JSON; ValueError naming the field that is wrong."""
    doc = _obj(data, "(document)")
    if doc.get("version") != VERSION:
        raise ValueError(f"version: expected {VERSION}")
    out: dict[str, DomainMemory] = {}
    for name, d in _obj(doc.get("domains", {}), "domains").items():
        at = f"domains.{name}"
        d = _obj(d, at)
        sels = {}
        for s, m in _obj(d.get("selectors", {}), f"{at}.selectors").items():
            w = f"{at}.selectors.{s}"
            m = _obj(m, w)
            record = m.get("record")
            if record is not None and not isinstance(record, str):
                raise ValueError(f"{w}.record: expected a string or null")
            times = {k: _parse_time(m.get(k), f"{w}.{k}") for k in _TIMES}
            sels[s] = SelectorMemory(record=record, **times)
        retired = {}
        for s, r in _obj(d.get("retired", {}), f"{at}.retired").items():
            w = f"{at}.retired.{s}"
            r = _obj(r, w)
            when = _parse_time(r.get("at"), f"{w}.at")
            if when is None or not isinstance(r.get("record_removed", False), bool):
                raise ValueError(f"{w}: expected at (a time) and record_removed (true or false)")
            retired[s] = Retired(when, r.get("record_removed", False))
        stage = d.get("stage")
        if stage is not None and not isinstance(stage, str):
            raise ValueError(f"{at}.stage: expected a string or null")
        out[name] = DomainMemory(sels, retired, stage)
    return out


def _shared(config_dir: Path) -> SharedDir:
    """The config dir, shared with mox's user: the memory is owned like domains.conf."""
    return SharedDir.of(config_dir / "domains.conf")


def read_memory(config_dir: Path) -> dict[str, DomainMemory]:
    """The rotation memory; empty when there is none yet (or it was lost: waits start over)."""
    path = memory_path(config_dir)
    try:
        data = json.loads(_shared(config_dir).read(path))
    except FileNotFoundError:
        return {}
    except REPORTED as e:
        raise LiveConfigError(f"cannot read the DKIM rotation memory: {e}") from None
    except (OSError, ValueError) as e:
        raise LiveConfigError(f"{path}: cannot read the DKIM rotation memory: {e}; remove the file to "
                              "start over (rotation waits then restart, which is safe)") from None
    try:
        return from_json(data)
    except ValueError as e:
        raise LiveConfigError(f"{path}: {e}; remove the file to start over (rotation waits then restart, "
                              "which is safe)") from None


def write_memory(config_dir: Path, memory: Memory) -> None:
    """Atomically and durably replace the memory file (0640, owned like domains.conf; the caller
    holds the config lock)."""
    _shared(config_dir).write_json(memory_path(config_dir), to_json(memory))
