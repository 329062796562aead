"""Argon2id password hashing."""

from __future__ import annotations

from argon2 import PasswordHasher

from a2a_gateway.auth import passwords


def test_hash_verifies_and_is_salted() -> None:
    first = passwords.hash_password("correct horse")
    second = passwords.hash_password("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first
    assert passwords.verify_password(first, "correct horse")
    assert not passwords.verify_password(first, "Correct horse")
    assert not passwords.needs_rehash(first)


def test_malformed_hashes_are_false_not_errors() -> None:
    for junk in ["", "plaintext", "$argon2id$v=19$m=1,t=1,p=1$AAAA$BBBB", "$2b$12$abcdefghijklmnopqrstuv"]:
        assert passwords.verify_password(junk, "anything") is False
        assert passwords.needs_rehash(junk) is True


def test_weaker_parameters_need_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert passwords.verify_password(weak, "pw")
    assert passwords.needs_rehash(weak)


def test_burn_verify_uses_current_parameters() -> None:
    # If the hasher's parameters change, the dummy hash must change too or unknown users get faster.
    assert not passwords.needs_rehash(passwords._DUMMY_HASH)
    passwords.burn_verify("whatever")  # returns nothing, raises nothing
