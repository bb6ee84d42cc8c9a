"""The inventory: which live objects the reconciler owns (as Flux/Argo CD inventories).

Objects are `domain/<name>` and `account/<name>`; addresses, aliases and DKIM selectors are
parts of their domain or account. An object the desired state does not name and the inventory
does not list is never touched. The file lives beside domains.conf so it moves with the config.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import LiveConfigError
from reconciler.fsutil import atomic_write

INVENTORY_FILE = "mox-reconciler.inventory.json"
VERSION = 1


def domain_id(name: str) -> str:
    return f"domain/{name}"


def account_id(name: str) -> str:
    return f"account/{name}"


@dataclass(frozen=True, slots=True)
class Inventory:
    objects: frozenset[str] = field(default_factory=frozenset)

    def owns(self, object_id: str) -> bool:
        return object_id in self.objects

    def to_json(self, commit: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"version": VERSION, "objects": sorted(self.objects), "commit": commit}

    @staticmethod
    def of(ids: Iterable[str]) -> Inventory:
        return Inventory(frozenset(ids))


def inventory_path(config_dir: Path) -> Path:
    return config_dir / INVENTORY_FILE


def read_inventory(config_dir: Path) -> Inventory:
    path = inventory_path(config_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Inventory()
    except (OSError, ValueError) as e:
        raise LiveConfigError(f"{path}: cannot read inventory: {e}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("objects"), list):
        raise LiveConfigError(f"{path}: not a version {VERSION} inventory file")
    return Inventory(frozenset(str(o) for o in data["objects"]))


def write_inventory(config_dir: Path, inventory: Inventory, commit: dict[str, Any] | None = None) -> None:
    """Atomically replace the inventory file (temp file, fsync, rename)."""
    write_json_atomic(inventory_path(config_dir), inventory.to_json(commit))


def write_json_atomic(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(path, text.encode())
