"""Key-generation progress: reported per key, in the caller's thread and across generator threads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.apply.batch import generate_keys
from reconciler.cli.apply import key_progress
from reconciler.mox import keygen

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("count", "workers"), [(2, 1), (5, 2)])  # in the caller's thread / in threads
def test_progress_counts_every_key(count: int, workers: int) -> None:
    reqs = [keygen.KeyRequest(f"s{i}", "example.org", keygen.ED25519, NOW) for i in range(count)]
    seen: list[tuple[int, int]] = []
    pems = generate_keys(reqs, workers, lambda done, total: seen.append((done, total)))
    assert seen == [(i, count) for i in range(1, count + 1)]
    assert len(pems) == count and all(p.startswith(b"-----BEGIN PRIVATE KEY-----\n") for p in pems)
    assert len(set(pems)) == count


def test_no_progress_bar_without_a_terminal() -> None:
    with key_progress() as progress:  # pytest captures stderr: not a terminal
        assert progress is None
