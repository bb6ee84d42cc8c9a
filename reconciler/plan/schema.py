"""Generate schemas/plan.schema.json (plan format version 1) from the plan document's models.

Run `python -m reconciler.plan.schema` after changing reconciler/plan/document.py; a test fails
while the committed file is out of date. CI jobs that read plan files can validate them with it.
"""

from __future__ import annotations

import sys

from reconciler.desired.schema import SCHEMA_BASE, SCHEMAS_DIR, render_schema, write_schema
from reconciler.plan.document import PlanDocument

SCHEMA_PATH = SCHEMAS_DIR / "plan.schema.json"
SCHEMA_ID = SCHEMA_BASE + SCHEMA_PATH.name


def render() -> str:
    return render_schema(PlanDocument, SCHEMA_ID)


def main(argv: list[str] | None = None) -> int:
    return write_schema(render(), SCHEMA_PATH, argv)


if __name__ == "__main__":
    sys.exit(main())
