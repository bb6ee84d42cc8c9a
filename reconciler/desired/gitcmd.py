"""Running git in a repository: a command's output as text, a failure as `GitFailed`.

Reading a checkout takes four git commands, while importing GitPython (which runs `git version`
as it loads) cost a tenth of a second of every `plan`'s start; so git runs here, with subprocess,
the way GitPython's `Git.execute` runs it: in the repository, stdin from /dev/null, git's messages
in English (LANGUAGE=C, LC_ALL=C), output decoded as UTF-8 (undecodable bytes kept as
surrogates) without its last newline. GitPython stays for what is more than running git (the
cache clone's creation and config: `reconciler.desired.source`).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Literal, overload

log = logging.getLogger(__name__)


class GitFailed(Exception):
    """A git command that could not run to a zero exit: its argv, status and stderr."""

    def __init__(self, command: Sequence[str], status: int, stderr: str) -> None:
        super().__init__(f"{' '.join(command[:2])}: exited with status {status}")
        self.command = list(command)
        self.status = status
        self.stderr = stderr


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape").removesuffix("\n")


class GitProcess:
    """A running git command whose stdout is read as a stream (`git archive`)."""

    def __init__(self, proc: subprocess.Popen[bytes], command: Sequence[str]) -> None:
        self.proc = proc
        self.command = command
        assert proc.stdout is not None
        self.stdout: IO[bytes] = proc.stdout

    def wait(self) -> int:
        """Wait for the end; GitFailed if git failed (its stderr read now)."""
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        status = self.proc.wait()
        self.stdout.close()
        self.proc.stderr.close()
        if status != 0:
            raise GitFailed(self.command, status, _text(err))
        return status


class Git:
    """git in the directory `cwd`, with `config` (`-c NAME=VALUE` pairs) before every command."""

    def __init__(self, cwd: str | Path, config: Sequence[str] = ()) -> None:
        self.cwd = str(cwd)
        self.config = list(config)

    def _argv(self, command: Sequence[str]) -> list[str]:
        if self.config and command[:1] == ["git"]:
            return ["git", *self.config, *command[1:]]
        return list(command)

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        return {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **(env or {})}

    @overload
    def execute(self, command: Sequence[str], *, env: Mapping[str, str] | None = ...,
                kill_after_timeout: float | None = ..., with_exceptions: bool = ...,
                with_extended_output: Literal[False] = ..., as_process: Literal[False] = ...) -> str: ...

    @overload
    def execute(self, command: Sequence[str], *, env: Mapping[str, str] | None = ...,
                kill_after_timeout: float | None = ..., with_exceptions: bool = ...,
                with_extended_output: Literal[True], as_process: Literal[False] = ...) -> tuple[int, str, str]: ...

    @overload
    def execute(self, command: Sequence[str], *, env: Mapping[str, str] | None = ...,
                kill_after_timeout: float | None = ..., with_exceptions: bool = ...,
                with_extended_output: Literal[False] = ..., as_process: Literal[True]) -> GitProcess: ...

    def execute(self, command: Sequence[str], *, env: Mapping[str, str] | None = None,
                kill_after_timeout: float | None = None, with_exceptions: bool = True,
                with_extended_output: bool = False, as_process: bool = False,
                ) -> str | tuple[int, str, str] | GitProcess:
        """Run `command` (["git", ...]): its stdout; with `with_extended_output` (status, stdout,
        stderr); with `as_process` the running process. A non-zero exit raises GitFailed unless
        `with_exceptions` is False; `kill_after_timeout` seconds end it (killed, GitFailed);
        OSError when git cannot be started."""
        argv = self._argv(command)
        log.debug("git: %s (in %s)", " ".join(command[1:]), self.cwd)
        proc = subprocess.Popen(argv, cwd=self.cwd, env=self._env(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # OSError: no git
        if as_process:
            return GitProcess(proc, command)
        try:
            out, err = proc.communicate(timeout=kill_after_timeout)
        except subprocess.TimeoutExpired:
            # Killed, and not waited for to the end of its output: a helper it started (a remote
            # transport) may hold the pipes open for as long as it runs.
            proc.kill()
            proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            raise GitFailed(command, -9, f"Timeout: the command \"{' '.join(command[:2])}\" did not complete in "
                                         f"{kill_after_timeout:g} secs.") from None
        status, stdout, stderr = proc.returncode, _text(out), _text(err)
        if with_exceptions and status != 0:
            raise GitFailed(command, status, stderr)
        return (status, stdout, stderr) if with_extended_output else stdout

    def clear_cache(self) -> None:
        """Nothing is kept between commands (GitPython's `Git` keeps `cat-file` processes)."""
