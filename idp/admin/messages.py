"""The admin pages' words for the machine-readable codes the admin services raise.

The services (and the JSON API) speak in codes with an English detail for developers; the
pages show the same failure in the reader's language, with the detail (a value from the
file or the form) after it when there is one.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from idp import school_class

_MESSAGES = {
    # schools and accounts (idp.admin.accounts.AdminInputError)
    "invalid_school": _l("学校コード(1〜64文字)と学校名(1〜200文字)を入れてください。"),
    "school_exists": _l("この学校コードは、もう登録されています。"),
    "bad_school_code": _l("学校コードは半角の英字・数字と . _ - だけで、64文字までです"
                          "(空白や / は使えません)。"),
    "invalid_role": _l("この役割は選べません。"),
    "invalid_login_id": _l("ログインIDは英数字と . _ @ + - だけで、64文字までです。"),
    "too_long": _l("長すぎる項目があります。"),
    "unknown_school": _l("その学校コードの学校は登録されていません。"),
    "login_id_taken": _l("このログインIDは、この学校でもう使われています。"),
    "self_lock": _l("自分のアカウントはロックできません。"),
    "not_staff": _l("確認コードを登録するのは教職員のアカウントだけです。"),
    "not_slip_role": _l("用紙を印刷しなおせるのは、児童生徒と先生のアカウントだけです。"
                        "管理者には再設定コードを発行してください。"),
    "inactive": _l("無効になっているアカウントです。"),
    # transfers (idp.admin.transfers)
    "invalid_school_code": _l("うつる先の学校コードを入れてください(64文字まで)。"),
    "same_school": _l("このアカウントは、もうその学校にいます。"),
    "offer_expired": _l("この申し出は期限が切れました。"
                        "送り出す学校に、もう一度申し出てもらってください。"),
    "offer_not_pending": _l("この申し出は、もう受け入れたか、断ったか、取り消されています。"),
    "offer_stale": _l("このアカウントは、もう送り出す学校にいません。"),
    # relying parties (idp.clients.registry.ClientMetadataError, RFC 7591 codes)
    "invalid_redirect_uri": _l("リダイレクトURIが使えません(https か、ループバックの http だけ)。"),
    "invalid_client_metadata": _l("アプリの設定に問題があります。"),
    # credentials (admin.credentials.CredentialError, clients.access_tokens.AccessTokenError)
    "bad_days": _l("有効日数が範囲の外です。"),
    "bad_max_uses": _l("使える回数は1〜1000回です。"),
    "bad_scopes": _l("スコープは登録済みのものだけで、openid を含めてください。"),
    "not_admin": _l("管理者だけが管理APIトークンを持てます。"),
    # roster files (idp.admin.roster.RosterFileError) and rows (RowError)
    "bad_encoding": _l("文字コードが読めません(UTF-8 か Shift_JIS の CSV にしてください)。"),
    "missing_columns": _l("見出しの行に必要な列がありません。"),
    "empty": _l("ファイルに名簿の行がありません。"),
    "too_many_rows": _l("1つのファイルの行が多すぎます。分けてください。"),
    "bad_csv": _l("CSVとして読めません。"),
    "missing_field": _l("必要な項目が空です。"),
    "bad_login_id": _l("ログインIDに使えない文字があります(英数字と . _ @ + -、64文字まで)。"),
    "duplicate": _l("同じログインIDが、ファイルの中に2回あります。"),
    "other_school": _l("あなたが管理していない学校です。"),
    "admin_account": _l("管理者のアカウントは名簿では変えられません。"),
    "admin_role": _l("管理者の役割は名簿では付けられません。"),
    "bad_role": _l("役割は「児童」「生徒」「教員」のどれかにしてください"
                   "(student、teacher でも読めます)。"),
    # the year-end promotion (idp.admin.school_year)
    "bad_row": _l("ログインID・学年・組のどれかが空か、長すぎます。"),
    "unknown_login": _l("このログインIDの在学中の児童生徒は、この学校にいません。"),
    "grade_mismatch": _l("名簿の学年が、進級したあとの学年(いまの学年 + 1)と合いません。"),
    "graduating": _l("最上級の学年なので卒業します。この行は使いません(名簿から消してください)。"),
    "not_a_number": _l("学年が数字ではないので、進級させません(そのままにします)。"),
    "already_applied": _l("この確認内容は、もう反映しました。"),
    "stale_preview": _l("確認のあとで児童生徒の情報が変わりました。もう一度確認してください。"),
    "preview_expired": _l("確認の時間が切れました。もう一度確認してください。"),
    "invalid_roster": _l("名簿にまちがいがあります。確認画面を見てください。"),
    # OneRoster bundles (idp.admin.oneroster) and their export (idp.admin.oneroster_export)
    "bad_zip": _l("zip ファイルとして開けません。"),
    "unsafe_path": _l(
        "zip の中にフォルダがあります。CSV ファイルを zip のいちばん上に入れてください。"),
    "too_large": _l("ファイルが大きすぎます。"),
    "missing_manifest": _l("zip に manifest.csv がありません。"),
    "bad_manifest_version": _l("OneRoster 1.2 の manifest.csv ではありません。"),
    "bad_manifest": _l("manifest.csv の内容がまちがっています。"),
    "missing_file": _l("manifest.csv に書かれたファイルが zip にありません。"),
    "my_number": _l("マイナンバー(個人番号)が入っています。マイナンバーは取り込みません。"
                    "その列を消してください。"),
    "bad_sourced_id": _l("sourcedId が空か、長すぎます。"),
    "bad_status": _l("status がまちがっています(差分のときだけ tobedeleted を使えます)。"),
    "missing_role": _l("この人の役割(roles.csv)がありません。"),
    "unknown_org": _l("roles.csv の組織が orgs.csv にありません。"),
    "not_a_school": _l("役割の組織が学校ではありません。"),
    "role_skipped": _l("この役割の人は取り込みません(管理職などは別に登録します)。"),
    "role_change_refused": _l(
        "保護者のアカウントを児童生徒や教員に(またはその逆に)することはできません。"),
    "bad_agent": _l("agentSourcedIds が長すぎます(20人まで)。"),
    "agent_not_in_school": _l("agentSourcedIds の人が、この学校にいません(ほかの学校の人とは"
                              "つなげません)。"),
    "agent_not_student": _l("保護者の agentSourcedIds には、児童生徒だけを書けます。"),
    "agent_not_guardian": _l("児童生徒の agentSourcedIds には、保護者だけを書けます。"),
    "agents_ignored": _l("教員の agentSourcedIds は使いません。"),
    "bad_kana": _l("かなの名前に、かな以外の文字があります。"),
    "bad_student_number": _l("出席番号は数字だけにしてください。"),
    "sourced_id_conflict": _l("このログインIDは、別の sourcedId の人がもう使っています。"),
    "unknown_user": _l("この sourcedId の人はいません(もう無効かもしれません)。"),
    "delta_deactivate": _l("差分のファイルでは「ファイルにない人を無効にする」は使えません。"),
    "bad_format": _l("ファイルの形式がまちがっています。"),
    "client_disabled": _l("このアプリは止められています。"),
    "scope_not_allowed": _l("このアプリには profile と school のスコープが必要です。"),
    "bad_birth_date": _l("生年月日は、今日までの日付を YYYY-MM-DD で書いてください。"),
}


def describe(code: str, detail: str = "") -> str:
    """The reader's-language sentence for ``code``, with ``detail`` after it when given."""
    message = _MESSAGES.get(code)
    text = str(message) if message is not None else code
    return f"{text} ({detail})" if detail else text


# ----------------------------------------------------------------------------- names
# The one place the admin pages take the Japanese names of roles, audit events, sign-in
# methods and refusal reasons from (the machine-readable name stays beside it in the log).
ROLE_NAMES = {
    "student": _l("児童生徒"), "teacher": _l("先生"), "guardian": _l("保護者"),
    "school_admin": _l("学校の管理者"), "platform_admin": _l("全体の管理者"),
}
METHOD_NAMES = {
    "password": _l("IDとパスワード"), "card": _l("マイナンバーカード"),
    # Teachers sign in there too (to link cards), not only admins.
    "admin": _l("管理ページ(先生・管理者)"),
}
EVENT_NAMES = {
    "login.password": _l("サインイン(IDとパスワード)"),
    "login.card": _l("サインイン(マイナンバーカード)"),
    "login.guessing": _l("パスワードの当てずっぽうの疑い"),
    "admin.login": _l("管理者のサインイン"),
    "admin.totp": _l("管理者の確認コード"),
    "admin.totp_reset": _l("確認コードの登録のやりなおし"),
    "admin.enrolment_code": _l("登録コードの入力"),
    "admin.enrolment_code_issued": _l("登録コードの発行"),
    "admin.enrolment_code_used": _l("登録コードの使用"),
    "admin.api_token_issued": _l("APIトークンの発行"),
    "admin.api_token_revoked": _l("APIトークンの取り消し"),
    "account.created": _l("アカウントの作成"), "account.updated": _l("アカウントの変更"),
    "account.locked": _l("アカウントのロック"),
    "account.password_reset": _l("パスワードのリセット"),
    "account.password_set_by_card": _l("カードでパスワードを決めなおし"),
    "account.reset_code_issued": _l("リセットコードの発行"),
    "account.sessions_ended": _l("サインイン中の状態を終了"),
    "account.graduated": _l("卒業"), "account.promoted": _l("進級"),
    "account.deactivated": _l("アカウントの停止"),
    "account.birth_date_set": _l("生年月日の登録"),
    "card.bind": _l("カードをつなぐ"), "card.bound": _l("カードをつないだ"),
    "card.link_declined": _l("カードをつながなかった"), "card.revoked": _l("カードの解除"),
    "card.reinstated": _l("カードの再開"), "card.replaced": _l("新しいカードにかわった"),
    "client.created": _l("アプリの登録"), "client.updated": _l("アプリの変更"),
    "client.deleted": _l("アプリの削除"), "client.enabled": _l("アプリの有効・停止"),
    "client.secret_rotated": _l("アプリのシークレットを作り直し"),
    "client.allow_graduates": _l("卒業生の利用の設定"),
    "client.registration_refused": _l("アプリの登録をことわった"),
    "client.handoff_pdf": _l("アプリの会社に渡す情報をPDFで保存"),
    "authorize.code_issued": _l("アプリへのサインイン"),
    "authorize.graduate_refused": _l("卒業生のサインインをことわった"),
    "consent.granted": _l("アプリへの許可"), "consent.denied": _l("アプリへの許可をしなかった"),
    "consent.withdrawn": _l("アプリへの許可の取り消し"),
    "guardian.linked": _l("保護者をつないだ"), "guardian.unlinked": _l("保護者のつながりを解除"),
    "guardian.request_sent": _l("保護者への確認の依頼"),
    "guardian.consent_approved": _l("保護者の許可"),
    "roster.imported": _l("名簿の取り込み"), "roster.sheet_downloaded": _l("配布用紙の作成"),
    "school.created": _l("学校の登録"), "school.promoted": _l("進級と卒業の反映"),
    "school.guardian_consent_age_set": _l("保護者の許可が必要な年齢の設定"),
    "session.logout": _l("サインアウト"),
    "token.revoked": _l("トークンの取り消し"),
    "token.account_revoked": _l("アカウントのトークンをすべて取り消し"),
    "token.code_replay": _l("使用済みコードの再利用(攻撃の疑い)"),
    "token.code_wrong_client": _l("別のアプリのコード(攻撃の疑い)"),
    "token.refresh_reuse": _l("使用済みリフレッシュトークンの再利用(攻撃の疑い)"),
    "audit.exported": _l("監査ログの書き出し"), "audit.purged": _l("監査ログの削除"),
    "settings.audit_retention": _l("監査ログの保存期間の設定"),
    "iat.issued": _l("登録用トークンの発行"), "iat.revoked": _l("登録用トークンの取り消し"),
    "keys.rotated": _l("署名鍵の交換"), "keys.pruned": _l("古い署名鍵の削除"),
    "lifecycle.run": _l("卒業生の期限の処理"),
}
OUTCOME_NAMES = {"ok": _l("成功"), "refused": _l("ことわった"),
                 "not_linked": _l("つながっていないカード"), "flagged": _l("注意")}
REASON_NAMES = {
    "bad_credentials": _l("IDかパスワードがちがう"),
    "slow_down": _l("失敗が多いので一時停止中"),
    "not_admin": _l("管理者ではない"),
    "bad_code": _l("確認コードがちがう"),
    "not_linked": _l("まだつながっていないカード"),
    "card_not_linked": _l("つながっていないカード"),
    "card_without_mfa": _l("確認コードなしでつないだカード"),
    "certificate_mismatch": _l("別の証明書のカード"),
    "binding_revoked": _l("解除されたカード"),
    "binding_replaced": _l("前のカード(新しいカードにかわった)"),
    "account_inactive": _l("停止中かロック中のアカウント"),
    "certificate_revoked": _l("失効した証明書"),
    "certificate_expired": _l("期限切れの証明書"),
    "certificate_untrusted": _l("信頼できない証明書"),
    "signature_invalid": _l("署名が正しくない"),
    "challenge_expired": _l("時間切れ"),
    "challenge_not_found": _l("古いページからの操作"),
    "revocation_unavailable": _l("失効の確認ができなかった"),
    "invalid_request": _l("正しくない送信"),
    "admin_needs_totp": _l("管理者のカードは確認コードのあとでつなぐ"),
}


# The app form's words for a ClientMetadataError's ``reason`` (idp.clients.registry).
_HTTPS_URL = _l("https:// で始まり # のないURLにしてください(http:// は 127.0.0.1 など、"
                "このパソコンの中のアドレスのときだけ使えます)。")
CLIENT_REASONS = {
    "redirect_uri": _l("リダイレクトURIが使えません。"),
    "post_logout_redirect_uri": _l("ログアウト後のURIが使えません。"),
    "jwks_uri": _l("jwks_uri が使えません。"),
    "logo_uri": _l("ロゴのURLは https:// で始まるURLにしてください。"),
    "jwks": _l("jwks(JSON)が読めません。アプリの会社からもらった公開鍵のJSON(JWK Set)を"
               "そのまま貼ってください。"),
    "keys_needed": _l("このクライアント認証方式には、アプリの公開鍵(jwks_uri か jwks)が"
                      "必要です。"),
    "keys_both": _l("jwks_uri と jwks は、どちらか一方だけ入れてください。"),
    "sector": _l("セクター識別子URIが使えません(https で、リダイレクトURIをすべて並べた"
                 "JSONを返すURLが必要です)。"),
    "many_hosts": _l("リダイレクトURIのホストが2つ以上あるときは、セクター識別子URIが"
                     "必要です。アプリの会社に聞いてください。"),
}
URL_REASONS = ("redirect_uri", "post_logout_redirect_uri", "jwks_uri")


def client_error(exc: Any) -> str:
    """A ClientMetadataError on the app form in the reader's words with the value that broke
    the rule; one without a reason (the API's own checks) keeps its English detail."""
    reason = CLIENT_REASONS.get(exc.reason or "")
    if reason is None:
        return describe(exc.code, str(exc))
    text = str(reason) + (str(_HTTPS_URL) if exc.reason in URL_REASONS else "")
    return f"{text} ({exc.value})" if exc.value else text


def _named(names: dict, code: str | None) -> str:
    if not code:
        return ""
    name = names.get(code)
    return str(name) if name is not None else code


def class_words(grade: str | None, class_name: str | None) -> str:
    """「5年 1組」 (or one of them) in the page's language; the rule for when 年 and 組 are
    added is idp.school_class's (「ひまわり学級」 stays as the school named it)."""
    from flask_babel import get_locale

    return school_class.class_words(grade, class_name, str(get_locale() or "ja"))


def role_name(code: str | None) -> str:
    return _named(ROLE_NAMES, code)


def event_name(code: str | None) -> str:
    return _named(EVENT_NAMES, code)


def method_name(code: str | None) -> str:
    return _named(METHOD_NAMES, code)


def outcome_name(code: str | None) -> str:
    return _named(OUTCOME_NAMES, code)


def reason_name(code: str | None) -> str:
    return _named(REASON_NAMES, code)
