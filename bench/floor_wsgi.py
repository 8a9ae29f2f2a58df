"""The floor under the SSO workload: the same three requests (authorize -> token ->
UserInfo) answered by a bare Flask app under the same gunicorn, doing only HTTP, Flask's
request handling and the RS256 signature of the ID token. No storage (so none of the
database and Redis clients' CPU, which the in-memory peer does not pay either), no client
authentication, no PKCE, no checks: it is not a provider, and never served.

``bench/run.py`` measures it beside Mynagate and oidc-provider in the same run, so the
table shows how much of the gap to the peer is the Python HTTP stack itself (gunicorn's
gthread worker + Flask + werkzeug) and how much is Mynagate's own work above it.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey

app = Flask(__name__)
_KEY = RSAKey.generate_key(2048, auto_kid=True)
_HEADER = {"alg": "RS256", "kid": _KEY.kid, "typ": "JWT"}


@app.get("/.well-known/openid-configuration")
def discovery():
    return jsonify(issuer=request.host_url.rstrip("/"))


@app.get("/authorize")
def authorize():
    args = request.args
    query = urlencode({"code": secrets.token_urlsafe(32), "state": args.get("state", "")})
    return redirect(f"{args['redirect_uri']}?{query}", 302)


@app.post("/token")
def token():
    form = request.form
    if not form.get("code") or not request.headers.get("Authorization"):
        return jsonify(error="invalid_request"), 400
    now = int(time.time())
    id_token = jwt.encode(_HEADER, {"iss": request.host_url.rstrip("/"), "sub": "floor",
                                    "aud": "bench",
                                    "iat": now, "exp": now + 300}, _KEY,
                          algorithms=["RS256"])
    return jsonify(access_token=secrets.token_urlsafe(32), token_type="Bearer",
                   expires_in=600, id_token=id_token)


@app.get("/userinfo")
def userinfo():
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return jsonify(error="invalid_token"), 401
    return jsonify(sub="floor")
