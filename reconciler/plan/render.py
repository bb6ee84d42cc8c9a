"""Plan renderers: text (terminal), Markdown (pull-request comment), JSON. They compute nothing.

Each renderer takes the plan document (`document.PlanDocument`) and, for Markdown, the DNS records
of the domains the plan creates or changes (already rendered as zone text by `reconciler.dns`, which
sits above the planner), and returns a string.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.errors import printable
from reconciler.plan.document import Action, Change, PlanDocument, RotationInfo
from reconciler.plan.objects import ObjectKind, ObjectRef
from reconciler.plan.values import change_text


@dataclass(frozen=True, slots=True)
class DNSSection:
    """The DNS records one domain needs after the plan, for the Markdown comment."""

    domain: str
    published: int  # how many records are to be published
    zone: str  # the records as a zone-file fragment

_COLOR = {"+": "\x1b[32m", "-": "\x1b[31m", "~": "\x1b[33m", "!": "\x1b[31;1m"}
_RESET = "\x1b[0m"


def symbol(change: Change) -> str:
    """`+` for an add, `-` for a removal, `~` for a change (by the primitive's name)."""
    op = change.operation.op
    if op.endswith("Add"):
        return "+"
    if op.endswith("Remove"):
        return "-"
    return "~"


def _grouped(doc: PlanDocument) -> list[tuple[str, str, list[Change]]]:
    """Changes grouped by object, in plan order: (object, object-level symbol, changes)."""
    groups: dict[str, list[Change]] = {}
    created = {o for c in doc.changes for o in c.creates}
    for c in doc.changes:
        groups.setdefault(c.object, []).append(c)
    out = []
    for obj, changes in groups.items():
        actions = {c.action for c in changes}
        sym = "+" if Action.CREATE in actions or obj in created else "-" if Action.DELETE in actions else "~"
        out.append((obj, sym, changes))
    return out


def provenance(doc: PlanDocument) -> list[tuple[str, str]]:
    """What the plan was made from, as (label, text) lines: the source and its commit (with
    "+ uncommitted changes" when the checkout is dirty), the live config and its hash, the time."""
    src = doc.source
    out: list[tuple[str, str]] = []
    if src is not None:
        where = src.location + (f" at {src.ref}" if src.ref else "") + (f" (subdir {src.subdir})" if src.subdir else "")
        out.append(("source", where))
        c = src.commit
        dirty = " + uncommitted changes" if src.dirty else ""
        if c is not None:
            out.append(("commit", f"{c.sha[:12]}{dirty} ({c.subject})"))
        else:
            out.append(("commit", "none (a directory outside git)"))
    if doc.base_ref is not None:
        out.append(("live", f"none: compared with the desired state at {doc.base_ref} (--base-ref)"))
    else:
        out.append(("live", f"{doc.live.path} sha256:{doc.live.sha256[:12]}"))
    if doc.domains is not None:
        out.append(("scope", "domains " + ", ".join(doc.domains) + " only (--domain)"))
    if doc.created is not None:
        out.append(("made", doc.created))
    return out


KEPT_TEXT = "changed in mox by the account's user (kept)"


def kept_by_account(doc: PlanDocument) -> list[tuple[str, list[str]]]:
    """Self-service fields kept as mox has them, per account: (object, fields)."""
    out: dict[str, list[str]] = {}
    for k in doc.kept_self_service:
        out.setdefault(k.object, []).append(k.field)
    return list(out.items())


def _rotation_lines(info: RotationInfo) -> list[tuple[str, str]]:
    """A rotating domain as (symbol, line) pairs: `!` for problems, `~` for this plan's steps."""
    roles = [f"signing {info.signing or '(none)'}"]
    if info.next:
        roles.append(f"next {info.next}")
    if info.retiring:
        roles.append(f"retiring {', '.join(info.retiring)}")
    lines = [(" ", f"{info.domain}: {info.stage} ({', '.join(roles)})")]
    lines += [("!", f"    problem: {p}") for p in info.problems]
    lines += [("~", f"    now: {a}") for a in info.actions]
    for p in info.pending:
        what = f"{p.step} {p.selector}".rstrip()
        lines.append((" ", f"    next: {what} at the earliest {p.earliest or '(not known yet)'}, "
                      f"waiting for {p.waiting_for}"))
    if not info.dns_checked:
        lines.append((" ", "    (DNS was not checked for this plan)"))
    how = f" ({info.published_by})" if info.published_by else " (by hand: no --publish)"
    lines += [(" ", f"    in DNS{how}: {r}") for r in info.publish]
    lines += [(" ", f"    delete from DNS{how}: {r}") for r in info.unpublish]
    return lines


def render_text(doc: PlanDocument, *, color: bool = False) -> str:
    def paint(sym: str, text: str) -> str:
        return f"{_COLOR[sym]}{text}{_RESET}" if color and sym in _COLOR else text

    lines = ["mox-reconciler plan"]
    lines += [f"  {label + ':':<8}{printable(text)}" for label, text in provenance(doc)]
    lines.append("")
    for obj, sym, changes in _grouped(doc):
        lines.append(paint(sym, f"{sym} {obj}"))
        for c in changes:
            s = symbol(c)
            mark = "  (destructive)" if c.destructive else ""
            lines.append(paint(s, f"    {s} {printable(c.description)}{mark}"))
            lines += [f"        {change_text(v)}" for v in c.values]
    if doc.changes:
        lines.append("")
    for obj, fields in kept_by_account(doc):
        lines.append(f"= {obj}: {', '.join(fields)} {KEPT_TEXT}")
    for k in doc.kept:
        lines.append(f"= {k}  {kept_text(k)}")
    for b in doc.blocked:
        lines.append(paint("!", f"! blocked: {b}"))
    for w in doc.warnings:
        lines.append(paint("!", f"warning: {printable(w)}"))
    if doc.needs_force:
        lines.append(paint("!", f"! apply needs --force: {force_text(doc.needs_force)}"))
    if doc.dkim_rotation:
        lines.append("DKIM rotation:")
        for info in doc.dkim_rotation:
            lines += [paint(sym, "  " + printable(text)) for sym, text in _rotation_lines(info)]
        lines.append("")
    if doc.unmanaged:
        lines.append(f"Unmanaged, left alone: {', '.join(doc.unmanaged)}")
    lines.append(doc.summary.text)
    return "\n".join(lines) + "\n"


def kept_text(ref: ObjectRef) -> str:
    """Why an owned object the desired state no longer names is still there."""
    where = "Removed.Domains" if ref.kind is ObjectKind.DOMAIN else "Removed.Accounts"
    return f"kept (Prune off; list under {where} to remove)"


def force_text(reason: str) -> str:
    """The first line of why a plan needs --force (the blocked objects are listed beside it)."""
    return reason.split("\n", 1)[0].rstrip(":")


def _md(s: str) -> str:
    """Text for a Markdown table cell or line: no HTML from the desired state, no cell breaks."""
    return html.escape(s, quote=False).replace("|", "\\|").replace("\n", " ")


def _code(s: str) -> str:
    """Inline code that survives any text: HTML-escaped, pipes that cannot end a table cell."""
    return "<code>" + html.escape(s, quote=False).replace("|", "&#124;").replace("\n", " ") + "</code>"


def render_markdown(doc: PlanDocument, dns: Sequence[DNSSection] = (), dns_notes: Sequence[str] = (), *,
                    title: str = "mox-reconciler plan") -> str:
    out = [f"### {title}", ""]
    out += [f"- **{label}** {_md(text)}" for label, text in provenance(doc)]
    out.append("")
    if doc.needs_force:
        out += [f"> :warning: **apply needs --force**: {_md(force_text(doc.needs_force))}", ""]
    if not doc.differs:
        out += ["**No changes.** The live config matches the desired state.", ""]
    elif doc.changes:
        objects = {"+": 0, "~": 0, "-": 0}
        for _obj, sym, _changes in _grouped(doc):
            objects[sym] += 1
        operations = {"+": 0, "~": 0, "-": 0}
        for c in doc.changes:
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
                warn = " **(destructive)**" if c.destructive else ""
                values = "".join(f"<br>{_code(change_text(v))}" for v in c.values)
                out.append(f"| `{symbol(c)}` | {_code(obj)} | {_md(c.description)}{warn}{values} |")
        out.append("")
    if doc.kept:
        out += ["#### Kept", ""] + [f"- {_code(k)} {_md(kept_text(k))}" for k in doc.kept] + [""]
    if doc.blocked:
        out += ["#### Blocked", ""] + [f"- :warning: {_md(b)}" for b in doc.blocked] + [""]
    kept = kept_by_account(doc)
    if kept:
        out += ["#### Self-service settings (kept)", ""]
        out += [f"- {_code(obj)}: {_md(', '.join(fields))} {KEPT_TEXT}" for obj, fields in kept] + [""]
    if doc.warnings:
        out += ["#### Warnings", ""] + [f"- :warning: {_md(w)}" for w in doc.warnings] + [""]
    if doc.dkim_rotation:
        out += ["#### DKIM rotation", "", "| domain | stage | this plan | next step | earliest | waiting for |",
                "|---|---|---|---|---|---|"]
        for info in doc.dkim_rotation:
            step, earliest, waiting = "-", "-", "-"
            if info.pending:
                nxt = info.pending[0]
                step = _md(f"{nxt.step} {nxt.selector}".rstrip())
                earliest, waiting = nxt.earliest or "not known yet", _md(nxt.waiting_for)
            out.append(f"| {_code(info.domain)} | {info.stage} | {_md('; '.join(info.actions)) or '-'} | "
                       f"{step} | {earliest} | {waiting} |")
        out.append("")
        for info in doc.dkim_rotation:
            out += [f"- :warning: {_code(info.domain)}: {_md(p)}" for p in info.problems]
            if info.publish or info.unpublish:
                how = info.published_by or "by hand"
                out += [f"<details><summary>{_md(info.domain)}: DKIM records ({_md(how)})</summary>", "", "```dns"]
                out += [*map(printable, info.publish), *(f"; delete: {printable(r)}" for r in info.unpublish),
                        "```", "", "</details>"]
        out.append("")
    if doc.unmanaged:
        out += ["<details><summary>Unmanaged objects (left alone)</summary>", ""]
        out += [f"- {_code(u)}" for u in doc.unmanaged] + ["", "</details>", ""]
    if dns or dns_notes:
        out += ["#### DNS records to publish", ""]
        out += [f"*{_md(note)}*\n" for note in dns_notes]
        for sec in dns:
            out += [f"<details><summary>{_md(sec.domain)} ({sec.published} records)</summary>", "",
                    "```dns", sec.zone.rstrip("\n"), "```", "", "</details>", ""]
    out.append(f"**{doc.summary.text}**")
    return "\n".join(out) + "\n"


def render_json(doc: PlanDocument) -> str:
    return doc.dumps()


# ---------------------------------------------------------------------------------------------
# Fleets: one section per instance whose effective state changes


@dataclass(frozen=True)
class InstanceSection:
    """One instance of a fleet plan: its plan (None: its directory is gone at the checkout)."""

    name: str
    subdir: str
    doc: PlanDocument | None
    added: bool = False  # not at the base
    dns: Sequence[DNSSection] = ()
    dns_notes: Sequence[str] = ()

    @property
    def changed(self) -> bool:
        return self.doc is None or self.added or self.doc.differs

    @property
    def label(self) -> str:
        return f"{self.subdir}, new" if self.added else self.subdir

    def removed_note(self) -> str:
        return (f"`{self.subdir}` is gone: the reconciler of instance `{self.name}` fails until it is stopped; "
                "nothing is removed from its mox")


def _fleet_head(sections: Sequence[InstanceSection], base_ref: str) -> tuple[str, str]:
    changed = [s.name for s in sections if s.changed]
    same = [s.name for s in sections if not s.changed]
    n = len(sections)
    head = f"{n} instance{'s' if n != 1 else ''}, compared with {base_ref}"
    if not changed:
        return head, f"No changes on any of the {n} instance{'s' if n != 1 else ''}."
    tail = f"Changes on {len(changed)} of {n}: {', '.join(changed)}"
    return head, tail + (f"; unchanged: {', '.join(same)}." if same else ".")


def render_fleet(sections: Sequence[InstanceSection], fmt: str, base_ref: str, *, color: bool = False) -> str:
    """The plans of a fleet: a summary line, then one section per instance that changes."""
    if fmt == "json":
        data = {"version": 1, "base_ref": base_ref, "instances": [
            {"name": s.name, "subdir": s.subdir, "changed": s.changed, "added": s.added, "removed": s.doc is None,
             "plan": s.doc.to_json() if s.doc is not None else None} for s in sections]}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    head, tail = _fleet_head(sections, base_ref)
    if fmt == "markdown":
        out = [f"## mox-reconciler plan: {_md(head)}", "", f"**{_md(tail)}**", ""]
        for s in (s for s in sections if s.changed):
            if s.doc is None:
                out += [f"### Instance `{s.name}` (removed)", "", f":warning: {_md(s.removed_note())}", ""]
            else:
                out.append(render_markdown(s.doc, s.dns, s.dns_notes, title=f"Instance `{s.name}` (`{s.label}`)"))
        return "\n".join(out).rstrip("\n") + "\n"
    out = [f"mox-reconciler plan: {head}", tail, ""]
    for s in (s for s in sections if s.changed):
        if s.doc is None:
            out += [f"=== instance {s.name} (removed) ===", s.removed_note().replace("`", ""), ""]
        else:
            out += [f"=== instance {s.name} ({s.label}) ===", render_text(s.doc, color=color)]
    return "\n".join(out).rstrip("\n") + "\n"


FORMATS: dict[str, Callable[..., str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
