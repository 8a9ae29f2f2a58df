"""The admin API's transfer operations (``/api/admin/accounts/{id}/transfer`` and
``/api/admin/transfers``): parse the JSON, call :mod:`idp.admin.transfers`, answer.

One call, three meanings, by who makes it (see :mod:`idp.admin.transfers`): a platform
admin moves the account now (200, ``status: completed``), the account's school admin offers
the move (201, ``status: offered``), the receiving school's admin accepts the offer to their
school (200, ``status: completed``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from idp.accounts.roles import Actor
from idp.admin import accounts, transfers
from idp.admin.api import ApiError, _error, _json_object, api_route, bp
from idp.services import services


@bp.errorhandler(transfers.TransferConflict)
def _conflict(exc: transfers.TransferConflict):
    return _error(409, exc.code, str(exc))


def _optional_string(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "invalid_request", f"{name} is a string")
    return value


@api_route("/accounts/<account_id>/transfer", ["POST"])
def transfer_account(db: Session, actor: Actor, account_id: str):
    data = _json_object()
    school_code = data.get("school_code")
    if not isinstance(school_code, str):
        raise ApiError(400, "invalid_request", "school_code is a string")
    outcome = transfers.request_transfer(services(), db, actor, account_id, school_code,
                                         _optional_string(data, "login_id"))
    body = transfers.transfer_view(outcome.transfer)
    if outcome.moved:
        body["account"] = accounts.account_view(outcome.account)
    return body, (200 if outcome.moved else 201)


@api_route("/transfers", ["GET"])
def list_transfers(db: Session, actor: Actor):
    rows = transfers.pending_offers(db, actor)
    return {"transfers": [transfers.transfer_view(t, a) for t, a in rows]}


@api_route("/transfers/<transfer_id>/decline", ["POST"])
def decline_transfer(db: Session, actor: Actor, transfer_id: str):
    return transfers.transfer_view(transfers.decline(db, actor, transfer_id))
