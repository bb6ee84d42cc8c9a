"""A reconciler process that runs CLI commands one after another: `mox-reconciler ARGS` in a
process of its own, without paying the interpreter's start-up for every command.

Tests that run many applies at once (several reconcilers racing each other and mox) start one per
reconciler: each is a real, separate process (its own pid, locks and key-generation workers), and
each command goes through `reconciler.cli.main.main` exactly as the `mox-reconciler` entry point
does. Protocol: one JSON list of arguments per line on stdin; one JSON object per line on stdout,
`{"rc": EXIT CODE, "out": STDOUT, "err": STDERR}`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class CliRunner:
    """The test's side: start the process, run commands in it, stop it."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.clirunner"], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, *argv: str) -> tuple[int, str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(list(argv)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the reconciler process ended (exit {self.proc.wait()})")
        answer = json.loads(line)
        return int(answer["rc"]), str(answer["out"]), str(answer["err"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(60)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def serve() -> None:
    from reconciler.cli.main import main

    replies = sys.stdout
    for line in sys.stdin:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(json.loads(line))
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 1
        replies.write(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()
