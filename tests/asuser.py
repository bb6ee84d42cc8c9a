"""Run a piece of test code as another user (mox's uid 1000, or a stranger), without a new interpreter.

The code runs in a forked child that drops to the uid/gid (no supplementary groups); its return
value or exception comes back pickled. A fork, because the interpreter and the virtualenv may
live where that user cannot read (here under /root), while the imported code is already in memory.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

MOX_UID = 1000  # `User: 1000` in the golden mox.conf
STRANGER_UID = 1001  # a uid that is neither root nor mox's user


def run_as(uid: int, fn: Callable[[], T], *, gid: int | None = None) -> T:
    """fn() as `uid` (gid defaults to uid); re-raises its exception here. Skips the test unless root."""
    if os.geteuid() != 0:
        pytest.skip(f"switching to uid {uid} needs root")
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(uid if gid is None else gid)
            os.setuid(uid)
            try:
                payload = pickle.dumps((True, fn()))
            except BaseException as e:  # everything goes back to the parent
                try:
                    payload = pickle.dumps((False, e))
                except Exception:
                    payload = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
            with os.fdopen(w, "wb") as f:
                f.write(payload)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"child running as uid {uid} died without an answer (wait status {status})")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
