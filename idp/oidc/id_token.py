"""ID tokens (OIDC Core §2): signed with the provider's key for the client's algorithm."""

from __future__ import annotations

import time
from typing import Any

from authlib.oidc.core.util import create_half_hash
from joserfc import jwt

from idp.keys import SigningKeys
from idp.oidc import claims as released
from idp.signin.context import AuthContext


def issue_id_token(*, keys: SigningKeys, issuer: str, pairwise_secret: str, client_row,
                   account, scopes: list[str], auth: AuthContext, lifetime: int,
                   nonce: str | None = None, access_token: str | None = None) -> str:
    alg = client_row.id_token_signed_response_alg or "RS256"
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client_row.client_id,
        "exp": now + lifetime,
        "iat": now,
        "auth_time": auth.auth_time,
        "acr": auth.acr,
        "amr": list(auth.amr),
        "sid": auth.sid,
        # aud is a single string, so azp is not required (OIDC Core §2); sent anyway as
        # some RPs check it.
        "azp": client_row.client_id,
    }
    if nonce:
        claims["nonce"] = nonce
    if access_token:
        at_hash = create_half_hash(access_token, alg)
        if at_hash is not None:
            claims["at_hash"] = at_hash.decode()
    # sub and the person claims: idp.oidc.claims decides (the grant records the disclosure).
    claims.update(released.release(pairwise_secret, client_row, account, scopes))
    header = {"alg": alg, "kid": keys.kid(alg), "typ": "JWT"}
    return jwt.encode(header, claims, keys.for_alg(alg), algorithms=[alg])
