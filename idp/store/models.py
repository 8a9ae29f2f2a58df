"""Durable records (SQLAlchemy 2). Short-lived state lives in :mod:`idp.store.shortlived`.

Secrets, codes and tokens are stored only as SHA-256 hashes (they are high-entropy random
values, so a fast hash is enough); passwords only as Argon2id hashes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso_utc(moment: datetime | None) -> str | None:
    """A stored (naive UTC) moment as ISO 8601 to the second with ``Z``, for people and JSON."""
    return moment.replace(microsecond=0).isoformat() + "Z" if moment else None


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class School(Base):
    __tablename__ = "schools"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The school year (idp.accounts.lifecycle): pupils in this grade graduate at the year-end
    # promotion (6 for an elementary school, 3 for a junior high), and graduates keep the
    # apps that allow graduates this many days after graduating.
    top_grade: Mapped[int] = mapped_column(Integer, default=6, server_default="6")
    graduate_grace_days: Mapped[int] = mapped_column(Integer, default=90, server_default="90")
    # A pupil younger than this needs a guardian's yes for an app that asks more than
    # ``openid`` (idp.accounts.guardians); 0 turns the rule off for the school.
    guardian_consent_age: Mapped[int] = mapped_column(Integer, default=13, server_default="13")


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("school_id", "login_id", name="uq_account_school_login"),
                      UniqueConstraint("school_id", "sourced_id",
                                       name="uq_account_school_sourced_id"))
    # The internal id is the root of every pairwise sub; it never leaves the provider.
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"), index=True)
    login_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32), default="student")
    grade: Mapped[str] = mapped_column(String(16), default="")
    class_name: Mapped[str] = mapped_column(String(32), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The password was chosen by someone else (the first password on a teacher's slip):
    # the next password sign-in must choose a new one before anything else (issue 12).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default=false())
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # When the account's tokens were last revoked (access ended): an authorization code
    # issued before then is refused too (idp.accounts.access.revoke_account_tokens).
    tokens_revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # active | graduated | deactivated (idp.accounts.lifecycle). ``active`` stays the one
    # switch every sign-in and token check reads: a graduate is still active (for the apps
    # that allow graduates), a deactivated account is not.
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    graduated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Only to tell whether a pupil is under the school's guardian-consent age; never released
    # to an app (no scope names it).
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The school information system's id for this person (OneRoster ``sourcedId``): the next
    # roster import finds the same account by it, even after a login id change. It is the
    # school's id, so it never leaves the provider either (an export carries pairwise subs).
    sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # OneRoster Japan Profile: metadata.jp.kanaFamilyName / kanaGivenName, and the
    # attendance number (出席番号, metadata.jp.shussekiNo) in the homeroom.
    kana_family_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    kana_given_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    student_number: Mapped[str] = mapped_column(String(16), default="", server_default="")

    school: Mapped[School] = relationship(lazy="joined")


class CardBinding(Base):
    """A JPKI user-authentication certificate bound to an account.

    The certificate is a *binding*: it changes at card renewal while the account (and so
    every pairwise ``sub``) stays.
    """

    __tablename__ = "card_bindings"
    __table_args__ = (UniqueConstraint("issuer", "serial", name="uq_card_issuer_serial"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    issuer: Mapped[str] = mapped_column(String(400))
    serial: Mapped[str] = mapped_column(String(80))
    certificate_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    not_after: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|revoked|replaced
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Linked in a sign-in that passed TOTP: only then may this card stand in for an admin's
    # second factor (idp.admin.web_auth).
    linked_with_mfa: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    # A renewed card linked to the same account replaces this one (idp.accounts.cards):
    # the successor and when; the replaced certificate no longer signs in.
    replaced_by_id: Mapped[str | None] = mapped_column(
        ForeignKey("card_bindings.id", name="fk_card_bindings_replaced_by"), nullable=True)
    replaced_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Client(Base):
    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # client_secret_jwt only: the secret sealed with a key from settings.secret_key
    # (idp.clients.registry.seal_secret); every other row has None.
    secret_sealed: Mapped[str | None] = mapped_column(String(255), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    sector_identifier_uri: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sector: Mapped[str] = mapped_column(String(255))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    grant_types: Mapped[list] = mapped_column(JSON, default=list)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    jwks: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(String(500), nullable=True)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), default="RS256")
    required_acr: Mapped[str | None] = mapped_column(String(100), nullable=True)
    logo_uri: Mapped[str | None] = mapped_column(String(500), nullable=True)
    contacts: Mapped[list] = mapped_column(JSON, default=list)
    access_token_lifetime: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refresh_token_lifetime: Mapped[int | None] = mapped_column(Integer, nullable=True)
    registration_access_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Graduates may keep signing in here during their school's grace period (set by an
    # admin only, never by dynamic registration).
    allow_graduates: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=false())


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("account_id", "client_id", name="uq_consent"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    granted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The guardian whose yes this is (a child under the school's age); None: the person's own.
    approved_by: Mapped[str | None] = mapped_column(String(32), nullable=True)


class GuardianLink(Base):
    """A guardian account may see and act for a child account (set by the school)."""

    __tablename__ = "guardian_links"
    __table_args__ = (UniqueConstraint("guardian_id", "child_id", name="uq_guardian_child"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    guardian_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # "school" (by hand: page, API, CLI) or "roster" (a roster import's agentSourcedIds):
    # a bulk roster ends only the links a roster made.
    origin: Mapped[str] = mapped_column(String(16), default="school", server_default="school")


class GuardianRequest(Base):
    """A child asked for a guardian's yes to an app (pending until a linked guardian
    approves or declines it from their own page, or it expires)."""

    __tablename__ = "guardian_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    child_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"),
                                           index=True)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    # pending | approved | declined | replaced (by the child's wider ask)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    decided_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class TokenFamily(Base):
    """Every token issued from one authorization code: revoked together on code replay or
    refresh-token reuse (RFC 9700 §4.14)."""

    __tablename__ = "token_families"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"),
                                           index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    auth_time: Mapped[int] = mapped_column(Integer)
    acr: Mapped[str] = mapped_column(String(100))
    amr: Mapped[list] = mapped_column(JSON, default=list)
    sid: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Token(Base):
    """One access token and (optionally) its refresh token, within a family."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    family_id: Mapped[str] = mapped_column(ForeignKey("token_families.id", ondelete="CASCADE"),
                                           index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(DateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    refresh_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Disclosure(Base):
    """What a relying party received and when (the student's やりとり履歴)."""

    __tablename__ = "disclosures"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    claims: Mapped[list] = mapped_column(JSON, default=list)
    via: Mapped[str] = mapped_column(String(32))  # id_token | userinfo
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class RefusedEvent(Base):
    """An event-log record the database refused for its own data (idp.event_log): kept
    here, as it was sent, with the error, instead of holding its batch back forever."""

    __tablename__ = "refused_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The record's own key (its event_key or id) when it has one: kept once.
    record_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    raw: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("event_key", name="uq_audit_events_event_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    school_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    # A record written through the event log (idp.event_log) carries its own key, so a
    # replayed batch is not written twice; events written in their transaction have None.
    event_key: Mapped[str | None] = mapped_column(String(32), nullable=True)


class SigningKey(Base):
    """An ID token signing key as every worker sees it: only the public half. The private
    half is a file in ``IDP_KEYS_DIR`` (see :mod:`idp.keys`)."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(8), index=True)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(8), index=True)  # next | active | retired
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AccountTransfer(Base):
    """An account's move to another school (issue 11): an offer the sending school made
    (``offered``, until ``expires_at``) that the receiving school accepts (``completed``) or
    declines (``declined``), that the sender withdrew (``cancelled``), or a platform admin's
    direct move (``completed`` at once). The account keeps its id, so every pairwise ``sub``
    stays; the completed rows are the student's own history of schools."""

    __tablename__ = "account_transfers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    from_school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"), index=True)
    to_school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"), index=True)
    from_login_id: Mapped[str] = mapped_column(String(64))
    # The login id the sender proposed (None: keep it); the receiver may choose another.
    to_login_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="offered", index=True)
    offered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    offered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    from_school: Mapped[School] = relationship(foreign_keys=[from_school_id], lazy="joined")
    to_school: Mapped[School] = relationship(foreign_keys=[to_school_id], lazy="joined")


class PromotionBatch(Base):
    """One applied year-end promotion: its preview's token is unique, so the same preview
    applied twice (a double click, a retried API call, two admins) promotes only once."""

    __tablename__ = "promotion_batches"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"), index=True)
    preview_token: Mapped[str] = mapped_column(String(64), unique=True)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    promoted: Mapped[int] = mapped_column(Integer, default=0)
    graduated: Mapped[int] = mapped_column(Integer, default=0)
    applied_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
