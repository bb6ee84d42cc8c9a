"""Command line: global options, one error boundary, and the verbs beside it.

Every verb is a module of `reconciler.cli` with `configure(parser)`, imported only when the verb
is chosen (so `--version` and `--help` start fast); the function it sets as `func` gets the parsed
arguments and returns the exit code. Every option's default can come from a `MOX_RECONCILER_*`
variable (`reconciler.cli.parser`). Known errors become one message on stderr and exit 1 (or the
error's own code); a traceback only with `--debug`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import select
import sys
from collections.abc import Callable, Mapping, Sequence

from reconciler import __version__
from reconciler.cli import codecache
from reconciler.cli.parser import Parser, Verb, Verbs, add_global_options
from reconciler.errors import REPORTED, printable

# pydantic looks for plugins by reading the entry points of every installed distribution (tens of
# milliseconds at each start); the reconciler uses none, so a start skips the search.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# The verbs, in the order `--help` lists them, with their one-line help.
VERBS = (
    Verb("plan", "reconciler.cli.plan", "show what apply would change (never writes the mox config)"),
    Verb("apply", "reconciler.cli.apply", "apply the desired state (or a saved plan) to the mox config"),
    Verb("watch", "reconciler.cli.watch", "reconcile continuously: on start, on every change, and every interval"),
    Verb("validate", "reconciler.cli.validate",
         "check a desired state (a directory of *.yaml or one file); needs no mox"),
    Verb("import", "reconciler.cli.importcmd", "write the desired state that describes the live config (--config)"),
    Verb("records", "reconciler.cli.records",
         "DNS records for the hosted domains (like `mox config dnsrecords`), check, publish"),
    Verb("config", "reconciler.cli.config", "check or print mox's config"),
    Verb("snapshot", "reconciler.cli.snapshot",
         "write a secret-free copy of the live config (no private keys) to plan against in CI"),
)

Handler = Callable[[argparse.Namespace], int]


def build_parser(environ: Mapping[str, str] | None = None) -> Parser:
    """The parser; `environ` (default: os.environ) gives the MOX_RECONCILER_* option defaults."""
    parser = Parser(
        prog="mox-reconciler",
        description="GitOps for the mox mail server: desired state in git, plan, apply, DNS records.",
        epilog="Every option's default can be set with a MOX_RECONCILER_<OPTION> environment variable "
        "(shown as [env: ...]); the command line wins.",
        environ=environ,
    )
    add_global_options(parser)
    parser.add_argument("--version", action="version", version=f"mox-reconciler {__version__} (for mox v0.0.17)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    assert isinstance(sub, Verbs)
    for verb in VERBS:
        sub.add_verb(verb)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 error, 2 see the command)."""
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    from reconciler.cli.logs import setup_logging

    setup_logging(args.log_format, debug=args.debug, verbose=args.verbose or args.command == "watch")
    handler: Handler = args.func
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed stdout shows here, not as a message at interpreter exit
        return code
    except REPORTED as e:
        if args.debug:
            logging.getLogger("reconciler").exception("failed")
        print(f"error: {printable(str(e), keep=chr(10) + chr(9))}", file=sys.stderr)
        for note in getattr(e, "__notes__", []):
            print(f"  {printable(note)}", file=sys.stderr)
        return int(getattr(e, "exit_code", 1))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if stdout_closed():  # `... | head`: the reader went away; nothing to say, and no one to say it to
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        if args.debug:
            raise
        print("error: internal error: BrokenPipeError: a child process (git?) exited before reading its input "
              "(run with --debug for a traceback)", file=sys.stderr)
        return 1
    except Exception as e:  # the last line of defence: a message, not a traceback
        if args.debug:
            raise
        print(f"error: internal error: {type(e).__name__}: {e} (run with --debug for a traceback)",
              file=sys.stderr)
        return 1


def stdout_closed() -> bool:
    """Our stdout is a pipe whose reader has gone: only then is a BrokenPipeError "stdout was
    closed" (a child process's pipe breaks too, and that is an error to report)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def entrypoint() -> None:
    # A verb builds the whole desired state and live config (millions of objects at 10,000
    # domains) and exits: the cyclic collector would only walk them again and again (a third of
    # a large plan's CPU; bench/README.md "plan"). Reference counting still frees what is
    # dropped. `watch` runs for weeks and turns the collector back on.
    gc.disable()
    codecache.install(sys.argv[1:])  # a third of a plan's start-up was compiling dataclass methods
    sys.exit(main(sys.argv[1:]))
