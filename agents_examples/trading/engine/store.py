"""The engine's SQLite database: trading agents, wallets, signals, execution records, positions, ledgers.

One file, ``engine.sqlite3`` in the data directory, in WAL mode. Wallet secrets (the exchange accounts'
API secrets) are encrypted at rest with a Fernet key kept beside it in ``engine-secrets.key`` (mode
0600); the database alone gives nobody an exchange account. Records are stored as JSON documents with
the few columns the engine looks them up by; Decimals are written as strings, so nothing is rounded.

The engine keeps its working state in memory and writes through: every change that belongs together
(a fill's transaction, the position it opens or shrinks, the cash it moves, the execution record it
settles) is one :meth:`EngineStore.batch`, so a crash leaves either all of it or none.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken

DB_FILE: Final = "engine.sqlite3"
KEY_FILE: Final = "engine-secrets.key"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS trading_agents (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS trading_agents_user ON trading_agents(user_id);
CREATE TABLE IF NOT EXISTS wallets (
    address TEXT PRIMARY KEY, user_id TEXT NOT NULL, secret BLOB NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS signals_user ON signals(user_id);
CREATE TABLE IF NOT EXISTS executions (
    signal_id INTEGER NOT NULL, agent_id TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (signal_id, agent_id));
CREATE TABLE IF NOT EXISTS positions (
    id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, agent_id TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS transactions_agent ON transactions(agent_id);
CREATE TABLE IF NOT EXISTS swaps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, agent_id TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS swaps_agent ON swaps(agent_id);
CREATE TABLE IF NOT EXISTS snapshots (
    agent_id TEXT NOT NULL, timestamp_ms INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (agent_id, timestamp_ms));
"""

# Tables whose rows belong to one trading agent, cleared together by a wallet reset.
AGENT_TABLES: Final = ("positions", "transactions", "swaps", "snapshots")


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def encode(doc: object) -> str:
    """A document as stored: compact JSON, Decimals as strings."""
    return json.dumps(doc, default=_default, separators=(",", ":"))


class EngineStore:
    """The database in ``data_dir`` (created if missing)."""

    def __init__(self, data_dir: Path | str) -> None:
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fernet = Fernet(self._load_key())
        self._db = sqlite3.connect(self.dir / DB_FILE, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._depth = 0

    def _load_key(self) -> bytes:
        path = self.dir / KEY_FILE
        if path.exists():
            return path.read_bytes().strip()
        key = Fernet.generate_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        return key

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write inside (nested batches join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    # ------------------------------------------------------------------------------ secrets

    def seal(self, secret: str) -> bytes:
        """``secret`` encrypted for storage."""
        return self._fernet.encrypt(secret.encode())

    def unseal(self, sealed: bytes) -> str:
        """A stored secret, decrypted (ValueError when the key does not open it)."""
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise ValueError("a wallet secret cannot be decrypted with this data directory's key") from None

    # ------------------------------------------------------------------------------ rows

    def put(self, table: str, key: dict[str, Any], doc: object, **columns: object) -> None:
        """Insert or replace one row: ``key`` and ``columns`` its columns, ``doc`` its document."""
        names = [*key, *columns, "doc"]
        values = [*key.values(), *columns.values(), encode(doc)]
        marks = ",".join("?" for _ in names)
        self._db.execute(f"INSERT OR REPLACE INTO {table} ({','.join(names)}) VALUES ({marks})", values)  # noqa: S608

    def put_many(self, table: str, rows: Sequence[tuple[dict[str, Any], object]]) -> None:
        """Insert or replace several rows of one shape in one statement."""
        if not rows:
            return
        names = [*rows[0][0], "doc"]
        marks = ",".join("?" for _ in names)
        self._db.executemany(
            f"INSERT OR REPLACE INTO {table} ({','.join(names)}) VALUES ({marks})",  # noqa: S608
            [[*key.values(), encode(doc)] for key, doc in rows],
        )

    def append(self, table: str, row_id: str, agent_id: str, doc: object) -> None:
        """Append one ledger row (transactions, swaps)."""
        self._db.execute(
            f"INSERT INTO {table} (id, agent_id, doc) VALUES (?, ?, ?)",  # noqa: S608
            (row_id, agent_id, encode(doc)),
        )

    def delete(self, table: str, **where: object) -> int:
        """Delete the rows matching ``where``; how many went."""
        clause = " AND ".join(f"{name} = ?" for name in where)
        cursor = self._db.execute(f"DELETE FROM {table} WHERE {clause}", tuple(where.values()))  # noqa: S608
        return cursor.rowcount

    def docs(self, table: str, *, order: str = "", **where: object) -> list[dict[str, Any]]:
        """The documents of the rows matching ``where`` (all rows without), in ``order``."""
        sql = f"SELECT doc FROM {table}"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(f"{name} = ?" for name in where)
        if order:
            sql += f" ORDER BY {order}"
        return [json.loads(row[0]) for row in self._db.execute(sql, tuple(where.values()))]

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read query (the engine's own SQL, never a caller's)."""
        return list(self._db.execute(sql, params))

    def add_signal(self, user_id: str, doc: dict[str, Any]) -> int:
        """Store a signal; its new integer id (Nexgent's signals have integer ids)."""
        cursor = self._db.execute("INSERT INTO signals (user_id, doc) VALUES (?, ?)", (user_id, encode(doc)))
        signal_id = cursor.lastrowid
        if signal_id is None:  # pragma: no cover - sqlite always gives one for an INSERT
            raise RuntimeError("no id for the new signal")
        return signal_id

    def update_signal(self, signal_id: int, doc: dict[str, Any]) -> None:
        """Rewrite a signal's document (after its id is known)."""
        self._db.execute("UPDATE signals SET doc = ? WHERE id = ?", (encode(doc), signal_id))

    def put_wallet(self, address: str, user_id: str, secret: str, doc: dict[str, Any]) -> None:
        """Insert or replace a wallet, its secret encrypted."""
        self._db.execute(
            "INSERT OR REPLACE INTO wallets (address, user_id, secret, doc) VALUES (?, ?, ?, ?)",
            (address, user_id, self.seal(secret), encode(doc)),
        )

    def wallets(self) -> list[tuple[dict[str, Any], str]]:
        """Every wallet's document and decrypted secret."""
        return [
            (json.loads(doc), self.unseal(sealed))
            for sealed, doc in self._db.execute("SELECT secret, doc FROM wallets ORDER BY rowid")
        ]
