"""The interaction policy: whether an authorization request may be answered now, or the person
must first sign in (again) or agree, written as small named checks in the manner of
node-oidc-provider's ``interaction_policy``.

Pure: plain values in, a :class:`Decision` out (no Flask, no database, no clock), so each
rule is tested by calling it. The authorization view gathers the values and acts on the
decision. A new rule is one :class:`Check` added to :data:`LOGIN_CHECKS` or
:data:`CONSENT_CHECKS`; the first check that asks wins, so order says which reason the
person is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from idp.signin.context import ACR_PASSWORD, acr_satisfies

LOGIN = "login"
CONSENT = "consent"


@dataclass(frozen=True)
class RequestParams:
    """What the authorization request asks for (already parsed and validated)."""

    prompts: frozenset[str] = frozenset()
    max_age: int | None = None
    hinted_sub: str | None = None  # ``sub`` of a verified id_token_hint
    acr_values: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()  # the scopes the client may be given


@dataclass(frozen=True)
class SessionState:
    """Who is signed in to this browser (nobody: ``signed_in`` False)."""

    signed_in: bool = False
    auth_time: int = 0
    acr: str = ""
    sub: str | None = None  # the person's pairwise ``sub`` at this client


@dataclass(frozen=True)
class ClientPolicy:
    required_acr: str | None = None  # a floor the request cannot lower


@dataclass(frozen=True)
class ConsentState:
    # Agreed to earlier for this app (the stored consent); None: never agreed to anything.
    granted_scopes: frozenset[str] | None = None


@dataclass(frozen=True)
class InteractionState:
    """What happened in this login transaction (none: all False)."""

    signed_in_now: bool = False  # the session's sign-in happened in this transaction
    consent_answered: bool = False  # agreed or declined on the consent page just now


@dataclass(frozen=True)
class Context:
    request: RequestParams
    session: SessionState
    client: ClientPolicy
    consent: ConsentState
    interaction: InteractionState
    now: float


@dataclass(frozen=True)
class Check:
    """One named rule: when ``applies``, the person must go through ``prompt``; ``reason``
    tells the sign-in page what to say."""

    name: str
    prompt: str
    applies: Callable[[Context], bool]
    reason: str | None = None


@dataclass(frozen=True)
class Decision:
    prompt: str | None = None  # LOGIN, CONSENT, or None: answer the request now
    check: str | None = None  # the name of the check that asked
    reason: str | None = None
    error: str | None = None  # login_required / consent_required under prompt=none
    card_required: bool = False  # the request or client needs more than a password

    @property
    def proceed(self) -> bool:
        return self.prompt is None


def level_met(acr: str, requested: tuple[str, ...] | list[str],
              required_acr: str | None) -> bool:
    """The request's acr_values and the client's floor, each on its own (acr_satisfies
    takes the lowest of several asked values, which must not lower the client's floor)."""
    floor = [required_acr] if required_acr else []
    return acr_satisfies(acr, list(requested)) and acr_satisfies(acr, floor)


def card_required(request: RequestParams, client: ClientPolicy) -> bool:
    return not level_met(ACR_PASSWORD, request.acr_values, client.required_acr)


# ----------------------------------------------------------------------------- the checks
def no_session(ctx: Context) -> bool:
    return not ctx.session.signed_in


def essential_acrs(ctx: Context) -> bool:
    """Signed in below the level the request or the client needs (even just now)."""
    return not level_met(ctx.session.acr, ctx.request.acr_values, ctx.client.required_acr)


def login_prompt(ctx: Context) -> bool:
    """prompt=login: a fresh sign-in, unless it happened in this very transaction."""
    return LOGIN in ctx.request.prompts and not ctx.interaction.signed_in_now


def max_age(ctx: Context) -> bool:
    limit = ctx.request.max_age
    return (limit is not None and not ctx.interaction.signed_in_now
            and ctx.now - ctx.session.auth_time > limit)


def id_token_hint(ctx: Context) -> bool:
    """The app named another person (its ID token's ``sub``) than the one signed in."""
    hinted = ctx.request.hinted_sub
    return bool(hinted) and not ctx.interaction.signed_in_now and hinted != ctx.session.sub


def consent_prompt(ctx: Context) -> bool:
    return CONSENT in ctx.request.prompts and not ctx.interaction.consent_answered


def scopes_missing(ctx: Context) -> bool:
    """Scopes the person has not agreed to yet for this app (or no agreement at all)."""
    granted = ctx.consent.granted_scopes
    missing = granted is None or not set(ctx.request.scopes) <= granted
    return missing and not ctx.interaction.consent_answered


LOGIN_CHECKS: tuple[Check, ...] = (
    Check("no_session", LOGIN, no_session, reason="login"),
    Check("essential_acrs", LOGIN, essential_acrs, reason="card_required"),
    Check("login_prompt", LOGIN, login_prompt, reason="login"),
    Check("max_age", LOGIN, max_age, reason="login"),
    Check("id_token_hint", LOGIN, id_token_hint, reason="other_account"),
)
CONSENT_CHECKS: tuple[Check, ...] = (
    Check("consent_prompt", CONSENT, consent_prompt),
    Check("scopes_missing", CONSENT, scopes_missing),
)
POLICY: tuple[Check, ...] = LOGIN_CHECKS + CONSENT_CHECKS


@dataclass(frozen=True)
class Policy:
    checks: tuple[Check, ...] = field(default=POLICY)

    def decide(self, ctx: Context) -> Decision:
        needs_card = card_required(ctx.request, ctx.client)
        for check in self.checks:
            if check.applies(ctx):
                # prompt=none: the app asked not to show anything, so it gets the error
                # instead of a page (OIDC Core §3.1.2.6).
                error = f"{check.prompt}_required" if "none" in ctx.request.prompts else None
                return Decision(check.prompt, check.name, check.reason, error, needs_card)
        return Decision(card_required=needs_card)


def decide(request: RequestParams, session: SessionState, client: ClientPolicy,
           consent: ConsentState, interaction: InteractionState, *, now: float) -> Decision:
    """The default policy's decision for one authorization request."""
    return Policy().decide(Context(request, session, client, consent, interaction, now))
