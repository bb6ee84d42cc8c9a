"""New DKIM keys, generated on every core in threads of this process, started early.

RSA-2048 generation is nearly all of an apply that adds domains (mox's DomainAdd makes two keys
per domain). `cryptography` releases the GIL while OpenSSL searches for primes (measured with a
second thread spinning in Python: both ran at full speed; bench/README.md), so threads use every
core with none of a worker process's costs: no interpreter to start, nothing to import, nothing to
pickle, and nothing that can outlive us: the threads die with the process, even on SIGKILL.

The pipeline starts keys before the planner names them: as soon as it has the desired state and
domains.conf's bytes it knows which desired domains are new (a guess from the file's layout
first, made exact once it is parsed), and each new domain's DomainAdd makes two RSA-2048 keys, so
that many keys start (`prefetch`) while the file is parsed and the plan is made (seconds at
1,000 domains and more).
A key is random; only its file's name and Note header depend on its request, so a prefetched key
goes to the first request of its kind. The plan's own requests start as soon as it has named
them (`start`), while its result is validated, rendered and confirmed; the batch then takes them
(`pems`), generating any it asks for that were not started. Keys prefetched for domains the plan
does not add are never written: those not started are cancelled, those started are dropped.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

from reconciler.apply import writer
from reconciler.mox import keygen
from reconciler.mox.keygen import KeyRequest

Progress = Callable[[int, int], None]  # (keys done, keys in all): a terminal shows a bar


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class KeyMaker:
    """Generates KeyRequests in `workers` threads (default: every core); 1 = in the caller's thread.

    Use as a context manager (or call `close`): keys not started yet are cancelled on exit.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else cores()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        # Each future is a new key's PKCS#8 DER; its PEM (named for the request) is made on hand-out.
        self._futures: dict[KeyRequest, concurrent.futures.Future[bytes]] = {}
        self._spare: dict[str, list[concurrent.futures.Future[bytes]]] = {}  # prefetched, by kind
        self._lock = threading.Lock()

    def __enter__(self) -> KeyMaker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _new(self, kind: str) -> concurrent.futures.Future[bytes]:
        """A key of `kind` started in the pool (the caller holds the lock)."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="keygen")
        return self._pool.submit(_generate, kind)

    def _submit(self, req: KeyRequest) -> concurrent.futures.Future[bytes]:
        with self._lock:
            fut = self._futures.get(req)
            if fut is None:
                spare = self._spare.get(req.kind)
                fut = self._futures[req] = spare.pop(0) if spare else self._new(req.kind)
            return fut

    def prefetch(self, kind: str, count: int) -> None:
        """Have `count` keys of `kind` under way whose requests are not known yet (nothing
        happens with one worker); the next requests of that kind take them first. Spares from
        an earlier prefetch count: a watcher asking again for the same domains starts no more,
        and asking for fewer (a first guess that was too high) cancels the surplus."""
        if self.workers > 1:
            with self._lock:
                spare = self._spare.setdefault(kind, [])
                surplus = spare[count:]
                del spare[count:]
                spare.extend(self._new(kind) for _ in range(count - len(spare)))
            for fut in surplus:
                fut.cancel()  # one already being generated finishes and is dropped

    def spare(self) -> int:
        """Prefetched keys no request has taken yet."""
        with self._lock:
            return sum(len(futures) for futures in self._spare.values())

    def start(self, reqs: Iterable[KeyRequest]) -> None:
        """Begin generating `reqs` in the background (nothing happens with one worker)."""
        if self.workers > 1:
            for req in reqs:
                self._submit(req)

    def pems(self, reqs: Sequence[KeyRequest], progress: Progress | None = None) -> list[bytes]:
        """The PEM file contents for each of `reqs`, in order; waits for those started, starts
        the others. Each key is handed out once (a later call generates a new one)."""
        total = len(reqs)
        if self.workers <= 1:
            out = []
            for i, req in enumerate(reqs, 1):
                with self._lock:
                    fut = self._futures.pop(req, None)
                out.append(keygen.pem_for(req, fut.result() if fut is not None else _generate(req.kind)))
                if progress is not None:
                    progress(i, total)
            return out
        futures = [self._submit(req) for req in reqs]
        try:
            if progress is not None:
                for i, _done in enumerate(concurrent.futures.as_completed(futures), 1):
                    progress(i, total)
            return [keygen.pem_for(req, f.result()) for req, f in zip(reqs, futures, strict=True)]
        finally:
            with self._lock:
                for req in reqs:
                    self._futures.pop(req, None)

    def discard(self) -> None:
        """Forget the keys not handed out (a plan that was not applied, prefetched keys no request
        took); cancel those not started."""
        with self._lock:
            futures = [*self._futures.values(), *(f for spare in self._spare.values() for f in spare)]
            self._futures, self._spare = {}, {}
        for fut in futures:
            fut.cancel()

    def close(self) -> None:
        """Cancel what has not started and stop the threads; a key being generated finishes
        first (a fraction of a second)."""
        self.discard()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _generate(kind: str) -> bytes:
    writer.checkpoint("keygen")  # where a crash test kills an apply during key generation
    return keygen.new_key_der(kind)


def generate_keys(reqs: Sequence[KeyRequest], workers: int | None = None,
                  progress: Progress | None = None) -> list[bytes]:
    """PEM contents for each request, generated on `workers` cores (default: all)."""
    with KeyMaker(workers) as maker:
        return maker.pems(reqs, progress)
