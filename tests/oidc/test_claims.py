"""Claims release (idp.oidc.claims): the one place the ID token, UserInfo and introspection
take person claims from, and the disclosure record written for each release."""

from __future__ import annotations

from types import SimpleNamespace

from idp import scopes
from idp.oidc import claims
from idp.store.models import Disclosure
from tests.oidc.conftest import basic_auth, sign_in_tokens, userinfo

ROW = SimpleNamespace(sector="math.example.test", client_id="c1")
PUPIL = SimpleNamespace(id="acc-1", display_name="山田 花子", login_id="hana", grade="5",
                        class_name="", role="student", active=True, status="active",
                        school=SimpleNamespace(code="s1", name="第一小"))


def test_openid_alone_releases_only_the_pairwise_sub():
    released = claims.release("secret", ROW, PUPIL, ["openid"])
    assert released == {"sub": claims.subject_for("secret", ROW, "acc-1")}
    assert claims.claims_for_scopes(["openid", "offline_access"]) == []


def test_each_scope_releases_its_claims_and_empty_values_are_left_out():
    released = claims.release("secret", ROW, PUPIL, ["openid", "profile", "school"])
    assert released["name"] == "山田 花子"
    assert released["school_code"] == "s1" and released["grade"] == "5"
    assert "class_name" not in released  # empty: not sent as null
    assert "homeroom" not in released and released["status"] == "active"


def test_the_sub_differs_between_sectors():
    other = SimpleNamespace(sector="games.example.test", client_id="c2")
    assert claims.subject_for("secret", ROW, "acc-1") != claims.subject_for("secret", other,
                                                                           "acc-1")


def test_claims_supported_lists_every_released_claim():
    for names in scopes.SCOPE_CLAIMS.values():
        assert set(names) <= set(scopes.CLAIMS_SUPPORTED)
    assert list(scopes.SCOPE_CLAIMS) == scopes.SUPPORTED_SCOPES


def _disclosures(svc, account_id: str, client_id: str) -> list[tuple[str, list[str]]]:
    svc.events.flush()  # the records go through the event log (a Redis stream)
    with svc.db.session() as db:
        rows = db.query(Disclosure).filter_by(account_id=account_id, client_id=client_id)
        return sorted((row.via, list(row.claims)) for row in rows)


def test_id_token_and_userinfo_release_the_same_claims_recorded_once_per_sign_in(
        browser, make_rp, make_student, svc):
    """The student's page shows one row per sign-in at an app: UserInfo calls (and
    refreshes) within the sign-in re-deliver what it released and add no row."""
    rp = make_rp(scopes=["openid", "profile"])
    student = make_student()
    tokens = sign_in_tokens(browser, rp, student, scope="openid profile")
    answer = userinfo(browser.c, tokens.body["access_token"]).get_json()
    userinfo(browser.c, tokens.body["access_token"])
    assert answer["name"] == tokens.claims["name"] == "山田 花子"
    assert answer["sub"] == tokens.claims["sub"]
    assert _disclosures(svc, student.id, rp.client_id) == [(claims.VIA_ID_TOKEN, ["name"])]


def test_openid_alone_leaves_no_disclosure_record(browser, rp, make_student, svc):
    student = make_student()
    tokens = sign_in_tokens(browser, rp, student)
    assert set(userinfo(browser.c, tokens.body["access_token"]).get_json()) == {"sub"}
    assert _disclosures(svc, student.id, rp.client_id) == []


def test_introspection_never_releases_person_claims(browser, make_rp, make_student, svc):
    """A hostile app could try introspection to read a student's name without the
    disclosure showing on the account page: it gets only whose token it is."""
    rp = make_rp(scopes=["openid", "profile", "school"])
    student = make_student()
    tokens = sign_in_tokens(browser, rp, student, scope="openid profile school")
    before = _disclosures(svc, student.id, rp.client_id)
    answer = browser.c.post("/introspect", data={"token": tokens.body["access_token"]},
                            headers=basic_auth(rp.client_id, rp.client_secret)).get_json()
    assert answer["active"] is True and answer["sub"] == tokens.claims["sub"]
    assert not {"name", "school_code", "school_name", "grade", "role"} & set(answer)
    assert _disclosures(svc, student.id, rp.client_id) == before
