"""Who is calling, over HTTP: a Better Auth JWT verified against its JWKS (PyJWT; no crypto of ours).

When ``jwt_jwks_url`` is set, the SDK's bearer middleware hands every HTTP request's token to
:class:`JwtVerifier`; a request without a valid token gets 401 before any tool runs. The token must be
signed by a key of the JWKS with one of the pinned algorithms (never ``none``, never HMAC with a
public key), carry ``exp``, ``iss``, ``aud`` and ``sub``, and name the configured issuer and audience.
run_scoped_query then takes the caller from ``sub`` and refuses a ``user_id`` argument that differs.

Better Auth's JWT plugin publishes its keys at ``<app>/api/auth/jwks`` and signs with EdDSA (Ed25519)
by default; ``sub`` is the user id.
"""

from __future__ import annotations

import logging

import anyio
import jwt
from mcp.server.auth.provider import AccessToken

log = logging.getLogger("schema_architect.auth")

#: Asymmetric algorithms only: with a JWKS of public keys, an HMAC algorithm would let anyone holding
#: the public key sign (the classic key-confusion attack), and "none" signs nothing.
ALLOWED_ALGORITHMS = frozenset({"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256",
                                "PS384", "PS512"})


class JwtConfigError(ValueError):
    """The token settings are incomplete or unsafe; the message says which setting to fix."""


class JwtVerifier:
    """The SDK's TokenVerifier for Better Auth JWTs: keys from the JWKS (cached, fetched with a timeout)."""

    def __init__(self, jwks_url: str, *, issuer: str, audience: str, algorithms: list[str],
                 timeout_s: float = 5.0) -> None:
        unsafe = sorted(set(algorithms) - ALLOWED_ALGORITHMS)
        if unsafe or not algorithms:
            raise JwtConfigError(
                f"SCHEMA_ARCHITECT_JWT_ALGORITHMS has {', '.join(unsafe) or 'nothing'}: pin asymmetric "
                f"algorithms only, from {', '.join(sorted(ALLOWED_ALGORITHMS))} (Better Auth signs EdDSA).")
        self.issuer, self.audience, self.algorithms = issuer, audience, list(algorithms)
        self.keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=timeout_s)

    def _verify(self, token: str) -> AccessToken | None:
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key, algorithms=self.algorithms, audience=self.audience,
                                issuer=self.issuer, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("token refused: the JWKS could not be fetched (%s)", type(exc).__name__)
            return None
        except (jwt.PyJWTError, ValueError) as exc:  # expired, wrong audience or issuer, bad signature, alg
            log.info("token refused: %s", type(exc).__name__)
            return None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            return None
        return AccessToken(token=token, client_id=str(claims.get("azp") or subject), scopes=[],
                           expires_at=int(claims["exp"]), subject=subject, claims={"iss": claims["iss"]})

    async def verify_token(self, token: str) -> AccessToken | None:
        # PyJWKClient fetches with urllib (blocking): off the event loop, bounded by its timeout.
        return await anyio.to_thread.run_sync(self._verify, token)


def verifier_from(settings) -> JwtVerifier | None:
    """The verifier the settings ask for, or None when identity binding is off."""
    if not settings.jwt_jwks_url:
        return None
    missing = [name for name, value in (("SCHEMA_ARCHITECT_JWT_ISSUER", settings.jwt_issuer),
                                        ("SCHEMA_ARCHITECT_JWT_AUDIENCE", settings.jwt_audience)) if not value]
    if missing:
        raise JwtConfigError(f"SCHEMA_ARCHITECT_JWT_JWKS_URL is set, so tokens are verified, which needs "
                             f"{' and '.join(missing)} (Better Auth's issuer and audience default to the app's "
                             "base URL).")
    return JwtVerifier(settings.jwt_jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                       algorithms=settings.jwt_algorithms)
