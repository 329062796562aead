"""The unary clients' response parsing, fuzzed: whatever an upstream sends, an exchange ends in a reply or
LeanHttpError, never another exception and never a hang.

Responses are fed from memory through the clients' connection opener (no socket): each example opens one
connection whose reader holds the response bytes followed by the end of the stream. The hand-written
parser of ``LeanHttp`` is held to an oracle written independently of it (what RFC 9112 allows); the
httpcore pool (``PooledHttp``) is held to the properties both must have: truncated messages and bodies
past the limit fail, and nothing escapes as another exception.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from a2a_gateway.outbound.lean_http import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    BodyTooLarge,
    Connection,
    LeanHttp,
    LeanHttpError,
    LeanReply,
    UnaryHttp,
)
from a2a_gateway.outbound.pooled_http import PooledHttp
from a2a_gateway.outbound.ssrf import SsrfGuard

LIMIT = 4096
URL = "http://agent.test/a2a"
fuzz = hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


async def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


class MemoryWriter:
    """The writing half of an in-memory connection: what the client wrote, and whether it closed."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    async def wait_closed(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Memory:
    """An opener whose connections read the given responses, one connection each, then end."""

    def __init__(self, *responses: bytes, end: bool = True) -> None:
        self.responses = list(responses)
        self.end = end  # whether the server ends each connection after its bytes
        self.writers: list[MemoryWriter] = []

    async def __call__(
        self, host: str, port: int, *, limit: int, ssl: Any = None, server_hostname: str | None = None
    ) -> Connection:
        reader = asyncio.StreamReader(limit=limit)
        reader.feed_data(self.responses.pop(0))
        if self.end:
            reader.feed_eof()
        writer = MemoryWriter()
        self.writers.append(writer)
        return reader, cast(asyncio.StreamWriter, writer)


Make = Callable[[Memory], UnaryHttp]


def lean(memory: Memory) -> UnaryHttp:
    return LeanHttp(SsrfGuard([], resolver=public), max_body_bytes=LIMIT, opener=memory)


TLS = ssl.create_default_context()  # built once: loading the trust store costs more than an example


def pooled(memory: Memory) -> UnaryHttp:
    return PooledHttp(SsrfGuard([], resolver=public), max_body_bytes=LIMIT, opener=memory, tls=TLS)


CLIENTS = [pytest.param(lean, id="lean"), pytest.param(pooled, id="pooled")]


def exchange(make: Make, *responses: bytes) -> list[LeanReply | LeanHttpError]:
    """POST once per response over a fresh client; each outcome. Five seconds bound every example."""

    async def run() -> list[LeanReply | LeanHttpError]:
        memory = Memory(*responses)
        client = make(memory)
        outcomes: list[LeanReply | LeanHttpError] = []
        try:
            async with asyncio.timeout(5):
                for _ in responses:
                    try:
                        outcomes.append(await client.post(URL, b"{}", {"Content-Type": "application/json"}))
                    except LeanHttpError as failed:
                        outcomes.append(failed)
        finally:
            await client.aclose()
        return outcomes

    return asyncio.run(run())


def one(make: Make, response: bytes) -> LeanReply | LeanHttpError:
    return exchange(make, response)[0]


def failed(outcome: LeanReply | LeanHttpError) -> bool:
    return isinstance(outcome, LeanHttpError)


def with_length(head: bytes, body: bytes = b"{}") -> bytes:
    return head + b"\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def chunked(chunks: list[bytes], trailers: bytes = b"") -> bytes:
    """A valid chunked body: each chunk's hex size, its data, then the last chunk and trailers."""
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailers + b"\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


# --- the oracle: what RFC 9112 allows, written without the parser's regular expressions


def valid_status_line(version: bytes, code: bytes, reason: bytes | None) -> bool:
    digits = len(code) == 3 and all(48 <= c <= 57 for c in code) and code[0] != 48
    clean = reason is None or all(c == 9 or (32 <= c < 127) or c >= 128 for c in reason)
    return version in (b"HTTP/1.0", b"HTTP/1.1") and digits and clean


def valid_header(name: bytes, value: bytes) -> bool:
    token = bool(name) and all(chr(c) in TOKEN_CHARS for c in name)
    return token and all(c == 9 or (32 <= c < 127) or c >= 128 for c in value)


versions = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.2", b"http/1.1", b"HTTP/1.1 ", b"HTTP /1.1", b"", b"ICY"]
)
codes = st.one_of(
    st.integers(0, 1200).map(lambda n: str(n).encode()),
    st.sampled_from(
        [b"2_0", b"+20", b"-20", b" 200", b"2 00", b"0200", b"abc", b"", b"\xff00", "٢٠٠".encode()]
    ),
)
reasons = st.one_of(st.none(), st.binary(max_size=24).map(lambda b: b.replace(b"\r", b"")))


@fuzz
@given(versions, codes, reasons)
@example(b"HTTP/1.1", b"2_0", b"OK")  # int() reads "2_0" as 20
@example(b"HTTP/1.1", b"+20", b"OK")
@example(b"HTTP/1.1", b"100", b"Continue")  # an interim response and then nothing
def test_status_lines(version: bytes, code: bytes, reason: bytes | None) -> None:
    line = version + b" " + code + (b"" if reason is None else b" " + reason)
    outcome = one(lean, with_length(line))
    if valid_status_line(version, code, reason) and int(code) >= 200:
        assert isinstance(outcome, LeanReply) and outcome.status == int(code)
        assert outcome.body == (b"" if outcome.status in (204, 304) else b"{}")
    else:
        assert failed(outcome), (line, outcome)


names = st.one_of(st.sampled_from([b"x-a", b"Server", b"x_b", b"A2A-Version"]), st.binary(max_size=8))
values = st.binary(max_size=24).map(lambda b: b.replace(b"\r", b""))
# Framing headers are fuzzed on their own below.
framing = {b"content-length", b"transfer-encoding", b"connection"}


@fuzz
@given(st.lists(st.tuples(names, values), max_size=6))
@example([(b"no colon here", b"")])
@example([(b"x-a", b"a\x00b")])
@example([(b"x-a ", b"space before the colon")])
@example([(b" x-folded", b"obsolete line folding")])
def test_header_lines(fields: list[tuple[bytes, bytes]]) -> None:
    fields = [(n, v) for n, v in fields if n.strip().lower() not in framing and b":" not in n]
    head = b"HTTP/1.1 200 OK" + b"".join(b"\r\n" + n + b":" + v for n, v in fields)
    if any(b"\n" in n for n, _ in fields):
        return  # a bare line feed in a name makes another line; the oracle cannot tell which
    outcome = one(lean, with_length(head))
    if all(valid_header(n, v) for n, v in fields):
        assert isinstance(outcome, LeanReply) and outcome.body == b"{}"
        expected: dict[str, list[str]] = {}
        for name, value in fields:  # repeats are joined in order, as RFC 9110 allows
            expected.setdefault(name.decode().lower(), []).append(value.strip(b" \t").decode("latin-1"))
        for name, seen in expected.items():
            assert outcome.headers[name] == ", ".join(seen)
    else:
        assert failed(outcome), (fields, outcome)


@fuzz
@given(st.integers(0, 3 * MAX_HEADERS))
@example(MAX_HEADERS - 1)
@example(MAX_HEADERS)
def test_header_count_limit(count: int) -> None:
    head = b"HTTP/1.1 200 OK" + b"".join(b"\r\nx-h%d: v" % n for n in range(count))
    outcome = one(lean, with_length(head))  # with its content-length, count + 1 headers
    assert failed(outcome) == (count + 1 > MAX_HEADERS)


@fuzz
@given(st.integers(MAX_HEAD_BYTES - 200, MAX_HEAD_BYTES + 200))
@example(MAX_HEAD_BYTES)
@example(MAX_HEAD_BYTES + 1)
def test_head_size_limit(size: int) -> None:
    start = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-pad: "
    head = start + b"p" * (size - len(start))  # `size` bytes before the blank line
    outcome = one(lean, head + b"\r\n\r\n{}")
    assert failed(outcome) == (size > MAX_HEAD_BYTES)


@pytest.mark.parametrize("make", CLIENTS)
def test_a_huge_head_is_refused(make: Make) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n" + b"x-pad: %s\r\n" % (b"p" * 1024) * 400
    assert failed(one(make, head + b"\r\n{}"))


lengths = st.one_of(
    st.integers(0, 2 * LIMIT).map(lambda n: str(n).encode()),
    st.sampled_from([b"+2", b"-1", b"2_0", b"0x2", b"2 2", b"", b"2, 3", b"2, 2", "٢".encode(), b"9" * 30]),
)


@fuzz
@given(lengths, st.binary(max_size=64))
@example(b"+2", b"{}")
@example(b"2, 3", b"{}")
def test_content_length(length: bytes, body: bytes) -> None:
    outcome = one(lean, b"HTTP/1.1 200 OK\r\ncontent-length: " + length + b"\r\n\r\n" + body)
    sizes = {part.strip() for part in length.split(b",")}
    declared = sizes.pop() if len(sizes) == 1 else b"x"
    if not (declared.isdigit() and declared.isascii()):
        assert failed(outcome), (length, outcome)
    elif int(declared) > LIMIT:
        assert isinstance(outcome, BodyTooLarge)
    elif int(declared) > len(body):
        assert failed(outcome)  # the connection ended before the declared length
    else:
        assert isinstance(outcome, LeanReply) and outcome.body == body[: int(declared)]


chunk_lists = st.lists(st.binary(min_size=1, max_size=40), max_size=8)


@fuzz
@given(chunk_lists, st.sampled_from([b"", b"x-t: 1\r\n", b";ext=1"]))
def test_valid_chunked_bodies_are_joined(chunks: list[bytes], extra: bytes) -> None:
    if extra.startswith(b";"):
        body = b"".join(b"%x%s\r\n%s\r\n" % (len(c), extra, c) for c in chunks) + b"0\r\n\r\n"
    else:
        body = chunked(chunks, extra)
    outcome = one(lean, CHUNKED_HEAD + body)
    assert isinstance(outcome, LeanReply) and outcome.body == b"".join(chunks)


@pytest.mark.parametrize("make", CLIENTS)
@fuzz
@given(chunk_lists, st.data())
def test_a_truncated_chunked_body_fails(make: Make, chunks: list[bytes], data: st.DataObject) -> None:
    body = chunked(chunks)
    cut = data.draw(st.integers(0, len(body) - 1))
    assert failed(one(make, CHUNKED_HEAD + body[:cut]))


@pytest.mark.parametrize("make", CLIENTS)
@fuzz
@given(st.binary(min_size=1, max_size=64), st.data())
def test_a_truncated_length_framed_body_fails(make: Make, body: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(body) - 1))
    assert failed(one(make, with_length(b"HTTP/1.1 200 OK", body)[: -len(body) + cut or None]))


@fuzz
@given(
    st.sampled_from(
        [b"-1", b"-2", b"0x2", b"+2", b"g", b"", b" 2", b"2 2", b"1_0", b"f" * 16, b"\xff", "٢".encode()]
    ),
    chunk_lists,
)
@example(b"-2", [b"ab"])  # int("-2", 16) made a chunk of no bytes
@example(b"0x2", [b"ab"])  # int("0x2", 16) accepted the prefix
def test_bad_chunk_sizes(size: bytes, chunks: list[bytes]) -> None:
    body = size + b"\r\nab\r\n" + chunked(chunks)
    assert failed(one(lean, CHUNKED_HEAD + body))


@fuzz
@given(st.binary(min_size=1, max_size=40), st.integers(-3, 3).filter(bool))
def test_a_chunk_that_does_not_end_where_its_size_says_fails(data: bytes, off: int) -> None:
    if len(data) + off < 1:
        return
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(data) + off, data)
    if off < 0 and data[len(data) + off :].startswith(b"\r\n"):
        return  # the data itself holds the line end the size points at: another valid message
    assert failed(one(lean, CHUNKED_HEAD + body))


@pytest.mark.parametrize("make", CLIENTS)
@fuzz
@given(st.lists(st.integers(1, LIMIT), min_size=1, max_size=6))
def test_chunked_bodies_past_the_limit_fail_while_reading(make: Make, sizes: list[int]) -> None:
    outcome = one(make, CHUNKED_HEAD + chunked([b"c" * n for n in sizes]))
    if sum(sizes) > LIMIT:
        assert isinstance(outcome, BodyTooLarge) and outcome.limit == LIMIT
    else:
        assert isinstance(outcome, LeanReply) and len(outcome.body) == sum(sizes)


@pytest.mark.parametrize("make", CLIENTS)
@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 999999999999\r\n\r\n",
        CHUNKED_HEAD + chunked([b"c" * (LIMIT + 1)]),
        b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * (LIMIT + 1),
    ],
    ids=["declared", "chunk", "until-close"],
)
def test_bodies_past_the_limit(make: Make, response: bytes) -> None:
    outcome = one(make, response)
    assert isinstance(outcome, BodyTooLarge) and outcome.limit == LIMIT


def test_interim_responses_are_skipped_and_bounded() -> None:
    final = with_length(b"HTTP/1.1 200 OK")
    reply = one(lean, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + final)
    assert isinstance(reply, LeanReply) and reply.status == 200 and reply.body == b"{}"
    assert failed(one(lean, b"HTTP/1.1 100 Continue\r\n\r\n" * 50 + final))
    assert failed(one(lean, b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n" + final))


def test_trailers_are_bounded() -> None:
    many = b"".join(b"x-t%d: 1\r\n" % n for n in range(MAX_HEADERS + 5))
    assert failed(one(lean, CHUNKED_HEAD + chunked([b"ab"], many)))
    assert failed(one(lean, CHUNKED_HEAD + chunked([b"ab"], b"not a trailer\r\n")))


def test_transfer_encoding_framing() -> None:
    both = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n" + chunked([b"ab"])
    reply = one(lean, both)
    assert isinstance(reply, LeanReply) and reply.body == b"ab"  # chunked wins over the length
    # "chunked" is a coding name, not a substring; a body in another final coding runs to the end.
    other = b"HTTP/1.1 200 OK\r\ntransfer-encoding: notchunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    reply = one(lean, other)
    assert isinstance(reply, LeanReply) and reply.body == b"2\r\nab\r\n0\r\n\r\n"


@pytest.mark.parametrize("make", CLIENTS)
@fuzz
@given(st.binary(max_size=300))
@example(b"HTTP/1.1 200 OK\r\n\r\n")
@example(b"\r\n\r\n")
def test_arbitrary_bytes_end_in_a_reply_or_an_error(make: Make, junk: bytes) -> None:
    outcome = one(make, junk)
    assert isinstance(outcome, LeanReply | LeanHttpError)


@pytest.mark.parametrize("make", CLIENTS)
@fuzz
@given(st.lists(st.sampled_from([*sorted(framing), b"x-a", b"HTTP/1.1 200 OK", b""]), max_size=6), st.data())
def test_arbitrary_heads_end_in_a_reply_or_an_error(
    make: Make, names: list[bytes], data: st.DataObject
) -> None:
    lines = [
        n + b": " + data.draw(st.sampled_from([b"chunked", b"2", b"close", b"-1", b"gzip, chunked"]))
        for n in names
    ]
    response = b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(lines) + b"\r\n\r\n" + data.draw(st.binary(max_size=40))
    outcome = one(make, response)
    assert isinstance(outcome, LeanReply | LeanHttpError)


def test_a_response_framed_two_ways_does_not_keep_its_connection() -> None:
    """Transfer-Encoding and Content-Length together may be a split response: the rest is not trusted."""
    smuggled = with_length(b"HTTP/1.1 200 OK", b'"smuggled"')
    memory = Memory(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n"
        + chunked([b"ab"])
        + smuggled,
        with_length(b"HTTP/1.1 200 OK", b"{}"),
        end=False,
    )

    async def run() -> None:
        client = lean(memory)
        try:
            assert (await client.post(URL, b"{}", {})).body == b"ab"
            assert (await client.post(URL, b"{}", {})).body == b"{}"
        finally:
            await client.aclose()

    asyncio.run(run())
    assert len(memory.writers) == 2 and memory.writers[0].closed
