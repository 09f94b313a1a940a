"""Bearer tokens of the HTTP server: the queries behind ``Store.add_token``, ``tokens``, ``revoke_token`` and
``token_by_digest``, and how a token is made and digested.

Only a token's SHA-256 digest is stored. A slow password hash (bcrypt, scrypt, argon2) protects secrets people
choose, which are guessable; a token here is 256 random bits, so guessing it from a stolen digest is as hopeless
with a fast hash as with a slow one, and a fast unsalted digest lets every request find its token with one
indexed lookup instead of spending tens of milliseconds of CPU on a key derivation.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from streamhost.errors import InvalidArgumentError
from streamhost.store import schema

PREFIX = "sht_"
"""What every token starts with: a leaked one is recognisable (secret scanners, logs) as a streamhost token."""
TOKEN_BYTES = 32
LIMITS = ("models", "daily_usd", "per_minute")
"""The fields of a token that ``tokens set`` may change: its limits, never its name or digest."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored: its name (the person or client it was made for), never the token itself."""

    name: str
    digest: str
    """SHA-256 of the token, hex."""
    created_at: float
    revoked_at: float | None
    models: tuple[str, ...] | None
    """Model patterns (``fnmatch``) the token may call; None: every model."""
    daily_usd: float | None
    """USD its calls may cost over the last 24 hours; None: no budget of its own."""
    per_minute: int | None
    """Calls a minute it may make; None: no rate limit."""

    @property
    def revoked(self) -> bool:
        """Whether the token was revoked (it then opens nothing)."""
        return self.revoked_at is not None


def new_token() -> str:
    """A new bearer token: the prefix and 256 random bits, URL-safe."""
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """The token's SHA-256, hex: what the store keeps and looks tokens up by."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    """``name`` when it can name a token (1-64 letters, digits, ``._@+-``), else an error saying so."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidArgumentError(f"token name {name!r}: use 1 to 64 letters, digits and . _ @ + - (e.g. alice, "
                                   "ci-bot), starting with a letter or digit")
    return name


def _models_json(models: Collection[str] | None) -> str | None:
    return json.dumps(list(models)) if models is not None else None


def _record(row: Row) -> TokenRecord:
    models = json.loads(row.models) if row.models is not None else None
    return TokenRecord(name=row.name, digest=row.digest, created_at=row.created_at, revoked_at=row.revoked_at,
                       models=tuple(models) if models is not None else None, daily_usd=row.daily_usd,
                       per_minute=row.per_minute)


async def add(conn: AsyncConnection, record: TokenRecord) -> None:
    """Store a token; a revoked token of the same name is replaced (its person gets a new token, their usage
    stays under the name); an active one is an error."""
    t = schema.tokens
    existing = (await conn.execute(select(t.c.revoked_at).where(t.c.name == record.name))).first()
    values = {"digest": record.digest, "created_at": record.created_at, "revoked_at": None,
              "models": _models_json(record.models), "daily_usd": record.daily_usd, "per_minute": record.per_minute}
    if existing is None:
        await conn.execute(insert(t).values(name=record.name, **values))
    elif existing.revoked_at is not None:
        await conn.execute(update(t).where(t.c.name == record.name).values(values))
    else:
        raise InvalidArgumentError(f"a token named {record.name!r} exists: revoke it first (`streamhost tokens "
                                   f"revoke {record.name}`) to give {record.name} a new one, or pick another name")


async def listing(conn: AsyncConnection) -> list[TokenRecord]:
    """Every token, revoked ones included, oldest first."""
    t = schema.tokens
    return [_record(row) for row in await conn.execute(select(t).order_by(t.c.created_at, t.c.name))]


async def by_digest(conn: AsyncConnection, token_digest: str) -> TokenRecord | None:
    """The token with this digest (revoked or not), or None."""
    t = schema.tokens
    row = (await conn.execute(select(t).where(t.c.digest == token_digest))).first()
    return None if row is None else _record(row)


async def revoke(conn: AsyncConnection, name: str, now: float) -> bool:
    """Mark the token revoked; False when there is no active token of that name."""
    t = schema.tokens
    changed = await conn.execute(update(t).where(t.c.name == name, t.c.revoked_at.is_(None)).values(revoked_at=now))
    return changed.rowcount > 0


async def set_limits(conn: AsyncConnection, name: str, limits: dict[str, Any]) -> TokenRecord | None:
    """Change the active token's limits named in ``limits`` (a key of :data:`LIMITS` with None lifts that limit),
    keeping the token itself; the token as it now is, or None when there is no active token of that name."""
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise ValueError(f"not a token limit: {', '.join(sorted(unknown))}")
    values = {**limits, **({"models": _models_json(limits["models"])} if "models" in limits else {})}
    t = schema.tokens
    active = (t.c.name == name, t.c.revoked_at.is_(None))
    if values:
        await conn.execute(update(t).where(*active).values(values))
    row = (await conn.execute(select(t).where(*active))).first()
    return None if row is None else _record(row)
