"""Generate schemas/desired-state.schema.json from the desired-state models.

Run `python -m reconciler.desired.schema` after changing reconciler/desired/models.py; a test fails while the
committed file is out of date. Editors use the schema through the `yaml-language-server` modeline.
`render_schema` and `write_schema` serve every published schema (the plan's too).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from reconciler.desired.models import DesiredState
from reconciler.fsutil import atomic_write

SCHEMAS_DIR = Path(__file__).resolve().parent.parent.parent / "schemas"
SCHEMA_PATH = SCHEMAS_DIR / "desired-state.schema.json"
SCHEMA_BASE = "https://github.com/mox-reconciler/mox-reconciler/schemas/"
SCHEMA_ID = SCHEMA_BASE + SCHEMA_PATH.name


def render_schema(model: type[BaseModel], schema_id: str) -> str:
    """A model's JSON schema text, deterministic (sorted keys), with a trailing newline."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id,
              **model.model_json_schema()}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema(text: str, default: Path, argv: list[str] | None) -> int:
    """Write a schema to the path given on the command line, else to `default` (argparse, so that
    `--help` or a typo'd option is answered instead of becoming a file name)."""
    parser = argparse.ArgumentParser(description=f"Write the JSON schema (default: {default}).")
    parser.add_argument("output", nargs="?", type=Path, default=default, help="where to write it")
    target: Path = parser.parse_args(sys.argv[1:] if argv is None else argv).output
    atomic_write(target, text.encode())
    print(f"wrote {target}")
    return 0


def render() -> str:
    return render_schema(DesiredState, SCHEMA_ID)


def main(argv: list[str] | None = None) -> int:
    return write_schema(render(), SCHEMA_PATH, argv)


if __name__ == "__main__":
    sys.exit(main())
