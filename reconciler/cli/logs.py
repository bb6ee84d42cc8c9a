"""Logging setup for the CLI: human lines on a terminal, JSON lines for containers.

The library only logs through `logging.getLogger(__name__)`; only the CLI installs handlers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                obj[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


def setup_logging(fmt: str = "text", *, debug: bool = False, verbose: bool = True) -> None:
    """Install the handler; without `verbose` only warnings and errors are logged."""
    root = logging.getLogger("reconciler")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    root.propagate = False


class _Instance(logging.Filter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.instance = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance = self.instance
        return True


def tag_instance(name: str) -> None:
    """Every log record carries `instance` (a field of JSON lines): many mox servers, one log store."""
    for handler in logging.getLogger("reconciler").handlers:
        handler.addFilter(_Instance(name))


def use_timestamps() -> None:
    """Prefix text log lines with the local time (long-running commands such as `watch`)."""
    for handler in logging.getLogger("reconciler").handlers:
        if not isinstance(handler.formatter, JSONFormatter):
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
