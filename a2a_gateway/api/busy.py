"""A locked SQLite database is a moment's contention, not a bug: retry briefly, then answer 503."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from sqlalchemy.exc import OperationalError

from a2a_gateway.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS: Final = 3
FIRST_PAUSE_SECONDS: Final = 0.05
RETRY_AFTER_SECONDS: Final = 1
BUSY_MESSAGE: Final = "The database is busy; retry shortly"


def is_database_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is SQLite's "database is locked" or "table is locked"."""
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; the bound only guards against a cycle
        if seen is None:
            return False
        if isinstance(seen, OperationalError):
            seen = seen.orig if seen.orig is not None else None
            continue
        if isinstance(seen, sqlite3.OperationalError):
            text = str(seen)
            return "database is locked" in text or "database table is locked" in text
        seen = seen.__cause__ or seen.__context__
    return False


def busy_error() -> Unavailable:
    """The 503 a caller gets when the database stayed locked (with Retry-After)."""
    return Unavailable(BUSY_MESSAGE, metadata={"retryAfter": str(RETRY_AFTER_SECONDS)})


async def retry_when_busy(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``call``; on a locked database try again after a short, growing pause; Unavailable at the end.

    Only for calls that are safe to repeat as a whole (each attempt either commits or changes nothing).
    """
    for attempt in range(attempts):
        try:
            return await call()
        except Exception as exc:
            if not is_database_busy(exc):
                raise
            log.warning("database locked (attempt %d of %d)", attempt + 1, attempts)
            if attempt + 1 < attempts:
                await pause(FIRST_PAUSE_SECONDS * 2**attempt)
    raise busy_error()
