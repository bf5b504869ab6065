"""Who may use the portal: users, API tokens and sign-in sessions, in the catalog.

Nothing secret is stored in a form that can be used: passwords as scrypt hashes with a
salt per user, API tokens and session ids as their sha256 (they are long random values,
so a plain hash is enough). A token is shown once, when it is made.

This module does not import the web stack, so the ``users`` and ``tokens`` commands stay
quick.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, select, update

from cleancenter.notify.isps import RegistryError, get_isp
from cleancenter.store.catalog import utcnow
from cleancenter.store.models import ApiToken, PortalSession, PortalUser

USER = cast(Table, PortalUser.__table__)
TOKEN = cast(Table, ApiToken.__table__)
SESSION = cast(Table, PortalSession.__table__)

ADMIN = "admin"
ANALYST = "analyst"
ISP_PREFIX = "isp:"
TOKEN_PREFIX = "cct_"

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TOKEN = re.compile(r"^cct_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_TOKEN_ID = re.compile(r"^[0-9a-f]{12}$")

# scrypt: 2**15 x 8 x 128 bytes = 32 MiB and some 50-100 ms a check. The parameters are
# kept with each hash, so raising them later leaves old hashes readable.
SCRYPT_N = 2 ** 15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 128 * 1024 * 1024
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

# At most this many scrypt checks at once: logins from many addresses (a botnet, an IPv6
# range) then wait their turn instead of taking 32 MiB each from the portal.
SCRYPT_SLOTS = threading.BoundedSemaphore(4)

LAST_USED_EVERY = timedelta(minutes=1)  # token and session use is written at most this often


class AccessError(ValueError):
    """A user, token or role cannot be made or changed as asked; the message says why."""


# -- passwords ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` (salt and hash in base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                            maxmem=SCRYPT_MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time in the password; False for any hash it cannot read."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        with SCRYPT_SLOTS:
            actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt),
                                    n=int(n), r=int(r), p=int(p), maxmem=SCRYPT_MAXMEM,
                                    dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY_HASH: list[str] = []


def dummy_hash() -> str:
    """A hash of nothing anyone knows, to spend the same time on an unknown user."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccessError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccessError(f"a password has at most {MAX_PASSWORD} characters")


# -- roles -------------------------------------------------------------------------------


def check_role(conn: Connection, role: str) -> str:
    """``admin``, ``analyst`` or ``isp:NAME`` of a registered ISP."""
    if role in (ADMIN, ANALYST):
        return role
    if role.startswith(ISP_PREFIX):
        name = role.removeprefix(ISP_PREFIX)
        try:
            get_isp(conn, name)
        except RegistryError as exc:
            raise AccessError(f"role {role!r}: {exc}") from exc
        return role
    raise AccessError(f"role {role!r}: one of admin, analyst, isp:NAME")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# -- users -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserEntry:
    name: str
    roles: tuple[str, ...]
    disabled: bool
    created: datetime

    def to_dict(self) -> dict[str, Any]:
        """Never the password hash."""
        return {"name": self.name, "roles": list(self.roles), "disabled": self.disabled,
                "created": self.created.isoformat()}


def _roles(text: str) -> tuple[str, ...]:
    return tuple(r for r in text.split(",") if r)


def add_user(conn: Connection, name: str, password: str, roles: list[str]) -> UserEntry:
    if not _USER_NAME.match(name):
        raise AccessError(f"{name!r}: a user name is letters, digits, '.', '_', '@' and '-'")
    if not roles:
        raise AccessError("give a user at least one role")
    checked = tuple(dict.fromkeys(check_role(conn, r) for r in roles))
    check_password_rules(password)
    if conn.execute(select(USER.c.name).where(USER.c.name == name)).first() is not None:
        raise AccessError(f"a user named {name!r} exists")
    now = utcnow()
    conn.execute(USER.insert().values(name=name, password_hash=hash_password(password),
                                      roles=",".join(checked), disabled=False, created=now))
    return UserEntry(name, checked, False, now)


def list_users(conn: Connection) -> list[UserEntry]:
    rows = conn.execute(select(USER.c.name, USER.c.roles, USER.c.disabled, USER.c.created)
                        .order_by(USER.c.name))
    return [UserEntry(r.name, _roles(r.roles), bool(r.disabled), r.created) for r in rows]


def disable_user(conn: Connection, name: str) -> None:
    """The user can no longer sign in; their sessions end at once."""
    done = conn.execute(update(USER).where(USER.c.name == name).values(disabled=True))
    if done.rowcount == 0:
        raise AccessError(f"no user named {name!r}")
    conn.execute(delete(SESSION).where(SESSION.c.user == name))


def authenticate(conn: Connection, name: str, password: str) -> UserEntry | None:
    """The user if the name and password are right and the user is enabled.

    An unknown or disabled user costs the same scrypt work as a known one."""
    row = None
    if len(name) <= 64 and len(password) <= MAX_PASSWORD:
        row = conn.execute(select(USER).where(USER.c.name == name)).first()
    stored = row.password_hash if row is not None else dummy_hash()
    good = verify_password(password[:MAX_PASSWORD], stored)
    if row is None or not good or row.disabled:
        return None
    return UserEntry(row.name, _roles(row.roles), False, row.created)


# -- API tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenEntry:
    id: str
    name: str
    role: str
    created: datetime
    last_used: datetime | None
    revoked: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Never the token or its hash."""
        return {"id": self.id, "name": self.name, "role": self.role,
                "created": self.created.isoformat(),
                "last_used": self.last_used.isoformat() if self.last_used else None,
                "revoked": self.revoked.isoformat() if self.revoked else None}


def create_token(conn: Connection, name: str, role: str) -> tuple[TokenEntry, str]:
    """A new token and its secret text (``cct_<id>_<secret>``), which is not kept."""
    name = name.strip()
    if not name or len(name) > 128:
        raise AccessError("a token needs a name of 1-128 characters")
    role = check_role(conn, role)
    token_id = secrets.token_hex(6)
    while conn.execute(select(TOKEN.c.id).where(TOKEN.c.id == token_id)).first():
        token_id = secrets.token_hex(6)
    text = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    conn.execute(TOKEN.insert().values(id=token_id, name=name, role=role,
                                       secret_sha256=sha256_hex(text), created=now))
    return TokenEntry(token_id, name, role, now, None, None), text


def list_tokens(conn: Connection) -> list[TokenEntry]:
    rows = conn.execute(select(TOKEN.c.id, TOKEN.c.name, TOKEN.c.role, TOKEN.c.created,
                               TOKEN.c.last_used, TOKEN.c.revoked)
                        .order_by(TOKEN.c.created, TOKEN.c.id))
    return [TokenEntry(r.id, r.name, r.role, r.created, r.last_used, r.revoked) for r in rows]


def revoke_token(conn: Connection, token_id: str) -> None:
    if not _TOKEN_ID.match(token_id):
        raise AccessError(f"{token_id!r} is not a token id (12 hex digits; see tokens list)")
    done = conn.execute(update(TOKEN).where(TOKEN.c.id == token_id, TOKEN.c.revoked.is_(None))
                        .values(revoked=utcnow()))
    if done.rowcount == 0:
        exists = conn.execute(select(TOKEN.c.id).where(TOKEN.c.id == token_id)).first()
        if exists is None:
            raise AccessError(f"no token with id {token_id!r}")


def token_lookup(conn: Connection, text: str, *, now: datetime | None = None
                 ) -> TokenEntry | None:
    """The live token this text is, or None (malformed, unknown, wrong secret, revoked)."""
    match = _TOKEN.match(text)
    if match is None:
        return None
    row = conn.execute(select(TOKEN).where(TOKEN.c.id == match.group(1))).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, sha256_hex(text)):
        return None
    if row.revoked is not None:
        return None
    now = now or utcnow()
    if row.last_used is None or now - row.last_used >= LAST_USED_EVERY:
        conn.execute(update(TOKEN).where(TOKEN.c.id == row.id).values(last_used=now))
    return TokenEntry(row.id, row.name, row.role, row.created, now, None)


# -- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionEntry:
    user: str
    roles: tuple[str, ...]
    csrf: str
    expires: datetime


def create_session(conn: Connection, user: str, *, idle: timedelta,
                   now: datetime | None = None) -> tuple[str, SessionEntry]:
    """A new session for a user: the id for the cookie (not kept) and the session."""
    now = now or utcnow()
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    roles = conn.execute(select(USER.c.roles).where(USER.c.name == user)).scalar_one()
    conn.execute(delete(SESSION).where(SESSION.c.expires < now))  # sweep the stale ones
    conn.execute(SESSION.insert().values(id_sha256=sha256_hex(session_id), user=user,
                                         csrf=csrf, created=now, last_seen=now,
                                         expires=now + idle))
    return session_id, SessionEntry(user, _roles(roles), csrf, now + idle)


def session_lookup(conn: Connection, session_id: str, *, idle: timedelta,
                   max_age: timedelta, now: datetime | None = None) -> SessionEntry | None:
    """The live session of a cookie's id (its user enabled), sliding its idle expiry."""
    if not 20 <= len(session_id) <= 128:
        return None
    now = now or utcnow()
    row = conn.execute(
        select(SESSION.c.id_sha256, SESSION.c.user, SESSION.c.csrf, SESSION.c.created,
               SESSION.c.last_seen, SESSION.c.expires, USER.c.roles, USER.c.disabled)
        .join(USER, USER.c.name == SESSION.c.user)
        .where(SESSION.c.id_sha256 == sha256_hex(session_id))).first()
    if row is None or row.disabled or row.expires <= now or now - row.created >= max_age:
        return None
    expires = row.expires
    if now - row.last_seen >= LAST_USED_EVERY:
        expires = min(now + idle, row.created + max_age)
        conn.execute(update(SESSION).where(SESSION.c.id_sha256 == row.id_sha256)
                     .values(last_seen=now, expires=expires))
    return SessionEntry(row.user, _roles(row.roles), row.csrf, expires)


def end_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(SESSION).where(SESSION.c.id_sha256 == sha256_hex(session_id)))
