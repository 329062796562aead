"""The exchange's own accounts and saved engine state, in SQLite in the agent's data directory.

``exchange.sqlite3`` holds three tables:

- ``accounts``: one row per registered Agent Connect account: id (``agent_…``), name, permissions, mode,
  the key's SHA-256 (the key itself is never stored: a request's key is hashed and looked up by its
  hash), the first characters of the key (to tell keys apart in logs), the API secret **encrypted** with
  Fernet (AES-128-CBC + HMAC-SHA256) under ``exchange-secrets.key`` in the same directory (mode 0600;
  the server must know the secret to verify a request's HMAC, so it cannot only hash it), the circuit
  breakers (exact decimal strings), the social opt-in and the creation time;
- ``webhooks``: one row per registered webhook: id (``wh_…``), the account, the URL, the events it
  receives (JSON list) and its signing secret, encrypted like the API secrets, and the creation time;
- ``state``: named JSON documents; ``engine`` is :meth:`Exchange.snapshot` and ``simulator`` where the
  replay stood, so a restart keeps orders, balances and the simulated time.

stdlib ``sqlite3`` on one connection, used only from the event loop's thread (every call is short and
synchronous; no call awaits while holding the connection). Secrets are never logged, and no ``repr``
here shows one.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.fernet import Fernet

DB_FILE: Final = "exchange.sqlite3"
KEY_FILE: Final = "exchange-secrets.key"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    mode TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    secret_enc BLOB NOT NULL,
    daily_loss_limit TEXT,
    max_position_size TEXT,
    social INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret_enc BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
"""


def key_hash(api_key: str) -> str:
    """What an API key is looked up by: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One registered account (the secret decrypted, for verifying signatures; never logged)."""

    id: str
    name: str
    permissions: tuple[str, ...]
    mode: str
    key_hash: str
    key_prefix: str
    secret: str
    daily_loss_limit: str | None
    max_position_size: str | None
    social: bool
    created_ms: int

    def __repr__(self) -> str:
        return f"AccountRecord(id={self.id!r}, name={self.name!r}, mode={self.mode!r})"


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """One registered webhook (the signing secret decrypted; never logged)."""

    id: str
    account_id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_ms: int

    def __repr__(self) -> str:
        return f"WebhookRecord(id={self.id!r}, account_id={self.account_id!r})"


class AccountStore:
    """Accounts and saved state in ``data_dir`` (created if missing)."""

    def __init__(self, data_dir: Path | str) -> None:
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fernet = Fernet(self._load_key())
        self._db = sqlite3.connect(self.dir / DB_FILE, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

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

    # ------------------------------------------------------------------------------ accounts

    def add(self, record: AccountRecord) -> None:
        """Insert a new account (its secret encrypted)."""
        self._db.execute(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.name,
                json.dumps(list(record.permissions)),
                record.mode,
                record.key_hash,
                record.key_prefix,
                self._fernet.encrypt(record.secret.encode()),
                record.daily_loss_limit,
                record.max_position_size,
                int(record.social),
                record.created_ms,
            ),
        )

    def all(self) -> list[AccountRecord]:
        """Every account, oldest first."""
        rows = self._db.execute("SELECT * FROM accounts ORDER BY created_ms, id").fetchall()
        return [self._record(row) for row in rows]

    def _record(self, row: tuple[Any, ...]) -> AccountRecord:
        return AccountRecord(
            row[0],
            row[1],
            tuple(json.loads(row[2])),
            row[3],
            row[4],
            row[5],
            self._fernet.decrypt(row[6]).decode(),
            row[7],
            row[8],
            bool(row[9]),
            row[10],
        )

    # ------------------------------------------------------------------------------ webhooks

    def add_webhook(self, record: WebhookRecord) -> None:
        """Insert a webhook (its secret encrypted)."""
        self._db.execute(
            "INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.account_id,
                record.url,
                json.dumps(list(record.events)),
                self._fernet.encrypt(record.secret.encode()),
                record.created_ms,
            ),
        )

    def delete_webhook(self, account_id: str, webhook_id: str) -> bool:
        """Remove an account's webhook; False when it has none by that id."""
        cursor = self._db.execute(
            "DELETE FROM webhooks WHERE id = ? AND account_id = ?", (webhook_id, account_id)
        )
        return cursor.rowcount > 0

    def webhooks(self) -> list[WebhookRecord]:
        """Every webhook, oldest first."""
        rows = self._db.execute("SELECT * FROM webhooks ORDER BY created_ms, id").fetchall()
        return [
            WebhookRecord(
                row[0],
                row[1],
                row[2],
                tuple(json.loads(row[3])),
                self._fernet.decrypt(row[4]).decode(),
                row[5],
            )
            for row in rows
        ]

    # --------------------------------------------------------------------------------- state

    def save_state(self, docs: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the named JSON documents, all in one transaction."""
        self._db.execute("BEGIN")
        try:
            for name, doc in docs.items():
                self._db.execute(
                    "INSERT INTO state VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET doc = excluded.doc",
                    (name, json.dumps(doc, separators=(",", ":"))),
                )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def load_state(self, name: str) -> dict[str, Any] | None:
        """A saved document, or None."""
        row = self._db.execute("SELECT doc FROM state WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        doc: dict[str, Any] = json.loads(row[0])
        return doc
