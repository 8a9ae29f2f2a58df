"""One pupil's (or teacher's) first-password slip printed again, with a new first password.

A slip gets lost, or the child forgot the password they chose: the school prints a new slip.
The new password replaces whatever the account had (the old slip's, or the one the child
chose), the provider asks for a new one at the next sign-in, and every session and app token
of the account ends: whoever held the old password is out. Callers check permission first
(:func:`idp.admin.accounts.load_account`); the CLI acts as the platform operator.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from idp.accounts.access import revoke_account_tokens
from idp.admin.accounts import AdminInputError
from idp.audit import audit
from idp.signin.passwords import generate_first_password, hash_password
from idp.signin.sessions import end_account_sessions
from idp.store.models import Account

#: The roles a roster creates and a slip is printed for; admins sign in with TOTP too and
#: get a reset code instead.
SLIP_ROLES = ("student", "teacher")


def slip_entry(row: Account, password: str) -> dict[str, str]:
    """What :func:`idp.admin.sheets.first_password_pdf` prints for one account."""
    return {"school_code": row.school.code, "school_name": row.school.name,
            "grade": row.grade or "", "class_name": row.class_name or "", "role": row.role,
            "login_id": row.login_id, "display_name": row.display_name or "",
            "kana_family_name": row.kana_family_name or "",
            "kana_given_name": row.kana_given_name or "",
            "student_number": row.student_number or "", "password": password}


def reprint_slip(svc, db: Session, row: Account, *, actor_id: str) -> dict[str, str]:
    """A new first password for ``row`` (the old one stops working now) and its slip."""
    if row.role not in SLIP_ROLES:
        raise AdminInputError("not_slip_role",
                              "slips are for students and teachers; give an admin a reset code")
    if not row.active:
        raise AdminInputError("inactive", "the account is deactivated")
    password = generate_first_password()
    row.password_hash = hash_password(password)
    row.must_change_password = True
    end_account_sessions(svc.store, row.id)
    revoke_account_tokens(db, row.id, "slip_reprinted", actor=actor_id)
    audit(db, "account.slip_reprinted", actor=actor_id, account_id=row.id,
          school_id=row.school_id)
    return slip_entry(row, password)
