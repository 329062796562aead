"""Server secrets in the data directory: made once, the same for every process that reads them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from a2a_gateway.storage import secrets as secrets_module
from a2a_gateway.storage.secrets import load_or_create


def test_a_secret_is_made_once_and_read_back(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, "pepper")
    assert len(first) == 32 and load_or_create(tmp_path, "pepper") == first
    assert (tmp_path / "secrets" / "pepper").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "secrets").iterdir()] == ["pepper"]  # no draft left behind


def test_a_process_that_comes_second_never_reads_a_half_written_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two sibling workers start at once: the second looks while the first is still writing.
    seen: list[bytes] = []
    real_fdopen = os.fdopen

    def slow_fdopen(fd: int, mode: str) -> object:
        if not seen:  # once: the other process, in the middle of this one's write
            seen.append(b"")
            seen[0] = load_or_create(tmp_path, "pepper")
        return real_fdopen(fd, mode)

    monkeypatch.setattr(secrets_module.os, "fdopen", slow_fdopen, raising=True)
    first = load_or_create(tmp_path, "pepper")
    monkeypatch.undo()
    assert len(first) == 32
    assert len(seen[0]) == 32 and first == seen[0]  # whoever linked first, both have the same secret


def test_threads_racing_agree_on_one_secret(tmp_path: Path) -> None:
    barrier = threading.Barrier(16)
    got: list[bytes] = []

    def take() -> None:
        barrier.wait()
        got.append(load_or_create(tmp_path, "pepper"))

    threads = [threading.Thread(target=take) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 1 and len(got[0]) == 32
