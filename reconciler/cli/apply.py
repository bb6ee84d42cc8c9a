"""`mox-reconciler apply`: make the live mox config match the desired state (or a saved plan)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.rotation_args import add_rotation_options, dns_access
from reconciler.cli.source_args import (
    add_domain_option,
    add_source_options,
    add_strict_option,
    check_strict,
    resolve_from_args,
)
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.apply.keymaker import Progress
    from reconciler.pipeline import Outcome


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Plan, then apply the plan as one validated, atomic write of domains.conf, and wait "
                     "until the running mox has loaded it (exit 1 when that cannot be confirmed; a mox that "
                     "is not running is said so, exit 0). "
                     "Asks for confirmation on a terminal unless --yes; without a terminal (cron, CI) "
                     "it refuses unless --yes (exit 1, nothing written).")
    add_source_options(p)
    p.add_argument("--plan", type=Path, metavar="PLANFILE",
                   help="apply exactly this saved plan (`plan --out`); refused if stale. The plan's source "
                   "is read again to check it; give SOURCE too when it is a URL with credentials")
    p.add_argument("--force", action="store_true", help="apply plans above the safety threshold")
    add_strict_option(p)
    add_domain_option(p)
    p.add_argument("--yes", "-y", action="store_true",
                   help="apply without asking (needed when not on a terminal)")
    p.add_argument("--reports-dir", type=Path, metavar="DIR",
                   help="where DNS-record reports of changed domains are written "
                   "(default: mox-reconciler.records/ in the config dir)")
    # Deprecated: every apply now confirms that the running mox loaded the change (docs/operations.md).
    p.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)
    add_rotation_options(p)
    p.set_defaults(func=run)


class NotConfirmed(ReconcilerError):
    """apply without --yes and without a terminal to ask on: nothing is written."""


def _confirm(args: argparse.Namespace, changes: bool) -> bool:
    """--yes, or 'yes' typed on a terminal (asked only when there are changes). Without a terminal
    (cron, CI, `ssh host cmd`) there is no one to ask, so an unattended apply must say --yes:
    refuse (exit 1) whatever the plan, as Terraform does, so a job that lacks --yes fails at once."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise NotConfirmed("not applying: --yes was not given and standard input is not a terminal to ask on; "
                           "nothing was written. Pass --yes (or MOX_RECONCILER_YES=1) to apply unattended")
    if not changes:
        return True
    answer = input("Apply these changes? Only 'yes' is accepted: ")
    return answer.strip() == "yes"


@contextlib.contextmanager
def key_progress() -> Iterator[Progress | None]:
    """A progress bar for DKIM key generation on a terminal (RSA-2048 keys take a while)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
             TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("generating DKIM keys", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def report(outcome: Outcome) -> int:
    """Print what the apply did and whether mox loaded it; 1 when a password could not be set
    (each reason on stderr)."""
    if outcome.replanned:
        print(f"{outcome.path} or the inventory changed since this plan was made: planned again before writing.")
    if not outcome.written and not outcome.passwords:
        if outcome.doc.differs:
            print("Nothing to apply; the kept and blocked objects above stay as they are.")
        else:
            print("Nothing to do: the live config matches the desired state.")
    elif not outcome.written:
        print("The live config matches the desired state.")
    else:
        n = len(outcome.operations)
        writes = len(outcome.applied.writes)
        how = "one write" if writes == 1 else f"{writes} writes"
        print(f"Applied {n} operation{'s' if n != 1 else ''} in {how} of {outcome.path}.")
        if outcome.rewrites:
            times = "once" if outcome.rewrites == 1 else f"{outcome.rewrites} times"
            print(f"  mox wrote over the change {times} before loading it: applied again on top of mox's version")
        for key in outcome.keys_created:
            print(f"  created DKIM key {key}")
        for key in outcome.keys_retired:
            print(f"  moved retired DKIM key {key} to old/")
        for note in outcome.notes:
            print(f"  note: {note}")
    print(f"{outcome.confirmation.message}.")
    for result in outcome.passwords:
        if result.set:
            print(f"Set password of account {result.account} (from {result.source}).")
    if outcome.inventory_changed:
        print("Inventory updated.")
    for path in outcome.reports:
        print(f"DNS records: {path}")
    for domain, records in outcome.records_to_delete.items():
        print(f"DNS records to delete: {domain} is no longer hosted (its reports were removed):")
        for line in records:
            print(f"  {line}")
    for change in outcome.rotation_changes:
        print(change.message())
    for info in outcome.doc.dkim_rotation:
        for problem in info.problems:
            print(f"DKIM rotation of {info.domain}: problem: {problem}")
    for p in outcome.published:
        print(f"DKIM rotation of {p.domain}: {p.text}" if p.ok else f"DKIM rotation of {p.domain}: error: {p.text}")
    for result in outcome.passwords_pending:
        print(f"error: {result.describe()}", file=sys.stderr)
    return 1 if outcome.passwords_pending else 0


def run(args: argparse.Namespace) -> int:
    from reconciler.mox.live import locate
    from reconciler.pipeline import Caches, apply_plan_doc, apply_prepared, check_fresh, prepare, refuse_snapshot
    from reconciler.plan.document import read_plan_file
    from reconciler.plan.render import render_text

    paths = locate(args.config)
    refuse_snapshot(paths)
    dns = dns_access(args)
    if args.verify:
        print("note: --verify is deprecated and does nothing more: every apply confirms that the running mox "
              "loaded the change", file=sys.stderr)
    if args.plan:
        if args.domains:
            raise ReconcilerError("--domain cannot be combined with --plan: the plan file holds its own "
                                  "operations (make the plan with --domain)")
        doc = read_plan_file(args.plan)
        source = args.source if args.source != "." else None
        check_fresh(paths, doc, source)  # a stale plan is refused before it is shown, not after
        sys.stdout.write(render_text(doc, color=sys.stdout.isatty()))
        check_strict(args, doc)
        if not _confirm(args, bool(doc.changes)):
            print("Apply cancelled.")
            return 1
        with key_progress() as progress:
            outcome = apply_plan_doc(paths, doc, source=source, force=args.force, reports_dir=args.reports_dir,
                                     now=args.now, progress=progress, publisher=dns.publisher)
        return report(outcome)
    caches = Caches.for_cli(args.cache_dir, generate=True)
    try:
        # The plan's new keys are generated in the background from here on (threads).
        prepared = prepare(paths, resolve_from_args(args), now=args.now, caches=caches, domains=args.domains,
                           dns=dns, recording=True)
        sys.stdout.write(render_text(prepared.doc, color=sys.stdout.isatty()))
        check_strict(args, prepared.doc)
        if not prepared.plan.empty:
            prepared.plan.check_safety(force=args.force)
        if not _confirm(args, not prepared.plan.empty):
            print("Apply cancelled.")
            return 1
        with key_progress() as progress:
            outcome = apply_prepared(prepared, force=args.force, reports_dir=args.reports_dir,
                                     progress=progress)
    finally:
        caches.close()
    return report(outcome)
