"""Apply a list of primitives as one transaction: fold in memory, make keys, validate once, write once.

Order on disk: new DKIM key files first (final names, O_EXCL, 0640), because mox reads every
selector's key when it loads domains.conf (mox-/config.go prepareDynamicConfig) and writes its own
keys before the config (admin/admin.go MakeDomainConfig, DKIMAdd); then the validated domains.conf
(atomic replace); then retired keys move to `dkim/old/` (admin/admin.go DKIMRemove, DomainRemove).
Any failure before the replace removes the new key files again, so a failed batch leaves nothing
behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from reconciler.apply import keyfiles, writer
from reconciler.apply.keymaker import KeyMaker, Progress, generate_keys
from reconciler.errors import REPORTED, ConcurrentChange, ConfigInvalid, LiveConfigError, MoxError, ReconcilerError
from reconciler.mox import sconf
from reconciler.mox.admin import Context, Effect, Operation, now_local, used_key_paths
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.keygen import KeyRequest
from reconciler.mox.live import ConfigPaths, account_dirs, read_static

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
class BatchResult:
    """What a batch did on disk."""

    path: Path
    written: bool
    keys_created: tuple[str, ...] = ()
    keys_retired: tuple[str, ...] = ()
    keys_left: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    attempts: int = 1
    verification: writer.Verification | None = None
    timings: dict[str, float] = field(default_factory=dict)
    sha256: str = ""  # of the domains.conf written (validated: a base for the next validation)
    dynamic: Dynamic | None = None  # the config written


def _cleanup_temp_files(config_dir: Path) -> None:
    """Remove temp files of a crashed earlier write (only ours: `.domains.conf.<pid>.tmp`)."""
    for name in writer.config_dir_of(config_dir).remove_temps(config_dir / "domains.conf"):
        log.info("apply: removed %s left by an interrupted write", config_dir / name)


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

    def __init__(self, paths: ConfigPaths, pems: dict[str, bytes]) -> None:
        self.paths = paths
        self.pems = pems
        self.created: list[Path] = []

    def remove_created(self) -> None:
        shared = writer.config_dir_of(self.paths.config_dir)
        for p in reversed(self.created):
            try:
                shared.remove(p)
            except (ReconcilerError, MoxError, OSError) as e:
                log.error("apply: cannot remove new key file %s after failure: %s", p,
                          getattr(e, "strerror", None) or e)
        self.created.clear()


def apply_batch(
    paths: ConfigPaths,
    ops: Sequence[Operation],
    *,
    now: datetime | None = None,
    workers: int | None = None,
    validator: Validator | None = None,
    verify: bool = False,
    verify_wait: float = writer.RELOAD_WINDOW,
    retries: int = 2,
    lock_timeout: float = 30.0,
    progress: Progress | None = None,
    keys: KeyMaker | None = None,
) -> BatchResult:
    """Apply `ops` as one transaction against the mox config at `paths`.

    Raises RequestError/PrimitiveError (a precondition), ConfigInvalid (the result would not
    validate), ConcurrentChange (domains.conf kept changing under us `retries`+1 times), LockTimeout.
    In all those cases domains.conf is unchanged and no new key file is left behind.
    `keys`: where new keys come from (keys the plan named may be under way there already);
    default: a KeyMaker of `workers` threads for this batch.
    """
    validate = validator or default_validator
    config_dir = paths.config_dir
    pems: dict[str, bytes] = {}  # Reused across retries: RSA keys are expensive.
    timings: dict[str, float] = {"keygen": 0.0, "validate": 0.0, "write": 0.0}
    static = read_static(paths)
    for attempt_no in range(1, retries + 2):
        attempt = _Attempt(paths, pems)
        with writer.config_lock(config_dir, lock_timeout):
            _cleanup_temp_files(config_dir)
            snap = writer.read_stable(paths.domains_conf)
            data_dir = paths.data_dir(static)
            ctx = Context(static, now or now_local(), data_dir, account_dirs(data_dir))
            effect = fold(ops, snap.dynamic, ctx)
            if not effect.dynamic.Domains or not effect.dynamic.Accounts:
                raise ReconcilerError("refusing to write a domains.conf without domains or accounts")
            try:
                t0 = time.perf_counter()
                missing = [r for r in effect.new_keys if r.path not in pems]
                made = keys.pems(missing, progress) if keys is not None else generate_keys(missing, workers, progress)
                for req, pem in zip(missing, made, strict=True):
                    pems[req.path] = pem
                timings["keygen"] += time.perf_counter() - t0
                referenced = used_key_paths(snap.dynamic)
                for req in effect.new_keys:
                    if os.path.lexists(config_dir / req.path) and req.path not in referenced:
                        _park_orphan(config_dir, req.path, snap.stat)
                    writer.checkpoint("key-file")
                    try:
                        new = keyfiles.write_key_file(config_dir, req.path, pems[req.path], snap.stat)
                    except REPORTED:
                        raise
                    except OSError as e:
                        raise LiveConfigError(
                            f"writing key file: creating file {config_dir / req.path}: {e.strerror or e}"
                        ) from None
                    attempt.created.append(new)
                shared = writer.config_dir_of(config_dir)
                for key_dir in sorted({(config_dir / r.path).parent for r in effect.new_keys}):
                    shared.fsync(key_dir)  # the new key files are durable before domains.conf names them
                t0 = time.perf_counter()
                try:
                    validate(static, effect.dynamic, config_dir)
                except ConfigInvalid as e:
                    raise ConfigInvalid(e.errors, where="writing domains.conf") from None
                timings["validate"] += time.perf_counter() - t0
                try:
                    data = sconf.write_bytes(effect.dynamic)
                except sconf.WriteRefused as e:
                    raise ReconcilerError(f"writing domains.conf: {e}") from None
                t0 = time.perf_counter()
                writer.replace(snap, data)
                timings["write"] += time.perf_counter() - t0
            except ConcurrentChange as e:
                attempt.remove_created()
                if attempt_no > retries:
                    raise
                log.warning("apply: %s; retrying (attempt %d)", e, attempt_no + 1)
                continue
            except BaseException:
                attempt.remove_created()
                raise
            writer.checkpoint("after-commit")
            still_used = used_key_paths(effect.dynamic)
            retired: list[str] = []
            left: list[str] = []
            for rel in dict.fromkeys(effect.retired_keys):
                if not rel or str(PurePosixPath(rel)) in still_used:
                    left.append(rel)
                    continue
                moved, why = _move_to_old(config_dir, rel, snap.stat)
                if moved:
                    retired.append(rel)
                else:
                    log.error("apply: renaming dkim private key file for removed selector: %s", why)
                    left.append(rel)
        for note in effect.notes:
            log.info("apply: %s", note)
        verification = writer.verify(paths.domains_conf, data, verify_wait) if verify else None
        if verification is not None and not verification.ok:
            log.error("apply: %s", verification.message)
        return BatchResult(
            path=paths.domains_conf,
            written=True,
            keys_created=tuple(r.path for r in effect.new_keys),
            keys_retired=tuple(retired),
            keys_left=tuple(left),
            notes=effect.notes,
            attempts=attempt_no,
            verification=verification,
            timings=timings,
            sha256=hashlib.sha256(data).hexdigest(),
            dynamic=effect.dynamic,
        )
    raise AssertionError("unreachable")  # pragma: no cover
