"""Argon2 runs in worker threads, a bounded number at once, with the cost injected."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from a2a_gateway.auth.passwords import PasswordHashing
from tests.auth.identity_fakes import cheap_hasher, memory_auth


class GatedHasher(PasswordHasher):
    """A cheap hasher whose ``hash`` waits for the test to open a gate, reporting who entered."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.loop = loop
        self.gate = threading.Event()
        self.entered: asyncio.Queue[int] = asyncio.Queue()
        self.threads: set[int] = set()
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.threads.add(threading.get_ident())
        self.loop.call_soon_threadsafe(self.entered.put_nowait, threading.get_ident())
        assert self.gate.wait(10), "the test never opened the gate"
        with self._lock:
            self.inside -= 1
        return super().hash(password, salt=salt)


async def test_hashing_runs_off_the_loop_and_at_most_concurrency_at_once() -> None:
    hasher = GatedHasher(asyncio.get_running_loop())
    auth = memory_auth(passwords=PasswordHashing(hasher, concurrency=2))
    registrations = [asyncio.create_task(auth.register(f"u{i}@example.com", "long enough")) for i in range(4)]
    # Two hashes are inside Argon2 and blocked there; the loop still runs this test meanwhile.
    await hasher.entered.get()
    await hasher.entered.get()
    assert hasher.inside == 2 and hasher.entered.empty()
    assert threading.get_ident() not in hasher.threads
    hasher.gate.set()
    users = await asyncio.gather(*registrations)
    assert len({u.id for u in users}) == 4 and hasher.most_inside == 2


async def test_an_unknown_email_still_costs_a_verification() -> None:
    verified: list[str] = []

    class Recording(PasswordHashing):
        async def verify(self, hashed: str, password: str) -> bool:
            verified.append(password)
            return await super().verify(hashed, password)

    auth = memory_auth(passwords=Recording(cheap_hasher()))
    with pytest.raises(Exception, match="Invalid email or password"):
        await auth.login("ghost@example.com", "guess123")
    assert verified == ["guess123"]


async def test_the_dummy_hash_follows_the_injected_cost() -> None:
    hashing = PasswordHashing(cheap_hasher())
    await hashing.burn("whatever")  # makes its own dummy with the cheap parameters, then verifies
    made = await hashing.hash("pw")
    assert "m=8,t=1,p=1" in made and not hashing.needs_rehash(made)
    assert await hashing.verify(made, "pw") and not await hashing.verify(made, "other")
    assert not await hashing.verify("not a hash", "pw")


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PasswordHashing(concurrency=0)
