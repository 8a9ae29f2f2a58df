"""TOTP (RFC 6238 via pyotp): enrolment, confirmation, and single-use verification — the
one home of the TOTP rules, for the admin sign-in (``/admin/totp``, always) and a guardian's
password sign-in (``/login/totp``, when the guardian enrolled from their own page). One row
per account in ``admin_totp`` (named for its first user; a guardian's row is the same)."""

from __future__ import annotations

import time

import pyotp
from sqlalchemy.orm import Session

from idp.qr import qr_data_uri
from idp.store.admin_models import AdminTotp
from idp.store.models import utcnow

ISSUER_NAME = "Mynagate"
STEP = 30


def enrolment(db: Session, account_id: str) -> AdminTotp:
    """The admin's TOTP record, creating an unconfirmed one with a new secret if needed."""
    row = db.get(AdminTotp, account_id)
    if row is None:
        row = AdminTotp(account_id=account_id, secret=pyotp.random_base32(), last_step=0)
        db.add(row)
        db.flush()
    return row


def renew_secret(db: Session, account_id: str) -> AdminTotp:
    """A fresh, unconfirmed secret: whatever was shown before the enrolment code was given
    (nothing should have been) is worthless now."""
    row = enrolment(db, account_id)
    row.secret = pyotp.random_base32()
    row.last_step = 0
    row.confirmed_at = None
    return row


def confirmed(db: Session, account_id: str) -> AdminTotp | None:
    """The account's TOTP if it was confirmed with a code (an enrolment begun and left
    unfinished asks for nothing)."""
    row = db.get(AdminTotp, account_id)
    return row if row is not None and row.confirmed_at is not None else None


def provisioning_uri(row: AdminTotp, label: str) -> str:
    return pyotp.TOTP(row.secret).provisioning_uri(name=label, issuer_name=ISSUER_NAME)


def verify(row: AdminTotp, code: str, *, now: float | None = None) -> bool:
    """Accept a code of this or the neighbouring 30-second step, once: a step already used
    (e.g. a code seen over a shoulder and replayed) is refused."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if len(code) != 6:
        return False
    now = time.time() if now is None else now
    totp = pyotp.TOTP(row.secret)
    current = int(now // STEP)
    for step in (current - 1, current, current + 1):
        if step > (row.last_step or 0) and totp.verify(code, for_time=step * STEP,
                                                        valid_window=0):
            row.last_step = step
            if row.confirmed_at is None:
                row.confirmed_at = utcnow()
            return True
    return False


def reset(db: Session, account_id: str) -> None:
    row = db.get(AdminTotp, account_id)
    if row is not None:
        db.delete(row)


def provisioning_qr(uri: str) -> str:
    """The provisioning URI as a QR code: an SVG rendered here, as a ``data:`` URI for an
    ``<img>`` (no script, nothing fetched: the page's CSP holds and the secret never leaves
    this response)."""
    return qr_data_uri(uri)
