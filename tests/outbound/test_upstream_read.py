"""The bounded SSE reader: events come out the same however the stream is cut, and nothing past the
line limit is ever held."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from a2a_gateway.errors import InvalidAgentResponse
from a2a_gateway.outbound.upstream_read import SseParser

payload = st.lists(
    st.text(st.characters(codec="utf-8", blacklist_characters="\r\n"), max_size=30), min_size=1, max_size=3
)


def parse(chunks: list[bytes], max_line: int = 1 << 20) -> list[bytes]:
    parser = SseParser(max_line)
    events = [data for chunk in chunks for data in parser.feed(chunk)]
    return events + parser.finish()


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


@given(
    events=st.lists(payload, min_size=1, max_size=5),
    ends=st.lists(st.sampled_from([b"\n", b"\r", b"\r\n"]), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    comments=st.booleans(),
)
def test_events_are_the_same_however_the_stream_is_cut(
    events: list[list[str]], ends: list[bytes], cuts: list[int], comments: bool
) -> None:
    stream = b""
    for n, lines in enumerate(events):
        end = ends[n % len(ends)]
        if comments:
            stream += b": keep-alive" + end + b"event: x" + end + b"id: 7" + end
        stream += b"".join(b"data: " + line.encode() + end for line in lines) + end
    expected = [b"\n".join(line.encode() for line in lines) for lines in events]
    assert parse([stream]) == expected
    assert parse(cut(stream, cuts)) == expected
    assert parse([stream[i : i + 1] for i in range(len(stream))]) == expected


def test_field_forms() -> None:
    stream = b"\xef\xbb\xbfdata:a\ndata:  b\ndata\ndatum: no\n\ndata: last"
    assert parse([stream]) == [b"a\n b\n", b"last"]


def test_a_line_past_the_limit_is_refused_before_its_end_arrives() -> None:
    parser = SseParser(4096)
    parser.feed(b"data: ")
    for _ in range(3):
        parser.feed(b"x" * 1024)
    with pytest.raises(InvalidAgentResponse, match="exceeded 4096 bytes"):
        parser.feed(b"x" * 1024)


def test_an_ended_line_past_the_limit_is_refused() -> None:
    with pytest.raises(InvalidAgentResponse, match="exceeded 100 bytes"):
        SseParser(100).feed(b"data: " + b"x" * 100 + b"\n")
    assert SseParser(100).feed(b"data: " + b"x" * 94 + b"\n\n") == [b"x" * 94]


def test_an_event_of_many_short_lines_is_held_to_the_limit() -> None:
    parser = SseParser(1000)
    with pytest.raises(InvalidAgentResponse, match="exceeded 1000 bytes"):
        for _ in range(100):
            parser.feed(b"data: " + b"y" * 50 + b"\n")


def test_comments_never_accumulate() -> None:
    parser = SseParser(100)
    for _ in range(10_000):
        assert parser.feed(b": ping\n") == []
    assert parser.feed(b"data: ok\n\n") == [b"ok"]
