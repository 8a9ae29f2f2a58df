"""The OneRoster journey in real headless Chromium against a real provider server:

1. a school admin signs in, chooses the OneRoster 1.2 (Japan Profile) zip the school
   information system exported, sees the preview (the guardian left out on purpose),
   applies it and downloads the first-password sheets (PDF);
2. the same admin exports the roster for the school's app: every person is named by the
   app's pairwise ``sub``, never by an account or login id;
3. a pupil from the bundle signs in to that app with the first password, and the app
   receives the very ``sub`` the exported bundle named them by.

Each step leaves a screenshot in test-artifacts/oneroster-journey/.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.admin.conftest import _make_account
from tests.admin.oneroster_bundles import bundle, class_of_five
from tests.browser.journey_rp import JourneyRP
from tests.browser.steps import choose_own_password
from tests.browser.test_admin_journey import Person, provider, rp_server  # noqa: F401
from tests.conftest import ROOT, unique

pytestmark = [pytest.mark.browser]
ARTIFACTS = ROOT / "test-artifacts" / "oneroster-journey"


def test_oneroster_bundle_to_sheets_to_export_to_a_pupil_signing_in(
        chromium, provider, rp_server):  # noqa: F811 - the admin journey's fixtures
    from idp.accounts.roles import Actor
    from idp.admin.roster_service import load_sheet
    from idp.clients.registry import ClientSpec, register_client
    from idp.oidc.claims import subject_for
    from idp.store.models import Account, Client, School

    svc, issuer = provider
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with svc.db.session() as db:
        school = School(code=unique("orj"), name="ワンロスター小学校")
        db.add(school)
    school_admin = _make_account(svc, school, "school_admin")
    redirect_uri = f"{rp_server.url}/callback"
    row, client_secret = register_client(svc, ClientSpec(
        name="ワンロスター算数", redirect_uris=[redirect_uri],
        post_logout_redirect_uris=[f"{rp_server.url}/bye"],
        token_endpoint_auth_method="client_secret_basic",
        scopes=["openid", "profile", "school"]), actor="test")
    prefix = unique("j") + "-"
    people: list[Person] = []
    try:
        # -- 1. the bundle: preview, apply, first-password sheets -----------------------
        admin = Person(chromium, "1-school-admin", ARTIFACTS)
        people.append(admin)
        admin.admin_sign_in(issuer, school_admin)
        page = admin.page
        page.click("#nav-roster")
        page.wait_for_url(f"{issuer}/admin/roster")
        page.get_by_label("名簿ファイル").set_input_files(
            {"name": "oneroster.zip", "mimeType": "application/zip",
             "buffer": bundle(school.code, class_of_five(prefix), bom=True)})
        admin.shot("roster")
        page.click("#roster-preview")
        summary = page.inner_text("#roster-summary").splitlines()
        assert summary == ["新しく作る: 5人", "変更する: 0人", "変わらない: 0人", "無効にする: 0人",
                           "保護者とつなぐ: 1件", "保護者とのつながりを終える: 0件",
                           "まちがい: 0件"], summary
        # The guardian (a person with the role guardian) is linked to the child it names.
        assert page.inner_text("#roster-links") == f"{prefix}mama → {prefix}haruto"
        with svc.db.session() as db:  # the preview wrote nothing
            assert db.scalar(select(Account.id).where(Account.school_id == school.id,
                                                      Account.role == "student")) is None
        admin.shot("preview")
        page.click("#roster-apply")
        assert page.inner_text("#roster-result") == "作成 5人 / 変更 0人 / 無効化 0人"
        admin.shot("done")
        sheet_href = page.get_attribute("#roster-sheet-all", "href")
        sheet = admin.context.request.get(issuer + sheet_href)
        assert sheet.status == 200 and sheet.body().startswith(b"%PDF-")
        entries = load_sheet(svc, Actor(school_admin.id, "school_admin", school.id),
                             sheet_href.rsplit("/", 1)[1].removesuffix(".pdf"))
        # yui: haruto has a linked guardian now, who would be asked to say yes first.
        login = prefix + "yui"
        first_password = {e["login_id"]: e["password"] for e in entries}[login]
        with svc.db.session() as db:
            pupil_row = db.scalar(select(Account).where(Account.school_id == school.id,
                                                        Account.login_id == login))
            # The bundle's 「1組」 is kept as 1, as the CSV roster writes it (the pages add 組).
            assert (pupil_row.sourced_id, pupil_row.kana_given_name, pupil_row.class_name,
                    pupil_row.student_number) == (prefix + "u-2", "ユイ", "1", "2")
            expected_sub = subject_for(svc.settings.pairwise_secret,
                                       db.get(Client, row.client_id), pupil_row.id)
            pupil_id = pupil_row.id

        # -- 2. the export for the app: pairwise subs only --------------------------------
        page.goto(f"{issuer}/admin/roster")
        page.get_by_label("アプリ").select_option(row.client_id)
        with page.expect_download() as download_info:
            page.click("#roster-export")
        exported = Path(download_info.value.path()).read_bytes()
        archive = zipfile.ZipFile(io.BytesIO(exported))
        users = list(csv.DictReader(io.StringIO(archive.read("users.csv").decode())))
        assert len(users) == 4
        named = {u["sourcedId"]: u for u in users}
        assert named[expected_sub]["metadata.jp.kanaGivenName"] == "ユイ"
        everything = b"".join(archive.read(name) for name in archive.namelist())
        assert pupil_id.encode() not in everything and login.encode() not in everything
        admin.shot("exported")

        # -- 3. the pupil signs in to the app with the first password ---------------------
        app = JourneyRP(issuer, row.client_id, client_secret, redirect_uri)
        rp_server.start(app.wsgi(rp_server.port))
        pupil = Person(chromium, "2-pupil", ARTIFACTS)
        people.append(pupil)
        page = pupil.page
        page.goto(rp_server.url + "/")
        pupil.shot("app")
        page.click("#sign-in")
        page.wait_for_url(re.compile(re.escape(issuer) + r"/login\?"))
        page.get_by_label("学校", exact=True).select_option(school.code)
        page.get_by_label("ID", exact=True).fill(login)
        page.get_by_label("パスワード", exact=True).fill(first_password)
        pupil.shot("login")
        page.get_by_label("パスワード", exact=True).press("Enter")
        choose_own_password(page, issuer, pupil.shot)
        page.wait_for_url(re.compile(re.escape(issuer) + r"/consent\?"))
        pupil.shot("consent")
        page.click("button[name=allow]")
        page.wait_for_url(rp_server.url + "/callback*")
        # The app sees the same person it provisioned from the bundle.
        assert page.inner_text("#sub") == expected_sub
        assert page.inner_text("#name") == "鈴木 結衣"
        pupil.shot("back-at-app")
    finally:
        for person in people:
            person.context.close()

