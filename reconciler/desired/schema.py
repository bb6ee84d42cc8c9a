"""Generate schemas/desired-state.schema.json from the desired-state models.

Run `python -m reconciler.desired.schema` after changing reconciler/desired/models.py; a test fails while the
committed file is out of date. Editors use the schema through the `yaml-language-server` modeline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reconciler.desired.models import DesiredState

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "desired-state.schema.json"
SCHEMA_ID = "https://github.com/mox-reconciler/mox-reconciler/schemas/desired-state.schema.json"


def render() -> str:
    """The schema text, deterministic (sorted keys), with a trailing newline."""
    schema = DesiredState.model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else SCHEMA_PATH
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
