"""`mox-reconciler plan`: what apply would change, as text, Markdown or JSON."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.rotation_args import add_rotation_options, dns_access
from reconciler.cli.source_args import (
    add_all_instances_option,
    add_domain_option,
    add_source_options,
    add_strict_option,
    check_strict,
    resolve_from_args,
)

if TYPE_CHECKING:
    from reconciler.mox.live import ConfigPaths
    from reconciler.pipeline import Prepared

# The keys of `reconciler.plan.render.FORMATS` (a test checks): named here so `plan --help` does not
# import the renderers and with them the plan document, pydantic and the mox config types.
FORMAT_NAMES = ("json", "markdown", "text")


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Compare the desired state with the live mox config and print the operations "
                     "apply would run. Exit 0; with --detailed-exitcode 0 = nothing differs, 2 = the live "
                     "config differs (operations, kept or blocked objects), 1 = error.")
    add_source_options(p)
    p.add_argument("--format", choices=FORMAT_NAMES, default="text", help="output format (default: text)")
    p.add_argument("--out", type=Path, metavar="PLANFILE",
                   help="also save the plan as JSON, for `apply --plan PLANFILE`")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when the live config differs from the desired state (operations to apply, "
                   "owned objects kept with Prune off, blocked removals)")
    add_strict_option(p)
    add_domain_option(p)
    p.add_argument("--base-ref", metavar="REF",
                   help="plan the change from the desired state at REF to the checkout, without a "
                   "live config (for pull-request jobs)")
    add_all_instances_option(p, "with --base-ref, plan (one section per instance whose effective state changes)")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    add_rotation_options(p)
    p.set_defaults(func=run)


def check_out(path: Path) -> None:
    """--out must name a file in a directory that exists: said before planning, not after."""
    from reconciler.errors import ReconcilerError

    parent = path.parent
    if not parent.is_dir():
        raise ReconcilerError(f"--out {path}: the directory {parent} does not exist; create it first")
    if path.is_dir():
        raise ReconcilerError(f"--out {path}: is a directory; give a file name such as {path / 'plan.json'}")
    if not os.access(parent, os.W_OK):
        raise ReconcilerError(f"--out {path}: the directory {parent} is not writable")


def run(args: argparse.Namespace) -> int:
    from reconciler.errors import ReconcilerError
    from reconciler.fsutil import atomic_write
    from reconciler.mox.admin import now_local
    from reconciler.mox.live import locate
    from reconciler.plan.render import FORMATS
    from reconciler.planmemo import PlanMemo

    if args.now is not None and args.out:
        raise ReconcilerError("--now and --out do not go together: a plan made for another time must not be applied")
    paths = locate(args.config)
    if args.all_instances is not None:
        return run_fleet(args, paths)
    if args.out:
        check_out(args.out)
    source = resolve_from_args(args)
    prepared: Prepared | None = None
    if args.base_ref:
        from reconciler.pipeline import prepare_base_ref

        prepared = prepare_base_ref(paths, source, args.base_ref, now=args.now, domains=args.domains)
        doc = prepared.doc
    else:
        memo = PlanMemo.for_cli(args.cache_dir) if args.now is None else None  # --now: a what-if, never kept
        recalled = memo.recall(paths, source, args.domains, now_local()) if memo is not None else None
        if recalled is not None:
            for warning in recalled.warnings:  # as loading the desired state logs them
                logging.getLogger("reconciler.desired.load").warning("%s", warning)
            doc = recalled.doc
        else:
            from reconciler.pipeline import Caches, prepare

            prepared = prepare(paths, source, now=args.now, caches=Caches.for_cli(args.cache_dir, generate=False),
                               domains=args.domains, dns=dns_access(args), memo=memo)
            doc = prepared.doc
    if args.out:
        try:
            atomic_write(args.out, doc.dumps().encode(), 0o666)
        except OSError as e:
            raise ReconcilerError(f"--out {args.out}: cannot write the plan file: {e.strerror or e}") from None
    render = FORMATS[args.format]
    if args.format == "markdown":  # a remembered plan has no operations, so no records
        if prepared is not None:
            from reconciler.pipeline import plan_dns_sections

            text = render(doc, *plan_dns_sections(prepared))
        else:
            text = render(doc)
    elif args.format == "text":
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        text = render(doc, color=color)
    else:
        text = render(doc)
    sys.stdout.write(text)
    sys.stdout.flush()
    check_strict(args, doc)
    if args.detailed_exitcode and doc.differs:
        return 2
    return 0


def run_fleet(args: argparse.Namespace, paths: ConfigPaths) -> int:
    """`plan --all-instances --base-ref REF`: what merging changes on every mox server."""
    from reconciler.errors import ReconcilerError
    from reconciler.pipeline import plan_dns_sections, prepare_fleet
    from reconciler.plan.render import InstanceSection, render_fleet

    if not args.base_ref:
        raise ReconcilerError("--all-instances plans each instance against the desired state at --base-ref "
                              "(every instance has its own live config): pass --base-ref")
    if args.subdir or args.out or args.domains:
        other = "--subdir" if args.subdir else "--out" if args.out else "--domain"
        raise ReconcilerError(f"--all-instances cannot be combined with {other}")
    plans = prepare_fleet(paths, resolve_from_args(args), args.base_ref, args.all_instances)
    sections = []
    for p in plans:
        dns, notes = plan_dns_sections(p.prepared) if p.prepared and args.format == "markdown" else ([], [])
        sections.append(InstanceSection(p.instance.name, p.instance.subdir, p.prepared.doc if p.prepared else None,
                                        p.added, dns, notes))
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    sys.stdout.write(render_fleet(sections, args.format, args.base_ref, color=color))
    sys.stdout.flush()
    for section in sections:
        if section.doc is not None:
            check_strict(args, section.doc)
    if args.detailed_exitcode and any(s.changed for s in sections):
        return 2
    return 0
