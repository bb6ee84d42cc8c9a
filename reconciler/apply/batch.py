"""Apply a list of primitives as one transaction: fold in memory, make keys, validate once, write once.

Order on disk: new DKIM key files first (final names, O_EXCL, 0640), because mox reads every
selector's key when it loads domains.conf (mox-/config.go prepareDynamicConfig) and writes its own
keys before the config (admin/admin.go MakeDomainConfig, DKIMAdd); then the validated domains.conf
(atomic replace); then retired keys move to `dkim/old/` (admin/admin.go DKIMRemove, DomainRemove).
Any failure before the replace removes the new key files again, so a failed batch leaves nothing
behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from reconciler.apply import journal, keyfiles, writer
from reconciler.apply.keymaker import KeyMaker, Progress, generate_keys
from reconciler.errors import REPORTED, ConcurrentChange, ConfigInvalid, LiveConfigError, MoxError, ReconcilerError
from reconciler.mox import sconf
from reconciler.mox.admin import Context, Effect, Operation, now_local, used_key_paths
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.keygen import KeyRequest
from reconciler.mox.live import ConfigPaths, account_dirs, read_static
from reconciler.plan.inventory import Inventory, read_inventory, write_inventory

log = logging.getLogger(__name__)

Validator = Callable[[Static, Dynamic, Path], None]


def fold(ops: Sequence[Operation], dynamic: Dynamic, ctx: Context) -> Effect:
    """Apply `ops` in order, each against the config as changed by the ones before it (pure)."""
    keys: list[KeyRequest] = []
    retired: list[str] = []
    notes: list[str] = []
    for i, op in enumerate(ops):
        try:
            eff = op.apply(dynamic, ctx)
        except REPORTED as e:
            if len(ops) > 1:
                e.add_note(f"operation {i + 1} of {len(ops)}: {op.describe()}")
            log.error("apply: operation %d failed: %s: %s", i + 1, op.describe(), e)
            raise
        dynamic = eff.dynamic
        keys.extend(eff.new_keys)
        retired.extend(eff.retired_keys)
        notes.extend(eff.notes)
    # A key made by one operation and dropped by a later one (DomainAdd's default selectors that
    # the desired state replaces) is never generated, written or moved to old/.
    used = used_key_paths(dynamic)
    born = {k.path for k in keys}
    keys = [k for k in keys if k.path in used]
    retired = [r for r in retired if r not in born]
    return Effect(dynamic, tuple(keys), tuple(retired), tuple(notes))


def default_validator(static: Static, dynamic: Dynamic, config_dir: Path) -> None:
    """mox's full validation (reconciler.mox.validate), raising ConfigInvalid."""
    from reconciler.mox.validate import require_valid  # Late: keeps `batch` importable without the validator's deps.

    require_valid(static, dynamic, config_dir)


@dataclass(frozen=True, slots=True)
class Work:
    """What one locked write does, decided against domains.conf and the inventory as they are then."""

    operations: tuple[Operation, ...]
    inventory: Inventory | None = None  # the inventory after the write (None: leave it as it is)
    commit: dict[str, Any] | None = None  # the source commit, recorded in the inventory file
    now: datetime | None = None  # the time the operations were planned at (key file names)
    replanned: bool = False  # planned again under the lock: domains.conf or the inventory had changed
    descriptions: tuple[str, ...] = ()  # one line per operation as the plan shows it (default: its own)

    def described(self) -> list[str]:
        return list(self.descriptions) if self.descriptions else [op.describe() for op in self.operations]


# Decides the write under the lock, from domains.conf (as read then) and the inventory.
PlanFor = Callable[[writer.Snapshot, Inventory], Work]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch did on disk."""

    path: Path
    written: bool
    state: writer.Snapshot  # domains.conf after the batch: as written, or as read (nothing to write)
    operations: tuple[Operation, ...] = ()
    keys_created: tuple[str, ...] = ()
    keys_retired: tuple[str, ...] = ()
    keys_left: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    attempts: int = 1
    inventory_changed: bool = False
    replanned: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    sha256: str = ""  # of the domains.conf written (validated: a base for the next validation)
    dynamic: Dynamic | None = None  # the config written
    # The file the write replaced, when that is exactly domains.conf as read under the lock (no
    # write of mox's slipped in at the rename): what `confirm` compares mox's memory with.
    before: writer.Snapshot | None = None


def remove_leftovers(paths: ConfigPaths, current: writer.Snapshot, move_to_old: Callable[[str], bool]) -> None:
    """What killed applies left (under the lock): temp files of processes that no longer run, in
    the config dir and every key directory; key files their journals list (journal.py)."""
    config_dir = paths.config_dir
    shared = writer.config_dir_of(config_dir)
    for name in shared.remove_temps(paths.domains_conf):  # only a lock holder writes it: all are stale
        log.info("apply: removed %s left by an interrupted write", config_dir / name)
    referenced = used_key_paths(current.dynamic)
    key_dirs = {config_dir / "dkim"} | {(config_dir / p).parent for p in referenced}
    for d in sorted({config_dir, *key_dirs, *(k / "old" for k in key_dirs)}):
        for name in shared.remove_stale_temps(d):
            log.info("apply: removed %s left by an interrupted write", d / name)
    journal.settle_dead(config_dir, shared, referenced, current.stat, move_to_old)


def _move_to_old(config_dir: Path, relpath: str, like: os.stat_result | None) -> tuple[bool, str]:
    """Move a key file to `<dir>/old/<name>` like mox's moveAwayKeys; never overwrite, never delete,
    never through a link (`old/` is created owned like `like`, domains.conf)."""
    rel = PurePosixPath(relpath)
    src = config_dir / rel
    dst = config_dir / rel.parent / "old" / rel.name
    try:
        keyfiles.key_dir(config_dir, like).move(src, dst)
    except FileExistsError:
        return False, f"not moving {src} to {dst}: destination already exists"
    except FileNotFoundError:
        return False, f"not moving {src}: file does not exist"
    except ValueError:
        return False, f"not moving {src}: not inside the config dir {config_dir}"
    except REPORTED as e:
        return False, f"moving {src} to {dst}: {e}"
    except OSError as e:
        return False, f"moving {src} to {dst}: {e.strerror or e}"
    return True, ""


def mover(config_dir: Path, like: os.stat_result | None) -> Callable[[str], bool]:
    """`_move_to_old` for a journal: True when moved; why not is logged."""
    def move(relpath: str) -> bool:
        moved, why = _move_to_old(config_dir, relpath, like)
        if not moved:
            log.error("apply: %s", why)
        return moved
    return move


def _park_orphan(config_dir: Path, relpath: str, like: os.stat_result) -> None:
    """A key file at a name we are about to create, unreferenced by the config: left by a crashed batch.

    Move it to old/ rather than delete it (key files are never deleted).
    """
    moved, why = _move_to_old(config_dir, relpath, like)
    if not moved:
        raise LiveConfigError(f"{config_dir / relpath}: already exists and cannot be moved away ({why})")
    log.warning("apply: moved unreferenced key file %s (left by an interrupted run) to old/", relpath)


class _Attempt:
    """One read-fold-write attempt under the lock; key files it created are removed unless committed."""

    def __init__(self, paths: ConfigPaths, keys: journal.KeyJournal) -> None:
        self.paths = paths
        self.journal = keys
        self.created: list[Path] = []

    def remove_created(self) -> None:
        shared = writer.config_dir_of(self.paths.config_dir)
        removed = []
        for p in reversed(self.created):
            try:
                shared.remove(p)
                removed.append(p)
            except (ReconcilerError, MoxError, OSError) as e:
                log.error("apply: cannot remove new key file %s after failure: %s", p,
                          getattr(e, "strerror", None) or e)
        self.journal.forget(str(p.relative_to(self.paths.config_dir)) for p in removed)
        self.created.clear()


@dataclass
class _Written:
    """One committed write of domains.conf."""

    state: writer.Snapshot
    effect: Effect
    displaced: writer.Snapshot | None
    base: writer.Snapshot  # the config this write was made on top of


def apply_batch(
    paths: ConfigPaths,
    work: Sequence[Operation] | PlanFor,
    *,
    now: datetime | None = None,
    workers: int | None = None,
    validator: Validator | None = None,
    retries: int = 2,
    lock_timeout: float = 30.0,
    progress: Progress | None = None,
    keys: KeyMaker | None = None,
    key_journal: journal.KeyJournal | None = None,
    known: Sequence[writer.Parsed] = (),
    written_by_us: Collection[str] = (),
    after_rename: Callable[[], None] | None = None,
) -> BatchResult:
    """Apply `work` as one transaction against the mox config at `paths`.

    `work` is the operations, or a `PlanFor` that decides them under the lock from domains.conf
    and the inventory as they are then (and gives the inventory to write, under the same lock).
    `key_journal`: the apply's key journal (settled by the caller); without one, the batch settles its own.
    Raises RequestError/PrimitiveError (a precondition), ConfigInvalid (the result would not
    validate), ConcurrentChange (domains.conf kept changing under us `retries`+1 times), LockTimeout.
    In all those cases domains.conf is unchanged and no new key file is left behind.
    `keys`: where new keys come from (keys the plan named may be under way there already);
    default: a KeyMaker of `workers` threads for this batch.
    `known`: domains.conf bytes already parsed (the plan's read), not parsed again (`writer.read_stable`).
    `written_by_us`: SHA-256 digests of files this writer wrote: on such a file, the entries
    the operations leave unchanged keep their bytes (`sconf.write_bytes_reusing`).
    `after_rename`: runs right after each rename, before the replaced file is looked at for a
    write of mox's (`writer.replace`).
    """
    plan_for: PlanFor = work if callable(work) else _fixed(tuple(work))
    config_dir = paths.config_dir
    own_journal = key_journal is None
    journal_ = key_journal if key_journal is not None else journal.KeyJournal(config_dir,
                                                                              writer.config_dir_of(config_dir))
    pems: dict[str, bytes] = {}  # Reused across retries: RSA keys are expensive.
    timings: dict[str, float] = {"keygen": 0.0, "validate": 0.0, "write": 0.0}
    static = read_static(paths)
    for attempt_no in range(1, retries + 2):
        with writer.config_lock(config_dir, lock_timeout), _settled(paths, journal_ if own_journal else None, known):
            snap = writer.read_stable(paths.domains_conf, known=known)
            remove_leftovers(paths, snap, mover(config_dir, snap.stat))
            inventory = read_inventory(config_dir)
            w = plan_for(snap, inventory)
            try:
                written = _write(paths, static, snap, w, now, validator, pems, timings, journal_, keys, workers,
                                 progress, written_by_us, after_rename) if w.operations else None
            except ConcurrentChange as e:
                if attempt_no > retries:
                    raise
                log.warning("apply: %s; retrying (attempt %d)", e, attempt_no + 1)
                continue
            retired: list[str] = []
            left: list[str] = []
            state = snap
            if written is not None:
                writer.checkpoint("after-commit")
                state = written.state
                retired, left = _retire(config_dir, written.effect, snap.stat)
            inventory_changed = w.inventory is not None and w.inventory != inventory
            if w.inventory is not None and inventory_changed:
                writer.checkpoint("inventory")
                write_inventory(config_dir, w.inventory, w.commit)
        effect = written.effect if written is not None else None
        for note in effect.notes if effect is not None else ():
            log.info("apply: %s", note)
        return BatchResult(
            path=paths.domains_conf,
            written=written is not None,
            state=state,
            operations=w.operations,
            keys_created=tuple(r.path for r in effect.new_keys) if effect is not None else (),
            keys_retired=tuple(retired),
            keys_left=tuple(left),
            notes=effect.notes if effect is not None else (),
            attempts=attempt_no,
            inventory_changed=inventory_changed,
            replanned=w.replanned,
            timings=timings,
            sha256=hashlib.sha256(written.state.data).hexdigest() if written is not None else "",
            dynamic=effect.dynamic if effect is not None else None,
            before=snap if written is not None and written.base is snap and written.displaced is None else None,
        )
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def _settled(paths: ConfigPaths, keys: journal.KeyJournal | None,
             known: Sequence[writer.Parsed] = ()) -> Iterator[None]:
    """Settle `keys` (under the lock) however the block ends: against domains.conf as it is then."""
    try:
        yield
    finally:
        if keys is not None and keys.entries:
            now = writer.read_stable(paths.domains_conf, known=known)
            keys.settle(used_key_paths(now.dynamic), now.stat, mover(paths.config_dir, now.stat))


def _fixed(ops: tuple[Operation, ...]) -> PlanFor:
    """The same operations whatever the file holds; the inventory is left alone."""
    return lambda _snap, _inventory: Work(ops)


def _write(paths: ConfigPaths, static: Static, snap: writer.Snapshot, w: Work, now: datetime | None,
           validator: Validator | None, pems: dict[str, bytes], timings: dict[str, float],
           keys: journal.KeyJournal, maker: KeyMaker | None, workers: int | None,
           progress: Progress | None, written_by_us: Collection[str] = (),
           after_rename: Callable[[], None] | None = None) -> _Written:
    """Fold, make the keys, validate and write domains.conf (under the lock), again on top of
    mox's version as long as mox's in-place write was displaced by our rename."""
    base, expect = snap, snap
    ours: set[str] = set()  # key files this batch wrote (a write on top of mox's reuses them)
    data_dir = paths.data_dir(static)
    ctx = Context(static, w.now or now or now_local(), data_dir, account_dirs(data_dir))
    last: _Written | None = None
    while True:
        attempt = _Attempt(paths, keys)
        try:
            effect = fold(w.operations, base.dynamic, ctx)
            if not effect.dynamic.Domains or not effect.dynamic.Accounts:
                raise ReconcilerError("refusing to write a domains.conf without domains or accounts")
            _write_keys(paths, base, effect, pems, timings, attempt, ours, maker, workers, progress)
            _validate(validator, static, effect.dynamic, paths.config_dir, timings)
            try:
                data = (sconf.write_bytes_reusing(effect.dynamic, base.data, base.dynamic)
                        if written_by_us and base.digest in written_by_us else sconf.write_bytes(effect.dynamic))
            except sconf.WriteRefused as e:
                raise ReconcilerError(f"writing domains.conf: {e}") from None
            t0 = time.perf_counter()
            replaced = writer.replace(expect, data, not_mtime=base.mtime_ns, after_rename=after_rename)
            timings["write"] += time.perf_counter() - t0
        except BaseException as e:
            attempt.remove_created()
            if last is None or not isinstance(e, Exception):
                raise
            log.error("apply: mox's write into the replaced %s cannot be kept: %s", paths.domains_conf, e)
            return last
        keys.published()
        ours.update(str(p.relative_to(paths.config_dir)) for p in attempt.created)
        state = writer.Snapshot(paths.domains_conf, data, effect.dynamic, replaced.stat)
        last = _Written(state, effect, replaced.displaced, base)
        if replaced.displaced is None:
            return last
        base, expect = replaced.displaced, state


def _write_keys(paths: ConfigPaths, base: writer.Snapshot, effect: Effect, pems: dict[str, bytes],
                timings: dict[str, float], attempt: _Attempt, ours: set[str], maker: KeyMaker | None,
                workers: int | None, progress: Progress | None) -> None:
    """New key files, durable before domains.conf names them, recorded in the journal first."""
    config_dir = paths.config_dir
    t0 = time.perf_counter()
    missing = [r for r in effect.new_keys if r.path not in pems]
    made = maker.pems(missing, progress) if maker is not None else generate_keys(missing, workers, progress)
    for req, pem in zip(missing, made, strict=True):
        pems[req.path] = pem
    timings["keygen"] += time.perf_counter() - t0
    todo = [r for r in effect.new_keys if r.path not in ours]
    attempt.journal.intend((r.path for r in todo), base.stat)
    if todo:
        writer.checkpoint("journal")
    referenced = used_key_paths(base.dynamic)
    for req in todo:
        if os.path.lexists(config_dir / req.path) and req.path not in referenced:
            _park_orphan(config_dir, req.path, base.stat)
        writer.checkpoint("key-file")
        try:
            new = keyfiles.write_key_file(config_dir, req.path, pems[req.path], base.stat,
                                          before_link=lambda: writer.checkpoint("key-temp"))
        except REPORTED:
            raise
        except OSError as e:
            raise LiveConfigError(
                f"writing key file: creating file {config_dir / req.path}: {e.strerror or e}"
            ) from None
        attempt.created.append(new)
    shared = writer.config_dir_of(config_dir)
    for key_dir in sorted({(config_dir / r.path).parent for r in todo}):
        shared.fsync(key_dir)  # the new key files are durable before domains.conf names them


def _validate(validator: Validator | None, static: Static, dynamic: Dynamic, config_dir: Path,
              timings: dict[str, float]) -> None:
    t0 = time.perf_counter()
    try:
        (validator or default_validator)(static, dynamic, config_dir)
    except ConfigInvalid as e:
        raise ConfigInvalid(e.errors, where="writing domains.conf") from None
    timings["validate"] += time.perf_counter() - t0


def _retire(config_dir: Path, effect: Effect, like: os.stat_result) -> tuple[list[str], list[str]]:
    """Move the key files of removed selectors to old/ (unless still named): (moved, left)."""
    still_used = used_key_paths(effect.dynamic)
    retired: list[str] = []
    left: list[str] = []
    for rel in dict.fromkeys(effect.retired_keys):
        if not rel or str(PurePosixPath(rel)) in still_used:
            left.append(rel)
            continue
        moved, why = _move_to_old(config_dir, rel, like)
        if moved:
            retired.append(rel)
        else:
            log.error("apply: renaming dkim private key file for removed selector: %s", why)
            left.append(rel)
    return retired, left
