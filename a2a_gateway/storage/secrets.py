"""Server secrets generated into the data directory on first run (file mode 0600), never logged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create(data_dir: Path, name: str) -> bytes:
    """The secret stored under ``data_dir/secrets/name``; 32 random bytes are written the first time."""
    folder = data_dir / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    value = secrets.token_bytes(32)
    # Written whole to a file of its own, then linked into place: the name never shows a half-written
    # secret, and if another process (a sibling worker) put its own there first, theirs is used.
    draft = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value.hex())
        try:
            os.link(draft, path)
        except FileExistsError:
            return bytes.fromhex(path.read_text().strip())
    finally:
        draft.unlink(missing_ok=True)
    return value
