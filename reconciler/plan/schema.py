"""Generate schemas/plan.schema.json (the current plan format version) from the plan document's models.

Run `python -m reconciler.plan.schema` after changing reconciler/plan/document.py; a test fails
while the committed file is out of date. CI jobs that read plan files can validate them with it.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel
from pydantic._internal._docs_extraction import extract_docstrings_from_cls

from reconciler.desired.schema import SCHEMA_BASE, SCHEMAS_DIR, render_schema, write_schema
from reconciler.plan.document import PlanDocument

SCHEMA_PATH = SCHEMAS_DIR / "plan.schema.json"
SCHEMA_ID = SCHEMA_BASE + SCHEMA_PATH.name


def _parts(model: type[BaseModel]) -> list[type[BaseModel]]:
    """`model` and every model class below it."""
    out = [model]
    for sub in model.__subclasses__():
        out.extend(_parts(sub))
    return out


def describe_fields(models: list[type[BaseModel]]) -> None:
    """Give fields their attribute docstrings as descriptions, as pydantic's
    `use_attribute_docstrings` would (done here so that importing the models stays fast)."""
    changed = False
    for cls in models:
        docs = extract_docstrings_from_cls(cls, use_inspect=True)
        for name, info in cls.model_fields.items():
            if info.description is None and name in docs:
                info.description = docs[name]
                changed = True
    if changed:
        for _ in range(2):  # a model embeds the schemas of those it holds: the second pass sees them all done
            for cls in models:
                cls.model_rebuild(force=True)


def render() -> str:
    describe_fields(_parts(PlanDocument.__mro__[1]))
    return render_schema(PlanDocument, SCHEMA_ID)


def main(argv: list[str] | None = None) -> int:
    return write_schema(render(), SCHEMA_PATH, argv)


if __name__ == "__main__":
    sys.exit(main())
