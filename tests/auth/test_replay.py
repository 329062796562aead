"""Assertion ids are remembered until their expiry, within bounded memory that fails closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from a2a_gateway.auth.replay import ReplayGuard

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH = int(T0.timestamp())


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_jti_is_accepted_once_until_it_expires() -> None:
    clock = Clock()
    guard = ReplayGuard(clock=clock)
    assert guard.first_use("a", EPOCH + 60)
    assert not guard.first_use("a", EPOCH + 60)
    clock.now += timedelta(seconds=59)
    assert not guard.first_use("a", EPOCH + 60)
    assert guard.first_use("b", EPOCH + 60)


def test_expired_entries_are_forgotten() -> None:
    clock = Clock()
    guard = ReplayGuard(clock=clock)
    for i in range(100):
        guard.first_use(f"j{i}", EPOCH + 10 + i)
    clock.now += timedelta(seconds=60)
    guard.first_use("late", EPOCH + 120)
    assert len(guard) == 50  # j51..j99 have not expired yet (j50 expires at this instant), and "late"


def test_an_expired_assertion_is_refused_and_not_remembered() -> None:
    guard = ReplayGuard(clock=Clock())
    assert not guard.first_use("old", EPOCH)
    assert len(guard) == 0


def test_when_full_new_assertions_are_refused_until_old_ones_expire() -> None:
    clock = Clock()
    guard = ReplayGuard(max_entries=3, clock=clock)
    for jti in ("a", "b", "c"):
        assert guard.first_use(jti, EPOCH + 30)
    assert not guard.first_use("d", EPOCH + 30)  # fails closed: "a" stays remembered
    assert not guard.first_use("a", EPOCH + 30)
    clock.now += timedelta(seconds=30)
    assert guard.first_use("d", EPOCH + 90)


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReplayGuard(max_entries=0)
