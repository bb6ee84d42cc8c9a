"""The argument parser: a verb's module is imported only when that verb is chosen, and every
option takes its default from a `MOX_RECONCILER_<OPTION>` environment variable.

Why: `--version` and `--help` must not pay for importing every verb (pydantic, GitPython,
cryptography: about a second of CPU), and deploy files (systemd, compose, Kubernetes) set options
as plain variables instead of expanding them into command lines. The command line wins over the
environment; an empty variable counts as unset; a bad value is one error naming the variable.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

ENV_PREFIX = "MOX_RECONCILER_"
USAGE_EXIT = 1  # a bad command line or option variable; 2 is kept for "changes" / "mismatches"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# The actions whose default a variable can give: a value, a flag, a list (`--domain a --domain b`).
_VALUE_ACTIONS = (argparse._StoreAction, argparse._StoreConstAction, argparse._AppendAction)


@dataclass(frozen=True)
class Verb:
    """A verb as `--help` lists it; `module` (with `configure(parser)`) is imported when chosen."""

    name: str
    module: str
    help: str


@dataclass(frozen=True)
class EnvValue:
    """An option's default that came from the environment, converted after parsing (so a bad
    value the command line overrides is never an error)."""

    var: str
    raw: str
    fallback: Any


class EnvList(list[str]):
    """The default of an append option from the environment; items appended by the command line
    replace it instead of adding to it."""

    def __init__(self, var: str, raw: str) -> None:
        super().__init__()
        self.var = var
        self.raw = raw


def env_name(action: argparse.Action) -> str | None:
    """`--require-signed-commits` -> MOX_RECONCILER_REQUIRE_SIGNED_COMMITS; an optional
    positional (SOURCE) by its name; None for what has no default to give."""
    if not isinstance(action, _VALUE_ACTIONS):
        return None
    if action.option_strings:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs:
            return None
        name = max(longs, key=len)[2:]
    elif action.nargs == "?":
        name = action.dest
    else:
        return None
    return ENV_PREFIX + name.upper().replace("-", "_")


class Parser(argparse.ArgumentParser):
    """ArgumentParser with environment defaults and lazily configured verbs (see the module doc)."""

    def __init__(self, *args: Any, environ: Mapping[str, str] | None = None,
                 env_actions: list[tuple[Parser, argparse.Action]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self._is_root = env_actions is None
        # Shared by the whole tree of parsers: the root converts them all after parsing.
        self._env_actions: list[tuple[Parser, argparse.Action]] = [] if env_actions is None else env_actions
        self.register("action", "parsers", Verbs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        var = env_name(action)
        if var is None:
            return action
        if action.help is not argparse.SUPPRESS:
            action.help = f"{action.help or ''} [env: {var}]".lstrip()
        raw = self.environ.get(var, "")
        if raw:
            action.default = (EnvList(var, raw) if isinstance(action, argparse._AppendAction)
                              else EnvValue(var, raw, action.default))
        self._env_actions.append((self, action))
        return action

    def add_subparsers(self, **kwargs: Any) -> Any:
        action = super().add_subparsers(**kwargs)
        assert isinstance(action, Verbs)  # registered in __init__
        action.parser_kwargs = {"environ": self.environ, "env_actions": self._env_actions}
        return action

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        if self._is_root:
            for parser, action in self._env_actions:
                value = getattr(ns, action.dest, None)
                if isinstance(value, EnvValue):
                    setattr(ns, action.dest, parser._from_env(action, value))
                elif isinstance(value, EnvList):
                    items = list(value) or [parser._convert(action, value.var, item)
                                            for item in re.split(r"[,\s]+", value.raw) if item]
                    setattr(ns, action.dest, items)
        return ns, extras

    def _from_env(self, action: argparse.Action, value: EnvValue) -> Any:
        if action.nargs == 0:  # a flag: --yes, --force
            word = value.raw.strip().lower()
            if word in _TRUE:
                return action.const
            if word in _FALSE:
                return value.fallback
            self._env_error(value.var, value.raw, "expected one of 1, true, yes, on, 0, false, no, off")
        return self._convert(action, value.var, value.raw)

    def _convert(self, action: argparse.Action, var: str, raw: str) -> Any:
        convert = action.type if callable(action.type) else str
        try:
            result = convert(raw)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
            self._env_error(var, raw, str(e) or "invalid value")
        if action.choices is not None and result not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            self._env_error(var, raw, f"invalid choice (choose from {choices})")
        return result

    def _env_error(self, var: str, raw: str, why: str) -> NoReturn:
        self.exit(USAGE_EXIT, f"{self.prog}: error: environment variable {var}={raw!r}: {why}\n")

    def error(self, message: str) -> NoReturn:
        """A usage error: argparse's message, exit 1 (argparse's own 2 means "changes" or
        "mismatches" here: `plan --detailed-exitcode`, `records --check`)."""
        self.print_usage(sys.stderr)
        self.exit(USAGE_EXIT, f"{self.prog}: error: {message}\n")


# mox's own default (reconciler.mox.live.DEFAULT_CONFIG; not imported: it would load the config types).
DEFAULT_CONFIG_HELP = "config/mox.conf"


def add_global_options(parser: argparse.ArgumentParser, *, after_verb: bool = False) -> None:
    """The options every verb takes: before the verb (`mox-reconciler --config X plan`), and
    after it (`mox-reconciler plan --config X`, where people put them). After the verb they
    have no default and no variable of their own, so they never override a value given before
    the verb or by MOX_RECONCILER_*."""
    def add(*names: str, default: Any = None, **kwargs: Any) -> None:
        if after_verb:
            argparse.ArgumentParser.add_argument(parser, *names, **kwargs, default=argparse.SUPPRESS)
        else:
            parser.add_argument(*names, **kwargs, **({} if default is None else {"default": default}))

    add("--config", metavar="PATH",
        help=f"mox.conf; domains.conf is read beside it (default: $MOXCONF or {DEFAULT_CONFIG_HELP})")
    add("--debug", action="store_true", help="show tracebacks and debug logs")
    add("-v", "--verbose", action="store_true", help="log progress (info level); always on for watch")
    add("--log-format", choices=["text", "json"], default="text", help="log line format (default: text)")


class Verbs(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands whose parsers are configured by their module when chosen (`add_verb`)."""

    parser_kwargs: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parser_kwargs = {}
        self._unloaded: dict[str, str] = {}

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        return super().add_parser(name, **self.parser_kwargs, **kwargs)

    def add_verb(self, verb: Verb) -> None:
        parser = self.add_parser(verb.name, help=verb.help, description=verb.help)
        add_global_options(parser, after_verb=True)
        self._unloaded[verb.name] = verb.module

    def configure(self, name: str) -> argparse.ArgumentParser:
        """The verb's full parser (imports its module the first time)."""
        parser: argparse.ArgumentParser = self._name_parser_map[name]
        module = self._unloaded.pop(name, None)
        if module is not None:
            importlib.import_module(module).configure(parser)
        return parser

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values and values[0] in self._unloaded:
            self.configure(values[0])
        super().__call__(parser, namespace, values, option_string)
