"""GCRA: the pure decision function and the in-memory store."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a2a_gateway.auth.rate_limit import Decision, Limit, MemoryRateLimitStore, gcra


def run(limit: Limit, times: list[float]) -> list[Decision]:
    tat: float | None = None
    decisions = []
    for now in times:
        decision, new_tat = gcra(tat, limit, now)
        tat = new_tat if new_tat is not None else tat
        decisions.append(decision)
    return decisions


limits = st.builds(
    Limit,
    count=st.integers(1, 20),
    period_seconds=st.sampled_from([0.5, 1.0, 10.0, 60.0]),
    burst=st.none() | st.integers(1, 10),
)
gaps = st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=60)
starts = st.sampled_from([0.0, 1234.5, 1_767_225_600.0])  # include epoch magnitudes (coarse floats)


def absolute(start: float, steps: list[float]) -> list[float]:
    times, now = [], start
    for gap in steps:
        now += gap
        times.append(now)
    return times


@settings(max_examples=300, deadline=None)
@given(limits, starts, gaps)
def test_never_more_than_burst_plus_rate_in_any_window(
    limit: Limit, start: float, steps: list[float]
) -> None:
    times = absolute(start, steps)
    allowed = [t for t, d in zip(times, run(limit, times), strict=True) if d.allowed]
    burst = limit.count if limit.burst is None else limit.burst
    interval = limit.period_seconds / limit.count
    for i, first in enumerate(allowed):
        for j in range(i, len(allowed)):
            elapsed = allowed[j] - first
            assert j - i + 1 <= burst + elapsed / interval + 1e-3


@settings(max_examples=300, deadline=None)
@given(limits, starts, gaps)
def test_denied_requests_succeed_after_retry_after(limit: Limit, start: float, steps: list[float]) -> None:
    tat: float | None = None
    for now in absolute(start, steps):
        decision, new_tat = gcra(tat, limit, now)
        if decision.allowed:
            assert decision.retry_after == 0
            assert 0 <= decision.remaining < decision.limit
            tat = new_tat
        else:
            assert new_tat is None and decision.remaining == 0
            assert decision.retry_after > 0
            assert decision.retry_after <= decision.reset_after
            assert gcra(tat, limit, now + decision.retry_after)[0].allowed


def test_burst_remaining_and_recovery() -> None:
    limit = Limit(count=30, period_seconds=60)  # the task limit: 30 a minute, a burst of 30
    decisions = run(limit, [1000.0] * 31)
    assert [d.remaining for d in decisions[:30]] == list(range(29, -1, -1))
    assert all(d.allowed and d.limit == 30 for d in decisions[:30])
    denied = decisions[30]
    assert not denied.allowed and denied.retry_after == pytest.approx(2.0)
    assert denied.reset_after == pytest.approx(60.0)


def test_explicit_burst_and_steady_rate() -> None:
    limit = Limit(count=10, period_seconds=10, burst=2)
    assert [d.allowed for d in run(limit, [0, 0, 0])] == [True, True, False]
    # one request a second, forever, is exactly the rate
    assert all(d.allowed for d in run(limit, [float(t) for t in range(100)]))
    assert not all(d.allowed for d in run(limit, [t * 0.9 for t in range(100)]))


def test_limit_validation() -> None:
    for bad in [(0, 1.0, None), (1, 0.0, None), (1, -1.0, None), (1, 1.0, 0)]:
        with pytest.raises(ValueError):
            Limit(*bad)


async def test_memory_store_keys_are_independent_and_recover() -> None:
    store = MemoryRateLimitStore()
    limit = Limit(count=2, period_seconds=10)
    assert (await store.hit("a", limit, 0)).allowed
    assert (await store.hit("a", limit, 0)).allowed
    denied = await store.hit("a", limit, 0)
    assert not denied.allowed
    assert (await store.hit("b", limit, 0)).allowed
    assert (await store.hit("a", limit, denied.retry_after)).allowed
    assert (await store.hit("a", limit, 100)).remaining == 1  # fully recovered


async def test_memory_store_is_bounded() -> None:
    store = MemoryRateLimitStore(max_keys=10)
    limit = Limit(count=1, period_seconds=1)
    for i in range(10):
        await store.hit(f"old-{i}", limit, 0)
    await store.hit("hot", limit, 5)  # every old TAT has passed: all are swept, nothing live is lost
    assert store.size == 1
    for i in range(100):
        await store.hit(f"live-{i}", Limit(count=1, period_seconds=1000), 10)
        assert store.size <= 10
    # a key hit just now survives eviction of the least recently hit
    await store.hit("hot", Limit(count=1, period_seconds=1000), 10)
    await store.hit("new", Limit(count=1, period_seconds=1000), 10)
    assert not (await store.hit("hot", Limit(count=1, period_seconds=1000), 10)).allowed
