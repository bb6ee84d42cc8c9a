"""Command line: global options, one error boundary, and the verbs beside it.

Every verb is a module of `reconciler.cli` with `register(subparsers)`; the function it
sets as `func` gets the parsed arguments and returns the exit code. Known errors become one
message on stderr and exit 1 (or the error's own code); a traceback only with `--debug`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from reconciler import __version__
from reconciler.errors import REPORTED
from reconciler.mox.live import DEFAULT_CONFIG

# The verbs, in the order `--help` lists them.
COMMAND_MODULES = [
    "plan",
    "apply",
    "watch",
    "validate",
    "importcmd",
    "records",
    "config",
]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mox-reconciler",
        description="GitOps for the mox mail server: desired state in git, plan, apply, DNS records.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help=f"mox.conf; domains.conf is read beside it (default: $MOXCONF or {DEFAULT_CONFIG})",
    )
    parser.add_argument("--version", action="version", version=f"mox-reconciler {__version__} (for mox v0.0.17)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (info level); "
                        "always on for watch")
    parser.add_argument(
        "--log-format", choices=["text", "json"], default="text", help="log line format (default: text)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"reconciler.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 error, 2 see the command)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from reconciler.cli.logs import setup_logging

    setup_logging(args.log_format, debug=args.debug, verbose=args.verbose or args.command == "watch")
    handler: Handler = args.func
    try:
        return handler(args)
    except REPORTED as e:
        if args.debug:
            logging.getLogger("reconciler").exception("failed")
        print(f"error: {e}", file=sys.stderr)
        for note in getattr(e, "__notes__", []):
            print(f"  {note}", file=sys.stderr)
        return int(getattr(e, "exit_code", 1))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # the last line of defence: a message, not a traceback
        if args.debug:
            raise
        print(f"error: internal error: {type(e).__name__}: {e} (run with --debug for a traceback)",
              file=sys.stderr)
        return 1


def entrypoint() -> None:
    sys.exit(main(sys.argv[1:]))
