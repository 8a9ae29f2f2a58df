"""The English catalog is complete, and the pages really switch language.

The msgids are the Japanese sentences in the code. The catalog checks run the same extraction
as ``pybabel extract -F babel.cfg -k _l -k lazy_gettext -o ... .`` in-process, so a sentence
added without an English translation fails here with its text and where it is.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from tests.conftest import ROOT, Browser, csrf_of, query_of, redeem
from tests.i18n.conftest import ASCII_APP, ASCII_SCHOOL, ASCII_STUDENT

TRANSLATIONS = ROOT / "idp" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
ENGLISH = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"

# Kana, kanji, Japanese punctuation (、。「」) and full-width forms (:()).
JAPANESE = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]+")
# Printf-style names for Python, {name} for the card page's script.
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|\{\w+\}")
UPDATE_COMMANDS = (
    "From the repository root:\n"
    "  .venv/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext"
    " -o idp/translations/messages.pot .\n"
    "  .venv/bin/pybabel update -i idp/translations/messages.pot -d idp/translations"
    " --no-fuzzy-matching")
# Official Japanese names an English reader still needs, to find them on the card itself.
JAPANESE_PROPER_NAMES = ("利用者証明用電子証明書",)


# ----------------------------------------------------------------------------- the catalog
@pytest.fixture(scope="module")
def extracted(tmp_path_factory, monkeypatch_module):
    """The messages in the code now, extracted exactly like the documented command."""
    out = tmp_path_factory.mktemp("i18n") / "messages.pot"
    monkeypatch_module.chdir(ROOT)  # the input path must be "." for babel.cfg's patterns
    CommandLineInterface().run(["pybabel", "--quiet", "extract", "-F", "babel.cfg",
                                "-k", "_l", "-k", "lazy_gettext", "-o", str(out), "."])
    with open(out, "rb") as fh:
        catalog = read_po(fh)
    messages = {m.id: m for m in catalog if m.id}
    assert len(messages) > 100, "the extractor found almost nothing: is babel.cfg broken?"
    return messages


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def english():
    with open(ENGLISH, "rb") as fh:
        catalog = read_po(fh, locale="en")
    return catalog


def _where(message) -> str:
    return ", ".join(f"{path}:{line}" for path, line in message.locations[:3])


def test_every_extracted_message_has_english(extracted, english):
    missing = []
    for msgid, message in extracted.items():
        entry = english.get(msgid)
        if entry is None or not (entry.string or "").strip():
            missing.append(f"  {msgid!r}  ({_where(message)})")
    assert not missing, (
        f"{len(missing)} message(s) have no English in {ENGLISH.relative_to(ROOT)}.\n"
        f"{UPDATE_COMMANDS}\nthen write the English for:\n" + "\n".join(missing))


def test_committed_template_matches_the_code(extracted):
    with open(TEMPLATE, "rb") as fh:
        committed = {m.id for m in read_po(fh) if m.id}
    new, gone = sorted(set(extracted) - committed), sorted(committed - set(extracted))
    assert not new and not gone, (
        f"{TEMPLATE.relative_to(ROOT)} is out of date.\n{UPDATE_COMMANDS}\n"
        f"new: {new}\ngone: {gone}")


def test_no_fuzzy_entries(english):
    assert not english.fuzzy, "the catalog header is marked fuzzy"
    fuzzy = [m.id for m in english if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries are not shown to anyone; translate them: {fuzzy}"


def test_placeholders_match(english):
    wrong = []
    for message in english:
        if not message.id or not message.string:
            continue
        wanted = sorted(PLACEHOLDER.findall(message.id))
        found = sorted(PLACEHOLDER.findall(message.string))
        if wanted != found:
            wrong.append(f"  {message.id!r}: {wanted} -> {message.string!r}: {found}")
    assert not wrong, "placeholders differ between Japanese and English:\n" + "\n".join(wrong)


def test_english_is_not_japanese(english):
    """A msgstr copied from its msgid (or half-translated) would pass the emptiness check."""
    left = []
    for message in english:
        text = message.string or ""
        for name in JAPANESE_PROPER_NAMES:
            text = text.replace(name, "")
        if message.id and JAPANESE.search(text):
            left.append(f"  {message.id!r} -> {message.string!r}")
    assert not left, "English translations that still contain Japanese:\n" + "\n".join(left)


def test_catalog_compiles_cleanly(english, tmp_path):
    """The checks ``pybabel compile`` runs (python-format and the like), and the compile the
    Makefile and the test session do: no errors, a non-empty .mo."""
    problems = [f"  {message.id!r}: {error}" for message, errors in english.check()
                for error in errors]
    assert not problems, "the catalog has errors:\n" + "\n".join(problems)
    import shutil

    target = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, target, ignore=shutil.ignore_patterns("*.mo"))
    status = CommandLineInterface().run(["pybabel", "--quiet", "compile", "-d", str(target)])
    assert status == 0
    assert (target / "en" / "LC_MESSAGES" / "messages.mo").stat().st_size > 10_000


# ----------------------------------------------------------------------------- the pages
def main_of(html: str) -> str:
    match = re.search(r"<main\b.*?</main>", html, re.S)
    assert match, "the page has no <main> element"
    return match.group(0)


def japanese_left(html: str) -> list[str]:
    """Japanese in <main>, apart from data: the school list is every school's own name."""
    main = main_of(html)
    main = re.sub(r"<option\b[^>]*>.*?</option>", "<option></option>", main, flags=re.S)
    for name in JAPANESE_PROPER_NAMES:
        main = main.replace(name, "")
    return [main[max(0, m.start() - 60):m.end() + 20] for m in JAPANESE.finditer(main)]


def assert_english(response, *sentences: str) -> None:
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    for sentence in sentences:
        assert sentence in html, f"{sentence!r} is not on the English page"
    left = japanese_left(html)
    assert not left, "Japanese left on the English page:\n" + "\n".join(left)


def assert_japanese(response, *sentences: str) -> None:
    html = response.get_data(as_text=True)
    assert '<html lang="ja">' in html
    for sentence in sentences:
        assert sentence in html, f"{sentence!r} is not on the Japanese page"


def _to_login(client, rp, **params):
    browser = Browser(client)
    response, _ = browser.authorize(rp, **params)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    location = response.headers["Location"]
    assert location.startswith("/login")
    return browser, location


def _with_lang(location: str, lang: str) -> str:
    return location + ("&" if "?" in location else "?") + "lang=" + lang


def _to_consent(client, rp, student):
    browser, login = _to_login(client, rp)
    response = browser.password_login(client.get(login), student)
    while response.status_code == 303 and response.headers["Location"].startswith("/authorize"):
        response = client.get(response.headers["Location"])
    assert response.status_code == 303 and response.headers["Location"].startswith("/consent")
    return response.headers["Location"]


def test_login_page_in_both_languages(app, ascii_rp):
    client = app.test_client()
    _, login = _to_login(client, ascii_rp)
    english = client.get(_with_lang(login, "en"))
    assert english.status_code == 200
    assert_english(english, "If you forgot your password, ask your teacher.",
                   ">Sign in<", ASCII_APP)
    japanese = app.test_client()
    _, login_ja = _to_login(japanese, ascii_rp)
    assert_japanese(japanese.get(login_ja), "パスワードをわすれたら、学校の先生に聞いてね。")


def test_consent_page_in_both_languages(app, ascii_rp, ascii_student):
    client = app.test_client()
    consent = _to_consent(client, ascii_rp, ascii_student)
    page = client.get(_with_lang(consent, "en"))
    assert page.status_code == 200
    assert_english(page, f"{ASCII_STUDENT}, this app wants to know these things.",
                   "A number that shows it is you", "Yes (allow)")
    page_ja = client.get(_with_lang(consent, "ja"))
    assert_japanese(page_ja, "あなただとわかる番号",
                    "いいよ（<ruby>許可<rt>きょか</rt></ruby>する）")


def test_card_page_and_its_script_messages_in_english(card_app, ascii_rp):
    client = card_app.test_client()
    _, login = _to_login(client, ascii_rp)
    txn = query_of(login)["txn"]
    page = client.get(f"/login/card?txn={txn}&lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="card-login"' in html, "card sign-in should be on in this app"
    # card.js shows only what these attributes say: they must be English too.
    assert 'data-msg-put-card="Put your My Number Card on the card reader."' in html
    assert 'data-msg-wrong-pin="Wrong PIN. You can try {tries} more times. Press' in html
    assert_english(page, "Sign in with My Number Card", ">Start<")
    page_ja = card_app.test_client().get(f"/login/card?txn={txn}")
    assert_japanese(page_ja, "マイナンバーカードでサインイン",
                    'data-msg-put-card="カードリーダーに、マイナンバーカードをのせてね。"')


def _bridge_error_codes() -> set[str]:
    from card_bridge import errors

    codes, todo = set(), [errors.CardError]
    while todo:
        cls = todo.pop()
        codes.add(cls.code)
        todo.extend(cls.__subclasses__())
    return codes


def test_every_bridge_error_has_a_page_message(card_app):
    """card.js falls back to the bridge's own text for a code the page does not know, and
    that text is Japanese or English whatever the page's language: so know them all."""
    html = card_app.test_client().get("/login/card?lang=en").get_data(as_text=True)
    missing = sorted(code for code in _bridge_error_codes()
                     if f'data-msg-{code.replace("_", "-")}="' not in html)
    assert not missing, f"card_login.html has no data-msg-* for bridge errors: {missing}"


def test_account_page_in_both_languages(app, ascii_rp, ascii_student):
    client = app.test_client()
    browser = Browser(client)
    query, verifier = browser.sign_in_and_authorize(
        ascii_rp, ascii_student, scope="openid profile offline_access")
    tokens = redeem(client, ascii_rp, query["code"], verifier).get_json()
    assert client.get("/userinfo", headers={
        "Authorization": "Bearer " + tokens["access_token"]}).status_code == 200
    page = client.get("/account/?lang=en")
    assert page.status_code == 200
    # The scope and claim words come from dictionaries in the views: translated too.
    assert_english(page, "Apps you use", "What the app can have:",
                   "A number just for this app, Name, Stay connected when you are away",
                   ASCII_APP)
    assert_japanese(client.get("/account/?lang=ja"), "つかっているアプリ",
                    "アプリごとの番号、名前、いないときもつながったまま")


def test_account_password_errors_in_english(app, ascii_student):
    client = app.test_client()
    browser = Browser(client)
    login = client.get("/login?lang=en")
    assert browser.password_login(login, ascii_student).status_code == 303
    form = client.get("/account/password").get_data(as_text=True)
    response = client.post("/account/password", data={
        "csrf_token": csrf_of(form), "current": ascii_student.password,
        "new": "new password one", "repeat": "new password two"})
    assert response.status_code == 400
    assert_english(response, "The two new passwords are not the same.")


def test_error_page_in_both_languages(client):
    bad = "/authorize?response_type=code&client_id=no-such-app&scope=openid"
    english = client.get(bad + "&lang=en")
    assert english.status_code == 400
    assert_english(english, "Something went wrong")
    japanese = client.application.test_client().get(bad)
    assert japanese.status_code == 400
    assert_japanese(japanese, "うまくいきませんでした")


def test_language_switch_link_keeps_the_page(app, ascii_rp):
    """The header link flips the language and keeps the transaction in the address."""
    client = app.test_client()
    _, login = _to_login(client, ascii_rp)
    html = client.get(login).get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)" lang="en" hreflang="en">English</a>', html)
    assert link, "no link to the English page"
    target = link.group(1).replace("&amp;", "&")
    assert query_of(target)["txn"] == query_of(login)["txn"]
    assert urlsplit(target).path == "/login"
    assert_english(client.get(target), "If you forgot your password, ask your teacher.")


# ----------------------------------------------------------------------------- ui_locales
@pytest.mark.parametrize("ui_locales", ["en", "en-US", "fr en", "de-DE en-GB ja"])
def test_ui_locales_switches_the_login_page_to_english(app, ascii_rp, ui_locales):
    client = app.test_client()
    _, login = _to_login(client, ascii_rp, ui_locales=ui_locales)
    page = client.get(login)
    assert page.status_code == 200
    assert_english(page, "If you forgot your password, ask your teacher.")


@pytest.mark.parametrize("ui_locales", [None, "ja", "fr", "ja en"])
def test_ui_locales_otherwise_stays_japanese(app, ascii_rp, ui_locales):
    client = app.test_client()
    _, login = _to_login(client, ascii_rp, ui_locales=ui_locales)
    assert_japanese(client.get(login), "パスワードをわすれたら、学校の先生に聞いてね。")


def test_school_names_are_data_not_translated(app, ascii_rp, ascii_school):
    client = app.test_client()
    _, login = _to_login(client, ascii_rp, ui_locales="en")
    assert f">{ASCII_SCHOOL}<" in client.get(login).get_data(as_text=True)
