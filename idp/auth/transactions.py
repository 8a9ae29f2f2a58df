"""Login transactions: an authorization request waiting for the person to sign in or agree.

Kept in the short-lived store and bound to the browser that started it, so a transaction id
seen elsewhere is useless. The authorization request is replayed from its stored parameters
once the person is done.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

from flask import session

from idp.accounts import linking
from idp.services import services
from idp.signin.current import browser_id

TXN_PARAM = "mynagate_txn"


def start(params: dict[str, str], *, card_required: bool = False, client_name: str = "",
          client_id: str = "") -> str:
    svc = services()
    # A new authorization request is a new sign-in: a card tapped (and not linked) in an
    # earlier one must not be offered to whoever signs in now (shared school PCs).
    session.pop(linking.SESSION_KEY, None)
    txn_id = secrets.token_urlsafe(24)
    svc.store.put("txn:" + txn_id, {
        "browser": browser_id(), "params": params, "started": time.time(),
        "card_required": card_required, "client_name": client_name, "client_id": client_id,
        "authenticated_at": None, "consented_at": None,
    }, svc.settings.login_transaction_lifetime)
    return txn_id


def load(txn_id: str | None) -> dict[str, Any] | None:
    if not txn_id or not isinstance(txn_id, str) or len(txn_id) > 64:
        return None
    record = services().store.get("txn:" + txn_id)
    if record is None or record.get("browser") != browser_id():
        return None
    record["id"] = txn_id
    return record


def update(txn: dict[str, Any], **changes: Any) -> None:
    svc = services()
    txn.update(changes)
    data = {k: v for k, v in txn.items() if k != "id"}
    svc.store.put("txn:" + txn["id"], data, svc.settings.login_transaction_lifetime)


def resume_url(txn: dict[str, Any]) -> str:
    """Where the browser goes to continue the authorization request."""
    params = dict(txn["params"])
    params[TXN_PARAM] = txn["id"]
    return "/authorize?" + urlencode(params)
