"""The demo's data: development settings with persisted secrets, and an idempotent seed of a
school, a student and two relying parties on different hosts (so, different pairwise sectors).

Files under the state directory (``var/`` for ``make run``):
- ``dev-secrets.json``: the session and pairwise secrets, generated once, so a restart keeps
  every ``sub`` the demo apps have seen;
- ``demo-clients.json``: the demo apps' client ids and secrets (the database keeps only hashes).
The student's password is printed once, when it is set, and stored nowhere in clear.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from idp.audit import audit
from idp.clients.registry import ClientSpec, hash_secret, register_client
from idp.settings import Settings
from idp.signin.passwords import generate_first_password, hash_password
from idp.store.models import Account, Client, School

DEMO_SCHOOL_CODE = "demo-school"
DEMO_SCHOOL_NAME = "マイナゲート小学校"
DEMO_STUDENT_LOGIN = "demo-student"
DEMO_STUDENT_NAME = "マイナ たろう"
# A platform admin, so a school's IT person trying the demo can open /admin/ too (the first
# sign-in there shows the TOTP key to put in an authenticator app).
DEMO_ADMIN_LOGIN = "demo-admin"
DEMO_ADMIN_NAME = "デモ管理者"
DEMO_PROVIDER_PORT = 5000
SECRETS_FILE = "dev-secrets.json"
CLIENTS_FILE = "demo-clients.json"
# The demo apps ask for everything a learning app may ask for, so the claims page shows it all.
DEMO_SCOPE = "openid profile school"


@dataclass(frozen=True)
class DemoRP:
    """One demo relying party. Its host decides its pairwise sector."""

    key: str
    name: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.origin}/logged-out"


# Two apps on loopback: each is a pairwise sector of its own (loopback names nobody), so the
# same student gets a different ``sub`` in each app — the point of pairwise subjects, made
# visible.
DEMO_RPS: tuple[DemoRP, ...] = (
    DemoRP("drill", "算数ドリル (demo)", "127.0.0.1", 5001),
    DemoRP("notes", "英語ノート (demo)", "localhost", 5002),
)


# ----------------------------------------------------------------------------- files
def _write_private_json(path: Path, data: Any) -> None:
    """Write atomically with mode 0600: these files hold secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # A damaged file is regenerated rather than stopping the demo.
        return {}
    return data if isinstance(data, dict) else {}


def dev_secrets(state_dir: Path) -> dict[str, str]:
    """The development secrets, generated on first use and then read back."""
    path = state_dir / SECRETS_FILE
    stored = _read_json(path)
    wanted = ("secret_key", "pairwise_secret")
    if all(isinstance(stored.get(k), str) and len(stored[k]) >= 16 for k in wanted):
        return {k: stored[k] for k in wanted}
    fresh = {k: secrets.token_urlsafe(32) for k in wanted}
    _write_private_json(path, fresh)
    return fresh


def demo_settings(state_dir: str | Path = "var", *, issuer: str | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Development settings for the demo. An ``IDP_*`` variable the person set wins over the
    demo's default (so ``IDP_DATABASE_URL=postgresql://… make run`` works); ``overrides``
    (used by tests) win over both."""
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ if environ is None else environ)
    defaults: dict[str, Any] = {
        "env": "development",
        "issuer": issuer or f"http://127.0.0.1:{DEMO_PROVIDER_PORT}",
        "database_url": f"sqlite:///{state / 'mynagate.db'}",
        "keys_dir": str(state / "keys"),
        # Card sign-in stays off (the provider says so on the card page) until
        # idp.demo.setup_demo_card gives the demo a test PKI and revocation sources: the
        # production defaults (J-LIS anchors, OCSP+CRL) need sources a laptop does not have.
        "jpki_trust_anchors": [],
        **dev_secrets(state),
    }
    chosen = {k: v for k, v in defaults.items() if f"IDP_{k.upper()}" not in env}
    chosen.update(overrides or {})
    if issuer:
        chosen["issuer"] = issuer  # the bound port decides it; nothing else can be right
    return Settings.load(chosen, environ=env)


# ----------------------------------------------------------------------------- seeding
def seed_demo(services: Any, *, rps: Sequence[DemoRP] = DEMO_RPS,
              state_dir: str | Path = "var") -> dict[str, Any]:
    """Create what the demo needs, once. Safe to run on every start.

    Returns ``{"issuer", "school": {...}, "student": {"login", "password", "created"},
    "clients": {key: {...}}}``. ``student["password"]`` is the clear password only on the run
    that created the student; later runs return ``None`` (it is stored nowhere in clear).
    """
    state = Path(state_dir)
    school, school_created = _ensure_school(services)
    student_password = _ensure_account(services, school, DEMO_STUDENT_LOGIN,
                                       DEMO_STUDENT_NAME, "student", grade="5", class_name="1")
    admin_password = _ensure_account(services, school, DEMO_ADMIN_LOGIN, DEMO_ADMIN_NAME,
                                     "platform_admin")
    # The first TOTP enrolment needs a one-time code: printed with the password, once.
    enrolment_code = demo_enrolment_code(services) if admin_password else None
    clients = _ensure_clients(services, rps, state / CLIENTS_FILE)
    return {
        "issuer": services.settings.issuer,
        "school": {"code": school.code, "name": school.name, "created": school_created},
        "student": {"school": school.code, "login": DEMO_STUDENT_LOGIN,
                    "password": student_password, "created": student_password is not None},
        "admin": {"school": school.code, "login": DEMO_ADMIN_LOGIN, "password": admin_password,
                  "enrolment_code": enrolment_code, "created": admin_password is not None},
        "clients": clients,
    }


def _ensure_school(services: Any) -> tuple[School, bool]:
    with services.db.session() as db:
        row = db.scalar(select(School).where(School.code == DEMO_SCHOOL_CODE))
        if row is not None:
            return row, False
        row = School(code=DEMO_SCHOOL_CODE, name=DEMO_SCHOOL_NAME)
        db.add(row)
        db.flush()
        audit(db, "school.created", actor="demo", school_id=row.id, code=DEMO_SCHOOL_CODE)
    return row, True


def _ensure_account(services: Any, school: School, login: str, name: str, role: str,
                    **details: str) -> str | None:
    """Create the account once; its generated password (to print once), or ``None`` when
    it already existed."""
    with services.db.session() as db:
        row = db.scalar(select(Account).where(Account.school_id == school.id,
                                              Account.login_id == login))
        if row is not None:
            return None
        password = generate_first_password()
        row = Account(school_id=school.id, login_id=login, display_name=name, role=role,
                      password_hash=hash_password(password), **details)
        db.add(row)
        db.flush()
        audit(db, "account.created", actor="demo", account_id=row.id, school_id=school.id)
    return password


def reset_demo_password(services: Any, login: str = DEMO_STUDENT_LOGIN) -> str:
    """Give a demo account (``demo-student`` unless told) a new generated password and
    return it (to print once)."""
    if login not in (DEMO_STUDENT_LOGIN, DEMO_ADMIN_LOGIN):
        raise LookupError(f"{login} is not a demo account")
    with services.db.session() as db:
        row = db.scalar(select(Account).join(School).where(
            School.code == DEMO_SCHOOL_CODE, Account.login_id == login))
        if row is None:
            raise LookupError(f"{login} does not exist yet: run the demo once")
        password = generate_first_password()
        row.password_hash = hash_password(password)
        row.locked = False
        audit(db, "account.password_reset", actor="demo", account_id=row.id,
              school_id=row.school_id)
    return password


def demo_enrolment_code(services: Any) -> str | None:
    """A new one-time TOTP enrolment code for demo-admin (to print once), or ``None`` when
    demo-admin has already enrolled (reset it with ``idp admin reset-totp`` first)."""
    from idp.admin.accounts import issue_enrolment_code
    from idp.store.admin_models import AdminTotp

    with services.db.session() as db:
        row = db.scalar(select(Account).join(School).where(
            School.code == DEMO_SCHOOL_CODE, Account.login_id == DEMO_ADMIN_LOGIN))
        if row is None:
            raise LookupError(f"{DEMO_ADMIN_LOGIN} does not exist yet: run the demo once")
        enrolled = db.get(AdminTotp, row.id)
        if enrolled is not None and enrolled.confirmed_at is not None:
            return None
        return issue_enrolment_code(db, row, actor_id="demo")


def _still_registered(services: Any, rp: DemoRP, saved: Mapping[str, Any]) -> bool:
    """Whether the saved credentials still match a client in the database with the URIs this
    run serves (a different port, or a fresh database, means registering again)."""
    client_id, secret = saved.get("client_id"), saved.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(secret, str):
        return False
    with services.db.session() as db:
        row = db.get(Client, client_id)
        return bool(row is not None and row.enabled
                    and row.redirect_uris == [rp.redirect_uri]
                    and row.post_logout_redirect_uris == [rp.post_logout_redirect_uri]
                    and row.client_secret_hash == hash_secret(secret))


def _ensure_clients(services: Any, rps: Sequence[DemoRP], path: Path) -> dict[str, dict]:
    saved = _read_json(path)
    result: dict[str, dict] = {}
    changed = False
    for rp in rps:
        entry = saved.get(rp.key)
        if isinstance(entry, dict) and _still_registered(services, rp, entry):
            result[rp.key] = {**entry, "created": False}
            continue
        spec = ClientSpec(name=rp.name, redirect_uris=[rp.redirect_uri],
                          post_logout_redirect_uris=[rp.post_logout_redirect_uri],
                          token_endpoint_auth_method="client_secret_basic")
        row, secret = register_client(services, spec, actor="demo")
        entry = {"name": rp.name, "client_id": row.client_id, "client_secret": secret,
                 "redirect_uri": rp.redirect_uri,
                 "post_logout_redirect_uri": rp.post_logout_redirect_uri,
                 "origin": rp.origin, "sector": row.sector}
        saved[rp.key] = entry
        result[rp.key] = {**entry, "created": True}
        changed = True
    if changed:
        _write_private_json(path, saved)
    return result
