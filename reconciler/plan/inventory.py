"""The inventory: which live objects the reconciler owns (as Flux/Argo CD inventories).

Objects are `domain/<name>` and `account/<name>` (`objects.ObjectRef`); addresses, aliases and
DKIM selectors are parts of their domain or account. An object the desired state does not name and the inventory
does not list is never touched. The file lives beside domains.conf so it moves with the config.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import REPORTED, LiveConfigError
from reconciler.fsutil import SharedDir
from reconciler.plan.objects import ObjectRef

INVENTORY_FILE = "mox-reconciler.inventory.json"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Inventory:
    objects: frozenset[ObjectRef] = field(default_factory=frozenset)

    def owns(self, ref: ObjectRef) -> bool:
        return ref in self.objects

    def to_json(self, commit: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"version": VERSION, "objects": sorted(self.objects), "commit": commit}

    @staticmethod
    def of(refs: Iterable[str]) -> Inventory:
        """From references or their text (ValueError for text that is not one)."""
        return Inventory(frozenset(ObjectRef.parse(r) for r in refs))


def inventory_path(config_dir: Path) -> Path:
    return config_dir / INVENTORY_FILE


def _shared(config_dir: Path) -> SharedDir:
    """The config dir, shared with mox's user: the inventory is owned like domains.conf."""
    return SharedDir.of(config_dir / "domains.conf")


def read_inventory(config_dir: Path) -> Inventory:
    path = inventory_path(config_dir)
    try:
        data = json.loads(_shared(config_dir).read(path))
    except FileNotFoundError:
        return Inventory()
    except REPORTED as e:
        raise LiveConfigError(f"cannot read inventory: {e}") from None
    except (OSError, ValueError) as e:
        raise LiveConfigError(f"{path}: cannot read inventory: {e}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("objects"), list):
        raise LiveConfigError(f"{path}: not a version {VERSION} inventory file")
    try:
        return Inventory.of(str(o) for o in data["objects"])
    except ValueError as e:
        raise LiveConfigError(f"{path}: objects: {e}") from None


def write_inventory(config_dir: Path, inventory: Inventory, commit: dict[str, Any] | None = None) -> None:
    """Atomically and durably replace the inventory file (0640, owned like domains.conf)."""
    _shared(config_dir).write_json(inventory_path(config_dir), inventory.to_json(commit))
