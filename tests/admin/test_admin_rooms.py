"""The admin pages are rooms of one size: one ``idp/admin/<section>_views.py`` per section on
the one blueprint, every module < 500 lines and every function < 80; the page routes are the
ones they were; and no section forgets to keep out someone who is not signed-in staff."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from tests.admin.conftest import own_ip
from tests.conftest import csrf_of

ROOT = Path(__file__).resolve().parents[2]
SIGN_IN_STEPS = {"admin.login", "admin.totp_step", "admin.totp_enrol", "admin.logout",
                 # issue 12: the card sign-in on the admin sign-in page (its own abuse tests:
                 # tests/admin/test_admin_card_login.py)
                 "admin.login_card_challenge", "admin.login_card_verify"}

# The admin page routes before the split (rule, methods, endpoint): moving views between
# modules must not add, drop or rename one.
ROUTES = {
    ("/admin/", "GET", "admin.home"),
    ("/admin/accounts", "GET", "admin.account_list"),
    ("/admin/accounts/<account_id>", "GET", "admin.account_detail"),
    ("/admin/accounts/<account_id>/<operation>", "POST", "admin.account_action"),
    ("/admin/accounts/<account_id>/slip", "POST", "admin.account_slip"),
    ("/admin/roster/template.csv", "GET", "admin.roster_template"),
    ("/admin/accounts/<account_id>/reset", "GET", "admin.account_after_reset"),
    ("/admin/accounts/<account_id>/unlink-cards", "POST", "admin.account_unlink_cards"),
    ("/admin/accounts/new", "GET POST", "admin.account_new"),
    # Added with guardians (issue 11), not moved.
    ("/admin/accounts/<account_id>/guardians", "GET", "admin.account_guardians"),
    ("/admin/accounts/<account_id>/guardians", "POST", "admin.account_guardian_link"),
    ("/admin/accounts/<account_id>/guardians/<link_id>/unlink", "POST",
     "admin.account_guardian_unlink"),
    ("/admin/accounts/<account_id>/birth-date", "POST", "admin.account_birth_date"),
    ("/admin/schools/<school_code>/guardian-age", "GET POST", "admin.school_guardian_age"),
    ("/admin/audit", "GET", "admin.audit_page"),
    ("/admin/audit.csv", "GET", "admin.audit_csv"),
    ("/admin/audit/purge", "POST", "admin.purge"),
    ("/admin/cards/<card_id>/revoke", "POST", "admin.card_revoke"),
    ("/admin/clients", "GET", "admin.clients"),
    ("/admin/clients/<client_id>", "GET POST", "admin.client_detail"),
    ("/admin/clients/<client_id>/<operation>", "POST", "admin.client_action"),
    ("/admin/clients/new", "GET POST", "admin.client_new"),
    ("/admin/initial-access-tokens", "GET POST", "admin.iats"),
    ("/admin/initial-access-tokens/<iat_id>/revoke", "POST", "admin.iat_revoke"),
    ("/admin/link-card", "GET", "admin.link_roster"),
    ("/admin/link-card/<account_id>", "GET", "admin.link_card_page"),
    ("/admin/link-card/<account_id>/challenge", "POST", "admin.link_challenge"),
    ("/admin/link-card/<account_id>/confirm", "GET POST", "admin.link_confirm"),
    ("/admin/link-card/<account_id>/verify", "POST", "admin.link_verify"),
    ("/admin/login", "GET POST", "admin.login"),
    ("/admin/logout", "POST", "admin.logout"),
    ("/admin/roster", "GET POST", "admin.roster"),
    ("/admin/roster/apply", "POST", "admin.roster_apply"),
    ("/admin/roster/export", "POST", "admin.roster_export"),
    ("/admin/roster/sheets/<sheet_id>.pdf", "GET", "admin.roster_sheet"),
    ("/admin/schools", "GET POST", "admin.schools"),
    ("/admin/school-year", "GET POST", "admin.school_year_page"),
    ("/admin/school-year/apply", "POST", "admin.school_year_apply"),
    ("/admin/school-year/settings", "POST", "admin.school_year_settings"),
    ("/admin/settings/retention", "POST", "admin.retention"),
    ("/admin/tokens", "GET POST", "admin.api_tokens"),
    ("/admin/tokens/<token_id>/revoke", "POST", "admin.api_token_revoke"),
    ("/admin/totp", "GET POST", "admin.totp_step"),
    ("/admin/totp/enrol", "POST", "admin.totp_enrol"),
    # issue 11: transfers between schools
    ("/admin/accounts/<account_id>/transfer", "POST", "admin.account_transfer"),
    ("/admin/transfers", "GET", "admin.transfers_page"),
    ("/admin/transfers/<transfer_id>/accept", "POST", "admin.transfer_accept"),
    ("/admin/transfers/<transfer_id>/decline", "POST", "admin.transfer_decline"),
    # issue 12: the app's hand-off page, the admin card sign-in
    ("/admin/clients/<client_id>/handoff", "GET", "admin.client_handoff"),
    ("/admin/clients/<client_id>/handoff.pdf", "POST", "admin.client_handoff_pdf"),
    ("/admin/login/card/challenge", "POST", "admin.login_card_challenge"),
    ("/admin/login/card/verify", "POST", "admin.login_card_verify"),
}


def _admin_rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")]


def _methods(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_the_admin_page_routes_are_the_ones_they_were(app):
    assert {(r.rule, " ".join(_methods(r)), r.endpoint) for r in _admin_rules(app)} == ROUTES


def test_each_admin_page_lives_in_a_section_module_listed_once(app):
    from idp.admin.views import SECTIONS

    assert len(SECTIONS) == len(set(SECTIONS))
    modules = {f"idp.admin.{name}" for name in SECTIONS}
    homes = {r.endpoint: app.view_functions[r.endpoint].__module__ for r in _admin_rules(app)}
    assert {e: m for e, m in homes.items() if m not in modules} == {}
    assert modules == set(homes.values()), "a section module with no page in it"
    for name in SECTIONS:
        assert name.endswith("_views"), name  # the naming rule: <concept>_views.py
        assert (ROOT / "idp" / "admin" / f"{name}.py").is_file()
        importlib.import_module(f"idp.admin.{name}")


def _long_functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > 80]


def test_admin_and_demo_modules_are_rooms_of_one_size():
    paths = sorted((ROOT / "idp" / "admin").glob("*.py")) + [ROOT / "idp" / "demo" / "rp.py"]
    too_long = {p.name: n for p in paths
                if (n := p.read_text(encoding="utf-8").count("\n")) > 500}
    assert too_long == {}
    long_functions = {p.name: f for p in paths if (f := _long_functions(p))}
    assert long_functions == {}


# ----------------------------------------------------------------------------- abuse
def _url(rule) -> str:
    """A concrete URL for a rule (the placeholders filled with harmless values)."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>",
                  lambda m: "lock" if m.group(1) == "operation" else "x" * 8, rule.rule)


def _guarded(app):
    return [(rule, method) for rule in _admin_rules(app) if rule.endpoint not in SIGN_IN_STEPS
            for method in _methods(rule)]


def test_a_signed_in_classmate_gets_no_admin_page_or_action(app, browser, rp, student):
    """A student signed in on a shared PC (with a valid CSRF token of their own session)
    opens or posts to every admin page: each one refuses with 403 — a section module that
    forgot its ``admin_required``/``staff_required`` would answer."""
    own_ip(browser.c)
    browser.sign_in_and_authorize(rp, student)
    token = csrf_of(browser.c.get("/admin/login").get_data(as_text=True))
    guarded = _guarded(app)
    assert len(guarded) >= 30
    answers = {}
    for rule, method in guarded:
        response = browser.c.open(_url(rule), method=method, data={"csrf_token": token})
        answers[f"{method} {rule.rule}"] = response.status_code
    assert {k: v for k, v in answers.items() if v != 403} == {}


@pytest.mark.parametrize("signed_in_as", ["nobody", "password only"])
def test_without_a_staff_sign_in_every_admin_page_sends_to_the_admin_login(
        app, browser, rp, make_account, signed_in_as):
    """Nobody signed in, or an admin who signed in to an app with the password only (the
    second factor missing): every admin page goes to /admin/login, none answers."""
    own_ip(browser.c)
    if signed_in_as == "password only":
        from tests.conftest import Student

        admin = make_account("platform_admin")
        browser.sign_in_and_authorize(
            rp, Student(admin.id, admin.school_code, admin.login_id, admin.password))
    token = csrf_of(browser.c.get("/admin/login").get_data(as_text=True))
    wrong = {}
    for rule, method in _guarded(app):
        response = browser.c.open(_url(rule), method=method, data={"csrf_token": token})
        location = response.headers.get("Location", "")
        if response.status_code != 303 or not location.startswith("/admin/login"):
            wrong[f"{method} {rule.rule}"] = (response.status_code, location)
    assert wrong == {}
