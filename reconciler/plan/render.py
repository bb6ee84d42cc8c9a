"""Plan renderers: text (terminal), Markdown (pull-request comment), JSON. They compute nothing.

Each renderer takes the plan document (`planner.plan_to_json`) and, for Markdown, the DNS records
of the domains the plan creates or changes (already rendered as zone text by `reconciler.dns`, which
sits above the planner), and returns a string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DNSSection:
    """The DNS records one domain needs after the plan, for the Markdown comment."""

    domain: str
    published: int  # how many records are to be published
    zone: str  # the records as a zone-file fragment

_COLOR = {"+": "\x1b[32m", "-": "\x1b[31m", "~": "\x1b[33m", "!": "\x1b[31;1m"}
_RESET = "\x1b[0m"


def symbol(change: Mapping[str, Any]) -> str:
    """`+` for an add, `-` for a removal, `~` for a change (by the primitive's name)."""
    op = str(change["operation"]["op"])
    if op.endswith("Add"):
        return "+"
    if op.endswith("Remove"):
        return "-"
    return "~"


def _grouped(doc: Mapping[str, Any]) -> list[tuple[str, str, list[Mapping[str, Any]]]]:
    """Changes grouped by object, in plan order: (object, object-level symbol, changes)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    created = {o for c in doc["changes"] for o in c.get("creates", [])}
    for c in doc["changes"]:
        groups.setdefault(c["object"], []).append(c)
    out = []
    for obj, changes in groups.items():
        actions = {c["action"] for c in changes}
        sym = "+" if "create" in actions or obj in created else "-" if "delete" in actions else "~"
        out.append((obj, sym, changes))
    return out


def _source_line(doc: Mapping[str, Any]) -> str:
    src = doc.get("source") or {}
    commit = src.get("commit") or {}
    parts = []
    if src.get("location"):
        parts.append(f"source {src['location']}")
    if commit.get("sha"):
        parts.append(f"commit {commit['sha'][:12]} ({commit.get('subject', '')})")
    live = doc["live"]
    parts.append(f"live {live['path']} sha256:{live['sha256'][:12]}")
    return ", ".join(parts)


def render_text(doc: Mapping[str, Any], *, color: bool = False) -> str:
    def paint(sym: str, text: str) -> str:
        return f"{_COLOR[sym]}{text}{_RESET}" if color else text

    lines = [f"mox-reconciler plan: {_source_line(doc)}", ""]
    for obj, sym, changes in _grouped(doc):
        lines.append(paint(sym, f"{sym} {obj}"))
        for c in changes:
            s = symbol(c)
            mark = "  (destructive)" if c["destructive"] else ""
            lines.append(paint(s, f"    {s} {c['description']}{mark}"))
    if doc["changes"]:
        lines.append("")
    for b in doc.get("blocked", []):
        lines.append(paint("!", f"! blocked: {b}"))
    if doc.get("unmanaged"):
        lines.append(f"Unmanaged, left alone: {', '.join(doc['unmanaged'])}")
    lines.append(doc["summary"]["text"])
    return "\n".join(lines) + "\n"


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Mapping[str, Any], dns: Sequence[DNSSection] = ()) -> str:
    s = doc["summary"]
    out = ["### mox-reconciler plan", "", f"{_md(_source_line(doc))}", ""]
    if not doc["changes"] and not doc.get("blocked"):
        out += ["**No changes.** The live config matches the desired state.", ""]
    else:
        objects = {"+": 0, "~": 0, "-": 0}
        for _obj, sym, _changes in _grouped(doc):
            objects[sym] += 1
        operations = {"+": 0, "~": 0, "-": 0}
        for c in doc["changes"]:
            operations[symbol(c)] += 1
        out += [
            "| | objects | operations |",
            "|---|---:|---:|",
            f"| `+` add | {objects['+']} | {operations['+']} |",
            f"| `~` change | {objects['~']} | {operations['~']} |",
            f"| `-` remove | {objects['-']} | {operations['-']} |",
            "",
            "#### Operations",
            "",
            "| | object | operation |",
            "|---|---|---|",
        ]
        for obj, _sym, changes in _grouped(doc):
            for c in changes:
                warn = " **(destructive)**" if c["destructive"] else ""
                out.append(f"| `{symbol(c)}` | `{_md(obj)}` | {_md(c['description'])}{warn} |")
        out.append("")
    if doc.get("blocked"):
        out += ["#### Blocked", ""] + [f"- :warning: {_md(b)}" for b in doc["blocked"]] + [""]
    if doc.get("unmanaged"):
        out += ["<details><summary>Unmanaged objects (left alone)</summary>", ""]
        out += [f"- `{u}`" for u in doc["unmanaged"]] + ["", "</details>", ""]
    if dns:
        out += ["#### DNS records to publish", ""]
        for sec in dns:
            out += [f"<details><summary>{sec.domain} ({sec.published} records)</summary>", "",
                    "```dns", sec.zone.rstrip("\n"), "```", "", "</details>", ""]
    out.append(f"**{s['text']}**")
    return "\n".join(out) + "\n"


def render_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


FORMATS: dict[str, Callable[..., str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
