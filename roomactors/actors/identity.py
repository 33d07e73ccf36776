"""Who may speak for a user id: seat tokens (open identity) and signed credentials.

race.md, "Identity". In the **open** mode (the default) a user id is the
client's claim, so the seat it takes is guarded by a token the server hands out
in the ``join_lobby`` ack: whoever holds the seat (connected, or within its
reconnect grace) can only be replaced by someone who shows that token (a second
tab, a reload). In the **signed** mode the school's own site signs who the user
is (a JWT, HS256, with ``sub``, ``name``, ``role``, ``exp``) and the server takes
the identity from those claims alone.

Pure functions and one frozen policy record, no actor and no I/O: the lobby asks
:meth:`IdentityPolicy.verify` and :func:`new_seat_token`, and compares tokens with
:func:`token_matches`. Neither a token nor a credential is ever put in a log
line or a repr here (the secret neither).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Final

import jwt

from .records import User
from .validation import MAX_ID_CHARS, MAX_USER_TEXT_CHARS, ProtocolError

__all__ = (
    "CREATOR_ROLES",
    "SEAT_TOKEN_BYTES",
    "IdentityPolicy",
    "new_seat_token",
    "token_matches",
)

SEAT_TOKEN_BYTES: Final = 18
"""Random bytes of a seat token: 144 bits (race.md asks at least 128), 24
base64url characters."""

CREATOR_ROLES: Final = frozenset({"teacher", "admin"})
"""The roles that may create rooms under ``teachers_only_create``."""

ALGORITHM: Final = "HS256"
"""The one signature algorithm accepted; a token naming another is refused
(never ``none``, never an algorithm the token chooses)."""

LEEWAY_SECONDS: Final = 5.0
"""Clock skew tolerated between the school's site and this server for ``exp``."""


def new_seat_token() -> str:
    """A fresh seat token: ``SEAT_TOKEN_BYTES`` random bytes from :mod:`secrets`, base64url."""
    return secrets.token_urlsafe(SEAT_TOKEN_BYTES)


def token_matches(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is the seat's token, compared in constant time."""
    if given is None or expected is None:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class IdentityPolicy:
    """How the lobby decides who a connection speaks for.

    ``secret`` None is the open mode; a secret turns on the signed mode.
    ``teachers_only_create`` lets only users whose ``auth_level`` (the
    credential's ``role``) is ``teacher`` or ``admin`` create rooms; it means
    something only with signed identities, since an open claim can name any role.
    """

    secret: str | None = field(default=None, repr=False)
    teachers_only_create: bool = False

    def __post_init__(self) -> None:
        if self.secret is not None and (not isinstance(self.secret, str) or not self.secret):
            raise ValueError("the identity secret must be a non-empty string (or None for open identity)")

    @property
    def signed(self) -> bool:
        return self.secret is not None

    def may_create_rooms(self, user: User) -> bool:
        return not self.teachers_only_create or user.auth_level in CREATOR_ROLES

    def verify(self, credential: str) -> User:
        """The user a credential names, or ``unauthenticated`` saying what is wrong.

        The identity comes from the claims alone: ``sub`` is the user id (a
        non-empty string of at most 64 characters), ``name`` the username and
        ``role`` the auth_level (strings of at most 64 characters, or absent),
        and ``exp`` must be present and in the future.
        """
        if self.secret is None:
            raise ProtocolError(
                "unauthenticated",
                "this server does not use signed identities; send join_lobby {id, username, auth_level} instead",
            )
        claims = _decode(credential, self.secret)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _refused("its sub claim (the user id) must be a non-empty string")
        if len(sub) > MAX_ID_CHARS:
            raise _refused(f"its sub claim has {len(sub)} characters; at most {MAX_ID_CHARS} are allowed")
        return User(sub, _text_claim(claims, "name"), _text_claim(claims, "role"))


def _decode(credential: str, secret: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            credential,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"], "verify_aud": False, "verify_iss": False},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise _refused("it has expired; get a new one from your school's site (sign in again)") from None
    except jwt.MissingRequiredClaimError as error:
        raise _refused(f"it has no {error.claim} claim; the school's site must sign sub, name, role and exp") from None
    except jwt.InvalidSignatureError:
        raise _refused("its signature does not match this server's secret; it was not made for this server") from None
    except jwt.InvalidAlgorithmError:
        raise _refused(f"it is not signed with {ALGORITHM}; the school's site must sign with {ALGORITHM}") from None
    except jwt.exceptions.InvalidSubjectError:
        raise _refused("its sub claim (the user id) must be a non-empty string") from None
    except jwt.ImmatureSignatureError:
        raise _refused("it is not valid yet (nbf/iat in the future); check the clock of the school's site") from None
    except jwt.InvalidTokenError as error:
        # DecodeError and the claim type errors: say which without echoing the token
        raise _refused(f"it is not a valid JWT ({_describe(error)}); send the token your school's site made") from None
    return claims


def _describe(error: jwt.InvalidTokenError) -> str:
    text = str(error)
    # PyJWT's messages name what failed, never the token itself; keep them short
    return text[:120] if text else type(error).__name__


def _text_claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _refused(f"its {name} claim must be a string")
    if len(value) > MAX_USER_TEXT_CHARS:
        raise _refused(f"its {name} claim has {len(value)} characters; at most {MAX_USER_TEXT_CHARS} are allowed")
    return value


def _refused(what: str) -> ProtocolError:
    return ProtocolError("unauthenticated", f"the credential was refused: {what}")
