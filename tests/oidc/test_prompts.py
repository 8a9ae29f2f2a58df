"""The interaction policy (idp.oidc.prompts), called directly: each named check on plain
values, then the order in which they ask, then what an abuser could try."""

from __future__ import annotations

import pytest

from idp.oidc import prompts
from idp.oidc.prompts import (
    ClientPolicy,
    ConsentState,
    InteractionState,
    RequestParams,
    SessionState,
    decide,
)
from idp.signin.context import ACR_CARD, ACR_PASSWORD

NOW = 1_800_000_000.0
ALICE = SessionState(signed_in=True, auth_time=int(NOW) - 60, acr=ACR_PASSWORD, sub="sub-alice")
CARD_ALICE = SessionState(signed_in=True, auth_time=int(NOW) - 60, acr=ACR_CARD,
                          sub="sub-alice")
AGREED = ConsentState(frozenset({"openid", "profile"}))


def _decide(request: RequestParams = RequestParams(scopes=("openid",)),
            session: SessionState = ALICE, client: ClientPolicy = ClientPolicy(),
            consent: ConsentState = AGREED,
            interaction: InteractionState = InteractionState()) -> prompts.Decision:
    return decide(request, session, client, consent, interaction, now=NOW)


def _ctx(**kwargs) -> prompts.Context:
    values = {"request": RequestParams(scopes=("openid",)), "session": ALICE,
              "client": ClientPolicy(), "consent": AGREED, "interaction": InteractionState(),
              "now": NOW}
    values.update(kwargs)
    return prompts.Context(**values)


# ----------------------------------------------------------------------------- each check
def test_no_session_asks_for_login_only_without_a_session():
    assert prompts.no_session(_ctx(session=SessionState()))
    assert not prompts.no_session(_ctx())


def test_essential_acrs_takes_the_request_and_the_client_floor_each_on_its_own():
    assert prompts.essential_acrs(_ctx(request=RequestParams(acr_values=(ACR_CARD,))))
    assert prompts.essential_acrs(_ctx(client=ClientPolicy(required_acr=ACR_CARD)))
    assert not prompts.essential_acrs(_ctx(session=CARD_ALICE,
                                           client=ClientPolicy(required_acr=ACR_CARD)))
    # Unknown acr values are voluntary (OIDC Core §5.5.1.1): they ask for nothing.
    assert not prompts.essential_acrs(_ctx(request=RequestParams(acr_values=("urn:x",))))


def test_login_prompt_is_satisfied_by_a_sign_in_in_this_transaction():
    asked = RequestParams(prompts=frozenset({"login"}))
    assert prompts.login_prompt(_ctx(request=asked))
    assert not prompts.login_prompt(_ctx(request=asked,
                                         interaction=InteractionState(signed_in_now=True)))
    assert not prompts.login_prompt(_ctx())


def test_max_age_counts_from_the_sign_in():
    assert prompts.max_age(_ctx(request=RequestParams(max_age=59)))
    assert not prompts.max_age(_ctx(request=RequestParams(max_age=60)))
    assert not prompts.max_age(_ctx(request=RequestParams(max_age=None)))
    assert not prompts.max_age(_ctx(request=RequestParams(max_age=0),
                                    interaction=InteractionState(signed_in_now=True)))


def test_id_token_hint_asks_only_when_it_names_someone_else():
    assert prompts.id_token_hint(_ctx(request=RequestParams(hinted_sub="sub-bob")))
    assert not prompts.id_token_hint(_ctx(request=RequestParams(hinted_sub="sub-alice")))
    assert not prompts.id_token_hint(_ctx(request=RequestParams(hinted_sub=None)))


def test_consent_prompt_is_answered_by_the_consent_page():
    asked = RequestParams(prompts=frozenset({"consent"}))
    assert prompts.consent_prompt(_ctx(request=asked))
    assert not prompts.consent_prompt(
        _ctx(request=asked, interaction=InteractionState(consent_answered=True)))


def test_scopes_missing_compares_with_the_stored_consent():
    school = RequestParams(scopes=("openid", "school"))
    assert prompts.scopes_missing(_ctx(request=school))
    assert not prompts.scopes_missing(_ctx(request=RequestParams(scopes=("openid",))))
    # Never agreed to anything: asked even for no scopes at all.
    assert prompts.scopes_missing(_ctx(request=RequestParams(), consent=ConsentState()))
    assert not prompts.scopes_missing(
        _ctx(request=school, interaction=InteractionState(consent_answered=True)))


def test_card_required_follows_the_request_and_the_client():
    assert not prompts.card_required(RequestParams(), ClientPolicy())
    assert prompts.card_required(RequestParams(acr_values=(ACR_CARD,)), ClientPolicy())
    assert prompts.card_required(RequestParams(), ClientPolicy(required_acr=ACR_CARD))


# ----------------------------------------------------------------------------- decisions
def test_signed_in_and_agreed_proceeds():
    decision = _decide()
    assert decision.proceed and decision.check is None and decision.error is None


@pytest.mark.parametrize(("kwargs", "check", "reason"), [
    ({"session": SessionState()}, "no_session", "login"),
    ({"request": RequestParams(prompts=frozenset({"login"}), acr_values=(ACR_CARD,))},
     "essential_acrs", "card_required"),
    ({"request": RequestParams(max_age=1, hinted_sub="sub-bob")}, "max_age", "login"),
    ({"request": RequestParams(hinted_sub="sub-bob")}, "id_token_hint", "other_account"),
])
def test_the_first_login_check_that_asks_gives_the_reason(kwargs, check, reason):
    decision = _decide(**kwargs)
    assert (decision.prompt, decision.check, decision.reason) == (prompts.LOGIN, check, reason)


def test_login_comes_before_consent():
    decision = _decide(session=SessionState(), consent=ConsentState())
    assert decision.prompt == prompts.LOGIN


def test_consent_is_asked_when_scopes_are_new():
    decision = _decide(request=RequestParams(scopes=("openid", "school")))
    assert (decision.prompt, decision.check) == (prompts.CONSENT, "scopes_missing")


NONE = frozenset({"none"})


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"request": RequestParams(prompts=NONE), "session": SessionState()}, "login_required"),
    ({"request": RequestParams(prompts=NONE, scopes=("openid", "school"))},
     "consent_required"),
])
def test_prompt_none_turns_a_page_into_an_error(kwargs, error):
    assert _decide(**kwargs).error == error


def test_without_prompt_none_there_is_no_error_only_a_page():
    assert _decide(session=SessionState()).error is None


def test_a_policy_is_its_list_of_checks():
    """A new rule is one Check in the list (here: a check that always asks)."""
    always = prompts.Check("always", prompts.CONSENT, lambda ctx: True)
    policy = prompts.Policy(checks=prompts.POLICY + (always,))
    assert policy.decide(_ctx()).check == "always"
    assert [c.name for c in prompts.LOGIN_CHECKS] == [
        "no_session", "essential_acrs", "login_prompt", "max_age", "id_token_hint"]


# ----------------------------------------------------------------------------- abuse cases
def test_a_hostile_app_cannot_lower_its_own_card_floor_with_acr_values():
    """The client requires the card; the request asks for the password level too (the lowest
    of several values would be met by a password): still card-level only."""
    decision = _decide(request=RequestParams(acr_values=(ACR_PASSWORD, ACR_CARD)),
                       client=ClientPolicy(required_acr=ACR_CARD))
    assert (decision.check, decision.reason, decision.card_required) == (
        "essential_acrs", "card_required", True)


def test_signing_in_just_now_does_not_excuse_a_too_weak_sign_in():
    """A classmate's password sign-in inside this transaction does not meet the card level."""
    decision = _decide(client=ClientPolicy(required_acr=ACR_CARD),
                       interaction=InteractionState(signed_in_now=True,
                                                    consent_answered=True))
    assert decision.check == "essential_acrs"


def test_shared_pc_the_app_named_another_student_under_prompt_none():
    """Alice left her session on a shared PC; an app silently checking for Bob (prompt=none,
    Bob's id_token_hint) gets login_required, never a code for Alice."""
    decision = _decide(request=RequestParams(prompts=frozenset({"none"}),
                                             hinted_sub="sub-bob", scopes=("openid",)))
    assert (decision.check, decision.error) == ("id_token_hint", "login_required")
    assert not decision.proceed


def test_the_policy_is_pure():
    """No Flask, no database, no clock: the checks are judged on the values passed in."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(prompts.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in imported
                if m.split(".")[0] in ("flask", "sqlalchemy", "time", "datetime")
                or m in ("idp.services", "idp.store.models")}
