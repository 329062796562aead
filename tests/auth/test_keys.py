"""API key format, kinds and peppered hashing."""

from __future__ import annotations

import re

import pytest

from a2a_gateway.auth.keys import KEY_PREFIXES, generate_key, key_matches, kind_of, lookup_of

PEPPER = b"pepper" * 6


@pytest.mark.parametrize("kind", sorted(KEY_PREFIXES))
def test_format_and_kind(kind: str) -> None:
    prefix = KEY_PREFIXES[kind]
    key = generate_key(kind, PEPPER)
    assert key.plaintext.startswith(prefix)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key.plaintext[len(prefix) :])
    assert key.lookup == key.plaintext[: len(prefix) + 8] == lookup_of(key.plaintext)
    assert kind_of(key.plaintext) == kind
    assert key.hashed != key.plaintext
    assert key.plaintext not in key.hashed
    assert re.fullmatch(r"[0-9a-f]{64}", key.hashed)
    assert key_matches(PEPPER, key.plaintext, key.hashed)


def test_prefixes() -> None:
    assert dict(KEY_PREFIXES) == {"user": "nex_", "agent": "nxk_", "live": "nx_live_", "sandbox": "nx_test_"}


def test_keys_are_random_and_hashes_depend_on_pepper() -> None:
    first, second = generate_key("user", PEPPER), generate_key("user", PEPPER)
    assert first.plaintext != second.plaintext and first.hashed != second.hashed
    other = generate_key("user", b"other-pepper")
    assert not key_matches(b"other-pepper", first.plaintext, first.hashed)
    assert not key_matches(PEPPER, other.plaintext, first.hashed)
    flipped = first.plaintext[:-1] + ("B" if first.plaintext.endswith("A") else "A")
    assert not key_matches(PEPPER, flipped, first.hashed)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown key kind"):
        generate_key("root", PEPPER)


def test_kind_of_rejects_junk() -> None:
    body = "A" * 43
    assert kind_of("nxk_" + body) == "agent"
    for junk in [
        "",
        "nxk_",
        "nxk_" + body[:-1],  # short
        "nxk_" + body + "A",  # long
        "nxk_" + body[:-1] + "=",  # padding is not in the alphabet
        "nxk_" + body[:-1] + "é",
        "nxk_" + body[:-1] + " ",
        "NXK_" + body,
        "abc_" + body,
        body,
        "nx_" + body,
        " nxk_" + body,
    ]:
        assert kind_of(junk) is None, junk
        with pytest.raises(ValueError):
            lookup_of(junk)
